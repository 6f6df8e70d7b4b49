"""Port: `jax.experimental.ode.odeint` as its docstring and scipy's `odeint` tutorial use
it: the damped pendulum `pend(y, t, b, c)` (scipy.integrate.odeint's example, which
JAX's odeint mirrors), integrated over a time grid, differentiated with respect to the
damping `b` and the initial state (reverse mode through the adaptive solver), and a
`vmap` over initial angles; plus exponential decay, whose solution is known.
"""

from _jax_port import check_against_jax


def program(jax, jnp):
    from_ode = jax.experimental.ode

    def pend(y, t, b, c):
        theta, omega = y
        return jnp.array([omega, -b * omega - c * jnp.sin(theta)])

    b, c = 0.25, 5.0
    y0 = jnp.array([jnp.pi - 0.1, 0.0])
    t = jnp.linspace(0., 10., 21)
    sol = from_ode.odeint(pend, y0, t, b, c)

    def final_theta(y0, b):
        return from_ode.odeint(pend, y0, t, b, c)[-1, 0]

    decay = from_ode.odeint(lambda y, t, k: -k * y, jnp.array([1.0, 2.0]), t, 0.3)
    return {"sol": sol,
            "grad_y0": jax.grad(final_theta)(y0, b),
            "grad_b": jax.grad(final_theta, argnums=1)(y0, b),
            "vmap_final": jax.vmap(lambda th: final_theta(jnp.array([th, 0.0]), b))(
                jnp.array([0.5, 1.0, 2.0])),
            "decay": decay}


def test_odeint_matches_jax():
    got, _ = check_against_jax("test_jax_odeint", program, rtol=2e-3, atol=2e-4)
    import numpy as np
    t = np.linspace(0., 10., 21)
    np.testing.assert_allclose(got["decay"], np.exp(-0.3 * t)[:, None] * [1.0, 2.0],
                               rtol=1e-4, atol=1e-5)
