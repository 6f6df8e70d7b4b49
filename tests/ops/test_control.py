"""Tests for nanofn.lax control flow: cond, switch, while_loop, fori_loop, scan, map,
associative_scan. Values are compared with plain Python loops; derivatives with finite
differences (check_grads, float64) and with the same computation unrolled in Python."""

import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import _core as core
from nanofn import lax
from nanofn.testing import check_grads

try:
    from nanofn import vmap
except ImportError:  # not exported yet
    from nanofn._batching import vmap

f64 = np.float64


def np_(x):
    return np.asarray(x)


def _typecheck_all(jaxpr):
    """Typecheck a jaxpr and, recursively, every jaxpr held in its equations' params."""
    core.typecheck_jaxpr(jaxpr)
    for eqn in jaxpr.eqns:
        for v in eqn.params.values():
            for b in (v if isinstance(v, tuple) else (v,)):
                if isinstance(b, core.ClosedJaxpr):
                    _typecheck_all(b.jaxpr)


# ------------------------------------------------------------------------ cond / switch


def test_cond_values_and_operand_forms():
    x = fnp.array([1.0, 2.0])
    assert np.allclose(lax.cond(True, lambda a: a + 1, lambda a: a - 1, x), [2.0, 3.0])
    assert np.allclose(lax.cond(False, lambda a: a + 1, lambda a: a - 1, x), [0.0, 1.0])
    assert np.allclose(lax.cond(fnp.int32(3), lambda a: a * 2, lambda a: a, x), [2.0, 4.0])
    assert np.allclose(lax.cond(0, lambda a: a * 2, lambda a: a, operand=x), [1.0, 2.0])
    # several operands, pytree operands and outputs, no operands at all
    out = lax.cond(True, lambda d, s: {"y": d["a"] * s, "n": s}, lambda d, s: {"y": d["a"], "n": s},
                   {"a": x}, 3.0)
    assert np.allclose(out["y"], [3.0, 6.0]) and float(out["n"]) == 3.0
    assert float(lax.cond(False, lambda: 1.0, lambda: 2.0)) == 2.0


def test_cond_under_jit_traces_once_and_closes_over_values():
    w = fnp.array([10.0, 20.0])

    @nanofn.jit
    def f(p, x):
        return lax.cond(p > 0, lambda a: a * w, lambda a: a - w, x)

    x = fnp.array([1.0, 2.0])
    assert np.allclose(f(1.0, x), [10.0, 40.0])
    assert np.allclose(f(-1.0, x), [-9.0, -18.0])
    assert f.trace_count == 1
    assert "cond" in str(nanofn.make_jaxpr(f)(1.0, x))


def test_switch_values_and_clamping():
    branches = [lambda x: x + 1, lambda x: x * 10, lambda x: -x]
    for i, expected in [(-3, 6), (0, 6), (1, 50), (2, -5), (9, -5)]:
        assert int(lax.switch(i, branches, 5)) == expected
    f = nanofn.jit(lambda i, x: lax.switch(i, branches, x))
    assert [int(f(i, 5)) for i in (-1, 1, 4)] == [6, 50, -5]
    assert f.trace_count == 1
    assert float(lax.switch(0, [lambda x: x * 3.0], 2.0)) == 6.0


# ------------------------------------------------------------------------ while / fori


def test_while_loop_matches_python():
    def py(n, x):
        i, acc = 0, x
        while i < n:
            acc = acc * 1.5 + i
            i += 1
        return acc

    def cf(c):
        return c[0] < c[1]

    def body(c):
        i, n, acc = c
        return i + 1, n, acc * 1.5 + i

    for n in (0, 1, 5):
        out = lax.while_loop(cf, body, (0, n, 2.0))
        assert np.isclose(float(out[2]), py(n, 2.0), rtol=1e-6)
        assert int(out[0]) == n
    jf = nanofn.jit(lambda n, x: lax.while_loop(cf, body, (0, n, x))[2])
    assert np.isclose(float(jf(4, 2.0)), py(4, 2.0), rtol=1e-6)
    assert np.isclose(float(jf(7, 2.0)), py(7, 2.0), rtol=1e-6)
    assert jf.trace_count == 1


def test_while_loop_pytree_carry():
    init = {"x": fnp.ones(3), "k": 0}
    out = lax.while_loop(lambda c: c["k"] < 3, lambda c: {"x": c["x"] * 2, "k": c["k"] + 1}, init)
    assert np.allclose(out["x"], 8.0) and int(out["k"]) == 3


@given(st.integers(-3, 4), st.integers(-3, 6))
def test_fori_loop_static_and_traced_bounds(lo, hi):
    expected = 1.0
    for i in range(lo, hi):
        expected = expected * 0.5 + i
    body = lambda i, v: v * 0.5 + i  # noqa: E731
    assert np.isclose(float(lax.fori_loop(lo, hi, body, 1.0)), expected)
    traced = nanofn.jit(lambda a, b: lax.fori_loop(a, b, body, 1.0))
    assert np.isclose(float(traced(lo, hi)), expected)


def test_fori_loop_static_bounds_is_a_scan_and_dynamic_is_a_while():
    static = nanofn.make_jaxpr(lambda x: lax.fori_loop(0, 3, lambda i, v: v * 2, x))(1.0)
    dynamic = nanofn.make_jaxpr(lambda n, x: lax.fori_loop(0, n, lambda i, v: v * 2, x))(3, 1.0)
    assert "scan" in str(static) and "while" not in str(static)
    assert "while" in str(dynamic)


# ------------------------------------------------------------------------ scan / map


def _py_scan(f, init, xs, reverse=False):
    carry, ys = init, []
    idx = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
    for i in idx:
        carry, y = f(carry, xs[i])
        ys.append(y)
    if reverse:
        ys = ys[::-1]
    return carry, np.stack([np.asarray(y) for y in ys]) if ys else None


@given(st.integers(1, 6), st.booleans(), st.integers(0, 2**31 - 1))
def test_scan_matches_python_loop(length, reverse, seed):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(length, 3))
    init = rng.normal(size=3)

    def step(c, x):
        new = np.tanh(c * 0.9 + x) if isinstance(c, np.ndarray) else fnp.tanh(c * 0.9 + x)
        return new, new.sum() + c[0]

    c, ys = lax.scan(step, fnp.asarray(init), fnp.asarray(xs), reverse=reverse)
    ec, eys = _py_scan(step, init, xs, reverse=reverse)
    assert np.allclose(c, ec) and np.allclose(ys, eys)
    assert np.asarray(c).dtype == np.float64


def test_scan_length_without_xs_and_pytrees():
    c, ys = lax.scan(lambda c, _: (c + 1, c * c), 0, None, length=4)
    assert int(c) == 4 and np_(ys).tolist() == [0, 1, 4, 9]
    init = {"h": fnp.zeros(2), "n": 0}
    xs = (fnp.arange(6.0).reshape(3, 2), {"w": fnp.array([1.0, 2.0, 3.0])})

    def step(carry, x):
        a, d = x
        h = carry["h"] + a * d["w"]
        return {"h": h, "n": carry["n"] + 1}, (h.sum(), {"twice": h * 2})

    carry, (s, extra) = lax.scan(step, init, xs)
    h = np.zeros(2)
    sums, twice = [], []
    for a, w in zip(np.arange(6.0).reshape(3, 2), [1.0, 2.0, 3.0]):
        h = h + a * w
        sums.append(h.sum())
        twice.append(h * 2)
    assert np.allclose(carry["h"], h) and int(carry["n"]) == 3
    assert np.allclose(s, sums) and np.allclose(extra["twice"], twice)
    # zero-length scan returns init and empty ys
    c0, y0 = lax.scan(lambda c, x: (c + x, x), 1.0, fnp.zeros((0,)))
    assert float(c0) == 1.0 and np_(y0).shape == (0,)


def test_scan_under_jit_no_retrace_and_reverse():
    f = nanofn.jit(lambda xs: lax.scan(lambda c, x: (c + x, c), 0.0, xs, reverse=True))
    c, ys = f(fnp.array([1.0, 2.0, 3.0]))
    assert float(c) == 6.0 and np_(ys).tolist() == [5.0, 3.0, 0.0]
    f(fnp.array([4.0, 5.0, 6.0]))
    assert f.trace_count == 1


def test_scan_weakly_typed_init_takes_the_body_dtype():
    xs = fnp.asarray(np.arange(3, dtype=np.float64))
    c, _ = lax.scan(lambda c, x: (c + x, None), 0.0, xs)
    assert np_(c).dtype == np.float64 and float(c) == 3.0
    out = lax.fori_loop(0, 3, lambda i, v: v + fnp.float64(0.5), 0.0)
    assert np_(out).dtype == np.float64


def test_map_and_associative_scan():
    xs = fnp.arange(6.0).reshape(3, 2)
    assert np.allclose(lax.map(lambda r: r @ fnp.array([1.0, 10.0]), xs), [10.0, 32.0, 54.0])
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert np.allclose(lax.associative_scan(lambda x, y: x + y, fnp.asarray(a), axis=1),
                       np.cumsum(a, axis=1))
    assert np.allclose(lax.associative_scan(lambda x, y: x * y, fnp.asarray(a[0]), reverse=True),
                       [6.0, 6.0, 3.0])



@pytest.mark.parametrize("n", range(10))
@pytest.mark.parametrize("reverse", [False, True])
def test_associative_scan_composes_in_order_on_blocks(n, reverse):
    # Affine maps h -> A h + b composed with matrix products: not commutative, so every
    # argument order matters. fn gets blocks that keep the scan axis (batched einsum).
    rng = np.random.default_rng(n)
    mats, vecs = rng.normal(size=(n, 2, 2)), rng.normal(size=(n, 2))
    seen = []

    def compose(early, late):
        (a1, b1), (a2, b2) = early, late
        seen.append(a1.shape)
        return (fnp.einsum("tij,tjk->tik", a2, a1),
                fnp.einsum("tij,tj->ti", a2, b1) + b2)

    got_a, got_b = lax.associative_scan(compose, (fnp.asarray(mats), fnp.asarray(vecs)),
                                        reverse=reverse)
    order = range(n - 1, -1, -1) if reverse else range(n)
    want_a, want_b = np.zeros((n, 2, 2)), np.zeros((n, 2))
    acc_a, acc_b = np.eye(2), np.zeros(2)
    for i in order:
        acc_a, acc_b = mats[i] @ acc_a, mats[i] @ acc_b + vecs[i]
        want_a[i], want_b[i] = acc_a, acc_b
    np.testing.assert_allclose(got_a, want_a, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_b, want_b, rtol=1e-10, atol=1e-12)
    assert all(len(s) == 3 for s in seen)  # the scan axis is kept
    assert len(seen) <= 2 * max(n, 1)       # a tree: fewer than 2n calls, not n scans


def test_associative_scan_is_a_tree_on_other_axes():
    x = np.arange(1.0, 25.0).reshape(2, 3, 4)
    for axis in (0, 1, 2, -1):
        np.testing.assert_allclose(lax.associative_scan(fnp.add, fnp.asarray(x), axis=axis),
                                   np.cumsum(x, axis=axis))
    out = nanofn.jit(lambda v: lax.associative_scan(
        lambda a, b: {"s": a["s"] + b["s"], "m": fnp.maximum(a["m"], b["m"])}, v))(
            {"s": fnp.arange(5), "m": fnp.array([1, 5, 2, 7, 3])})
    assert out["s"].tolist() == [0, 1, 3, 6, 10] and out["m"].tolist() == [1, 5, 5, 7, 7]
    batched = nanofn.vmap(lambda v: lax.associative_scan(fnp.multiply, v), in_axes=1,
                          out_axes=1)(fnp.asarray(x[0]))
    np.testing.assert_allclose(batched, np.cumprod(x[0], axis=0))


def test_associative_scan_tie_derivatives_follow_the_tree():
    # max splits a tie evenly; the odd-even tree groups 4 elements as
    # out3 = max(max(x0, x1), max(x2, x3)) and out2 = max(max(x0, x1), x2).
    jac = nanofn.jacrev(lambda v: lax.associative_scan(lax.max, v))(fnp.full(4, 3.0))
    np.testing.assert_allclose(jac, [[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.25, 0.25, 0.5, 0],
                                     [0.25, 0.25, 0.25, 0.25]])
    jac_fwd = nanofn.jacfwd(lambda v: lax.associative_scan(lax.max, v))(fnp.full(4, 3.0))
    np.testing.assert_allclose(jac_fwd, jac)


def test_associative_scan_errors_name_the_problem():
    with pytest.raises(ValueError, match="same length along axis 0"):
        lax.associative_scan(lambda a, b: a, (fnp.ones(3), fnp.ones(4)))
    with pytest.raises(ValueError, match="must keep the scan axis"):
        lax.associative_scan(lambda a, b: fnp.sum(a + b), fnp.ones(4))
    with pytest.raises(TypeError, match="structure"):
        lax.associative_scan(lambda a, b: (a, b), fnp.ones(4))
    with pytest.raises(ValueError, match="out of bounds"):
        lax.associative_scan(fnp.add, fnp.ones(4), axis=1)


# ------------------------------------------------------------------------ gradients


def test_cond_gradients_with_closed_over_constant():
    w = fnp.asarray(np.array([0.3, -1.2], dtype=f64))

    def f(x, w):
        return lax.cond(fnp.sum(x) > 0, lambda a: fnp.sin(a * w) * a,
                        lambda a: fnp.exp(a) + w, x)

    for x in (np.array([0.5, 0.7]), np.array([-0.5, -0.2])):
        check_grads(f, (x, w), order=2)
    # the gradient reaches a closed-over traced value
    ones = fnp.ones(2, dtype=f64)
    g = nanofn.grad(lambda w: fnp.sum(lax.cond(True, lambda a: a * w, lambda a: a, ones)))
    assert np.allclose(g(w), 1.0)


def test_switch_and_fori_gradients():
    def f(x):
        return lax.switch(1, [fnp.sin, lambda a: a ** 3, fnp.cos], x)

    check_grads(f, (np.array([0.3, 1.1]),), order=2)

    def g(x, w):
        return lax.fori_loop(0, 4, lambda i, v: fnp.tanh(v * w + i), x)

    check_grads(g, (np.array([0.2, -0.4]), f64(0.8)), order=1)


def test_scan_gradients_with_closed_over_weights():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3)) * 0.5
    xs = rng.normal(size=(4, 3))

    def f(h0, w, xs):
        def step(h, x):
            h = fnp.tanh(h @ w + x)
            return h, fnp.sum(h * h)
        h, ys = lax.scan(step, h0, xs)
        return fnp.sum(h) + fnp.sum(ys)

    check_grads(f, (rng.normal(size=3), w, xs), order=2)


def test_scan_reverse_and_integer_carry_gradients():
    def f(x, xs):
        (c, n), ys = lax.scan(lambda c, x: ((c[0] * x + fnp.sin(c[0]), c[1] + 1), c[0] * 2),
                              (x, 0), xs, reverse=True)
        return c + fnp.sum(ys) * n

    check_grads(f, (f64(0.4), np.array([0.5, -1.0, 0.3])), order=2)


def test_scan_rnn_gradient_matches_unrolled_python():
    rng = np.random.default_rng(1)
    params = {"wh": rng.normal(size=(4, 4)) * 0.4, "wx": rng.normal(size=(2, 4)),
              "b": rng.normal(size=4)}
    xs = rng.normal(size=(5, 2))

    def cell(p, h, x):
        return fnp.tanh(h @ p["wh"] + x @ p["wx"] + p["b"])

    def loss_scan(p, xs):
        h, hs = lax.scan(lambda h, x: (cell(p, h, x), h), fnp.zeros(4, dtype=f64), xs)
        return fnp.sum(h ** 2) + fnp.sum(hs)

    def loss_unrolled(p, xs):
        h, total = fnp.zeros(4, dtype=f64), 0.0
        for x in xs:
            total = total + fnp.sum(h)
            h = cell(p, h, x)
        return fnp.sum(h ** 2) + total

    xs_list = [fnp.asarray(x) for x in xs]
    v1, g1 = nanofn.value_and_grad(loss_scan)(params, fnp.asarray(xs))
    v2, g2 = nanofn.value_and_grad(loss_unrolled)(params, xs_list)
    assert np.isclose(float(v1), float(v2))
    for k in params:
        assert np.allclose(g1[k], g2[k], rtol=1e-10, atol=1e-12)
    g3 = nanofn.jit(nanofn.grad(loss_scan))(params, fnp.asarray(xs))
    for k in params:
        assert np.allclose(g3[k], g2[k], rtol=1e-10, atol=1e-12)
    gx = nanofn.grad(loss_scan, argnums=1)(params, fnp.asarray(xs))
    gx2 = nanofn.grad(loss_unrolled, argnums=1)(params, xs_list)
    assert np.allclose(gx, np.stack([np_(g) for g in gx2]))


def test_while_loop_forward_mode_and_reverse_mode_error():
    def f(x):
        return lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, fnp.sin(c[1]) * 2.0),
                              (0, x))[1]

    check_grads(f, (f64(0.3),), order=2, modes=("fwd",))
    with pytest.raises(ValueError, match="Reverse-mode differentiation does not work for "
                                         "lax.while_loop"):
        nanofn.grad(f)(0.3)
    with pytest.raises(ValueError, match="use lax.scan or fori_loop with static bounds"):
        nanofn.jit(nanofn.grad(lambda x, n: lax.fori_loop(0, n, lambda i, v: v * x, 1.0)))(2.0, 3)


def test_gradient_jaxprs_typecheck():
    def f(w, xs):
        c, ys = lax.scan(lambda c, x: (fnp.sin(c * w + x), c), 0.0, xs)
        return lax.cond(c > 0, lambda: c * 2, lambda: fnp.sum(ys))

    xs = fnp.array([0.1, 0.2, 0.3])
    for fun in (nanofn.grad(f), lambda w, xs: nanofn.jvp(lambda w: f(w, xs), (w,), (1.0,))):
        _typecheck_all(nanofn.make_jaxpr(fun)(0.5, xs).jaxpr)
    assert np.isclose(float(nanofn.jit(nanofn.grad(f))(0.5, xs)), float(nanofn.grad(f)(0.5, xs)))


# ------------------------------------------------------------------------ errors


def test_cond_branch_type_mismatch_errors():
    with pytest.raises(TypeError, match="true_fun and false_fun output must have identical "
                                        "types") as e:
        lax.cond(True, lambda x: x, lambda x: fnp.zeros(2), fnp.ones(3))
    assert "f32[3]" in str(e.value) and "f32[2]" in str(e.value)
    with pytest.raises(TypeError, match="true_fun and false_fun output must have the same tree "
                                        "structure") as e:
        lax.cond(True, lambda x: (x, x), lambda x: x, 1.0)
    with pytest.raises(TypeError, match=r"branches\[0\] and branches\[1\] output"):
        lax.switch(0, [lambda x: x, lambda x: x.astype(fnp.int32)], 1.0)
    with pytest.raises(TypeError, match="pred must be a scalar"):
        lax.cond(fnp.ones(2) > 0, lambda: 1.0, lambda: 2.0)
    with pytest.raises(TypeError, match="pred must be a boolean or real number"):
        lax.cond(1j, lambda: 1.0, lambda: 2.0)  # a float is true when nonzero, as in JAX
    with pytest.raises(TypeError, match="index must be an integer"):
        lax.switch(1.0, [lambda: 1.0, lambda: 2.0])


def test_loop_carry_mismatch_errors():
    with pytest.raises(TypeError, match="carry input and carry output must have identical "
                                        "types") as e:
        lax.scan(lambda c, x: (fnp.zeros(2), x), fnp.zeros(3), fnp.ones(4))
    msg = str(e.value)
    assert "carry input: f32[3]" in msg and "carry output: f32[2]" in msg
    with pytest.raises(TypeError, match=re.escape("at ['b']")):
        lax.scan(lambda c, x: ({"a": c["a"], "b": c["b"].astype(fnp.int32)}, x),
                 {"a": 1.0, "b": fnp.float32(2.0)}, fnp.ones(2))
    with pytest.raises(TypeError, match="must have the same tree structure"):
        lax.scan(lambda c, x: ((c, c), x), 1.0, fnp.ones(2))
    with pytest.raises(TypeError, match="must return a pair"):
        lax.scan(lambda c, x: c, 1.0, fnp.ones(2))
    with pytest.raises(TypeError, match="body_fun output and input"):
        lax.while_loop(lambda c: c < 3, lambda c: fnp.zeros(2), fnp.float32(1.0))
    with pytest.raises(TypeError, match="cond_fun must return a boolean scalar"):
        lax.while_loop(lambda c: c, lambda c: c, 1.0)
    with pytest.raises(ValueError, match="no xs to scan over"):
        lax.scan(lambda c, x: (c, x), 0.0, None)
    with pytest.raises(ValueError, match="different leading axis sizes"):
        lax.scan(lambda c, x: (c, x), 0.0, (fnp.ones(2), fnp.ones(3)))
    with pytest.raises(ValueError, match="disagrees"):
        lax.scan(lambda c, x: (c, x), 0.0, fnp.ones(2), length=3)


# ------------------------------------------------------------------------ vmap


def test_vmap_cond_batched_predicate_is_select():
    x = fnp.array([-1.5, 0.5, 2.0, -0.1])
    out = vmap(lambda x: lax.cond(x > 0, fnp.sin, lambda a: a * a, x))(x)
    assert np.allclose(out, np.where(np_(x) > 0, np.sin(x), np_(x) ** 2))
    # batched operand, unbatched predicate
    out = vmap(lambda a, p: lax.cond(p, lambda v: v + 1, lambda v: v - 1, a),
               in_axes=(0, None))(x, True)
    assert np.allclose(out, np_(x) + 1)
    # batched switch index, clamped per lane
    out = vmap(lambda i, v: lax.switch(i, [lambda a: a, lambda a: a * 10, lambda a: -a], v))(
        fnp.array([0, 1, 2, 7]), x)
    assert np.allclose(out, np_(x) * np.array([1, 10, -1, -1]))


def test_vmap_while_and_scan():
    ns = fnp.array([0, 3, 1])
    i, v = vmap(lambda n: lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 2.0),
                                         (0, 1.0)))(ns)
    assert np_(i).tolist() == [0, 3, 1] and np_(v).tolist() == [1.0, 8.0, 2.0]
    xs = np.arange(12.0).reshape(3, 4)
    step = lambda c, x: (c * 0.5 + x, c * x)  # noqa: E731
    c, ys = vmap(lambda r: lax.scan(step, 0.0, r))(fnp.asarray(xs))
    for b in range(3):
        ec, eys = _py_scan(step, 0.0, xs[b])
        assert np.isclose(c[b], ec) and np.allclose(np_(ys)[b], eys)
    c2, ys2 = vmap(lambda r: lax.scan(step, 0.0, r), in_axes=1)(fnp.asarray(xs.T))
    assert np.allclose(c2, c) and np.allclose(ys2, ys)
    # batched init only: the body makes the carry batched, xs stay shared
    c3, _ = vmap(lambda c0: lax.scan(step, c0, fnp.asarray(xs[0])))(
        fnp.array([0.0, 1.0], dtype=f64))
    assert np.allclose(c3, [_py_scan(step, c0, xs[0])[0] for c0 in (0.0, 1.0)])
    g = vmap(nanofn.grad(lambda w: lax.scan(lambda c, x: (fnp.tanh(c * w + x), None), 0.1,
                                            fnp.asarray(xs[0]))[0]))(fnp.array([0.1, 0.2]))
    for k, w in enumerate((0.1, 0.2)):
        h = nanofn.grad(lambda w: lax.scan(lambda c, x: (fnp.tanh(c * w + x), None), 0.1,
                                           fnp.asarray(xs[0]))[0])(w)
        assert np.isclose(g[k], h)


def test_vmap_fori_loop_with_batched_bound_and_jaxprs_typecheck():
    f = vmap(lambda n, x: lax.fori_loop(0, n, lambda i, v: v * x + i, 1.0))
    ns, xs = fnp.array([0, 2, 4]), fnp.array([2.0, 3.0, 0.5])
    expected = []
    for n, x in zip([0, 2, 4], [2.0, 3.0, 0.5]):
        v = 1.0
        for i in range(n):
            v = v * x + i
        expected.append(v)
    assert np.allclose(f(ns, xs), expected)
    assert np.allclose(nanofn.jit(f)(ns, xs), expected)
    _typecheck_all(nanofn.make_jaxpr(f)(ns, xs).jaxpr)
    g = vmap(lambda p, x: lax.cond(p, lambda: lax.scan(lambda c, y: (c + y, c), x, fnp.ones(3))[0],
                                   lambda: x))
    _typecheck_all(nanofn.make_jaxpr(g)(fnp.array([True, False]), fnp.array([1.0, 2.0])).jaxpr)
    assert np_(g(fnp.array([True, False]), fnp.array([1.0, 2.0]))).tolist() == [4.0, 2.0]


def test_nested_control_flow_gradients():
    rng = np.random.default_rng(2)

    def f(w, xs):
        def outer(c, row):
            inner, _ = lax.scan(lambda ci, x: (lax.cond(x > 0, lambda: fnp.tanh(ci * w + x),
                                                        lambda: ci * x - w), None), c, row)
            return inner, inner * c
        c, ys = lax.scan(outer, f64(0.1), xs)
        return c + fnp.sum(ys)

    check_grads(f, (f64(0.7), rng.normal(size=(3, 4))), order=2)
    check_grads(lambda x: lax.associative_scan(lambda a, b: a * b, x), (rng.normal(size=5),),
                order=1)


@pytest.mark.parametrize("axis,reverse", [(0, False), (1, True), (-1, False), (0, True)])
def test_cumlogsumexp_matches_numpy_and_differentiates(axis, reverse):
    x = np.random.default_rng(1).normal(size=(3, 4))
    flip = (lambda a: np.flip(a, axis)) if reverse else (lambda a: a)
    want = flip(np.log(np.cumsum(np.exp(flip(x)), axis=axis)))
    np.testing.assert_allclose(lax.cumlogsumexp(x, axis=axis, reverse=reverse), want,
                               rtol=1e-12)
    check_grads(lambda v: lax.cumlogsumexp(v, axis=axis, reverse=reverse), (x,), order=2)


def test_cumlogsumexp_keeps_small_terms_and_infinities():
    x = np.array([-np.inf, -1000.0, 0.0, 1000.0])
    out = np.asarray(lax.cumlogsumexp(x))
    assert out[0] == -np.inf and out[1] == -1000.0 and out[3] == 1000.0
    np.testing.assert_allclose(out[2], np.logaddexp(-1000.0, 0.0))
