"""Registry sweep: every public op of rtorch that takes float tensors is
either checked against finite differences here (``gradcheck``, and
``gradgradcheck`` where PyTorch has second derivatives) or listed as
non-differentiable with the reason. A new op in the registry that is in
neither table fails ``test_every_registry_op_is_classified``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

import pytest

import rtorch
from rtorch import _ops
from rtorch.autograd import gradcheck, gradgradcheck

# ---------------------------------------------------------------- inputs


class T:
    """A float64 leaf requiring grad, made fresh for each check.

    ``dom``: the value range (``any`` normal, ``pos`` in [0.5, 2), ``unit`` in
    (-0.8, 0.8), ``gt1`` in [1.5, 2.5)). ``nc``: non-contiguous (a transposed
    leaf)."""

    def __init__(self, *shape: int, dom: str = "any", nc: bool = False, grad: bool = True):
        self.shape, self.dom, self.nc, self.grad = shape, dom, nc, grad

    def make(self) -> rtorch.Tensor:
        shape = list(self.shape)
        if self.nc:
            shape[-1], shape[-2] = shape[-2], shape[-1]
        if self.dom == "any":
            x = rtorch.randn(*shape, dtype=rtorch.float64)
        else:
            lo, width = {"pos": (0.5, 1.5), "unit": (-0.8, 1.6), "gt1": (1.5, 1.0)}[self.dom]
            x = rtorch.rand(*shape, dtype=rtorch.float64) * width + lo
        if self.nc:
            x = x.transpose(-1, -2)
            assert not x.is_contiguous()
        return x.detach().requires_grad_(self.grad)


class C:
    """One check: ``fn(*args)`` with ``T`` args made fresh. ``gg``: also
    run gradgradcheck."""

    def __init__(self, fn: Callable, *args: Any, gg: bool = True, id: str = ""):
        self.fn, self.args, self.gg, self.id = fn, args, gg, id

    def inputs(self) -> tuple:
        rtorch.manual_seed(0)
        return tuple(a.make() if isinstance(a, T) else a for a in self.args)


def f(name: str) -> Callable:
    return getattr(rtorch, name)


def unary(name: str, dom: str = "any", gg: bool = True) -> list:
    fn = f(name)
    return [
        C(fn, T(3, 4, dom=dom), gg=gg),
        C(fn, T(3, 4, dom=dom, nc=True), gg=gg, id="noncontig"),
        C(fn, T(dom=dom), gg=gg, id="0d"),
    ]


def binary(name: str, dom: str = "any", dom2: str | None = None, gg: bool = True) -> list:
    fn = f(name)
    d2 = dom2 or dom
    return [
        C(fn, T(3, 4, dom=dom), T(3, 4, dom=d2), gg=gg),
        C(fn, T(3, 4, dom=dom, nc=True), T(4, dom=d2), gg=gg, id="broadcast"),
        C(fn, T(3, 1, dom=dom), T(1, 4, dom=d2), gg=gg, id="outer-broadcast"),
        C(lambda x: fn(x, 1.5), T(3, 4, dom=dom), gg=gg, id="scalar"),
    ]


def inplace(name: str, dom: str = "any", *extra: Any) -> list:
    fn = f(name)
    return [C(lambda x: fn(x.clone(), *extra), T(3, 4, dom=dom))]


def mask(*shape: int) -> rtorch.Tensor:
    rtorch.manual_seed(1)
    return rtorch.rand(*shape) > 0.5


def idx(*values: int) -> rtorch.Tensor:
    return rtorch.tensor(list(values))


# ---------------------------------------------------------------- the table

SAMPLES: dict[str, list] = {}

for (
    _n
) in "abs absolute neg negative sign sgn exp exp2 expm1 sin cos tan atan arctan sinh cosh".split():
    SAMPLES[_n] = unary(_n)
for _n in "tanh asinh arcsinh sigmoid erf erfc floor ceil round trunc fix frac square relu".split():
    SAMPLES[_n] = unary(_n)
for _n in "log log2 log10 log1p sqrt rsqrt reciprocal lgamma digamma".split():
    SAMPLES[_n] = unary(_n, "pos")
for _n in "asin arcsin acos arccos atanh arctanh erfinv".split():
    SAMPLES[_n] = unary(_n, "unit")
for _n in "acosh arccosh".split():
    SAMPLES[_n] = unary(_n, "gt1")
SAMPLES["polygamma"] = [
    C(lambda x, n=n: rtorch.polygamma(n, x), T(3, 4, dom="pos"), id=f"n{n}") for n in (0, 1, 2, 3)
]
SAMPLES["logit"] = [C(lambda x: rtorch.logit(x * 0.4), T(3, 4, dom="pos"))]
SAMPLES["nan_to_num"] = unary("nan_to_num")
for _n in ("clamp", "clip"):
    SAMPLES[_n] = [
        C(lambda x, n=_n: f(n)(x, -0.5, 0.5), T(3, 4)),
        C(lambda x, lo, hi, n=_n: f(n)(x, lo, hi), T(3, 4), T(3, 1), T(4), id="tensor-bounds"),
        C(lambda x, lo, n=_n: f(n)(x, min=lo), T(3, 4, nc=True), T(4), id="tensor-min"),
        C(lambda x, hi, n=_n: f(n)(x, max=hi), T(3, 4), T(3, 4), id="tensor-max"),
    ]
SAMPLES["clamp_min"] = [C(lambda x: rtorch.clamp_min(x, 0.1), T(3, 4))]
SAMPLES["clamp_max"] = [C(lambda x: rtorch.clamp_max(x, 0.1), T(3, 4))]

for _n in "add sub subtract mul multiply maximum minimum fmax fmin atan2 arctan2".split():
    SAMPLES[_n] = binary(_n)
for _n in "hypot logaddexp logaddexp2 copysign".split():
    SAMPLES[_n] = binary(_n)
for _n in "div divide true_divide remainder fmod xlogy".split():
    SAMPLES[_n] = binary(_n, "any", "pos")
SAMPLES["float_power"] = binary("float_power", "pos")
SAMPLES["floor_divide"] = binary("floor_divide", "any", "pos")
SAMPLES["pow"] = [
    *binary("pow", "pos"),
    C(lambda x: rtorch.pow(2.0, x), T(3, 4), id="scalar-base"),
]

SAMPLES["lerp"] = [
    C(lambda a, b: rtorch.lerp(a, b, 0.3), T(3, 4), T(3, 4)),
    C(rtorch.lerp, T(3, 4, nc=True), T(4), T(3, 1), id="tensor-weight-broadcast"),
]
for _n in ("addcmul", "addcdiv"):
    _d = "pos" if _n == "addcdiv" else "any"
    SAMPLES[_n] = [
        C(lambda a, b, c, n=_n: f(n)(a, b, c, value=0.5), T(3, 4), T(3, 4), T(3, 4, dom=_d)),
        C(f(_n), T(4), T(3, 1, nc=False), T(3, 4, dom=_d, nc=True), id="broadcast"),
    ]
SAMPLES["masked_fill"] = [
    C(lambda x: rtorch.masked_fill(x, mask(3, 4), 2.0), T(3, 4)),
    C(lambda x: rtorch.masked_fill(x, mask(4), -1.0), T(3, 4, nc=True), id="broadcast-mask"),
    C(lambda x, v: rtorch.masked_fill(x, mask(3, 4), v), T(3, 4), T(), id="tensor-value"),
    C(lambda x, v: x.clone().masked_fill_(mask(4), v), T(3, 4), T(), id="tensor-value-inplace"),
]
SAMPLES["where"] = [
    C(lambda a, b: rtorch.where(mask(3, 4), a, b), T(3, 4), T(3, 4)),
    C(lambda a, b: rtorch.where(mask(3, 4), a, b), T(3, 1), T(4, nc=False), id="broadcast"),
    C(lambda a: rtorch.where(mask(3, 4), a, 0.5), T(3, 4, nc=True), id="scalar-other"),
    C(lambda b: rtorch.where(mask(3, 4), 0.5, b), T(4), id="scalar-input"),
]

# Views and shape ops.
SAMPLES["reshape"] = [
    C(lambda x: rtorch.reshape(x, (4, 3)), T(3, 4)),
    C(lambda x: rtorch.reshape(x, (-1,)), T(3, 4, nc=True), id="copy"),
]
SAMPLES["permute"] = [C(lambda x: rtorch.permute(x, (2, 0, 1)), T(2, 3, 4))]
for _n in ("transpose", "swapaxes", "swapdims"):
    SAMPLES[_n] = [C(lambda x, n=_n: f(n)(x, 0, 2), T(2, 3, 4))]
SAMPLES["t"] = [C(rtorch.t, T(3, 4, nc=True))]
SAMPLES["squeeze"] = [C(rtorch.squeeze, T(3, 1, 4)), C(lambda x: rtorch.squeeze(x, 1), T(3, 1, 4))]
SAMPLES["unsqueeze"] = [C(lambda x: rtorch.unsqueeze(x, 1), T(3, 4))]
SAMPLES["flatten"] = [
    C(rtorch.flatten, T(2, 3, 4)),
    C(rtorch.flatten, T(3, 4, nc=True), id="noncontig"),
]
SAMPLES["unflatten"] = [C(lambda x: rtorch.unflatten(x, 1, (2, 2)), T(3, 4))]
SAMPLES["narrow"] = [C(lambda x: rtorch.narrow(x, 1, 1, 2), T(3, 4, nc=True))]
SAMPLES["select"] = [C(lambda x: rtorch.select(x, 1, 2), T(3, 4))]
SAMPLES["as_strided"] = [
    C(lambda x: rtorch.as_strided(x, (2, 2), (1, 2)), T(3, 4)),
    C(lambda x: rtorch.as_strided(x, (3, 3), (1, 1)), T(12), id="overlapping"),
]
SAMPLES["diagonal"] = [
    C(lambda x: rtorch.diagonal(x, 1), T(3, 4)),
    C(rtorch.diagonal, T(3, 4, nc=True)),
]
SAMPLES["clone"] = [C(rtorch.clone, T(3, 4, nc=True))]
SAMPLES["movedim"] = [C(lambda x: rtorch.movedim(x, 0, -1), T(2, 3, 4))]
SAMPLES["moveaxis"] = [C(lambda x: rtorch.moveaxis(x, (0, 1), (2, 0)), T(2, 3, 4))]
SAMPLES["broadcast_to"] = [C(lambda x: rtorch.broadcast_to(x, (2, 3, 4)), T(3, 1))]
SAMPLES["broadcast_tensors"] = [C(rtorch.broadcast_tensors, T(3, 1), T(4), T(2, 1, 1))]
for _n in ("atleast_1d", "atleast_2d", "atleast_3d"):
    SAMPLES[_n] = [
        C(f(_n), T()),
        C(f(_n), T(3)),
        C(lambda a, b, n=_n: f(n)(a, b), T(2, 3), T(4), id="many"),
    ]

# Joining and splitting.
SAMPLES["cat"] = [C(lambda a, b: rtorch.cat([a, b], 1), T(3, 2), T(3, 4, nc=True))]
for _n in ("concat", "concatenate"):
    SAMPLES[_n] = [C(lambda a, b, n=_n: f(n)([a, b]), T(2, 3), T(1, 3))]
SAMPLES["stack"] = [C(lambda a, b: rtorch.stack([a, b], 1), T(3, 4), T(3, 4, nc=True))]
for _n in ("hstack", "vstack", "row_stack", "dstack"):
    SAMPLES[_n] = [
        C(lambda a, b, n=_n: f(n)([a, b]), T(3), T(3)),
        C(lambda a, b, n=_n: f(n)([a, b]), T(2, 3), T(2, 3, nc=True), id="2d"),
    ]
SAMPLES["split"] = [
    C(lambda x: rtorch.split(x, 2, 1), T(3, 5)),
    C(lambda x: rtorch.split(x, [1, 4], 1), T(3, 5), id="sizes"),
]
SAMPLES["split_with_sizes"] = [C(lambda x: rtorch.split_with_sizes(x, [2, 1], 0), T(3, 4, nc=True))]
SAMPLES["chunk"] = [C(lambda x: rtorch.chunk(x, 3, 1), T(3, 5))]
SAMPLES["tensor_split"] = [
    C(lambda x: rtorch.tensor_split(x, 3, 1), T(3, 5)),
    C(lambda x: rtorch.tensor_split(x, [1, 3], 0), T(4, 3), id="indices"),
]
SAMPLES["unbind"] = [C(lambda x: rtorch.unbind(x, 1), T(3, 4, nc=True))]
SAMPLES["flip"] = [
    C(lambda x: rtorch.flip(x, (0, 2)), T(2, 3, 4)),
    C(lambda x: rtorch.flip(x, (1,)), T(3, 4, nc=True)),
]
SAMPLES["fliplr"] = [C(rtorch.fliplr, T(3, 4))]
SAMPLES["flipud"] = [C(rtorch.flipud, T(3, 4, nc=True))]
SAMPLES["roll"] = [
    C(lambda x: rtorch.roll(x, (1, -2), (0, 1)), T(3, 4)),
    C(lambda x: rtorch.roll(x, 5), T(3, 4, nc=True), id="flat"),
]
SAMPLES["rot90"] = [
    C(lambda x, k=k: rtorch.rot90(x, k, (0, 1)), T(3, 4), id=f"k{k}") for k in (1, 2, 3, 4)
]
SAMPLES["tile"] = [
    C(lambda x: rtorch.tile(x, (2, 1, 3)), T(3, 2)),
    C(lambda x: rtorch.tile(x, (2,)), T(2, 3, nc=True)),
]
SAMPLES["repeat_interleave"] = [
    C(lambda x: rtorch.repeat_interleave(x, 2), T(2, 3)),
    C(lambda x: rtorch.repeat_interleave(x, 3, 1), T(2, 3, nc=True), id="dim"),
    C(lambda x: rtorch.repeat_interleave(x, idx(1, 0, 2), 1), T(2, 3), id="tensor-repeats"),
]
SAMPLES["meshgrid"] = [C(lambda a, b: rtorch.meshgrid(a, b, indexing="ij"), T(3), T(4))]
SAMPLES["cartesian_prod"] = [C(rtorch.cartesian_prod, T(3), T(2))]
SAMPLES["combinations"] = [C(lambda x: rtorch.combinations(x, 2), T(4))]
SAMPLES["tril"] = [
    C(rtorch.tril, T(3, 4)),
    C(lambda x: rtorch.tril(x, -1), T(2, 3, 3, nc=True), id="batched"),
]
SAMPLES["triu"] = [
    C(rtorch.triu, T(3, 4, nc=True)),
    C(lambda x: rtorch.triu(x, 1), T(2, 3, 3), id="batched"),
]
SAMPLES["diag"] = [
    C(rtorch.diag, T(3)),
    C(lambda x: rtorch.diag(x, -1), T(3)),
    C(lambda x: rtorch.diag(x, 1), T(3, 4, nc=True), id="2d"),
]
SAMPLES["diag_embed"] = [
    C(rtorch.diag_embed, T(2, 3)),
    C(lambda x: rtorch.diag_embed(x, 1, 0, 2), T(2, 3), id="offset"),
]
SAMPLES["trace"] = [C(rtorch.trace, T(3, 4)), C(rtorch.trace, T(3, 3, nc=True), id="noncontig")]

# In-place ops (on a clone, so the leaf stays a leaf).
for _n, _d in [
    ("abs_", "any"),
    ("neg_", "any"),
    ("exp_", "any"),
    ("log_", "pos"),
    ("sqrt_", "pos"),
]:
    SAMPLES[_n] = inplace(_n, _d)
for _n in ("sigmoid_", "tanh_", "relu_"):
    SAMPLES[_n] = inplace(_n)
SAMPLES["clamp_"] = inplace("clamp_", "any", -0.5, 0.5)
SAMPLES["fill_"] = inplace("fill_", "any", 2.0)
SAMPLES["zero_"] = inplace("zero_")

SAMPLES["softmax"] = [
    C(lambda x: rtorch.softmax(x, 1), T(3, 4)),
    C(lambda x: rtorch.softmax(x, 0), T(3, 4, nc=True)),
]
SAMPLES["log_softmax"] = [C(lambda x: rtorch.log_softmax(x, 1), T(3, 4, nc=True))]

# Gathering and scattering.
_IX = rtorch.tensor([[0, 2, 1, 0], [1, 0, 0, 2]])
SAMPLES["gather"] = [C(lambda x: rtorch.gather(x, 0, _IX.clamp(max=2)), T(3, 4))]
SAMPLES["scatter"] = [
    C(lambda x, s: rtorch.scatter(x, 1, idx(0, 2, 1).reshape(3, 1), s), T(3, 4), T(3, 1)),
    C(lambda x: rtorch.scatter(x, 1, idx(0, 2, 1).reshape(3, 1), 1.5), T(3, 4), id="value"),
]
SAMPLES["scatter_add"] = [C(lambda x, s: rtorch.scatter_add(x, 0, _IX, s), T(3, 4), T(2, 4))]
SAMPLES["scatter_reduce"] = [
    C(lambda x, s: rtorch.scatter_reduce(x, 0, _IX, s, "sum"), T(3, 4), T(2, 4)),
    C(lambda x, s: rtorch.scatter_reduce(x, 0, _IX, s, "amax"), T(3, 4), T(2, 4), id="amax"),
    C(
        lambda x, s: rtorch.scatter_reduce(x, 0, _IX, s, "mean", include_self=False),
        T(3, 4),
        T(2, 4),
        id="mean",
    ),
    C(lambda x, s: rtorch.scatter_reduce(x, 0, _IX, s, "prod"), T(3, 4), T(2, 4), id="prod"),
]
SAMPLES["index_select"] = [C(lambda x: rtorch.index_select(x, 1, idx(3, 0, 3)), T(3, 4, nc=True))]
SAMPLES["index_add"] = [
    C(lambda x, s: rtorch.index_add(x, 1, idx(3, 0, 3), s, alpha=2.0), T(3, 4), T(3, 3))
]
SAMPLES["index_copy"] = [C(lambda x, s: rtorch.index_copy(x, 1, idx(3, 0), s), T(3, 4), T(3, 2))]
SAMPLES["index_fill"] = [C(lambda x: rtorch.index_fill(x, 1, idx(3, 0), -1.0), T(3, 4))]
SAMPLES["index_put"] = [
    C(lambda x, v: rtorch.index_put(x, (idx(0, 2), idx(1, 3)), v), T(3, 4), T(2))
]
SAMPLES["index_put_"] = [
    C(
        lambda x, v: rtorch.index_put_(x.clone(), (idx(0, 2, 0), idx(1, 3, 1)), v, accumulate=True),
        T(3, 4),
        T(3),
    )
]
SAMPLES["masked_select"] = [C(lambda x: rtorch.masked_select(x, mask(3, 4)), T(3, 4, nc=True))]
SAMPLES["masked_scatter"] = [
    C(lambda x, s: rtorch.masked_scatter(x, mask(3, 4), s), T(3, 4), T(12))
]
SAMPLES["take"] = [C(lambda x: rtorch.take(x, idx(0, 11, 5, 5)), T(3, 4, nc=True))]
SAMPLES["take_along_dim"] = [C(lambda x: rtorch.take_along_dim(x, _IX.clamp(max=2), 0), T(3, 4))]

# Products.
SAMPLES["outer"] = [C(rtorch.outer, T(3), T(4))]
SAMPLES["ger"] = [C(rtorch.ger, T(3), T(4))]
SAMPLES["inner"] = [C(rtorch.inner, T(3, 4), T(2, 4))]
SAMPLES["cross"] = [C(lambda a, b: rtorch.cross(a, b, dim=1), T(2, 3), T(2, 3))]
SAMPLES["kron"] = [C(rtorch.kron, T(2, 3), T(3, 2))]
SAMPLES["mm"] = [C(rtorch.mm, T(3, 4), T(4, 2, nc=True))]
SAMPLES["matmul"] = [
    C(rtorch.matmul, T(2, 3, 4), T(4, 2)),
    C(rtorch.matmul, T(4), T(3, 4, 2), id="vec-batch"),
]
SAMPLES["bmm"] = [C(rtorch.bmm, T(2, 3, 4), T(2, 4, 2))]
SAMPLES["mv"] = [C(rtorch.mv, T(3, 4, nc=True), T(4))]
SAMPLES["dot"] = [C(rtorch.dot, T(4), T(4))]
SAMPLES["vdot"] = [C(rtorch.vdot, T(4), T(4))]
SAMPLES["addmm"] = [
    C(lambda a, b, c: rtorch.addmm(a, b, c, beta=0.5, alpha=2.0), T(3, 1), T(3, 4), T(4, 2))
]
SAMPLES["_addmm_activation"] = [
    C(rtorch._addmm_activation, T(2), T(3, 4), T(4, 2)),
    C(lambda a, b, c: rtorch._addmm_activation(a, b, c, use_gelu=True), T(2), T(3, 4), T(4, 2)),
]
SAMPLES["addmv"] = [C(rtorch.addmv, T(3), T(3, 4), T(4))]
SAMPLES["addbmm"] = [C(rtorch.addbmm, T(3, 2), T(2, 3, 4), T(2, 4, 2))]
SAMPLES["baddbmm"] = [C(rtorch.baddbmm, T(2, 3, 2), T(2, 3, 4), T(2, 4, 2))]
SAMPLES["einsum"] = [C(lambda a, b: rtorch.einsum("ij,jk->ik", a, b), T(3, 4), T(4, 2))]
SAMPLES["tensordot"] = [C(lambda a, b: rtorch.tensordot(a, b, dims=([1], [0])), T(3, 4), T(4, 2))]
SAMPLES["cdist"] = [C(rtorch.cdist, T(3, 2), T(4, 2))]

# Reductions.
SAMPLES["sum"] = [
    C(rtorch.sum, T(3, 4, nc=True)),
    C(lambda x: rtorch.sum(x, (0, 2), keepdim=True), T(2, 3, 4), id="dims"),
]
SAMPLES["mean"] = [
    C(rtorch.mean, T(3, 4)),
    C(lambda x: rtorch.mean(x, 1), T(3, 4, nc=True), id="dim"),
]
_NANS = rtorch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).bool()
SAMPLES["nansum"] = [
    C(lambda x: rtorch.nansum(x.masked_fill(_NANS, float("nan"))), T(3, 4)),
    C(lambda x: rtorch.nansum(x.masked_fill(_NANS, float("nan")), 1), T(3, 4, nc=True), id="dim"),
]
SAMPLES["nanmean"] = [
    C(lambda x: rtorch.nanmean(x.masked_fill(_NANS, float("nan"))), T(3, 4)),
    C(
        lambda x: rtorch.nanmean(x.masked_fill(_NANS, float("nan")), 1, keepdim=True),
        T(3, 4),
        id="dim",
    ),
]
_ZEROS = rtorch.tensor([[0.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]])
SAMPLES["prod"] = [
    C(rtorch.prod, T(3, 4)),
    C(lambda x: rtorch.prod(x, 1), T(3, 4, nc=True), id="dim"),
    C(lambda x: rtorch.prod(x * _ZEROS, 1, keepdim=True), T(3, 4), id="zeros-dim"),
    C(lambda x: rtorch.prod(x * _ZEROS[2, 1:]), T(3), id="one-zero"),
    C(lambda x: rtorch.prod(x * _ZEROS), T(3, 4), id="two-zeros"),
    C(lambda x: rtorch.prod(x, 0), T(), id="0d"),
]
SAMPLES["amax"] = [
    C(lambda x: rtorch.amax(x, 1), T(3, 4, nc=True)),
    C(rtorch.amax, T(3, 4), id="all"),
]
SAMPLES["amin"] = [C(lambda x: rtorch.amin(x, (0, 1)), T(3, 4))]
SAMPLES["aminmax"] = [
    C(rtorch.aminmax, T(3, 4)),
    C(lambda x: rtorch.aminmax(x, dim=1), T(3, 4, nc=True), id="dim"),
]
for _n in ("max", "min"):
    SAMPLES[_n] = [
        C(f(_n), T(3, 4)),
        C(lambda x, n=_n: f(n)(x, 1)[0], T(3, 4, nc=True), id="dim"),
        C(lambda x, n=_n: f(n)(x, 0, keepdim=True)[0], T(3, 4), id="keepdim"),
        C(f(_n), T(3, 4), T(4), id="binary"),
    ]
SAMPLES["var"] = [
    C(rtorch.var, T(3, 4)),
    C(lambda x: rtorch.var(x, 1, correction=0), T(3, 4, nc=True), id="dim"),
]
SAMPLES["std"] = [
    C(rtorch.std, T(3, 4)),
    C(lambda x: rtorch.std(x, 0, keepdim=True), T(3, 4, nc=True), id="dim"),
]
SAMPLES["var_mean"] = [C(lambda x: rtorch.var_mean(x, 1), T(3, 4))]
SAMPLES["std_mean"] = [C(lambda x: rtorch.std_mean(x, 1), T(3, 4, nc=True))]
SAMPLES["norm"] = [
    C(rtorch.norm, T(3, 4)),
    C(lambda x: rtorch.norm(x, 1, 1), T(3, 4, nc=True), id="p1"),
    C(lambda x: rtorch.norm(x, 3, 0, keepdim=True), T(3, 4), id="p3"),
    C(lambda x: rtorch.norm(x, float("inf")), T(3, 4), id="inf"),
    C(lambda x: rtorch.norm(x, "fro"), T(3, 4), id="fro"),
]
SAMPLES["logsumexp"] = [C(lambda x: rtorch.logsumexp(x, 1), T(3, 4, nc=True))]
SAMPLES["cumsum"] = [
    C(lambda x: rtorch.cumsum(x, 1), T(3, 4, nc=True)),
    C(lambda x: rtorch.cumsum(x, 0), T(), id="0d"),
]
SAMPLES["cumprod"] = [
    C(lambda x: rtorch.cumprod(x, 1), T(3, 4, nc=True)),
    C(lambda x: rtorch.cumprod(x * _ZEROS, 1), T(3, 4), id="zeros"),
    C(lambda x: rtorch.cumprod(x * _ZEROS, 0), T(3, 4), id="zeros-dim0"),
    C(lambda x: rtorch.cumprod(x, 0), T(), id="0d"),
]
SAMPLES["cummax"] = [C(lambda x: rtorch.cummax(x, 1)[0], T(3, 4, nc=True))]
SAMPLES["cummin"] = [C(lambda x: rtorch.cummin(x, 0)[0], T(3, 4))]

# Order statistics.
SAMPLES["sort"] = [
    C(lambda x: rtorch.sort(x, 1)[0], T(3, 4, nc=True)),
    C(lambda x: rtorch.sort(x, 0, descending=True)[0], T(3, 4), id="descending"),
]
SAMPLES["msort"] = [C(rtorch.msort, T(3, 4))]
SAMPLES["topk"] = [
    C(lambda x: rtorch.topk(x, 2, 1)[0], T(3, 4, nc=True)),
    C(lambda x: rtorch.topk(x, 2, 0, largest=False)[0], T(3, 4), id="smallest"),
]
SAMPLES["kthvalue"] = [
    C(lambda x: rtorch.kthvalue(x, 2, 1)[0], T(3, 4)),
    C(lambda x: rtorch.kthvalue(x, 3, 0, True)[0], T(3, 4, nc=True), id="keepdim"),
]
for _n in ("median", "nanmedian"):
    SAMPLES[_n] = [
        C(f(_n), T(3, 4)),
        C(lambda x, n=_n: f(n)(x, 1)[0], T(3, 5, nc=True), id="dim"),
        C(lambda x, n=_n: f(n)(x, 0, keepdim=True)[0], T(3, 4), id="keepdim"),
    ]
SAMPLES["nanmedian"].append(
    C(lambda x: rtorch.nanmedian(x.masked_fill(_NANS, float("nan")), 1)[0], T(3, 4), id="nan")
)
SAMPLES["mode"] = [C(lambda x: rtorch.mode(x.round(), 1)[0], T(3, 6, dom="any"), gg=True)]
for _n in ("quantile", "nanquantile"):
    SAMPLES[_n] = [
        C(lambda x, n=_n: f(n)(x, 0.3), T(3, 4)),
        C(
            lambda x, n=_n: f(n)(x, rtorch.tensor([0.25, 0.5, 1.0], dtype=rtorch.float64), 1),
            T(3, 5, nc=True),
            id="dim",
        ),
        C(
            lambda x, n=_n: f(n)(x, 0.4, 0, keepdim=True, interpolation="midpoint"),
            T(3, 4),
            id="midpoint",
        ),
        *[
            C(lambda x, m=m, n=_n: f(n)(x, 0.4, 1, interpolation=m), T(3, 4), id=m)
            for m in ("lower", "higher", "nearest")
        ],
    ]
SAMPLES["nanquantile"].append(
    C(lambda x: rtorch.nanquantile(x.masked_fill(_NANS, float("nan")), 0.5, 1), T(3, 4), id="nan")
)

# Linear algebra.
SAMPLES["det"] = [C(rtorch.det, T(3, 3))]
SAMPLES["inverse"] = [C(rtorch.inverse, T(3, 3))]
SAMPLES["slogdet"] = [C(lambda x: rtorch.slogdet(x)[1], T(3, 3))]

_spd = lambda a: a @ a.t() + rtorch.eye(3, dtype=rtorch.float64)  # noqa: E731
LINALG: dict[str, list] = {
    "matmul": [C(rtorch.linalg.matmul, T(3, 4), T(4, 2))],
    "det": [C(rtorch.linalg.det, T(3, 3))],
    "inv": [C(rtorch.linalg.inv, T(3, 3))],
    "slogdet": [C(lambda x: rtorch.linalg.slogdet(x)[1], T(3, 3))],
    "solve": [C(rtorch.linalg.solve, T(3, 3), T(3, 2))],
    "cholesky": [C(lambda a: rtorch.linalg.cholesky(_spd(a)), T(3, 3))],
    "qr": [C(lambda a: tuple(rtorch.linalg.qr(a)), T(4, 3))],
    "svdvals": [C(rtorch.linalg.svdvals, T(4, 3))],
    "svd": [C(lambda a: rtorch.linalg.svd(a, full_matrices=False)[1], T(4, 3))],
    "eigh": [C(lambda a: rtorch.linalg.eigh(_spd(a))[0], T(3, 3))],
    "eigvalsh": [C(lambda a: rtorch.linalg.eigvalsh(_spd(a)), T(3, 3))],
    "lstsq": [C(lambda a, b: rtorch.linalg.lstsq(a, b).solution, T(4, 3), T(4, 2))],
    "pinv": [C(rtorch.linalg.pinv, T(4, 3))],
    "vector_norm": [C(lambda x: rtorch.linalg.vector_norm(x, 3, 1), T(3, 4, nc=True))],
    "matrix_norm": [
        C(rtorch.linalg.matrix_norm, T(3, 4)),
        C(lambda x: rtorch.linalg.matrix_norm(x, "nuc"), T(3, 4), id="nuc"),
    ],
    "norm": [
        C(rtorch.linalg.norm, T(3, 4)),
        C(lambda x: rtorch.linalg.norm(x, 2, 1), T(3, 4), id="vector"),
    ],
}

# ---------------------------------------------------------------- non-differentiable

_BOOL = "bool output"
_INT = "integer output"
NON_DIFFERENTIABLE: dict[str, str] = {
    **dict.fromkeys("isnan isinf isfinite isneginf isposinf signbit logical_not".split(), _BOOL),
    **dict.fromkeys("logical_and logical_or logical_xor eq ne not_equal lt less le".split(), _BOOL),
    **dict.fromkeys("less_equal gt greater ge greater_equal isclose".split(), _BOOL),
    **dict.fromkeys("bitwise_not bitwise_and bitwise_or bitwise_xor".split(), "integer/bool only"),
    **dict.fromkeys("bitwise_left_shift bitwise_right_shift".split(), "integer only"),
    **dict.fromkeys("allclose equal".split(), "returns a Python bool"),
    **dict.fromkeys("argmax argmin argsort nonzero argwhere count_nonzero".split(), _INT),
    **dict.fromkeys("searchsorted bucketize bincount".split(), _INT),
    **dict.fromkeys("all any".split(), _BOOL),
    "detach": "returns a tensor outside the graph by definition",
    "unique": "PyTorch defines no derivative (_unique2 is not differentiable)",
    "unique_consecutive": "PyTorch defines no derivative",
    "histc": "PyTorch defines no derivative (piecewise-constant counts)",
}
LINALG_NON_DIFFERENTIABLE: dict[str, str] = {
    "LinAlgError": "an exception class",
    "matrix_rank": _INT,
}

# Checks expected to fail, by case id (fnmatch patterns), for "grad"
# (gradcheck and gradgradcheck) or "gradgrad" only. Strict: a check that
# starts passing fails until its entry goes.
EXPECTED_FAILURES: list[tuple[str, str, str]] = []


def _expected_failure(case_id: str, check: str) -> str | None:
    for pattern, which, reason in EXPECTED_FAILURES:
        if fnmatch.fnmatchcase(case_id, pattern) and (which == "grad" or which == check):
            return reason
    return None


# ---------------------------------------------------------------- the checks


def _registry() -> set[str]:
    return set(_ops.__all__)


def _linalg_registry() -> set[str]:
    return set(rtorch.linalg.__all__)


def test_every_registry_op_is_classified():
    unknown = sorted(_registry() - SAMPLES.keys() - NON_DIFFERENTIABLE.keys())
    assert not unknown, f"ops with neither gradcheck samples nor a reason: {unknown}"
    both = sorted(SAMPLES.keys() & NON_DIFFERENTIABLE.keys())
    assert not both, f"ops listed as both differentiable and not: {both}"
    stale = sorted((SAMPLES.keys() | NON_DIFFERENTIABLE.keys()) - _registry())
    assert not stale, f"table entries for ops not in the registry: {stale}"
    assert all(SAMPLES[k] for k in SAMPLES), "every sampled op needs at least one case"


def test_every_linalg_op_is_classified():
    got = LINALG.keys() | LINALG_NON_DIFFERENTIABLE.keys()
    assert got == _linalg_registry(), sorted(got ^ _linalg_registry())


def _cases(check: str) -> list:
    out = []
    for prefix, table in (("", SAMPLES), ("linalg.", LINALG)):
        for name, cases in sorted(table.items()):
            for i, c in enumerate(cases):
                if check == "gradgrad" and not c.gg:
                    continue
                case_id = f"{prefix}{name}-{c.id or i}"
                reason = _expected_failure(case_id, check)
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                if check == "gradgrad" and _expected_failure(case_id, "grad"):
                    # A wrong first derivative can have a consistent second.
                    marks = [pytest.mark.skip(reason=f"first derivative pending: {reason}")]
                out.append(pytest.param(c, id=case_id, marks=marks))
    return out


def test_expected_failures_name_existing_cases():
    ids = [p.id for p in _cases("grad")]
    for pattern, _, _ in EXPECTED_FAILURES:
        assert fnmatch.filter(ids, pattern), f"{pattern} matches no case"


def _checked_inputs(case: C) -> tuple:
    inputs = case.inputs()
    out = case.fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    assert any(o.requires_grad for o in outs), "the output does not require grad"
    return inputs


@pytest.mark.parametrize("case", _cases("grad"))
def test_gradcheck(case: C):
    assert gradcheck(case.fn, _checked_inputs(case))


@pytest.mark.parametrize("case", _cases("gradgrad"))
def test_gradgradcheck(case: C):
    assert gradgradcheck(case.fn, _checked_inputs(case))
