"""``Optimizer``: the base class every optimizer derives from (PyTorch's ``torch/optim/optimizer.py``).

It owns ``param_groups`` (each a dict of parameters plus that group's options),
``defaults`` and ``state`` (a ``defaultdict`` keyed by parameter), and gives
``zero_grad``, step hooks and the ``state_dict`` format PyTorch writes, with
parameters replaced by integer ids so saved state round-trips through
``rtorch.save``/``rtorch.load`` and loads into a fresh model.
"""

from __future__ import annotations

import functools
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from copy import deepcopy
from itertools import chain
from typing import Any

import rtorch
from rtorch.utils.hooks import RemovableHandle

__all__ = [
    "Optimizer",
    "register_optimizer_step_post_hook",
    "register_optimizer_step_pre_hook",
]

ParamsT = Iterable[rtorch.Tensor] | Iterable[dict[str, Any]]


class _RequiredParameter:
    """Marks an option a param group must give when the optimizer has no default."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

_global_step_pre_hooks: dict[int, Callable] = OrderedDict()
_global_step_post_hooks: dict[int, Callable] = OrderedDict()


def register_optimizer_step_pre_hook(hook: Callable) -> RemovableHandle:
    """Register a pre hook run before every optimizer's ``step``: ``hook(optimizer, args, kwargs)``."""
    handle = RemovableHandle(_global_step_pre_hooks)
    _global_step_pre_hooks[handle.id] = hook
    return handle


def register_optimizer_step_post_hook(hook: Callable) -> RemovableHandle:
    """Register a post hook run after every optimizer's ``step``: ``hook(optimizer, args, kwargs)``."""
    handle = RemovableHandle(_global_step_post_hooks)
    _global_step_post_hooks[handle.id] = hook
    return handle


def _typename(obj: Any) -> str:
    if isinstance(obj, rtorch.Tensor):
        return obj.type()
    module = type(obj).__module__
    name = type(obj).__qualname__
    return name if module in ("builtins", None) else f"{module}.{name}"


def _get_scalar_dtype() -> rtorch.dtype:
    # PyTorch keeps scalar state ("step") in float64 only when that is the default dtype.
    return rtorch.float64 if rtorch.get_default_dtype() == rtorch.float64 else rtorch.float32


def _get_value(x: Any) -> float:
    return x.item() if isinstance(x, rtorch.Tensor) else x


def _use_grad(step: Callable) -> Callable:
    """Run ``step`` with gradient recording off (the closure re-enables it itself)."""

    @functools.wraps(step)
    def wrapper(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
        with rtorch.no_grad():
            return step(self, *args, **kwargs)

    return wrapper


def _hooked(step: Callable) -> Callable:
    """Wrap a subclass's ``step`` so the global and per-optimizer hooks run around it."""

    @functools.wraps(step)
    def wrapper(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
        for pre in chain(_global_step_pre_hooks.values(), self._optimizer_step_pre_hooks.values()):
            result = pre(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        f"{pre} must return None or a tuple of (new_args, new_kwargs), "
                        f"but got {result}."
                    )
                args, kwargs = result
        out = step(self, *args, **kwargs)
        for post in chain(
            self._optimizer_step_post_hooks.values(), _global_step_post_hooks.values()
        ):
            post(self, args, kwargs)
        return out

    wrapper._rtorch_hooked = True  # type: ignore[attr-defined]
    return wrapper


_FUSED_DTYPES = (rtorch.float32, rtorch.float64)


def _use_fused(
    params: list[rtorch.Tensor],
    grads: list[rtorch.Tensor],
    foreach: bool | None,
    differentiable: bool = False,
    fused: bool | None = None,
) -> bool:
    """Whether a group's update runs as one fused multi-tensor Rust kernel.

    PyTorch's ``foreach``/``fused`` switches: ``None`` (the default) takes the
    fused kernel whenever every parameter is a contiguous float32/float64 CPU
    tensor whose gradient has its dtype; ``False`` forces the
    per-tensor reference path (as does ``differentiable``). ``fused=True``
    with unsupported parameters raises, as PyTorch does.
    """
    if differentiable or not params:
        return False
    if foreach is False and not fused:
        return False
    # Cheap attribute checks only (this runs every step); shapes are checked in Rust.
    for p, g in zip(params, grads, strict=True):
        dtype = p.dtype
        if dtype not in _FUSED_DTYPES or not p.is_cpu or not p.is_contiguous() or g.dtype != dtype:
            if fused:
                raise RuntimeError(
                    "`fused=True` requires all the params to be contiguous floating point "
                    f"Tensors of supported devices: ['cpu'] but {dtype} and {p.device.type}"
                )
            return False
    return True


def _check_lr(lr: Any) -> None:
    if isinstance(lr, rtorch.Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")


def _check_eps(eps: float) -> None:
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")


def _check_weight_decay(weight_decay: float) -> None:
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def _check_betas(betas: tuple[float, float]) -> None:
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")


class Optimizer:
    r"""Base class for all optimizers.

    Subclasses define ``step`` and, in ``__init__``, pass their options as
    ``defaults``; every param group not giving an option takes it from there.

    Args:
        params (iterable): an iterable of :class:`rtorch.Tensor` s or of dicts
            (param groups: ``{"params": [...], "lr": ...}``) saying which
            tensors to optimize, and with which options.
        defaults (dict): the default value of each optimization option.

    Example::

        >>> w = rtorch.nn.Parameter(rtorch.ones(2))
        >>> opt = rtorch.optim.SGD([w], lr=0.5)
        >>> w.sum().backward()
        >>> opt.step()
        >>> w
        Parameter containing:
        tensor([0.5000, 0.5000], requires_grad=True)
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_rtorch_hooked", False):
            cls.step = _hooked(step)  # type: ignore[method-assign]

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._optimizer_step_pre_hooks: dict[int, Callable] = OrderedDict()
        self._optimizer_step_post_hooks: dict[int, Callable] = OrderedDict()
        if isinstance(params, rtorch.Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {_typename(params)}"
            )
        if isinstance(params, set):
            warnings.warn(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead. "
                "This will be an error in a future release.",
                FutureWarning,
                stacklevel=3,
            )
        self.state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "defaults": self.defaults,
            "state": self.state,
            "param_groups": self.param_groups,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_optimizer_step_pre_hooks", OrderedDict())
        self.__dict__.setdefault("_optimizer_step_post_hooks", OrderedDict())

    def __repr__(self) -> str:
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group.keys()):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        r"""Add a param group to the optimizer's ``param_groups``.

        Useful when fine-tuning: layers unfrozen later join the optimizer
        with their own options.

        Args:
            param_group (dict): the tensors to optimize (``"params"``) and
                any options that differ from the optimizer's defaults.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {_typename(param_group)}")
        params = param_group["params"]
        if isinstance(params, rtorch.Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            param_group["params"] = list(params)
        for param in param_group["params"]:
            if not isinstance(param, rtorch.Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is {_typename(param)}"
                )
            if not self.defaults.get("differentiable", None) and not (
                param.is_leaf or param.retains_grad
            ):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization parameter {name}"
                )
            param_group.setdefault(name, default)

        params = param_group["params"]
        if len(params) != len({id(p) for p in params}):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; "
                "in future, this will cause an error; "
                "see github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )
        seen = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
        if not seen.isdisjoint(id(p) for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        r"""Reset the gradients of all optimized tensors.

        Args:
            set_to_none (bool): set the grads to ``None`` instead of filling
                them with zeros (less memory, and ``step`` skips parameters
                whose grad is ``None``). Default: ``True``.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad.detach_()
                    else:
                        p.grad.requires_grad_(False)
                    p.grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        r"""Perform a single optimization step (a parameter update).

        Args:
            closure (Callable): a closure that re-evaluates the model and
                returns the loss; optional for most optimizers.
        """
        raise NotImplementedError

    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        r"""Register a hook run before ``step``: ``hook(optimizer, args, kwargs) -> None or (args, kwargs)``.

        Returns:
            a handle whose ``remove()`` removes the hook.
        """
        handle = RemovableHandle(self._optimizer_step_pre_hooks)
        self._optimizer_step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        r"""Register a hook run after ``step``: ``hook(optimizer, args, kwargs) -> None``.

        Returns:
            a handle whose ``remove()`` removes the hook.
        """
        handle = RemovableHandle(self._optimizer_step_post_hooks)
        self._optimizer_step_post_hooks[handle.id] = hook
        return handle

    def state_dict(self) -> dict[str, Any]:
        r"""Return the optimizer's state as a :class:`dict`, as PyTorch lays it out.

        ``state`` maps integer parameter ids to each parameter's state (its
        tensors are not copied); ``param_groups`` is a list of the groups'
        options with ``"params"`` a list of those ids, numbered in order
        through the groups.

        Example::

            >>> w = rtorch.nn.Parameter(rtorch.ones(2))
            >>> rtorch.optim.SGD([w], lr=0.1).state_dict()["param_groups"][0]["params"]
            [0]
        """
        param_mappings: dict[int, int] = {}
        start_index = 0

        def pack_group(group: dict[str, Any]) -> dict[str, Any]:
            nonlocal start_index
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start_index):
                param_mappings.setdefault(id(p), i)
            packed["params"] = [param_mappings[id(p)] for p in group["params"]]
            start_index += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {
            (param_mappings[id(k)] if isinstance(k, rtorch.Tensor) else k): v
            for k, v in self.state.items()
        }
        return {"state": packed_state, "param_groups": param_groups}

    @staticmethod
    def _cast(param: rtorch.Tensor, value: Any, key: Any = None) -> Any:
        # Floating state follows its parameter's dtype; "step" keeps its own.
        if isinstance(value, rtorch.Tensor):
            if key != "step" and param.is_floating_point() and value.is_floating_point():
                return value.to(dtype=param.dtype)
            return value
        if isinstance(value, dict):
            return {k: Optimizer._cast(param, v, key=k) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(Optimizer._cast(param, v) for v in value)
        return value

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        r"""Load optimizer state saved by :meth:`state_dict`.

        Args:
            state_dict (dict): optimizer state; its groups must match this
                optimizer's groups in number and size.
        """
        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(
            len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups, strict=True)
        ):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size "
                "of optimizer's group"
            )
        id_map = dict(
            zip(
                chain.from_iterable(g["params"] for g in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
                strict=False,
            )
        )
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = self._cast(param, v)
            else:
                state[k] = v
        for group, saved in zip(groups, saved_groups, strict=True):
            saved["params"] = group["params"]
        self.__setstate__({"state": state, "param_groups": saved_groups})
