"""Convolution: values against NumPy reference convolutions, float64
gradchecks (first and second order), modules and PyTorch's errors."""

import itertools
import math
import warnings

import numpy as np
import pytest

import rtorch
import rtorch.nn as nn
import rtorch.nn.functional as F
from rtorch.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(0)


def _t(a, requires_grad=False):
    return rtorch.tensor(np.ascontiguousarray(a), requires_grad=requires_grad)


# ------------------------------------------------------------------------ NumPy references


def ref_conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Direct N-d cross-correlation: zero-pad, then one einsum per kernel element."""
    d = x.ndim - 2
    s, p, dl = ([v] * d if isinstance(v, int) else list(v) for v in (stride, padding, dilation))
    xp = np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in p])
    n, c = x.shape[:2]
    o, cg = w.shape[:2]
    k = w.shape[2:]
    out_sz = [(xp.shape[2 + j] - dl[j] * (k[j] - 1) - 1) // s[j] + 1 for j in range(d)]
    out = np.zeros((n, o, *out_sz), dtype=x.dtype)
    og = o // groups
    for g in range(groups):
        xs = xp[:, g * cg : (g + 1) * cg]
        ws = w[g * og : (g + 1) * og]
        for kk in itertools.product(*(range(v) for v in k)):
            sl = tuple(
                slice(kk[j] * dl[j], kk[j] * dl[j] + s[j] * (out_sz[j] - 1) + 1, s[j])
                for j in range(d)
            )
            patch = xs[(slice(None), slice(None), *sl)]
            out[:, g * og : (g + 1) * og] += np.einsum(
                "nc...,oc->no...", patch, ws[(slice(None), slice(None), *kk)]
            )
    if b is not None:
        out += b.reshape(1, -1, *([1] * d))
    return out


def ref_conv_transpose(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Scatter of input * kernel into the (uncropped) output, then crop the padding."""
    d = x.ndim - 2
    s, p, op, dl = (
        [v] * d if isinstance(v, int) else list(v)
        for v in (stride, padding, output_padding, dilation)
    )
    n, cin = x.shape[:2]
    cg, og = cin // groups, w.shape[1]
    k = w.shape[2:]
    full = [(x.shape[2 + j] - 1) * s[j] + dl[j] * (k[j] - 1) + 1 + op[j] for j in range(d)]
    out = np.zeros((n, og * groups, *full), dtype=x.dtype)
    for g in range(groups):
        for kk in itertools.product(*(range(v) for v in k)):
            sl = tuple(
                slice(kk[j] * dl[j], kk[j] * dl[j] + s[j] * (x.shape[2 + j] - 1) + 1, s[j])
                for j in range(d)
            )
            contrib = np.einsum(
                "nc...,co->no...",
                x[:, g * cg : (g + 1) * cg],
                w[(slice(g * cg, (g + 1) * cg), slice(None), *kk)],
            )
            out[(slice(None), slice(g * og, (g + 1) * og), *sl)] += contrib
    crop = tuple(slice(p[j], full[j] - p[j]) for j in range(d))
    out = out[(slice(None), slice(None), *crop)]
    if b is not None:
        out = out + b.reshape(1, -1, *([1] * d))
    return out


def ref_unfold(x, k, dilation=1, padding=0, stride=1):
    n, c, h, w = x.shape
    xp = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    oh = (h + 2 * padding - dilation * (k[0] - 1) - 1) // stride + 1
    ow = (w + 2 * padding - dilation * (k[1] - 1) - 1) // stride + 1
    cols = np.zeros((n, c, k[0], k[1], oh, ow), dtype=x.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            cols[:, :, i, j] = xp[
                :,
                :,
                i * dilation : i * dilation + stride * (oh - 1) + 1 : stride,
                j * dilation : j * dilation + stride * (ow - 1) + 1 : stride,
            ]
    return cols.reshape(n, c * k[0] * k[1], oh * ow)


def ref_fold(cols, size, k, dilation=1, padding=0, stride=1):
    n = cols.shape[0]
    c = cols.shape[1] // (k[0] * k[1])
    oh = (size[0] + 2 * padding - dilation * (k[0] - 1) - 1) // stride + 1
    ow = (size[1] + 2 * padding - dilation * (k[1] - 1) - 1) // stride + 1
    cols = cols.reshape(n, c, k[0], k[1], oh, ow)
    out = np.zeros((n, c, size[0] + 2 * padding, size[1] + 2 * padding), dtype=cols.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            out[
                :,
                :,
                i * dilation : i * dilation + stride * (oh - 1) + 1 : stride,
                j * dilation : j * dilation + stride * (ow - 1) + 1 : stride,
            ] += cols[:, :, i, j]
    return out[:, :, padding : padding + size[0], padding : padding + size[1]]


# ------------------------------------------------------------------------ forward values

CONV_CASES = [
    # (spatial input size, kernel, kwargs)
    ((11,), (3,), {}),
    ((12,), (4,), {"stride": 3, "padding": 2, "dilation": 2}),
    ((10,), (1,), {}),
    ((9, 8), (3, 3), {"padding": 1}),
    ((9, 8), (3, 2), {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)}),
    ((7, 7), (1, 1), {}),
    ((7, 7), (1, 1), {"stride": 2}),
    ((8, 9), (3, 3), {"groups": 2, "stride": 2}),
    ((5, 6, 4), (3, 2, 2), {"padding": (1, 0, 1), "stride": (1, 2, 1)}),
    ((5, 5, 5), (2, 2, 2), {"groups": 2, "dilation": 2}),
]


@pytest.mark.parametrize("size,kernel,kw", CONV_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_matches_numpy(size, kernel, kw, dtype):
    d = len(size)
    groups = kw.get("groups", 1)
    x = RNG.standard_normal((2, 4, *size)).astype(dtype)
    w = RNG.standard_normal((6, 4 // groups, *kernel)).astype(dtype)
    b = RNG.standard_normal(6).astype(dtype)
    fn = (F.conv1d, F.conv2d, F.conv3d)[d - 1]
    got = fn(_t(x), _t(w), _t(b), **kw).numpy()
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref_conv(x, w, b, **kw), rtol=tol, atol=tol)


TRANSPOSE_CASES = [
    ((7,), (3,), {}),
    ((6,), (3,), {"stride": 2, "padding": 1, "output_padding": 1}),
    ((5,), (2,), {"stride": 1, "dilation": 2, "output_padding": 1}),
    ((5, 4), (3, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
    ((4, 5), (3, 2), {"stride": (2, 3), "padding": (1, 0), "output_padding": (1, 2), "dilation": (1, 2), "groups": 2}),
    ((4, 4), (1, 1), {}),
    ((3, 4, 3), (2, 3, 2), {"stride": 2, "padding": (0, 1, 0)}),
]  # fmt: skip


@pytest.mark.parametrize("size,kernel,kw", TRANSPOSE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_transpose_matches_numpy(size, kernel, kw, dtype):
    d = len(size)
    groups = kw.get("groups", 1)
    x = RNG.standard_normal((2, 4, *size)).astype(dtype)
    w = RNG.standard_normal((4, 6 // groups, *kernel)).astype(dtype)
    b = RNG.standard_normal(6).astype(dtype)
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[d - 1]
    got = fn(_t(x), _t(w), _t(b), **kw).numpy()
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref_conv_transpose(x, w, b, **kw), rtol=tol, atol=tol)


def test_batch_larger_than_threads_and_single_image_agree():
    # A batch of one splits each image's GEMM by columns; a large batch
    # splits images over threads: both must give the reference.
    x = RNG.standard_normal((9, 8, 40, 40)).astype(np.float32)
    w = RNG.standard_normal((16, 8, 3, 3)).astype(np.float32)
    whole = F.conv2d(_t(x), _t(w), padding=1).numpy()
    one = F.conv2d(_t(x[:1]), _t(w), padding=1).numpy()
    np.testing.assert_allclose(whole[:1], one, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(one, ref_conv(x[:1], w, padding=1), rtol=1e-4, atol=1e-4)
    wt = RNG.standard_normal((8, 16, 3, 3)).astype(np.float32)
    got = F.conv_transpose2d(_t(x[:1]), _t(wt), stride=2).numpy()
    np.testing.assert_allclose(got, ref_conv_transpose(x[:1], wt, stride=2), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "size,kernel,kw",
    [
        ((13,), (3,), {"padding": 1}),
        ((9, 7), (3, 3), {"padding": 1}),
        ((8, 11), (3, 2), {"padding": (2, 1), "dilation": (2, 1)}),
        ((6, 6), (3, 3), {"groups": 2}),
        ((10, 5), (1, 3), {"padding": (0, 1)}),
    ],
)
def test_small_images_batched_per_gemm_forward_and_grads(size, kernel, kw):
    # Small images several to a GEMM on the padded-width layout (forward
    # and, through the transposed convolution, grad_input); an odd batch
    # leaves a short last group on each thread.
    groups = kw.get("groups", 1)
    x = RNG.standard_normal((11, 4, *size))
    w = RNG.standard_normal((6, 4 // groups, *kernel))
    b = RNG.standard_normal(6)
    fn = (F.conv1d, F.conv2d)[len(size) - 1]
    xt, wt, bt = _t(x, True), _t(w, True), _t(b, True)
    y = fn(xt, wt, bt, **kw)
    np.testing.assert_allclose(y.detach().numpy(), ref_conv(x, w, b, **kw), atol=1e-10)
    g = RNG.standard_normal(tuple(y.shape))
    y.backward(_t(g))
    gx = ref_conv_transpose(g, w, **kw)
    np.testing.assert_allclose(xt.grad.numpy(), gx, atol=1e-10)
    np.testing.assert_allclose(
        bt.grad.numpy(), g.sum(axis=tuple(i for i in range(g.ndim) if i != 1))
    )
    # The output is linear in the weight: d<g, y>/dw[i] = <g, conv(x, e_i)>.
    gw = np.zeros_like(w)
    for i in np.ndindex(*w.shape):
        e = np.zeros_like(w)
        e[i] = 1.0
        gw[i] = (ref_conv(x, e, **kw) * g).sum()
    np.testing.assert_allclose(wt.grad.numpy(), gw, atol=1e-9)
    f32 = fn(*(_t(a.astype(np.float32)) for a in (x, w, b)), **kw).numpy()
    np.testing.assert_allclose(f32, ref_conv(x, w, b, **kw), rtol=1e-4, atol=1e-4)


def test_unbatched_input_matches_batched():
    x = RNG.standard_normal((3, 7, 6))
    w = RNG.standard_normal((5, 3, 3, 3))
    got = F.conv2d(_t(x), _t(w), padding=1)
    assert got.shape == (5, 7, 6)
    np.testing.assert_allclose(got.numpy(), ref_conv(x[None], w, padding=1)[0], atol=1e-12)
    wt = RNG.standard_normal((3, 2, 2))
    got = F.conv_transpose1d(_t(x[:, 0]), _t(wt), stride=2)
    np.testing.assert_allclose(
        got.numpy(), ref_conv_transpose(x[None, :, 0], wt, stride=2)[0], atol=1e-12
    )


def test_non_contiguous_input_and_weight():
    x = RNG.standard_normal((2, 6, 8, 4))
    w = RNG.standard_normal((3, 2, 3, 3))
    xt = _t(x).transpose(2, 3)  # (2, 6, 4, 8), strided
    wt = _t(np.ascontiguousarray(w.transpose(1, 0, 2, 3))).transpose(0, 1)
    assert not xt.is_contiguous() and not wt.is_contiguous()
    got = F.conv2d(xt, wt, groups=3, padding=1).numpy()
    ref = ref_conv(np.ascontiguousarray(x.transpose(0, 1, 3, 2)), w, groups=3, padding=1)
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_half_precision_and_integer_dtypes():
    x = RNG.standard_normal((1, 2, 6, 6)).astype(np.float32)
    w = RNG.standard_normal((3, 2, 3, 3)).astype(np.float32)
    ref = ref_conv(x, w)
    for dt in (rtorch.float16, rtorch.bfloat16):
        got = F.conv2d(_t(x).to(dt), _t(w).to(dt))
        assert got.dtype == dt
        np.testing.assert_allclose(got.float().numpy(), ref, rtol=0.05, atol=0.1)
    xi = RNG.integers(-5, 5, (1, 2, 6, 6))
    wi = RNG.integers(-5, 5, (3, 2, 3, 3))
    got = F.conv2d(_t(xi), _t(wi))
    assert got.dtype == rtorch.int64
    np.testing.assert_array_equal(got.numpy(), ref_conv(xi, wi))


def test_padding_strings():
    x = RNG.standard_normal((1, 2, 7, 6))
    for k, dil in (((3, 3), 1), ((4, 2), 1), ((3, 4), 2)):
        w = RNG.standard_normal((3, 2, *k))
        tot = [dil * (kk - 1) for kk in k]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = F.conv2d(_t(x), _t(w), padding="same", dilation=dil)
        # Odd totals pad one more at the end (with a warning), as PyTorch.
        assert len(caught) == any(t % 2 for t in tot)
        assert got.shape == (1, 3, 7, 6)
        xp = np.pad(x, [(0, 0), (0, 0)] + [(t // 2, t - t // 2) for t in tot])
        np.testing.assert_allclose(got.numpy(), ref_conv(xp, w, dilation=dil), atol=1e-12)
    w = RNG.standard_normal((3, 2, 3, 3))
    np.testing.assert_allclose(
        F.conv2d(_t(x), _t(w), padding="valid").numpy(), ref_conv(x, w), atol=1e-12
    )


def test_unfold_fold_match_numpy():
    x = RNG.standard_normal((2, 3, 7, 6))
    for kw in ({}, {"dilation": 2, "padding": 1, "stride": 2}, {"stride": 3}):
        k = (3, 2)
        cols = F.unfold(_t(x), k, **kw).numpy()
        np.testing.assert_allclose(cols, ref_unfold(x, k, **kw), atol=1e-12)
        back = F.fold(_t(cols), (7, 6), k, **kw).numpy()
        np.testing.assert_allclose(back, ref_fold(cols, (7, 6), k, **kw), atol=1e-12)
    # Unbatched.
    got = F.unfold(_t(x[0]), 2)
    assert got.shape == (12, 30)
    np.testing.assert_allclose(got.numpy(), ref_unfold(x[:1], (2, 2))[0], atol=1e-12)
    assert F.fold(got, (6, 7), 2).shape == (3, 6, 7)


# ------------------------------------------------------------------------ gradients


GRAD_CASES = [
    ("conv1d", (2, 2, 7), (3, 2, 3), {"stride": 2, "padding": 1}),
    ("conv2d", (2, 2, 5, 4), (2, 2, 2, 3), {"padding": (1, 0), "dilation": (2, 1)}),
    ("conv2d", (1, 4, 5, 5), (4, 2, 3, 3), {"groups": 2, "stride": 2, "padding": 1}),
    ("conv2d", (2, 3, 3, 3), (2, 3, 1, 1), {}),
    ("conv3d", (1, 2, 3, 4, 3), (2, 1, 2, 2, 2), {"groups": 2, "padding": 1}),
    ("conv_transpose1d", (2, 2, 4), (2, 3, 3), {"stride": 2, "output_padding": 1}),
    ("conv_transpose2d", (1, 4, 3, 3), (4, 1, 3, 2), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}),
    ("conv_transpose2d", (1, 2, 3, 3), (2, 2, 2, 2), {"dilation": 2, "output_padding": 1}),
    ("conv_transpose3d", (1, 2, 2, 3, 2), (2, 2, 2, 2, 2), {"stride": (1, 2, 1)}),
]  # fmt: skip


@pytest.mark.parametrize("name,xs,ws,kw", GRAD_CASES)
def test_gradcheck_and_gradgradcheck(name, xs, ws, kw):
    fn = getattr(F, name)
    x = _t(RNG.standard_normal(xs), True)
    w = _t(RNG.standard_normal(ws), True)
    nb = ws[1] * kw.get("groups", 1) if "transpose" in name else ws[0]
    b = _t(RNG.standard_normal(nb), True)

    def f(x, w, b):
        return fn(x, w, b, **kw)

    assert gradcheck(f, (x, w, b))
    assert gradgradcheck(f, (x, w, b))


def test_grad_fn_name_and_fused_backward_matches_composite():
    x = _t(RNG.standard_normal((3, 4, 6, 6)), True)
    w = _t(RNG.standard_normal((6, 2, 3, 3)), True)
    y = F.conv2d(x, w, stride=2, padding=1, groups=2)
    assert type(y.grad_fn).__name__ == "ConvolutionBackward0" or y.grad_fn.name() == (
        "ConvolutionBackward0"
    )
    g = _t(RNG.standard_normal(tuple(y.shape)))
    fast = rtorch.autograd.grad(y, (x, w), g)
    y2 = F.conv2d(x, w, stride=2, padding=1, groups=2)
    graph = rtorch.autograd.grad(y2, (x, w), g, create_graph=True)
    for a, b in zip(fast, graph, strict=True):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), atol=1e-10)


def test_unfold_fold_gradchecks():
    x = _t(RNG.standard_normal((1, 2, 4, 5)), True)
    assert gradcheck(lambda a: F.unfold(a, (2, 3), dilation=1, padding=1, stride=2), (x,))
    assert gradgradcheck(lambda a: F.unfold(a, 2, padding=1), (x,))
    c = _t(RNG.standard_normal((1, 8, 6)), True)
    assert gradcheck(lambda a: F.fold(a, (3, 4), 2), (c,))
    assert gradgradcheck(lambda a: F.fold(a, (3, 4), 2), (c,))


def test_backward_float32_matches_float64():
    x = RNG.standard_normal((4, 3, 10, 10))
    w = RNG.standard_normal((8, 3, 3, 3))
    grads = []
    for dt in (np.float32, np.float64):
        xt, wt = _t(x.astype(dt), True), _t(w.astype(dt), True)
        bt = _t(np.zeros(8, dt), True)
        F.conv2d(xt, wt, bt, padding=1).square().sum().backward()
        grads.append([t.grad.numpy().astype(np.float64) for t in (xt, wt, bt)])
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


# ------------------------------------------------------------------------ direct float32 kernels


def ref_weight_grad(x, g, kernel, padding=0, dilation=1):
    """d<g, conv(x, w)>/dw at stride 1, one group: each tap's input window against g."""
    d = x.ndim - 2
    p, dl = ([v] * d if isinstance(v, int) else list(v) for v in (padding, dilation))
    xp = np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in p])
    out = g.shape[2:]
    gw = np.zeros((g.shape[1], x.shape[1], *kernel))
    for kk in itertools.product(*(range(v) for v in kernel)):
        sl = tuple(slice(kk[j] * dl[j], kk[j] * dl[j] + out[j]) for j in range(d))
        patch = xp[(slice(None), slice(None), *sl)]
        axes = [0, *range(2, g.ndim)]
        gw[(slice(None), slice(None), *kk)] = np.tensordot(g, patch, axes=(axes, axes))
    return gw


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = rtorch.get_num_threads()
    rtorch.set_num_threads(request.param)
    yield request.param
    rtorch.set_num_threads(before)


DIRECT_CASES = [
    # (batch, cin, cout, spatial size, kernel, kwargs): stride-1 float32
    # convolutions on the direct kernels. Lines of 8 to two vectors with a
    # masked tail, channels not a multiple of the 4-channel block, a batch
    # of one (output channels split over threads) and a larger one
    # (vectors of several images in one tile), 1-d, dilation, a 1x1 kernel
    # with padding.
    (3, 5, 7, (13, 19), (3, 3), {"padding": 1}),
    (1, 3, 10, (12, 20), (3, 3), {"padding": 1}),
    (9, 4, 8, (10, 10), (3, 3), {"padding": 1}),
    (2, 6, 5, (9, 17), (5, 3), {"padding": (2, 1), "dilation": (1, 2)}),
    (4, 6, 5, (37,), (5,), {"padding": 2}),
    (2, 3, 4, (8, 8), (1, 1), {"padding": 1}),
    (2, 4, 6, (11, 16), (3, 3), {}),
    (5, 16, 16, (16, 16), (3, 3), {"padding": 1}),
    # Weight gradients with the output channels in the vector lanes (48 or
    # more, at most a quarter of the last vector unused), each large
    # enough to run on two threads: 40 channels (8 lanes unused), 80 (a
    # tile of four vectors, then one of one), 81 (input channel, tap)
    # pairs (a short last tile), a batch of one (the pairs split over the
    # threads), dilation, 1-d.
    (3, 16, 40, (20, 27), (3, 3), {"padding": 1}),
    (2, 9, 80, (13, 21), (3, 3), {"padding": 1}),
    (1, 16, 64, (18, 18), (3, 3), {"padding": 1}),
    (5, 8, 48, (9, 17), (3, 5), {"padding": (1, 2), "dilation": (2, 1)}),
    (3, 24, 64, (200,), (3,), {"padding": 1}),
]


@pytest.mark.parametrize("n,cin,cout,size,kernel,kw", DIRECT_CASES)
def test_direct_float32_forward_and_grads_match_numpy(threads, n, cin, cout, size, kernel, kw):
    x = RNG.standard_normal((n, cin, *size))
    w = RNG.standard_normal((cout, cin, *kernel))
    b = RNG.standard_normal(cout)
    fn = (F.conv1d, F.conv2d)[len(size) - 1]
    xt, wt, bt = (_t(a.astype(np.float32), True) for a in (x, w, b))
    y = fn(xt, wt, bt, **kw)
    np.testing.assert_allclose(y.detach().numpy(), ref_conv(x, w, b, **kw), rtol=1e-4, atol=1e-4)
    g = RNG.standard_normal(tuple(y.shape))
    y.backward(_t(g.astype(np.float32)))
    gx = ref_conv_transpose(g, w, **kw)
    np.testing.assert_allclose(xt.grad.numpy(), gx, rtol=1e-4, atol=1e-3)
    gw = ref_weight_grad(x, g, kernel, kw.get("padding", 0), kw.get("dilation", 1))
    np.testing.assert_allclose(wt.grad.numpy(), gw, rtol=1e-4, atol=1e-3)
    gb = g.sum(axis=tuple(i for i in range(g.ndim) if i != 1))
    np.testing.assert_allclose(bt.grad.numpy(), gb, rtol=1e-4, atol=1e-3)


def test_direct_float32_forward_is_the_same_on_any_thread_count():
    # Threads claim whole images, then parts (ranges of channel blocks) of
    # the last ones; each output still has one summation order, so the
    # result does not depend on the split (3 threads: 3 parts of 3 blocks).
    x = RNG.standard_normal((5, 8, 12, 20))
    w = RNG.standard_normal((10, 8, 3, 3))
    xt, wt = _t(x.astype(np.float32)), _t(w.astype(np.float32))
    before = rtorch.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            rtorch.set_num_threads(n)
            outs.append(F.conv2d(xt, wt, padding=1).numpy())
    finally:
        rtorch.set_num_threads(before)
    np.testing.assert_array_equal(outs[1], outs[0])
    np.testing.assert_array_equal(outs[2], outs[0])
    np.testing.assert_allclose(outs[0], ref_conv(x, w, padding=1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "size,kernel,kw",
    [
        ((12, 14), (3, 3), {}),  # stride 1: the direct kernels
        ((12, 14), (3, 3), {"padding": 1}),
        ((12, 14), (3, 3), {"padding": 2, "dilation": (2, 1)}),
        ((30,), (4,), {"padding": 1}),
        ((12, 14), (3, 3), {"padding": 3}),  # padding past the kernel: GEMM
        ((12, 14), (3, 3), {"dilation": 2, "output_padding": 1}),  # GEMM
        ((12, 14), (3, 3), {"groups": 2}),  # GEMM
    ],
)
def test_float32_conv_transpose_stride_1_matches_numpy(threads, size, kernel, kw):
    groups = kw.get("groups", 1)
    x = RNG.standard_normal((3, 4, *size))
    w = RNG.standard_normal((4, 6 // groups, *kernel))
    b = RNG.standard_normal(6)
    fn = (F.conv_transpose1d, F.conv_transpose2d)[len(size) - 1]
    got = fn(*(_t(a.astype(np.float32)) for a in (x, w, b)), **kw).numpy()
    np.testing.assert_allclose(got, ref_conv_transpose(x, w, b, **kw), rtol=1e-4, atol=1e-4)


def test_float32_groups_fall_back_and_match_numpy():
    x = RNG.standard_normal((3, 4, 12, 16))
    w = RNG.standard_normal((6, 2, 3, 3))
    xt, wt = _t(x.astype(np.float32), True), _t(w.astype(np.float32), True)
    y = F.conv2d(xt, wt, padding=1, groups=2)
    np.testing.assert_allclose(y.detach().numpy(), ref_conv(x, w, padding=1, groups=2), atol=1e-4)
    g = RNG.standard_normal(tuple(y.shape))
    y.backward(_t(g.astype(np.float32)))
    gx = ref_conv_transpose(g, w, padding=1, groups=2)
    np.testing.assert_allclose(xt.grad.numpy(), gx, rtol=1e-4, atol=1e-3)


def test_float32_lanes_past_a_line_end_stay_out_of_results(threads):
    # A 13-wide line is one vector whose last lanes lie on the next line's
    # first columns. An infinite value there must not reach outputs or
    # weight gradients that never use it (the masked lanes compute on it).
    x = RNG.standard_normal((2, 3, 9, 13))
    x[:, :, 1:, 0] = np.inf
    w = RNG.standard_normal((4, 3, 3, 3))
    xt, wt = _t(x.astype(np.float32)), _t(w.astype(np.float32), True)
    y = F.conv2d(xt, wt, padding=1)
    g = RNG.standard_normal(tuple(y.shape))
    y.backward(_t(g.astype(np.float32)))
    finite = np.where(np.isinf(x), 0.0, x)
    # Outputs from column 2 on never read column 0, nor does tap kx = 2.
    ref = ref_conv(finite, w, padding=1)
    np.testing.assert_allclose(y.detach().numpy()[..., 2:], ref[..., 2:], rtol=1e-4, atol=1e-4)
    gw = ref_weight_grad(finite, g, (3, 3), 1)
    np.testing.assert_allclose(wt.grad.numpy()[..., 2], gw[..., 2], rtol=1e-4, atol=1e-3)


# ------------------------------------------------------------------------ Winograd F(2x2, 3x3)

# float32 3x3 stride-1 convolutions with 32 or more channels in and out run on
# Winograd F(2x2, 3x3): it rounds differently from a direct sum, within a
# small multiple of the rounding of the sum of |w| |x| (checked at 1e-5 of it).
WINOGRAD_RTOL = 1e-5

WINOGRAD_CASES = [
    # (batch, cin, cout, spatial size, padding): at the channel threshold;
    # odd sizes (the last tile row and column half outside the output); a
    # batch of one; no padding and padding 2 or (1, 2); one input channel
    # past the threshold; three 16x16 images (blocks of two images, then
    # one); a 40x70 image (blocks of tile rows, lines of 35 tiles: two
    # vectors and a short one); 4x4 images (one tile row of two tiles); two
    # 14x14 images (a small batch: blocks of 4 and 3 tile rows, for the
    # threads).
    (2, 32, 32, (16, 16), 1),
    (1, 32, 40, (7, 9), 0),
    (3, 33, 32, (5, 11), 2),
    (2, 32, 48, (13, 12), (1, 2)),
    (3, 32, 32, (16, 16), 1),
    (1, 32, 32, (40, 70), 1),
    (6, 40, 36, (4, 4), 1),
    (2, 48, 32, (14, 14), 1),
]


def _winograd_check(got, x, w, conv, **kw):
    """|got - conv(x, w)| within WINOGRAD_RTOL of conv(|x|, |w|)."""
    ref = conv(x, w, **kw)
    scale = conv(np.abs(x), np.abs(w), **kw)
    err = np.abs(got - ref)
    assert got.shape == ref.shape
    assert np.all(err <= WINOGRAD_RTOL * scale + 1e-6), float((err / (scale + 1e-30)).max())


@pytest.mark.parametrize("n,cin,cout,size,padding", WINOGRAD_CASES)
def test_winograd_float32_forward_and_grads_match_numpy(threads, n, cin, cout, size, padding):
    x = RNG.standard_normal((n, cin, *size))
    w = RNG.standard_normal((cout, cin, 3, 3))
    b = RNG.standard_normal(cout)
    xt, wt, bt = (_t(a.astype(np.float32), True) for a in (x, w, b))
    y = F.conv2d(xt, wt, bt, padding=padding)
    _winograd_check(y.detach().numpy() - b.reshape(1, -1, 1, 1), x, w, ref_conv, padding=padding)
    g = RNG.standard_normal(tuple(y.shape))
    y.backward(_t(g.astype(np.float32)))
    # The input gradient is the transposed convolution: Winograd on the
    # flipped, transposed weight.
    _winograd_check(xt.grad.numpy(), g, w, ref_conv_transpose, padding=padding)
    gw = ref_weight_grad(x, g, (3, 3), padding)
    np.testing.assert_allclose(wt.grad.numpy(), gw, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(bt.grad.numpy(), g.sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_winograd_float32_conv_transpose_matches_numpy(threads, padding):
    # Stride-1 transposed convolutions with padding up to 2 are
    # convolutions with padding 2 - p: Winograd.
    x = RNG.standard_normal((2, 32, 9, 14))
    w = RNG.standard_normal((32, 34, 3, 3))
    b = RNG.standard_normal(34)
    got = F.conv_transpose2d(*(_t(a.astype(np.float32)) for a in (x, w, b)), padding=padding)
    got = got.numpy() - b.reshape(1, -1, 1, 1)
    _winograd_check(got, x, w, ref_conv_transpose, padding=padding)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_inputs_reach_only_the_outputs_that_read_them(bad):
    # Winograd would spread an inf over its whole tile; such inputs take the
    # direct kernels, so outputs whose 3x3 window misses it stay finite.
    x = RNG.standard_normal((2, 32, 8, 8)).astype(np.float32)
    x[1, 5, 3, 3] = bad
    w = RNG.standard_normal((32, 32, 3, 3)).astype(np.float32)
    got = F.conv2d(_t(x), _t(w), padding=1).numpy()
    with np.errstate(invalid="ignore"):
        ref = ref_conv(x.astype(np.float64), w.astype(np.float64), padding=1)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(ref))
    assert np.isfinite(got[0]).all() and np.isfinite(got[1][:, [0, 1, 5, 6, 7]]).all()
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-4, atol=1e-3)
    # A non-finite weight, and inputs so large that products overflow.
    x[1, 5, 3, 3] = 3e38
    w[3, 2, 0, 0] = bad
    got = F.conv2d(_t(x), _t(w), padding=1).numpy()
    with np.errstate(invalid="ignore", over="ignore"):
        ref = ref_conv(x.astype(np.float64), w.astype(np.float64), padding=1).astype(np.float32)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(ref))


def test_winograd_float32_is_the_same_on_any_thread_count():
    # Blocks of tiles are fixed by the shape, each computed by one thread:
    # the result does not depend on how many threads share them.
    x = RNG.standard_normal((5, 32, 12, 20))
    w = RNG.standard_normal((40, 32, 3, 3))
    xt, wt = _t(x.astype(np.float32)), _t(w.astype(np.float32))
    big = _t(RNG.standard_normal((1, 32, 40, 70)).astype(np.float32))
    before = rtorch.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            rtorch.set_num_threads(n)
            outs.append((F.conv2d(xt, wt, padding=1).numpy(), F.conv2d(big, wt).numpy()))
    finally:
        rtorch.set_num_threads(before)
    for small, large in outs[1:]:
        np.testing.assert_array_equal(small, outs[0][0])
        np.testing.assert_array_equal(large, outs[0][1])
    _winograd_check(outs[0][0], x, w, ref_conv, padding=1)


# ------------------------------------------------------------------------ modules


def test_conv_module_api():
    m = nn.Conv2d(3, 64, 3, padding=1)
    assert repr(m) == "Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert list(m.state_dict()) == ["weight", "bias"]
    assert m.weight.shape == (64, 3, 3, 3) and m.bias.shape == (64,)
    bound = 1 / math.sqrt(27)
    assert m.weight.abs().max().item() <= bound and m.bias.abs().max().item() <= bound
    assert m.weight.abs().max().item() > bound / 2
    m = nn.Conv2d(3, 4, (3, 5), stride=2, padding=1, dilation=2, bias=False, padding_mode="reflect")
    assert repr(m) == (
        "Conv2d(3, 4, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), dilation=(2, 2), "
        "bias=False, padding_mode=reflect)"
    )
    assert list(m.state_dict()) == ["weight"]
    assert repr(nn.Conv1d(2, 4, 3, padding="same")) == (
        "Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=same)"
    )
    assert repr(nn.Conv3d(2, 4, 3, groups=2)) == (
        "Conv3d(2, 4, kernel_size=(3, 3, 3), stride=(1, 1, 1), groups=2)"
    )
    t = nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=1, groups=1)
    assert repr(t) == (
        "ConvTranspose2d(3, 4, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1))"
    )
    assert t.weight.shape == (3, 4, 3, 3)
    assert repr(nn.ConvTranspose1d(2, 4, 3, dilation=2, padding=1, bias=False)) == (
        "ConvTranspose1d(2, 4, kernel_size=(3,), stride=(1,), padding=(1,), dilation=(2,), "
        "bias=False)"
    )
    assert repr(nn.Unfold(2)) == "Unfold(kernel_size=2, dilation=1, padding=0, stride=1)"
    assert repr(nn.Fold((4, 4), 2)) == (
        "Fold(output_size=(4, 4), kernel_size=2, dilation=1, padding=0, stride=1)"
    )


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_modes(mode):
    m = nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode=mode).double()
    x = RNG.standard_normal((1, 2, 5, 6))
    npmode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (2, 2)], mode=npmode)
    ref = ref_conv(xp, m.weight.detach().numpy(), m.bias.detach().numpy())
    np.testing.assert_allclose(m(_t(x)).detach().numpy(), ref, atol=1e-12)
    m1 = nn.Conv1d(2, 3, 4, padding="same", padding_mode=mode).double()
    assert m1(_t(x[:, :, 0])).shape == (1, 3, 6)


def test_conv_transpose_output_size():
    m = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    x = rtorch.randn(1, 4, 6, 6)
    assert m(x).shape == (1, 2, 11, 11)
    assert m(x, output_size=[12, 12]).shape == (1, 2, 12, 12)
    assert m(x, output_size=(1, 2, 12, 11)).shape == (1, 2, 12, 11)
    with pytest.raises(ValueError, match="requested an output size of \\[13, 13\\]"):
        m(x, output_size=[13, 13])


def test_modules_train_end_to_end():
    rtorch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1))
    x = rtorch.randn(4, 1, 6, 6)
    target = x * 2
    opt = rtorch.optim.SGD(net.parameters(), lr=0.05)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = F.mse_loss(net(x), target)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first / 4


def test_module_constructor_errors():
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        nn.Conv2d(2, 4, 3, groups=0)
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.Conv2d(2, 3, 3, groups=2)
    with pytest.raises(ValueError, match="Invalid padding string 'foo'"):
        nn.Conv2d(2, 3, 3, padding="foo")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv2d(2, 3, 3, padding="same", stride=2)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(2, 3, 3, padding_mode="mirror")
    with pytest.raises(
        ValueError, match='Only "zeros" padding mode is supported for ConvTranspose2d'
    ):
        nn.ConvTranspose2d(2, 3, 3, padding_mode="reflect")


# ------------------------------------------------------------------------ errors


ERRORS = [
    (lambda: F.conv2d(rtorch.randn(2, 3), rtorch.randn(4, 3, 3, 3)),
     "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [2, 3]"),
    (lambda: F.conv2d(rtorch.randn(32, 4, 32, 32), rtorch.randn(64, 3, 3, 3)),
     "Given groups=1, weight of size [64, 3, 3, 3], expected input[32, 4, 32, 32] to have 3 channels, but got 4 channels instead"),
    (lambda: F.conv2d(rtorch.randn(1, 1, 2, 2), rtorch.randn(1, 1, 3, 3)),
     "Calculated padded input size per channel: (2 x 2). Kernel size: (3 x 3). Kernel size can't be greater than actual input size"),
    (lambda: F.conv2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(5, 1, 3, 3), groups=3),
     "Given groups=3, expected weight to be divisible by 3 at dimension 0, but got weight of size [[5, 1, 3, 3]] instead"),
    (lambda: F.conv2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(4, 3, 3, 3), rtorch.randn(3)),
     "Given weight of size [4, 3, 3, 3], expected bias to be 1-dimensional with 4 elements, but got bias of size [3] instead"),
    (lambda: F.conv2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(4, 3, 3)),
     "expected stride to be a single integer value or a list of 1 values to match the convolution dimensions, but got stride=[1, 1]"),
    (lambda: F.conv2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(4, 3, 3, 3), stride=0),
     "non-positive stride is not supported"),
    (lambda: F.conv2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(4, 3, 3, 3), padding=-1),
     "negative padding is not supported"),
    (lambda: F.conv2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(4, 3, 3, 3), dilation=0),
     "non-positive dilation is not supported"),
    (lambda: F.conv2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(4, 3, 3, 3), groups=0),
     "non-positive groups is not supported"),
    (lambda: F.conv2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(4, 3, 3, 3, dtype=rtorch.float64)),
     "Input type (torch.FloatTensor) and weight type (torch.DoubleTensor) should be the same or input should be a MKLDNN tensor and weight is a dense tensor"),
    (lambda: F.conv2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(4, 3, 3, 3), rtorch.randn(4, dtype=rtorch.float64)),
     "Input type (float) and bias type (double) should be the same"),
    (lambda: F.conv2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(4, 3, 3, 3), padding="same", stride=2),
     "padding='same' is not supported for strided convolutions"),
    (lambda: F.conv2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(4, 3, 3, 3), padding="foo"),
     "Invalid padding string: 'foo'"),
    (lambda: F.conv_transpose2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(3, 4, 3, 3), output_padding=1),
     "output padding must be smaller than either stride or dilation, but got output_padding_height: 1 output_padding_width: 1 stride_height: 1 stride_width: 1 dilation_height: 1 dilation_width: 1"),
    (lambda: F.conv_transpose1d(rtorch.randn(2, 3, 8), rtorch.randn(3, 4, 3), output_padding=1),
     "output padding must be smaller than either stride or dilation, but got output_padding_height: 0 output_padding_width: 1 stride_height: 1 stride_width: 1 dilation_height: 1 dilation_width: 1"),
    (lambda: F.conv_transpose2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(4, 4, 3, 3)),
     "Given transposed=1, weight of size [4, 4, 3, 3], expected input[2, 3, 8, 8] to have 4 channels, but got 3 channels instead"),
    (lambda: F.conv_transpose2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(3, 4, 3, 3), rtorch.randn(3)),
     "Given transposed=1, weight of size [3, 4, 3, 3], expected bias to be 1-dimensional with 4 elements, but got bias of size [3] instead"),
    (lambda: F.conv_transpose2d(rtorch.randn(2, 3, 4, 4), rtorch.randn(3, 4, 3, 3), output_padding=-1),
     "negative output_padding is not supported"),
    (lambda: F.conv2d(rtorch.randn(2, 3, 8, 8), rtorch.randn(3, 3)),
     "weight should have at least three dimensions"),
    (lambda: F.unfold(rtorch.randn(2, 3, 4, 4, 4), 2),
     "Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other non-zero dimensions for input, but got: [2, 3, 4, 4, 4]"),
    (lambda: F.unfold(rtorch.randn(1, 3, 2, 2), 3),
     "Given input with spatial size (2, 2), kernel_size=(3, 3), dilation=(1, 1), padding=(0, 0), calculated shape of the array of sliding blocks as (0, 0), but its components must be at least one."),
    (lambda: F.unfold(rtorch.randn(2, 3, 4, 4), 2, stride=0),
     "stride should be greater than zero, but got stride_height: 0 stride_width: 0"),
    (lambda: F.fold(rtorch.randn(2, 12, 8), (4, 4), 2),
     "Given output_size=(4, 4), kernel_size=(2, 2), dilation=(1, 1), padding=(0, 0), stride=(1, 1), expected size of input's dimension 2 to match the calculated number of sliding blocks 3 * 3 = 9, but got input.size(2)=8."),
    (lambda: F.fold(rtorch.randn(2, 10, 9), (4, 4), 2),
     "Expected size of input's dimension 1 to be divisible by the product of kernel_size, but got input.size(1)=10 and kernel_size=(2, 2)."),
    (lambda: F.fold(rtorch.randn(2, 3, 12, 9), (4, 4), 2),
     "Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and non-zero dimensions for input, but got: [2, 3, 12, 9]"),
]  # fmt: skip


@pytest.mark.parametrize("fn,msg", ERRORS)
def test_errors_match_pytorch(fn, msg):
    with pytest.raises(RuntimeError) as e:
        fn()
    assert str(e.value) == msg


def test_bool_and_padding_type_errors():
    with pytest.raises(NotImplementedError, match="not implemented for 'Bool'"):
        F.conv2d(
            rtorch.ones(1, 1, 3, 3, dtype=rtorch.bool), rtorch.ones(1, 1, 1, 1, dtype=rtorch.bool)
        )
    with pytest.raises(TypeError, match="argument 'padding' must be tuple of ints, not str"):
        F.conv_transpose2d(rtorch.randn(1, 1, 3, 3), rtorch.randn(1, 1, 2, 2), padding="same")


def test_empty_batch():
    out = F.conv2d(rtorch.randn(0, 3, 8, 8), rtorch.randn(4, 3, 3, 3))
    assert out.shape == (0, 4, 6, 6)


# ------------------------------------------------------------------------ PyTorch parity


def test_matches_pytorch_forward_and_backward():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((3, 4, 9, 7)).astype(np.float32)
    w = RNG.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(6).astype(np.float32)
    kw = {"stride": 2, "padding": 1, "dilation": 1, "groups": 2}
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    rx, rw, rb = (_t(a, True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    ry = F.conv2d(rx, rw, rb, **kw)
    np.testing.assert_allclose(ry.detach().numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    g = RNG.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(g))
    ry.backward(_t(g))
    for r, t in ((rx, tx), (rw, tw), (rb, tb)):
        np.testing.assert_allclose(r.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-3)
