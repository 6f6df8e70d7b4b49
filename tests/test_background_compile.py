"""jit compiles a function's kernels in a background thread (nanofn/_background.py).

While the fused plan is being built, calls run the plain plan with numpy only and never
wait for it; the first call after it is ready switches to it, with equal results. The
suite turns background compilation off by default (tests/conftest.py); these tests turn
it on. Also here: the lock order against numba's compiler lock, and `python -m
nanofn.warmup` filling the disk cache.
"""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import _background, _kernels, nn, warmup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def background():
    with nanofn.config._override("nanofn_background_compile", True):
        yield
    assert warmup.wait(60)


def program(x, w):
    h = fnp.maximum(x @ w * 0.5 - 0.25, 0.0) * x[:, :1] + 1.0
    return nn.log_softmax(h) * 2.0 - h / (1.0 + h * h)


def reference(x, w):
    h = np.maximum(x @ w * 0.5 - 0.25, 0.0) * x[:, :1] + 1.0
    z = h - h.max(1, keepdims=True)
    return (z - np.log(np.exp(z).sum(1, keepdims=True))) * 2.0 - h / (1.0 + h * h)


def compiled_of(f):
    (entry,) = f._cache.values()
    return entry


def fused(entry):
    return any(st.kind == "fused" for st in entry.plan.steps)


def args(dtype):
    rng = np.random.default_rng(1)
    return (rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((4, 6)).astype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_calls_run_numpy_while_the_build_is_pending_then_switch_with_equal_results(
        background, monkeypatch, dtype):
    gate = threading.Event()
    real_build = _background.build
    intervals, before = [], sys.getswitchinterval()

    def held_build(closed, values=None):
        intervals.append(sys.getswitchinterval())
        assert gate.wait(60), "the test never released the build"
        return real_build(closed, values)

    monkeypatch.setattr(_background, "build", held_build)
    release = threading.Timer(60, gate.set)  # never hang the suite, whatever happens
    release.daemon = True
    release.start()
    x, w = args(dtype)
    f = nanofn.jit(program)
    try:
        results = [np.asarray(f(x, w)) for _ in range(4)]  # the build cannot finish meanwhile
        entry = compiled_of(f)
        assert not gate.is_set(), "a call waited for the background build"
        assert entry.pending and entry.job is not None and not fused(entry)
    finally:
        gate.set()
    assert warmup.wait(60)
    results.append(np.asarray(f(x, w)))
    assert fused(entry) and not entry.pending  # switched to the fused plan
    # the GIL changed hands more often during the build, and as before after it
    assert intervals == [_background.SWITCH_INTERVAL] and sys.getswitchinterval() == before
    results.append(np.asarray(f(x, w)))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    for r in results:
        assert r.dtype == np.dtype(dtype)
        np.testing.assert_allclose(r, reference(x.astype(float), w.astype(float)), **tol)
    np.testing.assert_allclose(results[-1], results[0], **tol)


def test_pending_calls_never_use_kernels(background, monkeypatch):
    gate = threading.Event()
    real_build = _background.build
    seen = []

    def held_build(closed, values=None):
        gate.wait(60)
        return real_build(closed, values)

    from nanofn.ops import _softmax32  # float32 log_softmax's kernel
    real_kernel = _softmax32._log_softmax_kernel

    def spy(*a):
        seen.append(threading.current_thread().name)
        return real_kernel(*a)

    monkeypatch.setattr(_background, "build", held_build)
    monkeypatch.setattr(_softmax32, "_log_softmax_kernel", spy)
    x, w = args("float32")
    f = nanofn.jit(program)
    try:
        for _ in range(3):
            f(x, w)
        assert seen == []  # numpy only until the fused plan is ready
    finally:
        gate.set()
    assert warmup.wait(60)
    assert "nanofn-compile" in seen  # the dry run compiled it in the background
    seen.clear()
    f(x, w)
    assert seen == [threading.current_thread().name]  # the fused plan runs the kernel


def test_concurrent_callers_get_equal_results_and_one_fused_plan(background):
    x, w = args("float64")
    f = nanofn.jit(program)
    outs, errors = [], []

    def call():
        try:
            for _ in range(3):
                outs.append(np.asarray(f(x, w)))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(outs) == 12
    assert warmup.wait(60)
    outs.append(np.asarray(f(x, w)))
    assert fused(compiled_of(f))
    for out in outs:
        np.testing.assert_allclose(out, reference(x, w), rtol=1e-12, atol=1e-12)


def test_a_failed_build_warns_once_and_keeps_the_plain_plan(background, monkeypatch):
    def broken(closed, values=None):
        raise RuntimeError("no compiler today")

    monkeypatch.setattr(_background, "build", broken)
    x, w = args("float64")
    f = nanofn.jit(program)
    f(x, w)
    f(x, w)
    assert warmup.wait(60)
    with pytest.warns(RuntimeWarning, match="no compiler today"):
        out = f(x, w)
    np.testing.assert_allclose(np.asarray(out), reference(x, w), rtol=1e-12)
    assert not fused(compiled_of(f)) and compiled_of(f).job is None


def test_with_background_compilation_off_the_second_call_builds_the_fused_plan():
    with nanofn.config._override("nanofn_background_compile", False):
        x, w = args("float64")
        f = nanofn.jit(program)
        f(x, w)
        entry = compiled_of(f)
        assert not fused(entry)
        out = f(x, w)
        assert fused(entry) and entry.job is None
    np.testing.assert_allclose(np.asarray(out), reference(x, w), rtol=1e-12)


def test_nanofn_locks_are_taken_after_numba_compiler_lock():
    # A thread that needs to compile must wait for numba's lock without holding nanofn's:
    # taking them the other way round deadlocked against a thread compiling a kernel that
    # calls another kernel (numba then asks nanofn for that kernel's dispatcher).
    lock = _kernels.compiler_lock()
    source = "def kernel(n, x0, y0):\n    for i in range(n):\n        y0[i] = x0[i] * 3.0 + %r\n"
    k = _kernels.kernel(lambda x: x)  # a fresh hand-written kernel, dispatcher not made yet
    done = []

    def compile_one():
        _kernels.get_kernel(source % time.time(), "kernel",
                            (("int64", "scalar"), ("float64", "in"), ("float64", "out")))
        k.dispatcher()
        done.append(True)

    with lock:
        t = threading.Thread(target=compile_one, daemon=True)
        t.start()
        time.sleep(0.3)  # let it reach numba's lock
        assert not done
        assert _kernels._lock.acquire(timeout=10), "a thread holds nanofn's lock while " \
            "waiting for numba's"
        _kernels._lock.release()
    t.join(120)
    assert done == [True]


# ------------------------------------------------------------------------ processes

_USER_MODULE = textwrap.dedent("""
    import numpy as np
    import nanofn, nanofn.numpy as fnp
    from nanofn import nn

    step = nanofn.jit(lambda x: nn.log_softmax(fnp.maximum(x * 3.0 - 1.0, 0.0) / (1.0 + x * x)))
    X = np.linspace(-2.0, 2.0, 12, dtype=np.float32).reshape(3, 4)

    def warm():
        step(X)
        step(X)
""")

_LOAD_SCRIPT = textwrap.dedent("""
    import json, time
    import numpy as np
    import nanofn
    from nanofn import _kernels, warmup
    from nanofn.ops import _softmax32
    import user_step
    times = []
    for _ in range(3):
        t = time.perf_counter()
        out = np.asarray(user_step.step(user_step.X))
        times.append(time.perf_counter() - t)
    assert warmup.wait(120)
    again = np.asarray(user_step.step(user_step.X))
    stats = _softmax32._log_softmax_kernel.dispatcher().stats
    import sys  # loading from the cache never installed numba's registries
    print(json.dumps([_kernels.compile_count, _kernels.cache_hit_count,
                      sum(stats.cache_misses.values()), sum(stats.cache_hits.values()),
                      float(np.abs(out - again).max()), "numba.np.npyimpl" in sys.modules]))
""")


def _python(argv, env_extra, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, str(cwd)]), **env_extra)
    out = subprocess.run([sys.executable] + argv, capture_output=True, text=True, env=env,
                         cwd=cwd, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_warmup_fills_the_cache_that_a_later_process_loads(tmp_path):
    (tmp_path / "user_step.py").write_text(_USER_MODULE)
    env = {"NANOFN_CACHE_DIR": str(tmp_path / "nanofn"),
           "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "NANOFN_USE_KERNELS": "1"}
    said = _python(["-m", "nanofn.warmup", "--dtype", "float32", "user_step:warm"], env,
                   tmp_path)
    assert "ran user_step.warm()" in said and "loaded from the cache" in said
    index = {p.name.split("-")[0] for p in (tmp_path / "numba").rglob("*.nbi")}
    for name in ("_softmax32._log_softmax_kernel", "_nn._layer_norm_grad_kernel",
                 "_conv_kernels._im2col_kernel", "_fused._adam_kernel",
                 "_shape._scatter_add_kernel"):
        assert any(i.startswith(name) for i in index), (name, sorted(index))
    assert any(i.startswith("nanofn_kernel_") for i in index)  # the user's fused kernel
    # a later process, compiling in the background, finds everything in the cache
    env["NANOFN_BACKGROUND_COMPILE"] = "1"
    compiled, loaded, misses, hits, diff, registries = json.loads(
        _python(["-c", _LOAD_SCRIPT], env, tmp_path).splitlines()[-1])
    assert (compiled, misses) == (0, 0) and loaded >= 1 and hits >= 1
    assert not registries  # nanofn._numba_setup.lean_cache_loads
    # numba's runtime module came from its object code in nanofn's cache (start_runtime);
    # a damaged copy is ignored, compiled again and rewritten
    runtime, = (tmp_path / "nanofn").glob("numba_runtime_*.o")
    good = runtime.read_bytes()
    runtime.write_bytes(good[:-40] + b"\0" * 40)
    compiled, _, misses, _, diff, _ = json.loads(
        _python(["-c", _LOAD_SCRIPT], env, tmp_path).splitlines()[-1])
    assert (compiled, misses) == (0, 0) and diff < 1e-5
    from nanofn._numba_setup import _read_runtime
    assert runtime.read_bytes() != good[:-40] + b"\0" * 40
    assert _read_runtime(str(runtime)) is not None
    assert diff < 1e-5  # numpy path before the switch, kernels after: equal results


_DRY_RUN_SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import nanofn, nanofn.numpy as fnp
    from nanofn import _background, _kernels, nn, warmup
    f = nanofn.jit(lambda x: nn.log_softmax(fnp.maximum(x * 2.0 - 1.0, 0.0)))
    x = np.linspace(-3, 3, 40, dtype=np.float32).reshape(4, 10)
    want = f(x)
    f(x)
    assert warmup.wait(300)
    got = f(x)
    print(json.dumps([_background.dry_run_count, _kernels.compile_count,
                      float(np.abs(np.asarray(got) - np.asarray(want)).max())]))
""")


def test_a_plan_whose_kernels_come_from_the_disk_cache_is_not_run_before_its_calls(
        tmp_path):
    # the first process compiles, and runs the fused plan once in the background so that
    # log_softmax's hand-written kernel compiles there too; the second finds the fused
    # kernel on disk, skips that run (its memory), and its first call loads the kernel
    env = {"NANOFN_CACHE_DIR": str(tmp_path / "nanofn"),
           "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "NANOFN_USE_KERNELS": "1",
           "NANOFN_BACKGROUND_COMPILE": "1"}
    dry_runs, compiled, diff = json.loads(_python(["-c", _DRY_RUN_SCRIPT], env, tmp_path))
    assert dry_runs == 1 and compiled >= 1 and diff < 1e-6
    dry_runs, compiled, diff = json.loads(_python(["-c", _DRY_RUN_SCRIPT], env, tmp_path))
    assert (dry_runs, compiled) == (0, 0) and diff < 1e-6


_LEAN_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import nanofn, nanofn.numpy as fnp
    from nanofn import warmup
    f = nanofn.jit(lambda x: fnp.maximum(x * 2.0 - 1.0, 0.0) * x)
    x = np.arange(6.0)
    f(x); f(x)
    assert warmup.wait(300)
    lean = "scipy.linalg" in sys.modules
    import numba  # numba's own linear algebra still finds scipy.linalg when it needs it
    dot = numba.njit(lambda a, b: np.dot(a, b))(np.ones((2, 3)), np.ones((3, 2)))
    print(json.dumps([lean, "scipy.linalg" in sys.modules, dot.tolist()]))
    g = nanofn.jit(lambda x: fnp.sqrt(x * 2.0 + 1.0) * x)
    g(x); g(x)  # its kernel compiles in the background while the process exits
""")


def test_numba_starts_without_scipy_linalg_and_a_process_may_exit_while_compiling(
        tmp_path):
    import scipy  # noqa: F401  the [test] extra installs scipy
    env = {"NANOFN_CACHE_DIR": str(tmp_path / "nanofn"), "NANOFN_USE_KERNELS": "1",
           "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "NANOFN_BACKGROUND_COMPILE": "1"}
    lean, later, dot = json.loads(_python(["-c", _LEAN_SCRIPT], env, tmp_path).splitlines()[-1])
    assert (lean, later) == (False, True)
    assert dot == [[3.0, 3.0], [3.0, 3.0]]


def test_runtime_file_round_trip_and_damage_detection(tmp_path):
    from nanofn import _numba_setup as setup
    path = str(tmp_path / "numba_runtime_test.o")
    assert setup._read_runtime(path) is None  # missing
    blobs = (b"object code \x00\x01", b"bitcode")
    setup._write_runtime(path, blobs)
    assert setup._read_runtime(path) == blobs
    data = (tmp_path / "numba_runtime_test.o").read_bytes()
    for bad in (data[:-1], data[:-1] + b"x", b"other" + data[5:], b""):
        (tmp_path / "numba_runtime_test.o").write_bytes(bad)
        assert setup._read_runtime(path) is None
    assert not list(tmp_path.glob("*.tmp"))  # the write left no temporary file


_KERNEL_THEN_UFUNC = textwrap.dedent("""
    import json, sys
    import numpy as np
    import nanofn, nanofn.numpy as fnp, nanofn.scipy.special as sp, nanofn.warmup
    f = nanofn.jit(lambda x: fnp.maximum(x * 2.0 - 1.0, 0.0) * x)
    x = np.linspace(-1.0, 1.0, 12, dtype=np.float32)
    f(x); f(x)
    assert nanofn.warmup.wait(300)
    # numba's ufunc builder lowers a wrapper around the cached erf_inv: that needs the
    # registries, which nanofn's own kernels were loaded without
    y = np.asarray(sp.erfinv(np.float32(0.5) * x))
    print(json.dumps([float(np.abs(np.asarray(f(x)) - np.maximum(2 * x - 1, 0) * x).max()),
                      float(np.abs(np.asarray(sp.erf(y)) - 0.5 * x).max())]))
""")


def test_kernels_loaded_lean_then_a_numba_ufunc_from_the_cache(tmp_path):
    env = {"NANOFN_CACHE_DIR": str(tmp_path / "nanofn"), "NANOFN_USE_KERNELS": "1",
           "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "NANOFN_BACKGROUND_COMPILE": "1"}
    for _ in range(2):  # the second process loads everything from the first's cache
        kernel_err, ufunc_err = json.loads(
            _python(["-c", _KERNEL_THEN_UFUNC], env, tmp_path).splitlines()[-1])
        assert kernel_err < 1e-6 and ufunc_err < 1e-5
