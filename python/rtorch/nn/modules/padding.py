"""Padding layers: constant (and zero), reflection, replication and circular,
for 1-3 trailing spatial dims; each calls :func:`rtorch.nn.functional.pad`."""

from __future__ import annotations

from collections.abc import Sequence

from rtorch._C import Tensor
from rtorch.nn import functional as F
from rtorch.nn.modules.module import Module

__all__ = [
    "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d",
    "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
    "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d",
    "ZeroPad3d",
]  # fmt: skip


def _ntuple(padding: int | Sequence[int], n: int) -> tuple[int, ...]:
    if isinstance(padding, Sequence):
        return tuple(padding)
    return (padding,) * n


class _PadNd(Module):
    __constants__ = ["padding"]
    _mode = "constant"
    _ndim = 1

    def __init__(self, padding: int | Sequence[int]) -> None:
        super().__init__()
        self.padding = _ntuple(padding, 2 * self._ndim)

    def forward(self, input: Tensor) -> Tensor:
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    __constants__ = ["padding", "value"]

    def __init__(self, padding: int | Sequence[int], value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim with ``value``: ``padding`` is an int or
    ``(left, right)``; negative amounts crop.

    Shape:
        - Input: ``(C, W_in)`` or ``(N, C, W_in)``; Output: ``W_out = W_in + left + right``.

    Example::

        >>> import rtorch
        >>> rtorch.nn.ConstantPad1d((1, 2), 3.5)(rtorch.zeros(1, 2))
        tensor([[3.5000, 0.0000, 0.0000, 3.5000, 3.5000]])
    """


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dims with ``value``: ``padding`` is an int or
    ``(left, right, top, bottom)``."""

    _ndim = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last three dims with ``value``: ``padding`` is an int or
    ``(left, right, top, bottom, front, back)``."""

    _ndim = 3


class ZeroPad1d(ConstantPad1d):
    """Pad the last dim with zeros.

    Example::

        >>> import rtorch
        >>> rtorch.nn.ZeroPad1d(1)(rtorch.ones(1, 2))
        tensor([[0., 1., 1., 0.]])
    """

    def __init__(self, padding: int | Sequence[int]) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last two dims with zeros."""

    def __init__(self, padding: int | Sequence[int]) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """Pad the last three dims with zeros."""

    def __init__(self, padding: int | Sequence[int]) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Pad the last dim with its reflection (the edge not repeated); each
    amount must be less than the dim's size.

    Example::

        >>> import rtorch
        >>> rtorch.nn.ReflectionPad1d(2)(rtorch.arange(4.0).reshape(1, 1, 4))
        tensor([[[2., 1., 0., 1., 2., 3., 2., 1.]]])
    """

    _mode = "reflect"


class ReflectionPad2d(ReflectionPad1d):
    """Pad the last two dims with their reflection."""

    _ndim = 2


class ReflectionPad3d(ReflectionPad1d):
    """Pad the last three dims with their reflection."""

    _ndim = 3


class ReplicationPad1d(_PadNd):
    """Pad the last dim by repeating its edge values.

    Example::

        >>> import rtorch
        >>> rtorch.nn.ReplicationPad1d(2)(rtorch.arange(3.0).reshape(1, 1, 3))
        tensor([[[0., 0., 0., 1., 2., 2., 2.]]])
    """

    _mode = "replicate"


class ReplicationPad2d(ReplicationPad1d):
    """Pad the last two dims by repeating their edge values."""

    _ndim = 2


class ReplicationPad3d(ReplicationPad1d):
    """Pad the last three dims by repeating their edge values."""

    _ndim = 3


class _CircularPadNd(_PadNd):
    _mode = "circular"

    def forward(self, input: Tensor) -> Tensor:
        lo = self._ndim + 1
        if input.dim() not in (lo, lo + 1):
            raise ValueError(f"expected {lo}D or {lo + 1}D input (got {input.dim()}D input)")
        return F.pad(input, self.padding, "circular")


class CircularPad1d(_CircularPadNd):
    """Pad the last dim by wrapping around (periodic boundary).

    Example::

        >>> import rtorch
        >>> rtorch.nn.CircularPad1d(1)(rtorch.arange(3.0).reshape(1, 1, 3))
        tensor([[[2., 0., 1., 2., 0.]]])
    """


class CircularPad2d(_CircularPadNd):
    """Pad the last two dims by wrapping around."""

    _ndim = 2


class CircularPad3d(_CircularPadNd):
    """Pad the last three dims by wrapping around."""

    _ndim = 3
