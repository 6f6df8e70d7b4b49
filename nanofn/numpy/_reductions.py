"""numpy's products, cumulative sums, sorting, statistics and `einsum`, on nanofn primitives.

Everything here is written with primitives (`reduce_prod`, `cumsum`, `sort`,
`dot_general`, ...), so `grad`, `vmap` and `jit` apply. numpy's conventions hold:
`axis=None` means every axis (or the flattened array, for cumulative ops and sorting),
negative and tuple axes work, `keepdims` keeps reduced axes with size 1, and booleans and
small integers accumulate as int32 (JAX's default integer).
"""

from __future__ import annotations

import builtins
import operator
import string

import numpy as np

from nanofn.ops import _base as lax
from nanofn.ops import _complex
from nanofn.ops import _reduce
from nanofn.ops import _shape
from nanofn.numpy._dtypes import asarray_value, default_int, dtype_of, promote, promote_float
from nanofn.numpy import _lax_numpy as lnp
from nanofn.numpy._lax_numpy import (_no_out, _reduction, _shape as _shape_of, _wrap_output,
                                     canonicalize_axes, canonicalize_axis)

__all__ = [
    "prod", "cumsum", "cumprod", "nancumsum", "nancumprod", "cumulative_sum",
    "cumulative_prod", "sort", "argsort", "lexsort", "einsum", "ptp", "average",
    "count_nonzero", "median", "quantile", "percentile", "nansum", "nanprod", "nanmean",
    "nanvar", "nanstd", "nanmax", "nanmin", "cov", "corrcoef",
]


def _accumulation_dtype(a, dtype):
    """JAX: sums and products of booleans and narrower integers accumulate in the default
    integer dtype (int32; int64 with jax_enable_x64)."""
    if dtype is not None:
        return lnp.astype(a, dtype)
    d, wide = dtype_of(a), default_int()
    if d == bool or (np.issubdtype(d, np.integer) and d.itemsize < wide.itemsize):
        return lnp.astype(a, np.dtype(f"u{wide.itemsize}") if d.kind == "u" else wide)
    return a


def _nan_to(a, value):
    if not np.issubdtype(dtype_of(a), np.inexact):
        return a
    return lnp.where(lnp.isnan(a), np.asarray(value, dtype_of(a)), a)


# ------------------------------------------------------------------------ products


def prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None,
         promote_integers=True):
    """Product of the elements over `axis` (all axes by default).

    The gradient is exact also where elements are zero (it never divides by them).

    Args:
        a: array-like input.
        axis: None (every axis), an int or a tuple of ints.
        dtype: accumulate and return in this dtype.
        out: not supported (arrays are immutable).
        keepdims: keep reduced axes with size 1.
        initial: a scalar that multiplies the result.
        where: boolean mask; elements where it is False count as 1.
        promote_integers: accumulate booleans and small integers as int32 (JAX default).

    Returns:
        The product.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.prod(fnp.array([[1.0, 2.0], [3.0, 4.0]]), axis=0)
        Array([3., 8.], dtype=float32)
    """
    _no_out(out, "prod")
    a = asarray_value(a)
    if where is not None:
        a = lnp.where(where, a, np.asarray(1, dtype_of(a)))
    a = _accumulation_dtype(a, dtype) if promote_integers or dtype is not None else a
    half = dtype_of(a) == np.float16  # multiplied in float32, rounded once (JAX)
    p = _reduction(lnp.astype(a, np.float32) if half else a, axis, keepdims,
                   lambda x, axes: _reduce.reduce_prod_p.bind(x, axes=axes), "prod")
    p = lnp.astype(p, np.float16) if half else p
    return p if initial is None else lnp.multiply(p, lnp._initial(initial, p))


def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """`prod` treating NaNs as 1.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.nanprod(fnp.array([2.0, fnp.nan, 3.0])))
        6.0
    """
    return prod(_nan_to(asarray_value(a), 1), axis, dtype, out, keepdims, initial, where)


# ------------------------------------------------------------------------ cumulative


def _bools_to_int(a, dtype):
    """JAX's running sums and products keep narrow integers (an int8 cumsum wraps in int8);
    booleans count in the default integer dtype."""
    if dtype is not None:
        return lnp.astype(a, dtype)
    return lnp.astype(a, default_int()) if dtype_of(a) == bool else a


def _cumulative(prim, name, a, axis, dtype):
    a = asarray_value(a)
    if axis is None:
        a = lnp.ravel(a)
        axis = 0
    if dtype is not None and np.dtype(dtype) == bool:  # numpy: a running `or` (`and`)
        counts = _cumulative(prim, name, lnp.astype(a, bool), axis, default_int())
        return lnp.not_equal(counts, np.asarray(0, dtype_of(counts)))
    a = _bools_to_int(a, dtype)
    ndim = len(_shape_of(a))
    if ndim == 0:
        a = lnp.reshape(a, (1,))
        ndim = 1
    return prim.bind(a, axis=canonicalize_axis(axis, ndim), reverse=False)


def cumsum(a, axis=None, dtype=None, out=None):
    """Running sum along `axis` (of the flattened array if `axis` is None).

    Args:
        a: array-like input.
        axis: the axis to accumulate along, or None to flatten first.
        dtype: accumulate and return in this dtype (booleans and small ints give int32).
        out: not supported.

    Returns:
        An array of `a`'s shape (1-d if `axis` is None).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.cumsum(fnp.array([[1, 2], [3, 4]]))
        Array([ 1,  3,  6, 10], dtype=int32)
    """
    _no_out(out, "cumsum")
    return _cumulative(_reduce.cumsum_p, "cumsum", a, axis, dtype)


def cumprod(a, axis=None, dtype=None, out=None):
    """Running product along `axis` (of the flattened array if `axis` is None).

    First derivatives are exact where `a` has zeros; see `nanofn.lax.cumprod`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.cumprod(fnp.array([1.0, 2.0, 3.0]))
        Array([1., 2., 6.], dtype=float32)
    """
    _no_out(out, "cumprod")
    return _cumulative(_reduce.cumprod_p, "cumprod", a, axis, dtype)


def nancumsum(a, axis=None, dtype=None, out=None):
    """`cumsum` treating NaNs as 0.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.nancumsum(fnp.array([1.0, fnp.nan, 2.0]))
        Array([1., 1., 3.], dtype=float32)
    """
    _no_out(out, "nancumsum")
    return cumsum(_nan_to(asarray_value(a), 0), axis, dtype)


def nancumprod(a, axis=None, dtype=None, out=None):
    """`cumprod` treating NaNs as 1.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.nancumprod(fnp.array([2.0, fnp.nan, 3.0]))
        Array([2., 2., 6.], dtype=float32)
    """
    _no_out(out, "nancumprod")
    return cumprod(_nan_to(asarray_value(a), 1), axis, dtype)


def _cumulative_array_api(prim, name, x, axis, dtype, include_initial, identity, widen):
    x = asarray_value(x)
    ndim = len(_shape_of(x))
    if axis is None:
        if ndim > 1:
            raise ValueError(f"{name}: axis must be given for arrays with more than one "
                             f"dimension (got shape {tuple(_shape_of(x))})")
        axis = 0
    if ndim == 0:
        raise ValueError(f"{name}: x must have at least one dimension, got a 0-d array")
    axis = canonicalize_axis(axis, ndim)
    out = prim.bind(widen(x, dtype), axis=axis, reverse=False)
    if include_initial:
        config = [(0, 0, 0)] * ndim
        config[axis] = (1, 0, 0)
        out = _shape.pad(out, np.asarray(identity, dtype_of(out)), config)
    return out


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    """Running sum (the array API's name for `cumsum`); `include_initial` prepends a 0.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.cumulative_sum(fnp.array([1, 2, 3]), include_initial=True)
        Array([0, 1, 3, 6], dtype=int32)
    """
    return _cumulative_array_api(_reduce.cumsum_p, "cumulative_sum", x, axis, dtype,
                                 include_initial, 0, _accumulation_dtype)  # widens, as JAX


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    """Running product (the array API's name for `cumprod`); `include_initial` prepends a 1.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.cumulative_prod(fnp.array([2, 3]), include_initial=True)
        Array([1, 2, 6], dtype=int32)
    """
    return _cumulative_array_api(_reduce.cumprod_p, "cumulative_prod", x, axis, dtype,
                                 include_initial, 1, _bools_to_int)


# ------------------------------------------------------------------------ sorting


def _sort_axis(a, axis, name):
    a = asarray_value(a)
    if axis is None:
        return lnp.ravel(a), 0
    ndim = len(_shape_of(a))
    if ndim == 0:
        raise ValueError(f"{name}: cannot sort a 0-d array along axis {axis}; use axis=None")
    return a, canonicalize_axis(axis, ndim)


def _check_sort_args(name, kind, order):
    del kind  # accepted for numpy compatibility: every sort is stable
    if order is not None:
        raise NotImplementedError(f"{name}: order= (structured arrays) is not supported")


def sort(a, axis=-1, *, kind=None, order=None, stable=True, descending=False):
    """A sorted copy of `a` along `axis` (the flattened array if `axis` is None).

    NaNs go last (first when `descending`). Differentiable: the gradient follows each
    element to its sorted position.

    Args:
        a: array-like input.
        axis: the axis to sort along, or None to flatten first.
        kind: accepted for compatibility (the sort is always stable).
        order: not supported.
        stable: accepted for compatibility (the sort is always stable).
        descending: sort from largest to smallest.

    Returns:
        The sorted array.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.sort(fnp.array([3, 1, 2]), descending=True)
        Array([3, 2, 1], dtype=int32)
    """
    _check_sort_args("sort", kind, order)
    a, axis = _sort_axis(a, axis, "sort")
    if not descending and not _is_complex(a):
        return _reduce.sort_p.bind(a, dimension=axis, is_stable=True, num_keys=1)[0]
    keys = _sort_keys(a, descending)
    return _reduce.sort_p.bind(*keys, a, dimension=axis, is_stable=True,
                               num_keys=len(keys))[-1]


def _is_complex(a):
    return np.issubdtype(a.dtype, np.complexfloating)


def _sort_keys(a, descending):
    """The sort keys of `a`: complex values order by real part, then imaginary part (numpy's
    and JAX's order)."""
    parts = [_complex.real(a), _complex.imag(a)] if _is_complex(a) else [a]
    if not descending:
        return parts
    return [k for part in parts for k in _reduce.descending_key(part)]


def argsort(a, axis=-1, *, kind=None, order=None, stable=True, descending=False, dtype=None):
    """Indices that sort `a` along `axis` (stable: equal elements keep their order).

    Args:
        a: array-like input.
        axis: the axis to sort along, or None to flatten first.
        kind: accepted for compatibility (the sort is always stable).
        order: not supported.
        stable: accepted for compatibility (the sort is always stable).
        descending: largest first (equal elements still keep their order).

    Returns:
        int32 indices of `a`'s shape (1-d if `axis` is None).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.argsort(fnp.array([3.0, 1.0, 2.0]))
        Array([1, 2, 0], dtype=int32)
    """
    _check_sort_args("argsort", kind, order)
    a, axis = _sort_axis(a, axis, "argsort")
    keys = _sort_keys(a, descending)
    pos = lax.broadcasted_iota(default_int(), _shape_of(a), axis)
    out = _reduce.sort_p.bind(*keys, pos, dimension=axis, is_stable=True,
                              num_keys=len(keys))[-1]
    return out if dtype is None else lnp.astype(out, dtype)  # dtype: of the indices (JAX)


def lexsort(keys, axis=-1):
    """Indices that sort by several keys; the *last* key is the primary one (numpy's rule).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.lexsort((fnp.array([1, 0, 2]), fnp.array([0, 1, 0])))
        Array([0, 2, 1], dtype=int32)
    """
    keys = [asarray_value(k) for k in keys]
    if not keys:
        raise TypeError("lexsort: need at least one key")
    shapes = {tuple(_shape_of(k)) for k in keys}
    if len(shapes) > 1:
        raise ValueError(f"lexsort: all keys need one shape, got {sorted(shapes)}")
    shape = shapes.pop()
    if not shape:
        raise ValueError("lexsort: keys must have at least one dimension")
    axis = canonicalize_axis(axis, len(shape))
    return _reduce.sort_permutation(keys[::-1], axis)


# ------------------------------------------------------------------------ statistics


def ptp(a, axis=None, out=None, keepdims=False):
    """Range of values (max - min) along `axis`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.ptp(fnp.array([[1, 5], [3, 2]]), axis=1)
        Array([4, 1], dtype=int32)
    """
    _no_out(out, "ptp")
    return lnp.subtract(lnp.max(a, axis=axis, keepdims=keepdims),
                        lnp.min(a, axis=axis, keepdims=keepdims))


def count_nonzero(a, axis=None, keepdims=False):
    """How many elements along `axis` are not zero (int32).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.count_nonzero(fnp.array([[0, 1], [2, 3]]), axis=0)
        Array([1, 2], dtype=int32)
    """
    a = asarray_value(a)
    nonzero = lnp.not_equal(a, np.asarray(0, dtype_of(a)))
    return lnp.sum(nonzero, axis=axis, keepdims=keepdims, dtype=default_int())


def average(a, axis=None, weights=None, returned=False, keepdims=False):
    """Weighted average along `axis` (the plain mean without `weights`).

    Args:
        a: array-like input.
        axis: None, an int or a tuple of ints.
        weights: an array of `a`'s shape, or of the shape of `a`'s axes `axis` (one weight
            per position along them, e.g. 1-d for an int `axis`).
        returned: also return the sum of the weights.
        keepdims: keep reduced axes with size 1.

    Returns:
        The average, or `(average, sum_of_weights)` with `returned=True`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.average(fnp.array([1.0, 3.0]), weights=fnp.array([3.0, 1.0])))
        1.5
    """
    if weights is None:
        (a,) = promote_float(a)
        avg = lnp.mean(a, axis=axis, keepdims=keepdims)
        if not returned:
            return avg
        count = lnp._count(a, axis)
        return avg, lnp.full(_shape_of(avg), count, dtype_of(avg))
    a, w = promote_float(a, weights)
    a_shape, w_shape = tuple(_shape_of(a)), tuple(_shape_of(w))
    if w_shape != a_shape:
        if axis is None:
            raise ValueError(f"average: weights of shape {w_shape} differ from a's shape "
                             f"{a_shape}; give the axis the weights run along")
        axes = canonicalize_axes(axis, len(a_shape))
        want = tuple(a_shape[d] for d in axes)
        if w_shape != want and len(axes) == 1:
            raise ValueError(f"average: 1-d weights need the length of axis {axis} of a "
                             f"({want[0]}), got shape {w_shape}")
        if w_shape != want:
            raise ValueError(f"average: weights need a's shape {a_shape} or the shape of its "
                             f"axes {axis} ({want}), got {w_shape}")
        order = tuple(int(i) for i in np.argsort(axes))  # weights' axes in a's order
        w = lax.broadcast_in_dim(lax.transpose(w, order), a_shape, tuple(sorted(axes)))
    w_sum = lnp.sum(w, axis=axis, keepdims=keepdims)
    avg = lnp.divide(lnp.sum(lnp.multiply(a, w), axis=axis, keepdims=keepdims), w_sum)
    return (avg, w_sum) if returned else avg


_QUANTILE_METHODS = ("linear", "lower", "higher", "midpoint", "nearest", "inverted_cdf")


def _quantile_positions(q, count, method, dtype):
    """Positions in sorted columns holding `count` (>= 0, broadcastable) valid values:
    (lower index, upper index, weight of the upper value or None)."""
    last = lnp.maximum(lnp.subtract(count, np.asarray(1, dtype)), np.asarray(0, dtype))
    pos = lnp.multiply(q, last)
    lo = lnp.clip(lnp.floor(pos), 0, last)
    hi = lnp.clip(lnp.ceil(pos), 0, last)
    frac = None
    if method == "linear":
        frac = lnp.subtract(pos, lo)
    elif method == "lower":
        hi = lo
    elif method == "higher":
        lo = hi
    elif method == "nearest":
        lo = hi = lnp.clip(lnp.round(pos), 0, last)  # halves to even, as numpy
    else:  # midpoint
        frac = lnp.where(lnp.equal(lo, hi), np.asarray(0, dtype), np.asarray(0.5, dtype))
    return lnp.astype(lo, np.int32), lnp.astype(hi, np.int32), frac


def _quantile(name, a, q, axis, method, keepdims, weights, ignore_nan):
    """quantile and nanquantile: sort the reduced axes (flattened to a leading axis) and
    read each column's order statistics. With `ignore_nan` NaNs sort last and each column
    counts only its other values; otherwise a column holding NaN gives NaN."""
    from nanofn.numpy._shape_funcs import take_along_axis
    if method not in _QUANTILE_METHODS:
        raise ValueError(f"{name}: method must be one of {', '.join(_QUANTILE_METHODS)}, "
                         f"got {method!r}")
    if weights is not None and method != "inverted_cdf":
        raise NotImplementedError(f"{name}: weights= needs method='inverted_cdf', got "
                                  f"method={method!r}")
    if weights is None:
        (a,) = promote_float(a)
    else:
        a, weights = promote_float(a, weights)
    dtype = dtype_of(a)
    if dtype.kind == "c":
        raise ValueError(f"{name}: complex input is not supported (it has no order)")
    q = asarray_value(q, dtype)  # JAX's result has a's dtype, whatever q's is
    shape = tuple(_shape_of(a))
    axes = canonicalize_axes(axis, len(shape))
    kept = [d for d in range(len(shape)) if d not in axes]
    n = int(np.prod([shape[d] for d in axes], dtype=np.int64))
    rest = tuple(shape[d] for d in kept)
    q_shape = tuple(_shape_of(q))
    out_rest = tuple(1 if d in axes else shape[d] for d in range(len(shape))) if keepdims \
        else rest
    if weights is not None and tuple(_shape_of(weights)) != shape:
        red_shape = tuple(shape[d] for d in axes)
        if axis is None or tuple(_shape_of(weights)) != red_shape:
            raise ValueError(f"{name}: weights of shape {tuple(_shape_of(weights))} must have "
                             f"a's shape {shape}" + ("" if axis is None else
                                                     f" or the reduced axes' {red_shape}"))
        weights = lax.broadcast_in_dim(weights, shape, tuple(axes))
    if n == 0:
        return lnp.full(q_shape + out_rest, np.nan, dtype)

    def grouped(x):  # the reduced axes, flattened, go first
        return lax.reshape(lax.transpose(x, tuple(axes) + tuple(kept)), (n,) + rest)

    def pick(rows, idx):  # rows (n,) + rest, idx q_shape + rest -> q_shape + rest
        rows = lax.reshape(rows, (1,) * len(q_shape) + (n,) + rest)
        idx = lax.reshape(lnp.broadcast_to(idx, q_shape + rest), q_shape + (1,) + rest)
        return lax.reshape(take_along_axis(rows, idx, axis=len(q_shape)), q_shape + rest)

    x = grouped(a)
    nan = lnp.isnan(x)
    operands = [x] if weights is None else [x, grouped(weights)]
    ordered = _reduce.sort_p.bind(*operands, dimension=0, is_stable=True, num_keys=1)
    qb = lax.reshape(q, q_shape + (1,) * len(rest))
    if ignore_nan:
        count = lnp.sum(lnp.logical_not(nan), axis=0, dtype=dtype)
    else:
        count = np.asarray(n, dtype)
    if method == "inverted_cdf":  # the first value whose cumulative weight reaches q * total
        w = lnp.ones_like(x) if weights is None else ordered[1]
        bad_w = lnp.logical_or(lnp.less(w, 0), lnp.isnan(w))
        w = lnp.where(lnp.logical_or(bad_w, lnp.isnan(ordered[0])), np.asarray(0, dtype), w)
        cum = cumsum(w, axis=0)
        target = lnp.multiply(qb, cum[-1])
        below = lnp.less(cum, lax.reshape(target, q_shape + (1,) + rest))
        idx = lnp.sum(below, axis=len(q_shape), dtype=np.int32)
        last = lnp.maximum(lnp.subtract(lnp.astype(count, np.int32), 1), 0)
        result = pick(ordered[0], lnp.clip(idx, 0, last))
        bad = lnp.any(bad_w, axis=0)
    else:
        lo, hi, frac = _quantile_positions(qb, count, method, dtype)
        result = pick(ordered[0], lo)
        if frac is not None:
            v_hi = pick(ordered[0], hi)
            result = lnp.add(result, lnp.multiply(lnp.subtract(v_hi, result), frac))
        bad = np.False_
    empty = lnp.equal(count, 0) if ignore_nan else lnp.any(nan, axis=0)
    result = lnp.where(lnp.logical_or(bad, empty), np.asarray(np.nan, dtype), result)
    return lax.reshape(lnp.astype(result, dtype), q_shape + out_rest)


def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
             keepdims=False, *, weights=None):
    """The `q`-th quantiles of `a` along `axis` (`q` in [0, 1]).

    Sorts along the reduced axes and interpolates between neighbours (numpy's `method`s
    "linear" (default), "lower", "higher", "nearest", "midpoint"), or takes the first value
    whose cumulative weight reaches `q` times the total ("inverted_cdf", the only method
    that accepts `weights`, as in JAX). A slice holding NaN gives NaN. Differentiable with
    respect to `a` and (for "linear" and "midpoint") `q`.

    Args:
        a: array-like input (integers become float32).
        q: a scalar or array of quantiles; its shape leads the result's.
        axis: None, an int or a tuple of ints.
        out: not supported.
        overwrite_input: ignored (arrays are immutable).
        method: the interpolation method.
        keepdims: keep reduced axes with size 1.
        weights: with method="inverted_cdf", non-negative weights of `a`'s shape (or of
            the reduced axes' shape); a negative or NaN weight gives NaN.

    Returns:
        An array of shape `q.shape + reduced shape`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.quantile(fnp.array([1.0, 2.0, 3.0, 4.0]), 0.5)
        Array(2.5, dtype=float32)
        >>> fnp.quantile(fnp.array([1.0, 2.0, 3.0]), 0.5, method="inverted_cdf",
        ...              weights=fnp.array([1.0, 1.0, 3.0]))
        Array(3., dtype=float32)
    """
    del overwrite_input  # unused
    _no_out(out, "quantile")
    return _quantile("quantile", a, q, axis, method, keepdims, weights, ignore_nan=False)


def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
               keepdims=False, *, weights=None):
    """The `q`-th percentiles of `a` along `axis` (`q` in [0, 100]); see `quantile`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.percentile(fnp.array([1.0, 2.0, 3.0, 4.0]), 25.0)
        Array(1.75, dtype=float32)
    """
    (a,) = promote_float(a)
    q = asarray_value(q, dtype_of(a))  # q takes a's precision, as in quantile
    return quantile(a, lnp.divide(q, np.asarray(100, dtype_of(q))), axis, out, overwrite_input,
                    method, keepdims, weights=weights)


def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """Median along `axis` (the mean of the two middle values for an even count).

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.median(fnp.array([3.0, 1.0, 2.0, 10.0])))
        2.5
    """
    return quantile(a, 0.5, axis, out, overwrite_input, "linear", keepdims)


# ------------------------------------------------------------------------ NaN-ignoring


def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """`sum` treating NaNs as 0.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.nansum(fnp.array([1.0, fnp.nan, 2.0])))
        3.0
    """
    return lnp.sum(_nan_to(asarray_value(a), 0), axis=axis, dtype=dtype, out=out,
                   keepdims=keepdims, initial=initial, where=where)


def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, where=None):
    """Mean of the non-NaN elements along `axis` (NaN where there are none).

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.nanmean(fnp.array([1.0, fnp.nan, 3.0])))
        2.0
    """
    _no_out(out, "nanmean")
    (a,) = promote_float(a)
    valid = lnp.logical_not(lnp.isnan(a))  # found before a dtype= cast, as JAX
    if dtype is not None:
        a = lnp.astype(a, dtype)
    if where is not None:
        valid = lnp.logical_and(valid, where)
    total = lnp.sum(lnp.where(valid, a, np.asarray(0, dtype_of(a))), axis=axis,
                    keepdims=keepdims)
    count = lnp.sum(valid, axis=axis, keepdims=keepdims, dtype=dtype_of(a))
    out = lnp.divide(total, count)
    # an integer dtype= gives an integer mean (truncated), as `mean` (numpy and JAX)
    return lnp.astype(out, dtype) if dtype is not None and dtype_of(a).kind in "biu" else out


def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, where=None, *,
           mean=None):
    """Variance of the non-NaN elements along `axis`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.nanvar(fnp.array([1.0, fnp.nan, 3.0])))
        1.0
    """
    _no_out(out, "nanvar")
    (a,) = promote_float(a) if dtype is None else [lnp.astype(a, dtype)]
    valid = lnp.logical_not(lnp.isnan(a))
    if where is not None:
        valid = lnp.logical_and(valid, where)
    zero = np.asarray(0, dtype_of(a))
    m = nanmean(a, axis=axis, keepdims=True, where=where) if mean is None else mean
    # NaNs are replaced before squaring, so none reaches the gradient (0 * nan = nan)
    centered = lnp.subtract(lnp.where(valid, a, zero), m)
    sq = lnp._abs_squared(centered)  # real, for complex `a` too
    sq = lnp.where(valid, sq, np.asarray(0, dtype_of(sq)))
    count = lnp.sum(valid, axis=axis, keepdims=keepdims, dtype=dtype_of(sq))
    return lnp._divide_dof(lnp.sum(sq, axis=axis, keepdims=keepdims), lnp.subtract(count, ddof))


def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, where=None, *,
           mean=None):
    """Standard deviation of the non-NaN elements along `axis`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.nanstd(fnp.array([1.0, fnp.nan, 3.0])))
        1.0
    """
    return lnp.sqrt(nanvar(a, axis, dtype, out, ddof, keepdims, where, mean=mean))


def _nan_extremum(name, fill, reduce):
    def fn(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        _no_out(out, name)
        a = asarray_value(a)
        if not np.issubdtype(dtype_of(a), np.inexact):
            return reduce(a, axis=axis, keepdims=keepdims, initial=initial, where=where)
        nan = lnp.isnan(a)
        r = reduce(lnp.where(nan, np.asarray(fill, dtype_of(a)), a), axis=axis,
                   keepdims=keepdims, initial=initial, where=where)
        if initial is not None:  # an all-NaN slice gives `initial`, as numpy and JAX
            return r
        all_nan = lnp.all(nan, axis=axis, keepdims=keepdims)
        return lnp.where(all_nan, np.asarray(np.nan, dtype_of(a)), r)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"`{name[3:]}` ignoring NaNs (NaN where a slice is all NaN).\n\n"
                  f"    Example:\n        >>> import nanofn.numpy as fnp\n"
                  f"        >>> float(fnp.{name}(fnp.array([1.0, fnp.nan, 3.0])))\n"
                  f"        {3.0 if name == 'nanmax' else 1.0}\n")
    return fn


nanmax = _nan_extremum("nanmax", -np.inf, lnp.max)
nanmin = _nan_extremum("nanmin", np.inf, lnp.min)


def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None,
        dtype=None):
    """Covariance matrix of the variables in `m` (rows are variables when `rowvar`).

    Args:
        m: 1-d or 2-d array of observations.
        y: more variables, stacked after those of `m`.
        rowvar: rows are variables (True) or columns are (False).
        bias: normalise by N (True) instead of N - 1.
        ddof: overrides `bias`: normalise by N - ddof.
        fweights: integer frequency weights, one per observation.
        aweights: observation weights, one per observation.
        dtype: compute in this dtype.

    Returns:
        The covariance matrix (a 0-d array for a single variable).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.cov(fnp.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]))
        Array([[ 1., -1.],
               [-1.,  1.]], dtype=float32)
    """
    if dtype is not None:
        m = lnp.astype(m, dtype)
        y = None if y is None else lnp.astype(y, dtype)
    (m,) = promote_float(m)
    if len(_shape_of(m)) > 2:
        raise ValueError(f"cov: m must be 1-d or 2-d, got shape {tuple(_shape_of(m))}")
    x = lnp.reshape(m, (1, -1)) if len(_shape_of(m)) < 2 else m
    if not rowvar and len(_shape_of(m)) == 2:
        x = lnp.transpose(x)
    if y is not None:
        (y,) = promote_float(y)
        y2 = lnp.reshape(y, (1, -1)) if len(_shape_of(y)) < 2 else y
        if not rowvar and len(_shape_of(y)) == 2:
            y2 = lnp.transpose(y2)
        x, y2 = promote(x, y2)
        from nanofn.numpy import concatenate
        x = concatenate([x, y2], axis=0)
    n_obs = _shape_of(x)[1]
    dtype = dtype_of(x)
    w = None
    if fweights is not None:
        w = lnp.astype(asarray_value(fweights), dtype)
    if aweights is not None:
        aw = lnp.astype(asarray_value(aweights), dtype)
        w = aw if w is None else lnp.multiply(w, aw)
    if ddof is None:
        ddof = 0 if bias else 1
    from nanofn.numpy.linalg import _H  # the conjugate transpose (linalg loads after us)
    if w is None:
        mean = lnp.mean(x, axis=1, keepdims=True)
        norm = np.asarray(n_obs - ddof, dtype)
        xc = lnp.subtract(x, mean)
        c = lnp.divide(lnp.matmul(xc, _H(xc)), norm)
    else:
        if tuple(_shape_of(w)) != (n_obs,):
            raise ValueError(f"cov: weights need shape ({n_obs},), got {tuple(_shape_of(w))}")
        w_sum = lnp.sum(w)
        mean = lnp.divide(lnp.sum(lnp.multiply(x, w), axis=1, keepdims=True), w_sum)
        if ddof == 0:
            norm = w_sum
        elif aweights is None:
            norm = lnp.subtract(w_sum, ddof)
        else:
            aw = lnp.astype(asarray_value(aweights), dtype)
            norm = lnp.subtract(w_sum, lnp.divide(lnp.multiply(ddof, lnp.sum(lnp.multiply(w, aw))),
                                                  w_sum))
        xc = lnp.subtract(x, mean)
        c = lnp.divide(lnp.matmul(lnp.multiply(xc, w), _H(xc)), norm)
    # complex variables: c[i, j] = sum_k x[i, k] conj(x[j, k]), numpy's (and JAX's) rule
    return lnp.squeeze(c) if _shape_of(c) == (1, 1) else c


def corrcoef(x, y=None, rowvar=True, dtype=None):
    """Pearson correlation coefficients (`cov` normalised by the standard deviations).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.corrcoef(fnp.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.5]])).shape
        (2, 2)
    """
    c = cov(x, y, rowvar, dtype=dtype)
    if len(_shape_of(c)) == 0:
        return lnp.divide(c, c)
    complex_ = np.issubdtype(dtype_of(c), np.complexfloating)
    d = _diagonal(c)
    d = lnp.sqrt(_complex.real(d) if complex_ else d)  # variances are real in any case
    c = lnp.divide(lnp.divide(c, lax.reshape(d, (_shape_of(d)[0], 1))), d)
    if not complex_:
        return lnp.clip(c, -1, 1)
    # rounding can push either part past 1: each is clipped, as numpy does
    return _complex.complex(lnp.clip(_complex.real(c), -1, 1), lnp.clip(_complex.imag(c), -1, 1))


def _diagonal(c):
    """The main diagonal of a square matrix (an einsum, so any transform applies)."""
    return einsum("ii->i", c)


# ------------------------------------------------------------------------ einsum

_LETTERS = string.ascii_letters


def _parse_einsum(subscripts, operands):
    """Label lists for each operand and for the output. Labels are letters; the axes an
    ellipsis stands for get labels (0, k), aligned on the right as numpy broadcasts them."""
    spec = subscripts.replace(" ", "")
    if "->" in spec:
        lhs, rhs = spec.split("->")
        if "->" in rhs:
            raise ValueError(f"einsum: subscripts {subscripts!r} have more than one '->'")
    else:
        lhs, rhs = spec, None
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s), "
                         f"but {len(operands)} were given")
    ell_rank = 0
    parsed = []
    for i, (term, op) in enumerate(zip(terms, operands)):
        ndim = len(_shape_of(op))
        if term.count("...") > 1 or "." in term.replace("...", ""):
            raise ValueError(f"einsum: bad ellipsis in subscripts {term!r}")
        named = term.replace("...", "")
        bad = [c for c in named if c not in _LETTERS]
        if bad:
            raise ValueError(f"einsum: subscripts may only use letters, got {bad[0]!r} in "
                             f"{subscripts!r}")
        if "..." in term:
            n_ell = ndim - len(named)
            if n_ell < 0:
                raise ValueError(f"einsum: operand {i} has {ndim} dimensions, fewer than the "
                                 f"{len(named)} labels in {term!r}")
            ell_rank = builtins.max(ell_rank, n_ell)
            head, tail = term.split("...")
            parsed.append((list(head), n_ell, list(tail)))
        else:
            if len(named) != ndim:
                raise ValueError(f"einsum: operand {i} has shape {tuple(_shape_of(op))} "
                                 f"({ndim} dimensions) but subscripts {term!r} name {len(named)}")
            parsed.append((list(named), 0, []))
    ell_labels = [(0, k) for k in range(ell_rank)]
    labels = [head + ell_labels[ell_rank - n_ell:] + tail for head, n_ell, tail in parsed]
    if rhs is None:
        counts: dict = {}
        for ls in labels:
            for lab in ls:
                if isinstance(lab, str):
                    counts[lab] = counts.get(lab, 0) + 1
        out = ell_labels + sorted(c for c, k in counts.items() if k == 1)
    else:
        if rhs.count("...") > 1 or "." in rhs.replace("...", ""):
            raise ValueError(f"einsum: bad ellipsis in the output subscripts {rhs!r}")
        # an output without '...' sums over the ellipsis dimensions, as in JAX (numpy raises)
        head, _, tail = rhs.partition("...")
        out = list(head) + (ell_labels if "..." in rhs else []) + list(tail)
        named_in = {lab for ls in labels for lab in ls}
        for c in out:
            if isinstance(c, str) and c not in _LETTERS:
                raise ValueError(f"einsum: output subscripts may only use letters, got {c!r}")
            if c not in named_in:
                raise ValueError(f"einsum: output label {c!r} of {subscripts!r} does not "
                                 "appear in any input")
        if len(set(out)) != len(out):
            raise ValueError(f"einsum: output subscripts {rhs!r} repeat a label")
    return labels, out


def _interleaved_to_subscripts(args):
    """einsum(op0, sublist0, op1, sublist1, ..., [sublist_out]) -> subscripts string."""
    args = list(args)
    out_list = args.pop() if len(args) % 2 == 1 else None
    operands, terms = args[0::2], args[1::2]

    def term(sub):
        s = ""
        for v in sub:
            if v is Ellipsis:
                s += "..."
            else:
                v = operator.index(v)
                if not 0 <= v < len(_LETTERS):
                    raise ValueError(f"einsum: sublist labels must be in [0, 52), got {v}")
                s += _LETTERS[v]
        return s

    spec = ",".join(term(t) for t in terms)
    if out_list is not None:
        spec += "->" + term(out_list)
    return spec, operands


def _label_sizes(labels, operands):
    sizes = {}
    for ls, op in zip(labels, operands):
        for lab, d in zip(ls, _shape_of(op)):
            prev = sizes.get(lab, 1)
            if prev != d and prev != 1 and d != 1:
                name = "..." if isinstance(lab, tuple) else repr(lab)
                raise ValueError(f"einsum: label {name} has sizes {prev} and {d} in different "
                                 "operands (sizes must match, or be 1 to broadcast)")
            if d != 1:
                sizes[lab] = d
            else:
                sizes.setdefault(lab, 1)
    return sizes


def _take_diagonals(x, ls):
    """Merge repeated labels of one operand: x[..., i, ..., i, ...] -> x[..., i, ...]."""
    ls = list(ls)
    while True:
        seen = {}
        dup = None
        for pos, lab in enumerate(ls):
            if lab in seen:
                dup = (seen[lab], pos)
                break
            seen[lab] = pos
        if dup is None:
            return x, ls
        i, j = dup
        shape = list(_shape_of(x))
        if shape[i] != shape[j]:
            raise ValueError(f"einsum: repeated label {ls[i]!r} has sizes {shape[i]} and "
                             f"{shape[j]} in one operand")
        mask_shape = [1] * len(shape)
        mask_shape[i] = mask_shape[j] = shape[i]
        eye = np.eye(shape[i], dtype=bool).reshape(mask_shape)
        # select, not multiply, so inf/NaN off the diagonal never leak into it
        x = lax.select_n_p.bind(eye, np.asarray(0, dtype_of(x)), x)
        x = lax.reduce_sum_p.bind(x, axes=(j,))
        del ls[j]


def _prepare(x, ls, sizes, keep):
    """Diagonals, broadcast (size-1) axes dropped, and labels nobody else needs summed."""
    x, ls = _take_diagonals(x, ls)
    shape = _shape_of(x)
    drop = [p for p, lab in enumerate(ls) if shape[p] == 1 and sizes[lab] != 1]
    if drop:
        x = lax.reshape(x, tuple(d for p, d in enumerate(shape) if p not in drop))
        ls = [lab for p, lab in enumerate(ls) if p not in drop]
    return _sum_unneeded(x, ls, keep)


def _sum_unneeded(x, ls, keep):
    axes = tuple(p for p, lab in enumerate(ls) if lab not in keep)
    if axes:
        x = lax.reduce_sum_p.bind(x, axes=axes)
        ls = [lab for lab in ls if lab in keep]
    return x, ls


def _contract(x, lx, y, ly, keep):
    """Contract two operands with one dot_general; labels in `keep` survive."""
    x, lx = _sum_unneeded(x, lx, keep | set(ly))
    y, ly = _sum_unneeded(y, ly, keep | set(lx))
    common = [lab for lab in lx if lab in ly]
    batch = [lab for lab in common if lab in keep]
    contract = [lab for lab in common if lab not in keep]
    dn = ((tuple(lx.index(lab) for lab in contract), tuple(ly.index(lab) for lab in contract)),
          (tuple(lx.index(lab) for lab in batch), tuple(ly.index(lab) for lab in batch)))
    out = lax.dot_general_p.bind(x, y, dimension_numbers=dn, preferred_element_type=None)
    labels = batch + [lab for lab in lx if lab not in common] + \
        [lab for lab in ly if lab not in common]
    return out, labels


def _result_size(lx, ly, keep, sizes):
    labels = {lab for lab in lx + ly if lab in keep}
    return int(np.prod([sizes[lab] for lab in labels], dtype=np.float64))


def einsum(subscripts, /, *operands, out=None, optimize="auto", precision=None,
           preferred_element_type=None):
    """Einstein summation, like `numpy.einsum`.

    Supports any number of operands, implicit (`"ij,jk"`) and explicit (`"ij,jk->ik"`)
    outputs, `...` for broadcast axes, repeated labels (`"ii->i"` diagonal, `"ii"` trace),
    labels summed out of one operand, outer products, size-1 broadcasting, and numpy's
    interleaved form `einsum(a, [0, 1], b, [1, 2], [0, 2])`. Operands are contracted two at
    a time with `dot_general`, choosing at each step the pair with the smallest result.

    Args:
        subscripts: the labels, e.g. `"bij,bjk->bik"`.
        *operands: the arrays.
        out: not supported.
        optimize: accepted for compatibility (a greedy order is always used).
        precision: accepted for compatibility.
        preferred_element_type: compute and return in this dtype.

    Returns:
        The contracted array.

    Example:
        >>> import nanofn.numpy as fnp
        >>> a, b = fnp.ones((2, 3)), fnp.ones((3, 4))
        >>> fnp.einsum("ij,jk->ik", a, b).shape
        (2, 4)
        >>> float(fnp.einsum("ii", fnp.eye(3)))
        3.0
    """
    del optimize  # unused: a greedy order is always used
    lax.canonicalize_precision(precision, "einsum")  # checked; CPU has one precision
    _no_out(out, "einsum")
    if not isinstance(subscripts, str):
        subscripts, operands = _interleaved_to_subscripts((subscripts,) + operands)
    if not operands:
        raise ValueError("einsum: needs at least one operand")
    operands = promote(*operands)
    if preferred_element_type is not None:
        operands = [lnp.astype(op, preferred_element_type) for op in operands]
    labels, out_labels = _parse_einsum(subscripts, operands)
    sizes = _label_sizes(labels, operands)
    out_set = set(out_labels)

    def needed_except(skip):
        keep = set(out_set)
        for k, ls in enumerate(labels):
            if k not in skip:
                keep.update(ls)
        return keep

    ops = list(operands)
    for k in range(len(ops)):
        ops[k], labels[k] = _prepare(ops[k], labels[k], sizes, needed_except({k}))
    while len(ops) > 1:
        best = None
        for i in range(len(ops)):
            for j in range(i + 1, len(ops)):
                cost = _result_size(labels[i], labels[j], needed_except({i, j}), sizes)
                if best is None or cost < best[0]:
                    best = (cost, i, j)
        _, i, j = best
        merged, merged_labels = _contract(ops[i], labels[i], ops[j], labels[j],
                                          needed_except({i, j}))
        ops = [op for k, op in enumerate(ops) if k not in (i, j)] + [merged]
        labels = [ls for k, ls in enumerate(labels) if k not in (i, j)] + [merged_labels]
    (x,), (ls,) = ops, labels
    x, ls = _sum_unneeded(x, ls, out_set)
    missing = [lab for lab in out_labels if lab not in ls]
    if missing:  # output labels that only ever had size 1 in the operands that had them
        target = [sizes[lab] for lab in ls] + [sizes[lab] for lab in missing]
        x = lax.broadcast_in_dim(x, target, tuple(range(len(ls))))
        ls = ls + missing
    return _wrap_output(lax.transpose(x, tuple(ls.index(lab) for lab in out_labels)))
