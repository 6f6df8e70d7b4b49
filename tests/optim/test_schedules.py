"""Schedules against their formulas at chosen steps (boundaries included), eager and jit."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as jnp
from nanofn import optim


def _value(schedule, step):
    return float(schedule(jnp.asarray(step, dtype=np.int32)))


def _jit_value(schedule, step):
    return float(nanofn.jit(schedule)(jnp.asarray(step, dtype=np.int32)))


def _cosine_decay(t, init, steps, alpha=0.0, exponent=1.0):
    t = min(t, steps)
    return init * ((1 - alpha) * (0.5 * (1 + math.cos(math.pi * t / steps))) ** exponent + alpha)


# (id, schedule, formula: step -> value, steps to check)
SCHEDULES = [
    ("constant", optim.constant_schedule(0.3), lambda t: 0.3, [0, 1, 100]),
    ("linear", optim.linear_schedule(1.0, 0.2, transition_steps=8, transition_begin=2),
     lambda t: 1.0 if t <= 2 else (0.2 if t >= 10 else 1.0 + (0.2 - 1.0) * (t - 2) / 8),
     [0, 2, 3, 6, 10, 11, 50]),
    ("polynomial", optim.polynomial_schedule(2.0, 0.5, power=3, transition_steps=10),
     lambda t: (2.0 - 0.5) * (1 - min(t, 10) / 10) ** 3 + 0.5, [0, 1, 5, 9, 10, 12]),
    ("cosine_decay", optim.cosine_decay_schedule(0.4, decay_steps=20, alpha=0.1, exponent=2.0),
     lambda t: _cosine_decay(t, 0.4, 20, 0.1, 2.0), [0, 1, 10, 19, 20, 30]),
    ("exponential", optim.exponential_decay(1.0, transition_steps=5, decay_rate=0.5,
                                            transition_begin=3),
     lambda t: 1.0 if t <= 3 else 0.5 ** ((t - 3) / 5), [0, 3, 4, 8, 13, 23]),
    ("exponential_staircase", optim.exponential_decay(
        1.0, transition_steps=5, decay_rate=0.5, staircase=True, end_value=0.2),
     lambda t: max(0.5 ** (t // 5), 0.2), [0, 4, 5, 9, 10, 15, 100]),
    ("exponential_growth_capped", optim.exponential_decay(
        1.0, transition_steps=1, decay_rate=2.0, end_value=10.0),
     lambda t: min(2.0 ** t, 10.0), [0, 1, 3, 4, 20]),
    ("piecewise_constant", optim.piecewise_constant_schedule(1.0, {3: 0.5, 6: 0.1}),
     lambda t: 1.0 if t < 3 else (0.5 if t < 6 else 0.05), [0, 2, 3, 5, 6, 7, 100]),
    ("piecewise_linear", optim.piecewise_interpolate_schedule("linear", 2.0, {4: 0.5, 8: 0.0}),
     lambda t: 2.0 - 0.25 * t if t < 4 else (1.0 - 0.25 * (t - 4) if t < 8 else 0.0),
     [0, 1, 4, 6, 8, 20]),
    ("piecewise_cosine", optim.piecewise_interpolate_schedule("cosine", 2.0, {4: 0.5}),
     lambda t: 1.0 + (2.0 - 1.0) / 2 * (math.cos(math.pi * t / 4) + 1) if t < 4 else 1.0,
     [0, 1, 2, 4, 9]),
    ("onecycle", optim.cosine_onecycle_schedule(100, peak_value=1.0, pct_start=0.3,
                                                div_factor=25.0, final_div_factor=1e4),
     lambda t: (1.0 + (0.04 - 1.0) / 2 * (math.cos(math.pi * t / 30) + 1) if t < 30 else
                4e-6 + (1.0 - 4e-6) / 2 * (math.cos(math.pi * (t - 30) / 70) + 1)
                if t < 100 else 4e-6),
     [0, 15, 30, 65, 100, 150]),
    ("warmup_cosine", optim.warmup_cosine_decay_schedule(0.1, 1.0, warmup_steps=10,
                                                        decay_steps=50, end_value=0.2),
     lambda t: 0.1 + 0.09 * t if t < 10 else _cosine_decay(t - 10, 1.0, 40, 0.2),
     [0, 5, 9, 10, 30, 50, 60]),
    ("warmup_exponential", optim.warmup_exponential_decay_schedule(
        0.0, 1.0, warmup_steps=4, transition_steps=2, decay_rate=0.5),
     lambda t: t / 4 if t < 4 else 0.5 ** ((t - 4) / 2), [0, 2, 4, 6, 10]),
    ("join", optim.join_schedules([optim.constant_schedule(3.0),
                                   optim.linear_schedule(2.0, 0.0, 4)], [5]),
     lambda t: 3.0 if t < 5 else max(2.0 - 0.5 * (t - 5), 0.0), [0, 4, 5, 6, 9, 20]),
    ("sgdr", optim.sgdr_schedule([
        dict(init_value=0.0, peak_value=1.0, warmup_steps=2, decay_steps=10),
        dict(init_value=0.0, peak_value=0.5, warmup_steps=2, decay_steps=6)]),
     lambda t: ((0.5 * t if t < 2 else _cosine_decay(t - 2, 1.0, 8)) if t < 10 else
                (0.25 * (t - 10) if t < 12 else _cosine_decay(t - 12, 0.5, 4))),
     [0, 1, 2, 6, 9, 10, 11, 12, 14, 16, 30]),
]


@pytest.mark.parametrize("name, schedule, formula, steps", SCHEDULES,
                         ids=[s[0] for s in SCHEDULES])
def test_schedule_matches_formula(name, schedule, formula, steps):
    for t in steps:
        assert _value(schedule, t) == pytest.approx(formula(t), rel=1e-5, abs=1e-6), t
        assert schedule(t) == pytest.approx(formula(t), rel=1e-5, abs=1e-6), t  # a Python int


@pytest.mark.parametrize("name, schedule, formula, steps", SCHEDULES,
                         ids=[s[0] for s in SCHEDULES])
def test_schedule_works_with_a_traced_count(name, schedule, formula, steps):
    for t in steps:
        assert _jit_value(schedule, t) == pytest.approx(formula(t), rel=1e-5, abs=1e-6), t


@given(init=st.floats(0.01, 10.0), end=st.floats(0.0, 5.0), steps=st.integers(1, 50),
       t=st.integers(0, 100))
def test_linear_schedule_stays_between_its_ends(init, end, steps, t):
    value = _value(optim.linear_schedule(init, end, steps), t)
    assert min(init, end) - 1e-5 <= value <= max(init, end) + 1e-5


def test_non_positive_transition_steps_gives_a_constant():
    assert optim.polynomial_schedule(0.7, 0.0, 1, transition_steps=0)(5) == 0.7
    assert optim.exponential_decay(0.7, transition_steps=0, decay_rate=0.5)(5) == 0.7


def test_schedule_as_learning_rate_uses_the_step_count():
    sched = optim.piecewise_constant_schedule(1.0, {1: 0.5})
    opt = optim.sgd(sched)
    state = opt.init(jnp.zeros(1))
    u1, state = opt.update(jnp.ones(1), state)
    u2, state = opt.update(jnp.ones(1), state)
    assert float(u1[0]) == -1.0 and float(u2[0]) == -0.5


BAD = [
    (lambda: optim.cosine_decay_schedule(1.0, decay_steps=0), "decay_steps"),
    (lambda: optim.piecewise_constant_schedule(1.0, {5: -0.5}), "boundaries_and_scales"),
    (lambda: optim.piecewise_interpolate_schedule("quadratic", 1.0), "interpolate_type"),
    (lambda: optim.linear_schedule(float("nan"), 0.0, 10), "init_value"),
    (lambda: optim.exponential_decay(1.0, 10, decay_rate=-0.5), "decay_rate"),
    (lambda: optim.cosine_onecycle_schedule(0, 1.0), "transition_steps"),
    (lambda: optim.warmup_cosine_decay_schedule(0.0, 1.0, 10, 5), "decay_steps"),
]


@pytest.mark.parametrize("make, argname", BAD, ids=[b[1] for b in BAD])
def test_bad_schedule_arguments(make, argname):
    with pytest.raises(ValueError, match=argname):
        make()
