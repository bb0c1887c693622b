"""``rtorch.nn.functional``: stateless layers, activations and losses.

Everything here is a composition of rtorch ops, so autograd differentiates
it with the ops' own derivatives. A few formulations avoid ops whose
derivative is not registered yet: ``where``/``masked_fill`` become a blend
with a 0/1 mask, ``gather`` becomes advanced indexing, norms are written as
sums of powers (see ``_norm``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import rtorch
from rtorch._C import Tensor, _activation

__all__ = [
    "linear", "bilinear", "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "elu",
    "elu_", "selu", "celu", "gelu", "silu", "mish", "softplus", "softsign", "hardtanh",
    "hardtanh_", "hardsigmoid", "hardswish", "sigmoid", "tanh", "logsigmoid", "softshrink",
    "hardshrink", "tanhshrink", "threshold", "threshold_", "glu", "prelu", "softmax",
    "log_softmax", "softmin", "dropout", "alpha_dropout", "dropout1d", "dropout2d",
    "dropout3d", "one_hot", "normalize", "cosine_similarity", "pairwise_distance",
    "embedding", "pad", "l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss", "nll_loss",
    "cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
    "poisson_nll_loss", "gaussian_nll_loss", "margin_ranking_loss", "hinge_embedding_loss",
    "soft_margin_loss", "cosine_embedding_loss", "triplet_margin_loss",
    "multilabel_soft_margin_loss", "multi_margin_loss", "layer_norm", "group_norm",
    "batch_norm",
]  # fmt: skip

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


# ---------------------------------------------------------------- helpers


def _mask(cond: Tensor, like: Tensor) -> Tensor:
    """A 0/1 tensor of ``like``'s dtype: ``where`` as a product (see module docstring)."""
    return cond.to(like.dtype)


def _norm(x: Tensor, p: float, dim: int, keepdim: bool = False) -> Tensor:
    """The ``p``-norm along ``dim``, with a zero (not NaN) gradient at the zero vector,
    as ``torch.norm``'s derivative has."""
    if p == math.inf:
        return x.abs().amax(dim, keepdim=keepdim)
    s = x.abs().pow(p).sum(dim, keepdim=keepdim)
    zero = _mask(s == 0, s)
    # pow(1/p) has an infinite slope at 0: evaluate it away from 0, then mask.
    return (s + zero).pow(1.0 / p) * (1 - zero)


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    warnings.warn(
        "size_average and reduce args will be deprecated, please use reduction='"
        + ("none" if reduce is False else "mean" if size_average in (None, True) else "sum")
        + "' instead.",
        stacklevel=3,
    )
    if reduce is False:
        return "none"
    return "mean" if size_average in (None, True) else "sum"


def _check_reduction(reduction: str) -> None:
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    _check_reduction(reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _warn_size(input: Tensor, target: Tensor) -> None:
    if target.size() != input.size():
        warnings.warn(
            f"Using a target size ({target.size()}) that is different to the input size "
            f"({input.size()}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.",
            stacklevel=3,
        )


def _channel_view(t: Tensor, ndim: int) -> Tensor:
    """A per-channel ``(C,)`` tensor shaped to broadcast over dim 1 of an ``ndim`` input."""
    return t.reshape([1, -1] + [1] * (ndim - 2)) if ndim >= 2 else t


# ---------------------------------------------------------------- linear layers


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y = x W^T + b``.

    Shape:
        - input: ``(*, in_features)``; weight: ``(out_features, in_features)``
          or ``(in_features,)``; bias: ``(out_features,)`` or ``()``.
        - output: ``(*, out_features)`` (or ``(*)`` for a 1-D weight).

    Example::

        >>> import rtorch
        >>> linear(rtorch.ones(2, 3), rtorch.ones(4, 3), rtorch.zeros(4))[0]
        tensor([3., 3., 3., 3.])
    """
    out = input.matmul(weight.t() if weight.dim() == 2 else weight)
    return out if bias is None else out + bias


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y_o = x1^T W_o x2 + b_o``.

    Shape:
        - input1: ``(*, in1)``; input2: ``(*, in2)``; weight ``(out, in1, in2)``.
        - output: ``(*, out)``.
    """
    out = rtorch.einsum("...i,oij,...j->...o", input1, weight, input2)
    return out if bias is None else out + bias


# ---------------------------------------------------------------- activations


def _act(input: Tensor, name: str, *params: float, inplace: bool = False) -> Tensor:
    return _activation(input, name, *params, inplace=inplace)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """``max(0, x)`` elementwise.

    Example::

        >>> import rtorch
        >>> relu(rtorch.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """
    return _act(input, "relu", inplace=inplace)


def relu_(input: Tensor) -> Tensor:
    """In-place :func:`relu`."""
    return relu(input, inplace=True)


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """``clamp(x, min_val, max_val)``."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _act(input, "hardtanh", min_val, max_val, inplace=inplace)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """In-place :func:`hardtanh`."""
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(0, x), 6)``."""
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` where positive, else ``negative_slope * x``."""
    return _act(input, "leaky_relu", negative_slope, inplace=inplace)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """In-place :func:`leaky_relu`."""
    return leaky_relu(input, negative_slope, inplace=True)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` where positive, else ``alpha * (exp(x) - 1)``."""
    return _act(input, "elu", alpha, 1.0, 1.0, inplace=inplace)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place :func:`elu`."""
    return elu(input, alpha, inplace=True)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """``scale * elu(x, alpha)`` with the self-normalising constants."""
    return _act(input, "elu", _SELU_ALPHA, _SELU_SCALE, 1.0, inplace=inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError")
    return _act(input, "elu", alpha, 1.0, 1.0 / alpha, inplace=inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)``; ``approximate='tanh'`` uses the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    return _act(input, "gelu" if approximate == "none" else "gelu_tanh")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)``."""
    return _act(input, "silu", inplace=inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``."""
    return _act(input, "mish", inplace=inplace)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``."""
    return _act(input, "softplus", beta, threshold)


def softsign(input: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    return _act(input, "softsign")


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``relu6(x + 3) / 6``."""
    return _act(input, "hardsigmoid", inplace=inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * relu6(x + 3) / 6``."""
    return _act(input, "hardswish", inplace=inplace)


def sigmoid(input: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``."""
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return input.tanh()


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x))``, computed stably."""
    return _act(input, "logsigmoid")


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0."""
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return _act(input, "softshrink", lambd)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0."""
    return _act(input, "hardshrink", lambd)


def tanhshrink(input: Tensor) -> Tensor:
    """``x - tanh(x)``."""
    return _act(input, "tanhshrink")


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x`` where ``x > threshold``, else ``value``."""
    return _act(input, "threshold", threshold, value, inplace=inplace)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    """In-place :func:`threshold`."""
    return _act(input, "threshold", threshold, value, inplace=True)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: ``a * sigmoid(b)`` where ``a, b`` are the halves of ``dim``."""
    if input.dim() == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = dim % input.dim()
    if input.size(d) % 2:
        raise RuntimeError(
            f"Halving dimension must be even, but dimension {d} is size {input.size(d)}"
        )
    a, b = input.chunk(2, d)
    return a * b.sigmoid()


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``max(0, x) + weight * min(0, x)``, ``weight`` one value or one per channel (dim 1)."""
    w = _channel_view(weight, input.dim()) if weight.numel() > 1 else weight
    return relu(input) - w * relu(-input)


def _softmax_dim(ndim: int) -> int:
    warnings.warn(
        "Implicit dimension choice for softmax has been deprecated. "
        "Change the call to include dim=X as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``.

    Example::

        >>> import rtorch
        >>> softmax(rtorch.zeros(4), dim=0)
        tensor([0.2500, 0.2500, 0.2500, 0.2500])
    """
    if dim is None:
        dim = _softmax_dim(input.dim())
    return (input if dtype is None else input.to(dtype)).softmax(dim)


def log_softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``log(softmax(x))`` along ``dim``, computed stably."""
    if dim is None:
        dim = _softmax_dim(input.dim())
    return (input if dtype is None else input.to(dtype)).log_softmax(dim)


def softmin(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """``softmax(-x)`` along ``dim``."""
    if dim is None:
        dim = _softmax_dim(input.dim())
    return (-(input if dtype is None else input.to(dtype))).softmax(dim)


# ---------------------------------------------------------------- dropout


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _keep_mask(input: Tensor, p: float, shape: Sequence[int] | None = None) -> Tensor:
    shape = input.shape if shape is None else shape
    return rtorch.empty(shape, dtype=input.dtype).bernoulli_(1 - p)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``
    (only when ``training``).

    Example::

        >>> import rtorch
        >>> dropout(rtorch.ones(4), p=0.5, training=False)
        tensor([1., 1., 1., 1.])
    """
    _check_p(p)
    if not training or p == 0.0:
        return input
    scale = _keep_mask(input, p) / (1 - p) if p < 1 else rtorch.zeros_like(input)
    return input.mul_(scale) if inplace else input * scale


def _feature_dropout(
    input: Tensor, p: float, training: bool, inplace: bool, name: str, batched: int
) -> Tensor:
    _check_p(p)
    if input.dim() not in (batched - 1, batched):
        raise RuntimeError(
            f"{name}: Expected {batched - 1}D or {batched}D input, but received a "
            f"{input.dim()}D input."
        )
    if not training or p == 0.0:
        return input
    # One draw per channel, broadcast over the feature map.
    lead = 2 if input.dim() == batched else 1
    shape = list(input.shape[:lead]) + [1] * (input.dim() - lead)
    scale = _keep_mask(input, p, shape) / (1 - p) if p < 1 else input.new_zeros(shape)
    return input.mul_(scale) if inplace else input * scale


def dropout1d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of an ``(N, C, L)`` or ``(C, L)`` input with probability ``p``."""
    return _feature_dropout(input, p, training, inplace, "dropout1d", 3)


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of an ``(N, C, H, W)`` or ``(C, H, W)`` input with probability ``p``."""
    return _feature_dropout(input, p, training, inplace, "dropout2d", 4)


def dropout3d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of an ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input."""
    return _feature_dropout(input, p, training, inplace, "dropout3d", 5)


def alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """Dropout that keeps SELU's zero mean and unit variance: dropped elements
    take SELU's negative saturation value, then an affine map restores the
    moments."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1:
        return input.mul_(0) if inplace else input * 0
    alpha = -_SELU_ALPHA * _SELU_SCALE
    keep = _keep_mask(input, p)
    q = 1 - p
    a = (q + alpha * alpha * q * p) ** -0.5
    b = -a * alpha * p
    # a * (x * keep + alpha * (1 - keep)) + b, written as x * scale + shift.
    scale = keep * a
    shift = (1 - keep) * (a * alpha) + b
    return input.mul_(scale).add_(shift) if inplace else input * scale + shift


# ---------------------------------------------------------------- sparse and distance


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Int64 one-hot encoding along a new last dim of ``num_classes`` (``-1``: max + 1).

    Example::

        >>> import rtorch
        >>> one_hot(rtorch.tensor([0, 2]), 3)
        tensor([[1, 0, 0],
                [0, 0, 1]])
    """
    if tensor.dtype != rtorch.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if tensor.numel() and int(tensor.min()) < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        if tensor.numel() == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(tensor.max()) + 1
    elif tensor.numel() and int(tensor.max()) >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    return (tensor.unsqueeze(-1) == rtorch.arange(num_classes)).long()


def normalize(
    input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Tensor | None = None
) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim``."""
    result = input / _norm(input, p, dim, keepdim=True).clamp_min(eps)
    if out is not None:
        return out.copy_(result)
    return result


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x1 . x2 / (max(||x1||, eps) * max(||x2||, eps))`` along ``dim`` (inputs broadcast)."""
    n1 = _norm(x1, 2, dim, keepdim=True).clamp_min(eps)
    n2 = _norm(x2, 2, dim, keepdim=True).clamp_min(eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """``||x1 - x2 + eps||_p`` along the last dim."""
    diff = x1 - x2 + eps
    return _norm(diff, p, -1, keepdim=keepdim)


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` picked by the integer ``input``.

    ``padding_idx``'s row gets no gradient; ``max_norm`` renormalises (in
    place, without grad) every picked row whose norm exceeds it.

    Shape:
        - input: ``(*)`` integer indices; weight: ``(num_embeddings, embedding_dim)``.
        - output: ``(*, embedding_dim)``.
    """
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse are not supported")
    n = weight.size(0)
    if padding_idx is not None:
        if padding_idx > 0:
            if padding_idx >= n:
                raise AssertionError("Padding_idx must be within num_embeddings")
        elif padding_idx < 0:
            if padding_idx < -n:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = n + padding_idx
    if input.is_floating_point():
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar "
            f"types: Long, Int; but got {input.type()} instead (while checking arguments for "
            "embedding)"
        )
    if input.numel() and (int(input.max()) >= n or int(input.min()) < 0):
        raise IndexError("index out of range in self")
    if max_norm is not None:
        with rtorch.no_grad():
            rows = input.reshape(-1).unique()
            picked = weight[rows]
            norms = _norm(picked, norm_type, 1, keepdim=True)
            over = _mask(norms > max_norm, norms)
            scale = over * (max_norm / (norms + 1e-7)) + (1 - over)
            weight[rows] = picked * scale
    out = weight[input]
    if padding_idx is not None:
        # Same values; the padding rows' copy is detached so they get no gradient.
        pad = _mask(input == padding_idx, out).unsqueeze(-1)
        out = out * (1 - pad) + out.detach() * pad
    return out


def pad(
    input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims: ``pad = (last_left, last_right,
    second_last_left, ...)``. Modes: ``constant`` (with ``value``; negative
    pads crop), ``reflect``, ``replicate``, ``circular``.

    Example::

        >>> import rtorch
        >>> pad(rtorch.ones(1, 2), (1, 0), value=5.0)
        tensor([[5., 1., 1.]])
    """
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.dim():
        raise RuntimeError(
            "Padding length should be less than or equal to two times the input dimension "
            f"but got padding length {len(pad)} and input of dimension {input.dim()}"
        )
    if mode != "constant" and value not in (None, 0):
        raise ValueError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    out = input
    for i in range(len(pad) // 2):
        d = input.dim() - 1 - i
        left, right = pad[2 * i], pad[2 * i + 1]
        size = out.size(d)
        if mode == "constant":
            if left < 0:
                out, size, left = out.narrow(d, -left, size + left), size + left, 0
            if right < 0:
                out, size, right = out.narrow(d, 0, size + right), size + right, 0
            parts = []
            for width in (left, right):
                shape = list(out.shape)
                shape[d] = width
                parts.append(out.new_full(shape, 0.0 if value is None else value))
            out = rtorch.cat([parts[0], out, parts[1]], d)
            continue
        pos = rtorch.arange(-left, size + right)
        if mode == "replicate":
            idx = pos.clamp(0, size - 1)
        elif mode == "circular":
            if left > size or right > size:
                raise RuntimeError("Padding value causes wrapping around more than once.")
            idx = pos.remainder(size)
        else:
            if left >= size or right >= size:
                raise RuntimeError(
                    f"Argument #4: Padding size should be less than the corresponding input "
                    f"dimension, but got: padding ({left}, {right}) at dimension {d} of input "
                    f"{list(input.shape)}"
                )
            idx = (size - 1) - ((size - 1) - pos.abs()).abs()
        out = out[(slice(None),) * d + (idx,)]
    return out


# ---------------------------------------------------------------- regression losses


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``|input - target|``, reduced."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _warn_size(input, target)
    return _reduce((input - target).abs(), reduction)


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """``(input - target)^2``, reduced.

    Example::

        >>> import rtorch
        >>> mse_loss(rtorch.tensor([1.0, 3.0]), rtorch.tensor([0.0, 0.0]))
        tensor(5.)
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _warn_size(input, target)
    loss = (input - target).square()
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _blend(cond: Tensor, a: Tensor, b: Tensor) -> Tensor:
    m = _mask(cond, a)
    return a * m + b * (1 - m)


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = input - target``)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _warn_size(input, target)
    d = (input - target).abs()
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(_blend(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


def huber_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``."""
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _warn_size(input, target)
    d = (input - target).abs()
    loss = _blend(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- classification losses


def _class_dim_last(input: Tensor) -> Tensor:
    """``(N, C, d1, ...)`` as ``(N * d1 * ..., C)``."""
    return input.movedim(1, -1).reshape(-1, input.size(1))


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log likelihood: ``-weight[t] * input[n, t]`` for class indices ``t``.

    Args:
        input: log-probabilities ``(N, C)``, ``(C)`` or ``(N, C, d1, ...)``.
        target: class indices ``(N)``, ``()`` or ``(N, d1, ...)``.
        weight: a weight per class ``(C)``.
        ignore_index: a target value that contributes nothing (nor to the mean's divisor).
        reduction: ``'none'``, ``'mean'`` (weighted mean) or ``'sum'``.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if target.is_floating_point() or target.dtype == rtorch.bool:
        raise RuntimeError(
            f"expected target dtype to be Long or Byte, but got {str(target.dtype)[6:].title()}"
        )
    if input.dim() < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.dim()})")
    unbatched = input.dim() == 1
    if unbatched:
        if target.dim() != 0:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        input, target = input.unsqueeze(0), target.unsqueeze(0)
    if input.size(0) != target.size(0):
        raise ValueError(
            f"Expected input batch_size ({input.size(0)}) to match target batch_size "
            f"({target.size(0)})."
        )
    if input.dim() > 2 and tuple(input.shape[2:]) != tuple(target.shape[1:]):
        raise RuntimeError(
            f"Expected target size {[input.size(0)] + list(input.shape[2:])}, "
            f"got {list(target.shape)}"
        )
    n_classes = input.size(1)
    if weight is not None and weight.numel() != n_classes:
        raise RuntimeError(
            f"weight tensor should be defined either for all {n_classes} classes or no classes"
            f" but got weight tensor of shape: {list(weight.shape)}"
        )
    flat_t = target.reshape(-1).long()
    valid = flat_t != ignore_index
    bad = valid & ((flat_t < 0) | (flat_t >= n_classes))
    if bool(bad.any()):
        raise IndexError(f"Target {int(flat_t[bad][0])} is out of bounds.")
    safe_t = flat_t * valid.long()
    rows = _class_dim_last(input)
    picked = rows[rtorch.arange(rows.size(0)), safe_t]
    w = _mask(valid, picked) if weight is None else weight.to(picked.dtype)[safe_t] * valid
    loss = -picked * w
    if reduction == "none":
        return loss.reshape(target.shape[0:] if not unbatched else ())
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum()


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross entropy between ``softmax(input)`` over dim 1 and ``target``, given
    as class indices (like :func:`nll_loss`) or as class probabilities (the
    input's shape).

    Args:
        label_smoothing: mixes the target with the uniform distribution by this amount.

    Example::

        >>> import rtorch
        >>> round(cross_entropy(rtorch.zeros(2, 4), rtorch.tensor([0, 3])).item(), 4)
        1.3863
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing:g}")
    class_dim = 0 if input.dim() == 1 else 1
    logp = input.log_softmax(class_dim)
    n_classes = input.size(class_dim)
    if target.is_floating_point():
        if target.shape != input.shape:
            raise RuntimeError(
                f"Expected target size {list(input.shape)}, got {list(target.shape)}"
            )
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        per_class = logp * target
        if weight is not None:
            per_class = per_class * _channel_view(weight, input.dim())
        loss = -per_class.sum(class_dim)
        if reduction == "mean":
            return loss.sum() / (input.numel() // n_classes) if input.numel() else loss.sum() / 0
        return _reduce(loss, reduction)
    nll = nll_loss(logp, target, weight, None, ignore_index, None, reduction)
    if label_smoothing == 0:
        return nll
    w = None if weight is None else _channel_view(weight.to(logp.dtype), input.dim())
    smooth = -(logp if w is None else logp * w).sum(class_dim)
    valid = target != ignore_index
    smooth = smooth * _mask(valid, smooth)
    if reduction == "mean":
        if weight is None:
            smooth = smooth.sum() / valid.sum()
        else:
            safe_t = target.long() * valid.long()
            smooth = smooth.sum() / (weight.to(logp.dtype)[safe_t] * valid).sum()
    elif reduction == "sum":
        smooth = smooth.sum()
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``-w (t log(x) + (1 - t) log(1 - x))`` for probabilities ``x``; the logs
    are clamped at -100 as in PyTorch."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if target.size() != input.size():
        raise ValueError(
            f"Using a target size ({target.size()}) that is different to the input size "
            f"({input.size()}) is deprecated. Please ensure they have the same size."
        )
    if bool(((input < 0) | (input > 1)).any()):
        raise RuntimeError("all elements of input should be between 0 and 1")
    log_x = input.log().clamp_min(-100)
    log_1mx = (1 - input).log().clamp_min(-100)
    loss = -(target * log_x + (1 - target) * log_1mx)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """:func:`binary_cross_entropy` of ``sigmoid(input)``, computed stably;
    ``pos_weight`` weighs the positive term (per class, broadcast over the last dim)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if target.size() != input.size():
        raise ValueError(
            f"Target size ({target.size()}) must be the same as input size ({input.size()})"
        )
    log_sig = logsigmoid(input)
    if pos_weight is None:
        loss = (1 - target) * input - log_sig
    else:
        loss = (1 - target) * input - ((pos_weight - 1) * target + 1) * log_sig
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence ``target * (log(target) - input)`` for
    log-probabilities ``input``; ``reduction='batchmean'`` divides the sum by
    the batch size (the mathematical definition)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            stacklevel=2,
        )
    if log_target:
        loss = target.exp() * (target - input)
    else:
        loss = rtorch.xlogy(target, target) - target * input
    if reduction == "batchmean":
        return loss.sum() / input.size(0) if input.dim() else loss.sum()
    return _reduce(loss, reduction)


def poisson_nll_loss(
    input: Tensor,
    target: Tensor,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Poisson negative log likelihood: ``exp(input) - target * input`` (log
    input) or ``input - target * log(input + eps)``; ``full`` adds Stirling's
    term where ``target > 1``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        t = target.clamp_min(1)
        stirling = t * t.log() - t + 0.5 * (2 * math.pi * t).log()
        loss = loss + stirling * _mask(target > 1, stirling)
    return _reduce(loss, reduction)


def gaussian_nll_loss(
    input: Tensor,
    target: Tensor,
    var: Tensor | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """Gaussian negative log likelihood ``0.5 (log(var) + (input - target)^2 / var)``
    (plus ``0.5 log(2 pi)`` with ``full``); ``var`` is clamped to at least ``eps``
    without affecting its gradient there, as in PyTorch."""
    if not isinstance(var, Tensor):
        var = rtorch.full_like(input, float(var))
    if var.size() != input.size():
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.size(-1) == 1):
            raise ValueError("var is of incorrect size")
    _check_reduction(reduction)
    if bool((var < 0).any()):
        raise ValueError("var has negative entry/entries")
    var = var.clone()
    with rtorch.no_grad():
        var.clamp_(min=eps)
    loss = 0.5 * (var.log() + (input - target).square() / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- margin and embedding losses


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``max(0, -target * (input1 - input2) + margin)``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if input1.dim() != input2.dim() or input1.dim() != target.dim():
        raise RuntimeError(
            "margin_ranking_loss : All input tensors should have same dimension but got "
            f"sizes: input1: {input1.size()}, input2: {input2.size()}, target: {target.size()} "
        )
    return _reduce((-target * (input1 - input2) + margin).clamp_min(0), reduction)


def hinge_embedding_loss(
    input: Tensor,
    target: Tensor,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``input`` where ``target == 1``; ``max(0, margin - input)`` where ``target == -1``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    margin_part = (margin - input).clamp_min(0) * _mask(target != 1, input)
    self_part = input * _mask(target != -1, input)
    return _reduce(margin_part + self_part, reduction)


def soft_margin_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``log(1 + exp(-target * input))``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _reduce((-target * input).exp().log1p(), reduction)


def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``1 - cos(x1, x2)`` where ``target == 1``; ``max(0, cos(x1, x2) - margin)``
    where ``target == -1``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if input1.dim() != input2.dim() or input1.dim() not in (1, 2):
        raise RuntimeError(
            f"1D target tensor expects 2D input tensors, but found inputs with sizes "
            f"{list(input1.shape)} and {list(input2.shape)}."
        )
    dim = input1.dim() - 1
    eps = 1e-12
    prod = (input1 * input2).sum(dim)
    mag = ((input1 * input1).sum(dim) + eps) * ((input2 * input2).sum(dim) + eps)
    cos = prod / mag.sqrt()
    pos = (1 - cos) * _mask(target == 1, cos)
    neg = (cos - margin).clamp_min(0) * _mask(target == -1, cos)
    return _reduce(pos + neg, reduction)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``max(d(a, p) - d(a, n) + margin, 0)`` with ``d`` the pairwise ``p``-distance;
    ``swap`` uses ``min(d(a, n), d(p, n))``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(
            f"TripletMarginLoss: expected margin to be greater than 0, got {margin} instead"
        )
    dims = (anchor.dim(), positive.dim(), negative.dim())
    if len(set(dims)) != 1:
        raise RuntimeError(
            "The anchor, positive, and negative tensors are expected to have the same number "
            f"of dimensions, but got: anchor {dims[0]}D, positive {dims[1]}D, and negative "
            f"{dims[2]}D inputs"
        )
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_swap = pairwise_distance(positive, negative, p, eps)
        # min(a, b) without minimum's derivative: (a + b - |a - b|) / 2.
        d_neg = (d_neg + d_swap - (d_neg - d_swap).abs()) / 2
    return _reduce((margin + d_pos - d_neg).clamp_min(0), reduction)


def multilabel_soft_margin_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Per-class logistic loss averaged over the classes (last dim)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(input.dim() - 1) / input.size(-1)
    return _reduce(loss, reduction)


def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Multi-class hinge loss: ``sum_{i != y} max(0, margin - x[y] + x[i])^p / C``,
    times ``weight[y]``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.dim() != 1:
        raise ValueError("weight must be one-dimensional")
    x = input if input.dim() == 2 else input.reshape(1, -1)
    t = target.reshape(-1)
    if x.size(0) != t.size(0):
        raise RuntimeError(
            f"inconsistent target size, expected {x.size(0)} but got {list(target.shape)}"
        )
    n_classes = x.size(1)
    x_y = x[rtorch.arange(x.size(0)), t].unsqueeze(1)
    z = (margin - x_y + x).clamp_min(0)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * weight[t].unsqueeze(1)
    others = _mask(t.unsqueeze(1) != rtorch.arange(n_classes), z)
    loss = (z * others).sum(1) / n_classes
    if input.dim() < 2:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- normalisation


def layer_norm(
    input: Tensor,
    normalized_shape: Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dims to zero mean and
    unit (biased) variance, then scale and shift.

    Example::

        >>> import rtorch
        >>> layer_norm(rtorch.tensor([[1.0, 3.0]]), (2,))
        tensor([[-1.0000,  1.0000]])
    """
    shape = tuple(normalized_shape)
    k = len(shape)
    if tuple(input.shape[input.dim() - k :]) != shape or k > input.dim():
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(str(s) for s in shape)}], but got input of size{list(input.shape)}"
        )
    dims = tuple(range(input.dim() - k, input.dim()))
    mean = input.mean(dims, keepdim=True)
    var = input.var(dims, unbiased=False, keepdim=True)
    out = (input - mean) * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each group of ``C / num_groups`` channels (with their spatial
    dims) per sample, then scale and shift per channel."""
    if input.dim() < 2:
        raise RuntimeError(
            f"Expected at least 2 dimensions for input tensor but received {input.dim()}"
        )
    n, c = input.size(0), input.size(1)
    if c % num_groups:
        raise RuntimeError(
            "Expected number of channels in input to be divisible by num_groups, but got "
            f"input of shape {list(input.shape)} and num_groups={num_groups}"
        )
    grouped = input.reshape(n, num_groups, -1)
    mean = grouped.mean(2, keepdim=True)
    var = grouped.var(2, unbiased=False, keepdim=True)
    out = ((grouped - mean) * (var + eps).rsqrt()).reshape(input.shape)
    if weight is not None:
        out = out * _channel_view(weight, input.dim())
    if bias is not None:
        out = out + _channel_view(bias, input.dim())
    return out


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (dim 1) over the batch and spatial dims.

    In training, batch statistics normalise and the running statistics (when
    given) move toward them in place: ``running = (1 - momentum) * running +
    momentum * batch`` (the variance's batch value unbiased). Otherwise the
    running statistics normalise.
    """
    if input.dim() < 2:
        raise ValueError(f"Expected 2D or more input (got {input.dim()}D input)")
    dims = [0] + list(range(2, input.dim()))
    if training:
        count = input.numel() // input.size(1)
        if count <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size "
                f"{input.size()}"
            )
        mean = input.mean(dims)
        var = input.var(dims, unbiased=False)
        if running_mean is not None or running_var is not None:
            with rtorch.no_grad():
                if running_mean is not None:
                    running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
                if running_var is not None:
                    unbiased = var.detach() * (count / (count - 1))
                    running_var.mul_(1 - momentum).add_(unbiased * momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
        mean, var = running_mean, running_var
    out = (input - _channel_view(mean, input.dim())) * _channel_view(
        (var + eps).rsqrt(), input.dim()
    )
    if weight is not None:
        out = out * _channel_view(weight, input.dim())
    if bias is not None:
        out = out + _channel_view(bias, input.dim())
    return out


# --- convolution ---

__all__ += [
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "unfold", "fold",
]  # fmt: skip


def _conv_list(v: int | Sequence[int], dim: int) -> list[int]:
    """An int (repeated ``dim`` times, as PyTorch's argument parser) or a
    sequence of ints as a list."""
    return [int(v)] * dim if isinstance(v, int) else [int(x) for x in v]


def _conv_string_padding(
    input: Tensor,
    weight: Tensor,
    padding: str,
    stride: int | Sequence[int],
    dilation: int | Sequence[int],
    dim: int,
) -> tuple[Tensor, list[int]]:
    """``padding='valid'`` or ``'same'``: the input (padded at the end of
    each dim where the total padding is odd, as PyTorch) and the symmetric
    padding for the convolution itself."""
    if padding == "valid":
        return input, [0] * dim
    if padding != "same":
        raise RuntimeError(f"Invalid padding string: '{padding}'")
    strides = _conv_list(stride, dim)
    if any(s != 1 for s in strides):
        raise RuntimeError("padding='same' is not supported for strided convolutions")
    dil = _conv_list(dilation, dim)
    if len(dil) == 1:
        dil = dil * dim
    kernel = list(weight.shape[-dim:]) if weight.dim() >= dim else [1] * dim
    pads, extra = [], []
    for d, k in zip(dil, kernel, strict=False):
        total = d * (k - 1)
        pads.append(total // 2)
        extra.append(total - 2 * (total // 2))
    if any(extra):
        warnings.warn(
            "Using padding='same' with even kernel lengths and odd dilation may require a "
            "zero-padded copy of the input be created",
            stacklevel=3,
        )
        pad_nd: list[int] = []
        for e in reversed(extra):
            pad_nd += [0, e]
        input = pad(input, pad_nd)
    return input, pads


def _conv(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: int | Sequence[int],
    padding: str | int | Sequence[int],
    dilation: int | Sequence[int],
    groups: int,
    dim: int,
) -> Tensor:
    if isinstance(padding, str):
        input, pads = _conv_string_padding(input, weight, padding, stride, dilation, dim)
    else:
        pads = _conv_list(padding, dim)
    return rtorch._C._convolution(
        input,
        weight,
        bias,
        _conv_list(stride, dim),
        pads,
        _conv_list(dilation, dim),
        False,
        [0] * dim,
        groups,
        dim,
    )


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """1-d convolution (cross-correlation, as PyTorch) over ``(N, C_in, L)``
    or unbatched ``(C_in, L)`` input with ``weight (C_out, C_in / groups, k)``.

    Args:
        padding: an int, a tuple, ``'valid'`` (none) or ``'same'`` (output as
            long as the input; stride 1 only).

    Example::

        >>> import rtorch
        >>> conv1d(rtorch.ones(1, 1, 4), rtorch.ones(1, 1, 2))
        tensor([[[2., 2., 2.]]])
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """2-d convolution over ``(N, C_in, H, W)`` or ``(C_in, H, W)`` input with
    ``weight (C_out, C_in / groups, kH, kW)``; arguments as :func:`conv1d`.

    Example::

        >>> import rtorch
        >>> conv2d(rtorch.ones(1, 1, 3, 3), rtorch.ones(1, 1, 2, 2)).shape
        torch.Size([1, 1, 2, 2])
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2)


def conv3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """3-d convolution over ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``
    input with ``weight (C_out, C_in / groups, kD, kH, kW)``; arguments as
    :func:`conv1d`.

    Example::

        >>> import rtorch
        >>> conv3d(rtorch.ones(1, 1, 3, 3, 3), rtorch.ones(2, 1, 3, 3, 3)).shape
        torch.Size([1, 2, 1, 1, 1])
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 3)


def _conv_transpose(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: int | Sequence[int],
    padding: int | Sequence[int],
    output_padding: int | Sequence[int],
    groups: int,
    dilation: int | Sequence[int],
    dim: int,
) -> Tensor:
    if isinstance(padding, str):
        raise TypeError(
            f"conv_transpose{dim}d(): argument 'padding' must be tuple of ints, not str"
        )
    return rtorch._C._convolution(
        input,
        weight,
        bias,
        _conv_list(stride, dim),
        _conv_list(padding, dim),
        _conv_list(dilation, dim),
        True,
        _conv_list(output_padding, dim),
        groups,
        dim,
    )


def conv_transpose1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
) -> Tensor:
    """1-d transposed convolution (the gradient of :func:`conv1d` with respect
    to its input) with ``weight (C_in, C_out / groups, k)``. The output length
    is ``(L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.

    Example::

        >>> import rtorch
        >>> conv_transpose1d(rtorch.ones(1, 1, 3), rtorch.ones(1, 1, 2))
        tensor([[[1., 2., 2., 1.]]])
    """
    return _conv_transpose(
        input, weight, bias, stride, padding, output_padding, groups, dilation, 1
    )


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
) -> Tensor:
    """2-d transposed convolution with ``weight (C_in, C_out / groups, kH, kW)``;
    arguments as :func:`conv_transpose1d`.

    Example::

        >>> import rtorch
        >>> conv_transpose2d(rtorch.ones(1, 1, 2, 2), rtorch.ones(1, 3, 2, 2), stride=2).shape
        torch.Size([1, 3, 4, 4])
    """
    return _conv_transpose(
        input, weight, bias, stride, padding, output_padding, groups, dilation, 2
    )


def conv_transpose3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
) -> Tensor:
    """3-d transposed convolution with ``weight (C_in, C_out / groups, kD, kH,
    kW)``; arguments as :func:`conv_transpose1d`.

    Example::

        >>> import rtorch
        >>> conv_transpose3d(rtorch.ones(1, 1, 1, 1, 1), rtorch.ones(1, 2, 2, 2, 2)).shape
        torch.Size([1, 2, 2, 2, 2])
    """
    return _conv_transpose(
        input, weight, bias, stride, padding, output_padding, groups, dilation, 3
    )


def _fold_pair(v: int | Sequence[int], name: str) -> list[int]:
    out = [int(v)] * 2 if isinstance(v, int) else [int(x) for x in v]
    if len(out) != 2:
        raise RuntimeError(f"It is expected {name} equals to 2, but got size {len(out)}")
    return out


def unfold(
    input: Tensor,
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    stride: int | Sequence[int] = 1,
) -> Tensor:
    """Extracts sliding blocks (im2col): ``(N, C, H, W)`` to
    ``(N, C * kH * kW, L)`` with ``L`` the number of block positions
    (unbatched ``(C, H, W)`` gives ``(C * kH * kW, L)``).

    Example::

        >>> import rtorch
        >>> unfold(rtorch.arange(4.0).reshape(1, 1, 2, 2), 1).shape
        torch.Size([1, 1, 4])
    """
    return rtorch._C._im2col(
        input,
        _fold_pair(kernel_size, "kernel_size"),
        _fold_pair(dilation, "dilation"),
        _fold_pair(padding, "padding"),
        _fold_pair(stride, "stride"),
    )


def fold(
    input: Tensor,
    output_size: int | Sequence[int],
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    stride: int | Sequence[int] = 1,
) -> Tensor:
    """Sums sliding blocks back into an image (col2im), the adjoint of
    :func:`unfold`: ``(N, C * kH * kW, L)`` to ``(N, C, *output_size)``.

    Example::

        >>> import rtorch
        >>> fold(rtorch.ones(1, 4, 4), (3, 3), 2)
        tensor([[[[1., 2., 1.],
                  [2., 4., 2.],
                  [1., 2., 1.]]]])
    """
    return rtorch._C._col2im(
        input,
        _fold_pair(output_size, "output_size"),
        _fold_pair(kernel_size, "kernel_size"),
        _fold_pair(dilation, "dilation"),
        _fold_pair(padding, "padding"),
        _fold_pair(stride, "stride"),
    )
