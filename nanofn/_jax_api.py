"""The smaller names of the `jax` namespace that programs use: devices and transfers
(arrays are held whole in one process, so these are light; shardings are checked and
recorded, see `nanofn.sharding`), meshes and arrays made from per-device pieces,
`jacobian`, `named_call`/`named_scope`, `typeof`, `pure_callback` and
`ensure_compile_time_eval`."""

from __future__ import annotations

import contextlib
import functools

import numpy as np

from nanofn import _core as core
from nanofn._core import Primitive, ShapedArray, Tracer
from nanofn._jacobians import jacrev
from nanofn.tree_util import tree_flatten, tree_map, tree_unflatten
from nanofn.sharding import SingleDeviceSharding  # noqa: F401  (its home was here)
from nanofn import sharding as _sharding

__all__ = ["linear_transpose", "io_callback", "device_put", "device_get", "default_backend",
           "copy_to_host_async",
           "device_put_replicated", "device_put_sharded",
           "block_until_ready", "jacobian",
           "named_call", "named_scope", "typeof", "pure_callback", "ensure_compile_time_eval",
           "SingleDeviceSharding", "make_mesh", "make_array_from_callback",
           "make_array_from_single_device_arrays", "make_array_from_process_local_data"]


def _to_array(x):
    if isinstance(x, (core.Array, Tracer)):
        return x
    from nanofn.numpy import asarray
    return asarray(x)


def device_put(x, device=None, *, src=None, donate=False, may_alias=None):
    """Make every leaf of `x` a nanofn array, laid out as `device` says (`jax.device_put`).

    nanofn holds every array whole in its process, so placing is a check and a label:
    with a `NamedSharding` (or a `PartitionSpec`, read against the mesh set by
    `nanofn.set_mesh`) each split array axis must divide evenly into its blocks, as in
    JAX, and the returned array reports that sharding as its `.sharding` (it shares the
    input's memory). A mesh that spans several processes (an MPI job) is an error: no
    process holds such a global array.

    Args:
        x: a pytree of array-likes.
        device: None, a device, a `Sharding`, a `PartitionSpec`, or a pytree prefix of `x`
            of them.
        src, donate, may_alias: accepted for compatibility; no effect.

    Returns:
        `x` with each leaf a nanofn `Array` (arrays pass through uncopied).

    Example:
        >>> import nanofn, numpy as np
        >>> nanofn.device_put({"w": np.ones(2, np.float32)})
        {'w': Array([1., 1.], dtype=float32)}
        >>> mesh = nanofn.make_mesh((1,), ("x",))
        >>> y = nanofn.device_put(np.zeros((4, 2)), nanofn.NamedSharding(mesh, nanofn.P("x")))
        >>> y.sharding.spec, y.shape
        (P('x',), (4, 2))
    """
    del src, donate, may_alias  # unused: nothing moves between memories
    if device is None:
        return tree_map(_to_array, x)
    leaves, treedef = tree_flatten(x)
    targets = _sharding._targets(device, x, "device_put", _sharding._is_target)
    return tree_unflatten(treedef, [
        _to_array(leaf) if target is None else
        _sharding._put_leaf(_to_array(leaf), target, "device_put")
        for leaf, target in zip(leaves, targets)])


def make_mesh(axis_shapes, axis_names, axis_types=None, *, devices=None):
    """A `Mesh` of the given shape and axis names over the devices (`jax.make_mesh`).

    It takes the first `prod(axis_shapes)` devices of `devices` (default:
    `nanofn.devices()`), in order; asking for more devices than there are is an error.
    Ask for several CPU devices in one process as JAX does (`nanofn.config.update(
    "jax_num_cpu_devices", N)`). The axis types default to `Explicit`, as in JAX.

    Example:
        >>> import nanofn
        >>> mesh = nanofn.make_mesh((1, 1), ("x", "y"))
        >>> dict(mesh.shape), mesh.axis_types
        ({'x': 1, 'y': 1}, (Explicit, Explicit))
    """
    import math
    import operator
    from nanofn.distributed._state import devices as all_devices
    try:
        shape = tuple(operator.index(s) for s in axis_shapes)
    except TypeError:
        raise ValueError(f"make_mesh: axis_shapes must be a sequence of ints, got "
                         f"{axis_shapes!r}") from None
    devs = list(all_devices() if devices is None else devices)
    need = math.prod(shape)
    if need > len(devs):
        raise ValueError(
            f"make_mesh: a mesh of shape {shape} needs {need} devices, but there are "
            f"{len(devs)}. In one process, ask for CPU devices as JAX does: "
            f"nanofn.config.update('jax_num_cpu_devices', {need}) or XLA_FLAGS="
            f"--xla_force_host_platform_device_count={need}")
    grid = np.empty(len(devs[:need]), dtype=object)
    grid[:] = devs[:need]
    names = (axis_names,) if isinstance(axis_names, str) else tuple(axis_names)
    if axis_types is None:
        axis_types = (_sharding.AxisType.Explicit,) * len(names)
    return _sharding.Mesh(grid.reshape(shape), names, axis_types)


def _piece(value, who):
    """A block a caller hands over, as a numpy array with nanofn's dtype rules."""
    if isinstance(value, Tracer):
        raise core.UnexpectedTracerError(
            f"{who}: got a traced value ({value.aval.str_short()}); it builds arrays from "
            "concrete data, outside jit and the other transformations")
    from nanofn.numpy import asarray
    return np.asarray(asarray(value)._value)


def _pieces_dtype(pieces, dtype, who):
    if dtype is None:
        if not pieces:
            raise ValueError(f"{who}: with no blocks in this process, pass dtype=")
        return pieces[0].dtype
    from nanofn.numpy._dtypes import dtype_arg
    dtype = np.dtype(dtype_arg(dtype))
    for p in pieces:
        if p.dtype != dtype and not np.can_cast(p.dtype, dtype, "same_kind"):
            raise ValueError(f"{who}: dtype={dtype} was given, but a block has dtype "
                             f"{p.dtype}")
    return dtype


def _assemble(shape, sharding, indices, pieces, dtype, who):
    """The global array from one block per index, placed with `sharding`."""
    block = sharding.shard_shape(shape)
    for index, p in zip(indices, pieces):
        if p.shape != block:
            raise ValueError(f"{who}: the block for index {index} has shape {p.shape}, but "
                             f"{sharding} gives each device a block of shape {block} of the "
                             f"array of shape {shape}")
    if len(pieces) == 1 and block == shape:
        out = np.array(pieces[0], dtype=dtype, copy=True)
    else:
        out = np.empty(shape, dtype)
        for index, p in zip(indices, pieces):
            out[index] = p
    return _sharding._place(core.wrap(out), sharding)


def make_array_from_callback(shape, sharding, data_callback, dtype=None):
    """An array of `shape`, laid out as `sharding`, whose blocks come from
    `data_callback(index)` (`jax.make_array_from_callback`).

    As in JAX the callback gets, for each device of this process, its tuple of slices of
    the global array (`sharding.addressable_devices_indices_map(shape)`), and returns that
    block; a fully replicated sharding calls it once, with the whole index. nanofn puts
    the blocks together into one array (held whole here) that reports `sharding`.

    Args:
        shape: the global shape.
        sharding: a `Sharding` (a `NamedSharding`, say).
        data_callback: index (a tuple of slices) -> array-like block.
        dtype: the dtype (default: that of the first block).

    Example:
        >>> import nanofn, numpy as np
        >>> data = np.arange(8.0, dtype=np.float32).reshape(4, 2)
        >>> mesh = nanofn.make_mesh((1,), ("x",))
        >>> s = nanofn.NamedSharding(mesh, nanofn.P("x"))
        >>> nanofn.make_array_from_callback((4, 2), s, lambda index: data[index]).sum()
        Array(28., dtype=float32)
    """
    who = "make_array_from_callback"
    if not isinstance(sharding, _sharding.Sharding):
        raise TypeError(f"{who}: sharding must be a nanofn.sharding.Sharding (such as "
                        f"NamedSharding(mesh, spec)), got {type(sharding).__name__}")
    shape = tuple(int(n) for n in shape)
    _sharding._check_fits(sharding, shape, who)
    if sharding.is_fully_replicated:
        indices = [(slice(None),) * len(shape)]
    else:
        indices = list(sharding.addressable_devices_indices_map(shape).values())
    pieces = [_piece(data_callback(index), who) for index in indices]
    dtype = _pieces_dtype(pieces, dtype, who)
    return _assemble(shape, sharding, indices, pieces, dtype, who)


def make_array_from_single_device_arrays(shape, sharding, arrays, *, dtype=None):
    """An array of `shape`, laid out as `sharding`, from one block per device
    (`jax.make_array_from_single_device_arrays`).

    Each of `arrays` must have been placed on one device of the sharding
    (`nanofn.device_put(block, device)`), each device once; its block goes where that
    device's index (`sharding.addressable_devices_indices_map(shape)`) says.

    Example:
        >>> import nanofn, numpy as np
        >>> data = np.arange(6.0).reshape(3, 2)
        >>> s = nanofn.NamedSharding(nanofn.make_mesh((1,), ("x",)), nanofn.P("x"))
        >>> blocks = [nanofn.device_put(data[i], d)
        ...           for d, i in s.addressable_devices_indices_map((3, 2)).items()]
        >>> nanofn.make_array_from_single_device_arrays((3, 2), s, blocks).shape
        (3, 2)
    """
    who = "make_array_from_single_device_arrays"
    if not isinstance(arrays, (list, tuple)):
        raise TypeError(f"{who}: arrays must be a list or tuple, got {type(arrays).__name__}")
    if not isinstance(sharding, _sharding.Sharding):
        raise TypeError(f"{who}: sharding must be a nanofn.sharding.Sharding, got "
                        f"{type(sharding).__name__}")
    shape = tuple(int(n) for n in shape)
    _sharding._check_fits(sharding, shape, who)
    index_of = sharding.addressable_devices_indices_map(shape)
    if len(arrays) != len(index_of):
        raise ValueError(f"{who}: {sharding} has {len(index_of)} devices in this process, so "
                         f"it takes {len(index_of)} arrays, one per device; got {len(arrays)}")
    devices = []
    for a in arrays:
        if isinstance(a, Tracer):
            raise ValueError(f"{who}: arrays must be concrete, got a traced value")
        if type(a) is not core.Array:
            raise TypeError(f"{who}: arrays must be nanofn arrays, each placed on its device "
                            f"with nanofn.device_put(block, device); got {type(a).__name__}")
        placed = a.sharding
        if placed.num_devices != 1:
            raise ValueError(f"{who}: each array must be on one device; one has {placed}")
        devices.append(next(iter(placed.device_set)))
    if len(set(devices)) != len(devices):
        raise ValueError(f"{who}: the arrays must be on distinct devices (place each with "
                         f"nanofn.device_put(block, device)); they are on device ids "
                         f"{[d.id for d in devices]}")
    if set(devices) != set(index_of):
        raise ValueError(f"{who}: the arrays are on device ids {sorted(d.id for d in devices)}"
                         f", but the sharding's devices here are "
                         f"{sorted(d.id for d in index_of)}")
    pieces = [np.asarray(a._value) for a in arrays]
    dtype = _pieces_dtype(pieces, dtype, who)
    return _assemble(shape, sharding, [index_of[d] for d in devices], pieces, dtype, who)


def make_array_from_process_local_data(sharding, local_data, global_shape=None):
    """The global array from the data this process holds
    (`jax.make_array_from_process_local_data`).

    In one process the local data is the whole array: `global_shape`, if given, must
    equal its shape, and the result is `device_put(local_data, sharding)`. `sharding` may
    be a pytree prefix of `local_data`, and a `PartitionSpec` reads the mesh set by
    `nanofn.set_mesh`. In an MPI job a mesh over several processes describes an array no
    process holds, which is an error (see `nanofn.sharding`).

    Example:
        >>> import nanofn, numpy as np
        >>> s = nanofn.NamedSharding(nanofn.make_mesh((1,), ("x",)), nanofn.P("x"))
        >>> nanofn.make_array_from_process_local_data(s, np.ones((2, 3))).shape
        (2, 3)
    """
    who = "make_array_from_process_local_data"
    leaves, treedef = tree_flatten(local_data)
    targets = _sharding._targets(sharding, local_data, who, _sharding._is_target)
    shapes = _sharding._targets(global_shape, local_data, who,
                                lambda s: isinstance(s, tuple))
    out = []
    for leaf, target, shape in zip(leaves, targets, shapes):
        leaf = _to_array(leaf)
        if shape is not None and tuple(shape) != tuple(leaf.shape):
            raise ValueError(f"{who}: in one process the local data is the whole array, so "
                             f"global_shape must be None or its shape {tuple(leaf.shape)}; "
                             f"got {tuple(shape)}")
        out.append(_sharding._put_leaf(leaf, target, who))
    return tree_unflatten(treedef, out)


def device_put_replicated(x, devices):
    """`x` copied to each of `devices`: every leaf gets a leading axis of `len(devices)`
    (`jax.device_put_replicated`), what `pmap` maps over.

    Example:
        >>> import nanofn
        >>> nanofn.device_put_replicated({"w": nanofn.numpy.ones(2)}, nanofn.devices())["w"]
        Array([[1., 1.]], dtype=float32)
    """
    n = _device_list_length("device_put_replicated", devices)
    from nanofn.numpy import stack
    return tree_map(lambda leaf: stack([_to_array(leaf)] * n), x)


def device_put_sharded(shards, devices):
    """One pytree per device, stacked leaf by leaf along a new leading axis
    (`jax.device_put_sharded`): `shards[i]` goes to `devices[i]`.

    Example:
        >>> import nanofn, numpy as np
        >>> nanofn.device_put_sharded([np.zeros(2, np.float32)], nanofn.devices())
        Array([[0., 0.]], dtype=float32)
    """
    n = _device_list_length("device_put_sharded", devices)
    if not isinstance(shards, (list, tuple)) or len(shards) != n:
        raise ValueError(f"device_put_sharded: shards must be a list of one pytree per "
                         f"device ({n}), got {type(shards).__name__} of length "
                         f"{len(shards) if isinstance(shards, (list, tuple)) else '-'}")
    from nanofn.numpy import stack
    return tree_map(lambda *leaves: stack([_to_array(v) for v in leaves]), *shards)


def _device_list_length(name, devices):
    try:
        n = len(devices)
    except TypeError:
        raise TypeError(f"{name}: devices must be a list of devices, such as "
                        f"nanofn.local_devices(), got {type(devices).__name__}") from None
    if n == 0:
        raise ValueError(f"{name}: devices is empty")
    return n


def device_get(x):
    """Every array leaf of `x` as a numpy array (`jax.device_get`); other leaves unchanged.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.device_get([fnp.ones(2), 3])
        [array([1., 1.], dtype=float32), 3]
    """
    def get(leaf):
        if isinstance(leaf, Tracer):
            raise core.TracerArrayConversionError(
                f"device_get: a traced value ({leaf.aval.str_short()}) has no concrete "
                "numbers to fetch; call device_get outside the transformed function")
        return np.asarray(leaf) if type(leaf) is core.Array else leaf
    return tree_map(get, x)


def default_backend() -> str:
    """The platform nanofn computes on: always `"cpu"`.

    Example:
        >>> import nanofn
        >>> nanofn.default_backend()
        'cpu'
    """
    return "cpu"


def block_until_ready(x):
    """Wait for every array in the pytree `x` and return `x` (`jax.block_until_ready`).
    nanofn computes synchronously, so it returns at once.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.block_until_ready((fnp.ones(1), 2))
        (Array([1.], dtype=float32), 2)
    """
    return x


def copy_to_host_async(x):
    """Start copying every array of the pytree `x` to host memory, and return `x`
    (`jax.copy_to_host_async`). nanofn's arrays live in host memory already, so there
    is nothing to start.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.copy_to_host_async({"w": fnp.ones(1)})
        {'w': Array([1.], dtype=float32)}
    """
    return x


jacobian = jacrev  # jax.jacobian is jax.jacrev


def named_call(fun, *, name=None):
    """`fun`, whose calls JAX would name `name` in its jaxprs and profiles. nanofn keeps no
    names for calls, so this returns `fun` wrapped unchanged.

    Example:
        >>> import nanofn
        >>> nanofn.named_call(lambda x: x + 1, name="inc")(1)
        2
    """
    del name  # unused

    @functools.wraps(fun)
    def named(*args, **kwargs):
        return fun(*args, **kwargs)
    return named


@contextlib.contextmanager
def named_scope(name: str):
    """A context manager naming the operations inside it (`jax.named_scope`); nanofn
    accepts it and keeps no names.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> with nanofn.named_scope("layer1"):
        ...     y = fnp.ones(2) * 2
        >>> y
        Array([2., 2.], dtype=float32)
    """
    if not isinstance(name, str):
        raise TypeError(f"named_scope: name must be a string, got {type(name).__name__}")
    yield


def typeof(x) -> ShapedArray:
    """The abstract value (shape and dtype) of `x`, traced or not (`jax.typeof`).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.typeof(fnp.ones((2, 3)))
        ShapedArray(float32[2,3])
    """
    if isinstance(x, (Tracer, core.Array, np.ndarray, np.generic)) or core.is_array_like(x):
        return core.get_aval(x)
    raise TypeError(f"typeof: {type(x).__name__} is not an array type")


def ensure_compile_time_eval():
    """Context manager: inside it, operations on concrete values compute at once, even
    under `jit`, instead of being staged into the compiled program; operations on traced
    values still trace (`jax.ensure_compile_time_eval`).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> def f(x):
        ...     with nanofn.ensure_compile_time_eval():
        ...         n = int(fnp.sum(fnp.arange(4)))  # concrete: 6
        ...     return x * n
        >>> nanofn.jit(f)(1.0)
        Array(6., dtype=float32)
    """
    return core.compile_time_eval()


# ------------------------------------------------------------------------ pure_callback

pure_callback_p = Primitive("pure_callback", multiple_results=True)


def _pure_callback_impl(*args, callback, result_avals, out_tree, in_tree, vmap_method):
    del vmap_method  # unused here
    cb_args, cb_kwargs = tree_unflatten(in_tree, [np.asarray(a) for a in args])
    out = callback(*cb_args, **cb_kwargs)
    leaves, tree = tree_flatten(out)
    if tree != out_tree:
        raise TypeError(f"pure_callback: the callback returned a value of structure {tree}, "
                        f"but result_shape_dtypes has structure {out_tree}")
    outs = []
    for k, (leaf, aval) in enumerate(zip(leaves, result_avals)):
        arr = np.asarray(leaf)
        if arr.shape != aval.shape:
            raise TypeError(f"pure_callback: output {k} of the callback has shape {arr.shape}, "
                            f"but result_shape_dtypes says {aval.shape}")
        outs.append(arr.astype(aval.dtype, copy=False))
    return outs


def _pure_callback_jvp(primals, tangents, **params):
    raise ValueError("pure_callback functions do not support differentiation (jvp, grad); "
                     "wrap the call in a custom_jvp or custom_vjp function to give it a "
                     "derivative, as in JAX")


def _pure_callback_vjp(cts, primals, outs, needs, **params):
    _pure_callback_jvp(primals, None)


def _pure_callback_batch(vals, dims, *, callback, result_avals, out_tree, in_tree,
                         vmap_method):
    from nanofn._batching import axis_size_of
    from nanofn.ops._base import bdim_to_front
    size = axis_size_of(vals, dims)
    batched = tuple(ShapedArray((size,) + a.shape, a.dtype) for a in result_avals)
    if vmap_method in ("expand_dims", "broadcast_all", "legacy_vectorized"):
        import nanofn.numpy as fnp
        moved = []
        for v, d in zip(vals, dims):
            if d is not None:
                moved.append(bdim_to_front(v, d))
            elif vmap_method == "legacy_vectorized":  # unbatched arguments as they are
                moved.append(v)
            elif vmap_method == "expand_dims":
                moved.append(fnp.expand_dims(v, 0))
            else:
                moved.append(fnp.broadcast_to(v, (size,) + tuple(np.shape(v))))
        outs = pure_callback_p.bind(*moved, callback=callback, result_avals=batched,
                                    out_tree=out_tree, in_tree=in_tree, vmap_method=vmap_method)
        return outs, [0] * len(outs)
    mapped = [d is not None for d in dims]

    def one_by_one(*xs):  # the callback once per example, results stacked
        results = [_pure_callback_impl(*[x[i] if m else x for x, m in zip(xs, mapped)],
                                       callback=callback, result_avals=result_avals,
                                       out_tree=out_tree, in_tree=in_tree, vmap_method=None)
                   for i in range(size)]
        return tree_unflatten(out_tree, [np.stack([r[k] for r in results]) if results
                                         else np.zeros(a.shape, a.dtype)
                                         for k, a in enumerate(batched)])

    moved = [bdim_to_front(v, d) if d is not None else v for v, d in zip(vals, dims)]
    flat_tree = tree_flatten((tuple(range(len(moved))), {}))[1]  # positional leaves only
    outs = pure_callback_p.bind(*moved, callback=one_by_one, result_avals=batched,
                                out_tree=out_tree, in_tree=flat_tree, vmap_method="sequential")
    return outs, [0] * len(outs)


def _io_callback_batch(vals, dims, *, callback, result_avals, out_tree, in_tree,
                       vmap_method):
    if vmap_method == "ordered":
        raise ValueError("io_callback: an ordered io_callback cannot be vmapped (its calls "
                         "would have no order); pass ordered=False")
    return _pure_callback_batch(vals, dims, callback=callback, result_avals=result_avals,
                                out_tree=out_tree, in_tree=in_tree, vmap_method="sequential")


pure_callback_p.impl = _pure_callback_impl
pure_callback_p.abstract_eval = lambda *avals, result_avals, **_: list(result_avals)
pure_callback_p.jvp = _pure_callback_jvp
pure_callback_p.vjp_joint = _pure_callback_vjp
pure_callback_p.batch = _pure_callback_batch


# io_callback: the same rules, but effectful, so jit never drops or deduplicates a call
io_callback_p = Primitive("io_callback", multiple_results=True)
io_callback_p.effectful = True
io_callback_p.impl = _pure_callback_impl
io_callback_p.abstract_eval = lambda *avals, result_avals, **_: list(result_avals)
io_callback_p.jvp = _pure_callback_jvp
io_callback_p.vjp_joint = _pure_callback_vjp
io_callback_p.batch = _io_callback_batch


_VMAP_METHODS = (None, "sequential", "sequential_unrolled", "expand_dims", "broadcast_all",
                 "legacy_vectorized")


def _callback_call(prim, name, callback, result_shape_dtypes, args, kwargs, vmap_method):
    if not callable(callback):
        raise TypeError(f"{name}: callback must be callable, got {type(callback).__name__}")
    if vmap_method not in _VMAP_METHODS + ("ordered",):
        raise ValueError(f"{name}: vmap_method must be one of {list(_VMAP_METHODS)}, got "
                         f"{vmap_method!r}")
    spec_leaves, out_tree = tree_flatten(result_shape_dtypes)
    try:
        result_avals = tuple(ShapedArray(tuple(s.shape), np.dtype(s.dtype)) for s in spec_leaves)
    except AttributeError:
        raise TypeError(f"{name}: result_shape_dtypes must be a pytree of objects with "
                        ".shape and .dtype (nanofn.ShapeDtypeStruct or arrays)") from None
    leaves, in_tree = tree_flatten((args, kwargs))
    leaves = [_to_array(x) for x in leaves]
    outs = prim.bind(*leaves, callback=callback, result_avals=result_avals,
                     out_tree=out_tree, in_tree=in_tree, vmap_method=vmap_method)
    return tree_unflatten(out_tree, outs)


def io_callback(callback, result_shape_dtypes, *args, sharding=None, ordered=False,
                **kwargs):
    """Call a Python function with side effects from inside `jit` and other
    transformations, and use its result (`jax.experimental.io_callback`).

    Unlike `pure_callback`, every call runs, in program order, even if its result is
    unused. Under `vmap` an unordered callback is called once per example; an ordered one
    cannot be vmapped, as in JAX. It has no derivative.

    Args:
        callback: the Python function; it receives numpy arrays.
        result_shape_dtypes: a pytree of `.shape`/`.dtype` objects describing the result
            (None for a callback that returns None).
        *args, **kwargs: the arguments (pytrees of arrays).
        sharding: accepted for compatibility; no effect.
        ordered: whether the calls keep their order under transformations.

    Example:
        >>> import nanofn, nanofn.numpy as fnp, numpy as np
        >>> log = []
        >>> def record(x):
        ...     log.append(float(x))
        ...     return np.float32(2 * x)
        >>> spec = nanofn.ShapeDtypeStruct((), fnp.float32)
        >>> f = nanofn.jit(lambda x: nanofn.experimental.io_callback(record, spec, x) + 1)
        >>> f(1.0), f(2.0), log
        (Array(3., dtype=float32), Array(5., dtype=float32), [1.0, 2.0])
    """
    del sharding  # unused
    return _callback_call(io_callback_p, "io_callback", callback, result_shape_dtypes, args,
                          kwargs, "ordered" if ordered else "sequential")


def linear_transpose(fun, *primals, reduce_axes=()):
    """The transpose of the linear function `fun` (`jax.linear_transpose`).

    `primals` give the input structure, shapes and dtypes (arrays or
    `ShapeDtypeStruct`s; their values are not used). The returned function maps an output
    cotangent to the tuple of input cotangents, with the dtypes of `primals`; it is a
    pytree (`tree_util.Partial`), so it can be passed to jit-compiled functions. `fun` must
    be linear in its inputs; this is not checked (nanofn computes the transpose as the VJP
    at zero). Inputs and outputs must be floating point or complex (JAX also transposes
    integer-to-integer functions; nanofn does not).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> f = lambda x: fnp.array([x[0] + x[1], 2.0 * x[1]])
        >>> f_t = nanofn.linear_transpose(f, fnp.zeros(2))
        >>> f_t(fnp.array([1.0, 1.0]))
        (Array([1., 3.], dtype=float32),)
    """
    if reduce_axes:
        raise NotImplementedError("linear_transpose: reduce_axes is not supported (JAX "
                                  "removed it too)")
    from nanofn._ad import vjp
    from nanofn.numpy import zeros
    from nanofn.tree_util import Partial
    leaves, tree = tree_flatten(primals)
    in_dtypes = [np.dtype(x.dtype) for x in leaves]
    zeros_in = tree_unflatten(tree, [zeros(tuple(x.shape), x.dtype) for x in leaves])
    out, pullback = vjp(fun, *zeros_in)
    out_dtypes = [np.dtype(o.dtype) for o in tree_flatten(out)[0]]
    if not all(np.issubdtype(d, np.inexact) for d in in_dtypes + out_dtypes):
        raise TypeError("linear_transpose: only functions from floating point or complex "
                        "inputs to floating point or complex outputs can be transposed, got "
                        f"{[d.name for d in in_dtypes]} -> {[d.name for d in out_dtypes]}")

    def transposed(out_cotangent):
        return tuple(pullback(out_cotangent))

    return Partial(transposed)


def pure_callback(callback, result_shape_dtypes, *args, sharding=None, vmap_method=None,
                  **kwargs):
    """Call the Python function `callback` on concrete values from inside `jit`, `vmap` and
    other transformations (`jax.pure_callback`).

    `callback` must be pure (no side effects that matter: it may be called any number of
    times, or not at all if its result is unused). It receives numpy arrays and returns a
    pytree of arrays with the shapes and dtypes of `result_shape_dtypes`.

    Args:
        callback: the Python function.
        result_shape_dtypes: a pytree of objects with `.shape` and `.dtype`
            (`nanofn.ShapeDtypeStruct`, arrays) describing the result.
        *args, **kwargs: the arguments (pytrees of arrays) to pass.
        sharding: accepted for compatibility; no effect.
        vmap_method: under `vmap`, `"sequential"` or `"sequential_unrolled"` (or None)
            calls `callback` once per example; `"expand_dims"` calls it once with the
            batch axis first (unbatched arguments get a size-1 axis); `"broadcast_all"`
            broadcasts every argument; `"legacy_vectorized"` passes unbatched arguments
            as they are. (JAX raises under `vmap` for None.)

    Returns:
        The callback's result as nanofn arrays (traced under transformations).

    Example:
        >>> import nanofn, nanofn.numpy as fnp, numpy as np
        >>> spec = nanofn.ShapeDtypeStruct((3,), fnp.float32)
        >>> f = nanofn.jit(lambda x: nanofn.pure_callback(np.sort, spec, x) * 2)
        >>> f(fnp.array([3.0, 1.0, 2.0]))
        Array([2., 4., 6.], dtype=float32)
    """
    del sharding  # unused
    return _callback_call(pure_callback_p, "pure_callback", callback, result_shape_dtypes,
                          args, kwargs, vmap_method)


# ------------------------------------------------------------------------ flag contexts


def _flag_context(flag, doc, name=None):
    def context(new_val=True):
        from nanofn._config import config
        return config._override(flag, new_val)
    # the name it is bound to here, so the docs can find it by its qualified name
    context.__name__ = context.__qualname__ = name or flag[4:]
    context.__doc__ = doc
    return context


enable_x64 = _flag_context("jax_enable_x64", """Context manager: inside it, arrays nanofn
    creates default to 64-bit dtypes (the `jax_enable_x64` flag, set for the block).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> with nanofn.enable_x64():
        ...     fnp.zeros(2).dtype
        dtype('float64')
    """)
default_matmul_precision = _flag_context(
    "jax_default_matmul_precision",
    "Context manager setting `jax_default_matmul_precision` for the block (accepted; nanofn "
    "computes float32 matmuls in float32).")


def _valued_flag_context(flag, doc):
    """A flag's context manager that, as JAX's for non-boolean flags, takes the value."""
    def context(new_val):
        from nanofn._config import config
        return config._override(flag, new_val)
    context.__name__ = context.__qualname__ = flag[4:]
    context.__doc__ = doc
    return context


numpy_rank_promotion = _valued_flag_context("jax_numpy_rank_promotion", """Context manager
    setting `jax_numpy_rank_promotion` for the block: `"allow"` (the default), `"warn"`
    or `"raise"` where a nanofn.numpy elementwise function (arithmetic, comparisons,
    logical and bitwise functions, `isclose`, `clip`, ...) broadcasts operands of
    different ranks. Scalars and 0-d arrays are exempt; so are the functions JAX exempts
    (`where`, `matmul`, `outer`, ...) and the batch axis `vmap` adds.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> with nanofn.numpy_rank_promotion("raise"):
        ...     fnp.ones((2, 3)) + fnp.ones(3)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: add: operands of shapes (2, 3) (3,) have different ranks, ...
        >>> with nanofn.numpy_rank_promotion("raise"):
        ...     fnp.ones((2, 3)) + fnp.ones((1, 3)) * 2.0  # same rank: fine
        Array([[3., 3., 3.],
               [3., 3., 3.]], dtype=float32)
    """)
numpy_dtype_promotion = _valued_flag_context("jax_numpy_dtype_promotion", """Context
    manager setting `jax_numpy_dtype_promotion` for the block: `"standard"` (the default:
    JAX's promotion lattice) or `"strict"`, where promoting operands of different dtypes
    implicitly raises `nanofn.dtypes.TypePromotionError`. Python scalars still take an
    array's dtype where JAX's strict lattice allows (an int with any number array, a
    float with a float or complex array), and explicit casts are always allowed. Without
    x64, float64 and float32 (int64 and int32, ...) count as one dtype, as in JAX. nanofn
    has no weakly typed arrays: a Python scalar turned into an array (`asarray(2.0)`, a
    scalar argument of a jitted function) is strongly typed here.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> x = fnp.ones(2, "float32")
        >>> with nanofn.numpy_dtype_promotion("strict"):
        ...     print((x * 2).dtype, (x + fnp.ones(2, "int32").astype("float32")).dtype)
        float32 float32
        >>> with nanofn.numpy_dtype_promotion("strict"):
        ...     x + fnp.ones(2, "int32")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        nanofn.dtypes.TypePromotionError: add: operands of dtypes float32, int32 ...
    """)
debug_infs = _flag_context("jax_debug_infs", """Context manager: inside it, the first
    primitive that produces an infinity raises FloatingPointError naming it and the line
    of your code that ran it (eagerly, under `jit` and in the backward pass; the
    `jax_debug_infs` flag, set for the block).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> with nanofn.debug_infs():
        ...     fnp.log(fnp.array(0.0))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        FloatingPointError: debug_infs: primitive 'log' produced an infinity at ...
    """)
log_compiles = _flag_context("jax_log_compiles", """Context manager: inside it, each
    jitted function that traces and plans a new signature logs a WARNING (logger
    `nanofn._jit`) naming the function and its argument shapes and dtypes, as JAX's
    "Compiling ..." message (the `jax_log_compiles` flag, set for the block).

    Example:
        >>> import logging, nanofn, nanofn.numpy as fnp
        >>> f = nanofn.jit(lambda x: x * 2)
        >>> with nanofn.log_compiles():  # logs: Compiling jit(<lambda>) ... (f32[3]) ...
        ...     _ = f(fnp.ones(3))
        >>> f.trace_count
        1
    """)
explain_cache_misses = _flag_context("jax_explain_cache_misses", """Context manager:
    inside it, a jitted function that traces again logs a WARNING (logger `nanofn._jit`)
    saying where it was called and what differs from the closest signature it has cached:
    an argument's shape or dtype, a static argument's value, or the pytree structure (the
    `jax_explain_cache_misses` flag, set for the block).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> f = nanofn.jit(lambda x: x * 2)
        >>> _ = f(fnp.ones(3))
        >>> with nanofn.explain_cache_misses():  # logs: ... * at x, now f32[4] and before f32[3]
        ...     _ = f(fnp.ones(4))
        >>> f.trace_count
        2
    """)
check_tracer_leaks = _flag_context("jax_check_tracer_leaks", """Context manager setting
    `jax_check_tracer_leaks` for the block. Accepted: nanofn does not scan for leaked
    tracers when a trace ends, as JAX does with this flag; a leaked tracer raises
    `UnexpectedTracerError` when it is next used, with the flag on or off.

    Example:
        >>> import nanofn
        >>> with nanofn.check_tracer_leaks():
        ...     nanofn.config.jax_check_tracer_leaks
        True
    """)
checking_leaks = _flag_context("jax_check_tracer_leaks", """Context manager: JAX's
    `checking_leaks()`, i.e. `check_tracer_leaks(True)` (accepted; see
    `check_tracer_leaks`).

    Example:
        >>> import nanofn
        >>> with nanofn.checking_leaks():
        ...     nanofn.config.jax_check_tracer_leaks
        True
    """, name="checking_leaks")
enable_checks = _flag_context("jax_enable_checks", """Context manager setting
    `jax_enable_checks` for the block: `jit` type-checks each jaxpr it plans (every
    equation's outputs against its primitive's shape rule) and raises
    `nanofn.errors.JaxprTypeError` where one disagrees.

    Example:
        >>> import nanofn
        >>> with nanofn.enable_checks():
        ...     nanofn.jit(lambda x: x * 2)(1.0)
        Array(2., dtype=float32)
    """)
debug_key_reuse = _flag_context("jax_debug_key_reuse", """Context manager setting
    `jax_debug_key_reuse` for the block. Accepted, with no effect: JAX tracks the use of
    typed keys (`jax.random.key`) under it and raises where one is used twice; nanofn does
    not track keys, so it never reports a reused key (as JAX never does for raw keys).

    Example:
        >>> import nanofn
        >>> with nanofn.debug_key_reuse():
        ...     k = nanofn.random.key(0)
        ...     a, b = nanofn.random.normal(k), nanofn.random.normal(k)  # not reported
        >>> bool(a == b)
        True
    """)
softmax_custom_jvp = _flag_context("jax_softmax_custom_jvp", """Context manager setting
    `jax_softmax_custom_jvp` for the block. Accepted: nanofn's softmax has one derivative
    rule, computed from its output as JAX's custom rule is, so both values give the
    same results.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> with nanofn.softmax_custom_jvp(True):
        ...     nanofn.nn.softmax(fnp.zeros(2))
        Array([0.5, 0.5], dtype=float32)
    """)
default_prng_impl = _valued_flag_context("jax_default_prng_impl", """Context manager
    setting `jax_default_prng_impl` for the block. nanofn implements `"threefry2x32"`
    (JAX's default) only: another of JAX's generators raises NotImplementedError.

    Example:
        >>> import nanofn
        >>> with nanofn.default_prng_impl("threefry2x32"):
        ...     str(nanofn.random.key(0).dtype)
        'key<fry>'
        >>> with nanofn.default_prng_impl("rbg"):  # doctest: +ELLIPSIS
        ...     pass
        Traceback (most recent call last):
        NotImplementedError: nanofn.config: jax_default_prng_impl='rbg' is not supported: ...
    """)
legacy_prng_key = _valued_flag_context("jax_legacy_prng_key", """Context manager setting
    `jax_legacy_prng_key` for the block: `"allow"` (JAX's default), `"warn"` or `"error"`,
    accepted with no effect: JAX warns about or refuses raw keys (`PRNGKey`'s) passed to
    its samplers under the last two; nanofn allows raw and typed keys alike.

    Example:
        >>> import nanofn
        >>> with nanofn.legacy_prng_key("error"):
        ...     nanofn.random.PRNGKey(0).shape
        (2,)
    """)
threefry_partitionable = _flag_context("jax_threefry_partitionable", """Context manager
    setting `jax_threefry_partitionable` for the block. nanofn's threefry streams are
    those of JAX's default, True; False (JAX's layout before 0.5) raises
    NotImplementedError.

    Example:
        >>> import nanofn
        >>> with nanofn.threefry_partitionable(True):
        ...     nanofn.random.split(nanofn.random.PRNGKey(0)).shape
        (2, 2)
    """)
enable_custom_prng = _flag_context("jax_enable_custom_prng", """Context manager setting
    `jax_enable_custom_prng` for the block. nanofn implements False (JAX's default) only:
    it has threefry2x32 only and no custom PRNG implementations, so True raises
    NotImplementedError.

    Example:
        >>> import nanofn
        >>> with nanofn.enable_custom_prng(False):
        ...     nanofn.config.jax_enable_custom_prng
        False
    """)
__all__ += ["numpy_dtype_promotion", "check_tracer_leaks", "enable_checks", "debug_key_reuse",
            "softmax_custom_jvp", "default_prng_impl", "legacy_prng_key",
            "threefry_partitionable", "enable_custom_prng"]


@contextlib.contextmanager
def default_device(device):
    """Context manager choosing the device new arrays live on: accepted (there is one).

    Example:
        >>> import nanofn
        >>> with nanofn.default_device(nanofn.devices()[0]):
        ...     pass
    """
    del device  # unused: one CPU device
    yield


@contextlib.contextmanager
def transfer_guard(level):
    """Context manager guarding host/device transfers: accepted (all memory is host
    memory, so there is nothing to guard).

    Example:
        >>> import nanofn
        >>> with nanofn.transfer_guard("disallow"):
        ...     pass
    """
    del level  # unused
    yield


transfer_guard_host_to_device = transfer_guard
transfer_guard_device_to_host = transfer_guard
transfer_guard_device_to_device = transfer_guard


def effects_barrier():
    """Wait until every pending side effect has run: nanofn runs them in order, at once.

    Example:
        >>> import nanofn
        >>> nanofn.effects_barrier()
    """


def process_indices(backend=None) -> list:
    """The indices of every process (`[0]` unless `nanofn.distributed` joined more).

    Example:
        >>> import nanofn
        >>> nanofn.process_indices()
        [0]
    """
    del backend  # one platform: the CPU
    from nanofn.distributed._state import process_count
    return list(range(process_count()))


def print_environment_info(return_string: bool = False):
    """Print (or return) the versions of nanofn, numpy, numba and Python, and the device.

    Example:
        >>> import nanofn
        >>> "nanofn" in nanofn.print_environment_info(return_string=True)
        True
    """
    import platform
    import sys
    import numba
    import nanofn
    info = (f"nanofn:  {nanofn.__version__}\nnumpy:   {np.__version__}\n"
            f"numba:   {numba.__version__}\npython:  {sys.version.split()[0]}\n"
            f"device:  cpu ({platform.machine()})\n")
    if return_string:
        return info
    print(info, end="")


__all__ += ["enable_x64", "default_matmul_precision", "numpy_rank_promotion", "debug_infs",
            "log_compiles", "explain_cache_misses", "checking_leaks", "default_device",
            "transfer_guard",
            "transfer_guard_host_to_device", "transfer_guard_device_to_host",
            "transfer_guard_device_to_device", "effects_barrier",
            "process_indices", "print_environment_info"]
