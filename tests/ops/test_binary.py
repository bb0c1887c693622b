"""Binary elementwise ops and comparisons against NumPy, with PyTorch's
promotion rules (checked exhaustively against the promotion table)."""

import itertools
import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rtorch

DTYPES = [
    rtorch.bool,
    rtorch.uint8,
    rtorch.int8,
    rtorch.int16,
    rtorch.int32,
    rtorch.int64,
    rtorch.float16,
    rtorch.bfloat16,
    rtorch.float32,
    rtorch.float64,
]
CATEGORY = {d: (0 if d == rtorch.bool else 2 if d.is_floating_point else 1) for d in DTYPES}


def _expected_result_type(a, a_dim, b, b_dim):
    """PyTorch's result_type for two tensors (dimensioned or 0-d), from the rules."""
    if a_dim == b_dim:
        return rtorch.promote_types(a, b)
    dim, zero = (a, b) if a_dim else (b, a)
    if CATEGORY[zero] > CATEGORY[dim]:
        return rtorch.promote_types(dim, zero)
    return dim


@pytest.mark.parametrize("a,b", list(itertools.product(DTYPES, DTYPES)))
def test_promotion_table_for_add_and_mul(a, b):
    for a_dim, b_dim in [(True, True), (True, False), (False, True)]:
        x = rtorch.ones(2, dtype=a) if a_dim else rtorch.ones((), dtype=a)
        y = rtorch.ones(2, dtype=b) if b_dim else rtorch.ones((), dtype=b)
        want = _expected_result_type(a, a_dim, b, b_dim)
        assert (x * y).dtype == want, (a, a_dim, b, b_dim)


@given(
    st.sampled_from(DTYPES),
    st.sampled_from([True, 3, -2, 2.5, 0.0]),
)
def test_python_scalars_are_weak(dtype, scalar):
    t = rtorch.ones(3, dtype=dtype)
    out = t * scalar
    cat = 0 if isinstance(scalar, bool) else 1 if isinstance(scalar, int) else 2
    if cat > CATEGORY[dtype]:
        want = rtorch.get_default_dtype() if cat == 2 else rtorch.int64
    else:
        want = dtype
    assert out.dtype == want


@given(
    st.lists(st.integers(1, 4), min_size=0, max_size=3),
    st.lists(st.integers(1, 4), min_size=0, max_size=3),
    st.data(),
)
def test_broadcasting_matches_numpy(sa, sb, data):
    # Make the shapes broadcast-compatible by setting some dims to 1.
    n = min(len(sa), len(sb))
    for i in range(1, n + 1):
        if sa[-i] != sb[-i] and data.draw(st.booleans()):
            sa[-i] = 1
        elif sa[-i] != sb[-i]:
            sb[-i] = 1
    x = np.random.default_rng(0).standard_normal(sa).astype(np.float32)
    y = np.random.default_rng(1).standard_normal(sb).astype(np.float32)
    out = rtorch.from_numpy(x) - rtorch.from_numpy(y)
    np.testing.assert_array_equal(out.numpy(), x - y)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
def test_float32_broadcast_kernels_large_strided_and_in_place(op):
    # Big enough to split over threads; operands broadcast along inner and
    # outer dims, one transposed.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 64, 40)).astype(np.float32)
    bias = rng.standard_normal(40).astype(np.float32)
    col = rng.standard_normal((300, 1, 1)).astype(np.float32)
    fn = ARITH[op]
    got = getattr(rtorch, op)(rtorch.from_numpy(x), rtorch.from_numpy(bias))
    np.testing.assert_array_equal(got.numpy(), fn(x, bias))
    got = getattr(rtorch, op)(rtorch.from_numpy(col), rtorch.from_numpy(x))
    np.testing.assert_array_equal(got.numpy(), fn(col, x))
    if op in ("add", "sub", "mul", "div"):
        xt = rtorch.from_numpy(x.copy()).transpose(0, 2)  # (40, 64, 300), not contiguous
        getattr(xt, op + "_")(rtorch.from_numpy(col.reshape(1, 1, 300)))
        np.testing.assert_array_equal(xt.numpy(), fn(x.transpose(2, 1, 0), col.reshape(1, 1, 300)))
    y = rtorch.from_numpy(x).add(rtorch.from_numpy(bias), alpha=2.5)
    np.testing.assert_allclose(y.numpy(), x + np.float32(2.5) * bias, rtol=1e-6)


ARITH = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.true_divide,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "fmax": np.fmax,
    "fmin": np.fmin,
    "atan2": np.arctan2,
    "hypot": np.hypot,
    "copysign": np.copysign,
    "logaddexp": np.logaddexp,
    "logaddexp2": np.logaddexp2,
    "fmod": np.fmod,
    "remainder": np.remainder,
    "floor_divide": np.floor_divide,
    "pow": np.power,
}


@pytest.mark.parametrize("name", sorted(ARITH))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_binary_matches_numpy(name, dtype):
    rng = np.random.default_rng(2)
    x = rng.uniform(0.5, 5, (7, 9)).astype(dtype) * rng.choice([-1, 1], (7, 9))
    y = rng.uniform(0.5, 5, (9,)).astype(dtype)
    if name == "pow":
        x = np.abs(x)
    out = getattr(rtorch.from_numpy(x), name)(rtorch.from_numpy(y))
    np.testing.assert_allclose(
        out.numpy(), ARITH[name](x, y), rtol=2e-6 if dtype == np.float32 else 1e-14
    )
    # transposed operands: same values
    out_t = getattr(rtorch.from_numpy(x.T.copy()).t(), name)(rtorch.from_numpy(y))
    np.testing.assert_allclose(
        out_t.numpy(), ARITH[name](x, y), rtol=2e-6 if dtype == np.float32 else 1e-14
    )


@pytest.mark.parametrize(
    "name", ["add", "sub", "mul", "maximum", "minimum", "remainder", "floor_divide", "fmod"]
)
def test_integer_binary_matches_numpy(name):
    rng = np.random.default_rng(4)
    x = rng.integers(-50, 50, (5, 6))
    y = rng.integers(1, 9, (6,)) * rng.choice([-1, 1], (6,))
    out = getattr(rtorch.from_numpy(x), name)(rtorch.from_numpy(y))
    assert out.dtype == rtorch.int64
    ref = {"fmod": np.fmod}.get(name, ARITH[name])
    np.testing.assert_array_equal(out.numpy(), ref(x, y))


def test_integer_division_by_zero_raises():
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        rtorch.tensor([1]) // rtorch.tensor([0])
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        rtorch.tensor([1]) % 0
    assert math.isinf((rtorch.tensor([1.0]) // 0).item())


def test_div_rounding_modes():
    a, b = rtorch.tensor([7.0, -7.0]), rtorch.tensor([2.0, 2.0])
    assert a.div(b).tolist() == [3.5, -3.5]
    assert a.div(b, rounding_mode="trunc").tolist() == [3.0, -3.0]
    assert a.div(b, rounding_mode="floor").tolist() == [3.0, -4.0]
    assert rtorch.tensor([7, -7]).div(2, rounding_mode="floor").tolist() == [3, -4]
    with pytest.raises(
        ValueError, match="div expected rounding_mode to be one of None, 'trunc', or 'floor'"
    ):
        a.div(b, rounding_mode="round")


def test_pow_forms_and_integer_rules():
    t = rtorch.tensor([1, 2, 3])
    assert (t**2).tolist() == [1, 4, 9]
    assert (2**t).tolist() == [2, 4, 8]
    assert (t**0.5).dtype == rtorch.float32
    assert rtorch.pow(t, 2).tolist() == [1, 4, 9]
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed."):
        t**-1
    assert rtorch.tensor([2.0]).float_power(2).dtype == rtorch.float64


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons_return_bool_and_match_numpy(op):
    x = np.array([1.0, 2.0, float("nan"), 4.0], dtype=np.float32)
    y = np.array([1.0, 3.0, float("nan"), 3.0], dtype=np.float32)
    ref = getattr(
        np,
        {
            "eq": "equal",
            "ne": "not_equal",
            "lt": "less",
            "le": "less_equal",
            "gt": "greater",
            "ge": "greater_equal",
        }[op],
    )
    out = getattr(rtorch.from_numpy(x), op)(rtorch.from_numpy(y))
    assert out.dtype == rtorch.bool
    np.testing.assert_array_equal(out.numpy(), ref(x, y))
    assert (rtorch.from_numpy(x) > 2).tolist() == [False, False, False, True]
    assert (rtorch.tensor([1, 2]) == rtorch.tensor([1.0, 2.5])).tolist() == [True, False]


def test_operators_cover_python_protocols():
    t = rtorch.tensor([6, 7])
    assert (t & 3).tolist() == [2, 3]
    assert (t | 1).tolist() == [7, 7]
    assert (t ^ 1).tolist() == [7, 6]
    assert (t << 1).tolist() == [12, 14]
    assert (t >> 1).tolist() == [3, 3]
    assert (t // 4).tolist() == [1, 1]
    assert (t % 4).tolist() == [2, 3]
    assert (100 // t).tolist() == [16, 14]
    b = rtorch.tensor([True, False])
    assert (b & rtorch.tensor([True, True])).tolist() == [True, False]
    with pytest.raises(RuntimeError, match="\"bitwise_and_cpu\" not implemented for 'Float'"):
        rtorch.tensor([1.0]) & 1


def test_logical_ops_use_truthiness():
    a = rtorch.tensor([0.0, 1.0, 2.0])
    b = rtorch.tensor([1, 0, 3])
    assert a.logical_and(b).tolist() == [False, False, True]
    assert a.logical_or(b).tolist() == [True, True, True]
    assert a.logical_xor(b).tolist() == [True, True, False]


def test_out_argument_writes_into_given_tensor():
    out = rtorch.empty(3)
    r = rtorch.add(rtorch.tensor([1.0, 2.0, 3.0]), 1, out=out)
    assert r is out and out.tolist() == [2.0, 3.0, 4.0]
    with pytest.raises(
        RuntimeError, match="result type Float can't be cast to the desired output type Long"
    ):
        rtorch.mul(rtorch.tensor([1.5]), 2, out=rtorch.empty(1, dtype=rtorch.int64))


def test_where_masked_fill_lerp_addcmul():
    x = rtorch.tensor([1.0, -2.0, 3.0])
    assert rtorch.where(x > 0, x, rtorch.zeros(3)).tolist() == [1.0, 0.0, 3.0]
    assert rtorch.where(x > 0, 1, 0).dtype == rtorch.int64
    assert x.masked_fill(x < 0, 9.0).tolist() == [1.0, 9.0, 3.0]
    with pytest.raises(RuntimeError, match="expected condition to be a boolean tensor"):
        rtorch.where(rtorch.tensor([1, 0]), x[:2], x[:2])
    s, e = rtorch.tensor([0.0, 10.0]), rtorch.tensor([10.0, 20.0])
    assert rtorch.lerp(s, e, 0.5).tolist() == [5.0, 15.0]
    assert rtorch.addcmul(s, s, e, value=2).tolist() == [0.0, 410.0]
    assert rtorch.addcdiv(e, e, e, value=0.5).tolist() == [10.5, 20.5]


def test_isclose_allclose_equal():
    a = rtorch.tensor([1.0, float("nan"), float("inf"), 1.0])
    b = rtorch.tensor([1.0 + 1e-9, float("nan"), float("inf"), 1.1])
    assert a.isclose(b).tolist() == [True, False, True, False]
    assert a.isclose(b, equal_nan=True).tolist() == [True, True, True, False]
    assert rtorch.allclose(rtorch.tensor([1.0]), rtorch.tensor([1.0 + 1e-6]))
    assert rtorch.equal(rtorch.tensor([1, 2]), rtorch.tensor([1, 2]))
    assert not rtorch.equal(rtorch.tensor([1, 2]), rtorch.tensor([1, 2, 3]))


def test_large_float32_fast_paths_match_numpy():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(2_000_003).astype(np.float32)
    y = rng.standard_normal(2_000_003).astype(np.float32)
    tx, ty = rtorch.from_numpy(x), rtorch.from_numpy(y)
    np.testing.assert_array_equal((tx + ty).numpy(), x + y)
    np.testing.assert_array_equal((tx * 3.0).numpy(), x * np.float32(3.0))
    np.testing.assert_array_equal((2.0 - tx).numpy(), np.float32(2.0) - x)
    np.testing.assert_array_equal(tx.maximum(ty).numpy(), np.maximum(x, y))
    z = tx.clone()
    z += ty
    np.testing.assert_array_equal(z.numpy(), x + y)


@pytest.mark.parametrize("dtype", [rtorch.float16, rtorch.bfloat16])
def test_half_types_stage_through_float32_kernels(dtype):
    # Dense or scalar half operands: float32 arithmetic rounded once to the
    # half type, the same as computing in float32 and casting.
    rng = np.random.default_rng(6)
    x = rng.standard_normal(5003).astype(np.float32) * 100
    y = rng.standard_normal(5003).astype(np.float32)
    tx, ty = rtorch.from_numpy(x).to(dtype), rtorch.from_numpy(y).to(dtype)
    fx, fy = tx.float(), ty.float()

    def same(got, want):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got.float().numpy(), want.to(dtype).float().numpy())

    same(tx + ty, fx + fy)
    same(rtorch.sub(tx, ty, alpha=3), rtorch.sub(fx, fy, alpha=3))
    same(tx * ty, fx * fy)
    same(tx / ty, fx / fy)
    same(tx.maximum(ty), fx.maximum(fy))
    same(tx.minimum(ty), fx.minimum(fy))
    same(tx * 0.1, fx * rtorch.tensor(0.1).to(dtype).float())
    same(2.0 - tx, 2.0 - fx)
    z = tx.clone()
    z += ty
    same(z, fx + fy)


@pytest.mark.parametrize("dtype", [rtorch.float16, rtorch.bfloat16])
def test_half_broadcasts_comparisons_and_other_ops_compute_in_float(dtype):
    # Cases the flat half kernels do not cover go through float32 whole:
    # still float32 math rounded once, and comparisons of the half values.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((64, 40)).astype(np.float32) * 10
    y = rng.standard_normal(40).astype(np.float32)
    tx, ty = rtorch.from_numpy(x).to(dtype), rtorch.from_numpy(y).to(dtype)
    fx, fy = tx.float(), ty.float()

    def same(got, want):
        assert got.dtype == want.dtype or got.dtype == dtype
        np.testing.assert_array_equal(got.float().numpy(), want.to(got.dtype).float().numpy())

    same(tx + ty, fx + fy)
    same(rtorch.add(ty, tx, alpha=2), rtorch.add(fy, fx, alpha=2))
    same(tx.t() * tx.t(), fx.t() * fx.t())
    same(rtorch.atan2(tx, ty), rtorch.atan2(fx, fy))
    same(tx.remainder(ty), fx.remainder(fy))
    for op in ("lt", "le", "gt", "ge", "eq", "ne"):
        got = getattr(tx, op)(ty)
        assert got.dtype == rtorch.bool
        np.testing.assert_array_equal(got.numpy(), getattr(fx, op)(fy).numpy())
    out = rtorch.empty(64, 40, dtype=dtype).t().contiguous().t()
    rtorch.mul(tx, ty, out=out)
    same(out, fx * fy)
    z = tx.clone()
    z -= ty
    same(z, fx - fy)


def test_inplace_on_view_of_itself_uses_snapshot():
    t = rtorch.arange(6.0)
    t[1:] += t[:-1]
    assert t.tolist() == [0.0, 1.0, 3.0, 5.0, 7.0, 9.0]


def test_bool_sub_is_refused():
    with pytest.raises(
        RuntimeError,
        match=re.escape("Subtraction, the `-` operator, with two bool tensors is not supported."),
    ):
        rtorch.tensor([True]) - rtorch.tensor([False])
