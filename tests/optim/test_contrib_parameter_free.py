"""optax.contrib's parameter-free optimizers (prodigy, dadapt_adamw, dog, dowg, mechanize,
cocob) and madgrad, momo, momo_adam: jit agrees with eager, states keep their structure
and dtypes, map_params finds the parameter-shaped state, bad arguments get errors
naming them. Their numbers are checked against optax in
tests/port/test_optax_contrib_parameter_free.py.
"""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim, tree_util

contrib = optim.contrib

# (name, factory, needs value=)
OPTIMIZERS = [
    ("prodigy", lambda: contrib.prodigy(estim_lr0=1e-3), False),
    ("prodigy_sched", lambda: contrib.prodigy(optim.linear_schedule(1.0, 0.1, 10),
                                              safeguard_warmup=True, weight_decay=0.1), False),
    ("dadapt_adamw", lambda: contrib.dadapt_adamw(estim_lr0=1e-3, weight_decay=0.1), False),
    ("dog", lambda: contrib.dog(), False),
    ("dog_lr", lambda: contrib.dog(init_step=("learning_rate", 0.1), weight_decay=0.1), False),
    ("dowg", lambda: contrib.dowg(), False),
    ("mechanize", lambda: contrib.mechanize(optim.adam(1.0)), False),
    ("cocob", lambda: contrib.cocob(weight_decay=0.01), False),
    ("madgrad", lambda: contrib.madgrad(0.05, weight_decay=0.01), False),
    ("momo", lambda: contrib.momo(0.5, adapt_lower_bound=True, weight_decay=0.01), True),
    ("momo_adam", lambda: contrib.momo_adam(0.1, adapt_lower_bound=True), True),
]
IDS = [name for name, _, _ in OPTIMIZERS]


def _loss(p):
    return jnp.sum((p["w"] - 1.0) ** 2) + jnp.sum(p["b"] ** 2) + 0.5 * jnp.sum(p["w"] * p["b"][0])


def _params(dtype=np.float32):
    return {"w": jnp.asarray(np.array([[0.5, -1.0], [2.0, 0.0]], dtype=dtype)),
            "b": jnp.asarray(np.array([0.3, -0.7], dtype=dtype))}


def _run(opt, with_value, steps=8, jit=False, params=None):
    params = _params() if params is None else params

    def step(params, state):
        value, grad = nanofn.value_and_grad(_loss)(params)
        kw = {"value": value} if with_value else {}
        updates, state = opt.update(grad, state, params, **kw)
        return optim.apply_updates(params, updates), state, value

    if jit:
        step = nanofn.jit(step)
    state = opt.init(params)
    losses = []
    for _ in range(steps):
        params, state, value = step(params, state)
        losses.append(float(value))
    return params, state, losses


@pytest.mark.parametrize("name,factory,with_value", OPTIMIZERS, ids=IDS)
def test_jit_matches_eager_and_keeps_state_structure(name, factory, with_value):
    opt = factory()
    eager, eager_state, losses = _run(opt, with_value)
    jitted, jit_state, _ = _run(opt, with_value, jit=True)
    for a, b in zip(tree_util.tree_leaves(eager), tree_util.tree_leaves(jitted)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    init_state = opt.init(_params())
    assert tree_util.tree_structure(eager_state) == tree_util.tree_structure(init_state)
    for a, b in zip(tree_util.tree_leaves(eager_state), tree_util.tree_leaves(init_state)):
        assert np.shape(a) == np.shape(b) and jnp.result_type(a) == jnp.result_type(b), name
    assert all(np.isfinite(losses))


@pytest.mark.parametrize("name,factory,with_value", OPTIMIZERS, ids=IDS)
def test_float64_params_stay_float64(name, factory, with_value):
    params = _params(np.float64)
    final, state, _ = _run(factory(), with_value, steps=3, params=params)
    assert all(x.dtype == np.float64 for x in tree_util.tree_leaves(final)), name


@pytest.mark.parametrize("name,factory,with_value", OPTIMIZERS, ids=IDS)
def test_map_params_finds_parameter_shaped_state(name, factory, with_value):
    opt = factory()
    state = opt.init(_params())
    mapped = optim.tree.map_params(opt, lambda x: x + 1.0, state)
    assert tree_util.tree_structure(mapped) == tree_util.tree_structure(state)


@pytest.mark.parametrize("name,factory,with_value", OPTIMIZERS, ids=IDS)
def test_errors_without_params_or_with_wrong_shapes(name, factory, with_value):
    opt = factory()
    params = _params()
    state = opt.init(params)
    grads = tree_util.tree_map(jnp.ones_like, params)
    kw = {"value": jnp.asarray(1.0)} if with_value else {}
    with pytest.raises(ValueError, match="params"):
        opt.update(grads, state, **kw)
    bad = dict(grads, b=jnp.ones(3))
    with pytest.raises(ValueError, match="shape"):
        opt.update(bad, state, params, **kw)
    with pytest.raises(ValueError, match="structure"):
        opt.update({"w": grads["w"]}, state, {"w": params["w"]}, **kw)


@pytest.mark.parametrize("factory", [contrib.momo, contrib.momo_adam])
def test_momo_needs_the_loss_value(factory):
    opt = factory()
    params = _params()
    with pytest.raises(TypeError, match="value="):
        opt.update(params, opt.init(params), params)


def test_momo_in_a_chain_receives_value():
    opt = optim.chain(optim.clip_by_global_norm(10.0), contrib.momo(0.5))
    _, _, losses = _run(opt, True, steps=10)
    assert losses[-1] < losses[0]


def test_zero_gradient_takes_no_momo_step():
    opt = contrib.momo()
    params = _params()
    zeros = tree_util.tree_map(jnp.zeros_like, params)
    updates, _ = opt.update(zeros, opt.init(params), params, value=jnp.asarray(1.0))
    assert all(float(jnp.max(jnp.abs(u))) == 0.0 for u in tree_util.tree_leaves(updates))


def test_dog_learning_rate_init_step_sets_the_first_step():
    opt = contrib.dog(init_step=("learning_rate", 0.25))
    params = _params()
    grads = tree_util.tree_map(jnp.ones_like, params)
    updates, _ = opt.update(grads, opt.init(params), params)
    np.testing.assert_allclose(np.asarray(updates["w"]), -0.25 * np.ones((2, 2)))


def test_mechanize_passes_extra_args_to_the_base_optimizer():
    opt = contrib.mechanize(optim.polyak_sgd(max_learning_rate=0.5))
    _, _, losses = _run(opt, True, steps=5)
    assert all(np.isfinite(losses))


@pytest.mark.parametrize("call,match", [
    (lambda: contrib.prodigy(-1.0), "learning_rate"),
    (lambda: contrib.prodigy(betas=(0.9,)), "betas"),
    (lambda: contrib.prodigy(betas=(0.9, 1.5)), r"betas\[1\]"),
    (lambda: contrib.prodigy(estim_lr0=0.0), "estim_lr0"),
    (lambda: contrib.prodigy(weight_decay=-0.1), "weight_decay"),
    (lambda: contrib.dadapt_adamw(eps=-1.0), "eps"),
    (lambda: contrib.dadapt_adamw(betas=(1.0, 0.9)), r"betas\[0\]"),
    (lambda: contrib.dog(init_step=("nope", 1.0)), "init_step"),
    (lambda: contrib.dog(init_step=1e-6), "init_step"),
    (lambda: contrib.dog(learning_rate=-1.0), "learning_rate"),
    (lambda: contrib.dowg(init_estim_sq_dist=-1.0), "init_estim_sq_dist"),
    (lambda: contrib.mechanize(optim.sgd(1.0), num_betas=0), "num_betas"),
    (lambda: contrib.mechanize(optim.sgd(1.0), s_init=-1.0), "s_init"),
    (lambda: contrib.cocob(alpha=0.0), "alpha"),
    (lambda: contrib.madgrad(0.1, momentum=1.0), "momentum"),
    (lambda: contrib.madgrad(-0.1), "learning_rate"),
    (lambda: contrib.momo(beta=1.2), "beta"),
    (lambda: contrib.momo(lower_bound=float("nan")), "lower_bound"),
    (lambda: contrib.momo_adam(b2=-0.1), "b2"),
])
def test_bad_hyperparameters_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_mechanize_rejects_a_non_optimizer():
    with pytest.raises(TypeError, match="base_optimizer"):
        contrib.mechanize(optim.adam)


def test_exports():
    for name in ("prodigy", "ProdigyState", "dadapt_adamw", "DAdaptAdamWState", "dog", "dowg",
                 "DoGState", "DoWGState", "mechanize", "MechanicState", "cocob",
                 "scale_by_cocob", "COCOBState", "madgrad", "scale_by_madgrad", "MadgradState",
                 "momo", "momo_adam", "MomoState", "MomoAdamState"):
        assert hasattr(contrib, name), name
