"""Port: JAX's `examples/gaussian_process_regression.py` (jax-ml/jax repository).

A GP with a squared-exponential kernel built by nested `vmap`, its negative marginal
likelihood through `jax.scipy.linalg.cholesky`/`solve_triangular`, hyperparameters
(softplus-transformed) fitted by `jit(grad(...))` with the example's hand-written
RMSProp-with-momentum step, and the predictive mean and variance. Changes: 100 training
steps instead of 1000, 25 test points instead of 200, values returned instead of plotted.
Data: the example's toy `sin(x)` plus noise, from `jax.random`.
"""

from functools import partial

from _jax_port import check_against_jax


def program(jax, jnp, jsp):
    random, jit, grad, vmap = jax.random, jax.jit, jax.grad, jax.vmap
    scipy = jsp
    numpts = 7
    key = random.PRNGKey(0)
    eye = jnp.eye(numpts)

    def cov_map(cov_func, xs, xs2=None):
        if xs2 is None:
            return vmap(lambda x: vmap(lambda y: cov_func(x, y))(xs))(xs)
        else:
            return vmap(lambda x: vmap(lambda y: cov_func(x, y))(xs))(xs2).T

    def softplus(x):
        return jnp.logaddexp(x, 0.)

    def exp_quadratic(x1, x2):
        return jnp.exp(-jnp.sum((x1 - x2) ** 2))

    def gp(params, x, y, xtest=None, compute_marginal_likelihood=False):
        noise = softplus(params['noise'])
        amp = softplus(params['amplitude'])
        ls = softplus(params['lengthscale'])
        ymean = jnp.mean(y)
        y = y - ymean
        x = x / ls
        train_cov = amp * cov_map(exp_quadratic, x) + eye * (noise + 1e-6)
        chol = scipy.linalg.cholesky(train_cov, lower=True)
        kinvy = scipy.linalg.solve_triangular(
            chol.T, scipy.linalg.solve_triangular(chol, y, lower=True))
        if compute_marginal_likelihood:
            log2pi = jnp.log(2. * 3.1415)
            ml = jnp.sum(
                -0.5 * jnp.dot(y.T, kinvy) -
                jnp.sum(jnp.log(jnp.diag(chol))) -
                (numpts / 2.) * log2pi)
            ml -= jnp.sum(-0.5 * jnp.log(2 * 3.1415) - jnp.log(amp) - jnp.log(amp) ** 2)
            return -ml

        if xtest is not None:
            xtest = xtest / ls
        cross_cov = amp * cov_map(exp_quadratic, x, xtest)
        mu = jnp.dot(cross_cov.T, kinvy) + ymean
        v = scipy.linalg.solve_triangular(chol, cross_cov, lower=True)
        var = (amp * cov_map(exp_quadratic, xtest) - jnp.dot(v.T, v))
        return mu, var

    marginal_likelihood = partial(gp, compute_marginal_likelihood=True)
    predict = partial(gp, compute_marginal_likelihood=False)
    grad_fun = jit(grad(marginal_likelihood))

    params = {"amplitude": jnp.zeros((1, 1)),
              "noise": jnp.zeros((1, 1)) - 5.,
              "lengthscale": jnp.zeros((1, 1))}
    momentums = dict([(k, p * 0.) for k, p in params.items()])
    scales = dict([(k, p * 0. + 1.) for k, p in params.items()])
    lr = 0.01

    def train_step(params, momentums, scales, x, y):
        grads = grad_fun(params, x, y)
        for k in params:
            momentums[k] = 0.9 * momentums[k] + 0.1 * grads[k][0]
            scales[k] = 0.9 * scales[k] + 0.1 * grads[k][0] ** 2
            params[k] -= lr * momentums[k] / jnp.sqrt(scales[k] + 1e-5)
        return params, momentums, scales

    y_fun = lambda x: jnp.sin(x) + 0.1 * random.normal(key, shape=(x.shape[0], 1))
    x = (random.uniform(key, shape=(numpts, 1)) * 4.) + 1
    y = y_fun(x)
    xtest = jnp.linspace(0, 6., 25)[:, None]

    mls = []
    for i in range(100):
        params, momentums, scales = train_step(params, momentums, scales, x, y)
        if i % 10 == 0:
            mls.append(marginal_likelihood(params, x, y))
    mu, var = predict(params, x, y, xtest)
    std = jnp.sqrt(jnp.diag(var))
    return {"x": x, "y": y, "neg_marginal_likelihood": jnp.stack(mls), "params": params,
            "mu": mu, "std": std}


def test_gaussian_process_matches_jax():
    got, _ = check_against_jax("test_jax_gaussian_process", program, rtol=2e-3, atol=2e-4,
                               overrides={"std": (2e-2, 2e-3)})
    nml = got["neg_marginal_likelihood"]
    assert nml[-1] < nml[0]
