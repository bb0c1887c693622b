"""The fused batch/layer/group norm kernels, instance norm and local
response norm against NumPy references: values, running statistics,
float64 gradchecks (the closed-form backward) and gradgradchecks (the
differentiable fallback), modules and errors."""

import warnings

import numpy as np
import pytest

import rtorch
import rtorch.nn as nn
import rtorch.nn.functional as F
from rtorch.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(1)


def t(a, **kw):
    return rtorch.tensor(np.asarray(a), **kw)


def close(x, ref, tol=1e-6):
    np.testing.assert_allclose(
        np.asarray(x.detach().numpy(), dtype=np.float64), ref, rtol=tol, atol=tol
    )


def np_norm(x, axes, eps):
    m = x.mean(axis=axes, keepdims=True)
    v = ((x - m) ** 2).mean(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps)


def chan(v, ndim):
    return np.asarray(v).reshape((1, -1) + (1,) * (ndim - 2))


# ------------------------------------------------------------------ batch norm


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5), (2, 3, 2, 3, 4)])
def test_batch_norm_training_values_and_running_stats(shape):
    x = RNG.standard_normal(shape) * 2 + 1
    w, b = RNG.standard_normal(3), RNG.standard_normal(3)
    rm, rv = RNG.standard_normal(3), RNG.random(3) + 0.5
    rmt, rvt = t(rm.copy()), t(rv.copy())
    out = F.batch_norm(t(x), rmt, rvt, t(w), t(b), training=True, momentum=0.3, eps=1e-3)
    axes = (0,) + tuple(range(2, len(shape)))
    ref = np_norm(x, axes, 1e-3) * chan(w, len(shape)) + chan(b, len(shape))
    close(out, ref)
    n = x.size // 3
    close(rmt, 0.7 * rm + 0.3 * x.mean(axis=axes))
    close(rvt, 0.7 * rv + 0.3 * x.var(axis=axes) * n / (n - 1))


def test_batch_norm_eval_uses_running_stats_and_no_affine():
    x = RNG.standard_normal((4, 3, 5))
    rm, rv = RNG.standard_normal(3), RNG.random(3) + 0.5
    out = F.batch_norm(t(x), t(rm), t(rv), training=False, eps=1e-5)
    close(out, (x - chan(rm, 3)) / np.sqrt(chan(rv, 3) + 1e-5))
    # Training without running stats and without affine.
    close(F.batch_norm(t(x), None, None, training=True), np_norm(x, (0, 2), 1e-5))


def test_batch_norm_float32_large_offset_is_accurate():
    # A large mean with small spread: one-pass E[x^2] - E[x]^2 in float32
    # would lose the variance entirely.
    x = (1e4 + RNG.standard_normal((8, 2, 64))).astype(np.float32)
    rv = rtorch.ones(2)
    out = F.batch_norm(t(x), rtorch.zeros(2), rv, training=True, momentum=1.0)
    x64 = x.astype(np.float64)
    close(out, np_norm(x64, (0, 2), 1e-5), 1e-3)
    close(rv, x64.var(axis=(0, 2)) * 512 / 511, 1e-4)


def test_batch_and_group_norm_merge_rows_with_different_means():
    # Statistics are per (sample, channel) row, then merged: here the spread
    # between rows (offsets 0..700) dwarfs the spread within them.
    x = RNG.standard_normal((8, 4, 33)) + 100.0 * np.arange(8)[:, None, None]
    rv = rtorch.ones(4, dtype=rtorch.float64)
    out = F.batch_norm(t(x), rtorch.zeros(4, dtype=rtorch.float64), rv, training=True, momentum=1)
    close(out, np_norm(x, (0, 2), 1e-5), 1e-9)
    close(rv, x.var(axis=(0, 2)) * 264 / 263, 1e-9)
    xg = x.transpose(1, 0, 2).copy()
    ref = np_norm(xg.reshape(4, 2, -1), (2,), 1e-5).reshape(xg.shape)
    close(F.group_norm(t(xg), 2), ref, 1e-9)
    close(F.group_norm(t(xg.astype(np.float32)), 2), ref, 1e-4)


def test_batch_norm_module_matches_and_counts_batches():
    bn = nn.BatchNorm2d(3, momentum=None)
    xs = [RNG.standard_normal((2, 3, 4, 4)) for _ in range(3)]
    for x in xs:
        bn(t(x).float())
    mean = np.mean([x.mean(axis=(0, 2, 3)) for x in xs], axis=0)
    close(bn.running_mean, mean, 1e-5)
    assert bn.num_batches_tracked.item() == 3


# ------------------------------------------------------------------ layer norm


@pytest.mark.parametrize("shape,ns", [((4, 6), (6,)), ((2, 3, 4, 5), (4, 5)), ((3, 5), (3, 5))])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_matches_numpy(shape, ns, affine):
    x = RNG.standard_normal(shape) * 3 - 2
    w = RNG.standard_normal(ns) if affine != "none" else None
    b = RNG.standard_normal(ns) if affine == "both" else None
    out = F.layer_norm(t(x), ns, None if w is None else t(w), None if b is None else t(b), 1e-4)
    axes = tuple(range(len(shape) - len(ns), len(shape)))
    ref = np_norm(x, axes, 1e-4)
    if w is not None:
        ref = ref * w
    if b is not None:
        ref = ref + b
    close(out, ref)
    close(
        F.layer_norm(t(x).float(), ns, None if w is None else t(w).float()),
        np_norm(x, axes, 1e-5) * (1 if w is None else w),
        1e-5,
    )


@pytest.mark.parametrize(
    "rows,k", [(2100, 1024), (700, 3000), (2200, 1000)], ids=["aligned", "long", "k%16"]
)
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
def test_layer_norm_float32_large_output_matches_numpy(rows, k, affine):
    # Outputs of 8 MiB and more take the streaming-store path (rows longer
    # than one 1024 block, and k not a multiple of 16, fall back in parts).
    x = (RNG.standard_normal((rows, k)) * 2 + 5).astype(np.float32)
    w = RNG.standard_normal(k).astype(np.float32) if affine in ("both", "weight") else None
    b = RNG.standard_normal(k).astype(np.float32) if affine in ("both", "bias") else None
    out = F.layer_norm(t(x), (k,), None if w is None else t(w), None if b is None else t(b))
    ref = np_norm(x.astype(np.float64), (1,), 1e-5)
    if w is not None:
        ref = ref * w
    if b is not None:
        ref = ref + b
    close(out, ref, 2e-4)
    # The same rows through the small-output path give the same values.
    small = F.layer_norm(t(x[:64]), (k,), None if w is None else t(w), None if b is None else t(b))
    assert np.array_equal(small.numpy(), out.numpy()[:64])


# ------------------------------------------------------------------ group norm


@pytest.mark.parametrize(
    "shape,groups", [((2, 6), 3), ((2, 6, 5), 2), ((3, 4, 3, 2), 4), ((2, 4, 3), 1)]
)
def test_group_norm_matches_numpy(shape, groups):
    x = RNG.standard_normal(shape) + 0.5
    c = shape[1]
    w, b = RNG.standard_normal(c), RNG.standard_normal(c)
    out = F.group_norm(t(x), groups, t(w), t(b), 1e-5)
    g = x.reshape(shape[0], groups, -1)
    ref = np_norm(g, (2,), 1e-5).reshape(shape) * chan(w, len(shape)) + chan(b, len(shape))
    close(out, ref)
    close(F.group_norm(t(x), groups), np_norm(g, (2,), 1e-5).reshape(shape))


# ------------------------------------------------------------------ instance norm


def test_instance_norm_matches_numpy_and_averages_running_stats():
    x = RNG.standard_normal((3, 2, 5, 4)) * 2
    w, b = RNG.standard_normal(2), RNG.standard_normal(2)
    rm, rv = np.zeros(2), np.ones(2)
    rmt, rvt = t(rm), t(rv)
    out = F.instance_norm(t(x), rmt, rvt, t(w), t(b), True, 0.2, 1e-5)
    close(out, np_norm(x, (2, 3), 1e-5) * chan(w, 4) + chan(b, 4))
    per_mean = x.mean(axis=(2, 3))
    per_var = x.var(axis=(2, 3)) * 20 / 19
    close(rmt, 0.8 * rm + 0.2 * per_mean.mean(0))
    close(rvt, 0.8 * rv + 0.2 * per_var.mean(0))
    # use_input_stats=False normalises with the running statistics.
    out = F.instance_norm(t(x), rmt, rvt, use_input_stats=False)
    close(out, (x - chan(rmt.numpy(), 4)) / np.sqrt(chan(rvt.numpy(), 4) + 1e-5))


def test_instance_norm_modules():
    m = nn.InstanceNorm1d(3, affine=True)
    assert repr(m) == (
        "InstanceNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, "
        "track_running_stats=False)"
    )
    assert repr(nn.InstanceNorm2d(4)) == (
        "InstanceNorm2d(4, eps=1e-05, momentum=0.1, affine=False, bias=False, "
        "track_running_stats=False)"
    )
    assert sorted(dict(m.named_parameters())) == ["bias", "weight"]
    x = RNG.standard_normal((2, 3, 6))
    close(m(t(x).float()), np_norm(x, (2,), 1e-5), 1e-5)
    # Unbatched input.
    close(m(t(x[0]).float()), np_norm(x[0], (1,), 1e-5), 1e-5)
    # Running stats: training updates them, eval uses them.
    m3 = nn.InstanceNorm3d(2, track_running_stats=True)
    assert sorted(dict(m3.named_buffers())) == [
        "num_batches_tracked",
        "running_mean",
        "running_var",
    ]
    x5 = RNG.standard_normal((2, 2, 2, 3, 3)).astype(np.float32)
    m3(t(x5))
    close(m3.running_mean, 0.1 * x5.mean(axis=(2, 3, 4)).mean(0), 1e-5)
    m3.eval()
    out = m3(t(x5))
    ref = (x5 - chan(m3.running_mean.numpy(), 5)) / np.sqrt(chan(m3.running_var.numpy(), 5) + 1e-5)
    close(out, ref, 1e-5)


def test_instance_norm_errors_and_warnings():
    with pytest.raises(ValueError, match=r"expected 3D or 4D input \(got 2D input\)"):
        nn.InstanceNorm2d(3)(rtorch.randn(3, 4))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.InstanceNorm1d(3)(rtorch.randn(2, 3, 4, 5))
    with pytest.raises(
        ValueError, match=r"expected input's size at dim=1 to match num_features \(3\), but got: 4."
    ):
        nn.InstanceNorm1d(3, affine=True)(rtorch.randn(2, 4, 5))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        nn.InstanceNorm1d(3)(rtorch.randn(2, 4, 5))
    assert any("input's size at dim=1 does not match num_features" in str(x.message) for x in w)
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training"):
        F.instance_norm(rtorch.randn(2, 3, 1))


# ------------------------------------------------------------------ local response norm


def np_lrn(x, size, alpha, beta, k):
    c = x.shape[1]
    sq = x**2
    out = np.empty_like(x)
    for i in range(c):
        lo, hi = max(0, i - size // 2), min(c, i + (size - 1) // 2 + 1)
        div = (k + alpha * sq[:, lo:hi].sum(axis=1) / size) ** beta
        out[:, i] = x[:, i] / div
    return out


@pytest.mark.parametrize("shape", [(2, 5, 4), (2, 6, 3, 4), (1, 4, 2, 2, 3)])
def test_local_response_norm_matches_numpy(shape):
    x = RNG.standard_normal(shape) * 3
    close(F.local_response_norm(t(x), 3, 0.1, 0.75, 2.0), np_lrn(x, 3, 0.1, 0.75, 2.0))
    m = nn.LocalResponseNorm(2, alpha=0.5)
    assert repr(m) == "LocalResponseNorm(2, alpha=0.5, beta=0.75, k=1.0)"
    close(m(t(x)), np_lrn(x, 2, 0.5, 0.75, 1.0))
    with pytest.raises(
        ValueError, match=r"Expected 3D or higher dimensionality\s+input \(got 2 dimensions\)"
    ):
        F.local_response_norm(rtorch.randn(2, 3), 2)


# ------------------------------------------------------------------ gradients


def d(*shape):
    return t(RNG.standard_normal(shape)).requires_grad_()


NORM_GRADS = [
    (
        "batch_norm_train",
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        (3, 2, 4),
        2,
    ),
    (
        "batch_norm_eval",
        lambda x, w, b: F.batch_norm(x, t([0.3, -0.2]), t([1.5, 0.7]), w, b, training=False),
        (3, 2, 4),
        2,
    ),
    (
        "layer_norm",
        lambda x, w, b: F.layer_norm(
            x, (2, 4), w.reshape(2, 1).expand(2, 4), b.reshape(2, 1).expand(2, 4)
        ),
        (3, 2, 4),
        2,
    ),
    ("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), (2, 4, 3), 4),
    ("instance_norm", lambda x, w, b: F.instance_norm(x, weight=w, bias=b), (2, 2, 5), 2),
]


@pytest.mark.parametrize("name,fn,shape,c", NORM_GRADS, ids=[n[0] for n in NORM_GRADS])
def test_norm_gradcheck_and_gradgradcheck(name, fn, shape, c):
    x, w, b = d(*shape), d(c), d(c)
    assert gradcheck(fn, (x, w, b))
    assert gradgradcheck(fn, (x, w, b))


def test_norm_gradcheck_without_affine():
    x = d(4, 3, 2)
    for f in (
        lambda a: F.batch_norm(a, None, None, training=True),
        lambda a: F.layer_norm(a, (3, 2)),
        lambda a: F.group_norm(a, 3),
        lambda a: F.local_response_norm(a, 2),
    ):
        assert gradcheck(f, (x,))
        assert gradgradcheck(f, (x,))


def test_fast_backward_float32_matches_float64():
    x = RNG.standard_normal((4, 6, 7))
    g = RNG.standard_normal((4, 6, 7))
    for f in (
        lambda a, w: F.batch_norm(a, None, None, w, None, training=True),
        lambda a, w: F.group_norm(a, 3, w),
        lambda a, w: F.layer_norm(a.transpose(1, 2), (6,), w),
    ):
        grads = []
        for dt in (rtorch.float32, rtorch.float64):
            a = t(x, dtype=dt).requires_grad_()
            w = t(np.linspace(0.5, 1.5, 6), dtype=dt).requires_grad_()
            out = f(a, w)
            out.backward(t(g, dtype=dt).reshape(out.shape))
            grads.append((a.grad.double().numpy(), w.grad.double().numpy()))
        np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-4)


def test_grad_fn_names():
    x = rtorch.randn(2, 4, 3, requires_grad=True)
    assert (
        type(F.batch_norm(x, None, None, training=True).grad_fn).__name__
        == "NativeBatchNormBackward0"
    )
    assert type(F.layer_norm(x, (3,)).grad_fn).__name__ == "NativeLayerNormBackward0"
    assert type(F.group_norm(x, 2).grad_fn).__name__ == "NativeGroupNormBackward0"


def test_norm_errors():
    with pytest.raises(
        RuntimeError,
        match=r"Given normalized_shape=\[4\], expected input with shape \[\*, 4\], but got input of size\[2, 3\]",
    ):
        F.layer_norm(rtorch.randn(2, 3), (4,))
    with pytest.raises(
        ValueError,
        match=r"Expected more than 1 value per channel when training, got input size torch.Size\(\[1, 3\]\)",
    ):
        F.batch_norm(rtorch.randn(1, 3), None, None, training=True)
    with pytest.raises(
        RuntimeError, match="running_mean and running_var must be defined in evaluation mode"
    ):
        F.batch_norm(rtorch.randn(2, 3), None, None, training=False)
    with pytest.raises(
        RuntimeError, match="Expected number of channels in input to be divisible by num_groups"
    ):
        F.group_norm(rtorch.randn(2, 5, 3), 2)
