"""jax.random's count samplers: `poisson`, `binomial`, `multinomial`; and `key_impl`.

Each is JAX's recipe, spending the key as JAX does, so the same key gives JAX's counts:

* `poisson` (rates in float32, as in JAX, whatever `jax_enable_x64` says): Knuth's
  product of uniforms for rates below 10 and Hormann's transformed rejection with
  squeeze (PTRS, 1993) for the others. Both run on the whole array with the caller's key;
  each is one `while_loop` whose round splits its key (Knuth: `key, sub = split(key)`,
  PTRS: `key, k0, k1 = split(key, 3)`) and draws uniforms of the full shape.
* `binomial`: the waiting-time (inversion) method, adding geometric gaps between
  successes, when `n * min(p, 1 - p) <= 10` (a round: `sub, key = split(key)`), and
  Hormann's BTRS rejection otherwise (a round: `key, k0, k1 = split(key, 3)`); draws for
  `p >= 1/2` count failures of `1 - p`.
* `multinomial`: a binomial per category, on the draws not yet placed, with the keys
  `split(key, k)`.

In the rejection loops an element takes the value of the last round that accepted it
(JAX's loops keep updating accepted elements until every element is done), so a value can
depend on the other elements of the same call: it is reproduced here by running the same
loop. The loops trace under `jit` and map under `vmap` (each key of a batch runs its own
rounds, as in JAX). Counts equal JAX's, except that float32 `log`/`lgamma` can differ
from XLA's in the last bit, which flips an acceptance test sitting on its boundary: rare,
but not for large Poisson rates, whose test weighs `lgamma(k + 1)` against terms of size
`lam log lam` (see docs/random.md for measured rates), and a flipped element can change
the number of rounds and so the others.
"""

from __future__ import annotations

import numpy as np

import nanofn.numpy as fnp
from nanofn import ops
from nanofn.numpy._dtypes import (
    _DEFAULT, _canonical_default, dtype_arg, dtype_of, promote_float,
)
from nanofn.random._distributions import _result_shape, _split, uniform
from nanofn.random._threefry import _check_key

__all__ = ["poisson", "binomial", "multinomial", "key_impl"]


def _out_dtype(name, dtype, kinds):
    if dtype is None:
        dtype = _DEFAULT["i" if "i" in kinds else "f"]
    dtype = dtype_arg(dtype)
    if dtype.kind not in kinds:
        raise ValueError(f"{name}: dtype must be of kind {'/'.join(kinds)}, got {dtype.name}")
    return dtype


def _jax_value(x):
    """A numpy argument as JAX takes it: float64 and int64 become the default dtypes
    (32-bit unless `jax_enable_x64`), so the arithmetic runs in JAX's dtype."""
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x, _canonical_default(x.dtype))
    return x


def _poisson_knuth(key, lam, shape, dtype):
    # Count uniforms until the sum of their logs falls to -lam (k counts one past it).
    f32 = np.float32

    def cond(carry):
        return fnp.any(carry[2] > -lam)

    def body(carry):
        key, k, log_prod = carry
        key, sub = _split(key)
        k = fnp.where(log_prod > -lam, k + fnp.asarray(1, dtype), k)
        u = uniform(sub, shape, f32)
        return key, k, log_prod + fnp.log(u)

    init = (key, fnp.zeros(shape, dtype), fnp.zeros(shape, f32))
    k = ops.while_loop(cond, body, init)[1]
    return (k - fnp.asarray(1, dtype)).astype(dtype)


def _poisson_rejection(key, lam, shape, dtype):
    f32 = np.float32
    log_lam = fnp.log(lam)
    b = 0.931 + 2.53 * fnp.sqrt(lam)
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2)

    def cond(carry):
        return ~fnp.all(carry[2])

    def body(carry):
        key, k_out, accepted = carry
        key, k0, k1 = _split(key, 3)
        u = uniform(k0, shape, f32) - 0.5
        v = uniform(k1, shape, f32)
        us = 0.5 - fnp.abs(u)
        k = fnp.floor((2 * a / us + b) * u + lam + 0.43)
        s = fnp.log(v * inv_alpha / (a / (us * us) + b))
        t = -lam + k * log_lam - ops.lgamma(k + 1)
        accept1 = (us >= 0.07) & (v <= v_r)
        reject = (k < 0) | ((us < 0.013) & (v > us))
        accept = accept1 | (~reject & (s <= t))
        # as in JAX, a later accepting round overwrites an earlier one
        return key, fnp.where(accept, k, k_out), accepted | accept

    init = (key, fnp.full(shape, -1.0, f32), fnp.zeros(shape, bool))
    return ops.while_loop(cond, body, init)[1].astype(dtype)


def poisson(key, lam, shape=None, dtype=None):
    """Poisson counts with rate `lam` (mean and variance `lam`); JAX's draws for the key.

    Args:
      key: a PRNG key.
      lam: the rate, a non-negative float or array broadcastable to `shape`.
      shape: the result's shape; default the shape of `lam`.
      dtype: an integer dtype (default int32, int64 under x64).

    Returns:
      An integer array of `shape`: -1 where `lam` is negative, NaN or infinite (JAX
      returns -1 for the first two and does not return for an infinite rate).

    Example:
        >>> import nanofn
        >>> x = nanofn.random.poisson(nanofn.random.key(0), 3.0, (1000,))
        >>> x.dtype.kind, bool(2.5 < x.mean() < 3.5)
        ('i', True)
    """
    key = _check_key("poisson", key)
    dtype = _out_dtype("poisson", dtype, "iu")
    shape = _result_shape("poisson", shape, lam=lam)
    # JAX computes in float32 whatever jax_enable_x64 says (it converts lam to float32)
    lam = fnp.broadcast_to(fnp.asarray(lam, np.float32), shape)
    use_knuth = fnp.isnan(lam) | (lam < 10)
    infinite = fnp.isinf(lam)  # JAX's rejection loop never ends for these
    lam_knuth = fnp.where(use_knuth, lam, 0.0)
    lam_rejection = fnp.where(use_knuth | infinite, 1e5, lam)
    out = fnp.where(use_knuth, _poisson_knuth(key, lam_knuth, shape, dtype),
                    _poisson_rejection(key, lam_rejection, shape, dtype))
    out = fnp.where(lam == 0, fnp.zeros((), dtype), out)
    return fnp.where(infinite, np.array(-1).astype(dtype), out).astype(dtype)  # (wraps)


def _binomial_inversion(key, count, prob, shape):
    # Successes are separated by geometric gaps: count gaps until they pass `count`.
    pdt = dtype_of(prob)
    log1mp = fnp.log1p(-prob)

    def cond(carry):
        return fnp.any(carry[2] <= count)

    def body(carry):
        key, num_geom, geom_sum = carry
        sub, key = _split(key)
        num_geom = fnp.where(geom_sum <= count, num_geom + 1, num_geom)
        u = uniform(sub, shape, pdt)
        return key, num_geom, geom_sum + fnp.ceil(fnp.log(u) / log1mp)

    init = (key, fnp.zeros(shape, pdt), fnp.zeros(shape, pdt))
    return ops.while_loop(cond, body, init)[1] - 1


def _stirling_tail(k):
    """JAX's `_stirling_approx_tail`: log k! minus Stirling's formula, from a table for
    k <= 9; above, JAX evaluates its series at k clamped to 9, and so does this."""
    table = fnp.asarray([0.0810614667953272, 0.0413406959554092, 0.0276779256849983,
                         0.02079067210376509, 0.0166446911898211, 0.0138761288230707,
                         0.0118967099458917, 0.0104112652619720, 0.00925546218271273,
                         0.00833056343336287], dtype_of(k))
    small = k <= 9
    k = fnp.clip(k, 0.0, 9.0)
    kp1sq = (k + 1) * (k + 1)
    approx = (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / kp1sq) / kp1sq) / (k + 1)
    idx = fnp.floor(k).astype(np.int32)
    return fnp.where(small, table[idx], approx)


def _binomial_btrs(key, count, prob, shape):
    # Hormann's transformed rejection with squeeze (BTRS), JAX's formulas in their order
    pdt = dtype_of(prob)
    stddev = fnp.sqrt(count * prob * (1 - prob))
    b = 1.15 + 2.53 * stddev
    a = -0.0873 + 0.0248 * b + 0.01 * prob
    c = count * prob + 0.5
    v_r = 0.92 - 4.2 / b
    r = prob / (1 - prob)
    alpha = (2.83 + 5.1 / b) * stddev
    m = fnp.floor((count + 1) * prob)

    def cond(carry):
        return ~fnp.all(carry[2])

    def body(carry):
        key, k_out, accepted = carry
        key, k0, k1 = _split(key, 3)
        u = uniform(k0, shape, pdt)
        v = uniform(k1, shape, pdt)
        u = u - 0.5
        us = 0.5 - fnp.abs(u)
        accept1 = (us >= 0.07) & (v <= v_r)
        k = fnp.floor((2 * a / us + b) * u + c)
        reject = (k < 0) | (k > count)
        v = fnp.log(v * alpha / (a / (us * us) + b))
        ub = ((m + 0.5) * fnp.log((m + 1) / (r * (count - m + 1)))
              + (count + 1) * fnp.log((count - m + 1) / (count - k + 1))
              + (k + 0.5) * fnp.log(r * (count - k + 1) / (k + 1))
              + _stirling_tail(m) + _stirling_tail(count - m)
              - _stirling_tail(k) - _stirling_tail(count - k))
        accept = accept1 | (~reject & (v <= ub))
        # as in JAX, a later accepting round overwrites an earlier one
        return key, fnp.where(accept, k, k_out), accepted | accept

    init = (key, fnp.full(shape, -1.0, pdt), fnp.zeros(shape, bool))
    return ops.while_loop(cond, body, init)[1]


def _binomial(key, count, prob, shape, dtype):
    (prob,) = promote_float(_jax_value(prob))
    pdt = dtype_of(prob)
    count = fnp.broadcast_to(fnp.asarray(count, pdt), shape)
    prob = fnp.broadcast_to(prob, shape)
    p_lt_half = prob < 0.5
    q = fnp.where(p_lt_half, prob, 1.0 - prob)
    count_nan_or_neg = fnp.isnan(count) | (count < 0.0)
    count_inf = fnp.isinf(count)
    q_is_nan = fnp.isnan(q)
    q_l_0 = q < 0.0
    q = fnp.where(q_is_nan | q_l_0, fnp.asarray(0.01, pdt), q)
    use_inversion = count_nan_or_neg | (count * q <= 10.0)
    count = fnp.floor(count)
    count_inv = fnp.where(use_inversion, count, 0.0)
    # JAX's BTRS loop never ends where count * q is NaN (n = inf with q = 0); those
    # elements give inf below whatever the loop says, so they take harmless parameters
    stuck = fnp.isnan(count * q)
    count_btrs = fnp.where(use_inversion | stuck, 1e4, count)
    q_btrs = fnp.where(use_inversion | stuck, 0.5, q)
    samples = fnp.where(use_inversion,
                        _binomial_inversion(key, count_inv, q, shape).astype(dtype),
                        _binomial_btrs(key, count_btrs, q_btrs, shape).astype(dtype))
    invalid = q_l_0 | q_is_nan | count_nan_or_neg
    samples = fnp.where(invalid, fnp.asarray(np.nan, dtype), samples)
    samples = fnp.where(count_inf & ~invalid, fnp.asarray(np.inf, dtype), samples)
    finite_count = fnp.where(count_inf, 0.0, count).astype(dtype)  # (no inf - inf)
    return fnp.where(p_lt_half | count_nan_or_neg | q_is_nan | count_inf, samples,
                     finite_count - samples)


def binomial(key, n, p, shape=None, dtype=None):
    """Binomial counts: successes in `n` trials of probability `p` (returned as floats,
    as in JAX); JAX's draws for the key.

    Args:
      key: a PRNG key.
      n: the number of trials, a non-negative number or array (floored).
      p: the success probability in [0, 1], a number or array; the arithmetic is in its
        float dtype (the default float for Python numbers and integers).
      shape: the result's shape; default the broadcast shape of `n` and `p`.
      dtype: a float dtype (default float32, float64 under x64).

    Returns:
      An array of `shape` and `dtype`: NaN where `n` is negative or NaN or `p` is outside
      [0, 1] or NaN, inf where `n` is infinite.

    Example:
        >>> import nanofn
        >>> x = nanofn.random.binomial(nanofn.random.key(0), 20, 0.25, (1000,))
        >>> x.dtype.kind, bool(4.5 < x.mean() < 5.5), bool(x.max() <= 20)
        ('f', True, True)
    """
    key = _check_key("binomial", key)
    dtype = _out_dtype("binomial", dtype, "f")
    shape = _result_shape("binomial", shape, n=n, p=p)
    return _binomial(key, n, p, shape, dtype)


def multinomial(key, n, p, *, shape=None, dtype=None, unroll=1):
    """Multinomial counts: `n` draws spread over the categories of probabilities `p` (last
    axis), as a run of binomials on the remaining draws, as in JAX (and JAX's draws).

    Category `i` takes `binomial(keys[i], remaining, p_i / (p_i + ... + p_last))` for
    `keys = split(key, k)`; so the last category takes what is left when the
    probabilities sum to 1.

    Args:
      key: a PRNG key.
      n: the number of draws, a number or array broadcastable to `shape[:-1]`.
      p: the category probabilities along the last axis (summing to 1).
      shape: the result's shape, ending in the number of categories; default the
        broadcast shape of `n[..., None]` and `p`.
      dtype: a float dtype (default float32, float64 under x64).
      unroll: accepted for JAX compatibility; ignored.

    Example:
        >>> import nanofn
        >>> p = nanofn.numpy.array([0.2, 0.3, 0.5])
        >>> c = nanofn.random.multinomial(nanofn.random.key(0), 10, p)
        >>> c.shape, float(c.sum())
        ((3,), 10.0)
    """
    key = _check_key("multinomial", key)
    del unroll
    dtype = _out_dtype("multinomial", dtype, "f")
    if np.ndim(p) == 0:
        raise ValueError("multinomial: p must have at least one axis (the categories)")
    n, p = promote_float(_jax_value(n), _jax_value(p))  # as JAX's promote_dtypes_inexact
    if shape is None:
        shape = tuple(np.broadcast_shapes(np.shape(n) + (1,), p.shape))
    shape = tuple(shape)
    if not shape or shape[-1] != p.shape[-1]:
        raise ValueError(f"multinomial: shape {shape} must end in the number of categories "
                         f"{p.shape[-1]} (the last axis of p)")
    batch, k = shape[:-1], shape[-1]
    p = fnp.moveaxis(fnp.broadcast_to(p, shape), -1, 0)
    remainder = fnp.broadcast_to(n, batch)
    # the probability still to place after each category, summed from the last one
    left = fnp.flip(fnp.cumsum(fnp.flip(p, 0), axis=0), 0)
    ratios = p / fnp.where(left == 0, 1, left)
    keys = _split(key, k)
    counts = []
    for i in range(k):
        c = _binomial(keys[i], remainder, fnp.clip(ratios[i], 0, 1), batch,
                      dtype_of(remainder))
        remainder = remainder - c
        counts.append(c)
    return fnp.stack(counts, axis=-1).astype(dtype)


def key_impl(keys):
    """The name of the PRNG implementation of `keys`: always "threefry2x32" here.

    Example:
        >>> import nanofn
        >>> nanofn.random.key_impl(nanofn.random.key(0))
        'threefry2x32'
    """
    from nanofn._keys import PRNGKeyArray
    if isinstance(keys, PRNGKeyArray):
        return "threefry2x32"
    # Raw keys: uint32 words with a last axis of size 2 (anything else is a TypeError, as
    # JAX's "invalid PRNG key data").
    if np.shape(keys)[-1:] != (2,) or np.dtype(getattr(keys, "dtype", None)) != np.uint32:
        raise TypeError(f"key_impl: expected PRNG keys (typed, or uint32 words with a last "
                        f"axis of size 2), got shape {np.shape(keys)} and dtype "
                        f"{getattr(keys, 'dtype', type(keys).__name__)}")
    return "threefry2x32"
