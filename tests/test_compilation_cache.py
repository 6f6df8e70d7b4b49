"""nanofn.experimental.compilation_cache: `set_cache_dir` (and the config flag
`jax_compilation_cache_dir`) move nanofn's kernel cache; `reset_cache` chooses it again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import nanofn
from nanofn import _kernels
from nanofn.experimental.compilation_cache import compilation_cache as cc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import nanofn
    from nanofn import _kernels
    from nanofn.experimental.compilation_cache import compilation_cache as cc

    base = sys.argv[1]
    SOURCE = "def f(x, out):\\n    for i in range(x.size):\\n        out[i] = x[i] * {k}\\n"
    TYPES = (("float64", "in"), ("float64", "out"))
    where = {}

    def build(k):
        source = SOURCE.format(k=k)
        f = _kernels.get_kernel(source, "f", TYPES)
        out = np.empty(3)
        f(np.arange(3.0), out)
        assert out.tolist() == [0.0, k, 2.0 * k]
        name = "nanofn_kernel_" + _kernels.source_key(source) + ".py"
        where[k] = sorted(d for d in os.listdir(base)
                          if os.path.exists(os.path.join(base, d, name)))

    def at(name):
        return os.path.join(base, name)

    if sys.argv[2] == "first":
        build(1)                                       # NANOFN_CACHE_DIR: "default"
        cc.set_cache_dir(at("new"))
        build(2)
        build(1)                                       # built already: stays in memory
        nanofn.config.update("jax_compilation_cache_dir", at("third"))
        build(3)
        assert nanofn.config.jax_compilation_cache_dir == at("third")
        os.environ["NANOFN_CACHE_DIR"] = at("env2")
        cc.set_cache_dir(None)                         # back to the default choice
        build(4)
        os.environ["NANOFN_CACHE_DIR"] = at("env3")
        build(5)                                       # the folder was chosen already
        cc.reset_cache()                               # chosen again: the new variable
        build(6)
        cc.set_cache_dir(at("new"))
        cc.reset_cache()                               # the flag is still set: "new"
        build(7)
    else:                                              # a second process
        cc.set_cache_dir(at("new"))
        build(2)
    print(json.dumps([where, _kernels.compile_count, _kernels.cache_hit_count,
                      sorted(os.listdir(os.path.join(at("new"), "__pycache__")))]))
""")


def _run(tmp_path, step):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               NANOFN_CACHE_DIR=str(tmp_path / "default"))
    env.pop("NUMBA_CACHE_DIR", None)  # numba caches machine code next to the sources
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path), step], env=env,
                         capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_set_cache_dir_moves_where_new_kernels_are_written(tmp_path):
    where, compiled, hits, numba_files = _run(tmp_path, "first")
    assert where == {"1": ["default"], "2": ["new"], "3": ["third"], "4": ["env2"],
                     "5": ["env2"], "6": ["env3"], "7": ["new"]}
    assert compiled == 7 and hits == 0
    assert any(f.endswith(".nbi") for f in numba_files)  # numba's cache beside the sources
    # a second process pointed at the folder loads the kernel instead of compiling it
    where, compiled, hits, _ = _run(tmp_path, "second")
    assert where == {"2": ["new"]} and (compiled, hits) == (0, 1)


def test_the_flag_and_set_cache_dir_agree_in_this_process(tmp_path, monkeypatch):
    monkeypatch.setattr(_kernels, "_cache_dir", _kernels._cache_dir)  # restored afterwards
    try:
        cc.set_cache_dir(tmp_path / "a")
        assert nanofn.config.read("jax_compilation_cache_dir") == str(tmp_path / "a")
        assert _kernels.cache_dir() == str(tmp_path / "a") and (tmp_path / "a").is_dir()
        nanofn.config.update("jax_compilation_cache_dir", str(tmp_path / "b"))
        assert _kernels.cache_dir() == str(tmp_path / "b")
        cc.reset_cache()
        assert _kernels.cache_dir() == str(tmp_path / "b")
        (tmp_path / "file").write_text("")
        with pytest.warns(RuntimeWarning, match="cannot be written"):
            cc.set_cache_dir(tmp_path / "file" / "sub")
        assert _kernels.cache_dir() is None  # kernels compile in memory
        cc.set_cache_dir(None)
        assert _kernels._cache_dir is False  # chosen again when next needed
    finally:
        nanofn.config.update("jax_compilation_cache_dir", None)


def test_the_flag_is_a_real_config_flag():
    from nanofn import _config
    assert "jax_compilation_cache_dir" not in _config._ACCEPTED
    assert nanofn.config.read("jax_compilation_cache_dir") is None


def test_the_module_has_jaxs_public_names():
    assert cc.__all__ == ["set_cache_dir", "reset_cache"]
    from nanofn.experimental import compilation_cache
    assert compilation_cache.compilation_cache is cc
