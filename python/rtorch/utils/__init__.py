"""``rtorch.utils``: data loading (``data``) and ``safetensors``."""

from rtorch.utils import data, safetensors

__all__ = ["data", "safetensors"]
