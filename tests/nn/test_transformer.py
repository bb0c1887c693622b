"""Transformer layers and stacks: PyTorch's state_dict keys, values against a
NumPy reference, cloning, masks, errors, gradcheck and PyTorch parity."""

import math
import warnings

import numpy as np
import pytest

import rtorch
import rtorch.nn.functional as F
from rtorch import nn
from rtorch.autograd import gradcheck

RNG = np.random.default_rng(1)


def t(a, **kw):
    return rtorch.tensor(np.asarray(a), **kw)


def close(x, ref, tol=1e-5):
    np.testing.assert_allclose(x.detach().numpy(), ref, rtol=tol, atol=tol)


ENCODER_LAYER_KEYS = [
    "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
    "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight",
    "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
]  # fmt: skip
DECODER_LAYER_KEYS = [
    "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
    "self_attn.out_proj.bias", "multihead_attn.in_proj_weight", "multihead_attn.in_proj_bias",
    "multihead_attn.out_proj.weight", "multihead_attn.out_proj.bias", "linear1.weight",
    "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias",
    "norm2.weight", "norm2.bias", "norm3.weight", "norm3.bias",
]  # fmt: skip


def test_state_dict_keys_match_pytorch():
    enc = nn.TransformerEncoderLayer(8, 2, 16)
    assert list(enc.state_dict()) == ENCODER_LAYER_KEYS
    dec = nn.TransformerDecoderLayer(8, 2, 16)
    assert list(dec.state_dict()) == DECODER_LAYER_KEYS
    model = nn.Transformer(8, 2, 1, 1, 16, batch_first=True)
    expected = (
        [f"encoder.layers.0.{k}" for k in ENCODER_LAYER_KEYS]
        + ["encoder.norm.weight", "encoder.norm.bias"]
        + [f"decoder.layers.0.{k}" for k in DECODER_LAYER_KEYS]
        + ["decoder.norm.weight", "decoder.norm.bias"]
    )
    assert list(model.state_dict()) == expected
    no_bias = nn.TransformerEncoderLayer(8, 2, 16, bias=False)
    assert list(no_bias.state_dict()) == [
        "self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight",
        "linear2.weight", "norm1.weight", "norm2.weight",
    ]  # fmt: skip
    assert tuple(enc.linear1.weight.shape) == (16, 8)
    assert tuple(enc.self_attn.in_proj_weight.shape) == (24, 8)


# ---------------------------------------------------------------- NumPy reference


def np_layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def np_self_attention(x, sd, prefix, heads, bias=None, mem=None):
    """Batch-first (N, L, E) multi-head attention from state-dict arrays."""
    src = x if mem is None else mem
    e = x.shape[-1]
    w_q, w_k, w_v = np.split(sd[prefix + "in_proj_weight"], 3)
    b_q, b_k, b_v = np.split(sd[prefix + "in_proj_bias"], 3)
    hd = e // heads

    def split(a):
        return a.reshape(a.shape[0], a.shape[1], heads, hd).transpose(0, 2, 1, 3)

    q, k, v = split(x @ w_q.T + b_q), split(src @ w_k.T + b_k), split(src @ w_v.T + b_v)
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
    if bias is not None:
        s = s + bias
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s) / np.exp(s).sum(-1, keepdims=True)
    o = (p @ v).transpose(0, 2, 1, 3).reshape(x.shape)
    return o @ sd[prefix + "out_proj.weight"].T + sd[prefix + "out_proj.bias"]


def np_gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def np_encoder_layer(x, sd, heads, norm_first, act, bias=None):
    def ff(h):
        h = act(h @ sd["linear1.weight"].T + sd["linear1.bias"])
        return h @ sd["linear2.weight"].T + sd["linear2.bias"]

    def n(h, i):
        return np_layer_norm(h, sd[f"norm{i}.weight"], sd[f"norm{i}.bias"])

    if norm_first:
        x = x + np_self_attention(n(x, 1), sd, "self_attn.", heads, bias)
        return x + ff(n(x, 2))
    x = n(x + np_self_attention(x, sd, "self_attn.", heads, bias), 1)
    return n(x + ff(x), 2)


def randomize(module):
    with rtorch.no_grad():
        for p in module.parameters():
            p.copy_(t(RNG.standard_normal(tuple(p.shape)) * 0.3))


def arrays(module):
    return {k: v.detach().numpy().astype(np.float64) for k, v in module.state_dict().items()}


X = RNG.standard_normal((2, 5, 8))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", F.silu])
def test_encoder_layer_matches_numpy(norm_first, activation):
    layer = nn.TransformerEncoderLayer(
        8, 2, 16, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first,
        dtype=rtorch.float64,
    )  # fmt: skip
    randomize(layer)
    act = {
        "relu": lambda h: np.maximum(h, 0),
        "gelu": np_gelu,
    }.get(activation, lambda h: h / (1 + np.exp(-h)))  # type: ignore[arg-type]
    ref = np_encoder_layer(X, arrays(layer), 2, norm_first, act)
    close(layer(t(X)), ref, 1e-10)
    # seq-first gives the same numbers transposed
    layer.self_attn.batch_first = False
    close(layer(t(X.transpose(1, 0, 2).copy())), ref.transpose(1, 0, 2), 1e-10)


def test_encoder_layer_masks():
    layer = nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=rtorch.float64)
    randomize(layer)
    causal = nn.Transformer.generate_square_subsequent_mask(5, dtype=rtorch.float64)
    ref = np_encoder_layer(X, arrays(layer), 2, False, lambda h: np.maximum(h, 0), causal.numpy())
    close(layer(t(X), src_mask=causal), ref, 1e-10)
    close(layer(t(X), src_mask=causal, is_causal=True), ref, 1e-10)
    # Padded keys do not change the other positions' outputs.
    kpm = np.zeros((2, 5), dtype=bool)
    kpm[:, 3:] = True
    out = layer(t(X), src_key_padding_mask=t(kpm)).detach().numpy()
    short = layer(t(X[:, :3].copy())).detach().numpy()
    np.testing.assert_allclose(out[:, :3], short, atol=1e-10)


def test_encoder_stack_clones_and_norm():
    layer = nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=rtorch.float64)
    randomize(layer)
    enc = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(8, dtype=rtorch.float64))
    assert len(enc.layers) == 3 and enc.num_layers == 3
    p0, p1 = enc.layers[0].linear1.weight, enc.layers[1].linear1.weight
    assert p0 is not p1 and p0 is not layer.linear1.weight
    np.testing.assert_array_equal(p0.detach().numpy(), p1.detach().numpy())
    with rtorch.no_grad():
        p0.add_(1.0)
    assert not np.allclose(p0.detach().numpy(), p1.detach().numpy())
    with rtorch.no_grad():
        p0.sub_(1.0)
    sd = arrays(layer)
    h = X
    for _ in range(3):
        h = np_encoder_layer(h, sd, 2, False, lambda a: np.maximum(a, 0))
    close(enc(t(X)), np_layer_norm(h, 1.0, 0.0), 1e-9)
    assert len(list(enc.parameters())) == 3 * 12 + 2


def test_encoder_detects_causal_mask():
    from rtorch.nn.modules.transformer import _detect_is_causal_mask

    causal = nn.Transformer.generate_square_subsequent_mask(4)
    assert _detect_is_causal_mask(causal)
    assert not _detect_is_causal_mask(causal.t())
    assert _detect_is_causal_mask(None, True)
    assert not _detect_is_causal_mask(causal, False)


def test_nested_tensor_warning_and_flags():
    with pytest.warns(UserWarning, match="self.use_nested_tensor is False because encoder_layer"):
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 1)
    assert enc.use_nested_tensor is False and enc.enable_nested_tensor is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 1)
        nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 1, enable_nested_tensor=False)
    assert enc.mask_check is True


def test_decoder_layer_matches_numpy():
    layer = nn.TransformerDecoderLayer(8, 2, 16, 0.0, batch_first=True, dtype=rtorch.float64)
    randomize(layer)
    sd = arrays(layer)
    mem = RNG.standard_normal((2, 7, 8))
    causal = np.triu(np.full((5, 5), -np.inf), 1)

    def n(h, i):
        return np_layer_norm(h, sd[f"norm{i}.weight"], sd[f"norm{i}.bias"])

    x = n(X + np_self_attention(X, sd, "self_attn.", 2, causal), 1)
    x = n(x + np_self_attention(x, sd, "multihead_attn.", 2, mem=mem), 2)
    ff = np.maximum(x @ sd["linear1.weight"].T + sd["linear1.bias"], 0)
    ref = n(x + ff @ sd["linear2.weight"].T + sd["linear2.bias"], 3)
    close(layer(t(X), t(mem), tgt_mask=t(causal)), ref, 1e-10)
    dec = nn.TransformerDecoder(layer, 2)
    assert len(dec.layers) == 2 and dec.norm is None
    assert tuple(dec(t(X), t(mem), tgt_mask=t(causal)).shape) == (2, 5, 8)


def test_transformer_forward_init_and_mask():
    with pytest.warns(UserWarning, match="enable_nested_tensor is True"):
        model = nn.Transformer(8, 2, 2, 1, 16, dropout=0.0)
    src, tgt = rtorch.randn(6, 3, 8), rtorch.randn(4, 3, 8)
    assert tuple(model(src, tgt).shape) == (4, 3, 8)
    assert tuple(model(src[:, 0], tgt[:, 0]).shape) == (4, 8)
    # xavier_uniform_ on every matrix, including the linear layers.
    w = model.encoder.layers[0].linear1.weight.detach().numpy()
    bound = math.sqrt(6 / (8 + 16))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    np.testing.assert_array_equal(
        mask.numpy(), np.array([[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]])
    )
    assert mask.dtype == rtorch.float32
    assert nn.Transformer.generate_square_subsequent_mask(2, dtype=rtorch.float64).dtype == (
        rtorch.float64
    )
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        model(src, rtorch.randn(4, 2, 8))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal"):
        model(src, rtorch.randn(4, 3, 6))


def test_errors_and_api():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    layer = nn.TransformerEncoderLayer(8, 2)
    assert layer.activation is F.relu and layer.activation_relu_or_gelu == 1
    assert nn.TransformerEncoderLayer(8, 2, activation="gelu").activation_relu_or_gelu == 2
    assert nn.TransformerEncoderLayer(8, 2, activation=nn.GELU()).activation_relu_or_gelu == 2
    assert layer.linear1.out_features == 2048 and layer.dropout.p == 0.1
    assert layer.norm1.eps == 1e-5


def test_train_mode_dropout_and_backward():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = rtorch.randn(5, 2, 8)
    rtorch.manual_seed(0)
    a = layer(x)
    rtorch.manual_seed(1)
    b = layer(x)
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())
    a.sum().backward()
    assert all(p.grad is not None for p in layer.parameters())
    layer.eval()
    close(layer(x), layer(x).detach().numpy(), 0)


def test_encoder_layer_gradcheck():
    layer = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, dtype=rtorch.float64)
    randomize(layer)
    x = t(RNG.standard_normal((3, 2, 4)), requires_grad=True)
    params = [layer.linear1.weight, layer.self_attn.in_proj_weight]

    def fn(x, w1, w_in):
        return layer(x)

    assert gradcheck(fn, (x, *params))


def test_loads_pytorch_encoder_layer():
    torch = pytest.importorskip("torch")
    for kw in ({}, {"batch_first": True, "norm_first": True, "activation": "gelu"}):
        tl = torch.nn.TransformerEncoderLayer(16, 4, 32, **kw).eval()
        rl = nn.TransformerEncoderLayer(16, 4, 32, **kw).eval()
        rl.load_state_dict({k: t(v.detach().numpy()) for k, v in tl.state_dict().items()})
        x = RNG.standard_normal((3, 5, 16) if kw else (5, 3, 16)).astype(np.float32)
        kpm = np.zeros((3, 5), dtype=bool)
        kpm[0, -1] = True
        with torch.no_grad():
            ref = tl(torch.tensor(x)).numpy()
            ref_mask = tl(torch.tensor(x), src_key_padding_mask=torch.tensor(kpm)).numpy()
        close(rl(t(x)), ref, 2e-5)
        close(rl(t(x), src_key_padding_mask=t(kpm)), ref_mask, 2e-5)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("mask", [None, "causal", "padding"])
def test_encoder_layer_no_grad_path_gives_the_graph_path_values(norm_first, activation, mask):
    # Without autograd the layer sums residuals in place and fuses the ReLU
    # into linear1's bias add; the values are those of the composed path
    # (which a hook forces) bit for bit, and the input is left alone.
    layer = nn.TransformerEncoderLayer(
        8, 2, 16, 0.0, activation=activation, batch_first=True, norm_first=norm_first
    )
    randomize(layer)
    x = t(X.astype(np.float32))
    before = x.numpy().copy()
    kw = {}
    if mask == "causal":
        kw["src_mask"] = nn.Transformer.generate_square_subsequent_mask(5)
    elif mask == "padding":
        kw["src_key_padding_mask"] = t(np.array([[False] * 4 + [True], [False] * 5]))
    graph = layer(x, **kw)
    assert graph.requires_grad
    with rtorch.no_grad():
        fast = layer(x, **kw)
        hook = layer.linear2.register_forward_hook(lambda m, i, o: None)
        composed = layer(x, **kw)
        hook.remove()
    assert not fast.requires_grad
    assert np.array_equal(fast.numpy(), composed.numpy())
    np.testing.assert_allclose(fast.numpy(), graph.detach().numpy(), rtol=1e-6, atol=1e-6)
    assert np.array_equal(x.numpy(), before)
    ref = np_encoder_layer(
        X,
        arrays(layer),
        2,
        norm_first,
        {"relu": lambda h: np.maximum(h, 0), "gelu": np_gelu}[activation],
        None if mask != "causal" else kw["src_mask"].numpy().astype(np.float64),
    )
    if mask != "padding":
        close(fast, ref, 2e-5)


def test_encoder_layer_no_grad_falls_back_for_hooks_and_odd_inputs():
    layer = nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True).eval()
    randomize(layer)
    x = t(X.astype(np.float32))
    with rtorch.no_grad():
        plain = layer(x).numpy()
        # Hooks run, and the outputs they keep are not overwritten later.
        seen = []
        hooks = [
            layer.linear1.register_forward_hook(lambda m, i, o: seen.append(o)),
            layer.self_attn.register_forward_hook(lambda m, i, o: seen.append(o[0])),
        ]
        hooked = layer(x).numpy()
        for h in hooks:
            h.remove()
        kept = [s.numpy().copy() for s in seen]
        attn = layer.self_attn(x, x, x)[0]
        pre_relu = layer.linear1(layer.norm1(x + attn)).numpy()
        # A non-contiguous input and an unbatched one.
        strided = layer(t(X.transpose(1, 0, 2).astype(np.float32)).transpose(0, 1)).numpy()
        single = layer(x[0]).numpy()
    assert [tuple(s.shape) for s in seen] == [(2, 5, 8), (2, 5, 16)]
    assert np.array_equal(kept[0], attn.numpy())
    assert (kept[1] < 0).any()
    np.testing.assert_allclose(kept[1], pre_relu, rtol=1e-5, atol=1e-6)
    assert np.array_equal(hooked, plain)
    np.testing.assert_allclose(strided, plain, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(single, plain[0], rtol=1e-5, atol=1e-6)
