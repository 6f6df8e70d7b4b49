"""Segment reductions, as `jax.ops`: `segment_sum`, `segment_prod`, `segment_max`,
`segment_min`.

A segment reduction combines the rows of `data` that share a segment id: row `i` goes into
output row `segment_ids[i]`. Each is one point scatter (`lax.scatter_add`, ...) into an
array filled with the combination's identity (0, 1, the dtype's lowest or highest value),
so gradients, `vmap` and `jit` come from the scatter's rules; ids outside
`[0, num_segments)` are dropped (JAX's default mode) or clamped (`mode="clip"`).
`nanofn.ops` is also `nanofn.lax`, so these names are importable from both.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn import ops
    >>> ops.segment_sum(fnp.arange(5), fnp.array([0, 0, 1, 1, 2]))
    Array([1, 5, 4], dtype=int32)
"""

from __future__ import annotations

import operator

import numpy as np

from nanofn import _core
from nanofn._core import Tracer
from nanofn.ops import _base, _shape
from nanofn.ops._xla_indexing import GatherScatterMode

__all__ = ["segment_sum", "segment_prod", "segment_max", "segment_min"]


def _identity(combine, dtype):
    """The value that leaves every element unchanged under `combine`, in `dtype`."""
    if combine == "add":
        return 0
    if combine == "mul":
        return 1
    if dtype == np.bool_:
        return combine == "min"
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return info.max if combine == "min" else info.min
    return np.inf if combine == "min" else -np.inf


def _num_segments(name, segment_ids, num_segments):
    if num_segments is None:
        try:
            ids = _core._lowest(segment_ids) if isinstance(segment_ids, Tracer) \
                else _core.to_numpy(segment_ids)
        except _core.ConcretizationError:
            raise _core.ConcretizationError(
                f"{name}: num_segments (the output's length) must be given when the segment "
                "ids are traced (under jit: pass it as a static argument)") from None
        return int(ids.max()) + 1 if ids.size else 0
    try:
        num_segments = operator.index(num_segments)
    except TypeError:
        raise TypeError(f"{name}: num_segments must be an int, got {num_segments!r}") from None
    if num_segments < 0:
        raise ValueError(f"{name}: num_segments must be non-negative, got {num_segments}")
    return num_segments


def _segment(name, combine, reducer, data, segment_ids, num_segments, bucket_size, mode):
    import nanofn.numpy as fnp  # the array layer sits above the primitives
    data, segment_ids = fnp.asarray(data), fnp.asarray(segment_ids)
    if not np.issubdtype(segment_ids.dtype, np.integer):
        raise TypeError(f"{name}: segment_ids must be integers, got dtype "
                        f"{segment_ids.dtype.name}")
    ids_shape, shape = tuple(segment_ids.shape), tuple(data.shape)
    if ids_shape != shape[:len(ids_shape)]:
        raise ValueError(f"{name}: segment_ids of shape {ids_shape} must match the leading "
                         f"axes of data, of shape {shape}")
    n = _num_segments(name, segment_ids, num_segments)
    mode = GatherScatterMode.from_any(mode)
    if mode is GatherScatterMode.CLIP:
        segment_ids = fnp.clip(segment_ids, 0, max(n - 1, 0))
    dtype = data.dtype
    row = shape[len(ids_shape):]
    init = _identity(combine, dtype)
    if bucket_size is None:
        out = _base.full((n,) + row, init, dtype)
        return _shape.scatter_p.bind(out, segment_ids[..., None], data, combine=combine)
    if len(ids_shape) != 1:
        raise ValueError(f"{name}: bucket_size needs one-dimensional segment_ids, got shape "
                         f"{ids_shape}")
    bucket_size = operator.index(bucket_size)
    if bucket_size <= 0:
        raise ValueError(f"{name}: bucket_size must be positive, got {bucket_size}")
    buckets = -(-ids_shape[0] // bucket_size)
    out = _base.full((buckets, n) + row, init, dtype)
    which = np.arange(ids_shape[0], dtype=segment_ids.dtype) // bucket_size
    points = fnp.stack([fnp.asarray(which), segment_ids], axis=-1)
    out = _shape.scatter_p.bind(out, points, data, combine=combine)
    return reducer(out, axis=0).astype(dtype)


def _make(name, combine, what, reducer_name, example, result):
    def fn(data, segment_ids, num_segments=None, indices_are_sorted=False,
           unique_indices=False, bucket_size=None, mode=None):
        del indices_are_sorted, unique_indices  # hints for XLA; the result is the same
        import nanofn.numpy as fnp
        return _segment(name, combine, getattr(fnp, reducer_name), data, segment_ids,
                        num_segments, bucket_size, mode)
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = __name__
    fn.__doc__ = f"""The {what} of the rows of `data` in each segment, as `jax.ops.{name}`.

    Row `i` of `data` (its leading `segment_ids.ndim` axes index rows) goes into output row
    `segment_ids[i]`; a segment with no rows holds the identity ({_identity_text[combine]}).

    Args:
        data: the values to combine.
        segment_ids: an integer array matching the leading axes of `data`; ids need not be
            sorted and may repeat.
        num_segments: the output's length; by default `max(segment_ids) + 1`, which needs
            concrete ids (under `jit`, pass it as a static argument).
        indices_are_sorted, unique_indices: accepted for JAX compatibility (hints only).
        bucket_size: combine each run of `bucket_size` rows separately, then the runs (as
            JAX does, for a steadier rounding); None: all at once.
        mode: ids outside `[0, num_segments)` are dropped (None, "drop",
            "promise_in_bounds") or clamped into range ("clip").

    Returns:
        An array of shape `(num_segments,) + data.shape[segment_ids.ndim:]` and `data`'s
        dtype.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import ops
        >>> ops.{name}({example}, fnp.array([0, 0, 1, 1, 2, 2]))
        {result}
    """
    return fn


_identity_text = {"add": "0", "mul": "1", "max": "the dtype's lowest value, -inf for floats",
                  "min": "the dtype's highest value, inf for floats"}

segment_sum = _make("segment_sum", "add", "sum", "sum", "fnp.arange(6)",
                    "Array([1, 5, 9], dtype=int32)")
segment_prod = _make("segment_prod", "mul", "product", "prod", "fnp.arange(6)",
                     "Array([ 0,  6, 20], dtype=int32)")
segment_max = _make("segment_max", "max", "maximum", "max", "fnp.array([3., 1., 4., 1., 5., 9.])",
                    "Array([3., 4., 9.], dtype=float32)")
segment_min = _make("segment_min", "min", "minimum", "min", "fnp.array([3., 1., 4., 1., 5., 9.])",
                    "Array([1., 1., 5.], dtype=float32)")
