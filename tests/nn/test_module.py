"""Module API: attribute routing, traversal, state_dict, modes, conversions, hooks, repr."""

import doctest
import importlib
from collections import OrderedDict

import numpy as np
import pytest

import rtorch
from rtorch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)
        self.scale = nn.Parameter(rtorch.ones(1))
        self.register_buffer("step", rtorch.zeros(1))
        self.register_buffer("cache", rtorch.zeros(2), persistent=False)

    def forward(self, x):
        return self.bn(self.fc(x)) * self.scale


def test_assigning_parameter_module_and_buffer_routes_them_to_registries():
    net = Net()
    assert list(net._parameters) == ["scale"]
    assert list(net._modules) == ["fc", "bn"]
    assert list(net._buffers) == ["step", "cache"]
    assert "fc" not in net.__dict__ and "scale" not in net.__dict__
    assert net.fc is net._modules["fc"]


def test_reassigning_a_name_moves_it_between_registries():
    net = Net()
    net.fc = nn.Parameter(rtorch.zeros(2))
    assert "fc" in net._parameters and "fc" not in net._modules
    net.step = rtorch.ones(1)
    assert net._buffers["step"].item() == 1.0


def test_wrong_types_for_registered_names_raise_pytorch_errors():
    net = Net()
    with pytest.raises(TypeError, match=r"cannot assign 'torch.FloatTensor' as parameter 'scale'"):
        net.scale = rtorch.ones(1)
    with pytest.raises(TypeError, match=r"cannot assign 'int' as child module 'fc'"):
        net.fc = 3
    with pytest.raises(TypeError, match=r"cannot assign 'str' as buffer 'step'"):
        net.step = "x"
    with pytest.raises(KeyError, match="attribute 'forward' already exists"):
        net.register_buffer("forward", rtorch.zeros(1))
    with pytest.raises(KeyError) as info:
        net.register_buffer("a.b", rtorch.zeros(1))
    assert info.value.args[0] == 'buffer name can\'t contain "."'
    with pytest.raises(TypeError, match="cannot assign 'torch.FloatTensor' object to parameter"):
        net.register_parameter("p", rtorch.zeros(1))
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'missing'"):
        _ = net.missing


def test_assignment_before_init_raises():
    class Early(nn.Module):
        def __init__(self):
            self.p = nn.Parameter(rtorch.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_delattr_removes_from_registry():
    net = Net()
    del net.fc
    del net.step
    del net.scale
    assert "fc" not in net._modules and "step" not in net._buffers
    assert "scale" not in net._parameters


def test_named_parameters_buffers_and_modules_use_dotted_names():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "scale",
        "fc.weight",
        "fc.bias",
        "bn.weight",
        "bn.bias",
    ]
    assert [n for n, _ in net.named_parameters(prefix="m", recurse=False)] == ["m.scale"]
    assert [n for n, _ in net.named_buffers()] == [
        "step",
        "cache",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    ]
    assert [n for n, _ in net.named_modules()] == ["", "fc", "bn"]
    assert [n for n, _ in net.named_children()] == ["fc", "bn"]
    assert len(list(net.modules())) == 3


def test_shared_module_and_parameter_are_listed_once_unless_duplicates_asked():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, shared)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.children())) == 1
    names = [n for n, _ in seq.named_parameters(remove_duplicate=False)]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert [n for n, _ in seq.named_modules(remove_duplicate=False)] == ["", "0", "1"]


def test_state_dict_keys_metadata_and_detach():
    net = Net()
    sd = net.state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd) == [
        "scale",
        "step",
        "fc.weight",
        "fc.bias",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    ]
    assert sd._metadata == OrderedDict(
        [("", {"version": 1}), ("fc", {"version": 1}), ("bn", {"version": 2})]
    )
    assert not sd["fc.weight"].requires_grad
    assert sd["fc.weight"].data_ptr() == net.fc.weight.data_ptr()
    kept = net.state_dict(keep_vars=True)
    assert kept["fc.weight"] is net.fc.weight
    assert list(net.fc.state_dict(prefix="head.")) == ["head.weight", "head.bias"]


def test_load_state_dict_copies_and_reports_all_keys_matched():
    a, b = Net(), Net()
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    np.testing.assert_array_equal(b.fc.weight.detach().numpy(), a.fc.weight.detach().numpy())
    assert b.fc.weight is not a.fc.weight


def test_load_state_dict_strict_errors_use_pytorch_wording():
    net = nn.Linear(4, 3)
    bad = {"weight": rtorch.zeros(2, 4), "bias": rtorch.zeros(3), "extra": rtorch.zeros(1)}
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(bad)
    assert str(info.value) == (
        "Error(s) in loading state_dict for Linear:\n"
        '\tUnexpected key(s) in state_dict: "extra". \n'
        "\tsize mismatch for weight: copying a param with shape torch.Size([2, 4]) from "
        "checkpoint, the shape in current model is torch.Size([3, 4])."
    )
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "bias". '):
        net.load_state_dict({"weight": rtorch.zeros(3, 4)})


def test_load_state_dict_non_strict_returns_incompatible_keys():
    net = nn.Linear(4, 3)
    result = net.load_state_dict({"weight": rtorch.ones(3, 4), "zzz": rtorch.ones(1)}, strict=False)
    assert result.missing_keys == ["bias"]
    assert result.unexpected_keys == ["zzz"]
    assert net.weight.sum().item() == 12.0


def test_load_state_dict_assign_keeps_requires_grad_and_takes_the_tensor():
    net = nn.Linear(2, 2)
    w = rtorch.full((2, 2), 3.0)
    net.load_state_dict({"weight": w, "bias": rtorch.zeros(2)}, assign=True)
    assert isinstance(net.weight, nn.Parameter) and net.weight.requires_grad
    assert net.weight.data_ptr() == w.data_ptr()


def test_load_state_dict_rejects_non_mappings():
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        nn.Linear(2, 2).load_state_dict([1, 2])


def test_torch_checkpoint_loads_into_matching_children_non_strictly():
    class Cnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(144, 3)

    sd = rtorch.load("/work/shared/fixtures/torch_state_dict.pt")
    model = Cnn()
    result = model.load_state_dict(sd, strict=False)
    assert result.missing_keys == []
    assert sorted(result.unexpected_keys) == ["conv.bias", "conv.weight"]
    np.testing.assert_array_equal(model.fc.weight.detach().numpy(), sd["fc.weight"].numpy())
    np.testing.assert_array_equal(model.bn.running_var.numpy(), sd["bn.running_var"].numpy())
    assert model.bn.num_batches_tracked.item() == sd["bn.num_batches_tracked"].item()
    with pytest.raises(
        RuntimeError, match='Unexpected key\\(s\\) in state_dict: "conv.weight", "conv.bias"'
    ):
        Cnn().load_state_dict(sd)


def test_train_eval_propagate_and_validate():
    net = Net()
    assert net.training and net.bn.training
    assert net.eval() is net
    assert not net.bn.training
    net.train()
    assert net.fc.training
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        net.train("yes")


def test_requires_grad_and_zero_grad():
    net = Net()
    net(rtorch.randn(4, 3)).sum().backward()
    assert net.fc.weight.grad is not None
    net.zero_grad(set_to_none=False)
    assert net.fc.weight.grad.abs().sum().item() == 0.0
    net.zero_grad()
    assert net.fc.weight.grad is None
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_to_double_keeps_parameter_identity_and_integer_buffers():
    net = Net()
    weight = net.fc.weight
    net.to(rtorch.float64)
    assert net.fc.weight is weight and weight.dtype == rtorch.float64
    assert net.bn.running_mean.dtype == rtorch.float64
    assert net.bn.num_batches_tracked.dtype == rtorch.int64
    net.float()
    assert weight.dtype == rtorch.float32
    net.half()
    assert weight.dtype == rtorch.float16
    net.double().cpu()
    assert weight.dtype == rtorch.float64 and weight.requires_grad
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point"):
        net.to(rtorch.int32)


def test_to_cuda_raises_as_rtorch_does():
    with pytest.raises(RuntimeError, match="CUDA"):
        nn.Linear(2, 2).to("cuda")


def test_apply_visits_children_then_self():
    order = []
    nn.Sequential(nn.Linear(1, 1), nn.ReLU()).apply(lambda m: order.append(type(m).__name__))
    assert order == ["Linear", "ReLU", "Sequential"]


def test_get_submodule_and_parameter():
    net = nn.Sequential(OrderedDict(block=nn.Sequential(nn.Linear(2, 2))))
    assert net.get_submodule("block.0") is net.block[0]
    assert net.get_parameter("block.0.bias") is net.block[0].bias
    with pytest.raises(AttributeError, match="Sequential has no attribute `nope`"):
        net.get_submodule("block.nope")
    with pytest.raises(AttributeError, match="`running_mean` is not an nn.Parameter"):
        nn.BatchNorm1d(2, affine=False).get_parameter("running_mean")


def test_forward_pre_hook_replaces_args_and_removes():
    lin = nn.Linear(2, 2)
    handle = lin.register_forward_pre_hook(lambda m, args: rtorch.zeros(1, 2))
    out = lin(rtorch.ones(1, 2))
    np.testing.assert_allclose(out.detach().numpy(), lin.bias.detach().numpy()[None])
    handle.remove()
    assert not lin._forward_pre_hooks


def test_forward_hooks_with_kwargs_order_and_output_replacement():
    class Add(nn.Module):
        def forward(self, x, y=0):
            return x + y

    m = Add()
    calls = []
    m.register_forward_hook(lambda mod, args, out: calls.append("second"))
    m.register_forward_hook(lambda mod, args, out: calls.append("first"), prepend=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: out * 10, with_kwargs=True)
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"y": 2}), with_kwargs=True)
    assert m(rtorch.tensor(1.0), y=5).item() == 30.0
    assert calls == ["first", "second"]


def test_forward_pre_hook_with_kwargs_must_return_pair():
    m = nn.Identity()
    m.register_forward_pre_hook(lambda mod, args, kwargs: 1, with_kwargs=True)
    with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple"):
        m(rtorch.ones(1))


def test_always_call_hook_runs_when_forward_raises():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    m, seen = Boom(), []
    m.register_forward_hook(lambda mod, args, out: seen.append(out), always_call=True)
    m.register_forward_hook(lambda mod, args, out: seen.append("never"))
    with pytest.raises(ValueError, match="boom"):
        m(rtorch.ones(1))
    assert seen == [None]


def test_full_backward_hook_sees_input_and_output_grads_and_can_replace():
    lin = nn.Linear(3, 2)
    seen = []
    lin.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))
    x = rtorch.randn(4, 3, requires_grad=True)
    lin(x).sum().backward()
    (grad_in,), (grad_out,) = seen[0]
    np.testing.assert_allclose(grad_out.numpy(), np.ones((4, 2)))
    np.testing.assert_allclose(grad_in.numpy(), x.grad.numpy())
    np.testing.assert_allclose(
        grad_in.numpy(), np.ones((4, 2)) @ lin.weight.detach().numpy(), rtol=1e-6
    )

    x2 = x.detach().requires_grad_()
    lin.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0,))
    lin(x2).sum().backward()
    assert x2.grad.abs().sum().item() == 0.0


def test_full_backward_hook_gets_none_for_inputs_without_grad():
    lin = nn.Linear(2, 1)
    seen = []
    lin.register_full_backward_hook(lambda m, gi, go: seen.append(gi))
    lin(rtorch.ones(3, 2)).sum().backward()
    assert seen == [(None,)]
    assert lin.weight.grad is not None


def test_full_backward_pre_hook_can_scale_grad_output():
    lin = nn.Linear(2, 1)
    lin.register_full_backward_pre_hook(lambda m, go: (go[0] * 3,))
    x = rtorch.ones(1, 2, requires_grad=True)
    lin(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * lin.weight.detach().numpy(), rtol=1e-6)


def test_repr_matches_pytorch_text():
    net = nn.Sequential(
        nn.Linear(2, 3),
        nn.ReLU(inplace=True),
        nn.ModuleList([nn.Linear(1, 1) for _ in range(3)] + [nn.Tanh()]),
        nn.ParameterList([nn.Parameter(rtorch.zeros(2, 3)), rtorch.zeros(1)]),
        nn.ParameterDict({"a": nn.Parameter(rtorch.zeros(2))}),
    )
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU(inplace=True)\n"
        "  (2): ModuleList(\n"
        "    (0-2): 3 x Linear(in_features=1, out_features=1, bias=True)\n"
        "    (3): Tanh()\n"
        "  )\n"
        "  (3): ParameterList(\n"
        "      (0): Parameter containing: [torch.float32 of size 2x3]\n"
        "      (1): Parameter containing: [torch.float32 of size 1]\n"
        "  )\n"
        "  (4): ParameterDict(  (a): Parameter containing: [torch.FloatTensor of size 2])\n"
        ")"
    )

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Identity()

        def extra_repr(self):
            return "k=1\nmore=2"

    assert repr(Custom()) == "Custom(\n  k=1\n  more=2\n  (inner): Identity()\n)"


def test_dir_lists_registered_names():
    names = dir(Net())
    assert {"fc", "bn", "scale", "step", "forward", "training"} <= set(names)


def test_module_without_forward_raises():
    with pytest.raises(NotImplementedError, match='missing the required "forward" function'):
        nn.Module()(rtorch.ones(1))


def test_unknown_init_kwarg_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        nn.Module(foo=1)


def test_state_dict_round_trips_through_save_and_load(tmp_path):
    net = Net()
    rtorch.save(net.state_dict(), tmp_path / "net.pt")
    other = Net()
    other.load_state_dict(rtorch.load(tmp_path / "net.pt"))
    np.testing.assert_array_equal(other.fc.bias.detach().numpy(), net.fc.bias.detach().numpy())


@pytest.mark.parametrize(
    "name",
    [
        "rtorch.nn.modules.module",
        "rtorch.nn.modules.container",
        "rtorch.nn.modules.linear",
        "rtorch.nn.modules.flatten",
        "rtorch.nn.modules.activation",
        "rtorch.nn.modules.dropout",
        "rtorch.nn.modules.sparse",
        "rtorch.nn.modules.normalization",
        "rtorch.nn.modules.batchnorm",
        "rtorch.nn.modules.loss",
        "rtorch.nn.functional",
        "rtorch.nn.init",
    ],
)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    rtorch.manual_seed(0)
    result = doctest.testmod(module, extraglobs={"rtorch": rtorch, **vars(module)})
    assert result.failed == 0
