"""``rtorch.Size``: the tuple subclass shapes are returned as."""

from __future__ import annotations

import math


class Size(tuple):
    """The shape of a tensor: a tuple of ints that prints like PyTorch's.

    Example::

        >>> import rtorch
        >>> rtorch.zeros(2, 3).shape
        torch.Size([2, 3])
    """

    def __repr__(self) -> str:
        return f"torch.Size([{', '.join(str(d) for d in self)}])"

    def numel(self) -> int:
        """The number of elements a tensor of this shape holds."""
        return math.prod(self)

    def __getitem__(self, key):  # type: ignore[override]
        out = super().__getitem__(key)
        return Size(out) if isinstance(key, slice) else out

    def __add__(self, other):  # type: ignore[override]
        return Size(tuple(self) + tuple(other))

    def __radd__(self, other):
        return Size(tuple(other) + tuple(self))

    def __mul__(self, n):  # type: ignore[override]
        return Size(tuple(self) * n)

    __rmul__ = __mul__

    def __reduce__(self):
        return (Size, (tuple(self),))
