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
            diff_updates_memory=stacked,
            # in the parameters' (real) precision: float64 problems keep float64 curvature
            weights_memory=jnp.zeros(memory_size, _value_dtype(params)))

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


# --- zoom line search (strong Wolfe conditions) --------------------------------------------


class ZoomLinesearchInfo(NamedTuple):
    """What the last zoom search did."""

    num_linesearch_steps: Any  # int
    decrease_error: Any  # float
    curvature_error: Any  # float


class ScaleByZoomLinesearchState(NamedTuple):
    """State of :func:`scale_by_zoom_linesearch`: the accepted rate, value and gradient."""

    learning_rate: Any
    value: Any
    grad: Updates
    info: ZoomLinesearchInfo


class ZoomLinesearchState(NamedTuple):
    """The loop state of one zoom search (the bracket, the best safe step, the errors)."""

    count: Any
    params: Any
    updates: Any
    stepsize_guess: Any
    stepsize: Any
    value: Any
    grad: Any
    slope: Any
    value_init: Any
    slope_init: Any
    decrease_error: Any
    curvature_error: Any
    error: Any
    interval_found: Any
    done: Any
    failed: Any
    low: Any
    value_low: Any
    slope_low: Any
    high: Any
    value_high: Any
    slope_high: Any
    cubic_ref: Any
    value_cubic_ref: Any
    safe_stepsize: Any
    safe_value: Any
    safe_grad: Any


def _cubicmin(a, fa, fpa, b, fb, c, fc):
    """Minimiser of the cubic through (a, fa) with slope fpa at a, (b, fb) and (c, fc)."""
    C = fpa
    db, dc = b - a, c - a
    denom = (db * dc) ** 2 * (db - dc)
    r1, r2 = fb - fa - C * db, fc - fa - C * dc
    A = (dc ** 2 * r1 - db ** 2 * r2) / denom
    B = (-(dc ** 3) * r1 + db ** 3 * r2) / denom
    radical = B * B - 3.0 * A * C
    return a + (-B + jnp.sqrt(radical)) / (3.0 * A)


def _quadmin(a, fa, fpa, b, fb):
    """Minimiser of the parabola through (a, fa) with slope fpa at a, and (b, fb)."""
    db = b - a
    B = (fb - fa - fpa * db) / db ** 2
    return a - fpa / (2.0 * B)


def _select(pred, on_true: list, on_false: list) -> list:
    """``where(pred, t, f)`` for each pair of (scalars or pytrees) in two lists."""
    return [tree_util.tree_map(lambda x, y: jnp.where(pred, x, y), t, f)
            for t, f in zip(on_true, on_false)]


def _zoom_linesearch(max_linesearch_steps, max_stepsize, tol, increase_factor, slope_rtol,
                     curv_rtol, approx_dec_rtol, interval_threshold):
    """``(init, step, cond)`` of the zoom search (Nocedal and Wright, algorithms 3.5, 3.6)."""

    def on_line(value_and_grad_fn, params, stepsize, updates, fn_kwargs):
        step = otu.add_scale(params, stepsize, updates)
        value, grad = value_and_grad_fn(step, **fn_kwargs)
        slope = jnp.real(otu.vdot(otu.conj(grad), updates))
        return value, grad, slope

    def decrease_error_of(stepsize, value_step, slope_step, value_init, slope_init):
        err = value_step - value_init - slope_rtol * stepsize * slope_init
        if approx_dec_rtol is not None:  # Hager and Zhang's approximate Wolfe condition
            approx = slope_step - (2 * slope_rtol - 1.0) * slope_init
            delta = value_step - value_init - approx_dec_rtol * jnp.abs(value_init)
            err = jnp.minimum(jnp.maximum(approx, delta), err)
        err = jnp.maximum(err, 0.0)
        return jnp.where(jnp.isnan(err), np.inf, err)

    def curvature_error_of(slope_step, slope_init):
        err = jnp.maximum(jnp.abs(slope_step) - curv_rtol * jnp.abs(slope_init), 0.0)
        return jnp.where(jnp.isnan(err), np.inf, err)

    def cast_like(new, old):
        return ZoomLinesearchState(*[
            tree_util.tree_map(lambda x, y: jnp.asarray(x, dtype=jnp.result_type(y)), n, o)
            for n, o in zip(new, old)])

    def search_interval(state, value_and_grad_fn, fn_kwargs):
        it = state.count
        new_stepsize = jnp.where(it == 0, state.stepsize_guess, increase_factor * state.stepsize)
        if max_stepsize is not None:
            max_reached = new_stepsize >= max_stepsize
            new_stepsize = jnp.minimum(new_stepsize, max_stepsize)
        else:
            max_reached = jnp.asarray(False)
        value, grad, slope = on_line(value_and_grad_fn, state.params, new_stepsize,
                                     state.updates, fn_kwargs)
        dec = decrease_error_of(new_stepsize, value, slope, state.value_init, state.slope_init)
        curv = curvature_error_of(slope, state.slope_init)
        error = jnp.maximum(dec, curv)
        safe_stepsize, safe_value, safe_grad = _select(
            dec <= tol, [new_stepsize, value, grad],
            [state.safe_stepsize, state.safe_value, state.safe_grad])
        set_high_to_new = (dec > 0.0) | ((value >= state.value) & (it > 0))
        set_low_to_new = (slope >= 0.0) & ~set_high_to_new
        low, value_low, slope_low, high, value_high, slope_high = _select(
            set_low_to_new,
            [new_stepsize, value, slope, state.stepsize, state.value, state.slope],
            [state.stepsize, state.value, state.slope, new_stepsize, value, slope])
        interval_found = set_high_to_new | set_low_to_new | (error <= tol)
        done = (error <= tol) | (max_reached & ~interval_found)
        failed = ((it + 1) >= max_linesearch_steps) & ~done
        return cast_like(ZoomLinesearchState(
            count=safe_increment(it), params=state.params, updates=state.updates,
            stepsize_guess=state.stepsize_guess, stepsize=new_stepsize, value=value,
            grad=grad, slope=slope, value_init=state.value_init, slope_init=state.slope_init,
            decrease_error=dec, curvature_error=curv, error=error,
            interval_found=interval_found, done=done, failed=failed, low=low,
            value_low=value_low, slope_low=slope_low, high=high, value_high=value_high,
            slope_high=slope_high, cubic_ref=low, value_cubic_ref=value_low,
            safe_stepsize=safe_stepsize, safe_value=safe_value, safe_grad=safe_grad), state)

    def zoom_into_interval(state, value_and_grad_fn, fn_kwargs):
        it = state.count
        low, value_low, slope_low = state.low, state.value_low, state.slope_low
        high, value_high, slope_high = state.high, state.value_high, state.slope_high
        delta = jnp.abs(high - low)
        left, right = jnp.minimum(high, low), jnp.maximum(high, low)
        too_small_int = delta <= interval_threshold
        # try the cubic interpolant, then the quadratic one, then bisection
        middle_cubic = _cubicmin(low, value_low, slope_low, high, value_high, state.cubic_ref,
                                 state.value_cubic_ref)
        use_cubic = (middle_cubic > left + 0.2 * delta) & (middle_cubic < right - 0.2 * delta)
        middle_quad = _quadmin(low, value_low, slope_low, high, value_high)
        use_quad = ~use_cubic & (middle_quad > left + 0.1 * delta) & (
            middle_quad < right - 0.1 * delta)
        use_bisection = ~use_cubic & ~use_quad
        middle = jnp.where(use_cubic, middle_cubic, state.cubic_ref)
        middle = jnp.where(use_quad, middle_quad, middle)
        middle = jnp.where(use_bisection, (low + high) / 2.0, middle)
        value, grad, slope = on_line(value_and_grad_fn, state.params, middle, state.updates,
                                     fn_kwargs)
        dec = decrease_error_of(middle, value, slope, state.value_init, state.slope_init)
        curv = curvature_error_of(slope, state.slope_init)
        error = jnp.maximum(dec, curv)
        update_safe = (dec <= tol) & (value < state.safe_value)
        safe_stepsize, safe_value, safe_grad = _select(
            update_safe, [middle, value, grad],
            [state.safe_stepsize, state.safe_value, state.safe_grad])
        done = error <= tol
        set_high_to_middle = (dec > 0.0) | (value >= value_low)
        set_high_to_low = (slope * (high - low) >= 0.0) & ~set_high_to_middle
        set_low_to_middle = ~set_high_to_middle
        new_high = _select(set_high_to_middle, [middle, value, slope],
                           [high, value_high, slope_high])
        new_high = _select(set_high_to_low, [low, value_low, slope_low], new_high)
        new_low = _select(set_low_to_middle, [middle, value, slope],
                          [low, value_low, slope_low])
        cubic_ref, value_cubic_ref = _select(set_high_to_middle | set_high_to_low,
                                             [high, value_high], [low, value_low])
        presumably_failed = ((it + 1) >= max_linesearch_steps) | (
            too_small_int & (safe_stepsize > 0.0))
        failed = presumably_failed & ~done
        return cast_like(ZoomLinesearchState(
            count=safe_increment(it), params=state.params, updates=state.updates,
            stepsize_guess=state.stepsize_guess, stepsize=middle, value=value, grad=grad,
            slope=slope, value_init=state.value_init, slope_init=state.slope_init,
            decrease_error=dec, curvature_error=curv, error=error,
            interval_found=state.interval_found, done=done, failed=failed,
            low=new_low[0], value_low=new_low[1], slope_low=new_low[2],
            high=new_high[0], value_high=new_high[1], slope_high=new_high[2],
            cubic_ref=cubic_ref, value_cubic_ref=value_cubic_ref,
            safe_stepsize=safe_stepsize, safe_value=safe_value, safe_grad=safe_grad), state)

    def try_safe_step(state):
        # on failure, fall back to the best step with sufficient decrease (if any)
        use_safe = state.failed & ((state.safe_stepsize > 0.0) | jnp.isinf(state.decrease_error))
        stepsize, value, grad = _select(use_safe,
                                        [state.safe_stepsize, state.safe_value, state.safe_grad],
                                        [state.stepsize, state.value, state.grad])
        return state._replace(stepsize=jnp.asarray(stepsize, dtype=jnp.result_type(state.stepsize)),
                              value=value, grad=grad)

    def init_fn(updates, params, *, value, grad, stepsize_guess):
        dt = _value_dtype(params)
        slope = jnp.asarray(jnp.real(otu.vdot(updates, grad)), dtype=dt)
        value = jnp.asarray(value, dtype=dt)
        zero, inf = jnp.asarray(0.0, dtype=dt), jnp.asarray(np.inf, dtype=dt)
        false = jnp.asarray(False)
        return ZoomLinesearchState(
            count=jnp.asarray(0, dtype=jnp.int32), params=params, updates=updates,
            stepsize_guess=jnp.asarray(stepsize_guess, dtype=dt), stepsize=zero, value=value,
            grad=grad, slope=slope, value_init=value, slope_init=slope, decrease_error=inf,
            curvature_error=inf, error=inf, interval_found=false, done=false, failed=false,
            low=zero, value_low=value, slope_low=slope, high=zero, value_high=value,
            slope_high=slope, cubic_ref=zero, value_cubic_ref=value, safe_stepsize=zero,
            safe_value=value, safe_grad=grad)

    def step_fn(state, value_and_grad_fn, fn_kwargs):
        new_state = nanofn.lax.cond(
            state.interval_found,
            lambda s: zoom_into_interval(s, value_and_grad_fn, fn_kwargs),
            lambda s: search_interval(s, value_and_grad_fn, fn_kwargs), state)
        return try_safe_step(new_state)

    def cond_fn(state):
        return jnp.logical_not(state.done | state.failed)

    return init_fn, step_fn, cond_fn


def scale_by_zoom_linesearch(
        max_linesearch_steps: int, max_learning_rate: Optional[float] = None, tol: float = 0.0,
        increase_factor: float = 2.0, slope_rtol: float = 1e-4, curv_rtol: float = 0.9,
        approx_dec_rtol: Optional[float] = 1e-6, stepsize_precision: float = 1e-5,
        initial_guess_strategy: str = "keep", verbose: bool = False
) -> GradientTransformation:
    r"""Line search for a step satisfying the strong Wolfe conditions (zoom search).

    Finds ``eta`` with sufficient decrease
    ``f(w + eta u) <= f(w) + slope_rtol eta <u, grad f(w)>`` (or Hager and Zhang's
    approximate form, with ``approx_dec_rtol``) and small curvature
    ``|<u, grad f(w + eta u)>| <= curv_rtol |<u, grad f(w)>|``: first it grows the step
    by ``increase_factor`` until an interval holds such a step, then it narrows the
    interval with cubic, quadratic or bisection guesses. If it fails within
    ``max_linesearch_steps`` it takes the best step with sufficient decrease found.

    ``update(updates, state, params, *, value, grad, value_fn, **extra_args)`` as in
    :func:`scale_by_backtracking_linesearch`; the state keeps the value and gradient at
    the accepted point, for :func:`value_and_grad_from_state`.

    Args:
        max_linesearch_steps: the most evaluations of ``value_fn`` per step.
        max_learning_rate: the largest step, or ``None``.
        tol: tolerance on both conditions.
        increase_factor: growth of the step while searching for an interval.
        slope_rtol: the sufficient decrease constant (``c1``).
        curv_rtol: the curvature constant (``c2``).
        approx_dec_rtol: relative tolerance of the approximate decrease test, or
            ``None`` for the plain Armijo test.
        stepsize_precision: the interval length under which the search gives up.
        initial_guess_strategy: ``"one"`` starts each search at 1, ``"keep"`` at the
            previous accepted step.
        verbose: accepted for optax compatibility (nothing is printed).

    Returns:
        A :class:`GradientTransformation` with state :class:`ScaleByZoomLinesearchState`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> fn = lambda w: jnp.sum((w - 2.0) ** 2)
        >>> tx = optim.scale_by_zoom_linesearch(max_linesearch_steps=10)
        >>> w = jnp.zeros(2)
        >>> value, grad = fn(w), 2 * (w - 2.0)
        >>> u, state = tx.update(-grad, tx.init(w), w, value=value, grad=grad, value_fn=fn)
        >>> print(u.tolist())  # the exact minimiser along -grad
        [2.0, 2.0]
    """
    del verbose  # unused
    if initial_guess_strategy not in ("one", "keep"):
        raise ValueError("scale_by_zoom_linesearch: initial_guess_strategy must be 'one' or "
                         f"'keep', got {initial_guess_strategy!r}.")
    init_ls, step_ls, cond_ls = _zoom_linesearch(
        max_linesearch_steps, max_learning_rate, tol, increase_factor, slope_rtol, curv_rtol,
        approx_dec_rtol, stepsize_precision)

    def init_fn(params):
        dt = _value_dtype(params)
        inf = jnp.asarray(np.inf, dtype=dt)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.asarray(1.0, dtype=dt), value=inf, grad=otu.zeros_like(params),
            info=ZoomLinesearchInfo(num_linesearch_steps=jnp.asarray(0, dtype=jnp.int32),
                                    decrease_error=inf, curvature_error=inf))

    def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None,
                  **extra_args):
        _need("scale_by_zoom_linesearch", params=params, value=value, grad=grad,
              value_fn=value_fn)
        (fn_kwargs,), rest = _extract_fns_kwargs((value_fn,), extra_args)
        if rest:
            raise TypeError("scale_by_zoom_linesearch: keyword arguments "
                            f"{sorted(rest)} are not arguments of `value_fn`.")
        value_and_grad_fn = nanofn.value_and_grad(value_fn)
        guess = 1.0 if initial_guess_strategy == "one" else state.learning_rate
        ls = init_ls(updates, params, value=value, grad=grad, stepsize_guess=guess)
        ls = nanofn.lax.while_loop(cond_ls, lambda s: step_ls(s, value_and_grad_fn, fn_kwargs),
                                   ls)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=ls.stepsize, value=ls.value, grad=otu.cast_like(ls.grad, params),
            info=ZoomLinesearchInfo(num_linesearch_steps=ls.count,
                                    decrease_error=ls.decrease_error,
                                    curvature_error=ls.curvature_error))
        return otu.scale(ls.stepsize, updates), new_state

    return GradientTransformation(init_fn, update_fn)


# --- the alias -----------------------------------------------------------------------------

def lbfgs(learning_rate: Optional[ScalarOrSchedule] = None, memory_size: int = 10,
          scale_init_precond: bool = True, linesearch: Any = "default"
          ) -> GradientTransformation:
    r"""L-BFGS: quasi-Newton directions from the last ``memory_size`` steps, then a line search.

    ``u_t = -eta_t H_t g_t``, with ``H_t`` the L-BFGS inverse Hessian estimate and
    ``eta_t`` chosen by ``linesearch`` (or ``learning_rate`` when there is none).
    With a line search, ``update`` takes ``value=``, ``grad=`` and ``value_fn=``.

    Args:
        learning_rate: a fixed rate or schedule; ``None`` leaves the step to the line search.
        memory_size: how many past differences the estimate uses.
        scale_init_precond: scale the initial estimate as in Nocedal and Wright (7.20).
        linesearch: a line search transformation or ``None``. The default is optax's,
            ``scale_by_zoom_linesearch(max_linesearch_steps=20,
            initial_guess_strategy="one")``.

    Returns:
        ``chain(scale_by_lbfgs, scale_by_learning_rate, linesearch)``.

    Example:
        >>> import nanofn, nanofn.numpy as jnp
        >>> from nanofn import optim
        >>> fn = lambda w: jnp.sum((w - 1.0) ** 2) + 0.1 * jnp.sum(w ** 4)
        >>> opt = optim.lbfgs()
        >>> params = jnp.zeros(3)
        >>> state = opt.init(params)
        >>> value_and_grad = optim.value_and_grad_from_state(fn)
        >>> for _ in range(5):
        ...     value, grad = value_and_grad(params, state=state)
        ...     updates, state = opt.update(grad, state, params, value=value, grad=grad,
        ...                                 value_fn=fn)
        ...     params = optim.apply_updates(params, updates)
        >>> print(round(float(params[0]), 4))
        0.8688

    References:
        Nocedal and Wright, Numerical Optimization, 1999 (algorithm 7.4).
    """
    if isinstance(linesearch, str) and linesearch == "default":
        linesearch = scale_by_zoom_linesearch(max_linesearch_steps=20,
                                              initial_guess_strategy="one")
    if learning_rate is None:
        base_scaling = _transform.scale(-1.0)
    else:
        base_scaling = _transform.scale_by_learning_rate(learning_rate)
    return chain(scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
                 base_scaling, _base.identity() if linesearch is None else linesearch)
