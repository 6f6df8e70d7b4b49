"""Learning-rate-free optimizers of optax.contrib: Prodigy, D-Adaptation AdamW, DoG, DoWG,
Mechanic and COCOB.

Each method estimates the scale of its steps on the fly (a distance to the solution,
a betting wealth, ...), so the ``learning_rate`` they take is a multiplier around 1.0
(typically a schedule), not a tuned step size. Names, arguments, defaults, state
fields and arithmetic follow ``optax.contrib`` (optax 0.2.8).

The scalar estimates of the states (distances, numerators, wealth) take the narrowest
floating dtype of the params, as optax does, so float32 models keep float32 states.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

import nanofn.numpy as jnp
from nanofn.optim import _base
from nanofn.optim import tree as otu
from nanofn.optim._base import NO_PARAMS_MSG, GradientTransformation, ScalarOrSchedule, Updates
from nanofn.optim._combine import chain
from nanofn.optim._transform import (
    _flatten_all,
    _unflatten,
    _zeros_count,
    add_decayed_weights,
    safe_increment,
    scale_by_learning_rate,
)

__all__ = [
    "COCOBState", "DAdaptAdamWState", "DoGState", "DoWGState", "MechanicState",
    "ProdigyState", "cocob", "dadapt_adamw", "dog", "dowg", "mechanize", "prodigy",
    "scale_by_cocob",
]

_DOG_INIT_STEPS = ("distance", "learning_rate", "heuristic")


# --- helpers ------------------------------------------------------------------------------


def _need_params(where: str, params) -> None:
    if params is None:
        raise ValueError(f"{where}: {NO_PARAMS_MSG}")


def _leaves(where: str, updates, params, **state_trees):
    """Flattens ``updates``, ``params`` and the state's parameter-shaped trees, checking
    that they share one structure and that each update has its parameter's shape."""
    _base.check_update_shapes(where, updates, params)
    names = ("updates", "params") + tuple(f"state.{k}" for k in state_trees)
    return _flatten_all(where, names, updates, params, *state_trees.values())


def _params_dtype(params):
    """The narrowest floating dtype among the params (float32 when there are none)."""
    dtype = otu.dtype(params, "lowest")
    return dtype if np.issubdtype(dtype, np.inexact) else np.dtype(np.float32)


def _schedule_value(learning_rate, count):
    return learning_rate(count) if callable(learning_rate) else learning_rate


def _check_betas(fn: str, betas) -> tuple:
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"{fn}: argument `betas` must be a pair (beta1, beta2), got {betas!r}.")
    _base.check_rate(fn, "betas[0]", betas[0])
    _base.check_rate(fn, "betas[1]", betas[1])
    return tuple(betas)


def _sum_abs(leaves):
    total = None
    for x in leaves:
        part = jnp.sum(jnp.abs(x))
        total = part if total is None else total + part
    return jnp.asarray(0.0) if total is None else total


def _vdot(xs, ys):
    total = None
    for x, y in zip(xs, ys):
        part = jnp.vdot(x, y)
        total = part if total is None else total + part
    return jnp.asarray(0.0) if total is None else total


def _sq_norm(leaves):
    total = None
    for x in leaves:
        part = jnp.sum(_base.abs_sq(x))  # |x|^2: real for complex x, as optax.tree.norm
        total = part if total is None else total + part
    return jnp.asarray(0.0) if total is None else total


# --- Prodigy ------------------------------------------------------------------------------


class ProdigyState(NamedTuple):
    """State of :func:`prodigy`."""

    exp_avg: Updates  # first moment of the d-scaled gradients
    exp_avg_sq: Updates  # second moment of the d-scaled gradients
    grad_sum: Updates  # weighted running sum of the gradients (denominator of d)
    params0: Updates  # the parameters at init
    estim_lr: Any  # d, the estimated distance to the solution, shape ()
    numerator_weighted: Any  # numerator of the estimate of d, shape ()
    count: Any  # int32, shape ()


def prodigy(learning_rate: ScalarOrSchedule = 1.0, betas: tuple = (0.9, 0.999),
            beta3: Optional[float] = None, eps: float = 1e-8, estim_lr0: float = 1e-6,
            estim_lr_coef: float = 1.0, weight_decay: float = 0.0,
            safeguard_warmup: bool = False) -> GradientTransformation:
    r"""Prodigy: AdamW whose base step size ``d`` is estimated as it runs.

    A variant of D-Adaptation (:func:`dadapt_adamw`) that grows its estimate ``d``
    of the distance to the solution faster, by weighting recent gradients more. With
    ``t`` the step number, ``x_0`` the initial params and ``lr_t`` the schedule value::

        dlr   = d lr_t sqrt(1 - b2^t) / (1 - b1^t)
        m     = b1 m + (1 - b1) d g,    v = b2 v + (1 - b2) d^2 g^2
        s     = b3 s + dlr d g / d_0    (``d`` in place of ``dlr`` with safeguard_warmup)
        r     = b3 r + (d / d_0) dlr <g, x_0 - x>
        d_new = max(d, estim_lr_coef r / ||s||_1)
        u     = -dlr (m / (sqrt(v) + d_new eps) + weight_decay x)

    The learning rate is a multiplier of the estimated step: keep it around 1.0 and
    use it for a schedule (warmup, then decay to 0). ``update`` needs ``params``.

    Args:
        learning_rate: a float or a schedule, multiplying the estimated step size.
        betas: ``(b1, b2)``, the decays of Adam's two moments, each in [0, 1).
        beta3: decay of the sums that estimate ``d``; ``None`` uses ``sqrt(b2)``.
        eps: added to the denominator (scaled by ``d``), as Adam's ``eps``.
        estim_lr0: the initial under-estimate ``d_0`` of the step size, > 0.
        estim_lr_coef: multiplies each new estimate of ``d``.
        weight_decay: decoupled (AdamW-style) weight decay.
        safeguard_warmup: leave the schedule out of the sum ``s``, which avoids
            overestimating ``d`` while a warmup keeps ``lr_t`` small.

    Returns:
        A :class:`GradientTransformation` with state :class:`ProdigyState`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.prodigy()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(30):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(f(params)), 2), round(float(state.estim_lr), 3))  # d grew from 1e-6
        12.72 0.056

    References:
        Mishchenko and Defazio, Prodigy: An Expeditiously Adaptive Parameter-Free
        Learner, 2023 (arXiv:2306.06101).
    """
    fn = "prodigy"
    _base.check_nonneg(fn, "learning_rate", learning_rate)
    beta1, beta2 = _check_betas(fn, betas)
    if beta3 is None:
        beta3 = beta2 ** 0.5
    _base.check_rate(fn, "beta3", beta3, allow_one=True)
    _base.check_nonneg(fn, "eps", eps)
    _base.check_positive(fn, "estim_lr0", estim_lr0)
    _base.check_nonneg(fn, "estim_lr_coef", estim_lr_coef)
    _base.check_nonneg(fn, "weight_decay", weight_decay)

    def init_fn(params):
        dtype = _params_dtype(params)
        return ProdigyState(
            exp_avg=otu.zeros_like(params), exp_avg_sq=otu.zeros_like(params),
            grad_sum=otu.zeros_like(params), params0=params,
            estim_lr=jnp.asarray(estim_lr0, dtype=dtype),
            numerator_weighted=jnp.zeros((), dtype=dtype), count=_zeros_count())

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        _need_params(fn, params)
        treedef, (gs, ps, p0s, ms, vs, ss) = _leaves(
            fn, updates, params, params0=state.params0, exp_avg=state.exp_avg,
            exp_avg_sq=state.exp_avg_sq, grad_sum=state.grad_sum)
        d = state.estim_lr
        count = safe_increment(state.count)
        sched = _schedule_value(learning_rate, state.count)
        bias = (1 - beta2 ** count) ** 0.5 / (1 - beta1 ** count)
        dlr = jnp.asarray(d * sched * bias, dtype=d.dtype)
        dgs = [d * g for g in gs]
        # <g, x_0 - x>: how far the gradients have pointed back towards the start
        numerator_step = _vdot(gs, [p0 - p for p0, p in zip(p0s, ps)])
        new_m = [beta1 * m + (1 - beta1) * dg for m, dg in zip(ms, dgs)]
        new_v = [beta2 * v + (1 - beta2) * dg * dg for v, dg in zip(vs, dgs)]
        s_weight = d if safeguard_warmup else dlr
        new_s = [beta3 * s + s_weight * dg / estim_lr0 for s, dg in zip(ss, dgs)]
        numerator = beta3 * state.numerator_weighted + (d / estim_lr0) * dlr * numerator_step
        new_d = jnp.maximum(d, estim_lr_coef * numerator / _sum_abs(new_s))
        # optax's order: the step uses the previous d (in dlr) and the new one (with eps)
        new_u = [-weight_decay * dlr * p - dlr * m / (jnp.sqrt(v) + new_d * eps)
                 for m, v, p in zip(new_m, new_v, ps)]
        return _unflatten(treedef, new_u), ProdigyState(
            exp_avg=_unflatten(treedef, new_m), exp_avg_sq=_unflatten(treedef, new_v),
            grad_sum=_unflatten(treedef, new_s), params0=state.params0, estim_lr=new_d,
            numerator_weighted=numerator, count=count)

    return GradientTransformation(init_fn, update_fn)


# --- D-Adaptation AdamW -------------------------------------------------------------------


class DAdaptAdamWState(NamedTuple):
    """State of :func:`dadapt_adamw`."""

    exp_avg: Updates  # first moment of the dlr-scaled gradients
    exp_avg_sq: Updates  # second moment of the gradients
    grad_sum: Updates  # exponential moving sum of the dlr-scaled gradients
    estim_lr: Any  # d, the estimated distance to the solution, shape ()
    numerator_weighted: Any  # numerator of the estimate of d, shape ()
    count: Any  # int32, shape ()


def dadapt_adamw(learning_rate: ScalarOrSchedule = 1.0, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, estim_lr0: float = 1e-6, weight_decay: float = 0.0
                 ) -> GradientTransformation:
    r"""D-Adaptation AdamW: AdamW whose base step size ``d`` is estimated as it runs.

    ``d`` estimates the distance from the initial params to the solution (in the
    infinity norm) and only grows. With ``t`` the step number, ``lr_t`` the schedule
    value and ``c = sqrt(b2)``::

        dlr   = d lr_t sqrt(1 - b2^t) / (1 - b1^t)
        r     = c r + (1 - c) dlr <g, s / (sqrt(v) + eps)>     (s, v before this step)
        m     = b1 m + (1 - b1) dlr g,   v = b2 v + (1 - b2) g^2
        s     = c s + (1 - c) dlr g
        d_new = max(d, r / ((1 - c) ||s||_1))
        u     = -(m / (sqrt(v) + eps) + weight_decay dlr x)

    Keep ``learning_rate`` around 1.0 and use it for a schedule. ``update`` needs
    ``params``.

    Args:
        learning_rate: a float or a schedule, multiplying the estimated step size.
        betas: ``(b1, b2)``, the decays of Adam's two moments, each in [0, 1).
        eps: added to the denominator outside the square root.
        estim_lr0: the initial under-estimate of ``d``, > 0.
        weight_decay: decoupled (AdamW-style) weight decay.

    Returns:
        A :class:`GradientTransformation` with state :class:`DAdaptAdamWState`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.dadapt_adamw()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(30):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(f(params)), 2), round(float(state.estim_lr), 2))  # d grew from 1e-6
        8.59 0.77

    References:
        Defazio and Mishchenko, Learning-Rate-Free Learning by D-Adaptation, ICML 2023.
    """
    fn = "dadapt_adamw"
    _base.check_nonneg(fn, "learning_rate", learning_rate)
    beta1, beta2 = _check_betas(fn, betas)
    _base.check_nonneg(fn, "eps", eps)
    _base.check_positive(fn, "estim_lr0", estim_lr0)
    _base.check_nonneg(fn, "weight_decay", weight_decay)

    def init_fn(params):
        dtype = _params_dtype(params)
        return DAdaptAdamWState(
            exp_avg=otu.zeros_like(params), exp_avg_sq=otu.zeros_like(params),
            grad_sum=otu.zeros_like(params), estim_lr=jnp.asarray(estim_lr0, dtype=dtype),
            numerator_weighted=jnp.zeros((), dtype=dtype), count=_zeros_count())

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        _need_params(fn, params)
        treedef, (gs, ps, ms, vs, ss) = _leaves(
            fn, updates, params, exp_avg=state.exp_avg, exp_avg_sq=state.exp_avg_sq,
            grad_sum=state.grad_sum)
        sb2 = beta2 ** 0.5
        sched = _schedule_value(learning_rate, state.count)
        count = safe_increment(state.count)
        bias = (1 - beta2 ** count) ** 0.5 / (1 - beta1 ** count)
        dlr = jnp.asarray(state.estim_lr * sched * bias, dtype=state.numerator_weighted.dtype)
        numerator_step = _vdot(gs, [s / (jnp.sqrt(v) + eps) for s, v in zip(ss, vs)])
        new_m = [beta1 * m + (1 - beta1) * dlr * g for m, g in zip(ms, gs)]
        new_v = [beta2 * v + (1 - beta2) * g * g for v, g in zip(vs, gs)]
        new_s = [sb2 * s + (1 - sb2) * dlr * g for s, g in zip(ss, gs)]
        numerator = sb2 * state.numerator_weighted + (1 - sb2) * dlr * numerator_step
        d_estimate = numerator / ((1 - sb2) * _sum_abs(new_s))
        new_d = jnp.maximum(state.estim_lr, d_estimate)
        new_u = [-weight_decay * dlr * p - m / (jnp.sqrt(v) + eps)
                 for m, v, p in zip(new_m, new_v, ps)]
        return _unflatten(treedef, new_u), DAdaptAdamWState(
            exp_avg=_unflatten(treedef, new_m), exp_avg_sq=_unflatten(treedef, new_v),
            grad_sum=_unflatten(treedef, new_s), estim_lr=new_d,
            numerator_weighted=numerator, count=count)

    return GradientTransformation(init_fn, update_fn)


# --- DoG and DoWG -------------------------------------------------------------------------


class DoGState(NamedTuple):
    """State of :func:`dog` (of its scaling block)."""

    is_init_step: Any  # bool, shape ()
    init_params: Updates  # the parameters at init
    max_dist: Any  # largest distance from init_params seen so far, shape ()
    sum_sq_norm_grads: Any  # sum of the squared gradient norms, shape ()


def scale_by_dog(init_step: tuple, eps: float = 1e-8) -> GradientTransformation:
    """Scales the updates by DoG's step ``max_dist / sqrt(sum of ||g||^2 + eps)``. See :func:`dog`.

    optax 0.2.8 keeps this block private to ``optax.contrib._dog``; it is public here
    for chaining, but not exported by ``nanofn.optim.contrib``.

    Args:
        init_step: ``(tag, value)`` with tag ``"distance"``, ``"learning_rate"`` or
            ``"heuristic"``, as in :func:`dog`.
        eps: added to the sum of squared gradient norms.

    Returns:
        A :class:`GradientTransformation` with state :class:`DoGState`; ``update``
        needs ``params``. Its updates point uphill, as the gradients do.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.contrib import _parameter_free as pf
        >>> tx = pf.scale_by_dog(("learning_rate", 0.5))
        >>> params = jnp.array([1.0])
        >>> u, state = tx.update(jnp.array([2.0]), tx.init(params), params)
        >>> print(float(u[0]))
        1.0
    """
    fn = "scale_by_dog"
    init_step_type, init_step_value = _check_dog_init_step(fn, init_step)
    _base.check_nonneg(fn, "eps", eps)

    def init_fn(params):
        dtype = _params_dtype(params)
        if init_step_type == "distance":
            r_epsilon = init_step_value
        elif init_step_type == "heuristic":
            r_epsilon = init_step_value * (1 + otu.norm(params))
        else:  # "learning_rate": the first step uses the value given instead
            r_epsilon = 0.0
        return DoGState(is_init_step=jnp.asarray(True), init_params=params,
                        max_dist=jnp.asarray(r_epsilon, dtype=dtype),
                        sum_sq_norm_grads=jnp.asarray(0.0, dtype=dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        _need_params(fn, params)
        treedef, (gs, ps, p0s) = _leaves(fn, updates, params, init_params=state.init_params)
        dist = jnp.sqrt(_sq_norm([p0 - p for p0, p in zip(p0s, ps)]))
        max_dist = jnp.maximum(state.max_dist, dist)
        sum_sq = state.sum_sq_norm_grads + _sq_norm(gs)
        step = max_dist / jnp.sqrt(sum_sq + eps)
        if init_step_type == "learning_rate":
            step = jnp.where(state.is_init_step, init_step_value, step)
        new_u = [step * g for g in gs]
        return _unflatten(treedef, new_u), DoGState(
            is_init_step=jnp.asarray(False), init_params=state.init_params,
            max_dist=max_dist, sum_sq_norm_grads=sum_sq)

    return GradientTransformation(init_fn, update_fn)


def _check_dog_init_step(fn: str, init_step):
    if not (isinstance(init_step, (tuple, list)) and len(init_step) == 2
            and init_step[0] in _DOG_INIT_STEPS):
        raise ValueError(
            f"{fn}: argument `init_step` must be a pair (tag, value) with tag one of "
            f"{_DOG_INIT_STEPS}, got {init_step!r}.")
    _base.check_nonneg(fn, "init_step[1]", init_step[1])
    return init_step[0], init_step[1]


def _decay_or_identity(fn: str, weight_decay, mask) -> GradientTransformation:
    if weight_decay is None:
        return _base.identity()
    _base.check_finite(fn, "weight_decay", weight_decay)
    return add_decayed_weights(weight_decay, mask)


def dog(learning_rate: ScalarOrSchedule = 1.0, init_step: tuple = ("heuristic", 1e-6),
        eps: float = 1e-8, weight_decay: Optional[float] = None,
        mask: Optional[Union[Any, Callable[[Any], Any]]] = None) -> GradientTransformation:
    r"""DoG (Distance over Gradients): SGD with a step size set by the distance travelled.

    ::

        r_t   = max(r_eps, max_{k <= t} ||x_k - x_0||)
        G_t   = sum_{k <= t} ||g_k||^2
        x_t+1 = x_t - lr_t r_t / sqrt(G_t + eps) g_t

    ``init_step`` sets the first step, which must be small:

    - ``("distance", r)``: ``r_eps = r``;
    - ``("heuristic", a)``: ``r_eps = a (1 + ||x_0||)`` (the authors suggest ``a = 1e-6``,
      or ``1e-4`` with batch normalization); ``init`` must then see the real params;
    - ``("learning_rate", eta)``: the first step is ``eta g_0`` (and ``r_eps = 0``).

    The authors recommend averaging the iterates. ``update`` needs ``params``.

    Args:
        learning_rate: a float or a schedule multiplying DoG's step.
        init_step: ``(tag, value)`` as above.
        eps: added to the sum of squared gradient norms.
        weight_decay: if not ``None``, ``weight_decay * params`` is added to the
            gradients before DoG sees them.
        mask: which params decay (a tree of booleans or a function of the params).

    Returns:
        ``chain(add_decayed_weights or identity, scale_by_dog, scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.dog(init_step=("learning_rate", 0.1))
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(5):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(f(params)), 4))
        0.6503

    References:
        Ivgi, Hinder and Carmon, DoG is SGD's Best Friend: A Parameter-Free Dynamic
        Step Size Schedule, ICML 2023.
    """
    fn = "dog"
    _check_dog_init_step(fn, init_step)
    return chain(_decay_or_identity(fn, weight_decay, mask), scale_by_dog(init_step, eps),
                 scale_by_learning_rate(learning_rate))


class DoWGState(NamedTuple):
    """State of :func:`dowg` (of its scaling block)."""

    init_params: Updates  # the parameters at init
    weighted_sq_norm_grads: Any  # sum of estim_sq_dist * ||g||^2 over the steps, shape ()
    estim_sq_dist: Any  # largest squared distance from init_params so far, shape ()


def scale_by_dowg(init_estim_sq_dist: Optional[float] = None, eps: float = 1e-4
                  ) -> GradientTransformation:
    """Scales the updates by DoWG's step. See :func:`dowg`.

    optax 0.2.8 keeps this block private to ``optax.contrib._dog``; it is public here
    for chaining, but not exported by ``nanofn.optim.contrib``.

    Args:
        init_estim_sq_dist: initial squared distance to the solution; ``None`` uses ``eps``.
        eps: added to the denominator of the step.

    Returns:
        A :class:`GradientTransformation` with state :class:`DoWGState`; ``update``
        needs ``params``. Its updates point uphill, as the gradients do.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.contrib import _parameter_free as pf
        >>> tx = pf.scale_by_dowg(init_estim_sq_dist=1.0, eps=0.0)
        >>> params = jnp.array([1.0])
        >>> u, state = tx.update(jnp.array([2.0]), tx.init(params), params)
        >>> print(float(u[0]))  # step 1 / sqrt(1 * 2**2) = 0.5, times the gradient 2
        1.0
    """
    fn = "scale_by_dowg"
    _base.check_nonneg(fn, "eps", eps)
    _base.check_nonneg(fn, "init_estim_sq_dist", init_estim_sq_dist)

    def init_fn(params):
        dtype = _params_dtype(params)
        first = eps if init_estim_sq_dist is None else init_estim_sq_dist
        return DoWGState(init_params=params,
                         weighted_sq_norm_grads=jnp.asarray(0.0, dtype=dtype),
                         estim_sq_dist=jnp.asarray(first, dtype=dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        _need_params(fn, params)
        treedef, (gs, ps, p0s) = _leaves(fn, updates, params, init_params=state.init_params)
        sq_dist = _sq_norm([p0 - p for p0, p in zip(p0s, ps)])
        estim_sq_dist = jnp.maximum(state.estim_sq_dist, sq_dist)
        weighted = estim_sq_dist * _sq_norm(gs) + state.weighted_sq_norm_grads
        step = estim_sq_dist / (jnp.sqrt(weighted) + eps)
        new_u = [step * g for g in gs]
        return _unflatten(treedef, new_u), DoWGState(
            init_params=state.init_params, weighted_sq_norm_grads=weighted,
            estim_sq_dist=estim_sq_dist)

    return GradientTransformation(init_fn, update_fn)


def dowg(learning_rate: ScalarOrSchedule = 1.0, init_estim_sq_dist: Optional[float] = None,
         eps: float = 1e-4, weight_decay: Optional[float] = None,
         mask: Optional[Union[Any, Callable[[Any], Any]]] = None) -> GradientTransformation:
    r"""DoWG (Distance over Weighted Gradients): DoG with gradients weighted by the distance.

    ::

        r_t^2 = max(r_{t-1}^2, ||x_t - x_0||^2)           (r_0^2 = init_estim_sq_dist)
        v_t   = v_{t-1} + r_t^2 ||g_t||^2
        x_t+1 = x_t - lr_t r_t^2 / (sqrt(v_t) + eps) g_t

    ``update`` needs ``params``.

    Args:
        learning_rate: a float or a schedule multiplying DoWG's step.
        init_estim_sq_dist: initial guess of the squared distance to the solution;
            ``None`` uses ``eps``.
        eps: added to the denominator of the step (and the default initial guess).
        weight_decay: if not ``None``, ``weight_decay * params`` is added to the
            gradients before DoWG sees them.
        mask: which params decay (a tree of booleans or a function of the params).

    Returns:
        ``chain(add_decayed_weights or identity, scale_by_dowg, scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.dowg()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(5):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(f(params)), 3))
        13.269

    References:
        Khaled, Mishchenko and Jin, DoWG Unleashed: An Efficient Universal
        Parameter-Free Gradient Descent Method, NeurIPS 2023.
    """
    fn = "dowg"
    return chain(_decay_or_identity(fn, weight_decay, mask),
                 scale_by_dowg(init_estim_sq_dist, eps), scale_by_learning_rate(learning_rate))


# --- Mechanic -----------------------------------------------------------------------------


class MechanicState(NamedTuple):
    """State of :func:`mechanize`."""

    base_optimizer_state: Any  # the wrapped optimizer's state
    count: Any  # int32, shape ()
    r: Any  # per-beta reward, shape (num_betas,)
    m: Any  # per-beta running max of |h|, shape (num_betas,)
    v: Any  # per-beta discounted sum of h^2, shape (num_betas,)
    s: Any  # per-beta scale; their sum scales the base updates, shape (num_betas,)
    x0: Updates  # the reference point (the params at the first update)


def mechanize(base_optimizer: GradientTransformation, weight_decay: float = 1e-2,
              eps: float = 1e-8, s_init: float = 1e-6, num_betas: int = 6
              ) -> GradientTransformation:
    r"""Mechanic: learns the scale of another optimizer's updates (a learning-rate tuner).

    The parameters become ``x_t = x_0 + s_t Delta_t``, where ``Delta_t`` sums the base
    optimizer's updates and the scale ``s_t`` (the sum of ``num_betas`` per-beta
    scales) is learned online by a coin-betting rule on
    ``h_t = <g_t + weight_decay * ..., Delta_{t-1}>``, with betas
    ``1 - 0.1^i`` for ``i = 1 .. num_betas``. The base optimizer keeps its
    schedule (with a peak value around 1.0); Mechanic finds the multiplier::

        opt = optim.contrib.mechanize(optim.adam(optim.warmup_cosine_decay_schedule(
            0.0, 1.0, 100, 1000)))

    ``update`` needs ``params``; extra keyword arguments go to the base optimizer.

    Args:
        base_optimizer: the optimizer whose updates are rescaled.
        weight_decay: Mechanic's own decay of the raw gradients (not the base
            optimizer's); it also steadies runs across seeds.
        eps: keeps divisions finite.
        s_init: the initial scale of each beta.
        num_betas: how many betas the scale is learned with (a positive int).

    Returns:
        A :class:`GradientTransformation` with state :class:`MechanicState`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.mechanize(optim.sgd(1.0), weight_decay=0.0)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(10):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(state.s.shape, bool(f(params) < 14.0))
        (6,) True

    References:
        Cutkosky, Defazio and Mehta, Mechanic: A Learning Rate Tuner, NeurIPS 2023.
    """
    fn = "mechanize"
    if not (isinstance(base_optimizer, tuple) and len(base_optimizer) == 2
            and all(map(callable, base_optimizer))):
        raise TypeError(f"{fn}: argument `base_optimizer` must be a GradientTransformation, "
                        f"got {base_optimizer!r:.80}; e.g. mechanize(optim.adam(1.0)).")
    _base.check_nonneg(fn, "weight_decay", weight_decay)
    _base.check_nonneg(fn, "eps", eps)
    _base.check_nonneg(fn, "s_init", s_init)
    if isinstance(num_betas, bool) or not isinstance(num_betas, (int, np.integer)) \
            or num_betas < 1:
        raise ValueError(f"{fn}: argument `num_betas` must be a positive int, got {num_betas!r}.")
    num_betas = int(num_betas)
    base_optimizer = _base.with_extra_args_support(base_optimizer)

    def init_fn(params):
        dtype = _params_dtype(params)
        zeros = jnp.zeros((num_betas,), dtype=dtype)
        return MechanicState(
            base_optimizer_state=base_optimizer.init(params), count=_zeros_count(),
            r=zeros, m=zeros, v=zeros, s=jnp.full((num_betas,), s_init, dtype=dtype),
            x0=params)

    def update_fn(updates, state, params=None, **extra_args):
        _need_params(fn, params)
        base_updates, base_state = base_optimizer.update(
            updates, state.base_optimizer_state, params, **extra_args)
        treedef, (gs, ps, x0s, us) = _leaves(fn, updates, params, x0=state.x0,
                                             base_updates=base_updates)
        # The reference point is the params at the first update, not at init: a training
        # loop may replace the initial params (e.g. with pretrained ones) after init.
        first = state.count == 0
        x0s = [jnp.where(first, p, x0) for p, x0 in zip(ps, x0s)]
        s_sum = jnp.sum(state.s)
        grad_norm = jnp.sqrt(_sq_norm(gs))
        param_norm = jnp.sqrt(_sq_norm(ps))
        decay = weight_decay * s_sum * grad_norm / (param_norm + eps)
        gs = [g + decay * p for g, p in zip(gs, ps)]
        delta_prev = [(x0 - p) / (s_sum + eps) for p, x0 in zip(ps, x0s)]
        # the base updates descend (the learning rate flipped their sign): Delta grows
        # by subtracting them
        delta = [dp - u for dp, u in zip(delta_prev, us)]
        h = _vdot(gs, delta_prev)
        clipped_h = jnp.clip(h, -state.m, state.m)
        betas = jnp.asarray(np.array([1.0 - 0.1 ** i for i in range(1, num_betas + 1)]),
                            dtype=state.s.dtype)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = betas ** 2 * state.v + h ** 2
        r = betas * state.r + clipped_h * state.s
        wealth = (s_init / num_betas) * m + jnp.maximum(0.0, r)
        s = wealth / (jnp.sqrt(v) + eps)
        s_total = jnp.sum(s)
        new_u = [(x0 - s_total * dl) - p for x0, dl, p in zip(x0s, delta, ps)]
        return _unflatten(treedef, new_u), MechanicState(
            base_optimizer_state=base_state, count=safe_increment(state.count), r=r, m=m,
            v=v, s=s, x0=_unflatten(treedef, x0s))

    return GradientTransformation(init_fn, update_fn)


# --- COCOB --------------------------------------------------------------------------------


class COCOBState(NamedTuple):
    """State of :func:`scale_by_cocob`: per-entry betting statistics."""

    init_particles: Updates  # the parameters at init
    cumulative_gradients: Updates  # minus the sum of the gradients
    scale: Updates  # the largest |g| seen (starts at eps)
    subgradients: Updates  # the sum of |g|
    reward: Updates  # the wealth won so far, >= 0


def scale_by_cocob(alpha: float = 100.0, eps: float = 1e-8) -> GradientTransformation:
    """COCOB's coin-betting step, entry by entry. See :func:`cocob`.

    Each entry bets a fraction of its wealth ``L + R`` on the direction of the summed
    gradients ``C``: the new parameter is
    ``x_0 + C / (L max(G + L, alpha L)) (L + R)``, with ``L`` the largest ``|g|`` so
    far, ``G`` the sum of ``|g|`` and ``R`` the reward. The update returned is the
    new parameter minus the current one, a descent step already.

    Args:
        alpha: caps the bet while few gradients have been seen (larger is more careful).
        eps: initial ``L``, which keeps the first division finite.

    Returns:
        A :class:`GradientTransformation` with state :class:`COCOBState`; ``update``
        needs ``params``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.contrib.scale_by_cocob()
        >>> params = jnp.array([1.0])
        >>> u, state = tx.update(jnp.array([2.0]), tx.init(params), params)
        >>> print(float(u[0]))  # -2 / (2 * 200) * 2
        -0.01
    """
    fn = "scale_by_cocob"
    _base.check_positive(fn, "alpha", alpha)
    _base.check_nonneg(fn, "eps", eps)

    def init_fn(params):
        zeros = otu.zeros_like(params)
        return COCOBState(init_particles=params, cumulative_gradients=zeros,
                          scale=otu.full_like(params, eps), subgradients=zeros, reward=zeros)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        _need_params(fn, params)
        treedef, (gs, ps, p0s, cs, ls, sgs, rs) = _leaves(
            fn, updates, params, init_particles=state.init_particles,
            cumulative_gradients=state.cumulative_gradients, scale=state.scale,
            subgradients=state.subgradients, reward=state.reward)
        new_l = [jnp.maximum(lo, jnp.abs(g)) for lo, g in zip(ls, gs)]
        new_g = [sg + jnp.abs(g) for sg, g in zip(sgs, gs)]
        new_r = [jnp.maximum(r - g * (p - p0), 0) for r, g, p, p0 in zip(rs, gs, ps, p0s)]
        new_c = [c - g for c, g in zip(cs, gs)]
        new_u = [-p + (p0 + c / (lo * jnp.maximum(sg + lo, alpha * lo)) * (lo + r))
                 for p, p0, c, lo, sg, r in zip(ps, p0s, new_c, new_l, new_g, new_r)]
        return _unflatten(treedef, new_u), COCOBState(
            init_particles=state.init_particles, cumulative_gradients=_unflatten(treedef, new_c),
            scale=_unflatten(treedef, new_l), subgradients=_unflatten(treedef, new_g),
            reward=_unflatten(treedef, new_r))

    return GradientTransformation(init_fn, update_fn)


def cocob(learning_rate: ScalarOrSchedule = 1.0, alpha: float = 100.0, eps: float = 1e-8,
          weight_decay: float = 0.0, mask: Optional[Union[Any, Callable[[Any], Any]]] = None
          ) -> GradientTransformation:
    r"""COCOB-Backprop: SGD without a learning rate, by continuous coin betting.

    Each parameter entry is a gambler betting on the sign of its negative gradient;
    its position is ``x_0`` plus the bet. See :func:`scale_by_cocob` for the step.
    As in optax, ``learning_rate`` scales the gradients *before* the betting (it is
    not a step size, and its sign is not flipped), and ``weight_decay`` adds
    ``weight_decay * params`` to the gradients first. ``update`` needs ``params``.

    Args:
        learning_rate: a float or a schedule multiplying the gradients (e.g. to
            inject a schedule); 1.0 leaves them as they are.
        alpha: caps the bet while few gradients have been seen.
        eps: initial per-entry gradient scale, keeping the first division finite.
        weight_decay: L2 penalty added to the gradients.
        mask: which params decay (a tree of booleans or a function of the params).

    Returns:
        ``chain(add_decayed_weights, scale_by_learning_rate(flip_sign=False),
        scale_by_cocob)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.cocob()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(5):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(f(params)), 4))
        13.3548

    References:
        Orabona and Tommasi, Training Deep Networks without Learning Rates Through Coin
        Betting, NeurIPS 2017.
    """
    _base.check_finite("cocob", "weight_decay", weight_decay)
    return chain(add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate, flip_sign=False),
                 scale_by_cocob(alpha, eps))
