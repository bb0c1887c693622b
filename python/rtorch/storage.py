"""Storages: the bytes under tensors, as ``torch.UntypedStorage`` and
``torch.TypedStorage`` present them.

An rtorch storage object is a thin handle over a 1-D ``uint8`` tensor that
covers the whole storage, so it shares memory with every tensor over it.
Serialization uses them (a checkpoint records storages, and tensors as views
of them); ``map_location`` callables receive one.
"""

from __future__ import annotations

from typing import Any

from rtorch import _C
from rtorch._C import Tensor

__all__ = ["TypedStorage", "UntypedStorage"]

# PyTorch's legacy storage class names, as written in checkpoints.
STORAGE_NAME_OF_DTYPE = {
    _C.float32: "FloatStorage",
    _C.float64: "DoubleStorage",
    _C.float16: "HalfStorage",
    _C.bfloat16: "BFloat16Storage",
    _C.int64: "LongStorage",
    _C.int32: "IntStorage",
    _C.int16: "ShortStorage",
    _C.int8: "CharStorage",
    _C.uint8: "ByteStorage",
    _C.bool: "BoolStorage",
}
DTYPE_OF_STORAGE_NAME = {name: dt for dt, name in STORAGE_NAME_OF_DTYPE.items()}


def _cuda_unavailable() -> RuntimeError:
    return RuntimeError("Torch not compiled with CUDA enabled")


class UntypedStorage:
    """A contiguous block of bytes on a device.

    Args:
        size: number of bytes of a new, uninitialised storage.

    Example::

        >>> import rtorch
        >>> s = rtorch.tensor([1.0, 2.0]).untyped_storage()
        >>> s.nbytes()
        8
    """

    __slots__ = ("_bytes",)

    def __init__(self, size: int = 0, *, device: Any = None) -> None:
        if device is not None and _C.device(device).type != "cpu":
            raise _cuda_unavailable()
        self._bytes = _C.empty(size, dtype=_C.uint8)

    @classmethod
    def _wrap(cls, byte_tensor: Tensor) -> UntypedStorage:
        """The storage whose bytes are the 1-D uint8 tensor ``byte_tensor``."""
        self = cls.__new__(cls)
        self._bytes = byte_tensor
        return self

    @property
    def device(self) -> _C.device:
        return self._bytes.device

    @property
    def dtype(self) -> _C.dtype:
        return _C.uint8

    def nbytes(self) -> int:
        return self._bytes.numel()

    def size(self) -> int:
        return self._bytes.numel()

    def __len__(self) -> int:
        return self._bytes.numel()

    def element_size(self) -> int:
        return 1

    def data_ptr(self) -> int:
        return self._bytes.data_ptr()

    def tolist(self) -> list[int]:
        return self._bytes.tolist()

    def cpu(self) -> UntypedStorage:
        return self

    def cuda(self, device: Any = None, non_blocking: bool = False) -> UntypedStorage:
        raise _cuda_unavailable()

    def to(self, *, device: Any, non_blocking: bool = False) -> UntypedStorage:
        if _C.device(device).type != "cpu":
            raise _cuda_unavailable()
        return self

    def __repr__(self) -> str:
        values = "\n".join(f" {v}" for v in self._bytes.tolist()[:20])
        more = "\n ..." if self.nbytes() > 20 else ""
        return (
            f"{values}{more}\n[rtorch.storage.UntypedStorage(device={self.device}) "
            f"of size {self.nbytes()}]"
        )


class TypedStorage:
    """An :class:`UntypedStorage` read as elements of ``dtype`` (PyTorch's
    legacy storage type, still what checkpoints name).

    Args:
        wrap_storage: the untyped storage to view.
        dtype: the element type.
    """

    __slots__ = ("_untyped_storage", "dtype")

    def __init__(self, *, wrap_storage: UntypedStorage, dtype: _C.dtype, **_: Any) -> None:
        if not isinstance(wrap_storage, UntypedStorage):
            raise TypeError(
                f"expected wrap_storage to be an UntypedStorage, got {type(wrap_storage).__name__}"
            )
        if not isinstance(dtype, _C.dtype):
            raise TypeError(f"expected dtype to be a rtorch.dtype, got {type(dtype).__name__}")
        self._untyped_storage = wrap_storage
        self.dtype = dtype

    @property
    def device(self) -> _C.device:
        return self._untyped_storage.device

    def element_size(self) -> int:
        return self.dtype.itemsize

    def size(self) -> int:
        return self._untyped_storage.nbytes() // self.dtype.itemsize

    def __len__(self) -> int:
        return self.size()

    def nbytes(self) -> int:
        return self._untyped_storage.nbytes()

    def untyped(self) -> UntypedStorage:
        return self._untyped_storage

    def _flat(self) -> Tensor:
        """A 1-D tensor of ``dtype`` over every whole element of the storage."""
        n = self.size() * self.dtype.itemsize
        return self._untyped_storage._bytes[:n].view(self.dtype)

    def cpu(self) -> TypedStorage:
        return self

    def __repr__(self) -> str:
        return f"rtorch.storage.TypedStorage(dtype={self.dtype}, size={self.size()})"
