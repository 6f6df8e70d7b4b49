"""nanofn.scipy.stats against scipy.stats, from one table: values at hypothesis-drawn points
over broadcasting shapes, jit against eager, the vmap law, and derivatives against finite
differences (check_grads, float64) inside each distribution's support; then the
multivariate distributions, the tails, the sample statistics and gaussian_kde."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import pytest
import scipy.stats as ss
from hypothesis import given, settings, strategies as st

import nanofn
from nanofn.scipy import stats
from nanofn.testing import broadcastable_shapes, check_grads


class Spec(NamedTuple):
    fn: Callable
    ref: Callable
    domains: tuple          # one (lo, hi, kind) per argument; kind: "u" uniform, "log", "int"
    diff: tuple = ()        # arguments with a derivative
    grad_domains: tuple = None  # domains inside the support, for the gradient checks
    rtol: float = 1e-9
    order: int = 1


def _draw(rng, shape, dom):
    lo, hi, kind = dom
    if kind == "log":
        return np.exp(rng.uniform(np.log(lo), np.log(hi), size=shape))
    if kind == "int":
        return rng.integers(lo, hi + 1, size=shape).astype(np.float64)
    return rng.uniform(lo, hi, size=shape)


X, LOC, SCALE = (-6, 6, "u"), (-2, 2, "u"), (0.5, 3, "log")
Q, POS, PROB = (0.01, 0.99, "u"), (0.3, 20, "log"), (0.02, 0.98, "u")
INSIDE = (2.5, 12, "u")  # above loc + scale for LOC, SCALE: inside half-line supports
SPECS = {}


def _add(dist, methods, domains, diff, grad_domains=None, ref=None, **kw):
    for m in methods:
        SPECS[f"{dist}.{m}"] = Spec(getattr(getattr(stats, dist), m),
                                    getattr(getattr(ref or ss, dist), m), domains,
                                    diff, grad_domains, **kw)


LOCSCALE = ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")
_add("norm", LOCSCALE, (X, LOC, SCALE), (0, 1, 2), order=2)
_add("norm", ("ppf", "isf"), (Q, LOC, SCALE), (0, 1, 2))
_add("t", ("logpdf", "pdf"), (X, (0.5, 30, "log"), LOC, SCALE), (0, 1, 2, 3), order=2)
_add("cauchy", LOCSCALE, (X, LOC, SCALE), (0, 1, 2))
_add("cauchy", ("ppf", "isf"), (Q, LOC, SCALE), (0, 1, 2))
_add("logistic", ("logpdf", "pdf", "cdf", "sf"), (X, LOC, SCALE), (0, 1, 2))
_add("logistic", ("ppf", "isf"), (Q, LOC, SCALE), (0, 1, 2))
_add("laplace", ("logpdf", "pdf", "cdf"), (X, LOC, SCALE), (0, 1, 2),
     ((2.5, 6, "u"), LOC, SCALE))
_add("expon", ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"), (X, LOC, SCALE), (0, 1, 2),
     (INSIDE, LOC, SCALE))
_add("expon", ("ppf",), (Q, LOC, SCALE), (0, 1, 2))
_add("uniform", ("logpdf", "pdf"), (X, LOC, SCALE), (2,),
     ((-0.9, 0.9, "u"), (-2, -1, "u"), (2, 3, "u")))
_add("uniform", ("cdf",), (X, LOC, SCALE), (0, 1, 2),
     ((-0.9, 0.9, "u"), (-2, -1, "u"), (2, 3, "u")))
_add("uniform", ("ppf",), (Q, LOC, SCALE), (0, 1, 2))
for _g in ("gumbel_l", "gumbel_r"):
    _add(_g, LOCSCALE, (X, LOC, SCALE), (0, 1, 2), rtol=1e-8)
    _add(_g, ("ppf",), (Q, LOC, SCALE), (0, 1, 2))
_add("pareto", ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"),
     ((-1, 20, "u"), POS, LOC, SCALE), (0, 1, 2, 3), ((5.5, 20, "u"), POS, LOC, SCALE))
_add("pareto", ("ppf",), (Q, POS, LOC, SCALE), (0, 1, 2, 3))
_add("gamma", LOCSCALE, ((-3, 25, "u"), POS, LOC, SCALE), (0, 1, 2, 3),
     (INSIDE, (0.5, 10, "log"), LOC, SCALE), rtol=1e-8)
_add("chi2", LOCSCALE, ((-3, 25, "u"), POS, LOC, SCALE), (0, 1, 2, 3),
     (INSIDE, (0.5, 10, "log"), LOC, SCALE), rtol=1e-8)
_BETA_IN = ((-1.4, 2.4, "u"), (0.5, 8, "log"), (0.5, 8, "log"), (-2, -1.5, "u"), (4, 5, "u"))
_add("beta", ("logpdf", "pdf"), ((-2.5, 5.5, "u"), POS, POS, LOC, SCALE), (0, 1, 2, 3, 4),
     _BETA_IN, rtol=1e-8, order=2)
# betainc has no derivative in a, b (as in JAX): only x, loc and scale
_add("beta", ("cdf", "logcdf", "sf", "logsf"), ((-2.5, 5.5, "u"), POS, POS, LOC, SCALE),
     (0, 3, 4), _BETA_IN, rtol=1e-8)
_add("gennorm", ("logpdf", "pdf", "cdf"), (X, (0.5, 4, "log")), (0, 1),
     ((0.2, 3, "u"), (0.5, 4, "log")), rtol=1e-8)
_add("vonmises", ("logpdf", "pdf"), ((-10, 10, "u"), (0.1, 50, "log")), (0, 1))
_add("wrapcauchy", ("logpdf", "pdf"), ((-1, 7, "u"), (0.01, 0.99, "u")), (0, 1),
     ((0.1, 6.1, "u"), (0.01, 0.99, "u")))
_add("truncnorm", LOCSCALE, (X, (-4, 0.5, "u"), (0.6, 5, "u"), LOC, SCALE), (0, 1, 2, 3, 4),
     ((-0.5, 0.5, "u"), (-4, -1, "u"), (1, 4, "u"), (-0.1, 0.1, "u"), (0.9, 1.1, "u")),
     rtol=1e-8)
ZERO = (0, 0, "int")
_add("bernoulli", ("logpmf", "pmf"), ((-1, 2, "int"), PROB, (-1, 1, "int")), (1,),
     ((0, 1, "int"), PROB, ZERO))
_add("bernoulli", ("cdf",), ((-1, 2, "u"), PROB), (1,), ((0.1, 0.9, "u"), PROB))
_add("bernoulli", ("ppf",), (Q, PROB), ())
_add("binom", ("logpmf", "pmf"), ((-1, 12, "int"), (0, 10, "int"), PROB, (-1, 1, "int")), (2,),
     ((0, 5, "int"), (5, 10, "int"), PROB, ZERO))
_add("betabinom", ("logpmf", "pmf"),
     ((-1, 12, "int"), (0, 10, "int"), POS, POS, (-1, 1, "int")), (2, 3),
     ((0, 5, "int"), (5, 10, "int"), POS, POS, ZERO))
_add("geom", ("logpmf", "pmf"), ((-1, 12, "int"), PROB, (-1, 1, "int")), (1,),
     ((1, 10, "int"), PROB, ZERO))
_add("nbinom", ("logpmf", "pmf"), ((-1, 12, "int"), (0.5, 10, "log"), PROB, (-1, 1, "int")),
     (1, 2), ((0, 10, "int"), (0.5, 10, "log"), PROB, ZERO), rtol=1e-8)
_add("poisson", ("logpmf", "pmf", "cdf"), ((-1, 25, "int"), POS, (-1, 1, "int")), (1,),
     ((0, 20, "int"), POS, ZERO), rtol=1e-8)


def _case(data, domains):
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    shapes = data.draw(broadcastable_shapes(len(domains), max_dims=2, max_side=4))
    return [_draw(rng, s, d) for s, d in zip(shapes, domains)]


def _close(got, want, rtol):
    got = np.asarray(got)
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-300, equal_nan=True)


def test_every_jax_distribution_and_method_is_here():
    # recorded from jax.scipy.stats 0.10 (every public method of every distribution)
    jax_methods = {
        "bernoulli": "cdf logpmf pmf ppf", "beta": "cdf logcdf logpdf logsf pdf sf",
        "betabinom": "logpmf pmf", "binom": "logpmf pmf",
        "cauchy": "cdf isf logcdf logpdf logsf pdf ppf sf",
        "chi2": "cdf logcdf logpdf logsf pdf sf", "dirichlet": "logpdf pdf",
        "expon": "cdf logcdf logpdf logsf pdf ppf sf", "gamma": "cdf logcdf logpdf logsf pdf sf",
        "gennorm": "cdf logpdf pdf", "geom": "logpmf pmf",
        "gumbel_l": "cdf logcdf logpdf logsf pdf ppf sf",
        "gumbel_r": "cdf logcdf logpdf logsf pdf ppf sf", "laplace": "cdf logpdf pdf",
        "logistic": "cdf isf logpdf pdf ppf sf", "multinomial": "logpmf pmf",
        "multivariate_normal": "logpdf pdf", "nbinom": "logpmf pmf",
        "norm": "cdf isf logcdf logpdf logsf pdf ppf sf",
        "pareto": "cdf logcdf logpdf logsf pdf ppf sf", "poisson": "cdf entropy logpmf pmf",
        "t": "logpdf pdf", "truncnorm": "cdf logcdf logpdf logsf pdf sf",
        "uniform": "cdf logpdf pdf ppf", "vonmises": "logpdf pdf", "wrapcauchy": "logpdf pdf"}
    for dist, methods in jax_methods.items():
        module = getattr(stats, dist)
        assert sorted(module.__all__) == methods.split(), dist
    assert {"mode", "rankdata", "sem", "gaussian_kde"} <= set(stats.__all__)


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_values_match_scipy(name, data):
    spec = SPECS[name]
    args = _case(data, spec.domains)
    with np.errstate(all="ignore"):
        want = spec.ref(*args)
    got = spec.fn(*args)
    assert np.asarray(got).dtype == np.float64
    _close(got, want, spec.rtol)
    # float32 in, float32 out
    assert np.asarray(spec.fn(*[a.astype(np.float32) for a in args])).dtype == np.float32


@pytest.mark.parametrize("name", sorted(SPECS))
def test_jit_and_vmap_agree_with_eager(name):
    spec = SPECS[name]
    rng = np.random.default_rng(0)
    args = [_draw(rng, (3, 2), d) for d in spec.grad_domains or spec.domains]
    eager = np.asarray(spec.fn(*args))
    np.testing.assert_allclose(np.asarray(nanofn.jit(spec.fn)(*args)), eager, rtol=1e-12,
                               equal_nan=True)
    stacked = np.stack([np.asarray(spec.fn(*[a[i] for a in args])) for i in range(3)])
    np.testing.assert_allclose(np.asarray(nanofn.vmap(spec.fn)(*args)), stacked, rtol=1e-12,
                               equal_nan=True)


@pytest.mark.parametrize("name", sorted(n for n in SPECS if SPECS[n].diff))
@settings(max_examples=4)
@given(data=st.data())
def test_derivatives_match_finite_differences(name, data):
    spec = SPECS[name]
    args = _case(data, spec.grad_domains or spec.domains)
    diff = spec.diff

    def f(*dargs):
        full = list(args)
        for i, v in zip(diff, dargs):
            full[i] = v
        return spec.fn(*full)
    check_grads(f, tuple(args[i] for i in diff), order=spec.order, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------ multivariate


@given(data=st.data())
def test_multivariate_normal_matches_scipy_with_batches(data):
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    n = data.draw(st.integers(1, 3), label="n")
    batch = data.draw(st.sampled_from([(), (1,), (4,), (2, 3)]), label="batch")
    a = rng.normal(size=(n, n))
    cov = a @ a.T + n * np.eye(n)
    mean = rng.normal(size=(n,))
    x = rng.normal(size=batch + (n,))
    want = np.reshape(ss.multivariate_normal.logpdf(x, mean, cov), batch)  # scipy squeezes
    _close(stats.multivariate_normal.logpdf(x, mean, cov), want, 1e-10)
    _close(stats.multivariate_normal.pdf(x, mean, cov), np.exp(want), 1e-10)
    # a scalar covariance is cov * I; a 0-d mean is the one-dimensional case
    _close(stats.multivariate_normal.logpdf(x, mean, 2.0),
           np.reshape(ss.multivariate_normal.logpdf(x, mean, 2.0 * np.eye(n)), batch), 1e-10)
    _close(stats.multivariate_normal.logpdf(x[..., 0], mean[0], 2.0),
           ss.norm.logpdf(x[..., 0], mean[0], np.sqrt(2.0)), 1e-10)


def test_multivariate_normal_batched_covariances_gradients_jit_and_vmap():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2, 3, 3))
    covs = a @ np.swapaxes(a, -1, -2) + 3 * np.eye(3)
    means, x = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    got = np.asarray(stats.multivariate_normal.logpdf(x, means, covs))
    want = [ss.multivariate_normal.logpdf(x[i], means[i], covs[i]) for i in range(2)]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(nanofn.vmap(stats.multivariate_normal.logpdf)(
        x, means, covs)), want, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(nanofn.jit(stats.multivariate_normal.logpdf)(
        x, means, covs)), want, rtol=1e-10)
    check_grads(lambda x, m, c: stats.multivariate_normal.logpdf(x, m, c @ c.T + np.eye(3)),
                (x[0], means[0], a[0]), order=2, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="cov"):
        stats.multivariate_normal.logpdf(x, means, np.eye(2))
    with pytest.raises(NotImplementedError, match="allow_singular"):
        stats.multivariate_normal.logpdf(x, means, covs, allow_singular=True)


def test_dirichlet_matches_scipy_and_has_gradients():
    rng = np.random.default_rng(4)
    alpha = np.array([0.7, 2.0, 3.5])
    x = rng.dirichlet(alpha, size=5).T  # components along axis 0
    want = [ss.dirichlet.logpdf(x[:, i], alpha) for i in range(5)]
    _close(stats.dirichlet.logpdf(x, alpha), np.array(want), 1e-10)
    _close(stats.dirichlet.logpdf(x[:2], alpha), np.array(want), 1e-10)  # k - 1 components
    _close(stats.dirichlet.pdf(x[:, 0], alpha), ss.dirichlet.pdf(x[:, 0], alpha), 1e-10)
    assert float(stats.dirichlet.logpdf(np.array([0.5, 0.6, -0.1]), alpha)) == -np.inf
    check_grads(lambda a: stats.dirichlet.logpdf(x, a), (alpha,), order=2, rtol=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        stats.dirichlet.logpdf(x, alpha[None])
    with pytest.raises(ValueError, match="x.shape"):
        stats.dirichlet.logpdf(x[:1], alpha)


def test_multinomial_matches_scipy_and_has_gradients():
    p = np.array([0.2, 0.3, 0.5])
    counts = np.array([[1, 2, 3], [0, 0, 6], [2, 2, 1]])
    want = ss.multinomial.logpmf(counts, 6, p)
    got = np.asarray(stats.multinomial.logpmf(counts, 6, p))
    np.testing.assert_allclose(got[:2], want[:2], rtol=1e-10)
    assert got[2] == -np.inf  # the counts add up to 5, not 6
    _close(stats.multinomial.pmf(counts[0], 6, p), ss.multinomial.pmf(counts[0], 6, p), 1e-10)
    check_grads(lambda p: stats.multinomial.logpmf(counts[0], 6, p), (p,), order=2, rtol=1e-5)
    with pytest.raises(ValueError, match="integer"):
        stats.multinomial.logpmf(counts.astype(float), 6, p)


def test_poisson_entropy_matches_the_sum():
    mu = np.array([0.0, 0.5, 3.0, 9.9, 10.0, 42.0, 99.0, 100.0, 1e4])
    # the defining sum, far enough into both tails (scipy's own entropy() stops short at 1e4)
    want = []
    for m in mu:
        k = np.arange(0, int(m + 40 * np.sqrt(m) + 100))
        logp = ss.poisson.logpmf(k, m)
        want.append(-np.sum(np.exp(logp) * logp) if m > 0 else 0.0)
    # JAX's algorithm: truncated sums below 100, the asymptotic series above (error ~1e-6)
    np.testing.assert_allclose(np.asarray(stats.poisson.entropy(mu)), want, rtol=2e-6)
    assert stats.poisson.entropy(mu, np.zeros((2, 1))).shape == (2, mu.size)
    check_grads(stats.poisson.entropy, (np.array([0.5, 3.0, 42.0, 500.0]),), order=1,
                rtol=1e-5)


# ------------------------------------------------------------------------ tails and edges


def test_far_tails_stay_finite_and_accurate():
    x = np.array([-40.0, -10.0, 10.0, 40.0])
    _close(stats.norm.logcdf(x), ss.norm.logcdf(x), 1e-12)
    _close(stats.norm.logsf(x), ss.norm.logsf(x), 1e-12)
    _close(stats.norm.cdf(np.array([-np.inf, np.inf])), np.array([0.0, 1.0]), 0)
    # a truncated normal cut far out in the tail: masses computed in logs
    for a, b in ((5.0, 8.0), (-8.0, -5.0), (30.0, 31.0)):
        z = np.linspace(a, b, 5)[1:-1]
        _close(stats.truncnorm.logpdf(z, a, b), ss.truncnorm.logpdf(z, a, b), 1e-8)
        _close(stats.truncnorm.cdf(z, a, b), ss.truncnorm.cdf(z, a, b), 1e-8)
    _close(stats.gumbel_r.logsf(np.array([-3.0, 40.0])), ss.gumbel_r.logsf([-3.0, 40.0]), 1e-12)
    _close(stats.gamma.logsf(np.array([1e-9]), 2.0), ss.gamma.logsf([1e-9], 2.0), 1e-9)
    _close(stats.gennorm.cdf(np.array([-9.0]), 1.5), ss.gennorm.cdf([-9.0], 1.5), 1e-9)
    # Cauchy quantiles at and near both ends (tan(pi (q - 1/2)) gave +-1.6e16 at 0 and 1)
    q = np.array([0.0, 1e-10, 0.3, 0.5, 1 - 1e-10, 1.0, 1.5, -0.1])
    for fn in ("ppf", "isf"):
        got, want = getattr(stats.cauchy, fn)(q, 1.0, 2.0), getattr(ss.cauchy, fn)(q, 1.0, 2.0)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9)


def test_invalid_parameters_give_nan_as_jax():
    assert np.isnan(float(stats.beta.logpdf(0.5, -1.0, 2.0)))
    assert np.isnan(float(stats.truncnorm.logpdf(0.0, 1.0, -1.0)))
    assert np.isnan(float(stats.vonmises.logpdf(0.0, -1.0)))
    assert np.isnan(float(stats.wrapcauchy.logpdf(1.0, 1.5)))
    assert np.isnan(float(stats.gumbel_l.logpdf(0.0, 0.0, -1.0)))
    assert np.isnan(float(stats.expon.ppf(1.5)))
    assert np.isnan(float(stats.bernoulli.cdf(0.5, 1.5)))
    assert np.isnan(float(stats.betabinom.logpmf(1, -2, 1.0, 1.0)))
    assert np.isnan(np.asarray(stats.poisson.entropy(np.array([-3.0, -0.5])))).all()


# (distribution function, extra arguments, points outside the support or on its edge)
_OUTSIDE = [
    (stats.chi2.cdf, (0.6,), [-3.0, -0.5, 0.0]), (stats.chi2.sf, (0.6,), [-3.0, 0.0]),
    (stats.chi2.logcdf, (0.6,), [-3.0, 0.0]), (stats.chi2.logsf, (1.5,), [-3.0, 0.0]),
    (stats.gamma.cdf, (0.5,), [-3.0, 0.0]), (stats.gamma.sf, (0.5,), [-3.0, 0.0]),
    (stats.gamma.logcdf, (0.5,), [-3.0, 0.0]), (stats.gamma.logsf, (0.5,), [-3.0]),
    (stats.beta.cdf, (0.5, 0.7), [-1.0, 0.0, 1.0, 2.0]),
    (stats.beta.sf, (0.5, 0.7), [-1.0, 0.0, 1.0, 2.0]),
    (stats.beta.logcdf, (0.5, 0.7), [-1.0, 0.0]), (stats.beta.logsf, (0.5, 0.7), [1.0, 2.0]),
    (stats.truncnorm.cdf, (1.5, 2.0), [-3.0, 1.5, 2.0, 7.0]),
    (stats.truncnorm.sf, (1.5, 2.0), [-3.0, 1.5, 2.0, 7.0]),
    (stats.truncnorm.logcdf, (1.5, 2.0), [-3.0, 1.5, 2.0, 7.0]),
    (stats.truncnorm.logsf, (1.5, 2.0), [-3.0, 1.5, 2.0, 7.0]),
]


@pytest.mark.parametrize("fn, params, xs", _OUTSIDE,
                         ids=[f"{f.__module__.rsplit('.', 1)[1]}.{f.__name__}"
                              for f, _, _ in _OUTSIDE])
def test_gradients_outside_the_support_are_zero(fn, params, xs):
    # The function is constant there (0, 1, -inf or 0 in logs), so every derivative is 0;
    # the distribution function's own derivative at the support's edge is often infinite
    # (the incomplete gamma's at 0 when a < 1), and must not meet the zero passed back.
    xs = np.array(xs)
    # betainc has no derivative in its parameters: beta's are checked in x only
    for argnum in range(1 if fn.__module__.endswith(".beta") else 1 + len(params)):
        grads = nanofn.vmap(nanofn.grad(fn, argnums=argnum))(
            xs, *[np.full_like(xs, p) for p in params])
        np.testing.assert_array_equal(np.asarray(grads), 0.0, err_msg=f"argument {argnum}")
    # and the values stay scipy's
    ref = getattr(getattr(ss, fn.__module__.rsplit(".", 1)[1]), fn.__name__)(xs, *params)
    np.testing.assert_allclose(np.asarray(fn(xs, *params)), ref, rtol=1e-12)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="norm.logpdf: `scale`"):
        stats.norm.logpdf(0.0, 0.0, "one")
    with pytest.raises(TypeError, match="gamma.cdf: `a`"):
        stats.gamma.cdf(1.0, None)


def test_python_scalars_and_int_arrays_give_float32_as_jax():
    assert np.asarray(stats.norm.logpdf(1)).dtype == np.float32
    assert np.asarray(stats.poisson.logpmf(np.arange(3), 2)).dtype == np.float32
    assert np.asarray(stats.norm.logpdf(np.float64(1.0))).dtype == np.float64


# ------------------------------------------------------------------------ sample statistics


@given(data=st.data())
def test_mode_rankdata_and_sem_match_scipy(data):
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    shape = data.draw(st.sampled_from([(5,), (3, 4), (2, 3, 4)]), label="shape")
    x = rng.integers(0, 4, size=shape).astype(np.float64)  # many ties
    axis = data.draw(st.sampled_from([None] + list(range(-len(shape), len(shape)))), label="ax")
    keepdims = data.draw(st.booleans(), label="keepdims")
    got, want = stats.mode(x, axis=axis, keepdims=keepdims), ss.mode(x, axis=axis,
                                                                       keepdims=keepdims)
    _close(got.mode, want.mode, 0)
    _close(got.count, want.count, 0)
    for method in ("average", "min", "max", "dense", "ordinal"):
        _close(stats.rankdata(x, method, axis=axis), ss.rankdata(x, method, axis=axis), 0)
    ddof = data.draw(st.integers(0, 1), label="ddof")
    _close(stats.sem(x, axis=axis, ddof=ddof, keepdims=keepdims),
           ss.sem(x, axis=axis, ddof=ddof, keepdims=keepdims), 1e-12)


def test_sample_statistics_edges_jit_and_gradients():
    x = np.array([3.0, np.nan, 1.0, 2.0])
    assert np.isnan(np.asarray(stats.rankdata(x))).all()
    _close(stats.sem(x, nan_policy="omit"), ss.sem(x, nan_policy="omit"), 1e-12)
    y = np.array([[2.0, 1.0, 2.0], [0.5, 0.5, 3.0]])
    np.testing.assert_array_equal(np.asarray(nanofn.jit(lambda v: stats.rankdata(v, axis=1))(y)),
                                  ss.rankdata(y, axis=1))
    np.testing.assert_array_equal(np.asarray(nanofn.vmap(lambda v: stats.mode(v).mode)(y)),
                                  ss.mode(y, axis=1).mode)
    check_grads(lambda v: stats.sem(v, axis=1), (y,), order=2)
    with pytest.raises(ValueError, match="method"):
        stats.rankdata(y, "first")
    with pytest.raises(NotImplementedError, match="omit"):
        stats.mode(y, nan_policy="omit")


# ------------------------------------------------------------------------ gaussian_kde


def test_gaussian_kde_matches_scipy():
    rng = np.random.default_rng(5)
    data1, data2 = rng.normal(size=20), rng.normal(size=(2, 30))
    w = rng.uniform(0.5, 2.0, size=30)
    pts1, pts2 = rng.normal(size=7), rng.normal(size=(2, 7))
    for data, pts, kw in ((data1, pts1, {}), (data2, pts2, {}),
                          (data2, pts2, {"weights": w, "bw_method": "silverman"}),
                          (data1, pts1, {"bw_method": 0.3})):
        ours, ref = stats.gaussian_kde(data, **kw), ss.gaussian_kde(data, **kw)
        _close(ours.covariance, ref.covariance, 1e-10)
        _close(ours.evaluate(pts), ref.evaluate(pts), 1e-10)
        _close(ours(pts), ref(pts), 1e-10)
        _close(ours.logpdf(pts), ref.logpdf(pts), 1e-10)
        _close(ours.integrate_kde(ours), ref.integrate_kde(ref), 1e-10)
        d = ours.d
        _close(ours.integrate_gaussian(np.zeros(d), np.eye(d)),
               ref.integrate_gaussian(np.zeros(d), np.eye(d)), 1e-10)
    ours, ref = stats.gaussian_kde(data1), ss.gaussian_kde(data1)
    _close(ours.integrate_box_1d(-0.5, 1.0), ref.integrate_box_1d(-0.5, 1.0), 1e-10)
    assert ours.resample(nanofn.random.key(0), (4,)).shape == (1, 4)
    # a pytree: through jit and grad (in the data and the points)
    f = nanofn.jit(lambda kde, p: kde.logpdf(p))
    _close(f(ours, pts1), ref.logpdf(pts1), 1e-10)
    check_grads(lambda d, p: stats.gaussian_kde(d).logpdf(p), (data1, pts1), order=1,
                rtol=1e-5)
