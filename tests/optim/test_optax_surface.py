"""optax's surface in nanofn.optim: submodules, losses at the top, clear errors, extra args.

The trajectories of the new optimizers are checked against optax in
tests/port/test_optax_aliases.py; this file checks what a recording cannot: errors,
module layout, and how extra arguments reach masked transformations.
"""

import importlib

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim


@pytest.mark.parametrize("name", ["tree", "tree_utils", "transforms", "schedules", "losses",
                                  "contrib"])
def test_submodules_import_as_in_optax(name):
    module = importlib.import_module(f"nanofn.optim.{name}")
    assert module.__all__ and all(hasattr(module, n) for n in module.__all__)


def test_tree_utils_has_optaxs_prefixed_names():
    for name in optim.tree.__all__:
        assert getattr(optim.tree_utils, f"tree_{name}") is getattr(optim.tree, name)


def test_every_loss_is_at_the_top_level():
    for name in optim.losses.__all__:
        assert getattr(optim, name) is getattr(optim.losses, name), name


def test_polyak_needs_the_value():
    opt = optim.polyak_sgd()
    with pytest.raises(TypeError, match="value="):
        opt.update(jnp.ones(2), opt.init(jnp.zeros(2)), jnp.zeros(2))


@pytest.mark.parametrize("make", [
    lambda: optim.scale_by_backtracking_linesearch(5),
    lambda: optim.scale_by_zoom_linesearch(5),
])
def test_linesearch_names_what_is_missing(make):
    tx = make()
    with pytest.raises(TypeError, match="value_fn"):
        tx.update(jnp.ones(2), tx.init(jnp.zeros(2)), jnp.zeros(2), value=1.0,
                  grad=jnp.ones(2))
    with pytest.raises(TypeError, match=r"\['batch'\]"):
        tx.update(jnp.ones(2), tx.init(jnp.zeros(2)), jnp.zeros(2), value=1.0,
                  grad=jnp.ones(2), value_fn=lambda w: jnp.sum(w), batch=3)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="memory_size"):
        optim.scale_by_lbfgs(memory_size=0)
    with pytest.raises(ValueError, match="variant"):
        optim.polyak_sgd(variant="sps-")
    with pytest.raises(ValueError, match="initial_guess_strategy"):
        optim.scale_by_zoom_linesearch(5, initial_guess_strategy="half")
    with pytest.raises(TypeError, match="schedule"):
        optim.optimistic_adam(lambda count: 0.1)
    with pytest.raises(ValueError, match="structure"):
        optim.tree.add({"a": jnp.ones(1)}, [jnp.ones(1)])
    with pytest.raises(ValueError, match="mixed_dtype_handler"):
        optim.tree.dtype({"a": jnp.ones(1), "b": jnp.ones(1, dtype=jnp.int32)})
    with pytest.raises(ValueError, match="g_norm"):
        optim.transforms.unitwise_clip(jnp.ones(2), jnp.ones(3), jnp.ones(2))
    with pytest.raises(ValueError, match="batch axis"):
        optim.per_example_global_norm_clip({"a": jnp.ones(()), "b": jnp.ones(2)}, 1.0)
    with pytest.raises(ValueError, match="params"):
        tx = optim.adaptive_grad_clip(0.1)
        tx.update(jnp.ones(2), tx.init(None))


def test_mask_compatible_extra_args_masks_per_parameter_extras():
    seen = {}

    def inner_update(updates, state, params=None, *, scale_tree=None, **extra):
        seen["scale_tree"] = scale_tree
        return nanofn.tree_util.tree_map(lambda u, s: u * s, updates, scale_tree), state

    inner = optim.GradientTransformation(optim.init_empty_state, inner_update)
    g = {"w": jnp.ones(2), "b": jnp.ones(2)}
    scales = {"w": jnp.full(2, 3.0), "b": jnp.full(2, 5.0)}
    tx = optim.masked(inner, {"w": True, "b": False}, mask_compatible_extra_args=True)
    u, _ = tx.update(g, tx.init(g), scale_tree=scales)
    assert isinstance(seen["scale_tree"]["b"], optim.MaskedNode)
    np.testing.assert_allclose(u["w"], 3.0)
    np.testing.assert_allclose(u["b"], 1.0)
    tx = optim.partition({"x": inner, "y": optim.identity()}, {"w": "x", "b": "y"},
                         mask_compatible_extra_args=True)
    u, _ = tx.update(g, tx.init(g), scale_tree=scales)
    np.testing.assert_allclose(u["w"], 3.0)
    np.testing.assert_allclose(u["b"], 1.0)


def test_extra_args_reach_every_member_of_a_chain():
    opt = optim.chain(optim.sgd(1.0), optim.scale_by_polyak(max_learning_rate=10.0))
    params = jnp.array([1.0, 2.0])
    value, grad = nanofn.value_and_grad(lambda w: jnp.sum(w ** 2))(params)
    u, _ = opt.update(grad, opt.init(params), params, value=value)
    np.testing.assert_allclose(optim.apply_updates(params, u), [0.5, 1.0], rtol=1e-6)


def test_tree_get_set_round_trip():
    state = optim.adam(0.1).init({"w": jnp.zeros(2)})
    assert optim.tree.get(state, "nonexistent", default="d") == "d"
    new = optim.tree.set(state, count=jnp.asarray(7, dtype=jnp.int32))
    assert int(optim.tree.get(new, "count")) == 7
    assert int(optim.tree.get(state, "count")) == 0
    nested = optim.inject_hyperparams(optim.adam)(learning_rate=0.1).init({"w": jnp.zeros(2)})
    with pytest.raises(KeyError, match="filtering"):  # a count at two depths
        optim.tree.get(nested, "count")
    assert optim.tree.get(nested, "count", filtering=lambda path, _: len(path) == 1) == 0


def test_safe_norm_gradient_is_finite_at_zero():
    g = nanofn.grad(lambda x: optim.safe_norm(x, 1e-3) + optim.safe_root_mean_squares(x, 1e-3))
    assert np.all(np.isfinite(g(jnp.zeros(3))))


def test_new_optimizers_converge_under_jit():
    def f(w):
        return jnp.sum((w - 1.0) ** 2)

    for opt in (optim.sm3(0.5), optim.adan(0.1), optim.rprop(0.1), optim.signum(0.05),
                optim.optimistic_gradient_descent(0.1), optim.adamaxw(0.1)):
        params, state = jnp.zeros(3), opt.init(jnp.zeros(3))

        @nanofn.jit
        def step(params, state, opt=opt):
            u, state = opt.update(nanofn.grad(f)(params), state, params)
            return optim.apply_updates(params, u), state

        for _ in range(40):
            params, state = step(params, state)
        assert float(f(params)) < 0.5 * float(f(jnp.zeros(3))), opt
