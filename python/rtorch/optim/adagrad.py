"""Adagrad (PyTorch's ``torch/optim/adagrad.py``)."""

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

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011).

    :math:`\tilde\gamma = \gamma / (1 + (t-1)\eta)`, :math:`s \leftarrow s + g^2`,
    :math:`\theta \leftarrow \theta - \tilde\gamma g / (\sqrt{s} + \epsilon)`.

    Args:
        params (iterable): parameters or param groups to optimize.
        lr (float): learning rate. Default: 1e-2.
        lr_decay (float): learning-rate decay :math:`\eta`. Default: 0.
        weight_decay (float): L2 penalty. Default: 0.
        initial_accumulator_value (float): starting value of :math:`s`. Default: 0.
        eps (float): added to the denominator for stability. Default: 1e-10.
        maximize (bool): maximize the objective. Default: ``False``.
        foreach, differentiable, fused: accepted for PyTorch compatibility.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.tensor([1.0]))
        >>> opt = rtorch.optim.Adagrad([w], lr=0.5)
        >>> w.sum().backward()
        >>> opt.step()
        >>> w
        Parameter containing:
        tensor([0.5000], requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check_lr(lr)
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        _check_weight_decay(weight_decay)
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(
                f"Invalid initial_accumulator_value value: {initial_accumulator_value}"
            )
        _check_eps(eps)
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            fused=fused,
        )
        super().__init__(params, defaults)
        # Unlike the other optimizers, Adagrad's state exists from construction.
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = rtorch.tensor(0.0, dtype=_get_scalar_dtype())
                state["sum"] = rtorch.full_like(p, initial_accumulator_value)

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
            lr, lr_decay, eps, weight_decay = (
                group["lr"],
                group["lr_decay"],
                group["eps"],
                group["weight_decay"],
            )
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = -p.grad if group["maximize"] else p.grad
                state = self.state[p]
                state["step"].add_(1)
                step = state["step"].item()
                if weight_decay != 0:
                    grad = grad.add(p, alpha=weight_decay)
                clr = lr / (1 + (step - 1) * lr_decay)
                state["sum"].addcmul_(grad, grad, value=1)
                std = state["sum"].sqrt().add_(eps)
                p.addcdiv_(grad, std, value=-clr)
        return loss
