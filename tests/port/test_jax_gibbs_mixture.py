"""Port: a Gibbs sampler for a Bayesian Gaussian mixture in JAX, with discrete sampling
from `jax.random` (the pattern of the "MCMC from scratch in JAX" tutorials).

Model: K=3 components with known variance, means ~ N(0, 10²), weights ~ Dirichlet(1).
Each sweep (a `lax.scan` step with a fresh `jax.random.split`) draws every assignment
with `jax.random.categorical` (logits from `jax.nn.log_softmax` of the weights plus
`jax.scipy.stats.norm.logpdf`), counts and sums per component with
`jax.ops.segment_sum`, then draws the means from their Gaussian conditionals and the
weights with `jax.random.dirichlet`. Around the chain: a random-scan variant visiting
components in `jax.random.permutation` order, a Metropolis step for a discrete
hyperparameter proposed by `jax.random.choice(p=...)`, and a bootstrap of the posterior
mean with `jax.random.choice(replace=True)`; several chains run under `vmap`.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, jsp):
    lax = jax.lax
    rs = np.random.RandomState(21)
    true_means = np.array([-4.0, 0.5, 5.0], np.float32)
    z_true = rs.choice(3, size=60, p=[0.3, 0.3, 0.4])
    data = jnp.asarray(true_means[z_true] + rs.normal(size=60).astype(np.float32))
    k, sigma, prior_sd = 3, 1.0, 10.0

    def sweep(state, key):
        means, weights = state
        k_z, k_mu, k_w = jax.random.split(key, 3)
        logits = (jax.nn.log_softmax(jnp.log(weights))
                  + jsp.stats.norm.logpdf(data[:, None], means, sigma))
        z = jax.random.categorical(k_z, logits, axis=-1)
        counts = jax.ops.segment_sum(jnp.ones_like(data), z, num_segments=k)
        sums = jax.ops.segment_sum(data, z, num_segments=k)
        precision = counts / sigma ** 2 + 1.0 / prior_sd ** 2
        post_mean = (sums / sigma ** 2) / precision
        means = post_mean + jax.random.normal(k_mu, (k,)) / jnp.sqrt(precision)
        weights = jax.random.dirichlet(k_w, 1.0 + counts)
        return (means, weights), (means, z)

    def chain(key, init_means, n=25):
        init = (init_means, jnp.full(k, 1.0 / k))
        (means, weights), (trace, zs) = lax.scan(sweep, init, jax.random.split(key, n))
        return means, weights, trace, zs[-1]

    key = jax.random.PRNGKey(2024)
    k_chain, k_chains, k_perm, k_mh, k_boot = jax.random.split(key, 5)
    means, weights, trace, z_last = chain(k_chain, jnp.array([-1.0, 0.0, 1.0]))
    order = jnp.argsort(means)

    inits = jnp.array([[-1.0, 0.0, 1.0], [-6.0, 0.0, 6.0], [2.0, -2.0, 0.0]])
    chains = jax.vmap(chain)(jax.random.split(k_chains, 3), inits)
    sorted_chain_means = jnp.sort(chains[0], axis=-1)

    def random_scan(key, means):
        perm_key, *keys = jax.random.split(key, k + 1)
        perm = jax.random.permutation(perm_key, k)
        for i in range(k):
            j = perm[i]
            others = jnp.where(jnp.arange(k) == j, jnp.inf, means)
            nearest = jnp.argmin(jnp.abs(data[:, None] - others), axis=1)
            member = (jnp.abs(data - means[j]) < jnp.abs(data - others[nearest]))
            n_j = jnp.sum(member)
            prec = n_j / sigma ** 2 + 1.0 / prior_sd ** 2
            mean_j = jnp.sum(jnp.where(member, data, 0.0)) / sigma ** 2 / prec
            means = means.at[j].set(mean_j + jax.random.normal(keys[i]) / jnp.sqrt(prec))
        return means, perm

    rs_means, perm = random_scan(k_perm, means)

    sds = jnp.array([0.5, 1.0, 1.5, 2.0])

    def log_post_sd(i):
        z = jnp.argmax(jsp.stats.norm.logpdf(data[:, None], means, 1.0), axis=1)
        return jnp.sum(jsp.stats.norm.logpdf(data, means[z], sds[i]))

    def mh_step(i, key):
        k_prop, k_acc = jax.random.split(key)
        proposal = jax.random.choice(k_prop, 4, p=jnp.array([0.4, 0.3, 0.2, 0.1]))
        log_ratio = log_post_sd(proposal) - log_post_sd(i)
        accept = jnp.log(jax.random.uniform(k_acc)) < log_ratio
        return jnp.where(accept, proposal, i), accept

    sd_index, accepts = lax.scan(mh_step, 3, jax.random.split(k_mh, 12))
    idx = jax.random.choice(k_boot, trace.shape[0], (10, 25), replace=True)
    boot = jnp.mean(jnp.sort(trace, axis=-1)[idx], axis=1)
    return {"means": means[order], "weights": weights[order], "trace": trace,
            "z_last": z_last, "chain_means": sorted_chain_means, "chain_z": chains[3],
            "random_scan": rs_means, "perm": perm, "sd_index": sd_index, "accepts": accepts,
            "bootstrap": boot, "subsample": jax.random.choice(k_boot, data, (5,),
                                                              replace=False)}


def test_gibbs_mixture_matches_jax():
    got, _ = check_against_jax("test_jax_gibbs_mixture", program, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(got["means"], [-4.0, 0.5, 5.0], atol=0.8)
