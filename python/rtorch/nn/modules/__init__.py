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
    rnn,
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
from rtorch.nn.modules.rnn import *  # noqa: F403
from rtorch.nn.modules.sparse import *  # noqa: F403

# --- attention, transformer, resampling, padding ---
from rtorch.nn.modules import (  # isort: skip
    channelshuffle,
    padding,
    pixelshuffle,
    transformer,
    upsampling,
)
from rtorch.nn.modules.channelshuffle import *  # noqa: F403, E402
from rtorch.nn.modules.padding import *  # noqa: F403, E402
from rtorch.nn.modules.pixelshuffle import *  # noqa: F403, E402
from rtorch.nn.modules.transformer import *  # noqa: F403, E402
from rtorch.nn.modules.upsampling import *  # noqa: F403, E402

__all__ = [
    name
    for family in (
        module, container, linear, flatten, activation, dropout, sparse, normalization,
        batchnorm, loss, rnn, conv, fold,
        transformer, padding, pixelshuffle, upsampling, channelshuffle,
    )
    for name in family.__all__
]  # fmt: skip

# --- pooling and instance normalisation ---
from rtorch.nn.modules import instancenorm, pooling  # noqa: E402
from rtorch.nn.modules.instancenorm import *  # noqa: E402, F403
from rtorch.nn.modules.pooling import *  # noqa: E402, F403

__all__ += [*pooling.__all__, *instancenorm.__all__]
