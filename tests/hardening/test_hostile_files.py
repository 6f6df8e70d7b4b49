"""Hostile checkpoints and IDX files: every declared count and size is bounded by the
file's real size before anything is allocated, so a small file can cost only a little
memory, and each one fails with a ValueError naming the file and the field.

Each load runs in a subprocess with a 1.5 GiB address-space limit, which reports how much
its peak resident memory grew; the files are made here, in the test process.
"""

import gzip
import io
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile

import numpy as np
import pytest

from nanofn import serialization
from nanofn.data import read_idx

ROOT = str(pathlib.Path(__file__).resolve().parents[2])
BOMB_BYTES = 128 << 20  # what the bombs inflate to (the files are about 130 KB)


def _npy_header(shape, descr="<f4"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def _record(leaves, tree=None):
    tree = tree or {"t": "list", "c": [{"t": "array", "i": i} for i in range(leaves)]}
    text = json.dumps({"format": "nanofn.serialization", "version": 1, "leaves": leaves,
                       "tree": tree}).encode()
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.frombuffer(text, np.uint8))
    return buffer.getvalue()


def _zip(path, members, compression=zipfile.ZIP_STORED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(path, "w", compression=compression) as zf:
            for name, data in members:
                if callable(data):  # streamed, so the bomb is never in memory here
                    with zf.open(name, "w", force_zip64=True) as f:
                        data(f)
                else:  # as np.savez stores it
                    zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)
    return str(path)


def _zeros_into(f, n=BOMB_BYTES, header=b""):
    f.write(header)
    chunk = bytes(1 << 20)
    for _ in range(n // len(chunk)):
        f.write(chunk)


def _gzip_bomb(path, header):
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as g:
        _zeros_into(g, header=header)
    return str(path)


def _hostile_files(tmp_path):
    """(name, path, loader, words the error must hold) for each hostile file."""
    tree_record = _record(1, {"t": "array", "i": 0})
    idx_u8 = bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big")
    cases = [
        ("a billion arrays", _zip(tmp_path / "many.npz",
                                  [("__nanofn_tree__.npy", _record(10**9, {"t": "none"}))]),
         "load", ["'leaves'", "1000000000"]),
        ("deflate bomb", _zip(tmp_path / "bomb.npz", [
            ("__nanofn_tree__.npy", tree_record),
            ("a0.npy", lambda f: _zeros_into(f, header=_npy_header((BOMB_BYTES,), "|u1")))],
            compression=zipfile.ZIP_DEFLATED), "load", ["'a0.npy'", "compressed"]),
        ("2**40 elements", _zip(tmp_path / "huge.npz", [
            ("__nanofn_tree__.npy", tree_record),
            ("a0.npy", _npy_header((1 << 40,)) + bytes(8))]),
         "load", ["'a0.npy'", "'shape'", str(1 << 40)]),
        ("65 dimensions", _zip(tmp_path / "deep.npz", [
            ("__nanofn_tree__.npy", tree_record),
            ("a0.npy", _npy_header((1,) * 65) + bytes(4))]),
         "load", ["'a0.npy'", "65 dimensions"]),
        ("duplicate members", _zip(tmp_path / "twice.npz", [
            ("__nanofn_tree__.npy", tree_record),
            ("a0.npy", _npy_header((1,)) + bytes(4)),
            ("a0.npy", _npy_header((2,)) + bytes(8))]),
         "load", ["['a0.npy']", "more than once"]),
        ("IDX gzip bomb", _gzip_bomb(tmp_path / "labels-idx1-ubyte.gz", idx_u8),
         "idx", ["trailing bytes"]),
        ("IDX declaring 2**40 bytes", str(_write(
            tmp_path / "images-idx3-ubyte.gz",
            gzip.compress(bytes([0, 0, 0x08, 2]) + (1 << 20).to_bytes(4, "big") * 2)
        )), "idx", ["(1048576, 1048576)", "inflate"]),
        ("IDX with 65 dimensions", str(_write(
            tmp_path / "deep-idx", bytes([0, 0, 0x08, 65]) + (1).to_bytes(4, "big") * 65 + b"\0"
        )), "idx", ["65 dimensions", "'ndim'"]),
    ]
    return cases


def _write(path, data):
    path.write_bytes(data)
    return path


_LOADER = textwrap.dedent("""
    import json, resource, sys
    limit = 3 << 29  # 1.5 GiB of address space: a runaway allocation fails fast
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from nanofn import serialization
    from nanofn.data import read_idx
    path, loader = sys.argv[1:]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        (serialization.load if loader == "load" else read_idx)(path)
        error = None
    except BaseException as e:
        error = [type(e).__name__, str(e)]
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KiB on Linux
    print(json.dumps([error, grew]))
""")


@pytest.mark.skipif(sys.platform != "linux",
                    reason="bounds memory with Linux's RLIMIT_AS and reads ru_maxrss in KiB")
def test_hostile_files_fail_fast_with_small_memory(tmp_path):
    problems = []  # every case is checked, so one run shows all that fail
    for name, path, loader, words in _hostile_files(tmp_path):
        assert os.path.getsize(path) < 1 << 20  # each file is small
        # a process per file: peak memory (ru_maxrss) only ever grows
        out = subprocess.run([sys.executable, "-c", _LOADER, path, loader],
                             capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT)
        assert out.returncode == 0, out.stderr[-3000:]
        error, grew_kib = json.loads(out.stdout.strip().splitlines()[-1])
        if error is None:
            problems.append(f"{name}: loaded without an error")
        elif error[0] != "ValueError":
            problems.append(f"{name}: {error[0]}: {error[1][:200]}")
        elif repr(path) not in error[1] or not all(w in error[1] for w in words):
            problems.append(f"{name}: the message lacks the file or one of {words}: {error[1]}")
        if grew_kib >= 48 << 10:
            problems.append(f"{name}: peak memory grew by {grew_kib >> 10} MiB")
    assert not problems, "\n".join(problems)


def test_duplicate_members_are_rejected_even_when_consistent(tmp_path):
    # the same member twice with the same content still hides what a reader takes
    serialization.save(tmp_path / "good.npz", {"w": np.arange(3.0)})
    with zipfile.ZipFile(tmp_path / "good.npz") as zf:
        members = [(n, zf.read(n)) for n in zf.namelist()]
    path = _zip(tmp_path / "dup.npz", members + members[-1:])
    with pytest.raises(ValueError, match="more than once"):
        serialization.load(path)


def test_save_writes_through_a_symlink(tmp_path):
    target = tmp_path / "real" / "ckpt.npz"
    target.parent.mkdir()
    link = tmp_path / "latest.npz"
    link.symlink_to(target)  # a dangling link: save creates the target
    serialization.save(link, {"step": 1})
    assert link.is_symlink() and target.is_file()
    serialization.save(link, {"step": 2})
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert serialization.load(target) == {"step": 2}
    assert not [p for p in tmp_path.rglob(".*.tmp")]


def test_stale_temporaries_of_the_same_checkpoint_are_removed(tmp_path):
    path = tmp_path / "ckpt.npz"
    old = time.time() - 3600
    stale = [tmp_path / f".ckpt.npz.{i:012x}.tmp" for i in range(3)]  # as killed saves leave
    for p in stale:
        p.write_bytes(bytes(1000))
        os.utime(p, (old, old))
    recent = tmp_path / ".ckpt.npz.00000000abcd.tmp"  # maybe a save in progress
    recent.write_bytes(b"x")
    other = tmp_path / ".other.npz.0000000000ff.tmp"  # another checkpoint's
    other.write_bytes(b"x")
    os.utime(other, (old, old))
    unrelated = tmp_path / ".ckpt.npz.notours.tmp"
    unrelated.write_bytes(b"x")
    os.utime(unrelated, (old, old))
    busy = tmp_path / ".ckpt.npz.0000000000bb.tmp"  # a live save holds its lock
    busy.write_bytes(b"x")
    os.utime(busy, (old, old))
    fcntl = pytest.importorskip("fcntl", reason="save's lock on a running save is a POSIX file lock")
    with open(busy, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        serialization.save(path, {"w": np.ones(2)})
    assert not any(p.exists() for p in stale)
    assert recent.exists() and other.exists() and unrelated.exists() and busy.exists()
    np.testing.assert_array_equal(serialization.load(path)["w"], np.ones(2))


def test_idx_gzip_is_read_in_bounded_pieces(tmp_path):
    # a good gzipped IDX file still reads, in chunks, with the right values
    data = np.arange(3 * 5 * 7, dtype=">i2").reshape(3, 5, 7)
    raw = bytes([0, 0, 0x0B, 3]) + b"".join(d.to_bytes(4, "big") for d in data.shape)
    path = _write(tmp_path / "x-idx.gz", gzip.compress(raw + data.tobytes()))
    np.testing.assert_array_equal(read_idx(path), data)
