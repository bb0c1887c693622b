"""Unary elementwise ops against NumPy references."""

import math
import re

import numpy as np
import pytest

import rtorch

_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])

# name -> (NumPy reference on float64, input domain low, high)
FLOAT_OPS = {
    "exp": (np.exp, -20, 20),
    "exp2": (np.exp2, -20, 20),
    "expm1": (np.expm1, -5, 5),
    "log": (np.log, 0.01, 100),
    "log2": (np.log2, 0.01, 100),
    "log10": (np.log10, 0.01, 100),
    "log1p": (np.log1p, -0.9, 100),
    "sqrt": (np.sqrt, 0, 100),
    "rsqrt": (lambda x: 1 / np.sqrt(x), 0.01, 100),
    "reciprocal": (lambda x: 1 / x, 0.5, 100),
    "sin": (np.sin, -10, 10),
    "cos": (np.cos, -10, 10),
    "tan": (np.tan, -1.5, 1.5),
    "asin": (np.arcsin, -1, 1),
    "acos": (np.arccos, -1, 1),
    "atan": (np.arctan, -10, 10),
    "sinh": (np.sinh, -5, 5),
    "cosh": (np.cosh, -5, 5),
    "tanh": (np.tanh, -10, 10),
    "asinh": (np.arcsinh, -10, 10),
    "acosh": (np.arccosh, 1, 10),
    "atanh": (np.arctanh, -0.99, 0.99),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), -30, 30),
    "erf": (_erf, -4, 4),
    "erfc": (_erfc, -4, 4),
    "lgamma": (_lgamma, 0.1, 20),
}

SAME_OPS = {
    "abs": np.abs,
    "neg": np.negative,
    "sign": np.sign,
    "square": np.square,
    "floor": np.floor,
    "ceil": np.ceil,
    "trunc": np.trunc,
    "round": np.round,
    "relu": lambda x: np.maximum(x, 0),
}


def _inputs(lo, hi, n=257, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).uniform(lo, hi, n).astype(dtype)


@pytest.mark.parametrize("name", sorted(FLOAT_OPS))
def test_float_op_float64_matches_numpy(name):
    ref, lo, hi = FLOAT_OPS[name]
    x = _inputs(lo, hi)
    out = getattr(rtorch.from_numpy(x), name)()
    assert out.dtype == rtorch.float64
    np.testing.assert_allclose(out.numpy(), ref(x), rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("name", sorted(FLOAT_OPS))
def test_float_op_float32_within_a_few_ulp(name):
    ref, lo, hi = FLOAT_OPS[name]
    x = _inputs(lo, hi, n=4099, dtype=np.float32)
    out = getattr(rtorch, name)(rtorch.from_numpy(x))
    assert out.dtype == rtorch.float32
    want = ref(x.astype(np.float64))
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    err = np.abs(out.numpy().astype(np.float64) - want) / np.maximum(ulp, np.finfo(np.float32).tiny)
    assert err.max() <= 4, f"{name}: {err.max()} ulp"


@pytest.mark.parametrize("name", ["exp", "log", "tanh", "sigmoid", "sqrt", "sin"])
def test_float_op_on_int_tensor_gives_default_float(name):
    t = rtorch.tensor([1, 2, 3])
    out = getattr(t, name)()
    assert out.dtype == rtorch.float32
    ref = FLOAT_OPS[name][0]
    np.testing.assert_allclose(out.numpy(), ref(np.array([1.0, 2.0, 3.0])), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(SAME_OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32])
def test_same_dtype_ops(name, dtype):
    x = (
        np.random.default_rng(1).uniform(-10, 10, 101)
        * (1 if dtype in (np.float32, np.float64) else 1)
    ).astype(dtype)
    out = getattr(rtorch.from_numpy(x), name)()
    assert out.numpy().dtype == x.dtype
    np.testing.assert_array_equal(out.numpy(), SAME_OPS[name](x).astype(dtype))


def test_round_half_to_even_and_decimals():
    t = rtorch.tensor([0.5, 1.5, 2.5, -0.5, 1.2345])
    assert t.round().tolist() == [0.0, 2.0, 2.0, -0.0, 1.0]
    np.testing.assert_allclose(
        rtorch.tensor([1.2345, 12.5]).round(decimals=2).numpy(), [1.23, 12.5], rtol=1e-6
    )
    np.testing.assert_allclose(rtorch.tensor([1234.0]).round(decimals=-2).numpy(), [1200.0])


def test_non_contiguous_input_keeps_layout_and_values():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = rtorch.from_numpy(x).t()
    out = t.exp()
    assert out.stride() == t.stride()
    np.testing.assert_allclose(out.numpy(), np.exp(x.T), rtol=1e-6)
    sliced = rtorch.from_numpy(x)[:, ::2]
    np.testing.assert_allclose(sliced.tanh().numpy(), np.tanh(x[:, ::2]), rtol=1e-6)


def test_empty_and_zero_dim():
    assert rtorch.zeros(0, 3).exp().shape == (0, 3)
    assert rtorch.tensor(0.0).exp().item() == 1.0
    assert rtorch.tensor(-2).abs().item() == 2


def test_special_values():
    t = rtorch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0])
    out = t.exp().tolist()
    assert math.isnan(out[0]) and out[1:] == [math.inf, 0.0, 1.0, 1.0]
    assert rtorch.tensor([-1.0, 0.0]).log().tolist()[1] == -math.inf
    assert math.isnan(rtorch.tensor([-1.0]).log().item())
    assert rtorch.tensor([float("nan"), -1.0]).relu().isnan().tolist() == [True, False]


@pytest.mark.parametrize(
    "name,ref",
    [
        ("isnan", np.isnan),
        ("isinf", np.isinf),
        ("isfinite", np.isfinite),
        ("isneginf", np.isneginf),
        ("isposinf", np.isposinf),
        ("signbit", np.signbit),
        ("logical_not", np.logical_not),
    ],
)
def test_predicates_return_bool(name, ref):
    x = np.array([1.0, -0.0, float("nan"), float("inf"), -float("inf"), 0.0, -3.0])
    out = getattr(rtorch.from_numpy(x), name)()
    assert out.dtype == rtorch.bool
    np.testing.assert_array_equal(out.numpy(), ref(x))


def test_bitwise_not():
    assert rtorch.tensor([0, 5, -1]).bitwise_not().tolist() == [-1, -6, 0]
    assert (~rtorch.tensor([True, False])).tolist() == [False, True]
    with pytest.raises(RuntimeError, match="\"bitwise_not_cpu\" not implemented for 'Float'"):
        rtorch.tensor([1.0]).bitwise_not()


def test_inplace_variants_write_and_check_dtype():
    t = rtorch.tensor([1.0, 4.0])
    base = t
    assert t.sqrt_() is base
    assert t.tolist() == [1.0, 2.0]
    assert t._version == 1
    with pytest.raises(
        RuntimeError, match="result type Float can't be cast to the desired output type Long"
    ):
        rtorch.tensor([1, 2]).exp_()


def test_clamp_scalar_and_tensor_bounds():
    x = np.array([-3.0, -1.0, 0.5, 2.0, 9.0], dtype=np.float32)
    t = rtorch.from_numpy(x)
    np.testing.assert_array_equal(t.clamp(-1, 2).numpy(), np.clip(x, -1, 2))
    np.testing.assert_array_equal(t.clamp(min=0).numpy(), np.maximum(x, 0))
    np.testing.assert_array_equal(rtorch.clamp(t, max=1).numpy(), np.minimum(x, 1))
    lo = rtorch.tensor([0.0, 0.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(t.clamp(min=lo).numpy(), np.maximum(x, lo.numpy()))
    assert rtorch.tensor([1, 5, 9]).clamp(2, 6).tolist() == [2, 5, 6]
    assert rtorch.tensor([1, 5]).clamp(min=2.5).dtype == rtorch.float32
    with pytest.raises(RuntimeError, match="At least one of 'min' or 'max' must not be None"):
        t.clamp()


def test_nan_to_num_defaults_to_dtype_extremes():
    t = rtorch.tensor([float("nan"), float("inf"), -float("inf"), 1.0])
    assert t.nan_to_num().tolist() == [0.0, np.finfo(np.float32).max, np.finfo(np.float32).min, 1.0]
    assert t.nan_to_num(nan=1.0, posinf=2.0, neginf=-2.0).tolist() == [1.0, 2.0, -2.0, 1.0]


def test_logit_with_eps():
    t = rtorch.tensor([0.0, 0.25, 1.0], dtype=rtorch.float64)
    out = t.logit(eps=1e-6).numpy()
    z = np.clip([0.0, 0.25, 1.0], 1e-6, 1 - 1e-6)
    np.testing.assert_allclose(out, np.log(z / (1 - z)))


def test_erfinv_inverts_erf_and_digamma_values():
    y = np.linspace(-0.99, 0.99, 41)
    x = rtorch.from_numpy(y).erfinv()
    np.testing.assert_allclose(_erf(x.numpy()), y, atol=1e-14)
    d = rtorch.tensor([1.0, 0.5, 10.0], dtype=rtorch.float64).digamma().numpy()
    np.testing.assert_allclose(
        d, [-0.5772156649015329, -1.9635100260214235, 2.251752589066721], rtol=1e-12
    )


def test_polygamma_values():
    x = rtorch.tensor([1.0, 0.5, -0.5, 100.0], dtype=rtorch.float64)
    pi2 = np.pi**2
    np.testing.assert_allclose(
        rtorch.polygamma(1, x).numpy(),
        [pi2 / 6, pi2 / 2, pi2 / 2 + 4, 0.010050166663333571],
        rtol=1e-12,
    )
    one = rtorch.ones(1, dtype=rtorch.float64)
    np.testing.assert_allclose(one.polygamma(2).item(), -2 * 1.2020569031595942, rtol=1e-12)
    np.testing.assert_allclose(one.polygamma(3).item(), np.pi**4 / 15, rtol=1e-12)
    np.testing.assert_array_equal(rtorch.polygamma(0, x).numpy(), x.digamma().numpy())
    assert rtorch.polygamma(1, rtorch.tensor([2])).dtype == rtorch.float32
    y = x.clone()
    y.polygamma_(1)
    np.testing.assert_array_equal(y.numpy(), x.polygamma(1).numpy())
    with pytest.raises(
        RuntimeError, match=re.escape("polygamma(n, x) does not support negative n.")
    ):
        x.polygamma(-1)


def test_frac_and_activations_refuse_integers():
    with pytest.raises(RuntimeError, match=re.escape("\"frac_cpu\" not implemented for 'Long'")):
        rtorch.tensor([1]).frac()
    np.testing.assert_allclose(rtorch.tensor([1.25, -1.25]).frac().numpy(), [0.25, -0.25])


def test_negating_bool_is_refused():
    with pytest.raises(
        RuntimeError, match="Negation, the `-` operator, on a bool tensor is not supported"
    ):
        rtorch.tensor([True]).neg()


def test_large_parallel_float32_kernels_match_small_ones():
    x = np.random.default_rng(3).standard_normal(3_000_001).astype(np.float32)
    t = rtorch.from_numpy(x)
    for name in ["exp", "tanh", "sigmoid", "relu", "neg", "abs"]:
        big = getattr(t, name)().numpy()
        small = np.concatenate(
            [
                getattr(rtorch.from_numpy(x[i : i + 1000]), name)().numpy()
                for i in (0, 1_500_000, 3_000_000)
            ]
        )
        np.testing.assert_array_equal(
            big[[*range(0, 1000), *range(1_500_000, 1_501_000), 3_000_000]], small
        )


def test_logit_with_any_eps_never_panics():
    t = rtorch.tensor([0.2, 0.7])
    for eps in [0.6, 1.0, 3.0, float("inf"), float("nan"), -1.0]:
        out = t.logit(eps=eps)
        assert out.shape == (2,)


@pytest.mark.parametrize("dtype", [rtorch.float16, rtorch.bfloat16])
def test_half_types_compute_in_float32_and_round_once(dtype):
    # Dense half tensors take the f32 kernels through staged blocks: the
    # result is the float32 kernel's, rounded once to the half type (as
    # PyTorch's opmath), in place too.
    x = np.random.default_rng(4).standard_normal(5000).astype(np.float32) * 3
    x[:4] = [np.nan, np.inf, -np.inf, 0.0]
    t = rtorch.from_numpy(x).to(dtype)
    w = t.float()
    for name in ["exp", "tanh", "sigmoid", "relu", "neg", "abs", "sqrt", "log"]:
        with np.errstate(all="ignore"):
            want = getattr(w, name)().to(dtype)
        got = getattr(t, name)()
        assert got.dtype == dtype
        np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())
        inplace = t.clone()
        getattr(inplace, name + "_")()
        np.testing.assert_array_equal(inplace.float().numpy(), want.float().numpy())
        # Strided views take the generic f64 path: within one half ULP.
        strided = getattr(t[::2], name)()
        rtol = 2**-8 if dtype == rtorch.float16 else 2**-5
        np.testing.assert_allclose(
            strided.float().numpy(), want[::2].float().numpy(), rtol=rtol, atol=1e-6
        )
