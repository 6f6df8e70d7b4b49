"""Port: optax's L-BFGS guide (docs/_collections/examples/lbfgs.ipynb, google-deepmind/optax).

The guide's `run_opt` loop: `optax.value_and_grad_from_state(fun)` gives the value and
gradient (reused from the line search when it stored them), then
`opt.update(grad, state, params, value=value, grad=grad, value_fn=fun)`. The guide
runs it in `jax.lax.while_loop`; here it is a Python loop of 5 or 6 steps (past those the
gradient norm is at float32 rounding level and the two libraries' roundings differ).
The objectives: a quadratic plus a quartic term, and the guide's Rosenbrock function
(20 steps; its curved valley amplifies float32 rounding, so its gradient norms are
compared at rtol 5e-3). Optimizers: `optax.lbfgs()` with its default zoom line search,
and with
`optax.scale_by_backtracking_linesearch(max_backtracking_steps=20, store_grad=True)` as
the guide's section on other line searches shows. Checked against optax: the values,
gradient norms, line-search step counts and the final parameters.
"""

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    rs = np.random.RandomState(5)
    a = rs.normal(size=(6, 6)).astype(np.float32)
    mat = (a @ a.T / 6 + np.eye(6)).astype(np.float32)
    vec = rs.normal(size=(6,)).astype(np.float32)

    def fun(w):
        return 0.5 * jnp.dot(w, mat @ w) - jnp.dot(vec, w) + 0.05 * jnp.sum(w ** 4)

    def run_opt(init_params, fun, opt, max_iter):
        value_and_grad_fun = optax.value_and_grad_from_state(fun)
        params, state = init_params, opt.init(init_params)
        values, grad_norms, steps = [], [], []
        for _ in range(max_iter):
            value, grad = value_and_grad_fun(params, state=state)
            updates, state = opt.update(grad, state, params, value=value, grad=grad,
                                        value_fn=fun)
            params = optax.apply_updates(params, updates)
            values.append(value)
            grad_norms.append(optax.tree.norm(grad))
            steps.append(optax.tree.get(state, "num_linesearch_steps"))
        return {"values": jnp.stack(values), "grad_norms": jnp.stack(grad_norms),
                "linesearch_steps": jnp.stack(steps), "params": params}

    def rosenbrock(w):
        return jnp.sum(100.0 * (w[1:] - w[:-1] ** 2) ** 2 + (1.0 - w[:-1]) ** 2)

    backtracking = optax.lbfgs(linesearch=optax.scale_by_backtracking_linesearch(
        max_backtracking_steps=20, store_grad=True))
    return {"zoom": run_opt(jnp.zeros(6), fun, optax.lbfgs(), max_iter=6),
            "backtracking": run_opt(jnp.zeros(6), fun, backtracking, max_iter=5),
            "rosenbrock": run_opt(jnp.zeros(4), rosenbrock, optax.lbfgs(), max_iter=20)}


def test_lbfgs_matches_optax():
    got, _ = check_against_optax("test_optax_lbfgs", program, rtol=1e-3, atol=1e-4,
                                     overrides={"rosenbrock/grad_norms": (5e-3, 1e-4)})
    for name in ("zoom", "backtracking"):
        assert got[f"{name}/grad_norms"][-1] < 1e-2 * got[f"{name}/grad_norms"][0]
    assert got["rosenbrock/values"][-1] < 0.05 * got["rosenbrock/values"][0]
