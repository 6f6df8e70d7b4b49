"""Parity checks for nanofn.scipy.special / nanofn.scipy.stats edge cases (second fuzz round).

Each expected value comes from scipy (or math) computed in the test.
"""


import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
import nanofn.scipy.special as fss
import nanofn.scipy.stats as fst

# the reference values; scipy comes with the [test] extra (CI installs it)
sps = pytest.importorskip("scipy.special", reason="needs scipy, from the [test] extra")
sst = pytest.importorskip("scipy.stats", reason="needs scipy, from the [test] extra")


@pytest.fixture(autouse=True)
def _x64():
    prev = nanofn.config.jax_enable_x64 if hasattr(nanofn.config, "jax_enable_x64") else None
    nanofn.config.update("jax_enable_x64", True)
    yield
    if prev is not None:
        nanofn.config.update("jax_enable_x64", prev)


def _close(got, want, rtol):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0)


def test_betaln_beta_large_arguments():
    a = np.array([0.5, 1.0, -0.5, 2.0, 15.0, 3.0, 9.5, -2.5, 0.1, -3.5, 20.0, 1e10])
    b = np.array([1e10, 1e10, 1e10, 1e10, 20.0, 12.0, 0.7, 10.0, 1e10, 12.0, 1e30, 1e10])
    _close(fss.betaln(fnp.asarray(a), fnp.asarray(b)), sps.betaln(a, b), 1e-13)
    keep = np.abs(sps.beta(a, b)) > 1e-300
    _close(fss.beta(fnp.asarray(a[keep]), fnp.asarray(b[keep])), sps.beta(a[keep], b[keep]), 1e-12)


def test_betaln_float32_large_argument():
    a = np.array([1.0, 0.5], np.float32)
    b = np.array([1e10, 1e10], np.float32)
    got = fss.beta(fnp.asarray(a), fnp.asarray(b))
    assert np.asarray(got).dtype == np.float32
    _close(got, sps.beta(a.astype(np.float64), b.astype(np.float64)), 1e-5)


def test_betaln_gradient_matches_digamma():
    a = np.array([0.5, 3.0, 12.0, 20.0, 1e6])
    b = np.array([15.0, 2.0, 30.0, 11.0, 1e8])
    ga, gb = nanofn.grad(lambda x, y: fnp.sum(fss.betaln(x, y)), argnums=(0, 1))(
        fnp.asarray(a), fnp.asarray(b))
    _close(ga, sps.digamma(a) - sps.digamma(a + b), 1e-9)
    _close(gb, sps.digamma(b) - sps.digamma(a + b), 1e-9)


def test_comb_and_poch_large_arguments():
    n = np.array([1e10, 1e10, 1e10, 50.0, 100.0])
    k = np.array([0.5, 3.0, 10.0, 3.0, 50.0])
    _close(fss.comb(fnp.asarray(n), fnp.asarray(k)), sps.comb(n, k), 1e-12)
    z = np.array([1e10, 1e10, 1e10, 20.0, 15.0, 12.0, 3.0])
    m = np.array([1.0, -1.0, 0.5, 2.0, -8.0, -3.5, 2.0])
    _close(fss.poch(fnp.asarray(z), fnp.asarray(m)), sps.poch(z, m), 1e-12)


def test_betainc_degenerate_parameters():
    inf = np.inf
    a = np.array([0.0, 0.0, 1.0, 2.0, inf, 1.0, inf, 0.0, inf, 2.0, 0.0])
    b = np.array([1.0, inf, 0.0, 0.0, 2.0, inf, 0.0, inf, inf, inf, 0.0])
    x = np.array([0.0, 0.0, 1.0, 1.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.0, 0.5])
    _close(fss.betainc(fnp.asarray(a), fnp.asarray(b), fnp.asarray(x)), sps.betainc(a, b, x), 0)


@pytest.mark.parametrize("name", ["xlogy", "xlog1py"])
def test_xlogy_zero_times_nan_is_nan(name):
    x = np.array([0.0, 0.0, 0.0, 1.0])
    y = np.array([np.nan, 0.0, 2.0, np.nan]) - (1.0 if name == "xlog1py" else 0.0)
    want = getattr(sps, name)(x, y)
    _close(getattr(fss, name)(fnp.asarray(x), fnp.asarray(y)), want, 1e-15)


def test_poisson_entropy_nan_rate():
    mu = np.array([np.nan, -1.0, 0.0, 5.0, 50.0])
    _close(fst.poisson.entropy(fnp.asarray(mu)), sst.poisson.entropy(mu), 1e-6)
