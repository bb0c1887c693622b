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
from rtorch import _C
from rtorch._C import Tensor, _activation, _nll_loss
from rtorch._dtype_info import scalar_name as _scalar_name

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
__all__ += ["embedding_bag"]

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
    if p == 0 or p == -math.inf:  # a count and a minimum: no pow(1/p) to guard
        return rtorch.linalg.vector_norm(x, p, dim, keepdim=keepdim)
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
    if input.dim() == 2 and weight.dim() == 2 and bias is not None:
        # One GEMM that starts from the bias: no separate broadcast add pass.
        return rtorch.addmm(bias, input, weight.t())
    if input.dim() > 2 and weight.dim() == 2 and bias is not None and input.is_contiguous():
        # The leading dims as rows of that GEMM (a view in and out).
        rows = input.reshape(-1, input.size(-1)) if input.numel() else None
        if rows is not None:
            out = rtorch.addmm(bias, rows, weight.t())
            return out.view(*input.shape[:-1], weight.size(0))
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
    scale = _keep_mask(input, p).div_(1 - p) if p < 1 else rtorch.zeros_like(input)
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
    pads crop, any number of dims), ``reflect``, ``replicate`` and
    ``circular`` (1, 2 or 3 trailing dims of a batched or unbatched input;
    negative pads crop first).

    Example::

        >>> import rtorch
        >>> pad(rtorch.ones(1, 2), (1, 0), value=5.0)
        tensor([[5., 1., 1.]])
    """
    pad = [int(p) for p in pad]
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    n_pad = len(pad) // 2
    if n_pad > input.dim():
        raise RuntimeError(
            "Padding length should be less than or equal to two times the input dimension "
            f"but got padding length {len(pad)} and input of dimension {input.dim()}"
        )
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if mode != "constant":
        if value is not None and value != 0:
            raise RuntimeError(f'Padding mode "{mode}" doesn\'t take in value argument')
        if n_pad not in (1, 2, 3) or input.dim() not in (n_pad + 1, n_pad + 2):
            raise NotImplementedError(
                f"Padding size {len(pad)} is not supported for {input.dim()}D input tensor."
            )
        if mode != "circular":
            _check_pad_output(input, pad, mode)
    out = input
    for i in range(n_pad):
        d = input.dim() - 1 - i
        left, right = pad[2 * i], pad[2 * i + 1]
        size = out.size(d)
        if mode in ("constant", "circular"):
            if size + min(left, 0) + min(right, 0) < 0:
                raise RuntimeError("narrow(): length must be non-negative.")
            if mode == "circular" and (left > size or right > size):
                raise RuntimeError("Padding value causes wrapping around more than once.")
            # Negative amounts crop first; circular then wraps over the cropped dim.
            if left < 0:
                out, size, left = out.narrow(d, -left, size + left), size + left, 0
            if right < 0:
                out, size, right = out.narrow(d, 0, size + right), size + right, 0
            if left == 0 and right == 0:
                continue
        if mode == "constant":
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
            idx = pos.remainder(size)
        else:
            if left >= size or right >= size:
                raise RuntimeError(
                    f"Argument #{4 + 2 * i}: Padding size should be less than the "
                    f"corresponding input dimension, but got: padding ({left}, {right}) at "
                    f"dimension {d} of input {list(input.shape)}"
                )
            idx = (size - 1) - ((size - 1) - pos.abs()).abs()
        out = out.index_select(d, idx)
    return out


def _check_pad_output(input: Tensor, pad: list[int], mode: str) -> None:
    """PyTorch's size errors for the reflect/replicate kernels."""
    n_pad = len(pad) // 2
    names = "DHW"[3 - n_pad :]
    ins = list(input.shape[input.dim() - n_pad :])
    outs = [ins[k] + pad[2 * (n_pad - 1 - k)] + pad[2 * (n_pad - 1 - k) + 1] for k in range(n_pad)]
    if min(outs) >= 1:
        return
    if n_pad == 1:
        raise RuntimeError(f"input (W: {ins[0]}) is too small. Calculated output W: {outs[0]}")
    got = " ".join(f"{n}: {o}" for n, o in zip(names, outs, strict=True))
    had = ", ".join(f"{n}: {v}" for n, v in zip(names, ins, strict=True))
    raise RuntimeError(f"Calculated output {got} must be >= 1 in every dimension (input {had})")


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
    rows = input if input.dim() == 2 else _class_dim_last(input)
    if weight is not None:
        weight = weight.to(input.dtype)
    loss = _nll_loss(rows, flat_t, weight, reduction, ignore_index)
    if reduction == "none":
        return loss.reshape(target.shape if not unbatched else ())
    return loss


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
    return _C._layer_norm(input, list(shape), weight, bias, eps)


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
    c = input.size(1)
    if num_groups <= 0:
        raise RuntimeError(f"Expected num groups to be greater than 0, got {num_groups}")
    if c % num_groups:
        raise RuntimeError(
            "Expected number of channels in input to be divisible by num_groups, but got "
            f"input of shape {list(input.shape)} and num_groups={num_groups}"
        )
    return _C._group_norm(input, num_groups, weight, bias, eps)


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
    if training:
        count = input.numel() // input.size(1)
        if count <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size "
                f"{input.size()}"
            )
    elif running_mean is None or running_var is None:
        raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
    return _C._batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps)


# --- pooling and instance/local response normalisation ---
#
# The pooling kernels live in Rust (rust/src/ops/pool.rs): one N-d
# implementation over the trailing 1, 2 or 3 dims. These wrappers normalise
# the arguments as PyTorch does (ints or tuples, ``stride=None`` meaning
# ``kernel_size``).

__all__ += [
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
    "max_pool2d_with_indices", "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d",
    "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
    "adaptive_max_pool3d_with_indices", "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "lp_pool1d", "lp_pool2d", "instance_norm", "local_response_norm",
]  # fmt: skip


def _ntuple(v: Any, n: int, name: str) -> list[int]:
    """``v`` (an int or a sequence of 1 or ``n`` ints) as ``n`` ints."""
    if isinstance(v, int):
        return [v] * n
    v = [int(e) for e in v]
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise RuntimeError(f"{name} must either be a single int, or a tuple of {n} ints")
    return v


def _stride(stride: Any, n: int) -> list[int]:
    if stride is None or (not isinstance(stride, int) and len(stride) == 0):
        return []
    return _ntuple(stride, n, "stride")


def _max_pool(
    input: Tensor,
    n: int,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
) -> tuple[Tensor, Tensor]:
    return _C._max_pool(
        input,
        n,
        _ntuple(kernel_size, n, "kernel_size"),
        _stride(stride, n),
        _ntuple(padding, n, "padding"),
        _ntuple(dilation, n, "dilation"),
        ceil_mode,
    )


def max_pool1d_with_indices(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[Tensor, Tensor]:
    """:func:`max_pool1d` returning ``(output, indices)``."""
    return _max_pool(input, 1, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool2d_with_indices(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[Tensor, Tensor]:
    """:func:`max_pool2d` returning ``(output, indices)``."""
    return _max_pool(input, 2, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool3d_with_indices(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[Tensor, Tensor]:
    """:func:`max_pool3d` returning ``(output, indices)``."""
    return _max_pool(input, 3, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """1-d max pooling over the last dim of a ``(N, C, L)`` or ``(C, L)`` input.

    Args:
        kernel_size: the window size.
        stride: the window step. Default: ``kernel_size``.
        padding: implicit ``-inf`` padding on both sides (at most half the kernel).
        dilation: the step between window elements.
        ceil_mode: round the output size up (the last window must start inside the input).
        return_indices: also return the argmax positions (for :func:`max_unpool1d`).

    Example::

        >>> import rtorch
        >>> max_pool1d(rtorch.tensor([[1.0, 3.0, 2.0, 0.0]]), 2)
        tensor([[3., 2.]])
    """
    if not return_indices:
        k, p = _ntuple(kernel_size, 1, "kernel_size")[0], _ntuple(padding, 1, "padding")[0]
        if p > k // 2:
            raise RuntimeError(
                "max_pool1d() padding should be at most half of kernel size, but got "
                f"padding={p} and kernel_size={k}"
            )
    out, idx = _max_pool(input, 1, kernel_size, stride, padding, dilation, ceil_mode)
    return (out, idx) if return_indices else out


def max_pool2d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """2-d max pooling over the last two dims of ``(N, C, H, W)`` or ``(C, H, W)``;
    arguments as :func:`max_pool1d` (ints or pairs).

    Example::

        >>> import rtorch
        >>> max_pool2d(rtorch.arange(16.0).reshape(1, 4, 4), 2)
        tensor([[[ 5.,  7.],
                 [13., 15.]]])
    """
    out, idx = _max_pool(input, 2, kernel_size, stride, padding, dilation, ceil_mode)
    return (out, idx) if return_indices else out


def max_pool3d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """3-d max pooling over the last three dims of ``(N, C, D, H, W)`` or
    ``(C, D, H, W)``; arguments as :func:`max_pool1d` (ints or triples)."""
    out, idx = _max_pool(input, 3, kernel_size, stride, padding, dilation, ceil_mode)
    return (out, idx) if return_indices else out


def avg_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """1-d average pooling over the last dim of ``(N, C, L)`` or ``(C, L)``.

    Args:
        kernel_size: the window size.
        stride: the window step. Default: ``kernel_size``.
        padding: implicit zero padding on both sides (at most half the kernel).
        ceil_mode: round the output size up.
        count_include_pad: count the padding in the divisor.

    Example::

        >>> import rtorch
        >>> avg_pool1d(rtorch.tensor([[1.0, 3.0, 2.0, 0.0]]), 2)
        tensor([[2., 1.]])
    """
    return _C._avg_pool(
        input,
        1,
        _ntuple(kernel_size, 1, "kernel_size"),
        _stride(stride, 1),
        _ntuple(padding, 1, "padding"),
        ceil_mode,
        count_include_pad,
        None,
    )


def avg_pool2d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """2-d average pooling; arguments as :func:`avg_pool1d`, and
    ``divisor_override`` to divide every window's sum by a fixed number."""
    return _C._avg_pool(
        input,
        2,
        _ntuple(kernel_size, 2, "kernel_size"),
        _stride(stride, 2),
        _ntuple(padding, 2, "padding"),
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


def avg_pool3d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """3-d average pooling; arguments as :func:`avg_pool2d`."""
    return _C._avg_pool(
        input,
        3,
        _ntuple(kernel_size, 3, "kernel_size"),
        _stride(stride, 3),
        _ntuple(padding, 3, "padding"),
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


def _adaptive_size(input: Tensor, output_size: Any, n: int) -> list[int]:
    """``output_size`` as ``n`` ints; ``None`` entries keep the input's size."""
    if output_size is None or isinstance(output_size, int):
        sizes = [output_size] * n
    else:
        sizes = list(output_size)
        if len(sizes) == 1:
            sizes = sizes * n
    if len(sizes) != n:
        raise RuntimeError(
            f"adaptive pooling: output_size must be an int or a tuple of {n} ints, got {output_size}"
        )
    dims = input.shape[input.dim() - n :] if input.dim() >= n else [0] * n
    return [int(dims[i]) if s is None else int(s) for i, s in enumerate(sizes)]


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to ``output_size`` positions along the last dim (window
    ``o`` covers ``[floor(o * L / out), ceil((o + 1) * L / out))``).

    Example::

        >>> import rtorch
        >>> adaptive_avg_pool1d(rtorch.tensor([[1.0, 2.0, 3.0]]), 2)
        tensor([[1.5000, 2.5000]])
    """
    return _C._adaptive_avg_pool(input, 1, _adaptive_size(input, output_size, 1))


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Adaptive average pooling over the last two dims (``None`` keeps a size)."""
    return _C._adaptive_avg_pool(input, 2, _adaptive_size(input, output_size, 2))


def adaptive_avg_pool3d(input: Tensor, output_size: Any) -> Tensor:
    """Adaptive average pooling over the last three dims (``None`` keeps a size)."""
    return _C._adaptive_avg_pool(input, 3, _adaptive_size(input, output_size, 3))


def adaptive_max_pool1d_with_indices(
    input: Tensor, output_size: Any, return_indices: bool = False
) -> tuple[Tensor, Tensor]:
    """:func:`adaptive_max_pool1d` returning ``(output, indices)``."""
    return _C._adaptive_max_pool(input, 1, _adaptive_size(input, output_size, 1))


def adaptive_max_pool2d_with_indices(
    input: Tensor, output_size: Any, return_indices: bool = False
) -> tuple[Tensor, Tensor]:
    """:func:`adaptive_max_pool2d` returning ``(output, indices)``."""
    return _C._adaptive_max_pool(input, 2, _adaptive_size(input, output_size, 2))


def adaptive_max_pool3d_with_indices(
    input: Tensor, output_size: Any, return_indices: bool = False
) -> tuple[Tensor, Tensor]:
    """:func:`adaptive_max_pool3d` returning ``(output, indices)``."""
    return _C._adaptive_max_pool(input, 3, _adaptive_size(input, output_size, 3))


def adaptive_max_pool1d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max pooling to ``output_size`` positions along the last dim (windows as
    :func:`adaptive_avg_pool1d`), with indices when ``return_indices``."""
    out, idx = adaptive_max_pool1d_with_indices(input, output_size)
    return (out, idx) if return_indices else out


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Adaptive max pooling over the last two dims."""
    out, idx = adaptive_max_pool2d_with_indices(input, output_size)
    return (out, idx) if return_indices else out


def adaptive_max_pool3d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Adaptive max pooling over the last three dims."""
    out, idx = adaptive_max_pool3d_with_indices(input, output_size)
    return (out, idx) if return_indices else out


def _unpool_output_size(
    input: Tensor,
    kernel_size: list[int],
    stride: list[int],
    padding: list[int],
    output_size: Any,
) -> list[int]:
    n = len(kernel_size)
    default = [
        (input.size(input.dim() - n + d) - 1) * stride[d] + kernel_size[d] - 2 * padding[d]
        for d in range(n)
    ]
    if output_size is None:
        return default
    if len(output_size) == n + 2:
        output_size = output_size[2:]
    if len(output_size) != n:
        raise ValueError(
            f"output_size should be a sequence containing {n} or {n + 2} elements, but it has "
            f"a length of '{len(output_size)}'"
        )
    for d in range(n):
        lo, hi = default[d] - stride[d], default[d] + stride[d]
        if not lo < output_size[d] < hi:
            raise ValueError(
                f'invalid output_size "{output_size}" (dim {d} must be between {lo} and {hi})'
            )
    return [int(s) for s in output_size]


def _max_unpool(
    input: Tensor,
    indices: Tensor,
    n: int,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    output_size: Any,
) -> Tensor:
    k = _ntuple(kernel_size, n, "kernel_size")
    s = _stride(stride, n) or k
    p = _ntuple(padding, n, "padding")
    size = _unpool_output_size(input, k, s, p, output_size)
    return _C._max_unpool(input, indices, n, size)


def max_unpool1d(
    input: Tensor,
    indices: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Tensor:
    """The partial inverse of :func:`max_pool1d`: the values go back to the
    positions ``indices`` (from ``return_indices=True``), zeros elsewhere.

    Example::

        >>> import rtorch
        >>> out, idx = max_pool1d(rtorch.tensor([[1.0, 3.0, 2.0, 0.0]]), 2, return_indices=True)
        >>> max_unpool1d(out, idx, 2)
        tensor([[0., 3., 2., 0.]])
    """
    return _max_unpool(input, indices, 1, kernel_size, stride, padding, output_size)


def max_unpool2d(
    input: Tensor,
    indices: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Tensor:
    """The partial inverse of :func:`max_pool2d`; see :func:`max_unpool1d`."""
    return _max_unpool(input, indices, 2, kernel_size, stride, padding, output_size)


def max_unpool3d(
    input: Tensor,
    indices: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> Tensor:
    """The partial inverse of :func:`max_pool3d`; see :func:`max_unpool1d`."""
    return _max_unpool(input, indices, 3, kernel_size, stride, padding, output_size)


def lp_pool1d(
    input: Tensor,
    norm_type: float,
    kernel_size: int,
    stride: Any = None,
    ceil_mode: bool = False,
) -> Tensor:
    """Power-average pooling: ``(sum over the window of x ** p) ** (1 / p)``."""
    if stride is not None:
        out = avg_pool1d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    else:
        out = avg_pool1d(input.pow(norm_type), kernel_size, padding=0, ceil_mode=ceil_mode)
    return (out.sign() * relu(out.abs())).mul(kernel_size).pow(1.0 / norm_type)


def lp_pool2d(
    input: Tensor,
    norm_type: float,
    kernel_size: Any,
    stride: Any = None,
    ceil_mode: bool = False,
) -> Tensor:
    """2-d power-average pooling; see :func:`lp_pool1d`."""
    kw, kh = _ntuple(kernel_size, 2, "kernel_size")
    if stride is not None:
        out = avg_pool2d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    else:
        out = avg_pool2d(input.pow(norm_type), kernel_size, padding=0, ceil_mode=ceil_mode)
    return (out.sign() * relu(out.abs())).mul(kw * kh).pow(1.0 / norm_type)


def instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each (sample, channel) over its spatial dims, then scale and
    shift per channel. Computed as batch norm of the input seen as
    ``(1, N * C, *)``; running statistics (when given) are updated with the
    mean over the batch of the per-sample ones.

    Example::

        >>> import rtorch
        >>> instance_norm(rtorch.tensor([[[1.0, 3.0]]]))
        tensor([[[-1.0000,  1.0000]]])
    """
    if use_input_stats:
        size = input.shape
        prod = 1
        for s in size[2:]:
            prod *= s
        if prod == 1:
            raise ValueError(
                f"Expected more than 1 spatial element when training, got input size {size}"
            )
    n, c = input.size(0), input.size(1)
    shape = [1, n * c, *input.shape[2:]]
    x = input.contiguous().reshape(shape)
    w = weight.repeat(n) if weight is not None else None
    b = bias.repeat(n) if bias is not None else None
    rm = running_mean.repeat(n) if running_mean is not None else None
    rv = running_var.repeat(n) if running_var is not None else None
    out = _C._batch_norm(x, w, b, rm, rv, use_input_stats, momentum, eps)
    with rtorch.no_grad():
        if running_mean is not None:
            running_mean.copy_(rm.view(n, c).mean(0))
        if running_var is not None:
            running_var.copy_(rv.view(n, c).mean(0))
    return out.view(input.shape)


def local_response_norm(
    input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Tensor:
    """Normalise each element by the energy of ``size`` neighbouring channels:
    ``x / (k + alpha * mean(x ** 2 over the channel window)) ** beta``."""
    dim = input.dim()
    if dim < 3:
        raise ValueError(
            "Expected 3D or higher dimensionality                          input "
            f"(got {dim} dimensions)"
        )
    if input.numel() == 0:
        return input
    div = input.mul(input)
    if dim == 3:
        div = div.unsqueeze(1)
        div = pad(div, (0, 0, size // 2, (size - 1) // 2))
        div = avg_pool2d(div, (size, 1), stride=1).squeeze(1)
    else:
        sizes = input.size()
        div = div.view(sizes[0], 1, sizes[1], sizes[2], -1)
        div = pad(div, (0, 0, 0, 0, size // 2, (size - 1) // 2))
        div = avg_pool3d(div, (size, 1, 1), stride=1).squeeze(1)
        div = div.view(sizes)
    div = div.mul(alpha).add(k).pow(beta)
    return input / div


# --- attention ---------------------------------------------------------------


def _none_or_dtype(input: Tensor | None) -> Any:
    if input is None:
        return None
    if isinstance(input, Tensor):
        return input.dtype
    raise RuntimeError("input to _none_or_dtype() must be None or torch.Tensor")


def _canonical_mask(
    mask: Tensor | None,
    mask_name: str,
    other_type: Any,
    other_name: str,
    target_type: Any,
    check_other: bool = True,
) -> Tensor | None:
    """A bool mask (``True`` = masked out) as an additive float mask of
    ``target_type`` (``-inf`` where masked); float masks pass through."""
    if mask is None:
        return None
    is_float = mask.is_floating_point()
    if mask.dtype != rtorch.bool and not is_float:
        raise AssertionError(f"only bool and floating types of {mask_name} are supported")
    if check_other and other_type is not None and mask.dtype != other_type:
        warnings.warn(
            f"Support for mismatched {mask_name} and {other_name} is deprecated. "
            "Use same type for both instead.",
            stacklevel=3,
        )
    if not is_float:
        mask = rtorch.zeros(mask.shape, dtype=target_type).masked_fill_(mask, -math.inf)
    return mask


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``softmax(Q K^T * scale + bias) V`` over the last two dims.

    ``attn_mask`` is a bool mask (``True``: the position takes part) or a
    float mask added to the scores; ``is_causal`` masks out keys after each
    query (top-left aligned lower triangle). Rows with every key masked out
    give zeros, as PyTorch's math backend. ``dropout_p`` drops attention
    weights (always, like PyTorch: pass 0 in eval). ``enable_gqa`` lets
    ``key``/``value`` have fewer heads (dim -3) than ``query``.

    Shape:
        - query: ``(*, L, E)``; key: ``(*, S, E)``; value: ``(*, S, Ev)``.
        - attn_mask: broadcastable to ``(*, L, S)``.
        - output: ``(*, L, Ev)``.

    Example::

        >>> import rtorch
        >>> q = rtorch.ones(1, 2, 4)
        >>> scaled_dot_product_attention(q, q, rtorch.eye(2, 4)[None])
        tensor([[[0.5000, 0.5000, 0.0000, 0.0000],
                 [0.5000, 0.5000, 0.0000, 0.0000]]])
    """
    if attn_mask is not None and is_causal:
        raise RuntimeError(
            "_scaled_dot_product_attention: Explicit attn_mask should not be set when "
            "is_causal=True"
        )
    if not (query.dtype == key.dtype == value.dtype):
        raise RuntimeError(
            "Expected query, key, and value to have the same dtype, but got query.dtype: "
            f"{_dtype_name(query.dtype)} key.dtype: {_dtype_name(key.dtype)} and value.dtype: "
            f"{_dtype_name(value.dtype)} instead."
        )
    if not query.is_floating_point():
        raise RuntimeError("scaled_dot_product_attention: expected floating point inputs")
    n_q, n_k = query.size(-2), key.size(-2)
    scale_factor = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    if enable_gqa and query.dim() >= 3 and key.size(-3) != query.size(-3):
        if query.size(-3) % key.size(-3) or query.size(-3) % value.size(-3):
            raise RuntimeError(
                "Number of heads in key and value must divide the number of heads in query"
            )
        key = key.repeat_interleave(query.size(-3) // key.size(-3), -3)
        value = value.repeat_interleave(query.size(-3) // value.size(-3), -3)
    bias = None
    maybe_empty_rows = False
    if is_causal:
        bias = rtorch.full((n_q, n_k), -math.inf, dtype=query.dtype).triu_(1)
        maybe_empty_rows = n_k == 0
    elif attn_mask is not None:
        if attn_mask.dtype == rtorch.bool:
            bias = rtorch.zeros(attn_mask.shape, dtype=query.dtype)
            bias.masked_fill_(attn_mask.logical_not(), -math.inf)
            maybe_empty_rows = True
        else:
            bias = attn_mask if attn_mask.dtype == query.dtype else attn_mask.to(query.dtype)
            maybe_empty_rows = True
    if query.size(-1) <= n_k:
        scores = (query * scale_factor).matmul(key.transpose(-2, -1))
    else:
        scores = query.matmul(key.transpose(-2, -1)) * scale_factor
    if bias is not None:
        scores = scores + bias
    attn = scores.softmax(-1)
    if maybe_empty_rows and bias is not None:
        # PyTorch's "safe softmax": a row with every key masked out gives zeros, not NaN.
        empty = (bias == -math.inf).all(-1, keepdim=True) if n_k else None
        if empty is not None and bool(empty.any()):
            attn = attn.masked_fill(empty, 0.0)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, True)
    return attn.matmul(value)


def _dtype_name(dtype: Any) -> str:
    return {
        rtorch.float32: "float",
        rtorch.float64: "double",
        rtorch.float16: "c10::Half",
        rtorch.bfloat16: "c10::BFloat16",
        rtorch.int64: "long int",
        rtorch.int32: "int",
    }.get(dtype, str(dtype).replace("torch.", ""))


def _mha_shape_check(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    key_padding_mask: Tensor | None,
    attn_mask: Tensor | None,
    num_heads: int,
) -> bool:
    if query.dim() == 3:
        if key.dim() != 3 or value.dim() != 3:
            raise AssertionError(
                "For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                f"{key.dim()}-D and {value.dim()}-D tensors respectively"
            )
        if key_padding_mask is not None and key_padding_mask.dim() != 2:
            raise AssertionError(
                "For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D but "
                f"found {key_padding_mask.dim()}-D tensor instead"
            )
        if attn_mask is not None and attn_mask.dim() not in (2, 3):
            raise AssertionError(
                "For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but "
                f"found {attn_mask.dim()}-D tensor instead"
            )
        return True
    if query.dim() == 2:
        if key.dim() != 2 or value.dim() != 2:
            raise AssertionError(
                "For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
                f"{key.dim()}-D and {value.dim()}-D tensors respectively"
            )
        if key_padding_mask is not None and key_padding_mask.dim() != 1:
            raise AssertionError(
                "For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D "
                f"but found {key_padding_mask.dim()}-D tensor instead"
            )
        if attn_mask is not None:
            if attn_mask.dim() not in (2, 3):
                raise AssertionError(
                    "For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D "
                    f"but found {attn_mask.dim()}-D tensor instead"
                )
            if attn_mask.dim() == 3:
                expected = (num_heads, query.shape[0], key.shape[0])
                if tuple(attn_mask.shape) != expected:
                    raise AssertionError(
                        f"Expected `attn_mask` shape to be {expected} but got {attn_mask.shape}"
                    )
        return False
    raise AssertionError(
        "query should be unbatched 2D or batched 3D tensor but received "
        f"{query.dim()}-D query tensor"
    )


def _in_projection_packed(
    q: Tensor, k: Tensor, v: Tensor, w: Tensor, b: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Project ``q, k, v`` with the packed ``(3E, E)`` weight: one matmul for
    self-attention, two when key is value, three otherwise."""
    e = q.size(-1)
    if k is v:
        if q is k:
            return tuple(linear(q, w, b).chunk(3, -1))  # type: ignore[return-value]
        w_q, w_kv = w.split([e, 2 * e])
        b_q, b_kv = (None, None) if b is None else b.split([e, 2 * e])
        k_out, v_out = linear(k, w_kv, b_kv).chunk(2, -1)
        return linear(q, w_q, b_q), k_out, v_out
    w_q, w_k, w_v = w.chunk(3)
    b_q, b_k, b_v = (None, None, None) if b is None else b.chunk(3)
    return linear(q, w_q, b_q), linear(k, w_k, b_k), linear(v, w_v, b_v)


def _self_attention_batch_first(
    x: Tensor,
    num_heads: int,
    in_proj_weight: Tensor,
    in_proj_bias: Tensor | None,
    out_proj_weight: Tensor,
    out_proj_bias: Tensor | None,
    dropout_p: float,
) -> Tensor:
    """Multi-head self-attention of a batch-first ``(N, L, E)`` input
    without masks: what :func:`multi_head_attention_forward` computes for
    it, with the heads split from the packed projection by a view."""
    n, length, e = x.shape
    head_dim = e // num_heads
    if head_dim * num_heads != e:
        raise AssertionError(f"embed_dim {e} not divisible by num_heads {num_heads}")
    qkv = linear(x, in_proj_weight, in_proj_bias)
    q, k, v = qkv.view(n, length, 3, num_heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    out = scaled_dot_product_attention(q, k, v, None, dropout_p)
    out = out.transpose(1, 2).reshape(n * length, e)
    return linear(out, out_proj_weight, out_proj_bias).view(n, length, e)


def multi_head_attention_forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight: Tensor | None,
    in_proj_bias: Tensor | None,
    bias_k: Tensor | None,
    bias_v: Tensor | None,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: Tensor,
    out_proj_bias: Tensor | None,
    training: bool = True,
    key_padding_mask: Tensor | None = None,
    need_weights: bool = True,
    attn_mask: Tensor | None = None,
    use_separate_proj_weight: bool = False,
    q_proj_weight: Tensor | None = None,
    k_proj_weight: Tensor | None = None,
    v_proj_weight: Tensor | None = None,
    static_k: Tensor | None = None,
    static_v: Tensor | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Multi-head attention over sequence-first inputs, as
    :class:`~rtorch.nn.MultiheadAttention` computes it.

    Masks: ``key_padding_mask`` ``(N, S)`` and ``attn_mask`` ``(L, S)`` or
    ``(N * num_heads, L, S)``; bool masks mark positions NOT to attend
    (``True`` = masked out), float masks are added to the scores.

    Shape:
        - query: ``(L, N, E)`` or ``(L, E)``; key/value: ``(S, N, E)`` or ``(S, E)``.
        - output: ``(L, N, E)`` (or ``(L, E)``) and, with ``need_weights``, the
          weights ``(N, L, S)`` averaged over heads (``(N, num_heads, L, S)`` when
          ``average_attn_weights=False``).
    """
    is_batched = _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not is_batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    key_padding_mask = _canonical_mask(
        key_padding_mask, "key_padding_mask", _none_or_dtype(attn_mask), "attn_mask", query.dtype
    )
    if is_causal and attn_mask is None:
        raise RuntimeError(
            "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
            "module method `generate_square_subsequent_mask` to create this mask."
        )
    if is_causal and key_padding_mask is None and not need_weights:
        # The mask is causal: let scaled_dot_product_attention build it.
        attn_mask = None
    else:
        attn_mask = _canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, False)
        if key_padding_mask is not None:
            is_causal = False
    if embed_dim != embed_dim_to_check:
        raise AssertionError(
            f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}"
        )
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if key.shape[:2] != value.shape[:2]:
            raise AssertionError(
                f"key's sequence and batch dims {key.shape[:2]} do not match value's "
                f"{value.shape[:2]}"
            )
    elif key.shape != value.shape:
        raise AssertionError(f"key shape {key.shape} does not match value shape {value.shape}")

    if not use_separate_proj_weight:
        if in_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
        q, k, v = _in_projection_packed(query, key, value, in_proj_weight, in_proj_bias)
    else:
        if q_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is True but q_proj_weight is None")
        if k_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is True but k_proj_weight is None")
        if v_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is True but v_proj_weight is None")
        b_q, b_k, b_v = (None, None, None) if in_proj_bias is None else in_proj_bias.chunk(3)
        q = linear(query, q_proj_weight, b_q)
        k = linear(key, k_proj_weight, b_k)
        v = linear(value, v_proj_weight, b_v)

    src_len = key.shape[0]
    if attn_mask is not None:
        if attn_mask.dim() == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(
                    f"The shape of the 2D attn_mask is {attn_mask.shape}, but should be "
                    f"{(tgt_len, src_len)}."
                )
            attn_mask = attn_mask.unsqueeze(0)
        elif attn_mask.dim() == 3:
            if tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
                raise RuntimeError(
                    f"The shape of the 3D attn_mask is {attn_mask.shape}, but should be "
                    f"{(bsz * num_heads, tgt_len, src_len)}."
                )
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.dim()} is not supported")

    if bias_k is not None and bias_v is not None:
        if static_k is not None:
            raise AssertionError("bias cannot be added to static key.")
        if static_v is not None:
            raise AssertionError("bias cannot be added to static value.")
        k = rtorch.cat([k, bias_k.expand(1, bsz, embed_dim)])
        v = rtorch.cat([v, bias_v.expand(1, bsz, embed_dim)])
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    elif bias_k is not None:
        raise AssertionError("bias_k is set but bias_v is None")
    elif bias_v is not None:
        raise AssertionError("bias_v is set but bias_k is None")

    # (L, N, E) -> (N * H, L, head_dim)
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    if static_k is None:
        k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    else:
        if static_k.size(0) != bsz * num_heads:
            raise AssertionError(
                f"expecting static_k.size(0) of {bsz * num_heads}, but got {static_k.size(0)}"
            )
        if static_k.size(2) != head_dim:
            raise AssertionError(
                f"expecting static_k.size(2) of {head_dim}, but got {static_k.size(2)}"
            )
        k = static_k
    if static_v is None:
        v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    else:
        if static_v.size(0) != bsz * num_heads:
            raise AssertionError(
                f"expecting static_v.size(0) of {bsz * num_heads}, but got {static_v.size(0)}"
            )
        if static_v.size(2) != head_dim:
            raise AssertionError(
                f"expecting static_v.size(2) of {head_dim}, but got {static_v.size(2)}"
            )
        v = static_v

    if add_zero_attn:
        zeros = rtorch.zeros((bsz * num_heads, 1, head_dim), dtype=k.dtype)
        k = rtorch.cat([k, zeros], 1)
        v = rtorch.cat([v, zeros], 1)
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))

    src_len = k.size(1)
    if key_padding_mask is not None:
        if key_padding_mask.shape[0] != bsz:
            raise AssertionError(
                f"Expected key_padded_mask.shape[0] to be {bsz}, but got "
                f"{key_padding_mask.shape[0]}"
            )
        if key_padding_mask.shape[1] != src_len:
            raise AssertionError(
                f"Expected key_padded_mask.shape[1] to be {src_len}, but got "
                f"{key_padding_mask.shape[1]}"
            )
        key_padding_mask = (
            key_padding_mask.reshape(bsz, 1, 1, src_len)
            .expand(-1, num_heads, -1, -1)
            .reshape(bsz * num_heads, 1, src_len)
        )
        attn_mask = key_padding_mask if attn_mask is None else attn_mask + key_padding_mask

    if not training:
        dropout_p = 0.0

    if need_weights:
        if is_causal and attn_mask is None:
            raise AssertionError("FIXME: is_causal not implemented for need_weights")
        q_scaled = q * math.sqrt(1.0 / float(head_dim))
        if attn_mask is not None:
            weights = attn_mask.baddbmm(q_scaled, k.transpose(-2, -1))
        else:
            weights = q_scaled.bmm(k.transpose(-2, -1))
        weights = weights.softmax(-1)
        if dropout_p > 0.0:
            weights = dropout(weights, p=dropout_p)
        out = weights.bmm(v)
        out = out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)
        weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(1)
        if not is_batched:
            out, weights = out.squeeze(1), weights.squeeze(0)
        return out, weights

    if attn_mask is not None:
        if attn_mask.size(0) == 1 and attn_mask.dim() == 3:
            attn_mask = attn_mask.unsqueeze(0)
        else:
            attn_mask = attn_mask.reshape(bsz, num_heads, -1, src_len)
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)
    if not is_batched:
        out = out.squeeze(1)
    return out, None


def rrelu(
    input: Tensor,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
) -> Tensor:
    """Randomised leaky ReLU: negative elements are scaled by a slope drawn
    from ``U(lower, upper)`` per element in training, by ``(lower + upper) / 2``
    otherwise."""
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    slope = rtorch.empty(input.shape, dtype=input.dtype).uniform_(lower, upper)
    scale = rtorch.where(input >= 0, rtorch.ones((), dtype=input.dtype), slope)
    return input.mul_(scale) if inplace else input * scale


def rrelu_(
    input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False
) -> Tensor:
    """In-place :func:`rrelu`."""
    return rrelu(input, lower, upper, training, inplace=True)


# --- resampling: interpolate, pixel/channel shuffle, grid sampling ------------
#
# Coordinates and weights are computed in NumPy (in float32 for float32 inputs,
# float64 for float64, as PyTorch's kernels do), then applied with
# index_select / matmul so autograd differentiates with those ops' derivatives.


def _coord_dtype(input: Tensor) -> Any:
    import numpy as np

    return np.float64 if input.dtype == rtorch.float64 else np.float32


def _weights_view(w: Any, input: Tensor, d: int) -> Tensor:
    shape = [1] * input.dim()
    shape[d] = -1
    return rtorch.from_numpy(w).to(input.dtype).reshape(shape)


def _taps_along(input: Tensor, d: int, idxs: list, weights: list) -> Tensor:
    """``sum_k input.index_select(d, idxs[k]) * weights[k]`` along dim ``d``."""
    out = None
    for idx, w in zip(idxs, weights, strict=True):
        term = input.index_select(d, rtorch.from_numpy(idx)) * _weights_view(w, input, d)
        out = term if out is None else out + term
    return out  # type: ignore[return-value]


def _matrix_along(input: Tensor, d: int, m: Any) -> Tensor:
    """Apply the ``(out, in)`` matrix ``m`` to dim ``d`` of ``input``."""
    mt = rtorch.from_numpy(m).to(input.dtype)
    return input.movedim(d, -1).matmul(mt.t()).movedim(-1, d)


def _scale_value(scale: float | None, in_size: int, out_size: int, ct: Any) -> Any:
    if scale is not None and scale > 0:
        return ct(1.0 / scale)
    return ct(in_size) / ct(out_size)


def _area_pixel_scale(
    in_size: int, out_size: int, align_corners: bool, scale: float | None, ct: Any
) -> Any:
    if align_corners:
        return ct(in_size - 1) / ct(out_size - 1) if out_size > 1 else ct(0)
    return _scale_value(scale, in_size, out_size, ct)


def _source_index(scale: Any, out_size: int, align_corners: bool, cubic: bool, ct: Any) -> Any:
    import numpy as np

    dst = np.arange(out_size, dtype=ct)
    if align_corners:
        return scale * dst
    src = scale * (dst + ct(0.5)) - ct(0.5)
    return src if cubic else np.maximum(src, ct(0))


def _nearest_indices(in_size: int, out_size: int, scale: float | None, exact: bool) -> Any:
    import numpy as np

    if not exact and out_size == in_size:
        return np.arange(out_size, dtype=np.int64)
    if not exact and out_size == 2 * in_size:
        return np.arange(out_size, dtype=np.int64) >> 1
    s = _scale_value(scale, in_size, out_size, np.float32)
    dst = np.arange(out_size, dtype=np.float32)
    src = np.floor((dst + np.float32(0.5)) * s) if exact else np.floor(dst * s)
    return np.minimum(src.astype(np.int64), in_size - 1)


def _linear_taps(in_size: int, out_size: int, align_corners: bool, scale: Any, ct: Any):
    import numpy as np

    s = _area_pixel_scale(in_size, out_size, align_corners, scale, ct)
    src = _source_index(s, out_size, align_corners, False, ct)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    lam = np.clip(src - i0.astype(ct), 0, 1).astype(ct)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return [i0, i1], [(1 - lam).astype(ct), lam]


def _cubic_coeffs(t: Any, a: float, ct: Any) -> list:
    def near(x: Any) -> Any:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: Any) -> Any:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [
        far(t + 1).astype(ct),
        near(t).astype(ct),
        near(1 - t).astype(ct),
        far(2 - t).astype(ct),
    ]


def _cubic_taps(in_size: int, out_size: int, align_corners: bool, scale: Any, ct: Any):
    import numpy as np

    s = _area_pixel_scale(in_size, out_size, align_corners, scale, ct)
    src = _source_index(s, out_size, align_corners, True, ct)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    t = np.clip(src - i0.astype(ct), 0, 1).astype(ct)
    idxs = [np.clip(i0 + k, 0, in_size - 1) for k in (-1, 0, 1, 2)]
    return idxs, _cubic_coeffs(t, -0.75, ct)


def _area_matrix(in_size: int, out_size: int) -> Any:
    import numpy as np

    m = np.zeros((out_size, in_size))
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = -((-(i + 1) * in_size) // out_size)
        m[i, start:end] = 1.0 / (end - start)
    return m


def _antialias_matrix(
    in_size: int, out_size: int, align_corners: bool, scale: Any, cubic: bool
) -> Any:
    """PIL-style separable filter weights (PyTorch's ``antialias=True``)."""
    import numpy as np

    s = float(_area_pixel_scale(in_size, out_size, align_corners, scale, np.float64))
    interp = 4 if cubic else 2
    support = interp * 0.5 * s if s >= 1.0 else interp * 0.5
    invscale = 1.0 / s if s >= 1.0 else 1.0

    def filt(x: Any) -> Any:
        x = np.abs(x)
        if not cubic:
            return np.where(x < 1, 1 - x, 0.0)
        a = -0.5
        return np.where(
            x < 1,
            ((a + 2) * x - (a + 3)) * x * x + 1,
            np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0),
        )

    m = np.zeros((out_size, in_size))
    for i in range(out_size):
        center = s * (i + 0.5)
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        w = filt((np.arange(xmin, xmax) - center + 0.5) * invscale)
        total = w.sum()
        m[i, xmin:xmax] = w / total if total != 0 else w
    return m


_INTERP_MODES = "nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact"
_MODE_DIMS = {"linear": 3, "bilinear": 4, "trilinear": 5, "bicubic": 4}


def interpolate(
    input: Tensor,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resample the spatial dims (all but the first two) of a 3-D, 4-D or 5-D
    input to ``size`` or by ``scale_factor``.

    Modes: ``nearest`` (PyTorch's legacy floor rule), ``nearest-exact``
    (pixel centres), ``linear``/``bilinear``/``trilinear`` (3-D/4-D/5-D),
    ``bicubic`` (4-D, a = -0.75), ``area`` (adaptive average pooling).
    ``align_corners`` maps corner pixel centres onto each other (linear and
    cubic modes only); a given ``scale_factor`` is used for the coordinate
    mapping unless ``recompute_scale_factor=True``. ``antialias`` (bilinear,
    bicubic) low-pass filters when downsampling, as PIL.

    Example::

        >>> import rtorch
        >>> interpolate(rtorch.tensor([[[0.0, 2.0]]]), size=4, mode="linear")
        tensor([[[0.0000, 0.5000, 1.5000, 2.0000]]])
    """
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                "align_corners option can only be set with the interpolating modes: "
                "linear | bilinear | bicubic | trilinear"
            )
    elif align_corners is None:
        align_corners = False
    dim = input.dim() - 2
    scale_factors: list | None
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        scale_factors = None
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(
                    "Input and output must have the same number of spatial dimensions, but got "
                    f"input with spatial dimensions of {list(input.shape[2:])} and output size "
                    f"of {size}. Please provide input tensor in (N, C, d1, d2, ...,dK) format "
                    "and output size in (o1, o2, ...,oK) format."
                )
            if not all(
                isinstance(x, int) or (isinstance(x, Tensor) and x.dim() == 0) for x in size
            ):
                raise TypeError(
                    "expected size to be one of int or Tuple[int] or Tuple[int, int] or "
                    f"Tuple[int, int, int], but got size with types {[type(x) for x in size]}"
                )
            output_size = [int(x) for x in size]
        else:
            output_size = [int(size)] * dim
    elif scale_factor is not None:
        output_size = None
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(
                    "Input and scale_factor must have the same number of spatial dimensions, but "
                    f"got input with spatial dimensions of {list(input.shape[2:])} and "
                    f"scale_factor of shape {scale_factor}. Please provide input tensor in (N, C, "
                    "d1, d2, ...,dK) format and scale_factor in (s1, s2, ...,sK) format."
                )
            scale_factors = [float(s) for s in scale_factor]
        else:
            scale_factors = [float(scale_factor)] * dim
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if mode == "area" and output_size is None:
        recompute_scale_factor = True
    if recompute_scale_factor:
        assert scale_factors is not None
        output_size = [int(input.size(i + 2) * scale_factors[i]) for i in range(dim)]
        scale_factors = None
    if antialias and not (mode in ("bilinear", "bicubic") and input.dim() == 4):
        raise ValueError(
            "Anti-alias option is restricted to bilinear and bicubic modes and requires a 4-D "
            "tensor as input"
        )
    if input.dim() not in (3, 4, 5) or mode not in (
        *_MODE_DIMS,
        "nearest",
        "nearest-exact",
        "area",
    ):
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.dim()}D) for "
            f"the modes: {_INTERP_MODES} (got {mode})"
        )
    need = _MODE_DIMS.get(mode)
    if need is not None and need != input.dim():
        if mode == "bicubic":
            raise NotImplementedError(
                f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.dim()}D) "
                f"for the modes: {_INTERP_MODES} (got {mode})"
            )
        raise NotImplementedError(f"Got {input.dim()}D input, but {mode} mode needs {need}D input")
    if output_size is None:
        assert scale_factors is not None
        output_size = [int(input.size(i + 2) * scale_factors[i]) for i in range(dim)]
    for i, o in enumerate(output_size):
        if o <= 0 or input.size(i + 2) <= 0:
            raise RuntimeError(
                f"Input and output sizes should be greater than 0, but got input "
                f"({', '.join(str(s) for s in input.shape[2:])}) and output "
                f"({', '.join(str(s) for s in output_size)})"
            )
    if not input.is_floating_point() and mode not in ("nearest", "nearest-exact"):
        if input.dtype == rtorch.uint8 and mode in ("bilinear", "bicubic"):
            # Computed in float32, rounded and saturated (PyTorch's fixed-point
            # uint8 kernel can differ by one).
            out = interpolate(
                input.float(), output_size if scale_factors is None else None, scale_factors,
                mode, align_corners, None, antialias,
            )  # fmt: skip
            return out.round().clamp(0, 255).to(rtorch.uint8)
        raise NotImplementedError(
            f"\"interpolate ({mode})\" not implemented for '{_scalar_name(input.dtype)}'"
        )
    scales = scale_factors if scale_factors is not None else [None] * dim
    ct = _coord_dtype(input)
    out = input
    for i in range(dim):
        d = i + 2
        n_in, n_out, sc = input.size(d), output_size[i], scales[i]
        if mode in ("nearest", "nearest-exact"):
            if n_in == n_out:
                continue
            idx = _nearest_indices(n_in, n_out, sc, mode == "nearest-exact")
            out = out.index_select(d, rtorch.from_numpy(idx))
        elif mode == "area":
            if n_in != n_out:
                out = _matrix_along(out, d, _area_matrix(n_in, n_out))
        elif antialias:
            out = _matrix_along(
                out, d, _antialias_matrix(n_in, n_out, bool(align_corners), sc, mode == "bicubic")
            )
        elif mode == "bicubic":
            idxs, ws = _cubic_taps(n_in, n_out, bool(align_corners), sc, ct)
            out = _taps_along(out, d, idxs, ws)
        else:
            if n_in == n_out and (align_corners or sc is None or sc == 1.0):
                continue
            idxs, ws = _linear_taps(n_in, n_out, bool(align_corners), sc, ct)
            out = _taps_along(out, d, idxs, ws)
    return out if out is not input else input.clone()


def upsample(
    input: Tensor,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Tensor:
    """Deprecated alias of :func:`interpolate`."""
    warnings.warn(
        "`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` instead.",
        stacklevel=2,
    )
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(
    input: Tensor,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
) -> Tensor:
    """Deprecated: ``interpolate(..., mode='nearest')``."""
    warnings.warn(
        "`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.",
        stacklevel=2,
    )
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(
    input: Tensor,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
) -> Tensor:
    """Deprecated: ``interpolate(..., mode='bilinear', align_corners=True)``."""
    warnings.warn(
        "`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.",
        stacklevel=2,
    )
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """``(*, C * r^2, H, W)`` -> ``(*, C, H * r, W * r)`` with ``r = upscale_factor``."""
    r = upscale_factor
    if input.dim() < 3:
        raise RuntimeError(
            "pixel_shuffle expects input to have at least 3 dimensions, but got input with "
            f"{input.dim()} dimension(s)"
        )
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    c, h, w = input.shape[-3:]
    if c % (r * r):
        raise RuntimeError(
            "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
            f"of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}"
        )
    lead = list(input.shape[:-3])
    n = len(lead)
    x = input.reshape(lead + [c // (r * r), r, r, h, w])
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(lead + [c // (r * r), h * r, w * r])


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """``(*, C, H * r, W * r)`` -> ``(*, C * r^2, H, W)``, the inverse of :func:`pixel_shuffle`."""
    r = downscale_factor
    if input.dim() < 3:
        raise RuntimeError(
            "pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
            f"{input.dim()} dimension(s)"
        )
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    c, h, w = input.shape[-3:]
    if h % r:
        raise RuntimeError(
            "pixel_unshuffle expects height to be divisible by downscale_factor, but "
            f"input.size(-2)={h} is not divisible by {r}"
        )
    if w % r:
        raise RuntimeError(
            "pixel_unshuffle expects width to be divisible by downscale_factor, but "
            f"input.size(-1)={w} is not divisible by {r}"
        )
    lead = list(input.shape[:-3])
    n = len(lead)
    x = input.reshape(lead + [c, h // r, r, w // r, r])
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(lead + [c * r * r, h // r, w // r])


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Interleave ``groups`` groups of channels: ``(N, g * k, *)`` -> ``(N, k * g, *)``."""
    if input.dim() <= 2:
        raise RuntimeError(
            f"channel_shuffle expects input with > 2 dims, but got input with sizes "
            f"{list(input.shape)}"
        )
    if groups <= 0:
        raise RuntimeError(
            f"Number of groups to divide channels in must be positive. Value of groups:{groups}"
        )
    n, c = input.size(0), input.size(1)
    if c % groups:
        raise RuntimeError(
            f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups."
        )
    rest = list(input.shape[2:])
    x = input.reshape([n, groups, c // groups] + rest).transpose(1, 2)
    return x.reshape(input.shape)


native_channel_shuffle = channel_shuffle


_ALIGN_WARNING = (
    "Default grid_sample and affine_grid behavior has changed to align_corners=False since "
    "1.3.0. Please specify align_corners=True if the old behavior is desired. See the "
    "documentation of grid_sample for details."
)


def affine_grid(theta: Tensor, size: Sequence[int], align_corners: bool | None = None) -> Tensor:
    """Sampling grid ``(N, H, W, 2)`` (or ``(N, D, H, W, 3)``) of the affine maps
    ``theta`` ``(N, 2, 3)`` (or ``(N, 3, 4)``) over normalised output
    coordinates in ``[-1, 1]``, for :func:`grid_sample`.

    Example::

        >>> import rtorch
        >>> theta = rtorch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
        >>> affine_grid(theta, (1, 1, 1, 2), align_corners=False)[0, 0]
        tensor([[-0.5000,  0.0000],
                [ 0.5000,  0.0000]])
    """
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    if not theta.is_floating_point():
        raise ValueError(
            f"Expected theta to have floating point type, but got {_dtype_str(theta.dtype)}"
        )
    size = [int(s) for s in size]
    if len(size) == 4:
        if theta.dim() != 3 or theta.shape[-2] != 2 or theta.shape[-1] != 3:
            raise ValueError(
                f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {size}. "
                f"Got {theta.shape}."
            )
        spatial = size[-2:]
    elif len(size) == 5:
        if theta.dim() != 3 or theta.shape[-2] != 3 or theta.shape[-1] != 4:
            raise ValueError(
                f"Expected a batch of 3D affine matrices of shape Nx3x4 for size {size}. "
                f"Got {theta.shape}."
            )
        spatial = size[-3:]
    else:
        raise NotImplementedError(
            "affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
            f"respectively. Got size {size}."
        )
    if align_corners and min(spatial) == 1:
        warnings.warn(
            "Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
            "align_corners=True. This is not an intended use case of affine_grid. See the "
            "documentation of affine_grid for details.",
            stacklevel=2,
        )
    elif min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    n = size[0]

    def axis(steps: int) -> Tensor:
        if steps <= 1:
            return rtorch.zeros(max(steps, 0), dtype=theta.dtype)
        g = rtorch.linspace(-1, 1, steps, dtype=theta.dtype)
        return g if align_corners else g * ((steps - 1) / steps)

    # Base grid rows (x, y[, z], 1), x varying fastest (the last spatial dim).
    axes = [axis(s) for s in reversed(spatial)]
    mesh = rtorch.meshgrid(*reversed(axes), indexing="ij")  # D/H/W order
    base = rtorch.stack([*reversed(mesh), rtorch.ones(spatial, dtype=theta.dtype)], -1)
    base = base.reshape(1, -1, len(spatial) + 1).expand(n, -1, -1)
    grid = base.bmm(theta.transpose(1, 2))
    return grid.reshape([n, *spatial, len(spatial)])


def _dtype_str(dtype: Any) -> str:
    return str(dtype)


def _grid_unnormalize(coord: Tensor, size: int, align_corners: bool) -> Tensor:
    if align_corners:
        return (coord + 1) * ((size - 1) / 2)
    return ((coord + 1) * size - 1) / 2


def _clip_coordinates(c: Tensor, size: int) -> Tensor:
    """``clamp(c, 0, size - 1)`` whose gradient is 0 on the bounds too, as
    PyTorch's grid sampler derivative."""
    inside = (c > 0) & (c < size - 1)
    return rtorch.where(inside, c, c.detach().clamp(0, size - 1))


def _reflect_coordinates(c: Tensor, twice_low: int, twice_high: int) -> Tensor:
    if twice_low == twice_high:
        return c * 0
    low = twice_low / 2
    span = (twice_high - twice_low) / 2
    c = c - low
    c = c * ((c.detach() >= 0).to(c.dtype) * 2 - 1)  # |c| with slope +1 at 0
    extra = c.fmod(span)
    flips = (c / span).floor().detach()
    even = flips.remainder(2) == 0
    return rtorch.where(even, extra + low, span - extra + low)


def _pad_coordinates(c: Tensor, size: int, padding_mode: str, align_corners: bool) -> Tensor:
    if padding_mode == "border":
        return _clip_coordinates(c, size)
    if padding_mode == "reflection":
        if align_corners:
            c = _reflect_coordinates(c, 0, 2 * (size - 1))
        else:
            c = _reflect_coordinates(c, -1, 2 * size - 1)
        return _clip_coordinates(c, size)
    return c


class _FixedGrad(rtorch.autograd.Function):
    """``out`` unchanged, with ``source`` given the fixed gradient ``fill``.

    For the kernels whose PyTorch backward reports a gradient the math does
    not produce: zeros for ``grid`` under nearest sampling, NaN for the
    frames of an impossible CTC alignment.
    """

    @staticmethod
    def forward(ctx: Any, out: Tensor, source: Tensor, fill: Tensor) -> Tensor:
        ctx.fill = fill
        return out.view_as(out)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple:
        return grad, ctx.fill, None


def grid_sample(
    input: Tensor,
    grid: Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
) -> Tensor:
    """Sample ``input`` at the normalised locations ``grid`` (``x, y[, z]`` in
    ``[-1, 1]``; ``-1``/``1`` are the corner pixels' centres with
    ``align_corners=True``, their outer edges otherwise).

    Modes ``bilinear`` (trilinear for 5-D), ``nearest`` (half to even) and
    ``bicubic`` (4-D); ``padding_mode`` ``zeros``, ``border`` or ``reflection``
    for locations outside the input. Differentiable in ``input`` and ``grid``.

    Shape:
        - input ``(N, C, H, W)``, grid ``(N, H_out, W_out, 2)``, output ``(N, C, H_out, W_out)``.
        - input ``(N, C, D, H, W)``, grid ``(N, D_out, H_out, W_out, 3)``.
    """
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(
            "nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or "
            f"'bicubic', but got: '{mode}'"
        )
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(
            "nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
            f"'reflection', but got: '{padding_mode}'"
        )
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    if input.dim() not in (4, 5) or grid.dim() != input.dim():
        raise RuntimeError(
            "grid_sampler(): expected 4D or 5D input and grid with same number of dimensions, "
            f"but got input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}"
        )
    if input.size(0) != grid.size(0):
        raise RuntimeError(
            "grid_sampler(): expected grid and input to have same batch size, but got input with "
            f"sizes {list(input.shape)} and grid with sizes {list(grid.shape)}"
        )
    k = input.dim() - 2
    if grid.size(-1) != k:
        raise RuntimeError(
            f"grid_sampler(): expected grid to have size {k} in last dimension, but got grid "
            f"with sizes {list(grid.shape)}"
        )
    if mode == "bicubic" and k != 2:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
    if input.dtype != grid.dtype:
        raise RuntimeError(
            "grid_sampler(): expected input and grid to have same dtype, but input has "
            f"{input.dtype} and grid has {grid.dtype}"
        )
    n, c = input.size(0), input.size(1)
    sizes = list(input.shape[2:])  # (D,) H, W
    out_spatial = list(grid.shape[1:-1])
    flat = input.reshape(n, c, -1)
    strides = [1] * k
    for s in range(k - 2, -1, -1):
        strides[s] = strides[s + 1] * sizes[s + 1]
    # coords[s]: the unnormalised coordinate along spatial dim s; grid's last
    # dim lists them x (width, the last dim) first.
    pts = grid.reshape(n, -1, k)
    coords = [_grid_unnormalize(pts[..., k - 1 - s], sizes[s], align_corners) for s in range(k)]

    def sample(idx: list, weight: Tensor | None) -> Tensor:
        valid = None
        lin = None
        for s in range(k):
            ok = (idx[s] >= 0) & (idx[s] < sizes[s])
            valid = ok if valid is None else valid & ok
            term = idx[s].clamp(0, sizes[s] - 1) * strides[s]
            lin = term if lin is None else lin + term
        vals = flat.gather(2, lin.unsqueeze(1).expand(n, c, lin.size(1)))
        mask = valid.to(input.dtype).unsqueeze(1)
        return vals * (mask if weight is None else (weight * mask.squeeze(1)).unsqueeze(1))

    if mode == "bicubic":
        x0 = coords[1].detach().floor()
        y0 = coords[0].detach().floor()
        tx, ty = coords[1] - x0, coords[0] - y0
        a = -0.75

        def cc(t: Tensor) -> list:
            def near(x: Tensor) -> Tensor:
                return ((a + 2) * x - (a + 3)) * x * x + 1

            def far(x: Tensor) -> Tensor:
                return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

            return [far(t + 1), near(t), near(1 - t), far(2 - t)]

        wx, wy = cc(tx), cc(ty)
        out = None
        for i in range(4):
            yi = _pad_coordinates(y0 + (i - 1), sizes[0], padding_mode, align_corners)
            for j in range(4):
                xj = _pad_coordinates(x0 + (j - 1), sizes[1], padding_mode, align_corners)
                term = sample([yi.long(), xj.long()], wy[i] * wx[j])
                out = term if out is None else out + term
    else:
        coords = [
            _pad_coordinates(cs, sizes[s], padding_mode, align_corners)
            for s, cs in enumerate(coords)
        ]
        if mode == "nearest":
            idx = [cs.detach().round().long() for cs in coords]
            out = sample(idx, None)
            if grid.requires_grad:
                # Piecewise constant in the grid: PyTorch reports zeros, not None.
                out = _FixedGrad.apply(out, grid, rtorch.zeros_like(grid))
        else:
            lows = [cs.detach().floor() for cs in coords]
            fracs = [cs - lo for cs, lo in zip(coords, lows, strict=True)]
            lows_l = [lo.long() for lo in lows]
            out = None
            for corner in range(2**k):
                bits = [(corner >> (k - 1 - s)) & 1 for s in range(k)]
                w = None
                for s in range(k):
                    ws = fracs[s] if bits[s] else 1 - fracs[s]
                    w = ws if w is None else w * ws
                term = sample([lows_l[s] + bits[s] for s in range(k)], w)
                out = term if out is None else out + term
    return out.reshape([n, c, *out_spatial])  # type: ignore[union-attr]


# --- CTC loss -------------------------------------------------------------------


def _lengths(x: Any) -> list[int]:
    if isinstance(x, Tensor):
        return [int(v) for v in x.reshape(-1).tolist()]
    if isinstance(x, int):
        return [x]
    return [int(v) for v in x]


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """Connectionist Temporal Classification loss: ``-log`` of the total
    probability of every alignment of each target to its input.

    The forward (alpha) recursion runs in log space over the blank-interleaved
    target, one batched step per time frame, with differentiable tensor ops;
    autograd gives the gradient. Impossible alignments give ``inf`` and a NaN
    gradient (``0`` and a zero gradient with ``zero_infinity=True``). ``reduction='mean'``
    divides each loss by its target length, then averages over the batch.

    Shape:
        - log_probs: ``(T, N, C)`` or ``(T, C)`` log-softmax outputs.
        - targets: ``(N, S)`` padded, or the ``sum(target_lengths)`` targets concatenated.
        - input_lengths, target_lengths: ``(N,)`` (tensors or sequences of ints).
        - output: scalar, or ``(N,)`` with ``reduction='none'``.

    Example::

        >>> import rtorch
        >>> lp = rtorch.tensor([[[0.5, 0.5]]]).log()  # one frame, two classes
        >>> ctc_loss(lp, rtorch.tensor([[1]]), [1], [1], reduction="sum")  # -log(0.5)
        tensor(0.6931)
    """
    _check_reduction(reduction)
    unbatched = log_probs.dim() == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
        targets = targets.unsqueeze(0)
    t_max, n, n_classes = log_probs.shape
    if not 0 <= blank < n_classes:
        raise RuntimeError("blank must be in label range")
    in_lens, tgt_lens = _lengths(input_lengths), _lengths(target_lengths)
    if len(in_lens) != n:
        raise RuntimeError("input_lengths must be of size batch_size")
    if len(tgt_lens) != n:
        raise RuntimeError("target_lengths must be of size batch_size")
    for name, values, bound in (
        ("input_lengths", in_lens, t_max),
        ("target_lengths", tgt_lens, None),
    ):
        for v in values:
            if v < 0:
                raise RuntimeError(
                    f"Expected {name} to have value at least 0, but got value {v} (while "
                    "checking arguments for ctc_loss_allocate_outputs)"
                )
            if bound is not None and v > bound:
                raise RuntimeError(
                    f"Expected {name} to have value at most {bound}, but got value {v} (while "
                    "checking arguments for ctc_loss_allocate_outputs)"
                )
    s_max = max(tgt_lens) if tgt_lens else 0
    tg = targets.long()
    if tg.dim() == 1 and not unbatched:
        # Concatenated targets: split into a padded (N, S) matrix.
        rows, start = [], 0
        for length in tgt_lens:
            row = tg[start : start + length].tolist()
            rows.append(row + [blank] * (s_max - length))
            start += length
        tg = rtorch.tensor(rows, dtype=rtorch.int64).reshape(n, s_max)
    elif tg.size(1) < s_max:
        raise RuntimeError(
            f"Expected tensor to have size at least {s_max} at dimension 1, but got size "
            f"{tg.size(1)} for argument #2 'targets' (while checking arguments for "
            "ctc_loss_allocate_outputs)"
        )
    tg = tg[:, :s_max]
    width = 2 * s_max + 1
    # Blank-interleaved targets (N, 2S+1) and where the skip transition s-2 -> s is allowed.
    ext = rtorch.full((n, width), blank, dtype=rtorch.int64)
    if s_max:
        ext[:, 1::2] = tg
    skip = rtorch.zeros((n, width), dtype=rtorch.bool)
    if s_max > 1:
        skip[:, 3::2] = (tg[:, 1:] != tg[:, :-1]) & (tg[:, 1:] != blank)
    dtype = log_probs.dtype
    neg = -1e30 if dtype == rtorch.float64 else -1e20
    lp = log_probs.gather(2, ext.unsqueeze(0).expand(t_max, n, width))  # (T, N, 2S+1)
    init = rtorch.full((n, width), neg, dtype=dtype)
    init[:, :2] = 0.0
    alpha = (init + lp[0]) if t_max else init
    if width > 2:
        alpha = rtorch.cat([alpha[:, :2], rtorch.full((n, width - 2), neg, dtype=dtype)], 1)
    pad1 = rtorch.full((n, 1), neg, dtype=dtype)
    pad2 = rtorch.full((n, 2), neg, dtype=dtype)
    skip_f = skip.to(dtype)
    in_len_t = rtorch.tensor(in_lens, dtype=rtorch.int64).reshape(n, 1)
    for t in range(1, t_max):
        prev1 = rtorch.cat([pad1, alpha[:, :-1]], 1)
        prev2 = rtorch.cat([pad2, alpha[:, :-2]], 1) if width > 1 else pad1
        prev2 = prev2 * skip_f + neg * (1 - skip_f)
        new = rtorch.stack([alpha, prev1, prev2]).logsumexp(0) + lp[t]
        alpha = rtorch.where(in_len_t > t, new, alpha)
    end = rtorch.tensor([2 * s for s in tgt_lens], dtype=rtorch.int64).reshape(n, 1)
    last_blank = alpha.gather(1, end)
    last_label = alpha.gather(1, (end - 1).clamp_min(0))
    has_label = (end > 0).to(dtype)
    last_label = last_label * has_label + neg * (1 - has_label)
    ll = rtorch.cat([last_blank, last_label], 1).logsumexp(1)
    impossible = (ll < neg / 2) | (in_len_t.reshape(-1) == 0) & (end.reshape(-1) > 0)
    loss = -ll
    if zero_infinity:
        loss = rtorch.where(impossible, rtorch.zeros((), dtype=dtype), loss)
    else:
        loss = rtorch.where(impossible, rtorch.full((), math.inf, dtype=dtype), loss)
        if log_probs.requires_grad and bool(impossible.any()):
            # An infinite loss has no gradient: PyTorch gives NaN over the
            # impossible samples' input frames.
            frames = rtorch.arange(t_max).reshape(t_max, 1) < in_len_t.reshape(1, n)
            nan = (frames & impossible.reshape(1, n)).unsqueeze(2).expand_as(log_probs)
            fill = rtorch.zeros_like(log_probs).masked_fill(nan, math.nan)
            loss = _FixedGrad.apply(loss, log_probs, fill)
    if unbatched:
        loss = loss.squeeze(0)
    if reduction == "mean":
        lengths = rtorch.tensor(tgt_lens, dtype=dtype).clamp_min(1)
        return (loss / (lengths.squeeze(0) if unbatched else lengths)).mean()
    if reduction == "sum":
        return loss.sum()
    return loss


__all__ += [
    "scaled_dot_product_attention", "multi_head_attention_forward", "rrelu", "rrelu_",
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "pixel_shuffle",
    "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle", "affine_grid", "grid_sample",
    "ctc_loss",
]  # fmt: skip


# ---------------------------------------------------------------- embedding_bag


def embedding_bag(
    input: Tensor,
    weight: Tensor,
    offsets: Tensor | None = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """Sums, means or maxima of bags of embedding rows, without building the
    intermediate ``(N, embedding_dim)`` lookup as a separate step.

    A 2-D ``input`` ``(B, N)`` is ``B`` bags of ``N`` indices; a 1-D ``input``
    is cut into bags starting at ``offsets`` (with ``include_last_offset`` the
    last offset ends the last bag). Indices equal to ``padding_idx`` are left
    out of their bag (and of the mean's count); empty bags give zeros.
    ``per_sample_weights`` (``mode='sum'`` only) scales each looked-up row.

    Shape:
        - input: ``(B, N)`` or ``(N)`` integer; offsets ``(B)`` (``(B + 1)`` with
          ``include_last_offset``); weight ``(num_embeddings, embedding_dim)``.
        - output: ``(B, embedding_dim)``.

    Example::

        >>> import rtorch
        >>> w = rtorch.arange(6.0).reshape(3, 2)
        >>> embedding_bag(rtorch.tensor([0, 2, 1]), w, rtorch.tensor([0, 2]), mode="sum")
        tensor([[4., 6.],
                [2., 3.]])
    """
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding_bag: scale_grad_by_freq and sparse are not supported")
    if weight.dim() != 2:
        raise ValueError(
            f"weight has to be a 2D Tensor, but got Tensor of dimension {weight.dim()}"
        )
    if input.is_floating_point() or (offsets is not None and offsets.is_floating_point()):
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar "
            f"types: Long, Int; but got {input.type()} instead (while checking arguments for "
            "embedding_bag)"
        )
    n_rows = weight.size(0)
    if padding_idx is not None:
        if padding_idx > 0:
            if padding_idx >= n_rows:
                raise AssertionError("padding_idx must be within num_embeddings")
        elif padding_idx < 0:
            if padding_idx < -n_rows:
                raise AssertionError("padding_idx must be within num_embeddings")
            padding_idx = n_rows + padding_idx
    if per_sample_weights is not None and input.size() != per_sample_weights.size():
        raise ValueError(
            f"embedding_bag: If per_sample_weights ({per_sample_weights.shape}) is not None, "
            f"then it must have the same shape as the input ({input.shape})"
        )
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError(
                "if input is 2D, then offsets has to be None, as input is treated is a "
                "mini-batch of fixed length sequences. However, found offsets of type "
                f"{type(offsets).__name__}"
            )
        n_bags, per_bag = input.size(0), input.size(1)
        starts = [b * per_bag for b in range(n_bags)]
        ends = [s + per_bag for s in starts]
        input = input.reshape(-1)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
    elif input.dim() == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if offsets.dim() != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        offs = [int(v) for v in offsets.tolist()]
        if offs and offs[0] != 0:
            raise ValueError(
                "offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start "
                f"from position 0. However, got {offs[0]}"
            )
        if offs and offs[-1] > input.size(0):
            raise ValueError(
                f"offsets[-1] can not be greater than input's length ({input.size(0)}), but got "
                f"offsets[-1] of {offs[-1]}"
            )
        if include_last_offset:
            starts, ends = offs[:-1], offs[1:]
        else:
            starts, ends = offs, offs[1:] + [input.size(0)]
        n_bags = len(starts)
    else:
        raise ValueError(
            f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.dim()}"
        )
    if mode not in ("sum", "mean", "max"):
        raise ValueError("mode has to be one of sum, mean or max")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(
            "embedding_bag: per_sample_weights was not None. per_sample_weights is only "
            f"supported for mode='sum' (got mode='{mode}'). Please open a feature request on "
            "GitHub."
        )
    if input.numel() and (int(input.max()) >= n_rows or int(input.min()) < 0):
        raise IndexError("index out of range in self")
    counts = [max(e - s, 0) for s, e in zip(starts, ends, strict=True)]
    used = sum(counts)
    # Elements past the last bag (include_last_offset) are dropped.
    bag_of = rtorch.repeat_interleave(
        rtorch.arange(n_bags), rtorch.tensor(counts, dtype=rtorch.int64)
    )
    idx = input[:used] if used != input.numel() else input
    if max_norm is not None:
        embedding(idx, weight, None, max_norm, norm_type)  # renormalises rows in place
    rows = weight[idx]
    keep = None
    if padding_idx is not None:
        keep = (idx != padding_idx).to(weight.dtype)
        rows = rows * keep.unsqueeze(1)
    if per_sample_weights is not None:
        rows = rows * per_sample_weights[:used].to(weight.dtype).unsqueeze(1)
    dim = weight.size(1)
    if mode == "max":
        if keep is not None:
            sel = keep.nonzero().reshape(-1)
            rows, bag_of = rows[sel], bag_of[sel]
        index = bag_of.unsqueeze(1).expand(rows.size(0), dim)
        return weight.new_zeros(n_bags, dim).scatter_reduce(
            0, index, rows, "amax", include_self=False
        )
    out = weight.new_zeros(n_bags, dim).index_add(0, bag_of, rows)
    if mode == "mean":
        if keep is None:
            n = rtorch.tensor(counts, dtype=weight.dtype)
        else:
            n = weight.new_zeros(n_bags).index_add(0, bag_of, keep)
        out = out / n.clamp(min=1).unsqueeze(1)
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
