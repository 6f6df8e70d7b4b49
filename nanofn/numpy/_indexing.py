"""Indexing: `x[idx]` and `x.at[idx].set(v)` with numpy's semantics, on arrays and tracers.

**Reading.** `getitem` first turns the index into one entry per axis (after expanding
`...`, and inserting new axes for `None` by a reshape, so a `None` acts as a `:` over a
new size-1 axis). Then:

* Basic indexing (ints, slices, `None`, traced integer scalars) uses cheap, linear
  primitives: `rev` for negative steps, `slice`, `dynamic_slice` for traced scalars, and a
  final `reshape` that drops integer-indexed axes. Their gradients are pads and updates.
* Advanced indexing (integer arrays, boolean masks) follows numpy: the index arrays (and
  any integers beside them) broadcast together into one block of axes, placed where the
  first of them stood if they are adjacent and in front otherwise. It slices first, then
  moves the indexed axes to the front and uses one `gather`.

Boolean masks become integer arrays with `nonzero`, which needs concrete values: under
`jit` a traced mask raises a `ConcretizationError` (use `where` instead). Negative indices
count from the end. A concrete out-of-range index raises `IndexError`, like numpy; a traced
one cannot be checked and is clamped into range (JAX's rule for reads).

On concrete arrays outside every transformation nothing needs tracing, so numpy applies
the index itself (it *is* the reference semantics) and the path above runs only when
something is traced: under `grad`, `jvp`, `vmap` and `jit`.

**Writing.** `x.at[idx].set(v)` (and `add`, `multiply`, `min`, ...) returns a new array.
Every indexed axis becomes a column of scatter indices (slices become ranges), the values
are broadcast to the shape `x[idx]` would have and laid out to match, and one `scatter`
writes them. Out-of-range traced indices are dropped (JAX's rule for writes).
"""

from __future__ import annotations

import builtins
import operator

import numpy as np

from nanofn import _core as core
from nanofn._core import Array, Tracer
from nanofn.ops import _base as lax
from nanofn.ops import _shape as lax_shape
from nanofn.numpy._dtypes import asarray_value

__all__ = ["getitem", "IndexUpdateHelper", "IndexUpdateRef"]

_INDEX_HELP = ("only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and "
               "integer or boolean arrays are valid indices")


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


# ------------------------------------------------------------------------ parsing


class _Entry:
    """One axis of the (reshaped) operand and what indexes it.

    kind: "slice" (start, stop, step, count), "int" (a static int, wrapped), "dyn" (a traced
    integer scalar) or "arr" (an integer array, static numpy or traced).
    """

    __slots__ = ("kind", "value", "start", "stop", "step", "count")

    def __init__(self, kind, value=None):
        self.kind = kind
        self.value = value

    @property
    def advanced(self):
        return self.kind != "slice"


def _concrete(t):
    """The numpy value behind a tracer, or None under jit (no concrete value exists)."""
    try:
        return np.asarray(core._lowest(t))
    except core.ConcretizationError:
        return None


def _bool_mask_error(shape):
    return core.NonConcreteBooleanIndexError(
        f"Array boolean indices must be concrete; got a traced boolean mask of shape "
        f"{tuple(shape)}. Indexing with a mask under jit (or make_jaxpr) would give a result "
        "whose shape depends on the mask's values. Use nanofn.numpy.where(mask, x, fill) to "
        "keep the shape static (or x.at[...] with where), or compute the mask outside jit.")


def _classify(e):
    """Turn one element of an index tuple into a tagged value."""
    if e is None:
        return ("new", None)
    if e is Ellipsis:
        return ("ellipsis", None)
    if isinstance(e, builtins.slice):
        return ("slice", e)
    if isinstance(e, (bool, np.bool_)):
        return ("mask", np.asarray(e, dtype=bool))
    if isinstance(e, (int, np.integer)):
        return ("int", operator.index(e))
    if isinstance(e, Tracer):
        if e.dtype == np.bool_:
            value = _concrete(e)
            if value is None:
                raise _bool_mask_error(e.shape)
            return ("mask", value)
        if not np.issubdtype(e.dtype, np.integer):
            raise core.IndexTypeError(
                f"arrays used as indices must be of integer (or boolean) type, got a traced "
                f"array of dtype {e.dtype.name} (shape {tuple(e.shape)}); convert it with "
                ".astype(int)")
        return ("dyn", e) if e.ndim == 0 else ("arr", e)
    if isinstance(e, (list, tuple)):
        if builtins.any(isinstance(v, (Tracer, Array)) for v in _flatten(e)):
            return _classify(asarray_value(e))
        value = np.asarray(e)
        if value.size == 0 and value.dtype.kind == "f":
            value = value.astype(np.intp)  # numpy treats [] as an empty integer index
        e = value
    if type(e) is Array:
        e = e._value
    if isinstance(e, (np.ndarray, np.generic)):
        value = np.asarray(e)
        if value.dtype == np.bool_:
            return ("mask", value)
        if not np.issubdtype(value.dtype, np.integer):
            raise core.IndexTypeError(f"arrays used as indices must be of integer (or "
                                      f"boolean) type, got dtype {value.dtype.name}")
        return ("int", int(value)) if value.ndim == 0 else ("arr", value)
    raise IndexError(f"{_INDEX_HELP}; got {type(e).__name__}: {e!r}")


def _flatten(seq):
    for v in seq:
        if isinstance(v, (list, tuple)):
            yield from _flatten(v)
        else:
            yield v


def _static_int(v, what):
    if v is None:
        return None
    if isinstance(v, Tracer):
        value = _concrete(v)
        if value is None:
            raise core.ConcretizationError(
                f"Array slice indices must be static (Python ints), but the slice {what} is "
                f"a traced value ({v.aval.str_short()}). Use nanofn.lax.dynamic_slice(x, "
                "start_indices, slice_sizes) for a window of static size at a traced "
                "position, or mark the argument static with jit(..., static_argnums=...).")
        v = value
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"slice indices must be integers or None, got {what} = {v!r}") from None


def _parse(shape, idx):
    """Normalize `idx` for an operand of `shape`.

    Returns `(new_shape, entries)`: `new_shape` is `shape` with a size-1 axis inserted for
    each `None` (and each scalar boolean), and `entries` has one `_Entry` per axis of it.
    """
    if not isinstance(idx, tuple):
        idx = (idx,)
    items = [_classify(e) for e in idx]
    n_ellipsis = builtins.sum(1 for k, _ in items if k == "ellipsis")
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = builtins.sum(v.ndim if k == "mask" else 0 if k in ("new", "ellipsis") else 1
                            for k, v in items)
    ndim = len(shape)
    if consumed > ndim:
        raise IndexError(f"too many indices for array: array is {ndim}-dimensional, but "
                         f"{consumed} were indexed")
    fill = [("slice", builtins.slice(None))] * (ndim - consumed)
    if n_ellipsis:
        pos = next(i for i, (k, _) in enumerate(items) if k == "ellipsis")
        items = items[:pos] + fill + items[pos + 1:]
    else:
        items = items + fill

    new_shape, entries, axis = [], [], 0
    for kind, value in items:
        if kind == "new":
            new_shape.append(1)
            entries.append(_make_slice(builtins.slice(None), 1))
        elif kind == "mask" and value.ndim == 0:
            # numpy: a scalar boolean adds an axis of size 1 (True) or 0 (False)
            new_shape.append(1)
            entries.append(_Entry("arr", np.zeros(int(value), np.intp)))
        elif kind == "mask":
            sizes = shape[axis:axis + value.ndim]
            for j, (n, m) in enumerate(zip(sizes, value.shape)):
                if n != m:
                    raise IndexError(
                        f"boolean index did not match indexed array along axis {axis + j}; "
                        f"size of axis is {n} but size of corresponding boolean axis is {m}")
            for nz in np.nonzero(value):
                new_shape.append(shape[axis])
                entries.append(_Entry("arr", nz))
                axis += 1
        elif kind == "slice":
            n = shape[axis]
            s = value
            s = builtins.slice(_static_int(s.start, "start"), _static_int(s.stop, "stop"),
                               _static_int(s.step, "step"))
            if s.step == 0:
                raise ValueError("slice step cannot be zero")
            new_shape.append(n)
            entries.append(_make_slice(s, n))
            axis += 1
        else:
            new_shape.append(shape[axis])
            entries.append(_Entry(kind, value))
            axis += 1
    return tuple(new_shape), entries


def _make_slice(s, n):
    e = _Entry("slice")
    e.start, e.stop, e.step = s.indices(n)
    e.count = len(range(e.start, e.stop, e.step))
    return e


def _is_full(e, n):
    return e.kind == "slice" and e.step == 1 and e.count == n


# ------------------------------------------------------------------------ index values


def _out_of_bounds(value, axis, n):
    bad = value[(value < -n) | (value >= n)]
    return IndexError(f"index {int(bad.flat[0])} is out of bounds for axis {axis} with size {n}")


def _index_value(e, axis, n, mode):
    """The integer index array (numpy or traced) of an advanced entry, negatives wrapped.

    Concrete out-of-range indices raise IndexError unless `mode` allows them; "clip" clamps.
    """
    v = e.value
    if isinstance(v, Tracer):
        if v.dtype not in (np.int32, np.int64):  # room for v + n (int8, uint8, ...)
            v = lax_shape._to_dtype(v, np.int64 if v.dtype.itemsize == 8 else np.int32)
        zero = lax._c(v, 0)
        v = lax._select(lax.lt_p.bind(v, zero), v, lax.add_p.bind(v, lax._c(v, n)))
        if mode == "clip":
            v = lax_shape._clamp(v, zero, lax._c(v, builtins.max(n - 1, 0)))
        return v
    v = np.asarray(v, dtype=np.int64)
    if mode is None and v.size and (v.min() < -n or v.max() >= n):
        raise _out_of_bounds(v, axis, n)
    v = np.where(v < 0, v + n, v)
    if mode == "clip":
        v = np.clip(v, 0, builtins.max(n - 1, 0))
    return v


def _index_dtype(values, shape):
    big = builtins.any(isinstance(v, Tracer) and v.dtype.itemsize > 4 for v in values)
    return np.dtype(np.int64 if big or builtins.max(shape, default=0) >= 2 ** 31 else np.int32)


def _stack_indices(values, bshape, dtype):
    """Broadcast the index arrays to `bshape` and stack them along a new last axis."""
    if not builtins.any(isinstance(v, Tracer) for v in values):
        cols = [np.broadcast_to(np.asarray(v, dtype), bshape) for v in values]
        return np.stack(cols, axis=-1) if cols else np.zeros(bshape + (0,), dtype)
    cols = []
    for v in values:
        v = lax_shape._to_dtype(v, dtype) if isinstance(v, Tracer) else np.asarray(v, dtype)
        v = lax.broadcast_to(v, bshape)
        cols.append(lax.reshape(v, bshape + (1,)))
    return lax_shape.concatenate(cols, len(bshape))


def _broadcast_index_shapes(values):
    shapes = [_shape(v) for v in values]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise IndexError("shape mismatch: indexing arrays could not be broadcast together with "
                         f"shapes {' '.join(str(s) for s in shapes)}") from None


# ------------------------------------------------------------------------ eager fast path


def _eager_element(e):
    if isinstance(e, Tracer):
        raise _NotEager
    if type(e) is Array:
        return e._value
    if isinstance(e, (list, tuple)):
        if builtins.any(isinstance(v, (Array, Tracer)) for v in _flatten(e)):
            raise _NotEager
    return e


class _NotEager(Exception):
    pass


def _eager_index(idx):
    """`idx` with Arrays replaced by their numpy values, for numpy to apply directly; None if
    it holds a tracer (or a list holding arrays), which needs the traceable path."""
    try:
        if isinstance(idx, tuple):
            return tuple(_eager_element(e) for e in idx)
        return _eager_element(idx)
    except _NotEager:
        return None


# ------------------------------------------------------------------------ getitem


def _apply_slices(x, shape, entries, int_as_slice):
    """Apply the slice entries (and, if `int_as_slice`, static ints as length-1 slices)."""
    rev_axes = tuple(i for i, e in enumerate(entries)
                     if e.kind == "slice" and e.step < 0 and e.count > 0)
    if rev_axes:
        x = lax_shape.rev(x, rev_axes)
    starts, limits, strides = [0] * len(shape), list(shape), [1] * len(shape)
    for i, (e, n) in enumerate(zip(entries, shape)):
        if e.kind == "slice":
            if e.count == 0:
                starts[i] = limits[i] = 0
            elif e.step > 0:
                starts[i], strides[i] = e.start, e.step
                limits[i] = e.start + (e.count - 1) * e.step + 1
            else:  # in the reversed axis, element j sits at n - 1 - j
                starts[i], strides[i] = n - 1 - e.start, -e.step
                limits[i] = starts[i] + (e.count - 1) * (-e.step) + 1
        elif e.kind == "int" and int_as_slice:
            starts[i], limits[i] = e.value, e.value + 1
    return lax_shape.slice(x, starts, limits, strides)


def _result_layout(entries):
    """numpy's placement of the advanced block: at the first advanced entry's position if
    the advanced entries are adjacent, else in front. Returns that position."""
    adv = [i for i, e in enumerate(entries) if e.advanced]
    if adv and adv[-1] - adv[0] + 1 == len(adv):
        return adv[0]
    return 0


def getitem(x, idx, mode=None, fill_value=None):
    """`x[idx]` with numpy's semantics (see the module docstring).

    Args:
        x: an array or tracer.
        idx: any numpy index.
        mode: None (default: concrete out-of-range indices raise IndexError, traced ones
            clamp), "clip" (clamp) or "fill" (out-of-range reads give `fill_value`).
        fill_value: the value read out of range with mode="fill".

    Returns:
        The indexed array.

    Example:
        >>> import nanofn.numpy as fnp
        >>> x = fnp.arange(12).reshape(3, 4)
        >>> x[1:, ::-2]
        Array([[ 7,  5],
               [11,  9]], dtype=int32)
        >>> x[fnp.array([0, 2]), -1]
        Array([ 3, 11], dtype=int32)
    """
    if mode in ("promise_in_bounds",):
        mode = "clip"
    if mode not in (None, "clip", "fill"):
        raise ValueError(f"getitem: mode must be None, 'clip', 'fill' or 'promise_in_bounds', "
                         f"got {mode!r}")
    if mode is None and type(x) is Array and not core.under_transform():
        eager_idx = _eager_index(idx)
        if eager_idx is not None:  # nothing to trace: numpy itself is the reference
            try:
                return core.wrap(np.asarray(x._value[eager_idx]))
            except IndexError as err:  # a float index: the path below explains it
                if "integer" not in str(err):
                    raise
    x = asarray_value(x)
    orig_shape = _shape(x)
    shape, entries = _parse(orig_shape, idx)
    if shape != orig_shape:
        x = lax.reshape(x, shape)
    for i, (e, n) in enumerate(zip(entries, shape)):
        if e.kind == "int":
            if mode is None and not -n <= e.value < n:
                raise IndexError(f"index {e.value} is out of bounds for axis {i} with size {n}")
            if mode is not None:  # out-of-range reads are gathered (clamped or filled)
                e.kind, e.value = "arr", np.asarray(e.value)
            else:
                e.value %= n
        elif e.kind == "dyn" and mode == "fill":  # dynamic_slice would clamp, not fill
            e.kind = "arr"

    if not builtins.any(e.kind == "arr" for e in entries):
        out = _basic(x, shape, entries)
    else:
        out = _advanced(x, shape, entries, mode, fill_value)
    return out if isinstance(out, (Array, Tracer)) else core.wrap(core.owned(np.asarray(out)))


def _basic(x, shape, entries):
    x = _apply_slices(x, shape, entries, int_as_slice=True)
    dyn = [i for i, e in enumerate(entries) if e.kind == "dyn"]
    if dyn:
        sliced = _shape(x)
        starts = [np.zeros((), np.int32)] * len(sliced)
        sizes = list(sliced)
        for i in dyn:
            starts[i] = entries[i].value
            sizes[i] = 1
        x = lax_shape.dynamic_slice(x, starts, sizes)
    out_shape = tuple(d for d, e in zip(_shape(x), entries) if not e.advanced)
    return lax.reshape(x, out_shape)


def _advanced(x, shape, entries, mode, fill_value):
    x = _apply_slices(x, shape, entries, int_as_slice=False)
    adv = [i for i, e in enumerate(entries) if e.advanced]
    rest = [i for i, e in enumerate(entries) if not e.advanced]
    values = [_index_value(entries[i], i, shape[i], "clip" if mode == "clip" else
                           (None if mode is None else "fill")) for i in adv]
    bshape = _broadcast_index_shapes(values)
    indices = _stack_indices(values, bshape, _index_dtype(values, shape))
    xt = lax.transpose(x, tuple(adv + rest))
    gmode = "fill" if mode == "fill" else "clip"
    fv = None if fill_value is None else np.asarray(fill_value).item()
    out = lax_shape.gather_p.bind(xt, indices, mode=gmode, fill_value=fv)
    pos = _result_layout(entries)
    if pos:
        nb, nr = len(bshape), len(rest)
        perm = list(range(nb, nb + pos)) + list(range(nb)) + list(range(nb + pos, nb + nr))
        out = lax.transpose(out, tuple(perm))
    return out


# ------------------------------------------------------------------------ index updates


def _scatter_update(x, idx, values, combine, mode):
    """`x` with `values` combined into `x[idx]` (numpy's index semantics)."""
    if mode in ("promise_in_bounds", "drop", "fill"):  # JAX: "fill" drops updates too
        mode = "drop"
    if mode not in (None, "drop", "clip"):
        raise ValueError(f"x.at[idx]: mode must be None, 'drop', 'fill', 'clip' or "
                         f"'promise_in_bounds' for updates, got {mode!r}")
    if (mode is None and type(x) is Array and not core.under_transform()
            and not isinstance(values, Tracer)):
        eager_idx = _eager_index(idx)
        if eager_idx is not None:  # nothing to trace: numpy's own update is the reference
            return _eager_update(x, eager_idx, values, combine)
    x = asarray_value(x)
    orig_shape = _shape(x)
    dtype = x.dtype
    shape, entries = _parse(orig_shape, idx)
    xr = lax.reshape(x, shape) if shape != orig_shape else x

    adv = [i for i, e in enumerate(entries) if e.advanced]
    sliced = [i for i, e in enumerate(entries) if not e.advanced and not _is_full(e, shape[i])]
    window = [i for i, e in enumerate(entries) if not e.advanced and _is_full(e, shape[i])]
    for i in adv:
        if entries[i].kind == "int":
            entries[i].value = np.asarray(entries[i].value)
    values_adv = [_index_value(entries[i], i, shape[i],
                               "clip" if mode == "clip" else (None if mode is None else "drop"))
                  for i in adv]
    bshape = _broadcast_index_shapes(values_adv)
    counts = tuple(entries[i].count for i in sliced)
    grid = bshape + counts
    nb, ns = len(bshape), len(sliced)
    columns = []
    for v in values_adv:  # advanced indices span the first nb grid axes
        columns.append(lax.reshape(v, _shape(v) + (1,) * ns) if isinstance(v, Tracer)
                       else np.reshape(v, _shape(v) + (1,) * ns))
    for j, i in enumerate(sliced):  # each slice spans its own grid axis
        e = entries[i]
        r = np.arange(e.start, e.stop, e.step)[:e.count]
        columns.append(r.reshape((1,) * (nb + j) + (e.count,) + (1,) * (ns - j - 1)))
    indices = _stack_indices(columns, grid, _index_dtype(values_adv, shape))

    # The values, broadcast to the shape of x[idx], laid out as (grid..., window...).
    pos = _result_layout(entries)
    rest = sliced + window
    non_adv = [i for i in range(len(entries)) if not entries[i].advanced]
    labels = [("a", i) for i in non_adv[:pos]] + [("b", j) for j in range(nb)] + \
        [("a", i) for i in non_adv[pos:]]
    sizes = {("b", j): d for j, d in enumerate(bshape)}
    sizes.update({("a", i): entries[i].count for i in non_adv})
    target_shape = tuple(sizes[lab] for lab in labels)
    v = asarray_value(values, dtype)
    if _shape(v) != target_shape:
        try:
            out_shape = tuple(np.broadcast_shapes(_shape(v), target_shape))
        except ValueError:
            out_shape = None
        if out_shape != target_shape:
            raise ValueError(f"x.at[idx]: values of shape {_shape(v)} cannot be broadcast to "
                             f"the indexed shape {target_shape}")
        v = lax.broadcast_to(v, target_shape)
    want = [("b", j) for j in range(nb)] + [("a", i) for i in rest]
    v = lax.transpose(v, tuple(labels.index(lab) for lab in want))

    perm = adv + rest
    xt = lax.transpose(xr, tuple(perm))
    out = lax_shape.scatter_p.bind(xt, indices, v, combine=combine)
    out = lax.transpose(out, tuple(np.argsort(perm).tolist()))
    return lax.reshape(out, orig_shape)


_UFUNCS = {"add": np.add, "mul": np.multiply, "min": np.minimum, "max": np.maximum}


def _eager_update(x, idx, values, combine):
    out = np.array(x._value, copy=True)
    target = out[idx]  # also raises numpy's IndexError for a bad index
    v = np.asarray(core.to_numpy(values), dtype=out.dtype)
    if v.shape != target.shape:
        try:
            ok = np.broadcast_shapes(v.shape, target.shape) == target.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"x.at[idx]: values of shape {v.shape} cannot be broadcast to the "
                             f"indexed shape {target.shape}")
    if combine == "set":
        out[idx] = v  # numpy: the last of repeated indices wins
    else:
        _UFUNCS[combine].at(out, idx, v)
    return core.wrap(out)


class IndexUpdateRef:
    """`x.at[idx]`: functional updates of `x` at `idx` (numpy index semantics).

    Every method returns a new array; `x` itself is never changed. Repeated indices
    accumulate for `add`, `multiply`, `min` and `max` (like `np.add.at`); for `set` the last
    one wins; `divide` divides by each. `power` and `apply` read then write, so with repeated
indices the last update wins.
    `mode` for updates: None (concrete out-of-range indices raise IndexError, traced ones
    are dropped), "drop", "fill" or "promise_in_bounds" (dropped), "clip" (clamped into
    range).
    """

    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array = array
        self.index = index

    def __repr__(self):
        return f"IndexUpdateRef({self.array!r}, {self.index!r})"

    def get(self, *, mode=None, fill_value=None, indices_are_sorted=False,
            unique_indices=False):
        """`x[idx]` (mode "fill" reads `fill_value` out of range; "clip" clamps).

        Example:
            >>> import nanofn.numpy as fnp
            >>> fnp.arange(3.0).at[fnp.array([0, 5])].get(mode="fill", fill_value=-1.0)
            Array([ 0., -1.], dtype=float32)
        """
        del indices_are_sorted, unique_indices  # unused: accepted for JAX compatibility
        return getitem(self.array, self.index, mode=mode, fill_value=fill_value)

    def set(self, values, *, mode=None, indices_are_sorted=False, unique_indices=False):
        """`x[idx] = values`, as a new array.

        Example:
            >>> import nanofn.numpy as fnp
            >>> fnp.zeros(4).at[1:3].set(7.0)
            Array([0., 7., 7., 0.], dtype=float32)
        """
        del indices_are_sorted, unique_indices  # unused
        return _scatter_update(self.array, self.index, values, "set", mode)

    def add(self, values, *, mode=None, indices_are_sorted=False, unique_indices=False):
        """`x[idx] += values`, accumulating over repeated indices (like `np.add.at`).

        Example:
            >>> import nanofn.numpy as fnp
            >>> fnp.zeros(3).at[fnp.array([0, 0, 2])].add(1.0)
            Array([2., 0., 1.], dtype=float32)
        """
        del indices_are_sorted, unique_indices  # unused
        return _scatter_update(self.array, self.index, values, "add", mode)

    def subtract(self, values, *, mode=None, indices_are_sorted=False, unique_indices=False):
        """`x[idx] -= values`.

        Example:
            >>> import nanofn.numpy as fnp
            >>> fnp.ones(2).at[0].subtract(3.0)
            Array([-2.,  1.], dtype=float32)
        """
        del indices_are_sorted, unique_indices  # unused
        v = asarray_value(values, self.array.dtype)
        return _scatter_update(self.array, self.index, lax.neg_p.bind(v), "add", mode)

    def multiply(self, values, *, mode=None, indices_are_sorted=False, unique_indices=False):
        """`x[idx] *= values`, multiplying over repeated indices (like `np.multiply.at`).

        Example:
            >>> import nanofn.numpy as fnp
            >>> fnp.ones(3).at[1:].multiply(fnp.array([2.0, 3.0]))
            Array([1., 2., 3.], dtype=float32)
        """
        del indices_are_sorted, unique_indices  # unused
        return _scatter_update(self.array, self.index, values, "mul", mode)

    mul = multiply

    def divide(self, values, *, mode=None, indices_are_sorted=False, unique_indices=False):
        """`x[idx] /= values` for a float `x`, over repeated indices too.

        Example:
            >>> import nanofn.numpy as fnp
            >>> fnp.ones(2).at[1].divide(4.0)
            Array([1.  , 0.25], dtype=float32)
        """
        del indices_are_sorted, unique_indices  # unused
        x = self.array
        if not np.issubdtype(x.dtype, np.inexact):
            raise TypeError(f"x.at[idx].divide requires a float array, got dtype "
                            f"{x.dtype.name}; convert x with .astype(float) first")
        v = asarray_value(values, x.dtype)
        return _scatter_update(x, self.index, lax.div_p.bind(lax._c(v, 1), v), "mul", mode)

    def power(self, values, *, mode=None, indices_are_sorted=False, unique_indices=False):
        """`x[idx] **= values`, once for each time an index occurs (as numpy's
        `np.power.at` and JAX): an element hit twice is raised to the product of the two
        exponents.

        Example:
            >>> import nanofn.numpy as fnp
            >>> fnp.full(3, 2.0).at[fnp.array([0, 2, 2])].power(3)
            Array([  8.,   2., 512.], dtype=float32)
        """
        del indices_are_sorted, unique_indices  # unused
        from nanofn.numpy import ones_like, power, where, zeros
        x = self.array
        exponents = _scatter_update(ones_like(x), self.index, values, "mul", mode)
        hit = _scatter_update(zeros(_shape(x), bool), self.index, True, "set", mode)
        return where(hit, asarray_value(power(x, exponents), x.dtype), x)

    def min(self, values, *, mode=None, indices_are_sorted=False, unique_indices=False):
        """`x[idx] = minimum(x[idx], values)`, over repeated indices too.

        Example:
            >>> import nanofn.numpy as fnp
            >>> fnp.ones(3).at[fnp.array([0, 0])].min(fnp.array([3.0, -1.0]))
            Array([-1.,  1.,  1.], dtype=float32)
        """
        del indices_are_sorted, unique_indices  # unused
        return _scatter_update(self.array, self.index, values, "min", mode)

    def max(self, values, *, mode=None, indices_are_sorted=False, unique_indices=False):
        """`x[idx] = maximum(x[idx], values)`, over repeated indices too.

        Example:
            >>> import nanofn.numpy as fnp
            >>> fnp.zeros(2).at[1].max(5.0)
            Array([0., 5.], dtype=float32)
        """
        del indices_are_sorted, unique_indices  # unused
        return _scatter_update(self.array, self.index, values, "max", mode)

    def apply(self, func, *, mode=None, indices_are_sorted=False, unique_indices=False):
        """`x[idx] = func(x[idx])` for an elementwise `func`, applied once for each time an
        index occurs (as numpy's `ufunc.at` and JAX).

        Example:
            >>> import nanofn.numpy as fnp
            >>> fnp.arange(3.0).at[fnp.array([1, 2, 2])].apply(lambda v: v * 10)
            Array([  0.,  10., 200.], dtype=float32)
        """
        del indices_are_sorted, unique_indices  # unused
        from nanofn.numpy import max as max_, where, zeros
        x = self.array
        cur = getitem(x, self.index, mode="clip" if mode is not None else None)
        once = _scatter_update(x, self.index, asarray_value(func(cur), x.dtype), "set", mode)
        counts = _scatter_update(zeros(_shape(x), np.int32), self.index, 1, "add", mode)
        most = max_(counts) if np.prod(_shape(counts)) else 0

        def again(k, y):  # the elements hit more than k times, once more
            return where(counts > k, asarray_value(func(y), x.dtype), y)
        if not isinstance(most, Tracer):  # concrete indices: as many passes as needed
            for k in range(1, int(most)):
                once = again(k, once)
            return once
        from nanofn.ops import fori_loop
        return fori_loop(1, most, again, once)


class IndexUpdateHelper:
    """The object behind `x.at`: `x.at[idx]` gives an `IndexUpdateRef`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> x = fnp.zeros((2, 3))
        >>> y = x.at[0, 1:].set(1.0)
        >>> y
        Array([[0., 1., 1.],
               [0., 0., 0.]], dtype=float32)
        >>> float(x.sum())  # x is unchanged
        0.0
    """

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, index):
        return IndexUpdateRef(self.array, index)

    def __repr__(self):
        return f"IndexUpdateHelper({self.array!r})"
