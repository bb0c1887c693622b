"""CTC loss against a brute-force NumPy oracle (sum over every alignment)."""

import itertools

import numpy as np
import pytest

import rtorch
import rtorch.nn.functional as F
from rtorch import nn
from rtorch.autograd import gradcheck

RNG = np.random.default_rng(4)


def t(a, **kw):
    return rtorch.tensor(np.asarray(a), **kw)


def collapse(path, blank):
    out, prev = [], None
    for c in path:
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return out


def brute_ctc(log_probs, target, t_len, blank):
    """-log sum over all length-t_len paths that collapse to target."""
    probs = np.exp(log_probs[:t_len])
    total = 0.0
    for path in itertools.product(range(log_probs.shape[1]), repeat=t_len):
        if collapse(path, blank) == list(target):
            total += np.prod([probs[i, c] for i, c in enumerate(path)])
    return -np.log(total) if total > 0 else np.inf


def log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


T, N, C = 5, 4, 3
LP = log_softmax(RNG.standard_normal((T, N, C)))
TARGETS = np.array([[1, 2, 0], [1, 1, 2], [2, 0, 0], [1, 2, 1]])
IN_LENS = [5, 5, 4, 2]
TGT_LENS = [2, 2, 1, 3]  # sample 3 is impossible: 3 labels in 2 frames


def reference(blank=0):
    return np.array(
        [brute_ctc(LP[:, i], TARGETS[i, : TGT_LENS[i]], IN_LENS[i], blank) for i in range(N)]
    )


def test_matches_brute_force():
    ref = reference()
    assert np.isinf(ref[3])
    out = F.ctc_loss(t(LP), t(TARGETS), IN_LENS, TGT_LENS, reduction="none")
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)
    zero = F.ctc_loss(t(LP), t(TARGETS), IN_LENS, TGT_LENS, reduction="none", zero_infinity=True)
    np.testing.assert_allclose(zero.numpy(), np.where(np.isinf(ref), 0, ref), rtol=1e-10)
    fin = np.where(np.isinf(ref), 0, ref)
    mean = F.ctc_loss(t(LP), t(TARGETS), IN_LENS, TGT_LENS, zero_infinity=True)
    np.testing.assert_allclose(mean.item(), (fin / np.maximum(TGT_LENS, 1)).mean(), rtol=1e-10)
    total = F.ctc_loss(t(LP), t(TARGETS), IN_LENS, TGT_LENS, reduction="sum", zero_infinity=True)
    np.testing.assert_allclose(total.item(), fin.sum(), rtol=1e-10)


def test_blank_concatenated_targets_and_unbatched():
    targets = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]])
    lens = [2, 3, 1, 1]
    ref = [brute_ctc(LP[:, i], targets[i, : lens[i]], IN_LENS[i], 2) for i in range(N)]
    out = F.ctc_loss(t(LP), t(targets), IN_LENS, lens, blank=2, reduction="none")
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)
    flat = np.concatenate([targets[i, : lens[i]] for i in range(N)])
    out = F.ctc_loss(t(LP), t(flat), t(IN_LENS), t(lens), blank=2, reduction="none")
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)
    one = F.ctc_loss(t(LP[:, 0]), t(targets[0, :2]), t(5), t(2), blank=2, reduction="none")
    np.testing.assert_allclose(one.item(), ref[0], rtol=1e-10)


def test_float32_module_and_backward():
    m = nn.CTCLoss(zero_infinity=True)
    assert repr(m) == "CTCLoss()"
    x = t(RNG.standard_normal((T, N, C)), dtype=rtorch.float32, requires_grad=True)
    loss = m(x.log_softmax(2), t(TARGETS), IN_LENS, TGT_LENS)
    assert loss.dtype == rtorch.float32
    loss.backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    assert np.all(x.grad.numpy()[:, 3] == 0)  # the impossible sample


def test_impossible_sample_gets_nan_gradient_over_its_frames():
    # PyTorch: an infinite loss has a NaN gradient at the impossible sample's
    # frames before its input length; the other samples are untouched.
    x = t(LP, requires_grad=True)
    F.ctc_loss(x, t(TARGETS), IN_LENS, TGT_LENS, reduction="sum").backward()
    g = x.grad.numpy()
    assert np.all(np.isnan(g[: IN_LENS[3], 3])) and np.all(g[IN_LENS[3] :, 3] == 0)
    assert np.all(np.isfinite(g[:, :3]))
    y = t(LP, requires_grad=True)
    F.ctc_loss(y, t(TARGETS), IN_LENS, TGT_LENS, reduction="sum", zero_infinity=True).backward()
    np.testing.assert_allclose(y.grad.numpy()[:, :3], g[:, :3], rtol=1e-12)


def test_gradcheck():
    x = t(RNG.standard_normal((4, 2, 3)), requires_grad=True)
    tg = t(np.array([[1, 2], [2, 2]]))
    assert gradcheck(
        lambda a: F.ctc_loss(a.log_softmax(2), tg, [4, 4], [2, 1], reduction="sum"), (x,)
    )


def test_errors():
    lp, tg = t(LP), t(TARGETS)
    with pytest.raises(RuntimeError, match="Expected input_lengths to have value at most 5"):
        F.ctc_loss(lp, tg, [6, 5, 5, 5], TGT_LENS)
    with pytest.raises(RuntimeError, match="Expected tensor to have size at least 4 at dimension"):
        F.ctc_loss(lp, tg, IN_LENS, [4, 1, 1, 1])
    with pytest.raises(RuntimeError, match="input_lengths must be of size batch_size"):
        F.ctc_loss(lp, tg, [5], TGT_LENS)
    with pytest.raises(RuntimeError, match="blank must be in label range"):
        F.ctc_loss(lp, tg, IN_LENS, TGT_LENS, blank=3)
    with pytest.raises(RuntimeError, match="Expected target_lengths to have value at least 0"):
        F.ctc_loss(lp, tg, IN_LENS, [1, 1, 1, -1])


def test_matches_torch():
    torch = pytest.importorskip("torch")
    lp = log_softmax(RNG.standard_normal((20, 3, 6)))
    tg = RNG.integers(1, 6, (3, 8))
    ref = torch.nn.functional.ctc_loss(
        torch.tensor(lp), torch.tensor(tg), [20, 17, 9], [8, 5, 4], reduction="none"
    )
    out = F.ctc_loss(t(lp), t(tg), [20, 17, 9], [8, 5, 4], reduction="none")
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-10)
