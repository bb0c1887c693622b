"""Containers and small layers: Sequential, ModuleList/Dict, ParameterList/Dict, Flatten."""

from collections import OrderedDict

import pytest

import rtorch
from rtorch import nn


def test_sequential_indexing_slicing_and_edits():
    a, b, c = nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)
    seq = nn.Sequential(a, b, c)
    assert seq[0] is a and seq[-1] is c and len(seq) == 3
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub._modules) == ["1", "2"]
    assert list(seq) == [a, b, c]
    del seq[1]
    assert list(seq._modules) == ["0", "1"] and seq[1] is c
    seq.insert(1, b)
    assert list(seq) == [a, b, c]
    seq.append(nn.Tanh()).extend([nn.Identity()])
    assert len(seq) == 5 and isinstance(seq[4], nn.Identity)
    with pytest.raises(IndexError, match="index 7 is out of range"):
        seq[7]
    assert seq(rtorch.ones(3, 2)).shape == (3, 1)


def test_sequential_from_ordered_dict_keeps_names():
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert [n for n, _ in seq.named_children()] == ["fc", "act"]
    assert seq.fc is seq[0]


def test_module_list_append_extend_insert_and_parameters():
    layers = nn.ModuleList([nn.Linear(2, 2)])
    layers.append(nn.Linear(2, 2))
    layers.extend([nn.ReLU()])
    layers.insert(0, nn.Identity())
    assert [type(m).__name__ for m in layers] == ["Identity", "Linear", "Linear", "ReLU"]
    assert len(list(layers.parameters())) == 4
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    del layers[0]
    assert list(layers._modules) == ["0", "1", "2"]
    with pytest.raises(TypeError, match="ModuleList.extend should be called with an iterable"):
        layers.extend(nn.ReLU().__class__)


def test_module_dict_behaves_like_a_dict():
    heads = nn.ModuleDict({"a": nn.Linear(2, 1)})
    heads["b"] = nn.ReLU()
    heads.update([("c", nn.Tanh())])
    assert list(heads.keys()) == ["a", "b", "c"] and "b" in heads and len(heads) == 3
    assert isinstance(heads.pop("b"), nn.ReLU) and list(heads) == ["a", "c"]
    assert [n for n, _ in heads.named_parameters()] == ["a.weight", "a.bias"]


def test_parameter_list_wraps_tensors_and_registers_them():
    ps = nn.ParameterList([rtorch.ones(2)])
    ps.append(nn.Parameter(rtorch.zeros(3)))
    assert all(isinstance(p, nn.Parameter) for p in ps)
    assert [n for n, _ in ps.named_parameters()] == ["0", "1"]
    assert ps[-1].shape == (3,)
    with pytest.raises(RuntimeError, match="ParameterList should not be called."):
        ps(1)


def test_parameter_dict_wraps_tensors_and_registers_them():
    pd = nn.ParameterDict({"w": rtorch.ones(2)})
    pd["b"] = rtorch.zeros(1)
    assert isinstance(pd["w"], nn.Parameter) and list(pd.keys()) == ["w", "b"]
    assert [n for n, _ in pd.named_parameters()] == ["w", "b"]
    del pd["w"]
    assert list(pd) == ["b"] and "w" not in pd._parameters


def test_flatten_and_unflatten_shapes_and_repr():
    x = rtorch.ones(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Unflatten(1, (3, 20))(nn.Flatten()(x)).shape == (2, 3, 20)
    assert repr(nn.Unflatten(1, (2, 3))) == "Unflatten(dim=1, unflattened_size=(2, 3))"
    with pytest.raises(TypeError, match="unflattened_size must be tuple of ints"):
        nn.Unflatten(1, (2, 3.0))


def test_identity_returns_its_input_object():
    x = rtorch.ones(2)
    assert nn.Identity(3, k=1)(x) is x
