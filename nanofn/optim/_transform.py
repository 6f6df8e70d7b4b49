"""Building blocks: small gradient transformations that aliases chain together.

Each stateful block is a ``<Name>State`` NamedTuple plus a factory returning a
:class:`GradientTransformation` built from two closures, ``init_fn`` and ``update_fn``.
Blocks named ``scale_by_<name>`` rescale the updates (Adam's moments, RMS, trust
ratios, ...); ``add_<name>`` adds a term (weight decay, noise); ``clip_<name>`` clips.
None of them applies the learning rate's sign: :func:`scale_by_learning_rate` at the
end of a chain does, which is why an alias reads as "statistics, then step size".

Step counts are int32 scalar arrays. Moments keep the dtype of the parameters (or an
explicit ``mu_dtype``/``accumulator_dtype``), and bias corrections are computed in the
dtype of the moment they correct, so float64 parameters get float64 arithmetic.

Complex parameters follow optax: second moments, sums of squares and norms are built from
the squared magnitude ``abs_sq(g) = |g|^2`` (real; ``g * g`` for real ``g``), so that a
complex parameter behaves as the pair of its real and imaginary parts. The moments keep
the parameters' complex dtype (with zero imaginary parts), as optax's do, and scalar
factors (bias corrections, schedules) are computed in the matching real precision.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

import nanofn.numpy as jnp
from nanofn import tree_util
from nanofn.optim import _base, _fused
from nanofn.optim._base import (
    NO_PARAMS_MSG,
    EmptyState,
    GradientTransformation,
    ScalarOrSchedule,
    Schedule,
    Updates,
    abs_sq,
    init_empty_state,
)

_INT32_MAX = np.iinfo(np.int32).max


# --- helpers ----------------------------------------------------------------------------


def _flatten_all(where: str, names: tuple[str, ...], *trees):
    """Flattens ``trees`` (the first gives the structure) and checks they all agree."""
    leaves, treedef = tree_util.tree_flatten(trees[0])
    out = [leaves]
    for name, tree in zip(names[1:], trees[1:]):
        other, other_def = tree_util.tree_flatten(tree)
        if other_def != treedef:
            raise _base.structure_error(where, names[0], treedef, name, other_def)
        out.append(other)
    return treedef, out


def _unflatten(treedef, leaves):
    return tree_util.tree_unflatten(treedef, list(leaves))


def _zeros_count():
    return jnp.zeros((), dtype=jnp.int32)


def safe_increment(count):
    """``count + 1`` for an int32 step counter, saturating instead of overflowing.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> int(optim.safe_increment(jnp.asarray(2 ** 31 - 1, dtype=jnp.int32)))
        2147483647
    """
    return jnp.where(count < _INT32_MAX, count + 1, _INT32_MAX)


def _canonical_dtype(dtype):
    return None if dtype is None else np.dtype(dtype)


def _cast(x, dtype):
    """``x`` as ``dtype`` (``None`` keeps it); no op when it already is."""
    if dtype is None or x.dtype == dtype:
        return x
    return jnp.asarray(x, dtype=dtype)


def _zeros_like_tree(tree, dtype=None):
    return tree_util.tree_map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def _full_like_tree(tree, value):
    return tree_util.tree_map(lambda x: jnp.full_like(x, value), tree)


class _PerDtype:
    """Caches a scalar computed once per dtype (bias corrections, schedule values).

    ``fn(dtype)`` is called the first time a leaf of that dtype needs it, so a tree of
    float32 and float64 leaves gets each factor in its own precision, once. A complex
    leaf gets its factor in the matching real precision (complex64: float32): a real
    scalar, as in optax.
    """

    def __init__(self, fn):
        self._fn, self._cache = fn, {}

    def __call__(self, dtype):
        key = np.dtype(dtype)
        if key.kind == "c":
            key = np.finfo(key).dtype
        if key not in self._cache:
            self._cache[key] = self._fn(key)
        return self._cache[key]


def _bias_correction(decay, count) -> _PerDtype:
    """``1 - decay**count`` per dtype, the factor Adam-style moments are divided by
    (computed in at least float32: :func:`nanofn.optim._base.bias_factor`)."""
    return _PerDtype(lambda dt: _base.bias_factor(decay, count, dt))


class _FirstMoment:
    """The bias-corrected first moment of Adam-style blocks, plain or Nesterov:
    ``m / (1 - b1^t)``, or ``b1 m / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t)``."""

    def __init__(self, b1, count, nesterov):
        self.b1 = b1
        self.bc1 = _bias_correction(b1, count)
        self.bc1_next = _bias_correction(b1, safe_increment(count)) if nesterov else None

    def debias(self, m, g):
        if self.bc1_next is None:
            return m / self.bc1(m.dtype)
        return self.b1 * m / self.bc1_next(m.dtype) + (1 - self.b1) * g / self.bc1(g.dtype)


def _as(value, dtype):
    """A hyperparameter as a scalar of ``dtype`` (Python numbers stay weakly typed)."""
    if isinstance(value, (int, float)):
        return value
    return jnp.asarray(value, dtype=dtype)


def _add_eps(x, eps):
    """``x + eps``, skipped when ``eps`` is a literal zero (saves a pass in eager mode)."""
    if isinstance(eps, (int, float)) and eps == 0:
        return x
    return x + eps


def _norm(x):
    return jnp.sqrt(jnp.sum(abs_sq(x)))


# --- scaling ----------------------------------------------------------------------------

ScaleState = EmptyState


def scale(step_size) -> GradientTransformation:
    """Multiplies every update by a constant ``step_size``.

    Args:
        step_size: a finite scalar (negative values are allowed, e.g. ``-1`` turns an
            ascent direction into a descent one).

    Returns:
        A stateless :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale(-0.5)
        >>> u, _ = tx.update(jnp.array([2.0, 4.0]), tx.init(None))
        >>> print(u.tolist())
        [-1.0, -2.0]
    """
    _base.check_finite("scale", "step_size", step_size)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        return tree_util.tree_map(lambda g: _as(step_size, g.dtype) * g, updates), state

    return GradientTransformation(init_empty_state, update_fn)


class ScaleByScheduleState(NamedTuple):
    """State of :func:`scale_by_schedule`."""

    count: Any  # int32, shape ()


def scale_by_schedule(step_size_fn: Schedule) -> GradientTransformation:
    """Multiplies the updates by ``step_size_fn(count)``, where count is the step number.

    Args:
        step_size_fn: a schedule, a function of the int32 step count (0 on the first
            update) returning a scalar.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByScheduleState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_schedule(lambda count: 1.0 / (count + 1))
        >>> state = tx.init(jnp.zeros(1))
        >>> for _ in range(2):
        ...     u, state = tx.update(jnp.ones(1), state)
        >>> print(float(u[0]))
        0.5
    """
    if not callable(step_size_fn):
        raise TypeError(
            f"scale_by_schedule: `step_size_fn` must be a function of the step count, got "
            f"{step_size_fn!r}; for a constant use `scale({step_size_fn!r})`.")

    def init_fn(params):
        del params  # unused
        return ScaleByScheduleState(count=_zeros_count())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        step_size = step_size_fn(state.count)
        per_dtype = _PerDtype(lambda dt: jnp.asarray(step_size, dtype=dt))
        updates = tree_util.tree_map(lambda g: per_dtype(g.dtype) * g, updates)
        return updates, ScaleByScheduleState(count=safe_increment(state.count))

    return GradientTransformation(init_fn, update_fn)


def scale_by_learning_rate(learning_rate: ScalarOrSchedule | None = None, *,
                           flip_sign: bool = True) -> GradientTransformation:
    """Scales by the learning rate (a float or a schedule), negated for descent.

    This is the last block of most aliases: ``u = -learning_rate * u``.

    Args:
        learning_rate: a non-negative float, or a schedule ``count -> float``. ``None``
            gives :func:`identity`.
        flip_sign: negate the scale (the default), so that applying the updates
            descends the loss.

    Returns:
        A :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_learning_rate(0.1)
        >>> u, _ = tx.update(jnp.array([1.0]), tx.init(None))
        >>> print(round(float(u[0]), 6))
        -0.1
    """
    if learning_rate is None:
        return _base.identity()
    _base.check_nonneg("scale_by_learning_rate", "learning_rate", learning_rate)
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)


# --- Adam and relatives -------------------------------------------------------------------


class ScaleByAdamState(NamedTuple):
    """State of Adam-like blocks (adam, adamax, radam, yogi)."""

    count: Any  # int32, shape ()
    mu: Updates  # first moment
    nu: Updates  # second moment (infinity norm for adamax)


def _check_adam_like(fn, b1, b2, eps, eps_root=0.0):
    _base.check_rate(fn, "b1", b1)
    _base.check_rate(fn, "b2", b2)
    _base.check_nonneg(fn, "eps", eps)
    _base.check_nonneg(fn, "eps_root", eps_root)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                  eps_root: float = 0.0, mu_dtype: Optional[Any] = None, *,
                  nesterov: bool = False) -> GradientTransformation:
    """Rescales updates by Adam's bias-corrected moments. See :func:`adam`.

    ``u = m_hat / (sqrt(v_hat + eps_root) + eps)`` with ``m_hat = m / (1 - b1^t)``
    and ``v_hat = v / (1 - b2^t)``; with ``nesterov=True`` (Nadam) ``m_hat`` becomes
    ``b1 * m / (1 - b1^(t+1)) + (1 - b1) * g / (1 - b1^t)``.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root (needed to differentiate through it).
        mu_dtype: dtype of the first moment; ``None`` uses each parameter's dtype.
        nesterov: use Nesterov momentum (Nadam).

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByAdamState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_adam()
        >>> u, state = tx.update(jnp.array([3.0, -0.5]), tx.init(jnp.zeros(2)))
        >>> print([round(x, 4) for x in u.tolist()])  # first step: g / |g|
        [1.0, -1.0]
    """
    _check_adam_like("scale_by_adam", b1, b2, eps, eps_root)
    mu_dtype = _canonical_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByAdamState(count=_zeros_count(), mu=_zeros_like_tree(params, mu_dtype),
                                nu=_zeros_like_tree(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ms, vs) = _flatten_all(
            "scale_by_adam", ("updates", "state.mu", "state.nu"), updates, state.mu, state.nu)
        count = safe_increment(state.count)
        first, bc2 = _FirstMoment(b1, count, nesterov), _bias_correction(b2, count)
        new_u, new_m, new_v = [], [], []
        if _fused.use_adam_update(list(zip(gs, ms, vs)), b1, b2, eps, eps_root):
            for g, m_prev, v_prev in zip(gs, ms, vs):  # one kernel pass per leaf
                bc1 = first.bc1(g.dtype)
                bc1_next = first.bc1_next(g.dtype) if nesterov else bc1
                u, m, v = _fused.adam_update(g, m_prev, v_prev, bc1, bc2(g.dtype), bc1_next,
                                             b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                             nesterov=nesterov)
                new_u.append(u)
                new_m.append(m)
                new_v.append(v)
            return _unflatten(treedef, new_u), ScaleByAdamState(
                count=count, mu=_unflatten(treedef, new_m), nu=_unflatten(treedef, new_v))
        for g, m_prev, v_prev in zip(gs, ms, vs):
            m = (1 - b1) * g + b1 * m_prev
            v = (1 - b2) * abs_sq(g) + b2 * v_prev
            m_hat = first.debias(m, g)
            v_hat = _add_eps(v / bc2(v.dtype), eps_root)
            new_u.append(_cast(m_hat / (jnp.sqrt(v_hat) + eps), g.dtype))
            new_m.append(_cast(m, m_prev.dtype))
            new_v.append(_cast(v, v_prev.dtype))
        return _unflatten(treedef, new_u), ScaleByAdamState(
            count=count, mu=_unflatten(treedef, new_m), nu=_unflatten(treedef, new_v))

    return GradientTransformation(init_fn, update_fn)


class ScaleByAmsgradState(NamedTuple):
    """State of :func:`scale_by_amsgrad`."""

    count: Any  # int32, shape ()
    mu: Updates
    nu: Updates
    nu_max: Updates  # running maximum of the (bias-corrected) second moment


def scale_by_amsgrad(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                     eps_root: float = 0.0, mu_dtype: Optional[Any] = None,
                     bias_correction_mu: bool = True, bias_correction_nu: bool = True
                     ) -> GradientTransformation:
    """Rescales updates like Adam, dividing by the running maximum of ``v``. See :func:`amsgrad`.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        mu_dtype: dtype of the first moment; ``None`` uses each parameter's dtype.
        bias_correction_mu: divide ``m`` by ``1 - b1^t``.
        bias_correction_nu: divide ``v`` by ``1 - b2^t`` before taking the maximum.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByAmsgradState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_amsgrad()
        >>> u, state = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 4))
        1.0
    """
    _check_adam_like("scale_by_amsgrad", b1, b2, eps, eps_root)
    mu_dtype = _canonical_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByAmsgradState(
            count=_zeros_count(), mu=_zeros_like_tree(params, mu_dtype),
            nu=_zeros_like_tree(params), nu_max=_zeros_like_tree(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ms, vs, vmaxs) = _flatten_all(
            "scale_by_amsgrad", ("updates", "state.mu", "state.nu", "state.nu_max"),
            updates, state.mu, state.nu, state.nu_max)
        count = safe_increment(state.count)
        bc1, bc2 = _bias_correction(b1, count), _bias_correction(b2, count)
        new_u, new_m, new_v, new_vmax = [], [], [], []
        for g, m_prev, v_prev, vmax_prev in zip(gs, ms, vs, vmaxs):
            m = (1 - b1) * g + b1 * m_prev
            v = (1 - b2) * abs_sq(g) + b2 * v_prev
            m_hat = m / bc1(m.dtype) if bias_correction_mu else m
            v_eff = v / bc2(v.dtype) if bias_correction_nu else v
            vmax = jnp.maximum(vmax_prev, v_eff)
            new_u.append(_cast(m_hat / (jnp.sqrt(_add_eps(vmax, eps_root)) + eps), g.dtype))
            new_m.append(_cast(m, m_prev.dtype))
            new_v.append(_cast(v, v_prev.dtype))
            new_vmax.append(_cast(vmax, vmax_prev.dtype))
        return _unflatten(treedef, new_u), ScaleByAmsgradState(
            count=count, mu=_unflatten(treedef, new_m), nu=_unflatten(treedef, new_v),
            nu_max=_unflatten(treedef, new_vmax))

    return GradientTransformation(init_fn, update_fn)


def scale_by_adamax(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
                    ) -> GradientTransformation:
    """Rescales updates by Adamax's infinity-norm moment. See :func:`adamax`.

    ``m = b1 m + (1 - b1) g``, ``v = max(|g| + eps, b2 v)``, ``u = m / (1 - b1^t) / v``.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the infinity-norm moment, in [0, 1).
        eps: added to ``|g|`` so that ``v`` is never zero.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByAdamState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_adamax()
        >>> u, state = tx.update(jnp.array([-4.0]), tx.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 4))
        -1.0
    """
    _check_adam_like("scale_by_adamax", b1, b2, eps)

    def init_fn(params):
        return ScaleByAdamState(count=_zeros_count(), mu=_zeros_like_tree(params),
                                nu=_zeros_like_tree(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ms, vs) = _flatten_all(
            "scale_by_adamax", ("updates", "state.mu", "state.nu"), updates, state.mu, state.nu)
        count = safe_increment(state.count)
        bc1 = _bias_correction(b1, count)
        new_u, new_m, new_v = [], [], []
        for g, m_prev, v_prev in zip(gs, ms, vs):
            m = (1 - b1) * g + b1 * m_prev
            v = jnp.maximum(jnp.abs(g) + eps, b2 * v_prev)
            new_u.append(_cast(m / bc1(m.dtype) / v, g.dtype))
            new_m.append(_cast(m, m_prev.dtype))
            new_v.append(_cast(v, v_prev.dtype))
        return _unflatten(treedef, new_u), ScaleByAdamState(
            count=count, mu=_unflatten(treedef, new_m), nu=_unflatten(treedef, new_v))

    return GradientTransformation(init_fn, update_fn)


def scale_by_radam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                   eps_root: float = 0.0, threshold: float = 5.0, *,
                   nesterov: bool = False) -> GradientTransformation:
    """Rescales updates by Rectified Adam. See :func:`radam`.

    While the variance of the adaptive step is untractable (``rho_t < threshold``) the
    update is the bias-corrected momentum alone; afterwards it is Adam's step times the
    rectification ``r_t``.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        threshold: the ``rho_t`` above which the adaptive step is used (the paper uses 4;
            optax and nanofn default to 5).
        nesterov: use Nesterov momentum.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByAdamState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_radam()
        >>> u, state = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 4))  # early steps: plain momentum
        2.0
    """
    _check_adam_like("scale_by_radam", b1, b2, eps, eps_root)
    _base.check_nonneg("scale_by_radam", "threshold", threshold)
    rho_inf = 2.0 / (1.0 - b2) - 1.0

    def init_fn(params):
        return ScaleByAdamState(count=_zeros_count(), mu=_zeros_like_tree(params),
                                nu=_zeros_like_tree(params))

    def rectification(count, dtype):
        # rho_t cancels badly (rho_inf minus a term of about rho_inf): computed in at
        # least float32, whatever the leaf's dtype, and r_t rounded to it at the end
        wide = _base.wide_float(dtype)
        t = jnp.asarray(count, dtype=wide)
        b2t = jnp.asarray(b2, dtype=wide) ** t
        rho = rho_inf - 2 * t * b2t / (1 - b2t)
        # Clamped at zero: the square root is only used once rho >= threshold (> 4), and
        # the clamp keeps the unused early values from being NaN.
        ratio = (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)
        return rho >= threshold, jnp.asarray(jnp.sqrt(jnp.maximum(ratio, 0.0)), dtype=dtype)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ms, vs) = _flatten_all(
            "scale_by_radam", ("updates", "state.mu", "state.nu"), updates, state.mu, state.nu)
        count = safe_increment(state.count)
        first, bc2 = _FirstMoment(b1, count, nesterov), _bias_correction(b2, count)
        rect = _PerDtype(lambda dt: rectification(count, dt))
        new_u, new_m, new_v = [], [], []
        for g, m_prev, v_prev in zip(gs, ms, vs):
            m = (1 - b1) * g + b1 * m_prev
            v = (1 - b2) * abs_sq(g) + b2 * v_prev
            m_hat = first.debias(m, g)
            v_hat = v / bc2(v.dtype)
            use_adaptive, r = rect(m.dtype)
            adaptive = r * m_hat / (jnp.sqrt(_add_eps(v_hat, eps_root)) + eps)
            new_u.append(_cast(jnp.where(use_adaptive, adaptive, m_hat), g.dtype))
            new_m.append(_cast(m, m_prev.dtype))
            new_v.append(_cast(v, v_prev.dtype))
        return _unflatten(treedef, new_u), ScaleByAdamState(
            count=count, mu=_unflatten(treedef, new_m), nu=_unflatten(treedef, new_v))

    return GradientTransformation(init_fn, update_fn)


def scale_by_yogi(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-3,
                  eps_root: float = 0.0, initial_accumulator_value: float = 1e-6
                  ) -> GradientTransformation:
    """Rescales updates by Yogi's additive second moment. See :func:`yogi`.

    ``v = v - (1 - b2) * sign(v - g^2) * g^2``: ``v`` moves towards ``g^2`` by a step
    proportional to ``g^2``, instead of Adam's multiplicative decay.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: rate of the second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        initial_accumulator_value: initial value of both moments, >= 0.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByAdamState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_yogi()
        >>> u, state = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 2))
        1.0
    """
    _check_adam_like("scale_by_yogi", b1, b2, eps, eps_root)
    _base.check_nonneg("scale_by_yogi", "initial_accumulator_value", initial_accumulator_value)

    def init_fn(params):
        return ScaleByAdamState(
            count=_zeros_count(), mu=_full_like_tree(params, initial_accumulator_value),
            nu=_full_like_tree(params, initial_accumulator_value))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ms, vs) = _flatten_all(
            "scale_by_yogi", ("updates", "state.mu", "state.nu"), updates, state.mu, state.nu)
        count = safe_increment(state.count)
        bc1, bc2 = _bias_correction(b1, count), _bias_correction(b2, count)
        new_u, new_m, new_v = [], [], []
        for g, m_prev, v_prev in zip(gs, ms, vs):
            g2 = abs_sq(g)
            m = (1 - b1) * g + b1 * m_prev
            v = v_prev - (1 - b2) * jnp.sign(v_prev - g2) * g2
            m_hat, v_hat = m / bc1(m.dtype), v / bc2(v.dtype)
            new_u.append(_cast(m_hat / (jnp.sqrt(_add_eps(v_hat, eps_root)) + eps), g.dtype))
            new_m.append(_cast(m, m_prev.dtype))
            new_v.append(_cast(v, v_prev.dtype))
        return _unflatten(treedef, new_u), ScaleByAdamState(
            count=count, mu=_unflatten(treedef, new_m), nu=_unflatten(treedef, new_v))

    return GradientTransformation(init_fn, update_fn)


class ScaleByBeliefState(NamedTuple):
    """State of :func:`scale_by_belief`."""

    count: Any  # int32, shape ()
    mu: Updates
    nu: Updates  # moving average of the squared prediction error (g - m)^2


def scale_by_belief(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-16,
                    eps_root: float = 1e-16, *, nesterov: bool = False
                    ) -> GradientTransformation:
    """Rescales updates by AdaBelief's "belief" in the gradient. See :func:`adabelief`.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment of the prediction error, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added to the second moment at every step.
        nesterov: use Nesterov momentum.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByBeliefState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_belief()
        >>> u, state = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 3))  # m_hat / sqrt(s_hat) = 1 / 0.9 on the first step
        1.111
    """
    _check_adam_like("scale_by_belief", b1, b2, eps, eps_root)

    def init_fn(params):
        return ScaleByBeliefState(count=_zeros_count(), mu=_zeros_like_tree(params),
                                  nu=_zeros_like_tree(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ms, vs) = _flatten_all(
            "scale_by_belief", ("updates", "state.mu", "state.nu"), updates, state.mu, state.nu)
        count = safe_increment(state.count)
        first, bc2 = _FirstMoment(b1, count, nesterov), _bias_correction(b2, count)
        new_u, new_m, new_v = [], [], []
        for g, m_prev, v_prev in zip(gs, ms, vs):
            m = (1 - b1) * g + b1 * m_prev
            err = g - m
            v = _add_eps((1 - b2) * abs_sq(err) + b2 * v_prev, eps_root)
            m_hat = first.debias(m, g)
            v_hat = v / bc2(v.dtype)
            new_u.append(_cast(m_hat / (jnp.sqrt(v_hat) + eps), g.dtype))
            new_m.append(_cast(m, m_prev.dtype))
            new_v.append(_cast(v, v_prev.dtype))
        return _unflatten(treedef, new_u), ScaleByBeliefState(
            count=count, mu=_unflatten(treedef, new_m), nu=_unflatten(treedef, new_v))

    return GradientTransformation(init_fn, update_fn)


class ScaleByLionState(NamedTuple):
    """State of :func:`scale_by_lion`."""

    count: Any  # int32, shape ()
    mu: Updates


def scale_by_lion(b1: float = 0.9, b2: float = 0.99, mu_dtype: Optional[Any] = None, *,
                  mode: str = "hard", smooth_beta: float = 1.0) -> GradientTransformation:
    """Rescales updates by Lion's sign of interpolated momentum. See :func:`lion`.

    ``u = sign((1 - b1) g + b1 m)``, then ``m = b2 m + (1 - b2) g``.

    Args:
        b1: weight of the momentum in the update direction, in [0, 1].
        b2: decay of the momentum, in [0, 1).
        mu_dtype: dtype of the momentum; ``None`` uses each parameter's dtype.
        mode: ``"hard"`` (sign), ``"smooth"`` (``tanh(smooth_beta * c)``) or
            ``"refined"`` (``c`` where ``|c| < 1``, else its sign).
        smooth_beta: sharpness of the ``"smooth"`` mode.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByLionState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_lion()
        >>> u, state = tx.update(jnp.array([0.3, -2.0]), tx.init(jnp.zeros(2)))
        >>> print(u.tolist())
        [1.0, -1.0]
    """
    _base.check_rate("scale_by_lion", "b1", b1, allow_one=True)
    _base.check_rate("scale_by_lion", "b2", b2)
    if mode not in ("hard", "smooth", "refined"):
        raise ValueError(
            f"scale_by_lion: argument `mode` must be 'hard', 'smooth' or 'refined', got {mode!r}.")
    mu_dtype = _canonical_dtype(mu_dtype)

    def direction(c):
        if mode == "hard":
            return jnp.sign(c)
        if mode == "smooth":
            return jnp.tanh(smooth_beta * c)
        return jnp.where(jnp.abs(c) < 1.0, c, jnp.sign(c))

    def init_fn(params):
        return ScaleByLionState(count=_zeros_count(), mu=_zeros_like_tree(params, mu_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ms) = _flatten_all(
            "scale_by_lion", ("updates", "state.mu"), updates, state.mu)
        new_u, new_m = [], []
        for g, m_prev in zip(gs, ms):
            new_u.append(_cast(direction((1 - b1) * g + b1 * m_prev), g.dtype))
            new_m.append(_cast((1 - b2) * g + b2 * m_prev, m_prev.dtype))
        return _unflatten(treedef, new_u), ScaleByLionState(
            count=safe_increment(state.count), mu=_unflatten(treedef, new_m))

    return GradientTransformation(init_fn, update_fn)


# --- RMS-style scalings ------------------------------------------------------------------


class ScaleByRssState(NamedTuple):
    """State of :func:`scale_by_rss`."""

    sum_of_squares: Updates


def scale_by_rss(initial_accumulator_value: float = 0.1, eps: float = 1e-7
                 ) -> GradientTransformation:
    """Rescales updates by the root of the sum of all squared gradients (Adagrad).

    See :func:`adagrad`. ``s = s + g^2``, ``u = g / sqrt(s + eps)`` (0 where ``s`` is 0).

    Args:
        initial_accumulator_value: starting value of ``s``, >= 0.
        eps: added inside the square root.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByRssState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_rss(initial_accumulator_value=0.0, eps=0.0)
        >>> u, state = tx.update(jnp.array([3.0]), tx.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 4))
        1.0
    """
    _base.check_nonneg("scale_by_rss", "initial_accumulator_value", initial_accumulator_value)
    _base.check_nonneg("scale_by_rss", "eps", eps)

    def init_fn(params):
        return ScaleByRssState(sum_of_squares=_full_like_tree(params, initial_accumulator_value))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ss) = _flatten_all(
            "scale_by_rss", ("updates", "state.sum_of_squares"), updates, state.sum_of_squares)
        new_u, new_s = [], []
        for g, s_prev in zip(gs, ss):
            s = s_prev + abs_sq(g)
            positive = s > 0
            # 1/sqrt only where s > 0, so a zero accumulator gives a zero update, not NaN.
            inv = jnp.where(positive, 1 / jnp.sqrt(jnp.where(positive, s, 1) + eps), 0)
            new_u.append(_cast(inv * g, g.dtype))
            new_s.append(_cast(s, s_prev.dtype))
        return _unflatten(treedef, new_u), ScaleByRssState(_unflatten(treedef, new_s))

    return GradientTransformation(init_fn, update_fn)


class ScaleByRmsState(NamedTuple):
    """State of :func:`scale_by_rms` without bias correction."""

    nu: Updates


class ScaleByRmsWithCountState(NamedTuple):
    """State of :func:`scale_by_rms` with ``bias_correction=True``."""

    count: Any  # int32, shape ()
    nu: Updates


def _rms_denominator(nu, eps, eps_in_sqrt):
    return jnp.sqrt(nu + eps) if eps_in_sqrt else jnp.sqrt(nu) + eps


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                 eps_in_sqrt: bool = True, bias_correction: bool = False
                 ) -> GradientTransformation:
    """Rescales updates by the root of a moving average of squared gradients. See :func:`rmsprop`.

    ``v = decay v + (1 - decay) g^2``; ``u = g / sqrt(v + eps)`` (or
    ``g / (sqrt(v) + eps)`` when ``eps_in_sqrt=False``).

    Args:
        decay: decay of the moving average, in [0, 1).
        eps: stabilising term in the denominator.
        initial_scale: initial value of ``v``, >= 0.
        eps_in_sqrt: add ``eps`` inside the square root.
        bias_correction: divide ``v`` by ``1 - decay^t`` (the state then has a count).

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByRmsState` (or
        :class:`ScaleByRmsWithCountState`).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_rms(eps=0.0)
        >>> u, state = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 4))  # 1 / sqrt(0.1)
        3.1623
    """
    _base.check_rate("scale_by_rms", "decay", decay)
    _base.check_nonneg("scale_by_rms", "eps", eps)
    _base.check_nonneg("scale_by_rms", "initial_scale", initial_scale)

    def init_fn(params):
        nu = _full_like_tree(params, initial_scale)
        if bias_correction:
            return ScaleByRmsWithCountState(count=_zeros_count(), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, vs) = _flatten_all("scale_by_rms", ("updates", "state.nu"), updates, state.nu)
        count = safe_increment(state.count) if bias_correction else None
        bc = _bias_correction(decay, count) if bias_correction else None
        new_u, new_v = [], []
        for g, v_prev in zip(gs, vs):
            v = (1 - decay) * abs_sq(g) + decay * v_prev
            v_hat = v / bc(v.dtype) if bias_correction else v
            new_u.append(_cast(g / _rms_denominator(v_hat, eps, eps_in_sqrt), g.dtype))
            new_v.append(_cast(v, v_prev.dtype))
        nu = _unflatten(treedef, new_v)
        if bias_correction:
            return _unflatten(treedef, new_u), ScaleByRmsWithCountState(count=count, nu=nu)
        return _unflatten(treedef, new_u), ScaleByRmsState(nu=nu)

    return GradientTransformation(init_fn, update_fn)


class ScaleByRStdDevState(NamedTuple):
    """State of :func:`scale_by_stddev` without bias correction."""

    mu: Updates
    nu: Updates


class ScaleByRStdDevWithCountState(NamedTuple):
    """State of :func:`scale_by_stddev` with ``bias_correction=True``."""

    count: Any  # int32, shape ()
    mu: Updates
    nu: Updates


def scale_by_stddev(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                    eps_in_sqrt: bool = True, bias_correction: bool = False
                    ) -> GradientTransformation:
    """Rescales updates by a moving estimate of the gradient's standard deviation.

    Centered RMSProp (see :func:`rmsprop`): ``u = g / sqrt(v - m^2 + eps)`` with
    moving averages ``m`` of ``g`` and ``v`` of ``g^2``.

    Args:
        decay: decay of both moving averages, in [0, 1).
        eps: stabilising term in the denominator.
        initial_scale: initial value of ``v``, >= 0.
        eps_in_sqrt: add ``eps`` inside the square root.
        bias_correction: divide both averages by ``1 - decay^t``.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByRStdDevState` (or
        :class:`ScaleByRStdDevWithCountState`).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_stddev(eps=0.0)
        >>> u, state = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 4))  # 1 / sqrt(0.1 - 0.01)
        3.3333
    """
    _base.check_rate("scale_by_stddev", "decay", decay)
    _base.check_nonneg("scale_by_stddev", "eps", eps)
    _base.check_nonneg("scale_by_stddev", "initial_scale", initial_scale)

    def init_fn(params):
        mu, nu = _zeros_like_tree(params), _full_like_tree(params, initial_scale)
        if bias_correction:
            return ScaleByRStdDevWithCountState(count=_zeros_count(), mu=mu, nu=nu)
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ms, vs) = _flatten_all(
            "scale_by_stddev", ("updates", "state.mu", "state.nu"), updates, state.mu, state.nu)
        count = safe_increment(state.count) if bias_correction else None
        bc = _bias_correction(decay, count) if bias_correction else None
        new_u, new_m, new_v = [], [], []
        for g, m_prev, v_prev in zip(gs, ms, vs):
            m = (1 - decay) * g + decay * m_prev
            v = (1 - decay) * abs_sq(g) + decay * v_prev
            m_hat, v_hat = (m / bc(m.dtype), v / bc(v.dtype)) if bias_correction else (m, v)
            denom = _rms_denominator(v_hat - abs_sq(m_hat), eps, eps_in_sqrt)
            new_u.append(_cast(g / denom, g.dtype))
            new_m.append(_cast(m, m_prev.dtype))
            new_v.append(_cast(v, v_prev.dtype))
        mu, nu = _unflatten(treedef, new_m), _unflatten(treedef, new_v)
        if bias_correction:
            return _unflatten(treedef, new_u), ScaleByRStdDevWithCountState(count, mu, nu)
        return _unflatten(treedef, new_u), ScaleByRStdDevState(mu=mu, nu=nu)

    return GradientTransformation(init_fn, update_fn)


class ScaleByAdaDeltaState(NamedTuple):
    """State of :func:`scale_by_adadelta`."""

    e_g: Updates  # moving average of g^2
    e_x: Updates  # moving average of the squared updates


def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6) -> GradientTransformation:
    """Rescales updates by Adadelta's ratio of update and gradient RMS. See :func:`adadelta`.

    Args:
        rho: decay of both moving averages, in [0, 1).
        eps: added inside both square roots, > 0 in practice (it sets the first step).

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByAdaDeltaState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_adadelta()
        >>> u, state = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))
        >>> print(f"{float(u[0]):.4f}")  # sqrt(eps) / sqrt(0.1 + eps)
        0.0032
    """
    _base.check_rate("scale_by_adadelta", "rho", rho)
    _base.check_nonneg("scale_by_adadelta", "eps", eps)

    def init_fn(params):
        return ScaleByAdaDeltaState(e_g=_zeros_like_tree(params), e_x=_zeros_like_tree(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, egs, exs) = _flatten_all(
            "scale_by_adadelta", ("updates", "state.e_g", "state.e_x"),
            updates, state.e_g, state.e_x)
        new_u, new_eg, new_ex = [], [], []
        for g, eg_prev, ex_prev in zip(gs, egs, exs):
            # optax squares here (its `update_moment` of order 2), not |g|^2: for complex
            # parameters Adadelta is optax's, complex squares included.
            eg = (1 - rho) * (g * g) + rho * eg_prev
            u = jnp.sqrt(ex_prev + eps) / jnp.sqrt(eg + eps) * g
            ex = (1 - rho) * (u * u) + rho * ex_prev
            new_u.append(_cast(u, g.dtype))
            new_eg.append(_cast(eg, eg_prev.dtype))
            new_ex.append(_cast(ex, ex_prev.dtype))
        return _unflatten(treedef, new_u), ScaleByAdaDeltaState(
            e_g=_unflatten(treedef, new_eg), e_x=_unflatten(treedef, new_ex))

    return GradientTransformation(init_fn, update_fn)


class ScaleByNovogradState(NamedTuple):
    """State of :func:`scale_by_novograd`."""

    count: Any  # int32, shape ()
    mu: Updates
    nu: Updates  # one scalar per leaf: moving average of the squared layer norm


def scale_by_novograd(b1: float = 0.9, b2: float = 0.25, eps: float = 1e-8,
                      eps_root: float = 0.0, weight_decay: float = 0.0,
                      mu_dtype: Optional[Any] = None) -> GradientTransformation:
    """Rescales updates by NovoGrad's layer-wise second moment. See :func:`novograd`.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the per-layer second moment, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.
        weight_decay: coefficient of the decoupled weight decay added to the
            normalised gradient, >= 0.
        mu_dtype: dtype of the first moment; ``None`` uses each parameter's dtype.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByNovogradState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_novograd(eps=0.0)
        >>> p = jnp.zeros(2)
        >>> u, state = tx.update(jnp.array([3.0, 4.0]), tx.init(p), p)
        >>> print([round(x, 4) for x in u.tolist()])  # g / ||g||
        [0.6, 0.8]
    """
    _check_adam_like("scale_by_novograd", b1, b2, eps, eps_root)
    _base.check_nonneg("scale_by_novograd", "weight_decay", weight_decay)
    mu_dtype = _canonical_dtype(mu_dtype)
    uses_params = not (isinstance(weight_decay, (int, float)) and weight_decay == 0)

    def init_fn(params):
        return ScaleByNovogradState(
            count=_zeros_count(), mu=_zeros_like_tree(params, mu_dtype),
            nu=tree_util.tree_map(lambda p: jnp.zeros((), dtype=p.dtype), params))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        if uses_params and params is None:
            raise ValueError("scale_by_novograd with weight_decay: " + NO_PARAMS_MSG)
        trees = (updates, state.mu, state.nu) + ((params,) if uses_params else ())
        names = ("updates", "state.mu", "state.nu", "params")
        treedef, leaves = _flatten_all("scale_by_novograd", names[:len(trees)], *trees)
        if not uses_params:
            leaves.append([None] * len(leaves[0]))
        count = safe_increment(state.count)
        first = count == 1  # the first step initialises the moments instead of averaging
        new_u, new_m, new_v = [], [], []
        for g, m_prev, v_prev, p in zip(*leaves):
            sq_norm = jnp.sum(abs_sq(g))
            v = jnp.where(first, sq_norm, (1 - b2) * sq_norm + b2 * v_prev)
            step = g / (jnp.sqrt(_add_eps(v, eps_root)) + eps)
            if uses_params:
                step = step + weight_decay * p
            m = jnp.where(first, step, b1 * m_prev + step)
            new_u.append(_cast(m, g.dtype))
            new_m.append(_cast(m, m_prev.dtype))
            new_v.append(_cast(v, v_prev.dtype))
        mu = _unflatten(treedef, new_m)
        return _unflatten(treedef, new_u), ScaleByNovogradState(
            count=count, mu=mu, nu=_unflatten(treedef, new_v))

    return GradientTransformation(init_fn, update_fn)


# --- Adafactor -------------------------------------------------------------------------


class FactoredState(NamedTuple):
    """State of :func:`scale_by_factored_rms`.

    For a factored leaf (two dimensions >= ``min_dim_size_to_factor``) ``v_row`` and
    ``v_col`` hold the row and column averages and ``v`` is a 1-element placeholder;
    otherwise ``v`` holds the full second moment and the others are placeholders.
    """

    count: Any  # int32, shape ()
    v_row: Updates
    v_col: Updates
    v: Updates


def _factored_dims(shape, factored: bool, min_dim_size_to_factor: int):
    """The two largest dimensions ``(d1, d0)`` (d0 the largest) if worth factoring."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape, kind="stable")
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


def _decay_rate_pow(i, exponent: float = 0.8):
    """Adafactor's second-moment decay at step ``i``: ``1 - (i + 1)^(-exponent)``."""
    # Computed in float64 and cast to each parameter's dtype where it is used.
    t = jnp.asarray(i + 1, dtype=jnp.float64)
    return 1.0 - t ** (-exponent)


def scale_by_factored_rms(factored: bool = True, decay_rate: float = 0.8,
                          step_offset: int = 0, min_dim_size_to_factor: int = 128,
                          epsilon: float = 1e-30, decay_rate_fn=_decay_rate_pow
                          ) -> GradientTransformation:
    """Rescales updates by Adafactor's factored second-moment estimate. See :func:`adafactor`.

    For a matrix-like leaf the second moment is stored as row and column averages
    (memory ``n + m`` instead of ``n * m``) and recombined as
    ``v ~ outer(row, col) / mean(row)``; other leaves keep a full moment.

    Args:
        factored: factor the second moment of leaves with two large dimensions.
        decay_rate: exponent of the step-dependent decay ``1 - (t + 1)^(-decay_rate)``.
        step_offset: subtracted from the step before computing the decay (for
            fine-tuning from a checkpoint).
        min_dim_size_to_factor: factor only if the second-largest dimension is at least
            this large.
        epsilon: added to ``g^2``.
        decay_rate_fn: ``(step, decay_rate) -> decay``, Adafactor's by default.

    Returns:
        A :class:`GradientTransformation` with state :class:`FactoredState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_factored_rms(min_dim_size_to_factor=2)
        >>> p = jnp.zeros((2, 3))
        >>> u, state = tx.update(jnp.ones((2, 3)), tx.init(p), p)
        >>> print(u.shape, state.v_row.shape, state.v_col.shape)
        (2, 3) (2,) (3,)
    """
    _base.check_nonneg("scale_by_factored_rms", "epsilon", epsilon)
    _base.check_positive("scale_by_factored_rms", "min_dim_size_to_factor",
                         min_dim_size_to_factor)

    def init_leaf(p):
        dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
        placeholder = jnp.zeros((1,), dtype=p.dtype)
        if dims is None:
            return placeholder, placeholder, jnp.zeros_like(p)
        d1, d0 = dims
        row_shape = tuple(s for i, s in enumerate(p.shape) if i != d0)
        col_shape = tuple(s for i, s in enumerate(p.shape) if i != d1)
        return (jnp.zeros(row_shape, dtype=p.dtype), jnp.zeros(col_shape, dtype=p.dtype),
                placeholder)

    def init_fn(params):
        treedef, (ps,) = _flatten_all("scale_by_factored_rms", ("params",), params)
        rows, cols, vs = zip(*[init_leaf(p) for p in ps]) if ps else ((), (), ())
        return FactoredState(count=_zeros_count(), v_row=_unflatten(treedef, rows),
                             v_col=_unflatten(treedef, cols), v=_unflatten(treedef, vs))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        if params is None:
            raise ValueError("scale_by_factored_rms: " + NO_PARAMS_MSG)
        treedef, (gs, rows, cols, vs, ps) = _flatten_all(
            "scale_by_factored_rms",
            ("updates", "state.v_row", "state.v_col", "state.v", "params"),
            updates, state.v_row, state.v_col, state.v, params)
        decay = decay_rate_fn(state.count - step_offset, decay_rate)
        new_u, new_rows, new_cols, new_vs = [], [], [], []
        for g, row, col, v, p in zip(gs, rows, cols, vs, ps):
            dt = p.dtype
            d = jnp.asarray(decay, dtype=dt)
            g_sq = abs_sq(g) + epsilon
            dims = _factored_dims(p.shape, factored, min_dim_size_to_factor)
            if dims is None:
                v = _cast(d * v + (1 - d) * g_sq, dt)
                u = g / jnp.sqrt(v)
            else:
                d1, d0 = dims
                row = _cast(d * row + (1 - d) * jnp.mean(g_sq, axis=d0), dt)
                col = _cast(d * col + (1 - d) * jnp.mean(g_sq, axis=d1), dt)
                reduced_d1 = d1 - 1 if d1 > d0 else d1
                row_col_mean = jnp.mean(row, axis=reduced_d1, keepdims=True)
                row_factor = 1 / jnp.sqrt(row / row_col_mean)
                col_factor = 1 / jnp.sqrt(col)
                u = (g * jnp.expand_dims(row_factor, axis=d0)
                     * jnp.expand_dims(col_factor, axis=d1))
            new_u.append(_cast(u, g.dtype))
            new_rows.append(row)
            new_cols.append(col)
            new_vs.append(v)
        return _unflatten(treedef, new_u), FactoredState(
            count=safe_increment(state.count), v_row=_unflatten(treedef, new_rows),
            v_col=_unflatten(treedef, new_cols), v=_unflatten(treedef, new_vs))

    return GradientTransformation(init_fn, update_fn)


def _safe_rms(x, min_rms):
    return jnp.maximum(jnp.sqrt(jnp.mean(abs_sq(x))), min_rms)


def scale_by_param_block_rms(min_scale: float = 1e-3) -> GradientTransformation:
    """Scales each update leaf by the RMS of its parameter leaf (at least ``min_scale``).

    Used by :func:`adafactor` to make the step size relative to the parameter scale.

    Args:
        min_scale: the smallest scale, so that zero-initialised parameters still move.

    Returns:
        A stateless :class:`GradientTransformation` that needs ``params``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_param_block_rms()
        >>> u, _ = tx.update(jnp.ones(2), tx.init(None), jnp.array([3.0, -3.0]))
        >>> print(u.tolist())
        [3.0, 3.0]
    """
    _base.check_nonneg("scale_by_param_block_rms", "min_scale", min_scale)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        if params is None:
            raise ValueError("scale_by_param_block_rms: " + NO_PARAMS_MSG)
        updates = _base.tree_map_checked(
            lambda u, p: u * _cast(_safe_rms(p, min_scale), u.dtype), updates, params,
            names=("updates", "params"), where="scale_by_param_block_rms")
        return updates, state

    return GradientTransformation(init_empty_state, update_fn)


def scale_by_param_block_norm(min_scale: float = 1e-3) -> GradientTransformation:
    """Scales each update leaf by the L2 norm of its parameter leaf (at least ``min_scale``).

    Args:
        min_scale: the smallest scale.

    Returns:
        A stateless :class:`GradientTransformation` that needs ``params``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_param_block_norm()
        >>> u, _ = tx.update(jnp.ones(2), tx.init(None), jnp.array([3.0, 4.0]))
        >>> print(u.tolist())
        [5.0, 5.0]
    """
    _base.check_nonneg("scale_by_param_block_norm", "min_scale", min_scale)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        if params is None:
            raise ValueError("scale_by_param_block_norm: " + NO_PARAMS_MSG)
        updates = _base.tree_map_checked(
            lambda u, p: u * _cast(jnp.maximum(_norm(p), min_scale), u.dtype), updates, params,
            names=("updates", "params"), where="scale_by_param_block_norm")
        return updates, state

    return GradientTransformation(init_empty_state, update_fn)


ScaleByTrustRatioState = EmptyState


def scale_by_trust_ratio(min_norm: float = 0.0, trust_coefficient: float = 1.0,
                         eps: float = 0.0) -> GradientTransformation:
    """Scales each update leaf by the ratio of parameter norm to update norm (LARS/LAMB).

    ``u = u * trust_coefficient * ||p|| / (||u|| + eps)``, leaf by leaf, with norms at
    least ``min_norm``; the ratio is 1 where either norm is zero.

    Args:
        min_norm: lower bound of both norms.
        trust_coefficient: multiplies the ratio.
        eps: added to the update norm.

    Returns:
        A stateless :class:`GradientTransformation` that needs ``params``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_trust_ratio()
        >>> u, _ = tx.update(jnp.array([0.0, 1.0]), tx.init(None), jnp.array([3.0, 4.0]))
        >>> print(u.tolist())
        [0.0, 5.0]
    """
    _base.check_nonneg("scale_by_trust_ratio", "min_norm", min_norm)
    _base.check_nonneg("scale_by_trust_ratio", "trust_coefficient", trust_coefficient)
    _base.check_nonneg("scale_by_trust_ratio", "eps", eps)

    def scale_leaf(u, p):
        p_norm = jnp.maximum(_norm(p), min_norm)
        u_norm = jnp.maximum(_norm(u), min_norm)
        zero = jnp.logical_or(p_norm == 0, u_norm == 0)
        ratio = trust_coefficient * p_norm / jnp.where(zero, 1, u_norm + eps)
        return u * _cast(jnp.where(zero, 1, ratio), u.dtype)

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        if params is None:
            raise ValueError("scale_by_trust_ratio: " + NO_PARAMS_MSG)
        updates = _base.tree_map_checked(scale_leaf, updates, params,
                                         names=("updates", "params"),
                                         where="scale_by_trust_ratio")
        return updates, state

    return GradientTransformation(init_empty_state, update_fn)


def scale_by_sign() -> GradientTransformation:
    """Replaces every update by its sign (signSGD).

    Returns:
        A stateless :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_sign()
        >>> u, _ = tx.update(jnp.array([0.2, 0.0, -3.0]), tx.init(None))
        >>> print(u.tolist())
        [1.0, 0.0, -1.0]
    """

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        return tree_util.tree_map(jnp.sign, updates), state

    return GradientTransformation(init_empty_state, update_fn)


# --- momentum and averages ---------------------------------------------------------------


class TraceState(NamedTuple):
    """State of :func:`trace`."""

    trace: Updates


def trace(decay: float, nesterov: bool = False, accumulator_dtype: Optional[Any] = None
          ) -> GradientTransformation:
    """Momentum: ``t = g + decay * t``; the update is ``t`` (or ``g + decay * t``, Nesterov).

    Args:
        decay: the momentum coefficient, in [0, 1].
        nesterov: use Nesterov's look-ahead form.
        accumulator_dtype: dtype of the trace; ``None`` uses each parameter's dtype.

    Returns:
        A :class:`GradientTransformation` with state :class:`TraceState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.trace(decay=0.5)
        >>> state = tx.init(jnp.zeros(1))
        >>> for _ in range(2):
        ...     u, state = tx.update(jnp.ones(1), state)
        >>> print(float(u[0]))
        1.5
    """
    _base.check_rate("trace", "decay", decay, allow_one=True)
    accumulator_dtype = _canonical_dtype(accumulator_dtype)

    def init_fn(params):
        return TraceState(trace=_zeros_like_tree(params, accumulator_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ts) = _flatten_all("trace", ("updates", "state.trace"), updates, state.trace)
        new_u, new_t = [], []
        if _fused.use_momentum_update(list(zip(gs, ts)), decay):  # one kernel pass per leaf
            for g, t_prev in zip(gs, ts):
                outs = _fused.momentum_update(g, t_prev, decay=decay, nesterov=nesterov)
                new_u.append(outs[0])
                new_t.append(outs[-1])
            return _unflatten(treedef, new_u), TraceState(trace=_unflatten(treedef, new_t))
        for g, t_prev in zip(gs, ts):
            t = g + decay * t_prev
            new_u.append(_cast(g + decay * t if nesterov else t, g.dtype))
            new_t.append(_cast(t, t_prev.dtype))
        return _unflatten(treedef, new_u), TraceState(trace=_unflatten(treedef, new_t))

    return GradientTransformation(init_fn, update_fn)


class EmaState(NamedTuple):
    """State of :func:`ema`."""

    count: Any  # int32, shape ()
    ema: Updates


def ema(decay: float, debias: bool = True, accumulator_dtype: Optional[Any] = None
        ) -> GradientTransformation:
    """Exponential moving average of the updates: ``e = decay * e + (1 - decay) * g``.

    Args:
        decay: the decay rate, in [0, 1).
        debias: return ``e / (1 - decay^t)`` (unbiased for a constant input).
        accumulator_dtype: dtype of the average; ``None`` uses each parameter's dtype.

    Returns:
        A :class:`GradientTransformation` with state :class:`EmaState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.ema(decay=0.9)
        >>> u, state = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 4))  # debiased: exactly the input on step 1
        2.0
    """
    _base.check_rate("ema", "decay", decay, allow_one=not debias)
    accumulator_dtype = _canonical_dtype(accumulator_dtype)

    def init_fn(params):
        return EmaState(count=_zeros_count(), ema=_zeros_like_tree(params, accumulator_dtype))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, es) = _flatten_all("ema", ("updates", "state.ema"), updates, state.ema)
        count = safe_increment(state.count)
        bc = _bias_correction(decay, count)
        new_u, new_e = [], []
        for g, e_prev in zip(gs, es):
            e = (1 - decay) * g + decay * e_prev
            new_u.append(_cast(e / bc(e.dtype) if debias else e, g.dtype))
            new_e.append(_cast(e, e_prev.dtype))
        return _unflatten(treedef, new_u), EmaState(count=count, ema=_unflatten(treedef, new_e))

    return GradientTransformation(init_fn, update_fn)


# --- additive terms ------------------------------------------------------------------------


class WeightDecaySchedule(NamedTuple):
    """State of :func:`add_decayed_weights` when ``weight_decay`` is a schedule."""

    count: Any  # int32, shape ()


AddDecayedWeightsState = EmptyState


def add_decayed_weights(weight_decay: ScalarOrSchedule = 0.0, mask=None
                        ) -> GradientTransformation:
    """Adds ``weight_decay * params`` to the updates (decoupled weight decay, as in AdamW).

    Args:
        weight_decay: a finite float or a schedule of the step count.
        mask: optional pytree of booleans with the structure of the params (or a
            prefix of it), or a function ``params -> such a tree``; the decay applies
            only where it is True.

    Returns:
        A :class:`GradientTransformation` that needs ``params``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.add_decayed_weights(0.1)
        >>> u, _ = tx.update(jnp.array([1.0]), tx.init(None), jnp.array([10.0]))
        >>> print(float(u[0]))
        2.0
    """
    _base.check_finite("add_decayed_weights", "weight_decay", weight_decay)
    scheduled = callable(weight_decay)

    def init_fn(params):
        del params  # unused
        return WeightDecaySchedule(count=_zeros_count()) if scheduled else EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        if params is None:
            raise ValueError("add_decayed_weights: " + NO_PARAMS_MSG)
        if scheduled:
            wd = weight_decay(state.count)
            state = WeightDecaySchedule(count=safe_increment(state.count))
        elif isinstance(weight_decay, (int, float)) and weight_decay == 0:
            return updates, state
        else:
            wd = weight_decay
        updates = _base.tree_map_checked(
            lambda g, p: _cast(g + _as(wd, g.dtype) * p, g.dtype), updates, params,
            names=("updates", "params"), where="add_decayed_weights")
        return updates, state

    tx = GradientTransformation(init_fn, update_fn)
    if mask is not None:
        from nanofn.optim._combine import masked  # masked is a combinator built on blocks

        return masked(tx, mask)
    return tx


class AddNoiseState(NamedTuple):
    """State of :func:`add_noise`."""

    count: Any  # int32, shape ()
    rng_key: Any  # a nanofn.random key


def _as_key(key):
    from nanofn import random  # imported here so `import nanofn.optim` stays light

    # an int seed becomes a typed key, as optax makes it (`jax.random.key(seed)`)
    if isinstance(key, (int, np.integer)):
        return random.key(int(key))
    from nanofn._keys import PRNGKeyArray
    if isinstance(key, PRNGKeyArray):  # a typed key (random.key): kept as it is
        return key
    if getattr(key, "shape", None) == () and np.dtype(key.dtype).kind in "iu":
        return random.key(key)  # an int seed held as an array (inject_hyperparams)
    return key


def add_noise(eta: float, gamma: float, key=None, *, seed: Optional[int] = None
              ) -> GradientTransformation:
    """Adds annealed Gaussian noise: ``g + N(0, eta / t^gamma)``. See :func:`noisy_sgd`.

    Args:
        eta: initial variance of the noise, >= 0.
        gamma: decay exponent of the variance, >= 0.
        key: an int seed or a ``nanofn.random`` key (``None`` means seed 0).
        seed: the older optax spelling of an int ``key``; give one or the other.

    Returns:
        A :class:`GradientTransformation` with state :class:`AddNoiseState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.add_noise(eta=0.01, gamma=0.55, key=0)
        >>> u, state = tx.update(jnp.zeros(3), tx.init(jnp.zeros(3)))
        >>> print(u.shape, int(state.count))
        (3,) 1
    """
    _base.check_nonneg("add_noise", "eta", eta)
    _base.check_nonneg("add_noise", "gamma", gamma)
    if seed is not None:
        if key is not None:
            raise ValueError("add_noise: give `key` or `seed`, not both.")
        key = seed
    if key is None:
        key = 0

    def init_fn(params):
        del params  # unused
        return AddNoiseState(count=_zeros_count(), rng_key=_as_key(key))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        from nanofn import random

        from nanofn.optim.tree import random_like

        count = safe_increment(state.count)
        rng_key, sample_key = random.split(state.rng_key)  # optax's use of the key
        noise = random_like(sample_key, updates, sampler=random.normal)
        std = _PerDtype(lambda dt: jnp.sqrt(
            jnp.asarray(eta, dtype=dt) / jnp.asarray(count, dtype=dt) ** gamma))
        noisy = tree_util.tree_map(lambda g, n: g + std(g.dtype) * n, updates, noise)
        return noisy, AddNoiseState(count=count, rng_key=rng_key)

    return GradientTransformation(init_fn, update_fn)


# --- clipping and constraints ----------------------------------------------------------------


def clip(max_delta: float) -> GradientTransformation:
    """Clips every update element to ``[-max_delta, max_delta]``.

    Complex updates raise a ValueError (they have no order; optax refuses them too).

    Args:
        max_delta: the largest absolute value, >= 0.

    Returns:
        A stateless :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.clip(1.0)
        >>> u, _ = tx.update(jnp.array([-3.0, 0.5, 2.0]), tx.init(None))
        >>> print(u.tolist())
        [-1.0, 0.5, 1.0]
    """
    _base.check_nonneg("clip", "max_delta", max_delta)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        _base.reject_complex("clip", updates, "updates")
        return tree_util.tree_map(lambda g: jnp.clip(g, -max_delta, max_delta), updates), state

    return GradientTransformation(init_empty_state, update_fn)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Rescales all updates together so that their global L2 norm is at most ``max_norm``.

    ``u = u * max_norm / max(global_norm(u), max_norm)``.

    Args:
        max_norm: the largest allowed global norm, > 0.

    Returns:
        A stateless :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.clip_by_global_norm(1.0)
        >>> u, _ = tx.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, tx.init(None))
        >>> print(round(float(u["a"][0]), 4), round(float(u["b"][0]), 4))
        0.6 0.8
    """
    _base.check_positive("clip_by_global_norm", "max_norm", max_norm)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        factor = max_norm / jnp.maximum(_base.global_norm(updates), max_norm)
        per_dtype = _PerDtype(lambda dt: jnp.asarray(factor, dtype=dt))
        return tree_util.tree_map(lambda g: g * per_dtype(g.dtype), updates), state

    return GradientTransformation(init_empty_state, update_fn)


def clip_by_block_rms(threshold: float) -> GradientTransformation:
    """Rescales each update leaf so that its root mean square is at most ``threshold``.

    Args:
        threshold: the largest allowed RMS per leaf, > 0.

    Returns:
        A stateless :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.clip_by_block_rms(1.0)
        >>> u, _ = tx.update(jnp.array([4.0, -4.0]), tx.init(None))
        >>> print(u.tolist())
        [1.0, -1.0]
    """
    _base.check_positive("clip_by_block_rms", "threshold", threshold)

    def clip_leaf(u):
        denom = jnp.maximum(1.0, jnp.sqrt(jnp.mean(abs_sq(u))) / threshold)
        return u / _cast(denom, u.dtype)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        return tree_util.tree_map(clip_leaf, updates), state

    return GradientTransformation(init_empty_state, update_fn)


def centralize() -> GradientTransformation:
    """Gradient centralisation: subtracts from each leaf of rank > 1 its mean over all
    axes but the first.

    Returns:
        A stateless :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.centralize()
        >>> u, _ = tx.update(jnp.array([[1.0, 3.0], [0.0, 0.0]]), tx.init(None))
        >>> print(u.tolist())
        [[-1.0, 1.0], [0.0, 0.0]]
    """

    def center(g):
        if g.ndim <= 1:
            return g
        return g - jnp.mean(g, axis=tuple(range(1, g.ndim)), keepdims=True)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        return tree_util.tree_map(center, updates), state

    return GradientTransformation(init_empty_state, update_fn)


class ZeroNansState(NamedTuple):
    """State of :func:`zero_nans`: per leaf, whether the last update had a NaN."""

    found_nan: Any  # a pytree of bool scalars


def zero_nans() -> GradientTransformation:
    """Replaces NaNs in the updates by zeros and records, per leaf, whether it saw one.

    Returns:
        A :class:`GradientTransformation` with state :class:`ZeroNansState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.zero_nans()
        >>> u, state = tx.update(jnp.array([1.0, jnp.nan]), tx.init(jnp.zeros(2)))
        >>> print(u.tolist(), bool(state.found_nan))
        [1.0, 0.0] True
    """

    def init_fn(params):
        return ZeroNansState(
            found_nan=tree_util.tree_map(lambda p: jnp.asarray(False, dtype=jnp.bool_), params))

    def update_fn(updates, state, params=None, **extra_args):
        del state, params, extra_args  # unused
        leaves, treedef = tree_util.tree_flatten(updates)
        nans = [jnp.isnan(g) for g in leaves]
        found = [jnp.any(n) for n in nans]
        clean = [jnp.where(n, jnp.zeros_like(g), g) for n, g in zip(nans, leaves)]
        return _unflatten(treedef, clean), ZeroNansState(found_nan=_unflatten(treedef, found))

    return GradientTransformation(init_fn, update_fn)


NonNegativeParamsState = EmptyState


def keep_params_nonnegative() -> GradientTransformation:
    """Changes updates so that ``params + updates`` stays >= 0 (negative results go to 0).

    Returns:
        A stateless :class:`GradientTransformation` that needs ``params``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.keep_params_nonnegative()
        >>> p = jnp.array([1.0, 1.0])
        >>> u, _ = tx.update(jnp.array([-3.0, -0.5]), tx.init(None), p)
        >>> print(optim.apply_updates(p, u).tolist())
        [0.0, 0.5]
    """

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        if params is None:
            raise ValueError("keep_params_nonnegative: " + NO_PARAMS_MSG)
        updates = _base.tree_map_checked(
            lambda u, p: jnp.where(p + u < 0, -p, u), updates, params,
            names=("updates", "params"), where="keep_params_nonnegative")
        return updates, state

    return GradientTransformation(init_empty_state, update_fn)
