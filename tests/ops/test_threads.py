"""Intra-op threads, fork safety, GIL release, and rtorch.testing."""

import multiprocessing as mp
import os
import threading

import numpy as np
import pytest

import rtorch


def test_num_threads_round_trip():
    n = rtorch.get_num_threads()
    assert n >= 1
    try:
        rtorch.set_num_threads(1)
        assert rtorch.get_num_threads() == 1
        x = rtorch.rand(2_000_000)
        np.testing.assert_allclose(x.exp().numpy(), np.exp(x.numpy()), rtol=1e-6)
    finally:
        rtorch.set_num_threads(n)
    with pytest.raises(RuntimeError, match="set_num_threads expects a positive integer"):
        rtorch.set_num_threads(0)


def _child_runs_parallel_kernel(q):
    x = rtorch.ones(4_000_000)
    q.put(float((x.exp() + x).sum().item() if hasattr(x, "sum") else (x.exp() + x)[0].item()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_runs_parallel_kernels_without_hanging():
    # Run a multi-threaded op in the parent first, then in a forked child.
    _ = rtorch.ones(4_000_000).exp()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_runs_parallel_kernel, args=(q,))
    p.start()
    p.join(timeout=60)
    assert p.exitcode == 0, "forked child hung or crashed"
    assert q.get(timeout=5) > 0


def test_gil_is_released_during_large_kernels():
    x = rtorch.rand(8_000_000)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(1)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        for _ in range(3):
            x.exp()
    finally:
        done.set()
        t.join()
    # With the GIL held for whole kernels, the ticker would barely run.
    assert len(ticks) > 100


def test_assert_close_default_tolerances_and_messages():
    from rtorch.testing import assert_close

    assert_close(rtorch.tensor([1.0, 2.0]), rtorch.tensor([1.0, 2.0 + 1e-6]))
    with pytest.raises(AssertionError, match="Mismatched elements: 1 / 2"):
        assert_close(rtorch.tensor([1.0, 2.0]), rtorch.tensor([1.0, 2.1]))
    with pytest.raises(AssertionError, match="The values for attribute 'dtype' do not match"):
        assert_close(rtorch.tensor([1.0]), rtorch.tensor([1.0], dtype=rtorch.float64))
    with pytest.raises(AssertionError, match="The values for attribute 'shape' do not match"):
        assert_close(rtorch.zeros(2), rtorch.zeros(3))
    assert_close(rtorch.tensor([1, 2]), rtorch.tensor([1, 2]))
    with pytest.raises(AssertionError, match="Tensor-likes are not equal"):
        assert_close(rtorch.tensor([1, 2]), rtorch.tensor([1, 3]))
    assert_close({"a": [rtorch.tensor(1.0)]}, {"a": [rtorch.tensor(1.0)]})
    assert_close(1.0, 1.0 + 1e-9)
    assert_close(rtorch.tensor([float("nan")]), rtorch.tensor([float("nan")]), equal_nan=True)
    with pytest.raises(
        ValueError, match="Both 'rtol' and 'atol' must be either specified or omitted"
    ):
        assert_close(rtorch.zeros(1), rtorch.zeros(1), rtol=0.1)
