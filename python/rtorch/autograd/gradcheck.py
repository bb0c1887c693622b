"""Finite-difference checks of gradients: ``gradcheck`` and ``gradgradcheck``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` and ``gradgradcheck`` when a check fails."""


def _as_tuple(x: Any) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _diff_outputs(outputs: Sequence) -> list:
    return [o for o in outputs if o.requires_grad]


def _flat_index(shape: Sequence[int], i: int) -> tuple:
    idx = []
    for d in reversed(shape):
        idx.append(i % d)
        i //= d
    return tuple(reversed(idx))


def _numerical_jacobians(fn: Callable, inputs: tuple, eps: float) -> list:
    """One (numel_in x numel_out) float64 NumPy matrix per (input, output)
    pair, by central differences."""
    import numpy as np

    import rtorch

    outs = [o for o in _as_tuple(fn(*inputs)) if isinstance(o, rtorch.Tensor)]
    result = []
    for x in inputs:
        if not (isinstance(x, rtorch.Tensor) and x.requires_grad):
            continue
        jac = [np.zeros((x.numel(), o.numel())) for o in outs]
        for i in range(x.numel()):
            idx = _flat_index(x.shape, i)
            # Perturb without recording; evaluate with grad mode as is (a
            # gradgradcheck function differentiates inside).
            with rtorch.no_grad():
                orig = x[idx].item()
                x[idx] = orig - eps
            lo = [
                o.detach().clone() for o in _as_tuple(fn(*inputs)) if isinstance(o, rtorch.Tensor)
            ]
            with rtorch.no_grad():
                x[idx] = orig + eps
            hi = [
                o.detach().clone() for o in _as_tuple(fn(*inputs)) if isinstance(o, rtorch.Tensor)
            ]
            with rtorch.no_grad():
                x[idx] = orig
            for k, (a, b) in enumerate(zip(lo, hi, strict=False)):
                d = (b.double() - a.double()) / (2 * eps)
                jac[k][i] = d.reshape(-1).numpy()
        result.append(jac)
    return result


def _analytical_jacobians(fn: Callable, inputs: tuple) -> tuple[list, Any]:
    import numpy as np

    import rtorch

    diff_inputs = [x for x in inputs if isinstance(x, rtorch.Tensor) and x.requires_grad]
    outs = [o for o in _as_tuple(fn(*inputs)) if isinstance(o, rtorch.Tensor)]
    jacs = [[np.zeros((x.numel(), o.numel())) for o in outs] for x in diff_inputs]
    for k, o in enumerate(outs):
        if not o.requires_grad:
            continue
        for j in range(o.numel()):
            v = rtorch.zeros_like(o)
            v[_flat_index(o.shape, j)] = 1.0
            grads = rtorch.autograd.grad(o, diff_inputs, v, retain_graph=True, allow_unused=True)
            for i, g in enumerate(grads):
                if g is not None:
                    if g.shape != diff_inputs[i].shape:
                        raise GradcheckError(
                            f"Gradient for input {i} has shape {tuple(g.shape)}, "
                            f"expected {tuple(diff_inputs[i].shape)}"
                        )
                    jacs[i][k][:, j] = g.double().reshape(-1).numpy()
    return jacs, outs


def gradcheck(
    func: Callable,
    inputs: Any,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
    check_forward_ad: bool = False,
    check_backward_ad: bool = True,
    fast_mode: bool = False,
    masked: bool | None = None,
) -> bool:
    """Checks gradients computed by autograd against finite differences.

    Each Jacobian entry must satisfy ``|analytical - numerical| <= atol +
    rtol * |numerical|``. Inputs should be float64 tensors with
    ``requires_grad=True``.

    Args:
        func (callable): takes the inputs, returns a tensor or tuple of tensors.
        inputs (tuple of Tensor or Tensor): the inputs.
        eps (float): finite-difference step.
        atol (float): absolute tolerance.
        rtol (float): relative tolerance.
        raise_exception (bool): raise ``GradcheckError`` on failure (else return False).

    Returns:
        True when every Jacobian matches.

    Example::

        >>> x = rtorch.randn(3, dtype=rtorch.float64, requires_grad=True)
        >>> rtorch.autograd.gradcheck(rtorch.sin, (x,))
        True
    """
    import numpy as np

    import rtorch

    if check_forward_ad or check_batched_grad or check_batched_forward_grad:
        raise NotImplementedError("rtorch's gradcheck checks backward mode only")
    inputs = _as_tuple(inputs)
    tensor_inputs = [x for x in inputs if isinstance(x, rtorch.Tensor) and x.requires_grad]
    if not tensor_inputs:
        raise ValueError(
            "gradcheck expects at least one input tensor to require gradient, "
            "but none of the them have requires_grad=True."
        )
    for i, x in enumerate(tensor_inputs):
        if x.dtype != rtorch.float64:
            warnings.warn(
                f"Input #{i} requires gradient and is not a double precision floating point. "
                "This check will likely fail if all the inputs are not of double precision "
                "floating point. ",
                stacklevel=2,
            )

    def fail(msg: str) -> bool:
        if raise_exception:
            raise GradcheckError(msg)
        return False

    analytical, outs = _analytical_jacobians(func, inputs)
    if not outs:
        return fail("gradcheck: the function returned no tensor outputs")
    numerical = _numerical_jacobians(func, inputs, eps)
    for i, (a_i, n_i) in enumerate(zip(analytical, numerical, strict=False)):
        for k, (a, n) in enumerate(zip(a_i, n_i, strict=False)):
            if not np.allclose(a, n, rtol=rtol, atol=atol, equal_nan=True):
                return fail(
                    f"Jacobian mismatch for output {k} with respect to input {i},\n"
                    f"numerical:{n}\nanalytical:{a}\n"
                )
    if check_undefined_grad:
        # Backward with zero seed gradients must give zeros (or None).
        # A fresh graph: the finite differences wrote into the inputs.
        fresh = [o for o in _as_tuple(func(*inputs)) if isinstance(o, rtorch.Tensor)]
        diff = [o for o in fresh if o.requires_grad]
        if diff:
            grads = rtorch.autograd.grad(
                diff,
                tensor_inputs,
                [rtorch.zeros_like(o) for o in diff],
                allow_unused=True,
            )
            for g in grads:
                if g is not None and bool((g != 0).any()):
                    return fail("Backward is not reentrant / gives nonzero grads for zero seeds")
    return True


def gradgradcheck(
    func: Callable,
    inputs: Any,
    grad_outputs: Any = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    gen_non_contig_grad_outputs: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_fwd_over_rev: bool = False,
    check_rev_over_rev: bool = True,
    fast_mode: bool = False,
    masked: bool = False,
) -> bool:
    """Checks second derivatives: ``gradcheck`` of the function that maps
    (inputs, grad_outputs) to the gradients of ``func``.

    Args:
        func (callable): takes the inputs, returns a tensor or tuple of tensors.
        inputs (tuple of Tensor or Tensor): float64 inputs requiring grad.
        grad_outputs (tuple of Tensor, optional): seeds; random when omitted.

    Example::

        >>> x = rtorch.randn(3, dtype=rtorch.float64, requires_grad=True)
        >>> rtorch.autograd.gradgradcheck(rtorch.tanh, (x,))
        True
    """
    import rtorch

    inputs = _as_tuple(inputs)
    outs = _as_tuple(func(*inputs))
    if grad_outputs is None:
        g = rtorch.Generator().manual_seed(0)
        grad_outputs = tuple(
            rtorch.randn(o.shape, dtype=o.dtype, generator=g).requires_grad_(True)
            for o in outs
            if isinstance(o, rtorch.Tensor) and o.requires_grad
        )
    else:
        grad_outputs = _as_tuple(grad_outputs)
    n_in = len(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, rtorch.Tensor) and x.requires_grad]

    def new_func(*args: Any) -> tuple:
        ins, gos = args[:n_in], args[n_in:]
        out = [o for o in _as_tuple(func(*ins)) if isinstance(o, rtorch.Tensor) and o.requires_grad]
        grads = rtorch.autograd.grad(
            out, [ins[i] for i in diff_idx], gos, create_graph=True, allow_unused=True
        )
        return tuple(g for g in grads if g is not None)

    return gradcheck(
        new_func,
        inputs + tuple(grad_outputs),
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        check_undefined_grad=False,
    )
