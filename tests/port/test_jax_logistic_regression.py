"""Port: logistic regression trained by gradient descent, as in JAX's "Automatic
differentiation" tutorial (jax-ml/jax, docs/automatic-differentiation.md: `sigmoid`,
`predict`, the negative log-likelihood `loss` with `jnp.log`, `grad` with `argnums`),
extended to the training loop of JAX's quickstart (`jit(grad(...))`, 50 steps).

Data: two Gaussian blobs drawn with `jax.random`. The result: initial weights, the loss
trajectory, the trained weights and the accuracy, compared with JAX's.
"""

from _jax_port import check_against_jax


def program(jax, jnp):
    key = jax.random.PRNGKey(42)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    n, d = 200, 4
    labels = jax.random.bernoulli(k1, 0.5, (n,))
    shift = jnp.where(labels[:, None], 1.0, -1.0) * jnp.array([1.0, 0.5, -0.5, 0.0])
    inputs = jax.random.normal(k2, (n, d)) + shift
    targets = labels.astype(jnp.float32)

    def sigmoid(x):
        return 0.5 * (jnp.tanh(x / 2) + 1)

    def predict(W, b, inputs):
        return sigmoid(jnp.dot(inputs, W) + b)

    def loss(W, b):
        preds = predict(W, b, inputs)
        label_probs = preds * targets + (1 - preds) * (1 - targets)
        return -jnp.mean(jnp.log(label_probs))

    W = jax.random.normal(k3, (d,))
    b = jax.random.normal(k4, ())
    out = {"W0": W, "b0": b, "inputs_sum": jnp.sum(inputs, axis=0),
           "n_positive": jnp.sum(labels)}
    grad_fn = jax.jit(jax.grad(loss, argnums=(0, 1)))
    losses = []
    for _ in range(50):
        losses.append(loss(W, b))
        dW, db = grad_fn(W, b)
        W, b = W - 0.5 * dW, b - 0.5 * db
    out["losses"] = jnp.stack(losses)
    out["W"], out["b"] = W, b
    out["accuracy"] = jnp.mean((predict(W, b, inputs) > 0.5) == labels)
    return out


def test_logistic_regression_matches_jax():
    got, _ = check_against_jax("test_jax_logistic_regression", program, rtol=5e-4, atol=5e-5)
    assert got["losses"][-1] < got["losses"][0] and got["accuracy"] > 0.8
