"""The fused recurrent kernels (rust/src/ops/rnn.rs): ``_C._rnn_layer`` (one
layer and direction over all timesteps) and the ``_C._lstm_cell`` /
``_C._gru_cell`` steps, against NumPy references, gradcheck in float64,
the multi-threaded split against one thread, and the double-backward error."""

import numpy as np
import pytest

import rtorch
from rtorch import _C, nn
from rtorch.autograd import gradcheck, gradgradcheck

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_lstm_cell(gi, gh, c, bi=None, bh=None):
    pre = gi + gh + (0 if bi is None else bi) + (0 if bh is None else bh)
    i, f, g, o = np.split(pre, 4, axis=1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def np_gru_cell(gi, gh, h, bi=None, bh=None):
    gi = gi + (0 if bi is None else bi)
    gh = gh + (0 if bh is None else bh)
    i_r, i_z, i_n = np.split(gi, 3, axis=1)
    h_r, h_z, h_n = np.split(gh, 3, axis=1)
    r, z = _sigmoid(i_r + h_r), _sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def np_layer(mode, xp, batch_sizes, h0, c0, w_hh, b_ih, b_hh, w_hr, reverse):
    """The packed recurrence: step t is rows [off_t, off_t + bs_t) of xp and
    updates the first bs_t state rows."""
    offs = np.cumsum([0, *batch_sizes[:-1]])
    order = range(len(batch_sizes))
    h, c = h0.copy(), None if c0 is None else c0.copy()
    out = np.zeros((xp.shape[0], h0.shape[1]))
    for t in reversed(order) if reverse else order:
        o, bs = offs[t], batch_sizes[t]
        x, hp = xp[o : o + bs], h[:bs]
        gh = hp @ w_hh.T
        if mode == "LSTM":
            r, c_new = np_lstm_cell(x, gh, c[:bs], b_ih, b_hh)
            c[:bs] = c_new
            hn = r if w_hr is None else r @ w_hr.T
        elif mode == "GRU":
            hn = np_gru_cell(x, gh, hp, b_ih, b_hh)
        else:
            pre = x + gh + (0 if b_ih is None else b_ih) + (0 if b_hh is None else b_hh)
            hn = np.tanh(pre) if mode == "RNN_TANH" else np.maximum(pre, 0)
        h[:bs] = hn
        out[o : o + bs] = hn
    return out, h, c


def _layer_inputs(
    mode, batch_sizes, H, P=None, rng=None, dtype=rtorch.float64, grad=False, bias=(True, True)
):
    """Random inputs of ``_C._rnn_layer`` as (numpy dict, rtorch dict)."""
    rng = rng or np.random.default_rng(0)
    P = P or H
    G, N, B = GATES[mode], sum(batch_sizes), batch_sizes[0]
    a = {
        "xp": rng.standard_normal((N, G * H)),
        "h0": rng.standard_normal((B, P)) * 0.5,
        "c0": rng.standard_normal((B, H)) * 0.5 if mode == "LSTM" else None,
        "w_hh": rng.standard_normal((G * H, P)) / np.sqrt(P),
        "b_ih": rng.standard_normal(G * H) * 0.3 if bias[0] else None,
        "b_hh": rng.standard_normal(G * H) * 0.3 if bias[1] else None,
        "w_hr": rng.standard_normal((P, H)) / np.sqrt(H) if P != H else None,
    }
    t = {
        k: None if v is None else rtorch.tensor(v, dtype=dtype, requires_grad=grad)
        for k, v in a.items()
    }
    return a, t


def _run_layer(mode, t, batch_sizes, reverse):
    return _C._rnn_layer(
        mode,
        t["xp"],
        batch_sizes,
        t["h0"],
        t["c0"],
        t["w_hh"],
        t["b_ih"],
        t["b_hh"],
        t["w_hr"],
        reverse,
    )


# ---------------------------------------------------------------- cells


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_values_against_numpy(bias):
    rng = np.random.default_rng(0)
    B, H = 5, 7
    gi, gh = rng.standard_normal((B, 4 * H)), rng.standard_normal((B, 4 * H))
    c = rng.standard_normal((B, H))
    bi, bh = (rng.standard_normal(4 * H), rng.standard_normal(4 * H)) if bias else (None, None)
    want_h, want_c = np_lstm_cell(gi, gh, c, bi, bh)
    for dtype, tol in ((rtorch.float64, 1e-13), (rtorch.float32, 2e-6)):

        def T(v, dtype=dtype):
            return None if v is None else rtorch.tensor(v, dtype=dtype)

        h2, c2 = _C._lstm_cell(T(gi), T(gh), T(c), T(bi), T(bh))
        assert h2.dtype == dtype and h2.shape == (B, H) and c2.shape == (B, H)
        np.testing.assert_allclose(h2.numpy(), want_h, rtol=tol, atol=tol)
        np.testing.assert_allclose(c2.numpy(), want_c, rtol=tol, atol=tol)


@pytest.mark.parametrize("bias", [True, False])
def test_gru_cell_values_against_numpy(bias):
    rng = np.random.default_rng(1)
    B, H = 4, 9
    gi, gh = rng.standard_normal((B, 3 * H)), rng.standard_normal((B, 3 * H))
    h = rng.standard_normal((B, H))
    bi, bh = (rng.standard_normal(3 * H), rng.standard_normal(3 * H)) if bias else (None, None)
    want = np_gru_cell(gi, gh, h, bi, bh)
    for dtype, tol in ((rtorch.float64, 1e-13), (rtorch.float32, 2e-6)):

        def T(v, dtype=dtype):
            return None if v is None else rtorch.tensor(v, dtype=dtype)

        got = _C._gru_cell(T(gi), T(gh), T(h), T(bi), T(bh))
        np.testing.assert_allclose(got.numpy(), want, rtol=tol, atol=tol)


def _cell_args(n_gates, B=3, H=4, seed=0):
    rtorch.manual_seed(seed)

    def r(*shape):
        return rtorch.randn(*shape, dtype=rtorch.float64, requires_grad=True)

    return r(B, n_gates * H), r(B, n_gates * H), r(B, H), r(n_gates * H), r(n_gates * H)


def test_lstm_cell_gradcheck_and_gradgradcheck():
    args = _cell_args(4)
    assert gradcheck(lambda *a: _C._lstm_cell(*a), args)
    assert gradgradcheck(lambda *a: _C._lstm_cell(*a), args)
    # Only some outputs used, no biases.
    assert gradcheck(lambda gi, gh, c: _C._lstm_cell(gi, gh, c)[1], args[:3])


def test_gru_cell_gradcheck_and_gradgradcheck():
    args = _cell_args(3, seed=1)
    assert gradcheck(lambda *a: _C._gru_cell(*a), args)
    assert gradgradcheck(lambda *a: _C._gru_cell(*a), args)
    assert gradcheck(lambda gi, gh, h: _C._gru_cell(gi, gh, h), args[:3])


def test_cell_modules_double_backward():
    rtorch.manual_seed(3)
    for cell in (nn.LSTMCell(3, 4).double(), nn.GRUCell(3, 4).double()):
        x = rtorch.randn(2, 3, dtype=rtorch.float64, requires_grad=True)
        assert gradgradcheck(lambda x, cell=cell: cell(x)[0], (x,))


def test_cell_errors():
    g, c = rtorch.zeros(2, 8), rtorch.zeros(2, 2)
    with pytest.raises(RuntimeError, match=r"lstm_cell: expected hidden_gates of shape \[2, 8\]"):
        _C._lstm_cell(g, rtorch.zeros(2, 6), c)
    with pytest.raises(RuntimeError, match="expected all tensors to have dtype"):
        _C._gru_cell(rtorch.zeros(2, 6), rtorch.zeros(2, 6), c.double())


# ---------------------------------------------------------------- layer


@pytest.mark.parametrize("mode", list(GATES))
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    "batch_sizes,bias", [([3, 3, 3, 3], (True, True)), ([4, 3, 3, 1], (False, True))]
)
def test_layer_values_against_numpy(mode, reverse, batch_sizes, bias):
    a, t = _layer_inputs(mode, batch_sizes, H=5, bias=bias)
    out, h_n, c_n = _run_layer(mode, t, batch_sizes, reverse)
    want_out, want_h, want_c = np_layer(mode, **a, batch_sizes=batch_sizes, reverse=reverse)
    np.testing.assert_allclose(out.numpy(), want_out, atol=1e-12)
    np.testing.assert_allclose(h_n.numpy(), want_h, atol=1e-12)
    if mode == "LSTM":
        np.testing.assert_allclose(c_n.numpy(), want_c, atol=1e-12)
    else:
        assert c_n is None
    # float32 within float32 rounding.
    _, t32 = _layer_inputs(mode, batch_sizes, H=5, dtype=rtorch.float32, bias=bias)
    out32 = _run_layer(mode, t32, batch_sizes, reverse)[0]
    np.testing.assert_allclose(out32.numpy(), want_out, atol=2e-5)


@pytest.mark.parametrize("reverse", [False, True])
def test_layer_projection_values(reverse):
    bs = [3, 2, 2, 1]
    a, t = _layer_inputs("LSTM", bs, H=6, P=3)
    out, h_n, c_n = _run_layer("LSTM", t, bs, reverse)
    assert out.shape == (8, 3) and h_n.shape == (3, 3) and c_n.shape == (3, 6)
    want_out, want_h, want_c = np_layer("LSTM", **a, batch_sizes=bs, reverse=reverse)
    np.testing.assert_allclose(out.numpy(), want_out, atol=1e-12)
    np.testing.assert_allclose(h_n.numpy(), want_h, atol=1e-12)
    np.testing.assert_allclose(c_n.numpy(), want_c, atol=1e-12)


@pytest.mark.parametrize(
    "mode,P,reverse,bias",
    [
        ("LSTM", None, False, (True, True)),
        ("LSTM", None, True, (True, False)),
        ("LSTM", 2, False, (False, False)),
        ("LSTM", 2, True, (True, True)),
        ("GRU", None, False, (True, True)),
        ("GRU", None, True, (False, True)),
        ("RNN_TANH", None, True, (True, True)),
        ("RNN_RELU", None, False, (False, True)),
    ],
)
def test_layer_gradcheck(mode, P, reverse, bias):
    bs = [3, 2, 2, 1]
    _, t = _layer_inputs(mode, bs, H=3, P=P, rng=np.random.default_rng(5), grad=True, bias=bias)
    names = [k for k, v in t.items() if v is not None]

    def run(*xs):
        args = dict.fromkeys(t) | dict(zip(names, xs, strict=True))
        return tuple(r for r in _run_layer(mode, args, bs, reverse) if r is not None)

    assert gradcheck(run, [t[k] for k in names])


def test_layer_partial_output_gradients():
    # Only h_n (not out, not c_n) carries a gradient: the others come as zeros.
    bs = [2, 2, 1]
    _, t = _layer_inputs("LSTM", bs, H=3, rng=np.random.default_rng(6), grad=True)
    names = ["xp", "h0", "c0", "w_hh"]
    assert gradcheck(
        lambda xp, h0, c0, w: _C._rnn_layer("LSTM", xp, bs, h0, c0, w, None, None, None, False)[1],
        [t[k] for k in names],
    )


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
@pytest.mark.parametrize("P", [None, 48])
@pytest.mark.parametrize("bs", [[32] * 3 + [20, 7], [12, 12, 9, 3]])
def test_layer_threads_match_one_thread(mode, P, bs):
    # Large enough for the multi-threaded splits (H = 64 units): batch 32
    # splits by rows (shares of 16, the second one emptying as the batch
    # shrinks), batch 12 by chunks of units.
    if mode != "LSTM" and P is not None:
        pytest.skip("proj_size is LSTM only")
    a, t = _layer_inputs(mode, bs, H=64, P=P, rng=np.random.default_rng(7), grad=True)
    want_out, want_h, _ = np_layer(mode, **a, batch_sizes=bs, reverse=False)
    prev = rtorch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            rtorch.set_num_threads(threads)
            res = [r for r in _run_layer(mode, t, bs, False) if r is not None]
            np.testing.assert_allclose(res[0].detach().numpy(), want_out, atol=1e-12)
            np.testing.assert_allclose(res[1].detach().numpy(), want_h, atol=1e-12)
            loss = sum((r * (k + 1)).sum() for k, r in enumerate(res))
            grads = rtorch.autograd.grad(loss, [v for v in t.values() if v is not None])
            results.append([g.numpy() for g in grads])
    finally:
        rtorch.set_num_threads(prev)
    for g1, g2 in zip(*results, strict=True):
        np.testing.assert_allclose(g2, g1, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
@pytest.mark.parametrize("H", [40, 70])
@pytest.mark.parametrize("threads", [1, 2])
def test_layer_float32_step_gemms_against_float64(mode, H, threads):
    # float32 runs the per-step GEMMs on weights packed in 64-column panels
    # (where the CPU has AVX-512): column ranges that end inside a panel
    # (H = 40, 70: partial panels, several chunks with two threads) and
    # step batches that are not multiples of the 6-row tiles. The values
    # and every gradient must match the float64 run (the general GEMM) to
    # float32 rounding.
    bs = [13, 13, 11, 5, 1]
    a, t64 = _layer_inputs(mode, bs, H=H, rng=np.random.default_rng(8), grad=True)
    want_out, want_h, _ = np_layer(mode, **a, batch_sizes=bs, reverse=False)
    t32 = {k: None if v is None else v.detach().float().requires_grad_() for k, v in t64.items()}
    prev = rtorch.get_num_threads()
    grads = []
    try:
        rtorch.set_num_threads(threads)
        for t in (t64, t32):
            res = [r for r in _run_layer(mode, t, bs, False) if r is not None]
            np.testing.assert_allclose(res[0].detach().numpy(), want_out, atol=5e-5)
            np.testing.assert_allclose(res[1].detach().numpy(), want_h, atol=5e-5)
            loss = sum((r * (k + 1)).sum() for k, r in enumerate(res))
            grads.append(rtorch.autograd.grad(loss, [v for v in t.values() if v is not None]))
    finally:
        rtorch.set_num_threads(prev)
    for g64, g32 in zip(*grads, strict=True):
        scale = np.abs(g64.numpy()).max()
        np.testing.assert_allclose(g32.numpy(), g64.numpy(), atol=5e-5 * max(scale, 1.0))


def test_layer_half_precision_computes_in_float32():
    bs = [2, 2]
    _, t32 = _layer_inputs("LSTM", bs, H=4, dtype=rtorch.float32)
    t16 = {k: None if v is None else v.to(rtorch.bfloat16) for k, v in t32.items()}
    ref = _run_layer(
        "LSTM", {k: None if v is None else v.float() for k, v in t16.items()}, bs, False
    )
    got = _run_layer("LSTM", t16, bs, False)
    assert got[0].dtype == rtorch.bfloat16
    np.testing.assert_allclose(got[0].float().numpy(), ref[0].numpy(), atol=1e-2)


@pytest.mark.parametrize(
    "mode, batch_sizes, reverse, P",
    [
        ("LSTM", [3, 2, 2, 1], False, None),
        ("LSTM", [2, 2, 1], True, 2),
        ("GRU", [3, 3, 1], False, None),
        ("GRU", [2, 1], True, None),
        ("RNN_TANH", [2, 2], False, None),
    ],
)
def test_layer_double_backward_gradgradcheck(mode, batch_sizes, reverse, P):
    # create_graph rebuilds the layer from differentiable steps: second
    # derivatives through packed batches, both directions and proj_size.
    _, t = _layer_inputs(mode, batch_sizes, H=3, P=P, grad=True)
    names = [k for k, v in t.items() if v is not None]

    def f(*xs):
        args = {**dict.fromkeys(t), **dict(zip(names, xs, strict=True))}
        out, hn, cn = _run_layer(mode, args, batch_sizes, reverse)
        return (out, hn) if cn is None else (out, hn, cn)

    xs = tuple(t[k] for k in names)
    assert gradgradcheck(f, xs)


def test_lstm_double_backward_matches_cells_in_a_loop():
    rtorch.manual_seed(0)
    lstm = nn.LSTM(3, 4).double()
    cell = nn.LSTMCell(3, 4).double()
    with rtorch.no_grad():
        for a, b in [("weight_ih", "weight_ih_l0"), ("weight_hh", "weight_hh_l0")]:
            getattr(cell, a).copy_(getattr(lstm, b))
        for a, b in [("bias_ih", "bias_ih_l0"), ("bias_hh", "bias_hh_l0")]:
            getattr(cell, a).copy_(getattr(lstm, b))
    x = rtorch.randn(5, 2, 3, dtype=rtorch.float64, requires_grad=True)

    def penalty(outs, params):
        grads = rtorch.autograd.grad(outs.pow(2).sum(), [x, *params], create_graph=True)
        return sum(g.pow(2).sum() for g in grads)

    out, _ = lstm(x)
    p1 = [lstm.weight_ih_l0, lstm.weight_hh_l0]
    second = rtorch.autograd.grad(penalty(out, p1), p1)
    h = c = rtorch.zeros(2, 4, dtype=rtorch.float64)
    steps = []
    for xt in x:
        h, c = cell(xt, (h, c))
        steps.append(h)
    p2 = [cell.weight_ih, cell.weight_hh]
    want = rtorch.autograd.grad(penalty(rtorch.stack(steps), p2), p2)
    for g, w in zip(second, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-10, atol=1e-12)


def test_layer_argument_errors():
    xp, h0, w = rtorch.zeros(4, 8), rtorch.zeros(2, 2), rtorch.zeros(8, 2)
    with pytest.raises(ValueError, match="Unrecognized RNN mode: LSTMX"):
        _C._rnn_layer("LSTMX", xp, [2, 2], h0, h0, w, None, None, None, False)
    with pytest.raises(RuntimeError, match="batch_sizes sum to 3 but the input has 4 rows"):
        _C._rnn_layer("LSTM", xp, [2, 1], h0, h0, w, None, None, None, False)
    with pytest.raises(RuntimeError, match="non-increasing"):
        _C._rnn_layer("LSTM", xp, [1, 3], h0, h0, w, None, None, None, False)
    with pytest.raises(RuntimeError, match="LSTM needs c0"):
        _C._rnn_layer("LSTM", xp, [2, 2], h0, None, w, None, None, None, False)
    with pytest.raises(RuntimeError, match="expected h0 of shape"):
        _C._rnn_layer("LSTM", xp, [2, 2], rtorch.zeros(2, 3), h0, w, None, None, None, False)
