"""Named tuples returned by ops with several results (``values, indices =
t.max(0)``), as ``torch.return_types``."""

from __future__ import annotations

from collections import namedtuple


def _make(name: str, fields: tuple[str, str]) -> type:
    cls = namedtuple(name, fields)  # type: ignore[misc]  # noqa: PYI024
    cls.__module__ = __name__
    cls.__qualname__ = name

    def __repr__(self: tuple) -> str:
        body = ",\n".join(f"{f}={v!r}" for f, v in zip(fields, self, strict=True))
        return f"torch.return_types.{name}(\n{body})"

    cls.__repr__ = __repr__
    return cls


_VI = ("values", "indices")
max = _make("max", _VI)
min = _make("min", _VI)
sort = _make("sort", _VI)
topk = _make("topk", _VI)
kthvalue = _make("kthvalue", _VI)
median = _make("median", _VI)
nanmedian = _make("nanmedian", _VI)
mode = _make("mode", _VI)
cummax = _make("cummax", _VI)
cummin = _make("cummin", _VI)
aminmax = _make("aminmax", ("min", "max"))

__all__ = [
    "aminmax",
    "cummax",
    "cummin",
    "kthvalue",
    "max",
    "median",
    "min",
    "mode",
    "nanmedian",
    "sort",
    "topk",
]
