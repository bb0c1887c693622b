"""``rtorch.multiprocessing``: the standard :mod:`multiprocessing` module,
with tensors sent between processes through shared memory.

Everything the standard module exports is here (``Process``, ``Queue``,
``SimpleQueue``, ``Pool``, ``get_context``, ``set_start_method``, ...).
Importing it registers reducers with
:class:`multiprocessing.reduction.ForkingPickler`, so a tensor put on a
queue, sent through a pipe or passed to a child process is moved to shared
memory (if it is not there yet) and sent as a file descriptor: the receiver
sees the same memory. Views keep their offset and strides; tensors sharing
a storage still share it on the other side.

Example::

    >>> import rtorch
    >>> import rtorch.multiprocessing as mp
    >>> q = mp.get_context("fork").SimpleQueue()
    >>> t = rtorch.zeros(3)
    >>> q.put(t)
    >>> u = q.get()
    >>> u.is_shared(), u.data_ptr() == t.data_ptr()
    (True, True)
"""

import multiprocessing
from multiprocessing import *  # noqa: F403

from rtorch.multiprocessing._sharing import (
    get_all_sharing_strategies,
    get_sharing_strategy,
    set_sharing_strategy,
)
from rtorch.multiprocessing.reductions import init_reductions
from rtorch.multiprocessing.spawn import (
    ProcessContext,
    ProcessExitedException,
    ProcessRaisedException,
    SpawnContext,
    spawn,
    start_processes,
)

__all__ = [
    *multiprocessing.__all__,
    "ProcessContext",
    "ProcessExitedException",
    "ProcessRaisedException",
    "SpawnContext",
    "get_all_sharing_strategies",
    "get_sharing_strategy",
    "set_sharing_strategy",
    "spawn",
    "start_processes",
]

init_reductions()
