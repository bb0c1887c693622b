"""RMSprop (PyTorch's ``torch/optim/rmsprop.py``)."""

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
    _use_grad,
)

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture notes; centered form from Graves, 2013).

    :math:`v \leftarrow \alpha v + (1-\alpha) g^2`; ``centered`` also keeps
    :math:`\bar g \leftarrow \alpha \bar g + (1-\alpha) g` and uses
    :math:`v - \bar g^2`; the update is :math:`g / (\sqrt{v} + \epsilon)`,
    through a momentum buffer when ``momentum > 0``.

    Args:
        params (iterable): parameters or param groups to optimize.
        lr (float): learning rate. Default: 1e-2.
        alpha (float): smoothing constant. Default: 0.99.
        eps (float): added to the denominator for stability. Default: 1e-8.
        weight_decay (float): L2 penalty. Default: 0.
        momentum (float): momentum factor. Default: 0.
        centered (bool): normalize by the estimated variance. Default: ``False``.
        maximize (bool): maximize the objective. Default: ``False``.
        capturable, foreach, differentiable: accepted for PyTorch compatibility.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.tensor([1.0]))
        >>> opt = rtorch.optim.RMSprop([w], lr=0.01)
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
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_lr(lr)
        _check_eps(eps)
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        _check_weight_decay(weight_decay)
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            alpha=alpha,
            eps=eps,
            centered=centered,
            weight_decay=weight_decay,
            capturable=capturable,
            foreach=foreach,
            maximize=maximize,
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
        # Per-tensor reference path; a fused multi-tensor Rust kernel is a later step.
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            momentum, centered, weight_decay = (
                group["momentum"],
                group["centered"],
                group["weight_decay"],
            )
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = rtorch.tensor(0.0, dtype=_get_scalar_dtype())
                    state["square_avg"] = rtorch.zeros_like(p)
                    if momentum > 0:
                        state["momentum_buffer"] = rtorch.zeros_like(p)
                    if centered:
                        state["grad_avg"] = rtorch.zeros_like(p)
                state["step"].add_(1)
                if weight_decay != 0:
                    grad = grad.add(p, alpha=weight_decay)
                square_avg = state["square_avg"]
                square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
                if centered:
                    grad_avg = state["grad_avg"]
                    grad_avg.lerp_(grad, 1 - alpha)
                    avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
                else:
                    avg = square_avg.sqrt()
                avg = avg.add_(eps)
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf.mul_(momentum).addcdiv_(grad, avg)
                    p.add_(buf, alpha=-lr)
                else:
                    p.addcdiv_(grad, avg, value=-lr)
        return loss
