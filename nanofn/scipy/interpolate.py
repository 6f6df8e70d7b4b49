"""nanofn.scipy.interpolate: interpolation on a rectangular grid (jax.scipy.interpolate's names).

`RegularGridInterpolator` is JAX's: linear or nearest interpolation of values given on a
grid of strictly increasing coordinates along each axis, a pytree (grid, values and
fill value are its leaves), so it can be passed through `jit`, `grad` and `vmap`. It is
built from `nanofn.numpy` (`searchsorted`, gathers, weights), so it is differentiable in
the query points, the values and the grid coordinates.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy.interpolate import RegularGridInterpolator
    >>> interp = RegularGridInterpolator((fnp.array([0.0, 1.0, 2.0]),), fnp.array([0.0, 10.0, 40.0]))
    >>> interp(fnp.array([0.5, 1.5, 3.0]))
    Array([ 5., 25., nan], dtype=float32)
"""

from __future__ import annotations

import functools
import itertools
import operator

import numpy as np

import nanofn.numpy as fnp
from nanofn.numpy._dtypes import is_weak, promote_float
from nanofn.tree_util import register_pytree_node

__all__ = ["RegularGridInterpolator"]

_METHODS = ("linear", "nearest")


def _check_method(method):
    if method not in _METHODS:
        raise ValueError(f"RegularGridInterpolator: method {method!r} is not defined; use one "
                         f"of {list(_METHODS)}")


def _ndim_coords_from_arrays(points, ndim):
    """A tuple of coordinate arrays, or one array, as a (..., ndim) array."""
    if isinstance(points, tuple) and len(points) == 1:
        points = points[0]
    if isinstance(points, tuple):
        arrays = fnp.broadcast_arrays(*(fnp.asarray(p) for p in points))
        return fnp.stack(promote_float(*arrays), axis=-1)
    points = fnp.asarray(points)
    if points.ndim == 1:
        points = points.reshape(-1, ndim)
    return points


class RegularGridInterpolator:
    """Interpolate values given on a regular (rectangular) grid, as JAX's and scipy's class.

    Mirrors `jax.scipy.interpolate.RegularGridInterpolator`. As in JAX, each axis of
    `points` must be strictly increasing (a decreasing axis gives wrong results, unchecked
    so that the class works under `jit`), and `bounds_error=True` is not supported.

    Args:
        points: a sequence of N one-dimensional arrays, the grid's coordinates along each of
            the first N axes of `values`, strictly increasing, each of length 2 or more.
        values: the values on the grid, of shape `(len(points[0]), ..., len(points[N-1]),
            *trailing)`; integer values are converted to the default float type.
        method: `"linear"` (multilinear) or `"nearest"` (the nearest grid point, halves
            towards the lower one).
        bounds_error: must be False (JAX raises `NotImplementedError` otherwise).
        fill_value: the value for query points outside the grid, NaN by default; `None`
            extrapolates from the edge cells instead. The result's dtype is promoted
            with it, as in JAX (a Python scalar takes the result's dtype).

    Calling the interpolator with `xi` (an array of shape `(..., N)`, a tuple of N arrays
    that broadcast together, or a one-dimensional array of flattened N-tuples) and an
    optional `method` gives an array of shape `xi.shape[:-1] + values.shape[N:]`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.interpolate import RegularGridInterpolator
        >>> points = (fnp.array([1, 2, 3]), fnp.array([4, 5, 6]))
        >>> values = fnp.array([[10, 20, 30], [40, 50, 60], [70, 80, 90]])
        >>> interpolate = RegularGridInterpolator(points, values, method="linear")
        >>> interpolate(fnp.array([[1.5, 4.5], [2.2, 5.8]]))
        Array([30., 64.], dtype=float32)
        >>> interpolate(fnp.array([[1.5, 4.5], [2.2, 5.8]]), method="nearest")
        Array([10., 60.], dtype=float32)
    """

    def __init__(self, points, values, method="linear", bounds_error=False,
                 fill_value=np.nan):
        _check_method(method)
        self.method = method
        self.bounds_error = bounds_error
        if bounds_error:
            raise NotImplementedError("RegularGridInterpolator: bounds_error=True is not "
                                      "supported (it cannot be checked under jit); use "
                                      "bounds_error=False")
        values = fnp.asarray(values)
        if isinstance(points, (str, bytes)) or not hasattr(points, "__len__"):
            raise TypeError("RegularGridInterpolator: points must be a sequence of 1-D arrays, "
                            f"got {type(points).__name__}")
        if len(points) > values.ndim:
            raise ValueError(f"RegularGridInterpolator: there are {len(points)} point arrays, "
                             f"but values has {values.ndim} dimensions (shape "
                             f"{tuple(values.shape)})")
        (values,) = promote_float(values)
        grid = tuple(fnp.asarray(p) for p in points)
        for axis, g in enumerate(grid):
            if g.ndim != 1 or g.shape[0] < 2:
                raise ValueError(f"RegularGridInterpolator: points[{axis}] must be a 1-D array "
                                 f"of length 2 or more, got shape {tuple(g.shape)}")
            if g.shape[0] != values.shape[axis]:
                raise ValueError(f"RegularGridInterpolator: there are {g.shape[0]} points in "
                                 f"dimension {axis}, but values has {values.shape[axis]} "
                                 f"(shape {tuple(values.shape)})")
        if fill_value is not None:
            # a Python scalar stays one: weakly typed, it takes the result's dtype
            fill_value = fill_value if is_weak(fill_value) else fnp.asarray(fill_value)
            fill_dtype = fnp.result_type(fill_value)
            if not np.can_cast(fill_dtype, values.dtype, casting="same_kind"):
                raise ValueError("RegularGridInterpolator: fill_value must be None or of a type "
                                 f"compatible with values ({values.dtype}), got {fill_dtype}")
        self.fill_value = fill_value
        self.grid = grid
        self.values = values

    def __call__(self, xi, method=None):
        method = self.method if method is None else method
        _check_method(method)
        ndim = len(self.grid)
        xi = _ndim_coords_from_arrays(xi, ndim)
        if xi.shape[-1] != ndim:
            raise ValueError(f"RegularGridInterpolator: the requested sample points xi have "
                             f"dimension {xi.shape[-1]}, but this interpolator has dimension "
                             f"{ndim}")
        xi_shape = tuple(xi.shape)
        xi = xi.reshape(-1, xi_shape[-1])
        indices, norm_distances, out_of_bounds = self._find_indices(xi.T)
        if method == "linear":
            result = self._evaluate_linear(indices, norm_distances)
        else:
            result = self._evaluate_nearest(indices, norm_distances)
        if self.fill_value is not None:
            shape = tuple(result.shape[:1]) + (1,) * (result.ndim - 1)
            # promoted with the fill value, as JAX (a float64 fill gives float64)
            result = fnp.where(out_of_bounds.reshape(shape), self.fill_value, result)
        return result.reshape(xi_shape[:-1] + tuple(self.values.shape[ndim:]))

    def _evaluate_linear(self, indices, norm_distances):
        trailing = (slice(None),) + (None,) * (self.values.ndim - len(indices))
        terms = []
        for corner in itertools.product(*[(i, i + 1) for i in indices]):
            weight = functools.reduce(operator.mul, [
                (1 - y) if c is i else y for c, i, y in zip(corner, indices, norm_distances)])
            terms.append(self.values[corner] * weight[trailing])
        return functools.reduce(operator.add, terms)

    def _evaluate_nearest(self, indices, norm_distances):
        nearest = tuple(fnp.where(y <= 0.5, i, i + 1) for i, y in zip(indices, norm_distances))
        return self.values[nearest]

    def _find_indices(self, xi):
        indices, norm_distances = [], []
        out_of_bounds = fnp.zeros((xi.shape[1],), dtype=bool)
        for x, g in zip(xi, self.grid):
            i = fnp.clip(fnp.searchsorted(g, x) - 1, 0, g.shape[0] - 2)
            lower = g[i]
            indices.append(i)
            norm_distances.append((x - lower) / (g[i + 1] - lower))
            out_of_bounds = out_of_bounds | (x < g[0]) | (x > g[-1])
        return indices, norm_distances, out_of_bounds


def _flatten(obj):
    return (obj.grid, obj.values, obj.fill_value), (obj.method, obj.bounds_error)


def _unflatten(aux, children):
    # leaves may be tracers or placeholders (vmap's in_axes, tree.map results): no checks
    obj = object.__new__(RegularGridInterpolator)
    obj.grid, obj.values, obj.fill_value = children
    obj.method, obj.bounds_error = aux
    return obj


register_pytree_node(RegularGridInterpolator, _flatten, _unflatten)
