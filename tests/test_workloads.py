"""The benchmark programs W1-W5 and W7 (benchmarks/workloads.py) at small sizes: jit and eager
give the same results, numba kernels on and off give the same results, and the
hand-written numpy references of the benchmark compute what the nanofn programs compute."""

import numpy as np
import pytest

import nanofn
from benchmarks import workloads as W
from benchmarks.run import time_rows

# (workload, jit row, eager row)
PAIRS = [("W1", "nanofn jit", "nanofn eager"),
         ("W2", "nanofn jit(grad)", "nanofn eager grad"),
         ("W3", "nanofn jit", "nanofn eager"),
         ("W4", "nanofn jit", "nanofn eager"),
         ("W5", "nanofn jit (scan)", "nanofn eager (loop)"),
         ("W7", "nanofn jit", "nanofn eager")]


def run_small(wid, row, calls=3):
    """Builds a row at the workload's small sizes, calls it `calls` times (jit fuses from
    its second call on) and returns the leaves of its final state or result."""
    fn = W.build(wid, row, small=True)
    out = None
    for _ in range(calls):
        out = fn()
    if hasattr(fn, "box"):  # nanofn train steps: [params, optimizer state...]
        out = fn.box[0]
    elif hasattr(fn, "params"):  # numpy train steps
        out = fn.params
    leaves = [np.asarray(leaf) for leaf in nanofn.tree.leaves(out)]
    if wid == "W7":
        # Attention is invariant to the key projection's bias (softmax over keys ignores a
        # constant per query), so its gradient is rounding noise that Adam normalises to
        # steps of +-lr in any direction: compare the weight matrices only.
        leaves = [leaf for leaf in leaves if leaf.ndim > 1]
    return leaves


def assert_leaves_close(got, want, rtol=1e-4, atol=1e-5):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("wid,jit_row,eager_row", PAIRS)
def test_jit_equals_eager(wid, jit_row, eager_row):
    jitted = run_small(wid, jit_row)
    eager = run_small(wid, eager_row)
    assert all(np.all(np.isfinite(leaf)) for leaf in jitted)
    assert_leaves_close(jitted, eager)


@pytest.mark.parametrize("wid,jit_row,eager_row", PAIRS)
def test_kernels_off_equals_on(wid, jit_row, eager_row):
    on = run_small(wid, jit_row)
    with nanofn.config._override("nanofn_use_kernels", False):
        off_jit = run_small(wid, jit_row)
        off_eager = run_small(wid, eager_row)
    assert_leaves_close(off_jit, on)
    assert_leaves_close(off_eager, on)


@pytest.mark.parametrize("wid,ref_row", [("W1", "numpy"), ("W4", "numpy im2col")])
def test_numpy_reference_computes_the_same_step(wid, ref_row):
    # The benchmark's hand-written numpy train steps (W1: backward + Adam; W4: im2col
    # convolutions, argmax pooling, col2im) must match the nanofn program step for step.
    assert_leaves_close(run_small(wid, ref_row), run_small(wid, "nanofn eager"))


def test_numpy_references_w2_w3():
    x = W.w2_data(16)
    np.testing.assert_allclose(W.w2_fun(x, np), float(W.w2_fun(nanofn.numpy.asarray(x))),
                               rtol=1e-5)
    val, grad = W.build("W3", "numpy", small=True)()
    nval, ngrad = nanofn.value_and_grad(W.w3_fun)(W.w3_data(W.W3.small["n"]))
    np.testing.assert_allclose(val, float(nval), rtol=1e-5)
    np.testing.assert_allclose(grad, np.asarray(ngrad), rtol=1e-4, atol=1e-6)


def test_gru_scan_and_loop_agree_eagerly():
    params, xs, onehot = W.gru_data(**W.W5.small)
    p = nanofn.tree.map(nanofn.numpy.asarray, params)
    g_scan = nanofn.grad(W.gru_loss_scan)(p, xs, onehot)
    g_loop = nanofn.grad(W.gru_loss_loop)(p, xs, onehot)
    assert sorted(g_scan) == sorted(params)
    assert_leaves_close([np.asarray(g_scan[k]) for k in sorted(g_scan)],
                        [np.asarray(g_loop[k]) for k in sorted(g_loop)])
    # every parameter gets a gradient signal
    assert all(np.any(np.asarray(g_scan[k]) != 0) for k in ("w_i", "w_h", "b_i", "w", "b"))


def test_convnet_data_rejects_bad_image_size():
    with pytest.raises(ValueError, match="image=10"):
        W.convnet_data(batch=1, image=10)


def test_time_rows_reports_a_failing_row_and_times_the_rest():
    calls = []

    def bad():
        raise RuntimeError("boom")

    out = time_rows({"ok": lambda: calls.append(1), "bad": bad}, reps=4, warmup=1)
    assert out["bad"] == {"error": "RuntimeError: boom"}
    med, lo, hi = out["ok"]
    assert lo <= med <= hi and len(calls) == 5
