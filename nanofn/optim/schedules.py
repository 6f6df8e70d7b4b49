"""optax.schedules: learning-rate schedules (functions of the step count) and injection.

The same objects as at the top of :mod:`nanofn.optim`, importable as a module as in
optax (``from optax import schedules``).

Example:
    >>> from nanofn.optim import schedules
    >>> sched = schedules.linear_schedule(1.0, 0.0, transition_steps=10)
    >>> print(float(sched(5)))
    0.5
"""

from nanofn.optim._base import Schedule as Schedule
from nanofn.optim._combine import (
    InjectHyperparamsState as InjectHyperparamsState,
    inject_hyperparams as inject_hyperparams,
)
from nanofn.optim._schedule import (
    constant_schedule as constant_schedule,
    cosine_decay_schedule as cosine_decay_schedule,
    cosine_onecycle_schedule as cosine_onecycle_schedule,
    exponential_decay as exponential_decay,
    join_schedules as join_schedules,
    linear_onecycle_schedule as linear_onecycle_schedule,
    linear_schedule as linear_schedule,
    piecewise_constant_schedule as piecewise_constant_schedule,
    piecewise_interpolate_schedule as piecewise_interpolate_schedule,
    polynomial_schedule as polynomial_schedule,
    sgdr_schedule as sgdr_schedule,
    warmup_constant_schedule as warmup_constant_schedule,
    warmup_cosine_decay_schedule as warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule as warmup_exponential_decay_schedule,
)

__all__ = [
    "InjectHyperparamsState", "Schedule", "constant_schedule", "cosine_decay_schedule",
    "cosine_onecycle_schedule", "exponential_decay", "inject_hyperparams", "join_schedules",
    "linear_onecycle_schedule", "linear_schedule", "piecewise_constant_schedule",
    "piecewise_interpolate_schedule", "polynomial_schedule", "sgdr_schedule",
    "warmup_constant_schedule", "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]
