"""Gradients of gamma samples with respect to the shape (implicit reparameterisation):
`random_gamma_grad` against the identity that defines it, and the gamma-based samplers'
average gradients against the derivatives of their means."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import random
from nanofn.scipy.special import gammainc


@pytest.mark.parametrize("a", [0.2, 0.9, 1.0, 2.5, 40.0])
def test_random_gamma_grad_keeps_the_cdf_fixed(a):
    # x(a) = F^-1(u; a) with u fixed: F(x + g h; a + h) = F(x; a) to first order in h
    x = np.array([0.05, 0.7, 2.0, 0.8 * a + 1.0, 1.5 * a + 3.0])
    g = np.asarray(random.random_gamma_grad(np.full_like(x, a), x))
    h = 1e-6
    moved = np.asarray(gammainc(a + h, x + g * h)) - np.asarray(gammainc(a - h, x - g * h))
    scale = np.asarray(gammainc(a + h, x)) - np.asarray(gammainc(a - h, x))
    assert np.all(np.abs(moved) <= 1e-3 * np.maximum(np.abs(scale), 1e-12))


def _mean_grad(sample, a, n=20000):
    keys = random.split(random.PRNGKey(3), n)
    grads = nanofn.vmap(nanofn.grad(lambda a, k: sample(k, a)), in_axes=(None, 0))(
        np.float64(a), keys)
    grads = np.asarray(grads, np.float64)
    return grads.mean(), grads.std() / np.sqrt(n)


@pytest.mark.parametrize("a", [0.4, 3.0])
def test_gamma_and_loggamma_gradients_average_to_the_derivative_of_the_mean(a):
    mean, err = _mean_grad(lambda k, a: random.gamma(k, a, dtype=np.float64), a)
    assert abs(mean - 1.0) < 5 * err  # E[x] = a
    # E[log x] = digamma(a): its derivative is the trigamma function
    from nanofn.scipy.special import polygamma
    mean, err = _mean_grad(lambda k, a: random.loggamma(k, a, dtype=np.float64), a)
    assert abs(mean - float(polygamma(1, a))) < 5 * err


def test_beta_and_dirichlet_gradients_average_to_the_derivative_of_the_mean():
    a, b = 1.5, 2.5
    mean, err = _mean_grad(lambda k, a: random.beta(k, a, b, dtype=np.float64), a)
    assert abs(mean - b / (a + b) ** 2) < 5 * err  # d/da a / (a + b)
    mean, err = _mean_grad(lambda k, a: random.dirichlet(
        k, fnp.stack([a, fnp.asarray(b)]), dtype=np.float64)[0], a)
    assert abs(mean - b / (a + b) ** 2) < 5 * err


def test_gamma_gradient_under_jit_vmap_and_jvp():
    key = random.PRNGKey(0)

    def f(a):
        return random.gamma(key, a, (4,), dtype=np.float64)
    eager = np.asarray(nanofn.jacfwd(f)(2.0))
    np.testing.assert_allclose(np.asarray(nanofn.jit(nanofn.jacrev(f))(2.0)), eager)
    x = np.asarray(f(2.0))
    np.testing.assert_allclose(eager, np.asarray(random.random_gamma_grad(2.0, x)),
                               rtol=1e-12)
    assert np.all(np.isfinite(eager)) and np.all(eager > 0)
