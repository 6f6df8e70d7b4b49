"""`shard_map`: run a function once per block of a mesh, with the mesh axes named.

In one process the devices of a mesh are simulated, as `pmap` simulates them, so
`shard_map` is `vmap` with axis names. Each argument is cut along the mesh axes its
`in_specs` entry names (`P('x')` cuts axis 0 into `mesh.shape['x']` blocks; a mesh axis it
does not name leaves it whole, replicated), reshaped so that each mesh axis it is cut
along becomes a leading batch axis, and `f` runs under one `vmap(..., axis_name=name)` per
mesh axis (the first mesh axis outermost). Collectives over the mesh axis names (`psum`,
`all_gather`, `ppermute`, `axis_index`, tuples of names) are then the vmaps' array
operations, and `grad`, `jit` and `vmap` compose with it because it is built of them.

The outputs come back through the same nest: along a mesh axis that the output's
`out_specs` entry names, the blocks are stacked and then put together in place (reshaped
into the array axes that name it); along one it does not name, the output must be the
same on every device. With `check_vma=True` that is checked statically, as JAX does: an
output that depends on the position along such an axis (it is batched by that axis's
vmap; the result of `psum` over it is not) is an error, under `jit` and `grad` too. The
check reads nanofn's batching, which knows a little more than JAX's types: the result of
`all_gather` over the axis counts as the same on every device (it is), where JAX 0.10.2
counts it as varying and asks for `check_vma=False`. With `check_vma=False` the spec is
trusted and the first device's block is taken.
"""

from __future__ import annotations

import math

from nanofn import _core as core
from nanofn._batching import _arg_names, batch_flat, broadcast_batch
from nanofn._core import Tracer
from nanofn._tree import _flatten_up_to_checked
from nanofn.sharding import (AbstractMesh, AxisType, Mesh, NamedSharding, PartitionSpec,
                             _context_mesh, _dim_names, _not_in_one_process, _place,
                             _spec_names)
from nanofn.tree_util import keystr, tree_flatten, tree_flatten_with_path, tree_unflatten

__all__ = ["shard_map"]


class _InferFromArgs:
    """The default of `in_specs`: read each argument's spec from its sharding."""

    def __repr__(self):
        return "Infer"


Infer = _InferFromArgs()


def shard_map(f=None, /, *, out_specs, in_specs=Infer, mesh=None, axis_names=frozenset(),
              check_vma=True):
    """Map `f` over the blocks of its arguments on a mesh of devices, with the mesh axes
    named for collectives (`jax.shard_map`).

    `f` runs once per device (a point of the mesh) on that device's block of each
    argument, and its outputs are put back together by `out_specs`. In one process this
    is `vmap` with axis names: one `vmap(..., axis_name=name)` per mesh axis (see
    `nanofn/distributed/_shard_map.py` and docs/distributed.md).

    Args:
        f: the per-device function (or None: `shard_map(out_specs=...)` is a decorator).
        out_specs: a `PartitionSpec` per output (a pytree prefix of the outputs). A mesh
            axis it names puts the devices' blocks together along that array axis; one it
            does not name promises the output is the same on every device along it, and
            one copy is returned.
        in_specs: a `PartitionSpec` per argument (a pytree prefix of the positional
            arguments): a mesh axis it names cuts that array axis into blocks; an argument
            whose spec does not name a mesh axis is whole on every device along it. None
            marks a static argument, passed unchanged. By default (as in JAX, for Explicit
            mesh axes only) the spec is read from each argument's sharding: it must have
            been placed with `device_put(x, NamedSharding(mesh, spec))` (or come from
            `make_array_from_*`, or an eager `shard_map`), since nanofn keeps no layout
            through operations; numpy arrays and Python numbers count as replicated.
        mesh: a `Mesh` (or `AbstractMesh`); None uses the mesh set by `nanofn.set_mesh`.
        axis_names: the mesh axes `f` is manual over (default: all). The others are
            left to the compiler in JAX; here the arrays are whole along them anyway.
        check_vma: check that an output is the same along every mesh axis its out_spec
            does not name (statically, from nanofn's batching: a `psum` or `all_gather`
            result is, an input's block or `axis_index` is not); False trusts the spec and
            takes the first device's block.

    Unlike JAX with `check_vma=True`, a gradient taken *inside* `f` with respect to a
    replicated input is each device's own (JAX sums it over the devices); take the
    gradient outside `shard_map`, or reduce it with `lax.psum`/`pmean` (JAX with
    `check_vma=False` does the same). nanofn does not check that `in_specs` match the
    arguments' shardings (JAX does for Explicit axes); it cuts the whole arrays as told.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn import lax
        >>> mesh = nanofn.make_mesh((1,), ("x",))
        >>> total = nanofn.shard_map(lambda b: lax.psum(b.sum(), "x"), mesh=mesh,
        ...                          in_specs=nanofn.P("x"), out_specs=nanofn.P())
        >>> total(fnp.arange(8.0))
        Array(28., dtype=float32)
    """
    kwargs = dict(mesh=mesh, in_specs=in_specs, out_specs=out_specs, axis_names=axis_names,
                  check_vma=check_vma)
    if f is None:
        return lambda g: _shard_map(g, **kwargs)
    return _shard_map(f, **kwargs)


def _fun_name(f):
    return getattr(f, "__name__", None) or type(f).__name__


def _resolve_mesh(mesh):
    context = _context_mesh()
    if mesh is None:
        if context is None:
            raise ValueError("shard_map: mesh=None, and no mesh is set: pass mesh=..., or set "
                             "one with nanofn.set_mesh(mesh)")
        mesh = context
    if not isinstance(mesh, (Mesh, AbstractMesh)):
        raise TypeError(f"shard_map: mesh must be a nanofn.sharding.Mesh or AbstractMesh, "
                        f"got {type(mesh).__name__}")
    if mesh.empty:
        raise ValueError(f"shard_map: the mesh is empty ({mesh})")
    if context is not None and mesh.abstract_mesh != context.abstract_mesh:
        raise ValueError(f"shard_map: the mesh set by set_mesh, {context}, is not the mesh "
                         f"passed, {mesh}")
    if isinstance(mesh, Mesh) and mesh.is_multi_process:
        raise _not_in_one_process("shard_map", mesh)
    return mesh


def _manual_axes(mesh, axis_names) -> tuple:
    if not isinstance(axis_names, (set, frozenset)):
        raise TypeError(f"shard_map: axis_names must be a set or frozenset of mesh axis "
                        f"names, got {type(axis_names).__name__}")
    if not axis_names:
        return tuple(mesh.axis_names)
    unknown = [n for n in axis_names if n not in mesh.axis_names]
    if unknown:
        raise ValueError(f"shard_map: axis_names={set(axis_names)} must be mesh axes "
                         f"{mesh.axis_names}; {unknown} are not")
    return tuple(n for n in mesh.axis_names if n in axis_names)


def _check_specs(kind, specs, mesh, manual):
    """Every leaf a PartitionSpec naming manual mesh axes, each at most once."""
    if kind == "in" and specs is None:
        raise TypeError("shard_map: in_specs=None; pass P() for arguments that are whole on "
                        "every device (None is for static arguments inside a pytree)")
    for path, spec in tree_flatten_with_path(specs)[0]:
        where = f"{kind}_specs{keystr(path)}"
        if not isinstance(spec, PartitionSpec):
            raise TypeError(f"shard_map: {where} is {spec!r} ({type(spec).__name__}), but "
                            f"{kind}_specs must be a pytree of PartitionSpecs (nanofn.P(...))")
        if spec.unreduced or spec.reduced:
            raise NotImplementedError(f"shard_map: {where} is {spec}: nanofn's shard_map "
                                      "does not take unreduced or reduced axes")
        if PartitionSpec.UNCONSTRAINED in spec.partitions:
            raise ValueError(f"shard_map: {where} is {spec}: entries must be mesh axis names "
                             "or None")
        names = _spec_names(spec)
        for n in names:
            if n not in mesh.axis_names:
                raise ValueError(f"shard_map: {where} is {spec}, which names the axis {n!r}, "
                                 f"but the mesh's axes are {mesh.axis_names}")
            if n not in manual:
                raise ValueError(f"shard_map: {where} is {spec}, which names the axis {n!r}, "
                                 f"but f is manual only over axis_names={set(manual)}")
        twice = sorted({str(n) for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"shard_map: {where} is {spec}, which uses the mesh axes "
                             f"{twice} more than once")


def _infer_spec(x, name, mesh, manual):
    """The spec of an argument from its sharding (in_specs left to its default)."""
    if isinstance(x, (int, float, complex, bool)) or (
            not isinstance(x, (Tracer, core.Array)) and hasattr(x, "__array__")):
        return PartitionSpec()  # a host value: on every device whole
    sharding = x.sharding if type(x) is core.Array else None
    if not isinstance(sharding, NamedSharding):
        raise ValueError(
            f"shard_map: in_specs was not given, so it is read from the arguments' shardings, "
            f"but argument {name} has none recorded: nanofn keeps a layout only on arrays "
            "placed with device_put(x, NamedSharding(mesh, spec)) (or made by "
            "make_array_from_* or an eager shard_map), not through operations or into jit. "
            "Pass in_specs=..., or place the argument first.")
    if dict(sharding.mesh.shape) != dict(mesh.shape):
        raise ValueError(f"shard_map: argument {name} was placed with {sharding}, on another "
                         f"mesh than shard_map's ({mesh}); pass in_specs, or place it on that "
                         "mesh")
    out = []
    for entry in sharding.spec.partitions:
        names = [n for n in ((entry,) if not isinstance(entry, tuple) else entry)
                 if n is not None and n is not PartitionSpec.UNCONSTRAINED]
        kept = tuple(n for n in names if n in manual)
        if kept and kept != tuple(names[:len(kept)]):
            raise ValueError(f"shard_map: argument {name}'s sharding {sharding.spec} mixes "
                             f"manual and other mesh axes in one entry")
        out.append(None if not kept else kept[0] if len(kept) == 1 else kept)
    return PartitionSpec(*out)


def _split(x, dims, manual, sizes):
    """`x` with a leading batch axis per mesh axis that cuts it (mesh order), then the
    block's axes."""
    if not any(dims):
        return x
    from nanofn import ops
    shape = tuple(x.shape)
    new_shape, at, rest = [], {}, []
    for n_d, names in zip(shape, dims):
        for name in names:
            at[name] = len(new_shape)
            new_shape.append(sizes[name])
        rest.append(len(new_shape))
        new_shape.append(n_d // math.prod(sizes[name] for name in names))
    order = [at[name] for name in manual if name in at] + rest
    return ops.transpose(ops.reshape(x, tuple(new_shape)), tuple(order))


def _merge(y, dims, used, sizes):
    """The inverse of `_split`: the leading batch axes (`used`, mesh order) put back into
    the array axes that name them."""
    if not used:
        return y
    from nanofn import ops
    lead = {name: i for i, name in enumerate(used)}
    block = tuple(y.shape)[len(used):]
    perm, shape = [], []
    for d, names in enumerate(dims):
        perm += [lead[name] for name in names]
        perm.append(len(used) + d)
        shape.append(math.prod(sizes[name] for name in names) * block[d])
    return ops.reshape(ops.transpose(y, tuple(perm)), tuple(shape))


def _as_value(x):
    if isinstance(x, Tracer) or type(x) is core.Array:
        return x
    import nanofn.numpy as fnp
    return fnp.asarray(x)


def _shard_map(f, *, mesh, in_specs, out_specs, axis_names, check_vma):
    if not callable(f):
        raise TypeError(f"shard_map: f must be callable, got {type(f).__name__}")

    def wrapped(*args):
        m = _resolve_mesh(mesh)
        manual = _manual_axes(m, axis_names)
        sizes = dict(m.shape)
        fname = _fun_name(f)
        _check_specs("out", out_specs, m, manual)
        leaves, in_tree = tree_flatten(args)
        names = _arg_names(f, args, {})
        if in_specs is Infer:
            kinds = {n: m._name_to_type[n] for n in manual}
            if any(t is not AxisType.Explicit for t in kinds.values()):
                raise TypeError(
                    f"shard_map: in_specs was not given; it can be read from the arguments "
                    f"only when the manual mesh axes are Explicit, but their types are "
                    f"{kinds}. Pass in_specs (a PartitionSpec per argument).")
            flat_specs = [_infer_spec(x, names[i], m, manual) for i, x in enumerate(leaves)]
        else:
            _check_specs("in", in_specs, m, manual)
            spec_leaves, spec_def = tree_flatten(in_specs, is_leaf=lambda s: s is None)
            subtrees = _flatten_up_to_checked(spec_def, args, "shard_map in_specs",
                                              "in_specs", "arguments")
            flat_specs = []
            for s, sub in zip(spec_leaves, subtrees):
                flat_specs.extend([s] * len(tree_flatten(sub)[0]))
        dyn = [s is not None for s in flat_specs]
        xs, uses = [], []
        for i, (x, s) in enumerate(zip(leaves, flat_specs)):
            if s is None:
                continue
            x = _as_value(x)
            shape = tuple(x.shape)
            if len(s) > len(shape):
                hint = "; a scalar takes P()" if not shape else ""
                raise ValueError(
                    f"shard_map applied to {fname}: argument {names[i]} has shape {shape} "
                    f"(rank {len(shape)}), but its in_spec {s} has {len(s)} entries{hint}")
            dims = _dim_names(s, len(shape))
            for d, ns in enumerate(dims):
                parts = math.prod(sizes[n] for n in ns)
                if shape[d] % parts:
                    which = (f"mesh axis {ns[0]!r} of size {parts}" if len(ns) == 1 else
                             f"mesh axes {ns} of {parts} devices together")
                    raise ValueError(
                        f"shard_map applied to {fname}: argument {names[i]} has shape "
                        f"{shape}, and its in_spec {s} cuts axis {d} (size {shape[d]}) over "
                        f"the {which}, which does not divide it evenly (the mesh is "
                        f"{dict(m.shape)}). Change the spec or the mesh, or pad the array.")
            xs.append(_split(x, dims, manual, sizes))
            uses.append({n for ns in dims for n in ns})
        box = {}

        def body(ys):
            it = iter(ys)
            call = tree_unflatten(in_tree, [next(it) if d else x for x, d in zip(leaves, dyn)])
            out = f(*call)
            with_paths, out_tree = tree_flatten_with_path(out)
            outs = [_as_value(o) for _, o in with_paths]
            spec_leaves, spec_def = tree_flatten(out_specs)
            subtrees = _flatten_up_to_checked(spec_def, out, "shard_map out_specs",
                                              "out_specs", f"the outputs of {fname}")
            specs = []
            for s, sub in zip(spec_leaves, subtrees):
                specs.extend([s] * len(tree_flatten(sub)[0]))
            for (path, _), o, s in zip(with_paths, outs, specs):
                if len(s) > len(o.shape):
                    hint = ("; a rank-0 output that differs between devices needs an axis "
                            "to put the blocks together along" if not o.shape else "")
                    raise ValueError(
                        f"shard_map applied to {fname}: output{keystr(path) or ''} has shape "
                        f"{tuple(o.shape)} on each device (rank {len(o.shape)}), but its "
                        f"out_spec {s} has {len(s)} entries{hint}")
            box.update(tree=out_tree, specs=specs, paths=[p for p, _ in with_paths],
                       dims=[_dim_names(s, len(o.shape)) for o, s in zip(outs, specs)])
            box["uses"] = [{n for ns in dims for n in ns} for dims in box["dims"]]
            return outs

        def level(k, ys):
            if k == len(manual):
                return body(ys)
            name = manual[k]
            vals, dims = batch_flat(lambda *zs: level(k + 1, list(zs)), ys,
                                    [0 if name in u else None for u in uses],
                                    sizes[name], name)
            outs = []
            for j, (v, d) in enumerate(zip(vals, dims)):
                if name in box["uses"][j]:
                    outs.append(broadcast_batch(v, d, sizes[name], 0))
                elif d is None:
                    outs.append(v)
                elif check_vma:
                    path = keystr(box["paths"][j])
                    raise ValueError(
                        f"shard_map applied to {fname}: out_specs{path or ''} is "
                        f"{box['specs'][j]}, which does not name the mesh axis {name!r}, so "
                        f"that output must be the same on every device along {name!r} (as "
                        f"the result of psum or all_gather over {name!r} is); but it differs "
                        f"along {name!r}. Name {name!r} in its out_spec to put the blocks "
                        f"together, reduce it over {name!r} (lax.psum, lax.pmean, ...), or pass "
                        "check_vma=False to take the first device's block.")
                else:
                    from nanofn import ops
                    outs.append(ops.index_in_dim(v, 0, d, keepdims=False))
            return outs

        raw = level(0, xs)
        outs = []
        for y, dims, used, spec in zip(raw, box["dims"], box["uses"], box["specs"]):
            y = _merge(_as_value(y), dims, [n for n in manual if n in used], sizes)
            if type(y) is core.Array and isinstance(m, Mesh):
                y = _place(y, NamedSharding(m, spec))
            outs.append(y)
        return tree_unflatten(box["tree"], outs)

    from nanofn._ad import _wraps
    _wraps(wrapped, f, "shard_map")
    return wrapped
