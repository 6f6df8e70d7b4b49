"""`nn.dot_product_attention`'s whole jax.nn signature: grouped-query attention (fewer
key/value heads), `query_seq_lengths`, `key_value_seq_lengths`, `local_window_size`,
`bias`, `return_residual` and `implementation`, against attention written out in numpy
the way jax.nn computes it (masked logits are `-0.7 * float32 max`, padding queries give
zeros, the residual is the log-sum-exp of the masked logits as `(B, T, N)`)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
from nanofn import nn
from nanofn.testing import check_grads


def np_attention(q, k, v, bias=None, mask=None, is_causal=False, scale=None,
                 q_len=None, kv_len=None, window=None):
    """(output, lse) in float64, (B, T, N, H) layout; key heads repeat over groups."""
    b, t, n, h = q.shape
    s, kh = k.shape[1], k.shape[2]
    k, v = (np.repeat(a, n // kh, axis=2) for a in (k, v))  # head i uses key head i // g
    scale = 1 / np.sqrt(h) if scale is None else scale
    logits = np.einsum("btnh,bsnh->bnts", q, k).astype(np.float64) * scale
    if bias is not None:
        logits = logits + bias
    i, j = np.arange(t)[:, None], np.arange(s)[None, :]
    keep = np.ones(logits.shape, bool)
    if mask is not None:
        keep &= mask
    if is_causal:
        keep &= j <= i
    if window is not None:
        keep &= (i <= j + window[0]) & (i >= j - window[1])
    if q_len is not None:
        keep &= np.arange(t)[None, None, :, None] < q_len[:, None, None, None]
    if kv_len is not None:
        keep &= np.arange(s)[None, None, None, :] < kv_len[:, None, None, None]
    logits = np.where(keep, logits, -0.7 * np.finfo(np.float32).max)
    top = logits.max(-1, keepdims=True)
    w = np.exp(logits - top)
    lse = (np.log(w.sum(-1, keepdims=True)) + top)[..., 0].transpose(0, 2, 1)
    out = np.einsum("bnts,bsnh->btnh", w / w.sum(-1, keepdims=True), v)
    if q_len is not None:
        out = out * (np.arange(t)[None, :, None, None] < q_len[:, None, None, None])
    return out, lse


@st.composite
def cases(draw):
    b, kh, g, h = (draw(st.integers(1, 2), label=lbl) for lbl in ("B", "K", "G", "H"))
    t = draw(st.integers(1, 5), label="T")
    s = draw(st.sampled_from([t, 1, 4]), label="S")
    rng = np.random.default_rng(draw(st.integers(0, 2**16), label="seed"))
    q = rng.standard_normal((b, t, kh * g, h))
    k, v = rng.standard_normal((2, b, s, kh, h))
    kw = {"is_causal": draw(st.booleans(), label="causal")}
    if draw(st.booleans(), label="bias"):
        kw["bias"] = rng.standard_normal(draw(st.sampled_from(
            [(b, kh * g, t, s), (1, 1, t, s), (1, kh * g, 1, s)])))
    if draw(st.booleans(), label="mask"):
        kw["mask"] = rng.uniform(size=draw(st.sampled_from([(b, 1, t, s), (t, s)]))) > 0.4
    if draw(st.booleans(), label="q_len"):
        kw["query_seq_lengths"] = rng.integers(0, t + 1, size=b).astype(np.int32)
    if draw(st.booleans(), label="kv_len"):
        kw["key_value_seq_lengths"] = rng.integers(0, s + 1, size=b).astype(np.int32)
    window = draw(st.sampled_from([None, 0, 1, (0, 2), (2, 0)]), label="window")
    if window is not None:
        kw["local_window_size"] = window
    kw["scale"] = draw(st.sampled_from([None, 0.5]), label="scale")
    return q, k, v, kw


def _reference(q, k, v, kw):
    window = kw.get("local_window_size")
    mask = kw.get("mask")
    return np_attention(q, k, v, bias=kw.get("bias"),
                        mask=None if mask is None else mask.reshape((1,) * (4 - mask.ndim)
                                                                    + mask.shape),
                        is_causal=kw["is_causal"], scale=kw["scale"],
                        q_len=kw.get("query_seq_lengths"),
                        kv_len=kw.get("key_value_seq_lengths"),
                        window=(window, window) if isinstance(window, int) else window)


@given(cases())
def test_matches_numpy_reference_with_residual(case):
    q, k, v, kw = case
    want, want_lse = _reference(q, k, v, kw)
    out, lse = nn.dot_product_attention(q, k, v, return_residual=True, **kw)
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(lse), want_lse, rtol=1e-10, atol=1e-12)
    plain = nanofn.jit(lambda q, k, v: nn.dot_product_attention(q, k, v, **kw))(q, k, v)
    np.testing.assert_allclose(np.asarray(plain), want, rtol=1e-10, atol=1e-12)


@given(cases())
def test_vmap_over_a_leading_axis_matches_a_loop(case):
    q, k, v, kw = case
    kw = {n: a for n, a in kw.items() if n not in ("query_seq_lengths",
                                                      "key_value_seq_lengths")}
    f = lambda q, k, v: nn.dot_product_attention(q, k, v, **kw)  # noqa: E731
    qs, ks, vs = (np.stack([a, 2 * a]) for a in (q, k, v))
    got = nanofn.vmap(f)(qs, ks, vs)
    for r in range(2):
        np.testing.assert_allclose(np.asarray(got[r]), np.asarray(f(qs[r], ks[r], vs[r])),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kw", [
    {"is_causal": True},
    {"local_window_size": (1, 0), "key_value_seq_lengths": np.array([3, 2], np.int32)},
    {"query_seq_lengths": np.array([2, 4], np.int32), "bias": np.ones((1, 4, 1, 4))},
])
def test_gradients_grouped_query_attention(kw):
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, 4, 4, 3))
    k, v = rng.standard_normal((2, 2, 4, 2, 3))
    check_grads(lambda q, k, v: nn.dot_product_attention(q, k, v, **kw), (q, k, v), order=2)


def test_residual_is_a_constant():
    rng = np.random.default_rng(2)
    q, k, v = rng.standard_normal((3, 1, 3, 2, 4))
    g = nanofn.grad(lambda q: nn.dot_product_attention(q, k, v, return_residual=True)[1]
                    .sum())(q)
    assert np.all(np.asarray(g) == 0)


def test_multi_query_equals_repeated_keys():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    k, v = rng.standard_normal((2, 2, 5, 1, 3)).astype(np.float32)
    got = nn.dot_product_attention(q, k, v, is_causal=True)
    want = nn.dot_product_attention(q, np.repeat(k, 4, 2), np.repeat(v, 4, 2), is_causal=True)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_errors_name_what_is_wrong():
    q = np.ones((2, 3, 4, 5))
    kv = np.ones((2, 3, 3, 5))
    with pytest.raises(ValueError, match="multiple of key/value heads, got 4 vs 3"):
        nn.dot_product_attention(q, kv, kv)
    with pytest.raises(ValueError, match="value must have the shape and dtype of key"):
        nn.dot_product_attention(q, q, np.ones((2, 3, 4, 6)))
    with pytest.raises(ValueError, match=r"query_seq_lengths must be an integer array of "
                                         r"shape \(B,\) = \(2,\)"):
        nn.dot_product_attention(q, q, q, query_seq_lengths=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="implementation='cudnn' is not available"):
        nn.dot_product_attention(q, q, q, implementation="cudnn")
    with pytest.raises(ValueError, match=r"bias of shape \(1, 1, 3, 2\) does not broadcast"):
        nn.dot_product_attention(q, q, q, bias=np.ones((3, 2)))
