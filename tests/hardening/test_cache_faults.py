"""Damaged kernel caches: each fault is dropped and rebuilt once, never a crash.

Every case runs in fresh processes with their own empty `NUMBA_CACHE_DIR` and
`NANOFN_CACHE_DIR`: a first process fills the caches, the test damages files, and the
next processes must give the right numbers, warn once (in the process that repairs) and
leave a cache that the process after them loads without a warning.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np

ROOT = str(pathlib.Path(__file__).resolve().parents[2])

# log_softmax runs built-in (hand-written) kernels: for float64 `_nn`'s, for float32
# `_softmax32`'s (which calls helper kernels of its own), each with its cache files. The
# jitted step runs a generated (fused) kernel from its second call on.
_SCRIPT = textwrap.dedent("""
    import json, warnings
    import numpy as np
    warnings.simplefilter("always")
    import nanofn, nanofn.numpy as fnp
    from nanofn import nn, _kernels
    x = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    with warnings.catch_warnings(record=True) as caught:
        a = np.asarray(nn.log_softmax(x.astype(np.float32))).astype(np.float64)
        b = np.asarray(nn.log_softmax(x))
        f = nanofn.jit(lambda v: fnp.maximum(v * 3.0 - 1.0, 0.0) / (1.0 + v * v))
        f(x)
        c = np.asarray(f(x))
    from nanofn.ops import _nn, _softmax32
    built = [k._dispatcher for m in (_nn, _softmax32) for k in vars(m).values()
             if isinstance(k, _kernels.kernel) and k._dispatcher is not None]
    hits = sum(sum(d.stats.cache_hits.values()) for d in built)
    misses = sum(sum(d.stats.cache_misses.values()) for d in built)
    print(json.dumps({"values": [a.tolist(), b.tolist(), c.tolist()],
                      "warnings": [str(w.message) for w in caught],
                      "compiled": _kernels.compile_count + misses,
                      "hits": _kernels.cache_hit_count + hits}))
""")


def _run(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, NANOFN_USE_KERNELS="1",
               NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               NANOFN_CACHE_DIR=str(tmp_path / "nanofn"))
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, f"exit status {out.returncode}: {out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def _expected():
    x = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    lsm = x - np.log(np.exp(x).sum(1, keepdims=True))
    return lsm, lsm, np.maximum(x * 3 - 1, 0) / (1 + x * x)


def _check_values(result):
    for got, want in zip(result["values"], _expected()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _builtin_files(tmp_path, suffix):
    """Cache files of the built-in log_softmax kernels (not of generated kernels)."""
    return sorted(p for p in (tmp_path / "numba").rglob(f"*{suffix}")
                  if "nanofn_kernel_" not in p.name and "log_softmax" in p.name)


def _dropped(result):
    return [w for w in result["warnings"] if "dropped the unusable numba cache file" in w]


def _fill_cache(tmp_path):
    first = _run(tmp_path)
    _check_values(first)
    assert first["warnings"] == [] and first["compiled"] >= 3


def _loads_cleanly(tmp_path):
    """A process after the repair: no warning, nothing compiled, every kernel from disk."""
    again = _run(tmp_path)
    _check_values(again)
    assert again["warnings"] == [] and again["compiled"] == 0 and again["hits"] >= 3


def _repairs_once(tmp_path):
    repaired = _run(tmp_path)
    _check_values(repaired)
    assert _dropped(repaired), repaired["warnings"]
    assert len(repaired["warnings"]) == len(_dropped(repaired))  # nothing else went wrong
    _loads_cleanly(tmp_path)


def test_truncated_builtin_kernel_cache_is_dropped_and_rebuilt(tmp_path):
    # before: UnpicklingError from every later process until the cache was deleted
    _fill_cache(tmp_path)
    files = _builtin_files(tmp_path, ".nbi") + _builtin_files(tmp_path, ".nbc")
    assert len(files) >= 3, files
    for f in files:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    _repairs_once(tmp_path)


def test_swapped_or_corrupted_data_files_are_detected(tmp_path):
    # before: a swapped pair loaded the wrong machine code (a crash or a TypeError)
    _fill_cache(tmp_path)
    data = _builtin_files(tmp_path, ".nbc")
    assert len(data) >= 2, data
    a, b = data[0], data[1]  # two log_softmax kernels' machine code
    blob_a, blob_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(blob_b)
    b.write_bytes(blob_a)
    generated = sorted((tmp_path / "numba").rglob("nanofn_kernel_*.nbc"))
    assert generated
    for f in generated:
        blob = bytearray(f.read_bytes())
        blob[len(blob) // 2] ^= 0xFF  # one flipped byte in the middle of the machine code
        f.write_bytes(bytes(blob))
    _repairs_once(tmp_path)


def test_directory_in_place_of_cache_files_is_repaired(tmp_path):
    # before: IsADirectoryError from the built-in kernel; the fused kernel fell back to
    # numpy with a warning in every process, and the directory stayed
    _fill_cache(tmp_path)
    sources = sorted((tmp_path / "nanofn").glob("nanofn_kernel_*.py"))
    assert sources
    targets = sources + _builtin_files(tmp_path, ".nbi")
    for f in targets:
        f.unlink()
        (f / "junk").mkdir(parents=True)
    repaired = _run(tmp_path)
    _check_values(repaired)
    assert all(f.is_file() for f in targets)  # repaired, not worked around
    assert len(repaired["warnings"]) == len(_dropped(repaired))  # no fallback warning
    _loads_cleanly(tmp_path)
