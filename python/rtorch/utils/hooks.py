"""``RemovableHandle``: what ``register_*_hook`` returns (PyTorch's ``torch.utils.hooks``)."""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["RemovableHandle"]


class RemovableHandle:
    """Removes a hook from the dicts it was added to.

    Args:
        hooks_dict: the dict of hooks, keyed by handle id.
        extra_dict: further dicts keyed by the same id (a hook's flags, such as
            ``with_kwargs``) that ``remove`` cleans too.
    """

    next_id: int = 0

    def __init__(self, hooks_dict: Any, *, extra_dict: Any = None) -> None:
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        extras = [] if extra_dict is None else extra_dict
        if not isinstance(extras, list):
            extras = [extras]
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extras)

    def remove(self) -> None:
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            d = ref()
            if d is not None and self.id in d:
                del d[self.id]

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *args: Any) -> None:
        self.remove()
