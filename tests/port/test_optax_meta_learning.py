"""Port: optax's meta-learning example (docs/_collections/examples/meta_learning.ipynb).

The notebook learns the learning rate of an inner optimizer by gradient descent: the
inner optimizer is `optax.inject_hyperparams(optax.rmsprop)(learning_rate=...)`, the
outer loss is the inner loss after one inner step, and its gradient with respect to
the (log) learning rate flows through `opt.update` and `optax.apply_updates`; the meta
optimizer is `optax.adam`, and the new learning rate is written into
`state.hyperparams`. Changes: the notebook's noisy sine regression with a linear model
on synthetic features, 15 meta steps, no plotting. Checked against optax: inner losses,
the learning-rate trajectory and the final parameters.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    rs = np.random.RandomState(8)
    xs = rs.uniform(-1.0, 1.0, size=(15, 16, 1)).astype(np.float32)
    ys = (np.sin(3 * xs) + 0.05 * rs.normal(size=xs.shape)).astype(np.float32)

    def features(x):
        return jnp.concatenate([x, x ** 2, x ** 3, jnp.ones_like(x)], axis=-1)

    def loss(params, batch):
        x, y = batch
        return jnp.mean((features(x) @ params - y) ** 2)

    def step(params, state, batch):
        grad = jax.grad(loss)(params, batch)
        updates, state = opt.update(grad, state)
        params = optax.apply_updates(params, updates)
        return params, state

    def outer_loss(eta, params, state, batch):
        state.hyperparams["learning_rate"] = jax.nn.sigmoid(eta)
        params, state = step(params, state, batch)
        return loss(params, batch), (params, state)

    @jax.jit
    def outer_step(eta, params, meta_state, state, batch):
        grad, (params, state) = jax.grad(outer_loss, has_aux=True)(eta, params, state, batch)
        meta_updates, meta_state = meta_opt.update(grad, meta_state)
        eta = optax.apply_updates(eta, meta_updates)
        return eta, params, meta_state, state

    opt = optax.inject_hyperparams(optax.rmsprop)(learning_rate=0.01)
    meta_opt = optax.adam(learning_rate=0.1)
    params = jnp.zeros((4, 1))
    state = opt.init(params)
    eta = -np.log(1.0 / 0.01 - 1.0).astype(np.float32)  # sigmoid(eta) = 0.01
    eta = jnp.asarray(eta)
    meta_state = meta_opt.init(eta)

    losses, lrs = [], []
    for i in range(15):
        batch = (xs[i], ys[i])
        eta, params, meta_state, state = outer_step(eta, params, meta_state, state, batch)
        losses.append(loss(params, batch))
        lrs.append(jax.nn.sigmoid(eta))
    return {"losses": jnp.stack(losses), "learning_rates": jnp.stack(lrs), "params": params}


def test_meta_learning_matches_optax():
    got, _ = check_against_optax("test_optax_meta_learning", program)
    assert got["learning_rates"][-1] > got["learning_rates"][0]  # the notebook's point
