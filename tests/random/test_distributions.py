"""Every sampler: its distribution (mean, variance, and a Kolmogorov-Smirnov or chi-squared
test against scipy.stats), jit == eager, vmap over keys == a loop, dtypes, and errors.

All keys are fixed, so the statistical tests are deterministic: each checks that a fixed
sample is a plausible draw (p-value above 1e-3), which a wrong sampler fails by a wide
margin at these sample sizes.
"""

import numpy as np
import pytest
from scipy import stats

import nanofn
import nanofn.numpy as fnp
from nanofn import random

try:
    from nanofn import vmap
except ImportError:  # vmap is being exported by the transforms work
    from nanofn._batching import vmap

N = 20000
P_MIN = 1e-3


def draw(fn, seed=0, *args, **kwargs):
    return np.asarray(fn(random.key(seed), *args, **kwargs))


def assert_ks(sample, cdf, *cdf_args):
    p = stats.kstest(np.asarray(sample, np.float64).ravel(), cdf, cdf_args).pvalue
    assert p > P_MIN, f"KS test rejects the sample (p={p:.2g})"


def assert_counts(counts, probs):
    counts = np.asarray(counts, np.float64)
    expected = np.asarray(probs, np.float64) * counts.sum()
    p = stats.chisquare(counts, expected).pvalue
    assert p > P_MIN, f"chi-squared test rejects the counts {counts} (p={p:.2g})"


def assert_moments(x, mean, var):
    x = np.asarray(x, np.float64).ravel()
    n = x.size
    assert abs(x.mean() - mean) < 5 * np.sqrt(var / n), (x.mean(), mean)
    assert abs(x.var() - var) < 0.05 * var, (x.var(), var)


# ------------------------------------------------------------------------ continuous


def test_uniform_distribution_and_bounds():
    x = draw(random.uniform, 0, (N,))
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() < 1
    assert_moments(x, 0.5, 1 / 12)
    assert_ks(x, "uniform")
    y = draw(random.uniform, 1, (N,), minval=-2.0, maxval=3.0)
    assert y.min() >= -2 and y.max() < 3
    assert_ks(y, "uniform", -2.0, 5.0)


def test_uniform_broadcasts_array_bounds():
    lo = fnp.array([[0.0], [10.0], [-5.0]])
    x = draw(random.uniform, 2, (3, 4000), minval=lo, maxval=fnp.array(20.0))
    for row, low in zip(x, [0.0, 10.0, -5.0]):
        assert row.min() >= low and row.max() < 20
        assert_ks(row, "uniform", low, 20.0 - low)


def test_uniform_float64_uses_52_random_bits():
    x = draw(random.uniform, 3, (1000,), dtype="float64")
    assert x.dtype == np.float64
    # float32 would give multiples of 2**-24 (even 2**-23); these need the full mantissa
    assert np.mean((x * 2.0**24) % 1 != 0) > 0.9
    assert_ks(x, "uniform")
    h = draw(random.uniform, 3, (1000,), dtype="float16")
    assert h.dtype == np.float16 and h.min() >= 0 and h.max() < 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_distribution(dtype):
    x = draw(random.normal, 4, (N,), dtype=dtype)
    assert x.dtype == dtype and np.isfinite(x).all()
    assert_moments(x, 0.0, 1.0)
    assert_ks(x, "norm")
    assert abs(stats.skew(x)) < 0.1 and abs(stats.kurtosis(x)) < 0.2


def test_complex_normal():
    z = draw(random.normal, 5, (N,), dtype="complex64")
    assert z.dtype == np.complex64
    assert_moments(z.real, 0.0, 0.5)
    assert_moments(z.imag, 0.0, 0.5)
    assert abs(np.corrcoef(z.real, z.imag)[0, 1]) < 4 / np.sqrt(N)


@pytest.mark.parametrize("lower,upper", [(-1.0, 2.0), (0.5, 3.0), (-np.inf, 0.0)])
def test_truncated_normal_distribution(lower, upper):
    x = draw(random.truncated_normal, 6, lower, upper, (N,))
    assert x.dtype == np.float32 and (x > lower).all() and (x < upper).all()
    assert_moments(x, *stats.truncnorm.stats(lower, upper, moments="mv"))
    assert_ks(x, "truncnorm", lower, upper)


def test_truncated_normal_broadcasts_bounds():
    lower = fnp.array([-2.0, 0.0, 1.0])
    x = draw(random.truncated_normal, 7, lower, 2.5, (4000, 3))
    assert x.shape == (4000, 3)
    for j, lo in enumerate([-2.0, 0.0, 1.0]):
        assert (x[:, j] > lo).all() and (x[:, j] < 2.5).all()
        assert_ks(x[:, j], "truncnorm", lo, 2.5)
    assert random.truncated_normal(random.key(0), lower, 2.5).shape == (3,)


def test_exponential_distribution():
    x = draw(random.exponential, 8, (N,))
    assert (x >= 0).all()
    assert_moments(x, 1.0, 1.0)
    assert_ks(x, "expon")


@pytest.mark.parametrize("mode", ["low", "high"])
def test_gumbel_distribution(mode):
    x = draw(random.gumbel, 9, (N,), mode=mode)
    assert np.isfinite(x).all()
    assert_moments(x, np.euler_gamma, np.pi**2 / 6)
    assert_ks(x, "gumbel_r")


def test_laplace_distribution():
    x = draw(random.laplace, 10, (N,))
    assert_moments(x, 0.0, 2.0)
    assert_ks(x, "laplace")


def test_logistic_distribution():
    x = draw(random.logistic, 11, (N,))
    assert_moments(x, 0.0, np.pi**2 / 3)
    assert_ks(x, "logistic")


def test_cauchy_distribution():
    x = draw(random.cauchy, 12, (N,))
    assert abs(np.median(x)) < 0.05
    assert_ks(x, "cauchy")


def test_lognormal_distribution():
    x = draw(random.lognormal, 13, 0.5, (N,))
    assert (x > 0).all()
    assert_moments(np.log(x), 0.0, 0.25)
    assert_ks(x, "lognorm", 0.5)


@pytest.mark.parametrize("method", ["cholesky", "eigh", "svd"])
def test_multivariate_normal_mean_and_covariance(method):
    mean = fnp.array([1.0, -2.0, 0.5])
    a = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.3, 0.2, 0.9]])
    cov = a @ a.T
    x = draw(random.multivariate_normal, 14, mean, cov.astype(np.float32), (N,), method=method)
    assert x.shape == (N, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.05)
    # whitened samples are standard normal along any direction
    w = np.linalg.solve(np.linalg.cholesky(cov), (x - np.asarray(mean)).T)
    assert_ks(w[0], "norm")
    assert_ks(w[2], "norm")


def test_multivariate_normal_batches_and_dtype():
    means = np.zeros((4, 2))
    covs = np.broadcast_to(np.eye(2), (5, 1, 2, 2)) * np.arange(1, 6)[:, None, None, None]
    x = random.multivariate_normal(random.key(0), means, covs)
    assert x.shape == (5, 4, 2) and x.dtype == np.float64  # float64 inputs stay float64
    x = random.multivariate_normal(random.key(0), fnp.zeros(2), fnp.eye(2))
    assert x.shape == (2,) and x.dtype == np.float32
    x = random.multivariate_normal(random.key(0), np.zeros(2), np.eye(2), (3, 7), "float64")
    assert x.shape == (3, 7, 2) and x.dtype == np.float64


# ------------------------------------------------------------------------ discrete


def test_bernoulli_distribution():
    b = draw(random.bernoulli, 15, 0.3, (N,))
    assert b.dtype == bool
    assert stats.binomtest(int(b.sum()), N, 0.3).pvalue > P_MIN
    p = fnp.array([0.05, 0.5, 0.95])
    b = draw(random.bernoulli, 16, p, (N // 4, 3))
    for j, pj in enumerate([0.05, 0.5, 0.95]):
        assert stats.binomtest(int(b[:, j].sum()), N // 4, pj).pvalue > P_MIN
    assert random.bernoulli(random.key(0), p).shape == (3,)
    assert not draw(random.bernoulli, 0, 0.0, (1000,)).any()
    assert draw(random.bernoulli, 0, 1.0, (1000,)).all()


def test_bernoulli_high_mode_resolves_tiny_probabilities():
    b = draw(random.bernoulli, 17, 0.25, (N,), mode="high")
    assert stats.binomtest(int(b.sum()), N, 0.25).pvalue > P_MIN


def test_rademacher_distribution():
    x = draw(random.rademacher, 18, (N,))
    assert x.dtype == np.int32 and set(np.unique(x)) == {-1, 1}
    assert stats.binomtest(int((x == 1).sum()), N, 0.5).pvalue > P_MIN
    assert draw(random.rademacher, 18, (3,), dtype="float32").dtype == np.float32


def test_randint_distribution():
    x = draw(random.randint, 19, (N,), 0, 7)
    assert x.dtype == np.int32 and x.min() == 0 and x.max() == 6
    assert_moments(x, 3.0, 4.0)  # discrete uniform on 0..6: variance (7**2 - 1) / 12
    assert_counts(np.bincount(x, minlength=7), np.full(7, 1 / 7))
    y = draw(random.randint, 20, (N,), -3, 2)
    assert_counts(np.bincount(y + 3, minlength=5), np.full(5, 1 / 5))


def test_randint_bounds_broadcast_and_edge_cases():
    lo = fnp.array([0, 100, -50])
    x = draw(random.randint, 21, (1000, 3), lo, fnp.array([5, 101, -40]))
    assert (x[:, 0] >= 0).all() and (x[:, 0] < 5).all()
    assert (x[:, 1] == 100).all()
    assert (x[:, 2] >= -50).all() and (x[:, 2] < -40).all()
    assert (draw(random.randint, 0, (50,), 5, 5) == 5).all()  # empty range gives minval
    assert (draw(random.randint, 0, (50,), 5, 2) == 5).all()
    u8 = draw(random.randint, 22, (N,), 0, 256, "uint8")  # maxval just above uint8's range
    assert u8.dtype == np.uint8
    assert_counts(np.bincount(u8, minlength=256), np.full(256, 1 / 256))
    i64 = draw(random.randint, 23, (N,), -(2**40), 2**40, "int64")
    assert i64.dtype == np.int64 and (np.abs(i64) <= 2**40).all() and np.abs(i64).max() > 2**39
    full = draw(random.randint, 24, (N,), np.iinfo(np.int32).min, np.int64(2**31))
    assert full.min() < -(2**30) and full.max() > 2**30  # the whole int32 range


def test_categorical_distribution():
    probs = np.array([0.1, 0.2, 0.3, 0.05, 0.35])
    x = draw(random.categorical, 25, fnp.log(fnp.array(probs)), shape=(N,))
    assert x.dtype == np.int32 and x.shape == (N,)
    assert_counts(np.bincount(x, minlength=5), probs)


def test_categorical_batches_and_axis():
    probs = np.array([[0.7, 0.3], [0.1, 0.9], [0.5, 0.5]])  # 3 distributions of 2 categories
    logits = fnp.log(fnp.array(probs))
    x = draw(random.categorical, 26, logits, shape=(N // 2, 3))
    for j in range(3):
        assert_counts(np.bincount(x[:, j], minlength=2), probs[j])
    y = draw(random.categorical, 27, fnp.transpose(logits), axis=0, shape=(N // 2, 3))
    for j in range(3):
        assert_counts(np.bincount(y[:, j], minlength=2), probs[j])
    assert random.categorical(random.key(0), logits).shape == (3,)


def test_categorical_without_replacement_draws_distinct_categories():
    logits = fnp.zeros((6, 5))
    x = draw(random.categorical, 28, logits, shape=(5, 6), replace=False)
    assert x.shape == (5, 6)
    for col in x.T:
        assert sorted(col.tolist()) == [0, 1, 2, 3, 4]


def test_permutation_is_a_permutation():
    p = draw(random.permutation, 29, 1000)
    assert p.dtype == np.int32 and sorted(p.tolist()) == list(range(1000))
    assert p.tolist() != list(range(1000))
    x = fnp.array([3.5, -1.0, 2.0, 8.0])
    q = draw(random.permutation, 30, x)
    assert sorted(q.tolist()) == sorted(x.tolist())
    assert draw(random.permutation, 0, 0).shape == (0,)
    assert draw(random.permutation, 0, 1).tolist() == [0]


def test_permutation_is_uniform_over_orderings():
    keys = random.split(random.key(31), 6000)
    perms = np.asarray(vmap(lambda k: random.permutation(k, 3))(keys))
    codes = perms[:, 0] * 3 + perms[:, 1]  # identifies the ordering of 3 items
    counts = np.array([np.sum(codes == c) for c in (1, 2, 3, 5, 6, 7)])
    assert counts.sum() == 6000
    assert_counts(counts, np.full(6, 1 / 6))


def test_permutation_of_arrays_along_an_axis():
    x = np.arange(20).reshape(4, 5)
    rows = draw(random.permutation, 32, fnp.array(x), axis=1)
    perm = [int(np.argwhere(x[0] == v)[0, 0]) for v in rows[0]]
    np.testing.assert_array_equal(rows, x[:, perm])  # whole columns move together
    ind = draw(random.permutation, 33, fnp.array(x), axis=1, independent=True)
    for r_in, r_out in zip(x, ind):
        assert sorted(r_out.tolist()) == r_in.tolist()
    assert len({tuple(r - r.min()) for r in ind}) > 1  # rows were permuted differently


def test_choice_with_replacement():
    x = draw(random.choice, 34, 6, (N,))
    assert x.dtype == np.int32
    assert_counts(np.bincount(x, minlength=6), np.full(6, 1 / 6))
    p = np.array([0.5, 0.1, 0.4])
    y = draw(random.choice, 35, 3, (N,), p=fnp.array(p))
    assert_counts(np.bincount(y, minlength=3), p)
    a = fnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    rows = draw(random.choice, 36, a, (7,))
    assert rows.shape == (7, 2) and all(list(r) in a.tolist() for r in rows.tolist())
    cols = draw(random.choice, 37, a, (2, 4), axis=1, p=fnp.array([0.0, 1.0]))
    assert cols.shape == (3, 2, 4) and (cols == np.asarray(a)[:, 1:2, None]).all()


def test_choice_without_replacement_has_no_repeats():
    for seed in range(5):
        x = draw(random.choice, seed, 50, (50,), replace=False)
        assert sorted(x.tolist()) == list(range(50))
        y = draw(random.choice, seed, 100, (10, 3), replace=False)
        assert y.shape == (10, 3) and len(set(y.ravel().tolist())) == 30
        z = draw(random.choice, seed, 20, (8,), replace=False, p=fnp.linspace(0.1, 1.0, 20))
        assert len(set(z.tolist())) == 8
    a = fnp.arange(12.0).reshape(3, 4)
    cols = draw(random.choice, 38, a, (4,), replace=False, axis=1)
    assert sorted(cols[0].tolist()) == [0.0, 1.0, 2.0, 3.0]
    np.testing.assert_array_equal(cols[1], cols[0] + 4)


def test_choice_without_replacement_first_draw_follows_p():
    p = np.array([0.1, 0.6, 0.3])
    keys = random.split(random.key(39), 6000)
    first = np.asarray(vmap(lambda k: random.choice(k, 3, (2,), replace=False,
                                                    p=fnp.array(p)))(keys))[:, 0]
    assert_counts(np.bincount(first, minlength=3), p)


# ------------------------------------------------------------------------ gamma family


@pytest.mark.parametrize("a", [0.3, 1.0, 4.5])
def test_gamma_distribution(a):
    x = draw(random.gamma, 45, a, (N,))
    assert x.dtype == np.float32 and (x > 0).all()
    assert_moments(x, a, a)
    assert_ks(x, "gamma", a)


def test_gamma_broadcasts_shape_parameter_and_rejects_invalid_ones():
    a = np.array([0.5, 2.0, 10.0], np.float32)
    x = draw(random.gamma, 46, a, (5000, 3), dtype="float64")
    assert x.dtype == np.float64
    for j, aj in enumerate(a):
        assert_ks(x[:, j], "gamma", aj)
    # as in JAX: NaN for a = -1 and NaN, 0 for a = 0 (the limit of Gamma(a) as a -> 0)
    bad = draw(random.gamma, 0, fnp.array([-1.0, 0.0, np.nan, 2.0]))
    assert np.isnan(bad[[0, 2]]).all() and bad[1] == 0 and bad[3] > 0


def test_loggamma_is_accurate_for_tiny_shapes():
    x = draw(random.loggamma, 47, 0.01, (N,))
    assert np.isfinite(x).all() and x.min() < -200  # exp(-200) underflows float32
    assert_ks(np.exp(x.astype(np.float64)), "gamma", 0.01)


def test_beta_distribution():
    x = draw(random.beta, 48, 0.5, 2.0, (N,))
    assert (x >= 0).all() and (x <= 1).all()
    assert_moments(x, *stats.beta.stats(0.5, 2.0, moments="mv"))
    assert_ks(x, "beta", 0.5, 2.0)
    y = draw(random.beta, 49, fnp.array([1.0, 3.0]), 2.0, (N // 2, 2))
    assert_ks(y[:, 0], "beta", 1.0, 2.0)
    assert_ks(y[:, 1], "beta", 3.0, 2.0)


def test_dirichlet_distribution():
    alpha = np.array([1.0, 2.0, 3.0], np.float32)
    x = draw(random.dirichlet, 50, alpha, (N,))
    assert x.shape == (N, 3)
    np.testing.assert_allclose(x.sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(x.mean(axis=0), alpha / alpha.sum(), atol=0.01)
    assert_ks(x[:, 0], "beta", 1.0, 5.0)  # marginals are Beta(alpha_i, sum - alpha_i)
    assert_ks(x[:, 2], "beta", 3.0, 3.0)
    batch = random.dirichlet(random.key(0), fnp.ones((4, 2)))
    assert batch.shape == (4, 2)
    with pytest.raises(ValueError, match="dirichlet: the batch shape"):
        random.dirichlet(random.key(0), fnp.ones((4, 2)), (3,))


def test_gamma_vmap_over_shape_parameters():
    # (its gradient with respect to a: tests/random/test_gamma_gradients.py)
    g = lambda a: random.gamma(random.key(51), a, (4,))  # noqa: E731
    a = fnp.array([[0.5], [2.0], [7.0]])
    np.testing.assert_array_equal(vmap(g)(a), np.stack([np.asarray(g(ai)) for ai in a]))


def test_generalized_normal_distribution():
    for p, seed in ((1.5, 52), (2.0, 53)):
        x = draw(random.generalized_normal, seed, p, (N,))
        assert_moments(x, *stats.gennorm.stats(p, moments="mv"))
        assert_ks(x, "gennorm", p)


@pytest.mark.parametrize("d,p", [(2, 2.0), (3, 1.0)])
def test_ball_is_uniform_in_the_unit_ball(d, p):
    x = draw(random.ball, 54, d, p, (N,))
    assert x.shape == (N, d)
    radius = (np.abs(x) ** p).sum(-1) ** (1 / p)
    assert radius.max() <= 1
    assert_ks(radius ** d, "uniform")  # the volume inside radius r grows as r**d
    if d == 2:
        assert_ks(np.arctan2(x[:, 1], x[:, 0]), "uniform", -np.pi, 2 * np.pi)
    with pytest.raises(ValueError, match=r"ball: d \(-1,\) has a negative entry"):
        random.ball(random.key(0), -1)


# ------------------------------------------------------------------------ streams


def test_split_streams_are_uncorrelated():
    k1, k2 = random.split(random.key(40))
    for a, b in [(k1, k2), (random.fold_in(k1, 0), random.fold_in(k1, 1)),
                 (random.key(0), random.key(1))]:
        x, y = np.asarray(random.normal(a, (N,))), np.asarray(random.normal(b, (N,)))
        assert abs(np.corrcoef(x, y)[0, 1]) < 4 / np.sqrt(N)
    x = np.asarray(random.uniform(k1, (N,)))
    assert abs(np.corrcoef(x[:-1], x[1:])[0, 1]) < 4 / np.sqrt(N)  # no lag-1 correlation


def test_same_key_same_numbers_and_new_key_new_numbers():
    k = random.key(41)
    np.testing.assert_array_equal(random.normal(k, (5,)), random.normal(k, (5,)))
    assert not np.allclose(random.normal(k, (5,)), random.normal(random.split(k)[0], (5,)))


# ------------------------------------------------------------------------ transforms

SAMPLERS = {
    "uniform": lambda k: random.uniform(k, (3, 2), minval=fnp.array([-1.0, 0.0]), maxval=4.0),
    "normal": lambda k: random.normal(k, (4,)),
    "normal_f64": lambda k: random.normal(k, (4,), "float64"),
    "normal_c64": lambda k: random.normal(k, (2,), "complex64"),
    "truncated_normal": lambda k: random.truncated_normal(k, fnp.array([-1.0, 0.0]), 2.0),
    "bernoulli": lambda k: random.bernoulli(k, fnp.array([0.2, 0.7]), (3, 2)),
    "bernoulli_high": lambda k: random.bernoulli(k, 0.3, (4,), mode="high"),
    "categorical": lambda k: random.categorical(k, fnp.array([[0.0, 1.0, 2.0]]), shape=(5, 1)),
    "categorical_nr": lambda k: random.categorical(k, fnp.zeros(4), shape=(3,), replace=False),
    "randint": lambda k: random.randint(k, (6,), 0, fnp.array(9)),
    "randint_u8": lambda k: random.randint(k, (6,), 0, 256, "uint8"),
    "permutation": lambda k: random.permutation(k, 7),
    "permutation_2d": lambda k: random.permutation(k, fnp.arange(6.0).reshape(2, 3), axis=1),
    "choice": lambda k: random.choice(k, fnp.arange(10.0), (4,)),
    "choice_nr": lambda k: random.choice(k, 9, (4,), replace=False),
    "choice_p": lambda k: random.choice(k, 3, (4,), p=fnp.array([0.2, 0.3, 0.5])),
    "choice_p_nr": lambda k: random.choice(k, 4, (2,), replace=False, p=fnp.ones(4)),
    "gumbel": lambda k: random.gumbel(k, (3,)),
    "gumbel_high": lambda k: random.gumbel(k, (3,), mode="high"),
    "exponential": lambda k: random.exponential(k, (3,)),
    "laplace": lambda k: random.laplace(k, (3,)),
    "logistic": lambda k: random.logistic(k, (3,)),
    "cauchy": lambda k: random.cauchy(k, (3,)),
    "lognormal": lambda k: random.lognormal(k, fnp.array([0.5, 1.0])),
    "rademacher": lambda k: random.rademacher(k, (5,)),
    "gamma": lambda k: random.gamma(k, fnp.array([0.5, 3.0]), (2, 2)),
    "loggamma": lambda k: random.loggamma(k, 0.1, (3,)),
    "beta": lambda k: random.beta(k, 2.0, fnp.array([1.0, 5.0])),
    "dirichlet": lambda k: random.dirichlet(k, fnp.array([1.0, 2.0, 0.5]), (2,)),
    "generalized_normal": lambda k: random.generalized_normal(k, 1.5, (3,)),
    "ball": lambda k: random.ball(k, 3, shape=(2,)),
    "multivariate_normal": lambda k: random.multivariate_normal(
        k, fnp.zeros(2), fnp.array([[2.0, 0.5], [0.5, 1.0]]), (3,)),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_jit_equals_eager(name):
    f = SAMPLERS[name]
    k = random.key(42)
    eager = np.asarray(f(k))
    jitted = np.asarray(nanofn.jit(f)(k))
    assert eager.dtype == jitted.dtype and eager.shape == jitted.shape
    np.testing.assert_array_equal(jitted, eager)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_vmap_over_keys_equals_loop(name):
    f = SAMPLERS[name]
    keys = random.split(random.key(43), 3)
    batched = np.asarray(vmap(f)(keys))
    looped = np.stack([np.asarray(f(k)) for k in keys])
    assert batched.shape == looped.shape
    np.testing.assert_allclose(batched, looped, rtol=1e-6, atol=0)


def test_reparameterised_gradients():
    k = random.key(44)
    u = np.asarray(random.uniform(k, (5,)))
    g_lo, g_hi = nanofn.grad(lambda lo, hi: fnp.sum(random.uniform(k, (5,), minval=lo,
                                                                   maxval=hi)),
                             argnums=(0, 1))(1.0, 3.0)
    np.testing.assert_allclose([float(g_lo), float(g_hi)], [np.sum(1 - u), np.sum(u)],
                               rtol=1e-5)
    z = np.asarray(random.normal(k, (5,)))
    g = nanofn.grad(lambda s: fnp.sum(random.lognormal(k, s, (5,))))(0.5)
    np.testing.assert_allclose(float(g), np.sum(z * np.exp(0.5 * z)), rtol=1e-5)
    gm = nanofn.grad(lambda m: fnp.sum(random.multivariate_normal(k, m, fnp.eye(2), (3,))))(
        fnp.zeros(2))
    np.testing.assert_allclose(gm, [3.0, 3.0])
    # cov too (test_mvn_reparam_and_half_gamma.py checks it against finite differences)
    gc = nanofn.grad(lambda c: fnp.sum(random.multivariate_normal(k, fnp.zeros(2), c)))(
        fnp.eye(2))
    assert gc.shape == (2, 2) and np.isfinite(np.asarray(gc)).all()


# ------------------------------------------------------------------------ errors


def test_shape_and_parameter_errors_name_the_argument():
    k = random.key(0)
    with pytest.raises(ValueError, match=r"categorical: logits of shape \(2, 5\).*shape=\(3,\)"):
        random.categorical(k, fnp.zeros((2, 5)), shape=(3,))
    with pytest.raises(ValueError, match="categorical: logits must have at least one axis"):
        random.categorical(k, 0.0)
    with pytest.raises(ValueError, match="cannot draw 6 samples without replacement"):
        random.categorical(k, fnp.zeros(5), shape=(6,), replace=False)
    with pytest.raises(ValueError, match=r"choice: cannot draw 6 samples \(shape=\(2, 3\)\) "
                                         "without replacement from a population of 5"):
        random.choice(k, 5, (2, 3), replace=False)
    with pytest.raises(ValueError, match=r"choice: p must be None or a 1-d array"):
        random.choice(k, 3, (2,), p=fnp.ones(4))
    with pytest.raises(ValueError, match=r"choice: shape \(-1,\) has a negative entry"):
        random.choice(k, 3, (-1,))
    with pytest.raises(ValueError, match="uniform: minval has shape"):
        random.uniform(k, (3,), minval=fnp.zeros(4))
    with pytest.raises(ValueError, match="bernoulli: p has shape"):
        random.bernoulli(k, fnp.full(3, 0.5), (2,))
    with pytest.raises(ValueError, match=r"truncated_normal: .*lower of shape \(2,\)"):
        random.truncated_normal(k, fnp.zeros(2), fnp.ones(3))
    with pytest.raises(ValueError, match=r"randint: maxval has shape \(4,\)"):
        random.randint(k, (2,), 0, fnp.ones(4, "int32"))
    with pytest.raises(ValueError, match="multivariate_normal: cov must have shape"):
        random.multivariate_normal(k, fnp.zeros(3), fnp.eye(2))


def test_dtype_errors():
    k = random.key(0)
    with pytest.raises(ValueError, match="uniform: dtype must be a float dtype"):
        random.uniform(k, (2,), "int32")
    with pytest.raises(ValueError, match="normal: dtype must be a float or complex dtype"):
        random.normal(k, (2,), "int32")
    with pytest.raises(TypeError, match="randint: dtype must be an integer dtype"):
        random.randint(k, (2,), 0, 3, "float32")
    with pytest.raises(TypeError, match="bernoulli: p must be a float"):
        random.bernoulli(k, 1)
    with pytest.raises(TypeError, match="permutation: x must be an integer"):
        random.permutation(k, 2.5)


def test_sizes_that_depend_on_traced_values_raise_concretization_errors():
    with pytest.raises(nanofn.ConcretizationError, match="permutation"):
        nanofn.jit(lambda k, n: random.permutation(k, n))(random.key(0), 3)
    with pytest.raises(nanofn.ConcretizationError, match="shape"):
        nanofn.jit(lambda k, s: random.normal(k, s))(random.key(0), fnp.array(3))
