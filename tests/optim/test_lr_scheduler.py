"""Scheduler learning-rate sequences against closed forms and, when installed, PyTorch."""

import io
import math

import pytest

import rtorch
from rtorch.optim import SGD, lr_scheduler

EPOCHS = 12

CASES = [
    ("LambdaLR", dict(lr_lambda=lambda e: 0.9**e), lambda e: 0.9**e),
    ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.8), lambda e: 0.8**e),
    ("StepLR", dict(step_size=3, gamma=0.5), lambda e: 0.5 ** (e // 3)),
    (
        "MultiStepLR",
        dict(milestones=[2, 5, 5], gamma=0.1),
        lambda e: 0.1 ** ((e >= 2) + 2 * (e >= 5)),
    ),
    ("ConstantLR", dict(factor=0.25, total_iters=4), lambda e: 0.25 if e < 4 else 1.0),
    (
        "LinearLR",
        dict(start_factor=0.2, end_factor=0.9, total_iters=5),
        lambda e: 0.2 + 0.7 * min(e, 5) / 5,
    ),
    ("ExponentialLR", dict(gamma=0.7), lambda e: 0.7**e),
    (
        "CosineAnnealingLR",
        dict(T_max=4, eta_min=0.1),
        lambda e: 0.1 + 0.9 * (1 + math.cos(math.pi * e / 4)) / 2,
    ),
]


def lr_sequence(module, name, kw):
    w = module.nn.Parameter(module.zeros(1))
    opt = module.optim.SGD([w], lr=1.0)
    sched = getattr(module.optim.lr_scheduler, name)(opt, **kw)
    seq = [opt.param_groups[0]["lr"]]
    for _ in range(EPOCHS):
        opt.step()
        sched.step()
        assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]
        seq.append(opt.param_groups[0]["lr"])
    return seq


@pytest.mark.parametrize(("name", "kw", "closed"), CASES, ids=[c[0] for c in CASES])
def test_lr_sequence_equals_closed_form(name, kw, closed):
    assert lr_sequence(rtorch, name, kw) == pytest.approx(
        [closed(e) for e in range(EPOCHS + 1)], rel=1e-12
    )


@pytest.mark.parametrize(("name", "kw", "closed"), CASES, ids=[c[0] for c in CASES])
def test_lr_sequence_equals_pytorch_when_installed(name, kw, closed):
    torch = pytest.importorskip("torch")
    assert lr_sequence(rtorch, name, kw) == pytest.approx(lr_sequence(torch, name, kw), rel=1e-13)


def test_chained_schedulers_compose_like_pytorch():
    w = rtorch.nn.Parameter(rtorch.zeros(1))
    opt = SGD([w], lr=1.0)
    a = lr_scheduler.ExponentialLR(opt, gamma=0.5)
    b = lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    seq = []
    for _ in range(4):
        a.step()
        b.step()
        seq.append(opt.param_groups[0]["lr"])
    assert seq == pytest.approx([0.5, 0.025, 0.0125, 0.000625])


def test_initial_lr_is_recorded_and_required_when_resuming():
    w = rtorch.nn.Parameter(rtorch.zeros(1))
    opt = SGD([{"params": [w], "lr": 0.3}], lr=1.0)
    with pytest.raises(KeyError, match=r"param 'initial_lr' is not specified in param_groups\[0\]"):
        lr_scheduler.StepLR(opt, step_size=1, last_epoch=3)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    assert (
        opt.param_groups[0]["initial_lr"] == 0.3
        and sched.base_lrs == [0.3]
        and sched.last_epoch == 0
    )


def test_scheduler_state_dict_round_trips_through_save_and_load():
    w = rtorch.nn.Parameter(rtorch.zeros(1))
    opt = SGD([w], lr=1.0)
    sched = lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    for _ in range(3):
        sched.step()
    buf = io.BytesIO()
    rtorch.save(sched.state_dict(), buf)
    buf.seek(0)
    assert "optimizer" not in sched.state_dict()

    opt2 = SGD([rtorch.nn.Parameter(rtorch.zeros(1))], lr=1.0)
    sched2 = lr_scheduler.MultiStepLR(opt2, milestones=[9], gamma=0.9)
    sched2.load_state_dict(rtorch.load(buf, weights_only=False))
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    assert sched2.last_epoch == 3 and sched2.get_last_lr() == [0.5]
    sched.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == 0.25


def test_lambda_lr_checks_one_lambda_per_group_and_constant_lr_checks_factor():
    opt = SGD([{"params": [rtorch.nn.Parameter(rtorch.zeros(1))]}], lr=1.0)
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas, but got 2"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1.0, lambda e: 1.0])
    with pytest.raises(
        ValueError, match="Constant multiplicative factor expected to be between 0 and 1."
    ):
        lr_scheduler.ConstantLR(opt, factor=2.0)
