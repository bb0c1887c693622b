"""``ChannelShuffle`` (ShuffleNet)."""

from __future__ import annotations

from rtorch._C import Tensor
from rtorch.nn import functional as F
from rtorch.nn.modules.module import Module

__all__ = ["ChannelShuffle"]


class ChannelShuffle(Module):
    """Split the channels (dim 1) into ``groups`` and interleave them:
    ``(N, g * k, *)`` viewed as ``(N, g, k, *)``, transposed to ``(N, k, g, *)``.

    Example::

        >>> import rtorch
        >>> rtorch.nn.ChannelShuffle(2)(rtorch.arange(4.0).reshape(1, 4, 1))
        tensor([[[0.],
                 [2.],
                 [1.],
                 [3.]]])
    """

    __constants__ = ["groups"]

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input: Tensor) -> Tensor:
        return F.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
