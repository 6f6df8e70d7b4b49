"""Port: JAX's `examples/kernel_lsq.py` (jax-ml/jax repository).

Kernel least squares: the Gram matrix by nested `vmap`, a regularized objective
minimized with `optimizers.momentum` under `jit(grad(...))`, and the learned predictor
`jit(vmap(predict))`, for the example's linear kernel and an RBF kernel. Changes: n=40,
d=8 (the example: 100 and 20), 300 steps with step size 1e-5 instead of 10000 with 1e-6, and
the kernel's `precision=lax.Precision.HIGH` dropped (float32 matmuls on CPU are full
precision in both). Data from numpy's seeded generator, as in the example.
"""

from functools import partial

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, optimizers):
    jit, grad, vmap = jax.jit, jax.grad, jax.vmap

    def gram(kernel, xs):
        return vmap(lambda x: vmap(lambda y: kernel(x, y))(xs))(xs)

    def minimize(f, x, num_steps=300, step_size=1e-5, mass=0.9):
        opt_init, opt_update, get_params = optimizers.momentum(step_size, mass)

        @jit
        def update(i, opt_state):
            x = get_params(opt_state)
            return opt_update(i, grad(f)(x), opt_state)

        opt_state = opt_init(x)
        for i in range(num_steps):
            opt_state = update(i, opt_state)
        return get_params(opt_state)

    def train(kernel, xs, ys, regularization=0.01):
        gram_ = jit(partial(gram, kernel))
        gram_mat = gram_(xs)
        n = xs.shape[0]

        def objective(v):
            risk = .5 * jnp.sum((jnp.dot(gram_mat, v) - ys) ** 2.)
            reg = regularization * jnp.sum(v ** 2.)
            return risk + reg

        v = minimize(objective, jnp.zeros(n))

        def predict(x):
            prods = vmap(lambda x_: kernel(x, x_))(xs)
            return jnp.sum(v * prods)

        return jit(vmap(predict)), objective(v), v

    n, d = 40, 8
    rng = np.random.RandomState(0)
    truth = rng.randn(d).astype(np.float32)
    xs = rng.randn(n, d).astype(np.float32)
    ys = (np.dot(xs, truth) + 0.1 * rng.randn(n)).astype(np.float32)
    linear_kernel = lambda x, y: jnp.dot(x, y)
    predict, objective, v = train(linear_kernel, xs, ys)
    rbf_kernel = lambda x, y: jnp.exp(-0.1 * jnp.sum((x - y) ** 2))
    predict_rbf, objective_rbf, _ = train(rbf_kernel, xs, ys)
    return {"v": v, "objective": objective, "pred": predict(xs[:10]),
            "mse": jnp.mean((predict(xs) - ys) ** 2), "objective_rbf": objective_rbf,
            "pred_rbf": predict_rbf(xs[:10])}


def test_kernel_lsq_matches_jax():
    got, _ = check_against_jax("test_jax_kernel_lsq", program, rtol=2e-3, atol=2e-4)
    assert np.isfinite(got["objective"]) and got["mse"] < 1.0
