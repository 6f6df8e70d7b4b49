"""numpy functions scientific code reaches for: differences and gradients, products,
selection, partitioning, nan handling, angles, splitting, integration, interpolation and
polynomial evaluation (jax.numpy's names and meanings), written with other
`nanofn.numpy` functions so every one is differentiable, jittable and vmappable.
"""

from __future__ import annotations

import builtins
import operator

import numpy as np

from nanofn.numpy import _lax_numpy as lnp
from nanofn.numpy import _reductions as red
from nanofn.numpy import _shape_funcs as sf
from nanofn.numpy._dtypes import asarray_value, promote, promote_float
from nanofn.numpy._lax_numpy import _ndim, _shape, _wrap_output, canonicalize_axis

__all__ = [
    "diff", "ediff1d", "gradient", "kron", "cross", "r_", "c_", "select", "partition",
    "argpartition", "fmax", "fmin", "sinc", "nan_to_num", "deg2rad", "rad2deg", "degrees",
    "radians", "vsplit", "hsplit", "dsplit", "trapezoid", "interp", "polyval",
]


def _take(a, start, stop, axis):
    """`a[..., start:stop, ...]` along `axis` (plain Python slice bounds)."""
    idx = [builtins.slice(None)] * _ndim(a)
    idx[axis] = builtins.slice(start, stop)
    return a[tuple(idx)]


# ------------------------------------------------------------------------ differences


def diff(a, n=1, axis=-1, prepend=None, append=None):
    """The n-th discrete difference along `axis` (numpy.diff); booleans give `!=`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.diff(fnp.array([1.0, 4.0, 9.0, 16.0]), n=2)
        Array([2., 2.], dtype=float32)
    """
    a = asarray_value(a)
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"diff: order n={n} must be non-negative")
    if _ndim(a) == 0:
        raise ValueError("diff: the input must have at least one dimension")
    axis = canonicalize_axis(axis, _ndim(a))
    if n == 0:
        return _wrap_output(a)
    pieces = []
    for extra, where in ((prepend, 0), (append, 1)):
        if extra is not None:
            extra = asarray_value(extra)
            if _ndim(extra) == 0:
                shape = list(_shape(a))
                shape[axis] = 1
                extra = lnp.broadcast_to(extra, tuple(shape))
            pieces.append((where, extra))
    if pieces:
        parts = [p for w, p in pieces if w == 0] + [a] + [p for w, p in pieces if w == 1]
        a = sf.concatenate(parts, axis=axis)
    for _ in range(builtins.min(n, _shape(a)[axis])):  # past the length: empty already
        hi, lo = _take(a, 1, None, axis), _take(a, None, -1, axis)
        a = lnp.not_equal(hi, lo) if a.dtype == np.bool_ else hi - lo
    return _wrap_output(a)


def ediff1d(ary, to_end=None, to_begin=None):
    """Differences of consecutive elements of the flattened array, with optional values
    before and after (numpy.ediff1d).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.ediff1d(fnp.array([1.0, 2.0, 4.0]), to_begin=-99.0)
        Array([-99.,   1.,   2.], dtype=float32)
    """
    a = lnp.ravel(asarray_value(ary))
    out = a[1:] - a[:-1]
    parts = [out]
    if to_begin is not None:
        parts.insert(0, lnp.ravel(asarray_value(to_begin)).astype(out.dtype))
    if to_end is not None:
        parts.append(lnp.ravel(asarray_value(to_end)).astype(out.dtype))
    return _wrap_output(sf.concatenate(parts) if len(parts) > 1 else out)


def _gradient_1d(f, h, axis, edge_order):
    """numpy's second-order accurate differences along `axis` (spacing: a scalar or the
    coordinates)."""
    n = _shape(f)[axis]
    if n < edge_order + 1:
        raise ValueError(f"gradient: shape {_shape(f)} along axis {axis} needs at least "
                         f"edge_order + 1 = {edge_order + 1} points")

    def s(lo, hi):
        return _take(f, lo, hi, axis)

    def along(v):  # a 1-d coefficient array broadcast along `axis`
        shape = [1] * _ndim(f)
        shape[axis] = -1
        return lnp.reshape(v, tuple(shape))

    if _ndim(h) == 0:  # uniform spacing
        interior = (s(2, None) - s(None, -2)) / (2.0 * h)
        if edge_order == 1:
            first = (s(1, 2) - s(0, 1)) / h
            last = (s(-1, None) - s(-2, -1)) / h
        else:
            first = (-1.5 * s(0, 1) + 2.0 * s(1, 2) - 0.5 * s(2, 3)) / h
            last = (0.5 * s(-3, -2) - 2.0 * s(-2, -1) + 1.5 * s(-1, None)) / h
        return sf.concatenate([first, interior, last], axis=axis) if n > 2 else \
            sf.concatenate([first, last], axis=axis)
    dx = h[1:] - h[:-1]
    if n > 2:
        dx1, dx2 = dx[:-1], dx[1:]
        a = -dx2 / (dx1 * (dx1 + dx2))
        b = (dx2 - dx1) / (dx1 * dx2)
        c = dx1 / (dx2 * (dx1 + dx2))
        interior = along(a) * s(None, -2) + along(b) * s(1, -1) + along(c) * s(2, None)
    if edge_order == 1:
        first = (s(1, 2) - s(0, 1)) / dx[0]
        last = (s(-1, None) - s(-2, -1)) / dx[-1]
    else:
        d1, d2 = dx[0], dx[1]
        first = (-(2.0 * d1 + d2) / (d1 * (d1 + d2)) * s(0, 1)
                 + (d1 + d2) / (d1 * d2) * s(1, 2) - d1 / (d2 * (d1 + d2)) * s(2, 3))
        d1, d2 = dx[-2], dx[-1]
        last = (d2 / (d1 * (d1 + d2)) * s(-3, -2) - (d2 + d1) / (d1 * d2) * s(-2, -1)
                + (2.0 * d2 + d1) / (d2 * (d1 + d2)) * s(-1, None))
    return sf.concatenate([first, interior, last] if n > 2 else [first, last], axis=axis)


def gradient(f, *varargs, axis=None, edge_order=None):
    """The gradient of sampled values by central differences inside and one-sided
    differences at the edges (numpy.gradient).

    Args:
        f: the samples.
        *varargs: spacing: none (1), one scalar for every axis, or one scalar or
            coordinate array per axis.
        axis: an axis or axes (default: all).
        edge_order: 1 (default) or 2, the accuracy of the edge differences.

    Returns:
        One array per axis (a single array for one axis).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.gradient(fnp.array([1.0, 4.0, 9.0, 16.0]))
        Array([3., 4., 6., 7.], dtype=float32)
    """
    (f,) = promote_float(asarray_value(f))
    nd = _ndim(f)
    axes = lnp.canonicalize_axes(axis, nd, "axis")
    edge_order = 1 if edge_order is None else int(edge_order)
    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    if not varargs:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1 and _ndim(varargs[0]) == 0:
        spacing = list(varargs) * len(axes)
    elif len(varargs) == len(axes):
        spacing = list(varargs)
    else:
        raise TypeError(f"gradient: give no spacing, one scalar, or one per axis "
                        f"({len(axes)}), got {len(varargs)}")
    out = []
    for ax, h in zip(axes, spacing):
        h = np.asarray(h, f.dtype) if np.ndim(h) == 0 and not hasattr(h, "aval") else \
            asarray_value(h)
        if _ndim(h) == 1 and _shape(h)[0] != _shape(f)[ax]:
            raise ValueError(f"gradient: coordinates of length {_shape(h)[0]} do not match "
                             f"axis {ax} of length {_shape(f)[ax]}")
        if _ndim(h) > 1:
            raise ValueError("gradient: each spacing must be a scalar or a 1-d array")
        h = h.astype(f.dtype) if _ndim(h) else np.asarray(h, dtype=f.dtype)
        out.append(_wrap_output(_gradient_1d(f, h, ax, edge_order)))
    return out[0] if len(out) == 1 else out


# ------------------------------------------------------------------------ products


def kron(a, b):
    """The Kronecker product (numpy.kron).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.kron(fnp.array([1.0, 10.0]), fnp.array([1.0, 2.0]))
        Array([ 1.,  2., 10., 20.], dtype=float32)
    """
    a, b = promote(a, b)
    nd = builtins.max(_ndim(a), _ndim(b))
    a = lnp.reshape(a, (1,) * (nd - _ndim(a)) + tuple(_shape(a)))
    b = lnp.reshape(b, (1,) * (nd - _ndim(b)) + tuple(_shape(b)))
    # interleave the axes: a's axis i meets b's axis i, then merge each pair
    a_exp = lnp.reshape(a, tuple(x for s in _shape(a) for x in (s, 1)))
    b_exp = lnp.reshape(b, tuple(x for s in _shape(b) for x in (1, s)))
    out = a_exp * b_exp
    return _wrap_output(lnp.reshape(out, tuple(p * q for p, q in zip(_shape(a), _shape(b)))))


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """The cross product of 2- or 3-vectors, broadcast over the other axes (numpy.cross).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.cross(fnp.array([1.0, 0.0, 0.0]), fnp.array([0.0, 1.0, 0.0]))
        Array([0., 0., 1.], dtype=float32)
    """
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = promote(a, b)
    a = lnp.moveaxis(a, canonicalize_axis(axisa, _ndim(a), "axisa"), -1)
    b = lnp.moveaxis(b, canonicalize_axis(axisb, _ndim(b), "axisb"), -1)
    na, nb = _shape(a)[-1], _shape(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError(f"cross: vectors must have 2 or 3 components, got {na} and {nb}")
    a0, a1 = a[..., 0], a[..., 1]
    b0, b1 = b[..., 0], b[..., 1]
    if na == 2 and nb == 2:  # the scalar z-component
        return _wrap_output(a0 * b1 - a1 * b0)
    a2 = a[..., 2] if na == 3 else lnp.zeros_like(a0)
    b2 = b[..., 2] if nb == 3 else lnp.zeros_like(b0)
    out = lnp.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return _wrap_output(lnp.moveaxis(out, -1, canonicalize_axis(axisc, _ndim(out), "axisc")))


# ------------------------------------------------------------------------ r_ and c_


class _AxisConcatenator:
    """`r_[...]` / `c_[...]`: concatenate slices (as ranges; a complex step `a:b:nj` gives
    `n` points as linspace does), scalars and arrays, as numpy.r_ and numpy.c_ do. A leading
    string `"axis[,ndmin[,trans1d]]"` sets the axis, the minimum rank and where the
    original axes of a promoted array go; `"r"` (`"c"`) makes a 1-d result a row (column)
    of a 2-d array, as JAX does.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.r_[0:3, 5.0, fnp.array([7.0, 8.0])]
        Array([0., 1., 2., 5., 7., 8.], dtype=float32)
        >>> fnp.c_[fnp.array([1, 2]), fnp.array([3, 4])]
        Array([[1, 3],
               [2, 4]], dtype=int32)
    """

    def __init__(self, axis, ndmin, trans1d, name):
        self.axis, self.ndmin, self.trans1d, self.name = axis, ndmin, trans1d, name

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        axis, ndmin, trans1d = self.axis, self.ndmin, self.trans1d
        matrix = None  # "r" or "c": a 1-d result becomes a row or a column, as JAX
        items = []
        for i, item in enumerate(key):
            if isinstance(item, str):
                if i != 0:
                    raise ValueError(f"{self.name}: a directive string must come first, got "
                                     f"{item!r} at position {i}")
                if item in ("r", "c"):
                    matrix = 0 if item == "r" else 1
                    continue
                parts = [int(p) for p in item.split(",")]
                axis = parts[0]
                if len(parts) > 1:
                    ndmin = parts[1]
                if len(parts) > 2:
                    trans1d = parts[2]
                continue
            if isinstance(item, builtins.slice):
                start = 0 if item.start is None else item.start
                step = 1 if item.step is None else item.step
                if isinstance(step, complex):  # a number of points, as in linspace
                    arr = lnp.linspace(start, item.stop, int(abs(step)))
                else:
                    arr = lnp.arange(start, item.stop, step)
            else:
                arr = asarray_value(item)
            items.append(self._shape_item(arr, ndmin, trans1d))
        if not items:
            return _wrap_output(lnp.zeros((0,)))
        items = promote(*items) if len(items) > 1 else items
        out = sf.concatenate(items, axis=axis)
        if matrix is not None and _ndim(out) == 1:
            out = lnp.expand_dims(out, matrix)
        return _wrap_output(out)

    @staticmethod
    def _shape_item(arr, ndmin, trans1d):
        nd = _ndim(arr)
        if nd >= ndmin:
            return arr
        out = lnp.reshape(arr, (1,) * (ndmin - nd) + tuple(_shape(arr)))
        if trans1d != -1 and nd > 0:  # numpy's placement of the original axes
            k2, k1 = ndmin - nd, trans1d
            if k1 < 0:
                k1 += k2 + 1
            axes = list(range(ndmin))
            out = lnp.transpose(out, tuple(axes[:k1] + axes[k2:] + axes[k1:k2]))
        return out


r_ = _AxisConcatenator(0, 1, -1, "r_")
c_ = _AxisConcatenator(-1, 2, 0, "c_")


# ------------------------------------------------------------------------ selection


def select(condlist, choicelist, default=0):
    """`choicelist[i]` where `condlist[i]` is the first true condition, else `default`
    (numpy.select).

    Example:
        >>> import nanofn.numpy as fnp
        >>> x = fnp.arange(5.0)
        >>> fnp.select([x < 2, x > 3], [x, x ** 2], default=-1.0)
        Array([ 0.,  1., -1., -1., 16.], dtype=float32)
    """
    if len(condlist) != len(choicelist):
        raise ValueError(f"select: condlist ({len(condlist)}) and choicelist "
                         f"({len(choicelist)}) must have the same length")
    if not condlist:
        raise ValueError("select: condlist must not be empty")
    choices = promote(*[asarray_value(c) for c in choicelist], default)
    out = choices[-1]
    for cond, choice in zip(reversed(condlist), reversed(choices[:-1])):
        cond = asarray_value(cond)
        if cond.dtype != np.bool_:
            raise TypeError(f"select: conditions must be boolean, got {cond.dtype}")
        out = lnp.where(cond, choice, out)
    return _wrap_output(out)


def partition(a, kth, axis=-1):
    """An array whose `kth` element along `axis` is where sorting would put it, with no
    larger element before and no smaller one after (numpy.partition). As in JAX, the
    order within each side is not numpy's (here: sorted).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.partition(fnp.array([3.0, 1.0, 2.0]), 1)[1]
        Array(2., dtype=float32)
    """
    a = asarray_value(a)
    _check_kth("partition", a, kth, axis)
    return _wrap_output(red.sort(a, axis=axis))


def argpartition(a, kth, axis=-1):
    """Indices that partition `a` around its `kth` element along `axis`
    (numpy.argpartition; each side sorted, as `partition`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.argpartition(fnp.array([3.0, 1.0, 2.0]), 1)
        Array([1, 2, 0], dtype=int32)
    """
    a = asarray_value(a)
    _check_kth("argpartition", a, kth, axis)
    return _wrap_output(red.argsort(a, axis=axis))


def _check_kth(name, a, kth, axis):
    if _ndim(a) == 0:
        raise ValueError(f"{name}: the input must have at least one dimension")
    n = _shape(a)[canonicalize_axis(axis, _ndim(a))]
    for k in np.atleast_1d(kth):
        if not isinstance(k, (int, np.integer)):
            raise TypeError(f"{name}: kth must be an integer (or integers), got {kth!r:.60}")
        if not -n <= int(k) < n:
            raise ValueError(f"{name}: kth={int(k)} is out of bounds for an axis of length {n}")


def fmax(x1, x2):
    """Elementwise maximum that ignores NaN: the other operand where one is NaN
    (numpy.fmax). At a tie the gradient goes to `x2`, as in JAX.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fmax(fnp.array([1.0, fnp.nan, 3.0]), fnp.array([2.0, 0.0, fnp.nan]))
        Array([2., 0., 3.], dtype=float32)
    """
    lnp._check_ranks("fmax", x1, x2)
    x1, x2 = promote(x1, x2)
    # JAX's form: at a tie the value is x2's, and so is the whole gradient (maximum
    # splits it in halves)
    return _wrap_output(lnp.where(lnp.greater(x1, x2) | lnp.isnan(x2), x1, x2))


def fmin(x1, x2):
    """Elementwise minimum that ignores NaN (numpy.fmin). At a tie the gradient goes to
    `x2`, as in JAX.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fmin(fnp.array([1.0, fnp.nan]), fnp.array([2.0, 0.0]))
        Array([1., 0.], dtype=float32)
    """
    lnp._check_ranks("fmin", x1, x2)
    x1, x2 = promote(x1, x2)
    # JAX's form: at a tie the value and the gradient are x2's
    return _wrap_output(lnp.where(lnp.less(x1, x2) | lnp.isnan(x2), x1, x2))


# ------------------------------------------------------------------------ elementwise


# Below |pi x| = 0.05 the Taylor polynomial of sin(y)/y to y^6 is exact to rounding
# (the next term is y^8 / 9! < 1e-16), and, unlike the quotient, it has the right
# derivatives at 0 (sinc''(0) = -pi^2 / 3): no 0/0 and no kink.
_SINC_SERIES_BELOW = 0.05


def sinc(x):
    """The normalised sinc function `sin(pi x) / (pi x)`, 1 at 0, with derivatives of
    every order there (numpy.sinc).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.sinc(fnp.array([0.0, 0.5]))
        Array([1.       , 0.6366198], dtype=float32)
    """
    (x,) = promote_float(asarray_value(x))
    y = x * np.asarray(np.pi, x.dtype)
    small = lnp.abs(y) < _SINC_SERIES_BELOW
    y_safe = lnp.where(small, np.asarray(1.0, x.dtype), y)
    y2 = y * y
    series = 1.0 + y2 * (-1.0 / 6.0 + y2 * (1.0 / 120.0 + y2 * (-1.0 / 5040.0)))
    out = lnp.where(small, series, lnp.sin(y_safe) / y_safe)
    return _wrap_output(out)


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """Replace NaN by `nan` and infinities by `posinf`/`neginf` (default: the largest
    finite values of the dtype) (numpy.nan_to_num).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.nan_to_num(fnp.array([fnp.nan, 1.0, -fnp.inf]), neginf=-9.0)
        Array([ 0.,  1., -9.], dtype=float32)
        >>> complex(fnp.nan_to_num(fnp.array(complex(fnp.nan, -fnp.inf)), neginf=-9.0))
        -9j
    """
    del copy  # unused: arrays are immutable
    x = asarray_value(x)
    if not np.issubdtype(x.dtype, np.inexact):
        return _wrap_output(x)
    if np.issubdtype(x.dtype, np.complexfloating):  # each part on its own, as numpy
        from nanofn.ops._complex import complex as lax_complex, imag, real
        re, im = (nan_to_num(part, nan=nan, posinf=posinf, neginf=neginf)
                  for part in (real(x), imag(x)))
        return _wrap_output(lax_complex(re, im))
    info = np.finfo(x.dtype)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    out = lnp.where(lnp.isnan(x), np.asarray(nan, x.dtype), x)
    out = lnp.where(out == np.inf, np.asarray(posinf, x.dtype), out)
    out = lnp.where(out == -np.inf, np.asarray(neginf, x.dtype), out)
    return _wrap_output(out)


def deg2rad(x):
    """Degrees to radians (numpy.deg2rad).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.deg2rad(fnp.array([180.0]))
        Array([3.1415927], dtype=float32)
    """
    (x,) = promote_float(asarray_value(x))
    return _wrap_output(x * np.asarray(np.pi / 180.0, x.dtype))


def rad2deg(x):
    """Radians to degrees (numpy.rad2deg).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.rad2deg(fnp.array([fnp.pi]))
        Array([180.], dtype=float32)
    """
    (x,) = promote_float(asarray_value(x))
    return _wrap_output(x * np.asarray(180.0 / np.pi, x.dtype))


radians = deg2rad
degrees = rad2deg


# ------------------------------------------------------------------------ splitting


def vsplit(ary, indices_or_sections):
    """Split along the first axis (numpy.vsplit). A 1-d array is split too, as JAX does
    (numpy asks for 2 or more dimensions).

    Example:
        >>> import nanofn.numpy as fnp
        >>> [a.shape for a in fnp.vsplit(fnp.ones((4, 2)), 2)]
        [(2, 2), (2, 2)]
    """
    if _ndim(ary) < 1:
        raise ValueError("vsplit only works on arrays of 1 or more dimensions")
    return sf.split(ary, indices_or_sections, axis=0)


def hsplit(ary, indices_or_sections):
    """Split along the second axis (the first for 1-d arrays) (numpy.hsplit).

    Example:
        >>> import nanofn.numpy as fnp
        >>> [a.shape for a in fnp.hsplit(fnp.ones((2, 4)), [1])]
        [(2, 1), (2, 3)]
    """
    if _ndim(ary) == 0:
        raise ValueError("hsplit only works on arrays of 1 or more dimensions")
    return sf.split(ary, indices_or_sections, axis=1 if _ndim(ary) > 1 else 0)


def dsplit(ary, indices_or_sections):
    """Split along the third axis (numpy.dsplit; at least 3-d).

    Example:
        >>> import nanofn.numpy as fnp
        >>> [a.shape for a in fnp.dsplit(fnp.ones((1, 1, 4)), 2)]
        [(1, 1, 2), (1, 1, 2)]
    """
    if _ndim(ary) < 3:
        raise ValueError("dsplit only works on arrays of 3 or more dimensions")
    return sf.split(ary, indices_or_sections, axis=2)


# ------------------------------------------------------------------------ integration


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """The integral of sampled `y` by the trapezoidal rule along `axis`, at points `x`
    or with spacing `dx` (numpy.trapezoid).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.trapezoid(fnp.array([0.0, 1.0, 4.0]), dx=0.5)
        Array(1.5, dtype=float32)
    """
    if x is None:
        (y,) = promote_float(asarray_value(y))
        axis = canonicalize_axis(axis, _ndim(y))
        # a Python or numpy scalar takes y's dtype; an array (traced too) is promoted
        scalar = isinstance(dx, (int, float, np.number))
        d = np.asarray(dx, y.dtype) if scalar else asarray_value(dx)
    else:  # y and x promoted together (int32 y with int64 x gives float64, as in JAX)
        y, x = promote_float(asarray_value(y), asarray_value(x))
        axis = canonicalize_axis(axis, _ndim(y))
        if _ndim(x) == 1:
            d = x[1:] - x[:-1]
            shape = [1] * _ndim(y)
            shape[axis] = -1
            d = lnp.reshape(d, tuple(shape))
        else:
            d = diff(x, axis=axis)
    mid = (_take(y, 1, None, axis) + _take(y, None, -1, axis)) * 0.5
    return _wrap_output(lnp.sum(d * mid, axis=axis))


# ------------------------------------------------------------------------ interpolation


def interp(x, xp, fp, left=None, right=None, period=None):
    """Piecewise-linear interpolation of the points `(xp, fp)` at `x` (numpy.interp);
    `xp` increasing, `left`/`right` (default `fp[0]`, `fp[-1]`) outside, or `period` for
    periodic data. Differentiable in `x`, `xp` and `fp`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.interp(fnp.array([0.5, 1.5, 3.0]), fnp.array([0.0, 1.0, 2.0]),
        ...            fnp.array([0.0, 10.0, 20.0]))
        Array([ 5., 15., 20.], dtype=float32)
    """
    x, xp, fp = promote_float(x, xp, fp)
    xp, fp = lnp.asarray(xp), lnp.asarray(fp)  # indexed by computed (maybe traced) indices
    if _ndim(xp) != 1 or _ndim(fp) != 1 or _shape(xp)[0] != _shape(fp)[0]:
        raise ValueError(f"interp: xp and fp must be 1-d of the same length, got shapes "
                         f"{_shape(xp)} and {_shape(fp)}")
    if _shape(xp)[0] == 0:
        raise ValueError("interp: xp and fp must not be empty")
    if period is not None:
        if left is not None or right is not None:
            raise ValueError("interp: left and right are not used with period")
        period = lnp.abs(asarray_value(period)).astype(x.dtype)
        x = x % period
        xp = xp % period
        order = red.argsort(xp)
        xp, fp = xp[order], fp[order]
        xp = sf.concatenate([xp[-1:] - period, xp, xp[:1] + period])
        fp = sf.concatenate([fp[-1:], fp, fp[:1]])
    n = _shape(xp)[0]
    if n == 1:
        out = lnp.broadcast_to(fp[0], _shape(x))
    else:
        # the interval of each x: how many of xp[1:-1] lie at or below it
        i = lnp.sum((xp[None, 1:-1] <= lnp.reshape(x, (-1, 1))).astype(np.int32), axis=1)
        i = lnp.reshape(i, _shape(x))
        x0, x1, f0, f1 = xp[i], xp[i + 1], fp[i], fp[i + 1]
        dx = x1 - x0
        same = dx == 0
        t = (x - x0) / lnp.where(same, np.asarray(1.0, x.dtype), dx)
        out = lnp.where(same, f0, f0 + t * (f1 - f0))
    if period is None:
        below = fp[0] if left is None else np.asarray(left, x.dtype)
        above = fp[-1] if right is None else np.asarray(right, x.dtype)
        out = lnp.where(x < xp[0], below, out)
        out = lnp.where(x > xp[-1], above, out)
    return _wrap_output(out)


def polyval(p, x, *, unroll=16):
    """Evaluate the polynomial with coefficients `p` (highest power first) at `x` by
    Horner's rule (numpy.polyval).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.polyval(fnp.array([1.0, 0.0, -2.0]), fnp.array([0.0, 2.0]))
        Array([-2.,  2.], dtype=float32)
    """
    del unroll  # unused: the loop is unrolled in Python
    p, x = promote(p, x)
    if _ndim(p) != 1:
        raise ValueError(f"polyval: p must be 1-d, got shape {_shape(p)}")
    out = lnp.zeros_like(x)
    for i in range(_shape(p)[0]):
        out = out * x + p[i]
    return _wrap_output(out)

