"""Device groups: who performs a collective over a pmap axis.

A pmap axis's frame (`nanofn/_named_axes.py`) holds a group; the collectives' `impl`s call
its methods on numpy buffers. `LocalGroup` is the one device of a process that was not
started as part of an MPI job. `MPIGroup` makes each MPI process one device and calls
mpi4py's buffer methods (the upper-case ones: `Allreduce`, `Allgather`, `Sendrecv`, ...),
which hand numpy memory straight to MPI: no pickling, and no copies beyond a contiguous
send buffer where the operand is not contiguous and one bucket for a psum of many leaves.
Large reductions run as a ring of point-to-point messages (`_Ring`), small ones and
gathers as MPI's own collectives.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
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
# ALONE_BYTES are packed into buckets of up to BUCKET_BYTES; a larger leaf goes alone, its
# result written straight into a new buffer. Packing a large leaf is a copy the ring does
# not need: for W1's gradients (784x512, 512x512 and small leaves, 2.7 MB) over 2
# processes, 760 us packed into one bucket, 580 us with the two matrices alone.
BUCKET_BYTES = 4 << 20
ALONE_BYTES = 256 << 10

# Reductions of RING_MIN_BYTES or more go round a ring (`_Ring`) instead of through MPI's
# collective. With MPICH over shared memory, 2 processes, one core each, float32, the
# mean of 200 calls (20 at 64 MB):
#
#     bytes       Allreduce   ring    Reduce_scatter_block  ring
#     64 KB           22 us    22 us          15 us           9 us
#     1 MB           298 us   176 us         120 us          55 us
#     64 MB           38 ms    13 ms           27 ms         7.7 ms
#
# MPI's own collectives stay for small messages, where their latency is lower, and for
# gathers, which move the same bytes either way (a ring took 300-330 us to gather W1's
# two weight matrices, MPI's Allgather 275-330).
RING_MIN_BYTES = 64 << 10


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


class _Ring:
    """Reduce-scatter and all-gather as a ring of point-to-point messages.

    Each process sends to its right-hand neighbour and receives from its left-hand one.
    To reduce n chunks, every process passes one chunk on n-1 times, each time combining
    what arrived with its own piece of that chunk (a numpy ufunc, vectorised); at the end
    process r holds chunk r reduced over every process. To gather, the finished chunks go
    round once more. Each chunk is reduced by a fixed sequence of processes, so every
    process ends up with the same bits, run after run. A process sends and receives
    (n-1)/n of the data per phase, the least any algorithm moves.

    Messages are raw bytes (any dtype the ufunc takes), on the group's own communicator
    with a tag of their own, in the order every process calls the collectives.
    """

    TAG = 7002

    def __init__(self, comm, rank, size):
        self.comm, self.rank, self.size = comm, rank, size
        self.right, self.left = (rank + 1) % size, (rank - 1) % size

    def _pass(self, send, recv):
        self.comm.Sendrecv(_raw(send), self.right, self.TAG, _raw(recv), self.left, self.TAG)

    def reduce_scatter(self, chunks, keep, ufunc):
        """Reduce this process's `chunks` (one per process) with every other process's.

        `keep(c, step)` is the buffer that receives the partial result of chunk c at
        `step` and then holds it combined with `chunks[c]`; the buffer of the last step
        (n - 2) holds chunk `rank`, reduced, which is returned. A step's buffer must not
        be the one of the step before (it is being sent meanwhile)."""
        n, r = self.size, self.rank
        held = None
        for step in range(n - 1):
            sent, got = (r - step - 1) % n, (r - step - 2) % n
            acc = keep(got, step)
            self._pass(chunks[sent] if held is None else held, acc)
            ufunc(acc, chunks[got], out=acc)  # the running partial first: one fixed order
            held = acc
        return held

    def all_gather(self, chunks):
        """Fill every process's `chunks` (one per process) from `chunks[rank]` of each."""
        n, r = self.size, self.rank
        for step in range(n - 1):
            self._pass(chunks[(r - step) % n], chunks[(r - step - 1) % n])

    def allreduce(self, x, out, ufunc):
        """`out` (a new buffer, the shape of `x`) = `x` reduced over every process."""
        flat, res = x.reshape(-1), out.reshape(-1)
        bounds = [k * flat.size // self.size for k in range(self.size + 1)]
        parts = [slice(a, b) for a, b in itertools.pairwise(bounds)]
        mine, outs = [flat[p] for p in parts], [res[p] for p in parts]
        self.reduce_scatter(mine, lambda c, step: outs[c], ufunc)
        self.all_gather(outs)
        return out


def _raw(a):
    """The bytes of the C-contiguous array `a` as a 1-d uint8 array (no copy)."""
    return a.reshape(-1).view(np.uint8)


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
        self._ufuncs = {"psum": np.add, "pmax": np.maximum, "pmin": np.minimum}
        self._ring = _Ring(comm, self.rank, self.size) if self.size > 1 else None
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
    def _rings(self, x, op) -> bool:
        """Whether reducing `x` with `op` goes round the ring: large enough, and of a
        dtype whose reduction numpy and MPI agree on (sums of complex numbers too; MPI
        has no max or min of them)."""
        kinds = "iufc" if op == "psum" else "iuf"
        return (self._ring is not None and x.nbytes >= RING_MIN_BYTES
                and x.dtype.kind in kinds)

    def allreduce(self, xs, op):
        xs = [_contiguous(x) for x in xs]
        with self._collective(op, xs):
            return self._allreduce(xs, op)

    def _allreduce(self, xs, op):
        outs = [None] * len(xs)
        by_dtype: dict = {}
        for i, x in enumerate(xs):
            if x.nbytes >= ALONE_BYTES or len(xs) == 1:
                outs[i] = self._reduce(x, self._pool.empty(x.shape, x.dtype), op)
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
                packed = np.concatenate([xs[i].ravel() for i in part]) if len(part) > 1 \
                    else xs[part[0]].ravel()
                buf = self._reduce(packed, np.empty_like(packed), op)
                offset = 0
                for i in part:
                    outs[i] = buf[offset:offset + xs[i].size].reshape(xs[i].shape)
                    offset += xs[i].size
                start = stop
        return outs

    def _reduce(self, x, out, op):
        """`out` = `x` reduced over the processes, round the ring or by MPI."""
        if x.dtype == np.bool_:  # MPI has no maximum or minimum of C booleans: as bytes
            self._reduce(x.view(np.uint8), out.view(np.uint8), op)
            return out
        if self._rings(x, op):
            return self._ring.allreduce(x, out, self._ufuncs[op])
        self.comm.Allreduce(x, out, op=self._ops[op])
        return out

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
            if self._rings(x, "psum"):
                # partial sums alternate between two buffers, the last step's being `out`
                bufs = out.reshape(-1), np.empty(out.size, out.dtype)
                last = self.size - 2
                self._ring.reduce_scatter(list(x.reshape(self.size, -1)),
                                          lambda c, step: bufs[(last - step) % 2], np.add)
            else:
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
