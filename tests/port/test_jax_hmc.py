"""Port: Hamiltonian Monte Carlo written directly in JAX, in the pattern of the samplers
users write from JAX's documentation (`lax.fori_loop` for the leapfrog steps, `lax.scan`
over the chain with `random.split`, `lax.cond` for the Metropolis step, `vmap` over
chains).

The target is a correlated 2-d Gaussian plus a weak quartic term; its gradient comes from
`jax.grad` of the log-density. The chain is short, so rounding differences between
libraries cannot flip an accept decision, and every random draw is JAX's bit for bit.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    prec = jnp.array([[2.0, -0.8], [-0.8, 1.0]])

    def log_density(x):
        return -0.5 * x @ prec @ x - 0.05 * jnp.sum(x ** 4)

    grad_log = jax.grad(log_density)

    def leapfrog(x, p, step, n_steps):
        p = p + 0.5 * step * grad_log(x)

        def body(_, carry):
            x, p = carry
            x = x + step * p
            return x, p + step * grad_log(x)

        x, p = lax.fori_loop(0, n_steps - 1, body, (x, p))
        x = x + step * p
        return x, p + 0.5 * step * grad_log(x)

    def hmc_step(carry, key):
        x, accepted = carry
        k_mom, k_acc = jax.random.split(key)
        p0 = jax.random.normal(k_mom, x.shape)
        x1, p1 = leapfrog(x, p0, 0.2, 8)
        log_ratio = (log_density(x1) - 0.5 * p1 @ p1) - (log_density(x) - 0.5 * p0 @ p0)
        accept = jnp.log(jax.random.uniform(k_acc)) < log_ratio
        x_new = lax.cond(accept, lambda: x1, lambda: x)
        return (x_new, accepted + accept.astype(jnp.int32)), (x_new, log_ratio)

    @jax.jit
    def chain(key, x0):
        keys = jax.random.split(key, 12)
        (x, n_acc), (xs, ratios) = lax.scan(hmc_step, (x0, jnp.int32(0)), keys)
        return x, n_acc, xs, ratios

    x0s = jnp.array([[1.0, -1.0], [0.5, 0.5], [-2.0, 0.3]])
    chain_keys = jax.random.split(jax.random.key(7), 3)
    x_end, n_acc, xs, ratios = jax.vmap(chain)(chain_keys, x0s)
    one = chain(chain_keys[1], x0s[1])
    return {"x_end": x_end, "n_accepted": n_acc, "samples": xs,
            "log_ratio": jnp.minimum(ratios, 0.0), "single_chain_end": one[0],
            "grad_at_start": jax.vmap(grad_log)(x0s)}


def test_hmc_matches_jax():
    got, _ = check_against_jax("test_jax_hmc", program, rtol=1e-3, atol=1e-4)
    assert np.all(got["n_accepted"] > 0)
    np.testing.assert_allclose(got["single_chain_end"], got["x_end"][1], rtol=1e-5)
