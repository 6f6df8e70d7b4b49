"""The fused attention primitive (`attention`, nanofn/ops/_attention.py), the fused
attention softmax (`attention_softmax`, nanofn/ops/_nn.py) and `dot_product_attention`
around them: against a plain numpy reference of attention (JAX's semantics: masked logits
become a large negative number, so a fully masked query averages all values), forward and
gradients (float64), jit vs eager, vmap, kernels on vs off."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
from nanofn import nn
from nanofn.ops import _attention, _nn
from nanofn.testing import check_grads

TOL = {np.float32: 2e-5, np.float64: 1e-12}
DTYPES = st.sampled_from([np.float32, np.float64])


def np_attention(q, k, v, mask=None, is_causal=False, scale=None):
    """Attention written out in numpy, (B, T, N, H) layout, as jax.nn computes it."""
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    logits = np.einsum("btnh,bsnh->bnts", q, k).astype(np.float64) * scale
    t, s = logits.shape[-2:]
    keep = np.ones(logits.shape, bool)
    if mask is not None:
        keep = keep & mask
    if is_causal:
        keep = keep & np.tril(np.ones((t, s), bool))
    logits = np.where(keep, logits, -0.7 * np.finfo(q.dtype).max)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w = w / w.sum(-1, keepdims=True)
    return np.einsum("bnts,bsnh->btnh", w, v).astype(q.dtype)


def _draw_qkv(data, dtype):
    b, n, h = (data.draw(st.integers(1, 2), label=lbl) for lbl in "bnh")
    t = data.draw(st.integers(1, 5), label="T")
    s = data.draw(st.sampled_from([t, 1, 4]), label="S")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    big = data.draw(st.sampled_from([1.0, 10.0]), label="magnitude")
    q = (big * rng.standard_normal((b, t, n, h))).astype(dtype)
    k = (big * rng.standard_normal((b, s, n, h))).astype(dtype)
    v = rng.standard_normal((b, s, n, h)).astype(dtype)
    return q, k, v, rng


def _close(got, want, dtype):
    got = np.asarray(got)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=TOL[dtype] * 10, atol=TOL[dtype] * 10)


@given(st.data(), DTYPES, st.booleans())
def test_fused_path_matches_reference_jit_and_kernels_off(data, dtype, causal):
    q, k, v, _ = _draw_qkv(data, dtype)
    scale = data.draw(st.sampled_from([None, 0.3, 2.0]), label="scale")
    want = np_attention(q, k, v, is_causal=causal, scale=scale)
    f = lambda q, k, v: nn.dot_product_attention(q, k, v, scale=scale, is_causal=causal)
    _close(f(q, k, v), want, dtype)
    _close(nanofn.jit(f)(q, k, v), want, dtype)
    with nanofn.config._override("nanofn_use_kernels", False):
        _close(f(q, k, v), want, dtype)


@given(st.data(), DTYPES, st.booleans())
def test_masks_and_fully_masked_rows_match_reference(data, dtype, causal):
    q, k, v, rng = _draw_qkv(data, dtype)
    b, t, n, _ = q.shape
    mask = rng.random((b, n, t, k.shape[1])) < 0.6
    mask[..., rng.integers(t), :] = False  # one query sees no key at all
    want = np_attention(q, k, v, mask=mask, is_causal=causal)
    got = nn.dot_product_attention(q, k, v, mask=mask, is_causal=causal)
    _close(got, want, dtype)
    full = ~mask.any(-1)  # (B, N, T): fully masked queries average every value
    mean = np.broadcast_to(v.mean(1, keepdims=True), got.shape)
    np.testing.assert_allclose(np.asarray(got)[full.transpose(0, 2, 1)],
                               mean[full.transpose(0, 2, 1)], rtol=1e-4, atol=1e-5)


@given(st.data(), DTYPES, st.booleans())
def test_primitive_kernel_matches_numpy_reference(data, dtype, causal):
    shape = data.draw(st.sampled_from([(1, 1), (3, 1), (1, 4), (2, 3, 5, 5), (4, 6, 3)]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    x = (30 * rng.standard_normal(shape)).astype(dtype)
    x = np.asfortranarray(x) if data.draw(st.booleans(), label="fortran") else x
    g = rng.standard_normal(shape).astype(dtype)
    out = _nn.attention_softmax(x, 0.5, causal)
    ref = _nn._attention_softmax_ref(x, scale=0.5, causal=causal)
    _close(out, ref, dtype)
    np.testing.assert_allclose(np.asarray(out).sum(-1), 1, rtol=1e-5)
    if causal:  # hidden keys get exactly 0
        assert not np.asarray(out)[..., ~np.tril(np.ones(shape[-2:], bool))].any()
    grad = _nn.attention_softmax_grad_p.bind(g, out, scale=0.5, causal=causal)
    _close(grad, _nn._attention_softmax_grad_ref(g, np.asarray(out), scale=0.5,
                                                 causal=causal), dtype)
    with nanofn.config._override("nanofn_use_kernels", False):
        np.testing.assert_array_equal(np.asarray(_nn.attention_softmax(x, 0.5, causal)), ref)


@pytest.mark.parametrize("causal", [False, True])
def test_gradients_check_grads(causal):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 3, 2, 2)) for _ in range(3))
    w = rng.standard_normal((1, 3, 2, 2))
    check_grads(lambda q, k, v: nn.dot_product_attention(q, k, v, is_causal=causal) * w,
                (q, k, v), order=2)
    x = rng.standard_normal((2, 3, 4))
    check_grads(lambda x: _nn.attention_softmax(x, 0.7, causal) * x, (x,), order=2)
    g, s = rng.standard_normal((3, 4)), _nn.attention_softmax(rng.standard_normal((3, 4)))
    check_grads(lambda g, s: _nn.attention_softmax_grad_p.bind(g, s, scale=0.7, causal=causal),
                (g, np.asarray(s)), order=1)


def test_grad_uses_the_fused_primitives_jit_eager_and_kernels_off_agree():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((2, 6, 2, 4)).astype(np.float32) for _ in range(3))
    loss = lambda q, k, v: (nn.dot_product_attention(q, k, v, is_causal=True) ** 2).sum()
    names = {e.primitive.name for e in nanofn.make_jaxpr(nanofn.grad(loss, (0, 1, 2)))(
        q, k, v).jaxpr.eqns}
    assert {"attention", "attention_grad"} <= names
    assert not names & {"softmax", "softmax_grad", "select_n", "dot_general", "transpose"}
    eager, jitted = nanofn.grad(loss, (0, 1, 2))(q, k, v), nanofn.jit(
        nanofn.grad(loss, (0, 1, 2)))(q, k, v)
    with nanofn.config._override("nanofn_use_kernels", False):
        off = nanofn.grad(loss, (0, 1, 2))(q, k, v)
    for a, b, c in zip(eager, jitted, off):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_vmap_law(causal):
    x = np.random.default_rng(2).standard_normal((3, 2, 4, 4)).astype(np.float32)
    f = lambda a: _nn.attention_softmax(a, 0.5, causal)
    np.testing.assert_allclose(np.asarray(nanofn.vmap(f, in_axes=1)(x)),
                               np.stack([np.asarray(f(x[:, i])) for i in range(2)]),
                               rtol=1e-6, atol=1e-7)
    g, s = x[0], np.asarray(f(x))  # g unbatched: broadcast to every example
    grad = lambda g, s: _nn.attention_softmax_grad_p.bind(g, s, scale=0.5, causal=causal)
    np.testing.assert_allclose(np.asarray(nanofn.vmap(grad, in_axes=(None, 0))(g, s)),
                               np.stack([np.asarray(grad(g, s[i])) for i in range(3)]),
                               rtol=1e-6, atol=1e-7)


def test_multi_head_attention_causal_matches_explicit_mask():
    init, apply = nn.MultiHeadAttention(num_heads=2, causal=True)
    _, params = init(nanofn.random.key(0), (-1, 5, 8))
    x = np.random.default_rng(3).standard_normal((2, 5, 8)).astype(np.float32)
    causal = apply(params, x)  # the fused path
    init2, apply2 = nn.MultiHeadAttention(num_heads=2)
    explicit = apply2(params, x, mask=np.tril(np.ones((5, 5), bool)))  # the composite path
    np.testing.assert_allclose(np.asarray(causal), np.asarray(explicit), rtol=1e-5, atol=1e-6)


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="attention_softmax: x must be a floating array"):
        _nn.attention_softmax(np.ones((2, 2), np.int32))
    with pytest.raises(ValueError, match="attention_softmax: x must have a query and a key"):
        _nn.attention_softmax(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="attention_softmax_grad: out must match g"):
        _nn.attention_softmax_grad_p.bind(np.ones((2, 2)), np.ones((2, 3)), scale=1.0,
                                          causal=False)


# ------------------------------------------------------------------ the fused primitive


def np_weights(q, k, scale, causal):
    """The attention weights `(B, N, T, S)` in numpy (float64)."""
    logits = np.einsum("btnh,bsnh->bnts", q.astype(np.float64), k) * scale
    if causal:
        t, s = logits.shape[-2:]
        logits = np.where(np.tril(np.ones((t, s), bool)), logits, -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    return w / w.sum(-1, keepdims=True)


@given(st.data(), DTYPES, st.booleans(), st.sampled_from([1 << 19, 1]),
       st.sampled_from([_attention._HALVES_MIN, 2]))
def test_fused_attention_matches_reference_in_any_grouping(data, dtype, causal, group_bytes,
                                                           halves_min):
    # group_bytes=1: one batch element per group, so several groups run (the last one
    # shorter when B is odd); the default puts small batches in one group. halves_min=2:
    # causal self-attention computes its products by halves of the query axis at these
    # small sizes too (odd lengths split unevenly)
    q, k, v, rng = _draw_qkv(data, dtype)
    copies = data.draw(st.integers(1, 2), label="copies")  # batch sizes 1 to 4
    q, k, v = (np.concatenate([a] * copies) for a in (q, k, v))
    scale = data.draw(st.sampled_from([0.3, 1.0]), label="scale")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_attention, "_GROUP_BYTES", group_bytes)
        mp.setattr(_attention, "_HALVES_MIN", halves_min)
        out, w = _attention.fused_attention(q, k, v, scale, causal)
        g = rng.standard_normal(q.shape).astype(dtype)
        dq, dk, dv = _attention.attention_grad_p.bind(g, q, k, v, w, scale=scale,
                                                      causal=causal)
    want_w = np_weights(q, k, scale, causal)
    _close(w, want_w.astype(dtype), dtype)
    _close(out, np_attention(q, k, v, is_causal=causal, scale=scale), dtype)
    if causal:  # hidden keys get exactly 0
        assert not np.asarray(w)[..., ~np.tril(np.ones(w.shape[-2:], bool))].any()
    # the backward against its formula in numpy
    wf, gf = want_w, g.astype(np.float64)
    dw = np.einsum("btnh,bsnh->bnts", gf, v)
    dl = scale * wf * (dw - (dw * wf).sum(-1, keepdims=True))
    for got, want in ((dq, np.einsum("bnts,bsnh->btnh", dl, k)),
                      (dk, np.einsum("bnts,btnh->bsnh", dl, q)),
                      (dv, np.einsum("bnts,btnh->bsnh", wf, gf))):
        _close(got, want.astype(dtype), dtype)


def test_causal_products_by_halves_equal_the_whole_products():
    # W7's shape class: T = S >= _HALVES_MIN takes the halves path at its default
    rng = np.random.default_rng(11)
    for t in (64, 67):
        q, k, v, g = (rng.standard_normal((2, t, 2, 8)).astype(np.float32) for _ in range(4))
        out, w = _attention.fused_attention(q, k, v, 0.35, True)
        dq, dk, dv = _attention.attention_grad_p.bind(g, q, k, v, w, scale=0.35, causal=True)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_attention, "_HALVES_MIN", t + 1)  # the whole products
            out1, w1 = _attention.fused_attention(q, k, v, 0.35, True)
            grads1 = _attention.attention_grad_p.bind(g, q, k, v, w1, scale=0.35,
                                                      causal=True)
        for a, b in zip((w, out, dq, dk, dv), (w1, out1, *grads1)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_grads_both_results_and_second_order(causal):
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal(shape) for shape in ((2, 3, 2, 2), (2, 4, 2, 2),
                                                         (2, 4, 2, 2)))
    wt = rng.standard_normal((2, 3, 2, 2))
    f = _attention.fused_attention
    check_grads(lambda q, k, v: f(q, k, v, 0.6, causal)[0] * wt, (q, k, v), order=2)
    # the weights receive a cotangent too: the composite's rule
    check_grads(lambda q, k, v: (f(q, k, v, 0.6, causal)[1] ** 2).sum()
                + (f(q, k, v, 0.6, causal)[0] * wt).sum(), (q, k, v), order=2)
    g, w = rng.standard_normal(q.shape), np.asarray(f(q, k, v, 0.6, causal)[1])
    check_grads(lambda g, q, k, v, w: _attention.attention_grad_p.bind(
        g, q, k, v, w, scale=0.6, causal=causal), (g, q, k, v, w), order=1)


def test_fused_attention_jit_eager_kernels_off_and_vmap_agree():
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((2, 6, 2, 4)).astype(np.float32) for _ in range(3))
    f = lambda q, k, v: _attention.fused_attention(q, k, v, 0.5, True)
    eager = f(q, k, v)
    with nanofn.config._override("nanofn_use_kernels", False):
        off = f(q, k, v)
    for a, b, c in zip(eager, nanofn.jit(f)(q, k, v), off):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-5, atol=1e-6)
    qs = rng.standard_normal((2, 6, 2, 4, 3)).astype(np.float32)  # mapped over the last axis
    vs = rng.standard_normal((3, 2, 6, 2, 4)).astype(np.float32)
    got = nanofn.vmap(f, in_axes=(4, None, 0))(qs, k, vs)  # k unbatched: broadcast
    for i in range(3):
        for a, b in zip(got, f(qs[..., i], k, vs[i])):
            np.testing.assert_allclose(np.asarray(a)[i], np.asarray(b), rtol=1e-6, atol=1e-7)
    g = rng.standard_normal((3, 2, 6, 2, 4)).astype(np.float32)
    w = np.asarray(f(q, k, v)[1])
    grad = lambda g: _attention.attention_grad_p.bind(g, q, k, v, w, scale=0.5, causal=True)
    for i, row in enumerate(zip(*nanofn.vmap(grad)(g))):
        for a, b in zip(row, grad(g[i])):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_fused_attention_leaves_inputs_alone_and_errors_name_arguments():
    rng = np.random.default_rng(6)
    q, k, v = (rng.standard_normal((1, 3, 2, 4)).astype(np.float32) for _ in range(3))
    before = [a.copy() for a in (q, k, v)]
    _attention.fused_attention(q, k, v, 0.5, True)
    for a, b in zip((q, k, v), before):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="attention: k must be a floating array"):
        _attention.fused_attention(q, k.astype(np.int32), v, 1.0)
    with pytest.raises(ValueError, match="attention: q must have 4 axes"):
        _attention.fused_attention(q[0], k, v, 1.0)
    with pytest.raises(ValueError, match="k and v must have one shape"):
        _attention.fused_attention(q, k, v[:, :2], 1.0)
    with pytest.raises(ValueError, match="must agree in batch, heads and head size"):
        _attention.fused_attention(q[..., :3], k, v, 1.0)
    with pytest.raises(ValueError, match="attention_grad: weights must be f32"):
        _attention.attention_grad_p.bind(q, q, k, v, np.ones((1, 2, 3, 2), np.float32),
                                         scale=1.0, causal=False)


@pytest.mark.parametrize("b, t, s", [(0, 3, 3), (2, 0, 3), (2, 3, 0)])
def test_fused_attention_with_an_empty_axis(b, t, s):
    rng = np.random.default_rng(7)
    q = rng.standard_normal((b, t, 2, 4)).astype(np.float32)
    k = rng.standard_normal((b, s, 2, 4)).astype(np.float32)
    f = lambda q, k: _attention.fused_attention(q, k, k, 0.5, True)[0]
    for out in (f(q, k), nanofn.jit(f)(q, k)):  # no keys: the output is an empty sum, 0
        np.testing.assert_array_equal(np.asarray(out), np.zeros((b, t, 2, 4), np.float32))
    dq, dk = nanofn.grad(lambda q, k: f(q, k).sum(), (0, 1))(q, k)
    assert dq.shape == q.shape and dk.shape == k.shape
    assert not np.asarray(dq).any() and not np.asarray(dk).any()
