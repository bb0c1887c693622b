"""``Identity``, ``Linear`` and ``Bilinear``."""

from __future__ import annotations

import math
from typing import Any

import rtorch
from rtorch._C import Tensor
from rtorch.nn import functional as F
from rtorch.nn import init
from rtorch.nn.modules.module import Module
from rtorch.nn.parameter import Parameter

__all__ = ["Identity", "Linear", "Bilinear"]


class Identity(Module):
    """Returns its input; takes (and ignores) any arguments.

    Example::

        >>> import rtorch
        >>> x = rtorch.ones(2)
        >>> rtorch.nn.Identity(54, unused="argument")(x) is x
        True
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """Applies ``y = x A^T + b``.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: whether to learn an additive bias. Default: ``True``.

    Shape:
        - Input: ``(*, in_features)``.
        - Output: ``(*, out_features)``.

    Weight and bias start from U(-1/sqrt(in_features), 1/sqrt(in_features))
    (``kaiming_uniform_`` with ``a=sqrt(5)`` for the weight), as in PyTorch.

    Example::

        >>> import rtorch
        >>> m = rtorch.nn.Linear(20, 30)
        >>> m(rtorch.randn(128, 20)).shape
        torch.Size([128, 30])
    """

    in_features: int
    out_features: int
    weight: Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(rtorch.empty(out_features, in_features, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(rtorch.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # a=sqrt(5) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's historical default.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Bilinear(Module):
    """Applies ``y = x1^T A x2 + b``.

    Args:
        in1_features: size of each first input sample.
        in2_features: size of each second input sample.
        out_features: size of each output sample.
        bias: whether to learn an additive bias. Default: ``True``.

    Shape:
        - Input1: ``(*, in1_features)``; Input2: ``(*, in2_features)``.
        - Output: ``(*, out_features)``.

    Example::

        >>> import rtorch
        >>> m = rtorch.nn.Bilinear(20, 30, 40)
        >>> m(rtorch.randn(128, 20), rtorch.randn(128, 30)).shape
        torch.Size([128, 40])
    """

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        self.weight = Parameter(
            rtorch.empty(out_features, in1_features, in2_features, device=device, dtype=dtype)
        )
        if bias:
            self.bias = Parameter(rtorch.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.in1_features <= 0:
            raise ValueError(
                f"in1_features must be > 0, but got (in1_features={self.in1_features})"
            )
        bound = 1 / math.sqrt(self.weight.size(1))
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )


class NonDynamicallyQuantizableLinear(Linear):
    """A :class:`Linear` that PyTorch's quantization tooling leaves alone;
    ``MultiheadAttention.out_proj`` is one (kept for checkpoint and type parity)."""
