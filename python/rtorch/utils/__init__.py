"""``rtorch.utils``: data loading (``data``), ``hooks`` and ``safetensors``."""

from rtorch.utils import data, hooks, safetensors

__all__ = ["data", "hooks", "safetensors"]
