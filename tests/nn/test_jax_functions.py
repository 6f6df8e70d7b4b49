"""jax.nn's remaining activations (mish, squareplus, log1mexp, logmeanexp, sparse_plus,
sparse_sigmoid, tanh): values against their formulas in float64 numpy, gradients
against finite differences."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import nn
from nanofn.testing import check_grads

X = np.array([-3.0, -1.5, -0.5, 0.0, 0.3, 0.7, 1.5, 2.5])


def _softplus(x):
    return np.logaddexp(x, 0.0)


FORMULAS = {
    "tanh": np.tanh,
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "squareplus": lambda x: (x + np.sqrt(x * x + 4)) / 2,
    "sparse_plus": lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1) ** 2 / 4)),
    "sparse_sigmoid": lambda x: np.clip((x + 1) / 2, 0.0, 1.0),
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_values_and_grads(name):
    f = getattr(nn, name)
    np.testing.assert_allclose(f(fnp.asarray(X, "float64")), FORMULAS[name](X), rtol=1e-12,
                               atol=1e-14)
    assert f(fnp.asarray(X, "float32")).dtype == np.float32
    smooth = X[np.abs(np.abs(X) - 1) > 0.1]  # away from sparse_* kinks at +-1
    check_grads(f, (fnp.asarray(smooth, "float64"),), order=2 if "sparse" not in name else 1)


def test_log1mexp_accurate_at_both_ends():
    x = np.array([1e-6, 1e-3, 0.5, 2.0, 30.0])
    # float64 references: log(-expm1(-x)) is accurate for small x, log1p(-exp(-x)) for
    # large x (and the series -exp(-x) - exp(-2x)/2 agrees with it at x = 30)
    expect = np.where(x < 1, np.log(-np.expm1(-x)), np.log1p(-np.exp(-x)))
    np.testing.assert_allclose(expect[-1], -np.exp(-30.0) - np.exp(-60.0) / 2, rtol=1e-12)
    np.testing.assert_allclose(nn.log1mexp(fnp.asarray(x, "float64")), expect, rtol=1e-12)
    np.testing.assert_allclose(nn.log1mexp(fnp.asarray(x, "float32")), expect, rtol=1e-5)
    check_grads(nn.log1mexp, (fnp.asarray([0.2, 1.0, 3.0], "float64"),), order=2)


def test_logmeanexp_axis_where_keepdims():
    a = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 50.0]])
    ref = np.log(np.mean(np.exp(a), axis=1))
    np.testing.assert_allclose(nn.logmeanexp(fnp.asarray(a, "float64"), axis=1), ref,
                               rtol=1e-12)
    np.testing.assert_allclose(nn.logmeanexp(fnp.asarray(a, "float64")),
                               np.log(np.mean(np.exp(a))), rtol=1e-12)
    assert nn.logmeanexp(fnp.asarray(a), axis=0, keepdims=True).shape == (1, 3)
    mask = np.array([[True, True, False], [True, False, True]])
    ref_w = [np.log(np.mean(np.exp(r[m]))) for r, m in zip(a, mask)]
    np.testing.assert_allclose(nn.logmeanexp(fnp.asarray(a, "float64"), axis=1, where=mask),
                               ref_w, rtol=1e-12)
    g = nanofn.grad(lambda v: nn.logmeanexp(v))(fnp.asarray(a[0], "float64"))
    np.testing.assert_allclose(g, np.exp(a[0]) / np.exp(a[0]).sum(), rtol=1e-12)
