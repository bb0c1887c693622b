"""The vectorised transcendental kernels (`cpu::simd`) against NumPy float64.

Dense float32 tensors take the vectorised kernels; strided views take the
generic scalar path (libm in f64): both must be within a few ULP of the
float64 reference and agree with each other. float64 has its own kernels
for the exp/log family and the activations; float16/bfloat16 run the
float32 kernels on widened blocks.
"""

import math

import numpy as np
import pytest

import rtorch
import rtorch.nn.functional as F

_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _softplus(x, beta=1.0, threshold=20.0):
    bx = x * beta
    with np.errstate(over="ignore"):
        return np.where(bx > threshold, x, np.log1p(np.exp(bx)) / beta)


def _gelu_tanh(x):
    # Same operation order as the kernel: exp(-2u) amplifies u's rounding.
    u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
    with np.errstate(over="ignore"):
        return x / (1 + np.exp(-2 * u))


def _elu(x, alpha=1.0, scale=1.0, input_scale=1.0):
    return np.where(x > 0, scale * x, scale * alpha * np.expm1(x * input_scale))


# name -> (rtorch call, NumPy float64 reference, largest |x| to test)
OPS = {
    "sin": (lambda t: t.sin(), np.sin, 1e6),
    "cos": (lambda t: t.cos(), np.cos, 1e6),
    "tan": (lambda t: t.tan(), np.tan, 1e6),
    "exp2": (lambda t: t.exp2(), np.exp2, 200),
    "expm1": (lambda t: t.expm1(), np.expm1, 100),
    "log2": (lambda t: t.log2(), np.log2, 3e38),
    "log10": (lambda t: t.log10(), np.log10, 3e38),
    "log1p": (lambda t: t.log1p(), np.log1p, 3e38),
    "atan": (lambda t: t.atan(), np.arctan, 3e38),
    "asin": (lambda t: t.asin(), np.arcsin, 1.0),
    "acos": (lambda t: t.acos(), np.arccos, 1.0),
    "asinh": (lambda t: t.asinh(), np.arcsinh, 3e38),
    "acosh": (lambda t: t.acosh(), np.arccosh, 3e38),
    "atanh": (lambda t: t.atanh(), np.arctanh, 1.0),
    "sinh": (lambda t: t.sinh(), np.sinh, 100),
    "cosh": (lambda t: t.cosh(), np.cosh, 100),
    "erf": (lambda t: t.erf(), _erf, 20),
    "erfc": (lambda t: t.erfc(), _erfc, 20),
    "gelu": (F.gelu, lambda x: 0.5 * x * _erfc(-x / math.sqrt(2)), 1e4),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), _gelu_tanh, 1e4),
    "mish": (F.mish, lambda x: x * np.tanh(_softplus(x)), 1e4),
    "softplus": (F.softplus, _softplus, 1e4),
    "softplus_beta": (
        lambda t: F.softplus(t, beta=2.0, threshold=10.0),
        lambda x: _softplus(x, 2.0, 10.0),
        1e4,
    ),
    "elu": (lambda t: F.elu(t, alpha=0.7), lambda x: _elu(x, 0.7), 1e4),
    "selu": (F.selu, lambda x: _elu(x, _SELU_ALPHA, _SELU_SCALE), 1e4),
    "celu": (lambda t: F.celu(t, alpha=2.0), lambda x: _elu(x, 2.0, 1.0, 0.5), 1e4),
    "logsigmoid": (F.logsigmoid, lambda x: np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))), 1e4),
    "hardswish": (F.hardswish, lambda x: x * np.clip(x + 3, 0, 6) / 6, 1e4),
    "hardsigmoid": (F.hardsigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1), 1e4),
    "leaky_relu": (lambda t: F.leaky_relu(t, 0.1), lambda x: np.where(x > 0, x, 0.1 * x), 1e4),
    "hardtanh": (lambda t: F.hardtanh(t, -0.5, 2.0), lambda x: np.clip(x, -0.5, 2.0), 1e4),
    "softsign": (F.softsign, lambda x: x / (1 + np.abs(x)), 1e4),
}

# Cheap ops whose float32 kernels compute as the scalar path: bit-equal.
EXACT = {"hardswish", "hardsigmoid", "leaky_relu", "hardtanh", "softsign"}
SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, -3e38, 3e38]


def _inputs(top, dtype=np.float32):
    """Uniform values near 0, log-spaced magnitudes of both signs up to
    `top` (subnormals included) and the special values."""
    rng = np.random.default_rng(0)
    mags = np.exp(rng.uniform(np.log(1e-44), np.log(top), 3000))
    x = np.concatenate([rng.uniform(-10, 10, 3000), mags, -mags, SPECIALS])
    return x.astype(dtype)


def _ulp_err(got, want, dtype=np.float32):
    """Largest error of `got` in ULP of `dtype` against the float64 `want`,
    after checking NaN and infinity positions agree."""
    got = got.astype(np.float64)
    with np.errstate(over="ignore"):
        rounded = want.astype(dtype)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    inf = np.isinf(rounded)
    np.testing.assert_array_equal(got[inf], rounded[inf])
    fin = ~np.isnan(want) & ~inf
    ulp = np.spacing(np.abs(rounded[fin])).astype(np.float64)
    return (np.abs(got[fin] - want[fin]) / ulp).max()


@pytest.mark.parametrize("name", sorted(OPS))
def test_float32_kernel_within_one_ulp_of_float64(name):
    fn, ref, top = OPS[name]
    x = _inputs(top)
    with np.errstate(all="ignore"):
        want = ref(x.astype(np.float64))
    got = fn(rtorch.from_numpy(x)).numpy()
    assert got.dtype == np.float32
    assert _ulp_err(got, want) <= 1.0
    # Zeros keep their sign where the reference's does.
    zeros = want == 0
    np.testing.assert_array_equal(np.signbit(got[zeros]), np.signbit(want[zeros]))


@pytest.mark.parametrize("name", sorted(OPS))
def test_strided_scalar_path_agrees_with_dense_kernel(name):
    fn, ref, top = OPS[name]
    x = _inputs(top)
    dense = fn(rtorch.from_numpy(x[::2].copy())).numpy()
    strided_in = rtorch.from_numpy(x)[::2]
    assert not strided_in.is_contiguous()
    strided = fn(strided_in).numpy()
    if name in EXACT:
        np.testing.assert_array_equal(strided, dense)
    else:
        with np.errstate(all="ignore"):
            want = ref(x[::2].astype(np.float64))
        assert _ulp_err(strided, want) <= 1.0
        np.testing.assert_allclose(strided, dense, rtol=2.4e-7, atol=1.5e-45)


def test_trig_beyond_the_reduction_range_falls_back_to_libm():
    # Blocks holding |x| > 1e6 (or inf/NaN) take the scalar path; the
    # neighbours in such a block still get correct values.
    x = np.concatenate([np.linspace(-3, 3, 200), [1e7, -3e9, 1e30, np.inf, np.nan]])
    x = np.random.default_rng(1).permutation(x).astype(np.float32)
    for name in ["sin", "cos", "tan"]:
        fn, ref, _ = OPS[name]
        with np.errstate(invalid="ignore"):
            want = ref(x.astype(np.float64))
        assert _ulp_err(fn(rtorch.from_numpy(x)).numpy(), want) <= 1.0
        inplace = rtorch.from_numpy(x.copy())
        getattr(inplace, name + "_")()
        assert _ulp_err(inplace.numpy(), want) <= 1.0


def test_inplace_kernels_match_out_of_place():
    x = _inputs(50)
    t = rtorch.from_numpy(x)
    for name in ["sin", "cos", "expm1", "log1p", "erf", "erfc", "atan", "sinh", "exp2"]:
        want = getattr(t, name)().numpy()
        got = t.clone()
        getattr(got, name + "_")()
        np.testing.assert_array_equal(got.numpy(), want)
    for fn in [F.elu, F.selu, F.celu, F.hardswish, F.leaky_relu, F.hardtanh]:
        want = fn(t).numpy()
        got = t.clone()
        fn(got, inplace=True)
        np.testing.assert_array_equal(got.numpy(), want)


def test_large_tensors_split_over_threads_match_small_ones():
    x = np.random.default_rng(3).standard_normal(2_000_001).astype(np.float32) * 4
    t = rtorch.from_numpy(x)
    for fn in [rtorch.sin, rtorch.erf, F.gelu, F.mish]:
        big = fn(t).numpy()
        for i in (0, 1_000_000, 2_000_000):
            np.testing.assert_array_equal(big[i : i + 1000], fn(t[i : i + 1000]).numpy())


# float64 kernels: the exp/log family and the activations built on it.
OPS64 = {
    "exp": (lambda t: t.exp(), np.exp, 800),
    "log": (lambda t: t.log(), np.log, 1e308),
    "expm1": (lambda t: t.expm1(), np.expm1, 800),
    "log1p": (lambda t: t.log1p(), np.log1p, 1e308),
    "tanh": (lambda t: t.tanh(), np.tanh, 1e300),
    "sigmoid": (lambda t: t.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), 1e300),
    "silu": (F.silu, lambda x: x / (1 + np.exp(-x)), 1e300),
    "gelu_tanh": OPS["gelu_tanh"][:2] + (1e100,),
    "mish": OPS["mish"][:2] + (1e300,),
    "softplus": OPS["softplus"][:2] + (1e300,),
    "selu": OPS["selu"][:2] + (1e300,),
    "celu": OPS["celu"][:2] + (1e300,),
    "logsigmoid": OPS["logsigmoid"][:2] + (1e300,),
}


@pytest.mark.parametrize("name", sorted(OPS64))
def test_float64_kernel_within_a_few_ulp(name):
    fn, ref, top = OPS64[name]
    rng = np.random.default_rng(5)
    mags = np.exp(rng.uniform(np.log(1e-310), np.log(top), 3000))
    x = np.concatenate([rng.uniform(-40, 40, 3000), mags, -mags, SPECIALS])
    with np.errstate(all="ignore"):
        want = ref(x)
    got = fn(rtorch.from_numpy(x)).numpy()
    assert got.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin], want[~fin])
    ulp = np.spacing(np.abs(want[fin]))
    assert (np.abs(got[fin] - want[fin]) / ulp).max() <= 4
    strided = fn(rtorch.from_numpy(x)[::3]).numpy()
    np.testing.assert_allclose(strided, got[::3], rtol=1e-15, atol=1e-320)


@pytest.mark.parametrize("dtype", [rtorch.float16, rtorch.bfloat16])
def test_half_types_round_the_float32_kernel_once(dtype):
    x = np.random.default_rng(4).standard_normal(3000).astype(np.float32) * 4
    x[:5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    t = rtorch.from_numpy(x).to(dtype)
    w = t.float()
    for name in ["sin", "cos", "expm1", "log1p", "erf", "gelu", "mish", "softplus", "selu"]:
        fn = OPS[name][0]
        with np.errstate(all="ignore"):
            want = fn(w).to(dtype).float().numpy()
        got = fn(t)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got.float().numpy(), want)
        # The strided (f64 scalar) path rounds the exact value: one half ULP.
        rtol = 2**-10 if dtype == rtorch.float16 else 2**-7
        np.testing.assert_allclose(fn(t[::2]).float().numpy(), want[::2], rtol=rtol, atol=1e-7)
