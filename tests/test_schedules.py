"""Learning-rate schedules: values worked out by hand, ReduceLROnPlateau traces, resume, config.

The contract is that a schedule means exactly what torch.optim.lr_scheduler means by the
same name, stepped once per epoch: ``Schedule.lr(k)`` is ``optimizer.param_groups[0]["lr"]``
after k calls of ``scheduler.step()``, and ``Schedule.observe(k, metric)`` is
``ReduceLROnPlateau.step(metric)`` after epoch k. The expected numbers below are written
out by hand from torch's documented formulas; the last section checks the same schedules
side by side with real torch when it is installed (it is not a dependency, so those tests
skip otherwise).
"""

from __future__ import annotations

import itertools
import json
import random

import pytest

from backprop_cli.config import validate_config
from backprop_cli.errors import ConfigError
from backprop_cli.training import build_schedule

from .conftest import Schedule

REL = 1e-12


def approx(values):
    return pytest.approx(values, rel=REL, abs=0)


def lrs(schedule: Schedule, n: int) -> list[float]:
    return [schedule.lr(k) for k in range(n)]


def plateau_trace(schedule: Schedule, metrics, start: int = 1) -> list[float]:
    """lr before the first epoch, then the lr after observing each metric (epochs 1, 2, ...)."""
    out = [schedule.lr(start - 1)]
    for k, m in enumerate(metrics, start):
        schedule.observe(k, m)
        out.append(schedule.lr(k))
    return out


# ------------------------------------------------------------ closed forms, worked by hand

# CosineAnnealingLR(T_max=4, eta_min=0.01) from 0.1: 0.01 + 0.045 (1 + cos(pi k / 4)).
# cos(pi/4) = 1/sqrt(2), so k = 1 gives 0.01 + 0.045 * 1.70710678... and k = 3 gives
# 0.01 + 0.045 * 0.29289321...  Past T_max torch's cosine does not stay at eta_min: both
# its closed form and its recursive get_lr (stepped epoch by epoch) follow the cosine back
# up, period 2 T_max, reaching the base rate again at k = 8.
COS_HI = 0.0868198051533946  # 0.01 + 0.045 * (1 + 2 ** -0.5)
COS_LO = 0.0231801948466054  # 0.01 + 0.045 * (1 - 2 ** -0.5)
COSINE_4 = [0.1, COS_HI, 0.055, COS_LO, 0.01, COS_LO, 0.055, COS_HI, 0.1]

BY_HAND = {
    "step": (
        {"step_size": 3, "gamma": 0.5},
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125],
    ),
    "multistep": (
        {"milestones": [2, 5], "gamma": 0.1},
        [0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001],
    ),
    "exponential": ({"gamma": 0.9}, [0.1, 0.09, 0.081, 0.0729, 0.06561]),
    "cosine": ({"T_max": 4, "eta_min": 0.01}, COSINE_4),
    "constant": ({}, [0.1, 0.1, 0.1, 0.1]),
}


@pytest.mark.parametrize("name", list(BY_HAND))
def test_closed_form_values_by_hand(name):
    params, expected = BY_HAND[name]
    assert lrs(Schedule(0.1, name, **params), len(expected)) == approx(expected)


def test_cosine_rises_again_after_t_max_as_torch_does():
    s = Schedule(0.1, "cosine", T_max=4, eta_min=0.01)
    assert s.lr(4) == pytest.approx(0.01, rel=REL)  # the minimum is at k = T_max
    assert s.lr(5) == pytest.approx(COS_LO, rel=REL)  # not eta_min: back up the curve
    assert s.lr(8) == pytest.approx(0.1, rel=REL)  # the base rate again at 2 T_max


def test_step_defaults_to_gamma_0_1_like_torch():
    assert lrs(Schedule(1.0, "step", step_size=2), 5) == approx([1.0, 1.0, 0.1, 0.1, 0.01])


def test_multistep_counts_only_milestones_reached():
    # MultiStepLR(milestones=[3, 4, 10], gamma=0.5): the rate at k is base * 0.5 ** #{m <= k}.
    s = Schedule(0.2, "multistep", milestones=[3, 4, 10], gamma=0.5)
    assert lrs(s, 12) == approx([0.2, 0.2, 0.2, 0.1, 0.05] + [0.05] * 5 + [0.025, 0.025])


# ------------------------------------------------------------ warmup (LinearLR then SequentialLR)

# LinearLR(start_factor=0.25, total_iters=3) from 0.1: factor 0.25 + 0.75 k / 3 for k < 3,
# i.e. 0.025, 0.05, 0.075; at k = 3 SequentialLR hands over to the main schedule at its k = 0.
WARM_3 = [0.025, 0.05, 0.075]


def test_warmup_then_constant():
    s = Schedule(0.1, "constant", warmup_iters=3, warmup_start_factor=0.25)
    assert lrs(s, 7) == approx(WARM_3 + [0.1, 0.1, 0.1, 0.1])


def test_warmup_then_cosine_starts_the_cosine_at_zero():
    s = Schedule(0.1, "cosine", warmup_iters=3, warmup_start_factor=0.25, T_max=4, eta_min=0.01)
    assert lrs(s, 12) == approx(WARM_3 + COSINE_4)


def test_warmup_then_step_counts_steps_from_the_end_of_warmup():
    s = Schedule(0.1, "step", warmup_iters=3, warmup_start_factor=0.25, step_size=2, gamma=0.5)
    assert lrs(s, 9) == approx(WARM_3 + [0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_warmup_default_start_factor_is_torch_one_third():
    # LinearLR's default start_factor is 1/3: 1/3, 1/3 + (2/3)(1/2) = 2/3, then the base.
    s = Schedule(0.3, "constant", warmup_iters=2)
    assert lrs(s, 4) == approx([0.1, 0.2, 0.3, 0.3])


SCALED = {
    "step": (BY_HAND["step"][0], [0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125]),
    "multistep": (BY_HAND["multistep"][0], [0.05, 0.05, 0.005, 0.005, 0.005, 0.0005, 0.0005]),
    "exponential": ({"gamma": 0.9}, [0.05, 0.045, 0.0405, 0.03645, 0.032805]),
    "cosine": ({"T_max": 4, "eta_min": 0.01}, [v / 2 for v in COSINE_4]),
    "constant": ({}, [0.05, 0.05, 0.05]),
}


@pytest.mark.parametrize("name", list(SCALED))
def test_scale_halves_every_value(name):
    params, expected = SCALED[name]
    s = Schedule(0.1, name, **params)
    s.scale = 0.5
    assert lrs(s, len(expected)) == approx(expected)


def test_scale_halves_warmup_and_plateau_values_too():
    s = Schedule(0.1, "constant", warmup_iters=3, warmup_start_factor=0.25)
    s.scale = 0.5
    assert lrs(s, 5) == approx([0.0125, 0.025, 0.0375, 0.05, 0.05])
    p = Schedule(0.1, "reduce_on_plateau", patience=0, factor=0.5)
    p.scale = 0.5
    assert plateau_trace(p, [1.0, 2.0, 2.0]) == approx([0.05, 0.05, 0.025, 0.0125])


# ------------------------------------------------------------ ReduceLROnPlateau, traced by hand

# torch's step(metric): if metric is better than best (min/rel: metric < best * (1 -
# threshold)) then best = metric and num_bad_epochs = 0, else num_bad_epochs += 1; while in
# cooldown the counter ticks down and num_bad_epochs is zeroed; when num_bad_epochs >
# patience: new = max(old * factor, min_lr), applied only if old - new > eps, then
# cooldown_counter = cooldown and num_bad_epochs = 0.
METRICS = [1.0, 0.9, 0.95, 0.95, 0.95, 0.94, 0.93, 0.93, 0.93, 0.93, 0.5, 0.6, 0.6, 0.6]

PLATEAU_CASES = {
    # e1, e2 improve; e3-e5 bad 1, 2, 3 > 2: halve after e5; e6-e8 bad 1, 2, 3: halve after
    # e8 (0.94 and 0.93 are no improvement on 0.9); e9, e10 bad; e11 improves; e12-e14 bad.
    "min_rel": (
        {"patience": 2, "factor": 0.5},
        METRICS,
        [0.1] * 5 + [0.05] * 3 + [0.025] * 6 + [0.0125],
    ),
    # cooldown=1: after the cut at e5, e6's bad epoch is swallowed by the cooldown, so the
    # next cut comes one epoch later (e9); e10 is again in cooldown; e11 improves.
    "cooldown": (
        {"patience": 2, "factor": 0.5, "cooldown": 1},
        METRICS,
        [0.1] * 5 + [0.05] * 4 + [0.025] * 5 + [0.0125],
    ),
    # max/rel: better means metric > best * 1.0001. e1, e2 improve (0.5, 0.6); e3 (0.6 again),
    # e4 (0.59), e5 (0.6) are bad: cut after e5; e6 improves (0.7); e7-e9 bad: cut after e9.
    "max": (
        {"mode": "max", "patience": 2, "factor": 0.5},
        [0.5, 0.6, 0.6, 0.59, 0.6, 0.7, 0.7, 0.7, 0.7],
        [0.1] * 5 + [0.05] * 4 + [0.025],
    ),
    # min/abs, threshold 0.05: better means metric < best - 0.05. e1 best 1.0; e2 0.96 bad;
    # e3 0.94 better; e4 0.9 bad (needs < 0.89); e5 0.86 better; e6, e7 0.85 bad 1, 2 > 1:
    # cut after e7; e8, e9 bad 1, 2: cut after e9. (With rel 1e-4 all of e2-e6 would improve.)
    "abs": (
        {"threshold_mode": "abs", "threshold": 0.05, "patience": 1, "factor": 0.5},
        [1.0, 0.96, 0.94, 0.9, 0.86, 0.85, 0.85, 0.85, 0.85],
        [0.1] * 7 + [0.05, 0.05, 0.025],
    ),
    # patience 0: every bad epoch cuts. 0.1 -> 0.05 -> max(0.025, 0.03) = 0.03, then
    # max(0.015, 0.03) = 0.03 is no decrease and the rate stays on the floor.
    "min_lr": (
        {"patience": 0, "factor": 0.5, "min_lr": 0.03},
        [1.0, 2.0, 2.0, 2.0, 2.0],
        [0.1, 0.1, 0.05, 0.03, 0.03, 0.03],
    ),
    # eps 0.02: 0.1 -> 0.05 (decrease 0.05 > eps) -> 0.025 (0.025 > eps), then the decrease
    # 0.0125 <= eps is ignored and the rate stays at 0.025.
    "eps": (
        {"patience": 0, "factor": 0.5, "eps": 0.02},
        [1.0, 2.0, 2.0, 2.0, 2.0],
        [0.1, 0.1, 0.05, 0.025, 0.025, 0.025],
    ),
    # eps exactly equal to the decrease (0.1 - 0.05 == 0.05 in floating point): torch
    # requires old - new > eps, so the rate is never cut.
    "eps_boundary": (
        {"patience": 0, "factor": 0.5, "eps": 0.05},
        [1.0, 2.0, 2.0, 2.0],
        [0.1] * 5,
    ),
    # rel threshold 1e-4: from best 0.9 an improvement must go below 0.89991, so 0.89995 is
    # a bad epoch (three of them cut the rate); 0.8999 then counts as an improvement.
    "threshold": (
        {"patience": 2, "factor": 0.5},
        [1.0, 0.9, 0.89995, 0.89995, 0.89995, 0.8999, 0.8999],
        [0.1] * 5 + [0.05] * 3,
    ),
    # torch's defaults: factor 0.1, patience 10, threshold 1e-4 rel.
    "defaults": (
        {},
        [1.0] * 12,
        [0.1] * 12 + [0.01],
    ),
}


@pytest.mark.parametrize("case", list(PLATEAU_CASES))
def test_reduce_on_plateau_by_hand(case):
    params, metrics, expected = PLATEAU_CASES[case]
    assert len(expected) == len(metrics) + 1
    s = Schedule(0.1, "reduce_on_plateau", **params)
    assert plateau_trace(s, metrics) == approx(expected)


def test_observe_is_a_no_op_for_other_schedules():
    s = Schedule(0.1, "step", step_size=2, gamma=0.5)
    for k, m in enumerate([1.0, 2.0, 3.0, 4.0], 1):
        s.observe(k, m)
    assert lrs(s, 5) == approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_plateau_starts_after_warmup():
    # warmup_iters=2, start_factor 0.5: 0.05, 0.075, then the plateau schedule from 0.1. The
    # metrics of the two warmup epochs are not seen; from epoch 3 on: e3 best 3.0, e4 better
    # (1.0), e5 and e6 bad with patience 0: two cuts.
    s = Schedule(
        0.1, "reduce_on_plateau", warmup_iters=2, warmup_start_factor=0.5, patience=0, factor=0.5
    )
    trace = plateau_trace(s, [1.0, 2.0, 3.0, 1.0, 2.0, 2.0])
    assert trace == approx([0.05, 0.075, 0.1, 0.1, 0.1, 0.05, 0.025])


# ------------------------------------------------------------ state_dict round trip

RESUME_PARAMS = {"patience": 2, "factor": 0.5, "cooldown": 2, "min_lr": 0.004}
RESUME_METRICS = [
    1.0,
    0.9,
    0.95,
    0.95,
    0.95,
    0.94,
    0.93,
    0.93,
    0.93,
    0.93,
    0.93,
    0.5,
    0.6,
    0.6,
    0.6,
    0.6,
    0.7,
    0.7,
    0.7,
    0.7,
    0.7,
    0.7,
]


def test_state_dict_holds_the_plateau_state():
    s = Schedule(0.1, "reduce_on_plateau", **RESUME_PARAMS)
    plateau_trace(s, RESUME_METRICS[:4])  # two bad epochs since the best 0.9
    assert s.state_dict() == {
        "scale": 1.0,
        "best": 0.9,
        "num_bad_epochs": 2,
        "cooldown_counter": 0,
        "plateau_lr": 0.1,
    }
    plateau_trace(s, RESUME_METRICS[4:6], start=5)  # cut after e5, e6 in the cooldown
    assert s.state_dict() == {
        "scale": 1.0,
        "best": 0.9,
        "num_bad_epochs": 0,
        "cooldown_counter": 1,
        "plateau_lr": 0.05,
    }


def test_state_dict_round_trip_continues_identically():
    whole = Schedule(0.1, "reduce_on_plateau", **RESUME_PARAMS)
    whole.scale = 0.5
    expected = plateau_trace(whole, RESUME_METRICS)
    for cut in range(1, len(RESUME_METRICS)):
        first = Schedule(0.1, "reduce_on_plateau", **RESUME_PARAMS)
        first.scale = 0.5
        head = plateau_trace(first, RESUME_METRICS[:cut])
        state = json.loads(json.dumps(first.state_dict()))  # as a checkpoint would store it

        resumed = Schedule(0.1, "reduce_on_plateau", **RESUME_PARAMS)
        resumed.load_state_dict(state)
        assert resumed.state_dict() == first.state_dict(), cut
        tail = plateau_trace(resumed, RESUME_METRICS[cut:], start=cut + 1)
        assert head[:-1] + tail == expected, cut


def test_state_dict_restores_scale_of_a_closed_form_schedule():
    s = Schedule(0.1, "step", step_size=3, gamma=0.5)
    s.scale = 0.25
    t = Schedule(0.1, "step", step_size=3, gamma=0.5)
    t.load_state_dict(s.state_dict())
    assert lrs(t, 10) == lrs(s, 10)
    assert t.lr(3) == pytest.approx(0.0125, rel=REL)


# ------------------------------------------------------------ side by side with torch

MAIN_SCHEDULES = [
    ("constant", {}),
    ("step", {"step_size": 3, "gamma": 0.5}),
    ("step", {"step_size": 1}),
    ("multistep", {"milestones": [2, 5], "gamma": 0.1}),
    ("multistep", {"milestones": [1, 4, 9, 20], "gamma": 0.5}),
    ("exponential", {"gamma": 0.9}),
    ("exponential", {"gamma": 1.05}),
    ("cosine", {"T_max": 4, "eta_min": 0.01}),
    ("cosine", {"T_max": 7}),
    ("cosine", {"T_max": 30, "eta_min": 0.001}),
    ("cosine", {"T_max": 1}),
]
WARMUPS = [(0, None), (1, 0.5), (3, 0.25), (5, None)]  # (total_iters, start_factor)


def _torch_main(torch, opt, name, params):
    lrs_ = torch.optim.lr_scheduler
    if name == "constant":
        return lrs_.LambdaLR(opt, lambda _: 1.0)
    cls = {
        "step": lrs_.StepLR,
        "multistep": lrs_.MultiStepLR,
        "exponential": lrs_.ExponentialLR,
        "cosine": lrs_.CosineAnnealingLR,
    }[name]
    return cls(opt, **params)


@pytest.mark.parametrize("name,params", MAIN_SCHEDULES)
def test_matches_torch_scheduler(name, params):
    torch = pytest.importorskip("torch")
    base = 0.1
    for warm, start_factor in WARMUPS:
        opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=base)
        kw = {} if start_factor is None else {"warmup_start_factor": start_factor}
        if warm:
            lin = torch.optim.lr_scheduler.LinearLR(
                opt, start_factor=start_factor or 1.0 / 3.0, end_factor=1.0, total_iters=warm
            )
            main = _torch_main(torch, opt, name, params)
            sched = torch.optim.lr_scheduler.SequentialLR(opt, [lin, main], milestones=[warm])
        else:
            sched = _torch_main(torch, opt, name, params)
        ours = Schedule(base, name, warmup_iters=warm, **kw, **params)
        for k in range(30):
            torch_lr = opt.param_groups[0]["lr"]
            assert ours.lr(k) == pytest.approx(torch_lr, rel=REL, abs=0), (warm, k)
            opt.step()
            sched.step()


PLATEAU_TORCH = [
    {"patience": 2, "factor": 0.5},
    {"patience": 2, "factor": 0.5, "cooldown": 1},
    {"mode": "max", "patience": 1, "factor": 0.3},
    {"threshold_mode": "abs", "threshold": 0.05, "patience": 1, "factor": 0.5},
    {"mode": "max", "threshold_mode": "abs", "threshold": 0.02, "patience": 0, "factor": 0.7},
    {"patience": 0, "factor": 0.5, "min_lr": 0.01},
    {"patience": 0, "factor": 0.5, "eps": 0.01},
    {"patience": 3, "factor": 0.1, "cooldown": 2, "threshold": 0.1},
    {},
]


def _metrics(seed: int, kind: str) -> list[float]:
    rng = random.Random(seed)
    if kind == "coarse":  # ties and repeats are common
        return [round(rng.uniform(0.0, 1.0), 1) for _ in range(30)]
    # a noisy, slowly improving loss
    return [1.0 / (1 + 0.2 * k) * (1 + 0.1 * rng.gauss(0, 1)) for k in range(30)]


@pytest.mark.parametrize("params", PLATEAU_TORCH, ids=lambda p: ",".join(map(str, p.items())))
def test_plateau_matches_torch(params):
    torch = pytest.importorskip("torch")
    for seed, kind in itertools.product([0, 1, 2], ["coarse", "trend"]):
        opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **params)
        ours = Schedule(0.1, "reduce_on_plateau", **params)
        metrics = _metrics(seed, kind)
        for k in range(len(metrics) + 1):
            torch_lr = opt.param_groups[0]["lr"]
            assert ours.lr(k) == pytest.approx(torch_lr, rel=REL, abs=0), (seed, kind, k)
            if k == len(metrics):
                break
            opt.step()
            sched.step(metrics[k])
            ours.observe(k + 1, metrics[k])


# ------------------------------------------------------------ config


def _cfg(lr_schedule, **training):
    return {
        "data": {"dataset": "iris"},
        "model": {"layers": [{"units": 3, "activation": "softmax"}]},
        "training": {"lr_schedule": lr_schedule, **training},
    }


@pytest.mark.parametrize("value", ["cosine", {"name": "cosine", "eta_min": 0.0}])
def test_cosine_without_t_max_is_refused_naming_t_max(value):
    with pytest.raises(ConfigError) as e:
        validate_config(_cfg(value), "cfg.yaml")
    msg = str(e.value)
    assert msg.startswith("cfg.yaml: training.lr_schedule.T_max:")
    assert "missing" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "value,suggestion",
    [("cosin", "cosine"), ({"name": "expnential", "gamma": 0.9}, "exponential")],
)
def test_unknown_schedule_name_gets_did_you_mean(value, suggestion):
    with pytest.raises(ConfigError) as e:
        validate_config(_cfg(value), "cfg.yaml")
    msg = str(e.value)
    assert "training.lr_schedule.name" in msg
    assert f"did you mean '{suggestion}'" in msg


@pytest.mark.parametrize("milestones", [[5, 2], [2, 2], [0, 3]])
def test_milestones_must_be_positive_and_increasing(milestones):
    with pytest.raises(ConfigError) as e:
        validate_config(_cfg({"name": "multistep", "milestones": milestones}), "cfg.yaml")
    msg = str(e.value)
    assert "training.lr_schedule.milestones" in msg
    assert "increasing" in msg
    assert str(milestones) in msg


def test_step_schedule_is_accepted_with_torch_default_gamma():
    cfg = validate_config(_cfg({"name": "step", "step_size": 2}), "cfg.yaml")
    assert cfg.training.lr_schedule.name == "step"
    assert cfg.training.lr_schedule.step_size == 2
    assert cfg.training.lr_schedule.gamma == 0.1


def test_string_shorthand_constant_is_accepted():
    cfg = validate_config(_cfg("constant"), "cfg.yaml")
    assert cfg.training.lr_schedule.name == "constant"


def test_plateau_config_defaults_are_torch_defaults():
    s = validate_config(_cfg("reduce_on_plateau"), "cfg.yaml").training.lr_schedule
    assert (s.mode, s.factor, s.patience, s.threshold, s.threshold_mode) == (
        "min",
        0.1,
        10,
        1e-4,
        "rel",
    )
    assert (s.cooldown, s.min_lr, s.eps) == (0, 0.0, 1e-8)


def test_config_builds_the_schedule_it_describes():
    data = _cfg(
        {"name": "step", "step_size": 2, "gamma": 0.1},
        warmup={"total_iters": 2, "start_factor": 0.5},
    )
    data["optimizer"] = {"name": "sgd", "lr": 0.1}
    s = build_schedule(validate_config(data, "cfg.yaml"))
    assert lrs(s, 7) == approx([0.05, 0.075, 0.1, 0.1, 0.01, 0.01, 0.001])
