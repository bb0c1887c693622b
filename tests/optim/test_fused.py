"""The fused multi-tensor Rust kernels against the per-tensor reference path.

Every optimizer with a fused kernel runs 100 steps twice from the same start,
once with ``foreach=None`` (the fused kernel) and once with ``foreach=False``
(``_single_tensor_<name>``), over parameters of several shapes (one larger
than a kernel chunk) where one parameter skips some steps, so per-parameter
step counts differ. In float64 the two agree to rounding.
"""

import io
import math

import numpy as np
import pytest

import rtorch
from rtorch import optim

SHAPES = [(3, 4), (5,), (), (40_000,), (2, 3, 2)]


def make_params(dtype=rtorch.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [rtorch.nn.Parameter(rtorch.tensor(rng.standard_normal(s), dtype=dtype)) for s in SHAPES]


def set_grads(params, step):
    with rtorch.no_grad():
        for i, p in enumerate(params):
            if i == 1 and step % 3 == 2:
                p.grad = None  # skipped this step: its step count falls behind
                continue
            p.grad = p * 0.5 + rtorch.sin(p * 3.0 + step * 0.1) * (1.0 + 0.1 * i)


def run(cls, kw, foreach, steps=100, dtype=rtorch.float64):
    params = make_params(dtype)
    opt = cls(params, foreach=foreach, **kw)
    for step in range(steps):
        set_grads(params, step)
        opt.step()
    return [p.detach().numpy() for p in params], opt


CASES = [
    (optim.SGD, dict(lr=0.01)),
    (optim.SGD, dict(lr=0.01, weight_decay=0.1, maximize=True)),
    (optim.SGD, dict(lr=0.01, momentum=0.9)),
    (optim.SGD, dict(lr=0.01, momentum=0.5, dampening=0.3, weight_decay=0.05)),
    (optim.SGD, dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (optim.Adam, dict(lr=0.01)),
    (optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    (optim.Adam, dict(lr=0.01, maximize=True, betas=(0.3, 0.99))),
    (optim.Adam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    (optim.AdamW, dict(lr=0.01)),
    (optim.AdamW, dict(lr=0.01, amsgrad=True, weight_decay=0.3, maximize=True)),
    (optim.Adagrad, dict(lr=0.05)),
    (
        optim.Adagrad,
        dict(lr=0.05, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.2),
    ),
    (optim.Adagrad, dict(lr=0.05, maximize=True)),
    (optim.RMSprop, dict(lr=0.01)),
    (optim.RMSprop, dict(lr=0.01, centered=True)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.5, weight_decay=0.1)),
    (optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.5, maximize=True, alpha=0.9)),
    (optim.Adamax, dict(lr=0.01)),
    (optim.Adamax, dict(lr=0.01, weight_decay=0.1, maximize=True, betas=(0.2, 0.9))),
    (optim.NAdam, dict(lr=0.01)),
    (optim.NAdam, dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01)),
    (optim.NAdam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    (optim.RAdam, dict(lr=0.01)),
    (optim.RAdam, dict(lr=0.01, weight_decay=0.1)),
    (optim.RAdam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    (optim.Adadelta, dict(lr=1.0)),
    (optim.Adadelta, dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)),
]


def case_id(case):
    cls, kw = case
    return cls.__name__ + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize(("cls", "kw"), CASES, ids=[case_id(c) for c in CASES])
def test_fused_matches_per_tensor_reference_float64(cls, kw):
    fused, opt_f = run(cls, kw, foreach=None)
    ref, opt_r = run(cls, kw, foreach=False)
    start = [p.detach().numpy() for p in make_params()]
    assert not np.allclose(fused[0], start[0])  # the run moved the parameters
    for got, want in zip(fused, ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    # The state (moments, step counters) agrees too, key for key.
    groups = (opt_f.param_groups[0]["params"], opt_r.param_groups[0]["params"])
    for p_f, p_r in zip(*groups, strict=True):
        st_f, st_r = opt_f.state[p_f], opt_r.state[p_r]
        assert st_f.keys() == st_r.keys()
        for k in st_f:
            np.testing.assert_allclose(
                np.asarray(st_f[k].numpy()), np.asarray(st_r[k].numpy()), rtol=1e-12, atol=1e-13
            )
            assert st_f[k].dtype == st_r[k].dtype


@pytest.mark.parametrize(("cls", "kw"), CASES[::3], ids=[case_id(c) for c in CASES[::3]])
def test_fused_matches_per_tensor_reference_float32(cls, kw):
    fused, _ = run(cls, kw, foreach=None, steps=30, dtype=rtorch.float32)
    ref, _ = run(cls, kw, foreach=False, steps=30, dtype=rtorch.float32)
    for got, want in zip(fused, ref, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


def test_default_takes_the_fused_kernel_and_foreach_false_does_not(monkeypatch):
    calls = []
    real = rtorch._C._fused_adam

    def spy(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(rtorch._C, "_fused_adam", spy)
    params = make_params()
    set_grads(params, 0)
    optim.Adam(params, lr=0.1).step()
    assert calls == [len(params)]  # one call for the whole group
    optim.Adam(params, lr=0.1, foreach=False).step()
    assert calls == [len(params)]


def test_non_contiguous_params_fall_back_to_the_reference_path():
    base = rtorch.randn(4, 6, dtype=rtorch.float64)
    w = rtorch.nn.Parameter(base.t())
    w_ref = rtorch.nn.Parameter(base.t().contiguous())
    assert not w.is_contiguous()
    for p, foreach in ((w, None), (w_ref, False)):
        opt = optim.SGD([p], lr=0.1, momentum=0.9, foreach=foreach)
        for _ in range(3):
            p.grad = p.detach() * 2
            opt.step()
    np.testing.assert_allclose(w.detach().numpy(), w_ref.detach().numpy(), rtol=1e-14)


def test_fused_true_refuses_unsupported_params():
    w = rtorch.nn.Parameter(rtorch.randn(4, 6).t())
    w.grad = rtorch.ones_like(w)
    with pytest.raises(RuntimeError, match="`fused=True` requires"):
        optim.Adam([w], fused=True).step()


def test_fused_step_bumps_version_counters():
    w = rtorch.nn.Parameter(rtorch.ones(3))
    opt = optim.Adam([w], lr=0.1)
    w.grad = rtorch.ones(3)
    opt.step()
    v_param, v_avg = w._version, opt.state[w]["exp_avg"]._version
    v_step = opt.state[w]["step"]._version
    opt.step()
    assert w._version > v_param
    assert opt.state[w]["exp_avg"]._version > v_avg
    assert opt.state[w]["step"]._version > v_step


def test_fused_update_invalidates_tensors_saved_for_backward():
    w = rtorch.nn.Parameter(rtorch.ones(3))
    opt = optim.SGD([w], lr=0.1)
    y = (w * w).sum()  # saves w for backward
    w.grad = rtorch.ones(3)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_kernel_argument_errors():
    p = rtorch.ones(3)
    g = rtorch.ones(3)
    kw = dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)
    with pytest.raises(ValueError, match="expected 2 gradients"):
        rtorch._C._fused_sgd([p, p.clone()], [g], [], [], maximize=False, **kw)
    with pytest.raises(TypeError, match="float32 or float64"):
        rtorch._C._fused_sgd(
            [rtorch.ones(3, dtype=rtorch.int64)],
            [rtorch.ones(3, dtype=rtorch.int64)],
            [],
            [],
            maximize=False,
            **kw,
        )
    with pytest.raises(RuntimeError, match="gradient 0 has shape"):
        rtorch._C._fused_sgd([p], [rtorch.ones(4)], [], [], maximize=False, **kw)
    with pytest.raises(RuntimeError, match="must not share memory"):
        rtorch._C._fused_adam(
            [p],
            [g],
            [p],
            [rtorch.zeros(3)],
            [],
            [rtorch.tensor(0.0)],
            lr=0.1,
            beta1=0.9,
            beta2=0.99,
            eps=1e-8,
            weight_decay=0.0,
            amsgrad=False,
            maximize=False,
            decoupled_weight_decay=False,
        )
    with pytest.raises(TypeError, match="expected Tensor as element 0"):
        rtorch._C._fused_sgd([1.0], [g], [], [], maximize=False, **kw)


def test_fused_kernel_refuses_grad_mode_on_leaves():
    w = rtorch.nn.Parameter(rtorch.ones(3))
    kw = dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)
    with pytest.raises(RuntimeError, match="in-place operation"):
        rtorch._C._fused_sgd([w], [rtorch.ones(3)], [], [], maximize=False, **kw)


@pytest.mark.parametrize(
    ("cls", "kw"),
    [
        (optim.SGD, dict(lr=0.01, momentum=0.9)),
        (optim.Adam, dict(lr=0.01, amsgrad=True)),
        (optim.NAdam, dict(lr=0.01)),
        (optim.Adagrad, dict(lr=0.05)),
        (optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.5)),
        (optim.Rprop, dict(lr=0.01)),
        (optim.ASGD, dict(lr=0.01, t0=3)),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_state_dict_round_trip_into_a_fresh_optimizer(cls, kw):
    # float32 parameters: loading casts floating state (NAdam's mu_product,
    # ASGD's eta and mu) to the parameter's dtype, as PyTorch does, which is
    # then a no-op, so the continued runs agree exactly.
    params = make_params(rtorch.float32)
    opt = cls(params, **kw)
    for step in range(5):
        set_grads(params, step)
        opt.step()
    buf = io.BytesIO()
    rtorch.save(opt.state_dict(), buf)
    buf.seek(0)
    saved = rtorch.load(buf)
    assert sorted(saved["state"]) == [0, 1, 2, 3, 4]
    assert saved["param_groups"][0]["params"] == [0, 1, 2, 3, 4]
    clones = [rtorch.nn.Parameter(p.detach().clone()) for p in params]
    fresh = cls(clones, **kw)
    fresh.load_state_dict(saved)
    for step in range(5, 10):
        set_grads(params, step)
        set_grads(clones, step)
        opt.step()
        fresh.step()
    for a, b in zip(params, clones, strict=True):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_sparse_adam_raises_pytorchs_error_on_dense_gradients():
    w = rtorch.nn.Parameter(rtorch.ones(3))
    opt = optim.SparseAdam([w])
    w.grad = rtorch.ones(3)
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients"):
        opt.step()
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.SparseAdam([w], lr=0.0)


def rosenbrock(xy):
    x, y = xy[0], xy[1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_converges_on_rosenbrock(line_search_fn):
    xy = rtorch.nn.Parameter(rtorch.tensor([-1.5, 2.0], dtype=rtorch.float64))
    lr = 1.0 if line_search_fn else 0.1
    opt = optim.LBFGS([xy], lr=lr, max_iter=50, line_search_fn=line_search_fn)

    def closure():
        opt.zero_grad()
        loss = rosenbrock(xy)
        loss.backward()
        return loss

    for _ in range(40 if line_search_fn else 200):
        opt.step(closure)
    np.testing.assert_allclose(xy.detach().numpy(), [1.0, 1.0], atol=1e-4)
    assert opt.state[xy]["func_evals"] > 0 and opt.state[xy]["n_iter"] > 0


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_matches_pytorch_when_installed(line_search_fn):
    torch = pytest.importorskip("torch")

    def go(mod):
        xy = mod.nn.Parameter(mod.tensor([-1.5, 2.0], dtype=mod.float64))
        opt = mod.optim.LBFGS(
            [xy], lr=1.0 if line_search_fn else 0.02, history_size=5, line_search_fn=line_search_fn
        )

        def closure():
            opt.zero_grad()
            loss = rosenbrock(xy)
            loss.backward()
            return loss

        losses = [float(opt.step(closure)) for _ in range(5)]
        return xy.detach().numpy(), losses, opt.state[xy]["func_evals"]

    got, want = go(rtorch), go(torch)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    assert got[2] == want[2]


def test_lbfgs_rejects_param_groups_and_unknown_line_search():
    a, b = rtorch.nn.Parameter(rtorch.ones(1)), rtorch.nn.Parameter(rtorch.ones(1))
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        optim.LBFGS([{"params": [a]}, {"params": [b]}])
    opt = optim.LBFGS([a], line_search_fn="armijo")

    def closure():
        opt.zero_grad()
        loss = (a * a).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt.step(closure)


def test_nadam_mu_product_state_is_a_scalar_tensor():
    w = rtorch.nn.Parameter(rtorch.ones(2, dtype=rtorch.float64))
    opt = optim.NAdam([w], momentum_decay=0.004)
    w.grad = rtorch.ones(2, dtype=rtorch.float64)
    opt.step()
    mu = 0.9 * (1 - 0.5 * 0.96**0.004)
    st = opt.state[w]
    assert st["mu_product"].dtype == rtorch.float32 and st["mu_product"].shape == ()
    assert math.isclose(st["mu_product"].item(), mu, rel_tol=1e-6)


def test_a_group_mixing_float32_and_float64_params_takes_the_fused_kernel():
    def go(foreach):
        a = rtorch.nn.Parameter(rtorch.linspace(-1, 1, 7, dtype=rtorch.float32))
        b = rtorch.nn.Parameter(rtorch.linspace(-2, 2, 5, dtype=rtorch.float64))
        opt = optim.Adam([a, b], lr=0.1, amsgrad=True, foreach=foreach)
        for _ in range(10):
            a.grad, b.grad = a.detach() * 2, b.detach().sin()
            opt.step()
        return a.detach().numpy(), b.detach().numpy()

    (fa, fb), (ra, rb) = go(None), go(False)
    assert fa.dtype == np.float32 and fb.dtype == np.float64
    np.testing.assert_allclose(fa, ra, rtol=1e-5)
    np.testing.assert_allclose(fb, rb, rtol=1e-13)
