"""Gaussian kernel density estimation (`jax.scipy.stats.gaussian_kde`)."""

from __future__ import annotations

import math

import numpy as np

from nanofn import numpy as jnp
from nanofn.numpy._dtypes import dtype_of
from nanofn.numpy._lax_numpy import _shape
from nanofn.scipy import linalg, special
from nanofn.scipy.stats._util import promote_args
from nanofn.tree_util import register_pytree_node_class

__all__ = ["gaussian_kde"]


@register_pytree_node_class
class gaussian_kde:  # noqa: N801 - scipy's and JAX's name
    """A Gaussian kernel density estimate of `dataset`, like `scipy.stats.gaussian_kde`.

    A pytree (its arrays are its leaves), so it passes through `jit`, `vmap` and `grad`;
    the density is differentiable in both the points and the data.

    Args:
        dataset: the samples: shape `(n,)`, or `(d, n)` for `n` points in `d` dimensions.
        bw_method: the bandwidth factor: 'scott' (default, `neff^(-1/(d+4))`), 'silverman',
            a scalar, or a callable taking the estimator.
        weights: optional weights of the samples, shape `(n,)` (normalised to sum 1).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.stats import gaussian_kde
        >>> kde = gaussian_kde(fnp.array([-1.0, 0.0, 0.5, 2.0]))
        >>> round(float(kde.evaluate(fnp.array([0.0]))[0]), 6)
        0.26852
    """

    def __init__(self, dataset, bw_method=None, weights=None):
        dataset = jnp.atleast_2d(jnp.asarray(dataset))
        if np.issubdtype(dtype_of(dataset), np.complexfloating):
            raise NotImplementedError("gaussian_kde does not support complex data")
        if not dataset.size > 1:
            raise ValueError("gaussian_kde: `dataset` should have more than one element; got "
                             f"shape {_shape(dataset)}")
        d, n = _shape(dataset)
        if weights is not None:
            dataset, weights = promote_args("gaussian_kde", dataset=dataset, weights=weights)
            weights = jnp.atleast_1d(weights)
            if weights.ndim != 1:
                raise ValueError(f"gaussian_kde: `weights` should be one-dimensional; got shape "
                                 f"{_shape(weights)}")
            if _shape(weights)[0] != n:
                raise ValueError(f"gaussian_kde: `weights` should have length n={n}; got "
                                 f"{_shape(weights)[0]}")
            weights = jnp.divide(weights, jnp.sum(weights))
        else:
            (dataset,) = promote_args("gaussian_kde", dataset=dataset)
            weights = jnp.full((n,), 1.0 / n, dtype=dtype_of(dataset))
        self.dataset, self.weights = dataset, weights
        self.neff = jnp.reciprocal(jnp.sum(jnp.square(weights)))
        bw_method = "scott" if bw_method is None else bw_method
        if isinstance(bw_method, str) and bw_method == "scott":
            factor = jnp.power(self.neff, -1.0 / (d + 4))
        elif isinstance(bw_method, str) and bw_method == "silverman":
            factor = jnp.power(jnp.multiply(self.neff, (d + 2) / 4.0), -1.0 / (d + 4))
        elif not isinstance(bw_method, str) and np.ndim(bw_method) == 0 and not callable(bw_method):
            factor = bw_method
        elif callable(bw_method):
            factor = bw_method(self)
        else:
            raise ValueError("gaussian_kde: `bw_method` should be 'scott', 'silverman', a scalar "
                             f"or a callable; got {bw_method!r}")
        if isinstance(factor, (int, float, np.generic, np.ndarray)):  # not rounded to float32
            factor = np.asarray(factor, dtype_of(dataset))
        data_cov = jnp.atleast_2d(jnp.cov(dataset, rowvar=True, bias=False, aweights=weights))
        self.covariance = jnp.multiply(data_cov, jnp.square(factor))
        self.inv_cov = jnp.divide(jnp.linalg.inv(data_cov), jnp.square(factor))

    def tree_flatten(self):
        return (self.neff, self.dataset, self.weights, self.covariance, self.inv_cov), None

    @classmethod
    def tree_unflatten(cls, aux_data, children):
        del aux_data  # unused
        kde = cls.__new__(cls)
        kde.neff, kde.dataset, kde.weights, kde.covariance, kde.inv_cov = children
        return kde

    @property
    def d(self):
        """The number of dimensions."""
        return _shape(self.dataset)[0]

    @property
    def n(self):
        """The number of samples."""
        return _shape(self.dataset)[1]

    def _points(self, points):
        points = jnp.atleast_2d(jnp.asarray(points))
        if np.issubdtype(dtype_of(points), np.complexfloating):
            raise NotImplementedError("gaussian_kde does not support complex coordinates")
        d, m = _shape(points)
        if d != self.d:
            if d == 1 and m == self.d:
                return jnp.reshape(points, (self.d, 1))
            raise ValueError(f"gaussian_kde: points have dimension {d}, dataset has dimension "
                             f"{self.d}")
        return points

    def _log_terms(self, points):
        """`log(w_i) + log N(x_j; data_i, cov)`, shape (n, m)."""
        points = self._points(points)
        data, pts, prec = promote_args("gaussian_kde", dataset=self.dataset, points=points,
                                       precision=self.inv_cov)
        white = linalg.cholesky(prec, lower=True)
        a = jnp.matmul(jnp.transpose(data), white)          # (n, d)
        b = jnp.matmul(jnp.transpose(pts), white)           # (m, d)
        sq = jnp.sum(jnp.square(jnp.subtract(a[:, None, :], b[None, :, :])), axis=-1)
        log_norm = jnp.subtract(jnp.sum(jnp.log(jnp.diagonal(white))),
                                0.5 * self.d * math.log(2 * math.pi))
        return jnp.add(jnp.log(self.weights)[:, None],
                       jnp.subtract(log_norm, jnp.multiply(0.5, sq)))

    def evaluate(self, points):
        """The density at `points` (shape `(d, m)`, or `(m,)` for d = 1): shape `(m,)`.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.stats import gaussian_kde
            >>> gaussian_kde(fnp.array([0.0, 1.0])).evaluate(fnp.array([0.5, 9.0])).shape
            (2,)
        """
        return jnp.sum(jnp.exp(self._log_terms(points)), axis=0)

    def __call__(self, points):
        return self.evaluate(points)

    def pdf(self, x):
        """The density at `x`, the same as `evaluate`.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.stats import gaussian_kde
            >>> gaussian_kde(fnp.array([0.0, 1.0])).pdf(fnp.array([0.5])).shape
            (1,)
        """
        return self.evaluate(x)

    def logpdf(self, x):
        """Log of the density at `x`, by a log-sum-exp (finite far from the data).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.stats import gaussian_kde
            >>> bool(fnp.isfinite(gaussian_kde(fnp.array([0.0, 1.0])).logpdf(fnp.array([90.0])))[0])
            True
        """
        return special.logsumexp(self._log_terms(x), axis=0)

    def integrate_gaussian(self, mean, cov):
        """The integral of the density times the normal density `N(mean, cov)`.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.stats import gaussian_kde
            >>> kde = gaussian_kde(fnp.array([0.0, 1.0]))
            >>> float(kde.integrate_gaussian(fnp.array([0.5]), fnp.array([[1.0]]))) > 0
            True
        """
        mean = jnp.atleast_1d(jnp.squeeze(jnp.asarray(mean)))
        cov = jnp.atleast_2d(jnp.asarray(cov))
        if _shape(mean) != (self.d,):
            raise ValueError(f"gaussian_kde.integrate_gaussian: `mean` does not have dimension "
                             f"{self.d}; got shape {_shape(mean)}")
        if _shape(cov) != (self.d, self.d):
            raise ValueError(f"gaussian_kde.integrate_gaussian: `cov` does not have shape "
                             f"({self.d}, {self.d}); got {_shape(cov)}")
        return _convolve(jnp.add(self.covariance, cov), self.dataset, self.weights,
                         mean[:, None])[0]

    def integrate_box_1d(self, low, high):
        """The probability mass between `low` and `high` (one-dimensional data only).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.stats import gaussian_kde
            >>> kde = gaussian_kde(fnp.array([0.0, 1.0]))
            >>> round(float(kde.integrate_box_1d(-fnp.inf, fnp.inf)), 6)
            1.0
        """
        if self.d != 1:
            raise ValueError("gaussian_kde.integrate_box_1d only handles 1D pdfs")
        if np.ndim(low) != 0 or np.ndim(high) != 0:
            raise ValueError("gaussian_kde.integrate_box_1d: the limits of integration must be "
                             "scalars")
        sigma = jnp.squeeze(jnp.sqrt(self.covariance))
        lo = jnp.squeeze(jnp.divide(jnp.subtract(low, self.dataset), sigma))
        hi = jnp.squeeze(jnp.divide(jnp.subtract(high, self.dataset), sigma))
        return jnp.sum(jnp.multiply(self.weights, jnp.subtract(special.ndtr(hi), special.ndtr(lo))))

    def integrate_kde(self, other):
        """The integral of the product of this density and `other`'s.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.stats import gaussian_kde
            >>> kde = gaussian_kde(fnp.array([0.0, 1.0]))
            >>> float(kde.integrate_kde(kde)) > 0
            True
        """
        if other.d != self.d:
            raise ValueError(f"gaussian_kde.integrate_kde: the KDEs have dimensions {self.d} and "
                             f"{other.d}")
        cov = jnp.add(self.covariance, other.covariance)
        per_point = _convolve(cov, other.dataset, other.weights, self.dataset)
        return jnp.sum(jnp.multiply(per_point, self.weights))

    def resample(self, key, shape=()):
        """Draw samples from the estimate: shape `(d,) + shape`.

        Example:
            >>> import nanofn
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.stats import gaussian_kde
            >>> kde = gaussian_kde(fnp.array([0.0, 1.0, 3.0]))
            >>> kde.resample(nanofn.random.key(0), (5,)).shape
            (1, 5)
        """
        from nanofn import random
        ind_key, eps_key = random.split(key)
        ind = random.choice(ind_key, self.n, shape=shape, p=self.weights)
        eps = random.multivariate_normal(eps_key, jnp.zeros(self.d, dtype_of(self.covariance)),
                                         self.covariance, shape=shape,
                                         dtype=dtype_of(self.dataset))
        return jnp.add(jnp.take(self.dataset, ind, axis=1), jnp.moveaxis(eps, -1, 0))

    def integrate_box(self, low_bounds, high_bounds, maxpts=None):
        """Not implemented (as in JAX): only 1D boxes, with `integrate_box_1d`.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.stats import gaussian_kde
            >>> gaussian_kde(fnp.array([0.0, 1.0])).integrate_box(0.0, 1.0)
            Traceback (most recent call last):
            ...
            NotImplementedError: only 1D box integrations are supported; use `integrate_box_1d`
        """
        del low_bounds, high_bounds, maxpts  # unused
        raise NotImplementedError("only 1D box integrations are supported; use "
                                  "`integrate_box_1d`")

    def set_bandwidth(self, bw_method=None):
        """Not implemented (as in JAX): the estimate is immutable; build a new one instead.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.scipy.stats import gaussian_kde
            >>> gaussian_kde(fnp.array([0.0, 1.0])).set_bandwidth("silverman")
            Traceback (most recent call last):
            ...
            NotImplementedError: the bandwidth is fixed; build a new gaussian_kde(dataset, ...)
        """
        del bw_method  # unused
        raise NotImplementedError("the bandwidth is fixed; build a new gaussian_kde(dataset, ...)")


def _convolve(cov, target, weights, means):
    """`sum_i w_i N(target_i; mean_j, cov)` for each column `mean_j` of `means`: shape (m,)."""
    chol = linalg.cholesky(cov, lower=True)
    d = _shape(cov)[0]
    norm = jnp.multiply((2 * math.pi) ** (-d / 2), jnp.reciprocal(jnp.prod(jnp.diagonal(chol))))
    diff = jnp.subtract(target[:, :, None], means[:, None, :])        # (d, n, m)
    y = linalg.solve_triangular(chol, jnp.reshape(diff, (d, -1)), lower=True)
    quad = jnp.reshape(jnp.sum(jnp.square(y), axis=0), _shape(diff)[1:])  # (n, m)
    return jnp.multiply(norm, jnp.sum(jnp.multiply(jnp.exp(jnp.multiply(-0.5, quad)),
                                                   weights[:, None]), axis=0))
