"""The geometric distribution (`jax.scipy.stats.geom`): the trial of the first success, on
1, 2, ..."""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpmf", "pmf"]


def logpmf(k, p, loc=0):
    """Log of the probability of `k`: `(k - 1) log1p(-p) + log p` with `k` shifted by `loc`
    (-inf for `k - loc <= 0`).

    Example:
        >>> from nanofn.scipy.stats import geom
        >>> round(float(geom.logpmf(3, 0.5)), 6)
        -2.079442
    """
    k, p, loc = promote_args("geom.logpmf", k=k, p=p, loc=loc)
    x = jnp.subtract(k, loc)
    out = jnp.add(special.xlog1py(jnp.subtract(x, const(x, 1)), jnp.negative(p)), jnp.log(p))
    return jnp.where(jnp.less_equal(x, const(x, 0)), const(out, -np.inf), out)


def pmf(k, p, loc=0):
    """The probability of `k`.

    Example:
        >>> from nanofn.scipy.stats import geom
        >>> float(geom.pmf(3, 0.5))
        0.125
    """
    return jnp.exp(logpmf(k, p, loc))
