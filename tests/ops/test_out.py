"""``out=`` on function forms: the result lands in the given tensor(s) with
PyTorch's resize, cast and autograd rules."""

import re

import numpy as np
import pytest

import rtorch

X = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)


@pytest.mark.parametrize(
    "name,args,ref",
    [
        ("sum", (1,), lambda x: x.sum(1)),
        ("mean", (1,), lambda x: x.mean(1)),
        ("amax", (1,), lambda x: x.max(1)),
        ("prod", (1,), lambda x: x.prod(1)),
        ("logsumexp", (1,), lambda x: np.log(np.exp(x).sum(1))),
        ("cumsum", (1,), lambda x: x.cumsum(1)),
        ("exp", (), np.exp),
        ("clamp", (-0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5)),
        ("index_select", (0, rtorch.tensor([2, 0])), lambda x: x[[2, 0]]),
    ],
)
def test_out_receives_the_result_and_is_returned(name, args, ref):
    want = ref(X)
    out = rtorch.empty(want.shape)
    got = getattr(rtorch, name)(rtorch.from_numpy(X), *args, out=out)
    assert got is out
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-5, atol=1e-6)


def test_tuple_out_for_values_and_indices():
    values, indices = rtorch.empty(3), rtorch.empty(3, dtype=rtorch.int64)
    r = rtorch.max(rtorch.from_numpy(X), 1, out=(values, indices))
    assert r.values is values and r.indices is indices
    np.testing.assert_array_equal(indices.numpy(), X.argmax(1))
    with pytest.raises(TypeError, match="must be tuple of 2 Tensors"):
        rtorch.sort(rtorch.from_numpy(X), out=rtorch.empty(3))


def test_out_is_resized_with_pytorch_warning_unless_empty():
    out = rtorch.empty(0)
    rtorch.sum(rtorch.from_numpy(X), 0, out=out)
    assert out.shape == (4,)
    out = rtorch.empty(2, 2)
    with pytest.warns(
        UserWarning,
        match=re.escape(
            "An output with one or more elements was resized since it had shape [2, 2]"
        ),
    ):
        rtorch.sum(rtorch.from_numpy(X), 0, out=out)
    assert out.shape == (4,)


@pytest.mark.parametrize(
    "fn",
    [
        lambda ts, out: rtorch.cat(ts, out=out),
        lambda ts, out: rtorch.stack(ts, out=out).reshape(-1, 3),
        lambda ts, out: rtorch.vstack(ts, out=out),
        lambda ts, out: rtorch.matmul(ts[0], rtorch.eye(3), out=out),
        lambda ts, out: rtorch.pow(ts[0], 1, out=out),
    ],
)
def test_joins_and_operator_functions_follow_the_same_out_rules(fn):
    ts = [rtorch.from_numpy(X[:2, :3].copy()), rtorch.from_numpy(X[1:3, :3].copy())]
    out = rtorch.empty(5)
    with pytest.warns(UserWarning, match="was resized since it had shape \\[5\\]"):
        got = fn(ts, out)
    assert got.data_ptr() == out.data_ptr()
    np.testing.assert_array_equal(got.numpy().reshape(-1)[:6], X[:2, :3].reshape(-1))
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type Long"):
        fn(ts, rtorch.empty(0, dtype=rtorch.int64))
    ts[0].requires_grad_()
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        fn(ts, rtorch.empty(0))


def test_out_casts_only_where_pytorch_allows():
    out = rtorch.empty(3, dtype=rtorch.float64)
    rtorch.sum(rtorch.from_numpy(X), 1, out=out)
    np.testing.assert_allclose(out.numpy(), X.sum(1), rtol=1e-6)
    with pytest.raises(
        RuntimeError, match="result type Float can't be cast to the desired output type Long"
    ):
        rtorch.sum(rtorch.from_numpy(X), 1, out=rtorch.empty(3, dtype=rtorch.int64))


def test_out_refuses_inputs_that_require_grad():
    x = rtorch.from_numpy(X).requires_grad_()
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        rtorch.exp(x, out=rtorch.empty(3, 4))
    with rtorch.no_grad():
        rtorch.exp(x, out=rtorch.empty(3, 4))


def test_views_take_no_out():
    with pytest.raises(TypeError):
        rtorch.transpose(rtorch.from_numpy(X), 0, 1, out=rtorch.empty(4, 3))


def test_inplace_addmm_family_matches_out_of_place():
    rng = np.random.default_rng(1)
    c, m1, m2 = (rtorch.from_numpy(rng.standard_normal(s)) for s in [(3, 3), (3, 4), (4, 3)])
    want = c.addmm(m1, m2, beta=0.5, alpha=2.0)
    got = c.clone()
    assert got.addmm_(m1, m2, beta=0.5, alpha=2.0) is got
    np.testing.assert_allclose(got.numpy(), want.numpy())
    b1, b2 = (
        rtorch.randn(2, 3, 4, dtype=rtorch.float64),
        rtorch.randn(2, 4, 3, dtype=rtorch.float64),
    )
    for name in ("addbmm", "baddbmm"):
        base = c if name == "addbmm" else c.expand(2, 3, 3).clone()
        got = base.clone()
        getattr(got, name + "_")(b1, b2)
        np.testing.assert_allclose(got.numpy(), getattr(base, name)(b1, b2).numpy())
    v = rtorch.ones(3, dtype=rtorch.float64)
    v.addmv_(m1, rtorch.ones(4, dtype=rtorch.float64))
    np.testing.assert_allclose(v.numpy(), 1 + m1.numpy().sum(1))
    with pytest.raises(RuntimeError, match=re.escape("the result has shape [3, 3]")):
        rtorch.ones(3, dtype=rtorch.float64).addmm_(m1, m2)


def test_nuclear_norm_through_norm():
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    np.testing.assert_allclose(
        rtorch.norm(rtorch.from_numpy(x[0]), p="nuc").item(), np.linalg.norm(x[0], "nuc")
    )
    got = rtorch.from_numpy(x).norm(p="nuc", dim=(1, 2), keepdim=True)
    assert got.shape == (2, 1, 1)
    np.testing.assert_allclose(got.numpy().ravel(), [np.linalg.norm(m, "nuc") for m in x])
    with pytest.raises(RuntimeError, match="p='nuc' needs a 2-D input"):
        rtorch.from_numpy(x).norm(p="nuc")


@pytest.mark.parametrize("offset", [0, 1, 3, 4, 15])
@pytest.mark.parametrize("threads", [1, 2])
def test_flat_kernels_into_buffers_at_any_alignment(offset, threads):
    # The flat kernels split at the output's first cache-line boundary; a
    # buffer starting anywhere inside a line must still get every element.
    n = 300_001  # large enough to split over threads
    rng = np.random.default_rng(offset)
    a = rng.standard_normal(n + 16).astype(np.float32)[offset : offset + n]
    b = rng.standard_normal(n + 16).astype(np.float32)[16 - offset : 16 - offset + n]
    buf = np.full(n + 32, np.nan, np.float32)
    before = rtorch.get_num_threads()
    rtorch.set_num_threads(threads)
    try:
        out = rtorch.from_numpy(buf[offset : offset + n])
        rtorch.add(rtorch.from_numpy(a), rtorch.from_numpy(b), alpha=2, out=out)
        np.testing.assert_allclose(buf[offset : offset + n], a + 2 * b, rtol=1e-6)
        rtorch.mul(rtorch.from_numpy(a), 3.0, out=out)
        np.testing.assert_allclose(buf[offset : offset + n], a * 3, rtol=1e-6)
        rtorch.exp(rtorch.from_numpy(a), out=out)
        np.testing.assert_allclose(buf[offset : offset + n], np.exp(a), rtol=1e-5)
    finally:
        rtorch.set_num_threads(before)
    assert np.isnan(buf[:offset]).all() and np.isnan(buf[offset + n :]).all()
