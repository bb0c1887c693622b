"""Anomaly detection: with it on, backward checks every node's gradients
for NaN and names the node that produced one."""

from __future__ import annotations

from typing import Any

from rtorch import _C

__all__ = ["detect_anomaly", "set_detect_anomaly"]


class detect_anomaly:
    """Context manager (and decorator) turning anomaly detection on.

    A backward node returning NaN then raises ``RuntimeError("Function
    'XBackward0' returned nan values in its 0th output.")``.

    Args:
        check_nan (bool): check gradients for NaN (default True).
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.prev = _C.is_anomaly_enabled()
        self.check_nan = check_nan

    def __enter__(self) -> None:
        self.prev = _C._set_anomaly_enabled(self.check_nan)

    def __exit__(self, *args: Any) -> None:
        _C._set_anomaly_enabled(self.prev)

    def __call__(self, func: Any) -> Any:
        import functools

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.__class__(self.check_nan):
                return func(*args, **kwargs)

        return wrapper


class set_detect_anomaly:
    """Sets anomaly detection on or off: at once, and for a ``with`` block.

    Args:
        mode (bool): whether to check.
        check_nan (bool): check gradients for NaN (default True).
    """

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev = _C._set_anomaly_enabled(bool(mode) and check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *args: Any) -> None:
        _C._set_anomaly_enabled(self.prev)
