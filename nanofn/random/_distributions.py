"""Samplers: every distribution is a function of random bits, written with nanofn primitives.

Each sampler turns `bits(key, ...)` into numbers with ordinary nanofn operations, so it
traces under `jit`, maps under `vmap` (a batch of keys gives a batch of samples), runs
inside `scan`, and is differentiable with respect to its float parameters (`minval`,
`maxval`, `mean`, `lower`, `logits` ...) where that makes sense (the reparameterisation
trick). The recipes are JAX's (`jax._src.random`), so a JAX program draws the same numbers:

* `uniform`: put 23 random mantissa bits under the exponent of 1.0 to get a float in
  [1, 2), subtract 1, then scale and shift (52 bits for float64).
* `normal`: `sqrt(2) * erf_inv(u)` for `u` uniform in (-1, 1) (inverse transform sampling);
  `truncated_normal` does the same between `erf(lower / sqrt 2)` and `erf(upper / sqrt 2)`.
* `gumbel`, `exponential`, `laplace`, `logistic`, `cauchy`: inverse CDFs of a uniform.
* `bernoulli`: `uniform < p`; `categorical`: the Gumbel-max trick; `randint`: two words of
  random bits reduced modulo the span; `permutation`: sort by random 32-bit keys.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from nanofn import _core as core
from nanofn import ops
from nanofn._core import Array, Primitive, Tracer
from nanofn.numpy import _lax_numpy as lnp
from nanofn.numpy._dtypes import asarray_value, dtype_of, promote_float
from nanofn.numpy._dtypes import _DEFAULT, dtype_arg
from nanofn.ops import _base as lax
from nanofn.random._threefry import (
    _canonical_shape, _check_key, _key_words, _pack_words, _random_bits, threefry2x32_p,
)

_INT = np.dtype(np.int32)
_UINT_BY_BITS = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: np.dtype(np.uint32),
                 64: np.dtype(np.uint64)}

# ------------------------------------------------------------------------ helpers


def _float_dtype(name, dtype, *, allow_complex=False):
    dtype = _DEFAULT["f"] if dtype is None else dtype_arg(dtype)
    if dtype.kind == "f" or (allow_complex and dtype.kind == "c"):
        return dtype
    kinds = "a float or complex" if allow_complex else "a float"
    raise ValueError(f"{name}: dtype must be {kinds} dtype (float16, float32 or float64), "
                     f"got {dtype.name}")


def _shape_of(x):
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _broadcast(*shapes):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def _check_shape(name, shape, **params):
    """Each parameter's shape must broadcast to `shape` exactly (as in JAX)."""
    for arg, value in params.items():
        ps = _shape_of(value)
        if _broadcast(shape, ps) != shape:
            raise ValueError(
                f"{name}: {arg} has shape {ps}, which does not broadcast to shape={shape}. The "
                "parameters must broadcast to `shape`; pass shape=None to use their broadcast "
                "shape.")


def _result_shape(name, shape, **params):
    """`shape` checked against the parameters, or their broadcast shape if it is None."""
    if shape is None:
        shapes = {arg: _shape_of(v) for arg, v in params.items()}
        out = _broadcast(*shapes.values()) if shapes else ()
        if out is None:
            desc = ", ".join(f"{arg} of shape {s}" for arg, s in shapes.items())
            raise ValueError(f"{name}: the parameters ({desc}) do not broadcast together")
        return out
    shape = _canonical_shape(name, shape)
    _check_shape(name, shape, **params)
    return shape


def _const(value, dtype):
    return np.asarray(value, dtype=dtype)


def _split(key, n=2):
    """The rows of `split(key, n)` as a list of keys: row `i` is `hash(key, (0, i))`, which
    is `fold_in(key, i)`, computed without indexing a (possibly traced) key array."""
    k1, k2 = _key_words(key)
    return [_pack_words(*threefry2x32_p.bind(k1, k2, np.uint32(0), np.uint32(i)))
            for i in range(n)]


def _take(arr, indices, axis):
    """`numpy.take(arr, indices, axis)` for in-range integer `indices`."""
    shape = _shape_of(arr)
    front = lnp.moveaxis(arr, axis, 0) if axis else arr
    picked = ops.gather(front, lax.expand_dims(indices, (len(_shape_of(indices)),)))
    # picked: indices.shape + shape[:axis] + shape[axis+1:]; put shape[:axis] first
    ni = len(_shape_of(indices))
    perm = tuple(range(ni, ni + axis)) + tuple(range(ni)) + tuple(
        range(ni + axis, ni + len(shape) - 1))
    return lax.transpose(picked, perm)


# ======================================================================== uniform


def _uniform(key, shape, dtype, minval=None, maxval=None):
    finfo = np.finfo(dtype)
    nbits, nmant = finfo.bits, finfo.nmant
    udtype = _UINT_BY_BITS[nbits]
    bits = _random_bits(key, nbits, shape)
    # Random mantissa under the exponent of 1.0: a float in [1, 2), minus 1 gives [0, 1).
    float_bits = lax.or_p.bind(
        lax.shift_right_logical_p.bind(bits, _const(nbits - nmant, udtype)),
        np.array(1.0, dtype).view(udtype))
    floats = lax.sub_p.bind(lax.bitcast_convert_type_p.bind(float_bits, new_dtype=dtype),
                            _const(1.0, dtype))
    if minval is None:  # [0, 1): scaling by 1 and shifting by 0 would change nothing
        return floats
    minval = asarray_value(minval, dtype)
    maxval = asarray_value(maxval, dtype)
    scaled = lax.add_p.bind(lax.mul_p.bind(floats, lax.sub_p.bind(maxval, minval)), minval)
    out = lax.max_p.bind(minval, scaled)
    return out if _shape_of(out) == shape else lax.broadcast_to(out, shape)


def uniform(key, shape=(), dtype=None, minval=0.0, maxval=1.0) -> Array:
    """Uniform random floats in `[minval, maxval)`.

    Args:
      key: a PRNG key (uint32, shape (2,)).
      shape: the shape of the result (a tuple of non-negative ints). Default ().
      dtype: a float dtype (default float32, float64 under x64; float64 and float16 are
        honoured whenever asked for).
      minval: the inclusive lower bound; a scalar or an array broadcasting to `shape`.
      maxval: the exclusive upper bound; a scalar or an array broadcasting to `shape`.

    Returns:
      An array of `shape` and `dtype`.

    Example:
        >>> import nanofn
        >>> x = nanofn.random.uniform(nanofn.random.key(0), (1000,), minval=2.0, maxval=3.0)
        >>> bool((x >= 2.0).all() and (x < 3.0).all())
        True
    """
    key = _check_key("uniform", key)
    shape = _canonical_shape("uniform", shape)
    dtype = _float_dtype("uniform", dtype)
    _check_shape("uniform", shape, minval=minval, maxval=maxval)
    if type(minval) is float and type(maxval) is float and (minval, maxval) == (0.0, 1.0):
        return _uniform(key, shape, dtype)
    return _uniform(key, shape, dtype, minval, maxval)


# ======================================================================== normal family


def _normal_real(key, shape, dtype):
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))  # open interval (-1, 1)
    u = _uniform(key, shape, dtype, lo, np.array(1.0, dtype))
    return lax.mul_p.bind(_const(math.sqrt(2.0), dtype), lax.erf_inv_p.bind(u))


def normal(key, shape=(), dtype=None) -> Array:
    """Standard normal random values (mean 0, variance 1).

    Complex dtypes give standard complex normals (real and imaginary parts independent,
    each of variance 1/2), as in JAX.

    Args:
      key: a PRNG key (uint32, shape (2,)).
      shape: the shape of the result. Default ().
      dtype: a float or complex dtype (default float32, float64 under x64).

    Returns:
      An array of `shape` and `dtype`.

    Example:
        >>> import nanofn
        >>> x = nanofn.random.normal(nanofn.random.key(0), (10000,))
        >>> abs(float(x.mean())) < 0.05, abs(float(x.std()) - 1) < 0.05
        (True, True)
    """
    key = _check_key("normal", key)
    shape = _canonical_shape("normal", shape)
    dtype = _float_dtype("normal", dtype, allow_complex=True)
    if dtype.kind == "c":
        real = np.dtype(np.float32 if dtype == np.complex64 else np.float64)
        k_re, k_im = _split(key)
        re = lax.convert_element_type(_normal_real(k_re, shape, real), dtype)
        im = lax.convert_element_type(_normal_real(k_im, shape, real), dtype)
        z = lax.add_p.bind(re, lax.mul_p.bind(_const(1j, dtype), im))
        return lax.div_p.bind(z, _const(math.sqrt(2.0), dtype))
    return _normal_real(key, shape, dtype)


def truncated_normal(key, lower, upper, shape=None, dtype=None) -> Array:
    """Standard normal values conditioned on `lower < x < upper`.

    Args:
      key: a PRNG key (uint32, shape (2,)).
      lower: the lower bound (a scalar or array; may be -inf).
      upper: the upper bound (a scalar or array; may be inf).
      shape: the shape of the result; must be a broadcast of the bounds' shapes. Default
        None: the broadcast shape of `lower` and `upper`.
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of `shape` and `dtype` with values in the open interval (lower, upper).

    Example:
        >>> import nanofn
        >>> x = nanofn.random.truncated_normal(nanofn.random.key(0), -1.0, 2.0, (1000,))
        >>> bool((x > -1.0).all() and (x < 2.0).all())
        True
    """
    key = _check_key("truncated_normal", key)
    dtype = _float_dtype("truncated_normal", dtype)
    shape = _result_shape("truncated_normal", shape, lower=lower, upper=upper)
    sqrt2 = _const(math.sqrt(2.0), dtype)
    lower = asarray_value(lower, dtype)
    upper = asarray_value(upper, dtype)
    a = lax.erf_p.bind(lax.div_p.bind(lower, sqrt2))
    b = lax.erf_p.bind(lax.div_p.bind(upper, sqrt2))
    u = _uniform(key, shape, dtype, a, b)
    out = lax.mul_p.bind(sqrt2, lax.erf_inv_p.bind(u))
    # Rounding (or drawing u == a exactly) could land on a bound: clamp to the open interval.
    lo = lax.nextafter_p.bind(lax.stop_gradient_p.bind(lower), _const(np.inf, dtype))
    hi = lax.nextafter_p.bind(lax.stop_gradient_p.bind(upper), _const(-np.inf, dtype))
    return lax.min_p.bind(lax.max_p.bind(out, lo), hi)


def lognormal(key, sigma=1.0, shape=None, dtype=None) -> Array:
    """Log-normal values: `exp(sigma * z)` for standard normal `z`.

    Args:
      key: a PRNG key (uint32, shape (2,)).
      sigma: the standard deviation of the underlying normal (scalar or array).
      shape: the shape of the result. Default None: the shape of `sigma`.
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of `shape` and `dtype`, all positive.

    Example:
        >>> import nanofn
        >>> bool((nanofn.random.lognormal(nanofn.random.key(0), 0.5, (100,)) > 0).all())
        True
    """
    key = _check_key("lognormal", key)
    dtype = _float_dtype("lognormal", dtype)
    shape = _result_shape("lognormal", shape, sigma=sigma)
    z = _normal_real(key, shape, dtype)
    return lax.exp_p.bind(lax.mul_p.bind(z, asarray_value(sigma, dtype)))


# ------------------------------------------------------------------------ mvn factor


def _mvn_factor(cov, method):
    """A matrix `f` with `f @ f.T == cov`, from nanofn's differentiable linear algebra (so
    gradients reach `cov`, the reparameterisation trick for a full covariance). As in JAX,
    "cholesky" symmetrizes `cov` first and "eigh" takes the square root of the eigenvalues
    as they are (a negative one gives NaN rather than being clipped)."""
    from nanofn.numpy import linalg  # deferred: linalg is not needed to import random
    if method == "cholesky":
        return linalg.cholesky(cov)
    if method == "eigh":
        w, v = linalg.eigh(cov)
    else:
        v, w, _ = linalg.svd(cov)
    return lax.mul_p.bind(v, lax.sqrt_p.bind(lax.expand_dims(w, (len(_shape_of(w)) - 1,))))


def multivariate_normal(key, mean, cov, shape=None, dtype=None, method="cholesky") -> Array:
    """Multivariate normal values with mean `mean` and covariance `cov`.

    The sample is `mean + factor @ z` for standard normal `z` and `factor @ factor.T == cov`
    (the reparameterisation trick): gradients flow to both `mean` and `cov`.

    Args:
      key: a PRNG key (uint32, shape (2,)).
      mean: the mean, shape (..., n).
      cov: the covariance, shape (..., n, n), symmetric positive definite (positive
        semi-definite with method "eigh" or "svd").
      shape: the batch shape of the result (without the trailing n); must be a broadcast
        of `mean.shape[:-1]` and `cov.shape[:-2]`. Default None: their broadcast shape.
      dtype: a float dtype (default: the dtype of `mean`; float32 for Python data, float64
        under x64).
      method: how to factor `cov`: "cholesky" (default), "eigh" or "svd".

    Returns:
      An array of shape `shape + (n,)`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> x = nanofn.random.multivariate_normal(nanofn.random.key(0), fnp.zeros(2),
        ...                                       fnp.eye(2), (5,))
        >>> x.shape
        (5, 2)
    """
    key = _check_key("multivariate_normal", key)
    if method not in ("cholesky", "eigh", "svd"):
        raise ValueError(f"multivariate_normal: method must be 'cholesky', 'eigh' or 'svd', "
                         f"got {method!r}")
    mean, cov = promote_float(mean, cov)
    dtype = dtype_of(mean) if dtype is None else _float_dtype("multivariate_normal", dtype)
    mshape, cshape = _shape_of(mean), _shape_of(cov)
    if len(mshape) < 1:
        raise ValueError(f"multivariate_normal: mean must have at least one axis, got shape "
                         f"{mshape}")
    n = mshape[-1]
    if len(cshape) < 2 or cshape[-2:] != (n, n):
        raise ValueError(f"multivariate_normal: cov must have shape (..., {n}, {n}) to match "
                         f"mean of shape {mshape}, got {cshape}")
    if shape is None:
        shape = _broadcast(mshape[:-1], cshape[:-2])
        if shape is None:
            raise ValueError(f"multivariate_normal: the batch shapes of mean {mshape[:-1]} "
                             f"and cov {cshape[:-2]} do not broadcast together")
    else:
        shape = _canonical_shape("multivariate_normal", shape)
        for arg, s in (("mean", mshape[:-1]), ("cov", cshape[:-2])):
            if _broadcast(shape, s) != shape:
                raise ValueError(f"multivariate_normal: the batch shape {s} of {arg} does not "
                                 f"broadcast to shape={shape}")
    mean = lax.convert_element_type(mean, dtype) if dtype_of(mean) != dtype else mean
    cov = lax.convert_element_type(cov, dtype) if dtype_of(cov) != dtype else cov
    factor = _mvn_factor(cov, method)
    z = _normal_real(key, shape + (n,), dtype)
    fz = lnp.matmul(factor, lax.expand_dims(z, (len(shape) + 1,)))
    fz = lax.reshape(fz, _shape_of(fz)[:-1])
    return lax.add_p.bind(mean, fz)


# ======================================================================== discrete


def bernoulli(key, p=0.5, shape=None, mode="low") -> Array:
    """Random booleans, True with probability `p`.

    Args:
      key: a PRNG key (uint32, shape (2,)).
      p: the probability of True: a float scalar or array.
      shape: the shape of the result; `p` must broadcast to it. Default None: `p`'s shape.
      mode: "low" (default) compares one uniform with `p`; "high" uses twice the random
        bits, for probabilities below the float resolution (about 1e-7 for float32).

    Returns:
      A bool array of `shape`.

    Example:
        >>> import nanofn
        >>> b = nanofn.random.bernoulli(nanofn.random.key(0), 0.3, (10000,))
        >>> b.dtype, abs(float(b.mean()) - 0.3) < 0.02
        (dtype('bool'), True)
    """
    key = _check_key("bernoulli", key)
    if mode not in ("low", "high"):
        raise ValueError(f"bernoulli: mode must be 'low' or 'high', got {mode!r}")
    p = asarray_value(p)
    if dtype_of(p).kind != "f":
        raise TypeError(f"bernoulli: p must be a float probability, got dtype "
                        f"{dtype_of(p).name}; write p=1.0 rather than p=1")
    dtype = dtype_of(p)
    shape = _result_shape("bernoulli", shape, p=p)
    if mode == "high":
        u = _uniform(key, (2,) + shape, dtype)
        u1 = ops.index_in_dim(u, 0, axis=0, keepdims=False)
        u2 = ops.index_in_dim(u, 1, axis=0, keepdims=False)
        u2 = lax.mul_p.bind(u2, _const(2.0 ** -np.finfo(dtype).nmant, dtype))
        return lax.lt_p.bind(u2, lax.sub_p.bind(p, u1))
    return lax.lt_p.bind(_uniform(key, shape, dtype), p)


def rademacher(key, shape=(), dtype=None) -> Array:
    """Random signs: -1 or 1 with equal probability.

    Args:
      key: a PRNG key (uint32, shape (2,)).
      shape: the shape of the result. Default ().
      dtype: the dtype of the result (default int32, int64 under `jax_enable_x64`).

    Returns:
      An array of `shape` holding -1 and 1.

    Example:
        >>> import nanofn
        >>> sorted(set(nanofn.random.rademacher(nanofn.random.key(0), (100,)).tolist()))
        [-1, 1]
    """
    key = _check_key("rademacher", key)
    shape = _canonical_shape("rademacher", shape)
    dtype = _DEFAULT["i"] if dtype is None else dtype_arg(dtype)
    # JAX's bernoulli(key, 0.5): the uniform has the default float dtype (float64 under x64)
    fdt = _DEFAULT["f"]
    b = lax.convert_element_type(lax.lt_p.bind(_uniform(key, shape, fdt), _const(0.5, fdt)),
                                 dtype)
    return lax.sub_p.bind(lax.mul_p.bind(_const(2, dtype), b), _const(1, dtype))


def _convert_and_clip(x, dtype):
    """Convert an integer array to integer `dtype`, clipping to its range (not wrapping)."""
    src = dtype_of(x)
    lo = max(np.iinfo(dtype).min, np.iinfo(src).min)
    hi = min(np.iinfo(dtype).max, np.iinfo(src).max)
    x = lax.min_p.bind(lax.max_p.bind(x, _const(lo, src)), _const(hi, src))
    return lax.convert_element_type(x, dtype)


def _urem(x, span):
    """`x % span` for unsigned arrays, with `x % 0 == x` (a span that wrapped to 0 means
    the whole range: the remainder must leave `x` as it is)."""
    zero = lax.eq_p.bind(span, _const(0, dtype_of(span)))
    safe = lax.select_n_p.bind(zero, span, _const(1, dtype_of(span)))
    return lax.select_n_p.bind(zero, lax.rem_p.bind(x, safe), x)


def _int_bound(x):
    # Python ints are taken exactly (as int64), then clipped to the dtype's range below.
    return np.asarray(x, np.int64) if type(x) is int else asarray_value(x)


def _randint(key, shape, minval, maxval, dtype):
    minval = _int_bound(minval)
    maxval = _int_bound(maxval)
    if dtype_of(minval).kind not in "iu":  # float bounds: JAX's astype(int)
        minval = lax.convert_element_type(minval, _DEFAULT["i"])
    if dtype_of(maxval).kind not in "iu":
        maxval = lax.convert_element_type(maxval, _DEFAULT["i"])
    info = np.iinfo(dtype)
    nbits = info.bits
    # maxval above the dtype's range (e.g. 256 for uint8) means "up to and including max"
    top = _convert_and_clip(np.array(info.max, dtype), dtype_of(maxval))
    maxval_out_of_range = lax.gt_p.bind(maxval, top)
    minval = _convert_and_clip(minval, dtype)
    maxval = _convert_and_clip(maxval, dtype)
    k1, k2 = _split(key)
    higher_bits = _random_bits(k1, nbits, shape)
    lower_bits = _random_bits(k2, nbits, shape)
    udtype = _UINT_BY_BITS[nbits]
    span = lax.convert_element_type(lax.sub_p.bind(maxval, minval), udtype)
    one = _const(1, udtype)
    span = lax.select_n_p.bind(lax.le_p.bind(maxval, minval), span, one)  # empty range: minval
    wider = lax.and_p.bind(maxval_out_of_range, lax.gt_p.bind(maxval, minval))
    span = lax.select_n_p.bind(wider, span, lax.add_p.bind(span, one))
    # The offset is (higher * 2**nbits + lower) % span, computed without overflow as
    # ((higher % span) * (2**nbits % span) + lower % span) % span, like JAX (uint wraparound
    # included, so the numbers match).
    multiplier = _urem(_const(2 ** (nbits // 2), udtype), span)
    multiplier = _urem(lax.mul_p.bind(multiplier, multiplier), span)
    offset = lax.add_p.bind(lax.mul_p.bind(_urem(higher_bits, span), multiplier),
                            _urem(lower_bits, span))
    offset = _urem(offset, span)
    out = lax.add_p.bind(minval, lax.convert_element_type(offset, dtype))
    return out if _shape_of(out) == shape else lax.broadcast_to(out, shape)


def randint(key, shape, minval, maxval, dtype=None) -> Array:
    """Uniform random integers in `[minval, maxval)`.

    Like JAX, this reduces two words of random bits modulo the span, which is very slightly
    biased when the span is not a power of 2 (by about span / 2**32 for 32-bit dtypes).

    Args:
      key: a PRNG key (uint32, shape (2,)).
      shape: the shape of the result (a tuple of non-negative ints).
      minval: the inclusive lower bound (an int or integer array broadcasting to `shape`).
      maxval: the exclusive upper bound (same). Where `maxval <= minval`, gives `minval`.
      dtype: an integer dtype (default int32, int64 under `jax_enable_x64`, as in JAX:
        the default integer, so under x64 the draw uses 64-bit words).

    Returns:
      An integer array of `shape` and `dtype`.

    Example:
        >>> import nanofn
        >>> x = nanofn.random.randint(nanofn.random.key(0), (1000,), 0, 10)
        >>> int(x.min()), int(x.max()), x.dtype
        (0, 9, dtype('int32'))
    """
    key = _check_key("randint", key)
    shape = _canonical_shape("randint", shape)
    dtype = _DEFAULT["i"] if dtype is None else dtype_arg(dtype)
    if dtype.kind not in "iu":
        raise TypeError(f"randint: dtype must be an integer dtype, got {dtype.name}")
    _check_shape("randint", shape, minval=minval, maxval=maxval)
    info = np.iinfo(dtype)
    if info.bits < 32:  # sample in 32 bits, then narrow: less bias
        lo = _convert_and_clip(_int_bound(minval), _INT)
        hi = _convert_and_clip(_int_bound(maxval), _INT)
        lo = lax.min_p.bind(lax.max_p.bind(lo, _const(info.min, _INT)), _const(info.max, _INT))
        hi = lax.min_p.bind(lax.max_p.bind(hi, _const(info.min, _INT)),
                            _const(info.max + 1, _INT))
        return lax.convert_element_type(_randint(key, shape, lo, hi, _INT), dtype)
    return _randint(key, shape, minval, maxval, dtype)


# ======================================================================== inverse-CDF family


def gumbel(key, shape=(), dtype=None, mode=None) -> Array:
    """Standard Gumbel values (density `exp(-(x + exp(-x)))`).

    Args:
      key: a PRNG key (uint32, shape (2,)).
      shape: the shape of the result. Default ().
      dtype: a float dtype (default float32, float64 under x64).
      mode: "low" (default) or "high": "high" uses twice the random bits so that the
        largest values (above about 16 for float32) are represented.

    Returns:
      An array of `shape` and `dtype`.

    Example:
        >>> import nanofn
        >>> x = nanofn.random.gumbel(nanofn.random.key(0), (10000,))
        >>> abs(float(x.mean()) - 0.5772) < 0.05  # Euler's constant
        True
    """
    key = _check_key("gumbel", key)
    shape = _canonical_shape("gumbel", shape)
    dtype = _float_dtype("gumbel", dtype)
    mode = "low" if mode is None else mode
    if mode not in ("low", "high"):
        raise ValueError(f"gumbel: mode must be 'low' or 'high', got {mode!r}")
    return _gumbel(key, shape, dtype, mode)


def _gumbel(key, shape, dtype, mode):
    finfo = np.finfo(dtype)
    if mode == "high":
        u = _uniform(key, (2,) + shape, dtype)
        high = ops.index_in_dim(u, 0, axis=0, keepdims=False)
        low = ops.index_in_dim(u, 1, axis=0, keepdims=False)
        # 2 * nmant random bits: the low word fills in below the resolution of the high one
        fine = lax.add_p.bind(lax.mul_p.bind(_const(2.0 ** -finfo.nmant, dtype), low),
                              _const(max(2.0 ** -(2 * finfo.nmant + 1), float(finfo.tiny)),
                                     dtype))
        x = lax.select_n_p.bind(lax.ge_p.bind(high, _const(0.5, dtype)),
                                lax.add_p.bind(high, fine), high)
        return lax.neg_p.bind(lax.log_p.bind(lax.neg_p.bind(lax.log1p_p.bind(lax.neg_p.bind(x)))))
    u = _uniform(key, shape, dtype, _const(finfo.tiny, dtype), _const(1.0, dtype))
    return lax.neg_p.bind(lax.log_p.bind(lax.neg_p.bind(lax.log_p.bind(u))))


def exponential(key, shape=(), dtype=None) -> Array:
    """Standard exponential values (density `exp(-x)` for `x >= 0`).

    Args:
      key: a PRNG key (uint32, shape (2,)).
      shape: the shape of the result. Default ().
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of `shape` and `dtype`.

    Example:
        >>> import nanofn
        >>> x = nanofn.random.exponential(nanofn.random.key(0), (10000,))
        >>> bool((x >= 0).all()), abs(float(x.mean()) - 1) < 0.05
        (True, True)
    """
    key = _check_key("exponential", key)
    shape = _canonical_shape("exponential", shape)
    dtype = _float_dtype("exponential", dtype)
    u = _uniform(key, shape, dtype)
    return lax.neg_p.bind(lax.log1p_p.bind(lax.neg_p.bind(u)))  # -log(1 - u), u in [0, 1)


def laplace(key, shape=(), dtype=None) -> Array:
    """Standard Laplace values (density `exp(-|x|) / 2`).

    Args:
      key: a PRNG key (uint32, shape (2,)).
      shape: the shape of the result. Default ().
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of `shape` and `dtype`.

    Example:
        >>> import nanofn
        >>> x = nanofn.random.laplace(nanofn.random.key(0), (10000,))
        >>> abs(float(x.var()) - 2) < 0.15
        True
    """
    key = _check_key("laplace", key)
    shape = _canonical_shape("laplace", shape)
    dtype = _float_dtype("laplace", dtype)
    eps = np.finfo(dtype).epsneg
    u = _uniform(key, shape, dtype, _const(-1.0 + eps, dtype), _const(1.0, dtype))
    return lax.mul_p.bind(lax.sign_p.bind(u), lax.log1p_p.bind(lax.neg_p.bind(lax.abs_p.bind(u))))


def logistic(key, shape=(), dtype=None) -> Array:
    """Standard logistic values (density `exp(-x) / (1 + exp(-x))**2`).

    Args:
      key: a PRNG key (uint32, shape (2,)).
      shape: the shape of the result. Default ().
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of `shape` and `dtype`.

    Example:
        >>> import nanofn
        >>> x = nanofn.random.logistic(nanofn.random.key(0), (10000,))
        >>> abs(float(x.var()) - 3.2899) < 0.25  # pi**2 / 3
        True
    """
    key = _check_key("logistic", key)
    shape = _canonical_shape("logistic", shape)
    dtype = _float_dtype("logistic", dtype)
    x = _uniform(key, shape, dtype, _const(np.finfo(dtype).tiny, dtype), _const(1.0, dtype))
    return lax.sub_p.bind(lax.log_p.bind(x), lax.log1p_p.bind(lax.neg_p.bind(x)))


def cauchy(key, shape=(), dtype=None) -> Array:
    """Standard Cauchy values (density `1 / (pi (1 + x**2))`).

    Args:
      key: a PRNG key (uint32, shape (2,)).
      shape: the shape of the result. Default ().
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of `shape` and `dtype`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> x = nanofn.random.cauchy(nanofn.random.key(0), (10000,))
        >>> abs(float(fnp.median(x))) < 0.1
        True
    """
    key = _check_key("cauchy", key)
    shape = _canonical_shape("cauchy", shape)
    dtype = _float_dtype("cauchy", dtype)
    u = _uniform(key, shape, dtype, _const(np.finfo(dtype).eps, dtype), _const(1.0, dtype))
    return lax.tan_p.bind(lax.mul_p.bind(_const(np.pi, dtype),
                                         lax.sub_p.bind(u, _const(0.5, dtype))))


# ======================================================================== categorical


def categorical(key, logits, axis=-1, shape=None, replace=True, mode=None) -> Array:
    """Draw category indices from unnormalised log-probabilities (the Gumbel-max trick).

    Args:
      key: a PRNG key (uint32, shape (2,)).
      logits: log-probabilities up to a constant, categories along `axis`.
      axis: the axis of `logits` holding the categories. Default -1.
      shape: the shape of the result; it must end with the batch shape of `logits` (its
        shape without `axis`), and leading extra axes draw more samples. Default None: the
        batch shape of `logits`.
      replace: sample with replacement (default). With False, the samples along the
        leading extra axes of `shape` are distinct categories (Gumbel top-k).
      mode: "low" or "high" resolution of the Gumbel noise (see `gumbel`).

    Returns:
      An integer array of `shape`: int32, or int64 under `jax_enable_x64` when drawing with
      replacement (JAX's argmax index); without replacement top_k's int32 indices, as in JAX.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> logits = fnp.log(fnp.array([0.1, 0.9]))
        >>> draws = nanofn.random.categorical(nanofn.random.key(0), logits, shape=(1000,))
        >>> abs(float(draws.mean()) - 0.9) < 0.05
        True
    """
    key = _check_key("categorical", key)
    logits = asarray_value(logits)
    if dtype_of(logits).kind != "f":
        (logits,) = promote_float(logits)
    lshape = _shape_of(logits)
    if not lshape:
        raise ValueError("categorical: logits must have at least one axis (the categories), "
                         "got a scalar")
    axis = lnp.canonicalize_axis(axis, len(lshape), "axis")
    batch_shape = lshape[:axis] + lshape[axis + 1:]
    if shape is None:
        shape = batch_shape
    else:
        shape = _canonical_shape("categorical", shape)
        if len(shape) < len(batch_shape) or _broadcast(shape, batch_shape) != shape:
            raise ValueError(
                f"categorical: logits of shape {lshape} have batch shape {batch_shape} (their "
                f"shape without axis {axis}), which does not broadcast to shape={shape}; "
                "shape must end with the batch shape (extra leading axes draw more samples)")
    prefix = shape[:len(shape) - len(batch_shape)]
    dtype = dtype_of(logits)
    mode = "low" if mode is None else mode
    if replace:
        lead = len(prefix)
        noise_shape = prefix + shape[lead:lead + axis] + (lshape[axis],) + shape[lead + axis:]
        noisy = lax.add_p.bind(_gumbel(key, noise_shape, dtype, mode),
                               lax.expand_dims(logits, tuple(range(lead))))
        return lnp.argmax(noisy, axis=lead + axis)
    k = int(np.prod(prefix, dtype=np.int64))
    if k > lshape[axis]:
        raise ValueError(f"categorical: cannot draw {k} samples without replacement from "
                         f"{lshape[axis]} categories (shape={shape}, logits of shape {lshape})")
    noisy = lax.add_p.bind(logits, _gumbel(key, lshape, dtype, mode))
    _, idx = ops.top_k(lnp.moveaxis(noisy, axis, -1), k)  # (*batch, k)
    idx = lnp.moveaxis(idx, -1, 0)  # (k, *batch)
    return lax.reshape(lax.broadcast_to(idx, (k,) + shape[len(prefix):]), shape)


# ======================================================================== permutations


def _shuffle(key, x, axis, sort_shape=None):
    """Sort `x` along `axis` by fresh random 32-bit keys, enough rounds that ties (equal keys)
    are negligible (JAX's rule). `sort_shape=(n,)` uses one key per position along `axis`,
    shared by every lane, so all lanes get the same permutation."""
    shape = _shape_of(x)
    size = int(np.prod(shape if sort_shape is None else sort_shape, dtype=np.int64))
    rounds = int(np.ceil(3 * np.log(max(1, size)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(rounds):
        key, subkey = _split(key)
        if sort_shape is None:
            sort_keys = _random_bits(subkey, 32, shape)
        else:
            sort_keys = lax.broadcast_in_dim(_random_bits(subkey, 32, sort_shape), shape, (axis,))
        _, x = ops.sort_key_val(sort_keys, x, dimension=axis)
    return x


def _is_scalar(x):
    return len(_shape_of(x)) == 0 if isinstance(x, (Array, Tracer, np.ndarray, np.generic)) \
        else np.ndim(x) == 0


def _concrete_int(x, name):
    try:
        return operator.index(core.to_numpy(x) if not isinstance(x, Tracer) else x)
    except (TypeError, core.ConcretizationError):
        raise core.ConcretizationError(
            f"{name}: an integer argument must be concrete here (the result's shape depends "
            "on it); pass it as a static argument") from None


def permutation(key, x, axis=0, independent=False) -> Array:
    """A random permutation of `x` along `axis`, or of `arange(x)` for an integer `x`.

    Args:
      key: a PRNG key (uint32, shape (2,)).
      x: an int `n` (permute `0, ..., n-1`) or an array (permute its entries along `axis`).
      axis: the axis to permute. Default 0.
      independent: if True, every 1-d slice along `axis` gets its own permutation;
        otherwise whole slices move together (the same permutation for every lane).

    Returns:
      The permuted array (for an integer `x`, `arange(n)` permuted: int32, int64 under
      `jax_enable_x64`).

    Example:
        >>> import nanofn
        >>> p = nanofn.random.permutation(nanofn.random.key(0), 10)
        >>> sorted(p.tolist()) == list(range(10))
        True
    """
    key = _check_key("permutation", key)
    if _is_scalar(x):
        if dtype_of(x).kind not in "iu":
            raise TypeError(f"permutation: x must be an integer or an array with at least one "
                            f"axis, got {x!r}")
        n = _concrete_int(x, "permutation")
        if n < 0:
            raise ValueError(f"permutation: x must be a non-negative integer, got {n}")
        return _shuffle(key, lax.iota(_DEFAULT["i"], n), 0)
    x = asarray_value(x)
    ndim = len(_shape_of(x))
    axis = lnp.canonicalize_axis(axis, ndim, "axis")
    x = x if isinstance(x, (Array, Tracer)) else core.wrap(x)
    if independent or ndim == 1:
        return _shuffle(key, x, axis)
    return _shuffle(key, x, axis, sort_shape=(_shape_of(x)[axis],))


def choice(key, a, shape=(), replace=True, p=None, axis=0, mode=None) -> Array:
    """A random sample from the entries of `a` (or from `arange(a)` for an integer `a`).

    Args:
      key: a PRNG key (uint32, shape (2,)).
      a: an int `n` (sample from `0, ..., n-1`) or an array (sample slices along `axis`).
      shape: the shape of the sample. Default () (one draw).
      replace: draw with replacement (default) or without (no entry drawn twice).
      p: optional probabilities of the entries (1-d, length `n`; need not be normalised).
      axis: the axis of `a` to draw along. Default 0.
      mode: Gumbel resolution for sampling without replacement with `p` (see `gumbel`).

    Returns:
      For an integer `a`, an integer array of `shape` (int32, int64 under
      `jax_enable_x64`); for an array, the drawn slices, of shape
      `a.shape[:axis] + shape + a.shape[axis + 1:]`.

    Example:
        >>> import nanofn
        >>> draw = nanofn.random.choice(nanofn.random.key(0), 10, (5,), replace=False)
        >>> len(set(draw.tolist()))
        5
    """
    key = _check_key("choice", key)
    shape = _canonical_shape("choice", shape)
    if _is_scalar(a):
        n = _concrete_int(a, "choice")
        arr = None
        out_shape = shape
    else:
        arr = asarray_value(a)
        arr = arr if isinstance(arr, (Array, Tracer)) else core.wrap(arr)
        ashape = _shape_of(arr)
        axis = lnp.canonicalize_axis(axis, len(ashape), "axis")
        n = ashape[axis]
        out_shape = ashape[:axis] + shape + ashape[axis + 1:]
    n_draws = int(np.prod(shape, dtype=np.int64))
    if n_draws == 0:
        return lnp.zeros(out_shape, _DEFAULT["i"] if arr is None else dtype_of(arr))
    if n <= 0:
        raise ValueError(f"choice: a must have at least one entry to draw from, got {n}")
    if not replace and n_draws > n:
        raise ValueError(f"choice: cannot draw {n_draws} samples (shape={shape}) without "
                         f"replacement from a population of {n} (a); pass replace=True or a "
                         "smaller shape")
    if p is None:
        if replace:
            ind = randint(key, shape, 0, n)
        else:
            perm = permutation(key, n) if arr is None else None
            if arr is not None:
                drawn = ops.slice_in_dim(permutation(key, arr, axis), 0, n_draws, axis=axis)
                return lax.reshape(drawn, out_shape)
            ind = lax.reshape(ops.slice_in_dim(perm, 0, n_draws), shape)
    else:
        (p,) = promote_float(p)
        if _shape_of(p) != (n,):
            raise ValueError(f"choice: p must be None or a 1-d array of the probabilities of "
                             f"the {n} entries of a (shape ({n},)), got shape {_shape_of(p)}")
        dtype = dtype_of(p)
        if replace:
            cdf = ops.cumsum(p)
            total = lax.reduce_max_p.bind(cdf, axes=(0,))  # the last entry (cdf is sorted)
            r = lax.mul_p.bind(total, lax.sub_p.bind(_const(1.0, dtype),
                                                     _uniform(key, shape, dtype)))
            # searchsorted(cdf, r, side="left") = how many cdf entries are below r
            below = lax.lt_p.bind(cdf, lax.expand_dims(r, (len(shape),)))
            ind = lnp.sum(below, axis=-1, dtype=_DEFAULT["i"])
        else:
            g = lax.add_p.bind(_gumbel(key, (n,), dtype, "low" if mode is None else mode),
                               lax.log_p.bind(p))
            top = ops.top_k(g, n_draws)[1]
            ind = lax.reshape(lax.convert_element_type(top, _DEFAULT["i"]), shape)
    if arr is None:
        return ind
    return lax.reshape(_take(arr, lax.reshape(ind, (n_draws,)), axis), out_shape)


# ======================================================================== gamma family

# Gamma variates need rejection sampling, whose number of draws depends on the values, so
# the sampler is one primitive, `random_gamma(key, a)`, with a numpy impl of JAX's
# per-element recipe (Marsaglia and Tsang, "A simple method for generating gamma
# variables", 2000), vectorised: all elements take their next round together, and the
# ones already accepted drop out. Element `i` owns the key `hash(key, (0, i))` (JAX's
# `split(key, a.size)`) and spends it as JAX's `_gamma_one` does, in the sample's dtype:
#
# * `key, boost_key = split(key)`; then rounds until accepted, each one
#   `key, x_key, u_key = split(key, 3)`, a normal `x` from `x_key` (redrawn, with
#   `x_key, sub = split(x_key)` and `normal(sub)`, until `v = 1 + c x > 0`) and a uniform
#   `U` from `u_key`. The round accepts when `U < 1 - 0.0331 x^4` or
#   `log U < x^2 / 2 + d (1 - v^3 + log v^3)`, for `d = a - 1/3`, `c = 1/3 / sqrt(d)`.
# * For a < 1 it samples a + 1 and multiplies by `(1 - u) ** (1 / a)`, `u` uniform from
#   `boost_key` (loggamma adds `log1p(-u) / a` instead, so tiny shapes do not underflow).
#
# So a value depends only on the key, `i` and `a[i]`: the same eagerly, under jit and
# under vmap, and JAX's value. The float32 arithmetic follows what XLA's CPU code does
# where that is known (Giles' erf_inv in float32 with fused multiply-adds, a fused
# `1 + c x`, once-rounded log, log1p, pow and rsqrt, subnormal results flushed to 0), so
# most float32 samples are JAX's bit for bit and the rest a few ulp away (XLA's own log
# and rsqrt are not reproduced); float64 samples are within about 1e-13 relative.
#
# The derivative with respect to `a` is the implicit reparameterisation gradient (Figurnov
# et al., 2018; JAX's `random_gamma_grad`): a sample x is F^-1(u; a) for the gamma CDF F,
# so with u fixed, dx/da = -(dF/da) / (dF/dx) at (a, x): `igamma_grad_a(a, x)` over the
# density x^(a-1) e^-x / Gamma(a). It is what makes beta, dirichlet, student t and the
# other gamma-based samplers differentiable in their parameters.

random_gamma_p = Primitive("random_gamma")


def _rounded(f):
    """`f` computed in float64 and rounded once: closer to XLA's float32 `log`, `log1p`
    and `pow` (nearly correctly rounded) than numpy's float32 loops are."""
    def g(*args):
        dtype = args[0].dtype
        if dtype == np.float64:
            return f(*args)
        return f(*(x.astype(np.float64) for x in args)).astype(dtype)
    return g


_log, _log1p, _power = _rounded(np.log), _rounded(np.log1p), _rounded(np.power)


def _np_hash(k1, k2, i):
    """`hash(key, (0, i))` for numpy arrays of key words: row `i` of `split(key, n)`, and
    the first counter of any draw from `key`."""
    from nanofn.random._threefry import _threefry2x32_impl
    return _threefry2x32_impl(k1, k2, np.uint32(0), np.uint32(i))


def _np_unit(k1, k2, dtype):
    """`uniform(key, (), dtype)` for each key given by its words: a float in [0, 1)."""
    y1, y2 = _np_hash(k1, k2, 0)
    nbits, nmant = np.finfo(dtype).bits, np.finfo(dtype).nmant
    udtype = _UINT_BY_BITS[nbits]
    if nbits == 64:
        bits = (y1.astype(udtype) << np.uint64(32)) | y2.astype(udtype)
    else:
        bits = (y1 ^ y2).astype(udtype, copy=False)
    one = np.array(1.0, dtype)
    mant = (bits >> udtype.type(nbits - nmant)) | one.view(udtype)
    return mant.view(dtype) - one


# Giles' single-precision erf_inv polynomials ("Approximating the erfinv function", GPU
# Gems 2010), in w = -log(1 - x^2) - 2.5 below w = 5 and sqrt(w) - 3 above: the ones XLA
# evaluates in float32 for jax.random.normal.
_ERFINV_SMALL_W = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                   0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_LARGE_W = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                   0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _erf_inv_f32(x):
    """erf_inv of float32 `x` as XLA computes it on CPU: Giles' polynomial by Horner's rule
    in float32 with fused multiply-adds (emulated in float64: a float32 product is exact
    there). This agrees with jax.random.normal's bits far more often than a correctly
    rounded erf_inv does (about 99% of draws, the rest within 3 ulp)."""
    f32 = np.float32
    w = -_log1p(-(x * x))
    small = w < f32(5.0)
    w = np.where(small, w - f32(2.5), np.sqrt(w) - f32(3.0)).astype(np.float64)
    coef = np.where(small[None], np.array(_ERFINV_SMALL_W, f32)[:, None],
                    np.array(_ERFINV_LARGE_W, f32)[:, None]).astype(np.float64)
    p = coef[0].astype(f32)
    for c in coef[1:]:
        p = (c + p.astype(np.float64) * w).astype(f32)
    return np.where(np.abs(x) == f32(1.0), x * np.finfo(f32).max, p * x)


def _np_normal(k1, k2, dtype):
    """`normal(key, (), dtype)` for each key given by its words (as `_normal_real`)."""
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    u = np.maximum(lo, _np_unit(k1, k2, dtype) * (np.array(1.0, dtype) - lo) + lo)
    if dtype == np.float32:
        e = _erf_inv_f32(u)
    else:
        from nanofn.ops._special import erf_inv
        e = erf_inv(u).astype(dtype, copy=False)
    return np.asarray(math.sqrt(2.0), dtype) * e


def _rsqrt(x):
    """1 / sqrt(x), rounded once for float32 (closer to XLA's rsqrt than two roundings)."""
    if x.dtype == np.float32:
        return (1.0 / np.sqrt(x.astype(np.float64))).astype(np.float32)
    return 1.0 / np.sqrt(x)


def _one_plus(x, c):
    """1 + x * c, fused (one rounding) for float32, as XLA's CPU code computes it."""
    if x.dtype == np.float32:
        return (x.astype(np.float64) * c.astype(np.float64) + 1.0).astype(np.float32)
    return 1.0 + x * c


def _flush_subnormal(x):
    """`x` with subnormal values set to (signed) zero, as XLA's CPU arithmetic does: a
    gamma sample of a tiny shape underflows to 0 there, not to a subnormal."""
    tiny = np.finfo(x.dtype).tiny
    return np.where(np.abs(x) < tiny, x * np.array(0.0, x.dtype), x)


def _random_gamma_impl(key, a, *, log_space):
    dt = a.dtype  # float16, float32 or float64: JAX runs the sampler in the dtype of `a`
    nkb = key.ndim - 1
    size = int(np.prod(a.shape[nkb:], dtype=np.int64))
    # one key per element: hash(key, (0, i)) for element i of each key's block of `a`
    e1, e2 = _np_hash(key[..., 0].reshape(-1, 1), key[..., 1].reshape(-1, 1),
                      np.arange(size, dtype=np.uint32))
    e1, e2 = e1.ravel(), e2.ravel()
    alpha = a.reshape(-1).astype(dt)
    one, zero = np.array(1.0, dt), np.array(0.0, dt)
    third = np.array(1.0 / 3.0, dt)
    with np.errstate(all="ignore"):
        keep = alpha >= one  # shapes below 1 are boosted to a + 1
        d = np.where(keep, alpha, alpha + one) - third
        c = third * _rsqrt(d)  # JAX: 1/3 / sqrt(d), which XLA turns into a product
        k1, k2 = _np_hash(e1, e2, 0)
        b1, b2 = _np_hash(e1, e2, 1)
        volume = np.ones_like(alpha)
        # JAX's loop starts from X = 0, V = 1, U = 2, which always asks for a round unless
        # d is NaN or infinite (d * 0 is NaN): those keep V = 1
        pending = np.flatnonzero(np.log(np.array(2.0, dt)) >= d * zero)
        while pending.size:
            pk1, pk2 = k1[pending], k2[pending]  # round: key, x_key, u_key = split(key, 3)
            x1, x2 = _np_hash(pk1, pk2, 1)
            u1, u2 = _np_hash(pk1, pk2, 2)
            cp, dp = c[pending], d[pending]
            x = np.zeros(pending.size, dt)
            v = np.full(pending.size, -one)
            redo = np.arange(pending.size)
            while True:  # normals until 1 + c x > 0: x_key, sub = split(x_key)
                r1, r2 = x1[redo], x2[redo]
                xr = _np_normal(*_np_hash(r1, r2, 1), dt)
                vr = _one_plus(xr, cp[redo])
                x[redo], v[redo] = xr, vr
                again = vr <= zero
                if not again.any():
                    break
                redo = redo[again]
                x1[redo], x2[redo] = _np_hash(r1[again], r2[again], 0)
            xx = x * x
            vvv = v * v * v
            u = _np_unit(u1, u2, dt)
            again = (u >= one - np.array(0.0331, dt) * (xx * xx)) & (
                _log(u) >= xx * np.array(0.5, dt) + dp * ((one - vvv) + _log(vvv)))
            volume[pending] = vvv
            pending = pending[again]
            if pending.size:  # the rejected go on with the round's first key
                k1[pending], k2[pending] = _np_hash(pk1[again], pk2[again], 0)
        ub = _np_unit(b1, b2, dt)
        if log_space:
            log_u = _log1p(-ub)  # -exponential(boost_key)
            boost = np.where(keep | (log_u == zero), zero, log_u * (one / alpha))
            out = (_log(d) + _log(volume)) + boost
        else:
            boost = np.where(keep, one, _power(one - ub, one / alpha))
            boost = _flush_subnormal(boost)
            out = _flush_subnormal((d * volume) * boost)
    return out.astype(a.dtype, copy=False).reshape(a.shape)


@random_gamma_p.def_abstract_eval
def _random_gamma_abstract_eval(key, a, *, log_space):
    del log_space  # unused
    nkb = key.ndim - 1
    if key.dtype != np.uint32 or key.ndim < 1 or key.shape[-1] != 2 \
            or a.shape[:nkb] != key.shape[:-1]:
        raise TypeError(f"random_gamma: expected uint32 keys of shape (..., 2) whose leading "
                        f"axes are the leading axes of a; got {key.str_short()} and "
                        f"{a.str_short()}")
    if a.dtype.kind != "f":
        raise TypeError(f"random_gamma: a must be a float array, got {a.str_short()}")
    return a


random_gamma_p.impl = _random_gamma_impl


def random_gamma_grad(a, x):
    """The derivative of a gamma sample `x` with respect to its shape `a`, the sample's
    uniform held fixed: `-(dP/da) / (dP/dx)` for the regularized incomplete gamma P (as
    `jax.lax.random_gamma_grad`). `gamma`'s gradient uses it.

    Example:
        >>> from nanofn import random
        >>> float(random.random_gamma_grad(2.0, 1.5)).__round__(4)
        0.9366
    """
    import nanofn.numpy as fnp
    from nanofn.ops import _special_fns as sf
    a, x = fnp.broadcast_arrays(*promote_float(a, x))
    with np.errstate(all="ignore"):  # log(0) where a sample underflowed (masked below)
        log_density = (a - 1) * fnp.log(x) - x - sf.lgamma_p.bind(a)
        grad = -sf.igamma_grad_a_p.bind(a, x) * fnp.exp(-log_density)
    return fnp.where(x > 0, grad, 0.0)  # a sample that underflowed to 0 does not move


def _random_gamma_da(g, key, a, *, out, log_space):
    import nanofn.numpy as fnp
    if not log_space:
        return g * random_gamma_grad(a, out)
    # out = log(x): d out = dx / x, with x kept above 0 (exp may underflow)
    x = fnp.exp(out)
    x = fnp.where(x == 0, np.finfo(dtype_of(x)).tiny, x)
    return g * random_gamma_grad(a, x) / x


lax.defderiv(random_gamma_p, None, _random_gamma_da)


def _random_gamma_batch(vals, dims, *, log_space):
    (key, a), (dk, da) = vals, dims
    size = (_shape_of(key)[dk] if dk is not None else _shape_of(a)[da])
    key = lax.bdim_to_front(key, dk) if dk is not None else lax.broadcast_in_dim(
        key, (size,) + _shape_of(key), tuple(range(1, len(_shape_of(key)) + 1)))
    a = lax.bdim_to_front(a, da) if da is not None else lax.broadcast_in_dim(
        a, (size,) + _shape_of(a), tuple(range(1, len(_shape_of(a)) + 1)))
    # a batch of keys: each key's elements of `a` follow it along the new leading axis
    return random_gamma_p.bind(key, a, log_space=log_space), 0


random_gamma_p.batch = _random_gamma_batch


def _gamma(name, key, a, shape, dtype, log_space):
    key = _check_key(name, key)
    dtype = _float_dtype(name, dtype)
    shape = _result_shape(name, shape, a=a)
    a = asarray_value(a, dtype)
    if _shape_of(a) != shape:
        a = lax.broadcast_to(a, shape)
    return random_gamma_p.bind(key, a, log_space=log_space)


def gamma(key, a, shape=None, dtype=None) -> Array:
    """Gamma random values with shape parameter `a` and scale 1 (density proportional to
    `x**(a - 1) exp(-x)`).

    Marsaglia and Tsang's rejection sampler inside the `random_gamma` primitive (works
    under `jit` and `vmap`), spending the key as JAX does: the same key gives JAX's
    values, to a few ulp. Differentiable with respect to `a` (the implicit
    reparameterisation gradient, as in JAX).

    Args:
      key: a PRNG key (uint32, shape (2,)).
      a: the shape parameter, positive (scalar or array).
      shape: the shape of the result; `a` must broadcast to it. Default None: `a`'s shape.
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of `shape` and `dtype`, non-negative (0 where `a` is 0 or the sample
      underflows, NaN where `a` is NaN or `a <= -1`, as in JAX).

    Example:
        >>> import nanofn
        >>> x = nanofn.random.gamma(nanofn.random.key(0), 3.0, (10000,))
        >>> abs(float(x.mean()) - 3.0) < 0.1
        True
    """
    return _gamma("gamma", key, a, shape, dtype, False)


def loggamma(key, a, shape=None, dtype=None) -> Array:
    """The logarithm of Gamma random values, computed in log space (accurate even for tiny
    `a`, whose gamma values underflow to 0).

    Args:
      key: a PRNG key (uint32, shape (2,)).
      a: the shape parameter, positive (scalar or array).
      shape: the shape of the result. Default None: `a`'s shape.
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of `shape` and `dtype`.

    Example:
        >>> import nanofn
        >>> x = nanofn.random.loggamma(nanofn.random.key(0), 0.001, (100,))
        >>> bool(nanofn.numpy.isfinite(x).all())
        True
    """
    return _gamma("loggamma", key, a, shape, dtype, True)


def beta(key, a, b, shape=None, dtype=None) -> Array:
    """Beta random values: `G_a / (G_a + G_b)` for independent Gamma variates.

    Args:
      key: a PRNG key (uint32, shape (2,)).
      a: the first shape parameter, positive (scalar or array).
      b: the second shape parameter, positive (scalar or array).
      shape: the shape of the result. Default None: the broadcast shape of `a` and `b`.
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of `shape` and `dtype` with values in [0, 1].

    Example:
        >>> import nanofn
        >>> x = nanofn.random.beta(nanofn.random.key(0), 2.0, 6.0, (10000,))
        >>> abs(float(x.mean()) - 0.25) < 0.01
        True
    """
    key = _check_key("beta", key)
    dtype = _float_dtype("beta", dtype)
    shape = _result_shape("beta", shape, a=a, b=b)
    key_a, key_b = _split(key)
    log_a = loggamma(key_a, a, shape, dtype)
    log_b = loggamma(key_b, b, shape, dtype)
    # G_a / (G_a + G_b) from the logs, scaled by the larger so nothing underflows
    top = lax.max_p.bind(log_a, log_b)
    ga = lax.exp_p.bind(lax.sub_p.bind(log_a, top))
    gb = lax.exp_p.bind(lax.sub_p.bind(log_b, top))
    return lax.div_p.bind(ga, lax.add_p.bind(ga, gb))


def dirichlet(key, alpha, shape=None, dtype=None) -> Array:
    """Dirichlet random values: normalised independent Gamma variates.

    Args:
      key: a PRNG key (uint32, shape (2,)).
      alpha: the concentrations, positive, shape (..., k).
      shape: the batch shape of the result (without the trailing k); `alpha.shape[:-1]`
        must broadcast to it. Default None: `alpha.shape[:-1]`.
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of shape `shape + (k,)` whose last axis sums to 1.

    Example:
        >>> import nanofn
        >>> x = nanofn.random.dirichlet(nanofn.random.key(0), nanofn.numpy.ones(3), (4,))
        >>> x.shape, bool(abs(x.sum(axis=-1) - 1).max() < 1e-6)
        ((4, 3), True)
    """
    key = _check_key("dirichlet", key)
    dtype = _float_dtype("dirichlet", dtype)
    ashape = _shape_of(alpha)
    if len(ashape) < 1:
        raise ValueError("dirichlet: alpha must have at least one axis (the k concentrations), "
                         "got a scalar")
    if shape is None:
        shape = ashape[:-1]
    else:
        shape = _canonical_shape("dirichlet", shape)
        if _broadcast(shape, ashape[:-1]) != shape:
            raise ValueError(f"dirichlet: the batch shape {ashape[:-1]} of alpha (its shape "
                             f"without the last axis) does not broadcast to shape={shape}")
    logs = loggamma(key, alpha, shape + ashape[-1:], dtype)
    last = len(shape)
    top = lax.reduce_max_p.bind(logs, axes=(last,))
    e = lax.exp_p.bind(lax.sub_p.bind(logs, lax.expand_dims(top, (last,))))
    total = lax.reduce_sum_p.bind(e, axes=(last,))
    return lax.div_p.bind(e, lax.expand_dims(total, (last,)))


def generalized_normal(key, p, shape=(), dtype=None) -> Array:
    """Generalized normal values (density proportional to `exp(-|x|**p)`): p=2 is a normal
    of variance 1/2, p=1 a Laplace.

    Args:
      key: a PRNG key (uint32, shape (2,)).
      p: the power, positive (a Python float or scalar).
      shape: the shape of the result. Default ().
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of `shape` and `dtype`.

    Example:
        >>> import nanofn
        >>> x = nanofn.random.generalized_normal(nanofn.random.key(0), 2.0, (10000,))
        >>> abs(float(x.var()) - 0.5) < 0.03
        True
    """
    key = _check_key("generalized_normal", key)
    dtype = _float_dtype("generalized_normal", dtype)
    shape = _canonical_shape("generalized_normal", shape)
    key_g, key_s = _split(key)
    p = asarray_value(p, dtype)
    inv_p = lax.div_p.bind(_const(1.0, dtype), p)
    g = gamma(key_g, inv_p, shape, dtype)
    sign = rademacher(key_s, shape, dtype)
    return lax.mul_p.bind(sign, lax.pow_p.bind(g, inv_p))


def ball(key, d, p=2, shape=(), dtype=None) -> Array:
    """Points drawn uniformly from the unit Lp ball in `d` dimensions (Barthe et al., 2005).

    Args:
      key: a PRNG key (uint32, shape (2,)).
      d: the dimension (a non-negative Python int).
      p: the p of the Lp norm (default 2: the Euclidean ball).
      shape: the batch shape of the result. Default ().
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of shape `shape + (d,)`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> x = nanofn.random.ball(nanofn.random.key(0), 3, shape=(100,))
        >>> x.shape, bool((fnp.sum(x * x, axis=-1) <= 1).all())
        ((100, 3), True)
    """
    key = _check_key("ball", key)
    dtype = _float_dtype("ball", dtype)
    shape = _canonical_shape("ball", shape)
    if np.ndim(d) != 0:
        raise TypeError(f"ball: d must be a non-negative int (the dimension), got {d!r}")
    (d,) = _canonical_shape("ball", d, "d")
    key_g, key_e = _split(key)
    g = generalized_normal(key_g, p, shape + (d,), dtype)
    e = exponential(key_e, shape, dtype)
    p = asarray_value(p, dtype)
    norm_p = lax.add_p.bind(lax.reduce_sum_p.bind(lax.pow_p.bind(lax.abs_p.bind(g), p),
                                                  axes=(len(shape),)), e)
    scale = lax.pow_p.bind(norm_p, lax.div_p.bind(_const(1.0, dtype), p))
    return lax.div_p.bind(g, lax.expand_dims(scale, (len(shape),)))
