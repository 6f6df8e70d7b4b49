"""Schedules: functions from the step count to a hyperparameter value.

A schedule is a plain function ``count -> value``. Optimizers call it with their int32
step count (0 on the first update), possibly traced under ``jit``, so schedules use
array operations (``where``, ``clip``, ``minimum``) instead of Python ``if`` on the
count. Anywhere an optimizer takes a ``learning_rate`` it accepts a float or a
schedule.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import nanofn.numpy as jnp
from nanofn.optim import _base
from nanofn.optim._base import Schedule


def _float_count(count):
    return jnp.asarray(count, dtype=jnp.float32)


def constant_schedule(value: float) -> Schedule:
    """A schedule that always returns ``value``.

    Args:
        value: the constant.

    Returns:
        A schedule ``count -> value``.

    Example:
        >>> from nanofn import optim
        >>> optim.constant_schedule(0.1)(1000)
        0.1
    """
    _base.check_finite("constant_schedule", "value", value)
    return lambda count: value


def polynomial_schedule(init_value: float, end_value: float, power: float,
                        transition_steps: int, transition_begin: int = 0) -> Schedule:
    """Polynomial decay from ``init_value`` to ``end_value`` over ``transition_steps``.

    ``value(t) = (init - end) * (1 - s / transition_steps)^power + end`` with
    ``s = clip(t - transition_begin, 0, transition_steps)``: constant ``init_value``
    before ``transition_begin`` and ``end_value`` after the transition.

    Args:
        init_value: the value before and at the start of the transition.
        end_value: the value after the transition.
        power: the exponent of the polynomial (1 is linear).
        transition_steps: length of the transition; if <= 0 the schedule is the
            constant ``init_value``.
        transition_begin: the step at which the transition starts (negative counts as 0).

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.polynomial_schedule(1.0, 0.0, power=2, transition_steps=10)
        >>> print([round(float(sched(t)), 4) for t in (0, 5, 10, 20)])
        [1.0, 0.25, 0.0, 0.0]
    """
    fn = "polynomial_schedule"
    _base.check_finite(fn, "init_value", init_value)
    _base.check_finite(fn, "end_value", end_value)
    _base.check_finite(fn, "power", power)
    if transition_steps <= 0:
        return lambda count: init_value
    transition_begin = max(transition_begin, 0)

    def schedule(count):
        steps = jnp.clip(_float_count(count) - transition_begin, 0, transition_steps)
        frac = 1 - steps / transition_steps
        return (init_value - end_value) * frac ** power + end_value

    return schedule


def linear_schedule(init_value: float, end_value: float, transition_steps: int,
                    transition_begin: int = 0) -> Schedule:
    """Linear interpolation from ``init_value`` to ``end_value`` over ``transition_steps``.

    Args:
        init_value: the value before and at the start of the transition.
        end_value: the value after the transition.
        transition_steps: length of the transition (<= 0: constant ``init_value``).
        transition_begin: the step at which the transition starts.

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.linear_schedule(0.0, 1.0, transition_steps=4)
        >>> print([round(float(sched(t)), 2) for t in (0, 1, 4, 9)])
        [0.0, 0.25, 1.0, 1.0]
    """
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def piecewise_constant_schedule(init_value: float,
                                boundaries_and_scales: Optional[dict] = None) -> Schedule:
    """Starts at ``init_value`` and multiplies by ``scale`` once the count reaches each boundary.

    Args:
        init_value: the value before the first boundary.
        boundaries_and_scales: ``{boundary_step: scale}``; from ``boundary_step`` on, the
            value is multiplied by ``scale`` (scales must be >= 0).

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.1})
        >>> print([round(float(sched(t)), 3) for t in (0, 1, 2, 3, 4, 9)])
        [1.0, 1.0, 0.5, 0.5, 0.05, 0.05]
    """
    _base.check_finite("piecewise_constant_schedule", "init_value", init_value)
    items = sorted((boundaries_and_scales or {}).items())
    for boundary, s in items:
        _base.check_nonneg("piecewise_constant_schedule",
                           f"boundaries_and_scales[{boundary}]", s)

    def schedule(count):
        value = init_value
        for boundary, s in items:
            value = jnp.where(count >= boundary, value * s, value)
        return jnp.asarray(value, dtype=jnp.float32)

    return schedule


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False,
                      end_value: Optional[float] = None) -> Schedule:
    """Exponential decay: ``init_value * decay_rate^((t - transition_begin) / transition_steps)``.

    Constant before ``transition_begin``; with ``staircase`` the exponent is floored
    (the value drops every ``transition_steps``). ``end_value`` bounds the result (a
    floor when decaying, a ceiling when ``decay_rate > 1``).

    Args:
        init_value: the initial value.
        transition_steps: steps per factor of ``decay_rate`` (<= 0: constant).
        decay_rate: the factor, > 0 (0 gives a constant schedule, as in optax).
        transition_begin: the step at which the decay starts.
        staircase: decay in discrete steps.
        end_value: optional bound of the value.

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.exponential_decay(1.0, transition_steps=10, decay_rate=0.5)
        >>> print([round(float(sched(t)), 4) for t in (0, 10, 20, 5)])
        [1.0, 0.5, 0.25, 0.7071]
    """
    fn = "exponential_decay"
    _base.check_finite(fn, "init_value", init_value)
    _base.check_nonneg(fn, "decay_rate", decay_rate)
    _base.check_finite(fn, "end_value", end_value)
    if transition_steps <= 0 or decay_rate == 0:
        return lambda count: init_value
    transition_begin = max(transition_begin, 0)
    if end_value is not None:
        bound = jnp.maximum if decay_rate < 1.0 else jnp.minimum

    def schedule(count):
        steps = _float_count(count) - transition_begin
        p = steps / transition_steps
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(steps <= 0, init_value, init_value * decay_rate ** p)
        if end_value is not None:
            value = bound(value, end_value)
        return value

    return schedule


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0,
                          exponent: float = 1.0) -> Schedule:
    """Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``.

    ``value(t) = init * ((1 - alpha) * (0.5 * (1 + cos(pi * min(t, T) / T)))^exponent
    + alpha)``.

    Args:
        init_value: the initial value.
        decay_steps: the length of the decay, > 0.
        alpha: the final value as a fraction of ``init_value``.
        exponent: power applied to the cosine factor.

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.cosine_decay_schedule(1.0, decay_steps=10)
        >>> print([round(float(sched(t)), 4) for t in (0, 5, 10, 20)])
        [1.0, 0.5, 0.0, 0.0]
    """
    fn = "cosine_decay_schedule"
    _base.check_finite(fn, "init_value", init_value)
    _base.check_positive(fn, "decay_steps", decay_steps)
    _base.check_finite(fn, "alpha", alpha)
    _base.check_finite(fn, "exponent", exponent)

    def schedule(count):
        t = jnp.minimum(_float_count(count), decay_steps)
        cosine = 0.5 * (1 + jnp.cos(math.pi * t / decay_steps))
        return init_value * ((1 - alpha) * cosine ** exponent + alpha)

    return schedule


def _linear_interpolate(start, end, pct):
    return (end - start) * pct + start


def _cosine_interpolate(start, end, pct):
    return end + (start - end) / 2.0 * (jnp.cos(math.pi * pct) + 1)


def piecewise_interpolate_schedule(interpolate_type: str, init_value: float,
                                   boundaries_and_scales: Optional[dict] = None) -> Schedule:
    """Interpolates between values that change by ``scale`` at each boundary.

    The value at boundary ``b_i`` is ``init_value * scale_1 * ... * scale_i``; between
    boundaries the value goes linearly or along a half cosine from one to the next.

    Args:
        interpolate_type: ``"linear"`` or ``"cosine"``.
        init_value: the value at step 0.
        boundaries_and_scales: ``{boundary_step: scale}``, scales >= 0.

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.piecewise_interpolate_schedule("linear", 1.0, {4: 0.5})
        >>> print([round(float(sched(t)), 3) for t in (0, 2, 4, 8)])
        [1.0, 0.75, 0.5, 0.5]
    """
    fn = "piecewise_interpolate_schedule"
    if interpolate_type == "linear":
        interpolate = _linear_interpolate
    elif interpolate_type == "cosine":
        interpolate = _cosine_interpolate
    else:
        raise ValueError(f"{fn}: argument `interpolate_type` must be 'linear' or 'cosine', "
                         f"got {interpolate_type!r}.")
    _base.check_finite(fn, "init_value", init_value)
    items = sorted((boundaries_and_scales or {}).items())
    for boundary, s in items:
        _base.check_nonneg(fn, f"boundaries_and_scales[{boundary}]", s)
    bounds = [0] + [b for b, _ in items]
    values = [init_value]
    for _, s in items:
        values.append(values[-1] * s)

    def schedule(count):
        t = _float_count(count)
        value = jnp.asarray(values[-1], dtype=jnp.float32)  # after the last boundary
        # Walk the intervals from last to first so the earliest one containing t wins.
        for i in reversed(range(len(bounds) - 1)):
            size = max(bounds[i + 1] - bounds[i], 1)
            pct = (t - bounds[i]) / size
            inside = jnp.logical_and(t >= bounds[i], t < bounds[i + 1])
            value = jnp.where(inside, interpolate(values[i], values[i + 1], pct), value)
        return value

    return schedule


def cosine_onecycle_schedule(transition_steps: int, peak_value: float, pct_start: float = 0.3,
                             div_factor: float = 25.0, final_div_factor: float = 1e4
                             ) -> Schedule:
    """One-cycle schedule: cosine warm-up to ``peak_value``, then cosine annealing.

    Starts at ``peak_value / div_factor``, peaks at step ``pct_start * transition_steps``
    and ends at ``peak_value / (div_factor * final_div_factor)`` at ``transition_steps``.

    Args:
        transition_steps: total length, > 0.
        peak_value: the maximum value.
        pct_start: fraction of the steps spent warming up, in [0, 1].
        div_factor: initial value is ``peak_value / div_factor``, > 0.
        final_div_factor: final value is ``initial value / final_div_factor``, > 0.

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.cosine_onecycle_schedule(100, peak_value=1.0)
        >>> print([round(float(sched(t)), 4) for t in (0, 30, 100)])
        [0.04, 1.0, 0.0]
    """
    fn = "cosine_onecycle_schedule"
    _base.check_positive(fn, "transition_steps", transition_steps)
    _base.check_finite(fn, "peak_value", peak_value)
    _base.check_range(fn, "pct_start", pct_start, low=0.0, high=1.0)
    _base.check_positive(fn, "div_factor", div_factor)
    _base.check_positive(fn, "final_div_factor", final_div_factor)
    return piecewise_interpolate_schedule(
        "cosine", peak_value / div_factor,
        {int(pct_start * transition_steps): div_factor,
         int(transition_steps): 1.0 / (div_factor * final_div_factor)})


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Runs ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]`` counted from
    that boundary, and so on.

    Args:
        schedules: ``n`` schedules.
        boundaries: ``n - 1`` increasing steps where the next schedule takes over.

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.join_schedules(
        ...     [optim.constant_schedule(1.0), optim.linear_schedule(1.0, 0.0, 10)], [5])
        >>> print([round(float(sched(t)), 2) for t in (0, 4, 5, 10, 15)])
        [1.0, 1.0, 1.0, 0.5, 0.0]
    """
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(f"join_schedules: got {len(schedules)} schedules and "
                         f"{len(boundaries)} boundaries; give one boundary fewer than schedules.")

    def schedule(count):
        value = schedules[0](count)
        for boundary, sched in zip(boundaries, schedules[1:]):
            value = jnp.where(jnp.asarray(count) < boundary, value, sched(count - boundary))
        return value

    return schedule


def warmup_cosine_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                 decay_steps: int, end_value: float = 0.0,
                                 exponent: float = 1.0) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value``, then cosine decay to ``end_value``.

    Args:
        init_value: the value at step 0.
        peak_value: the value at the end of the warm-up.
        warmup_steps: length of the warm-up.
        decay_steps: total length of the schedule, warm-up included (> warmup_steps).
        end_value: the value at ``decay_steps`` and after.
        exponent: power applied to the cosine factor.

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.warmup_cosine_decay_schedule(0.0, 1.0, 10, 110, end_value=0.1)
        >>> print([round(float(sched(t)), 3) for t in (0, 5, 10, 60, 110)])
        [0.0, 0.5, 1.0, 0.55, 0.1]
    """
    fn = "warmup_cosine_decay_schedule"
    _base.check_finite(fn, "peak_value", peak_value)
    if decay_steps <= warmup_steps:
        raise ValueError(f"{fn}: argument `decay_steps` ({decay_steps}) counts the warm-up "
                         f"too and must exceed `warmup_steps` ({warmup_steps}).")
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    return join_schedules(
        [linear_schedule(init_value, peak_value, warmup_steps),
         cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)],
        [warmup_steps])


def warmup_exponential_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                      transition_steps: int, decay_rate: float,
                                      transition_begin: int = 0, staircase: bool = False,
                                      end_value: Optional[float] = None) -> Schedule:
    """Linear warm-up to ``peak_value``, then :func:`exponential_decay` from it.

    Args:
        init_value: the value at step 0.
        peak_value: the value at the end of the warm-up.
        warmup_steps: length of the warm-up.
        transition_steps: steps per factor of ``decay_rate`` after the warm-up.
        decay_rate: the decay factor.
        transition_begin: delay (after the warm-up) before the decay starts.
        staircase: decay in discrete steps.
        end_value: optional bound of the value.

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.warmup_exponential_decay_schedule(0.0, 1.0, 10, 10, 0.5)
        >>> print([round(float(sched(t)), 3) for t in (0, 5, 10, 20)])
        [0.0, 0.5, 1.0, 0.5]
    """
    return join_schedules(
        [linear_schedule(init_value, peak_value, warmup_steps),
         exponential_decay(peak_value, transition_steps, decay_rate, transition_begin,
                           staircase, end_value)],
        [warmup_steps])


def sgdr_schedule(cosine_kwargs: Iterable[dict]) -> Schedule:
    """SGD with warm restarts: one warm-up-cosine cycle after another.

    Args:
        cosine_kwargs: one dict of :func:`warmup_cosine_decay_schedule` arguments per
            cycle; cycle ``i`` lasts ``decay_steps`` steps.

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=2, decay_steps=10)
        >>> sched = optim.sgdr_schedule([cycle, cycle])
        >>> print([round(float(sched(t)), 3) for t in (2, 10, 12)])
        [1.0, 0.0, 1.0]
    """
    schedules, boundaries, step = [], [], 0
    for kwargs in cosine_kwargs:
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        step += kwargs["decay_steps"]
        boundaries.append(step)
    if not schedules:
        raise ValueError("sgdr_schedule: `cosine_kwargs` must describe at least one cycle.")
    return join_schedules(schedules, boundaries[:-1])


def warmup_constant_schedule(init_value: float, peak_value: float, warmup_steps: int
                             ) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then constant.

    Args:
        init_value: the value at step 0.
        peak_value: the value from ``warmup_steps`` on.
        warmup_steps: length of the warm-up.

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.warmup_constant_schedule(0.0, 1.0, 10)
        >>> print([round(float(sched(t)), 4) for t in (0, 5, 10, 50)])
        [0.0, 0.5, 1.0, 1.0]
    """
    return linear_schedule(init_value=init_value, end_value=peak_value,
                           transition_steps=warmup_steps)


def linear_onecycle_schedule(transition_steps: int, peak_value: float, pct_start: float = 0.3,
                             pct_final: float = 0.85, div_factor: float = 25.0,
                             final_div_factor: float = 1e4) -> Schedule:
    """One-cycle schedule with linear pieces: up to ``peak_value``, back down, then annealed.

    Starts at ``peak_value / div_factor``, reaches ``peak_value`` at
    ``pct_start * transition_steps``, returns to the start value at
    ``pct_final * transition_steps`` and ends at ``start / final_div_factor``.

    Args:
        transition_steps: total length, > 0.
        peak_value: the maximum value.
        pct_start: fraction of the steps spent going up.
        pct_final: fraction of the steps at which the way down ends.
        div_factor: the start value is ``peak_value / div_factor``.
        final_div_factor: the last value is the start value over this.

    Returns:
        A schedule.

    Example:
        >>> from nanofn import optim
        >>> sched = optim.linear_onecycle_schedule(100, peak_value=1.0)
        >>> print([round(float(sched(t)), 4) for t in (0, 30, 85, 100)])
        [0.04, 1.0, 0.04, 0.0]
    """
    fn = "linear_onecycle_schedule"
    _base.check_positive(fn, "transition_steps", transition_steps)
    return piecewise_interpolate_schedule(
        "linear", peak_value / div_factor,
        {int(pct_start * transition_steps): div_factor,
         int(pct_final * transition_steps): 1.0 / div_factor,
         int(transition_steps): 1.0 / final_div_factor})
