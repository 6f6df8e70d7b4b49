"""gamma, loggamma, beta, dirichlet, generalized_normal, ball, chisquare, f, t, poisson,
binomial and multinomial give JAX's draws for the same key, with `jax_enable_x64` off and
on (recorded by tools/reference/record_gamma_streams.py from the cases in
tools/reference/gamma_stream_cases.py): shapes, broadcasting parameters, small and large
gamma shapes, poisson rates on both sides of 10, binomial n and p on both sides of
n * min(p, 1 - p) = 10, under jit and vmap over keys.

Counts (poisson, binomial, multinomial) must be equal. Gamma-based floats may differ in
the last bits: the accepted rounds are the same, but numpy's log and rsqrt are not XLA's,
so a sample is JAX's to a few ulp (a loggamma near 0 to a few ulp of its terms)."""

import os

import numpy as np
import pytest

import nanofn
from nanofn import random

HERE = os.path.dirname(os.path.abspath(__file__))
from gamma_stream_cases import CASES  # noqa: E402

REF = dict(np.load(os.path.join(HERE, "data", "gamma_streams_jax.npz")))
COUNTS = ("poisson", "binomial", "multinomial")


@pytest.fixture(params=["x32", "x64"])
def mode(request):
    """Each test runs with `jax_enable_x64` off ("x32") and on ("x64")."""
    before = nanofn.config.read("jax_enable_x64")
    nanofn.config.update("jax_enable_x64", request.param == "x64")
    try:
        yield request.param
    finally:
        nanofn.config.update("jax_enable_x64", before)


def test_every_case_is_recorded_in_both_modes():
    assert sorted(REF) == sorted(f"{m}/{name}" for m in ("x32", "x64") for name in CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_key_gives_jax_draws(mode, name):
    seed, draw = CASES[name]
    got = np.asarray(draw(random, random.PRNGKey(seed)))
    ref = REF[f"{mode}/{name}"]
    assert (got.shape, got.dtype) == (ref.shape, ref.dtype)
    if ref.dtype.kind in "biu" or name.startswith(COUNTS):
        np.testing.assert_array_equal(got, ref)
    elif ref.dtype == np.float64:
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)
    else:
        np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-6)


def test_tiny_shapes_underflow_to_zero_like_jax():
    # XLA flushes subnormal results to zero; so does the sampler, so gamma(0.01) has JAX's
    # exact zeros (and their gradient is 0, as in JAX)
    ref = REF["x32/gamma_tiny_a"]
    got = np.asarray(CASES["gamma_tiny_a"][1](random, random.PRNGKey(7)))
    assert (ref == 0).any()
    np.testing.assert_array_equal(got == 0, ref == 0)
    assert not (np.abs(got[got != 0]) < np.finfo(np.float32).tiny).any()


def test_gamma_under_jit_and_vmap_gives_the_eager_draws():
    key = random.PRNGKey(3)
    a = np.array([0.2, 1.0, 4.0], np.float32)
    eager = np.asarray(random.gamma(key, a, (2, 3)))
    np.testing.assert_array_equal(nanofn.jit(lambda k: random.gamma(k, a, (2, 3)))(key), eager)
    keys = random.split(key, 3)
    rows = np.stack([np.asarray(random.loggamma(k, a)) for k in keys])
    np.testing.assert_array_equal(nanofn.vmap(lambda k: random.loggamma(k, a))(keys), rows)


def test_rates_and_counts_where_jax_would_not_return():
    # JAX's rejection loops never end for an infinite poisson rate, or for n = inf with
    # p in {0, 1}; here they give -1 and inf, and the other elements keep JAX's draws
    key = random.PRNGKey(7)
    x = np.asarray(random.poisson(key, np.array([np.inf, 3.0])))
    assert x[0] == -1 and x[1] == np.asarray(random.poisson(key, np.array([1e9, 3.0])))[1]
    b = np.asarray(random.binomial(key, np.array([np.inf, np.inf, 10.0]),
                                   np.array([0.0, 0.3, 0.5])))
    assert b[0] == np.inf and b[1] == np.inf and 0 <= b[2] <= 10
