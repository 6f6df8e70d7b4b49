"""Port: a neural SDE simulated with Euler-Maruyama, trained through the simulated paths
(the pattern of "neural SDEs in JAX" tutorials: reparameterised Brownian increments, the
pathwise gradient of an expected loss).

- An Ornstein-Uhlenbeck sanity check: `dX = theta (mu - X) dt + s dW` simulated with
  `lax.scan` over time and `vmap` over paths; the terminal mean and variance against the
  closed form, and the pathwise derivative of E[X_T] with respect to theta against its
  analytic value.
- A learned drift `f(t, x)` (a small tanh MLP with a time input) and a learned
  log-diffusion, simulated from Brownian increments drawn once with `random.normal` from
  split keys (so the loss is a deterministic function of the parameters). The loss
  matches the simulated terminal distribution's first two moments and a path penalty to
  an OU target; minimised with `optax.adamw` under `jit`.
- A `lax.fori_loop` simulator with `random.fold_in` per step must agree with the scan
  simulator when fed the same increments.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    lax = jax.lax
    n_paths, n_steps, t_end = 64, 25, 1.0
    dt = t_end / n_steps

    def euler_maruyama(drift, diffusion, x0, dw):
        """Paths of dX = drift(t, X) dt + diffusion(t, X) dW; dw: (n_steps,) increments."""
        def step(x, inp):
            i, dw_i = inp
            t = i * dt
            x = x + drift(t, x) * dt + diffusion(t, x) * dw_i
            return x, x
        _, path = lax.scan(step, x0, (jnp.arange(n_steps, dtype=jnp.float32), dw))
        return path

    dw = jnp.sqrt(dt) * jax.random.normal(jax.random.PRNGKey(0), (n_paths, n_steps))

    # --- Ornstein-Uhlenbeck check
    def ou_paths(theta, mu=0.5, s=0.4, x0=2.0):
        return jax.vmap(lambda d: euler_maruyama(lambda t, x: theta * (mu - x),
                                                 lambda t, x: s, jnp.float32(x0), d))(dw)

    def ou_terminal_mean(theta, s=0.4):
        return jnp.mean(ou_paths(theta, s=s)[:, -1])

    theta = 1.3
    ou = ou_paths(theta)
    exact_mean = 0.5 + (2.0 - 0.5) * jnp.exp(-theta * t_end)
    exact_var = 0.4 ** 2 / (2 * theta) * (1 - jnp.exp(-2 * theta * t_end))
    # Euler's mean is exact for the discrete recursion: mu + (x0 - mu)(1 - theta dt)^n
    discrete_mean = 0.5 + 1.5 * (1 - theta * dt) ** n_steps
    d_discrete = -1.5 * n_steps * dt * (1 - theta * dt) ** (n_steps - 1)

    # --- learned drift and diffusion
    def init(key):
        k1, k2 = jax.random.split(key)
        return {"w1": 0.5 * jax.random.normal(k1, (2, 16)), "b1": jnp.zeros(16),
                "w2": 0.5 * jax.random.normal(k2, (16, 1)), "b2": jnp.zeros(1),
                "log_sigma": jnp.float32(-1.0)}

    def drift_net(params, t, x):
        h = jnp.tanh(jnp.stack([t, x]) @ params["w1"] + params["b1"])
        return (h @ params["w2"] + params["b2"])[0]

    def simulate(params, dw):
        return euler_maruyama(lambda t, x: drift_net(params, t, x),
                              lambda t, x: jnp.exp(params["log_sigma"]), jnp.float32(2.0), dw)

    target_mean, target_std = 0.5, 0.3
    ou_target = 0.5 + 1.5 * jnp.exp(-2.0 * dt * jnp.arange(1, n_steps + 1))

    def loss_fn(params):
        paths = jax.vmap(simulate, (None, 0))(params, dw)
        terminal = paths[:, -1]
        moments = (jnp.mean(terminal) - target_mean) ** 2 + (jnp.std(terminal) - target_std) ** 2
        path_penalty = jnp.mean((jnp.mean(paths, axis=0) - ou_target) ** 2)
        return moments + path_penalty

    params = init(jax.random.PRNGKey(1))
    opt = optax.adamw(2e-2, weight_decay=1e-4)
    state = opt.init(params)

    @jax.jit
    def train_step(params, state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for _ in range(30):
        params, state, loss = train_step(params, state)
        losses.append(loss)

    def simulate_fori(params, key):
        def body(i, x):
            z = jax.random.normal(jax.random.fold_in(key, i))
            return x + drift_net(params, i * dt, x) * dt + jnp.exp(params["log_sigma"]) * (
                jnp.sqrt(dt) * z)
        return lax.fori_loop(0, n_steps, body, jnp.float32(2.0))

    key = jax.random.PRNGKey(7)
    same_dw = jnp.sqrt(dt) * jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i)))(
        jnp.arange(n_steps))
    fresh = jax.vmap(simulate, (None, 0))(
        params, jnp.sqrt(dt) * jax.random.normal(jax.random.PRNGKey(3), (16, n_steps)))
    return {"ou_mean": jnp.mean(ou[:, -1]), "ou_var": jnp.var(ou[:, -1]),
            "ou_exact": jnp.stack([exact_mean, exact_var]),
            "ou_discrete": jnp.stack([discrete_mean, d_discrete]),
            "ou_dmean_dtheta": jax.grad(ou_terminal_mean)(theta),
            "ou_dmean_dtheta_noiseless": jax.grad(ou_terminal_mean)(theta, 0.0),
            "losses": jnp.stack(losses), "params": params,
            "fresh_terminal": fresh[:, -1], "fori_end": jax.jit(simulate_fori)(params, key),
            "scan_end": simulate(params, same_dw)[-1],
            "grad_at_end": jax.grad(loss_fn)(params)}


def test_neural_sde_matches_jax():
    got, _ = check_against_optax("test_optax_gen_neural_sde", program, rtol=2e-3, atol=2e-4)
    # without noise the pathwise derivative is the discrete recursion's; with noise it
    # differs only by the derivative of the (small) empirical noise term
    np.testing.assert_allclose(got["ou_dmean_dtheta_noiseless"], got["ou_discrete"][1],
                               rtol=1e-4)
    np.testing.assert_allclose(got["ou_dmean_dtheta"], got["ou_discrete"][1], rtol=0.05)
    np.testing.assert_allclose(got["ou_mean"], got["ou_exact"][0], atol=0.1)
    np.testing.assert_allclose(got["ou_var"], got["ou_exact"][1], rtol=0.5)
    np.testing.assert_allclose(got["fori_end"], got["scan_end"], rtol=1e-5)
    assert got["losses"][-1] < got["losses"][0]
