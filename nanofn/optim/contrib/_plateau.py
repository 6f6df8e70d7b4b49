"""Reduce-on-plateau: shrink the step size when a monitored value stops improving.

:func:`reduce_on_plateau` is a gradient transformation whose ``update`` takes the
monitored quantity (a training or validation loss) as the keyword ``value``. It
multiplies the updates by a ``scale`` that starts at 1 and is multiplied by ``factor``
each time the (optionally averaged) value has gone ``patience`` checks without a
significant improvement, then waits ``cooldown`` checks before counting again.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

import nanofn.numpy as jnp
from nanofn import tree_util
from nanofn.optim import _base
from nanofn.optim import tree as otu
from nanofn.optim._base import GradientTransformation
from nanofn.optim._transform import _cast, safe_increment

__all__ = ["ReduceLROnPlateauState", "reduce_on_plateau"]

_NAME = "reduce_on_plateau"


class ReduceLROnPlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau`.

    Attributes:
        scale: the factor the updates are multiplied by (1 at the start), in the
            narrowest float dtype of the parameters.
        best_value: the best averaged value seen so far (``inf`` at the start), in the
            widest dtype of the parameters.
        plateau_count: int32, checks in a row without a significant improvement.
        cooldown_count: int32, checks left before plateaus are counted again.
        count: int32, values accumulated since the last check.
        avg_value: the mean of the values accumulated since the last check.
    """

    scale: Any
    best_value: Any
    plateau_count: Any  # int32, shape ()
    cooldown_count: Any  # int32, shape ()
    count: Any  # int32, shape ()
    avg_value: Any


def _check_whole(name: str, value, low: int) -> None:
    """A count-like hyperparameter given as a Python number must be a whole number >= low
    (arrays, which may be traced, are left alone)."""
    _base.check_range(_NAME, name, value, low=low)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value != int(value):
        raise ValueError(f"{_NAME}: argument `{name}` must be a whole number, got {value!r}.")


def reduce_on_plateau(factor: float = 0.1, patience: int = 10, rtol: float = 1e-4,
                      atol: float = 0.0, cooldown: int = 0, accumulation_size: int = 1,
                      min_scale: float = 0.0) -> GradientTransformation:
    """Scales the updates down by ``factor`` whenever the monitored ``value`` plateaus.

    Call ``update(updates, state, params, value=loss)``. The values are averaged over
    ``accumulation_size`` calls; after each such group (a "check") the average counts as
    an improvement when ``avg < (1 - rtol) * best - atol``. After ``patience`` checks in
    a row without one, ``scale`` becomes ``max(scale * factor, min_scale)`` and the next
    ``cooldown`` checks are not counted. The updates are multiplied by the current
    ``scale`` on every call, so chain it after an optimizer to scale its step.

    Args:
        factor: what the scale is multiplied by on a plateau, in (0, 1).
        patience: checks without improvement before the scale is reduced, >= 1.
        rtol: relative tolerance of an improvement, in [0, 1].
        atol: absolute tolerance of an improvement, >= 0 (``rtol`` and ``atol`` are not
            both zero).
        cooldown: checks to skip after a reduction, >= 0.
        accumulation_size: how many values are averaged into one check, >= 1 (use more
            than 1 when ``value`` is a noisy minibatch loss).
        min_scale: the scale never goes below this.

    Returns:
        A :class:`GradientTransformation` with state :class:`ReduceLROnPlateauState`,
        whose ``update`` needs ``value=``.

    Raises:
        ValueError: for an argument outside the ranges above.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.contrib.reduce_on_plateau(factor=0.5, patience=2)
        >>> state = tx.init(jnp.zeros(2))
        >>> for loss in [1.0, 0.5, 0.5, 0.5, 0.5, 0.5]:  # stuck at 0.5 after step 2
        ...     u, state = tx.update(jnp.ones(2), state, value=loss)
        ...     print(float(state.scale), end=" ")
        1.0 1.0 1.0 0.5 0.5 0.25
    """
    _base.check_range(_NAME, "factor", factor, low=0.0, high=1.0, low_open=True,
                      high_open=True)
    _base.check_range(_NAME, "rtol", rtol, low=0.0, high=1.0)
    _base.check_nonneg(_NAME, "atol", atol)
    if _base._is_python_number(rtol) and _base._is_python_number(atol) and \
            float(rtol) == 0.0 and float(atol) == 0.0:
        raise ValueError(f"{_NAME}: at least one of `rtol` and `atol` must be positive, got "
                         f"rtol={rtol!r} and atol={atol!r}.")
    _check_whole("patience", patience, 1)
    _check_whole("cooldown", cooldown, 0)
    _check_whole("accumulation_size", accumulation_size, 1)
    _base.check_finite(_NAME, "min_scale", min_scale)

    def init_fn(params):
        # The scale takes the narrowest dtype so that multiplying updates by it never
        # widens them; the values are tracked in the widest one.
        low_dt = otu.dtype(params, "lowest")
        high_dt = otu.dtype(params, "highest")
        return ReduceLROnPlateauState(
            scale=jnp.asarray(1.0, dtype=low_dt),
            best_value=jnp.asarray(np.inf, dtype=high_dt),
            plateau_count=jnp.asarray(0, dtype=jnp.int32),
            cooldown_count=jnp.asarray(0, dtype=jnp.int32),
            count=jnp.asarray(0, dtype=jnp.int32),
            avg_value=jnp.asarray(0.0, dtype=high_dt))

    def check(state):
        """One plateau check on the accumulated mean; returns the new fields."""
        avg = state.avg_value
        improved = avg < (1 - rtol) * state.best_value - atol
        best = jnp.where(improved, jnp.asarray(avg, dtype=state.best_value.dtype),
                         state.best_value)
        plateau = jnp.where(improved, jnp.asarray(0, dtype=jnp.int32),
                            safe_increment(state.plateau_count))
        cooling = state.cooldown_count > 0
        reduce = jnp.logical_and(jnp.logical_not(cooling), plateau == patience)
        # In cooldown the plateau count is held at zero and the cooldown counts down;
        # otherwise a full plateau reduces the scale and starts a new cooldown.
        new_plateau = jnp.where(jnp.logical_or(cooling, reduce),
                                jnp.asarray(0, dtype=jnp.int32), plateau)
        reduced = jnp.maximum(jnp.where(reduce, state.scale * factor, state.scale), min_scale)
        new_scale = jnp.where(cooling, state.scale, _cast(reduced, state.scale.dtype))
        new_cooldown = jnp.where(
            cooling, state.cooldown_count - 1,
            jnp.asarray(jnp.where(reduce, cooldown, 0), dtype=jnp.int32))
        return best, new_plateau, new_scale, new_cooldown

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args  # unused
        if value is None:
            raise TypeError(f"{_NAME}: `update` needs the monitored quantity as `value=`, e.g. "
                            "`opt.update(grads, state, params, value=loss)`.")
        shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
        if shape != ():
            raise ValueError(f"{_NAME}: `value` must be a scalar (the loss), got an array of "
                             f"shape {shape}.")
        dt = state.avg_value.dtype
        count = safe_increment(state.count)
        avg = ((jnp.asarray(state.count, dtype=dt) * state.avg_value
                + jnp.asarray(value, dtype=dt)) / jnp.asarray(count, dtype=dt))
        avg = _cast(avg, dt)
        best, plateau, scale, cooldown_count = check(state._replace(avg_value=avg))
        due = count == accumulation_size
        zero = jnp.asarray(0, dtype=jnp.int32)
        new_state = ReduceLROnPlateauState(
            scale=jnp.where(due, scale, state.scale),
            best_value=jnp.where(due, best, state.best_value),
            plateau_count=jnp.where(due, plateau, state.plateau_count),
            cooldown_count=jnp.where(due, cooldown_count, state.cooldown_count),
            count=jnp.where(due, zero, count),
            avg_value=jnp.where(due, jnp.zeros((), dtype=dt), avg))
        scale = new_state.scale
        updates = tree_util.tree_map(lambda g: _cast(scale * g, g.dtype), updates)
        return updates, new_state

    return GradientTransformation(init_fn, update_fn)
