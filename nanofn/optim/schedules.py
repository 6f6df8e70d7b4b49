"""optax.schedules: learning-rate schedules (functions of the step count) and injection.

The same objects as at the top of :mod:`nanofn.optim`, importable as a module as in
optax (``from optax import schedules``), plus :class:`StatefulSchedule`, the interface of
the schedules :func:`inject_stateful_hyperparams` takes (as in optax, only here).

Example:
    >>> from nanofn.optim import schedules
    >>> sched = schedules.linear_schedule(1.0, 0.0, transition_steps=10)
    >>> print(float(sched(5)))
    0.5
"""

from typing import Any, Protocol

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
from nanofn.optim._numerics_extra import (
    InjectStatefulHyperparamsState as InjectStatefulHyperparamsState,
    WrappedSchedule as WrappedSchedule,
    inject_stateful_hyperparams as inject_stateful_hyperparams,
)

__all__ = [
    "InjectHyperparamsState", "InjectStatefulHyperparamsState", "Schedule",
    "StatefulSchedule", "WrappedSchedule", "constant_schedule", "cosine_decay_schedule",
    "cosine_onecycle_schedule", "exponential_decay", "inject_hyperparams",
    "inject_stateful_hyperparams", "join_schedules",
    "linear_onecycle_schedule", "linear_schedule", "piecewise_constant_schedule",
    "piecewise_interpolate_schedule", "polynomial_schedule", "sgdr_schedule",
    "warmup_constant_schedule", "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]


class StatefulSchedule(Protocol):
    """The interface of a schedule that keeps a state of its own, as
    :func:`inject_stateful_hyperparams` uses it (a typing protocol: any object with these
    three methods is one; :class:`WrappedSchedule` makes one from a plain schedule).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import schedules
        >>> class Doubling(schedules.StatefulSchedule):  # doubles the value every step
        ...     def init(self):
        ...         return jnp.asarray(0.25)
        ...     def update(self, state, **extra_args):
        ...         return 2 * state
        ...     def __call__(self, state, **extra_args):
        ...         return state
        >>> sched = Doubling()
        >>> print(float(sched(sched.update(sched.init()))))
        0.5
    """

    def init(self) -> Any:
        """The schedule's initial state."""

    def update(self, state: Any, **extra_args) -> Any:
        """The state after one step; ``extra_args`` are those given to the optimizer's
        ``update`` (for example ``value=loss``)."""

    def __call__(self, state: Any, **extra_args) -> Any:
        """The schedule's value at ``state``."""
