"""Port: the optimizer cases of JAX's `tests/optimizers_test.py` (jax-ml/jax repository).

Every `example_libraries.optimizers` triple (sgd, momentum, nesterov, adagrad, rmsprop,
rmsprop_momentum, adam, adamax, sm3) and every schedule (constant, exponential_decay,
inverse_time_decay with and without staircase, polynomial_decay, piecewise_constant)
minimises the same function for 20 jitted steps, on a pytree of parameters with a
scalar, a vector and a matrix leaf, as the JAX tests do. Also `clip_grads`, `l2_norm`
and a state round trip through `unpack_optimizer_state` / `pack_optimizer_state`.
Checked against JAX: every loss along every trajectory and the final parameters.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optimizers):
    params0 = {"s": jnp.asarray(1.5), "v": jnp.asarray([1.0, -2.0, 0.5]),
               "m": jnp.asarray(np.arange(6.0, dtype=np.float32).reshape(2, 3) / 6 - 0.4)}

    def loss(p):
        return (p["s"] ** 2 + jnp.sum(jnp.cos(p["v"]) + p["v"] ** 2)
                + jnp.sum((p["m"] - 0.3) ** 4) + jnp.sum(p["m"] * p["v"]))

    cases = {
        "sgd": optimizers.sgd(0.05),
        "momentum": optimizers.momentum(0.02, mass=0.9),
        "nesterov": optimizers.nesterov(0.02, mass=0.9),
        "adagrad": optimizers.adagrad(0.1),
        "adagrad_nomom": optimizers.adagrad(0.1, momentum=0.0),
        "rmsprop": optimizers.rmsprop(0.01),
        "rmsprop_momentum": optimizers.rmsprop_momentum(0.01),
        "adam": optimizers.adam(0.05),
        "adamax": optimizers.adamax(0.05),
        "sm3": optimizers.sm3(0.1),
        "sgd_constant": optimizers.sgd(optimizers.constant(0.05)),
        "sgd_exponential": optimizers.sgd(optimizers.exponential_decay(0.1, 5, 0.5)),
        "sgd_inverse_time": optimizers.sgd(optimizers.inverse_time_decay(0.1, 5, 2.0)),
        "sgd_inverse_time_staircase": optimizers.sgd(
            optimizers.inverse_time_decay(0.1, 5, 2.0, staircase=True)),
        "sgd_polynomial": optimizers.sgd(optimizers.polynomial_decay(0.1, 10, 0.01, 2.0)),
        "momentum_piecewise": optimizers.momentum(
            optimizers.piecewise_constant([5, 12], [0.05, 0.02, 0.005]), 0.5),
        "adam_traced_schedule": optimizers.adam(lambda i: 0.05 / (1.0 + i)),
    }
    results = {}
    for name, (opt_init, opt_update, get_params) in cases.items():
        def step(i, opt_state):
            g = jax.grad(loss)(get_params(opt_state))
            return opt_update(i, g, opt_state)
        if name != "sm3":  # sm3's state holds the shape as ints, so JAX cannot jit it
            step = jax.jit(step)

        opt_state = opt_init(params0)
        losses = []
        for i in range(20):
            losses.append(loss(get_params(opt_state)))
            opt_state = step(i, opt_state)
        opt_state = optimizers.pack_optimizer_state(
            optimizers.unpack_optimizer_state(opt_state))
        results[name] = {"losses": jnp.stack(losses), "params": get_params(opt_state)}

    g = jax.grad(loss)(params0)
    results["l2_norm"] = optimizers.l2_norm(g)
    results["clip_grads"] = optimizers.clip_grads(g, 1.0)
    results["clip_grads_noop"] = optimizers.clip_grads(g, 100.0)
    return results


def test_optimizers_trajectories_match_jax():
    got, _ = check_against_optax("test_stax_optimizers", program, rtol=1e-4, atol=1e-5)
    for name in ("sgd", "adam", "sm3", "rmsprop_momentum"):
        assert got[f"{name}/losses"][-1] < got[f"{name}/losses"][0]
