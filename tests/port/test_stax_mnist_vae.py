"""Port: JAX's `examples/mnist_vae.py` (jax-ml/jax repository).

A variational autoencoder in stax (FanOut, parallel, Softplus) trained with
`optimizers.momentum`, one epoch run as a jitted `lax.fori_loop` over the optimizer
state, with the reparameterised sample and the binarised batches drawn by `jax.random`.
Changes from the original: synthetic "images" made by the program (64 pixels, values in
[0, 1]) instead of MNIST, width 64, a latent of 4, 8 batches of 16. Checked against JAX:
initial weights, the ELBO before and after each of 3 epochs, and the final weights.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, stax, optimizers):
    random, lax = jax.random, jax.lax
    jit, grad = jax.jit, jax.grad
    Dense, FanOut, Relu, Softplus = stax.Dense, stax.FanOut, stax.Relu, stax.Softplus

    pixels, latent, width = 64, 4, 64
    train_images = np.random.RandomState(0).uniform(size=(128, pixels)).astype(np.float32)

    def gaussian_kl(mu, sigmasq):
        """KL divergence from a diagonal Gaussian to the standard Gaussian."""
        return -0.5 * jnp.sum(1. + jnp.log(sigmasq) - mu**2. - sigmasq)

    def gaussian_sample(rng, mu, sigmasq):
        """Sample a diagonal Gaussian."""
        return mu + jnp.sqrt(sigmasq) * random.normal(rng, mu.shape)

    def bernoulli_logpdf(logits, x):
        """Bernoulli log pdf of data x given logits."""
        return -jnp.sum(jnp.logaddexp(0., jnp.where(x, -1., 1.) * logits))

    def elbo(rng, params, images):
        """Monte Carlo estimate of the negative evidence lower bound."""
        enc_params, dec_params = params
        mu_z, sigmasq_z = encode(enc_params, images)
        logits_x = decode(dec_params, gaussian_sample(rng, mu_z, sigmasq_z))
        return bernoulli_logpdf(logits_x, images) - gaussian_kl(mu_z, sigmasq_z)

    encoder_init, encode = stax.serial(
        Dense(width), Relu,
        Dense(width), Relu,
        FanOut(2),
        stax.parallel(Dense(latent), stax.serial(Dense(latent), Softplus)),
    )
    decoder_init, decode = stax.serial(
        Dense(width), Relu,
        Dense(width), Relu,
        Dense(pixels),
    )

    step_size = 0.001
    num_epochs = 3
    batch_size = 16
    num_batches = train_images.shape[0] // batch_size

    enc_init_rng, dec_init_rng = random.split(random.PRNGKey(2))
    _, init_encoder_params = encoder_init(enc_init_rng, (batch_size, pixels))
    _, init_decoder_params = decoder_init(dec_init_rng, (batch_size, latent))
    init_params = init_encoder_params, init_decoder_params

    opt_init, opt_update, get_params = optimizers.momentum(step_size, mass=0.9)
    train_images = jnp.asarray(train_images)

    def binarize_batch(rng, i, images):
        i = i % num_batches
        batch = lax.dynamic_slice_in_dim(images, i * batch_size, batch_size)
        return random.bernoulli(rng, batch)

    @jit
    def run_epoch(rng, opt_state, images):
        def body_fun(i, opt_state):
            elbo_rng, data_rng = random.split(random.fold_in(rng, i))
            batch = binarize_batch(data_rng, i, images)
            loss = lambda params: -elbo(elbo_rng, params, batch) / batch_size
            g = grad(loss)(get_params(opt_state))
            return opt_update(i, g, opt_state)
        return lax.fori_loop(0, num_batches, body_fun, opt_state)

    @jit
    def evaluate(opt_state, images):
        params = get_params(opt_state)
        elbo_rng, data_rng = random.split(random.PRNGKey(1))
        binarized = random.bernoulli(data_rng, images)
        return elbo(elbo_rng, params, binarized) / images.shape[0]

    opt_state = opt_init(init_params)
    elbos = [evaluate(opt_state, train_images)]
    for epoch in range(num_epochs):
        opt_state = run_epoch(random.PRNGKey(epoch), opt_state, train_images)
        elbos.append(evaluate(opt_state, train_images))
    return {"init_params": init_params, "elbos": jnp.stack(elbos),
            "final_params": get_params(opt_state)}


def test_mnist_vae_matches_jax():
    got, _ = check_against_optax("test_stax_mnist_vae", program,
                                     overrides={"init_params": (1e-5, 1e-6)})
    assert got["elbos"][-1] > got["elbos"][0]  # the bound goes up while training
