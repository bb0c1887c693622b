"""``Parameter``: a tensor that a module registers as one of its weights."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import rtorch
import rtorch._utils
from rtorch._C import Tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A tensor that is a module parameter: assigning one as a module
    attribute registers it, and it requires grad by default.

    It shares storage with ``data``; no copy is made.

    Args:
        data: the parameter tensor (an empty float tensor when omitted).
        requires_grad: whether the parameter requires gradient. Default: ``True``.

    Example::

        >>> import rtorch
        >>> p = rtorch.nn.Parameter(rtorch.zeros(2))
        >>> p.requires_grad
        True
    """

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> Parameter:
        if data is None:
            data = rtorch.empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(
                f"Parameter(): argument 'data' must be Tensor, not {type(data).__name__}"
            )
        return Tensor._make_subclass(cls, data, requires_grad)

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.data.clone(), self.requires_grad)
        memo[id(self)] = result
        return result

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, proto: Any) -> tuple:
        # Hooks are never serialized (PyTorch's Note [Don't serialize hooks]):
        # an empty OrderedDict keeps the argument list PyTorch expects.
        state = dict(self.__dict__)
        if not state:
            return (
                rtorch._utils._rebuild_parameter,
                (self.data, self.requires_grad, OrderedDict()),
            )
        return (
            rtorch._utils._rebuild_parameter_with_state,
            (self.data, self.requires_grad, OrderedDict(), state),
        )
