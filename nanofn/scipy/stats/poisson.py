"""The Poisson distribution (`jax.scipy.stats.poisson`) with mean `mu`."""

from __future__ import annotations

import math

import numpy as np

from nanofn import numpy as jnp
from nanofn.numpy._lax_numpy import _shape
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpmf", "pmf", "cdf", "entropy"]


def logpmf(k, mu, loc=0):
    """Log of the probability of `k`: `y log mu - lgamma(y + 1) - mu`, `y = k - loc`;
    -inf below loc or for a non-integer `k`.

    Example:
        >>> from nanofn.scipy.stats import poisson
        >>> round(float(poisson.logpmf(2, 3.0)), 6)
        -1.495923
    """
    k, mu, loc = promote_args("poisson.logpmf", k=k, mu=mu, loc=loc)
    x = jnp.subtract(k, loc)
    out = jnp.subtract(jnp.subtract(special.xlogy(x, mu), special.gammaln(jnp.add(x, const(x, 1)))),
                       mu)
    outside = jnp.less(x, const(x, 0)) | jnp.not_equal(jnp.round(k), k)
    return jnp.where(outside, const(out, -np.inf), out)


def pmf(k, mu, loc=0):
    """The probability of `k`.

    Example:
        >>> from nanofn.scipy.stats import poisson
        >>> round(float(poisson.pmf(2, 3.0)), 6)
        0.224042
    """
    return jnp.exp(logpmf(k, mu, loc))


def cdf(k, mu, loc=0):
    """The distribution function `gammaincc(floor(k - loc) + 1, mu)` (0 below loc).

    Example:
        >>> from nanofn.scipy.stats import poisson
        >>> round(float(poisson.cdf(2, 3.0)), 6)
        0.42319
    """
    k, mu, loc = promote_args("poisson.cdf", k=k, mu=mu, loc=loc)
    x = jnp.subtract(k, loc)
    below = jnp.less(x, const(x, 0))
    out = special.gammaincc(jnp.floor(jnp.add(const(x, 1), jnp.where(below, const(x, 0), x))), mu)
    return jnp.where(below, const(out, 0), out)


def _entropy_sum(mu, terms, upper):
    k = jnp.reshape(jnp.arange(terms, dtype=mu.dtype), (terms,) + (1,) * mu.ndim)
    probs = pmf(k, mu)
    probs = jnp.where(jnp.less(k, upper), probs, const(probs, 0))
    return jnp.sum(special.entr(probs), axis=0)


def entropy(mu, loc=0):
    """The entropy `-sum_k pmf(k) log pmf(k)` of the Poisson distribution (`loc` shifts it
    and so changes nothing but the output's shape).

    As in JAX: an explicit sum over 35 terms for `mu < 10` and over 250 for `mu < 100`, and
    the asymptotic `log(2 pi e mu) / 2 - 1 / (12 mu)` above; 0 at `mu = 0`, NaN below.

    Example:
        >>> from nanofn.scipy.stats import poisson
        >>> round(float(poisson.entropy(3.0)), 6)
        1.93147
    """
    mu, loc = promote_args("poisson.entropy", mu=mu, loc=loc)
    mu = jnp.asarray(mu)
    shape = np.broadcast_shapes(_shape(mu), _shape(loc))
    zero = const(mu, 0)
    # each branch sees a value in its own range, so no branch makes NaN for the gradient
    m_small = jnp.where(jnp.less(mu, const(mu, 10)) & jnp.greater(mu, zero), mu, const(mu, 1))
    m_mid = jnp.where(jnp.less(mu, const(mu, 100)), mu, const(mu, 50))
    m_large = jnp.where(jnp.greater_equal(mu, const(mu, 100)), mu, const(mu, 100))
    small = _entropy_sum(m_small, 35, jnp.ceil(jnp.add(m_small, const(mu, 20))))
    mid = _entropy_sum(m_mid, 250, jnp.ceil(jnp.add(jnp.add(m_mid, jnp.multiply(
        const(mu, 10), jnp.sqrt(m_mid))), const(mu, 20))))
    large = jnp.subtract(
        jnp.multiply(const(mu, 0.5),
                     jnp.log(jnp.multiply(const(mu, 2 * math.pi * math.e), m_large))),
        jnp.reciprocal(jnp.multiply(const(mu, 12), m_large)))
    out = jnp.where(jnp.equal(mu, zero), zero,
                    jnp.where(jnp.less(mu, const(mu, 10)), small,
                              jnp.where(jnp.less(mu, const(mu, 100)), mid, large)))
    # no such distribution below 0; a NaN rate would otherwise reach the clamped mid branch
    out = jnp.where(jnp.less(mu, zero) | jnp.isnan(mu), const(mu, np.nan), out)
    return jnp.broadcast_to(out, shape)
