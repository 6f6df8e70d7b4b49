"""nanofn.scipy.optimize: `minimize` (jax.scipy.optimize's names and results).

`minimize(fun, x0, method="BFGS")` runs the BFGS quasi-Newton method: the search
direction is minus the inverse-Hessian estimate times the gradient, a line search picks
a step that satisfies the strong Wolfe conditions (Nocedal and Wright, *Numerical
Optimization*, algorithms 3.5 and 3.6: bracket, then zoom by cubic, quadratic or
bisection steps), and the estimate is updated from the step and the change of gradient.
Everything is one `lax.while_loop`, so `minimize` works under `jit`; the gradient comes
from `nanofn.value_and_grad`. `method="l-bfgs-experimental-do-not-rely-on-this"` keeps
only the last `maxcor` step pairs instead of a dense matrix.

Beyond JAX, the results are differentiable (reverse mode): `x` and `fun` with respect
to `args` and to the arrays `fun` closes over, by the implicit function theorem at the
minimum (the search itself is not differentiated).

Where a line search fails, nanofn moves only to a point that satisfies the Wolfe
conditions, else stays at the last accepted one (JAX moves to whatever step the failed
search ended on), and the zoom's give-up test looks at the width of the bracket
whichever way it points.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy.optimize import minimize
    >>> res = minimize(lambda x: fnp.sum((x - 3.0) ** 2), fnp.zeros(2), method="BFGS")
    >>> res.x, bool(res.success)
    (Array([3., 3.], dtype=float32), True)
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional

import numpy as np

import nanofn
import nanofn.numpy as fnp
from nanofn._closure import closure_convert
from nanofn.ops import _control, stop_gradient
from nanofn.ops._solvers import custom_root
from nanofn.optim._lbfgs import _cubicmin, _quadmin
from nanofn.tree_util import tree_map

__all__ = ["minimize", "OptimizeResults"]


class OptimizeResults(NamedTuple):
    """What `minimize` returns (jax.scipy.optimize.OptimizeResults).

    Fields: `x` the solution, `success` whether it converged, `status` (0 converged,
    1 the iteration limit was reached, 3 the zoom failed, 5 the line search ran out of
    steps, -1 otherwise), `fun` the value and `jac` the gradient at `x`, `hess_inv` the
    inverse-Hessian estimate (None for L-BFGS), `nfev`/`njev` the numbers of function and
    gradient evaluations, `nit` the number of iterations.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.optimize import minimize
        >>> res = minimize(lambda x: fnp.sum(x ** 2), fnp.ones(3), method="BFGS")
        >>> int(res.status), int(res.nit) > 0
        (0, True)
    """
    x: Any
    success: Any
    status: Any
    fun: Any
    jac: Any
    hess_inv: Optional[Any]
    nfev: Any
    njev: Any
    nit: Any


# ------------------------------------------------------------------------ line search


def _int(v):
    # JAX's default integer: int32, or int64 under jax_enable_x64 (the counters and status
    # of OptimizeResults follow it)
    from nanofn.numpy._dtypes import default_int
    return fnp.asarray(v, dtype=default_int())


def _pick(pred, new: dict, old: NamedTuple) -> NamedTuple:
    """`old` with the fields named in `new` replaced where `pred` holds."""
    return old._replace(**{k: fnp.where(pred, v, getattr(old, k)) for k, v in new.items()})


class _Zoom(NamedTuple):
    done: Any
    failed: Any
    j: Any
    a_lo: Any
    phi_lo: Any
    dphi_lo: Any
    a_hi: Any
    phi_hi: Any
    dphi_hi: Any
    a_rec: Any      # the previous a_hi or a_lo: the third point of the cubic
    phi_rec: Any
    a_star: Any
    phi_star: Any
    g_star: Any
    nfev: Any


def _zoom(along, wolfe_one, wolfe_two, lo, hi, g0, run):
    """Algorithm 3.6: shrink the bracket [lo, hi] (each `(a, phi, dphi)`) until a step
    satisfies both Wolfe conditions. Does nothing where `run` is false."""
    dtype = lo[0].dtype
    small = 1e-5 if np.finfo(dtype).bits < 64 else 1e-10
    state = _Zoom(done=fnp.asarray(False), failed=fnp.asarray(False), j=_int(0),
                  a_lo=lo[0], phi_lo=lo[1], dphi_lo=lo[2], a_hi=hi[0], phi_hi=hi[1],
                  dphi_hi=hi[2], a_rec=(lo[0] + hi[0]) / 2, phi_rec=(lo[1] + hi[1]) / 2,
                  a_star=lo[0], phi_star=lo[1], g_star=g0, nfev=_int(0))

    def body(s):
        width = s.a_hi - s.a_lo
        a, b = fnp.minimum(s.a_hi, s.a_lo), fnp.maximum(s.a_hi, s.a_lo)
        cchk, qchk = 0.2 * width, 0.1 * width
        failed = s.failed | (fnp.abs(width) <= small)
        cubic = _cubicmin(s.a_lo, s.phi_lo, s.dphi_lo, s.a_hi, s.phi_hi, s.a_rec, s.phi_rec)
        use_cubic = (s.j > 0) & (cubic > a + cchk) & (cubic < b - cchk)
        quad = _quadmin(s.a_lo, s.phi_lo, s.dphi_lo, s.a_hi, s.phi_hi)
        use_quad = ~use_cubic & (quad > a + qchk) & (quad < b - qchk)
        a_j = fnp.where(use_cubic, cubic, fnp.where(use_quad, quad, (s.a_lo + s.a_hi) / 2))
        phi_j, dphi_j, g_j = along(a_j)
        to_hi = wolfe_one(a_j, phi_j) | (phi_j >= s.phi_lo)
        found = wolfe_two(dphi_j) & ~to_hi
        flip = (dphi_j * (s.a_hi - s.a_lo) >= 0) & ~to_hi & ~found
        to_lo = ~to_hi & ~found
        s = s._replace(failed=failed, nfev=s.nfev + 1, done=s.done | found)
        s = _pick(to_hi, dict(a_hi=a_j, phi_hi=phi_j, dphi_hi=dphi_j, a_rec=s.a_hi,
                              phi_rec=s.phi_hi), s)
        s = _pick(found, dict(a_star=a_j, phi_star=phi_j, g_star=g_j), s)
        s = _pick(flip, dict(a_hi=s.a_lo, phi_hi=s.phi_lo, dphi_hi=s.dphi_lo, a_rec=s.a_hi,
                             phi_rec=s.phi_hi), s)
        s = _pick(to_lo & ~flip, dict(a_rec=s.a_lo, phi_rec=s.phi_lo), s)
        s = _pick(to_lo, dict(a_lo=a_j, phi_lo=phi_j, dphi_lo=dphi_j), s)
        j = s.j + 1
        return s._replace(j=j, failed=s.failed | (j >= 30))

    return _control.while_loop(lambda s: run & ~s.done & ~s.failed, body, state)


class _Search(NamedTuple):
    done: Any
    failed: Any
    found: Any      # a_star satisfies both Wolfe conditions
    i: Any
    a_prev: Any
    phi_prev: Any
    dphi_prev: Any
    nfev: Any
    a_star: Any
    phi_star: Any
    g_star: Any


class _SearchResult(NamedTuple):
    failed: Any
    found: Any
    status: Any    # 0 found, 1 the zoom failed, 3 out of steps
    nfev: Any
    a: Any
    f: Any
    g: Any


def _line_search(value_and_grad, xk, pk, fk, gk, old_old_fval, c1=1e-4, c2=0.9,
                 maxiter=20):
    """Algorithm 3.5: a step along `pk` from `xk` satisfying the strong Wolfe conditions,
    starting from the step that would repeat the last decrease (capped at 1)."""
    dtype = xk.dtype

    def along(t):
        value, g = value_and_grad(xk + t * pk)
        return value.astype(dtype), fnp.real(fnp.dot(g, pk)).astype(dtype), g.astype(dtype)

    phi0, dphi0 = fk, fnp.real(fnp.dot(gk, pk))
    guess = 1.01 * 2 * (phi0 - old_old_fval) / dphi0
    first = fnp.where(guess > 1, fnp.asarray(1, dtype), guess).astype(dtype)

    def wolfe_one(a, phi):      # not enough decrease
        return phi > phi0 + c1 * a * dphi0

    def wolfe_two(dphi):        # flat enough
        return fnp.abs(dphi) <= -c2 * dphi0

    zero = fnp.zeros((), dtype)
    state = _Search(done=fnp.asarray(False), failed=fnp.asarray(False),
                    found=fnp.asarray(False), i=_int(1), a_prev=zero, phi_prev=phi0,
                    dphi_prev=dphi0, nfev=_int(0), a_star=zero, phi_star=phi0, g_star=gk)

    def body(s):
        a_i = fnp.where(s.i == 1, first, s.a_prev * 2)
        phi_i, dphi_i, g_i = along(a_i)
        overshot = wolfe_one(a_i, phi_i) | ((phi_i >= s.phi_prev) & (s.i > 1))
        found = wolfe_two(dphi_i) & ~overshot
        uphill = (dphi_i >= 0) & ~overshot & ~found
        # Bracket [prev, a_i] if the step overshot, [a_i, prev] if the slope turned up.
        prev, here = (s.a_prev, s.phi_prev, s.dphi_prev), (a_i, phi_i, dphi_i)
        lo = [fnp.where(overshot, p, h) for p, h in zip(prev, here)]
        hi = [fnp.where(overshot, h, p) for p, h in zip(prev, here)]
        z = _zoom(along, wolfe_one, wolfe_two, lo, hi, gk, overshot | uphill)
        zoomed = overshot | uphill
        s = s._replace(nfev=s.nfev + 1 + z.nfev, done=s.done | zoomed | found,
                       failed=s.failed | (zoomed & z.failed),
                       found=s.found | found | (zoomed & z.done))
        s = _pick(zoomed, dict(a_star=z.a_star, phi_star=z.phi_star, g_star=z.g_star), s)
        s = _pick(found, dict(a_star=a_i, phi_star=phi_i, g_star=g_i), s)
        return s._replace(i=s.i + 1, a_prev=a_i, phi_prev=phi_i, dphi_prev=dphi_i)

    s = _control.while_loop(lambda s: ~s.done & (s.i <= maxiter) & ~s.failed, body, state)
    status = fnp.where(s.failed, _int(1), fnp.where(s.i > maxiter, _int(3), _int(0)))
    return _SearchResult(failed=s.failed | ~s.done, found=s.found, status=status,
                         nfev=s.nfev, a=s.a_star, f=s.phi_star, g=s.g_star)


# ------------------------------------------------------------------------ BFGS and L-BFGS


class _State(NamedTuple):
    converged: Any
    failed: Any
    k: Any
    nfev: Any
    x: Any
    f: Any
    g: Any
    H: Any          # the inverse-Hessian estimate (BFGS) or the step pairs (L-BFGS)
    f_before: Any   # the value one step earlier, for the line search's first step
    status: Any


def _gnorm(g, norm):
    return fnp.linalg.norm(g, ord=norm)


def _iterate(fun, x0, maxiter, norm, gtol, line_search_maxiter, direction, update, H0,
             limits=None):
    """The quasi-Newton loop both methods share: `direction(H, g)` and
    `update(H, k, s, y)` are where they differ. `limits(st, ls, status)` (L-BFGS's
    ftol, maxfun and maxgrad) may give a step's status a further reason to stop."""
    value_and_grad = nanofn.value_and_grad(fun)
    dtype = x0.dtype
    f0, g0 = value_and_grad(x0)
    f0, g0 = f0.astype(dtype), g0.astype(dtype)
    state = _State(converged=_gnorm(g0, norm) < gtol, failed=fnp.asarray(False), k=_int(0),
                   nfev=_int(1), x=x0, f=f0, g=g0, H=H0,
                   f_before=f0 + fnp.linalg.norm(g0) / 2, status=_int(0))

    def body(st):
        p = direction(st.H, st.g)
        ls = _line_search(value_and_grad, st.x, p, st.f, st.g, st.f_before,
                          maxiter=line_search_maxiter)
        s = ls.a * p
        H = update(st.H, st.k, s, ls.g - st.g)
        moved = st._replace(converged=_gnorm(ls.g, norm) < gtol, x=st.x + s, f=ls.f,
                            g=ls.g, H=H, f_before=st.f)
        # Take the step if the search found a Wolfe point (even where it then reports a
        # failure, as its zoom does on a bracket narrower than its tolerance); stop on a
        # failure either way.
        out = tree_map(lambda a, b: fnp.where(ls.found, a, b), moved, st)
        status = fnp.where(ls.failed, 2 + ls.status, st.status)
        if limits is not None:
            status = limits(st, ls, status)
        return out._replace(k=st.k + 1, nfev=st.nfev + ls.nfev, status=status,
                            failed=ls.failed | ((status > 0) & ~out.converged))

    st = _control.while_loop(lambda st: ~st.converged & ~st.failed & (st.k < maxiter),
                             body, state)
    status = fnp.where(st.converged, _int(0),
                       fnp.where(st.failed, st.status, fnp.where(st.k >= maxiter, _int(1),
                                                                 _int(-1))))
    return st._replace(status=status)


def _bfgs(fun, x0, maxiter=None, norm=np.inf, gtol=1e-5, line_search_maxiter=10):
    n = x0.shape[0]
    eye = fnp.eye(n, dtype=x0.dtype)

    def direction(H, g):
        return -fnp.dot(H, g)

    def update(H, k, s, y):
        rho = 1 / fnp.dot(y, s)
        w = eye - rho * fnp.outer(s, y)
        new = w @ H @ w.T + rho * fnp.outer(s, s)
        return fnp.where(fnp.isfinite(rho), new, H)

    maxiter = 200 * n if maxiter is None else maxiter
    return _iterate(fun, x0, maxiter, norm, gtol, line_search_maxiter, direction, update, eye)


def _lbfgs(fun, x0, maxiter=None, norm=np.inf, maxcor=10, ftol=2.220446049250313e-09,
           gtol=1e-05, maxfun=None, maxgrad=None, maxls=20):
    """L-BFGS: the two-loop recursion over the last `maxcor` pairs (s, y), kept in a
    ring buffer; unused slots hold zeros and drop out of both loops.

    As JAX's, it stops (and fails) once a step lowers the value by less than `ftol`
    (status 4) or, counted before the step, `maxgrad` gradients (3) or `maxfun` values
    (2) have been evaluated; a failed line search is status 5."""
    n = x0.shape[0]
    dtype = x0.dtype
    S0 = (fnp.zeros((maxcor, n), dtype), fnp.zeros((maxcor, n), dtype), _int(0))

    def direction(H, g):
        S, Y, count = H
        # The newest pair sits at slot (count - 1) % maxcor; walk newest to oldest.
        order = (count - 1 - fnp.arange(maxcor)) % maxcor
        Ss, Ys = S[order], Y[order]
        sy = fnp.sum(Ss * Ys, axis=1)
        rho = fnp.where(sy != 0, 1 / fnp.where(sy != 0, sy, 1), 0)
        q = g
        alphas = []
        for i in range(maxcor):
            a = rho[i] * fnp.dot(Ss[i], q)
            q = q - a * Ys[i]
            alphas.append(a)
        yy = fnp.dot(Ys[0], Ys[0])
        gamma = fnp.where((count > 0) & (yy > 0), sy[0] / fnp.where(yy > 0, yy, 1), 1)
        r = gamma * q
        for i in reversed(range(maxcor)):
            b = rho[i] * fnp.dot(Ys[i], r)
            r = r + Ss[i] * (alphas[i] - b)
        return -r

    def update(H, k, s, y):
        S, Y, count = H
        slot = count % maxcor
        return (S.at[slot].set(s), Y.at[slot].set(y), count + 1)

    def limits(st, ls, status):
        # JAX's order: the later reasons win
        status = fnp.where(st.f - ls.f < ftol, _int(4), _int(0))
        if maxgrad is not None:
            status = fnp.where(st.nfev >= maxgrad, _int(3), status)
        if maxfun is not None:
            status = fnp.where(st.nfev >= maxfun, _int(2), status)
        return fnp.where(ls.failed, _int(5), status)

    if maxiter is None:  # JAX's default: no limit once maxfun or maxgrad is given
        maxiter = 200 * n if maxfun is None and maxgrad is None else np.inf
    return _iterate(fun, x0, maxiter, norm, gtol, maxls, direction, update, S0, limits)


def minimize(fun: Callable, x0, args: tuple = (), *, method: str, tol: Optional[float] = None,
             options: Optional[Mapping[str, Any]] = None) -> OptimizeResults:
    """The minimum of `fun(x, *args)` over a 1-D `x`, from the start `x0`
    (jax.scipy.optimize.minimize).

    `method` is `"BFGS"` (or `"l-bfgs-experimental-do-not-rely-on-this"`); `options`
    are the method's: for BFGS `maxiter` (default `200 * x0.size`), `norm` (of the
    gradient, default `inf`), `gtol` (stop when that norm is below it, default 1e-5) and
    `line_search_maxiter` (10); L-BFGS takes `maxiter`, `norm`, `maxcor` (10), `gtol`,
    `ftol` (stop once a step lowers the value by less, default 2.2e-9), `maxfun` and
    `maxgrad` (limits on the evaluations) and `maxls` (20). `tol` is accepted and unused, as in JAX. Gradients come from
    `nanofn.value_and_grad`, so `fun` must be differentiable; `minimize` works under
    `jit`. Unlike JAX's, it can be differentiated: `grad` of `res.x` or `res.fun` with
    respect to `args` (or arrays `fun` closes over) uses the implicit function theorem,
    solving with the Hessian at `res.x` (`jac` and `hess_inv` carry no gradient).

    Example:
        >>> import nanofn
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.optimize import minimize
        >>> def rosen(x, a):
        ...     return (a - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2
        >>> res = nanofn.jit(lambda x0: minimize(rosen, x0, (1.0,), method="BFGS"))(
        ...     fnp.zeros(2, dtype=fnp.float64))
        >>> fnp.round(res.x, 4), bool(res.success)
        (Array([1., 1.], dtype=float64), True)
    """
    del tol
    if not isinstance(args, tuple):
        raise TypeError(f"minimize: args must be a tuple, got {type(args).__name__}")
    if not isinstance(method, str):
        raise TypeError(f"minimize: method must be a string, got {method!r}")
    options = {} if options is None else dict(options)
    x0 = fnp.asarray(x0)
    if x0.ndim != 1:
        raise ValueError(f"minimize: x0 must be 1-D, got shape {tuple(x0.shape)}")
    if not fnp.issubdtype(x0.dtype, fnp.floating):
        x0 = x0.astype(fnp.result_type(float))

    def fun_with_args(x):
        return fun(x, *args)

    name = method.lower()
    if name == "bfgs":
        solver, known = _bfgs, ("maxiter", "norm", "gtol", "line_search_maxiter")
    elif name == "l-bfgs-experimental-do-not-rely-on-this":
        solver, known = _lbfgs, ("maxiter", "norm", "maxcor", "ftol", "gtol", "maxfun",
                                 "maxgrad", "maxls")
    else:
        raise ValueError(f"minimize: method {method!r} not recognized; nanofn has 'BFGS' "
                         "and 'l-bfgs-experimental-do-not-rely-on-this'")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"minimize: unknown options {unknown} for method {method!r}; it "
                        f"takes {list(known)}")
    # The search itself is never differentiated: it runs on a copy of `fun` whose
    # closed-over arrays and `args` are cut from the gradient. The minimum then enters
    # `custom_root` on the gradient of `fun`, whose rule differentiates x* by the implicit
    # function theorem: dx* = -(d2f/dx2)^-1 (d2f/dx dtheta) dtheta.
    converted, consts = closure_convert(fun_with_args, x0)
    frozen = [stop_gradient(c) for c in consts]
    st = stop_gradient(solver(lambda x: converted(x, *frozen), stop_gradient(x0), **options))
    x = custom_root(nanofn.grad(fun_with_args), st.x, _already_solved, _dense_solve)
    return OptimizeResults(x=x, success=st.converged & ~st.failed, status=st.status,
                           fun=_value_with_gradient(fun_with_args, x, st.f), jac=st.g,
                           hess_inv=st.H if name == "bfgs" else None, nfev=st.nfev,
                           njev=st.nfev, nit=st.k)


def _already_solved(grad_fun, x):
    return x


def _dense_solve(linear, y):
    """`x` with `linear(x) = y`, from the matrix of `linear` (the Hessian at the minimum)."""
    eye = fnp.eye(y.shape[0], dtype=y.dtype)
    matrix = nanofn.vmap(linear, out_axes=1)(eye)
    return fnp.linalg.solve(matrix, y)


def _value_with_gradient(fun, x, value):
    """`value` (= fun(x)), carrying the derivative of `fun(x)` for `grad` to use."""
    again = fun(x).astype(value.dtype)
    return value + (again - stop_gradient(again))
