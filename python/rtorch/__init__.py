"""rtorch: PyTorch's programming model with a Rust core.

``import rtorch as torch`` and keep your code.
"""

from __future__ import annotations

import builtins as _builtins
import sys as _sys
from typing import Any

from rtorch import _C
from rtorch._C import (
    Generator,
    OutOfMemoryError,
    Tensor,
    arange,
    as_tensor,
    bernoulli,
    bfloat16,
    bool,
    can_cast,
    default_generator,
    device,
    dtype,
    empty,
    empty_like,
    eye,
    float16,
    float32,
    float64,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    get_default_dtype,
    get_num_threads,
    get_rng_state,
    initial_seed,
    int8,
    int16,
    int32,
    int64,
    linspace,
    logspace,
    manual_seed,
    normal,
    ones,
    ones_like,
    promote_types,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    result_type,
    seed,
    set_default_dtype,
    set_num_threads,
    set_rng_state,
    tensor,
    uint8,
    zeros,
    zeros_like,
)
from rtorch._dtype_info import finfo, iinfo
from rtorch._size import Size
from rtorch._tensor import LEGACY_TYPES as _LEGACY_TYPES
from rtorch._tensor_str import get_printoptions, printoptions, set_printoptions

Tensor._set_size_class(Size)

float = float32
double = float64
half = float16
long = int64
int = int32
short = int16

FloatTensor = _LEGACY_TYPES["FloatTensor"]
DoubleTensor = _LEGACY_TYPES["DoubleTensor"]
HalfTensor = _LEGACY_TYPES["HalfTensor"]
BFloat16Tensor = _LEGACY_TYPES["BFloat16Tensor"]
LongTensor = _LEGACY_TYPES["LongTensor"]
IntTensor = _LEGACY_TYPES["IntTensor"]
ShortTensor = _LEGACY_TYPES["ShortTensor"]
CharTensor = _LEGACY_TYPES["CharTensor"]
ByteTensor = _LEGACY_TYPES["ByteTensor"]
BoolTensor = _LEGACY_TYPES["BoolTensor"]

__version__ = "0.1.0"


def is_tensor(obj: Any) -> _builtins.bool:
    """Whether ``obj`` is an ``rtorch.Tensor``."""
    return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> _builtins.bool:
    """Whether ``input`` has a floating point dtype."""
    return input.is_floating_point()


def numel(input: Tensor) -> _builtins.int:
    """The number of elements of ``input``."""
    return input.numel()


def broadcast_shapes(*shapes: Any) -> Size:
    """The shape that tensors of ``shapes`` broadcast to, with PyTorch's errors.

    Example::

        >>> import rtorch
        >>> rtorch.broadcast_shapes((2, 1), (3,))
        torch.Size([2, 3])
    """
    result: list = []
    for i, s in enumerate(shapes):
        dims = [s] if isinstance(s, _builtins.int) else list(s)
        n = _builtins.max(len(result), len(dims))
        a = [1] * (n - len(result)) + result
        b = [1] * (n - len(dims)) + dims
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            if y < 0:
                raise RuntimeError(f"Trying to create tensor with negative dimension {y}: {dims}")
            if x != y and x != 1 and y != 1:
                raise RuntimeError(
                    "Shape mismatch: objects cannot be broadcast to a single shape.  "
                    f"Mismatch is between arg {i - 1} and arg {i}."
                )
            a[k] = y if x == 1 else x
        result = a
    return Size(result)


from rtorch import autograd, cuda, linalg, testing  # noqa: E402
from rtorch._C import is_grad_enabled, is_inference_mode_enabled  # noqa: E402
from rtorch._ops import *  # noqa: F403
from rtorch._ops import _addmm_activation  # noqa: E402,F401
from rtorch.autograd.grad_mode import (  # noqa: E402
    enable_grad,
    inference_mode,
    no_grad,
    set_grad_enabled,
)

# Loaded on first use, keeping `import rtorch` to the extension and the core
# API (serialization alone would add ~20 ms of imports: pickle, zlib...).
_LAZY_SUBMODULES = ("multiprocessing", "nn", "optim", "serialization", "storage", "utils")
_LAZY_ATTRS = {
    "save": "serialization",
    "load": "serialization",
    "UntypedStorage": "storage",
    "TypedStorage": "storage",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"rtorch.{name}")
    if name in _LAZY_ATTRS:
        return getattr(importlib.import_module(f"rtorch.{_LAZY_ATTRS[name]}"), name)
    raise AttributeError(f"module 'rtorch' has no attribute {name!r}")


if "multiprocessing" in _sys.modules:
    # The standard module is loaded already: register the shared-memory
    # reducers now (cheap), so its queues send tensors as handles.
    from rtorch import multiprocessing  # noqa: E402, F401
