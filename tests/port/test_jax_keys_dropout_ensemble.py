"""Port: a deep ensemble of small MLPs trained with dropout, written with typed keys the way
current JAX code is (`jax.random.key`, never `PRNGKey`).

Each member's parameters come from a key grid `split(key, (members, layers))`, initialised
under `vmap` over the grid's rows; params hold a typed key of their own (a pytree with a
key leaf passed through `jit`, `grad` and `scan`); the training loop carries a key in the
`lax.scan` carry and derives per-step dropout keys with `fold_in` of the traced step
counter; a `jnp.where` / `jnp.stack` of keys picks which member gets fresh keys. Keys are
returned as `jax.random.key_data(...)`.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    members, sizes = 3, (4, 16, 1)
    root = jax.random.key(2024)
    k_data, k_init, k_train = jax.random.split(root, 3)

    x = jax.random.normal(k_data, (32, 4))
    w_true = jnp.array([1.0, -2.0, 0.5, 0.0])
    y = jnp.tanh(x @ w_true)[:, None] + 0.05 * jax.random.normal(jax.random.fold_in(k_data, 1),
                                                                 (32, 1))

    def init_member(layer_keys):  # one row of the key grid: one key per layer
        params = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            w = jax.random.normal(layer_keys[i], (n_in, n_out)) * jnp.sqrt(2.0 / n_in)
            params.append({"w": w, "b": jnp.zeros(n_out)})
        return params

    key_grid = jax.random.split(k_init, (members, len(sizes) - 1))
    params = jax.vmap(init_member)(key_grid)

    def forward(params, xb, key, rate):
        h = xb
        for i, layer in enumerate(params[:-1]):
            h = jax.nn.relu(h @ layer["w"] + layer["b"])
            keep = jax.random.bernoulli(jax.random.fold_in(key, i), 1.0 - rate, h.shape)
            h = jnp.where(keep, h / (1.0 - rate), 0.0)
        return h @ params[-1]["w"] + params[-1]["b"]

    def loss(params, key):
        return jnp.mean((forward(params, x, key, 0.1) - y) ** 2)

    @jax.jit
    def train_member(state):
        def step(carry, t):
            params, key = carry
            key, sub = jax.random.split(key)
            step_key = jax.random.fold_in(sub, t)  # a traced counter
            l, g = jax.value_and_grad(loss)(params, step_key)
            params = jax.tree.map(lambda p, d: p - 0.05 * d, params, g)
            return (params, key), (l, jax.random.key_data(step_key))

        (params, key), (losses, step_words) = lax.scan(step, (state["params"], state["key"]),
                                                        jnp.arange(25))
        return {"params": params, "key": key}, losses, step_words

    member_keys = jax.random.split(k_train, members)
    states = {"params": params, "key": member_keys}
    new_states, losses, step_words = jax.vmap(train_member)(states)

    # keys in pytrees: re-key the members whose final loss is above the median
    redo = losses[:, -1] > jnp.median(losses[:, -1])
    fresh = jax.vmap(lambda k: jax.random.fold_in(k, 99))(new_states["key"])
    picked = jnp.where(redo, fresh, new_states["key"])
    stacked = jnp.stack([picked[0], fresh[1], member_keys[2]])

    preds = jax.vmap(lambda p: forward(p, x, root, 0.0))(new_states["params"])
    return {"first_loss": losses[:, 0], "last_loss": losses[:, -1],
            "pred_mean": preds.mean(0)[:8, 0], "pred_std": preds.std(0)[:8, 0],
            "grid_words": jax.random.key_data(key_grid),
            "final_keys": jax.random.key_data(new_states["key"]),
            "step_words": step_words[:, ::6], "picked": jax.random.key_data(picked),
            "stacked": jax.random.key_data(stacked), "redo": redo,
            "w0": new_states["params"][0]["w"][:, 0, :4]}


def test_keys_dropout_ensemble_matches_jax():
    got, _ = check_against_jax("test_jax_keys_dropout_ensemble", program, rtol=2e-3, atol=2e-4)
    assert np.all(got["last_loss"] < got["first_loss"])
    assert got["grid_words"].shape == (3, 2, 2) and got["grid_words"].dtype == np.uint32
