"""More of jax.random's samplers, as transformations of the basic ones.

Each draws its uniform or normal numbers from the key exactly as jax.random does (same
key splits, same formula), so for the same key the values are JAX's, up to float
rounding: `pareto`, `maxwell`, `double_sided_maxwell`, `weibull_min`, `rayleigh`,
`wald`, `geometric`, `triangular`, `orthogonal`; and `chisquare`, `f` and `t`, built on
`gamma`/`loggamma`, which spend their keys as JAX's do too.
"""

from __future__ import annotations

import operator

import numpy as np

import nanofn.numpy as fnp
from nanofn.numpy._dtypes import _DEFAULT, dtype_arg
from nanofn.random._distributions import (
    _result_shape, exponential, loggamma, gamma, normal, rademacher, uniform,
)
from nanofn.random._threefry import split

__all__ = ["pareto", "maxwell", "double_sided_maxwell", "weibull_min", "rayleigh", "wald",
           "geometric", "triangular", "orthogonal", "chisquare", "f", "t", "clone"]


def _float(name, dtype):
    dtype = _DEFAULT["f"] if dtype is None else dtype_arg(dtype)
    if dtype.kind != "f":
        raise ValueError(f"{name}: dtype must be a float dtype, got {dtype.name}")
    return dtype


def _shape(shape):
    return tuple(operator.index(d) for d in ((shape,) if np.ndim(shape) == 0 else shape))


def pareto(key, b, shape=None, dtype=None):
    """Pareto values with shape parameter `b` (density `b / x**(b + 1)` for `x >= 1`).

    Example:
        >>> import nanofn
        >>> bool(nanofn.random.pareto(nanofn.random.key(0), 3.0, (4,)).min() >= 1)
        True
    """
    dtype = _float("pareto", dtype)
    shape = _result_shape("pareto", shape, b=b)
    e = exponential(key, shape, dtype)
    return fnp.exp(e / fnp.asarray(b, dtype))


def maxwell(key, shape=(), dtype=None):
    """Maxwell values: the length of a standard normal 3-vector.

    Example:
        >>> import nanofn
        >>> nanofn.random.maxwell(nanofn.random.key(0), (2,)).shape
        (2,)
    """
    dtype = _float("maxwell", dtype)
    return fnp.linalg.norm(normal(key, _shape(shape) + (3,), dtype), axis=-1)


def double_sided_maxwell(key, loc, scale, shape=(), dtype=None):
    """Maxwell values with a random sign, scaled by `scale` and shifted by `loc`; `shape`
    is the batch shape, followed by the parameters' broadcast shape (as in JAX).

    Example:
        >>> import nanofn
        >>> nanofn.random.double_sided_maxwell(nanofn.random.key(0), 0.0, 1.0, (3,)).shape
        (3,)
    """
    dtype = _float("double_sided_maxwell", dtype)
    params_shape = tuple(np.broadcast_shapes(np.shape(loc), np.shape(scale)))
    shape = _shape(shape) or params_shape
    shape = shape + params_shape
    maxwell_key, rademacher_key = split(key)
    rvs = maxwell(maxwell_key, shape, dtype)
    sign = rademacher(rademacher_key, shape, dtype)
    return sign * rvs * fnp.asarray(scale, dtype) + fnp.asarray(loc, dtype)


def weibull_min(key, scale, concentration, shape=(), dtype=None):
    """Weibull values, by the inverse CDF: `(-log(1 - u)) ** (1 / concentration) * scale`.

    Example:
        >>> import nanofn
        >>> nanofn.random.weibull_min(nanofn.random.key(0), 1.0, 2.0, (3,)).shape
        (3,)
    """
    dtype = _float("weibull_min", dtype)
    u = uniform(key, _shape(shape), dtype, 0.0, 1.0)
    return fnp.power(-fnp.log1p(-u), 1.0 / fnp.asarray(concentration, dtype)) * \
        fnp.asarray(scale, dtype)


def rayleigh(key, scale, shape=None, dtype=None):
    """Rayleigh values: `scale * sqrt(-2 log u)`.

    Example:
        >>> import nanofn
        >>> nanofn.random.rayleigh(nanofn.random.key(0), 1.0, (3,)).shape
        (3,)
    """
    dtype = _float("rayleigh", dtype)
    shape = _result_shape("rayleigh", shape, scale=scale)
    u = uniform(key, shape, dtype)
    scale = fnp.broadcast_to(fnp.asarray(scale, dtype), shape)
    return scale * fnp.sqrt(fnp.log(u) * -2.0)


def wald(key, mean, shape=None, dtype=None):
    """Wald (inverse Gaussian) values with the given `mean` and shape parameter 1
    (Michael, Schucany and Haas's transformation method, as jax.random.wald).

    Example:
        >>> import nanofn
        >>> bool(nanofn.random.wald(nanofn.random.key(0), 1.0, (4,)).min() > 0)
        True
    """
    dtype = _float("wald", dtype)
    shape = _result_shape("wald", shape, mean=mean)
    k1, k2 = split(key)
    mean = fnp.broadcast_to(fnp.asarray(mean, dtype), shape)
    v = normal(k1, shape, dtype)
    z = uniform(k2, shape, dtype)
    y = v * v
    mean_sq = mean * mean
    sqrt_term = fnp.sqrt(4 * mean * y + mean_sq * (y * y))
    x = mean + mean_sq * y / 2 - mean / 2 * sqrt_term
    return fnp.where(z <= mean / (mean + x), x, mean_sq / x)


def geometric(key, p, shape=None, dtype=None):
    """Geometric values: the number of Bernoulli(`p`) trials up to the first success
    (1, 2, ...), as integers (default int32, int64 under x64).

    Example:
        >>> import nanofn
        >>> bool(nanofn.random.geometric(nanofn.random.key(0), 0.5, (5,)).min() >= 1)
        True
    """
    dtype = _DEFAULT["i"] if dtype is None else dtype_arg(dtype)
    shape = _result_shape("geometric", shape, p=p)
    p = fnp.asarray(p)
    if p.dtype.kind != "f":
        p = p.astype(_DEFAULT["f"])
    u = uniform(key, shape, p.dtype)
    u = fnp.where(u == 0, fnp.ones_like(u), u)  # as JAX: u = 0 would give log(0)
    g = fnp.floor(fnp.log(u) / fnp.broadcast_to(fnp.log1p(-p), shape)) + 1
    return g.astype(dtype)


def triangular(key, left, mode, right, shape=None, dtype=None):
    """Triangular values on `[left, right]` with peak at `mode` (by the inverse CDF).

    Example:
        >>> import nanofn
        >>> x = nanofn.random.triangular(nanofn.random.key(0), 0.0, 0.5, 1.0, (4,))
        >>> bool((x >= 0).all() and (x <= 1).all())
        True
    """
    dtype = _float("triangular", dtype)
    shape = _result_shape("triangular", shape, left=left, mode=mode, right=right)
    left, mode, right = (fnp.broadcast_to(fnp.asarray(v, dtype), shape)
                         for v in (left, mode, right))
    fc = (mode - left) / (right - left)
    u = uniform(key, shape, dtype)
    out1 = left + fnp.sqrt(u * (right - left) * (mode - left))
    out2 = right - fnp.sqrt((1 - u) * (right - left) * (right - mode))
    return fnp.where(u < fc, out1, out2)


def orthogonal(key, n, shape=(), dtype=None, m=None):
    """Random `n x m` matrices (default square) with orthonormal columns or rows, uniform
    over the orthogonal group (QR of a normal matrix with R's diagonal made positive); a
    complex dtype samples the unitary group the same way.

    Example:
        >>> import nanofn, numpy as np
        >>> q = nanofn.random.orthogonal(nanofn.random.key(0), 3)
        >>> bool(np.allclose(q @ q.T, np.eye(3), atol=1e-5))
        True
    """
    dtype = _DEFAULT["f"] if dtype is None else dtype_arg(dtype)
    if dtype.kind not in "fc":
        raise ValueError(f"orthogonal: dtype must be a float or complex dtype, got {dtype.name}")
    shape = _shape(shape)
    n = operator.index(n)
    m = n if m is None else operator.index(m)
    z = normal(key, shape + (max(n, m), min(n, m)), dtype)
    q, r = fnp.linalg.qr(z)
    d = fnp.diagonal(r, axis1=-2, axis2=-1)
    x = q * fnp.expand_dims(fnp.sign(d), -2)
    return fnp.swapaxes(x, -1, -2) if n < m else x


def chisquare(key, df, shape=None, dtype=None):
    """Chi-square values with `df` degrees of freedom: `2 * gamma(df / 2)` (computed via
    `loggamma`, as in JAX).

    Example:
        >>> import nanofn
        >>> bool(nanofn.random.chisquare(nanofn.random.key(0), 3.0, (4,)).min() > 0)
        True
    """
    dtype = _float("chisquare", dtype)
    shape = _result_shape("chisquare", shape, df=df)
    half_df = fnp.asarray(df, dtype) / 2
    return fnp.exp(loggamma(key, half_df, shape, dtype)) * 2


def f(key, dfnum, dfden, shape=None, dtype=None):
    """F-distribution values: the ratio of two scaled chi-squares.

    Example:
        >>> import nanofn
        >>> bool(nanofn.random.f(nanofn.random.key(0), 2.0, 5.0, (4,)).min() > 0)
        True
    """
    dtype = _float("f", dtype)
    shape = _result_shape("f", shape, dfnum=dfnum, dfden=dfden)
    dfnum, dfden = fnp.asarray(dfnum, dtype), fnp.asarray(dfden, dtype)
    key_dfd, key_dfn = split(key)
    num = chisquare(key_dfn, dfnum, shape, dtype) / dfnum
    den = chisquare(key_dfd, dfden, shape, dtype) / dfden
    return num / den


def t(key, df, shape=None, dtype=None):
    """Student's t values with `df` degrees of freedom: `normal * sqrt(df / 2 / gamma(df
    / 2))`, as in JAX.

    Example:
        >>> import nanofn
        >>> nanofn.random.t(nanofn.random.key(0), 4.0, (3,)).shape
        (3,)
    """
    dtype = _float("t", dtype)
    shape = _result_shape("t", shape, df=df)
    half_df = fnp.asarray(df, dtype) / 2
    key_n, key_g = split(key)
    n = normal(key_n, shape, dtype)
    g = gamma(key_g, half_df, shape, dtype)
    return n * fnp.sqrt(half_df / g)


def clone(key):
    """A copy of `key` (jax.random.clone; nanofn keys are plain immutable arrays, so this
    returns the key itself).

    Example:
        >>> import nanofn
        >>> k = nanofn.random.key(0)
        >>> bool((nanofn.random.clone(k) == k).all())
        True
    """
    return key
