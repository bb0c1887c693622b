"""scaled_dot_product_attention, multi_head_attention_forward and
MultiheadAttention against NumPy references; RReLU and Softmax2d."""

import math

import numpy as np
import pytest

import rtorch
import rtorch.nn.functional as F
from rtorch import nn
from rtorch.autograd import gradcheck

RNG = np.random.default_rng(0)


def t(a, **kw):
    return rtorch.tensor(np.asarray(a), **kw)


def close(x, ref, tol=1e-5):
    np.testing.assert_allclose(x.detach().numpy(), ref, rtol=tol, atol=tol)


def np_softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def np_sdpa(q, k, v, bias=None, scale=None):
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if bias is not None:
        s = s + bias
    with np.errstate(invalid="ignore"):
        p = np_softmax(s)
    p = np.nan_to_num(p, nan=0.0)  # fully masked rows give zeros
    return p @ v


# ---------------------------------------------------------------- scaled_dot_product_attention


Q = RNG.standard_normal((2, 3, 4, 8))
K = RNG.standard_normal((2, 3, 6, 8))
V = RNG.standard_normal((2, 3, 6, 5))


def test_sdpa_plain_and_scale():
    close(F.scaled_dot_product_attention(t(Q), t(K), t(V)), np_sdpa(Q, K, V), 1e-10)
    close(
        F.scaled_dot_product_attention(t(Q), t(K), t(V), scale=0.3),
        np_sdpa(Q, K, V, scale=0.3),
        1e-10,
    )


def test_sdpa_float32():
    out = F.scaled_dot_product_attention(t(Q, dtype=rtorch.float32), t(K).float(), t(V).float())
    assert out.dtype == rtorch.float32
    close(out, np_sdpa(Q, K, V), 1e-5)


def test_sdpa_bool_mask_true_takes_part():
    mask = RNG.random((4, 6)) > 0.4
    mask[:, 0] = True
    ref = np_sdpa(Q, K, V, np.where(mask, 0.0, -np.inf))
    close(F.scaled_dot_product_attention(t(Q), t(K), t(V), attn_mask=t(mask)), ref, 1e-10)


def test_sdpa_float_mask_is_added():
    bias = RNG.standard_normal((2, 1, 4, 6))
    close(
        F.scaled_dot_product_attention(t(Q), t(K), t(V), attn_mask=t(bias)),
        np_sdpa(Q, K, V, bias),
        1e-10,
    )


def test_sdpa_causal_is_top_left_lower_triangle():
    causal = np.tril(np.ones((4, 6), dtype=bool))
    ref = np_sdpa(Q, K, V, np.where(causal, 0.0, -np.inf))
    close(F.scaled_dot_product_attention(t(Q), t(K), t(V), is_causal=True), ref, 1e-10)


def test_sdpa_fully_masked_row_gives_zeros():
    mask = np.ones((4, 6), dtype=bool)
    mask[1] = False
    out = F.scaled_dot_product_attention(t(Q), t(K), t(V), attn_mask=t(mask)).numpy()
    assert np.all(out[:, :, 1] == 0)
    assert np.all(np.isfinite(out))


def test_sdpa_gqa_repeats_kv_heads():
    k2, v2 = K[:, :1], V[:, :1]
    ref = np_sdpa(Q, np.repeat(k2, 3, axis=1), np.repeat(v2, 3, axis=1))
    out = F.scaled_dot_product_attention(t(Q), t(k2), t(v2), enable_gqa=True)
    close(out, ref, 1e-10)


def test_sdpa_dropout():
    out = F.scaled_dot_product_attention(t(Q), t(K), t(V), dropout_p=1.0)
    assert np.all(out.numpy() == 0)
    rtorch.manual_seed(3)
    a = F.scaled_dot_product_attention(t(Q), t(K), t(V), dropout_p=0.5)
    rtorch.manual_seed(3)
    b = F.scaled_dot_product_attention(t(Q), t(K), t(V), dropout_p=0.5)
    close(a, b.numpy(), 0)
    assert not np.allclose(a.numpy(), np_sdpa(Q, K, V))


def test_sdpa_errors():
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set when is_causal"):
        F.scaled_dot_product_attention(
            t(Q), t(K), t(V), attn_mask=rtorch.ones(4, 6, dtype=rtorch.bool), is_causal=True
        )
    with pytest.raises(RuntimeError, match="to have the same dtype"):
        F.scaled_dot_product_attention(t(Q), t(K), t(V).float())


def test_sdpa_gradcheck():
    q = t(RNG.standard_normal((1, 2, 3, 4)), requires_grad=True)
    k = t(RNG.standard_normal((1, 2, 5, 4)), requires_grad=True)
    v = t(RNG.standard_normal((1, 2, 5, 3)), requires_grad=True)
    bias = t(RNG.standard_normal((3, 5)))
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, bias), (q, k, v))
    assert gradcheck(
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True), (q, k, v)
    )


# ---------------------------------------------------------------- multi-head attention


def np_mha(
    q, k, v, w_q, w_k, w_v, b_in, w_o, b_o, heads, kpm=None, mask=None, bias_kv=None,
    zero_attn=False,
):  # fmt: skip
    """Sequence-first (L, N, E) multi-head attention; masks are additive floats."""
    e = q.shape[-1]
    b_q, b_k, b_v = (np.zeros(e),) * 3 if b_in is None else np.split(b_in, 3)
    qp, kp, vp = q @ w_q.T + b_q, k @ w_k.T + b_k, v @ w_v.T + b_v
    n = q.shape[1]
    if bias_kv is not None:
        kp = np.concatenate([kp, np.broadcast_to(bias_kv[0], (1, n, e))])
        vp = np.concatenate([vp, np.broadcast_to(bias_kv[1], (1, n, e))])
    hd = e // heads

    def split(x):  # (S, N, E) -> (N, H, S, hd)
        return x.reshape(x.shape[0], n, heads, hd).transpose(1, 2, 0, 3)

    qh, kh, vh = split(qp), split(kp), split(vp)
    if zero_attn:
        kh = np.concatenate([kh, np.zeros(kh.shape[:2] + (1, hd))], 2)
        vh = np.concatenate([vh, np.zeros(vh.shape[:2] + (1, hd))], 2)
    s_len = kh.shape[2]
    bias = np.zeros((n, heads, q.shape[0], s_len))
    if mask is not None:
        pad = s_len - mask.shape[-1]
        m = np.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, pad)])
        bias = bias + (m.reshape(n, heads, q.shape[0], s_len) if m.ndim == 3 else m)
    if kpm is not None:
        m = np.pad(kpm, [(0, 0), (0, s_len - kpm.shape[1])])
        bias = bias + m[:, None, None, :]
    scores = qh @ np.swapaxes(kh, -1, -2) / math.sqrt(hd) + bias
    p = np_softmax(scores)
    out = (p @ vh).transpose(2, 0, 1, 3).reshape(q.shape[0], n, e)
    return out @ w_o.T + b_o, p


def load(mha, **arrays):
    with rtorch.no_grad():
        for name, value in arrays.items():
            target = mha
            *path, last = name.split(".")
            for p in path:
                target = getattr(target, p)
            getattr(target, last).copy_(t(value).to(getattr(target, last).dtype))


def make_mha(e=8, heads=2, dtype=rtorch.float64, **kw):
    mha = nn.MultiheadAttention(e, heads, dtype=dtype, **kw)
    return mha


def weights_of(mha):
    sd = {k: v.detach().numpy() for k, v in mha.state_dict().items()}
    e = mha.embed_dim
    if mha._qkv_same_embed_dim:
        w_q, w_k, w_v = np.split(sd["in_proj_weight"], 3)
    else:
        w_q, w_k, w_v = sd["q_proj_weight"], sd["k_proj_weight"], sd["v_proj_weight"]
    b_in = sd.get("in_proj_bias")
    b_o = sd.get("out_proj.bias", np.zeros(e))
    return w_q, w_k, w_v, b_in, sd["out_proj.weight"], b_o


def randomize(mha):
    with rtorch.no_grad():
        for p in mha.parameters():
            p.copy_(t(RNG.standard_normal(tuple(p.shape)) * 0.5))


L, S, N, E = 4, 6, 3, 8
QS = RNG.standard_normal((L, N, E))
KS = RNG.standard_normal((S, N, E))
VS = RNG.standard_normal((S, N, E))


@pytest.mark.parametrize("bias", [True, False])
def test_mha_matches_numpy(bias):
    mha = make_mha(bias=bias)
    randomize(mha)
    ref, p = np_mha(QS, KS, VS, *weights_of(mha), 2)
    out, w = mha(t(QS), t(KS), t(VS))
    close(out, ref, 1e-10)
    close(w, p.mean(1), 1e-10)
    _, w_all = mha(t(QS), t(KS), t(VS), average_attn_weights=False)
    close(w_all, p, 1e-10)
    out2, none = mha(t(QS), t(KS), t(VS), need_weights=False)
    assert none is None
    close(out2, ref, 1e-10)


def test_mha_self_attention_packed_paths_agree():
    mha = make_mha()
    randomize(mha)
    x = t(QS)
    ref, _ = np_mha(QS, QS, QS, *weights_of(mha), 2)
    close(mha(x, x, x)[0], ref, 1e-10)
    ref_kv, _ = np_mha(QS, KS, KS, *weights_of(mha), 2)
    kv = t(KS)
    close(mha(x, kv, kv)[0], ref_kv, 1e-10)


def test_mha_masks():
    mha = make_mha()
    randomize(mha)
    kpm = RNG.random((N, S)) > 0.6
    kpm[:, 0] = False
    mask = RNG.random((L, S)) > 0.8
    kpm_f = np.where(kpm, -np.inf, 0.0)
    ref, p = np_mha(QS, KS, VS, *weights_of(mha), 2, kpm=kpm_f, mask=np.where(mask, -np.inf, 0))
    for need in (False, True):
        out, w = mha(
            t(QS), t(KS), t(VS), key_padding_mask=t(kpm), attn_mask=t(mask), need_weights=need
        )
        close(out, ref, 1e-10)
    close(w, p.mean(1), 1e-10)
    # Float key padding mask, bool attn mask (True = masked out), 3-D mask.
    bool_mask = RNG.random((L, S)) > 0.7
    bool_mask[:, 0] = False
    ref, _ = np_mha(
        QS, KS, VS, *weights_of(mha), 2, kpm=kpm_f, mask=np.where(bool_mask, -np.inf, 0.0)
    )
    with pytest.warns(UserWarning, match="Support for mismatched key_padding_mask and attn_mask"):
        out, _ = mha(t(QS), t(KS), t(VS), key_padding_mask=t(kpm_f), attn_mask=t(bool_mask))
    close(out, ref, 1e-10)
    mask3 = RNG.standard_normal((N * 2, L, S))
    ref, _ = np_mha(QS, KS, VS, *weights_of(mha), 2, mask=mask3)
    close(mha(t(QS), t(KS), t(VS), attn_mask=t(mask3), need_weights=False)[0], ref, 1e-10)
    close(mha(t(QS), t(KS), t(VS), attn_mask=t(mask3))[0], ref, 1e-10)


def test_mha_causal_hint():
    mha = make_mha()
    randomize(mha)
    causal = np.triu(np.full((L, L), -np.inf), 1)
    ref, _ = np_mha(QS, QS, QS, *weights_of(mha), 2, mask=causal)
    x = t(QS)
    out, _ = mha(x, x, x, attn_mask=t(causal), is_causal=True, need_weights=False)
    close(out, ref, 1e-10)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        mha(x, x, x, is_causal=True)


def test_mha_bias_kv_and_zero_attn():
    mha = make_mha(add_bias_kv=True, add_zero_attn=True)
    randomize(mha)
    bias_kv = (mha.bias_k.detach().numpy()[0, 0], mha.bias_v.detach().numpy()[0, 0])
    kpm = np.zeros((N, S))
    kpm[0, -1] = -np.inf
    mask = RNG.standard_normal((L, S))
    ref, p = np_mha(
        QS, KS, VS, *weights_of(mha), 2, kpm=kpm, mask=mask,
        bias_kv=bias_kv, zero_attn=True,
    )  # fmt: skip
    out, w = mha(t(QS), t(KS), t(VS), key_padding_mask=t(kpm), attn_mask=t(mask))
    close(out, ref, 1e-10)
    assert tuple(w.shape) == (N, L, S + 2)
    close(w, p.mean(1), 1e-10)


def test_mha_separate_kdim_vdim():
    mha = make_mha(kdim=5, vdim=3)
    randomize(mha)
    assert mha.in_proj_weight is None
    assert tuple(mha.k_proj_weight.shape) == (8, 5)
    k, v = RNG.standard_normal((S, N, 5)), RNG.standard_normal((S, N, 3))
    ref, _ = np_mha(QS, k, v, *weights_of(mha), 2)
    close(mha(t(QS), t(k), t(v))[0], ref, 1e-10)


def test_mha_batch_first_and_unbatched():
    mha = make_mha(batch_first=True)
    randomize(mha)
    ref, p = np_mha(QS, KS, VS, *weights_of(mha), 2)
    bf = [t(a.transpose(1, 0, 2).copy()) for a in (QS, KS, VS)]
    out, w = mha(*bf)
    close(out, ref.transpose(1, 0, 2), 1e-10)
    close(w, p.mean(1), 1e-10)
    out1, w1 = mha(t(QS[:, 0]), t(KS[:, 0]), t(VS[:, 0]))
    close(out1, ref[:, 0], 1e-10)
    close(w1, p.mean(1)[0], 1e-10)


@pytest.mark.parametrize("bias", [True, False])
def test_mha_batch_first_self_attention_without_masks(bias):
    # Batch-first self-attention without masks or weights takes the path in
    # the (N, L) layout: same values as NumPy, and gradients (inputs and
    # parameters) as the sequence-first module with the same weights.
    mha = make_mha(batch_first=True, bias=bias)
    randomize(mha)
    ref, _ = np_mha(QS, QS, QS, *weights_of(mha), 2)
    x = t(QS.transpose(1, 0, 2).copy()).requires_grad_()
    out, none = mha(x, x, x, need_weights=False)
    assert none is None
    close(out, ref.transpose(1, 0, 2), 1e-10)
    seq = make_mha(bias=bias)
    seq.load_state_dict(mha.state_dict())
    xs = t(QS).requires_grad_()
    out_s = seq(xs, xs, xs, need_weights=False)[0]
    g = t(RNG.standard_normal(QS.shape))
    grads = rtorch.autograd.grad(out, [x, *mha.parameters()], g.transpose(0, 1))
    grads_s = rtorch.autograd.grad(out_s, [xs, *seq.parameters()], g)
    close(grads[0], grads_s[0].transpose(0, 1).numpy(), 1e-10)
    for a, b in zip(grads[1:], grads_s[1:], strict=True):
        close(a, b.numpy(), 1e-10)
    assert gradcheck(lambda a: mha(a, a, a, need_weights=False)[0], (x,))


def test_linear_folds_leading_dims_into_one_gemm():
    # A contiguous (*, in) input with a bias runs as one addmm on its rows.
    x = t(RNG.standard_normal((2, 3, 4))).requires_grad_()
    w = t(RNG.standard_normal((5, 4))).requires_grad_()
    b = t(RNG.standard_normal(5)).requires_grad_()
    close(F.linear(x, w, b), x.detach().numpy() @ w.detach().numpy().T + b.detach().numpy(), 1e-12)
    assert gradcheck(F.linear, (x, w, b))
    assert F.linear(t(np.zeros((2, 0, 4))), w, b).shape == (2, 0, 5)


def test_mha_module_api():
    mha = nn.MultiheadAttention(8, 2)
    assert list(mha.state_dict()) == [
        "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias",
    ]  # fmt: skip
    assert type(mha.out_proj).__name__ == "NonDynamicallyQuantizableLinear"
    assert isinstance(mha.out_proj, nn.Linear)
    assert np.all(mha.in_proj_bias.detach().numpy() == 0)
    assert np.all(mha.out_proj.bias.detach().numpy() == 0)
    bound = math.sqrt(6 / (8 + 24))
    w = mha.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > bound * 0.8
    assert repr(mha) == (
        "MultiheadAttention(\n  (out_proj): NonDynamicallyQuantizableLinear(in_features=8, "
        "out_features=8, bias=True)\n)"
    )
    assert mha.bias_k is None and mha.head_dim == 4
    sep = nn.MultiheadAttention(8, 2, kdim=4, add_bias_kv=True, bias=False)
    assert list(sep.state_dict()) == [
        "q_proj_weight", "k_proj_weight", "v_proj_weight", "bias_k", "bias_v", "out_proj.weight",
    ]  # fmt: skip


def test_mha_merge_masks():
    mha = nn.MultiheadAttention(4, 2, batch_first=True)
    q = rtorch.zeros(3, 5, 4)
    am = rtorch.randn(5, 5)
    kpm = rtorch.randn(3, 5)
    merged, kind = mha.merge_masks(am, kpm, q)
    assert kind == 2 and tuple(merged.shape) == (3, 2, 5, 5)
    ref = am.numpy()[None, None] + kpm.numpy()[:, None, None, :]
    np.testing.assert_allclose(merged.numpy(), np.broadcast_to(ref, (3, 2, 5, 5)), rtol=1e-6)
    assert mha.merge_masks(None, kpm, q) == (kpm, 1)
    assert mha.merge_masks(None, None, q) == (None, None)


def test_mha_errors():
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="embed_dim and num_heads must be greater than 0"):
        nn.MultiheadAttention(0, 1)
    mha = make_mha()
    with pytest.raises(RuntimeError, match=r"The shape of the 2D attn_mask is"):
        mha(t(QS), t(KS), t(VS), attn_mask=rtorch.zeros(L, L, dtype=rtorch.float64))
    with pytest.raises(AssertionError, match="expected `key_padding_mask` to be `None` or 2-D"):
        mha(t(QS), t(KS), t(VS), key_padding_mask=rtorch.zeros(S, dtype=rtorch.bool))
    with pytest.raises(AssertionError, match="only bool and floating types of attn_mask"):
        mha(t(QS), t(KS), t(VS), attn_mask=rtorch.zeros(L, S, dtype=rtorch.int64))
    with pytest.raises(AssertionError, match="was expecting embedding dimension of 8"):
        mha(t(QS[..., :4]), t(KS[..., :4]), t(VS[..., :4]))


def test_mha_functional_gradcheck():
    e, heads = 4, 2
    q = t(RNG.standard_normal((3, 2, e)), requires_grad=True)
    k = t(RNG.standard_normal((5, 2, e)), requires_grad=True)
    w_in = t(RNG.standard_normal((3 * e, e)) * 0.5, requires_grad=True)
    b_in = t(RNG.standard_normal(3 * e) * 0.1, requires_grad=True)
    w_o = t(RNG.standard_normal((e, e)) * 0.5, requires_grad=True)
    kpm = t(np.array([[False] * 4 + [True], [False] * 5]))

    def fn(q, k, w_in, b_in, w_o):
        out, w = F.multi_head_attention_forward(
            q, k, k, e, heads, w_in, b_in, None, None, False, 0.0, w_o, None,
            key_padding_mask=kpm,
        )  # fmt: skip
        return out, w

    assert gradcheck(fn, (q, k, w_in, b_in, w_o))


def test_mha_dropout_only_in_training():
    mha = make_mha(dropout=0.5).eval()
    a = mha(t(QS), t(KS), t(VS))[0]
    b = mha(t(QS), t(KS), t(VS))[0]
    close(a, b.detach().numpy(), 0)
    mha.train()
    rtorch.manual_seed(0)
    c = mha(t(QS), t(KS), t(VS))[0]
    assert not np.allclose(c.detach().numpy(), a.detach().numpy())


def test_mha_matches_torch():
    torch = pytest.importorskip("torch")
    tm = torch.nn.MultiheadAttention(8, 2, add_bias_kv=True, batch_first=True).double()
    rm = nn.MultiheadAttention(8, 2, add_bias_kv=True, batch_first=True, dtype=rtorch.float64)
    rm.load_state_dict({k: t(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = RNG.standard_normal((3, 5, 8))
    kpm = RNG.random((3, 5)) > 0.7
    kpm[:, 0] = False
    to, tw = tm(*(torch.tensor(x),) * 3, key_padding_mask=torch.tensor(kpm))
    ro, rw = rm(*(t(x),) * 3, key_padding_mask=t(kpm))
    close(ro, to.detach().numpy(), 1e-10)
    close(rw, tw.detach().numpy(), 1e-10)


# ---------------------------------------------------------------- RReLU, Softmax2d


def test_rrelu_eval_and_train():
    x = t(np.array([-2.0, -1.0, 0.0, 3.0]))
    m = nn.RReLU(0.1, 0.3)
    close(m.eval()(x), np.array([-0.4, -0.2, 0.0, 3.0]), 1e-12)
    m.train()
    xs = t(-np.abs(RNG.standard_normal(1000)) - 0.1)
    slopes = (m(xs) / xs).numpy()
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.03
    pos = t(np.abs(RNG.standard_normal(10)))
    close(m(pos), pos.numpy(), 0)
    assert repr(nn.RReLU(0.1, 0.3, inplace=True)) == "RReLU(lower=0.1, upper=0.3, inplace=True)"
    y = x.clone()
    F.rrelu_(y)
    close(y, np.where(x.numpy() > 0, x.numpy(), x.numpy() * (1 / 8 + 1 / 3) / 2), 1e-12)


def test_softmax2d():
    x = RNG.standard_normal((2, 3, 4, 5))
    close(nn.Softmax2d()(t(x)), np_softmax(x, 1), 1e-12)
    close(nn.Softmax2d()(t(x[0])), np_softmax(x[0], 0), 1e-12)
    with pytest.raises(ValueError, match="Softmax2d: expected input to be 3D or 4D, got 2D"):
        nn.Softmax2d()(t(x[0, 0]))
