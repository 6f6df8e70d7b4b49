"""Combinators: shapes, params and keys threaded through sublayers, state threading
(BatchNorm inside serial/parallel/residual, under jit and grad), stax-style pairs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as jnp
from nanofn import nn, optim
from nanofn.testing import check_grads

KEY = nanofn.random.key(0)
RNG = np.random.default_rng(0)


def f64(tree):
    return nanofn.tree.map(lambda a: np.asarray(a, np.float64), tree)


@settings(max_examples=10)
@given(widths=st.lists(st.integers(1, 6), min_size=1, max_size=4), d_in=st.integers(1, 5),
       batch=st.integers(1, 4))
def test_serial_threads_shapes_and_params(widths, d_in, batch):
    layers = []
    for w in widths:
        layers += [nn.Dense(w), nn.Tanh]
    init, apply = nn.serial(*layers)
    out_shape, params = init(KEY, (-1, d_in))
    assert out_shape == (-1, widths[-1])
    assert len(params) == 2 * len(widths) and all(p == () for p in params[1::2])
    x = RNG.normal(size=(batch, d_in))
    expected = x
    for p in params[::2]:
        expected = np.tanh(expected @ np.asarray(p["w"]) + np.asarray(p["b"]))
    np.testing.assert_allclose(np.asarray(apply(params, x)), expected, rtol=1e-5, atol=1e-6)


def test_serial_gives_each_layer_its_own_key():
    init, _ = nn.serial(nn.Dense(4), nn.Dense(4))
    _, (p1, p2) = init(KEY, (-1, 4))
    assert not np.allclose(np.asarray(p1["w"]), np.asarray(p2["w"]))
    _, again = init(KEY, (-1, 4))
    np.testing.assert_array_equal(np.asarray(again[0]["w"]), np.asarray(p1["w"]))


def test_serial_gradients():
    init, apply = nn.serial(nn.Dense(3), nn.Gelu, nn.Dense(2), nn.LogSoftmax)
    _, params = init(KEY, (-1, 4))
    check_grads(lambda p, x: apply(p, x), (f64(params), RNG.normal(size=(2, 4))), order=1)


def test_fan_out_parallel_fan_in():
    init, apply = nn.serial(nn.FanOut(3), nn.parallel(nn.Dense(2), nn.Identity, nn.Dense(5)),
                            nn.FanInConcat(axis=-1))
    out_shape, params = init(KEY, (-1, 4))
    assert out_shape == (-1, 11)
    x = RNG.normal(size=(3, 4))
    y = np.asarray(apply(f64(params), x))
    p = f64(params)[1]
    np.testing.assert_allclose(y[:, :2], x @ p[0]["w"] + p[0]["b"], rtol=1e-12)
    np.testing.assert_allclose(y[:, 2:6], x, rtol=1e-12)
    init, apply = nn.serial(nn.FanOut(2), nn.parallel(nn.Dense(4), nn.Dense(4)), nn.FanInSum)
    out_shape, params = init(KEY, (-1, 3))
    assert out_shape == (-1, 4)
    p = f64(params)[1]
    x = RNG.normal(size=(2, 3))
    np.testing.assert_allclose(np.asarray(apply(f64(params), x)),
                               x @ p[0]["w"] + p[0]["b"] + x @ p[1]["w"] + p[1]["b"], rtol=1e-12)
    with pytest.raises(ValueError, match="one shape"):
        nn.FanInSum.init(KEY, [(-1, 3), (-1, 4)])
    with pytest.raises(ValueError, match="list of 2 input shapes"):
        nn.parallel(nn.Dense(2), nn.Dense(2)).init(KEY, (-1, 3))


def test_residual():
    init, apply = nn.residual(nn.Dense(4), nn.Relu)
    out_shape, params = init(KEY, (-1, 4))
    x = RNG.normal(size=(2, 4))
    p = f64(params)
    np.testing.assert_allclose(np.asarray(apply(p, x)),
                               x + np.maximum(x @ p[0]["w"] + p[0]["b"], 0), rtol=1e-12)
    with pytest.raises(ValueError, match=r"maps inputs of shape \(-1, 4\) to \(-1, 5\)"):
        nn.residual(nn.Dense(5)).init(KEY, (-1, 4))


def test_plain_stax_style_pairs_work_inside_combinators():
    def scale_layer(factor):
        def init(rng, input_shape):
            return input_shape, {"s": jnp.full((), factor)}

        def apply(params, inputs, **kwargs):
            return inputs * params["s"]
        return init, apply

    model = nn.serial(nn.Dense(3), scale_layer(2.0), nn.BatchNorm())
    _, params = model.init(KEY, (-1, 2))
    _, state = model.init_state((-1, 2))
    assert state[1] == () and sorted(state[2]) == ["mean", "var"]
    y, state2 = model.apply(params, jnp.ones((4, 2)), state=state, training=True)
    assert y.shape == (4, 3)


def test_batchnorm_state_threads_through_serial_and_jit():
    model = nn.serial(nn.Dense(8), nn.BatchNorm(momentum=0.5), nn.Relu, nn.Dense(3))
    init, apply = model
    _, params = init(KEY, (-1, 5))
    _, state = model.init_state((-1, 5))
    assert state[0] == () and state[2] == () and state[3] == ()
    x = RNG.normal(1.0, 2.0, size=(16, 5)).astype(np.float32)

    # stateless use: training=True with batch statistics returns plain outputs
    assert apply(params, x, training=True).shape == (16, 3)
    # state given: (outputs, new_state), the same tree structure, statistics updated
    y, new_state = apply(params, x, state=state, training=True)
    assert nanofn.tree.structure(new_state) == nanofn.tree.structure(state)
    h = x @ np.asarray(params[0]["w"]) + np.asarray(params[0]["b"])
    np.testing.assert_allclose(np.asarray(new_state[1]["mean"]), 0.5 * h.mean(0), rtol=1e-4,
                               atol=1e-5)
    # eval: running statistics, state returned unchanged
    y_eval, same = apply(params, x, state=new_state)
    assert same[1] is new_state[1]
    with pytest.raises(ValueError, match="state=state"):
        apply(params, x)

    opt = optim.sgd(0.1)
    opt_state = opt.init(params)

    def loss_fn(params, state, x):
        out, state = apply(params, x, state=state, training=True)
        return jnp.mean(out ** 2), state

    @nanofn.jit
    def step(params, state, opt_state, x):
        (loss, state), grads = nanofn.value_and_grad(loss_fn, has_aux=True)(params, state, x)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), state, opt_state, loss

    losses = []
    for _ in range(20):
        params, state, opt_state, loss = step(params, state, opt_state, x)
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    # after many identical batches the running mean converges to the batch mean
    h = x @ np.asarray(params[0]["w"]) + np.asarray(params[0]["b"])
    np.testing.assert_allclose(np.asarray(state[1]["mean"]), h.mean(0), rtol=0.05, atol=0.05)


def test_state_through_parallel_and_residual():
    model = nn.serial(nn.FanOut(2), nn.parallel(nn.BatchNorm(), nn.Identity), nn.FanInSum,
                      nn.residual(nn.BatchNorm()))
    _, params = model.init(KEY, (-1, 3))
    _, state = model.init_state((-1, 3))
    x = RNG.normal(size=(10, 3)).astype(np.float32)
    y, new_state = model.apply(params, x, state=state, training=True)
    assert y.shape == (10, 3)
    assert nanofn.tree.structure(new_state) == nanofn.tree.structure(state)
    assert not np.allclose(np.asarray(new_state[1][0]["mean"]), 0)
    assert not np.allclose(np.asarray(new_state[3][0]["mean"]), 0)


def test_stateless_models_accept_and_return_state():
    model = nn.serial(nn.Dense(2), nn.Relu)
    _, params = model.init(KEY, (-1, 3))
    _, state = model.init_state((-1, 3))
    assert state == ((), ())
    y, same = model.apply(params, jnp.ones((1, 3)), state=state)
    assert same == ((), ()) and y.shape == (1, 2)


def test_shape_dependent():
    layer = nn.shape_dependent(lambda shape: nn.Dense(shape[-1] * 2))
    out_shape, params = layer.init(KEY, (-1, 3))
    assert out_shape == (-1, 6)
    assert layer.apply(params, jnp.ones((2, 3))).shape == (2, 6)


def test_wrong_number_of_params():
    init, apply = nn.serial(nn.Dense(2), nn.Relu)
    _, params = init(KEY, (-1, 3))
    with pytest.raises(ValueError, match="params with 2 entries"):
        apply(params[:1], jnp.ones((1, 3)))
