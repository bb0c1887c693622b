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
    _use_fused,
    _use_grad,
)

__all__ = ["Adagrad", "adagrad"]


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
        foreach (bool, optional): ``None``/``True``: one fused Rust kernel per
            group when possible; ``False``: the per-tensor reference path.
        differentiable (bool): use the per-tensor path. Default: ``False``.
        fused (bool, optional): like ``foreach=True``, raising when unsupported.

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
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            states = [self.state[p] for p in params]
            adagrad(
                params,
                [p.grad for p in params],
                [s["sum"] for s in states],
                [s["step"] for s in states],
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                lr_decay=group["lr_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
                foreach=group["foreach"],
                differentiable=group["differentiable"],
                fused=group["fused"],
            )
        return loss


def adagrad(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    state_sums: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    lr: float,
    weight_decay: float,
    lr_decay: float,
    eps: float,
    maximize: bool,
    foreach: bool | None = None,
    differentiable: bool = False,
    fused: bool | None = None,
) -> None:
    r"""Functional Adagrad; bumps ``state_steps``. See :class:`~rtorch.optim.Adagrad`."""
    kw = dict(lr=lr, weight_decay=weight_decay, lr_decay=lr_decay, eps=eps, maximize=maximize)
    if _use_fused(params, grads, foreach, differentiable, fused):
        rtorch._C._fused_adagrad(params, grads, state_sums, state_steps, **kw)
    else:
        _single_tensor_adagrad(params, grads, state_sums, state_steps, **kw)


def _single_tensor_adagrad(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    state_sums: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    lr: float,
    weight_decay: float,
    lr_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    for i, p in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        state_steps[i].add_(1)
        step = state_steps[i].item()
        if weight_decay != 0:
            grad = grad.add(p, alpha=weight_decay)
        clr = lr / (1 + (step - 1) * lr_decay)
        state_sums[i].addcmul_(grad, grad, value=1)
        std = state_sums[i].sqrt().add_(eps)
        p.addcdiv_(grad, std, value=-clr)
