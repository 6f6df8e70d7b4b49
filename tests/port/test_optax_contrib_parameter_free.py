"""Port: optax.contrib's learning-rate-free and Polyak-type optimizers (optax 0.2.8,
`optax/contrib/_prodigy.py`, `_dadapt_adamw.py`, `_dog.py`, `_mechanic.py`, `_cocob.py`,
`_madgrad.py`, `_momo.py` and their tests in `_common_test.py`, google-deepmind/optax).

Each optimizer runs 20 steps on the small problem of test_optax_aliases.py (a parabola
plus a Rosenbrock-like term, on a pytree with a vector and a matrix leaf), with optax's
defaults and with non-default settings (schedules, weight decay with a mask, the other
`init_step` tags of DoG, an adapted lower bound for MoMo, Mechanic around SGD and
Adam). Checked against optax: every loss along the trajectory, the final parameters,
and the step-size estimates the states keep (Prodigy's and D-Adaptation's `d`, DoG's
distance, Mechanic's scales, MoMo's lower bound).
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    params0 = {"v": jnp.asarray([1.0, -1.5, 0.5]),
               "m": jnp.asarray(np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3))}

    def loss(p):
        v, m = p["v"], p["m"]
        return (jnp.sum((v - 0.3) ** 2) + 0.5 * jnp.sum((m[1:] - m[:-1] ** 2) ** 2)
                + jnp.sum((1.0 - m) ** 2) + 0.1 * jnp.sum(v * m[0]))

    def run(opt, steps=20, with_value=False, extra=None):
        state = opt.init(params0)
        params = params0
        losses = []
        for _ in range(steps):
            value, grad = jax.value_and_grad(loss)(params)
            if with_value:
                updates, state = opt.update(grad, state, params, value=value)
            else:
                updates, state = opt.update(grad, state, params)
            losses.append(value)
            params = optax.apply_updates(params, updates)
        out = {"losses": jnp.stack(losses), "params": params}
        if extra is not None:
            out["extra"] = extra(state)
        return out

    c = optax.contrib
    mask = {"v": True, "m": False}
    schedule = optax.linear_schedule(1.0, 0.2, 20)
    warmup = optax.linear_schedule(0.1, 1.0, 5)
    d_of = lambda state: state.estim_lr  # noqa: E731
    cases = {
        "prodigy": run(c.prodigy(), extra=d_of),
        "prodigy_tuned": run(c.prodigy(schedule, betas=(0.8, 0.99), beta3=0.9,
                                       estim_lr0=1e-3, estim_lr_coef=2.0,
                                       weight_decay=0.01), extra=d_of),
        "prodigy_safeguard": run(c.prodigy(warmup, estim_lr0=1e-2, safeguard_warmup=True),
                                 extra=d_of),
        "dadapt_adamw": run(c.dadapt_adamw(), extra=d_of),
        "dadapt_adamw_tuned": run(c.dadapt_adamw(schedule, betas=(0.8, 0.99), eps=1e-6,
                                                 estim_lr0=1e-2, weight_decay=0.05),
                                  extra=d_of),
        "dog": run(c.dog(), extra=lambda s: (s[1].max_dist, s[1].sum_sq_norm_grads)),
        "dog_distance": run(c.dog(0.5, init_step=("distance", 0.1), weight_decay=0.01,
                                  mask=mask)),
        "dog_lr": run(c.dog(schedule, init_step=("learning_rate", 0.05), eps=1e-6),
                      extra=lambda s: s[1].max_dist),
        "dowg": run(c.dowg(), extra=lambda s: s[1].estim_sq_dist),
        "dowg_tuned": run(c.dowg(0.8, init_estim_sq_dist=0.01, eps=1e-6, weight_decay=0.01)),
        "mechanize_sgd": run(c.mechanize(optax.sgd(1.0)),
                             extra=lambda s: (s.s, s.m, s.v, s.r)),
        "mechanize_adam": run(c.mechanize(optax.adam(0.5), weight_decay=0.0, s_init=1e-4,
                                          num_betas=3), extra=lambda s: s.s),
        "cocob": run(c.cocob()),
        "cocob_tuned": run(c.cocob(schedule, alpha=20.0, eps=1e-6, weight_decay=0.01,
                                   mask=mask)),
        "madgrad": run(c.madgrad(0.01)),
        "madgrad_tuned": run(c.madgrad(schedule, momentum=0.5, weight_decay=0.01, eps=1e-4)),
        "momo": run(c.momo(), with_value=True),
        "momo_tuned": run(c.momo(0.2, beta=0.8, lower_bound=0.5, weight_decay=0.01,
                                 adapt_lower_bound=True), with_value=True,
                          extra=lambda s: (s.lb, s.barf, s.gamma)),
        "momo_adam": run(c.momo_adam(), with_value=True),
        "momo_adam_tuned": run(c.momo_adam(schedule, b1=0.8, b2=0.99, eps=1e-6,
                                           lower_bound=0.5, weight_decay=0.01,
                                           adapt_lower_bound=True), with_value=True,
                               extra=lambda s: (s.lb, s.barf, s.gamma)),
    }
    return cases


def test_contrib_parameter_free_match_optax():
    got, _ = check_against_optax("test_optax_contrib_parameter_free", program,
                                 rtol=2e-4, atol=2e-5)
    for name in ("prodigy_tuned", "prodigy_safeguard", "dadapt_adamw_tuned", "dog_distance",
                 "dog_lr", "dowg_tuned", "mechanize_adam", "cocob", "cocob_tuned", "madgrad",
                 "madgrad_tuned", "momo", "momo_tuned", "momo_adam", "momo_adam_tuned"):
        assert got[f"{name}/losses"][-1] < got[f"{name}/losses"][0], name
    # the estimates only grow, from their initial under-estimates
    assert got["prodigy/extra"] >= 1e-6 and got["dadapt_adamw/extra"] >= 1e-6
    assert got["prodigy_tuned/extra"] > 1e-3
