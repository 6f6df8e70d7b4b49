"""Port: expectation-maximisation for a Gaussian mixture in JAX, as users write it with
`jax.scipy.stats.multivariate_normal.logpdf` under `vmap`, `jax.scipy.special.logsumexp`
for the responsibilities, and `lax.while_loop` iterating to a tolerance on the
log-likelihood; then the gradient of the fitted log-likelihood with respect to the data
(through the last E-step) and the mixture's log-density on a grid.

Three 2-d clusters from numpy's seeded generator.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax, jsp):
    rng = np.random.default_rng(11)
    centres = np.array([[0.0, 0.0], [3.0, 1.0], [-1.0, 3.5]])
    xs = np.concatenate([c + rng.normal(scale=s, size=(40, 2))
                         for c, s in zip(centres, (0.5, 0.8, 0.6))]).astype(np.float32)
    xs = jnp.asarray(xs)
    k = 3

    def log_joint(x, weights, means, covs):
        comp = jax.vmap(lambda m, c: jsp.stats.multivariate_normal.logpdf(x, m, c))(means, covs)
        return jnp.log(weights)[:, None] + comp                                  # (k, n)

    def e_step(x, params):
        lj = log_joint(x, *params)
        norm = jsp.special.logsumexp(lj, axis=0)
        return jnp.exp(lj - norm), jnp.mean(norm)

    def m_step(x, resp):
        nk = resp.sum(axis=1)
        means = (resp @ x) / nk[:, None]
        diff = x[None] - means[:, None]                                           # (k, n, 2)
        covs = jnp.einsum("kn,kni,knj->kij", resp, diff, diff) / nk[:, None, None]
        covs = covs + 1e-3 * jnp.eye(2)
        return nk / x.shape[0], means, covs

    def fit(x, means0):
        params = (jnp.full(k, 1.0 / k), means0, jnp.tile(jnp.eye(2), (k, 1, 1)))

        def cond(state):
            _, ll, ll_old, it = state
            return (jnp.abs(ll - ll_old) > 1e-5) & (it < 60)

        def body(state):
            params, ll, _, it = state
            resp, ll_new = e_step(x, params)
            return m_step(x, resp), ll_new, ll, it + 1

        params, ll, _, iters = lax.while_loop(cond, body, (params, jnp.float32(0.0),
                                                           jnp.float32(-1e9), 0))
        return params, ll, iters

    params, ll, iters = jax.jit(fit)(xs, xs[jnp.array([0, 40, 80])])
    weights, means, covs = params
    grad_x = jax.grad(lambda x: e_step(x, params)[1])(xs)
    grid = jnp.stack(jnp.meshgrid(jnp.linspace(-2, 4, 5), jnp.linspace(-1, 5, 4)), -1)
    density = jsp.special.logsumexp(log_joint(grid.reshape(-1, 2), *params), axis=0)
    order = jnp.argsort(means[:, 0])
    return {"weights": weights[order], "means": means[order], "covs": covs[order],
            "loglik": ll, "iterations": iters, "grad_x": grad_x,
            "log_density": density.reshape(4, 5)}


def test_gmm_em_matches_jax():
    got, _ = check_against_jax("test_jax_gmm_em", program, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(got["weights"].sum(), 1.0, rtol=1e-5)
