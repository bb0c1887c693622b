"""Hypothesis property tests of shape, stride and indexing arithmetic
against NumPy: random shapes (0-4 dims, sizes 0-5), random views and index
expressions; the values, shapes, strides and storage offsets rtorch reports
must be NumPy's (strides in elements, i.e. NumPy's bytes // itemsize)."""

import math

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

import rtorch

shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
nonempty_shapes = st.lists(st.integers(1, 5), min_size=0, max_size=4).map(tuple)


def contiguous_strides(shape):
    """PyTorch's row-major strides (a size-0 dim counts as 1)."""
    strides, acc = [], 1
    for size in reversed(shape):
        strides.append(acc)
        acc *= max(size, 1)
    return tuple(reversed(strides))


def make(shape):
    """An int64 rtorch tensor of 0..n-1 and a writable NumPy array with the
    same layout (built from PyTorch's strides, not NumPy's, which differ for
    size-0 dims)."""
    n = math.prod(shape)
    x = rtorch.arange(n).view(shape)
    base = np.arange(max(n, 1), dtype=np.int64)
    strides = [s * 8 for s in contiguous_strides(shape)]
    return x, np.lib.stride_tricks.as_strided(base, shape, strides, writeable=True)


def elem_strides(a):
    return tuple(s // a.itemsize for s in a.strides)


def byte_offset(view, base):
    return (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // 8


def assert_same(t, expected):
    assert tuple(t.shape) == expected.shape
    np.testing.assert_array_equal(t.numpy(), expected)
    assert t.tolist() == expected.tolist()


def assert_same_layout(t, expected, base):
    """Values, strides and storage offset of a view equal NumPy's."""
    assert_same(t, expected)
    if expected.size > 0:
        assert t.stride() == elem_strides(expected)
        assert t.storage_offset() == byte_offset(expected, base)


# ---------------------------------------------------------------- layout


@given(shapes)
def test_contiguous_tensor_strides_are_row_major(shape):
    x, a = make(shape)
    assert x.shape == shape
    assert x.stride() == contiguous_strides(shape)
    assert x.is_contiguous()
    assert x.numel() == math.prod(shape)
    assert_same(x, a)


@given(shapes, st.data())
def test_permute_matches_numpy_transpose(shape, data):
    x, a = make(shape)
    perm = data.draw(st.permutations(range(len(shape))))
    p = x.permute(*perm)
    assert_same_layout(p, np.transpose(a, perm), a)
    assert p._is_view_of(x)
    # Permuting back restores the original layout.
    inverse = np.argsort(perm).tolist()
    back = p.permute(*inverse)
    assert back.stride() == x.stride()
    assert back.is_contiguous()


@given(shapes.filter(lambda s: len(s) >= 1), st.data())
def test_transpose_matches_numpy_swapaxes(shape, data):
    x, a = make(shape)
    d0 = data.draw(st.integers(-len(shape), len(shape) - 1))
    d1 = data.draw(st.integers(-len(shape), len(shape) - 1))
    assert_same_layout(x.transpose(d0, d1), np.swapaxes(a, d0, d1), a)


def slices_for(shape):
    bound = st.one_of(st.none(), st.integers(-7, 7))
    step = st.one_of(st.none(), st.integers(1, 3))
    return st.tuples(*[st.builds(slice, bound, bound, step) for _ in shape])


@given(shapes.flatmap(lambda s: st.tuples(st.just(s), slices_for(s))))
def test_slices_with_steps_match_numpy(args):
    shape, key = args
    x, a = make(shape)
    v = x[key]
    assert_same_layout(v, a[key + (Ellipsis,)], a)
    assert v._is_view_of(x)


@given(shapes, st.data())
def test_expand_matches_numpy_broadcast_to(shape, data):
    x, a = make(shape)
    new_dims = data.draw(st.lists(st.integers(0, 4), max_size=2))
    target = list(new_dims)
    for size in shape:
        target.append(data.draw(st.integers(0, 4)) if size == 1 else size)
    e = x.expand(*target)
    expected = np.broadcast_to(a, target)
    assert_same(e, expected)
    assert e._is_view_of(x)
    lead = len(new_dims)
    for i, size in enumerate(target):
        if i < lead or (shape[i - lead] == 1 and size != 1):
            assert e.stride(i) == 0


@given(shapes.filter(lambda s: len(s) >= 2), st.data())
def test_chain_of_views_matches_numpy(shape, data):
    x, a = make(shape)
    perm = data.draw(st.permutations(range(len(shape))))
    key = data.draw(slices_for(shape))
    v = x.permute(*perm)[key].unsqueeze(0)
    expected = np.transpose(a, perm)[key][None]
    assert_same(v, expected)
    mT = v.transpose(-1, -2)
    assert_same(mT, np.swapaxes(expected, -1, -2))
    assert mT._is_view_of(x)


@given(shapes.filter(lambda s: len(s) >= 1), st.data())
def test_writes_through_slice_view_reach_base(shape, data):
    x, a = make(shape)
    key = data.draw(slices_for(shape))
    x[key] = -1
    a[key] = -1
    assert_same(x, a)


# --------------------------------------------------------- reshape / view


def regroup(shape, data):
    """A shape with the same numel: adjacent dims merged, or all flattened."""
    if not shape:
        return data.draw(st.sampled_from([(), (1,), (1, 1)]))
    out, i = [], 0
    while i < len(shape):
        j = data.draw(st.integers(i + 1, len(shape)))
        out.append(math.prod(shape[i:j]))
        i = j
    return tuple(out)


@given(shapes, st.data())
def test_view_round_trip_shares_storage(shape, data):
    x, a = make(shape)
    target = regroup(shape, data)
    v = x.view(*target)
    assert_same(v, a.reshape(target))
    assert v._is_view_of(x)
    assert v.is_contiguous()
    back = v.view(shape)
    assert back.stride() == x.stride()
    assert_same(back, a)


@given(nonempty_shapes.filter(lambda s: len(s) >= 1), st.data())
def test_view_infers_minus_one(shape, data):
    x, a = make(shape)
    target = list(regroup(shape, data))
    target[data.draw(st.integers(0, len(target) - 1))] = -1
    assert_same(x.view(*target), a.reshape(target))


@given(shapes.filter(lambda s: len(s) >= 2), st.data())
def test_reshape_of_permuted_matches_numpy_and_views_when_numpy_does(shape, data):
    x, a = make(shape)
    perm = data.draw(st.permutations(range(len(shape))))
    p, pa = x.permute(*perm), np.transpose(a, perm)
    target = regroup(pa.shape, data)
    r = p.reshape(*target)
    expected = pa.reshape(target)
    assert_same(r, expected)
    if expected.size > 0:
        assert r._is_view_of(x) == np.shares_memory(expected, a)
    if not r._is_view_of(x):
        assert r.is_contiguous()


@given(shapes, st.data())
def test_flatten_matches_numpy_reshape(shape, data):
    x, a = make(shape)
    nd = max(len(shape), 1)
    start = data.draw(st.integers(0, nd - 1))
    end = data.draw(st.integers(start, nd - 1))
    f = x.flatten(start, end)
    if not shape:
        expected = a.reshape(1)
    else:
        expected = a.reshape(
            shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :]
        )
    assert_same(f, expected)


@given(shapes)
def test_squeeze_matches_numpy(shape):
    x, a = make(shape)
    s = x.squeeze()
    assert_same_layout(s, np.squeeze(a), a)


@given(shapes, st.data())
def test_unsqueeze_matches_numpy_expand_dims(shape, data):
    x, a = make(shape)
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)))
    assert_same(x.unsqueeze(dim), np.expand_dims(a, dim))


# ---------------------------------------------------------------- indexing


def split_key(ndim, key):
    """PyTorch's two steps for ``tensor[key]``: the basic key (ints, slices,
    None; a bool scalar becomes None) is applied first, then the advanced key
    (index arrays, with full slices elsewhere; a bool scalar becomes the index
    array [0] or []) on that result. This differs from NumPy's one step only
    when an int and an index array are separated by another index: PyTorch
    keeps the array's dims in place, NumPy moves them to the front."""

    def consumed(k):
        if k is None or isinstance(k, bool):
            return 0
        if isinstance(k, np.ndarray) and k.dtype == bool:
            return k.ndim
        return 1

    n_used = sum(consumed(k) for k in key if k is not Ellipsis)
    basic, advanced = [], []
    for k in key:
        if k is Ellipsis:
            basic += [slice(None)] * (ndim - n_used)
            advanced += [slice(None)] * (ndim - n_used)
        elif isinstance(k, np.ndarray):
            basic += [slice(None)] * consumed(k)
            advanced.append(k)
        elif isinstance(k, bool):
            basic.append(None)
            advanced.append(np.array([0]) if k else np.zeros(0, np.int64))
        elif isinstance(k, int):
            basic.append(k)
        else:
            basic.append(k)
            advanced.append(slice(None))
    # The trailing Ellipsis keeps NumPy from returning a scalar copy.
    basic = tuple(basic) + (Ellipsis,)
    has_arrays = any(isinstance(k, np.ndarray) for k in advanced)
    return basic, tuple(advanced) if has_arrays else Ellipsis


def pytorch_getitem(a, key):
    basic, advanced = split_key(a.ndim, key)
    return a[basic][advanced]


def pytorch_setitem(a, key, value):
    basic, advanced = split_key(a.ndim, key)
    view = a[basic]
    view[advanced] = value


@st.composite
def index_keys(draw, shape, arrays=True, newaxis=True):
    """A random index expression over ``shape``: ints, slices with steps,
    None, one Ellipsis, bool scalars, and integer arrays (broadcasting
    together) or one bool mask."""
    dims = list(shape)
    key, pos, n_arrays = [], 0, 0
    use_mask = draw(st.booleans())
    index_shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
    kinds = ["int", "slice", "stop", "ellipsis"]
    kinds += ["array", "array"] if arrays else []
    kinds += ["none"] if newaxis else []
    while pos < len(dims):
        kind = draw(st.sampled_from(kinds))
        size = dims[pos]
        # After an Ellipsis the key must reach the last dim, or the Ellipsis
        # would absorb the rest and shift the indices after it.
        if kind == "stop" and not any(k is Ellipsis for k in key):
            break
        if kind == "none":
            key.append(None)
        elif kind == "ellipsis" and not any(k is Ellipsis for k in key):
            key.append(Ellipsis)
            pos += draw(st.integers(0, len(dims) - pos))
        elif kind == "int" and size > 0:
            key.append(draw(st.integers(-size, size - 1)))
            pos += 1
        elif kind == "array" and use_mask and n_arrays == 0:
            n = draw(st.integers(1, min(2, len(dims) - pos)))
            mask_shape = tuple(dims[pos : pos + n])
            count = math.prod(mask_shape)
            flat = draw(st.lists(st.booleans(), min_size=count, max_size=count))
            key.append(np.array(flat, dtype=bool).reshape(mask_shape))
            n_arrays += 1
            pos += n
        elif kind == "array" and not use_mask and size > 0:
            # Every array broadcasts to index_shape: some of its dims are 1.
            arr_shape = [draw(st.sampled_from([d, 1])) for d in index_shape]
            count = math.prod(arr_shape)
            values = draw(st.lists(st.integers(-size, size - 1), min_size=count, max_size=count))
            key.append(np.array(values, dtype=np.int64).reshape(arr_shape))
            n_arrays += 1
            pos += 1
        else:
            bound = st.one_of(st.none(), st.integers(-7, 7))
            step = st.one_of(st.none(), st.integers(1, 3))
            key.append(slice(draw(bound), draw(bound), draw(step)))
            pos += 1
    if newaxis and n_arrays == 0 and draw(st.booleans()):
        key.insert(draw(st.integers(0, len(key))), draw(st.booleans()))
    return tuple(key)


def to_rtorch(key):
    return tuple(rtorch.from_numpy(k.copy()) if isinstance(k, np.ndarray) else k for k in key)


def shape_and_key(**kw):
    return shapes.flatmap(lambda s: st.tuples(st.just(s), index_keys(s, **kw)))


@given(shape_and_key())
def test_getitem_matches_numpy(args):
    shape, key = args
    x, a = make(shape)
    assert_same(x[to_rtorch(key)], pytorch_getitem(a, key))


@given(shape_and_key(arrays=False, newaxis=False))
def test_basic_getitem_is_view_with_numpy_layout(args):
    shape, key = args
    x, a = make(shape)
    r = x[key]
    # With an Ellipsis NumPy returns a view even for a 0-d result.
    expected = a[key] if any(k is Ellipsis for k in key) else a[key + (Ellipsis,)]
    assert_same_layout(r, expected, a)
    assert r._is_view_of(x)


@given(shape_and_key())
def test_setitem_scalar_matches_numpy(args):
    shape, key = args
    x, a = make(shape)
    x[to_rtorch(key)] = -5
    pytorch_setitem(a, key, -5)
    assert_same(x, a)


@given(shape_and_key())
def test_setitem_tensor_value_broadcasts_like_numpy(args):
    shape, key = args
    x, a = make(shape)
    target = pytorch_getitem(a, key)
    # Which element each indexed position is; PyTorch leaves the winner of
    # repeated positions unspecified, so only keys without repeats are used.
    positions = pytorch_getitem(np.arange(a.size).reshape(a.shape), key)
    assume(len(np.unique(positions)) == positions.size)
    # A value shaped like the result's last dim broadcasts over the rest.
    value = np.arange(100, 100 + (target.shape[-1] if target.ndim else 1), dtype=np.int64)
    value = value.reshape(target.shape[-1:])
    x[to_rtorch(key)] = rtorch.from_numpy(value.copy())
    pytorch_setitem(a, key, value)
    assert_same(x, a)


@given(shapes.filter(lambda s: len(s) >= 2), st.data())
def test_diagonal_matches_numpy(shape, data):
    x, a = make(shape)
    nd = len(shape)
    d1 = data.draw(st.integers(0, nd - 1))
    d2 = data.draw(st.integers(0, nd - 1).filter(lambda d: d != d1))
    offset = data.draw(st.integers(-6, 6))
    d = x.diagonal(offset, d1, d2)
    assert_same_layout(d, np.diagonal(a, offset, d1, d2), a)
    assert d._is_view_of(x)


@given(shapes.filter(lambda s: len(s) >= 1), st.data())
def test_unfold_matches_numpy_sliding_window(shape, data):
    x, a = make(shape)
    dim = data.draw(st.integers(0, len(shape) - 1))
    size = data.draw(st.integers(0, shape[dim]))
    step = data.draw(st.integers(1, 3))
    u = x.unfold(dim, size, step)
    windows = np.lib.stride_tricks.sliding_window_view(a, size, axis=dim)
    expected = windows[(slice(None),) * dim + (slice(None, None, step),)]
    assert_same_layout(u, expected, a)
