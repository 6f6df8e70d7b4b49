"""The left-skewed Gumbel (minimum extreme value) distribution (`jax.scipy.stats.gumbel_l`),
the mirror image of `gumbel_r`.

Every method gives NaN where `scale <= 0`.
"""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy.stats._util import const, promote_args
from nanofn.scipy.stats.gumbel_r import _check, _z, log1mexp

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf", "ppf"]


def logpdf(x, loc=0, scale=1):
    """Log of the density, `z - exp(z) - log(scale)`, `z = (x - loc) / scale`.

    Example:
        >>> from nanofn.scipy.stats import gumbel_l
        >>> float(gumbel_l.logpdf(0.0))
        -1.0
    """
    x, loc, scale = promote_args("gumbel_l.logpdf", x=x, loc=loc, scale=scale)
    z = _z(x, loc, scale)
    return _check(jnp.subtract(jnp.subtract(z, jnp.exp(z)), jnp.log(scale)), scale)


def pdf(x, loc=0, scale=1):
    """The density.

    Example:
        >>> from nanofn.scipy.stats import gumbel_l
        >>> round(float(gumbel_l.pdf(0.0)), 6)
        0.367879
    """
    return jnp.exp(logpdf(x, loc, scale))


def logcdf(x, loc=0, scale=1):
    """Log of the distribution function, `log(1 - exp(-exp(z)))`.

    Example:
        >>> from nanofn.scipy.stats import gumbel_l
        >>> round(float(gumbel_l.logcdf(0.0)), 6)
        -0.458675
    """
    x, loc, scale = promote_args("gumbel_l.logcdf", x=x, loc=loc, scale=scale)
    return _check(log1mexp(jnp.exp(_z(x, loc, scale))), scale)


def cdf(x, loc=0, scale=1):
    """The distribution function `1 - exp(-exp(z))`.

    Example:
        >>> from nanofn.scipy.stats import gumbel_l
        >>> round(float(gumbel_l.cdf(0.0)), 6)
        0.632121
    """
    return jnp.exp(logcdf(x, loc, scale))


def logsf(x, loc=0, scale=1):
    """Log of the survival function, `-exp(z)`.

    Example:
        >>> from nanofn.scipy.stats import gumbel_l
        >>> float(gumbel_l.logsf(0.0))
        -1.0
    """
    x, loc, scale = promote_args("gumbel_l.logsf", x=x, loc=loc, scale=scale)
    return _check(jnp.negative(jnp.exp(_z(x, loc, scale))), scale)


def sf(x, loc=0, scale=1):
    """The survival function `exp(-exp(z))`.

    Example:
        >>> from nanofn.scipy.stats import gumbel_l
        >>> round(float(gumbel_l.sf(0.0)), 6)
        0.367879
    """
    return jnp.exp(logsf(x, loc, scale))


def ppf(p, loc=0, scale=1):
    """The quantile function `loc + scale log(-log1p(-p))` (NaN outside (0, 1)).

    Example:
        >>> from nanofn.scipy.stats import gumbel_l
        >>> round(float(gumbel_l.ppf(0.5)), 6)
        -0.366513
    """
    p, loc, scale = promote_args("gumbel_l.ppf", p=p, loc=loc, scale=scale)
    out = jnp.add(loc, jnp.multiply(scale, jnp.log(jnp.negative(jnp.log1p(jnp.negative(p))))))
    ok = jnp.greater(p, const(p, 0)) & jnp.less(p, const(p, 1))
    return jnp.where(ok, out, const(out, np.nan))
