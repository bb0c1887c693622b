"""Higher-level differentiation: ``vjp``, ``jvp``, ``jacobian``, ``hessian``,
``hvp`` and ``vhp`` (reverse mode; ``jvp`` by the double-vjp trick)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


def _tuple(x: Any) -> tuple[tuple, bool]:
    if isinstance(x, tuple):
        return x, True
    if isinstance(x, list):
        return tuple(x), True
    return (x,), False


def _prepare(inputs: tuple, create_graph: bool) -> tuple:
    out = []
    for x in inputs:
        if create_graph and x.requires_grad:
            out.append(x.view_as(x))
        else:
            out.append(x.detach().requires_grad_(True))
    return tuple(out)


def _grads(
    outputs: tuple, inputs: tuple, grad_outputs: tuple, create_graph: bool, strict: bool, what: str
) -> tuple:
    import rtorch

    diff = [(o, g) for o, g in zip(outputs, grad_outputs, strict=False) if o.requires_grad]
    if not diff:
        if strict:
            raise RuntimeError(
                "The output of the user-provided function is independent of input 0. This is "
                "not allowed in strict mode."
            )
        return tuple(rtorch.zeros_like(x) for x in inputs)
    res = rtorch.autograd.grad(
        [o for o, _ in diff],
        inputs,
        [g for _, g in diff],
        create_graph=create_graph,
        retain_graph=True,
        allow_unused=True,
    )
    out = []
    for i, (g, x) in enumerate(zip(res, inputs, strict=False)):
        if g is None:
            if strict:
                raise RuntimeError(
                    f"The output of the user-provided function is independent of input {i}. "
                    "This is not allowed in strict mode."
                )
            g = rtorch.zeros_like(x)
        out.append(g)
    return tuple(out)


def vjp(
    func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple:
    """The vector-Jacobian product ``v^T J`` of ``func`` at ``inputs``.

    Args:
        func (callable): takes tensors, returns a tensor or tuple of tensors.
        inputs (Tensor or tuple of Tensors): where to evaluate.
        v (Tensor or tuple, optional): the vector; may be omitted for a scalar output.
        create_graph (bool): make the result differentiable.
        strict (bool): raise when an output does not depend on an input.

    Returns:
        ``(func_output, vjp)``.
    """
    import rtorch

    ins, in_tuple = _tuple(inputs)
    with rtorch.enable_grad():
        ins = _prepare(ins, create_graph)
        outs, out_tuple = _tuple(func(*ins))
        if v is None:
            if len(outs) != 1 or outs[0].numel() != 1:
                raise RuntimeError(
                    "The vector v can only be None if the user-provided function returns a "
                    "single Tensor with a single element."
                )
            vs = (rtorch.ones_like(outs[0]),)
        else:
            vs, _ = _tuple(v)
        g = _grads(outs, ins, vs, create_graph, strict, "vjp")
    outs_r = tuple(o if create_graph else o.detach() for o in outs)
    return (outs_r if out_tuple else outs_r[0]), (g if in_tuple else g[0])


def jvp(
    func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple:
    """The Jacobian-vector product ``J v`` of ``func`` at ``inputs``.

    Returns:
        ``(func_output, jvp)``.
    """
    import rtorch

    ins, in_tuple = _tuple(inputs)
    if v is None:
        if len(ins) != 1 or ins[0].numel() != 1:
            raise RuntimeError(
                "The vector v can only be None if the input to the user-provided function is "
                "a single Tensor with a single element."
            )
        vs: tuple = (rtorch.ones_like(ins[0]),)
    else:
        vs, _ = _tuple(v)
    with rtorch.enable_grad():
        ins = _prepare(ins, create_graph)
        outs, out_tuple = _tuple(func(*ins))
        # J v = d/du (u^T J) v, with u a dummy cotangent.
        us = tuple(rtorch.zeros_like(o).requires_grad_(True) for o in outs)
        gu = _grads(outs, ins, us, True, strict, "jvp")
        pairs = [(g, vv) for g, vv in zip(gu, vs, strict=False) if g.requires_grad]
        if pairs:
            res = rtorch.autograd.grad(
                [g for g, _ in pairs],
                us,
                [vv for _, vv in pairs],
                create_graph=create_graph,
                allow_unused=True,
            )
        else:
            res = (None,) * len(us)
        jv = tuple(
            rtorch.zeros_like(o) if r is None else r for r, o in zip(res, outs, strict=False)
        )
    outs_r = tuple(o if create_graph else o.detach() for o in outs)
    jv = tuple(j if create_graph else j.detach() for j in jv)
    return (outs_r if out_tuple else outs_r[0]), (jv if out_tuple else jv[0])


def jacobian(
    func: Callable,
    inputs: Any,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
) -> Any:
    """The Jacobian of ``func`` at ``inputs``.

    For one input and one output the result is a tensor of shape
    ``output.shape + input.shape``; tuples nest as in PyTorch
    (``result[i][j]`` is output ``i`` by input ``j``).

    Example::

        >>> rtorch.autograd.functional.jacobian(lambda x: x**2, rtorch.tensor([1.0, 2.0]))
        tensor([[2., 0.],
                [0., 4.]])
    """
    import rtorch

    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(
            'Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
            'function has more outputs than inputs, "forward-mode" tends to be more performant. '
            'Otherwise, prefer to use "reverse-mode".'
        )
    ins, in_tuple = _tuple(inputs)
    with rtorch.enable_grad():
        ins = _prepare(ins, create_graph)
        outs, out_tuple = _tuple(func(*ins))
        result = []
        for o in outs:
            rows: list[list] = [[] for _ in ins]
            for j in range(o.numel()):
                v = rtorch.zeros_like(o)
                v.view(-1)[j] = 1.0
                g = _grads((o,), ins, (v,), create_graph, strict, "jacobian")
                for i, gi in enumerate(g):
                    rows[i].append(gi)
            per_input = []
            for i, x in enumerate(ins):
                if rows[i]:
                    J = rtorch.stack(rows[i]).reshape(tuple(o.shape) + tuple(x.shape))
                else:
                    J = rtorch.zeros(tuple(o.shape) + tuple(x.shape), dtype=x.dtype)
                per_input.append(J if create_graph else J.detach())
            result.append(tuple(per_input) if in_tuple else per_input[0])
    return tuple(result) if out_tuple else result[0]


def hessian(
    func: Callable,
    inputs: Any,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
) -> Any:
    """The Hessian of the scalar function ``func`` at ``inputs``.

    Example::

        >>> rtorch.autograd.functional.hessian(lambda x: (x**3).sum(), rtorch.tensor([1.0, 2.0]))
        tensor([[ 6.,  0.],
                [ 0., 12.]])
    """
    import rtorch

    ins, in_tuple = _tuple(inputs)

    def jac_func(*xs: Any) -> Any:
        out = func(*xs)
        if not isinstance(out, rtorch.Tensor) or out.numel() != 1:
            raise RuntimeError(
                "The Tensor returned by the function given to hessian should contain a single "
                "element"
            )
        g = jacobian(func, xs, create_graph=True, strict=strict)
        return g

    res = jacobian(jac_func, ins, create_graph=create_graph, strict=strict)
    if not in_tuple:
        return res[0][0]
    return res


def vhp(
    func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple:
    """``v^T H`` for the scalar function ``func``; returns ``(func_output, vhp)``."""
    import rtorch

    ins, in_tuple = _tuple(inputs)
    with rtorch.enable_grad():
        ins = _prepare(ins, create_graph)
        out = func(*ins)
        if out.numel() != 1:
            raise RuntimeError(
                "The function given to hvp should return a single Tensor with a single element"
            )
        g = _grads((out,), ins, (rtorch.ones_like(out),), True, strict, "vhp")
        vs, _ = _tuple(v) if v is not None else ((rtorch.ones_like(ins[0]),), False)
        res = _grads(g, ins, vs, create_graph, strict, "vhp")
    out_r = out if create_graph else out.detach()
    return out_r, (res if in_tuple else res[0])


def hvp(
    func: Callable, inputs: Any, v: Any = None, create_graph: bool = False, strict: bool = False
) -> tuple:
    """``H v`` for the scalar function ``func`` (equal to ``vhp`` since H is
    symmetric); returns ``(func_output, hvp)``."""
    return vhp(func, inputs, v, create_graph, strict)
