"""Port: Gaussian-process binary classification with the Laplace approximation
(Rasmussen & Williams, *Gaussian Processes for Machine Learning*, algorithms 3.1 and
3.2), written in JAX as users write it from the book.

The mode of the posterior over latent values is found by Newton's method in a
`lax.fori_loop`, each step factorising `B = I + W^1/2 K W^1/2` with
`jax.scipy.linalg.cho_factor` and solving with `cho_solve`; the approximate log marginal
likelihood uses `jax.scipy.linalg.cholesky`/`solve_triangular`. Its gradient w.r.t. the
kernel hyperparameters (log length-scale, log amplitude) comes from `jax.grad` through
the whole Newton loop and is compared with central finite differences; a few gradient-
ascent steps fit the hyperparameters, and predictions use the probit approximation of the
averaged sigmoid.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax, jsp):
    cho_factor, cho_solve = jsp.linalg.cho_factor, jsp.linalg.cho_solve
    solve_triangular = jsp.linalg.solve_triangular

    k_x, k_flip = jax.random.split(jax.random.key(3))
    x = jax.random.uniform(k_x, (30, 2), minval=-2.0, maxval=2.0)
    margin = x[:, 0] ** 2 + 0.5 * x[:, 1] - 1.0
    flip = jax.random.bernoulli(k_flip, 0.1, (30,))
    y = jnp.where(jnp.logical_xor(margin > 0, flip), 1.0, -1.0)

    def kernel(params, a, b):
        log_ell, log_amp = params
        d2 = jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, -1)
        return jnp.exp(2 * log_amp) * jnp.exp(-0.5 * d2 / jnp.exp(2 * log_ell))

    def find_mode(k, y, n_iter=15):
        n = y.shape[0]

        def newton(_, f):
            pi = jax.nn.sigmoid(f)
            grad = (y + 1) / 2 - pi
            w = pi * (1 - pi)
            sw = jnp.sqrt(w)
            b = jnp.eye(n) + sw[:, None] * k * sw[None, :]
            cf = cho_factor(b, lower=True)
            rhs = w * f + grad
            a = rhs - sw * cho_solve(cf, sw * (k @ rhs))
            return k @ a

        return lax.fori_loop(0, n_iter, newton, jnp.zeros(n))

    def log_marginal(params, x, y):
        k = kernel(params, x, x) + 1e-6 * jnp.eye(x.shape[0])
        f = find_mode(k, y)
        pi = jax.nn.sigmoid(f)
        w = pi * (1 - pi)
        sw = jnp.sqrt(w)
        chol = jsp.linalg.cholesky(jnp.eye(x.shape[0]) + sw[:, None] * k * sw[None, :],
                                   lower=True)
        # a = K^-1 f through the triangular factor of K (stable for a small jitter).
        lk = jsp.linalg.cholesky(k, lower=True)
        a = solve_triangular(lk.T, solve_triangular(lk, f, lower=True), lower=False)
        log_lik = jnp.sum(jax.nn.log_sigmoid(y * f))
        return log_lik - 0.5 * f @ a - jnp.sum(jnp.log(jnp.diag(chol))), f

    def predict(params, x, y, x_star):
        k = kernel(params, x, x) + 1e-6 * jnp.eye(x.shape[0])
        f = find_mode(k, y)
        pi = jax.nn.sigmoid(f)
        sw = jnp.sqrt(pi * (1 - pi))
        chol = jsp.linalg.cholesky(jnp.eye(x.shape[0]) + sw[:, None] * k * sw[None, :],
                                   lower=True)
        k_star = kernel(params, x, x_star)
        mean = k_star.T @ ((y + 1) / 2 - pi)
        v = solve_triangular(chol, sw[:, None] * k_star, lower=True)
        var = jnp.exp(2 * params[1]) - jnp.sum(v ** 2, 0)
        # MacKay's probit approximation of E[sigmoid(f*)].
        return jax.nn.sigmoid(mean / jnp.sqrt(1 + jnp.pi * var / 8)), mean, var

    params0 = jnp.array([0.0, 0.5])
    lml_and_grad = jax.jit(jax.value_and_grad(lambda p: log_marginal(p, x, y)[0]))
    lml0, g0 = lml_and_grad(params0)
    eps = 1e-2
    fd = jnp.stack([(log_marginal(params0 + eps * e, x, y)[0]
                     - log_marginal(params0 - eps * e, x, y)[0]) / (2 * eps)
                    for e in jnp.eye(2)])

    def ascent(params, _):
        val, g = lml_and_grad(params)
        return params + 0.05 * g, val

    params, trace = lax.scan(ascent, params0, None, length=15)
    _, f_mode = log_marginal(params, x, y)
    grid = jnp.stack(jnp.meshgrid(jnp.linspace(-2, 2, 5), jnp.linspace(-2, 2, 5)), -1)
    probs, mean, var = jax.jit(predict)(params, x, y, grid.reshape(-1, 2))
    train_probs, _, _ = predict(params, x, y, x)
    accuracy = jnp.mean((train_probs > 0.5) == (y > 0))
    return {"y": y, "lml0": lml0, "grad0": g0, "grad_fd": fd, "lml_trace": trace,
            "params": params, "f_mode": f_mode, "probs": probs, "pred_mean": mean,
            "pred_var": var, "train_accuracy": accuracy}


def test_gp_laplace_matches_jax():
    got, _ = check_against_jax("test_jax_ml_gp_laplace", program, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got["grad0"], got["grad_fd"], rtol=2e-2, atol=2e-2)
    assert got["lml_trace"][-1] > got["lml_trace"][0]
    assert got["train_accuracy"] > 0.75
    assert np.all(got["pred_var"] > 0)
