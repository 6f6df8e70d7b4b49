"""Port: optax's "Freezing parameters" and weight-decay masking recipes
(docs/api/transformations.rst `masked`, `multi_transform`, and the optax FAQ "How can I
freeze parameters?" / "How can I exclude biases from weight decay?").

Three optimizers on one two-layer model: `optax.adamw` with a `mask` function that
exempts 1-d parameters from weight decay; `optax.multi_transform` with
`{"trainable": optax.adam, "frozen": optax.set_to_zero()}` and labels from a
`jax.tree_util.tree_map_with_path` function; and `optax.chain(optax.masked(...),
...)` with `optax.MaskedNode`-carrying states. Synthetic data. Checked against optax:
losses and final parameters (the frozen ones must stay put).
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    rs = np.random.RandomState(3)
    x = rs.normal(size=(64, 4)).astype(np.float32)
    y = np.tanh(x @ rs.normal(size=(4, 2))).astype(np.float32)
    k1, k2 = jax.random.split(jax.random.PRNGKey(42))
    params = {"encoder": {"kernel": jax.random.normal(k1, (4, 8)) * 0.5, "bias": jnp.zeros(8)},
              "head": {"kernel": jax.random.normal(k2, (8, 2)) * 0.5, "bias": jnp.zeros(2)}}

    def loss_fn(p):
        h = jax.nn.relu(x @ p["encoder"]["kernel"] + p["encoder"]["bias"])
        return jnp.mean((h @ p["head"]["kernel"] + p["head"]["bias"] - y) ** 2)

    def train(opt, steps=15):
        p, state = params, opt.init(params)
        losses = []
        for _ in range(steps):
            loss, grads = jax.value_and_grad(loss_fn)(p)
            updates, state = opt.update(grads, state, p)
            p = optax.apply_updates(p, updates)
            losses.append(loss)
        return {"losses": jnp.stack(losses), "params": p}

    def decay_mask(p):
        return jax.tree_util.tree_map(lambda x: x.ndim != 1, p)

    def label_fn(p):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "frozen" if path[0].key == "encoder" else "trainable", p)

    return {
        "init": params,
        "adamw_masked_decay": train(optax.adamw(0.05, weight_decay=0.1, mask=decay_mask)),
        "multi_transform": train(optax.multi_transform(
            {"trainable": optax.adam(0.05), "frozen": optax.set_to_zero()}, label_fn)),
        "chain_masked": train(optax.chain(
            optax.masked(optax.add_decayed_weights(0.1), decay_mask),
            optax.masked(optax.scale_by_adam(), {"encoder": True, "head": False}),
            optax.scale(-0.05))),
    }


def test_freezing_matches_optax():
    got, _ = check_against_optax("test_optax_freezing", program)
    for leaf in ("kernel", "bias"):  # the frozen encoder did not move
        np.testing.assert_array_equal(got[f"multi_transform/params/encoder/{leaf}"],
                                      got[f"init/encoder/{leaf}"])
    assert got["multi_transform/losses"][-1] < got["multi_transform/losses"][0]
