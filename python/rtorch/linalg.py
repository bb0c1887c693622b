"""``rtorch.linalg``: PyTorch's linear-algebra functions. The numerics are in
Rust (``rust/src/ops/linalg/``); this module only routes arguments and wraps
results in PyTorch's named tuples."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from rtorch import _C
from rtorch._C import LinAlgError, Tensor

__all__ = [
    "LinAlgError",
    "cholesky",
    "det",
    "eigh",
    "eigvalsh",
    "inv",
    "lstsq",
    "matmul",
    "matrix_norm",
    "matrix_rank",
    "norm",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "svd",
    "svdvals",
    "vector_norm",
]

# PyTorch's torch.return_types.* named tuples.
linalg_slogdet = namedtuple("linalg_slogdet", ["sign", "logabsdet"])
linalg_qr = namedtuple("linalg_qr", ["Q", "R"])
linalg_svd = namedtuple("linalg_svd", ["U", "S", "Vh"])
linalg_eigh = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
linalg_lstsq = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])


def _tol(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, Tensor):
        return float(v.item())
    return float(v)


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Alias of :func:`rtorch.matmul`."""
    return input.matmul(other)


def inv(A: Tensor) -> Tensor:
    """The inverse of each square matrix of ``A``.

    Raises :class:`LinAlgError` when a matrix is singular.

    Example::

        >>> import rtorch
        >>> rtorch.linalg.inv(rtorch.tensor([[2.0, 0.0], [0.0, 4.0]]))
        tensor([[0.5000, 0.0000],
                [0.0000, 0.2500]])
    """
    return _C._linalg_inv(A)


def det(A: Tensor) -> Tensor:
    """The determinant of each square matrix of ``A``."""
    return _C._linalg_det(A)


def slogdet(A: Tensor) -> linalg_slogdet:
    """``(sign, logabsdet)`` of the determinant of each square matrix of ``A``."""
    return linalg_slogdet(*_C._linalg_slogdet(A))


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """The solution ``X`` of ``A X = B`` (``X A = B`` with ``left=False``)."""
    return _C._linalg_solve(A, B, left)


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    """The Cholesky factor ``L`` (``A = L L^T``), or ``U = L^T`` with ``upper``."""
    return _C._linalg_cholesky(A, upper)


def qr(A: Tensor, mode: str = "reduced") -> linalg_qr:
    """The QR decomposition ``A = QR``; ``mode`` is 'reduced', 'complete' or 'r'."""
    return linalg_qr(*_C._linalg_qr(A, mode))


def svd(A: Tensor, full_matrices: bool = True, *, driver: str | None = None) -> linalg_svd:
    """The singular value decomposition ``A = U diag(S) Vh``."""
    return linalg_svd(*_C._linalg_svd(A, full_matrices))


def svdvals(A: Tensor, *, driver: str | None = None) -> Tensor:
    """The singular values of ``A``, in descending order."""
    return _C._linalg_svdvals(A)


def eigh(A: Tensor, UPLO: str = "L") -> linalg_eigh:
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices."""
    return linalg_eigh(*_C._linalg_eigh(A, UPLO))


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    """Eigenvalues (ascending) of symmetric matrices."""
    return _C._linalg_eigvalsh(A, UPLO)


def lstsq(
    A: Tensor, B: Tensor, rcond: float | None = None, *, driver: str | None = None
) -> linalg_lstsq:
    """The least-squares solution of ``A X = B``, with PyTorch's fields."""
    return linalg_lstsq(*_C._linalg_lstsq(A, B, rcond, driver))


def pinv(
    A: Tensor,
    *,
    atol: Any = None,
    rtol: Any = None,
    hermitian: bool = False,
    rcond: Any = None,
) -> Tensor:
    """The Moore-Penrose pseudo-inverse of ``A``."""
    if rcond is not None:
        rtol = rcond
    return _C._linalg_pinv(A, _tol(atol), _tol(rtol), hermitian)


def matrix_rank(
    A: Tensor,
    *,
    atol: Any = None,
    rtol: Any = None,
    hermitian: bool = False,
    tol: Any = None,
) -> Tensor:
    """The numerical rank of ``A`` (the count of singular values above the tolerance)."""
    if tol is not None:
        atol, rtol = tol, 0.0
    return _C._linalg_matrix_rank(A, _tol(atol), _tol(rtol), hermitian)


def _dims(dim: Any) -> list[int] | None:
    if dim is None:
        return None
    if isinstance(dim, int):
        return [dim]
    return list(dim)


def vector_norm(
    x: Tensor,
    ord: float = 2,
    dim: Any = None,
    keepdim: bool = False,
    *,
    dtype: Any = None,
) -> Tensor:
    """The vector ``ord``-norm of ``x`` over ``dim`` (all elements by default)."""
    return _C._vector_norm(x, ord, dim, keepdim, dtype=dtype)


def matrix_norm(
    A: Tensor,
    ord: Any = "fro",
    dim: tuple[int, int] = (-2, -1),
    keepdim: bool = False,
    *,
    dtype: Any = None,
) -> Tensor:
    """A matrix norm: 'fro', 'nuc', inf, -inf, 1, -1, 2 or -2."""
    if dtype is not None:
        A = A.to(dtype)
    if not isinstance(ord, str):
        ord = float(ord)
    return _C._linalg_matrix_norm(A, ord, tuple(dim), keepdim)


def norm(
    A: Tensor,
    ord: Any = None,
    dim: Any = None,
    keepdim: bool = False,
    *,
    dtype: Any = None,
) -> Tensor:
    """A vector or matrix norm, as :func:`vector_norm` or :func:`matrix_norm`
    depending on ``ord`` and ``dim`` (PyTorch's rules)."""
    dims = _dims(dim)
    if dims is not None and len(dims) == 2 or (dims is None and ord is not None and A.dim() == 2):
        if dims is None:
            dims = [-2, -1]
        return matrix_norm(A, "fro" if ord is None else ord, tuple(dims), keepdim, dtype=dtype)
    if isinstance(ord, str):
        raise RuntimeError(
            f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got {dims}"
        )
    if dims is None and ord is not None and A.dim() != 1:
        raise RuntimeError(
            "linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
            f"Got {A.dim()}D."
        )
    return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)


def _install_tensor_methods() -> None:
    """``Tensor.det()``, ``Tensor.inverse()``, ``Tensor.slogdet()``, as PyTorch."""
    for name, fn in {"det": det, "inverse": inv, "slogdet": slogdet}.items():
        setattr(Tensor, name, fn)


_install_tensor_methods()
