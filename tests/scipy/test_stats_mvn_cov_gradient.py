"""multivariate_normal.logpdf factors the symmetric part of `cov`, as JAX does
(`lax.linalg.cholesky` with its default `symmetrize_input=True`): the gradient with
respect to `cov` is the symmetric matrix `-(S^-1 - S^-1 d d^T S^-1) / 2`, not a
triangular split of it, and a non-symmetric `cov` is read as `(cov + cov^T) / 2`."""

import numpy as np

import nanofn
from nanofn.scipy import stats

COV = np.array([[2.0, 0.5, 0.1], [0.5, 1.0, -0.2], [0.1, -0.2, 0.7]])
X = np.array([[0.3, -1.0, 0.5], [1.2, 0.4, -0.3]])
MEAN = np.array([0.1, 0.0, -0.2])


def test_cov_gradient_is_the_symmetric_analytic_one():
    g = nanofn.grad(lambda c: stats.multivariate_normal.logpdf(X, MEAN, c).sum())(COV)
    inv = np.linalg.inv(COV)
    want = sum(-0.5 * (inv - inv @ np.outer(x - MEAN, x - MEAN) @ inv) for x in X)
    np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-12)


def test_cov_gradient_batched_under_jit_and_vmap():
    covs = np.stack([COV, 2 * COV])
    f = nanofn.jit(nanofn.vmap(nanofn.grad(
        lambda c: stats.multivariate_normal.logpdf(X[0], MEAN, c))))
    g = np.asarray(f(covs))
    np.testing.assert_allclose(g, np.swapaxes(g, -1, -2), rtol=1e-12)


def test_non_symmetric_cov_reads_its_symmetric_part():
    skew = np.array([[0.0, 0.3, 0.0], [-0.3, 0.0, 0.1], [0.0, -0.1, 0.0]])
    np.testing.assert_allclose(stats.multivariate_normal.logpdf(X, MEAN, COV + skew),
                               stats.multivariate_normal.logpdf(X, MEAN, COV), rtol=1e-12)
