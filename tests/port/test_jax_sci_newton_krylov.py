"""Port: matrix-free Newton-Krylov solvers in JAX for nonlinear boundary-value problems,
in the style of the Jacobian-free Newton-Krylov codes users write on top of
`jax.scipy.sparse.linalg`.

1. The 1-d Bratu problem `-u'' = lam exp(u)` on (0, 1) with zero boundary values, by
   finite differences, near its fold (lam = 3.3). Each Newton step solves
   `J du = -F(u)` with `J` applied only through `jax.jvp`: by `gmres` (both solve
   methods) preconditioned by the inverse 1-d Laplacian (Thomas sweeps in `lax.scan`),
   by `bicgstab` with a Jacobi `M`, and by `cg` (the Bratu Jacobian is symmetric
   positive definite below the fold). A backtracking line search on `|F|^2` runs in a
   `lax.while_loop`; the Newton loop is a `lax.while_loop` to a tolerance under `jit`.
   (gmres stops, as JAX's, on the preconditioned residual against `tol * |b|`.)
2. `jax.linearize` gives the Jacobian's action at the solution and
   `jax.linear_transpose` its transpose, checked against `jax.vjp`; the sensitivity
   `du/dlam` solves `J s = exp(u)` with `cg`.
3. A 2-d Poisson problem with a cubic reaction term on an 8x8 grid, solved by
   Newton-CG with a Jacobi preconditioner, with `vmap` over source strengths.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax, jsp):
    spla = jsp.sparse.linalg
    n = 31
    h = 1.0 / (n + 1)
    xs = jnp.linspace(h, 1.0 - h, n)

    def laplacian_1d(u):
        padded = jnp.pad(u, 1)
        return (2.0 * u - padded[:-2] - padded[2:]) / h ** 2

    def bratu(u, lam):
        return laplacian_1d(u) - lam * jnp.exp(u)

    # Preconditioner: the inverse of the 1-d Laplacian (tridiagonal), by the Thomas
    # algorithm in two scans.
    def laplacian_inverse(r):
        lower = -1.0 / h ** 2
        diag = 2.0 / h ** 2

        def forward(carry, ri):
            c_prev, d_prev = carry
            denom = diag - lower * c_prev
            c = lower / denom
            dval = (ri - lower * d_prev) / denom
            return (c, dval), (c, dval)

        _, (cs, ds) = lax.scan(forward, (0.0, 0.0), r)

        def backward(x_next, cd):
            c, dval = cd
            x = dval - c * x_next
            return x, x

        _, out = lax.scan(backward, 0.0, (cs, ds), reverse=True)
        return out

    def newton_krylov(lam, linear_solver, tol=2e-3, max_iter=20):
        def residual(u):
            return bratu(u, lam)

        def cond(state):
            _, fnorm, it, _ = state
            return (fnorm > tol) & (it < max_iter)

        def body(state):
            u, fnorm, it, ls_total = state
            f = residual(u)

            def jvp(v):
                return jax.jvp(residual, (u,), (v,))[1]

            du = linear_solver(jvp, -f, u)

            # Backtracking (Armijo) on 0.5 |F|^2, halving the step.
            def ls_cond(s):
                t, k = s
                trial = residual(u + t * du)
                return (jnp.sum(trial ** 2) > (1.0 - 1e-4 * t) * fnorm ** 2) & (k < 10)

            t, k = lax.while_loop(ls_cond, lambda s: (0.5 * s[0], s[1] + 1), (1.0, 0))
            u = u + t * du
            return u, jnp.linalg.norm(residual(u)), it + 1, ls_total + k

        u0 = jnp.zeros(n)
        init = (u0, jnp.linalg.norm(residual(u0)), 0, 0)
        return lax.while_loop(cond, body, init)

    def gmres_batched(jvp, rhs, u):
        return spla.gmres(jvp, rhs, M=laplacian_inverse, tol=1e-6, restart=10,
                          solve_method="batched")[0]

    def gmres_incremental(jvp, rhs, u):
        return spla.gmres(jvp, rhs, M=laplacian_inverse, tol=1e-6, restart=10,
                          solve_method="incremental")[0]

    def bicgstab_jacobi(jvp, rhs, u):
        diag = 2.0 / h ** 2 - 2.0 * jnp.exp(u)
        return spla.bicgstab(jvp, rhs, M=lambda r: r / diag, tol=1e-5, maxiter=200)[0]

    def cg_plain(jvp, rhs, u):
        return spla.cg(jvp, rhs, tol=1e-6, maxiter=100)[0]

    lam = 3.3
    results = {}
    for name, solver in [("gmres_batched", gmres_batched),
                         ("gmres_incremental", gmres_incremental),
                         ("bicgstab", bicgstab_jacobi), ("cg", cg_plain)]:
        u, fnorm, iters, _ = jax.jit(lambda l, s=solver: newton_krylov(l, s))(lam)
        results[name] = {"u": u, "fnorm_small": fnorm < 1e-3, "iters": iters}
    u_star = results["gmres_batched"]["u"]

    # Linearisation, its transpose and the sensitivity to lam.
    f_val, f_jvp = jax.linearize(lambda u: bratu(u, lam), u_star)
    f_vjp = jax.linear_transpose(f_jvp, u_star)
    probe = jnp.sin(3.0 * jnp.pi * xs)
    (transposed,) = f_vjp(probe)
    (vjp_ref,) = jax.vjp(lambda u: bratu(u, lam), u_star)[1](probe)
    sens, _ = spla.cg(f_jvp, jnp.exp(u_star), tol=1e-6, maxiter=100)
    # Check it against a finite difference of two Newton solves.
    u_plus = newton_krylov(lam + 1e-2, gmres_batched)[0]
    u_minus = newton_krylov(lam - 1e-2, gmres_batched)[0]

    # 2-d Poisson with a cubic reaction term: -Lap u + u^3 = s * f(x, y).
    m = 8
    hh = 1.0 / (m + 1)
    grid = jnp.linspace(hh, 1.0 - hh, m)
    gx, gy = jnp.meshgrid(grid, grid, indexing="ij")
    source = jnp.sin(jnp.pi * gx) * jnp.sin(2 * jnp.pi * gy) + 1.0

    def residual_2d(u, s):
        p = jnp.pad(u, 1)
        lap = (4.0 * u - p[:-2, 1:-1] - p[2:, 1:-1] - p[1:-1, :-2] - p[1:-1, 2:]) / hh ** 2
        return lap + u ** 3 - s * source

    def solve_2d(s):
        def step(u, _):
            f = residual_2d(u, s)
            diag = 4.0 / hh ** 2 + 3.0 * u ** 2
            du, _ = spla.cg(lambda v: jax.jvp(lambda w: residual_2d(w, s), (u,), (v,))[1],
                            -f, M=lambda r: r / diag, tol=1e-6, maxiter=200)
            u = u + du
            return u, jnp.linalg.norm(residual_2d(u, s))

        return lax.scan(step, jnp.zeros((m, m)), None, length=5)

    strengths = jnp.array([1.0, 10.0, 50.0])
    u2d, norms2d = jax.jit(jax.vmap(solve_2d))(strengths)

    results.update({
        "linearize_small": jnp.linalg.norm(f_val) < 2e-3, "transpose": transposed, "vjp": vjp_ref,
        "sensitivity": sens, "fd_sensitivity": (u_plus - u_minus) / 2e-2,
        "u2d": u2d, "norms2d_last": norms2d[:, -1] < 1e-2,
        "u2d_center": u2d[:, m // 2, m // 2]})
    return results


def test_newton_krylov_matches_jax():
    got, _ = check_against_jax("test_jax_sci_newton_krylov", program, rtol=2e-3,
                               atol=1e-4, overrides={
                                                     "fd_sensitivity": (1e-2, 1e-3)})
    for name in ("gmres_incremental", "bicgstab", "cg"):
        np.testing.assert_allclose(got[f"{name}/u"], got["gmres_batched/u"], atol=1e-5)
        assert got[f"{name}/fnorm_small"]
    np.testing.assert_allclose(got["transpose"], got["vjp"], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(got["sensitivity"], got["fd_sensitivity"], rtol=2e-2,
                               atol=1e-3)
