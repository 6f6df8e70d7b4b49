"""The normal distribution (`jax.scipy.stats.norm`), with mean `loc` and standard deviation
`scale`."""

from __future__ import annotations

import math

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf"]


def logpdf(x, loc=0, scale=1):
    """Log of the normal density: `-((x - loc) / scale)^2 / 2 - log(scale sqrt(2 pi))`.

    Example:
        >>> from nanofn.scipy.stats import norm
        >>> round(float(norm.logpdf(1.0)), 6)
        -1.418939
    """
    x, loc, scale = promote_args("norm.logpdf", x=x, loc=loc, scale=scale)
    z = jnp.divide(jnp.subtract(x, loc), scale)
    return jnp.subtract(jnp.multiply(const(z, -0.5), jnp.square(z)),
                        jnp.add(jnp.log(scale), const(x, 0.5 * math.log(2 * math.pi))))


def pdf(x, loc=0, scale=1):
    """The normal density, `exp(logpdf(x, loc, scale))`.

    Example:
        >>> from nanofn.scipy.stats import norm
        >>> round(float(norm.pdf(0.0)), 6)
        0.398942
    """
    return jnp.exp(logpdf(x, loc, scale))


def cdf(x, loc=0, scale=1):
    """The normal distribution function `ndtr((x - loc) / scale)`.

    Example:
        >>> from nanofn.scipy.stats import norm
        >>> round(float(norm.cdf(1.0)), 6)
        0.841345
    """
    x, loc, scale = promote_args("norm.cdf", x=x, loc=loc, scale=scale)
    return special.ndtr(jnp.divide(jnp.subtract(x, loc), scale))


def logcdf(x, loc=0, scale=1):
    """Log of the distribution function, accurate far in the lower tail (`log_ndtr`).

    Example:
        >>> from nanofn.scipy.stats import norm
        >>> round(float(norm.logcdf(-40.0)), 3)
        -804.608
    """
    x, loc, scale = promote_args("norm.logcdf", x=x, loc=loc, scale=scale)
    return special.log_ndtr(jnp.divide(jnp.subtract(x, loc), scale))


def sf(x, loc=0, scale=1):
    """The survival function `1 - cdf`, computed as `cdf(-x, -loc, scale)` (no cancellation).

    Example:
        >>> from nanofn.scipy.stats import norm
        >>> round(float(norm.sf(1.0)), 6)
        0.158655
    """
    x, loc, scale = promote_args("norm.sf", x=x, loc=loc, scale=scale)
    return cdf(jnp.negative(x), jnp.negative(loc), scale)


def logsf(x, loc=0, scale=1):
    """Log of the survival function, accurate far in the upper tail.

    Example:
        >>> from nanofn.scipy.stats import norm
        >>> round(float(norm.logsf(40.0)), 3)
        -804.608
    """
    x, loc, scale = promote_args("norm.logsf", x=x, loc=loc, scale=scale)
    return logcdf(jnp.negative(x), jnp.negative(loc), scale)


def ppf(q, loc=0, scale=1):
    """The quantile function (inverse of `cdf`): `loc + scale * ndtri(q)`.

    Example:
        >>> from nanofn.scipy.stats import norm
        >>> round(float(norm.ppf(0.975)), 6)
        1.959964
    """
    q, loc, scale = promote_args("norm.ppf", q=q, loc=loc, scale=scale)
    return jnp.add(jnp.multiply(special.ndtri(q), scale), loc)


def isf(q, loc=0, scale=1):
    """The inverse survival function, `ppf(1 - q, loc, scale)`.

    Example:
        >>> from nanofn.scipy.stats import norm
        >>> round(float(norm.isf(0.025)), 6)
        1.959964
    """
    q, loc, scale = promote_args("norm.isf", q=q, loc=loc, scale=scale)
    return ppf(jnp.subtract(const(q, 1), q), loc, scale)
