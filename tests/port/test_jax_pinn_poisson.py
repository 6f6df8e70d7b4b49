"""Port: a physics-informed neural network for a 2-D Poisson problem, as users write
PINNs in JAX (the pattern of the PINN tutorials built on `jax.hessian`).

The network u(x, y) is a small tanh MLP; the PDE residual  -Δu - f  is computed per
collocation point with `jnp.trace(jax.hessian(u)(p))` under `vmap`, the Neumann-style
boundary term with `jax.jacfwd` under `vmap`, and the MLP's layers are wrapped in
`jax.checkpoint` with the `dots_with_no_batch_dims_saveable` policy and the residual in a plain
`jax.checkpoint`. The loss (interior
residual plus boundary terms) is minimised for a few steps of `jit`ted gradient descent;
the same Laplacian through `jacrev(jacfwd(...))` and a forward-over-forward
`jvp`-of-`jvp` directional second derivative are compared as well.
Problem: -Δu = 2π² sin(πx) sin(πy) on the unit square, exact u = sin(πx) sin(πy).
"""

from _jax_port import check_against_jax


def program(jax, jnp):
    pi = 3.14159265
    key = jax.random.PRNGKey(7)
    k_int, k_bd, k_side, k_init = jax.random.split(key, 4)
    interior = jax.random.uniform(k_int, (48, 2))
    t = jax.random.uniform(k_bd, (32,))
    side = jax.random.randint(k_side, (32,), 0, 4)
    boundary = jnp.stack([jnp.where(side == 0, 0.0, jnp.where(side == 1, 1.0, t)),
                          jnp.where(side == 2, 0.0, jnp.where(side == 3, 1.0, t))], axis=1)

    sizes = [2, 16, 16, 1]
    keys = jax.random.split(k_init, len(sizes) - 1)
    params = [(jax.random.normal(k, (m, n)) * jnp.sqrt(1.0 / m), jnp.zeros(n))
              for k, m, n in zip(keys, sizes[:-1], sizes[1:])]

    policy = jax.checkpoint_policies.dots_with_no_batch_dims_saveable

    def hidden(w, b, h):
        return jnp.tanh(h @ w + b)

    hidden = jax.checkpoint(hidden, policy=policy)

    def u(params, p):
        h = p
        for w, b in params[:-1]:
            h = hidden(w, b, h)
        w, b = params[-1]
        return (h @ w + b)[0]

    def source(p):
        return 2 * pi ** 2 * jnp.sin(pi * p[0]) * jnp.sin(pi * p[1])

    @jax.checkpoint
    def residual(params, p):
        lap = jnp.trace(jax.hessian(u, argnums=1)(params, p))
        return -lap - source(p)

    def loss(params):
        r = jax.vmap(residual, (None, 0))(params, interior)
        ub = jax.vmap(u, (None, 0))(params, boundary)
        grad_b = jax.vmap(jax.jacfwd(u, argnums=1), (None, 0))(params, boundary)
        tangential = jnp.where(side[:, None] < 2, grad_b * jnp.array([0.0, 1.0]),
                               grad_b * jnp.array([1.0, 0.0]))
        return jnp.mean(r ** 2) + 10.0 * jnp.mean(ub ** 2) + jnp.mean(tangential ** 2)

    @jax.jit
    def step(params):
        value, grads = jax.value_and_grad(loss)(params)
        return jax.tree.map(lambda p, g: p - 2e-3 * g, params, grads), value

    losses = []
    for _ in range(12):
        params, value = step(params)
        losses.append(value)

    probe = jnp.array([[0.25, 0.5], [0.5, 0.5], [0.8, 0.3]])
    lap_hessian = jax.vmap(lambda p: jnp.trace(jax.hessian(u, 1)(params, p)))(probe)
    lap_revfwd = jax.vmap(lambda p: jnp.trace(jax.jacrev(jax.jacfwd(u, 1), 1)(params, p)))(probe)
    direction = jnp.array([0.6, 0.8])

    def second_directional(p):
        first = lambda q: jax.jvp(lambda r: u(params, r), (q,), (direction,))[1]
        return jax.jvp(first, (p,), (direction,))[1]

    return {"interior": interior, "boundary": boundary, "losses": jnp.stack(losses),
            "params": params, "u_probe": jax.vmap(u, (None, 0))(params, probe),
            "lap_hessian": lap_hessian, "lap_revfwd": lap_revfwd,
            "second_directional": jax.vmap(second_directional)(probe),
            "residual_grad": jax.grad(lambda ps: residual(ps, probe[1]))(params)}


def test_pinn_poisson_matches_jax():
    got, _ = check_against_jax("test_jax_pinn_poisson", program, rtol=2e-3, atol=2e-4)
    assert got["losses"][-1] < got["losses"][0]
    import numpy as np
    np.testing.assert_allclose(got["lap_revfwd"], got["lap_hessian"], rtol=1e-4, atol=1e-4)
