"""Vectorization: `vmap`, the transformation that turns a function of one example into a
function of a batch.

The idea (autodidax calls it "batching"): run the function once, on values that carry a
whole batch. `BatchTrace` wraps each batched value in a `BatchTracer(val, batch_dim)`:
`val` is the batched array and `batch_dim` says which of its axes is the batch axis
(`None`: the value is the same for every example, it is *not mapped*). To the user's
function a tracer looks like one example: its `shape` leaves the batch axis out.

For each primitive, `BatchTrace.process_primitive` hands the batched values and their batch
dims to the primitive's batching rule, `prim.batch(vals, dims, **params) -> (out, out_dim)`,
which computes the whole batch at once (usually by binding the same primitive with the
batch axis moved to the front and the params shifted). If no input is batched the
primitive is simply bound: unbatched work is done once, not once per example.

Because the rules bind primitives, batching composes with every other transformation:
`vmap(grad(f))` batches the backward pass, `grad(vmap(f))` differentiates the batched
program, `jit(vmap(f))` stages it, and `vmap(vmap(f))` batches twice. Levels keep nested
transformations apart (see `nanofn/_core.py`).

A batched value has no single concrete value, so Python control flow on it (`if x > 0:`)
raises `BatchedConcretizationError`: use `nanofn.numpy.where` or `nanofn.lax.cond`.

`vmap` itself is a thin pytree wrapper around `batch_flat`, which works on flat lists:
it matches `in_axes` against the arguments (a pytree prefix), checks that every mapped
axis has the same size, runs `batch_flat`, and moves each output's batch axis to where
`out_axes` asks (broadcasting outputs that do not depend on the batch).
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Callable

import numpy as np

from nanofn import _core as core
from nanofn._core import ShapedArray, Trace, Tracer, get_aval
from nanofn._dtypes_float0 import float0, float0_zeros
from nanofn._tree import _flatten_up_to_checked  # prefix matching with a clear error
from nanofn._traceback_util import api_boundary
from nanofn.tree_util import (keystr, tree_flatten, tree_flatten_with_path, tree_leaves,
                              tree_unflatten)

__all__ = ["vmap", "batch_flat", "vmap_flat", "BatchTrace", "BatchTracer",
           "BatchedConcretizationError", "moveaxis", "broadcast_batch", "axis_size_of"]

not_mapped = None  # the batch dim of a value that is the same for every example


def _ops():
    from nanofn.ops import _base  # noqa: the ops layer sits above this module's import
    return _base


class BatchedConcretizationError(core.ConcretizationError):
    """A batched value (one value per example) was used where Python needs one value."""


# ------------------------------------------------------------------------ the trace


class BatchTracer(Tracer):
    """A batch of values seen as one example: `val` holds the batch along `batch_dim`."""

    __slots__ = ("val", "batch_dim")

    def __init__(self, trace, val, batch_dim):
        self._trace = trace
        self.val = val
        self.batch_dim = batch_dim  # int, or None (not mapped)

    @property
    def aval(self):
        aval = get_aval(self.val)
        if self.batch_dim is None:
            return aval
        shape = list(aval.shape)
        del shape[self.batch_dim]
        return ShapedArray(shape, aval.dtype)

    @property
    def shape(self):
        shape = tuple(self.val.shape) if hasattr(self.val, "shape") else np.shape(self.val)
        if self.batch_dim is None:
            return shape
        return shape[:self.batch_dim] + shape[self.batch_dim + 1:]

    dtype = property(lambda self: get_aval(self.val).dtype)

    def concrete_value(self):
        if self.batch_dim is None:
            return self.val
        size = _shape(self.val)[self.batch_dim]
        raise BatchedConcretizationError(
            f"A batched value ({self.aval.str_short()}, one value for each of the {size} "
            "examples of a vmap) was used where Python needs a single concrete value: in "
            "`if`, `while`, bool(), int(), float() or .item(). Under vmap each example may "
            "take a different branch, so the branch must be chosen per example: use "
            "nanofn.numpy.where(cond, x, y) (or nanofn.lax.select) to pick values, or "
            "nanofn.lax.cond / nanofn.lax.while_loop for control flow that vmap can batch.")

    def __repr__(self):
        return f"BatchTracer<{self.aval.str_short()}, batch_dim={self.batch_dim}>"


class BatchTrace(Trace):
    """Runs primitives on whole batches, through each primitive's batching rule."""

    __slots__ = ()

    def pure(self, val):
        return BatchTracer(self, val, None)

    lift = pure

    def process_primitive(self, prim, tracers, params):
        vals = [t.val for t in tracers]
        dims = [t.batch_dim for t in tracers]
        named = getattr(prim, "batch_named", None)  # collectives: rules that read the axis name
        if named is not None:
            out, out_dim = named(self, vals, dims, **params)
            if prim.multiple_results:
                return [BatchTracer(self, o, d) for o, d in zip(out, out_dim)]
            return BatchTracer(self, out, out_dim)
        if all(d is None for d in dims):  # nothing batched: do the work once
            out = prim.bind(*vals, **params)
            if prim.multiple_results:
                return [BatchTracer(self, o, None) for o in out]
            return BatchTracer(self, out, None)
        if prim.batch is None:
            raise NotImplementedError(f"no batching rule for primitive '{prim.name}'")
        state = core._state
        # see batch_flat: rules inherit the axis name
        prev, state.rule_trace = state.rule_trace, self
        try:
            out, out_dim = prim.batch(vals, dims, **params)
        finally:
            state.rule_trace = prev
        if prim.multiple_results:
            return [BatchTracer(self, o, d) for o, d in zip(out, out_dim)]
        return BatchTracer(self, out, out_dim)


# ------------------------------------------------------------------------ helpers for rules


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _as_array(x):
    """Python scalars and numpy values become Arrays (default dtypes); others pass."""
    if type(x) in core._PY_SCALAR_DTYPE:
        return core.Array(core.scalar_value(x))
    if isinstance(x, (np.ndarray, np.generic)):  # a caller's writable buffer is copied
        return core.Array(core.owned(core.check_numeric(np.asarray(x))))
    return x


def moveaxis(x, src: int, dst: int):
    """Move axis `src` of `x` to position `dst` (both non-negative), with `transpose`."""
    if src == dst:
        return x
    perm = [i for i in range(len(_shape(x))) if i != src]
    perm.insert(dst, src)
    return _ops().transpose_p.bind(x, permutation=tuple(perm))


def broadcast_batch(x, dim, size: int, dst: int = 0):
    """Put the batch axis of `x` (at `dim`, or None if `x` is not mapped) at `dst`;
    an unmapped `x` is broadcast to `size` examples."""
    if dim is not None:
        return moveaxis(x, dim, dst)
    x = _as_array(x)
    shape = list(_shape(x))
    shape.insert(dst, size)
    dims = tuple(i for i in range(len(shape)) if i != dst)
    return _ops().broadcast_in_dim_p.bind(x, shape=tuple(shape), broadcast_dimensions=dims)


def axis_size_of(vals, dims) -> int:
    """The batch size, read from the first mapped value."""
    for v, d in zip(vals, dims):
        if d is not None:
            return _shape(v)[d]
    raise ValueError("axis_size_of: no value is batched")


# ------------------------------------------------------------------------ flat drivers


def batch_flat(fun_flat, args, in_dims, axis_size, axis_name=None):
    """Run `fun_flat` (a function of a flat list of arrays returning a flat list) on a batch.

    `in_dims[i]` is the (non-negative) batch axis of `args[i]`, or None if it is the same
    for every example. Returns `(vals, dims)`: each output with its batch axis (None for
    outputs that do not depend on the batch). An `axis_name` names the batch axis for
    collectives (`nanofn.lax.psum(x, axis_name)`, see `nanofn/_named_axes.py`).
    """
    state = core._state
    # Called by a batching rule (control flow vmapping its bodies, custom rules), this
    # batches the same axis as the trace running the rule: it binds that axis's name too,
    # so collectives inside the bodies still see it. Nested calls inside see no rule.
    ruled, state.rule_trace = state.rule_trace, None
    if axis_name is None and ruled is not None:
        from nanofn._named_axes import frame_of_main
        frame = frame_of_main(ruled.main)
        axis_name = None if frame is None else frame.name
    try:
        with core.new_main(BatchTrace, axis_size) as main, \
                _named_frame(axis_name, axis_size, main):
            trace = main.trace
            tracers = [x if d is None else BatchTracer(trace, x, d)
                       for x, d in zip(args, in_dims)]
            outs = [trace.full_raise(o) for o in fun_flat(*tracers)]
            return [o.val for o in outs], [o.batch_dim for o in outs]
    finally:
        state.rule_trace = ruled


def _named_frame(axis_name, axis_size, main):
    """Bind `axis_name` (if any) to this vmap's trace while it runs."""
    from nanofn._named_axes import AxisFrame, extend_axis_env
    if axis_name is None:
        return contextlib.nullcontext()
    return extend_axis_env(AxisFrame(axis_name, axis_size, main=main))


def _move_out(val, dim, out_axis, size):
    """Give an output its batch axis at `out_axis` (may be negative)."""
    ndim = len(_shape(val)) + (dim is None)
    axis = out_axis + ndim if out_axis < 0 else out_axis
    return broadcast_batch(val, dim, size, axis)


def vmap_flat(fun_flat, args, in_dims, out_dims, axis_size):
    """`batch_flat`, then move each output's batch axis to `out_dims` (an int or None for
    every output, or a list with one entry per output). Outputs with out dim None must not
    be batched."""
    vals, dims = batch_flat(fun_flat, args, in_dims, axis_size)
    if not isinstance(out_dims, (list, tuple)):
        out_dims = [out_dims] * len(vals)
    outs = []
    for i, (v, d, od) in enumerate(zip(vals, dims, out_dims)):
        if od is None:
            if d is not None:
                raise ValueError(f"vmap_flat: output {i} is batched but its out dim is None")
            outs.append(_as_array(v))
        else:
            outs.append(_move_out(v, d, od, axis_size))
    return outs


# ------------------------------------------------------------------------ vmap


def _check_axes_spec(what, axes):
    leaves = tree_leaves(axes, is_leaf=lambda x: x is None)
    for a in leaves:
        if not (a is None or (isinstance(a, (int, np.integer)) and not isinstance(a, bool))):
            of = "arguments" if what == "in_axes" else "outputs"
            raise TypeError(
                f"vmap {what} must be an int, None, or a (nested) tuple/list/dict of ints and "
                f"Nones matching the structure of the {of}; got {what}={axes!r}, which holds "
                f"{a!r} ({type(a).__name__})")


def _broadcast_axes(what, axes, tree, tree_name):
    """One axis (int or None) per leaf of `tree`, from `axes`, a pytree prefix of `tree`
    whose leaves are ints or None."""
    axis_leaves, axis_def = tree_flatten(axes, is_leaf=lambda x: x is None)
    try:
        subtrees = _flatten_up_to_checked(axis_def, tree, f"vmap {what}", what, tree_name)
    except ValueError as e:
        raise ValueError(f"vmap {what}={axes!r} does not match the structure of the "
                         f"{tree_name}: it must be an int, None, or a pytree prefix of "
                         f"them.\n{e}") from None
    out = []
    for a, sub in zip(axis_leaves, subtrees):
        out.extend([None if a is None else int(a)] * len(tree_leaves(sub)))
    return out


def _arg_names(fun, args, kwargs):
    """A readable name for every leaf of `(args, kwargs)`: `x`, `params['w']`, `args[2]`."""
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for i, a in enumerate(args):
        if i < len(params) and params[i].kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                  inspect.Parameter.POSITIONAL_OR_KEYWORD):
            base = params[i].name
        else:
            base = f"args[{i}]"
        names.extend(base + keystr(p) for p, _ in tree_flatten_with_path(a)[0])
    for k in sorted(kwargs):
        names.extend(k + keystr(p) for p, _ in tree_flatten_with_path(kwargs[k])[0])
    return names


def _mapped_axis_size(leaves, in_dims, names, axis_size):
    """Check each mapped leaf's axis against its rank; return (canonical dims, size)."""
    dims, sizes = [], []
    for i, (x, d) in enumerate(zip(leaves, in_dims)):
        if d is None:
            dims.append(None)
            continue
        if not core.is_array_like(x):
            raise TypeError(
                f"vmap: argument {names()[i]} is a {type(x).__name__}, not an array, so it "
                f"cannot be mapped over axis {d}. Pass in_axes=None for it (or for the "
                "pytree that holds it), or close over it.")
        shape = _shape(x)
        if not -len(shape) <= d < len(shape):
            if not shape:
                why = "it is a scalar (shape ()), which has no axis to map over"
            else:
                why = (f"its shape is {shape} (rank {len(shape)}), so the axis must be in "
                       f"[{-len(shape)}, {len(shape)})")
            raise ValueError(f"vmap: in_axes asks to map argument {names()[i]} over axis {d}, "
                             f"but {why}. Fix in_axes, or use None for arguments that are "
                             "the same for every example.")
        d %= len(shape)
        dims.append(d)
        sizes.append((i, shape, d, shape[d]))
    distinct = {s for *_, s in sizes}
    if axis_size is not None:
        distinct.add(int(axis_size))
    if len(distinct) > 1:
        all_names = names()
        lines = [f"  argument {all_names[i]} of shape {shape} has size {s} on axis {d}"
                 for i, shape, d, s in sizes]
        if axis_size is not None:
            lines.append(f"  axis_size={axis_size} was given")
        raise ValueError("vmap got inconsistent sizes for the array axes to be mapped:\n" +
                         "\n".join(lines) + "\nEvery mapped axis must have the same size.")
    if not distinct:
        raise ValueError("vmap needs at least one argument to map over: in_axes is None for "
                         "every argument (and there are no keyword arguments). Map at least "
                         "one argument, or pass axis_size= to say how many examples to make.")
    return dims, distinct.pop()


def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_name: Any = None,
         axis_size: int | None = None, spmd_axis_name: Any = None,
         sum_match: bool = False) -> Callable:
    """Vectorize `fun` over a batch axis: `vmap(f)(xs)` equals stacking `f(x)` for each
    `x` in `xs`, computed in one batched pass.

    Args:
        fun: function of arrays (pytrees of arrays) to vectorize.
        in_axes: which axis of each positional argument is the batch axis: an int (every
            array), None (no argument is mapped) or a pytree prefix of the argument tuple
            with int or None leaves, e.g. `(None, 0)` or `({"w": None, "b": 0},)`. None
            marks arguments that are the same for every example. Negative axes count from
            the end. Keyword arguments are always mapped over axis 0.
        out_axes: where the batch axis goes in each output: an int (may be negative), None
            (the output must not depend on the batch, it is returned once), or a pytree
            prefix of the output.
        axis_name: a name (any hashable) for the mapped axis, so that collectives inside
            `fun` (`nanofn.lax.psum(x, axis_name)`, `pmean`, `all_gather`, `axis_index`,
            ...) can refer to it; they run as array operations along the batch.
        axis_size: the batch size; needed only when no argument is mapped.
        spmd_axis_name: accepted for compatibility with JAX (it places the batch over
            devices of a sharded program); in one process it has no effect.
        sum_match: an output whose `out_axes` is None but that is batched is summed over
            the batch (JAX's `sum_match`) instead of being an error.

    Returns:
        The vectorized function, with `fun`'s signature.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> w = fnp.ones((3, 2))
        >>> xs = fnp.arange(12.0).reshape(4, 3)
        >>> nanofn.vmap(lambda w, x: x @ w, in_axes=(None, 0))(w, xs).shape
        (4, 2)
        >>> nanofn.vmap(lambda x: x.sum(), in_axes=1)(xs)
        Array([18., 22., 26.], dtype=float32)
    """
    del spmd_axis_name  # unused: no sharded (SPMD) partitioning in one process
    if isinstance(in_axes, list):  # JAX reads a top-level list as a tuple
        in_axes = tuple(in_axes)
    _check_axes_spec("in_axes", in_axes)
    _check_axes_spec("out_axes", out_axes)

    def vmapped(*args, **kwargs):
        arg_leaves, args_tree = tree_flatten(args)
        kw_leaves, kw_tree = tree_flatten(kwargs)
        in_dims = _broadcast_axes("in_axes", in_axes, args, "arguments") + [0] * len(kw_leaves)
        leaves = arg_leaves + kw_leaves
        names = lambda: _arg_names(fun, args, kwargs)  # noqa: E731 - only built for errors
        dims, size = _mapped_axis_size(leaves, in_dims, names, axis_size)
        leaves = [_as_array(x) if d is not None else x for x, d in zip(leaves, dims)]
        n_args = len(arg_leaves)
        box = {}

        def fun_flat(*xs):
            out = fun(*tree_unflatten(args_tree, xs[:n_args]),
                      **tree_unflatten(kw_tree, xs[n_args:]))
            out_with_paths, box["tree"] = tree_flatten_with_path(out)
            for path, o in out_with_paths:
                if not core.is_array_like(o):
                    raise TypeError(f"vmap: the function returned a {type(o).__name__} at "
                                    f"output{keystr(path)}, which is not an array; return "
                                    "arrays (or pytrees of arrays) only")
            box["paths"] = [p for p, _ in out_with_paths]
            return [o for _, o in out_with_paths]

        vals, out_bdims = batch_flat(fun_flat, leaves, dims, size, axis_name)
        out_tree = box["tree"]
        out_dims = _broadcast_axes("out_axes", out_axes,
                                   tree_unflatten(out_tree, [0] * len(vals)), "outputs")
        outs = []
        for path, v, d, od in zip(box["paths"], vals, out_bdims, out_dims):
            if getattr(v, "dtype", None) == float0:  # an integer input's gradient: no data,
                if od is not None:  # so the batch is only a longer shape
                    shape = list(np.shape(v))
                    shape.insert(od % (len(shape) + 1), size)
                    v = float0_zeros(tuple(shape))
                outs.append(v)
                continue
            if od is None:
                if d is not None and sum_match:  # summed over the examples, as JAX does
                    from nanofn.numpy import sum as _sum
                    v, d = _sum(v, axis=d), None
                if d is not None:
                    raise ValueError(
                        f"vmap: out_axes is None for output{keystr(path) or ' (the result)'}, "
                        "but that output is batched: it depends on a mapped input, so it has "
                        f"one value per example (each of shape {_per_example(v, d)}). Use an "
                        "int out_axes for it, or None only for outputs that are the same for "
                        "every example.")
                outs.append(_as_array(v))
                continue
            ndim = len(_shape(v)) + (d is None)
            if not -ndim <= od < ndim:
                raise ValueError(
                    f"vmap: out_axes={od} is out of range for output"
                    f"{keystr(path) or ' (the result)'}, which has rank {ndim} once batched "
                    f"(per-example shape {_per_example(v, d)}); it must be in [{-ndim}, {ndim})")
            outs.append(_move_out(v, d, od, size))
        return tree_unflatten(out_tree, outs)

    from nanofn._ad import _wraps
    _wraps(vmapped, fun, "vmap")
    return api_boundary(vmapped)


def _per_example(val, dim):
    shape = _shape(val)
    return shape if dim is None else shape[:dim] + shape[dim + 1:]
