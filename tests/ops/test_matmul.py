"""Matrix products against NumPy: every matmul rank combination, batch
broadcasting, strided operands, integer GEMM, the fused add* forms and
PyTorch's error messages."""

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rtorch

RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def t(a):
    return rtorch.from_numpy(np.ascontiguousarray(a))


def close(out, expected, dtype=np.float64):
    tol = 1e-4 if dtype == np.float32 else 1e-10
    got = out.numpy()
    assert got.shape == np.shape(expected)
    assert got.dtype == np.asarray(expected).dtype
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "sa,sb",
    [
        ((3,), (3,)),  # dot
        ((2, 3), (3,)),  # mv
        ((3,), (3, 4)),  # vector @ matrix
        ((2, 3), (3, 4)),  # mm
        ((5, 2, 3), (3,)),  # batched mv, folded
        ((3,), (5, 3, 4)),  # vector @ batch
        ((5, 2, 3), (3, 4)),  # batch @ matrix
        ((2, 3), (5, 3, 4)),  # matrix @ batch
        ((5, 2, 3), (5, 3, 4)),  # bmm
        ((2, 1, 2, 3), (5, 3, 4)),  # broadcast batch dims
        ((1, 2, 3), (6, 1, 3, 4)),
        ((0, 2, 3), (3, 4)),  # empty batch
        ((2, 0), (0, 3)),  # empty contraction gives zeros
        ((0, 3), (3, 2)),
        ((2, 3, 0), (0, 4)),  # folded batch with empty contraction
    ],
)
def test_matmul_rank_combinations_match_numpy(sa, sb, dtype):
    a, b = rand(*sa, dtype=dtype), rand(*sb, dtype=dtype)
    close(rtorch.matmul(t(a), t(b)), np.matmul(a, b), dtype)
    close(t(a) @ t(b), a @ b, dtype)


def test_dot_returns_0d():
    out = rtorch.tensor([1.0, 2.0, 3.0]) @ rtorch.tensor([4.0, 5.0, 6.0])
    assert out.shape == () and out.item() == 32.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transposed_and_strided_operands_need_no_copy(dtype):
    a, b = rand(7, 5, dtype=dtype), rand(6, 7, dtype=dtype)
    ta, tb = t(a), t(b)
    close(ta.t() @ tb.t(), a.T @ b.T, dtype)
    big = rand(10, 12, dtype=dtype)
    tbig = t(big)
    close(tbig[::2, 1::3] @ tbig[:4, ::3].t(), big[::2, 1::3] @ big[:4, ::3].T, dtype)
    # Batched transposes (mT) and expanded (stride-0) operands.
    x = rand(3, 4, 5, dtype=dtype)
    close(t(x).mT @ t(x), np.swapaxes(x, -1, -2) @ x, dtype)
    row = rand(1, 5, dtype=dtype)
    close(t(row).expand(4, 5) @ t(x[0]).t(), np.broadcast_to(row, (4, 5)) @ x[0].T, dtype)


def test_batch_times_matrix_folds_strided_batches():
    x, w = rand(4, 5, 3), rand(3, 2)
    close(t(x).transpose(0, 1) @ t(w), np.swapaxes(x, 0, 1) @ w)
    close(t(x)[:, ::2] @ t(w), x[:, ::2] @ w)
    close(t(x).mT.mT @ t(w)[:, 0], x @ w[:, 0])


def test_large_matmul_uses_threads_and_matches_numpy():
    a, b = rand(300, 200, dtype=np.float32), rand(200, 250, dtype=np.float32)
    close(t(a) @ t(b), a @ b, np.float32)
    x, y = rand(8, 64, 64), rand(8, 64, 64)
    close(rtorch.bmm(t(x), t(y)), x @ y)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.int8, np.uint8])
def test_integer_matmul(dtype):
    a = RNG.integers(0, 5, (4, 3)).astype(dtype)
    b = RNG.integers(0, 5, (3, 2)).astype(dtype)
    out = t(a) @ t(b)
    assert out.dtype == rtorch.from_numpy(a).dtype
    np.testing.assert_array_equal(out.numpy(), (a @ b).astype(dtype))
    v = RNG.integers(0, 5, (3,)).astype(dtype)
    np.testing.assert_array_equal(rtorch.mv(t(a), t(v)).numpy(), (a @ v).astype(dtype))


def test_int64_matmul_wraps_on_overflow():
    a = rtorch.tensor([[2**62, 2**62]])
    b = rtorch.tensor([[2], [2]])
    assert (a @ b).tolist() == [[0]]


@pytest.mark.parametrize("dtype", [rtorch.float16, rtorch.bfloat16])
def test_half_matmul_accumulates_in_float32(dtype):
    a, b = rand(4, 8, dtype=np.float32), rand(8, 3, dtype=np.float32)
    ta, tb = t(a).to(dtype), t(b).to(dtype)
    out = ta @ tb
    assert out.dtype is dtype
    ref = ta.to(rtorch.float32).numpy() @ tb.to(rtorch.float32).numpy()
    np.testing.assert_allclose(out.to(rtorch.float32).numpy(), ref, rtol=2e-2, atol=2e-2)


def test_mm_bmm_mv_dot_vdot_functions_and_methods():
    a, b = rand(2, 3), rand(3, 4)
    close(rtorch.mm(t(a), t(b)), a @ b)
    close(t(a).mm(t(b)), a @ b)
    x, y = rand(4, 2, 3), rand(4, 3, 5)
    close(rtorch.bmm(t(x), t(y)), x @ y)
    v = rand(3)
    close(rtorch.mv(t(a), t(v)), a @ v)
    close(t(a).mv(t(v)), a @ v)
    w = rand(3)
    close(rtorch.dot(t(v), t(w)), np.dot(v, w))
    close(rtorch.vdot(t(v), t(w)), np.vdot(v, w))
    close(t(v).dot(t(w)), np.dot(v, w))
    close(rtorch.linalg.matmul(t(a), t(b)), a @ b)


def test_rmatmul_and_imatmul_rebinds():
    a = rtorch.ones(2, 2)
    b = rtorch.full((2, 2), 2.0)
    assert a.__rmatmul__(b).tolist() == [[4.0, 4.0], [4.0, 4.0]]
    original = a
    a @= b
    assert a is not original
    assert original.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert a.tolist() == [[4.0, 4.0], [4.0, 4.0]]
    with pytest.raises(TypeError):
        rtorch.ones(2, 2) @ 3  # noqa: B018


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_addmm_family_beta_alpha(dtype):
    inp, m1, m2 = rand(2, 4, dtype=dtype), rand(2, 3, dtype=dtype), rand(3, 4, dtype=dtype)
    close(rtorch.addmm(t(inp), t(m1), t(m2)), inp + m1 @ m2, dtype)
    close(rtorch.addmm(t(inp), t(m1), t(m2), beta=0.5, alpha=2.0), 0.5 * inp + 2 * m1 @ m2, dtype)
    row = rand(4, dtype=dtype)
    close(t(row).addmm(t(m1), t(m2), alpha=-1), row - m1 @ m2, dtype)
    v = rand(3, dtype=dtype)
    vi = rand(2, dtype=dtype)
    close(rtorch.addmv(t(vi), t(m1), t(v), beta=2, alpha=3), 2 * vi + 3 * (m1 @ v), dtype)
    b1, b2 = rand(5, 2, 3, dtype=dtype), rand(5, 3, 4, dtype=dtype)
    bi = rand(5, 2, 4, dtype=dtype)
    close(rtorch.baddbmm(t(bi), t(b1), t(b2), beta=0.5, alpha=2), 0.5 * bi + 2 * (b1 @ b2), dtype)
    close(rtorch.addbmm(t(inp), t(b1), t(b2)), inp + (b1 @ b2).sum(0), dtype)
    close(rtorch.addbmm(t(inp), t(b1), t(b2), beta=0, alpha=0.5), 0.5 * (b1 @ b2).sum(0), dtype)


def test_addmm_beta_zero_ignores_nan_input():
    inp = rtorch.full((2, 2), float("nan"))
    out = rtorch.addmm(inp, rtorch.eye(2), rtorch.eye(2), beta=0)
    assert out.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_addmm_integer_rejects_float_alpha():
    i = rtorch.ones(2, 2, dtype=rtorch.int64)
    assert rtorch.addmm(i, i, i, beta=2, alpha=3).tolist() == [[8, 8], [8, 8]]
    with pytest.raises(RuntimeError, match="argument alpha must not be a floating point number"):
        rtorch.addmm(i, i, i, alpha=0.5)


@pytest.mark.parametrize(
    "fn,sa,sb,msg",
    [
        (rtorch.matmul, (2, 3), (4, 5), "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
        (rtorch.mm, (2, 3), (4, 5), "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
        (rtorch.matmul, (3,), (4, 5), "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x5)"),
        (
            rtorch.matmul,
            (2, 2, 3),
            (4, 5),
            "mat1 and mat2 shapes cannot be multiplied (4x3 and 4x5)",
        ),
        (
            rtorch.matmul,
            (3,),
            (4,),
            "inconsistent tensor size, expected tensor [3] and src [4] to have the same number "
            "of elements, but got 3 and 4 elements respectively",
        ),
        (rtorch.matmul, (2, 3), (4,), "size mismatch, got input (2), mat (2x3), vec (4)"),
        (
            rtorch.bmm,
            (2, 2, 3),
            (2, 4, 5),
            "Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [2, 4].",
        ),
        (
            rtorch.matmul,
            (2, 2, 3),
            (2, 4, 5),
            "Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [2, 4].",
        ),
        (
            rtorch.matmul,
            (2, 2, 3),
            (3, 3, 5),
            "The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0",
        ),
        (rtorch.mm, (2, 3, 1), (3, 4), "self must be a matrix"),
        (rtorch.mm, (2, 3), (3,), "mat2 must be a matrix"),
        (rtorch.bmm, (2, 3), (2, 3, 4), "batch1 must be a 3D tensor"),
        (rtorch.dot, (2, 3), (3,), "1D tensors expected, but got 2D and 1D tensors"),
        (rtorch.mv, (2, 3), (3, 1), "vector + matrix @ vector expected, got 1, 2, 2"),
        (
            rtorch.matmul,
            (),
            (3,),
            "both arguments to matmul need to be at least 1D, but they are 0D and 1D",
        ),
    ],
)
def test_shape_errors_use_pytorch_messages(fn, sa, sb, msg):
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        fn(rtorch.ones(*sa), rtorch.ones(*sb))


def test_dtype_errors():
    a, b = rtorch.ones(2, 2), rtorch.ones(2, 2, dtype=rtorch.float64)
    with pytest.raises(
        RuntimeError, match="expected m1 and m2 to have the same dtype, but got: float != double"
    ):
        a @ b  # noqa: B018
    with pytest.raises(
        RuntimeError,
        match="dot : expected both vectors to have same dtype, but found Float and Double",
    ):
        rtorch.dot(rtorch.ones(2), rtorch.ones(2, dtype=rtorch.float64))
    with pytest.raises(RuntimeError, match="not implemented for 'Bool'"):
        rtorch.ones(2, 2, dtype=rtorch.bool) @ rtorch.ones(2, 2, dtype=rtorch.bool)  # noqa: B018


@given(
    batch_a=st.lists(st.integers(1, 3), max_size=2),
    batch_b=st.lists(st.integers(1, 3), max_size=2),
    m=st.integers(1, 4),
    k=st.integers(0, 4),
    n=st.integers(1, 4),
    ones=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_batch_broadcasting_property(batch_a, batch_b, m, k, n, ones):
    # Randomly set some batch dims to 1 so that they broadcast.
    batch_a = [1 if o else d for d, o in zip(batch_a, ones, strict=False)]
    batch_b = [1 if o else d for d, o in zip(batch_b, ones[2:], strict=False)]
    try:
        np.broadcast_shapes(tuple(batch_a), tuple(batch_b))
    except ValueError:
        return
    a, b = rand(*batch_a, m, k), rand(*batch_b, k, n)
    close(t(a) @ t(b), a @ b)


def test_matmul_out_argument():
    a, b = rand(2, 3), rand(3, 4)
    out = rtorch.empty(2, 4, dtype=rtorch.float64)
    res = rtorch.matmul(t(a), t(b), out=out)
    assert res is out
    close(out, a @ b)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_threaded_matmul_works_in_forked_child():
    import os

    a = rand(256, 256, dtype=np.float32)
    ta = t(a)
    expected = a @ a
    close(ta @ ta, expected, np.float32)  # threads ran in the parent first
    pid = os.fork()
    if pid == 0:  # child: no thread pool to inherit, so no hang
        ok = np.allclose((ta @ ta).numpy(), expected, rtol=1e-4, atol=1e-3)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


# --- products split over threads ---
# A large product is cut into row or column blocks, one `gemm` call each,
# that the threads claim from a counter; these shapes sit on and around the
# cut rules (blocks of 16 rows or columns, 2 column blocks per
# thread, the 256-column and 8192-column limits, batches that are not a
# multiple of the thread count).


@pytest.fixture(params=[2, 3, 4])
def threads(request):
    before = rtorch.get_num_threads()
    rtorch.set_num_threads(request.param)
    yield request.param
    rtorch.set_num_threads(before)


def check_split(a, b, dtype=np.float32, ta=False, tb=False):
    """`a @ b` with row-major or transposed storage against NumPy in float64."""
    x = t(np.swapaxes(a, -1, -2)).mT if ta else t(a)
    y = t(np.swapaxes(b, -1, -2)).mT if tb else t(b)
    got = (x @ y).numpy()
    assert got.dtype == dtype and got.shape == np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (
        a.shape[-2],
        b.shape[-1],
    )
    ref = a.astype(np.float64) @ b.astype(np.float64)
    tol = 2e-4 * np.sqrt(a.shape[-1]) if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "m,k,n",
    [
        (128, 128, 128),  # exactly the parallel threshold
        (300, 200, 255),  # just under the width that cuts columns of any product
        (200, 150, 256),
        (97, 211, 257),  # a last block of one column
        (513, 67, 640),
        (1000, 33, 130),  # tall and narrow: rows
        (48, 700, 1100),  # short and wide: columns, several per thread
        (4, 32, 40000),  # column blocks capped at 8192
        (1, 4096, 1024),  # one row
        (4096, 1024, 1),  # matrix @ vector shape
    ],
)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_split_products_match_numpy(threads, m, k, n, ta, tb):
    check_split(rand(m, k, dtype=np.float32), rand(k, n, dtype=np.float32), ta=ta, tb=tb)


@pytest.mark.parametrize("ta", [False, True])
def test_split_products_float64_and_strided_views(threads, ta):
    check_split(rand(333, 190, dtype=np.float64), rand(190, 301), np.float64, ta=ta)
    big = rand(700, 800, dtype=np.float32)
    tb = t(big)
    x, y = tb[::2, 1::3], tb[:267, ::2]  # steps in both dims of both operands
    np.testing.assert_allclose(
        (x @ y).numpy(), big[::2, 1::3].astype(np.float64) @ big[:267, ::2], rtol=1e-3, atol=1e-3
    )
    np.testing.assert_allclose(
        (y.t() @ x.t()).numpy(), (big[::2, 1::3] @ big[:267, ::2]).T, rtol=1e-3, atol=1e-3
    )


@pytest.mark.parametrize(
    "sa,sb",
    [
        ((3, 300, 200), (3, 200, 260)),  # 3 products on 2 or 4 threads: blocks of each
        ((5, 257, 129), (129, 300)),  # batch @ matrix folds into one product
        ((3, 1, 160, 96), (1, 2, 96, 300)),  # broadcast batch dims, 6 products
        ((2, 200, 64), (2, 64, 1000)),  # as many products as threads
        ((37, 64, 48), (37, 48, 64)),  # many small products, grouped per task
        ((32, 128, 64), (32, 64, 128)),  # attention scores shape
    ],
)
def test_split_batches_match_numpy(threads, sa, sb):
    check_split(rand(*sa, dtype=np.float32), rand(*sb, dtype=np.float32))
    check_split(rand(*sa, dtype=np.float32), rand(*sb, dtype=np.float32), ta=True, tb=True)


def test_split_fused_and_integer_products(threads):
    inp, m1, m2 = rand(300, 1, dtype=np.float32), rand(300, 180), rand(180, 400)
    m1, m2 = m1.astype(np.float32), m2.astype(np.float32)
    got = rtorch.addmm(t(inp), t(m1), t(m2), beta=0.5, alpha=2.0).numpy()
    np.testing.assert_allclose(
        got, 0.5 * inp + 2 * (m1.astype(np.float64) @ m2), rtol=1e-3, atol=1e-3
    )
    b1, b2, bi = rand(3, 150, 140), rand(3, 140, 280), rand(3, 150, 280)
    close(rtorch.baddbmm(t(bi), t(b1), t(b2), beta=-1, alpha=0.5), 0.5 * (b1 @ b2) - bi)
    a = RNG.integers(-9, 9, (210, 170)).astype(np.int32)
    b = RNG.integers(-9, 9, (170, 300)).astype(np.int32)
    np.testing.assert_array_equal((t(a) @ t(b)).numpy(), a @ b)
    np.testing.assert_array_equal((t(a.T).t() @ t(b)).numpy(), a @ b)


def _np_relu_addmm(inp, m1, m2, beta=1.0, alpha=1.0):
    return np.maximum(beta * inp + alpha * (m1.astype(np.float64) @ m2), 0)


@pytest.mark.parametrize("alpha", [1.0, -2.0])
def test_addmm_activation_float32_bias_relu_matches_numpy(alpha):
    # The fused path: float32, a 1-D bias, beta 1, no autograd.
    rng = np.random.default_rng(3)
    m1, m2 = rng.standard_normal((70, 33)), rng.standard_normal((33, 45))
    bias = rng.standard_normal(45)
    out = rtorch._addmm_activation(
        t(bias).float(), t(m1).float(), t(m2).float().t().contiguous().t(), alpha=alpha
    )
    assert out.dtype == rtorch.float32 and out.shape == (70, 45)
    ref = _np_relu_addmm(bias, m1.astype(np.float32), m2.astype(np.float32), alpha=alpha)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)
    assert (out.numpy() >= 0).all()
    # The same values as addmm then relu, bit for bit.
    two_pass = rtorch.addmm(t(bias).float(), t(m1).float(), t(m2).float(), alpha=alpha).relu()
    assert np.array_equal(out.numpy(), two_pass.numpy())


def test_addmm_activation_relu_rule_for_nan_and_negative_zero():
    bias = rtorch.tensor([float("nan"), -0.0, -1.0, 2.0])
    out = rtorch._addmm_activation(bias, rtorch.zeros(2, 3), rtorch.zeros(3, 4))
    a = out.numpy()
    assert np.isnan(a[:, 0]).all()
    assert (a[:, 1] == 0).all() and not np.signbit(a[:, 1]).any()
    assert a[:, 2:].tolist() == [[0.0, 2.0], [0.0, 2.0]]


@pytest.mark.parametrize("case", ["float64", "2-D input", "beta", "gelu"])
def test_addmm_activation_other_cases_match_numpy(case):
    # Everything the fused pass does not take: addmm, then the activation.
    rng = np.random.default_rng(4)
    m1, m2 = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    inp = rng.standard_normal((5, 4) if case == "2-D input" else (4,))
    dt = rtorch.float64 if case == "float64" else rtorch.float32
    beta = 0.5 if case == "beta" else 1.0
    out = rtorch._addmm_activation(
        t(inp).to(dt), t(m1).to(dt), t(m2).to(dt), beta=beta, use_gelu=case == "gelu"
    )
    pre = beta * inp + m1 @ m2
    if case == "gelu":
        erf = np.vectorize(math.erf)
        ref = 0.5 * pre * (1 + erf(pre / math.sqrt(2)))
    else:
        ref = np.maximum(pre, 0)
    assert out.dtype == dt
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_addmm_activation_gradients_and_errors():
    rng = np.random.default_rng(5)
    args = [t(rng.standard_normal(s)).requires_grad_() for s in [(4,), (3, 2), (2, 4)]]
    assert rtorch.autograd.gradcheck(lambda i, a, b: rtorch._addmm_activation(i, a, b), args)
    assert rtorch.autograd.gradcheck(
        lambda i, a, b: rtorch._addmm_activation(i, a, b, use_gelu=True), args
    )
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        rtorch._addmm_activation(rtorch.zeros(4), rtorch.zeros(3, 2), rtorch.zeros(3, 4))
