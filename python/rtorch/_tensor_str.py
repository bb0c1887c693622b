"""Tensor printing: ``repr(tensor)`` laid out exactly as PyTorch's
``torch/_tensor_str.py`` lays it out.

The layout rules (column width, when to switch to scientific notation,
summarisation with ``...``, line wrapping, the ``dtype=``/``size=``/
``requires_grad=`` suffixes) follow PyTorch 2.x. The values are gathered into
NumPy once (only the edges of a summarised tensor travel), and all
statistics are computed there rather than with tensor ops.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclasses.dataclass
class _PrinterOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


PRINT_OPTS = _PrinterOptions()

_PROFILES: dict[str, dict[str, Any]] = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    r"""Sets options for printing tensors. Items taken from NumPy.

    Args:
        precision (int, optional): number of digits of precision for floating
            point output (default = 4).
        threshold (float, optional): total number of elements above which the
            tensor is summarised rather than printed in full (default = 1000).
        edgeitems (int, optional): number of items shown at the beginning and
            end of each dimension of a summarised tensor (default = 3).
        linewidth (int, optional): number of characters per line used to
            decide where to break lines (default = 80).
        profile (str, optional): preset options, overridable by the
            arguments above: one of ``'default'``, ``'short'``, ``'full'``.
        sci_mode (bool, optional): ``True`` forces scientific notation,
            ``False`` forbids it, ``None`` (the default) lets the formatter
            choose. Every call sets it, so a call that omits it resets it.

    Example::

        >>> import rtorch
        >>> rtorch.set_printoptions(precision=2)
        >>> rtorch.tensor([1.12345])
        tensor([1.12])
        >>> rtorch.set_printoptions(threshold=5)
        >>> rtorch.arange(10)
        tensor([0, 1, 2,  ..., 7, 8, 9])
        >>> rtorch.set_printoptions(profile='default')
        >>> rtorch.tensor([1.12345])
        tensor([1.1235])
    """
    if profile is not None and profile in _PROFILES:
        for name, value in _PROFILES[profile].items():
            setattr(PRINT_OPTS, name, value)
    if precision is not None:
        PRINT_OPTS.precision = precision
    if threshold is not None:
        PRINT_OPTS.threshold = threshold
    if edgeitems is not None:
        PRINT_OPTS.edgeitems = edgeitems
    if linewidth is not None:
        PRINT_OPTS.linewidth = linewidth
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    r"""The current print options, as a dict that can be passed as
    ``**kwargs`` to :func:`set_printoptions`.

    Example::

        >>> import rtorch
        >>> rtorch.get_printoptions()
        {'precision': 4, 'threshold': 1000, 'edgeitems': 3, 'linewidth': 80, 'sci_mode': None}
    """
    return dataclasses.asdict(PRINT_OPTS)


@contextlib.contextmanager
def printoptions(**kwargs: Any) -> Iterator[None]:
    r"""Context manager that sets print options for its body and restores the
    previous ones on exit. Takes the same arguments as
    :func:`set_printoptions`.

    Args:
        **kwargs: any arguments of :func:`set_printoptions`.

    Example::

        >>> import rtorch
        >>> with rtorch.printoptions(precision=2):
        ...     print(rtorch.tensor([1.12345]))
        tensor([1.12])
        >>> rtorch.tensor([1.12345])
        tensor([1.1235])
    """
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


class _Formatter:
    """Chooses one column width and one notation for every element of a
    tensor, from the values that will be shown (``values``)."""

    def __init__(self, values: np.ndarray, floating: bool) -> None:
        self.floating_dtype = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1

        # Imported here so that `import rtorch` does not load NumPy.
        import numpy as np

        flat = values.reshape(-1)
        if flat.size == 0:
            return
        if not floating:
            # str() of an integer (or bool) is longest at one of the extremes.
            for v in (flat.min().item(), flat.max().item()):
                self.max_width = max(self.max_width, len(f"{v}"))
            return

        finite = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if finite.size == 0:
            # PyTorch leaves sci_mode off here even when PRINT_OPTS forces it.
            return
        magnitude = np.abs(finite)
        lo, hi = float(magnitude.min()), float(magnitude.max())
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        # A forced sci_mode also decides the width measured below (PyTorch
        # >= 2.4, pytorch#126859; before it, widths assumed the automatic mode).
        if PRINT_OPTS.sci_mode is None:
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        else:
            self.sci_mode = PRINT_OPTS.sci_mode

        # Each notation's length grows with |v| (fixed point) or with the size
        # of the exponent (scientific), so the widest value of either sign is
        # the smallest or largest in magnitude: four candidates cover them all.
        candidates = []
        for part in (finite[finite > 0], finite[finite < 0]):
            if part.size:
                candidates += [float(part.min()), float(part.max())]
        precision = PRINT_OPTS.precision
        for v in candidates:
            if self.sci_mode:
                width = len(f"{v:.{precision}e}")
            elif self.int_mode:
                width = len(f"{v:.0f}") + 1  # room for the trailing "."
            else:
                width = len(f"{v:.{precision}f}")
            self.max_width = max(self.max_width, width)

    def width(self) -> int:
        return self.max_width

    def format(self, value: Any) -> str:
        if self.floating_dtype:
            if self.sci_mode:
                ret = f"{value:{self.max_width}.{PRINT_OPTS.precision}e}"
            elif self.int_mode:
                ret = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    ret += "."
            else:
                ret = f"{value:.{PRINT_OPTS.precision}f}"
        else:
            ret = f"{value}"
        return (self.max_width - len(ret)) * " " + ret


def _edges(x: Any, shape: tuple[int, ...], edgeitems: int) -> Any:
    """``x`` (an array or a tensor) with every axis longer than
    ``2 * edgeitems`` cut to its first and last ``edgeitems`` entries."""
    for axis, n in enumerate(shape):
        if n > 2 * edgeitems:
            index = [*range(edgeitems), *range(n - edgeitems, n)]
            x = x[(slice(None),) * axis + (index,)]
    return x


def _gather(t: Any, summarize: bool) -> np.ndarray:
    """The values of ``t`` that will be printed, as a NumPy array (only the
    edges when ``summarize``)."""
    import rtorch

    shape = tuple(t.shape)
    edgeitems = PRINT_OPTS.edgeitems
    cut = summarize and edgeitems > 0
    if t.device.type == "cpu" and t.dtype != rtorch.bfloat16:
        array = t.numpy()
        return _edges(array, shape, edgeitems) if cut else array
    # Cut on the device so that only the edges travel to the host.
    if cut:
        t = _edges(t, shape, edgeitems)
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype == rtorch.bfloat16:
        t = t.float()
    return t.numpy()


def _vector_str(
    data: np.ndarray, size: int, indent: int, summarize: bool, formatter: _Formatter
) -> str:
    # an element takes its width plus ", "
    element_length = formatter.width() + 2
    elements_per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) / element_length))
    edgeitems = PRINT_OPTS.edgeitems
    if summarize and size > 2 * edgeitems:
        values = data.tolist()
        elements = (
            [formatter.format(v) for v in values[:edgeitems]]
            + [" ..."]
            + [formatter.format(v) for v in values[edgeitems:]]
        )
    else:
        elements = [formatter.format(v) for v in data.tolist()]
    lines = [
        ", ".join(elements[i : i + elements_per_line])
        for i in range(0, len(elements), elements_per_line)
    ]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _tensor_str_with_formatter(
    data: np.ndarray,
    shape: tuple[int, ...],
    indent: int,
    summarize: bool,
    formatter: _Formatter,
) -> str:
    """Lays out ``data``, which holds every row of a tensor of ``shape``, or
    only the edge rows of the axes that summarisation cuts."""
    dim = len(shape)
    if dim == 0:
        return formatter.format(data.item())
    if summarize and not PRINT_OPTS.edgeitems:
        return "[...]"
    if dim == 1:
        return _vector_str(data, shape[0], indent, summarize, formatter)

    edgeitems = PRINT_OPTS.edgeitems
    inner = shape[1:]

    def rows(indices: range) -> list[str]:
        return [
            _tensor_str_with_formatter(data[i], inner, indent + 1, summarize, formatter)
            for i in indices
        ]

    if summarize and shape[0] > 2 * edgeitems:
        slices = rows(range(edgeitems)) + ["..."] + rows(range(edgeitems, 2 * edgeitems))
    else:
        slices = rows(range(shape[0]))
    return "[" + ("," + "\n" * (dim - 1) + " " * (indent + 1)).join(slices) + "]"


def _tensor_str(t: Any, indent: int) -> str:
    if t.numel() == 0:
        return "[]"
    shape = tuple(t.shape)
    summarize = t.numel() > PRINT_OPTS.threshold
    data = _gather(t, summarize)
    stats = data
    if summarize and not PRINT_OPTS.edgeitems:
        # PyTorch's summary of a vector keeps x[:0] and x[-0:], i.e. all of
        # it; of a higher-dimensional tensor, nothing.
        stats = data if len(shape) <= 1 else data.reshape(-1)[:0]
    formatter = _Formatter(stats, t.dtype.is_floating_point)
    return _tensor_str_with_formatter(data, shape, indent, summarize, formatter)


def _add_suffixes(tensor_str: str, suffixes: list[str], indent: int, force_newline: bool) -> str:
    parts = [tensor_str]
    # PyTorch's measure: two more than the last line's length when one line.
    last_line_len = len(tensor_str) - tensor_str.rfind("\n") + 1
    for suffix in suffixes:
        if force_newline or last_line_len + len(suffix) + 2 > PRINT_OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
            force_newline = False
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def _grad_fn_name(t: Any) -> str | None:
    try:
        grad_fn = t.grad_fn
    except RuntimeError:
        return "Invalid"
    if grad_fn is None:
        return None
    name = getattr(grad_fn, "name", None)
    if callable(name):
        return str(name()).rsplit("::", 1)[-1]
    return type(grad_fn).__name__


def _str(self: Any, *, tensor_contents: str | None = None) -> str:
    """``repr(self)``; ``tensor_contents``, when given, replaces the printed
    values (``nn.Parameter`` uses it)."""
    import rtorch

    prefix = "tensor("
    indent = len(prefix)
    suffixes: list[str] = []

    if self.device.type != "cpu":
        suffixes.append(f"device='{self.device}'")

    t = self.detach()
    default_dtype = rtorch.get_default_dtype()
    has_default_dtype = t.dtype in (default_dtype, rtorch.int64, rtorch.bool)
    if t.numel() == 0:
        # NumPy shows the shape of an empty array unless it is (0,); with no
        # element to infer it from, the dtype is shown unless it is the default.
        if t.dim() != 1:
            suffixes.append(f"size={tuple(t.shape)}")
        if t.dtype != default_dtype:
            suffixes.append(f"dtype={t.dtype}")
    else:
        if not PRINT_OPTS.edgeitems:
            suffixes.append(f"size={tuple(t.shape)}")
        if not has_default_dtype:
            suffixes.append(f"dtype={t.dtype}")
    if tensor_contents is not None:
        tensor_str = tensor_contents
    else:
        tensor_str = _tensor_str(t, indent)

    grad_fn_name = _grad_fn_name(self)
    if grad_fn_name is not None:
        suffixes.append(f"grad_fn=<{grad_fn_name}>")
    elif self.requires_grad:
        suffixes.append("requires_grad=True")

    return _add_suffixes(prefix + tensor_str, suffixes, indent, force_newline=False)
