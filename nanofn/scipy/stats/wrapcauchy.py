"""The wrapped Cauchy distribution on `[0, 2 pi]` (`jax.scipy.stats.wrapcauchy`) with shape
`0 < c < 1`."""

from __future__ import annotations

import math

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf"]


def logpdf(x, c):
    """Log of the density, `log(1 - c^2) - log(2 pi) - log(1 + c^2 - 2 c cos x)`: -inf outside
    `[0, 2 pi]`, NaN unless `0 < c < 1`.

    Example:
        >>> from nanofn.scipy.stats import wrapcauchy
        >>> round(float(wrapcauchy.logpdf(1.0, 0.5)), 6)
        -1.782643
    """
    x, c = promote_args("wrapcauchy.logpdf", x=x, c=c)
    one = const(c, 1)
    c2 = jnp.square(c)
    denom = jnp.subtract(jnp.add(one, c2), jnp.multiply(jnp.multiply(const(c, 2), c), jnp.cos(x)))
    log_num = jnp.subtract(jnp.log(jnp.subtract(one, c2)), const(c, math.log(2 * math.pi)))
    out = jnp.subtract(log_num, jnp.log(denom))
    inside = jnp.greater_equal(x, const(x, 0)) & jnp.less_equal(x, const(x, 2 * math.pi))
    out = jnp.where(inside, out, const(out, -np.inf))
    ok = jnp.greater(c, const(c, 0)) & jnp.less(c, one)
    return jnp.where(ok, out, const(out, np.nan))


def pdf(x, c):
    """The density.

    Example:
        >>> from nanofn.scipy.stats import wrapcauchy
        >>> round(float(wrapcauchy.pdf(1.0, 0.5)), 6)
        0.168193
    """
    return jnp.exp(logpdf(x, c))
