"""NumPy, DLPack and Python conversions, and dtype casts."""

import re

import numpy as np
import pytest

import rtorch


def test_numpy_shares_memory_both_ways():
    t = rtorch.zeros(2, 3)
    a = t.numpy()
    a[1, 2] = 7.0
    assert t[1, 2].item() == 7.0
    t[0, 0] = -1.0
    assert a[0, 0] == -1.0


def test_numpy_of_transposed_view_keeps_strides():
    t = rtorch.arange(6, dtype=rtorch.float64).view(2, 3).t()
    a = t.numpy()
    np.testing.assert_array_equal(a, np.arange(6.0).reshape(2, 3).T)
    assert a.strides == (8, 24)


def test_numpy_keeps_tensor_alive_after_del():
    t = rtorch.arange(5)
    a = t.numpy()
    del t
    np.testing.assert_array_equal(a, np.arange(5))


@pytest.mark.parametrize(
    "dtype,np_dtype",
    [
        (rtorch.float32, np.float32),
        (rtorch.float64, np.float64),
        (rtorch.float16, np.float16),
        (rtorch.int64, np.int64),
        (rtorch.int32, np.int32),
        (rtorch.int16, np.int16),
        (rtorch.int8, np.int8),
        (rtorch.uint8, np.uint8),
        (rtorch.bool, np.bool_),
    ],
)
def test_numpy_dtype_round_trip(dtype, np_dtype):
    src = np.array([0, 1, 1, 0], dtype=np_dtype)
    t = rtorch.from_numpy(src)
    assert t.dtype == dtype
    back = t.numpy()
    assert back.dtype == np_dtype
    np.testing.assert_array_equal(back, src)


def test_numpy_refuses_tensor_requiring_grad():
    t = rtorch.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=re.escape("Use tensor.detach().numpy() instead.")):
        t.numpy()
    np.testing.assert_array_equal(t.numpy(force=True), np.zeros(2, dtype=np.float32))


def test_bfloat16_numpy_is_refused():
    with pytest.raises(TypeError, match="Got unsupported ScalarType BFloat16"):
        rtorch.zeros(2, dtype=rtorch.bfloat16).numpy()


def test_array_protocol_for_np_asarray():
    t = rtorch.tensor([[1, 2], [3, 4]], dtype=rtorch.int32)
    a = np.asarray(t)
    assert a.dtype == np.int32
    np.testing.assert_array_equal(a, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(np.asarray(t, dtype=np.float64), [[1.0, 2.0], [3.0, 4.0]])


def test_dlpack_to_numpy_shares_memory():
    t = rtorch.arange(12, dtype=rtorch.float32).view(3, 4)[:, 1:3]
    a = np.from_dlpack(t)
    np.testing.assert_array_equal(a, np.arange(12, dtype=np.float32).reshape(3, 4)[:, 1:3])
    t[0, 0] = 100.0
    assert a[0, 0] == 100.0


def test_dlpack_from_numpy_shares_memory():
    a = np.arange(10, dtype=np.int64)[::2]
    t = rtorch.from_dlpack(a)
    assert t.tolist() == [0, 2, 4, 6, 8]
    assert t.stride() == (2,)
    a[1] = -5
    assert t[1].item() == -5


def test_dlpack_device_is_cpu():
    assert rtorch.zeros(1).__dlpack_device__() == (1, 0)


def test_dlpack_capsule_consumed_once():
    cap = rtorch.ones(3).__dlpack__()
    t = rtorch.from_dlpack(cap)
    assert t.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(TypeError, match="dltensor"):
        rtorch.from_dlpack(cap)


def test_dlpack_export_refuses_requires_grad():
    with pytest.raises(RuntimeError, match="require gradient"):
        rtorch.zeros(2, requires_grad=True).__dlpack__()


def test_tolist_nested_and_scalar():
    assert rtorch.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert rtorch.tensor(2.5).tolist() == 2.5
    assert rtorch.tensor([True, False]).tolist() == [True, False]
    assert rtorch.zeros(2, 0).tolist() == [[], []]


def test_item_requires_one_element():
    assert rtorch.tensor([[7]]).item() == 7
    with pytest.raises(
        RuntimeError, match="a Tensor with 2 elements cannot be converted to a Python scalar"
    ):
        rtorch.tensor([1, 2]).item()


def test_python_number_protocols():
    assert float(rtorch.tensor(2)) == 2.0
    assert int(rtorch.tensor(2.9)) == 2
    assert bool(rtorch.tensor([1.0])) is True
    assert [10, 20, 30][rtorch.tensor(2)] == 30
    assert len(rtorch.zeros(4, 2)) == 4
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(rtorch.tensor(1.0))
    with pytest.raises(
        RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"
    ):
        bool(rtorch.zeros(2))
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        [1, 2][rtorch.tensor(1.0)]


def test_iteration_yields_rows():
    rows = list(rtorch.arange(6).view(3, 2))
    assert [r.tolist() for r in rows] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(rtorch.tensor(1))


@pytest.mark.parametrize(
    "method,dtype",
    [
        ("float", rtorch.float32),
        ("double", rtorch.float64),
        ("half", rtorch.float16),
        ("bfloat16", rtorch.bfloat16),
        ("long", rtorch.int64),
        ("int", rtorch.int32),
        ("short", rtorch.int16),
        ("char", rtorch.int8),
        ("byte", rtorch.uint8),
        ("bool", rtorch.bool),
    ],
)
def test_cast_methods(method, dtype):
    t = getattr(rtorch.tensor([0.0, 1.5, -2.0]), method)()
    assert t.dtype == dtype
    expected = np.array([0.0, 1.5, -2.0]).astype(np.float64)
    if not dtype.is_floating_point:
        expected = np.trunc(expected)
    if dtype == rtorch.bool:
        assert t.tolist() == [False, True, True]
    elif dtype == rtorch.uint8:
        assert t.tolist() == [0, 1, 254]
    else:
        assert t.tolist() == expected.tolist()


def test_to_returns_self_when_nothing_changes():
    t = rtorch.zeros(2)
    assert t.to(rtorch.float32) is t
    assert t.to("cpu") is t
    assert t.to(rtorch.float32, copy=True) is not t
    assert t.to(rtorch.zeros(1, dtype=rtorch.int64)).dtype == rtorch.int64
    assert t.to("cpu", rtorch.float64).dtype == rtorch.float64
    assert t.to(dtype=rtorch.int8).dtype == rtorch.int8


def test_type_names():
    assert rtorch.zeros(1).type() == "torch.FloatTensor"
    assert rtorch.zeros(1, dtype=rtorch.int64).type() == "torch.LongTensor"
    assert rtorch.zeros(1).type(rtorch.float64).dtype == rtorch.float64
    assert rtorch.zeros(1).type("torch.IntTensor").dtype == rtorch.int32


def test_float_to_int_cast_truncates_toward_zero():
    t = rtorch.tensor([-1.7, -0.2, 0.2, 1.7]).long()
    assert t.tolist() == [-1, 0, 0, 1]


def test_cuda_requests_raise_runtime_error():
    assert rtorch.cuda.is_available() is False
    assert rtorch.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match="CUDA"):
        rtorch.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="CUDA"):
        rtorch.zeros(2).to("cuda:0")
    with pytest.raises(RuntimeError, match="CUDA"):
        rtorch.zeros(2).cuda()


def test_half_casts_round_to_nearest_even_through_float32():
    # Just above a bfloat16/float16 midpoint rounds up (the low mantissa bits
    # count); doubles go through float32 first, as c10's half types take them.
    above = np.float32(0.7988282)  # bf16 midpoint is 0.798828125
    for src in (rtorch.float32, rtorch.float64):
        t = rtorch.tensor([float(above)], dtype=src)
        assert t.to(rtorch.bfloat16).item() == 0.80078125
    x = np.random.default_rng(7).standard_normal(10_000).astype(np.float32)
    np.testing.assert_array_equal(
        rtorch.from_numpy(x).to(rtorch.float16).numpy(), x.astype(np.float16)
    )
