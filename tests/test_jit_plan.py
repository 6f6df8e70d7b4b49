"""jit's compiled plan (nanofn/_jit.py): buffers reused when dead, values freed after use.

The plan runs elementwise ufuncs and fused kernels into preallocated buffers that it keeps
between calls. Each test compares a plan with buffer reuse against the same program run
with a fresh array per step (`Plan(closed, reuse=False)`), or against eager evaluation,
on programs built to stress aliasing: views (reshape, transpose, rev, broadcast) of
buffered values, outputs that are arguments, and outputs that are views.
"""

import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import _core as core
from nanofn import _jit, lax
from nanofn.ops import _conv as C


def closed_of(f, *args):
    return _jit.simplify(nanofn.make_jaxpr(f)(*args))


def fresh_plan_results(closed, args):
    return [np.array(r, copy=True) for r in _jit.Plan(closed, reuse=False)(list(args))]


def storages(plan):
    """The arrays behind every kept buffer of `plan`."""
    return [v for arena in plan._arenas for v in arena]


# ------------------------------------------------------------------------ random programs
#
# A program is a list of steps over a growing list of k x k values (k drawn); each step
# reads one or two earlier values and appends one. Square shapes let a transpose feed
# an elementwise step, so buffers are read through views in other memory orders.

UNARY = {
    "neg": lambda a: -a,
    "exp": lambda a: fnp.exp(a * 0.1),
    "tanh": fnp.tanh,
    "sin": fnp.sin,
    "square": lambda a: a * a,
    "sqrt_abs": lambda a: fnp.sqrt(fnp.abs(a)),
    "transpose": lambda a: a.T,  # a view
    "exp_transposed": lambda a: fnp.exp(a * 0.1).T,  # a view of a buffered value
    "rev": lambda a: lax.rev(a, (0,)),  # a view
    "reshape_round_trip": lambda a: a.reshape(-1).reshape(a.shape),  # views
    "row_broadcast": lambda a: fnp.broadcast_to(a[:1], a.shape),  # a view of a slice
    "cumsum": lambda a: fnp.cumsum(a, axis=1),
    "row_sum": lambda a: fnp.broadcast_to(fnp.sum(a, axis=1, keepdims=True), a.shape),
    "relu": lambda a: fnp.maximum(a, 0.0),
    "matmul": lambda a: a @ a.T * 0.1,
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (1.0 + b * b),
    "max": fnp.maximum,
    "where": lambda a, b: fnp.where(a > b, a, b * 0.5),
    "add_transposed": lambda a, b: a + b.T,
}


@st.composite
def programs(draw):
    n_steps = draw(st.integers(1, 12))
    steps = []
    for i in range(n_steps):
        avail = i + 2  # two arguments, then one value per step

        def operand():  # mostly recent values, so that values die and buffers get reused
            return avail - 1 - draw(st.integers(0, min(avail - 1, 2))) \
                if draw(st.integers(0, 3)) else draw(st.integers(0, avail - 1))
        if draw(st.booleans()):
            steps.append((draw(st.sampled_from(sorted(UNARY))), operand()))
        else:
            steps.append((draw(st.sampled_from(sorted(BINARY))), operand(), operand()))
    total = n_steps + 2
    outs = draw(st.lists(st.integers(0, total - 1), min_size=1, max_size=3))
    return steps, outs


def make_fun(program):
    steps, outs = program

    def f(x, y):
        vals = [x, y]
        for name, *args in steps:
            fn = UNARY.get(name) or BINARY[name]
            vals.append(fn(*[vals[a] for a in args]))
        return [vals[o] for o in outs]
    return f


def assert_close(got, want, exact=False):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        if exact:
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)


def data(k, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(k, k)).astype(np.float32) for _ in range(2)]


@settings(max_examples=60, deadline=None)
@given(programs(), st.integers(1, 5), st.integers(0, 3))
def test_plan_with_reuse_equals_fresh_arrays_and_never_leaks_its_buffers(program, k, seed):
    f = make_fun(program)
    x, y = data(k, seed)
    closed = closed_of(f, x, y)
    plan = _jit.Plan(closed)
    keep = [x.copy(), y.copy()]
    first = plan([x, y])
    assert_close(first, fresh_plan_results(closed, [x, y]), exact=True)
    snapshot = [np.array(r, copy=True) for r in first]
    x2, y2 = data(k, seed + 10)
    second = plan([x2, y2])  # reuses the buffers of the first call
    assert_close(second, fresh_plan_results(closed, [x2, y2]), exact=True)
    assert_close(first, snapshot, exact=True)  # what the first call returned is untouched
    assert_close([x, y], keep, exact=True)  # arguments are never written
    for r in first + second:
        for buf in storages(plan):
            assert not np.shares_memory(r, buf)


@settings(max_examples=60, deadline=None)
@given(programs(), st.integers(1, 5), st.integers(0, 3), st.booleans(), st.data())
def test_run_into_writes_the_last_outputs_into_given_arrays(program, k, seed, fused, drawn):
    # what `scan` does with a step's ys: outputs that are arguments, views, duplicates or
    # results of any kind of step (fused kernels included, whatever order they chose) all
    # end up in the given arrays, which come back in their places
    from nanofn import _fusion
    f = make_fun(program)
    x, y = data(k, seed)
    closed = closed_of(f, x, y)
    if fused:
        closed = _fusion.fuse(closed)
    plan = _jit.Plan(closed)
    want = fresh_plan_results(closed, [x, y])
    n = drawn.draw(st.integers(0, len(want)))
    dests = [np.full(np.shape(w), np.nan, np.asarray(w).dtype) for w in want[len(want) - n:]]
    keep = [x.copy(), y.copy()]
    for _ in range(2):  # the second call reuses the plan's buffers and the into function
        got = plan.run_into([x, y], dests)
        assert_close(got, want, exact=True)
        assert all(g is d for g, d in zip(got[len(got) - n:], dests))
        for d in dests:
            for buf in storages(plan):
                assert not np.shares_memory(d, buf)
    assert_close([x, y], keep, exact=True)


def test_run_into_a_fused_result_in_fortran_order_is_read_back_right():
    # a fused kernel over Fortran-ordered inputs fills its destination in that order;
    # the plan puts it in C order, and later steps (here a slice) read the C array
    from nanofn import _fusion
    c = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    closed = _fusion.fuse(closed_of(lambda c: [(c * 2.0 + 1.0)[0], c * 2.0 + 1.0], c))
    dest = np.empty((3, 4))
    first, second = _jit.Plan(closed).run_into([c], [dest])
    np.testing.assert_array_equal(second, c * 2 + 1)
    np.testing.assert_array_equal(first, [1.0, 3.0, 5.0, 7.0])
    assert second is dest


def test_a_scan_over_a_fortran_carry_gives_the_same_ys_under_jit():
    c = np.asfortranarray(np.arange(12.0).reshape(3, 4))

    def f(c):
        def step(c, _):
            y = c * 2.0 + 1.0
            return y.T.T * 0.5, (y, y[0])
        return lax.scan(step, c, None, length=3)

    want = f(c)
    jf = nanofn.jit(f)
    for _ in range(3):  # the second call runs the fused plan
        got = jf(c)
        for a, b in zip(nanofn.tree.leaves(got), nanofn.tree.leaves(want)):
            np.testing.assert_array_equal(a, b)
    carry, (ys, _) = got
    assert not np.shares_memory(np.asarray(carry), np.asarray(ys))


@settings(max_examples=25, deadline=None)
@given(programs(), st.integers(1, 4), st.sampled_from([True, False]))
def test_jit_equals_eager_with_and_without_kernels(program, k, kernels):
    f = make_fun(program)
    x, y = data(k, 7)
    want = f(fnp.asarray(x), fnp.asarray(y))
    with nanofn.config._override("nanofn_use_kernels", kernels):
        jf = nanofn.jit(f)
        for _ in range(3):  # the second call builds the fused plan, the third reuses it
            got = jf(x, y)
            assert_close(got, want)


def test_returned_values_are_fresh_arrays_every_call():
    def f(x):
        a = fnp.exp(x) * 2.0  # computed into a buffer if it were not returned
        return a, a.T, fnp.sin(a) + 1.0

    jf = nanofn.jit(f)
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    outs = [jf(x) for _ in range(3)]
    want = [np.asarray(o) for o in f(fnp.asarray(x))]
    for o in outs:
        assert_close(o, want)
    for i, o in enumerate(outs):
        for p in outs[i + 1:]:
            for a in o:
                assert not any(np.shares_memory(np.asarray(a), np.asarray(b)) for b in p)


def test_a_view_keeps_its_buffer_busy():
    # a's buffer would be free once `transpose` has run if views were not tracked; sin(x)
    # would then overwrite the values v still reads.
    def f(x):
        a = fnp.exp(x)
        v = a.T
        b = fnp.sin(x) * 3.0
        return v + b.T

    x = np.arange(16, dtype=np.float32).reshape(4, 4) / 10
    closed = closed_of(f, x)
    plan = _jit.Plan(closed)
    assert_close(plan([x]), fresh_plan_results(closed, [x]), exact=True)
    assert_close(plan([x]), [np.exp(x).T + (np.sin(x) * 3.0).T], exact=False)


def test_a_reshape_is_a_view_written_into_the_plan_and_keeps_its_buffer_busy():
    # reshapes are `x.reshape(shape)` in the plan's source; their views of a buffer keep
    # it from being reused while they are read, as any view does
    def f(x):
        a = fnp.exp(x).reshape(2, 8)
        b = (fnp.sin(x) * 3.0).reshape(2, 8)
        return a + b, x.reshape(16)

    x = np.arange(16, dtype=np.float32).reshape(4, 4) / 10
    closed = closed_of(f, x)
    plan = _jit.Plan(closed)
    assert ".reshape((2, 8))" in plan.source and "reshape_p" not in plan.source
    assert_close(plan([x]), fresh_plan_results(closed, [x]), exact=True)
    assert_close(plan([x]), [(np.exp(x) + np.sin(x) * 3.0).reshape(2, 8), x.reshape(16)],
                 exact=False)
    g = nanofn.jit(f)
    for _ in range(3):
        _, flat = g(x)
    x[0, 0] = 100.0  # the caller's array changes after the call: the result does not
    assert float(flat[0]) == 0.0


def test_a_step_overwrites_an_operand_only_when_no_other_operand_views_it():
    x = np.arange(9, dtype=np.float32).reshape(3, 3)

    def n_buffers(f):
        with nanofn.config._override("nanofn_use_kernels", False):
            plan = _jit.Plan(closed_of(f, x))
        return len(plan.buffer_nbytes)

    assert n_buffers(lambda x: fnp.sum(fnp.exp(x) + fnp.exp(x))) == 1  # CSE: exp(x) + itself
    assert n_buffers(lambda x: fnp.sum(fnp.exp(x) + fnp.exp(x).T)) == 2
    assert n_buffers(lambda x: fnp.sum(fnp.exp(x) + lax.rev(fnp.exp(x), (0,)))) == 2


def test_an_elementwise_chain_runs_in_place_in_one_buffer():
    def f(x):
        y = x
        for _ in range(6):
            y = fnp.tanh(y) * 1.5 + 0.25
        return fnp.sum(y)

    x = np.linspace(-2, 2, 1000, dtype=np.float32)
    closed = closed_of(f, x)
    with nanofn.config._override("nanofn_use_kernels", False):
        plan = _jit.Plan(closed)
    assert len([e for e in closed.eqns if e.primitive.name != "reduce_sum"]) == 18
    assert plan.buffer_nbytes == [x.nbytes]  # every step overwrites its dead operand
    assert_close(plan([x]), fresh_plan_results(closed, [x]), exact=True)


def test_buffers_are_kept_between_calls_so_a_second_call_allocates_only_its_result():
    def f(x):
        y = x
        for _ in range(8):
            y = fnp.sin(y) * 0.5 + fnp.cos(y)
        return y * 2.0

    x = np.linspace(-1, 1, 200_000)  # 1.6 MB
    closed = closed_of(f, x)
    plan = _jit.Plan(closed)
    plan([x])
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = plan([x])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * x.nbytes  # the returned array, nothing else of that size
    assert_close(out, fresh_plan_results(closed, [x]), exact=True)


def test_big_buffer_sets_are_not_kept(monkeypatch):
    monkeypatch.setattr(_jit, "KEEP_BUFFERS_BYTES", 0)

    def f(x):
        return fnp.sum(fnp.exp(x) * fnp.sin(x) + 1.0)

    x = np.linspace(0, 1, 100, dtype=np.float32)
    closed = closed_of(f, x)
    plan = _jit.Plan(closed)
    assert plan.buffer_nbytes
    for _ in range(2):
        assert_close(plan([x]), fresh_plan_results(closed, [x]), exact=True)
    assert plan._arenas == []


# ------------------------------------------------------------------------ memory


def _naive_peak(closed, args):
    """Peak bytes allocated by evaluating the jaxpr one impl at a time, keeping every value."""
    env = {id(v): c for v, c in zip(closed.jaxpr.constvars, closed.consts)}
    env.update((id(v), a) for v, a in zip(closed.jaxpr.invars, args))
    tracemalloc.start()
    try:
        for e in closed.eqns:
            vals = [env[id(x)] if type(x) is core.Var else x.val for x in e.invars]
            out = e.primitive.impl(*vals, **e.params)
            for v, o in zip(e.outvars, out if e.primitive.multiple_results else [out]):
                env[id(v)] = o
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _plan_peak(plan, args):
    tracemalloc.start()
    try:
        plan(args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kernels", [False, True])
def test_residuals_are_freed_once_the_backward_pass_is_done_with_them(kernels):
    # grad of a deep chain of matmuls + tanh: each layer's activation is a residual the
    # backward pass reads once. A plan that kept every value would hold all forward and
    # backward values at the end; the plan holds about one set of residuals at the turn.
    depth, n = 12, 64

    def loss(ws, x):
        h = x
        for w in ws:
            h = fnp.tanh(h @ w)
        return fnp.sum(h * h)

    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(n, n)) / np.sqrt(n) for _ in range(depth)]
    x = rng.normal(size=(n, n))
    with nanofn.config._override("nanofn_use_kernels", kernels):
        closed = closed_of(nanofn.grad(loss), ws, x)
        from nanofn._fusion import fuse
        closed = fuse(closed)
        plan = _jit.Plan(closed)
        args = ws + [x]
        plan(args)  # buffers made
        ours = _plan_peak(plan, args)
        naive = _naive_peak(closed, args)
    act = n * n * 8
    assert naive > 3 * depth * act  # forward values, backward values, gradients
    # residuals (about 2 per layer) plus the gradients returned, plus a few in flight
    assert ours < naive * 0.6
    grads = plan(args)
    assert_close(grads, fresh_plan_results(closed, args), exact=True)


# ------------------------------------------------------------------------ robustness


def test_side_effects_see_values_that_are_never_overwritten_later():
    seen = []

    def f(x):
        a = fnp.exp(x) + 1.0
        nanofn.debug.callback(lambda v: seen.append(v), a)
        return fnp.sum(fnp.sin(a) * 2.0)

    jf = nanofn.jit(f)
    xs = [np.full(8, float(i), np.float32) for i in range(3)]
    for x in xs:
        jf(x)
    for v, x in zip(seen, xs):
        np.testing.assert_allclose(np.asarray(v), np.exp(x) + 1.0, rtol=1e-6)


def test_concurrent_calls_use_separate_buffers():
    def f(x):
        y = x
        for _ in range(5):
            y = fnp.tanh(y) * 1.1 + 0.1
        return fnp.sum(y * y)

    jf = nanofn.jit(f)
    xs = [np.full(50_000, i / 10, np.float32) for i in range(8)]
    want = [float(f(fnp.asarray(x))) for x in xs]
    jf(xs[0])
    jf(xs[0])
    got = [None] * len(xs)

    def work(i):
        for _ in range(5):
            got[i] = float(jf(xs[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_a_failing_step_is_reported_with_its_primitive_and_shapes(monkeypatch):
    prim = core.registry["cumsum"]

    def broken(*args, **params):
        raise ArithmeticError("boom")

    monkeypatch.setattr(prim, "impl", broken)
    jf = nanofn.jit(lambda x: fnp.cumsum(fnp.exp(x), axis=0) * 2.0)
    with pytest.raises(ArithmeticError, match=r"cumsum\(f32\[3\]\) failed: boom"):
        jf(np.zeros(3, np.float32))


def test_debug_nans_still_names_the_primitive_under_a_compiled_plan():
    jf = nanofn.jit(lambda x: fnp.log(x) * 2.0)
    x = np.array([1.0, -1.0], np.float32)
    jf(x)  # compiled (and run) without the check
    with nanofn.debug_nans():
        with pytest.raises(FloatingPointError, match="log"):
            jf(x)


def test_plans_match_with_kernels_switched_off():
    def f(x, w):
        h = fnp.maximum(x @ w + 0.5, 0.0)
        return fnp.sum(fnp.tanh(h) * fnp.exp(-h * h))

    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(16, 8)).astype(np.float32), rng.normal(size=(8, 8)).astype(np.float32)
    g = nanofn.value_and_grad(f, argnums=(0, 1))
    results = {}
    for kernels in (False, True):
        with nanofn.config._override("nanofn_use_kernels", kernels):
            jg = nanofn.jit(g)
            results[kernels] = [jg(x, w) for _ in range(3)][-1]
    (v0, (a0, b0)), (v1, (a1, b1)) = results[False], results[True]
    assert_close([v0, a0, b0], [v1, a1, b1])


# ------------------------------------------------------------------------ conv, pooling, dot
#
# Primitives with an `impl_into` (im2col, col2im, pooling and its gradients) and matrix
# products of any rank write into kept buffers too; col2im's result is a channels-last
# view of its buffer, which no elementwise step may then overwrite in C order.

DN = ("NHWC", "HWIO", "NHWC")


@st.composite
def conv_programs(draw):
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    c, o = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    pool = draw(st.sampled_from(["max", "sum"]))
    pw = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    seed = draw(st.integers(0, 2**16))
    return (n, h, w, c, o, k, strides, padding, pool, pw), seed


def conv_loss(geo):
    n, h, w, c, o, k, strides, padding, pool, pw = geo

    def loss(x, kern):
        y = lax.conv_general_dilated(x, kern, strides, padding, dimension_numbers=DN)
        y = fnp.maximum(y, 0.0) * 1.5
        op, init = (lax.max, -np.inf) if pool == "max" else (lax.add, 0.0)
        y = lax.reduce_window(y, init, op, (1,) + pw + (1,), (1,) + pw + (1,), "SAME")
        return fnp.sum(fnp.tanh(y) * y)
    return loss


def conv_data(geo, seed):
    n, h, w, c, o, k = geo[:6]
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, h, w, c)).astype(np.float32),
            (rng.normal(size=k + (c, o)) * 0.5).astype(np.float32)]


@settings(max_examples=30, deadline=None)
@given(conv_programs())
def test_conv_and_pool_steps_write_into_kept_buffers_safely(case):
    geo, seed = case
    g = nanofn.value_and_grad(conv_loss(geo), argnums=(0, 1))
    args = conv_data(geo, seed)
    closed = closed_of(g, *args)
    plan = _jit.Plan(closed)
    assert {"conv_patches", "conv_patches_transpose"} <= {
        st_.eqn.primitive.name for st_ in plan.steps if st_.kind == "into"}
    first = plan(list(args))
    assert_close(first, fresh_plan_results(closed, args))
    snapshot = [np.array(r, copy=True) for r in first]
    args2 = conv_data(geo, seed + 1)
    second = plan(list(args2))  # the same buffers, other values
    assert_close(second, fresh_plan_results(closed, args2))
    assert_close(first, snapshot, exact=True)  # what the first call returned is untouched
    for r in first + second:
        assert not any(np.shares_memory(r, b) for b in storages(plan))
    eager = g(*[fnp.asarray(a) for a in args])
    assert_close(first, [np.asarray(v) for v in nanofn.tree.leaves(eager)])


@settings(max_examples=10, deadline=None)
@given(conv_programs(), st.sampled_from([True, False]))
def test_jit_of_conv_grads_equals_eager_with_and_without_kernels(case, kernels):
    geo, seed = case
    g = nanofn.value_and_grad(conv_loss(geo), argnums=(0, 1))
    args = conv_data(geo, seed)
    want = nanofn.tree.leaves(g(*[fnp.asarray(a) for a in args]))
    with nanofn.config._override("nanofn_use_kernels", kernels):
        jg = nanofn.jit(g)
        for _ in range(3):  # plain plan, fused plan built, fused plan reused
            assert_close(nanofn.tree.leaves(jg(*args)), want)


def test_a_conv_train_step_allocates_no_big_array_on_its_second_call():
    def step(x, kern):
        def loss(kern):
            y = lax.conv_general_dilated(x, kern, (1, 1), "SAME", dimension_numbers=DN)
            y = lax.reduce_window(fnp.maximum(y, 0.0), -np.inf, lax.max, (1, 2, 2, 1),
                                  (1, 2, 2, 1), "VALID")
            return fnp.sum(y * y)
        return kern - 0.01 * nanofn.grad(loss)(kern)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 16, 16, 8)).astype(np.float32)
    kern = rng.normal(size=(3, 3, 8, 4)).astype(np.float32)
    patches_nbytes = 4 * 16 * 16 * 9 * 8 * 4  # (N, H, W, KH, KW, C) float32
    closed = closed_of(step, x, kern)
    plan = _jit.Plan(closed)
    kinds = {(st_.eqn.primitive.name, st_.kind, st_.buffers[0] is not None)
             for st_ in plan.steps}
    for name in ("conv_patches", "reduce_window_max", "select_and_scatter_add"):
        assert (name, "into", True) in kinds
    assert ("dot_general", "owned", True) in kinds  # the N-d products
    plan([x, kern])
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = plan([x, kern])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the patches, their product with the kernel and the pooling results are kept
    # buffers: what remains is small (the padded input, the ReLU mask's select)
    assert peak < patches_nbytes / 4
    assert_close(out, fresh_plan_results(closed, [x, kern]))


def test_col2im_result_is_never_overwritten_in_another_layout():
    # col2im returns a channels-last view of its buffer: an elementwise step that wrote
    # its result over that buffer in C order would read values it already overwrote
    def f(ct):
        g = C.conv_patches_transpose_p.bind(ct, x_shape=(2, 3, 4, 5), window=(2, 2),
                                            strides=(1, 1), padding=((0, 0), (0, 0)),
                                            lhs_dilation=(1, 1), rhs_dilation=(1, 1))
        return fnp.sum(fnp.exp(g * 0.5) * 2.0 + 1.0, axis=(0, 1))

    from nanofn._fusion import fuse
    ct = np.random.default_rng(0).normal(size=(2, 3, 4, 2, 2, 3)).astype(np.float32)
    closed = closed_of(f, ct)
    # numpy ufuncs copy an operand that overlaps their output; a fused kernel does not
    for plan in (_jit.Plan(closed), _jit.Plan(fuse(closed))):
        into = [s for s in plan.steps if s.kind == "into"]
        assert into and into[0].buffers[0] is not None and not into[0].c_order
        assert into[0].buffers[0] not in [s.buffers[0] for s in plan.steps if s.kind != "into"]
        for _ in range(2):
            assert_close(plan([ct]), fresh_plan_results(closed, [ct]))


@pytest.mark.parametrize("xs, ys, dn", [
    ((2, 3, 4), (2, 4, 5), (((2,), (1,)), ((0,), (0,)))),  # batched matmul
    ((3, 2, 4), (4, 5, 2), (((2,), (0,)), ((1,), (2,)))),  # batch axes not in front
    ((1, 3, 4, 2), (4, 2, 1, 5), (((2, 3), (0, 1)), ((0,), (2,)))),  # unit batch, 2 contracted
    ((3, 4, 2), (2, 4), (((1, 2), (1, 0)), ((), ()))),  # no batch, contraction reordered
    ((2, 3), (3,), (((1,), (0,)), ((), ()))),  # matrix-vector
])
def test_matrix_products_of_any_rank_write_into_buffers(xs, ys, dn):
    def f(x, y):
        z = lax.dot_general(x, y, dn)
        return fnp.sum(fnp.exp(z * 0.1)), z + 1.0, z  # z: buffered, then returned as well

    def g(x, y):
        return fnp.sum(fnp.exp(lax.dot_general(x, y, dn) * 0.1), axis=0)

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=xs).astype(np.float32), rng.normal(size=ys).astype(np.float32)
    for fun in (f, g):
        closed = closed_of(fun, x, y)
        plan = _jit.Plan(closed)
        dots = [s for s in plan.steps if s.eqn.primitive.name == "dot_general"]
        assert dots and all(s.kind == "owned" for s in dots)
        for _ in range(2):
            assert_close(plan([x, y]), fresh_plan_results(closed, [x, y]))
        want = fun(fnp.asarray(x), fnp.asarray(y))
        assert_close(plan([x, y]), [np.asarray(w) for w in nanofn.tree.leaves(want)])
    assert any(s.buffers[0] is not None for s in _jit.Plan(closed_of(g, x, y)).steps
               if s.eqn.primitive.name == "dot_general")


def test_zero_d_binary_steps_use_numpy_scalar_arithmetic():
    # A loop's counter and its test are 0-d ufunc steps; the plan writes them as Python
    # operators on numpy scalars (the same numbers and dtypes, far cheaper per call).
    import warnings

    def f(a, b, p, q):
        return (a + b, a - b, a * b, a < b, a >= b, a == b, p & q, p | q, p ^ q,
                a + np.int32(1))

    ints = (np.int32(2**31 - 1), np.int32(2))
    bools = (np.bool_(True), np.bool_(False))
    plan_fn = nanofn.jit(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # int32 wrap-around and inf are quiet, as in JAX
        got = plan_fn(*ints, *bools)
        got_f = nanofn.jit(lambda a, b: (a * b, a - b, a / b))(np.float32(1e38), np.float32(0))
    with np.errstate(all="ignore"):
        want = f(*[np.asarray(v) for v in ints], *[np.asarray(v) for v in bools])
        want_f = (np.float32(1e38) * np.float32(0), np.float32(1e38) - np.float32(0),
                  np.divide(np.float32(1e38), np.float32(0)))
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    for g, w in zip(got_f, want_f):
        assert np.asarray(g).dtype == np.float32
        np.testing.assert_array_equal(np.asarray(g), w)
    source = plan_fn.lower(*ints, *bools).compile().as_text()
    assert " + " in source and " < " in source and " & " in source
    # arrays keep the ufunc steps
    arrays = nanofn.jit(lambda a, b: a + b).lower(np.ones(3), np.ones(3)).compile().as_text()
    assert " + " not in arrays
