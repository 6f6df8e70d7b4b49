"""nanofn.nn layers: init's output shape equals apply's, outputs against plain numpy
references, float64 gradient checks with respect to params and inputs, and the errors
that name the layer and the shapes at fault."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as jnp
from nanofn import nn
from nanofn.testing import check_grads

KEY = nanofn.random.key(0)
RNG = np.random.default_rng(0)


def f64(tree):
    return nanofn.tree.map(lambda a: np.asarray(a, np.float64), tree)


def shapes_agree(declared, actual):
    declared, actual = tuple(declared), tuple(actual)
    return len(declared) == len(actual) and all(d in (-1, a) for d, a in zip(declared, actual))


def build(layer, input_shape, concrete_shape=None, dtype=np.float64, data_rng=None,
          **apply_kwargs):
    """init with `input_shape` (may hold -1), apply to random inputs of `concrete_shape`;
    checks the shape agreement and returns (params, x, y)."""
    init, apply = layer
    out_shape, params = init(KEY, input_shape)
    params = f64(params) if dtype == np.float64 else params
    x = (data_rng or RNG).normal(size=concrete_shape or input_shape).astype(dtype)
    y = apply(params, x, **apply_kwargs)
    assert shapes_agree(out_shape, y.shape), (out_shape, y.shape)
    assert layer.init_state(input_shape)[0] == out_shape
    return params, x, y


def grad_check(layer, params, x, order=1, tol=None, **apply_kwargs):
    _, apply = layer
    check_grads(lambda p, v: apply(p, v, **apply_kwargs), (params, x), order=order, atol=tol,
                rtol=tol)


# ------------------------------------------------------------------------ Dense


@settings(max_examples=10)
@given(batch=st.integers(1, 4), lead=st.lists(st.integers(1, 3), max_size=2),
       features=st.integers(1, 5), out=st.integers(1, 5))
def test_dense_shapes_and_values(batch, lead, features, out):
    shape = (batch, *lead, features)
    layer = nn.Dense(out)
    params, x, y = build(layer, (-1, *lead, features), shape)
    assert params["w"].shape == (features, out) and params["b"].shape == (out,)
    np.testing.assert_allclose(np.asarray(y), x @ params["w"] + params["b"], rtol=1e-12)


def test_dense_gradients_and_param_names():
    layer = nn.Dense(3, b_init=nn.initializers.normal(1.0))
    params, x, _ = build(layer, (-1, 4), (2, 4))
    assert sorted(params) == ["b", "w"]
    grad_check(layer, params, x, order=2)


def test_shape_mismatch_error_names_layer_and_shapes():
    init, apply = nn.Dense(3)
    _, params = init(KEY, (-1, 64))
    with pytest.raises(ValueError, match=r"Dense\(3\): expected inputs of shape \(-1, 64\).*"
                                         r"got inputs of shape \(2, 8, 8\)"):
        apply(params, jnp.ones((2, 8, 8)))
    # the batch size is free, even when init saw a concrete one
    init, apply = nn.Dense(3)
    _, params = init(KEY, (32, 5))
    assert apply(params, jnp.ones((7, 5))).shape == (7, 3)
    with pytest.raises(ValueError, match="must be known at init"):
        nn.Dense(3).init(KEY, (-1, -1))
    with pytest.raises(TypeError, match="input_shape must be a tuple of ints"):
        nn.Dense(3).init(KEY, "64")


def test_params_built_elsewhere_are_still_checked_against_the_weights():
    _, params = nn.Dense(3).init(KEY, (-1, 4))
    fresh_apply = nn.Dense(3).apply  # a new layer object: it has seen no init
    assert fresh_apply(params, jnp.ones((2, 4))).shape == (2, 3)
    with pytest.raises(ValueError, match=r"Dense\(3\): the weight expects 4 input features"):
        fresh_apply(params, jnp.ones((2, 5)))


# ------------------------------------------------------------------------ convolution


def conv_reference(x, w, strides, pads, dilation, groups):
    """Direct loop: out[n, o..., c] = sum over the window and the group's channels."""
    n_sp = x.ndim - 2
    xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)])
    k_shape = w.shape[:n_sp]
    cin_g, cout = w.shape[-2], w.shape[-1]
    cout_g = cout // groups
    out_sp = [(xp.shape[1 + i] - ((k_shape[i] - 1) * dilation[i] + 1)) // strides[i] + 1
              for i in range(n_sp)]
    out = np.zeros((x.shape[0], *out_sp, cout))
    for pos in itertools.product(*[range(o) for o in out_sp]):
        for k in itertools.product(*[range(s) for s in k_shape]):
            idx = tuple(p * s + kk * d for p, s, kk, d in zip(pos, strides, k, dilation))
            patch = xp[(slice(None),) + idx]                    # (N, C)
            for g in range(groups):
                xs = patch[:, g * cin_g:(g + 1) * cin_g]
                ws = w[k][:, g * cout_g:(g + 1) * cout_g]
                out[(slice(None),) + pos + (slice(g * cout_g, (g + 1) * cout_g),)] += xs @ ws
    return out


def same_pads(sizes, ks, strides, dilation):
    pads = []
    for n, k, s, d in zip(sizes, ks, strides, dilation):
        eff = (k - 1) * d + 1
        total = max((-(-n // s) - 1) * s + eff - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


@settings(max_examples=12)
@given(data=st.data())
def test_conv_matches_direct_loop(data):
    n_sp = data.draw(st.integers(1, 3))
    sizes = tuple(data.draw(st.integers(3, 6)) for _ in range(n_sp))
    ks = tuple(data.draw(st.integers(1, 3)) for _ in range(n_sp))
    strides = tuple(data.draw(st.integers(1, 2)) for _ in range(n_sp))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(n_sp))
    groups = data.draw(st.sampled_from([1, 2]))
    cin, cout = 2 * groups, 2 * groups
    padding = data.draw(st.sampled_from(["VALID", "SAME", "explicit"]))
    if padding == "explicit":
        padding = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2)))
                        for _ in range(n_sp))
    if padding == "VALID" and any((k - 1) * d + 1 > n for k, d, n in zip(ks, dilation, sizes)):
        padding = "SAME"
    layer = nn.Conv(cout, ks, strides=strides, padding=padding, dilation=dilation,
                    feature_group_count=groups, b_init=nn.initializers.normal(1.0))
    params, x, y = build(layer, (-1, *sizes, cin), (2, *sizes, cin))
    pads = {"VALID": [(0, 0)] * n_sp}.get(padding) if isinstance(padding, str) else padding
    if padding == "SAME":
        pads = same_pads(sizes, ks, strides, dilation)
    expected = conv_reference(x, np.asarray(params["w"]), strides, pads, dilation, groups)
    np.testing.assert_allclose(np.asarray(y), expected + np.asarray(params["b"]), rtol=1e-10,
                               atol=1e-12)


def test_conv_gradients_and_errors():
    layer = nn.Conv(3, (2, 2), strides=(2, 1), padding="SAME")
    params, x, _ = build(layer, (-1, 4, 5, 2), (2, 4, 5, 2))
    assert params["w"].shape == (2, 2, 2, 3)
    grad_check(layer, params, x)
    with pytest.raises(ValueError, match=r"Conv\(3, \(2, 2\)\): expected inputs of shape "
                                         r"\(-1, 4, 5, 2\)"):
        layer.apply(params, np.ones((2, 4, 5, 3)))
    with pytest.raises(ValueError, match="rank 4"):
        layer.init(KEY, (-1, 4, 2))
    with pytest.raises(ValueError, match="multiple of feature_group_count"):
        nn.Conv(4, (3, 3), feature_group_count=2).init(KEY, (-1, 5, 5, 3))
    with pytest.raises(ValueError, match="does not fit"):
        nn.Conv(4, (5, 5)).init(KEY, (-1, 3, 3, 1))
    _, _, y = build(nn.Conv(2, (3, 3), padding=1), (-1, 5, 4, 1), (1, 5, 4, 1))
    assert y.shape == (1, 5, 4, 2)


def conv_transpose_reference(x, w, strides, pads):
    """Scatter form: input pixel i and kernel tap k land on output i * s + pad_lo - k."""
    n_sp = x.ndim - 2
    k_shape = w.shape[:n_sp]
    out_sp = [(x.shape[1 + i] - 1) * strides[i] + 1 + pads[i][0] + pads[i][1] - k_shape[i] + 1
              for i in range(n_sp)]
    out = np.zeros((x.shape[0], *out_sp, w.shape[-1]))
    for i in itertools.product(*[range(n) for n in x.shape[1:-1]]):
        for k in itertools.product(*[range(s) for s in k_shape]):
            o = tuple(ii * s + p[0] - kk for ii, s, p, kk in zip(i, strides, pads, k))
            if all(0 <= oo < n for oo, n in zip(o, out_sp)):
                out[(slice(None),) + o] += x[(slice(None),) + i] @ w[k]
    return out


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("ks, strides", [((3, 3), (2, 2)), ((2, 3), (1, 2)), ((1,), (3,)),
                                         ((4, 4), (2, 2))])
def test_conv_transpose(padding, ks, strides):
    n_sp = len(ks)
    sizes = (3, 4)[:n_sp]
    layer = nn.ConvTranspose(2, ks, strides=strides, padding=padding)
    params, x, y = build(layer, (-1, *sizes, 3), (2, *sizes, 3))
    if padding == "SAME":
        assert y.shape[1:-1] == tuple(n * s for n, s in zip(sizes, strides))
    else:
        assert y.shape[1:-1] == tuple(n * s + max(k - s, 0) for n, s, k in zip(sizes, strides,
                                                                                ks))
    pads = []
    for k, s in zip(ks, strides):
        if padding == "SAME":
            total = k + s - 2
            lo = k - 1 if s > k - 1 else -(-total // 2)
        else:
            total, lo = k + s - 2 + max(k - s, 0), k - 1
        pads.append((lo, total - lo))
    expected = conv_transpose_reference(x, np.asarray(params["w"]), strides, pads)
    np.testing.assert_allclose(np.asarray(y), expected + np.asarray(params["b"]), rtol=1e-10,
                               atol=1e-12)


def test_conv_transpose_gradients():
    layer = nn.ConvTranspose(2, (3, 3), strides=(2, 2), padding="SAME")
    params, x, _ = build(layer, (-1, 2, 3, 2), (1, 2, 3, 2))
    grad_check(layer, params, x)


# ------------------------------------------------------------------------ pooling


def pool_reference(x, window, strides, pads, kind):
    n_sp = x.ndim - 2
    fill = -np.inf if kind == "max" else np.nan
    xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)], constant_values=fill)
    out_sp = [(xp.shape[1 + i] - window[i]) // strides[i] + 1 for i in range(n_sp)]
    out = np.zeros((x.shape[0], *out_sp, x.shape[-1]))
    for pos in itertools.product(*[range(o) for o in out_sp]):
        sl = tuple(slice(p * s, p * s + w) for p, s, w in zip(pos, strides, window))
        patch = xp[(slice(None),) + sl].reshape(x.shape[0], -1, x.shape[-1])
        if kind == "max":
            out[(slice(None),) + pos] = patch.max(1)
        elif kind == "avg":
            out[(slice(None),) + pos] = np.nanmean(patch, 1)
        else:
            out[(slice(None),) + pos] = np.nansum(patch, 1)
    return out


@settings(max_examples=12)
@given(data=st.data())
def test_pooling_matches_loop(data):
    n_sp = data.draw(st.integers(1, 3))
    sizes = tuple(data.draw(st.integers(2, 5)) for _ in range(n_sp))
    window = tuple(data.draw(st.integers(1, 2)) for _ in range(n_sp))
    strides = tuple(data.draw(st.integers(1, 2)) for _ in range(n_sp))
    padding = data.draw(st.sampled_from(["VALID", "SAME"]))
    kind = data.draw(st.sampled_from(["max", "avg", "sum"]))
    layer = {"max": nn.MaxPool, "avg": nn.AvgPool, "sum": nn.SumPool}[kind](
        window, strides=strides, padding=padding)
    _, x, y = build(layer, (-1, *sizes, 3), (2, *sizes, 3))
    pads = same_pads(sizes, window, strides, (1,) * n_sp) if padding == "SAME" \
        else [(0, 0)] * n_sp
    np.testing.assert_allclose(np.asarray(y), pool_reference(x, window, strides, pads, kind),
                               rtol=1e-12)


def test_pooling_gradients_and_global_pools():
    x = RNG.permutation(60).reshape(1, 4, 5, 3).astype(np.float64)  # no ties for the max
    for layer in (nn.MaxPool((2, 2), strides=(2, 2), padding="SAME"), nn.AvgPool((2, 3))):
        _, apply = layer
        layer.init(KEY, (-1, 4, 5, 3))
        check_grads(lambda v: apply((), v), (x,), order=1)
    for layer, ref in ((nn.GlobalAvgPool, x.mean((1, 2))), (nn.GlobalMaxPool, x.max((1, 2)))):
        _, x2, y = build(layer, (-1, 4, 5, 3), x.shape)
        np.testing.assert_allclose(np.asarray(layer.apply((), x)), ref)


# ------------------------------------------------------------------------ reshaping


@settings(max_examples=10)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4))
def test_flatten_and_reshape(shape):
    _, x, y = build(nn.Flatten, (-1, *shape), (2, *shape))
    np.testing.assert_array_equal(np.asarray(y), x.reshape(2, -1))
    size = int(np.prod(shape))
    _, x, y = build(nn.Reshape((size, -1)), (-1, *shape), (3, *shape))
    np.testing.assert_array_equal(np.asarray(y), x.reshape(3, size, 1))
    with pytest.raises(ValueError, match="cannot be reshaped"):
        nn.Reshape((size + 1,)).init(KEY, (-1, *shape))


def test_zero_pad():
    layer = nn.ZeroPad(((1, 2), 1))
    _, x, y = build(layer, (-1, 3, 4, 2), (2, 3, 4, 2))
    np.testing.assert_array_equal(np.asarray(y), np.pad(x, [(0, 0), (1, 2), (1, 1), (0, 0)]))


def test_pixel_shuffle_is_depth_to_space():
    r, c = 2, 3
    layer = nn.PixelShuffle(r)
    _, x, y = build(layer, (-1, 2, 3, c * r * r), (2, 2, 3, c * r * r))
    y = np.asarray(y)
    for h, w, i, j, ch in itertools.product(range(2), range(3), range(r), range(r), range(c)):
        np.testing.assert_array_equal(y[:, h * r + i, w * r + j, ch], x[:, h, w, (i * r + j) * c
                                                                          + ch])
    with pytest.raises(ValueError, match="multiple of r"):
        layer.init(KEY, (-1, 2, 2, 6))


def test_upsample():
    _, x, y = build(nn.Upsample((2, 3)), (-1, 2, 2, 1), (1, 2, 2, 1))
    np.testing.assert_array_equal(np.asarray(y), x.repeat(2, axis=1).repeat(3, axis=2))
    line = np.array([0.0, 1.0]).reshape(1, 2, 1)
    out = nn.Upsample((2,), method="bilinear").apply((), line)
    np.testing.assert_allclose(np.asarray(out).ravel(), [0.0, 0.25, 0.75, 1.0])
    layer = nn.Upsample(2, method="bilinear")
    params, x, y = build(layer, (-1, 3, 4, 2), (2, 3, 4, 2))
    const = nn.Upsample(4, method="bilinear").apply((), np.full((1, 3, 3, 1), 2.5))
    np.testing.assert_allclose(np.asarray(const), 2.5)
    check_grads(lambda v: layer.apply((), v), (x,), order=1)


# ------------------------------------------------------------------------ dropout


def test_dropout_rate_is_the_drop_probability():
    init, apply = nn.Dropout(0.3)
    x = jnp.ones((20000,))
    y = np.asarray(apply((), x, rng=KEY, training=True))
    dropped = np.mean(y == 0)
    assert abs(dropped - 0.3) < 0.015
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.03                   # expectation preserved
    np.testing.assert_array_equal(np.asarray(apply((), x)), np.asarray(x))  # eval: identity
    y2 = np.asarray(apply((), x, rng=nanofn.random.key(1), training=True))
    assert not np.array_equal(y, y2)


def test_dropout_without_rng_shows_the_call_to_make():
    _, apply = nn.Dropout(0.5)
    with pytest.raises(ValueError, match=r"apply\(params, inputs, rng=key, training=True\)"):
        apply((), jnp.ones(3), training=True)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        nn.Dropout(1.5)


def test_dropout_under_jit_and_grad():
    init, apply = nn.serial(nn.Dense(4), nn.Dropout(0.5))
    _, params = init(KEY, (-1, 3))

    @nanofn.jit
    def loss(params, x, key):
        return jnp.sum(apply(params, x, rng=key, training=True) ** 2)
    g = nanofn.grad(loss)(params, jnp.ones((5, 3)), KEY)
    assert g[0]["w"].shape == (3, 4)
    assert float(loss(params, jnp.ones((5, 3)), KEY)) == float(loss(params, jnp.ones((5, 3)),
                                                                     KEY))


# ------------------------------------------------------------------------ normalisation


def test_batchnorm_training_eval_and_state():
    layer = nn.BatchNorm(momentum=0.9)
    init, apply = layer
    _, params = init(KEY, (-1, 4, 4, 3))
    _, state = layer.init_state((-1, 4, 4, 3))
    np.testing.assert_array_equal(np.asarray(state["mean"]), np.zeros(3))
    np.testing.assert_array_equal(np.asarray(state["var"]), np.ones(3))
    x = RNG.normal(2.0, 3.0, size=(8, 4, 4, 3))
    y, new_state = apply(f64(params), x, state=f64(state), training=True)
    y = np.asarray(y)
    np.testing.assert_allclose(y.mean((0, 1, 2)), 0, atol=1e-10)
    np.testing.assert_allclose(y.var((0, 1, 2)), x.var((0, 1, 2)) / (x.var((0, 1, 2)) + 1e-5),
                               rtol=1e-10)
    np.testing.assert_allclose(np.asarray(new_state["mean"]), 0.1 * x.mean((0, 1, 2)),
                               rtol=1e-10)
    np.testing.assert_allclose(np.asarray(new_state["var"]), 0.9 + 0.1 * x.var((0, 1, 2)),
                               rtol=1e-10)
    # evaluation uses the running statistics and leaves them alone
    y_eval, same = apply(f64(params), x, state=new_state)
    m, v = np.asarray(new_state["mean"]), np.asarray(new_state["var"])
    np.testing.assert_allclose(np.asarray(y_eval), (x - m) / np.sqrt(v + 1e-5), rtol=1e-10)
    assert same is new_state
    # training without state: batch statistics, plain outputs
    np.testing.assert_allclose(np.asarray(apply(f64(params), x, training=True)), y, rtol=1e-12)
    with pytest.raises(ValueError, match=r"apply\(params, inputs, state=state\)"):
        apply(params, x)


def test_batchnorm_gradients():
    layer = nn.BatchNorm(axis=0)
    params, x, _ = build(layer, (-1, 3), (6, 3), training=True)
    params = {"scale": RNG.normal(size=3), "offset": RNG.normal(size=3)}
    grad_check(layer, params, x, training=True)
    _, state = layer.init_state((-1, 3))
    check_grads(lambda p, v: layer.apply(p, v, state=f64(state))[0], (params, x), order=1)


def test_layer_norm_and_group_norm():
    layer = nn.LayerNorm()
    params, x, y = build(layer, (-1, -1, 6), (2, 5, 6))
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-10)
    params = {"scale": RNG.normal(size=6), "offset": RNG.normal(size=6)}
    grad_check(layer, params, x[:, :2])
    gn = nn.GroupNorm(num_groups=2)
    params, x, y = build(gn, (-1, 3, 3, 4), (2, 3, 3, 4))
    g = x.reshape(2, 3, 3, 2, 2)
    ref = ((g - g.mean((1, 2, 4), keepdims=True))
           / np.sqrt(g.var((1, 2, 4), keepdims=True) + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-10)
    params = {"scale": RNG.normal(size=4), "offset": RNG.normal(size=4)}
    grad_check(gn, params, x[:1])
    with pytest.raises(ValueError, match="multiple of num_groups"):
        gn.init(KEY, (-1, 3, 3, 5))


# ------------------------------------------------------------------------ embedding


def test_embedding():
    layer = nn.Embedding(7, 3)
    init, apply = layer
    out_shape, params = init(KEY, (-1, 5))
    ids = RNG.integers(0, 7, size=(2, 5)).astype(np.int32)
    y = apply(params, ids)
    assert out_shape == (-1, 5, 3) and y.shape == (2, 5, 3)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(params["embeddings"])[ids])
    g = nanofn.grad(lambda p: jnp.sum(apply(p, ids) ** 2))(params)
    table = np.asarray(params["embeddings"])
    expected = np.zeros_like(table)
    np.add.at(expected, ids, 2 * table[ids])
    np.testing.assert_allclose(np.asarray(g["embeddings"]), expected, rtol=1e-6)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 7\), found 7"):
        apply(params, np.full((2, 5), 7, np.int32))
    with pytest.raises(TypeError, match="integer ids"):
        apply(params, np.zeros((2, 5)))


# ------------------------------------------------------------------------ activations


@pytest.mark.parametrize("layer, fn", [
    (nn.Relu, nn.relu), (nn.Tanh, jnp.tanh), (nn.Gelu, nn.gelu), (nn.Sigmoid, nn.sigmoid),
    (nn.Softmax, nn.softmax), (nn.LogSoftmax, nn.log_softmax), (nn.Elu, nn.elu),
    (nn.Selu, nn.selu), (nn.Silu, nn.silu), (nn.Softplus, nn.softplus),
    (nn.LeakyRelu, nn.leaky_relu), (nn.Exp, jnp.exp), (nn.Relu6, nn.relu6),
    (nn.Celu, nn.celu), (nn.HardTanh, nn.hard_tanh), (nn.LogSigmoid, nn.log_sigmoid),
])
@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 3, 4)])
def test_activation_layers(layer, fn, shape):
    _, x, y = build(layer, shape)
    np.testing.assert_allclose(np.asarray(y), np.asarray(fn(x)), rtol=1e-12)


def test_elementwise_with_kwargs():
    init, apply = nn.elementwise(nn.leaky_relu, negative_slope=0.5)
    assert init(KEY, (-1, 2)) == ((-1, 2), ())
    np.testing.assert_allclose(np.asarray(apply((), np.array([-2.0, 2.0]))), [-1.0, 2.0])


# ------------------------------------------------------------------------ every layer


def _spatial(data, n_sp, lo=1, hi=4):
    return tuple(data.draw(st.integers(lo, hi)) for _ in range(n_sp))


# name -> (data -> (layer, input_shape drawn with a concrete batch)), inputs are floats
LAYER_CASES = {
    "Dense": lambda d: (nn.Dense(d.draw(st.integers(1, 4))),
                        (2, *_spatial(d, d.draw(st.integers(0, 2))), d.draw(st.integers(1, 4)))),
    "Conv": lambda d: (lambda n: (nn.Conv(2, _spatial(d, n, 1, 2), padding="SAME",
                                          strides=_spatial(d, n, 1, 2)),
                                  (2, *_spatial(d, n, 2, 4), 2)))(d.draw(st.integers(1, 3))),
    "ConvTranspose": lambda d: (lambda n: (nn.ConvTranspose(2, _spatial(d, n, 1, 3),
                                                            strides=_spatial(d, n, 1, 2),
                                                            padding=d.draw(st.sampled_from(
                                                                ["SAME", "VALID"]))),
                                           (1, *_spatial(d, n, 1, 3), 2)))(
        d.draw(st.integers(1, 2))),
    "MaxPool": lambda d: (lambda n: (nn.MaxPool(_spatial(d, n, 1, 2), padding="SAME"),
                                     (2, *_spatial(d, n, 2, 4), 2)))(d.draw(st.integers(1, 3))),
    "AvgPool": lambda d: (lambda n: (nn.AvgPool(_spatial(d, n, 1, 2),
                                                strides=_spatial(d, n, 1, 2)),
                                     (2, *_spatial(d, n, 2, 4), 2)))(d.draw(st.integers(1, 3))),
    "GlobalAvgPool": lambda d: (nn.GlobalAvgPool, (2, *_spatial(d, d.draw(st.integers(1, 3))),
                                                   3)),
    "GlobalMaxPool": lambda d: (nn.GlobalMaxPool, (2, *_spatial(d, d.draw(st.integers(1, 2))),
                                                   3)),
    "ZeroPad": lambda d: (lambda n: (nn.ZeroPad([(d.draw(st.integers(0, 2)),
                                                  d.draw(st.integers(0, 2))) for _ in range(n)]),
                                     (2, *_spatial(d, n), 2)))(d.draw(st.integers(1, 3))),
    "Flatten": lambda d: (nn.Flatten, (2, *_spatial(d, d.draw(st.integers(0, 3))))),
    "Reshape": lambda d: (lambda s: (nn.Reshape((-1, s[-1])), (2, *s)))(
        _spatial(d, d.draw(st.integers(1, 3)))),
    "PixelShuffle": lambda d: (lambda r: (nn.PixelShuffle(r),
                                          (1, *_spatial(d, 2, 1, 3), r * r * d.draw(
                                              st.integers(1, 2)))))(d.draw(st.integers(1, 2))),
    "Upsample": lambda d: (lambda n: (nn.Upsample(_spatial(d, n, 1, 3), method=d.draw(
        st.sampled_from(["nearest", "bilinear"]))), (1, *_spatial(d, n, 1, 3), 2)))(
        d.draw(st.integers(1, 3))),
    "Dropout": lambda d: (nn.Dropout(0.5), (2, *_spatial(d, d.draw(st.integers(0, 2))))),
    "BatchNorm": lambda d: (nn.BatchNorm(), (4, *_spatial(d, d.draw(st.integers(0, 2))), 3)),
    "LayerNorm": lambda d: (nn.LayerNorm(), (2, *_spatial(d, d.draw(st.integers(0, 2))), 3)),
    "GroupNorm": lambda d: (nn.GroupNorm(2), (2, *_spatial(d, d.draw(st.integers(1, 2)), 2, 3),
                                              4)),
    "SimpleRNN": lambda d: (nn.SimpleRNN(3), (2, d.draw(st.integers(1, 4)), 2)),
    "LSTM": lambda d: (nn.LSTM(3, return_sequences=False), (2, d.draw(st.integers(1, 4)), 2)),
    "GRU": lambda d: (nn.GRU(3, reverse=True), (2, d.draw(st.integers(1, 4)), 2)),
    "Bidirectional": lambda d: (nn.Bidirectional(nn.GRUCell(2)),
                                (1, d.draw(st.integers(1, 3)), 2)),
    "MultiHeadAttention": lambda d: (lambda h: (nn.MultiHeadAttention(h),
                                                (2, d.draw(st.integers(1, 4)), 2 * h)))(
        d.draw(st.integers(1, 2))),
    "TransformerEncoderLayer": lambda d: (nn.TransformerEncoderLayer(2, 4),
                                          (1, d.draw(st.integers(1, 3)), 4)),
    "Gelu": lambda d: (nn.Gelu, (2, *_spatial(d, d.draw(st.integers(0, 2))))),
    "Softmax": lambda d: (nn.Softmax, (2, *_spatial(d, d.draw(st.integers(0, 2)), 2, 3))),
    "residual": lambda d: (lambda f: (nn.residual(nn.Dense(f), nn.Tanh), (2, f)))(
        d.draw(st.integers(1, 3))),
}
TRAINING = {"Dropout", "BatchNorm"}


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
@settings(max_examples=5)
@given(data=st.data())
def test_every_layer_shape_agreement_and_gradients(name, data):
    layer, shape = LAYER_CASES[name](data)
    batch_free = (-1,) + shape[1:]
    kwargs = {"training": True, "rng": KEY} if name in TRAINING else {}
    rng = np.random.default_rng(sorted(LAYER_CASES).index(name))  # same inputs in any test order
    params, x, y = build(layer, batch_free, shape, data_rng=rng, **kwargs)
    assert y.dtype == np.float64
    y32 = layer.apply(nanofn.tree.map(lambda a: np.asarray(a, np.float32), params),
                      x.astype(np.float32), **kwargs)
    assert y32.dtype == np.float32
    if name == "MaxPool" or name == "GlobalMaxPool":
        x = rng.permutation(x.size).reshape(x.shape).astype(np.float64) / x.size  # no ties
    if name == "Dropout":
        kwargs["rng"] = KEY  # the same mask for every evaluation
    # LayerNorm over few features is strongly curved: finite differences need more slack
    tol = 1e-4 if name == "TransformerEncoderLayer" else None
    grad_check(layer, params, x, tol=tol, **kwargs)
