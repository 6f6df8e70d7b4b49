"""How `scan` runs and differentiates: the step's pullback split into a forward part
(recorded per step as residuals) and a cotangent part, body plans compiled once, and
zero-padded sums rewritten as concatenation. Values are checked against Python loops."""

import threading

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import lax, warmup
from nanofn._config import config
from nanofn._core import ClosedJaxpr
from nanofn.ops import _control
from nanofn.testing import check_grads


def _gru_step(p, h, x):
    k = h.shape[-1]
    xi = x @ p["wi"]
    hh = h @ p["wh"]
    r = 1.0 / (1.0 + fnp.exp(-(xi[:, :k] + hh[:, :k])))
    z = 1.0 / (1.0 + fnp.exp(-(xi[:, k:2 * k] + hh[:, k:2 * k])))
    n = fnp.tanh(xi[:, 2 * k:] + r * hh[:, 2 * k:])
    return (1.0 - z) * n + z * h


def _gru_params(rng, features=3, hidden=4):
    return {"wi": rng.normal(size=(features, 3 * hidden)) * 0.5,
            "wh": rng.normal(size=(hidden, 3 * hidden)) * 0.5}


def _loss_scan(p, xs):
    h0 = fnp.zeros((xs.shape[1], p["wh"].shape[0]), xs.dtype)
    h, hs = lax.scan(lambda h, x: (_gru_step(p, h, x),) * 2, h0, xs)
    return fnp.sum(h * h) + fnp.sum(fnp.sin(hs))


def _loss_loop(p, xs):
    h = fnp.zeros((xs.shape[1], p["wh"].shape[0]), xs.dtype)
    total = 0.0
    for t in range(xs.shape[0]):
        h = _gru_step(p, h, xs[t])
        total = total + fnp.sum(fnp.sin(h))
    return fnp.sum(h * h) + total


def _scans(closed):
    return [e for e in closed.jaxpr.eqns if e.primitive.name == "scan"]


def _count(body, name):
    return sum(e.primitive.name == name for e in body.jaxpr.eqns)


def test_grad_runs_the_forward_pass_once_and_the_pullback_reads_residuals():
    rng = np.random.default_rng(0)
    p, xs = _gru_params(rng), rng.normal(size=(5, 2, 3))
    closed = nanofn.make_jaxpr(nanofn.grad(_loss_scan))(p, xs)
    fwd, bwd = _scans(closed)  # no third scan re-running the forward pass
    assert not fwd.params["reverse"] and bwd.params["reverse"]
    # The forward body computes the two products of a step; the backward body only the
    # three of the pullback (h's cotangent, and the two weights'): none recomputed.
    assert _count(fwd.params["jaxpr"], "dot_general") == 2
    assert _count(bwd.params["jaxpr"], "dot_general") == 3
    # The forward scan's extra outputs are the residuals the backward scan reads.
    assert len(fwd.outvars) > 2
    assert {id(v) for v in fwd.outvars[2:]} <= {id(v) for v in bwd.invars}


@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_gradients_match_the_python_loop(argnums):
    rng = np.random.default_rng(1)
    p, xs = _gru_params(rng), rng.normal(size=(4, 2, 3))
    want = nanofn.grad(_loss_loop, argnums)(p, xs)
    for g in (nanofn.grad(_loss_scan, argnums), nanofn.jit(nanofn.grad(_loss_scan, argnums))):
        for _ in range(2):  # the second jitted call runs fused body plans
            got = g(p, xs)
            for a, b in zip(nanofn.tree.leaves(got), nanofn.tree.leaves(want)):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)


def test_residual_path_second_order_reverse_and_pytree_carries():
    rng = np.random.default_rng(2)

    def f(w, xs):
        def step(c, x):
            a, (b, i) = c
            a2 = fnp.tanh(a * w + x[0]) * b
            return (a2, (b + fnp.sin(x[1] * a), i + 1)), a2 * x[1]
        (a, (b, _)), ys = lax.scan(step, (f64(0.3), (f64(1.1), 0)), xs, reverse=True)
        return a * b + fnp.sum(ys * ys)

    def f64(v):
        return np.float64(v)

    w, xs = f64(0.7), rng.normal(size=(4, 2))
    check_grads(f, (w, xs), order=2, modes=("rev",))
    hess = nanofn.jit(nanofn.grad(nanofn.grad(f)))
    np.testing.assert_allclose(hess(w, xs), nanofn.grad(nanofn.grad(f))(w, xs), rtol=1e-10)


def test_vmap_of_grad_through_the_residual_path():
    rng = np.random.default_rng(3)
    p, xs = _gru_params(rng), rng.normal(size=(3, 4, 2, 3))
    got = nanofn.vmap(nanofn.grad(_loss_scan), in_axes=(None, 0))(p, xs)
    for b in range(3):
        want = nanofn.grad(_loss_loop)(p, xs[b])
        for k in want:
            np.testing.assert_allclose(np.asarray(got[k][b]), np.asarray(want[k]), rtol=1e-10)


def test_body_plan_is_compiled_once_and_fused_from_the_second_call():
    xs = np.linspace(0.0, 1.0, 12).reshape(6, 2)
    f = nanofn.jit(lambda c, xs: lax.scan(lambda c, x: (c * 0.5 + fnp.sin(x) * x, c), c, xs))
    c0 = np.zeros(2)
    with config._override("nanofn_use_kernels", True):
        f(c0, xs)
    (compiled,) = f._cache.values()  # the jaxpr jit traced, holding the scan body it runs
    body = _scans(compiled.closed)[0].params["jaxpr"]
    with config._override("nanofn_use_kernels", True):
        first = body._plan
        out2 = f(c0, xs)  # asks for the fused plan (built in the background thread)
        warmup.wait()
        f(c0, xs)
        second = body._plan
        out3 = f(c0, xs)
        assert body._plan is second  # built once, then reused
    assert first is not second
    assert any(st.kind == "fused" for st in second.steps)
    np.testing.assert_allclose(np.asarray(out2[1]), np.asarray(out3[1]))
    c, ys = c0, []
    for x in xs:
        ys.append(c)
        c = c * 0.5 + np.sin(x) * x
    np.testing.assert_allclose(np.asarray(out3[0]), c, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(out3[1]), np.stack(ys), rtol=1e-12)


@pytest.mark.parametrize("kernels", [False, True])
def test_what_depends_on_the_constants_alone_is_computed_once_per_loop(kernels):
    w = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    xs = np.linspace(0.0, 2.0, 15).reshape(5, 3)
    calls = []

    def loss(w, xs):
        def step(c, x):
            nanofn.debug.callback(lambda: calls.append(1))  # an effect: runs every step
            m = fnp.tanh(w) * 2.0  # the constants alone: hoisted
            c = fnp.sin(x @ m + c[:4].sum()) + c
            return c, c * m[0]
        c, ys = lax.scan(step, fnp.zeros(4, w.dtype), xs)
        return fnp.sum(c) + fnp.sum(ys ** 2)

    f = nanofn.jit(nanofn.value_and_grad(loss, argnums=(0, 1)))
    with config._override("nanofn_use_kernels", kernels):
        for _ in range(3):  # the third call runs the fused plans
            got = f(w, xs)
    (compiled,) = f._cache.values()
    bodies = [e.params["jaxpr"] for e in _scans(compiled.closed)]
    assert any(b._hoisted is not None for b in bodies)
    assert len(calls) == 3 * 5  # once a step, in each call
    ref = nanofn.value_and_grad(loss, argnums=(0, 1))(w, xs)  # eager, nothing hoisted
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12)
    for g, r in zip(got[1], ref[1]):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)
    check_grads(loss, (w, xs), order=1, modes=["rev"])


def test_a_while_loop_hoists_what_depends_on_its_constants_alone():
    w = np.linspace(0.5, 1.5, 4)

    def f(w):
        def body(c):
            i, x = c
            return i + 1, x * fnp.cos(w).sum() + fnp.exp(-w)  # cos and exp: hoisted
        return lax.while_loop(lambda c: c[0] < 5, body, (0, fnp.ones_like(w)))[1]

    jf = nanofn.jit(f)
    for _ in range(3):
        got = jf(w)
    (compiled,) = jf._cache.values()
    (loop,) = [e for e in compiled.closed.jaxpr.eqns if e.primitive.name == "while"]
    assert loop.params["body_jaxpr"]._hoisted is not None
    x = np.ones(4)
    for _ in range(5):
        x = x * np.cos(w).sum() + np.exp(-w)
    np.testing.assert_allclose(got, x, rtol=1e-12)


def test_zero_padded_sums_become_a_concatenation():
    def pieces(x):
        a, b, c = x[:, :2], x[:, 2:3], x[:, 3:]
        return fnp.sum(fnp.sin(a)) + fnp.sum(b * b) + fnp.sum(fnp.exp(c))

    x = np.arange(10.0).reshape(2, 5) / 7
    closed = nanofn.make_jaxpr(nanofn.grad(pieces))(x)
    assert any(e.primitive.name == "pad" for e in closed.jaxpr.eqns)
    merged = _control._merge_padded_sums(closed)
    names = [e.primitive.name for e in merged.jaxpr.eqns]
    assert "concatenate" in names and "pad" not in names
    got = _control._Body(merged.jaxpr, merged.consts).run([x])[0]
    np.testing.assert_allclose(got, np.asarray(nanofn.grad(pieces)(x)), rtol=1e-12)

    # Pieces that leave a gap are not a concatenation: the program is unchanged.
    gap = nanofn.make_jaxpr(nanofn.grad(lambda x: fnp.sum(x[:, :2] ** 2) +
                                        fnp.sum(fnp.sin(x[:, 3:]))))(x)
    assert _control._merge_padded_sums(gap) is gap
    assert isinstance(gap, ClosedJaxpr)


def test_a_loop_body_is_fused_in_the_background_thread_not_the_calling_one(monkeypatch):
    from nanofn import _fusion
    threads = []
    real = _fusion.fuse

    def fuse(closed):
        threads.append(threading.current_thread().name)
        return real(closed)
    monkeypatch.setattr(_fusion, "fuse", fuse)
    xs = np.linspace(0.0, 1.0, 12).reshape(6, 2).astype(np.float32)
    f = nanofn.jit(lambda c, xs: lax.scan(lambda c, x: (c * 0.25 + fnp.tanh(x) * x, c),
                                          c, xs))
    c0 = np.zeros(2, np.float32)
    with config._override("nanofn_use_kernels", True), \
            config._override("nanofn_background_compile", True):
        want = f(c0, xs)
        for _ in range(3):
            f(c0, xs)
        warmup.wait()
        got = f(c0, xs)
    assert threads and set(threads) == {"nanofn-compile"}, threads
    np.testing.assert_allclose(np.asarray(got[0]), np.asarray(want[0]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), rtol=1e-6)
