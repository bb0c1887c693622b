"""Python-level methods of ``rtorch.Tensor``: the parts of the API that are
pure convenience (printing, NumPy conversion, legacy type names). Everything
numeric lives in Rust (``rtorch._C.Tensor``)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from rtorch import _C
from rtorch._C import Tensor
from rtorch._dtype_info import check_cast

if TYPE_CHECKING:
    import numpy as np

_TYPE_NAMES = {
    _C.float32: "torch.FloatTensor",
    _C.float64: "torch.DoubleTensor",
    _C.float16: "torch.HalfTensor",
    _C.bfloat16: "torch.BFloat16Tensor",
    _C.int64: "torch.LongTensor",
    _C.int32: "torch.IntTensor",
    _C.int16: "torch.ShortTensor",
    _C.int8: "torch.CharTensor",
    _C.uint8: "torch.ByteTensor",
    _C.bool: "torch.BoolTensor",
}
_DTYPE_OF_NAME = {name: dt for dt, name in _TYPE_NAMES.items()}
_DTYPE_OF_NAME.update({name.replace("torch.", "rtorch."): dt for dt, name in _TYPE_NAMES.items()})


def __array__(self: Tensor, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
    arr = self.numpy()
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return arr.copy() if copy else arr


def __repr__(self: Tensor, *, tensor_contents: Any = None) -> str:
    from rtorch import _tensor_str

    return _tensor_str._str(self, tensor_contents=tensor_contents)


def __format__(self: Tensor, format_spec: str) -> str:
    if self.dim() == 0:
        return self.item().__format__(format_spec)
    return object.__format__(self, format_spec)


def __iter__(self: Tensor):
    if self.dim() == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (self[i] for i in range(self.shape[0]))


def __reversed__(self: Tensor):
    if self.dim() == 0:
        return self
    return (self[i] for i in reversed(range(self.shape[0])))


def __deepcopy__(self: Tensor, memo: dict) -> Tensor:
    if id(self) in memo:
        return memo[id(self)]
    if not self.is_leaf:
        raise RuntimeError(
            "Only Tensors created explicitly by the user (graph leaves) support the deepcopy "
            "protocol at the moment.  If you were attempting to deepcopy a module, this may be "
            "because of a torch.nn.utils.weight_norm usage, see "
            "https://github.com/pytorch/pytorch/pull/103001"
        )
    prev = _C._set_grad_enabled(False)
    try:
        out = self.clone()
    finally:
        _C._set_grad_enabled(prev)
    if type(self) is not Tensor:
        out = type(self)._make_subclass(type(self), out, self.requires_grad)
    else:
        out.requires_grad_(self.requires_grad)
    if self.grad is not None:
        out.grad = __deepcopy__(self.grad, memo)
    memo[id(self)] = out
    return out


def type_(self: Tensor, dtype: Any = None, non_blocking: bool = False, **kwargs: Any):
    """With no argument, the legacy type name (``'torch.FloatTensor'``);
    otherwise the tensor cast to that dtype or type name."""
    if dtype is None:
        return _TYPE_NAMES[self.dtype]
    if isinstance(dtype, str):
        if dtype not in _DTYPE_OF_NAME:
            raise ValueError(f"invalid type: '{dtype}'")
        dtype = _DTYPE_OF_NAME[dtype]
    elif isinstance(dtype, builtins.type) and hasattr(dtype, "dtype"):
        dtype = dtype.dtype
    return self.to(dtype)


def _caster(dtype: _C.dtype):
    def cast(self: Tensor, memory_format: Any = None) -> Tensor:
        return self.to(dtype)

    cast.__doc__ = f"``self.to({dtype!r})``."
    return cast


def _new_factory(fn):
    def new(self: Tensor, *size: Any, dtype=None, device=None, requires_grad=False, **kw):
        return fn(*size, dtype=self.dtype if dtype is None else dtype, requires_grad=requires_grad)

    return new


def new_full(
    self: Tensor, size: Any, fill_value: Any, *, dtype=None, device=None, requires_grad=False
):
    return _C.full(
        size, fill_value, dtype=self.dtype if dtype is None else dtype, requires_grad=requires_grad
    )


def new_tensor(self: Tensor, data: Any, *, dtype=None, device=None, requires_grad=False):
    return _C.tensor(
        data, dtype=self.dtype if dtype is None else dtype, requires_grad=requires_grad
    )


def backward(
    self: Tensor,
    gradient: Tensor | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Any = None,
) -> None:
    """Computes the gradient of this tensor with respect to the graph leaves.

    Gradients accumulate into the leaves' ``.grad``. A non-scalar tensor
    needs ``gradient`` (the vector of the vector-Jacobian product).

    Args:
        gradient (Tensor, optional): the seed gradient, shaped like ``self``.
        retain_graph (bool, optional): keep the graph for another backward;
            defaults to ``create_graph``.
        create_graph (bool): record the backward pass (higher-order gradients).
        inputs (sequence of Tensor, optional): accumulate only into these.

    Example::

        >>> x = rtorch.tensor([1.0, 2.0], requires_grad=True)
        >>> (x**2).sum().backward()
        >>> x.grad
        tensor([2., 4.])
    """
    from rtorch import autograd

    autograd.backward(self, gradient, retain_graph, create_graph, inputs=inputs)


class RemovableHandle:
    """Removes a tensor hook on ``remove()`` (or at the end of a ``with`` block)."""

    def __init__(self, tensor: Tensor, hook_id: int) -> None:
        import weakref

        self._tensor = weakref.ref(tensor)
        self.id = hook_id

    def remove(self) -> None:
        t = self._tensor()
        if t is not None:
            t._remove_hook(self.id)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *args: Any) -> None:
        self.remove()


def register_hook(self: Tensor, hook: Any) -> RemovableHandle:
    """Registers ``hook(grad)``, called with this tensor's gradient during
    backward; a tensor it returns replaces the gradient.

    Returns:
        a handle whose ``remove()`` unregisters the hook.

    Example::

        >>> x = rtorch.tensor([1.0, 2.0], requires_grad=True)
        >>> h = x.register_hook(lambda g: g * 2)
        >>> x.sum().backward()
        >>> x.grad
        tensor([2., 2.])
    """
    return RemovableHandle(self, self._register_hook(hook))


def untyped_storage(self: Tensor) -> Any:
    """The storage under this tensor (an ``rtorch.UntypedStorage``), shared
    with it and with every view of it."""
    from rtorch.storage import UntypedStorage

    return UntypedStorage._wrap(self._storage_bytes())


def _inplace_of(name: str):
    """``t.<name>_(...)``: the out-of-place op's result written back into
    ``t``, which must already have the result's shape (``self`` is not
    broadcast in place) and a dtype the result casts to."""

    def fn(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        result = getattr(self, name)(*args, **kwargs)
        if result.shape != self.shape:
            raise RuntimeError(
                f"{name}_(): the result has shape {list(result.shape)} but the tensor "
                f"written in place has shape {list(self.shape)}"
            )
        check_cast(result.dtype, self.dtype)
        return self.copy_(result)

    return fn


def _install() -> None:
    methods = {
        "__array__": __array__,
        "__repr__": __repr__,
        "__format__": __format__,
        "__iter__": __iter__,
        "__reversed__": __reversed__,
        "__deepcopy__": __deepcopy__,
        "backward": backward,
        "register_hook": register_hook,
        "type": type_,
        "float": _caster(_C.float32),
        "double": _caster(_C.float64),
        "half": _caster(_C.float16),
        "bfloat16": _caster(_C.bfloat16),
        "long": _caster(_C.int64),
        "int": _caster(_C.int32),
        "short": _caster(_C.int16),
        "char": _caster(_C.int8),
        "byte": _caster(_C.uint8),
        "bool": _caster(_C.bool),
        "new_empty": _new_factory(_C.empty),
        "new_zeros": _new_factory(_C.zeros),
        "new_ones": _new_factory(_C.ones),
        "new_full": new_full,
        "new_tensor": new_tensor,
        "untyped_storage": untyped_storage,
        **{f"{op}_": _inplace_of(op) for op in ("addmm", "addmv", "addbmm", "baddbmm")},
    }
    for name, fn in methods.items():
        fn.__name__ = name
        setattr(Tensor, name, fn)
    # NumPy defers to the tensor's reflected operators (np.float64(2) * t).
    Tensor.__array_priority__ = 1000


_install()


class _LegacyTensorType(type):
    """``isinstance(t, rtorch.FloatTensor)`` checks the dtype, as in PyTorch."""

    dtype: _C.dtype

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype


def _legacy_type(name: str, dtype: _C.dtype) -> type:
    def __new__(cls, *args: Any, device: Any = None):
        if len(args) == 1 and isinstance(args[0], Tensor):
            return args[0].to(dtype)
        if (
            len(args) == 1
            and not isinstance(args[0], builtins.int)
            and type(args[0]).__name__ != "Size"
        ):
            return _C.tensor(args[0], dtype=dtype)
        # No arguments means an empty 1-d tensor, as `Tensor()`.
        return _C.empty(*(args or (0,)), dtype=dtype)

    return _LegacyTensorType(name, (), {"__new__": __new__, "dtype": dtype})


LEGACY_TYPES = {
    name.split(".")[1]: _legacy_type(name.split(".")[1], dt) for dt, name in _TYPE_NAMES.items()
}
