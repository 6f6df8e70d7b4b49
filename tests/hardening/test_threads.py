"""Transformations from several threads at once: each thread has its own trace state.

When the trace stack, `numpy_mode` and the dynamic trace were module globals, these raised
`TracerArrayConversionError`, `UnexpectedTracerError`, `StopIteration` or gave wrong values
in a few percent of calls. Each test runs 4 threads started together on a barrier and
checks every result against the same computation done in plain numpy.
"""

import os
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp

N_THREADS = 4


@pytest.fixture(autouse=True)
def _switch_often():
    """Make the interpreter switch threads every few bytecodes, so that the threads'
    transformations interleave in every test run (the default switches every 5 ms)."""
    prev = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(prev)


def _run_threads(work, rounds):
    """Run `work(thread_index, round)` in 4 threads; return results and errors per thread."""
    barrier = threading.Barrier(N_THREADS)
    results = [[] for _ in range(N_THREADS)]
    errors = []

    def body(t):
        try:
            barrier.wait()
            for r in range(rounds):
                results[t].append(work(t, r))
        except BaseException as err:  # noqa: BLE001 - reported by the test
            errors.append(err)

    threads = [threading.Thread(target=body, args=(t,)) for t in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, f"{len(errors)} thread(s) failed, first: {errors[0]!r}"
    return results


def _loss(w, x):
    h = jnp.tanh(x @ w)
    return jnp.sum(h * h) + 0.5 * jnp.sum(w * w)


def _data(t, r):
    rng = np.random.default_rng(100 * t + r)
    return rng.normal(size=(4, 3)), rng.normal(size=(5, 4))


def _expected_grad(w, x):
    h = np.tanh(x @ w)
    return x.T @ (2 * h * (1 - h * h)) + w


def test_eager_grad_and_vmap_from_threads():
    grad = nanofn.grad(_loss)
    per_row = nanofn.vmap(nanofn.grad(_loss), in_axes=(None, 0))

    def work(t, r):
        w, x = _data(t, r)
        g = grad(w, x)
        rows = per_row(w, x[:, None, :])
        return w, x, np.asarray(g), np.asarray(rows)

    for per_thread in _run_threads(work, rounds=15):
        for w, x, g, rows in per_thread:
            np.testing.assert_allclose(g, _expected_grad(w, x), rtol=1e-10)
            want = np.stack([_expected_grad(w, x[i:i + 1]) for i in range(x.shape[0])])
            np.testing.assert_allclose(rows, want, rtol=1e-10)


def test_one_jitted_function_shared_by_threads():
    step = nanofn.jit(nanofn.value_and_grad(_loss))

    def work(t, r):
        # new shapes on some rounds, so threads trace while others run cached plans
        w, x = _data(t, r)
        x = x[: 2 + (t + r) % 3]
        loss, g = step(w, x)
        return w, x, float(loss), np.asarray(g)

    for per_thread in _run_threads(work, rounds=12):
        for w, x, loss, g in per_thread:
            h = np.tanh(x @ w)
            np.testing.assert_allclose(loss, np.sum(h * h) + 0.5 * np.sum(w * w), rtol=1e-10)
            np.testing.assert_allclose(g, _expected_grad(w, x), rtol=1e-10)


def test_different_functions_traced_in_each_thread():
    def work(t, r):
        w, x = _data(t, r)
        scale = float(t + 1)
        # a fresh function each round: every call traces, in every thread at once
        fn = nanofn.jit(lambda w, x: nanofn.grad(lambda w: scale * _loss(w, x))(w))
        jaxpr = nanofn.make_jaxpr(lambda v: jnp.sin(v) * scale)(x)
        return w, x, scale, np.asarray(fn(w, x)), str(jaxpr)

    for per_thread in _run_threads(work, rounds=6):
        for w, x, scale, g, jaxpr in per_thread:
            np.testing.assert_allclose(g, scale * _expected_grad(w, x), rtol=1e-10)
            assert "sin" in jaxpr and "f64[5,4]" in jaxpr


_COMPILE_SCRIPT = """
import sys, threading
import numpy as np
sys.setswitchinterval(1e-6)
import nanofn, nanofn.numpy as fnp
from nanofn import nn
barrier, errors, results = threading.Barrier(4), [], {}

def body(t):
    try:
        x = np.linspace(-1.0, 1.0, 12).reshape(3, 4) * (t + 1)
        barrier.wait()
        # built-in kernels, compiled (or loaded) by all threads at once
        a = np.asarray(nn.log_softmax(x.astype(np.float32 if t % 2 else np.float64)))
        # a different generated (fused) kernel per thread, compiled from the second call
        f = nanofn.jit(lambda v: fnp.maximum(v * (t + 2.0) - 1.0, 0.0) / (1.0 + v * v * t))
        for _ in range(3):
            b = np.asarray(f(x))
        results[t] = (x, a, b)
    except BaseException as err:
        errors.append(repr(err))

threads = [threading.Thread(target=body, args=(t,)) for t in range(4)]
for th in threads:
    th.start()
for th in threads:
    th.join()
assert not errors, errors
for t, (x, a, b) in results.items():
    lsm = x - np.log(np.exp(x).sum(1, keepdims=True))
    np.testing.assert_allclose(a, lsm, rtol=1e-5, atol=1e-6)
    want = np.maximum(x * (t + 2.0) - 1.0, 0.0) / (1.0 + x * x * t)
    np.testing.assert_allclose(b, want, rtol=1e-12)
print(sorted(results))
"""


def test_kernels_compile_from_threads_at_once(tmp_path):
    # empty caches, so the threads compile built-in and generated kernels concurrently;
    # a lock taken in the wrong order against numba's compiler lock would hang here
    root = str(pathlib.Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=root, NANOFN_USE_KERNELS="1",
               NUMBA_CACHE_DIR=str(tmp_path / "numba"), NANOFN_CACHE_DIR=str(tmp_path / "k"))
    out = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT], capture_output=True,
                         text=True, env=env, cwd=root, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-4:] == ["[0,", "1,", "2,", "3]"]
