"""Port: JAX's `examples/differentially_private_sgd.py` (jax-ml/jax repository).

DP-SGD on a stax convnet: per-example gradients by `vmap(grad)`, each clipped to an L2
norm with `tree_flatten`/`tree_unflatten`, summed, noised with `jax.random.normal` from
split keys, averaged, and applied with `optimizers.sgd` under `jit`. Changes: synthetic
12x12 one-channel images of 4 classes made by the program (the example: MNIST), a
smaller net (Conv 8 / Conv 16 / Dense 16), batch 16, 8 steps; the noise and the clipping
are the example's.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, stax, optimizers):
    random, grad, jit, vmap = jax.random, jax.grad, jax.jit, jax.vmap
    tree_flatten, tree_unflatten = jax.tree_util.tree_flatten, jax.tree_util.tree_unflatten

    init_random_params, predict = stax.serial(
        stax.Conv(8, (4, 4), padding='SAME', strides=(2, 2)),
        stax.Relu,
        stax.MaxPool((2, 2), (1, 1)),
        stax.Conv(16, (3, 3), padding='VALID', strides=(2, 2)),
        stax.Relu,
        stax.MaxPool((2, 2), (1, 1)),
        stax.Flatten,
        stax.Dense(16),
        stax.Relu,
        stax.Dense(4),
    )

    def loss(params, batch):
        inputs, targets = batch
        logits = predict(params, inputs)
        logits = stax.logsoftmax(logits)  # log normalize
        return -jnp.mean(jnp.sum(logits * targets, axis=1))  # cross entropy loss

    def clipped_grad(params, l2_norm_clip, single_example_batch):
        """Evaluate gradient for a single-example batch and clip its grad norm."""
        grads = grad(loss)(params, single_example_batch)
        nonempty_grads, tree_def = tree_flatten(grads)
        total_grad_norm = jnp.linalg.norm(
            jnp.array([jnp.linalg.norm(neg.ravel()) for neg in nonempty_grads]))
        divisor = jnp.maximum(total_grad_norm / l2_norm_clip, 1.)
        normalized_nonempty_grads = [g / divisor for g in nonempty_grads]
        return tree_unflatten(tree_def, normalized_nonempty_grads)

    def private_grad(params, batch, rng, l2_norm_clip, noise_multiplier, batch_size):
        """Return differentially private gradients for params, evaluated on batch."""
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

    rs = np.random.RandomState(0)
    n, k, batch_size = 64, 4, 16
    labels = rs.randint(0, k, n)
    templates = rs.randn(k, 12, 12, 1).astype(np.float32)
    images = (templates[labels] + 0.5 * rs.randn(n, 12, 12, 1)).astype(np.float32)
    one_hot = np.eye(k, dtype=np.float32)[labels]

    opt_init, opt_update, get_params = optimizers.sgd(0.25)
    l2_norm_clip, noise_multiplier = 1.5, 0.5

    @jit
    def private_update(rng, i, opt_state, batch):
        params = get_params(opt_state)
        rng = random.fold_in(rng, i)  # get new key for new random numbers
        return opt_update(
            i, private_grad(params, batch, rng, l2_norm_clip, noise_multiplier, batch_size),
            opt_state)

    key = random.PRNGKey(1337)
    _, init_params = init_random_params(key, (-1, 12, 12, 1))
    opt_state = opt_init(init_params)
    losses = []
    for i in range(8):
        idx = np.arange(i * batch_size, (i + 1) * batch_size) % n
        # one example per row of the vmapped batch: shape (batch, 1, ...)
        batch = (images[idx][:, None], one_hot[idx][:, None])
        losses.append(loss(get_params(opt_state), (images, one_hot)))
        opt_state = private_update(key, i, opt_state, batch)
    params = get_params(opt_state)
    first_grads = private_grad(init_params, (images[:batch_size][:, None],
                                             one_hot[:batch_size][:, None]),
                               key, l2_norm_clip, noise_multiplier, batch_size)
    return {"init_params": init_params, "first_private_grads": first_grads,
            "losses": jnp.stack(losses), "final_params": params}


def test_dp_sgd_matches_jax():
    got, _ = check_against_jax("test_jax_dp_sgd", program, rtol=2e-3, atol=2e-4,
                               overrides={"init_params": (1e-5, 1e-6)})
    assert got["losses"][-1] < got["losses"][0]
