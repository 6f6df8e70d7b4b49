"""Combinators: chain, named_chain, masked, multi_transform, inject_hyperparams,
apply_if_finite, MultiSteps and lookahead."""

import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nanofn
import nanofn.numpy as jnp
from nanofn import optim, tree_util


def _np(x):
    return np.asarray(x, dtype=np.float64)


def _assert_trees_close(a, b, rtol=1e-6, atol=1e-7):
    la, da = tree_util.tree_flatten(a)
    lb, db = tree_util.tree_flatten(b)
    assert da == db
    for x, y in zip(la, lb):
        np.testing.assert_allclose(_np(x), _np(y), rtol=rtol, atol=atol)


# --- chain -------------------------------------------------------------------------------


@given(g=hnp.arrays(np.float64, (5,), elements=st.floats(-10, 10)))
def test_chain_applies_in_order(g):
    x = jnp.asarray(g)
    clip_then_scale = optim.chain(optim.clip(1.0), optim.scale(3.0))
    scale_then_clip = optim.chain(optim.scale(3.0), optim.clip(1.0))
    u1, _ = clip_then_scale.update(x, clip_then_scale.init(x))
    u2, _ = scale_then_clip.update(x, scale_then_clip.init(x))
    np.testing.assert_allclose(_np(u1), 3.0 * np.clip(g, -1, 1))
    np.testing.assert_allclose(_np(u2), np.clip(3.0 * g, -1, 1))


def test_chain_state_is_a_tuple_of_the_inner_states():
    tx = optim.chain(optim.scale_by_adam(), optim.trace(0.9), optim.scale(-1.0))
    state = tx.init(jnp.zeros(2))
    assert isinstance(state, tuple) and len(state) == 3
    assert isinstance(state[0], optim.ScaleByAdamState)
    assert isinstance(state[1], optim.TraceState) and state[2] == optim.EmptyState()


def test_chain_equals_manual_composition():
    a, b = optim.scale_by_adam(), optim.trace(0.5)
    tx = optim.chain(a, b)
    p = jnp.zeros(3)
    state, sa, sb = tx.init(p), a.init(p), b.init(p)
    for g in ([1.0, -2.0, 0.5], [0.3, 0.1, -4.0]):
        g = jnp.asarray(g)
        u, state = tx.update(g, state)
        ua, sa = a.update(g, sa)
        ub, sb = b.update(ua, sb)
        _assert_trees_close(u, ub)


def test_chain_rejects_wrong_state_and_uncalled_aliases():
    tx = optim.chain(optim.scale(1.0), optim.scale(2.0))
    with pytest.raises(ValueError, match="length 2"):
        tx.update(jnp.ones(1), (optim.EmptyState(),))
    with pytest.raises(TypeError, match="adam"):
        optim.chain(optim.adam)


def test_chain_passes_extra_args_to_every_member():
    seen = []

    def update(updates, state, params=None, *, loss, **extra):
        seen.append(float(loss))
        return updates, state

    needs_loss = optim.GradientTransformation(optim.init_empty_state, update)
    tx = optim.chain(needs_loss, optim.scale(1.0), needs_loss)
    tx.update(jnp.ones(1), tx.init(None), loss=jnp.asarray(2.5))
    assert seen == [2.5, 2.5]


def test_named_chain_keys_the_state_by_name():
    tx = optim.named_chain(("clip", optim.clip(0.5)), ("momentum", optim.trace(0.9)))
    state = tx.init(jnp.zeros(2))
    u, state = tx.update(jnp.array([2.0, -0.1]), state)
    np.testing.assert_allclose(_np(u), [0.5, -0.1])
    np.testing.assert_allclose(_np(state["momentum"].trace), [0.5, -0.1])
    with pytest.raises(ValueError, match="distinct"):
        optim.named_chain(("a", optim.scale(1.0)), ("a", optim.scale(2.0)))


# --- masked --------------------------------------------------------------------------------


PARAMS = {"dense": {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}, "norm": {"scale": jnp.ones(2)}}


def test_masked_updates_only_masked_leaves_and_keeps_state_for_them():
    mask = {"dense": {"w": True, "b": False}, "norm": {"scale": False}}
    tx = optim.masked(optim.sgd(0.1, momentum=0.9), mask)
    state = tx.init(PARAMS)
    trace_leaves = tree_util.tree_leaves(state.inner_state[0].trace)
    assert len(trace_leaves) == 1 and trace_leaves[0].shape == (2, 2)
    grads = tree_util.tree_map(lambda p: 2 * jnp.ones_like(p), PARAMS)
    u, state = tx.update(grads, state, PARAMS)
    np.testing.assert_allclose(_np(u["dense"]["w"]), -0.2)
    np.testing.assert_allclose(_np(u["dense"]["b"]), 2.0)  # passed through untouched
    np.testing.assert_allclose(_np(u["norm"]["scale"]), 2.0)


def test_masked_accepts_a_prefix_mask_and_a_mask_function():
    grads = tree_util.tree_map(jnp.ones_like, PARAMS)
    for mask in ({"dense": True, "norm": False},
                 lambda tree: {"dense": True, "norm": False}):
        tx = optim.masked(optim.scale(5.0), mask)
        u, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
        np.testing.assert_allclose(_np(u["dense"]["w"]), 5.0)
        np.testing.assert_allclose(_np(u["dense"]["b"]), 5.0)
        np.testing.assert_allclose(_np(u["norm"]["scale"]), 1.0)


def test_masked_weight_decay_skips_biases():
    tx = optim.adamw(0.1, weight_decay=0.5,
                     mask=lambda p: tree_util.tree_map(lambda x: x.ndim > 1, p))
    plain = optim.adam(0.1)
    grads = tree_util.tree_map(jnp.ones_like, PARAMS)
    u, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
    v, _ = plain.update(grads, plain.init(PARAMS), PARAMS)
    np.testing.assert_allclose(_np(u["dense"]["b"]), _np(v["dense"]["b"]), rtol=1e-6)
    np.testing.assert_allclose(_np(u["dense"]["w"]), _np(v["dense"]["w"]) - 0.1 * 0.5,
                               rtol=1e-6)


def test_masked_mismatch_names_missing_and_extra_keys():
    tx = optim.masked(optim.scale(2.0), {"dense": True, "normalisation": False})
    with pytest.raises(ValueError) as info:
        tx.init(PARAMS)
    msg = str(info.value)
    assert "masked" in msg and "'normalisation'" in msg and "'norm'" in msg


def test_masked_nested_in_masked():
    inner = optim.masked(optim.scale(3.0), {"dense": {"w": True, "b": False}, "norm": True})
    tx = optim.masked(inner, {"dense": True, "norm": False})
    grads = tree_util.tree_map(jnp.ones_like, PARAMS)
    u, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
    np.testing.assert_allclose(_np(u["dense"]["w"]), 3.0)
    np.testing.assert_allclose(_np(u["dense"]["b"]), 1.0)
    np.testing.assert_allclose(_np(u["norm"]["scale"]), 1.0)


# --- multi_transform ----------------------------------------------------------------------


def test_multi_transform_routes_each_label():
    labels = {"dense": {"w": "adam", "b": "sgd"}, "norm": "frozen"}
    tx = optim.multi_transform(
        {"adam": optim.adam(0.1), "sgd": optim.sgd(0.5), "frozen": optim.set_to_zero()}, labels)
    grads = tree_util.tree_map(lambda p: 2 * jnp.ones_like(p), PARAMS)
    state = tx.init(PARAMS)
    assert sorted(state.inner_states) == ["adam", "frozen", "sgd"]
    u, state = tx.update(grads, state, PARAMS)
    np.testing.assert_allclose(_np(u["dense"]["w"]), -0.1, rtol=1e-5)  # adam's first step
    np.testing.assert_allclose(_np(u["dense"]["b"]), -1.0)
    np.testing.assert_allclose(_np(u["norm"]["scale"]), 0.0)
    adam_counts = [x for x in tree_util.tree_leaves(state.inner_states["adam"])
                   if x.dtype == np.int32]
    assert [int(c) for c in adam_counts] == [1]


def test_multi_transform_with_a_label_function():
    tx = optim.multi_transform(
        {"matrix": optim.scale(2.0), "vector": optim.scale(-1.0)},
        lambda p: tree_util.tree_map(lambda x: "matrix" if x.ndim == 2 else "vector", p))
    grads = tree_util.tree_map(jnp.ones_like, PARAMS)
    u, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
    np.testing.assert_allclose(_np(u["dense"]["w"]), 2.0)
    np.testing.assert_allclose(_np(u["norm"]["scale"]), -1.0)


def test_multi_transform_errors_name_the_labels_and_keys():
    tx = optim.multi_transform({"a": optim.sgd(1.0)}, {"dense": "a", "norm": "b"})
    with pytest.raises(ValueError, match="'b'"):
        tx.init(PARAMS)
    tx = optim.multi_transform({"a": optim.sgd(1.0)}, {"dense": "a"})
    with pytest.raises(ValueError) as info:
        tx.init(PARAMS)
    assert "param_labels" in str(info.value) and "'norm'" in str(info.value)


# --- inject_hyperparams --------------------------------------------------------------------


@pytest.mark.parametrize("factory, kwargs", [
    (optim.adam, dict(learning_rate=0.1, b1=0.8)),
    (optim.sgd, dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
    (optim.adamw, dict(learning_rate=0.1, weight_decay=0.01)),
    (optim.rmsprop, dict(learning_rate=0.01, centered=True)),
    (optim.lamb, dict(learning_rate=0.01)),
    (optim.fromage, dict(learning_rate=0.1)),
    (optim.adafactor, dict(learning_rate=0.1)),
])
def test_inject_hyperparams_matches_the_plain_transformation(factory, kwargs):
    static = ("min_dim_size_to_factor",) if factory is optim.adafactor else ()
    plain = factory(**kwargs)
    injected = optim.inject_hyperparams(factory, static_args=static)(**kwargs)
    params = [jnp.ones((2, 3)), -jnp.ones(4)]
    s1, s2 = plain.init(params), injected.init(params)
    for step in range(3):
        grads = [jnp.full((2, 3), 0.5 + step), jnp.full((4,), -1.0 + step)]
        u1, s1 = plain.update(grads, s1, params)
        u2, s2 = injected.update(grads, s2, params)
        _assert_trees_close(u1, u2, rtol=1e-5)
        _assert_trees_close(s1, s2.inner_state, rtol=1e-5)
    assert int(s2.count) == 3
    assert float(s2.hyperparams["learning_rate"]) == pytest.approx(kwargs["learning_rate"])


def test_inject_hyperparams_learning_rate_can_be_read_and_changed():
    opt = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1)
    state = opt.init(jnp.zeros(1))
    u, state = opt.update(jnp.ones(1), state)
    assert float(u[0]) == pytest.approx(-0.1)
    state.hyperparams["learning_rate"] = jnp.asarray(0.01)
    u, state = opt.update(jnp.ones(1), state)
    assert float(u[0]) == pytest.approx(-0.01)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.01)


def test_inject_hyperparams_evaluates_schedules_and_works_under_jit():
    sched = optim.linear_schedule(1.0, 0.0, transition_steps=4)
    opt = optim.inject_hyperparams(optim.sgd)(learning_rate=sched)
    update = nanofn.jit(opt.update)
    state = opt.init(jnp.zeros(1))
    seen = []
    for _ in range(3):
        u, state = update(jnp.ones(1), state)
        seen.append((float(u[0]), float(state.hyperparams["learning_rate"])))
    assert seen == [(-1.0, 1.0), (-0.75, 0.75), (-0.5, 0.5)]


def test_inject_hyperparams_keeps_dtypes_of_a_mixed_tree():
    opt = optim.inject_hyperparams(optim.adam)(learning_rate=0.1)
    params = {"a": jnp.ones(2, dtype=np.float32), "b": jnp.ones(2, dtype=np.float64)}
    state = opt.init(params)
    assert state.hyperparams["learning_rate"].dtype == np.float64
    u, new_state = opt.update(tree_util.tree_map(jnp.ones_like, params), state, params)
    assert u["a"].dtype == np.float32 and u["b"].dtype == np.float64
    for x, y in zip(tree_util.tree_leaves(state), tree_util.tree_leaves(new_state)):
        assert x.dtype == y.dtype


def test_inject_hyperparams_rejects_unknown_static_args_and_bad_values():
    with pytest.raises(ValueError, match="not_an_arg"):
        optim.inject_hyperparams(optim.adam, static_args="not_an_arg")
    with pytest.raises(ValueError, match="b1"):
        optim.inject_hyperparams(optim.adam)(learning_rate=0.1, b1=2.0)


# --- apply_if_finite ---------------------------------------------------------------------


def test_apply_if_finite_skips_and_counts_non_finite_updates():
    inner = optim.sgd(0.1, momentum=0.9)
    tx = optim.apply_if_finite(inner, max_consecutive_errors=2)
    p = jnp.zeros(2)
    state = tx.init(p)
    u, state = tx.update(jnp.array([1.0, 1.0]), state, p)
    trace_after_good = _np(state.inner_state[0].trace)
    for i, bad in enumerate(([np.nan, 1.0], [1.0, np.inf])):
        u, state = tx.update(jnp.asarray(bad), state, p)
        np.testing.assert_array_equal(_np(u), [0.0, 0.0])
        np.testing.assert_array_equal(_np(state.inner_state[0].trace), trace_after_good)
        assert not bool(state.last_finite)
        assert int(state.notfinite_count) == i + 1 and int(state.total_notfinite) == i + 1
    u, state = tx.update(jnp.array([1.0, 1.0]), state, p)
    np.testing.assert_allclose(_np(u), -0.1 * (1.0 + 0.9 * 1.0))
    assert int(state.notfinite_count) == 0 and int(state.total_notfinite) == 2
    assert bool(state.last_finite)


def test_apply_if_finite_gives_up_after_max_consecutive_errors():
    tx = optim.apply_if_finite(optim.sgd(1.0), max_consecutive_errors=1)
    state = tx.init(jnp.zeros(1))
    u1, state = tx.update(jnp.array([np.nan]), state)
    u2, state = tx.update(jnp.array([np.nan]), state)
    assert float(u1[0]) == 0.0 and np.isnan(float(u2[0]))
    assert int(state.total_notfinite) == 2


def test_apply_if_finite_under_jit():
    tx = optim.apply_if_finite(optim.adam(0.1), max_consecutive_errors=5)
    update = nanofn.jit(tx.update)
    state = tx.init(jnp.zeros(2))
    u, state = update(jnp.array([np.nan, 1.0]), state)
    np.testing.assert_array_equal(_np(u), [0.0, 0.0])
    assert int(state.total_notfinite) == 1 and int(state.inner_state[0].count) == 0
    u, state = update(jnp.array([1.0, 1.0]), state)
    np.testing.assert_allclose(_np(u), [-0.1, -0.1], rtol=1e-5)


# --- MultiSteps -------------------------------------------------------------------------------


def _linear_problem(seed=0, n=12, d=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=n)


def _loss(w, x, y):
    r = jnp.matmul(x, w) - y
    return jnp.mean(r * r)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("make_opt", [lambda: optim.sgd(0.1, momentum=0.5),
                                      lambda: optim.adam(0.05)], ids=["sgd", "adam"])
def test_multisteps_equals_a_k_times_larger_batch(k, make_opt):
    rows, steps = 3, 4  # mini-batches of 3 rows; k of them make one big batch
    x, y = _linear_problem(n=rows * k * steps)
    opt = make_opt()
    ms = optim.MultiSteps(make_opt(), every_k_schedule=k)
    grad = nanofn.grad(_loss)
    w_big = w_acc = jnp.zeros(3)
    s_big, s_acc = opt.init(w_big), ms.init(w_acc)
    for step in range(steps):
        big = slice(step * rows * k, (step + 1) * rows * k)
        u, s_big = opt.update(grad(w_big, jnp.asarray(x[big]), jnp.asarray(y[big])), s_big)
        w_big = optim.apply_updates(w_big, u)
        for j in range(k):
            small = slice(big.start + j * rows, big.start + (j + 1) * rows)
            g = grad(w_acc, jnp.asarray(x[small]), jnp.asarray(y[small]))
            u, s_acc = ms.update(g, s_acc)
            if j < k - 1:
                np.testing.assert_array_equal(_np(u), 0.0)
                assert not bool(ms.has_updated(s_acc))
            w_acc = optim.apply_updates(w_acc, u)
        assert bool(ms.has_updated(s_acc))
        np.testing.assert_allclose(_np(w_acc), _np(w_big), rtol=1e-5, atol=1e-6)
    assert int(s_acc.gradient_step) == steps


def test_multisteps_sum_and_gradient_transformation_under_jit():
    ms = optim.MultiSteps(optim.sgd(1.0), every_k_schedule=2, use_grad_mean=False)
    tx = ms.gradient_transformation()
    update = nanofn.jit(tx.update)
    state = tx.init(jnp.zeros(1))
    u1, state = update(jnp.array([1.0]), state)
    u2, state = update(jnp.array([2.0]), state)
    assert float(u1[0]) == 0.0 and float(u2[0]) == -3.0
    assert int(state.mini_step) == 0 and float(state.acc_grads[0]) == 0.0


def test_multisteps_skips_non_finite_mini_batches():
    ms = optim.MultiSteps(optim.sgd(1.0), every_k_schedule=2,
                          should_skip_update_fn=optim.skip_not_finite)
    state = ms.init(jnp.zeros(1))
    u, state = ms.update(jnp.array([1.0]), state)
    u, state = ms.update(jnp.array([np.nan]), state)  # skipped: not accumulated
    assert float(u[0]) == 0.0 and int(state.mini_step) == 1
    assert int(state.skip_state["num_not_finite"]) == 1
    u, state = ms.update(jnp.array([3.0]), state)
    assert float(u[0]) == -2.0


def test_skip_large_updates():
    skip = functools.partial(optim.skip_large_updates, max_squared_norm=4.0)
    should, info = skip(jnp.array([1.0, 1.0]), 0, None)
    assert not bool(should) and float(info["norm_squared"]) == pytest.approx(2.0)
    should, _ = skip(jnp.array([3.0, 0.0]), 0, None)
    assert bool(should)


# --- lookahead --------------------------------------------------------------------------------


def test_lookahead_matches_its_definition():
    fast_opt = optim.sgd(0.1)
    tx = optim.lookahead(fast_opt, sync_period=3, slow_step_size=0.5)
    grad = nanofn.grad(lambda w: jnp.sum((w - 2.0) ** 2))
    params = optim.LookaheadParams.init_synced(jnp.array([0.0, 1.0]))
    state = tx.init(params)
    fast = slow = np.array([0.0, 1.0])
    for step in range(7):
        u, state = tx.update(grad(params.fast), state, params)
        params = optim.apply_updates(params, u)
        fast = fast - 0.1 * 2 * (fast - 2.0)  # the fast optimizer's step
        if step % 3 == 2:  # sync: slow moves half-way to fast, fast restarts from slow
            slow = slow + 0.5 * (fast - slow)
            fast = slow
        np.testing.assert_allclose(_np(params.fast), fast, rtol=1e-6)
        np.testing.assert_allclose(_np(params.slow), slow, rtol=1e-6)


def test_lookahead_requires_lookahead_params():
    tx = optim.lookahead(optim.sgd(0.1), sync_period=2, slow_step_size=0.5)
    state = tx.init(jnp.zeros(1))
    with pytest.raises(ValueError, match="LookaheadParams"):
        tx.update(jnp.ones(1), state, jnp.zeros(1))
    with pytest.raises(ValueError, match="sync_period"):
        optim.lookahead(optim.sgd(0.1), sync_period=0, slow_step_size=0.5)
