"""The Pareto distribution (`jax.scipy.stats.pareto`) with shape `b`, supported on
`x >= loc + scale`."""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf", "ppf"]


def _below(x, loc, scale):
    return jnp.less(x, jnp.add(loc, scale))


def _z(x, loc, scale):
    return jnp.divide(jnp.subtract(x, loc), scale)


def logpdf(x, b, loc=0, scale=1):
    """Log of the density, `log(b / scale) - (b + 1) log(z)`, `z = (x - loc) / scale`.

    Example:
        >>> from nanofn.scipy.stats import pareto
        >>> round(float(pareto.logpdf(2.0, 3.0)), 6)
        -1.673976
    """
    x, b, loc, scale = promote_args("pareto.logpdf", x=x, b=b, loc=loc, scale=scale)
    # `-log(scale / b)`, not `log(b / scale)`: NaN, not -inf, where b = 0 and scale < 0
    out = jnp.subtract(jnp.negative(jnp.log(jnp.divide(scale, b))),
                       jnp.multiply(jnp.add(b, const(b, 1)), jnp.log(_z(x, loc, scale))))
    return jnp.where(_below(x, loc, scale), const(out, -np.inf), out)


def pdf(x, b, loc=0, scale=1):
    """The density.

    Example:
        >>> from nanofn.scipy.stats import pareto
        >>> float(pareto.pdf(2.0, 3.0))
        0.1875
    """
    return jnp.exp(logpdf(x, b, loc, scale))


def cdf(x, b, loc=0, scale=1):
    """The distribution function `1 - z^-b` (0 below `loc + scale`).

    Example:
        >>> from nanofn.scipy.stats import pareto
        >>> float(pareto.cdf(2.0, 3.0))
        0.875
    """
    x, b, loc, scale = promote_args("pareto.cdf", x=x, b=b, loc=loc, scale=scale)
    out = jnp.subtract(const(x, 1), jnp.power(_z(x, loc, scale), jnp.negative(b)))
    return jnp.where(_below(x, loc, scale), const(out, 0), out)


def logcdf(x, b, loc=0, scale=1):
    """Log of the distribution function, `log1p(-z^-b)`.

    Example:
        >>> from nanofn.scipy.stats import pareto
        >>> round(float(pareto.logcdf(2.0, 3.0)), 6)
        -0.133531
    """
    x, b, loc, scale = promote_args("pareto.logcdf", x=x, b=b, loc=loc, scale=scale)
    out = jnp.log1p(jnp.negative(jnp.power(_z(x, loc, scale), jnp.negative(b))))
    return jnp.where(_below(x, loc, scale), const(out, -np.inf), out)


def logsf(x, b, loc=0, scale=1):
    """Log of the survival function, `-b log(z)` (0 below `loc + scale`).

    Example:
        >>> from nanofn.scipy.stats import pareto
        >>> round(float(pareto.logsf(2.0, 3.0)), 6)
        -2.079442
    """
    x, b, loc, scale = promote_args("pareto.logsf", x=x, b=b, loc=loc, scale=scale)
    out = jnp.negative(jnp.multiply(b, jnp.log(_z(x, loc, scale))))
    return jnp.where(_below(x, loc, scale), const(out, 0), out)


def sf(x, b, loc=0, scale=1):
    """The survival function `z^-b`.

    Example:
        >>> from nanofn.scipy.stats import pareto
        >>> float(pareto.sf(2.0, 3.0))
        0.125
    """
    return jnp.exp(logsf(x, b, loc, scale))


def ppf(q, b, loc=0, scale=1):
    """The quantile function `loc + scale (1 - q)^(-1/b)` (NaN outside [0, 1]).

    Example:
        >>> from nanofn.scipy.stats import pareto
        >>> float(pareto.ppf(0.875, 3.0))
        2.0
    """
    q, b, loc, scale = promote_args("pareto.ppf", q=q, b=b, loc=loc, scale=scale)
    out = jnp.add(loc, jnp.multiply(scale, jnp.power(jnp.subtract(const(q, 1), q),
                                                     jnp.negative(jnp.reciprocal(b)))))
    bad = jnp.isnan(q) | jnp.less(q, const(q, 0)) | jnp.greater(q, const(q, 1))
    return jnp.where(bad, const(out, np.nan), out)
