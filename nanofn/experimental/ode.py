"""`odeint`: adaptive Dormand-Prince integration with gradients by the adjoint method
(jax.experimental.ode).

The solver takes Runge-Kutta steps of orders 5 and 4 (Dormand and Prince, 1980; the
coefficients below are theirs), accepts a step when the embedded error estimate is within
`atol + rtol * |y|`, and picks the next step size from that estimate. Outputs at the
requested times come from the 4th-order polynomial each step fits through its stages
(Shampine, 1986, "Some practical Runge-Kutta formulas"), so the steps never stop at the
output times. The loop is a `while_loop` (steps until the next output time) inside a
`scan` (over the output times).

Gradients do not differentiate the solver's steps: `_odeint` is a `custom_vjp` whose
backward pass integrates the adjoint system backwards in time between output times
(Chen et al., 2018, "Neural ordinary differential equations", appendix C):

    d/dt [y, a, a_args] = [f(y, t), -a^T df/dy, -a^T df/dargs],

with `a` the cotangent of the state; jumps in `a` at each output time add that output's
cotangent, and the time cotangents are `<f(y(t_i), t_i), g_i>`. `func` is closure-converted
first, so arrays it closes over get gradients too.
"""

from __future__ import annotations

import numpy as np

import nanofn
import nanofn.numpy as fnp
from nanofn import _core as core
from nanofn._closure import closure_convert
from nanofn.ops import _control
from nanofn.tree_util import tree_flatten, tree_leaves, tree_map, tree_unflatten

__all__ = ["odeint"]

# Dormand-Prince 5(4): the nodes, the stage weights, the 5th-order solution weights and
# the error weights (5th - 4th order); the seventh stage is the next step's first.
_ALPHA = (1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_BETA = ((1 / 5,),
         (3 / 40, 9 / 40),
         (44 / 45, -56 / 15, 32 / 9),
         (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
         (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
         (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84))
_C_SOL = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_C_ERR = (35 / 384 - 1951 / 21600, 0.0, 500 / 1113 - 22642 / 50085, 125 / 192 - 451 / 720,
          -2187 / 6784 + 12231 / 42400, 11 / 84 - 649 / 6300, -1 / 60)
# weights giving y at the middle of a step from its stages (Shampine's dense output)
_C_MID = (6025192743 / 30085553152 / 2, 0.0, 51252292925 / 65400821598 / 2,
          -2691868925 / 45128329728 / 2, 187940372067 / 1594534317056 / 2,
          -1776094331 / 19743644256 / 2, 11237099 / 235043384 / 2)


def _combine(weights, ks):
    """sum_j weights[j] * ks[j], skipping zero weights."""
    out = None
    for w, k in zip(weights, ks):
        if w != 0.0:
            out = w * k if out is None else out + w * k
    return out


def _as(x, dtype):
    return fnp.asarray(x).astype(dtype)


def _runge_kutta_step(func, y0, f0, t0, dt):
    dt_y = _as(dt, y0.dtype)
    ks = [f0]
    for alpha, beta in zip(_ALPHA, _BETA):
        ks.append(func(y0 + dt_y * _combine(beta, ks), t0 + dt * alpha))
    y1 = y0 + dt_y * _combine(_C_SOL, ks)
    y1_error = dt_y * _combine(_C_ERR, ks)
    return y1, ks[-1], y1_error, ks


def _interp_fit(y0, y1, ks, dt):
    """Coefficients (highest power first) of the quartic through a step, in the step's
    relative time: it matches y and y' at both ends and y at the middle."""
    dt = _as(dt, y0.dtype)
    y_mid = y0 + dt * _combine(_C_MID, ks)
    dy0, dy1 = ks[0], ks[-1]
    a = -2.0 * dt * dy0 + 2.0 * dt * dy1 - 8.0 * y0 - 8.0 * y1 + 16.0 * y_mid
    b = 5.0 * dt * dy0 - 3.0 * dt * dy1 + 18.0 * y0 + 14.0 * y1 - 32.0 * y_mid
    c = -4.0 * dt * dy0 + dt * dy1 - 11.0 * y0 - 5.0 * y1 + 16.0 * y_mid
    return fnp.stack([a, b, c, dt * dy0, y0])


def _polyval(coeffs, x):
    out = coeffs[0]
    for i in range(1, coeffs.shape[0]):
        out = out * x + coeffs[i]
    return out


def _abs2(x):
    if np.issubdtype(x.dtype, np.complexfloating):
        return fnp.real(x) ** 2 + fnp.imag(x) ** 2
    return x * x


def _initial_step_size(func, t0, y0, order, rtol, atol, f0):
    # Hairer, Norsett and Wanner, Solving Ordinary Differential Equations I, sec. II.4
    scale = atol + fnp.abs(y0) * rtol
    d0 = fnp.sqrt(fnp.sum(_abs2(y0 / scale)))
    d1 = fnp.sqrt(fnp.sum(_abs2(f0 / scale)))
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = fnp.where(small, 1e-6, 0.01 * d0 / fnp.where(small, 1.0, d1))
    h0 = _as(h0, t0.dtype)
    y1 = y0 + _as(h0, y0.dtype) * f0
    f1 = func(y1, t0 + h0)
    d2 = _as(fnp.sqrt(fnp.sum(_abs2((f1 - f0) / scale))), t0.dtype) / h0
    d1 = _as(d1, t0.dtype)
    flat = (d1 <= 1e-15) & (d2 <= 1e-15)
    h1 = fnp.where(flat, fnp.maximum(1e-6, h0 * 1e-3),
                   (0.01 / fnp.where(flat, 1.0, fnp.maximum(d1, d2))) ** (1.0 / (order + 1.0)))
    return fnp.minimum(100.0 * h0, h1)


def _mean_error_ratio(error_estimate, rtol, atol, y0, y1):
    err_tol = atol + rtol * fnp.maximum(fnp.abs(y0), fnp.abs(y1))
    return fnp.sqrt(fnp.mean(_abs2(error_estimate / err_tol)))


def _optimal_step_size(last_step, error_ratio, safety=0.9, ifactor=10.0, dfactor=0.2,
                       order=5.0):
    dfactor = fnp.where(error_ratio < 1, 1.0, dfactor)
    ratio = fnp.where(error_ratio == 0, 1.0, error_ratio)
    factor = fnp.minimum(ifactor, fnp.maximum(ratio ** (-1.0 / order) * safety, dfactor))
    factor = _as(factor, last_step.dtype)
    return fnp.where(error_ratio == 0, last_step * ifactor, last_step * factor)


def _clip_step(dt, hmax):
    return fnp.minimum(fnp.maximum(dt, 0.0), hmax)


def odeint(func, y0, t, *args, rtol=1.4e-8, atol=1.4e-8, mxstep=np.inf, hmax=np.inf):
    """Integrate `dy/dt = func(y, t, *args)` from `y(t[0]) = y0`; return `y` at every `t`
    (jax.experimental.ode.odeint).

    An adaptive Dormand-Prince (RK45) solver with dense output. Reverse-mode gradients
    (with respect to `y0`, `t`, `args` and any arrays `func` closes over) come from the
    adjoint method: a second, backward integration, not differentiation of the steps.
    Works under `jit` and `vmap`; forward mode is not available (as in JAX).

    Args:
        func: the time derivative, `func(y, t, *args)`, returning the structure of `y0`.
        y0: the initial state, an array or a pytree of arrays.
        t: increasing float times, `t[0]` the initial time.
        *args: extra arguments for `func` (pytrees of float arrays); differentiable.
        rtol: relative local error tolerance.
        atol: absolute local error tolerance.
        mxstep: the most steps to take between two consecutive times in `t`.
        hmax: the largest step size.

    Returns:
        The solution at each time: `y0`'s structure with a new leading axis of `len(t)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental.ode import odeint
        >>> ys = odeint(lambda y, t: -y, fnp.float64(1.0), fnp.array([0.0, 1.0], "float64"))
        >>> round(float(ys[1]), 8)  # exp(-1)
        0.36787944
    """
    for arg in tree_leaves(args):
        if not core.is_array_like(arg):
            raise TypeError(f"odeint: the contents of *args must be arrays or scalars, got "
                            f"{type(arg).__name__}: {arg!r:.80}")
    # Python scalars become arrays of their default dtype now, as in JAX, so `func` is
    # traced and later evaluated with the same dtypes (a float arg stays float32)
    args = tree_map(lambda a: fnp.asarray(a) if type(a) in (bool, int, float, complex) else a,
                    args)
    t = fnp.asarray(t)
    if not np.issubdtype(t.dtype, np.floating) or t.ndim != 1:
        raise TypeError(f"odeint: t must be a 1-d array of floats, got {t.dtype.name}"
                        f"{list(t.shape)}")
    if not isinstance(t, core.Tracer) and np.any(np.diff(np.asarray(t)) <= 0):
        raise ValueError(f"odeint: the times t must be strictly increasing, got {np.asarray(t)}")
    converted, consts = closure_convert(func, y0, t[0], *args)
    return _odeint_wrapper(_odeint, converted, rtol, atol, mxstep, hmax, y0, t, *args, *consts)


def _ravel(tree):
    """A pytree of arrays as one flat vector, and the function that undoes it (row-wise
    for a stacked `(T, n)` array)."""
    leaves, treedef = tree_flatten(tree)
    leaves = [fnp.asarray(x) for x in leaves]
    dtype = fnp.result_type(*leaves) if leaves else np.dtype(np.float32)
    if not np.issubdtype(dtype, np.inexact):
        dtype = np.dtype(np.float32)
    shapes = [x.shape for x in leaves]
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    flat = fnp.concatenate([fnp.ravel(x).astype(dtype) for x in leaves]) if leaves else \
        fnp.zeros((0,), dtype)

    def unravel_rows(ys):
        out, start = [], 0
        for leaf, shape, size in zip(leaves, shapes, sizes):
            out.append(fnp.reshape(ys[:, start:start + size], (ys.shape[0],) + shape)
                       .astype(leaf.dtype))
            start += size
        return tree_unflatten(treedef, out)

    def unravel(y):
        return tree_map(lambda v: v[0], unravel_rows(y[None]))

    return flat, unravel, unravel_rows


def _odeint_wrapper(solver, func, rtol, atol, mxstep, hmax, y0, ts, *args):
    flat, unravel, unravel_rows = _ravel(y0)

    def func_flat(y, t, *args):
        out, _, _ = _ravel(func(unravel(y), t, *args))
        return out.astype(y.dtype)

    return unravel_rows(solver(func_flat, rtol, atol, mxstep, hmax, flat, ts, *args))


def _odeint_impl(func, rtol, atol, mxstep, hmax, y0, ts, *args):
    def func_(y, t):
        return func(y, t, *args)

    def scan_fun(carry, target_t):
        def cond_fun(state):
            i, _, _, t, dt, _, _ = state
            return (t < target_t) & (i < mxstep) & (dt > 0)

        def body_fun(state):
            i, y, f, t, dt, last_t, interp_coeff = state
            next_y, next_f, next_y_error, ks = _runge_kutta_step(func_, y, f, t, dt)
            next_t = t + dt
            error_ratio = _mean_error_ratio(next_y_error, rtol, atol, y, next_y)
            new_interp_coeff = _interp_fit(y, next_y, ks, dt)
            dt = _clip_step(_optimal_step_size(dt, error_ratio), hmax)
            accept = error_ratio <= 1.0
            new = [i + 1, next_y, next_f, next_t, dt, t, new_interp_coeff]
            old = [i + 1, y, f, t, dt, last_t, interp_coeff]
            return [fnp.where(accept, a, b) for a, b in zip(new, old)]

        _, *carry = _control.while_loop(cond_fun, body_fun, [fnp.int32(0)] + carry)
        _, _, t, _, last_t, interp_coeff = carry
        relative_output_time = (target_t - last_t) / (t - last_t)
        y_target = _polyval(interp_coeff, _as(relative_output_time, interp_coeff.dtype))
        return carry, y_target

    f0 = func_(y0, ts[0])
    dt = _clip_step(_initial_step_size(func_, ts[0], y0, 4, rtol, atol, f0), hmax)
    interp_coeff = fnp.stack([y0] * 5)
    init_carry = [y0, f0, ts[0], dt, ts[0], interp_coeff]
    _, ys = _control.scan(scan_fun, init_carry, ts[1:])
    return fnp.concatenate([y0[None], ys])


_odeint = nanofn.custom_vjp(_odeint_impl, nondiff_argnums=(0, 1, 2, 3, 4))


def _odeint_fwd(func, rtol, atol, mxstep, hmax, y0, ts, *args):
    ys = _odeint(func, rtol, atol, mxstep, hmax, y0, ts, *args)
    return ys, (ys, ts, args)


def _odeint_rev(func, rtol, atol, mxstep, hmax, res, g):
    ys, ts, args = res

    def aug_dynamics(augmented_state, t, *args):
        """The system, its adjoint and the adjoints of args, in negated time."""
        y, y_bar, *_ = augmented_state
        y_dot, vjp_fun = nanofn.vjp(func, y, -t, *args)
        return (-y_dot, *vjp_fun(y_bar))

    def scan_fun(carry, i):
        y_bar, t0_bar, args_bar = carry
        # moving an output time moves its output along f: <f(y_i, t_i), g_i>
        t_bar = fnp.dot(func(ys[i], ts[i], *args), g[i])
        if np.issubdtype(t_bar.dtype, np.complexfloating):  # a time's cotangent is real
            t_bar = fnp.real(t_bar)
        t_bar = _as(t_bar, ts.dtype)
        t0_bar = t0_bar - t_bar
        # integrate the adjoint system back to the previous output time; straight through
        # the solver (JAX calls odeint, whose custom_vjp would make this differentiable
        # again; here that would re-trace the solver on every pass of this scan)
        aug_func, consts = closure_convert(aug_dynamics, (ys[i], y_bar, t0_bar, args_bar),
                                           -ts[i], *args)
        _, y_bar, t0_bar, args_bar = _odeint_wrapper(
            _odeint_impl, aug_func, rtol, atol, mxstep, hmax,
            (ys[i], y_bar, t0_bar, args_bar), fnp.stack([-ts[i], -ts[i - 1]]), *args, *consts)
        y_bar, t0_bar, args_bar = tree_map(lambda v: v[1], (y_bar, t0_bar, args_bar))
        y_bar = y_bar + g[i - 1]  # the previous output's own cotangent
        return (y_bar, t0_bar, args_bar), t_bar

    init_carry = (g[-1], fnp.zeros((), ts.dtype), tree_map(fnp.zeros_like, args))
    (y_bar, t0_bar, args_bar), rev_ts_bar = _control.scan(
        scan_fun, init_carry, fnp.arange(ts.shape[0] - 1, 0, -1))
    ts_bar = fnp.concatenate([t0_bar[None], rev_ts_bar[::-1]])
    return (y_bar, ts_bar, *args_bar)


_odeint.defvjp(_odeint_fwd, _odeint_rev)
