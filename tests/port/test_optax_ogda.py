"""Port: optax's optimistic gradient descent example (docs/_collections/examples/ogda_example.ipynb).

The notebook's bilinear min-max game ``f(x, y) = x * y``: plain gradient
descent-ascent spirals away from the equilibrium while
`optax.optimistic_gradient_descent` converges to it. As in the notebook, x descends
and y ascends (its gradient is negated). Also `optax.optimistic_adam_v2` on the same
game. Checked against optax: both trajectories of (x, y) over 40 steps.
"""

from _jax_port import check_against_optax


def program(jax, jnp, optax):
    def f(params):
        return params["x"] * params["y"]

    def run(opt, steps=40):
        params = {"x": jnp.asarray(1.0), "y": jnp.asarray(1.0)}
        state = opt.init(params)
        xs, ys = [], []
        for _ in range(steps):
            grads = jax.grad(f)(params)
            grads = {"x": grads["x"], "y": -grads["y"]}  # y maximises
            updates, state = opt.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            xs.append(params["x"])
            ys.append(params["y"])
        return {"x": jnp.stack(xs), "y": jnp.stack(ys)}

    return {"gda": run(optax.sgd(0.1)),
            "ogda": run(optax.optimistic_gradient_descent(0.1)),
            "oadam": run(optax.optimistic_adam_v2(0.05, alpha=1.0, beta=1.0))}


def test_ogda_matches_optax():
    got, _ = check_against_optax("test_optax_ogda", program)
    r = lambda name: got[f"{name}/x"][-1] ** 2 + got[f"{name}/y"][-1] ** 2  # noqa: E731
    assert r("ogda") < 2.0 < r("gda")  # from radius^2 = 2: OGDA spirals in, GDA out
