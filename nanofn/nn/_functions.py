"""Activation functions and friends, with jax.nn's names and meanings.

Every function here is written with `nanofn.numpy` and `nanofn.lax`, so `grad`, `jvp`,
`vmap` and `jit` apply to it. Two habits keep them stable at extreme inputs:

* **The max trick with a stopped gradient.** `softmax`, `log_softmax` and `logsumexp`
  subtract the maximum before exponentiating, so `exp` never overflows. The maximum is
  wrapped in `stop_gradient`: the result does not depend on the shift, so its derivative
  through the shift is zero anyway, and stopping it keeps `max`'s tie rule out of the
  gradient.
* **The double-`where` trick.** `where(c, f(x), g(x))` differentiates both branches, so a
  branch that overflows where it is not selected still poisons the gradient with
  `0 * inf = nan`. `elu` and friends first replace the unselected inputs with a harmless
  value (`where(x > 0, 0, x)`) before applying the dangerous function.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from nanofn import numpy as fnp
from nanofn import ops as lax
from nanofn._core import Tracer
from nanofn.numpy._dtypes import default_float, promote_float

__all__ = [
    "celu", "elu", "gelu", "glu", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh",
    "identity", "leaky_relu", "log_sigmoid", "log_softmax", "logsumexp", "one_hot", "relu",
    "relu6", "selu", "sigmoid", "silu", "soft_sign", "softmax", "softplus", "standardize",
    "swish",
]


def _float(x):
    (x,) = promote_float(x)
    return x


def _inexact_only(name, x):
    """`x` as an array, or the TypeError JAX raises for an integer or boolean input to a
    function built on `lax.logistic` (it takes floating and complex arrays only)."""
    x = fnp.asarray(x)
    if not fnp.issubdtype(x.dtype, fnp.inexact):
        raise TypeError(f"{name} does not accept dtype {x.dtype.name}: it takes floating or "
                        "complex inputs (convert with x.astype(float))")
    return x


def _no_bool(name, x):
    """`x` as an array, or JAX's TypeError for a boolean input (its formula negates or
    subtracts, which JAX refuses for booleans)."""
    x = fnp.asarray(x)
    if x.dtype == np.bool_:
        raise TypeError(f"{name} does not accept dtype bool: it takes integer, floating or "
                        "complex inputs")
    return x


def _float_bool_default(x):
    """`_float`, but booleans become the default float: JAX's `logaddexp(x, 0)` and
    `x / (abs(x) + 1)` first meet a Python int, which makes booleans the default int."""
    x = fnp.asarray(x)
    return _float_default(x) if x.dtype == np.bool_ else _float(x)


def _float_default(x):
    """`x` as a float array, the dtype JAX's formulas that mix it with a Python float give:
    integers and booleans become the default float (float64 under jax_enable_x64), not
    float32 as in `_float` (JAX's `elu(int32)` computes `where(x > 0, 0., x)`)."""
    x = fnp.asarray(x)
    if not fnp.issubdtype(x.dtype, fnp.inexact):
        x = x.astype(default_float())
    return x


def _axis_tuple(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of bounds for an input of {ndim} dimensions")
        out.append(a % ndim if ndim else 0)
    return tuple(out)


# ------------------------------------------------------------------------ rectifiers


def identity(x):
    """The identity, `x` itself (jax.nn.identity).

    Example:
        >>> import nanofn
        >>> nanofn.nn.identity(nanofn.numpy.array([1.5]))
        Array([1.5], dtype=float32)
    """
    return fnp.asarray(x)


def relu(x):
    """Rectified linear unit, `max(x, 0)`. Its derivative at 0 is taken to be 0, as in JAX.

    Args:
      x: input array.

    Returns:
      An array of the same shape and dtype.

    Example:
        >>> import nanofn
        >>> nanofn.nn.relu(nanofn.numpy.array([-1.0, 0.0, 2.0]))
        Array([0., 0., 2.], dtype=float32)
    """
    x = fnp.asarray(x)
    return fnp.where(x > 0, x, _nan_or_zero(x))


def _nan_or_zero(x):
    """NaN where `x` is NaN, else 0, with derivative 0: what relu-like functions give below
    their kink (JAX's maximum(x, 0) keeps a NaN; a plain 0 would hide it)."""
    from nanofn import lax
    return fnp.where(x != x, lax.stop_gradient(x), 0)


def relu6(x):
    """`min(max(x, 0), 6)`; derivative 0 at both kinks, as in JAX.

    Example:
        >>> import nanofn
        >>> nanofn.nn.relu6(nanofn.numpy.array([-1.0, 3.0, 9.0]))
        Array([0., 3., 6.], dtype=float32)
    """
    x = _float_default(x)  # JAX's minimum(maximum(x, 0), 6.) promotes integers so
    return fnp.where(x > 0, fnp.where(x < 6, x, 6), _nan_or_zero(x))


def leaky_relu(x, negative_slope=0.01):
    """`x` where `x >= 0`, else `negative_slope * x`.

    Args:
      x: input array.
      negative_slope: slope for negative inputs (default 0.01).

    Example:
        >>> import nanofn
        >>> nanofn.nn.leaky_relu(nanofn.numpy.array([-2.0, 3.0]), negative_slope=0.5)
        Array([-1.,  3.], dtype=float32)
    """
    x = fnp.asarray(x)
    return fnp.where(x >= 0, x, negative_slope * x)


def elu(x, alpha=1.0):
    """Exponential linear unit: `x` for `x > 0`, else `alpha * (exp(x) - 1)`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.elu(nanofn.numpy.array([-50.0, 2.0])).round(3)
        Array([-1.,  2.], dtype=float32)
    """
    x = _float_default(x)
    safe = fnp.where(x > 0, 0.0, x)  # keeps expm1 finite where its branch is not taken
    return fnp.where(x > 0, x, alpha * fnp.expm1(safe))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x):
    """Scaled ELU (Klambauer et al. 2017): `scale * elu(x, alpha)` with the paper's constants
    (alpha ~ 1.6733, scale ~ 1.0507), chosen so activations self-normalise.

    Example:
        >>> import nanofn
        >>> nanofn.nn.selu(nanofn.numpy.array([1.0])).round(4)
        Array([1.0507], dtype=float32)
    """
    return _SELU_SCALE * elu(x, _SELU_ALPHA)


def celu(x, alpha=1.0):
    """Continuously differentiable ELU: `max(x, 0) + alpha * expm1(min(x, 0) / alpha)`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.celu(nanofn.numpy.array([-100.0, 1.0]), alpha=2.0).round(3)
        Array([-2.,  1.], dtype=float32)
    """
    x = _float_default(x)
    # the second derivative at 0 is the left branch's 1 / alpha; JAX's maximum/minimum form
    # gives 1 / (4 alpha), the product of the halves each takes at its tie (a documented
    # difference, tests/numpy/test_kinks.py)
    return fnp.where(x > 0, x, 0.0) + alpha * fnp.expm1(fnp.where(x > 0, 0.0, x) / alpha)


_GELU_CLIP = 10.0  # beyond |x| = 10 the tanh form equals relu(x) to float64 precision


def gelu(x, approximate=True):
    """Gaussian error linear unit, `x * Phi(x)` with `Phi` the standard normal CDF.

    With `approximate=True` (JAX's default) `Phi` is the tanh approximation
    `0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`, evaluated on `x` clipped to
    [-10, 10] so that `x^3` cannot overflow (outside that range the approximation is 0 or
    1 to float64 precision); for real floating `x` it is one primitive with a kernel
    forward and backward (`nanofn.ops._nn.gelu`). With `approximate=False` it is exact:
    `0.5 * erfc(-x / sqrt(2))`.

    Args:
      x: input array.
      approximate: use the tanh approximation (True) or the exact erf form (False).

    Example:
        >>> import nanofn
        >>> x = nanofn.numpy.array([-1.0, 1.0])
        >>> nanofn.nn.gelu(x).round(4), nanofn.nn.gelu(x, approximate=False).round(4)
        (Array([-0.1588,  0.8412], dtype=float32), Array([-0.1587,  0.8413], dtype=float32))
    """
    x = _float(x)
    if approximate:
        if np.issubdtype(x.dtype, np.floating):
            from nanofn.ops import _nn  # the kernel primitive
            return _nn.gelu(x)
        xc = fnp.clip(x, -_GELU_CLIP, _GELU_CLIP)
        inner = math.sqrt(2.0 / math.pi) * (xc + 0.044715 * (xc * xc * xc))
        return x * (0.5 * (1.0 + fnp.tanh(inner)))
    # Phi(x) = erfc(-x / sqrt(2)) / 2: `1 + erf` would cancel to a few bits for negative x
    # (float32 gelu(-5) came out 4% off)
    return x * (0.5 * lax.erfc(x * (-1.0 / math.sqrt(2.0))))


# ------------------------------------------------------------------------ sigmoids


def sigmoid(x):
    """The logistic function `1 / (1 + exp(-x))`, stable for large `|x|`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.sigmoid(nanofn.numpy.array([-1000.0, 0.0, 1000.0]))
        Array([0. , 0.5, 1. ], dtype=float32)
    """
    return lax.logistic(_inexact_only("sigmoid", x))


def silu(x):
    """Sigmoid-weighted linear unit (also called swish): `x * sigmoid(x)`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.silu(nanofn.numpy.array([0.0, 1.0])).round(4)
        Array([0.    , 0.7311], dtype=float32)
    """
    x = _inexact_only("silu", x)
    return x * sigmoid(x)


swish = silu


def softplus(x):
    """`log(1 + exp(x))`, computed as `logaddexp(x, 0)` so it neither overflows for large
    `x` nor loses precision for very negative `x`; its derivatives are smooth at 0
    (the second derivative there is 1/4, as JAX's).

    Example:
        >>> import nanofn
        >>> nanofn.nn.softplus(nanofn.numpy.array([-1000.0, 1000.0]))
        Array([   0., 1000.], dtype=float32)
        >>> round(float(nanofn.nn.softplus(0.0)), 4)
        0.6931
    """
    return fnp.logaddexp(_float_bool_default(x), 0.0)


def log_sigmoid(x):
    """`log(sigmoid(x)) = -softplus(-x)`, finite for every finite `x`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.log_sigmoid(nanofn.numpy.array([-1000.0, 1000.0]))
        Array([-1000.,    -0.], dtype=float32)
        >>> round(float(nanofn.nn.log_sigmoid(0.0)), 4)
        -0.6931
    """
    return -softplus(-_float(_no_bool("log_sigmoid", x)))


def soft_sign(x):
    """`x / (|x| + 1)`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.soft_sign(nanofn.numpy.array([-1.0, 3.0]))
        Array([-0.5 ,  0.75], dtype=float32)
    """
    x = _float_bool_default(x)
    return x / (fnp.abs(x) + 1.0)


def hard_tanh(x):
    """`x` clipped to [-1, 1] (derivative 0 outside the interval and at its ends).

    Example:
        >>> import nanofn
        >>> nanofn.nn.hard_tanh(nanofn.numpy.array([-3.0, 0.5, 2.0]))
        Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    x = fnp.asarray(x)
    return fnp.where(x > 1, 1, fnp.where(x < -1, -1, x))


def hard_sigmoid(x):
    """Piecewise-linear sigmoid: `relu6(x + 3) / 6`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.hard_sigmoid(nanofn.numpy.array([-4.0, 0.0, 4.0]))
        Array([0. , 0.5, 1. ], dtype=float32)
    """
    return relu6(_float_default(x) + 3.0) / 6.0


def hard_silu(x):
    """Piecewise-quadratic SiLU (hard swish): `x * hard_sigmoid(x)`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.hard_silu(nanofn.numpy.array([-4.0, 1.0, 4.0])).round(4)
        Array([-0.    ,  0.6667,  4.    ], dtype=float32)
    """
    x = _float_default(x)
    return x * hard_sigmoid(x)


hard_swish = hard_silu


def glu(x, axis=-1):
    """Gated linear unit: split `x` in two halves `a, b` along `axis`; `a * sigmoid(b)`.

    Args:
      x: input array; its size along `axis` must be even.
      axis: the axis to split.

    Returns:
      An array with half the size of `x` along `axis`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.glu(nanofn.numpy.array([[2.0, 0.0]]))
        Array([[1.]], dtype=float32)
    """
    x = _inexact_only("glu", x)
    (ax,) = _axis_tuple(axis, x.ndim)
    size = x.shape[ax]
    if size % 2:
        raise ValueError(f"glu: the size of axis {axis} must be even to split it in two "
                         f"halves, got shape {tuple(x.shape)}")
    a = lax.slice_in_dim(x, 0, size // 2, axis=ax)
    b = lax.slice_in_dim(x, size // 2, size, axis=ax)
    return a * sigmoid(b)


# ------------------------------------------------------------------------ softmax family


def _masked_max(x, axes, where):
    """The maximum over `axes` (kept), a finite constant with no gradient."""
    if where is not None:
        x = fnp.where(where, x, -np.inf)
    m = fnp.max(x, axis=axes, keepdims=True)
    m = fnp.where(fnp.isfinite(m), m, 0.0)  # all -inf (or masked) slices: shift by 0
    return lax.stop_gradient(m)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, where=None):
    """`log(sum(b * exp(a)))` over `axis`, without overflow (jax.nn.logsumexp).

    Args:
      a: input array.
      axis: axis or axes to reduce (default: all).
      b: optional weights, broadcastable to `a`; may be negative when `return_sign=True`.
      keepdims: keep the reduced axes with size 1.
      return_sign: if True, return `(log|s|, sign(s))` for the weighted sum `s`;
        otherwise a negative sum gives nan.
      where: optional boolean mask broadcastable to `a`; masked-out elements are skipped.

    Returns:
      The reduced array (and the sign, with `return_sign=True`).

    Example:
        >>> import nanofn
        >>> x = nanofn.numpy.array([1000.0, 1000.0])
        >>> float(nanofn.nn.logsumexp(x).round(4))
        1000.6931
    """
    a = _float(a)
    axes = _axis_tuple(axis, a.ndim)
    complex_ = fnp.issubdtype(a.dtype, fnp.complexfloating)
    if b is None and where is None and not return_sign and a.ndim and axes and not complex_:
        from nanofn.ops import _nn  # the kernel primitive, over the last axis
        return _nn.over_axes(_nn.logsumexp, a, tuple(sorted(axes)), reduce=True,
                             keepdims=keepdims)
    if b is not None:
        # entries weighted 0 are left out, even where `a` is inf or nan (as JAX and scipy):
        # they count as -inf, so they neither set the shift nor reach the sum
        if not isinstance(b, (int, float)):
            b = fnp.asarray(b)
        a = fnp.where(b != 0, a, -np.inf)
        axes = _axis_tuple(axis, a.ndim)
    if where is not None:
        where = fnp.broadcast_to(fnp.asarray(where, dtype=bool), a.shape)
        a = fnp.where(where, a, -np.inf)  # no nan from masked-out entries, nor in gradients
    # complex input (as JAX): shifted by the largest real part, the log of a complex sum;
    # with return_sign, the sign is s / |s|
    amax = _masked_max(fnp.real(a) if complex_ else a, axes, where)
    e = fnp.exp(a - amax)
    if b is not None:
        e = e * b
    if where is not None:
        e = fnp.where(where, e, 0.0)
    s = fnp.sum(e, axis=axes, keepdims=True)
    sign = fnp.sign(s)
    if return_sign or not complex_:
        s = fnp.abs(s)
    out = fnp.log(s) + amax
    if not keepdims:
        out = fnp.squeeze(out, axis=axes)
        sign = fnp.squeeze(sign, axis=axes)
    if return_sign:
        return out, sign
    if b is not None and not complex_:
        # as JAX: nan where the weighted sum is negative, and no gradient flows there (the
        # log is of |sum|, so the branch not taken has a finite derivative)
        out = fnp.where(lax.stop_gradient(sign) < 0, np.nan, out)
    return out


def softmax(x, axis=-1, where=None):
    """`exp(x) / sum(exp(x))` along `axis`, shifted by the maximum so it never overflows.

    Args:
      x: input array (logits).
      axis: axis or axes to normalise over (default: the last).
      where: optional boolean mask; masked-out elements get probability 0.

    Returns:
      An array of the shape of `x` whose slices along `axis` sum to 1.

    Example:
        >>> import nanofn
        >>> nanofn.nn.softmax(nanofn.numpy.array([1000.0, 1000.0, -1000.0]))
        Array([0.5, 0.5, 0. ], dtype=float32)
    """
    x = _float(_no_bool("softmax", x))
    axes = _axis_tuple(axis, x.ndim)
    if where is None and x.ndim and axes:
        from nanofn.ops import _nn  # the kernel primitive, over the last axis
        return _nn.over_axes(_nn.softmax, x, tuple(sorted(axes)))
    # JAX's formula: shifted by the (unmasked) maximum, even when it is not finite, so a
    # slice holding +inf or nan is all nan; masked-out elements are 0 (a slice with every
    # element masked out is all 0)
    where = _where_mask(where, x)
    x_max = lax.stop_gradient(fnp.max(x, axis=axes, where=where, initial=-np.inf,
                                      keepdims=True))
    x_safe = x if where is None else fnp.where(where, x, -np.inf)
    e = fnp.exp(x_safe - x_max)
    result = e / fnp.sum(e, axis=axes, where=where, keepdims=True)
    if where is not None:
        result = fnp.where(where, result, 0.0)
    return result


def log_softmax(x, axis=-1, where=None):
    """`x - logsumexp(x)` along `axis`: log-probabilities, finite at any finite logits.

    Args:
      x: input array (logits).
      axis: axis or axes to normalise over (default: the last).
      where: optional boolean mask; masked-out elements get `-inf`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.log_softmax(nanofn.numpy.array([0.0, 1000.0])).round(3)
        Array([-1000.,     0.], dtype=float32)
    """
    x = _float(_no_bool("log_softmax", x))
    axes = _axis_tuple(axis, x.ndim)
    if where is None and x.ndim and axes:
        from nanofn.ops import _nn  # the kernel primitive, over the last axis
        return _nn.over_axes(_nn.log_softmax, x, tuple(sorted(axes)))
    # JAX's formula (see softmax): masked-out elements are -inf
    where = _where_mask(where, x)
    x_max = lax.stop_gradient(fnp.max(x, axis=axes, where=where, initial=-np.inf,
                                      keepdims=True))
    x_safe = x if where is None else fnp.where(where, x, -np.inf)
    shifted = x_safe - x_max
    out = shifted - fnp.log(fnp.sum(fnp.exp(shifted), axis=axes, where=where, keepdims=True))
    if where is not None:
        out = fnp.where(where, out, -np.inf)
    return out


def _where_mask(where, x):
    if where is None:
        return None
    return fnp.broadcast_to(fnp.asarray(where, dtype=bool), x.shape)


# ------------------------------------------------------------------------ utilities


def one_hot(x, num_classes, *, dtype=None, axis=-1):
    """One-hot encode integer labels: `out[..., k] = (x[...] == k)`.

    Labels outside `[0, num_classes)` give all-zero rows, as in JAX.

    Args:
      x: integer array of labels.
      num_classes: number of classes (the size of the new axis).
      dtype: dtype of the result (default: the default float, float32; float64 with
        jax_enable_x64, as JAX's `float_`).
      axis: where to put the new axis in the result (default: last).

    Returns:
      An array of shape `x.shape` with a new axis of size `num_classes` at `axis`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.one_hot(nanofn.numpy.array([0, 2]), 3)
        Array([[1., 0., 0.],
               [0., 0., 1.]], dtype=float32)
    """
    num_classes = _static_int(num_classes, "one_hot", "num_classes")
    x = _no_bool("one_hot", x)  # as JAX, whose iota of the classes takes no bool
    if not fnp.issubdtype(x.dtype, fnp.integer):
        # JAX deprecated float labels (they still work, compared with the class indices)
        warnings.warn(f"nanofn.nn.one_hot input should be integer-typed; got dtype={x.dtype}",
                      DeprecationWarning, stacklevel=2)
    out_ndim = x.ndim + 1
    (ax,) = _axis_tuple(axis, out_ndim)
    labels = fnp.expand_dims(x, ax)
    iota_dtype = labels.dtype if fnp.issubdtype(labels.dtype, fnp.integer) else np.int32
    shape = [1] * ax + [num_classes] + [1] * (out_ndim - ax - 1)
    classes = lax.broadcasted_iota(iota_dtype, shape, ax)
    return fnp.astype(labels == classes, float if dtype is None else dtype)


def _static_int(n, fn, arg):
    if isinstance(n, Tracer):
        raise TypeError(f"{fn}: {arg} must be a Python int known when tracing, not a traced "
                        "value; pass it as a static argument (jit(..., static_argnums=...))")
    try:
        value = int(n)
    except TypeError:
        raise TypeError(f"{fn}: {arg} must be an int, got {n!r}") from None
    if value != n or value < 0:
        raise ValueError(f"{fn}: {arg} must be a non-negative int, got {n!r}")
    return value


def standardize(x, axis=-1, mean=None, variance=None, epsilon=1e-5, where=None, *,
                algorithm="fast"):
    """Normalise `x` to zero mean and unit variance along `axis`:
    `(x - mean) / sqrt(variance + epsilon)`.

    Args:
      x: input array.
      axis: axis or axes over which statistics are taken (default: the last).
      mean: precomputed mean (broadcastable to `x`); computed from `x` if None.
      variance: precomputed variance; computed from `x` if None.
      epsilon: added to the variance for numerical stability.
      where: optional boolean mask of the elements that count in the statistics.
      algorithm: how the variance is computed when not given, as in JAX: "fast" (the
        default, JAX's) is `mean(x**2) - mean(x)**2` clipped at 0, one pass but inexact
        when the mean is large against the spread; "stable" is `mean((x - mean)**2)`.

    Example:
        >>> import nanofn
        >>> nanofn.nn.standardize(nanofn.numpy.array([1.0, 3.0])).round(3)
        Array([-1.,  1.], dtype=float32)
        >>> x = nanofn.numpy.array([1000.0, 1000.5])
        >>> nanofn.nn.standardize(x, algorithm="stable").round(3)
        Array([-1.,  1.], dtype=float32)
    """
    if algorithm not in ("fast", "stable"):
        raise ValueError(f"Unknown algorithm '{algorithm}'. Expected 'fast' or 'stable'.")
    x = _float(x)
    axes = _axis_tuple(axis, x.ndim)
    # Python numbers are weakly typed, as in JAX: they take x's dtype (also where the
    # variance is computed from a given mean)
    mean, variance = (v if v is None or hasattr(v, "dtype") else fnp.asarray(v, x.dtype)
                      for v in (mean, variance))
    if mean is None:
        mean = fnp.mean(x, axis=axes, keepdims=True, where=where)
    if variance is None:
        if algorithm == "stable":
            variance = fnp.mean(fnp.square(x - mean), axis=axes, keepdims=True, where=where)
        else:
            variance = fnp.mean(fnp.square(x), axis=axes, keepdims=True,
                                where=where) - fnp.square(mean)
            variance = fnp.clip(variance, 0)  # it may come out negative
    return (x - mean) * lax.rsqrt(variance + epsilon)
