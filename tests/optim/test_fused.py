"""The fused optimizer primitives `adam_update` and `momentum_update` (nanofn/optim/_fused.py).

* kernels against their numpy references, on hypothesis shapes (size 0 and 1,
  non-contiguous and negative-stride inputs), float32 and float64;
* the transforms (`scale_by_adam`, `trace`) and aliases (adam, adamw, nadam, sgd with
  momentum) give the same results through the primitives as through the plain array code,
  eager and under jit;
* derivatives (check_grads in float64, order 2, with respect to every operand including the
  bias corrections), grad through an optimizer step, and vmap against a loop;
* shape-rule errors.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as jnp
from nanofn import optim, tree_util
from nanofn._core import ShapedArray
from nanofn.optim import _fused
from nanofn.testing import check_grads, shapes

TOL = {np.float32: 2e-6, np.float64: 1e-13}


def strided(a, how):
    """`a`'s values as a view: 0 contiguous, 1 every other element, 2 reversed."""
    if a.ndim == 0 or how == 0:
        return a
    if how == 1:
        big = np.zeros((2 * a.shape[0],) + a.shape[1:], a.dtype)
        big[::2] = a
        return big[::2]
    return np.flip(np.flip(a, 0).copy(), 0)


HYPER = dict(b1=0.8, b2=0.95, eps=1e-6)


def bias_corrections(dtype, count):
    dt = np.dtype(dtype).type
    return [dt(1) - dt(b) ** dt(c) for b, c in ((0.8, count), (0.95, count), (0.8, count + 1))]


# ------------------------------------------------------------------------ kernels


@given(shape=shapes(max_dims=3, max_side=6), dtype=st.sampled_from([np.float32, np.float64]),
       nesterov=st.booleans(), eps_root=st.sampled_from([0.0, 1e-9]),
       layout=st.tuples(*[st.integers(0, 2)] * 3), seed=st.integers(0, 2**31 - 1),
       count=st.integers(1, 50))
def test_adam_kernel_matches_reference(shape, dtype, nesterov, eps_root, layout, seed, count):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(shape).astype(dtype)
    m = rng.standard_normal(shape).astype(dtype)
    v = np.abs(rng.standard_normal(shape)).astype(dtype)
    bc = bias_corrections(dtype, count)
    params = dict(HYPER, eps_root=eps_root, nesterov=nesterov)
    views = [strided(a, how) for a, how in zip((g, m, v), layout)]
    got = _fused.adam_update_p.impl(*views, *bc, **params)
    want = _fused.adam_update_reference(g, m, v, *bc, **params)
    for a, b in zip(got, want):
        assert a.dtype == dtype and a.shape == shape
        np.testing.assert_allclose(a, b, rtol=TOL[dtype], atol=0)
    # the array formula used by the batching rule agrees too
    formula = _fused._adam_formula(*[jnp.asarray(x) for x in (g, m, v, *bc)], **params)
    for a, b in zip(formula, want):
        np.testing.assert_allclose(np.asarray(a), b, rtol=4 * TOL[dtype], atol=0)


@given(shape=shapes(max_dims=3, max_side=6), dtype=st.sampled_from([np.float32, np.float64]),
       nesterov=st.booleans(), layout=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       seed=st.integers(0, 2**31 - 1))
def test_momentum_kernel_matches_reference(shape, dtype, nesterov, layout, seed):
    rng = np.random.default_rng(seed)
    g, t = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    views = [strided(a, how) for a, how in zip((g, t), layout)]
    got = _fused.momentum_update_p.impl(*views, decay=0.9, nesterov=nesterov)
    want = _fused.momentum_update_reference(g, t, decay=0.9, nesterov=nesterov)
    assert len(got) == len(want) == (2 if nesterov else 1)
    for a, b in zip(got, want):
        assert a.dtype == dtype and a.shape == shape
        np.testing.assert_allclose(a, b, rtol=TOL[dtype], atol=0)


def test_kernels_run_and_inputs_are_untouched(monkeypatch):
    calls = []
    for name in ("_adam_kernel", "_momentum_kernel", "_trace_kernel"):
        real = getattr(_fused, name)
        monkeypatch.setattr(_fused, name, lambda *a, real=real, name=name: (
            calls.append(name), real(*a))[1])
    g, m, v = np.ones(5), np.full(5, 0.5), np.full(5, 2.0)
    before = [a.copy() for a in (g, m, v)]
    _fused.adam_update_p.impl(g, m, v, *bias_corrections(np.float64, 3), **HYPER,
                              eps_root=0.0, nesterov=True)
    _fused.momentum_update_p.impl(g, m, decay=0.5, nesterov=False)
    _fused.momentum_update_p.impl(g, m, decay=0.5, nesterov=True)
    assert calls == ["_adam_kernel", "_trace_kernel", "_momentum_kernel"]
    for a, b in zip((g, m, v), before):
        np.testing.assert_array_equal(a, b)
    with nanofn.config._override("nanofn_use_kernels", False):  # the switch: numpy only
        _fused.momentum_update_p.impl(g, m, decay=0.5, nesterov=True)
    assert len(calls) == 3


# ------------------------------------------------------------------------ the transforms


def tree(rng, dtype):
    """Leaves above and below the fusion limit, of one dtype."""
    return {"w": jnp.asarray(rng.standard_normal((70, 90)), dtype=dtype),
            "b": jnp.asarray(rng.standard_normal(7), dtype=dtype),
            "s": jnp.asarray(rng.standard_normal(()), dtype=dtype)}


OPTIMIZERS = {
    "adam": lambda: optim.adam(0.01, b1=0.8, b2=0.95, eps=1e-6),
    "nadam": lambda: optim.nadam(0.01, eps_root=1e-9),
    "adamw": lambda: optim.adamw(0.01, weight_decay=0.1),
    "sgd_momentum": lambda: optim.sgd(0.01, momentum=0.9),
    "sgd_nesterov": lambda: optim.sgd(0.01, momentum=0.9, nesterov=True),
}


def run_steps(opt, params, grads, step=None):
    def one(params, state, g):
        u, state = opt.update(g, state, params)
        return optim.apply_updates(params, u), state

    step = step or one
    state = opt.init(params)
    for g in grads:
        params, state = step(params, state, g)
    return params, state


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_equals_plain_eager_and_jit(name, dtype, monkeypatch):
    rng = np.random.default_rng(3)
    params = tree(rng, dtype)
    grads = [tree(rng, dtype) for _ in range(3)]
    opt = OPTIMIZERS[name]()
    with nanofn.config._override("nanofn_use_kernels", False):
        plain = run_steps(opt, params, grads)
    prim = "adam_update" if "adam" in name else "momentum_update"
    jaxpr = nanofn.make_jaxpr(lambda g, s: opt.update(g, s, params))(grads[0], opt.init(params))
    assert prim not in str(jaxpr)  # inside jit the plan's fusion handles the plain code
    monkeypatch.setattr(_fused, "FUSE_UNDER_JIT", True)
    jaxpr = nanofn.make_jaxpr(lambda g, s: opt.update(g, s, params))(grads[0], opt.init(params))
    assert str(jaxpr).count(prim) == 3  # one per leaf
    results = {"eager": run_steps(opt, params, grads)}

    def jstep(params, state, g):
        u, state = opt.update(g, state, params)
        return optim.apply_updates(params, u), state

    results["jit, primitive"] = run_steps(opt, params, grads, nanofn.jit(jstep))
    monkeypatch.setattr(_fused, "FUSE_UNDER_JIT", False)
    results["jit, plain"] = run_steps(opt, params, grads, nanofn.jit(jstep))
    for what, got in results.items():
        for a, b in zip(tree_util.tree_leaves(got), tree_util.tree_leaves(plain)):
            assert a.dtype == b.dtype, what
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=4 * TOL[dtype],
                                       atol=1e-30, err_msg=what)


def test_plain_code_for_mixed_dtypes_and_traced_hyperparameters(monkeypatch):
    rng = np.random.default_rng(0)
    p = jnp.asarray(rng.standard_normal(5000), dtype=np.float64)
    tx = optim.scale_by_adam(mu_dtype=np.float32)  # moments of another dtype: plain code
    state = tx.init(p)
    assert not _fused.use_adam_update([(p, state.mu, state.nu)], 0.9, 0.999, 1e-8, 0.0)
    assert _fused.use_adam_update([(p, state.nu, state.nu)], 0.9, 0.999, 1e-8, 0.0)
    assert not _fused.use_adam_update([(p, state.nu, state.nu)], jnp.asarray(0.9), 0.999,
                                      1e-8, 0.0)
    monkeypatch.setattr(_fused, "MIN_FUSED_SIZE", 100)
    assert not _fused.use_momentum_update([(p[:10], p[:10])], 0.9)  # below the limit
    assert _fused.use_momentum_update([(p[:10], p[:10])] * 10, 0.9)  # the tree is not
    u, state = tx.update(p, state)
    assert state.mu.dtype == np.float32 and u.dtype == np.float64
    with nanofn.config._override("nanofn_use_kernels", False):
        assert not _fused.use_momentum_update([(p, p)], 0.9)


# ------------------------------------------------------------------------ derivatives


def adam_args(rng, shape=(3, 2), count=4):
    g = rng.standard_normal(shape)
    m = rng.standard_normal(shape)
    v = np.abs(rng.standard_normal(shape)) + 0.5
    return (g, m, v, *[np.float64(b) for b in bias_corrections(np.float64, count)])


@pytest.mark.parametrize("nesterov", [False, True])
def test_adam_update_grads(nesterov):
    args = adam_args(np.random.default_rng(1))

    def f(*args):
        return _fused.adam_update(*args, **HYPER, eps_root=1e-3, nesterov=nesterov)

    check_grads(f, args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_update_grads(nesterov):
    rng = np.random.default_rng(2)
    args = (rng.standard_normal((4,)), rng.standard_normal((4,)))
    check_grads(lambda g, t: _fused.momentum_update(g, t, decay=0.7, nesterov=nesterov), args,
                order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name", ["adam", "nadam", "sgd_nesterov"])
def test_grad_through_an_optimizer_step(name, monkeypatch):
    """Meta-learning: d/d(params) of the loss after two updates, fused vs plain."""
    rng = np.random.default_rng(4)
    params = {"w": jnp.asarray(rng.standard_normal((4, 3))), "b": jnp.asarray(np.ones(3))}
    x = rng.standard_normal((5, 4))
    opt = OPTIMIZERS[name]()

    def loss(p):
        return jnp.sum(jnp.tanh(x @ p["w"] + p["b"]) ** 2)

    def after_step(p):
        state = opt.init(p)
        for _ in range(2):
            u, state = opt.update(nanofn.grad(loss)(p), state, p)
            p = optim.apply_updates(p, u)
        return loss(p)

    jaxpr = str(nanofn.make_jaxpr(nanofn.grad(after_step))(params))
    fused = nanofn.grad(after_step)(params)
    with nanofn.config._override("nanofn_use_kernels", False):
        plain = nanofn.grad(after_step)(params)
    monkeypatch.setattr(_fused, "FUSE_UNDER_JIT", True)
    jitted = nanofn.jit(nanofn.grad(after_step))
    assert "_update" in str(nanofn.make_jaxpr(nanofn.grad(after_step))(params))
    for got in (fused, jitted(params), jitted(params)):
        for a, b in zip(tree_util.tree_leaves(got), tree_util.tree_leaves(plain)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)
    assert "_update" not in jaxpr  # make_jaxpr stages out: the plain code, as under jit


def test_grad_of_eager_step_binds_the_primitive(monkeypatch):
    seen = []
    real = _fused.adam_update_p.bind
    monkeypatch.setattr(_fused.adam_update_p, "bind",
                        lambda *a, **k: (seen.append(1), real(*a, **k))[1])
    opt = optim.adam(0.1)
    p = jnp.asarray(np.linspace(-1, 1, 6))
    nanofn.grad(lambda p: jnp.sum(optim.apply_updates(p, opt.update(p, opt.init(p))[0])))(p)
    assert seen


# ------------------------------------------------------------------------ vmap


@pytest.mark.parametrize("dims", [(0, None, None), (1, 1, 1), (None, 0, 1)])
@pytest.mark.parametrize("nesterov", [False, True])
def test_adam_update_vmap(dims, nesterov):
    rng = np.random.default_rng(5)
    size, shape = 3, (2, 4)

    def make(d):
        if d is None:
            return rng.standard_normal(shape)
        s = list(shape)
        s.insert(d, size)
        return np.abs(rng.standard_normal(s)) + 0.1

    g, m, v = (make(d) for d in dims)
    bc = [np.float64(b) for b in bias_corrections(np.float64, 2)]

    def f(g, m, v):
        return _fused.adam_update(g, m, v, *bc, **HYPER, nesterov=nesterov)

    got = nanofn.vmap(f, in_axes=dims)(g, m, v)
    for i in range(size):
        take = [a if d is None else np.take(a, i, axis=d) for a, d in zip((g, m, v), dims)]
        want = _fused.adam_update_reference(*take, *bc, **HYPER, eps_root=0.0,
                                            nesterov=nesterov)
        for a, b in zip(got, want):
            np.testing.assert_allclose(np.asarray(a)[i], b, rtol=1e-13)


def test_vmap_over_step_counts_and_momentum():
    """A batch of optimizer states with different counts batches the bias corrections."""
    rng = np.random.default_rng(6)
    g = rng.standard_normal((3, 5))
    tx = optim.scale_by_adam(b1=0.8, b2=0.95, eps=1e-6, nesterov=True)
    states = [tx.init(jnp.asarray(g[0])) for _ in range(3)]
    for i, s in enumerate(states):  # step i + 1 times
        for _ in range(i + 1):
            _, s = tx.update(jnp.asarray(g[i]), s)
        states[i] = s
    stacked = tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)
    got, _ = nanofn.vmap(tx.update)(jnp.asarray(g), stacked)
    for i, s in enumerate(states):
        want, _ = tx.update(jnp.asarray(g[i]), s)
        np.testing.assert_allclose(np.asarray(got)[i], np.asarray(want), rtol=1e-12)
    trace = optim.trace(0.9, nesterov=True)
    t = jnp.asarray(rng.standard_normal(5))
    got = nanofn.vmap(lambda g: trace.update(g, trace.init(t)._replace(trace=t))[0])(g)
    np.testing.assert_allclose(np.asarray(got), g + 0.9 * (g + 0.9 * np.asarray(t)),
                               rtol=1e-13)


# ------------------------------------------------------------------------ errors


def test_shape_rule_errors():
    f32, f64 = ShapedArray((3,), np.float32), ShapedArray((3,), np.float64)
    s32 = ShapedArray((), np.float32)
    ok = dict(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, nesterov=False)
    assert _fused.adam_update_p.abstract_eval(f32, f32, f32, s32, s32, s32, **ok)[0] == f32
    with pytest.raises(TypeError, match="nu must have the shape and dtype of g"):
        _fused.adam_update_p.abstract_eval(f32, f32, f64, s32, s32, s32, **ok)
    with pytest.raises(TypeError, match="bc2 must be a scalar of dtype float32"):
        _fused.adam_update_p.abstract_eval(f32, f32, f32, s32, f32, s32, **ok)
    with pytest.raises(TypeError, match="g must be float32 or float64"):
        i32 = ShapedArray((3,), np.int32)
        _fused.momentum_update_p.abstract_eval(i32, i32, decay=0.9, nesterov=False)
    with pytest.raises(TypeError, match="parameter decay must be a Python number"):
        _fused.momentum_update_p.abstract_eval(f32, f32, decay=np.ones(2), nesterov=False)
    # eager calls check before any kernel runs (a shorter operand is never read past its end)
    with pytest.raises(TypeError, match="trace must have the shape"):
        _fused.momentum_update(jnp.ones(5), jnp.ones(4), decay=0.9)
    with pytest.raises(TypeError, match="trace must have the shape"):
        _fused.momentum_update_p.impl(np.ones(5), np.ones(4, np.float32), decay=0.9,
                                      nesterov=True)
    bc = [np.float32(0.5)] * 3
    with pytest.raises(TypeError, match="mu must have the shape"):
        _fused.adam_update(jnp.ones(5), jnp.ones(2), jnp.ones(5), *bc, b1=0.9, b2=0.9, eps=0.1)
    with pytest.raises(TypeError, match="bc1 must be a scalar of dtype float32"):
        _fused.adam_update_p.impl(*[np.ones(5, np.float32)] * 3, np.ones(2, np.float32),
                                  *bc[1:], **ok)
