"""Shared-memory tensors and rtorch.multiprocessing under fork, spawn and forkserver."""

import gc
import multiprocessing as stdlib_mp
import os
import pickle
import signal
import threading
import time

import pytest

import rtorch
import rtorch.multiprocessing as mp
from rtorch import _C

START_METHODS = ["fork", "spawn", "forkserver"]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _memfd_maps() -> int:
    with open("/proc/self/maps") as f:
        return sum("memfd:rtorch" in line for line in f)


# ---- in-process behaviour ----


def test_share_memory_moves_storage_in_place_and_views_follow():
    t = rtorch.arange(12.0).view(3, 4)
    v = t[1]
    before = t.data_ptr()
    assert not t.is_shared()
    assert t.share_memory_() is t
    assert t.is_shared() and v.is_shared()
    assert t.data_ptr() != before
    v[0] = 100.0  # a view made before the move writes the shared memory
    assert t[1, 0].item() == 100.0
    assert t.view(-1).tolist()[:4] == [0.0, 1.0, 2.0, 3.0]
    ptr = t.data_ptr()
    t.share_memory_()  # idempotent
    assert t.data_ptr() == ptr


def test_share_memory_of_large_tensor_keeps_values():
    t = rtorch.arange(1 << 20, dtype=rtorch.float32)
    t.share_memory_()
    assert t[-1].item() == float((1 << 20) - 1)
    assert t.sum().item() == pytest.approx((1 << 20) * ((1 << 20) - 1) / 2, rel=1e-6)


def test_empty_and_small_dtypes_share():
    for t in [
        rtorch.empty(0),
        rtorch.tensor([True, False]),
        rtorch.tensor([1, -2], dtype=rtorch.int8),
    ]:
        t.share_memory_()
        assert t.is_shared()
        u = pickle.loads(_forking_dumps(t))
        assert u.dtype == t.dtype and u.tolist() == t.tolist()


def test_resize_of_shared_storage_raises_instead_of_crashing():
    t = rtorch.zeros(4).share_memory_()
    with pytest.raises(RuntimeError, match="Trying to resize storage that is not resizable"):
        t.resize_(8)
    t.resize_(2)  # shrinking fits the storage
    assert t.shape == (2,)
    u = rtorch.arange(3.0)
    u.resize_(2, 3)
    assert u.shape == (2, 3) and u.view(-1)[:3].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(RuntimeError, match="not resizable"):
        rtorch.from_numpy(__import__("numpy").zeros(2)).resize_(5)


def _forking_dumps(obj) -> bytes:
    return bytes(stdlib_mp.reduction.ForkingPickler.dumps(obj))


def test_forking_pickler_sends_a_handle_not_the_bytes():
    t = rtorch.rand(1_000_000)
    payload = _forking_dumps(t)
    assert len(payload) < 2000
    assert t.is_shared()  # moved to shared memory on send, as in PyTorch


def test_plain_pickle_does_not_move_to_shared_memory():
    t = rtorch.rand(10)
    try:
        pickle.dumps(t)
    except TypeError:
        pass  # by-value pickling is rtorch.save's business (issue 8)
    assert not t.is_shared()


def test_views_keep_offset_strides_and_aliasing_in_process_round_trip():
    base = rtorch.arange(20.0).view(4, 5)
    a, b = base.t(), base[1:, 2:]
    a2, b2 = pickle.loads(_forking_dumps((a, b)))
    assert a2.stride() == a.stride() and a2.storage_offset() == a.storage_offset()
    assert b2.stride() == b.stride() and b2.storage_offset() == b.storage_offset()
    assert a2.tolist() == a.tolist() and b2.tolist() == b.tolist()
    # Received in the process that owns it: the same memory comes back.
    assert a2.data_ptr() == a.data_ptr()
    b2[0, 0] = -1.0
    assert base[1, 2].item() == -1.0


def test_requires_grad_of_leaf_is_kept():
    t = rtorch.ones(3, requires_grad=True)
    u = pickle.loads(_forking_dumps(t))
    assert u.requires_grad


def test_non_leaf_requiring_grad_is_refused():
    leaf = rtorch.ones(3, requires_grad=True)
    y = leaf * 2
    with pytest.raises(RuntimeError, match="Cowardly refusing to serialize non-leaf tensor"):
        _forking_dumps(y)


def test_received_storages_are_released():
    before = _C._shared_cache_live_count()
    t = rtorch.rand(100)
    u = pickle.loads(_forking_dumps(t))
    assert _C._shared_cache_live_count() == before + 1
    del t, u
    gc.collect()
    assert _C._shared_cache_live_count() == before


def test_bad_handles_raise_cleanly():
    with pytest.raises(ValueError, match="invalid file descriptor"):
        _C._new_shared_fd_tensor(10_000, 4, rtorch.float32, [1], [1], 0)
    r, w = os.pipe()
    try:
        with pytest.raises(RuntimeError, match="not a sealed rtorch shared memory segment"):
            _C._new_shared_fd_tensor(r, 4, rtorch.float32, [1], [1], 0)
    finally:
        os.close(r)
        os.close(w)
    t = rtorch.zeros(4).share_memory_()
    fd, nbytes, _ = t._share_fd_cpu_()
    with pytest.raises(RuntimeError, match="out of bounds for storage"):
        _C._new_shared_fd_tensor(fd, nbytes, rtorch.float32, [5], [1], 0)


def test_sharing_strategy_api():
    assert mp.get_sharing_strategy() == "file_descriptor"
    assert mp.get_all_sharing_strategies() == {"file_descriptor"}
    mp.set_sharing_strategy("file_descriptor")
    with pytest.raises(AssertionError):
        mp.set_sharing_strategy("file_system")


def test_module_reexports_the_standard_module():
    for name in ["Process", "Queue", "SimpleQueue", "Pool", "get_context", "set_start_method"]:
        assert getattr(mp, name) is getattr(stdlib_mp, name)


# ---- across processes ----


def _fill_and_report(t, value, q):
    t.fill_(value)
    q.put((t.is_shared(), t.tolist()))


@pytest.mark.parametrize("method", START_METHODS)
def test_child_writes_are_seen_by_parent(method):
    ctx = mp.get_context(method)
    t = rtorch.zeros(5)  # not shared yet: moved on send (spawn) or shared first (fork)
    if method == "fork":
        t.share_memory_()
    q = ctx.SimpleQueue()
    p = ctx.Process(target=_fill_and_report, args=(t, 7.0, q))
    p.start()
    shared, values = q.get()
    p.join(timeout=60)
    assert p.exitcode == 0
    assert shared and values == [7.0] * 5
    assert t.is_shared() and t.tolist() == [7.0] * 5


def _alias_check(q_in, q_out):
    a, b, c = q_in.get()
    a[1, 2] = 42.0  # b is a[1:, 2:], c is a.t()
    q_out.put((b[0, 0].item(), c[2, 1].item(), c.stride(), b.storage_offset()))
    q_out.put(a)  # back to the parent: same storage there
    q_in.get()  # keep the handle alive until the parent has it


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_queue_round_trip_keeps_views_and_aliasing(method):
    ctx = mp.get_context(method)
    q_in, q_out = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=_alias_check, args=(q_in, q_out))
    p.start()
    a = rtorch.zeros(4, 5)
    q_in.put((a, a[1:, 2:], a.t()))
    seen_b, seen_c, c_stride, b_offset = q_out.get(timeout=60)
    back = q_out.get(timeout=60)
    q_in.put("done")
    p.join(timeout=60)
    assert (seen_b, seen_c) == (42.0, 42.0)
    assert c_stride == (1, 5) and b_offset == 7
    assert back.data_ptr() == a.data_ptr() and a[1, 2].item() == 42.0


def _sum_many(q_in, q_out, n):
    total = 0.0
    for _ in range(n):
        total += q_in.get().sum().item()
    q_out.put(total)


def test_queue_of_many_tensors_and_fds_back_to_baseline():
    ctx = mp.get_context("fork")
    gc.collect()
    fds0 = _fds()
    q_in, q_out = ctx.Queue(), ctx.Queue()
    n = 300
    p = ctx.Process(target=_sum_many, args=(q_in, q_out, n))
    p.start()
    for i in range(n):
        q_in.put(rtorch.full((64,), float(i)))
    assert q_out.get(timeout=120) == 64.0 * n * (n - 1) / 2
    p.join(timeout=60)
    q_in.close()
    q_out.close()
    q_in.join_thread()
    q_out.join_thread()
    del q_in, q_out, p
    gc.collect()
    assert _fds() <= fds0 + 2  # resource-sharer's listener may stay open


def _spam_tensors(q):
    i = 0
    while True:
        q.put(rtorch.full((256,), float(i)))
        i += 1


def _drain(q, budget):
    got = 0
    end = time.monotonic() + budget
    while time.monotonic() < end:
        try:
            t = q.get(timeout=0.05)
        except Exception:  # empty, or the sender died before its handle was fetched
            continue
        assert t.is_shared()
        got += 1
        del t
    return got


@pytest.mark.parametrize("round_", [0, 1])
def test_no_leaks_after_killing_100_senders_mid_transfer(round_):
    ctx = mp.get_context("fork")
    gc.collect()
    fds0, maps0 = _fds(), _memfd_maps()
    received = 0
    for _ in range(10):
        q = ctx.Queue()
        procs = [ctx.Process(target=_spam_tensors, args=(q,), daemon=True) for _ in range(10)]
        for p in procs:
            p.start()
        received += _drain(q, 0.15)
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == -signal.SIGKILL
        received += _drain(q, 0.05)
        q.close()
        q.cancel_join_thread()
        del q, procs
    gc.collect()
    assert received > 0
    assert _memfd_maps() == maps0
    assert _fds() <= fds0 + 2  # resource-sharer's listener may stay open


def test_fork_while_another_thread_allocates_never_hangs():
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            rtorch.empty(1 << 19).share_memory_()  # large buffers + shared cache locks
            rtorch.empty(1 << 19)

    th = threading.Thread(target=churn)
    th.start()
    ctx = mp.get_context("fork")
    try:
        procs = [ctx.Process(target=_allocate_and_sum) for _ in range(10)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
    finally:
        stop.set()
        th.join()


def _allocate_and_sum():
    x = rtorch.ones(1 << 20).share_memory_()
    # Large enough to split across threads, small enough for a loaded machine.
    y = rtorch.ones(512, 512)
    assert (y @ y)[0, 0].item() == 512.0
    assert x.sum().item() == float(1 << 20)


# ---- spawn() ----


def _spawn_fill(i, t):
    t[i] = i + 1


def _spawn_raise(i):
    if i == 1:
        raise ValueError("bad rank 1")


def _spawn_exit(i):
    if i == 0:
        os._exit(3)


def _spawn_kill(i):
    os.kill(os.getpid(), signal.SIGKILL)


def test_spawn_runs_function_in_each_process():
    t = rtorch.zeros(3)
    mp.spawn(_spawn_fill, args=(t,), nprocs=3)
    assert t.tolist() == [1.0, 2.0, 3.0]


def test_spawn_propagates_errors():
    with pytest.raises(mp.ProcessRaisedException, match="ValueError: bad rank 1") as e:
        mp.start_processes(_spawn_raise, nprocs=2, start_method="fork")
    assert e.value.error_index == 1
    assert "-- Process 1 terminated with the following error" in str(e.value)
    with pytest.raises(mp.ProcessExitedException, match="process 0 terminated with exit code 3"):
        mp.start_processes(_spawn_exit, nprocs=1, start_method="fork")
    with pytest.raises(mp.ProcessExitedException, match="terminated with signal SIGKILL") as e:
        mp.start_processes(_spawn_kill, nprocs=1, start_method="fork")
    assert e.value.signal_name == "SIGKILL" and e.value.exit_code == -9


def test_spawn_join_false_returns_context():
    ctx = mp.start_processes(
        _spawn_fill, args=(rtorch.zeros(2),), nprocs=2, join=False, start_method="fork"
    )
    assert len(ctx.pids()) == 2
    while not ctx.join(timeout=30):
        pass
