"""Port: JAX's `examples/differentially_private_sgd.py` (jax-ml/jax repository).

The example's stax CNN (Conv, Relu, MaxPool, Flatten, Dense) trained with
differentially private SGD: per-example gradients by `vmap(grad)` over a batch axis
added with `jnp.expand_dims`, each clipped to l2 norm `l2_norm_clip` with
`jax.tree_util.tree_flatten`, summed, noised with `random.normal` and averaged, then
`optimizers.sgd`. Changes: synthetic 12x12 images of 10 classes instead of MNIST, a
batch of 8 for 6 steps, smaller filters. Checked against JAX: initial weights, the
losses, the private gradients of the first step and the final weights.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, stax, optimizers):
    # the original's `from jax import ...` lines, with the module passed in
    grad, jit, random, vmap = jax.grad, jax.jit, jax.random, jax.vmap
    tree_flatten, tree_unflatten = jax.tree_util.tree_flatten, jax.tree_util.tree_unflatten
    logsumexp = jax.scipy.special.logsumexp

    rs = np.random.RandomState(9)
    train_images = rs.normal(size=(48, 12, 12, 1)).astype(np.float32)
    train_labels = np.eye(10, dtype=np.float32)[rs.randint(0, 10, 48)]

    init_random_params, predict = stax.serial(
        stax.Conv(8, (4, 4), padding="SAME", strides=(2, 2)), stax.Relu,
        stax.MaxPool((2, 2), (1, 1)),
        stax.Conv(16, (3, 3), padding="VALID", strides=(2, 2)), stax.Relu,
        stax.MaxPool((2, 2), (1, 1)),
        stax.Flatten, stax.Dense(16), stax.Relu, stax.Dense(10))

    def loss(params, batch):
        inputs, targets = batch
        logits = predict(params, inputs)
        logits = logits - logsumexp(logits, axis=1, keepdims=True)
        return -jnp.mean(jnp.sum(logits * targets, axis=1))

    def clipped_grad(params, l2_norm_clip, single_example_batch):
        grads = grad(loss)(params, single_example_batch)
        nonempty_grads, tree_def = tree_flatten(grads)
        total_grad_norm = jnp.linalg.norm(
            jnp.array([jnp.linalg.norm(neg.ravel()) for neg in nonempty_grads]))
        divisor = jnp.maximum(total_grad_norm / l2_norm_clip, 1.)
        normalized_nonempty_grads = [g / divisor for g in nonempty_grads]
        return tree_unflatten(tree_def, normalized_nonempty_grads)

    def private_grad(params, batch, rng, l2_norm_clip, noise_multiplier, batch_size):
        clipped_grads = vmap(clipped_grad, (None, None, 0))(params, l2_norm_clip, batch)
        clipped_grads_flat, grads_treedef = tree_flatten(clipped_grads)
        aggregated_clipped_grads = [g.sum(0) for g in clipped_grads_flat]
        rngs = random.split(rng, len(aggregated_clipped_grads))
        noised_aggregated_clipped_grads = [
            g + l2_norm_clip * noise_multiplier * random.normal(r, g.shape)
            for r, g in zip(rngs, aggregated_clipped_grads)]
        normalized_noised_aggregated_clipped_grads = [
            g / batch_size for g in noised_aggregated_clipped_grads]
        return tree_unflatten(grads_treedef, normalized_noised_aggregated_clipped_grads)

    def shape_as_image(images, labels, dummy_dim=False):
        target_shape = (-1, 1, 12, 12, 1) if dummy_dim else (-1, 12, 12, 1)
        return jnp.reshape(images, target_shape), labels

    batch_size, l2_norm_clip, noise_multiplier = 8, 1.5, 1.1
    key = random.PRNGKey(0)
    _, init_params = init_random_params(key, (-1, 12, 12, 1))
    opt_init, opt_update, get_params = optimizers.sgd(0.15)

    @jit
    def private_update(rng, i, opt_state, batch):
        params = get_params(opt_state)
        rng = random.fold_in(rng, i)
        g = private_grad(params, batch, rng, l2_norm_clip, noise_multiplier, batch_size)
        return opt_update(i, g, opt_state), g

    opt_state = opt_init(init_params)
    losses, first_grad = [], None
    for i in range(6):
        sl = slice(batch_size * i, batch_size * (i + 1))
        batch = (train_images[sl], train_labels[sl])
        losses.append(loss(get_params(opt_state), shape_as_image(*batch)))
        opt_state, g = private_update(key, i, opt_state, shape_as_image(*batch,
                                                                       dummy_dim=True))
        if first_grad is None:
            first_grad = g
    return {"init": init_params, "losses": jnp.stack(losses), "first_grad": first_grad,
            "params": get_params(opt_state)}


def test_dp_sgd_matches_jax():
    got, _ = check_against_optax("test_stax_dp_sgd", program, rtol=1e-3, atol=1e-4)
    assert np.isfinite(got["losses"]).all()
