"""Graph nodes as Python sees them: ``tensor.grad_fn`` and ``next_functions``.

Each node class is named after the op that recorded it (``AddBackward0``,
``AccumulateGrad``), as in PyTorch; they all derive from :class:`Node`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Node"]


class _RemovableHandle:
    """Removes a node hook when ``remove()`` is called."""

    def __init__(self, raw: Any, hook_id: int) -> None:
        self._raw = raw
        self.id = hook_id

    def remove(self) -> None:
        self._raw._remove_hook(self.id)

    def __enter__(self) -> _RemovableHandle:
        return self

    def __exit__(self, *args: Any) -> None:
        self.remove()


class Node:
    """A node of the autograd graph (the ``grad_fn`` of a tensor)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def name(self) -> str:
        """The node's name, e.g. ``'MulBackward0'``."""
        return self._raw.name()

    @property
    def next_functions(self) -> tuple[tuple[Node | None, int], ...]:
        """``(node, input_nr)`` for each forward input (``None`` when it needs no grad)."""
        return self._raw.next_functions

    @property
    def variable(self) -> Any:
        """The leaf tensor an ``AccumulateGrad`` node accumulates into."""
        return self._raw.variable

    @property
    def metadata(self) -> dict:
        return _metadata.setdefault(self._raw._key(), {})

    def register_hook(self, fn: Callable) -> _RemovableHandle:
        """Registers ``fn(grad_inputs, grad_outputs)``, run after the node.

        It may return a tuple replacing ``grad_inputs``.
        """
        return _RemovableHandle(self._raw, self._raw._register_hook(fn))

    def register_prehook(self, fn: Callable) -> _RemovableHandle:
        """Registers ``fn(grad_outputs)``, run before the node; may return new grads."""
        return _RemovableHandle(self._raw, self._raw._register_prehook(fn))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and other._raw._key() == self._raw._key()

    def __hash__(self) -> int:
        return self._raw._key()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {hex(self._raw._key())}>"


_metadata: dict[int, dict] = {}
_classes: dict[str, type] = {}


def _wrap(raw: Any) -> Node:
    name = raw.name()
    cls = _classes.get(name)
    if cls is None:
        cls = type(name, (Node,), {"__slots__": ()})
        _classes[name] = cls
    return cls(raw)
