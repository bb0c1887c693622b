"""``rtorch.testing``: ``assert_close`` with PyTorch's default tolerances."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import rtorch

# (rtol, atol) by dtype, as torch.testing.assert_close.
_TOLERANCES = {
    rtorch.float16: (1e-3, 1e-5),
    rtorch.bfloat16: (1.6e-2, 1e-5),
    rtorch.float32: (1.3e-6, 1e-5),
    rtorch.float64: (1e-7, 1e-7),
}


def _to_tensor(x: Any) -> rtorch.Tensor:
    if isinstance(x, rtorch.Tensor):
        return x
    if isinstance(x, bool):
        return rtorch.tensor(x)
    if isinstance(x, int):
        return rtorch.tensor(x, dtype=rtorch.int64)
    if isinstance(x, float):
        return rtorch.tensor(x, dtype=rtorch.float64)
    if hasattr(x, "__array_interface__"):
        return rtorch.as_tensor(x)
    raise TypeError(f"No comparison pair was able to handle inputs of type {type(x)}.")


def _is_leaf(x: Any) -> bool:
    return isinstance(x, (rtorch.Tensor, int, float, bool)) or hasattr(x, "__array_interface__")


def assert_close(
    actual: Any,
    expected: Any,
    *,
    allow_subclasses: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    check_device: bool = True,
    check_dtype: bool = True,
    check_layout: bool = True,
    check_stride: bool = False,
    msg: str | None = None,
) -> None:
    """Asserts that ``actual`` and ``expected`` are close, as
    ``torch.testing.assert_close``: ``|actual - expected| <= atol + rtol * |expected|``
    elementwise, with tolerances chosen by dtype when not given.

    Args:
        actual: tensor, number, array, or a sequence/mapping of them.
        expected: the same structure as ``actual``.
        rtol (float, optional): relative tolerance; requires ``atol`` too.
        atol (float, optional): absolute tolerance; requires ``rtol`` too.
        equal_nan (bool): whether two NaNs compare equal.
        check_dtype (bool): whether the dtypes must match.
        check_stride (bool): whether the strides must match.
        msg (str, optional): replaces the generated error message.

    Example::

        >>> import rtorch
        >>> rtorch.testing.assert_close(rtorch.tensor([1.0]), rtorch.tensor([1.0 + 1e-7]))
    """
    if (rtol is None) != (atol is None):
        raise ValueError(
            f"Both 'rtol' and 'atol' must be either specified or omitted, "
            f"but got no {'rtol' if rtol is None else 'atol'}."
        )
    _compare(actual, expected, (), rtol, atol, equal_nan, check_dtype, check_stride, msg)


def _compare(actual, expected, path, rtol, atol, equal_nan, check_dtype, check_stride, msg):
    if not _is_leaf(actual) or not _is_leaf(expected):
        if isinstance(actual, Mapping) and isinstance(expected, Mapping):
            if set(actual) != set(expected):
                raise AssertionError(
                    f"The keys of the mappings do not match:\n{sorted(map(str, actual))} != "
                    f"{sorted(map(str, expected))}"
                )
            for k in actual:
                _compare(
                    actual[k],
                    expected[k],
                    (*path, k),
                    rtol,
                    atol,
                    equal_nan,
                    check_dtype,
                    check_stride,
                    msg,
                )
            return
        if (
            isinstance(actual, Sequence)
            and isinstance(expected, Sequence)
            and not isinstance(actual, str)
            and not isinstance(expected, str)
        ):
            if len(actual) != len(expected):
                raise AssertionError(
                    f"The length of the sequences mismatch: {len(actual)} != {len(expected)}"
                )
            for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
                _compare(a, e, (*path, i), rtol, atol, equal_nan, check_dtype, check_stride, msg)
            return
        raise TypeError(
            f"No comparison pair was able to handle inputs of type {type(actual)} and {type(expected)}."
        )
    a, e = _to_tensor(actual), _to_tensor(expected)
    where = "".join(f"[{p!r}]" for p in path)
    prefix = f"The failure occurred for item {where}" if path else ""

    def fail(text: str) -> None:
        raise AssertionError(
            msg if msg is not None else (f"{text}\n\n{prefix}" if prefix else text)
        )

    if a.shape != e.shape:
        fail(f"The values for attribute 'shape' do not match: {a.shape} != {e.shape}.")
    if check_dtype and a.dtype != e.dtype:
        fail(f"The values for attribute 'dtype' do not match: {a.dtype} != {e.dtype}.")
    if check_stride and a.stride() != e.stride():
        fail(f"The values for attribute 'stride()' do not match: {a.stride()} != {e.stride()}.")
    dtype = rtorch.promote_types(a.dtype, e.dtype)
    if rtol is None:
        rtol, atol = _TOLERANCES.get(dtype, (0.0, 0.0))
    _check_values(a, e, rtol, atol, equal_nan, fail)


def _check_values(a, e, rtol, atol, equal_nan, fail) -> None:
    import numpy as np

    x = a.detach().double().numpy() if a.dtype.is_floating_point else a.detach().long().numpy()
    y = e.detach().double().numpy() if e.dtype.is_floating_point else e.detach().long().numpy()
    if x.dtype == np.int64 and y.dtype == np.int64:
        bad = x != y
        diff = np.abs(x - y).astype(np.float64)
    else:
        x, y = x.astype(np.float64), y.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(x - y)
            close = (x == y) | (diff <= atol + rtol * np.abs(y))
        if equal_nan:
            close |= np.isnan(x) & np.isnan(y)
        bad = ~close
    if not bad.any():
        return
    kind = "Scalars" if a.dim() == 0 else "Tensor-likes"
    if a.dim() == 0:
        fail(
            f"{kind} are not {'equal' if rtol == 0 and atol == 0 else 'close'}!\n\n"
            f"Expected {y.item()} but got {x.item()}.\n"
            f"Absolute difference: {diff.item()} (up to {atol} allowed)\n"
            f"Relative difference: {_rel(diff, y).item()} (up to {rtol} allowed)"
        )
    n, total = int(bad.sum()), bad.size
    d = np.where(bad, diff, -1.0)
    ia = np.unravel_index(int(np.nanargmax(np.where(np.isnan(d), np.inf, d))), bad.shape)
    rel = np.where(bad, _rel(diff, y), -1.0)
    ir = np.unravel_index(int(np.nanargmax(np.where(np.isnan(rel), np.inf, rel))), bad.shape)
    fail(
        f"{kind} are not {'equal' if rtol == 0 and atol == 0 else 'close'}!\n\n"
        f"Mismatched elements: {n} / {total} ({100 * n / total:.1f}%)\n"
        f"Greatest absolute difference: {diff[ia]} at index {tuple(int(i) for i in ia)} "
        f"(up to {atol} allowed)\n"
        f"Greatest relative difference: {rel[ir]} at index {tuple(int(i) for i in ir)} "
        f"(up to {rtol} allowed)"
    )


def _rel(diff, y):
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return diff / np.abs(y)


__all__ = ["assert_close"]
