"""Custom ``autograd.Function``s, ``gradcheck``/``gradgradcheck`` and
``autograd.functional``."""

import numpy as np
import pytest

import rtorch as torch
from rtorch.autograd import Function
from rtorch.autograd.gradcheck import GradcheckError


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class MulConst(Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, g):
        assert ctx.needs_input_grad == (True, False)
        return g * ctx.k, None


def test_custom_function_forward_backward():
    x = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    y = Exp.apply(x)
    assert type(y.grad_fn).__name__ == "ExpBackward"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.0, 1.0]))
    z = MulConst.apply(x, 3.0)
    (g,) = torch.autograd.grad(z.sum(), x)
    assert g.tolist() == [3.0, 3.0]


def test_custom_function_is_differentiable_twice():
    x = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(Exp.apply(x).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), np.exp([0.5]))


def test_wrong_gradient_count():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g

    a = torch.ones(2, requires_grad=True)
    with pytest.raises(
        RuntimeError, match=r"returned an incorrect number of gradients \(expected 2, got 1\)"
    ):
        Bad.apply(a, a).sum().backward()


def test_saved_tensor_modified_in_place_is_detected():
    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    a = torch.ones(2, requires_grad=True)
    b = a * 1
    y = Square.apply(b)
    b.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_mark_non_differentiable_and_materialize():
    class Sorted(Function):
        @staticmethod
        def forward(ctx, x):
            v, i = x.sort()
            ctx.mark_non_differentiable(i)
            ctx.save_for_backward(i)
            ctx.set_materialize_grads(False)
            return v, i

        @staticmethod
        def backward(ctx, gv, gi):
            (i,) = ctx.saved_tensors
            out = torch.zeros_like(gv)
            out[i] = gv
            return out

    x = torch.tensor([3.0, 1.0, 2.0], requires_grad=True)
    v, i = Sorted.apply(x)
    assert v.requires_grad and not i.requires_grad
    (v * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [3.0, 1.0, 2.0]


def test_setup_context_style():
    class Cube(Function):
        @staticmethod
        def forward(x):
            return x**3

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x**2 * g

    x = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Cube.apply, (x,))


def test_non_static_forward_is_refused():
    with pytest.raises(RuntimeError, match="Legacy autograd function"):
        Exp()


def test_gradcheck_catches_a_wrong_derivative():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3

    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        torch.autograd.gradcheck(Wrong.apply, (x,))
    assert torch.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False) is False


def test_gradcheck_and_gradgradcheck_pass_on_composites():
    torch.manual_seed(0)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)

    def f(x, w):
        return torch.tanh(x @ w).sum(1).exp()

    assert torch.autograd.gradcheck(f, (x, w))
    assert torch.autograd.gradgradcheck(f, (x, w))
    # non-contiguous input
    xt = torch.randn(4, 3, dtype=torch.float64).t().requires_grad_()
    assert torch.autograd.gradcheck(f, (xt, w))


def test_functional_jacobian_hessian_vjp_jvp():
    F = torch.autograd.functional
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    J = F.jacobian(lambda t: t**2, x)
    np.testing.assert_allclose(J.numpy(), [[2.0, 0.0], [0.0, 4.0]])
    H = F.hessian(lambda t: (t**3).sum(), x)
    np.testing.assert_allclose(H.numpy(), [[6.0, 0.0], [0.0, 12.0]])
    out, v = F.vjp(lambda t: t**2, x, torch.ones(2, dtype=torch.float64))
    np.testing.assert_allclose(v.numpy(), [2.0, 4.0])
    out, jv = F.jvp(lambda t: t**2, x, torch.tensor([1.0, 0.0], dtype=torch.float64))
    np.testing.assert_allclose(jv.numpy(), [2.0, 0.0])
    out, hv = F.hvp(lambda t: (t**3).sum(), x, torch.ones(2, dtype=torch.float64))
    np.testing.assert_allclose(hv.numpy(), [6.0, 12.0])
