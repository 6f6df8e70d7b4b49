"""L-BFGS and line searches, with optax's names, states and update equations.

``scale_by_lbfgs`` turns a gradient into a quasi-Newton direction with the two-loop
recursion over the last ``memory_size`` pairs of parameter and gradient differences.
A line search then picks the step along it: ``scale_by_backtracking_linesearch``
(Armijo backtracking) or ``scale_by_zoom_linesearch`` (strong Wolfe conditions, the
default of :func:`lbfgs`). The line searches call the objective themselves, so their
``update`` takes ``value=``, ``grad=`` and ``value_fn=`` keyword arguments; extra
keyword arguments that ``value_fn`` accepts are passed on to it.
"""

from __future__ import annotations

import functools
import inspect
import operator
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

import nanofn
import nanofn.numpy as jnp
from nanofn import tree_util
from nanofn.optim import _base, _transform
from nanofn.optim import tree as otu
from nanofn.optim._base import GradientTransformation, ScalarOrSchedule, Updates
from nanofn.optim._combine import chain
from nanofn.optim._transform import safe_increment

# --- the L-BFGS direction -----------------------------------------------------------------


class ScaleByLBFGSState(NamedTuple):
    """State of :func:`scale_by_lbfgs`: the last params and updates, and the memory."""

    count: Any  # int32, shape ()
    params: Any
    updates: Any
    diff_params_memory: Any  # each leaf (memory_size, *leaf.shape)
    diff_updates_memory: Any
    weights_memory: Any  # (memory_size,)


def _take(tree, idx):
    return tree_util.tree_map(lambda x: x[idx], tree)


def _precondition_by_lbfgs(updates, diff_params_memory, diff_updates_memory, weights_memory,
                           identity_scale, memory_idx):
    """The two-loop recursion: ``H updates`` for the L-BFGS inverse Hessian estimate ``H``."""
    memory_size = weights_memory.shape[0]
    indices = [(memory_idx + k) % memory_size for k in range(memory_size)]
    vec, alphas = updates, [None] * memory_size
    for k in reversed(range(memory_size)):  # newest pair first
        dwi, dui = _take(diff_params_memory, indices[k]), _take(diff_updates_memory, indices[k])
        alphas[k] = weights_memory[indices[k]] * jnp.real(otu.vdot(dwi, vec))
        vec = otu.cast_like(otu.add_scale(vec, -alphas[k], dui), updates)
    vec = otu.scale(identity_scale, vec)
    for k in range(memory_size):  # oldest pair first
        dwi, dui = _take(diff_params_memory, indices[k]), _take(diff_updates_memory, indices[k])
        beta = weights_memory[indices[k]] * jnp.real(otu.vdot(dui, vec))
        vec = otu.cast_like(otu.add_scale(vec, alphas[k] - beta, dwi), updates)
    return vec


def scale_by_lbfgs(memory_size: int = 10, scale_init_precond: bool = True
                   ) -> GradientTransformation:
    """Scales updates by the L-BFGS estimate of the inverse Hessian. See :func:`lbfgs`.

    Args:
        memory_size: how many past (params, updates) differences are kept.
        scale_init_precond: scale the initial inverse Hessian by
            ``<dg, dw> / <dg, dg>`` (and the first step by ``min(1, 1/||g||)``).

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByLBFGSState`; its
        ``update`` needs ``params``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> tx = optim.scale_by_lbfgs()
        >>> params = jnp.array([1.0, 2.0])
        >>> u, state = tx.update(jnp.array([3.0, 4.0]), tx.init(params), params)
        >>> print([round(x, 4) for x in u.tolist()])  # first step: g / ||g||
        [0.6, 0.8]
    """
    if memory_size < 1:
        raise ValueError(f"scale_by_lbfgs: memory_size must be >= 1, got {memory_size}.")

    def init_fn(params):
        stacked = tree_util.tree_map(
            lambda x: jnp.zeros((memory_size,) + tuple(np.shape(x)), dtype=jnp.result_type(x)),
            params)
        return ScaleByLBFGSState(
            count=jnp.asarray(0, dtype=jnp.int32), params=otu.zeros_like(params),
            updates=otu.zeros_like(params), diff_params_memory=stacked,
            diff_updates_memory=stacked, weights_memory=jnp.zeros(memory_size))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # unused
        if params is None:
            raise ValueError("scale_by_lbfgs: " + _base.NO_PARAMS_MSG)
        memory_idx = state.count % memory_size
        prev_memory_idx = (state.count - 1) % memory_size
        diff_params = otu.sub(params, state.params)
        diff_updates = otu.sub(updates, state.updates)
        vdot = jnp.real(otu.vdot(diff_updates, diff_params))
        weight = jnp.where(vdot == 0.0, 0.0, 1.0 / jnp.where(vdot == 0.0, 1.0, vdot))
        started = state.count > 0
        diff_params, diff_updates, weight = tree_util.tree_map(
            lambda x: jnp.where(started, x, jnp.zeros_like(x)),
            (diff_params, diff_updates, weight))
        memories = tree_util.tree_map(
            lambda x, y: x.at[prev_memory_idx].set(y),
            (state.diff_params_memory, state.diff_updates_memory, state.weights_memory),
            (diff_params, diff_updates, weight))
        diff_params_memory, diff_updates_memory, weights_memory = memories
        if scale_init_precond:
            numerator = jnp.real(otu.vdot(diff_updates, diff_params))
            denominator = otu.norm(diff_updates, squared=True)
            identity_scale = jnp.where(denominator > 0.0,
                                       numerator / jnp.where(denominator > 0.0, denominator, 1.0),
                                       1.0)
            update_norm = otu.norm(nanofn.lax.stop_gradient(updates))
            capped_inv_norm = jnp.minimum(1.0, 1.0 / update_norm)
            identity_scale = jnp.where(started, identity_scale, capped_inv_norm)
        else:
            identity_scale = 1.0
        precond = _precondition_by_lbfgs(updates, diff_params_memory, diff_updates_memory,
                                         weights_memory, identity_scale, memory_idx)
        return precond, ScaleByLBFGSState(
            count=safe_increment(state.count), params=params, updates=updates,
            diff_params_memory=diff_params_memory, diff_updates_memory=diff_updates_memory,
            weights_memory=weights_memory)

    return GradientTransformation(init_fn, update_fn)


# --- helpers shared by the line searches ----------------------------------------------------


def _extract_fns_kwargs(fns, kwargs):
    """Splits ``kwargs`` into those each function in ``fns`` accepts, and the rest."""
    names = [list(inspect.signature(fn).parameters) for fn in fns]
    per_fn = [{k: v for k, v in kwargs.items() if k in n} for n in names]
    all_names = functools.reduce(operator.add, names, [])
    rest = {k: v for k, v in kwargs.items() if k not in all_names}
    return per_fn, rest


def _value_dtype(params):
    leaves = tree_util.tree_leaves(params)
    dt = np.dtype(jnp.result_type(leaves[0])) if leaves else np.dtype(np.float32)
    return np.real(np.zeros((), dt)).dtype


def _need(where, **kwargs):
    missing = [k for k, v in kwargs.items() if v is None]
    if missing:
        raise TypeError(
            f"{where}: `update` needs the keyword arguments {missing}: call "
            "`opt.update(grad, state, params, value=value, grad=grad, value_fn=fn)`.")


# --- backtracking ---------------------------------------------------------------------------


class BacktrackingLinesearchInfo(NamedTuple):
    """What the last backtracking search did."""

    num_linesearch_steps: Any  # int
    decrease_error: Any  # float


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """State of :func:`scale_by_backtracking_linesearch`."""

    learning_rate: Any
    value: Any
    grad: Optional[Updates]
    info: BacktrackingLinesearchInfo


def scale_by_backtracking_linesearch(
        max_backtracking_steps: int, slope_rtol: float = 1e-4, decrease_factor: float = 0.8,
        increase_factor: float = 1.5, max_learning_rate: float = 1.0, atol: float = 0.0,
        rtol: float = 0.0, store_grad: bool = False, verbose: bool = False
) -> GradientTransformation:
    r"""Backtracking (Armijo) line search along the incoming updates.

    Starting from ``min(increase_factor * previous_rate, max_learning_rate)`` it shrinks
    the rate ``eta`` by ``decrease_factor`` until
    ``f(w + eta u) <= (1 + rtol) f(w) + eta slope_rtol <u, grad f(w)> + atol``,
    at most ``max_backtracking_steps`` times, and returns ``eta u``.

    ``update(updates, state, params, *, value, grad, value_fn, **extra_args)``: ``value``
    and ``grad`` are ``f`` and its gradient at ``params``; keyword arguments that
    ``value_fn`` accepts are passed to it.

    Args:
        max_backtracking_steps: the most rates tried per step.
        slope_rtol: the fraction of the linear decrease required.
        decrease_factor: the factor a rejected rate is multiplied by.
        increase_factor: the factor the previous rate grows by before a search.
        max_learning_rate: the largest rate tried.
        atol: absolute tolerance of the decrease test.
        rtol: relative tolerance of the decrease test.
        store_grad: also keep the gradient at the accepted point in the state, for
            :func:`value_and_grad_from_state`.
        verbose: accepted for optax compatibility (nothing is printed).

    Returns:
        A :class:`GradientTransformation` with state
        :class:`ScaleByBacktrackingLinesearchState`.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> fn = lambda w: jnp.sum(w ** 2)
        >>> solver = optim.chain(optim.sgd(1.0),
        ...                      optim.scale_by_backtracking_linesearch(15, store_grad=True))
        >>> params = jnp.array([1.0, 2.0, 3.0])
        >>> state = solver.init(params)
        >>> value_and_grad = optim.value_and_grad_from_state(fn)
        >>> for _ in range(3):
        ...     value, grad = value_and_grad(params, state=state)
        ...     updates, state = solver.update(grad, state, params, value=value, grad=grad,
        ...                                    value_fn=fn)
        ...     params = optim.apply_updates(params, updates)
        >>> print(f"{float(fn(params)):.2E}")
        6.53E-01
    """
    del verbose  # unused

    def init_fn(params):
        dt = _value_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.asarray(1.0, dtype=dt), value=jnp.asarray(np.inf, dtype=dt),
            grad=otu.zeros_like(params) if store_grad else None,
            info=BacktrackingLinesearchInfo(num_linesearch_steps=jnp.asarray(0, dtype=jnp.int32),
                                            decrease_error=jnp.asarray(np.inf, dtype=dt)))

    def decrease_error_of(stepsize, slope, value, new_value):
        err = new_value - (1.0 + rtol) * value - stepsize * slope_rtol * slope
        err = jnp.where(jnp.isnan(err), np.inf, err)
        return jnp.maximum(err, 0.0)

    def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None,
                  **extra_args):
        _need("scale_by_backtracking_linesearch", params=params, value=value, grad=grad,
              value_fn=value_fn)
        (fn_kwargs,), rest = _extract_fns_kwargs((value_fn,), extra_args)
        if rest:
            raise TypeError("scale_by_backtracking_linesearch: keyword arguments "
                            f"{sorted(rest)} are not arguments of `value_fn`.")
        dt = _value_dtype(params)
        slope = jnp.real(otu.vdot(updates, otu.conj(grad)))
        value_fn_ = functools.partial(value_fn, **fn_kwargs)

        def cond_fn(carry):
            _, _, _, err, i = carry
            return jnp.logical_and(jnp.logical_not(err <= atol), i <= max_backtracking_steps)

        def body_fn(carry):
            lr, _, new_grad, _, i = carry
            lr = jnp.where(i > 0, decrease_factor * lr, lr)
            new_params = otu.add_scale(params, lr, updates)
            if store_grad:
                new_value, new_grad = nanofn.value_and_grad(value_fn_)(new_params)
            else:
                new_value = value_fn_(new_params)
            err = decrease_error_of(lr, slope, value, new_value)
            return (jnp.asarray(lr, dtype=dt), jnp.asarray(new_value, dtype=dt),
                    otu.cast_like(new_grad, params), jnp.asarray(err, dtype=dt), i + 1)

        lr0 = jnp.minimum(increase_factor * state.learning_rate, max_learning_rate)
        carry = (jnp.asarray(lr0, dtype=dt), jnp.asarray(value, dtype=dt),
                 otu.zeros_like(params), jnp.asarray(np.inf, dtype=dt),
                 jnp.asarray(0, dtype=jnp.int32))
        lr, new_value, new_grad, err, steps = nanofn.lax.while_loop(cond_fn, body_fn, carry)
        new_lr = jnp.where(jnp.isinf(err), 0.0, lr)
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.asarray(new_lr, dtype=dt), value=new_value,
            grad=new_grad if store_grad else None,
            info=BacktrackingLinesearchInfo(num_linesearch_steps=steps, decrease_error=err))
        return otu.scale(new_lr, updates), new_state

    return GradientTransformation(init_fn, update_fn)


def value_and_grad_from_state(value_fn: Callable[..., Any]) -> Callable[..., tuple]:
    """``value_and_grad(value_fn)`` that reuses the value and gradient a line search stored.

    The returned function takes ``(params, *args, state=opt_state, **kwargs)``. When the
    state holds a finite ``value`` (and its ``grad``), computed by the line search at
    the point the optimizer moved to, it returns them; otherwise (the first step) it
    evaluates ``value_and_grad(value_fn)(params, *args, **kwargs)``.

    Args:
        value_fn: the objective.

    Returns:
        A function ``(params, *args, state, **kwargs) -> (value, grad)``.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> fn = lambda w: jnp.sum(w ** 2)
        >>> opt = optim.lbfgs(linesearch=optim.scale_by_backtracking_linesearch(
        ...     max_backtracking_steps=15, store_grad=True))
        >>> params = jnp.array([1.0, 2.0])
        >>> value, grad = optim.value_and_grad_from_state(fn)(params, state=opt.init(params))
        >>> print(float(value), grad.tolist())
        5.0 [2.0, 4.0]
    """

    def _value_and_grad(params, *fn_args, state, **fn_kwargs):
        from nanofn.optim import tree as tree_mod
        value = tree_mod.get(state, "value")
        grad = tree_mod.get(state, "grad")
        if value is None or grad is None:
            raise ValueError("value_and_grad_from_state: no `value` and `grad` in the state; "
                             "use an optimizer whose line search stores them (lbfgs, or "
                             "scale_by_backtracking_linesearch(..., store_grad=True)).")
        fresh = nanofn.value_and_grad(value_fn)
        stored_ok = jnp.logical_and(jnp.logical_not(jnp.isinf(value)),
                                    jnp.logical_not(jnp.isnan(value)))
        return nanofn.lax.cond(stored_ok, lambda p: (value, grad),
                               lambda p: fresh(p, *fn_args, **fn_kwargs), params)

    return _value_and_grad


# --- the alias -----------------------------------------------------------------------------

_ZOOM_DEFAULT = "zoom"


def lbfgs(learning_rate: Optional[ScalarOrSchedule] = None, memory_size: int = 10,
          scale_init_precond: bool = True, linesearch: Any = _ZOOM_DEFAULT
          ) -> GradientTransformation:
    r"""L-BFGS: quasi-Newton directions from the last ``memory_size`` steps, then a line search.

    ``u_t = -eta_t H_t g_t``, with ``H_t`` the L-BFGS inverse Hessian estimate and
    ``eta_t`` chosen by ``linesearch`` (or ``learning_rate`` when there is none).
    With a line search, ``update`` takes ``value=``, ``grad=`` and ``value_fn=``.

    Args:
        learning_rate: a fixed rate or schedule; ``None`` leaves the step to the line search.
        memory_size: how many past differences the estimate uses.
        scale_init_precond: scale the initial estimate as in Nocedal and Wright (7.20).
        linesearch: a line search transformation or ``None``. optax's default, a
            strong-Wolfe zoom search, is not in nanofn yet: pass
            ``scale_by_backtracking_linesearch(...)`` or ``None`` explicitly.

    Returns:
        ``chain(scale_by_lbfgs, scale_by_learning_rate, linesearch)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> fn = lambda w: jnp.sum((w - 1.0) ** 2) + 0.1 * jnp.sum(w ** 4)
        >>> opt = optim.lbfgs(linesearch=optim.scale_by_backtracking_linesearch(
        ...     max_backtracking_steps=20, store_grad=True))
        >>> params = jnp.zeros(3)
        >>> state = opt.init(params)
        >>> value_and_grad = optim.value_and_grad_from_state(fn)
        >>> for _ in range(10):
        ...     value, grad = value_and_grad(params, state=state)
        ...     updates, state = opt.update(grad, state, params, value=value, grad=grad,
        ...                                 value_fn=fn)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(params[0]), 3))
        0.869

    References:
        Nocedal and Wright, Numerical Optimization, 1999 (algorithm 7.4).
    """
    if linesearch is _ZOOM_DEFAULT:
        raise NotImplementedError(
            "lbfgs: optax's default line search (scale_by_zoom_linesearch) is not in nanofn "
            "yet; pass linesearch=optim.scale_by_backtracking_linesearch("
            "max_backtracking_steps=15, store_grad=True) or linesearch=None.")
    if learning_rate is None:
        base_scaling = _transform.scale(-1.0)
    else:
        base_scaling = _transform.scale_by_learning_rate(learning_rate)
    parts = [scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
             base_scaling]
    if linesearch is not None:
        parts.append(linesearch)
    return chain(*parts)
