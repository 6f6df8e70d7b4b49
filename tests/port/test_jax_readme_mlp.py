"""Port: the example of JAX's README (jax-ml/jax, README.md: "Transformations").

The README's `predict`/`loss` of a tanh MLP given as a list of `(W, b)` pairs,
differentiated with `grad`, compiled with `jit`, per-example gradients with
`vmap(grad)`, and `jacfwd(jacrev(...))` for a Hessian, plus the `grad` of a Python
`if`/`for` function (the README's `abs_val`). Change: parameters and data are made by
the program with `jax.random`, and a few SGD steps are taken so the values move.
"""

from _jax_port import check_against_jax


def program(jax, jnp):
    grad, jit, vmap = jax.grad, jax.jit, jax.vmap  # from jax import grad, jit, vmap

    def predict(params, inputs):
        for W, b in params:
            outputs = jnp.dot(inputs, W) + b
            inputs = jnp.tanh(outputs)
        return outputs

    def loss(params, inputs, targets):
        preds = predict(params, inputs)
        return jnp.sum((preds - targets) ** 2)

    key = jax.random.PRNGKey(1)
    sizes = [5, 16, 16, 2]
    params = []
    for m, n in zip(sizes[:-1], sizes[1:]):
        key, wk, bk = jax.random.split(key, 3)
        params.append((jax.random.normal(wk, (m, n)) / jnp.sqrt(m),
                       0.1 * jax.random.normal(bk, (n,))))
    key, xk, yk = jax.random.split(key, 3)
    inputs = jax.random.normal(xk, (32, 5))
    targets = jax.random.normal(yk, (32, 2))

    grad_loss = jit(grad(loss))
    perexample_grads = jit(vmap(grad_loss, in_axes=(None, 0, 0)))
    out = {"init_params": params, "grads": grad_loss(params, inputs, targets),
           "perexample_last_layer": perexample_grads(params, inputs, targets)[-1]}

    losses = []
    for _ in range(10):
        g = grad_loss(params, inputs, targets)
        params = [(W - 0.01 * dW, b - 0.01 * db) for (W, b), (dW, db) in zip(params, g)]
        losses.append(loss(params, inputs, targets))
    out["losses"] = jnp.stack(losses)

    def abs_val(x):
        if x > 0:
            return x
        else:
            return -x

    abs_val_grad = grad(abs_val)
    out["abs_grads"] = jnp.array([abs_val_grad(1.0), abs_val_grad(-1.0)])

    def hessian(fun):
        return jit(jax.jacfwd(jax.jacrev(fun)))

    out["hessian"] = hessian(lambda x: jnp.sum(predict(params, x) ** 2))(inputs[0])
    return out


def test_readme_mlp_matches_jax():
    got, _ = check_against_jax("test_jax_readme_mlp", program, rtol=5e-4, atol=5e-5)
    assert got["losses"][-1] < got["losses"][0]
