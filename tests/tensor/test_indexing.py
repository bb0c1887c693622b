"""``__getitem__`` and ``__setitem__`` against NumPy, with PyTorch's errors,
plus ``copy_``/``fill_``/``zero_`` and writes through views."""

import re
import warnings

import numpy as np
import pytest

import rtorch


class _Key:
    """``K[...]`` returns the index expression itself."""

    def __getitem__(self, key):
        return key


K = _Key()


def to_rtorch(key):
    """The index expression with each NumPy array replaced by a tensor."""
    if isinstance(key, tuple):
        return tuple(to_rtorch(k) for k in key)
    if isinstance(key, np.ndarray):
        return rtorch.from_numpy(key.copy())
    return key


def make(*shape):
    n = int(np.prod(shape))
    return rtorch.arange(n).view(*shape), np.arange(n).reshape(shape)


def assert_equal(t, expected):
    expected = np.asarray(expected)
    assert tuple(t.shape) == expected.shape
    np.testing.assert_array_equal(t.numpy(), expected)


BASIC_KEYS = [
    K[1],
    K[-1],
    K[0, 2],
    K[-1, -2, -3],
    K[2, 3, 4],
    K[:],
    K[1:],
    K[:-1],
    K[::2],
    K[1:100],
    K[-100:2],
    K[5:],
    K[2:1],
    K[:, 1:4:2],
    K[::2, :, 4:0:1],
    K[:, ::3, 1::2],
    K[..., 1],
    K[1, ...],
    K[...],
    K[1, ..., 2],
    K[..., None],
    K[None],
    K[None, 1, None, :],
    K[:, None, ..., None],
    K[None, None, None],
    K[True],
    K[False],
    K[1, True],
    K[:, False, 2],
    K[..., True, :],
    K[()],
]


@pytest.mark.parametrize("key", BASIC_KEYS, ids=repr)
def test_basic_index_matches_numpy_and_is_a_view(key):
    x, a = make(3, 4, 5)
    r = x[key]
    expected = a[key]
    assert_equal(r, expected)
    # A bool scalar index goes through advanced indexing in PyTorch (a copy).
    has_bool = any(isinstance(k, bool) for k in (key if isinstance(key, tuple) else (key,)))
    if not has_bool:
        assert r._is_view_of(x)


@pytest.mark.parametrize(
    "key",
    [K[1], K[1:], K[::2], K[:, 1:4:2], K[..., 1], K[1, :, ::2], K[:, 2], K[2, 3, 1:]],
    ids=repr,
)
def test_basic_index_strides_and_offset_match_numpy(key):
    x, a = make(3, 4, 5)
    r = x[key]
    expected = a[key]
    assert r.stride() == tuple(s // a.itemsize for s in expected.strides)
    offset = (expected.__array_interface__["data"][0] - a.__array_interface__["data"][0]) // 8
    assert r.storage_offset() == offset


def test_integer_index_of_1d_gives_zero_dim_view():
    x, _ = make(4)
    r = x[2]
    assert r.shape == ()
    assert r.item() == 2
    assert r.storage_offset() == 2
    assert r._is_view_of(x)


def test_slice_stride_and_offset_are_pytorch_values():
    x, _ = make(3, 4, 5)
    r = x[1:, ::2, 3:]
    assert r.shape == (2, 2, 2)
    assert r.stride() == (20, 10, 1)
    assert r.storage_offset() == 23


def test_newaxis_has_pytorch_stride():
    # PyTorch gives an inserted dim the stride it would have if contiguous there.
    x, _ = make(3, 4)
    assert x[None].stride() == (12, 4, 1)
    assert x[:, None].stride() == (4, 4, 1)
    assert x[..., None].stride() == (4, 1, 1)


def test_zero_dim_integer_tensor_indexes_like_an_int():
    x, a = make(3, 4)
    assert_equal(x[rtorch.tensor(1)], a[1])
    assert_equal(x[rtorch.tensor(-1), rtorch.tensor(2)], a[-1, 2])


ADVANCED_KEYS = [
    K[np.array([0, 2])],
    K[np.array([-1, 0, -1])],
    K[np.array([[0, 1], [2, 0]])],
    K[np.array([], dtype=np.int64)],
    K[:, np.array([3, 0])],
    K[..., np.array([4, 4, 1])],
    K[np.array([0, 2]), np.array([1, 3])],
    K[np.array([0, 2]), :, np.array([1, 3])],
    K[:, np.array([0, 1]), np.array([4, 2])],
    K[np.array([[0], [1]]), np.array([0, 1, 2])],
    K[np.array([[0], [2]]), :, np.array([[1, 2, 3]])],
    K[1:, np.array([0, 3])],
    K[None, np.array([0, 1]), ::2],
    K[np.array([0, 1]), None, np.array([1, 2])],
    K[np.array([2, 0]), ..., np.array([1, 4])],
    K[np.array([0, 1, 2]), np.array([1]), np.array([0, 1, 4])],
    K[np.array([True, False, True])],
    K[:, np.array([False, True, True, False])],
    K[np.array([[True, False, True, False]] * 3)],
    K[np.array([[[True, False, True, False, False]] * 4] * 3)],
    K[np.zeros((3, 4), dtype=bool)],
    K[np.array([True, False, True]), 1:3],
    K[np.array([True, False, True]), :, np.array([0, 4])],
    K[np.array([[True, False, True, False]] * 3), np.array([0, 1, 2, 3, 4, 0])],
]


@pytest.mark.parametrize("key", ADVANCED_KEYS, ids=repr)
def test_advanced_index_with_tensors_matches_numpy_and_copies(key):
    x, a = make(3, 4, 5)
    r = x[to_rtorch(key)]
    expected = a[key]
    assert_equal(r, expected)
    assert r.dtype == rtorch.int64
    if r.numel() > 0:
        assert not r._is_view_of(x)


@pytest.mark.parametrize(
    "key",
    [
        K[[0, 2]],
        K[[-1, 0, -1]],
        K[[[0, 1], [2, 0]]],
        K[:, [3, 0]],
        K[[0, 2], [1, 3]],
        K[[0, 2], :, [1, 3]],
        K[:, [0, 1], [4, 2]],
        K[[True, False, True]],
        K[[True, False, True], 1:3],
    ],
    ids=repr,
)
def test_advanced_index_with_lists_matches_numpy(key):
    x, a = make(3, 4, 5)
    np_key = (
        tuple(np.array(k) if isinstance(k, list) else k for k in key)
        if isinstance(key, tuple)
        else np.array(key)
    )
    assert_equal(x[key], a[np_key])


def test_int_and_list_separated_by_slice_follow_pytorch_not_numpy():
    # PyTorch applies integers as select() before advanced indexing, so the
    # index dim stays in place; NumPy would move it to the front, giving (2, 4).
    x, a = make(3, 4, 5)
    r = x[1, :, [0, 2]]
    assert r.shape == (4, 2)
    np.testing.assert_array_equal(r.numpy(), a[1][:, [0, 2]])


def test_index_tensor_of_int32_and_uint8_dtypes():
    x, a = make(3, 4)
    assert_equal(x[rtorch.tensor([2, 0], dtype=rtorch.int32)], a[[2, 0]])
    # A uint8 tensor index is a mask, as in PyTorch.
    mask = rtorch.tensor([1, 0, 1], dtype=rtorch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_equal(x[mask], a[[True, False, True]])


def test_boolean_mask_from_tensor_comparison_style_selection():
    x, a = make(3, 4)
    mask = rtorch.from_numpy(a % 3 == 0)
    r = x[mask]
    assert_equal(r, a[a % 3 == 0])


def test_advanced_index_on_float_tensor_keeps_dtype():
    x = rtorch.arange(6.0).view(2, 3)
    r = x[[1, 0], [2, 2]]
    assert r.dtype == rtorch.float32
    assert r.tolist() == [5.0, 2.0]


# ----------------------------------------------------------- index errors


def test_int_out_of_range_raises_pytorch_index_error():
    x, _ = make(3, 4)
    with pytest.raises(
        IndexError, match=re.escape("index 5 is out of bounds for dimension 0 with size 3")
    ):
        x[5]
    with pytest.raises(
        IndexError, match=re.escape("index -4 is out of bounds for dimension 0 with size 3")
    ):
        x[-4]


def test_int_out_of_range_in_second_dim_names_that_dim():
    x, _ = make(3, 4)
    with pytest.raises(
        IndexError, match=re.escape("index 7 is out of bounds for dimension 1 with size 4")
    ):
        x[0, 7]


def test_index_tensor_out_of_range_raises_index_error():
    x, _ = make(3, 4)
    with pytest.raises(
        IndexError, match=re.escape("index 5 is out of bounds for dimension 0 with size 3")
    ):
        x[[0, 5]]
    with pytest.raises(IndexError, match=re.escape("index -4 is out of bounds for dimension")):
        x[rtorch.tensor([-4])]
    with pytest.raises(IndexError, match=re.escape("index 9 is out of bounds for dimension")):
        x[:, [0, 9]]


def test_indexing_zero_dim_tensor_with_int_raises():
    with pytest.raises(
        IndexError, match=re.escape("invalid index of a 0-dim tensor. Use `tensor.item()`")
    ):
        rtorch.tensor(3)[0]


def test_too_many_indices_raises_index_error():
    x, _ = make(3, 4, 5)
    with pytest.raises(IndexError, match=re.escape("too many indices for tensor of dimension 3")):
        x[0, 0, 0, 0]
    with pytest.raises(IndexError, match=re.escape("too many indices for tensor of dimension 3")):
        x[:, :, :, :]


def test_negative_slice_step_raises_value_error():
    x, _ = make(3, 4)
    with pytest.raises(ValueError, match=re.escape("step must be greater than zero")):
        x[::-1]
    with pytest.raises(ValueError, match=re.escape("step must be greater than zero")):
        x[:, 3:0:-2]


def test_zero_slice_step_raises_value_error():
    # PyTorch sets "slice step cannot be zero" and then its slice check raises
    # "step must be greater than zero"; which text wins depends on the version.
    x, _ = make(3, 4)
    with pytest.raises(
        ValueError, match="step must be greater than zero|slice step cannot be zero"
    ):
        x[::0]


def test_float_index_raises_index_error():
    x, _ = make(3, 4)
    with pytest.raises(
        IndexError,
        match=re.escape(
            "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
            "valid indices (got float)"
        ),
    ):
        x[1.0]


def test_float_tensor_index_raises_index_error():
    x, _ = make(3, 4)
    with pytest.raises(
        IndexError,
        match=re.escape("tensors used as indices must be long, int, byte or bool tensors"),
    ):
        x[rtorch.tensor([0.0, 1.0])]


def test_two_ellipses_raise_index_error():
    x, _ = make(3, 4)
    with pytest.raises(
        IndexError, match=r"(?i)an index can only have a single ellipsis \('\.\.\.'\)"
    ):
        x[..., ...]


def test_mask_shape_mismatch_raises_index_error():
    x, _ = make(3, 4)
    with pytest.raises(
        IndexError,
        match=re.escape(
            "The shape of the mask [2] at index 0 does not match the shape of the indexed tensor "
            "[3, 4] at index 0"
        ),
    ):
        x[rtorch.tensor([True, False])]


def test_index_arrays_that_do_not_broadcast_raise_index_error():
    x, _ = make(3, 4)
    with pytest.raises(
        IndexError,
        match=re.escape(
            "shape mismatch: indexing tensors could not be broadcast together with shapes [2], [3]"
        ),
    ):
        x[[0, 1], [0, 1, 2]]


# ------------------------------------------------------------- __setitem__


SET_CASES = [
    (K[0], 5),
    (K[-1, 2], -3),
    (K[:, 1], 9),
    (K[::2, 1::2], 7),
    (K[..., 0], -1),
    (K[None, 1], 4),
    (K[True], 8),
    (K[False], 8),
    (K[:], np.arange(5)),
    (K[1], np.arange(20).reshape(4, 5) * 10),
    (K[:, :, 2], np.array([[1], [2], [3]])),
    (K[np.array([0, 2])], 6),
    (K[np.array([0, 2])], np.arange(5) + 100),
    (K[np.array([0, 2]), np.array([1, 3])], np.array([[10], [20]])),
    (K[np.array([0, 2]), :, np.array([1, 3])], np.arange(8).reshape(2, 4)),
    (K[:, np.array([3, 0]), 1:3], 11),
    (K[np.array([True, False, True])], 0),
    (K[np.array([[True, False, True, False]] * 3)], np.arange(5)),
    (K[np.arange(60).reshape(3, 4, 5) % 7 == 0], -9),
    (K[np.array([[0], [1]]), np.array([0, 3])], np.array([1, 2]).reshape(2, 1, 1)),
]


@pytest.mark.parametrize("key,value", SET_CASES, ids=repr)
def test_setitem_matches_numpy(key, value):
    x, a = make(3, 4, 5)
    rvalue = rtorch.from_numpy(np.asarray(value).copy()) if isinstance(value, np.ndarray) else value
    x[to_rtorch(key)] = rvalue
    a[key] = value
    np.testing.assert_array_equal(x.numpy(), a)


def test_setitem_with_list_index_matches_numpy():
    x, a = make(3, 4)
    x[[0, 2], [1, 3]] = rtorch.tensor([-1, -2])
    a[[0, 2], [1, 3]] = [-1, -2]
    np.testing.assert_array_equal(x.numpy(), a)


def test_setitem_converts_value_to_tensor_dtype():
    x = rtorch.zeros(3, dtype=rtorch.int64)
    x[0] = 2.7
    x[1] = rtorch.tensor(-3.9)
    x[2] = True
    assert x.tolist() == [2, -3, 1]
    f = rtorch.zeros(2)
    f[:] = rtorch.tensor([1, 2])
    assert f.dtype == rtorch.float32
    assert f.tolist() == [1.0, 2.0]


def test_setitem_with_zero_dim_tensor_value_fills():
    x, a = make(2, 3)
    x[:, 1] = rtorch.tensor(42)
    a[:, 1] = 42
    np.testing.assert_array_equal(x.numpy(), a)


def test_setitem_value_broadcast_mismatch_raises():
    x = rtorch.zeros(3)
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "The expanded size of the tensor (3) must match the existing size (2) at non-singleton "
            "dimension 0.  Target sizes: [3].  Tensor sizes: [2]"
        ),
    ):
        x[:] = rtorch.ones(2)


def test_setitem_advanced_value_shape_mismatch_raises():
    x = rtorch.zeros(5)
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "shape mismatch: value tensor of shape [2] cannot be broadcast to indexing result of shape [3]"
        ),
    ):
        x[[0, 1, 2]] = rtorch.ones(2)


def test_setitem_out_of_range_raises_index_error():
    x = rtorch.zeros(3)
    with pytest.raises(
        IndexError, match=re.escape("index 3 is out of bounds for dimension 0 with size 3")
    ):
        x[3] = 1.0


def test_setitem_bumps_version_once():
    x = rtorch.zeros(3, 4)
    x[1] = 1.0
    assert x._version == 1
    x[[0, 2]] = 2.0
    assert x._version == 2
    x[rtorch.tensor([True, False, True])] = 3.0
    assert x._version == 3


def test_setitem_through_view_is_visible_in_base():
    x, a = make(4, 5)
    v = x.t()[1:4]
    v[0] = -1
    v[:, ::2] = -2
    a.T[1:4][0] = -1
    a.T[1:4][:, ::2] = -2
    np.testing.assert_array_equal(x.numpy(), a)


def test_advanced_setitem_through_view_is_visible_in_base():
    x, a = make(4, 5)
    v = x[1:, 2:]
    v[[0, 2], [1, 2]] = 99
    a[1:, 2:][[0, 2], [1, 2]] = 99
    np.testing.assert_array_equal(x.numpy(), a)


def test_setitem_on_expanded_view_writes_the_shared_element():
    base = rtorch.zeros(3, 1)
    e = base.expand(3, 4)
    e[1, 2] = 5.0
    assert base.tolist() == [[0.0], [5.0], [0.0]]


# ----------------------------------------------------- copy_ / fill_ / zero_


def test_copy_returns_self_and_copies_values():
    x = rtorch.zeros(2, 3)
    src = rtorch.arange(6.0).view(2, 3)
    assert x.copy_(src) is x
    np.testing.assert_array_equal(x.numpy(), np.arange(6.0).reshape(2, 3))
    src[0, 0] = 100.0
    assert x[0, 0].item() == 0.0


def test_copy_broadcasts_source():
    x = rtorch.zeros(2, 3)
    x.copy_(rtorch.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.numpy(), [[1, 2, 3], [1, 2, 3]])
    x.copy_(rtorch.tensor([[7.0], [8.0]]))
    np.testing.assert_array_equal(x.numpy(), [[7, 7, 7], [8, 8, 8]])


def test_copy_converts_dtype():
    x = rtorch.zeros(3, dtype=rtorch.int32)
    x.copy_(rtorch.tensor([1.9, -1.9, 3.0]))
    assert x.dtype == rtorch.int32
    assert x.tolist() == [1, -1, 3]
    b = rtorch.zeros(3, dtype=rtorch.bool)
    b.copy_(rtorch.tensor([0.0, 0.5, 2.0]))
    assert b.tolist() == [False, True, True]


def test_copy_from_transposed_source_and_into_transposed_destination():
    src, a = make(3, 4)
    dst = rtorch.zeros(4, 3, dtype=rtorch.int64)
    dst.copy_(src.t())
    np.testing.assert_array_equal(dst.numpy(), a.T)
    base = rtorch.zeros(3, 4, dtype=rtorch.int64)
    base.t().copy_(src.t())
    np.testing.assert_array_equal(base.numpy(), a)


def test_copy_into_view_writes_base():
    x, a = make(4, 4)
    x[1:3, 1:3].copy_(rtorch.tensor([[-1, -2], [-3, -4]]))
    a[1:3, 1:3] = [[-1, -2], [-3, -4]]
    np.testing.assert_array_equal(x.numpy(), a)


def test_copy_shape_mismatch_raises():
    x = rtorch.zeros(2, 3)
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 1"
        ),
    ):
        x.copy_(rtorch.zeros(2))


def test_copy_source_with_more_dims_than_destination_raises():
    x = rtorch.zeros(3)
    with pytest.raises(
        RuntimeError,
        match=re.escape("output with shape [3] doesn't match the broadcast shape [2, 3]"),
    ):
        x.copy_(rtorch.zeros(2, 3))


def test_fill_returns_self_and_fills_view_only():
    x, a = make(3, 4)
    assert x.fill_(1) is x
    x[:, 1].fill_(5)
    a[:] = 1
    a[:, 1] = 5
    np.testing.assert_array_equal(x.numpy(), a)


def test_fill_converts_value_to_dtype():
    x = rtorch.zeros(2, dtype=rtorch.int64)
    x.fill_(3.9)
    assert x.tolist() == [3, 3]
    b = rtorch.zeros(2, dtype=rtorch.bool)
    b.fill_(2)
    assert b.tolist() == [True, True]


def test_fill_with_zero_dim_tensor():
    x = rtorch.zeros(3)
    x.fill_(rtorch.tensor(2.5))
    assert x.tolist() == [2.5, 2.5, 2.5]


def test_fill_with_one_dim_tensor_raises():
    x = rtorch.zeros(3)
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "fill_ only supports 0-dimension value tensor but got tensor with 1 dimensions."
        ),
    ):
        x.fill_(rtorch.tensor([1.0]))


def test_zero_returns_self_and_zeroes_strided_view():
    x, a = make(4, 5)
    v = x[::2, 1::2]
    assert v.zero_() is v
    a[::2, 1::2] = 0
    np.testing.assert_array_equal(x.numpy(), a)
    y = rtorch.ones(3)
    assert y.zero_() is y
    assert y.tolist() == [0.0, 0.0, 0.0]


def test_in_place_add_through_transposed_view_updates_base():
    x = rtorch.zeros(2, 3)
    x.t().add_(rtorch.tensor([1.0, 2.0]))
    np.testing.assert_array_equal(x.numpy(), [[1, 1, 1], [2, 2, 2]])
