"""Collectives over named axes: psum, pmean, pmax, pmin, all_gather, psum_scatter,
ppermute, pshuffle, all_to_all, axis_index, axis_size (jax.lax's names and meanings).

A collective combines the values that every *instance* of a program holds along an axis
named by `vmap(..., axis_name=)` or `pmap(..., axis_name=)` (see `nanofn/_named_axes.py`).

* Under `vmap` the instances are the examples of one batch. The collective's batching rule
  (`batch_named`, which `BatchTrace` hands the trace itself so the rule can tell whether
  the collective names *its* axis) turns it into an array operation along the batch
  dimension: `psum` is a sum over the batch, `all_gather` a transpose, and so on. A
  collective over some other name acts on each example alone.
* Under `pmap` the instances are devices, and `impl` asks the axis's device group to
  exchange the buffers (MPI under `nanofn.distributed`, a copy on one device).

Each primitive takes one axis name (psum, pmax and pmin take a tuple), and several
operands where that is cheap (psum of a pytree is one primitive, so a device group can
send all its leaves as one message). The public wrappers accept a tuple of names and
pytrees, and write the tiled variants as reshapes around the untiled primitives.

Derivatives follow JAX: all these maps are linear (except pmax/pmin), and the transpose of
psum is psum, of all_gather psum_scatter (and back), of ppermute the inverse permutation,
of all_to_all the all_to_all with split and concat axes swapped.

Because a collective may be bound with no argument traced by the vmap that its name
refers to (`psum(1.0, "i")`, `axis_index("i")`), the primitives have their own `bind`: it
first raises the arguments into that vmap's trace, so its batching rule always runs.
"""

from __future__ import annotations

import math

import numpy as np

from nanofn import _core as core
from nanofn import _named_axes
from nanofn._core import Primitive, ShapedArray, Tracer
from nanofn.ops._base import (
    _aval_shape,
    _moveaxis,
    bdim_to_front,
    broadcast_in_dim_p,
    convert_element_type_p,
    div_p,
    eq_p,
    iota_p,
    mul_p,
    reduce_max_p,
    reduce_min_p,
    reduce_sum_p,
    reshape_p,
    select_n_p,
    stop_gradient_p,
)

__all__ = [
    "all_gather",
    "all_to_all",
    "axis_index",
    "axis_size",
    "pmax",
    "pmean",
    "pbroadcast",
    "pmin",
    "ppermute",
    "pshuffle",
    "psum",
    "psum_scatter",
    "pswapaxes",
]


# ------------------------------------------------------------------------ shared machinery


def _names(axis_name) -> tuple:
    return tuple(axis_name) if isinstance(axis_name, (tuple, list)) else (axis_name,)


def _as_operand(x):
    """Python scalars become Arrays with nanofn's default dtypes; numpy values stay numpy,
    so that `bind` copies a caller's writable buffer only where a transformation may keep
    it: a collective run eagerly reads it into a new result without a copy."""
    if isinstance(x, Tracer) or type(x) is core.Array:
        return x
    if type(x) in core._PY_SCALAR_DTYPE:
        return core.Array(core.scalar_value(x))
    if isinstance(x, (np.ndarray, np.generic)):
        return core.check_numeric(np.asarray(x))
    raise TypeError(f"collectives take arrays (or pytrees of arrays), got {type(x).__name__}")


def _def_bind(prim, key):
    """Give a collective its `bind`: raise the arguments into the trace of each vmap whose
    axis the collective names (innermost last), then bind as usual. Device axes are
    recorded resolved (the frame, not the name), so rules that run after the pmap
    returns (the backward pass of `grad(pmap(f))`) reach the same devices."""
    def bind(*args, **params):
        names = params[key]
        frames = [_named_axes.lookup(n) for n in (names if key == "axes" else (names,))]
        if any(f.group is not None for f in frames):
            resolved = tuple(f if f.group is not None else n
                             for f, n in zip(frames, names if key == "axes" else (names,)))
            params = dict(params, **{key: resolved if key == "axes" else resolved[0]})
        batch = sorted((f for f in frames if f.main is not None), key=lambda f: f.main.level)
        dynamic = core._state.dynamic_trace
        target = None
        for frame in batch:
            main = frame.main
            if not main.alive:
                raise core.UnexpectedTracerError(
                    f"{prim.name} names axis {frame.name!r} of a vmap that has finished")
            if dynamic is not None and dynamic.level > main.level:
                continue  # being staged into a jaxpr: the vmap sees it when the jaxpr runs
            trace = main.trace
            args = [a if isinstance(a, Tracer) and a._trace.main.level >= main.level
                    else trace.full_raise(core.owned(a)) for a in args]
            target = main
        if not args and target is not None:  # axis_index: no operand to carry the trace
            return target.trace.process_primitive(prim, [], params)
        return core.bind(prim, *args, **params)
    prim.bind = bind
    prim.effectful = True  # never constant-folded: its value depends on where it runs


def _my_frame(trace, names):
    """The frame of this vmap trace if the collective names its axis, else None."""
    frame = _named_axes.frame_of_main(trace.main)
    if frame is None or frame.name not in names or _named_axes.lookup(frame.name) is not frame:
        return None
    return frame


def _device_group(name, prim):
    frame = _named_axes.lookup(name)
    if frame.group is None:
        raise RuntimeError(f"{prim}: axis {name!r} is a vmap axis, but the collective ran "
                           "outside that vmap's trace (internal error)")
    return frame.group


def _c(x, value):
    return np.asarray(value, dtype=x.dtype)


def _broadcast_front(x, d, n):
    """Put the batch dim of `x` at the front, broadcasting an unbatched `x` to `n` rows."""
    if d is not None:
        return bdim_to_front(x, d)
    shape = tuple(_aval_shape(x))
    return broadcast_in_dim_p.bind(x, shape=(n,) + shape,
                                   broadcast_dimensions=tuple(range(1, len(shape) + 1)))


def _zeros_like(x):
    return broadcast_in_dim_p.bind(np.zeros((), x.dtype), shape=tuple(x.shape),
                                   broadcast_dimensions=())


# ------------------------------------------------------------------------ psum, pmax, pmin


def _reduction(name, op, array_reduce, unbatched):
    """A collective reduction over a tuple of axis names, of any number of operands."""
    prim = Primitive(name, multiple_results=True)
    prim.impl = lambda *xs, axes: _reduction_impl(prim, op, xs, axes)
    prim.abstract_eval = lambda *avals, axes: list(avals)

    def batch_named(trace, vals, dims, *, axes):
        frame = _my_frame(trace, axes)
        if frame is None:  # over other axes: each example on its own, batch dims kept
            return prim.bind(*vals, axes=axes), list(dims)
        outs = [unbatched(v, frame.size) if d is None else array_reduce(v, d)
                for v, d in zip(vals, dims)]
        rest = tuple(a for a in axes if a != frame.name)
        if rest:
            outs = prim.bind(*outs, axes=rest)
        return outs, [None] * len(outs)

    prim.batch_named = batch_named
    _def_bind(prim, "axes")
    return prim


def _reduction_impl(prim, op, xs, axes):
    xs = list(xs)
    for name in axes:
        xs = _device_group(name, prim).allreduce(xs, op)
    return xs


psum_p = _reduction(
    "psum", "psum", lambda v, d: reduce_sum_p.bind(v, axes=(d,)),
    lambda v, n: mul_p.bind(v, _c(v, n)))
pmax_p = _reduction("pmax", "pmax", lambda v, d: reduce_max_p.bind(v, axes=(d,)),
                    lambda v, n: v)
pmin_p = _reduction("pmin", "pmin", lambda v, d: reduce_min_p.bind(v, axes=(d,)),
                    lambda v, n: v)


def _psum_jvp(primals, tangents, *, axes):
    out = psum_p.bind(*primals, axes=axes)
    live = [i for i, t in enumerate(tangents) if t is not None]
    t_live = psum_p.bind(*[tangents[i] for i in live], axes=axes) if live else []
    t_out = [None] * len(primals)
    for i, t in zip(live, t_live):
        t_out[i] = t
    return out, t_out


def _psum_vjp(cts, primals, outs, needs, *, axes):
    # the transpose of psum is psum of the cotangent
    live = [i for i, (c, need) in enumerate(zip(cts, needs)) if need and c is not None]
    summed = psum_p.bind(*[cts[i] for i in live], axes=axes) if live else []
    out = [None] * len(primals)
    for i, c in zip(live, summed):
        out[i] = c
    return out


psum_p.jvp = _psum_jvp
psum_p.vjp_joint = _psum_vjp


def _extremum_rules(prim):
    """pmax/pmin: the derivative flows to the instances that hold the extremum, shared
    equally between ties: d out = psum(mask * dx) / psum(mask)."""
    def masks(primals, outs):
        res = []
        for x, o in zip(primals, outs):
            hit = eq_p.bind(stop_gradient_p.bind(x), stop_gradient_p.bind(o))
            res.append(convert_element_type_p.bind(hit, new_dtype=np.dtype(x.dtype)))
        return res

    def jvp(primals, tangents, *, axes):
        outs = prim.bind(*primals, axes=axes)
        ms = masks(primals, outs)
        counts = psum_p.bind(*ms, axes=axes)
        t_out = []
        for t, m, c in zip(tangents, ms, counts):
            t_out.append(None if t is None else
                         div_p.bind(psum_p.bind(mul_p.bind(t, m), axes=axes)[0], c))
        return outs, t_out

    def vjp(cts, primals, outs, needs, *, axes):
        ms = masks(primals, outs)
        counts = psum_p.bind(*ms, axes=axes)
        res = []
        for ct, m, c, need in zip(cts, ms, counts, needs):
            if not need or ct is None:
                res.append(None)
                continue
            total = psum_p.bind(ct, axes=axes)[0]
            res.append(div_p.bind(mul_p.bind(total, m), c))
        return res

    prim.jvp = jvp
    prim.vjp_joint = vjp


_extremum_rules(pmax_p)
_extremum_rules(pmin_p)


# ------------------------------------------------------------------------ index groups
# `axis_index_groups` (a partition of the axis's indices) makes a collective act within
# each group. It is written with the collectives above: every instance gathers the whole
# axis, then keeps its own group's members (for reductions, a select with a mask over the
# gathered axis, so groups may differ in size; all_gather and psum_scatter need equal
# sizes, as in JAX). Its derivatives, batching and MPI transport are those of all_gather
# and indexing; it sends the whole axis's values rather than one group's.


def _index_groups(fname, axis_name, groups):
    """(n, groups as lists) after checking that `groups` partitions range(n)."""
    names = _names(axis_name)
    n = axis_size(names)
    groups = [[int(i) for i in g] for g in groups]
    if sorted(i for g in groups for i in g) != list(range(n)) or not all(groups):
        raise ValueError(f"{fname}: axis_index_groups must split the indices 0..{n - 1} of "
                         f"axis {axis_name!r} into non-empty groups, each index once; got "
                         f"{groups}")
    return n, groups


def _my_row(table, axis_name):
    """Row `axis_index(axis_name)` of the constant numpy `table`, as a traced value."""
    from nanofn import numpy as fnp
    return fnp.asarray(table)[axis_index(_names(axis_name))]


def _grouped_reduce(prim, x, axis_name, groups):
    from nanofn import numpy as fnp
    from nanofn.tree_util import tree_map
    n, groups = _index_groups(prim.name, axis_name, groups)
    same = np.zeros((n, n), bool)
    for g in groups:
        same[np.ix_(g, g)] = True
    mine = _my_row(same, axis_name)  # (n,): which gathered rows are in my group

    def reduce(v):
        v = _as_operand(v)
        everyone = all_gather(v, axis_name)
        keep = fnp.reshape(mine, (n,) + (1,) * (everyone.ndim - 1))
        if prim is psum_p:
            return fnp.sum(fnp.where(keep, everyone, fnp.zeros((), everyone.dtype)), axis=0)
        fill = _extreme_of(everyone.dtype, lowest=prim is pmax_p)
        picked = fnp.where(keep, everyone, fill)
        return fnp.max(picked, axis=0) if prim is pmax_p else fnp.min(picked, axis=0)
    return tree_map(reduce, x)


def _extreme_of(dtype, lowest):
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.inexact):
        return -np.inf if lowest else np.inf
    if dtype == np.bool_:
        return not lowest
    info = np.iinfo(dtype)
    return info.min if lowest else info.max


def _equal_groups(fname, axis_name, groups):
    n, groups = _index_groups(fname, axis_name, groups)
    if len({len(g) for g in groups}) != 1:
        raise ValueError(f"{fname}: axis_index_groups must all have the same size, got "
                         f"{groups}")
    members = np.zeros((n, len(groups[0])), np.int32)  # row i: the members of i's group
    position = np.zeros(n, np.int32)                   # i's place within its group
    for g in groups:
        members[g] = g
        position[g] = np.arange(len(g))
    return members, position


def _tree_reduce(prim, x, axis_name, axis_index_groups):
    from nanofn.tree_util import tree_flatten, tree_unflatten
    if axis_index_groups is not None:
        return _grouped_reduce(prim, x, axis_name, axis_index_groups)
    leaves, tree = tree_flatten(x)
    names = _names(axis_name)
    if not names or not leaves:
        return x
    outs = prim.bind(*[_as_operand(v) for v in leaves], axes=names)
    return tree_unflatten(tree, outs)


def psum(x, axis_name, *, axis_index_groups=None):
    """Sum `x` (an array or a pytree of arrays) over every instance along `axis_name`.

    Args:
        x: array, or pytree of arrays, to sum.
        axis_name: a name bound by an enclosing `vmap(..., axis_name=)` or `pmap`, or a
            tuple of names (summing over all of them).
        axis_index_groups: optional partition of the axis's indices (a list of lists);
            each instance then sums over its own group only.

    Returns:
        The sum, the same on every instance (of a group), with the structure of `x`.
        Booleans are counted: their sum is int32, as in JAX.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.vmap(lambda v: v / nanofn.lax.psum(v, "i"), axis_name="i")(fnp.arange(4.0))
        Array([0.        , 0.16666667, 0.33333334, 0.5       ], dtype=float32)
    """
    from nanofn.tree_util import tree_map
    return _tree_reduce(psum_p, tree_map(_count_bools, x), axis_name, axis_index_groups)


def _count_bools(v):
    """A boolean operand of psum as int32 (JAX's rule: psum counts the True values)."""
    v = _as_operand(v)
    if np.dtype(v.dtype) == np.bool_:
        return convert_element_type_p.bind(v, new_dtype=np.dtype(np.int32))
    return v


def pmax(x, axis_name, *, axis_index_groups=None):
    """Maximum of `x` over every instance along `axis_name` (pytrees and tuples of names
    as in `psum`). Its gradient goes to the instances holding the maximum (ties share it).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.vmap(lambda v: nanofn.lax.pmax(v, "i"), axis_name="i")(fnp.array([1., 5., 2.]))
        Array([5., 5., 5.], dtype=float32)
    """
    return _tree_reduce(pmax_p, x, axis_name, axis_index_groups)


def pmin(x, axis_name, *, axis_index_groups=None):
    """Minimum of `x` over every instance along `axis_name` (see `pmax`).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.vmap(lambda v: nanofn.lax.pmin(v, "i"), axis_name="i")(fnp.array([1., 5., 2.]))
        Array([1., 1., 1.], dtype=float32)
    """
    return _tree_reduce(pmin_p, x, axis_name, axis_index_groups)


def axis_size(axis_name) -> int:
    """The number of instances along `axis_name` (the product, for a tuple of names).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.vmap(lambda v: v * nanofn.lax.axis_size("i"), axis_name="i")(fnp.ones(3))
        Array([3., 3., 3.], dtype=float32)
    """
    return math.prod(_named_axes.lookup(n).size for n in _names(axis_name))


def pmean(x, axis_name, *, axis_index_groups=None):
    """Mean of `x` over every instance along `axis_name` (pytrees and tuples of names as
    in `psum`). Integer inputs give float32 means.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.vmap(lambda v: v - nanofn.lax.pmean(v, "i"), axis_name="i")(fnp.arange(3.0))
        Array([-1.,  0.,  1.], dtype=float32)
    """
    from nanofn.tree_util import tree_map
    n = axis_size(axis_name)
    if axis_index_groups is not None:  # JAX's: the size of the first group
        n = len(_index_groups("pmean", axis_name, axis_index_groups)[1][0])
    total = psum(x, axis_name, axis_index_groups=axis_index_groups)

    def mean(s):
        if not np.issubdtype(s.dtype, np.inexact):
            s = convert_element_type_p.bind(s, new_dtype=np.dtype(np.float32))
        return div_p.bind(s, _c(s, n))
    return tree_map(mean, total)


# ------------------------------------------------------------------------ all_gather


all_gather_p = Primitive("all_gather")


def _all_gather_abstract_eval(x, *, axis_name, axis, axis_size):
    del axis_name  # unused
    if not 0 <= axis <= len(x.shape):
        raise ValueError(f"all_gather: axis={axis} is out of range for an operand of shape "
                         f"{x.shape}; it must be in [0, {len(x.shape)}]")
    shape = list(x.shape)
    shape.insert(axis, axis_size)
    return ShapedArray(shape, x.dtype)


all_gather_p.abstract_eval = _all_gather_abstract_eval
all_gather_p.impl = lambda x, *, axis_name, axis, axis_size: \
    _device_group(axis_name, all_gather_p).all_gather(x, axis)


def _all_gather_batch(trace, vals, dims, *, axis_name, axis, axis_size):
    (x,), (d,) = vals, dims
    if _my_frame(trace, (axis_name,)) is None:
        if d is None:
            return all_gather_p.bind(x, axis_name=axis_name, axis=axis, axis_size=axis_size), None
        return all_gather_p.bind(bdim_to_front(x, d), axis_name=axis_name, axis=axis + 1,
                                 axis_size=axis_size), 0
    # every example's value stacked at `axis`: the batch itself, the same for every example
    return _moveaxis(_broadcast_front(x, d, axis_size), 0, axis), None


all_gather_p.batch_named = _all_gather_batch
all_gather_p.jvp_terms = [lambda t, x, *, out, **p: all_gather_p.bind(t, **p)]
all_gather_p.vjp = [lambda ct, x, *, out, axis_name, axis, axis_size: psum_scatter_p.bind(
    ct, axis_name=axis_name, scatter_dimension=axis, axis_size=axis_size)]
_def_bind(all_gather_p, "axis_name")


def _merge_axes(x, axis):
    """Merge axes `axis` and `axis + 1` of `x` into one."""
    shape = tuple(_aval_shape(x))
    return reshape_p.bind(x, new_sizes=shape[:axis] + (shape[axis] * shape[axis + 1],) +
                          shape[axis + 2:])


def _split_axis(x, axis, outer):
    """Split axis `axis` of `x` into (outer, size // outer)."""
    shape = tuple(_aval_shape(x))
    return reshape_p.bind(x, new_sizes=shape[:axis] + (outer, shape[axis] // outer) +
                          shape[axis + 1:])


def _canonical(axis, ndim, what, fname):
    if not -ndim <= axis < ndim:
        raise ValueError(f"{fname}: {what}={axis} is out of range for rank {ndim}")
    return axis % ndim


def all_gather(x, axis_name, *, axis_index_groups=None, axis=0, tiled=False):
    """Gather `x` from every instance along `axis_name`, stacked along a new axis `axis`
    (or, with `tiled=True`, concatenated along the existing axis `axis`).

    Args:
        x: array or pytree of arrays.
        axis_name: a bound axis name, or a tuple of names (the first one major).
        axis_index_groups: optional partition of the axis's indices into groups of one
            size; each instance then gathers its own group (in the group's order).
        axis: where the gathered axis goes.
        tiled: concatenate instead of stacking.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.vmap(lambda v: nanofn.lax.all_gather(v, "i"), axis_name="i")(fnp.arange(2.0))
        Array([[0., 1.],
               [0., 1.]], dtype=float32)
    """
    from nanofn.tree_util import tree_map
    names = _names(axis_name)
    if axis_index_groups is not None:
        members, _ = _equal_groups("all_gather", axis_name, axis_index_groups)
        mine = _my_row(members, axis_name)

    def gather(v):
        v = _as_operand(v)
        ndim = len(_aval_shape(v))
        ax = _canonical(axis, ndim if tiled else ndim + 1, "axis", "all_gather")
        if axis_index_groups is not None:  # the whole axis, then my group's rows in order
            from nanofn import numpy as fnp
            group = fnp.take(all_gather(v, axis_name), mine, axis=0)
            if tiled:
                return _merge_axes(_moveaxis(group, 0, ax), ax)
            return _moveaxis(group, 0, ax)
        for name in reversed(names):  # innermost name first: the first name ends up major
            v = all_gather_p.bind(v, axis_name=name, axis=ax,
                                  axis_size=_named_axes.lookup(name).size)
        for _ in names[1:]:
            v = _merge_axes(v, ax)
        return _merge_axes(v, ax) if tiled else v
    return tree_map(gather, x)


# ------------------------------------------------------------------------ psum_scatter


psum_scatter_p = Primitive("psum_scatter")


def _psum_scatter_abstract_eval(x, *, axis_name, scatter_dimension, axis_size):
    shape = list(x.shape)
    if not 0 <= scatter_dimension < len(shape) or shape[scatter_dimension] != axis_size:
        raise ValueError(
            f"psum_scatter: the operand's scatter_dimension={scatter_dimension} must exist "
            f"and have the size of axis {axis_name!r} ({axis_size}); the operand has shape "
            f"{tuple(shape)}")
    del shape[scatter_dimension]
    return ShapedArray(shape, x.dtype)


psum_scatter_p.abstract_eval = _psum_scatter_abstract_eval
psum_scatter_p.impl = lambda x, *, axis_name, scatter_dimension, axis_size: \
    _device_group(axis_name, psum_scatter_p).reduce_scatter(x, scatter_dimension)


def _psum_scatter_batch(trace, vals, dims, *, axis_name, scatter_dimension, axis_size):
    (x,), (d,) = vals, dims
    if _my_frame(trace, (axis_name,)) is None:
        if d is None:
            return psum_scatter_p.bind(x, axis_name=axis_name,
                                       scatter_dimension=scatter_dimension,
                                       axis_size=axis_size), None
        return psum_scatter_p.bind(bdim_to_front(x, d), axis_name=axis_name,
                                   scatter_dimension=scatter_dimension + 1,
                                   axis_size=axis_size), 0
    total = mul_p.bind(x, _c(x, axis_size)) if d is None else reduce_sum_p.bind(x, axes=(d,))
    return total, scatter_dimension  # example j keeps row j of the scattered dimension


psum_scatter_p.batch_named = _psum_scatter_batch
psum_scatter_p.jvp_terms = [lambda t, x, *, out, **p: psum_scatter_p.bind(t, **p)]
psum_scatter_p.vjp = [lambda ct, x, *, out, axis_name, scatter_dimension, axis_size:
                      all_gather_p.bind(ct, axis_name=axis_name, axis=scatter_dimension,
                                        axis_size=axis_size)]
_def_bind(psum_scatter_p, "axis_name")


def _grouped_scatter(x, axis_name, scatter_dimension, groups, tiled):
    """psum_scatter within equal-size index groups: the group's sum, then my part of it."""
    from nanofn import numpy as fnp
    from nanofn.tree_util import tree_map
    members, position = _equal_groups("psum_scatter", axis_name, groups)
    size = members.shape[1]
    total = psum(x, axis_name, axis_index_groups=groups)
    mine = _my_row(position, axis_name)

    def part(v):
        shape = tuple(_aval_shape(v))
        sd = _canonical(scatter_dimension, len(shape), "scatter_dimension", "psum_scatter")
        if (shape[sd] % size) if tiled else (shape[sd] != size):
            raise ValueError(
                f"psum_scatter: dimension {sd} of the operand (shape {shape}) must "
                f"{'be divisible by' if tiled else 'equal'} the group size {size}")
        if not tiled:
            return fnp.take(v, mine, axis=sd)
        block = shape[sd] // size
        return fnp.take(v, mine * block + np.arange(block), axis=sd)
    return tree_map(part, total)


def psum_scatter(x, axis_name, *, scatter_dimension=0, axis_index_groups=None, tiled=False):
    """Sum `x` over the instances along `axis_name` and give each instance one part of the
    sum: instance `i` gets row `i` of `scatter_dimension` (whose size must be the axis
    size), or with `tiled=True` the `i`-th of equal blocks of it. The transpose of
    `all_gather`; a reduce-scatter.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> xs = fnp.arange(4.0).reshape(2, 2)
        >>> nanofn.vmap(lambda v: nanofn.lax.psum_scatter(v, "i"), axis_name="i")(xs)
        Array([2., 4.], dtype=float32)
    """
    from nanofn.tree_util import tree_map
    if axis_index_groups is not None:
        return _grouped_scatter(x, axis_name, scatter_dimension, axis_index_groups, tiled)
    names = _names(axis_name)
    sizes = [_named_axes.lookup(n).size for n in names]
    total = math.prod(sizes)

    def scatter(v):
        v = _as_operand(v)
        shape = tuple(_aval_shape(v))
        sd = _canonical(scatter_dimension, len(shape), "scatter_dimension", "psum_scatter")
        if tiled:
            if shape[sd] % total:
                raise ValueError(
                    f"psum_scatter(tiled=True): dimension {sd} of the operand (shape "
                    f"{shape}) must be divisible by the size of axis {axis_name!r} ({total})")
            v = _split_axis(v, sd, total)
        elif shape[sd] != total:
            raise ValueError(
                f"psum_scatter: dimension {sd} of the operand (shape {shape}) must equal the "
                f"size of axis {axis_name!r} ({total}); use tiled=True to scatter blocks")
        for name, size in zip(names[:-1], sizes[:-1]):
            v = _split_axis(v, sd, size)
        for name, size in zip(names, sizes):
            v = psum_scatter_p.bind(v, axis_name=name, scatter_dimension=sd, axis_size=size)
        return v
    return tree_map(scatter, x)


# ------------------------------------------------------------------------ ppermute


ppermute_p = Primitive("ppermute")
ppermute_p.abstract_eval = lambda x, *, axis_name, perm: x
ppermute_p.impl = lambda x, *, axis_name, perm: \
    _device_group(axis_name, ppermute_p).ppermute(x, perm)


def _ppermute_batch(trace, vals, dims, *, axis_name, perm):
    (x,), (d,) = vals, dims
    frame = _my_frame(trace, (axis_name,))
    if frame is None:
        return ppermute_p.bind(x, axis_name=axis_name, perm=perm), d
    from nanofn.ops._shape import concatenate_p, slice_p
    xs = _broadcast_front(x, d, frame.size)
    shape = tuple(_aval_shape(xs))
    src_of = {dst: src for src, dst in perm}
    rows = []
    for j in range(frame.size):
        if j in src_of:
            s = src_of[j]
            rows.append(slice_p.bind(xs, start_indices=(s,) + (0,) * (len(shape) - 1),
                                     limit_indices=(s + 1,) + shape[1:], strides=None))
        else:  # no instance sends to j: it receives zeros, as in JAX
            rows.append(broadcast_in_dim_p.bind(np.zeros((), xs.dtype), shape=(1,) + shape[1:],
                                                broadcast_dimensions=()))
    return concatenate_p.bind(*rows, dimension=0), 0


def _inverse(perm):
    return tuple((dst, src) for src, dst in perm)


ppermute_p.batch_named = _ppermute_batch
ppermute_p.jvp_terms = [lambda t, x, *, out, **p: ppermute_p.bind(t, **p)]
ppermute_p.vjp = [lambda ct, x, *, out, axis_name, perm:
                  ppermute_p.bind(ct, axis_name=axis_name, perm=_inverse(perm))]
_def_bind(ppermute_p, "axis_name")


def _check_perm(perm, n, fname):
    perm = tuple((int(s), int(d)) for s, d in perm)
    srcs, dsts = [s for s, _ in perm], [d for _, d in perm]
    if len(set(srcs)) != len(srcs) or len(set(dsts)) != len(dsts):
        raise ValueError(f"{fname}: perm={perm} sends from or to one index twice")
    bad = [i for i in srcs + dsts if not 0 <= i < n]
    if bad:
        raise ValueError(f"{fname}: perm={perm} holds index {bad[0]}, outside the axis "
                         f"of size {n}")
    return perm


def ppermute(x, axis_name, perm):
    """Send `x` from instance `src` to instance `dst` for each `(src, dst)` in `perm`;
    instances that receive nothing get zeros.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> shift = lambda v: nanofn.lax.ppermute(v, "i", [(0, 1), (1, 2), (2, 0)])
        >>> nanofn.vmap(shift, axis_name="i")(fnp.array([10., 20., 30.]))
        Array([30., 10., 20.], dtype=float32)
    """
    from nanofn.tree_util import tree_map
    names = _names(axis_name)
    n = axis_size(names)
    perm = _check_perm(perm, n, "ppermute")
    if len(names) == 1:
        return tree_map(lambda v: ppermute_p.bind(_as_operand(v), axis_name=names[0], perm=perm), x)
    # over several names: gather everything, and each instance picks its source row
    from nanofn.ops._shape import dynamic_index_in_dim
    src_of = np.zeros(n, np.int32)
    has_src = np.zeros(n, bool)
    for s, d in perm:
        src_of[d], has_src[d] = s, True
    me = axis_index(names)
    src = dynamic_index_in_dim(src_of, me, keepdims=False)
    keep = dynamic_index_in_dim(has_src, me, keepdims=False)

    def pick(v):
        v = _as_operand(v)
        row = dynamic_index_in_dim(all_gather(v, names), src, keepdims=False)
        return select_n_p.bind(keep, _zeros_like(row), row)
    return tree_map(pick, x)


def pshuffle(x, axis_name, perm):
    """Instance `i` receives `x` from instance `perm[i]` (`perm` lists every index once).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> f = lambda v: nanofn.lax.pshuffle(v, "i", [2, 0, 1])
        >>> nanofn.vmap(f, axis_name="i")(fnp.array([10., 20., 30.]))
        Array([30., 10., 20.], dtype=float32)
    """
    perm = [int(p) for p in perm]
    if sorted(perm) != list(range(len(perm))):
        raise ValueError(f"pshuffle: perm={perm} must list each of 0..{len(perm) - 1} once")
    return ppermute(x, axis_name, list(zip(perm, range(len(perm)))))


# ------------------------------------------------------------------------ all_to_all


all_to_all_p = Primitive("all_to_all")


def _all_to_all_abstract_eval(x, *, axis_name, split_axis, concat_axis, axis_size):
    shape = list(x.shape)
    if not 0 <= split_axis < len(shape) or shape[split_axis] != axis_size:
        raise ValueError(
            f"all_to_all: split_axis={split_axis} of the operand (shape {tuple(shape)}) must "
            f"have the size of axis {axis_name!r} ({axis_size})")
    del shape[split_axis]
    if not 0 <= concat_axis <= len(shape):
        raise ValueError(f"all_to_all: concat_axis={concat_axis} is out of range")
    shape.insert(concat_axis, axis_size)
    return ShapedArray(shape, x.dtype)


all_to_all_p.abstract_eval = _all_to_all_abstract_eval
all_to_all_p.impl = lambda x, *, axis_name, split_axis, concat_axis, axis_size: \
    _device_group(axis_name, all_to_all_p).all_to_all(x, split_axis, concat_axis)


def _all_to_all_batch(trace, vals, dims, *, axis_name, split_axis, concat_axis, axis_size):
    (x,), (d,) = vals, dims
    if _my_frame(trace, (axis_name,)) is None:
        if d is None:
            return all_to_all_p.bind(x, axis_name=axis_name, split_axis=split_axis,
                                     concat_axis=concat_axis, axis_size=axis_size), None
        return all_to_all_p.bind(bdim_to_front(x, d), axis_name=axis_name,
                                 split_axis=split_axis + 1, concat_axis=concat_axis + 1,
                                 axis_size=axis_size), 0
    # rows: source instance i; split axis: destination j. Make j the batch, i the concat axis
    xs = _broadcast_front(x, d, axis_size)
    xs = _moveaxis(xs, split_axis + 1, 0)          # (j, i, rest...)
    return _moveaxis(xs, 1, concat_axis + 1), 0


all_to_all_p.batch_named = _all_to_all_batch
all_to_all_p.jvp_terms = [lambda t, x, *, out, **p: all_to_all_p.bind(t, **p)]
all_to_all_p.vjp = [lambda ct, x, *, out, axis_name, split_axis, concat_axis, axis_size:
                    all_to_all_p.bind(ct, axis_name=axis_name, split_axis=concat_axis,
                                      concat_axis=split_axis, axis_size=axis_size)]
_def_bind(all_to_all_p, "axis_name")


def all_to_all(x, axis_name, split_axis, concat_axis, *, axis_index_groups=None, tiled=False):
    """Instance `j` receives part `j` of `split_axis` from every instance `i`, and stacks
    them along a new `concat_axis` in the order of `i` (with `tiled=True`: `split_axis`
    is cut into equal blocks, concatenated along the existing `concat_axis`).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> xs = fnp.arange(4.0).reshape(2, 2)
        >>> nanofn.vmap(lambda v: nanofn.lax.all_to_all(v, "i", 0, 0), axis_name="i")(xs)
        Array([[0., 2.],
               [1., 3.]], dtype=float32)
    """
    from nanofn.tree_util import tree_map
    if axis_index_groups is not None:
        raise NotImplementedError("all_to_all: axis_index_groups is not supported")
    names = _names(axis_name)
    if len(names) != 1:
        raise NotImplementedError("all_to_all over a tuple of axis names is not supported; "
                                  "call it once per name")
    name = names[0]
    n = axis_size(name)

    def exchange(v):
        v = _as_operand(v)
        shape = tuple(_aval_shape(v))
        sa = _canonical(split_axis, len(shape), "split_axis", "all_to_all")
        if not tiled:
            ca = _canonical(concat_axis, len(shape), "concat_axis", "all_to_all")
            if shape[sa] != n:
                raise ValueError(f"all_to_all: split_axis {sa} of the operand (shape {shape}) "
                                 f"must have the size of axis {name!r} ({n}); with "
                                 f"tiled=True it need only be divisible by it")
            return all_to_all_p.bind(v, axis_name=name, split_axis=sa, concat_axis=ca,
                                     axis_size=n)
        ca = _canonical(concat_axis, len(shape), "concat_axis", "all_to_all")
        if shape[sa] % n:
            raise ValueError(f"all_to_all(tiled=True): split_axis {sa} of shape {shape} is "
                             f"not divisible by the axis size {n}")
        v = _split_axis(v, sa, n)  # (..., n, k, ...): the n blocks at sa
        # untiled, the n blocks leave sa and the n sources arrive in front of axis ca (the
        # chunks keep the operand's axis numbering); merging them concatenates the blocks
        out = all_to_all_p.bind(v, axis_name=name, split_axis=sa, concat_axis=ca,
                                axis_size=n)
        return _merge_axes(out, ca)
    return tree_map(exchange, x)


def pswapaxes(x, axis_name, axis, *, axis_index_groups=None):
    """Swap the named axis with the array axis `axis` (whose size must be the axis
    size): `all_to_all(x, axis_name, axis, axis)`, as in `jax.lax.pswapaxes`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> xs = fnp.arange(4.0).reshape(2, 2)
        >>> nanofn.vmap(lambda v: nanofn.lax.pswapaxes(v, "i", 0), axis_name="i")(xs)
        Array([[0., 2.],
               [1., 3.]], dtype=float32)
    """
    return all_to_all(x, axis_name, axis, axis, axis_index_groups=axis_index_groups)


def pbroadcast(x, axis_name, source):
    """Every instance gets instance `source`'s `x` (a collective broadcast, as in
    `jax.lax.pbroadcast`): the psum of `x` masked to zero everywhere but at `source`, so
    its gradient reaches `source` alone.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.vmap(lambda v: nanofn.lax.pbroadcast(v, "i", 2), axis_name="i")(
        ...     fnp.arange(3.0))
        Array([2., 2., 2.], dtype=float32)
    """
    from nanofn import numpy as fnp
    from nanofn.tree_util import tree_map
    n = axis_size(axis_name)
    if not isinstance(source, (int, np.integer)) or not 0 <= int(source) < n:
        raise ValueError(f"pbroadcast: source must be an index of axis {axis_name!r} "
                         f"(0..{n - 1}), got {source!r}")
    here = axis_index(_names(axis_name)) == int(source)

    def one(v):
        v = fnp.asarray(v)
        return psum(fnp.where(here, v, fnp.zeros((), v.dtype)), axis_name)
    return tree_map(one, x)


# ------------------------------------------------------------------------ axis_index


axis_index_p = Primitive("axis_index")
axis_index_p.abstract_eval = lambda *, axis_name: ShapedArray((), np.int32)
axis_index_p.impl = lambda *, axis_name: np.asarray(
    _device_group(axis_name, axis_index_p).rank, np.int32)


def _axis_index_batch(trace, vals, dims, *, axis_name):
    frame = _my_frame(trace, (axis_name,))
    if frame is None:
        return axis_index_p.bind(axis_name=axis_name), None
    return iota_p.bind(dtype=np.dtype(np.int32), shape=(frame.size,), dimension=0), 0


axis_index_p.batch_named = _axis_index_batch
axis_index_p.jvp_terms = []
axis_index_p.vjp = []
_def_bind(axis_index_p, "axis_name")


def axis_index(axis_name):
    """This instance's index along `axis_name` (int32); for a tuple of names, the index
    in the combined axis (the first name major).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.vmap(lambda v: nanofn.lax.axis_index("i"), axis_name="i")(fnp.zeros(3))
        Array([0, 1, 2], dtype=int32)
    """
    names = _names(axis_name)
    index = None
    for name in names:
        i = axis_index_p.bind(axis_name=name)
        if index is None:
            index = i
        else:
            from nanofn.ops._base import add_p
            index = add_p.bind(mul_p.bind(index, np.asarray(_named_axes.lookup(name).size,
                                                            np.int32)), i)
    return index
