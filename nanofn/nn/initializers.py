"""Parameter initializers with jax.nn.initializers' names and signatures.

An initializer is a function `init(key, shape, dtype=None, out_sharding=None) -> Array`
(`dtype=None`: the default float, float32, or float64 under jax_enable_x64, as in JAX;
`out_sharding` is accepted for JAX's signature and unused on one device). The constructors
here (`normal(stddev)`, `glorot_uniform()`, `variance_scaling(...)`, ...) return one;
`zeros` and `ones` are initializers themselves, as in JAX:

    w = glorot_normal()(key, (64, 128))
    b = zeros(key, (128,))

Fans follow JAX: for a weight of shape `shape`, `in_axis` (default -2) and `out_axis`
(default -1) hold the input and output feature sizes, every other axis (except
`batch_axis`) is a receptive field, so a conv kernel of shape `(3, 3, 16, 32)` (HWIO) has
`fan_in = 3 * 3 * 16` and `fan_out = 3 * 3 * 32`.

Every initializer is built from `nanofn.random` in JAX's order of operations, so a key
gives JAX's values (to the last bit where `nanofn.random`'s draws are JAX's), and works
under `jit`.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from nanofn import numpy as fnp
from nanofn import random

__all__ = [
    "Initializer", "constant", "delta_orthogonal", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "kaiming_normal",
    "kaiming_uniform", "lecun_normal", "lecun_uniform", "normal", "ones", "orthogonal",
    "truncated_normal", "uniform", "variance_scaling", "xavier_normal", "xavier_uniform",
    "zeros",
]

_DEFAULT_DTYPE = None  # the default float: float32, float64 under jax_enable_x64 (JAX's)


def _dtype(dtype):
    """JAX's `dtypes.default_float_dtype() if dtype is None else dtype`."""
    if dtype is None:
        from nanofn.numpy._dtypes import default_float
        return default_float()
    return dtype


def _issubfloat(dtype):
    return np.issubdtype(np.dtype(dtype), np.floating)


class Initializer(Protocol):
    """What every initializer here returns (jax.nn.initializers.Initializer): a function
    `init(key, shape, dtype=...) -> array`, for type annotations.

    Example:
        >>> from nanofn.nn import initializers
        >>> f: initializers.Initializer = initializers.zeros
        >>> f(None, (2,)).shape
        (2,)
    """

    def __call__(self, key: Any, shape: Any, dtype: Any = None,
                 out_sharding: Any = None) -> Any:
        ...


def _shape(shape, name):
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"{name}: shape must be a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{name}: shape must have non-negative sizes, got {dims}")
    return dims


def zeros(key, shape, dtype=_DEFAULT_DTYPE, out_sharding=None):
    """An initializer of zeros (`key` is ignored).

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> initializers.zeros(nanofn.random.key(0), (2,))
        Array([0., 0.], dtype=float32)
    """
    del key, out_sharding  # unused (one device)
    return fnp.zeros(_shape(shape, "zeros"), _dtype(dtype))


def ones(key, shape, dtype=_DEFAULT_DTYPE, out_sharding=None):
    """An initializer of ones (`key` is ignored).

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> initializers.ones(nanofn.random.key(0), (2,))
        Array([1., 1.], dtype=float32)
    """
    del key, out_sharding  # unused (one device)
    return fnp.ones(_shape(shape, "ones"), _dtype(dtype))


def constant(value, dtype=_DEFAULT_DTYPE):
    """An initializer that fills every entry with `value`.

    Args:
      value: the fill value (a scalar or an array broadcastable to the shape).
      dtype: default dtype of the initializer.

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> initializers.constant(-2.0)(nanofn.random.key(0), (2,))
        Array([-2., -2.], dtype=float32)
    """
    def init(key, shape, dtype=dtype, out_sharding=None):
        del key, out_sharding  # unused
        return fnp.full(_shape(shape, "constant"), value, dtype=_dtype(dtype))
    return init


def uniform(scale=1e-2, dtype=_DEFAULT_DTYPE):
    """An initializer of uniform values in `[0, scale)` (JAX's meaning: not centred).

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> w = initializers.uniform(2.0)(nanofn.random.key(0), (1000,))
        >>> bool((w >= 0).all() and (w < 2).all())
        True
    """
    def init(key, shape, dtype=dtype, out_sharding=None):
        dtype = _dtype(dtype)
        # JAX's order of operations (draw in [0, 1), then scale), so a key gives JAX's values
        return random.uniform(key, _shape(shape, "uniform"), dtype) * fnp.asarray(scale, dtype)
    return init


def normal(stddev=1e-2, dtype=_DEFAULT_DTYPE):
    """An initializer of normal values with mean 0 and standard deviation `stddev`.

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> w = initializers.normal(3.0)(nanofn.random.key(0), (10000,))
        >>> round(float(w.std()), 1)
        3.0
    """
    def init(key, shape, dtype=dtype, out_sharding=None):
        dtype = _dtype(dtype)
        return random.normal(key, _shape(shape, "normal"), dtype) * fnp.asarray(stddev, dtype)
    return init


def truncated_normal(stddev=1e-2, dtype=_DEFAULT_DTYPE, lower=-2.0, upper=2.0):
    """An initializer of normal values truncated to `[lower, upper]` standard deviations,
    then scaled by `stddev` (so the result's own standard deviation is below `stddev`).

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> w = initializers.truncated_normal(1.0)(nanofn.random.key(0), (1000,))
        >>> bool((abs(w) <= 2.0).all())
        True
    """
    def init(key, shape, dtype=dtype, out_sharding=None):
        dtype = _dtype(dtype)
        x = random.truncated_normal(key, lower, upper, _shape(shape, "truncated_normal"), dtype)
        return x * fnp.asarray(stddev, dtype)
    return init


def _axes_size(shape, axes, what):
    try:
        if isinstance(axes, (int, np.integer)):
            return shape[axes]
        return math.prod(shape[int(a)] for a in axes)
    except IndexError:
        raise ValueError(f"compute_fans: {what} {axes!r} is out of range for a weight of "
                         f"shape {shape}") from None


def compute_fans(shape, in_axis=-2, out_axis=-1, batch_axis=()):
    """`(fan_in, fan_out)` of a weight of `shape`, as floats (JAX's rule, see the module
    docstring): `in_axis`, `out_axis` and `batch_axis` may each be an int or a sequence
    of ints; every other axis is a receptive field.

    Example:
        >>> from nanofn.nn.initializers import compute_fans
        >>> compute_fans((3, 3, 16, 32))
        (144.0, 288.0)
    """
    shape = tuple(shape)
    if isinstance(in_axis, (int, np.integer)) and in_axis == -2 and len(shape) <= 1:
        raise ValueError(
            f"Can't compute input and output sizes of a {len(shape)}-dimensional weights "
            "tensor with default in_axis. Must be at least 2D or specify in_axis explicitly.")
    in_size = _axes_size(shape, in_axis, "in_axis")
    out_size = _axes_size(shape, out_axis, "out_axis")
    batch_size = _axes_size(shape, batch_axis, "batch_axis")
    # JAX divides in floating point (a zero-sized weight gives nan fans, as in JAX)
    with np.errstate(all="ignore"):
        receptive = np.float64(math.prod(shape)) / in_size / out_size / batch_size
    return float(in_size * receptive), float(out_size * receptive)


_TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to (-2, 2)
_COMPLEX_TRUNC_STD = 0.95311164380491208  # the same for the complex one (modulus < 2)


def _complex_uniform(key, shape, dtype):
    """Uniform on the disk of the complex plane with zero mean and unit variance (JAX's)."""
    key_r, key_theta = random.split(key)
    real_dtype = np.array(0, dtype).real.dtype
    r = fnp.sqrt(2 * random.uniform(key_r, shape, real_dtype)).astype(dtype)
    theta = 2 * np.pi * random.uniform(key_theta, shape, real_dtype).astype(dtype)
    return r * fnp.exp(1j * theta)


def _complex_truncated_normal(key, upper, shape, dtype):
    """A centred complex normal of variance 1 whose modulus is truncated to `upper` (JAX's)."""
    key_r, key_theta = random.split(key)
    real_dtype = np.array(0, dtype).real.dtype
    t = ((1 - fnp.exp(fnp.asarray(-(upper ** 2), dtype)))
         * random.uniform(key_r, shape, real_dtype).astype(dtype))
    r = fnp.sqrt(-fnp.log(1 - t))
    theta = 2 * np.pi * random.uniform(key_theta, shape, real_dtype).astype(dtype)
    return r * fnp.exp(1j * theta)


def variance_scaling(scale, mode, distribution, in_axis=-2, out_axis=-1, batch_axis=(),
                     dtype=_DEFAULT_DTYPE):
    """An initializer whose samples have variance `scale / n`, with `n` set by `mode`.

    `n` is `fan_in` (mode "fan_in"), `fan_out` ("fan_out"), their arithmetic mean
    ("fan_avg") or their geometric mean ("fan_geo_avg"). The distribution is one of:

    * "truncated_normal": a normal truncated to two standard deviations, rescaled so the
      variance is exactly `scale / n` (for complex dtypes, the modulus is truncated);
    * "normal": a normal of standard deviation `sqrt(scale / n)`;
    * "uniform": uniform on `[-limit, limit)` with `limit = sqrt(3 * scale / n)` (for
      complex dtypes, uniform on a disk of that variance).

    A bad `mode` or `distribution` raises ValueError at once (JAX raises it when the
    initializer is called); `scale` is not checked, as in JAX (0 gives zeros).

    Args:
      scale: the variance scale, a positive float.
      mode: "fan_in", "fan_out", "fan_avg" or "fan_geo_avg".
      distribution: "truncated_normal", "normal" or "uniform".
      in_axis: axis (or sequence of axes) of the input features.
      out_axis: axis (or sequence of axes) of the output features.
      batch_axis: axis (or sequence of axes) to leave out of the fans.
      dtype: default dtype (None: the default float, float64 under jax_enable_x64).

    Returns:
      An initializer `init(key, shape, dtype=dtype, out_sharding=None)`.

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> init = initializers.variance_scaling(2.0, "fan_in", "normal")
        >>> w = init(nanofn.random.key(0), (200, 300))
        >>> round(float(w.var() * 200), 1)
        2.0
    """
    if mode not in ("fan_in", "fan_out", "fan_avg", "fan_geo_avg"):
        raise ValueError(f"variance_scaling: mode must be 'fan_in', 'fan_out', 'fan_avg' or "
                         f"'fan_geo_avg', got {mode!r}")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise ValueError("variance_scaling: distribution must be 'truncated_normal', "
                         f"'normal' or 'uniform', got {distribution!r}")

    def init(key, shape, dtype=dtype, out_sharding=None):
        shape = _shape(shape, "variance_scaling")
        dtype = _dtype(dtype)
        fan_in, fan_out = compute_fans(shape, in_axis, out_axis, batch_axis)
        if mode == "fan_in":
            denominator = fan_in
        elif mode == "fan_out":
            denominator = fan_out
        elif mode == "fan_avg":
            denominator = (fan_in + fan_out) / 2
        else:  # "fan_geo_avg" (checked above)
            denominator = (fan_in * fan_out) ** 0.5
        with np.errstate(all="ignore"):
            variance = fnp.asarray(np.divide(scale, denominator), dtype=dtype)
        if distribution == "truncated_normal":
            if _issubfloat(dtype):
                stddev = fnp.sqrt(variance) / fnp.asarray(_TRUNC_STD, dtype)
                return random.truncated_normal(key, -2, 2, shape, dtype) * stddev
            stddev = fnp.sqrt(variance) / fnp.asarray(_COMPLEX_TRUNC_STD, dtype)
            return _complex_truncated_normal(key, 2, shape, dtype) * stddev
        if distribution == "normal":
            return random.normal(key, shape, dtype) * fnp.sqrt(variance)
        if _issubfloat(dtype):  # "uniform" (checked above)
            return random.uniform(key, shape, dtype, -1) * fnp.sqrt(3 * variance)
        return _complex_uniform(key, shape, dtype) * fnp.sqrt(variance)
    return init


def glorot_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=_DEFAULT_DTYPE):
    """Glorot (Xavier) uniform: `variance_scaling(1.0, "fan_avg", "uniform")`.

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> initializers.glorot_uniform()(nanofn.random.key(0), (4, 5)).shape
        (4, 5)
    """
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


def glorot_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=_DEFAULT_DTYPE):
    """Glorot (Xavier) normal: `variance_scaling(1.0, "fan_avg", "truncated_normal")`.

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> initializers.glorot_normal()(nanofn.random.key(0), (4, 5)).shape
        (4, 5)
    """
    return variance_scaling(1.0, "fan_avg", "truncated_normal", in_axis, out_axis,
                            batch_axis, dtype)


def lecun_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=_DEFAULT_DTYPE):
    """LeCun uniform: `variance_scaling(1.0, "fan_in", "uniform")`.

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> initializers.lecun_uniform()(nanofn.random.key(0), (4, 5)).shape
        (4, 5)
    """
    return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=_DEFAULT_DTYPE):
    """LeCun normal: `variance_scaling(1.0, "fan_in", "truncated_normal")`.

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> initializers.lecun_normal()(nanofn.random.key(0), (4, 5)).shape
        (4, 5)
    """
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def he_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=_DEFAULT_DTYPE):
    """He (Kaiming) uniform: `variance_scaling(2.0, "fan_in", "uniform")`.

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> initializers.he_uniform()(nanofn.random.key(0), (4, 5)).shape
        (4, 5)
    """
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def he_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=_DEFAULT_DTYPE):
    """He (Kaiming) normal: `variance_scaling(2.0, "fan_in", "truncated_normal")`.

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> initializers.he_normal()(nanofn.random.key(0), (4, 5)).shape
        (4, 5)
    """
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal


def orthogonal(scale=1.0, column_axis=-1, dtype=_DEFAULT_DTYPE):
    """An initializer of (semi-)orthogonal matrices, scaled by `scale`.

    The weight is viewed as a matrix with `shape[column_axis]` columns and the product
    of the other sizes as rows; that matrix has orthonormal columns (or rows, if there
    are fewer rows than columns). It is the Q factor of the QR decomposition of a
    standard normal matrix, with signs fixed so the distribution is uniform (Haar).

    It is `nanofn.random.orthogonal` reshaped, as in JAX, and works under `jit`; a shape
    with a zero-sized axis gives zeros.

    Args:
      scale: multiplies the orthogonal matrix.
      column_axis: the axis holding the columns.
      dtype: default dtype.

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn, numpy as np
        >>> q = np.asarray(initializers.orthogonal()(nanofn.random.key(0), (4, 4)))
        >>> bool(np.allclose(q.T @ q, np.eye(4), atol=1e-5))
        True
    """
    def init(key, shape, dtype=dtype, out_sharding=None):
        if out_sharding is not None:
            raise NotImplementedError
        shape = _shape(shape, "orthogonal")
        dtype = _dtype(dtype)
        if len(shape) < 2:
            raise ValueError("orthogonal initializer requires at least a 2D shape (a weight "
                             f"with at least 2 axes), got shape {shape}")
        if any(d == 0 for d in shape):
            return fnp.zeros(shape, dtype=dtype)
        n_rows, n_cols = math.prod(shape) // shape[column_axis], shape[column_axis]
        q = random.orthogonal(key, n_rows, (), dtype, n_cols)
        q = fnp.reshape(q, tuple(np.delete(shape, column_axis)) + (shape[column_axis],))
        q = fnp.moveaxis(q, -1, column_axis)
        return fnp.asarray(scale, dtype) * q
    return init


def delta_orthogonal(scale=1.0, column_axis=-1, dtype=_DEFAULT_DTYPE):
    """The delta-orthogonal initializer of convolution kernels (Xiao et al., 2018): zero
    everywhere but at the centre of the window, where the `(in, out)` matrix is
    `orthogonal(scale, column_axis)`'s, so the convolution starts as an orthogonal map.

    Args:
      scale: multiplies the orthogonal matrix.
      column_axis: the axis of that matrix holding its columns.
      dtype: default dtype.

    The kernel has 1, 2 or 3 spatial axes first, then `in` and `out` with `in <= out`
    (`HWIO` for a 2-d convolution); the centre of an even size is the lower middle.

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn, numpy as np
        >>> w = np.asarray(initializers.delta_orthogonal()(nanofn.random.key(0), (3, 3, 2, 2)))
        >>> bool(np.allclose(w[1, 1].T @ w[1, 1], np.eye(2), atol=1e-5)), float(abs(w[0]).sum())
        (True, 0.0)
    """
    def init(key, shape, dtype=dtype, out_sharding=None):
        if out_sharding is not None:
            raise NotImplementedError
        shape = _shape(shape, "delta_orthogonal")
        dtype = _dtype(dtype)
        if len(shape) not in (3, 4, 5):
            raise ValueError("Delta orthogonal initializer requires a 3D, 4D or 5D shape (a "
                             "kernel of 3, 4 or 5 axes: 1 to 3 spatial, then in and out), "
                             f"got shape {shape}")
        if shape[-1] < shape[-2]:
            raise ValueError(f"`fan_in` must be less or equal than `fan_out`: the input "
                             f"features ({shape[-2]}) must not outnumber the output "
                             f"features ({shape[-1]}), shape {shape}")
        matrix = orthogonal(scale=scale, column_axis=column_axis, dtype=dtype)(key, shape[-2:])
        centre = tuple((k - 1) // 2 for k in shape[:-2])
        return fnp.zeros(shape, dtype=dtype).at[centre].set(matrix)
    return init
