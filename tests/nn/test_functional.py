"""nn.functional against NumPy references, PyTorch's errors, and float64 gradchecks."""

import math

import numpy as np
import pytest

import rtorch
import rtorch.nn.functional as F
from rtorch.autograd import gradcheck

RNG = np.random.default_rng(0)


def t(a, **kw):
    return rtorch.tensor(np.asarray(a), **kw)


def close(x, ref, tol=1e-5):
    np.testing.assert_allclose(x.detach().numpy(), ref, rtol=tol, atol=tol)


X = RNG.standard_normal((4, 5)) * 3


def _softplus(x, beta=1.0):
    return np.log1p(np.exp(beta * x)) / beta


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


_ERF = np.vectorize(math.erf)

ACTIVATIONS = [
    (F.relu, {}, lambda x: np.maximum(x, 0)),
    (F.relu6, {}, lambda x: np.clip(x, 0, 6)),
    (F.leaky_relu, {"negative_slope": 0.2}, lambda x: np.where(x > 0, x, 0.2 * x)),
    (F.elu, {"alpha": 0.5}, lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    (
        F.selu,
        {},
        lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x)),
    ),
    (F.celu, {"alpha": 2.0}, lambda x: np.maximum(x, 0) + np.minimum(0, 2 * np.expm1(x / 2))),
    (F.gelu, {}, lambda x: 0.5 * x * (1 + _ERF(x / math.sqrt(2)))),
    (
        F.gelu,
        {"approximate": "tanh"},
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    ),
    (F.silu, {}, lambda x: x * _sigmoid(x)),
    (F.mish, {}, lambda x: x * np.tanh(_softplus(x))),
    (F.softplus, {"beta": 2.0}, lambda x: _softplus(x, 2.0)),
    (F.softsign, {}, lambda x: x / (1 + np.abs(x))),
    (F.hardtanh, {"min_val": -2.0, "max_val": 1.5}, lambda x: np.clip(x, -2, 1.5)),
    (F.hardsigmoid, {}, lambda x: np.clip(x + 3, 0, 6) / 6),
    (F.hardswish, {}, lambda x: x * np.clip(x + 3, 0, 6) / 6),
    (F.sigmoid, {}, _sigmoid),
    (F.tanh, {}, np.tanh),
    (F.logsigmoid, {}, lambda x: -np.log1p(np.exp(-x))),
    (F.softshrink, {"lambd": 1.0}, lambda x: np.where(x > 1, x - 1, np.where(x < -1, x + 1, 0))),
    (F.hardshrink, {"lambd": 1.0}, lambda x: np.where(np.abs(x) > 1, x, 0)),
    (F.tanhshrink, {}, lambda x: x - np.tanh(x)),
    (F.threshold, {"threshold": 0.5, "value": -7.0}, lambda x: np.where(x > 0.5, x, -7.0)),
    (F.glu, {"dim": 0}, lambda x: x[:2] * _sigmoid(x[2:])),
    (F.softmax, {"dim": 1}, lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (F.log_softmax, {"dim": 0}, lambda x: x - np.log(np.exp(x).sum(0, keepdims=True))),
    (F.softmin, {"dim": 1}, lambda x: np.exp(-x) / np.exp(-x).sum(1, keepdims=True)),
]


@pytest.mark.parametrize(
    "fn,kw,ref", ACTIVATIONS, ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(ACTIVATIONS)]
)
def test_activation_matches_numpy_and_gradchecks(fn, kw, ref):
    close(fn(t(X, dtype=rtorch.float64), **kw), ref(X), 1e-9)
    # Points away from kinks, where central differences are exact enough.
    x = t(X + 0.013, dtype=rtorch.float64, requires_grad=True)
    assert gradcheck(lambda a: fn(a, **kw), (x,))


@pytest.mark.parametrize("fn", [F.relu, F.elu, F.leaky_relu, F.hardtanh, F.silu])
def test_inplace_activation_writes_into_input(fn):
    x = t(X.astype(np.float32))
    before = fn(x.clone())
    out = fn(x, inplace=True)
    assert out.data_ptr() == x.data_ptr()
    close(x, before.numpy())


def _mask_grad(x, g, th):
    # PyTorch's threshold_backward: x <= th ? 0 : g (a NaN x passes g).
    return np.where(x <= th, 0.0, g)


@pytest.mark.parametrize("dtype", [rtorch.float32, rtorch.float64])
@pytest.mark.parametrize("inplace", [False, True])
def test_relu_and_threshold_backward_mask(dtype, inplace):
    x = np.array([np.nan, -1.0, 0.0, 0.5, 0.75, 2.0, -0.0, np.inf] * 5)
    g = RNG.standard_normal(x.shape)
    for fn, th in [(F.relu, 0.0), (lambda a, inplace: F.threshold(a, 0.5, -3.0, inplace), 0.5)]:
        a = t(x, dtype=dtype, requires_grad=True)
        b = a.clone() if inplace else a
        fn(b, inplace=inplace).backward(t(g, dtype=dtype))
        close(a.grad, _mask_grad(x, g, th))
        # The backward of a sum: one broadcast gradient value.
        a.grad = None
        fn(a.clone() if inplace else a, inplace=inplace).sum().backward()
        close(a.grad, _mask_grad(x, np.ones_like(x), th))


def test_relu_backward_layouts_and_double_backward():
    x = RNG.standard_normal((6, 7))
    g = RNG.standard_normal((7, 6))
    # Transposed input and a gradient in another memory order.
    a = t(x, requires_grad=True)
    F.relu(a.t()).backward(t(g))
    close(a.grad, _mask_grad(x.T, g, 0.0).T, 1e-12)
    a.grad = None
    F.relu(a).backward(t(g).t())
    close(a.grad, _mask_grad(x, g.T, 0.0), 1e-12)
    # create_graph: the gradient is differentiable in the incoming gradient.
    xa = t(x + 0.013, requires_grad=True)
    gg = t(g.T, requires_grad=True)
    (gx,) = rtorch.autograd.grad(F.relu(xa), xa, gg, create_graph=True)
    close(gx, _mask_grad(x + 0.013, g.T, 0.0), 1e-12)
    (ggrad,) = rtorch.autograd.grad(gx.sum() * 2, gg)
    close(ggrad, np.where(x + 0.013 > 0, 2.0, 0.0), 1e-12)
    assert rtorch.autograd.gradgradcheck(F.relu, (xa,))
    assert rtorch.autograd.gradgradcheck(lambda v: F.threshold(v, 0.5, 1.0), (xa,))


@pytest.mark.parametrize("dtype", [rtorch.float32, rtorch.float64])
def test_hardtanh_and_relu6_backward_mask(dtype):
    # PyTorch's hardtanh_backward: (x <= min || x >= max) ? 0 : g, so the
    # bounds themselves get 0 and a NaN passes g.
    x = np.array([np.nan, -np.inf, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0, 7.0, np.inf] * 3)
    g = RNG.standard_normal(x.shape)
    for fn, lo, hi in [(F.hardtanh, -1.0, 1.0), (F.relu6, 0.0, 6.0)]:
        for inplace in (False, True):
            a = t(x, dtype=dtype, requires_grad=True)
            y = fn(a.clone() if inplace else a, inplace=inplace)
            assert type(y.grad_fn).__name__ == "HardtanhBackward0"
            close(y, np.where(np.isnan(x), np.nan, np.clip(x, lo, hi)))
            y.backward(t(g, dtype=dtype))
            close(a.grad, np.where((x <= lo) | (x >= hi), 0.0, g))
    xa = t(X + 0.013, requires_grad=True)
    assert rtorch.autograd.gradgradcheck(lambda v: F.hardtanh(v, -2.0, 1.5), (xa,))


def test_hardtanh_dtypes():
    # Integers stay integers, the bounds truncated to them; bool is refused.
    out = F.hardtanh(rtorch.tensor([-2, 0, 3]), -0.5, 1.5)
    assert out.dtype == rtorch.int64 and out.tolist() == [0, 0, 1]
    assert F.relu6(rtorch.tensor([-2, 0, 7])).tolist() == [0, 0, 6]
    assert F.hardtanh(t([1.0, 2.0], dtype=rtorch.float16)).dtype == rtorch.float16
    with pytest.raises(NotImplementedError, match="Bool inputs not supported for hardtanh"):
        F.hardtanh(rtorch.tensor([True]))


def test_prelu_per_channel():
    x = RNG.standard_normal((2, 3, 4))
    w = np.array([0.1, 0.2, 0.3])
    close(F.prelu(t(x), t(w)), np.where(x > 0, x, w[None, :, None] * x), 1e-9)


def test_activation_argument_errors():
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(rtorch.ones(1), 2.0, 1.0)
    with pytest.raises(
        RuntimeError, match="Halving dimension must be even, but dimension 1 is size 5"
    ):
        F.glu(rtorch.ones(3, 5))
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        F.gelu(rtorch.ones(1), approximate="fast")
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        F.softmax(rtorch.ones(2, 3))


def test_linear_and_bilinear_match_numpy():
    x, w, b = RNG.standard_normal((3, 4)), RNG.standard_normal((2, 4)), RNG.standard_normal(2)
    close(F.linear(t(x), t(w), t(b)), x @ w.T + b, 1e-9)
    x2, wb = RNG.standard_normal((3, 5)), RNG.standard_normal((2, 4, 5))
    close(F.bilinear(t(x), t(x2), t(wb), t(b)), np.einsum("bi,oij,bj->bo", x, wb, x2) + b, 1e-9)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        F.linear(rtorch.ones(3, 4), rtorch.ones(2, 3))


def test_dropout_training_scales_kept_and_eval_is_identity():
    rtorch.manual_seed(0)
    x = rtorch.ones(20000)
    y = F.dropout(x, 0.25)
    vals = np.unique(y.numpy())
    np.testing.assert_allclose(vals, [0.0, 1 / 0.75], rtol=1e-6)
    assert abs((y.numpy() == 0).mean() - 0.25) < 0.02
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 1.0).abs().sum().item() == 0
    with pytest.raises(
        ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"
    ):
        F.dropout(x, 1.5)
    z = rtorch.ones(100)
    assert F.dropout(z, 0.5, inplace=True).data_ptr() == z.data_ptr()


def test_dropout2d_drops_whole_channels():
    rtorch.manual_seed(1)
    y = F.dropout2d(rtorch.ones(8, 16, 3, 3), 0.5).numpy()
    per_channel = y.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))


def test_alpha_dropout_keeps_mean_and_variance():
    rtorch.manual_seed(2)
    x = rtorch.randn(200000)
    y = F.alpha_dropout(x, 0.2, training=True).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02


def test_one_hot_values_and_errors():
    assert F.one_hot(rtorch.tensor([0, 2, 1])).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert F.one_hot(rtorch.tensor([[1]]), 4).shape == (1, 1, 4)
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes."):
        F.one_hot(rtorch.tensor([1, 5]), 3)
    with pytest.raises(RuntimeError, match="only applicable to index tensor"):
        F.one_hot(rtorch.tensor([1.0]))


def test_normalize_cosine_similarity_pairwise_distance():
    a, b = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    close(F.normalize(t(a), dim=1), a / np.linalg.norm(a, axis=1, keepdims=True), 1e-9)
    close(F.normalize(t(a), p=1, dim=0), a / np.abs(a).sum(0, keepdims=True), 1e-9)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    close(F.cosine_similarity(t(a), t(b)), cos, 1e-9)
    close(F.pairwise_distance(t(a), t(b)), np.linalg.norm(a - b + 1e-6, axis=1), 1e-9)
    close(F.pairwise_distance(t(a), t(b), p=1), np.abs(a - b + 1e-6).sum(1), 1e-9)
    assert F.normalize(rtorch.zeros(2, 3)).abs().sum().item() == 0
    # p=0 counts the nonzero entries and p=-inf takes the smallest magnitude.
    close(F.pairwise_distance(t(a), t(b), p=0), np.full(3, 4.0), 1e-12)
    close(F.normalize(t(a), p=0), a / 4, 1e-9)
    close(F.normalize(t(a), p=-math.inf), a / np.abs(a).min(1, keepdims=True), 1e-9)


def test_normalize_has_zero_gradient_at_zero_vector():
    z = rtorch.zeros(1, 3, dtype=rtorch.float64, requires_grad=True)
    F.normalize(z).sum().backward()
    assert not np.isnan(z.grad.numpy()).any()


def test_embedding_lookup_padding_and_max_norm():
    w = rtorch.tensor(RNG.standard_normal((5, 3)), requires_grad=True)
    idx = rtorch.tensor([[0, 2], [2, 4]])
    out = F.embedding(idx, w, padding_idx=2)
    close(out, w.detach().numpy()[idx.numpy()], 1e-12)
    out.sum().backward()
    assert w.grad[2].abs().sum().item() == 0
    np.testing.assert_allclose(w.grad[0].numpy(), 1.0)
    big = rtorch.full((3, 2), 10.0)
    F.embedding(rtorch.tensor([1]), big, max_norm=1.0)
    assert abs(float(big[1].norm()) - 1.0) < 1e-5 and big[0, 0].item() == 10.0
    with pytest.raises(IndexError, match="index out of range in self"):
        F.embedding(rtorch.tensor([5]), rtorch.ones(3, 2))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_modes_match_numpy(mode):
    x = RNG.standard_normal((2, 3, 5))
    np_mode = {
        "constant": "constant",
        "reflect": "reflect",
        "replicate": "edge",
        "circular": "wrap",
    }
    got = F.pad(t(x), (2, 1, 1, 2), mode=mode)
    close(got, np.pad(x, [(0, 0), (1, 2), (2, 1)], mode=np_mode[mode]), 1e-12)


def test_pad_constant_value_negative_pad_and_errors():
    x = rtorch.arange(6.0).reshape(2, 3)
    assert F.pad(x, (1, -1), value=9.0).tolist() == [[9.0, 0.0, 1.0], [9.0, 3.0, 4.0]]
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        F.pad(x, (1,))
    with pytest.raises(RuntimeError, match="Padding length should be less than or equal"):
        F.pad(x, (1, 1, 1, 1, 1, 1))


# ------------------------------------------------------------------------ losses

A = RNG.standard_normal((4, 3))
B = RNG.standard_normal((4, 3))


def _red(loss, reduction):
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


REDUCTIONS = ["none", "mean", "sum"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_match_numpy(reduction):
    d = A - B
    ad = np.abs(d)
    cases = [
        (F.l1_loss(t(A), t(B), reduction=reduction), ad),
        (F.mse_loss(t(A), t(B), reduction=reduction), d * d),
        (
            F.smooth_l1_loss(t(A), t(B), reduction=reduction, beta=0.5),
            np.where(ad < 0.5, 0.5 * d * d / 0.5, ad - 0.25),
        ),
        (
            F.huber_loss(t(A), t(B), reduction=reduction, delta=0.7),
            np.where(ad < 0.7, 0.5 * d * d, 0.7 * (ad - 0.35)),
        ),
        (
            F.soft_margin_loss(t(A), t(np.sign(B)), reduction=reduction),
            np.log1p(np.exp(-np.sign(B) * A)),
        ),
    ]
    for got, ref in cases:
        close(got, _red(ref, reduction), 1e-9)


def test_invalid_reduction_and_size_warnings():
    with pytest.raises(ValueError, match="foo is not a valid value for reduction"):
        F.mse_loss(rtorch.ones(2), rtorch.ones(2), reduction="foo")
    with pytest.warns(UserWarning, match=r"Using a target size \(torch.Size\(\[3\]\)\)"):
        F.mse_loss(rtorch.ones(2, 3), rtorch.ones(3))
    with pytest.raises(RuntimeError, match="huber_loss does not support non-positive values"):
        F.huber_loss(rtorch.ones(2), rtorch.ones(2), delta=0)


def _log_softmax(x, axis=1):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


LOGITS = RNG.standard_normal((6, 4))
TARGET = np.array([0, 3, 1, 2, 3, 1])
WEIGHT = np.array([0.5, 1.0, 2.0, 1.5])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_and_cross_entropy_with_weight_and_ignore_index(reduction, weighted):
    target = TARGET.copy()
    target[1] = -100
    logp = _log_softmax(LOGITS)
    w = WEIGHT if weighted else np.ones(4)
    valid = target != -100
    safe = np.where(valid, target, 0)
    per = -logp[np.arange(6), safe] * w[safe] * valid
    ref = {"none": per, "sum": per.sum(), "mean": per.sum() / (w[safe] * valid).sum()}[reduction]
    wt = t(WEIGHT) if weighted else None
    close(F.nll_loss(t(logp), t(target), wt, reduction=reduction), ref, 1e-9)
    close(F.cross_entropy(t(LOGITS), t(target), wt, reduction=reduction), ref, 1e-9)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_kernel_gradients(reduction):
    from rtorch.autograd import gradgradcheck

    target = t(np.array([0, 3, -100, 2, 3, 1]))
    w = t(WEIGHT)
    x = t(LOGITS).requires_grad_()
    k = t(RNG.standard_normal((2, 3, 4))).requires_grad_()
    kt = t(RNG.integers(0, 3, (2, 4)))
    for fn, inp in [
        (lambda a: F.nll_loss(a, target, w, reduction=reduction), x),
        (lambda a: F.cross_entropy(a, target, reduction=reduction), x),
        (lambda a: F.nll_loss(a.t(), target, reduction=reduction), t(LOGITS.T).requires_grad_()),
        (lambda a: F.cross_entropy(a, kt, reduction=reduction), k),
    ]:
        assert gradcheck(fn, (inp,))
        assert gradgradcheck(fn, (inp,))
    assert F.nll_loss(x, target).grad_fn.name() == "NllLossBackward0"


def test_nll_loss_k_dimensional():
    x = RNG.standard_normal((2, 3, 4, 5))
    tgt = RNG.integers(0, 3, (2, 4, 5))
    logp = _log_softmax(x)
    n, i, j = np.meshgrid(np.arange(2), np.arange(4), np.arange(5), indexing="ij")
    per = -logp[n, tgt, i, j]
    close(F.nll_loss(t(logp), t(tgt), reduction="none"), per, 1e-9)
    close(F.cross_entropy(t(x), t(tgt)), per.mean(), 1e-9)


def test_cross_entropy_probabilities_and_label_smoothing():
    probs = np.abs(RNG.standard_normal((6, 4)))
    probs /= probs.sum(1, keepdims=True)
    logp = _log_softmax(LOGITS)
    close(F.cross_entropy(t(LOGITS), t(probs)), -(probs * logp).sum(1).mean(), 1e-9)
    close(
        F.cross_entropy(t(LOGITS), t(probs), t(WEIGHT), reduction="sum"),
        -(probs * logp * WEIGHT).sum(),
        1e-9,
    )
    eps = 0.2
    smooth = np.full((6, 4), eps / 4)
    smooth[np.arange(6), TARGET] += 1 - eps
    close(
        F.cross_entropy(t(LOGITS), t(TARGET), label_smoothing=eps),
        -(smooth * logp).sum(1).mean(),
        1e-9,
    )
    with pytest.raises(RuntimeError, match="label_smoothing must be between 0.0 and 1.0. Got: 2"):
        F.cross_entropy(t(LOGITS), t(TARGET), label_smoothing=2.0)


def test_cross_entropy_label_smoothing_with_weight_matches_torch():
    torch = pytest.importorskip("torch")
    target = TARGET.copy()
    target[2] = -100
    for reduction in REDUCTIONS:
        ref = torch.nn.functional.cross_entropy(
            torch.tensor(LOGITS),
            torch.tensor(target),
            torch.tensor(WEIGHT),
            reduction=reduction,
            label_smoothing=0.3,
        )
        got = F.cross_entropy(
            t(LOGITS), t(target), t(WEIGHT), reduction=reduction, label_smoothing=0.3
        )
        close(got, ref.numpy(), 1e-9)


def test_nll_loss_errors_follow_pytorch():
    with pytest.raises(
        ValueError, match=r"Expected input batch_size \(3\) to match target batch_size \(2\)."
    ):
        F.nll_loss(rtorch.randn(3, 4), rtorch.tensor([1, 2]))
    with pytest.raises(IndexError, match="Target 7 is out of bounds."):
        F.nll_loss(rtorch.randn(3, 4), rtorch.tensor([1, 2, 7]))
    with pytest.raises(
        RuntimeError, match="expected target dtype to be Long or Byte, but got Float"
    ):
        F.nll_loss(rtorch.randn(3, 4), rtorch.tensor([1.0, 2.0, 0.0]))


def test_unbatched_nll_loss():
    x = rtorch.tensor([-1.0, -2.0, -3.0])
    assert F.nll_loss(x, rtorch.tensor(2)).item() == 3.0


P = 1 / (1 + np.exp(-A))
Y = (B > 0).astype(float)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_family(reduction):
    w = np.abs(B) + 0.1
    bce = -(Y * np.log(P) + (1 - Y) * np.log(1 - P))
    close(F.binary_cross_entropy(t(P), t(Y), reduction=reduction), _red(bce, reduction), 1e-9)
    close(
        F.binary_cross_entropy(t(P), t(Y), t(w), reduction=reduction),
        _red(bce * w, reduction),
        1e-9,
    )
    close(
        F.binary_cross_entropy_with_logits(t(A), t(Y), reduction=reduction),
        _red(bce, reduction),
        1e-9,
    )
    pw = np.array([1.0, 2.0, 3.0])
    ref = -(pw * Y * np.log(P) + (1 - Y) * np.log(1 - P))
    close(
        F.binary_cross_entropy_with_logits(t(A), t(Y), pos_weight=t(pw), reduction=reduction),
        _red(ref, reduction),
        1e-9,
    )


def test_binary_cross_entropy_clamps_log_and_checks_sizes():
    assert F.binary_cross_entropy(rtorch.tensor([0.0]), rtorch.tensor([1.0])).item() == 100.0
    with pytest.raises(ValueError, match="that is different to the input size"):
        F.binary_cross_entropy(rtorch.rand(3), rtorch.rand(3, 1))
    with pytest.raises(
        ValueError, match=r"Target size \(torch.Size\(\[3, 1\]\)\) must be the same"
    ):
        F.binary_cross_entropy_with_logits(rtorch.rand(3), rtorch.rand(3, 1))


def test_kl_div_variants():
    logq = _log_softmax(A)
    p = np.exp(_log_softmax(B))
    per = p * (np.log(p) - logq)
    close(F.kl_div(t(logq), t(p), reduction="batchmean"), per.sum() / 4, 1e-9)
    close(F.kl_div(t(logq), t(p), reduction="sum"), per.sum(), 1e-9)
    close(F.kl_div(t(logq), t(np.log(p)), reduction="none", log_target=True), per, 1e-9)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(t(logq), t(p))


def test_poisson_and_gaussian_nll():
    tgt = np.abs(np.round(B * 3))
    close(F.poisson_nll_loss(t(A), t(tgt), reduction="sum"), (np.exp(A) - tgt * A).sum(), 1e-9)
    rate = np.exp(A)
    ref = rate - tgt * np.log(rate + 1e-8)
    st = tgt * np.log(np.maximum(tgt, 1)) - tgt + 0.5 * np.log(2 * np.pi * np.maximum(tgt, 1))
    ref = ref + np.where(tgt > 1, st, 0)
    close(F.poisson_nll_loss(t(rate), t(tgt), log_input=False, full=True), ref.mean(), 1e-9)
    var = np.abs(B) + 0.5
    ref = 0.5 * (np.log(var) + (A - Y) ** 2 / var)
    close(F.gaussian_nll_loss(t(A), t(Y), t(var), reduction="none"), ref, 1e-9)
    close(
        F.gaussian_nll_loss(t(A), t(Y), t(var[:, 0]), full=True),
        (0.5 * (np.log(var[:, :1]) + (A - Y) ** 2 / var[:, :1]) + 0.5 * np.log(2 * np.pi)).mean(),
        1e-9,
    )
    with pytest.raises(ValueError, match="var has negative entry/entries"):
        F.gaussian_nll_loss(t(A), t(A), t(-var))
    with pytest.raises(ValueError, match="var is of incorrect size"):
        F.gaussian_nll_loss(t(A), t(A), rtorch.ones(2, 2, dtype=rtorch.float64))


def test_margin_and_embedding_losses():
    a, b = A[:, 0], B[:, 0]
    y = np.array([1.0, -1.0, 1.0, -1.0])
    close(
        F.margin_ranking_loss(t(a), t(b), t(y), margin=0.3),
        np.maximum(0, -y * (a - b) + 0.3).mean(),
        1e-9,
    )
    close(
        F.hinge_embedding_loss(t(a), t(y), margin=0.5, reduction="none"),
        np.where(y == 1, a, np.maximum(0, 0.5 - a)),
        1e-9,
    )
    cos = (A * B).sum(1) / np.sqrt(((A * A).sum(1) + 1e-12) * ((B * B).sum(1) + 1e-12))
    close(
        F.cosine_embedding_loss(t(A), t(B), t(y), margin=0.1, reduction="none"),
        np.where(y == 1, 1 - cos, np.maximum(0, cos - 0.1)),
        1e-9,
    )
    n = RNG.standard_normal((4, 3))
    dp = np.linalg.norm(A - B + 1e-6, axis=1)
    dn = np.linalg.norm(A - n + 1e-6, axis=1)
    close(F.triplet_margin_loss(t(A), t(B), t(n)), np.maximum(dp - dn + 1, 0).mean(), 1e-9)
    ds = np.linalg.norm(B - n + 1e-6, axis=1)
    close(
        F.triplet_margin_loss(t(A), t(B), t(n), swap=True, reduction="sum"),
        np.maximum(dp - np.minimum(dn, ds) + 1, 0).sum(),
        1e-9,
    )
    with pytest.raises(RuntimeError, match="All input tensors should have same dimension"):
        F.margin_ranking_loss(t(a), t(b), t(y[None]))


def test_multilabel_and_multi_margin_losses():
    logsig = -np.log1p(np.exp(-A))
    logsig_neg = -np.log1p(np.exp(A))
    per = -(Y * logsig + (1 - Y) * logsig_neg).mean(1)
    close(F.multilabel_soft_margin_loss(t(A), t(Y), reduction="none"), per, 1e-9)
    tgt = np.array([0, 2, 1, 1])
    w = np.array([1.0, 2.0, 0.5])
    for p in (1, 2):
        z = np.maximum(0, 1.0 - A[np.arange(4), tgt][:, None] + A) ** p
        z[np.arange(4), tgt] = 0
        ref = (z * w[tgt][:, None]).sum(1) / 3
        close(F.multi_margin_loss(t(A), t(tgt), p=p, weight=t(w), reduction="none"), ref, 1e-9)
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        F.multi_margin_loss(t(A), t(tgt), p=3)


# ------------------------------------------------------------------------ normalisation


def test_layer_norm_and_group_norm_match_numpy():
    x = RNG.standard_normal((2, 4, 3))
    w, b = RNG.standard_normal(3), RNG.standard_normal(3)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w + b
    close(F.layer_norm(t(x), (3,), t(w), t(b)), ref, 1e-9)
    g = x.reshape(2, 2, 6)
    ref = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)).reshape(
        x.shape
    )
    cw = RNG.standard_normal(4)
    close(F.group_norm(t(x), 2, t(cw)), ref * cw[None, :, None], 1e-9)
    with pytest.raises(
        RuntimeError, match=r"Given normalized_shape=\[3\], expected input with shape \[\*, 3\]"
    ):
        F.layer_norm(rtorch.ones(3, 4), (3,))
    with pytest.raises(
        RuntimeError, match="Expected number of channels in input to be divisible by num_groups"
    ):
        F.group_norm(rtorch.ones(3, 4, 1), 3)
    with pytest.raises(RuntimeError, match="Expected num groups to be greater than 0, got 0"):
        F.group_norm(rtorch.ones(3, 4, 1), 0)


def test_batch_norm_training_updates_running_stats_and_eval_uses_them():
    x = RNG.standard_normal((8, 3, 2))
    rm, rv = rtorch.zeros(3, dtype=rtorch.float64), rtorch.ones(3, dtype=rtorch.float64)
    out = F.batch_norm(t(x), rm, rv, training=True, momentum=0.2)
    mean, var = x.mean((0, 2)), x.var((0, 2))
    close(out, (x - mean[None, :, None]) / np.sqrt(var[None, :, None] + 1e-5), 1e-9)
    close(rm, 0.2 * mean, 1e-12)
    close(rv, 0.8 + 0.2 * x.var((0, 2), ddof=1), 1e-12)
    out = F.batch_norm(t(x), rm, rv, training=False)
    close(out, (x - rm.numpy()[None, :, None]) / np.sqrt(rv.numpy()[None, :, None] + 1e-5), 1e-9)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(rtorch.randn(1, 4), None, None, training=True)


# ------------------------------------------------------------------------ gradchecks of compositions


def _d(a, grad=True):
    return rtorch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


COMPOSITES = {
    "linear": lambda: (F.linear, (_d(A), _d(B[:2]), _d(A[0, :2]))),
    "bilinear": lambda: (F.bilinear, (_d(A), _d(B), _d(RNG.standard_normal((2, 3, 3))), None)),
    "prelu": lambda: (F.prelu, (_d(A + 0.01), _d([0.1, 0.2, 0.3]))),
    "normalize": lambda: (lambda x: F.normalize(x, dim=1), (_d(A),)),
    "cosine_similarity": lambda: (F.cosine_similarity, (_d(A), _d(B))),
    "pairwise_distance": lambda: (F.pairwise_distance, (_d(A), _d(B))),
    "embedding": lambda: (
        lambda w: F.embedding(rtorch.tensor([[0, 2], [1, 2]]), w),
        (_d(A),),
    ),
    "pad_reflect": lambda: (lambda x: F.pad(x, (2, 1), mode="reflect"), (_d(A),)),
    "pad_constant": lambda: (lambda x: F.pad(x, (1, 2, 0, 1), value=3.0), (_d(A),)),
    "mse": lambda: (F.mse_loss, (_d(A), _d(B))),
    "smooth_l1": lambda: (F.smooth_l1_loss, (_d(A), _d(B + 0.01))),
    "huber": lambda: (lambda a, b: F.huber_loss(a, b, delta=0.5), (_d(A), _d(B + 0.01))),
    "nll_weight_ignore": lambda: (
        lambda x: F.nll_loss(
            x, rtorch.tensor([0, -100, 1, 2]), rtorch.tensor([1.0, 2.0, 0.5], dtype=rtorch.float64)
        ),
        (_d(A),),
    ),
    "cross_entropy_smooth": lambda: (
        lambda x: F.cross_entropy(x, rtorch.tensor([0, 2, 1, 2]), label_smoothing=0.1),
        (_d(A),),
    ),
    "cross_entropy_probs": lambda: (
        lambda x, p: F.cross_entropy(x, p),
        (
            _d(A),
            _d(np.exp(_log_softmax(B))),
        ),
    ),
    "bce": lambda: (F.binary_cross_entropy, (_d(P), _d(Y, False))),
    "bce_logits_pos_weight": lambda: (
        lambda x: F.binary_cross_entropy_with_logits(
            x, _d(Y, False), pos_weight=_d([1.0, 2.0, 3.0], False)
        ),
        (_d(A),),
    ),
    "kl_div": lambda: (
        lambda x: F.kl_div(x, _d(np.exp(_log_softmax(B)), False), reduction="batchmean"),
        (_d(_log_softmax(A)),),
    ),
    "poisson_nll": lambda: (F.poisson_nll_loss, (_d(A), _d(np.abs(B)))),
    "gaussian_nll": lambda: (F.gaussian_nll_loss, (_d(A), _d(B), _d(np.abs(B) + 0.5))),
    "margin_ranking": lambda: (
        lambda a, b: F.margin_ranking_loss(a, b, _d([1.0, -1.0, 1.0, -1.0], False), margin=0.1),
        (_d(A[:, 0]), _d(B[:, 0])),
    ),
    "hinge_embedding": lambda: (
        lambda a: F.hinge_embedding_loss(a, _d([1.0, -1.0, 1.0, -1.0], False)),
        (_d(A[:, 0] + 0.01),),
    ),
    "soft_margin": lambda: (F.soft_margin_loss, (_d(A), _d(np.sign(B), False))),
    "cosine_embedding": lambda: (
        lambda a, b: F.cosine_embedding_loss(a, b, _d([1.0, -1.0, 1.0, -1.0], False)),
        (_d(A), _d(B)),
    ),
    "triplet_swap": lambda: (
        lambda a, p, n: F.triplet_margin_loss(a, p, n, swap=True),
        (_d(A), _d(B), _d(RNG.standard_normal((4, 3)))),
    ),
    "multilabel_soft_margin": lambda: (F.multilabel_soft_margin_loss, (_d(A), _d(Y, False))),
    "multi_margin_p2": lambda: (
        lambda x: F.multi_margin_loss(x, rtorch.tensor([0, 2, 1, 1]), p=2),
        (_d(A),),
    ),
    "layer_norm": lambda: (
        lambda x, w, b: F.layer_norm(x, (3,), w, b),
        (_d(A), _d(B[0]), _d(B[1])),
    ),
    "group_norm": lambda: (
        lambda x, w: F.group_norm(x, 2, w),
        (_d(RNG.standard_normal((2, 4, 3))), _d(RNG.standard_normal(4))),
    ),
    "batch_norm_train": lambda: (
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        (_d(RNG.standard_normal((5, 3, 2))), _d(B[0]), _d(B[1])),
    ),
    "glu": lambda: (lambda x: F.glu(x, 0), (_d(A),)),
}


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_gradcheck(name):
    fn, inputs = COMPOSITES[name]()
    assert gradcheck(fn, inputs)


def test_dropout_mask_is_the_uniform_draw_below_keep_probability():
    # Element i is kept exactly where the same seed's rand() element i falls
    # below 1 - p, and scaled by 1 / (1 - p) (float32 division).
    x = rtorch.from_numpy(np.random.default_rng(0).standard_normal((7, 129)).astype(np.float32))
    rtorch.manual_seed(11)
    u = rtorch.rand(7, 129).numpy().astype(np.float64)
    rtorch.manual_seed(11)
    y = F.dropout(x, 0.3).numpy()
    keep = u < 0.7
    np.testing.assert_array_equal(y[~keep], 0.0)
    expect = x.numpy() * (np.float32(1.0) / np.float32(0.7))
    np.testing.assert_allclose(y[keep], expect[keep], rtol=1e-7, atol=0)
