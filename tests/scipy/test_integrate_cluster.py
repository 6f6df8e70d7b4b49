"""nanofn.scipy.integrate.trapezoid against scipy's (values, gradients by check_grads)
and nanofn.scipy.cluster.vq.vq against scipy's and JAX's recorded results."""

import json
import os

import numpy as np
import pytest
import scipy.cluster.vq
import scipy.integrate

import nanofn
import nanofn.numpy as fnp
from nanofn.scipy import cluster, integrate
from nanofn.testing import check_grads

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference")
from sciopt_cases import VQ  # noqa: E402

with open(os.path.join(HERE, "sciopt_jax.json")) as fh:
    JAX_VQ = json.load(fh)["vq"]

rng = np.random.default_rng(1)
Y = rng.normal(size=(3, 5))
X1 = np.cumsum(rng.uniform(0.1, 1.0, size=5))
X2 = np.cumsum(rng.uniform(0.1, 1.0, size=(3, 5)), axis=1)


@pytest.mark.parametrize("kwargs", [{}, {"dx": 0.3}, {"x": X1}, {"x": X2}, {"axis": 0},
                                    {"x": X1[:3], "axis": 0}])
def test_trapezoid_matches_scipy(kwargs):
    got = integrate.trapezoid(fnp.asarray(Y), **{k: fnp.asarray(v) if k == "x" else v
                                                  for k, v in kwargs.items()})
    np.testing.assert_allclose(np.asarray(got), scipy.integrate.trapezoid(Y, **kwargs),
                               rtol=1e-12)


def test_trapezoid_grads_and_jit():
    y, x = fnp.asarray(Y), fnp.asarray(X1)
    check_grads(lambda y, x: integrate.trapezoid(y, x), (y, x), order=2)
    dx = fnp.asarray(0.7, dtype=fnp.float64)
    check_grads(lambda y, dx: integrate.trapezoid(y, dx=dx, axis=0), (y, dx), order=1)
    jitted = nanofn.jit(lambda y, x: integrate.trapezoid(y, x))(y, x)
    np.testing.assert_allclose(np.asarray(jitted), scipy.integrate.trapezoid(Y, X1),
                               rtol=1e-12)


@pytest.mark.parametrize("name", sorted(VQ))
def test_vq_matches_scipy_and_jax(name):
    obs, book = VQ[name]
    codes, dists = cluster.vq.vq(fnp.asarray(obs), fnp.asarray(book))
    want_codes, want_dists = scipy.cluster.vq.vq(obs, book)
    assert codes.dtype == fnp.int32 and codes.shape == (obs.shape[0],)
    np.testing.assert_array_equal(np.asarray(codes), want_codes)
    np.testing.assert_allclose(np.asarray(dists), want_dists, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(codes), JAX_VQ[name]["codes"])
    np.testing.assert_allclose(np.asarray(dists), JAX_VQ[name]["dists"], rtol=1e-12)


def test_vq_ties_grads_and_errors():
    codes, dists = cluster.vq.vq(fnp.array([[1.0, 0.0]]), fnp.array([[0.0, 0.0], [2.0, 0.0]]))
    assert int(codes[0]) == 0 and float(dists[0]) == 1.0   # the first of equal distances
    obs, book = (fnp.asarray(a) for a in VQ["rows"])
    check_grads(lambda o, b: cluster.vq.vq(o, b)[1], (obs, book), order=1)
    with pytest.raises(ValueError, match="same number of dimensions"):
        cluster.vq.vq(fnp.zeros((2, 3)), fnp.zeros(3))
    with pytest.raises(ValueError, match="same number of features"):
        cluster.vq.vq(fnp.zeros((2, 3)), fnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        cluster.vq.vq(fnp.zeros((2, 3, 1)), fnp.zeros((4, 3, 1)))
