"""The right-skewed Gumbel (maximum extreme value) distribution (`jax.scipy.stats.gumbel_r`).

Every method gives NaN where `scale <= 0`.
"""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf", "ppf"]


def _check(out, scale):
    return jnp.where(jnp.greater(scale, const(scale, 0)), out, const(out, np.nan))


def _z(x, loc, scale):
    return jnp.divide(jnp.subtract(x, loc), scale)


def log1mexp(x):
    """`log(1 - exp(-x))` for `x >= 0`, accurate at both ends (log1p or log-expm1)."""
    small = jnp.less_equal(x, const(x, np.log(2.0)))
    return jnp.where(small, jnp.log(jnp.negative(jnp.expm1(jnp.negative(x)))),
                     jnp.log1p(jnp.negative(jnp.exp(jnp.negative(x)))))


def logpdf(x, loc=0, scale=1):
    """Log of the density, `-z - exp(-z) - log(scale)`, `z = (x - loc) / scale`.

    Example:
        >>> from nanofn.scipy.stats import gumbel_r
        >>> float(gumbel_r.logpdf(0.0))
        -1.0
    """
    x, loc, scale = promote_args("gumbel_r.logpdf", x=x, loc=loc, scale=scale)
    z = _z(x, loc, scale)
    return _check(jnp.subtract(jnp.negative(jnp.add(z, jnp.exp(jnp.negative(z)))),
                               jnp.log(scale)), scale)


def pdf(x, loc=0, scale=1):
    """The density.

    Example:
        >>> from nanofn.scipy.stats import gumbel_r
        >>> round(float(gumbel_r.pdf(0.0)), 6)
        0.367879
    """
    return jnp.exp(logpdf(x, loc, scale))


def logcdf(x, loc=0, scale=1):
    """Log of the distribution function, `-exp(-z)`.

    Example:
        >>> from nanofn.scipy.stats import gumbel_r
        >>> float(gumbel_r.logcdf(0.0))
        -1.0
    """
    x, loc, scale = promote_args("gumbel_r.logcdf", x=x, loc=loc, scale=scale)
    return _check(jnp.negative(jnp.exp(jnp.negative(_z(x, loc, scale)))), scale)


def cdf(x, loc=0, scale=1):
    """The distribution function `exp(-exp(-z))`.

    Example:
        >>> from nanofn.scipy.stats import gumbel_r
        >>> round(float(gumbel_r.cdf(0.0)), 6)
        0.367879
    """
    return jnp.exp(logcdf(x, loc, scale))


def sf(x, loc=0, scale=1):
    """The survival function `1 - exp(-exp(-z))`.

    Example:
        >>> from nanofn.scipy.stats import gumbel_r
        >>> round(float(gumbel_r.sf(0.0)), 6)
        0.632121
    """
    x, loc, scale = promote_args("gumbel_r.sf", x=x, loc=loc, scale=scale)
    z = _z(x, loc, scale)
    return _check(jnp.negative(jnp.expm1(jnp.negative(jnp.exp(jnp.negative(z))))), scale)


def logsf(x, loc=0, scale=1):
    """Log of the survival function, `log(1 - exp(-exp(-z)))`, accurate in both tails.

    Example:
        >>> from nanofn.scipy.stats import gumbel_r
        >>> round(float(gumbel_r.logsf(0.0)), 6)
        -0.458675
    """
    x, loc, scale = promote_args("gumbel_r.logsf", x=x, loc=loc, scale=scale)
    return _check(log1mexp(jnp.exp(jnp.negative(_z(x, loc, scale)))), scale)


def ppf(p, loc=0, scale=1):
    """The quantile function `loc - scale log(-log(p))` (NaN outside (0, 1)).

    Example:
        >>> from nanofn.scipy.stats import gumbel_r
        >>> round(float(gumbel_r.ppf(0.5)), 6)
        0.366513
    """
    p, loc, scale = promote_args("gumbel_r.ppf", p=p, loc=loc, scale=scale)
    out = jnp.subtract(loc, jnp.multiply(scale, jnp.log(jnp.negative(jnp.log(p)))))
    ok = jnp.greater(p, const(p, 0)) & jnp.less(p, const(p, 1))
    return jnp.where(ok, out, const(out, np.nan))
