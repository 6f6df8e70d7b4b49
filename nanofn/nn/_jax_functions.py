"""The rest of jax.nn's activation functions, written with nanofn.numpy (every transform
applies). Each has jax.nn's name, arguments and formula."""

from __future__ import annotations

import numpy as np

import nanofn.numpy as fnp
from nanofn import custom_jvp as _custom_jvp
from nanofn.nn._functions import logsumexp, softplus

__all__ = ["tanh", "mish", "squareplus", "log1mexp", "logmeanexp", "sparse_plus",
           "sparse_sigmoid"]


def tanh(x):
    """Hyperbolic tangent (jax.nn.tanh, the same function as jax.numpy.tanh).

    Example:
        >>> import nanofn
        >>> nanofn.nn.tanh(nanofn.numpy.array([0.0, 1.0]))
        Array([0.       , 0.7615942], dtype=float32)
    """
    return fnp.tanh(x)


def mish(x):
    """`x * tanh(softplus(x))` (Misra 2019; jax.nn.mish).

    Example:
        >>> import nanofn
        >>> nanofn.nn.mish(nanofn.numpy.array([0.0, 1.0]))
        Array([0.       , 0.8650984], dtype=float32)
    """
    return x * fnp.tanh(softplus(x))


def squareplus(x, b=4):
    """`(x + sqrt(x**2 + b)) / 2`, a smooth ReLU (Barron 2021; jax.nn.squareplus).

    Example:
        >>> import nanofn
        >>> nanofn.nn.squareplus(nanofn.numpy.array([0.0, 2.0]))
        Array([1.       , 2.4142137], dtype=float32)
    """
    x = fnp.asarray(x)
    return (x + fnp.sqrt(fnp.square(x) + b)) / 2


@_custom_jvp
def log1mexp(x):
    """`log(1 - exp(-x))` for `x > 0`, accurate for small and large `x` (jax.nn.log1mexp).

    Example:
        >>> import nanofn
        >>> round(float(nanofn.nn.log1mexp(2.0)), 5)
        -0.14541
    """
    x = fnp.asarray(x)
    # log1p(-exp(-x)) loses accuracy for small x, log(-expm1(-x)) for large x
    return fnp.where(x < np.log(2.0), fnp.log(-fnp.expm1(-x)), fnp.log1p(-fnp.exp(-x)))


# JAX's derivative rule, 1 / expm1(x), which stays finite where the where-branches' own
# derivatives would give nan (x <= 0, where the value is nan or -inf)
log1mexp.defjvps(lambda g, ans, x: g / fnp.expm1(x))


def logmeanexp(x, axis=None, where=None, keepdims=False):
    """`log(mean(exp(x)))` over `axis`, without overflow (jax.nn.logmeanexp).

    Example:
        >>> import nanofn
        >>> round(float(nanofn.nn.logmeanexp(nanofn.numpy.array([0.0, 0.0]))), 5)
        0.0
    """
    x = fnp.asarray(x)
    lse = logsumexp(x, axis=axis, keepdims=keepdims, where=where)
    if where is not None:
        count = fnp.sum(fnp.broadcast_to(where, x.shape), axis=axis, keepdims=keepdims)
        return lse - fnp.log(count.astype(lse.dtype))
    if axis is None:
        n = x.size
    else:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        n = int(np.prod([x.shape[a] for a in axes]))
    return lse - np.log(n).astype(lse.dtype)


def sparse_plus(x):
    """0 for `x <= -1`, `x` for `x >= 1`, `(x + 1)**2 / 4` between (jax.nn.sparse_plus).

    Example:
        >>> import nanofn
        >>> nanofn.nn.sparse_plus(nanofn.numpy.array([-2.0, 0.0, 2.0]))
        Array([0.  , 0.25, 2.  ], dtype=float32)
    """
    x = fnp.asarray(x)
    return fnp.where(x <= -1.0, fnp.zeros_like(x),
                     fnp.where(x >= 1.0, x, (x + 1.0) ** 2 / 4))


def sparse_sigmoid(x):
    """`clip((x + 1) / 2, 0, 1)`, the derivative of `sparse_plus` (jax.nn.sparse_sigmoid).

    Example:
        >>> import nanofn
        >>> nanofn.nn.sparse_sigmoid(nanofn.numpy.array([-2.0, 0.0, 0.5]))
        Array([0.  , 0.5 , 0.75], dtype=float32)
    """
    return 0.5 * fnp.clip(fnp.asarray(x) + 1.0, 0.0, 2.0)
