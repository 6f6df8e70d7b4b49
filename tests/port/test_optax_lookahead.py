"""Port: optax's Lookahead example (docs/_collections/examples/lookahead_mnist.ipynb).

`optax.lookahead(optax.adam(...), sync_period=5, slow_step_size=0.5)` with
`optax.LookaheadParams.init_synced(params)`, gradients taken at the fast weights,
evaluation at the slow ones, as the notebook does. Changes: a linear softmax classifier
on synthetic 3-class data instead of a flax CNN on MNIST; 20 steps. Checked against
optax: training losses, slow-weight losses and both final weight sets.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    rs = np.random.RandomState(4)
    centers = rs.normal(size=(3, 8)).astype(np.float32) * 2
    labels = rs.randint(0, 3, size=90)
    x = (centers[labels] + rs.normal(size=(90, 8))).astype(np.float32)

    def loss_fn(params):
        logits = x @ params["w"] + params["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    # b starts off zero: with 30 examples of each class its first gradient would be a
    # rounding error, which Adam's normalisation would blow up to a full step.
    params = {"w": jnp.zeros((8, 3)), "b": jnp.asarray([0.1, -0.2, 0.1])}
    opt = optax.lookahead(optax.adam(0.1), sync_period=5, slow_step_size=0.5)
    params = optax.LookaheadParams.init_synced(params)
    state = opt.init(params)

    @jax.jit
    def train_step(params, state):
        loss, grads = jax.value_and_grad(loss_fn)(params.fast)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    losses, slow_losses = [], []
    for _ in range(20):
        params, state, loss = train_step(params, state)
        losses.append(loss)
        slow_losses.append(loss_fn(params.slow))
    return {"losses": jnp.stack(losses), "slow_losses": jnp.stack(slow_losses),
            "fast": params.fast, "slow": params.slow}


def test_lookahead_matches_optax():
    got, _ = check_against_optax("test_optax_lookahead", program)
    assert got["slow_losses"][-1] < got["slow_losses"][0]
