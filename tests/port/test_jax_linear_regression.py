"""Port: the linear regression of JAX's "Stateful computations" tutorial (jax-ml/jax,
docs/stateful-computations.md: "Simple worked example: Linear Regression").

Params as a NamedTuple, `init` from split keys, the mean squared error `loss`, and a
jitted `update` that applies `grad` with `tree_util.tree_map`; data from `jax.random`
as in the tutorial. Change: 200 updates instead of 1000 (the fit has converged), and
`jax.tree_util.tree_map` for the tutorial's `jax.tree.map` (both exist in both).
"""

from typing import NamedTuple

from _jax_port import check_against_jax


class Params(NamedTuple):
    weight: object
    bias: object


def program(jax, jnp):
    def init(rng):
        weights_key, bias_key = jax.random.split(rng)
        weight = jax.random.normal(weights_key, ())
        bias = jax.random.normal(bias_key, ())
        return Params(weight, bias)

    def loss(params, x, y):
        pred = params.weight * x + params.bias
        return jnp.mean((pred - y) ** 2)

    LEARNING_RATE = 0.005

    @jax.jit
    def update(params, x, y):
        grad = jax.grad(loss)(params, x, y)
        return jax.tree_util.tree_map(lambda param, g: param - g * LEARNING_RATE,
                                      params, grad)

    rng = jax.random.PRNGKey(42)
    true_w, true_b = 2, -1
    x_rng, noise_rng = jax.random.split(rng)
    xs = jax.random.normal(x_rng, (128, 1))
    noise = jax.random.normal(noise_rng, (128, 1)) * 0.5
    ys = xs * true_w + true_b + noise

    params = init(rng)
    out = {"init": params, "xs_head": xs[:5, 0], "ys_head": ys[:5, 0]}
    losses = []
    for i in range(200):
        params = update(params, xs, ys)
        if i % 20 == 0:
            losses.append(loss(params, xs, ys))
    out["losses"] = jnp.stack(losses)
    out["final"] = params
    out["tree_map_via_tree"] = jax.tree.map(lambda p: p * 2, params)
    return out


def test_linear_regression_matches_jax():
    got, _ = check_against_jax("test_jax_linear_regression", program, rtol=5e-4, atol=5e-5)
    assert got["losses"][-1] < got["losses"][0]
