"""Keep freed array memory in the process (glibc's malloc), so new arrays skip page faults.

Every call of a jitted train step returns fresh arrays (the new parameters and optimizer
state: the caller owns them, so they cannot live in the plan's reused buffers), and the
arrays of the step before die at the same time. With glibc's default settings a
megabyte-sized block is handed back to the operating system when it is freed (`munmap`,
or trimming the top of the heap) and the next one is mapped anew, so each of its pages
faults on first write: about 0.3 ms per megabyte on the project's machines, 1.2 ms of a
fused Adam update over a 784x512 weight that takes 0.45 ms in warm memory (about a
tenth of the W1 train step; `docs/performance.md`).

`retain_freed_memory()` raises glibc's two thresholds once per process with `mallopt`:
blocks up to `MMAP_THRESHOLD` come from the heap, and freed memory is returned to the
system only when more than `TRIM_THRESHOLD` of it sits free at the heap's top. A
process's peak memory does not change; after a peak it may keep up to that much freed
memory for its next arrays. This is the allocator tuning JAX and PyTorch get from their
own caching allocators, and it is in the spirit of numpy, which itself changes how its
large arrays are allocated when imported (transparent huge pages).

It also keeps every thread on the one heap (`M_ARENA_MAX` 1). glibc gives each new
thread that allocates its own heap ("arena"), and memory freed in one heap is never reused
by allocations in another. nanofn's background thread builds fused plans (numba and
LLVM allocate there, and the plan's warm-up run allocates its buffers and results) while
the calling thread keeps running and freeing its own arrays: with two heaps both stay
resident, about 6 MB of W1's peak of 172 MB. One heap costs a lock that two threads
allocating at the same moment wait on; nanofn's threads rarely do (numba's parallel loops
do not allocate). Limiting the arenas is the usual way to keep a threaded process's
memory down (glibc documents `M_ARENA_MAX` for that).

`import nanofn` calls it; `NANOFN_RETAIN_FREED_MEMORY=0` in the environment leaves malloc
alone. It does nothing outside Linux with glibc.
"""

from __future__ import annotations

import ctypes
import math
import os

import numpy as np

__all__ = ["allocator", "empty", "retain_freed_memory"]

# Large arrays that nanofn allocates for its kernels start on a cache line (`empty`).
# malloc aligns to 16 bytes only, and a loop vectorised 512 bits wide over arrays that
# start off a 64-byte boundary splits every load and store across two cache lines: GELU's
# kernel over 1M float32 took 0.59 ms aligned, 0.61-0.63 ms 16, 32 or 48 bytes off, its
# gradient 0.73-0.77 against 0.77-0.84 ms (docs/performance.md).
ALIGN = 64
ALIGN_MIN_BYTES = 1 << 20  # below this, plain np.empty: aligning costs about 1 us a call

MMAP_THRESHOLD = 32 << 20  # glibc's own upper bound for its adaptive threshold
TRIM_THRESHOLD = 128 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # from glibc's malloc.h

_done = False


def empty(shape, dtype, order="C"):
    """`np.empty(shape, dtype, order)` whose data starts on a 64-byte boundary when it
    takes at least `ALIGN_MIN_BYTES` (a view of a slightly larger byte buffer).

    Example:
        >>> from nanofn import _malloc
        >>> a = _malloc.empty((512, 512), "float32")
        >>> a.shape, a.dtype.name, a.ctypes.data % 64, a.flags.c_contiguous
        ((512, 512), 'float32', 0, True)
    """
    dtype = np.dtype(dtype)
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < ALIGN_MIN_BYTES:  # the common case, kept quick: kernels' small results
        return np.empty(shape, dtype, order)
    raw = np.empty(nbytes + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape, order=order)


def allocator(nbytes):
    """The allocator for results of `nbytes`, chosen once for a step that makes them
    over and over: `empty` from `ALIGN_MIN_BYTES` on, `np.empty` below (no check per call).

    Example:
        >>> import numpy as np
        >>> from nanofn import _malloc
        >>> _malloc.allocator(16) is np.empty, _malloc.allocator(1 << 20) is _malloc.empty
        (True, True)
    """
    return empty if nbytes >= ALIGN_MIN_BYTES else np.empty


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds and keep one heap (once); True if set.

    Example:
        >>> from nanofn import _malloc
        >>> _malloc.retain_freed_memory() in (True, False)
        True
    """
    global _done
    if _done:
        return True
    if os.environ.get("NANOFN_RETAIN_FREED_MEMORY", "1") == "0":
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, ValueError):  # not glibc, or no such name
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(mallopt(_M_ARENA_MAX, 1))
    return _done
