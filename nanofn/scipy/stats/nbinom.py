"""The negative binomial distribution (`jax.scipy.stats.nbinom`): failures before the `n`-th
success, with success probability `p`."""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpmf", "pmf"]


def logpmf(k, n, p, loc=0):
    """Log of the probability of `k`: `lgamma(y + n) - lgamma(n) - lgamma(y + 1) + n log p
    + y log(1 - p)`, `y = k - loc` (-inf below loc).

    Example:
        >>> from nanofn.scipy.stats import nbinom
        >>> round(float(nbinom.logpmf(2, 3, 0.5)), 6)
        -1.673976
    """
    k, n, p, loc = promote_args("nbinom.logpmf", k=k, n=n, p=p, loc=loc)
    y = jnp.subtract(k, loc)
    one = const(y, 1)
    comb = jnp.subtract(jnp.subtract(special.gammaln(jnp.add(y, n)), special.gammaln(n)),
                        special.gammaln(jnp.add(y, one)))
    out = jnp.add(comb, jnp.add(special.xlogy(n, p), special.xlogy(y, jnp.subtract(one, p))))
    return jnp.where(jnp.less(k, loc), const(out, -np.inf), out)


def pmf(k, n, p, loc=0):
    """The probability of `k`.

    Example:
        >>> from nanofn.scipy.stats import nbinom
        >>> round(float(nbinom.pmf(2, 3, 0.5)), 6)
        0.1875
    """
    return jnp.exp(logpmf(k, n, p, loc))
