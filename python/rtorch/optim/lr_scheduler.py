"""Learning-rate schedules (PyTorch's ``torch/optim/lr_scheduler.py``).

Schedulers use PyTorch's chainable form: each ``get_lr`` derives the next
learning rate from the group's current one, so several schedulers can act on
one optimizer and the sequences equal PyTorch's step for step.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from rtorch.optim.optimizer import Optimizer

__all__ = [
    "ConstantLR",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "StepLR",
]


class LRScheduler:
    r"""Base class of the learning-rate schedulers.

    On construction it records each group's ``initial_lr`` (when
    ``last_epoch == -1``) and takes the first step, which sets the epoch-0
    learning rates. ``step()`` advances ``last_epoch`` and writes ``get_lr()``
    into the groups.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        last_epoch (int): index of the last epoch, to resume a schedule.
            Default: -1 (start).
    """

    _get_lr_called_within_step: bool = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when resuming an optimizer"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()

    def get_lr(self) -> list[float]:
        """Compute the learning rates of the current ``last_epoch``."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """Return the last learning rates this scheduler computed, one per group."""
        return self._last_lr

    def step(self) -> None:
        """Advance one epoch and set each group's ``lr`` to the schedule's value."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Return the scheduler's state: every attribute except the optimizer."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by :meth:`state_dict`.

        Args:
            state_dict (dict): scheduler state.
        """
        self.__dict__.update(state_dict)

    def _group_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


def _per_group(value: Any, optimizer: Optimizer, name: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"Expected {len(optimizer.param_groups)} {name}, but got {len(value)}")
        return list(value)
    return [value] * len(optimizer.param_groups)


class LambdaLR(LRScheduler):
    r"""Set each group's lr to its initial lr times ``lr_lambda(epoch)``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        lr_lambda (Callable or list): a function of the epoch, or one per group.
        last_epoch (int): index of the last epoch. Default: -1.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.zeros(1))
        >>> opt = rtorch.optim.SGD([w], lr=1.0)
        >>> sched = rtorch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5**e)
        >>> sched.step()
        >>> sched.get_last_lr()
        [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = _per_group(lr_lambda, optimizer, "lr_lambdas")
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict[str, Any]:
        """Return the state; lambdas are saved only when they are callable objects (not functions)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [
            None if isinstance(fn, type(lambda: None)) else fn.__dict__.copy()
            for fn in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by :meth:`state_dict`."""
        state_dict = dict(state_dict)
        lr_lambdas = state_dict.pop("lr_lambdas")
        self.__dict__.update(state_dict)
        for fn, saved in zip(self.lr_lambdas, lr_lambdas, strict=True):
            if saved is not None:
                fn.__dict__.update(saved)

    def get_lr(self) -> list[float]:
        """Initial lr times the lambda at ``last_epoch``."""
        return [
            base * fn(self.last_epoch)
            for fn, base in zip(self.lr_lambdas, self.base_lrs, strict=True)
        ]


class MultiplicativeLR(LambdaLR):
    r"""Multiply each group's lr by ``lr_lambda(epoch)`` at every step after the first.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        lr_lambda (Callable or list): a function of the epoch, or one per group.
        last_epoch (int): index of the last epoch. Default: -1.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.zeros(1))
        >>> opt = rtorch.optim.SGD([w], lr=1.0)
        >>> sched = rtorch.optim.lr_scheduler.MultiplicativeLR(opt, lambda e: 0.5)
        >>> sched.step(); sched.step()
        >>> sched.get_last_lr()
        [0.25]
    """

    def get_lr(self) -> list[float]:
        """Current lr times the lambda (unchanged at epoch 0)."""
        if self.last_epoch > 0:
            return [
                lr * fn(self.last_epoch)
                for fn, lr in zip(self.lr_lambdas, self._group_lrs(), strict=True)
            ]
        return self._group_lrs()


class StepLR(LRScheduler):
    r"""Multiply each group's lr by ``gamma`` every ``step_size`` epochs.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        step_size (int): period of the decay.
        gamma (float): decay factor. Default: 0.1.
        last_epoch (int): index of the last epoch. Default: -1.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.zeros(1))
        >>> opt = rtorch.optim.SGD([w], lr=1.0)
        >>> sched = rtorch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        >>> [sched.step() or sched.get_last_lr()[0] for _ in range(4)]
        [1.0, 0.5, 0.5, 0.25]
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Decay at multiples of ``step_size``, else keep the current lr."""
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]


class MultiStepLR(LRScheduler):
    r"""Multiply each group's lr by ``gamma`` at each milestone epoch.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        milestones (list[int]): epochs at which to decay (a repeated milestone decays twice).
        gamma (float): decay factor. Default: 0.1.
        last_epoch (int): index of the last epoch. Default: -1.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.zeros(1))
        >>> opt = rtorch.optim.SGD([w], lr=1.0)
        >>> sched = rtorch.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 3], gamma=0.5)
        >>> [sched.step() or sched.get_last_lr()[0] for _ in range(4)]
        [0.5, 0.5, 0.25, 0.25]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Decay by ``gamma`` to the milestone's multiplicity at a milestone."""
        if self.last_epoch not in self.milestones:
            return self._group_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._group_lrs()]


class ConstantLR(LRScheduler):
    r"""Scale each group's lr by ``factor`` until epoch ``total_iters``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        factor (float): the scale, in (0, 1]. Default: 1/3.
        total_iters (int): epochs the scale lasts. Default: 5.
        last_epoch (int): index of the last epoch. Default: -1.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.zeros(1))
        >>> opt = rtorch.optim.SGD([w], lr=1.0)
        >>> sched = rtorch.optim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2)
        >>> [sched.get_last_lr()[0]] + [sched.step() or sched.get_last_lr()[0] for _ in range(3)]
        [0.5, 0.5, 1.0, 1.0]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Scale at epoch 0, undo the scale at ``total_iters``."""
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._group_lrs()]
        if self.last_epoch != self.total_iters:
            return self._group_lrs()
        return [lr * (1.0 / self.factor) for lr in self._group_lrs()]


class LinearLR(LRScheduler):
    r"""Scale each group's lr by a factor moving linearly from ``start_factor`` to ``end_factor``.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        start_factor (float): factor at epoch 0, in (0, 1]. Default: 1/3.
        end_factor (float): factor from ``total_iters`` on, in [0, 1]. Default: 1.0.
        total_iters (int): epochs of the ramp. Default: 5.
        last_epoch (int): index of the last epoch. Default: -1.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.zeros(1))
        >>> opt = rtorch.optim.SGD([w], lr=1.0)
        >>> sched = rtorch.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
        >>> [sched.get_last_lr()[0]] + [sched.step() or sched.get_last_lr()[0] for _ in range(2)]
        [0.5, 0.75, 1.0]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                "Starting multiplicative factor expected to be greater than 0 and less or equal to 1."
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Apply the ratio between consecutive factors of the ramp."""
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._group_lrs()]
        if self.last_epoch > self.total_iters:
            return self._group_lrs()
        delta = self.end_factor - self.start_factor
        ratio = 1.0 + delta / (self.total_iters * self.start_factor + (self.last_epoch - 1) * delta)
        return [lr * ratio for lr in self._group_lrs()]


class ExponentialLR(LRScheduler):
    r"""Multiply each group's lr by ``gamma`` every epoch.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        gamma (float): decay factor.
        last_epoch (int): index of the last epoch. Default: -1.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.zeros(1))
        >>> opt = rtorch.optim.SGD([w], lr=1.0)
        >>> sched = rtorch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
        >>> sched.step(); sched.step()
        >>> sched.get_last_lr()
        [0.25]
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Current lr times ``gamma`` (unchanged at epoch 0)."""
        if self.last_epoch == 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]


class CosineAnnealingLR(LRScheduler):
    r"""Anneal each group's lr along a cosine from its initial value to ``eta_min`` over ``T_max`` epochs.

    In PyTorch's chained (recursive) form:
    :math:`\eta_{t} = \eta_{min} + (\eta_{t-1} - \eta_{min})
    \frac{1 + \cos(\pi t / T_{max})}{1 + \cos(\pi (t-1) / T_{max})}`, which
    equals :math:`\eta_{min} + \frac12(\eta_0 - \eta_{min})(1 + \cos(\pi t/T_{max}))`
    when nothing else changes the lr; past ``T_max`` it rises again.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        T_max (int): half period, in epochs.
        eta_min (float): minimum learning rate. Default: 0.
        last_epoch (int): index of the last epoch. Default: -1.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.zeros(1))
        >>> opt = rtorch.optim.SGD([w], lr=1.0)
        >>> sched = rtorch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
        >>> [round(sched.step() or sched.get_last_lr()[0], 6) for _ in range(2)]
        [0.5, 0.0]
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:  # noqa: N803
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """One step of the recursive cosine schedule."""
        t, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        lrs = self._group_lrs()
        if t == 0:
            return lrs
        if self._step_count == 1 and t > 0:
            return [
                eta_min + (base - eta_min) * (1 + math.cos(t * math.pi / t_max)) / 2
                for base in self.base_lrs
            ]
        if (t - 1 - t_max) % (2 * t_max) == 0:
            return [
                lr + (base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                for lr, base in zip(lrs, self.base_lrs, strict=True)
            ]
        return [
            (1 + math.cos(math.pi * t / t_max))
            / (1 + math.cos(math.pi * (t - 1) / t_max))
            * (lr - eta_min)
            + eta_min
            for lr in lrs
        ]
