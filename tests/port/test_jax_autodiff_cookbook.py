"""Port: JAX's "The Autodiff Cookbook" tutorial (jax-ml/jax, docs/notebooks/autodiff_cookbook).

The tutorial's program cells, in order: grad of tanh to third order, the logistic
regression `predict`/`loss` differentiated by argnums and over a dict of params,
`value_and_grad`, Jacobians with `jacfwd`/`jacrev`, a Hessian as `jacfwd(jacrev(f))`,
Hessian-vector products by forward-over-reverse, `vjp`, and per-example gradients with
`vmap(grad)`. Change: everything returned instead of printed. Compared with the values
recorded from JAX by `record_jax_reference.py`.
"""

from _jax_port import check_against_jax


def program(jax, jnp):
    grad_tanh = jax.grad(jnp.tanh)
    out = {"grad_tanh": grad_tanh(2.0),
           "grad3_tanh": jax.grad(jax.grad(jax.grad(jnp.tanh)))(2.0)}

    key = jax.random.PRNGKey(0)

    def sigmoid(x):
        return 0.5 * (jnp.tanh(x / 2) + 1)

    def predict(W, b, inputs):
        return sigmoid(jnp.dot(inputs, W) + b)

    inputs = jnp.array([[0.52, 1.12, 0.77],
                        [0.88, -1.08, 0.15],
                        [0.52, 0.06, -1.30],
                        [0.74, -2.49, 1.39]])
    targets = jnp.array([True, True, False, True])

    def loss(W, b):
        preds = predict(W, b, inputs)
        label_probs = preds * targets + (1 - preds) * (1 - targets)
        return -jnp.sum(jnp.log(label_probs))

    key, W_key, b_key = jax.random.split(key, 3)
    W = jax.random.normal(W_key, (3,))
    b = jax.random.normal(b_key, ())
    out["W"], out["b"] = W, b
    out["W_grad"] = jax.grad(loss, argnums=0)(W, b)
    out["W_grad_again"] = jax.grad(loss, 0)(W, b)
    out["b_grad"] = jax.grad(loss, 1)(W, b)
    out["Wb_grad"] = jax.grad(loss, (0, 1))(W, b)

    def loss2(params_dict):
        preds = predict(params_dict["W"], params_dict["b"], inputs)
        label_probs = preds * targets + (1 - preds) * (1 - targets)
        return jnp.sum(-jnp.log(label_probs))

    out["dict_grad"] = jax.grad(loss2)({"W": W, "b": b})
    out["loss_value"], out["Wb_grad_vg"] = jax.value_and_grad(loss, (0, 1))(W, b)

    # Jacobians and the Hessian
    out["J_fwd"] = jax.jacfwd(predict, argnums=2)(W, b, inputs)
    out["J_rev"] = jax.jacrev(predict, argnums=2)(W, b, inputs)

    def hessian(f):
        return jax.jacfwd(jax.jacrev(f))

    out["H"] = hessian(predict)(W, b, inputs)

    # Hessian-vector products
    def hvp(f, primals, tangents):
        return jax.jvp(jax.grad(f), primals, tangents)[1]

    def f(X):
        return jnp.sum(jnp.tanh(X) ** 2)

    key, subkey1, subkey2 = jax.random.split(key, 3)
    X = jax.random.normal(subkey1, (30, 40))
    V = jax.random.normal(subkey2, (30, 40))
    out["hvp"] = hvp(f, (X,), (V,))
    out["hvp_dense"] = jnp.tensordot(hessian(f)(X), V, 2)

    # vjp and jvp by hand
    y, vjp_fun = jax.vjp(predict, W, b, inputs)
    out["vjp"] = vjp_fun(jnp.array([1.0, 2.0, 3.0, 4.0]))
    out["jvp"] = jax.jvp(lambda w: predict(w, b, inputs), (W,), (jnp.ones(3),))

    # per-example gradients
    def example_loss(W, x, t):
        p = predict(W, b, x)
        return -jnp.log(p * t + (1 - p) * (1 - t))

    out["per_example_grads"] = jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0))(
        W, inputs, targets)
    return out


def test_autodiff_cookbook_matches_jax():
    got, _ = check_against_jax("test_jax_autodiff_cookbook", program)
    assert abs(got["hvp"] - got["hvp_dense"]).max() < 1e-3  # the two routes agree
