"""Derivative values at points where finite differences say nothing (zeros
of a product, ties, crossed bounds) or that gradcheck does not reach
(in-place ops on non-leaves), compared with PyTorch's definitions."""

import rtorch


def leaf(values):
    return rtorch.tensor(values, dtype=rtorch.float64, requires_grad=True)


def test_prod_gradient_at_a_single_zero_is_the_product_of_the_others():
    x = leaf([2.0, 0.0, 3.0])
    x.prod().backward()
    assert x.grad.tolist() == [0.0, 6.0, 0.0]


def test_prod_gradient_with_two_zeros_is_zero():
    x = leaf([[0.0, 5.0, 0.0], [1.0, 2.0, 4.0]])
    x.prod(1).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0, 0.0], [8.0, 4.0, 2.0]]


def test_cumprod_gradient_through_a_zero_is_exact():
    x = leaf([2.0, 0.0, 3.0])
    x.cumprod(0).sum().backward()
    # d/dx0 (x0 + x0 x1 + x0 x1 x2) = 1 + x1 + x1 x2; d/dx1 = x0 + x0 x2.
    assert x.grad.tolist() == [1.0, 8.0, 0.0]


def test_cumsum_gradient_sums_to_the_end():
    x = leaf([1.0, 2.0, 3.0])
    x.cumsum(0).backward(rtorch.tensor([1.0, 10.0, 100.0], dtype=rtorch.float64))
    assert x.grad.tolist() == [111.0, 110.0, 100.0]


def test_median_without_dim_shares_the_gradient_among_ties():
    x = leaf([1.0, 2.0, 2.0, 5.0])
    rtorch.median(x).backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5, 0.0]


def test_median_with_dim_picks_one_element():
    x = leaf([[3.0, 1.0, 2.0]])
    rtorch.median(x, 1).values.sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0, 1.0]]


def test_maximum_splits_the_gradient_on_ties_and_picks_the_larger():
    a, b = leaf([1.0, 2.0, 3.0]), leaf([2.0, 2.0, 1.0])
    rtorch.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.0, 0.5, 1.0]
    assert b.grad.tolist() == [1.0, 0.5, 0.0]


def test_clamp_with_tensor_bounds_routes_gradients_as_pytorch():
    x = leaf([-2.0, 0.0, 2.0, 0.5])
    lo = leaf([-1.0, -1.0, -1.0, 1.0])
    hi = leaf([1.0, 1.0, 1.0, 0.0])  # last: bounds crossed, the result is max
    rtorch.clamp(x, lo, hi).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert lo.grad.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert hi.grad.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_where_sends_the_gradient_to_the_chosen_branch_summed_to_its_shape():
    a, b = leaf([[1.0, 2.0]]), leaf([5.0])
    cond = rtorch.tensor([[True, False], [False, False]])
    rtorch.where(cond, a, b).sum().backward()
    assert a.grad.tolist() == [[1.0, 0.0]]
    assert b.grad.tolist() == [3.0]


def test_inplace_masked_fill_and_tril_on_a_non_leaf():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * 2
    y.masked_fill_(rtorch.tensor([[False, True], [False, False]]), 0.0)
    y.tril_(0)
    assert y.grad_fn.name() == "TrilBackward0"
    y.sum().backward()
    assert x.grad.tolist() == [[2.0, 0.0], [2.0, 2.0]]


def test_clamp_inplace_with_tensor_bounds_keeps_the_gradient():
    x = leaf([-2.0, 0.5, 2.0])
    y = x.clone()
    y.clamp_(rtorch.tensor([-1.0, -1.0, -1.0], dtype=rtorch.float64), 1.0)
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.0]


def test_quantile_interpolates_the_gradient_between_order_statistics():
    x = leaf([4.0, 1.0, 3.0, 2.0])
    rtorch.quantile(x, 0.5).backward()  # rank 1.5 between 2.0 and 3.0
    assert x.grad.tolist() == [0.0, 0.0, 0.5, 0.5]


def test_split_chunk_unbind_flow_to_the_input():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    a, b = rtorch.split(x, [1, 2], 1)
    (c, d) = rtorch.unbind(x, 0)
    (e, f) = rtorch.chunk(x, 2, 1)
    (a.sum() * 1 + b.sum() * 2 + c.sum() * 10 + f.sum() * 100).backward()
    assert x.grad.tolist() == [[11.0, 12.0, 112.0], [1.0, 2.0, 102.0]]


def test_registry_compositions_record_nodes():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    assert rtorch.flip(x, (0,)).grad_fn.name() == "FlipBackward0"
    assert rtorch.roll(x, 1).grad_fn.name() == "RollBackward0"
    assert x.repeat(2, 1).grad_fn.name() == "RepeatBackward0"
    assert rtorch.trace(x).grad_fn.name() == "TraceBackward0"
    assert rtorch.cummax(x, 0).values.grad_fn.name() == "CummaxBackward0"
    assert rtorch.cummax(x, 0).indices.grad_fn is None
