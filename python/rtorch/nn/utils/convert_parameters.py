"""Parameters as one flat vector and back, as ``torch.nn.utils.convert_parameters``."""

from __future__ import annotations

from collections.abc import Iterable

import rtorch
from rtorch._C import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _check_param_device(param: Tensor, old_param_device: int | None) -> int:
    device = param.device.index if param.is_cuda else -1
    if old_param_device is not None and device != old_param_device:
        raise TypeError(
            "Found two parameters on different devices, this is currently not supported."
        )
    return device


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """Concatenate the flattened ``parameters`` into one 1-D tensor.

    Example::

        >>> import rtorch
        >>> parameters_to_vector([rtorch.ones(2, 2), rtorch.zeros(1)])
        tensor([1., 1., 1., 1., 0.])
    """
    device = None
    vec = []
    for param in parameters:
        device = _check_param_device(param, device)
        vec.append(param.view(-1))
    return rtorch.cat(vec)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters``' data.

    Example::

        >>> import rtorch
        >>> a, b = rtorch.zeros(2), rtorch.zeros(1)
        >>> vector_to_parameters(rtorch.tensor([1.0, 2.0, 3.0]), [a, b]); a, b
        (tensor([1., 2.]), tensor([3.]))
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    device = None
    pointer = 0
    for param in parameters:
        device = _check_param_device(param, device)
        num_param = param.numel()
        param.data = vec[pointer : pointer + num_param].view_as(param).data
        pointer += num_param
