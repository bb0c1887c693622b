"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_``, as PyTorch's."""

from __future__ import annotations

from collections.abc import Iterable

import rtorch
from rtorch._C import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
           "clip_grads_with_norm_"]  # fmt: skip


def _tensor_list(tensors: Tensor | Iterable[Tensor]) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def get_total_norm(
    tensors: Tensor | Iterable[Tensor],
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together, as if concatenated
    into one vector (``inf`` for the largest magnitude).

    Example::

        >>> import rtorch
        >>> get_total_norm([rtorch.tensor([3.0]), rtorch.tensor([4.0])])
        tensor(5.)
    """
    tensors = _tensor_list(tensors)
    norm_type = float(norm_type)
    if len(tensors) == 0:
        return rtorch.tensor(0.0)
    norms = [rtorch.linalg.vector_norm(t.detach(), norm_type) for t in tensors]
    total_norm = rtorch.linalg.vector_norm(rtorch.stack(norms), norm_type)
    if error_if_nonfinite and not bool(rtorch.isfinite(total_norm)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
            "so it cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return total_norm


def clip_grads_with_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    total_norm: Tensor,
    foreach: bool | None = None,
) -> None:
    """Scale the gradients in place by ``min(1, max_norm / (total_norm + 1e-6))``."""
    grads = [p.grad for p in _tensor_list(parameters) if p.grad is not None]
    if len(grads) == 0:
        return
    clip_coef = float(max_norm) / (total_norm + 1e-6)
    clip_coef_clamped = clip_coef.clamp(max=1.0)
    with rtorch.no_grad():
        for g in grads:
            g.mul_(clip_coef_clamped.to(g.dtype))


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Rescale the gradients of ``parameters`` so that their total norm is at
    most ``max_norm``; returns the total norm before clipping.

    Args:
        parameters: tensors (or one tensor) whose ``.grad`` is clipped in place.
        max_norm: the largest allowed norm.
        norm_type: the norm's ``p``; ``inf`` for the largest magnitude. Default: 2.
        error_if_nonfinite: raise if the total norm is ``nan`` or ``inf``.
        foreach: accepted for compatibility; the gradients are scaled one by one.

    Example::

        >>> import rtorch
        >>> w = rtorch.zeros(2, requires_grad=True)
        >>> w.grad = rtorch.tensor([3.0, 4.0])
        >>> clip_grad_norm_([w], max_norm=1.0), w.grad
        (tensor(5.), tensor([0.6000, 0.8000]))
    """
    parameters = _tensor_list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Deprecated alias of :func:`clip_grad_norm_`."""
    import warnings

    warnings.warn(
        "`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
        "`torch.nn.utils.clip_grad_norm_`.",
        FutureWarning,
        stacklevel=2,
    )
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(
    parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None
) -> None:
    """Clamp every gradient of ``parameters`` to ``[-clip_value, clip_value]`` in place.

    Example::

        >>> import rtorch
        >>> w = rtorch.zeros(2, requires_grad=True)
        >>> w.grad = rtorch.tensor([-3.0, 0.5])
        >>> clip_grad_value_([w], 1.0); w.grad
        tensor([-1.0000,  0.5000])
    """
    clip_value = float(clip_value)
    with rtorch.no_grad():
        for p in _tensor_list(parameters):
            if p.grad is not None:
                p.grad.clamp_(min=-clip_value, max=clip_value)
