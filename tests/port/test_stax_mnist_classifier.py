"""Port: JAX's `examples/mnist_classifier.py` (jax-ml/jax repository).

A stax MLP (Dense, Relu, LogSoftmax) trained with `optimizers.momentum` under `jit`.
Changes from the original: synthetic data made by the program (64 features, 10 classes)
instead of MNIST downloads, hidden width 128 instead of 1024, 20 steps. The program is
written with JAX's names; the test runs it with nanofn's modules and compares the
initial weights and the 20 training losses with the values recorded from JAX by
`record_optax_reference.py`.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, stax, optimizers):
    from functools import partial  # noqa: F401 (as in the original's imports)
    random = jax.random
    jit, grad = jax.jit, jax.grad
    Dense, Relu, LogSoftmax = stax.Dense, stax.Relu, stax.LogSoftmax

    rs = np.random.RandomState(0)
    n, d, k = 256, 64, 10
    centers = rs.randn(k, d).astype(np.float32)
    labels = rs.randint(0, k, n)
    train_images = (centers[labels] + rs.randn(n, d)).astype(np.float32)
    train_labels = np.eye(k, dtype=np.float32)[labels]

    init_random_params, predict = stax.serial(
        Dense(128), Relu,
        Dense(128), Relu,
        Dense(10), LogSoftmax)

    def loss(params, batch):
        inputs, targets = batch
        preds = predict(params, inputs)
        return -jnp.mean(jnp.sum(preds * targets, axis=1))

    def accuracy(params, batch):
        inputs, targets = batch
        target_class = jnp.argmax(targets, axis=1)
        predicted_class = jnp.argmax(predict(params, inputs), axis=1)
        return jnp.mean(predicted_class == target_class)

    rng = random.PRNGKey(0)
    step_size = 0.01
    batch_size = 32
    momentum_mass = 0.9
    num_batches = n // batch_size

    def data_stream():
        perm = np.random.RandomState(1).permutation(n)
        while True:
            for i in range(num_batches):
                idx = perm[i * batch_size:(i + 1) * batch_size]
                yield train_images[idx], train_labels[idx]
    batches = data_stream()

    opt_init, opt_update, get_params = optimizers.momentum(step_size, mass=momentum_mass)

    @jit
    def update(i, opt_state, batch):
        params = get_params(opt_state)
        return opt_update(i, grad(loss)(params, batch), opt_state)

    _, init_params = init_random_params(rng, (-1, d))
    opt_state = opt_init(init_params)
    losses = []
    for i in range(20):
        batch = next(batches)
        losses.append(loss(get_params(opt_state), batch))
        opt_state = update(i, opt_state, batch)
    params = get_params(opt_state)
    return {"init_params": init_params, "losses": jnp.stack(losses),
            "train_acc": accuracy(params, (train_images, train_labels)),
            "final_params": params}


def test_mnist_classifier_matches_jax():
    got, ref = check_against_optax("test_stax_mnist_classifier", program,
                                       overrides={"init_params": (1e-5, 1e-6)})
    assert got["losses"][-1] < got["losses"][0]  # it trains
