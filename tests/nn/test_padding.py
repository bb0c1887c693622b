"""F.pad and the padding modules against numpy.pad; PyTorch's errors and reprs."""

import numpy as np
import pytest

import rtorch
import rtorch.nn.functional as F
from rtorch import nn
from rtorch.autograd import gradcheck

RNG = np.random.default_rng(3)


def t(a, **kw):
    return rtorch.tensor(np.asarray(a), **kw)


def close(x, ref):
    np.testing.assert_array_equal(x.detach().numpy(), ref)


NP_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def np_pad(x, pad, mode, value=0.0):
    """``pad`` in PyTorch's order (last dim first); negative amounts crop."""
    n = len(pad) // 2
    widths = [(0, 0)] * (x.ndim - n)
    for i in reversed(range(n)):
        widths.append((pad[2 * i], pad[2 * i + 1]))
    crop = tuple(slice(max(-a, 0), x.shape[d] - max(-b, 0)) for d, (a, b) in enumerate(widths))
    x = x[crop]
    pos = [(max(a, 0), max(b, 0)) for a, b in widths]
    if mode == "constant":
        return np.pad(x, pos, constant_values=value)
    return np.pad(x, pos, mode=NP_MODE[mode])


CASES = [
    (1, (2, 3), (2, 1)),
    (1, (2, 3, 5), (2, 4)),
    (2, (2, 3, 4), (1, 2, 2, 0)),
    (2, (2, 2, 4, 5), (3, 3, 2, 1)),
    (3, (2, 3, 4, 5), (1, 2, 0, 3, 2, 1)),
    (3, (1, 2, 3, 4, 5), (2, 2, 1, 1, 1, 2)),
]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("case", CASES)
def test_pad_modes_match_numpy(mode, case):
    _, shape, pad = case
    x = RNG.standard_normal(shape)
    close(F.pad(t(x), pad, mode), np_pad(x, pad, mode))


def test_constant_pad_value_any_dims_and_negative():
    x = RNG.standard_normal((2, 3, 4, 5))
    close(
        F.pad(t(x), (1, 1, 0, 2, 1, 0, 2, 1), value=2.5),
        np_pad(x, (1, 1, 0, 2, 1, 0, 2, 1), "constant", 2.5),
    )
    close(F.pad(t(x), (-1, 2, -2, -1)), np_pad(x, (-1, 2, -2, -1), "constant"))
    close(F.pad(t(x), (-5, 0)), np.zeros((2, 3, 4, 0)))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_negative_padding_non_constant(mode):
    x = RNG.standard_normal((1, 2, 6))
    # crop the left, pad the right (circular wraps over the cropped signal)
    close(F.pad(t(x), (-2, 1), mode), np_pad(x, (-2, 1), mode))
    close(F.pad(t(x), (2, -1), mode), np_pad(x, (2, -1), mode))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_gradcheck(mode):
    x = t(RNG.standard_normal((1, 2, 3, 4)), requires_grad=True)
    assert gradcheck(lambda a: F.pad(a, (2, 1, 1, 2), mode), (x,))


def test_pad_errors():
    x = t(RNG.standard_normal((1, 2, 3)))
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        F.pad(x, (1, 1, 1))
    with pytest.raises(RuntimeError, match="Padding length should be less than or equal to two"):
        F.pad(x, (1,) * 8)
    with pytest.raises(
        RuntimeError,
        match=r"Argument #4: Padding size should be less than the corresponding input "
        r"dimension, but got: padding \(3, 0\) at dimension 2 of input \[1, 2, 3\]",
    ):
        F.pad(x, (3, 0), "reflect")
    with pytest.raises(RuntimeError, match=r"Argument #6: .* at dimension 1 of input \[1, 2, 3\]"):
        F.pad(x, (0, 0, 2, 0), "reflect")
    with pytest.raises(RuntimeError, match="Padding value causes wrapping around more than once"):
        F.pad(x, (4, 0), "circular")
    with pytest.raises(RuntimeError, match='Padding mode "reflect" doesn\'t take in value'):
        F.pad(x, (1, 1), "reflect", value=1.0)
    with pytest.raises(NotImplementedError, match="Unrecognised padding mode wrap"):
        F.pad(x, (1, 1), "wrap")
    with pytest.raises(NotImplementedError, match="Padding size 2 is not supported for 1D input"):
        F.pad(t(np.zeros(4)), (1, 1), "replicate")
    with pytest.raises(NotImplementedError, match="Padding size 2 is not supported for 4D input"):
        F.pad(t(np.zeros((1, 1, 2, 3))), (1, 1), "reflect")
    with pytest.raises(RuntimeError, match=r"input \(W: 3\) is too small. Calculated output W: 0"):
        F.pad(x, (-2, -1), "replicate")
    with pytest.raises(RuntimeError, match="narrow\\(\\): length must be non-negative."):
        F.pad(x, (-4, 0))


MODULES = [
    (nn.ZeroPad1d, "constant", 1, 2, "ZeroPad1d((2, 2))"),
    (nn.ZeroPad2d, "constant", 2, (1, 0, 2, 1), "ZeroPad2d((1, 0, 2, 1))"),
    (nn.ZeroPad3d, "constant", 3, 1, "ZeroPad3d((1, 1, 1, 1, 1, 1))"),
    (nn.ReflectionPad1d, "reflect", 1, (2, 1), "ReflectionPad1d((2, 1))"),
    (nn.ReflectionPad2d, "reflect", 2, 1, "ReflectionPad2d((1, 1, 1, 1))"),
    (nn.ReflectionPad3d, "reflect", 3, 1, "ReflectionPad3d((1, 1, 1, 1, 1, 1))"),
    (nn.ReplicationPad1d, "replicate", 1, 3, "ReplicationPad1d((3, 3))"),
    (nn.ReplicationPad2d, "replicate", 2, (0, 1, 2, 3), "ReplicationPad2d((0, 1, 2, 3))"),
    (nn.ReplicationPad3d, "replicate", 3, 2, "ReplicationPad3d((2, 2, 2, 2, 2, 2))"),
    (nn.CircularPad1d, "circular", 1, 2, "CircularPad1d((2, 2))"),
    (nn.CircularPad2d, "circular", 2, (1, 0, 0, 2), "CircularPad2d((1, 0, 0, 2))"),
    (nn.CircularPad3d, "circular", 3, 1, "CircularPad3d((1, 1, 1, 1, 1, 1))"),
]


@pytest.mark.parametrize("cls, mode, nd, padding, text", MODULES)
def test_padding_modules(cls, mode, nd, padding, text):
    m = cls(padding)
    assert repr(m) == text
    pad = m.padding
    assert len(pad) == 2 * nd
    for batched in (False, True):
        shape = (2, 3, 4, 5)[: nd + 1]
        x = RNG.standard_normal(((2,) if batched else ()) + shape)
        close(m(t(x)), np_pad(x, pad, mode))


def test_constant_pad_modules():
    m = nn.ConstantPad2d((1, 2, 0, 1), 3.5)
    assert repr(m) == "ConstantPad2d(padding=(1, 2, 0, 1), value=3.5)"
    x = RNG.standard_normal((2, 3, 4))
    close(m(t(x)), np_pad(x, (1, 2, 0, 1), "constant", 3.5))
    assert repr(nn.ConstantPad1d(2, -1)) == "ConstantPad1d(padding=(2, 2), value=-1)"
    assert nn.ConstantPad3d(1, 0.0).padding == (1,) * 6
    close(nn.ConstantPad1d((-1, 1), 7.0)(t(x)), np_pad(x, (-1, 1), "constant", 7.0))


def test_circular_pad_input_dims():
    with pytest.raises(ValueError, match=r"expected 3D or 4D input \(got 2D input\)"):
        nn.CircularPad2d(1)(rtorch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 1D input\)"):
        nn.CircularPad1d(1)(rtorch.zeros(2))


@pytest.mark.parametrize(
    "name",
    [
        "rtorch.nn.modules.padding",
        "rtorch.nn.modules.pixelshuffle",
        "rtorch.nn.modules.channelshuffle",
        "rtorch.nn.modules.upsampling",
        "rtorch.nn.modules.transformer",
    ],
)
def test_docstring_examples_run(name):
    import doctest
    import importlib

    module = importlib.import_module(name)
    rtorch.manual_seed(0)
    result = doctest.testmod(module, extraglobs={"rtorch": rtorch, **vars(module)})
    assert result.failed == 0 and result.attempted > 0
