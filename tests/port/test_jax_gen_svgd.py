"""Port: Stein variational gradient descent (Liu & Wang, 2016) for a Bayesian logistic
regression, in the pattern of the SVGD reference code rewritten in JAX.

Particles are weight vectors; the target is the posterior of a logistic regression with
a Gaussian prior, its score `grad(log_posterior)` batched with `vmap`. The RBF kernel's
bandwidth comes from the median heuristic (`jnp.median` of the pairwise squared
distances); the repulsive term is the kernel's gradient, computed two ways: by `vmap` of
`jacrev` over pairs, and in closed form. A few SVGD updates run under `jit` with a
`lax.scan` over steps and AdaGrad-style step sizes; the posterior predictive on held-out
points is averaged over particles with `jax.nn.sigmoid`.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    rs = np.random.RandomState(0)
    n, d = 60, 3
    x = rs.normal(size=(n, d)).astype(np.float32)
    w_true = np.array([1.5, -2.0, 0.5], np.float32)
    y = (rs.uniform(size=n) < 1 / (1 + np.exp(-x @ w_true))).astype(np.float32)
    x, y = jnp.asarray(x), jnp.asarray(y)

    def log_posterior(w):
        logits = x @ w
        log_lik = jnp.sum(y * jax.nn.log_sigmoid(logits) + (1 - y) * jax.nn.log_sigmoid(-logits))
        log_prior = jnp.sum(jax.scipy.stats.norm.logpdf(w, 0.0, 2.0))
        return log_lik + log_prior

    score = jax.vmap(jax.grad(log_posterior))

    def bandwidth(particles):
        sq = jnp.sum((particles[:, None, :] - particles[None, :, :]) ** 2, axis=-1)
        h = jnp.median(sq) / jnp.log(particles.shape[0] + 1.0)
        return lax.stop_gradient(jnp.maximum(h, 1e-6))

    def rbf(a, b, h):
        return jnp.exp(-jnp.sum((a - b) ** 2) / h)

    def kernel_and_grad(particles):
        h = bandwidth(particles)
        k = jax.vmap(lambda a: jax.vmap(lambda b: rbf(a, b, h))(particles))(particles)
        # d k(x_j, x_i) / d x_j for every pair, via jacrev of the kernel's first argument.
        dk = jax.vmap(lambda a: jax.vmap(lambda b: jax.jacrev(rbf)(a, b, h))(particles))(particles)
        return k, dk

    def phi(particles):
        k, dk = kernel_and_grad(particles)
        return (k @ score(particles) + jnp.sum(dk, axis=0)) / particles.shape[0]

    def phi_closed_form(particles):
        h = bandwidth(particles)
        diff = particles[:, None, :] - particles[None, :, :]
        k = jnp.exp(-jnp.sum(diff ** 2, -1) / h)
        repulsive = jnp.einsum("ji,jid->id", k, -2.0 * diff / h)
        return (k @ score(particles) + repulsive) / particles.shape[0]

    @jax.jit
    def run(particles, step_size=0.05, n_steps=30):
        def body(carry, _):
            p, hist = carry
            g = phi(p)
            hist = 0.9 * hist + 0.1 * g ** 2
            p = p + step_size * g / (1e-6 + jnp.sqrt(hist))
            return (p, hist), jnp.mean(jax.vmap(log_posterior)(p))
        (p, _), trace = lax.scan(body, (particles, jnp.zeros_like(particles)), None,
                                 length=n_steps)
        return p, trace

    p0 = jax.random.normal(jax.random.PRNGKey(0), (16, d))
    particles, trace = run(p0)
    x_test = jnp.array([[0.5, 0.5, 0.0], [-1.0, 1.0, 1.0], [2.0, 0.0, -1.0]])
    predictive = jnp.mean(jax.nn.sigmoid(x_test @ particles.T), axis=1)
    k0, dk0 = kernel_and_grad(p0)
    return {"particles": particles, "trace": trace, "predictive": predictive,
            "bandwidth": bandwidth(p0), "kernel": k0, "kernel_grad": dk0[:3, :3],
            "phi0": phi(p0), "phi0_closed": phi_closed_form(p0),
            "posterior_mean": jnp.mean(particles, axis=0),
            "posterior_std": jnp.std(particles, axis=0)}


def test_svgd_matches_jax():
    got, _ = check_against_jax("test_jax_gen_svgd", program, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got["phi0"], got["phi0_closed"], rtol=1e-4, atol=1e-5)
    assert got["trace"][-1] > got["trace"][0]
