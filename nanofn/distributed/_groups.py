"""Device groups: who performs a collective over a pmap axis.

A pmap axis's frame (`nanofn/_named_axes.py`) holds a group; the collectives' `impl`s call
its methods on numpy buffers. `LocalGroup` is the one device of a process that was not
started as part of an MPI job. `MPIGroup` makes each MPI process one device and calls
mpi4py's buffer methods (the upper-case ones: `Allreduce`, `Allgather`, ...), which hand
numpy memory straight to MPI: no pickling, and no copies beyond a contiguous send buffer
where the operand is not contiguous and one bucket for a psum of many leaves.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sys
import threading
import time

import numpy as np


class LocalGroup:
    """The single device of a one-process run: every collective is a local array op."""

    rank = 0
    size = 1

    def allreduce(self, xs, op):
        del op  # unused: one instance is its own sum, max and min
        return list(xs)

    def all_gather(self, x, axis):
        return np.expand_dims(x, axis)

    def reduce_scatter(self, x, scatter_dimension):
        return np.take(x, 0, axis=scatter_dimension)

    def ppermute(self, x, perm):
        return x if (0, 0) in perm else np.zeros_like(x)

    def all_to_all(self, x, split_axis, concat_axis):
        return np.expand_dims(np.take(x, 0, axis=split_axis), concat_axis)


# A psum of many leaves is sent as few messages: leaves of one dtype smaller than
# ALONE_BYTES are packed into buckets of up to BUCKET_BYTES, reduced in place; a larger
# leaf goes alone. Packing costs about what it saves in copies (MPICH's Allreduce from one
# buffer into another starts by copying the input into the output; in place it does not),
# and fewer messages wait less: for W1's gradients (784x512, 512x512 and small leaves,
# 2.7 MB) over 2 processes, one packed message took about 0.9x the time of three.
BUCKET_BYTES = 4 << 20
ALONE_BYTES = BUCKET_BYTES


class _BufferPool:
    """Reuses large result buffers whose previous result nobody holds any more.

    Buffers of 32 MB and more come from mmap and go back to the OS when freed, so each new
    one page-faults on first touch (about a third of a 64 MB allreduce's time). The pool
    keeps a few large buffers and hands one out again only when its reference count shows
    that the pool alone holds it (a view, or an `Array` wrapping it, holds a reference).
    """

    MIN_BYTES = 8 << 20
    SIZE = 4

    def __init__(self):
        self.buffers = []

    def empty(self, shape, dtype):
        if math.prod(shape) * dtype.itemsize < self.MIN_BYTES:
            return np.empty(shape, dtype)
        for buf in self.buffers:
            # 3 references: the list, `buf`, and getrefcount's argument
            if buf.shape == tuple(shape) and buf.dtype == dtype and sys.getrefcount(buf) <= 3:
                return buf
        buf = np.empty(shape, dtype)
        self.buffers = (self.buffers + [buf])[-self.SIZE:]
        return buf


class CollectiveMismatchError(ValueError):
    """Processes called a collective with different shapes, dtypes or parameters."""


class _WaitReport:
    """Says on stderr when this process has waited in one collective for `seconds`: the
    usual cause of a silent hang is processes that call collectives in different orders
    (one behind an `if` that depends on the process). One daemon thread looks, every
    `seconds / 4`, at what the group has marked as its collective in progress; a call
    costs that mark (a tuple) and nothing else."""

    def __init__(self, group, seconds):
        self.group = group
        self.seconds = float(seconds)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="nanofn-wait-report",
                                       daemon=True)
        self.thread.start()

    def _loop(self):
        reported = None
        while not self.stop.wait(self.seconds / 4):
            waiting = self.group.waiting
            if waiting is None or waiting is reported:
                continue
            key, start = waiting
            if time.monotonic() - start >= self.seconds:
                reported = waiting
                g = self.group
                sys.stderr.write(
                    f"nanofn.distributed: process {g.rank} of {g.size} has waited "
                    f"{self.seconds:g} s for the others in {g._signature(key)} (its "
                    f"collective call number {g.count}). Unless they are busy elsewhere, they "
                    "wait in other collectives or skip this one: every process must call the "
                    "same collectives in the same order, so look for a collective (or a "
                    "function that calls one) behind a condition that differs between "
                    "processes.\n")
                sys.stderr.flush()


class MPIGroup:
    """Every process of an MPI communicator as one device.

    With `check=True` every collective first compares a 64-bit digest of its signature
    (operation, shapes, dtypes, parameters) across processes with one 8-byte Allgather;
    on a mismatch every process raises `CollectiveMismatchError` naming each rank's call,
    instead of handing MPI buffers that do not match (which corrupts memory or hangs).
    With `report_wait` (seconds), a process that waits that long in one collective says
    so on stderr, naming the collective (see `_WaitReport`).
    """

    def __init__(self, comm, *, check=True, report_wait=None):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.check = check
        self._ops = {"psum": MPI.SUM, "pmax": MPI.MAX, "pmin": MPI.MIN}
        self._gathered = bytearray(8 * self.size)  # every process's digest
        self._pool = _BufferPool()
        self._digest_of: dict = {}  # signature -> (digest, the digest of every process)
        self.waiting = None  # (signature, start) of the collective in progress
        self.count = 0       # collectives called so far
        self._report = _WaitReport(self, report_wait) if report_wait and self.size > 1 \
            else None

    def close(self):
        if self._report is not None:
            self._report.stop.set()

    # -- metadata check ------------------------------------------------------------------
    @contextlib.contextmanager
    def _collective(self, name, arrays, **params):
        """Around one collective on `arrays`: marks it as in progress (for the wait report)
        and, with `check`, first compares its signature with every other process's."""
        key = (name, tuple((a.shape, a.dtype.char) for a in arrays),
               tuple(sorted(params.items())))
        self.count += 1
        self.waiting = (key, time.monotonic())
        try:
            if self.check:
                self._agree(key)
            yield
        finally:
            self.waiting = None

    def _agree(self, key):
        """Compare the signature `key` with every process's (one 8-byte Allgather)."""
        entry = self._digest_of.get(key)
        if entry is None:  # hashing costs more than the lookup: once per signature
            digest = hashlib.blake2b(self._signature(key).encode(), digest_size=8).digest()
            if len(self._digest_of) > 4096:
                self._digest_of.clear()
            entry = self._digest_of[key] = (digest, digest * self.size)
        self.comm.Allgather(entry[0], self._gathered)
        if self._gathered != entry[1]:
            sigs = self.comm.allgather(self._signature(key))  # the error path only
            lines = "\n".join(f"  rank {r}: {s}" for r, s in enumerate(sigs))
            raise CollectiveMismatchError(
                f"{key[0]}: the processes called this collective with different shapes, "
                f"dtypes or parameters (every process must pass the same):\n{lines}")

    @staticmethod
    def _signature(key) -> str:
        from nanofn._core import ShapedArray
        what, avals, params = key
        sig = f"{what}({', '.join(ShapedArray(s, d).str_short() for s, d in avals)})"
        if params:
            sig += " with " + ", ".join(f"{k}={v!r}" for k, v in params)
        return sig

    # -- collectives -----------------------------------------------------------------------
    # Each reads its operands where they are (a copy only where MPI needs contiguous memory
    # or one bucket of packed leaves) into a new result buffer, never into an operand.
    def allreduce(self, xs, op):
        xs = [_contiguous(x) for x in xs]
        with self._collective(op, xs):
            return self._allreduce(xs, self._ops[op])

    def _allreduce(self, xs, mpi_op):
        outs = [None] * len(xs)
        by_dtype: dict = {}
        for i, x in enumerate(xs):
            if x.nbytes >= ALONE_BYTES or len(xs) == 1:
                outs[i] = self._pool.empty(x.shape, x.dtype)
                self.comm.Allreduce(x, outs[i], op=mpi_op)
            else:
                by_dtype.setdefault(x.dtype, []).append(i)
        for idx in by_dtype.values():
            start = 0
            while start < len(idx):  # one bucket: consecutive leaves up to BUCKET_BYTES
                stop, nbytes = start, 0
                while stop < len(idx) and (stop == start or nbytes + xs[idx[stop]].nbytes
                                           <= BUCKET_BYTES):
                    nbytes += xs[idx[stop]].nbytes
                    stop += 1
                part = idx[start:stop]
                buf = np.concatenate([xs[i].ravel() for i in part]) if len(part) > 1 \
                    else xs[part[0]].ravel().copy()
                self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=mpi_op)
                offset = 0
                for i in part:
                    outs[i] = buf[offset:offset + xs[i].size].reshape(xs[i].shape)
                    offset += xs[i].size
                start = stop
        return outs

    def all_gather(self, x, axis):
        x = _contiguous(x)
        with self._collective("all_gather", [x], axis=axis):
            out = np.empty((self.size,) + x.shape, x.dtype)
            self.comm.Allgather(x, out)
        return np.moveaxis(out, 0, axis)

    def reduce_scatter(self, x, scatter_dimension):
        x = _contiguous(np.moveaxis(np.asarray(x), scatter_dimension, 0))
        with self._collective("psum_scatter", [x], scatter_dimension=scatter_dimension):
            out = np.empty(x.shape[1:], x.dtype)
            self.comm.Reduce_scatter_block(x, out, op=self.MPI.SUM)
        return out

    def ppermute(self, x, perm):
        x = _contiguous(x)
        with self._collective("ppermute", [x], perm=perm):
            out = np.zeros_like(x)
            reqs = []
            for src, dst in perm:
                if dst == self.rank:
                    reqs.append(self.comm.Irecv(out, source=src, tag=7001))
                if src == self.rank:
                    reqs.append(self.comm.Isend(x, dest=dst, tag=7001))
            self.MPI.Request.Waitall(reqs)
        return out

    def all_to_all(self, x, split_axis, concat_axis):
        x = _contiguous(np.moveaxis(np.asarray(x), split_axis, 0))
        with self._collective("all_to_all", [x], split_axis=split_axis,
                              concat_axis=concat_axis):
            out = np.empty_like(x)
            self.comm.Alltoall(x, out)
        return np.moveaxis(out, 0, concat_axis)


def _contiguous(x):
    """`x` as a C-contiguous ndarray, copied only if it is not one (0-d stays 0-d, which
    `np.ascontiguousarray` would make 1-d)."""
    x = np.asarray(x)
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)
