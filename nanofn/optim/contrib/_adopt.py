"""ADOPT: Adam with the second moment taken one step late, so it can converge for any b2.

Follows ``optax.contrib.adopt`` / ``scale_by_adopt`` (optax 0.2.8), defaults included.
The gradient is normalised by the square root of the second moment *before* it is
added to that moment (and, optionally, clipped), then averaged into the momentum; the
first step only initialises the second moment, so it leaves the parameters unchanged.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import nanofn.numpy as jnp
from nanofn.optim import _base
from nanofn.optim._base import GradientTransformation, ScalarOrSchedule
from nanofn.optim._combine import chain
from nanofn.optim._transform import (
    ScaleByAdamState,
    _canonical_dtype,
    _cast,
    _flatten_all,
    _unflatten,
    _zeros_count,
    _zeros_like_tree,
    safe_increment,
    scale_by_learning_rate,
)

__all__ = ["adopt", "scale_by_adopt"]


def _default_clip_value(count):
    return count ** 0.25


def scale_by_adopt(b1: float = 0.9, b2: float = 0.9999, eps: float = 1e-6,
                   mu_dtype: Optional[Any] = None, *, nesterov: bool = False,
                   use_clipping: bool = True,
                   clip_value_fn: Callable[[Any], Any] = _default_clip_value
                   ) -> GradientTransformation:
    r"""Rescales updates by ADOPT. See :func:`adopt`.

    At step ``t`` (counting from 0), with ``v`` the second moment *before* this step::

        n_t = clip(g_t / max(sqrt(v_{t-1}), eps), +-clip_value_fn(t))   (clip optional)
        m_t = b1 m_{t-1} + (1 - b1) n_t          (m_0 = m_{-1} = 0: step 0 only fills v)
        v_t = b2 v_{t-1} + (1 - b2) g_t^2        (v_0 = g_0^2)
        u_t = m_t, or b1 m_t + (1 - b1) n_t with nesterov

    The state is a :class:`~nanofn.optim.ScaleByAdamState`, as in optax.

    Args:
        b1: decay of the momentum, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: the floor of ``sqrt(v)`` in the normalisation.
        mu_dtype: dtype of the momentum; ``None`` uses each parameter's dtype.
        nesterov: use Nesterov momentum.
        use_clipping: clip the normalised gradient to ``[-c, c]`` with
            ``c = clip_value_fn(step)``.
        clip_value_fn: a function of the int32 step count (0 on the first update)
            returning the clipping bound; the default is ``step ** 0.25``. nanofn also
            takes the bound of the current step as a number, which is what
            ``inject_hyperparams`` passes after evaluating the function.

    Returns:
        A :class:`GradientTransformation` with state :class:`~nanofn.optim.ScaleByAdamState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim import contrib
        >>> tx = contrib.scale_by_adopt()
        >>> state = tx.init(jnp.zeros(2))
        >>> u, state = tx.update(jnp.array([2.0, -1.0]), state)  # the first step only fills v
        >>> print(u.tolist())
        [0.0, 0.0]
        >>> u, state = tx.update(jnp.array([2.0, -1.0]), state)
        >>> print([round(x, 3) for x in u.tolist()])  # (1 - b1) * g / |g|
        [0.1, -0.1]
    """
    where = "scale_by_adopt"
    _base.check_rate(where, "b1", b1)
    _base.check_rate(where, "b2", b2)
    _base.check_nonneg(where, "eps", eps)
    if use_clipping and not callable(clip_value_fn):
        _base.check_nonneg(where, "clip_value_fn", clip_value_fn)
    mu_dtype = _canonical_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByAdamState(count=_zeros_count(), mu=_zeros_like_tree(params, mu_dtype),
                                nu=_zeros_like_tree(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ms, vs) = _flatten_all(
            where, ("updates", "state.mu", "state.nu"), updates, state.mu, state.nu)
        started = state.count > 0
        b1_now = jnp.where(started, b1, 1)  # step 0: the momentum stays at zero
        b2_now = jnp.where(started, b2, 0)  # step 0: v becomes g^2
        clip_value = None
        if use_clipping:
            clip_value = clip_value_fn(state.count) if callable(clip_value_fn) else clip_value_fn
        new_u, new_m, new_v = [], [], []
        for g, m_prev, v_prev in zip(gs, ms, vs):
            mag = jnp.real(g * jnp.conj(g)) if jnp.iscomplexobj(g) else g * g
            v = (1 - b2_now) * mag + b2_now * v_prev
            normed = g / jnp.maximum(jnp.sqrt(v_prev), eps)
            if use_clipping:
                normed = jnp.clip(normed, -clip_value, clip_value)
            m = (1 - b1_now) * normed + b1_now * m_prev
            u = (1 - b1_now) * normed + b1_now * m if nesterov else m
            new_u.append(_cast(u, g.dtype))
            new_m.append(_cast(m, m_prev.dtype))
            new_v.append(_cast(v, v_prev.dtype))
        return _unflatten(treedef, new_u), ScaleByAdamState(
            count=safe_increment(state.count), mu=_unflatten(treedef, new_m),
            nu=_unflatten(treedef, new_v))

    return GradientTransformation(init_fn, update_fn)


def adopt(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.9999,
          eps: float = 1e-6, mu_dtype: Optional[Any] = None, *, nesterov: bool = False,
          use_clipping: bool = True, clip_value_fn: Callable[[Any], Any] = _default_clip_value
          ) -> GradientTransformation:
    r"""ADOPT (ADaptive gradient method with the OPTimal convergence rate).

    A variant of Adam that normalises each gradient by the second moment of the
    *previous* steps (so the current gradient does not shrink its own step) and
    applies the momentum after the normalisation. Taniguchi et al. show it converges
    for any ``b2``. The first update only initialises the second moment and is zero;
    with ``use_clipping`` (recommended) the normalised gradient is clipped to
    ``+-step**0.25``, which helps the early steps. See :func:`scale_by_adopt`.

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the momentum, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: the floor of ``sqrt(v)`` in the normalisation.
        mu_dtype: dtype of the momentum; ``None`` uses each parameter's dtype.
        nesterov: use Nesterov momentum.
        use_clipping: clip the normalised gradient.
        clip_value_fn: the clipping bound as a function of the step count (default
            ``step ** 0.25``).

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_adopt, scale_by_learning_rate)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.adopt(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(5):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(f(params)), 3))  # from 14.0
        12.947

    References:
        Taniguchi et al., ADOPT: Modified Adam Can Converge with Any beta2 with the
        Optimal Rate, NeurIPS 2024.
    """
    return chain(
        scale_by_adopt(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, nesterov=nesterov,
                       use_clipping=use_clipping, clip_value_fn=clip_value_fn),
        scale_by_learning_rate(learning_rate))
