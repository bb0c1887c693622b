"""NAdam: Adam with Nesterov momentum (PyTorch's ``torch/optim/nadam.py``)."""

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

__all__ = ["NAdam", "nadam"]


class NAdam(Optimizer):
    r"""NAdam (Dozat, 2016): Adam with Nesterov momentum.

    With :math:`\mu_t = \beta_1 (1 - \frac12 0.96^{t\psi})` (:math:`\psi` the
    momentum decay) and :math:`\Pi_t = \prod_{i \le t} \mu_i`:
    :math:`\theta \leftarrow \theta - \gamma\frac{1-\mu_t}{1-\Pi_t}\frac{g}{d}
    - \gamma\frac{\mu_{t+1}}{1-\Pi_{t+1}}\frac{m}{d}` where
    :math:`d = \sqrt{v / (1-\beta_2^t)} + \epsilon`.

    Args:
        params (iterable): parameters or param groups to optimize.
        lr (float): learning rate. Default: 2e-3.
        betas (tuple[float, float]): running-average coefficients. Default: (0.9, 0.999).
        eps (float): added to the denominator for stability. Default: 1e-8.
        weight_decay (float): weight decay. Default: 0.
        momentum_decay (float): :math:`\psi`. Default: 4e-3.
        decoupled_weight_decay (bool): AdamW-style weight decay (NAdamW). Default: ``False``.
        foreach (bool, optional): ``None``/``True``: one fused Rust kernel per
            group when possible; ``False``: the per-tensor reference path.
        maximize (bool): maximize the objective. Default: ``False``.
        differentiable (bool): use the per-tensor path. Default: ``False``.
        capturable: accepted for PyTorch compatibility.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.tensor([1.0]))
        >>> opt = rtorch.optim.NAdam([w], lr=0.1)
        >>> w.sum().backward()
        >>> opt.step()
        >>> round(w.item(), 4)
        0.9
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_lr(lr)
        _check_eps(eps)
        _check_betas(betas)
        _check_weight_decay(weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
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
                    state["mu_product"] = rtorch.tensor(1.0, dtype=_get_scalar_dtype())
                    state["exp_avg"] = rtorch.zeros_like(p)
                    state["exp_avg_sq"] = rtorch.zeros_like(p)
                states.append(state)
            beta1, beta2 = group["betas"]
            nadam(
                params,
                [p.grad for p in params],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [s["mu_product"] for s in states],
                [s["step"] for s in states],
                beta1=beta1,
                beta2=beta2,
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                momentum_decay=group["momentum_decay"],
                eps=group["eps"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
                maximize=group["maximize"],
                foreach=group["foreach"],
                differentiable=group["differentiable"],
            )
        return loss


def nadam(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    exp_avgs: list[rtorch.Tensor],
    exp_avg_sqs: list[rtorch.Tensor],
    mu_products: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    beta1: float,
    beta2: float,
    lr: float,
    weight_decay: float,
    momentum_decay: float,
    eps: float,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    foreach: bool | None = None,
    differentiable: bool = False,
) -> None:
    r"""Functional NAdam; bumps ``state_steps`` and ``mu_products``. See :class:`~rtorch.optim.NAdam`."""
    kw = dict(
        beta1=beta1,
        beta2=beta2,
        lr=lr,
        weight_decay=weight_decay,
        momentum_decay=momentum_decay,
        eps=eps,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )
    args = (params, grads, exp_avgs, exp_avg_sqs, mu_products, state_steps)
    if _use_fused(params, grads, foreach, differentiable):
        rtorch._C._fused_nadam(*args, **kw)
    else:
        _single_tensor_nadam(*args, **kw)


def _single_tensor_nadam(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    exp_avgs: list[rtorch.Tensor],
    exp_avg_sqs: list[rtorch.Tensor],
    mu_products: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    beta1: float,
    beta2: float,
    lr: float,
    weight_decay: float,
    momentum_decay: float,
    eps: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> None:
    for i, p in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        exp_avg, exp_avg_sq, mu_product = exp_avgs[i], exp_avg_sqs[i], mu_products[i]
        state_steps[i].add_(1)
        step = state_steps[i].item()
        bias_correction2 = 1 - beta2**step
        if weight_decay != 0:
            if decoupled_weight_decay:
                p.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(p, alpha=weight_decay)
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        mu_product.mul_(mu)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
        prod = mu_product.item()
        p.addcdiv_(grad, denom, value=(-lr * (1.0 - mu) / (1.0 - prod)))
        p.addcdiv_(exp_avg, denom, value=(-lr * mu_next) / (1.0 - prod * mu_next))
