"""nanofn.distributed: many processes as devices, over MPI (`jax.distributed`'s role).

`initialize()` joins the MPI job this process was started in (`mpiexec -n 2 python
train.py`); each process is then one device, `pmap` collectives span all of them, and
the helpers here make the rest of a training program rank-aware. The transport is MPI
through mpi4py (the optional `nanofn[distributed]` extra, imported only by `initialize`).
"""

from nanofn.distributed._state import (
    initialize as initialize, shutdown as shutdown, is_initialized as is_initialized,
    devices as devices, local_devices as local_devices, device_count as device_count,
    local_device_count as local_device_count, process_index as process_index,
    process_count as process_count, CpuDevice as CpuDevice,
)
from nanofn.distributed._groups import CollectiveMismatchError as CollectiveMismatchError
from nanofn.distributed._pmap import pmap as pmap

__all__ = ["initialize", "shutdown", "is_initialized", "devices", "local_devices",
           "device_count", "local_device_count", "process_index", "process_count",
           "CpuDevice", "CollectiveMismatchError", "pmap"]
