"""Device groups: who performs a collective over a pmap axis.

A pmap axis's frame (`nanofn/_named_axes.py`) holds a group; the collectives' `impl`s call
its methods on numpy buffers. `LocalGroup` is the one device of a process that was not
started as part of an MPI job. `MPIGroup` makes each MPI process one device and calls
mpi4py's buffer methods (the upper-case ones: `Allreduce`, `Allgather`, ...), which hand
numpy memory straight to MPI: no pickling, and no copies beyond a contiguous send buffer
where the operand is not contiguous and one bucket for a psum of many small leaves.
"""

from __future__ import annotations

import hashlib
import math
import sys

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
# ALONE_BYTES are packed into buckets of up to BUCKET_BYTES; a larger leaf goes alone,
# reduced straight from its own memory (packing it would cost a copy that takes longer
# than the latency of one more message over shared memory).
BUCKET_BYTES = 4 << 20
ALONE_BYTES = 256 << 10


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


class MPIGroup:
    """Every process of an MPI communicator as one device.

    With `check=True` every collective first compares a 64-bit digest of its signature
    (operation, shapes, dtypes, parameters) across processes with one small Allgather;
    on a mismatch every process raises `CollectiveMismatchError` naming each rank's call,
    instead of handing MPI buffers that do not match (which corrupts memory or hangs).
    """

    def __init__(self, comm, *, check=True):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.check = check
        self._ops = {"psum": MPI.SUM, "pmax": MPI.MAX, "pmin": MPI.MIN}
        self._digests = np.empty(self.size, np.int64)
        self._pool = _BufferPool()
        self._digest_of: dict = {}

    # -- metadata check ------------------------------------------------------------------
    def _agree(self, what: str, *arrays, **params):
        if not self.check:
            return
        if len(arrays) == 1:
            a = arrays[0]
            key = (what, ((a.shape, a.dtype.char),), tuple(sorted(params.items())))
        else:
            key = (what, tuple((a.shape, a.dtype.char) for a in arrays),
                   tuple(sorted(params.items())))
        digest = self._digest_of.get(key)
        if digest is None:  # hashing costs more than the lookup: once per signature
            digest = np.frombuffer(hashlib.blake2b(self._signature(key).encode(),
                                                   digest_size=8).digest(), np.int64).copy()
            if len(self._digest_of) > 4096:
                self._digest_of.clear()
            self._digest_of[key] = digest
        self.comm.Allgather(digest, self._digests)
        if (self._digests != digest[0]).any():
            sigs = self.comm.allgather(self._signature(key))  # the error path only
            lines = "\n".join(f"  rank {r}: {s}" for r, s in enumerate(sigs))
            raise CollectiveMismatchError(
                f"{what}: the processes called this collective with different shapes, dtypes "
                f"or parameters (every process must pass the same):\n{lines}")

    @staticmethod
    def _signature(key) -> str:
        from nanofn._core import ShapedArray
        what, avals, params = key
        sig = f"{what}({', '.join(ShapedArray(s, d).str_short() for s, d in avals)})"
        if params:
            sig += " with " + ", ".join(f"{k}={v!r}" for k, v in params)
        return sig

    # -- collectives -----------------------------------------------------------------------
    def allreduce(self, xs, op):
        xs = [np.asarray(x) for x in xs]
        self._agree(op, *xs)
        mpi_op = self._ops[op]
        if len(xs) == 1:  # the common case, without the bucketing bookkeeping
            x = np.ascontiguousarray(xs[0])
            out = self._pool.empty(x.shape, x.dtype)
            self.comm.Allreduce(x, out, op=mpi_op)
            return [out]
        outs = [None] * len(xs)
        by_dtype: dict = {}
        for i, x in enumerate(xs):
            if x.nbytes >= ALONE_BYTES or len(xs) == 1:
                out = self._pool.empty(x.shape, x.dtype)
                self.comm.Allreduce(np.ascontiguousarray(x), out, op=mpi_op)
                outs[i] = out
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
        x = np.ascontiguousarray(x)
        self._agree("all_gather", x, axis=axis)
        out = np.empty((self.size,) + x.shape, x.dtype)
        self.comm.Allgather(x, out)
        return np.moveaxis(out, 0, axis)

    def reduce_scatter(self, x, scatter_dimension):
        x = np.ascontiguousarray(np.moveaxis(np.asarray(x), scatter_dimension, 0))
        self._agree("psum_scatter", x, scatter_dimension=scatter_dimension)
        out = np.empty(x.shape[1:], x.dtype)
        self.comm.Reduce_scatter_block(x, out, op=self.MPI.SUM)
        return out

    def ppermute(self, x, perm):
        x = np.ascontiguousarray(x)
        self._agree("ppermute", x, perm=perm)
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
        x = np.ascontiguousarray(np.moveaxis(np.asarray(x), split_axis, 0))
        self._agree("all_to_all", x, split_axis=split_axis, concat_axis=concat_axis)
        out = np.empty_like(x)
        self.comm.Alltoall(x, out)
        return np.moveaxis(out, 0, concat_axis)
