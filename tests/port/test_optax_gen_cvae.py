"""Port: a conditional beta-VAE on binarised toy "digits", written by hand with `jax.nn`
(no stax), with a KL warm-up and an importance-weighted bound (the pattern of VAE and
IWAE tutorials after Kingma & Welling, 2014, Higgins et al., 2017, Burda et al., 2016).

Data: 8x8 binary glyphs of 4 classes with random pixel flips; the class is the condition
(`jax.nn.one_hot`). Layers: `jax.nn.initializers.glorot_normal`/`he_uniform` weights,
`jax.nn.gelu`/`elu`/`softplus` activations, Bernoulli likelihood through
`jax.nn.log_sigmoid`. The KL weight beta follows `optax.join_schedules` of a
`linear_schedule` warm-up and a `constant_schedule`; the learning rate follows
`optax.warmup_cosine_decay_schedule`; the optimiser is
`optax.chain(optax.clip_by_global_norm(5.0), optax.adamw(schedule))` under `jit`. The
importance-weighted ELBO (K samples, `logsumexp` minus `log K`) is evaluated after
training and must bound the ELBO from above; conditional samples decode a prior draw with
each class.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    nn, logsumexp = jax.nn, jax.scipy.special.logsumexp
    n_classes, n_pix, n_latent, n_hidden = 4, 64, 3, 32

    rs = np.random.RandomState(0)
    glyphs = np.zeros((n_classes, 8, 8), np.float32)
    glyphs[0, 2:6, 2:6] = 1          # square
    glyphs[1, :, 3:5] = 1            # vertical bar
    glyphs[2, 3:5, :] = 1            # horizontal bar
    glyphs[3][np.eye(8, dtype=bool)] = 1  # diagonal
    labels = rs.randint(0, n_classes, 64)
    flips = rs.uniform(size=(64, n_pix)) < 0.05
    images = np.abs(glyphs[labels].reshape(64, n_pix) - flips).astype(np.float32)
    x_all, y_all = jnp.asarray(images), nn.one_hot(jnp.asarray(labels), n_classes)

    def dense(key, n_in, n_out, init):
        return {"w": init(key, (n_in, n_out), jnp.float32), "b": jnp.zeros(n_out)}

    def init_params(key):
        ks = jax.random.split(key, 5)
        glorot, he = nn.initializers.glorot_normal(), nn.initializers.he_uniform()
        return {"enc": dense(ks[0], n_pix + n_classes, n_hidden, he),
                "mu": dense(ks[1], n_hidden, n_latent, glorot),
                "logvar": dense(ks[2], n_hidden, n_latent, glorot),
                "dec1": dense(ks[3], n_latent + n_classes, n_hidden, he),
                "dec2": dense(ks[4], n_hidden, n_pix, glorot)}

    def apply(layer, h):
        return h @ layer["w"] + layer["b"]

    def encode(params, x, y):
        h = nn.gelu(apply(params["enc"], jnp.concatenate([x, y], -1)))
        return apply(params["mu"], h), apply(params["logvar"], h)

    def decode(params, z, y):
        h = nn.elu(apply(params["dec1"], jnp.concatenate([z, y], -1)))
        return apply(params["dec2"], h)  # Bernoulli logits

    def bernoulli_loglik(logits, x):
        return jnp.sum(x * nn.log_sigmoid(logits) + (1 - x) * nn.log_sigmoid(-logits), -1)

    def gaussian_logpdf(z, mu, logvar):
        return jnp.sum(-0.5 * (jnp.log(2 * jnp.pi) + logvar + (z - mu) ** 2 / jnp.exp(logvar)),
                       -1)

    def neg_elbo(params, x, y, key, beta):
        mu, logvar = encode(params, x, y)
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
        rec = bernoulli_loglik(decode(params, z, y), x)
        kl = 0.5 * jnp.sum(jnp.exp(logvar) + mu ** 2 - 1.0 - logvar, -1)
        return jnp.mean(beta * kl - rec), (jnp.mean(rec), jnp.mean(kl))

    def iw_elbo(params, x, y, key, k=16):
        mu, logvar = encode(params, x, y)
        eps = jax.random.normal(key, (k,) + mu.shape)
        z = mu + jnp.exp(0.5 * logvar) * eps                      # (k, batch, latent)
        log_px = bernoulli_loglik(jax.vmap(decode, (None, 0, None))(params, z, y), x)
        log_pz = gaussian_logpdf(z, 0.0, jnp.zeros_like(z))
        log_qz = gaussian_logpdf(z, mu, logvar)
        log_w = log_px + log_pz - log_qz                           # (k, batch)
        return jnp.mean(logsumexp(log_w, axis=0) - jnp.log(k)), jnp.mean(log_w)

    n_steps = 40
    beta_schedule = optax.join_schedules(
        [optax.linear_schedule(0.0, 1.0, transition_steps=20), optax.constant_schedule(1.0)],
        boundaries=[20])
    lr_schedule = optax.warmup_cosine_decay_schedule(0.0, 1e-2, warmup_steps=5,
                                                     decay_steps=n_steps, end_value=1e-3)
    opt = optax.chain(optax.clip_by_global_norm(5.0), optax.adamw(lr_schedule, weight_decay=1e-4))
    params = init_params(jax.random.PRNGKey(0))
    state = opt.init(params)

    @jax.jit
    def train_step(params, state, step, key):
        beta = beta_schedule(step)
        (loss, (rec, kl)), grads = jax.value_and_grad(neg_elbo, has_aux=True)(
            params, x_all, y_all, key, beta)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, jnp.stack([loss, rec, kl, beta])

    history = []
    for step, key in enumerate(jax.random.split(jax.random.PRNGKey(1), n_steps)):
        params, state, stats = train_step(params, state, step, key)
        history.append(stats)

    iwae, elbo_mean = jax.jit(iw_elbo)(params, x_all, y_all, jax.random.PRNGKey(2))
    z_prior = jax.random.normal(jax.random.PRNGKey(3), (n_classes, n_latent))
    samples = nn.sigmoid(decode(params, z_prior, jnp.eye(n_classes)))
    mu, logvar = encode(params, x_all[:4], y_all[:4])
    return {"history": jnp.stack(history), "params": params, "iwae": iwae,
            "elbo_mean": elbo_mean, "samples": samples, "mu": mu, "logvar": logvar,
            "beta": jnp.stack([beta_schedule(i) for i in (0, 5, 19, 20, 35)]),
            "lr": jnp.stack([lr_schedule(i) for i in (0, 3, 5, 20, 40, 60)]),
            "grad_norm": optax.global_norm(jax.grad(lambda p: neg_elbo(
                p, x_all, y_all, jax.random.PRNGKey(4), 1.0)[0])(params))}


def test_cvae_matches_jax():
    got, _ = check_against_optax("test_optax_gen_cvae", program, rtol=2e-3, atol=2e-4)
    hist = got["history"]
    assert hist[-5:, 0].mean() < hist[:5, 0].mean()          # the loss fell
    assert got["iwae"] >= got["elbo_mean"]                   # IWAE bounds the ELBO above
    np.testing.assert_allclose(got["beta"], [0.0, 0.25, 0.95, 1.0, 1.0], rtol=1e-6)
