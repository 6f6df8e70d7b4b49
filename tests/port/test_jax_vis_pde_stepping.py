"""Port: finite-difference PDE time stepping in JAX, as in numerical-methods course code
ported to JAX.

The 1-d heat equation u_t = D u_xx on [0, 1] with Dirichlet ends is stepped by implicit
Euler: each step solves the tridiagonal system (I - D dt/dx^2 L) u' = u with
`jax.lax.linalg.tridiagonal_solve` (several right-hand sides at once), checked against
`jnp.linalg.solve` with the dense matrix and against the exact decay of a sine mode.
Crank-Nicolson runs the same way. The 2-d wave equation is stepped by leapfrog in
`lax.scan` on a periodic grid (the Laplacian by `jnp.roll`), with its discrete energy
recorded. Finally an inverse problem recovers the diffusion coefficient from a noisy
final state by `jax.grad` through the implicit solver (normalised gradient steps
on log D); the gradient is checked against a finite difference, and `jax.hessian`
of the misfit is compared too.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    nx = 31
    dx = 1.0 / (nx + 1)
    x = jnp.linspace(dx, 1.0 - dx, nx)
    dt = 2e-3

    def implicit_euler_bands(diff):
        r = diff * dt / dx ** 2
        dl = jnp.concatenate([jnp.zeros(1), jnp.full(nx - 1, -r)])
        d = jnp.full(nx, 1.0 + 2.0 * r)
        du = jnp.concatenate([jnp.full(nx - 1, -r), jnp.zeros(1)])
        return dl, d, du

    def heat_implicit(u0, diff, n_steps):
        dl, d, du = implicit_euler_bands(diff)

        def step(u, _):
            u = lax.linalg.tridiagonal_solve(dl, d, du, u[:, None])[:, 0]
            return u, jnp.max(jnp.abs(u))
        return lax.scan(step, u0, None, length=n_steps)

    def heat_dense(u0, diff, n_steps):
        r = diff * dt / dx ** 2
        a = ((1.0 + 2.0 * r) * jnp.eye(nx) - r * jnp.eye(nx, k=1) - r * jnp.eye(nx, k=-1))
        return lax.fori_loop(0, n_steps, lambda _, u: jnp.linalg.solve(a, u), u0)

    def heat_crank_nicolson(u0, diff, n_steps):
        r = 0.5 * diff * dt / dx ** 2
        dl = jnp.concatenate([jnp.zeros(1), jnp.full(nx - 1, -r)])
        d = jnp.full(nx, 1.0 + 2.0 * r)
        du = jnp.concatenate([jnp.full(nx - 1, -r), jnp.zeros(1)])

        def step(u, _):
            up = jnp.pad(u, 1)
            rhs = u + r * (up[2:] - 2.0 * u + up[:-2])
            return lax.linalg.tridiagonal_solve(dl, d, du, rhs[:, None])[:, 0], None
        return lax.scan(step, u0, None, length=n_steps)[0]

    diff_true = 0.15
    n_steps = 40
    mode1 = jnp.sin(jnp.pi * x)
    u0 = mode1 + 0.5 * jnp.sin(3 * jnp.pi * x) + jnp.where(jnp.abs(x - 0.3) < 0.1, 0.4, 0.0)
    u_impl, peaks = jax.jit(heat_implicit, static_argnums=2)(u0, diff_true, n_steps)
    u_dense = jax.jit(heat_dense, static_argnums=2)(u0, diff_true, n_steps)
    u_cn = heat_crank_nicolson(u0, diff_true, n_steps)
    # A pure sine mode decays by a known factor per implicit step.
    lam = 4.0 / dx ** 2 * jnp.sin(jnp.pi * dx / 2.0) ** 2
    mode_end = heat_implicit(mode1, diff_true, n_steps)[0]
    mode_exact = mode1 / (1.0 + diff_true * dt * lam) ** n_steps

    # Several right-hand sides (and a batch of systems under vmap) in one solve.
    dl, d, du = implicit_euler_bands(0.1)
    rhs = jnp.stack([u0, mode1, x], axis=1)
    multi = lax.linalg.tridiagonal_solve(dl, d, du, rhs)
    batched = jax.vmap(lambda c: lax.linalg.tridiagonal_solve(*implicit_euler_bands(c),
                                                               rhs))(jnp.array([0.05, 0.2]))

    # 2-d wave equation, leapfrog on a periodic grid.
    n2, h, c, dt2 = 16, 1.0 / 16, 1.0, 0.02
    gy, gx = jnp.meshgrid(jnp.arange(n2) * h, jnp.arange(n2) * h, indexing="ij")
    w0 = jnp.exp(-((gy - 0.5) ** 2 + (gx - 0.4) ** 2) / 0.01)

    def lap(u):
        return (jnp.roll(u, 1, 0) + jnp.roll(u, -1, 0) + jnp.roll(u, 1, 1)
                + jnp.roll(u, -1, 1) - 4.0 * u) / h ** 2

    def leapfrog(carry, _):
        u_prev, u = carry
        u_next = 2.0 * u - u_prev + (c * dt2) ** 2 * lap(u)
        vel = (u_next - u_prev) / (2.0 * dt2)
        grad_y = (jnp.roll(u, -1, 0) - u) / h
        grad_x = (jnp.roll(u, -1, 1) - u) / h
        energy = 0.5 * jnp.sum(vel ** 2 + c ** 2 * (grad_y ** 2 + grad_x ** 2)) * h ** 2
        return (u, u_next), energy

    w1 = w0 + 0.5 * (c * dt2) ** 2 * lap(w0)
    (_, w_end), energies = jax.jit(lambda a, b: lax.scan(leapfrog, (a, b), None,
                                                          length=30))(w0, w1)

    # Inverse problem: recover D from a noisy final state.
    noise = 0.01 * jax.random.normal(jax.random.PRNGKey(5), (nx,))
    observed = u_impl + noise

    def misfit(log_d):
        u_end, _ = heat_implicit(u0, jnp.exp(log_d), n_steps)
        return jnp.sum((u_end - observed) ** 2)

    grad_fn = jax.jit(jax.value_and_grad(misfit))
    log_d = jnp.log(0.05)
    history = []
    for _ in range(25):
        value, g = grad_fn(log_d)
        history.append(value)
        log_d = log_d - 0.5 * g / (1.0 + jnp.abs(g))
    eps = 1e-2
    g_check = grad_fn(jnp.log(0.1))[1]
    fd = (misfit(jnp.log(0.1) + eps) - misfit(jnp.log(0.1) - eps)) / (2 * eps)
    hess = jax.hessian(misfit)(jnp.log(0.1))
    return {"u_implicit": u_impl, "peaks": peaks, "u_dense": u_dense, "u_cn": u_cn,
            "mode_end": mode_end, "mode_exact": mode_exact, "multi": multi,
            "batched": batched, "wave_end": w_end, "energies": energies,
            "misfit_history": jnp.stack(history), "d_fit": jnp.exp(log_d),
            "grad_check": g_check, "fd_check": fd, "hessian": hess}


def test_pde_stepping_matches_jax():
    got, _ = check_against_jax("test_jax_vis_pde_stepping", program, rtol=1e-3, atol=1e-5,
                               overrides={"fd_check": (1e-2, 1e-4)})
    np.testing.assert_allclose(got["u_implicit"], got["u_dense"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got["mode_end"], got["mode_exact"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got["grad_check"], got["fd_check"], rtol=1e-2, atol=1e-5)
    np.testing.assert_allclose(got["d_fit"], 0.15, rtol=0.05)
    # Leapfrog keeps the discrete energy nearly constant.
    e = got["energies"]
    assert np.ptp(e[2:]) < 0.05 * e[2:].mean()
