"""``rtorch.autograd``: reverse-mode automatic differentiation.

The graph and the engine live in Rust (``rust/src/autograd``); this
package holds the Python API: ``backward``, ``grad``, grad modes, custom
``Function``s, ``gradcheck`` and the ``functional`` helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rtorch import _C
from rtorch.autograd import functional, graph
from rtorch.autograd.anomaly_mode import detect_anomaly, set_detect_anomaly
from rtorch.autograd.function import Function, FunctionCtx, once_differentiable
from rtorch.autograd.grad_mode import enable_grad, inference_mode, no_grad, set_grad_enabled
from rtorch.autograd.gradcheck import gradcheck, gradgradcheck

__all__ = [
    "Function",
    "FunctionCtx",
    "Variable",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "functional",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "graph",
    "inference_mode",
    "no_grad",
    "once_differentiable",
    "set_detect_anomaly",
    "set_grad_enabled",
]


def _tensor_tuple(x: Any, what: str) -> tuple:
    import rtorch

    if isinstance(x, rtorch.Tensor):
        return (x,)
    if x is None:
        return ()
    out = tuple(x)
    for t in out:
        if t is not None and not isinstance(t, rtorch.Tensor):
            raise TypeError(
                f"{what} must be a Tensor or a sequence of Tensors, got {type(t).__name__}"
            )
    return out


def _make_grads(outputs: Sequence, grads: Sequence, is_grads_batched: bool = False) -> list:
    """The seed gradients: ones for scalar outputs, checked shapes otherwise."""
    import rtorch

    new = []
    for i, (out, g) in enumerate(zip(outputs, grads, strict=False)):
        if g is None:
            if out.requires_grad and out.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if not out.dtype.is_floating_point:
                raise RuntimeError(
                    f"grad can be implicitly created only for real scalar outputs but got {out.dtype}"
                )
            new.append(rtorch.ones_like(out))
            continue
        if not isinstance(g, rtorch.Tensor):
            raise TypeError("gradients can be either Tensors or None, but got " + type(g).__name__)
        if g.shape != out.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and "
                f"output[{i}] has a shape of {out.shape}."
            )
        if g.dtype.is_floating_point != out.dtype.is_floating_point:
            raise TypeError(
                f"For output {i}, expected grad_output to have a floating point dtype, "
                f"got {g.dtype}"
            )
        new.append(g)
    return new


def backward(
    tensors: Any,
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    grad_variables: Any = None,
    inputs: Any = None,
) -> None:
    """Computes the sum of gradients of ``tensors`` with respect to the graph leaves.

    Gradients accumulate into the leaves' ``.grad``. For non-scalar
    ``tensors`` pass ``grad_tensors`` (the vector of the vector-Jacobian
    product).

    Args:
        tensors (Tensor or sequence of Tensors): the roots.
        grad_tensors (Tensor or sequence, optional): the seed gradients.
        retain_graph (bool, optional): keep the graph for another backward;
            defaults to ``create_graph``.
        create_graph (bool): record the backward pass, for higher-order gradients.
        inputs (Tensor or sequence, optional): accumulate only into these.

    Example::

        >>> x = rtorch.tensor([1.0, 2.0], requires_grad=True)
        >>> rtorch.autograd.backward((x * x).sum())
        >>> x.grad
        tensor([2., 4.])
    """
    if grad_variables is not None:
        grad_tensors = grad_variables
    tensors = _tensor_tuple(tensors, "tensors")
    if inputs is not None:
        inputs = _tensor_tuple(inputs, "inputs")
        if len(inputs) == 0:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
    else:
        inputs = ()
    if grad_tensors is None:
        grads: Sequence = [None] * len(tensors)
    else:
        grads = _tensor_tuple(grad_tensors, "grad_tensors")
        if len(grads) != len(tensors):
            raise RuntimeError(f"got {len(grads)} tensors and {len(tensors)} gradients")
    grads = _make_grads(tensors, grads)
    if retain_graph is None:
        retain_graph = create_graph
    _C._run_backward(tensors, grads, retain_graph, create_graph, inputs, True, True)


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    only_inputs: bool = True,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
) -> tuple:
    """Computes and returns the gradients of ``outputs`` with respect to ``inputs``.

    Args:
        outputs (sequence of Tensor): outputs of the differentiated function.
        inputs (sequence of Tensor): inputs w.r.t. which the gradient is returned.
        grad_outputs (sequence of Tensor, optional): the vector of the
            vector-Jacobian product; ``None`` for scalar outputs.
        retain_graph (bool, optional): defaults to ``create_graph``.
        create_graph (bool): make the result differentiable.
        allow_unused (bool, optional): return ``None`` for inputs the graph
            does not use instead of raising.
        materialize_grads (bool): return zeros instead of ``None`` for unused inputs.

    Example::

        >>> x = rtorch.tensor(3.0, requires_grad=True)
        >>> (g,) = rtorch.autograd.grad(x**3, x, create_graph=True)
        >>> rtorch.autograd.grad(g, x)
        (tensor(18.),)
    """
    import rtorch

    if is_grads_batched:
        raise NotImplementedError("is_grads_batched=True is not supported by rtorch")
    if materialize_grads and allow_unused is False:
        raise ValueError(
            "Expected allow_unused to be True or not passed when materialize_grads=True, "
            "but got: allow_unused=False."
        )
    if allow_unused is None:
        allow_unused = materialize_grads
    outs = _tensor_tuple(outputs, "outputs")
    ins = _tensor_tuple(inputs, "inputs")
    if grad_outputs is None:
        gos: Sequence = [None] * len(outs)
    else:
        gos = _tensor_tuple(grad_outputs, "grad_outputs")
        if len(gos) != len(outs):
            raise RuntimeError(
                f"grad requires one grad_output per output: got {len(gos)} "
                f"grad_outputs and {len(outs)} outputs"
            )
    for t in ins:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    gos = _make_grads(outs, gos)
    if retain_graph is None:
        retain_graph = create_graph
    res = _C._run_backward(outs, gos, retain_graph, create_graph, ins, allow_unused, False)
    if materialize_grads:
        res = tuple(
            rtorch.zeros_like(t) if g is None else g for g, t in zip(res, ins, strict=False)
        )
    return res


def Variable(data: Any, requires_grad: bool = False) -> Any:  # noqa: N802
    """The deprecated ``Variable`` wrapper: returns a tensor."""
    t = data.detach()
    t.requires_grad_(requires_grad)
    return t
