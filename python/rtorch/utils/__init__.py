"""``rtorch.utils``: utilities (``safetensors``)."""

from rtorch.utils import safetensors

__all__ = ["safetensors"]
