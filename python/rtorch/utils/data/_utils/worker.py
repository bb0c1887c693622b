"""The worker process loop, ``get_worker_info`` and exception forwarding."""

from __future__ import annotations

import os
import random
import select
import sys
import traceback
from typing import Any

import rtorch
from rtorch.utils.data._utils import channel

__all__ = ["ExceptionWrapper", "WorkerInfo", "get_worker_info"]

# How often an idle worker checks that the main process is still alive.
_PARENT_CHECK_INTERVAL = 1.0


class WorkerInfo:
    r"""What :func:`get_worker_info` returns inside a worker: ``id``,
    ``num_workers``, ``seed`` and ``dataset`` (this worker's copy)."""

    id: int
    num_workers: int
    seed: int
    dataset: Any
    __initialized = False

    def __init__(self, **kwargs: Any) -> None:
        for k, v in kwargs.items():
            setattr(self, k, v)
        self.__keys = tuple(kwargs.keys())
        self.__initialized = True

    def __setattr__(self, key: str, val: Any) -> None:
        if self.__initialized:
            raise RuntimeError(f"Cannot assign attributes to {self.__class__.__name__} objects")
        return super().__setattr__(key, val)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={getattr(self, k)}" for k in self.__keys)
        return f"{self.__class__.__name__}({items})"


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    r"""Information about the current DataLoader worker, or ``None`` in the
    main process: ``id`` (0 to ``num_workers - 1``), ``num_workers``,
    ``seed`` (this worker's seed) and ``dataset`` (its copy of the dataset).

    Use it in an :class:`IterableDataset`'s ``__iter__`` or in a
    ``worker_init_fn`` to give each worker its own shard.

    Example::

        >>> get_worker_info() is None
        True
    """
    return _worker_info


class KeyErrorMessage(str):
    """A KeyError message that prints its newlines (KeyError quotes its argument)."""

    def __repr__(self) -> str:
        return str(self)


class ExceptionWrapper:
    r"""An exception and its formatted traceback, sent from a worker and
    re-raised in the main process with the same type."""

    def __init__(self, exc_info: Any = None, where: str = "in background") -> None:
        if exc_info is None:
            exc_info = sys.exc_info()
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self) -> None:
        """Raises the wrapped exception, its message holding the original traceback."""
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = KeyErrorMessage(msg)
        elif getattr(self.exc_type, "message", None):
            raise self.exc_type(message=msg)
        try:
            exception = self.exc_type(msg)
        except Exception:
            # The type needs other constructor arguments.
            raise RuntimeError(msg) from None
        raise exception


class _IterableDatasetStopIteration:
    """A worker's iterable dataset is exhausted."""

    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id


class _MapFetcher:
    def __init__(self, dataset: Any, auto_collation: bool, collate_fn: Any) -> None:
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn

    def fetch(self, index: Any) -> Any:
        if self.auto_collation:
            getitems = getattr(self.dataset, "__getitems__", None)
            data = getitems(index) if getitems else [self.dataset[i] for i in index]
        else:
            data = self.dataset[index]
        return self.collate_fn(data)


class _IterableFetcher:
    def __init__(self, dataset: Any, auto_collation: bool, collate_fn: Any, drop_last: bool):
        self.dataset_iter = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, index: Any) -> Any:
        if self.ended:
            raise StopIteration
        if self.auto_collation:
            data = []
            for _ in index:
                try:
                    data.append(next(self.dataset_iter))
                except StopIteration:
                    self.ended = True
                    break
            if not data or (self.drop_last and len(data) < len(index)):
                raise StopIteration
        else:
            data = next(self.dataset_iter)
        return self.collate_fn(data)


def create_fetcher(
    iterable: bool, dataset: Any, auto_collation: bool, collate_fn: Any, drop_last: bool
) -> Any:
    if iterable:
        return _IterableFetcher(dataset, auto_collation, collate_fn, drop_last)
    return _MapFetcher(dataset, auto_collation, collate_fn)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    rtorch.manual_seed(seed)
    if "numpy" in sys.modules:
        import numpy as np

        # NumPy's legacy seeding takes 32 bits; fold the 64-bit seed in.
        np.random.seed((seed ^ (seed >> 32)) & 0xFFFFFFFF)


def _wait_for_message(sock: Any, parent: int) -> None:
    while True:
        ready, _, _ = select.select([sock], [], [], _PARENT_CHECK_INTERVAL)
        if ready:
            return
        if os.getppid() != parent:
            raise channel.ChannelClosed("main process is gone")


def worker_loop(
    iterable: bool,
    dataset: Any,
    sock: Any,
    auto_collation: bool,
    collate_fn: Any,
    drop_last: bool,
    base_seed: int,
    init_fn: Any,
    worker_id: int,
    num_workers: int,
    parent: int,
) -> None:
    """Runs in a worker: fetch what the main process asks, send it back."""
    global _worker_info
    try:
        rtorch.set_num_threads(1)
        seed = base_seed + worker_id
        _seed_everything(seed)
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
        init_error = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = create_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last)
        except Exception:
            init_error = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
        while True:
            _wait_for_message(sock, parent)
            msg = channel.recv(sock)
            if msg is None:
                return
            if msg[0] == "reset":
                if init_error is None:
                    fetcher = create_fetcher(
                        iterable, dataset, auto_collation, collate_fn, drop_last
                    )
                channel.send(sock, ("reset", worker_id))
                continue
            _, idx, index = msg
            if init_error is not None:
                data: Any = init_error
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    data = _IterableDatasetStopIteration(worker_id)
                except Exception:
                    data = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
            try:
                channel.send(sock, (idx, data))
            except (channel.ChannelClosed, BrokenPipeError, ConnectionResetError):
                raise
            except Exception:
                # The batch itself could not be pickled: report that instead.
                err = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
                channel.send(sock, (idx, err))
            del data
    except (channel.ChannelClosed, BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        pass  # the main process went away or stopped us: just exit
    finally:
        sock.close()
