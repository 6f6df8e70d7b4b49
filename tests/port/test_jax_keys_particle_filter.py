"""Port: a bootstrap particle filter on a noisy pendulum, written with typed keys as current
JAX code is.

A `(T, N)` key grid from `split(key, (T, N))` drives the process noise (a `scan` over its
rows, `vmap` over each row's particles); resampling uses a per-step key from `fold_in` of
the traced step index; `lax.cond`/`lax.switch` pick between two keys; `lax.map` and
`while_loop` carry keys; a rejection sampler runs in a `while_loop` whose state holds a
key; `jax.checkpoint` wraps a step that takes a key. Keys are returned through
`jax.random.key_data`.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    T, N, dt = 12, 64, 0.1
    root = jax.random.key(11)
    k_sim, k_grid, k_resample, k_misc = jax.random.split(root, 4)

    def dynamics(s):
        theta, omega = s[..., 0], s[..., 1]
        return jnp.stack([theta + dt * omega, omega - dt * 9.81 * jnp.sin(theta)], -1)

    # a "true" trajectory and its noisy observations of sin(theta)
    def sim_step(s, k):
        k1, k2 = jax.random.split(k)
        s = dynamics(s) + 0.02 * jax.random.normal(k1, (2,))
        return s, (s, jnp.sin(s[0]) + 0.1 * jax.random.normal(k2))

    _, (truth, obs) = lax.scan(sim_step, jnp.array([0.8, 0.0]), jax.random.split(k_sim, T))

    grid = jax.random.split(k_grid, (T, N))  # one key per step and particle

    @jax.checkpoint
    def propagate(p, k):
        return dynamics(p) + 0.05 * jax.random.normal(k, (2,))

    def filter_step(carry, inputs):
        particles, log_z = carry
        t, row_keys, y = inputs
        particles = jax.vmap(propagate)(particles, row_keys)
        logw = -0.5 * ((y - jnp.sin(particles[:, 0])) / 0.1) ** 2
        log_z = log_z + jax.nn.logsumexp(logw) - jnp.log(N)
        step_key = jax.random.fold_in(k_resample, t)  # traced counter
        idx = jax.random.categorical(step_key, logw, shape=(N,))
        particles = particles[idx]
        return (particles, log_z), (particles.mean(0), jax.random.key_data(step_key))

    p0 = jnp.array([0.8, 0.0]) + 0.1 * jax.random.normal(k_misc, (N, 2))
    (final, log_z), (means, step_words) = jax.jit(
        lambda p, g, o: lax.scan(filter_step, (p, 0.0), (jnp.arange(T), g, o)))(p0, grid, obs)

    # keys through cond / switch / lax.map / while_loop
    a, b = jax.random.split(k_misc)
    chosen = lax.cond(log_z < 0.0, lambda u, v: u, lambda u, v: v, a, b)
    switched = lax.switch(2, [lambda k: k, lambda k: jax.random.fold_in(k, 1),
                              lambda k: jax.random.split(k)[1]], a)
    draws = lax.map(lambda k: jax.random.uniform(k, (3,)), grid[0, :4])

    def rejection(key):  # a draw from N(0, 1) restricted to [1, inf)
        def cond(s):
            return s[1] < 1.0

        def body(s):
            key, _, n = s
            key, sub = jax.random.split(key)
            return key, jax.random.normal(sub), n + 1
        key, z, n = lax.while_loop(cond, body, (key, -jnp.inf, 0))
        return z, n, jax.random.key_data(key)

    tails, tries, tail_keys = jax.vmap(rejection)(jax.random.split(b, 5))
    same = jax.random.split(root, 4)[1] == k_grid
    return {"truth": truth[:, 0], "means": means, "final_mean": final.mean(0),
            "log_z": log_z, "step_words": step_words,
            "grid_corner": jax.random.key_data(grid[::5, ::20]),
            "chosen": jax.random.key_data(chosen), "switched": jax.random.key_data(switched),
            "draws": draws, "tails": tails, "tries": tries, "tail_keys": tail_keys,
            "same": same}


def test_keys_particle_filter_matches_jax():
    got, _ = check_against_jax("test_jax_keys_particle_filter", program, rtol=2e-3, atol=2e-3)
    assert np.all(got["tails"] >= 1.0) and bool(got["same"])
    # the filter tracks the pendulum's angle
    assert np.mean(np.abs(got["means"][:, 0] - got["truth"])) < 0.2
