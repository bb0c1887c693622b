"""Views and introspection: every view op is checked against NumPy for its
values and strides, and for sharing storage with its base (a write through
the view shows in the base, ``data_ptr``/``storage_offset`` as PyTorch
reports them)."""

import re
import warnings

import numpy as np
import pytest

import rtorch


def arange(*shape, dtype=rtorch.int64):
    """``rtorch`` and NumPy tensors holding 0..n-1 in ``shape``."""
    n = int(np.prod(shape))
    return rtorch.arange(n, dtype=dtype).view(*shape), np.arange(n).reshape(shape)


def np_strides(a):
    return tuple(s // a.itemsize for s in a.strides)


def assert_view_matches(view, base, expected):
    """``view`` equals NumPy's ``expected`` in shape, values and strides, and
    is a view of ``base``."""
    assert tuple(view.shape) == expected.shape
    np.testing.assert_array_equal(view.numpy(), expected)
    assert view.stride() == np_strides(expected)
    assert view._is_view_of(base)


def assert_write_visible(view, base):
    """Writing through ``view`` changes ``base`` at the same element."""
    if view.numel() == 0:
        return
    idx = (0,) * view.dim()
    view[idx] = -7
    # The base's flat element at the view's storage offset is the written one.
    assert base.reshape(-1)[view.storage_offset() - base.storage_offset()].item() == -7


# ------------------------------------------------------------- introspection


def test_shape_is_size_tuple_subclass_with_pytorch_repr():
    t = rtorch.zeros(2, 3)
    assert isinstance(t.shape, rtorch.Size)
    assert isinstance(t.shape, tuple)
    assert t.shape == (2, 3)
    assert repr(t.shape) == "torch.Size([2, 3])"
    assert str(t.shape) == "torch.Size([2, 3])"
    assert repr(rtorch.zeros(()).shape) == "torch.Size([])"
    assert t.shape.numel() == 6
    assert rtorch.zeros(()).shape.numel() == 1


def test_size_method_returns_size_and_dim_sizes():
    t = rtorch.zeros(2, 3, 4)
    assert isinstance(t.size(), rtorch.Size)
    assert t.size() == (2, 3, 4)
    assert t.size(1) == 3
    assert t.size(-1) == 4
    assert t.size(-3) == 2


def test_size_dim_out_of_range_raises_index_error():
    with pytest.raises(
        IndexError,
        match=re.escape("Dimension out of range (expected to be in range of [-2, 1], but got 5)"),
    ):
        rtorch.zeros(2, 3).size(5)


def test_size_slicing_and_concatenation_stay_size():
    s = rtorch.Size([2, 3, 4])
    assert isinstance(s[1:], rtorch.Size)
    assert s[1:] == (3, 4)
    assert s[0] == 2
    assert isinstance(s + rtorch.Size([5]), rtorch.Size)
    assert s + (5,) == (2, 3, 4, 5)


def test_stride_and_storage_offset_of_contiguous_tensor():
    t = rtorch.zeros(2, 3, 4)
    assert t.stride() == (12, 4, 1)
    assert t.stride(0) == 12
    assert t.stride(-1) == 1
    assert t.storage_offset() == 0
    assert t.is_contiguous()


def test_dim_ndim_numel_nelement():
    t = rtorch.zeros(2, 3, 4)
    assert t.dim() == 3
    assert t.ndim == 3
    assert t.numel() == 24
    assert t.nelement() == 24
    assert rtorch.numel(t) == 24
    s = rtorch.tensor(5.0)
    assert s.dim() == 0
    assert s.numel() == 1


@pytest.mark.parametrize(
    "dtype,size",
    [
        (rtorch.float32, 4),
        (rtorch.float64, 8),
        (rtorch.float16, 2),
        (rtorch.bfloat16, 2),
        (rtorch.int64, 8),
        (rtorch.int32, 4),
        (rtorch.int16, 2),
        (rtorch.int8, 1),
        (rtorch.uint8, 1),
        (rtorch.bool, 1),
    ],
)
def test_element_size_per_dtype(dtype, size):
    t = rtorch.zeros(3, dtype=dtype)
    assert t.element_size() == size
    assert t.dtype == dtype


def test_device_is_cpu_with_pytorch_repr():
    t = rtorch.zeros(2)
    assert t.device == rtorch.device("cpu")
    assert repr(t.device) == "device(type='cpu')"
    assert str(t.device) == "cpu"
    assert t.device.type == "cpu"
    assert t.is_cpu
    assert not t.is_cuda


def test_new_tensor_is_leaf_without_grad():
    t = rtorch.ones(3)
    assert t.is_leaf
    assert not t.requires_grad
    assert t.grad is None


def test_requires_grad_setter_and_method():
    t = rtorch.ones(3)
    assert t.requires_grad_() is t
    assert t.requires_grad
    assert t.is_leaf
    t.requires_grad = False
    assert not t.requires_grad


def test_requires_grad_on_integer_tensor_raises():
    t = rtorch.ones(3, dtype=rtorch.int64)
    with pytest.raises(
        RuntimeError,
        match=re.escape("only Tensors of floating point and complex dtype can require gradients"),
    ):
        t.requires_grad = True


# --------------------------------------------------------------- _version


def test_version_starts_at_zero_and_counts_in_place_writes():
    t = rtorch.zeros(2, 3)
    assert t._version == 0
    t.copy_(rtorch.ones(2, 3))
    assert t._version == 1
    t.fill_(2.0)
    assert t._version == 2
    t.zero_()
    assert t._version == 3
    t[0, 0] = 5.0
    assert t._version == 4
    t.add_(1.0)
    assert t._version == 5
    np.testing.assert_array_equal(t.numpy(), [[6.0, 1.0, 1.0], [1.0, 1.0, 1.0]])


def test_version_not_changed_by_reads_and_views():
    t = rtorch.zeros(2, 3)
    t.view(3, 2)
    t.t()
    t[0]
    t.clone()
    t.numpy()
    assert t._version == 0


def test_view_shares_version_counter_with_base():
    base = rtorch.zeros(4)
    v = base[1:3]
    v.fill_(1.0)
    assert base._version == 1
    assert v._version == 1
    base.zero_()
    assert v._version == 2


# -------------------------------------------------------------------- view


@pytest.mark.parametrize("shape", [(6, 4), (2, 12), (24,), (2, 3, 4), (4, -1), (-1,), (2, -1, 3)])
def test_view_of_contiguous_matches_numpy_reshape_and_shares(shape):
    base, a = arange(2, 3, 4)
    v = base.view(*shape)
    assert_view_matches(v, base, a.reshape(shape))
    assert v.data_ptr() == base.data_ptr()
    assert_write_visible(v, base)


def test_view_accepts_tuple_and_size():
    base, a = arange(2, 6)
    assert base.view((3, 4)).shape == (3, 4)
    assert base.view(rtorch.Size([4, 3])).shape == (4, 3)
    np.testing.assert_array_equal(base.view((3, 4)).numpy(), a.reshape(3, 4))


def test_view_of_zero_dim_and_to_zero_dim():
    t = rtorch.tensor(3.0)
    assert t.view(1).shape == (1,)
    assert t.view(1, 1).tolist() == [[3.0]]
    assert rtorch.tensor([4.0]).view(()).shape == ()


def test_view_splitting_dim_of_transposed_tensor_is_allowed():
    base, a = arange(2, 3, 4)
    t = base.transpose(0, 1)
    v = t.view(3, 2, 2, 2)
    assert_view_matches(v, base, np.transpose(a, (1, 0, 2)).reshape(3, 2, 2, 2))
    assert v.stride() == (4, 12, 2, 1)


def test_view_of_transpose_shares_storage():
    base, a = arange(3, 4)
    t = base.t()
    v = t.view(4, 3, 1)
    assert v._is_view_of(base)
    v[1, 2, 0] = 100
    assert base[2, 1].item() == 100


def test_view_incompatible_with_strides_raises_pytorch_error():
    base, _ = arange(2, 3)
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "view size is not compatible with input tensor's size and stride (at least one "
            "dimension spans across two contiguous subspaces). Use .reshape(...) instead."
        ),
    ):
        base.t().view(6)


def test_view_wrong_numel_raises():
    base, _ = arange(2, 3)
    with pytest.raises(
        RuntimeError, match=re.escape("shape '[4, 2]' is invalid for input of size 6")
    ):
        base.view(4, 2)


def test_view_two_inferred_dims_raises():
    base, _ = arange(2, 3)
    with pytest.raises(RuntimeError, match=re.escape("only one dimension can be inferred")):
        base.view(-1, -1)


def test_view_as_takes_other_shape():
    base, a = arange(2, 6)
    v = base.view_as(rtorch.zeros(3, 4))
    assert_view_matches(v, base, a.reshape(3, 4))


# ----------------------------------------------------------------- reshape


def test_reshape_of_contiguous_is_a_view():
    base, a = arange(2, 3, 4)
    r = base.reshape(4, -1)
    assert_view_matches(r, base, a.reshape(4, -1))
    assert r.data_ptr() == base.data_ptr()
    assert_write_visible(r, base)


def test_reshape_of_transposed_copies_when_view_impossible():
    base, a = arange(2, 3)
    r = base.t().reshape(6)
    np.testing.assert_array_equal(r.numpy(), a.T.reshape(6))
    assert r.is_contiguous()
    assert not r._is_view_of(base)
    r[0] = 99
    assert base[0, 0].item() == 0


def test_reshape_of_transposed_is_view_when_possible():
    base, a = arange(2, 3, 4)
    t = base.transpose(0, 1)
    r = t.reshape(3, 2, 2, 2)
    assert_view_matches(r, base, np.transpose(a, (1, 0, 2)).reshape(3, 2, 2, 2))


def test_reshape_function_form_and_reshape_as():
    base, a = arange(4, 3)
    np.testing.assert_array_equal(rtorch.reshape(base, (3, 4)).numpy(), a.reshape(3, 4))
    np.testing.assert_array_equal(base.reshape_as(rtorch.zeros(2, 6)).numpy(), a.reshape(2, 6))


def test_reshape_wrong_numel_raises():
    base, _ = arange(2, 3)
    with pytest.raises(RuntimeError, match=re.escape("shape '[5]' is invalid for input of size 6")):
        base.reshape(5)


# ------------------------------------------------ permute / transpose / t


@pytest.mark.parametrize("dims", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (2, 1, 0), (-1, 0, -2)])
def test_permute_matches_numpy_transpose_and_shares(dims):
    base, a = arange(2, 3, 4)
    p = base.permute(*dims)
    assert_view_matches(p, base, np.transpose(a, [d % 3 for d in dims]))
    assert p.data_ptr() == base.data_ptr()
    assert_write_visible(p, base)


def test_permute_accepts_tuple_and_function_form():
    base, a = arange(2, 3, 4)
    assert_view_matches(base.permute((2, 0, 1)), base, np.transpose(a, (2, 0, 1)))
    assert_view_matches(rtorch.permute(base, (1, 0, 2)), base, np.transpose(a, (1, 0, 2)))


def test_permute_wrong_number_of_dims_raises():
    base, _ = arange(2, 3, 4)
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "number of dimensions in the tensor input does not match the length of the desired "
            "ordering of dimensions i.e. input.dim() = 3 is not equal to len(dims) = 2"
        ),
    ):
        base.permute(1, 0)


def test_permute_repeated_dim_raises():
    base, _ = arange(2, 3, 4)
    with pytest.raises(RuntimeError, match=re.escape("permute(): duplicate dims are not allowed.")):
        base.permute(0, 0, 1)


@pytest.mark.parametrize("d0,d1", [(0, 1), (1, 2), (0, 2), (-1, -2), (1, 1), (-3, 2)])
def test_transpose_matches_numpy_swapaxes_and_shares(d0, d1):
    base, a = arange(2, 3, 4)
    t = base.transpose(d0, d1)
    assert_view_matches(t, base, np.swapaxes(a, d0, d1))
    assert_write_visible(t, base)


def test_swapaxes_and_swapdims_are_transpose():
    base, a = arange(2, 3, 4)
    assert_view_matches(base.swapaxes(0, 2), base, np.swapaxes(a, 0, 2))
    assert_view_matches(base.swapdims(1, 2), base, np.swapaxes(a, 1, 2))


def test_transpose_dim_out_of_range_raises_index_error():
    base, _ = arange(2, 3)
    with pytest.raises(
        IndexError,
        match=re.escape("Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    ):
        base.transpose(0, 2)


def test_t_of_matrix_vector_and_scalar():
    base, a = arange(3, 4)
    assert_view_matches(base.t(), base, a.T)
    v, va = arange(5)
    assert_view_matches(v.t(), v, va)
    s = rtorch.tensor(2.0)
    assert s.t().shape == ()
    assert s.t().item() == 2.0


def test_t_of_3d_raises():
    base, _ = arange(2, 3, 4)
    with pytest.raises(
        RuntimeError, match=re.escape("t() expects a tensor with <= 2 dimensions, but self is 3D")
    ):
        base.t()


def test_T_reverses_all_dims():
    base, a = arange(3, 4)
    assert_view_matches(base.T, base, a.T)
    b3, a3 = arange(2, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_view_matches(b3.T, b3, a3.T)


def test_mT_transposes_last_two_dims():
    base, a = arange(2, 3, 4)
    assert_view_matches(base.mT, base, np.swapaxes(a, -1, -2))
    m, ma = arange(3, 4)
    assert_view_matches(m.mT, m, ma.T)


def test_mT_of_vector_raises():
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "tensor.mT is only supported on matrices or batches of matrices. Got 1-D tensor."
        ),
    ):
        _ = rtorch.zeros(3).mT


# ------------------------------------------------------------------ expand


def test_expand_singleton_dim_has_zero_stride_and_shares():
    base, a = arange(3, 1)
    e = base.expand(3, 4)
    assert e.shape == (3, 4)
    assert e.stride() == (1, 0)
    np.testing.assert_array_equal(e.numpy(), np.broadcast_to(a, (3, 4)))
    assert e._is_view_of(base)
    assert not e.is_contiguous()
    base[1, 0] = 50
    assert e[1].tolist() == [50, 50, 50, 50]


def test_expand_minus_one_keeps_size_and_new_leading_dims():
    base, a = arange(3, 1)
    e = base.expand(2, -1, 5)
    assert e.shape == (2, 3, 5)
    assert e.stride() == (0, 1, 0)
    np.testing.assert_array_equal(e.numpy(), np.broadcast_to(a, (2, 3, 5)))


def test_expand_accepts_tuple_and_size():
    base, a = arange(1, 3)
    assert base.expand((4, 3)).shape == (4, 3)
    assert base.expand(rtorch.Size([2, 3])).shape == (2, 3)


def test_expand_of_scalar():
    s = rtorch.tensor(7)
    e = s.expand(2, 3)
    assert e.stride() == (0, 0)
    assert e.tolist() == [[7, 7, 7], [7, 7, 7]]


def test_expand_non_singleton_mismatch_raises_pytorch_error():
    base, _ = arange(3, 2)
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "The expanded size of the tensor (4) must match the existing size (2) at non-singleton "
            "dimension 1.  Target sizes: [3, 4].  Tensor sizes: [3, 2]"
        ),
    ):
        base.expand(3, 4)


def test_expand_minus_one_in_new_leading_dim_raises():
    base, _ = arange(3)
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "The expanded size of the tensor (-1) isn't allowed in a leading, non-existing dimension 0"
        ),
    ):
        base.expand(-1, 3)


def test_expand_to_fewer_dims_raises():
    base, _ = arange(2, 3)
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "the number of sizes provided (1) must be greater or equal to the number of dimensions "
            "in the tensor (2)"
        ),
    ):
        base.expand(3)


def test_expand_as_matches_other_shape():
    base, a = arange(1, 4)
    other = rtorch.zeros(3, 4)
    e = base.expand_as(other)
    assert e.shape == (3, 4)
    assert e.stride() == (0, 1)
    np.testing.assert_array_equal(e.numpy(), np.broadcast_to(a, (3, 4)))
    assert e._is_view_of(base)


# --------------------------------------------------------- squeeze/unsqueeze


def test_squeeze_removes_all_size_one_dims():
    base, a = arange(1, 3, 1, 4, 1)
    s = base.squeeze()
    assert_view_matches(s, base, np.squeeze(a))
    assert s.shape == (3, 4)
    assert_write_visible(s, base)


@pytest.mark.parametrize("dim", [0, 2, -1, 1, -4])
def test_squeeze_dim_removes_only_a_size_one_dim(dim):
    base, a = arange(1, 3, 1, 4, 1)
    s = base.squeeze(dim)
    expected = np.squeeze(a, dim) if a.shape[dim] == 1 else a
    assert_view_matches(s, base, expected)


def test_squeeze_tuple_of_dims():
    base, a = arange(1, 3, 1, 4, 1)
    s = base.squeeze((0, 2))
    assert_view_matches(s, base, a.reshape(3, 4, 1))
    s2 = base.squeeze((1, -1))
    assert_view_matches(s2, base, a.reshape(1, 3, 1, 4))


def test_squeeze_dim_out_of_range_raises():
    base, _ = arange(1, 3)
    with pytest.raises(
        IndexError,
        match=re.escape("Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    ):
        base.squeeze(2)


def test_squeeze_of_zero_dim_and_function_form():
    s = rtorch.tensor(3)
    assert s.squeeze().shape == ()
    assert s.squeeze(0).shape == ()
    base, a = arange(2, 1)
    np.testing.assert_array_equal(rtorch.squeeze(base).numpy(), a.reshape(2))


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2, -3])
def test_unsqueeze_matches_numpy_expand_dims(dim):
    base, a = arange(2, 3)
    u = base.unsqueeze(dim)
    expected = np.expand_dims(a, dim)
    assert u.shape == expected.shape
    np.testing.assert_array_equal(u.numpy(), expected)
    assert u._is_view_of(base)
    assert_write_visible(u, base)


def test_unsqueeze_stride_of_new_dim_follows_pytorch_rule():
    # PyTorch gives the new dim at d the stride size[d] * stride[d] (1 at the end).
    base, _ = arange(2, 3)
    assert base.unsqueeze(0).stride() == (6, 3, 1)
    assert base.unsqueeze(1).stride() == (3, 3, 1)
    assert base.unsqueeze(2).stride() == (3, 1, 1)


def test_unsqueeze_out_of_range_raises():
    base, _ = arange(2, 3)
    with pytest.raises(
        IndexError,
        match=re.escape("Dimension out of range (expected to be in range of [-3, 2], but got 3)"),
    ):
        base.unsqueeze(3)
    with pytest.raises(
        IndexError,
        match=re.escape("Dimension out of range (expected to be in range of [-3, 2], but got -4)"),
    ):
        base.unsqueeze(-4)


# --------------------------------------------------- flatten / unflatten


@pytest.mark.parametrize(
    "args,shape",
    [
        ((), (24,)),
        ((1,), (2, 12)),
        ((0, 1), (6, 4)),
        ((1, 2), (2, 12)),
        ((-2, -1), (2, 12)),
        ((1, 1), (2, 3, 4)),
    ],
)
def test_flatten_of_contiguous_is_view(args, shape):
    base, a = arange(2, 3, 4)
    f = base.flatten(*args)
    assert_view_matches(f, base, a.reshape(shape))
    assert_write_visible(f, base)


def test_flatten_of_transposed_copies():
    base, a = arange(2, 3)
    f = base.t().flatten()
    np.testing.assert_array_equal(f.numpy(), a.T.reshape(-1))
    assert not f._is_view_of(base)


def test_flatten_of_zero_dim_is_one_element():
    f = rtorch.tensor(5).flatten()
    assert f.shape == (1,)
    assert f.tolist() == [5]


def test_flatten_start_after_end_raises():
    base, _ = arange(2, 3, 4)
    with pytest.raises(
        RuntimeError,
        match=re.escape("flatten() has invalid args: start_dim cannot come after end_dim"),
    ):
        base.flatten(2, 1)


def test_flatten_function_form():
    base, a = arange(2, 3, 4)
    np.testing.assert_array_equal(rtorch.flatten(base, 1).numpy(), a.reshape(2, 12))


@pytest.mark.parametrize(
    "dim,sizes,shape",
    [(1, (2, 3), (4, 2, 3)), (0, (2, 2), (2, 2, 6)), (-1, (3, -1), (4, 3, 2)), (1, (6,), (4, 6))],
)
def test_unflatten_splits_a_dim(dim, sizes, shape):
    base, a = arange(4, 6)
    u = base.unflatten(dim, sizes)
    assert_view_matches(u, base, a.reshape(shape))


def test_unflatten_sizes_must_multiply_to_dim_size():
    base, _ = arange(4, 6)
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "unflatten: Provided sizes [2, 2] don't multiply up to the size of dim 1 (6) in the input tensor"
        ),
    ):
        base.unflatten(1, (2, 2))


# --------------------------------------------- narrow / select / unfold


@pytest.mark.parametrize(
    "dim,start,length", [(0, 1, 2), (1, 0, 4), (1, 2, 2), (-1, -3, 2), (0, 3, 0)]
)
def test_narrow_matches_numpy_slice_and_shares(dim, start, length):
    base, a = arange(4, 4)
    n = base.narrow(dim, start, length)
    s = start % 4 if start < 0 else start
    expected = a[s : s + length] if dim == 0 else a[:, s : s + length]
    assert_view_matches(n, base, expected)
    assert n.storage_offset() == s * (4 if dim == 0 else 1)
    assert_write_visible(n, base)


def test_narrow_past_end_raises():
    base, _ = arange(4)
    with pytest.raises(
        RuntimeError, match=re.escape("start (2) + length (3) exceeds dimension size (4).")
    ):
        base.narrow(0, 2, 3)


@pytest.mark.parametrize("dim,index", [(0, 0), (0, 2), (1, 3), (1, -1), (-2, -3)])
def test_select_matches_numpy_integer_index_and_shares(dim, index):
    base, a = arange(3, 4)
    s = base.select(dim, index)
    assert_view_matches(s, base, a[index] if dim % 2 == 0 else a[:, index])
    assert_write_visible(s, base)


def test_select_storage_offset():
    base, _ = arange(3, 4)
    assert base.select(0, 2).storage_offset() == 8
    assert base.select(1, 3).storage_offset() == 3
    assert base.select(1, 3).stride() == (4,)


def test_select_out_of_range_raises_index_error():
    base, _ = arange(3, 4)
    with pytest.raises(
        IndexError,
        match=re.escape("select(): index 5 out of range for tensor of size [3, 4] at dimension 0"),
    ):
        base.select(0, 5)


@pytest.mark.parametrize("dim,size,step", [(0, 2, 1), (0, 3, 2), (1, 2, 2), (1, 4, 1), (-1, 1, 3)])
def test_unfold_matches_numpy_sliding_window(dim, size, step):
    base, a = arange(5, 4)
    u = base.unfold(dim, size, step)
    windows = np.lib.stride_tricks.sliding_window_view(a, size, axis=dim)
    windows = windows[::step] if dim % 2 == 0 else windows[:, ::step]
    assert_view_matches(u, base, windows)


def test_unfold_of_1d_strides():
    base, _ = arange(7)
    u = base.unfold(0, 3, 2)
    assert u.shape == (3, 3)
    assert u.stride() == (2, 1)
    assert u.tolist() == [[0, 1, 2], [2, 3, 4], [4, 5, 6]]


def test_unfold_size_too_large_raises():
    base, _ = arange(7)
    with pytest.raises(
        RuntimeError, match=re.escape("maximum size for tensor at dimension 0 is 7 but size is 8")
    ):
        base.unfold(0, 8, 1)


def test_unfold_zero_step_raises():
    base, _ = arange(7)
    with pytest.raises(RuntimeError, match=re.escape("step is 0 but must be > 0")):
        base.unfold(0, 2, 0)


# --------------------------------------------------------------- as_strided


def test_as_strided_matches_numpy_as_strided():
    base, a = arange(9)
    s = base.as_strided((2, 2), (1, 2), 1)
    expected = np.lib.stride_tricks.as_strided(a[1:], (2, 2), (8, 16))
    assert s.shape == (2, 2)
    assert s.stride() == (1, 2)
    assert s.storage_offset() == 1
    np.testing.assert_array_equal(s.numpy(), expected)
    assert s._is_view_of(base)
    s[1, 1] = -1
    assert base[4].item() == -1


def test_as_strided_offset_is_absolute_in_storage():
    base, _ = arange(10)
    v = base[2:]
    s = v.as_strided((3,), (2,))
    # PyTorch uses the view's own storage offset when none is given.
    assert s.storage_offset() == 2
    assert s.tolist() == [2, 4, 6]
    assert v.as_strided((2,), (1,), 0).tolist() == [0, 1]


def test_as_strided_out_of_bounds_raises():
    base, _ = arange(4)
    with pytest.raises(
        RuntimeError,
        match=re.escape(
            "setStorage: sizes [5], strides [1], storage offset 0, and itemsize 8 requiring a "
            "storage size of 40 are out of bounds for storage of size 32"
        ),
    ):
        base.as_strided((5,), (1,))


# ------------------------------------------------------ contiguous / clone


def test_contiguous_returns_self_when_contiguous():
    t = rtorch.zeros(2, 3)
    assert t.contiguous() is t


def test_contiguous_of_transposed_is_a_copy_with_row_major_strides():
    base, a = arange(2, 3)
    c = base.t().contiguous()
    assert c.is_contiguous()
    assert c.stride() == (2, 1)
    np.testing.assert_array_equal(c.numpy(), a.T)
    assert not c._is_view_of(base)


def test_is_contiguous_ignores_strides_of_size_one_dims():
    base, _ = arange(3, 1)
    assert base.t().is_contiguous()
    assert base.unsqueeze(0).is_contiguous()
    assert not arange(2, 3)[0].t().is_contiguous()
    assert not base.expand(3, 2).is_contiguous()


def test_clone_copies_values_not_storage():
    base, a = arange(2, 3)
    c = base.clone()
    np.testing.assert_array_equal(c.numpy(), a)
    assert not c._is_view_of(base)
    assert c.data_ptr() != base.data_ptr()
    c[0, 0] = 100
    assert base[0, 0].item() == 0


def test_clone_preserves_strides_of_dense_permuted_tensor():
    base, a = arange(2, 3)
    c = base.t().clone()
    assert c.stride() == (1, 3)
    np.testing.assert_array_equal(c.numpy(), a.T)


def test_clone_of_expanded_tensor_is_contiguous():
    base, a = arange(3, 1)
    c = base.expand(3, 4).clone()
    assert c.stride() == (4, 1)
    np.testing.assert_array_equal(c.numpy(), np.broadcast_to(a, (3, 4)))


def test_clone_keeps_dtype_and_function_form():
    t = rtorch.tensor([1.5, 2.5], dtype=rtorch.float64)
    c = rtorch.clone(t)
    assert c.dtype == rtorch.float64
    assert c.tolist() == [1.5, 2.5]


def test_detach_shares_storage_and_drops_requires_grad():
    t = rtorch.ones(3, requires_grad=True)
    d = t.detach()
    assert not d.requires_grad
    assert d.is_leaf
    assert d._is_view_of(t)
    assert d.data_ptr() == t.data_ptr()
    d[0] = 5.0
    assert t[0].item() == 5.0


# --------------------------------------------------------------- diagonal


@pytest.mark.parametrize("offset", [0, 1, 2, -1, -2, 5])
def test_diagonal_of_matrix_matches_numpy(offset):
    base, a = arange(3, 4)
    d = base.diagonal(offset)
    assert_view_matches(d, base, np.diagonal(a, offset))
    assert_write_visible(d, base)


@pytest.mark.parametrize("dim1,dim2", [(0, 1), (1, 2), (0, 2), (2, 0), (-1, -2)])
def test_diagonal_of_3d_appends_diag_dim_like_numpy(dim1, dim2):
    base, a = arange(3, 4, 5)
    d = base.diagonal(0, dim1, dim2)
    assert_view_matches(d, base, np.diagonal(a, 0, dim1, dim2))


def test_diagonal_keywords_and_function_form():
    base, a = arange(4, 4)
    d = rtorch.diagonal(base, offset=1, dim1=0, dim2=1)
    assert d.tolist() == np.diagonal(a, 1).tolist()
    assert d.stride() == (5,)
    assert d.storage_offset() == 1


def test_diagonal_same_dims_raises():
    base, _ = arange(3, 3)
    with pytest.raises(
        RuntimeError, match=re.escape("diagonal dimensions cannot be identical 0, 0")
    ):
        base.diagonal(0, 0, 0)


# ------------------------------------------------------- chains of views


def test_chain_of_views_writes_back_to_base():
    base, a = arange(4, 6)
    v = base.t()[1:5:2].unsqueeze(0).expand(3, -1, -1)[1].narrow(1, 1, 2)
    expected = np.broadcast_to(a.T[1:5:2][None], (3, 2, 4))[1][:, 1:3]
    np.testing.assert_array_equal(v.numpy(), expected)
    assert v._is_view_of(base)
    v[1, 0] = -3
    a2 = a.copy()
    a2.T[3, 1] = -3
    np.testing.assert_array_equal(base.numpy(), a2)


def test_data_ptr_of_view_is_base_plus_offset_times_itemsize():
    base = rtorch.zeros(4, 5, dtype=rtorch.float64)
    v = base[1:, 2:]
    assert v.storage_offset() == 7
    assert v.data_ptr() == base.data_ptr() + 7 * 8


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (rtorch.uint8, rtorch.float32),
        (rtorch.float32, rtorch.uint8),
        (rtorch.int16, rtorch.float64),
        (rtorch.float64, rtorch.int16),
        (rtorch.bfloat16, rtorch.int32),
    ],
)
def test_view_dtype_of_other_size_reinterprets_bytes_as_numpy(src, dst):
    np_of = {rtorch.bfloat16: np.uint16}
    base = rtorch.arange(48, dtype=rtorch.int64).view(4, 12).to(src)
    v = base[1:3].view(dst)
    a = base.numpy() if src not in np_of else base.view(rtorch.int16).numpy().view(np.uint16)
    expected = a[1:3].view(np_of.get(dst, rtorch.zeros(0, dtype=dst).numpy().dtype))
    if dst in np_of:
        got = v.view(rtorch.int16).numpy().view(np.uint16)
    else:
        got = v.numpy()
    np.testing.assert_array_equal(got, expected)
    assert v.stride() == np_strides(expected)
    assert v.storage_offset() * dst.itemsize == base[1:3].storage_offset() * src.itemsize
    assert v._is_view_of(base)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: rtorch.tensor(1, dtype=rtorch.uint8), "self.dim() cannot be 0"),
        (lambda: rtorch.zeros(4, 4, dtype=rtorch.uint8).t(), "self.stride(-1) must be 1"),
        (lambda: rtorch.zeros(3, 6, dtype=rtorch.uint8), "self.size(-1) must be divisible by 4"),
        (lambda: rtorch.zeros(20, dtype=rtorch.uint8)[1:17], "storage_offset() must be divisible"),
        (lambda: rtorch.zeros(3, 6, dtype=rtorch.uint8)[:, :4], "self.stride(0) must be divisible"),
    ],
)
def test_view_dtype_of_other_size_refuses_layouts_as_pytorch(make, message):
    with pytest.raises(RuntimeError, match=re.escape(message)):
        make().view(rtorch.float32)


def test_empty_tensor_is_contiguous_whatever_its_strides():
    # NumPy gives empty arrays zero strides; PyTorch calls any empty tensor contiguous.
    assert rtorch.from_numpy(np.zeros((0, 2), np.float32)).is_contiguous()
    assert rtorch.zeros(3, 0).as_strided((3, 0), (5, 7)).is_contiguous()


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.unflatten(0, (1,)),
        lambda s: s.cross(s, 0),
        lambda s: s.take_along_dim(rtorch.tensor(0), 0),
        lambda s: s.unbind(-1),
    ],
)
def test_ops_indexing_a_dim_refuse_zero_dim_tensors(call):
    # A 0-d tensor accepts dim 0 for reductions, but these need a real dim.
    with pytest.raises(
        IndexError, match="Dimension specified as (0|-1) but tensor has no dimensions"
    ):
        call(rtorch.tensor(1.0))
