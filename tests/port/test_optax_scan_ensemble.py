"""Port: training inside `lax.scan` and model ensembles by `vmap`, two JAX idioms that put
optax's states through transformations: an ensemble of three small linear-recurrence
models (the recurrence `h_t = a * h_{t-1} + b * x_t` computed by `lax.associative_scan`,
as in S4/LRU-style layers) is initialised with `vmap` over keys, and the whole training
loop (`optax.chain(optax.clip(1.0), optax.adam(...))`) runs as one
`lax.scan` over steps, itself `vmap`ped over the ensemble members, under `jit`.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    t, feat, hidden = 16, 3, 5
    rng = np.random.default_rng(9)
    xs = jnp.asarray(rng.normal(size=(8, t, feat)), jnp.float32)
    target = jnp.asarray(np.cumsum(rng.normal(size=(8, t)), axis=1) * 0.1, jnp.float32)

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        return {"log_a": jax.random.uniform(k1, (hidden,), minval=-1.0, maxval=-0.1),
                "b": jax.random.normal(k2, (feat, hidden)) * 0.3,
                "c": jax.random.normal(k3, (hidden,)) * 0.3}

    def recurrence(params, x):  # x: (t, feat) -> (t,)
        a = jnp.exp(params["log_a"])
        u = x @ params["b"]                                                     # (t, hidden)

        def combine(left, right):
            a_l, u_l = left
            a_r, u_r = right
            return a_l * a_r, a_r * u_l + u_r

        _, h = jax.lax.associative_scan(combine, (jnp.broadcast_to(a, u.shape), u))
        return h @ params["c"]

    def loss(params):
        pred = jax.vmap(recurrence, in_axes=(None, 0))(params, xs)
        return jnp.mean((pred - target) ** 2)

    opt = optax.chain(optax.clip(1.0), optax.adam(0.05))

    def train(key):
        params = init(key)

        def step(carry, _):
            params, state = carry
            value, grads = jax.value_and_grad(loss)(params)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), value

        (params, state), losses = jax.lax.scan(step, (params, opt.init(params)), None,
                                               length=25)
        return params, losses, state

    keys = jax.random.split(jax.random.key(4), 3)
    params, losses, state = jax.jit(jax.vmap(train))(keys)
    ensemble_pred = jax.vmap(lambda p: jax.vmap(recurrence, in_axes=(None, 0))(p, xs))(params)
    adam_state = state[1][0]
    return {"losses": losses, "params": params, "ensemble_mean": ensemble_pred.mean(0),
            "adam_count": adam_state.count, "adam_mu_c": adam_state.mu["c"]}


def test_scan_ensemble_matches_jax_and_optax():
    got, _ = check_against_optax("test_optax_scan_ensemble", program, rtol=2e-3, atol=2e-4)
    assert np.all(got["losses"][:, -1] < got["losses"][:, 0])
    assert np.all(got["adam_count"] == 25)
