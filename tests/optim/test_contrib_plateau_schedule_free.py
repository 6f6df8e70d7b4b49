"""optax.contrib's reduce_on_plateau and schedule-free optimizers: state transitions (the
cases of optax's _reduce_on_plateau_test.py and _schedule_free_test.py), dtypes,
eager-vs-jit equality, use inside chain, and argument errors."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim, tree_util

contrib = optim.contrib


def _fields(state):
    return {k: np.asarray(v) for k, v in state._asdict().items()}


# --- reduce_on_plateau -------------------------------------------------------------------


def _plateau_state(**kw):
    base = dict(scale=jnp.asarray(0.1), best_value=jnp.asarray(1.0),
                plateau_count=jnp.asarray(0, dtype=jnp.int32),
                cooldown_count=jnp.asarray(0, dtype=jnp.int32),
                count=jnp.asarray(0, dtype=jnp.int32), avg_value=jnp.asarray(0.0))
    base.update({k: jnp.asarray(v, dtype=base[k].dtype) for k, v in kw.items()})
    return contrib.ReduceLROnPlateauState(**base)


def test_plateau_reduces_after_patience_then_cools_down():
    tx = contrib.reduce_on_plateau(factor=0.1, patience=5, cooldown=5)
    state = tx.init({"params": jnp.zeros(())})
    assert _fields(state)["scale"] == 1.0 and np.isinf(_fields(state)["best_value"])
    updates = {"params": jnp.asarray(1.0)}
    for _ in range(6):  # one improvement (from inf) then 5 checks without one
        u, state = tx.update(updates, state, value=jnp.asarray(1.0))
    f = _fields(state)
    assert np.isclose(f["scale"], 0.1) and f["best_value"] == 1.0
    assert f["plateau_count"] == 0 and f["cooldown_count"] == 5
    assert np.isclose(float(u["params"]), 0.1)
    u, state = tx.update(u, state, value=jnp.asarray(1.0))
    f = _fields(state)
    assert np.isclose(f["scale"], 0.1) and f["cooldown_count"] == 4
    assert f["plateau_count"] == 0


def test_plateau_improvement_resets_count():
    tx = contrib.reduce_on_plateau(patience=5)
    state = _plateau_state(plateau_count=3)
    _, state = tx.update({"p": jnp.asarray(1.0)}, state, value=0.1)
    f = _fields(state)
    assert f["plateau_count"] == 0 and np.isclose(f["best_value"], 0.1)
    assert np.isclose(f["scale"], 0.1)


def test_plateau_in_cooldown_counts_down_without_reducing():
    tx = contrib.reduce_on_plateau(patience=5, cooldown=5)
    state = _plateau_state(plateau_count=4, cooldown_count=3)
    _, state = tx.update({"p": jnp.asarray(1.0)}, state, value=2.0)
    f = _fields(state)
    assert np.isclose(f["scale"], 0.1) and f["best_value"] == 1.0
    assert f["plateau_count"] == 0 and f["cooldown_count"] == 2


def test_plateau_stops_at_min_scale():
    tx = contrib.reduce_on_plateau(factor=0.1, patience=2, min_scale=0.01)
    state = _plateau_state(scale=0.01, plateau_count=1)
    u, state = tx.update({"p": jnp.asarray(1.0)}, state, value=1.0)
    assert np.isclose(_fields(state)["scale"], 0.01)
    assert np.isclose(float(u["p"]), 0.01)


def test_plateau_accumulates_values():
    tx = contrib.reduce_on_plateau(patience=1, factor=0.5, accumulation_size=2)
    state = tx.init(jnp.zeros(2))
    _, state = tx.update(jnp.ones(2), state, value=1.0)
    f = _fields(state)
    assert f["count"] == 1 and f["avg_value"] == 1.0 and np.isinf(f["best_value"])
    _, state = tx.update(jnp.ones(2), state, value=3.0)  # mean 2 is the first best
    f = _fields(state)
    assert f["count"] == 0 and f["avg_value"] == 0.0 and f["best_value"] == 2.0
    for v in (2.5, 1.5):  # mean 2: no improvement, patience 1 -> halve
        _, state = tx.update(jnp.ones(2), state, value=v)
    assert _fields(state)["scale"] == 0.5


def test_plateau_dtypes_and_jit_match_eager():
    params = {"a": jnp.zeros(3, dtype=jnp.float16), "b": jnp.zeros((2, 2))}
    tx = optim.chain(optim.sgd(0.1), contrib.reduce_on_plateau(factor=0.5, patience=1))
    values = [3.0, 2.0, 2.0, 2.0, 1.0, 1.0]
    grads = {"a": jnp.ones(3, dtype=jnp.float16), "b": jnp.ones((2, 2))}

    def step(state, value):
        return tx.update(grads, state, params, value=value)

    jitted = nanofn.jit(step)
    s_eager = s_jit = tx.init(params)
    for v in values:
        u_eager, s_eager = step(s_eager, jnp.asarray(v))
        u_jit, s_jit = jitted(s_jit, jnp.asarray(v))
        for a, b in zip(tree_util.tree_leaves((u_eager, s_eager)),
                        tree_util.tree_leaves((u_jit, s_jit))):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    st = s_eager[1]
    assert st.scale.dtype == np.float16 and st.best_value.dtype == np.float32
    assert st.plateau_count.dtype == np.int32
    assert u_eager["a"].dtype == np.float16 and u_eager["b"].dtype == np.float32
    assert float(st.scale) == 0.125  # cut at steps 3, 4 and 6


def test_plateau_needs_a_scalar_value():
    tx = contrib.reduce_on_plateau()
    state = tx.init(jnp.zeros(2))
    with pytest.raises(TypeError, match="value="):
        tx.update(jnp.ones(2), state)
    with pytest.raises(ValueError, match="`value` must be a scalar"):
        tx.update(jnp.ones(2), state, value=jnp.ones(2))


@pytest.mark.parametrize("kwargs, name", [
    (dict(factor=1.0), "factor"), (dict(factor=0.0), "factor"), (dict(factor=-0.5), "factor"),
    (dict(rtol=-1e-4), "rtol"), (dict(rtol=1.5), "rtol"), (dict(atol=-1.0), "atol"),
    (dict(rtol=0.0, atol=0.0), "rtol"), (dict(patience=0), "patience"),
    (dict(patience=2.5), "patience"), (dict(cooldown=-1), "cooldown"),
    (dict(accumulation_size=0), "accumulation_size"), (dict(min_scale=np.nan), "min_scale"),
])
def test_plateau_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        contrib.reduce_on_plateau(**kwargs)


# --- schedule-free ------------------------------------------------------------------------


def _parabola_run(opt, steps=5, jit=False, params=None):
    f = lambda x: jnp.sum((x - 1.0) ** 2)  # noqa: E731
    params = jnp.asarray([-1.0, 10.0, 1.0]) if params is None else params

    def step(params, state):
        updates, state = opt.update(nanofn.grad(f)(params), state, params)
        return optim.apply_updates(params, updates), state

    if jit:
        step = nanofn.jit(step)
    state = opt.init(params)
    for _ in range(steps):
        params, state = step(params, state)
    return params, state


def test_schedule_free_zero_learning_rate_keeps_params():
    opt = contrib.schedule_free(optim.sgd(0.0, momentum=0.0), learning_rate=0.0)
    params0 = jnp.asarray([1.0, 2.0])
    params, state = _parabola_run(opt, params=params0, jit=True)
    np.testing.assert_allclose(np.asarray(contrib.schedule_free_eval_params(state, params)),
                               [1.0, 2.0])


def test_schedule_free_adamw_matches_wrapper_around_adamw():
    short = contrib.schedule_free_adamw(learning_rate=1.0, b1=0.9, weight_decay=1e-4)
    wrapped = contrib.schedule_free(optim.adamw(1.0, b1=0.0, weight_decay=1e-4),
                                    learning_rate=1.0, b1=0.9)
    np.testing.assert_allclose(np.asarray(_parabola_run(short)[0]),
                               np.asarray(_parabola_run(wrapped)[0]), rtol=1e-6, atol=1e-6)


def test_schedule_free_jit_matches_eager_and_converges():
    opt = contrib.schedule_free_sgd(0.2, warmup_steps=3, weight_decay=1e-3)
    p_eager, s_eager = _parabola_run(opt, steps=30)
    p_jit, s_jit = _parabola_run(opt, steps=30, jit=True)
    for a, b in zip(tree_util.tree_leaves((p_eager, s_eager)),
                    tree_util.tree_leaves((p_jit, s_jit))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    x = contrib.schedule_free_eval_params(s_eager, p_eager)
    assert float(jnp.sum((x - 1.0) ** 2)) < 0.1 * 85.0  # 85 at the start
    assert int(s_eager.step_count) == 31


def test_schedule_free_scalar_and_dtypes():
    opt = contrib.schedule_free(optim.sgd(1.0), learning_rate=1.0)
    params = jnp.ones((), dtype=jnp.float32)
    x = contrib.schedule_free_eval_params(opt.init(params), params)
    assert x.shape == () and x.dtype == np.float32
    for state_dtype, want in ((None, np.float16), (jnp.float32, np.float32)):
        opt = contrib.schedule_free(optim.sgd(1.0), learning_rate=1.0, state_dtype=state_dtype)
        params = jnp.zeros(2, dtype=jnp.float16)
        state = opt.init(params)
        assert state.z.dtype == want and state.b1.dtype == np.float16
        updates, state = opt.update(jnp.ones(2, dtype=jnp.float16), state, params)
        assert updates.dtype == np.float16 and state.z.dtype == want


def test_schedule_free_pytrees_work():
    params = {"w": jnp.ones((2, 3)), "b": [jnp.zeros(3), jnp.asarray(2.0)]}
    opt = contrib.schedule_free_adamw(0.1)
    state = opt.init(params)
    assert tree_util.tree_structure(state.z) == tree_util.tree_structure(params)
    grads = tree_util.tree_map(jnp.ones_like, params)
    updates, state = opt.update(grads, state, params)
    assert tree_util.tree_structure(updates) == tree_util.tree_structure(params)


def test_schedule_free_in_chain_passes_extra_args():
    opt = optim.chain(optim.clip_by_global_norm(1.0),
                      contrib.schedule_free(optim.polyak_sgd(max_learning_rate=0.5),
                                            learning_rate=0.5))
    params = jnp.asarray([2.0, -1.0])
    state = opt.init(params)
    updates, state = opt.update(2 * params, state, params, value=jnp.sum(params ** 2))
    assert np.all(np.isfinite(np.asarray(updates)))
    contrib.schedule_free_eval_params(state[1], params)


def test_schedule_free_errors():
    opt = contrib.schedule_free_sgd()
    params = jnp.ones(2)
    state = opt.init(params)
    with pytest.raises(ValueError, match="params"):
        opt.update(jnp.ones(2), state)
    with pytest.raises(ValueError, match="ScheduleFreeState"):
        contrib.schedule_free_eval_params(optim.adam(0.1).init(params), params)
    with pytest.raises(ValueError, match="`b1`"):
        contrib.schedule_free(optim.sgd(0.1), 0.1, b1=0.0)
    with pytest.raises(ValueError, match="`learning_rate`"):
        contrib.schedule_free_sgd(-1.0)
    with pytest.raises(ValueError, match="`warmup_steps`"):
        contrib.schedule_free_adamw(warmup_steps=0)
    with pytest.raises(TypeError, match="`warmup_steps`"):
        contrib.schedule_free_sgd(warmup_steps=2.5)
    with pytest.raises(ValueError, match="`b2`"):
        contrib.schedule_free_adamw(b2=1.5)
    with pytest.raises(TypeError, match="base_optimizer"):
        contrib.schedule_free(0.1, 0.1)
