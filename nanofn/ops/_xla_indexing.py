"""XLA's general gather and scatter (`lax.gather`, `lax.scatter_add`, ... with dimension
numbers), written with nanofn's point gather and scatter.

nanofn has one gather primitive and one scatter primitive, both over *points*: the last
axis of the indices is a position in the leading axes of the operand. XLA's forms are
more general: every index picks the *start* of a slice (a window) whose axes may be
dropped (`collapsed_slice_dims`, `inserted_window_dims`), land anywhere in the result
(`offset_dims`, `update_window_dims`), or pair with an axis of the indices
(`operand_batching_dims`). Here each form becomes the list of every point it reads or
writes, computed from the starts with a few array operations, then one point primitive
call and a transpose. Gradients, `vmap` and `jit` come from those primitives' rules.

Out-of-bounds starts follow `GatherScatterMode`: "clip" moves the window inside the
operand; "fill" (gather) reads `fill_value` for the whole window and "drop" (scatter; its
default) skips the whole window; "promise_in_bounds" (gather's default) trusts the caller:
here, as in XLA, a gather clips; a scatter drops point by point.
"""

from __future__ import annotations

import enum
import math
from typing import NamedTuple

import numpy as np

from nanofn._core import Array, Tracer

__all__ = ["GatherDimensionNumbers", "ScatterDimensionNumbers", "GatherScatterMode",
           "general_gather", "general_scatter"]


class GatherScatterMode(enum.Enum):
    """How a gather or scatter treats a window that does not fit in the operand."""

    CLIP = enum.auto()
    FILL_OR_DROP = enum.auto()
    PROMISE_IN_BOUNDS = enum.auto()
    ONE_HOT = enum.auto()

    @staticmethod
    def from_any(s) -> "GatherScatterMode":
        """The mode named by `s`: a `GatherScatterMode`, "clip", "fill", "drop",
        "promise_in_bounds", or None (fill for a gather, drop for a scatter)."""
        if isinstance(s, GatherScatterMode):
            return s
        if s == "clip":
            return GatherScatterMode.CLIP
        if s is None or s in ("fill", "drop"):
            return GatherScatterMode.FILL_OR_DROP
        if s == "promise_in_bounds":
            return GatherScatterMode.PROMISE_IN_BOUNDS
        if s == "one_hot":
            return GatherScatterMode.ONE_HOT
        raise ValueError(f"Unknown gather mode {s!r}: use 'clip', 'fill', 'drop' or "
                         "'promise_in_bounds'")


class GatherDimensionNumbers(NamedTuple):
    """XLA's description of a gather (see `nanofn.lax.gather`).

    offset_dims: the axes of the result that hold the window's axes (in order).
    collapsed_slice_dims: operand axes whose window has size 1 and is dropped.
    start_index_map: the operand axis each entry of an index vector starts.
    operand_batching_dims, start_indices_batching_dims: operand axes taken at the
        position of the paired axis of the indices (a batch of gathers in one).
    """
    offset_dims: tuple
    collapsed_slice_dims: tuple
    start_index_map: tuple
    operand_batching_dims: tuple = ()
    start_indices_batching_dims: tuple = ()


class ScatterDimensionNumbers(NamedTuple):
    """XLA's description of a scatter (see `nanofn.lax.scatter_add`).

    update_window_dims: the axes of `updates` that hold the window's axes (in order).
    inserted_window_dims: operand axes the window has size 1 in (absent from `updates`).
    scatter_dims_to_operand_dims: the operand axis each entry of an index vector starts.
    operand_batching_dims, scatter_indices_batching_dims: operand axes written at the
        position of the paired axis of the indices.
    """
    update_window_dims: tuple
    inserted_window_dims: tuple
    scatter_dims_to_operand_dims: tuple
    operand_batching_dims: tuple = ()
    scatter_indices_batching_dims: tuple = ()


def _np_or_traced(x):
    if isinstance(x, (Tracer, Array)):
        return x
    return np.asarray(x)


def _points(name, shape, indices, index_map, batching, window_dims, window_sizes, mode):
    """Every operand position a gather or scatter touches: an integer array of shape
    `batch + window + (len(shape),)`, batch being the indices' shape without the index
    vector axis; whole windows out of bounds are pointed at -1 with FILL_OR_DROP."""
    import nanofn.numpy as fnp
    from nanofn import lax

    indices = _np_or_traced(indices)
    idx_shape = tuple(np.shape(indices))
    if len(idx_shape) < 1 or idx_shape[-1] != len(index_map):
        raise ValueError(f"{name}: the last axis of the indices (shape {idx_shape}) must "
                         f"have one entry per axis of the index map {tuple(index_map)}")
    if not np.issubdtype(np.dtype(fnp.result_type(indices)), np.integer):
        raise TypeError(f"{name}: indices must be integers, got dtype "
                        f"{np.dtype(fnp.result_type(indices)).name}")
    batch = idx_shape[:-1]
    nb, nw = len(batch), len(window_dims)
    dtype = np.int64 if max(shape, default=0) > np.iinfo(np.int32).max else np.int32
    indices = fnp.asarray(indices).astype(dtype)
    operand_batch, index_batch = batching
    starts, valid = [], None
    for d, n in enumerate(shape):
        size = window_sizes.get(d, 1)
        if d in index_map:
            s = indices[..., index_map.index(d)]
            if mode is GatherScatterMode.FILL_OR_DROP:
                ok = (s >= 0) & (s <= n - size)
                valid = ok if valid is None else valid & ok
            elif mode is GatherScatterMode.CLIP or name == "gather":
                # clip; a gather's "promise_in_bounds" clips too, as XLA does (a scatter's
                # drops out-of-bounds points one by one)
                s = fnp.clip(s, 0, max(n - size, 0))
        elif d in operand_batch:
            s = lax.broadcasted_iota(dtype, batch, index_batch[operand_batch.index(d)])
        else:
            s = fnp.zeros(batch, dtype)
        s = fnp.reshape(s, batch + (1,) * nw)
        if d in window_dims:
            k = window_dims.index(d)
            offset = np.arange(size, dtype=dtype).reshape((1,) * (nb + k) + (size,) +
                                                         (1,) * (nw - k - 1))
            s = s + offset
        starts.append(fnp.broadcast_to(s, batch + tuple(window_sizes[d] for d in window_dims)))
    points = fnp.stack(starts, axis=-1) if starts else fnp.zeros(batch + (0,), dtype)
    if valid is not None:
        points = fnp.where(fnp.reshape(valid, batch + (1,) * (nw + 1)), points, -1)
    return points


def _check_dims(name, what, dims, rank):
    dims = tuple(int(d) for d in dims)
    if any(d < 0 or d >= rank for d in dims) or len(set(dims)) != len(dims):
        raise ValueError(f"{name}: {what} {dims} must be distinct axes in [0, {rank})")
    return dims


def general_gather(operand, start_indices, dimension_numbers, slice_sizes, *, mode=None,
                   fill_value=None):
    """`lax.gather` with XLA's dimension numbers (see `nanofn.lax.gather`)."""
    import nanofn.numpy as fnp
    from nanofn.ops import _shape

    name = "gather"
    dn = dimension_numbers
    if not isinstance(dn, GatherDimensionNumbers):
        dn = GatherDimensionNumbers(*dn)
    operand = fnp.asarray(operand)
    shape = tuple(operand.shape)
    rank = len(shape)
    # a gather's default is JAX's: promise_in_bounds, which XLA (and nanofn) clips
    mode = GatherScatterMode.from_any("promise_in_bounds" if mode is None else mode)
    if mode is GatherScatterMode.ONE_HOT:
        raise NotImplementedError("gather: mode='one_hot' is not supported")
    slice_sizes = tuple(int(s) for s in slice_sizes)
    if len(slice_sizes) != rank:
        raise ValueError(f"gather: slice_sizes {slice_sizes} must have one entry per axis "
                         f"of the operand (shape {shape})")
    for d, (s, n) in enumerate(zip(slice_sizes, shape)):
        if not 0 <= s <= n:
            raise ValueError(f"gather: slice_sizes[{d}] = {s} must lie in [0, {n}] (operand "
                             f"shape {shape})")
    collapsed = _check_dims(name, "collapsed_slice_dims", dn.collapsed_slice_dims, rank)
    index_map = _check_dims(name, "start_index_map", dn.start_index_map, rank)
    operand_batch = _check_dims(name, "operand_batching_dims", dn.operand_batching_dims, rank)
    idx_rank = len(np.shape(start_indices)) - 1
    index_batch = _check_dims(name, "start_indices_batching_dims",
                              dn.start_indices_batching_dims, idx_rank)
    if len(operand_batch) != len(index_batch):
        raise ValueError("gather: operand_batching_dims and start_indices_batching_dims "
                         "must have the same length")
    for d in collapsed + operand_batch:
        if slice_sizes[d] != 1:
            raise ValueError(f"gather: slice_sizes[{d}] must be 1 for a collapsed or batching "
                             f"axis, got {slice_sizes[d]}")
    window_dims = [d for d in range(rank) if d not in collapsed and d not in operand_batch]
    out_rank = idx_rank + len(window_dims)
    offset_dims = _check_dims(name, "offset_dims", dn.offset_dims, out_rank)
    if len(offset_dims) != len(window_dims):
        raise ValueError(f"gather: offset_dims {offset_dims} must name one result axis per "
                         f"window axis ({len(window_dims)}: the operand axes neither "
                         "collapsed nor batching)")
    if list(offset_dims) != sorted(offset_dims):
        raise ValueError(f"gather: offset_dims {offset_dims} must be sorted")
    sizes = {d: slice_sizes[d] for d in range(rank)}
    points = _points(name, shape, start_indices, index_map, (operand_batch, index_batch),
                     window_dims, sizes, mode)
    point_mode = "fill" if mode is GatherScatterMode.FILL_OR_DROP else "clip"
    out = _shape.gather(operand, points, mode=point_mode, fill_value=fill_value)
    # out: batch axes, then window axes; the window axes go to offset_dims
    batch_axes = iter(range(idx_rank))
    perm = [idx_rank + offset_dims.index(p) if p in offset_dims else next(batch_axes)
            for p in range(out_rank)]
    return fnp.transpose(out, perm) if perm != list(range(out_rank)) else out


def general_scatter(operand, scatter_indices, updates, dimension_numbers, combine, *,
                    mode=None):
    """`lax.scatter*` with XLA's dimension numbers (see `nanofn.lax.scatter_add`)."""
    import nanofn.numpy as fnp
    from nanofn.ops import _shape

    name = "scatter" if combine == "set" else f"scatter_{combine}"
    dn = dimension_numbers
    if not isinstance(dn, ScatterDimensionNumbers):
        dn = ScatterDimensionNumbers(*dn)
    operand = fnp.asarray(operand)
    updates = fnp.asarray(updates, dtype=operand.dtype)
    shape, ushape = tuple(operand.shape), tuple(updates.shape)
    rank = len(shape)
    mode = GatherScatterMode.from_any(mode)
    if mode is GatherScatterMode.ONE_HOT:
        raise NotImplementedError(f"{name}: mode='one_hot' is not supported")
    inserted = _check_dims(name, "inserted_window_dims", dn.inserted_window_dims, rank)
    index_map = _check_dims(name, "scatter_dims_to_operand_dims",
                            dn.scatter_dims_to_operand_dims, rank)
    operand_batch = _check_dims(name, "operand_batching_dims", dn.operand_batching_dims, rank)
    idx_rank = len(np.shape(scatter_indices)) - 1
    index_batch = _check_dims(name, "scatter_indices_batching_dims",
                              dn.scatter_indices_batching_dims, idx_rank)
    if len(operand_batch) != len(index_batch):
        raise ValueError(f"{name}: operand_batching_dims and scatter_indices_batching_dims "
                         "must have the same length")
    window_axes = _check_dims(name, "update_window_dims", dn.update_window_dims, len(ushape))
    window_dims = [d for d in range(rank) if d not in inserted and d not in operand_batch]
    if len(window_axes) != len(window_dims):
        raise ValueError(f"{name}: update_window_dims {window_axes} must name one axis of "
                         f"updates (shape {ushape}) per window axis of the operand "
                         f"({len(window_dims)}: the axes neither inserted nor batching)")
    scatter_axes = [a for a in range(len(ushape)) if a not in window_axes]
    batch = tuple(np.shape(scatter_indices))[:-1]
    if tuple(ushape[a] for a in scatter_axes) != batch:
        raise ValueError(f"{name}: the axes of updates (shape {ushape}) outside "
                         f"update_window_dims must match the indices' batch shape {batch}")
    sizes = {d: ushape[a] for d, a in zip(window_dims, window_axes)}
    for d, s in sizes.items():
        if s > shape[d]:
            raise ValueError(f"{name}: the window is {s} along operand axis {d}, longer than "
                             f"the operand (shape {shape})")
    points = _points(name, shape, scatter_indices, index_map, (operand_batch, index_batch),
                     window_dims, sizes, mode)
    perm = scatter_axes + list(window_axes)
    if perm != list(range(len(ushape))):
        updates = fnp.transpose(updates, perm)
    if math.prod(points.shape[:-1]) == 0:
        return operand
    return _shape.scatter_p.bind(operand, points, updates, combine=combine)
