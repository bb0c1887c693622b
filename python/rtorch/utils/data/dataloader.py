"""``DataLoader``: batches from a dataset, in this process or in workers.

Note [DataLoader workers]: each worker is a daemon process with its own
Unix socket pair to the main process. The main process sends ``("fetch",
idx, indices)`` tasks (at most ``prefetch_factor`` outstanding per worker)
and waits on every socket and every worker's process sentinel at once
(``multiprocessing.connection.wait``), so a worker that dies is noticed as
soon as the kernel reaps it, not after a polling interval. Workers collate
straight into shared memory and send each batch with the descriptors of its
tensors in the same message (``_utils/channel.py``). Results are put back
in sampler order unless ``in_order=False``. Stopping is a ``None`` message;
an idle worker also exits by itself once its parent is gone.
"""

from __future__ import annotations

import itertools
import multiprocessing as python_multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import rtorch
from rtorch.utils.data._utils import channel
from rtorch.utils.data._utils.collate import default_collate, default_convert
from rtorch.utils.data._utils.worker import (
    ExceptionWrapper,
    _IterableDatasetStopIteration,
    create_fetcher,
    worker_loop,
)
from rtorch.utils.data.dataset import Dataset, IterableDataset
from rtorch.utils.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader"]

T_co = TypeVar("T_co", covariant=True)


class _InfiniteConstantSampler(Sampler):
    """Yields ``None`` forever: the keys of an iterable dataset."""

    def __iter__(self) -> Any:
        while True:
            yield None


class DataLoader(Generic[T_co]):
    r"""Iterates over batches of ``dataset``.

    Args:
        dataset (Dataset): map-style or iterable-style dataset.
        batch_size (int, optional): samples per batch; ``None`` disables
            automatic batching. Default: ``1``.
        shuffle (bool, optional): reshuffle every epoch. Default: ``False``.
        sampler (Sampler or Iterable, optional): order of keys (not with ``shuffle``).
        batch_sampler (Sampler or Iterable, optional): yields lists of keys
            (not with ``batch_size``, ``shuffle``, ``sampler``, ``drop_last``).
        num_workers (int, optional): worker processes; ``0`` loads in this
            process. Default: ``0``.
        collate_fn (Callable, optional): merges samples into a batch.
        pin_memory (bool, optional): accepted; meaningful once CUDA exists.
        drop_last (bool, optional): drop the last incomplete batch.
        timeout (numeric, optional): seconds to wait for a worker's batch
            (``0``: forever). Default: ``0``.
        worker_init_fn (Callable, optional): called with the worker id in
            each worker after seeding, before loading.
        multiprocessing_context (str or context, optional): start method
            ('fork', 'spawn', 'forkserver') or context for the workers.
        generator (Generator, optional): draws the shuffle order and the
            workers' base seed.
        prefetch_factor (int, optional, keyword-only): batches loaded in
            advance per worker. Default: ``2`` with workers.
        persistent_workers (bool, optional, keyword-only): keep the workers
            between epochs. Default: ``False``.
        pin_memory_device (str, optional, keyword-only): deprecated, accepted.
        in_order (bool, optional, keyword-only): return batches in sampler
            order (``False``: as workers finish them). Default: ``True``.

    Example::

        >>> ds = rtorch.utils.data.TensorDataset(rtorch.arange(10.0), rtorch.arange(10))
        >>> x, y = next(iter(DataLoader(ds, batch_size=4)))
        >>> y
        tensor([0, 1, 2, 3])
    """

    dataset: Dataset[T_co]
    batch_size: int | None
    num_workers: int
    pin_memory: bool
    drop_last: bool
    timeout: float
    sampler: Sampler | Iterable
    prefetch_factor: int | None
    __initialized = False

    def __init__(
        self,
        dataset: Dataset[T_co],
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Sampler | Iterable | None = None,
        batch_sampler: Sampler[list] | Iterable[list] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: rtorch.Generator | None = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ) -> None:
        if num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; "
                "use num_workers=0 to disable multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing."
                "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None."
            )
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order

        if isinstance(dataset, IterableDataset):
            self._iterable = True
            if shuffle not in {False, None}:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified shuffle option, "
                    f"but got shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified sampler option, "
                    f"but got sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified "
                    f"batch_sampler option, but got batch_sampler={batch_sampler}"
                )
        else:
            shuffle = bool(shuffle)
            self._iterable = False

        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive "
                    "with batch_size, shuffle, sampler, and drop_last"
                )
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching "
                "and is mutually exclusive with drop_last"
            )

        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)  # type: ignore[arg-type]
            else:
                sampler = SequentialSampler(dataset)  # type: ignore[arg-type]
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self._iterator: Any = None
        self.__initialized = True

    @property
    def multiprocessing_context(self) -> Any:
        return self.__multiprocessing_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, multiprocessing_context: Any) -> None:
        if multiprocessing_context is not None:
            if self.num_workers > 0:
                if isinstance(multiprocessing_context, str):
                    valid = python_multiprocessing.get_all_start_methods()
                    if multiprocessing_context not in valid:
                        raise ValueError(
                            "multiprocessing_context option "
                            f"should specify a valid start method in {valid!r}, but got "
                            f"multiprocessing_context={multiprocessing_context!r}"
                        )
                    multiprocessing_context = python_multiprocessing.get_context(
                        multiprocessing_context
                    )
                if not isinstance(
                    multiprocessing_context, python_multiprocessing.context.BaseContext
                ):
                    raise TypeError(
                        "multiprocessing_context option should be a valid context "
                        "object or a string specifying the start method, but got "
                        f"multiprocessing_context={multiprocessing_context}"
                    )
            else:
                raise ValueError(
                    "multiprocessing_context can only be used with "
                    "multi-process loading (num_workers > 0), but got "
                    f"num_workers={self.num_workers}"
                )
        self.__multiprocessing_context = multiprocessing_context

    def __setattr__(self, attr: str, val: Any) -> None:
        if self.__initialized and attr in (
            "batch_size",
            "batch_sampler",
            "sampler",
            "drop_last",
            "dataset",
            "persistent_workers",
        ):
            raise ValueError(
                f"{attr} attribute should not be set after {self.__class__.__name__} is initialized"
            )
        super().__setattr__(attr, val)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self) -> Any:
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self) -> _BaseIter:
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._iterator is None:
                self._iterator = _MultiProcessingIter(self)
            else:
                self._iterator._reset(self)
            return self._iterator
        return _MultiProcessingIter(self)

    def __len__(self) -> int:
        if self._iterable:
            length = len(self.dataset)  # type: ignore[arg-type]
            if self.batch_size is not None:
                if self.drop_last:
                    return length // self.batch_size
                return -(-length // self.batch_size)
            return length
        return len(self._index_sampler)


class _BaseIter:
    def __init__(self, loader: DataLoader) -> None:
        self._dataset = loader.dataset
        self._iterable = loader._iterable
        self._auto_collation = loader._auto_collation
        self._drop_last = loader.drop_last
        self._index_sampler = loader._index_sampler
        self._num_workers = loader.num_workers
        self._timeout = loader.timeout
        self._collate_fn = loader.collate_fn
        self._sampler_iter = iter(self._index_sampler)
        self._num_yielded = 0
        self._base_seed = int(
            rtorch.empty((), dtype=rtorch.int64).random_(generator=loader.generator).item()
        )
        if loader.pin_memory:
            warnings.warn(
                "'pin_memory' argument is set as true but no accelerator is found, "
                "then device pinned memory won't be used.",
                stacklevel=3,
            )

    def __iter__(self) -> _BaseIter:
        return self

    def __next__(self) -> Any:
        data = self._next_data()
        self._num_yielded += 1
        return data

    def __len__(self) -> int:
        return len(self._index_sampler)

    def _next_data(self) -> Any:
        raise NotImplementedError

    def __getstate__(self) -> Any:
        raise NotImplementedError(f"{self.__class__.__name__} cannot be pickled")


class _SingleProcessIter(_BaseIter):
    def __init__(self, loader: DataLoader) -> None:
        super().__init__(loader)
        self._fetcher = create_fetcher(
            self._iterable, self._dataset, self._auto_collation, self._collate_fn, self._drop_last
        )

    def _next_data(self) -> Any:
        index = next(self._sampler_iter)
        return self._fetcher.fetch(index)


class _Worker:
    """The main process's end of one worker."""

    __slots__ = ("active", "pid", "process", "sock")

    def __init__(self, process: Any, sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.pid = process.pid
        self.active = True


class _MultiProcessingIter(_BaseIter):
    def __init__(self, loader: DataLoader) -> None:
        super().__init__(loader)
        self._prefetch_factor = loader.prefetch_factor
        self._in_order = loader.in_order
        self._persistent = loader.persistent_workers
        ctx = loader.multiprocessing_context or python_multiprocessing
        self._workers: list[_Worker] = []
        self._shutdown = False
        try:
            for i in range(self._num_workers):
                main_end, worker_end = socket.socketpair()
                process = ctx.Process(
                    target=worker_loop,
                    args=(
                        self._iterable,
                        self._dataset,
                        worker_end,
                        self._auto_collation,
                        self._collate_fn,
                        self._drop_last,
                        self._base_seed,
                        loader.worker_init_fn,
                        i,
                        self._num_workers,
                        os.getpid(),
                    ),
                    daemon=True,
                )
                process.start()
                worker_end.close()
                self._workers.append(_Worker(process, main_end))
        except BaseException:
            self._shutdown_workers()
            raise
        self._by_fd = {w.sock.fileno(): w for w in self._workers}
        self._by_sentinel = {w.process.sentinel: w for w in self._workers}
        self._reset(loader, first_iter=True)

    def _reset(self, loader: DataLoader, first_iter: bool = False) -> None:
        self._sampler_iter = iter(self._index_sampler)
        self._num_yielded = 0
        self._send_idx = 0
        self._rcvd_idx = 0
        self._task_info: dict[int, tuple] = {}
        self._tasks_outstanding = 0
        self._worker_cycle = itertools.cycle(range(self._num_workers))
        if not first_iter:
            # Restart each worker's fetcher and drop results of the last epoch.
            for w in self._workers:
                w.active = True
                channel.send(w.sock, ("reset",))
            pending = len(self._workers)
            while pending:
                if self._get_data()[0] == "reset":
                    pending -= 1
        for _ in range(self._prefetch_factor * self._num_workers):
            self._try_put_index()

    def _try_put_index(self) -> None:
        if self._tasks_outstanding >= self._prefetch_factor * self._num_workers:
            return
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        for _ in range(self._num_workers):
            worker_id = next(self._worker_cycle)
            if self._workers[worker_id].active:
                break
        else:
            return
        channel.send(self._workers[worker_id].sock, ("fetch", self._send_idx, index))
        self._task_info[self._send_idx] = (worker_id,)
        self._tasks_outstanding += 1
        self._send_idx += 1

    def _dead_worker_error(self, w: _Worker) -> RuntimeError:
        w.process.join(timeout=5)
        code = w.process.exitcode
        if code is not None and code < 0:
            try:
                how = f"killed by signal: {signal.strsignal(-code)} ({signal.Signals(-code).name})"
            except ValueError:
                how = f"killed by signal {-code}"
            return RuntimeError(f"DataLoader worker (pid {w.pid}) exited unexpectedly: {how}")
        return RuntimeError(
            f"DataLoader worker (pid {w.pid}) exited unexpectedly with exit code {code}. "
            "Rerunning with num_workers=0 may give a better error trace."
        )

    def _get_data(self) -> tuple[int, Any]:
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            wait_for = [w.sock for w in self._workers] + [w.process.sentinel for w in self._workers]
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = multiprocessing.connection.wait(wait_for, timeout=remaining)
            socks = [r for r in ready if isinstance(r, socket.socket)]
            if socks:
                w = self._by_fd[socks[0].fileno()]
                try:
                    return channel.recv(w.sock)
                except (channel.ChannelClosed, ConnectionResetError):
                    error = self._dead_worker_error(w)
                    self._shutdown_workers(graceful=False)
                    raise error from None
            for r in ready:
                error = self._dead_worker_error(self._by_sentinel[r])
                self._shutdown_workers(graceful=False)
                raise error
            if deadline is not None and time.monotonic() >= deadline:
                self._shutdown_workers(graceful=False)
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")

    def _next_data(self) -> Any:
        while True:
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx)
                if info is not None:
                    if len(info) == 2 or self._workers[info[0]].active:
                        break
                    del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self._shutdown_workers()
                raise StopIteration
            if len(self._task_info[self._rcvd_idx]) == 2:
                data = self._task_info.pop(self._rcvd_idx)[1]
                self._rcvd_idx += 1
                return self._process_data(data)
            if self._shutdown:
                raise StopIteration
            idx, data = self._get_data()
            self._tasks_outstanding -= 1
            if isinstance(data, _IterableDatasetStopIteration):
                self._workers[data.worker_id].active = False
                self._try_put_index()
                continue
            if idx != self._rcvd_idx:
                if self._in_order:
                    self._task_info[idx] += (data,)
                    continue
                del self._task_info[idx]
                return self._process_data(data)
            del self._task_info[idx]
            self._rcvd_idx += 1
            return self._process_data(data)

    def _process_data(self, data: Any) -> Any:
        self._try_put_index()
        if isinstance(data, ExceptionWrapper):
            data.reraise()
        return data

    def _shutdown_workers(self, graceful: bool = True) -> None:
        """Stops the workers: a stop message and a bounded wait when
        ``graceful``, else (after an error) SIGTERM at once."""
        if self._shutdown:
            return
        self._shutdown = True
        for w in self._workers:
            try:
                if graceful:
                    channel.send(w.sock, None)
                else:
                    w.process.terminate()
            except (OSError, ValueError):
                pass  # already gone
        for w in self._workers:
            w.process.join(timeout=5 if graceful else 1)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.sock.close()

    def __del__(self) -> None:
        try:
            self._shutdown_workers()
        except Exception:
            pass  # interpreter teardown: daemon workers are killed anyway
