"""poisson, binomial and multinomial: their distributions against scipy.stats (a
chi-square test on fixed keys), shapes, dtypes, jit/vmap and bad arguments. That the same
key gives JAX's draws is checked in test_gamma_streams.py."""

import numpy as np
import pytest
import scipy.stats as st

import nanofn
from nanofn import random


def _chisquare_pvalue(x, pmf_dist, lo, hi):
    """Chi-square goodness of fit of integer samples `x` over the cells lo..hi, with the
    two tails lumped into the end cells."""
    ks = np.arange(lo, hi + 1)
    expected = pmf_dist.pmf(ks)
    expected[0] += pmf_dist.cdf(lo - 1)
    expected[-1] += pmf_dist.sf(hi)
    observed = np.bincount(np.clip(x.astype(np.int64), lo, hi) - lo, minlength=len(ks))
    return st.chisquare(observed, expected * len(x)).pvalue


@pytest.mark.parametrize("lam, lo, hi", [(0.7, 0, 4), (4.0, 0, 10), (30.0, 18, 44),
                                         (250.0, 215, 285)])
def test_poisson_matches_scipy(lam, lo, hi):
    x = np.asarray(random.poisson(random.PRNGKey(1), lam, (6000,)))
    assert x.dtype == np.int32 and x.min() >= 0
    assert _chisquare_pvalue(x, st.poisson(lam), lo, hi) > 1e-3


@pytest.mark.parametrize("n, p, lo, hi", [(6, 0.3, 0, 6), (40, 0.1, 0, 10),
                                          (100, 0.35, 22, 48), (200, 0.8, 145, 175)])
def test_binomial_matches_scipy(n, p, lo, hi):
    x = np.asarray(random.binomial(random.PRNGKey(2), n, p, (6000,)))
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= n
    assert np.all(x == np.round(x))
    assert _chisquare_pvalue(x, st.binom(n, p), lo, hi) > 1e-3


def test_parameters_broadcast_and_edge_values():
    lam = np.array([0.0, 2.0, 50.0])
    assert random.poisson(random.PRNGKey(0), lam).shape == (3,)
    assert int(random.poisson(random.PRNGKey(0), lam)[0]) == 0
    b = np.asarray(random.binomial(random.PRNGKey(0), np.array([5.0, 7.0]), np.array([0.0, 1.0])))
    np.testing.assert_array_equal(b, [0.0, 7.0])
    assert random.binomial(random.PRNGKey(0), 10, 0.5, (4, 2)).shape == (4, 2)


def test_multinomial_counts_sum_to_n_and_have_the_right_means():
    p = np.array([0.1, 0.2, 0.7])
    c = np.asarray(random.multinomial(random.PRNGKey(3), 20, p, shape=(3000, 3)))
    assert c.shape == (3000, 3) and c.dtype == np.float32
    np.testing.assert_array_equal(c.sum(-1), 20.0)
    np.testing.assert_allclose(c.mean(0), 20 * p, atol=0.15)
    np.testing.assert_allclose(c.var(0), 20 * p * (1 - p), rtol=0.1)


def test_jit_and_vmap_give_the_eager_draws():
    keys = random.split(random.PRNGKey(0), 2)
    eager = np.stack([np.asarray(random.poisson(k, 3.0, (4,))) for k in keys])
    np.testing.assert_array_equal(nanofn.vmap(lambda k: random.poisson(k, 3.0, (4,)))(keys),
                                  eager)
    np.testing.assert_array_equal(
        nanofn.jit(lambda k: random.binomial(k, 30, 0.4, (4,)))(keys[0]),
        random.binomial(keys[0], 30, 0.4, (4,)))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="poisson: dtype"):
        random.poisson(random.PRNGKey(0), 1.0, (2,), dtype="float32")
    with pytest.raises(ValueError, match="binomial"):
        random.binomial(random.PRNGKey(0), np.ones(3), 0.5, (2,))
    with pytest.raises(ValueError, match="multinomial: shape"):
        random.multinomial(random.PRNGKey(0), 5, np.ones(3) / 3, shape=(2, 4))
    assert random.key_impl(random.PRNGKey(0)) == "threefry2x32"
