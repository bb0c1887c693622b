"""Stochastic gradient descent, with momentum and Nesterov momentum (PyTorch's ``torch/optim/sgd.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rtorch
from rtorch.optim.optimizer import Optimizer, ParamsT, _check_lr, _check_weight_decay, _use_grad

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent (optionally with momentum).

    For each parameter :math:`\theta` with gradient :math:`g`:
    :math:`g \leftarrow g + \lambda\theta`; with momentum
    :math:`b \leftarrow \mu b + (1 - \tau) g` (:math:`b = g` on the first step)
    and :math:`g \leftarrow g + \mu b` (Nesterov) or :math:`g \leftarrow b`;
    then :math:`\theta \leftarrow \theta - \gamma g` (``+`` when ``maximize``).

    Args:
        params (iterable): parameters or param groups to optimize.
        lr (float): learning rate :math:`\gamma`. Default: 1e-3.
        momentum (float): momentum factor :math:`\mu`. Default: 0.
        dampening (float): dampening for momentum :math:`\tau`. Default: 0.
        weight_decay (float): L2 penalty :math:`\lambda`. Default: 0.
        nesterov (bool): use Nesterov momentum. Default: ``False``.
        maximize (bool): maximize the objective instead of minimizing it.
        foreach, differentiable, fused: accepted for PyTorch compatibility
            and kept in the groups; rtorch runs one per-tensor path.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.tensor([1.0, 2.0]))
        >>> opt = rtorch.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w
        Parameter containing:
        tensor([0.8000, 1.6000], requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check_lr(lr)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        _check_weight_decay(weight_decay)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            foreach=foreach,
            differentiable=differentiable,
            fused=fused,
        )
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)

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
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = -p.grad if group["maximize"] else p.grad
                if weight_decay != 0:
                    grad = grad.add(p, alpha=weight_decay)
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = grad.clone().detach()
                        state["momentum_buffer"] = buf
                    else:
                        buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                    grad = grad.add(buf, alpha=momentum) if nesterov else buf
                p.add_(grad, alpha=-lr)
        return loss
