"""Recurrent cells and sequence layers against numpy loops; attention against its formula;
gradients in float64."""

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


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_step(kind, p, carry, x):
    """One step of each cell, written from the textbook equations."""
    if kind == "rnn":
        h = np.tanh(x @ p["w_i"] + carry @ p["w_h"] + p["b"])
        return h, h
    if kind == "lstm":
        h, c = carry
        z = x @ p["w_i"] + h @ p["w_h"] + p["b"]
        i, f, g, o = np.split(z, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        return (h, c), h
    xi = x @ p["w_i"] + p["b_i"]
    hh = carry @ p["w_h"] + p["b_h"]
    (xr, xz, xn), (hr, hz, hn) = np.split(xi, 3, -1), np.split(hh, 3, -1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    h = (1 - z) * n + z * carry
    return h, h


CELLS = {"rnn": nn.SimpleRNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


def np_run(kind, p, x, hidden, reverse):
    b, t, _ = x.shape
    zeros = np.zeros((b, hidden))
    carry = (zeros, zeros) if kind == "lstm" else zeros
    ys = [None] * t
    for step in (reversed(range(t)) if reverse else range(t)):
        carry, ys[step] = np_step(kind, p, carry, x[:, step])
    return np.stack(ys, 1)


@pytest.mark.parametrize("kind", sorted(CELLS))
@pytest.mark.parametrize("reverse", [False, True])
def test_rnn_matches_numpy_loop(kind, reverse):
    hidden = 4
    layer = nn.RNN(CELLS[kind](hidden), reverse=reverse)
    out_shape, params = layer.init(KEY, (-1, 5, 3))
    assert out_shape == (-1, 5, hidden)
    params = f64(params)
    x = RNG.normal(size=(2, 5, 3))
    y = np.asarray(layer.apply(params, x))
    expected = np_run(kind, params, x, hidden, reverse)
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    last = nn.RNN(CELLS[kind](hidden), return_sequences=False, reverse=reverse)
    np.testing.assert_allclose(np.asarray(last.apply(params, x)),
                               expected[:, 0 if reverse else -1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_rnn_gradients(kind):
    layer = nn.RNN(CELLS[kind](3), return_sequences=False)
    _, params = layer.init(KEY, (-1, 4, 2))
    check_grads(lambda p, x: layer.apply(p, x), (f64(params), RNG.normal(size=(2, 4, 2))),
                order=1)


@settings(max_examples=8)
@given(batch=st.integers(1, 3), time=st.integers(1, 5), features=st.integers(1, 4),
       hidden=st.integers(1, 4), kind=st.sampled_from(sorted(CELLS)),
       return_sequences=st.booleans())
def test_rnn_shape_agreement(batch, time, features, hidden, kind, return_sequences):
    layer = nn.RNN(CELLS[kind](hidden), return_sequences=return_sequences)
    out_shape, params = layer.init(KEY, (-1, time, features))
    y = layer.apply(params, np.ones((batch, time, features), np.float32))
    assert len(out_shape) == y.ndim and out_shape[1:] == y.shape[1:]
    assert y.dtype == np.float32


def test_lstm_forget_bias_and_convenience_layers():
    cell = nn.LSTMCell(3, forget_bias=1.0)
    _, params = cell.init(KEY, (-1, 2))
    np.testing.assert_array_equal(np.asarray(params["b"]), [0] * 3 + [1] * 3 + [0] * 6)
    assert nn.GRU(4).init(KEY, (-1, 6, 2))[0] == (-1, 6, 4)
    assert nn.LSTM(4, return_sequences=False).init(KEY, (-1, 6, 2))[0] == (-1, 4)
    assert nn.SimpleRNN(2).init(KEY, (-1, 6, 2))[0] == (-1, 6, 2)


def test_bidirectional():
    layer = nn.Bidirectional(nn.GRUCell(3))
    out_shape, params = layer.init(KEY, (-1, 5, 2))
    assert out_shape == (-1, 5, 6)
    params = f64(params)
    x = RNG.normal(size=(2, 5, 2))
    y = np.asarray(layer.apply(params, x))
    np.testing.assert_allclose(y[..., :3], np_run("gru", params["forward"], x, 3, False),
                               rtol=1e-10)
    np.testing.assert_allclose(y[..., 3:], np_run("gru", params["backward"], x, 3, True),
                               rtol=1e-10)


def test_rnn_input_errors():
    layer = nn.GRU(3)
    _, params = layer.init(KEY, (-1, 8, 8))
    with pytest.raises(ValueError, match=r"RNN\(GRUCell\(3\)\): expected inputs of shape "
                                         r"\(-1, 8, 8\).*\(2, 64\)"):
        layer.apply(params, jnp.ones((2, 64)))
    with pytest.raises(ValueError, match="rank 3"):
        layer.init(KEY, (-1, 64))


# ------------------------------------------------------------------------ attention


def np_attention(q, k, v, mask=None):
    logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(q.shape[-1])
    if mask is not None:
        logits = np.where(mask, logits, -1e30)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return np.einsum("bnts,bsnh->btnh", w, v)


def test_dot_product_attention_matches_formula():
    q, k, v = RNG.normal(size=(2, 4, 3, 5)), RNG.normal(size=(2, 6, 3, 5)), \
        RNG.normal(size=(2, 6, 3, 5))
    out = nn.dot_product_attention(q, k, v)
    np.testing.assert_allclose(np.asarray(out), np_attention(q, k, v), rtol=1e-10)
    mask = RNG.uniform(size=(2, 1, 4, 6)) > 0.3
    mask[..., 0] = True
    np.testing.assert_allclose(np.asarray(nn.dot_product_attention(q, k, v, mask=mask)),
                               np_attention(q, k, v, mask), rtol=1e-10)
    causal = np.tril(np.ones((4, 6), bool))
    np.testing.assert_allclose(np.asarray(nn.dot_product_attention(q, k, v, is_causal=True)),
                               np_attention(q, k, v, causal), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(nn.dot_product_attention(q[0], k[0], v[0])),
                               np_attention(q, k, v)[0], rtol=1e-10)
    check_grads(nn.dot_product_attention, (q[:1], k[:1], v[:1]), order=1)
    with pytest.raises(ValueError, match="does not broadcast"):
        nn.dot_product_attention(q, k, v, mask=np.ones((5, 5), bool))


def test_multi_head_attention_matches_formula():
    layer = nn.MultiHeadAttention(num_heads=2, b_init=nn.initializers.normal(1.0))
    out_shape, params = layer.init(KEY, (-1, 5, 8))
    assert out_shape == (-1, 5, 8)
    assert params["query"]["w"].shape == (8, 8) and params["out"]["w"].shape == (8, 8)
    p = f64(params)
    x = RNG.normal(size=(3, 5, 8))

    def proj(name, v):
        return (v @ p[name]["w"] + p[name]["b"]).reshape(3, 5, 2, 4)

    mask = np.tril(np.ones((5, 5), bool))
    for kwargs, m in (({}, None), ({"mask": mask}, mask)):
        heads = np_attention(proj("query", x), proj("key", x), proj("value", x), m)
        expected = heads.reshape(3, 5, 8) @ p["out"]["w"] + p["out"]["b"]
        np.testing.assert_allclose(np.asarray(layer.apply(p, x, **kwargs)), expected,
                                   rtol=1e-10)
    causal = nn.MultiHeadAttention(num_heads=2, causal=True)
    np.testing.assert_allclose(np.asarray(causal.apply(p, x)),
                               np.asarray(layer.apply(p, x, mask=mask)), rtol=1e-12)
    check_grads(lambda p, v: layer.apply(p, v, mask=mask), (p, x[:1]), order=1)


def test_cross_attention_and_dropout():
    layer = nn.MultiHeadAttention(num_heads=2, key_size=3, out_dim=4, dropout_rate=0.5)
    out_shape, params = layer.init(KEY, [(-1, 5, 6), (-1, 7, 2)])
    assert out_shape == (-1, 5, 4)
    q, kv = jnp.ones((2, 5, 6)), jnp.ones((2, 7, 2))
    y = layer.apply(params, [q, kv])
    assert y.shape == (2, 5, 4)
    y_train = layer.apply(params, [q, kv], rng=KEY, training=True)
    assert y_train.shape == (2, 5, 4)
    with pytest.raises(ValueError, match="rng=key"):
        layer.apply(params, [q, kv], training=True)


def test_transformer_encoder_layer():
    layer = nn.TransformerEncoderLayer(num_heads=2, mlp_dim=16, causal=True)
    out_shape, params = layer.init(KEY, (-1, 5, 8))
    assert out_shape == (-1, 5, 8)
    x = RNG.normal(size=(2, 5, 8)).astype(np.float32)
    y = np.asarray(layer.apply(params, x))
    assert y.shape == (2, 5, 8)
    # causal: the first position does not depend on later ones
    x2 = x.copy()
    x2[:, 3:] += 1.0
    y2 = np.asarray(layer.apply(params, x2))
    np.testing.assert_allclose(y2[:, :3], y[:, :3], rtol=1e-5, atol=1e-6)
    assert not np.allclose(y2[:, 3:], y[:, 3:])
    check_grads(lambda p, v: layer.apply(p, v), (f64(params), x[:1, :3].astype(np.float64)),
                order=1, atol=1e-4, rtol=1e-4)
