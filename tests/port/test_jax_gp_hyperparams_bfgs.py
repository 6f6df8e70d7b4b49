"""Port: Gaussian-process regression with hyperparameters fitted by BFGS, as users write
it with `jax.scipy` (the pattern of the tinygp / "GPs from scratch in JAX" tutorials).

A Matern-5/2 plus periodic kernel built with `vmap` over pairwise differences, its
negative log marginal likelihood through `jax.scipy.linalg.cho_factor`/`cho_solve` (the
log-determinant from the Cholesky diagonal) and a log-normal prior, hyperparameters in
log space fitted by `jax.scipy.optimize.minimize(method="BFGS")` under `jit` (the prior
keeps the optimum well inside float32's reach, so both libraries stop at the same point),
and the posterior mean and variance at test points, also with `cho_solve`. The gradient
of the objective at the start is compared too, and the predictive mean's derivative in
the test input by `vmap(grad(...))`.
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, jsp):
    rs = np.random.RandomState(11)
    x = np.sort(rs.uniform(0.0, 6.0, size=24)).astype(np.float32)
    y = (np.sin(2.0 * x) + 0.3 * x + 0.1 * rs.normal(size=24)).astype(np.float32)
    x, y = jnp.asarray(x), jnp.asarray(y)
    xtest = jnp.linspace(-0.5, 6.5, 15)
    theta0 = jnp.log(jnp.array([1.0, 1.0, 0.5, 3.0, 0.1]))

    def kernel(theta, a, b):
        amp, ls, per_amp, period, _ = jnp.exp(theta)
        r = jnp.abs(a - b) / ls
        sqrt5r = jnp.sqrt(5.0) * r
        matern = amp * (1.0 + sqrt5r + 5.0 / 3.0 * r ** 2) * jnp.exp(-sqrt5r)
        periodic = per_amp * jnp.exp(-2.0 * jnp.sin(3.14159265 * (a - b) / period) ** 2)
        return matern + periodic

    def gram(theta, a, b):
        return jax.vmap(lambda ai: jax.vmap(lambda bj: kernel(theta, ai, bj))(b))(a)

    def nll(theta):
        noise = jnp.exp(theta[4])
        k = gram(theta, x, x) + (noise + 1e-5) * jnp.eye(x.shape[0])
        c, lower = jsp.linalg.cho_factor(k, lower=True)
        alpha = jsp.linalg.cho_solve((c, lower), y)
        logdet = 2.0 * jnp.sum(jnp.log(jnp.diag(c)))
        data_fit = 0.5 * y @ alpha + 0.5 * logdet + 0.5 * x.shape[0] * jnp.log(2 * 3.14159265)
        return data_fit + 0.5 * jnp.sum((theta - theta0) ** 2)  # a log-normal prior

    result = jax.jit(lambda t: jsp.optimize.minimize(nll, t, method="BFGS",
                                                     options={"maxiter": 40}))(theta0)
    theta = result.x

    def predict(theta, xs):
        noise = jnp.exp(theta[4])
        k = gram(theta, x, x) + (noise + 1e-5) * jnp.eye(x.shape[0])
        factor = jsp.linalg.cho_factor(k)
        ks = gram(theta, x, xs)
        mean = ks.T @ jsp.linalg.cho_solve(factor, y)
        var = jnp.diag(gram(theta, xs, xs)) - jnp.sum(ks * jsp.linalg.cho_solve(factor, ks), 0)
        return mean, var

    mean, var = predict(theta, xtest)
    slope = jax.vmap(jax.grad(lambda t: predict(theta, t[None])[0][0]))(xtest)
    return {"nll0": nll(theta0), "grad0": jax.grad(nll)(theta0), "nll_opt": result.fun,
            "theta": theta, "mean": mean,
            "std": jnp.sqrt(jnp.maximum(var, 0.0)), "slope": slope}


def test_gp_hyperparams_bfgs_matches_jax():
    got, ref = check_against_jax("test_jax_gp_hyperparams_bfgs", program, rtol=2e-3,
                                 atol=2e-4,
                                 overrides={"theta": (5e-3, 2e-3), "mean": (5e-3, 2e-3),
                                            "std": (2e-2, 2e-3), "slope": (5e-3, 5e-3),
                                            "nll_opt": (1e-3, 1e-3)})
    assert got["nll_opt"] < got["nll0"]
