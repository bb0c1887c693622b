"""DataLoader: validation, single-process and worker-process loading,
errors, dead workers, timeouts and shutdown."""

import gc
import os
import random
import signal
import time

import numpy as np
import pytest

import rtorch
from rtorch.utils.data import (
    DataLoader,
    Dataset,
    IterableDataset,
    TensorDataset,
    get_worker_info,
)


def _ds(n=37):
    return TensorDataset(rtorch.arange(n * 3, dtype=rtorch.float32).view(n, 3), rtorch.arange(n))


def _equal_batches(a, b):
    return len(a) == len(b) and all(
        all(rtorch.equal(x, y) for x, y in zip(p, q, strict=True))
        for p, q in zip(a, b, strict=True)
    )


class Squares(Dataset):
    def __len__(self):
        return 20

    def __getitem__(self, i):
        return {"i": i, "sq": float(i * i), "name": f"s{i}"}


class Sharded(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


class RaisesAt(Dataset):
    def __init__(self, bad, exc):
        self.bad, self.exc = bad, exc

    def __len__(self):
        return 10

    def __getitem__(self, i):
        if i == self.bad:
            raise self.exc
        return i


class NeedsTwoArgs(Exception):
    def __init__(self, a, b):
        super().__init__(a, b)


class KillsItself(Dataset):
    def __len__(self):
        return 100

    def __getitem__(self, i):
        if i == 9:
            os.kill(os.getpid(), signal.SIGKILL)
        return i


class Sleeps(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        time.sleep(10)
        return i


class Seeds(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        info = get_worker_info()
        return rtorch.tensor(
            [info.id, info.seed, random.randrange(1 << 30), int(np.random.randint(1 << 30))]
        ), rtorch.rand(1)


class BigOp(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        x = rtorch.ones(1500, 1500)
        return (x @ x).sum() + rtorch.ones(3_000_000).sum()


def _four_threads(_):
    rtorch.set_num_threads(4)


# ---- validation ----


@pytest.mark.parametrize(
    ("kwargs", "exc", "msg"),
    [
        ({"num_workers": -1}, ValueError, "num_workers option should be non-negative"),
        ({"timeout": -1}, ValueError, "timeout option should be non-negative"),
        (
            {"prefetch_factor": 2},
            ValueError,
            "prefetch_factor option could only be specified in multiprocessing",
        ),
        (
            {"num_workers": 1, "prefetch_factor": -1},
            ValueError,
            "prefetch_factor option should be non-negative",
        ),
        (
            {"persistent_workers": True},
            ValueError,
            "persistent_workers option needs num_workers > 0",
        ),
        (
            {"sampler": [0, 1], "shuffle": True},
            ValueError,
            "sampler option is mutually exclusive with shuffle",
        ),
        (
            {"batch_sampler": [[0]], "batch_size": 2},
            ValueError,
            "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last",
        ),
        (
            {"batch_size": None, "drop_last": True},
            ValueError,
            "batch_size=None option disables auto-batching and is mutually exclusive with drop_last",
        ),
        (
            {"multiprocessing_context": "fork"},
            ValueError,
            "multiprocessing_context can only be used with multi-process loading",
        ),
        (
            {"num_workers": 1, "multiprocessing_context": "nope"},
            ValueError,
            "multiprocessing_context option should specify a valid start method",
        ),
        (
            {"num_workers": 1, "multiprocessing_context": 3},
            TypeError,
            "multiprocessing_context option should be a valid context object",
        ),
    ],
)
def test_validation_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)")):
        DataLoader(_ds(), **kwargs)


def test_iterable_dataset_refuses_samplers_and_shuffle():
    with pytest.raises(
        ValueError, match="expected unspecified shuffle option, but got shuffle=True"
    ):
        DataLoader(Sharded(3), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler option"):
        DataLoader(Sharded(3), sampler=[0])
    with pytest.raises(ValueError, match="expected unspecified batch_sampler option"):
        DataLoader(Sharded(3), batch_sampler=[[0]])


def test_attributes_are_frozen_after_init():
    dl = DataLoader(_ds(), batch_size=4)
    with pytest.raises(
        ValueError, match="batch_size attribute should not be set after DataLoader is initialized"
    ):
        dl.batch_size = 8


# ---- single process ----


def test_single_process_batches_and_len():
    dl = DataLoader(_ds(), batch_size=8)
    batches = list(dl)
    assert len(dl) == 5 and len(batches) == 5
    assert batches[-1][0].shape == (5, 3) and batches[1][1].tolist() == list(range(8, 16))
    assert len(list(DataLoader(_ds(), batch_size=8, drop_last=True))) == 4
    shuffled = rtorch.cat([y for _, y in DataLoader(_ds(), batch_size=8, shuffle=True)])
    assert sorted(shuffled.tolist()) == list(range(37))
    assert len(DataLoader(Sharded(10), batch_size=3)) if hasattr(Sharded, "__len__") else True


def test_no_batching_converts_samples():
    out = list(DataLoader(Squares(), batch_size=None))
    assert out[3] == {"i": 3, "sq": 9.0, "name": "s3"}


def test_custom_collate_fn_sees_samples_from_batched_fetch():
    seen = []

    def collate(samples):
        seen.append([s[1].item() for s in samples])
        return len(samples)

    assert list(DataLoader(_ds(6), batch_size=4, collate_fn=collate)) == [4, 2]
    assert seen == [[0, 1, 2, 3], [4, 5]]


def test_dict_samples_are_collated():
    batch = next(iter(DataLoader(Squares(), batch_size=4)))
    assert batch["i"].tolist() == [0, 1, 2, 3] and batch["sq"].dtype == rtorch.float64
    assert list(batch["name"]) == ["s0", "s1", "s2", "s3"]


def test_shuffle_order_follows_the_generator():
    a = [
        y.tolist()
        for _, y in DataLoader(
            _ds(), batch_size=8, shuffle=True, generator=rtorch.Generator().manual_seed(7)
        )
    ]
    b = [
        y.tolist()
        for _, y in DataLoader(
            _ds(), batch_size=8, shuffle=True, generator=rtorch.Generator().manual_seed(7)
        )
    ]
    assert a == b


# ---- worker processes ----


@pytest.mark.parametrize("ctx", ["fork", "spawn"])
def test_workers_give_the_same_batches_as_single_process(ctx):
    kw = {"batch_size": 8, "shuffle": True}
    single = list(DataLoader(_ds(), generator=rtorch.Generator().manual_seed(3), **kw))
    multi = list(
        DataLoader(
            _ds(),
            generator=rtorch.Generator().manual_seed(3),
            num_workers=2,
            multiprocessing_context=ctx,
            **kw,
        )
    )
    assert _equal_batches(single, multi)
    assert all(x.is_shared() and y.is_shared() for x, y in multi)


def test_workers_collate_dicts_and_strings():
    single = list(DataLoader(Squares(), batch_size=3))
    multi = list(DataLoader(Squares(), batch_size=3, num_workers=2))
    assert [b["i"].tolist() for b in single] == [b["i"].tolist() for b in multi]
    assert [list(b["name"]) for b in single] == [list(b["name"]) for b in multi]
    assert multi[0]["sq"].is_shared()


def test_sharded_iterable_dataset_matches_single_process():
    single = rtorch.cat(list(DataLoader(Sharded(23), batch_size=4))).tolist()
    multi = rtorch.cat(list(DataLoader(Sharded(23), batch_size=4, num_workers=2))).tolist()
    assert single == list(range(23)) and sorted(multi) == single
    unbatched = list(DataLoader(Sharded(7), batch_size=None, num_workers=3))  # ints stay ints
    assert sorted(unbatched) == list(range(7))


def test_out_of_order_returns_every_batch():
    out = list(DataLoader(_ds(), batch_size=4, num_workers=2, in_order=False))
    assert sorted(rtorch.cat([y for _, y in out]).tolist()) == list(range(37))


def test_worker_exception_is_reraised_with_type_and_traceback():
    with pytest.raises(ValueError, match="Caught ValueError in DataLoader worker process") as e:
        list(DataLoader(RaisesAt(5, ValueError("bad sample")), batch_size=2, num_workers=2))
    assert "Original Traceback" in str(e.value) and "bad sample" in str(e.value)
    with pytest.raises(KeyError, match="Caught KeyError"):
        list(DataLoader(RaisesAt(3, KeyError("k")), batch_size=2, num_workers=1))
    with pytest.raises(RuntimeError, match="Caught NeedsTwoArgs in DataLoader worker process 0"):
        list(DataLoader(RaisesAt(0, NeedsTwoArgs(1, 2)), batch_size=2, num_workers=1))


def test_dead_worker_is_detected_within_seconds():
    start = time.monotonic()
    with pytest.raises(
        RuntimeError,
        match=r"DataLoader worker \(pid \d+\) exited unexpectedly: killed by signal: Killed",
    ):
        list(DataLoader(KillsItself(), batch_size=2, num_workers=2))
    assert time.monotonic() - start < 10


def test_timeout_raises():
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.5 seconds"):
        list(DataLoader(Sleeps(), batch_size=1, num_workers=1, timeout=0.5))
    assert time.monotonic() - start < 8


def test_worker_seeding_and_info():
    assert get_worker_info() is None
    g = rtorch.Generator().manual_seed(11)
    rows = list(DataLoader(Seeds(), batch_size=1, num_workers=2, generator=g))
    ids = [int(r[0][0, 0]) for r in rows]
    seeds = [int(r[0][0, 1]) for r in rows]
    assert ids == [0, 1, 0, 1]
    assert seeds[1] == seeds[0] + 1  # base seed + worker id
    assert rows[0][0][0, 2] != rows[1][0][0, 2]  # `random` seeded per worker
    assert rows[0][0][0, 3] != rows[1][0][0, 3]  # NumPy too
    assert rows[0][1].item() != rows[1][1].item()  # and rtorch
    again = list(
        DataLoader(
            Seeds(), batch_size=1, num_workers=2, generator=rtorch.Generator().manual_seed(11)
        )
    )
    assert _equal_batches(rows, again)


def test_worker_info_is_read_only():
    def init(_):
        info = get_worker_info()
        try:
            info.id = 3
        except RuntimeError as e:
            assert "Cannot assign attributes to WorkerInfo objects" in str(e)
        else:
            raise AssertionError("WorkerInfo accepted an assignment")

    assert len(list(DataLoader(_ds(4), batch_size=2, num_workers=1, worker_init_fn=init))) == 2


def test_worker_init_fn_error_is_reraised():
    def init(_):
        raise OSError("no data dir")

    with pytest.raises(OSError, match="no data dir"):
        list(DataLoader(_ds(4), batch_size=2, num_workers=1, worker_init_fn=init))


def test_forked_worker_runs_multithreaded_ops():
    out = list(
        DataLoader(BigOp(), batch_size=1, num_workers=2, worker_init_fn=_four_threads, timeout=120)
    )
    assert [t.item() for t in out] == [pytest.approx(1500.0**3 + 3e6, rel=1e-6)] * 2


def test_persistent_workers_survive_epochs_and_reset():
    dl = DataLoader(_ds(), batch_size=8, num_workers=2, persistent_workers=True)
    it = iter(dl)
    first = next(it)  # leave the epoch early
    pids = [w.pid for w in it._workers]
    epoch = list(dl)
    assert [w.pid for w in dl._iterator._workers] == pids
    assert rtorch.cat([y for _, y in epoch]).tolist() == list(range(37))
    assert rtorch.equal(first[1], epoch[0][1])
    it = dl._iterator
    del dl, epoch
    it._shutdown_workers()


def test_iterator_shuts_workers_down_on_del_and_at_end():
    it = iter(DataLoader(_ds(), batch_size=4, num_workers=2))
    next(it)
    procs = [w.process for w in it._workers]
    del it
    gc.collect()
    assert all(not p.is_alive() for p in procs)
    it = iter(DataLoader(_ds(), batch_size=4, num_workers=2))
    list(it)
    assert all(not w.process.is_alive() for w in it._workers)


def _fds():
    return len(os.listdir("/proc/self/fd"))


def _memfd_maps():
    with open("/proc/self/maps") as f:
        return sum("memfd:rtorch" in line for line in f)


def _kill_workers_mid_epoch(dataset):
    it = iter(DataLoader(dataset, batch_size=256, shuffle=True, num_workers=4, prefetch_factor=4))
    next(it)
    for w in it._workers:
        os.kill(w.pid, signal.SIGKILL)
    try:
        for batch in it:
            assert batch[0].is_shared()  # results already in flight may still arrive
    except RuntimeError as e:
        assert "exited unexpectedly" in str(e)


@pytest.mark.parametrize("round_", [0, 1])
def test_no_leaks_after_100_workers_killed_mid_transfer(round_):
    gc.collect()
    fds0, maps0 = _fds(), _memfd_maps()
    big = TensorDataset(rtorch.rand(4096, 256))
    for _ in range(25):
        _kill_workers_mid_epoch(big)
    gc.collect()
    assert _memfd_maps() == maps0
    assert _fds() == fds0
