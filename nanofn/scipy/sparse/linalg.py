"""nanofn.scipy.sparse.linalg: Krylov solvers for `A x = b` (jax.scipy.sparse.linalg's names).

`A` is a function `x -> A x`, a square matrix, or anything with `@`; `b` (and `x0`) a
pytree of arrays, so a solver works on the parameters of a model as on one vector. Each
solver runs as a `lax.while_loop`, so it works under `jit` and `vmap`, and is wrapped in
`lax.custom_linear_solve`: its derivatives with respect to `b` and to the arrays `A`
closes over come from one more solve (implicit differentiation), not from
differentiating the iterations. The tolerances are scipy's: stop once
`|r| <= max(tol * |b|, atol)`, after at most `maxiter` steps (default `10 * size`).

Inside, the pytree is one flat vector (`ravel_pytree`), so the iterations are plain
vector algebra; `A` and `M` are called on the user's pytrees.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy.sparse.linalg import cg
    >>> x, info = cg(fnp.array([[4.0, 1.0], [1.0, 3.0]]), fnp.array([1.0, 2.0]))
    >>> fnp.round(x, 4)
    Array([0.0909, 0.6364], dtype=float32)
"""

from __future__ import annotations

import operator

import numpy as np

import nanofn.numpy as fnp
from nanofn._jit import eval_shape
from nanofn.numpy._dtypes import default_int, promote_float
from nanofn.flatten_util import ravel_pytree
from nanofn.ops import _control
from nanofn.ops._solvers import custom_linear_solve
from nanofn.tree_util import tree_leaves, tree_map, tree_structure, tree_unflatten

__all__ = ["bicgstab", "cg", "gmres"]


def _as_matvec(A, name):
    """`A` as a function; a matrix (or an object with `@`) must be square."""
    if callable(A):
        return A
    shape = getattr(A, "shape", None)
    if hasattr(A, "__matmul__") and shape is not None:
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"{name}: the linear operator must be a square matrix or a "
                             f"function, got shape {tuple(shape)}")
        return lambda x: operator.matmul(A, x)
    raise TypeError(f"{name}: the linear operator must be a function or a square matrix, "
                    f"got {type(A).__name__}")


def _inexact(name, what, tree, matrix):
    """`tree`'s leaves as arrays, integers made floats; one array when `A` is a matrix."""
    if matrix:  # a matrix acts on one vector, so a nested list is one array, not a pytree
        tree = fnp.asarray(tree)
    leaves = tree_leaves(tree)
    if not leaves:
        raise ValueError(f"{name}: {what} must be an array or a pytree of arrays, got {tree!r}")
    return tree_map(lambda v: promote_float(fnp.asarray(v))[0], tree)


def _check_real(name, **values):
    """A TypeError naming the first of `values` (tol, atol) that is not a real number."""
    for what, value in values.items():
        if isinstance(value, (str, bytes, complex)) or value is None or \
                np.dtype(getattr(value, "dtype", np.float64)).kind not in "biuf":
            raise TypeError(f"{name}: {what} must be a real number, got {value!r}")


def _setup(name, A, b, x0, maxiter, M, tol=0.0, atol=0.0):
    """The matvec, preconditioner, start and iteration limit, checked."""
    matrix = not callable(A)
    A = _as_matvec(A, name)
    M = (lambda x: x) if M is None else _as_matvec(M, name)
    _check_real(name, tol=tol, atol=atol)
    b = _inexact(name, "b", b, matrix)
    x0 = tree_map(fnp.zeros_like, b) if x0 is None else _inexact(name, "x0", x0, matrix)
    if tree_structure(x0) != tree_structure(b):
        raise ValueError(f"{name}: x0 and b must have the same tree structure, got "
                         f"{tree_structure(x0)} and {tree_structure(b)}")
    shapes = [np.shape(v) for v in tree_leaves(b)], [np.shape(v) for v in tree_leaves(x0)]
    if shapes[0] != shapes[1]:
        raise ValueError(f"{name}: the arrays of x0 and b must have the same shapes, got "
                         f"{shapes[1]} and {shapes[0]}")
    for fn, what in ((A, "the linear operator"), (M, "the preconditioner M")):
        out = eval_shape(fn, x0)  # traced, not run
        got = [tuple(v.shape) for v in tree_leaves(out)]
        want = [tuple(np.shape(v)) for v in tree_leaves(b)]
        if tree_structure(out) != tree_structure(b) or got != want:
            raise ValueError(f"{name}: {what} must map x to a value like b (structure "
                             f"{tree_structure(b)}, shapes {want}); it gave "
                             f"{tree_structure(out)} with shapes {got}")
        # a float64 operator on float32 vectors: iterate in the wider dtype
        wider = [np.result_type(v.dtype, o.dtype) for v, o in zip(tree_leaves(b),
                                                                  tree_leaves(out))]
        b, x0 = (tree_unflatten(tree_structure(t), [fnp.asarray(v, d) for v, d in
                                                      zip(tree_leaves(t), wider)])
                 for t in (b, x0))
    size = sum(int(np.size(v)) for v in tree_leaves(b))
    return A, M, b, x0, (10 * size if maxiter is None else int(maxiter))


def _flat(fn, unravel):
    """`fn` on pytrees as a function on the flat vector."""
    return lambda v: ravel_pytree(fn(unravel(v)))[0]


def _dot(x, y):
    """`x^H y`."""
    return fnp.sum(fnp.conj(x) * y)


def _sq_norm(x):
    """`|x|^2`, real: the real and imaginary parts' squares."""
    return fnp.sum(fnp.real(x) ** 2 + fnp.imag(x) ** 2) if fnp.iscomplexobj(x) \
        else fnp.sum(x * x)


def _bound(b, tol, atol):
    """scipy's stopping bound on `|r|^2`: `max(tol |b|, atol)^2`."""
    return fnp.maximum(tol ** 2 * _sq_norm(b), fnp.asarray(atol, _sq_norm(b).dtype) ** 2)


def _solver(name, A, b, x0, maxiter, M, flat_solve, symmetric, tol, atol):
    A, M, b, x0, maxiter = _setup(name, A, b, x0, maxiter, M, tol, atol)
    x0_flat, unravel = ravel_pytree(x0)

    def solve(matvec, rhs):
        rhs_flat = ravel_pytree(rhs)[0]
        return unravel(flat_solve(_flat(matvec, unravel), rhs_flat, x0_flat, maxiter,
                                  _flat(M, unravel)))
    return custom_linear_solve(A, b, solve=solve, transpose_solve=solve, symmetric=symmetric)


def cg(A, b, x0=None, *, tol=1e-5, atol=0.0, maxiter=None, M=None):
    """Solve `A x = b` by conjugate gradients; `A` must be Hermitian positive definite.

    Args:
        A: a function `x -> A x` on pytrees like `b`, or a square matrix.
        b: the right-hand side, an array or a pytree of arrays.
        x0: the starting guess (zeros by default).
        tol, atol: stop once `|b - A x| <= max(tol * |b|, atol)`.
        maxiter: at most this many iterations (default `10 * size`).
        M: a preconditioner approximating `A^-1`, Hermitian positive definite (a function
            or a matrix).

    Returns:
        `(x, None)`: JAX's `info` is always None (check the residual to see convergence).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.sparse.linalg import cg
        >>> x, _ = cg(lambda v: fnp.array([2.0, 8.0]) * v, fnp.array([1.0, 2.0]))
        >>> x
        Array([0.5 , 0.25], dtype=float32)
    """
    def iterate(A, b, x0, maxiter, M):
        bound = _bound(b, tol, atol)
        r = b - A(x0)
        z = M(r)
        rz = fnp.real(_dot(r, z))

        def go_on(state):
            _, r, _, rz, k = state
            return (_sq_norm(r) > bound) & (k < maxiter)

        def step(state):
            x, r, p, rz, k = state
            Ap = A(p)
            alpha = (rz / fnp.real(_dot(p, Ap))).astype(x.dtype)
            x, r = x + alpha * p, r - alpha * Ap
            z = M(r)
            rz_new = fnp.real(_dot(r, z))
            p = z + (rz_new / rz).astype(x.dtype) * p
            return x, r, p, rz_new, k + 1
        return _control.while_loop(go_on, step, (x0, r, z, rz, 0))[0]
    real = not any(fnp.iscomplexobj(v) for v in tree_leaves(b))
    return _solver("cg", A, b, x0, maxiter, M, iterate, real, tol, atol), None


def bicgstab(A, b, x0=None, *, tol=1e-5, atol=0.0, maxiter=None, M=None):
    """Solve `A x = b` by the stabilised biconjugate gradient method (any square `A`).

    Arguments as `cg`'s; `M` may be any preconditioner approximating `A^-1`. The
    iteration stops early, where it cannot go on, if a step's inner product is zero.

    Returns:
        `(x, None)`, as JAX.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.sparse.linalg import bicgstab
        >>> x, _ = bicgstab(fnp.array([[3.0, 1.0], [-1.0, 2.0]]), fnp.array([5.0, 3.0]))
        >>> fnp.round(x, 4)
        Array([1., 2.], dtype=float32)
    """
    def iterate(A, b, x0, maxiter, M):
        bound = _bound(b, tol, atol)
        r = b - A(x0)
        one = fnp.ones((), r.dtype)

        def go_on(state):
            r, k = state[1], state[-1]
            return (_sq_norm(r) > bound) & (k < maxiter) & (k >= 0)

        def step(state):
            x, r, r_hat, rho, alpha, omega, p, v, k = state
            rho_new = _dot(r_hat, r)
            p = r + (rho_new / rho) * (alpha / omega) * (p - omega * v)
            p_hat = M(p)
            v = A(p_hat)
            alpha = rho_new / _dot(r_hat, v)
            s = r - alpha * v
            converged = _sq_norm(s) < bound  # the half step is enough
            s_hat = M(s)
            t = A(s_hat)
            omega = _dot(t, s) / _dot(t, t)
            x = fnp.where(converged, x + alpha * p_hat, x + alpha * p_hat + omega * s_hat)
            r = fnp.where(converged, s, s - omega * t)
            stuck = (rho_new == 0) | (alpha == 0) | (omega == 0)  # breakdown: stop here
            return x, r, r_hat, rho_new, alpha, omega, p, v, fnp.where(stuck, -1, k + 1)
        state = (x0, r, r, one, one, one, r, r, fnp.asarray(0, np.int32))
        return _control.while_loop(go_on, step, state)[0]
    return _solver("bicgstab", A, b, x0, maxiter, M, iterate, False, tol, atol), None


def gmres(A, b, x0=None, *, tol=1e-5, atol=0.0, restart=20, maxiter=None, M=None,
          solve_method="batched"):
    """Solve `A x = b` by restarted GMRES (any square `A`), left-preconditioned by `M`.

    Each cycle builds an orthonormal basis of the Krylov space of `M A` of dimension
    `restart` (Arnoldi, Gram-Schmidt applied twice) and takes the `x` there whose
    preconditioned residual is least. As JAX's gmres, cycles repeat until the
    preconditioned residual `|M (b - A x)|` is at most `max(tol * |b|, atol)` (the bound
    is on the unpreconditioned `b`, so a preconditioner that shrinks vectors stops the
    solver sooner), or `maxiter` cycles have run (default `10 * size`).

    Args:
        A, b, x0, tol, atol, M: as `cg`'s.
        restart: the Krylov dimension of a cycle (at most the size of `b`).
        maxiter: at most this many cycles.
        solve_method: 'batched' builds every cycle's full Krylov basis; 'incremental'
            tracks the least-squares residual with Givens rotations and ends a cycle early
            once it is below the tolerance scaled to the preconditioned problem, as JAX's.

    Returns:
        `(x, info)`: `info` is 0, or -1 if `x` has a NaN, as JAX (of the default integer
        type).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.sparse.linalg import gmres
        >>> x, info = gmres(fnp.array([[3.0, 1.0], [-1.0, 2.0]]), fnp.array([5.0, 3.0]))
        >>> fnp.round(x, 4), info
        (Array([1., 2.], dtype=float32), Array(0, dtype=int32))
    """
    if solve_method not in ("batched", "incremental"):
        raise ValueError(f"gmres: solve_method must be 'batched' or 'incremental', got "
                         f"{solve_method!r}")
    size = sum(int(np.size(v)) for v in tree_leaves(b))
    restart = max(1, min(int(restart), size))

    def iterate(A, b, x0, maxiter, M):
        b_norm = fnp.sqrt(_sq_norm(b))
        bound = fnp.maximum(tol * b_norm, atol)
        # a cycle's own bound, on the preconditioned residual, scaled as the true one's
        pbound = fnp.sqrt(_sq_norm(M(b))) * fnp.minimum(1.0, bound / b_norm)
        eps = np.finfo(np.dtype(b.dtype)).eps

        def residual(x):
            r = M(b - A(x))
            r_norm = fnp.sqrt(_sq_norm(r))
            # JAX takes a residual below the dtype's epsilon as zero (solved)
            return r, fnp.where(r_norm > eps, r_norm, 0).astype(r_norm.dtype)

        def cycle(state):
            x, r, r_norm, k = state
            x = _gmres_cycle(A, M, x, r, r_norm, restart, pbound,
                             solve_method == "incremental")
            return (x,) + residual(x) + (k + 1,)

        def go_on(state):
            return (state[3] < maxiter) & (state[2] > bound)
        return _control.while_loop(go_on, cycle, (x0,) + residual(x0) + (0,))[0]
    x = _solver("gmres", A, b, x0, maxiter, M, iterate, False, tol, atol)
    failed = fnp.any(fnp.stack([fnp.any(fnp.isnan(v)) for v in tree_leaves(x)]))
    return x, fnp.where(failed, -1, 0).astype(default_int())  # int64 under x64, as JAX


def _gmres_cycle(A, M, x, r, r_norm, m, pbound, incremental):
    """One GMRES cycle from `x` with preconditioned residual `r`: the least-squares
    correction in the (at most) `m`-dimensional Krylov space of `M A`. `incremental`
    stops the Arnoldi process once the least-squares residual is at most `pbound`."""
    dtype = r.dtype
    eps = np.finfo(np.dtype(dtype)).eps
    n = r.shape[0]
    safe = fnp.where(r_norm > 0, r_norm, 1.0).astype(dtype)
    V = fnp.zeros((m + 1, n), dtype).at[0].set(r / safe)
    # Columns past the last Arnoldi step hold unit vectors on rows below every computed
    # column (the subdiagonal of an identity): the small problem stays full rank, and
    # those columns, whose rows of the right-hand side are zero, get zero weight.
    H = fnp.eye(m + 1, m, k=-1, dtype=dtype)
    # Givens rotations (c real, s) that make H upper triangular, and the rotated
    # right-hand side's last entry g, whose size is the least-squares residual after the
    # steps so far (used only by the incremental method).
    rotations = fnp.zeros((m, 2), dtype)

    def go_on(state):
        _, _, stop, j, _, _ = state
        return (j < m) & ~stop

    def arnoldi(state):
        V, H, _, j, rotations, g = state
        w = M(A(V[j]))
        w_norm = fnp.sqrt(_sq_norm(w))
        h = fnp.zeros((m + 1,), dtype)
        for _ in range(2):  # classical Gram-Schmidt, twice, against the basis so far
            c = fnp.where(fnp.arange(m + 1) <= j, fnp.conj(V) @ w, 0)
            w = w - c @ V
            h = h + c
        h_next = fnp.sqrt(_sq_norm(w))
        invariant = h_next <= eps * w_norm  # the Krylov space is invariant: exact solution
        V = V.at[j + 1].set(fnp.where(invariant, 0, w / fnp.where(invariant, 1, h_next)))
        h = h.at[j + 1].set(fnp.where(invariant, 0, h_next).astype(dtype))
        H = H.at[:, j].set(h)
        stop = invariant
        if incremental:
            rotations, g, res = _givens_step(h, j, rotations, g)
            stop = stop | (res <= pbound)
        return V, H, stop, j + 1, rotations, g
    state = (V, H, r_norm <= pbound * 0, 0, rotations, r_norm.astype(dtype))
    V, H, _, _, _, _ = _control.while_loop(go_on, arnoldi, state)
    rhs = fnp.zeros((m + 1,), dtype).at[0].set(r_norm.astype(dtype))
    y = fnp.linalg.lstsq(H, rhs)[0]
    return x + y @ V[:m]


def _givens_step(h, j, rotations, g):
    """Apply the `j` rotations so far to the new Hessenberg column `h`, make the rotation
    that zeroes `h[j + 1]`, and rotate the right-hand side's rows `j, j + 1`, `(g, 0)`,
    with it. Returns the rotations, the new last entry (row `j + 1`) and its size, the
    least-squares residual norm."""
    def rotate(i, h):
        c, s = rotations[i, 0], rotations[i, 1]
        a, b = h[i], h[i + 1]
        return h.at[i].set(c * a + s * b).at[i + 1].set(-fnp.conj(s) * a + c * b)
    h = _control.fori_loop(0, j, rotate, h)
    a, b = h[j], h[j + 1]
    abs_a, abs_b = fnp.abs(a), fnp.abs(b)
    norm = fnp.sqrt(abs_a ** 2 + abs_b ** 2)
    safe_norm = fnp.where(norm > 0, norm, 1)
    # c = |a| / norm (real), s = (a / |a|) conj(b) / norm; a = 0 takes a / |a| as 1
    phase = fnp.where(abs_a > 0, a / fnp.where(abs_a > 0, abs_a, 1), 1)
    c = fnp.where(norm > 0, abs_a / safe_norm, 1).astype(h.dtype)
    s = fnp.where(norm > 0, phase * fnp.conj(b) / safe_norm, 0).astype(h.dtype)
    rotations = rotations.at[j].set(fnp.stack([c, s]))
    g = -fnp.conj(s) * g
    return rotations, g, fnp.abs(g)
