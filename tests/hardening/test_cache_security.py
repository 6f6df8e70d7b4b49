"""The default kernel cache directory is private, or not used at all.

numba unpickles the index files in the kernel cache, so a directory another local user
can write is a way to run code in this process. With no cache variable set, nanofn uses
`kernels` in the per-user cache directory from platformdirs, made with mode 0700 and
checked (owner, mode, not a symlink); if the check fails it warns once and keeps kernels
in memory. It never falls back to a shared temporary directory.
"""

import json
import os
import pathlib
import stat
import subprocess
import sys
import tempfile
import textwrap
import warnings

import pytest

from nanofn import _kernels

ROOT = str(pathlib.Path(__file__).resolve().parents[2])
posix_only = pytest.mark.skipif(not hasattr(os, "getuid"),
                                reason="file owners and permission modes exist on POSIX only")


@pytest.fixture
def default_cache(tmp_path, monkeypatch):
    """No cache variable set; the platform's user cache directory is tmp_path/xdg."""
    monkeypatch.delenv("NANOFN_CACHE_DIR", raising=False)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(_kernels, "_cache_dir", False)  # choose again
    yield tmp_path / "xdg" / "nanofn"
    monkeypatch.setattr(_kernels, "_cache_dir", False)


def _temp_entries():
    return {(e.name, e.stat(follow_symlinks=False).st_mtime_ns)
            for e in os.scandir(tempfile.gettempdir()) if e.name.startswith("nanofn-kernels")}


def _choose():
    """The chosen directory and the warnings; also checks that the shared temporary
    directory was neither made nor touched (the old fallback)."""
    before = _temp_entries()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chosen = _kernels.cache_dir()
        assert _kernels.cache_dir() == chosen  # chosen once per process
    assert _temp_entries() == before
    return chosen, [str(w.message) for w in caught]


@pytest.mark.skipif(sys.platform != "linux",
                    reason="checks the XDG cache folder platformdirs chooses on Linux")
def test_default_directory_is_created_private(default_cache):
    chosen, caught = _choose()
    assert chosen == str(default_cache / "kernels")
    assert caught == []
    if hasattr(os, "getuid"):
        for d in (default_cache, default_cache / "kernels"):
            assert stat.S_IMODE(os.lstat(d).st_mode) == 0o700


@posix_only
def test_group_writable_directory_is_refused(default_cache):
    (default_cache / "kernels").mkdir(parents=True)
    os.chmod(default_cache, 0o700)
    os.chmod(default_cache / "kernels", 0o777)
    chosen, caught = _choose()
    assert chosen is None
    assert len(caught) == 1 and "lets group or others write" in caught[0]


@posix_only
def test_symlinked_directory_is_refused(default_cache, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    default_cache.mkdir(parents=True, mode=0o700)
    (default_cache / "kernels").symlink_to(target)
    chosen, caught = _choose()
    assert chosen is None
    assert len(caught) == 1 and "symbolic link" in caught[0]


@posix_only
def test_directory_of_another_user_is_refused(default_cache, monkeypatch):
    (default_cache / "kernels").mkdir(parents=True, mode=0o700)
    me = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: me + 1)  # as if another user made it
    chosen, caught = _choose()
    assert chosen is None
    assert len(caught) == 1 and f"owned by user id {me}" in caught[0]


def test_unwritable_location_falls_back_to_memory_not_to_tmp(default_cache, tmp_path,
                                                            monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setenv("LOCALAPPDATA", str(blocker))  # Windows' equivalent
    chosen, caught = _choose()
    assert chosen is None
    assert len(caught) == 1 and "not using the kernel cache directory" in caught[0]


_SCRIPT = textwrap.dedent("""
    import json, warnings
    import numpy as np
    warnings.simplefilter("always")
    import nanofn, nanofn.numpy as fnp
    from nanofn import _kernels
    x = np.linspace(-2.0, 2.0, 6)
    with warnings.catch_warnings(record=True) as caught:
        f = nanofn.jit(lambda v: fnp.maximum(v * 3.0 - 1.0, 0.0) / (1.0 + v * v))
        f(x)
        y = np.asarray(f(x))
    print(json.dumps({"y": y.tolist(), "dir": _kernels.cache_dir(),
                      "warnings": [str(w.message) for w in caught]}))
""")


@posix_only
def test_kernels_still_run_in_memory_when_the_directory_is_refused(tmp_path):
    xdg = tmp_path / "xdg"
    (xdg / "nanofn" / "kernels").mkdir(parents=True)
    os.chmod(xdg / "nanofn", 0o777)  # someone else could swap the folder inside
    env = {k: v for k, v in os.environ.items()
           if k not in ("NANOFN_CACHE_DIR", "NUMBA_CACHE_DIR")}
    env.update(PYTHONPATH=ROOT, XDG_CACHE_HOME=str(xdg), NANOFN_USE_KERNELS="1")
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    x = [-2.0 + 0.8 * i for i in range(6)]
    want = [max(v * 3 - 1, 0) / (1 + v * v) for v in x]
    assert result["y"] == pytest.approx(want, rel=1e-12)
    assert result["dir"] is None
    assert len(result["warnings"]) == 1 and "group or others" in result["warnings"][0]
    assert os.listdir(xdg / "nanofn" / "kernels") == []  # nothing written there
