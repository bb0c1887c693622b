"""interpolate / Upsample, pixel and channel shuffle, affine_grid and
grid_sample against NumPy references; gradchecks; PyTorch's errors."""

import math
import warnings

import numpy as np
import pytest

import rtorch
import rtorch.nn.functional as F
from rtorch import nn
from rtorch.autograd import gradcheck

RNG = np.random.default_rng(2)


def t(a, **kw):
    return rtorch.tensor(np.asarray(a), **kw)


def close(x, ref, tol=1e-10):
    np.testing.assert_allclose(x.detach().numpy(), ref, rtol=tol, atol=tol)


# ---------------------------------------------------------------- 1-D NumPy references


def _scale(n_in, n_out, align_corners, scale_factor):
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / scale_factor if scale_factor else n_in / n_out


def ref_nearest(x, n_out, sf=None, exact=False):
    n_in = x.shape[-1]
    s = 1.0 / sf if sf else n_in / n_out
    idx = [min(int(math.floor((i + 0.5 * exact) * s)), n_in - 1) for i in range(n_out)]
    return x[..., idx]


def ref_linear(x, n_out, align_corners=False, sf=None):
    n_in = x.shape[-1]
    s = _scale(n_in, n_out, align_corners, sf)
    cols = []
    for i in range(n_out):
        src = s * i if align_corners else max(s * (i + 0.5) - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        cols.append(x[..., i0] * (1 - lam) + x[..., i1] * lam)
    return np.stack(cols, -1)


def _cubic_w(d, a=-0.75):
    d = abs(d)
    if d <= 1:
        return ((a + 2) * d - (a + 3)) * d * d + 1
    if d < 2:
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return 0.0


def ref_cubic(x, n_out, align_corners=False, sf=None):
    n_in = x.shape[-1]
    s = _scale(n_in, n_out, align_corners, sf)
    cols = []
    for i in range(n_out):
        src = s * i if align_corners else s * (i + 0.5) - 0.5
        f = math.floor(src)
        acc = 0
        for k in range(-1, 3):
            acc = acc + x[..., min(max(f + k, 0), n_in - 1)] * _cubic_w(src - (f + k))
        cols.append(acc)
    return np.stack(cols, -1)


def ref_area(x, n_out):
    n_in = x.shape[-1]
    cols = []
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, math.ceil((i + 1) * n_in / n_out)
        cols.append(x[..., lo:hi].mean(-1))
    return np.stack(cols, -1)


def separable(x, sizes, fn, **kw):
    for ax, n in enumerate(sizes):
        d = 2 + ax
        x = np.moveaxis(fn(np.moveaxis(x, d, -1), n, **kw), -1, d)
    return x


# ---------------------------------------------------------------- interpolate


def test_known_values():
    x = t([[[0.0, 2.0]]])
    close(F.interpolate(x, size=4, mode="linear"), [[[0.0, 0.5, 1.5, 2.0]]])
    close(
        F.interpolate(x, size=4, mode="linear", align_corners=True),
        [[[0.0, 2 / 3, 4 / 3, 2.0]]],
    )
    close(F.interpolate(x, scale_factor=2), [[[0.0, 0.0, 2.0, 2.0]]])
    close(F.interpolate(t([[[1.0, 2.0, 3.0, 6.0]]]), size=2, mode="area"), [[[1.5, 4.5]]])


X3 = RNG.standard_normal((2, 3, 7))
X4 = RNG.standard_normal((2, 2, 5, 6))
X5 = RNG.standard_normal((1, 2, 3, 4, 5))


@pytest.mark.parametrize("size", [3, 10, 14, 7])
def test_nearest_modes(size):
    for x in (X3, X4, X5):
        sizes = [size] * (x.ndim - 2)
        close(F.interpolate(t(x), size=size), separable(x, sizes, ref_nearest))
        close(
            F.interpolate(t(x), size=size, mode="nearest-exact"),
            separable(x, sizes, ref_nearest, exact=True),
        )


def test_nearest_scale_factor_drives_mapping():
    # scale 1.5 on 4 -> 6 outputs: index floor(i / 1.5)
    x = RNG.standard_normal((1, 1, 4))
    close(F.interpolate(t(x), scale_factor=1.5), ref_nearest(x, 6, sf=1.5))
    # recompute_scale_factor uses in/out instead
    close(
        F.interpolate(t(x), scale_factor=1.7, recompute_scale_factor=True),
        ref_nearest(x, 6),
    )
    close(F.interpolate(t(x), scale_factor=1.7), ref_nearest(x, 6, sf=1.7))


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [1, 4, 11])
def test_linear_modes(align_corners, size):
    for x, mode in ((X3, "linear"), (X4, "bilinear"), (X5, "trilinear")):
        out = F.interpolate(t(x), size=size, mode=mode, align_corners=align_corners)
        sizes = [size] * (x.ndim - 2)
        close(out, separable(x, sizes, ref_linear, align_corners=align_corners))


def test_linear_with_scale_factor():
    out = F.interpolate(t(X4), scale_factor=(1.5, 0.5), mode="bilinear")
    ref = np.moveaxis(ref_linear(np.moveaxis(X4, 2, -1), 7, sf=1.5), -1, 2)
    ref = ref_linear(ref, 3, sf=0.5)
    close(out, ref)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(3, 4), (9, 13)])
def test_bicubic(align_corners, size):
    out = F.interpolate(t(X4), size=size, mode="bicubic", align_corners=align_corners)
    close(out, separable(X4, size, ref_cubic, align_corners=align_corners))


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_area(size):
    for x in (X3, X4, X5):
        close(
            F.interpolate(t(x), size=size, mode="area"),
            separable(x, [size] * (x.ndim - 2), ref_area),
        )


def test_antialias_downsampling_is_a_normalised_triangle_filter():
    x = RNG.standard_normal((1, 1, 1, 8))
    out = F.interpolate(t(x), size=(1, 2), mode="bilinear", antialias=True).numpy()[0, 0, 0]
    # scale 4: support 4, centre 4 * (i + 0.5); weights 1 - |j + 0.5 - c| / 4, normalised.
    ref = []
    for i in range(2):
        c = 4 * (i + 0.5)
        w = np.array([max(0.0, 1 - abs(j + 0.5 - c) / 4) for j in range(8)])
        ref.append((x[0, 0, 0] * w).sum() / w.sum())
    np.testing.assert_allclose(out, ref, atol=1e-12)


@pytest.mark.parametrize(
    "mode, x, kw",
    [
        ("nearest", (1, 2, 3, 4), {"size": (5, 3)}),
        ("bilinear", (1, 2, 3, 4), {"size": (5, 3)}),
        ("bilinear", (1, 1, 3, 4), {"size": (5, 3), "align_corners": True}),
        ("bicubic", (1, 1, 3, 4), {"size": (5, 6)}),
        ("linear", (1, 2, 5), {"scale_factor": 0.6}),
        ("trilinear", (1, 1, 2, 3, 2), {"size": 3}),
        ("area", (1, 1, 5, 4), {"size": (2, 3)}),
        ("bilinear", (1, 1, 6, 6), {"size": (2, 3), "antialias": True}),
    ],
)
def test_interpolate_gradcheck(mode, x, kw):
    inp = t(RNG.standard_normal(x), requires_grad=True)
    assert gradcheck(lambda a: F.interpolate(a, mode=mode, **kw), (inp,))


def test_float32_and_identity():
    x = t(X4).float()
    out = F.interpolate(x, scale_factor=2, mode="bilinear")
    assert out.dtype == rtorch.float32
    close(out, separable(X4, [10, 12], ref_linear), 1e-5)
    same = F.interpolate(t(X4), size=(5, 6), mode="bilinear")
    close(same, X4)
    assert same is not None and not same._is_view_of(t(X4))


def test_integer_inputs():
    x = RNG.integers(0, 256, (1, 2, 4, 5)).astype(np.uint8)
    out = F.interpolate(t(x), size=(3, 7), mode="bilinear")
    assert out.dtype == rtorch.uint8
    ref = np.clip(np.round(separable(x.astype(np.float64), [3, 7], ref_linear)), 0, 255)
    np.testing.assert_allclose(out.numpy(), ref, atol=1)
    xi = t(x.astype(np.int64))
    close(F.interpolate(xi, size=(8, 3)), separable(x.astype(np.int64), [8, 3], ref_nearest))
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        F.interpolate(xi, size=3, mode="bilinear")


def test_interpolate_errors():
    x = t(X4)
    with pytest.raises(ValueError, match="align_corners option can only be set with the"):
        F.interpolate(x, size=3, align_corners=True)
    with pytest.raises(ValueError, match="only one of size or scale_factor should be defined"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor should be defined"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="Input and output must have the same number of spatial"):
        F.interpolate(x, size=(3, 4, 5))
    with pytest.raises(ValueError, match="Input and scale_factor must have the same number"):
        F.interpolate(x, scale_factor=(2.0,))
    with pytest.raises(TypeError, match="expected size to be one of int or Tuple"):
        F.interpolate(x, size=(3.0, 4.0))
    with pytest.raises(ValueError, match="recompute_scale_factor is not meaningful"):
        F.interpolate(x, size=3, recompute_scale_factor=True)
    with pytest.raises(NotImplementedError, match="Got 4D input, but linear mode needs 3D input"):
        F.interpolate(x, size=3, mode="linear")
    with pytest.raises(NotImplementedError, match="Got 3D input, but bilinear mode needs 4D"):
        F.interpolate(t(X3), size=3, mode="bilinear")
    with pytest.raises(ValueError, match="Anti-alias option is restricted to bilinear"):
        F.interpolate(t(X3), size=3, mode="linear", antialias=True)
    with pytest.raises(NotImplementedError, match=r"Only 3D, 4D and 5D input Tensors supported"):
        F.interpolate(t(X3[0]), size=3)
    with pytest.raises(NotImplementedError, match=r"\(got bogus\)"):
        F.interpolate(x, size=3, mode="bogus")


def test_upsample_modules():
    m = nn.Upsample(scale_factor=2, mode="bilinear")
    assert repr(m) == "Upsample(scale_factor=2.0, mode='bilinear')"
    close(m(t(X4)), separable(X4, [10, 12], ref_linear))
    assert repr(nn.Upsample(size=(3, 4))) == "Upsample(size=(3, 4), mode='nearest')"
    up = nn.UpsamplingBilinear2d(size=(7, 8))
    assert repr(up) == "UpsamplingBilinear2d(size=(7, 8), mode='bilinear')"
    close(up(t(X4)), separable(X4, [7, 8], ref_linear, align_corners=True))
    close(nn.UpsamplingNearest2d(scale_factor=2)(t(X4)), separable(X4, [10, 12], ref_nearest))
    with pytest.warns(UserWarning, match="nn.functional.upsample_bilinear` is deprecated"):
        y = F.upsample_bilinear(t(X4), size=(7, 8))
    close(y, separable(X4, [7, 8], ref_linear, align_corners=True))
    with pytest.warns(UserWarning, match="nn.functional.upsample` is deprecated"):
        F.upsample(t(X4), scale_factor=2)
    with pytest.warns(UserWarning, match="nn.functional.upsample_nearest` is deprecated"):
        F.upsample_nearest(t(X4), scale_factor=2)


# ---------------------------------------------------------------- pixel / channel shuffle


def ref_pixel_shuffle(x, r):
    n, c, h, w = x.shape
    out = np.zeros((n, c // (r * r), h * r, w * r))
    for ch in range(c):
        oc, rem = divmod(ch, r * r)
        i, j = divmod(rem, r)
        out[:, oc, i::r, j::r] = x[:, ch]
    return out


def test_pixel_shuffle_and_unshuffle():
    x = RNG.standard_normal((2, 8, 3, 4))
    y = F.pixel_shuffle(t(x), 2)
    close(y, ref_pixel_shuffle(x, 2))
    close(F.pixel_unshuffle(y, 2), x)
    close(nn.PixelUnshuffle(2)(nn.PixelShuffle(2)(t(x))), x)
    x5 = RNG.standard_normal((2, 3, 9, 2, 2))
    close(F.pixel_shuffle(t(x5), 3)[1], ref_pixel_shuffle(x5[1], 3))
    assert repr(nn.PixelShuffle(3)) == "PixelShuffle(upscale_factor=3)"
    assert repr(nn.PixelUnshuffle(2)) == "PixelUnshuffle(downscale_factor=2)"
    inp = t(RNG.standard_normal((1, 4, 2, 2)), requires_grad=True)
    assert gradcheck(lambda a: F.pixel_shuffle(a, 2), (inp,))
    with pytest.raises(RuntimeError, match="is not divisible by 9"):
        F.pixel_shuffle(t(x), 3)
    with pytest.raises(RuntimeError, match="expects height to be divisible by downscale_factor"):
        F.pixel_unshuffle(t(x), 2)
    with pytest.raises(RuntimeError, match="at least 3 dimensions, but got input with 2"):
        F.pixel_shuffle(t(x[0, 0]), 2)
    with pytest.raises(RuntimeError, match="expects a positive upscale_factor, but got 0"):
        F.pixel_shuffle(t(x), 0)


def test_channel_shuffle():
    x = RNG.standard_normal((2, 6, 3))
    ref = x.reshape(2, 2, 3, 3).transpose(0, 2, 1, 3).reshape(2, 6, 3)
    close(F.channel_shuffle(t(x), 2), ref)
    m = nn.ChannelShuffle(3)
    assert repr(m) == "ChannelShuffle(groups=3)"
    close(m(t(x)), x.reshape(2, 3, 2, 3).transpose(0, 2, 1, 3).reshape(2, 6, 3))
    with pytest.raises(RuntimeError, match="Number of channels must be divisible by groups"):
        F.channel_shuffle(t(x), 4)
    with pytest.raises(RuntimeError, match="channel_shuffle expects input with > 2 dims"):
        F.channel_shuffle(t(x[0]), 2)


# ---------------------------------------------------------------- affine_grid / grid_sample


def ref_base(h, w, align):
    def ax(n):
        g = np.linspace(-1, 1, n)
        return g if align else g * (n - 1) / n

    ys, xs = np.meshgrid(ax(h), ax(w), indexing="ij")
    return np.stack([xs, ys, np.ones_like(xs)], -1)


@pytest.mark.parametrize("align", [False, True])
def test_affine_grid(align):
    theta = RNG.standard_normal((2, 2, 3))
    ref = ref_base(3, 4, align) @ np.swapaxes(theta, 1, 2)[:, None]
    close(F.affine_grid(t(theta), [2, 1, 3, 4], align_corners=align), ref)
    theta3 = RNG.standard_normal((1, 3, 4))
    g = F.affine_grid(t(theta3), [1, 1, 2, 3, 4], align_corners=align)
    assert tuple(g.shape) == (1, 2, 3, 4, 3)

    def ax(n, i):
        return np.linspace(-1, 1, n)[i] * (1 if align else (n - 1) / n)

    pt = theta3[0] @ np.array([ax(4, 1), ax(3, 2), ax(2, 0), 1.0])  # (d=0, h=2, w=1)
    close(g[0, 0, 2, 1], pt)
    inp = t(theta, requires_grad=True)
    assert gradcheck(lambda a: F.affine_grid(a, [2, 1, 2, 3], align_corners=align), (inp,))


def test_affine_grid_errors_and_warning():
    with pytest.warns(UserWarning, match="Default grid_sample and affine_grid behavior"):
        F.affine_grid(rtorch.zeros(1, 2, 3), [1, 1, 2, 2])
    with pytest.raises(ValueError, match="Expected a batch of 2D affine matrices of shape Nx2x3"):
        F.affine_grid(rtorch.zeros(1, 3, 4), [1, 1, 2, 2], align_corners=False)
    with pytest.raises(NotImplementedError, match="affine_grid only supports 4D and 5D sizes"):
        F.affine_grid(rtorch.zeros(1, 2, 3), [1, 2, 2], align_corners=False)
    with pytest.raises(ValueError, match="Expected theta to have floating point type"):
        F.affine_grid(rtorch.zeros(1, 2, 3, dtype=rtorch.int64), [1, 1, 2, 2], align_corners=False)


def ref_grid_sample(x, grid, mode, padding, align):
    n, c, h, w = x.shape
    out = np.zeros((n, c) + grid.shape[1:3])

    def unnorm(v, size):
        return (v + 1) / 2 * (size - 1) if align else ((v + 1) * size - 1) / 2

    def reflect(v, lo2, hi2):
        if lo2 == hi2:
            return 0.0
        lo, span = lo2 / 2, (hi2 - lo2) / 2
        v = abs(v - lo)
        extra = math.fmod(v, span)
        return extra + lo if int(v // span) % 2 == 0 else span - extra + lo

    def fix(v, size):
        if padding == "border":
            return min(max(v, 0), size - 1)
        if padding == "reflection":
            v = reflect(v, 0, 2 * (size - 1)) if align else reflect(v, -1, 2 * size - 1)
            return min(max(v, 0), size - 1)
        return v

    def at(b, yy, xx):
        if 0 <= yy < h and 0 <= xx < w:
            return x[b, :, yy, xx]
        return np.zeros(c)

    for b in range(n):
        for i in range(grid.shape[1]):
            for j in range(grid.shape[2]):
                gx = fix(unnorm(grid[b, i, j, 0], w), w)
                gy = fix(unnorm(grid[b, i, j, 1], h), h)
                if mode == "nearest":
                    out[b, :, i, j] = at(b, int(np.rint(gy)), int(np.rint(gx)))
                    continue
                x0, y0 = math.floor(gx), math.floor(gy)
                fx, fy = gx - x0, gy - y0
                out[b, :, i, j] = (
                    at(b, y0, x0) * (1 - fx) * (1 - fy)
                    + at(b, y0, x0 + 1) * fx * (1 - fy)
                    + at(b, y0 + 1, x0) * (1 - fx) * fy
                    + at(b, y0 + 1, x0 + 1) * fx * fy
                )
    return out


XG = RNG.standard_normal((2, 3, 4, 5))
GRID = RNG.uniform(-1.3, 1.3, (2, 3, 4, 2))


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [False, True])
def test_grid_sample_matches_numpy(mode, padding, align):
    out = F.grid_sample(t(XG), t(GRID), mode, padding, align)
    close(out, ref_grid_sample(XG, GRID, mode, padding, align))


def test_grid_sample_identity_and_bicubic():
    theta = t(np.array([[[1.0, 0, 0], [0, 1.0, 0]]] * 2))
    for align in (False, True):
        grid = F.affine_grid(theta, [2, 3, 4, 5], align_corners=align)
        for mode in ("bilinear", "nearest", "bicubic"):
            close(F.grid_sample(t(XG), grid, mode, align_corners=align), XG)
    # bicubic at grid points between pixels: the 1-D cubic kernel along x.
    x = RNG.standard_normal((1, 1, 1, 6))
    gx = np.array([-0.5, 0.1, 0.35])
    grid = np.stack([gx, np.zeros(3)], -1)[None, None]
    out = F.grid_sample(t(x), t(grid), "bicubic", "border", align_corners=True)
    src = (gx + 1) / 2 * 5
    ref = []
    for s in src:
        f = math.floor(s)
        ref.append(
            sum(x[0, 0, 0, min(max(f + k, 0), 5)] * _cubic_w(s - f - k) for k in range(-1, 3))
        )
    close(out[0, 0, 0], ref)


def test_grid_sample_3d():
    x = RNG.standard_normal((1, 2, 3, 4, 5))
    theta = t(np.array([[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]]))
    grid = F.affine_grid(theta, [1, 2, 3, 4, 5], align_corners=False)
    close(F.grid_sample(t(x), grid, align_corners=False), x)
    # a grid constant in z reduces to 2-D bilinear sampling of one depth slice
    g2 = RNG.uniform(-1, 1, (1, 2, 3, 2))
    z = (2 * 1 + 1) / 3 - 1  # centre of depth slice 1, align_corners=False
    g3 = np.concatenate([g2, np.full(g2.shape[:-1] + (1,), z)], -1)[:, None]
    out = F.grid_sample(t(x), t(g3), align_corners=False)
    close(out[:, :, 0], ref_grid_sample(x[:, :, 1], g2, "bilinear", "zeros", False))


@pytest.mark.parametrize(
    "mode, padding", [("bilinear", "zeros"), ("bilinear", "reflection"), ("bicubic", "border")]
)
def test_grid_sample_gradcheck(mode, padding):
    x = t(RNG.standard_normal((1, 2, 3, 4)), requires_grad=True)
    g = t(RNG.uniform(-1.2, 1.2, (1, 2, 3, 2)), requires_grad=True)
    assert gradcheck(lambda a, b: F.grid_sample(a, b, mode, padding, align_corners=False), (x, g))


def test_grid_sample_nearest_gives_grid_a_zero_gradient():
    x = t(RNG.standard_normal((1, 2, 3, 4)), requires_grad=True)
    g = t(RNG.uniform(-1, 1, (1, 2, 3, 2)), requires_grad=True)
    out = F.grid_sample(x, g, "nearest", align_corners=False)
    (out * t(RNG.standard_normal(out.shape))).sum().backward()
    np.testing.assert_array_equal(g.grad.numpy(), np.zeros((1, 2, 3, 2)))
    assert np.any(x.grad.numpy() != 0)


def test_grid_sample_errors():
    x, g = t(XG), t(GRID)
    with pytest.raises(ValueError, match="expected mode to be 'bilinear', 'nearest' or 'bicubic'"):
        F.grid_sample(x, g, mode="area", align_corners=False)
    with pytest.raises(ValueError, match="expected padding_mode to be 'zeros', 'border', or"):
        F.grid_sample(x, g, padding_mode="wrap", align_corners=False)
    with pytest.raises(RuntimeError, match="expected grid and input to have same batch size"):
        F.grid_sample(x, g[:1], align_corners=False)
    with pytest.raises(RuntimeError, match="expected grid to have size 2 in last dimension"):
        F.grid_sample(x, t(RNG.standard_normal((2, 3, 4, 3))), align_corners=False)
    with pytest.raises(RuntimeError, match="bicubic interpolation only supports 4D input"):
        F.grid_sample(
            t(X5), t(RNG.standard_normal((1, 1, 1, 1, 3))), "bicubic", align_corners=False
        )
    with pytest.warns(UserWarning, match="Default grid_sample and affine_grid behavior"):
        F.grid_sample(x, g)


def test_matches_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode, x in (("bilinear", X4), ("bicubic", X4), ("nearest", X5), ("area", X3)):
            for kw in ({"scale_factor": 1.7}, {"size": 3}):
                ac = {} if mode in ("nearest", "area") else {"align_corners": False}
                ref = tf.interpolate(torch.tensor(x), mode=mode, **kw, **ac).numpy()
                close(F.interpolate(t(x), mode=mode, **kw, **ac), ref)
        for mode in ("bilinear", "nearest", "bicubic"):
            for padding in ("zeros", "border", "reflection"):
                ref = tf.grid_sample(torch.tensor(XG), torch.tensor(GRID), mode, padding, True)
                close(F.grid_sample(t(XG), t(GRID), mode, padding, True), ref.numpy())
