"""`pmap`: run a function once per device, with collectives across devices.

nanofn's devices are processes (see `_state.py`), each with one device, so the mapped
axis of every argument has size `local_device_count() == 1` in each process. `pmap`
takes that one slice, runs the jit-compiled function on it under an axis frame that binds
`axis_name` to the process group (so `psum(x, axis_name)` becomes an MPI Allreduce, or a
no-op in a one-process run), and gives each output its device axis back.

A one-process run may instead simulate N CPU devices, asked for as in JAX
(`jax_num_cpu_devices`, or `XLA_FLAGS=--xla_force_host_platform_device_count=N`): then
`pmap` is `jit(vmap(f, axis_name=...))` over the mapped axis (up to N long), and its
collectives are array operations.

Differentiate inside `pmap` (`pmap(grad(loss))`, the data-parallel pattern): the backward
pass's collectives must run while the axis is bound.

Arguments cost no copies: `jit` reads a caller's numpy buffers where they are (it copies
only a result that views one), and the device axis is taken off and put back with numpy
views.
"""

from __future__ import annotations

import itertools

import numpy as np

from nanofn import _core as core
from nanofn import _named_axes
from nanofn._batching import _broadcast_axes, _check_axes_spec
from nanofn.distributed._state import local_device_count, world_group
from nanofn.tree_util import tree_flatten, tree_unflatten

_anonymous = itertools.count()


def _index(x, d):
    """`x[..., 0, ...]` at axis `d`: a numpy view of an array, a slice of a tracer."""
    if type(x) is core.Array or type(x) is np.ndarray:
        value = x._value if type(x) is core.Array else x
        view = value[(slice(None),) * (d % value.ndim) + (0,)]
        return core.Array(view) if type(x) is core.Array else view
    from nanofn import ops
    return ops.index_in_dim(x, 0, d % len(x.shape), keepdims=False)


def _expand(x, d):
    """`x` with a size-1 axis inserted at `d`."""
    if type(x) is core.Array:
        value = x._value
        return core.Array(value[(slice(None),) * (d % (value.ndim + 1)) + (None,)])
    from nanofn import ops
    return ops.expand_dims(x, (d % (len(getattr(x, "shape", ())) + 1),))


class _AnonymousAxis:
    """The axis of a pmap given no axis_name: no collective can name it."""

    def __init__(self):
        self.id = next(_anonymous)

    def __repr__(self):
        return f"<pmap axis {self.id}>"


def _check_devices(devices, n_local):
    """`pmap(devices=...)`: in an MPI job every process's device; in one process, some of
    its devices (the mapped axis size is checked against their number)."""
    from nanofn.distributed._state import devices as all_devices
    from nanofn.distributed._state import process_count
    every = all_devices()
    if process_count() > 1:
        ok = sorted(d.id for d in devices) == [d.id for d in every] and all(
            d in every for d in devices)
    else:
        ok = all(d in every for d in devices) and (n_local > 1 or len(devices) == 1)
    if not ok:
        raise ValueError(f"pmap: devices must be {'all of ' if process_count() > 1 else ''}"
                         f"the devices {every}, got {devices}")


def pmap(fun, axis_name=None, *, in_axes=0, out_axes=0, static_broadcasted_argnums=(),
         devices=None, backend=None, axis_size=None, donate_argnums=(),
         global_arg_shapes=None):
    """Map `fun` over devices: each device runs it on its slice of the mapped axes, and
    collectives over `axis_name` (`nanofn.lax.psum`, `pmean`, `all_gather`, ...) combine
    values across devices. Mirrors `jax.pmap`.

    One device is one process: without `nanofn.distributed.initialize()` there is one, and
    in an MPI job of N processes there are N, one per process. The mapped axis of each
    argument holds this process's devices, so it has size `local_device_count()` (1); the
    outputs get a device axis of the same size back. `fun` is jit-compiled. A one-process
    run that simulates CPU devices (see `local_device_count`) maps over up to that many.

    Args:
        fun: the function to run on each device.
        axis_name: the name collectives use for the device axis.
        in_axes: which axis of each positional argument is the device axis (int, None, or
            a pytree prefix of the arguments, as in `vmap`).
        out_axes: where the device axis goes in each output (int or None, or a prefix).
        static_broadcasted_argnums: positional arguments passed to every device as static
            (hashable) Python values, as `jit`'s `static_argnums`.
        devices: the devices to map over (default: every local device); with simulated
            CPU devices any distinct subset, whose length must be the mapped axis size.
        backend: accepted for compatibility.
        axis_size: if given, must equal the size of the mapped axis.
        donate_argnums: accepted for compatibility; nanofn never reuses an input's memory.
        global_arg_shapes: accepted for compatibility; unused.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> f = nanofn.pmap(lambda x: x / nanofn.lax.psum(x, "d"), axis_name="d")
        >>> f(fnp.array([[2.0, 6.0]]))
        Array([[1., 1.]], dtype=float32)
    """
    from nanofn._jit import jit
    del donate_argnums, global_arg_shapes, backend  # unused
    if devices is not None:
        devices = list(devices)
        if not devices or len(set(devices)) != len(devices):
            raise ValueError(f"pmap: devices must be distinct devices, got {devices}")
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    _check_axes_spec("in_axes", in_axes)
    _check_axes_spec("out_axes", out_axes)
    static = ((static_broadcasted_argnums,) if isinstance(static_broadcasted_argnums, int)
              else tuple(static_broadcasted_argnums))
    name = _AnonymousAxis() if axis_name is None else axis_name
    runners = {}  # per device group: its axis frame, and `fun` jitted for it (a plan
    # records the device axis it was traced with, so a new group traces again)
    in_dims, out_dims_of = {}, {}  # the device axis of each leaf, per pytree structure

    def dynamic(args):
        """The positions and values of the mapped (non-static) arguments, and the in_axes
        for them (in_axes may be written for every argument)."""
        dyn = [i for i in range(len(args)) if i not in static]
        axes = in_axes
        if isinstance(in_axes, tuple) and len(in_axes) == len(args) and static:
            axes = tuple(in_axes[i] for i in dyn)
        return dyn, tuple(args[i] for i in dyn), axes

    def pmapped(*args, **kwargs):
        group = world_group()
        n_local = local_device_count()
        if devices is not None:
            _check_devices(devices, n_local)
        if n_local > 1:  # simulated CPU devices in one process: pmap is a vmap
            return _on_simulated_devices(args, kwargs, n_local)
        if axis_size is not None and int(axis_size) != n_local:
            raise ValueError(f"pmap: axis_size={axis_size}, but this process has {n_local} "
                             "device(s)")
        dyn, dyn_args, axes = dynamic(args)
        leaves, tree = tree_flatten(dyn_args)
        kw_leaves, kw_tree = tree_flatten(kwargs)
        dims = in_dims.get((len(args), tree, kw_tree))
        if dims is None:  # one per argument structure: the axis of every leaf
            if len(in_dims) > 64:
                in_dims.clear()
            dims = in_dims[(len(args), tree, kw_tree)] = (
                _broadcast_axes("in_axes", axes, dyn_args, "arguments") + [0] * len(kw_leaves))
        all_leaves = leaves + kw_leaves
        sliced = []
        for i, (x, d) in enumerate(zip(all_leaves, dims)):
            if d is None:
                sliced.append(x)
                continue
            shape = getattr(x, "shape", ())
            if not -len(shape) <= d < len(shape) or shape[d] != n_local:
                raise ValueError(
                    f"pmap: argument leaf {i} has shape {tuple(shape)}, so its mapped axis "
                    f"{d} is not of size {n_local}, the number of local devices (each process "
                    "is one device; run more processes with mpiexec and "
                    "nanofn.distributed.initialize() to use more)")
            sliced.append(_index(x, d))
        call_args = tree_unflatten(tree, sliced[:len(leaves)])
        if static:
            dyn_vals, call_args = call_args, list(args)
            for i, v in zip(dyn, dyn_vals):
                call_args[i] = v
        call_kwargs = tree_unflatten(kw_tree, sliced[len(leaves):]) if kwargs else {}
        frame, compiled = runners.get(id(group), (None, None))
        if frame is None or frame.group is not group:
            frame = _named_axes.AxisFrame(name, group.size, group=group)
            compiled = jit(fun, static_argnums=static)
            runners[id(group)] = frame, compiled
        with _named_axes.extend_axis_env(frame):
            out = compiled(*call_args, **call_kwargs)
        out_leaves, out_tree = tree_flatten(out)
        out_dims = out_dims_of.get(out_tree)
        if out_dims is None:
            if len(out_dims_of) > 64:
                out_dims_of.clear()
            out_dims = out_dims_of[out_tree] = _broadcast_axes("out_axes", out_axes, out,
                                                               "outputs")
        return tree_unflatten(out_tree, [o if d is None else _expand(o, d)
                                         for o, d in zip(out_leaves, out_dims)])

    simulated = {}  # static argument values -> jit(vmap(fun)) over the simulated devices

    def _on_simulated_devices(args, kwargs, n_local):
        dyn, dyn_args, axes = dynamic(args)
        leaves, tree = tree_flatten(dyn_args)
        dims = _broadcast_axes("in_axes", axes, dyn_args, "arguments")
        sizes = {np.shape(x)[d] for x, d in zip(leaves, dims)
                 if d is not None and -np.ndim(x) <= d < np.ndim(x)}
        size = next(iter(sizes)) if len(sizes) == 1 else None  # else vmap says what is wrong
        if size is not None and size > n_local:
            raise ValueError(f"pmap: the mapped axis has size {size}, but there are only "
                             f"{n_local} devices (local_device_count())")
        if devices is not None and size is not None and size != len(devices):
            raise ValueError(f"pmap: the mapped axis has size {size}, but devices names "
                             f"{len(devices)} devices")
        if axis_size is not None and size is not None and int(axis_size) != size:
            raise ValueError(f"pmap: axis_size={axis_size}, but the mapped axis has size "
                             f"{size}")
        statics = tuple(args[i] for i in static if i < len(args))
        # in_axes may hold dicts (unhashable): key on the axis of every leaf instead
        key = (len(args), tree, tuple(dims), statics)
        compiled = simulated.get(key)
        if compiled is None:
            from nanofn._batching import vmap

            def per_device(*dyn_vals, **kw):
                full = list(args)
                for i, v in zip(dyn, dyn_vals):
                    full[i] = v
                return fun(*full, **kw)
            compiled = jit(vmap(per_device, in_axes=axes, out_axes=out_axes, axis_name=name,
                                axis_size=axis_size))
            if len(simulated) > 64:
                simulated.clear()
            simulated[key] = compiled
        return compiled(*dyn_args, **kwargs)

    pmapped.__name__ = getattr(fun, "__name__", "pmapped")
    pmapped.__doc__ = getattr(fun, "__doc__", None)
    pmapped.__wrapped__ = fun
    return pmapped
