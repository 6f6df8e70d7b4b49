"""More optax optimizers: sign methods, Adan, Rprop, SM3, Polyak steps, optimistic GD.

Each block (``scale_by_<name>``) is a state NamedTuple plus a factory of two closures,
as in ``_transform.py``; each alias is a ``chain`` of blocks ending in the learning
rate, with optax's names, argument order and defaults (``optax/_src/alias.py``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Optional

import numpy as np

import nanofn.numpy as jnp
from nanofn import tree_util
from nanofn.optim import _transform
from nanofn.optim import tree as otu
from nanofn.optim._base import (
    GradientTransformation,
    ScalarOrSchedule,
    Updates,
    init_empty_state,
    reject_complex,
)
from nanofn.optim._combine import chain
from nanofn.optim._transform import _zeros_count, safe_increment

# --- building blocks ------------------------------------------------------------------------


class ScaleBySM3State(NamedTuple):
    """State of :func:`scale_by_sm3`: one accumulator per axis of each leaf, and momentum."""

    mu: Updates  # per leaf, a list of 1-d arrays (one per axis)
    nu: Updates


def scale_by_sm3(b1: float = 0.9, b2: float = 1.0, eps: float = 1e-8) -> GradientTransformation:
    """Rescales updates by SM3's cover-based second moments. See :func:`sm3`.

    For a leaf of rank ``r >= 2`` SM3 keeps one vector per axis; the accumulator of an
    entry is the minimum over its axes' vectors plus ``g**2``, and each axis vector
    then keeps the maximum of the accumulator over the other axes. Rank 0 and 1 leaves
    keep a plain sum of squares. Complex parameters raise a ValueError, as in optax.

    Args:
        b1: decay of the momentum on the rescaled updates.
        b2: decay of the accumulators (1.0 sums the squares, as the paper does).
        eps: added inside the inverse square root.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleBySM3State`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_sm3()
        >>> u, state = tx.update(jnp.array([2.0, -4.0]), tx.init(jnp.zeros(2)))
        >>> print([round(x, 4) for x in u.tolist()])
        [0.1, -0.1]
    """

    def init_fn(params):
        reject_complex("scale_by_sm3", params)  # as optax
        mu = tree_util.tree_map(
            lambda p: [jnp.zeros((np.shape(p)[i],), dtype=jnp.result_type(p))
                       for i in range(np.ndim(p))], params)
        return ScaleBySM3State(mu=mu, nu=otu.zeros_like(params))

    def expanded(shape, axis):
        return [1] * axis + [shape[axis]] + [1] * (len(shape) - axis - 1)

    def new_accum(g, v):
        c0 = (1.0 - b2) if b2 != 1.0 else 1.0
        if g.ndim < 2:
            return c0 * g ** 2 + b2 * v[0]
        return c0 * g ** 2 + b2 * functools.reduce(jnp.minimum, v)

    def new_mu(a, i):
        if a.ndim < 2:
            return a
        return jnp.max(a, axis=tuple(j for j in range(a.ndim) if j != i))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        g_leaves, treedef = tree_util.tree_flatten(updates)
        mu_leaves = treedef.flatten_up_to(state.mu)
        nu_leaves = treedef.flatten_up_to(state.nu)
        new_u, new_mu_leaves = [], []
        for g, mus, nu in zip(g_leaves, mu_leaves, nu_leaves):
            vs = [jnp.reshape(mus[i], expanded(g.shape, i)) for i in range(g.ndim)]
            accum = new_accum(g, vs) if g.ndim else (1.0 if b2 == 1.0 else 1.0 - b2) * g ** 2
            inv = jnp.where(accum > 0, 1.0 / jnp.sqrt(accum + eps), 0.0)
            up = g * inv
            new_u.append((1 - b1) * up + b1 * nu)
            new_mu_leaves.append([new_mu(accum, i) for i in range(g.ndim)])
        nu_tree = treedef.unflatten(new_u)
        return nu_tree, ScaleBySM3State(mu=treedef.unflatten(new_mu_leaves), nu=nu_tree)

    return GradientTransformation(init_fn, update_fn)


class ScaleByAdanState(NamedTuple):
    """State of :func:`scale_by_adan`."""

    m: Updates  # first moment of the gradients
    v: Updates  # first moment of the gradient differences
    n: Updates  # second moment of g + (1 - b2) (g - g_prev)
    g: Updates  # previous gradient
    t: Any  # int32, shape ()


def scale_by_adan(b1: float = 0.98, b2: float = 0.92, b3: float = 0.99, eps: float = 1e-8,
                  eps_root: float = 0.0) -> GradientTransformation:
    """Rescales updates by Adan's Nesterov moments. See :func:`adan`.

    Args:
        b1: decay of the gradients' moment.
        b2: decay of the gradient differences' moment.
        b3: decay of the second moment.
        eps: added to the denominator outside the square root.
        eps_root: added inside the square root.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByAdanState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_adan()
        >>> u, state = tx.update(jnp.array([3.0]), tx.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 4))
        1.0
    """

    def init_fn(params):
        z = otu.zeros_like
        return ScaleByAdanState(m=z(params), v=z(params), n=z(params), g=z(params),
                                t=_zeros_count())

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        g = updates
        diff = otu.where(state.t == 0, otu.zeros_like(g), otu.sub(g, state.g))
        m = otu.update_moment(g, state.m, b1, 1)
        v = otu.update_moment(diff, state.v, b2, 1)
        sq = otu.add_scale(g, 1 - b2, diff)
        n = otu.update_moment_per_elem_norm(sq, state.n, b3, 2)
        t = safe_increment(state.t)
        m_hat = otu.bias_correction(m, b1, t)
        v_hat = otu.bias_correction(v, b2, t)
        n_hat = otu.bias_correction(n, b3, t)
        u = otu.add_scale(m_hat, 1 - b2, v_hat)
        u = otu.div(u, tree_util.tree_map(lambda x: jnp.sqrt(x + eps_root) + eps, n_hat))
        return u, ScaleByAdanState(m=m, v=v, n=n, g=g, t=t)

    return GradientTransformation(init_fn, update_fn)


class ScaleByRpropState(NamedTuple):
    """State of :func:`scale_by_rprop`: a step size per entry and the previous update."""

    step_sizes: Updates
    prev_updates: Updates


def scale_by_rprop(learning_rate: float, eta_minus: float = 0.5, eta_plus: float = 1.2,
                   min_step_size: float = 1e-6, max_step_size: float = 50.0
                   ) -> GradientTransformation:
    """Rprop's sign-based steps with per-entry step sizes. See :func:`rprop`.

    Each entry's step grows by ``eta_plus`` while its gradient keeps its sign and
    shrinks by ``eta_minus`` when the sign flips (and that step is skipped). As in
    optax, the update returned is the step chosen at the previous call, so the first
    update is zero. Complex updates raise a ValueError (optax's clip refuses them).

    Args:
        learning_rate: the initial step size of every entry.
        eta_minus: factor applied on a sign flip, in (0, 1).
        eta_plus: factor applied while the sign is kept, > 1.
        min_step_size: lower bound of the step sizes.
        max_step_size: upper bound of the step sizes.

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByRpropState`. Its
        updates point uphill: :func:`rprop` negates them.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_rprop(0.1)
        >>> state = tx.init(jnp.zeros(2))
        >>> u, state = tx.update(jnp.array([5.0, -1.0]), state)
        >>> u, state = tx.update(jnp.array([5.0, -1.0]), state)
        >>> print([round(x, 4) for x in u.tolist()])
        [0.1, -0.1]
    """

    def init_fn(params):
        return ScaleByRpropState(step_sizes=otu.full_like(params, learning_rate),
                                 prev_updates=otu.zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        reject_complex("scale_by_rprop", updates, "updates")
        sign = otu.mul(updates, state.prev_updates)
        step_sizes = tree_util.tree_map(
            lambda s, step: jnp.where(
                s == 0, step,
                jnp.clip(step * jnp.where(s > 0, eta_plus, eta_minus),
                         min_step_size, max_step_size)),
            sign, state.step_sizes)
        prev_updates = tree_util.tree_map(
            lambda s, g, step: jnp.where(s < 0, jnp.zeros_like(g), step * jnp.sign(g)),
            sign, updates, step_sizes)
        # As optax 0.2.8 does, emit the step chosen at the previous call (zero on the
        # first): the sizes adapt now, the move they choose is applied one step later.
        new_updates = tree_util.tree_map(
            lambda s, p: jnp.where(s < 0, jnp.zeros_like(p), p), sign, state.prev_updates)
        return new_updates, ScaleByRpropState(step_sizes=step_sizes, prev_updates=prev_updates)

    return GradientTransformation(init_fn, update_fn)


def scale_by_polyak(f_min: float = 0.0, max_learning_rate: float = 1.0, eps: float = 0.0,
                    variant: str = "sps") -> GradientTransformation:
    """Scales the updates by the Polyak step ``(f(x) - f_min) / ||g||^2``. See :func:`polyak_sgd`.

    ``update`` needs the loss at the current parameters as the keyword ``value``.

    Args:
        f_min: a lower bound of the objective.
        max_learning_rate: the largest step taken.
        eps: added to ``||g||^2``.
        variant: ``"sps"`` or ``"sps+"`` (which clips a negative gap to zero).

    Returns:
        A stateless :class:`GradientTransformation` whose ``update`` takes ``value=``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_polyak()
        >>> u, _ = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)), value=jnp.array(1.0))
        >>> print(float(u[0]))  # step 1/4 times the gradient 2
        0.5
    """
    if variant not in ("sps", "sps+"):
        raise ValueError(f"scale_by_polyak: variant must be 'sps' or 'sps+', got {variant!r}.")

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args  # unused
        if value is None:
            raise TypeError("scale_by_polyak: `update` needs the loss at the current params as "
                            "`value=`, e.g. `opt.update(grads, state, params, value=loss)`.")
        grad_sq_norm = otu.norm(updates, squared=True)
        gap = jnp.asarray(value - f_min).astype(grad_sq_norm.dtype)
        if variant == "sps+":
            gap = jnp.maximum(gap, 0.0)
        step = jnp.where(grad_sq_norm + eps <= np.finfo(float).eps, jnp.asarray(0.0),
                         jnp.minimum(gap / (grad_sq_norm + eps), max_learning_rate))
        return otu.scale(step, updates), state

    return GradientTransformation(init_empty_state, update_fn)


class ScaleByOptimisticGradientState(NamedTuple):
    """State of :func:`scale_by_optimistic_gradient`."""

    is_initial_step: Any  # bool, shape ()
    previous_gradient: Updates


def scale_by_optimistic_gradient(alpha: float = 1.0, beta: float = 1.0
                                 ) -> GradientTransformation:
    """The optimistic update ``(alpha + beta) g_t - beta g_{t-1}``. See
    :func:`optimistic_gradient_descent`.

    On the first step ``g_0 = g_1``, so the update is ``alpha g_1``.

    Args:
        alpha: weight of the current gradient.
        beta: weight of the correction (the optimism).

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByOptimisticGradientState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_optimistic_gradient()
        >>> state = tx.init(jnp.zeros(1))
        >>> u, state = tx.update(jnp.array([1.0]), state)
        >>> u, state = tx.update(jnp.array([3.0]), state)
        >>> print(float(u[0]))  # 2 * 3 - 1
        5.0
    """

    def init_fn(params):
        return ScaleByOptimisticGradientState(is_initial_step=jnp.asarray(True),
                                              previous_gradient=otu.zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused

        def f(g, prev):
            prev = jnp.where(state.is_initial_step, g, prev)
            return (alpha + beta) * g - beta * prev

        new_updates = tree_util.tree_map(f, updates, state.previous_gradient)
        return new_updates, ScaleByOptimisticGradientState(
            is_initial_step=jnp.asarray(False), previous_gradient=updates)

    return GradientTransformation(init_fn, update_fn)


def normalize_by_update_norm(scale_factor: float = 1.0, eps: float = 1e-6
                             ) -> GradientTransformation:
    """Divides the updates by their global norm (plus ``eps``) and multiplies by ``scale_factor``.

    Args:
        scale_factor: the norm of the result.
        eps: keeps the division finite for zero updates.

    Returns:
        A stateless :class:`GradientTransformation`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.normalize_by_update_norm(eps=0.0)
        >>> u, _ = tx.update(jnp.array([3.0, 4.0]), tx.init(None))
        >>> print([round(x, 4) for x in u.tolist()])
        [0.6, 0.8]
    """

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        g_norm = otu.norm(updates) + eps
        return tree_util.tree_map(lambda g: g * (scale_factor / g_norm), updates), state

    return GradientTransformation(init_empty_state, update_fn)


class ApplyEvery(NamedTuple):
    """State of :func:`apply_every`."""

    count: Any  # int32, shape ()
    grad_acc: Updates


def apply_every(k: int = 1) -> GradientTransformation:
    """Accumulates updates over ``k`` steps and emits their sum every ``k``-th step (zeros otherwise).

    Args:
        k: emit once every ``k`` steps.

    Returns:
        A :class:`GradientTransformation` with state :class:`ApplyEvery`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.apply_every(2)
        >>> state = tx.init(jnp.zeros(1))
        >>> u1, state = tx.update(jnp.array([1.0]), state)
        >>> u2, state = tx.update(jnp.array([2.0]), state)
        >>> print(float(u1[0]), float(u2[0]))
        0.0 3.0
    """

    def init_fn(params):
        return ApplyEvery(count=_zeros_count(), grad_acc=otu.zeros_like(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        c = state.count % k
        acc = c != 0
        grad_acc = tree_util.tree_map(lambda g, ga: acc * ga + g, updates, state.grad_acc)
        emit = c == k - 1
        new_updates = tree_util.tree_map(lambda ga: emit * ga, grad_acc)
        return new_updates, ApplyEvery(count=(state.count + 1) % k, grad_acc=grad_acc)

    return GradientTransformation(init_fn, update_fn)


# --- aliases -----------------------------------------------------------------------------------


def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    r"""signSGD: steps of ``learning_rate`` along the sign of each gradient entry.

    ``u_t = -alpha_t sign(g_t)``.

    Args:
        learning_rate: a float or a schedule.

    Returns:
        ``chain(scale_by_sign(), scale_by_learning_rate(learning_rate))``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> solver = optim.sign_sgd(0.1)
        >>> params = jnp.array([1.0, -2.0])
        >>> u, _ = solver.update(nanofn.grad(lambda x: jnp.sum(x ** 2))(params),
        ...                      solver.init(params))
        >>> print([round(x, 4) for x in u.tolist()])
        [-0.1, 0.1]

    References:
        Bernstein et al., signSGD: Compressed Optimisation for Non-Convex Problems, ICML 2018.
    """
    return chain(_transform.scale_by_sign(), _transform.scale_by_learning_rate(learning_rate))


def signum(learning_rate: ScalarOrSchedule, beta: float = 0.9,
           accumulator_dtype: Optional[Any] = None) -> GradientTransformation:
    r"""Signum: signSGD on an exponential moving average of the gradients.

    ``m_t = beta m_{t-1} + (1 - beta) g_t``, ``u_t = -alpha_t sign(m_t)``.

    Args:
        learning_rate: a float or a schedule.
        beta: decay of the moving average.
        accumulator_dtype: dtype of the average; ``None`` uses the params'.

    Returns:
        ``chain(ema(beta, debias=False), scale_by_sign(), scale_by_learning_rate)``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> solver = optim.signum(0.1)
        >>> u, _ = solver.update(jnp.array([2.0, -3.0]), solver.init(jnp.zeros(2)))
        >>> print([round(x, 4) for x in u.tolist()])
        [-0.1, 0.1]

    References:
        Bernstein et al., signSGD: Compressed Optimisation for Non-Convex Problems, ICML 2018.
    """
    return chain(_transform.ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
                 _transform.scale_by_sign(), _transform.scale_by_learning_rate(learning_rate))


def adamaxw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
            eps: float = 1e-8, weight_decay: float = 1e-4, mask=None) -> GradientTransformation:
    r"""Adamax with decoupled weight decay (as AdamW is to Adam).

    ``u_t = -alpha_t (m_t / ((1 - b1^t) v_t) + lambda w_{t-1})`` with Adamax's ``m``, ``v``.

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment.
        b2: decay of the infinity norm.
        eps: added to ``|g_t|``.
        weight_decay: the decay ``lambda``.
        mask: which params decay (a tree of booleans or a function of the params).

    Returns:
        ``chain(scale_by_adamax, add_decayed_weights, scale_by_learning_rate)``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> solver = optim.adamaxw(0.1, weight_decay=0.0)
        >>> params = jnp.array([1.0])
        >>> u, _ = solver.update(jnp.array([2.0]), solver.init(params), params)
        >>> print(round(float(u[0]), 4))
        -0.1

    References:
        Loshchilov and Hutter, Decoupled Weight Decay Regularization, ICLR 2019.
    """
    return chain(_transform.scale_by_adamax(b1=b1, b2=b2, eps=eps),
                 _transform.add_decayed_weights(weight_decay, mask),
                 _transform.scale_by_learning_rate(learning_rate))


def adan(learning_rate: ScalarOrSchedule, b1: float = 0.98, b2: float = 0.92,
         b3: float = 0.99, eps: float = 1e-8, eps_root: float = 1e-8,
         weight_decay: float = 0.0, mask=None) -> GradientTransformation:
    r"""Adan: adaptive Nesterov momentum.

    ::

        m_t = b1 m + (1 - b1) g_t,   v_t = b2 v + (1 - b2) (g_t - g_{t-1})
        n_t = b3 n + (1 - b3) (g_t + (1 - b2)(g_t - g_{t-1}))^2
        u_t = -alpha_t ((m_hat + (1 - b2) v_hat) / (sqrt(n_hat + eps_root) + eps) + lambda w)

    with hats the bias-corrected moments and ``g_0 = g_1``.

    Args:
        learning_rate: a float or a schedule.
        b1, b2, b3: the three decays.
        eps: added outside the square root.
        eps_root: added inside the square root.
        weight_decay: decoupled weight decay ``lambda``.
        mask: which params decay.

    Returns:
        ``chain(scale_by_adan, add_decayed_weights, scale_by_learning_rate)``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> solver = optim.adan(0.1)
        >>> params = jnp.array([1.0])
        >>> u, _ = solver.update(jnp.array([2.0]), solver.init(params), params)
        >>> print(round(float(u[0]), 4))
        -0.1

    References:
        Xie et al., Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
        Models, 2022 (arXiv:2208.06677).
    """
    return chain(scale_by_adan(b1=b1, b2=b2, b3=b3, eps=eps, eps_root=eps_root),
                 _transform.add_decayed_weights(weight_decay, mask),
                 _transform.scale_by_learning_rate(learning_rate))


def rprop(learning_rate: float, eta_minus: float = 0.5, eta_plus: float = 1.2,
          min_step_size: float = 1e-6, max_step_size: float = 50.0) -> GradientTransformation:
    r"""Rprop: resilient backpropagation, sign steps with adaptive per-entry sizes.

    Meant for full-batch training: the step sizes adapt to sign changes of the gradient,
    not to its magnitude. ``learning_rate`` is the initial step size.

    Args:
        learning_rate: initial step size of every entry (a float, no schedule).
        eta_minus: shrink factor on a sign flip.
        eta_plus: growth factor while the sign is kept.
        min_step_size: lower bound of the step sizes.
        max_step_size: upper bound of the step sizes.

    Returns:
        ``chain(scale_by_rprop(...), scale(-1.0))``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> solver = optim.rprop(0.1)
        >>> state = solver.init(jnp.zeros(2))
        >>> for _ in range(2):
        ...     u, state = solver.update(jnp.array([2.0, -3.0]), state)
        >>> print([round(x, 4) for x in u.tolist()])
        [-0.1, 0.1]

    References:
        Riedmiller and Braun, A direct adaptive method for faster backpropagation learning:
        the RPROP algorithm, ICNN 1993.
    """
    return chain(scale_by_rprop(learning_rate=learning_rate, eta_minus=eta_minus,
                                eta_plus=eta_plus, min_step_size=min_step_size,
                                max_step_size=max_step_size),
                 _transform.scale(-1.0))


def sm3(learning_rate: float, momentum: float = 0.9) -> GradientTransformation:
    r"""SM3: a memory-efficient adaptive optimizer (one accumulator per axis).

    Args:
        learning_rate: the step size (a float).
        momentum: decay of the momentum on the rescaled updates.

    Returns:
        ``chain(scale_by_sm3(momentum), scale(-learning_rate))``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> solver = optim.sm3(1.0)
        >>> u, _ = solver.update(jnp.array([2.0]), solver.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 4))
        -0.1

    References:
        Anil et al., Memory-Efficient Adaptive Optimization, NeurIPS 2019.
    """
    return chain(scale_by_sm3(momentum), _transform.scale(-learning_rate))


def polyak_sgd(max_learning_rate: float = 1.0, scaling: ScalarOrSchedule = 1.0,
               f_min: float = 0.0, eps: float = 0.0, variant: str = "sps"
               ) -> GradientTransformation:
    r"""SGD with the Polyak step size ``min((f(x) - f_min) / ||g||^2, max_learning_rate)``.

    ``update`` needs the current loss: ``opt.update(grads, state, params, value=loss)``.

    Args:
        max_learning_rate: the largest step.
        scaling: a factor (or schedule) on the step.
        f_min: a lower bound of the objective (0 for interpolating models).
        eps: added to ``||g||^2``.
        variant: ``"sps"`` or ``"sps+"``.

    Returns:
        ``chain(sgd(learning_rate=scaling), scale_by_polyak(...))``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.polyak_sgd()
        >>> params = jnp.array([1.0, 2.0])
        >>> value, grad = nanofn.value_and_grad(f)(params)
        >>> u, _ = solver.update(grad, solver.init(params), params, value=value)
        >>> print([round(x, 4) for x in optim.apply_updates(params, u).tolist()])
        [0.5, 1.0]

    References:
        Loizou et al., Stochastic Polyak Step-size for SGD, AISTATS 2021.
    """
    from nanofn.optim._alias import sgd
    return chain(sgd(learning_rate=scaling),
                 scale_by_polyak(max_learning_rate=max_learning_rate, f_min=f_min, eps=eps,
                                 variant=variant))


def optimistic_gradient_descent(learning_rate: ScalarOrSchedule, alpha: float = 1.0,
                                beta: float = 1.0) -> GradientTransformation:
    r"""Optimistic gradient descent, for min-max games.

    ``u_t = -lr ((alpha + beta) g_t - beta g_{t-1})``.

    Args:
        learning_rate: a float or a schedule.
        alpha: weight of the current gradient.
        beta: the optimism.

    Returns:
        ``chain(scale_by_optimistic_gradient, scale_by_learning_rate)``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> solver = optim.optimistic_gradient_descent(0.1)
        >>> u, _ = solver.update(jnp.array([2.0]), solver.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 4))
        -0.2

    References:
        Mokhtari et al., A Unified Analysis of Extra-gradient and Optimistic Gradient
        Methods for Saddle Point Problems, AISTATS 2020.
    """
    return chain(scale_by_optimistic_gradient(alpha=alpha, beta=beta),
                 _transform.scale_by_learning_rate(learning_rate))


def optimistic_adam(learning_rate: float, optimism: Optional[float] = None, b1: float = 0.9,
                    b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                    mu_dtype: Optional[Any] = None, *, nesterov: bool = True
                    ) -> GradientTransformation:
    r"""Optimistic Adam: Adam's direction ``d_t``, then ``u_t = -(lr + optimism) d_t + optimism d_{t-1}``.

    Args:
        learning_rate: the step size (a float; optax rejects a schedule here).
        optimism: weight of the correction; ``None`` uses ``learning_rate``.
        b1, b2, eps, eps_root, mu_dtype, nesterov: as in :func:`adam` (Nesterov by default).

    Returns:
        ``chain(scale_by_adam, scale_by_optimistic_gradient(learning_rate, optimism),
        scale_by_learning_rate(1.0))``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> solver = optim.optimistic_adam(0.1)
        >>> u, _ = solver.update(jnp.array([2.0]), solver.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 4))
        -0.1474

    References:
        Daskalakis et al., Training GANs with Optimism, ICLR 2018.
    """
    if callable(learning_rate):
        raise TypeError("optimistic_adam: `learning_rate` must be a number, not a schedule; "
                        "use optimistic_adam_v2 for a scheduled learning rate.")
    if optimism is None:
        optimism = learning_rate
    return chain(_transform.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                          mu_dtype=mu_dtype, nesterov=nesterov),
                 scale_by_optimistic_gradient(alpha=learning_rate, beta=optimism),
                 _transform.scale_by_learning_rate(1.0))


def optimistic_adam_v2(learning_rate: ScalarOrSchedule, *, alpha: float = 1.0,
                       beta: float = 1.0, b1: float = 0.9, b2: float = 0.999,
                       eps: float = 1e-8, eps_root: float = 0.0,
                       mu_dtype: Optional[Any] = None, nesterov: bool = True
                       ) -> GradientTransformation:
    r"""Optimistic Adam with the optimism as ``alpha``/``beta`` and a schedulable learning rate.

    ``u_t = -lr ((alpha + beta) d_t - beta d_{t-1})`` with ``d_t`` Adam's direction.

    Args:
        learning_rate: a float or a schedule.
        alpha, beta: as in :func:`scale_by_optimistic_gradient`.
        b1, b2, eps, eps_root, mu_dtype, nesterov: as in :func:`adam`.

    Returns:
        ``chain(scale_by_adam, scale_by_optimistic_gradient, scale_by_learning_rate)``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> solver = optim.optimistic_adam_v2(0.1)
        >>> u, _ = solver.update(jnp.array([2.0]), solver.init(jnp.zeros(1)))
        >>> print(round(float(u[0]), 4))
        -0.1474
    """
    return chain(_transform.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                          mu_dtype=mu_dtype, nesterov=nesterov),
                 scale_by_optimistic_gradient(alpha=alpha, beta=beta),
                 _transform.scale_by_learning_rate(learning_rate))
