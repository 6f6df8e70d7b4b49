"""The beta-binomial distribution (`jax.scipy.stats.betabinom`): a binomial on `n` trials
whose probability is drawn from `beta(a, b)`."""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpmf", "pmf"]


def logpmf(k, n, a, b, loc=0):
    """Log of the probability of `k`: `-log1p(n) - betaln(n - y + 1, y + 1) + betaln(y + a,
    n - y + b) - betaln(a, b)`, `y = floor(k) - loc`; -inf outside `[0, n]`, NaN unless
    `n >= 0`, `a > 0`, `b > 0`. The support is `0 <= k - loc <= n` as in scipy (JAX 0.10
    tests `k < 0` instead, which differs for a negative `loc`).

    Example:
        >>> from nanofn.scipy.stats import betabinom
        >>> round(float(betabinom.logpmf(2, 5, 2.0, 3.0)), 6)
        -1.435084
    """
    k, n, a, b, loc = promote_args("betabinom.logpmf", k=k, n=n, a=a, b=b, loc=loc)
    y = jnp.subtract(jnp.floor(k), loc)
    one, zero = const(y, 1), const(y, 0)
    comb = jnp.negative(jnp.add(jnp.log1p(n), special.betaln(jnp.add(jnp.subtract(n, y), one),
                                                             jnp.add(y, one))))
    betas = jnp.subtract(special.betaln(jnp.add(y, a), jnp.add(jnp.subtract(n, y), b)),
                         special.betaln(a, b))
    out = jnp.add(comb, betas)
    out = jnp.where(jnp.equal(y, zero) & jnp.equal(n, zero), const(out, 0), out)
    outside = (jnp.less(y, zero) | jnp.greater(y, n)
               | jnp.less_equal(jnp.add(y, a), zero))
    out = jnp.where(outside, const(out, -np.inf), out)
    bad = jnp.less(n, zero) | jnp.less_equal(a, zero) | jnp.less_equal(b, zero)
    return jnp.where(bad, const(out, np.nan), out)


def pmf(k, n, a, b, loc=0):
    """The probability of `k`.

    Example:
        >>> from nanofn.scipy.stats import betabinom
        >>> round(float(betabinom.pmf(2, 5, 2.0, 3.0)), 6)
        0.238095
    """
    return jnp.exp(logpmf(k, n, a, b, loc))
