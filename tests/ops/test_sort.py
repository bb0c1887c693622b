"""Sorting, order statistics, uniqueness, counting and binary search
against NumPy."""

import math

import numpy as np
import pytest

import rtorch

RNG = np.random.default_rng(1)
NAN = float("nan")


def layouts(a):
    t = rtorch.from_numpy(a)
    yield a, t
    yield a.T, t.t()
    yield a[:, ::2], t[:, ::2]


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_matches_numpy_stable_sort(dim, descending):
    a = RNG.integers(0, 4, (5, 6)).astype(np.float32)
    for x, t in layouts(a):
        r = t.sort(dim, descending=descending, stable=True)
        assert isinstance(r, rtorch.return_types.sort)
        key = -x if descending else x
        idx = np.argsort(key, axis=dim, kind="stable")
        assert r.indices.tolist() == idx.tolist()
        np.testing.assert_array_equal(r.values.numpy(), np.take_along_axis(x, idx, dim))
        assert t.argsort(dim, descending).tolist() == idx.tolist()
        assert r.values.is_contiguous()


def test_sort_puts_nan_last_and_first_when_descending():
    t = rtorch.tensor([2.0, NAN, 1.0])
    assert t.sort().indices.tolist() == [2, 0, 1]
    assert t.sort(descending=True).indices.tolist() == [1, 0, 2]


def test_sort_of_integers_empty_and_zero_dim():
    t = rtorch.tensor([3, 1, 2], dtype=rtorch.int32)
    assert t.sort().values.tolist() == [1, 2, 3]
    assert t.sort().values.dtype is rtorch.int32
    assert rtorch.zeros(0).sort().values.shape == (0,)
    z = rtorch.tensor(5.0).sort()
    assert z.values.item() == 5.0 and z.indices.shape == ()
    np.testing.assert_array_equal(
        rtorch.msort(rtorch.tensor([[3, 1], [1, 2]])).numpy(), [[1, 1], [3, 2]]
    )


@pytest.mark.parametrize("largest", [True, False])
def test_topk_gives_the_k_extreme_values_sorted(largest):
    a = RNG.standard_normal((4, 7))
    for x, t in layouts(a):
        r = t.topk(3, dim=1, largest=largest)
        want = np.sort(x, 1)[:, ::-1][:, :3] if largest else np.sort(x, 1)[:, :3]
        np.testing.assert_array_equal(r.values.numpy(), want)
        np.testing.assert_array_equal(np.take_along_axis(x, r.indices.numpy(), 1), want)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        t.topk(8)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_selection_on_long_rows_with_ties_matches_the_stable_sort(dtype):
    # Long rows take the partial-selection path: the values and the indices
    # (ties broken by position, NaN last) equal the stable sort's prefix.
    a = RNG.integers(0, 20, (3, 301)).astype(dtype)
    if dtype == np.float32:
        a[0, [5, 17, 200]] = NAN
    t = rtorch.from_numpy(a)
    for largest in (True, False):
        key = np.where(np.isnan(a), np.inf, a) if dtype == np.float32 else a
        order = np.argsort(-key if largest else key, 1, kind="stable")
        if largest and dtype == np.float32:  # NaN counts as the largest
            order = np.argsort(np.where(np.isnan(a), -np.inf, -a), 1, kind="stable")
        r = t.topk(9, 1, largest=largest)
        np.testing.assert_array_equal(r.indices.numpy(), order[:, :9])
    stable = np.argsort(np.where(np.isnan(a), np.inf, a), 1, kind="stable")
    for k in (1, 40, 150):
        r = t.kthvalue(k, 1)
        np.testing.assert_array_equal(r.indices.numpy(), stable[:, k - 1])
    valid = (~np.isnan(a)).sum(1) if dtype == np.float32 else np.full(3, 301)
    r = t.nanmedian(1)
    want = stable[np.arange(3), (valid - 1) // 2]
    np.testing.assert_array_equal(r.indices.numpy(), want)


def test_kthvalue():
    a = RNG.standard_normal((4, 5))
    for x, t in layouts(a):
        r = t.kthvalue(2, 0)
        np.testing.assert_array_equal(r.values.numpy(), np.sort(x, 0)[1])
        np.testing.assert_array_equal(x[r.indices.numpy(), np.arange(x.shape[1])], np.sort(x, 0)[1])
    assert rtorch.kthvalue(t, 1, keepdim=True).values.shape == (4, 1)
    with pytest.raises(RuntimeError, match=r"kthvalue\(\): selected number k out of range"):
        t.kthvalue(6)


def test_median_is_the_lower_median():
    a = RNG.standard_normal((4, 6))
    for x, t in layouts(a):
        n = x.size
        assert t.median().item() == np.sort(x, axis=None)[(n - 1) // 2]
        r = t.median(1)
        want = np.sort(x, 1)[:, (x.shape[1] - 1) // 2]
        np.testing.assert_array_equal(r.values.numpy(), want)
        np.testing.assert_array_equal(
            np.take_along_axis(x, r.indices.numpy()[:, None], 1)[:, 0], want
        )
    assert rtorch.median(rtorch.from_numpy(a), 0, keepdim=True).values.shape == (1, 6)


def test_median_and_nanmedian_with_nan():
    t = rtorch.tensor([[1.0, NAN, 3.0, 2.0], [4.0, 5.0, 6.0, 7.0]])
    assert math.isnan(t.median().item())
    v = t.median(1).values
    assert math.isnan(v[0].item()) and v[1].item() == 5.0
    assert t.nanmedian(1).values.tolist() == [2.0, 5.0]
    assert t.nanmedian().item() == 4.0
    assert math.isnan(rtorch.tensor([NAN]).nanmedian().item())


def test_mode_picks_the_smallest_most_frequent_value():
    t = rtorch.tensor([[1, 2, 2, 3, 3], [5, 4, 4, 5, 1]])
    r = t.mode(1)
    assert r.values.tolist() == [2, 4]
    assert t[0, r.indices[0]].item() == 2 and t[1, r.indices[1]].item() == 4
    assert rtorch.mode(t, 0).values.tolist() == [1, 2, 2, 3, 1]


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
@pytest.mark.parametrize("dim", [None, 0, 1])
def test_quantile_matches_numpy(interpolation, dim):
    a = RNG.standard_normal((5, 8))
    q = [0.0, 0.1, 0.5, 0.77, 1.0]
    for x, t in layouts(a):
        got = t.quantile(rtorch.tensor(q, dtype=rtorch.float64), dim, interpolation=interpolation)
        want = np.quantile(x, q, axis=dim, method=interpolation)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
        one = rtorch.quantile(t, 0.3, dim, keepdim=True, interpolation=interpolation)
        np.testing.assert_allclose(
            one.numpy(), np.quantile(x, 0.3, axis=dim, method=interpolation, keepdims=True)
        )


def test_quantile_nan_and_errors():
    t = rtorch.tensor([1.0, NAN, 3.0])
    assert math.isnan(t.quantile(0.5).item())
    assert t.nanquantile(0.5).item() == 2.0
    with pytest.raises(RuntimeError, match=r"q values must be in the range \[0, 1\]"):
        t.quantile(1.5)
    with pytest.raises(RuntimeError, match="must be either float or double"):
        rtorch.tensor([1, 2]).quantile(0.5)


def test_unique_matches_numpy():
    a = RNG.integers(0, 5, (4, 6))
    t = rtorch.from_numpy(a)
    vals, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    u, i, c = rtorch.unique(t, return_inverse=True, return_counts=True)
    assert u.tolist() == vals.tolist() and c.tolist() == counts.tolist()
    assert i.tolist() == inv.reshape(a.shape).tolist()
    assert t.t().unique().tolist() == vals.tolist()
    rows = rtorch.tensor([[1, 2], [0, 5], [1, 2]])
    u, i = rows.unique(dim=0, return_inverse=True)
    assert u.tolist() == [[0, 5], [1, 2]] and i.tolist() == [1, 0, 1]
    assert rows.unique(dim=1).tolist() == [[1, 2], [0, 5], [1, 2]]
    assert rtorch.zeros(0).unique().shape == (0,)


def test_unique_consecutive():
    t = rtorch.tensor([1, 1, 2, 2, 3, 1, 1, 2])
    u, i, c = rtorch.unique_consecutive(t, return_inverse=True, return_counts=True)
    assert u.tolist() == [1, 2, 3, 1, 2]
    assert i.tolist() == [0, 0, 1, 1, 2, 3, 3, 4]
    assert c.tolist() == [2, 2, 1, 2, 1]


def test_bincount_matches_numpy():
    a = np.array([0, 1, 1, 3, 2, 1, 7])
    w = RNG.random(7)
    t = rtorch.from_numpy(a)
    assert t.bincount().tolist() == np.bincount(a).tolist()
    assert rtorch.bincount(t, minlength=10).tolist() == np.bincount(a, minlength=10).tolist()
    got = t.bincount(rtorch.from_numpy(w))
    np.testing.assert_allclose(got.numpy(), np.bincount(a, w))
    assert got.dtype is rtorch.float64
    assert t.bincount(rtorch.ones(7)).dtype is rtorch.float32
    assert rtorch.tensor([], dtype=rtorch.int64).bincount().shape == (0,)
    with pytest.raises(RuntimeError, match="non-negative integral"):
        rtorch.tensor([-1, 2]).bincount()
    with pytest.raises(RuntimeError, match="same length"):
        t.bincount(rtorch.ones(3))


def test_histc_matches_numpy_histogram():
    a = RNG.standard_normal(1000).astype(np.float32)
    t = rtorch.from_numpy(a)
    want, _ = np.histogram(a, bins=10, range=(-2, 2))
    got = t.histc(10, -2, 2)
    assert got.dtype is rtorch.float32
    assert got.tolist() == want.astype(np.float32).tolist()
    auto, _ = np.histogram(a, bins=7)
    assert rtorch.histc(t, bins=7).tolist() == auto.tolist()


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_and_bucketize_match_numpy(right):
    seq = np.array([1, 3, 3, 5, 7])
    vals = np.array([[0, 3, 4], [7, 8, 5]])
    side = "right" if right else "left"
    want = np.searchsorted(seq, vals, side=side)
    ts, tv = rtorch.from_numpy(seq), rtorch.from_numpy(vals)
    assert rtorch.searchsorted(ts, tv, right=right).tolist() == want.tolist()
    assert rtorch.searchsorted(ts, tv, side=side).tolist() == want.tolist()
    assert rtorch.bucketize(tv, ts, right=right).tolist() == want.tolist()
    assert rtorch.searchsorted(ts, 4).item() == 3
    assert rtorch.searchsorted(ts, tv, out_int32=True).dtype is rtorch.int32
    seq2 = np.sort(RNG.random((2, 6)), 1)
    v2 = RNG.random((2, 3))
    got = rtorch.searchsorted(rtorch.from_numpy(seq2), rtorch.from_numpy(v2), right=right)
    assert got.tolist() == [np.searchsorted(seq2[i], v2[i], side=side).tolist() for i in range(2)]


def test_searchsorted_with_sorter_and_errors():
    seq = rtorch.tensor([5, 1, 3])
    sorter = seq.argsort()
    assert rtorch.searchsorted(seq, rtorch.tensor([2, 4]), sorter=sorter).tolist() == [1, 2]
    with pytest.raises(RuntimeError, match="side and right can't be set to opposites"):
        rtorch.searchsorted(seq, rtorch.tensor([1]), right=True, side="left")
