"""``rtorch.finfo`` and ``rtorch.iinfo``: numeric limits of dtypes."""

from __future__ import annotations

from rtorch import _C


def _name(dtype: _C.dtype) -> str:
    return repr(dtype).split(".")[-1]


_SCALAR_NAMES = {
    "float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
    "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
    "bool": "Bool",
}  # fmt: skip


def scalar_name(dtype: _C.dtype) -> str:
    """PyTorch's C++ scalar type name of ``dtype`` (``Float``, ``Long``...),
    as its error messages print it."""
    return _SCALAR_NAMES[_name(dtype)]


def check_cast(result: _C.dtype, out: _C.dtype) -> None:
    """PyTorch's error when a result written into ``out`` would need an
    unsafe cast (float into an integer tensor, ...)."""
    if not _C.can_cast(result, out):
        raise RuntimeError(
            f"result type {scalar_name(result)} can't be cast to the desired output type "
            f"{scalar_name(out)}"
        )


class finfo:
    """Machine limits of a floating point dtype, as ``torch.finfo``.

    Args:
        type (rtorch.dtype, optional): a floating point dtype; the default
            dtype when omitted.

    Example::

        >>> import rtorch
        >>> rtorch.finfo(rtorch.float16).max
        65504.0
    """

    def __init__(self, type: _C.dtype | None = None) -> None:
        dtype = _C.get_default_dtype() if type is None else type
        if not isinstance(dtype, _C.dtype) or not dtype.is_floating_point:
            raise TypeError(
                "torch.finfo() requires a floating point input type. "
                "Use torch.iinfo to handle 'torch.finfo'"
            )
        self.dtype = _name(dtype)
        if self.dtype == "bfloat16":
            self.bits = 16
            self.eps = 0.0078125
            self.max = 3.3895313892515355e38
            self.min = -3.3895313892515355e38
            self.tiny = self.smallest_normal = 1.1754943508222875e-38
            self.resolution = 0.01
        else:
            import numpy as np

            info = np.finfo(getattr(np, self.dtype))
            self.bits = int(info.bits)
            self.eps = float(info.eps)
            self.max = float(info.max)
            self.min = float(info.min)
            self.tiny = self.smallest_normal = float(info.tiny)
            self.resolution = float(info.resolution)

    def __repr__(self) -> str:
        return (
            f"finfo(resolution={self.resolution}, min={self.min:g}, max={self.max:g}, "
            f"eps={self.eps:g}, smallest_normal={self.tiny:g}, tiny={self.tiny:g}, "
            f"dtype={self.dtype})"
        )


class iinfo:
    """Machine limits of an integer dtype, as ``torch.iinfo``.

    Args:
        type (rtorch.dtype): an integer or bool dtype.

    Example::

        >>> import rtorch
        >>> rtorch.iinfo(rtorch.int8).min
        -128
    """

    def __init__(self, type: _C.dtype) -> None:
        if not isinstance(type, _C.dtype) or type.is_floating_point:
            raise TypeError(f"{type!r} is not supported by torch.iinfo")
        self.dtype = _name(type)
        if self.dtype == "bool":
            self.bits, self.min, self.max = 8, 0, 1
        else:
            import numpy as np

            info = np.iinfo(getattr(np, self.dtype))
            self.bits, self.min, self.max = int(info.bits), int(info.min), int(info.max)

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
