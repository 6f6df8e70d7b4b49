"""Port: optax's "Hyperparameter injection" recipe (docs/api/optimizer_schedules.rst and the
"Learning rate schedules" section of optax's getting started guide).

`optax.inject_hyperparams(optax.adamw)(learning_rate=..., weight_decay=...)` puts the
hyperparameters in the state; the program reads the learning rate back from
`opt_state.hyperparams` at each step, halves it by writing the state (as the recipe's
"reduce on plateau by hand" example does), and also runs a schedule-driven
`optax.sgd(optax.exponential_decay(...))` with `optax.tree.get(state, "count")`.
Synthetic logistic-regression data. Checked against optax: losses, the learning rates
read from the state, and the final parameters.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    rs = np.random.RandomState(2)
    x = rs.normal(size=(128, 6)).astype(np.float32)
    w_true = rs.normal(size=(6,)).astype(np.float32)
    labels = (x @ w_true > 0).astype(np.float32)

    def loss_fn(params):
        logits = x @ params["w"] + params["b"]
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))

    params = {"w": jnp.zeros(6), "b": jnp.asarray(0.0)}
    opt = optax.inject_hyperparams(optax.adamw)(learning_rate=0.1, weight_decay=1e-3)
    state = opt.init(params)
    losses, lrs = [], []
    for step in range(20):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        losses.append(loss)
        lrs.append(state.hyperparams["learning_rate"])
        if step == 9:
            state.hyperparams["learning_rate"] = state.hyperparams["learning_rate"] / 2

    sched_opt = optax.sgd(optax.exponential_decay(0.5, transition_steps=5, decay_rate=0.5))
    p2, s2 = {"w": jnp.zeros(6), "b": jnp.asarray(0.0)}, None
    s2 = sched_opt.init(p2)
    losses2, counts = [], []
    for _ in range(12):
        loss, grads = jax.value_and_grad(loss_fn)(p2)
        updates, s2 = sched_opt.update(grads, s2, p2)
        p2 = optax.apply_updates(p2, updates)
        losses2.append(loss)
        counts.append(optax.tree.get(s2, "count"))
    return {"inject": {"losses": jnp.stack(losses), "lrs": jnp.stack(lrs), "params": params},
            "schedule": {"losses": jnp.stack(losses2), "counts": jnp.stack(counts),
                         "params": p2}}


def test_inject_hyperparams_matches_optax():
    got, _ = check_against_optax("test_optax_inject_hyperparams", program)
    assert got["inject/lrs"][10] == got["inject/lrs"][9] / 2
