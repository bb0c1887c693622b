"""rtorch.linalg against NumPy: values where they are unique (inv, det,
solve, singular values, eigenvalues, norms) and invariants where signs may
differ (A = QR, A = U S Vh, orthogonality, A V = V diag(w)); batched,
non-contiguous and empty inputs; LinAlgError and PyTorch's messages."""

import math
import re

import numpy as np
import pytest

import rtorch
from rtorch import linalg as LA

RNG = np.random.default_rng(1)
DTYPES = [np.float32, np.float64]


def rand(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def t(a):
    return rtorch.from_numpy(np.ascontiguousarray(a))


def tol(dtype):
    return 1e-4 if dtype == np.float32 else 1e-10


def close(got, expected, dtype=np.float64, scale=1.0):
    got = got.numpy() if isinstance(got, rtorch.Tensor) else got
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=tol(dtype) * scale, atol=tol(dtype) * scale)


def spd(*batch, n=4, dtype=np.float64):
    x = rand(*batch, n, n)
    return (x @ np.swapaxes(x, -1, -2) + n * np.eye(n)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 4), (3, 5, 5), (2, 2, 3, 3), (1, 1)])
def test_inv_det_slogdet_match_numpy(shape, dtype):
    a = rand(*shape, dtype=dtype) + 3 * np.eye(shape[-1], dtype=dtype)
    inv = LA.inv(t(a))
    assert inv.dtype == t(a).dtype
    close(inv, np.linalg.inv(a.astype(np.float64)), dtype, 10)
    close(LA.det(t(a)), np.linalg.det(a.astype(np.float64)), dtype, 10)
    close(rtorch.det(t(a)), np.linalg.det(a.astype(np.float64)), dtype, 10)
    close(rtorch.inverse(t(a)), np.linalg.inv(a.astype(np.float64)), dtype, 10)
    sign, logabs = LA.slogdet(t(a))
    es, el = np.linalg.slogdet(a.astype(np.float64))
    close(sign, es, dtype)
    close(logabs, el, dtype, 10)
    res = rtorch.slogdet(t(a))
    close(res.logabsdet, el, dtype, 10)


def test_inv_of_non_contiguous_input():
    a = rand(4, 4) + 4 * np.eye(4)
    close(LA.inv(t(a).t()), np.linalg.inv(a.T))
    big = rand(6, 6) + 6 * np.eye(6)
    close(LA.inv(t(big)[::2, ::2]), np.linalg.inv(big[::2, ::2]))


def test_det_of_singular_and_empty_matrices():
    assert LA.det(rtorch.zeros(3, 3)).item() == 0.0
    assert LA.det(rtorch.zeros(0, 0)).item() == 1.0
    sign, logabs = LA.slogdet(rtorch.zeros(2, 2))
    assert sign.item() == 0.0 and logabs.item() == -math.inf
    assert LA.inv(rtorch.zeros(2, 0, 0)).shape == (2, 0, 0)


def test_singular_inverse_raises_linalg_error():
    assert issubclass(LA.LinAlgError, RuntimeError)
    a = rtorch.tensor([[1.0, 2.0], [2.0, 4.0]])
    msg = (
        "linalg.inv: The diagonal element 2 is zero, the inversion could not be completed "
        "because the input matrix is singular."
    )
    with pytest.raises(LA.LinAlgError, match=re.escape(msg)):
        LA.inv(a)
    batch = rtorch.stack([rtorch.eye(2), a]) if hasattr(rtorch, "stack") else None
    if batch is not None:
        with pytest.raises(LA.LinAlgError, match=re.escape("(Batch element 1)")):
            LA.inv(batch)
    with pytest.raises(LA.LinAlgError, match="input matrix is singular"):
        LA.solve(a, rtorch.ones(2))


@pytest.mark.parametrize(
    "fn,arg,msg",
    [
        (LA.inv, rtorch.ones(3), "linalg.inv: The input tensor A must have at least 2 dimensions."),
        (
            LA.inv,
            rtorch.ones(2, 3),
            "linalg.inv: A must be batches of square matrices, but they are 2 by 3 matrices",
        ),
        (
            LA.inv,
            rtorch.ones(2, 2, dtype=rtorch.int64),
            "linalg.inv: Expected a floating point or complex tensor as input. Got Long",
        ),
        (
            LA.det,
            rtorch.ones(2, 2, dtype=rtorch.int32),
            "linalg.det: Expected a floating point or complex tensor as input. Got Int",
        ),
        (
            LA.cholesky,
            rtorch.ones(2, 2, dtype=rtorch.float16),
            "linalg.cholesky: Low precision dtypes not supported. Got Half",
        ),
        (
            LA.svd,
            rtorch.ones(2, 2, dtype=rtorch.int64),
            "linalg.svd: Expected a floating point or complex tensor as input. Got Long",
        ),
    ],
)
def test_argument_errors(fn, arg, msg):
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        fn(arg)


@pytest.mark.parametrize("dtype", DTYPES)
def test_solve_matrix_vector_batched_and_left_false(dtype):
    a = rand(3, 4, 4, dtype=dtype) + 4 * np.eye(4, dtype=dtype)
    b = rand(3, 4, 2, dtype=dtype)
    close(LA.solve(t(a), t(b)), np.linalg.solve(a, b), dtype, 10)
    v = rand(4, dtype=dtype)
    close(LA.solve(t(a[0]), t(v)), np.linalg.solve(a[0], v), dtype, 10)
    bv = rand(3, 4, dtype=dtype)  # batch of vectors
    close(LA.solve(t(a), t(bv)), np.linalg.solve(a, bv[..., None])[..., 0], dtype, 10)
    bb = rand(4, 2, dtype=dtype)  # broadcast B over A's batch
    close(LA.solve(t(a), t(bb)), np.linalg.solve(a, bb), dtype, 10)
    x = rand(2, 4, dtype=dtype)
    close(LA.solve(t(a[0]), t(x), left=False), x @ np.linalg.inv(a[0]), dtype, 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cholesky_lower_and_upper(dtype):
    a = spd(2, n=5, dtype=dtype)
    low = LA.cholesky(t(a))
    close(low, np.linalg.cholesky(a.astype(np.float64)), dtype, 10)
    up = LA.cholesky(t(a), upper=True)
    close(up, np.swapaxes(np.linalg.cholesky(a.astype(np.float64)), -1, -2), dtype, 10)


def test_cholesky_not_positive_definite_message():
    a = rtorch.tensor([[1.0, 2.0], [2.0, 1.0]])
    msg = (
        "linalg.cholesky: The factorization could not be completed because the input is not "
        "positive-definite (the leading minor of order 2 is not positive-definite)."
    )
    with pytest.raises(LA.LinAlgError, match=re.escape(msg)):
        LA.cholesky(a)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (2, 6, 4)])
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
def test_qr_reconstructs_and_is_orthogonal(shape, mode, dtype):
    a = rand(*shape, dtype=dtype)
    q, r = LA.qr(t(a), mode=mode)
    a64 = a.astype(np.float64)
    if mode == "r":
        eq, er = None, np.linalg.qr(a64, mode="r")
    else:
        eq, er = np.linalg.qr(a64, mode=mode)
    assert r.shape == er.shape
    # R is unique up to the signs of its rows.
    np.testing.assert_allclose(np.abs(r.numpy()), np.abs(er), atol=tol(dtype) * 10)
    assert np.allclose(np.tril(r.numpy(), -1), 0)
    if mode == "r":
        assert q.shape == (0,)
        return
    qn = q.numpy()
    assert qn.shape == eq.shape
    close(qn @ r.numpy(), a, dtype, 10)
    k = qn.shape[-1]
    close(
        np.swapaxes(qn, -1, -2) @ qn, np.broadcast_to(np.eye(k), qn.shape[:-2] + (k, k)), dtype, 10
    )


def test_qr_bad_mode():
    with pytest.raises(RuntimeError, match="qr received unrecognized mode 'full'"):
        LA.qr(rtorch.ones(2, 2), mode="full")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape", [(6, 4), (4, 6), (5, 5), (3, 4, 2), (1, 3), (3, 1), (40, 24), (2, 24, 40)]
)
@pytest.mark.parametrize("full", [True, False])
def test_svd_invariants(shape, full, dtype):
    a = rand(*shape, dtype=dtype)
    u, s, vh = LA.svd(t(a), full_matrices=full)
    eu, es, evh = np.linalg.svd(a.astype(np.float64), full_matrices=full)
    assert (u.shape, s.shape, vh.shape) == (eu.shape, es.shape, evh.shape)
    assert u.dtype == t(a).dtype
    close(s, es, dtype, 10)
    un, sn, vhn = u.numpy(), s.numpy(), vh.numpy()
    k = sn.shape[-1]
    close((un[..., :, :k] * sn[..., None, :]) @ vhn[..., :k, :], a, dtype, 10)
    m, n = shape[-2:]
    eye_u, eye_v = un.shape[-1], vhn.shape[-2]
    close(
        np.swapaxes(un, -1, -2) @ un,
        np.broadcast_to(np.eye(eye_u), un.shape[:-2] + (eye_u,) * 2),
        dtype,
        10,
    )
    close(
        vhn @ np.swapaxes(vhn, -1, -2),
        np.broadcast_to(np.eye(eye_v), vhn.shape[:-2] + (eye_v,) * 2),
        dtype,
        10,
    )
    close(LA.svdvals(t(a)), es, dtype, 10)
    assert (m, n) == a.shape[-2:]


def test_svd_of_rank_deficient_matrix_completes_orthonormal_basis():
    a = np.outer(np.arange(1.0, 5.0), np.arange(1.0, 4.0))  # rank 1, 4x3
    u, s, vh = LA.svd(t(a))
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(a)[1], atol=1e-10)
    np.testing.assert_allclose(u.numpy().T @ u.numpy(), np.eye(4), atol=1e-10)
    np.testing.assert_allclose(vh.numpy() @ vh.numpy().T, np.eye(3), atol=1e-10)
    np.testing.assert_allclose((u.numpy()[:, :3] * s.numpy()) @ vh.numpy(), a, atol=1e-10)
    z = LA.svd(rtorch.zeros(3, 2))
    np.testing.assert_allclose(z.U.numpy().T @ z.U.numpy(), np.eye(3), atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("uplo", ["L", "U"])
@pytest.mark.parametrize("n", [5, 30])  # Jacobi, and tridiagonal + QL
def test_eigh_eigen_equation(uplo, dtype, n):
    x = rand(3, n, n, dtype=dtype)
    # Only the UPLO triangle is read: garbage in the other one is ignored.
    sym = x + np.swapaxes(x, -1, -2)
    garbage = np.triu(x, 1) * 7 if uplo == "L" else np.tril(x, -1) * 7
    a = (np.tril(sym) if uplo == "L" else np.triu(sym)) + garbage
    w, v = LA.eigh(t(a), UPLO=uplo)
    ew = np.linalg.eigvalsh(sym.astype(np.float64))
    close(w, ew, dtype, 10)
    vn = v.numpy()
    close(sym @ vn, vn * w.numpy()[..., None, :], dtype, 10)
    close(np.swapaxes(vn, -1, -2) @ vn, np.broadcast_to(np.eye(n), (3, n, n)), dtype, 10)
    close(LA.eigvalsh(t(a), UPLO=uplo), ew, dtype, 10)
    res = LA.eigh(t(a), UPLO=uplo)
    assert res.eigenvalues.shape == (3, n) and res.eigenvectors.shape == (3, n, n)


def test_eigh_of_repeated_and_clustered_eigenvalues():
    q, _ = np.linalg.qr(rand(40, 40))
    w = np.repeat([-2.0, 0.0, 1e-9, 3.0], 10)
    a = (q * w) @ q.T
    got_w, v = LA.eigh(t(a))
    np.testing.assert_allclose(got_w.numpy(), np.sort(w), atol=1e-12)
    vn = v.numpy()
    np.testing.assert_allclose(a @ vn, vn * got_w.numpy(), atol=1e-12)
    np.testing.assert_allclose(vn.T @ vn, np.eye(40), atol=1e-12)


def test_inv_and_solve_of_larger_matrices_match_numpy():
    a = rand(2, 40, 40) + 10 * np.eye(40)
    b = rand(2, 40, 7)
    close(LA.inv(t(a)), np.linalg.inv(a), scale=10)
    close(LA.solve(t(a), t(b)), np.linalg.solve(a, b), scale=10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstsq_overdetermined_matches_numpy(dtype):
    a, b = rand(6, 3, dtype=dtype), rand(6, 2, dtype=dtype)
    ex, eres, erank, esv = np.linalg.lstsq(a.astype(np.float64), b.astype(np.float64), rcond=None)
    res = LA.lstsq(t(a), t(b))
    close(res.solution, ex, dtype, 10)
    close(res.residuals, eres, dtype, 10)
    assert res.rank.item() == erank and res.rank.dtype is rtorch.int64
    assert res.singular_values.shape == (0,)
    gelsd = LA.lstsq(t(a), t(b), driver="gelsd")
    close(gelsd.singular_values, esv, dtype, 10)
    # A vector right-hand side.
    v = rand(6, dtype=dtype)
    close(LA.lstsq(t(a), t(v)).solution, np.linalg.lstsq(a, v, rcond=None)[0], dtype, 10)


def test_lstsq_underdetermined_and_batched():
    a, b = rand(2, 3, 5), rand(2, 3, 1)
    x = LA.lstsq(t(a), t(b)).solution
    close(x, np.linalg.pinv(a) @ b, np.float64, 100)
    assert LA.lstsq(t(a), t(b)).residuals.shape == (0,)
    with pytest.raises(RuntimeError, match="parameter `driver` should be one of"):
        LA.lstsq(t(a), t(b), driver="nope")


@pytest.mark.parametrize("dtype", DTYPES)
def test_pinv_and_matrix_rank(dtype):
    a = rand(2, 5, 3, dtype=dtype)
    close(LA.pinv(t(a)), np.linalg.pinv(a.astype(np.float64)), dtype, 100)
    deficient = np.outer(np.arange(1.0, 4.0), np.arange(1.0, 5.0)).astype(dtype)
    close(LA.pinv(t(deficient)), np.linalg.pinv(deficient.astype(np.float64)), dtype, 100)
    assert LA.matrix_rank(t(deficient)).item() == 1
    assert LA.matrix_rank(t(a)).tolist() == [3, 3]
    assert LA.matrix_rank(t(a)).dtype is rtorch.int64
    sym = spd(n=4)
    close(LA.pinv(t(sym), hermitian=True), np.linalg.inv(sym), np.float64, 100)
    assert LA.matrix_rank(t(sym), hermitian=True).item() == 4
    assert LA.matrix_rank(t(deficient), atol=1e30).item() == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ord", ["fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2])
def test_matrix_norm_orders(ord, dtype):
    a = rand(3, 4, 5, dtype=dtype)
    expected = np.linalg.norm(a.astype(np.float64), ord=ord, axis=(-2, -1))
    close(LA.matrix_norm(t(a), ord=ord), expected, dtype, 10)
    close(LA.norm(t(a), ord=ord, dim=(-2, -1)), expected, dtype, 10)
    kd = LA.matrix_norm(t(a), ord=ord, dim=(0, 2), keepdim=True)
    e2 = np.linalg.norm(a.astype(np.float64), ord=ord, axis=(0, 2), keepdims=True)
    close(kd, e2, dtype, 10)


def test_matrix_norm_bad_order():
    with pytest.raises(RuntimeError, match="linalg.matrix_norm: Order 3 not supported."):
        LA.matrix_norm(rtorch.ones(2, 2), ord=3)


@pytest.mark.parametrize("ord", [2, 1, math.inf, -math.inf, 0, 3, 0.5])
def test_vector_norm(ord):
    x = rand(3, 4)
    close(LA.vector_norm(t(x), ord=ord), np.linalg.norm(x.ravel(), ord=ord))
    close(LA.vector_norm(t(x), ord=ord, dim=1), np.linalg.norm(x, ord=ord, axis=1))
    close(
        LA.vector_norm(t(x).t(), ord=ord, dim=0, keepdim=True),
        np.linalg.norm(x.T, ord=ord, axis=0, keepdims=True),
    )
    with pytest.raises(RuntimeError, match="Expected a floating point or complex tensor as input"):
        LA.vector_norm(rtorch.ones(3, dtype=rtorch.int64))


def test_norm_dispatches_on_ord_and_dim():
    x = rand(3, 4)
    close(LA.norm(t(x)), np.linalg.norm(x))
    close(LA.norm(t(x), ord="nuc"), np.linalg.norm(x, "nuc"))
    close(LA.norm(t(x), ord=2), np.linalg.norm(x, 2))
    close(LA.norm(t(x[0]), ord=1), np.linalg.norm(x[0], 1))
    close(LA.norm(t(x), dim=0), np.linalg.norm(x, axis=0))
    close(LA.vector_norm(t(x), dtype=rtorch.float32), np.linalg.norm(x), np.float32)
    y = rand(2, 3, 4)
    close(LA.norm(t(y)), np.linalg.norm(y.ravel()))


def test_norms_of_empty_inputs_are_positive_zero():
    assert math.copysign(1.0, LA.matrix_norm(rtorch.zeros(0, 3)).item()) == 1.0
    assert math.copysign(1.0, LA.vector_norm(rtorch.zeros(0)).item()) == 1.0
    with pytest.raises(RuntimeError, match="cannot compute the inf norm on an empty tensor"):
        LA.vector_norm(rtorch.zeros(0), ord=math.inf)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 3)])
@pytest.mark.parametrize("full", [True, False])
def test_empty_decompositions_have_numpy_shapes(shape, full):
    u, s, vh = LA.svd(rtorch.zeros(*shape), full_matrices=full)
    eu, es, evh = np.linalg.svd(np.zeros(shape), full_matrices=full)
    assert (u.shape, s.shape, vh.shape) == (eu.shape, es.shape, evh.shape)
    q, r = LA.qr(rtorch.zeros(*shape))
    eq, er = np.linalg.qr(np.zeros(shape))
    assert (q.shape, r.shape) == (eq.shape, er.shape)
    assert LA.pinv(rtorch.zeros(*shape)).shape == np.linalg.pinv(np.zeros(shape)).shape


def test_tensor_methods_det_inverse_slogdet():
    a = rand(3, 3) + 3 * np.eye(3)
    close(t(a).det(), np.linalg.det(a))
    close(t(a).inverse(), np.linalg.inv(a))
    sign, logabs = t(a).slogdet()
    es, el = np.linalg.slogdet(a)
    close(sign, es)
    close(logabs, el)


def test_nan_inputs_give_nan_without_hanging():
    a = rtorch.tensor([[1.0, float("nan")], [0.5, 2.0]])
    assert np.isnan(LA.svdvals(a).numpy()).any()
    assert np.isnan(LA.eigvalsh(a, UPLO="U").numpy()).any()
    assert not np.isnan(LA.eigvalsh(a).numpy()).any()  # the NaN is outside UPLO='L'
    assert np.isnan(LA.det(a).item())
    with pytest.raises(LA.LinAlgError):
        LA.cholesky(rtorch.tensor([[float("nan")]]))


def test_nan_input_propagates_through_svd_based_functions():
    a = rtorch.tensor([[1.0, float("nan")], [0.5, 2.0]])
    assert np.isnan(LA.svd(a).U.numpy()).all()
    assert np.isnan(LA.pinv(a).numpy()).all()
    assert np.isnan(LA.lstsq(a, rtorch.ones(2, 1)).solution.numpy()).all()
