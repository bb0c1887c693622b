"""Grad modes: ``no_grad``, ``enable_grad``, ``set_grad_enabled`` and
``inference_mode``, each a context manager and a decorator (thread-local,
as in PyTorch)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from rtorch import _C

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode"]


class _DecoratorContextManager:
    """Lets a context manager class decorate functions and generators."""

    def clone(self) -> _DecoratorContextManager:
        return self.__class__()

    def __call__(self, func: Callable) -> Callable:
        if inspect.isclass(func):
            raise RuntimeError("Cannot decorate classes; decorate their methods instead")
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                gen = func(*args, **kwargs)
                try:
                    with self.clone():
                        response = gen.send(None)
                    while True:
                        try:
                            request = yield response
                        except GeneratorExit:
                            with self.clone():
                                gen.close()
                            raise
                        except BaseException as e:
                            with self.clone():
                                response = gen.throw(e)
                        else:
                            with self.clone():
                                response = gen.send(request)
                except StopIteration as e:
                    return e.value

            return gen_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.clone():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_DecoratorContextManager):
    """Disables gradient recording in its block (or decorated function).

    Example::

        >>> x = rtorch.ones(2, requires_grad=True)
        >>> with rtorch.no_grad():
        ...     y = x * 2
        >>> y.requires_grad
        False
    """

    def __init__(self) -> None:
        self.prev = False

    def __enter__(self) -> None:
        self.prev = _C._set_grad_enabled(False)

    def __exit__(self, *args: Any) -> None:
        _C._set_grad_enabled(self.prev)


class enable_grad(_DecoratorContextManager):
    """Enables gradient recording inside a ``no_grad`` block."""

    def __init__(self) -> None:
        self.prev = False

    def __enter__(self) -> None:
        self.prev = _C._set_grad_enabled(True)

    def __exit__(self, *args: Any) -> None:
        _C._set_grad_enabled(self.prev)


class set_grad_enabled(_DecoratorContextManager):
    """Sets grad mode to ``mode``: at once when called, and for a ``with`` block.

    Args:
        mode (bool): whether to record gradients.
    """

    def __init__(self, mode: bool) -> None:
        self.prev = _C._set_grad_enabled(bool(mode))
        self.mode = bool(mode)

    def __call__(self, func: Callable) -> Callable:
        _C._set_grad_enabled(self.prev)
        return super().__call__(func)

    def __enter__(self) -> None:
        _C._set_grad_enabled(self.mode)

    def __exit__(self, *args: Any) -> None:
        _C._set_grad_enabled(self.prev)

    def clone(self) -> set_grad_enabled:
        return self.__class__(self.mode)


class inference_mode(_DecoratorContextManager):
    """Like ``no_grad``, and tensors made inside are inference tensors,
    which autograd refuses to save for backward.

    Args:
        mode (bool): enable (default) or disable inference mode.
    """

    def __init__(self, mode: bool = True) -> None:
        self.mode = mode
        self.prev: tuple[bool, bool] = (False, True)

    def __new__(cls, mode: Any = True) -> Any:
        # Bare decorator form: @inference_mode
        if isinstance(mode, bool):
            return super().__new__(cls)
        return cls()(mode)

    def __enter__(self) -> None:
        if self.mode:
            self.prev = _C._set_inference_mode(True)
        else:
            self.prev = (_C.is_inference_mode_enabled(), _C.is_grad_enabled())
            _C._restore_inference_mode(False, True)

    def __exit__(self, *args: Any) -> None:
        _C._restore_inference_mode(*self.prev)

    def clone(self) -> inference_mode:
        return self.__class__(self.mode)
