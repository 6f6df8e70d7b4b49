"""Aliases: every optimizer drives a parabola and the Rosenbrock function to its minimum.

One table of (alias, kwargs, step budgets) drives every test, as in optax's alias_test:
convergence eager and under jit, state structure kept by update, dtypes kept, and the
inject_hyperparams wrapper behaving like the plain alias.
"""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim, tree_util


def _np(x):
    return np.asarray(x, dtype=np.float64)


# (alias, kwargs, (steps on the parabola, steps on Rosenbrock)). Learning rates are tuned
# so each run is short; sign- and trust-ratio-based methods (lion, lamb, fromage) and
# adadelta take a decaying schedule, which also exercises schedules in aliases.
ALIASES = [
    ("sgd", dict(learning_rate=1e-3, momentum=0.9), (280, 750)),
    ("sgd", dict(learning_rate=1e-3, momentum=0.9, nesterov=True), (280, 750)),
    ("adam", dict(learning_rate=0.05), (700, 250)),
    ("adamw", dict(learning_rate=0.05, weight_decay=1e-4), (700, 250)),
    ("nadam", dict(learning_rate=0.03), (1200, 420)),
    ("nadamw", dict(learning_rate=0.03), (1200, 400)),
    ("adamax", dict(learning_rate=0.1), (530, 340)),
    ("amsgrad", dict(learning_rate=0.1), (680, 430)),
    ("radam", dict(learning_rate=0.05), (1050, 1250)),
    ("rmsprop", dict(learning_rate=0.005, momentum=0.9), (330, 130)),
    ("rmsprop", dict(learning_rate=0.005, centered=True, momentum=0.9), (160, 130)),
    ("adagrad", dict(learning_rate=0.5), (850, 3000)),
    ("adadelta", dict(learning_rate=optim.exponential_decay(10.0, 300, 0.5, end_value=0.1)),
     (800, 3000)),
    ("adabelief", dict(learning_rate=0.05), (230, 240)),
    ("adafactor", dict(learning_rate=0.03, multiply_by_parameter_scale=False, momentum=0.9),
     (840, 120)),
    ("lamb", dict(learning_rate=optim.exponential_decay(0.03, 100, 0.5, end_value=1e-4)),
     (320, 500)),
    ("lars", dict(learning_rate=1.0), (430, 700)),
    ("lion", dict(learning_rate=optim.exponential_decay(0.1, 200, 0.5), weight_decay=0.0),
     (600, 1700)),
    ("novograd", dict(learning_rate=0.003), (490, 210)),
    ("noisy_sgd", dict(learning_rate=2e-3, eta=1e-4, key=0), (1450, 3300)),
    ("yogi", dict(learning_rate=0.1), (350, 220)),
    ("fromage", dict(learning_rate=optim.exponential_decay(0.1, 200, 0.7)), (500, 1100)),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(ALIASES)]
TOL = 0.05  # optax's alias test allows rtol = atol = 0.03 around the optimum


def parabola():
    target = np.array([1.0, -1.0, 1.0])
    t = jnp.asarray(target)

    def grad(p):  # of sum((p - t)^2)
        return 2.0 * (p - t)

    return jnp.array([-1.0, 10.0, 1.0]), lambda p: jnp.sum((p - t) ** 2), grad, target


def rosenbrock():
    def f(p):
        x, y = p[0], p[1]
        return (1.0 - x) ** 2 + 100.0 * (y - x ** 2) ** 2

    def grad(p):
        x, y = p[0], p[1]
        return jnp.stack([-2.0 * (1.0 - x) - 400.0 * x * (y - x ** 2), 200.0 * (y - x ** 2)])

    return jnp.zeros(2), f, grad, np.array([1.0, 1.0])


@pytest.mark.parametrize("target", [parabola, rosenbrock])
def test_the_hand_written_gradients_are_right(target):
    _, objective, grad, _ = target()
    rng = np.random.default_rng(0)
    for _ in range(3):
        p = jnp.asarray(rng.normal(size=3 if target is parabola else 2))
        np.testing.assert_allclose(_np(grad(p)), _np(nanofn.grad(objective)(p)), rtol=1e-6)


def _minimize(opt, grad, params, steps, jit):
    # The gradient is written by hand: in eager mode nanofn.grad would cost more than the
    # optimizer step under test (test_eager_and_jit_agree uses nanofn.grad).
    def step(params, state):
        updates, state = opt.update(grad(params), state, params)
        return optim.apply_updates(params, updates), state

    if jit:
        step = nanofn.jit(step)
    state = init_state = opt.init(params)
    for _ in range(steps):
        params, state = step(params, state)
    return params, init_state, state


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("target", [parabola, rosenbrock])
@pytest.mark.parametrize("name, kwargs, steps", ALIASES, ids=IDS)
def test_alias_reaches_the_minimum(name, kwargs, steps, target, mode):
    opt = getattr(optim, name)(**kwargs)
    start, _, grad, minimum = target()
    n = steps[0] if target is parabola else steps[1]
    params, init_state, state = _minimize(opt, grad, start, n, jit=mode == "jit")
    np.testing.assert_allclose(_np(params), minimum, atol=TOL)
    assert params.dtype == start.dtype
    assert tree_util.tree_structure(state) == tree_util.tree_structure(init_state)
    for before, after in zip(tree_util.tree_leaves(init_state), tree_util.tree_leaves(state)):
        assert (before.shape, before.dtype) == (after.shape, after.dtype)


@pytest.mark.parametrize("name, kwargs, steps", ALIASES, ids=IDS)
def test_eager_and_jit_agree(name, kwargs, steps):
    opt = getattr(optim, name)(**kwargs)
    start, objective, _, _ = rosenbrock()
    grad = nanofn.grad(objective)
    eager, _, s1 = _minimize(opt, grad, start, 20, jit=False)
    jitted, _, s2 = _minimize(opt, grad, start, 20, jit=True)
    # jit runs fused kernels whose float32 transcendentals (libm) can differ from numpy's
    # by an ulp; twenty steps on the stiff Rosenbrock valley amplify that to ~1e-5.
    np.testing.assert_allclose(_np(jitted), _np(eager), rtol=1e-4, atol=1e-6)
    for a, b in zip(tree_util.tree_leaves(s1), tree_util.tree_leaves(s2)):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-4, atol=1e-6)


def _tree_params(dtype):
    return {"w": jnp.full((3, 2), 0.5, dtype=dtype), "b": (jnp.full((2,), -0.25, dtype=dtype),),
            "s": jnp.asarray(2.0, dtype=dtype)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kwargs, steps", ALIASES, ids=IDS)
def test_params_and_state_keep_their_dtype(name, kwargs, steps, dtype):
    opt = getattr(optim, name)(**kwargs)
    params = _tree_params(dtype)
    state = init_state = opt.init(params)
    for i in range(3):
        grads = tree_util.tree_map(lambda p: jnp.full(p.shape, 0.3 * (i - 1), dtype=dtype),
                                   params)
        updates, state = opt.update(grads, state, params)
        assert all(u.dtype == dtype for u in tree_util.tree_leaves(updates))
        params = optim.apply_updates(params, updates)
        assert all(p.dtype == dtype for p in tree_util.tree_leaves(params))
    assert tree_util.tree_structure(state) == tree_util.tree_structure(init_state)
    for before, after in zip(tree_util.tree_leaves(init_state), tree_util.tree_leaves(state)):
        assert (before.shape, before.dtype) == (after.shape, after.dtype)
        assert np.all(np.isfinite(_np(after))) or after.dtype == np.uint32


@pytest.mark.parametrize("name, kwargs, steps", ALIASES, ids=IDS)
def test_step_counts_in_the_state_are_int32_scalars(name, kwargs, steps):
    opt = getattr(optim, name)(**kwargs)
    params = _tree_params(np.float32)
    state = opt.init(params)
    _, state = opt.update(tree_util.tree_map(jnp.ones_like, params), state, params)
    paths = tree_util.tree_leaves_with_path(state)
    counts = [leaf for path, leaf in paths if "count" in tree_util.keystr(path)]
    for c in counts:
        assert c.dtype == np.int32 and c.shape == () and int(c) == 1


@pytest.mark.parametrize("name, kwargs, steps", ALIASES, ids=IDS)
def test_inject_hyperparams_wraps_every_alias(name, kwargs, steps):
    factory = getattr(optim, name)
    static = ("min_dim_size_to_factor",) if name == "adafactor" else ()
    plain = factory(**kwargs)
    injected = optim.inject_hyperparams(factory, static_args=static)(**kwargs)
    params = [-jnp.ones((2, 3)), jnp.ones((2, 5))]
    grads = [jnp.ones((2, 3)), -jnp.ones((2, 5))]
    u1, s1 = nanofn.jit(plain.update)(grads, plain.init(params), params)
    u2, s2 = nanofn.jit(injected.update)(grads, injected.init(params), params)
    for a, b in zip(tree_util.tree_leaves(u1), tree_util.tree_leaves(u2)):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-5, atol=1e-7)
    if not any(callable(v) for v in kwargs.values()):  # a schedule's count moves out
        # float32 hyperparameters (1 - b2 rounds differently) shift moments by ~1e-5
        for a, b in zip(tree_util.tree_leaves(s1), tree_util.tree_leaves(s2.inner_state)):
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name, kwargs", [
    ("adam", dict(learning_rate=0.1)),
    ("sgd", dict(learning_rate=0.1, momentum=0.9)),
    ("rmsprop", dict(learning_rate=0.1, centered=True)),
    ("lamb", dict(learning_rate=0.1)),
    ("lars", dict(learning_rate=0.1)),
    ("adafactor", dict(learning_rate=0.1, min_dim_size_to_factor=2)),
])
def test_state_can_be_vmapped(name, kwargs):
    opt = getattr(optim, name)(**kwargs)
    rng = np.random.default_rng(0)
    batch_params = {"w": jnp.asarray(rng.normal(size=(4, 3, 2)), dtype=np.float32)}
    batch_grads = {"w": jnp.asarray(rng.normal(size=(4, 3, 2)), dtype=np.float32)}
    state = nanofn.vmap(opt.init)(batch_params)
    updates, state = nanofn.vmap(opt.update)(batch_grads, state, batch_params)
    updates, state = nanofn.vmap(opt.update)(batch_grads, state, batch_params)
    for i in range(4):
        p = {"w": batch_params["w"][i]}
        g = {"w": batch_grads["w"][i]}
        s = opt.init(p)
        u, s = opt.update(g, s, p)
        u, s = opt.update(g, s, p)
        np.testing.assert_allclose(_np(updates["w"][i]), _np(u["w"]), rtol=1e-5, atol=1e-7)


def test_aliases_are_chains_of_blocks():
    g = jnp.array([0.5, -2.0])
    adam = optim.adam(0.1)
    manual = optim.chain(optim.scale_by_adam(), optim.scale(-0.1))
    u1, _ = adam.update(g, adam.init(g))
    u2, _ = manual.update(g, manual.init(g))
    np.testing.assert_allclose(_np(u1), _np(u2))


def test_nadam_is_adam_with_nesterov():
    g = jnp.array([0.5, -2.0])
    a, b = optim.nadam(0.1), optim.adam(0.1, nesterov=True)
    sa, sb = a.init(g), b.init(g)
    for _ in range(2):
        ua, sa = a.update(g, sa)
        ub, sb = b.update(g, sb)
    np.testing.assert_allclose(_np(ua), _np(ub))


def test_aliases_take_optax_argument_order():
    # positional calls as optax users write them
    g = jnp.array([1.0])
    opt = optim.adam(0.1, 0.5, 0.9, 1e-3)
    u, _ = opt.update(g, opt.init(g))
    assert float(u[0]) == pytest.approx(-0.1 / (1 + 1e-3))
    opt = optim.sgd(0.1, 0.9, True)
    state = opt.init(g)
    u, state = opt.update(g, state)
    assert float(u[0]) == pytest.approx(-0.1 * 1.9)


BAD = [
    ("adam", dict(learning_rate=-1e-3), "learning_rate"),
    ("adam", dict(learning_rate=0.1, b1=1.0), "b1"),
    ("adamw", dict(learning_rate=0.1, weight_decay=-0.1), "weight_decay"),
    ("sgd", dict(learning_rate=float("nan")), "learning_rate"),
    ("sgd", dict(learning_rate=0.1, momentum=-0.9), "momentum"),
    ("rmsprop", dict(learning_rate=0.1, momentum=1.5), "momentum"),
    ("fromage", dict(learning_rate=-0.1), "learning_rate"),
    ("rmsprop", dict(learning_rate=0.1, eps=-1.0), "eps"),
    ("adagrad", dict(learning_rate=0.1, initial_accumulator_value=-1.0),
     "initial_accumulator_value"),
    ("lion", dict(learning_rate=0.1, b2=1.5), "b2"),
    ("noisy_sgd", dict(learning_rate=0.1, eta=-1.0), "eta"),
    ("adafactor", dict(learning_rate=0.1, clipping_threshold=0.0), "clipping_threshold"),
    ("lamb", dict(learning_rate=0.1, weight_decay=float("inf")), "weight_decay"),
]


@pytest.mark.parametrize("name, kwargs, argname", BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_bad_hyperparameters_fail_at_construction(name, kwargs, argname):
    with pytest.raises(ValueError, match=f"`{argname}`"):
        getattr(optim, name)(**kwargs)
