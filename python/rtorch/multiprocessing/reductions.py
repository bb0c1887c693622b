"""Pickling reducers that send tensors between processes as shared memory.

A tensor pickled by :class:`multiprocessing.reduction.ForkingPickler` (what
``Queue.put``, ``Pipe.send`` and ``Process`` arguments use) is moved into
shared memory, if it is not there yet, and sent as a file descriptor: the
receiver maps the same pages, so the trip is zero-copy and writes on either
side are seen by the other. Plain :mod:`pickle` is not affected.

The descriptor travels as :class:`multiprocessing.reduction.DupFd` does for
any file (inherited at spawn, or fetched over a Unix socket from the
sender's resource sharer), as PyTorch's ``file_descriptor`` strategy does.
The DataLoader instead sends the descriptors of a batch over its worker
socket in the same message as the batch (:func:`dumps_with_fds`).
"""

from __future__ import annotations

import io
import os
import pickle
import threading
from multiprocessing import reduction
from typing import Any

import rtorch
from rtorch import _C

try:
    # Import it now, not from the feeder thread of a Queue that may overlap
    # a fork (a half-imported module would be inherited by the child).
    import multiprocessing.resource_sharer  # noqa: F401
except ImportError:  # pragma: no cover - platforms without SCM_RIGHTS
    pass

__all__ = ["dumps_with_fds", "init_reductions", "loads_with_fds", "reduce_tensor"]

_NON_LEAF_MSG = (
    "Cowardly refusing to serialize non-leaf tensor which requires_grad, "
    "since autograd does not support crossing process boundaries.  "
    "If you just want to transfer the data, call detach() on the tensor "
    "before serializing (e.g., putting it on the queue)."
)

# While set, reduce_tensor appends descriptors here instead of using DupFd
# (sender side of dumps_with_fds), and rebuilds read them back from here
# (receiver side of loads_with_fds).
_channel = threading.local()


def _metadata(t: rtorch.Tensor) -> tuple:
    return (
        t.dtype,
        tuple(t.shape),
        t.stride(),
        t.storage_offset(),
        t.requires_grad,
        type(t),
    )


def reduce_tensor(t: rtorch.Tensor) -> tuple:
    """Reduces ``t`` to a shared-memory handle (moving it to shared memory)."""
    if t.requires_grad and getattr(t, "grad_fn", None) is not None:
        raise RuntimeError(_NON_LEAF_MSG)
    fd, nbytes, _key = t._share_fd_cpu_()
    meta = _metadata(t)
    sent = getattr(_channel, "send", None)
    if sent is not None:
        sent.append(fd)
        return (_rebuild_from_channel, (len(sent) - 1, nbytes, meta))
    return (_rebuild_from_fd, (reduction.DupFd(fd), nbytes, meta))


def _build(fd: int, nbytes: int, meta: tuple) -> rtorch.Tensor:
    dtype, size, stride, offset, requires_grad, cls = meta
    t = _C._new_shared_fd_tensor(fd, nbytes, dtype, size, stride, offset)
    if cls is not rtorch.Tensor:
        return cls._make_subclass(cls, t, requires_grad)
    if requires_grad:
        t.requires_grad = True
    return t


def _rebuild_from_fd(df: Any, nbytes: int, meta: tuple) -> rtorch.Tensor:
    fd = df.detach()
    try:
        return _build(fd, nbytes, meta)
    finally:
        os.close(fd)


def _rebuild_from_channel(index: int, nbytes: int, meta: tuple) -> rtorch.Tensor:
    return _build(_channel.recv[index], nbytes, meta)


def dumps_with_fds(obj: Any) -> tuple[bytes, list[int]]:
    """Pickles ``obj``, collecting the descriptors of its tensors.

    The descriptors stay owned by the tensors' storages: send them before
    ``obj`` can be freed.
    """
    fds: list[int] = []
    _channel.send = fds
    try:
        buf = io.BytesIO()
        reduction.ForkingPickler(buf, pickle.HIGHEST_PROTOCOL).dump(obj)
        return buf.getvalue(), fds
    finally:
        _channel.send = None


def loads_with_fds(data: bytes, fds: list[int]) -> Any:
    """Unpickles what :func:`dumps_with_fds` made; closes ``fds``."""
    _channel.recv = fds
    try:
        return pickle.loads(data)
    finally:
        _channel.recv = None
        for fd in fds:
            os.close(fd)


def _tensor_classes() -> list[type]:
    todo, seen = [rtorch.Tensor], []
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.append(cls)
            todo.extend(cls.__subclasses__())
    return seen


def init_reductions() -> None:
    """Registers :func:`reduce_tensor` for ``Tensor`` and its subclasses
    (idempotent; call again after defining a new subclass)."""
    for cls in _tensor_classes():
        reduction.ForkingPickler.register(cls, reduce_tensor)
