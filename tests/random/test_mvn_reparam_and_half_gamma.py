"""multivariate_normal is differentiable with respect to `cov` (the reparameterisation
trick with a full covariance, as in JAX) for every factoring method, and the gamma family
draws float16 values from JAX's float16 stream (the sampler runs in the dtype asked for).
"""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import random

COV = np.array([[2.0, 0.5, 0.1], [0.5, 1.0, -0.2], [0.1, -0.2, 0.7]])


def _sample_loss(method):
    key = random.key(3)

    def loss(mean, cov):
        x = random.multivariate_normal(key, mean, cov, (4,), method=method)
        return fnp.sum(fnp.sin(x) * fnp.arange(1.0, 4.0))
    return loss


@pytest.mark.parametrize("method", ["cholesky", "eigh", "svd"])
def test_mvn_gradient_wrt_cov_matches_finite_differences(method):
    loss = _sample_loss(method)
    mean = np.zeros(3)  # float64 numpy input: the whole computation stays float64
    g_mean, g_cov = nanofn.grad(loss, argnums=(0, 1))(mean, COV)
    assert g_cov.shape == (3, 3) and g_cov.dtype == np.float64
    eps = 1e-6
    for i in range(3):
        for j in range(i, 3):
            # a symmetric perturbation keeps cov a covariance (eigh and svd need that)
            e = np.zeros((3, 3))
            e[i, j] = e[j, i] = eps
            fd = (float(loss(mean, COV + e)) - float(loss(mean, COV - e))) / (2 * eps)
            got = g_cov[i, j] + (g_cov[j, i] if i != j else 0.0)
            np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-8)
    # the mean's gradient is the loss's gradient at each sample, summed over samples
    x = np.asarray(random.multivariate_normal(random.key(3), mean, COV, (4,), method=method))
    np.testing.assert_allclose(g_mean, (np.cos(x) * np.arange(1.0, 4.0)).sum(0), rtol=1e-10)


def test_mvn_cholesky_gradient_is_symmetric_and_jits():
    # as JAX's: the Cholesky factor reads cov's symmetric part, so the gradient is symmetric
    g = nanofn.jit(nanofn.grad(_sample_loss("cholesky"), argnums=1))(np.zeros(3), COV)
    np.testing.assert_allclose(g, np.asarray(g).T, rtol=1e-12)


def test_mvn_factor_methods_give_the_same_distribution():
    x = {m: np.asarray(random.multivariate_normal(random.key(0), np.zeros(3), COV, (20000,),
                                                  method=m)) for m in ("cholesky", "eigh", "svd")}
    for m, v in x.items():
        np.testing.assert_allclose(np.cov(v.T), COV, atol=0.05, err_msg=m)


def test_mvn_eigh_of_an_indefinite_cov_is_nan_like_jax():
    # JAX takes sqrt of the eigenvalues as they are: a negative one gives NaN, not a clip
    bad = np.array([[1.0, 2.0], [2.0, 1.0]], np.float32)
    x = random.multivariate_normal(random.key(0), np.zeros(2, np.float32), bad, method="eigh")
    assert np.isnan(np.asarray(x)).any()


# JAX 0.10's draws for these keys (jax.random.gamma/loggamma/dirichlet with float16)
JAX_GAMMA_F16 = [[0.032257080078125, 0.260986328125, 1.6865234375, 9.203125],
                 [0.004940032958984375, 2.087890625, 1.69140625, 3.08984375]]
JAX_LOGGAMMA_F16 = [[-2.23046875, 1.0791015625, 0.7314453125, 2.51171875],
                    [-1.904296875, 0.0107421875, -0.17724609375, 2.08203125]]
JAX_DIRICHLET_F16 = [[0.046875, 0.037384033203125, 0.916015625],
                     [0.001766204833984375, 0.22802734375, 0.7705078125]]


def test_float16_gamma_family_follows_jax_float16_stream():
    a = fnp.array([0.3, 1.0, 2.0, 7.5])
    g = random.gamma(random.PRNGKey(3), a, (2, 4), dtype=fnp.float16)
    lg = random.loggamma(random.PRNGKey(4), a, (2, 4), dtype=fnp.float16)
    d = random.dirichlet(random.PRNGKey(5), fnp.array([0.5, 1.0, 3.0]), (2,), dtype=fnp.float16)
    for got, ref in ((g, JAX_GAMMA_F16), (lg, JAX_LOGGAMMA_F16), (d, JAX_DIRICHLET_F16)):
        assert got.dtype == np.float16
        np.testing.assert_allclose(np.asarray(got, np.float32), ref, rtol=2e-3, atol=1e-4)


def test_float16_gamma_is_a_gamma_and_differentiable():
    x = np.asarray(random.gamma(random.key(1), 3.0, (20000,), dtype=fnp.float16), np.float64)
    assert abs(x.mean() - 3.0) < 0.05 and abs(x.var() - 3.0) < 0.15
    g = nanofn.grad(lambda a: fnp.sum(random.gamma(random.key(1), a, (8,),
                                                   dtype=fnp.float16)))(fnp.float16(3.0))
    assert g.dtype == np.float16 and np.isfinite(float(g)) and float(g) > 0
