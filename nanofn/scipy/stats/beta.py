"""The beta distribution (`jax.scipy.stats.beta`) with shapes `a`, `b` on
`[loc, loc + scale]`."""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, inside, log_prob, nan_unless, promote_args

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"]


def logpdf(x, a, b, loc=0, scale=1):
    """Log of the density, `(a-1) log y + (b-1) log1p(-y) - betaln(a, b) - log(scale)`,
    `y = (x - loc) / scale`; -inf outside the support, NaN unless `a, b, scale > 0`.

    Example:
        >>> from nanofn.scipy.stats import beta
        >>> round(float(beta.logpdf(0.5, 2.0, 2.0)), 6)
        0.405465
    """
    x, a, b, loc, scale = promote_args("beta.logpdf", x=x, a=a, b=b, loc=loc, scale=scale)
    one = const(x, 1)
    y = jnp.divide(jnp.subtract(x, loc), scale)
    linear = jnp.add(special.xlogy(jnp.subtract(a, one), y),
                     special.xlog1py(jnp.subtract(b, one), jnp.negative(y)))
    out = jnp.subtract(jnp.subtract(linear, special.betaln(a, b)), jnp.log(scale))
    outside = jnp.greater(x, jnp.add(loc, scale)) | jnp.less(x, loc)
    out = jnp.where(outside, const(out, -np.inf), out)
    zero = const(a, 0)
    bad = (jnp.less_equal(a, zero) | jnp.less_equal(b, zero) | jnp.less_equal(scale, zero)
           | jnp.isnan(y))
    return jnp.where(bad, const(out, np.nan), out)


def pdf(x, a, b, loc=0, scale=1):
    """The density.

    Example:
        >>> from nanofn.scipy.stats import beta
        >>> float(beta.pdf(0.5, 2.0, 2.0))
        1.5
    """
    return jnp.exp(logpdf(x, a, b, loc, scale))


def _y(x, loc, scale):
    """`(y_safe, mask, above)`: the standardised point, inside (0, 1) where it is not."""
    y = jnp.divide(jnp.subtract(x, loc), scale)
    y_safe, mask = inside(y, 0, 1)
    return y_safe, mask, jnp.greater_equal(y, const(y, 1))


def _y_nan(x, loc, scale):
    """Where the standardised point is NaN (a NaN argument, or `0 / 0` at `scale = 0`)."""
    return jnp.isnan(jnp.divide(jnp.subtract(x, loc), scale))


def cdf(x, a, b, loc=0, scale=1):
    """The distribution function, the regularized incomplete beta `betainc(a, b, y)`;
    NaN unless `a, b > 0`, and at a NaN point.

    Example:
        >>> from nanofn.scipy.stats import beta
        >>> float(beta.cdf(0.5, 2.0, 2.0))
        0.5
    """
    x, a, b, loc, scale = promote_args("beta.cdf", x=x, a=a, b=b, loc=loc, scale=scale)
    y, mask, above = _y(x, loc, scale)
    out = special.betainc(a, b, y)
    out = jnp.where(mask, out, jnp.where(above, const(out, 1), const(out, 0)))
    return nan_unless(out, a, b, also=_y_nan(x, loc, scale))


def logcdf(x, a, b, loc=0, scale=1):
    """Log of the distribution function (from `sf` where the cdf is near 1).

    Example:
        >>> from nanofn.scipy.stats import beta
        >>> round(float(beta.logcdf(0.5, 2.0, 2.0)), 6)
        -0.693147
    """
    return log_prob(cdf(x, a, b, loc, scale), sf(x, a, b, loc, scale))


def sf(x, a, b, loc=0, scale=1):
    """The survival function `betainc(b, a, 1 - y)`; NaN unless `a, b > 0`, and at a NaN
    point.

    Example:
        >>> from nanofn.scipy.stats import beta
        >>> float(beta.sf(0.5, 2.0, 2.0))
        0.5
    """
    x, a, b, loc, scale = promote_args("beta.sf", x=x, a=a, b=b, loc=loc, scale=scale)
    y, mask, above = _y(x, loc, scale)
    out = special.betainc(b, a, jnp.subtract(const(y, 1), y))
    out = jnp.where(mask, out, jnp.where(above, const(out, 0), const(out, 1)))
    return nan_unless(out, a, b, also=_y_nan(x, loc, scale))


def logsf(x, a, b, loc=0, scale=1):
    """Log of the survival function (from `cdf` where the sf is near 1).

    Example:
        >>> from nanofn.scipy.stats import beta
        >>> round(float(beta.logsf(0.5, 2.0, 2.0)), 6)
        -0.693147
    """
    return log_prob(sf(x, a, b, loc, scale), cdf(x, a, b, loc, scale))
