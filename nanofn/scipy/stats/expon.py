"""The exponential distribution (`jax.scipy.stats.expon`), starting at `loc` with mean
`loc + scale`."""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf", "ppf"]


def logpdf(x, loc=0, scale=1):
    """Log of the exponential density, `-(x - loc) / scale - log(scale)` (-inf below loc).

    Example:
        >>> from nanofn.scipy.stats import expon
        >>> float(expon.logpdf(2.0))
        -2.0
    """
    x, loc, scale = promote_args("expon.logpdf", x=x, loc=loc, scale=scale)
    out = jnp.negative(jnp.add(jnp.divide(jnp.subtract(x, loc), scale), jnp.log(scale)))
    return jnp.where(jnp.less(x, loc), const(out, -np.inf), out)


def pdf(x, loc=0, scale=1):
    """The exponential density.

    Example:
        >>> from nanofn.scipy.stats import expon
        >>> float(expon.pdf(0.0))
        1.0
    """
    return jnp.exp(logpdf(x, loc, scale))


def cdf(x, loc=0, scale=1):
    """The distribution function `-expm1(-(x - loc) / scale)` (0 below loc).

    Example:
        >>> from nanofn.scipy.stats import expon
        >>> round(float(expon.cdf(1.0)), 6)
        0.632121
    """
    x, loc, scale = promote_args("expon.cdf", x=x, loc=loc, scale=scale)
    out = jnp.negative(jnp.expm1(jnp.divide(jnp.subtract(loc, x), scale)))
    return jnp.where(jnp.less(x, loc), const(out, 0), out)


def logsf(x, loc=0, scale=1):
    """Log of the survival function, `-(x - loc) / scale` (0 below loc).

    Example:
        >>> from nanofn.scipy.stats import expon
        >>> float(expon.logsf(3.0))
        -3.0
    """
    x, loc, scale = promote_args("expon.logsf", x=x, loc=loc, scale=scale)
    out = jnp.divide(jnp.subtract(loc, x), scale)
    return jnp.where(jnp.less(x, loc), const(out, 0), out)


def sf(x, loc=0, scale=1):
    """The survival function `exp(logsf)`.

    Example:
        >>> from nanofn.scipy.stats import expon
        >>> round(float(expon.sf(1.0)), 6)
        0.367879
    """
    return jnp.exp(logsf(x, loc, scale))


def logcdf(x, loc=0, scale=1):
    """Log of the distribution function, `log1p(-sf)`.

    Example:
        >>> from nanofn.scipy.stats import expon
        >>> round(float(expon.logcdf(1.0)), 6)
        -0.458675
    """
    return jnp.log1p(jnp.negative(sf(x, loc, scale)))


def ppf(q, loc=0, scale=1):
    """The quantile function `loc - scale log1p(-q)` (NaN outside [0, 1]).

    Example:
        >>> from nanofn.scipy.stats import expon
        >>> round(float(expon.ppf(0.5)), 6)
        0.693147
    """
    q, loc, scale = promote_args("expon.ppf", q=q, loc=loc, scale=scale)
    out = jnp.subtract(loc, jnp.multiply(scale, jnp.log1p(jnp.negative(q))))
    bad = jnp.isnan(q) | jnp.less(q, const(q, 0)) | jnp.greater(q, const(q, 1))
    return jnp.where(bad, const(out, np.nan), out)
