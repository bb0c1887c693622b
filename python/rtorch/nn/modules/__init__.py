"""The layers of ``rtorch.nn``, one file per family as in PyTorch."""

from rtorch.nn.modules import (
    activation,
    batchnorm,
    container,
    conv,
    dropout,
    flatten,
    fold,
    linear,
    loss,
    module,
    normalization,
    sparse,
)
from rtorch.nn.modules.activation import *  # noqa: F403
from rtorch.nn.modules.batchnorm import *  # noqa: F403
from rtorch.nn.modules.container import *  # noqa: F403
from rtorch.nn.modules.conv import *  # noqa: F403
from rtorch.nn.modules.dropout import *  # noqa: F403
from rtorch.nn.modules.flatten import *  # noqa: F403
from rtorch.nn.modules.fold import *  # noqa: F403
from rtorch.nn.modules.linear import *  # noqa: F403
from rtorch.nn.modules.loss import *  # noqa: F403
from rtorch.nn.modules.module import *  # noqa: F403
from rtorch.nn.modules.normalization import *  # noqa: F403
from rtorch.nn.modules.sparse import *  # noqa: F403

__all__ = [
    name
    for family in (
        module, container, linear, flatten, activation, dropout, sparse, normalization,
        batchnorm, loss, conv, fold,
    )
    for name in family.__all__
]  # fmt: skip
