"""Rank-aware helpers: what the rest of a training program needs to run on many processes.

* `broadcast_one_to_all` and `sync_global_devices` (the names of JAX's `multihost_utils`):
  make every process start from process 0's values, and wait for each other.
* `shard_batch`: each process takes its rows of a global batch (every process draws the
  same global batch, e.g. from `nanofn.data.batches` with the same key).
* `save_checkpoint` / `load_checkpoint`: process 0 writes (atomically, with
  `nanofn.serialization.save`), every process gets the same tree back (process 0 reads the
  file and broadcasts its bytes, so the other machines need not share a file system).
* `is_main_process`, `progress`, `print_main`: logs and progress bars on process 0 only.

Without `initialize()` there is one process and every helper is the one-process identity.
"""

from __future__ import annotations

import hashlib

import numpy as np

from nanofn.distributed._state import world_group


def _comm():
    group = world_group()
    return getattr(group, "comm", None), group


def is_main_process() -> bool:
    """True on process 0 (the one that logs and writes checkpoints).

    Example:
        >>> import nanofn
        >>> nanofn.distributed.is_main_process()
        True
    """
    return world_group().rank == 0


def print_main(*args, **kwargs) -> None:
    """`print` on process 0 only."""
    if is_main_process():
        print(*args, **kwargs)


def progress(iterable=None, **kwargs):
    """A `tqdm` progress bar shown on process 0 only (the others get a silent one).

    Example:
        >>> import nanofn
        >>> sum(nanofn.distributed.progress(range(3), disable=True))
        3
    """
    from tqdm import tqdm
    kwargs["disable"] = kwargs.get("disable", False) or not is_main_process()
    return tqdm(iterable, **kwargs)


def sync_global_devices(name: str) -> None:
    """Wait until every process reaches a call with the same `name` (a barrier that
    checks its name: processes at different barriers raise instead of passing each other).

    Example:
        >>> import nanofn
        >>> nanofn.distributed.sync_global_devices("start")
    """
    comm, group = _comm()
    if comm is None:
        return
    digest = np.frombuffer(hashlib.blake2b(name.encode(), digest_size=8).digest(), np.int64)
    got = np.empty(group.size, np.int64)
    comm.Allgather(digest.copy(), got)
    if (got != digest[0]).any():
        names = comm.allgather(name)
        raise RuntimeError("sync_global_devices: processes are at different barriers: " +
                           ", ".join(f"rank {r}: {n!r}" for r, n in enumerate(names)))


def _bcast_bytes(comm, data: bytes | None, root: int) -> bytes:
    n = np.array([len(data) if data is not None else 0], np.int64)
    comm.Bcast(n, root=root)
    buf = np.frombuffer(data, np.uint8).copy() if data is not None else np.empty(n[0], np.uint8)
    comm.Bcast(buf, root=root)
    return buf.tobytes()


def broadcast_one_to_all(tree, is_source: bool | None = None):
    """Every process gets process 0's `tree` (or that of the process with
    `is_source=True`); the others' values only give the structure and need not match.

    Leaves come back as numpy arrays. The structure travels as nanofn's serialization
    format (JSON), the arrays as raw buffers: nothing is pickled.

    Example:
        >>> import nanofn, numpy as np
        >>> nanofn.distributed.broadcast_one_to_all({"w": np.ones(2)})
        {'w': array([1., 1.])}
    """
    from nanofn import serialization
    comm, group = _comm()
    if comm is None:
        return serialization.from_bytes(serialization.to_bytes(tree))
    mine = group.rank == 0 if is_source is None else bool(is_source)
    flags = np.empty(group.size, np.int64)
    comm.Allgather(np.array([int(mine)], np.int64), flags)
    if flags.sum() != 1:
        raise ValueError(f"broadcast_one_to_all: exactly one process must be the source; "
                         f"processes {np.flatnonzero(flags).tolist()} said is_source=True")
    root = int(np.flatnonzero(flags)[0])
    data = serialization.to_bytes(tree) if group.rank == root else None
    return serialization.from_bytes(_bcast_bytes(comm, data, root))


def shard_batch(batch, process_index: int | None = None, process_count: int | None = None):
    """This process's rows of a global batch: leaf `x` becomes `x[i*m:(i+1)*m]` on
    process `i` of `n`, with `m = len(x) // n` (every leaf's length must divide evenly).

    Example:
        >>> import nanofn, numpy as np
        >>> nanofn.distributed.shard_batch(np.arange(4), process_index=1, process_count=2)
        array([2, 3])
    """
    from nanofn.tree_util import tree_map
    group = world_group()
    i = group.rank if process_index is None else int(process_index)
    n = group.size if process_count is None else int(process_count)

    def cut(x):
        length = np.shape(x)[0]
        if length % n:
            raise ValueError(f"shard_batch: a leaf of {length} rows does not split evenly over "
                             f"{n} processes; use a global batch size divisible by {n}")
        m = length // n
        return x[i * m:(i + 1) * m]
    return tree_map(cut, batch)


def save_checkpoint(path, tree) -> None:
    """Process 0 writes `tree` to `path` (atomically, `nanofn.serialization.save`); every
    process returns once the file is complete, or raises if process 0 failed to write it."""
    from nanofn import serialization
    comm, group = _comm()
    error = None
    if group.rank == 0:
        try:
            serialization.save(path, tree)
        except Exception as err:  # noqa: BLE001 - re-raised below on every process
            error = err
    if comm is not None:
        failed = np.array([error is not None], np.int64)
        comm.Bcast(failed, root=0)
        if failed[0] and error is None:
            raise RuntimeError(f"save_checkpoint: process 0 failed to write {path}")
    if error is not None:
        raise error


def load_checkpoint(path):
    """Every process gets the tree saved at `path`: process 0 reads the file and sends its
    bytes to the others (no shared file system needed). Leaves are numpy arrays."""
    from nanofn import serialization
    comm, group = _comm()
    if comm is None:
        return serialization.load(path)
    data, error = None, ""
    if group.rank == 0:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as err:
            error = str(err)
    status = _bcast_bytes(comm, error.encode() if group.rank == 0 else None, 0)
    if status:
        raise FileNotFoundError(f"load_checkpoint: process 0 could not read {path}: "
                                f"{status.decode()}")
    return serialization.from_bytes(_bcast_bytes(comm, data, 0))
