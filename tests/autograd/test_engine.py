"""The autograd engine: backward and grad, graph structure, errors, hooks,
retain_grad, version counters, grad modes, long chains and threads.
Gradients are checked against NumPy formulas."""

import gc
import threading

import numpy as np
import pytest

import rtorch as torch


def leaf(*vals, dtype=torch.float64):
    return torch.tensor(list(vals), dtype=dtype, requires_grad=True)


def test_backward_accumulates_into_leaves():
    x = leaf(1.0, 2.0, 3.0)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 4, 6])
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5, 7, 9])


def test_grad_returns_without_accumulating():
    x = leaf(1.0, 2.0)
    (g,) = torch.autograd.grad((x**3).sum(), x)
    np.testing.assert_allclose(g.numpy(), [3, 12])
    assert x.grad is None


def test_higher_order_gradients():
    x = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    y = x**4
    (g1,) = torch.autograd.grad(y, x, create_graph=True)
    (g2,) = torch.autograd.grad(g1, x, create_graph=True)
    (g3,) = torch.autograd.grad(g2, x)
    assert (g1.item(), g2.item(), g3.item()) == (32.0, 48.0, 48.0)


def test_shared_subexpression_sums_both_paths():
    x = leaf(1.5)
    y = x * x
    z = y + y * y
    z.backward(torch.ones(1, dtype=torch.float64))
    # dz/dx = 2x + 4x^3
    np.testing.assert_allclose(x.grad.numpy(), [2 * 1.5 + 4 * 1.5**3])


def test_broadcast_gradient_is_summed_to_input_shape():
    a = torch.ones(3, 1, dtype=torch.float64, requires_grad=True)
    b = torch.ones(4, dtype=torch.float64, requires_grad=True)
    (a * b * 2).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 1), 8.0))
    np.testing.assert_allclose(b.grad.numpy(), np.full(4, 6.0))


def test_mixed_dtype_gradient_keeps_input_dtype():
    a = torch.ones(2, dtype=torch.float32, requires_grad=True)
    b = torch.ones(2, dtype=torch.float64, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == torch.float32 and b.grad.dtype == torch.float64


def test_grad_fn_names_and_next_functions():
    x = torch.randn(2, 3, requires_grad=True)
    w = torch.randn(3, 4, requires_grad=True)
    y = (x @ w).relu().sum()
    assert type(y.grad_fn).__name__ == "SumBackward0"
    ((relu, _),) = y.grad_fn.next_functions
    assert relu.name() == "ReluBackward0"
    ((mm, _),) = relu.next_functions
    assert mm.name() == "MmBackward0"
    names = [type(f).__name__ for f, _ in mm.next_functions]
    assert names == ["AccumulateGrad", "AccumulateGrad"]
    assert mm.next_functions[0][0].variable is not None
    assert (x + 1).grad_fn.name() == "AddBackward0"
    assert x.sum(0).grad_fn.name() == "SumBackward1"
    assert x.t().grad_fn.name() == "TBackward0"
    assert x.is_leaf and not y.is_leaf
    assert "grad_fn=<SumBackward0>" in repr(y)


def test_frozen_inputs_get_no_edges():
    x = torch.randn(3, requires_grad=True)
    w = torch.randn(3)
    y = x * w
    assert y.grad_fn.next_functions[1][0] is None
    assert (w * 2).grad_fn is None
    assert not (w * 2).requires_grad


def test_implicit_grad_needs_scalar():
    x = torch.randn(3, requires_grad=True)
    with pytest.raises(
        RuntimeError, match="grad can be implicitly created only for scalar outputs"
    ):
        (x * 2).backward()


def test_backward_twice_without_retain_graph():
    x = torch.randn(3, requires_grad=True)
    y = (x.exp()).sum()
    y.backward(retain_graph=True)
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_no_grad_fn_error():
    x = torch.randn(3)
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad"):
        x.sum().backward()


def test_unused_input():
    x = torch.randn(3, requires_grad=True)
    z = torch.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        torch.autograd.grad((x * 2).sum(), [x, z])
    gx, gz = torch.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gz is None
    gx, gz = torch.autograd.grad((x * 2).sum(), [x, z], materialize_grads=True)
    assert gz.tolist() == [0.0, 0.0, 0.0]


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        torch.tensor([1, 2]).requires_grad_()


def test_requires_grad_of_non_leaf():
    y = torch.randn(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)


def test_inplace_on_leaf_raises():
    x = torch.randn(3, requires_grad=True)
    with pytest.raises(
        RuntimeError,
        match="a leaf Variable that requires grad is being used in an in-place operation.",
    ):
        x.add_(1)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable"):
        x[0:2].mul_(2)
    with torch.no_grad():
        x.add_(1)


def test_modified_saved_tensor_raises_version_error():
    x = torch.randn(3, requires_grad=True)
    y = x * 2
    z = y.exp()
    y.add_(1)  # exp saved its output, not y: still fine
    w = y * y
    y.mul_(2)
    with pytest.raises(RuntimeError, match=r"is at version 2; expected version 1 instead"):
        w.sum().backward()
    z2 = x.exp()
    z2.add_(1)
    with pytest.raises(RuntimeError, match="which is output 0 of ExpBackward0"):
        z2.sum().backward()
    del z


def test_inplace_op_with_itself_as_operand():
    # PyTorch raises a version error here; rtorch snapshots the operand.
    x = leaf(1.0, 2.0)
    y = x * 1
    y.mul_(y)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_inplace_ops_on_non_leaves_are_differentiated():
    x = leaf(1.0, 2.0, 3.0)
    y = x * 1
    y.mul_(x)  # y = x^2
    y.add_(x, alpha=3)  # y = x^2 + 3x
    y.exp_()
    y.sum().backward()
    xs = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(x.grad.numpy(), np.exp(xs**2 + 3 * xs) * (2 * xs + 3))
    assert y.grad_fn.name() == "ExpBackward0"


def test_inplace_through_a_view_reaches_the_base():
    x = leaf(1.0, 2.0, 3.0, 4.0)
    y = x.clone()
    y[1:3] *= 10
    y.view(2, 2)[1, 1] = 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1, 10, 10, 0])
    assert y.grad_fn.name() == "CopySlices"


def test_setitem_with_tensor_values_flows_to_values():
    w = leaf(5.0, 6.0)
    out = torch.zeros(4, dtype=torch.float64)
    out[torch.tensor([0, 3])] = w * 2
    out[1] = w[0]
    out.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [3.0, 2.0])


def test_tensor_hooks_replace_gradients_and_remove():
    x = leaf(1.0, 2.0)
    y = x * 3
    seen = []
    h = y.register_hook(lambda g: seen.append(g.clone()) or g * 10)
    hx = x.register_hook(lambda g: g + 1)
    y.sum().backward()
    assert seen[0].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(x.grad.numpy(), [31.0, 31.0])
    h.remove()
    hx.remove()
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_hook_exception_propagates_with_its_type():
    x = leaf(1.0)

    def bad(g):
        raise ValueError("boom from hook")

    x.register_hook(bad)
    with pytest.raises(ValueError, match="boom from hook"):
        (x * 2).sum().backward()


def test_hook_on_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        torch.zeros(2).register_hook(lambda g: g)


def test_retain_grad():
    x = leaf(1.0, 2.0)
    y = x * x
    y.retain_grad()
    z = y * 3
    z.sum().backward()
    assert y.retains_grad
    np.testing.assert_allclose(y.grad.numpy(), [3.0, 3.0])
    assert z.grad is None


def test_node_hooks():
    x = leaf(1.0, 2.0)
    y = x * 2
    calls = []
    y.grad_fn.register_prehook(lambda gout: calls.append("pre"))
    y.grad_fn.register_hook(lambda gin, gout: calls.append("post") or (gin[0] * 0, None))
    y.sum().backward()
    assert calls == ["pre", "post"]
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0])


def test_backward_inputs_restricts_accumulation():
    a = leaf(1.0)
    b = leaf(2.0)
    (a * b).sum().backward(inputs=[a])
    assert a.grad.item() == 2.0 and b.grad is None


def test_grad_of_non_leaf_input():
    x = leaf(1.0, 2.0)
    y = x * 2
    z = (y * y).sum()
    (gy,) = torch.autograd.grad(z, y)
    np.testing.assert_allclose(gy.numpy(), [4.0, 8.0])


def test_seed_gradient_shape_checked():
    x = torch.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(torch.ones(2))


def test_grad_modes():
    x = torch.randn(2, requires_grad=True)
    with torch.no_grad():
        assert not torch.is_grad_enabled()
        assert not (x * 2).requires_grad
        with torch.enable_grad():
            assert (x * 2).requires_grad
    assert torch.is_grad_enabled()
    with torch.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    torch.set_grad_enabled(False)
    assert not torch.is_grad_enabled()
    torch.set_grad_enabled(True)

    @torch.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad

    @torch.no_grad()
    def gen(t):
        yield t * 2
        yield t * 3

    assert not any(v.requires_grad for v in gen(x))


def test_grad_mode_is_thread_local():
    results = []

    def worker():
        results.append(torch.is_grad_enabled())

    with torch.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert results == [True]


def test_inference_mode():
    x = torch.randn(3, requires_grad=True)
    with torch.inference_mode():
        assert torch.is_inference_mode_enabled() and not torch.is_grad_enabled()
        y = x * 2
        assert not y.requires_grad and y.is_inference()
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        x * y

    @torch.inference_mode
    def f(t):
        return t + 1

    assert f(x).is_inference()


def test_detach_shares_storage_and_version():
    x = torch.randn(3, requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    d.zero_()
    assert y.tolist() == [0.0, 0.0, 0.0]
    assert y._version == d._version


def test_detect_anomaly_names_the_nan_node():
    x = torch.tensor([0.0], requires_grad=True)
    y = x.sqrt() * 0  # grad of sqrt at 0 is inf, times 0 gives NaN in mul's input grad path
    with torch.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match="returned nan values"):
            (x.sqrt() * 0).sum().backward()
    del y


def test_long_chain_does_not_overflow_the_stack():
    x = torch.ones(2, dtype=torch.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.00001**100_000] * 2, rtol=1e-9)
    del y
    gc.collect()


def test_concurrent_backward_on_independent_graphs():
    torch.manual_seed(0)
    ws = [torch.randn(8, 8, dtype=torch.float64, requires_grad=True) for _ in range(16)]
    expected = []
    for w in ws:
        (torch.tanh(w @ w) ** 2).sum().backward()
        expected.append(w.grad.clone())
        w.grad = None
    errors = []

    def work(w):
        try:
            for _ in range(5):
                (torch.tanh(w @ w) ** 2).sum().backward()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in ws]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for w, e in zip(ws, expected, strict=False):
        np.testing.assert_allclose(w.grad.numpy(), 5 * e.numpy(), rtol=1e-12)


def test_concurrent_backward_into_shared_leaf_is_exact():
    w = torch.ones(4, dtype=torch.float64, requires_grad=True)

    def work():
        for _ in range(50):
            (w * 2).sum().backward()

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(w.grad.numpy(), [16 * 50 * 2.0] * 4)


def test_shared_graph_without_retain_graph_fails_cleanly_in_losers():
    x = torch.randn(100, dtype=torch.float64, requires_grad=True)
    y = x.exp().sum()
    barrier = threading.Barrier(8)
    outcomes = []

    def work():
        barrier.wait()
        try:
            y.backward()
            outcomes.append("ok")
        except RuntimeError as e:
            outcomes.append("freed" if "second time" in str(e) else str(e))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") >= 1
    assert set(outcomes) <= {"ok", "freed"}
