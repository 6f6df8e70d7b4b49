"""Process state: `initialize`, `shutdown`, and the device queries (`devices`, ...).

Without `initialize` a process is one device (`LocalGroup`), or the CPU devices asked
for with JAX's settings (`local_device_count`), which `pmap` runs as a `vmap`.
`initialize()` joins the MPI job this process was started in (by `mpiexec`/`srun`), and
from then on each MPI process is one device: `device_count()` is the number of processes,
`local_device_count()` is 1, and a `pmap` collective spans every process.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import threading
import time

from nanofn.distributed._groups import LocalGroup, MPIGroup

# Environment variables that MPI launchers set in every process they start (MPICH's hydra,
# Open MPI, PMIx, Slurm). Read without importing mpi4py, to spot a forgotten initialize().
_LAUNCH_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS",
                     "SLURM_NTASKS")


class _State:
    group = None          # the MPIGroup after initialize(), else None
    excepthook = None     # the hook initialize() replaced


_state = _State()
_lock = threading.Lock()


def _launch_size() -> int:
    """How many processes the launcher started, from its environment (1 if none)."""
    for var in _LAUNCH_SIZE_VARS:
        value = os.environ.get(var)
        if value and value.isdigit():
            return int(value)
    return 1


def is_initialized() -> bool:
    """Whether `initialize()` has been called (and not `shutdown()`)."""
    return _state.group is not None


def world_group():
    """The device group a `pmap` spans: every MPI process after `initialize()`, else this
    process alone. In a multi-process launch without `initialize()` this is an error:
    each process would silently train on its own."""
    if _state.group is not None:
        return _state.group
    n = _launch_size()
    if n > 1:
        raise RuntimeError(
            f"this process is one of {n} started by an MPI launcher, but "
            "nanofn.distributed.initialize() was not called: a collective now would span "
            "this process only. Call nanofn.distributed.initialize() at the start of the "
            "program, before any pmap or collective.")
    return _LOCAL


_LOCAL = LocalGroup()


def initialize(coordinator_address=None, num_processes=None, process_id=None,
               local_device_ids=None, cluster_detection_method=None, initialization_timeout=300,
               heartbeat_timeout_seconds=100, shutdown_timeout_seconds=300,
               coordinator_bind_address=None, slice_index=None, partition_index=None, *,
               abort_on_error=True, check_collectives=True, report_wait_seconds=300.0):
    """Join the MPI job this process belongs to; each process becomes one device.

    Mirrors `jax.distributed.initialize`. The transport is MPI (through mpi4py, the
    `nanofn[distributed]` extra), so the launcher (`mpiexec -n 2 python train.py`, or a
    hostfile across machines) already knows every process: called with no arguments,
    `initialize` reads the job from MPI. Explicit arguments are checked against it.

    Args:
        coordinator_address: accepted for compatibility with JAX; MPI's launcher connects
            the processes, so it is not used.
        num_processes: if given, must equal the number of MPI processes.
        process_id: if given, must equal this process's MPI rank.
        local_device_ids: if given, must be `[0]` or `0` (one device per process).
        cluster_detection_method, initialization_timeout, heartbeat_timeout_seconds,
            shutdown_timeout_seconds, coordinator_bind_address, slice_index,
            partition_index: JAX's settings for its own coordination service, accepted so
            that a JAX program's call runs unchanged; MPI starts, watches and ends the
            processes here (a failed process ends the job: `abort_on_error`).
        abort_on_error: an uncaught exception in any process prints which rank failed and
            aborts the whole MPI job (`MPI_Abort`), so the others stop instead of waiting
            forever in their next collective.
        check_collectives: compare every collective's shapes, dtypes and parameters across
            processes first (one small Allgather), raising a clear error on a mismatch.
        report_wait_seconds: a process that has waited this long in one collective says so
            on stderr, naming the collective (processes that call collectives in different
            orders wait forever); None turns the report off.

    Raises:
        RuntimeError: if called twice without `shutdown()`, or mpi4py is missing.
        ValueError: if explicit arguments disagree with the MPI job.

    Example (in a script run with `mpiexec -n 2 python script.py`)::

        import nanofn
        nanofn.distributed.initialize()
        print(nanofn.process_index(), "of", nanofn.process_count())
    """
    # unused: MPI's launcher has already connected the processes (see Args)
    del coordinator_address, cluster_detection_method, initialization_timeout
    del heartbeat_timeout_seconds, shutdown_timeout_seconds, coordinator_bind_address
    del slice_index, partition_index
    with _lock:
        if _state.group is not None:
            raise RuntimeError("nanofn.distributed.initialize() was already called in this "
                               "process; call nanofn.distributed.shutdown() first to "
                               "initialize again")
        try:
            from mpi4py import MPI
        except ImportError as err:
            raise RuntimeError(
                "nanofn.distributed.initialize() needs mpi4py and an MPI library: "
                "pip install 'nanofn[distributed]' (mpi4py plus the mpich wheel)") from err
        comm = MPI.COMM_WORLD.Dup()
        size, rank = comm.Get_size(), comm.Get_rank()
        if num_processes is not None and int(num_processes) != size:
            raise ValueError(f"initialize(num_processes={num_processes}), but the MPI job has "
                             f"{size} process(es)")
        if process_id is not None and int(process_id) != rank:
            raise ValueError(f"initialize(process_id={process_id}), but this process has MPI "
                             f"rank {rank}")
        if local_device_ids is not None and list(
                [local_device_ids] if isinstance(local_device_ids, int) else local_device_ids) != [0]:
            raise ValueError(f"initialize(local_device_ids={local_device_ids}): each MPI "
                             "process is one device, so the only local device id is 0")
        _state.group = MPIGroup(comm, check=check_collectives, report_wait=report_wait_seconds)
        if abort_on_error:
            _install_excepthook()


def shutdown():
    """Leave the MPI job (the reverse of `initialize`); a no-op if not initialized."""
    with _lock:
        group, _state.group = _state.group, None
        if _state.excepthook is not None:
            sys.excepthook, _state.excepthook = _state.excepthook, None
        if group is not None:
            group.close()
            group.comm.Barrier()
            group.comm.Free()


_ABORT_GRACE_S = 0.5  # how long a failing process waits, after printing, before MPI_Abort


def _install_excepthook():
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        group = _state.group
        if group is None or group.size == 1:
            previous(exc_type, exc, tb)
            return
        # the one line that names the rank first, then the traceback: the launcher's output
        # forwarding dies with the job, so what it has not passed on yet is lost
        sys.stderr.write(f"nanofn.distributed: process {group.rank} of {group.size} raised "
                         f"{exc_type.__name__}: {exc}; aborting every process of the MPI job\n")
        sys.stderr.flush()
        previous(exc_type, exc, tb)
        sys.stderr.flush()
        time.sleep(_ABORT_GRACE_S)  # let the launcher forward it before the abort kills it
        group.MPI.COMM_WORLD.Abort(1)

    _state.excepthook = previous
    sys.excepthook = hook


# ------------------------------------------------------------------------ devices


class CpuDevice:
    """One device: a CPU process (its `id` is its process index)."""

    platform = "cpu"
    device_kind = "cpu"

    def __init__(self, id, process_index):
        self.id = id
        self.process_index = process_index

    def __repr__(self):
        return f"CpuDevice(id={self.id})"

    def __eq__(self, other):
        return isinstance(other, CpuDevice) and other.id == self.id

    def __hash__(self):
        return hash(("cpu", self.id))


def process_count(backend=None) -> int:
    """The number of processes (1 unless `nanofn.distributed.initialize()` joined more).

    Example:
        >>> import nanofn
        >>> nanofn.process_count()
        1
    """
    del backend  # one platform: the CPU
    return world_group().size


def process_index(backend=None) -> int:
    """This process's index, from 0 (its MPI rank after `initialize()`).

    Example:
        >>> import nanofn
        >>> nanofn.process_index()
        0
    """
    del backend  # one platform: the CPU
    return world_group().rank


def host_id(backend=None) -> int:
    """JAX's older name for `process_index`.

    Example:
        >>> import nanofn
        >>> nanofn.host_id()
        0
    """
    return process_index(backend)


def host_count(backend=None) -> int:
    """JAX's older name for `process_count`.

    Example:
        >>> import nanofn
        >>> nanofn.host_count()
        1
    """
    return process_count(backend)


def host_ids(backend=None) -> list:
    """Every process index, in order (JAX's older `host_ids`).

    Example:
        >>> import nanofn
        >>> nanofn.host_ids()
        [0]
    """
    return list(range(process_count(backend)))


def device_count(backend=None) -> int:
    """The number of devices over all processes: one per process, or in a one-process
    run the CPU devices asked for (see `local_device_count`).

    Example:
        >>> import nanofn
        >>> nanofn.device_count()
        1
    """
    del backend  # one platform: the CPU
    return process_count() * local_device_count()


def local_device_count(backend=None) -> int:
    """The number of devices this process drives.

    A process of an MPI job is one device. A one-process run has one CPU device unless
    more are asked for the way JAX asks for them: `nanofn.config.update(
    "jax_num_cpu_devices", N)` or `XLA_FLAGS=--xla_force_host_platform_device_count=N`.
    `pmap` then maps over up to N devices in this process (as `vmap` with the axis name
    does), so programs and tests written for several devices run unchanged.

    Example:
        >>> import nanofn
        >>> nanofn.local_device_count()
        1
    """
    del backend  # one platform: the CPU
    if process_count() > 1:
        return 1
    return _cpu_devices_asked()


def _cpu_devices_asked() -> int:
    from nanofn._config import config
    n = config.read("jax_num_cpu_devices")
    if n is not None and int(n) > 0:
        return int(n)
    return _devices_in_xla_flags(os.environ.get("XLA_FLAGS", ""))


@functools.lru_cache(maxsize=8)
def _devices_in_xla_flags(flags: str) -> int:
    match = re.search(r"--xla_force_host_platform_device_count=(\d+)", flags)
    return max(int(match.group(1)), 1) if match else 1


def devices(backend=None) -> list:
    """Every device, over all processes, in order of `id`.

    Example:
        >>> import nanofn
        >>> nanofn.devices()
        [CpuDevice(id=0)]
    """
    del backend  # unused: CPU only
    if process_count() > 1:
        return [CpuDevice(i, i) for i in range(process_count())]
    return [CpuDevice(i, 0) for i in range(local_device_count())]


def local_devices(process_index=None, backend=None, host_id=None) -> list:
    """The devices of one process (this one by default; `host_id` is JAX's older name for
    `process_index`).

    Example:
        >>> import nanofn
        >>> nanofn.local_devices()
        [CpuDevice(id=0)]
    """
    del backend  # unused: CPU only
    if process_index is None:
        process_index = host_id
    i = globals()["process_index"]() if process_index is None else int(process_index)
    return [d for d in devices() if d.process_index == i]
