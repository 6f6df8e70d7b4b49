"""Fused scaled dot-product attention: one primitive forward, one backward.

`attention(q, k, v, scale, causal) -> (out, weights)` with jax.nn's layout: queries and
the output `(B, T, N, H)`, keys and values `(B, S, N, H)`, the weights `(B, N, T, S)`:

    weights = attention_softmax(einsum("btnh,bsnh->bnts", q, k), scale, causal)
    out = einsum("bnts,bsnh->btnh", weights, v)

The weights are a second result, kept as the residual of the backward primitive
`attention_grad(g, q, k, v, weights) -> (dq, dk, dv)` (as cross-entropy keeps its
probabilities). `nn.dot_product_attention` binds it when it has no mask, bias, sequence
lengths or window and as many key as query heads.

Why one primitive rather than two products around `attention_softmax`: composed of ops,
each product and softmax pass streams the whole `(B, N, T, S)` logits array through
memory, about ten passes per layer forward and backward, and inside a train step those
arrays have left the caches by the time the next op reads them. Here both impls loop
over groups of batch elements whose `(N, T, S)` blocks fit in the L2 cache
(`_GROUP_BYTES`): a group's logits are produced, normalised and multiplied by the values
while they are still in cache; backward, a group's weights are read once and its
`dweights` and `dlogits` never leave the cache. The products stay numpy's `matmul`
(OpenBLAS) on strided views of the `(B, T, N, H)` operands, so nothing is transposed
into a copy, and the results are written in place in their final layout. The weights
are written once forward and read once backward.

The derivatives of the backward primitive (for `grad` of `grad`), the JVP, and the VJP
when the weights themselves receive a cotangent, come from the same computation written
with primitives (`_attention_composite`, `_attention_grad_composite`).
"""

from __future__ import annotations

import numpy as np

from nanofn._core import Primitive, ShapedArray
from nanofn._malloc import empty  # large results on a cache line (nanofn/_malloc.py)
from nanofn.ops._base import (
    _aval_shape, bdim_to_front, dot_general_p, reshape_p, transpose_p,
)
from nanofn.ops._nn import (
    _attention_softmax_grad_into, _attention_softmax_into, _broadcast_front, _check,
    _derived_rules, _need_float, attention_softmax_grad_p, attention_softmax_p,
)

__all__ = ["fused_attention"]

# A group's (N, T, S) block of logits (and backward, of its two gradients) stays within
# this many bytes, so a group's blocks stay in a 1-2 MB L2 cache together.
_GROUP_BYTES = 1 << 19


def _groups(b, block_bytes):
    """`(lo, hi)` ranges over the batch: groups of batch elements within `_GROUP_BYTES`."""
    per = max(1, _GROUP_BYTES // max(block_bytes, 1))
    return [(lo, min(lo + per, b)) for lo in range(0, b, per)], min(per, max(b, 1))


def _heads(x):
    """`(B, L, N, H)` -> a `(B, N, L, H)` view: one `(L, H)` matrix per batch and head."""
    return x.transpose(0, 2, 1, 3)


# Causal self-attention (as many queries as keys, at least this many) computes its
# products in two halves of the query axis: the first half of the queries sees only the
# first half of the keys, so the upper-right quarter of every (T, S) block is never
# computed or read (it is zero in the weights, and the softmax kernels do not read it):
# a quarter of the attention's matrix products saved, forward and backward.
_HALVES_MIN = 64


def _halves(t, s, causal):
    """The split point of the query axis for causal products by halves, or 0."""
    return t // 2 if causal and t == s and t >= _HALVES_MIN else 0


def _attention_abstract_eval(q, k, v, *, scale, causal):
    del scale, causal  # a Python float and bool
    for arg, a in (("q", q), ("k", k), ("v", v)):
        _need_float("attention", arg, a)
        if a.ndim != 4:
            raise ValueError(f"attention: {arg} must have 4 axes (B, T or S, N, H), got "
                             f"{a.str_short()}")
    if k.shape != v.shape or k.dtype != v.dtype or q.dtype != k.dtype:
        raise ValueError(f"attention: k and v must have one shape (B, S, N, H) and the dtype "
                         f"of q; got q {q.str_short()}, k {k.str_short()}, v {v.str_short()}")
    if (q.shape[0], q.shape[2], q.shape[3]) != (k.shape[0], k.shape[2], k.shape[3]):
        raise ValueError(f"attention: q (B, T, N, H) and k (B, S, N, H) must agree in batch, "
                         f"heads and head size; got q {q.str_short()}, k {k.str_short()}")
    b, t, n, _ = q.shape
    return [ShapedArray(q.shape, q.dtype), ShapedArray((b, n, t, k.shape[1]), q.dtype)]


def _attention_impl(q, k, v, *, scale, causal):
    _check(attention_p, q, k, v, scale=scale, causal=causal)
    q, k, v = np.asarray(q), np.asarray(k), np.asarray(v)
    b, t, n, _ = q.shape
    s = k.shape[1]
    out = empty(q.shape, q.dtype)
    weights = empty((b, n, t, s), q.dtype)
    groups, per = _groups(b, n * t * s * q.dtype.itemsize)
    logits = np.empty((per, n, t, s), q.dtype)
    h = _halves(t, s, causal)
    logits[..., :h, h:] = 0  # never computed, and not read by the kernels either
    for lo, hi in groups:
        block, w = logits[: hi - lo], weights[lo:hi]
        qh, kt, vh, oh = (_heads(q[lo:hi]), k[lo:hi].transpose(0, 2, 3, 1),
                          _heads(v[lo:hi]), _heads(out[lo:hi]))
        if h:  # the first queries see the first keys only
            np.matmul(qh[:, :, :h], kt[..., :h], out=block[:, :, :h, :h])
            np.matmul(qh[:, :, h:], kt, out=block[:, :, h:])
        else:
            np.matmul(qh, kt, out=block)
        rows = ((hi - lo) * n, t, s)
        _attention_softmax_into(block.reshape(rows), scale, causal, w.reshape(rows))
        if h:
            np.matmul(w[:, :, :h, :h], vh[:, :, :h], out=oh[:, :, :h])
            np.matmul(w[:, :, h:], vh, out=oh[:, :, h:])
        else:
            np.matmul(w, vh, out=oh)
    return [out, weights]


def _attention_grad_abstract_eval(g, q, k, v, weights, *, scale, causal):
    out, w = _attention_abstract_eval(q, k, v, scale=scale, causal=causal)
    for arg, a, want in (("g", g, out), ("weights", weights, w)):
        if a.shape != want.shape or a.dtype != want.dtype:
            raise ValueError(f"attention_grad: {arg} must be {want.str_short()} for q "
                             f"{q.str_short()} and k {k.str_short()}, got {a.str_short()}")
    return [ShapedArray(x.shape, x.dtype) for x in (q, k, v)]


def _attention_grad_impl(g, q, k, v, weights, *, scale, causal):
    _check(attention_grad_p, g, q, k, v, weights, scale=scale, causal=causal)
    g, q, k, v, weights = (np.asarray(a) for a in (g, q, k, v, weights))
    b, t, n, _ = q.shape
    s = k.shape[1]
    dq, dk, dv = (empty(x.shape, x.dtype) for x in (q, k, v))
    groups, per = _groups(b, 2 * n * t * s * q.dtype.itemsize)
    dw_buf, dlogits_buf = (np.empty((per, n, t, s), q.dtype) for _ in range(2))
    h = _halves(t, s, causal)
    dw_buf[..., :h, h:] = 0  # never computed (the weights are zero there)
    for lo, hi in groups:
        gh, w = _heads(g[lo:hi]), np.ascontiguousarray(weights[lo:hi])
        dw, dlogits = dw_buf[: hi - lo], dlogits_buf[: hi - lo]
        vt, wt = v[lo:hi].transpose(0, 2, 3, 1), w.transpose(0, 1, 3, 2)
        kh, qh = _heads(k[lo:hi]), _heads(q[lo:hi])
        dqh, dkh, dvh = _heads(dq[lo:hi]), _heads(dk[lo:hi]), _heads(dv[lo:hi])
        rows = ((hi - lo) * n, t, s)
        if not h:
            np.matmul(gh, vt, out=dw)                                        # g v^T
            np.matmul(wt, gh, out=dvh)                                       # w^T g
            _attention_softmax_grad_into(dw.reshape(rows), w.reshape(rows), scale, causal,
                                         dlogits.reshape(rows))
            np.matmul(dlogits, kh, out=dqh)                                  # dl k
            np.matmul(dlogits.transpose(0, 1, 3, 2), qh, out=dkh)            # dl^T q
            continue
        # by halves: the first queries see the first keys only, and the last keys are
        # seen by the last queries only
        np.matmul(gh[:, :, :h], vt[..., :h], out=dw[:, :, :h, :h])
        np.matmul(gh[:, :, h:], vt, out=dw[:, :, h:])
        np.matmul(wt[:, :, :h], gh, out=dvh[:, :, :h])
        np.matmul(wt[:, :, h:, h:], gh[:, :, h:], out=dvh[:, :, h:])
        _attention_softmax_grad_into(dw.reshape(rows), w.reshape(rows), scale, causal,
                                     dlogits.reshape(rows))
        dlt = dlogits.transpose(0, 1, 3, 2)
        np.matmul(dlogits[:, :, :h, :h], kh[:, :, :h], out=dqh[:, :, :h])
        np.matmul(dlogits[:, :, h:], kh, out=dqh[:, :, h:])
        np.matmul(dlt[:, :, :h], qh, out=dkh[:, :, :h])
        np.matmul(dlt[:, :, h:, h:], qh[:, :, h:], out=dkh[:, :, h:])
    return [dq, dk, dv]


# ----------------------------------------------------------------- the same, in primitives


def _dot(x, y, contract, batch):
    return dot_general_p.bind(x, y, dimension_numbers=(contract, batch),
                              preferred_element_type=None)


def _to_btnh(x):  # (B, N, L, H) -> (B, L, N, H)
    return transpose_p.bind(x, permutation=(0, 2, 1, 3))


def _attention_composite(q, k, v, *, scale, causal):
    logits = _dot(q, k, ((3,), (3,)), ((0, 2), (0, 2)))                     # (B, N, T, S)
    w = attention_softmax_p.bind(logits, scale=scale, causal=causal)
    return [_to_btnh(_dot(w, v, ((3,), (1,)), ((0, 1), (0, 2)))), w]


def _attention_grad_composite(g, q, k, v, w, *, scale, causal):
    dw = _dot(g, v, ((3,), (3,)), ((0, 2), (0, 2)))                         # (B, N, T, S)
    dv = _to_btnh(_dot(w, g, ((2,), (1,)), ((0, 1), (0, 2))))
    dlogits = attention_softmax_grad_p.bind(dw, w, scale=scale, causal=causal)
    dq = _to_btnh(_dot(dlogits, k, ((3,), (1,)), ((0, 1), (0, 2))))
    dk = _to_btnh(_dot(dlogits, q, ((2,), (1,)), ((0, 1), (0, 2))))
    return [dq, dk, dv]


def _merged_batch(prim, out_batch_axes):
    """Batch rule: the vmapped axis goes to the front of every operand (an unbatched one
    is broadcast) and merges with the batch axis B; the results are split back."""
    def batch(vals, dims, **params):
        size = next(_aval_shape(x)[d] for x, d in zip(vals, dims) if d is not None)
        moved = [bdim_to_front(x, d) if d is not None else _broadcast_front(x, size)
                 for x, d in zip(vals, dims)]
        outs = prim.bind(*[_merge_front(x) for x in moved], **params)
        return [_split_front(o, size) for o in outs], [0] * out_batch_axes
    return batch


def _merge_front(x):
    shape = tuple(_aval_shape(x))
    return reshape_p.bind(x, new_sizes=(shape[0] * shape[1],) + shape[2:])


def _split_front(x, size):
    shape = tuple(_aval_shape(x))
    return reshape_p.bind(x, new_sizes=(size, shape[0] // size) + shape[1:])


# --- attention ------------------------------------------------------------------------
attention_p = Primitive("attention", multiple_results=True)
attention_p.abstract_eval = _attention_abstract_eval
attention_p.impl = _attention_impl
_derived_rules(attention_p, _attention_composite, (True, True, True))
_composite_vjp = attention_p.vjp_joint


def _attention_vjp(cts, primals, outs, needs, *, scale, causal):
    ct_out, ct_w = cts
    if not any(needs) or (ct_out is None and ct_w is None):
        return [None, None, None]
    if ct_w is not None:  # the weights themselves are used: the composite's rule
        return _composite_vjp(cts, primals, outs, needs, scale=scale, causal=causal)
    grads = attention_grad_p.bind(ct_out, *primals, outs[1], scale=scale, causal=causal)
    return [d if n else None for d, n in zip(grads, needs)]


attention_p.vjp_joint = _attention_vjp
attention_p.batch = _merged_batch(attention_p, 2)

# --- attention_grad -------------------------------------------------------------------
attention_grad_p = Primitive("attention_grad", multiple_results=True)
attention_grad_p.abstract_eval = _attention_grad_abstract_eval
attention_grad_p.impl = _attention_grad_impl
_derived_rules(attention_grad_p, _attention_grad_composite, (True,) * 5)
attention_grad_p.batch = _merged_batch(attention_grad_p, 3)


def fused_attention(q, k, v, scale, causal=False):
    """Scaled dot-product attention as one primitive: `(out, weights)` for queries `q`
    `(B, T, N, H)` and keys and values `(B, S, N, H)`, as `nn.dot_product_attention`
    computes it without a mask or bias (with `causal`, query `i` sees keys `j <= i`).

    Args:
      q, k, v: floating arrays of one dtype; `k` and `v` of one shape, agreeing with `q`
        in batch size, number of heads and head size.
      scale: Python float multiplying the logits `q . k`.
      causal: hide the keys after each query's position.

    Returns:
      `out` `(B, T, N, H)` and the attention weights `(B, N, T, S)`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.ops._attention import fused_attention
        >>> q = k = v = jnp.ones((1, 3, 2, 4))
        >>> out, w = fused_attention(q, k, v, 0.5, causal=True)
        >>> out.shape, w[0, 0].round(2).tolist()
        ((1, 3, 2, 4), [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.33, 0.33, 0.33]])
    """
    out, w = attention_p.bind(q, k, v, scale=float(scale), causal=bool(causal))
    return out, w
