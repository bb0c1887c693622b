"""Joining, splitting, reordering, repeating and contraction ops against NumPy,
on contiguous and strided inputs, with PyTorch's errors."""

import itertools
import re

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import rtorch

NP_DTYPES = {
    rtorch.float32: np.float32,
    rtorch.float64: np.float64,
    rtorch.int64: np.int64,
    rtorch.int32: np.int32,
    rtorch.uint8: np.uint8,
    rtorch.bool: np.bool_,
}


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
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, expected)


LAYOUTS = ["contiguous", "strided"]


def arr(*shape, dtype=np.float32):
    return np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape).astype(dtype)


# ---------------------------------------------------------------- cat / stack


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_matches_numpy_concatenate(layout, dim):
    a, b = arr(3, 4), arr(3, 4) + 100
    check(rtorch.cat([tensor(a, layout), tensor(b)], dim), np.concatenate([a, b], dim))


def test_cat_promotes_dtypes_across_inputs():
    out = rtorch.cat([rtorch.tensor([1, 2]), rtorch.tensor([0.5]), rtorch.tensor([True])])
    check(out, [1.0, 2.0, 0.5, 1.0], rtorch.float32)
    assert (
        rtorch.cat(
            [rtorch.tensor([1], dtype=rtorch.uint8), rtorch.tensor([-1], dtype=rtorch.int8)]
        ).dtype
        is rtorch.int16
    )


def test_cat_aliases_and_out():
    a, b = arr(2, 2), arr(2, 3)
    check(rtorch.concat([tensor(a), tensor(b)], dim=1), np.concatenate([a, b], 1))
    check(rtorch.concatenate([tensor(a), tensor(b)], axis=1), np.concatenate([a, b], 1))
    out = rtorch.empty(2, 5)
    assert rtorch.cat([tensor(a), tensor(b)], 1, out=out) is out
    check(out, np.concatenate([a, b], 1))


def test_cat_skips_legacy_empty_1d_and_keeps_empty_dims():
    check(rtorch.cat([rtorch.empty(0), tensor(arr(2, 3))]), arr(2, 3))
    check(rtorch.cat([tensor(arr(0, 3)), tensor(arr(2, 3))]), arr(2, 3))
    check(rtorch.cat([rtorch.empty(0), rtorch.empty(0)]), np.zeros(0, np.float32))


def test_cat_of_int_and_bool_tensors():
    check(rtorch.cat([rtorch.tensor([True]), rtorch.tensor([False])]), [True, False], rtorch.bool)
    check(
        rtorch.cat([tensor(arr(2, 2, dtype=np.int32), "strided")] * 2, 1),
        np.concatenate([arr(2, 2, dtype=np.int32)] * 2, 1),
    )


def test_cat_errors_follow_pytorch():
    with pytest.raises(
        RuntimeError, match=re.escape("torch.cat(): expected a non-empty list of Tensors")
    ):
        rtorch.cat([])
    msg = "Sizes of tensors must match except in dimension 1. Expected size 3 but got size 4 for tensor number 1 in the list."
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        rtorch.cat([rtorch.ones(3, 2), rtorch.ones(4, 2)], 1)
    with pytest.raises(
        RuntimeError, match="zero-dimensional tensor \\(at position 0\\) cannot be concatenated"
    ):
        rtorch.cat([rtorch.tensor(1.0)])
    with pytest.raises(
        RuntimeError, match="Tensors must have same number of dimensions: got 2 and 1"
    ):
        rtorch.cat([rtorch.ones(2, 2), rtorch.ones(2)])
    with pytest.raises(IndexError, match="Dimension out of range"):
        rtorch.cat([rtorch.ones(2, 2)], 2)
    with pytest.raises(TypeError, match="expected Tensor as element 1"):
        rtorch.cat([rtorch.ones(2), 3])


def test_cat_of_ten_large_tensors_is_exact():
    parts = [
        np.random.default_rng(i).standard_normal(100_000).astype(np.float32) for i in range(10)
    ]
    check(rtorch.cat([tensor(p) for p in parts]), np.concatenate(parts))
    m = [p.reshape(1000, 100) for p in parts]
    check(rtorch.cat([tensor(x, "strided") for x in m], 1), np.concatenate(m, 1))


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack_matches_numpy(dim):
    a, b = arr(2, 3), arr(2, 3) * 2
    check(rtorch.stack([tensor(a, "strided"), tensor(b)], dim), np.stack([a, b], dim))


def test_stack_of_0d_and_errors():
    check(rtorch.stack([rtorch.tensor(1), rtorch.tensor(2)]), [1, 2], rtorch.int64)
    with pytest.raises(RuntimeError, match="stack expects a non-empty TensorList"):
        rtorch.stack([])
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "stack expects each tensor to be equal size, but got [2] at entry 0 and [3] at entry 1"
        ),
    ):
        rtorch.stack([rtorch.ones(2), rtorch.ones(3)])


@pytest.mark.parametrize(
    "shapes", [[(3,), (2,)], [(2, 3), (2, 1)], [(), ()], [(2, 2, 2), (2, 1, 2)]]
)
def test_hstack_matches_numpy(shapes):
    xs = [arr(*s) for s in shapes]
    check(rtorch.hstack([tensor(x) for x in xs]), np.hstack(xs))


@pytest.mark.parametrize("shapes", [[(3,), (3,)], [(2, 3), (1, 3)], [(), ()]])
def test_vstack_and_dstack_match_numpy(shapes):
    xs = [arr(*s) for s in shapes]
    check(rtorch.vstack([tensor(x) for x in xs]), np.vstack(xs))
    check(rtorch.row_stack([tensor(x) for x in xs]), np.vstack(xs))
    if len({len(s) for s in shapes}) == 1 and shapes[0] != (2, 3):
        check(rtorch.dstack([tensor(x) for x in xs]), np.dstack(xs))


def test_atleast_nd_match_numpy():
    for n, f in [(1, np.atleast_1d), (2, np.atleast_2d), (3, np.atleast_3d)]:
        for shape in [(), (3,), (2, 3)]:
            check(getattr(rtorch, f"atleast_{n}d")(tensor(arr(*shape))), f(arr(*shape)))


# ---------------------------------------------------------------- split


@pytest.mark.parametrize("layout", LAYOUTS)
def test_split_by_size_and_sections(layout):
    a = arr(5, 4)
    parts = tensor(a, layout).split(2)
    assert [tuple(p.shape) for p in parts] == [(2, 4), (2, 4), (1, 4)]
    for p, e in zip(parts, np.split(a, [2, 4]), strict=True):
        check(p, e)
    parts = rtorch.split(tensor(a, layout), [1, 3], dim=1)
    for p, e in zip(parts, np.split(a, [1], 1), strict=True):
        check(p, e)


def test_split_shares_storage_with_input():
    t = rtorch.zeros(4)
    t.split(2)[1][0] = 7
    assert t.tolist() == [0, 0, 7, 0]


def test_split_errors():
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "split_with_sizes expects split_sizes to sum exactly to 5 (input tensor's size at dimension 0), but got split_sizes=[2, 2]"
        ),
    ):
        rtorch.ones(5).split([2, 2])
    with pytest.raises(
        RuntimeError, match="split expects split_size be non-negative, but got split_size=-1"
    ):
        rtorch.ones(5).split(-1)


@pytest.mark.parametrize("n,chunks", [(6, 3), (5, 3), (7, 4), (2, 5), (0, 2)])
def test_chunk_matches_pytorch_rules(n, chunks):
    a = arr(n)
    parts = tensor(a).chunk(chunks)
    size = -(-n // chunks) if n else 0
    # An empty dim splits into `chunks` empty pieces, as in PyTorch.
    expected = [a[i : i + size] for i in range(0, n, size)] if size else [a] * chunks
    assert len(parts) == len(expected)
    for p, e in zip(parts, expected, strict=True):
        check(p, e)
    with pytest.raises(RuntimeError, match="chunk expects `chunks` to be greater than 0, got: 0"):
        tensor(a).chunk(0)


@pytest.mark.parametrize("arg", [3, [1, 4], (2, 2, 5), rtorch.tensor([1, 3]), rtorch.tensor(2)])
def test_tensor_split_matches_numpy_array_split(arg):
    a = arr(7, 2)
    np_arg = arg.tolist() if isinstance(arg, rtorch.Tensor) else arg
    parts = rtorch.tensor_split(tensor(a, "strided"), arg)
    expected = np.array_split(a, np_arg)
    assert len(parts) == len(expected)
    for p, e in zip(parts, expected, strict=True):
        check(p, e)
    with pytest.raises(RuntimeError, match="number of sections must be larger than 0, got 0"):
        tensor(a).tensor_split(0)


def test_unbind_and_movedim():
    a = arr(2, 3, 4)
    for i, p in enumerate(tensor(a, "strided").unbind(1)):
        check(p, a[:, i])
    check(rtorch.movedim(tensor(a), 0, -1), np.moveaxis(a, 0, -1))
    check(tensor(a).moveaxis((0, 1), (2, 0)), np.moveaxis(a, (0, 1), (2, 0)))
    with pytest.raises(RuntimeError, match=re.escape("movedim: repeated dim in `source` ([0, 0])")):
        tensor(a).movedim((0, 0), (1, 2))


# ---------------------------------------------------------------- flip / roll / rot90


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dims", [(0,), (1,), (0, 2), (-1, 0, 1)])
def test_flip_matches_numpy(layout, dims):
    a = arr(2, 3, 4)
    check(tensor(a, layout).flip(dims), np.flip(a, dims))
    check(rtorch.flip(tensor(a, layout), dims=list(dims)), np.flip(a, dims))


def test_flip_lr_ud_int_bool_empty():
    a = arr(3, 4, dtype=np.int32)
    check(tensor(a).fliplr(), np.fliplr(a))
    check(rtorch.flipud(tensor(a, "strided")), np.flipud(a))
    check(rtorch.tensor([True, False]).flip(0), [False, True])
    check(rtorch.empty(0, 3).flip(0), np.zeros((0, 3), np.float32))
    check(rtorch.tensor(3).flip(()), 3)
    with pytest.raises(RuntimeError, match="Input must be >= 2-d."):
        rtorch.ones(3).fliplr()
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times in the list of dims"):
        rtorch.ones(3).flip([0, 0])
    with pytest.raises(TypeError, match='missing 1 required positional arguments: "dims"'):
        rtorch.ones(3).flip()


def test_flip_large_is_parallel_safe():
    a = np.random.default_rng(0).standard_normal((600, 700)).astype(np.float32)
    check(tensor(a).flip(0, 1), a[::-1, ::-1])


@pytest.mark.parametrize("shifts,dims", [(1, None), (-3, None), (2, 0), ((1, -2), (0, 1)), (7, 1)])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_roll_matches_numpy(shifts, dims, layout):
    a = arr(3, 4)
    check(rtorch.roll(tensor(a, layout), shifts, dims), np.roll(a, shifts, dims))


def test_roll_errors_and_empty():
    check(rtorch.empty(0).roll(1), np.zeros(0, np.float32))
    with pytest.raises(RuntimeError, match="shifts and dimensions must align. shifts: 2, dims:1"):
        rtorch.ones(2, 2).roll((1, 1), 0)


@pytest.mark.parametrize("k", [-1, 0, 1, 2, 3, 5])
@pytest.mark.parametrize("dims", [(0, 1), (1, 0), (1, 2)])
def test_rot90_matches_numpy(k, dims):
    a = arr(2, 3, 4)
    check(tensor(a, "strided").rot90(k, dims), np.rot90(a, k, dims))


def test_rot90_errors():
    with pytest.raises(RuntimeError, match="expected total rotation dims == 2, but got dims = 1"):
        rtorch.ones(2, 2).rot90(1, [0])
    with pytest.raises(RuntimeError, match="expected total dims >= 2, but got total dims = 1"):
        rtorch.ones(2).rot90()
    with pytest.raises(RuntimeError, match="expected rotation dims to be different"):
        rtorch.ones(2, 2).rot90(1, [0, 0])


# ---------------------------------------------------------------- repeat / tile


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("reps", [(2, 3), (1, 1), (2, 1, 2), (3, 0)])
def test_repeat_matches_numpy_tile(layout, reps):
    a = arr(2, 3, dtype=np.int64)
    check(tensor(a, layout).repeat(*reps), np.tile(a, reps))
    check(tensor(a, layout).repeat(reps), np.tile(a, reps))


def test_repeat_of_0d_bool_and_errors():
    check(rtorch.tensor(True).repeat(3), [True] * 3)
    with pytest.raises(
        RuntimeError,
        match="Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor",
    ):
        rtorch.ones(2, 2).repeat(2)
    with pytest.raises(RuntimeError, match="Trying to create tensor with negative dimension"):
        rtorch.ones(2).repeat(-1)


@pytest.mark.parametrize("reps", [(2,), (2, 2), (1, 2, 3)])
def test_tile_matches_numpy(reps):
    a = arr(2, 3)
    check(rtorch.tile(tensor(a, "strided"), reps), np.tile(a, reps))


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_repeat_interleave_int_matches_numpy_repeat(dim):
    a = arr(2, 3)
    check(tensor(a, "strided").repeat_interleave(2, dim=dim), np.repeat(a, 2, axis=dim))


def test_repeat_interleave_tensor_repeats():
    a = arr(3, 2)
    reps = rtorch.tensor([1, 0, 2])
    check(rtorch.repeat_interleave(tensor(a), reps, dim=0), np.repeat(a, [1, 0, 2], axis=0))
    check(rtorch.repeat_interleave(rtorch.tensor([2, 1])), [0, 0, 1])
    check(rtorch.tensor([1, 2]).repeat_interleave(rtorch.tensor(3)), [1, 1, 1, 2, 2, 2])
    with pytest.raises(RuntimeError, match="repeats must have the same size as input along dim"):
        tensor(a).repeat_interleave(rtorch.tensor([1, 2]), dim=0)
    with pytest.raises(RuntimeError, match="repeats can not be negative"):
        tensor(a).repeat_interleave(-1)


def test_broadcast_to_and_broadcast_tensors():
    a = arr(3, 1)
    check(rtorch.broadcast_to(tensor(a), (2, 3, 4)), np.broadcast_to(a, (2, 3, 4)))
    check(tensor(a).broadcast_to(-1, 5), np.broadcast_to(a, (3, 5)))
    x, y = rtorch.broadcast_tensors(tensor(a), rtorch.ones(4))
    assert tuple(x.shape) == tuple(y.shape) == (3, 4)
    check(x, np.broadcast_to(a, (3, 4)))
    with pytest.raises(
        RuntimeError, match="The size of tensor a \\(3\\) must match the size of tensor b \\(4\\)"
    ):
        rtorch.broadcast_tensors(rtorch.ones(3), rtorch.ones(4))


# ---------------------------------------------------------------- triangles / diagonals


@pytest.mark.parametrize("k", [-2, -1, 0, 1, 3])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_tril_triu_match_numpy(k, layout):
    a = arr(2, 3, 4)
    check(tensor(a, layout).tril(k), np.tril(a, k))
    check(rtorch.triu(tensor(a, layout), k), np.triu(a, k))


def test_tril_triu_in_place_int_bool_and_errors():
    t = tensor(arr(3, 3, dtype=np.int64))
    assert t.tril_(-1) is t
    check(t, np.tril(arr(3, 3, dtype=np.int64), -1))
    t = rtorch.ones(3, 3, dtype=rtorch.bool).triu_()
    check(t, np.triu(np.ones((3, 3), bool)))
    with pytest.raises(RuntimeError, match="tril: input tensor must have at least 2 dimensions"):
        rtorch.ones(3).tril()


@pytest.mark.parametrize("k", [-1, 0, 2])
def test_diag_matches_numpy(k):
    v, m = arr(3), arr(3, 4)
    check(rtorch.diag(tensor(v, "strided"), k), np.diag(v, k))
    check(tensor(m, "strided").diag(k), np.diag(m, k))
    with pytest.raises(RuntimeError, match="diag\\(\\): Supports 1D or 2D tensors. Got 3D"):
        rtorch.ones(2, 2, 2).diag()


def test_diag_embed_matches_manual_construction():
    a = arr(2, 3)
    out = rtorch.diag_embed(tensor(a, "strided"))
    check(out, np.stack([np.diag(r) for r in a]))
    out = tensor(a).diag_embed(offset=1, dim1=0, dim2=2)
    expected = np.zeros((4, 2, 4), np.float32)
    for b in range(2):
        for i in range(3):
            expected[i, b, i + 1] = a[b, i]
    check(out, expected)


def test_trace_dtypes_and_errors():
    check(tensor(arr(3, 4), "strided").trace(), np.trace(arr(3, 4)), rtorch.float32)
    check(rtorch.trace(rtorch.tensor([[1, 2], [3, 4]], dtype=rtorch.int32)), 5, rtorch.int64)
    with pytest.raises(RuntimeError, match="trace: expected a matrix, but got tensor with dim 1"):
        rtorch.ones(3).trace()


# ---------------------------------------------------------------- grids


@pytest.mark.parametrize("indexing", ["ij", "xy"])
def test_meshgrid_matches_numpy(indexing):
    x, y, z = arr(2), arr(3), arr(4)
    got = rtorch.meshgrid(tensor(x), tensor(y, "strided"), tensor(z), indexing=indexing)
    for g, e in zip(got, np.meshgrid(x, y, z, indexing=indexing), strict=True):
        check(g, e)
    got = rtorch.meshgrid([tensor(x), tensor(y)], indexing=indexing)
    for g, e in zip(got, np.meshgrid(x, y, indexing=indexing), strict=True):
        check(g, e)


def test_meshgrid_errors():
    with pytest.raises(RuntimeError, match="indexing must be one of"):
        rtorch.meshgrid(rtorch.ones(2), indexing="ab")
    with pytest.raises(RuntimeError, match="expects all tensors to have the same dtype"):
        rtorch.meshgrid(rtorch.ones(2), rtorch.tensor([1]))


def test_cartesian_prod_matches_itertools():
    a, b = [1, 2, 3], [4, 5]
    check(rtorch.cartesian_prod(rtorch.tensor(a), rtorch.tensor(b)), list(itertools.product(a, b)))
    check(rtorch.cartesian_prod(rtorch.tensor(a)), a)


@pytest.mark.parametrize("r", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("with_replacement", [False, True])
def test_combinations_match_itertools(r, with_replacement):
    vals = [3, 1, 4, 1]
    f = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    expected = np.array(list(f(vals, r)), dtype=np.int64)
    got = rtorch.combinations(rtorch.tensor(vals), r, with_replacement=with_replacement)
    if r == 0:
        assert tuple(got.shape) == (0,)
        return
    check(got, expected.reshape(-1, r))


# ---------------------------------------------------------------- contractions


@pytest.mark.parametrize(
    "eq,shapes",
    [
        ("ij,jk->ik", [(2, 3), (3, 4)]),
        ("ij,jk", [(2, 3), (3, 4)]),
        ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
        ("ii->i", [(3, 3)]),
        ("ii", [(3, 3)]),
        ("ij->", [(2, 3)]),
        ("ij->ji", [(2, 3)]),
        ("i,j->ij", [(2,), (3,)]),
        ("i,i->", [(4,), (4,)]),
        ("...ij,...jk->...ik", [(2, 2, 3), (2, 3, 4)]),
        ("...ij,jk", [(5, 2, 3), (3, 4)]),
        ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
        ("iij->j", [(3, 3, 2)]),
        ("ij,ij,ij->i", [(2, 3), (2, 3), (2, 3)]),
        ("Ab,bA->A", [(2, 3), (3, 2)]),
        ("ij,kl->ijkl", [(1, 2), (2, 1)]),
        ("i...->...", [(2, 3, 4)]),
        ("bi,i->b", [(3, 1), (4,)]),
    ],
)
def test_einsum_matches_numpy(eq, shapes):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(np.float64) for s in shapes]
    ts = [tensor(x, "strided" if i % 2 else "contiguous") for i, x in enumerate(xs)]
    if eq == "bi,i->b":
        # PyTorch broadcasts size-1 dims; NumPy does too for explicit output.
        expected = np.einsum(eq, np.broadcast_to(xs[0], (3, 4)), xs[1])
    else:
        expected = np.einsum(eq, *xs)
    check(rtorch.einsum(eq, *ts), expected)
    check(rtorch.einsum(eq, ts), expected)


def test_einsum_int_and_float32():
    a = arr(2, 3, dtype=np.int64)
    check(
        rtorch.einsum("ij,kj->ik", tensor(a), tensor(a)), np.einsum("ij,kj->ik", a, a), rtorch.int64
    )
    f = arr(3, 3)
    check(rtorch.einsum("ij,jk", tensor(f), tensor(f)), f @ f, rtorch.float32)


def test_mixed_dtypes_contract_only_where_pytorch_does():
    f, d = rtorch.ones(2, 2), rtorch.ones(2, 2, dtype=rtorch.float64)
    i = rtorch.ones(2, 2, dtype=rtorch.int64)
    # A summed label goes through bmm, which wants one dtype...
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):
        rtorch.einsum("ij,jk->ik", f, d)
    with pytest.raises(RuntimeError, match="expected scalar type Long but found Float"):
        rtorch.einsum("ij,jk->ik", i, f)
    with pytest.raises(RuntimeError, match="both inputs should have same dtype"):
        rtorch.tensordot(f, d, 1)
    # ...elementwise products and inner promote.
    assert rtorch.einsum("ij,ij->ij", f, d).dtype == rtorch.float64
    assert rtorch.einsum("i,j->ij", f[0], d[0]).dtype == rtorch.float64
    check(rtorch.inner(f, d), np.full((2, 2), 2.0), rtorch.float64)


def test_einsum_errors():
    with pytest.raises(
        RuntimeError,
        match="einsum\\(\\): more operands were provided than specified in the equation",
    ):
        rtorch.einsum("i", rtorch.ones(2), rtorch.ones(2))
    with pytest.raises(
        RuntimeError,
        match="einsum\\(\\): fewer operands were provided than specified in the equation",
    ):
        rtorch.einsum("i,j", rtorch.ones(2))
    msg = "the number of subscripts in the equation (1) does not match the number of dimensions (2) for operand 0 and no ellipsis was given"
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        rtorch.einsum("i", rtorch.ones(2, 2))
    with pytest.raises(
        RuntimeError,
        match="subscript j has size 3 for operand 1 which does not broadcast with previously seen size 2",
    ):
        rtorch.einsum("ij,jk", rtorch.ones(2, 2), rtorch.ones(3, 2))
    with pytest.raises(RuntimeError, match="output subscript k does not appear"):
        rtorch.einsum("ij->k", rtorch.ones(2, 2))
    with pytest.raises(RuntimeError, match="invalid subscript given at index 0"):
        rtorch.einsum("1", rtorch.ones(2))


@pytest.mark.parametrize("dims", [2, 1, 0, ([2, 1], [1, 0]), ([2], [1])])
def test_tensordot_matches_numpy(dims):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 4, 2)), rng.standard_normal((4, 2, 5))
    if dims == ([2], [1]):
        check(
            rtorch.tensordot(tensor(a), tensor(b, "strided"), dims),
            np.tensordot(a, b, (dims[0], dims[1])),
        )
        return
    if isinstance(dims, int):
        b2 = b if dims != 1 else rng.standard_normal((2, 5))
        check(
            rtorch.tensordot(tensor(a), tensor(b2, "strided"), dims=dims), np.tensordot(a, b2, dims)
        )
    else:
        check(rtorch.tensordot(tensor(a), tensor(b), dims), np.tensordot(a, b, dims))


def test_tensordot_errors():
    with pytest.raises(
        RuntimeError,
        match="contracted dimensions need to match, but first has size 3 in dim 0 and second has size 4 in dim 0",
    ):
        rtorch.tensordot(rtorch.ones(3), rtorch.ones(4), 1)


def test_outer_ger_inner_match_numpy():
    a, b = arr(3), arr(4, dtype=np.int64)
    check(rtorch.outer(tensor(a), tensor(b, "strided")), np.outer(a, b), rtorch.float32)
    check(tensor(b).ger(tensor(b)), np.outer(b, b), rtorch.int64)
    m, n = arr(2, 3), arr(4, 3)
    check(rtorch.inner(tensor(m, "strided"), tensor(n)), np.inner(m, n))
    check(rtorch.inner(rtorch.tensor(2.0), tensor(m)), 2 * m)
    with pytest.raises(RuntimeError, match="outer: Expected 1-D argument self, but got 2-D"):
        rtorch.outer(rtorch.ones(2, 2), rtorch.ones(2))
    with pytest.raises(RuntimeError, match="inner\\(\\) the last dimension must match"):
        rtorch.inner(rtorch.ones(2, 3), rtorch.ones(2))


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_cross_matches_numpy(dim):
    rng = np.random.default_rng(2)
    if dim in (None, 1, -1):
        a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
        axis = -1
    else:
        a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
        axis = 0
    check(rtorch.cross(tensor(a, "strided"), tensor(b), dim=dim), np.cross(a, b, axis=axis))
    with pytest.raises(
        RuntimeError, match="linalg.cross: inputs dimension 0 must have length 3. Got 2 and 2"
    ):
        rtorch.cross(rtorch.ones(2, 3), rtorch.ones(2, 3), dim=0)


@pytest.mark.parametrize(
    "sa,sb", [((2, 3), (3, 2)), ((2,), (3,)), ((2, 2), (3,)), ((1, 2, 1), (2, 2))]
)
def test_kron_matches_numpy(sa, sb):
    a, b = arr(*sa) + 1, arr(*sb, dtype=np.int64) + 1
    check(rtorch.kron(tensor(a, "strided"), tensor(b)), np.kron(a, b))


def np_cdist(x, y, p):
    d = np.abs(x[..., :, None, :] - y[..., None, :, :])
    if p == 0:
        return (d != 0).sum(-1).astype(x.dtype)
    if np.isinf(p):
        return d.max(-1)
    return (d**p).sum(-1) ** (1 / p)


@pytest.mark.parametrize("p", [0.0, 1.0, 2.0, 3.0, float("inf")])
def test_cdist_matches_numpy(p):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    check(rtorch.cdist(tensor(x, "strided"), tensor(y), p=p), np_cdist(x, y, p), rtorch.float64)
    xb = np.stack([x, x + 1]).astype(np.float32)
    y32 = y.astype(np.float32)
    check(rtorch.cdist(tensor(xb), tensor(y32), p), np_cdist(xb, y32, p), rtorch.float32)


def test_cdist_errors():
    with pytest.raises(
        RuntimeError, match="cdist only supports floating-point dtypes, X1 got: Long"
    ):
        rtorch.cdist(rtorch.ones(2, 2, dtype=rtorch.int64), rtorch.ones(2, 2))
    with pytest.raises(
        RuntimeError, match="X1 and X2 must have the same number of columns. X1: 3 X2: 4"
    ):
        rtorch.cdist(rtorch.ones(2, 3), rtorch.ones(2, 4))
    with pytest.raises(RuntimeError, match="cdist only supports at least 2D tensors, X1 got: 1D"):
        rtorch.cdist(rtorch.ones(3), rtorch.ones(2, 3))


# ---------------------------------------------------------------- properties


small_arrays = hnp.arrays(
    np.int32,
    hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4),
    elements=st.integers(-9, 9),
)


@given(small_arrays, st.data())
def test_property_split_then_cat_is_identity(a, data):
    dim = data.draw(st.integers(0, a.ndim - 1))
    size = data.draw(st.integers(1, 5))
    t = tensor(a, data.draw(st.sampled_from(LAYOUTS)))
    check(rtorch.cat(t.split(size, dim), dim), a)


@given(small_arrays, st.data())
def test_property_flip_roll_repeat_match_numpy(a, data):
    layout = data.draw(st.sampled_from(LAYOUTS))
    dims = data.draw(st.lists(st.integers(0, a.ndim - 1), unique=True, max_size=a.ndim))
    check(tensor(a, layout).flip(dims), np.flip(a, dims) if dims else a)
    shift = data.draw(st.integers(-7, 7))
    dim = data.draw(st.integers(0, a.ndim - 1))
    check(tensor(a, layout).roll(shift, dim), np.roll(a, shift, dim))
    check(tensor(a, layout).roll(shift), np.roll(a, shift))
    reps = data.draw(st.lists(st.integers(0, 3), min_size=a.ndim, max_size=a.ndim + 1))
    check(tensor(a, layout).repeat(*reps), np.tile(a, reps))


@given(small_arrays, st.data())
def test_property_gather_matches_take_along_axis(a, data):
    dim = data.draw(st.integers(0, a.ndim - 1))
    assume(a.shape[dim] > 0)
    idx = data.draw(hnp.arrays(np.int64, a.shape, elements=st.integers(0, a.shape[dim] - 1)))
    check(tensor(a, "strided").gather(dim, tensor(idx)), np.take_along_axis(a, idx, dim))


def test_tril_triu_with_extreme_diagonals():
    a = arr(3, 4)
    big = 2**62
    check(tensor(a).tril(big), a)
    check(tensor(a).tril(-big), np.zeros_like(a))
    check(tensor(a).triu(-big), a)
    check(tensor(a).triu(big), np.zeros_like(a))


def test_combinations_count_and_empty_input():
    check(
        rtorch.combinations(rtorch.arange(30), 3),
        np.array(list(itertools.combinations(range(30), 3))),
    )
    assert tuple(rtorch.combinations(rtorch.tensor([], dtype=rtorch.int64), 2).shape) == (0, 2)
