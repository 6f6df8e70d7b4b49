"""Eager updates of a chain of nanofn.optim's own transformations run jitted from the
second call on (nanofn/optim/_base.py, `compiled_eager`): the same numbers as the chain
run as written, and never for chains whose Python must run on every call."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import optim
from nanofn.optim import _base


def params_and_grads(seed=0):
    rng = np.random.default_rng(seed)
    params = {"w": rng.normal(size=(5, 3)).astype(np.float32),
              "b": rng.normal(size=3).astype(np.float32)}
    grads = [{"w": rng.normal(size=(5, 3)).astype(np.float32),
              "b": rng.normal(size=3).astype(np.float32)} for _ in range(5)]
    return params, grads


def run(tx):
    params, grads = params_and_grads()
    state = tx.init(params)
    out = []
    for g in grads:
        updates, state = tx.update(g, state, params)
        params = optim.apply_updates(params, updates)
        out.append(params)
    return out


def as_written(tx):
    return optim.GradientTransformation(tx.init, tx.update.__wrapped__)


def compiled_state(tx):
    """The wrapper's bookkeeping, read from its closure."""
    cells = dict(zip(tx.update.__code__.co_freevars, tx.update.__closure__))
    return cells["box"].cell_contents


@pytest.mark.parametrize("make", [
    lambda: optim.adam(1e-2),
    lambda: optim.chain(optim.clip_by_global_norm(0.5),
                        optim.adamw(optim.warmup_cosine_decay_schedule(0.0, 1e-2, 2, 10),
                                    weight_decay=0.1,
                                    mask=lambda p: {"w": True, "b": False})),
    lambda: optim.chain(optim.scale_by_rms(), optim.trace(0.9), optim.scale(-0.1)),
])
def test_jitted_from_the_second_call_with_the_same_numbers(make):
    tx = make()
    got = run(tx)
    assert compiled_state(tx)["jitted"] is not None and not compiled_state(tx)["as_written"]
    want = run(as_written(make()))
    for a, b in zip(got, want):
        for k in a:
            np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=2e-6,
                                       atol=1e-7)


def test_chains_whose_python_must_run_every_call_are_never_compiled():
    calls = []

    def record(updates, state, params=None):
        calls.append(1)
        return updates, state

    mine = optim.GradientTransformation(lambda p: optim.EmptyState(), record)
    seen = []
    tx = optim.chain(optim.scale(0.5), mine)
    run(tx)
    assert len(calls) == 5  # once per step
    tx = optim.chain(optim.stateless(lambda u, p: seen.append(1) or u), optim.scale(0.5))
    run(tx)
    assert len(seen) == 5
    assert getattr(tx.update, "runs_user_code", False)


def test_an_untraceable_schedule_goes_back_to_running_as_written():
    def schedule(count):  # a Python `if` on the step count: cannot be traced
        return 0.1 if int(count) < 2 else 0.01

    tx = optim.chain(optim.scale_by_adam(), optim.scale_by_learning_rate(schedule))
    got = run(tx)
    assert compiled_state(tx)["as_written"]
    want = run(as_written(optim.chain(optim.scale_by_adam(),
                                      optim.scale_by_learning_rate(schedule))))
    for a, b in zip(got, want):
        np.testing.assert_array_equal(np.asarray(a["w"]), np.asarray(b["w"]))


def test_inside_transformations_the_chain_is_traced_as_written():
    tx = optim.adam(1e-2)
    params, grads = params_and_grads()
    state = tx.init(params)

    @nanofn.jit
    def step(params, state, g):
        updates, state = tx.update(g, state, params)
        return optim.apply_updates(params, updates), state

    for g in grads:
        params, state = step(params, state, g)
    assert compiled_state(tx)["calls"] == 0  # it saw tracers only
    # a function argument (a line search's value_fn) is not an array: runs as written
    tx = optim.chain(optim.scale(1.0))
    for _ in range(3):
        tx.update(grads[0], tx.init(params), params, value_fn=lambda p: 0.0)
    assert compiled_state(tx)["jitted"] is None
    assert _base._concrete((jnp.ones(2), 1.0, None)) and not _base._concrete(("a",))
