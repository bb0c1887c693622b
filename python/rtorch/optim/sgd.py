"""Stochastic gradient descent, with momentum and Nesterov momentum (PyTorch's ``torch/optim/sgd.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rtorch
from rtorch.optim.optimizer import (
    Optimizer,
    ParamsT,
    _check_lr,
    _check_weight_decay,
    _use_fused,
    _use_grad,
)

__all__ = ["SGD", "sgd"]


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
        foreach (bool, optional): ``None`` or ``True`` run each group's update
            as one fused multi-tensor Rust kernel when all parameters are
            contiguous float CPU tensors; ``False`` runs the per-tensor
            reference path. Default: ``None``.
        differentiable (bool): run the per-tensor path (kept for PyTorch
            compatibility). Default: ``False``.
        fused (bool, optional): like ``foreach=True``, but raises when the
            parameters cannot take the fused kernel. Default: ``None``.

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
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", None)

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
            grads = [p.grad for p in params]
            momentum = group["momentum"]
            bufs = [self.state[p].get("momentum_buffer") for p in params] if momentum else []
            sgd(
                params,
                grads,
                bufs,
                lr=group["lr"],
                momentum=momentum,
                dampening=group["dampening"],
                weight_decay=group["weight_decay"],
                nesterov=group["nesterov"],
                maximize=group["maximize"],
                foreach=group["foreach"],
                differentiable=group["differentiable"],
                fused=group["fused"],
            )
            if momentum:
                for p, buf in zip(params, bufs, strict=True):
                    self.state[p]["momentum_buffer"] = buf
        return loss


def sgd(
    params: list[rtorch.Tensor],
    d_p_list: list[rtorch.Tensor],
    momentum_buffer_list: list[rtorch.Tensor | None],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    foreach: bool | None = None,
    differentiable: bool = False,
    fused: bool | None = None,
) -> None:
    r"""Functional SGD: updates ``params`` in place; ``momentum_buffer_list``
    entries that are ``None`` are filled with the new buffers.
    See :class:`~rtorch.optim.SGD`."""
    if _use_fused(params, d_p_list, foreach, differentiable, fused):
        func = _fused_sgd
    else:
        func = _single_tensor_sgd
    func(
        params,
        d_p_list,
        momentum_buffer_list,
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
        nesterov=nesterov,
        maximize=maximize,
    )


def _single_tensor_sgd(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    momentum_buffer_list: list[rtorch.Tensor | None],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
) -> None:
    for i, p in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        if weight_decay != 0:
            grad = grad.add(p, alpha=weight_decay)
        if momentum != 0:
            buf = momentum_buffer_list[i]
            if buf is None:
                buf = grad.clone().detach()
                momentum_buffer_list[i] = buf
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            grad = grad.add(buf, alpha=momentum) if nesterov else buf
        p.add_(grad, alpha=-lr)


def _fused_sgd(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    momentum_buffer_list: list[rtorch.Tensor | None],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
) -> None:
    first = []
    if momentum != 0:
        for i, buf in enumerate(momentum_buffer_list):
            first.append(buf is None)
            if buf is None:
                momentum_buffer_list[i] = rtorch.empty_like(params[i])
    rtorch._C._fused_sgd(
        params,
        grads,
        momentum_buffer_list,
        first,
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
        nesterov=nesterov,
        maximize=maximize,
    )
