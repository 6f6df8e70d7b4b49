"""MADGRAD and MoMo, from optax.contrib.

MADGRAD is a momentumized dual-averaging method with cube-root adaptivity; MoMo and
MoMo-Adam are SGD-with-momentum and Adam whose step size is capped by a Polyak-type
step built from a model of the loss (they need the loss, passed to ``update`` as
``value=``). Names, arguments, defaults, state fields and arithmetic follow
``optax.contrib`` (optax 0.2.8).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

import nanofn.numpy as jnp
from nanofn.optim import _base
from nanofn.optim import tree as otu
from nanofn.optim._base import GradientTransformation, ScalarOrSchedule, Updates
from nanofn.optim._combine import chain
from nanofn.optim.contrib._parameter_free import (  # helpers both families use
    _leaves, _need_params, _params_dtype, _schedule_value, _vdot,
)
from nanofn.optim._transform import (
    _unflatten,
    _zeros_count,
    add_decayed_weights,
    safe_increment,
)

__all__ = [
    "MadgradState", "MomoAdamState", "MomoState", "madgrad", "momo", "momo_adam",
    "scale_by_madgrad",
]

# below this squared norm of the momentum MoMo takes no adaptive step (optax's threshold)
_TINY = float(np.finfo(float).eps)


# --- helpers ------------------------------------------------------------------------------


def _need_value(where: str, value) -> None:
    if value is None:
        raise TypeError(f"{where}: `update` needs the loss at the current params as `value=`, "
                        "e.g. `loss, grads = nanofn.value_and_grad(f)(params)` then "
                        "`opt.update(grads, state, params, value=loss)`.")


def _polyak_cap(numerator, sq_norm):
    """``max(numerator, 0) / sq_norm``, or 0 where ``sq_norm`` is (numerically) zero."""
    tiny = sq_norm <= _TINY
    safe = jnp.where(tiny, jnp.ones_like(sq_norm), sq_norm)
    return jnp.where(tiny, jnp.zeros_like(sq_norm), jnp.maximum(numerator, 0.0) / safe)


# --- MADGRAD ------------------------------------------------------------------------------


class MadgradState(NamedTuple):
    """State of :func:`scale_by_madgrad`."""

    count: Any  # int32, shape ()
    grad_sum_sq: Updates  # weighted sum of squared gradients
    s: Updates  # weighted sum of gradients
    x0: Updates  # the parameters at init


def scale_by_madgrad(learning_rate: ScalarOrSchedule, momentum: float = 0.9,
                     eps: float = 1e-6) -> GradientTransformation:
    r"""MADGRAD's dual-averaging step, learning rate included. See :func:`madgrad`.

    With ``k`` the step number (from 0) and ``lambda_k = (lr_k + eps) sqrt(k + 1)``::

        G = G + lambda_k g^2,    s = s + lambda_k g
        z = x_0 - s / (G^(1/3) + eps)
        u = (1 - momentum) z + momentum x - x

    The returned update already descends (no sign flip follows).

    Args:
        learning_rate: a float or a schedule (``eps`` is added to it, as in the
            authors' PyTorch code).
        momentum: weight of the current params in the averaging, in [0, 1).
        eps: added to the learning rate and to the cube root.

    Returns:
        A :class:`GradientTransformation` with state :class:`MadgradState`;
        ``update`` needs ``params``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.contrib.scale_by_madgrad(0.1, momentum=0.0, eps=0.0)
        >>> params = jnp.array([1.0])
        >>> u, state = tx.update(jnp.array([8.0]), tx.init(params), params)
        >>> print(round(float(u[0]), 4))  # -(0.8) / (6.4 ** (1/3))
        -0.4309
    """
    fn = "scale_by_madgrad"
    _base.check_nonneg(fn, "learning_rate", learning_rate)
    _base.check_rate(fn, "momentum", momentum)
    _base.check_nonneg(fn, "eps", eps)

    def init_fn(params):
        return MadgradState(count=_zeros_count(), grad_sum_sq=otu.zeros_like(params),
                            s=otu.zeros_like(params), x0=params)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        _need_params(fn, params)
        treedef, (gs, ps, gsqs, ss, x0s) = _leaves(
            fn, updates, params, grad_sum_sq=state.grad_sum_sq, s=state.s, x0=state.x0)
        lr = _schedule_value(learning_rate, state.count)
        lamb = (lr + eps) * jnp.sqrt(state.count + 1)
        new_gsq = [gsq + jnp.asarray(lamb * g ** 2, dtype=g.dtype) for gsq, g in zip(gsqs, gs)]
        new_s = [s + jnp.asarray(lamb * g, dtype=g.dtype) for s, g in zip(ss, gs)]
        new_u = []
        for x0, s, gsq, p in zip(x0s, new_s, new_gsq, ps):
            z = x0 - s / (jnp.cbrt(gsq) + eps)
            new_u.append(((1 - momentum) * z + momentum * p) - p)
        return _unflatten(treedef, new_u), MadgradState(
            count=safe_increment(state.count), grad_sum_sq=_unflatten(treedef, new_gsq),
            s=_unflatten(treedef, new_s), x0=state.x0)

    return GradientTransformation(init_fn, update_fn)


def madgrad(learning_rate: ScalarOrSchedule, momentum: float = 0.9, weight_decay: float = 0.0,
            eps: float = 1e-6) -> GradientTransformation:
    r"""MADGRAD: momentumized, adaptive, dual-averaged gradient method.

    Dual averaging with per-entry cube-root scaling: gradients are summed with weights
    growing like ``sqrt(k)``, the point ``z = x_0 - s / G^(1/3)`` is rebuilt from the
    sums, and the params move towards it with momentum. Meant to generalize like
    SGD with momentum and converge like Adam. See :func:`scale_by_madgrad`.

    Args:
        learning_rate: a float or a schedule.
        momentum: in [0, 1).
        weight_decay: L2 penalty added to the gradients before the sums.
        eps: added to the learning rate and to the cube root.

    Returns:
        ``chain(add_decayed_weights(weight_decay), scale_by_madgrad(...))``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.madgrad(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(5):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(f(params)), 4))
        9.7134

    References:
        Defazio and Jelassi, Adaptivity without Compromise: A Momentumized, Adaptive,
        Dual Averaged Gradient Method for Stochastic Optimization, JMLR 2022.
    """
    _base.check_finite("madgrad", "weight_decay", weight_decay)
    return chain(add_decayed_weights(weight_decay),
                 scale_by_madgrad(learning_rate=learning_rate, momentum=momentum, eps=eps))


# --- MoMo ---------------------------------------------------------------------------------


class MomoState(NamedTuple):
    """State of :func:`momo`."""

    exp_avg: Updates  # momentum of the gradients
    barf: Any  # moving average of the loss values, shape ()
    gamma: Any  # moving average of <g, x>, shape ()
    lb: Any  # the current lower bound of the loss, shape ()
    count: Any  # int32, shape ()


def _check_momo(fn, learning_rate, lower_bound, weight_decay):
    _base.check_nonneg(fn, "learning_rate", learning_rate)
    _base.check_finite(fn, "lower_bound", lower_bound)
    _base.check_nonneg(fn, "weight_decay", weight_decay)


def momo(learning_rate: ScalarOrSchedule = 1.0, beta: float = 0.9, lower_bound: float = 0.0,
         weight_decay: float = 0.0, adapt_lower_bound: bool = False) -> GradientTransformation:
    r"""MoMo: SGD with momentum and a Polyak-type adaptive step size.

    A model of the loss built from averages of the loss values ``f``, gradients and
    ``<g, x>`` gives a step capped at ``learning_rate``. With ``d = m`` the momentum,
    ``rho = 1 + learning_rate * weight_decay`` and ``f*`` the lower bound::

        tau = min(lr, max(rho (f_bar - f* - gamma) + <d, x>, 0) / ||d||^2)
        u   = -(lr weight_decay / rho) x - tau d

    The averages use ``beta`` from the second step on (the first step starts them at
    the first values). ``update`` needs ``params`` and the loss as ``value=``:
    ``opt.update(grads, state, params, value=loss)``.

    Args:
        learning_rate: a float or a schedule, the largest step (rather large, 1.0).
        beta: decay of the averages, in [0, 1).
        lower_bound: a lower bound of the loss (0 for most losses).
        weight_decay: decoupled weight decay.
        adapt_lower_bound: estimate the lower bound online (starting from
            ``lower_bound``) when no good one is known.

    Returns:
        A :class:`GradientTransformation` with state :class:`MomoState`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.momo()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(2):
        ...     value, grad = nanofn.value_and_grad(f)(params)
        ...     updates, state = solver.update(grad, state, params, value=value)
        ...     params = optim.apply_updates(params, updates)
        ...     print(round(float(f(params)), 4))
        3.5
        3.3182

    References:
        Schaipp, Ohana, Eickenberg, Defazio and Gower, MoMo: Momentum Models for
        Adaptive Learning Rates, ICML 2024.
    """
    fn = "momo"
    _check_momo(fn, learning_rate, lower_bound, weight_decay)
    _base.check_rate(fn, "beta", beta)

    def init_fn(params):
        dtype = _params_dtype(params)
        return MomoState(exp_avg=otu.zeros_like(params), barf=jnp.zeros((), dtype=dtype),
                         gamma=jnp.zeros((), dtype=dtype),
                         lb=jnp.asarray(lower_bound, dtype=dtype), count=_zeros_count())

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del extra_args  # unused
        _need_params(fn, params)
        _need_value(fn, value)
        treedef, (gs, ps, ms) = _leaves(fn, updates, params, exp_avg=state.exp_avg)
        dtype = state.barf.dtype
        # the first step takes the first values as the averages
        # (0 and beta in the state's dtype: a float64 state must not see a float32 beta)
        bt = jnp.where(state.count == 0, jnp.asarray(0.0, dtype=dtype),
                       jnp.asarray(beta, dtype=dtype))
        barf = bt * state.barf + (1 - bt) * jnp.asarray(value, dtype=dtype)
        new_m = [bt * m + (1 - bt) * g for m, g in zip(ms, gs)]
        gamma = bt * state.gamma + (1 - bt) * _vdot(gs, ps)
        m_sq_norm = _vdot(new_m, new_m)
        iprod = _vdot(new_m, ps)
        alpha = _schedule_value(learning_rate, state.count)
        rho = 1 + alpha * weight_decay
        if adapt_lower_bound:
            cap = rho * (barf - gamma) + iprod
            lb = jnp.where(cap < rho * state.lb, jnp.maximum(cap / (2 * rho), lower_bound),
                           state.lb)
        else:
            lb = state.lb
        tau = jnp.minimum(alpha, _polyak_cap(rho * (barf - lb - gamma) + iprod, m_sq_norm))
        decay = alpha * weight_decay / rho
        new_u = [-decay * p - tau * m for m, p in zip(new_m, ps)]
        if adapt_lower_bound:
            new_lb = jnp.maximum((barf + iprod - gamma) - 0.5 * tau * m_sq_norm, lower_bound)
        else:
            new_lb = state.lb
        return _unflatten(treedef, new_u), MomoState(
            exp_avg=_unflatten(treedef, new_m), barf=barf, gamma=gamma,
            lb=jnp.asarray(new_lb, dtype=dtype), count=safe_increment(state.count))

    return GradientTransformation(init_fn, update_fn)


class MomoAdamState(NamedTuple):
    """State of :func:`momo_adam`."""

    exp_avg: Updates  # first moment of the gradients
    exp_avg_sq: Updates  # second moment of the gradients
    barf: Any  # moving average of the loss values, shape ()
    gamma: Any  # moving average of <g, x>, shape ()
    lb: Any  # the current lower bound of the loss, shape ()
    count: Any  # int32, shape ()


def momo_adam(learning_rate: ScalarOrSchedule = 1e-2, b1: float = 0.9, b2: float = 0.999,
              eps: float = 1e-8, lower_bound: float = 0.0, weight_decay: float = 0.0,
              adapt_lower_bound: bool = False) -> GradientTransformation:
    r"""MoMo-Adam: Adam(W) with a Polyak-type adaptive step size.

    As :func:`momo`, with Adam's preconditioner ``D = eps + sqrt(v / (1 - b2^t))``
    and bias-corrected averages (``c = 1 - b1^t``, ``rho = 1 + lr weight_decay``)::

        tau = min(lr / c, max(rho (f_bar - c f* - gamma) + <m, x>, 0) / <m, m / D>)
        u   = -(lr weight_decay / rho) x - tau m / D

    ``update`` needs ``params`` and the loss as ``value=``.

    Args:
        learning_rate: a float or a schedule, the largest step. optax's default here
            is 1e-2 (1.0 for :func:`momo`).
        b1: decay of the first moment and of the loss averages, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the preconditioner.
        lower_bound: a lower bound of the loss (0 for most losses).
        weight_decay: decoupled (AdamW-style) weight decay.
        adapt_lower_bound: estimate the lower bound online.

    Returns:
        A :class:`GradientTransformation` with state :class:`MomoAdamState`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.momo_adam()
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> value, grad = nanofn.value_and_grad(f)(params)
        >>> updates, state = solver.update(grad, state, params, value=value)
        >>> print([round(x, 4) for x in optim.apply_updates(params, updates).tolist()])
        [0.99, 1.99, 2.99]

    References:
        Schaipp, Ohana, Eickenberg, Defazio and Gower, MoMo: Momentum Models for
        Adaptive Learning Rates, ICML 2024.
    """
    fn = "momo_adam"
    _check_momo(fn, learning_rate, lower_bound, weight_decay)
    _base.check_rate(fn, "b1", b1)
    _base.check_rate(fn, "b2", b2)
    _base.check_nonneg(fn, "eps", eps)

    def init_fn(params):
        dtype = _params_dtype(params)
        return MomoAdamState(exp_avg=otu.zeros_like(params), exp_avg_sq=otu.zeros_like(params),
                             barf=jnp.zeros((), dtype=dtype), gamma=jnp.zeros((), dtype=dtype),
                             lb=jnp.asarray(lower_bound, dtype=dtype), count=_zeros_count())

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del extra_args  # unused
        _need_params(fn, params)
        _need_value(fn, value)
        treedef, (gs, ps, ms, vs) = _leaves(fn, updates, params, exp_avg=state.exp_avg,
                                            exp_avg_sq=state.exp_avg_sq)
        dtype = state.barf.dtype
        count = safe_increment(state.count)
        barf = b1 * state.barf + (1 - b1) * jnp.asarray(value, dtype=dtype)
        new_m = [b1 * m + (1 - b1) * g for m, g in zip(ms, gs)]
        new_v = [b2 * v + (1 - b2) * g * g for v, g in zip(vs, gs)]
        # the bias corrections in the state's dtype (a float32 power would round a float64
        # run), computed in at least float32 (in float16, 1 - 0.999**t is 2% off)
        bc2 = _base.bias_factor(b2, count, dtype)
        precond = [eps + jnp.sqrt(v / bc2) for v in new_v]
        m_weighted = [m / d for m, d in zip(new_m, precond)]
        m_sq_norm = _vdot(new_m, m_weighted)
        gamma = b1 * state.gamma + (1 - b1) * _vdot(gs, ps)
        iprod = _vdot(new_m, ps)
        alpha = _schedule_value(learning_rate, state.count)
        bc1 = _base.bias_factor(b1, count, dtype)
        rho = 1 + alpha * weight_decay
        if adapt_lower_bound:
            cap = rho * (barf - gamma) + iprod
            lb = jnp.where(cap < rho * bc1 * state.lb,
                           jnp.maximum(cap / (2 * bc1 * rho), lower_bound), state.lb)
        else:
            lb = state.lb
        tau = jnp.minimum(alpha / bc1,
                          _polyak_cap(rho * (barf - bc1 * lb - gamma) + iprod, m_sq_norm))
        decay = alpha * weight_decay / rho
        new_u = [-decay * p - tau * m / d for m, d, p in zip(new_m, precond, ps)]
        if adapt_lower_bound:
            new_lb = jnp.maximum(((barf + iprod - gamma) - 0.5 * tau * m_sq_norm) / bc1,
                                 lower_bound)
        else:
            new_lb = state.lb
        return _unflatten(treedef, new_u), MomoAdamState(
            exp_avg=_unflatten(treedef, new_m), exp_avg_sq=_unflatten(treedef, new_v),
            barf=barf, gamma=gamma, lb=jnp.asarray(new_lb, dtype=dtype), count=count)

    return GradientTransformation(init_fn, update_fn)
