"""Folding an eval-mode batch norm into the preceding convolution or linear
layer, as ``torch.nn.utils.fusion``."""

from __future__ import annotations

import copy
from typing import Any

import rtorch
from rtorch._C import Tensor
from rtorch.nn.parameter import Parameter

__all__ = [
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
]


def fuse_conv_bn_eval(conv: Any, bn: Any, transpose: bool = False) -> Any:
    """A copy of ``conv`` whose weight and bias include ``bn``'s normalisation
    (both must be in eval mode).

    Args:
        conv: a convolution (or any module with ``weight``, ``bias``).
        bn: the batch norm applied to its output.
        transpose: ``conv`` is a transposed convolution (output channels on dim 1).
    """
    if conv.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    fused_conv = copy.deepcopy(conv)
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError
    fused_conv.weight, fused_conv.bias = fuse_conv_bn_weights(
        fused_conv.weight,
        fused_conv.bias,
        bn.running_mean,
        bn.running_var,
        bn.eps,
        bn.weight,
        bn.bias,
        transpose,
    )
    return fused_conv


def fuse_conv_bn_weights(
    conv_w: Tensor,
    conv_b: Tensor | None,
    bn_rm: Tensor,
    bn_rv: Tensor,
    bn_eps: float,
    bn_w: Tensor | None,
    bn_b: Tensor | None,
    transpose: bool = False,
) -> tuple[Parameter, Parameter]:
    """``(weight, bias)`` of a convolution followed by a batch norm with these
    statistics and affine parameters, as one convolution.

    Example::

        >>> import rtorch
        >>> w, b = fuse_conv_bn_weights(rtorch.ones(2, 1, 3), None, rtorch.zeros(2),
        ...                             rtorch.full((2,), 4.0), 0.0, None, None)
        >>> w[:, 0, 0].tolist(), b.tolist()
        ([0.5, 0.5], [0.0, 0.0])
    """
    conv_weight_dtype = conv_w.dtype
    conv_bias_dtype = conv_b.dtype if conv_b is not None else conv_weight_dtype
    if conv_b is None:
        conv_b = rtorch.zeros_like(bn_rm)
    if bn_w is None:
        bn_w = rtorch.ones_like(bn_rm)
    if bn_b is None:
        bn_b = rtorch.zeros_like(bn_rm)
    bn_var_rsqrt = (bn_rv + bn_eps).rsqrt()
    ones = [1] * (len(conv_w.shape) - 2)
    shape = [1, -1, *ones] if transpose else [-1, 1, *ones]
    with rtorch.no_grad():
        fused_w = (conv_w * (bn_w * bn_var_rsqrt).reshape(shape)).to(dtype=conv_weight_dtype)
        fused_b = ((conv_b - bn_rm) * bn_var_rsqrt * bn_w + bn_b).to(dtype=conv_bias_dtype)
    return (
        Parameter(fused_w, conv_w.requires_grad),
        Parameter(fused_b, conv_b.requires_grad),
    )


def fuse_linear_bn_eval(linear: Any, bn: Any) -> Any:
    """A copy of ``linear`` whose weight and bias include ``bn``'s normalisation
    (both in eval mode; ``bn.num_features`` equal to ``linear.out_features`` or 1).

    Example::

        >>> import rtorch
        >>> lin, bn = rtorch.nn.Linear(3, 2).eval(), rtorch.nn.BatchNorm1d(2).eval()
        >>> x = rtorch.randn(4, 3)
        >>> rtorch.allclose(fuse_linear_bn_eval(lin, bn)(x), bn(lin(x)), atol=1e-6)
        True
    """
    if linear.training or bn.training:
        raise AssertionError("Fusion only for eval!")
    fused_linear = copy.deepcopy(linear)
    if not (linear.out_features == bn.num_features or bn.num_features == 1):
        raise AssertionError(
            "To fuse, linear.out_features == bn.num_features or bn.num_features == 1"
        )
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError
    fused_linear.weight, fused_linear.bias = fuse_linear_bn_weights(
        fused_linear.weight,
        fused_linear.bias,
        bn.running_mean,
        bn.running_var,
        bn.eps,
        bn.weight,
        bn.bias,
    )
    return fused_linear


def fuse_linear_bn_weights(
    linear_w: Tensor,
    linear_b: Tensor | None,
    bn_rm: Tensor,
    bn_rv: Tensor,
    bn_eps: float,
    bn_w: Tensor,
    bn_b: Tensor,
) -> tuple[Parameter, Parameter]:
    """``(weight, bias)`` of a linear layer followed by a batch norm, as one linear layer."""
    linear_weight_dtype = linear_w.dtype
    linear_bias_dtype = linear_b.dtype if linear_b is not None else linear_weight_dtype
    if linear_b is None:
        linear_b = rtorch.zeros_like(bn_rm)
    with rtorch.no_grad():
        bn_scale = bn_w * (bn_rv + bn_eps).rsqrt()
        fused_w = linear_w * bn_scale.unsqueeze(-1).to(dtype=linear_weight_dtype)
        fused_b = ((linear_b - bn_rm) * bn_scale + bn_b).to(dtype=linear_bias_dtype)
    return Parameter(fused_w, linear_w.requires_grad), Parameter(fused_b, linear_b.requires_grad)
