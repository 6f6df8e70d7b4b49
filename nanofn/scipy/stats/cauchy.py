"""The Cauchy distribution (`jax.scipy.stats.cauchy`), centred at `loc` with half-width
`scale`."""

from __future__ import annotations

import math

from nanofn import numpy as jnp
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf"]


def _z(x, loc, scale):
    return jnp.divide(jnp.subtract(x, loc), scale)


def logpdf(x, loc=0, scale=1):
    """Log of the Cauchy density, `-log(pi scale) - log1p(z^2)`, `z = (x - loc) / scale`.

    Example:
        >>> from nanofn.scipy.stats import cauchy
        >>> round(float(cauchy.logpdf(1.0)), 6)
        -1.837877
    """
    x, loc, scale = promote_args("cauchy.logpdf", x=x, loc=loc, scale=scale)
    z = _z(x, loc, scale)
    return jnp.negative(jnp.add(jnp.log(jnp.multiply(const(x, math.pi), scale)),
                                jnp.log1p(jnp.square(z))))


def pdf(x, loc=0, scale=1):
    """The Cauchy density.

    Example:
        >>> from nanofn.scipy.stats import cauchy
        >>> round(float(cauchy.pdf(0.0)), 6)
        0.31831
    """
    return jnp.exp(logpdf(x, loc, scale))


def cdf(x, loc=0, scale=1):
    """The distribution function `1/2 + arctan(z) / pi`.

    Example:
        >>> from nanofn.scipy.stats import cauchy
        >>> float(cauchy.cdf(1.0))
        0.75
    """
    x, loc, scale = promote_args("cauchy.cdf", x=x, loc=loc, scale=scale)
    return jnp.add(const(x, 0.5), jnp.multiply(const(x, 1 / math.pi),
                                               jnp.arctan(_z(x, loc, scale))))


def logcdf(x, loc=0, scale=1):
    """Log of the distribution function.

    Example:
        >>> from nanofn.scipy.stats import cauchy
        >>> round(float(cauchy.logcdf(1.0)), 6)
        -0.287682
    """
    return jnp.log(cdf(x, loc, scale))


def sf(x, loc=0, scale=1):
    """The survival function, `cdf(-x, -loc, scale)`.

    Example:
        >>> from nanofn.scipy.stats import cauchy
        >>> float(cauchy.sf(1.0))
        0.25
    """
    x, loc, scale = promote_args("cauchy.sf", x=x, loc=loc, scale=scale)
    return cdf(jnp.negative(x), jnp.negative(loc), scale)


def logsf(x, loc=0, scale=1):
    """Log of the survival function.

    Example:
        >>> from nanofn.scipy.stats import cauchy
        >>> round(float(cauchy.logsf(1.0)), 6)
        -1.386294
    """
    x, loc, scale = promote_args("cauchy.logsf", x=x, loc=loc, scale=scale)
    return logcdf(jnp.negative(x), jnp.negative(loc), scale)


def ppf(q, loc=0, scale=1):
    """The quantile function `loc + scale tan(pi (q - 1/2))`.

    Example:
        >>> from nanofn.scipy.stats import cauchy
        >>> round(float(cauchy.ppf(0.75)), 6)
        1.0
    """
    q, loc, scale = promote_args("cauchy.ppf", q=q, loc=loc, scale=scale)
    return jnp.add(jnp.multiply(_standard_ppf(q), scale), loc)


def _standard_ppf(q):
    """tan(pi (q - 1/2)) as -1 / tan(pi q) below 1/2 and 1 / tan(pi (1 - q)) above: exact
    near both ends (-inf at 0, inf at 1, where tan(pi (q - 1/2)) gives +-1.6e16), NaN
    outside [0, 1]."""
    pi = const(q, math.pi)
    low = jnp.divide(const(q, -1.0), jnp.tan(jnp.multiply(pi, q)))
    high = jnp.divide(const(q, 1.0), jnp.tan(jnp.multiply(pi, jnp.subtract(const(q, 1.0), q))))
    out = jnp.where(q <= 0.5, low, high)
    return jnp.where((q < 0) | (q > 1), const(q, math.nan), out)


def isf(q, loc=0, scale=1):
    """The inverse survival function `loc + scale tan(pi (1/2 - q))`.

    Example:
        >>> from nanofn.scipy.stats import cauchy
        >>> round(float(cauchy.isf(0.25)), 6)
        1.0
    """
    q, loc, scale = promote_args("cauchy.isf", q=q, loc=loc, scale=scale)
    return jnp.subtract(loc, jnp.multiply(_standard_ppf(q), scale))  # the law is symmetric
