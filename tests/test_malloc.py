"""`import nanofn` keeps freed array memory in the process on glibc (nanofn/_malloc.py):
a megabyte-sized array then comes from the heap, not from a fresh `mmap` whose pages
fault on first write, and threads allocate from that one heap;
`NANOFN_RETAIN_FREED_MEMORY=0` leaves malloc as it was. Large arrays nanofn allocates for
its kernels start on a 64-byte boundary (`_malloc.empty`)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.warmup
from nanofn import _malloc, profiler

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"),
    reason="nanofn tunes glibc's malloc only: Linux with glibc")

# Counts the blocks malloc holds as separate mmaps while a 4 MB array is alive.
_PROGRAM = """
import ctypes, numpy as np
import nanofn
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                               "usmblks", "fsmblks", "uordblks", "fordblks",
                                               "keepcost")]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Info
before = mallinfo2().hblks
a = np.ones(4 << 20, np.uint8)
print(mallinfo2().hblks - before, nanofn._malloc._done)
"""


def _run(env_value):
    env = dict(os.environ)
    env.pop("NANOFN_RETAIN_FREED_MEMORY", None)
    if env_value is not None:
        env["NANOFN_RETAIN_FREED_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", _PROGRAM], capture_output=True, text=True,
                         env=env, check=True)
    mapped, done = out.stdout.split()
    return int(mapped), done == "True"


def test_arrays_of_megabytes_come_from_the_heap_after_import():
    assert _run(None) == (0, True)


def test_the_environment_variable_leaves_malloc_alone():
    assert _run("0") == (1, False)


# Counts the heaps (arenas) malloc has after a second thread allocated an array.
_THREADS = """
import ctypes, os, tempfile, threading
import numpy as np
import nanofn
def work():
    global kept
    kept = np.ones(1 << 16)  # 512 KB, from the heap of this thread
thread = threading.Thread(target=work)
thread.start()
thread.join()
libc = ctypes.CDLL(None)
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
fd, path = tempfile.mkstemp()
os.close(fd)
f = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, f)
libc.fclose(f)
print(open(path).read().count("<heap nr="))
os.unlink(path)
"""


@pytest.mark.parametrize("env_value, heaps", [(None, 1), ("0", 2)])
def test_threads_allocate_from_one_heap(env_value, heaps):
    env = dict(os.environ)
    env.pop("NANOFN_RETAIN_FREED_MEMORY", None)
    env.pop("MALLOC_ARENA_MAX", None)
    if env_value is not None:
        env["NANOFN_RETAIN_FREED_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", _THREADS], capture_output=True, text=True,
                         env=env, check=True)
    assert int(out.stdout) == heaps


# ------------------------------------------------------------------ cache-line alignment


@given(st.lists(st.integers(0, 300), min_size=0, max_size=3),
       st.sampled_from(["float32", "float64", "int8", "complex128", "bool"]),
       st.sampled_from(["C", "F"]))
def test_empty_gives_the_array_numpy_would_large_ones_on_a_cache_line(dims, dtype, order):
    shape = tuple(dims)
    a = _malloc.empty(shape, dtype, order=order)
    b = np.empty(shape, dtype, order=order)
    assert (a.shape, a.dtype, a.strides) == (b.shape, b.dtype, b.strides)
    assert a.flags.writeable and a.flags.aligned
    if a.nbytes >= _malloc.ALIGN_MIN_BYTES:
        assert a.ctypes.data % _malloc.ALIGN == 0
    a[...] = 1  # all of it is writable memory
    assert (a == 1).all()


def test_plan_buffers_and_fused_results_start_on_a_cache_line():
    f = nanofn.jit(lambda x, w: (nanofn.numpy.tanh(x @ w) * 2.0 + 1.0) @ w.T)
    x, w = np.ones((512, 600), np.float32), np.ones((600, 600), np.float32)
    for _ in range(3):
        f(x, w)
    nanofn.warmup.wait()
    out = f(x, w)
    compiled, _ = profiler._compiled(f, (x, w), {})
    big = [b for b in compiled.plan._new_arena() if b.nbytes >= _malloc.ALIGN_MIN_BYTES]
    assert big and all(b.ctypes.data % _malloc.ALIGN == 0 for b in big)
    assert np.asarray(out).shape == (512, 600)
