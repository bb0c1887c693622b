"""Each optimizer against a NumPy float64 reference of PyTorch's documented algorithm, 100 steps."""

import math

import numpy as np
import pytest

import rtorch
from rtorch import optim

RNG = np.random.default_rng(0)
A = RNG.standard_normal((6, 4))
B = RNG.standard_normal(6)
W0 = RNG.standard_normal(4)


def grad_of(w):
    return 2 * A.T @ (A @ w - B)


def run_rtorch(cls, steps=100, **kw):
    w = rtorch.nn.Parameter(rtorch.tensor(W0, dtype=rtorch.float64))
    a, b = rtorch.tensor(A), rtorch.tensor(B)
    opt = cls([w], **kw)
    for _ in range(steps):
        opt.zero_grad()
        ((a @ w - b) ** 2).sum().backward()
        opt.step()
    return w.detach().numpy()


def ref_sgd(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    w, buf = W0.copy(), None
    for _ in range(100):
        g = grad_of(w) * (-1 if maximize else 1) + weight_decay * w
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        w = w - lr * g
    return w


def ref_adam(
    lr,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    maximize=False,
    decoupled=False,
):
    w, m, v, vmax = W0.copy(), np.zeros(4), np.zeros(4), np.zeros(4)
    b1, b2 = betas
    for t in range(1, 101):
        g = grad_of(w) * (-1 if maximize else 1)
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        vhat = (vmax if amsgrad else v) / (1 - b2**t)
        w = w - lr / (1 - b1**t) * m / (np.sqrt(vhat) + eps)
    return w


def ref_rmsprop(lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    w, v, gavg, buf = W0.copy(), np.zeros(4), np.zeros(4), np.zeros(4)
    for _ in range(100):
        g = grad_of(w) + weight_decay * w
        v = alpha * v + (1 - alpha) * g * g
        vt = v
        if centered:
            gavg = alpha * gavg + (1 - alpha) * g
            vt = v - gavg * gavg
        avg = np.sqrt(vt) + eps
        if momentum > 0:
            buf = momentum * buf + g / avg
            w = w - lr * buf
        else:
            w = w - lr * g / avg
    return w


def ref_adagrad(lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    w, s = W0.copy(), np.full(4, initial_accumulator_value)
    for t in range(1, 101):
        g = grad_of(w) + weight_decay * w
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        w = w - clr * g / (np.sqrt(s) + eps)
    return w


def ref_adamax(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    w, m, u = W0.copy(), np.zeros(4), np.zeros(4)
    b1, b2 = betas
    for t in range(1, 101):
        g = grad_of(w) + weight_decay * w
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        w = w - lr / (1 - b1**t) * m / u
    return w


def ref_nadam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3):
    w, m, v, prod = W0.copy(), np.zeros(4), np.zeros(4), np.float32(1.0)
    b1, b2 = betas
    for t in range(1, 101):
        g = grad_of(w) + weight_decay * w
        mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        prod = np.float32(prod * np.float32(mu))  # PyTorch keeps mu_product in float32
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        denom = np.sqrt(v / (1 - b2**t)) + eps
        w = w - lr * (1 - mu) / (1 - float(prod)) * g / denom
        w = w - lr * mu_next / (1 - float(prod) * mu_next) * m / denom
    return w


def ref_radam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    w, m, v = W0.copy(), np.zeros(4), np.zeros(4)
    b1, b2 = betas
    rho_inf = 2 / (1 - b2) - 1
    for t in range(1, 101):
        g = grad_of(w)
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho > 5:
            r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            w = w - lr * mhat * r * np.sqrt(1 - b2**t) / (np.sqrt(v) + eps)
        else:
            w = w - lr * mhat
    return w


def ref_adadelta(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    w, v, u = W0.copy(), np.zeros(4), np.zeros(4)
    for _ in range(100):
        g = grad_of(w) + weight_decay * w
        v = rho * v + (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        w = w - lr * delta
    return w


def ref_rprop(lr, etas=(0.5, 1.2), step_sizes=(1e-6, 50)):
    w, prev, step = W0.copy(), np.zeros(4), np.full(4, lr)
    for _ in range(100):
        g = grad_of(w)
        s = np.sign(g * prev)
        factor = np.where(s > 0, etas[1], np.where(s < 0, etas[0], 1.0))
        step = np.clip(step * factor, *step_sizes)
        g = np.where(factor == etas[0], 0.0, g)
        w = w - np.sign(g) * step
        prev = g
    return w


def ref_asgd(lr, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0):
    w, ax, eta, mu = W0.copy(), np.zeros(4), lr, 1.0
    for t in range(1, 101):
        g = grad_of(w) + weight_decay * w
        w = w * (1 - lambd * eta) - eta * g
        ax = ax + (w - ax) * mu if mu != 1 else w.copy()
        eta = lr / (1 + lambd * lr * t) ** alpha
        mu = 1 / max(1, t - t0)
    return w


CASES = [
    (optim.SGD, dict(lr=0.01), ref_sgd, dict(lr=0.01)),
    (
        optim.SGD,
        dict(lr=0.01, momentum=0.9, weight_decay=0.1),
        ref_sgd,
        dict(lr=0.01, momentum=0.9, weight_decay=0.1),
    ),
    (
        optim.SGD,
        dict(lr=0.01, momentum=0.5, dampening=0.3),
        ref_sgd,
        dict(lr=0.01, momentum=0.5, dampening=0.3),
    ),
    (
        optim.SGD,
        dict(lr=0.01, momentum=0.9, nesterov=True),
        ref_sgd,
        dict(lr=0.01, momentum=0.9, nesterov=True),
    ),
    (optim.SGD, dict(lr=0.001, maximize=True), ref_sgd, dict(lr=0.001, maximize=True)),
    (optim.Adam, dict(lr=0.05), ref_adam, dict(lr=0.05)),
    (
        optim.Adam,
        dict(lr=0.05, amsgrad=True, weight_decay=0.1),
        ref_adam,
        dict(lr=0.05, amsgrad=True, weight_decay=0.1),
    ),
    (
        optim.Adam,
        dict(lr=0.01, maximize=True, betas=(0.8, 0.99)),
        ref_adam,
        dict(lr=0.01, maximize=True, betas=(0.8, 0.99)),
    ),
    (optim.AdamW, dict(lr=0.05), ref_adam, dict(lr=0.05, weight_decay=1e-2, decoupled=True)),
    (
        optim.AdamW,
        dict(lr=0.05, weight_decay=0.3, amsgrad=True),
        ref_adam,
        dict(lr=0.05, weight_decay=0.3, amsgrad=True, decoupled=True),
    ),
    (optim.RMSprop, dict(lr=0.01), ref_rmsprop, dict(lr=0.01)),
    (
        optim.RMSprop,
        dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1),
        ref_rmsprop,
        dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1),
    ),
    (optim.Adagrad, dict(lr=0.1), ref_adagrad, dict(lr=0.1)),
    (
        optim.Adagrad,
        dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.5, weight_decay=0.1),
        ref_adagrad,
        dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.5, weight_decay=0.1),
    ),
    (optim.Adamax, dict(lr=0.05), ref_adamax, dict(lr=0.05)),
    (
        optim.Adamax,
        dict(lr=0.05, weight_decay=0.1, betas=(0.8, 0.9)),
        ref_adamax,
        dict(lr=0.05, weight_decay=0.1, betas=(0.8, 0.9)),
    ),
    (optim.NAdam, dict(lr=0.05), ref_nadam, dict(lr=0.05)),
    (
        optim.NAdam,
        dict(lr=0.05, weight_decay=0.1, momentum_decay=0.01),
        ref_nadam,
        dict(lr=0.05, weight_decay=0.1, momentum_decay=0.01),
    ),
    (optim.RAdam, dict(lr=0.05), ref_radam, dict(lr=0.05)),
    (
        optim.RAdam,
        dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
        ref_radam,
        dict(lr=0.05, weight_decay=0.1, decoupled=True),
    ),
    (optim.Adadelta, dict(lr=1.0), ref_adadelta, dict(lr=1.0)),
    (
        optim.Adadelta,
        dict(lr=0.5, rho=0.8, weight_decay=0.1),
        ref_adadelta,
        dict(lr=0.5, rho=0.8, weight_decay=0.1),
    ),
    (optim.Rprop, dict(lr=0.01), ref_rprop, dict(lr=0.01)),
    (
        optim.Rprop,
        dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2)),
        ref_rprop,
        dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2)),
    ),
    (optim.ASGD, dict(lr=0.01), ref_asgd, dict(lr=0.01)),
    (
        optim.ASGD,
        dict(lr=0.01, lambd=0.01, alpha=0.5, t0=50, weight_decay=0.1),
        ref_asgd,
        dict(lr=0.01, lambd=0.01, alpha=0.5, t0=50, weight_decay=0.1),
    ),
]


@pytest.mark.parametrize(
    ("cls", "kw", "ref", "ref_kw"), CASES, ids=lambda x: getattr(x, "__name__", None)
)
def test_optimizer_matches_numpy_reference_over_100_steps(cls, kw, ref, ref_kw):
    got = run_rtorch(cls, **kw)
    want = ref(**ref_kw)
    assert not np.allclose(want, W0)  # the run moved the parameters
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    ("cls", "kw", "ref", "ref_kw"), CASES, ids=lambda x: getattr(x, "__name__", None)
)
def test_optimizer_matches_pytorch_when_installed(cls, kw, ref, ref_kw):
    """rtorch's default (fused) path against PyTorch's numbers to 1e-6 after 100 steps."""
    torch = pytest.importorskip("torch")
    w = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
    a, b = torch.tensor(A), torch.tensor(B)
    opt = getattr(torch.optim, cls.__name__)([w], **kw)
    for _ in range(100):
        opt.zero_grad()
        ((a @ w - b) ** 2).sum().backward()
        opt.step()
    np.testing.assert_allclose(run_rtorch(cls, **kw), w.detach().numpy(), rtol=1e-6, atol=1e-9)


def test_param_groups_use_their_own_options():
    w1 = rtorch.nn.Parameter(rtorch.ones(2))
    w2 = rtorch.nn.Parameter(rtorch.ones(2))
    opt = optim.SGD([{"params": [w1]}, {"params": w2, "lr": 0.5}], lr=0.1)
    (w1.sum() + w2.sum()).backward()
    opt.step()
    assert w1.tolist() == pytest.approx([0.9, 0.9]) and w2.tolist() == pytest.approx([0.5, 0.5])
    assert opt.param_groups[1]["momentum"] == 0 and opt.defaults["lr"] == 0.1


def test_step_skips_parameters_without_grad_and_returns_closure_loss():
    w = rtorch.nn.Parameter(rtorch.tensor([1.0]))
    frozen = rtorch.nn.Parameter(rtorch.tensor([3.0]))
    opt = optim.Adam([w, frozen], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * 2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 2.0
    assert w.item() == pytest.approx(0.9) and frozen.item() == 3.0
    assert frozen not in opt.state and opt.state[w]["step"].item() == 1.0


def test_adam_step_state_is_a_float32_scalar_tensor():
    w = rtorch.nn.Parameter(rtorch.ones(3, dtype=rtorch.float64))
    opt = optim.Adam([w])
    w.sum().backward()
    opt.step()
    st = opt.state[w]
    assert st["step"].dtype == rtorch.float32 and st["step"].shape == ()
    assert st["exp_avg"].dtype == rtorch.float64 and math.isclose(st["exp_avg"][0].item(), 0.1)
