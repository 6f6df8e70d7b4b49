"""nanofn.optim base: the GradientTransformation pair and the helpers around it."""

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


def test_gradient_transformation_is_a_two_field_namedtuple():
    tx = optim.sgd(0.1)
    assert isinstance(tx, tuple) and type(tx)._fields == ("init", "update")
    init, update = tx
    assert init is tx.init and update is tx.update


def test_empty_state_is_an_empty_pytree():
    assert tree_util.tree_leaves(optim.EmptyState()) == []
    assert optim.init_empty_state({"a": jnp.ones(2)}) == optim.EmptyState()


def test_identity_and_set_to_zero():
    g = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(3.0)}
    u, s = optim.identity().update(g, optim.EmptyState())
    assert u is g and s == optim.EmptyState()
    u, _ = optim.set_to_zero().update(g, optim.EmptyState())
    np.testing.assert_array_equal(_np(u["a"]), [0.0, 0.0])
    assert float(u["b"]) == 0.0 and u["a"].dtype == g["a"].dtype


def test_stateless_gets_the_whole_trees():
    seen = {}

    def f(updates, params):
        seen["args"] = (updates, params)
        return tree_util.tree_map(lambda u, p: u + p, updates, params)

    tx = optim.stateless(f)
    g, p = {"a": jnp.ones(1)}, {"a": jnp.full((1,), 2.0)}
    u, state = tx.update(g, tx.init(p), p)
    assert seen["args"] == (g, p) and float(u["a"][0]) == 3.0 and state == optim.EmptyState()


def test_stateless_with_tree_map_works_leaf_by_leaf_with_and_without_params():
    tx = optim.stateless_with_tree_map(lambda g, p: g * 2 if p is None else g * p)
    g = {"a": jnp.array([1.0]), "b": jnp.array([3.0])}
    u, _ = tx.update(g, tx.init(None))
    assert float(u["a"][0]) == 2.0 and float(u["b"][0]) == 6.0
    u, _ = tx.update(g, tx.init(None), {"a": jnp.array([5.0]), "b": jnp.array([0.5])})
    assert float(u["a"][0]) == 5.0 and float(u["b"][0]) == 1.5


@given(p=hnp.arrays(np.float64, (4,), elements=st.floats(-10, 10)),
       u=hnp.arrays(np.float64, (4,), elements=st.floats(-10, 10)))
def test_apply_updates_adds_leafwise(p, u):
    new = optim.apply_updates({"w": jnp.asarray(p), "b": (jnp.asarray(u),)},
                              {"w": jnp.asarray(u), "b": (jnp.asarray(p),)})
    np.testing.assert_allclose(_np(new["w"]), p + u)
    np.testing.assert_allclose(_np(new["b"][0]), p + u)


@pytest.mark.parametrize("param_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("update_dtype", [np.float32, np.float64])
def test_apply_updates_keeps_the_param_dtype(param_dtype, update_dtype):
    p = jnp.ones(3, dtype=param_dtype)
    new = optim.apply_updates(p, jnp.full((3,), 0.25, dtype=update_dtype))
    assert new.dtype == param_dtype
    np.testing.assert_allclose(_np(new), 1.25)


def test_apply_updates_structure_mismatch_names_both_and_the_difference():
    params = {"w": jnp.ones(2), "b": jnp.ones(1)}
    updates = {"w": jnp.ones(2), "bias": jnp.ones(1)}
    with pytest.raises(ValueError) as info:
        optim.apply_updates(params, updates)
    msg = str(info.value)
    assert "apply_updates" in msg and "`params`" in msg and "`updates`" in msg
    assert "'bias'" in msg and "'b'" in msg  # the keys that differ
    assert str(tree_util.tree_structure(params)) in msg
    assert str(tree_util.tree_structure(updates)) in msg


def test_update_with_grads_of_another_structure_names_the_state_field():
    opt = optim.adam(0.1)
    state = opt.init({"w": jnp.ones(2), "b": jnp.ones(1)})
    with pytest.raises(ValueError) as info:
        opt.update({"w": jnp.ones(2), "c": jnp.ones(1)}, state)
    msg = str(info.value)
    assert "scale_by_adam" in msg and "state.mu" in msg and "'c'" in msg


def test_update_with_a_list_instead_of_a_tuple_is_an_error():
    opt = optim.sgd(0.1, momentum=0.9)
    state = opt.init((jnp.ones(1), jnp.ones(1)))
    with pytest.raises(ValueError, match="tuple"):
        opt.update([jnp.ones(1), jnp.ones(1)], state)


@given(leaves=st.lists(hnp.arrays(np.float64, st.integers(0, 4),
                                  elements=st.floats(-100, 100)), min_size=1, max_size=4))
def test_global_norm_is_the_norm_of_all_elements(leaves):
    tree = {str(i): jnp.asarray(x) for i, x in enumerate(leaves)}
    want = np.sqrt(sum(np.sum(x * x) for x in leaves))
    assert float(optim.global_norm(tree)) == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_incremental_update_is_polyak_averaging():
    new, old = {"a": jnp.array([4.0])}, {"a": jnp.array([2.0])}
    out = optim.incremental_update(new, old, step_size=0.25)
    assert float(out["a"][0]) == pytest.approx(0.25 * 4.0 + 0.75 * 2.0)
    with pytest.raises(ValueError, match="step_size"):
        optim.incremental_update(new, old, step_size=1.5)


def test_periodic_update_eager_and_under_jit():
    new, old = {"a": jnp.array([1.0])}, {"a": jnp.array([0.0])}
    jitted = nanofn.jit(lambda n, o, s: optim.periodic_update(n, o, s, 3))
    for step in range(7):
        want = 1.0 if step % 3 == 0 else 0.0
        assert float(optim.periodic_update(new, old, step, 3)["a"][0]) == want
        assert float(jitted(new, old, jnp.asarray(step, dtype=np.int32))["a"][0]) == want


def test_with_extra_args_support_wraps_three_argument_updates():
    calls = []

    def update(updates, state, params=None):
        calls.append(params)
        return updates, state

    plain = optim.GradientTransformation(optim.init_empty_state, update)
    tx = optim.chain(plain, optim.scale(2.0))
    u, _ = tx.update(jnp.ones(1), tx.init(jnp.ones(1)), None, loss=jnp.asarray(3.0))
    assert float(u[0]) == 2.0 and calls == [None]
    already = optim.scale(1.0)
    assert optim.with_extra_args_support(already) is already


def test_state_is_a_pytree_of_arrays_that_can_be_saved(tmp_path):
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(1e-3))
    state = opt.init(params)
    _, state = opt.update(tree_util.tree_map(jnp.ones_like, params), state, params)
    leaves, treedef = tree_util.tree_flatten(state)
    assert all(hasattr(x, "shape") and hasattr(x, "dtype") for x in leaves)
    path = tmp_path / "state.npz"
    np.savez(path, *[np.asarray(x) for x in leaves])
    with np.load(path) as data:
        restored = treedef.unflatten([jnp.asarray(data[f"arr_{i}"]) for i in range(len(leaves))])
    u1, _ = opt.update(tree_util.tree_map(jnp.ones_like, params), state, params)
    u2, _ = opt.update(tree_util.tree_map(jnp.ones_like, params), restored, params)
    for a, b in zip(tree_util.tree_leaves(u1), tree_util.tree_leaves(u2)):
        np.testing.assert_array_equal(_np(a), _np(b))
