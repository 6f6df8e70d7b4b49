"""Helpers for programs that run as many processes (`jax.experimental.multihost_utils`).

A JAX multi-host program calls these to wait for the other processes, to make them agree
on values, and to move between the batch one process holds and the global batch. In
nanofn the processes are those of an MPI job joined by `nanofn.distributed.initialize()`
(each one device), and the data travels through the same process group as `pmap`'s
collectives. Without `initialize()` there is one process, and each helper is what JAX
gives with one process: a barrier returns at once, a gather stacks one value, a host-local
array is the global array.

Every process must call these helpers in the same order, with trees of the same structure,
shapes and dtypes (JAX requires the same). nanofn compares them first (a digest of the
structure, one 8-byte message per process) and raises on every process, naming what each
one passed, instead of hanging or mixing up buffers.

Example:
    >>> import numpy as np
    >>> from nanofn.experimental import multihost_utils
    >>> multihost_utils.process_allgather(np.arange(3))      # one process: a stack of one
    array([[0, 1, 2]])
"""

from __future__ import annotations

import contextlib
import hashlib

import numpy as np

__all__ = ["sync_global_devices", "broadcast_one_to_all", "process_allgather", "assert_equal",
           "reached_preemption_sync_point", "host_local_array_to_global_array",
           "global_array_to_host_local_array", "live_devices", "ProcessFailureError"]


def _group():
    """The process group: every MPI process after `initialize()`, else this one alone."""
    from nanofn.distributed._state import world_group
    return world_group()


def _flatten(tree):
    from nanofn.tree_util import tree_flatten
    return tree_flatten(tree)


def _describe(leaves, treedef) -> str:
    """What every process must agree on: the tree's structure, each leaf's dtype and shape."""
    return f"{treedef} with leaves [{', '.join(f'{x.dtype}{list(x.shape)}' for x in leaves)}]"


def _agree(group, text: str, error, what: str) -> None:
    """Compare `text` across the processes (a digest each, one Allgather); on a difference,
    raise `error` on every process, naming each one's text after `what`."""
    if group.size == 1:
        return
    comm = group.comm
    mine = np.frombuffer(hashlib.blake2b(text.encode(), digest_size=8).digest(), np.int64)
    every = np.empty(group.size, np.int64)
    comm.Allgather(mine.copy(), every)
    if (every != mine[0]).any():
        texts = comm.allgather(text)  # the error path only
        raise error(what + "\n" + "\n".join(f"  process {r}: {t}" for r, t in enumerate(texts)))


def _as_numpy(x, who) -> np.ndarray:
    if _is_tracer(x):
        raise TypeError(f"{who} works on concrete arrays: it exchanges values between "
                        "processes, which cannot happen inside jit or a transformation")
    out = np.asarray(x)
    if out.dtype == object:
        raise TypeError(f"{who}: a leaf of dtype object cannot be sent between processes; "
                        "leaves must be arrays or numbers")
    return out


def _is_tracer(x) -> bool:
    from nanofn import _core
    return isinstance(x, _core.Tracer)


def _c_order(x: np.ndarray) -> np.ndarray:
    """`x` in C order, copied only if it is not (a 0-d array stays 0-d, which
    `np.ascontiguousarray` would make 1-d)."""
    return x if x.flags.c_contiguous else x.copy(order="C")


def _gather(group, x: np.ndarray) -> np.ndarray:
    """Every process's `x` stacked in process order, shape `(size,) + x.shape`. The bytes
    travel as uint8 (any dtype numpy can view, float16 and bool included)."""
    x = _c_order(x)
    raw = x.reshape(-1).view(np.uint8)
    got = group.all_gather(raw, 0)  # (size, nbytes)
    return np.ascontiguousarray(got).view(x.dtype).reshape((group.size,) + x.shape)


def _leaves_for_exchange(in_tree, who, error):
    """The leaves of `in_tree` as numpy arrays and its structure, after checking that every
    process passed the same structure, shapes and dtypes."""
    leaves, treedef = _flatten(in_tree)
    leaves = [_as_numpy(x, who) for x in leaves]
    group = _group()
    _agree(group, _describe(leaves, treedef), error,
           f"{who}: the processes passed trees of different structures, shapes or dtypes "
           "(every process must pass the same):")
    return group, leaves, treedef


# --------------------------------------------------------------------- barriers and values


def sync_global_devices(name: str) -> None:
    """Wait until every process has called `sync_global_devices` with this `name` (a
    barrier across processes).

    Like JAX, the processes compare their names (a hash of each): processes that reach
    barriers of different names raise `AssertionError` on every process, naming each
    process's barrier, rather than passing each other. In one process it returns at once.

    Example:
        >>> from nanofn.experimental import multihost_utils
        >>> multihost_utils.sync_global_devices("checkpoint saved")
    """
    if not isinstance(name, str):
        raise TypeError(f"sync_global_devices: name must be a string, got "
                        f"{type(name).__name__}")
    _agree(_group(), repr(name), AssertionError,
           "sync_global_devices: the processes reached barriers of different names (every "
           "process must call sync_global_devices with the same name):")


def broadcast_one_to_all(in_tree, is_source: bool | None = None):
    """Every process gets the source process's `in_tree`: process 0's, or that of the one
    process that passes `is_source=True` (then the others pass False).

    The other processes pass a tree of the same structure, shapes and dtypes (their values
    are not used); leaves come back as numpy arrays, as in JAX. Unlike JAX, which sums the
    sources' values, more or fewer than one source is an error.

    Args:
        in_tree: a pytree of arrays (or numbers).
        is_source: whether this process is the source; None: process 0 is.

    Returns:
        The source's tree, with numpy leaves.

    Example:
        >>> import numpy as np
        >>> from nanofn.experimental import multihost_utils
        >>> multihost_utils.broadcast_one_to_all({"w": np.ones(2), "step": 3})
        {'step': array(3), 'w': array([1., 1.])}
    """
    who = "broadcast_one_to_all"
    group, leaves, treedef = _leaves_for_exchange(in_tree, who, ValueError)
    if group.size == 1:
        return treedef.unflatten(leaves)
    mine = group.rank == 0 if is_source is None else bool(is_source)
    flags = np.empty(group.size, np.int64)
    group.comm.Allgather(np.array([int(mine)], np.int64), flags)
    if flags.sum() != 1:
        raise ValueError(f"{who}: exactly one process must be the source; processes "
                         f"{np.flatnonzero(flags).tolist()} said is_source=True")
    root = int(np.flatnonzero(flags)[0])
    out = []
    for x in leaves:
        buf = _c_order(x) if group.rank == root else np.empty(x.shape, x.dtype)
        if buf.size:
            group.comm.Bcast(buf.reshape(-1).view(np.uint8), root=root)
        out.append(buf)
    return treedef.unflatten(out)


def process_allgather(in_tree, tiled: bool = False):
    """Every process's arrays, in process order: stacked along a new first axis (the
    default), or with `tiled=True` concatenated along the first axis.

    Every process passes a tree of the same structure, shapes and dtypes, and gets the
    same result. A scalar is always stacked, even with `tiled=True`, as JAX's docstring
    says (JAX itself gives a scalar back for a tiled scalar in a one-process run).

    Args:
        in_tree: a pytree of arrays (or numbers).
        tiled: concatenate instead of stacking.

    Returns:
        A pytree of numpy arrays: leaf `x` becomes shape `(process_count(),) + x.shape`,
        or `(process_count() * x.shape[0],) + x.shape[1:]` when tiled.

    Example:
        >>> import numpy as np
        >>> from nanofn.experimental import multihost_utils
        >>> out = multihost_utils.process_allgather({"loss": np.float32(0.5),
        ...                                          "acc": np.array([0.9, 0.8])})
        >>> out["loss"], out["acc"].shape
        (array([0.5], dtype=float32), (1, 2))
        >>> multihost_utils.process_allgather(np.array([0.9, 0.8]), tiled=True)
        array([0.9, 0.8])
    """
    group, leaves, treedef = _leaves_for_exchange(in_tree, "process_allgather", ValueError)
    out = []
    for x in leaves:
        stacked = np.expand_dims(x, 0) if group.size == 1 else _gather(group, x)
        if tiled and x.ndim > 0:
            stacked = stacked.reshape((-1,) + x.shape[1:])
        out.append(stacked)
    return treedef.unflatten(out)


def _same(a, b) -> bool:
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _brief(x) -> str:
    return np.array2string(np.asarray(x), threshold=20, edgeitems=3).replace("\n", "")


def assert_equal(in_tree, fail_message: str = "") -> None:
    """Check that every process holds the same `in_tree` (structure, shapes, dtypes and
    values); raise `AssertionError` starting with `fail_message` on every process if not.

    The message names the first leaf that differs and each process's value of it. Unlike
    JAX, NaNs in the same places count as equal (so a NaN that all processes share is not
    reported as a difference).

    Example:
        >>> import numpy as np
        >>> from nanofn.experimental import multihost_utils
        >>> multihost_utils.assert_equal({"lr": 1e-3, "layers": np.array([64, 10])})
    """
    who = "assert_equal"
    group, leaves, treedef = _leaves_for_exchange(
        in_tree, who, lambda msg: AssertionError(f"{fail_message}. {msg}"))
    if group.size == 1:
        return
    from nanofn.tree_util import keystr, tree_flatten_with_path
    paths = [keystr(p) for p, _ in tree_flatten_with_path(in_tree)[0]]
    for path, x in zip(paths, leaves):
        every = _gather(group, x)
        differ = [r for r in range(group.size) if not _same(every[r], every[0])]
        if differ:
            values = "; ".join(f"process {r}: {_brief(every[r])}" for r in range(group.size))
            raise AssertionError(
                f"{fail_message}. The processes hold different values at leaf "
                f"{path or '(the root)'} (processes {differ} differ from process 0): {values}")


def reached_preemption_sync_point(step_id: int) -> bool:
    """Whether every process has reached the step at which to save a checkpoint after a
    preemption notice (JAX's preemption sync protocol).

    nanofn does not watch for preemption notices: it has no coordination service (MPI
    starts and stops the processes, and a process that is stopped ends the job). So this
    always returns False; save checkpoints on a schedule
    (`nanofn.distributed.save_checkpoint`) and restart from the last one.

    Example:
        >>> from nanofn.experimental import multihost_utils
        >>> multihost_utils.reached_preemption_sync_point(100)
        False
    """
    del step_id  # no preemption notifier: never a sync point
    return False


# --------------------------------------------------------------------- host-local and global


def _specs_for(pspecs, tree, who) -> list:
    """One PartitionSpec per leaf of `tree`, from `pspecs`, a pytree prefix of it."""
    from nanofn.sharding import PartitionSpec, _targets
    specs = _targets(pspecs, tree, who, lambda t: isinstance(t, PartitionSpec))
    for spec in specs:
        if spec is None:
            raise ValueError(f"{who}: None is not a valid pspec; use PartitionSpec() (P()) "
                             "for an array that every device holds whole")
    return specs


def _check_mesh(mesh, who):
    from nanofn.sharding import Mesh
    if not isinstance(mesh, Mesh):
        raise TypeError(f"{who}: global_mesh must be a nanofn.sharding.Mesh, got "
                        f"{type(mesh).__name__}")


def _blocks(mesh, spec) -> list:
    """How many processes' blocks each array axis named by `spec` is cut into, for an MPI
    job whose processes are the mesh's devices (one each)."""
    from nanofn.sharding import _entry_names
    sizes = mesh.shape
    parts = []
    for entry in spec.partitions:
        n = 1
        for name in _entry_names(entry):
            n *= sizes[name]
        parts.append(n)
    return parts


def _local_mesh_problem(mesh) -> str:
    try:
        mesh.local_mesh
    except ValueError as err:
        return str(err)
    return ""


def host_local_array_to_global_array(local_inputs, global_mesh, pspecs):
    """The global arrays that the processes' host-local arrays make up, laid out over
    `global_mesh` by `pspecs`.

    **One process** (its own devices, simulated ones included): the host-local array *is*
    the global array. Each leaf comes back as a nanofn array placed with
    `NamedSharding(global_mesh, spec)` (its `.sharding`), after JAX's checks (spec
    against the mesh, each split axis divisible by its blocks). It works under `jit`.

    **An MPI job** (a mesh whose devices are the processes, one each): along an array
    axis that `spec` splits over mesh axes of `k` processes, the global array is the `k`
    processes' arrays put together in mesh order (JAX's result for a mesh of one device per
    process); along mesh axes the spec leaves out, the processes hold copies (the first
    process's in mesh order is used). nanofn holds arrays whole, so every process gets the
    whole global array (its `.sharding` is the usual single-device one): a program then
    computes on the global batch in every process and gets JAX's values, without dividing
    the work. For data parallelism that divides the work, use `pmap` or
    `nanofn.distributed.data_parallel`. Every process must call it (it gathers).

    Args:
        local_inputs: a pytree of this process's arrays.
        global_mesh: a `nanofn.sharding.Mesh`.
        pspecs: a `PartitionSpec`, or a pytree of them that is a prefix of
            `local_inputs` (`P()`: the same array on every device; None is an error).

    Returns:
        A pytree of global arrays (nanofn arrays).

    Example:
        >>> import numpy as np, nanofn
        >>> from nanofn.experimental import multihost_utils
        >>> from nanofn.sharding import PartitionSpec as P
        >>> mesh = nanofn.make_mesh((1,), ("data",))
        >>> batch = multihost_utils.host_local_array_to_global_array(
        ...     {"x": np.arange(4.0)}, mesh, P("data"))
        >>> batch["x"], batch["x"].sharding.spec
        (Array([0., 1., 2., 3.], dtype=float64), P('data',))
    """
    import nanofn
    from nanofn.sharding import NamedSharding
    from nanofn.tree_util import tree_flatten, tree_unflatten
    who = "host_local_array_to_global_array"
    _check_mesh(global_mesh, who)
    leaves, treedef = tree_flatten(local_inputs)
    specs = _specs_for(pspecs, local_inputs, who)
    shardings = [NamedSharding(global_mesh, spec) for spec in specs]
    group = _group()
    if group.size == 1:
        return tree_unflatten(treedef, [nanofn.device_put(x, s)
                                        for x, s in zip(leaves, shardings)])
    # An MPI job: every process gathers the others' blocks and assembles the whole array
    # (even for a mesh of its own device only, so that all processes take the same path).
    leaves = [_as_numpy(x, who) for x in leaves]
    problem = _local_mesh_problem(global_mesh)
    _agree(group, _describe(leaves, treedef) + f" {[str(s) for s in specs]}"
           + (f" ({problem})" if problem else ""), ValueError,
           f"{who}: the processes passed different structures, shapes, dtypes or specs, "
           "or one is not in the mesh (every process passes its block, of the same shape):")
    if problem:
        raise ValueError(f"{who}: {problem}")
    out = []
    for x, spec, sharding in zip(leaves, specs, shardings):
        sharding._check_rank(x.shape, who)
        parts = _blocks(global_mesh, spec)
        shape = tuple(n * (parts[d] if d < len(parts) else 1) for d, n in enumerate(x.shape))
        every = _gather(group, x)
        whole = np.empty(shape, x.dtype)
        done = set()
        for device, index in sharding.devices_indices_map(shape).items():
            key = tuple((s.start, s.stop) for s in index)
            if key not in done:  # copies along the mesh axes the spec leaves out
                done.add(key)
                whole[index] = every[device.process_index]
        out.append(nanofn.numpy.asarray(whole))
    return tree_unflatten(treedef, out)


def global_array_to_host_local_array(global_inputs, global_mesh, pspecs):
    """This process's part of each global array laid out over `global_mesh` by `pspecs`
    (the reverse of `host_local_array_to_global_array`).

    **One process**: the global array is the host-local array; each leaf comes back as a
    nanofn array placed with `NamedSharding(global_mesh, spec)`. **An MPI job** (each
    process one device of the mesh): every process holds the whole global array (see
    `host_local_array_to_global_array`), and gets back its block: along an array axis
    that `spec` splits, the slice at its position in the mesh. No data moves between
    processes.

    Args:
        global_inputs: a pytree of global arrays.
        global_mesh: a `nanofn.sharding.Mesh`.
        pspecs: a `PartitionSpec`, or a pytree of them that is a prefix of
            `global_inputs` (None is an error).

    Returns:
        A pytree of host-local arrays (nanofn arrays).

    Example:
        >>> import numpy as np, nanofn
        >>> from nanofn.experimental import multihost_utils
        >>> from nanofn.sharding import PartitionSpec as P
        >>> mesh = nanofn.make_mesh((1,), ("data",))
        >>> multihost_utils.global_array_to_host_local_array(np.arange(4.0), mesh, P("data"))
        Array([0., 1., 2., 3.], dtype=float64)
    """
    import nanofn
    from nanofn.sharding import IndivisibleError, NamedSharding
    from nanofn.tree_util import tree_flatten, tree_unflatten
    who = "global_array_to_host_local_array"
    _check_mesh(global_mesh, who)
    leaves, treedef = tree_flatten(global_inputs)
    specs = _specs_for(pspecs, global_inputs, who)
    shardings = [NamedSharding(global_mesh, spec) for spec in specs]
    if not global_mesh.is_multi_process:
        return tree_unflatten(treedef, [nanofn.device_put(x, s)
                                        for x, s in zip(leaves, shardings)])
    problem = _local_mesh_problem(global_mesh)
    if problem:
        raise ValueError(f"{who}: {problem}")
    me = global_mesh.local_mesh.devices.flat[0]
    out = []
    for x, sharding in zip(leaves, shardings):
        x = _as_numpy(x, who)
        sharding._check_rank(x.shape, who)
        try:
            index = sharding.devices_indices_map(x.shape)[me]
        except IndivisibleError as err:
            raise IndivisibleError(f"{who}: {err}") from None
        out.append(nanofn.numpy.asarray(x[index]))
    return tree_unflatten(treedef, out)


# --------------------------------------------------------------------- live devices


class ProcessFailureError(Exception):
    """Raised by JAX's `live_devices` when processes failed (`failed_devices` holds their
    devices). nanofn never raises it: in an MPI job a failed process ends the whole job.

    Example:
        >>> from nanofn.experimental.multihost_utils import ProcessFailureError
        >>> ProcessFailureError(set()).failed_devices
        set()
    """

    def __init__(self, failed_devices):
        self.failed_devices = failed_devices
        super().__init__(f"Devices failed: {failed_devices}")


@contextlib.contextmanager
def live_devices(devices):
    """A context manager that yields the live devices among `devices`, sorted by id (JAX's
    fault-tolerance primitive, experimental there).

    In nanofn every process of the job is live while the job runs (MPI ends the job when a
    process fails), so it yields all of `devices` after a barrier across the processes
    (all of them must enter it, as in JAX), and `ProcessFailureError` is never raised.
    It needs `nanofn.distributed.initialize()` (JAX: the distributed runtime) and at least
    one of this process's devices.

    Example:
        >>> import nanofn
        >>> from nanofn.experimental import multihost_utils
        >>> with multihost_utils.live_devices(nanofn.devices()) as devices:
        ...     pass
        Traceback (most recent call last):
        ...
        RuntimeError: live_devices: nanofn.distributed.initialize() was not called
    """
    from nanofn.distributed._state import is_initialized, process_index
    if not is_initialized():
        raise RuntimeError("live_devices: nanofn.distributed.initialize() was not called")
    devices = list(devices)
    if not devices:
        raise ValueError("live_devices: no devices provided")
    if process_index() not in {d.process_index for d in devices}:
        raise ValueError("live_devices: the devices provided include none of this "
                         "process's devices")
    sync_global_devices("nanofn.live_devices")
    yield sorted(devices, key=lambda d: d.id)
