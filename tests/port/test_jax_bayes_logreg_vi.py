"""Port: mean-field variational inference for Bayesian logistic regression in JAX, with
the reparameterisation trick (the pattern of the "VI from scratch in JAX" tutorials).

The variational posterior is a diagonal Gaussian over the weights (mean and
softplus-parameterised scale). The ELBO is a Monte-Carlo average over samples drawn as
mean + scale * `jax.random.normal`: the Bernoulli log-likelihood by
`jax.scipy.stats.bernoulli.logpmf` of `jax.nn.sigmoid` probabilities, the prior by
`jax.scipy.stats.norm.logpdf`, the entropy by `norm.logpdf` of the samples under the
posterior, and a second, Student-t prior variant by `jax.scipy.stats.t.logpdf`. A fresh
key per step by `jax.random.fold_in`, samples batched with `vmap`; fitted by `jit`ted
gradient ascent with `jax.example_libraries.optimizers.adam`. Also returns the
analytic KL from the Gaussian prior (closed form) next to its Monte-Carlo estimate, and
posterior-predictive probabilities with `jax.scipy.special.expit`.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, jsp, optimizers):
    stats = jsp.stats
    rs = np.random.RandomState(9)
    n, d = 60, 3
    x = rs.normal(size=(n, d)).astype(np.float32)
    w_true = np.array([1.5, -2.0, 0.5], np.float32)
    y = (rs.uniform(size=n) < 1 / (1 + np.exp(-x @ w_true))).astype(np.int32)
    x, y = jnp.asarray(x), jnp.asarray(y)

    def unpack(params):
        return params["mean"], jax.nn.softplus(params["raw_scale"])

    def log_joint(w, prior):
        p = jax.nn.sigmoid(x @ w)
        loglik = jnp.sum(stats.bernoulli.logpmf(y, p))
        if prior == "normal":
            logprior = jnp.sum(stats.norm.logpdf(w, 0.0, 2.0))
        else:
            logprior = jnp.sum(stats.t.logpdf(w, 3.0, 0.0, 2.0))
        return loglik + logprior

    def elbo(params, key, prior="normal", samples=16):
        mean, scale = unpack(params)
        eps = jax.random.normal(key, (samples, d))
        ws = mean + scale * eps
        log_q = jnp.sum(stats.norm.logpdf(ws, mean, scale), axis=1)
        return jnp.mean(jax.vmap(lambda w: log_joint(w, prior))(ws) - log_q)

    def fit(prior, steps=40):
        init_fn, update_fn, get_params = optimizers.adam(0.05)
        state = init_fn({"mean": jnp.zeros(d), "raw_scale": jnp.full(d, -1.0)})
        key = jax.random.PRNGKey(0)

        @jax.jit
        def step(i, state):
            params = get_params(state)
            value, grads = jax.value_and_grad(elbo)(params, jax.random.fold_in(key, i), prior)
            return update_fn(i, jax.tree.map(lambda g: -g, grads), state), value

        values = []
        for i in range(steps):
            state, value = step(i, state)
            values.append(value)
        return get_params(state), jnp.stack(values)

    params_normal, elbos_normal = fit("normal")
    params_t, elbos_t = fit("t")

    mean, scale = unpack(params_normal)
    kl_exact = jnp.sum(jnp.log(2.0 / scale) + (scale ** 2 + mean ** 2) / 8.0 - 0.5)
    eps = jax.random.normal(jax.random.PRNGKey(1), (2000, d))
    ws = mean + scale * eps
    kl_mc = jnp.mean(jnp.sum(stats.norm.logpdf(ws, mean, scale)
                             - stats.norm.logpdf(ws, 0.0, 2.0), axis=1))
    x_new = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.5]])
    predictive = jnp.mean(jsp.special.expit(ws[:200] @ x_new.T), axis=0)
    return {"elbos_normal": elbos_normal, "elbos_t": elbos_t, "params_normal": params_normal,
            "params_t": params_t, "kl_exact": kl_exact, "kl_mc": kl_mc,
            "predictive": predictive}


def test_bayes_logreg_vi_matches_jax():
    got, _ = check_against_jax("test_jax_bayes_logreg_vi", program, rtol=2e-3, atol=2e-4)
    assert got["elbos_normal"][-5:].mean() > got["elbos_normal"][:5].mean()
    assert abs(got["kl_mc"] - got["kl_exact"]) < 0.1
