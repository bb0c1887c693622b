"""``Fold`` and ``Unfold``: sliding blocks to and from images (col2im / im2col)."""

from __future__ import annotations

from collections.abc import Sequence

from rtorch._C import Tensor
from rtorch.nn import functional as F
from rtorch.nn.modules.module import Module

__all__ = ["Fold", "Unfold"]


class Fold(Module):
    """Sums sliding blocks ``(N, C * prod(kernel_size), L)`` into an image
    ``(N, C, *output_size)`` (see :func:`rtorch.nn.functional.fold`).

    Example::

        >>> import rtorch
        >>> fold = rtorch.nn.Fold(output_size=(4, 5), kernel_size=(2, 2))
        >>> fold(rtorch.randn(1, 3 * 2 * 2, 12)).shape
        torch.Size([1, 3, 4, 5])
    """

    def __init__(
        self,
        output_size: int | Sequence[int],
        kernel_size: int | Sequence[int],
        dilation: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        stride: int | Sequence[int] = 1,
    ) -> None:
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input: Tensor) -> Tensor:
        return F.fold(
            input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride
        )

    def extra_repr(self) -> str:
        return (
            "output_size={output_size}, kernel_size={kernel_size}, "
            "dilation={dilation}, padding={padding}, stride={stride}".format(**self.__dict__)
        )


class Unfold(Module):
    """Extracts sliding blocks ``(N, C, H, W)`` to ``(N, C * prod(kernel_size), L)``
    (see :func:`rtorch.nn.functional.unfold`).

    Example::

        >>> import rtorch
        >>> unfold = rtorch.nn.Unfold(kernel_size=(2, 3))
        >>> unfold(rtorch.randn(2, 5, 3, 4)).shape
        torch.Size([2, 30, 4])
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        dilation: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        stride: int | Sequence[int] = 1,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input: Tensor) -> Tensor:
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (
            "kernel_size={kernel_size}, dilation={dilation}, padding={padding}, "
            "stride={stride}".format(**self.__dict__)
        )
