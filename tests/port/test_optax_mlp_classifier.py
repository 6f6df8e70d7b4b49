"""Port: optax's MLP classifier example (docs/_collections/examples/mlp_mnist.ipynb).

An MLP trained with `optax.adam` and `optax.softmax_cross_entropy_with_integer_labels`
under `jax.jit`, with the safeguards optax's docs recommend around it:
`optax.chain(optax.clip_by_global_norm(1.0), optax.adam(...))` wrapped in
`optax.apply_if_finite`. Changes: the MLP is written with `jax.nn` (the
notebook uses flax.linen), synthetic 4-class data of 16 features instead of MNIST,
batches of 32 for 20 steps, accuracy measured on the training set. Checked against
optax: the initial weights, 20 losses, the accuracies and the final parameters.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    rs = np.random.RandomState(6)
    centers = rs.normal(size=(4, 16)).astype(np.float32)
    labels = rs.randint(0, 4, size=640)
    images = (centers[labels] + 0.8 * rs.normal(size=(640, 16))).astype(np.float32)

    def init(key, sizes=(16, 32, 32, 4)):
        params = []
        for k, (m, n) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
            params.append({"w": jax.nn.initializers.glorot_normal()(k, (m, n)),
                           "b": jnp.zeros(n)})
        return params

    def predict(params, x):
        for layer in params[:-1]:
            x = jax.nn.relu(x @ layer["w"] + layer["b"])
        return x @ params[-1]["w"] + params[-1]["b"]

    def loss_fn(params, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(predict(params, x), y).mean()

    params0 = init(jax.random.PRNGKey(0))
    opt = optax.apply_if_finite(
        optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2)), max_consecutive_errors=3)
    state = opt.init(params0)

    @jax.jit
    def train_step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    params, losses, accs = params0, [], []
    for i in range(20):
        sl = slice(32 * i, 32 * (i + 1))
        params, state, loss = train_step(params, state, images[sl], labels[sl])
        losses.append(loss)
        accs.append(jnp.mean(jnp.argmax(predict(params, images), axis=-1) == labels))
    return {"init": params0, "losses": jnp.stack(losses), "accuracy": jnp.stack(accs),
            "params": params}


def test_mlp_classifier_matches_optax():
    got, _ = check_against_optax("test_optax_mlp_classifier", program, rtol=1e-3,
                                     atol=1e-4)
    assert got["accuracy"][-1] > 0.8
