"""Port: optax's L-BFGS guide (docs/_collections/examples/lbfgs.ipynb, google-deepmind/optax).

The guide's `run_opt` loop: `optax.value_and_grad_from_state(fun)` gives the value and
gradient (reused from the line search when it stored them), then
`opt.update(grad, state, params, value=value, grad=grad, value_fn=fun)`. The guide
runs it in `jax.lax.while_loop`; here it is a Python loop of 7 steps (past those the
gradient norm is at float32 rounding level and the two libraries' roundings differ).
The objective is the guide's: a quadratic plus a quartic term. Changes: nanofn has no
zoom line search yet, so the optimizer is `optax.lbfgs(linesearch=
optax.scale_by_backtracking_linesearch(max_backtracking_steps=20, store_grad=True))`,
as the guide's section on other line searches shows. Checked against optax: the values,
gradient norms and the final parameters.
"""

import numpy as np

from _optax_port import check_against_reference


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
        values, grad_norms = [], []
        for _ in range(max_iter):
            value, grad = value_and_grad_fun(params, state=state)
            updates, state = opt.update(grad, state, params, value=value, grad=grad,
                                        value_fn=fun)
            params = optax.apply_updates(params, updates)
            values.append(value)
            grad_norms.append(optax.tree.norm(grad))
        return {"values": jnp.stack(values), "grad_norms": jnp.stack(grad_norms),
                "params": params}

    opt = optax.lbfgs(linesearch=optax.scale_by_backtracking_linesearch(
        max_backtracking_steps=20, store_grad=True))
    return run_opt(jnp.zeros(6), fun, opt, max_iter=7)


def test_lbfgs_matches_optax():
    got, _ = check_against_reference("test_optax_lbfgs", program, rtol=1e-3, atol=1e-4)
    assert got["grad_norms"][-1] < 1e-2 * got["grad_norms"][0]
