"""AdEMAMix and Simplified AdEMAMix: Adam whose momentum mixes a fast and a slow average.

Follows ``optax.contrib`` (optax 0.2.8): ``ademamix`` / ``scale_by_ademamix`` with their
state ``ScaleByAdemamixState``, and ``simplified_ademamix`` /
``scale_by_simplified_ademamix`` with ``ScaleBySimplifiedAdEMAMixState``, under optax's
names and defaults. optax ships no warm-up schedules for ``alpha`` and ``b3``: both
accept any schedule (a function of the step count), as here.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import nanofn.numpy as jnp
from nanofn.optim import _base
from nanofn.optim._base import GradientTransformation, ScalarOrSchedule, Updates
from nanofn.optim._combine import chain
from nanofn.optim._transform import (
    _add_eps,
    _as,
    _bias_correction,
    _canonical_dtype,
    _cast,
    _flatten_all,
    _PerDtype,
    _unflatten,
    _zeros_count,
    _zeros_like_tree,
    add_decayed_weights,
    safe_increment,
    scale_by_learning_rate,
)

__all__ = [
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "ademamix",
    "scale_by_ademamix",
    "scale_by_simplified_ademamix",
    "simplified_ademamix",
]


def _value_at(name_value, count):
    """A hyperparameter's value at ``count``, as a per-dtype scalar."""
    value = name_value(count) if callable(name_value) else name_value
    return _PerDtype(lambda dt: _as(value, dt))


class ScaleByAdemamixState(NamedTuple):
    """State of :func:`scale_by_ademamix`.

    Attributes:
        count: the step count of the fast average and the second moment (int32).
        count_m2: the step count of the slow average, read by the ``b3`` and ``alpha``
            schedules (int32).
        m1: the fast exponential moving average of the gradients.
        m2: the slow exponential moving average of the gradients.
        nu: the exponential moving average of the squared gradients.
    """

    count: Any  # int32, shape ()
    count_m2: Any  # int32, shape ()
    m1: Updates
    m2: Updates
    nu: Updates


def scale_by_ademamix(b1: float = 0.9, b2: float = 0.999, b3: ScalarOrSchedule = 0.9999,
                      alpha: ScalarOrSchedule = 6.0, eps: float = 1e-8, eps_root: float = 0.0,
                      mu_dtype: Optional[Any] = None) -> GradientTransformation:
    r"""Rescales updates by AdEMAMix's mixture of two averages. See :func:`ademamix`.

    ``u = (m1 / (1 - b1^t) + alpha * m2) / (sqrt(nu / (1 - b2^t) + eps_root) + eps)``:
    the slow average ``m2`` is not bias-corrected, so it fades in as it fills.

    Note that optax's default ``alpha`` is 6.0 here but 5.0 in :func:`ademamix`; nanofn
    keeps both.

    Args:
        b1: decay of the fast average, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        b3: decay of the slow average, in [0, 1), or a schedule of the step count.
        alpha: weight of the slow average, or a schedule of the step count.
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        mu_dtype: dtype of all three averages; ``None`` uses each parameter's dtype.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByAdemamixState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import contrib
        >>> tx = contrib.scale_by_ademamix()
        >>> u, state = tx.update(jnp.array([2.0, -1.0]), tx.init(jnp.zeros(2)))
        >>> print([round(x, 4) for x in u.tolist()])  # 1 + alpha * (1 - b3) per sign
        [1.0006, -1.0006]
    """
    where = "scale_by_ademamix"
    _base.check_rate(where, "b1", b1)
    _base.check_rate(where, "b2", b2)
    _base.check_rate(where, "b3", b3)
    _base.check_finite(where, "alpha", alpha)
    _base.check_nonneg(where, "eps", eps)
    _base.check_nonneg(where, "eps_root", eps_root)
    mu_dtype = _canonical_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByAdemamixState(
            count=_zeros_count(), count_m2=_zeros_count(),
            m1=_zeros_like_tree(params, mu_dtype), m2=_zeros_like_tree(params, mu_dtype),
            nu=_zeros_like_tree(params, mu_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, m1s, m2s, vs) = _flatten_all(
            where, ("updates", "state.m1", "state.m2", "state.nu"),
            updates, state.m1, state.m2, state.nu)
        b3_now = _value_at(b3, state.count_m2)
        alpha_now = _value_at(alpha, state.count_m2)
        count = safe_increment(state.count)
        bc1, bc2 = _bias_correction(b1, count), _bias_correction(b2, count)
        new_u, new_m1, new_m2, new_v = [], [], [], []
        for g, m1_prev, m2_prev, v_prev in zip(gs, m1s, m2s, vs):
            c_b3 = b3_now(g.dtype)
            m1 = (1 - b1) * g + b1 * m1_prev
            m2 = (1 - c_b3) * g + c_b3 * m2_prev
            v = (1 - b2) * _base.abs_sq(g) + b2 * v_prev
            m1_hat, v_hat = m1 / bc1(m1.dtype), v / bc2(v.dtype)
            u = (m1_hat + alpha_now(g.dtype) * m2) / (jnp.sqrt(_add_eps(v_hat, eps_root)) + eps)
            new_u.append(_cast(u, g.dtype))
            new_m1.append(_cast(m1, m1_prev.dtype))
            new_m2.append(_cast(m2, m2_prev.dtype))
            new_v.append(_cast(v, v_prev.dtype))
        return _unflatten(treedef, new_u), ScaleByAdemamixState(
            count=count, count_m2=safe_increment(state.count_m2),
            m1=_unflatten(treedef, new_m1), m2=_unflatten(treedef, new_m2),
            nu=_unflatten(treedef, new_v))

    return GradientTransformation(init_fn, update_fn)


def ademamix(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
             b3: ScalarOrSchedule = 0.9999, alpha: ScalarOrSchedule = 5.0, eps: float = 1e-8,
             eps_root: float = 0.0, mu_dtype: Optional[Any] = None, weight_decay: float = 0.0,
             mask=None) -> GradientTransformation:
    r"""AdEMAMix (Adaptive EMA Mixture): AdamW whose momentum adds a slow average.

    A single exponential average cannot both react to recent gradients and remember
    old ones; AdEMAMix keeps two, a fast ``m1`` (decay ``b1``) and a slow ``m2``
    (decay ``b3``, close to 1), and steps along their mixture::

        m1_t = b1 m1_{t-1} + (1 - b1) g_t
        m2_t = b3 m2_{t-1} + (1 - b3) g_t
        nu_t = b2 nu_{t-1} + (1 - b2) g_t^2
        u_t  = -lr ((m1_t / (1 - b1^t) + alpha m2_t)
                    / (sqrt(nu_t / (1 - b2^t) + eps_root) + eps) + weight_decay w_{t-1})

    The slow average pays off over long runs (many thousands of steps); for short ones
    a smaller ``b3`` (e.g. 0.999) works better, and the paper warms ``alpha`` and ``b3``
    up with schedules, which both arguments accept.

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the fast average, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        b3: decay of the slow average, or a schedule of the step count.
        alpha: weight of the slow average, or a schedule of the step count.
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        mu_dtype: dtype of the averages; ``None`` uses each parameter's dtype.
        weight_decay: decoupled weight decay, multiplied by the learning rate.
        mask: a tree of booleans (or a function of the params returning one) saying
            which parameters are decayed.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_ademamix,
        add_decayed_weights, scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.ademamix(learning_rate=0.01)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(5):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(f(params)), 2))  # from 14.0
        13.41

    References:
        Pagliardini, Ablin and Grangier, The AdEMAMix Optimizer: Better, Faster, Older,
        2024.
    """
    _base.check_nonneg("ademamix", "weight_decay", weight_decay)
    return chain(
        scale_by_ademamix(b1=b1, b2=b2, b3=b3, alpha=alpha, eps=eps, eps_root=eps_root,
                          mu_dtype=mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate))


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """State of :func:`scale_by_simplified_ademamix`.

    Attributes:
        t: the step count (int32).
        m: the (unnormalised) accumulated momentum ``b1 m + g``.
        n: the exponential moving average of the squared gradients.
    """

    t: Any  # int32, shape ()
    m: Updates
    n: Updates


def scale_by_simplified_ademamix(b1: float = 0.99, b2: float = 0.95,
                                 alpha: ScalarOrSchedule = 0.0, eps: float = 1e-8,
                                 eps_root: float = 0.0) -> GradientTransformation:
    r"""Rescales updates by Simplified AdEMAMix. See :func:`simplified_ademamix`.

    ``m = b1 m + g`` (an accumulation, not an average), ``n = b2 n + (1 - b2) g^2``, and
    ``u = (m + alpha g) / (sqrt(n / (1 - b2^t) + eps_root) + eps)``.

    Args:
        b1: decay of the momentum, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        alpha: weight of the current gradient, or a schedule of the step count.
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.

    Returns:
        A :class:`GradientTransformation` with state
        :class:`ScaleBySimplifiedAdEMAMixState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import contrib
        >>> tx = contrib.scale_by_simplified_ademamix(alpha=1.0)
        >>> u, state = tx.update(jnp.array([2.0, -1.0]), tx.init(jnp.zeros(2)))
        >>> print([round(x, 4) for x in u.tolist()])  # (g + alpha g) / |g|
        [2.0, -2.0]
    """
    where = "scale_by_simplified_ademamix"
    _base.check_rate(where, "b1", b1)
    _base.check_rate(where, "b2", b2)
    _base.check_finite(where, "alpha", alpha)
    _base.check_nonneg(where, "eps", eps)
    _base.check_nonneg(where, "eps_root", eps_root)

    def init_fn(params):
        return ScaleBySimplifiedAdEMAMixState(t=_zeros_count(), m=_zeros_like_tree(params),
                                              n=_zeros_like_tree(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ms, ns) = _flatten_all(
            where, ("updates", "state.m", "state.n"), updates, state.m, state.n)
        alpha_now = _value_at(alpha, state.t)
        t = safe_increment(state.t)
        bc2 = _bias_correction(b2, t)
        new_u, new_m, new_n = [], [], []
        for g, m_prev, n_prev in zip(gs, ms, ns):
            m = g + b1 * m_prev
            g2 = g * g  # optax squares here (no conjugate): complex g gives a complex n
            n = g2 + b2 * (n_prev - g2)  # optax's lerp form of b2 n + (1 - b2) g^2
            u = (m + alpha_now(g.dtype) * g) / (jnp.sqrt(_add_eps(n / bc2(n.dtype), eps_root))
                                                + eps)
            new_u.append(_cast(u, g.dtype))
            new_m.append(_cast(m, m_prev.dtype))
            new_n.append(_cast(n, n_prev.dtype))
        return _unflatten(treedef, new_u), ScaleBySimplifiedAdEMAMixState(
            t=t, m=_unflatten(treedef, new_m), n=_unflatten(treedef, new_n))

    return GradientTransformation(init_fn, update_fn)


def simplified_ademamix(learning_rate: ScalarOrSchedule, b1: float = 0.99, b2: float = 0.95,
                        alpha: ScalarOrSchedule = 0.0, eps: float = 1e-8, eps_root: float = 0.0,
                        weight_decay: float = 0.0, mask=None) -> GradientTransformation:
    r"""Simplified AdEMAMix: one accumulated momentum plus a weighted current gradient.

    Morwani et al. show that AdEMAMix's two averages can be replaced by a single
    momentum *sum* ``m`` (no ``1 - b1`` factor) and a term ``alpha g`` for the current
    gradient, with no schedule on ``alpha``::

        m_t  = b1 m_{t-1} + g_t
        n_t  = b2 n_{t-1} + (1 - b2) g_t^2
        u_t  = -lr ((m_t + alpha g_t) / (sqrt(n_t / (1 - b2^t) + eps_root) + eps)
                    + weight_decay w_{t-1})

    With ``alpha = 0`` this is Adam up to a rescaling of the learning rate and ``b1``.
    Because ``m`` is a sum, learning rates are about ``1 - b1`` times Adam's.

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the momentum, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        alpha: weight of the current gradient, or a schedule of the step count.
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        weight_decay: decoupled weight decay, multiplied by the learning rate.
        mask: a tree of booleans (or a function of the params returning one) saying
            which parameters are decayed.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_simplified_ademamix,
        add_decayed_weights, scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.simplified_ademamix(learning_rate=0.01)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(5):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(f(params)), 2))  # from 14.0
        12.29

    References:
        Morwani et al., Connections between Schedule-Free Optimizers, AdEMAMix, and
        Accelerated SGD Variants, 2025.
    """
    _base.check_nonneg("simplified_ademamix", "weight_decay", weight_decay)
    return chain(
        scale_by_simplified_ademamix(b1=b1, b2=b2, alpha=alpha, eps=eps, eps_root=eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate))
