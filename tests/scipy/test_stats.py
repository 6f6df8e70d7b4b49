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
import nanofn.numpy as fnp
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
_add("norm", LOCSCALE, (X, LOC, SCALE), (0, 1, 2))
_add("norm", ("ppf", "isf"), (Q, LOC, SCALE), (0, 1, 2))
_add("t", ("logpdf", "pdf"), (X, (0.5, 30, "log"), LOC, SCALE), (0, 1, 2, 3))
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
     _BETA_IN, rtol=1e-8)
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
