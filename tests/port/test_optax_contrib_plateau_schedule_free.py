"""Port: optax.contrib's reduce_on_plateau and schedule-free optimizers
(`optax/contrib/_reduce_on_plateau.py`, `_schedule_free.py` and their tests,
google-deepmind/optax repository).

Each optimizer runs up to 20 steps on the small problem of test_optax_aliases.py (a
parabola plus a Rosenbrock-like term on a pytree with a vector and a matrix leaf), with
optax's defaults and with other settings, some steps under `jax.jit`. Checked against
optax: the losses along the way, the final parameters, for the schedule-free ones the
loss at the evaluation parameters and the final state's scalars, and for
reduce_on_plateau the whole state after each step, fed both the real losses and value
sequences that plateau so that the scale drops (with cooldown, min_scale, accumulation).
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    params0 = {"v": jnp.asarray([1.0, -1.5, 0.5]),
               "m": jnp.asarray(np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3))}

    def loss_tree(p):
        v, m = p["v"], p["m"]
        return (jnp.sum((v - 0.3) ** 2) + 0.5 * jnp.sum((m[1:] - m[:-1] ** 2) ** 2)
                + jnp.sum((1.0 - m) ** 2) + 0.1 * jnp.sum(v * m[0]))

    def parabola(x):
        return jnp.sum(x ** 2)

    def run_schedule_free(opt, steps=20, jit=False, sf_index=None, problem=None):
        """`problem`: (loss, initial params); the pytree problem above by default."""
        loss, p0 = problem or (loss_tree, params0)

        def step(params, state):
            value, grad = jax.value_and_grad(loss)(params)
            updates, state = opt.update(grad, state, params)
            return value, optax.apply_updates(params, updates), state

        if jit:
            step = jax.jit(step)
        state, params = opt.init(p0), p0
        losses, eval_losses = [], []
        for _ in range(steps):
            value, params, state = step(params, state)
            sf_state = state if sf_index is None else state[sf_index]
            eval_losses.append(loss(optax.contrib.schedule_free_eval_params(sf_state, params)))
            losses.append(value)
        sf_state = state if sf_index is None else state[sf_index]
        return {"losses": jnp.stack(losses), "eval_losses": jnp.stack(eval_losses),
                "params": params,
                "eval_params": optax.contrib.schedule_free_eval_params(sf_state, params),
                "state": {"b1": sf_state.b1, "weight_sum": sf_state.weight_sum,
                          "step_count": sf_state.step_count, "max_lr": sf_state.max_lr,
                          "z": sf_state.z}}

    def plateau_fields(st):
        return {"scale": st.scale, "best_value": st.best_value,
                "plateau_count": st.plateau_count, "cooldown_count": st.cooldown_count,
                "count": st.count, "avg_value": st.avg_value}

    def run_plateau(opt, values=None, steps=20, jit=False):
        """chain(sgd, opt): feed the true loss, or the given `values` sequence."""
        tx = optax.chain(optax.sgd(0.05), opt)

        def step(params, state, fed):
            value, grad = jax.value_and_grad(loss_tree)(params)
            fed = value if fed is None else fed
            updates, state = tx.update(grad, state, params, value=fed)
            return value, optax.apply_updates(params, updates), state

        if jit:
            step = jax.jit(step)
        state, params = tx.init(params0), params0
        losses, fields = [], []
        for i in range(steps if values is None else len(values)):
            fed = None if values is None else jnp.asarray(values[i])
            value, params, state = step(params, state, fed)
            losses.append(value)
            fields.append(plateau_fields(state[1]))
        out = {"losses": jnp.stack(losses), "params": params}
        for name in fields[0]:
            out[name] = jnp.stack([f[name] for f in fields])
        return out

    sf = optax.contrib
    cases = {
        # optax's defaults (learning rate 1) on the parabola of optax's docstrings
        "sf_sgd_default": run_schedule_free(sf.schedule_free_sgd(), steps=10, problem=(
            parabola, jnp.asarray([1.0, 2.0, 3.0]))),
        "sf_adamw_default_parabola": run_schedule_free(sf.schedule_free_adamw(1.0), steps=10,
                                                       problem=(parabola,
                                                                jnp.asarray([1.0, 2.0, 3.0]))),
        "sf_sgd": run_schedule_free(sf.schedule_free_sgd(0.2, warmup_steps=5, b1=0.8,
                                                         weight_decay=0.01)),
        "sf_sgd_jit": run_schedule_free(sf.schedule_free_sgd(0.1, weight_lr_power=1.0),
                                        jit=True),
        "sf_adamw_default": run_schedule_free(sf.schedule_free_adamw()),
        "sf_adamw": run_schedule_free(sf.schedule_free_adamw(
            0.1, warmup_steps=4, b1=0.95, b2=0.99, eps=1e-6, weight_decay=0.05,
            weight_lr_power=0.5), jit=True),
        "sf_wrap_adam": run_schedule_free(sf.schedule_free(
            optax.adam(0.1, b1=0.0), learning_rate=0.1)),
        "sf_wrap_schedule": run_schedule_free(sf.schedule_free(
            optax.sgd(optax.linear_schedule(0.0, 0.2, 6)),
            learning_rate=optax.linear_schedule(0.0, 0.2, 6), b1=0.7)),
        "sf_in_chain": run_schedule_free(optax.chain(
            optax.clip_by_global_norm(1.0),
            sf.schedule_free(optax.sgd(0.2), learning_rate=0.2)), sf_index=1),
        "plateau_default": run_plateau(sf.reduce_on_plateau()),
        "plateau_real": run_plateau(sf.reduce_on_plateau(factor=0.5, patience=2, rtol=0.3),
                                    jit=True),
        # a loss that improves, then stalls: the scale halves every 3 stalled checks,
        # waits out a cooldown of 2 after each cut and stops at min_scale
        "plateau_fed": run_plateau(sf.reduce_on_plateau(
            factor=0.5, patience=3, cooldown=2, min_scale=0.2),
            values=[2.0, 1.5, 1.2, 1.2, 1.3, 1.2, 1.25, 1.2, 1.2, 1.21, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
        "plateau_fed_jit": run_plateau(sf.reduce_on_plateau(factor=0.3, patience=2,
                                                            rtol=0.0, atol=0.1),
                                       values=[3.0, 2.0, 1.95, 1.92, 1.5, 1.45, 1.44, 1.43,
                                               1.42, 1.41, 1.40], jit=True),
        # values averaged over 3 steps before each check
        "plateau_accumulate": run_plateau(sf.reduce_on_plateau(
            factor=0.1, patience=2, accumulation_size=3),
            values=[5.0, 4.0, 3.0, 3.0, 4.0, 5.0, 4.0, 4.0, 4.0, 4.5, 3.5, 4.0, 4.0, 4.0,
                    4.0, 1.0, 1.0, 1.0]),
    }
    return cases


def test_optax_contrib_plateau_schedule_free_match_optax():
    got, _ = check_against_optax("test_optax_contrib_plateau_schedule_free", program,
                                 rtol=2e-4, atol=2e-5)
    for name in ("sf_sgd", "sf_sgd_jit", "sf_adamw", "sf_wrap_adam", "sf_wrap_schedule",
                 "sf_in_chain", "plateau_default", "plateau_real"):
        assert got[f"{name}/losses"][-1] < got[f"{name}/losses"][0], name
    for name in ("sf_sgd", "sf_adamw", "sf_wrap_adam"):
        assert got[f"{name}/eval_losses"][-1] < got[f"{name}/losses"][0], name
    # the fed plateaus really cut the scale
    fed = got["plateau_fed/scale"]
    assert fed[0] == 1.0 and fed[-1] < 1.0 and np.isclose(fed.min(), 0.2)
    assert np.all(np.diff(fed) <= 0)
    assert got["plateau_fed_jit/scale"][-1] < 1.0
    assert got["plateau_accumulate/scale"][-1] < 1.0
