"""``rtorch.nn``: neural network building blocks.

``Module`` and its containers, layers (``nn.modules``), their stateless forms
(``nn.functional``), weight initialisers (``nn.init``) and ``Parameter``.
"""

from rtorch.nn.parameter import Parameter  # isort: skip
from rtorch.nn import functional, init, modules, utils  # isort: skip
from rtorch.nn.modules import *  # noqa: F403

__all__ = ["Parameter", "functional", "init", "modules", "utils", *modules.__all__]
