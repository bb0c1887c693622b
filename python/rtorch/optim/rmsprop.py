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
    _use_fused,
    _use_grad,
)

__all__ = ["RMSprop", "rmsprop"]


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
        foreach (bool, optional): ``None``/``True``: one fused Rust kernel per
            group when possible; ``False``: the per-tensor reference path.
        differentiable (bool): use the per-tensor path. Default: ``False``.
        capturable: accepted for PyTorch compatibility.

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

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("momentum", 0)
            group.setdefault("centered", False)
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)
            group.setdefault("differentiable", False)

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
            momentum, centered = group["momentum"], group["centered"]
            params = [p for p in group["params"] if p.grad is not None]
            states = []
            for p in params:
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = rtorch.tensor(0.0, dtype=_get_scalar_dtype())
                    state["square_avg"] = rtorch.zeros_like(p)
                    if momentum > 0:
                        state["momentum_buffer"] = rtorch.zeros_like(p)
                    if centered:
                        state["grad_avg"] = rtorch.zeros_like(p)
                states.append(state)
            rmsprop(
                params,
                [p.grad for p in params],
                [s["square_avg"] for s in states],
                [s["grad_avg"] for s in states] if centered else [],
                [s["momentum_buffer"] for s in states] if momentum > 0 else [],
                [s["step"] for s in states],
                lr=group["lr"],
                alpha=group["alpha"],
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                momentum=momentum,
                centered=centered,
                maximize=group["maximize"],
                foreach=group["foreach"],
                differentiable=group["differentiable"],
            )
        return loss


def rmsprop(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    square_avgs: list[rtorch.Tensor],
    grad_avgs: list[rtorch.Tensor],
    momentum_buffer_list: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
    foreach: bool | None = None,
    differentiable: bool = False,
) -> None:
    r"""Functional RMSprop; bumps ``state_steps``. See :class:`~rtorch.optim.RMSprop`."""
    kw = dict(
        lr=lr,
        alpha=alpha,
        eps=eps,
        weight_decay=weight_decay,
        momentum=momentum,
        centered=centered,
        maximize=maximize,
    )
    args = (params, grads, square_avgs, grad_avgs, momentum_buffer_list, state_steps)
    if _use_fused(params, grads, foreach, differentiable):
        rtorch._C._fused_rmsprop(*args, **kw)
    else:
        _single_tensor_rmsprop(*args, **kw)


def _single_tensor_rmsprop(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    square_avgs: list[rtorch.Tensor],
    grad_avgs: list[rtorch.Tensor],
    momentum_buffer_list: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> None:
    for i, p in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        state_steps[i].add_(1)
        if weight_decay != 0:
            grad = grad.add(p, alpha=weight_decay)
        square_avg = square_avgs[i]
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if centered:
            grad_avg = grad_avgs[i]
            grad_avg.lerp_(grad, 1 - alpha)
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(eps)
        if momentum > 0:
            buf = momentum_buffer_list[i]
            buf.mul_(momentum).addcdiv_(grad, avg)
            p.add_(buf, alpha=-lr)
        else:
            p.addcdiv_(grad, avg, value=-lr)
