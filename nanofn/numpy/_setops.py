"""Sets, counting and searching: `unique` and the set operations, `isin`, `searchsorted`,
`digitize`, `bincount`, the `histogram` family and the "where is it true" helpers
(`argwhere`, `flatnonzero`, `extract`, `compress`).

Their outputs' sizes depend on the values, so, as in JAX, each takes `size=` (and
`fill_value=`): with it the function traces (jit, vmap, grad); without it the values must
be concrete and the size is read from them. Everything is written with `nanofn.numpy`
functions; selecting the true entries of a mask in order is one stable `argsort`
(`_compact`), so there is no scatter and no data-dependent shape inside a trace.
"""

from __future__ import annotations

import builtins
import operator
from typing import NamedTuple

import numpy as np

from nanofn import _core as core
from nanofn._core import Array, Tracer
import nanofn.numpy as fnp  # the finished namespace, used at call time
from nanofn.numpy import _reductions as red
from nanofn.numpy import _shape_funcs as sf
from nanofn.numpy._dtypes import asarray_value, default_int, dtype_of, promote, promote_float
from nanofn.numpy._lax_numpy import _ndim, _no_out, _shape, _wrap_output, canonicalize_axis

__all__ = [
    "unique", "unique_all", "unique_counts", "unique_inverse", "unique_values", "union1d",
    "intersect1d", "setdiff1d", "setxor1d", "isin", "searchsorted", "digitize", "bincount",
    "histogram", "histogram_bin_edges", "histogram2d", "histogramdd", "argwhere",
    "flatnonzero", "extract", "compress",
]


def _concrete_count(mask, fname):
    """The number of true entries of `mask`, which must be concrete (no `size=` given)."""
    try:
        v = core._lowest(mask) if isinstance(mask, Tracer) else core.to_numpy(mask)
    except core.ConcretizationError:
        raise core.ConcretizationError(
            f"{fname}: the size of the result depends on the values, which are not known "
            f"while tracing (jit); pass size=... (and optionally fill_value=...)") from None
    return int(np.count_nonzero(v))


def _check_size(size, fname):
    if size is None:
        return None
    try:
        size = operator.index(size)
    except TypeError:
        raise TypeError(f"{fname}: size must be an int, got {size!r}") from None
    if size < 0:
        raise ValueError(f"{fname}: size must be non-negative, got {size}")
    return size


def _compact(mask, size, fname, given=None):
    """Indices of `mask`'s (1-d) true entries in order, padded to `size`, and a validity mask.

    A stable argsort of `where(mask, 0, 1)` puts the true positions first, in order. Padded
    slots hold index 0 (callers replace them with their fill value). Without `size`, the
    count is read from `given` (the caller's own mask, which may be concrete when `mask`,
    computed from it, is traced) or from `mask`.
    """
    n = _shape(mask)[0]
    if size is None:
        size = _concrete_count(mask if given is None else given, fname)
    order = red.argsort(fnp.where(mask, 0, 1).astype(default_int())) if n else fnp.zeros(0, default_int())
    if size > n:
        order = fnp.concatenate([order, fnp.zeros(size - n, default_int())]) if n else \
            fnp.zeros(size, default_int())
    idx = order[:size]
    valid = fnp.arange(size) < fnp.sum(mask)
    return fnp.where(valid, idx, 0), valid


def _fill(values, valid, fill_value, default):
    fill = default if fill_value is None else fill_value
    fill = asarray_value(fill, dtype_of(values))
    return _wrap_output(fnp.where(valid, values, fill))


# ------------------------------------------------------------------------ where is it true


def flatnonzero(a, *, size=None, fill_value=None):
    """Indices of the non-zero elements of the flattened `a`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.flatnonzero(fnp.array([0, 3, 0, 5]))
        Array([1, 3], dtype=int32)
        >>> fnp.flatnonzero(fnp.array([0, 3, 0, 5]), size=3, fill_value=-1)
        Array([ 1,  3, -1], dtype=int32)
    """
    size = _check_size(size, "flatnonzero")
    mask = fnp.ravel(asarray_value(a)) != 0
    idx, valid = _compact(mask, size, "flatnonzero")
    return _fill(idx.astype(default_int()), valid, fill_value, 0)


def argwhere(a, *, size=None, fill_value=None):
    """Indices of the non-zero elements, one row per element (shape `(count, a.ndim)`);
    with `size`, missing rows hold `fill_value` (a scalar or one value per dimension).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.argwhere(fnp.array([[0, 1], [1, 1]]), size=4, fill_value=9)
        Array([[0, 1],
               [1, 0],
               [1, 1],
               [9, 9]], dtype=int32)
    """
    a = asarray_value(a)
    if _ndim(a) == 0:  # numpy: shape (1, 0) if a is non-zero, else (0, 0)
        flat = flatnonzero(fnp.reshape(a, (1,)), size=size)
        return fnp.zeros((_shape(flat)[0], 0), default_int())
    flat = flatnonzero(a, size=size, fill_value=-1)
    valid = flat >= 0
    fills = [fill_value] * _ndim(a)  # one fill value, or one per dimension
    if fill_value is not None and _ndim(asarray_value(fill_value)) == 1:
        fills = [asarray_value(fill_value)[k] for k in range(_ndim(a))]
    rows = [_fill(i, valid, f, 0)
            for i, f in zip(unravel_index(fnp.maximum(flat, 0), _shape(a)), fills)]
    return fnp.stack(rows, axis=-1) if _ndim(a) else fnp.zeros((_shape(flat)[0], 0), default_int())


def unravel_index(indices, shape):
    """Convert flat indices into a tuple of index arrays for an array of `shape`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.unravel_index(fnp.array([5, 1]), (2, 3))
        (Array([1, 0], dtype=int32), Array([2, 1], dtype=int32))
    """
    shape = tuple(operator.index(d) for d in (shape if np.ndim(shape) else (shape,)))
    idx = asarray_value(indices)
    if not np.issubdtype(dtype_of(idx), np.integer):
        raise TypeError(f"unravel_index: indices must be integers, got {dtype_of(idx)}")
    if dtype_of(idx).kind == "u" or dtype_of(idx).itemsize < 4:
        idx = asarray_value(idx, np.int64 if dtype_of(idx).itemsize >= 4 else np.int32)
    total = int(np.prod(shape, dtype=np.int64))
    idx = fnp.clip(idx, -total, total - 1) % builtins.max(total, 1)  # JAX clips out of bounds
    out = []
    for d in reversed(shape):
        out.append(_wrap_output(idx % d if d else idx * 0))
        idx = idx // d if d else idx
    return tuple(reversed(out))


def extract(condition, arr, *, size=None, fill_value=0):
    """The elements of `arr` (flattened) where `condition` is true.

    Example:
        >>> import nanofn.numpy as fnp
        >>> x = fnp.arange(5.0)
        >>> fnp.extract(x > 2, x)
        Array([3., 4.], dtype=float32)
    """
    size = _check_size(size, "extract")
    mask = fnp.ravel(asarray_value(condition, bool))
    arr = fnp.ravel(asarray_value(arr))
    if _shape(mask) != _shape(arr):
        raise ValueError(f"extract: condition has {_shape(mask)[0]} elements but arr has "
                         f"{_shape(arr)[0]}")
    idx, valid = _compact(mask, size, "extract", given=condition)
    vals = arr[idx] if _shape(arr)[0] else fnp.zeros(_shape(idx), dtype_of(arr))
    return _fill(vals, valid, fill_value, 0)


def compress(condition, a, axis=None, *, size=None, fill_value=0, out=None):
    """The slices of `a` along `axis` where the 1-d `condition` is true.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.compress(fnp.array([True, False, True]), fnp.arange(6).reshape(3, 2), axis=0)
        Array([[0, 1],
               [4, 5]], dtype=int32)
    """
    _no_out(out, "compress")
    size = _check_size(size, "compress")
    cond = fnp.ravel(asarray_value(condition, bool))
    a = asarray_value(a)
    if axis is None:
        a, axis = fnp.ravel(a), 0
    axis = canonicalize_axis(axis, _ndim(a))
    n = _shape(a)[axis]
    if _shape(cond)[0] > n:
        raise ValueError(f"compress: condition has {_shape(cond)[0]} entries but axis {axis} "
                         f"of a has size {n}")
    cond = fnp.concatenate([cond, fnp.zeros(n - _shape(cond)[0], bool)])
    idx, valid = _compact(cond, size, "compress", given=condition)
    taken = sf.take(a, idx, axis=axis) if n else fnp.zeros(
        _shape(a)[:axis] + _shape(idx) + _shape(a)[axis + 1:], dtype_of(a))
    vshape = [1] * _ndim(a)
    vshape[axis] = _shape(idx)[0]
    return _fill(taken, fnp.reshape(valid, vshape), fill_value, 0)


# ------------------------------------------------------------------------ unique and sets


class _UniqueAllResult(NamedTuple):
    values: Array
    indices: Array
    inverse_indices: Array
    counts: Array


class _UniqueCountsResult(NamedTuple):
    values: Array
    counts: Array


class _UniqueInverseResult(NamedTuple):
    values: Array
    inverse_indices: Array


def _first_of_runs(rows, equal_nan):
    """True at the first element (1-d) or row (2-d) of each run of equal ones in the sorted
    `rows`."""
    n = _shape(rows)[0]
    if n == 0:
        return fnp.zeros(0, bool)
    a, b = rows[1:], rows[:-1]
    differ = a != b
    if equal_nan and dtype_of(rows).kind in "fc":
        differ = differ & ~(fnp.isnan(a) & fnp.isnan(b))
    if _ndim(rows) == 2:
        differ = fnp.any(differ, axis=1)
    return fnp.concatenate([fnp.ones(1, bool), differ])


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *,
           equal_nan=True, size=None, fill_value=None, sorted=True):
    """The sorted unique elements of `ar` (numpy.unique, with JAX's `size=`/`fill_value=`).

    Args:
        ar: array-like input, flattened unless `axis` is given.
        return_index: also return the index of each value's first occurrence.
        return_inverse: also return, for each input element, the index of its value
            in the result (`ar`'s shape without `axis`, 1-d with it).
        return_counts: also return how often each value occurs.
        axis: find the unique slices along this axis (sorted lexicographically).
        equal_nan: treat NaNs as one value.
        size: the length of the result, so it can be traced; missing entries are
            `fill_value` (default: the smallest element), index of the smallest element
            and count 0.
        fill_value: see `size`.
        sorted: accepted for compatibility (the result is always sorted).

    Returns:
        The unique values, followed by the requested extra arrays.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.unique(fnp.array([3, 1, 1, 2]))
        Array([1, 2, 3], dtype=int32)
        >>> fnp.unique(fnp.array([3, 1, 1]), size=4, fill_value=0)
        Array([1, 3, 0, 0], dtype=int32)
        >>> fnp.unique(fnp.array([[1, 2], [0, 5], [1, 2]]), axis=0)
        Array([[0, 5],
               [1, 2]], dtype=int32)
    """
    del sorted  # unused: always sorted
    size = _check_size(size, "unique")
    ar = asarray_value(ar)
    aux = fnp.ravel(ar) if axis is None else \
        fnp.moveaxis(ar, canonicalize_axis(axis, _ndim(ar)), 0)
    n, rest = _shape(aux)[0], tuple(_shape(aux)[1:])
    if n == 0 and size and fill_value is None:
        raise ValueError("unique: an empty input with size > 0 needs a fill_value")
    rows = fnp.reshape(aux, (n, -1)) if n else fnp.zeros((0, 1), dtype_of(aux))
    if _shape(rows)[1] == 0:  # empty slices: all equal
        perm = fnp.zeros(n, default_int())
    elif _shape(rows)[1] == 1:
        perm = red.argsort(rows[:, 0])
    else:  # column 0 is the primary key
        perm = red.lexsort([rows[:, j] for j in range(_shape(rows)[1])][::-1])
    first = _first_of_runs(rows[perm] if n else rows, equal_nan)
    idx, valid = _compact(first, size, "unique")
    m = _shape(idx)[0]
    xs = aux[perm] if n else aux
    values = xs[idx] if n else fnp.zeros((m,) + rest, dtype_of(aux))
    valid_b = fnp.reshape(valid, (m,) + (1,) * len(rest))
    out = [_fill(values, valid_b, fill_value, xs[0] if n else 0)]
    if axis is not None:
        out[0] = fnp.moveaxis(out[0], 0, canonicalize_axis(axis, _ndim(ar)))
    rank = fnp.cumsum(first.astype(default_int())) - 1 if n else fnp.zeros(0, default_int())
    if return_index:
        first_idx = perm[idx] if n else fnp.zeros(m, default_int())
        out.append(_wrap_output(fnp.where(valid, first_idx, first_idx[0] if m else 0)))
    if return_inverse:
        inv = rank[red.argsort(perm)] if n else rank
        out.append(_wrap_output(fnp.reshape(inv, _shape(ar)) if axis is None else inv))
    if return_counts:  # how many sorted rows fall in each of the first `m` runs
        hit = fnp.expand_dims(rank, 0) == fnp.expand_dims(fnp.arange(m), 1)
        out.append(_wrap_output(fnp.sum(hit, axis=1).astype(default_int())))
    return out[0] if len(out) == 1 else tuple(out)


def unique_values(x, /, *, size=None, fill_value=None):
    """The sorted unique values of `x` (array API: each NaN is a value of its own, as in
    the other `unique_*` functions).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.unique_values(fnp.array([2, 1, 2]))
        Array([1, 2], dtype=int32)
    """
    return unique(x, size=size, fill_value=fill_value, equal_nan=False)


def unique_counts(x, /, *, size=None, fill_value=None):
    """The unique values of `x` and how often each occurs (a named pair `values, counts`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.unique_counts(fnp.array([1, 1, 2])).counts
        Array([2, 1], dtype=int32)
    """
    return _UniqueCountsResult(*unique(x, return_counts=True, size=size,
                                       fill_value=fill_value, equal_nan=False))


def unique_inverse(x, /, *, size=None, fill_value=None):
    """The unique values of `x` and, per element, the index of its value in them.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.unique_inverse(fnp.array([3, 1, 3])).inverse_indices
        Array([1, 0, 1], dtype=int32)
    """
    return _UniqueInverseResult(*unique(x, return_inverse=True, size=size,
                                        fill_value=fill_value, equal_nan=False))


def unique_all(x, /, *, size=None, fill_value=None):
    """`values, indices, inverse_indices, counts` of `x`'s unique values (array API).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.unique_all(fnp.array([3, 1, 3])).indices
        Array([1, 0], dtype=int32)
    """
    return _UniqueAllResult(*unique(x, return_index=True, return_inverse=True,
                                    return_counts=True, size=size, fill_value=fill_value,
                                    equal_nan=False))


def _sorted_flat(*arrays):
    arrays = promote(*[fnp.ravel(asarray_value(a)) for a in arrays])
    return arrays


def _set_result(xs, keep, size, fill_value, default_first, fname):
    idx, valid = _compact(keep, size, fname)
    n = _shape(xs)[0]
    vals = xs[idx] if n else fnp.zeros(_shape(idx), dtype_of(xs))
    if fill_value is None and default_first:  # JAX: the smallest value of the result
        fill_value = vals[0] if _shape(vals)[0] else 0
    return _fill(vals, valid, fill_value, 0)


def union1d(ar1, ar2, *, size=None, fill_value=None):
    """The sorted unique values that are in `ar1` or `ar2`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.union1d(fnp.array([3, 1]), fnp.array([2, 1]))
        Array([1, 2, 3], dtype=int32)
    """
    size = _check_size(size, "union1d")
    a, b = _sorted_flat(ar1, ar2)
    return unique(fnp.concatenate([a, b]), size=size, fill_value=fill_value)


def intersect1d(ar1, ar2, assume_unique=False, return_indices=False, *, size=None,
                fill_value=None):
    """The sorted unique values that are in both `ar1` and `ar2`.

    With `return_indices`, also the indices of their first occurrences in each input.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.intersect1d(fnp.array([1, 2, 3]), fnp.array([2, 3, 4]))
        Array([2, 3], dtype=int32)
    """
    del assume_unique  # unused: the result is the same either way
    size = _check_size(size, "intersect1d")
    a, b = _sorted_flat(ar1, ar2)
    perm = red.argsort(a)
    xs = a[perm] if _shape(a)[0] else a
    keep = _first_of_runs(xs, True) & isin(xs, b)
    vals = _set_result(xs, keep, size, fill_value, True, "intersect1d")
    if not return_indices:
        return vals
    idx, valid = _compact(keep, size, "intersect1d")
    ia = fnp.where(valid, perm[idx], 0) if _shape(a)[0] else idx
    # first occurrence in b of each value: the smallest index j with b[j] == value
    nb = _shape(b)[0]
    hit = (b[None, :] == vals[:, None]) if nb else fnp.zeros((_shape(vals)[0], 1), bool)
    ib = fnp.where(valid, fnp.argmax(hit, axis=1), 0).astype(default_int())
    return vals, _wrap_output(ia.astype(default_int())), _wrap_output(ib)


def setdiff1d(ar1, ar2, assume_unique=False, *, size=None, fill_value=None):
    """The sorted unique values of `ar1` that are not in `ar2`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.setdiff1d(fnp.array([1, 2, 3, 2]), fnp.array([2]))
        Array([1, 3], dtype=int32)
    """
    del assume_unique  # unused
    size = _check_size(size, "setdiff1d")
    # values of ar1 in its own dtype (numpy's and JAX's result); isin compares promoted
    a, b = fnp.ravel(asarray_value(ar1)), fnp.ravel(asarray_value(ar2))
    xs = red.sort(a)
    keep = _first_of_runs(xs, True) & ~isin(xs, b)
    return _set_result(xs, keep, size, fill_value, False, "setdiff1d")


def setxor1d(ar1, ar2, assume_unique=False, *, size=None, fill_value=None):
    """The sorted unique values that are in exactly one of `ar1` and `ar2`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.setxor1d(fnp.array([1, 2, 3]), fnp.array([2, 3, 4]))
        Array([1, 4], dtype=int32)
    """
    del assume_unique  # unused
    size = _check_size(size, "setxor1d")
    a, b = _sorted_flat(ar1, ar2)
    xs = red.sort(fnp.concatenate([a, b]))
    keep = _first_of_runs(xs, True) & (isin(xs, a) != isin(xs, b))
    if dtype_of(xs).kind in "fc":  # NaN is in neither set: one NaN of each input stays (numpy)
        nan = fnp.isnan(xs)
        count = fnp.any(fnp.isnan(a)).astype(default_int()) + fnp.any(fnp.isnan(b))
        keep = keep | (nan & (fnp.cumsum(nan.astype(default_int())) <= count))
    return _set_result(xs, keep, size, fill_value, True, "setxor1d")


def isin(element, test_elements, assume_unique=False, invert=False, *, method="auto"):
    """True where an element of `element` is in `test_elements` (flattened).

    `method="compare_all"` compares every pair; "binary_search" (or "sort") sorts
    `test_elements` and searches it; "auto" picks by size.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.isin(fnp.array([1, 2, 3]), fnp.array([2, 5]))
        Array([False,  True, False], dtype=bool)
    """
    del assume_unique  # unused: the result is the same either way
    if method not in ("auto", "compare_all", "binary_search", "sort"):
        raise ValueError(f"isin: method must be 'auto', 'compare_all', 'binary_search' or "
                         f"'sort', got {method!r}")
    element, test = promote(asarray_value(element), fnp.ravel(asarray_value(test_elements)))
    m = _shape(test)[0]
    if method == "auto":
        small = m * int(np.prod(_shape(element), dtype=np.int64)) <= 1 << 16
        method = "compare_all" if small or dtype_of(test).kind == "c" else "binary_search"
    if m == 0:
        out = fnp.zeros(_shape(element), bool)
    elif method == "compare_all":
        out = fnp.any(fnp.expand_dims(element, -1) == test, axis=-1)
    else:
        ts = red.sort(test)
        out = sf.take(ts, fnp.minimum(searchsorted(ts, element), m - 1)) == element
    return _wrap_output(~out if invert else out)


# ------------------------------------------------------------------------ searching, counting


def searchsorted(a, v, side="left", sorter=None, *, method="scan"):
    """Indices where the elements of `v` would be inserted into the sorted 1-d `a`.

    `side="left"` gives the first such index, `"right"` the last; NaNs sort last, as in
    numpy. `method="compare_all"` compares every element of `v` with every element of
    `a` (memory `len(a) * v.size`); the other methods (JAX's "scan", "scan_unrolled",
    "sort") run a binary search of `log2(len(a))` vectorised steps.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.searchsorted(fnp.array([1.0, 2.0, 3.0]), fnp.array([2.0, 0.5, 9.0]))
        Array([1, 0, 3], dtype=int32)
    """
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    if method not in ("scan", "scan_unrolled", "sort", "compare_all"):
        raise ValueError(f"searchsorted: method must be 'scan', 'scan_unrolled', 'sort' or "
                         f"'compare_all', got {method!r}")
    a, v = promote(a, v)
    if _ndim(a) != 1:
        raise ValueError(f"searchsorted: a must be 1-d, got shape {_shape(a)}")
    if sorter is not None:
        a = a[asarray_value(sorter)]
    n = _shape(a)[0]
    if n == 0:
        return fnp.zeros(_shape(v), np.int32)
    if method == "compare_all":
        below = _goes_after(a, fnp.expand_dims(v, -1), side)
        return _wrap_output(fnp.sum(below, axis=-1).astype(np.int32))
    lo = fnp.zeros(_shape(v), np.int32)
    hi = fnp.full(_shape(v), n, np.int32)
    for _ in range(n.bit_length()):  # each step halves every [lo, hi) interval
        mid = (lo + hi) // 2
        after = _goes_after(sf.take(a, fnp.minimum(mid, n - 1)), v, side)
        active = lo < hi
        lo = fnp.where(active & after, mid + 1, lo)
        hi = fnp.where(active & ~after, mid, hi)
    return _wrap_output(lo)


def _goes_after(am, v, side):
    """True where `v` is inserted after the sorted element `am` (NaNs sort last)."""
    after = am < v if side == "left" else am <= v
    if dtype_of(am).kind in "fc":
        am_nan, v_nan = fnp.isnan(am), fnp.isnan(v)
        after = fnp.where(am_nan, v_nan & (side == "right"), after | (v_nan & ~am_nan))
    return after


def digitize(x, bins, right=False, *, method=None):
    """The index of the bin of each element of `x` (`bins` increasing or decreasing).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.digitize(fnp.array([0.5, 1.5, 3.0]), fnp.array([1.0, 2.0, 3.0]))
        Array([0, 1, 3], dtype=int32)
    """
    del method  # unused
    bins = asarray_value(bins)
    if _ndim(bins) != 1:
        raise ValueError(f"digitize: bins must be 1-d, got shape {_shape(bins)}")
    side = "left" if right else "right"
    n = _shape(bins)[0]
    if n < 2:
        return searchsorted(bins, x, side=side)
    inc = searchsorted(bins, x, side=side)
    dec = n - searchsorted(bins[::-1], x, side=side)
    return _wrap_output(fnp.where(bins[-1] >= bins[0], inc, dec))


def bincount(x, weights=None, minlength=0, *, length=None):
    """How often each non-negative integer occurs in the 1-d `x` (summing `weights`).

    `length` fixes the output's length so it can be traced (values at or past it are
    dropped); without it the length is `max(x) + 1` (at least `minlength`), read from
    the values.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.bincount(fnp.array([0, 1, 1, 3]))
        Array([1, 2, 0, 1], dtype=int32)
        >>> fnp.bincount(fnp.array([0, 1, 1]), length=4)
        Array([1, 2, 0, 0], dtype=int32)
    """
    x = asarray_value(x)
    if not (np.issubdtype(dtype_of(x), np.integer) or dtype_of(x) == bool):
        raise TypeError(f"bincount: x must be integers, got {dtype_of(x)}")
    if _ndim(x) != 1:
        raise ValueError(f"bincount: x must be 1-d, got shape {_shape(x)}")
    if length is None:
        try:
            v = core._lowest(x) if isinstance(x, Tracer) else core.to_numpy(x)
        except core.ConcretizationError:
            raise core.ConcretizationError(
                "bincount: the output length depends on the values; pass length=...") from None
        length = builtins.max(int(np.max(v)) + 1 if np.size(v) else 0, operator.index(minlength))
    length = operator.index(length)
    if weights is None:
        w = fnp.ones(_shape(x), default_int())
    else:
        w = asarray_value(weights)
        if dtype_of(w) == bool:
            raise TypeError("bincount: weights must be numbers, got bool (sums of booleans "
                            "are not defined); pass weights.astype(int) or float")
        if _shape(w) != _shape(x):
            raise ValueError(f"bincount: weights shape {_shape(w)} differs from x shape "
                             f"{_shape(x)}")
    # a scatter-add: negative values count in bin 0 and values past `length` are dropped,
    # as in JAX
    return _scatter_add(fnp.maximum(x, 0), w, length)


def _scatter_add(idx, w, length):
    """`zeros(length).at[idx].add(w)`, dropping indices at or past `length`."""
    out = fnp.zeros(length, dtype_of(w))
    if _shape(idx)[0] == 0:
        return out
    return _wrap_output(out.at[idx].add(w, mode="drop"))


def _bin_edges(a, bins, range, fname):
    b = asarray_value(bins)
    if _ndim(b) == 1:
        if _shape(b)[0] == 0:
            raise ValueError(f"{fname}: bins is an empty array; give a number of bins or at "
                             f"least one edge")
        return b
    nbins = operator.index(bins)
    if nbins < 1:
        raise ValueError(f"{fname}: bins must be positive, got {nbins}")
    dt = dtype_of(a) if dtype_of(a).kind in "fc" else np.dtype(np.float32)
    if range is None:
        if _shape(a)[0] == 0:
            lo, hi = 0.0, 1.0
        else:
            lo, hi = fnp.min(a), fnp.max(a)
    else:
        lo, hi = range
    lo, hi = asarray_value(lo, dt), asarray_value(hi, dt)
    same = lo == hi
    lo, hi = fnp.where(same, lo - 0.5, lo), fnp.where(same, hi + 0.5, hi)
    return fnp.linspace(lo, hi, nbins + 1).astype(dt)


def histogram_bin_edges(a, bins=10, range=None, weights=None):
    """The edges `histogram` uses for `bins` (a count or an array of edges).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.histogram_bin_edges(fnp.array([0.0, 1.0]), bins=2)
        Array([0. , 0.5, 1. ], dtype=float32)
    """
    del weights  # unused, as in numpy
    return _bin_edges(fnp.ravel(asarray_value(a)), bins, range, "histogram_bin_edges")


def histogram(a, bins=10, range=None, weights=None, density=None):
    """Counts of `a`'s (flattened) values in `bins`; returns `(hist, bin_edges)`.

    The last bin includes its right edge; values outside the edges are not counted.

    Example:
        >>> import nanofn.numpy as fnp
        >>> hist, edges = fnp.histogram(fnp.array([1.0, 2.0, 2.0, 3.0]), bins=3)
        >>> hist
        Array([1., 2., 1.], dtype=float32)
    """
    a = fnp.ravel(asarray_value(a))
    edges = _bin_edges(a, bins, range, "histogram")
    if weights is not None:
        weights = fnp.ravel(asarray_value(weights))
        if _shape(weights) != _shape(a):
            raise ValueError(f"histogram: weights shape {_shape(weights)} differs from a's "
                             f"{_shape(a)}")
    hist = _counts_1d(a, edges, weights)
    if density:
        widths = edges[1:] - edges[:-1]
        hist = hist / (widths * fnp.sum(hist))
    return _wrap_output(hist), _wrap_output(edges)


def _bin_index(a, edges):
    """Bin of each value (the last bin closed on the right); -1 outside the edges."""
    nb = _shape(edges)[0] - 1
    i = searchsorted(edges, a, side="right") - 1
    i = fnp.where(a == edges[-1], nb - 1, i)
    return fnp.where((i < 0) | (i >= nb), -1, i)


def _counts_1d(a, edges, weights):
    nb = _shape(edges)[0] - 1
    i = _bin_index(a, edges)
    w = fnp.ones(_shape(a), dtype_of(edges)) if weights is None else weights
    return _scatter_add(fnp.where(i < 0, nb, i), w, nb)  # outside the edges: dropped


def histogramdd(sample, bins=10, range=None, weights=None, density=None):
    """A histogram of `sample` (shape `(N, D)`) on a `D`-dimensional grid of bins.

    Returns `(hist, edges)` with `edges` a list of `D` arrays.

    Example:
        >>> import nanofn.numpy as fnp
        >>> h, edges = fnp.histogramdd(fnp.array([[0.0, 0.0], [1.0, 1.0]]), bins=2)
        >>> h
        Array([[1, 0],
               [0, 1]], dtype=int32)
    """
    sample = asarray_value(sample)
    if _ndim(sample) != 2:
        raise ValueError(f"histogramdd: sample must have shape (N, D), got {_shape(sample)}")
    d = _shape(sample)[1]
    if d == 0:
        raise ValueError(f"histogramdd: sample of shape {_shape(sample)} has no dimensions to "
                         f"bin; it needs shape (N, D) with D >= 1")
    bins_list = bins if isinstance(bins, (list, tuple)) else [bins] * d
    ranges = range if range is not None else [None] * d
    if len(bins_list) != d or len(ranges) != d:
        raise ValueError(f"histogramdd: bins and range need one entry per dimension ({d})")
    edges = [_bin_edges(sample[:, k], b, r, "histogramdd")
             for k, (b, r) in enumerate(zip(bins_list, ranges))]
    idx = [_bin_index(sample[:, k], e) for k, e in enumerate(edges)]
    nbs = [_shape(e)[0] - 1 for e in edges]
    inside = idx[0] >= 0
    flat = fnp.maximum(idx[0], 0)
    for i, nb in zip(idx[1:], nbs[1:]):
        inside = inside & (i >= 0)
        flat = flat * nb + fnp.maximum(i, 0)
    total = int(np.prod(nbs, dtype=np.int64))
    if weights is None:  # counts are integers unless a density is asked for (as JAX)
        w = fnp.ones(_shape(flat), dtype_of(edges[0]) if density else default_int())
    else:
        w = fnp.ravel(promote_float(asarray_value(weights), edges[0])[0])
    if _shape(w) != _shape(flat):
        raise ValueError(f"histogramdd: weights of shape {_shape(w)} do not match the "
                         f"{_shape(flat)[0]} samples")
    hist = fnp.reshape(_scatter_add(fnp.where(inside, flat, total), w, total), nbs)
    if density:
        cell = edges[0][1:] - edges[0][:-1]
        for e in edges[1:]:
            cell = fnp.expand_dims(cell, -1) * (e[1:] - e[:-1])
        hist = hist / (cell * fnp.sum(hist))
    return _wrap_output(hist), [_wrap_output(e) for e in edges]


def histogram2d(x, y, bins=10, range=None, weights=None, density=None):
    """A two-dimensional histogram of the points `(x, y)`; returns `(hist, xedges, yedges)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> h, xe, ye = fnp.histogram2d(fnp.array([0.0, 1.0]), fnp.array([0.0, 1.0]), bins=2)
        >>> h
        Array([[1, 0],
               [0, 1]], dtype=int32)
    """
    x, y = promote(fnp.ravel(asarray_value(x)), fnp.ravel(asarray_value(y)))
    if _shape(x) != _shape(y):
        raise ValueError(f"histogram2d: x and y differ in length ({_shape(x)[0]} and "
                         f"{_shape(y)[0]})")
    if isinstance(bins, (list, tuple)) and len(bins) == 2:  # one entry per coordinate
        bins2 = list(bins)
    elif _ndim(asarray_value(bins)) == 1:
        bins2 = [bins, bins]
    else:
        bins2 = [bins, bins]
    hist, (ex, ey) = histogramdd(fnp.stack([x, y], axis=1), bins2, range, weights, density)
    return hist, ex, ey
