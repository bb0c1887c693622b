"""AdamW: Adam with decoupled weight decay (PyTorch's ``torch/optim/adamw.py``)."""

from __future__ import annotations

from rtorch.optim.adam import Adam
from rtorch.optim.optimizer import ParamsT

__all__ = ["AdamW"]


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2017): Adam whose weight decay scales the
    parameters by :math:`1 - \gamma\lambda` each step instead of adding to the
    gradient.

    Args:
        params (iterable): parameters or param groups to optimize.
        lr (float): learning rate. Default: 1e-3.
        betas (tuple[float, float]): running-average coefficients. Default: (0.9, 0.999).
        eps (float): added to the denominator for stability. Default: 1e-8.
        weight_decay (float): decoupled weight decay. Default: 1e-2.
        amsgrad (bool): use AMSGrad's running maximum. Default: ``False``.
        maximize (bool): maximize the objective. Default: ``False``.
        foreach, capturable, differentiable, fused: accepted for PyTorch compatibility.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.tensor([1.0]))
        >>> opt = rtorch.optim.AdamW([w], lr=0.1, weight_decay=0.5)
        >>> w.sum().backward()
        >>> opt.step()
        >>> w
        Parameter containing:
        tensor([0.8500], requires_grad=True)
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
