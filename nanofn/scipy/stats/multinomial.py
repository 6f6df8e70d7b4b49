"""The multinomial distribution (`jax.scipy.stats.multinomial`): counts `x` of `n` draws
among categories of probabilities `p`."""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.numpy._dtypes import dtype_of
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpmf", "pmf"]


def logpmf(x, n, p):
    """Log of the probability of the counts `x` (last axis: the categories):
    `lgamma(n + 1) + sum(x log p - lgamma(x + 1))`; -inf where the counts do not add up to
    `n`.

    Args:
        x: integer counts, shape `(..., k)`.
        n: the integer number of draws.
        p: category probabilities, shape `(..., k)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.stats import multinomial
        >>> round(float(multinomial.logpmf(fnp.array([1, 2]), 3, fnp.array([0.5, 0.5]))), 6)
        -0.980829
    """
    (p,) = promote_args("multinomial.logpmf", p=p)
    x, n = jnp.asarray(x), jnp.asarray(n)
    if not (np.issubdtype(dtype_of(x), np.integer) and np.issubdtype(dtype_of(n), np.integer)):
        raise ValueError("multinomial.logpmf: `x` and `n` must be of integer type; got "
                         f"x.dtype={dtype_of(x)}, n.dtype={dtype_of(n)}")
    xf, nf = jnp.astype(x, dtype_of(p)), jnp.astype(n, dtype_of(p))
    one = const(p, 1)
    out = jnp.add(special.gammaln(jnp.add(nf, one)),
                  jnp.sum(jnp.subtract(special.xlogy(xf, p), special.gammaln(jnp.add(xf, one))),
                          axis=-1))
    return jnp.where(jnp.equal(jnp.sum(x, axis=-1), n), out, const(out, -np.inf))


def pmf(x, n, p):
    """The probability of the counts `x`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.stats import multinomial
        >>> float(multinomial.pmf(fnp.array([1, 2]), 3, fnp.array([0.5, 0.5])))
        0.375
    """
    return jnp.exp(logpmf(x, n, p))
