"""Broadcasting arithmetic and PyTorch's type promotion with Python scalars."""

import re

import numpy as np
import pytest

import rtorch


def test_broadcast_add_matches_numpy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([10.0, 20.0, 30.0], dtype=np.float32)
    np.testing.assert_array_equal((rtorch.from_numpy(a) + rtorch.from_numpy(b)).numpy(), a + b)
    np.testing.assert_array_equal(
        (rtorch.from_numpy(a)[:, :1] * rtorch.from_numpy(b)).numpy(), a[:, :1] * b
    )


def test_non_contiguous_operands():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    ta = rtorch.from_numpy(a)
    np.testing.assert_array_equal((ta.t() - ta.t()[::2][0]).numpy(), a.T - a.T[::2][0])


@pytest.mark.parametrize(
    "lhs,rhs,dtype",
    [
        (rtorch.tensor([1, 2]), 2.5, rtorch.float32),
        (rtorch.tensor([1, 2]), 2, rtorch.int64),
        (rtorch.tensor([1, 2], dtype=rtorch.int32), 2, rtorch.int32),
        (rtorch.tensor([1.0], dtype=rtorch.float16), 3.0, rtorch.float16),
        (rtorch.tensor([True]), 1, rtorch.int64),
        (rtorch.tensor([True]), True, rtorch.bool),
        (rtorch.tensor([1], dtype=rtorch.uint8), rtorch.tensor(1000), rtorch.uint8),
        (
            rtorch.tensor([1], dtype=rtorch.int32),
            rtorch.tensor(1.5, dtype=rtorch.float64),
            rtorch.float64,
        ),
        (
            rtorch.tensor([1], dtype=rtorch.int8),
            rtorch.tensor([1], dtype=rtorch.uint8),
            rtorch.int16,
        ),
    ],
)
def test_result_dtype_follows_pytorch(lhs, rhs, dtype):
    assert (lhs + rhs).dtype is dtype


def test_integer_true_division_gives_float():
    out = rtorch.tensor([1, 2, 3]) / 2
    assert out.dtype is rtorch.float32
    assert out.tolist() == [0.5, 1.0, 1.5]


def test_reflected_scalar_operators():
    t = rtorch.tensor([1.0, 2.0])
    assert (3 - t).tolist() == [2.0, 1.0]
    assert (2 / t).tolist() == [2.0, 1.0]
    assert (np.float64(2.0) * t).tolist() == [2.0, 4.0]
    assert (-t).tolist() == [-1.0, -2.0]


def test_add_with_alpha():
    a, b = rtorch.tensor([1.0, 2.0]), rtorch.tensor([10.0, 20.0])
    assert rtorch.add(a, b, alpha=2).tolist() == [21.0, 42.0]
    assert a.sub(b, alpha=0.5).tolist() == [-4.0, -8.0]
    with pytest.raises(RuntimeError, match="alpha must not be a floating point"):
        rtorch.tensor([1]).add(rtorch.tensor([1]), alpha=0.5)


def test_inplace_ops_write_through_and_bump_version():
    base = rtorch.zeros(2, 3)
    row = base[1]
    v = base._version
    row += 5
    row.mul_(2)
    assert base.tolist() == [[0.0] * 3, [10.0] * 3]
    assert base._version == v + 2


def test_inplace_result_type_must_cast_back():
    t = rtorch.tensor([1, 2])
    with pytest.raises(
        RuntimeError, match="result type Float can't be cast to the desired output type Long"
    ):
        t += 1.5
    with pytest.raises(
        RuntimeError, match="result type Float can't be cast to the desired output type Long"
    ):
        t /= 2


def test_inplace_refuses_broadcast_growth():
    with pytest.raises(
        RuntimeError,
        match=re.escape("output with shape [3] doesn't match the broadcast shape [2, 3]"),
    ):
        rtorch.zeros(3).add_(rtorch.zeros(2, 3))


def test_shape_mismatch_message():
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1"
        ),
    ):
        rtorch.zeros(2, 3) + rtorch.zeros(2, 4)


def test_bool_subtraction_and_negation_are_refused():
    b = rtorch.tensor([True, False])
    with pytest.raises(
        RuntimeError, match="Subtraction, the `-` operator, with two bool tensors is not supported"
    ):
        _ = b - b
    with pytest.raises(
        RuntimeError, match="Negation, the `-` operator, on a bool tensor is not supported"
    ):
        _ = -b


def test_integer_arithmetic_is_exact_beyond_float_precision():
    big = 2**62 + 1
    assert (rtorch.tensor([big]) + 1).item() == big + 1


def test_self_aliasing_inplace_add():
    t = rtorch.arange(4.0)
    t += t
    assert t.tolist() == [0.0, 2.0, 4.0, 6.0]
    u = rtorch.arange(5.0)
    u[1:] += u[:-1]
    assert u.tolist() == [0.0, 1.0, 3.0, 5.0, 7.0]


def test_unsupported_operand_returns_not_implemented():
    with pytest.raises(TypeError):
        rtorch.zeros(2) + "a"
    with pytest.raises(TypeError, match="must be Tensor"):
        rtorch.zeros(2).add("a")
