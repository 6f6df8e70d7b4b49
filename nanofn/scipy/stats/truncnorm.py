"""The truncated normal distribution (`jax.scipy.stats.truncnorm`): a normal with mean `loc`
and deviation `scale` cut to `[loc + a scale, loc + b scale]` (`a`, `b` in standard units).

The mass between the cut points is computed in logs, from whichever tail keeps it accurate,
so the methods stay finite far in the tails (`a = 30`, say).
"""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats import norm
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"]


def _log_diff(x, y):
    """`log(exp(x) - exp(y))` for `x >= y`."""
    # x + log(1 - exp(y - x)); the difference is <= 0
    d = jnp.subtract(y, x)
    small = jnp.greater(d, const(d, -0.6931471805599453))
    return jnp.add(x, jnp.where(small, jnp.log(jnp.negative(jnp.expm1(d))),
                                jnp.log1p(jnp.negative(jnp.exp(d)))))


def _log_gauss_mass(a, b):
    """`log(ndtr(b) - ndtr(a))` for `a <= b`, from the tail that keeps it accurate."""
    a, b = jnp.broadcast_arrays(a, b)
    left = jnp.less_equal(b, const(b, 0))
    right = jnp.greater(a, const(a, 0))
    central = ~(left | right)
    a_tail = jnp.where(right, jnp.negative(b), a)
    b_tail = jnp.where(right, jnp.negative(a), b)
    tail = _log_diff(special.log_ndtr(b_tail), special.log_ndtr(a_tail))
    mid = jnp.log1p(jnp.negative(jnp.add(special.ndtr(a), special.ndtr(jnp.negative(b)))))
    return jnp.where(central, mid, tail)


def logpdf(x, a, b, loc=0, scale=1):
    """Log of the density, `norm.logpdf(x, loc, scale) - log(ndtr(b) - ndtr(a))` inside the
    cut points, -inf outside, NaN where `a >= b`.

    Example:
        >>> from nanofn.scipy.stats import truncnorm
        >>> round(float(truncnorm.logpdf(0.0, -1.0, 1.0)), 6)
        -0.537223
    """
    x, a, b, loc, scale = promote_args("truncnorm.logpdf", x=x, a=a, b=b, loc=loc, scale=scale)
    out = jnp.subtract(norm.logpdf(x, loc, scale), _log_gauss_mass(a, b))
    z = jnp.divide(jnp.subtract(x, loc), scale)
    out = jnp.where(jnp.less(z, a) | jnp.greater(z, b), const(out, -np.inf), out)
    return jnp.where(jnp.greater_equal(a, b), const(out, np.nan), out)


def pdf(x, a, b, loc=0, scale=1):
    """The density.

    Example:
        >>> from nanofn.scipy.stats import truncnorm
        >>> round(float(truncnorm.pdf(0.0, -1.0, 1.0)), 6)
        0.584369
    """
    return jnp.exp(logpdf(x, a, b, loc, scale))


def logcdf(x, a, b, loc=0, scale=1):
    """Log of the distribution function: 0 above `b`, -inf below `a`, NaN where `a >= b`.

    Example:
        >>> from nanofn.scipy.stats import truncnorm
        >>> round(float(truncnorm.logcdf(0.0, -1.0, 1.0)), 6)
        -0.693147
    """
    x, a, b, loc, scale = promote_args("truncnorm.logcdf", x=x, a=a, b=b, loc=loc, scale=scale)
    x, a, b = jnp.broadcast_arrays(x, a, b)
    z = jnp.divide(jnp.subtract(x, loc), scale)
    total = _log_gauss_mass(a, b)
    # evaluate the masses at a point strictly inside (a, b) where z is not: the unused
    # branches then stay finite, and so do their derivatives (times the zero `select`
    # passes them)
    between = jnp.greater(z, a) & jnp.less(z, b)
    zi = jnp.where(between, z, jnp.multiply(jnp.add(a, b), const(z, 0.5)))
    log_cdf = jnp.subtract(_log_gauss_mass(a, zi), total)
    log_sf = jnp.subtract(_log_gauss_mass(zi, b), total)
    near_one = jnp.log1p(jnp.negative(jnp.exp(log_sf)))
    out = jnp.select([jnp.greater_equal(z, b), jnp.less_equal(z, a),
                      jnp.greater(log_cdf, const(log_cdf, -0.1))],
                     [const(z, 0), const(z, -np.inf), near_one], log_cdf)
    # NaN where the standardised point is (a NaN x, or 0 / 0 at scale = 0), as scipy's
    return jnp.where(jnp.greater_equal(a, b) | jnp.isnan(z), const(out, np.nan), out)


def cdf(x, a, b, loc=0, scale=1):
    """The distribution function.

    Example:
        >>> from nanofn.scipy.stats import truncnorm
        >>> float(truncnorm.cdf(0.0, -1.0, 1.0))
        0.5
    """
    return jnp.exp(logcdf(x, a, b, loc, scale))


def logsf(x, a, b, loc=0, scale=1):
    """Log of the survival function, `logcdf(-x, -b, -a, -loc, scale)`.

    Example:
        >>> from nanofn.scipy.stats import truncnorm
        >>> round(float(truncnorm.logsf(0.0, -1.0, 1.0)), 6)
        -0.693147
    """
    x, a, b, loc, scale = promote_args("truncnorm.logsf", x=x, a=a, b=b, loc=loc, scale=scale)
    return logcdf(jnp.negative(x), jnp.negative(b), jnp.negative(a), jnp.negative(loc), scale)


def sf(x, a, b, loc=0, scale=1):
    """The survival function.

    Example:
        >>> from nanofn.scipy.stats import truncnorm
        >>> float(truncnorm.sf(0.0, -1.0, 1.0))
        0.5
    """
    return jnp.exp(logsf(x, a, b, loc, scale))
