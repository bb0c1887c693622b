"""Adadelta (PyTorch's ``torch/optim/adadelta.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rtorch
from rtorch.optim.optimizer import (
    Optimizer,
    ParamsT,
    _check_eps,
    _check_lr,
    _check_weight_decay,
    _get_scalar_dtype,
    _use_fused,
    _use_grad,
)

__all__ = ["Adadelta", "adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012).

    :math:`v \leftarrow \rho v + (1-\rho) g^2`,
    :math:`\Delta = \frac{\sqrt{u + \epsilon}}{\sqrt{v + \epsilon}} g`,
    :math:`u \leftarrow \rho u + (1-\rho) \Delta^2`,
    :math:`\theta \leftarrow \theta - \gamma \Delta`.

    Args:
        params (iterable): parameters or param groups to optimize.
        lr (float): coefficient that scales delta. Default: 1.0.
        rho (float): running-average coefficient. Default: 0.9.
        eps (float): added inside the square roots. Default: 1e-6.
        weight_decay (float): L2 penalty. Default: 0.
        foreach (bool, optional): ``None``/``True``: one fused Rust kernel per
            group when possible; ``False``: the per-tensor reference path.
        maximize (bool): maximize the objective. Default: ``False``.
        differentiable (bool): use the per-tensor path. Default: ``False``.
        capturable: accepted for PyTorch compatibility.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.tensor([1.0]))
        >>> opt = rtorch.optim.Adadelta([w])
        >>> w.sum().backward()
        >>> opt.step()
        >>> round(w.item(), 6)
        0.996838
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        _check_eps(eps)
        _check_weight_decay(weight_decay)
        defaults = dict(
            lr=lr,
            rho=rho,
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            capturable=capturable,
            foreach=foreach,
            differentiable=differentiable,
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
                    state["step"] = rtorch.tensor(0.0, dtype=_get_scalar_dtype())
                    state["square_avg"] = rtorch.zeros_like(p)
                    state["acc_delta"] = rtorch.zeros_like(p)
                states.append(state)
            adadelta(
                params,
                [p.grad for p in params],
                [s["square_avg"] for s in states],
                [s["acc_delta"] for s in states],
                [s["step"] for s in states],
                lr=group["lr"],
                rho=group["rho"],
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                maximize=group["maximize"],
                foreach=group["foreach"],
                differentiable=group["differentiable"],
            )
        return loss


def adadelta(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    square_avgs: list[rtorch.Tensor],
    acc_deltas: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
    foreach: bool | None = None,
    differentiable: bool = False,
) -> None:
    r"""Functional Adadelta; bumps ``state_steps``. See :class:`~rtorch.optim.Adadelta`."""
    kw = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
    if _use_fused(params, grads, foreach, differentiable):
        rtorch._C._fused_adadelta(params, grads, square_avgs, acc_deltas, state_steps, **kw)
    else:
        _single_tensor_adadelta(params, grads, square_avgs, acc_deltas, state_steps, **kw)


def _single_tensor_adadelta(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    square_avgs: list[rtorch.Tensor],
    acc_deltas: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    for i, p in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        state_steps[i].add_(1)
        if weight_decay != 0:
            grad = grad.add(p, alpha=weight_decay)
        square_avg, acc_delta = square_avgs[i], acc_deltas[i]
        square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        std = square_avg.add(eps).sqrt_()
        delta = acc_delta.add(eps).sqrt_()
        delta.div_(std).mul_(grad)
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        p.add_(delta, alpha=-lr)
