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
