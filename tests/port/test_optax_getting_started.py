"""Port: optax's "Getting started" guide (docs/getting_started.ipynb, google-deepmind/optax).

The guide's first program: a linear model fitted by `optax.adam` with a jitted `step`
that calls `jax.value_and_grad`, `optimizer.update` and `optax.apply_updates`; then
the same loop with `optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(...))` and
a `optax.warmup_cosine_decay_schedule`, as the guide's "custom optimizers" section does.
Changes: the data is a synthetic regression problem made with numpy (the guide also
makes its data at random), 30 steps. Checked against optax: all losses and the final
parameters.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    rs = np.random.RandomState(0)
    xs = rs.normal(size=(64, 10)).astype(np.float32)
    w_true = rs.normal(size=(10,)).astype(np.float32)
    ys = (xs @ w_true + 0.1 * rs.normal(size=(64,))).astype(np.float32)

    def net(x, params):
        return jnp.dot(x, params["w"]) + params["b"]

    def loss(params, batch, labels):
        y_hat = net(batch, params)
        loss_value = optax.l2_loss(y_hat, labels).sum(axis=-1)
        return loss_value.mean()

    initial_params = {"w": jnp.zeros(10), "b": jnp.asarray(0.0)}

    def fit(params, optimizer, steps=30):
        opt_state = optimizer.init(params)

        @jax.jit
        def step(params, opt_state, batch, labels):
            loss_value, grads = jax.value_and_grad(loss)(params, batch, labels)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return params, opt_state, loss_value

        losses = []
        for i in range(steps):
            params, opt_state, loss_value = step(params, opt_state, xs, ys)
            losses.append(loss_value)
        return {"losses": jnp.stack(losses), "params": params}

    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=0.1, warmup_steps=5, decay_steps=30, end_value=0.01)
    return {
        "adam": fit(initial_params, optax.adam(learning_rate=1e-1)),
        "custom": fit(initial_params, optax.chain(
            optax.clip_by_global_norm(1.0),
            optax.adamw(learning_rate=schedule))),
    }


def test_getting_started_matches_optax():
    got, _ = check_against_optax("test_optax_getting_started", program)
    assert got["adam/losses"][-1] < 0.1 * got["adam/losses"][0]
