"""Neural-network primitives with numba kernels: the row-wise softmax family, softmax
cross-entropy with integer labels and layer normalisation, and the elementwise GELU.

Each row-wise primitive works on the LAST axis of its operand; every other axis is a
batch of independent rows. `nanofn.nn` and `nanofn.scipy.special` move the axis they are
asked for to the end (or fall back to their composite code for masks and weights) and
call these.

Each primitive's `impl` runs a hand-written numba kernel (`nanofn._kernels.kernel`) for
float32 and float64 when kernels are enabled (GELU: float32 only), and otherwise the plain
numpy reference written beside it (`_*_ref`); tests compare the two. The row-wise kernels
accumulate in float64, so on float32 inputs they are at least as accurate as the
reference; GELU's computes in float32 with a vectorising tanh (see its section).

The backward passes are primitives with kernels too, so a training step runs one kernel
forward and one backward per op:

* `log_softmax` -> `log_softmax_grad(g, out) = g - exp(out) * sum(g)`
* `softmax` -> `softmax_grad(g, out) = out * (g - sum(g * out))` (also softmax's JVP: its
  Jacobian is symmetric)
* `logsumexp` -> `g * softmax(x)`
* `softmax_cross_entropy_int(logits, labels) -> (loss, probs)`: the probabilities are a
  second result, kept as the residual, so the backward is the one pass
  `softmax_cross_entropy_int_grad(probs, labels, g) = (probs - onehot(labels)) * g`
  (no one-hot is built). A label outside `[0, num_classes)` picks nothing: its loss is the
  log-normaliser and its gradient the probabilities (what `one_hot` gives, and what JAX's
  composite gives). The public wrapper raises on such labels when their values are known;
  under `jit` they cannot be seen.
* `attention_softmax(x, scale, causal)` (softmax over the last axis of `x * scale`, keys
  after the query hidden under `causal`, the query being axis -2) ->
  `attention_softmax_grad(g, s) = scale * s * (g - sum(g * s))` over the seen keys
* `layer_norm(x, scale, bias) -> (x - mean) / sqrt(var + epsilon) * scale + bias` ->
  `layer_norm_grad(x, scale, g) -> (dx, dscale, dbias)`, which recomputes each row's mean
  and variance (one cheap pass over a row already in cache) instead of keeping them.
  `scale` and `bias` have shape `x.shape[:batch_dims] + x.shape[-1:]`: `batch_dims` (0
  for users) is how `vmap` batches per-example parameters without a loop.
* `gelu(x)` (the tanh approximation) -> `gelu_grad(x, g) = g * gelu'(x)`, one pass each.

The backward primitives' own derivatives (for `grad` of `grad`) are the derivatives of
their composite formulas written with primitives (`_*_composite`), taken with `jvp_flat`
and `vjp_flat` as `cond` does for its branches.
"""

from __future__ import annotations

import math

import numpy as np

from nanofn import _core as core
from nanofn._core import Primitive, ShapedArray
from nanofn._kernels import enabled, kernel
from nanofn._malloc import empty  # large results on a cache line (nanofn/_malloc.py)
from nanofn.ops._base import (
    _add, _aval_shape, _div, _dtype, _mul, _sub, bdim_to_front, broadcast_in_dim_p,
    convert_element_type_p, eq_p, exp_p, iota_p, max_p, min_p, reduce_sum_p, rsqrt_p, tanh_p,
)
from nanofn.ops._fastmath import tanh_approx

prange = range  # numba's prange in the parallel builds (see `nanofn._kernels.kernel`)

__all__ = ["attention_softmax", "gelu", "layer_norm", "log_softmax", "logsumexp", "softmax",
           "softmax_cross_entropy_int"]

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _use_kernel(*arrays):
    return enabled() and all(a.dtype in _KERNEL_DTYPES for a in arrays)


def _rows(x):
    """`x` as a C-contiguous `(rows, last)` array (a view when it already is contiguous)."""
    x = np.ascontiguousarray(x)
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


# ------------------------------------------------------------------------ shape checks


def _need_float(name, arg, aval):
    if not np.issubdtype(aval.dtype, np.floating):
        raise TypeError(f"{name}: {arg} must be a floating array, got {aval.str_short()}; "
                        "convert it (e.g. x.astype(jnp.float32)) first")


def _need_rows(name, arg, aval):
    if aval.ndim == 0:
        raise ValueError(f"{name}: {arg} needs at least one axis (the last is reduced), got "
                         f"a scalar {aval.str_short()}")


def _same(name, avals, args):
    first = avals[0]
    for a, arg in zip(avals[1:], args[1:]):
        if a.shape != first.shape or a.dtype != first.dtype:
            raise ValueError(f"{name}: {arg} must match {args[0]} in shape and dtype, got "
                             f"{args[0]} {first.str_short()} and {arg} {a.str_short()}")


def _rowwise_abstract_eval(name, args, reduce=False):
    def rule(*avals):
        _need_float(name, args[0], avals[0])
        _need_rows(name, args[0], avals[0])
        _same(name, avals, args)
        x = avals[0]
        return ShapedArray(x.shape[:-1] if reduce else x.shape, x.dtype)
    return rule


def _check(prim, *arrays, **params):
    """Validate concrete operands before a kernel sees them (a kernel does not check
    bounds, so mismatched shapes must never reach it)."""
    prim.abstract_eval(*[ShapedArray(np.shape(a), np.asarray(a).dtype) for a in arrays],
                       **params)


# ------------------------------------------------------------------------ rule helpers


def _sum_last(x, keep=True):
    shape = _aval_shape(x)
    s = reduce_sum_p.bind(x, axes=(len(shape) - 1,))
    return _bcast_rows(s, shape) if keep else s


def _bcast_rows(v, shape):
    """Broadcast a per-row value (shape[:-1]) back along the last axis."""
    return broadcast_in_dim_p.bind(v, shape=tuple(shape),
                                   broadcast_dimensions=tuple(range(len(shape) - 1)))


def _one_hot_like(labels, like):
    """`labels[..., None] == arange(C)` in the dtype of `like` (out-of-range: all zeros)."""
    shape = tuple(_aval_shape(like))
    ldt = _dtype(labels)
    classes = iota_p.bind(dtype=ldt, shape=shape, dimension=len(shape) - 1)
    hit = eq_p.bind(_bcast_rows(labels, shape), classes)
    return convert_element_type_p.bind(hit, new_dtype=_dtype(like))


def _broadcast_front(v, size):
    shape = tuple(_aval_shape(v))
    return broadcast_in_dim_p.bind(v, shape=(size,) + shape,
                                   broadcast_dimensions=tuple(range(1, len(shape) + 1)))


def _front_batch(prim, nout=None, bump=None):
    """Batch rule for a row-wise primitive: every operand's batch axis goes to the front
    (an unbatched operand is broadcast), so the reduced last axis stays last. `bump` names
    a param that counts leading batch axes (layer norm's `batch_dims`)."""
    def batch(vals, dims, **params):
        size = next(_aval_shape(v)[d] for v, d in zip(vals, dims) if d is not None)
        moved = [bdim_to_front(v, d) if d is not None else _broadcast_front(v, size)
                 for v, d in zip(vals, dims)]
        if bump is not None:
            params = dict(params, **{bump: params[bump] + 1})
        out = prim.bind(*moved, **params)
        return (out, [0] * nout) if nout else (out, 0)
    return batch


def _derived_rules(prim, composite, float_args):
    """JVP and VJP rules for `prim` from the derivatives of `composite` (the same
    function written with primitives). `float_args[i]` says whether argument i is
    differentiable. The primal outputs come from `prim` itself."""
    multiple = prim.multiple_results

    def as_list(out):
        return list(out) if multiple else [out]

    def jvp(primals, tangents, **params):
        from nanofn._ad import jvp_flat
        tangents = [t if f else None for t, f in zip(tangents, float_args)]
        _, t_out = jvp_flat(lambda *a: as_list(composite(*a, **params)), list(primals),
                            tangents)
        out = prim.bind(*primals, **params)
        return (out, t_out) if multiple else (out, t_out[0])

    def vjp_joint(cts, primals, outs, needs, **params):
        del outs  # unused
        from nanofn._ad import vjp_flat
        _, pullback, _ = vjp_flat(
            lambda *a: (as_list(composite(*a, **params)), None), list(primals))
        res = pullback(list(cts) if multiple else [cts])
        return [r if (f and n) else None for r, f, n in zip(res, float_args, needs)]

    prim.jvp = jvp
    prim.vjp_joint = vjp_joint


# ======================================================================== logsumexp, softmax

# Row statistics shared by the kernels below. `_row_shift` is the row's maximum, or 0 if
# that is not finite (an all -inf row, or one holding +inf; softmax and log_softmax take
# `_softmax_shift`, which keeps +inf). `_row_logz` is log(sum(exp(x
# - shift))): `top` counts the entries equal to the shift (each contributes exp(0) = 1
# exactly) and `rest` sums the others' exp(x - shift), so log(top) + log1p(rest / top)
# keeps full precision when `rest` is tiny.


@kernel
def _row_shift(x, i):
    m = -np.inf
    for j in range(x.shape[1]):
        if x[i, j] > m:
            m = x[i, j]
    return m if np.isfinite(m) else 0.0


@kernel
def _softmax_shift(x, i):
    """The shift of softmax and log_softmax: the row's maximum, 0 for an all -inf row. A
    row holding +inf keeps it: `x - max` is NaN there, so the whole row is NaN, as JAX's
    softmax gives (logsumexp and cross-entropy take `_row_shift`, as JAX's do)."""
    m = -np.inf
    for j in range(x.shape[1]):
        if x[i, j] > m:
            m = x[i, j]
    return 0.0 if m == -np.inf else m


@kernel
def _row_logz(x, i, shift):
    top = 0.0
    rest = 0.0
    for j in range(x.shape[1]):
        d = x[i, j] - shift
        if d == 0.0:
            top += 1.0
        else:
            rest += math.exp(d)
    return math.log(top) + math.log1p(rest / top) if top > 0.0 else math.log(rest)


@kernel
def _logsumexp_kernel(x, out):
    for i in range(x.shape[0]):
        shift = _row_shift(x, i)
        out[i] = shift + _row_logz(x, i, shift)


@kernel
def _log_softmax_kernel(x, out):
    for i in range(x.shape[0]):
        shift = _softmax_shift(x, i)
        logz = _row_logz(x, i, shift)
        for j in range(x.shape[1]):
            out[i, j] = (x[i, j] - shift) - logz


@kernel
def _softmax_kernel(x, out):
    rows, cols = x.shape
    for i in range(rows):
        shift = _softmax_shift(x, i)
        total = 0.0
        for j in range(cols):
            e = math.exp(x[i, j] - shift)
            out[i, j] = e
            total += e
        for j in range(cols):
            out[i, j] = out[i, j] / total


@kernel
def _log_softmax_grad_kernel(g, out, dx):
    rows, cols = g.shape
    for i in range(rows):
        total = 0.0
        for j in range(cols):
            total += g[i, j]
        for j in range(cols):
            dx[i, j] = g[i, j] - math.exp(out[i, j]) * total


@kernel
def _softmax_grad_kernel(g, s, dx):
    rows, cols = g.shape
    for i in range(rows):
        dot = 0.0
        for j in range(cols):
            dot += g[i, j] * s[i, j]
        for j in range(cols):
            dx[i, j] = s[i, j] * (g[i, j] - dot)


def _shift_ref(x, inf_rows=False):
    """The rows' shifts: the maximum, or 0 where it is not finite; with `inf_rows` a row
    holding +inf keeps it (softmax and log_softmax: NaN throughout, see `_softmax_shift`)."""
    m = np.max(x, axis=-1, keepdims=True, initial=-np.inf)
    keep = np.isfinite(m) | (m == np.inf) if inf_rows else np.isfinite(m)
    return np.where(keep, m, 0).astype(x.dtype)


def _logsumexp_ref(x):
    with np.errstate(all="ignore"):
        shift = _shift_ref(x)
        return (np.log(np.sum(np.exp(x - shift), axis=-1, keepdims=True)) + shift)[..., 0]


def _log_softmax_ref(x):
    with np.errstate(all="ignore"):
        shifted = x - _shift_ref(x, inf_rows=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _softmax_ref(x):
    with np.errstate(all="ignore"):
        e = np.exp(x - _shift_ref(x, inf_rows=True))
        return e / np.sum(e, axis=-1, keepdims=True)


def _log_softmax_grad_ref(g, out):
    with np.errstate(all="ignore"):
        return g - np.exp(out) * np.sum(g, axis=-1, keepdims=True)


def _softmax_grad_ref(g, s):
    with np.errstate(all="ignore"):
        return s * (g - np.sum(g * s, axis=-1, keepdims=True))


# numba has no vectorised exp (no SVML), so a float64 kernel spends ~7 ns per exp where
# numpy takes ~1; the kernels win by making one pass where numpy makes six, which pays on
# short rows (numpy's reductions along a short last axis are slow) and loses on long
# ones. float64 rows longer than `_EXP_ROW_MAX` take the numpy reference (cross-entropy's
# reference makes more passes, so it keeps its kernel further). float32 rows of any length
# take the kernels of nanofn/ops/_softmax32.py, whose every loop vectorises (a float32
# exp made of arithmetic, an integer-compare row maximum): one pass, several times faster
# than numpy's six at every width (benchmarks/kernels_nn.py).
_EXP_ROW_MAX = 32
_CE_ROW_MAX = 1024


def _float32_kernel(name):
    """The float32 kernel `name` of `_softmax32` (imported on first use: it imports numba)."""
    from nanofn.ops import _softmax32
    return getattr(_softmax32, name)


def _run(prim, kern, ref, *arrays, reduce=False, max_cols=None, kern32=None, **params):
    """The impl of a row-wise primitive: check, then the kernel or the numpy reference."""
    _check(prim, *arrays, **params)
    arrays = [np.asarray(a) for a in arrays]
    x = arrays[0]
    float32 = kern32 is not None and x.dtype == np.float32
    too_long = max_cols is not None and x.shape[-1] > max_cols and not float32
    if too_long or not _use_kernel(*arrays):
        return np.asarray(ref(*arrays, **params), dtype=x.dtype)
    rows = [_rows(a) for a in arrays]
    out = empty(rows[0].shape[:1] if reduce else rows[0].shape, x.dtype)
    (_float32_kernel(kern32) if float32 else kern)(*rows, out)
    return out.reshape(x.shape[:-1] if reduce else x.shape)


# --- logsumexp ------------------------------------------------------------------------
logsumexp_p = Primitive("logsumexp")
logsumexp_p.abstract_eval = _rowwise_abstract_eval("logsumexp", ("x",), reduce=True)
logsumexp_p.impl = lambda x: _run(logsumexp_p, _logsumexp_kernel, _logsumexp_ref, x,
                                  reduce=True, max_cols=_EXP_ROW_MAX, kern32="logsumexp_rows")
# d logsumexp(x) = sum(softmax(x) * dx)
logsumexp_p.jvp_terms = [lambda t, x, *, out: _sum_last(_mul(t, softmax_p.bind(x)), False)]
logsumexp_p.vjp = [lambda ct, x, *, out: _mul(_bcast_rows(ct, _aval_shape(x)),
                                              softmax_p.bind(x))]
logsumexp_p.batch = _front_batch(logsumexp_p)


def logsumexp(x):
    """`log(sum(exp(x)))` over the last axis, without overflow (a kernel primitive).

    Args:
      x: floating array with at least one axis.

    Returns:
      An array of shape `x.shape[:-1]`; an empty or all `-inf` row gives `-inf`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.ops._nn import logsumexp
        >>> out = logsumexp(jnp.array([[0.0, 0.0], [1000.0, -1000.0]]))
        >>> round(float(out[0]), 4), float(out[1])
        (0.6931, 1000.0)
    """
    return logsumexp_p.bind(x)


# --- log_softmax ----------------------------------------------------------------------
log_softmax_p = Primitive("log_softmax")
log_softmax_p.abstract_eval = _rowwise_abstract_eval("log_softmax", ("x",))
log_softmax_p.impl = lambda x: _run(log_softmax_p, _log_softmax_kernel, _log_softmax_ref, x,
                                    max_cols=_EXP_ROW_MAX, kern32="log_softmax_rows")


def _center(t, p):
    """`t - sum(p * t)` along the last axis: the JVP of log_softmax (p its softmax)."""
    return _sub(t, _sum_last(_mul(p, t)))


log_softmax_p.jvp_terms = [lambda t, x, *, out: _center(t, exp_p.bind(out))]
log_softmax_p.vjp = [lambda ct, x, *, out: log_softmax_grad_p.bind(ct, out)]
log_softmax_p.batch = _front_batch(log_softmax_p)


def log_softmax(x):
    """`x - logsumexp(x)` over the last axis (a kernel primitive).

    Args:
      x: floating array with at least one axis.

    Returns:
      Log-probabilities of the shape of `x`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.ops._nn import log_softmax
        >>> log_softmax(jnp.array([0.0, 1000.0])).round(3)
        Array([-1000.,     0.], dtype=float32)
    """
    return log_softmax_p.bind(x)


# --- log_softmax_grad: g - exp(out) * sum(g) --------------------------------------------
log_softmax_grad_p = Primitive("log_softmax_grad")
log_softmax_grad_p.abstract_eval = _rowwise_abstract_eval("log_softmax_grad", ("g", "out"))
log_softmax_grad_p.impl = lambda g, out: _run(log_softmax_grad_p, _log_softmax_grad_kernel,
                                              _log_softmax_grad_ref, g, out,
                                              max_cols=_EXP_ROW_MAX,
                                              kern32="log_softmax_grad_rows")


def _log_softmax_grad_composite(g, out):
    return _sub(g, _mul(exp_p.bind(out), _sum_last(g)))


_derived_rules(log_softmax_grad_p, _log_softmax_grad_composite, (True, True))
log_softmax_grad_p.batch = _front_batch(log_softmax_grad_p)


# --- softmax --------------------------------------------------------------------------
softmax_p = Primitive("softmax")
softmax_p.abstract_eval = _rowwise_abstract_eval("softmax", ("x",))
softmax_p.impl = lambda x: _run(softmax_p, _softmax_kernel, _softmax_ref, x,
                                max_cols=_EXP_ROW_MAX, kern32="softmax_rows")
# the Jacobian diag(s) - s s^T is symmetric: one rule serves both modes
softmax_p.jvp_terms = [lambda t, x, *, out: softmax_grad_p.bind(t, out)]
softmax_p.vjp = [lambda ct, x, *, out: softmax_grad_p.bind(ct, out)]
softmax_p.batch = _front_batch(softmax_p)


def softmax(x):
    """`exp(x) / sum(exp(x))` over the last axis, shifted so it never overflows (a kernel
    primitive).

    Args:
      x: floating array with at least one axis.

    Returns:
      Probabilities of the shape of `x` (each row sums to 1).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.ops._nn import softmax
        >>> softmax(jnp.array([1000.0, 1000.0, -1000.0]))
        Array([0.5, 0.5, 0. ], dtype=float32)
    """
    return softmax_p.bind(x)


# --- softmax_grad: s * (g - sum(g * s)) -------------------------------------------------
softmax_grad_p = Primitive("softmax_grad")
softmax_grad_p.abstract_eval = _rowwise_abstract_eval("softmax_grad", ("g", "out"))
softmax_grad_p.impl = lambda g, s: _run(softmax_grad_p, _softmax_grad_kernel,
                                        _softmax_grad_ref, g, s, kern32="softmax_grad_rows")


def _softmax_grad_composite(g, s):
    return _mul(s, _sub(g, _sum_last(_mul(g, s))))


_derived_rules(softmax_grad_p, _softmax_grad_composite, (True, True))
softmax_grad_p.batch = _front_batch(softmax_grad_p)


# ======================================================================== attention softmax
#
# `attention_softmax(x, scale, causal)`: softmax over the key axis (last) of `x * scale`,
# where with `causal` query `i` (axis -2) sees keys `j <= i` only (JAX's `is_causal`: the
# mask `tril(ones((T, S)))`, top-left aligned); hidden keys get weight exactly 0. It
# replaces dot_product_attention's `mul`, `select_n` and `softmax` (and their backward
# passes) with one primitive forward and one backward:
# `attention_softmax_grad(g, s) = scale * s * (g - sum(g * s))` over the seen keys, and
# zero at hidden keys (where a softmax `s` is zero anyway). Under `causal` no row is fully
# hidden (key 0 is always seen).
#
# float32 runs one kernel pass per row whose every loop vectorises (max, exp, sum,
# normalise; nanofn/ops/_softmax32.py, imported on first use: it imports numba). float64
# is split in three passes: a numba pass writes `x * scale - rowmax` (and -inf at hidden
# keys), numpy's vectorised exp runs in place (numba's scalar exp is several times
# slower), and a numba pass normalises the seen keys. With `causal` every pass but numpy's
# touches only the seen half of each (T, S) block.


@kernel
def _attn_shift_kernel(x, scale, causal, out):
    rows, t, s = x.shape
    for r in range(rows):
        for i in range(t):
            n = min(i + 1, s) if causal else s
            m = -np.inf
            for j in range(n):
                v = x[r, i, j] * scale
                if v > m:
                    m = v
            if m == -np.inf:  # a row holding +inf stays NaN, as in `_softmax_shift`
                m = 0.0
            for j in range(n):
                out[r, i, j] = x[r, i, j] * scale - m
            for j in range(n, s):
                out[r, i, j] = -np.inf


@kernel
def _attn_normalise_kernel(e, causal):
    rows, t, s = e.shape
    for r in range(rows):
        for i in range(t):
            n = min(i + 1, s) if causal else s
            total = 0.0
            for j in range(n):
                total += e[r, i, j]
            for j in range(n):
                e[r, i, j] = e[r, i, j] / total


@kernel
def _attn_softmax_grad_kernel(g, p, scale, causal, dx):
    rows, t, s = g.shape
    for r in range(rows):
        for i in range(t):
            n = min(i + 1, s) if causal else s
            dot = 0.0
            for j in range(n):
                dot += g[r, i, j] * p[r, i, j]
            for j in range(n):
                dx[r, i, j] = scale * p[r, i, j] * (g[r, i, j] - dot)
            for j in range(n, s):
                dx[r, i, j] = 0.0


def _causal_keep(shape):
    t, s = shape[-2], shape[-1]
    return np.tril(np.ones((t, s), bool))


def _attention_softmax_ref(x, *, scale, causal):
    with np.errstate(all="ignore"):
        y = x * x.dtype.type(scale)
        if causal:
            y = np.where(_causal_keep(x.shape), y, -np.inf).astype(x.dtype)
        return _softmax_ref(y)


def _attention_softmax_grad_ref(g, p, *, scale, causal):
    if causal:  # only seen keys count (p is 0 at hidden keys when it is a softmax)
        p = np.where(_causal_keep(p.shape), p, 0).astype(p.dtype)
    with np.errstate(all="ignore"):
        return _softmax_grad_ref(g, p) * p.dtype.type(scale)


def _qk_blocks(x):
    """`x` as a C-contiguous `(batch, T, S)` array (a view when it already is one)."""
    x = np.ascontiguousarray(x)
    return x.reshape((math.prod(x.shape[:-2]),) + x.shape[-2:])


def _attention_abstract_eval(name, args):
    def rule(*avals, scale, causal):
        del scale  # a Python float
        _need_float(name, args[0], avals[0])
        if avals[0].ndim < 2:
            raise ValueError(f"{name}: {args[0]} must have a query and a key axis (at least "
                             f"2 axes), got {avals[0].str_short()}")
        _same(name, avals, args)
        return ShapedArray(avals[0].shape, avals[0].dtype)
    return rule


def _attention_softmax_into(x, scale, causal, out):
    """`attention_softmax` of a C-contiguous `(rows, T, S)` block `x`, written into `out`
    (another such block; also used by the fused attention, nanofn/ops/_attention.py)."""
    if not _use_kernel(x) or x.size == 0:
        out[...] = _attention_softmax_ref(x, scale=scale, causal=causal)
    elif x.dtype == np.float32:
        _float32_kernel("attention_softmax_kernel")(x, float(scale), bool(causal), out)
    else:
        _attn_shift_kernel(x, float(scale), bool(causal), out)
        np.exp(out, out=out)
        _attn_normalise_kernel(out, bool(causal))
    return out


def _attention_softmax_grad_into(g, p, scale, causal, out):
    """`attention_softmax_grad` of C-contiguous `(rows, T, S)` blocks, written into `out`."""
    if not _use_kernel(g, p) or g.size == 0:
        out[...] = _attention_softmax_grad_ref(g, p, scale=scale, causal=causal)
    else:
        grad_kernel = (_float32_kernel("attention_softmax_grad_kernel")
                       if g.dtype == np.float32 else _attn_softmax_grad_kernel)
        grad_kernel(g, p, float(scale), bool(causal), out)
    return out


def _attention_softmax_impl(x, *, scale, causal):
    _check(attention_softmax_p, x, scale=scale, causal=causal)
    blocks = _qk_blocks(np.asarray(x))
    out = _attention_softmax_into(blocks, scale, causal, empty(blocks.shape, blocks.dtype))
    return out.reshape(np.shape(x))


def _attention_softmax_grad_impl(g, p, *, scale, causal):
    _check(attention_softmax_grad_p, g, p, scale=scale, causal=causal)
    gb, pb = _qk_blocks(np.asarray(g)), _qk_blocks(np.asarray(p))
    dx = _attention_softmax_grad_into(gb, pb, scale, causal, empty(gb.shape, gb.dtype))
    return dx.reshape(np.shape(g))


# --- attention_softmax ----------------------------------------------------------------
attention_softmax_p = Primitive("attention_softmax")
attention_softmax_p.abstract_eval = _attention_abstract_eval("attention_softmax", ("x",))
attention_softmax_p.impl = _attention_softmax_impl
# d softmax(scale * x) = scale * softmax_grad(dx, s): symmetric, one rule for both modes
attention_softmax_p.jvp_terms = [
    lambda t, x, *, out, scale, causal: attention_softmax_grad_p.bind(
        t, out, scale=scale, causal=causal)]
attention_softmax_p.vjp = [
    lambda ct, x, *, out, scale, causal: attention_softmax_grad_p.bind(
        ct, out, scale=scale, causal=causal)]
attention_softmax_p.batch = _front_batch(attention_softmax_p)


def attention_softmax(x, scale=1.0, causal=False):
    """Attention weights from logits `x` `(..., T, S)`: the softmax over the last (key)
    axis of `x * scale`, with `causal` hiding keys `j > i` from query `i` (their weight
    is exactly 0), as one kernel primitive forward and one backward.

    Args:
      x: floating array with at least 2 axes (queries, keys).
      scale: Python float multiplying the logits.
      causal: hide the keys after each query's position (`tril(ones((T, S)))`).

    Returns:
      Weights of the shape of `x`; each row sums to 1.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.ops._nn import attention_softmax
        >>> attention_softmax(jnp.zeros((3, 3)), causal=True).round(3)
        Array([[1.   , 0.   , 0.   ],
               [0.5  , 0.5  , 0.   ],
               [0.333, 0.333, 0.333]], dtype=float32)
    """
    return attention_softmax_p.bind(x, scale=float(scale), causal=bool(causal))


# --- attention_softmax_grad: scale * s * (g - sum(g * s)) --------------------------------
attention_softmax_grad_p = Primitive("attention_softmax_grad")
attention_softmax_grad_p.abstract_eval = _attention_abstract_eval("attention_softmax_grad",
                                                                  ("g", "out"))
attention_softmax_grad_p.impl = _attention_softmax_grad_impl


def _attention_softmax_grad_composite(g, s, *, scale, causal):
    if causal:
        shape = tuple(_aval_shape(s))
        s = _mul(s, np.broadcast_to(_causal_keep(shape), shape).astype(_dtype(s)))
    return _mul(_softmax_grad_composite(g, s), np.asarray(scale, _dtype(g)))


_derived_rules(attention_softmax_grad_p, _attention_softmax_grad_composite, (True, True))
attention_softmax_grad_p.batch = _front_batch(attention_softmax_grad_p)


# ======================================================================== cross-entropy


@kernel
def _ce_kernel(x, labels, loss, probs):
    rows, cols = x.shape
    for i in range(rows):
        shift = _row_shift(x, i)
        top = 0.0
        rest = 0.0
        total = 0.0
        for j in range(cols):
            d = x[i, j] - shift
            e = math.exp(d)
            probs[i, j] = e
            total += e
            if d == 0.0:
                top += 1.0
            else:
                rest += e
        for j in range(cols):
            probs[i, j] = probs[i, j] / total
        logz = math.log(top) + math.log1p(rest / top) if top > 0.0 else math.log(rest)
        k = labels[i]
        if 0 <= k < cols:
            loss[i] = logz - (x[i, k] - shift)
        else:  # an out-of-range label (never read): NaN, as optax gives under jit
            loss[i] = math.nan


@kernel
def _ce_grad_kernel(probs, labels, g, dx):
    rows, cols = probs.shape
    for i in range(rows):
        gi = g[i]
        for j in range(cols):
            dx[i, j] = probs[i, j] * gi
        k = labels[i]
        if 0 <= k < cols:
            dx[i, k] = dx[i, k] - gi


def _picked_ref(x, labels):
    """`x[..., label]`, NaN where the label is out of range."""
    n = x.shape[-1]
    ok = (labels >= 0) & (labels < n)
    idx = np.where(ok, labels, 0)[..., None].astype(np.intp)
    picked = np.take_along_axis(x, idx, axis=-1)[..., 0] if n else np.zeros(labels.shape,
                                                                            x.dtype)
    return np.where(ok, picked, np.nan).astype(x.dtype)


def _ce_ref(x, labels):
    with np.errstate(all="ignore"):
        return [(_logsumexp_ref(x) - _picked_ref(x, labels)).astype(x.dtype), _softmax_ref(x)]


def _ce_grad_ref(probs, labels, g):
    n = probs.shape[-1]
    hot = labels[..., None] == np.arange(n)
    with np.errstate(all="ignore"):
        return ((probs - hot) * g[..., None]).astype(probs.dtype)


def _ce_check(name, x, labels, *rest):
    _need_float(name, "logits" if not rest else "probs", x)
    _need_rows(name, "logits" if not rest else "probs", x)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name}: labels must be integer class indices, got "
                        f"{labels.str_short()}")
    if labels.shape != x.shape[:-1]:
        raise ValueError(f"{name}: labels must have shape {x.shape[:-1]} (the logits' shape "
                         f"without the class axis), got logits {x.str_short()} and labels "
                         f"{labels.str_short()}")
    for r in rest:
        if r.shape != labels.shape or r.dtype != x.dtype:
            raise ValueError(f"{name}: g must have shape {labels.shape} and dtype "
                             f"{x.dtype.name}, got {r.str_short()}")


# --- softmax_cross_entropy_int: (loss, probs) ------------------------------------------
ce_int_p = Primitive("softmax_cross_entropy_int", multiple_results=True)


@ce_int_p.def_abstract_eval
def _ce_int_abstract_eval(x, labels):
    _ce_check("softmax_cross_entropy_int", x, labels)
    return [ShapedArray(x.shape[:-1], x.dtype), ShapedArray(x.shape, x.dtype)]


@ce_int_p.def_impl
def _ce_int_impl(x, labels):
    _check(ce_int_p, x, labels)
    x, labels = np.asarray(x), np.asarray(labels)
    if core.checking[0]:  # debug_nans: name the label, rather than the NaN it gives
        _check_labels("softmax_cross_entropy_with_integer_labels", labels, x.shape[-1],
                      FloatingPointError)
    float32 = x.dtype == np.float32
    if (x.shape[-1] > _CE_ROW_MAX and not float32) or not _use_kernel(x):
        return _ce_ref(x, labels)
    rows = _rows(x)
    loss = np.empty(rows.shape[0], x.dtype)
    probs = empty(rows.shape, x.dtype)
    kern = _float32_kernel("ce_rows") if float32 else _ce_kernel
    kern(rows, np.ascontiguousarray(labels, np.int64).reshape(-1), loss, probs)
    return [loss.reshape(x.shape[:-1]), probs.reshape(x.shape)]


def _ce_int_jvp(primals, tangents):
    x, labels = primals
    t = tangents[0]
    loss, probs = ce_int_p.bind(x, labels)
    if t is None:
        return [loss, probs], [None, None]
    # d loss = sum(p * t) - t[label];  d probs = p * (t - sum(p * t))
    t_loss = _sub(_sum_last(_mul(probs, t), False), _sum_last(_mul(t, _one_hot_like(labels, t)),
                                                              False))
    return [loss, probs], [t_loss, softmax_grad_p.bind(t, probs)]


def _ce_int_vjp(cts, primals, outs, needs):
    ct_loss, ct_probs = cts
    probs = outs[1]
    if not needs[0]:
        return [None, None]
    dx = None
    if ct_loss is not None:
        dx = ce_int_grad_p.bind(probs, primals[1], ct_loss)
    if ct_probs is not None:
        d = softmax_grad_p.bind(ct_probs, probs)
        dx = d if dx is None else _add(dx, d)
    return [dx, None]


ce_int_p.jvp = _ce_int_jvp
ce_int_p.vjp_joint = _ce_int_vjp
ce_int_p.batch = _front_batch(ce_int_p, nout=2)


def softmax_cross_entropy_int(logits, labels):
    """Softmax cross-entropy with integer labels over the last axis:
    `logsumexp(logits) - logits[label]`, forward and backward each one kernel pass.

    Args:
      logits: floating array `[..., num_classes]`.
      labels: integer array `[...]` of classes in `[0, num_classes)`.

    Returns:
      The per-example losses, shape `logits.shape[:-1]`.

    Raises:
      ValueError: a label out of range, when the labels' values are known (outside
        `jit`; under `jit` such a label's loss is NaN, as in optax, and with `debug_nans`
        on it raises a FloatingPointError naming the label).

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.ops._nn import softmax_cross_entropy_int
        >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
        >>> softmax_cross_entropy_int(logits, jnp.array([0, 1])).round(4)
        Array([0.2761, 2.9518], dtype=float32)
    """
    from nanofn._core import Tracer
    if not isinstance(labels, Tracer):  # values known: check them (under jit they are not)
        value = np.asarray(labels)
        shape = _aval_shape(logits)
        n = shape[-1] if len(shape) else 0
        if np.issubdtype(value.dtype, np.integer):
            _check_labels("softmax_cross_entropy_int", value, n, ValueError)
    return ce_int_p.bind(logits, labels)[0]


def _check_labels(name, labels, n, error):
    bad = labels[(labels < 0) | (labels >= n)]
    if bad.size:
        raise error(f"{name}: labels must lie in [0, {n}) for logits with {n} classes, "
                    f"found label {int(bad.flat[0])}")


# --- softmax_cross_entropy_int_grad: (probs - onehot(labels)) * g ------------------------
ce_int_grad_p = Primitive("softmax_cross_entropy_int_grad")


@ce_int_grad_p.def_abstract_eval
def _ce_int_grad_abstract_eval(probs, labels, g):
    _ce_check("softmax_cross_entropy_int_grad", probs, labels, g)
    return ShapedArray(probs.shape, probs.dtype)


@ce_int_grad_p.def_impl
def _ce_int_grad_impl(probs, labels, g):
    _check(ce_int_grad_p, probs, labels, g)
    probs, labels, g = np.asarray(probs), np.asarray(labels), np.asarray(g)
    if not _use_kernel(probs):
        return _ce_grad_ref(probs, labels, g)
    rows = _rows(probs)
    dx = empty(rows.shape, probs.dtype)
    _ce_grad_kernel(rows, np.ascontiguousarray(labels, np.int64).reshape(-1),
                    np.ascontiguousarray(g).reshape(-1), dx)
    return dx.reshape(probs.shape)


def _ce_int_grad_composite(probs, labels, g):
    return _mul(_sub(probs, _one_hot_like(labels, probs)), _bcast_rows(g, _aval_shape(probs)))


_derived_rules(ce_int_grad_p, _ce_int_grad_composite, (True, False, True))
ce_int_grad_p.batch = _front_batch(ce_int_grad_p)


# ======================================================================== layer norm


# The row sums carry LLVM's reassociation flag (and only they: the elementwise arithmetic
# keeps its order), so each vectorises into several float64 partial sums combined at the
# end instead of one serial chain of additions, whose latency (4 cycles an element) was
# most of the kernels' time: both run about 2-2.5x faster on W7's (2048, 128) rows. The
# sums stay float64 and two-pass, so rows with a large mean and a small variance keep
# their accuracy. The elementwise passes then compute in x's dtype, which for float32
# vectorises twice as wide as float64 (W7's rows: forward 0.22 -> 0.11 ms, backward
# 0.34 -> 0.26 ms): 1/std and the backward's row means rounded to it, and the mean as
# two parts, `hi` (rounded) and `lo = mean - hi`, subtracted one after the other. For a
# row far from zero, `x - hi` is exact (the two are within a factor of two), so
# `(x - hi) - lo` is x minus the float64 mean to float32's precision; rounding the mean
# itself would lose the low digits that tell such a row's values apart.
_SUMS = dict(fastmath={"reassoc"})


@kernel(**_SUMS)
def _row_sum(x, b, i):
    s = 0.0
    for j in range(x.shape[2]):
        s += x[b, i, j]
    return s


@kernel(**_SUMS)
def _row_sq_dev(x, b, i, mean):
    s = 0.0
    for j in range(x.shape[2]):
        d = x[b, i, j] - mean
        s += d * d
    return s


@kernel
def _row_moments(x, b, i, eps):
    # mean and 1 / sqrt(variance + eps) of row x[b, i], in two passes
    cols = x.shape[2]
    mean = _row_sum(x, b, i) / cols
    var = _row_sq_dev(x, b, i, mean) / cols
    return mean, 1.0 / math.sqrt(var + eps)


@kernel(parallel_arg=0)
def _layer_norm_kernel(x, scale, bias, eps, out):
    nb, rows, cols = x.shape
    mr = np.empty((nb * rows, 3), x.dtype)  # each row's moments in x's dtype (see above)
    for bi in prange(nb * rows):  # the rows (b, i), each on its own
        b, i = bi // rows, bi % rows
        mean, rstd = _row_moments(x, b, i, eps)
        mr[bi, 0] = mean
        mr[bi, 1] = mean - mr[bi, 0]
        mr[bi, 2] = rstd
        hi, lo, rstd = mr[bi, 0], mr[bi, 1], mr[bi, 2]
        for j in range(cols):
            out[b, i, j] = ((x[b, i, j] - hi) - lo) * rstd * scale[b, j] + bias[b, j]


@kernel(**_SUMS)
def _layer_norm_grad_row(x, scale, g, b, i, mean, rstd, dscale, dbias):
    # sum(g * scale) and sum(g * scale * xhat) over row x[b, i]; adds the row's terms to
    # dscale[b] and dbias[b]
    a = 0.0
    c = 0.0
    for j in range(x.shape[2]):
        xhat = (x[b, i, j] - mean) * rstd
        gj = g[b, i, j]
        gs = gj * scale[b, j]
        a += gs
        c += gs * xhat
        dscale[b, j] += gj * xhat
        dbias[b, j] += gj
    return a, c


@kernel
def _layer_norm_grad_kernel(x, scale, g, eps, dx, dscale, dbias):
    # dscale, dbias: float64 accumulators, zero on entry
    nb, rows, cols = x.shape
    mr = np.empty(5, x.dtype)
    for b in range(nb):
        for i in range(rows):
            mean, rstd = _row_moments(x, b, i, eps)
            a, c = _layer_norm_grad_row(x, scale, g, b, i, mean, rstd, dscale, dbias)
            mr[0] = mean
            mr[1] = mean - mr[0]
            mr[2], mr[3], mr[4] = rstd, a / cols, c / cols
            hi, lo, rstd, a, c = mr[0], mr[1], mr[2], mr[3], mr[4]
            for j in range(cols):
                xhat = ((x[b, i, j] - hi) - lo) * rstd
                dx[b, i, j] = rstd * (g[b, i, j] * scale[b, j] - a - xhat * c)


def _blocks(x, batch_dims):
    """`x` as a contiguous `(batch, rows, last)` array; per-batch params as `(batch, last)`."""
    x = np.ascontiguousarray(x)
    shape = x.shape
    return x.reshape(math.prod(shape[:batch_dims]), math.prod(shape[batch_dims:-1]), shape[-1])


def _expand_param(p, x_ndim, batch_dims):
    """A `(batch..., C)` parameter reshaped to broadcast against x (numpy reference)."""
    shape = p.shape[:-1] + (1,) * (x_ndim - batch_dims - 1) + p.shape[-1:]
    return p.reshape(shape)


def _mean_last(x):
    return np.sum(x, axis=-1, keepdims=True) / np.asarray(x.shape[-1], x.dtype)


def _xhat_ref(x, epsilon):
    mean = _mean_last(x)
    var = _mean_last(np.square(x - mean))
    return (x - mean) / np.sqrt(var + np.asarray(epsilon, x.dtype)), var


def _layer_norm_ref(x, scale, bias, *, epsilon, batch_dims):
    with np.errstate(all="ignore"):
        xhat, _ = _xhat_ref(x, epsilon)
        return (xhat * _expand_param(scale, x.ndim, batch_dims)
                + _expand_param(bias, x.ndim, batch_dims)).astype(x.dtype)


def _layer_norm_grad_ref(x, scale, g, *, epsilon, batch_dims):
    with np.errstate(all="ignore"):
        xhat, var = _xhat_ref(x, epsilon)
        rstd = 1 / np.sqrt(var + np.asarray(epsilon, x.dtype))
        gs = g * _expand_param(scale, x.ndim, batch_dims)
        dx = rstd * (gs - _mean_last(gs) - xhat * _mean_last(gs * xhat))
        axes = tuple(range(batch_dims, x.ndim - 1))
        return [dx.astype(x.dtype), np.sum(g * xhat, axis=axes).astype(x.dtype),
                np.sum(g, axis=axes).astype(x.dtype)]


def _ln_check(name, x, params, batch_dims, names):
    _need_float(name, "x", x)
    _need_rows(name, "x", x)
    if not 0 <= batch_dims < x.ndim:
        raise ValueError(f"{name}: batch_dims={batch_dims} must lie in [0, {x.ndim}) for x "
                         f"{x.str_short()}")
    want = x.shape[:batch_dims] + x.shape[-1:]
    for p, n in zip(params, names):
        if p.shape != want or p.dtype != x.dtype:
            raise ValueError(f"{name}: {n} must have shape {want} and dtype {x.dtype.name} "
                             f"(the normalised last axis of x {x.str_short()}), got "
                             f"{p.str_short()}")


# --- layer_norm -----------------------------------------------------------------------
layer_norm_p = Primitive("layer_norm")


@layer_norm_p.def_abstract_eval
def _layer_norm_abstract_eval(x, scale, bias, *, epsilon, batch_dims):
    _ln_check("layer_norm", x, (scale, bias), batch_dims, ("scale", "bias"))
    return ShapedArray(x.shape, x.dtype)


@layer_norm_p.def_impl
def _layer_norm_impl(x, scale, bias, *, epsilon, batch_dims):
    _check(layer_norm_p, x, scale, bias, epsilon=epsilon, batch_dims=batch_dims)
    x, scale, bias = np.asarray(x), np.asarray(scale), np.asarray(bias)
    if not _use_kernel(x):
        return _layer_norm_ref(x, scale, bias, epsilon=epsilon, batch_dims=batch_dims)
    xb = _blocks(x, batch_dims)
    out = empty(xb.shape, x.dtype)
    _layer_norm_kernel(xb, _rows(scale), _rows(bias), float(epsilon), out)
    return out.reshape(x.shape)


def _param_to_x(p, x_shape, batch_dims):
    """Broadcast a `(batch..., C)` parameter against x (traceable)."""
    n = len(x_shape)
    dims = tuple(range(batch_dims)) + (n - 1,)
    return broadcast_in_dim_p.bind(p, shape=tuple(x_shape), broadcast_dimensions=dims)


def _ones_zeros(scale):
    ones = broadcast_in_dim_p.bind(np.asarray(1, _dtype(scale)), shape=tuple(_aval_shape(scale)),
                                   broadcast_dimensions=())
    zeros = broadcast_in_dim_p.bind(np.asarray(0, _dtype(scale)), shape=tuple(_aval_shape(scale)),
                                    broadcast_dimensions=())
    return ones, zeros


def _layer_norm_jvp(primals, tangents, *, epsilon, batch_dims):
    x, scale, bias = primals
    tx, tscale, tbias = tangents
    params = dict(epsilon=epsilon, batch_dims=batch_dims)
    out = layer_norm_p.bind(x, scale, bias, **params)
    shape = _aval_shape(x)
    ones, zeros = _ones_zeros(scale)
    terms = []
    if tx is not None:
        # d xhat = J tx with J symmetric: layer_norm_grad's dx with unit scale
        dxhat = layer_norm_grad_p.bind(x, ones, tx, **params)[0]
        terms.append(_mul(dxhat, _param_to_x(scale, shape, batch_dims)))
    if tscale is not None:
        xhat = layer_norm_p.bind(x, ones, zeros, **params)
        terms.append(_mul(xhat, _param_to_x(tscale, shape, batch_dims)))
    if tbias is not None:
        terms.append(_param_to_x(tbias, shape, batch_dims))
    if not terms:
        return out, None
    t = terms[0]
    for term in terms[1:]:
        t = _add(t, term)
    return out, t


def _layer_norm_vjp(ct, primals, out, needs, *, epsilon, batch_dims):
    del out  # unused
    x, scale, _ = primals
    if not any(needs):
        return [None, None, None]
    dx, dscale, dbias = layer_norm_grad_p.bind(x, scale, ct, epsilon=epsilon,
                                               batch_dims=batch_dims)
    return [d if n else None for d, n in zip((dx, dscale, dbias), needs)]


layer_norm_p.jvp = _layer_norm_jvp
layer_norm_p.vjp_joint = _layer_norm_vjp
layer_norm_p.batch = _front_batch(layer_norm_p, bump="batch_dims")


def layer_norm(x, scale, bias, *, epsilon=1e-5):
    """Layer normalisation over the last axis: `(x - mean) / sqrt(var + epsilon) * scale +
    bias`, with one kernel pass forward and one backward.

    Args:
      x: floating array with at least one axis.
      scale, bias: arrays of shape `x.shape[-1:]` and the dtype of `x`.
      epsilon: added to the variance.

    Returns:
      An array of the shape of `x`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.ops._nn import layer_norm
        >>> layer_norm(jnp.array([[1.0, 3.0]]), jnp.ones(2), jnp.zeros(2)).round(3)
        Array([[-1.,  1.]], dtype=float32)
    """
    return layer_norm_p.bind(x, scale, bias, epsilon=float(epsilon), batch_dims=0)


# --- layer_norm_grad: (dx, dscale, dbias) ----------------------------------------------
layer_norm_grad_p = Primitive("layer_norm_grad", multiple_results=True)


@layer_norm_grad_p.def_abstract_eval
def _layer_norm_grad_abstract_eval(x, scale, g, *, epsilon, batch_dims):
    _ln_check("layer_norm_grad", x, (scale,), batch_dims, ("scale",))
    if g.shape != x.shape or g.dtype != x.dtype:
        raise ValueError(f"layer_norm_grad: g must match x {x.str_short()}, got {g.str_short()}")
    return [ShapedArray(x.shape, x.dtype), scale, scale]


@layer_norm_grad_p.def_impl
def _layer_norm_grad_impl(x, scale, g, *, epsilon, batch_dims):
    _check(layer_norm_grad_p, x, scale, g, epsilon=epsilon, batch_dims=batch_dims)
    x, scale, g = np.asarray(x), np.asarray(scale), np.asarray(g)
    if not _use_kernel(x):
        return _layer_norm_grad_ref(x, scale, g, epsilon=epsilon, batch_dims=batch_dims)
    xb = _blocks(x, batch_dims)
    dx = empty(xb.shape, x.dtype)
    dscale = np.zeros((xb.shape[0], xb.shape[2]), np.float64)
    dbias = np.zeros_like(dscale)
    _layer_norm_grad_kernel(xb, _rows(scale), _blocks(g, batch_dims), float(epsilon), dx,
                            dscale, dbias)
    return [dx.reshape(x.shape), dscale.astype(x.dtype).reshape(scale.shape),
            dbias.astype(x.dtype).reshape(scale.shape)]


def _layer_norm_grad_composite(x, scale, g, *, epsilon, batch_dims):
    shape = _aval_shape(x)
    n = np.asarray(shape[-1], _dtype(x))
    mean = _div(_sum_last(x), n)
    centred = _sub(x, mean)
    var = _div(_sum_last(_mul(centred, centred)), n)
    rstd = rsqrt_p.bind(_add(var, np.asarray(epsilon, _dtype(x))))
    xhat = _mul(centred, rstd)
    gs = _mul(g, _param_to_x(scale, shape, batch_dims))
    a = _div(_sum_last(gs), n)
    c = _div(_sum_last(_mul(gs, xhat)), n)
    dx = _mul(rstd, _sub(_sub(gs, a), _mul(xhat, c)))
    axes = tuple(range(batch_dims, len(shape) - 1))
    dscale = reduce_sum_p.bind(_mul(g, xhat), axes=axes)
    dbias = reduce_sum_p.bind(g, axes=axes)
    return [dx, dscale, dbias]


_derived_rules(layer_norm_grad_p, _layer_norm_grad_composite, (True, True, True))
layer_norm_grad_p.batch = _front_batch(layer_norm_grad_p, nout=3, bump="batch_dims")


# ======================================================================== GELU
#
# `gelu(x)`: JAX's tanh approximation `x * 0.5 * (1 + tanh(sqrt(2/pi) * (c + 0.044715 c^3)))`
# with `c = clip(x, -10, 10)` (so `c^3` cannot overflow; past 10 the tanh is +-1 in float64
# already), as one primitive. Composed of ops, jit's fused forward wrote five residual
# arrays and a numpy tanh pass, and the backward was a 26-op kernel; here the forward is
# one pass (read x, write y) and the backward one pass (read x and g, write dx):
# `gelu_grad(x, g) = g * (cdf(c) + x * cdf'(c))`, `cdf(c) = 0.5 * (1 + t)`,
# `cdf'(c) = 0.5 * (1 - t) * (1 + t) * sqrt(2/pi) * (1 + 3 * 0.044715 c^2)`. That is the
# derivative of the composite formula (clip's derivative is 0 past 10, where `1 - t` is 0
# too), and like it gives NaN at x = +-inf (inf * 0), as JAX's gelu does.
#
# The float32 kernels compute in float32 with `tanh_approx` (nanofn/ops/_fastmath.py: within
# 6.02 ulp, and it vectorises, where numba's tanh calls the scalar C library). They are
# bound by arithmetic, not memory, on W7's shapes. The forward kernel needs no clip:
# `tanh_approx` is exactly +-1 from 9.1 on, so past |x| = 10 (and where `x^3` overflows)
# `t` is what the clipped formula gives. float64, and everything when kernels are off,
# takes the numpy reference: the same formulas in the input's dtype.

_GELU_CLIP = 10.0
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715
# float32 constants for the kernels (a Python float would make numba compute in float64)
_CLIP32, _S32 = np.float32(_GELU_CLIP), np.float32(_SQRT_2_OVER_PI)
_K32, _K3_32 = np.float32(_GELU_CUBIC), np.float32(3.0 * _GELU_CUBIC)
_HALF32, _ONE32 = np.float32(0.5), np.float32(1.0)


@kernel(parallel_arg=0)
def _gelu_kernel(x, out):
    for i in prange(x.size):
        v = x[i]
        t = tanh_approx(_S32 * (v + _K32 * (v * v * v)))
        out[i] = v * (_HALF32 * (_ONE32 + t))


@kernel(parallel_arg=0)
def _gelu_grad_kernel(x, g, dx):
    for i in prange(x.size):
        v = x[i]
        c = _CLIP32 if v > _CLIP32 else v  # NaN stays NaN
        c = -_CLIP32 if c < -_CLIP32 else c
        t = tanh_approx(_S32 * (c + _K32 * (c * c * c)))
        dcdf = _HALF32 * ((_ONE32 - t) * (_ONE32 + t)) * (_S32 * (_ONE32 + _K3_32 * (c * c)))
        dx[i] = g[i] * (_HALF32 * (_ONE32 + t) + v * dcdf)


def _gelu_tanh_ref(x):
    c = np.clip(x, -_GELU_CLIP, _GELU_CLIP)
    return c, np.tanh(_SQRT_2_OVER_PI * (c + _GELU_CUBIC * (c * c * c)))


def _gelu_ref(x):
    with np.errstate(all="ignore"):
        _, t = _gelu_tanh_ref(x)
        return x * (0.5 * (1.0 + t))


def _gelu_grad_ref(x, g):
    with np.errstate(all="ignore"):
        c, t = _gelu_tanh_ref(x)
        slope = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_CUBIC * (c * c))  # d inner / dc
        dcdf = 0.5 * ((1.0 - t) * (1.0 + t)) * slope
        return g * (0.5 * (1.0 + t) + x * dcdf)


def _run_elementwise(prim, kern, ref, *arrays):
    """The impl of an elementwise primitive: check, then the float32 kernel over the flat
    arrays, or the numpy reference."""
    _check(prim, *arrays)
    arrays = [np.asarray(a) for a in arrays]
    x = arrays[0]
    if not (enabled() and x.dtype == np.float32):
        return np.asarray(ref(*arrays), x.dtype)
    out = empty(x.shape, x.dtype)
    kern(*[np.ascontiguousarray(a).reshape(-1) for a in arrays], out.reshape(-1))
    return out


def _elementwise_abstract_eval(name, args):
    def rule(*avals):
        _need_float(name, args[0], avals[0])
        _same(name, avals, args)
        return ShapedArray(avals[0].shape, avals[0].dtype)
    return rule


# --- gelu -----------------------------------------------------------------------------
gelu_p = Primitive("gelu")
gelu_p.abstract_eval = _elementwise_abstract_eval("gelu", ("x",))
gelu_p.impl = lambda x: _run_elementwise(gelu_p, _gelu_kernel, _gelu_ref, x)
# the derivative is elementwise: one rule for both modes
gelu_p.jvp_terms = [lambda t, x, *, out: gelu_grad_p.bind(x, t)]
gelu_p.vjp = [lambda ct, x, *, out: gelu_grad_p.bind(x, ct)]
gelu_p.batch = lambda vals, dims: (gelu_p.bind(vals[0]), dims[0])
gelu_p.numpy_rules = True  # its rule only binds a primitive
gelu_p.vjp_reads = ((0,), False)  # the backward reads x, not the output


def gelu(x):
    """GELU with the tanh approximation, `x * 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715
    x^3)))` with `x` clipped to [-10, 10] inside the tanh, as one kernel primitive forward
    and one backward (`nanofn.nn.gelu(x, approximate=True)` calls it).

    Args:
      x: floating array of any shape.

    Returns:
      An array of the shape and dtype of `x`.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.ops._nn import gelu
        >>> gelu(jnp.array([-1.0, 0.0, 1.0, 20.0])).round(4)
        Array([-0.1588,  0.    ,  0.8412, 20.    ], dtype=float32)
    """
    return gelu_p.bind(x)


# --- gelu_grad: g * gelu'(x) ------------------------------------------------------------
gelu_grad_p = Primitive("gelu_grad")
gelu_grad_p.abstract_eval = _elementwise_abstract_eval("gelu_grad", ("x", "g"))
gelu_grad_p.impl = lambda x, g: _run_elementwise(gelu_grad_p, _gelu_grad_kernel,
                                                 _gelu_grad_ref, x, g)


def _gelu_grad_composite(x, g):
    def k(v):
        return np.asarray(v, _dtype(x))
    c = min_p.bind(max_p.bind(x, k(-_GELU_CLIP)), k(_GELU_CLIP))
    t = tanh_p.bind(_mul(k(_SQRT_2_OVER_PI),
                         _add(c, _mul(k(_GELU_CUBIC), _mul(_mul(c, c), c)))))
    cdf = _mul(k(0.5), _add(k(1.0), t))
    dcdf = _mul(_mul(k(0.5), _mul(_sub(k(1.0), t), _add(k(1.0), t))),
                _mul(k(_SQRT_2_OVER_PI), _add(k(1.0), _mul(k(3.0 * _GELU_CUBIC), _mul(c, c)))))
    return _mul(g, _add(cdf, _mul(x, dcdf)))


def _gelu_grad_batch(vals, dims):
    if dims[0] == dims[1]:  # both batched along the same axis: elementwise, nothing moves
        return gelu_grad_p.bind(*vals), dims[0]
    return _front_batch(gelu_grad_p)(vals, dims)


_derived_rules(gelu_grad_p, _gelu_grad_composite, (True, True))
gelu_grad_p.batch = _gelu_grad_batch


# ======================================================================== any axes


def over_axes(fn, x, axes, *, reduce=False, keepdims=False):
    """Apply a last-axis primitive wrapper `fn` over `axes` of `x` (non-negative, distinct):
    move them to the end, merge them into one axis, apply `fn`, and put the result back.

    With `reduce`, `fn` drops the last axis (like `logsumexp`) and the result has the
    shape of a numpy reduction over `axes` (`keepdims` keeps them with size 1); otherwise
    `fn` keeps the shape (like `softmax`) and so does the result.

    Example:
        >>> import nanofn.numpy as jnp
        >>> from nanofn.ops._nn import over_axes, softmax
        >>> over_axes(softmax, jnp.zeros((2, 3)), (0,)).tolist()
        [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]
    """
    from nanofn.ops._base import reshape, transpose
    shape = tuple(_aval_shape(x))
    axes = tuple(axes)
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    perm = kept + axes
    moved = transpose(x, perm) if perm != tuple(range(len(shape))) else x
    merged_shape = tuple(shape[i] for i in kept) + (math.prod(shape[i] for i in axes),)
    if len(axes) != 1:
        moved = reshape(moved, merged_shape)
    out = fn(moved)
    if reduce:
        if keepdims:
            out = reshape(out, tuple(1 if i in axes else d for i, d in enumerate(shape)))
        return out
    if len(axes) != 1:
        out = reshape(out, tuple(shape[i] for i in perm))
    if perm == tuple(range(len(shape))):
        return out
    return transpose(out, tuple(int(i) for i in np.argsort(perm)))
