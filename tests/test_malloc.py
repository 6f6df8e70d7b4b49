"""`import nanofn` keeps freed array memory in the process on glibc (nanofn/_malloc.py):
a megabyte-sized array then comes from the heap, not from a fresh `mmap` whose pages
fault on first write, and threads allocate from that one heap;
`NANOFN_RETAIN_FREED_MEMORY=0` leaves malloc as it was."""

import os
import subprocess
import sys

import pytest

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

