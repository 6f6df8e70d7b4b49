"""Solvers differentiated implicitly: `custom_root` and `custom_linear_solve` (jax.lax).

The solver itself (Newton's iterations, conjugate gradients, a factorisation, ...) is
never differentiated. At a root `x*` of `f(x, theta) = 0` the implicit function theorem
gives the reverse-mode rule: solve `(df/dx)^T lam = x_bar` with the caller's
`tangent_solve` on the transposed linear map, then `theta_bar = -(df/dtheta)^T lam`. A linear
solve `A(theta) x = b` is the same with `f = A x - b`: `b_bar = A^-T x_bar` (by
`transpose_solve`), `theta_bar = -(d(A x)/dtheta)^T b_bar`. The arrays `f` or `matvec` close
over become explicit inputs by `closure_convert`, so their gradients are not lost.

Both modes, as in JAX. `custom_linear_solve`'s forward rule (a `custom_jvp`) is one more
solve, `A x_dot = b_dot - (dA/dtheta . theta_dot) x`; reverse mode pulls that rule back,
and the solve inside it carries the `custom_vjp` rule above (the transpose solve), so no
solver's iterations are ever differentiated. `custom_root`'s forward rule is the linear
solve `(df/dx) x_dot = -(df/dtheta) theta_dot` by `custom_linear_solve` with
`tangent_solve`, so its reverse mode is that solve's. Second derivatives work in reverse
over reverse (`grad` of `grad`); forward over reverse (`hessian`, `jacfwd(grad(f))`) is not
defined, as the transpose solve is a `custom_vjp`.
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

    converted, consts = _closure.closure_convert(f, initial_guess)
    floats, rebuild = _split_float(consts)

    @_custom.custom_jvp
    def root(consts, guess):
        return solve(lambda x: converted(x, *rebuild(consts)), guess)

    @root.defjvp
    def root_jvp(primals, tangents):
        (consts, guess), (consts_dot, _) = primals, tangents
        out = root(consts, guess)
        sol = out[0] if has_aux else out
        # f(x*(theta), theta) = 0, so (df/dx) x_dot = -(df/dtheta) theta_dot: a linear solve
        # with the caller's tangent_solve, for both modes (custom_linear_solve's rules)
        f_dot = _consts_tangent(converted, sol, rebuild, consts, consts_dot)
        f_x = lambda v: _ad.jvp(lambda x: converted(x, *rebuild(consts)), (sol,), (v,))[1]
        x_dot = custom_linear_solve(f_x, _neg(f_dot), tangent_solve,
                                    transpose_solve=tangent_solve)
        return out, _out_tangent(out, x_dot, has_aux)

    return root(floats, initial_guess)


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
    floats, all_consts = _split_float(consts)

    def run(consts, b):
        # the map takes vectors in b's dtypes (a solver may build them in the default ones)
        return solve(lambda x: converted(_like(x, b), *all_consts(consts)), b)

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
        a_dot_x = _consts_tangent(converted, x, all_consts, consts, consts_dot)
        x_dot = linear_solve(consts, tree_map(lambda t, u: t - u, b_dot, a_dot_x))
        return out, _out_tangent(out, x_dot[0] if has_aux else x_dot, has_aux)

    return both_modes(floats, b)


def _like(x, b):
    from nanofn import numpy as fnp
    return tree_map(lambda t, u: fnp.asarray(t, fnp.result_type(u)), x, b)


def _split_float(consts):
    """`(floats, rebuild)`: the floating arrays among the closed-over `consts` (only they
    carry tangents; the others stay closed over), and `rebuild(floats) -> all consts`."""
    is_float = [np.issubdtype(np.result_type(c), np.inexact) for c in consts]
    fixed = [c for c, f in zip(consts, is_float) if not f]

    def rebuild(floats):
        floats, fixed_ = iter(floats), iter(fixed)
        return [next(floats) if f else next(fixed_) for f in is_float]
    return [c for c, f in zip(consts, is_float) if f], rebuild


def _consts_tangent(converted, point, rebuild, consts, consts_dot):
    """The tangent of `converted(point, *consts)` along `consts_dot` (`point` held fixed)."""
    from nanofn import _ad
    return _ad.jvp(lambda cs: converted(point, *rebuild(cs)), (list(consts),),
                   (list(consts_dot),))[1]


def _out_tangent(out, x_dot, has_aux):
    """The tangent of a solver's output: `x_dot`, with zeros for `aux` (float0 for
    integers and booleans), which is not differentiated."""
    if not has_aux:
        return x_dot
    from nanofn._dtypes_float0 import float0

    def zero(a):
        dtype = np.result_type(a)
        return np.zeros(np.shape(a), dtype if np.issubdtype(dtype, np.inexact) else float0)
    return x_dot, tree_map(zero, out[1])
