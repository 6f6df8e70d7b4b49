"""float32 kernels of the attention softmax (`attention_softmax` and its gradient in
`nanofn/ops/_nn.py`) written so that LLVM vectorises every loop of a row.

This module imports numba (through `nanofn._bitcast`), so `_nn` imports it only when it
first runs a float32 kernel, never at `import nanofn`.

What made the plain loops slow, and what replaces it:

* **The row maximum.** A float `max` reduction does not vectorise unless fast-math flags
  let LLVM ignore NaNs. Comparing float32 values as integers does: `_order_key` maps a
  float's bits to an int32 with the same order (a non-negative float's bits already
  compare as integers; a negative one's magnitude bits are flipped), and an int32 max
  reduction vectorises. A NaN with a clear sign bit orders above +inf (so the maximum is
  NaN, and the row's results NaN, as numpy gives); one with its sign bit set orders below
  -inf, and its `exp` makes the row NaN all the same.
* **`exp`.** numba from PyPI has no vector math library, and a scalar `math.exp` call per
  element keeps the loop scalar. `exp32` is the fused elementwise kernels' float32 `exp`
  (`nanofn/_fusion.py`: range reduction with a two-part ln 2, a degree-7 polynomial, and
  `2**n` made from its bits; within 1.2 ulp), written as a function.
* **The sums** (a row's total, and `sum(g * s)` in the gradient) carry LLVM's
  reassociation flag, so they vectorise into partial float64 sums.

`max(x * scale) = max(x) * scale` for a positive scale (rounding is monotonic), so the
maximum is taken of the raw logits (their minimum for a negative scale).
"""

from __future__ import annotations

import numpy as np

from nanofn._bitcast import bits_of_float32, float32_from_bits, fma
from nanofn._fusion import _EXP_CLAMP, _EXP_TAYLOR, _LN2_HI, _LN2_LO
from nanofn._kernels import kernel

__all__ = ["attention_softmax_grad_kernel", "attention_softmax_kernel", "ce_rows", "exp32",
           "log_softmax_grad_rows", "log_softmax_rows", "logsumexp_rows", "softmax_grad_rows",
           "softmax_rows"]

_F = np.float32
prange = range  # numba's prange in the parallel builds (see `nanofn._kernels.kernel`)
_LO, _HI = _F(_EXP_CLAMP[0]), _F(_EXP_CLAMP[1])
_INV_LN2, _HALF, _L2_HI, _L2_LO = _F(1 / np.log(2)), _F(0.5), _F(_LN2_HI), _F(_LN2_LO)
_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7 = (_F(c) for c in _EXP_TAYLOR)
_ZERO = _F(0)
_FLIP = np.int32(0x7FFFFFFF)
_LOWEST_KEY = np.int32(-(2**31))
_HIGHEST_KEY = np.int32(2**31 - 1)
_SUM = dict(fastmath={"reassoc"})


@kernel(inline="always")
def exp32(x):
    """float32 `exp(x)`, within 1.2 ulp (`_exp32` of nanofn/_fusion.py as a function)."""
    x = _HI if x > _HI else (_LO if x < _LO else x)
    n = np.floor(x * _INV_LN2 + _HALF)
    n = _ZERO if n != n else n  # NaN: any n (the result is NaN)
    r = (x - n * _L2_HI) - n * _L2_LO
    i = np.int32(n)
    h = np.int32(i >> 1)
    p = fma(fma(fma(fma(fma(fma(fma(_C7, r, _C6), r, _C5), r, _C4), r, _C3), r, _C2), r, _C1),
            r, _C0)  # Horner's steps as fused multiply-adds
    return (p * float32_from_bits(np.int32((h + 127) << 23))
            * float32_from_bits(np.int32((i - h + 127) << 23)))


@kernel(inline="always")
def _order_key(v):
    b = bits_of_float32(v)
    return np.int32(b ^ ((b >> 31) & _FLIP))


@kernel(inline="always")
def _from_order_key(k):
    return float32_from_bits(np.int32(k ^ ((k >> 31) & _FLIP)))


@kernel
def _row_max(x, r, i, n):
    m = _LOWEST_KEY
    for j in range(n):
        k = _order_key(x[r, i, j])
        m = k if k > m else m
    return _from_order_key(m)


@kernel
def _row_min(x, r, i, n):
    m = _HIGHEST_KEY
    for j in range(n):
        k = _order_key(x[r, i, j])
        m = k if k < m else m
    return _from_order_key(m)


@kernel(**_SUM)
def _row_sum(e, r, i, n):
    s = 0.0
    for j in range(n):
        s += e[r, i, j]
    return s


@kernel(**_SUM)
def _row_dot(g, p, r, i, n):
    s = 0.0
    for j in range(n):
        s += g[r, i, j] * p[r, i, j]
    return s


@kernel(parallel_arg=0)
def attention_softmax_kernel(x, scale, causal, out):
    """`out[r, i] = softmax(x[r, i, :n] * scale)`, zeros past `n` (`n = i + 1` with
    `causal`); x and out are float32 `(rows, T, S)`."""
    rows, t, s = x.shape
    sc = _F(scale)
    for ri in prange(rows * t):  # the rows (r, i), each on its own
        r, i = ri // t, ri % t
        n = min(i + 1, s) if causal else s
        m = (_row_max(x, r, i, n) if sc >= _ZERO else _row_min(x, r, i, n)) * sc
        if m == -np.inf:  # all masked or -inf; a row holding +inf is NaN throughout, as JAX's
            m = _ZERO
        for j in range(n):
            out[r, i, j] = exp32(x[r, i, j] * sc - m)
        inv = _F(1.0 / _row_sum(out, r, i, n))
        for j in range(n):
            out[r, i, j] = out[r, i, j] * inv
        for j in range(n, s):
            out[r, i, j] = _ZERO


@kernel(parallel_arg=0)
def attention_softmax_grad_kernel(g, p, scale, causal, dx):
    """`dx = scale * p * (g - sum(g * p))` over each row's seen keys, zeros past them."""
    rows, t, s = g.shape
    sc = _F(scale)
    for ri in prange(rows * t):  # the rows (r, i), each on its own
        r, i = ri // t, ri % t
        n = min(i + 1, s) if causal else s
        dot = _F(_row_dot(g, p, r, i, n))
        for j in range(n):
            dx[r, i, j] = sc * p[r, i, j] * (g[r, i, j] - dot)
        for j in range(n, s):
            dx[r, i, j] = _ZERO


# ------------------------------------------------------------------------ row-wise family
# The row-wise primitives of `_nn` (softmax, log_softmax, logsumexp, their gradients and
# softmax cross-entropy) on C-contiguous float32 `(rows, cols)` arrays. The helpers above
# index `(r, i, j)`, so a 2-d array goes in as its 3-d view `x[None]`.


def softmax_rows(x, out):
    attention_softmax_kernel(x[None], 1.0, False, out[None])


def softmax_grad_rows(g, s, dx):
    attention_softmax_grad_kernel(g[None], s[None], 1.0, False, dx[None])


@kernel
def _shift(x, i, n):
    m = _row_max(x, 0, i, n)
    return m if np.isfinite(m) else _ZERO


@kernel
def _softmax_shift(x, i, n):
    """`_shift` for log_softmax: keeps +inf (the row is NaN throughout, as JAX's)."""
    m = _row_max(x, 0, i, n)
    return _ZERO if m == -np.inf else m


@kernel
def _exp_shifted(x, i, n, shift, out, o):
    """`out[0, o] = exp(x[0, i] - shift)`; returns the row's total (float64)."""
    for j in range(n):
        out[0, o, j] = exp32(x[0, i, j] - shift)
    return _row_sum(out, 0, o, n)


@kernel(parallel_arg=0)
def _log_softmax_kernel(x, out):
    _, rows, cols = x.shape
    for i in prange(rows):
        shift = _softmax_shift(x, i, cols)
        logz = _F(np.log(_exp_shifted(x, i, cols, shift, out, i)))
        for j in range(cols):
            out[0, i, j] = (x[0, i, j] - shift) - logz


def log_softmax_rows(x, out):
    _log_softmax_kernel(x[None], out[None])


@kernel
def _logsumexp_kernel(x, scratch, out):
    _, rows, cols = x.shape
    for i in range(rows):
        shift = _shift(x, i, cols)
        out[i] = shift + np.log(_exp_shifted(x, i, cols, shift, scratch, 0))


def logsumexp_rows(x, out):
    _logsumexp_kernel(x[None], np.empty((1, 1, x.shape[1]), x.dtype), out)


@kernel(parallel_arg=0)
def _log_softmax_grad_kernel(g, out, dx):
    _, rows, cols = g.shape
    for i in prange(rows):
        total = _F(_row_sum(g, 0, i, cols))
        for j in range(cols):
            dx[0, i, j] = g[0, i, j] - exp32(out[0, i, j]) * total


def log_softmax_grad_rows(g, out, dx):
    _log_softmax_grad_kernel(g[None], out[None], dx[None])


@kernel(parallel_arg=0)
def _ce_kernel(x, labels, loss, probs):
    _, rows, cols = x.shape
    for i in prange(rows):
        shift = _shift(x, i, cols)
        total = _exp_shifted(x, i, cols, shift, probs, i)
        inv = _F(1.0 / total)
        for j in range(cols):
            probs[0, i, j] = probs[0, i, j] * inv
        k = labels[i]
        if 0 <= k < cols:
            loss[i] = np.log(total) - (x[0, i, k] - shift)
        else:  # an out-of-range label (never read): NaN, as optax gives under jit
            loss[i] = np.nan


def ce_rows(x, labels, loss, probs):
    _ce_kernel(x[None], labels, loss, probs[None])
