"""Adamax: Adam with the infinity norm (PyTorch's ``torch/optim/adamax.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rtorch
from rtorch.optim.optimizer import (
    Optimizer,
    ParamsT,
    _check_betas,
    _check_eps,
    _check_lr,
    _check_weight_decay,
    _get_scalar_dtype,
    _use_fused,
    _use_grad,
)

__all__ = ["Adamax", "adamax"]


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba, 2014, section 7): Adam with the infinity norm.

    :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
    :math:`u \leftarrow \max(\beta_2 u, |g| + \epsilon)`,
    :math:`\theta \leftarrow \theta - \frac{\gamma}{1-\beta_1^t} \frac{m}{u}`.

    Args:
        params (iterable): parameters or param groups to optimize.
        lr (float): learning rate. Default: 2e-3.
        betas (tuple[float, float]): running-average coefficients. Default: (0.9, 0.999).
        eps (float): added to :math:`|g|` for stability. Default: 1e-8.
        weight_decay (float): L2 penalty. Default: 0.
        foreach (bool, optional): ``None``/``True``: one fused Rust kernel per
            group when possible; ``False``: the per-tensor reference path.
        maximize (bool): maximize the objective. Default: ``False``.
        differentiable (bool): use the per-tensor path. Default: ``False``.
        capturable: accepted for PyTorch compatibility.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.tensor([1.0]))
        >>> opt = rtorch.optim.Adamax([w], lr=0.1)
        >>> w.sum().backward()
        >>> opt.step()
        >>> w
        Parameter containing:
        tensor([0.9000], requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        _check_lr(lr)
        _check_eps(eps)
        _check_betas(betas)
        _check_weight_decay(weight_decay)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
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
                    state["step"] = rtorch.tensor(0.0, dtype=_get_scalar_dtype())
                    state["exp_avg"] = rtorch.zeros_like(p)
                    state["exp_inf"] = rtorch.zeros_like(p)
                states.append(state)
            beta1, beta2 = group["betas"]
            adamax(
                params,
                [p.grad for p in params],
                [s["exp_avg"] for s in states],
                [s["exp_inf"] for s in states],
                [s["step"] for s in states],
                eps=group["eps"],
                beta1=beta1,
                beta2=beta2,
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                maximize=group["maximize"],
                foreach=group["foreach"],
                differentiable=group["differentiable"],
            )
        return loss


def adamax(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    exp_avgs: list[rtorch.Tensor],
    exp_infs: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    eps: float,
    beta1: float,
    beta2: float,
    lr: float,
    weight_decay: float,
    maximize: bool,
    foreach: bool | None = None,
    differentiable: bool = False,
) -> None:
    r"""Functional Adamax; bumps ``state_steps``. See :class:`~rtorch.optim.Adamax`."""
    kw = dict(
        eps=eps, beta1=beta1, beta2=beta2, lr=lr, weight_decay=weight_decay, maximize=maximize
    )
    if _use_fused(params, grads, foreach, differentiable):
        rtorch._C._fused_adamax(params, grads, exp_avgs, exp_infs, state_steps, **kw)
    else:
        _single_tensor_adamax(params, grads, exp_avgs, exp_infs, state_steps, **kw)


def _single_tensor_adamax(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    exp_avgs: list[rtorch.Tensor],
    exp_infs: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    eps: float,
    beta1: float,
    beta2: float,
    lr: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    for i, p in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        exp_avg, exp_inf = exp_avgs[i], exp_infs[i]
        state_steps[i].add_(1)
        step = state_steps[i].item()
        if weight_decay != 0:
            grad = grad.add(p, alpha=weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_inf.copy_(rtorch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps)))
        clr = lr / (1 - beta1**step)
        p.addcdiv_(exp_avg, exp_inf, value=-clr)
