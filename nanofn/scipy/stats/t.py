"""Student's t distribution (`jax.scipy.stats.t`), with `df` degrees of freedom."""

from __future__ import annotations

import math

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf"]


def logpdf(x, df, loc=0, scale=1):
    """Log of the t density: `lgamma((df+1)/2) - lgamma(df/2) - log(scale sqrt(pi df))
    - (df+1)/2 log1p(z^2 / df)` with `z = (x - loc) / scale`.

    Example:
        >>> from nanofn.scipy.stats import t
        >>> round(float(t.logpdf(1.0, 3.0)), 6)
        -1.576253
    """
    x, df, loc, scale = promote_args("t.logpdf", x=x, df=df, loc=loc, scale=scale)
    z = jnp.divide(jnp.subtract(x, loc), scale)
    half_df = jnp.multiply(df, const(df, 0.5))
    half_df1 = jnp.add(half_df, const(df, 0.5))
    norm = jnp.add(jnp.subtract(special.gammaln(half_df), special.gammaln(half_df1)),
                   jnp.add(jnp.log(scale), jnp.multiply(const(df, 0.5), jnp.log(
                       jnp.multiply(df, const(df, math.pi))))))
    return jnp.negative(jnp.add(norm, jnp.multiply(
        half_df1, jnp.log1p(jnp.divide(jnp.square(z), df)))))


def pdf(x, df, loc=0, scale=1):
    """The t density, `exp(logpdf(x, df, loc, scale))`.

    Example:
        >>> from nanofn.scipy.stats import t
        >>> round(float(t.pdf(0.0, 1.0)), 6)  # Cauchy's 1/pi
        0.31831
    """
    return jnp.exp(logpdf(x, df, loc, scale))
