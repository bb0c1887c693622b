"""The sharing strategy setting (only ``file_descriptor`` exists in rtorch)."""

from __future__ import annotations

_all_sharing_strategies = {"file_descriptor"}
_sharing_strategy = "file_descriptor"


def set_sharing_strategy(new_strategy: str) -> None:
    """Sets the strategy for sharing CPU tensors.

    Args:
        new_strategy (str): name of the selected strategy; one of
            :func:`get_all_sharing_strategies`.

    rtorch shares through anonymous, sealed memory file descriptors, which
    the kernel frees with the last process holding them; PyTorch's
    ``file_system`` strategy (named segments plus a cleanup daemon) is not
    needed for leak-freedom and is not provided.
    """
    global _sharing_strategy
    assert new_strategy in _all_sharing_strategies
    _sharing_strategy = new_strategy


def get_sharing_strategy() -> str:
    """Returns the current strategy for sharing CPU tensors."""
    return _sharing_strategy


def get_all_sharing_strategies() -> set[str]:
    """Returns the set of sharing strategies supported here."""
    return set(_all_sharing_strategies)
