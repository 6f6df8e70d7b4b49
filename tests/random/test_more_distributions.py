"""jax.random's further samplers (pareto, maxwell, double_sided_maxwell, weibull_min,
rayleigh, wald, geometric, triangular, orthogonal): the same key gives JAX's draws
(recorded by tools/reference/record_more_distributions.py); chisquare, f and t (built on
gamma) are checked by their moments here, and against JAX's draws in
test_gamma_streams.py."""

import os

import numpy as np
import pytest

import nanofn
from nanofn import random

HERE = os.path.dirname(os.path.abspath(__file__))
from more_distribution_cases import CASES  # noqa: E402

REF = dict(np.load(os.path.join(HERE, "data", "more_distributions_jax.npz")))


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_key_gives_jax_draws(name):
    seed, draw = CASES[name]
    got = np.asarray(draw(random, random.PRNGKey(seed)))
    ref = REF[name]
    assert got.shape == ref.shape and got.dtype == ref.dtype
    if ref.dtype.kind in "iu":
        np.testing.assert_array_equal(got, ref)
    else:
        np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-6)


def test_samplers_work_under_jit_and_vmap():
    keys = random.split(random.PRNGKey(0), 3)
    eager = np.stack([np.asarray(random.wald(k, 1.5, (4,))) for k in keys])
    np.testing.assert_allclose(nanofn.vmap(lambda k: random.wald(k, 1.5, (4,)))(keys), eager,
                               rtol=1e-6)
    np.testing.assert_allclose(nanofn.jit(lambda k: random.triangular(k, 0.0, 0.5, 1.0,
                                                                      (4,)))(keys[0]),
                               random.triangular(keys[0], 0.0, 0.5, 1.0, (4,)), rtol=1e-6)


@pytest.mark.parametrize("sampler, mean, var", [
    (lambda k: random.chisquare(k, 4.0, (20000,)), 4.0, 8.0),
    (lambda k: random.f(k, 6.0, 10.0, (20000,)), 10.0 / 8.0, None),
    (lambda k: random.t(k, 6.0, (20000,)), 0.0, 6.0 / 4.0),
])
def test_gamma_based_samplers_have_their_moments(sampler, mean, var):
    x = np.asarray(sampler(random.PRNGKey(0)), np.float64)
    assert abs(x.mean() - mean) < 0.05 * max(1.0, abs(mean))
    if var is not None:
        assert abs(x.var() - var) < 0.1 * var


def test_bad_arguments_name_the_sampler():
    with pytest.raises(ValueError, match="pareto"):
        random.pareto(random.PRNGKey(0), np.ones(3), (2,))
    with pytest.raises(ValueError, match="rayleigh: dtype"):
        random.rayleigh(random.PRNGKey(0), 1.0, (2,), dtype="int32")
