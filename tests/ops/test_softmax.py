"""softmax and log_softmax against NumPy."""

import math

import numpy as np
import pytest

import rtorch


def _softmax(a, axis):
    e = np.exp(a - a.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax_match_numpy(dim, dtype):
    x = np.random.default_rng(0).standard_normal((3, 5, 37)).astype(dtype) * 10
    t = rtorch.from_numpy(x)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    ref = _softmax(x.astype(np.float64), dim)
    np.testing.assert_allclose(t.softmax(dim).numpy(), ref, rtol=tol, atol=1e-30)
    np.testing.assert_allclose(rtorch.log_softmax(t, dim).numpy(), np.log(ref), rtol=tol, atol=tol)
    assert t.softmax(dim).dtype == t.dtype


def test_softmax_of_non_contiguous_input():
    x = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    t = rtorch.from_numpy(x.T.copy()).t()
    np.testing.assert_allclose(t.softmax(-1).numpy(), _softmax(x, -1), rtol=1e-6)


def test_softmax_dtype_argument_and_integer_error():
    t = rtorch.tensor([[1, 2, 3]])
    out = t.softmax(-1, dtype=rtorch.float64)
    assert out.dtype == rtorch.float64
    np.testing.assert_allclose(out.numpy(), _softmax(np.array([[1.0, 2.0, 3.0]]), -1))
    with pytest.raises(RuntimeError, match="not implemented for 'Long'"):
        t.softmax(-1)


def test_softmax_edge_rows():
    t = rtorch.tensor([[float("-inf"), 0.0], [float("-inf"), float("-inf")], [1000.0, 1000.0]])
    out = t.softmax(-1).tolist()
    assert out[0] == [0.0, 1.0]
    assert all(math.isnan(v) for v in out[1])
    assert out[2] == [0.5, 0.5]
    assert rtorch.zeros(0, 3).softmax(-1).shape == (0, 3)
    assert rtorch.tensor(2.0).softmax(0).item() == 1.0


@pytest.mark.parametrize("n", [16, 37, 64])
def test_softmax_float32_rows_with_nan_or_all_masked(n):
    # The lane-parallel float32 row: a NaN in the vector part or in the
    # tail, and an all -inf row, give NaN rows; the other rows are exact.
    x = np.random.default_rng(2).standard_normal((4, n)).astype(np.float32)
    x[1, 3] = np.nan
    x[2, n - 1] = np.nan
    x[3] = -np.inf
    t = rtorch.from_numpy(x)
    for out in (t.softmax(-1).numpy(), rtorch.log_softmax(t, -1).numpy()):
        assert np.isnan(out[1:]).all()
    ref = _softmax(x[:1].astype(np.float64), -1)
    np.testing.assert_allclose(t.softmax(-1).numpy()[:1], ref, rtol=1e-6)
    np.testing.assert_allclose(rtorch.log_softmax(t, -1).numpy()[:1], np.log(ref), rtol=1e-5)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", [rtorch.float16, rtorch.bfloat16])
def test_half_softmax_is_float_math_rounded_once(dtype, log):
    # PyTorch computes half softmax in float: the result must equal the
    # float32 kernel's, rounded to the half type, and be close to NumPy's.
    x = np.random.default_rng(2).standard_normal((40, 3, 50)).astype(np.float32) * 4
    h = rtorch.from_numpy(x).to(dtype).requires_grad_()
    fn = rtorch.log_softmax if log else rtorch.softmax
    for dim in (-1, 1):
        y = fn(h, dim)
        assert y.dtype == dtype
        want = fn(h.detach().float(), dim).to(dtype)
        np.testing.assert_array_equal(y.detach().float().numpy(), want.float().numpy())
        ref = _softmax(h.detach().float().numpy().astype(np.float64), dim)
        ref = np.log(ref) if log else ref
        np.testing.assert_allclose(y.detach().float().numpy(), ref, rtol=2e-2, atol=2e-2)
    # The fused backward of the last dim, also in float.
    g = rtorch.from_numpy(np.random.default_rng(3).standard_normal((40, 3, 50)).astype(np.float32))
    y = fn(h, -1)
    (gx,) = rtorch.autograd.grad(y, h, g.to(dtype))
    yf = y.detach().float().numpy().astype(np.float64)
    gf = g.to(dtype).float().numpy().astype(np.float64)
    if log:
        ref = gf - np.exp(yf) * gf.sum(-1, keepdims=True)
    else:
        ref = yf * (gf - (gf * yf).sum(-1, keepdims=True))
    assert gx.dtype == dtype
    np.testing.assert_allclose(gx.float().numpy(), ref, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("n", [7, 64, 1000])
def test_softmax_float32_wide_range_rows(n):
    # Offsets from the row max down to -120 (results through the subnormal
    # range to zero) and -inf entries: the float32 exp of (x - max).
    rng = np.random.default_rng(n)
    x = -rng.uniform(0, 120, (50, n)).astype(np.float32)
    x[:, 0] = 0.0
    x[::3, 1] = -np.inf
    out = rtorch.from_numpy(x).softmax(-1).numpy()
    ref = _softmax(x.astype(np.float64), -1)
    normal = ref >= np.finfo(np.float32).tiny
    np.testing.assert_allclose(out[normal], ref[normal], rtol=2e-6)
    np.testing.assert_allclose(out[~normal], ref[~normal], rtol=0, atol=2e-45)
    assert (out[::3, 1] == 0).all()
