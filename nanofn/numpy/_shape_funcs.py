"""numpy's joining, splitting, tiling, flipping, padding and gathering functions.

Everything here is written with the shape primitives of `nanofn.ops` (`concatenate`,
`slice`, `pad`, `rev`, `gather`, ...) and numpy's argument conventions: negative axes,
`axis=None` meaning the flattened array, type promotion across inputs, and errors that
name the shapes at fault.
"""

from __future__ import annotations

import builtins
import operator

import numpy as np

from nanofn import _core as core
from nanofn._core import Array, Tracer
from nanofn.ops import _base as lax
from nanofn.ops import _shape as lax_shape
from nanofn.numpy import _lax_numpy as lnp
from nanofn.numpy._dtypes import asarray_value, dtype_of, promote
from nanofn.numpy._lax_numpy import canonicalize_axis, _wrap_output

__all__ = [
    "concatenate", "hstack", "vstack", "dstack", "column_stack", "split", "array_split",
    "tile", "repeat", "flip", "fliplr", "flipud", "roll", "pad", "swapaxes", "atleast_1d",
    "atleast_2d", "atleast_3d", "take", "take_along_axis", "diagonal", "trace", "tril",
    "triu", "meshgrid", "broadcast_arrays", "diag", "ix_", "rot90", "append",
]


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _ndim(x):
    return len(_shape(x))


def _arrays(arrays, fname):
    if isinstance(arrays, (Array, Tracer, np.ndarray)):
        arrays = [arrays[i] for i in range(_shape(arrays)[0])] if _ndim(arrays) else [arrays]
    arrays = list(arrays)
    if not arrays:
        raise ValueError(f"{fname}: need at least one array to concatenate")
    return arrays


# ------------------------------------------------------------------------ joining


def concatenate(arrays, axis=0, dtype=None):
    """Join arrays along an existing axis (numpy semantics: promotion, negative axes).

    Args:
        arrays: a sequence of arrays with equal shapes except along `axis`.
        axis: the axis to join along; None flattens every array first.
        dtype: the result's dtype (default: the promoted dtype of the inputs).

    Returns:
        The joined array.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.concatenate([fnp.zeros((1, 2)), fnp.ones((2, 2))], axis=-2).shape
        (3, 2)
    """
    arrays = _arrays(arrays, "concatenate")
    arrays = promote(*arrays) if dtype is None else [asarray_value(a, dtype)
                                                     for a in arrays]
    if axis is None:
        arrays = [lnp.ravel(a) for a in arrays]
        axis = 0
    shapes = [_shape(a) for a in arrays]
    ndim = len(shapes[0])
    if ndim == 0:
        raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated")
    for i, s in enumerate(shapes):
        if len(s) != ndim:
            raise core.ShapeError(
                f"concatenate: all the input arrays must have the same number of dimensions, "
                f"but the array at index 0 has {ndim} dimension(s) (shape {shapes[0]}) and "
                f"the array at index {i} has {len(s)} dimension(s) (shape {s})")
    axis = canonicalize_axis(axis, ndim)
    for i, s in enumerate(shapes):
        for d in range(ndim):
            if d != axis and s[d] != shapes[0][d]:
                raise core.ShapeError(
                    f"concatenate: all the input array dimensions except for the concatenation "
                    f"axis must match exactly, but along dimension {d}, the array at index 0 "
                    f"has size {shapes[0][d]} and the array at index {i} has size {s[d]}")
    return _wrap_output(lax_shape.concatenate(arrays, axis))


def atleast_1d(*arys):
    """View inputs as arrays with at least one dimension (one array, or a list of them).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.atleast_1d(1.0).shape
        (1,)
    """
    out = [_wrap_output(lnp.reshape(a, (1,)) if _ndim(a) == 0 else asarray_value(a))
           for a in map(asarray_value, arys)]
    return out[0] if len(out) == 1 else out


def atleast_2d(*arys):
    """View inputs as arrays with at least two dimensions: `(n,)` becomes `(1, n)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.atleast_2d(fnp.ones(3)).shape
        (1, 3)
    """
    out = []
    for a in map(asarray_value, arys):
        s = _shape(a)
        out.append(_wrap_output(lnp.reshape(a, (1,) * (2 - len(s)) + s) if len(s) < 2 else a))
    return out[0] if len(out) == 1 else out


def atleast_3d(*arys):
    """View inputs as arrays with at least three dimensions: `(n,)` becomes `(1, n, 1)` and
    `(m, n)` becomes `(m, n, 1)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.atleast_3d(fnp.ones((2, 3))).shape
        (2, 3, 1)
    """
    out = []
    for a in map(asarray_value, arys):
        s = _shape(a)
        new = {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}.get(len(s), s)
        out.append(_wrap_output(lnp.reshape(a, new) if new != s else a))
    return out[0] if len(out) == 1 else out


def _as_list(x):
    return x if isinstance(x, list) else [x]


def hstack(tup, dtype=None):
    """Join arrays column-wise: along axis 1, or axis 0 for 1-d arrays.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.hstack([fnp.ones(2), fnp.zeros(3)]).shape
        (5,)
    """
    arrays = _as_list(atleast_1d(*_arrays(tup, "hstack")))
    axis = 0 if _ndim(arrays[0]) == 1 else 1
    return concatenate(arrays, axis=axis, dtype=dtype)


def vstack(tup, dtype=None):
    """Join arrays row-wise (along axis 0, after `atleast_2d`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.vstack([fnp.ones(3), fnp.zeros(3)]).shape
        (2, 3)
    """
    return concatenate(_as_list(atleast_2d(*_arrays(tup, "vstack"))), axis=0, dtype=dtype)


def dstack(tup, dtype=None):
    """Join arrays depth-wise (along axis 2, after `atleast_3d`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.dstack([fnp.ones((2, 2)), fnp.zeros((2, 2))]).shape
        (2, 2, 2)
    """
    return concatenate(_as_list(atleast_3d(*_arrays(tup, "dstack"))), axis=2, dtype=dtype)


def column_stack(tup):
    """Join 1-d arrays as columns of a 2-d array (2-d arrays are joined as they are).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.column_stack([fnp.ones(3), fnp.zeros(3)]).shape
        (3, 2)
    """
    arrays = []
    for a in map(asarray_value, _arrays(tup, "column_stack")):
        s = _shape(a)
        arrays.append(lnp.reshape(a, (s[0] if s else 1, 1)) if len(s) < 2 else a)
    return concatenate(arrays, axis=1)


def append(arr, values, axis=None):
    """`concatenate((arr, values), axis)`; with `axis=None` both are flattened first.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.append(fnp.array([1, 2]), 3)
        Array([1, 2, 3], dtype=int32)
    """
    arr, values = promote(arr, values)  # a Python scalar stays weakly typed
    if axis is None:
        return concatenate([lnp.ravel(arr), lnp.ravel(values)], axis=0)
    return concatenate([arr, values], axis=axis)


# ------------------------------------------------------------------------ splitting


def _split_points(indices_or_sections, n, fname, even):
    if isinstance(indices_or_sections, Tracer):
        raise core.ConcretizationError(
            f"{fname}: indices_or_sections must be static (the result's shapes depend on it); "
            "got a traced value")
    if np.ndim(core.to_numpy(indices_or_sections)) == 0:
        sections = operator.index(core.to_numpy(indices_or_sections))
        if sections <= 0:
            raise ValueError(f"{fname}: number of sections must be larger than 0, got {sections}")
        if sections > n + 2 ** 20:
            raise ValueError(f"{fname}: {sections} sections is far more than the axis length {n}")
        if even and n % sections:
            raise ValueError(f"{fname}: array split does not result in an equal division: an "
                             f"axis of size {n} cannot be split into {sections} equal sections; "
                             "use array_split for unequal sections")
        q, r = divmod(n, sections)
        sizes = [q + 1] * r + [q] * (sections - r)
        return list(np.cumsum([0] + sizes))
    points = [operator.index(i) for i in np.asarray(core.to_numpy(indices_or_sections)).tolist()]
    return [0] + points + [n]


def array_split(ary, indices_or_sections, axis=0):
    """Split into sub-arrays along `axis`; `n` sections need not divide the axis evenly
    (the first `size % n` sections get one extra element).

    Args:
        ary: the array.
        indices_or_sections: a number of sections, or the sorted split points.
        axis: the axis to split.

    Returns:
        A list of arrays.

    Example:
        >>> import nanofn.numpy as fnp
        >>> [a.shape for a in fnp.array_split(fnp.arange(5), 3)]
        [(2,), (2,), (1,)]
    """
    return _split(ary, indices_or_sections, axis, "array_split", even=False)


def split(ary, indices_or_sections, axis=0):
    """Split into equal sections (an int that divides the axis) or at the given indices.

    Example:
        >>> import nanofn.numpy as fnp
        >>> [a.tolist() for a in fnp.split(fnp.arange(6), [1, 4])]
        [[0], [1, 2, 3], [4, 5]]
    """
    return _split(ary, indices_or_sections, axis, "split", even=True)


def _split(ary, indices_or_sections, axis, fname, even):
    ary = asarray_value(ary)
    shape = _shape(ary)
    if not shape:
        raise ValueError(f"{fname}: cannot split a 0-d array")
    axis = canonicalize_axis(axis, len(shape))
    n = shape[axis]
    points = _split_points(indices_or_sections, n, fname, even)
    out = []
    for lo, hi in zip(points[:-1], points[1:]):
        lo = builtins.min(builtins.max(lo + n if lo < 0 else lo, 0), n)
        hi = builtins.min(builtins.max(hi + n if hi < 0 else hi, 0), n)
        hi = builtins.max(hi, lo)
        out.append(_wrap_output(lax_shape.slice_in_dim(ary, lo, hi, 1, axis)))
    return out


# ------------------------------------------------------------------------ tiling


def tile(A, reps):
    """Repeat the whole array `reps` times along each axis (numpy's rules for differing
    ranks: the shorter of `A.shape` and `reps` is padded with leading ones).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.tile(fnp.array([1, 2]), (2, 2))
        Array([[1, 2, 1, 2],
               [1, 2, 1, 2]], dtype=int32)
    """
    A = asarray_value(A)
    reps = (reps,) if np.ndim(reps) == 0 else tuple(reps)
    reps = tuple(operator.index(r) for r in reps)
    if builtins.any(r < 0 for r in reps):
        raise ValueError(f"tile: reps {reps} must be non-negative")
    shape = _shape(A)
    n = builtins.max(len(shape), len(reps))
    shape = (1,) * (n - len(shape)) + shape
    reps = (1,) * (n - len(reps)) + reps
    # broadcast to (r0, a0, r1, a1, ...), then merge each pair
    inter = tuple(d for pair in zip(reps, shape) for d in pair)
    x = lax.reshape(A, shape)
    x = lax.broadcast_in_dim(x, inter, tuple(range(1, 2 * n, 2)))
    return _wrap_output(lax.reshape(x, tuple(r * s for r, s in zip(reps, shape))))


def repeat(a, repeats, axis=None, *, total_repeat_length=None):
    """Repeat each element `repeats` times along `axis` (the flattened array by default).

    `repeats` is an int, or an array with one count per element along `axis`. Under `jit`
    (traced counts) pass `total_repeat_length`: the output length, static. If the counts sum
    to less, the last element fills the rest; if more, the output is cut.

    Args:
        a: the array.
        repeats: an int or an integer array broadcastable to `a.shape[axis]`.
        axis: the axis to repeat along (None: flatten `a` first).
        total_repeat_length: the static output length (required for traced `repeats`).

    Returns:
        The array with repeated elements.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.repeat(fnp.array([[1, 2], [3, 4]]), fnp.array([1, 2]), axis=0)
        Array([[1, 2],
               [3, 4],
               [3, 4]], dtype=int32)
    """
    a = asarray_value(a)
    if axis is None:
        a, axis = lnp.ravel(a), 0
    shape = _shape(a)
    axis = canonicalize_axis(axis, len(shape))
    n = shape[axis]
    if isinstance(repeats, Tracer) and total_repeat_length is None:
        value = _lowest_or_none(repeats)
        if value is None:
            raise core.ConcretizationError(
                f"repeat: repeats is traced ({repeats.aval.str_short()}), so the output length "
                "is not known; pass total_repeat_length=<static int>")
        repeats = value
    if not isinstance(repeats, Tracer):
        r = np.asarray(core.to_numpy(repeats))
        if r.dtype.kind not in "iub":
            raise TypeError(f"repeat: repeats must be integers, got dtype {r.dtype.name}")
        if r.ndim == 0 or r.shape == (1,):
            count = int(r.reshape(()))
            if count < 0:
                raise ValueError(f"repeat: repeats must be non-negative, got {count}")
            out = _repeat_int(a, count, axis)
            if total_repeat_length is not None:
                out = _fit_length(out, axis, total_repeat_length)
            return _wrap_output(out)
        if r.shape != (n,):
            raise ValueError(f"repeat: repeats of shape {r.shape} cannot be broadcast to the "
                             f"axis {axis} of size {n} (array shape {shape})")
        if (r < 0).any():
            raise ValueError("repeat: repeats must be non-negative")
        src = np.repeat(np.arange(n), r)
        if total_repeat_length is not None:
            src = src[:total_repeat_length]
            if len(src) < total_repeat_length:
                src = np.concatenate([src, np.full(total_repeat_length - len(src),
                                                   builtins.max(n - 1, 0))])
        return _take_static(a, src, axis)
    # traced repeats with a static total length: position j reads element
    # #{i : cumsum(repeats)[i] <= j}, clamped to n - 1
    r = repeats
    if _shape(r) not in ((n,), (), (1,)):
        raise ValueError(f"repeat: repeats of shape {_shape(r)} cannot be broadcast to the "
                         f"axis {axis} of size {n} (array shape {shape})")
    r = lnp.broadcast_to(lnp.astype(r, np.int32), (n,))
    tri = np.tril(np.ones((n, n), np.int32))
    csum = lax.dot_general(tri, r, (((1,), (0,)), ((), ())))
    pos = lax.iota(np.int32, total_repeat_length)
    le = lnp.less_equal(lax.reshape(csum, (1, n)), lax.reshape(pos, (total_repeat_length, 1)))
    src = lnp.sum(le, axis=1, dtype=np.int32)
    src = lnp.minimum(src, builtins.max(n - 1, 0))
    return take(a, src, axis=axis, mode="clip")


def _lowest_or_none(t):
    try:
        return np.asarray(core._lowest(t))
    except core.ConcretizationError:
        return None


def _repeat_int(a, count, axis):
    shape = _shape(a)
    x = lax.broadcast_in_dim(a, shape[:axis + 1] + (count,) + shape[axis + 1:],
                             tuple(range(axis + 1)) + tuple(range(axis + 2, len(shape) + 1)))
    return lax.reshape(x, shape[:axis] + (shape[axis] * count,) + shape[axis + 1:])


def _fit_length(x, axis, length):
    n = _shape(x)[axis]
    if n >= length:
        return lax_shape.slice_in_dim(x, 0, length, 1, axis)
    if n == 0:
        raise ValueError("repeat: cannot fill total_repeat_length from an empty array")
    last = lax_shape.slice_in_dim(x, n - 1, n, 1, axis)
    fill = _repeat_int(last, length - n, axis)
    return lax_shape.concatenate([x, fill], axis)


def _take_static(a, src, axis):
    """`a` indexed by the static integer array `src` along `axis` (a gather)."""
    from nanofn.numpy._indexing import getitem
    return getitem(a, (builtins.slice(None),) * axis + (np.asarray(src, np.int32),))


# ------------------------------------------------------------------------ flipping, rolling


def flip(m, axis=None):
    """Reverse the order of elements along `axis` (all axes by default).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.flip(fnp.array([[1, 2], [3, 4]]), axis=-1)
        Array([[2, 1],
               [4, 3]], dtype=int32)
    """
    m = asarray_value(m)
    axes = lnp.canonicalize_axes(axis, _ndim(m))
    return _wrap_output(lax_shape.rev(m, axes) if axes else m)


def fliplr(m):
    """Reverse the order of columns (axis 1); needs at least 2 dimensions.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fliplr(fnp.array([[1, 2]]))
        Array([[2, 1]], dtype=int32)
    """
    m = asarray_value(m)
    if _ndim(m) < 2:
        raise ValueError(f"fliplr: the input must be at least 2-d, got shape {_shape(m)}")
    return flip(m, 1)


def flipud(m):
    """Reverse the order of rows (axis 0); needs at least 1 dimension.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.flipud(fnp.array([1, 2, 3]))
        Array([3, 2, 1], dtype=int32)
    """
    m = asarray_value(m)
    if _ndim(m) < 1:
        raise ValueError(f"flipud: the input must be at least 1-d, got shape {_shape(m)}")
    return flip(m, 0)


def rot90(m, k=1, axes=(0, 1)):
    """Rotate by 90 degrees `k` times in the plane of `axes` (from the first axis towards
    the second).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.rot90(fnp.array([[1, 2], [3, 4]]))
        Array([[2, 4],
               [1, 3]], dtype=int32)
    """
    m = asarray_value(m)
    nd = _ndim(m)
    if len(axes) != 2 or nd < 2:
        raise ValueError(f"rot90: need two axes and a 2-d or higher array, got axes={axes} "
                         f"and shape {_shape(m)}")
    a0, a1 = canonicalize_axis(axes[0], nd), canonicalize_axis(axes[1], nd)
    if a0 == a1:
        raise ValueError(f"rot90: axes must be different, got {axes}")
    k = operator.index(k) % 4
    if k == 0:
        return _wrap_output(m)
    if k == 2:
        return flip(flip(m, a0), a1)
    perm = list(range(nd))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return lnp.transpose(flip(m, a1), perm)
    return flip(lnp.transpose(m, perm), a1)


def roll(a, shift, axis=None):
    """Shift elements along `axis` cyclically (the flattened array by default); `shift` and
    `axis` may be tuples of equal length. A traced `shift` works too.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.roll(fnp.arange(5), 2)
        Array([3, 4, 0, 1, 2], dtype=int32)
    """
    a = asarray_value(a)
    if axis is None:
        return lnp.reshape(roll(lnp.ravel(a), shift, 0), _shape(a))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    if isinstance(shift, (tuple, list)):
        shifts = shift
    elif np.ndim(shift) == 1:  # an array of shifts, one per axis
        shifts = tuple(shift[i] for i in range(len(shift)))
    else:
        shifts = (shift,)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    if len(axes) == 1 and len(shifts) > 1:
        axes = tuple(axes) * len(shifts)
    if len(shifts) != len(axes):
        raise ValueError(f"roll: shift {shift} and axis {axis} must have the same length")
    nd = _ndim(a)
    out = a
    for s, ax in zip(shifts, axes):
        out = _roll_one(out, s, canonicalize_axis(ax, nd))
    return _wrap_output(out)


def _roll_one(a, s, axis):
    n = _shape(a)[axis]
    if n == 0:
        return a
    if isinstance(s, Tracer):
        # out = window of [a, a] starting at (n - s) mod n
        start = lnp.remainder(lnp.subtract(n, lnp.astype(s, np.int32)), n)
        doubled = lax_shape.concatenate([a, a], axis)
        return lax_shape.dynamic_slice_in_dim(doubled, start, n, axis)
    s = operator.index(core.to_numpy(s)) % n
    if s == 0:
        return a
    return lax_shape.concatenate([lax_shape.slice_in_dim(a, n - s, n, 1, axis),
                                  lax_shape.slice_in_dim(a, 0, n - s, 1, axis)], axis)


def swapaxes(a, axis1, axis2):
    """Exchange two axes.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.swapaxes(fnp.zeros((2, 3, 4)), 0, -1).shape
        (4, 3, 2)
    """
    a = asarray_value(a)
    nd = _ndim(a)
    a1, a2 = canonicalize_axis(axis1, nd, "axis1"), canonicalize_axis(axis2, nd, "axis2")
    perm = list(range(nd))
    perm[a1], perm[a2] = perm[a2], perm[a1]
    return _wrap_output(lax.transpose(a, tuple(perm)))


# ------------------------------------------------------------------------ padding


def _pad_width(pad_width, nd):
    if isinstance(pad_width, Tracer):
        raise core.ConcretizationError("pad: pad_width must be static (it sets the output shape)")
    pw = np.asarray(core.to_numpy(pad_width))
    if pw.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must be integers, got {pad_width!r}")
    try:
        pw = np.broadcast_to(pw, (nd, 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} cannot be broadcast to ({nd}, 2) for an "
                         f"array of {nd} dimensions") from None
    if (pw < 0).any():
        raise ValueError(f"pad: pad_width {pad_width!r} must be non-negative")
    return [(int(b), int(e)) for b, e in pw]


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap", "linear_ramp", "maximum",
              "minimum", "mean", "median", "empty")
_PAD_KWARGS = {"constant": {"constant_values"}, "reflect": {"reflect_type"},
               "symmetric": {"reflect_type"}, "linear_ramp": {"end_values"},
               "maximum": {"stat_length"}, "minimum": {"stat_length"},
               "mean": {"stat_length"}, "median": {"stat_length"}}


def pad(array, pad_width, mode="constant", **kwargs):
    """Pad an array (numpy's `pad`).

    Modes: "constant" (`constant_values`, a scalar or per-axis `(before, after)` pairs),
    "edge" (repeat the edge values), "reflect" (mirror without repeating the edge),
    "symmetric" (mirror including the edge), "wrap" (cyclic), "linear_ramp" (a linear
    ramp from `end_values` to the edge value), "maximum", "minimum", "mean", "median"
    (the statistic of the `stat_length` values nearest each edge, the whole axis by
    default; integer means and medians are rounded, as numpy does) and "empty" (zeros
    here: numpy leaves the pad undefined). Pads wider than the array repeat the pattern
    as numpy does; axes are padded in order, so corners come from already padded values.

    Args:
        array: the array.
        pad_width: an int, `(before, after)`, or one `(before, after)` pair per axis.
        mode: one of the modes above, or a function `func(vector, (before, after), axis,
            kwargs)` that returns the zero-padded 1-d `vector` with its pads filled in
            (called for each axis in turn, with the remaining keyword arguments as `kwargs`).
        **kwargs: `constant_values` for "constant"; `end_values` (default 0) for
            "linear_ramp"; `stat_length` (an int, `(before, after)` or per-axis pairs;
            None for the whole axis) for the statistics; `reflect_type` ("even", the
            default, or "odd": values reflected through the edge value, `2 * edge - x`)
            for "reflect" and "symmetric". `end_values`, `constant_values` and
            `stat_length` are static.

    Returns:
        The padded array.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.pad(fnp.array([1, 2, 3]), (2, 1), mode="reflect")
        Array([3, 2, 1, 2, 3, 2], dtype=int32)
        >>> fnp.pad(fnp.array([1.0, 2.0, 6.0]), (1, 2), mode="mean", stat_length=2)
        Array([1.5, 1. , 2. , 6. , 4. , 4. ], dtype=float32)
    """
    array = asarray_value(array)
    shape = _shape(array)
    widths = _pad_width(pad_width, len(shape))
    if callable(mode):
        return _pad_callable(array, widths, mode, kwargs)
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"pad: mode {mode!r} is not supported; use one of "
                                  f"{', '.join(_PAD_MODES)} or a function")
    unknown = set(kwargs) - _PAD_KWARGS.get(mode, set())
    if unknown:
        raise ValueError(f"pad: unsupported keyword argument(s) {sorted(unknown)} for mode "
                         f"{mode!r}")
    reflect_type = kwargs.get("reflect_type", "even")
    if reflect_type not in ("even", "odd"):
        raise ValueError(f"pad: reflect_type must be 'even' or 'odd', got {reflect_type!r}")
    if not shape:
        return _wrap_output(array)  # a 0-d array has nothing to pad
    if mode == "constant":
        return _pad_constant(array, widths, kwargs.get("constant_values", 0))
    if mode == "empty":
        return _pad_constant(array, widths, 0)
    for ax, (before, after) in enumerate(widths):
        if (before or after) and shape[ax] == 0:
            raise ValueError(f"pad: can't extend the empty axis {ax} (shape {shape}) with mode "
                             f"{mode!r}; only modes 'constant' and 'empty' can pad an empty "
                             f"axis")
    if mode == "linear_ramp":
        return _wrap_output(_pad_linear_ramp(array, widths, kwargs.get("end_values", 0)))
    if mode in ("maximum", "minimum", "mean", "median"):
        return _wrap_output(_pad_stat(array, widths, mode, kwargs.get("stat_length")))
    if reflect_type == "odd":
        return _wrap_output(_pad_reflect_odd(array, widths, mode))
    out = array
    for ax, (before, after) in enumerate(widths):
        if before == after == 0:
            continue
        src = np.pad(np.arange(shape[ax]), (before, after), mode=mode)  # numpy's index pattern
        out = _take_static(out, src, ax)
    return _wrap_output(out)


def _pad_callable(array, widths, func, kwargs):
    """numpy's `pad` with a function as mode: zero-pad, then for each axis in turn call
    `func(vector, (before, after), axis, kwargs)` on every 1-d slice along it; the function
    returns the filled vector (nanofn arrays are immutable)."""
    from nanofn.numpy import apply_along_axis
    out = _pad_constant(array, widths, 0)
    for ax in range(len(widths)):
        out = apply_along_axis(func, ax, out, widths[ax], ax, kwargs)
    return _wrap_output(out)


def _static_pairs(name, value, nd, kind):
    """A static scalar, `(before, after)` or per-axis pairs, as an (nd, 2) numpy array."""
    if isinstance(value, Tracer):
        raise core.ConcretizationError(f"pad: {name} must be static, got a traced value")
    arr = np.asarray(core.to_numpy(value))
    if arr.dtype == object or arr.dtype.kind not in kind:
        raise TypeError(f"pad: {name} must be numbers, got {value!r}")
    try:
        return np.broadcast_to(arr, (nd, 2))
    except ValueError:
        raise ValueError(f"pad: {name} {value!r} cannot be broadcast to ({nd}, 2)") from None


def _edge_slice(a, axis, start, stop):
    return lax_shape.slice_in_dim(a, start, stop, 1, axis)


def _to_dtype(x, dtype):
    """Floats computed for an integer array: rounded (half to even) and cast, as numpy."""
    if np.issubdtype(dtype, np.integer):  # bools are x != 0, as numpy and JAX
        x = lnp.round(x)
    return lnp.astype(x, dtype)


def _pad_linear_ramp(array, widths, end_values):
    nd = len(widths)
    ends = _static_pairs("end_values", end_values, nd, "biuf")
    dtype = dtype_of(array)
    work = np.result_type(dtype, np.float32) if dtype.kind in "biu" else dtype
    out = array
    for ax, (before, after) in enumerate(widths):
        n = _shape(out)[ax]
        parts = []
        for side, width in ((0, before), (1, after)):
            if width == 0:
                continue
            edge = _edge_slice(out, ax, 0, 1) if side == 0 else _edge_slice(out, ax, n - 1, n)
            edge = lnp.astype(edge, work)
            t = np.arange(width, dtype=work) / width  # from the end value towards the edge
            if side == 1:
                t = t[::-1]
            tshape = [1] * nd
            tshape[ax] = width
            t = t.reshape(tshape)
            end = np.asarray(ends[ax, side], work)
            ramp = end + (edge - end) * t
            if dtype.kind in "iu":  # numpy's integer linspace floors; bools are ramp != 0
                ramp = lnp.floor(ramp)
            parts.append((side, lnp.astype(ramp, dtype)))
        if parts:
            pieces = [p for s, p in parts if s == 0] + [out] + [p for s, p in parts if s == 1]
            out = lax_shape.concatenate(pieces, ax)
    return out


def _pad_stat(array, widths, mode, stat_length):
    nd = len(widths)
    lengths = None if stat_length is None else _static_pairs("stat_length", stat_length, nd,
                                                             "iu")
    if lengths is not None and (lengths <= 0).any():
        raise ValueError(f"pad: stat_length must be positive, got {stat_length!r}")
    dtype = dtype_of(array)
    reduce = {"maximum": lnp.max, "minimum": lnp.min, "mean": lnp.mean,
              "median": _median}[mode]
    out = array
    for ax, (before, after) in enumerate(widths):
        if before == after == 0:
            continue
        n = _shape(out)[ax]
        pieces = []
        for side, width in ((0, before), (1, after)):
            if width == 0:
                pieces.append(None)
                continue
            k = n if lengths is None else min(int(lengths[ax, side]), n)
            region = _edge_slice(out, ax, 0, k) if side == 0 else _edge_slice(out, ax, n - k, n)
            value = reduce(region, axis=ax, keepdims=True)
            if mode in ("mean", "median"):
                value = _to_dtype(value, dtype)
            target = list(_shape(out))
            target[ax] = width
            pieces.append(lax.broadcast_to(value, tuple(target)))
        out = lax_shape.concatenate([p for p in (pieces[0], out, pieces[1]) if p is not None],
                                    ax)
    return out


def _median(a, axis, keepdims):
    from nanofn.numpy import median
    return median(a, axis=axis, keepdims=keepdims)


def _pad_reflect_odd(array, widths, mode):
    """reflect/symmetric with reflect_type='odd': chunks of the mirrored array reflected
    through the current edge value, `2 * edge - x`, as numpy and JAX do."""
    out = array
    for ax, (before, after) in enumerate(widths):
        size = _shape(array)[ax]
        offset = 1 if (mode == "reflect" and size > 1) else 0
        for side, padding in ((0, before), (1, after)):
            while padding > 0:
                n = _shape(out)[ax]
                chunk = min(padding, size - offset)
                padding -= chunk
                if side == 0:
                    edge = _edge_slice(out, ax, 0, 1)
                    src = np.arange(offset, offset + chunk)[::-1]
                else:
                    edge = _edge_slice(out, ax, n - 1, n)
                    src = np.arange(n - offset - chunk, n - offset)[::-1]
                x = _take_static(out, src, ax)
                x = lnp.subtract(lnp.multiply(lnp.astype(2, dtype_of(out)), edge), x)
                out = lax_shape.concatenate([x, out] if side == 0 else [out, x], ax)
    return out


def _pad_constant(array, widths, constant_values):
    nd = len(widths)
    dtype = dtype_of(array)
    if isinstance(constant_values, Tracer):
        cv = constant_values
        if _shape(cv) != ():
            raise ValueError("pad: a traced constant_values must be a scalar")
        cv = asarray_value(cv, dtype)
        return _wrap_output(lax_shape.pad(array, cv, [(b, e, 0) for b, e in widths]))
    values = np.asarray(core.to_numpy(constant_values))
    try:
        values = np.broadcast_to(values, (nd, 2))
    except ValueError:
        raise ValueError(f"pad: constant_values {constant_values!r} cannot be broadcast to "
                         f"({nd}, 2)") from None
    values = values.astype(dtype)
    if nd == 0:
        return _wrap_output(array)
    if (values == values.flat[0]).all():
        return _wrap_output(lax_shape.pad(array, values.flat[0],
                                          [(b, e, 0) for b, e in widths]))
    out = array  # different values per side: pad one side at a time, in numpy's order
    for ax, (b, e) in enumerate(widths):
        for side, width in ((0, b), (1, e)):
            config = [(0, 0, 0)] * nd
            config[ax] = (width, 0, 0) if side == 0 else (0, width, 0)
            out = lax_shape.pad(out, values[ax, side], config)
    return _wrap_output(out)


# ------------------------------------------------------------------------ gathering


def _normalize_take_mode(mode, fname):
    if mode not in (None, "raise", "wrap", "clip", "fill", "promise_in_bounds"):
        raise ValueError(f"{fname}: mode must be one of None, 'raise', 'wrap', 'clip', 'fill', "
                         f"got {mode!r}")
    return mode


def take(a, indices, axis=None, out=None, mode=None, unique_indices=False,
         indices_are_sorted=False, fill_value=None):
    """Elements of `a` at `indices` along `axis` (of the flattened array by default).

    Negative indices count from the end. Out-of-range indices: with the default `mode=None`
    concrete indices raise IndexError (numpy's "raise") and traced ones read `fill_value`
    (JAX's "fill"); "clip" clamps to `[0, n - 1]` (so -1 reads index 0, as in numpy and
    JAX), "wrap" wraps around, "fill" reads `fill_value` (default NaN for floats).

    Args:
        a: the array.
        indices: an integer array (any shape).
        axis: the axis to take along; None flattens `a`.
        mode: out-of-range handling, as above.
        fill_value: the value read out of range with "fill".

    Returns:
        An array of shape `a.shape[:axis] + indices.shape + a.shape[axis + 1:]`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.take(fnp.arange(6).reshape(2, 3), fnp.array([[0, 2]]), axis=1)
        Array([[[0, 2]],
        <BLANKLINE>
               [[3, 5]]], dtype=int32)
    """
    from nanofn.numpy._indexing import getitem
    lnp._no_out(out, "take")
    del unique_indices, indices_are_sorted  # unused: accepted for JAX compatibility
    mode = _normalize_take_mode(mode, "take")
    a = asarray_value(a)
    if axis is None:
        a, axis = lnp.ravel(a), 0
    axis = canonicalize_axis(axis, _ndim(a))
    n = _shape(a)[axis]
    idx = _index_array(indices, "take")
    if mode == "clip" and n:  # numpy and JAX: clipping disables negative indices
        idx = lnp.clip(idx, 0, n - 1)
    idx, gmode = _apply_take_mode(idx, n, mode, "take", axis)
    return getitem(a, (builtins.slice(None),) * axis + (idx,), mode=gmode, fill_value=fill_value)


def _index_array(indices, fname):
    if isinstance(indices, (Tracer, Array)):
        idx = indices
    else:
        idx = np.asarray(indices)
        if idx.size == 0 and idx.dtype.kind == "f":
            idx = idx.astype(np.int32)
    if not np.issubdtype(dtype_of(idx), np.integer):
        raise TypeError(f"{fname}: indices must be integers, got dtype {dtype_of(idx).name}")
    return idx


def _apply_take_mode(idx, n, mode, fname, axis):
    """Returns (indices, getitem mode)."""
    if mode == "wrap":
        if n == 0:
            raise IndexError(f"{fname}: cannot wrap indices into the empty axis {axis}")
        return lnp.remainder(idx, n), "clip"
    if mode == "clip":
        return idx, "clip"
    if mode in ("fill", "promise_in_bounds"):
        return idx, "fill" if mode == "fill" else "clip"
    if not isinstance(idx, Tracer):
        return idx, None  # concrete: out-of-range indices raise IndexError, like numpy
    if mode == "raise":
        value = _lowest_or_none(idx)
        if value is None:
            raise core.ConcretizationError(
                f"{fname}: mode='raise' needs concrete indices (bounds cannot be checked under "
                "jit); use mode='fill', 'clip' or 'wrap'")
        if value.size and (value.min() < -n or value.max() >= n):
            bad = value[(value < -n) | (value >= n)].flat[0]
            raise IndexError(f"index {bad} is out of bounds for axis {axis} with size {n}")
    return idx, "fill"  # traced: JAX's default for take


def take_along_axis(arr, indices, axis=-1, mode=None, fill_value=None, *,
                    wrap_negative_indices=None):
    """Pick values from `arr` by matching 1-d slices of `indices` along `axis` (the
    companion of `argsort`/`argmax` with `keepdims`). The other axes broadcast.

    Args:
        arr: the array.
        indices: an integer array with `arr`'s number of dimensions.
        axis: the axis to take along (default the last, as numpy 2 and JAX); None works on
            the flattened `arr` (indices 1-d).
        mode: out-of-range handling, as for `take`.
        fill_value: the value read out of range with "fill".
        wrap_negative_indices: negative indices count from the end (the default, None or
            True; False is not supported).

    Returns:
        The picked values, of the broadcast shape of `arr` and `indices` (with `indices`'s
        size along `axis`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> x = fnp.array([[3.0, 1.0], [0.0, 5.0]])
        >>> fnp.take_along_axis(x, fnp.argmax(x, axis=1, keepdims=True), axis=1)
        Array([[3.],
               [5.]], dtype=float32)
    """
    from nanofn.numpy._indexing import getitem
    if wrap_negative_indices is not None and not wrap_negative_indices:
        raise NotImplementedError("take_along_axis: wrap_negative_indices=False is not "
                                  "supported")
    mode = _normalize_take_mode(mode, "take_along_axis")
    arr = asarray_value(arr)
    idx = _index_array(indices, "take_along_axis")
    if axis is None:
        if _ndim(idx) != 1:
            raise ValueError(f"take_along_axis: with axis=None the indices must be 1-d, got "
                             f"shape {_shape(idx)}")
        arr, axis = lnp.ravel(arr), 0
    nd = _ndim(arr)
    if _ndim(idx) != nd:
        raise ValueError(f"take_along_axis: indices (shape {_shape(idx)}) and arr (shape "
                         f"{_shape(arr)}) must have the same number of dimensions")
    axis = canonicalize_axis(axis, nd)
    ashape, ishape = _shape(arr), _shape(idx)
    try:
        for d in range(nd):
            if d != axis:
                np.broadcast_shapes((ashape[d],), (ishape[d],))
    except ValueError:
        raise ValueError(f"take_along_axis: indices of shape {ishape} and arr of shape "
                         f"{ashape} do not broadcast on the axes other than {axis}") from None
    idx, gmode = _apply_take_mode(idx, ashape[axis], mode, "take_along_axis", axis)
    # One index array per axis: arange on the others (broadcast), `idx` along `axis`.
    index = []
    for d in range(nd):
        if d == axis:
            index.append(idx)
        else:
            size = builtins.max(ashape[d], ishape[d]) if 0 not in (ashape[d], ishape[d]) else 0
            if ashape[d] == 1 and size != 1:
                index.append(np.zeros((1,) * d + (1,) + (1,) * (nd - d - 1), np.int32))
            else:
                index.append(np.arange(size, dtype=np.int32).reshape(
                    (1,) * d + (size,) + (1,) * (nd - d - 1)))
    return getitem(arr, tuple(index), mode=gmode, fill_value=fill_value)


# ------------------------------------------------------------------------ diagonals, triangles


def diagonal(a, offset=0, axis1=0, axis2=1):
    """The `offset`-th diagonal of the 2-d slices in the plane of `axis1`, `axis2`; the
    diagonal becomes the last axis (numpy's layout).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.diagonal(fnp.arange(9).reshape(3, 3), offset=1)
        Array([1, 5], dtype=int32)
    """
    a = asarray_value(a)
    nd = _ndim(a)
    if nd < 2:
        raise ValueError(f"diagonal: the input must be at least 2-d, got shape {_shape(a)}")
    a1, a2 = canonicalize_axis(axis1, nd, "axis1"), canonicalize_axis(axis2, nd, "axis2")
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 cannot be the same ({axis1}, {axis2})")
    offset = operator.index(offset)
    perm = [d for d in range(nd) if d not in (a1, a2)] + [a1, a2]
    x = lax.transpose(a, tuple(perm))
    shape = _shape(x)
    n1, n2 = shape[-2], shape[-1]
    length = builtins.max(0, builtins.min(n1, n2 - offset) if offset >= 0
                          else builtins.min(n1 + offset, n2))
    # In the row-major flattening of the last two axes, the diagonal is a strided slice.
    flat = lax.reshape(x, shape[:-2] + (n1 * n2,))
    start = offset if offset >= 0 else -offset * n2
    if length == 0:
        start = 0
    limit = start + (length - 1) * (n2 + 1) + 1 if length else 0
    return _wrap_output(lax_shape.slice_in_dim(flat, start, limit, n2 + 1, -1))


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """The sum along a diagonal (see `diagonal`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> int(fnp.trace(fnp.arange(9).reshape(3, 3)))
        12
    """
    lnp._no_out(out, "trace")
    return lnp.sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def _tri_mask(n, m, k, lower):
    rows = np.arange(n).reshape(n, 1)
    cols = np.arange(m).reshape(1, m)
    return (cols - rows <= k) if lower else (cols - rows >= k)


def _triangle(m, k, lower, fname):
    m = asarray_value(m)
    shape = _shape(m)
    if len(shape) == 0:
        raise ValueError(f"{fname}: the input must be at least 1-d, got a 0-d array")
    if len(shape) == 1:  # numpy: a 1-d input is broadcast to a square matrix
        m = lnp.broadcast_to(m, (shape[0], shape[0]))
        shape = _shape(m)
    mask = _tri_mask(shape[-2], shape[-1], operator.index(k), lower)
    zero = np.zeros((), dtype_of(m))
    return lax.select_n_p.bind(mask, zero, m)


def tril(m, k=0):
    """The lower triangle of the last two axes (elements above the `k`-th diagonal zeroed).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.tril(fnp.ones((2, 3)))
        Array([[1., 0., 0.],
               [1., 1., 0.]], dtype=float32)
    """
    return _triangle(m, k, True, "tril")


def triu(m, k=0):
    """The upper triangle of the last two axes (elements below the `k`-th diagonal zeroed).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.triu(fnp.ones((2, 3)), k=1)
        Array([[0., 1., 1.],
               [0., 0., 1.]], dtype=float32)
    """
    return _triangle(m, k, False, "triu")


def diag(v, k=0):
    """A 1-d `v` becomes a 2-d array with `v` on its `k`-th diagonal; a 2-d `v` gives its
    `k`-th diagonal.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.diag(fnp.array([1, 2]), k=1)
        Array([[0, 1, 0],
               [0, 0, 2],
               [0, 0, 0]], dtype=int32)
    """
    v = asarray_value(v)
    shape = _shape(v)
    k = operator.index(k)
    if len(shape) == 2:
        return diagonal(v, k)
    if len(shape) != 1:
        raise ValueError(f"diag: the input must be 1-d or 2-d, got shape {shape}")
    n = shape[0]
    size = n + builtins.abs(k)
    # Spread v with `size` zeros between neighbours in the flattened matrix (interior
    # padding), so v[i] lands at row i (+ |k| for k < 0), column i (+ k for k > 0).
    start = k if k >= 0 else -k * size
    dilated = n + builtins.max(n - 1, 0) * size
    flat = lax_shape.pad(v, np.zeros((), dtype_of(v)),
                         [(start, size * size - start - dilated, size)])
    return _wrap_output(lax.reshape(flat, (size, size)))


# ------------------------------------------------------------------------ grids


def broadcast_arrays(*args):
    """Broadcast arrays against each other (numpy rules); returns a list.

    Example:
        >>> import nanofn.numpy as fnp
        >>> [a.shape for a in fnp.broadcast_arrays(fnp.ones((2, 1)), fnp.ones(3))]
        [(2, 3), (2, 3)]
    """
    arrays = [asarray_value(a) for a in args]
    shape = lax.broadcast_shapes("broadcast_arrays", *[_shape(a) for a in arrays]) \
        if arrays else ()
    return [_wrap_output(lax.broadcast_to(a, shape)) for a in arrays]


def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """Coordinate matrices from coordinate vectors (numpy's `meshgrid`).

    Args:
        *xi: 1-d arrays (others are flattened).
        copy: accepted for numpy compatibility (arrays are immutable).
        sparse: return arrays that broadcast instead of full grids.
        indexing: "xy" (Cartesian; the first two axes swapped) or "ij" (matrix).

    Returns:
        A list of arrays, one per input.

    Example:
        >>> import nanofn.numpy as fnp
        >>> X, Y = fnp.meshgrid(fnp.arange(3), fnp.arange(2))
        >>> X.shape, Y.shape
        ((2, 3), (2, 3))
    """
    del copy  # unused: arrays are immutable
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    xs = [lnp.ravel(asarray_value(x)) for x in xi]
    n = len(xs)
    out = []
    for i, x in enumerate(xs):
        s = [1] * n
        s[i] = _shape(x)[0]
        if indexing == "xy" and n >= 2:
            s[0], s[1] = s[1], s[0]
        out.append(lax.reshape(x, tuple(s)))
    if not sparse:
        out = broadcast_arrays(*out)
    return [_wrap_output(o) for o in out]


def ix_(*args):
    """Open mesh from 1-d index arrays: `x[ix_(rows, cols)]` picks the sub-matrix.
    Boolean arrays become the indices of their true elements (eager only).

    Example:
        >>> import nanofn.numpy as fnp
        >>> x = fnp.arange(9).reshape(3, 3)
        >>> x[fnp.ix_(fnp.array([0, 2]), fnp.array([1, 2]))]
        Array([[1, 2],
               [7, 8]], dtype=int32)
    """
    n = len(args)
    out = []
    for i, a in enumerate(args):
        a = asarray_value(a)
        if _ndim(a) != 1:
            raise ValueError(f"ix_: each argument must be 1-d, argument {i} has shape "
                             f"{_shape(a)}")
        if dtype_of(a) == np.bool_:
            a = lnp.nonzero(a)[0]
        elif not np.issubdtype(dtype_of(a), np.integer) and _shape(a)[0]:
            raise TypeError(f"ix_: argument {i} must be integer or boolean, got dtype "
                            f"{dtype_of(a).name}")
        shape = [1] * n
        shape[i] = _shape(a)[0]
        out.append(_wrap_output(lax.reshape(a, tuple(shape))))
    return tuple(out)
