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
    ("PolynomialLR", dict(total_iters=5, power=2.0), lambda e: (1 - min(e, 5) / 5) ** 2),
    (
        "CosineAnnealingWarmRestarts",
        dict(T_0=3, T_mult=2, eta_min=0.1),
        lambda e: warm_restarts(e, t0=3, mult=2, eta_min=0.1),
    ),
    (
        "CyclicLR",
        dict(base_lr=0.1, max_lr=1.0, step_size_up=2, step_size_down=3, mode="triangular2"),
        lambda e: cyclic(e, 0.1, 1.0, up=2, down=3, scale=lambda c, it: 0.5 ** (c - 1)),
    ),
    (
        "CyclicLR",
        dict(base_lr=0.2, max_lr=0.8, step_size_up=3, mode="exp_range", gamma=0.9),
        lambda e: cyclic(e, 0.2, 0.8, up=3, down=3, scale=lambda c, it: 0.9**it),
    ),
    (
        "OneCycleLR",
        dict(max_lr=1.0, total_steps=EPOCHS + 1, pct_start=0.25, anneal_strategy="linear"),
        lambda e: one_cycle(e, 1.0, EPOCHS + 1, 0.25, cos=False),
    ),
    (
        "OneCycleLR",
        dict(max_lr=2.0, total_steps=EPOCHS + 1, pct_start=0.4, div_factor=10.0),
        lambda e: one_cycle(e, 2.0, EPOCHS + 1, 0.4, cos=True, div=10.0),
    ),
]


def warm_restarts(e, t0, mult, eta_min):
    t_i, t_cur = t0, e
    while t_cur >= t_i:
        t_cur -= t_i
        t_i *= mult
    return eta_min + (1 - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def cyclic(e, base, top, up, down, scale):
    cycle = math.floor(1 + e / (up + down))
    x = 1 + e / (up + down) - cycle
    ratio = up / (up + down)
    height = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
    return base + (top - base) * height * scale(cycle, e)


def one_cycle(e, max_lr, total, pct_start, cos, div=25.0, final_div=1e4):
    initial = max_lr / div
    low = initial / final_div
    up_end = pct_start * total - 1
    if e <= up_end:
        start, end, pct = initial, max_lr, e / up_end
    else:
        start, end, pct = max_lr, low, (e - up_end) / (total - 1 - up_end)
    if cos:
        return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


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


IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize(("name", "kw", "closed"), CASES, ids=IDS)
def test_lr_sequence_equals_closed_form(name, kw, closed):
    assert lr_sequence(rtorch, name, kw) == pytest.approx(
        [closed(e) for e in range(EPOCHS + 1)], rel=1e-12
    )


@pytest.mark.parametrize(("name", "kw", "closed"), CASES, ids=IDS)
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


CLOSED_FORM = ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR"]
CLOSED_FORM += ["CosineAnnealingLR", "PolynomialLR"]


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_step_with_epoch_uses_the_closed_form(name):
    kw, closed = next((c[1], c[2]) for c in CASES if c[0] == name)
    w = rtorch.nn.Parameter(rtorch.zeros(1))
    opt = SGD([w], lr=1.0)
    sched = getattr(lr_scheduler, name)(opt, **kw)
    for epoch in [7, 3, 10, 1]:
        with pytest.warns(UserWarning, match="epoch parameter"):
            sched.step(epoch)
        assert sched.last_epoch == epoch
        assert sched.get_last_lr() == pytest.approx([closed(epoch)], rel=1e-12)


def run_plateau(module, metrics, **kw):
    w = module.nn.Parameter(module.zeros(1))
    opt = module.optim.SGD([{"params": [w]}, {"params": [], "lr": 0.5}], lr=1.0)
    sched = module.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    out = []
    for m in metrics:
        sched.step(m)
        out.append(sched.get_last_lr())
    return out


PLATEAU_METRICS = [5.0, 4.0, 4.0, 4.0, 3.99999, 3.9, 3.9, 3.9, 3.9, 3.9, 3.9, 3.9, 10.0]


def test_reduce_lr_on_plateau_by_hand():
    got = run_plateau(rtorch, PLATEAU_METRICS, patience=1, factor=0.5, cooldown=1, min_lr=[0.3, 0])
    lr0 = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
    lr1 = [0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125, 0.0625, 0.0625, 0.0625]
    assert [g[0] for g in got] == pytest.approx(lr0)
    assert [g[1] for g in got] == pytest.approx(lr1)


PLATEAU_CASES = [
    dict(patience=1, factor=0.5, cooldown=1, min_lr=[0.3, 0]),
    dict(mode="max", patience=0, factor=0.2),
    dict(threshold_mode="abs", threshold=0.05, patience=2),
    dict(mode="max", threshold_mode="abs", threshold=0.5, patience=1, eps=0.3),
]


@pytest.mark.parametrize("kw", PLATEAU_CASES)
def test_reduce_lr_on_plateau_equals_pytorch_when_installed(kw):
    torch = pytest.importorskip("torch")
    assert run_plateau(rtorch, PLATEAU_METRICS, **kw) == run_plateau(torch, PLATEAU_METRICS, **kw)


def test_reduce_lr_on_plateau_checks_arguments():
    opt = SGD([rtorch.nn.Parameter(rtorch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="Factor should be < 1.0."):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode avg is unknown!"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="avg")
    with pytest.raises(ValueError, match="expected 1 min_lrs, got 2"):
        lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0, 0])


def sequential_run(module, steps=10):
    w = module.nn.Parameter(module.zeros(1))
    opt = module.optim.SGD([w], lr=1.0)
    sch = module.optim.lr_scheduler
    s1 = sch.LinearLR(opt, start_factor=0.25, total_iters=3)
    s2 = sch.ExponentialLR(opt, gamma=0.5)
    s3 = sch.StepLR(opt, step_size=2, gamma=0.1)
    seq = sch.SequentialLR(opt, [s1, s2, s3], milestones=[3, 6])
    out = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        seq.step()
        assert seq.get_last_lr() == [opt.param_groups[0]["lr"]]
        out.append(opt.param_groups[0]["lr"])
    return out, seq


def test_sequential_lr_switches_at_milestones():
    got, _ = sequential_run(rtorch)
    want = [0.25, 0.5, 0.75, 1.0, 0.5, 0.25, 1.0, 1.0, 0.1, 0.1, 0.01]
    assert got == pytest.approx(want, rel=1e-12)


def test_sequential_lr_equals_pytorch_when_installed():
    torch = pytest.importorskip("torch")
    assert sequential_run(rtorch)[0] == pytest.approx(sequential_run(torch)[0], rel=1e-13)


def chained_run(module, steps=8):
    w = module.nn.Parameter(module.zeros(1))
    opt = module.optim.SGD([w], lr=1.0)
    sch = module.optim.lr_scheduler
    chain = sch.ChainedScheduler(
        [sch.ConstantLR(opt, factor=0.5, total_iters=2), sch.ExponentialLR(opt, gamma=0.9)]
    )
    out = [chain.get_last_lr()[0]]
    for _ in range(steps):
        opt.step()
        chain.step()
        out.append(chain.get_last_lr()[0])
    return out


def test_chained_scheduler_multiplies_its_schedules():
    want = [0.5] + [(0.5 if e < 2 else 1.0) * 0.9**e for e in range(1, 9)]
    assert chained_run(rtorch) == pytest.approx(want, rel=1e-12)


def test_chained_scheduler_equals_pytorch_when_installed():
    torch = pytest.importorskip("torch")
    assert chained_run(rtorch) == pytest.approx(chained_run(torch), rel=1e-13)


def momentum_run(module, kind):
    w = module.nn.Parameter(module.zeros(1))
    sch = module.optim.lr_scheduler
    if kind == "cyclic-sgd":
        opt = module.optim.SGD([w], lr=1.0, momentum=0.9)
        sched = sch.CyclicLR(opt, 0.1, 1.0, step_size_up=3, base_momentum=0.7, max_momentum=0.95)
        key = "momentum"
    else:
        opt = module.optim.Adam([w], lr=1.0)
        sched = sch.OneCycleLR(opt, max_lr=0.5, total_steps=10, three_phase=True, pct_start=0.3)
        key = "betas"
    out = []
    for _ in range(9):
        opt.step()
        sched.step()
        group = opt.param_groups[0]
        out.append((group["lr"], group[key] if key == "momentum" else group[key][0]))
    return out


@pytest.mark.parametrize("kind", ["cyclic-sgd", "onecycle-adam-three-phase"])
def test_momentum_cycling_equals_pytorch_when_installed(kind):
    torch = pytest.importorskip("torch")
    got, want = momentum_run(rtorch, kind), momentum_run(torch, kind)
    assert [x for pair in got for x in pair] == pytest.approx(
        [x for pair in want for x in pair], rel=1e-12
    )


def test_cyclic_momentum_moves_against_the_lr():
    got = momentum_run(rtorch, "cyclic-sgd")
    # Up for 3 steps (momentum down to base), then down again.
    assert got[2] == pytest.approx((1.0, 0.7)) and got[5] == pytest.approx((0.1, 0.95))
    assert got[0] == pytest.approx((0.4, 0.95 - 0.25 / 3))


def test_one_cycle_lr_refuses_more_steps_than_total():
    opt = SGD([rtorch.nn.Parameter(rtorch.zeros(1))], lr=1.0, momentum=0.9)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        sched.step()


@pytest.mark.parametrize("which", ["sequential", "warm_restarts", "cyclic"])
def test_composite_scheduler_state_dict_round_trip(which):
    def build():
        w = rtorch.nn.Parameter(rtorch.zeros(1))
        opt = SGD([w], lr=1.0, momentum=0.9)
        if which == "sequential":
            s1 = lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2)
            s2 = lr_scheduler.ExponentialLR(opt, gamma=0.8)
            return opt, lr_scheduler.SequentialLR(opt, [s1, s2], milestones=[3])
        if which == "warm_restarts":
            return opt, lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2)
        return opt, lr_scheduler.CyclicLR(opt, 0.1, 1.0, step_size_up=2, mode="triangular2")

    opt, sched = build()
    for _ in range(4):
        sched.step()
    buf = io.BytesIO()
    rtorch.save(sched.state_dict(), buf)
    buf.seek(0)
    opt2, sched2 = build()
    sched2.load_state_dict(rtorch.load(buf, weights_only=False))
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    for _ in range(4):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == pytest.approx(sched.get_last_lr(), rel=1e-15)


def warm_restart_epochs(module):
    w = module.nn.Parameter(module.zeros(1))
    opt = module.optim.SGD([w], lr=1.0)
    sched = module.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=3)
    out = []
    for epoch in [0.5, 1.0, 1.75, 2.0, 4.5, 7.9, 8.0, 20.25]:
        sched.step(epoch)
        out.append(sched.get_last_lr()[0])
    return out


def test_warm_restarts_take_fractional_epochs():
    # Periods 2, 6, 18 start at epochs 0, 2, 8.
    want = [(1 + math.cos(math.pi * tc / ti)) / 2 for tc, ti in [(0.5, 2), (1.0, 2), (1.75, 2)]]
    want += [(1 + math.cos(math.pi * tc / ti)) / 2 for tc, ti in [(0, 6), (2.5, 6), (5.9, 6)]]
    want += [(1 + math.cos(math.pi * tc / ti)) / 2 for tc, ti in [(0, 18), (12.25, 18)]]
    assert warm_restart_epochs(rtorch) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_warm_restarts_fractional_epochs_equal_pytorch_when_installed():
    torch = pytest.importorskip("torch")
    assert warm_restart_epochs(rtorch) == pytest.approx(warm_restart_epochs(torch), rel=1e-13)
