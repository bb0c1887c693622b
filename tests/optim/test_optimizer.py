"""The Optimizer contract: construction errors, zero_grad, hooks, repr, state_dict round trip."""

import io
import warnings

import pytest

import rtorch
from rtorch import optim


def _param(*values):
    return rtorch.nn.Parameter(rtorch.tensor(list(values)))


def test_constructor_errors_use_pytorch_wording():
    p = _param(1.0)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts, but got torch.FloatTensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="ordering of tensors in sets will change"):
        optim.SGD([{"params": {p}}], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors, but one of the params is int"):
        optim.SGD([1], lr=0.1)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Invalid momentum value: -1"):
        optim.SGD([p], lr=0.1, momentum=-1)
    with pytest.raises(ValueError, match="Invalid weight_decay value: -1"):
        optim.SGD([p], lr=0.1, weight_decay=-1)
    with pytest.raises(
        ValueError, match="Nesterov momentum requires a momentum and zero dampening"
    ):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid epsilon value: -0.1"):
        optim.Adam([p], eps=-0.1)


def test_set_of_params_warns_and_duplicates_across_groups_raise():
    p, q = _param(1.0), _param(2.0)
    with pytest.warns(FutureWarning, match="ordered collections"):
        optim.SGD({p}, lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [q, p]})
    opt.add_param_group({"params": q, "momentum": 0.9})
    assert opt.param_groups[1]["params"] == [q] and opt.param_groups[1]["lr"] == 0.1
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([p, p], lr=0.1)


def test_zero_grad_sets_none_or_zeros():
    p = _param(1.0, 2.0)
    opt = optim.SGD([p], lr=0.1)
    p.sum().backward()
    opt.zero_grad(set_to_none=False)
    assert p.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None


def test_repr_lists_group_options_sorted():
    opt = optim.SGD([_param(1.0)], lr=0.1)
    assert repr(opt) == (
        "SGD (\nParameter Group 0\n    dampening: 0\n    differentiable: False\n    foreach: None\n"
        "    fused: None\n    lr: 0.1\n    maximize: False\n    momentum: 0\n    nesterov: False\n"
        "    weight_decay: 0\n)"
    )


def test_step_hooks_run_in_order_can_rewrite_args_and_be_removed():
    p = _param(1.0)
    opt = optim.SGD([p], lr=0.1)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", o is opt)))
    post = opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", args)))
    p.sum().backward()
    opt.step()
    assert calls == [("pre", True), ("post", ())]
    pre.remove()
    post.remove()
    opt.step()
    assert len(calls) == 2 and p.item() == pytest.approx(0.8)
    # A pre hook returning (args, kwargs) replaces the step's arguments.
    opt.register_step_pre_hook(lambda o, args, kwargs: ((), {"closure": lambda: 7}))
    assert opt.step() == 7


def test_state_dict_replaces_params_with_ids_across_groups():
    p, q, r = _param(1.0), _param(2.0), _param(3.0)
    opt = optim.SGD([{"params": [p, q]}, {"params": [r], "lr": 0.5}], lr=0.1, momentum=0.9)
    (p + q + r).sum().backward()
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.5 and "params" not in opt.defaults
    assert sorted(sd["state"]) == [0, 1, 2]
    assert sd["state"][2]["momentum_buffer"].tolist() == [1.0]


def _train(opt, p, steps):
    for _ in range(steps):
        opt.zero_grad()
        (p * p * rtorch.tensor([1.0, 3.0])).sum().backward()
        opt.step()


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW])
def test_state_dict_round_trips_through_save_and_load(cls):
    kw = {"lr": 0.1, "momentum": 0.9} if cls is optim.SGD else {"lr": 0.1, "amsgrad": True}
    p = _param(1.0, -2.0)
    opt = cls([p], **kw)
    _train(opt, p, 3)
    buf = io.BytesIO()
    rtorch.save(opt.state_dict(), buf)
    buf.seek(0)
    loaded = rtorch.load(buf)

    q = _param(*p.tolist())
    opt2 = cls([q], lr=123.0)
    opt2.load_state_dict(loaded)
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.param_groups[0]["params"][0] is q
    _train(opt, p, 5)
    _train(opt2, q, 5)
    assert q.tolist() == p.tolist()


def test_load_state_dict_checks_group_shapes_and_casts_state_to_param_dtype():
    p = _param(1.0, 2.0)
    opt = optim.Adam([p])
    p.sum().backward()
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.Adam([{"params": [_param(1.0)]}, {"params": [_param(1.0)]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        optim.Adam([_param(1.0), _param(2.0)]).load_state_dict(sd)
    d = rtorch.nn.Parameter(rtorch.zeros(2, dtype=rtorch.float64))
    opt64 = optim.Adam([d])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt64.load_state_dict(sd)
    assert opt64.state[d]["exp_avg"].dtype == rtorch.float64
    assert opt64.state[d]["step"].dtype == rtorch.float32
