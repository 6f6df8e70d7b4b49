"""jax.random's gamma family and count samplers: name -> (seed, draw(random_module, key)).

Shared by tests/random/test_gamma_streams.py and by record_gamma_streams.py, which runs
every case under JAX twice, with `jax_enable_x64` off and on. These samplers reject and
redraw, so their values pin down how the key is spent: per element and per round for
gamma (and loggamma, beta, dirichlet, generalized_normal, ball, chisquare, f, t), per
round over the whole array for poisson and binomial, per category for multinomial.
Inputs are numpy arrays or Python scalars, so the same lambda runs in both libraries;
`_lib(r)` is the library of a random module (jax or nanofn), for `jit` and `vmap`."""

import importlib

import numpy as np


def _lib(r):
    return importlib.import_module(r.__name__.split(".")[0])


def _jit(r, f):
    return _lib(r).jit(f)


def _vmap(r, f):
    return _lib(r).vmap(f)


_A = np.array([0.1, 0.5, 0.99, 1.0, 2.0, 7.5])
_LAM = np.array([0.0, 0.5, 3.0, 9.9, 10.0, 10.5, 30.0, 300.0])
_N = np.array([[0.0], [1.0], [6.0], [40.0], [150.0], [2000.0]])
_P = np.array([0.0, 0.02, 0.3, 0.5, 0.7, 0.98, 1.0])
_PROBS = np.array([0.1, 0.2, 0.0, 0.3, 0.15, 0.25])

CASES = {
    # gamma: one key per element, rounds of Marsaglia-Tsang, a boost below a = 1
    "gamma": (7, lambda r, k: r.gamma(k, 2.5, (6,))),
    "gamma_small_a": (7, lambda r, k: r.gamma(k, 0.3, (3, 4))),
    "gamma_tiny_a": (7, lambda r, k: r.gamma(k, 0.01, (10,))),
    "gamma_large_a": (7, lambda r, k: r.gamma(k, 1000.0, (5,))),
    "gamma_a_array": (7, lambda r, k: r.gamma(k, _A)),
    "gamma_a_broadcast": (7, lambda r, k: r.gamma(k, np.array([[0.4], [3.0]]), (2, 3))),
    "gamma_edge_a": (7, lambda r, k: r.gamma(k, np.array([0.0, 1.0, np.nan]))),
    "gamma_float32": (7, lambda r, k: r.gamma(k, 1.7, (4,), np.float32)),
    "gamma_jit": (7, lambda r, k: _jit(r, lambda kk: r.gamma(kk, 0.7, (5,)))(k)),
    "gamma_vmap_keys": (7, lambda r, k: _vmap(r, lambda kk: r.gamma(kk, _A[:3]))(
        r.split(k, 4))),
    "gamma_vmap_keys_and_a": (7, lambda r, k: _vmap(r, lambda kk, a: r.gamma(kk, a, (3,)))(
        r.split(k, 3), np.array([0.2, 1.0, 5.0]))),
    # the implicit reparameterisation gradient at JAX's samples
    "gamma_grad": (7, lambda r, k: _lib(r).grad(lambda a: r.gamma(k, a).sum())(
        _A.astype(np.float32))),
    "loggamma_grad": (7, lambda r, k: _lib(r).grad(lambda a: r.loggamma(k, a, (3, 6)).sum())(
        _A.astype(np.float32))),
    "beta_grad": (7, lambda r, k: _lib(r).grad(lambda a: r.beta(k, a, 2.0).sum())(
        _A.astype(np.float32))),
    "loggamma": (7, lambda r, k: r.loggamma(k, 3.0, (5,))),
    "loggamma_tiny_a": (7, lambda r, k: r.loggamma(k, 0.001, (3, 4))),
    "loggamma_a_array": (7, lambda r, k: r.loggamma(k, _A)),
    "loggamma_vmap_keys": (7, lambda r, k: _vmap(r, lambda kk: r.loggamma(kk, 0.2, (3,)))(
        r.split(k, 3))),
    # built on gamma / loggamma
    "beta": (7, lambda r, k: r.beta(k, 0.5, 2.0, (6,))),
    "beta_broadcast": (7, lambda r, k: r.beta(k, np.array([[0.3], [1.0], [4.0]]),
                                              np.array([0.5, 2.0, 8.0, 30.0]))),
    "dirichlet": (7, lambda r, k: r.dirichlet(k, np.array([0.2, 1.0, 3.0]), (4,))),
    "dirichlet_batch": (7, lambda r, k: r.dirichlet(k, np.array([[0.05, 0.5], [2.0, 9.0]]))),
    "generalized_normal": (7, lambda r, k: r.generalized_normal(k, 1.5, (6,))),
    "generalized_normal_small_p": (7, lambda r, k: r.generalized_normal(k, 0.5, (2, 3))),
    "ball": (7, lambda r, k: r.ball(k, 3, 2, (4,))),
    "ball_p1": (7, lambda r, k: r.ball(k, 2, 1, (3,))),
    "chisquare": (7, lambda r, k: r.chisquare(k, 3.0, (5,))),
    "chisquare_df_array": (7, lambda r, k: r.chisquare(k, np.array([0.5, 1.0, 4.0, 25.0]))),
    "f": (7, lambda r, k: r.f(k, 2.0, 5.0, (5,))),
    "f_df_arrays": (7, lambda r, k: r.f(k, np.array([1.0, 6.0, 20.0]),
                                        np.array([3.0, 40.0, 5.0]))),
    "t": (7, lambda r, k: r.t(k, 4.0, (5,))),
    "t_df_array": (7, lambda r, k: r.t(k, np.array([0.8, 2.0, 30.0]))),
    # poisson: Knuth below rate 10, rejection from 10 up, one key for both
    "poisson": (7, lambda r, k: r.poisson(k, 3.0, (8,))),
    "poisson_rates": (7, lambda r, k: r.poisson(k, _LAM, (40, _LAM.size))),
    "poisson_large_rate": (7, lambda r, k: r.poisson(k, 1000.0, (30,))),
    "poisson_bad_rate": (7, lambda r, k: r.poisson(k, np.array([-1.0, np.nan, 2.0]))),
    "poisson_uint8": (7, lambda r, k: r.poisson(k, np.array([3.0, -1.0, 40.0]), (2, 3),
                                                np.uint8)),
    "poisson_jit": (7, lambda r, k: _jit(r, lambda kk: r.poisson(kk, _LAM))(k)),
    "poisson_vmap_keys": (7, lambda r, k: _vmap(r, lambda kk: r.poisson(kk, _LAM))(
        r.split(k, 3))),
    # binomial: inversion while n * min(p, 1 - p) <= 10, BTRS above
    "binomial": (7, lambda r, k: r.binomial(k, 20, 0.25, (8,))),
    "binomial_grid": (7, lambda r, k: r.binomial(k, _N, _P, (20,) + (_N.size, _P.size))),
    "binomial_float32_p": (7, lambda r, k: r.binomial(k, 300, np.float32(0.4), (10,))),
    "binomial_bad": (7, lambda r, k: r.binomial(
        k, np.array([-1.0, np.nan, 5.0, 5.0, 7.0, 4.5]),
        np.array([0.5, 0.5, -0.1, 1.1, np.nan, 0.6]))),
    "binomial_jit": (7, lambda r, k: _jit(r, lambda kk: r.binomial(kk, _N, _P))(k)),
    "binomial_vmap_keys": (7, lambda r, k: _vmap(r, lambda kk: r.binomial(kk, 50.0, 0.6, (4,)))(
        r.split(k, 3))),
    # multinomial: a binomial per category with split(key, k)
    "multinomial": (7, lambda r, k: r.multinomial(k, 30, _PROBS, shape=(6, _PROBS.size))),
    "multinomial_batch": (7, lambda r, k: r.multinomial(
        k, np.array([5.0, 100.0, 1000.0]),
        np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.9, 0.05, 0.05]]))),
    "multinomial_jit": (7, lambda r, k: _jit(r, lambda kk: r.multinomial(kk, 12, _PROBS))(k)),
}
