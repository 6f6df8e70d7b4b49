"""nanofn.scipy.stats and nanofn.scipy.optimize against values recorded from JAX 0.10.2
(tools/reference/record_stats_parity.py writes data/stats_jax_parity.json; JAX is not
needed here).

What these pin down, each once found to differ from JAX:
* beta, gamma, chi2 cdf/sf/logcdf/logsf are NaN for a shape <= 0 (or NaN) and for a NaN
  standardised point (a NaN x, or 0/0 at scale = 0); beta's pdf/logpdf are NaN at a NaN x;
  pareto's logpdf is NaN at b = 0 with scale < 0; gennorm's cdf is NaN for beta <= 0.
  Only cases where JAX agrees with scipy are held to JAX (see the recorder's docstring).
* mode passes over NaN entries, and its results take JAX's default dtypes under x64.
* rankdata's ranks are float64 under x64; minimize's status and counters are int64 there.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.scipy import optimize, stats

with open(os.path.join(os.path.dirname(__file__), "data", "stats_jax_parity.json")) as f:
    DATA = json.load(f)


def _arr(values):
    return np.array([float(v) for v in values], dtype=np.float64)


CASES = DATA["distributions"]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['dist']}.{c['fn']}" for c in CASES])
def test_distribution_edges_match_jax(case, x64):
    args = [fnp.asarray(_arr(a)) for a in case["args"]]
    got = np.asarray(getattr(getattr(stats, case["dist"]), case["fn"])(*args))
    want = _arr(case["jax"])
    held = np.array(case["agrees_with_scipy"])
    assert held.sum() > 0.5 * held.size
    ok = np.isclose(got, want, rtol=1e-7, atol=1e-12, equal_nan=True) | ~held
    bad = np.flatnonzero(~ok)
    assert bad.size == 0, [([a[i] for a in case["args"]], want[i], got[i]) for i in bad[:5]]


@pytest.mark.parametrize("name,fn,shape", [("beta", "cdf", (2.0, 3.0)),
                                           ("gamma", "sf", (2.0,)), ("chi2", "logcdf", (3.0,))])
def test_invalid_shapes_are_nan_in_float32(name, fn, shape, x32):
    f = getattr(getattr(stats, name), fn)
    bad = tuple(np.float32(0.0) for _ in shape)
    out = f(fnp.asarray(np.array([-1.0, 0.3, 5.0], np.float32)), *bad)
    assert out.dtype == np.float32 and np.isnan(np.asarray(out)).all()
    assert not np.isnan(np.asarray(f(np.float32(0.3), *shape)))


@settings(max_examples=25, deadline=None)
@given(a=st.floats(-3, 3), b=st.floats(-3, 3), x=st.floats(-0.5, 1.5))
def test_beta_cdf_nan_exactly_for_bad_shapes(a, b, x):
    out = float(stats.beta.cdf(np.float64(x), np.float64(a), np.float64(b)))
    assert np.isnan(out) == (a <= 0 or b <= 0)


def _fd(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("f,x", [
    (lambda v: stats.beta.cdf(v, 2.0, 3.0), 0.3),
    (lambda v: stats.beta.sf(v, 2.0, 3.0, 0.1, 2.0), 0.7),
    (lambda v: stats.gamma.cdf(1.3, v), 2.5),
    (lambda v: stats.gamma.logsf(v, 2.5, 0.1, 2.0), 1.3),
    (lambda v: stats.chi2.cdf(1.3, v), 3.0),
    (lambda v: stats.pareto.logpdf(2.5, v, 0.2, 1.5), 3.0),
    (lambda v: stats.pareto.logpdf(2.5, 3.0, 0.2, v), 1.5),
    (lambda v: stats.gennorm.cdf(-0.7, v), 1.5),
    (lambda v: stats.truncnorm.logcdf(v, -1.0, 2.0, 0.1, 1.5), 0.3),
])
def test_touched_gradients_match_finite_differences(f, x, x64):
    g = float(nanofn.grad(f)(np.float64(x)))
    fd = _fd(lambda v: float(f(np.float64(v))), x)
    assert np.isclose(g, fd, rtol=1e-5, atol=1e-8), (g, fd)


def test_truncnorm_nan_point_is_nan(x64):
    # scipy's answer (JAX gives 1 here); nanofn keeps scipy's
    for fn in ("cdf", "sf", "logcdf", "logsf"):
        assert np.isnan(float(getattr(stats.truncnorm, fn)(np.nan, -1.0, 1.0)))
        assert np.isnan(float(getattr(stats.truncnorm, fn)(0.0, -1.0, 1.0, 0.0, 0.0)))


@pytest.mark.parametrize("case", DATA["mode_x64"], ids=lambda c: f"{c['a']}-{c['axis']}")
def test_mode_matches_jax_x64(case, x64):
    a = np.array(case["a"], dtype=object)
    a = np.vectorize(float)(a).astype(case["dtype"]) if a.size else np.array([], case["dtype"])
    m, c = stats.mode(fnp.asarray(a), axis=case["axis"])
    assert str(m.dtype) == case["mode_dtype"] and str(c.dtype) == case["count_dtype"]
    np.testing.assert_array_equal(np.ravel(np.asarray(m)),
                                  np.array(case["mode"], dtype=np.float64))
    np.testing.assert_array_equal(np.ravel(np.asarray(c)), np.array(case["count"]))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([1.0, 2.0, 3.0, np.nan]), min_size=1, max_size=8))
def test_mode_ignores_nan_like_scipy(values):
    a = np.array(values)
    m, c = stats.mode(fnp.asarray(a))
    finite = a[~np.isnan(a)]
    if finite.size == 0:
        assert np.isnan(float(m)) and int(c) == a.size
        return
    vals, counts = np.unique(finite, return_counts=True)
    assert float(m) == vals[np.argmax(counts)] and int(c) == counts.max()


@pytest.mark.parametrize("case", DATA["rankdata_x64"], ids=lambda c: c["dtype"])
def test_rankdata_dtype_matches_jax_x64(case, x64):
    r = stats.rankdata(fnp.asarray(np.array(case["a"], dtype=case["dtype"])))
    assert str(r.dtype) == case["out_dtype"]
    np.testing.assert_array_equal(np.asarray(r), case["ranks"])


def test_rankdata_and_mode_stay_32_bit_without_x64(x32):
    assert stats.rankdata(fnp.asarray(np.array([3, 1, 2], np.int32))).dtype == np.float32
    _, c = stats.mode(fnp.asarray(np.array([3, 1, 3], np.int32)))
    assert c.dtype == np.int32


def test_minimize_bfgs_matches_jax_x64(x64):
    ref = DATA["minimize_bfgs_x64"]

    def quad(x, a):
        return fnp.sum((x - a) ** 2 * fnp.arange(1, x.shape[0] + 1))

    res = optimize.minimize(quad, fnp.asarray(np.array(ref["x0"])),
                            args=(fnp.asarray(np.array(ref["a"])),), method="BFGS")
    for field, dtype in ref["dtypes"].items():
        assert str(getattr(res, field).dtype) == dtype, field
    np.testing.assert_allclose(np.asarray(res.x), ref["x"], atol=1e-6)
    assert bool(res.success) == ref["success"] and int(res.status) == ref["status"]


def test_minimize_counters_are_int32_without_x64(x32):
    res = optimize.minimize(lambda x: fnp.sum(x ** 2), fnp.ones(2, dtype=fnp.float32),
                            method="l-bfgs-experimental-do-not-rely-on-this")
    for field in ("status", "nfev", "njev", "nit"):
        assert getattr(res, field).dtype == np.int32, field
