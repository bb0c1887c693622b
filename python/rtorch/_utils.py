"""Functions that checkpoints name to rebuild tensors (PyTorch's
``torch._utils._rebuild_*``; a checkpoint written by either library refers
to them as ``torch._utils.<name>``)."""

from __future__ import annotations

from typing import Any

import rtorch
from rtorch._C import Tensor
from rtorch.storage import TypedStorage


def _int_tuple(what: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list, rtorch.Size)) or not all(type(v) is int for v in value):
        raise TypeError(f"tensor {what} must be a tuple of ints, got {value!r}")
    return tuple(value)


def _rebuild_tensor(storage: TypedStorage, storage_offset: int, size: Any, stride: Any) -> Tensor:
    """The tensor of ``size`` and ``stride`` at ``storage_offset`` elements
    into ``storage`` (a view: tensors rebuilt over one storage share it)."""
    if not isinstance(storage, TypedStorage):
        raise TypeError(f"expected a storage, got {type(storage).__name__}")
    if type(storage_offset) is not int:
        raise TypeError(f"storage offset must be an int, got {storage_offset!r}")
    size, stride = _int_tuple("size", size), _int_tuple("stride", stride)
    return storage._flat().as_strided(size, stride, storage_offset)


def _rebuild_tensor_v2(
    storage: TypedStorage,
    storage_offset: int,
    size: Any,
    stride: Any,
    requires_grad: bool,
    backward_hooks: Any,
    metadata: Any = None,
) -> Tensor:
    """:func:`_rebuild_tensor`, then ``requires_grad``. Hooks are never
    serialized (the argument is an empty ``OrderedDict``); ``metadata``
    carries flags rtorch tensors do not have and must be empty."""
    t = _rebuild_tensor(storage, storage_offset, size, stride)
    if metadata:
        raise RuntimeError(f"tensor metadata {metadata!r} is not supported by rtorch")
    if type(requires_grad) is not bool:
        raise TypeError(f"requires_grad must be a bool, got {requires_grad!r}")
    t.requires_grad = requires_grad
    return t


def _rebuild_parameter(data: Tensor, requires_grad: bool, backward_hooks: Any) -> Any:
    """``nn.Parameter(data, requires_grad)``."""
    return rtorch.nn.Parameter(data, requires_grad)


def _rebuild_parameter_with_state(
    data: Tensor, requires_grad: bool, backward_hooks: Any, state: Any
) -> Any:
    """:func:`_rebuild_parameter`, then the Python attributes in ``state``."""
    param = rtorch.nn.Parameter(data, requires_grad)
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
        for k, v in (slots or {}).items():
            setattr(param, k, v)
    for k, v in (state or {}).items():
        setattr(param, k, v)
    return param
