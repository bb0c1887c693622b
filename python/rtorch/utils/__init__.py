"""``rtorch.utils``: data loading utilities."""

from rtorch.utils import data

__all__ = ["data"]
