"""Parameter initializers with jax.nn.initializers' names and signatures.

An initializer is a function `init(key, shape, dtype=float32) -> Array`. The constructors
here (`normal(stddev)`, `glorot_uniform()`, `variance_scaling(...)`, ...) return one;
`zeros` and `ones` are initializers themselves, as in JAX:

    w = glorot_normal()(key, (64, 128))
    b = zeros(key, (128,))

Fans follow JAX: for a weight of shape `shape`, `in_axis` (default -2) and `out_axis`
(default -1) hold the input and output feature sizes, every other axis (except
`batch_axis`) is a receptive field, so a conv kernel of shape `(3, 3, 16, 32)` (HWIO) has
`fan_in = 3 * 3 * 16` and `fan_out = 3 * 3 * 32`.

Initialisation is not differentiated, so `orthogonal` may use numpy's QR on concrete
values; every other initializer is built from `nanofn.random` and works under `jit`.
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

_DEFAULT_DTYPE = np.float32


class Initializer(Protocol):
    """What every initializer here returns (jax.nn.initializers.Initializer): a function
    `init(key, shape, dtype=...) -> array`, for type annotations.

    Example:
        >>> from nanofn.nn import initializers
        >>> f: initializers.Initializer = initializers.zeros
        >>> f(None, (2,)).shape
        (2,)
    """

    def __call__(self, key: Any, shape: Any, dtype: Any = ...) -> Any:
        ...


def _shape(shape, name):
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"{name}: shape must be a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{name}: shape must have non-negative sizes, got {dims}")
    return dims


def zeros(key, shape, dtype=_DEFAULT_DTYPE):
    """An initializer of zeros (`key` is ignored).

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> initializers.zeros(nanofn.random.key(0), (2,))
        Array([0., 0.], dtype=float32)
    """
    del key  # unused
    return fnp.zeros(_shape(shape, "zeros"), dtype)


def ones(key, shape, dtype=_DEFAULT_DTYPE):
    """An initializer of ones (`key` is ignored).

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> initializers.ones(nanofn.random.key(0), (2,))
        Array([1., 1.], dtype=float32)
    """
    del key  # unused
    return fnp.ones(_shape(shape, "ones"), dtype)


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
    def init(key, shape, dtype=dtype):
        del key  # unused
        return fnp.broadcast_to(fnp.asarray(value, dtype=dtype), _shape(shape, "constant"))
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
    def init(key, shape, dtype=dtype):
        return random.uniform(key, _shape(shape, "uniform"), dtype, 0.0, float(scale))
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
    def init(key, shape, dtype=dtype):
        return random.normal(key, _shape(shape, "normal"), dtype) * float(stddev)
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
    def init(key, shape, dtype=dtype):
        x = random.truncated_normal(key, float(lower), float(upper),
                                    _shape(shape, "truncated_normal"), dtype)
        return x * float(stddev)
    return init


def _axes(shape, axes, name):
    if isinstance(axes, int):
        axes = (axes,)
    out = []
    for a in axes:
        if not -len(shape) <= a < len(shape):
            raise ValueError(f"{name}: axis {a} is out of range for a weight of shape {shape}")
        out.append(a % len(shape))
    return tuple(out)


def compute_fans(shape, in_axis=-2, out_axis=-1, batch_axis=()):
    """`(fan_in, fan_out)` of a weight of `shape` (JAX's rule, see the module docstring).

    Example:
        >>> from nanofn.nn.initializers import compute_fans
        >>> compute_fans((3, 3, 16, 32))
        (144, 288)
    """
    shape = tuple(shape)
    if len(shape) < 1:
        raise ValueError(f"compute_fans: a weight needs at least one axis, got shape {shape}")
    if len(shape) == 1:
        return shape[0], shape[0]
    (i,) = _axes(shape, in_axis, "compute_fans")
    (o,) = _axes(shape, out_axis, "compute_fans")
    batch = _axes(shape, batch_axis, "compute_fans")
    receptive = math.prod(d for k, d in enumerate(shape) if k not in (i, o) and k not in batch)
    return shape[i] * receptive, shape[o] * receptive


_TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to (-2, 2)


def variance_scaling(scale, mode, distribution, in_axis=-2, out_axis=-1, batch_axis=(),
                     dtype=_DEFAULT_DTYPE):
    """An initializer whose samples have variance `scale / n`, with `n` set by `mode`.

    `n` is `fan_in` (mode "fan_in"), `fan_out` ("fan_out") or their mean ("fan_avg").
    The distribution is one of:

    * "truncated_normal": a normal truncated to two standard deviations, rescaled so the
      variance is exactly `scale / n`;
    * "normal": a normal of standard deviation `sqrt(scale / n)`;
    * "uniform": uniform on `[-limit, limit)` with `limit = sqrt(3 * scale / n)`.

    Args:
      scale: the variance scale, a positive float.
      mode: "fan_in", "fan_out" or "fan_avg".
      distribution: "truncated_normal", "normal" or "uniform".
      in_axis: axis (or axes) of the input features.
      out_axis: axis (or axes) of the output features.
      batch_axis: axes to leave out of the fans.
      dtype: default dtype.

    Returns:
      An initializer `init(key, shape, dtype=dtype)`.

    Example:
        >>> from nanofn.nn import initializers
        >>> import nanofn
        >>> init = initializers.variance_scaling(2.0, "fan_in", "normal")
        >>> w = init(nanofn.random.key(0), (200, 300))
        >>> round(float(w.var() * 200), 1)
        2.0
    """
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"variance_scaling: mode must be 'fan_in', 'fan_out' or 'fan_avg', "
                         f"got {mode!r}")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise ValueError("variance_scaling: distribution must be 'truncated_normal', 'normal' "
                         f"or 'uniform', got {distribution!r}")
    if not scale > 0:
        raise ValueError(f"variance_scaling: scale must be positive, got {scale!r}")

    def init(key, shape, dtype=dtype):
        shape = _shape(shape, "variance_scaling")
        fan_in, fan_out = compute_fans(shape, in_axis, out_axis, batch_axis)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = float(scale) / max(1.0, float(n))
        if distribution == "truncated_normal":
            std = math.sqrt(variance) / _TRUNC_STD
            return random.truncated_normal(key, -2.0, 2.0, shape, dtype) * std
        if distribution == "normal":
            return random.normal(key, shape, dtype) * math.sqrt(variance)
        limit = math.sqrt(3.0 * variance)
        return random.uniform(key, shape, dtype, -limit, limit)
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

    The QR decomposition runs in numpy on concrete numbers (initialisation is never
    differentiated), so this initializer does not work under `jit`.

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
    def init(key, shape, dtype=dtype):
        shape = _shape(shape, "orthogonal")
        if len(shape) < 2:
            raise ValueError(f"orthogonal: needs a weight with at least 2 axes, got shape {shape}")
        (col,) = _axes(shape, column_axis, "orthogonal")
        n_cols = shape[col]
        n_rows = math.prod(shape) // n_cols if n_cols else 0
        mat_shape = (n_cols, n_rows) if n_rows < n_cols else (n_rows, n_cols)
        # drawn in `dtype`, as JAX draws it, so a key gives JAX's matrix; factored in float64
        a = np.asarray(random.normal(key, mat_shape, dtype), np.float64)
        q, r = np.linalg.qr(a)
        d = np.sign(np.diag(r))
        q = q * np.where(d == 0, 1.0, d)
        if n_rows < n_cols:
            q = q.T
        other = tuple(d for k, d in enumerate(shape) if k != col)
        q = np.moveaxis(q.reshape(other + (n_cols,)), -1, col)
        return fnp.asarray((scale * q).astype(dtype))
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
    matrix = orthogonal(scale=scale, column_axis=column_axis, dtype=dtype)

    def init(key, shape, dtype=dtype):
        shape = _shape(shape, "delta_orthogonal")
        if len(shape) not in (3, 4, 5):
            raise ValueError(f"delta_orthogonal: needs a kernel of 3, 4 or 5 axes (1 to 3 "
                             f"spatial, then in and out), got shape {shape}")
        if shape[-1] < shape[-2]:
            raise ValueError(f"delta_orthogonal: the input features ({shape[-2]}) must not "
                             f"outnumber the output features ({shape[-1]}), shape {shape}")
        centre = tuple((k - 1) // 2 for k in shape[:-2])
        weight = np.zeros(shape, dtype)
        weight[centre] = np.asarray(matrix(key, shape[-2:], dtype))
        return fnp.asarray(weight)
    return init
