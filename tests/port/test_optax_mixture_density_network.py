"""Port: a mixture density network trained with optax (the pattern of the "mixture
density networks in JAX" tutorials, Bishop's inverse-sine problem).

Data: the inverse of y = x + 0.3 sin(2πx) + noise, a multi-valued map. A tanh MLP
outputs mixture logits, means and log-scales of K Gaussians; the negative
log-likelihood is `logsumexp(log_softmax(logits) + norm.logpdf(...))` written with
`jax.nn.log_softmax`, `jax.scipy.special.logsumexp` and `jax.scipy.stats.norm.logpdf`;
trained with `optax.adamw` under an `optax.exponential_decay` schedule and
`optax.apply_if_finite`. Predictions: the mixture's mean and mode, and samples drawn
with `jax.random.categorical` over the components followed by a Gaussian draw, per
input with `vmap` over split keys. The NLL's gradient is checked against
`optax.tree_utils` norms.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    norm, logsumexp = jax.scipy.stats.norm, jax.scipy.special.logsumexp
    rs = np.random.RandomState(0)
    n, k = 120, 3
    t = rs.uniform(0, 1, size=n).astype(np.float32)
    x_obs = (t + 0.3 * np.sin(2 * np.pi * t) + 0.05 * rs.normal(size=n)).astype(np.float32)
    inputs, targets = jnp.asarray(x_obs)[:, None], jnp.asarray(t)

    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    params = {"hidden": {"w": jax.random.normal(keys[0], (1, 20)), "b": jnp.zeros(20)},
              "out": {"w": jax.random.normal(keys[1], (20, 3 * k)) * 0.1,
                      "b": jnp.zeros(3 * k)}}

    def mdn(params, x):
        h = jnp.tanh(x @ params["hidden"]["w"] + params["hidden"]["b"])
        out = h @ params["out"]["w"] + params["out"]["b"]
        logits, means, log_scales = jnp.split(out, 3, axis=-1)
        return jax.nn.log_softmax(logits, axis=-1), means, jnp.clip(log_scales, -5.0, 2.0)

    def nll(params, x, y):
        log_pi, mu, log_sigma = mdn(params, x)
        comp = norm.logpdf(y[:, None], mu, jnp.exp(log_sigma))
        return -jnp.mean(logsumexp(log_pi + comp, axis=-1))

    schedule = optax.exponential_decay(0.03, transition_steps=10, decay_rate=0.5,
                                       staircase=False)
    opt = optax.apply_if_finite(optax.adamw(schedule, weight_decay=1e-3), 3)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(nll)(params, inputs, targets)
        updates, state = opt.update(grads, state, params)
        norm = optax.tree_utils.tree_l2_norm(grads)
        return optax.apply_updates(params, updates), state, loss, norm

    losses, norms = [], []
    for _ in range(25):
        params, state, loss, g = step(params, state)
        losses.append(loss)
        norms.append(g)

    grid = jnp.linspace(0.0, 1.0, 7)[:, None]
    log_pi, mu, log_sigma = mdn(params, grid)
    pi = jnp.exp(log_pi)
    mixture_mean = jnp.sum(pi * mu, axis=-1)
    mode = jnp.take_along_axis(mu, jnp.argmax(log_pi, axis=-1)[:, None], axis=-1)[:, 0]

    def sample(key, lp, m, ls):
        kc, kn = jax.random.split(key)
        c = jax.random.categorical(kc, lp)
        return m[c] + jnp.exp(ls[c]) * jax.random.normal(kn), c

    samples, comps = jax.vmap(sample)(jax.random.split(jax.random.PRNGKey(5), 7), log_pi, mu,
                                      log_sigma)
    return {"losses": jnp.stack(losses), "grad_norms": jnp.stack(norms), "params": params,
            "pi": pi, "mixture_mean": mixture_mean, "mode": mode, "samples": samples,
            "components": comps, "notfinite_count": state.notfinite_count,
            "lr": jnp.stack([schedule(i) for i in (0, 5, 20)]),
            "cdf": jnp.sum(pi * norm.cdf(0.5, mu, jnp.exp(log_sigma)), axis=-1)}


def test_mixture_density_network_matches_optax():
    got, _ = check_against_optax("test_optax_mixture_density_network", program, rtol=2e-3,
                                 atol=2e-4)
    assert got["losses"][-1] < got["losses"][0]
