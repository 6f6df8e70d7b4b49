"""`import nanofn` keeps freed array memory in the process on glibc (nanofn/_malloc.py):
a megabyte-sized array then comes from the heap, not from a fresh `mmap` whose pages
fault on first write; `NANOFN_RETAIN_FREED_MEMORY=0` leaves malloc as it was."""

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
