"""The von Mises distribution on the circle (`jax.scipy.stats.vonmises`) with
concentration `kappa`."""

from __future__ import annotations

import math

import numpy as np

from nanofn import numpy as jnp
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf"]


def logpdf(x, kappa):
    """Log of the density, `kappa (cos x - 1) - log(2 pi i0e(kappa))` (NaN unless
    `kappa > 0`; the density is `2 pi`-periodic in `x`, not cut to one period).

    Example:
        >>> from nanofn.scipy.stats import vonmises
        >>> round(float(vonmises.logpdf(0.0, 1.0)), 6)
        -1.073792
    """
    x, kappa = promote_args("vonmises.logpdf", x=x, kappa=kappa)
    out = jnp.subtract(jnp.multiply(kappa, jnp.subtract(jnp.cos(x), const(x, 1))),
                       jnp.log(jnp.multiply(const(kappa, 2 * math.pi), special.i0e(kappa))))
    return jnp.where(jnp.greater(kappa, const(kappa, 0)), out, const(out, np.nan))


def pdf(x, kappa):
    """The density.

    Example:
        >>> from nanofn.scipy.stats import vonmises
        >>> round(float(vonmises.pdf(0.0, 1.0)), 6)
        0.34171
    """
    return jnp.exp(logpdf(x, kappa))
