"""Tensor creation: ``tensor``, the legacy constructors, ``as_tensor``,
``from_numpy``, the factories and the random functions, checked against
NumPy and against PyTorch's documented dtypes, shapes and error messages."""

import re
import time
import warnings

import numpy as np
import pytest

import rtorch

NP_DTYPE = {
    rtorch.float32: np.float32,
    rtorch.float64: np.float64,
    rtorch.float16: np.float16,
    rtorch.int64: np.int64,
    rtorch.int32: np.int32,
    rtorch.int16: np.int16,
    rtorch.int8: np.int8,
    rtorch.uint8: np.uint8,
    rtorch.bool: np.bool_,
}


def assert_tensor_equal(t, expected, dtype=None):
    """``t`` has ``expected``'s shape, values and (given) rtorch dtype."""
    expected = np.asarray(expected)
    assert isinstance(t, rtorch.Tensor)
    assert tuple(t.shape) == expected.shape
    if dtype is not None:
        assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), expected)


@pytest.fixture
def restore_default_dtype():
    old = rtorch.get_default_dtype()
    yield
    rtorch.set_default_dtype(old)


@pytest.fixture
def restore_rng():
    state = rtorch.get_rng_state()
    yield
    rtorch.set_rng_state(state)


# ---------------------------------------------------------------- tensor()


@pytest.mark.parametrize(
    "data,dtype",
    [
        ([1, 2, 3], rtorch.int64),
        ([1.0, 2.0], rtorch.float32),
        ([1, 2.5], rtorch.float32),
        ([True, False], rtorch.bool),
        ([True, 2], rtorch.int64),
        ([True, 2.5], rtorch.float32),
        (3, rtorch.int64),
        (3.5, rtorch.float32),
        (True, rtorch.bool),
        ([], rtorch.float32),
    ],
)
def test_tensor_infers_pytorch_dtype_from_python_scalars(data, dtype):
    t = rtorch.tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(data, dtype=NP_DTYPE[dtype]))


def test_tensor_of_python_scalar_is_zero_dim():
    t = rtorch.tensor(7)
    assert t.shape == ()
    assert t.dim() == 0
    assert t.item() == 7


def test_tensor_of_empty_list_has_shape_zero():
    assert rtorch.tensor([]).shape == (0,)
    assert rtorch.tensor([[]]).shape == (1, 0)
    assert rtorch.tensor([[], []]).shape == (2, 0)


def test_tensor_from_nested_lists_and_tuples_matches_numpy():
    data = [(1, 2, 3), [4, 5, 6]]
    assert_tensor_equal(rtorch.tensor(data), np.array(data), rtorch.int64)
    data3 = [[[1.5, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.25]]]
    assert_tensor_equal(rtorch.tensor(data3), np.array(data3, dtype=np.float32), rtorch.float32)


def test_tensor_ragged_inner_dim_raises_pytorch_value_error():
    with pytest.raises(
        ValueError, match=re.escape("expected sequence of length 3 at dim 1 (got 2)")
    ):
        rtorch.tensor([[1, 2, 3], [4, 5]])


def test_tensor_ragged_deeper_dim_names_that_dim():
    with pytest.raises(
        ValueError, match=re.escape("expected sequence of length 2 at dim 2 (got 1)")
    ):
        rtorch.tensor([[[1, 2], [3]]])


def test_tensor_of_string_raises_type_error():
    with pytest.raises(TypeError, match=re.escape("new(): invalid data type 'str'")):
        rtorch.tensor("abc")


@pytest.mark.parametrize(
    "np_dtype,dtype",
    [
        (np.float64, rtorch.float64),
        (np.float32, rtorch.float32),
        (np.float16, rtorch.float16),
        (np.int64, rtorch.int64),
        (np.int32, rtorch.int32),
        (np.int16, rtorch.int16),
        (np.int8, rtorch.int8),
        (np.uint8, rtorch.uint8),
        (np.bool_, rtorch.bool),
    ],
)
def test_tensor_of_numpy_array_keeps_its_dtype(np_dtype, dtype):
    a = (np.arange(6) % 3).astype(np_dtype).reshape(2, 3)
    assert_tensor_equal(rtorch.tensor(a), a, dtype)


@pytest.mark.parametrize(
    "scalar,dtype",
    [
        (np.float64(1.5), rtorch.float64),
        (np.float32(1.5), rtorch.float32),
        (np.int32(-3), rtorch.int32),
        (np.int64(9), rtorch.int64),
        (np.bool_(True), rtorch.bool),
    ],
)
def test_tensor_of_numpy_scalar_keeps_its_dtype(scalar, dtype):
    t = rtorch.tensor(scalar)
    assert t.dtype == dtype
    assert t.shape == ()
    assert t.item() == scalar.item()


def test_tensor_of_list_of_numpy_float64_scalars_is_float64():
    t = rtorch.tensor([np.float64(1.0), np.float64(2.5)])
    assert t.dtype == rtorch.float64
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.5])


def test_tensor_copies_numpy_array():
    a = np.arange(4.0)
    t = rtorch.tensor(a)
    a[0] = 100.0
    assert t[0].item() == 0.0
    t[1] = -5.0
    assert a[1] == 1.0


def test_tensor_of_noncontiguous_numpy_array_copies_values():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)[::2, ::-1]
    assert_tensor_equal(rtorch.tensor(a), a, rtorch.int32)


def test_tensor_copies_a_tensor():
    src = rtorch.tensor([1.0, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = rtorch.tensor(src)
    assert t is not src
    assert not t._is_view_of(src)
    t[0] = 9.0
    assert src[0].item() == 1.0


def test_tensor_dtype_argument_converts_values():
    t = rtorch.tensor([1.7, -2.7, 3.0], dtype=rtorch.int64)
    assert_tensor_equal(t, np.array([1, -2, 3]), rtorch.int64)
    t = rtorch.tensor([1, 0, 2], dtype=rtorch.bool)
    assert_tensor_equal(t, np.array([True, False, True]), rtorch.bool)
    t = rtorch.tensor(np.arange(3, dtype=np.int32), dtype=rtorch.float64)
    assert_tensor_equal(t, np.arange(3.0), rtorch.float64)


def test_tensor_requires_grad_makes_leaf_that_requires_grad():
    t = rtorch.tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad
    assert t.is_leaf
    assert t.grad is None


def test_tensor_requires_grad_on_integer_dtype_raises():
    with pytest.raises(
        RuntimeError,
        match=re.escape("Only Tensors of floating point and complex dtype can require gradients"),
    ):
        rtorch.tensor([1, 2], requires_grad=True)


def test_tensor_follows_default_dtype_for_floats(restore_default_dtype):
    rtorch.set_default_dtype(rtorch.float64)
    assert rtorch.tensor([1.5]).dtype == rtorch.float64
    assert rtorch.tensor(1.5).dtype == rtorch.float64
    assert rtorch.tensor([1, 2]).dtype == rtorch.int64
    assert rtorch.tensor(np.float32(1.0)).dtype == rtorch.float32


# ------------------------------------------------------ legacy constructors


def test_legacy_tensor_of_ints_is_uninitialised_float32_of_that_shape():
    t = rtorch.Tensor(2, 3)
    assert t.shape == (2, 3)
    assert t.dtype == rtorch.float32
    assert t.is_contiguous()


def test_legacy_tensor_of_list_is_float32_data():
    t = rtorch.Tensor([1, 2])
    assert_tensor_equal(t, np.array([1.0, 2.0], dtype=np.float32), rtorch.float32)


def test_legacy_tensor_of_tuple_is_data_not_shape():
    t = rtorch.Tensor((2, 3))
    assert_tensor_equal(t, np.array([2.0, 3.0], dtype=np.float32), rtorch.float32)


def test_legacy_tensor_with_no_arguments_is_empty_1d():
    t = rtorch.Tensor()
    assert t.shape == (0,)
    assert t.dtype == rtorch.float32
    assert t.numel() == 0


def test_legacy_tensor_of_size_is_shape():
    t = rtorch.Tensor(rtorch.Size([2, 3]))
    assert t.shape == (2, 3)
    assert t.dtype == rtorch.float32


def test_legacy_tensor_follows_default_dtype(restore_default_dtype):
    rtorch.set_default_dtype(rtorch.float64)
    assert rtorch.Tensor(2).dtype == rtorch.float64
    assert rtorch.Tensor([1, 2]).dtype == rtorch.float64


@pytest.mark.parametrize(
    "cls,dtype",
    [
        ("FloatTensor", rtorch.float32),
        ("DoubleTensor", rtorch.float64),
        ("HalfTensor", rtorch.float16),
        ("BFloat16Tensor", rtorch.bfloat16),
        ("LongTensor", rtorch.int64),
        ("IntTensor", rtorch.int32),
        ("ShortTensor", rtorch.int16),
        ("CharTensor", rtorch.int8),
        ("ByteTensor", rtorch.uint8),
        ("BoolTensor", rtorch.bool),
    ],
)
def test_legacy_typed_constructor_makes_that_dtype_from_shape_and_data(cls, dtype):
    ctor = getattr(rtorch, cls)
    shaped = ctor(2, 3)
    assert shaped.shape == (2, 3)
    assert shaped.dtype == dtype
    data = ctor([1, 0, 1])
    assert data.dtype == dtype
    assert data.shape == (3,)
    assert data.tolist() == ([True, False, True] if dtype == rtorch.bool else [1, 0, 1])
    assert isinstance(data, ctor)
    assert isinstance(data, rtorch.Tensor)


def test_legacy_type_isinstance_checks_dtype():
    f = rtorch.zeros(2)
    i = rtorch.zeros(2, dtype=rtorch.int64)
    assert isinstance(f, rtorch.FloatTensor)
    assert not isinstance(f, rtorch.LongTensor)
    assert isinstance(i, rtorch.LongTensor)
    assert not isinstance(i, rtorch.FloatTensor)
    assert not isinstance([1.0], rtorch.FloatTensor)


def test_legacy_typed_constructor_with_no_arguments_is_empty():
    t = rtorch.LongTensor()
    assert t.shape == (0,)
    assert t.dtype == rtorch.int64


# -------------------------------------------------------------- as_tensor


def test_as_tensor_shares_memory_with_numpy_when_dtype_matches():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = rtorch.as_tensor(a)
    assert t.dtype == rtorch.float64
    a[1, 2] = 42.0
    assert t[1, 2].item() == 42.0
    t[0, 0] = -1.0
    assert a[0, 0] == -1.0
    assert t.data_ptr() == a.ctypes.data


def test_as_tensor_copies_numpy_when_dtype_differs():
    a = np.arange(3, dtype=np.float64)
    t = rtorch.as_tensor(a, dtype=rtorch.float32)
    assert t.dtype == rtorch.float32
    a[0] = 7.0
    assert t[0].item() == 0.0


def test_as_tensor_returns_same_tensor_object():
    t = rtorch.arange(3)
    assert rtorch.as_tensor(t) is t
    assert rtorch.as_tensor(t, dtype=rtorch.int64) is t


def test_as_tensor_converts_tensor_to_other_dtype_without_touching_source():
    t = rtorch.tensor([1, 2, 3])
    f = rtorch.as_tensor(t, dtype=rtorch.float32)
    assert f.dtype == rtorch.float32
    assert_tensor_equal(f, np.array([1.0, 2.0, 3.0], dtype=np.float32))
    assert t.dtype == rtorch.int64


def test_as_tensor_of_list_infers_like_tensor():
    t = rtorch.as_tensor([[1, 2], [3, 4]])
    assert_tensor_equal(t, np.array([[1, 2], [3, 4]]), rtorch.int64)


# ------------------------------------------------------------- from_numpy


@pytest.mark.parametrize(
    "np_dtype", [np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_]
)
def test_from_numpy_shares_memory_both_ways(np_dtype):
    a = np.zeros((2, 3), dtype=np_dtype)
    t = rtorch.from_numpy(a)
    assert t.shape == (2, 3)
    assert NP_DTYPE[t.dtype] == np_dtype
    a[1, 1] = 1
    assert t[1, 1].item() == 1
    t[0, 2] = 1
    assert a[0, 2] == 1
    assert t.data_ptr() == a.ctypes.data


def test_from_numpy_of_strided_array_keeps_strides_in_elements():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    a = base[1::2, ::3]
    t = rtorch.from_numpy(a)
    assert t.stride() == tuple(s // a.itemsize for s in a.strides)
    np.testing.assert_array_equal(t.numpy(), a)
    t[1, 1] = -1.0
    assert base[3, 3] == -1.0


def test_from_numpy_of_transposed_array_is_not_contiguous_and_shares():
    a = np.arange(6, dtype=np.int64).reshape(2, 3).T
    t = rtorch.from_numpy(a)
    assert t.shape == (3, 2)
    assert t.stride() == (1, 3)
    assert not t.is_contiguous()
    np.testing.assert_array_equal(t.numpy(), a)


def test_from_numpy_of_zero_dim_array_is_zero_dim_tensor():
    a = np.array(3.5)
    t = rtorch.from_numpy(a)
    assert t.shape == ()
    assert t.dtype == rtorch.float64
    assert t.item() == 3.5


def test_from_numpy_negative_strides_raise_pytorch_value_error():
    a = np.arange(5.0)[::-1]
    with pytest.raises(
        ValueError,
        match=re.escape("At least one stride in the given numpy array is negative"),
    ):
        rtorch.from_numpy(a)


@pytest.mark.parametrize("np_dtype,name", [(np.complex128, "complex128"), (np.uint16, "uint16")])
def test_from_numpy_unsupported_dtype_raises_pytorch_type_error(np_dtype, name):
    a = np.zeros(3, dtype=np_dtype)
    with pytest.raises(
        TypeError, match=re.escape(f"can't convert np.ndarray of type numpy.{name}")
    ):
        rtorch.from_numpy(a)


def test_from_numpy_object_array_raises_type_error():
    a = np.array([1, "a"], dtype=object)
    with pytest.raises(
        TypeError, match=re.escape("can't convert np.ndarray of type numpy.object_")
    ):
        rtorch.from_numpy(a)


def test_from_numpy_of_non_array_raises_type_error():
    with pytest.raises(TypeError, match=re.escape("expected np.ndarray (got list)")):
        rtorch.from_numpy([1, 2, 3])


def test_from_numpy_keeps_array_alive():
    t = rtorch.from_numpy(np.arange(4, dtype=np.int64) * 3)
    np.testing.assert_array_equal(t.numpy(), [0, 3, 6, 9])


# ----------------------------------------------- zeros / ones / full / empty


@pytest.mark.parametrize("factory,fill", [(rtorch.zeros, 0), (rtorch.ones, 1)])
@pytest.mark.parametrize("size", [(2, 3), ((2, 3),), ([2, 3],), (rtorch.Size([2, 3]),)])
def test_zeros_ones_accept_varargs_tuple_list_and_size(factory, fill, size):
    t = factory(*size)
    assert_tensor_equal(t, np.full((2, 3), fill, dtype=np.float32), rtorch.float32)


@pytest.mark.parametrize("factory,fill", [(rtorch.zeros, 0), (rtorch.ones, 1)])
@pytest.mark.parametrize("dtype", list(NP_DTYPE))
def test_zeros_ones_with_dtype(factory, fill, dtype):
    t = factory(3, 2, dtype=dtype)
    assert_tensor_equal(t, np.full((3, 2), fill, dtype=NP_DTYPE[dtype]), dtype)


def test_zeros_with_no_size_is_zero_dim():
    t = rtorch.zeros(())
    assert t.shape == ()
    assert t.item() == 0.0


def test_zeros_with_zero_size_dim_is_empty():
    t = rtorch.zeros(3, 0, 2)
    assert t.shape == (3, 0, 2)
    assert t.numel() == 0
    assert t.tolist() == [[], [], []]


def test_factories_requires_grad():
    assert rtorch.zeros(2, requires_grad=True).requires_grad
    assert rtorch.ones(2, requires_grad=True).is_leaf
    assert not rtorch.empty(2).requires_grad


@pytest.mark.parametrize(
    "fill,dtype",
    [(7, rtorch.int64), (True, rtorch.bool), (1.5, rtorch.float32), (-2.0, rtorch.float32)],
)
def test_full_infers_dtype_from_fill_value(fill, dtype):
    t = rtorch.full((2, 3), fill)
    assert_tensor_equal(t, np.full((2, 3), fill, dtype=NP_DTYPE[dtype]), dtype)


def test_full_float_fill_follows_default_dtype(restore_default_dtype):
    rtorch.set_default_dtype(rtorch.float64)
    assert rtorch.full((2,), 1.5).dtype == rtorch.float64
    assert rtorch.full((2,), 1).dtype == rtorch.int64


def test_full_with_dtype_converts_fill():
    assert_tensor_equal(
        rtorch.full((2,), 2.9, dtype=rtorch.int32), np.array([2, 2], np.int32), rtorch.int32
    )
    assert_tensor_equal(rtorch.full((3,), 5, dtype=rtorch.float64), np.full(3, 5.0), rtorch.float64)


def test_empty_has_shape_and_dtype():
    t = rtorch.empty(4, 5, dtype=rtorch.int16)
    assert t.shape == (4, 5)
    assert t.dtype == rtorch.int16
    assert t.is_contiguous()
    assert t.stride() == (5, 1)


def test_like_factories_keep_shape_and_dtype_of_input():
    x = rtorch.arange(6, dtype=rtorch.int32).view(2, 3)
    assert_tensor_equal(rtorch.zeros_like(x), np.zeros((2, 3), np.int32), rtorch.int32)
    assert_tensor_equal(rtorch.ones_like(x), np.ones((2, 3), np.int32), rtorch.int32)
    assert_tensor_equal(rtorch.full_like(x, 4), np.full((2, 3), 4, np.int32), rtorch.int32)
    e = rtorch.empty_like(x)
    assert e.shape == (2, 3)
    assert e.dtype == rtorch.int32
    assert not e._is_view_of(x)


def test_full_like_converts_fill_to_input_dtype():
    x = rtorch.zeros(3, dtype=rtorch.int64)
    assert_tensor_equal(rtorch.full_like(x, 2.7), np.array([2, 2, 2]), rtorch.int64)
    y = rtorch.zeros(2)
    assert_tensor_equal(rtorch.full_like(y, 3), np.array([3.0, 3.0], np.float32), rtorch.float32)


def test_like_factories_dtype_override():
    x = rtorch.zeros(2, 2)
    assert rtorch.zeros_like(x, dtype=rtorch.int8).dtype == rtorch.int8
    assert rtorch.ones_like(x, dtype=rtorch.bool).tolist() == [[True, True], [True, True]]


def test_like_factories_of_transposed_input_are_fresh():
    x = rtorch.arange(6.0).view(2, 3).t()
    z = rtorch.zeros_like(x)
    assert z.shape == (3, 2)
    assert not z._is_view_of(x)
    np.testing.assert_array_equal(z.numpy(), np.zeros((3, 2), np.float32))


@pytest.mark.parametrize(
    "factory",
    [rtorch.zeros, rtorch.ones, rtorch.empty, rtorch.rand, rtorch.randn],
)
def test_negative_dimension_raises_pytorch_runtime_error(factory):
    with pytest.raises(
        RuntimeError,
        match=re.escape("Trying to create tensor with negative dimension -1: [-1, 2]"),
    ):
        factory(-1, 2)


def test_full_negative_dimension_raises_pytorch_runtime_error():
    with pytest.raises(
        RuntimeError,
        match=re.escape("Trying to create tensor with negative dimension -3: [2, -3]"),
    ):
        rtorch.full((2, -3), 1.0)


def test_empty_too_large_raises_out_of_memory_quickly_and_process_goes_on():
    assert issubclass(rtorch.OutOfMemoryError, RuntimeError)
    start = time.perf_counter()
    with pytest.raises(rtorch.OutOfMemoryError, match="40000000000000 bytes"):
        rtorch.empty(10**13)
    assert time.perf_counter() - start < 1.0
    # The process is usable after the failed allocation.
    assert rtorch.ones(3).tolist() == [1.0, 1.0, 1.0]


def test_out_of_memory_error_is_caught_as_runtime_error():
    try:
        rtorch.zeros(10**7, 10**6)
    except RuntimeError as e:
        assert isinstance(e, rtorch.OutOfMemoryError)
    else:
        pytest.fail("allocating 40 TB did not raise")


# ------------------------------------------------------------------ arange


@pytest.mark.parametrize(
    "args,np_args",
    [
        ((5,), (5,)),
        ((2, 7), (2, 7)),
        ((0, 10, 3), (0, 10, 3)),
        ((10, 0, -3), (10, 0, -3)),
        ((-3, 3), (-3, 3)),
        ((5, 5), (5, 5)),
    ],
)
def test_arange_of_ints_is_int64_like_numpy(args, np_args):
    assert_tensor_equal(rtorch.arange(*args), np.arange(*np_args, dtype=np.int64), rtorch.int64)


@pytest.mark.parametrize(
    "args",
    [(5.0,), (0, 1, 0.25), (1, 2.5, 0.5), (0.5, 3), (0, 1, 0.1), (1.0, -1.0, -0.3), (0, 5, 1.5)],
)
def test_arange_with_any_float_is_float32_like_numpy(args):
    t = rtorch.arange(*args)
    expected = np.arange(*args, dtype=np.float64)
    assert t.dtype == rtorch.float32
    assert t.shape == expected.shape
    np.testing.assert_allclose(t.numpy(), expected.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_arange_float_step_length_is_ceil_of_range_over_step():
    assert rtorch.arange(0, 1, 0.3).shape == (4,)
    assert rtorch.arange(0, 0.9, 0.3).shape == (3,)
    assert rtorch.arange(1, 0, -0.25).shape == (4,)


def test_arange_dtype_argument():
    assert_tensor_equal(rtorch.arange(4, dtype=rtorch.float64), np.arange(4.0), rtorch.float64)
    assert_tensor_equal(
        rtorch.arange(0, 6, 2, dtype=rtorch.int32), np.array([0, 2, 4], np.int32), rtorch.int32
    )


def test_arange_float_follows_default_dtype(restore_default_dtype):
    rtorch.set_default_dtype(rtorch.float64)
    assert rtorch.arange(2.0).dtype == rtorch.float64
    assert rtorch.arange(2).dtype == rtorch.int64


def test_arange_zero_step_raises():
    with pytest.raises(RuntimeError, match=re.escape("step must be nonzero")):
        rtorch.arange(0, 5, 0)


def test_arange_step_sign_inconsistent_with_bounds_raises():
    with pytest.raises(
        RuntimeError, match=re.escape("upper bound and larger bound inconsistent with step sign")
    ):
        rtorch.arange(0, 10, -1)


def test_arange_requires_grad():
    t = rtorch.arange(3.0, requires_grad=True)
    assert t.requires_grad
    assert t.is_leaf


# ------------------------------------------------------- linspace / logspace


@pytest.mark.parametrize(
    "start,end,steps",
    [(0, 1, 5), (-2.5, 7.5, 11), (3, -3, 7), (0, 1, 1), (0, 1, 0), (1, 1, 4), (0, 10, 100)],
)
def test_linspace_matches_numpy(start, end, steps):
    t = rtorch.linspace(start, end, steps)
    assert t.dtype == rtorch.float32
    assert t.shape == (steps,)
    np.testing.assert_allclose(
        t.numpy(), np.linspace(start, end, steps, dtype=np.float32), rtol=1e-6, atol=1e-6
    )


def test_linspace_endpoints_are_exact():
    t = rtorch.linspace(-1.3, 2.7, 9, dtype=rtorch.float64)
    assert t[0].item() == -1.3
    assert t[-1].item() == 2.7


def test_linspace_with_int_dtype_truncates_like_pytorch():
    t = rtorch.linspace(0, 10, 5, dtype=rtorch.int64)
    assert_tensor_equal(t, np.array([0, 2, 5, 7, 10]), rtorch.int64)


def test_linspace_negative_steps_raises():
    with pytest.raises(RuntimeError, match=re.escape("number of steps must be non-negative")):
        rtorch.linspace(0, 1, -1)


def test_logspace_matches_numpy():
    np.testing.assert_allclose(
        rtorch.logspace(0, 2, 3).numpy(), np.array([1.0, 10.0, 100.0], np.float32), rtol=1e-6
    )
    np.testing.assert_allclose(
        rtorch.logspace(-1, 3, 5, base=2).numpy(),
        np.logspace(-1, 3, 5, base=2, dtype=np.float32),
        rtol=1e-6,
    )
    t = rtorch.logspace(0, 3, 4, dtype=rtorch.float64)
    assert t.dtype == rtorch.float64
    np.testing.assert_allclose(t.numpy(), [1.0, 10.0, 100.0, 1000.0], rtol=1e-12)


# --------------------------------------------------------------------- eye


@pytest.mark.parametrize("args", [(3,), (2, 4), (4, 2), (0,), (1, 1), (3, 0)])
def test_eye_matches_numpy(args):
    assert_tensor_equal(rtorch.eye(*args), np.eye(*args, dtype=np.float32), rtorch.float32)


def test_eye_dtype_argument():
    assert_tensor_equal(rtorch.eye(3, dtype=rtorch.int64), np.eye(3, dtype=np.int64), rtorch.int64)
    assert_tensor_equal(rtorch.eye(2, dtype=rtorch.bool), np.eye(2, dtype=bool), rtorch.bool)


def test_eye_negative_size_raises():
    with pytest.raises(RuntimeError, match=re.escape("n must be greater or equal to 0, got -1")):
        rtorch.eye(-1)
    with pytest.raises(RuntimeError, match=re.escape("m must be greater or equal to 0, got -2")):
        rtorch.eye(2, -2)


# ------------------------------------------------------------------ random


def test_rand_shape_dtype_and_range(restore_rng):
    rtorch.manual_seed(0)
    t = rtorch.rand(100, 50)
    assert t.shape == (100, 50)
    assert t.dtype == rtorch.float32
    a = t.numpy()
    assert a.min() >= 0.0
    assert a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.01


def test_rand_float64_values_in_unit_interval_and_not_all_equal(restore_rng):
    rtorch.manual_seed(1)
    a = rtorch.rand(1000, dtype=rtorch.float64).numpy()
    assert a.dtype == np.float64
    assert ((a >= 0) & (a < 1)).all()
    assert len(np.unique(a)) == 1000


def test_randn_mean_and_std_of_100k_samples(restore_rng):
    rtorch.manual_seed(1234)
    a = rtorch.randn(100_000).numpy().astype(np.float64)
    assert abs(a.mean()) < 0.02
    assert abs(a.std() - 1.0) < 0.02
    # About 68.3% of a standard normal lies within one std of the mean.
    assert abs((np.abs(a) < 1).mean() - 0.6827) < 0.01


def test_randn_shape_varargs_and_tuple(restore_rng):
    assert rtorch.randn(2, 3).shape == (2, 3)
    assert rtorch.randn((4,)).shape == (4,)
    assert rtorch.randn(()).shape == ()
    assert rtorch.randn(2, dtype=rtorch.float64).dtype == rtorch.float64


def test_random_factories_requires_grad(restore_rng):
    assert rtorch.rand(2, requires_grad=True).requires_grad
    assert rtorch.randn(2, requires_grad=True).is_leaf


def test_manual_seed_reproduces_the_same_stream(restore_rng):
    rtorch.manual_seed(7)
    a = rtorch.randn(10).numpy().copy()
    b = rtorch.rand(3).numpy().copy()
    rtorch.manual_seed(7)
    np.testing.assert_array_equal(rtorch.randn(10).numpy(), a)
    np.testing.assert_array_equal(rtorch.rand(3).numpy(), b)
    rtorch.manual_seed(8)
    assert not np.array_equal(rtorch.randn(10).numpy(), a)


def test_initial_seed_reports_manual_seed(restore_rng):
    rtorch.manual_seed(42)
    assert rtorch.initial_seed() == 42


def test_global_rng_state_round_trip(restore_rng):
    rtorch.manual_seed(3)
    rtorch.rand(5)
    state = rtorch.get_rng_state()
    assert state.dtype == rtorch.uint8
    a = rtorch.rand(8).numpy().copy()
    rtorch.set_rng_state(state)
    np.testing.assert_array_equal(rtorch.rand(8).numpy(), a)


def test_generator_objects_are_independent_and_reproducible(restore_rng):
    g1 = rtorch.Generator()
    g2 = rtorch.Generator()
    assert g1.manual_seed(5) is g1
    g2.manual_seed(5)
    a = rtorch.randn(20, generator=g1)
    rtorch.randn(100)  # the global stream does not disturb g2
    b = rtorch.randn(20, generator=g2)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert g1.initial_seed() == 5


def test_generator_state_round_trip():
    g = rtorch.Generator().manual_seed(11)
    rtorch.rand(3, generator=g)
    state = g.get_state()
    assert isinstance(state, rtorch.Tensor)
    assert state.dtype == rtorch.uint8
    a = rtorch.rand(6, generator=g).numpy().copy()
    g.set_state(state)
    np.testing.assert_array_equal(rtorch.rand(6, generator=g).numpy(), a)


def test_generator_device_is_cpu():
    assert rtorch.Generator().device == rtorch.device("cpu")


def test_randint_range_shape_and_dtype(restore_rng):
    rtorch.manual_seed(0)
    t = rtorch.randint(3, 10, (1000,))
    assert t.dtype == rtorch.int64
    assert t.shape == (1000,)
    a = t.numpy()
    assert a.min() == 3
    assert a.max() == 9
    assert set(np.unique(a)) == set(range(3, 10))


def test_randint_with_only_high(restore_rng):
    a = rtorch.randint(4, (2, 500)).numpy()
    assert a.shape == (2, 500)
    assert set(np.unique(a)) == {0, 1, 2, 3}


def test_randint_dtype_argument(restore_rng):
    t = rtorch.randint(0, 5, (10,), dtype=rtorch.int32)
    assert t.dtype == rtorch.int32
    assert ((t.numpy() >= 0) & (t.numpy() < 5)).all()
    f = rtorch.randint(0, 5, (10,), dtype=rtorch.float32)
    assert f.dtype == rtorch.float32
    assert (f.numpy() == np.floor(f.numpy())).all()


def test_randint_with_generator_is_reproducible():
    g = rtorch.Generator().manual_seed(9)
    a = rtorch.randint(0, 100, (50,), generator=g).numpy().copy()
    g.manual_seed(9)
    np.testing.assert_array_equal(rtorch.randint(0, 100, (50,), generator=g).numpy(), a)


def test_randint_empty_range_raises():
    with pytest.raises(
        RuntimeError,
        match=re.escape("random_ expects 'from' to be less than 'to', but got from=5 >= to=5"),
    ):
        rtorch.randint(5, 5, (3,))


@pytest.mark.parametrize("n", [0, 1, 10, 1000])
def test_randperm_is_int64_permutation(n, restore_rng):
    t = rtorch.randperm(n)
    assert t.dtype == rtorch.int64
    assert t.shape == (n,)
    np.testing.assert_array_equal(np.sort(t.numpy()), np.arange(n))


def test_randperm_shuffles_and_reproduces(restore_rng):
    rtorch.manual_seed(0)
    a = rtorch.randperm(100).numpy().copy()
    assert not np.array_equal(a, np.arange(100))
    rtorch.manual_seed(0)
    np.testing.assert_array_equal(rtorch.randperm(100).numpy(), a)


def test_randperm_dtype_argument(restore_rng):
    t = rtorch.randperm(5, dtype=rtorch.float32)
    assert t.dtype == rtorch.float32
    np.testing.assert_array_equal(np.sort(t.numpy()), np.arange(5, dtype=np.float32))


def test_normal_with_float_mean_std_and_size(restore_rng):
    rtorch.manual_seed(0)
    t = rtorch.normal(2.0, 3.0, size=(100_000,))
    assert t.dtype == rtorch.float32
    assert t.shape == (100_000,)
    a = t.numpy().astype(np.float64)
    assert abs(a.mean() - 2.0) < 0.05
    assert abs(a.std() - 3.0) < 0.05


def test_normal_with_tensor_mean_and_std_broadcasts_per_element(restore_rng):
    rtorch.manual_seed(0)
    mean = rtorch.tensor([0.0, 100.0, -100.0])
    std = rtorch.tensor([1e-3, 1e-3, 1e-3])
    t = rtorch.normal(mean, std)
    assert t.shape == (3,)
    np.testing.assert_allclose(t.numpy(), [0.0, 100.0, -100.0], atol=0.01)


def test_normal_with_tensor_mean_and_float_std(restore_rng):
    mean = rtorch.full((2, 1000), 5.0)
    a = rtorch.normal(mean, 0.5).numpy()
    assert a.shape == (2, 1000)
    assert abs(a.mean() - 5.0) < 0.05
    assert abs(a.std() - 0.5) < 0.05


def test_bernoulli_of_probabilities_gives_zeros_and_ones(restore_rng):
    rtorch.manual_seed(0)
    p = rtorch.full((100_000,), 0.3)
    t = rtorch.bernoulli(p)
    assert t.dtype == rtorch.float32
    assert t.shape == p.shape
    a = t.numpy()
    assert set(np.unique(a)) == {0.0, 1.0}
    assert abs(a.mean() - 0.3) < 0.01


def test_bernoulli_of_zero_and_one_is_deterministic():
    p = rtorch.tensor([0.0, 1.0, 0.0, 1.0], dtype=rtorch.float64)
    t = rtorch.bernoulli(p)
    assert t.dtype == rtorch.float64
    assert t.tolist() == [0.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize("dtype", [rtorch.float32, rtorch.float64, rtorch.int64, rtorch.bool])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
def test_bernoulli_in_place_is_uniform_below_p(restore_rng, dtype, p):
    # Element i keeps the draw of rand's element i: 1 exactly where the
    # float32 uniform falls below p, whether the tensor is filled in place
    # (contiguous) or through a copy (a strided view).
    n = 1003
    rtorch.manual_seed(7)
    u = rtorch.rand(n).numpy().astype(np.float64)
    rtorch.manual_seed(7)
    t = rtorch.empty(n, dtype=dtype)
    v = t._version
    assert t.bernoulli_(p) is t
    assert t._version > v
    expect = (u < p).astype(np.float64)
    np.testing.assert_array_equal(t.numpy().astype(np.float64), expect)
    rtorch.manual_seed(7)
    strided = rtorch.zeros(n, 2, dtype=dtype)[:, 0]
    strided.bernoulli_(p)
    np.testing.assert_array_equal(strided.numpy().astype(np.float64), expect)


def test_uniform_in_place_range_and_returns_self(restore_rng):
    t = rtorch.empty(10_000)
    v = t._version
    out = t.uniform_(-2.0, 3.0)
    assert out is t
    assert t._version > v
    a = t.numpy()
    assert a.min() >= -2.0
    assert a.max() < 3.0
    assert abs(a.mean() - 0.5) < 0.05


def test_uniform_in_place_defaults_to_unit_interval(restore_rng):
    a = rtorch.empty(1000).uniform_().numpy()
    assert a.min() >= 0.0
    assert a.max() < 1.0


def test_normal_in_place_mean_and_std(restore_rng):
    rtorch.manual_seed(0)
    t = rtorch.empty(100_000, dtype=rtorch.float64)
    assert t.normal_(mean=-1.0, std=2.0) is t
    a = t.numpy()
    assert abs(a.mean() + 1.0) < 0.05
    assert abs(a.std() - 2.0) < 0.05


def test_random_in_place_with_range(restore_rng):
    t = rtorch.empty(5000, dtype=rtorch.int64)
    assert t.random_(2, 6) is t
    assert set(np.unique(t.numpy())) == {2, 3, 4, 5}


def test_random_in_place_with_only_to(restore_rng):
    t = rtorch.zeros(5000)
    t.random_(4)
    assert set(np.unique(t.numpy())) == {0.0, 1.0, 2.0, 3.0}


def test_random_in_place_without_bounds_on_float32_stays_within_mantissa(restore_rng):
    a = rtorch.zeros(1000).random_().numpy()
    assert a.min() >= 0
    assert a.max() <= 2**24
    assert (a == np.floor(a)).all()


def test_in_place_random_writes_through_view(restore_rng):
    base = rtorch.zeros(4, 4)
    base[1:3, 1:3].uniform_(5.0, 6.0)
    a = base.numpy()
    assert ((a[1:3, 1:3] >= 5.0) & (a[1:3, 1:3] < 6.0)).all()
    mask = np.ones((4, 4), bool)
    mask[1:3, 1:3] = False
    assert (a[mask] == 0).all()


def test_in_place_random_with_generator_reproduces():
    g = rtorch.Generator().manual_seed(2)
    a = rtorch.empty(10).normal_(generator=g).numpy().copy()
    g.manual_seed(2)
    np.testing.assert_array_equal(rtorch.empty(10).normal_(generator=g).numpy(), a)


# -------------------------------------------------------------- default dtype


def test_default_dtype_is_float32():
    assert rtorch.get_default_dtype() == rtorch.float32


def test_set_default_dtype_changes_float_factories(restore_default_dtype):
    rtorch.set_default_dtype(rtorch.float64)
    assert rtorch.get_default_dtype() == rtorch.float64
    for t in (
        rtorch.zeros(2),
        rtorch.ones(2),
        rtorch.empty(2),
        rtorch.rand(2),
        rtorch.randn(2),
        rtorch.linspace(0, 1, 3),
        rtorch.eye(2),
        rtorch.arange(0.0, 1.0, 0.5),
    ):
        assert t.dtype == rtorch.float64


def test_set_default_dtype_rejects_integer_dtype(restore_default_dtype):
    with pytest.raises(
        TypeError, match=re.escape("only floating-point types are supported as the default type")
    ):
        rtorch.set_default_dtype(rtorch.int64)
    assert rtorch.get_default_dtype() == rtorch.float32
