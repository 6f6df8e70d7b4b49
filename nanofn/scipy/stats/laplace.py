"""The Laplace (double exponential) distribution (`jax.scipy.stats.laplace`)."""

from __future__ import annotations

from nanofn import numpy as jnp
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf", "cdf"]


def logpdf(x, loc=0, scale=1):
    """Log of the Laplace density, `-|x - loc| / scale - log(2 scale)`.

    Example:
        >>> from nanofn.scipy.stats import laplace
        >>> round(float(laplace.logpdf(1.0)), 6)
        -1.693147
    """
    x, loc, scale = promote_args("laplace.logpdf", x=x, loc=loc, scale=scale)
    return jnp.negative(jnp.add(jnp.divide(jnp.abs(jnp.subtract(x, loc)), scale),
                                jnp.log(jnp.multiply(const(x, 2), scale))))


def pdf(x, loc=0, scale=1):
    """The Laplace density.

    Example:
        >>> from nanofn.scipy.stats import laplace
        >>> float(laplace.pdf(0.0))
        0.5
    """
    return jnp.exp(logpdf(x, loc, scale))


def cdf(x, loc=0, scale=1):
    """The distribution function: `exp(z) / 2` for `z <= 0`, `1 - exp(-z) / 2` above.

    Example:
        >>> from nanofn.scipy.stats import laplace
        >>> round(float(laplace.cdf(1.0)), 6)
        0.81606
    """
    x, loc, scale = promote_args("laplace.cdf", x=x, loc=loc, scale=scale)
    z = jnp.divide(jnp.subtract(x, loc), scale)
    below = jnp.less_equal(z, const(z, 0))
    # each branch sees only the half where it is used, so neither overflows
    lo = jnp.multiply(const(z, 0.5), jnp.exp(jnp.where(below, z, const(z, 0))))
    upper = jnp.exp(jnp.negative(jnp.where(below, const(z, 0), z)))
    hi = jnp.subtract(const(z, 1), jnp.multiply(const(z, 0.5), upper))
    return jnp.where(below, lo, hi)
