"""Solvers differentiated implicitly: `custom_root` and `custom_linear_solve` (jax.lax).

The solver itself (Newton's iterations, conjugate gradients, a factorisation, ...) is
never differentiated. At a root `x*` of `f(x, theta) = 0` the implicit function theorem
gives the reverse-mode rule: solve `(df/dx)^T lam = x_bar` with the caller's
`tangent_solve` on the transposed linear map, then `theta_bar = -(df/dtheta)^T lam`. A linear
solve `A(theta) x = b` is the same with `f = A x - b`: `b_bar = A^-T x_bar` (by
`transpose_solve`), `theta_bar = -(d(A x)/dtheta)^T b_bar`. The arrays `f` or `matvec` close
over become explicit inputs by `closure_convert`, so their gradients are not lost.

`custom_root` is reverse mode only (its rule is a `custom_vjp`). `custom_linear_solve` has
both modes: forward, `A x_dot = b_dot - (dA/dtheta . theta_dot) x` is one more solve (a
`custom_jvp` rule); reverse mode pulls that rule back, and the solve inside it carries the
`custom_vjp` rule above, so no solver's iterations are ever differentiated.
"""

from __future__ import annotations

import numpy as np

from nanofn.tree_util import tree_map

__all__ = ["custom_root", "custom_linear_solve"]


def _neg(tree):
    return tree_map(lambda t: -t, tree)


def custom_root(f, initial_guess, solve, tangent_solve, has_aux=False):
    """Find a root of `f` with `solve`, differentiated by the implicit function theorem.

    Args:
        f: function whose root is wanted; `f(x)` has `x`'s structure and shapes. The arrays
            it closes over are what the result is differentiated with respect to.
        initial_guess: starting point, a pytree of arrays.
        solve: `solve(f, initial_guess)` returns the root (never differentiated).
        tangent_solve: `tangent_solve(g, y)` returns `x` with `g(x) = y` for a linear `g`
            (for a scalar root, `lambda g, y: y / g(1.0)`).
        has_aux: `solve` returns `(root, aux)`; `aux` is passed through undifferentiated.

    Returns:
        The root (and `aux` when `has_aux`).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> def sqrt(a):  # the root of x^2 - a by Newton's method
        ...     def newton(f, x):
        ...         for _ in range(30):
        ...             x = x - f(x) / (2 * x)
        ...         return x
        ...     return nanofn.lax.custom_root(lambda x: x * x - a, fnp.asarray(1.0), newton,
        ...                                   lambda g, y: y / g(1.0))
        >>> nanofn.grad(sqrt)(4.0)  # 1 / (2 sqrt(4))
        Array(0.25, dtype=float32)
    """
    from nanofn import _ad, _closure, _custom
    from nanofn import numpy as fnp

    converted, consts = _closure.closure_convert(f, initial_guess)

    def run(consts, guess):
        return solve(lambda x: converted(x, *consts), guess)

    @_custom.custom_vjp
    def root(consts, guess):
        return run(consts, guess)

    def fwd(consts, guess):
        out = run(consts, guess)
        return out, (consts, out[0] if has_aux else out, guess)

    def bwd(res, ct):
        consts, sol, guess = res
        ct = ct[0] if has_aux else ct
        _, f_x_t = _ad.vjp(lambda x: converted(x, *consts), sol)  # v -> (df/dx)^T v
        lam = tangent_solve(lambda v: f_x_t(v)[0], ct)
        _, f_theta_t = _ad.vjp(lambda cs: converted(sol, *cs), list(consts))
        (consts_ct,) = f_theta_t(lam)
        return _neg(consts_ct), tree_map(fnp.zeros_like, guess)

    root.defvjp(fwd, bwd)
    return root(list(consts), initial_guess)


def custom_linear_solve(matvec, b, solve, transpose_solve=None, symmetric=False,
                        has_aux=False):
    """Solve `matvec(x) = b` with `solve`, differentiated implicitly.

    Args:
        matvec: the linear map `x -> A x` (pytrees of `b`'s structure). The arrays it closes
            over are what the result is differentiated with respect to, with `b`.
        b: the right-hand side, a pytree of arrays.
        solve: `solve(matvec, b)` returns `x` (never differentiated).
        transpose_solve: `transpose_solve(vecmat, b)` solves with the transposed map; needed
            for reverse mode unless `symmetric`.
        symmetric: `A` is symmetric, so `solve` serves for the transpose too.
        has_aux: `solve` returns `(x, aux)`; `aux` is passed through undifferentiated.

    Returns:
        `x` (and `aux` when `has_aux`).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> def solve_diag(d, b):
        ...     return nanofn.lax.custom_linear_solve(lambda x: d * x, b,
        ...                                           lambda mv, rhs: rhs / d, symmetric=True)
        >>> nanofn.grad(lambda b: solve_diag(fnp.array([2.0, 4.0]), b).sum())(fnp.ones(2))
        Array([0.5 , 0.25], dtype=float32)
    """
    from nanofn import _ad, _closure, _custom

    converted, consts = _closure.closure_convert(matvec, b)
    if symmetric:
        transpose_solve = solve
    # only floating arrays carry tangents; the others stay closed over
    is_float = [np.issubdtype(np.result_type(c), np.inexact) for c in consts]
    fixed = [c for c, f in zip(consts, is_float) if not f]

    def all_consts(floats):
        floats, fixed_ = iter(floats), iter(fixed)
        return [next(floats) if f else next(fixed_) for f in is_float]

    def run(consts, b):
        return solve(lambda x: converted(x, *all_consts(consts)), b)

    @_custom.custom_vjp
    def linear_solve(consts, b):
        return run(consts, b)

    def fwd(consts, b):
        out = run(consts, b)
        return out, (consts, out[0] if has_aux else out)

    def bwd(res, ct):
        consts, x = res
        ct = ct[0] if has_aux else ct
        if transpose_solve is None:
            raise TypeError("custom_linear_solve: reverse mode needs transpose_solve (or "
                            "symmetric=True)")
        _, a_t = _ad.vjp(lambda v: converted(v, *all_consts(consts)), x)  # v -> A^T v
        b_ct = transpose_solve(lambda v: a_t(v)[0], ct)
        _, a_theta_t = _ad.vjp(lambda cs: converted(x, *all_consts(cs)), list(consts))
        (consts_ct,) = a_theta_t(b_ct)
        return _neg(consts_ct), b_ct

    linear_solve.defvjp(fwd, bwd)

    @_custom.custom_jvp
    def both_modes(consts, b):
        return linear_solve(consts, b)

    @both_modes.defjvp
    def both_modes_jvp(primals, tangents):
        (consts, b), (consts_dot, b_dot) = primals, tangents
        out = linear_solve(consts, b)
        x = out[0] if has_aux else out
        _, a_dot_x = _ad.jvp(lambda cs: converted(x, *all_consts(cs)), (list(consts),),
                             (list(consts_dot),))
        x_dot = linear_solve(consts, tree_map(lambda t, u: t - u, b_dot, a_dot_x))
        if has_aux:
            return out, (x_dot[0], tree_map(lambda a: np.zeros(np.shape(a), _tangent_dtype(a)),
                                            out[1]))
        return out, x_dot

    return both_modes([c for c, f in zip(consts, is_float) if f], b)


def _tangent_dtype(a):
    """The dtype of the (zero) tangent of an undifferentiated output `a`."""
    from nanofn._dtypes_float0 import float0
    dtype = np.result_type(a)
    return dtype if np.issubdtype(dtype, np.inexact) else float0
