"""Port: entropic optimal transport with log-domain Sinkhorn, in the style of the
OTT-JAX and "computational optimal transport" reference code users write in JAX.

Two point clouds with uniform weights; the cost is the squared Euclidean distance. The
dual potentials `f, g` are updated with `jax.nn.logsumexp` in a `lax.while_loop` that
stops at a marginal-error tolerance, and in a fixed-iteration `lax.scan`. The
regularised transport cost's gradient with respect to the source points comes from
three routes: unrolled through the `scan`, through the converged potentials treated as
constants (the envelope theorem, with `lax.stop_gradient`), and through a
`jax.custom_vjp` whose backward pass solves the linearised optimality conditions of the
potentials with `lax.custom_linear_solve`'s conjugate gradients (implicit
differentiation). `vmap` runs a batch of target clouds.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    n, m, d = 7, 6, 2
    kx, ky, kb = jax.random.split(jax.random.key(3), 3)
    x = jax.random.normal(kx, (n, d))
    y = jax.random.normal(ky, (m, d)) * 0.8 + jnp.array([1.0, -0.5])
    a = jnp.full((n,), 1.0 / n)
    b = jnp.full((m,), 1.0 / m)
    eps = 0.5

    def cost_matrix(x, y):
        return jnp.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)

    def f_update(g, c, loga):
        return -eps * jax.nn.logsumexp((g[None, :] - c) / eps, axis=1) + eps * loga

    def g_update(f, c, logb):
        return -eps * jax.nn.logsumexp((f[:, None] - c) / eps, axis=0) + eps * logb

    def plan(f, g, c):
        return jnp.exp((f[:, None] + g[None, :] - c) / eps)

    @jax.jit
    def sinkhorn_tol(x, y, tol=1e-5):
        c = cost_matrix(x, y)
        loga, logb = jnp.log(a), jnp.log(b)

        def cond(state):
            _, _, err, it = state
            return (err > tol) & (it < 500)

        def body(state):
            f, g, _, it = state
            f = f_update(g, c, loga)
            g = g_update(f, c, logb)
            err = jnp.sum(jnp.abs(jnp.sum(plan(f, g, c), axis=1) - a))
            return f, g, err, it + 1

        init = (jnp.zeros(n), jnp.zeros(m), jnp.array(jnp.inf), 0)
        f, g, err, it = lax.while_loop(cond, body, init)
        return f, g, err, it

    def sinkhorn_scan(x, y, iters=200):
        c = cost_matrix(x, y)
        loga, logb = jnp.log(a), jnp.log(b)

        def step(fg, _):
            f, g = fg
            f = f_update(g, c, loga)
            g = g_update(f, c, logb)
            return (f, g), jnp.sum(f * a) + jnp.sum(g * b)

        (f, g), duals = lax.scan(step, (jnp.zeros(n), jnp.zeros(m)), None, length=iters)
        return f, g, duals

    def reg_cost(f, g):
        # At the fixed point the plan has marginals a, b, so the dual objective equals
        # the entropic cost up to the constant eps * (sum(plan) - 1) = 0.
        return jnp.sum(f * a) + jnp.sum(g * b)

    def unrolled_cost(x, y):
        f, g, _ = sinkhorn_scan(x, y)
        return reg_cost(f, g)

    def envelope_cost(x, y):
        # Envelope theorem: at the optimum the cost's derivative in x is that of
        # <P, C(x)> with the plan P held fixed.
        f, g, _, _ = sinkhorn_tol(x, y)
        p = lax.stop_gradient(plan(f, g, cost_matrix(x, y)))
        return jnp.sum(p * cost_matrix(x, y))

    # Implicit differentiation: the potentials solve F(f, g; c) = 0; the backward pass
    # solves the transposed linear system instead of differentiating the iterations.
    @jax.custom_vjp
    def potentials(c):
        loga, logb = jnp.log(a), jnp.log(b)

        def body(_, fg):
            f, g = fg
            f = f_update(g, c, loga)
            return f, g_update(f, c, logb)

        return lax.fori_loop(0, 200, body, (jnp.zeros(n), jnp.zeros(m)))

    def potentials_fwd(c):
        f, g = potentials(c)
        return (f, g), (f, g, c)

    def potentials_bwd(res, cot):
        f, g, c = res
        p = plan(f, g, c)
        # Optimality: r(f, g) = (row sums - a, col sums - b) = 0. Its Jacobian in (f, g)
        # is (1/eps) [[diag(a), P], [P^T, diag(b)]] (symmetric, PSD with a null space
        # (1, -1) that fixes the potentials' gauge); add a small ridge to solve with CG.
        def jac_fg(v):
            vf, vg = v
            return ((a * vf + p @ vg) / eps + 1e-6 * vf,
                    (p.T @ vf + b * vg) / eps + 1e-6 * vg)

        def cg_solve(matvec, rhs):
            def body(state, _):
                xk, r, d, rr = state
                ad = matvec(d)
                alpha = rr / (jnp.vdot(d[0], ad[0]) + jnp.vdot(d[1], ad[1]))
                xk = jax.tree.map(lambda u, v: u + alpha * v, xk, d)
                r = jax.tree.map(lambda u, v: u - alpha * v, r, ad)
                rr_new = jnp.vdot(r[0], r[0]) + jnp.vdot(r[1], r[1])
                d = jax.tree.map(lambda u, v: u + (rr_new / rr) * v, r, d)
                return (xk, r, d, rr_new), None

            zero = jax.tree.map(jnp.zeros_like, rhs)
            rr = jnp.vdot(rhs[0], rhs[0]) + jnp.vdot(rhs[1], rhs[1])
            (sol, _, _, _), _ = lax.scan(body, (zero, rhs, rhs, rr), None, length=n + m)
            return sol

        w = lax.custom_linear_solve(jac_fg, cot, cg_solve, symmetric=True)
        wf, wg = w
        # d r / d c applied transposed: r_f depends on c through P = exp((f+g-c)/eps).
        dc = p * (wf[:, None] + wg[None, :]) / eps
        return (dc,)

    potentials.defvjp(potentials_fwd, potentials_bwd)

    def implicit_cost(x, y):
        f, g = potentials(cost_matrix(x, y))
        return reg_cost(f, g)

    f_tol, g_tol, _, it_tol = sinkhorn_tol(x, y)
    f_scan, _, duals = jax.jit(sinkhorn_scan)(x, y)
    c = cost_matrix(x, y)
    p = plan(f_tol, g_tol, c)

    grad_unrolled = jax.jit(jax.grad(unrolled_cost))(x, y)
    grad_envelope = jax.grad(envelope_cost)(x, y)
    val_implicit, grad_implicit = jax.value_and_grad(implicit_cost)(x, y)

    ys = jax.random.normal(kb, (3, m, d)) + y
    batch_cost = jax.vmap(lambda yy: unrolled_cost(x, yy))(ys)
    batch_grad = jax.vmap(jax.grad(unrolled_cost), in_axes=(None, 0))(x, ys)

    # A few steps of gradient flow of the source cloud towards the target.
    def flow(x, _):
        x = x - 0.5 * n * jax.grad(unrolled_cost)(x, y)
        return x, unrolled_cost(x, y)

    x_flow, flow_costs = lax.scan(flow, x, None, length=5)

    return {"f": f_tol - f_tol[0], "g": g_tol + f_tol[0], "iters": it_tol,
            "plan": p, "row_err": jnp.abs(p.sum(1) - a).max() < 1e-4,
            "scan_duals": duals, "f_scan": f_scan - f_scan[0],
            "cost": reg_cost(f_tol, g_tol), "grad_unrolled": grad_unrolled,
            "grad_envelope": grad_envelope, "val_implicit": val_implicit,
            "grad_implicit": grad_implicit, "batch_cost": batch_cost,
            "batch_grad": batch_grad, "flow_costs": flow_costs, "x_flow": x_flow}


def test_sinkhorn_matches_jax():
    got, _ = check_against_jax("test_jax_sci_sinkhorn", program, rtol=2e-3, atol=2e-4)
    # The three gradients agree once Sinkhorn has converged.
    np.testing.assert_allclose(got["grad_unrolled"], got["grad_envelope"], atol=2e-3)
    np.testing.assert_allclose(got["grad_implicit"], got["grad_envelope"], atol=2e-3)
    assert got["flow_costs"][-1] < got["flow_costs"][0]
