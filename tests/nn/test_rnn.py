"""Recurrent layers: RNN / LSTM / GRU values against a NumPy loop over time,
gradients (gradcheck in float64), packed sequences, the cells, module API and
PyTorch's errors."""

import math

import numpy as np
import pytest

import rtorch
from rtorch import nn
from rtorch.autograd import gradcheck
from rtorch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# ---------------------------------------------------------------- NumPy reference


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_cell(mode, x, h, c, p):
    """One step for a batch: x (B, I), h (B, P), c (B, H) -> (h', c')."""
    w_ih, w_hh, b_ih, b_hh, w_hr = p
    gi = x @ w_ih.T + (0 if b_ih is None else b_ih)
    gh = h @ w_hh.T + (0 if b_hh is None else b_hh)
    if mode == "LSTM":
        i, f, g, o = np.split(gi + gh, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        if w_hr is not None:
            h = h @ w_hr.T
        return h, c
    if mode == "GRU":
        i_r, i_z, i_n = np.split(gi, 3, axis=1)
        h_r, h_z, h_n = np.split(gh, 3, axis=1)
        r, z = _sigmoid(i_r + h_r), _sigmoid(i_z + h_z)
        n = np.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (np.tanh(pre) if mode == "RNN_TANH" else np.maximum(pre, 0)), None


def np_rnn(mode, module, x, h0, c0=None, lengths=None):
    """The whole stack, time-major x (T, B, I); ``lengths`` limits each sequence
    (its output is zero past its end and its final state is the last valid one)."""
    T, B, _ = x.shape
    lengths = [T] * B if lengths is None else lengths
    D = 2 if module.bidirectional else 1
    params = {n: p.detach().numpy() for n, p in module.named_parameters()}
    layer_in = x
    hs, cs = [], []
    for layer in range(module.num_layers):
        outs = []
        for d in range(D):
            sfx = f"l{layer}" + ("_reverse" if d else "")
            p = [
                params.get(f"{k}_{sfx}")
                for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
            ]
            k = layer * D + d
            out = np.zeros((T, B, p[1].shape[1]))
            h_fin, c_fin = h0[k].copy(), None if c0 is None else c0[k].copy()
            for b in range(B):
                h = h0[k][b : b + 1]
                c = None if c0 is None else c0[k][b : b + 1]
                steps = range(lengths[b] - 1, -1, -1) if d else range(lengths[b])
                for t in steps:
                    h, c = np_cell(mode, layer_in[t, b : b + 1], h, c, p)
                    out[t, b] = h[0]
                h_fin[b] = h[0]
                if c is not None:
                    c_fin[b] = c[0]
            outs.append(out)
            hs.append(h_fin)
            cs.append(c_fin)
        layer_in = np.concatenate(outs, axis=2)
    return layer_in, np.stack(hs), (np.stack(cs) if c0 is not None else None)


MODES = [("LSTM", nn.LSTM, {}), ("GRU", nn.GRU, {}), ("RNN_TANH", nn.RNN, {}),
         ("RNN_RELU", nn.RNN, {"nonlinearity": "relu"})]  # fmt: skip


def _states(mode, module, B, rng):
    D = 2 if module.bidirectional else 1
    P = module.proj_size or module.hidden_size
    h0 = rng.standard_normal((module.num_layers * D, B, P))
    c0 = (
        rng.standard_normal((module.num_layers * D, B, module.hidden_size))
        if mode == "LSTM"
        else None
    )
    return h0, c0


@pytest.mark.parametrize("mode,cls,extra", MODES)
@pytest.mark.parametrize(
    "config",
    [
        {},
        {"num_layers": 2, "bidirectional": True},
        {"batch_first": True, "bias": False},
        {"num_layers": 3},
    ],
)
def test_values_against_numpy(mode, cls, extra, config):
    rng = np.random.default_rng(0)
    m = cls(4, 5, **config, **extra).double()
    T, B = 6, 3
    x = rng.standard_normal((T, B, 4))
    h0, c0 = _states(mode, m, B, rng)
    xin = rtorch.tensor(x.transpose(1, 0, 2) if m.batch_first else x)
    hx = rtorch.tensor(h0) if c0 is None else (rtorch.tensor(h0), rtorch.tensor(c0))
    out, state = m(xin, hx)
    ref_out, ref_h, ref_c = np_rnn(mode, m, x, h0, c0)
    got = out.detach().numpy()
    np.testing.assert_allclose(
        got.transpose(1, 0, 2) if m.batch_first else got, ref_out, atol=1e-12
    )
    h_n = state[0] if mode == "LSTM" else state
    np.testing.assert_allclose(h_n.detach().numpy(), ref_h, atol=1e-12)
    if mode == "LSTM":
        np.testing.assert_allclose(state[1].detach().numpy(), ref_c, atol=1e-12)


def test_lstm_proj_size_values_and_shapes():
    rng = np.random.default_rng(1)
    m = nn.LSTM(4, 6, num_layers=2, proj_size=3, bidirectional=True).double()
    x = rng.standard_normal((5, 2, 4))
    h0, c0 = _states("LSTM", m, 2, rng)
    out, (h, c) = m(rtorch.tensor(x), (rtorch.tensor(h0), rtorch.tensor(c0)))
    assert out.shape == (5, 2, 6) and h.shape == (4, 2, 3) and c.shape == (4, 2, 6)
    ref_out, ref_h, ref_c = np_rnn("LSTM", m, x, h0, c0)
    np.testing.assert_allclose(out.detach().numpy(), ref_out, atol=1e-12)
    np.testing.assert_allclose(h.detach().numpy(), ref_h, atol=1e-12)
    np.testing.assert_allclose(c.detach().numpy(), ref_c, atol=1e-12)


def test_zero_initial_state_default_and_unbatched():
    rng = np.random.default_rng(2)
    m = nn.GRU(3, 4, num_layers=2).double()
    x = rng.standard_normal((5, 1, 3))
    out, h = m(rtorch.tensor(x))
    ref_out, ref_h, _ = np_rnn("GRU", m, x, np.zeros((2, 1, 4)))
    np.testing.assert_allclose(out.detach().numpy(), ref_out, atol=1e-12)
    # Unbatched: (T, I) in, (T, H) and (L, H) out, same values.
    out_u, h_u = m(rtorch.tensor(x[:, 0]))
    assert out_u.shape == (5, 4) and h_u.shape == (2, 4)
    np.testing.assert_allclose(out_u.detach().numpy(), ref_out[:, 0], atol=1e-12)
    np.testing.assert_allclose(h_u.detach().numpy(), ref_h[:, 0], atol=1e-12)
    lstm = nn.LSTM(3, 4, batch_first=True).double()
    o, (h1, c1) = lstm(rtorch.tensor(x[:, 0]), (rtorch.zeros(1, 4, dtype=rtorch.float64),) * 2)
    assert o.shape == (5, 4) and h1.shape == (1, 4) and c1.shape == (1, 4)


@pytest.mark.parametrize("mode,cls,extra", MODES[:3])
@pytest.mark.parametrize("batch_first", [False, True])
def test_packed_unsorted_lengths_against_numpy(mode, cls, extra, batch_first):
    rng = np.random.default_rng(3)
    m = cls(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first, **extra).double()
    lengths = [2, 5, 3, 1]
    T, B = 5, 4
    x = rng.standard_normal((T, B, 3))
    h0, c0 = _states(mode, m, B, rng)
    xin = rtorch.tensor(x.transpose(1, 0, 2) if batch_first else x)
    packed = pack_padded_sequence(xin, lengths, batch_first=batch_first, enforce_sorted=False)
    hx = rtorch.tensor(h0) if c0 is None else (rtorch.tensor(h0), rtorch.tensor(c0))
    out, state = m(packed, hx)
    assert isinstance(out, nn.utils.rnn.PackedSequence)
    padded, lens = pad_packed_sequence(out, batch_first=batch_first)
    assert lens.tolist() == lengths
    ref_out, ref_h, ref_c = np_rnn(mode, m, x, h0, c0, lengths)
    got = padded.detach().numpy()
    np.testing.assert_allclose(got.transpose(1, 0, 2) if batch_first else got, ref_out, atol=1e-12)
    h_n = state[0] if mode == "LSTM" else state
    np.testing.assert_allclose(h_n.detach().numpy(), ref_h, atol=1e-12)
    if mode == "LSTM":
        np.testing.assert_allclose(state[1].detach().numpy(), ref_c, atol=1e-12)


def test_packed_gradients_match_padded_per_sequence():
    # The gradient of a packed run equals the sum of separate runs of each sequence alone.
    rng = np.random.default_rng(4)
    m = nn.LSTM(3, 4, bidirectional=True).double()
    lengths = [4, 2, 3]
    x = rtorch.tensor(rng.standard_normal((4, 3, 3)), requires_grad=True)
    out, (h, c) = m(pack_padded_sequence(x, lengths, enforce_sorted=False))
    (out.data.sum() + h.sum() + c.sum()).backward()
    packed_grads = [p.grad.clone() for p in m.parameters()]
    x_grad = x.grad.clone()
    m.zero_grad()
    x.grad = None
    for b, n in enumerate(lengths):
        o, (hb, cb) = m(x[:n, b : b + 1])
        (o.sum() + hb.sum() + cb.sum()).backward()
    for got, want in zip(packed_grads, [p.grad for p in m.parameters()], strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-10)
    np.testing.assert_allclose(x_grad.numpy(), x.grad.numpy(), atol=1e-10)


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize(
    "cls,kwargs",
    [
        (nn.LSTM, {"num_layers": 2, "bidirectional": True}),
        (nn.LSTM, {"proj_size": 2}),
        (nn.GRU, {"bidirectional": True}),
        (nn.GRU, {"bias": False}),
        (nn.RNN, {"nonlinearity": "relu"}),
        (nn.RNN, {"num_layers": 2}),
    ],
)
def test_gradcheck_layers(cls, kwargs):
    rtorch.manual_seed(0)
    m = cls(2, 3, **kwargs).double()
    params = list(m.parameters())
    x = rtorch.randn(3, 2, 2, dtype=rtorch.float64, requires_grad=True)
    D = 2 if m.bidirectional else 1
    P = m.proj_size or 3
    h0 = rtorch.randn(m.num_layers * D, 2, P, dtype=rtorch.float64, requires_grad=True)
    c0 = rtorch.randn(m.num_layers * D, 2, 3, dtype=rtorch.float64, requires_grad=True)
    names = [n for n, _ in m.named_parameters()]

    def run(x, h0, c0, *ps):
        state = dict(zip(names, ps, strict=True))
        for n in names:
            delattr(m, n)
            setattr(m, n, state[n])
        try:
            if cls is nn.LSTM:
                out, (h, c) = m(x, (h0, c0))
                return out, h, c
            out, h = m(x, h0)
            return out, h
        finally:
            for n, p in zip(names, params, strict=True):
                delattr(m, n)
                m.register_parameter(n, p)

    assert gradcheck(run, (x, h0, c0, *params))


def test_gradcheck_packed_gru():
    rtorch.manual_seed(1)
    m = nn.GRU(2, 3).double()
    x = rtorch.randn(3, 3, 2, dtype=rtorch.float64, requires_grad=True)
    h0 = rtorch.randn(1, 3, 3, dtype=rtorch.float64, requires_grad=True)

    def run(x, h0):
        out, h = m(pack_padded_sequence(x, [2, 3, 1], enforce_sorted=False), h0)
        return out.data, h

    assert gradcheck(run, (x, h0))


@pytest.mark.parametrize("cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_cells_values_and_gradcheck(cls):
    rtorch.manual_seed(2)
    cell = cls(3, 4).double()
    mode = {nn.RNNCell: "RNN_TANH", nn.LSTMCell: "LSTM", nn.GRUCell: "GRU"}[cls]
    x = rtorch.randn(2, 3, dtype=rtorch.float64, requires_grad=True)
    h = rtorch.randn(2, 4, dtype=rtorch.float64, requires_grad=True)
    c = rtorch.randn(2, 4, dtype=rtorch.float64, requires_grad=True)
    p = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
    ref_h, ref_c = np_cell(mode, x.detach().numpy(), h.detach().numpy(), c.detach().numpy(),
                           [t.detach().numpy() for t in p] + [None])  # fmt: skip
    if cls is nn.LSTMCell:
        got_h, got_c = cell(x, (h, c))
        np.testing.assert_allclose(got_c.detach().numpy(), ref_c, atol=1e-12)
        assert gradcheck(lambda x, h, c: cell(x, (h, c)), (x, h, c))
    else:
        got_h = cell(x, h)
        assert gradcheck(lambda x, h: cell(x, h), (x, h))
    np.testing.assert_allclose(got_h.detach().numpy(), ref_h, atol=1e-12)
    # Unbatched input and the zero default state.
    single = cell(x[0])
    single_h = single[0] if cls is nn.LSTMCell else single
    assert single_h.shape == (4,)


def test_relu_cell_and_repr():
    cell = nn.RNNCell(3, 4, nonlinearity="relu", bias=False)
    assert repr(cell) == "RNNCell(3, 4, bias=False, nonlinearity=relu)"
    assert repr(nn.LSTMCell(3, 4)) == "LSTMCell(3, 4)"
    assert bool((cell(rtorch.randn(5, 3)) >= 0).all())
    assert cell.bias_ih is None and [n for n, _ in cell.named_parameters()] == [
        "weight_ih",
        "weight_hh",
    ]


def test_dropout_between_layers_only_in_training():
    rtorch.manual_seed(0)
    m = nn.LSTM(3, 4, num_layers=2, dropout=0.5).double()
    x = rtorch.randn(4, 2, 3, dtype=rtorch.float64)
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    ref, _, _ = np_rnn("LSTM", m, x.numpy(), np.zeros((2, 2, 4)), np.zeros((2, 2, 4)))
    np.testing.assert_allclose(a.detach().numpy(), ref, atol=1e-12)
    m.train()
    c, _ = m(x)
    assert not np.allclose(c.detach().numpy(), ref)


# ---------------------------------------------------------------- module API


def test_parameter_names_shapes_and_init():
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert list(shapes)[:5] == [
        "weight_ih_l0",
        "weight_hh_l0",
        "bias_ih_l0",
        "bias_hh_l0",
        "weight_hr_l0",
    ]
    assert shapes["weight_ih_l0"] == (16, 3) and shapes["weight_hh_l0"] == (16, 2)
    assert shapes["weight_hr_l0_reverse"] == (2, 4) and shapes["weight_ih_l1"] == (16, 4)
    assert len(shapes) == 20
    g = nn.GRU(3, 5, bias=False)
    assert [k for k in g.state_dict()] == ["weight_ih_l0", "weight_hh_l0"]
    assert g.weight_ih_l0.shape == (15, 3)
    assert [len(w) for w in g.all_weights] == [2]
    rtorch.manual_seed(0)
    big = nn.RNN(10, 400)
    bound = 1 / math.sqrt(400)
    for p in big.parameters():
        v = p.detach().numpy()
        assert v.min() >= -bound and v.max() <= bound
    assert abs(big.weight_hh_l0.detach().numpy().std() - bound / math.sqrt(3)) < 0.02 * bound
    big.flatten_parameters()


def test_repr():
    assert (
        repr(nn.LSTM(10, 20, num_layers=2, batch_first=True))
        == "LSTM(10, 20, num_layers=2, batch_first=True)"
    )
    assert repr(nn.RNN(10, 20, nonlinearity="relu")) == "RNN(10, 20)"
    assert (
        repr(nn.GRU(3, 4, bias=False, dropout=0.5, num_layers=2, bidirectional=True))
        == "GRU(3, 4, num_layers=2, bias=False, dropout=0.5, bidirectional=True)"
    )
    assert repr(nn.LSTM(10, 20, proj_size=5)) == "LSTM(10, 20, proj_size=5)"


def test_input_and_hidden_errors():
    m = nn.LSTM(10, 20)
    with pytest.raises(
        RuntimeError, match=r"input.size\(-1\) must be equal to input_size. Expected 10, got 5"
    ):
        m(rtorch.randn(5, 3, 5))
    with pytest.raises(
        RuntimeError, match=r"Expected hidden\[0\] size \(1, 3, 20\), got \[1, 4, 20\]"
    ):
        m(rtorch.randn(5, 3, 10), (rtorch.randn(1, 4, 20), rtorch.randn(1, 3, 20)))
    with pytest.raises(
        RuntimeError, match=r"Expected hidden\[1\] size \(1, 3, 20\), got \[1, 3, 2\]"
    ):
        m(rtorch.randn(5, 3, 10), (rtorch.randn(1, 3, 20), rtorch.randn(1, 3, 2)))
    with pytest.raises(RuntimeError, match=r"hx and cx should also be 3-D but got \(2-D, 2-D\)"):
        m(rtorch.randn(5, 3, 10), (rtorch.randn(3, 20), rtorch.randn(3, 20)))
    with pytest.raises(ValueError, match="LSTM: Expected input to be 2D or 3D, got 4D instead"):
        m(rtorch.randn(5, 3, 10, 1))
    with pytest.raises(ValueError, match="input must have the type"):
        m(rtorch.randn(5, 3, 10, dtype=rtorch.float64))
    r = nn.RNN(10, 20)
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 3, 20\), got \[1, 4, 20\]"):
        r(rtorch.randn(5, 3, 10), rtorch.randn(1, 4, 20))
    with pytest.raises(
        RuntimeError, match="For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"
    ):
        r(rtorch.randn(5, 10), rtorch.randn(1, 3, 20))
    with pytest.raises(
        ValueError, match="RNN: Expected input to be 2D or 3D, got 4D tensor instead"
    ):
        r(rtorch.randn(5, 3, 10, 1))


def test_constructor_errors():
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sig'"):
        nn.RNN(10, 20, nonlinearity="sig")
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(10, 20, proj_size=20)
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        nn.GRU(10, 20, proj_size=2)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        nn.LSTM(10, 0)
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        nn.LSTM(10, 20, dropout=2)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.LSTM(10, 20, dropout=0.5)


def test_cell_errors():
    c = nn.LSTMCell(10, 20)
    with pytest.raises(RuntimeError, match="input has inconsistent input_size: got 5 expected 10"):
        c(rtorch.randn(3, 5))
    with pytest.raises(RuntimeError, match="Input batch size 3 doesn't match hidden0 batch size 4"):
        c(rtorch.randn(3, 10), (rtorch.randn(4, 20), rtorch.randn(4, 20)))
    with pytest.raises(
        ValueError, match=r"LSTMCell: Expected hx\[0\] to be 1D or 2D, got 3D instead"
    ):
        c(rtorch.randn(3, 10), (rtorch.randn(3, 20, 1), rtorch.randn(3, 20)))
    with pytest.raises(ValueError, match="GRUCell: Expected input to be 1D or 2D, got 3D instead"):
        nn.GRUCell(10, 20)(rtorch.randn(3, 10, 1))


def test_pytorch_state_dict_interchange():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(
        4, 6, num_layers=2, bidirectional=True, proj_size=3, batch_first=True
    ).double()
    mine = nn.LSTM(4, 6, num_layers=2, bidirectional=True, proj_size=3, batch_first=True).double()
    mine.load_state_dict({k: rtorch.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 5, 4))
    out_t, (h_t, c_t) = theirs(torch.tensor(x))
    out_m, (h_m, c_m) = mine(rtorch.tensor(x))
    np.testing.assert_allclose(out_m.detach().numpy(), out_t.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(h_m.detach().numpy(), h_t.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(c_m.detach().numpy(), c_t.detach().numpy(), atol=1e-12)
    (out_t.sum() + c_t.sum()).backward()
    (out_m.sum() + c_m.sum()).backward()
    for (n, p), q in zip(mine.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), atol=1e-10, err_msg=n)
