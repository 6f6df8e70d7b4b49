"""The gamma distribution (`jax.scipy.stats.gamma`) with shape `a`."""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, inside, log_prob, nan_unless, promote_args

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"]


def logpdf(x, a, loc=0, scale=1):
    """Log of the density, `(a - 1) log(y) - y - lgamma(a) - log(scale)`,
    `y = (x - loc) / scale` (-inf below loc).

    Example:
        >>> from nanofn.scipy.stats import gamma
        >>> round(float(gamma.logpdf(1.0, 2.0)), 6)
        -1.0
    """
    x, a, loc, scale = promote_args("gamma.logpdf", x=x, a=a, loc=loc, scale=scale)
    ok = jnp.greater_equal(x, loc)
    y = jnp.where(ok, jnp.divide(jnp.subtract(x, loc), scale), const(x, 1))
    out = jnp.subtract(jnp.subtract(special.xlogy(jnp.subtract(a, const(a, 1)), y), y),
                       jnp.add(special.gammaln(a), jnp.log(scale)))
    return jnp.where(ok, out, const(out, -np.inf))


def pdf(x, a, loc=0, scale=1):
    """The density.

    Example:
        >>> from nanofn.scipy.stats import gamma
        >>> round(float(gamma.pdf(1.0, 2.0)), 6)
        0.367879
    """
    return jnp.exp(logpdf(x, a, loc, scale))


def cdf(x, a, loc=0, scale=1):
    """The distribution function, the regularized lower incomplete gamma `gammainc(a, y)`;
    NaN unless `a > 0`, and at a NaN point.

    Example:
        >>> from nanofn.scipy.stats import gamma
        >>> round(float(gamma.cdf(1.0, 2.0)), 6)
        0.264241
    """
    x, a, loc, scale = promote_args("gamma.cdf", x=x, a=a, loc=loc, scale=scale)
    y, mask = inside(jnp.divide(jnp.subtract(x, loc), scale), 0)
    out = special.gammainc(a, y)
    out = jnp.where(mask, out, const(out, 0))
    return nan_unless(out, a, also=jnp.isnan(jnp.divide(jnp.subtract(x, loc), scale)))


def logcdf(x, a, loc=0, scale=1):
    """Log of the distribution function (from `sf` where the cdf is near 1).

    Example:
        >>> from nanofn.scipy.stats import gamma
        >>> round(float(gamma.logcdf(1.0, 2.0)), 6)
        -1.330893
    """
    return log_prob(cdf(x, a, loc, scale), sf(x, a, loc, scale))


def sf(x, a, loc=0, scale=1):
    """The survival function `gammaincc(a, y)` (1 below loc); NaN unless `a > 0`,
    and at a NaN point.

    Example:
        >>> from nanofn.scipy.stats import gamma
        >>> round(float(gamma.sf(1.0, 2.0)), 6)
        0.735759
    """
    x, a, loc, scale = promote_args("gamma.sf", x=x, a=a, loc=loc, scale=scale)
    y, mask = inside(jnp.divide(jnp.subtract(x, loc), scale), 0)
    out = special.gammaincc(a, y)
    out = jnp.where(mask, out, const(out, 1))
    return nan_unless(out, a, also=jnp.isnan(jnp.divide(jnp.subtract(x, loc), scale)))


def logsf(x, a, loc=0, scale=1):
    """Log of the survival function (from `cdf` where the sf is near 1).

    Example:
        >>> from nanofn.scipy.stats import gamma
        >>> round(float(gamma.logsf(1.0, 2.0)), 6)
        -0.306853
    """
    return log_prob(sf(x, a, loc, scale), cdf(x, a, loc, scale))
