"""The uniform distribution on `[loc, loc + scale]` (`jax.scipy.stats.uniform`)."""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf", "cdf", "ppf"]


def logpdf(x, loc=0, scale=1):
    """Log of the uniform density: `-log(scale)` inside `[loc, loc + scale]`, -inf outside.

    Example:
        >>> from nanofn.scipy.stats import uniform
        >>> float(uniform.logpdf(0.5))
        0.0
    """
    x, loc, scale = promote_args("uniform.logpdf", x=x, loc=loc, scale=scale)
    out = jnp.negative(jnp.log(scale))
    outside = jnp.greater(x, jnp.add(loc, scale)) | jnp.less(x, loc)
    return jnp.where(outside, const(out, -np.inf), out)


def pdf(x, loc=0, scale=1):
    """The uniform density.

    Example:
        >>> from nanofn.scipy.stats import uniform
        >>> float(uniform.pdf(0.5, 0.0, 2.0))
        0.5
    """
    return jnp.exp(logpdf(x, loc, scale))


def cdf(x, loc=0, scale=1):
    """The distribution function `(x - loc) / scale`, clipped to [0, 1].

    Example:
        >>> from nanofn.scipy.stats import uniform
        >>> float(uniform.cdf(0.25))
        0.25
    """
    x, loc, scale = promote_args("uniform.cdf", x=x, loc=loc, scale=scale)
    inside = jnp.divide(jnp.subtract(x, loc), scale)
    return jnp.select([jnp.less(x, loc), jnp.greater(x, jnp.add(loc, scale)),
                       jnp.greater_equal(x, loc) & jnp.less_equal(x, jnp.add(loc, scale))],
                      [const(inside, 0), const(inside, 1), inside], const(inside, 0))


def ppf(q, loc=0, scale=1):
    """The quantile function `loc + scale q` (NaN outside [0, 1]).

    Example:
        >>> from nanofn.scipy.stats import uniform
        >>> float(uniform.ppf(0.25, 1.0, 2.0))
        1.5
    """
    q, loc, scale = promote_args("uniform.ppf", q=q, loc=loc, scale=scale)
    out = jnp.add(loc, jnp.multiply(scale, q))
    bad = jnp.isnan(q) | jnp.less(q, const(q, 0)) | jnp.greater(q, const(q, 1))
    return jnp.where(bad, const(out, np.nan), out)
