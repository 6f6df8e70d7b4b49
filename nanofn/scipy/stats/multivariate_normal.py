"""The multivariate normal distribution (`jax.scipy.stats.multivariate_normal`)."""

from __future__ import annotations

import math

import numpy as np

from nanofn import numpy as jnp
from nanofn.numpy._lax_numpy import _shape
from nanofn.scipy import linalg
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["logpdf", "pdf"]


def logpdf(x, mean, cov, allow_singular=None):
    """Log of the multivariate normal density.

    `mean` has shape `(..., n)` (or is 0-d: then everything is one-dimensional and `cov` is
    the variance); `cov` is a scalar (an isotropic `cov * I`) or has shape `(..., n, n)`;
    leading axes of `x`, `mean` and `cov` broadcast. The covariance's symmetric part is
    factored by Cholesky, so gradients flow to `x`, `mean` and `cov` (symmetric in `cov`).

    Args:
        x: points, shape `(..., n)`.
        mean: the mean, shape `(..., n)` or `()`.
        cov: the covariance, shape `(..., n, n)` or `()`.
        allow_singular: not supported (as in JAX); must be None.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.stats import multivariate_normal
        >>> round(float(multivariate_normal.logpdf(fnp.zeros(2), fnp.zeros(2), fnp.eye(2))), 6)
        -1.837877
    """
    if allow_singular is not None:
        raise NotImplementedError("multivariate_normal.logpdf: `allow_singular` is not "
                                  "supported (as in JAX); leave it None")
    x, mean, cov = promote_args("multivariate_normal.logpdf", x=x, mean=mean, cov=cov)
    log2pi = math.log(2 * math.pi)
    if not _shape(mean):
        quad = jnp.divide(jnp.square(jnp.subtract(x, mean)), cov)
        return jnp.subtract(jnp.multiply(const(x, -0.5), quad),
                            jnp.multiply(const(x, 0.5), jnp.add(const(x, log2pi), jnp.log(cov))))
    n = _shape(mean)[-1]
    diff = jnp.subtract(x, mean)
    if not _shape(cov):
        quad = jnp.divide(jnp.sum(jnp.square(diff), axis=-1), cov)
        return jnp.subtract(jnp.multiply(const(x, -0.5), quad),
                            jnp.multiply(const(x, n / 2), jnp.add(const(x, log2pi), jnp.log(cov))))
    if len(_shape(cov)) < 2 or _shape(cov)[-2:] != (n, n):
        raise ValueError(f"multivariate_normal.logpdf: `cov` must have shape (..., {n}, {n}) to "
                         f"match `mean` of shape {_shape(mean)}; got {_shape(cov)}")
    if _shape(diff)[-1:] != (n,):
        raise ValueError(f"multivariate_normal.logpdf: `x` must end in an axis of size {n}; got "
                         f"shape {_shape(diff)}")
    # As JAX, factor the symmetric part (cov + cov^H) / 2: the value reads both triangles
    # and the gradient with respect to `cov` comes out symmetric.
    chol = jnp.linalg.cholesky(cov)
    batch = np.broadcast_shapes(_shape(diff)[:-1], _shape(chol)[:-2])
    chol_b = jnp.broadcast_to(chol, batch + (n, n))
    diff_b = jnp.broadcast_to(diff, batch + (n,))
    y = linalg.solve_triangular(chol_b, diff_b, lower=True)
    log_det = jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return jnp.subtract(jnp.subtract(jnp.multiply(const(x, -0.5), jnp.sum(jnp.square(y), axis=-1)),
                                     const(x, n / 2 * log2pi)), log_det)


def pdf(x, mean, cov):
    """The multivariate normal density, `exp(logpdf(x, mean, cov))`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.stats import multivariate_normal
        >>> round(float(multivariate_normal.pdf(fnp.zeros(2), fnp.zeros(2), fnp.eye(2))), 6)
        0.159155
    """
    return jnp.exp(logpdf(x, mean, cov))
