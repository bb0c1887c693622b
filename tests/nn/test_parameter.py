"""nn.Parameter: a Tensor subclass sharing its data's storage, requiring
grad by default, printed and deep-copied as PyTorch does."""

import copy

import numpy as np
import pytest

import rtorch
from rtorch.nn import Parameter


def test_parameter_shares_storage_and_requires_grad():
    data = rtorch.arange(3.0)
    p = Parameter(data)
    assert isinstance(p, rtorch.Tensor) and type(p) is Parameter
    assert p.requires_grad and p._is_view_of(data)
    data[0] = 5.0
    assert p[0].item() == 5.0
    assert not Parameter(data, requires_grad=False).requires_grad


def test_parameter_default_is_empty_float():
    p = Parameter()
    assert p.shape == (0,) and p.dtype == rtorch.float32


def test_parameter_of_integers_cannot_require_grad():
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        Parameter(rtorch.arange(3))
    assert not Parameter(rtorch.arange(3), requires_grad=False).requires_grad


def test_parameter_rejects_non_tensors():
    with pytest.raises(TypeError, match="must be Tensor"):
        Parameter([1.0, 2.0])


def test_parameter_repr():
    assert repr(Parameter(rtorch.tensor([1.0, 2.0]))) == (
        "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    )
    assert repr(Parameter(rtorch.tensor([1.0]), requires_grad=False)) == (
        "Parameter containing:\ntensor([1.])"
    )


def test_parameter_deepcopy_copies_data():
    p = Parameter(rtorch.tensor([1.0, 2.0]), requires_grad=False)
    q = copy.deepcopy(p)
    assert type(q) is Parameter and not q.requires_grad
    assert not q._is_view_of(p)
    np.testing.assert_array_equal(q.detach().numpy(), [1.0, 2.0])


def test_parameter_reduce_ex_names_the_rebuild_function():
    p = Parameter(rtorch.tensor([1.0]))
    fn, args = p.__reduce_ex__(2)
    assert fn is rtorch._utils._rebuild_parameter
    assert args[1] is True and len(args[2]) == 0
    p.tag = "w"
    fn, args = p.__reduce_ex__(2)
    assert fn is rtorch._utils._rebuild_parameter_with_state and args[3] == {"tag": "w"}
