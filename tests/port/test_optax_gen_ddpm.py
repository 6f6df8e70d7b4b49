"""Port: a DDPM-style diffusion model on 2-d toy data (the pattern of the "diffusion
models from scratch in JAX" tutorials after Ho et al., 2020).

Data: a noisy ring of points. A cosine beta schedule (Nichol & Dhariwal) gives
`alpha_bar`; the noise predictor is a small MLP that takes the noisy point and a
sinusoidal time embedding. The training loss draws timesteps with `random.randint` and
noise with `random.normal` from `random.split` keys, and is minimised for a few
`optax.adam` steps under `jit`. Sampling is ancestral: `lax.scan` over the reversed
timesteps, one fresh normal draw per step, batched over particles; a second sampler with
`lax.fori_loop` and `random.fold_in` must agree in shape and stay finite.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    lax = jax.lax
    n_steps = 20

    # Cosine schedule: alpha_bar(t) = cos^2(((t/T + s) / (1 + s)) * pi/2), betas clipped.
    s = 0.008
    ts = jnp.arange(n_steps + 1, dtype=jnp.float32) / n_steps
    f = jnp.cos((ts + s) / (1 + s) * jnp.pi / 2) ** 2
    betas = jnp.clip(1.0 - f[1:] / f[:-1], 1e-4, 0.35)  # max_beta for a short chain
    alphas = 1.0 - betas
    alpha_bar = jnp.cumprod(alphas)

    def time_embedding(t, dim=8):
        half = dim // 2
        freqs = jnp.exp(-jnp.log(1000.0) * jnp.arange(half) / half)
        args = t.astype(jnp.float32)[..., None] * freqs
        return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)

    def init_params(key, sizes=(2 + 8, 32, 32, 2)):
        keys = jax.random.split(key, len(sizes) - 1)
        return [{"w": jax.random.normal(k, (m, n)) * jnp.sqrt(2.0 / m), "b": jnp.zeros(n)}
                for k, m, n in zip(keys, sizes[:-1], sizes[1:])]

    def eps_model(params, x, t):
        h = jnp.concatenate([x, time_embedding(t)], axis=-1)
        for layer in params[:-1]:
            h = jax.nn.silu(h @ layer["w"] + layer["b"])
        return h @ params[-1]["w"] + params[-1]["b"]

    def q_sample(x0, t, noise):
        ab = alpha_bar[t][:, None]
        return jnp.sqrt(ab) * x0 + jnp.sqrt(1.0 - ab) * noise

    def loss_fn(params, x0, key):
        k_t, k_n = jax.random.split(key)
        t = jax.random.randint(k_t, (x0.shape[0],), 0, n_steps)
        noise = jax.random.normal(k_n, x0.shape)
        pred = eps_model(params, q_sample(x0, t, noise), t)
        return jnp.mean(jnp.sum((pred - noise) ** 2, axis=-1))

    angles = jax.random.uniform(jax.random.PRNGKey(0), (128,), maxval=2 * jnp.pi)
    data = jnp.stack([jnp.cos(angles), jnp.sin(angles)], -1)
    data = data + 0.05 * jax.random.normal(jax.random.PRNGKey(1), data.shape)

    params = init_params(jax.random.PRNGKey(2))
    opt = optax.adam(3e-3)
    opt_state = opt.init(params)

    @jax.jit
    def train_step(params, opt_state, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, data, key)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    losses = []
    for key in jax.random.split(jax.random.PRNGKey(3), 40):
        params, opt_state, loss = train_step(params, opt_state, key)
        losses.append(loss)

    @jax.jit
    def sample(params, key, n=16):
        k0, k_steps = jax.random.split(key)
        x_T = jax.random.normal(k0, (n, 2))

        def step(x, inp):
            t, k = inp
            eps = eps_model(params, x, jnp.full((n,), t))
            mean = (x - betas[t] / jnp.sqrt(1.0 - alpha_bar[t]) * eps) / jnp.sqrt(alphas[t])
            z = jax.random.normal(k, x.shape)
            x = mean + jnp.where(t > 0, jnp.sqrt(betas[t]), 0.0) * z
            return x, jnp.mean(jnp.linalg.norm(x, axis=-1))

        ts = jnp.arange(n_steps - 1, -1, -1)
        x0, radii = lax.scan(step, x_T, (ts, jax.random.split(k_steps, n_steps)))
        return x0, radii

    def sample_fori(params, key, n=16):
        def body(i, x):
            t = n_steps - 1 - i
            eps = eps_model(params, x, jnp.full((n,), t))
            mean = (x - betas[t] / jnp.sqrt(1.0 - alpha_bar[t]) * eps) / jnp.sqrt(alphas[t])
            z = jax.random.normal(jax.random.fold_in(key, i), x.shape)
            return mean + jnp.where(t > 0, jnp.sqrt(betas[t]), 0.0) * z
        return lax.fori_loop(0, n_steps, body, jax.random.normal(key, (n, 2)))

    samples, radii = sample(params, jax.random.PRNGKey(4))
    t_probe = jnp.array([0, 5, 19])
    return {"betas": betas, "alpha_bar": alpha_bar, "losses": jnp.stack(losses),
            "params": params, "samples": samples, "radii": radii,
            "samples_fori": jax.jit(sample_fori)(params, jax.random.PRNGKey(5)),
            "embedding": time_embedding(t_probe),
            "eps_probe": eps_model(params, data[:3], t_probe),
            "q_sample": q_sample(data[:3], t_probe, jnp.ones((3, 2)))}


def test_ddpm_matches_jax():
    got, _ = check_against_optax("test_optax_gen_ddpm", program, rtol=2e-3, atol=2e-4)
    assert got["losses"][-5:].mean() < got["losses"][:5].mean()
    assert np.all(np.diff(got["alpha_bar"]) < 0)
    assert np.all(np.isfinite(got["samples_fori"]))
