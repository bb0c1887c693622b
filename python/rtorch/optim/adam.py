"""Adam and its decoupled-weight-decay form (PyTorch's ``torch/optim/adam.py``)."""

from __future__ import annotations

import math
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

__all__ = ["Adam", "adam"]


class Adam(Optimizer):
    r"""Adam: adaptive moment estimation (Kingma & Ba, 2014).

    Per parameter, with :math:`t` counting steps:
    :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
    :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`,
    :math:`\theta \leftarrow \theta - \frac{\gamma}{1-\beta_1^t}
    \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}` (``amsgrad`` uses the
    running maximum of :math:`v`). Weight decay adds :math:`\lambda\theta` to
    :math:`g`, or with ``decoupled_weight_decay`` scales :math:`\theta` by
    :math:`1-\gamma\lambda` first (AdamW).

    Args:
        params (iterable): parameters or param groups to optimize.
        lr (float): learning rate. Default: 1e-3.
        betas (tuple[float, float]): running-average coefficients of the
            gradient and its square. Default: (0.9, 0.999).
        eps (float): added to the denominator for stability. Default: 1e-8.
        weight_decay (float): weight decay. Default: 0.
        amsgrad (bool): use AMSGrad's running maximum. Default: ``False``.
        maximize (bool): maximize the objective. Default: ``False``.
        decoupled_weight_decay (bool): AdamW's weight decay. Default: ``False``.
        foreach (bool, optional): ``None``/``True`` run each group as one
            fused multi-tensor Rust kernel when all parameters are contiguous
            float CPU tensors; ``False`` runs the per-tensor reference path.
        differentiable (bool): use the per-tensor path. Default: ``False``.
        fused (bool, optional): like ``foreach=True`` but raises when the
            fused kernel cannot run.
        capturable: accepted for PyTorch compatibility (no CUDA graphs).

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.tensor([1.0, -2.0]))
        >>> opt = rtorch.optim.Adam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w
        Parameter containing:
        tensor([ 0.9000, -1.9000], requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
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
            amsgrad=amsgrad,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", None)

    def _init_group(
        self,
        group: dict[str, Any],
        params: list[rtorch.Tensor],
        grads: list[rtorch.Tensor],
        exp_avgs: list[rtorch.Tensor],
        exp_avg_sqs: list[rtorch.Tensor],
        max_exp_avg_sqs: list[rtorch.Tensor],
        state_steps: list[rtorch.Tensor],
    ) -> None:
        for p in group["params"]:
            if p.grad is None:
                continue
            params.append(p)
            grads.append(p.grad)
            state = self.state[p]
            if len(state) == 0:
                state["step"] = rtorch.tensor(0.0, dtype=_get_scalar_dtype())
                state["exp_avg"] = rtorch.zeros_like(p)
                state["exp_avg_sq"] = rtorch.zeros_like(p)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = rtorch.zeros_like(p)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsgrad"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            state_steps.append(state["step"])

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
            params: list[rtorch.Tensor] = []
            grads: list[rtorch.Tensor] = []
            exp_avgs: list[rtorch.Tensor] = []
            exp_avg_sqs: list[rtorch.Tensor] = []
            max_exp_avg_sqs: list[rtorch.Tensor] = []
            state_steps: list[rtorch.Tensor] = []
            self._init_group(
                group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps
            )
            beta1, beta2 = group["betas"]
            adam(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                max_exp_avg_sqs,
                state_steps,
                amsgrad=group["amsgrad"],
                beta1=beta1,
                beta2=beta2,
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
                foreach=group["foreach"],
                differentiable=group["differentiable"],
                fused=group["fused"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
            )
        return loss


def adam(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    exp_avgs: list[rtorch.Tensor],
    exp_avg_sqs: list[rtorch.Tensor],
    max_exp_avg_sqs: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    amsgrad: bool,
    beta1: float,
    beta2: float,
    lr: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
    foreach: bool | None = None,
    differentiable: bool = False,
    fused: bool | None = None,
    decoupled_weight_decay: bool = False,
) -> None:
    r"""Functional Adam (and AdamW with ``decoupled_weight_decay``); bumps
    ``state_steps``. See :class:`~rtorch.optim.Adam`."""
    if _use_fused(params, grads, foreach, differentiable, fused):
        rtorch._C._fused_adam(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            max_exp_avg_sqs,
            state_steps,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        return
    _single_tensor_adam(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs,
        state_steps,
        amsgrad=amsgrad,
        beta1=beta1,
        beta2=beta2,
        lr=lr,
        weight_decay=weight_decay,
        eps=eps,
        maximize=maximize,
        decoupled_weight_decay=decoupled_weight_decay,
    )


def _single_tensor_adam(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    exp_avgs: list[rtorch.Tensor],
    exp_avg_sqs: list[rtorch.Tensor],
    max_exp_avg_sqs: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    amsgrad: bool,
    beta1: float,
    beta2: float,
    lr: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
    decoupled_weight_decay: bool,
) -> None:
    for i, p in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        state_steps[i].add_(1)
        step = state_steps[i].item()
        if weight_decay != 0:
            if decoupled_weight_decay:
                p.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(p, alpha=weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        if amsgrad:
            max_sq = max_exp_avg_sqs[i]
            max_sq.copy_(rtorch.maximum(max_sq, exp_avg_sq))
            denom = (max_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        else:
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        p.addcdiv_(exp_avg, denom, value=-step_size)
