"""Attention: `dot_product_attention` (jax.nn's), `MultiHeadAttention` and a Transformer
encoder layer built from it with the combinators.

Shapes follow jax.nn.dot_product_attention: queries `(B, T, N, H)`, keys and values
`(B, S, N, H)` (batch, sequence, heads, head size); a mask is boolean, `True` where a
query may attend to a key, and broadcasts to `(B, N, T, S)`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from nanofn import lax
from nanofn import numpy as fnp
from nanofn import random
from nanofn.nn import _functions as F
from nanofn.nn import initializers as inits
from nanofn.nn._base import canonical_shape, fmt_shape, known, leaf_layer
from nanofn.nn._base import Initializer, Layer  # noqa: F401  (annotations)
from nanofn.nn._combinators import residual, serial, shape_dependent
from nanofn.nn._layers import Dense, Dropout, LayerNorm, elementwise
from nanofn.ops._attention import fused_attention
from nanofn.ops._nn import attention_softmax

__all__ = ["MultiHeadAttention", "TransformerEncoderLayer", "dot_product_attention",
           "make_causal_mask"]


def make_causal_mask(length, dtype=bool):
    """A `(length, length)` mask, True where query `i` may see key `j` (`j <= i`).

    Example:
        >>> import nanofn
        >>> nanofn.nn.make_causal_mask(3).astype("int32")
        Array([[1, 0, 0],
               [1, 1, 0],
               [1, 1, 1]], dtype=int32)
    """
    return fnp.asarray(np.tril(np.ones((length, length), bool)).astype(dtype))


# JAX's value for excluded logits: large, negative and finite in float32 (a row with every
# key excluded then gets uniform weights, not NaNs)
_MASKED = float(np.float32(-0.7) * np.finfo(np.float32).max)


def _ensure_4d(name, x):
    """`x` with leading axes of size 1 added up to 4 axes (JAX's `_ensure_4d`)."""
    x = fnp.asarray(x)
    if x.ndim > 4:
        raise ValueError(f"dot_product_attention: {name} must have at most 4 axes "
                         f"(B, T, N, H), got shape {tuple(x.shape)}")
    return fnp.reshape(x, (1,) * (4 - x.ndim) + tuple(x.shape)) if x.ndim < 4 else x


def _check_qkv(query, key, value):
    b, s, k, h = key.shape
    if tuple(value.shape) != (b, s, k, h) or value.dtype != key.dtype:
        raise ValueError(f"dot_product_attention: value must have the shape and dtype of key "
                         f"{_desc(key)}, got {_desc(value)}")
    if query.shape[0] != b or query.shape[3] != h or query.dtype != key.dtype:
        raise ValueError(f"dot_product_attention: query {_desc(query)} must have key's batch "
                         f"size, head size and dtype; key is {_desc(key)} (B, S, K, H)")
    if query.shape[2] % k:
        raise ValueError(f"dot_product_attention: the number of query heads must be a "
                         f"multiple of key/value heads, got {query.shape[2]} vs {k}")


def _desc(x):
    return f"{x.dtype}{list(x.shape)}"


def _seq_lengths(name, lengths, batch):
    if lengths is None:
        return None
    lengths = fnp.asarray(lengths)
    if tuple(lengths.shape) != (batch,) or not fnp.issubdtype(lengths.dtype, fnp.integer):
        raise ValueError(f"dot_product_attention: {name} must be an integer array of shape "
                         f"(B,) = ({batch},), got {_desc(lengths)}")
    return lengths


def _masks(t, s, mask, is_causal, q_lengths, kv_lengths, window):
    """The combined boolean mask (broadcastable to (B, N, T, S)), or None for no mask."""
    parts = [] if mask is None else [fnp.asarray(mask) != 0]
    pos_q, pos_k = np.arange(t)[:, None], np.arange(s)[None, :]
    fixed = np.ones((t, s), bool)
    if is_causal:
        fixed &= pos_k <= pos_q
    if window is not None:
        left, right = window
        fixed &= (pos_q <= pos_k + left) & (pos_q >= pos_k - right)
    if is_causal or window is not None:
        parts.append(fnp.asarray(fixed))
    if q_lengths is not None:
        parts.append(fnp.arange(t)[None, None, :, None] < q_lengths[:, None, None, None])
    if kv_lengths is not None:
        parts.append(fnp.arange(s)[None, None, None, :] < kv_lengths[:, None, None, None])
    if not parts:
        return None
    out = parts[0]
    for m in parts[1:]:
        out = fnp.logical_and(out, m)
    return out


def dot_product_attention(query, key, value, bias=None, mask=None, *, scale=None,
                          is_causal=False, query_seq_lengths=None, key_value_seq_lengths=None,
                          local_window_size=None, implementation=None, return_residual=False):
    """Scaled dot-product attention (jax.nn's): `softmax(q k^T * scale + bias, masked) v`.

    Args:
      query: `(B, T, N, H)` (fewer axes get leading axes of size 1: `(T, N, H)`, ...).
      key: `(B, S, K, H)`; `K` key/value heads, `N` a multiple of `K` (grouped-query
        attention; `K = 1` is multi-query attention).
      value: the shape and dtype of `key`.
      bias: optional array added to the logits, broadcastable to `(B, N, T, S)`.
      mask: optional boolean array broadcastable to `(B, N, T, S)`; False entries are
        excluded. A query whose keys are all excluded gets uniform weights over all `S`
        keys (its output is the mean of the values), as in JAX, whose masked logits are
        a large negative number rather than -inf.
      scale: logit scale (default `1 / sqrt(H)`).
      is_causal: also exclude keys after the query position (`j > i`).
      query_seq_lengths: optional int array `(B,)`: queries at or past the length are
        padding; their keys are all excluded and their outputs are zero.
      key_value_seq_lengths: optional int array `(B,)`: keys at or past the length are
        excluded.
      local_window_size: `(left, right)` (or one int for both): query `i` sees keys
        `i - left <= j <= i + right` only.
      implementation: `None` or `"xla"` (the one implementation here); `"cudnn"` is an
        error, as on a machine without a GPU.
      return_residual: also return the log-sum-exp of each query's masked logits,
        `(B, T, N)`, as a constant (no gradient flows through it).

    Returns:
      The output, of the shape of `query`; with `return_residual`, `(output, lse)`.

    Without bias, mask, sequence lengths or window, and with as many key as query heads,
    the products, the scaling, the causal mask and the softmax run as one primitive
    (`attention`, nanofn/ops/_attention.py), forward and backward, a few batch elements
    at a time so that each group's logits stay in cache.

    Example:
        >>> import nanofn
        >>> q = k = v = nanofn.numpy.ones((1, 4, 2, 8))
        >>> nanofn.nn.dot_product_attention(q, k, v, is_causal=True).shape
        (1, 4, 2, 8)
    """
    if implementation not in (None, "xla"):
        raise ValueError(f"dot_product_attention: implementation={implementation!r} is not "
                         "available: nanofn runs on the CPU ('xla' or None)")
    shape = tuple(np.shape(query))
    query, key, value = (_ensure_4d(n, F._float(a)) for n, a in
                         (("query", query), ("key", key), ("value", value)))
    _check_qkv(query, key, value)
    b, t, n, h = query.shape
    s, kh = key.shape[1], key.shape[2]
    if isinstance(local_window_size, int):
        local_window_size = (local_window_size, local_window_size)
    q_len = _seq_lengths("query_seq_lengths", query_seq_lengths, b)
    kv_len = _seq_lengths("key_value_seq_lengths", key_value_seq_lengths, b)
    scale = 1.0 / math.sqrt(h) if scale is None else float(scale)
    if (bias is None and mask is None and q_len is None and kv_len is None
            and local_window_size is None and kh == n and not return_residual):
        # products, scaling, causal mask and softmax as one primitive, forward and backward
        out, _ = fused_attention(query, key, value, scale, is_causal)
        return fnp.reshape(out, shape)
    g = n // kh  # query heads per key/value head: query head i*g + j uses key head i
    q = fnp.transpose(fnp.reshape(query, (b, t, kh, g, h)), (0, 2, 3, 1, 4))  # B K G T H
    k = fnp.transpose(key, (0, 2, 3, 1))[:, :, None]                         # B K 1 H S
    v = fnp.transpose(value, (0, 2, 1, 3))[:, :, None]                       # B K 1 S H
    logits = fnp.reshape(q @ k, (b, n, t, s)) * scale
    if bias is not None:
        logits = logits + _broadcast_to_logits("bias", _ensure_4d("bias", bias), logits)
    if mask is not None:
        mask = _broadcast_to_logits("mask", _ensure_4d("mask", mask), logits)
    keep = _masks(t, s, mask, is_causal, q_len, kv_len, local_window_size)
    if keep is not None:
        logits = fnp.where(keep, logits, _MASKED)
    weights = F.softmax(logits, axis=-1)
    out = fnp.reshape(weights, (b, kh, g, t, s)) @ v                         # B K G T H
    out = fnp.reshape(fnp.transpose(out, (0, 3, 1, 2, 4)), (b, t, n, h))
    if q_len is not None:  # padding queries give zeros
        out = out * (fnp.arange(t)[None, :, None, None]
                     < q_len[:, None, None, None]).astype(out.dtype)
    out = fnp.reshape(out, shape)
    if not return_residual:
        return out
    lse = lax.stop_gradient(fnp.transpose(F.logsumexp(logits, axis=-1), (0, 2, 1)))
    return out, fnp.reshape(lse, shape[:-1])


def _broadcast_to_logits(name, x, logits):
    try:
        np.broadcast_shapes(tuple(x.shape), tuple(logits.shape))
    except ValueError:
        raise ValueError(f"dot_product_attention: {name} of shape {tuple(x.shape)} does not "
                         f"broadcast to the logits' (B, N, T, S) = {tuple(logits.shape)}"
                         ) from None
    return x


def _as_inputs(inputs):
    """(queries, keys, values) from one array (self-attention) or a list of 2 or 3."""
    if isinstance(inputs, (list, tuple)):
        if len(inputs) == 2:
            return inputs[0], inputs[1], inputs[1]
        if len(inputs) == 3:
            return tuple(inputs)
        raise ValueError(f"MultiHeadAttention: expects one input (self-attention) or a list "
                         f"[queries, keys_values] or [queries, keys, values], got "
                         f"{len(inputs)} inputs")
    return inputs, inputs, inputs


def _heads_mask(mask):
    mask = fnp.asarray(mask)
    if mask.ndim == 3:  # (B, T, S): the same mask for every head
        mask = fnp.expand_dims(mask, 1)
    return mask


def MultiHeadAttention(num_heads: int, key_size: int | None = None, out_dim: int = None,
                       causal: bool = False, dropout_rate: float = 0.0,
                       w_init: Initializer | None = None,
                       b_init: Initializer = inits.zeros) -> Layer:
    """Multi-head attention (Vaswani et al., 2017) over `(batch, length, features)` inputs.

    Queries, keys and values are linear projections of the inputs, split into
    `num_heads` heads of `key_size`; each head attends with `dot_product_attention`, and
    the heads' outputs are concatenated and projected to `out_dim`.

    Inputs: one array `x` (self-attention), or a list `[queries, keys_values]` or
    `[queries, keys, values]` (with `init` given the matching list of shapes).

    Keyword arguments of apply: `mask` (boolean, broadcastable to `(B, heads, T, S)`;
    `(B, T, S)` and `(T, S)` masks apply to every head), and `rng`/`training` for
    dropout on the attention weights.

    Args:
      num_heads: number of heads.
      key_size: size of each head (default: query features // num_heads).
      out_dim: output features (default: the query features).
      causal: mask keys after each query's position (autoregressive attention).
      dropout_rate: drop probability of attention weights while training.
      w_init, b_init: initializers of the projections (default glorot_uniform, zeros).

    Returns:
      A layer with params `{"query", "key", "value", "out"}`, each `{"w", "b"}`.

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.MultiHeadAttention(num_heads=2, causal=True)
        >>> _, params = init(nanofn.random.key(0), (-1, 5, 8))
        >>> apply(params, nanofn.numpy.ones((3, 5, 8))).shape
        (3, 5, 8)
    """
    n = int(num_heads)
    name = f"MultiHeadAttention({n})"
    w_init = w_init if w_init is not None else inits.glorot_uniform()
    rate = float(dropout_rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name}: dropout_rate is a drop probability in [0, 1), got {rate}")

    def shapes(input_shape):
        if isinstance(input_shape, list):
            if len(input_shape) not in (2, 3):
                raise ValueError(f"{name}: expects one input shape or a list of 2 or 3, got "
                                 f"{fmt_shape(input_shape)}")
            qs, ks = input_shape[0], input_shape[1]
            vs = input_shape[2] if len(input_shape) == 3 else ks
        else:
            qs = ks = vs = input_shape
        for s in (qs, ks, vs):
            if len(s) != 3:
                raise ValueError(f"{name}: expects inputs (batch, length, features), got "
                                 f"input_shape {fmt_shape(input_shape)}")
        return qs, ks, vs

    def sizes(input_shape):
        qs, ks, vs = shapes(input_shape)
        d_q = known(name, qs[-1], "the query features", input_shape)
        head = key_size if key_size is not None else d_q // n
        if head < 1 or (key_size is None and d_q % n):
            raise ValueError(f"{name}: {d_q} query features do not split into {n} heads; "
                             "pass key_size=")
        return qs, ks, vs, head, (out_dim if out_dim is not None else d_q)

    def out_shape(input_shape):
        qs, _, _, _, d_out = sizes(input_shape)
        return (qs[0], qs[1], d_out)

    def init_params(rng, input_shape):
        qs, ks, vs, head, d_out = sizes(input_shape)
        params = {}
        for i, (label, s) in enumerate((("query", qs), ("key", ks), ("value", vs))):
            d_in = known(name, s[-1], f"the {label} features", input_shape)
            params[label] = {"w": w_init(random.fold_in(rng, 2 * i), (d_in, n * head)),
                             "b": b_init(random.fold_in(rng, 2 * i + 1), (n * head,))}
        params["out"] = {"w": w_init(random.fold_in(rng, 6), (n * head, d_out)),
                         "b": b_init(random.fold_in(rng, 7), (d_out,))}
        return params

    def forward(params, inputs, *, mask=None, rng=None, training=False, **kwargs):
        q_in, k_in, v_in = (F._float(a) for a in _as_inputs(inputs))
        head = params["query"]["w"].shape[1] // n

        def project(x, label):
            p = params[label]
            if x.ndim != 3 or x.shape[-1] != p["w"].shape[0]:
                raise ValueError(f"{name}: the {label} projection expects inputs (batch, "
                                 f"length, {p['w'].shape[0]}), got {fmt_shape(tuple(x.shape))}")
            y = x @ p["w"] + p["b"]
            return fnp.reshape(y, tuple(x.shape[:2]) + (n, head))

        q, k, v = project(q_in, "query"), project(k_in, "key"), project(v_in, "value")
        if mask is not None:
            mask = _heads_mask(mask)
        if training and rate > 0.0:
            if rng is None:
                raise ValueError(f"{name}: training=True with dropout_rate={rate} needs a PRNG "
                                 "key: call apply(params, inputs, rng=key, training=True)")
            out = _attention_with_dropout(q, k, v, mask, causal, rate, rng)
        else:
            out = dot_product_attention(q, k, v, mask=mask, is_causal=causal)
        out = fnp.reshape(out, tuple(out.shape[:2]) + (n * head,))
        return out @ params["out"]["w"] + params["out"]["b"]

    return leaf_layer(name, out_shape, init_params, forward)


def _attention_with_dropout(q, k, v, mask, causal, rate, rng):
    """dot_product_attention with dropout on the attention weights."""
    h = q.shape[-1]
    logits = fnp.transpose(q, (0, 2, 1, 3)) @ fnp.transpose(k, (0, 2, 3, 1))
    if mask is None:
        weights = attention_softmax(logits, 1.0 / math.sqrt(h), causal)
    else:
        logits = logits / math.sqrt(h)
        t, s = logits.shape[-2:]
        if causal:
            mask = fnp.logical_and(mask, fnp.asarray(np.tril(np.ones((t, s), bool))))
        logits = fnp.where(mask, logits, _MASKED)
        weights = F.softmax(logits, axis=-1)
    keep = random.bernoulli(rng, 1.0 - rate, tuple(weights.shape))
    weights = fnp.where(keep, weights / (1.0 - rate), 0.0)
    return fnp.transpose(weights @ fnp.transpose(v, (0, 2, 1, 3)), (0, 2, 1, 3))


def TransformerEncoderLayer(num_heads: int, mlp_dim: int, dropout_rate: float = 0.0,
                            causal: bool = False, epsilon: float = 1e-5,
                            activation: Callable = F.gelu) -> Layer:
    """A pre-norm Transformer encoder block over `(batch, length, features)`:

        x = x + Dropout(MultiHeadAttention(LayerNorm(x)))
        x = x + Dropout(Dense(features)(Dropout(activation(Dense(mlp_dim)(LayerNorm(x))))))

    Built from `residual`, `serial` and the layers above, so its params are nested tuples
    of their params. Apply takes `mask=`, and `rng=`/`training=` for dropout.

    Args:
      num_heads: attention heads (must divide the features).
      mlp_dim: hidden size of the feed-forward block.
      dropout_rate: drop probability after attention and in the feed-forward block.
      causal: causal self-attention.
      epsilon: LayerNorm epsilon.
      activation: feed-forward nonlinearity (default gelu).

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.TransformerEncoderLayer(num_heads=2, mlp_dim=16)
        >>> _, params = init(nanofn.random.key(0), (-1, 5, 8))
        >>> apply(params, nanofn.numpy.ones((3, 5, 8))).shape
        (3, 5, 8)
    """
    def make(input_shape):
        input_shape = canonical_shape("TransformerEncoderLayer", input_shape)
        d = known("TransformerEncoderLayer", input_shape[-1], "the feature axis", input_shape)
        return serial(
            residual(LayerNorm(epsilon=epsilon),
                     MultiHeadAttention(num_heads, causal=causal, dropout_rate=dropout_rate),
                     Dropout(dropout_rate)),
            residual(LayerNorm(epsilon=epsilon), Dense(mlp_dim), elementwise(activation),
                     Dropout(dropout_rate), Dense(d), Dropout(dropout_rate)))
    return shape_dependent(make)
