"""dtype and device objects, promotion tables, numeric limits."""

import pickle

import numpy as np
import pytest

import rtorch

ALL = [
    rtorch.float32,
    rtorch.float64,
    rtorch.float16,
    rtorch.bfloat16,
    rtorch.int64,
    rtorch.int32,
    rtorch.int16,
    rtorch.int8,
    rtorch.uint8,
    rtorch.bool,
]


def test_dtype_aliases_are_the_same_objects():
    assert rtorch.float is rtorch.float32
    assert rtorch.double is rtorch.float64
    assert rtorch.half is rtorch.float16
    assert rtorch.long is rtorch.int64
    assert rtorch.int is rtorch.int32
    assert rtorch.short is rtorch.int16


@pytest.mark.parametrize("dtype", ALL)
def test_dtype_repr_and_pickle(dtype):
    name = repr(dtype)
    assert name.startswith("torch.")
    assert getattr(rtorch, name.split(".")[1]) is dtype
    assert pickle.loads(pickle.dumps(dtype)) is dtype


def test_dtype_properties():
    assert rtorch.float16.is_floating_point and not rtorch.int8.is_floating_point
    assert rtorch.int8.is_signed and not rtorch.uint8.is_signed
    assert [d.itemsize for d in ALL] == [4, 8, 2, 2, 8, 4, 2, 1, 1, 1]


@pytest.mark.parametrize(
    "a,b,expected",
    [
        (rtorch.uint8, rtorch.int8, rtorch.int16),
        (rtorch.uint8, rtorch.int32, rtorch.int32),
        (rtorch.float16, rtorch.bfloat16, rtorch.float32),
        (rtorch.int64, rtorch.float16, rtorch.float16),
        (rtorch.bool, rtorch.uint8, rtorch.uint8),
        (rtorch.int16, rtorch.int32, rtorch.int32),
        (rtorch.float32, rtorch.float64, rtorch.float64),
        (rtorch.bool, rtorch.bool, rtorch.bool),
    ],
)
def test_promote_types_table(a, b, expected):
    assert rtorch.promote_types(a, b) is expected
    assert rtorch.promote_types(b, a) is expected


def test_can_cast_follows_categories():
    assert rtorch.can_cast(rtorch.int64, rtorch.float32)
    assert not rtorch.can_cast(rtorch.float32, rtorch.int64)
    assert not rtorch.can_cast(rtorch.int32, rtorch.bool)
    assert rtorch.can_cast(rtorch.bool, rtorch.uint8)


def test_default_dtype_controls_float_inference():
    try:
        rtorch.set_default_dtype(rtorch.float64)
        assert rtorch.get_default_dtype() is rtorch.float64
        assert rtorch.tensor([1.5]).dtype is rtorch.float64
        assert rtorch.zeros(2).dtype is rtorch.float64
        assert rtorch.arange(0.0, 1.0, 0.5).dtype is rtorch.float64
    finally:
        rtorch.set_default_dtype(rtorch.float32)
    assert rtorch.tensor([1.5]).dtype is rtorch.float32
    with pytest.raises(
        TypeError, match="only floating-point types are supported as the default type"
    ):
        rtorch.set_default_dtype(rtorch.int64)


def test_python_types_accepted_as_dtype():
    assert rtorch.zeros(1, dtype=float).dtype is rtorch.float32
    assert rtorch.zeros(1, dtype=int).dtype is rtorch.int64
    assert rtorch.zeros(1, dtype=bool).dtype is rtorch.bool
    with pytest.raises(TypeError, match="dtype must be rtorch.dtype"):
        rtorch.zeros(1, dtype="float32")


@pytest.mark.parametrize(
    "dtype,np_type",
    [(rtorch.float16, np.float16), (rtorch.float32, np.float32), (rtorch.float64, np.float64)],
)
def test_finfo_matches_numpy(dtype, np_type):
    fi, ni = rtorch.finfo(dtype), np.finfo(np_type)
    assert (fi.bits, fi.eps, fi.max, fi.min, fi.tiny) == (ni.bits, ni.eps, ni.max, ni.min, ni.tiny)


def test_finfo_bfloat16_and_errors():
    fi = rtorch.finfo(rtorch.bfloat16)
    assert fi.bits == 16 and fi.eps == 0.0078125
    assert rtorch.finfo().bits == 32
    with pytest.raises(TypeError, match="requires a floating point input type"):
        rtorch.finfo(rtorch.int32)


def test_iinfo():
    assert (rtorch.iinfo(rtorch.int8).min, rtorch.iinfo(rtorch.int8).max) == (-128, 127)
    assert rtorch.iinfo(rtorch.uint8).max == 255
    assert rtorch.iinfo(rtorch.int64).max == 2**63 - 1
    with pytest.raises(TypeError, match="is not supported by torch.iinfo"):
        rtorch.iinfo(rtorch.float32)


def test_device_parsing_and_printing():
    assert repr(rtorch.device("cpu")) == "device(type='cpu')"
    d = rtorch.device("cuda:1")
    assert (d.type, d.index, str(d)) == ("cuda", 1, "cuda:1")
    assert repr(rtorch.device("cuda", 0)) == "device(type='cuda', index=0)"
    assert rtorch.device("cpu") == rtorch.device("cpu")
    assert rtorch.device("cpu") != rtorch.device("cuda")
    assert hash(rtorch.device("cuda:0")) == hash(rtorch.device("cuda", 0))
    assert pickle.loads(pickle.dumps(d)) == d
    assert rtorch.zeros(1).device == rtorch.device("cpu")


def test_device_errors():
    with pytest.raises(
        RuntimeError, match="Expected one of cpu, cuda device type at start of device string: gpu"
    ):
        rtorch.device("gpu")
    with pytest.raises(RuntimeError, match="Invalid device string"):
        rtorch.device("cuda:x")
    with pytest.raises(RuntimeError, match="must not include an index"):
        rtorch.device("cuda:0", 1)


def test_size_behaves_like_torch_size():
    s = rtorch.zeros(2, 3, 4).shape
    assert isinstance(s, tuple) and isinstance(s, rtorch.Size)
    assert repr(s) == "torch.Size([2, 3, 4])"
    assert s.numel() == 24
    assert s[1:] == (3, 4) and isinstance(s[1:], rtorch.Size)
    assert s == (2, 3, 4)
    assert pickle.loads(pickle.dumps(s)) == s
    assert repr(rtorch.zeros(()).shape) == "torch.Size([])"


def test_broadcast_shapes():
    assert rtorch.broadcast_shapes((2, 1), (3,)) == (2, 3)
    assert rtorch.broadcast_shapes(5, (1, 1)) == (1, 5)
    with pytest.raises(RuntimeError, match="Shape mismatch"):
        rtorch.broadcast_shapes((2,), (3,))


def test_result_type_follows_weak_scalar_rules():
    i32 = rtorch.tensor([1], dtype=rtorch.int32)
    assert rtorch.result_type(i32, 2) is rtorch.int32
    assert rtorch.result_type(i32, 2.5) is rtorch.float32
    assert rtorch.result_type(i32, rtorch.tensor(1.5, dtype=rtorch.float64)) is rtorch.float64
    assert rtorch.result_type(rtorch.tensor([1.0], dtype=rtorch.float16), 3.0) is rtorch.float16
    assert rtorch.result_type(2, 3) is rtorch.int64
    assert rtorch.result_type(True, 1.5) is rtorch.float32
    with pytest.raises(TypeError, match="must be Tensor or Number"):
        rtorch.result_type(i32, "x")
