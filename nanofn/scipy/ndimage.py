"""nanofn.scipy.ndimage: interpolation on an array's grid (jax.scipy.ndimage's names).

`map_coordinates` samples an array at arbitrary (fractional) coordinates, with JAX's
orders (0: nearest, 1: linear) and boundary modes. It is written with `nanofn.numpy`
gathers and weights, so it is differentiable in `input` and in `coordinates` (through
the linear weights; order 0 has zero gradient in the coordinates, as in JAX), and works
under `jit` and `vmap`.

As in JAX, `mode="constant"` and `mode="wrap"` mean what scipy calls `"grid-constant"`
and `"grid-wrap"`: the grid is extended by `cval`, or periodically, before interpolating.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy.ndimage import map_coordinates
    >>> map_coordinates(fnp.array([0.0, 10.0, 20.0]), [fnp.array([0.5, 1.25])], order=1)
    Array([ 5. , 12.5], dtype=float32)
"""

from __future__ import annotations

import functools
import itertools
import operator

import numpy as np

import nanofn.numpy as fnp
from nanofn import lax

__all__ = ["map_coordinates"]


def _mirror_index(index, size):
    s = size - 1  # the period of a mirror without repeated edges is 2 * (size - 1)
    if s == 0:
        return fnp.zeros_like(index)
    return fnp.abs((index + s) % (2 * s) - s)


def _reflect_index(index, size):
    # reflect repeats the edge sample: mirror the half-sample grid, then halve
    return fnp.floor_divide(_mirror_index(2 * index + 1, 2 * size + 1) - 1, 2)


_INDEX_FIXERS = {
    "constant": lambda index, size: fnp.clip(index, 0, size - 1),
    "nearest": lambda index, size: fnp.clip(index, 0, size - 1),
    "wrap": lambda index, size: index % size,
    "mirror": _mirror_index,
    "reflect": _reflect_index,
}


def _nearest_nodes(coordinate):
    if np.issubdtype(coordinate.dtype, np.integer):
        return [(coordinate.astype(np.int32), None)]
    index = lax.round(coordinate).astype(np.int32)  # half away from zero, as JAX
    return [(index, None)]


def _linear_nodes(coordinate):
    lower = fnp.floor(coordinate)  # integer coordinates stay integers (weights 1 and 0)
    upper_weight = coordinate - lower
    index = lower.astype(np.int32)
    return [(index, 1 - upper_weight), (index + 1, upper_weight)]


def map_coordinates(input, coordinates, order, mode="constant", cval=0.0):
    """Sample `input` at `coordinates` by nearest (order 0) or linear (order 1) interpolation.

    Mirrors `jax.scipy.ndimage.map_coordinates` (and `scipy.ndimage.map_coordinates` for
    orders 0 and 1, with no prefilter).

    Args:
        input: the N-dimensional array to sample.
        coordinates: a sequence of N arrays of one shape: the coordinates along each axis
            of `input` of the points to sample (fractional indices).
        order: 0 (nearest sample, halves rounded away from zero) or 1 (linear).
        mode: how points beyond the edges are sampled: `"constant"` (the grid is
            extended by `cval`, scipy's `"grid-constant"`), `"nearest"` (the edge sample),
            `"wrap"` (periodic, scipy's `"grid-wrap"`), `"mirror"` (reflected about the
            edge sample's centre) or `"reflect"` (reflected about the edge, repeating it).
        cval: the value beyond the edges in `"constant"` mode.

    Returns:
        An array of the coordinates' shape and `input`'s dtype (integer inputs are
        rounded half away from zero).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.ndimage import map_coordinates
        >>> image = fnp.arange(12.0).reshape(3, 4)
        >>> map_coordinates(image, [fnp.array([0.5, 2.0]), fnp.array([0.5, 4.0])], order=1)
        Array([2.5, 0. ], dtype=float32)
        >>> map_coordinates(image, [fnp.array([2.0]), fnp.array([4.0])], order=1, mode="wrap")
        Array([8.], dtype=float32)
    """
    input_arr = fnp.asarray(input)
    if isinstance(coordinates, (str, bytes)) or not hasattr(coordinates, "__len__"):
        raise TypeError("map_coordinates: coordinates must be a sequence of input.ndim arrays, "
                        f"got {type(coordinates).__name__}")
    coordinate_arrs = [fnp.asarray(c) for c in coordinates]
    if len(coordinate_arrs) != input_arr.ndim:
        raise ValueError("map_coordinates: coordinates must be a sequence of length input.ndim, "
                         f"but {len(coordinate_arrs)} != {input_arr.ndim} (input shape "
                         f"{tuple(input_arr.shape)})")
    shapes = {tuple(c.shape) for c in coordinate_arrs}
    if len(shapes) > 1:
        raise ValueError("map_coordinates: the coordinate arrays must have one shape, got "
                         f"{[tuple(c.shape) for c in coordinate_arrs]}")
    if 0 in tuple(input_arr.shape):
        raise ValueError(f"map_coordinates: input must not be empty, got shape "
                         f"{tuple(input_arr.shape)}")
    index_fixer = _INDEX_FIXERS.get(mode)
    if index_fixer is None:
        raise NotImplementedError(
            f"map_coordinates does not support mode {mode!r}; the supported modes are "
            f"{list(_INDEX_FIXERS)}")
    if order == 0:
        interp_nodes = _nearest_nodes
    elif order == 1:
        interp_nodes = _linear_nodes
    else:
        raise NotImplementedError(f"map_coordinates supports order 0 and 1, got order={order!r}")
    cval = fnp.asarray(cval, dtype=input_arr.dtype)

    per_axis = []
    for coordinate, size in zip(coordinate_arrs, input_arr.shape):
        nodes = []
        for index, weight in interp_nodes(coordinate):
            valid = ((index >= 0) & (index < size)) if mode == "constant" else None
            nodes.append((index_fixer(index, size), valid, weight))
        per_axis.append(nodes)

    outputs = []
    for corner in itertools.product(*per_axis):
        indices = tuple(node[0] for node in corner)
        contribution = input_arr[indices]
        valids = [node[1] for node in corner if node[1] is not None]
        if valids:
            contribution = fnp.where(functools.reduce(operator.and_, valids), contribution, cval)
        weights = [node[2] for node in corner if node[2] is not None]
        if weights:
            contribution = functools.reduce(operator.mul, weights) * contribution
        outputs.append(contribution)
    result = functools.reduce(operator.add, outputs)
    if np.issubdtype(input_arr.dtype, np.integer):
        result = lax.round(result)
    return result.astype(input_arr.dtype)
