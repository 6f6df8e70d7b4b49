"""Collectives in one process: under vmap(axis_name=) they are array operations, checked
against plain numpy, under jit, grad (check_grads) and nesting; pmap on one device."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import lax
from nanofn.testing import check_grads

# ------------------------------------------------------------------------ cases
# Each case: (per-example function of v using axis "i", numpy reference of the whole
# batch X -> stacked outputs, how to draw (n, per-example shape), differentiable?)


def _stack(outs):
    return np.stack(outs)


def _gather_ref(X, axis, tiled):
    one = np.concatenate(list(X), axis=axis) if tiled else np.moveaxis(X, 0, axis)
    return _stack([one] * len(X))


def _scatter_ref(X, sd, tiled):
    S = X.sum(0)
    n = len(X)
    if tiled:
        return _stack(np.split(S, n, axis=sd))
    return _stack([np.take(S, j, axis=sd) for j in range(n)])


def _ppermute_ref(X, perm):
    src = {d: s for s, d in perm}
    return _stack([X[src[j]] if j in src else np.zeros_like(X[0]) for j in range(len(X))])


def _all_to_all_ref(X, sa, ca, tiled):
    n = len(X)
    outs = []
    for j in range(n):
        if tiled:
            parts = [np.split(X[i], n, axis=sa)[j] for i in range(n)]
            outs.append(np.concatenate(parts, axis=ca))
        else:
            outs.append(np.stack([np.take(X[i], j, axis=sa) for i in range(n)], axis=ca))
    return _stack(outs)


@st.composite
def _case(draw, kind):
    n = draw(st.integers(1, 4), label="axis size")
    rank = draw(st.integers(0, 2), label="rank")
    s = list(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank), label="shape"))
    seed = draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    p = {}
    if kind in ("all_gather",):
        p["tiled"] = draw(st.booleans()) and rank > 0
        p["axis"] = draw(st.integers(0, rank - 1 if p["tiled"] else rank))
    elif kind == "psum_scatter":
        p["tiled"] = draw(st.booleans())
        s = s + [1]
        p["sd"] = draw(st.integers(0, len(s) - 1))
        s[p["sd"]] = n * (draw(st.integers(1, 2)) if p["tiled"] else 1)
    elif kind == "all_to_all":
        p["tiled"] = draw(st.booleans())
        s = s + [1]
        p["sa"] = draw(st.integers(0, len(s) - 1))
        p["ca"] = draw(st.integers(0, len(s) - 1))
        s[p["sa"]] = n * (draw(st.integers(1, 2)) if p["tiled"] else 1)
    elif kind == "ppermute":
        dst = rng.permutation(n)
        keep = rng.random(n) < 0.8
        p["perm"] = [(i, int(dst[i])) for i in range(n) if keep[i]]
    elif kind == "pshuffle":
        p["perm"] = [int(i) for i in rng.permutation(n)]
    X = rng.uniform(-2, 2, size=[n] + s)
    return X, p


CASES = {
    "psum": (lambda v, p: lax.psum(v, "i"), lambda X, p: _stack([X.sum(0)] * len(X))),
    "pmean": (lambda v, p: lax.pmean(v, "i"), lambda X, p: _stack([X.mean(0)] * len(X))),
    "pmax": (lambda v, p: lax.pmax(v, "i"), lambda X, p: _stack([X.max(0)] * len(X))),
    "pmin": (lambda v, p: lax.pmin(v, "i"), lambda X, p: _stack([X.min(0)] * len(X))),
    "all_gather": (lambda v, p: lax.all_gather(v, "i", axis=p["axis"], tiled=p["tiled"]),
                   lambda X, p: _gather_ref(X, p["axis"], p["tiled"])),
    "psum_scatter": (lambda v, p: lax.psum_scatter(v, "i", scatter_dimension=p["sd"],
                                                   tiled=p["tiled"]),
                     lambda X, p: _scatter_ref(X, p["sd"], p["tiled"])),
    "ppermute": (lambda v, p: lax.ppermute(v, "i", p["perm"]),
                 lambda X, p: _ppermute_ref(X, p["perm"])),
    "pshuffle": (lambda v, p: lax.pshuffle(v, "i", p["perm"]),
                 lambda X, p: _ppermute_ref(X, list(zip(p["perm"], range(len(X)))))),
    "all_to_all": (lambda v, p: lax.all_to_all(v, "i", p["sa"], p["ca"], tiled=p["tiled"]),
                   lambda X, p: _all_to_all_ref(X, p["sa"], p["ca"], p["tiled"])),
    "axis_index_plus": (lambda v, p: v + lax.axis_index("i").astype(v.dtype),
                        lambda X, p: X + np.arange(len(X)).reshape((-1,) + (1,) * (X.ndim - 1))),
}


@pytest.mark.parametrize("kind", sorted(CASES))
@given(data=st.data())
def test_vmap_matches_numpy_eager_and_jit(kind, data):
    f, ref = CASES[kind]
    X, p = data.draw(_case(kind.split("_plus")[0]))
    g = nanofn.vmap(lambda v: f(v, p), axis_name="i")
    want = ref(X, p)
    np.testing.assert_allclose(np.asarray(g(X)), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(nanofn.jit(g)(X)), want, rtol=1e-12, atol=1e-12)
    # a jitted function inside the vmap sees the name when its jaxpr is replayed
    h = nanofn.vmap(nanofn.jit(lambda v: f(v, p)), axis_name="i")
    np.testing.assert_allclose(np.asarray(h(X)), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(CASES))
@given(data=st.data())
def test_vmap_gradients(kind, data):
    f, _ = CASES[kind]
    X, p = data.draw(_case(kind.split("_plus")[0]))
    g = nanofn.vmap(lambda v: f(v, p), axis_name="i")
    check_grads(g, (X,), order=2)
    check_grads(nanofn.jit(g), (X,), order=1)


def test_transpose_rules_are_the_documented_collectives():
    """grad through vmap: psum's transpose is psum, all_gather's is psum_scatter, ppermute's
    the inverse permutation (checked on the cotangent directly)."""
    X = np.arange(6.0).reshape(3, 2)
    ct = np.random.default_rng(1).normal(size=(3, 2))
    _, pull = nanofn.vjp(nanofn.vmap(lambda v: lax.psum(v, "i"), axis_name="i"), X)
    np.testing.assert_allclose(pull(ct)[0], _stack([ct.sum(0)] * 3))
    perm = [(0, 1), (1, 2), (2, 0)]
    _, pull = nanofn.vjp(nanofn.vmap(lambda v: lax.ppermute(v, "i", perm), axis_name="i"), X)
    np.testing.assert_allclose(pull(ct)[0], _ppermute_ref(ct, [(d, s) for s, d in perm]))
    ctg = np.random.default_rng(2).normal(size=(3, 3, 2))
    _, pull = nanofn.vjp(nanofn.vmap(lambda v: lax.all_gather(v, "i"), axis_name="i"), X)
    np.testing.assert_allclose(pull(ctg)[0], _scatter_ref(ctg, 0, False))


def test_per_example_grad_inside_vmap_and_pytrees():
    X = np.random.default_rng(0).normal(size=(4, 3))
    w = np.random.default_rng(1).normal(size=3)

    def loss(w, x):  # data-parallel style: each example's loss, gradient averaged
        return fnp.sum(fnp.tanh(x * w))

    def step(x):
        g = nanofn.grad(loss)(w, x)
        return lax.pmean({"g": g, "n": fnp.ones(())}, "i")

    out = nanofn.vmap(step, axis_name="i")(X)
    want = nanofn.grad(lambda w: sum(loss(w, x) for x in X) / 4)(w)
    np.testing.assert_allclose(out["g"][0], want, rtol=1e-12)
    np.testing.assert_allclose(out["n"], np.ones(4))


def test_unbatched_operands_and_constants():
    X = np.arange(3.0)
    out = nanofn.vmap(lambda v: (lax.psum(1, "i"), lax.psum(2.0, "i"),
                                 lax.all_gather(5.0, "i"), lax.axis_size("i")),
                      axis_name="i", out_axes=(None, None, None, None))(X)
    assert int(out[0]) == 3 and float(out[1]) == 6.0
    np.testing.assert_array_equal(out[2], [5.0, 5.0, 5.0])
    assert out[3] == 3
    # an unbatched value permuted: instances with no source get zeros
    got = nanofn.vmap(lambda v: lax.ppermute(fnp.float32(7.0), "i", [(0, 1)]) + 0 * v,
                      axis_name="i")(X)
    np.testing.assert_array_equal(got, [0.0, 7.0, 0.0])


def test_nested_vmaps_and_tuple_names():
    X = np.random.default_rng(3).normal(size=(2, 3, 2))  # axes i (2) and j (3)

    def nest(f):
        return nanofn.vmap(nanofn.vmap(f, axis_name="j"), axis_name="i")

    np.testing.assert_allclose(nest(lambda v: lax.psum(v, ("i", "j")))(X),
                               np.broadcast_to(X.sum((0, 1)), X.shape))
    np.testing.assert_allclose(nest(lambda v: lax.psum(v, "i"))(X),
                               np.broadcast_to(X.sum(0), X.shape))
    np.testing.assert_allclose(nest(lambda v: lax.pmax(v, "j"))(X),
                               np.broadcast_to(X.max(1, keepdims=True), X.shape))
    idx = nest(lambda v: lax.axis_index(("i", "j")))(X)
    np.testing.assert_array_equal(idx, np.arange(6).reshape(2, 3))
    gathered = nest(lambda v: lax.all_gather(v, ("i", "j")))(X)
    np.testing.assert_allclose(gathered[1, 2], X.reshape(6, 2))
    tiled = nest(lambda v: lax.all_gather(v, ("i", "j"), tiled=True))(X)
    np.testing.assert_allclose(tiled[0, 0], X.reshape(12))
    Y = np.random.default_rng(4).normal(size=(2, 3, 6))
    scat = nest(lambda v: lax.psum_scatter(v, ("i", "j")))(Y)
    np.testing.assert_allclose(scat, Y.sum((0, 1)).reshape(2, 3))
    perm = [(k, (k + 1) % 6) for k in range(6)]
    shifted = nest(lambda v: lax.ppermute(v, ("i", "j"), perm))(X)
    np.testing.assert_allclose(shifted.reshape(6, 2), np.roll(X.reshape(6, 2), 1, axis=0))
    # an inner vmap without a name leaves an outer collective to the outer axis
    inner = nanofn.vmap(nanofn.vmap(lambda v: lax.psum(v, "i")), axis_name="i")(X)
    np.testing.assert_allclose(inner, np.broadcast_to(X.sum(0), X.shape))
    check_grads(nest(lambda v: lax.psum(v * v, ("i", "j")) * v), (X,), order=2)
    check_grads(nest(lambda v: lax.ppermute(v, ("i", "j"), perm)), (X,), order=1)


def test_inner_name_shadows_outer():
    X = np.arange(6.0).reshape(2, 3)
    out = nanofn.vmap(nanofn.vmap(lambda v: lax.psum(v, "i"), axis_name="i"), axis_name="i")(X)
    np.testing.assert_allclose(out, np.broadcast_to(X.sum(1, keepdims=True), X.shape))


def test_unbound_name_is_a_name_error():
    with pytest.raises(NameError, match="'batch'"):
        lax.psum(fnp.ones(2), "batch")
    with pytest.raises(NameError, match="'j'.*'i'"):
        nanofn.vmap(lambda v: lax.pmean(v, "j"), axis_name="i")(fnp.ones(2))
    with pytest.raises(NameError, match="'k'"):
        nanofn.jit(lambda v: lax.axis_index("k"))(fnp.ones(2))
    with pytest.raises(NameError, match="'i'"):  # vmap without a name binds none
        nanofn.vmap(lambda v: lax.psum(v, "i"))(fnp.ones(2))


def test_bad_arguments_name_the_problem():
    vm = lambda f: nanofn.vmap(f, axis_name="i")
    with pytest.raises(ValueError, match="scatter_dimension|dimension 0"):
        vm(lambda v: lax.psum_scatter(v, "i"))(fnp.ones((3, 2)))
    with pytest.raises(ValueError, match="sends from or to one index twice"):
        vm(lambda v: lax.ppermute(v, "i", [(0, 1), (1, 1)]))(fnp.ones(3))
    with pytest.raises(ValueError, match="outside the axis"):
        vm(lambda v: lax.ppermute(v, "i", [(0, 5)]))(fnp.ones(3))
    with pytest.raises(ValueError, match="pshuffle"):
        vm(lambda v: lax.pshuffle(v, "i", [0, 0, 1]))(fnp.ones(3))
    with pytest.raises(ValueError, match=r"split_axis 1 of the operand \(shape \(4, 8\)\) "
                                         r"must have the size of axis 'i' \(4\)"):
        vm(lambda v: lax.all_to_all(v, "i", 1, 0))(fnp.ones((4, 4, 8)))


def test_jaxpr_shows_collectives_and_batching_removes_them():
    jaxpr = nanofn.make_jaxpr(nanofn.pmap(lambda v: lax.psum(v, "d"), axis_name="d"))(
        np.ones((1, 2), np.float32))
    assert "psum[axes=('d',)]" in str(jaxpr)
    jaxpr = nanofn.make_jaxpr(nanofn.vmap(lambda v: lax.psum(v, "i"), axis_name="i"))(
        np.ones((3, 2), np.float32))
    assert "psum" not in str(jaxpr) and "reduce_sum" in str(jaxpr)


# ------------------------------------------------------------------------ pmap, one device


def test_one_process_is_one_device():
    assert nanofn.device_count() == nanofn.local_device_count() == 1
    assert nanofn.process_count() == 1 and nanofn.process_index() == 0
    assert [d.id for d in nanofn.devices()] == [0]


def test_pmap_on_one_device_runs_every_collective():
    x = np.random.default_rng(0).normal(size=(1, 3, 2))

    def f(v):
        return {"sum": lax.psum(v, "d"), "mean": lax.pmean(v, "d"), "max": lax.pmax(v, "d"),
                "gather": lax.all_gather(v, "d"), "scatter": lax.psum_scatter(v[:1], "d"),
                "perm": lax.ppermute(v, "d", [(0, 0)]), "a2a": lax.all_to_all(v[:1], "d", 0, 0),
                "idx": lax.axis_index("d"), "size": lax.axis_size("d") + fnp.zeros(())}

    out = nanofn.pmap(f, axis_name="d")(x)
    v = x[0]
    np.testing.assert_allclose(out["sum"][0], v)
    np.testing.assert_allclose(out["mean"][0], v)
    np.testing.assert_allclose(out["gather"][0], v[None])
    np.testing.assert_allclose(out["scatter"][0], v[0])
    np.testing.assert_allclose(out["perm"][0], v)
    np.testing.assert_allclose(out["a2a"][0], v[:1])
    assert int(out["idx"][0]) == 0 and float(out["size"][0]) == 1.0


def test_pmap_data_parallel_grad_and_options():
    w = np.random.default_rng(0).normal(size=(3,))
    xs = np.random.default_rng(1).normal(size=(1, 5, 3))

    def step(w, x, scale):
        g = nanofn.grad(lambda w: fnp.sum((x @ w) ** 2))(w)
        return w - scale * lax.pmean(g, "batch")

    p = nanofn.pmap(step, axis_name="batch", in_axes=(None, 0, None),
                    static_broadcasted_argnums=2)
    got = p(w, xs, 0.1)
    want = w - 0.1 * 2 * xs[0].T @ (xs[0] @ w)
    np.testing.assert_allclose(got[0], want, rtol=1e-12)
    out = nanofn.pmap(lambda x: x.sum(), out_axes=None)(xs)  # no axis name is fine too
    np.testing.assert_allclose(out, xs.sum())
    with pytest.raises(ValueError, match="local devices"):
        nanofn.pmap(lambda x: x)(np.ones((2, 3)))
    with pytest.raises(NameError, match="'other'"):
        nanofn.pmap(lambda x: lax.psum(x, "other"), axis_name="batch")(xs)


def test_pmap_in_a_launch_without_initialize_is_an_error(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(RuntimeError, match="initialize"):
        nanofn.pmap(lambda x: lax.psum(x, "d"), axis_name="d")(np.ones((1, 2)))


def test_grad_of_pmap_reaches_the_device_axis_after_pmap_returns():
    x = np.random.default_rng(0).normal(size=(1, 3))
    f = nanofn.pmap(lambda v: lax.psum(v * v, "d") + lax.all_gather(v, "d")[0], axis_name="d")
    g = nanofn.grad(lambda x: fnp.sum(f(x)))(x)
    np.testing.assert_allclose(g, 2 * x + 1, rtol=1e-12)
    check_grads(f, (x,), order=2)


def _assert_owned(out, x, want):
    """`out` equals `want`, shares no memory with the caller's buffer `x`, and keeps its
    values when the caller writes to `x`."""
    np.testing.assert_array_equal(out, want)
    assert not np.shares_memory(np.asarray(out), x)
    return lambda: np.testing.assert_array_equal(out, want)


def test_pmap_and_the_data_parallel_runner_lend_a_writable_input_without_aliasing_it():
    # the compiled call reads a caller's writable buffer through a read-only view instead
    # of a copy; a result that views it (the argument itself, a reshape, a psum on one
    # device) is copied, so later writes to the buffer change no result
    from nanofn.distributed._data_parallel import _on_group
    x = np.arange(6.0).reshape(1, 2, 3)
    keep = x.copy()
    checks = []
    f = nanofn.pmap(lambda v: {"same": v, "flat": v.reshape(-1), "sum": lax.psum(v, "d"),
                               "gather": lax.all_gather(v, "d")}, axis_name="d")
    run = _on_group(lambda v, w: (v, lax.psum(v, "b"), v + w), "b")
    w = np.ones((1, 2, 3))
    for jit_off in (False, True):  # under disable_jit, results may be the numpy views
        with nanofn.disable_jit(jit_off):
            out = f(x)
            for k, want in (("same", keep), ("flat", keep.reshape(1, -1)), ("sum", keep),
                            ("gather", keep[:, None])):
                checks.append(_assert_owned(out[k], x, want))
            outs, wants = run(x, w), (keep, keep, keep + 1)
            if jit_off:  # the function runs as plain Python (as under jax.disable_jit):
                assert outs[0] is x  # it returns its argument itself
                outs, wants = outs[1:], wants[1:]
            for o, want in zip(outs, wants):
                checks.append(_assert_owned(o, x, want))
    out = run(fnp.asarray(x), w)  # nanofn arrays and numpy mixed
    checks.append(_assert_owned(out[2], x, keep + 1))
    assert x.flags.writeable  # the caller's buffer is left as it was
    np.testing.assert_array_equal(x, keep)
    x[...] = -1.0
    w[...] = -1.0
    for check in checks:
        check()


def test_a_transformation_around_pmap_keeps_its_own_copy_of_a_writable_input():
    # vjp keeps pmap's inputs as residuals: those are copies, not the caller's buffer
    x = np.arange(3.0)[None]
    w = np.ones(3)
    _, pullback = nanofn.vjp(
        lambda w: nanofn.pmap(lambda w, x: w * x, in_axes=(None, 0))(w, x), w)
    x[...] = 100.0
    np.testing.assert_allclose(pullback(np.ones((1, 3)))[0], [0.0, 1.0, 2.0])


def test_a_jitted_collective_of_a_captured_numpy_array_keeps_its_value():
    x = np.ones(3, np.float32)
    f = nanofn.jit(nanofn.vmap(lambda v: v + lax.all_gather(x, "i"), axis_name="i"))
    np.testing.assert_array_equal(f(np.zeros((2, 2, 3), np.float32)), np.ones((2, 2, 3)))
    x[...] = 7.0
    np.testing.assert_array_equal(f(np.zeros((2, 2, 3), np.float32)), np.ones((2, 2, 3)))


def test_collectives_inside_control_flow_under_vmap():
    X = np.random.default_rng(5).normal(size=(3, 2))
    total, mean = X.sum(0), X.mean(0)

    def scanned(v):
        def body(c, _):
            return c + lax.psum(v, "i") + lax.axis_index("i").astype(v.dtype), None
        return lax.scan(body, fnp.zeros_like(v), None, length=2)[0]

    want = 2 * (total + np.arange(3)[:, None])
    np.testing.assert_allclose(nanofn.vmap(scanned, axis_name="i")(X), want)
    np.testing.assert_allclose(nanofn.jit(nanofn.vmap(scanned, axis_name="i"))(X), want)

    def looped(v):
        return lax.fori_loop(0, 2, lambda k, c: c + lax.pmean(v, "i"), v)

    np.testing.assert_allclose(nanofn.vmap(looped, axis_name="i")(X), X + 2 * mean)
    check_grads(nanofn.vmap(looped, axis_name="i"), (X,), order=1)

    def branched(v):  # a batched predicate runs both branches for every example
        return lax.cond(v[0] > 0, lambda v: lax.psum(v, "i"), lambda v: -v, v)

    got = nanofn.vmap(branched, axis_name="i")(X)
    np.testing.assert_allclose(got, np.where(X[:, :1] > 0, total, -X))


@given(n=st.integers(1, 4), seed=st.integers(0, 2**31 - 1),
       dtype=st.sampled_from([np.int32, np.float32, np.float64]))
def test_dtypes_are_kept(n, seed, dtype):
    X = np.random.default_rng(seed).integers(-5, 5, size=(n, 3)).astype(dtype)
    out = nanofn.vmap(lambda v: (lax.psum(v, "i"), lax.pmax(v, "i"), lax.pmin(v, "i"),
                                 lax.pmean(v, "i"), lax.all_gather(v, "i")),
                      axis_name="i")(X)
    s, mx, mn, mean, g = (np.asarray(o) for o in out)
    assert s.dtype == mx.dtype == mn.dtype == g.dtype == dtype
    assert mean.dtype == (np.float32 if dtype == np.int32 else dtype)
    np.testing.assert_array_equal(s[0], X.sum(0))
    np.testing.assert_array_equal(mx[0], X.max(0))
    np.testing.assert_array_equal(mn[0], X.min(0))
    np.testing.assert_allclose(mean[0], X.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(g[0], X)


@given(n=st.integers(1, 4), seed=st.integers(0, 2**31 - 1), groups=st.booleans())
def test_psum_counts_booleans_as_jax_does(n, seed, groups):
    # JAX's psum sums booleans as int32 counts; pmax and pmin keep them boolean
    X = np.random.default_rng(seed).random((n, 5)) < 0.5
    kw = {"axis_index_groups": [list(range(n))]} if groups else {}
    out = nanofn.vmap(lambda v: (lax.psum(v, "i", **kw), lax.pmean(v, "i"),
                                 lax.pmax(v, "i"), lax.pmin(v, "i"),
                                 lax.psum({"flag": True}, "i")), axis_name="i")(X)
    count, mean, mx, mn, const = (np.asarray(o) if not isinstance(o, dict) else o
                                  for o in out)
    assert count.dtype == np.int32 and mean.dtype == np.float32
    assert mx.dtype == mn.dtype == np.bool_
    np.testing.assert_array_equal(count[0], X.sum(0))
    np.testing.assert_allclose(mean[0], X.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(mx[0], X.any(0))
    np.testing.assert_array_equal(mn[0], X.all(0))
    assert np.asarray(const["flag"]).dtype == np.int32
    np.testing.assert_array_equal(np.asarray(const["flag"]), np.full(n, n))


# ------------------------------------------------------------------------ simulated devices


@pytest.fixture
def four_cpu_devices():
    nanofn.config.update("jax_num_cpu_devices", 4)
    yield
    nanofn.config.update("jax_num_cpu_devices", -1)


def test_asking_for_cpu_devices_as_jax_does(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_foo=1 --xla_force_host_platform_device_count=3")
    assert nanofn.local_device_count() == nanofn.device_count() == 3
    assert [(d.id, d.process_index) for d in nanofn.devices()] == [(0, 0), (1, 0), (2, 0)]
    assert nanofn.local_devices() == nanofn.devices()
    nanofn.config.update("jax_num_cpu_devices", 5)  # the config flag wins over XLA_FLAGS
    try:
        assert nanofn.device_count() == 5
    finally:
        nanofn.config.update("jax_num_cpu_devices", -1)
    monkeypatch.delenv("XLA_FLAGS")
    assert nanofn.device_count() == 1


@pytest.mark.usefixtures("four_cpu_devices")
@pytest.mark.parametrize("n", [1, 2, 4])
def test_pmap_over_simulated_devices_equals_vmap_with_the_axis_name(n):
    rng = np.random.default_rng(n)
    x, w = rng.normal(size=(n, 3, 2)), rng.normal(size=(2,))

    def f(v, w, power):
        g = nanofn.grad(lambda w: fnp.sum((v @ w) ** power))(w)
        return {"g": lax.pmean(g, "d"), "idx": lax.axis_index("d") + 0 * v[0, 0],
                "gather": lax.all_gather(v, "d", axis=1, tiled=True),
                "perm": lax.ppermute(v, "d", [(j, (j + 1) % n) for j in range(n)])}

    got = nanofn.pmap(f, axis_name="d", in_axes=(0, None, None),
                      static_broadcasted_argnums=2)(x, w, 2)
    want = nanofn.vmap(lambda v: f(v, w, 2), axis_name="d")(x)
    for name in want:
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(want[name]), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(got["g"][0]),
                               np.mean([2 * x[j].T @ (x[j] @ w) for j in range(n)], 0),
                               rtol=1e-12)
    summed = nanofn.pmap(lambda v: lax.psum(v, "d"), axis_name="d", out_axes=None)(x)
    np.testing.assert_allclose(np.asarray(summed), x.sum(0), rtol=1e-12)


@pytest.mark.usefixtures("four_cpu_devices")
def test_simulated_devices_errors_and_device_put():
    with pytest.raises(ValueError, match="mapped axis has size 5, but there are only 4"):
        nanofn.pmap(lambda v: v)(np.ones((5, 2)))
    with pytest.raises(ValueError, match="axis_size=3, but the mapped axis has size 2"):
        nanofn.pmap(lambda v: v, axis_size=3)(np.ones((2, 2)))
    tree = {"w": np.arange(3.0)}
    rep = nanofn.device_put_replicated(tree, nanofn.local_devices())
    np.testing.assert_array_equal(np.asarray(rep["w"]), np.stack([tree["w"]] * 4))
    assert not np.shares_memory(np.asarray(rep["w"]), tree["w"])
    shards = [{"w": np.full(2, float(j))} for j in range(4)]
    np.testing.assert_array_equal(
        np.asarray(nanofn.device_put_sharded(shards, nanofn.devices())["w"]),
        np.repeat(np.arange(4.0)[:, None], 2, 1))
    with pytest.raises(ValueError, match="one pytree per device \\(4\\)"):
        nanofn.device_put_sharded(shards[:3], nanofn.devices())


# ------------------------------------------------------------------------ index groups


@pytest.mark.parametrize("groups", [[[0, 2], [1, 3]], [[3, 0], [2, 1]], [[0], [1, 2, 3]]])
def test_reductions_within_index_groups(groups):
    X = np.random.default_rng(5).normal(size=(4, 3))
    member = {i: g for g in groups for i in g}

    def f(v):
        return {op: getattr(lax, op)(v, "i", axis_index_groups=groups)
                for op in ("psum", "pmax", "pmin")}

    got = nanofn.jit(nanofn.vmap(f, axis_name="i"))(X)
    for i in range(4):
        rows = X[member[i]]
        np.testing.assert_allclose(got["psum"][i], rows.sum(0), rtol=1e-12)
        np.testing.assert_array_equal(got["pmax"][i], rows.max(0))
        np.testing.assert_array_equal(got["pmin"][i], rows.min(0))
    check_grads(nanofn.vmap(lambda v: lax.psum(v * v, "i", axis_index_groups=groups),
                            axis_name="i"), (X,), order=2)


@pytest.mark.parametrize("groups", [[[0, 2], [1, 3]], [[3, 0], [2, 1]]])
@pytest.mark.parametrize("axis,tiled", [(0, False), (1, False), (0, True), (1, True)])
def test_gather_and_scatter_within_index_groups(groups, axis, tiled):
    X = np.random.default_rng(6).normal(size=(4, 2, 3))
    member = {i: g for g in groups for i in g}
    got = nanofn.vmap(lambda v: lax.all_gather(v, "i", axis_index_groups=groups, axis=axis,
                                               tiled=tiled), axis_name="i")(X)
    for i in range(4):
        want = (np.concatenate(list(X[member[i]]), axis) if tiled
                else np.moveaxis(X[member[i]], 0, axis))
        np.testing.assert_array_equal(got[i], want)
    scattered = nanofn.vmap(lambda v: lax.psum_scatter(v, "i", axis_index_groups=groups,
                                                       scatter_dimension=0, tiled=tiled),
                            axis_name="i")(X)
    for i in range(4):
        total = X[member[i]].sum(0)
        k = member[i].index(i)
        np.testing.assert_allclose(scattered[i], total[k:k + 1] if tiled else total[k],
                                   rtol=1e-12)
    check_grads(nanofn.vmap(lambda v: lax.all_gather(v, "i", axis_index_groups=groups),
                            axis_name="i"), (X,), order=1)
    assert float(nanofn.vmap(lambda v: lax.pmean(v, "i", axis_index_groups=groups),
                             axis_name="i")(np.arange(4.0))[0]) == np.mean(member[0])


def test_bad_index_groups_name_the_problem():
    vm = lambda f: nanofn.vmap(f, axis_name="i")  # noqa: E731
    with pytest.raises(ValueError, match=r"split the indices 0\.\.3 of axis 'i'"):
        vm(lambda v: lax.psum(v, "i", axis_index_groups=[[0, 1], [1, 2, 3]]))(np.ones(4))
    with pytest.raises(ValueError, match="all have the same size"):
        vm(lambda v: lax.all_gather(v, "i", axis_index_groups=[[0], [1, 2, 3]]))(np.ones(4))


@pytest.mark.usefixtures("four_cpu_devices")
def test_pmap_over_a_subset_of_the_simulated_devices():
    devs = nanofn.devices()[1:3]
    f = nanofn.pmap(lambda v: lax.psum(v, "d") + lax.axis_index("d"), axis_name="d",
                    devices=devs)
    np.testing.assert_array_equal(np.asarray(f(np.ones((2, 3)))), [[2.0] * 3, [3.0] * 3])
    with pytest.raises(ValueError, match="mapped axis has size 3, but devices names 2"):
        f(np.ones((3, 3)))
    with pytest.raises(ValueError, match="devices must be distinct"):
        nanofn.pmap(lambda v: v, devices=[devs[0], devs[0]])


def test_pmap_devices_on_one_device():
    f = nanofn.pmap(lambda v: 2 * v, devices=nanofn.devices())
    np.testing.assert_array_equal(np.asarray(f(np.ones((1, 2)))), [[2.0, 2.0]])
    from nanofn.distributed._state import CpuDevice
    with pytest.raises(ValueError, match="devices must be the devices"):
        nanofn.pmap(lambda v: v, devices=[CpuDevice(5, 0)])(np.ones((1, 2)))


def test_pswapaxes_and_pbroadcast():
    X = np.random.default_rng(7).normal(size=(3, 3, 2))
    vm = lambda f: nanofn.vmap(f, axis_name="i")  # noqa: E731
    swapped = vm(lambda v: lax.pswapaxes(v, "i", 0))(X)
    np.testing.assert_array_equal(np.asarray(swapped), np.swapaxes(X, 0, 1))
    got = vm(lambda v: lax.pbroadcast(v, "i", 1))(X)
    np.testing.assert_array_equal(np.asarray(got), np.stack([X[1]] * 3))
    g = nanofn.grad(lambda X: vm(lambda v: lax.pbroadcast(v, "i", 1))(X).sum())(X)
    np.testing.assert_array_equal(np.asarray(g), [np.zeros((3, 2)), 3 * np.ones((3, 2)),
                                                  np.zeros((3, 2))])
    check_grads(vm(lambda v: lax.pbroadcast(v * v, "i", 2)), (X,), order=2)
    with pytest.raises(ValueError, match=r"source must be an index of axis 'i' \(0\.\.2\)"):
        vm(lambda v: lax.pbroadcast(v, "i", 3))(X)


@pytest.mark.usefixtures("four_cpu_devices")
def test_simulated_pmap_takes_in_axes_with_dicts():
    f = nanofn.pmap(lambda d: lax.psum(d["a"], "i") + d["b"], axis_name="i",
                    in_axes=({"a": 0, "b": None},))
    out = f({"a": np.arange(6.0).reshape(2, 3), "b": np.ones(3)})
    np.testing.assert_array_equal(np.asarray(out), np.stack([[4.0, 6.0, 8.0]] * 2))
