"""Port: gradient noise (`optax.add_noise`, `optax.noisy_sgd`), the same noise as optax's.

`add_noise` splits its key into the next state's key and one sampling key, and draws one
normal sample per leaf with `optax.tree.random_like`; with the same key nanofn draws the
same numbers, so a noisy training run is reproduced exactly. Checked against optax: the
noise of three steps on a two-leaf tree, and a noisy-SGD run's losses and weights.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    params = {"a": jnp.ones(3), "b": jnp.zeros((2, 2))}
    tx = optax.add_noise(0.5, 0.55, key=3)
    state = tx.init(params)
    noise = []
    for _ in range(3):
        updates, state = tx.update(params, state)
        noise.append(updates["b"])

    rs = np.random.RandomState(0)
    x = rs.normal(size=(40, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], np.float32)).astype(np.float32)

    def loss_fn(w):
        return jnp.mean((x @ w - y) ** 2)

    opt = optax.noisy_sgd(0.05, eta=0.01, key=7)
    w, opt_state = jnp.zeros(4), None
    opt_state = opt.init(w)
    losses = []
    for _ in range(15):
        loss, g = jax.value_and_grad(loss_fn)(w)
        u, opt_state = opt.update(g, opt_state, w)
        w = optax.apply_updates(w, u)
        losses.append(loss)
    return {"noise": jnp.stack(noise), "a": updates["a"], "losses": jnp.stack(losses), "w": w}


def test_gradient_noise_matches_optax():
    got, _ = check_against_optax("test_optax_gradient_noise", program)
    assert got["losses"][-1] < got["losses"][0]
