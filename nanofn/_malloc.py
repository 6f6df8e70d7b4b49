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

`import nanofn` calls it; `NANOFN_RETAIN_FREED_MEMORY=0` in the environment leaves malloc
alone. It does nothing outside Linux with glibc.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["retain_freed_memory"]

MMAP_THRESHOLD = 32 << 20  # glibc's own upper bound for its adaptive threshold
TRIM_THRESHOLD = 128 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h

_done = False


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (once); True if they are set.

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
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done
