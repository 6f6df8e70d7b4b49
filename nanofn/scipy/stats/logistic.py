"""The logistic distribution (`jax.scipy.stats.logistic`)."""

from __future__ import annotations

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf", "cdf", "sf", "ppf", "isf"]


def _z(x, loc, scale):
    return jnp.divide(jnp.subtract(x, loc), scale)


def logpdf(x, loc=0, scale=1):
    """Log of the logistic density, `-2 logaddexp(z/2, -z/2) - log(scale)`.

    Example:
        >>> from nanofn.scipy.stats import logistic
        >>> round(float(logistic.logpdf(0.0)), 6)
        -1.386294
    """
    x, loc, scale = promote_args("logistic.logpdf", x=x, loc=loc, scale=scale)
    half = jnp.multiply(_z(x, loc, scale), const(x, 0.5))
    return jnp.subtract(jnp.multiply(const(x, -2), jnp.logaddexp(half, jnp.negative(half))),
                        jnp.log(scale))


def pdf(x, loc=0, scale=1):
    """The logistic density.

    Example:
        >>> from nanofn.scipy.stats import logistic
        >>> float(logistic.pdf(0.0))
        0.25
    """
    return jnp.exp(logpdf(x, loc, scale))


def cdf(x, loc=0, scale=1):
    """The distribution function `expit(z)`.

    Example:
        >>> from nanofn.scipy.stats import logistic
        >>> float(logistic.cdf(0.0))
        0.5
    """
    x, loc, scale = promote_args("logistic.cdf", x=x, loc=loc, scale=scale)
    return special.expit(_z(x, loc, scale))


def sf(x, loc=0, scale=1):
    """The survival function `expit(-z)`.

    Example:
        >>> from nanofn.scipy.stats import logistic
        >>> round(float(logistic.sf(1.0)), 6)
        0.268941
    """
    x, loc, scale = promote_args("logistic.sf", x=x, loc=loc, scale=scale)
    return special.expit(jnp.negative(_z(x, loc, scale)))


def ppf(x, loc=0, scale=1):
    """The quantile function `loc + scale logit(x)` (JAX names its argument `x`).

    Example:
        >>> from nanofn.scipy.stats import logistic
        >>> float(logistic.ppf(0.5))
        0.0
    """
    x, loc, scale = promote_args("logistic.ppf", x=x, loc=loc, scale=scale)
    return jnp.add(jnp.multiply(special.logit(x), scale), loc)


def isf(x, loc=0, scale=1):
    """The inverse survival function `loc - scale logit(x)`.

    Example:
        >>> from nanofn.scipy.stats import logistic
        >>> round(float(logistic.isf(0.25)), 6)
        1.098612
    """
    x, loc, scale = promote_args("logistic.isf", x=x, loc=loc, scale=scale)
    return jnp.add(jnp.multiply(jnp.negative(special.logit(x)), scale), loc)
