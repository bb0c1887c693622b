"""``spawn``/``start_processes``: run a function in N processes, join them,
and turn the first failure into an exception in the parent."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

__all__ = [
    "ProcessContext",
    "ProcessException",
    "ProcessExitedException",
    "ProcessRaisedException",
    "SpawnContext",
    "spawn",
    "start_processes",
]


class ProcessException(Exception):
    """Base of the errors :func:`spawn` raises for a failed process."""

    def __init__(self, msg: str, error_index: int, pid: int) -> None:
        super().__init__(msg)
        self.msg = msg
        self.error_index = error_index
        self.pid = pid

    def __reduce__(self) -> tuple:
        return type(self), (self.msg, self.error_index, self.pid)


class ProcessRaisedException(ProcessException):
    """A process failed because its function raised; the message holds the
    child's traceback."""


class ProcessExitedException(ProcessException):
    """A process exited with a non-zero code or was killed by a signal."""

    def __init__(
        self,
        msg: str,
        error_index: int,
        error_pid: int,
        exit_code: int,
        signal_name: str | None = None,
    ) -> None:
        super().__init__(msg, error_index, error_pid)
        self.exit_code = exit_code
        self.signal_name = signal_name

    def __reduce__(self) -> tuple:
        return type(self), (self.msg, self.error_index, self.pid, self.exit_code, self.signal_name)


def _wrap(fn: Callable[..., Any], i: int, args: tuple, error_file: str) -> None:
    try:
        fn(i, *args)
    except KeyboardInterrupt:
        pass  # stopped by the parent
    except Exception:
        # A file, not a pipe: a long traceback must not block the child
        # while the parent waits for it to exit.
        with open(error_file, "w") as fh:
            fh.write(traceback.format_exc())
        sys.exit(1)


class ProcessContext:
    """The processes started by :func:`start_processes` with ``join=False``."""

    def __init__(self, processes: list, error_files: list[str]) -> None:
        self.error_files = error_files
        self.processes = processes
        self.sentinels = {p.sentinel: i for i, p in enumerate(processes)}

    def pids(self) -> list[int]:
        """The process ids, in index order."""
        return [int(p.pid) for p in self.processes]

    def _join_all(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        for p in self.processes:
            p.join(max(0.0, end - time.monotonic()))

    def join(self, timeout: float | None = None, grace_period: float | None = None) -> bool:
        """Waits for the processes; raises on the first failure.

        Returns ``True`` once every process exited cleanly, ``False`` when
        some are still running after ``timeout``. When one fails, the others
        get ``grace_period`` seconds, then SIGTERM, then SIGKILL, and
        :class:`ProcessRaisedException` (the child raised) or
        :class:`ProcessExitedException` (it exited or was killed) is raised.
        """
        if not self.sentinels:
            return True
        ready = multiprocessing.connection.wait(list(self.sentinels), timeout=timeout)
        error_index = None
        for sentinel in ready:
            index = self.sentinels.pop(sentinel)
            process = self.processes[index]
            process.join()
            if process.exitcode != 0:
                error_index = index
                break
        if error_index is None:
            return not self.sentinels
        if grace_period is not None:
            self._join_all(grace_period)
        for p in self.processes:
            if p.is_alive():
                p.terminate()
        self._join_all(30 if grace_period is None else grace_period)
        for p in self.processes:
            if p.is_alive():
                p.kill()
            p.join()
        failed = self.processes[error_index]
        path = self.error_files[error_index]
        try:
            with open(path) as fh:
                trace = fh.read()
            os.unlink(path)
        except OSError:
            trace = None
        if trace is None:
            code = failed.exitcode
            if code < 0:
                try:
                    name = signal.Signals(-code).name
                except ValueError:
                    name = f"<Unknown signal {-code}>"
                raise ProcessExitedException(
                    f"process {error_index:d} terminated with signal {name}",
                    error_index=error_index,
                    error_pid=failed.pid,
                    exit_code=code,
                    signal_name=name,
                )
            raise ProcessExitedException(
                f"process {error_index:d} terminated with exit code {code:d}",
                error_index=error_index,
                error_pid=failed.pid,
                exit_code=code,
            )
        msg = f"\n\n-- Process {error_index:d} terminated with the following error:\n" + trace
        raise ProcessRaisedException(msg, error_index, failed.pid)


class SpawnContext(ProcessContext):
    """Deprecated name of :class:`ProcessContext`."""

    def __init__(self, processes: list, error_files: list[str]) -> None:
        warnings.warn("SpawnContext is renamed to ProcessContext since 1.4 release.", stacklevel=2)
        super().__init__(processes, error_files)


def _error_file() -> str:
    fd, path = tempfile.mkstemp(prefix="rtorch-errorfile-", suffix=".txt")
    os.close(fd)
    os.unlink(path)  # the child creates it only when it fails
    return path


def start_processes(
    fn: Callable[..., Any],
    args: tuple = (),
    nprocs: int = 1,
    join: bool = True,
    daemon: bool = False,
    start_method: str = "spawn",
) -> ProcessContext | None:
    """Like :func:`spawn`, with any start method ('spawn', 'fork', 'forkserver')."""
    ctx = multiprocessing.get_context(start_method)
    processes, error_files = [], []
    for i in range(nprocs):
        path = _error_file()
        p = ctx.Process(target=_wrap, args=(fn, i, args, path), daemon=daemon)
        p.start()
        processes.append(p)
        error_files.append(path)
    context = ProcessContext(processes, error_files)
    if not join:
        return context
    while not context.join():
        pass
    return None


def spawn(
    fn: Callable[..., Any],
    args: tuple = (),
    nprocs: int = 1,
    join: bool = True,
    daemon: bool = False,
    start_method: str = "spawn",
) -> ProcessContext | None:
    r"""Spawns ``nprocs`` processes that run ``fn(i, *args)``.

    If a process exits with a non-zero status, the others are stopped and an
    exception is raised with the cause: :class:`ProcessRaisedException`
    (carrying the child's traceback) when ``fn`` raised,
    :class:`ProcessExitedException` when the process exited or was killed.

    Args:
        fn (function): entry point, defined at the top level of a module so
            it can be pickled; called as ``fn(i, *args)`` with ``i`` the
            process index.
        args (tuple): arguments passed to ``fn`` after the index.
        nprocs (int): number of processes.
        join (bool): wait for all processes before returning.
        daemon (bool): the processes' daemon flag.
        start_method (str): deprecated; always ``'spawn'`` (use
            :func:`start_processes` for another method).

    Returns:
        ``None`` if ``join`` is ``True``, else a :class:`ProcessContext`.

    Example::

        >>> import rtorch.multiprocessing as mp
        >>> def work(i, t):
        ...     t[i] = i
        >>> t = rtorch.zeros(2).share_memory_()
        >>> mp.spawn(work, args=(t,), nprocs=2)  # doctest: +SKIP
    """
    if start_method != "spawn":
        warnings.warn(
            f"This method only supports start_method=spawn (got: {start_method}).\n"
            "To use a different start_method use:\n\t\t"
            " torch.multiprocessing.start_processes(...)",
            FutureWarning,
            stacklevel=2,
        )
    return start_processes(fn, args, nprocs, join, daemon, start_method="spawn")
