"""The Dirichlet distribution (`jax.scipy.stats.dirichlet`) with concentrations `alpha`."""

from __future__ import annotations

import numpy as np

from nanofn import numpy as jnp
from nanofn.numpy._lax_numpy import _shape
from nanofn.scipy import special
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf"]


def logpdf(x, alpha):
    """Log of the Dirichlet density, `sum((alpha - 1) log x) - (sum(lgamma(alpha)) -
    lgamma(sum(alpha)))`.

    The components run along the first axis of `x` (as in scipy and JAX): `x` has shape
    `(k, ...)` or `(k - 1, ...)` (then the last component is one minus the sum of the others),
    `alpha` shape `(k,)`. Points off the simplex (an entry <= 0, or a sum more than 1e-6 from
    1) give -inf.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.stats import dirichlet
        >>> x, alpha = fnp.array([0.2, 0.3, 0.5]), fnp.array([1.0, 2.0, 3.0])
        >>> round(float(dirichlet.logpdf(x, alpha)), 6)
        1.504077
    """
    x, alpha = promote_args("dirichlet.logpdf", x=x, alpha=alpha)
    xs, al = _shape(x), _shape(alpha)
    if len(al) != 1:
        raise ValueError(f"dirichlet.logpdf: `alpha` must be one-dimensional; got shape {al}")
    if not xs or xs[0] not in (al[0], al[0] - 1):
        raise ValueError("dirichlet.logpdf: `x` must have either the same number of entries as "
                         f"`alpha` or one entry fewer (along its first axis); got x.shape={xs}, "
                         f"alpha.shape={al}")
    one = const(x, 1)
    if xs[0] != al[0]:
        x = jnp.concatenate([x, jnp.subtract(one, jnp.sum(x, axis=0, keepdims=True))], axis=0)
    normalize = jnp.subtract(jnp.sum(special.gammaln(alpha)), special.gammaln(jnp.sum(alpha)))
    a = jnp.reshape(alpha, al + (1,) * (len(xs) - 1))
    out = jnp.subtract(jnp.sum(special.xlogy(jnp.subtract(a, one), x), axis=0), normalize)
    on_simplex = (jnp.all(jnp.greater(x, const(x, 0)), axis=0)
                  & jnp.less(jnp.abs(jnp.subtract(jnp.sum(x, axis=0), one)), const(x, 1e-6)))
    return jnp.where(on_simplex, out, const(out, -np.inf))


def pdf(x, alpha):
    """The Dirichlet density.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.stats import dirichlet
        >>> float(dirichlet.pdf(fnp.array([0.5, 0.5]), fnp.array([1.0, 1.0])))
        1.0
    """
    return jnp.exp(logpdf(x, alpha))
