"""Tensor printing must match PyTorch's ``repr`` character for character.

Expected strings come from PyTorch 2.x (several are the ones in PyTorch's own
``test_torch.py::test_print``).
"""

import math

import numpy as np
import pytest

import rtorch as torch
from rtorch import _tensor_str

inf = math.inf
nan = math.nan


@pytest.fixture(autouse=True)
def _restore_print_options():
    dtype = torch.get_default_dtype()
    yield
    torch.set_printoptions(profile="default")
    torch.set_default_dtype(dtype)


def check(t, expected: str) -> None:
    assert _tensor_str._str(t) == expected
    if isinstance(t, torch.Tensor):
        assert repr(t) == expected
        assert str(t) == expected


class _Stand:
    """A tensor with some attributes replaced: stands in for what rtorch cannot
    build here (a CUDA device, a grad_fn)."""

    def __init__(self, tensor, **overrides):
        self._tensor = tensor
        self._overrides = overrides

    def __getattr__(self, name):
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._tensor, name)


# ---------------------------------------------------------------- floats


@pytest.mark.parametrize(
    "data, expected",
    [
        ([1.0, 2.0], "tensor([1., 2.])"),
        ([-1.0, 2.0], "tensor([-1.,  2.])"),
        ([123.0], "tensor([123.])"),
        ([1.5, 2.25], "tensor([1.5000, 2.2500])"),
        ([0.1, 0.2], "tensor([0.1000, 0.2000])"),
        ([1.12345], "tensor([1.1235])"),
        ([-0.5, 0.0], "tensor([-0.5000,  0.0000])"),
        ([1.0, 1000.0], "tensor([   1., 1000.])"),
        ([0.0, 0.0], "tensor([0., 0.])"),
        ([-0.0], "tensor([-0.])"),
        ([0.0, -0.0], "tensor([0., -0.])"),
    ],
)
def test_float_fixed(data, expected):
    check(torch.tensor(data), expected)


@pytest.mark.parametrize(
    "data, expected",
    [
        ([1e-5, 1e3], "tensor([1.0000e-05, 1.0000e+03])"),
        ([1e28, 1e-28], "tensor([1.0000e+28, 1.0000e-28])"),
        ([1e28, -1e-28], "tensor([ 1.0000e+28, -1.0000e-28])"),
        ([0.00002], "tensor([2.0000e-05])"),
        ([123456789.0], "tensor([1.2346e+08])"),
        ([0.01, 11.0], "tensor([1.0000e-02, 1.1000e+01])"),
        ([1.0, 1010.0], "tensor([1.0000e+00, 1.0100e+03])"),
        ([1e10], "tensor([1.0000e+10])"),
    ],
)
def test_float_scientific_switch(data, expected):
    check(torch.tensor(data), expected)


@pytest.mark.parametrize(
    "data, expected",
    [
        (
            [4, inf, 1.5, -inf, 0, nan, 1],
            "tensor([4.0000,    inf, 1.5000,   -inf, 0.0000,    nan, 1.0000])",
        ),
        ([1.0, nan], "tensor([1., nan])"),
        ([nan, nan], "tensor([nan, nan])"),
        ([inf, -inf], "tensor([inf, -inf])"),
        ([1.0, inf, -2.0], "tensor([ 1., inf, -2.])"),
        ([1e-5, inf], "tensor([1.0000e-05,        inf])"),
    ],
)
def test_float_nonfinite(data, expected):
    check(torch.tensor(data), expected)


def test_float64_denormals_and_default_dtype():
    x = torch.tensor([1e-324, 1e-323, 1e-322, 1e307, 1e308, 1e309], dtype=torch.float64)
    check(
        x,
        "tensor([ 0.0000e+00, 9.8813e-324, 9.8813e-323, 1.0000e+307, 1.0000e+308,\n"
        "                inf], dtype=torch.float64)",
    )
    torch.set_default_dtype(torch.float64)
    check(
        x,
        "tensor([ 0.0000e+00, 9.8813e-324, 9.8813e-323, 1.0000e+307, 1.0000e+308,\n"
        "                inf])",
    )


def test_half_precision_dtypes():
    check(torch.tensor([1.0, 2.0], dtype=torch.float16), "tensor([1., 2.], dtype=torch.float16)")
    check(
        torch.tensor([1.5, 2.0], dtype=torch.float16),
        "tensor([1.5000, 2.0000], dtype=torch.float16)",
    )
    check(torch.tensor([65504.0], dtype=torch.float16), "tensor([65504.], dtype=torch.float16)")
    check(torch.tensor([1.0, 2.0], dtype=torch.bfloat16), "tensor([1., 2.], dtype=torch.bfloat16)")
    # bfloat16 holds 0.1 as 0.10009765625
    check(torch.tensor([0.1], dtype=torch.bfloat16), "tensor([0.1001], dtype=torch.bfloat16)")
    check(torch.tensor(0.5, dtype=torch.bfloat16), "tensor(0.5000, dtype=torch.bfloat16)")


# ---------------------------------------------------------------- ints, bools


@pytest.mark.parametrize(
    "data, expected",
    [
        ([1, 2], "tensor([1, 2])"),
        ([1, -2], "tensor([ 1, -2])"),
        ([1, 1010], "tensor([   1, 1010])"),
        ([1000000000], "tensor([1000000000])"),
        ([True], "tensor([True])"),
        ([True, False], "tensor([ True, False])"),
    ],
)
def test_int_and_bool(data, expected):
    check(torch.tensor(data), expected)


@pytest.mark.parametrize(
    "dtype, name",
    [
        (torch.int32, "torch.int32"),
        (torch.int16, "torch.int16"),
        (torch.int8, "torch.int8"),
        (torch.uint8, "torch.uint8"),
    ],
)
def test_int_dtype_suffix(dtype, name):
    check(torch.tensor([1, 2], dtype=dtype), f"tensor([1, 2], dtype={name})")


def test_float64_dtype_suffix():
    check(torch.tensor([1.0, 2.0], dtype=torch.float64), "tensor([1., 2.], dtype=torch.float64)")


def test_default_dtype_decides_suffix():
    torch.set_default_dtype(torch.float64)
    check(torch.tensor([1.0, 2.0]), "tensor([1., 2.])")
    check(torch.tensor([1.0, 2.0], dtype=torch.float32), "tensor([1., 2.], dtype=torch.float32)")
    check(torch.tensor([], dtype=torch.float32), "tensor([], dtype=torch.float32)")
    check(torch.tensor([1, 2]), "tensor([1, 2])")


# ---------------------------------------------------------------- 0-d


@pytest.mark.parametrize(
    "value, kwargs, expected",
    [
        (3.0, {}, "tensor(3.)"),
        (-0.5, {}, "tensor(-0.5000)"),
        (0.00002, {}, "tensor(2.0000e-05)"),
        (3, {}, "tensor(3)"),
        (2341234123412341, {}, "tensor(2341234123412341)"),
        (True, {}, "tensor(True)"),
        (False, {}, "tensor(False)"),
        (nan, {}, "tensor(nan)"),
        (-inf, {}, "tensor(-inf)"),
        (2.5, {"dtype": torch.float64}, "tensor(2.5000, dtype=torch.float64)"),
        (7, {"dtype": torch.int32}, "tensor(7, dtype=torch.int32)"),
        (1.0, {"requires_grad": True}, "tensor(1., requires_grad=True)"),
    ],
)
def test_zero_dim(value, kwargs, expected):
    check(torch.tensor(value, **kwargs), expected)


# ---------------------------------------------------------------- empty


def test_empty():
    check(torch.tensor([]), "tensor([])")
    check(torch.zeros(0, 3), "tensor([], size=(0, 3))")
    check(torch.zeros(2, 0), "tensor([], size=(2, 0))")
    check(torch.zeros(2, 0, 4), "tensor([], size=(2, 0, 4))")
    check(torch.tensor([], dtype=torch.int64), "tensor([], dtype=torch.int64)")
    check(torch.tensor([], dtype=torch.float64), "tensor([], dtype=torch.float64)")
    check(torch.tensor([], dtype=torch.bool), "tensor([], dtype=torch.bool)")
    check(
        torch.zeros(0, 2, dtype=torch.int32),
        "tensor([], size=(0, 2), dtype=torch.int32)",
    )
    check(torch.tensor([], requires_grad=True), "tensor([], requires_grad=True)")


# ---------------------------------------------------------------- layout


def test_matrix():
    check(torch.arange(6).reshape(2, 3), "tensor([[0, 1, 2],\n        [3, 4, 5]])")
    check(
        torch.tensor([[1.5, -2.0], [3.0, 4.0]]),
        "tensor([[ 1.5000, -2.0000],\n        [ 3.0000,  4.0000]])",
    )


def test_three_and_four_dims():
    check(
        torch.arange(12.0).reshape(2, 3, 2),
        "tensor([[[ 0.,  1.],\n"
        "         [ 2.,  3.],\n"
        "         [ 4.,  5.]],\n"
        "\n"
        "        [[ 6.,  7.],\n"
        "         [ 8.,  9.],\n"
        "         [10., 11.]]])",
    )
    check(
        torch.ones(2, 1, 1, 2),
        "tensor([[[[1., 1.]]],\n\n\n        [[[1., 1.]]]])",
    )


def test_non_contiguous():
    check(torch.arange(6).reshape(2, 3).t(), "tensor([[0, 3],\n        [1, 4],\n        [2, 5]])")
    check(torch.arange(10)[2:5], "tensor([2, 3, 4])")


def test_line_wrapping():
    check(
        torch.arange(30.0),
        "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
        "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n"
        "        28., 29.])",
    )
    # An all-zero tensor keeps width 1 (no nonzero value to measure), so
    # PyTorch fits 24 "0." per line, beyond 80 characters.
    check(
        torch.zeros(30),
        "tensor([" + ", ".join(["0."] * 24) + ",\n        " + ", ".join(["0."] * 6) + "])",
    )
    check(
        torch.tensor(
            [0.5384, -0.8420, -0.1448, 0.2721, 0.3003, -0.4729, 0.3933, 0.1405, -0.1999, 0.8268]
        ),
        "tensor([ 0.5384, -0.8420, -0.1448,  0.2721,  0.3003, -0.4729,  0.3933,  0.1405,\n"
        "        -0.1999,  0.8268])",
    )


def test_line_wrapping_nested():
    check(
        torch.arange(40.0).reshape(2, 20),
        "tensor([[ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
        "         14., 15., 16., 17., 18., 19.],\n"
        "        [20., 21., 22., 23., 24., 25., 26., 27., 28., 29., 30., 31., 32., 33.,\n"
        "         34., 35., 36., 37., 38., 39.]])",
    )


# ---------------------------------------------------------------- summarisation


def test_summarise_vector():
    check(torch.arange(2000), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])")
    check(torch.zeros(10000), "tensor([0., 0., 0.,  ..., 0., 0., 0.])")
    # exactly at the threshold: printed in full
    full = repr(torch.arange(1000))
    assert "..." not in full and full.endswith(" 999])")


def test_summarise_width_ignores_hidden_values():
    x = torch.tensor([0.5] * 1000 + [1e10] + [0.5] * 999)
    check(x, "tensor([0.5000, 0.5000, 0.5000,  ..., 0.5000, 0.5000, 0.5000])")


def test_summarise_matrix():
    check(
        torch.zeros(100, 100),
        "tensor([[0., 0., 0.,  ..., 0., 0., 0.],\n"
        "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
        "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
        "        ...,\n"
        "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
        "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
        "        [0., 0., 0.,  ..., 0., 0., 0.]])",
    )
    check(
        torch.arange(2000).reshape(200, 10),
        "tensor([[   0,    1,    2,  ...,    7,    8,    9],\n"
        "        [  10,   11,   12,  ...,   17,   18,   19],\n"
        "        [  20,   21,   22,  ...,   27,   28,   29],\n"
        "        ...,\n"
        "        [1970, 1971, 1972,  ..., 1977, 1978, 1979],\n"
        "        [1980, 1981, 1982,  ..., 1987, 1988, 1989],\n"
        "        [1990, 1991, 1992,  ..., 1997, 1998, 1999]])",
    )
    check(
        torch.arange(3000).reshape(1000, 3),
        "tensor([[   0,    1,    2],\n"
        "        [   3,    4,    5],\n"
        "        [   6,    7,    8],\n"
        "        ...,\n"
        "        [2991, 2992, 2993],\n"
        "        [2994, 2995, 2996],\n"
        "        [2997, 2998, 2999]])",
    )


def test_summarise_non_contiguous_3d():
    # PyTorch's test_print case: a strided view with more than 1000 elements.
    y = torch.ones(100, 2, 2, 10)[:, 0]
    block = "[[1., 1., 1.,  ..., 1., 1., 1.],\n         [1., 1., 1.,  ..., 1., 1., 1.]]"
    expected = "tensor([" + ",\n\n        ".join([block] * 3 + ["..."] + [block] * 3) + "])"
    check(y, expected)


# ---------------------------------------------------------------- print options


def test_precision():
    torch.set_printoptions(precision=2)
    check(torch.tensor([1.12345]), "tensor([1.12])")
    check(torch.tensor([1e-5]), "tensor([1.00e-05])")
    check(torch.tensor([1.0, 2.0]), "tensor([1., 2.])")
    torch.set_printoptions(precision=6)
    check(torch.tensor([1.0 / 3.0]), "tensor([0.333333])")


def test_threshold_and_edgeitems():
    torch.set_printoptions(threshold=5)
    check(torch.arange(10), "tensor([0, 1, 2,  ..., 7, 8, 9])")
    torch.set_printoptions(threshold=5, edgeitems=1)
    check(torch.arange(10), "tensor([0,  ..., 9])")
    check(
        torch.arange(16).reshape(4, 4),
        "tensor([[ 0,  ...,  3],\n        ...,\n        [12,  ..., 15]])",
    )


def test_edgeitems_zero_shows_size():
    torch.set_printoptions(threshold=5, edgeitems=0)
    check(torch.arange(10), "tensor([...], size=(10,))")
    check(torch.zeros(4, 4), "tensor([...], size=(4, 4))")
    # below the threshold the values print, but the size is still shown
    check(torch.tensor([1, 2]), "tensor([1, 2], size=(2,))")
    torch.set_printoptions(threshold=0, edgeitems=0)
    check(torch.tensor(0.5), "tensor(0.5000, size=())")


def test_linewidth():
    torch.set_printoptions(linewidth=20)
    check(torch.arange(10), "tensor([0, 1, 2, 3,\n        4, 5, 6, 7,\n        8, 9])")


def test_profile_short():
    torch.set_printoptions(profile="short")
    check(torch.tensor([1.12345]), "tensor([1.12])")
    check(torch.arange(2000), "tensor([   0,    1,  ..., 1998, 1999])")


def test_profile_full():
    torch.set_printoptions(profile="full")
    assert torch.get_printoptions()["threshold"] == inf
    s = repr(torch.arange(2000))
    assert "..." not in s
    lines = s.split("\n")
    # width 4, so (80 - 7) // (4 + 2) = 12 per line
    assert len(lines) == 167
    assert lines[0] == "tensor([" + ", ".join(f"{i:4d}" for i in range(12)) + ","
    assert lines[-1] == "        1992, 1993, 1994, 1995, 1996, 1997, 1998, 1999])"
    torch.set_printoptions(profile="default")
    check(torch.arange(2000), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])")


def test_sci_mode_forced():
    x = torch.tensor([1e2, 1e-2])
    check(x, "tensor([1.0000e+02, 1.0000e-02])")
    torch.set_printoptions(sci_mode=True)
    check(x, "tensor([1.0000e+02, 1.0000e-02])")
    check(torch.tensor([1.0, 2.0]), "tensor([1.0000e+00, 2.0000e+00])")
    check(torch.tensor([1.5, -2.0]), "tensor([ 1.5000e+00, -2.0000e+00])")
    # nothing nonzero and finite: PyTorch never reaches the sci_mode switch
    check(torch.tensor([0.0, 0.0]), "tensor([0., 0.])")
    # ints never use scientific notation
    check(torch.tensor([1, 2]), "tensor([1, 2])")
    torch.set_printoptions(sci_mode=False)
    check(x, "tensor([100.0000,   0.0100])")
    check(torch.tensor([1e-5, 1e3]), "tensor([   0.0000, 1000.0000])")
    check(torch.tensor([1e10]), "tensor([10000000000.])")
    torch.set_printoptions(sci_mode=None)
    check(x, "tensor([1.0000e+02, 1.0000e-02])")


def test_set_printoptions_resets_sci_mode():
    torch.set_printoptions(sci_mode=False)
    torch.set_printoptions(precision=4)
    assert torch.get_printoptions()["sci_mode"] is None


def test_get_printoptions():
    assert torch.get_printoptions() == {
        "precision": 4,
        "threshold": 1000,
        "edgeitems": 3,
        "linewidth": 80,
        "sci_mode": None,
    }
    torch.set_printoptions(precision=2, threshold=10, edgeitems=1, linewidth=40, sci_mode=True)
    assert torch.get_printoptions() == {
        "precision": 2,
        "threshold": 10,
        "edgeitems": 1,
        "linewidth": 40,
        "sci_mode": True,
    }
    torch.set_printoptions(profile="short")
    assert torch.get_printoptions()["precision"] == 2
    assert torch.get_printoptions()["edgeitems"] == 2
    assert _tensor_str.PRINT_OPTS.precision == 2


def test_printoptions_context_manager():
    with torch.printoptions(precision=2, sci_mode=False):
        check(torch.tensor([1.12345]), "tensor([1.12])")
        assert torch.get_printoptions()["sci_mode"] is False
    check(torch.tensor([1.12345]), "tensor([1.1235])")
    assert torch.get_printoptions()["sci_mode"] is None
    with pytest.raises(KeyError), torch.printoptions(threshold=3):
        assert torch.get_printoptions()["threshold"] == 3
        raise KeyError
    assert torch.get_printoptions()["threshold"] == 1000


# ---------------------------------------------------------------- suffixes


def test_requires_grad_suffix():
    check(torch.tensor([123.0], requires_grad=True), "tensor([123.], requires_grad=True)")
    check(
        torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True),
        "tensor([1., 2.], dtype=torch.float64, requires_grad=True)",
    )


def test_suffix_wraps_past_linewidth():
    check(
        torch.arange(14.0, dtype=torch.float64),
        "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.],\n"
        "       dtype=torch.float64)",
    )
    check(
        torch.arange(14.0, dtype=torch.float64, requires_grad=True),
        "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.],\n"
        "       dtype=torch.float64, requires_grad=True)",
    )


def test_grad_fn_suffix():
    class MulBackward0:
        pass

    class Node:
        def name(self):
            return "torch::autograd::AddBackward0"

    t = torch.tensor([2.0, 4.0])
    check(
        _Stand(t, grad_fn=MulBackward0(), requires_grad=True),
        "tensor([2., 4.], grad_fn=<MulBackward0>)",
    )
    check(_Stand(t, grad_fn=Node(), requires_grad=True), "tensor([2., 4.], grad_fn=<AddBackward0>)")


def test_grad_fn_from_autograd():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    if y.grad_fn is None:
        pytest.skip("autograd does not record grad_fn yet")
    check(y, "tensor([2., 4.], grad_fn=<MulBackward0>)")


def test_device_suffix():
    t = torch.tensor([1, 2])
    check(_Stand(t, device=torch.device("cuda:0")), "tensor([1, 2], device='cuda:0')")
    check(
        _Stand(torch.tensor([1.0, 2.0], dtype=torch.float64), device=torch.device("cuda:1")),
        "tensor([1., 2.], device='cuda:1', dtype=torch.float64)",
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensor():
    check(torch.tensor([123], device="cuda:0"), "tensor([123], device='cuda:0')")
    check(
        torch.arange(2000, device="cuda:0"),
        "tensor([   0,    1,    2,  ..., 1997, 1998, 1999], device='cuda:0')",
    )
    check(
        torch.tensor([0.1], dtype=torch.bfloat16, device="cuda:0"),
        "tensor([0.1001], device='cuda:0', dtype=torch.bfloat16)",
    )


def test_tensor_contents_replaces_values():
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    assert _tensor_str._str(t, tensor_contents="[...]") == "tensor([...], requires_grad=True)"


# ---------------------------------------------------------------- formatter width


@pytest.mark.parametrize("sci_mode", [None, True, False])
def test_formatter_width_is_the_widest_value(sci_mode):
    """The formatter measures only the extreme values; check it against
    measuring every value, as PyTorch does."""
    torch.set_printoptions(sci_mode=sci_mode)
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 12))
        values = rng.standard_normal(n) * 10.0 ** rng.integers(-120, 120, n)
        values[rng.random(n) < 0.2] = 0.0
        if rng.random() < 0.3:
            values = np.round(values)
        fmt = _tensor_str._Formatter(values, floating=True)
        nonzero = [v for v in values.tolist() if v != 0 and math.isfinite(v)]
        p = _tensor_str.PRINT_OPTS.precision
        if not nonzero:
            expected = 1
        elif fmt.sci_mode:
            expected = max(len(f"{v:.{p}e}") for v in nonzero)
        elif fmt.int_mode:
            expected = max(len(f"{v:.0f}") + 1 for v in nonzero)
        else:
            expected = max(len(f"{v:.{p}f}") for v in nonzero)
        assert fmt.width() == max(1, expected), values


def test_exports():
    assert torch.set_printoptions is _tensor_str.set_printoptions
    assert torch.get_printoptions is _tensor_str.get_printoptions
    assert torch.printoptions is _tensor_str.printoptions
