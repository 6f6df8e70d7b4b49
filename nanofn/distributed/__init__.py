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
from nanofn.distributed._helpers import (
    broadcast_one_to_all as broadcast_one_to_all, sync_global_devices as sync_global_devices,
    shard_batch as shard_batch, save_checkpoint as save_checkpoint,
    load_checkpoint as load_checkpoint, is_main_process as is_main_process,
    progress as progress, print_main as print_main,
)
from nanofn.distributed._data_parallel import (
    data_parallel as data_parallel, DataParallel as DataParallel,
    DataParallelState as DataParallelState,
)

__all__ = ["initialize", "shutdown", "is_initialized", "devices", "local_devices",
           "device_count", "local_device_count", "process_index", "process_count",
           "CpuDevice", "CollectiveMismatchError", "pmap", "broadcast_one_to_all",
           "sync_global_devices", "shard_batch", "save_checkpoint", "load_checkpoint",
           "is_main_process", "progress", "print_main", "data_parallel", "DataParallel",
           "DataParallelState"]
