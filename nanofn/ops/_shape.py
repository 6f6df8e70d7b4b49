"""Shape and indexing primitives: concatenate, pad, rev, slice, dynamic slices, gather, scatter.

Each block below is one primitive with its shape rule, its forward and reverse rules and its
batching rule, followed by the lax-style wrappers that call it. The linear primitives come
in transpose pairs, which is what their reverse rules use:

* `slice` <-> `pad`: the cotangent of a slice is the cotangent padded with zeros back to the
  operand's shape (strides become interior padding); the cotangent of a pad is a slice of
  the cotangent (interior padding becomes strides).
* `concatenate` -> `slice`: each operand's cotangent is its slice of the cotangent.
* `dynamic_slice` <-> `dynamic_update_slice`: reading a window transposes to writing it into
  zeros, and writing a window transposes to reading it back.
* `gather` <-> `scatter` with `combine="add"`: reading points transposes to summing into them.

**gather and scatter, simply.** XLA's gather and scatter take general "dimension numbers";
nanofn keeps one layout and lets callers transpose axes into place (`nanofn.numpy` does this
for indexing):

* `gather_p(operand, indices)`: `indices` has shape `batch + (k,)`; each length-k row is a
  point in the first `k` axes of `operand`, and the output has shape
  `batch + operand.shape[k:]`: `out[b] = operand[tuple(indices[b])]`.
* `scatter_p(operand, indices, updates, combine=...)`: the inverse layout; `updates` has
  shape `batch + operand.shape[k:]` and `updates[b]` is combined into
  `operand[tuple(indices[b])]` with `combine` one of `"set"`, `"add"`, `"mul"`, `"min"`,
  `"max"` (numpy's `a[i] = u`, `np.add.at`, `np.multiply.at`, `np.minimum.at`,
  `np.maximum.at`: repeated indices accumulate, and for `"set"` the last update wins).

Out-of-bounds indices (after `nanofn.numpy` has wrapped negative ones): gather clamps them
into range (`mode="clip"`, JAX's default for reads) or returns `fill_value` for them
(`mode="fill"`); scatter drops the updates whose index is out of bounds (JAX's default for
writes). Dynamic slices clamp their start indices so the window fits, as in XLA.

`scatter` with `combine="add"` (the transpose of every gather, so of `take`, `x[idx]` and
embedding lookups) runs a numba kernel, `_scatter_add_kernel`: one pass over the update
rows, each added to its point's row of the operand, out-of-bounds rows skipped. Its numpy
reference, `_scatter_reference` (`np.add.at`, several times slower), serves the other
combines, the dtypes the kernel is not compiled for, and `nanofn_use_kernels=False`.

Derivatives of scatter: `"add"` and `"set"` are exact for any indices (for `"set"` the
update that won gets the cotangent, the others get zero); `"min"` and `"max"` share the
derivative equally among ties, also for repeated indices; `"mul"` gives each factor the
product of the other factors at its point, exact for repeated indices and zeros too (JAX
refuses this derivative unless the indices are unique).
"""

from __future__ import annotations

import builtins
import math
import operator

import numpy as np

from nanofn import _kernels
from nanofn._core import Array, Primitive, ShapedArray, Tracer, get_aval
from nanofn.ops._xla_indexing import (
    GatherDimensionNumbers, GatherScatterMode, ScatterDimensionNumbers, general_gather,
    general_scatter,
)
from nanofn.ops._base import (
    _aval_shape, _c, _dtype, _moveaxis, _mul, _add, _sub, _div, _select, bdim_to_front,
    broadcast_in_dim_p, broadcasted_iota, convert_element_type_p, eq_p, full, lt_p, max_p,
    min_p, reduce_sum_p, reshape_p, select_n_p,
)

__all__ = [
    "concatenate", "pad", "rev", "slice", "slice_in_dim", "index_in_dim", "dynamic_slice",
    "dynamic_slice_in_dim", "dynamic_index_in_dim", "dynamic_update_slice",
    "dynamic_update_slice_in_dim", "dynamic_update_index_in_dim", "gather", "scatter",
    "scatter_add", "scatter_mul", "scatter_min", "scatter_max", "scatter_sub", "scatter_apply",
    "GatherDimensionNumbers", "ScatterDimensionNumbers", "GatherScatterMode",
]

# ------------------------------------------------------------------------ helpers


def _zeros(shape, dtype):
    return full(tuple(shape), 0, dtype)


def _zeros_like(x):
    return _zeros(_aval_shape(x), _dtype(x))


def _is_int(dtype) -> bool:
    return np.issubdtype(dtype, np.integer)


def _batch_size(vals, dims):
    for v, d in zip(vals, dims):
        if d is not None:
            return _aval_shape(v)[d]
    raise ValueError("batching rule called without a batched argument")


def _batch_at(x, d, size, pos):
    """Put `x`'s batch axis at `pos`, broadcasting an unbatched `x` (d is None) to `size`."""
    if d is not None:
        return _moveaxis(x, d, pos)
    shape = list(_aval_shape(x))
    dims = tuple(i if i < pos else i + 1 for i in range(len(shape)))
    return broadcast_in_dim_p.bind(x, shape=tuple(shape[:pos] + [size] + shape[pos:]),
                                   broadcast_dimensions=dims)


def _to_dtype(x, dtype):
    return x if _dtype(x) == dtype else convert_element_type_p.bind(x, new_dtype=np.dtype(dtype))


def _clamp(x, lo, hi):
    """Clamp an integer array between scalars (or arrays broadcasting with it)."""
    return max_p.bind(min_p.bind(x, hi), lo)


def _scalar_index_aval_check(name, avals):
    for i, a in enumerate(avals):
        if a.shape != () or not _is_int(a.dtype):
            raise TypeError(f"{name}: start index {i} must be an integer scalar, got "
                            f"{a.str_short()}")


# ======================================================================== concatenate

concatenate_p = Primitive("concatenate")
concatenate_p.impl = lambda *xs, dimension: np.concatenate(xs, axis=dimension)


@concatenate_p.def_abstract_eval
def _concatenate_abstract_eval(*avals, dimension):
    if not avals:
        raise ValueError("concatenate: needs at least one operand")
    if len({a.dtype for a in avals}) > 1:
        raise TypeError("concatenate: operands must have one dtype, got "
                        f"{', '.join(a.str_short() for a in avals)}")
    ndim = avals[0].ndim
    if any(a.ndim != ndim for a in avals):
        raise ValueError("concatenate: operands must have the same number of dimensions, got "
                         f"{', '.join(a.str_short() for a in avals)}")
    if not 0 <= dimension < ndim:
        raise ValueError(f"concatenate: dimension {dimension} is out of range for operands of "
                         f"rank {ndim} ({avals[0].str_short()})")
    shape = list(avals[0].shape)
    for a in avals[1:]:
        if any(s != t for i, (s, t) in enumerate(zip(shape, a.shape)) if i != dimension):
            raise ValueError(
                f"concatenate: operand shapes must agree except along dimension {dimension}, "
                f"got {', '.join(b.str_short() for b in avals)}")
    shape[dimension] = builtins.sum(a.shape[dimension] for a in avals)
    return ShapedArray(shape, avals[0].dtype)


def _concatenate_jvp(primals, tangents, *, dimension):
    out = concatenate_p.bind(*primals, dimension=dimension)
    ts = [_zeros_like(p) if t is None else t for p, t in zip(primals, tangents)]
    return out, concatenate_p.bind(*ts, dimension=dimension)


def _concatenate_vjp(ct, primals, out, needs, *, dimension):
    del out  # unused
    cts, start = [], 0
    ct_shape = _aval_shape(ct)
    for x, need in zip(primals, needs):
        size = _aval_shape(x)[dimension]
        if need:
            lo = [0] * len(ct_shape)
            hi = list(ct_shape)
            lo[dimension], hi[dimension] = start, start + size
            cts.append(slice_p.bind(ct, start_indices=tuple(lo), limit_indices=tuple(hi),
                                    strides=None))
        else:
            cts.append(None)
        start += size
    return cts


def _concatenate_batch(vals, dims, *, dimension):
    size = _batch_size(vals, dims)
    moved = [_batch_at(v, d, size, 0) for v, d in zip(vals, dims)]
    return concatenate_p.bind(*moved, dimension=dimension + 1), 0


concatenate_p.jvp = _concatenate_jvp
concatenate_p.vjp_joint = _concatenate_vjp
concatenate_p.batch = _concatenate_batch


def concatenate(operands, dimension):
    """Join arrays of one dtype along an existing axis (lax semantics: no promotion).

    Args:
        operands: a sequence of arrays with equal shapes except along `dimension`.
        dimension: the (non-negative) axis to join along.

    Returns:
        The joined array.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.concatenate([fnp.zeros((2, 1)), fnp.ones((2, 2))], 1)
        Array([[0., 1., 1.],
               [0., 1., 1.]], dtype=float32)
    """
    operands = list(operands)
    if len(operands) == 1:
        return operands[0]
    return concatenate_p.bind(*operands, dimension=operator.index(dimension))


# ======================================================================== pad

pad_p = Primitive("pad")


def _pad_sizes(shape, padding_config):
    return [lo + hi + n + builtins.max(n - 1, 0) * interior
            for n, (lo, hi, interior) in zip(shape, padding_config)]


@pad_p.def_impl
def _pad_impl(x, padding_value, *, padding_config):
    x = np.asarray(x)
    # Pad with the non-negative parts first, then crop where lo/hi are negative.
    full_shape, place, crop = [], [], []
    for n, (lo, hi, interior) in zip(x.shape, padding_config):
        dilated = n + builtins.max(n - 1, 0) * interior
        size = builtins.max(lo, 0) + dilated + builtins.max(hi, 0)
        full_shape.append(size)
        place.append(builtins.slice(builtins.max(lo, 0), builtins.max(lo, 0) + dilated,
                                    interior + 1))
        crop.append(builtins.slice(builtins.max(-lo, 0), size - builtins.max(-hi, 0)))
    out = np.full(full_shape, padding_value, dtype=x.dtype)
    out[tuple(place)] = x
    return out[tuple(crop)]


@pad_p.def_abstract_eval
def _pad_abstract_eval(x, padding_value, *, padding_config):
    if padding_value.shape != ():
        raise TypeError(f"pad: padding_value must be a scalar, got {padding_value.str_short()}")
    if padding_value.dtype != x.dtype:
        raise TypeError(f"pad: padding_value ({padding_value.str_short()}) must have the "
                        f"operand's dtype ({x.str_short()})")
    if len(padding_config) != x.ndim or any(len(c) != 3 for c in padding_config):
        raise ValueError(f"pad: padding_config {padding_config} must have one (lo, hi, interior) "
                         f"triple per axis of the operand {x.str_short()}")
    if any(interior < 0 for _, _, interior in padding_config):
        raise ValueError(f"pad: interior padding must be non-negative, got {padding_config}")
    shape = _pad_sizes(x.shape, padding_config)
    if any(s < 0 for s in shape):
        raise ValueError(f"pad: padding_config {padding_config} gives a negative dimension "
                         f"{tuple(shape)} for the operand {x.str_short()}")
    return ShapedArray(shape, x.dtype)


def _pad_jvp(primals, tangents, *, padding_config):
    x, pv = primals
    tx, tpv = tangents
    out = pad_p.bind(x, pv, padding_config=padding_config)
    tx = _zeros_like(x) if tx is None else tx
    tpv = _c(x, 0) if tpv is None else tpv
    return out, pad_p.bind(tx, tpv, padding_config=padding_config)


def _pad_transpose_operand(ct, x_shape, padding_config):
    # Undo lo/hi (negative padding becomes zeros again), then drop the interior padding.
    unpadded = pad_p.bind(ct, _c(ct, 0),
                          padding_config=tuple((-lo, -hi, 0) for lo, hi, _ in padding_config))
    if all(interior == 0 for _, _, interior in padding_config):
        return unpadded
    return slice_p.bind(unpadded, start_indices=(0,) * len(x_shape),
                        limit_indices=tuple(_aval_shape(unpadded)),
                        strides=tuple(interior + 1 for _, _, interior in padding_config))


def _pad_vjp(ct, primals, out, needs, *, padding_config):
    del out  # unused
    x, _ = primals
    ct_x = _pad_transpose_operand(ct, _aval_shape(x), padding_config)
    ct_pv = None
    if needs[1]:  # every output element not taken from x is the padding value
        ndim = len(_aval_shape(ct))
        ct_pv = _sub(reduce_sum_p.bind(ct, axes=tuple(range(ndim))),
                     reduce_sum_p.bind(ct_x, axes=tuple(range(ndim))))
    return [ct_x if needs[0] else None, ct_pv]


def _pad_batch(vals, dims, *, padding_config):
    (x, pv), (dx, dpv) = vals, dims
    config = ((0, 0, 0),) + tuple(padding_config)
    if dpv is None:
        return pad_p.bind(bdim_to_front(x, dx), pv, padding_config=config), 0
    # A batched padding value: pad with zeros, then select the padding value by a mask.
    size = _batch_size(vals, dims)
    x = _batch_at(x, dx, size, 0)
    padded = pad_p.bind(x, _c(x, 0), padding_config=config)
    inner = tuple(_aval_shape(x)[1:])
    mask = pad_p.bind(full(inner, True, np.bool_), np.asarray(False),
                      padding_config=tuple(padding_config))
    pv = broadcast_in_dim_p.bind(bdim_to_front(pv, dpv), shape=tuple(_aval_shape(padded)),
                                 broadcast_dimensions=(0,))
    return select_n_p.bind(mask, pv, padded), 0


pad_p.jvp = _pad_jvp
pad_p.vjp_joint = _pad_vjp
pad_p.batch = _pad_batch


def pad(operand, padding_value, padding_config):
    """Pad `operand` with `padding_value` (lax semantics).

    Args:
        operand: the array to pad.
        padding_value: a scalar of `operand`'s dtype.
        padding_config: one `(lo, hi, interior)` triple per axis: `lo`/`hi` elements before/
            after (negative values crop), `interior` elements between neighbours.

    Returns:
        The padded array; axis `i` has size `lo + hi + n + (n - 1) * interior`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.pad(fnp.array([1, 2, 3]), 0, [(1, -1, 1)])
        Array([0, 1, 0, 2, 0], dtype=int32)
    """
    config = tuple((operator.index(lo), operator.index(hi), operator.index(i))
                   for lo, hi, i in padding_config)
    if not isinstance(padding_value, (Tracer, Array)):
        padding_value = np.asarray(padding_value, dtype=_dtype(operand))
    return pad_p.bind(operand, padding_value, padding_config=config)


# ======================================================================== rev

rev_p = Primitive("rev")
rev_p.impl = lambda x, *, dimensions: np.flip(x, dimensions) if dimensions else x


@rev_p.def_abstract_eval
def _rev_abstract_eval(x, *, dimensions):
    if len(set(dimensions)) != len(dimensions) or any(not 0 <= d < x.ndim for d in dimensions):
        raise ValueError(f"rev: dimensions {dimensions} must be distinct axes of {x.str_short()}")
    return x


def _rev_jvp(t, x, *, out, dimensions):
    del out  # unused
    return rev_p.bind(t, dimensions=dimensions)


rev_p.jvp_terms = [_rev_jvp]
rev_p.vjp = [lambda ct, x, *, out, dimensions: rev_p.bind(ct, dimensions=dimensions)]
rev_p.batch = lambda vals, dims, *, dimensions: (
    rev_p.bind(bdim_to_front(vals[0], dims[0]), dimensions=tuple(d + 1 for d in dimensions)), 0)


def rev(operand, dimensions):
    """Reverse the order of elements along `dimensions`.

    Args:
        operand: the array.
        dimensions: a sequence of distinct non-negative axes.

    Returns:
        The reversed array.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.rev(fnp.array([[1, 2], [3, 4]]), (1,))
        Array([[2, 1],
               [4, 3]], dtype=int32)
    """
    dimensions = tuple(operator.index(d) for d in dimensions)
    return rev_p.bind(operand, dimensions=dimensions)


# ======================================================================== slice

slice_p = Primitive("slice")


@slice_p.def_impl
def _slice_impl(x, *, start_indices, limit_indices, strides):
    strides = strides or (1,) * len(start_indices)
    return np.asarray(x)[tuple(builtins.slice(s, l, st)
                               for s, l, st in zip(start_indices, limit_indices, strides))]


def _slice_sizes(start_indices, limit_indices, strides):
    strides = strides or (1,) * len(start_indices)
    return [builtins.max(0, (l - s + st - 1) // st)
            for s, l, st in zip(start_indices, limit_indices, strides)]


@slice_p.def_abstract_eval
def _slice_abstract_eval(x, *, start_indices, limit_indices, strides):
    n = x.ndim
    if len(start_indices) != n or len(limit_indices) != n or (strides and len(strides) != n):
        raise ValueError(f"slice: start_indices {start_indices}, limit_indices {limit_indices} "
                         f"and strides {strides} must each have one entry per axis of "
                         f"{x.str_short()}")
    for i, (s, l, d) in enumerate(zip(start_indices, limit_indices, x.shape)):
        if not 0 <= s <= l <= d:
            raise ValueError(f"slice: axis {i} of {x.str_short()} has size {d}; need "
                             f"0 <= start ({s}) <= limit ({l}) <= {d}")
    if strides and any(st < 1 for st in strides):
        raise ValueError(f"slice: strides {strides} must be positive")
    return ShapedArray(_slice_sizes(start_indices, limit_indices, strides), x.dtype)


def _slice_transpose(ct, x, *, start_indices, limit_indices, strides):
    x_shape = _aval_shape(x)
    strides = strides or (1,) * len(x_shape)
    config = []
    for n, s, st, m in zip(x_shape, start_indices, strides, _aval_shape(ct)):
        dilated = m + builtins.max(m - 1, 0) * (st - 1)
        config.append((s, n - s - dilated, st - 1))
    return pad_p.bind(ct, _c(ct, 0), padding_config=tuple(config))


def _slice_jvp(t, x, *, out, **params):
    del out  # unused
    return slice_p.bind(t, **params)


def _slice_batch(vals, dims, *, start_indices, limit_indices, strides):
    x = bdim_to_front(vals[0], dims[0])
    size = _aval_shape(x)[0]
    return slice_p.bind(x, start_indices=(0,) + tuple(start_indices),
                        limit_indices=(size,) + tuple(limit_indices),
                        strides=None if strides is None else (1,) + tuple(strides)), 0


slice_p.jvp_terms = [_slice_jvp]
slice_p.vjp = [lambda ct, x, *, out, **params: _slice_transpose(ct, x, **params)]
slice_p.batch = _slice_batch


def slice(operand, start_indices, limit_indices, strides=None):  # noqa: A001 - lax's name
    """A static slice: `operand[start:limit:stride]` on every axis (lax semantics).

    Args:
        operand: the array.
        start_indices: one non-negative start per axis.
        limit_indices: one limit (exclusive) per axis, `start <= limit <= size`.
        strides: optional positive step per axis.

    Returns:
        The slice.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.slice(fnp.arange(10), (1,), (8,), (3,))
        Array([1, 4, 7], dtype=int32)
    """
    start = tuple(operator.index(s) for s in start_indices)
    limit = tuple(operator.index(s) for s in limit_indices)
    if strides is not None:
        strides = tuple(operator.index(s) for s in strides)
        if all(s == 1 for s in strides):
            strides = None
    if strides is None and start == (0,) * len(start) and limit == tuple(_aval_shape(operand)):
        return operand
    return slice_p.bind(operand, start_indices=start, limit_indices=limit, strides=strides)


def _canonical_axis(axis, ndim, fname):
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{fname}: axis {axis} is out of bounds for an array of dimension {ndim}")
    return axis % ndim


def slice_in_dim(operand, start_index, limit_index, stride=1, axis=0):
    """`lax.slice` along one axis; `start_index`/`limit_index` may be None or negative.

    Args:
        operand: the array.
        start_index: first index (None: 0; negative counts from the end).
        limit_index: exclusive end (None: the axis size; negative counts from the end).
        stride: positive step.
        axis: the axis to slice.

    Returns:
        The slice.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.slice_in_dim(fnp.arange(6).reshape(2, 3), 1, None, axis=1)
        Array([[1, 2],
               [4, 5]], dtype=int32)
    """
    shape = _aval_shape(operand)
    axis = _canonical_axis(axis, len(shape), "slice_in_dim")
    n = shape[axis]
    start = 0 if start_index is None else operator.index(start_index)
    limit = n if limit_index is None else operator.index(limit_index)
    start = start + n if start < 0 else start
    limit = limit + n if limit < 0 else limit
    starts, limits, strides = [0] * len(shape), list(shape), [1] * len(shape)
    starts[axis], limits[axis], strides[axis] = start, limit, operator.index(stride)
    return slice(operand, starts, limits, strides)


def index_in_dim(operand, index, axis=0, keepdims=True):
    """The `index`-th element along `axis` (negative indices count from the end).

    Args:
        operand: the array.
        index: a static integer index.
        axis: the axis to index.
        keepdims: keep the indexed axis with size 1 (default) or drop it.

    Returns:
        The selected sub-array.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.index_in_dim(fnp.arange(6).reshape(2, 3), -1, axis=1, keepdims=False)
        Array([2, 5], dtype=int32)
    """
    shape = _aval_shape(operand)
    axis = _canonical_axis(axis, len(shape), "index_in_dim")
    index, n = operator.index(index), shape[axis]
    if not -n <= index < n:
        raise IndexError(f"index_in_dim: index {index} is out of bounds for axis {axis} with "
                         f"size {n}")
    index = index % n
    out = slice_in_dim(operand, index, index + 1, 1, axis)
    if keepdims:
        return out
    return reshape_p.bind(out, new_sizes=tuple(s for i, s in enumerate(shape) if i != axis))


# ======================================================================== dynamic_slice

dynamic_slice_p = Primitive("dynamic_slice")


def _clamped_starts(shape, starts, sizes):
    return [builtins.min(builtins.max(int(s), 0), n - m) for n, s, m in zip(shape, starts, sizes)]


@dynamic_slice_p.def_impl
def _dynamic_slice_impl(x, *starts, slice_sizes):
    x = np.asarray(x)
    starts = _clamped_starts(x.shape, starts, slice_sizes)
    return x[tuple(builtins.slice(s, s + m) for s, m in zip(starts, slice_sizes))]


@dynamic_slice_p.def_abstract_eval
def _dynamic_slice_abstract_eval(x, *starts, slice_sizes):
    if len(starts) != x.ndim or len(slice_sizes) != x.ndim:
        raise ValueError(f"dynamic_slice: got {len(starts)} start indices and slice_sizes "
                         f"{slice_sizes} for the operand {x.str_short()}; need one of each "
                         "per axis")
    _scalar_index_aval_check("dynamic_slice", starts)
    if any(not 0 <= m <= n for m, n in zip(slice_sizes, x.shape)):
        raise ValueError(f"dynamic_slice: slice_sizes {slice_sizes} must fit in the operand "
                         f"{x.str_short()}")
    return ShapedArray(slice_sizes, x.dtype)


def _dynamic_slice_jvp(t, x, *starts, out, slice_sizes):
    del out  # unused
    return dynamic_slice_p.bind(t, *starts, slice_sizes=slice_sizes)


def _dynamic_slice_vjp(ct, primals, out, needs, *, slice_sizes):
    del out  # unused
    x, *starts = primals
    ct_x = None
    if needs[0]:
        ct_x = dynamic_update_slice_p.bind(_zeros(_aval_shape(x), _dtype(ct)), ct, *starts)
    return [ct_x] + [None] * len(starts)


def _window_indices(shape, starts, start_dims, sizes, size, batch_column):
    """Indices of every element of a window, for batched start indices.

    Returns an int32 array of shape `(size,) + sizes + (k,)` holding, for batch member `b`
    and window position `w`, the point `clamped_start[b] + w` (preceded by `b` itself when
    `batch_column`, to index a batched operand). Used to batch dynamic slices as gathers.
    """
    out_shape = (size,) + tuple(sizes)
    cols = []
    if batch_column:
        cols.append(broadcasted_iota(np.int32, out_shape + (1,), 0))
    for i, (s, d) in enumerate(zip(starts, start_dims)):
        s = _to_dtype(s, np.int32)
        s = _clamp(s, np.int32(0), np.int32(shape[i] - sizes[i]))
        s = broadcast_in_dim_p.bind(s, shape=out_shape, broadcast_dimensions=(0,) if d is not None
                                    else ())
        col = _add(s, broadcasted_iota(np.int32, out_shape, i + 1))
        cols.append(reshape_p.bind(col, new_sizes=out_shape + (1,)))
    return concatenate_p.bind(*cols, dimension=len(out_shape)) if len(cols) > 1 else cols[0]


def _dynamic_slice_batch(vals, dims, *, slice_sizes):
    (x, *starts), (dx, *dstarts) = vals, dims
    if all(d is None for d in dstarts):
        size = _aval_shape(x)[dx]
        zero = np.zeros((), _dtype(starts[0]) if starts else np.int32)
        return dynamic_slice_p.bind(bdim_to_front(x, dx), zero, *starts,
                                    slice_sizes=(size,) + tuple(slice_sizes)), 0
    size = _batch_size(vals, dims)
    starts = [s if d is None else bdim_to_front(s, d) for s, d in zip(starts, dstarts)]
    shape = _aval_shape(x)
    shape = shape if dx is None else shape[:dx] + shape[dx + 1:]
    idx = _window_indices(shape, starts, dstarts, slice_sizes, size, dx is not None)
    operand = x if dx is None else bdim_to_front(x, dx)
    return gather_p.bind(operand, idx, mode="clip", fill_value=None), 0


dynamic_slice_p.jvp_terms = [_dynamic_slice_jvp]
dynamic_slice_p.vjp_joint = _dynamic_slice_vjp
dynamic_slice_p.batch = _dynamic_slice_batch


def _start_index(i, n, fname, wrap=True):
    """A start index as an integer scalar primitives accept; negative values wrap once
    (with `wrap`; otherwise a traced negative index clamps to 0, and a concrete one is an
    error, as JAX's `allow_negative_indices=False`)."""
    if isinstance(i, (Tracer, Array)):
        if tuple(i.shape) != () or not _is_int(i.dtype):
            raise TypeError(f"{fname}: start indices must be integer scalars, got "
                            f"{i.dtype.name}{list(i.shape)}")
        if not wrap:
            return i
        if i.dtype not in (np.int32, np.int64):  # room for i + n (int8, uint8, ...)
            i = _to_dtype(i, np.int64 if i.dtype.itemsize == 8 else np.int32)
        return _select(lt_p.bind(i, _c(i, 0)), i, _add(i, _c(i, n)))
    if isinstance(i, np.ndarray) and (i.shape != () or not _is_int(i.dtype)):
        raise TypeError(f"{fname}: start indices must be integer scalars, got "
                        f"{i.dtype.name}{list(i.shape)}")
    try:
        v = operator.index(i)
    except TypeError:
        raise TypeError(f"{fname}: start indices must be integers, got {i!r}") from None
    if v < 0 and not wrap:
        raise ValueError(f"{fname}: start index {v} is out of bounds for an axis of size {n} "
                         "with allow_negative_indices=False")
    return np.asarray(v + n if v < 0 else v, np.int32)


def _no_wrap(i):
    """A Python int index below 0 as 0: the clamp a traced one gets without wrapping (JAX's
    `dynamic_index_in_dim` and `dynamic_update_index_in_dim` trace their index, so they
    clamp where `dynamic_slice` refuses)."""
    if isinstance(i, (Tracer, Array)) or (isinstance(i, np.ndarray) and i.shape != ()):
        return i
    try:
        return 0 if operator.index(i) < 0 else i
    except TypeError:
        return i


def _wrap_flags(allow_negative_indices, n, fname):
    """`allow_negative_indices` (a bool, or one per axis) as one bool per axis."""
    if isinstance(allow_negative_indices, (bool, np.bool_)):
        return [bool(allow_negative_indices)] * n
    flags = [bool(f) for f in allow_negative_indices]
    if len(flags) != n:
        raise ValueError(f"{fname}: allow_negative_indices has {len(flags)} entries for {n} "
                         "start indices")
    return flags


def dynamic_slice(operand, start_indices, slice_sizes, *, allow_negative_indices=True):
    """A window of static size at traced start indices (lax semantics).

    Start indices are clamped so that the window fits in `operand` (as in XLA); negative
    ones count from the end.

    Args:
        operand: the array.
        start_indices: one integer scalar (possibly traced) per axis.
        slice_sizes: the static size of the window along each axis.
        allow_negative_indices: a bool, or one per axis: whether a negative start counts
            from the end (else a traced one clamps to 0 and a Python int is an error).

    Returns:
        The window, of shape `slice_sizes`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.dynamic_slice(fnp.arange(5), (fnp.array(3),), (3,))  # clamped to 2
        Array([2, 3, 4], dtype=int32)
    """
    shape = _aval_shape(operand)
    if len(start_indices) != len(shape):
        raise ValueError(f"dynamic_slice: got {len(start_indices)} start indices for an operand "
                         f"of shape {tuple(shape)}")
    wrap = _wrap_flags(allow_negative_indices, len(shape), "dynamic_slice")
    starts = [_start_index(i, n, "dynamic_slice", w)
              for i, n, w in zip(start_indices, shape, wrap)]
    return dynamic_slice_p.bind(operand, *starts,
                                slice_sizes=tuple(operator.index(s) for s in slice_sizes))


def dynamic_slice_in_dim(operand, start_index, slice_size, axis=0, *,
                         allow_negative_indices=True):
    """`dynamic_slice` along one axis (the other axes are kept whole).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.dynamic_slice_in_dim(fnp.arange(6).reshape(2, 3), 1, 2, axis=1)
        Array([[1, 2],
               [4, 5]], dtype=int32)
    """
    shape = _aval_shape(operand)
    axis = _canonical_axis(axis, len(shape), "dynamic_slice_in_dim")
    starts = [0] * len(shape)
    sizes = list(shape)
    starts[axis], sizes[axis] = start_index, slice_size
    wrap = [True] * len(shape)
    wrap[axis] = allow_negative_indices
    return dynamic_slice(operand, starts, sizes, allow_negative_indices=wrap)


def dynamic_index_in_dim(operand, index, axis=0, keepdims=True, *,
                         allow_negative_indices=True):
    """The (possibly traced) `index`-th element along `axis`; out-of-range indices clamp.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.dynamic_index_in_dim(fnp.arange(6).reshape(2, 3), 1, keepdims=False)
        Array([3, 4, 5], dtype=int32)
    """
    shape = _aval_shape(operand)
    axis = _canonical_axis(axis, len(shape), "dynamic_index_in_dim")
    if not allow_negative_indices:
        index = _no_wrap(index)
    out = dynamic_slice_in_dim(operand, index, 1, axis,
                               allow_negative_indices=allow_negative_indices)
    if keepdims:
        return out
    return reshape_p.bind(out, new_sizes=tuple(s for i, s in enumerate(shape) if i != axis))


# ======================================================================== dynamic_update_slice

dynamic_update_slice_p = Primitive("dynamic_update_slice")


@dynamic_update_slice_p.def_impl
def _dynamic_update_slice_impl(x, update, *starts):
    out = np.array(x, copy=True)
    update = np.asarray(update)
    starts = _clamped_starts(out.shape, starts, update.shape)
    out[tuple(builtins.slice(s, s + m) for s, m in zip(starts, update.shape))] = update
    return out


@dynamic_update_slice_p.def_abstract_eval
def _dynamic_update_slice_abstract_eval(x, update, *starts):
    if x.dtype != update.dtype:
        raise TypeError(f"dynamic_update_slice: the update ({update.str_short()}) must have the "
                        f"operand's dtype ({x.str_short()})")
    if update.ndim != x.ndim or any(m > n for m, n in zip(update.shape, x.shape)):
        raise ValueError(f"dynamic_update_slice: the update {update.str_short()} must have the "
                         f"operand's rank and fit inside it ({x.str_short()})")
    if len(starts) != x.ndim:
        raise ValueError(f"dynamic_update_slice: got {len(starts)} start indices for the "
                         f"operand {x.str_short()}; need one per axis")
    _scalar_index_aval_check("dynamic_update_slice", starts)
    return x


def _dynamic_update_slice_jvp(primals, tangents, **params):
    x, update, *starts = primals
    tx, tu = tangents[:2]
    out = dynamic_update_slice_p.bind(x, update, *starts)
    tx = _zeros_like(x) if tx is None else tx
    tu = _zeros_like(update) if tu is None else tu
    return out, dynamic_update_slice_p.bind(tx, tu, *starts)


def _dynamic_update_slice_vjp(ct, primals, out, needs):
    del out  # unused
    x, update, *starts = primals
    ct_x = ct_u = None
    if needs[0]:
        zeros = _zeros(_aval_shape(update), _dtype(ct))
        ct_x = dynamic_update_slice_p.bind(ct, zeros, *starts)
    if needs[1]:
        ct_u = dynamic_slice_p.bind(ct, *starts, slice_sizes=tuple(_aval_shape(update)))
    return [ct_x, ct_u] + [None] * len(starts)


def _dynamic_update_slice_batch(vals, dims):
    (x, update, *starts), (dx, du, *dstarts) = vals, dims
    size = _batch_size(vals, dims)
    x = _batch_at(x, dx, size, 0)
    update = _batch_at(update, du, size, 0)
    if all(d is None for d in dstarts):
        zero = np.zeros((), _dtype(starts[0]) if starts else np.int32)
        return dynamic_update_slice_p.bind(x, update, zero, *starts), 0
    starts = [s if d is None else bdim_to_front(s, d) for s, d in zip(starts, dstarts)]
    sizes = tuple(_aval_shape(update)[1:])
    idx = _window_indices(_aval_shape(x)[1:], starts, dstarts, sizes, size, True)
    return scatter_p.bind(x, idx, update, combine="set"), 0


dynamic_update_slice_p.jvp = _dynamic_update_slice_jvp
dynamic_update_slice_p.vjp_joint = _dynamic_update_slice_vjp
dynamic_update_slice_p.batch = _dynamic_update_slice_batch


def _weak_update(update, operand):
    """A Python scalar update takes the operand's dtype (JAX's weak typing of Python
    scalars); arrays keep theirs, and must match."""
    return _c(operand, update) if type(update) in (bool, int, float, complex) else update


def dynamic_update_slice(operand, update, start_indices, *, allow_negative_indices=True):
    """Write `update` into `operand` at traced start indices (a new array; lax semantics).

    Start indices are clamped so that `update` fits; negative ones count from the end.

    Args:
        operand: the array to update.
        update: an array of `operand`'s dtype and rank, no larger than it.
        start_indices: one integer scalar (possibly traced) per axis.
        allow_negative_indices: a bool, or one per axis: whether a negative start counts
            from the end (else a traced one clamps to 0 and a Python int is an error).

    Returns:
        A copy of `operand` with the window replaced by `update`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.dynamic_update_slice(fnp.zeros(4), fnp.ones(2), (1,))
        Array([0., 1., 1., 0.], dtype=float32)
    """
    shape = _aval_shape(operand)
    if len(start_indices) != len(shape):
        raise ValueError(f"dynamic_update_slice: got {len(start_indices)} start indices for an "
                         f"operand of shape {tuple(shape)}")
    wrap = _wrap_flags(allow_negative_indices, len(shape), "dynamic_update_slice")
    starts = [_start_index(i, n, "dynamic_update_slice", w)
              for i, n, w in zip(start_indices, shape, wrap)]
    return dynamic_update_slice_p.bind(operand, _weak_update(update, operand), *starts)


def dynamic_update_slice_in_dim(operand, update, start_index, axis, *,
                                allow_negative_indices=True):
    """`dynamic_update_slice` along one axis (the update spans the other axes).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.dynamic_update_slice_in_dim(fnp.zeros((2, 3)), fnp.ones((2, 1)), 2, 1)
        Array([[0., 0., 1.],
               [0., 0., 1.]], dtype=float32)
    """
    shape = _aval_shape(operand)
    axis = _canonical_axis(axis, len(shape), "dynamic_update_slice_in_dim")
    update = _weak_update(update, operand)
    starts = [0] * len(shape)
    starts[axis] = start_index
    wrap = [True] * len(shape)
    wrap[axis] = allow_negative_indices
    return dynamic_update_slice(operand, update, starts, allow_negative_indices=wrap)


def dynamic_update_index_in_dim(operand, update, index, axis, *,
                                allow_negative_indices=True):
    """Write `update` as the `index`-th element along `axis` (`update` may lack that axis).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.dynamic_update_index_in_dim(fnp.zeros((2, 2)), fnp.ones(2), 0, 0)
        Array([[1., 1.],
               [0., 0.]], dtype=float32)
    """
    shape = _aval_shape(operand)
    axis = _canonical_axis(axis, len(shape), "dynamic_update_index_in_dim")
    update = _weak_update(update, operand)
    if len(_aval_shape(update)) == len(shape) - 1:
        new = list(_aval_shape(update))
        new.insert(axis, 1)
        update = reshape_p.bind(update, new_sizes=tuple(new))
    if not allow_negative_indices:
        index = _no_wrap(index)
    return dynamic_update_slice_in_dim(operand, update, index, axis,
                                       allow_negative_indices=allow_negative_indices)


# ======================================================================== gather

gather_p = Primitive("gather")


def _default_fill(dtype):
    """JAX's fill value for out-of-bounds reads with mode="fill"."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.inexact):
        return np.nan
    if dtype == np.bool_:
        return True
    if np.issubdtype(dtype, np.signedinteger):
        return np.iinfo(dtype).min
    return np.iinfo(dtype).max


def _in_bounds(idx, dims):
    return np.all((idx >= 0) & (idx < np.asarray(dims, dtype=np.int64)), axis=-1)


@gather_p.def_impl
def _gather_impl(x, indices, *, mode, fill_value):
    x, idx = np.asarray(x), np.asarray(indices)
    k = idx.shape[-1]
    batch, dims = idx.shape[:-1], x.shape[:k]
    if k == 0:
        return np.array(np.broadcast_to(x, batch + x.shape))
    if mode == "clip":
        cols = tuple(np.clip(idx[..., i], 0, builtins.max(dims[i] - 1, 0)) for i in range(k))
        return x[cols]
    fill = _default_fill(x.dtype) if fill_value is None else fill_value
    out_shape = batch + x.shape[k:]
    if 0 in dims:
        return np.full(out_shape, fill, dtype=x.dtype)
    valid = _in_bounds(idx, dims)
    safe = np.where(valid[..., None], idx, 0)
    out = x[tuple(safe[..., i] for i in range(k))]
    return np.where(valid.reshape(batch + (1,) * (x.ndim - k)), out,
                    np.asarray(fill, dtype=x.dtype))


@gather_p.def_abstract_eval
def _gather_abstract_eval(x, indices, *, mode, fill_value):
    if not _is_int(indices.dtype) or indices.ndim < 1:
        raise TypeError(f"gather: indices must be an integer array of shape batch + (k,), got "
                        f"{indices.str_short()}")
    k = indices.shape[-1]
    if k > x.ndim:
        raise ValueError(f"gather: indices {indices.str_short()} index {k} axes, but the operand "
                         f"{x.str_short()} has only {x.ndim}")
    if mode not in ("clip", "fill"):
        raise ValueError(f"gather: mode must be 'clip' or 'fill', got {mode!r}")
    batch = indices.shape[:-1]
    if mode == "clip" and math.prod(batch) and 0 in x.shape[:k]:
        raise IndexError(f"gather: cannot read from an empty axis: the operand is "
                         f"{x.str_short()} and the indices {indices.str_short()}")
    return ShapedArray(batch + x.shape[k:], x.dtype)


def _gather_jvp(t, x, indices, *, out, mode, fill_value):
    del out  # unused
    # Out-of-bounds reads with mode="fill" are constants: their tangent is zero.
    return gather_p.bind(t, indices, mode=mode, fill_value=0 if mode == "fill" else fill_value)


def _clip_indices(indices, dims):
    """Clamp each column of `indices` (shape batch + (k,)) into `[0, dims[i] - 1]`."""
    dt = _dtype(indices)
    hi = np.asarray([builtins.max(d - 1, 0) for d in dims], dtype=dt)
    return _clamp(indices, np.zeros((), dt), hi)


def _gather_vjp(ct, primals, out, needs, *, mode, fill_value):
    del out, fill_value  # unused
    x, indices = primals
    if not needs[0]:
        return [None, None]
    shape = _aval_shape(x)
    k = _aval_shape(indices)[-1]
    if mode == "clip":  # the transpose adds into the clamped positions that were read
        indices = _clip_indices(indices, shape[:k])
    zeros = _zeros(shape, _dtype(ct))
    return [scatter_p.bind(zeros, indices, ct, combine="add"), None]


def _batch_column(indices, size):
    """Prepend, to each index row of batch-first `indices`, the row's batch position."""
    ishape = _aval_shape(indices)
    col = broadcasted_iota(_dtype(indices), tuple(ishape[:-1]) + (1,), 0)
    return concatenate_p.bind(col, indices, dimension=len(ishape) - 1)


def _gather_batch(vals, dims, *, mode, fill_value):
    (x, indices), (dx, di) = vals, dims
    if di is None:  # index the operand's batch axis whole: put it right after the k axes
        k = _aval_shape(indices)[-1]
        x = _moveaxis(x, dx, k)
        return gather_p.bind(x, indices, mode=mode, fill_value=fill_value), \
            len(_aval_shape(indices)) - 1
    indices = bdim_to_front(indices, di)
    if dx is None:
        return gather_p.bind(x, indices, mode=mode, fill_value=fill_value), 0
    x = bdim_to_front(x, dx)
    indices = _batch_column(indices, _aval_shape(x)[0])
    return gather_p.bind(x, indices, mode=mode, fill_value=fill_value), 0


gather_p.jvp_terms = [_gather_jvp]
gather_p.vjp_joint = _gather_vjp
gather_p.batch = _gather_batch


def _check_indices_arg(indices, fname):
    if not isinstance(indices, (Tracer, Array)):
        indices = np.asarray(indices)
        if indices.dtype == np.int64:
            indices = indices.astype(np.int32)
    if not _is_int(_dtype(indices)):
        raise TypeError(f"{fname}: indices must be integers, got dtype {_dtype(indices).name}")
    return indices


def gather(operand, start_indices, dimension_numbers=None, slice_sizes=None, *,
           unique_indices=False, indices_are_sorted=False, mode=None, fill_value=None):
    """Read slices of `operand` at `start_indices`: XLA's gather, as `jax.lax.gather`.

    With `dimension_numbers` (a `GatherDimensionNumbers`) and `slice_sizes`, each index
    vector (the last axis of `start_indices`) gives the start, along the axes
    `start_index_map`, of a slice of shape `slice_sizes`; `collapsed_slice_dims` (size 1)
    are dropped, and the slice's other axes land on the result axes `offset_dims`, the
    indices' batch axes filling the rest in order. A slice that does not fit is moved
    inside with `mode` "clip" or None (JAX's default, "promise_in_bounds", which XLA
    clips), or read as `fill_value` with "fill".

    Without them (nanofn's point form, its primitive): the last axis of `start_indices`
    (size `k`) is a point in the first `k` axes of `operand`, whose other axes are taken
    whole; the result has shape `batch + operand.shape[k:]` and `mode` defaults to "clip".

    Args:
        operand: the array to read from.
        start_indices: an integer array of shape `batch + (k,)`.
        dimension_numbers: a `GatherDimensionNumbers`, or None for the point form.
        slice_sizes: the slice's size along every operand axis (with dimension_numbers).
        unique_indices, indices_are_sorted: accepted for JAX compatibility (hints only).
        mode: "clip", "fill" or "promise_in_bounds" (None), or a `GatherScatterMode`.
        fill_value: the value out-of-bounds reads give in fill mode (default: NaN for
            floats, the minimum of signed integers, the maximum of unsigned, True).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> x = fnp.arange(6).reshape(3, 2)
        >>> lax.gather(x, fnp.array([[2], [0]]))  # point form: rows 2 and 0
        Array([[4, 5],
               [0, 1]], dtype=int32)
        >>> dn = lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(0,),
        ...                                 start_index_map=(0,))
        >>> lax.gather(x, fnp.array([[2], [0]]), dn, slice_sizes=(1, 2))
        Array([[4, 5],
               [0, 1]], dtype=int32)
    """
    del unique_indices, indices_are_sorted  # hints for XLA; the result is the same
    if dimension_numbers is not None or slice_sizes is not None:
        if dimension_numbers is None or slice_sizes is None:
            raise TypeError("gather: dimension_numbers and slice_sizes go together (or "
                            "neither, for nanofn's point form)")
        return general_gather(operand, start_indices, dimension_numbers, slice_sizes,
                              mode=mode, fill_value=fill_value)
    indices = _check_indices_arg(start_indices, "gather")
    if not isinstance(mode, (str, type(None))):
        mode = {"CLIP": "clip", "FILL_OR_DROP": "fill", "PROMISE_IN_BOUNDS": "clip"}.get(
            getattr(mode, "name", ""), mode)
    if mode in (None, "clip", "promise_in_bounds"):
        mode = "clip"
    if mode != "clip" and mode != "fill":
        raise ValueError(f"gather: mode must be 'clip' or 'fill', got {mode!r}")
    if fill_value is not None:
        fill_value = np.asarray(fill_value).item()
    return gather_p.bind(operand, indices, mode=mode, fill_value=fill_value)


# ======================================================================== scatter

scatter_p = Primitive("scatter")

_UFUNCS = {"add": np.add, "mul": np.multiply, "min": np.minimum, "max": np.maximum}


def _scatter_rows(x, indices, updates):
    """The operands in the layout both scatter impls use: a fresh C-ordered copy of `x`,
    the index rows as an `(n, k)` array and the updates as `(n,) + operand.shape[k:]`."""
    out = np.array(x, copy=True, order="C")
    idx, upd = np.asarray(indices), np.asarray(updates)
    k = idx.shape[-1]
    n = math.prod(idx.shape[:-1])
    return out, idx.reshape(n, k), upd.reshape((n,) + out.shape[k:])


def _scatter_reference(x, indices, updates, *, combine):
    """Scatter in plain numpy (`np.<ufunc>.at`): the reference for the add kernel, and the
    impl of the other combines."""
    out, idx, upd = _scatter_rows(x, indices, updates)
    k = idx.shape[-1]
    valid = _in_bounds(idx, out.shape[:k])  # out-of-bounds updates are dropped
    if not valid.all():
        idx, upd = idx[valid], upd[valid]
    target = out.reshape((1,) + out.shape) if k == 0 else out  # k == 0: a whole-array update
    cols = (np.zeros(len(idx), np.intp),) if k == 0 else tuple(idx[:, i] for i in range(k))
    if combine == "set":
        target[cols] = upd  # numpy: the last of repeated indices wins
    else:
        _UFUNCS[combine].at(target, cols, upd)
    return out


@_kernels.kernel
def _scatter_add_kernel(out, idx, dims, upd):
    """`out[point(idx[b]), :] += upd[b, :]` for each index row `b` whose point lies inside
    `dims`; `out` is `(prod(dims), r)`, `idx` `(n, k)`, `upd` `(n, r)`, all C-ordered.
    Rows out of bounds are skipped, so nothing outside `out` is read or written."""
    n, k = idx.shape
    r = out.shape[1]
    for b in range(n):
        pos = 0
        inside = True
        for j in range(k):
            i = idx[b, j]
            if i < 0 or i >= dims[j]:
                inside = False
                break
            pos = pos * dims[j] + i
        if inside:
            for c in range(r):
                out[pos, c] += upd[b, c]


# dtypes the add kernel is compiled for (others, e.g. bool and float16, use np.add.at)
_SCATTER_ADD_KERNEL_DTYPES = frozenset(np.dtype(t) for t in (
    np.float32, np.float64, np.complex64, np.complex128, np.int32, np.int64))


def _scatter_add_fast(x, indices, updates):
    """`scatter` with combine="add" through `_scatter_add_kernel`: one pass over the
    updates, where `np.add.at` pays per index row."""
    out, idx, upd = _scatter_rows(x, indices, updates)
    k = idx.shape[-1]
    dims = np.asarray(out.shape[:k], dtype=np.int64)
    rows = math.prod(dims)  # 1 when k == 0: the whole array is one row
    if out.size == 0 or idx.shape[0] == 0:
        return out
    r = out.size // rows
    _scatter_add_kernel(out.reshape(rows, r), np.ascontiguousarray(idx, dtype=np.int64), dims,
                        np.ascontiguousarray(upd).reshape(idx.shape[0], r))
    return out


@scatter_p.def_impl
def _scatter_impl(x, indices, updates, *, combine):
    if (combine == "add" and np.dtype(x.dtype) in _SCATTER_ADD_KERNEL_DTYPES
            and _kernels.enabled()):
        return _scatter_add_fast(x, indices, updates)
    return _scatter_reference(x, indices, updates, combine=combine)


@scatter_p.def_abstract_eval
def _scatter_abstract_eval(x, indices, updates, *, combine):
    if combine not in ("set", "add", "mul", "min", "max"):
        raise ValueError(f"scatter: combine must be one of 'set', 'add', 'mul', 'min', 'max', "
                         f"got {combine!r}")
    if not _is_int(indices.dtype) or indices.ndim < 1:
        raise TypeError(f"scatter: indices must be an integer array of shape batch + (k,), got "
                        f"{indices.str_short()}")
    if x.dtype != updates.dtype:
        raise TypeError(f"scatter: updates ({updates.str_short()}) must have the operand's "
                        f"dtype ({x.str_short()})")
    k = indices.shape[-1]
    if k > x.ndim:
        raise ValueError(f"scatter: indices {indices.str_short()} index {k} axes, but the "
                         f"operand {x.str_short()} has only {x.ndim}")
    want = indices.shape[:-1] + x.shape[k:]
    if updates.shape != want:
        raise ValueError(f"scatter: updates must have shape indices.shape[:-1] + "
                         f"operand.shape[k:] = {want}, got {updates.str_short()} (operand "
                         f"{x.str_short()}, indices {indices.str_short()})")
    return x


def _scatter(x, indices, updates, combine):
    return scatter_p.bind(x, indices, updates, combine=combine)


def _gather0(x, indices):
    """Read points, with zeros for out-of-bounds indices (the transpose of a dropping scatter)."""
    return gather_p.bind(x, indices, mode="fill", fill_value=0)


def _as_float(mask, like):
    return convert_element_type_p.bind(mask, new_dtype=_dtype(like))


def _set_winners(x, indices):
    """Which index rows won a "set" scatter (the last of repeated indices; in-bounds only)."""
    ishape = _aval_shape(indices)
    batch, k = tuple(ishape[:-1]), ishape[-1]
    n = math.prod(batch)
    ids = reshape_p.bind(broadcasted_iota(np.int32, (n,), 0), new_sizes=batch)
    marker = _scatter(full(tuple(_aval_shape(x)[:k]), -1, np.int32), indices, ids, "set")
    back = gather_p.bind(marker, indices, mode="fill", fill_value=-1)
    return eq_p.bind(back, ids)


def _extremum_weights(x, indices, updates, out):
    """How the derivative of a min/max scatter is shared: weights for the operand (its shape)
    and for each update (its shape); ties share equally."""
    in_bounds = _gather0(full(tuple(_aval_shape(x)), 1, _dtype(x)), indices)
    u_hit = _mul(_as_float(eq_p.bind(updates, _gather0(out, indices)), x), in_bounds)
    x_hit = _as_float(eq_p.bind(x, out), x)
    count = _add(x_hit, _scatter(_zeros_like(x), indices, u_hit, "add"))
    w_x = _div(x_hit, count)
    count_u = gather_p.bind(count, indices, mode="fill", fill_value=1)
    w_u = _div(u_hit, count_u)
    return w_x, w_u


def _product_cofactors(x, indices, updates):
    """The derivative of a "mul" scatter: for the operand (its shape) and for each update
    (its shape), the product of every *other* factor at the same point. Repeated indices
    and zeros are exact: a factor's cofactor is the product of the nonzero factors at its
    point divided by itself when none is zero, that product when it is the only zero, and 0
    otherwise. Out-of-bounds updates get 0."""
    dtype = _dtype(x)
    one_x, one_u = full(_aval_shape(x), 1, dtype), full(_aval_shape(updates), 1, dtype)
    zero_x, zero_u = _zeros_like(x), _zeros_like(updates)
    x_zero, u_zero = eq_p.bind(x, zero_x), eq_p.bind(updates, zero_u)
    x_safe, u_safe = _select(x_zero, x, one_x), _select(u_zero, updates, one_u)
    nonzero = _scatter(x_safe, indices, u_safe, "mul")  # product of the nonzero factors
    zeros = _add(_as_float(x_zero, x), _scatter(zero_x, indices, _as_float(u_zero, x), "add"))

    def cofactor(is_zero, safe, prod, count, inside):
        none = eq_p.bind(count, _zeros_like(count))
        only = eq_p.bind(count, full(_aval_shape(count), 1, dtype))
        if_nonzero = _select(none, _zeros_like(prod), _div(prod, safe))
        if_zero = _select(only, _zeros_like(prod), prod)
        return _mul(_select(is_zero, if_nonzero, if_zero), inside)

    w_x = cofactor(x_zero, x_safe, nonzero, zeros, one_x)
    inside = _gather0(one_x, indices)
    w_u = cofactor(u_zero, u_safe, _gather0(nonzero, indices), _gather0(zeros, indices), inside)
    return w_x, w_u


def _scatter_jvp(primals, tangents, *, combine):
    x, indices, updates = primals
    tx, _, tu = tangents
    out = _scatter(x, indices, updates, combine)
    if combine in ("add", "set"):  # linear in (operand, updates) jointly
        tx = _zeros_like(x) if tx is None else tx
        tu = _zeros_like(updates) if tu is None else tu
        return out, _scatter(tx, indices, tu, combine)
    if combine == "mul":  # out[p] = x[p] * (the product of every update at p)
        w_x, w_u = _product_cofactors(x, indices, updates)
        t_out = None if tx is None else _mul(tx, w_x)
        if tu is not None:
            t_u = _scatter(_zeros_like(x), indices, _mul(tu, w_u), "add")
            t_out = t_u if t_out is None else _add(t_out, t_u)
        return out, t_out
    w_x, w_u = _extremum_weights(x, indices, updates, out)
    t_out = None if tx is None else _mul(tx, w_x)
    if tu is not None:
        t_u = _scatter(_zeros_like(x), indices, _mul(tu, w_u), "add")
        t_out = t_u if t_out is None else _add(t_out, t_u)
    return out, t_out


def _scatter_vjp(ct, primals, out, needs, *, combine):
    x, indices, updates = primals
    ct_x = ct_u = None
    if combine == "add":
        ct_x = ct if needs[0] else None
        ct_u = _gather0(ct, indices) if needs[2] else None
    elif combine == "set":
        if needs[0]:
            ct_x = _scatter(ct, indices, _zeros(_aval_shape(updates), _dtype(ct)), "set")
        if needs[2]:
            g = _gather0(ct, indices)
            win = _set_winners(x, indices)
            nb = len(_aval_shape(indices)) - 1
            win = broadcast_in_dim_p.bind(win, shape=tuple(_aval_shape(g)),
                                          broadcast_dimensions=tuple(range(nb)))
            ct_u = _select(win, _zeros_like(g), g)
    elif combine == "mul":
        w_x, w_u = _product_cofactors(x, indices, updates)
        ct_x = _mul(ct, w_x) if needs[0] else None
        ct_u = _mul(_gather0(ct, indices), w_u) if needs[2] else None
    else:
        w_x, w_u = _extremum_weights(x, indices, updates, out)
        ct_x = _mul(ct, w_x) if needs[0] else None
        ct_u = _mul(_gather0(ct, indices), w_u) if needs[2] else None
    return [ct_x, None, ct_u]


def _scatter_batch(vals, dims, *, combine):
    (x, indices, updates), (dx, di, du) = vals, dims
    size = _batch_size(vals, dims)
    ishape = _aval_shape(indices)
    if di is None:  # the batch axis is a whole (unindexed) axis of operand and updates
        k, nb = ishape[-1], len(ishape) - 1
        x = _batch_at(x, dx, size, k)
        updates = _batch_at(updates, du, size, nb)
        return _scatter(x, indices, updates, combine), k
    x = _batch_at(x, dx, size, 0)
    updates = _batch_at(updates, du, size, 0)
    indices = _batch_column(bdim_to_front(indices, di), size)
    return _scatter(x, indices, updates, combine), 0


scatter_p.jvp = _scatter_jvp
scatter_p.vjp_joint = _scatter_vjp
scatter_p.batch = _scatter_batch


def _scatter_wrapper(combine, doc_example):
    def fn(operand, scatter_indices, updates, dimension_numbers=None, *,
           indices_are_sorted=False, unique_indices=False, mode=None):
        del indices_are_sorted, unique_indices  # hints for XLA; the result is the same
        if dimension_numbers is not None:
            return general_scatter(operand, scatter_indices, updates, dimension_numbers,
                                   combine, mode=mode)
        if mode is not None and GatherScatterMode.from_any(mode) is \
                GatherScatterMode.CLIP:
            raise ValueError(f"{name}: mode='clip' needs dimension_numbers (nanofn's point "
                             "form drops out-of-bounds updates)")
        indices = _check_indices_arg(scatter_indices, name)
        if not isinstance(updates, (Tracer, Array)):
            updates = np.asarray(updates, dtype=_dtype(operand))
        return scatter_p.bind(operand, indices, updates, combine=combine)
    name = "scatter" if combine == "set" else f"scatter_{combine}"
    what = {"set": "replaced by", "add": "increased by", "mul": "multiplied by",
            "min": "replaced by the minimum with", "max": "replaced by the maximum with"}[combine]
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"""Windows of `operand` {what} `updates` (a new array): XLA's scatter,
    as `jax.lax.{name}`.

    With `dimension_numbers` (a `ScatterDimensionNumbers`): each index vector (the last
    axis of `scatter_indices`) gives the start, along the axes
    `scatter_dims_to_operand_dims`, of a window whose axes are the axes
    `update_window_dims` of `updates` (the operand axes `inserted_window_dims` have size
    1 and no axis in `updates`); the other axes of `updates` match the indices' batch
    axes. A window that does not fit is dropped (`mode` None or "drop"), or moved inside
    ("clip").

    Without them (nanofn's point form, its primitive), the layout is `gather`'s: the last
    axis of `scatter_indices` (size `k`) is a point in the first `k` axes of `operand`, and
    `updates[b]` applies at `operand[tuple(scatter_indices[b])]`, so `updates.shape ==
    scatter_indices.shape[:-1] + operand.shape[k:]`; out-of-bounds points are dropped.

    Repeated indices {"keep the last update" if combine == "set" else "all apply"}.

    Args:
        operand: the array to update.
        scatter_indices: an integer array of shape `batch + (k,)`.
        updates: an array of `operand`'s dtype.
        dimension_numbers: a `ScatterDimensionNumbers`, or None for the point form.
        indices_are_sorted, unique_indices: accepted for JAX compatibility (hints only).
        mode: "drop" (or None), "clip" or "promise_in_bounds", or a `GatherScatterMode`.

    Returns:
        The updated copy of `operand`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.{name}(fnp.ones(3), fnp.array([[0], [2], [0]]), fnp.array([2.0, 3.0, 4.0]))
        {doc_example}
    """
    return fn


scatter = _scatter_wrapper("set", "Array([4., 1., 3.], dtype=float32)")
scatter_add = _scatter_wrapper("add", "Array([7., 1., 4.], dtype=float32)")
scatter_mul = _scatter_wrapper("mul", "Array([8., 1., 3.], dtype=float32)")
scatter_min = _scatter_wrapper("min", "Array([1., 1., 1.], dtype=float32)")
scatter_max = _scatter_wrapper("max", "Array([4., 1., 3.], dtype=float32)")


def scatter_sub(operand, scatter_indices, updates, dimension_numbers=None, *,
                indices_are_sorted=False, unique_indices=False, mode=None):
    """`scatter_add` of `-updates` (the same arguments; see `scatter_add`).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.scatter_sub(fnp.ones(3), fnp.array([[0], [2]]), fnp.array([2.0, 3.0]))
        Array([-1.,  1., -2.], dtype=float32)
    """
    import nanofn.numpy as fnp
    updates = fnp.negative(fnp.asarray(updates, dtype=_dtype(operand)))
    return scatter_add(operand, scatter_indices, updates, dimension_numbers,
                       indices_are_sorted=indices_are_sorted, unique_indices=unique_indices,
                       mode=mode)


def scatter_apply(operand, scatter_indices, func, dimension_numbers, *, update_shape=(),
                  indices_are_sorted=False, unique_indices=False, mode=None):
    """`operand` with `func` applied to the elements a scatter with these dimension
    numbers and updates of shape `update_shape` would write, once per time it would write
    each (as `jax.lax.scatter_apply`).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> dn = lax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=(0,),
        ...                                  scatter_dims_to_operand_dims=(0,))
        >>> lax.scatter_apply(fnp.arange(4.0), fnp.array([[1], [3]]), fnp.exp, dn,
        ...                   update_shape=(2,)).round(3)
        Array([ 0.   ,  2.718,  2.   , 20.086], dtype=float32)
    """
    import nanofn.numpy as fnp
    from nanofn.ops._control import while_loop
    operand = fnp.asarray(operand)
    times = scatter_add(fnp.zeros(operand.shape, np.int32), scatter_indices,
                        fnp.ones(update_shape, np.int32), dimension_numbers, mode=mode)

    def body(carry):
        i, x = carry
        return i + 1, fnp.where(times > i, func(x), x)
    return while_loop(lambda c: c[0] < fnp.max(times, initial=0), body,
                      (np.int32(0), operand))[1]


# ======================================================================== eager validation


def _validate_first(prim):
    """numpy is lenient where these primitives are strict (it promotes dtypes, clips slice
    bounds, truncates mismatched index lists), so the impl checks its arguments with the
    shape rule first: eager calls fail with the same clear error as traced ones. A jit
    plan, whose equations were checked when they were traced, calls `impl.raw`."""
    impl = prim.impl

    def checked(*args, **params):
        prim.abstract_eval(*[get_aval(a) for a in args], **params)
        return impl(*args, **params)

    checked.__name__ = getattr(impl, "__name__", "impl")
    checked.raw = impl
    prim.impl = checked


for _p in (concatenate_p, pad_p, rev_p, slice_p, dynamic_slice_p, dynamic_update_slice_p,
           gather_p, scatter_p):
    _validate_first(_p)
