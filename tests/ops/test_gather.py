"""Index-driven ops (gather/scatter, index_*, masks, take, nonzero) against
NumPy, on contiguous and strided inputs, with PyTorch's errors."""

import re

import numpy as np
import pytest

import rtorch


def tensor(a, layout="contiguous"):
    """A copy of `a` as a tensor: contiguous, or with the same values but strided."""
    a = np.array(a)
    if layout == "contiguous" or a.ndim == 0:
        return rtorch.from_numpy(np.ascontiguousarray(a))
    if a.ndim == 1:
        base = np.zeros(2 * a.shape[0], dtype=a.dtype)
        base[::2] = a
        return rtorch.from_numpy(base)[::2]
    rev = tuple(reversed(range(a.ndim)))
    return rtorch.from_numpy(np.ascontiguousarray(a.transpose(rev))).permute(*rev)


def check(t, expected, dtype=None):
    expected = np.asarray(expected)
    assert tuple(t.shape) == expected.shape
    if dtype is not None:
        assert t.dtype is dtype
    got = t.numpy()
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    else:
        np.testing.assert_array_equal(got, expected)


LAYOUTS = ["contiguous", "strided"]


def arr(*shape, dtype=np.float32):
    return np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape).astype(dtype)


# ---------------------------------------------------------------- gather


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_matches_take_along_axis(layout, dim):
    a = arr(3, 4)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, a.shape[dim], size=(3, 4))
    check(
        rtorch.gather(tensor(a, layout), dim, tensor(idx, layout)), np.take_along_axis(a, idx, dim)
    )


def test_gather_with_smaller_index_and_int_bool_dtypes():
    a = arr(3, 4, dtype=np.int32)
    idx = np.array([[3, 0], [1, 1]])
    check(tensor(a).gather(1, tensor(idx)), np.take_along_axis(a[:2], idx, 1), rtorch.int32)
    b = rtorch.tensor([[True, False], [False, True]])
    check(b.gather(0, rtorch.tensor([[1, 0]])), [[False, False]])
    check(rtorch.tensor(5.0).gather(0, rtorch.tensor(0)), 5.0)
    check(
        rtorch.ones(2, 3).gather(1, rtorch.empty(2, 0, dtype=rtorch.int64)),
        np.ones((2, 0), np.float32),
    )


def test_gather_errors_follow_pytorch():
    x = rtorch.ones(2, 3)
    with pytest.raises(RuntimeError, match="index 5 is out of bounds for dimension 1 with size 3"):
        x.gather(1, rtorch.tensor([[5]]))
    with pytest.raises(RuntimeError, match="index -1 is out of bounds for dimension 1 with size 3"):
        x.gather(1, rtorch.tensor([[-1]]))
    with pytest.raises(RuntimeError, match="gather\\(\\): Expected dtype int64 for index"):
        x.gather(1, rtorch.tensor([[0]], dtype=rtorch.int32))
    with pytest.raises(
        RuntimeError, match="Index tensor must have the same number of dimensions as input tensor"
    ):
        x.gather(1, rtorch.tensor([0]))
    with pytest.raises(RuntimeError, match="Size does not match at dimension 0 expected index"):
        x.gather(1, rtorch.zeros(3, 1, dtype=rtorch.int64))


# ---------------------------------------------------------------- scatter


def np_scatter(target, dim, idx, src, op):
    out = target.copy()
    for pos in np.ndindex(*idx.shape):
        t = list(pos)
        t[dim] = idx[pos]
        v = src[pos] if isinstance(src, np.ndarray) else src
        out[tuple(t)] = op(out[tuple(t)], v)
    return out


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_src_and_value_match_reference(layout, dim):
    a = arr(3, 4)
    idx = np.array([[0, 1, 2, 0], [2, 0, 1, 1]]) if dim == 0 else np.array([[3, 0], [1, 2], [0, 0]])
    src = arr(*idx.shape) + 100
    check(
        tensor(a, layout).scatter(dim, tensor(idx), tensor(src, layout)),
        np_scatter(a, dim, idx, src, lambda o, v: v),
    )
    check(
        rtorch.scatter(tensor(a, layout), dim, tensor(idx), 7.5),
        np_scatter(a, dim, idx, 7.5, lambda o, v: v),
    )
    check(
        tensor(a).scatter(dim, tensor(idx), value=-1), np_scatter(a, dim, idx, -1, lambda o, v: v)
    )


def test_scatter_in_place_and_reduce_modes():
    a = arr(2, 3)
    idx = np.array([[0, 0, 2], [1, 1, 1]])
    src = arr(2, 3) + 1
    t = tensor(a)
    assert t.scatter_(1, tensor(idx), tensor(src), reduce="add") is t
    check(t, np_scatter(a, 1, idx, src, lambda o, v: o + v))
    t = tensor(a, "strided")
    t.scatter_(1, tensor(idx), 2.0, reduce="multiply")
    check(t, np_scatter(a, 1, idx, 2.0, lambda o, v: o * v))


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_scatter_add_adds_duplicates(dtype):
    a = np.zeros((2, 4), dtype)
    idx = np.array([[0, 0, 3, 0], [1, 1, 1, 2]])
    src = arr(2, 4, dtype=dtype) + 1
    expected = np_scatter(a, 1, idx, src, lambda o, v: o + v)
    check(rtorch.scatter_add(tensor(a), 1, tensor(idx), tensor(src, "strided")), expected)
    t = tensor(a)
    t.scatter_add_(1, tensor(idx), tensor(src))
    check(t, expected)


@pytest.mark.parametrize(
    "reduce,op",
    [
        ("sum", np.add),
        ("prod", np.multiply),
        ("amax", np.maximum),
        ("amin", np.minimum),
        ("mean", None),
    ],
)
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_matches_reference(reduce, op, include_self):
    a = arr(5) + 1
    idx = np.array([0, 1, 0, 1, 2, 1])
    src = np.array([2.0, 3.0, 4.0, 5.0, 6.0, -1.0], np.float32)
    groups = {}
    for i, v in zip(idx, src, strict=True):
        groups.setdefault(int(i), []).append(v)
    expected = a.copy()
    for i, vs in groups.items():
        vals = ([a[i]] if include_self else []) + vs
        if reduce == "mean":
            expected[i] = np.mean(vals)
        else:
            expected[i] = op.reduce(np.array(vals, np.float32))
    got = tensor(a).scatter_reduce(
        0, tensor(idx), tensor(src, "strided"), reduce, include_self=include_self
    )
    check(got, expected)
    t = tensor(a)
    t.scatter_reduce_(0, tensor(idx), tensor(src), reduce, include_self=include_self)
    check(t, expected)


def test_scatter_reduce_integer_mean_floors():
    t = rtorch.tensor([0, 0])
    out = t.scatter_reduce(
        0, rtorch.tensor([0, 0, 1]), rtorch.tensor([1, 2, -3]), "mean", include_self=False
    )
    check(out, [1, -3], rtorch.int64)


def test_scatter_errors_follow_pytorch():
    x = rtorch.zeros(3)
    with pytest.raises(RuntimeError, match="index 5 is out of bounds for dimension 0 with size 3"):
        x.scatter_(0, rtorch.tensor([5]), rtorch.ones(1))
    with pytest.raises(RuntimeError, match="scatter\\(\\): Expected dtype int64 for index"):
        x.scatter(0, rtorch.tensor([0], dtype=rtorch.int32), 1.0)
    with pytest.raises(
        RuntimeError, match="scatter\\(\\): Expected self.dtype to be equal to src.dtype"
    ):
        x.scatter(0, rtorch.tensor([0]), rtorch.tensor([1]))
    with pytest.raises(
        RuntimeError, match="Index tensor must have the same number of dimensions as self tensor"
    ):
        x.scatter(0, rtorch.tensor([[0]]), 1.0)
    with pytest.raises(RuntimeError, match="reduce argument must be either"):
        x.scatter_reduce(0, rtorch.tensor([0]), rtorch.ones(1), "max")


# ---------------------------------------------------------------- index_*


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select_matches_numpy_take(layout, dim):
    a = arr(3, 4, dtype=np.int64)
    idx = np.array([2, 0, 0, 1])[: a.shape[dim]]
    for dt in (rtorch.int64, rtorch.int32):
        ix = rtorch.tensor(idx.tolist(), dtype=dt)
        check(rtorch.index_select(tensor(a, layout), dim, ix), np.take(a, idx, dim))


def test_index_select_1d_0d_empty_and_errors():
    v = arr(5)
    check(tensor(v, "strided").index_select(0, rtorch.tensor([4, 0, 4])), v[[4, 0, 4]])
    check(tensor(v).index_select(0, rtorch.tensor(2)), v[[2]])
    check(tensor(v).index_select(0, rtorch.tensor([], dtype=rtorch.int64)), v[:0])
    with pytest.raises(IndexError, match="index out of range in self"):
        tensor(v).index_select(0, rtorch.tensor([5]))
    with pytest.raises(IndexError, match="index_select\\(\\): Index is supposed to be a vector"):
        tensor(v).index_select(0, rtorch.tensor([[0]]))
    with pytest.raises(
        IndexError, match="index_select\\(\\): Expected dtype int32 or int64 for index"
    ):
        tensor(v).index_select(0, rtorch.tensor([0.0]))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_index_add_accumulates_duplicates_with_alpha(layout):
    a = arr(4, 3)
    idx = np.array([0, 2, 0])
    src = arr(3, 3) + 1
    expected = a.copy()
    np.add.at(expected, idx, 2 * src)
    check(tensor(a, layout).index_add(0, tensor(idx), tensor(src, layout), alpha=2), expected)
    t = tensor(a)
    assert t.index_add_(0, tensor(idx), tensor(src)) is t
    expected = a.copy()
    np.add.at(expected, idx, src)
    check(t, expected)
    e2 = a.copy()
    np.add.at(e2, (slice(None), [1, 1]), np.ones((4, 2), np.float32))
    check(rtorch.index_add(tensor(a), 1, rtorch.tensor([1, 1]), rtorch.ones(4, 2)), e2)


def test_index_add_errors():
    with pytest.raises(IndexError, match="index out of range in self"):
        rtorch.zeros(3).index_add_(0, rtorch.tensor([3]), rtorch.ones(1))
    with pytest.raises(IndexError, match="index out of range in self"):
        rtorch.zeros(3).index_add_(0, rtorch.tensor([-1]), rtorch.ones(1))
    with pytest.raises(
        RuntimeError,
        match="index_add_\\(\\): self \\(Float\\) and source \\(Long\\) must have the same scalar type",
    ):
        rtorch.zeros(3).index_add_(0, rtorch.tensor([0]), rtorch.tensor([1]))


def test_index_copy_and_fill():
    a = arr(4, 3)
    idx = np.array([3, 1])
    src = -arr(2, 3)
    expected = a.copy()
    expected[idx] = src
    check(tensor(a, "strided").index_copy(0, tensor(idx), tensor(src)), expected)
    t = tensor(a)
    t.index_copy_(0, tensor(idx), tensor(src))
    check(t, expected)
    expected = a.copy()
    expected[:, [0, 2]] = 9
    check(tensor(a).index_fill(1, rtorch.tensor([0, -1]), 9), expected)
    t = tensor(a, "strided")
    t.index_fill_(1, rtorch.tensor([0, 2]), rtorch.tensor(9.0))
    check(t, expected)
    with pytest.raises(
        IndexError, match="index_copy_\\(\\): index 4 is out of bounds for dimension 0 with size 4"
    ):
        tensor(a).index_copy_(0, rtorch.tensor([4]), rtorch.ones(1, 3))
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 4"):
        tensor(a).index_fill_(0, rtorch.tensor([5]), 1.0)


def test_index_put_accumulate_adds_duplicates():
    t = rtorch.zeros(5)
    t.index_put_(
        (rtorch.tensor([0, 0, 2, 0]),), rtorch.tensor([1.0, 2.0, 3.0, 4.0]), accumulate=True
    )
    check(t, [7.0, 0, 3.0, 0, 0])
    m = tensor(arr(3, 3, dtype=np.int64), "strided")
    out = rtorch.index_put(
        m, (rtorch.tensor([0, 0]), rtorch.tensor([1, 1])), rtorch.tensor(5), accumulate=True
    )
    expected = arr(3, 3, dtype=np.int64)
    expected[0, 1] += 10
    check(out, expected)
    check(m, arr(3, 3, dtype=np.int64))
    out = m.index_put((rtorch.tensor([2]),), rtorch.tensor(-1))
    expected = arr(3, 3, dtype=np.int64)
    expected[2] = -1
    check(out, expected)


def test_index_put_errors():
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        rtorch.zeros(3).index_put_((rtorch.tensor([3]),), rtorch.tensor(1.0))


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize("layout", LAYOUTS)
def test_masked_select_with_broadcast(layout):
    a = arr(3, 4)
    mask = np.array([True, False, True, True])
    check(rtorch.masked_select(tensor(a, layout), tensor(mask)), a[np.broadcast_to(mask, a.shape)])
    check(tensor(arr(4)).masked_select(tensor(a > 5)), np.broadcast_to(arr(4), (3, 4))[a > 5])
    check(rtorch.tensor(2.0).masked_select(rtorch.tensor(True)), [2.0])
    with pytest.raises(RuntimeError, match="masked_select: expected BoolTensor for mask"):
        tensor(a).masked_select(rtorch.ones(3, 4))


def test_masked_scatter_fills_true_positions_in_order():
    a = arr(2, 3)
    mask = np.array([[True, False, True], [False, True, False]])
    src = -arr(6) - 1
    expected = a.copy()
    expected[mask] = src[: mask.sum()]
    check(tensor(a, "strided").masked_scatter(tensor(mask), tensor(src)), expected)
    t = tensor(a)
    assert t.masked_scatter_(tensor(mask), tensor(src)) is t
    check(t, expected)
    row = np.array([False, True, True])
    expected = a.copy()
    expected[np.broadcast_to(row, a.shape)] = src[:4]
    check(tensor(a).masked_scatter(tensor(row), tensor(src)), expected)
    with pytest.raises(RuntimeError, match="Number of elements of source < number of ones in mask"):
        tensor(a).masked_scatter_(tensor(mask), rtorch.ones(1))
    with pytest.raises(
        RuntimeError,
        match="masked_scatter_ only supports boolean masks, but got mask with dtype Float",
    ):
        tensor(a).masked_scatter_(rtorch.ones(2, 3), tensor(src))


# ---------------------------------------------------------------- take


@pytest.mark.parametrize("layout", LAYOUTS)
def test_take_matches_numpy(layout):
    a = arr(3, 4, dtype=np.int32)
    idx = np.array([[0, 11], [-1, 5]])
    check(rtorch.take(tensor(a, layout), tensor(idx)), np.take(a, idx))
    with pytest.raises(
        IndexError,
        match=re.escape("out of range: tried to access index 12 on a tensor of 12 elements."),
    ):
        tensor(a).take(rtorch.tensor([12]))


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_take_along_dim_matches_numpy(dim):
    a = arr(3, 4)
    idx = np.argsort(-a, axis=dim if dim is not None else None)
    if dim is None:
        check(
            rtorch.take_along_dim(tensor(a, "strided"), tensor(idx)),
            np.take_along_axis(a.ravel(), idx, None),
        )
    else:
        check(tensor(a).take_along_dim(tensor(idx), dim=dim), np.take_along_axis(a, idx, dim))
        # The index broadcasts against the input outside `dim`.
        first = idx[:1] if dim == 1 else idx[:, :1]
        check(
            tensor(a).take_along_dim(tensor(first), dim),
            np.take_along_axis(
                a,
                np.broadcast_to(first, (3, first.shape[1]))
                if dim == 1
                else np.broadcast_to(first, (first.shape[0], 4)),
                dim,
            ),
        )


# ---------------------------------------------------------------- nonzero


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_nonzero_and_argwhere_match_numpy(layout, dtype):
    a = (np.arange(12).reshape(3, 4) % 3 == 0).astype(dtype)
    check(tensor(a, layout).nonzero(), np.argwhere(a), rtorch.int64)
    check(rtorch.argwhere(tensor(a, layout)), np.argwhere(a))
    for got, e in zip(rtorch.nonzero(tensor(a, layout), as_tuple=True), np.nonzero(a), strict=True):
        check(got, e, rtorch.int64)


def test_nonzero_of_0d_and_empty():
    check(rtorch.tensor(3).nonzero(), np.zeros((1, 0), np.int64))
    check(rtorch.tensor(0).nonzero(), np.zeros((0, 0), np.int64))
    (only,) = rtorch.tensor(3).nonzero(as_tuple=True)
    check(only, [0])
    check(rtorch.zeros(0, 3).nonzero(), np.zeros((0, 2), np.int64))
    check(rtorch.where(rtorch.tensor([0, 1, 1]))[0], [1, 2])


def test_empty_index_writes_and_reads_nothing():
    x = rtorch.ones(2, 3)
    check(x.gather(1, rtorch.empty(0, dtype=rtorch.int64)), np.zeros(0, np.float32))
    x.scatter_(1, rtorch.empty(0, dtype=rtorch.int64), 5.0)
    check(x, np.ones((2, 3), np.float32))
