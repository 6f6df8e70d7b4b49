"""The generalized normal distribution (`jax.scipy.stats.gennorm`) with shape `beta`:
density `beta / (2 Gamma(1/beta)) exp(-|x|^beta)` (2 is the normal, 1 the Laplace)."""

from __future__ import annotations

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, nan_unless, promote_args

__all__ = ["logpdf", "pdf", "cdf"]


def logpdf(x, beta):
    """Log of the density, `log(beta / 2) - lgamma(1 / beta) - |x|^beta`.

    Example:
        >>> from nanofn.scipy.stats import gennorm
        >>> round(float(gennorm.logpdf(1.0, 2.0)), 6)
        -1.572365
    """
    x, beta = promote_args("gennorm.logpdf", x=x, beta=beta)
    return jnp.subtract(jnp.subtract(jnp.log(jnp.multiply(const(beta, 0.5), beta)),
                                     special.gammaln(jnp.reciprocal(beta))),
                        jnp.power(jnp.abs(x), beta))


def pdf(x, beta):
    """The density.

    Example:
        >>> from nanofn.scipy.stats import gennorm
        >>> float(gennorm.pdf(0.0, 1.0))
        0.5
    """
    return jnp.exp(logpdf(x, beta))


def cdf(x, beta):
    """The distribution function `(1 + sign(x) gammainc(1/beta, |x|^beta)) / 2`, accurate
    in the lower tail; NaN unless `beta > 0`.

    Example:
        >>> from nanofn.scipy.stats import gennorm
        >>> round(float(gennorm.cdf(1.0, 2.0)), 6)
        0.92135
    """
    x, beta = promote_args("gennorm.cdf", x=x, beta=beta)
    # below 0 the cdf is half the upper tail, computed directly (no 1 - P cancellation)
    tail = jnp.multiply(const(x, 0.5), special.gammaincc(jnp.reciprocal(beta),
                                                         jnp.power(jnp.abs(x), beta)))
    out = jnp.where(jnp.less(x, const(x, 0)), tail, jnp.subtract(const(x, 1), tail))
    return nan_unless(out, beta)
