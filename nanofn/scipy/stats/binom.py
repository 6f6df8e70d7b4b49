"""The binomial distribution (`jax.scipy.stats.binom`): successes in `n` trials of
probability `p`."""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpmf", "pmf"]


def logpmf(k, n, p, loc=0):
    """Log of the probability of `k` successes: `log C(n, y) + y log p + (n - y) log1p(-p)`,
    `y = k - loc` (-inf outside `[0, n]`; `n` and `k` may be non-integers, through lgamma).

    Example:
        >>> from nanofn.scipy.stats import binom
        >>> round(float(binom.logpmf(3, 10, 0.5)), 6)
        -2.14398
    """
    k, n, p, loc = promote_args("binom.logpmf", k=k, n=n, p=p, loc=loc)
    y = jnp.subtract(k, loc)
    one = const(y, 1)
    comb = jnp.subtract(special.gammaln(jnp.add(n, one)),
                        jnp.add(special.gammaln(jnp.add(y, one)),
                                special.gammaln(jnp.add(jnp.subtract(n, y), one))))
    linear = jnp.add(special.xlogy(y, p), special.xlog1py(jnp.subtract(n, y), jnp.negative(p)))
    out = jnp.add(comb, linear)
    zero = const(y, 0)
    certain = (jnp.equal(y, zero) & jnp.equal(n, zero)) | jnp.equal(linear, zero)
    out = jnp.where(certain, const(out, 0), out)
    inside = jnp.greater_equal(k, loc) & jnp.less(k, jnp.add(jnp.add(loc, n), one))
    return jnp.where(inside, out, const(out, -np.inf))


def pmf(k, n, p, loc=0):
    """The probability of `k` successes.

    Example:
        >>> from nanofn.scipy.stats import binom
        >>> round(float(binom.pmf(3, 10, 0.5)), 6)
        0.117188
    """
    return jnp.exp(logpmf(k, n, p, loc))
