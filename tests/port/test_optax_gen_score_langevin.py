"""Port: denoising score matching and Langevin sampling with an energy-based model (the
pattern of the score-based generative modelling tutorials after Vincent, 2011 and Song &
Ermon, 2019).

The model is an energy `E(x)`: an MLP with `softplus` activations; its score is
`-grad(E)`, batched with `vmap(grad(energy))`. The denoising score matching loss at a few
noise levels (`sigma^2`-weighted, noise drawn from split keys) is minimised with
`optax.chain(clip_by_global_norm, adam)` under `jit`; the loss's gradient goes through
the score, i.e. a gradient of a gradient. Sampling: unadjusted Langevin dynamics with
`lax.scan` over annealed noise levels and steps, `random.normal` per step, from a batch of
particles; and the exact score of a Gaussian as a sanity check of the Langevin code.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    lax = jax.lax
    rs = np.random.RandomState(1)
    centers = np.array([[-1.5, 0.0], [1.5, 0.5]], np.float32)
    data = centers[rs.randint(0, 2, 96)] + 0.3 * rs.normal(size=(96, 2)).astype(np.float32)
    data = jnp.asarray(data)
    sigmas = jnp.array([1.0, 0.5, 0.25])

    def init(key, sizes=(3, 32, 32, 1)):
        keys = jax.random.split(key, len(sizes) - 1)
        return [(jax.random.normal(k, (m, n)) / jnp.sqrt(m), jnp.zeros(n))
                for k, m, n in zip(keys, sizes[:-1], sizes[1:])]

    def energy(params, x, sigma):
        h = jnp.concatenate([x, jnp.log(sigma)[None]])  # noise-conditional
        for w, b in params[:-1]:
            h = jax.nn.softplus(h @ w + b)
        w, b = params[-1]
        return (h @ w + b)[0] / sigma

    def score(params, x, sigma):
        return -jax.grad(energy, argnums=1)(params, x, sigma)

    batched_score = jax.vmap(score, in_axes=(None, 0, None))

    def dsm_loss(params, key):
        k_sigma, k_noise = jax.random.split(key)
        idx = jax.random.randint(k_sigma, (data.shape[0],), 0, sigmas.shape[0])
        sigma = sigmas[idx]
        noise = jax.random.normal(k_noise, data.shape)
        noisy = data + sigma[:, None] * noise
        s = jax.vmap(score, in_axes=(None, 0, 0))(params, noisy, sigma)
        # target score of the Gaussian perturbation kernel: -noise / sigma, weight sigma^2
        per_example = jnp.sum((sigma[:, None] * s + noise) ** 2, axis=-1)
        return 0.5 * jnp.mean(per_example)

    params = init(jax.random.PRNGKey(0))
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(5e-3))
    state = opt.init(params)

    @jax.jit
    def step(params, state, key):
        loss, grads = jax.value_and_grad(dsm_loss)(params, key)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for key in jax.random.split(jax.random.PRNGKey(1), 25):
        params, state, loss = step(params, state, key)
        losses.append(loss)

    def annealed_langevin(score_fn, x0, key, n_steps=10, eps=0.02):
        def level(x, inp):
            sigma, k = inp
            step_size = eps * (sigma / sigmas[-1]) ** 2

            def inner(x, kk):
                z = jax.random.normal(kk, x.shape)
                x = x + 0.5 * step_size * score_fn(x, sigma) + jnp.sqrt(step_size) * z
                return x, None

            x, _ = lax.scan(inner, x, jax.random.split(k, n_steps))
            return x, jnp.mean(x, axis=0)

        return lax.scan(level, x0, (sigmas, jax.random.split(key, sigmas.shape[0])))

    x0 = 2.0 * jax.random.normal(jax.random.PRNGKey(2), (32, 2))
    model_score = lambda x, sigma: batched_score(params, x, sigma)
    samples, level_means = jax.jit(annealed_langevin, static_argnums=0)(
        model_score, x0, jax.random.PRNGKey(3))

    # Sanity check: the exact score of N(mu, s^2 + sigma^2) drives Langevin toward mu.
    mu = jnp.array([0.5, -1.0])
    gauss_score = lambda x, sigma: -(x - mu) / (0.2 ** 2 + sigma ** 2)
    gauss_samples, _ = annealed_langevin(gauss_score, x0, jax.random.PRNGKey(4), n_steps=20)

    probe = jnp.array([[0.0, 0.0], [1.5, 0.5], [-1.5, 0.0]])
    return {"losses": jnp.stack(losses), "params": params, "samples": samples,
            "level_means": level_means, "gauss_mean": jnp.mean(gauss_samples, axis=0),
            "score_probe": batched_score(params, probe, jnp.float32(0.25)),
            "energy_probe": jax.vmap(energy, (None, 0, None))(params, probe, jnp.float32(0.5)),
            "hessian_trace": jax.vmap(lambda x: jnp.trace(jax.hessian(energy, 1)(
                params, x, jnp.float32(0.5))))(probe)}


def test_score_langevin_matches_jax():
    got, _ = check_against_optax("test_optax_gen_score_langevin", program, rtol=2e-3,
                                 atol=2e-4)
    assert got["losses"][-5:].mean() < got["losses"][:5].mean()
    np.testing.assert_allclose(got["gauss_mean"], [0.5, -1.0], atol=0.15)
