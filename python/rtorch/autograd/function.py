"""Custom differentiable operations: ``autograd.Function``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from rtorch import _C
from rtorch.autograd.grad_mode import no_grad

__all__ = ["Function", "FunctionCtx", "once_differentiable"]


class FunctionCtx:
    """The ``ctx`` passed to a ``Function``'s ``forward`` and ``backward``."""

    def __init__(self) -> None:
        self.to_save: tuple = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self.materialize_grads = True
        self._non_differentiable: list = []
        self._dirty: list = []
        self._saved: tuple | None = None
        self._saved_ever = False

    def save_for_backward(self, *tensors: Any) -> None:
        """Saves tensors (or ``None``) for ``backward``; read them back from
        ``ctx.saved_tensors``. In-place changes after saving are detected."""
        import rtorch

        for t in tensors:
            if t is not None and not isinstance(t, rtorch.Tensor):
                raise TypeError(
                    "save_for_backward can only save variables, but argument "
                    f"{tensors.index(t)} is of type {type(t).__name__}"
                )
        self.to_save = tensors
        self._saved_ever = True

    @property
    def saved_tensors(self) -> tuple:
        if self._saved is not None:
            return self._saved
        if self._saved_ever and not self.to_save:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved "
                "tensors after they have already been freed). Saved intermediate values of the "
                "graph are freed when you call .backward() or autograd.grad(). Specify "
                "retain_graph=True if you need to backward through the graph a second time or "
                "if you need to access saved tensors after calling backward."
            )
        return tuple(self.to_save)

    saved_variables = saved_tensors

    def mark_non_differentiable(self, *args: Any) -> None:
        """Marks outputs that get no gradient (e.g. indices)."""
        self._non_differentiable.extend(args)

    def mark_dirty(self, *args: Any) -> None:
        """Marks inputs that ``forward`` modified in place."""
        self._dirty.extend(args)

    def set_materialize_grads(self, value: bool) -> None:
        """Whether ``backward`` gets zeros (True, default) or ``None`` for
        outputs whose gradient is undefined."""
        self.materialize_grads = bool(value)


class _FunctionMeta(type):
    def __init__(cls, name: str, bases: tuple, attrs: dict) -> None:
        super().__init__(name, bases, attrs)
        cls._backward_name = f"{name}Backward"


class Function(metaclass=_FunctionMeta):
    """Base class of custom autograd operations.

    Subclass it with static ``forward(ctx, *args)`` and ``backward(ctx,
    *grad_outputs)`` methods (or ``forward(*args)`` plus
    ``setup_context(ctx, inputs, output)``), then call ``apply``.

    Example::

        >>> class Exp(rtorch.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         y = x.exp()
        ...         ctx.save_for_backward(y)
        ...         return y
        ...     @staticmethod
        ...     def backward(ctx, g):
        ...         (y,) = ctx.saved_tensors
        ...         return g * y
        >>> x = rtorch.zeros(2, requires_grad=True)
        >>> Exp.apply(x).sum().backward()
        >>> x.grad
        tensor([1., 1.])
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            "Legacy autograd function with non-static forward method is deprecated. "
            "Please use new-style autograd function with static forward method. "
            "(Example: https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)"
        )

    @staticmethod
    def forward(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "You must implement the forward function for custom autograd.Function."
        )

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Any) -> Any:
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom "
            "autograd.Function to use it with backward mode AD."
        )

    vjp = backward

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        import rtorch

        if kwargs:
            raise TypeError(f"{cls.__name__}.apply() takes no keyword arguments")
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, rtorch.Tensor) and a.requires_grad for a in args)
        custom_setup = cls.setup_context is not Function.setup_context
        with no_grad():
            if custom_setup:
                output = cls.forward(*args)
                cls.setup_context(ctx, args, output)
            else:
                output = cls.forward(ctx, *args)
        if not (_C.is_grad_enabled() and any(ctx.needs_input_grad)):
            return output
        is_tuple = isinstance(output, tuple)
        outs = list(output) if is_tuple else [output]
        dirty = {id(t) for t in ctx._dirty}
        non_diff = {id(t) for t in ctx._non_differentiable}
        arg_ids = {id(a) for a in args if isinstance(a, rtorch.Tensor)}
        wrapped: list = []
        recorded: list = []
        for o in outs:
            if not isinstance(o, rtorch.Tensor):
                wrapped.append(o)
                recorded.append(None)
                continue
            differentiable = id(o) not in non_diff and o.dtype.is_floating_point
            if id(o) in dirty:
                if o.is_leaf and o.requires_grad:
                    raise RuntimeError(
                        "a leaf Variable that requires grad has been used in an in-place operation."
                    )
            elif id(o) in arg_ids or o.grad_fn is not None or o.requires_grad:
                # An input returned as is (or a tensor with history): the
                # output is a fresh alias, so the input's history stays.
                o = o.detach()
            wrapped.append(o)
            recorded.append(o if differentiable else None)
        saved = list(ctx.to_save)

        def run_backward(saved_tensors: tuple, grads: tuple, needs: list) -> list:
            ctx._saved = saved_tensors
            ctx.needs_input_grad = tuple(needs)
            try:
                result = cls.backward(ctx, *grads)
            finally:
                ctx._saved = None
            if not isinstance(result, tuple):
                result = (result,)
            n = len(args)
            if len(result) != n:
                if len(result) > n and all(r is None for r in result[n:]):
                    result = result[:n]
                else:
                    raise RuntimeError(
                        f"function {cls._backward_name} returned an incorrect number of "
                        f"gradients (expected {n}, got {len(result)})"
                    )
            out = []
            for i, (r, a) in enumerate(zip(result, args, strict=False)):
                if not isinstance(a, rtorch.Tensor) or not needs[i]:
                    out.append(None)
                    continue
                if r is not None and not isinstance(r, rtorch.Tensor):
                    raise TypeError(
                        f"function {cls._backward_name} returned a gradient different than None "
                        f"at position {i + 1}, but the corresponding forward input was not a "
                        "Variable"
                    )
                out.append(r)
            return out

        _C._record_function(
            cls._backward_name,
            run_backward,
            list(args),
            recorded,
            saved,
            ctx.materialize_grads,
        )
        # The node now owns the saved tensors; the ctx must not keep them
        # (they may be outputs, whose grad_fn holds the ctx: a cycle).
        ctx.to_save = ()
        return tuple(wrapped) if is_tuple else wrapped[0]


def once_differentiable(fn: Callable) -> Callable:
    """Decorates ``backward``: it runs without recording, so its result
    cannot be differentiated again."""

    @functools.wraps(fn)
    def wrapper(ctx: Any, *args: Any) -> Any:
        with no_grad():
            return fn(ctx, *args)

    return wrapper
