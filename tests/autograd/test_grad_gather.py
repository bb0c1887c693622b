"""Derivatives of the index-driven ops (gather/scatter, index_*, masks,
take): float64 gradcheck on contiguous, non-contiguous and broadcast
inputs, gradgradcheck, and PyTorch's grad_fn names."""

import pytest

import rtorch as torch
from rtorch.autograd import gradcheck, gradgradcheck


def leaf(*shape, seed=0):
    torch.manual_seed(seed)
    return torch.randn(*shape, dtype=torch.float64).requires_grad_()


def noncontig(*shape, seed=0):
    """A transposed (non-contiguous) leaf of `shape`."""
    torch.manual_seed(seed)
    base = torch.randn(*reversed(shape), dtype=torch.float64)
    t = base.permute(*reversed(range(len(shape)))).detach().requires_grad_()
    assert not t.is_contiguous()
    return t


IDX = torch.tensor([[0, 2, 1], [1, 0, 0], [2, 2, 1], [0, 1, 2]])


def check(fn, *inputs):
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


@pytest.mark.parametrize("make", [leaf, noncontig])
def test_gather_gradients_scatter_add_repeated_indices(make):
    x = make(4, 3)
    check(lambda x: torch.gather(x, 1, IDX), x)
    out = torch.gather(x, 1, IDX)
    assert out.grad_fn.name() == "GatherBackward0"
    out.sum().backward()
    # Row 1 reads column 0 twice, so that element gets gradient 2.
    assert x.grad[1].tolist() == [2.0, 1.0, 0.0]


def test_gather_with_smaller_index_along_other_dims():
    x = leaf(5, 4)
    check(lambda x: x.gather(0, torch.tensor([[4, 0], [1, 1]])), x)


def test_take_along_dim_and_broadcast_index():
    x = leaf(3, 4)
    idx = torch.tensor([[0], [3], [1]])
    check(lambda x: torch.take_along_dim(x, idx, dim=1), x)
    check(lambda x: torch.take_along_dim(x, torch.tensor([0, 5, 5])), x)
    assert torch.take_along_dim(x, idx, dim=1).grad_fn.name() == "GatherBackward0"


@pytest.mark.parametrize("make", [leaf, noncontig])
def test_scatter_src_gradients(make):
    x, src = make(3, 5), make(2, 5, seed=1)
    idx = torch.tensor([[0, 1, 2, 0, 1], [2, 0, 0, 1, 2]])
    check(lambda x, s: x.scatter(0, idx, s), x, src)
    out = x.scatter(0, idx, src)
    assert out.grad_fn.name() == "ScatterBackward0"
    out.sum().backward()
    # Overwritten elements of x get no gradient.
    assert x.grad[0].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert src.grad.tolist() == [[1.0] * 5] * 2


def test_scatter_src_larger_than_index_gets_zero_padded_gradient():
    x, src = leaf(3, 3), leaf(3, 4, seed=1)
    idx = torch.tensor([[2], [0]])
    check(lambda x, s: torch.scatter(x, 1, idx, s), x, src)
    x.scatter(1, idx, src).sum().backward()
    assert src.grad.tolist() == [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]


def test_scatter_value_gradient_zeroes_written_positions():
    x = leaf(3, 4)
    idx = torch.tensor([[1], [3], [0]])
    check(lambda x: x.scatter(1, idx, 2.5), x)
    out = x.scatter(1, idx, value=2.5)
    assert out.grad_fn.name() == "ScatterBackward1"
    out.sum().backward()
    assert x.grad.sum().item() == 9.0


def test_scatter_add_gradients():
    x, src = leaf(3, 4), leaf(3, 4, seed=1)
    idx = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 2], [0, 1, 2, 0]])
    check(lambda x, s: x.scatter_add(0, idx, s), x, src)
    assert x.scatter_add(0, idx, src).grad_fn.name() == "ScatterAddBackward0"


def test_scatter_in_place_on_non_leaf_and_through_view():
    x, src = leaf(4, 4), leaf(1, 4, seed=1)
    idx = torch.tensor([[3, 0, 1, 2]])

    def f(x, s):
        y = x * 1.0
        y[1:].scatter_(0, idx - idx.clamp(max=2) + 1, s)
        return y

    check(f, x, src)


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin", "prod"])
def test_scatter_reduce_gradients(reduce, include_self):
    x, src = leaf(4, 3), leaf(5, 3, seed=1)
    idx = torch.tensor([[0, 1, 3], [0, 1, 1], [2, 2, 3], [0, 1, 3], [2, 0, 0]])
    fn = lambda x, s: x.scatter_reduce(0, idx, s, reduce, include_self=include_self)  # noqa: E731
    check(fn, x, src)
    assert fn(x, src).grad_fn.name() == "ScatterReduceBackward0"


def test_scatter_reduce_prod_with_zeros():
    x = torch.tensor([2.0, 0.0, 3.0], dtype=torch.float64, requires_grad=True)
    src = torch.tensor([0.0, 4.0, 5.0, 0.0, 0.0, 7.0], dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([0, 0, 1, 1, 2, 2])
    out = x.scatter_reduce(0, idx, src, "prod")
    out.backward(torch.ones(3, dtype=torch.float64))
    # Group 0: 2*0*4, one zero -> d/dsrc0 = 8; group 1: self zero and a src
    # zero -> all zero; group 2: 3*0*7 -> d/dsrc4 = 21.
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    assert src.grad.tolist() == [8.0, 0.0, 0.0, 0.0, 21.0, 0.0]


def test_scatter_reduce_amax_ties_share_gradient():
    x = torch.tensor([1.0, 5.0], dtype=torch.float64, requires_grad=True)
    src = torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    out = x.scatter_reduce(0, torch.tensor([0, 0, 1]), src, "amax")
    out.sum().backward()
    assert x.grad.tolist() == [1 / 3, 1.0]
    assert src.grad.tolist() == [1 / 3, 1 / 3, 0.0]


@pytest.mark.parametrize("make", [leaf, noncontig])
def test_index_select_gradients(make):
    x = make(4, 3)
    idx = torch.tensor([3, 0, 3])
    check(lambda x: x.index_select(0, idx), x)
    check(lambda x: torch.index_select(x, 1, torch.tensor([2, 0])), x)
    out = x.index_select(0, idx)
    assert out.grad_fn.name() == "IndexSelectBackward0"
    out.sum().backward()
    assert x.grad[:, 0].tolist() == [1.0, 0.0, 0.0, 2.0]


def test_embedding_like_lookup_accumulates_repeated_rows():
    weight = leaf(6, 3)
    ids = torch.tensor([[1, 4], [4, 4]])
    out = weight.index_select(0, ids.reshape(-1)).reshape(2, 2, 3)
    out.sum().backward()
    assert weight.grad[:, 0].tolist() == [0.0, 1.0, 0.0, 0.0, 3.0, 0.0]


@pytest.mark.parametrize("alpha", [1, -2.5])
def test_index_add_gradients(alpha):
    x, src = leaf(5, 3), noncontig(3, 3, seed=1)
    idx = torch.tensor([4, 0, 4])
    check(lambda x, s: x.index_add(0, idx, s, alpha=alpha), x, src)
    out = x.index_add(0, idx, src, alpha=alpha)
    assert out.grad_fn.name() == "IndexAddBackward0"
    out.sum().backward()
    assert src.grad.tolist() == [[float(alpha)] * 3] * 3


def test_index_copy_gradients():
    x, src = leaf(5, 2), leaf(5, 2, seed=1)[:2]
    idx = torch.tensor([3, 1])
    check(lambda x, s: x.index_copy(0, idx, s), x, src)
    out = x.index_copy(0, idx, src)
    assert out.grad_fn.name() == "IndexCopyBackward0"
    out.sum().backward()
    assert x.grad[:, 0].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]


def test_index_fill_gradients():
    x = noncontig(3, 4)
    idx = torch.tensor([0, 2])
    check(lambda x: x.index_fill(1, idx, -1.0), x)
    out = x.index_fill(1, idx, -1.0)
    assert out.grad_fn.name() == "IndexFillBackward0"
    out.sum().backward()
    assert x.grad[0].tolist() == [0.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_gradients(accumulate):
    x, v = leaf(4, 3), leaf(3, seed=1)
    # Repeated positions only with accumulate (otherwise which write wins
    # is unspecified, as in PyTorch).
    rows = torch.tensor([0, 2, 0] if accumulate else [0, 2, 3])
    cols = torch.tensor([1, 1, 1])
    fn = lambda x, v: x.index_put((rows, cols), v, accumulate=accumulate)  # noqa: E731
    check(fn, x, v)
    assert fn(x, v).grad_fn.name() == "IndexPutBackward0"


def test_masked_select_gradients_with_broadcast_mask_and_input():
    x = leaf(1, 4)
    mask = torch.tensor([[True, False, True, True], [False, False, True, False]])
    check(lambda x: x.masked_select(mask), x)
    out = torch.masked_select(x, mask)
    assert out.grad_fn.name() == "MaskedSelectBackward0"
    out.sum().backward()
    assert x.grad.tolist() == [[1.0, 0.0, 2.0, 1.0]]


def test_masked_scatter_gradients():
    x, src = noncontig(2, 3), leaf(7, seed=1)
    mask = torch.tensor([True, False, True])
    check(lambda x, s: x.masked_scatter(mask, s), x, src)
    out = x.masked_scatter(mask, src)
    assert out.grad_fn.name() == "MaskedScatterBackward0"
    out.sum().backward()
    assert src.grad.tolist() == [1.0] * 4 + [0.0] * 3
    assert x.grad.tolist() == [[0.0, 1.0, 0.0]] * 2


def test_take_gradients_accumulate_and_negative_indices():
    x = noncontig(3, 2)
    idx = torch.tensor([[0, -1], [5, 2]])
    check(lambda x: x.take(idx), x)
    out = torch.take(x, idx)
    assert out.grad_fn.name() == "TakeBackward0"
    out.sum().backward()
    assert x.grad.reshape(-1).tolist() == [1.0, 0.0, 1.0, 0.0, 0.0, 2.0]


def test_integer_index_gets_no_gradient_and_legacy_reduce_refuses():
    x = leaf(3)
    y = x.scatter(0, torch.tensor([0, 1]), torch.ones(2, dtype=torch.float64), reduce="multiply")
    with pytest.raises(NotImplementedError, match="scatter with reduce"):
        y.sum().backward()
