"""More of optax.contrib: normalize, complex splitting, DP-SGD, ACProp, Sophia and GaLore.

- :func:`normalize` divides the updates by their global norm (SAM's adversarial step).
- :func:`split_real_and_imaginary` runs an optimizer on complex parameters as if each
  were two real ones.
- :func:`differentially_private_aggregate` and :func:`dpsgd` clip per-example gradients
  and add Gaussian noise (Abadi et al.); the noise is drawn from ``nanofn.random`` keys,
  which give the numbers JAX gives for the same key.
- :func:`scale_by_acprop` / :func:`acprop`: AdaBelief with an asynchronous denominator.
- :func:`sophia`, with :func:`hutchinson_estimator_diag_hessian`: a clipped, diagonal
  second-order method that needs the objective (``obj_fn=``) in ``update``.
- :func:`scale_by_galore` / :func:`galore`: the base optimizer runs on gradients projected
  onto a low-rank subspace found from their SVD.

Names, argument order, defaults and numerics follow optax 0.2.8's ``optax.contrib``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple, Optional, Sequence, Union

import numpy as np

import nanofn
import nanofn.numpy as jnp
from nanofn import lax, tree_util
from nanofn.optim import _base, _transform
from nanofn.optim import tree as otu
from nanofn.optim._base import (
    NO_PARAMS_MSG,
    EmptyState,
    GradientTransformation,
    OptState,
    ScalarOrSchedule,
    Updates,
    identity,
    init_empty_state,
)
from nanofn.optim._clipping import per_example_global_norm_clip
from nanofn.optim._combine import chain
from nanofn.optim._transform import (
    ScaleByBeliefState,
    _add_eps,
    _as_key,
    _bias_correction,
    _canonical_dtype,
    _cast,
    _flatten_all,
    _unflatten,
    _zeros_count,
    _zeros_like_tree,
    safe_increment,
)

__all__ = [
    "DifferentiallyPrivateAggregateState", "GaLoreDimensionNumbers", "GaLoreState",
    "HutchinsonState", "NormalizeState", "SophiaState", "SplitRealAndImaginaryState",
    "acprop", "differentially_private_aggregate", "dpsgd", "galore",
    "hutchinson_estimator_diag_hessian", "normalize", "scale_by_acprop", "scale_by_galore",
    "sophia", "split_real_and_imaginary",
]


def _check_int(fn: str, name: str, value, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: argument `{name}` must be an int, got {value!r}.")
    if value < low:
        raise ValueError(f"{fn}: argument `{name}` must be >= {low}, got {value}.")


def _check_key(fn: str, name: str, key):
    key = _as_key(key)
    from nanofn._keys import PRNGKeyArray
    if isinstance(key, PRNGKeyArray) and key.shape == ():
        return key
    if tuple(np.shape(key)) != (2,) or np.dtype(key.dtype) != np.uint32:
        raise TypeError(f"{fn}: argument `{name}` must be an int seed or a nanofn.random key "
                        f"(uint32, shape (2,)), got {key!r:.80}")
    return key


# --- normalize ------------------------------------------------------------------------------

NormalizeState = EmptyState


def normalize() -> GradientTransformation:
    """Divides the updates by their global (Euclidean) norm, over all leaves together.

    The adversarial step of SAM: ``chain(normalize(), sgd(rho))`` is a step of length
    ``rho``. An all-zero update has no direction and gives NaN, as in optax.

    Returns:
        A stateless :class:`GradientTransformation` (state :data:`NormalizeState`).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.contrib import normalize
        >>> tx = normalize()
        >>> u, _ = tx.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, tx.init(None))
        >>> print(u["a"].tolist(), u["b"].tolist())
        [0.6000000238418579] [0.800000011920929]
    """

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        g_norm = otu.norm(updates)
        return tree_util.tree_map(lambda g: _cast(g / g_norm, g.dtype), updates), state

    return GradientTransformation(init_empty_state, update_fn)


# --- complex parameters ---------------------------------------------------------------------


class SplitRealAndImaginaryArrays(NamedTuple):
    """The two real arrays a complex leaf is split into by :func:`split_real_and_imaginary`."""

    real: Any
    imaginary: Any


class SplitRealAndImaginaryState(NamedTuple):
    """State of :func:`split_real_and_imaginary`: the inner optimizer's state, built for
    the split (real) parameters."""

    inner_state: OptState


def _split_complex(x):
    if x is not None and jnp.iscomplexobj(x):
        return SplitRealAndImaginaryArrays(jnp.real(x), jnp.imag(x))
    return x


def _merge_complex(x):
    if isinstance(x, SplitRealAndImaginaryArrays):
        return x.real + x.imaginary * 1j
    return x


def split_real_and_imaginary(inner: GradientTransformation) -> GradientTransformation:
    """Runs ``inner`` on complex leaves as if each were a pair of real ones.

    Every complex leaf of the updates and params becomes a pair ``(real, imaginary)``
    of real arrays before ``inner`` sees it, and the pair of transformed updates is
    put back together as ``real + 1j * imaginary``. Real leaves pass through untouched.
    So Adam on a complex ``z`` behaves exactly like Adam on ``(x, y)`` with
    ``z = x + iy`` (its second moments are per part, not ``|g|^2``).

    Gradients of a real loss with respect to complex parameters come out of
    ``nanofn.grad`` conjugated (JAX's convention): conjugate them before ``update``
    to descend.

    Args:
        inner: the transformation to run on the real pairs.

    Returns:
        A :class:`GradientTransformation` with state :class:`SplitRealAndImaginaryState`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> from nanofn.optim.contrib import split_real_and_imaginary
        >>> f = lambda z: jnp.sum(jnp.real(z * jnp.conj(z)))
        >>> tx = split_real_and_imaginary(optim.sgd(0.25))
        >>> z = jnp.array([1.0 + 2.0j])
        >>> state = tx.init(z)
        >>> g = jnp.conj(nanofn.grad(f)(z))
        >>> u, state = tx.update(g, state, z)
        >>> print(optim.apply_updates(z, u).tolist())
        [(0.5+1j)]
    """
    inner = _base.with_extra_args_support(inner)

    def init_fn(params):
        return SplitRealAndImaginaryState(
            inner_state=inner.init(tree_util.tree_map(_split_complex, params)))

    def update_fn(updates, state, params=None, **extra_args):
        split_updates = tree_util.tree_map(_split_complex, updates)
        split_params = tree_util.tree_map(_split_complex, params)
        new_updates, inner_state = inner.update(split_updates, state.inner_state,
                                                split_params, **extra_args)
        merged = tree_util.tree_map(
            _merge_complex, new_updates,
            is_leaf=lambda x: isinstance(x, SplitRealAndImaginaryArrays))
        return merged, SplitRealAndImaginaryState(inner_state=inner_state)

    return GradientTransformation(init_fn, update_fn)


# --- differential privacy -------------------------------------------------------------------


class DifferentiallyPrivateAggregateState(NamedTuple):
    """State of :func:`differentially_private_aggregate`: the PRNG key of the next noise."""

    rng_key: Any


def differentially_private_aggregate(l2_norm_clip, noise_multiplier, key=None, *,
                                     seed: Optional[int] = None) -> GradientTransformation:
    """Aggregates per-example gradients as DP-SGD does: clip, sum, add noise, average.

    Each example's gradient (the whole tree) is scaled down to global norm at most
    ``l2_norm_clip``; the clipped gradients are summed, Gaussian noise of standard
    deviation ``l2_norm_clip * noise_multiplier`` is added to every entry, and the
    result is divided by the batch size. The noise for the leaves comes from
    ``random.split(state_key, n_leaves + 1)`` (the first key is the next state's), so a
    seed gives the same noise as optax's for the same seed.

    The updates must be per-example gradients, each leaf with the batch on axis 0 (e.g.
    from ``nanofn.vmap(nanofn.grad(loss), in_axes=(None, 0))``), so this must come
    first in a chain; gradient accumulation (``MultiSteps``, ``apply_every``) does not
    compose with it.

    Args:
        l2_norm_clip: largest global L2 norm of one example's gradient, >= 0.
        noise_multiplier: ratio of the noise's standard deviation to ``l2_norm_clip``,
            >= 0.
        key: an int seed or a ``nanofn.random`` key; ``None`` means seed 0.
        seed: the older optax spelling of an int ``key``; give one or the other.

    Returns:
        A :class:`GradientTransformation` with state
        :class:`DifferentiallyPrivateAggregateState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.contrib import differentially_private_aggregate
        >>> tx = differentially_private_aggregate(l2_norm_clip=1.0, noise_multiplier=0.0,
        ...                                       key=0)
        >>> per_example = {"w": jnp.array([[3.0, 4.0], [0.3, 0.4]])}  # batch of 2
        >>> u, state = tx.update(per_example, tx.init(None))
        >>> print([round(x, 4) for x in u["w"].tolist()])  # (0.6 + 0.3) / 2, (0.8 + 0.4) / 2
        [0.45, 0.6]

    References:
        Abadi et al., Deep Learning with Differential Privacy, 2016.
    """
    fn = "differentially_private_aggregate"
    _base.check_nonneg(fn, "l2_norm_clip", l2_norm_clip)
    _base.check_nonneg(fn, "noise_multiplier", noise_multiplier)
    if seed is not None:
        if key is not None:
            raise ValueError(f"{fn}: give `key` or `seed`, not both.")
        key = seed
    key = _check_key(fn, "key", 0 if key is None else key)
    noise_std = l2_norm_clip * noise_multiplier

    def init_fn(params):
        del params  # unused
        return DifferentiallyPrivateAggregateState(rng_key=key)

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        from nanofn import random

        leaves, treedef = tree_util.tree_flatten(updates)
        if not leaves:
            return updates, state
        sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
        if None in sizes or len(sizes) > 1:
            raise ValueError(
                f"{fn}: expects per-example gradients, each leaf with the same batch axis "
                f"first, got shapes {[tuple(np.shape(x)) for x in leaves]}. Compute them "
                "with nanofn.vmap over the examples.")
        batch_size = sizes.pop()
        clipped, _ = per_example_global_norm_clip(leaves, l2_norm_clip)
        keys = random.split(state.rng_key, len(leaves) + 1)
        noised = [(g + noise_std * random.normal(keys[i + 1], g.shape, g.dtype)) / batch_size
                  for i, g in enumerate(clipped)]
        return (_unflatten(treedef, noised),
                DifferentiallyPrivateAggregateState(rng_key=keys[0]))

    update_fn.per_example_updates = True  # optim.chain checks shapes after this one
    return GradientTransformation(init_fn, update_fn)


def dpsgd(learning_rate: ScalarOrSchedule, l2_norm_clip, noise_multiplier, seed: int,
          momentum: Optional[float] = None, nesterov: bool = False) -> GradientTransformation:
    """DP-SGD: SGD on differentially private aggregates of per-example gradients.

    ``chain(differentially_private_aggregate, [trace(momentum, nesterov)],
    scale_by_learning_rate)``; see :func:`differentially_private_aggregate` for the
    aggregation and for the per-example gradients ``update`` expects.

    Args:
        learning_rate: a float or a schedule.
        l2_norm_clip: largest global L2 norm of one example's gradient, >= 0.
        noise_multiplier: ratio of the noise's standard deviation to ``l2_norm_clip``.
        seed: the int seed (or ``nanofn.random`` key) of the noise.
        momentum: momentum coefficient, or ``None`` for none.
        nesterov: use Nesterov momentum.

    Returns:
        A :class:`GradientTransformation` whose state is a tuple of three (the
        aggregation's, the momentum's or ``EmptyState()``, the learning rate's), as
        optax's ``chain`` gives.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> loss = lambda w, x: (jnp.dot(w, x) - 1.0) ** 2
        >>> xs = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> opt = optim.contrib.dpsgd(0.1, l2_norm_clip=1.0, noise_multiplier=0.1, seed=0)
        >>> w = jnp.zeros(2)
        >>> state = opt.init(w)
        >>> for _ in range(20):
        ...     per_example = nanofn.vmap(nanofn.grad(loss), in_axes=(None, 0))(w, xs)
        ...     u, state = opt.update(per_example, state, w)
        ...     w = optim.apply_updates(w, u)
        >>> print(float(jnp.mean(nanofn.vmap(loss, in_axes=(None, 0))(w, xs))) < 0.4)
        True

    References:
        Abadi et al., Deep Learning with Differential Privacy, 2016.
    """
    if momentum is not None:
        _base.check_rate("dpsgd", "momentum", momentum, allow_one=True)
    return chain(
        differentially_private_aggregate(l2_norm_clip, noise_multiplier, key=seed),
        _transform.trace(decay=momentum, nesterov=nesterov) if momentum is not None
        else identity(),
        _transform.scale_by_learning_rate(learning_rate))


# --- ACProp ---------------------------------------------------------------------------------


def scale_by_acprop(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-16,
                    eps_root: float = 1e-16) -> GradientTransformation:
    """Rescales updates as ACProp does: the gradient over last step's belief. See
    :func:`acprop`.

    Args:
        b1: decay of the first moment (used for the prediction error), in [0, 1).
        b2: decay of the second moment of the prediction error, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added to the second moment at every step.

    Returns:
        A :class:`GradientTransformation` with state ``ScaleByBeliefState``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.contrib import scale_by_acprop
        >>> tx = scale_by_acprop()
        >>> u, state = tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))
        >>> print(float(u[0]))  # the first step divides by 1
        2.0
    """
    _transform._check_adam_like("scale_by_acprop", b1, b2, eps, eps_root)

    def init_fn(params):
        return ScaleByBeliefState(count=_zeros_count(), mu=_zeros_like_tree(params),
                                  nu=_zeros_like_tree(params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args  # unused
        treedef, (gs, ms, vs) = _flatten_all(
            "scale_by_acprop", ("updates", "state.mu", "state.nu"), updates, state.mu,
            state.nu)
        count_inc = safe_increment(state.count)
        # The denominator uses the second moment *before* this step; on the first step
        # there is none, and it is taken to be 1.
        initial = state.count == 0
        bc2 = _bias_correction(b2, jnp.where(initial, count_inc, state.count))
        new_u, new_m, new_v = [], [], []
        for g, m_prev, v_prev in zip(gs, ms, vs):
            m = (1 - b1) * g + b1 * m_prev
            v = _add_eps((1 - b2) * _base.abs_sq(g - m_prev) + b2 * v_prev, eps_root)
            v_hat = jnp.where(initial, 1, v_prev / bc2(v_prev.dtype))
            new_u.append(_cast(g / (jnp.sqrt(v_hat) + eps), g.dtype))
            new_m.append(_cast(m, m_prev.dtype))
            new_v.append(_cast(v, v_prev.dtype))
        return _unflatten(treedef, new_u), ScaleByBeliefState(
            count=count_inc, mu=_unflatten(treedef, new_m), nu=_unflatten(treedef, new_v))

    return GradientTransformation(init_fn, update_fn)


def acprop(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
           eps: float = 1e-16, eps_root: float = 1e-16, weight_decay: float = 0.0,
           mask=None) -> GradientTransformation:
    r"""ACProp: AdaBelief's centred second moment, used asynchronously.

    The denominator of step ``t`` only uses information up to step ``t - 1``::

        m_t = b1 m_{t-1} + (1 - b1) g_t
        s_t = b2 s_{t-1} + (1 - b2) (g_t - m_{t-1})^2 + eps_root
        u_t = -alpha_t (g_t / (sqrt(s_{t-1} / (1 - b2^(t-1))) + eps) + lambda w_{t-1})

    with the square root taken as 1 on the first step. As in optax, the numerator is the
    gradient itself; the momentum only enters through the prediction error.

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment of the prediction error, in [0, 1).
        eps: added to the denominator outside the square root.
        eps_root: added to ``s_t`` each step.
        weight_decay: decoupled weight decay ``lambda`` (multiplied by the learning rate).
        mask: optional pytree of booleans (or a function of the params giving one)
            saying which params are decayed.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_acprop, add_decayed_weights,
        scale_by_learning_rate)``; its update needs ``params``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.acprop(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(5):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        Zhuang et al., Momentum Centering and Asynchronous Update for Adaptive Gradient
        Methods, NeurIPS 2021.
    """
    _base.check_nonneg("acprop", "weight_decay", weight_decay)
    return chain(scale_by_acprop(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
                 _transform.add_decayed_weights(weight_decay, mask),
                 _transform.scale_by_learning_rate(learning_rate))


# --- Sophia ---------------------------------------------------------------------------------


class HutchinsonState(NamedTuple):
    """State of :func:`hutchinson_estimator_diag_hessian`: the PRNG key of the next probe."""

    key: Any


def hutchinson_estimator_diag_hessian(random_seed=None) -> GradientTransformation:
    """Estimates the diagonal of the Hessian of ``obj_fn`` with Hutchinson's estimator.

    Each ``update`` draws a Rademacher vector ``r`` (entries +-1) shaped like the params
    and returns ``r * (H r)``, an unbiased (but noisy) estimate of ``diag(H)``, with
    ``H r`` computed as a forward-over-reverse product (``jvp`` of ``grad(obj_fn)``).
    The incoming updates are ignored. This is Sophia's default Hessian estimator.

    Args:
        random_seed: a ``nanofn.random`` key (or an int seed); ``None`` means key 0.

    Returns:
        A :class:`GradientTransformation` with state :class:`HutchinsonState`, whose
        update needs ``params`` and ``obj_fn=`` (``params -> scalar loss``).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.contrib import hutchinson_estimator_diag_hessian
        >>> est = hutchinson_estimator_diag_hessian()
        >>> w = jnp.array([1.0, 2.0])
        >>> obj_fn = lambda w: jnp.sum(jnp.array([3.0, 0.5]) * w ** 2)
        >>> diag, state = est.update(None, est.init(w), w, obj_fn=obj_fn)
        >>> print(diag.tolist())  # exact for a diagonal Hessian
        [6.0, 1.0]
    """
    fn = "hutchinson_estimator_diag_hessian"
    key = _check_key(fn, "random_seed", 0 if random_seed is None else random_seed)

    def init_fn(params):
        del params  # unused
        return HutchinsonState(key=key)

    def update_fn(updates, state, params=None, obj_fn=None, **extra_args):
        del updates, extra_args  # the estimate only needs params and obj_fn
        from nanofn import random

        if params is None:
            raise ValueError(f"{fn}: " + NO_PARAMS_MSG)
        if obj_fn is None or not callable(obj_fn):
            raise ValueError(f"{fn}: `update` needs the objective as a keyword argument, "
                             "`obj_fn=lambda params: loss`, got "
                             f"{'nothing' if obj_fn is None else repr(obj_fn)}.")
        new_key, subkey = random.split(state.key)
        signs = otu.random_like(subkey, params, random.rademacher, dtype=jnp.float32)
        signs = otu.cast(signs, otu.dtype(params, "lowest"))
        hvp = nanofn.jvp(nanofn.grad(obj_fn), (params,), (signs,))[1]
        product = tree_util.tree_map(lambda h, r: h * r, hvp, signs)
        return product, HutchinsonState(key=new_key)

    return GradientTransformation(init_fn, update_fn)


class SophiaState(NamedTuple):
    """State of :func:`sophia`.

    Attributes:
        count: steps taken (int32).
        mu: momentum (first moment of the gradients).
        nu: moving average of the Hessian-diagonal estimates.
        hessian_fn_state: the state of ``hessian_diagonal_fn``.
    """

    count: Any
    mu: Updates
    nu: Updates
    hessian_fn_state: Any


def _print_win_rate(count, win_rate, *, every):
    if every <= 0 or int(count) % every == 0:
        print(f"Sophia optimizer win rate: {float(win_rate)}")


def scale_by_sophia(b1: float = 0.965, b2: float = 0.99, eps: float = 1e-8,
                    gamma: float = 0.01, clip_threshold: Optional[float] = 1.0,
                    update_interval: int = 10,
                    hessian_diagonal_fn: GradientTransformation =
                    hutchinson_estimator_diag_hessian(),
                    mu_dtype: Optional[Any] = None, verbose: bool = False,
                    print_win_rate_every_n_steps: int = 0) -> GradientTransformation:
    """Sophia's scaling, without weight decay and learning rate. See :func:`sophia`.

    (Like optax, ``optax.contrib`` exposes only :func:`sophia`; this block is what it
    chains with weight decay and the learning rate.)

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.contrib._misc import scale_by_sophia
        >>> tx = scale_by_sophia()
        >>> w = jnp.array([1.0])
        >>> u, state = tx.update(jnp.array([0.5]), tx.init(w), w, obj_fn=lambda w: w[0] ** 2)
        >>> print(float(u[0]), float(state.nu[0]))  # nu was 0: the step is clipped
        1.0 0.019999999552965164
    """
    fn = "sophia"
    _base.check_rate(fn, "b1", b1)
    _base.check_rate(fn, "b2", b2)
    _base.check_nonneg(fn, "eps", eps)
    _base.check_nonneg(fn, "gamma", gamma)
    if clip_threshold is not None:
        _base.check_positive(fn, "clip_threshold", clip_threshold)
    _check_int(fn, "update_interval", update_interval)
    if not hasattr(hessian_diagonal_fn, "init") or not hasattr(hessian_diagonal_fn, "update"):
        raise TypeError(f"{fn}: argument `hessian_diagonal_fn` must be a "
                        f"GradientTransformation, got {hessian_diagonal_fn!r:.80}")
    mu_dtype = _canonical_dtype(mu_dtype)
    hessian_fn = _base.with_extra_args_support(hessian_diagonal_fn)

    def init_fn(params):
        return SophiaState(count=_zeros_count(), mu=_zeros_like_tree(params, dtype=mu_dtype),
                           nu=_zeros_like_tree(params),
                           hessian_fn_state=hessian_fn.init(params))

    def update_fn(updates, state, params=None, **hess_fn_kwargs):
        if params is None:
            raise ValueError(f"{fn}: " + NO_PARAMS_MSG)
        treedef, (gs, ms, hs) = _flatten_all(
            fn, ("updates", "state.mu", "state.nu"), updates, state.mu, state.nu)
        count_inc = safe_increment(state.count)
        bc1 = _bias_correction(b1, count_inc)
        new_u, new_m = [], []
        for g, m_prev, h in zip(gs, ms, hs):
            m = (1 - b1) * g + b1 * m_prev
            u = (m / bc1(jnp.result_type(m))) / jnp.maximum(gamma * h, eps)
            new_u.append(u)
            new_m.append(_cast(m, m_prev.dtype if mu_dtype is None else mu_dtype))
        if clip_threshold is not None:
            if verbose:
                not_clipped = sum(jnp.sum(jnp.abs(u) < clip_threshold) for u in new_u)
                win_rate = not_clipped / sum(int(np.size(u)) for u in new_u)
                nanofn.debug.callback(_print_win_rate, count_inc, win_rate,
                                      every=int(print_win_rate_every_n_steps))
            new_u = [jnp.clip(u, -clip_threshold, clip_threshold) for u in new_u]
        new_u = [_cast(u, g.dtype) for u, g in zip(new_u, gs)]

        def refresh(hess_state, nu):
            diag, hess_state = hessian_fn.update(updates, hess_state, params, **hess_fn_kwargs)
            nu = otu.update_moment(diag, nu, b2, 1)
            return hess_state, otu.cast_like(nu, state.nu)

        hess_state, nu = lax.cond(state.count % update_interval == 0, refresh,
                                  lambda hess_state, nu: (hess_state, nu),
                                  state.hessian_fn_state, state.nu)
        return _unflatten(treedef, new_u), SophiaState(
            count=count_inc, mu=_unflatten(treedef, new_m), nu=nu, hessian_fn_state=hess_state)

    return GradientTransformation(init_fn, update_fn)


def sophia(learning_rate: ScalarOrSchedule, b1: float = 0.965, b2: float = 0.99,
           eps: float = 1e-8, weight_decay: float = 1e-4, weight_decay_mask=None,
           gamma: float = 0.01, clip_threshold: Optional[float] = 1.0,
           update_interval: int = 10,
           hessian_diagonal_fn: GradientTransformation = hutchinson_estimator_diag_hessian(),
           mu_dtype: Optional[Any] = None, verbose: bool = False,
           print_win_rate_every_n_steps: int = 0) -> GradientTransformation:
    r"""Sophia: momentum divided by a clipped estimate of the Hessian's diagonal.

    ::

        m_t = b1 m_{t-1} + (1 - b1) g_t
        u_t = -alpha_t (clip(m_t / (1 - b1^t) / max(gamma h_{t-1}, eps), +-clip_threshold)
                        + lambda w_{t-1})
        h_t = b2 h_{t-1} + (1 - b2) hessian_diagonal_fn(...)   every update_interval steps

    The Hessian estimate is refreshed on steps 1, 1 + update_interval, ... (after the
    update of that step is computed, so a step sees the estimate of the steps before);
    between refreshes ``h`` is kept. The effective decay of ``h`` per step is therefore
    about ``1 - (1 - b2) / update_interval``.

    Keyword arguments of ``update`` beyond ``params`` go to ``hessian_diagonal_fn``:
    the default, :func:`hutchinson_estimator_diag_hessian`, needs ``obj_fn``, a function
    of the params alone returning the scalar loss (e.g.
    ``obj_fn=lambda p: loss_fn(p, batch)``)::

        updates, state = opt.update(grads, state, params, obj_fn=obj_fn)

    Args:
        learning_rate: a float or a schedule.
        b1: decay of the momentum, in [0, 1).
        b2: decay of the Hessian-diagonal average, in [0, 1).
        eps: floor of the denominator, >= 0.
        weight_decay: decoupled weight decay ``lambda`` (multiplied by the learning rate).
        weight_decay_mask: optional pytree of booleans (or a function of the params)
            saying which params are decayed.
        gamma: scale of the Hessian diagonal in the denominator, >= 0.
        clip_threshold: bound on each scaled entry, > 0, or ``None`` for no clipping.
        update_interval: steps between Hessian-diagonal estimates, an int >= 1.
        hessian_diagonal_fn: a transformation whose update returns a diagonal-Hessian
            estimate; Hutchinson's estimator (Sophia-H) by default.
        mu_dtype: dtype of the momentum; ``None`` uses the params'.
        verbose: print the "win rate" (the fraction of entries not clipped; the authors
            suggest keeping it in 0.1-0.5 by tuning ``gamma``).
        print_win_rate_every_n_steps: with ``verbose``, print every this many steps
            (0 prints every step).

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_sophia,
        add_decayed_weights, scale_by_learning_rate)``; its update needs ``params`` and
        what ``hessian_diagonal_fn`` needs (``obj_fn=`` by default).

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda x: jnp.sum(x ** 2)
        >>> solver = optim.contrib.sophia(learning_rate=0.1)
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> for _ in range(5):
        ...     grads = nanofn.grad(f)(params)
        ...     updates, state = solver.update(grads, state, params, obj_fn=f)
        ...     params = optim.apply_updates(params, updates)
        >>> print(float(f(params)) < 14.0)
        True

    References:
        Liu et al., Sophia: A Scalable Stochastic Second-order Optimizer for Language
        Model Pre-training, 2023. Like optax, the Hessian probes are Rademacher vectors
        (the paper uses Gaussian ones).
    """
    _base.check_nonneg("sophia", "weight_decay", weight_decay)
    return chain(
        scale_by_sophia(b1=b1, b2=b2, eps=eps, gamma=gamma, clip_threshold=clip_threshold,
                        update_interval=update_interval,
                        hessian_diagonal_fn=hessian_diagonal_fn, mu_dtype=mu_dtype,
                        verbose=verbose,
                        print_win_rate_every_n_steps=print_win_rate_every_n_steps),
        _transform.add_decayed_weights(weight_decay, mask=weight_decay_mask),
        _transform.scale_by_learning_rate(learning_rate))


# --- GaLore ---------------------------------------------------------------------------------


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a parameter form the rows and columns of the matrix GaLore projects.

    The parameter is transposed to ``reduction_axis + output_axis`` and reshaped to a
    ``(prod(reduction sizes), prod(output sizes))`` matrix; every axis must be in
    exactly one of the two. E.g. attention weights stored as
    ``(embed, heads, head_dim)`` use ``GaLoreDimensionNumbers(0, (1, 2))``.

    Attributes:
        reduction_axis: the input axis or axes (rows), 0 by default.
        output_axis: the output axis or axes (columns), 1 by default.

    Example:
        >>> from nanofn.optim.contrib import GaLoreDimensionNumbers
        >>> GaLoreDimensionNumbers(reduction_axis=0, output_axis=(1, 2))
        GaLoreDimensionNumbers(reduction_axis=0, output_axis=(1, 2))
    """

    reduction_axis: Union[Sequence[int], int] = 0
    output_axis: Union[Sequence[int], int] = 1


class GaLoreState(NamedTuple):
    """State of :func:`scale_by_galore`.

    Attributes:
        count: steps taken (int32).
        base_optimizer_state: the base optimizer's state, for the low-rank gradients of
            projected params and the full gradients of the others.
        projector: per leaf, the orthonormal projection matrix (``(0, 0)`` zeros for
            leaves that are not projected).
    """

    count: Any
    base_optimizer_state: OptState
    projector: Updates


def _is_dims_leaf(x) -> bool:
    return x is None or isinstance(x, GaLoreDimensionNumbers)


class _Layout(NamedTuple):
    """How one leaf becomes a matrix: the transpose, the matrix shape and the way back."""

    transpose: tuple
    inverse: tuple
    transposed_shape: tuple
    rows: int
    cols: int

    def to_matrix(self, x):
        return jnp.reshape(jnp.transpose(x, self.transpose), (self.rows, self.cols))

    def from_matrix(self, x):
        return jnp.transpose(jnp.reshape(x, self.transposed_shape), self.inverse)


def _axes(where: str, value, ndim: int, shape) -> tuple:
    axes = (value,) if isinstance(value, numbers.Integral) else tuple(value)
    for ax in axes:
        if isinstance(ax, bool) or not isinstance(ax, numbers.Integral) or not (
                -ndim <= ax < ndim):
            raise ValueError(f"scale_by_galore: `weight_dimension_numbers` has {where} "
                             f"{value!r}, not a valid axis for a parameter of shape {shape}.")
    return tuple(int(ax) % ndim for ax in axes)


def _galore_layout(shape, dims: GaLoreDimensionNumbers) -> _Layout:
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(f"scale_by_galore: a projected parameter needs rank >= 2, got "
                         f"shape {tuple(shape)} (give it None in `weight_dimension_numbers`).")
    rows = _axes("reduction_axis", dims.reduction_axis, ndim, shape)
    cols = _axes("output_axis", dims.output_axis, ndim, shape)
    if set(rows) & set(cols) or len(set(rows)) != len(rows) or len(set(cols)) != len(cols):
        raise ValueError(f"scale_by_galore: reduction axes {rows} and output axes {cols} "
                         f"must not repeat or overlap (shape {tuple(shape)}).")
    if len(rows) + len(cols) != ndim:
        raise ValueError(f"scale_by_galore: every axis of shape {tuple(shape)} must be a "
                         f"reduction or an output axis, got {rows} and {cols}.")
    transpose = rows + cols
    inverse = tuple(int(i) for i in np.argsort(transpose))
    return _Layout(transpose, inverse, tuple(shape[a] for a in transpose),
                   math.prod(shape[a] for a in rows), math.prod(shape[a] for a in cols))


def scale_by_galore(rank: int = 128, update_proj_gap: int = 200, scale: float = 1.0,
                    base_optimizer: Optional[GradientTransformation] = None,
                    weight_dimension_numbers=None) -> GradientTransformation:
    """Runs ``base_optimizer`` on gradients projected to a low-rank subspace (GaLore).

    For each projected parameter, seen as an ``m x n`` matrix ``G``, every
    ``update_proj_gap`` steps (starting with the first) the projector ``P`` is refreshed
    from the SVD of the current gradient (in float32): the first ``r = min(rank, m, n)``
    left singular vectors if ``m >= n`` (then the low-rank gradient is ``P^T G``, shape
    ``(r, n)``), else the first ``r`` right ones (``G P``, shape ``(m, r)``). The base
    optimizer's state lives in that small space; its output is projected back
    (``P U`` or ``U P^T``), multiplied by ``scale`` and reshaped to the parameter.
    Other parameters go through the base optimizer unprojected (and, as in optax,
    without ``scale``).

    The base optimizer is called without params, so it must be a pure gradient scaling
    (``scale_by_adam``, ``scale_by_lion``, ``sgd(1.0)``, ...), not ``adamw`` or anything
    with weight decay: :func:`galore` adds decoupled weight decay in the full space.

    Args:
        rank: the largest rank of the projection, an int >= 1.
        update_proj_gap: steps between projector refreshes, an int >= 1.
        scale: factor applied to the projected-back updates.
        base_optimizer: the transformation run in the low-rank space;
            ``scale_by_adam()`` by default.
        weight_dimension_numbers: which params are projected and how: ``None`` projects
            every 2-d param as ``(rows, cols)``; one :class:`GaLoreDimensionNumbers`
            applies to every param of rank >= 2; or a pytree like the params with a
            :class:`GaLoreDimensionNumbers` or ``None`` (not projected) per leaf; or a
            function of the params returning such a pytree.

    Returns:
        A :class:`GradientTransformation` with state :class:`GaLoreState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.optim.contrib import scale_by_galore
        >>> tx = scale_by_galore(rank=2)
        >>> params = {"w": jnp.ones((6, 4)), "b": jnp.ones(4)}
        >>> state = tx.init(params)
        >>> print(state.projector["w"].shape, state.projector["b"].shape)
        (6, 2) (0, 0)
        >>> print(state.base_optimizer_state.mu["w"].shape)  # Adam's moment, low rank
        (2, 4)
    """
    fn = "scale_by_galore"
    _check_int(fn, "rank", rank)
    _check_int(fn, "update_proj_gap", update_proj_gap)
    _base.check_finite(fn, "scale", scale)
    if base_optimizer is None:
        base_optimizer = _transform.scale_by_adam()
    base_optimizer = _base.with_extra_args_support(base_optimizer)
    spec = weight_dimension_numbers
    if not (spec is None or callable(spec) or isinstance(spec, GaLoreDimensionNumbers)):
        for leaf in tree_util.tree_leaves(spec, is_leaf=_is_dims_leaf):
            if not _is_dims_leaf(leaf):
                raise TypeError(f"{fn}: `weight_dimension_numbers` must hold "
                                f"GaLoreDimensionNumbers or None at its leaves, got {leaf!r}.")

    def leaf_dims(tree):
        """The GaLoreDimensionNumbers (or None) of each leaf of ``tree``, in order."""
        leaves, treedef = tree_util.tree_flatten(tree)
        if spec is None:
            return [GaLoreDimensionNumbers() if np.ndim(x) == 2 else None for x in leaves]
        if isinstance(spec, GaLoreDimensionNumbers):
            return [spec if np.ndim(x) >= 2 else None for x in leaves]
        per_leaf = spec(tree) if callable(spec) else spec
        dims, dims_def = tree_util.tree_flatten(per_leaf, is_leaf=_is_dims_leaf)
        if dims_def != treedef:
            raise _base.structure_error(fn, "params", treedef, "weight_dimension_numbers",
                                        dims_def)
        for d in dims:
            if not _is_dims_leaf(d):
                raise TypeError(f"{fn}: `weight_dimension_numbers` must hold "
                                f"GaLoreDimensionNumbers or None at its leaves, got {d!r}.")
        return dims

    def init_fn(params):
        leaves, treedef = tree_util.tree_flatten(params)
        if not leaves:  # e.g. the placeholder of optim.tree.map_params
            return GaLoreState(count=_zeros_count(),
                               base_optimizer_state=base_optimizer.init(params),
                               projector=params)
        projectors, proxies = [], []
        for p, dims in zip(leaves, leaf_dims(params)):
            dtype = jnp.result_type(p)
            if dims is None:
                projectors.append(jnp.zeros((0, 0), dtype=dtype))
                proxies.append(jnp.zeros_like(p))
                continue
            layout = _galore_layout(np.shape(p), dims)
            m, n = layout.rows, layout.cols
            r = min(rank, m, n)
            projectors.append(jnp.zeros((m, r) if m >= n else (n, r), dtype=dtype))
            proxies.append(jnp.zeros((r, n) if m >= n else (m, r), dtype=dtype))
        return GaLoreState(count=_zeros_count(),
                           base_optimizer_state=base_optimizer.init(
                               _unflatten(treedef, proxies)),
                           projector=_unflatten(treedef, projectors))

    def update_fn(updates, state, params=None, **extra_args):
        del params  # the base optimizer works in the low-rank space, without params
        treedef, (gs, ps) = _flatten_all(fn, ("updates", "state.projector"), updates,
                                         state.projector)
        refresh = state.count % update_proj_gap == 0
        layouts, low_rank, new_ps = [], [], []
        for g, proj, dims in zip(gs, ps, leaf_dims(updates)):
            if dims is None:
                layouts.append(None)
                low_rank.append(g)
                new_ps.append(proj)
                continue
            layout = _galore_layout(np.shape(g), dims)
            g2 = layout.to_matrix(g)
            m, n = layout.rows, layout.cols
            r = min(rank, m, n)
            if tuple(np.shape(proj)) != ((m, r) if m >= n else (n, r)):
                raise ValueError(f"{fn}: the state's projector has shape {np.shape(proj)}, "
                                 f"not the one of a gradient of shape {np.shape(g)}; call "
                                 "`init` with params shaped like the gradients.")

            def fresh(g2=g2, m=m, n=n, r=r, dtype=jnp.result_type(g)):
                u, _, vh = jnp.linalg.svd(jnp.asarray(g2, dtype=jnp.float32),
                                          full_matrices=False)
                basis = u[:, :r] if m >= n else jnp.transpose(vh[:r, :])
                return jnp.asarray(basis, dtype=dtype)

            proj = lax.cond(refresh, fresh, lambda proj=proj: proj)
            layouts.append(layout)
            new_ps.append(proj)
            low_rank.append(jnp.transpose(proj) @ g2 if m >= n else g2 @ proj)

        low_updates, base_state = base_optimizer.update(
            _unflatten(treedef, low_rank), state.base_optimizer_state, None, **extra_args)
        out = []
        for lu, proj, g, layout in zip(tree_util.tree_leaves(low_updates), new_ps, gs,
                                       layouts):
            if layout is None:
                out.append(lu)
                continue
            full = proj @ lu if layout.rows >= layout.cols else lu @ jnp.transpose(proj)
            out.append(_cast(scale * layout.from_matrix(full), jnp.result_type(g)))
        return _unflatten(treedef, out), GaLoreState(
            count=safe_increment(state.count), base_optimizer_state=base_state,
            projector=_unflatten(treedef, new_ps))

    return GradientTransformation(init_fn, update_fn)


def galore(learning_rate: ScalarOrSchedule, rank: int = 128, update_proj_gap: int = 200,
           scale: float = 1.0, base_optimizer: Optional[GradientTransformation] = None,
           weight_decay: float = 0.0, mask=None,
           weight_dimension_numbers=None) -> GradientTransformation:
    """GaLore: memory-efficient training with gradients projected to a low rank.

    The optimizer state of each projected ``m x n`` matrix has ``r x n`` (or ``m x r``)
    entries instead of ``m x n``, plus the projector; learning still updates every
    weight. See :func:`scale_by_galore` for the projection; this chains it with
    decoupled weight decay (in the full space) and the learning rate.

    Args:
        learning_rate: a float or a schedule (use 1.0 if ``base_optimizer`` already has
            a learning rate).
        rank: the largest rank of the projection, an int >= 1.
        update_proj_gap: steps between projector refreshes from the gradient's SVD.
        scale: factor applied to the projected-back updates.
        base_optimizer: a pure gradient scaling run in the low-rank space (not ``adamw``
            or anything needing params); ``scale_by_adam()`` by default.
        weight_decay: decoupled weight decay (multiplied by the learning rate).
        mask: optional pytree of booleans (or a function of the params) saying which
            params are decayed.
        weight_dimension_numbers: which params are projected and how; see
            :func:`scale_by_galore`.

    Returns:
        A :class:`GradientTransformation`: ``chain(scale_by_galore, add_decayed_weights,
        scale_by_learning_rate)``; its update needs ``params``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> f = lambda p: jnp.sum(jnp.square(p["w"])) + jnp.sum(jnp.square(p["b"]))
        >>> solver = optim.contrib.galore(learning_rate=0.01, rank=4)
        >>> params = {"w": jnp.ones((16, 8)), "b": jnp.ones(8)}
        >>> state = solver.init(params)
        >>> for _ in range(3):
        ...     updates, state = solver.update(nanofn.grad(f)(params), state, params)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(f(params)), 2))
        133.62

    References:
        Zhao et al., GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
        Projection, ICML 2024.
    """
    _base.check_nonneg("galore", "weight_decay", weight_decay)
    return chain(
        scale_by_galore(rank=rank, update_proj_gap=update_proj_gap, scale=scale,
                        base_optimizer=base_optimizer,
                        weight_dimension_numbers=weight_dimension_numbers),
        _transform.add_decayed_weights(weight_decay, mask),
        _transform.scale_by_learning_rate(learning_rate))
