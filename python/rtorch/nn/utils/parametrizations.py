"""Parametrizations built on :mod:`rtorch.nn.utils.parametrize`:
``orthogonal``, ``weight_norm`` and ``spectral_norm``, as
``torch.nn.utils.parametrizations``."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

import numpy as np

import rtorch
from rtorch._C import Tensor
from rtorch.nn import functional as F
from rtorch.nn.modules.module import Module
from rtorch.nn.utils import parametrize

__all__ = ["orthogonal", "weight_norm", "spectral_norm"]


def _norm_except_dim(v: Tensor, pow: float, dim: int) -> Tensor:
    """The ``pow``-norm of ``v`` over every dimension but ``dim``, shaped to
    broadcast against ``v`` (``dim=-1``: over everything, a 0-d tensor)."""
    if dim == -1:
        return rtorch.linalg.vector_norm(v, pow)
    dim = dim % v.dim()
    dims = [d for d in range(v.dim()) if d != dim]
    return rtorch.linalg.vector_norm(v, pow, dim=dims, keepdim=True)


def _weight_norm(v: Tensor, g: Tensor, dim: int) -> Tensor:
    return v * (g / _norm_except_dim(v, 2, dim))


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        if dim is None:
            dim = -1
        self.dim = dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        weight_g = _norm_except_dim(weight, 2, self.dim)
        return weight_g, weight


def _load_hook_positional(hook_body: Any) -> Any:
    # The load pre-hook's (state_dict, prefix, ...) are its last seven arguments
    # whether or not the module is passed first.
    def hook(*args: Any) -> None:
        hook_body(args[-7], args[-6])

    return hook


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    r"""Reparametrize ``module.<name>`` as ``g * v / ||v||``.

    The magnitude ``g`` and direction ``v`` become
    ``module.parametrizations.<name>.original0`` and ``original1``; the norm
    is over every dimension but ``dim`` (``None``: over the whole tensor).
    State dicts saved with the old :func:`rtorch.nn.utils.weight_norm`
    (``<name>_g`` / ``<name>_v``) still load.

    Example::

        >>> import rtorch
        >>> m = weight_norm(rtorch.nn.Linear(20, 40))
        >>> m.parametrizations.weight.original0.shape, m.parametrizations.weight.original1.shape
        (torch.Size([40, 1]), torch.Size([40, 20]))
    """
    _weight_norm_mod = _WeightNorm(dim)
    parametrize.register_parametrization(module, name, _weight_norm_mod, unsafe=True)

    def compat(state_dict: dict, prefix: str) -> None:
        g_key = f"{prefix}{name}_g"
        v_key = f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            original0 = state_dict.pop(g_key)
            original1 = state_dict.pop(v_key)
            state_dict[f"{prefix}parametrizations.{name}.original0"] = original0
            state_dict[f"{prefix}parametrizations.{name}.original1"] = original1

    module.register_load_state_dict_pre_hook(_load_hook_positional(compat))
    return module


class _SpectralNorm(Module):
    def __init__(
        self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12
    ) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(
                "Dimension out of range (expected to be in range of "
                f"[-{ndim}, {ndim - 1}] but got {dim})"
            )
        if n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be positive, but "
                f"got n_power_iterations={n_power_iterations}"
            )
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            weight_mat = self._reshape_weight_to_matrix(weight)
            h, w = weight_mat.size()
            u = weight_mat.new_empty(h).normal_(0, 1)
            v = weight_mat.new_empty(w).normal_(0, 1)
            self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
            self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
            self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.dim()) if d != self.dim))
        return weight.flatten(1)

    def _power_method(self, weight_mat: Tensor, n_power_iterations: int) -> None:
        with rtorch.no_grad():
            for _ in range(n_power_iterations):
                self._u.copy_(F.normalize(weight_mat.mv(self._v), dim=0, eps=self.eps))
                self._v.copy_(F.normalize(weight_mat.t().mv(self._u), dim=0, eps=self.eps))

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        u = self._u.clone()
        v = self._v.clone()
        sigma = rtorch.vdot(u, weight_mat.mv(v))
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(
    module: Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> Module:
    """Divide ``module.<name>`` by its spectral norm, estimated by power
    iteration (one step per training-mode access; ``u``/``v`` kept as buffers).

    Args:
        module: the module.
        name: the weight's name. Default: ``"weight"``.
        n_power_iterations: power iterations per access in training mode.
        eps: added to norms in the normalisation.
        dim: the output dimension (0, or 1 for transposed convolutions).

    Example::

        >>> import rtorch
        >>> m = spectral_norm(rtorch.nn.Linear(20, 40))
        >>> m.parametrizations.weight.original.shape
        torch.Size([40, 20])
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps)
    )
    return module


# ---------------------------------------------------------------- orthogonal


def _eye_like(X: Tensor, n: int, k: int) -> Tensor:
    return rtorch.eye(n, k, dtype=X.dtype).expand(*X.shape[:-2], n, k)


def _matrix_exp(A: Tensor) -> Tensor:
    """``exp(A)`` of (a batch of) square matrices by scaling and squaring with
    a degree-18 Taylor polynomial, written with differentiable ops."""
    n = A.size(-1)
    with rtorch.no_grad():
        norm = float(A.abs().sum(-2).max()) if A.numel() else 0.0
    s = max(0, math.ceil(math.log2(norm / 0.5))) if norm > 0.5 else 0
    As = A / (2.0**s)
    eye = _eye_like(A, n, n)
    E = eye
    for j in range(18, 0, -1):  # Horner: I + As/1 (I + As/2 (I + ...))
        E = eye + As.matmul(E) / j
    for _ in range(s):
        E = E.matmul(E)
    return E


def _householder_product(A: Tensor, tau: Tensor) -> Tensor:
    """The first ``k`` columns of ``H_1 ... H_k``, ``H_i = I - tau_i v_i v_i^T``
    with ``v_i`` column ``i`` of ``A`` below the diagonal and 1 on it (LAPACK's
    ``orgqr``), written with differentiable ops."""
    n, k = A.size(-2), A.size(-1)
    V = A.tril(-1) + _eye_like(A, n, k)
    Q = _eye_like(A, n, n)
    for i in range(k):
        v = V[..., :, i : i + 1]
        Q = Q - (Q.matmul(v)).matmul(v.mT) * tau[..., i : i + 1].unsqueeze(-1)
    return Q[..., :, :k]


def _geqrf(A: Tensor) -> tuple[Tensor, Tensor]:
    """LAPACK's ``geqrf`` (through NumPy): R on and above the diagonal,
    Householder vectors below it, and their ``tau``. Not differentiable."""
    a = A.detach().cpu().numpy()
    batch = a.shape[:-2]
    flat = a.reshape(-1, *a.shape[-2:])
    hs, taus = [], []
    for m in flat:
        h, tau = np.linalg.qr(m, mode="raw")
        hs.append(h.T)
        taus.append(tau)
    k = min(a.shape[-2], a.shape[-1])
    h_all = np.stack(hs).reshape(*batch, *a.shape[-2:]) if hs else a.copy()
    tau_all = np.stack(taus).reshape(*batch, k) if taus else np.zeros((*batch, k))
    return rtorch.tensor(h_all, dtype=A.dtype), rtorch.tensor(tau_all, dtype=A.dtype)


def _is_orthogonal(Q: Tensor, eps: float | None = None) -> bool:
    n, k = Q.size(-2), Q.size(-1)
    Id = rtorch.eye(k, dtype=Q.dtype)
    eps = 10.0 * n * rtorch.finfo(Q.dtype).eps
    return rtorch.allclose(Q.mT.matmul(Q), Id, atol=eps)


def _make_orthogonal(A: Tensor) -> Tensor:
    """The ``Q`` of ``A``'s QR decomposition with ``R``'s diagonal made positive."""
    Q, R = rtorch.linalg.qr(A)
    return Q * R.diagonal(dim1=-2, dim2=-1).sign().unsqueeze(-2)


class _OrthMaps(Enum):
    matrix_exp = 1
    cayley = 2
    householder = 3


class _Orthogonal(Module):
    base: Tensor

    def __init__(
        self, weight: Tensor, orthogonal_map: _OrthMaps, *, use_trivialization: bool = True
    ) -> None:
        super().__init__()
        if weight.is_complex() and orthogonal_map == _OrthMaps.householder:
            raise ValueError("The householder parametrization does not support complex tensors.")
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:
        n, k = X.size(-2), X.size(-1)
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in (_OrthMaps.matrix_exp, _OrthMaps.cayley):
            X = X.tril()
            if n != k:
                X = rtorch.cat([X, X.new_zeros(n, n - k).expand(*X.shape[:-2], -1, -1)], dim=-1)
            A = X - X.mT
            if self.orthogonal_map == _OrthMaps.matrix_exp:
                Q = _matrix_exp(A)
            else:
                Id = rtorch.eye(n, dtype=A.dtype)
                Q = rtorch.linalg.solve(Id - A * 0.5, Id + A * 0.5)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(diagonal=-1)
            tau = 2.0 / (1.0 + (A * A).sum(dim=-2))
            Q = _householder_product(A, tau)
            # X's diagonal holds the signs (1 or -1); no gradient flows through it.
            Q = Q * X.diagonal(dim1=-2, dim2=-1).detach().int().to(Q.dtype).unsqueeze(-2)
        if getattr(self, "base", None) is not None:
            Q = self.base.matmul(Q)
        if transposed:
            Q = Q.mT
        return Q

    def right_inverse(self, Q: Tensor) -> Tensor:
        with rtorch.no_grad():
            if Q.shape != self.shape:
                raise ValueError(
                    f"Expected a matrix or batch of matrices of shape {self.shape}. "
                    f"Got a tensor of shape {Q.shape}."
                )
            Q_init = Q
            n, k = Q.size(-2), Q.size(-1)
            transpose = n < k
            if transpose:
                Q = Q.mT
                n, k = k, n
            if "base" not in self._buffers:
                if self.orthogonal_map in (_OrthMaps.cayley, _OrthMaps.matrix_exp):
                    raise NotImplementedError(
                        "It is not possible to assign to the matrix exponential or the Cayley "
                        "parametrizations when use_trivialization=False."
                    )
                A, tau = _geqrf(Q)
                diag = A.diagonal(dim1=-2, dim2=-1)
                signs = diag.sign()
                # A zero tau means no reflection: flip that sign (see PyTorch's note).
                signs = signs * (1 - 2 * (tau == 0.0).to(signs.dtype))
                diag.copy_(signs)
                return A.mT if transpose else A
            if n == k:
                Q = _make_orthogonal(Q) if not _is_orthogonal(Q) else Q.clone()
            else:
                N = rtorch.randn(*(Q.size()[:-2] + (n, n - k)), dtype=Q.dtype)
                Q = _make_orthogonal(rtorch.cat([Q, N], dim=-1))
            self.base = Q
            # -Id: householder(zeros) is then the identity.
            neg_Id = rtorch.zeros_like(Q_init)
            neg_Id.diagonal(dim1=-2, dim2=-1).fill_(-1.0)
            return neg_Id


def orthogonal(
    module: Module,
    name: str = "weight",
    orthogonal_map: str | None = None,
    *,
    use_trivialization: bool = True,
) -> Module:
    r"""Constrain ``module.<name>`` (a matrix or batch of matrices) to be
    orthogonal: ``Q^T Q = I`` (or ``Q Q^T = I`` for wide matrices).

    Args:
        module: the module.
        name: the tensor's name. Default: ``"weight"``.
        orthogonal_map: ``"matrix_exp"`` (default for square matrices),
            ``"cayley"`` or ``"householder"`` (default otherwise).
        use_trivialization: keep a base ``Q`` (buffer ``base``) and
            parametrize around it, as PyTorch does by default.

    Example::

        >>> import rtorch
        >>> m = orthogonal(rtorch.nn.Linear(5, 3))
        >>> Q = m.weight
        >>> rtorch.allclose(Q @ Q.T, rtorch.eye(3), atol=1e-5)
        True
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(
            f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions."
        )
    if orthogonal_map is None:
        square = weight.size(-2) == weight.size(-1)
        orthogonal_map = "matrix_exp" if square or weight.is_complex() else "householder"
    orth_enum = getattr(_OrthMaps, orthogonal_map, None)
    if orth_enum is None:
        raise ValueError(
            'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
            f"Got: {orthogonal_map}"
        )
    orth = _Orthogonal(weight, orth_enum, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
