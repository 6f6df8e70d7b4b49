"""Port: optax's "Gradient accumulation" guide (docs/_collections/examples/gradient_accumulation.ipynb).

The guide trains the same model twice, once with `optax.MultiSteps(opt,
every_k_schedule=k)` on micro-batches and once with the plain optimizer on the
concatenated batches, and shows the two give the same parameters. Changes: a small
MLP written with `jax.nn` instead of flax, synthetic data, 4 accumulation steps of
8 examples for 3 outer steps. Checked against optax: losses, MultiSteps' mini-step
counter, and the final parameters of both runs.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    rs = np.random.RandomState(1)
    xs = rs.normal(size=(96, 5)).astype(np.float32)
    ys = (np.sin(xs.sum(axis=1, keepdims=True))).astype(np.float32)
    key = jax.random.PRNGKey(0)
    k1, k2 = jax.random.split(key)
    params = {"w1": 0.5 * jax.random.normal(k1, (5, 16)), "b1": jnp.zeros(16),
              "w2": 0.5 * jax.random.normal(k2, (16, 1)), "b2": jnp.zeros(1)}

    def predict(p, x):
        return jnp.dot(jnp.tanh(jnp.dot(x, p["w1"]) + p["b1"]), p["w2"]) + p["b2"]

    def loss_fn(p, x, y):
        return jnp.mean(optax.squared_error(predict(p, x), y))

    k = 4
    opt = optax.sgd(0.2, momentum=0.5)
    acc_opt = optax.MultiSteps(opt, every_k_schedule=k)

    @jax.jit
    def acc_step(p, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
        updates, state = acc_opt.update(grads, state, p)
        return optax.apply_updates(p, updates), state, loss

    p_acc, state = params, acc_opt.init(params)
    losses, mini_steps = [], []
    for i in range(3 * k):
        batch = slice(8 * i, 8 * (i + 1))
        p_acc, state, loss = acc_step(p_acc, state, xs[batch], ys[batch])
        losses.append(loss)
        mini_steps.append(state.mini_step)

    p_big, big_state = params, opt.init(params)
    big_losses = []
    for i in range(3):
        batch = slice(32 * i, 32 * (i + 1))
        loss, grads = jax.value_and_grad(loss_fn)(p_big, xs[batch], ys[batch])
        updates, big_state = opt.update(grads, big_state, p_big)
        p_big = optax.apply_updates(p_big, updates)
        big_losses.append(loss)

    return {"acc": {"losses": jnp.stack(losses), "mini_steps": jnp.stack(mini_steps),
                    "params": p_acc},
            "big": {"losses": jnp.stack(big_losses), "params": p_big}}


def test_gradient_accumulation_matches_optax():
    got, _ = check_against_optax("test_optax_gradient_accumulation", program)
    for name in ("w1", "b1", "w2", "b2"):  # the guide's point: both runs agree
        np.testing.assert_allclose(got[f"acc/params/{name}"], got[f"big/params/{name}"],
                                   rtol=1e-4, atol=1e-5)
