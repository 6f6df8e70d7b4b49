"""The Bernoulli distribution (`jax.scipy.stats.bernoulli`): 1 with probability `p`."""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpmf", "pmf", "cdf", "ppf"]


def logpmf(k, p, loc=0):
    """Log of the probability of `k`: `k log p + (1 - k) log1p(-p)` with `k` shifted by
    `loc`; -inf outside [0, 1].

    Example:
        >>> from nanofn.scipy.stats import bernoulli
        >>> round(float(bernoulli.logpmf(1, 0.25)), 6)
        -1.386294
    """
    k, p, loc = promote_args("bernoulli.logpmf", k=k, p=p, loc=loc)
    x = jnp.subtract(k, loc)
    out = jnp.add(special.xlogy(x, p), special.xlog1py(jnp.subtract(const(x, 1), x),
                                                          jnp.negative(p)))
    outside = jnp.less(x, const(x, 0)) | jnp.greater(x, const(x, 1))
    return jnp.where(outside, const(out, -np.inf), out)


def pmf(k, p, loc=0):
    """The probability of `k`.

    Example:
        >>> from nanofn.scipy.stats import bernoulli
        >>> float(bernoulli.pmf(0, 0.25))
        0.75
    """
    return jnp.exp(logpmf(k, p, loc))


def cdf(k, p):
    """The distribution function: 0 below 0, `1 - p` on [0, 1), 1 from 1 on (NaN for `p`
    outside [0, 1]).

    Example:
        >>> from nanofn.scipy.stats import bernoulli
        >>> float(bernoulli.cdf(0.5, 0.25))
        0.75
    """
    k, p = promote_args("bernoulli.cdf", k=k, p=p)
    zero, one = const(k, 0), const(k, 1)
    bad = jnp.isnan(k) | jnp.isnan(p) | jnp.less(p, zero) | jnp.greater(p, one)
    return jnp.select([bad, jnp.less(k, zero), jnp.less(k, one), jnp.greater_equal(k, one)],
                      [const(k, np.nan), zero, jnp.subtract(one, p), one], zero)


def ppf(q, p):
    """The quantile function: 0 for `q <= 1 - p`, else 1 (NaN outside [0, 1]).

    Example:
        >>> from nanofn.scipy.stats import bernoulli
        >>> float(bernoulli.ppf(0.9, 0.25))
        1.0
    """
    q, p = promote_args("bernoulli.ppf", q=q, p=p)
    zero, one = const(q, 0), const(q, 1)
    bad = (jnp.isnan(q) | jnp.isnan(p) | jnp.less(p, zero) | jnp.greater(p, one)
           | jnp.less(q, zero) | jnp.greater(q, one))
    out = jnp.where(jnp.less_equal(q, jnp.subtract(one, p)), zero, one)
    return jnp.where(bad, const(q, np.nan), out)
