"""ASGD: averaged stochastic gradient descent (PyTorch's ``torch/optim/asgd.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rtorch
from rtorch.optim.optimizer import (
    Optimizer,
    ParamsT,
    _check_lr,
    _check_weight_decay,
    _get_scalar_dtype,
    _use_grad,
)

__all__ = ["ASGD", "asgd"]


class ASGD(Optimizer):
    r"""Averaged SGD (Polyak & Juditsky, 1992).

    Per step: :math:`\theta \leftarrow \theta(1 - \lambda\eta) - \eta g`, the
    average :math:`a` follows :math:`\theta` (``ax``; a plain copy while
    :math:`\mu = 1`), then :math:`\eta = \gamma / (1 + \lambda\gamma t)^\alpha`
    and :math:`\mu = 1 / \max(1, t - t_0)`.

    Args:
        params (iterable): parameters or param groups to optimize.
        lr (float): learning rate. Default: 1e-2.
        lambd (float): decay term. Default: 1e-4.
        alpha (float): power for the eta update. Default: 0.75.
        t0 (float): step at which averaging starts. Default: 1e6.
        weight_decay (float): L2 penalty. Default: 0.
        maximize (bool): maximize the objective. Default: ``False``.
        foreach, differentiable, capturable: accepted for PyTorch
            compatibility; ASGD runs the per-tensor path.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.tensor([1.0]))
        >>> opt = rtorch.optim.ASGD([w], lr=0.1, lambd=0.0)
        >>> w.sum().backward()
        >>> opt.step()
        >>> w
        Parameter containing:
        tensor([0.9000], requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        _check_lr(lr)
        if not 0.0 <= lambd:
            raise ValueError(f"Invalid lambd value: {lambd}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        _check_weight_decay(weight_decay)
        defaults = dict(
            lr=lr,
            lambd=lambd,
            alpha=alpha,
            t0=t0,
            weight_decay=weight_decay,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        super().__init__(params, defaults)

    @_use_grad
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step.

        Args:
            closure (Callable, optional): re-evaluates the model and returns the loss.
        """
        loss = None
        if closure is not None:
            with rtorch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            states = []
            for p in params:
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = rtorch.zeros((), dtype=_get_scalar_dtype())
                    state["eta"] = rtorch.tensor(float(group["lr"]), dtype=_get_scalar_dtype())
                    state["mu"] = rtorch.ones((), dtype=_get_scalar_dtype())
                    state["ax"] = rtorch.zeros_like(p)
                states.append(state)
            asgd(
                params,
                [p.grad for p in params],
                [s["ax"] for s in states],
                [s["mu"] for s in states],
                [s["eta"] for s in states],
                [s["step"] for s in states],
                lambd=group["lambd"],
                lr=group["lr"],
                t0=group["t0"],
                alpha=group["alpha"],
                weight_decay=group["weight_decay"],
                maximize=group["maximize"],
            )
        return loss


def asgd(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    axs: list[rtorch.Tensor],
    mus: list[rtorch.Tensor],
    etas: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    lambd: float,
    lr: float,
    t0: float,
    alpha: float,
    weight_decay: float,
    maximize: bool,
    foreach: bool | None = None,
    differentiable: bool = False,
) -> None:
    r"""Functional ASGD (per-tensor path). See :class:`~rtorch.optim.ASGD`."""
    _single_tensor_asgd(
        params,
        grads,
        axs,
        mus,
        etas,
        state_steps,
        lambd=lambd,
        lr=lr,
        t0=t0,
        alpha=alpha,
        weight_decay=weight_decay,
        maximize=maximize,
    )


def _single_tensor_asgd(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    axs: list[rtorch.Tensor],
    mus: list[rtorch.Tensor],
    etas: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    lambd: float,
    lr: float,
    t0: float,
    alpha: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    for i, p in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        mu, ax, eta, step_t = mus[i], axs[i], etas[i], state_steps[i]
        step_t.add_(1)
        if weight_decay != 0:
            grad = grad.add(p, alpha=weight_decay)
        eta_value = eta.item()
        p.mul_(1 - lambd * eta_value)
        p.add_(grad, alpha=-eta_value)
        if mu.item() != 1:
            ax.add_(p.sub(ax).mul_(mu))
        else:
            ax.copy_(p)
        step = step_t.item()
        eta.fill_(lr / ((1 + lambd * lr * step) ** alpha))
        mu.fill_(1 / max(1, step - t0))
