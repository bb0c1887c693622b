"""Function forms of tensor methods (``rtorch.exp(t)`` is ``t.exp()``) and the
functions whose first argument need not be a tensor. The math is in Rust;
this module only routes arguments."""

from __future__ import annotations

import warnings
from typing import Any

from rtorch import _C, return_types  # noqa: F401  (rtorch.return_types)
from rtorch._C import Tensor, bucketize, searchsorted
from rtorch._dtype_info import check_cast

# Methods whose function form takes the tensor first and the same arguments.
_METHODS = """
abs absolute neg negative sign sgn exp exp2 expm1 log log2 log10 log1p sqrt rsqrt
square reciprocal sin cos tan asin arcsin acos arccos atan arctan sinh cosh tanh
asinh arcsinh acosh arccosh atanh arctanh sigmoid logit erf erfc erfinv lgamma
digamma floor ceil round trunc fix frac clamp clip clamp_min clamp_max nan_to_num
isnan isinf isfinite isneginf isposinf signbit logical_not bitwise_not relu
add sub subtract mul multiply div divide true_divide floor_divide remainder fmod
float_power atan2 arctan2 maximum minimum fmax fmin hypot logaddexp logaddexp2
copysign xlogy bitwise_and bitwise_or bitwise_xor bitwise_left_shift
bitwise_right_shift logical_and logical_or logical_xor eq ne not_equal lt less le
less_equal gt greater ge greater_equal lerp addcmul addcdiv isclose allclose equal
masked_fill reshape permute transpose swapaxes swapdims t squeeze unsqueeze
flatten unflatten narrow select as_strided diagonal clone detach
abs_ neg_ exp_ log_ sqrt_ sigmoid_ tanh_ relu_ clamp_ fill_ zero_ softmax log_softmax
split split_with_sizes chunk tensor_split unbind movedim moveaxis flip fliplr flipud
roll rot90 tile broadcast_to gather scatter scatter_add scatter_reduce
index_select index_add index_copy index_fill index_put index_put_ masked_select
masked_scatter take take_along_dim nonzero argwhere tril triu diag diag_embed trace
outer ger inner cross kron
mm bmm mv dot vdot addmm addmv addbmm baddbmm _addmm_activation
sum nansum mean nanmean prod amax amin aminmax max min argmax argmin var std
var_mean std_mean norm logsumexp cumsum cumprod cummax cummin all any
count_nonzero median nanmedian mode quantile nanquantile kthvalue topk sort
argsort msort unique unique_consecutive bincount histc
""".split()


# Function forms PyTorch gives no ``out=`` (views, in-place methods, ops
# returning variable shapes or Python values).
_NO_OUT = set(
    """
reshape permute transpose swapaxes swapdims t squeeze unsqueeze flatten unflatten narrow
select as_strided diagonal clone detach split split_with_sizes chunk tensor_split unbind
movedim moveaxis broadcast_to softmax log_softmax allclose equal isclose unique
unique_consecutive count_nonzero masked_fill var_mean std_mean isnan isinf isfinite
index_put_ fliplr flipud
""".split()
)


def _write_out(name: str, result: Any, out: Any) -> Any:
    """Stores ``result`` in ``out`` as PyTorch's ``out=`` does: resized when
    its shape differs (warning when it held elements), cast to its dtype
    when the result's dtype casts to it, never recorded by autograd."""
    if isinstance(result, tuple):
        if not isinstance(out, (tuple, list)) or len(out) != len(result):
            raise TypeError(f"{name}(): argument 'out' must be tuple of {len(result)} Tensors")
        outs = [_write_out(name, r, o) for r, o in zip(result, out, strict=True)]
        return type(result)(*outs) if hasattr(result, "_fields") else tuple(outs)
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if result.requires_grad:
        raise RuntimeError(
            f"{name}(): functions with out=... arguments don't support automatic "
            "differentiation, but one of the arguments requires grad."
        )
    check_cast(result.dtype, out.dtype)
    if out.shape != result.shape:
        if out.numel() != 0:
            warnings.warn(
                f"An output with one or more elements was resized since it had shape "
                f"{list(out.shape)}, which does not match the required output shape "
                f"{list(result.shape)}. This behavior is deprecated, and in a future PyTorch "
                "release outputs will not be resized unless they have zero elements. You can "
                "explicitly reuse an out tensor t by resizing it, inplace, to zero elements "
                "with t.resize_(0).",
                UserWarning,
                stacklevel=3,
            )
        out.resize_(result.shape)
    return out.copy_(result)


def _method(name: str):
    method = getattr(Tensor, name)
    if name in _NO_OUT or name.endswith("_") or "out" in (method.__text_signature__ or ""):

        def fn(input: Tensor, *args: Any, **kwargs: Any) -> Any:
            return getattr(input, name)(*args, **kwargs)
    else:

        def fn(input: Tensor, *args: Any, out: Any = None, **kwargs: Any) -> Any:
            result = getattr(input, name)(*args, **kwargs)
            return result if out is None else _write_out(name, result, out)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Function form of :meth:`rtorch.Tensor.{name}`."
    return fn


for _name in _METHODS:
    globals()[_name] = _method(_name)


def polygamma(n: int, input: Tensor, *, out: Tensor | None = None) -> Tensor:
    """The ``n``-th derivative of :func:`digamma` (``polygamma(0, x)`` is digamma).

    Example::

        >>> import rtorch
        >>> rtorch.polygamma(1, rtorch.tensor([1.0, 0.5]))  # trigamma: pi^2/6, pi^2/2
        tensor([1.6449, 4.9348])
    """
    result = input.polygamma(n)
    return result if out is None else _write_out("polygamma", result, out)


def pow(input: Any, exponent: Any, *, out: Tensor | None = None) -> Tensor:
    """``input ** exponent``; either may be a Python number.

    Example::

        >>> import rtorch
        >>> rtorch.pow(2, rtorch.tensor([1, 2, 3]))
        tensor([2, 4, 8])
    """
    if not isinstance(input, Tensor):
        result = exponent.__rpow__(input)
        return result if out is None else _write_out("pow", result, out)
    result = input.__pow__(exponent)
    if result is NotImplemented:
        raise TypeError(f"pow(): unsupported exponent of type {type(exponent).__name__}")
    return result if out is None else _write_out("pow", result, out)


def where(condition: Tensor, input: Any = None, other: Any = None) -> Any:
    """Elements of ``input`` where ``condition`` holds, else of ``other``.

    With only ``condition``, the indices of its non-zero elements
    (``nonzero(as_tuple=True)``).

    Example::

        >>> import rtorch
        >>> x = rtorch.tensor([1.0, -2.0, 3.0])
        >>> rtorch.where(x > 0, x, 0.0)
        tensor([1., 0., 3.])
    """
    if input is None and other is None:
        return condition.nonzero(as_tuple=True)
    return _C._where(condition, input, other)


from rtorch._C import (  # noqa: E402
    broadcast_tensors,
    cartesian_prod,
    cat,
    cdist,
    combinations,
    einsum,
    meshgrid,
    stack,
    tensordot,
)

concat = cat


def concatenate(tensors: Any, axis: int = 0, *, out: Tensor | None = None) -> Tensor:
    """:func:`cat` with NumPy's ``axis`` name."""
    return cat(tensors, axis, out=out)


def hstack(tensors: Any, *, out: Tensor | None = None) -> Tensor:
    """Concatenates along the first dim of 1-d inputs, else the second.

    Example::

        >>> import rtorch
        >>> rtorch.hstack([rtorch.tensor([1, 2]), rtorch.tensor([3])])
        tensor([1, 2, 3])
    """
    return _C._hvdstack(tensors, "h", out=out)


def vstack(tensors: Any, *, out: Tensor | None = None) -> Tensor:
    """Stacks rows: inputs become at least 2-d, then join along dim 0."""
    return _C._hvdstack(tensors, "v", out=out)


def dstack(tensors: Any, *, out: Tensor | None = None) -> Tensor:
    """Stacks depth-wise: inputs become at least 3-d, then join along dim 2."""
    return _C._hvdstack(tensors, "d", out=out)


row_stack = vstack


def _atleast(n: int, tensors: tuple) -> Any:
    if len(tensors) == 1 and not isinstance(tensors[0], Tensor):
        tensors = tuple(tensors[0])
    out = tuple(_C._atleast(t, n) for t in tensors)
    return out[0] if len(out) == 1 else out


def atleast_1d(*tensors: Any) -> Any:
    """Views of the inputs with at least one dim."""
    return _atleast(1, tensors)


def atleast_2d(*tensors: Any) -> Any:
    """Views of the inputs with at least two dims."""
    return _atleast(2, tensors)


def atleast_3d(*tensors: Any) -> Any:
    """Views of the inputs with at least three dims."""
    return _atleast(3, tensors)


def repeat_interleave(
    input: Tensor,
    repeats: Any = None,
    dim: int | None = None,
    *,
    output_size: int | None = None,
) -> Tensor:
    """Repeats elements; ``repeat_interleave(repeats)`` alone gives the
    indices ``i`` repeated ``repeats[i]`` times.

    Example::

        >>> import rtorch
        >>> rtorch.repeat_interleave(rtorch.tensor([1, 2]), 2)
        tensor([1, 1, 2, 2])
    """
    if repeats is None:
        return _C._repeat_index(input)
    return input.repeat_interleave(repeats, dim, output_size=output_size)


def matmul(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    """The matrix product of two tensors, with PyTorch's rank and batch rules.

    Example::

        >>> import rtorch
        >>> rtorch.matmul(rtorch.ones(2, 3), rtorch.ones(3))
        tensor([3., 3.])
    """
    result = input.matmul(other)
    return result if out is None else _write_out("matmul", result, out)


def det(input: Tensor) -> Tensor:
    """Alias of :func:`rtorch.linalg.det`."""
    return _C._linalg_det(input)


def inverse(input: Tensor) -> Tensor:
    """Alias of :func:`rtorch.linalg.inv`."""
    return _C._linalg_inv(input)


def slogdet(input: Tensor) -> Any:
    """Alias of :func:`rtorch.linalg.slogdet`."""
    from rtorch.linalg import slogdet as _slogdet

    return _slogdet(input)


__all__ = [
    *_METHODS,
    "matmul",
    "det",
    "inverse",
    "slogdet",
    "pow",
    "polygamma",
    "where",
    "searchsorted",
    "bucketize",
    "broadcast_tensors",
    "cartesian_prod",
    "cat",
    "concat",
    "concatenate",
    "cdist",
    "combinations",
    "einsum",
    "meshgrid",
    "stack",
    "tensordot",
    "hstack",
    "vstack",
    "dstack",
    "row_stack",
    "atleast_1d",
    "atleast_2d",
    "atleast_3d",
    "repeat_interleave",
]
