"""Fused elementwise loops of `_kernels.PARALLEL_MIN` elements or more, and the row-wise
nn kernels, have a `prange` build that numba runs on its threads: its results equal the
serial build's bit for bit, it is switched by `nanofn_parallel_kernels` at call time, no
call waits for it to compile, and it is never used where it would be unsafe (numba's
"workqueue" layer, one thread, a forked child)."""

import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nanofn
import nanofn.numpy as fnp
import nanofn.warmup
from nanofn import _fusion, _jit, _kernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = _kernels.PARALLEL_MIN


@pytest.fixture(autouse=True)
def two_threads(monkeypatch):
    """Build parallel variants whatever this machine's thread count (with one numba
    thread they still run, on that one thread), with kernels on."""
    monkeypatch.setattr(_kernels.parallel, "threads", 2)
    monkeypatch.setattr(_kernels.parallel, "ok", True)
    with nanofn.config._override("nanofn_use_kernels", True):
        yield


def chain(x, s):
    # arithmetic only: numpy keeps float64 transcendentals of arrays this large unfused
    y = x * s + 1.0
    return (fnp.where(y > 0, y * y * 0.5, -y) / (1.0 + x * x), fnp.maximum(fnp.abs(y), s))


def fused(f, *args):
    """f's jaxpr fused into one kernel, run as `jit` runs it; and that kernel's program."""
    closed = _fusion.fuse(_jit.simplify(nanofn.make_jaxpr(f)(*args)))
    (eqn,) = [e for e in closed.eqns if e.primitive.name == "fused_elementwise"]
    return _jit.Plan(closed), eqn.params["program"]


def run(plan, args, on):
    """The plan's results with the parallel kernels on or off. The first call asks for the
    parallel builds (compiled in the background, the serial kernels running meanwhile):
    wait for them, then call again."""
    with nanofn.config._override("nanofn_parallel_kernels", on):
        plan(list(args))
        nanofn.warmup.wait()
        return [np.asarray(o) for o in plan(list(args))]


def runners(program):
    return list(program._into.values())


@settings(max_examples=8, deadline=None)
@given(shape=st.sampled_from([(N,), (N + 7,), (257, 300), (3, 150, 151)]),
       dtype=st.sampled_from(["float32", "float64"]), scalar_s=st.booleans(),
       fortran=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_parallel_loop_equals_serial_loop_bit_for_bit(shape, dtype, scalar_s, fortran, seed):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=shape) * 3).astype(dtype)
    x.reshape(-1)[rng.integers(0, x.size, 4)] = [np.inf, -np.inf, np.nan, 0.0]
    if fortran and x.ndim > 1:
        x = np.asfortranarray(x)
    s = rng.normal(size=() if scalar_s else shape).astype(dtype)
    plan, program = fused(chain, x, s)
    with np.errstate(all="ignore"):
        serial, parallel = run(plan, (x, s), False), run(plan, (x, s), True)
        ref = [np.asarray(r) for r in chain(x, s)]  # eager: one numpy call per primitive
    (runner,) = runners(program)  # the parallel kernel was built, and ran
    assert runner.__globals__["_kp"] is program._parallel is not program._serial
    for a, b, r in zip(serial, parallel, ref):
        assert a.shape == b.shape == r.shape and a.dtype == b.dtype == r.dtype
        np.testing.assert_array_equal(b, a)
        np.testing.assert_array_equal(b, r)  # IEEE arithmetic: exact in both


def test_parallel_loop_over_rows_of_a_bias_equals_serial_loop():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 257)).astype(np.float32)
    b = rng.normal(size=257).astype(np.float32)
    plan, program = fused(lambda x, b: (fnp.maximum(x + b, 0.0) * b,), x, b)
    assert program.cols == 257
    serial, parallel = run(plan, (x, b), False), run(plan, (x, b), True)
    assert [r.__globals__["_kp"] is not None for r in runners(program)] == [True]
    np.testing.assert_array_equal(parallel[0], serial[0])
    np.testing.assert_array_equal(parallel[0], np.maximum(x + b, 0) * b)


def test_small_loops_have_no_parallel_variant():
    x = np.ones(N - 1, np.float32)
    plan, program = fused(chain, x, x)
    run(plan, (x, x), True)
    assert [r.__globals__["_kp"] for r in runners(program)] == [None]


def test_the_flag_switches_kernels_at_call_time():
    x = np.linspace(-3, 3, N, dtype=np.float32)
    plan, program = fused(chain, x, x)
    first = run(plan, (x, x), True)
    (runner,) = runners(program)
    calls = []
    kp = runner.__globals__["_kp"]
    runner.__globals__["_kp"] = lambda *a: calls.append(1) or kp(*a)
    try:
        on = run(plan, (x, x), True)
        off = run(plan, (x, x), False)
    finally:
        runner.__globals__["_kp"] = kp
    assert calls == [1, 1]  # both calls of `run` with the flag on, none with it off
    for a, b in zip(first, on):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(on, off):
        np.testing.assert_array_equal(a, b)


_THREADS_SCRIPT = textwrap.dedent("""
    import json, numpy as np, nanofn, nanofn.numpy as fnp, nanofn.warmup
    from nanofn import _kernels
    f = nanofn.jit(lambda x: fnp.tanh(x * 2.0 + 1.0) * x)
    x = np.linspace(-2, 2, _kernels.PARALLEL_MIN, dtype=np.float32)
    for _ in range(3):
        y = f(x)
    nanofn.warmup.wait()
    y = f(x)
    print(json.dumps([_kernels.parallel_threads(),
                      bool(np.allclose(y, np.tanh(x * 2 + 1) * x, atol=1e-6))]))
""")


def _python(code, env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT, **env}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()


@pytest.mark.parametrize("env", [{"NUMBA_THREADING_LAYER": "workqueue"},
                                 {"NUMBA_NUM_THREADS": "1"},
                                 {"NANOFN_PARALLEL_KERNELS": "0"}])
def test_no_parallel_kernels_where_they_are_unsafe_or_pointless(env, tmp_path):
    env = {"NANOFN_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "NUMBA_NUM_THREADS": "2", "NANOFN_USE_KERNELS": "1", **env}
    threads, right = json.loads(_python(_THREADS_SCRIPT, env)[-1])
    assert (threads, right) == (1, True)


def test_a_later_process_loads_the_parallel_build_from_the_cache(tmp_path):
    # the second process finds the parallel build in the disk cache and loads it without
    # numba's registries (nanofn._numba_setup.lean_cache_loads): it must still run right
    env = {"NANOFN_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "NUMBA_NUM_THREADS": "2", "NANOFN_USE_KERNELS": "1"}
    script = _THREADS_SCRIPT + textwrap.dedent("""
        import sys
        print(json.dumps([_kernels.compile_count, _kernels.cache_hit_count,
                          "numba.np.npyimpl" in sys.modules]))
    """)
    runs = [[json.loads(line) for line in _python(script, env)[-2:]] for _ in range(2)]
    if runs[0][0][0] == 1:
        pytest.skip("numba has no OpenMP or TBB threading layer here")
    assert [r[0] for r in runs] == [[2, True], [2, True]]
    compiled, loaded, registries = runs[1][1]  # the serial and the parallel build, loaded
    assert compiled == 0 and loaded >= 2 and not registries


_POLICY_SCRIPT = _THREADS_SCRIPT.replace(
    "print(json.dumps([", "import os\nprint(json.dumps([os.environ.get('OMP_WAIT_POLICY'), ")


@pytest.mark.parametrize("policy", [None, "ACTIVE"])
def test_openmp_threads_wait_passively_unless_the_user_says(policy, tmp_path):
    # numba's OpenMP layer is loaded with OMP_WAIT_POLICY=PASSIVE (spinning threads took
    # the cores BLAS's threads waited for), and the environment is left as it was
    env = {"NANOFN_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "NUMBA_NUM_THREADS": "2", "NANOFN_USE_KERNELS": "1"}
    outer = {k: v for k, v in os.environ.items()
             if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", _POLICY_SCRIPT], capture_output=True,
                         text=True, env={**outer, "PYTHONPATH": ROOT, **env}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    seen, threads, right = json.loads(out.stdout.strip().splitlines()[-1])
    assert (seen, right) == (policy, True) and threads in (1, 2)


_PRELOADED_SCRIPT = textwrap.dedent("""
    import ctypes, json, os
    try:  # as PyTorch does when imported first: its own libgomp.so.1, default policy
        ctypes.CDLL("libgomp.so.1")
        loaded = True
    except OSError:
        loaded = False
    from nanofn import _kernels
    print(json.dumps([loaded, _kernels.parallel_threads()]))
""")


@pytest.mark.parametrize("policy, threads", [(None, 1), ("PASSIVE", 2)])
def test_no_parallel_kernels_beside_an_openmp_that_spins(policy, threads, tmp_path):
    outer = {k: v for k, v in os.environ.items()
             if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env = {**outer, "PYTHONPATH": ROOT, "NUMBA_NUM_THREADS": "2",
           "NANOFN_CACHE_DIR": str(tmp_path), "NUMBA_THREADING_LAYER": "omp"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", _PRELOADED_SCRIPT], capture_output=True,
                         text=True, env=env, timeout=300)
    if out.returncode != 0 and "OpenMP" in out.stderr + out.stdout:
        pytest.skip("numba has no OpenMP threading layer here")
    assert out.returncode == 0, out.stderr[-3000:]
    loaded, got = json.loads(out.stdout.strip().splitlines()[-1])
    if not loaded:
        pytest.skip("no GNU OpenMP library to load here")
    assert got == threads


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_runs_serial_kernels(tmp_path):
    # GNU OpenMP's threads do not survive fork: a child that launched a parallel loop
    # would be stopped by numba. The child must run the serial loop and get the same.
    code = _THREADS_SCRIPT.replace("import json,", "import os, json,") + textwrap.dedent("""
        pid = os.fork()
        if pid == 0:
            z = f(x)
            ok = (not _kernels.parallel.ok and _kernels.parallel_threads() == 1
                  and np.array_equal(np.asarray(z), np.asarray(y)))
            os._exit(0 if ok else 3)
        print(os.waitpid(pid, 0)[1])
    """)
    env = {"NANOFN_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "NUMBA_NUM_THREADS": "2", "NANOFN_USE_KERNELS": "1"}
    lines = _python(code, env)
    if json.loads(lines[0])[0] < 2:
        pytest.skip("numba has no OpenMP or TBB threading layer here: nothing to fork from")
    assert lines[-1] == "0"


# ------------------------------------------------------------------------ nn kernels
# Hand-written kernels marked `@kernel(parallel_arg=...)`: their outer loop is a `prange`
# over rows (or elements) that do not share outputs, so the parallel build equals the
# serial one bit for bit.


def _both(fn):
    """fn() with the parallel builds off, then on (once they are compiled: the first
    call asks for them and runs the serial build)."""
    outs = []
    for on in (False, True):
        with nanofn.config._override("nanofn_parallel_kernels", on):
            fn()
            nanofn.warmup.wait()
            out = fn()
        outs.append([np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])])
    return outs


def _nn_cases(rng):
    from nanofn.ops import _nn
    x = rng.normal(size=(300, 257)).astype(np.float32) * 4
    g = rng.normal(size=x.shape).astype(np.float32)
    ln_x = (5 + rng.normal(size=(4, 600, 40))).astype(np.float32)
    ln_p = rng.normal(size=40).astype(np.float32)
    att = rng.normal(size=(8, 4, 48, 48)).astype(np.float32)
    labels = rng.integers(0, x.shape[1], x.shape[0])
    p = dict(epsilon=1e-5, batch_dims=0)
    return {
        "gelu": lambda: _nn.gelu_p.impl(x),
        "gelu_grad": lambda: _nn.gelu_grad_p.impl(x, g),
        "layer_norm": lambda: _nn.layer_norm_p.impl(ln_x, ln_p, ln_p, **p),
        "log_softmax": lambda: _nn.log_softmax_p.impl(x),
        "log_softmax_grad": lambda: _nn.log_softmax_grad_p.impl(g, _nn.log_softmax_p.impl(x)),
        "softmax": lambda: _nn.softmax_p.impl(x),
        "cross_entropy": lambda: _nn.softmax_cross_entropy_int(x, labels),
        "attention": lambda: [_nn.attention_softmax(att, scale=0.5, causal=c)
                              for c in (False, True)],
    }


def _nn_kernel(name):
    from nanofn.ops import _nn, _softmax32 as s32
    return {"gelu": _nn._gelu_kernel, "gelu_grad": _nn._gelu_grad_kernel,
            "layer_norm": _nn._layer_norm_kernel, "log_softmax": s32._log_softmax_kernel,
            "log_softmax_grad": s32._log_softmax_grad_kernel,
            "softmax": s32.attention_softmax_kernel, "cross_entropy": s32._ce_kernel,
            "attention": s32.attention_softmax_kernel}[name]


@pytest.mark.parametrize("name", ["gelu", "gelu_grad", "layer_norm", "log_softmax",
                                  "log_softmax_grad", "softmax", "cross_entropy", "attention"])
def test_row_parallel_nn_kernels_equal_their_serial_builds(name):
    fn = _nn_cases(np.random.default_rng(0))[name]
    serial, parallel = _both(fn)
    for a, b in zip(serial, parallel):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(b, a)
    k = _nn_kernel(name)  # and the parallel build was made (so it ran)
    assert k.parallel_arg is not None and k.parallel_dispatcher().overloads


def test_turning_parallel_kernels_on_later_reaches_compiled_plans():
    x = np.linspace(-3, 3, N + 5, dtype=np.float32)
    plan, program = fused(chain, x, x)
    off = run(plan, (x, x), False)  # built with them off: no parallel kernel asked for
    assert program._parallel is None
    on = run(plan, (x, x), True)  # asked for at the first call with them on
    (runner,) = runners(program)
    kp = runner.__globals__["_kp"]
    assert kp is program._parallel and kp is not program._serial
    for a, b in zip(off, on):
        np.testing.assert_array_equal(a, b)


def test_a_kernel_numba_cannot_parallelise_runs_its_serial_build(monkeypatch):
    from nanofn.ops import _nn
    k = _nn._gelu_kernel
    x = np.linspace(-3, 3, N, dtype=np.float64).astype(np.float32)[::-1].copy()
    want = np.asarray(_nn.gelu_p.impl(x))
    errors = _kernels.numba().core.errors

    class Refuses:
        overloads: dict = {}

        def compile(self, sig):
            raise errors.UnsupportedError("no parallel loop here")

    monkeypatch.setattr(k, "_parallel", Refuses())
    monkeypatch.setattr(k, "parallel_arg", 0)
    monkeypatch.setattr(k, "_asked", set())
    np.testing.assert_array_equal(np.asarray(_nn.gelu_p.impl(x)), want)  # asks, runs serial
    nanofn.warmup.wait()
    assert k.parallel_arg is None  # not asked again
    np.testing.assert_array_equal(np.asarray(_nn.gelu_p.impl(x)), want)


prange = range  # numba's in `_scaled`'s parallel build


@_kernels.kernel(parallel_arg=0)
def _scaled(x, out):
    for i in prange(x.size):
        out[i] = x[i] * 3.0 + 1.0


def test_a_call_never_waits_for_a_parallel_build(monkeypatch):
    # the build is asked for and compiled in the background; calls meanwhile run serially
    started, release = threading.Event(), threading.Event()
    real = _scaled._build_parallel

    def slow_build(sig):
        started.set()
        release.wait(30)
        real(sig)

    monkeypatch.setattr(_scaled, "_build_parallel", slow_build)
    x = np.linspace(-3, 3, N + 3)
    out = np.empty_like(x)
    with nanofn.config._override("nanofn_background_compile", True):  # the suite's is off
        _scaled(x, out)
    assert started.wait(30)  # the build runs...
    for _ in range(3):  # ...and calls go on with the serial build
        out[:] = 0
        _scaled(x, out)
        np.testing.assert_array_equal(out, x * 3.0 + 1.0)
    sig = tuple(_kernels.numba().typeof(a) for a in (x, out))
    assert sig not in _scaled.parallel_dispatcher().overloads
    release.set()
    nanofn.warmup.wait()
    assert sig in _scaled.parallel_dispatcher().overloads
    out[:] = 0
    _scaled(x, out)  # now the parallel build
    np.testing.assert_array_equal(out, x * 3.0 + 1.0)


def test_warmup_compiles_the_parallel_builds_of_what_ran():
    from nanofn.ops import _nn
    k = _nn._gelu_kernel
    _nn.gelu_p.impl(np.ones(8, np.float32))  # a small call: the serial build only
    assert _kernels.compile_parallel_builds() >= 1
    assert set(k.parallel_dispatcher().signatures) >= set(k.dispatcher().signatures)


def test_eager_reverse_rules_on_threads_equal_their_serial_builds():
    # the one-pass kernels of eager `grad`'s tanh, logistic and div rules
    from nanofn import lax
    from nanofn.ops import _base
    x = np.linspace(-4, 4, N + 11, dtype=np.float32)

    def f(x):
        return fnp.sum(fnp.tanh(x) * 2.0 + lax.logistic(x) / (1.5 + x * x))

    grads = _both(lambda: nanofn.grad(f)(x))
    np.testing.assert_array_equal(grads[1][0], grads[0][0])
    for k in (_base._tanh_vjp_kernel, _base._logistic_vjp_kernel, _base._div_vjp_kernel):
        assert k.parallel_arg is not None and k.parallel_dispatcher().overloads
