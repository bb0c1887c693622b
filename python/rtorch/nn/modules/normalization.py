"""``LayerNorm`` and ``GroupNorm``."""

from __future__ import annotations

import numbers
from typing import Any

import rtorch
from rtorch._C import Tensor
from rtorch.nn import functional as F
from rtorch.nn import init
from rtorch.nn.modules.module import Module
from rtorch.nn.parameter import Parameter

__all__ = ["LayerNorm", "GroupNorm", "LocalResponseNorm"]


class LayerNorm(Module):
    """Normalise the trailing ``normalized_shape`` dims of each sample, then
    apply a learnt elementwise scale and shift.

    Args:
        normalized_shape: the trailing shape to normalise over (an int for one dim).
        eps: added to the variance. Default: 1e-5.
        elementwise_affine: learn ``weight`` (ones) and ``bias`` (zeros). Default: ``True``.
        bias: learn ``bias`` too (when affine). Default: ``True``.

    Shape:
        - Input: ``(N, *)``; Output: ``(N, *)``.

    Example::

        >>> import rtorch
        >>> ln = rtorch.nn.LayerNorm(4)
        >>> ln(rtorch.arange(8.0).reshape(2, 4)).mean(-1).abs().max().item() < 1e-6
        True
    """

    def __init__(
        self,
        normalized_shape: Any,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(rtorch.empty(self.normalized_shape, device=device, dtype=dtype))
            if bias:
                self.bias = Parameter(
                    rtorch.empty(self.normalized_shape, device=device, dtype=dtype)
                )
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.elementwise_affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Normalise each of ``num_groups`` channel groups per sample, then apply a
    learnt per-channel scale and shift.

    Args:
        num_groups: groups to split the channels (dim 1) into.
        num_channels: the number of channels, divisible by ``num_groups``.
        eps: added to the variance. Default: 1e-5.
        affine: learn ``weight`` and ``bias`` per channel. Default: ``True``.

    Shape:
        - Input: ``(N, C, *)``; Output: ``(N, C, *)``.
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = Parameter(rtorch.empty(num_channels, device=device, dtype=dtype))
            if bias:
                self.bias = Parameter(rtorch.empty(num_channels, device=device, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


class LocalResponseNorm(Module):
    """Normalise each element by the energy of ``size`` neighbouring channels:
    ``b_c = a_c / (k + alpha / size * sum_{c'} a_{c'} ** 2) ** beta``.

    Args:
        size: the number of neighbouring channels.
        alpha: the multiplicative factor. Default: 1e-4.
        beta: the exponent. Default: 0.75.
        k: the additive factor. Default: 1.

    Shape:
        - Input: ``(N, C, *)``; Output: the same.

    Example::

        >>> import rtorch
        >>> lrn = rtorch.nn.LocalResponseNorm(2)
        >>> lrn(rtorch.ones(1, 2, 1)).shape
        torch.Size([1, 2, 1])
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input: Tensor) -> Tensor:
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
