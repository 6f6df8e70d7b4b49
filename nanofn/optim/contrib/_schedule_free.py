"""Schedule-Free optimization (Defazio et al., 2024): no learning-rate decay needed.

:func:`schedule_free` wraps a momentum-free base optimizer. The base optimizer's steps
move a sequence ``z``; the parameters the wrapper hands back (where gradients are
taken) are ``y = b1 x + (1 - b1) z``, where ``x`` is a running weighted average of the
``z`` iterates. Evaluate the model at ``x``, which
:func:`schedule_free_eval_params` recovers from ``y`` and the state. With a gradient
step as the base optimizer one step reads::

    y_t     = (1 - b1) z_t + b1 x_t
    z_{t+1} = z_t - lr grad f(y_t)
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}

with ``c_{t+1} = w_t / (w_1 + ... + w_t)`` and ``w_t = max_{s <= t} lr_s ** weight_lr_power``.
:func:`schedule_free_sgd` and :func:`schedule_free_adamw` are the usual pairings.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

import nanofn.numpy as jnp
from nanofn import tree_util
from nanofn.optim import _base, _transform
from nanofn.optim import tree as otu
from nanofn.optim._alias import sgd
from nanofn.optim._base import (
    NO_PARAMS_MSG,
    GradientTransformation,
    ScalarOrSchedule,
    with_extra_args_support,
)
from nanofn.optim._combine import chain
from nanofn.optim._schedule import warmup_constant_schedule
from nanofn.optim._transform import _cast, safe_increment

__all__ = ["ScheduleFreeState", "schedule_free", "schedule_free_adamw",
           "schedule_free_eval_params", "schedule_free_sgd"]


class ScheduleFreeState(NamedTuple):
    """State of :func:`schedule_free`.

    Attributes:
        b1: the interpolation coefficient, a scalar in the params' (narrowest) dtype.
        weight_sum: the sum of the averaging weights so far.
        step_count: int32, the number of the next step (1 at the start).
        max_lr: the largest learning rate seen so far.
        base_optimizer_state: the wrapped optimizer's state.
        z: the base optimizer's iterates, a pytree like the params.
    """

    b1: Any
    weight_sum: Any
    step_count: Any  # int32, shape ()
    max_lr: Any
    base_optimizer_state: Any
    z: Any


def schedule_free_eval_params(state: Any, params: Any) -> Any:
    """The averaged parameters ``x`` to evaluate a :func:`schedule_free` model at.

    Training moves the interpolated parameters ``y = b1 x + (1 - b1) z``; this returns
    ``x = (y - (1 - b1) z) / b1`` from them and the optimizer's state.

    Args:
        state: the :class:`ScheduleFreeState` of the schedule-free optimizer (when it
            sits in a :func:`chain`, pass its own entry of the chain's state).
        params: the current (training) parameters.

    Returns:
        A pytree like ``params``, with their dtypes.

    Raises:
        ValueError: if ``state`` is not a schedule-free state, or the trees differ.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> opt = optim.contrib.schedule_free_sgd(learning_rate=0.5)
        >>> params = jnp.array([1.0, -2.0])
        >>> state = opt.init(params)
        >>> updates, state = opt.update(2 * params, state, params)  # grad of sum(x**2)
        >>> params = optim.apply_updates(params, updates)
        >>> print(optim.contrib.schedule_free_eval_params(state, params).tolist())
        [0.0, 0.0]
    """
    b1 = getattr(state, "b1", None)
    z = getattr(state, "z", None)
    if b1 is None or z is None:
        raise ValueError(
            "schedule_free_eval_params: `state` must be the ScheduleFreeState of a "
            f"schedule-free optimizer (with fields b1 and z), got {type(state).__name__}.")
    return _base.tree_map_checked(
        lambda y, zi: _cast((y - (1.0 - b1) * zi) / b1, y.dtype), params, z,
        names=("params", "state.z"), where="schedule_free_eval_params")


def schedule_free(base_optimizer: GradientTransformation, learning_rate: ScalarOrSchedule,
                  b1: float = 0.9, weight_lr_power: float = 2.0,
                  state_dtype: Optional[Any] = None) -> GradientTransformation:
    r"""Makes ``base_optimizer`` schedule-free: interpolation and averaging replace momentum.

    The base optimizer (which should have no momentum of its own, e.g. ``sgd`` or Adam
    with ``b1=0``) moves the sequence ``z`` kept in the state; the parameters returned
    are ``y = b1 x + (1 - b1) z``, where ``x`` averages the ``z`` iterates with weights
    ``max_lr ** weight_lr_power`` (``max_lr`` being the largest learning rate so far).
    Gradients are taken at ``y``; evaluate at ``x`` with
    :func:`schedule_free_eval_params`. A warm-up is still useful, a decay is not.

    Args:
        base_optimizer: the optimizer computing the steps of ``z``; it is given any
            extra keyword arguments of ``update``.
        learning_rate: the learning rate the base optimizer uses (a float, or a
            schedule with a warm-up and no decay), read here for the averaging weights.
            A schedule is evaluated at the step number counted from 1.
        b1: the interpolation coefficient, in (0, 1].
        weight_lr_power: the exponent of the averaging weights.
        state_dtype: dtype of ``z``; ``None`` keeps the params' dtypes.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScheduleFreeState`; its
        ``update`` needs ``params``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> opt = optim.contrib.schedule_free(optim.adam(0.5, b1=0.0), learning_rate=0.5)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = opt.init(params)
        >>> for _ in range(10):
        ...     updates, state = opt.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> eval_params = optim.contrib.schedule_free_eval_params(state, params)
        >>> print(round(float(f(eval_params)), 4))
        0.6157

    References:
        Defazio et al., The Road Less Scheduled, 2024 (https://arxiv.org/abs/2405.15682).
    """
    if not (hasattr(base_optimizer, "init") and hasattr(base_optimizer, "update")):
        raise TypeError("schedule_free: `base_optimizer` must be a GradientTransformation, got "
                        f"{type(base_optimizer).__name__}.")
    _base.check_nonneg("schedule_free", "learning_rate", learning_rate)
    _base.check_range("schedule_free", "b1", b1, low=0.0, high=1.0, low_open=True,
                      hint=" (x is recovered from the params by dividing by b1)")
    _base.check_finite("schedule_free", "weight_lr_power", weight_lr_power)
    base = with_extra_args_support(base_optimizer)
    z_dtype = _transform._canonical_dtype(state_dtype)

    def init_fn(params):
        dt = otu.dtype(params, "lowest")
        # nanofn arrays are immutable (and jit ignores donation), so z may share the
        # params' buffers until the first step; state_dtype casts it
        z = tree_util.tree_map(lambda p: jnp.asarray(p, dtype=z_dtype), params)
        return ScheduleFreeState(
            b1=jnp.asarray(b1, dtype=dt), weight_sum=jnp.zeros((), dtype=dt),
            step_count=jnp.ones((), dtype=jnp.int32), max_lr=jnp.zeros((), dtype=dt),
            base_optimizer_state=base.init(params), z=z)

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("schedule_free: " + NO_PARAMS_MSG)
        dt = state.max_lr.dtype
        lr = learning_rate(state.step_count) if callable(learning_rate) else learning_rate
        max_lr = jnp.maximum(state.max_lr, jnp.asarray(lr, dtype=dt))
        weight = max_lr ** weight_lr_power
        weight_sum = state.weight_sum + weight
        # the averaging coefficient; 0/0 (all learning rates zero so far) means "keep x"
        ck = jnp.where(jnp.isnan(weight) | jnp.isnan(weight_sum), jnp.asarray(np.nan, dtype=dt),
                       jnp.nan_to_num(weight / weight_sum, nan=0.0, posinf=np.inf))

        base_updates, base_state = base.update(updates, state.base_optimizer_state, params,
                                               **extra_args)
        treedef, (ps, zs, us) = _transform._flatten_all(
            "schedule_free", ("params", "state.z", "updates"), params, state.z, base_updates)
        _base.check_update_shapes("schedule_free", base_updates, params)
        new_z, new_u = [], []
        for p, z_prev, u in zip(ps, zs, us):
            z = _cast(z_prev + u, z_prev.dtype)
            # x is recomputed from the params each step rather than stored
            x_prev = (p - (1.0 - b1) * z_prev) / b1
            x = (1.0 - ck) * x_prev + ck * z
            new_p = b1 * x + (1.0 - b1) * z
            new_z.append(z)
            new_u.append(_cast(new_p - p, p.dtype))
        new_state = ScheduleFreeState(
            b1=state.b1, weight_sum=weight_sum, step_count=safe_increment(state.step_count),
            max_lr=max_lr, base_optimizer_state=base_state,
            z=tree_util.tree_unflatten(treedef, new_z))
        return tree_util.tree_unflatten(treedef, new_u), new_state

    return GradientTransformation(init_fn, update_fn)


def _warmed_up(fn: str, learning_rate, warmup_steps):
    if warmup_steps is None:
        return learning_rate
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)):
        raise TypeError(f"{fn}: argument `warmup_steps` must be a positive int or None, got "
                        f"{warmup_steps!r}.")
    _base.check_range(fn, "warmup_steps", warmup_steps, low=1)
    return warmup_constant_schedule(init_value=0.0, peak_value=learning_rate,
                                    warmup_steps=warmup_steps)


def schedule_free_sgd(learning_rate: float = 1.0, warmup_steps: Optional[int] = None,
                      b1: float = 0.9, weight_decay: Optional[float] = None,
                      weight_lr_power: float = 2.0, state_dtype: Optional[Any] = None
                      ) -> GradientTransformation:
    """Schedule-free SGD: :func:`schedule_free` around plain ``sgd``.

    Args:
        learning_rate: the SGD learning rate, >= 0.
        warmup_steps: if given (a positive int), the learning rate rises linearly from 0
            to ``learning_rate`` over this many steps.
        b1: the interpolation coefficient of :func:`schedule_free`, in (0, 1].
        weight_decay: if given, ``weight_decay * params`` is added to the gradient before
            the SGD step (so it is multiplied by the learning rate, as in PyTorch).
        weight_lr_power: the exponent of the averaging weights.
        state_dtype: dtype of the ``z`` sequence; ``None`` keeps the params' dtypes.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScheduleFreeState`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.schedule_free_sgd()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(5):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        ...     x = optim.contrib.schedule_free_eval_params(state, params)
        ...     print(f"{float(f(x)):.2E}")
        1.40E+01
        0.00E+00
        9.96E-01
        8.06E-01
        2.41E-01
    """
    learning_rate = _warmed_up("schedule_free_sgd", learning_rate, warmup_steps)
    optimizer = sgd(learning_rate)
    if weight_decay is not None:
        optimizer = chain(_transform.add_decayed_weights(weight_decay), optimizer)
    return schedule_free(optimizer, learning_rate=learning_rate, b1=b1,
                         weight_lr_power=weight_lr_power, state_dtype=state_dtype)


def schedule_free_adamw(learning_rate: float = 0.0025, warmup_steps: Optional[int] = None,
                        b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                        weight_decay: float = 0.0, weight_lr_power: float = 2.0,
                        state_dtype: Optional[Any] = None) -> GradientTransformation:
    """Schedule-free AdamW: :func:`schedule_free` around AdamW without momentum.

    The base optimizer is ``chain(scale_by_rms(b2, eps, eps_in_sqrt=False,
    bias_correction=True), add_decayed_weights(weight_decay),
    scale_by_learning_rate(learning_rate))``, which is AdamW with ``b1=0`` without the
    (always zero) first moment; ``b1`` here is the schedule-free interpolation.

    Args:
        learning_rate: the AdamW learning rate, >= 0.
        warmup_steps: if given (a positive int), the learning rate rises linearly from 0
            to ``learning_rate`` over this many steps.
        b1: the interpolation coefficient of :func:`schedule_free`, in (0, 1].
        b2: decay of the moving average of squared gradients, in [0, 1).
        eps: added to the square root in the denominator.
        weight_decay: decoupled weight decay (multiplied by the learning rate).
        weight_lr_power: the exponent of the averaging weights.
        state_dtype: dtype of the ``z`` sequence; ``None`` keeps the params' dtypes.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScheduleFreeState`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.schedule_free_adamw(1.0)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(5):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        ...     x = optim.contrib.schedule_free_eval_params(state, params)
        ...     print(f"{float(f(x)):.2E}")
        5.00E+00
        3.05E+00
        1.73E+00
        8.94E-01
        4.13E-01
    """
    _base.check_rate("schedule_free_adamw", "b2", b2)
    _base.check_nonneg("schedule_free_adamw", "eps", eps)
    learning_rate = _warmed_up("schedule_free_adamw", learning_rate, warmup_steps)
    optimizer = chain(
        _transform.scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
        _transform.add_decayed_weights(weight_decay),
        _transform.scale_by_learning_rate(learning_rate))
    return schedule_free(optimizer, learning_rate=learning_rate, b1=b1,
                         weight_lr_power=weight_lr_power, state_dtype=state_dtype)
