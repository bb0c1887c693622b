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
    _use_grad,
)

__all__ = ["Adam"]


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
        foreach, capturable, differentiable, fused: accepted for PyTorch
            compatibility; rtorch runs one per-tensor path.

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
        # Per-tensor reference path; a fused multi-tensor Rust kernel is a later step.
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, amsgrad = group["weight_decay"], group["amsgrad"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = rtorch.tensor(0.0, dtype=_get_scalar_dtype())
                    state["exp_avg"] = rtorch.zeros_like(p)
                    state["exp_avg_sq"] = rtorch.zeros_like(p)
                    if amsgrad:
                        state["max_exp_avg_sq"] = rtorch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"].add_(1)
                step = state["step"].item()
                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        p.mul_(1 - lr * weight_decay)
                    else:
                        grad = grad.add(p, alpha=weight_decay)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = lr / (1 - beta1**step)
                bias_correction2_sqrt = math.sqrt(1 - beta2**step)
                if amsgrad:
                    max_sq = state["max_exp_avg_sq"]
                    max_sq.copy_(rtorch.maximum(max_sq, exp_avg_sq))
                    denom = (max_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                else:
                    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)
        return loss
