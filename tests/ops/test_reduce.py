"""Reductions and scans against NumPy: values, shapes and dtypes on
contiguous, transposed and sliced inputs; empty and 0-d inputs; errors."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rtorch

RNG = np.random.default_rng(0)


def layouts(a):
    """(numpy, rtorch) pairs of the same values: contiguous, permuted, sliced."""
    t = rtorch.from_numpy(a)
    yield a, t
    perm = tuple(reversed(range(a.ndim)))
    yield a.transpose(perm), t.permute(perm)
    yield a[..., ::2], t[..., ::2]


def close(t, want, **kw):
    want = np.asarray(want)
    got = t.numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, equal_nan=True, **{"rtol": 1e-5, "atol": 1e-6, **kw})


DIMS = [None, 0, -1, (0, 2), (2, 0, 1)]


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize(
    "name,ref",
    [("sum", np.sum), ("mean", np.mean), ("amax", np.max), ("amin", np.min), ("nansum", np.nansum)],
)
def test_reduction_matches_numpy_on_every_layout(name, ref, dim, keepdim):
    a = RNG.standard_normal((3, 4, 6))
    for x, t in layouts(a):
        kw = {} if dim is None else {"dim": dim}
        got = getattr(t, name)(keepdim=keepdim, **kw)
        close(got, ref(x, axis=dim, keepdims=keepdim))
        assert got.dtype is rtorch.float64


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_prod_matches_numpy(dim):
    a = RNG.uniform(0.5, 1.5, (4, 5))
    for x, t in layouts(a):
        close(t.prod() if dim is None else t.prod(dim), np.prod(x, axis=dim))


@pytest.mark.parametrize(
    "dtype", [rtorch.int32, rtorch.int8, rtorch.uint8, rtorch.bool, rtorch.int64]
)
def test_sum_and_prod_of_integers_and_bools_give_int64(dtype):
    t = rtorch.tensor([[1, 0, 1], [1, 1, 1]]).to(dtype)
    assert t.sum().dtype is rtorch.int64
    assert t.sum(1).tolist() == [2, 3]
    assert t.prod(1).tolist() == [0, 1]
    assert t.prod().dtype is rtorch.int64
    assert t.cumsum(1).dtype is rtorch.int64


def test_sum_dtype_argument_and_half_precision():
    t = rtorch.tensor([1.5, 2.5], dtype=rtorch.float16)
    assert t.sum().dtype is rtorch.float16
    assert t.sum().item() == 4.0
    assert rtorch.tensor([1, 2]).sum(dtype=rtorch.float64).dtype is rtorch.float64
    assert rtorch.tensor([1, 2]).mean(dtype=rtorch.float32).item() == 1.5
    assert rtorch.sum(rtorch.tensor([3, 4]), 0).item() == 7


def test_float32_sum_is_pairwise_accurate():
    assert rtorch.ones(10**7).sum().item() == 1e7
    a = RNG.random(1_000_003).astype(np.float32)
    exact = math.fsum(a.astype(np.float64))
    ours = abs(rtorch.from_numpy(a).sum().item() - exact)
    assert ours <= max(abs(float(a.sum()) - exact), 1e-3 * 1e-3 * exact)
    b = RNG.random((1000, 300)).astype(np.float32)
    exact0 = b.astype(np.float64).sum(0)
    err = np.abs(rtorch.from_numpy(b).sum(0).numpy() - exact0).max()
    assert err <= np.abs(b.sum(0) - exact0).max() + 1e-4


@pytest.mark.parametrize("shape,dim", [((300, 70), 0), ((2, 130, 64), 1), ((5, 3, 80), (0, 1))])
def test_leading_dim_reductions_use_every_row(shape, dim):
    a = RNG.standard_normal(shape).astype(np.float32)
    t = rtorch.from_numpy(a)
    close(t.sum(dim), a.astype(np.float64).sum(axis=dim), rtol=1e-4, atol=1e-4)
    close(t.amax(dim), a.max(axis=dim))
    close(t.amin(dim), a.min(axis=dim))
    close(t.mean(dim), a.mean(axis=dim), rtol=1e-4, atol=1e-5)


def test_large_reductions_run_in_parallel_and_agree():
    a = RNG.standard_normal((2000, 700)).astype(np.float32)
    t = rtorch.from_numpy(a)
    close(t.sum(-1), a.astype(np.float64).sum(-1), rtol=1e-4, atol=1e-3)
    close(t.amax(-1), a.max(-1))
    close(t.sum(), a.astype(np.float64).sum(), rtol=1e-5, atol=1e-2)
    assert t.max().item() == a.max()


def test_empty_reductions_follow_pytorch():
    e = rtorch.zeros(0)
    assert e.sum().item() == 0 and e.prod().item() == 1
    assert math.isnan(e.mean().item())
    z = rtorch.zeros(0, 3)
    assert z.sum(0).tolist() == [0.0, 0.0, 0.0]
    assert z.sum(1).shape == (0,)
    assert z.amax(1).shape == (0,)
    with pytest.raises(RuntimeError, match=r"max\(\): Expected reduction dim to be specified"):
        e.max()
    # PyTorch 2.x wording (ATen's zero_numel_check_dims).
    with pytest.raises(
        IndexError, match=r"max\(\): Expected reduction dim 0 to have non-zero size"
    ):
        z.max(0)
    with pytest.raises(IndexError, match=r"amax\(\): Expected reduction dim 0 to have non-zero"):
        z.amax(0)
    assert z.max(1).values.shape == (0,)
    with pytest.raises(RuntimeError, match=r"argmax\(\): Expected reduction dim to be specified"):
        e.argmax()


def test_zero_dim_inputs_reduce_to_themselves():
    t = rtorch.tensor(3.0)
    assert t.sum().item() == 3.0 and t.sum(0).shape == ()
    assert t.max(0).values.item() == 3.0 and t.max(0).indices.item() == 0
    assert t.cumsum(0).item() == 3.0
    assert t.argmax().item() == 0
    assert t.std(correction=0).item() == 0.0


def test_max_and_min_return_named_tuples():
    a = RNG.standard_normal((4, 5))
    for x, t in layouts(a):
        r = t.max(1)
        assert isinstance(r, rtorch.return_types.max)
        values, indices = r
        close(values, x.max(1))
        assert indices.tolist() == x.argmax(1).tolist()
        assert r.indices.dtype is rtorch.int64
        mn = rtorch.min(t, 0, keepdim=True)
        close(mn.values, x.min(0, keepdims=True))
        assert mn.indices.tolist() == [x.argmin(0).tolist()]
    assert rtorch.from_numpy(a).max().item() == a.max()
    close(rtorch.max(t, rtorch.zeros(1)), np.maximum(x, 0))


def test_aminmax_argmax_argmin():
    a = RNG.standard_normal((3, 4))
    t = rtorch.from_numpy(a)
    r = rtorch.aminmax(t, dim=1)
    close(r.min, a.min(1))
    close(r.max, a.max(1))
    assert t.argmax().item() == a.argmax()
    assert t.argmin(0).tolist() == a.argmin(0).tolist()
    assert t.argmax(1, keepdim=True).shape == (3, 1)
    assert t.t().argmax(0).tolist() == a.T.argmax(0).tolist()


def test_nan_propagates_through_max_and_argmax():
    t = rtorch.tensor([1.0, float("nan"), 3.0, float("nan")])
    assert math.isnan(t.max().item()) and math.isnan(t.amin().item())
    assert t.argmax().item() == 1 and t.argmin().item() == 1
    assert math.isnan(t.sum().item())
    assert t.nansum().item() == 4.0
    assert t.nanmean().item() == 2.0
    big = rtorch.ones(1000)
    big[537] = float("nan")
    assert math.isnan(big.amax().item())


@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("correction", [0, 1, 2])
def test_var_and_std_match_numpy_ddof(dim, correction):
    a = RNG.standard_normal((5, 6))
    for x, t in layouts(a):
        kw = {} if dim is None else {"dim": dim}
        close(t.var(correction=correction, **kw), np.var(x, axis=dim, ddof=correction))
        close(t.std(correction=correction, **kw), np.std(x, axis=dim, ddof=correction))
    close(t.std(0, unbiased=False), np.std(x, 0))
    close(t.var(False), np.var(x))
    s, m = rtorch.std_mean(t, 1)
    close(s, np.std(x, 1, ddof=1))
    close(m, x.mean(1))
    v, m = rtorch.var_mean(t, dim=0, keepdim=True)
    close(v, np.var(x, 0, ddof=1, keepdims=True))


def test_dtype_errors_follow_pytorch():
    i = rtorch.tensor([1, 2])
    with pytest.raises(RuntimeError, match=r"mean\(\): could not infer output dtype.*Got: Long"):
        i.mean()
    with pytest.raises(RuntimeError, match="std and var only support floating point"):
        i.std()
    with pytest.raises(RuntimeError, match=r"norm\(\): input dtype should be"):
        i.norm()
    with pytest.raises(RuntimeError, match="nanmean"):
        i.nanmean()
    with pytest.raises(IndexError, match="Dimension out of range"):
        rtorch.zeros(2, 3).sum(2)
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times"):
        rtorch.zeros(2, 3).sum((0, -2))


@pytest.mark.parametrize(
    "p,ref",
    [
        (2, lambda x, d: np.sqrt((x**2).sum(axis=d))),
        (1, lambda x, d: np.abs(x).sum(axis=d)),
        (float("inf"), lambda x, d: np.abs(x).max(axis=d)),
        (3, lambda x, d: (np.abs(x) ** 3).sum(axis=d) ** (1 / 3)),
        ("fro", lambda x, d: np.sqrt((x**2).sum(axis=d))),
    ],
)
@pytest.mark.parametrize("dim", [None, 1, (0, 1)])
def test_norm_and_vector_norm(p, ref, dim):
    a = RNG.standard_normal((4, 5))
    for x, t in layouts(a):
        close(rtorch.norm(t, p, dim), ref(x, dim))
        if p != "fro":
            close(rtorch._C._vector_norm(t, p, dim), ref(x, dim))
    assert rtorch._C._vector_norm(rtorch.tensor([3e30, 4e30]), 2).item() == pytest.approx(5e30)
    assert rtorch._C._vector_norm(rtorch.from_numpy(a), 0).item() == 20


def test_logsumexp_is_stable():
    a = RNG.standard_normal((3, 4)) * 100
    t = rtorch.from_numpy(a)
    m = a.max(1, keepdims=True)
    close(t.logsumexp(1), (m + np.log(np.exp(a - m).sum(1, keepdims=True)))[:, 0])
    ninf = rtorch.full((2,), float("-inf"))
    assert ninf.logsumexp(0).item() == float("-inf")
    assert rtorch.tensor([1, 2]).logsumexp(0).dtype is rtorch.float32


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumulative_ops_match_numpy(dim):
    a = RNG.uniform(0.5, 1.5, (4, 5))
    for x, t in layouts(a):
        close(t.cumsum(dim), np.cumsum(x, dim))
        close(rtorch.cumprod(t, dim), np.cumprod(x, dim))
        mx = t.cummax(dim)
        close(mx.values, np.maximum.accumulate(x, dim))
        mn = rtorch.cummin(t, dim)
        close(mn.values, np.minimum.accumulate(x, dim))
        # Each index points at the value it reports.
        vals = np.take_along_axis(x, mx.indices.numpy(), dim)
        close(mx.values, vals)


def test_cummax_ties_take_the_last_index_and_nan_wins():
    t = rtorch.tensor([1.0, 3.0, 3.0, float("nan"), 5.0])
    r = t.cummax(0)
    assert r.indices.tolist() == [0, 1, 2, 3, 3]
    assert math.isnan(r.values[4].item())


@pytest.mark.parametrize("dtype", [rtorch.float32, rtorch.int64, rtorch.bool])
def test_all_any_count_nonzero(dtype):
    a = np.array([[1, 0, 2], [3, 4, 5]])
    t = rtorch.from_numpy(a).to(dtype)
    assert t.all().item() is False and t.any().item() is True
    assert t.all(1).tolist() == [False, True]
    assert rtorch.any(t, 0, keepdim=True).shape == (1, 3)
    assert t.all(dim=(0, 1)).dtype is rtorch.bool
    assert t.count_nonzero().item() == 5
    assert t.count_nonzero(0).tolist() == [2, 1, 2]
    assert rtorch.count_nonzero(t, (0, 1)).dtype is rtorch.int64
    assert rtorch.zeros(0).all().item() is True and rtorch.zeros(0).any().item() is False


def test_all_of_uint8_stays_uint8():
    assert rtorch.tensor([1, 2], dtype=rtorch.uint8).all().dtype is rtorch.uint8


@st.composite
def reduction_case(draw):
    shape = draw(st.lists(st.integers(1, 5), min_size=0, max_size=4))
    ndim = len(shape)
    dims = (
        draw(st.lists(st.integers(-ndim, ndim - 1), unique_by=lambda d: d % ndim, max_size=ndim))
        if ndim
        else []
    )
    return shape, tuple(dims), draw(st.booleans()), draw(st.booleans())


@given(reduction_case())
def test_reductions_over_any_dims_match_numpy(case):
    shape, dims, keepdim, transpose = case
    a = RNG.standard_normal(shape)
    t = rtorch.from_numpy(a)
    if transpose and a.ndim > 1:
        a, t = a.T, t.permute(tuple(reversed(range(a.ndim))))
    axis = dims if dims else None
    kw = {"dim": dims} if dims else {}
    close(t.sum(keepdim=keepdim, **kw), np.sum(a, axis=axis, keepdims=keepdim))
    close(t.amax(keepdim=keepdim, **kw), np.max(a, axis=axis, keepdims=keepdim))
    close(t.mean(keepdim=keepdim, **kw), np.mean(a, axis=axis, keepdims=keepdim))
    close(t.var(correction=0, keepdim=keepdim, **kw), np.var(a, axis=axis, keepdims=keepdim))


def test_transposed_and_channels_last_inputs_reduce_in_memory_order():
    a = RNG.standard_normal((6, 5, 80)).astype(np.float32)
    t = rtorch.from_numpy(a)
    for perm in [(2, 1, 0), (0, 2, 1), (1, 0, 2)]:
        x, v = a.transpose(perm), t.permute(perm)
        for dim in [0, 1, 2, (0, 1), (1, 2)]:
            close(v.sum(dim), x.astype(np.float64).sum(axis=dim), rtol=1e-4, atol=1e-4)
            close(v.amin(dim, keepdim=True), x.min(axis=dim, keepdims=True))


@pytest.mark.parametrize(
    "dtype,np_dtype",
    [
        (rtorch.int32, np.int32),
        (rtorch.int8, np.int8),
        (rtorch.uint8, np.uint8),
        (rtorch.int16, np.int16),
        (rtorch.float16, np.float16),
    ],
)
def test_max_min_argmax_keep_integer_and_half_dtypes(dtype, np_dtype):
    a = RNG.integers(0, 100, (4, 5)).astype(np_dtype)
    t = rtorch.from_numpy(a.astype(np.float32)).to(dtype)
    assert t.amax().dtype is dtype and t.amax().item() == a.max()
    r = t.t().max(1)
    assert r.values.dtype is dtype
    assert r.values.tolist() == a.T.max(1).tolist()
    assert r.indices.tolist() == a.T.argmax(1).tolist()
    assert t.amin(0).tolist() == a.min(0).tolist()
    assert t.argmin().item() == a.argmin()
    assert t.cummax(1).values.tolist() == np.maximum.accumulate(a, 1).tolist()


def test_bool_reductions():
    t = rtorch.tensor([[True, False], [True, True]])
    assert t.amax().dtype is rtorch.bool and t.amax().item() is True
    assert t.amin(1).tolist() == [False, True]
    assert t.sum(0).tolist() == [2, 1]
    assert t.cumsum(1).tolist() == [[1, 1], [1, 2]]
    assert t.argmax(1).tolist() == [0, 0]


def test_half_precision_sums_accumulate_in_float32():
    t = rtorch.ones(4096, dtype=rtorch.float16)
    assert t.sum().item() == 4096.0 and t.sum().dtype is rtorch.float16
    assert t.mean().item() == 1.0
    b = rtorch.ones(3000, dtype=rtorch.bfloat16)
    assert b.sum().dtype is rtorch.bfloat16 and b.sum().item() == 3008.0  # nearest bf16 of 3000


@pytest.mark.parametrize("dtype", [rtorch.float16, rtorch.bfloat16])
@pytest.mark.parametrize("shape", [(300_007,), (513, 37), (7, 5000), (3, 4, 1024), (40, 1)])
@pytest.mark.parametrize("threads", [1, 2])
def test_half_sums_and_products_widen_blocks_like_a_float32_cast(dtype, shape, threads):
    # Full and trailing-dim reductions of half tensors read them in blocks
    # widened to float32: the float32 reduction of the cast, rounded once.
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    h = rtorch.from_numpy(x).to(dtype)
    f = h.float()
    before = rtorch.get_num_threads()
    rtorch.set_num_threads(threads)
    try:
        pairs = [(h.sum(), f.sum()), (h.sum(-1), f.sum(-1)), (h.mean(-1), f.mean(-1))]
        if len(shape) > 1:
            pairs.append((h.sum((-2, -1)), f.sum((-2, -1))))
        pairs.append((h[..., :8].prod(-1), f[..., :8].prod(-1)))
        for got, want in pairs:
            assert got.dtype is dtype
            np.testing.assert_allclose(
                got.float().numpy(), want.to(dtype).float().numpy(), rtol=1e-2, atol=1e-2
            )
        # 10^6 ones sum exactly (pairwise over the widened blocks).
        assert rtorch.ones(1_000_000, dtype=dtype).sum(dtype=rtorch.float32).item() == 1e6
    finally:
        rtorch.set_num_threads(before)


# Row lengths around the vectorised row kernels' boundaries: 64 lane
# accumulators, a 16-wide tail, a scalar rest, 1024-element pairwise leaves.
ROW_LENGTHS = [1, 2, 15, 16, 17, 63, 64, 65, 100, 1023, 1024, 1025, 2049, 4100]


def row_layouts(a):
    """(numpy, rtorch) pairs with rows of `a` reduced along the last dim:
    contiguous, every other row, transposed storage, every other column."""
    t = rtorch.from_numpy(a)
    yield a, t
    yield a[::2], t[::2]
    yield a, rtorch.from_numpy(np.ascontiguousarray(a.T)).t()
    yield a[:, ::2], t[:, ::2]


@pytest.mark.parametrize("n", ROW_LENGTHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_reductions_match_numpy_for_every_length(n, dtype):
    a = RNG.standard_normal((6, n)).astype(dtype)
    a[1, n // 3] = np.inf
    a[2] = -np.inf
    a[3] = 1.0
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype is np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    for x, t in row_layouts(a):
        close(t.sum(-1), x.astype(np.float64).sum(-1), **tol)
        close(t.mean(-1, keepdim=True), x.astype(np.float64).mean(-1, keepdims=True), **tol)
        # Selections are exact.
        assert t.amax(-1).tolist() == x.max(-1).tolist()
        assert t.amin(-1).tolist() == x.min(-1).tolist()
    assert rtorch.from_numpy(a[3:4]).sum(-1).item() == n  # ones sum exactly


@pytest.mark.parametrize("n", ROW_LENGTHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_max_min_and_sum_propagate_nan_from_any_position(n, dtype):
    lanes = n // 64 * 64
    tail16 = lanes + (n - lanes) // 16 * 16
    spots = sorted({0, n // 2, n - 1, lanes, tail16} - {n})
    a = np.tile(RNG.standard_normal(n).astype(dtype), (len(spots) + 1, 1))
    for r, p in enumerate(spots):
        a[r, p] = np.nan
    for x, t in row_layouts(a):
        for got, want in [
            (t.amax(-1), x.max(-1)),
            (t.amin(-1), x.min(-1)),
            (t.sum(-1), x.sum(-1)),
        ]:
            got = got.numpy()
            assert np.array_equal(np.isnan(got), np.isnan(want)), (n, spots)
    last = rtorch.from_numpy(a[-1:])
    assert last.amax(-1).item() == a[-1].max() and last.amin(-1).item() == a[-1].min()


@pytest.mark.parametrize("n", [1, 17, 65, 1025])
@pytest.mark.parametrize("np_dtype", [np.int64, np.int32, np.int8, np.uint8])
def test_integer_row_reductions_match_numpy(n, np_dtype):
    a = RNG.integers(0, 100, (4, n)).astype(np_dtype)
    a[1, n // 2] = 127 if np_dtype in (np.int8, np.uint8) else 10**6
    for x, t in row_layouts(a):
        assert t.sum(-1).tolist() == x.astype(np.int64).sum(-1).tolist()
        assert t.amax(-1).tolist() == x.max(-1).tolist()
        assert t.amin(-1).tolist() == x.min(-1).tolist()


def test_reducing_empty_rows_gives_the_identity():
    z = rtorch.zeros(3, 0)
    assert z.sum(-1).tolist() == [0.0] * 3
    assert z.prod(-1).tolist() == [1.0] * 3
    assert all(math.isnan(v) for v in z.mean(-1).tolist())
    assert rtorch.zeros(3, 0, dtype=rtorch.int64).sum(-1).tolist() == [0] * 3
    with pytest.raises(IndexError, match=r"amax\(\): Expected reduction dim 1 to have non-zero"):
        z.amax(-1)
