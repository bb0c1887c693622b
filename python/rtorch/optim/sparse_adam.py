"""SparseAdam (PyTorch's ``torch/optim/sparse_adam.py``).

rtorch has no sparse tensor layout, so no gradient can be sparse: the
optimizer validates its arguments as PyTorch does and its ``step`` raises
PyTorch's error for dense gradients (use :class:`~rtorch.optim.Adam`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rtorch
from rtorch.optim.optimizer import Optimizer, ParamsT, _use_grad

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    r"""Lazy Adam for sparse gradients: only the moments and parameters at
    the gradient's nonzero indices are updated.

    rtorch has no sparse tensors yet, so every gradient is dense and
    :meth:`step` raises ``RuntimeError("SparseAdam does not support dense
    gradients, please consider Adam instead")`` exactly like PyTorch.

    Args:
        params (iterable): parameters or param groups to optimize.
        lr (float): learning rate. Default: 1e-3.
        betas (tuple[float, float]): running-average coefficients. Default: (0.9, 0.999).
        eps (float): added to the denominator for stability. Default: 1e-8.
        maximize (bool): maximize the objective. Default: ``False``.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.ones(2))
        >>> opt = rtorch.optim.SparseAdam([w])
        >>> opt.defaults["lr"]
        0.001
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        if isinstance(lr, rtorch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        defaults = dict(lr=lr, betas=betas, eps=eps, maximize=maximize)
        super().__init__(params, defaults)
        sparse_params = []
        complex_params = []
        for index, group in enumerate(self.param_groups):
            for d_index, p in enumerate(group["params"]):
                if getattr(p, "is_sparse", False):
                    sparse_params.append([index, d_index])
                if p.dtype.is_complex:
                    complex_params.append([index, d_index])
        if sparse_params:
            raise ValueError(
                f"Sparse params at indices {sparse_params}: SparseAdam requires dense parameter tensors"
            )
        if complex_params:
            raise ValueError(
                f"Complex params at indices {complex_params}: SparseAdam does not support complex parameters"
            )

    @_use_grad
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step (needs sparse gradients).

        Args:
            closure (Callable, optional): re-evaluates the model and returns the loss.
        """
        loss = None
        if closure is not None:
            with rtorch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and not getattr(p.grad, "is_sparse", False):
                    raise RuntimeError(
                        "SparseAdam does not support dense gradients, please consider Adam instead"
                    )
        return loss
