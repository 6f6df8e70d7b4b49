"""Summary statistics of samples: `mode`, `rankdata` and `sem` (as `jax.scipy.stats`).

`mode` and `rankdata` compare every entry with every other along the axis (n^2 work, no
sort, no data-dependent shapes), so they run under `jit` and `vmap` unchanged.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from nanofn._core import Array
from nanofn import numpy as jnp
from nanofn.numpy._dtypes import default_float, default_int, dtype_of
from nanofn.numpy._lax_numpy import _shape, canonicalize_axes
from nanofn.scipy.stats._util import const, promote_args

__all__ = ["ModeResult", "mode", "rankdata", "sem"]

_NAN_POLICIES = ("propagate", "omit", "raise")


def _check_nan_policy(fname, nan_policy):
    if nan_policy not in _NAN_POLICIES:
        raise ValueError(f"{fname}: illegal nan_policy value {nan_policy!r}; expected one of "
                         f"{_NAN_POLICIES}")
    if nan_policy != "propagate":
        raise NotImplementedError(f"{fname}: nan_policy={nan_policy!r} is not implemented (as in "
                                  "JAX); check for NaNs before the call")


class ModeResult(NamedTuple):
    """What `mode` returns: the most frequent values and how often each occurs."""
    mode: Array
    count: Array


def mode(a, axis=0, nan_policy="propagate", keepdims=False):
    """The most frequent value along `axis` (the smallest one where several tie), and its
    count. NaN entries are passed over; an all-NaN slice gives NaN, counted once per entry.

    Args:
        a: array-like input.
        axis: the axis to reduce, or None for the flattened array.
        nan_policy: only 'propagate' is supported (as in JAX).
        keepdims: keep the reduced axis with size 1.

    Returns:
        `ModeResult(mode, count)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.stats import mode
        >>> mode(fnp.array([3, 1, 3, 2, 1, 3]))
        ModeResult(mode=Array(3, dtype=int32), count=Array(3, dtype=int32))
    """
    _check_nan_policy("mode", nan_policy)
    x = jnp.atleast_1d(jnp.asarray(a))
    if axis is None:
        out_shape = (1,) * len(_shape(x)) if keepdims else ()
        x = jnp.ravel(x)
        axis = 0
    else:
        (axis,) = canonicalize_axes(axis, len(_shape(x)))
        shape = _shape(x)
        out_shape = tuple(1 if i == axis else s for i, s in enumerate(shape)) if keepdims else \
            tuple(s for i, s in enumerate(shape) if i != axis)
    x = jnp.moveaxis(x, axis, -1)
    if _shape(x)[-1] == 0:  # an empty axis: NaN with count 0, as JAX
        return ModeResult(jnp.full(out_shape, np.nan, default_float()),
                          jnp.zeros(out_shape, default_float()))
    same = jnp.equal(jnp.expand_dims(x, -1), jnp.expand_dims(x, -2))
    counts = jnp.sum(same, axis=-1, dtype=default_int())
    top = jnp.max(counts, axis=-1, keepdims=True)
    # the smallest value among those with the top count; a NaN never equals itself, so it
    # counts 0 and is passed over wherever another value occurs (as JAX's and scipy's)
    is_top = jnp.equal(counts, top)
    if jnp.issubdtype(dtype_of(x), jnp.inexact):
        vals = jnp.min(jnp.where(is_top & ~jnp.isnan(x), x, const(x, np.inf)), axis=-1)
        # all NaN: the mode is NaN, counted once per entry (as JAX's and scipy's)
        all_nan = jnp.all(jnp.isnan(x), axis=-1)
        vals = jnp.where(all_nan, const(vals, np.nan), vals)
        top = jnp.where(all_nan[..., None], const(top, _shape(x)[-1]), top)
    else:
        vals = jnp.min(jnp.where(is_top, x, jnp.max(x, axis=-1, keepdims=True)), axis=-1)
    return ModeResult(jnp.reshape(vals, out_shape), jnp.reshape(top, out_shape))


def rankdata(a, method="average", *, axis=None, nan_policy="propagate"):
    """Ranks of the entries, 1 for the smallest, with ties resolved by `method`.

    Args:
        a: array-like input.
        method: 'average' (ties share their mean rank), 'min', 'max', 'dense' (consecutive
            ranks for the distinct values) or 'ordinal' (ties ranked in order of position).
        axis: rank along this axis; None (default) ranks the flattened array.
        nan_policy: only 'propagate' (a NaN makes every rank along the axis NaN).

    Returns:
        float ranks (float64 for a float64 input or under `jax_enable_x64`, float32
        otherwise), the shape of `a` (flat for `axis=None`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.stats import rankdata
        >>> rankdata(fnp.array([40, 10, 30, 10]))
        Array([4. , 1.5, 3. , 1.5], dtype=float32)
    """
    _check_nan_policy("rankdata", nan_policy)
    if method not in ("average", "min", "max", "dense", "ordinal"):
        raise ValueError(f"rankdata: unknown method {method!r}; expected 'average', 'min', "
                         "'max', 'dense' or 'ordinal'")
    x = jnp.asarray(a)
    out_dtype = np.float64 if dtype_of(x) == np.float64 else default_float()
    if axis is None:
        x, axis = jnp.ravel(x), 0
    else:
        (axis,) = canonicalize_axes(axis, len(_shape(x)))
    x = jnp.moveaxis(x, axis, -1)
    xi, xj = jnp.expand_dims(x, -1), jnp.expand_dims(x, -2)  # [..., i, j]
    less = jnp.sum(jnp.less(xj, xi), axis=-1, dtype=out_dtype)
    equal = jnp.equal(xj, xi)
    ties = jnp.sum(equal, axis=-1, dtype=out_dtype)
    if method == "min":
        ranks = jnp.add(less, const(less, 1))
    elif method == "max":
        ranks = jnp.add(less, ties)
    elif method == "average":
        ranks = jnp.add(less, jnp.multiply(jnp.add(ties, const(ties, 1)), const(ties, 0.5)))
    elif method == "ordinal":
        n = _shape(x)[-1]
        before = jnp.less(jnp.arange(n)[None, :], jnp.arange(n)[:, None])  # j < i
        ranks = jnp.add(jnp.add(less, jnp.sum(equal & before, axis=-1, dtype=out_dtype)),
                        const(less, 1))
    else:  # dense: 1 + the number of distinct values below, each counted once
        weight = jnp.reciprocal(jnp.expand_dims(ties, -2))  # 1 / count of x_j
        ranks = jnp.add(jnp.round(jnp.sum(jnp.where(jnp.less(xj, xi), weight, const(weight, 0)),
                                          axis=-1)), const(less, 1))
    has_nan = jnp.any(jnp.isnan(x), axis=-1, keepdims=True)
    ranks = jnp.where(has_nan, const(ranks, np.nan), ranks)
    return jnp.moveaxis(ranks, -1, axis)


def sem(a, axis=0, ddof=1, nan_policy="propagate", *, keepdims=False):
    """The standard error of the mean, `std(a, ddof=ddof) / sqrt(n)` along `axis`.

    Args:
        a: array-like input.
        axis: the axis (None: all entries).
        ddof: delta degrees of freedom of the standard deviation (1 by default).
        nan_policy: 'propagate' (NaNs give NaN) or 'omit' (NaNs are left out).
        keepdims: keep the reduced axis with size 1.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.stats import sem
        >>> round(float(sem(fnp.array([1.0, 2.0, 3.0, 4.0]))), 6)
        0.645497
    """
    (b,) = promote_args("sem", a=a)
    b = jnp.asarray(b)
    if nan_policy == "propagate":
        size = b.size if axis is None else _shape(b)[axis]
        return jnp.divide(jnp.std(b, axis=axis, ddof=ddof, keepdims=keepdims),
                          const(b, math.sqrt(size)))
    if nan_policy == "omit":
        count = jnp.sum(~jnp.isnan(b), axis=axis, keepdims=keepdims)
        return jnp.divide(jnp.nanstd(b, axis=axis, ddof=ddof, keepdims=keepdims),
                          jnp.sqrt(jnp.astype(count, dtype_of(b))))
    raise ValueError(f"sem: nan_policy={nan_policy!r} is not supported; use 'propagate' or "
                     "'omit'")
