"""The safetensors format, byte-compatible with the ``safetensors`` package,
with its torch API (``save_file``, ``load_file``, ``save``, ``load``,
``safe_open``).

A file is an 8-byte little-endian header length ``n``, ``n`` bytes of JSON
(``{"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
"__metadata__": {...}}``, padded with spaces to a multiple of 8), then the
tensors' little-endian bytes, back to back. Tensors are written by
descending dtype alignment, then name, as the package writes them, so both
produce the same bytes. Reading refuses headers over 100 MB, duplicate
names, and offsets that overlap, leave holes, run past the file or disagree
with dtype and shape.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from collections.abc import Iterator
from typing import Any

import rtorch
from rtorch._C import Tensor

__all__ = ["SafetensorError", "load", "load_file", "safe_open", "save", "save_file"]

MAX_HEADER_SIZE = 100_000_000

# Names in the package's Dtype order, which is increasing alignment: the
# writer sorts by descending position here, then by name.
_DTYPE_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32",
                "U32", "F32", "F64", "I64", "U64"]  # fmt: skip
_NAME_OF_DTYPE = {
    rtorch.bool: "BOOL",
    rtorch.uint8: "U8",
    rtorch.int8: "I8",
    rtorch.int16: "I16",
    rtorch.float16: "F16",
    rtorch.bfloat16: "BF16",
    rtorch.int32: "I32",
    rtorch.float32: "F32",
    rtorch.float64: "F64",
    rtorch.int64: "I64",
}
_DTYPE_OF_NAME = {v: k for k, v in _NAME_OF_DTYPE.items()}
_SIZE_OF_NAME = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
                 "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8,
                 "U64": 8}  # fmt: skip
_FRAMEWORKS = ("pt", "torch", "pytorch", "rt", "rtorch")


class SafetensorError(Exception):
    """A safetensors file is malformed (the ``safetensors`` package's class name)."""


# ---------------------------------------------------------------- writing


def _header(tensors: dict[str, Tensor], metadata: dict[str, str] | None) -> tuple[bytes, list]:
    if not isinstance(tensors, dict):
        raise ValueError(f"Expected a dict of [str, torch.Tensor] but received {type(tensors)}")
    for k, v in tensors.items():
        if not isinstance(v, Tensor):
            raise ValueError(f"Key `{k}` is invalid, expected torch.Tensor but received {type(v)}")
        if not v.is_contiguous():
            raise ValueError(
                f"You are trying to save a non contiguous tensor: `{k}` which is not allowed. It "
                "either means you are trying to save tensors which are reference of each other in "
                "which case it's recommended to save only the full tensors, and reslice at load "
                "time, or simply call `.contiguous()` on your tensor to pack it before saving."
            )
    _check_no_shared_memory(tensors)
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(type(k) is str and type(v) is str for k, v in metadata.items())
    ):
        raise ValueError("metadata must be a dict of str to str")
    order = sorted(tensors.items(), key=lambda kv: (-_rank(kv[1]), kv[0]))
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, t in order:
        header[name] = {
            "dtype": _NAME_OF_DTYPE[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + t.nbytes],
        }
        offset += t.nbytes
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, order


def _rank(t: Tensor) -> int:
    return _DTYPE_ORDER.index(_NAME_OF_DTYPE[t.dtype])


def _check_no_shared_memory(tensors: dict[str, Tensor]) -> None:
    owners: dict[int, list[str]] = {}
    for name, t in tensors.items():
        if t.numel():
            owners.setdefault(t._storage_key(), []).append(name)
    shared = [sorted(names) for names in owners.values() if len(names) > 1]
    if shared:
        raise RuntimeError(
            f"Some tensors share memory, this will lead to duplicate memory on disk and potential "
            f"differences when loading them again: {shared}."
        )


def _data(t: Tensor) -> Any:
    # Tensor bytes as a buffer, without a copy (bool and bfloat16 through uint8/int16).
    if t.numel() == 0:
        return b""
    if t.dtype in (rtorch.bool, rtorch.bfloat16):
        t = t.view(rtorch.uint8 if t.dtype == rtorch.bool else rtorch.int16)
    return memoryview(t.numpy()).cast("B")


def save(tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """The safetensors bytes of ``tensors``.

    Args:
        tensors: names to contiguous tensors that share no memory.
        metadata: optional free-form ``str`` to ``str`` header entries.

    Example::

        >>> import rtorch
        >>> from rtorch.utils.safetensors import load, save
        >>> load(save({"w": rtorch.ones(2)}))
        {'w': tensor([1., 1.])}
    """
    head, order = _header(tensors, metadata)
    return head + b"".join(bytes(_data(t)) for _, t in order)


def save_file(
    tensors: dict[str, Tensor], filename: str | os.PathLike, metadata: dict[str, str] | None = None
) -> None:
    """Writes ``tensors`` to ``filename`` in the safetensors format.

    Args:
        tensors: names to contiguous tensors that share no memory.
        filename: the file to write.
        metadata: optional free-form ``str`` to ``str`` header entries.

    Example::

        >>> import os, tempfile, rtorch
        >>> from rtorch.utils.safetensors import load_file, save_file
        >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> save_file({"w": rtorch.arange(3)}, path)
        >>> load_file(path)["w"]
        tensor([0, 1, 2])
    """
    head, order = _header(tensors, metadata)
    with open(filename, "wb") as f:
        f.write(head)
        for _, t in order:
            f.write(_data(t))


# ---------------------------------------------------------------- reading


def _parse(buffer: Any, size: int, source: str) -> tuple[int, dict[str, dict], dict | None]:
    """Validates the header at the start of ``buffer`` (``size`` bytes in all);
    returns the data start, the tensor entries in offset order and the metadata."""

    def fail(what: str) -> SafetensorError:
        return SafetensorError(f"Error while deserializing header of {source}: {what}")

    if size < 8:
        raise fail("HeaderTooSmall")
    (n,) = struct.unpack("<Q", bytes(buffer[:8]))
    if n > MAX_HEADER_SIZE:
        raise fail(f"HeaderTooLarge ({n} bytes, the limit is {MAX_HEADER_SIZE})")
    if 8 + n > size:
        raise fail(f"InvalidHeaderLength ({n} bytes declared, the file has {size - 8})")
    try:
        text = bytes(buffer[8 : 8 + n]).decode("utf-8")
    except UnicodeDecodeError:
        raise fail("InvalidHeader (not UTF-8)") from None
    if not text.startswith("{"):
        raise fail("InvalidHeaderStart")

    def no_duplicates(pairs: list) -> dict:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise fail(f"InvalidHeaderDeserialization (duplicate key in {keys})")
        return dict(pairs)

    try:
        header = json.loads(text, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as e:
        if isinstance(e, SafetensorError):
            raise
        raise fail(f"InvalidHeaderDeserialization ({e})") from None
    if not isinstance(header, dict):
        raise fail("InvalidHeaderDeserialization (not an object)")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(type(v) is str for v in metadata.values())
    ):
        raise fail("InvalidHeaderDeserialization (__metadata__ must map str to str)")
    entries = []
    for name, info in header.items():
        if not (
            isinstance(info, dict)
            and set(info) == {"dtype", "shape", "data_offsets"}
            and info["dtype"] in _SIZE_OF_NAME
            and isinstance(info["shape"], list)
            and all(type(d) is int and d >= 0 for d in info["shape"])
            and isinstance(info["data_offsets"], list)
            and len(info["data_offsets"]) == 2
            and all(type(o) is int and o >= 0 for o in info["data_offsets"])
        ):
            raise fail(f"InvalidHeaderDeserialization (bad entry for {name!r}: {info!r})")
        entries.append((tuple(info["data_offsets"]), name, info))
    entries.sort(key=lambda e: e[0])
    expected = 0
    for (begin, end), name, info in entries:
        if begin != expected or end < begin:
            raise fail(f"InvalidOffset({name!r}): offsets {[begin, end]} overlap or leave a gap")
        numel = 1
        for d in info["shape"]:
            numel *= d
        if end - begin != numel * _SIZE_OF_NAME[info["dtype"]]:
            raise fail(f"TensorInvalidInfo ({name!r}: {info['dtype']} {info['shape']} needs "
                       f"{numel * _SIZE_OF_NAME[info['dtype']]} bytes, offsets give {end - begin})")  # fmt: skip
        expected = end
    if 8 + n + expected != size:
        raise fail(
            f"MetadataIncompleteBuffer (tensors end at byte {8 + n + expected}, the file has {size})"
        )
    return 8 + n, {name: info for _, name, info in entries}, metadata


def _dtype(name: str, info: dict) -> Any:
    dtype = _DTYPE_OF_NAME.get(info["dtype"])
    if dtype is None:
        raise SafetensorError(f"tensor {name!r} has dtype {info['dtype']}, which rtorch lacks")
    return dtype


def _tensor(raw: Tensor, name: str, info: dict) -> Tensor:
    """The tensor ``info`` describes, over the uint8 tensor ``raw`` of its bytes."""
    return raw.view(_dtype(name, info)).reshape(tuple(info["shape"]))


def load(data: bytes) -> dict[str, Tensor]:
    """The tensors in the safetensors bytes ``data`` (copied out of it).

    Args:
        data: the content of a safetensors file.

    Example::

        >>> import rtorch
        >>> from rtorch.utils.safetensors import load, save
        >>> load(save({"a": rtorch.tensor([1, 2], dtype=rtorch.int8)}))["a"]
        tensor([1, 2], dtype=torch.int8)
    """
    view = memoryview(data).cast("B")
    start, entries, _ = _parse(view, len(view), "<bytes>")
    out = {}
    for name, info in entries.items():
        begin, end = info["data_offsets"]
        raw = rtorch.empty(end - begin, dtype=rtorch.uint8)
        if end > begin:
            raw.numpy()[:] = view[start + begin : start + end]
        out[name] = _tensor(raw, name, info)
    return out


def load_file(filename: str | os.PathLike, device: Any = "cpu") -> dict[str, Tensor]:
    """The tensors of the safetensors file ``filename``.

    As in the ``safetensors`` package, the file is memory-mapped: each tensor
    is a copy-on-write view of it, read from disk when first touched.

    Args:
        filename: the file to read.
        device: where to put the tensors (``"cpu"``).

    Example::

        >>> import os, tempfile, rtorch
        >>> from rtorch.utils.safetensors import load_file, save_file
        >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> save_file({"w": rtorch.ones(1)}, path, metadata={"format": "pt"})
        >>> load_file(path)
        {'w': tensor([1.])}
    """
    with safe_open(filename, framework="rt", device=device) as f:
        return {name: f.get_tensor(name) for name in f.offset_keys()}


def _check_device(device: Any) -> None:
    if rtorch.device(device).type != "cpu":
        raise RuntimeError("Torch not compiled with CUDA enabled")


class _Slice:
    """Lazy access to one tensor of a :class:`safe_open` file: shape and
    dtype without reading, and ``[...]`` indexing that reads only what it needs."""

    def __init__(self, tensor: Tensor, info: dict) -> None:
        self._tensor, self._info = tensor, info

    def get_shape(self) -> list[int]:
        return list(self._info["shape"])

    def get_dtype(self) -> str:
        return self._info["dtype"]

    def __getitem__(self, index: Any) -> Tensor:
        return self._tensor[index].clone()


class safe_open:  # noqa: N801 (the package's name)
    """Opens a safetensors file for lazy access: the file is memory-mapped
    and a tensor is read only when asked for.

    Args:
        filename: the file to open.
        framework: ``"pt"`` (or ``"rt"``/``"rtorch"``): tensors are rtorch tensors.
        device: where to put the tensors (``"cpu"``).

    Example::

        >>> import os, tempfile, rtorch
        >>> from rtorch.utils.safetensors import safe_open, save_file
        >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> save_file({"w": rtorch.arange(6).view(2, 3)}, path)
        >>> with safe_open(path, framework="rt") as f:
        ...     f.keys(), f.get_slice("w")[:, 1]
        (['w'], tensor([1, 4]))
    """

    def __init__(self, filename: str | os.PathLike, framework: str, device: Any = "cpu") -> None:
        if framework not in _FRAMEWORKS:
            raise ValueError(f"framework {framework!r} is not supported; use 'pt' or 'rt'")
        _check_device(device)
        self._name = os.fspath(filename)
        with open(filename, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            # A private mapping: tensors are writable, and writes never reach the file.
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) if size else b""
        self._start, self._entries, self._metadata = _parse(self._map, size, repr(self._name))

    def __enter__(self) -> safe_open:
        return self

    def __exit__(self, *exc: Any) -> None:
        # Tensors handed out keep the mapping alive; nothing to release here.
        pass

    def keys(self) -> list[str]:
        """Tensor names, sorted."""
        return sorted(self._entries)

    def offset_keys(self) -> list[str]:
        """Tensor names in file order."""
        return list(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def metadata(self) -> dict[str, str] | None:
        """The header's ``__metadata__``."""
        return self._metadata

    def _mapped(self, name: str) -> Tensor:
        info = self._entries.get(name)
        if info is None:
            raise SafetensorError(f"File does not contain tensor {name}")
        import numpy as np

        begin, end = info["data_offsets"]
        offset = self._start + begin
        if end == begin:
            raw = rtorch.empty(0, dtype=rtorch.uint8)
        else:
            raw = rtorch.from_numpy(
                np.frombuffer(self._map, dtype=np.uint8, count=end - begin, offset=offset)
            )
            if offset % _SIZE_OF_NAME[info["dtype"]]:
                raw = raw.clone()  # keep typed access aligned
        return _tensor(raw, name, info)

    def get_tensor(self, name: str) -> Tensor:
        """The tensor ``name``, a copy-on-write view of the mapped file."""
        return self._mapped(name)

    def get_slice(self, name: str) -> _Slice:
        """Lazy access to tensor ``name``: ``get_shape()``, ``get_dtype()``, ``[...]``."""
        return _Slice(self._mapped(name), self._entries[name])
