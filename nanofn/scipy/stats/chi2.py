"""The chi-squared distribution (`jax.scipy.stats.chi2`) with `df` degrees of freedom."""

from __future__ import annotations

import math

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, inside, log_prob, nan_unless, promote_args

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"]


def logpdf(x, df, loc=0, scale=1):
    """Log of the density, `(df/2 - 1) log(y) - y/2 - lgamma(df/2) - df/2 log 2 - log(scale)`,
    `y = (x - loc) / scale` (-inf below loc).

    Example:
        >>> from nanofn.scipy.stats import chi2
        >>> round(float(chi2.logpdf(1.0, 3.0)), 6)
        -1.418939
    """
    x, df, loc, scale = promote_args("chi2.logpdf", x=x, df=df, loc=loc, scale=scale)
    y = jnp.divide(jnp.subtract(x, loc), scale)
    half_df = jnp.multiply(df, const(df, 0.5))
    kernel = jnp.subtract(jnp.multiply(jnp.subtract(half_df, const(df, 1)), jnp.log(y)),
                          jnp.multiply(y, const(y, 0.5)))
    norm = jnp.add(special.gammaln(half_df), jnp.multiply(half_df, const(df, math.log(2))))
    out = jnp.add(jnp.subtract(jnp.negative(norm), jnp.log(scale)), kernel)
    return jnp.where(jnp.less(x, loc), const(out, -np.inf), out)


def pdf(x, df, loc=0, scale=1):
    """The density.

    Example:
        >>> from nanofn.scipy.stats import chi2
        >>> round(float(chi2.pdf(1.0, 3.0)), 6)
        0.241971
    """
    return jnp.exp(logpdf(x, df, loc, scale))


def _half_y(x, loc, scale):
    return inside(jnp.divide(jnp.subtract(x, loc), jnp.multiply(scale, const(scale, 2))), 0)


def cdf(x, df, loc=0, scale=1):
    """The distribution function `gammainc(df/2, y/2)`; NaN unless `df > 0`, and at a NaN
    point.

    Example:
        >>> from nanofn.scipy.stats import chi2
        >>> round(float(chi2.cdf(1.0, 3.0)), 6)
        0.198748
    """
    x, df, loc, scale = promote_args("chi2.cdf", x=x, df=df, loc=loc, scale=scale)
    y, mask = _half_y(x, loc, scale)
    out = special.gammainc(jnp.multiply(df, const(df, 0.5)), y)
    out = jnp.where(mask, out, const(out, 0))
    return nan_unless(out, df, also=jnp.isnan(jnp.divide(jnp.subtract(x, loc), scale)))


def logcdf(x, df, loc=0, scale=1):
    """Log of the distribution function (from `sf` where the cdf is near 1).

    Example:
        >>> from nanofn.scipy.stats import chi2
        >>> round(float(chi2.logcdf(1.0, 3.0)), 6)
        -1.615717
    """
    return log_prob(cdf(x, df, loc, scale), sf(x, df, loc, scale))


def sf(x, df, loc=0, scale=1):
    """The survival function `gammaincc(df/2, y/2)`; NaN unless `df > 0`, and at a NaN
    point.

    Example:
        >>> from nanofn.scipy.stats import chi2
        >>> round(float(chi2.sf(1.0, 3.0)), 6)
        0.801252
    """
    x, df, loc, scale = promote_args("chi2.sf", x=x, df=df, loc=loc, scale=scale)
    y, mask = _half_y(x, loc, scale)
    out = special.gammaincc(jnp.multiply(df, const(df, 0.5)), y)
    out = jnp.where(mask, out, const(out, 1))
    return nan_unless(out, df, also=jnp.isnan(jnp.divide(jnp.subtract(x, loc), scale)))


def logsf(x, df, loc=0, scale=1):
    """Log of the survival function (from `cdf` where the sf is near 1).

    Example:
        >>> from nanofn.scipy.stats import chi2
        >>> round(float(chi2.logsf(1.0, 3.0)), 6)
        -0.22158
    """
    return log_prob(sf(x, df, loc, scale), cdf(x, df, loc, scale))
