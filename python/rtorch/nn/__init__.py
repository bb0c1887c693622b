"""``rtorch.nn``: neural network building blocks (so far: ``Parameter``)."""

from rtorch.nn.parameter import Parameter

__all__ = ["Parameter"]
