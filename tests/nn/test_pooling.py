"""Pooling (max, average, adaptive, unpooling, power-average) against NumPy
loop references, float64 gradchecks, module API and PyTorch's errors."""

import itertools
import math

import numpy as np
import pytest

import rtorch
import rtorch.nn as nn
import rtorch.nn.functional as F
from rtorch.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(0)


def t(a, **kw):
    return rtorch.tensor(np.asarray(a), **kw)


def close(x, ref, tol=1e-6):
    np.testing.assert_allclose(x.detach().numpy(), ref, rtol=tol, atol=tol)


# ------------------------------------------------------------------ NumPy references


def out_size(n, k, s, p, d, ceil):
    num = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)
    o = num // s + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def np_max_pool(x, k, s, p, d, ceil):
    nd = len(k)
    lead, ins = x.shape[:-nd], x.shape[-nd:]
    outs = [out_size(ins[i], k[i], s[i], p[i], d[i], ceil) for i in range(nd)]
    flat = x.reshape(-1, math.prod(ins))
    y = np.empty((flat.shape[0], *outs))
    idx = np.empty((flat.shape[0], *outs), dtype=np.int64)
    for o in itertools.product(*(range(n) for n in outs)):
        taps = [[o[i] * s[i] - p[i] + j * d[i] for j in range(k[i])] for i in range(nd)]
        taps = [[v for v in tp if 0 <= v < ins[i]] for i, tp in enumerate(taps)]
        pos = [np.ravel_multi_index(c, ins) for c in itertools.product(*taps)]
        vals = flat[:, pos]
        am = vals.argmax(axis=1)
        # PyTorch's scan takes every NaN it meets: the last NaN wins.
        nan = np.isnan(vals)
        last_nan = vals.shape[1] - 1 - nan[:, ::-1].argmax(axis=1)
        am = np.where(nan.any(axis=1), last_nan, am)
        y[(slice(None), *o)] = vals[np.arange(len(am)), am]
        idx[(slice(None), *o)] = np.asarray(pos)[am]
    return y.reshape(*lead, *outs), idx.reshape(*lead, *outs)


def np_avg_windows(ins, k, s, p, ceil, include_pad):
    """Each output position of an average pooling over spatial shape ``ins``:
    ``(position, window slices, divisor)``."""
    nd = len(k)
    outs = [out_size(ins[i], k[i], s[i], p[i], 1, ceil) for i in range(nd)]
    for o in itertools.product(*(range(n) for n in outs)):
        sl, padded, clipped = [], 1, 1
        for i in range(nd):
            st = o[i] * s[i] - p[i]
            en = min(st + k[i], ins[i] + p[i])
            padded *= en - st
            st, en = max(st, 0), min(en, ins[i])
            clipped *= en - st
            sl.append(slice(st, en))
        yield o, tuple(sl), padded if include_pad else clipped


def np_avg_pool(x, k, s, p, ceil, include_pad, divisor=None):
    nd = len(k)
    lead, ins = x.shape[:-nd], x.shape[-nd:]
    outs = [out_size(ins[i], k[i], s[i], p[i], 1, ceil) for i in range(nd)]
    flat = x.reshape(-1, *ins)
    y = np.empty((flat.shape[0], *outs))
    for o, sl, div in np_avg_windows(ins, k, s, p, ceil, include_pad):
        total = flat[(slice(None), *sl)].reshape(flat.shape[0], -1).sum(1)
        y[(slice(None), *o)] = total / (divisor if divisor else div)
    return y.reshape(*lead, *outs)


def adaptive_windows(n, out):
    return [(o * n // out, -(-(o + 1) * n // out)) for o in range(out)]


def np_adaptive(x, outs, kind):
    nd = len(outs)
    lead, ins = x.shape[:-nd], x.shape[-nd:]
    flat = x.reshape(-1, math.prod(ins))
    y = np.empty((flat.shape[0], *outs))
    idx = np.empty((flat.shape[0], *outs), dtype=np.int64)
    wins = [adaptive_windows(ins[i], outs[i]) for i in range(nd)]
    for o in itertools.product(*(range(n) for n in outs)):
        ranges = [range(*wins[i][o[i]]) for i in range(nd)]
        pos = [np.ravel_multi_index(c, ins) for c in itertools.product(*ranges)]
        vals = flat[:, pos]
        if kind == "avg":
            y[(slice(None), *o)] = vals.mean(1)
        else:
            am = vals.argmax(1)
            y[(slice(None), *o)] = vals[np.arange(len(am)), am]
            idx[(slice(None), *o)] = np.asarray(pos)[am]
    return y.reshape(*lead, *outs), idx.reshape(*lead, *outs)


# ------------------------------------------------------------------ max pooling

MAX_CASES = [
    # (spatial shape, kernel, stride, padding, dilation, ceil_mode)
    ((9,), (3,), (2,), (1,), (1,), False),
    ((10,), (2,), (3,), (1,), (2,), True),
    ((7, 8), (2, 3), (2, 2), (1, 1), (1, 1), False),
    ((7, 8), (3, 2), (2, 3), (1, 0), (2, 1), True),
    ((5, 6, 7), (2, 2, 3), (2, 1, 2), (1, 0, 1), (1, 2, 1), False),
    ((5, 6, 7), (3, 2, 2), (2, 2, 3), (1, 1, 0), (1, 1, 2), True),
]


@pytest.mark.parametrize("shape,k,s,p,d,ceil", MAX_CASES)
@pytest.mark.parametrize("batched", [True, False])
def test_max_pool_values_and_indices_match_numpy(shape, k, s, p, d, ceil, batched):
    nd = len(shape)
    lead = (2, 3) if batched else (3,)
    x = RNG.standard_normal((*lead, *shape))
    fn = getattr(F, f"max_pool{nd}d")
    out, idx = fn(t(x), k, s, p, d, ceil_mode=ceil, return_indices=True)
    ry, ri = np_max_pool(x, k, s, p, d, ceil)
    close(out, ry)
    assert idx.dtype == rtorch.int64
    np.testing.assert_array_equal(idx.numpy(), ri)
    # Without indices, and in float32.
    close(fn(t(x.astype(np.float32)), k, s, p, d, ceil_mode=ceil), ry, 1e-6)


def test_max_pool_ceil_mode_last_window_starts_inside():
    # in=5, k=3, s=3, p=1: ceil would give 3 windows, but the third starts
    # at 6 - 1 = 5 >= 5 (in the right padding), so it is dropped.
    x = t(RNG.standard_normal((1, 1, 5)))
    assert F.max_pool1d(x, 3, 3, 1, ceil_mode=True).shape == (1, 1, 2)
    assert F.max_pool1d(x, 3, 3, 1, ceil_mode=False).shape == (1, 1, 2)
    assert F.max_pool1d(x, 2, 2, 0, ceil_mode=True).shape == (1, 1, 3)
    assert F.avg_pool1d(x, 2, 2, 0, ceil_mode=True).shape == (1, 1, 3)


def test_max_pool_nan_propagates_and_ties_keep_first():
    x = t([[[1.0, float("nan"), 3.0, 2.0, 2.0, 2.0]]])
    out, idx = F.max_pool1d(x, 3, return_indices=True)
    assert math.isnan(out[0, 0, 0].item()) and idx[0, 0, 0].item() == 1
    assert out[0, 0, 1].item() == 2.0 and idx[0, 0, 1].item() == 3


def test_max_pool_default_stride_and_tuple_args():
    x = t(RNG.standard_normal((2, 2, 6, 6)))
    a = F.max_pool2d(x, (2, 3))
    b = F.max_pool2d(x, [2, 3], stride=(2, 3))
    assert a.shape == (2, 2, 3, 2)
    close(a, b.numpy())


# Kernel 2 or 3 with stride 1 or 2 pool whole rows in vector blocks of 16,
# 8, 4 or 1 outputs (the last block overlapping); widths cover each block
# size and overlap, with padding and ceil mode adding edge outputs.
ROW_CASES = [
    # (width, kernel, stride, padding, ceil_mode)
    (w, k, s, p, c)
    for (k, s) in [(2, 2), (3, 2), (2, 1), (3, 1)]
    for w in (3, 9, 14, 17, 28, 37, 70)
    for (p, c) in [(0, False), (1, True)]
    if w + 2 * p >= k
]


@pytest.mark.parametrize("w,k,s,p,ceil", ROW_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_row_kernels_ties_and_nans(w, k, s, p, ceil, dtype):
    # Small integers make ties everywhere; a few NaNs (single and paired).
    x = RNG.integers(-2, 3, (2, 3, 5, w)).astype(dtype)
    flat = x.reshape(-1)
    flat[RNG.choice(flat.size, 4, replace=False)] = np.nan
    flat[:2] = np.nan
    out, idx = F.max_pool2d(t(x), k, s, p, 1, ceil_mode=ceil, return_indices=True)
    ry, ri = np_max_pool(x.astype(np.float64), (k, k), (s, s), (p, p), (1, 1), ceil)
    np.testing.assert_array_equal(out.numpy(), ry.astype(dtype))
    np.testing.assert_array_equal(idx.numpy(), ri)


def test_max_pool_row_kernels_infinities_and_3d():
    # All -inf windows keep their first index; 3-d pooling feeds the row
    # kernel several depth slices.
    x = np.full((1, 2, 4, 20), -np.inf, dtype=np.float32)
    x[0, 1, 1, 7] = np.inf
    out, idx = F.max_pool2d(t(x), 2, return_indices=True)
    ry, ri = np_max_pool(x.astype(np.float64), (2, 2), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(out.numpy(), ry)
    np.testing.assert_array_equal(idx.numpy(), ri)
    x3 = RNG.integers(0, 4, (2, 4, 5, 19)).astype(np.float64)
    out, idx = F.max_pool3d(t(x3), (2, 3, 3), (1, 2, 2), (1, 1, 1), return_indices=True)
    ry, ri = np_max_pool(x3, (2, 3, 3), (1, 2, 2), (1, 1, 1), (1, 1, 1), False)
    np.testing.assert_array_equal(out.numpy(), ry)
    np.testing.assert_array_equal(idx.numpy(), ri)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (2, 1, 0), (3, 1, 1)])
def test_max_pool_row_kernels_gradcheck(k, s, p):
    # Rows of 19: blocks of 8 (stride 2) or 16 (stride 1) plus an overlap.
    n = 2 * 4 * 19
    x = t((RNG.permutation(n) / n).reshape(1, 2, 4, 19), dtype=rtorch.float64)
    x.requires_grad_()
    fn = lambda a: F.max_pool2d(a, k, s, p)  # noqa: E731
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


# ------------------------------------------------------------------ average pooling

AVG_CASES = [
    # (spatial shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    ((9,), (3,), (2,), (1,), False, True, None),
    ((10,), (4,), (3,), (2,), True, False, None),
    ((7, 8), (3, 2), (2, 2), (1, 1), True, True, None),
    ((7, 8), (3, 3), (2, 3), (1, 1), True, False, None),
    ((7, 8), (2, 2), (1, 2), (0, 1), False, True, 3),
    ((5, 6, 7), (2, 3, 2), (2, 2, 1), (1, 1, 0), True, False, None),
    ((5, 6, 7), (3, 2, 2), (1, 2, 3), (1, 0, 1), False, True, 5),
]


@pytest.mark.parametrize("shape,k,s,p,ceil,inc,div", AVG_CASES)
def test_avg_pool_matches_numpy(shape, k, s, p, ceil, inc, div):
    nd = len(shape)
    x = RNG.standard_normal((2, 3, *shape))
    fn = getattr(F, f"avg_pool{nd}d")
    kw = {} if nd == 1 else {"divisor_override": div}
    out = fn(t(x), k, s, p, ceil, inc, **kw)
    close(out, np_avg_pool(x, k, s, p, ceil, inc, div if nd > 1 else None))
    # Unbatched input gives the same planes.
    close(fn(t(x[0]), k, s, p, ceil, inc, **kw), out[0].numpy())


def np_avg_pool_adjoint(g, in_shape, k, s, p, ceil, include_pad):
    """The gradient of ``np_avg_pool`` at its input for the output gradient ``g``."""
    nd = len(k)
    ins = in_shape[-nd:]
    flat = g.reshape(-1, *g.shape[-nd:])
    gx = np.zeros((flat.shape[0], *ins))
    for o, sl, div in np_avg_windows(ins, k, s, p, ceil, include_pad):
        view = gx[(slice(None), *sl)]
        view += (flat[(slice(None), *o)] / div).reshape(-1, *([1] * nd))
    return gx.reshape(in_shape)


@pytest.mark.parametrize("k,s", [(2, 1), (3, 1), (2, 2), (3, 2), (3, 3), (4, 3)])
@pytest.mark.parametrize("dtype", [rtorch.float32, rtorch.float64])
def test_avg_pool_long_rows_forward_and_backward(k, s, dtype):
    # Rows long enough for the fixed-shape interior kernels ((4, 3) has
    # none and runs the general loop), with padded edge outputs on both
    # sides and a ragged end (ceil_mode).
    x = RNG.standard_normal((2, 3, 5, 41))
    p = (0, k // 2)
    for ceil, inc in [(False, True), (True, False)]:
        xt = t(x, dtype=dtype).requires_grad_()
        out = F.avg_pool2d(xt, (2, k), (2, s), p, ceil, inc)
        tol = 1e-5 if dtype == rtorch.float32 else 1e-12
        want = np_avg_pool(x, (2, k), (2, s), p, ceil, inc)
        np.testing.assert_allclose(out.detach().numpy(), want, atol=tol)
        g = RNG.standard_normal(want.shape)
        (gx,) = rtorch.autograd.grad(out, xt, t(g, dtype=dtype))
        want_gx = np_avg_pool_adjoint(g, x.shape, (2, k), (2, s), p, ceil, inc)
        np.testing.assert_allclose(gx.numpy(), want_gx, atol=tol)
    small = t(RNG.standard_normal((1, 2, 3, 11)), dtype=rtorch.float64).requires_grad_()
    fn = lambda a: F.avg_pool2d(a, (1, k), (1, s), (0, k // 2), True, False)  # noqa: E731
    assert gradcheck(fn, (small,))
    assert gradgradcheck(fn, (small,))


# ------------------------------------------------------------------ adaptive pooling


@pytest.mark.parametrize(
    "shape,outs",
    [((7,), (3,)), ((10,), (4,)), ((5, 7), (3, 2)), ((6, 6), (4, 5)), ((4, 5, 7), (3, 2, 4))],
)
def test_adaptive_pools_match_numpy(shape, outs):
    nd = len(shape)
    x = RNG.standard_normal((2, 3, *shape))
    ry, _ = np_adaptive(x, outs, "avg")
    close(getattr(F, f"adaptive_avg_pool{nd}d")(t(x), outs), ry)
    my, mi = np_adaptive(x, outs, "max")
    out, idx = getattr(F, f"adaptive_max_pool{nd}d")(t(x), outs, return_indices=True)
    close(out, my)
    np.testing.assert_array_equal(idx.numpy(), mi)


def test_adaptive_none_keeps_input_size_and_int_size_repeats():
    x = t(RNG.standard_normal((1, 2, 5, 6)))
    assert F.adaptive_avg_pool2d(x, (3, None)).shape == (1, 2, 3, 6)
    assert F.adaptive_max_pool2d(x, 2).shape == (1, 2, 2, 2)
    assert F.adaptive_avg_pool3d(t(RNG.standard_normal((2, 3, 4, 5))), (None, 2, 1)).shape == (
        2, 3, 2, 1,
    )  # fmt: skip


# ------------------------------------------------------------------ unpooling


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_round_trip(nd):
    shape = (2, 3) + (6,) * nd
    x = RNG.standard_normal(shape)
    out, idx = getattr(F, f"max_pool{nd}d")(t(x), 2, return_indices=True)
    up = getattr(F, f"max_unpool{nd}d")(out, idx, 2)
    ref = np.zeros((6, 6**nd))
    flat_idx = idx.numpy().reshape(6, -1)
    np.put_along_axis(ref, flat_idx, out.numpy().reshape(6, -1), axis=1)
    close(up, ref.reshape(shape))
    # Every pooled value lands where it came from in the input.
    kept = up.numpy() != 0
    np.testing.assert_array_equal(up.numpy()[kept], x[kept])
    assert kept.sum() == out.numel()


def test_max_unpool_output_size():
    x = t(RNG.standard_normal((1, 1, 5, 5)))
    out, idx = F.max_pool2d(x, 2, return_indices=True)
    up = F.max_unpool2d(out, idx, 2, output_size=(5, 5))
    assert up.shape == (1, 1, 5, 5)
    up = nn.MaxUnpool2d(2)(out, idx, output_size=[1, 1, 5, 5])
    assert up.shape == (1, 1, 5, 5)
    np.testing.assert_array_equal(up.numpy() != 0, (x.numpy() == up.numpy()) & (up.numpy() != 0))


# ------------------------------------------------------------------ lp pooling


def test_lp_pool_matches_numpy():
    x = RNG.standard_normal((2, 3, 8)) ** 2 + 0.1
    close(F.lp_pool1d(t(x), 2, 3, 2), np.sqrt(np_avg_pool(x**2, (3,), (2,), (0,), False, True) * 3))
    x2 = RNG.standard_normal((2, 3, 6, 6)) ** 2 + 0.1
    ref = np_avg_pool(x2**3, (2, 3), (2, 3), (0, 0), False, True) * 6
    close(F.lp_pool2d(t(x2), 3, (2, 3)), np.cbrt(ref))
    close(nn.LPPool2d(3, (2, 3))(t(x2)), np.cbrt(ref))


# ------------------------------------------------------------------ gradients

GRAD_OPS = [
    ("max_pool1d", lambda a: F.max_pool1d(a, 3, 2, 1, 2, ceil_mode=True)),
    ("max_pool2d", lambda a: F.max_pool2d(a, (2, 3), (2, 1), 1)),
    ("max_pool3d", lambda a: F.max_pool3d(a, 2, 1, 1, ceil_mode=True)),
    ("avg_pool1d", lambda a: F.avg_pool1d(a, 3, 2, 1, True, False)),
    ("avg_pool2d", lambda a: F.avg_pool2d(a, 3, 2, 1, True, True, 4)),
    ("avg_pool3d", lambda a: F.avg_pool3d(a, 2, 1, 1, False, False)),
    ("adaptive_avg_pool1d", lambda a: F.adaptive_avg_pool1d(a, 3)),
    ("adaptive_avg_pool2d", lambda a: F.adaptive_avg_pool2d(a, (3, 2))),
    ("adaptive_avg_pool3d", lambda a: F.adaptive_avg_pool3d(a, 2)),
    ("adaptive_max_pool1d", lambda a: F.adaptive_max_pool1d(a, 3)),
    ("adaptive_max_pool2d", lambda a: F.adaptive_max_pool2d(a, (3, 2))),
    ("adaptive_max_pool3d", lambda a: F.adaptive_max_pool3d(a, 2)),
    ("lp_pool2d", lambda a: F.lp_pool2d(a * a + 0.5, 2, 2)),
]


@pytest.mark.parametrize("name,fn", GRAD_OPS, ids=[n for n, _ in GRAD_OPS])
def test_gradcheck_and_gradgradcheck(name, fn):
    nd = 3 if name.endswith("3d") else 2 if name.endswith("2d") else 1
    # A permutation keeps the values distinct, so no max is a tie.
    n = 2 * 5**nd
    x = t((RNG.permutation(n) / n).reshape((1, 2) + (5,) * nd), dtype=rtorch.float64)
    x.requires_grad_()
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_gradcheck(nd):
    shape = (1, 2) + (4,) * nd
    x = t(RNG.standard_normal(shape))
    out, idx = getattr(F, f"max_pool{nd}d")(x, 2, return_indices=True)
    src = out.detach().clone().requires_grad_()
    f = getattr(F, f"max_unpool{nd}d")
    assert gradcheck(lambda a: f(a, idx, 2), (src,))
    assert gradgradcheck(lambda a: f(a, idx, 2), (src,))


def test_grad_fn_names():
    x = rtorch.randn(1, 2, 4, 4, requires_grad=True)
    assert type(F.max_pool2d(x, 2).grad_fn).__name__ == "MaxPool2DWithIndicesBackward0"
    assert type(F.avg_pool2d(x, 2).grad_fn).__name__ == "AvgPool2DBackward0"
    assert type(F.adaptive_avg_pool2d(x, 2).grad_fn).__name__ == "AdaptiveAvgPool2DBackward0"
    assert type(F.avg_pool3d(x, 2).grad_fn).__name__ == "AvgPool3DBackward0"
    g = rtorch.randn(1, 2, 2, 2, requires_grad=True)
    (gx,) = rtorch.autograd.grad(F.avg_pool2d(x, 2), x, g, create_graph=True)
    assert type(gx.grad_fn).__name__ == "AvgPool2DBackwardBackward0"
    (gx,) = rtorch.autograd.grad(F.max_pool2d(x, 2), x, g, create_graph=True)
    assert type(gx.grad_fn).__name__ == "MaxPool2DWithIndicesBackwardBackward0"


def test_max_pool_backward_routes_to_argmax():
    x = t([[[1.0, 5.0, 2.0, 3.0]]], requires_grad=True)
    F.max_pool1d(x, 2).backward(t([[[10.0, 20.0]]]))
    close(x.grad, [[[0.0, 10.0, 0.0, 20.0]]])
    # Overlapping windows accumulate.
    x.grad = None
    F.max_pool1d(x, 3, 1).backward(t([[[1.0, 1.0]]]))
    close(x.grad, [[[0.0, 2.0, 0.0, 0.0]]])


# ------------------------------------------------------------------ modules


def test_module_reprs():
    assert repr(nn.MaxPool2d(2)) == (
        "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    )
    assert repr(nn.MaxPool1d(3, 1, 1, ceil_mode=True)) == (
        "MaxPool1d(kernel_size=3, stride=1, padding=1, dilation=1, ceil_mode=True)"
    )
    assert repr(nn.AvgPool1d(2)) == "AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,))"
    assert repr(nn.AvgPool2d(2)) == "AvgPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.AvgPool3d((1, 2, 2), 1)) == (
        "AvgPool3d(kernel_size=(1, 2, 2), stride=1, padding=0)"
    )
    assert repr(nn.AdaptiveAvgPool2d((2, None))) == "AdaptiveAvgPool2d(output_size=(2, None))"
    assert repr(nn.AdaptiveMaxPool1d(3)) == "AdaptiveMaxPool1d(output_size=3)"
    assert repr(nn.MaxUnpool2d(2)) == (
        "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    )
    assert repr(nn.MaxUnpool1d(2)) == "MaxUnpool1d(kernel_size=(2,), stride=(2,), padding=(0,))"
    assert repr(nn.LPPool2d(2, 3)) == (
        "LPPool2d(norm_type=2, kernel_size=3, stride=None, ceil_mode=False)"
    )


def test_modules_call_functional():
    x = t(RNG.standard_normal((2, 3, 6, 6)))
    close(nn.MaxPool2d(3, 2, 1)(x), F.max_pool2d(x, 3, 2, 1).numpy())
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    np.testing.assert_array_equal(idx.numpy(), F.max_pool2d(x, 2, return_indices=True)[1].numpy())
    close(
        nn.AvgPool2d(3, 2, 1, count_include_pad=False)(x),
        F.avg_pool2d(x, 3, 2, 1, False, False).numpy(),
    )
    close(nn.AdaptiveAvgPool2d(4)(x), F.adaptive_avg_pool2d(x, 4).numpy())
    o, i = nn.AdaptiveMaxPool2d((2, 3), return_indices=True)(x)
    assert o.shape == (2, 3, 2, 3) and i.dtype == rtorch.int64
    x3 = t(RNG.standard_normal((2, 3, 8)))
    close(nn.MaxPool1d(2)(x3), F.max_pool1d(x3, 2).numpy())
    close(nn.AvgPool1d(2)(x3), F.avg_pool1d(x3, 2).numpy())
    x5 = t(RNG.standard_normal((1, 2, 4, 4, 4)))
    close(nn.MaxPool3d(2)(x5), F.max_pool3d(x5, 2).numpy())
    close(nn.AvgPool3d(2)(x5), F.avg_pool3d(x5, 2).numpy())
    assert isinstance(nn.MaxPool2d(2), nn.Module) and "MaxPool2d" in nn.__all__


# ------------------------------------------------------------------ errors


def test_errors():
    x = rtorch.randn(2, 3, 8, 8)
    msg = "pad should be at most half of effective kernel size, but got pad=2, kernel_size=2 and dilation=1"
    with pytest.raises(RuntimeError, match=msg):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(RuntimeError, match=msg):
        F.avg_pool2d(x, 2, padding=2)
    with pytest.raises(
        RuntimeError,
        match="max_pool1d\\(\\) padding should be at most half of kernel size, but got padding=2 and kernel_size=2",
    ):
        F.max_pool1d(x[0], 2, padding=2)
    with pytest.raises(
        RuntimeError, match="^non-empty 3D or 4D \\(batch mode\\) tensor expected for input"
    ):
        F.max_pool2d(x[0, 0, 0], 2)
    with pytest.raises(RuntimeError, match="stride should not be zero"):
        F.max_pool2d(x, 2, stride=0)
    with pytest.raises(
        RuntimeError,
        match="dilation should be greater than zero, but got dilationH: 0 dilationW: 0",
    ):
        F.max_pool2d(x, 2, dilation=0)
    with pytest.raises(
        RuntimeError,
        match=r"Given input size: \(3x8x8\). Calculated output size: \(3x0x0\). Output size is too small",
    ):
        F.max_pool2d(x, 20)
    with pytest.raises(
        RuntimeError, match=r"adaptive_avg_pool2d\(\): Expected 3D or 4D tensor, but got \[8\]"
    ):
        F.adaptive_avg_pool2d(x[0, 0, 0], 2)
    with pytest.raises(RuntimeError, match="divisor must be not zero"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(RuntimeError, match="\"max_pool2d\" not implemented for 'Long'"):
        F.max_pool2d(x.long(), 2)
    out, idx = F.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(
        RuntimeError, match=r"Found an invalid max index: 100 \(output volumes are of size 8x8\)"
    ):
        F.max_unpool2d(out, idx * 0 + 100, 2)
    with pytest.raises(
        ValueError, match=r'invalid output_size "\(3, 3\)" \(dim 0 must be between 6 and 10\)'
    ):
        F.max_unpool2d(out, idx, 2, output_size=(3, 3))
