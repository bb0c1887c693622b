"""Rprop: resilient backpropagation (PyTorch's ``torch/optim/rprop.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rtorch
from rtorch.optim.optimizer import Optimizer, ParamsT, _check_lr, _get_scalar_dtype, _use_grad

__all__ = ["Rprop", "rprop"]


class Rprop(Optimizer):
    r"""Rprop (Riedmiller & Braun, 1993): per-element step sizes that grow
    by ``etaplus`` while the gradient keeps its sign and shrink by
    ``etaminus`` when it flips (that element then skips its update).

    Args:
        params (iterable): parameters or param groups to optimize.
        lr (float): initial step size. Default: 1e-2.
        etas (tuple[float, float]): (etaminus, etaplus). Default: (0.5, 1.2).
        step_sizes (tuple[float, float]): minimal and maximal step sizes. Default: (1e-6, 50).
        maximize (bool): maximize the objective. Default: ``False``.
        foreach, capturable, differentiable: accepted for PyTorch
            compatibility; Rprop runs the per-tensor path.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.tensor([1.0, -1.0]))
        >>> opt = rtorch.optim.Rprop([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w
        Parameter containing:
        tensor([ 0.9000, -0.9000], requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(
            lr=lr,
            etas=etas,
            step_sizes=step_sizes,
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
                    state["prev"] = rtorch.zeros_like(p)
                    state["step_size"] = rtorch.full_like(p.grad, group["lr"])
                states.append(state)
            etaminus, etaplus = group["etas"]
            step_size_min, step_size_max = group["step_sizes"]
            rprop(
                params,
                [p.grad for p in params],
                [s["prev"] for s in states],
                [s["step_size"] for s in states],
                [s["step"] for s in states],
                step_size_min=step_size_min,
                step_size_max=step_size_max,
                etaminus=etaminus,
                etaplus=etaplus,
                maximize=group["maximize"],
            )
        return loss


def rprop(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    prevs: list[rtorch.Tensor],
    step_sizes: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    step_size_min: float,
    step_size_max: float,
    etaminus: float,
    etaplus: float,
    maximize: bool,
    foreach: bool | None = None,
    differentiable: bool = False,
) -> None:
    r"""Functional Rprop (per-tensor path); bumps ``state_steps``. See :class:`~rtorch.optim.Rprop`."""
    _single_tensor_rprop(
        params,
        grads,
        prevs,
        step_sizes,
        state_steps,
        step_size_min=step_size_min,
        step_size_max=step_size_max,
        etaminus=etaminus,
        etaplus=etaplus,
        maximize=maximize,
    )


def _single_tensor_rprop(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    prevs: list[rtorch.Tensor],
    step_sizes: list[rtorch.Tensor],
    state_steps: list[rtorch.Tensor],
    *,
    step_size_min: float,
    step_size_max: float,
    etaminus: float,
    etaplus: float,
    maximize: bool,
) -> None:
    for i, p in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        prev, step_size = prevs[i], step_sizes[i]
        state_steps[i].add_(1)
        sign = grad.mul(prev).sign()
        one = rtorch.ones_like(sign)
        factor = rtorch.where(
            sign.gt(0), one * etaplus, rtorch.where(sign.lt(0), one * etaminus, one)
        )
        step_size.mul_(factor).clamp_(step_size_min, step_size_max)
        grad = rtorch.where(factor.eq(etaminus), rtorch.zeros_like(grad), grad)
        p.addcmul_(grad.sign(), step_size, value=-1)
        prev.copy_(grad)
