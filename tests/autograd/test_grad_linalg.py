"""Derivatives of the contractions (einsum family, cdist) and of
rtorch.linalg: float64 gradcheck on contiguous, non-contiguous and
broadcast inputs (well-conditioned, symmetric positive definite or with
distinct singular values as each formula needs), gradgradcheck, and
PyTorch's grad_fn names."""

import pytest

import rtorch as torch
from rtorch.autograd import gradcheck, gradgradcheck

LA = torch.linalg


def leaf(*shape, seed=0, shift=0.0):
    """A random float64 leaf; `shift` adds shift * I to square matrices
    (well-conditioned)."""
    torch.manual_seed(seed)
    t = torch.randn(*shape, dtype=torch.float64)
    if shift:
        t = t + shift * torch.eye(shape[-1], dtype=torch.float64)
    return t.detach().requires_grad_()


def noncontig(*shape, seed=0, shift=0.0):
    """As `leaf`, but the transpose of a contiguous tensor."""
    t = leaf(*shape[:-2], shape[-1], shape[-2], seed=seed, shift=shift)
    t = t.detach().mT.requires_grad_()
    assert not t.is_contiguous()
    return t


def check(fn, *inputs):
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


# ---------------------------------------------------------------- contractions


def test_einsum_matmul_trace_and_diagonal():
    a, b = leaf(2, 3), noncontig(3, 4, seed=1)
    check(lambda a, b: torch.einsum("ij,jk->ik", a, b), a, b)
    check(lambda a: torch.einsum("ii->i", a), leaf(3, 3))
    check(lambda a, b: torch.einsum("bij,bjk->bik", a, b), leaf(2, 2, 3), leaf(2, 3, 2, seed=1))
    check(lambda a, b: torch.einsum("...i,...i->...", a, b), leaf(2, 3), leaf(1, 3, seed=1))


def test_tensordot_inner_outer_kron():
    a, b = leaf(2, 3, 4), leaf(3, 4, 2, seed=1)
    check(lambda a, b: torch.tensordot(a, b, dims=2), a, b)
    check(lambda a, b: torch.inner(a, b), leaf(2, 3), noncontig(4, 3, seed=1))
    check(lambda a, b: torch.outer(a, b), leaf(3), leaf(4, seed=1))
    check(lambda a, b: torch.kron(a, b), leaf(2, 2), noncontig(2, 3, seed=1))


def test_cross_vdot_trace():
    check(lambda a, b: torch.cross(a, b, dim=1), leaf(2, 3), leaf(1, 3, seed=1))
    check(lambda a, b: torch.vdot(a, b), leaf(4), leaf(4, seed=1))
    check(lambda a: torch.trace(a), noncontig(3, 3))


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, float("inf")])
def test_cdist_gradients(p):
    x1, x2 = leaf(2, 3, 2), leaf(4, 2, seed=1)
    check(lambda x1, x2: torch.cdist(x1, x2, p=p), x1, x2)
    assert torch.cdist(x1, x2, p=p).requires_grad


# ---------------------------------------------------------------- LU family


@pytest.mark.parametrize("make", [leaf, noncontig])
def test_inv_gradients(make):
    a = make(2, 3, 3, shift=4.0)
    check(LA.inv, a)
    assert LA.inv(a).grad_fn.name() == "LinalgInvExBackward0"
    assert a.inverse().grad_fn.name() == "LinalgInvExBackward0"


@pytest.mark.parametrize("make", [leaf, noncontig])
def test_det_gradients(make):
    a = make(2, 3, 3, shift=2.0)
    check(LA.det, a)
    out = LA.det(a)
    assert out.grad_fn.name() == "LinalgDetBackward0"
    # d det / dA = det(A) A^-T.
    out.sum().backward()
    want = (LA.det(a)[:, None, None] * LA.inv(a).mT).detach()
    assert torch.allclose(a.grad, want)


def test_slogdet_gradient_and_sign_is_not_differentiable():
    a = noncontig(3, 3, shift=-4.0)
    check(lambda a: LA.slogdet(a).logabsdet, a)
    sign, logabs = LA.slogdet(a)
    assert logabs.grad_fn.name() == "LinalgSlogdetBackward0"
    assert not sign.requires_grad


@pytest.mark.parametrize("left", [True, False])
def test_solve_gradients_matrix_vector_and_broadcast(left):
    a = noncontig(3, 3, shift=3.0)
    check(lambda a, b: LA.solve(a, b, left=left), a, leaf(2, 3, 3, seed=1))
    out = LA.solve(a, leaf(3, 2, seed=1) if left else leaf(2, 3, seed=1), left=left)
    assert out.requires_grad
    if left:
        check(lambda a, b: LA.solve(a, b), leaf(2, 3, 3, shift=3.0), leaf(3, seed=2))
        assert LA.solve(a, leaf(3)).grad_fn.name() == "LinalgSolveExBackward0"


# ---------------------------------------------------------------- decompositions


def spd(x):
    """A symmetric positive definite matrix made from `x`."""
    return x @ x.mT + 3.0 * torch.eye(x.shape[-1], dtype=x.dtype)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_gradients(upper):
    x = noncontig(2, 3, 3)
    check(lambda x: LA.cholesky(spd(x), upper=upper), x)
    assert LA.cholesky(spd(x)).grad_fn.name() == "LinalgCholeskyExBackward0"


@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (2, 3, 5)])
def test_qr_gradients_tall_square_and_wide(shape):
    a = leaf(*shape)
    check(lambda a: tuple(LA.qr(a)), a)
    assert LA.qr(a).Q.grad_fn.name() == "LinalgQrBackward0"


def test_qr_complete_of_tall_and_mode_r_refuse_backward():
    a = leaf(4, 3)
    with pytest.raises(RuntimeError, match="mode='complete' and nrows > ncols"):
        LA.qr(a, mode="complete").Q.sum().backward()
    with pytest.raises(RuntimeError, match="mode='r'"):
        LA.qr(a, mode="r").R.sum().backward()


def gauge_fixed_svd(a, full_matrices=False):
    """SVD with each singular pair's sign fixed (the first row of U
    non-negative), so finite differences see a smooth function."""
    u, s, vh = LA.svd(a, full_matrices=full_matrices)
    k = s.shape[-1]
    u, vh = u[..., :k], vh[..., :k, :]
    with torch.no_grad():
        sign = torch.where(u[..., :1, :] < 0, -1.0, 1.0).to(a.dtype)
    return u * sign, s, vh * sign.mT


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 3, 3)])
def test_svd_gradients(shape):
    a = noncontig(*shape)
    check(gauge_fixed_svd, a)
    assert LA.svd(a).S.grad_fn.name() == "LinalgSvdBackward0"


def test_svd_full_matrices_uses_first_k_vectors():
    a = leaf(4, 2)
    check(lambda a: gauge_fixed_svd(a, full_matrices=True), a)


def test_svdvals_gradient_is_u_vt():
    a = leaf(3, 4)
    check(LA.svdvals, a)
    s = LA.svdvals(a)
    assert s.grad_fn.name() == "LinalgSvdBackward0"
    s.sum().backward()
    u, _, vh = LA.svd(a.detach(), full_matrices=False)
    assert torch.allclose(a.grad, u @ vh)


def sym(x):
    return x + x.mT


def test_eigh_gradients():
    x = noncontig(2, 3, 3)

    def fn(x):
        w, v = LA.eigh(sym(x))
        with torch.no_grad():
            sign = torch.where(v[..., :1, :] < 0, -1.0, 1.0).to(x.dtype)
        return w, v * sign

    check(fn, x)
    assert LA.eigh(sym(x)).eigenvalues.grad_fn.name() == "LinalgEighBackward0"


def test_eigvalsh_gradients():
    x = leaf(4, 4)
    check(lambda x: LA.eigvalsh(sym(x)), x)
    w = LA.eigvalsh(sym(x))
    assert w.grad_fn.name() == "LinalgEighBackward0"


# ---------------------------------------------------------------- composites


@pytest.mark.parametrize("shape", [(4, 3), (3, 4)])
def test_pinv_gradients(shape):
    check(LA.pinv, noncontig(*shape))


def test_pinv_hermitian_gradients():
    x = leaf(3, 3)
    check(lambda x: LA.pinv(spd(x), hermitian=True), x)


def test_lstsq_solution_and_residual_gradients():
    a, b = leaf(5, 3), leaf(5, 2, seed=1)
    check(lambda a, b: LA.lstsq(a, b).solution, a, b)
    check(lambda a, b: LA.lstsq(a, b).residuals, a, b)
    # The solution satisfies the normal equations, so its gradient is that
    # of (A^T A)^-1 A^T B.
    x = LA.lstsq(a, b).solution
    y = LA.solve(a.mT @ a, a.mT @ b)
    gx = torch.autograd.grad(x.sum(), a)[0]
    gy = torch.autograd.grad(y.sum(), a)[0]
    assert torch.allclose(gx, gy)


@pytest.mark.parametrize("ord", ["fro", "nuc", 1, -1, float("inf"), float("-inf"), 2, -2])
def test_matrix_norm_gradients(ord):
    a = noncontig(3, 4)
    check(lambda a: LA.matrix_norm(a, ord), a)


def test_matrix_norm_other_dims_keepdim():
    a = leaf(3, 2, 4)
    out = LA.matrix_norm(a, "nuc", dim=(0, 2), keepdim=True)
    assert out.shape == (1, 2, 1)
    check(lambda a: LA.matrix_norm(a, "nuc", dim=(2, 0), keepdim=True), a)
    check(lambda a: LA.norm(a, dim=(0, 2)), a)
