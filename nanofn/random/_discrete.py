"""jax.random's count samplers: `poisson`, `binomial`, `multinomial`; and `key_impl`.

The samplers are rejection or waiting-time methods run as one `while_loop` over the whole
array: every round draws fresh uniforms for all elements from `fold_in(key, round)` and
only elements still undecided take the new values, so the loop traces under `jit`, maps
under `vmap` and stops when the last element is decided.

* `poisson`: Knuth's product of uniforms for rates below 10 (about `lam` rounds), and
  Hormann's transformed rejection with squeeze (PTRS, 1993) for larger rates (a few
  rounds at most), as in JAX.
* `binomial`: the waiting-time (inversion) method, adding geometric gaps between
  successes, when `n * min(p, 1 - p) < 10`, and Hormann's BTRS rejection otherwise; draws
  for `p > 1/2` count failures of `1 - p`.

JAX uses the same algorithms but spends its key differently, so the numbers for a given
key are not JAX's; their distribution is (the tests compare it with scipy.stats).
"""

from __future__ import annotations

import numpy as np

import nanofn.numpy as fnp
from nanofn import ops
from nanofn.numpy._dtypes import _DEFAULT, dtype_arg
from nanofn.random._distributions import _result_shape, uniform
from nanofn.random._threefry import fold_in, split

__all__ = ["poisson", "binomial", "multinomial", "key_impl"]


def _out_dtype(name, dtype, kinds):
    if dtype is None:
        dtype = _DEFAULT["i" if "i" in kinds else "f"]
    dtype = dtype_arg(dtype)
    if dtype.kind not in kinds:
        raise ValueError(f"{name}: dtype must be of kind {'/'.join(kinds)}, got {dtype.name}")
    return dtype


def _rounds(key, shape, init, step, dtype):
    """Run `step(u1, u2, state) -> (decided, value, state)` until every element is
    decided; `u1`, `u2` are fresh uniforms of `shape` and float `dtype` each round."""
    def cond(carry):
        return ~fnp.all(carry[1])

    def body(carry):
        i, done, value, state = carry
        k1, k2 = split(fold_in(key, i))
        u1 = uniform(k1, shape, dtype)
        u2 = uniform(k2, shape, dtype)
        now, new_value, new_state = step(u1, u2, state)
        keep = done
        value = fnp.where(keep, value, new_value)
        state = tuple(fnp.where(keep, s, t) for s, t in zip(state, new_state))
        return i + 1, done | now, value, state

    carry = (fnp.asarray(0, fnp.uint32), fnp.zeros(shape, bool), fnp.zeros(shape, dtype), init)
    return ops.while_loop(cond, body, carry)[2]


def _poisson_knuth(key, lam, shape):
    # Count uniforms until their product falls below exp(-lam): log-sum form.
    limit = -lam
    zeros = fnp.zeros(shape, lam.dtype)

    def step(u, _, state):
        k, logprod = state
        logprod = logprod + fnp.log(u)
        stop = logprod < limit
        return stop, k, (k + 1.0, logprod)

    return _rounds(key, shape, (zeros, zeros), step, lam.dtype)


def _poisson_ptrs(key, lam, shape):
    slam, loglam = fnp.sqrt(lam), fnp.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)

    def step(u, v, state):
        u = u - 0.5
        us = 0.5 - fnp.abs(u)
        k = fnp.floor((2.0 * a / us + b) * u + lam + 0.43)
        quick = (us >= 0.07) & (v <= vr)
        s = fnp.log(v * inv_alpha / (a / (us * us) + b))
        t = -lam + k * loglam - ops.lgamma(k + 1.0)
        ok = quick | ((k >= 0) & ~((us < 0.013) & (v > us)) & (s <= t))
        return ok, k, state

    return _rounds(key, shape, (), step, lam.dtype)


def poisson(key, lam, shape=None, dtype=None):
    """Poisson counts with rate `lam` (mean and variance `lam`).

    Args:
      key: a PRNG key.
      lam: the rate, a non-negative float or array broadcastable to `shape`.
      shape: the result's shape; default the shape of `lam`.
      dtype: an integer dtype (default int32, int64 under x64).

    Example:
        >>> import nanofn
        >>> x = nanofn.random.poisson(nanofn.random.key(0), 3.0, (1000,))
        >>> x.dtype.kind, bool(2.5 < x.mean() < 3.5)
        ('i', True)
    """
    dtype = _out_dtype("poisson", dtype, "iu")
    shape = _result_shape("poisson", shape, lam=lam)
    # JAX computes in float32 whatever jax_enable_x64 says (it converts lam to float32)
    lam = fnp.broadcast_to(fnp.asarray(lam, np.float32), shape)
    small = lam < 10.0
    k1, k2 = split(key)
    knuth = _poisson_knuth(k1, fnp.where(small, lam, 0.0), shape)
    ptrs = _poisson_ptrs(k2, fnp.where(small, 1e5, lam), shape)
    out = fnp.where(small, knuth, ptrs)
    out = fnp.where(lam == 0, 0.0, out)
    return fnp.where(fnp.isfinite(lam) & (lam >= 0), out, -1.0).astype(dtype)


def _binomial_inversion(key, n, p, shape):
    # Successes are separated by geometric gaps: count gaps until they pass n.
    log1mp = fnp.log1p(-p)
    zeros = fnp.zeros(shape, p.dtype)

    def step(u, _, state):
        total, count = state
        gap = fnp.ceil(fnp.log(u) / log1mp)
        total = total + gap
        stop = total > n
        return stop, count, (total, count + 1.0)

    return _rounds(key, shape, (zeros, zeros), step, p.dtype)


def _binomial_btrs(key, n, p, shape):
    q = 1.0 - p
    spq = fnp.sqrt(n * p * q)
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    vr = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * spq
    lpq = fnp.log(p / q)
    m = fnp.floor((n + 1.0) * p)
    h = ops.lgamma(m + 1.0) + ops.lgamma(n - m + 1.0)

    def step(u, v, state):
        u = u - 0.5
        us = 0.5 - fnp.abs(u)
        k = fnp.floor((2.0 * a / us + b) * u + c)
        quick = (us >= 0.07) & (v <= vr)
        inside = (k >= 0) & (k <= n)
        kk = fnp.clip(k, 0.0, n)
        lv = fnp.log(v * alpha / (a / (us * us) + b))
        bound = h - ops.lgamma(kk + 1.0) - ops.lgamma(n - kk + 1.0) + (kk - m) * lpq
        return quick | (inside & (lv <= bound)), k, state

    return _rounds(key, shape, (), step, p.dtype)


def binomial(key, n, p, shape=None, dtype=None):
    """Binomial counts: successes in `n` trials of probability `p` (returned as floats,
    as in JAX).

    Args:
      key: a PRNG key.
      n: the number of trials, a non-negative number or array.
      p: the success probability in [0, 1], a number or array.
      shape: the result's shape; default the broadcast shape of `n` and `p`.
      dtype: a float dtype (default float32, float64 under x64).

    Example:
        >>> import nanofn
        >>> x = nanofn.random.binomial(nanofn.random.key(0), 20, 0.25, (1000,))
        >>> x.dtype.kind, bool(4.5 < x.mean() < 5.5), bool(x.max() <= 20)
        ('f', True, True)
    """
    dtype = _out_dtype("binomial", dtype, "f")
    shape = _result_shape("binomial", shape, n=n, p=p)
    work = _DEFAULT["f"]
    n = fnp.broadcast_to(fnp.floor(fnp.asarray(n, work)), shape)
    p = fnp.broadcast_to(fnp.asarray(p, work), shape)
    flip = p > 0.5
    q = fnp.where(flip, 1.0 - p, p)
    small = n * q < 10.0
    k1, k2 = split(key)
    inv = _binomial_inversion(k1, fnp.where(small, n, 0.0),
                              fnp.where(small & (q > 0), q, 0.5), shape)
    rej = _binomial_btrs(k2, fnp.where(small, 1e4, n), fnp.where(small, 0.5, q), shape)
    out = fnp.where(small, inv, rej)
    out = fnp.where(q == 0, 0.0, out)
    out = fnp.where(flip, n - out, out)
    bad = ~((n >= 0) & (p >= 0) & (p <= 1))
    return fnp.where(bad, fnp.nan, out).astype(dtype)


def multinomial(key, n, p, *, shape=None, dtype=None, unroll=1):
    """Multinomial counts: `n` draws spread over the categories of probabilities `p` (last
    axis), as a run of binomials on the remaining draws, as in JAX.

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
    del unroll
    dtype = _out_dtype("multinomial", dtype, "f")
    if np.ndim(p) == 0:
        raise ValueError("multinomial: p must have at least one axis (the categories)")
    work = _DEFAULT["f"]
    p = fnp.asarray(p, work)
    n = fnp.asarray(n, work)
    if shape is None:
        shape = tuple(np.broadcast_shapes(np.shape(n) + (1,), p.shape))
    shape = tuple(shape)
    if not shape or shape[-1] != p.shape[-1]:
        raise ValueError(f"multinomial: shape {shape} must end in the number of categories "
                         f"{p.shape[-1]} (the last axis of p)")
    batch = shape[:-1]
    p = fnp.broadcast_to(p, shape)
    remaining = fnp.broadcast_to(n, batch)
    left = fnp.ones(batch, work)
    counts = []
    keys = split(key, shape[-1])
    for i in range(shape[-1] - 1):
        pi = fnp.clip(p[..., i] / fnp.where(left > 0, left, 1.0), 0.0, 1.0)
        c = binomial(keys[i], remaining, pi, batch, work)
        counts.append(c)
        remaining = remaining - c
        left = left - p[..., i]
    counts.append(remaining)
    return fnp.stack(counts, axis=-1).astype(dtype)


def key_impl(keys):
    """The name of the PRNG implementation of `keys`: always "threefry2x32" here.

    Example:
        >>> import nanofn
        >>> nanofn.random.key_impl(nanofn.random.key(0))
        'threefry2x32'
    """
    if np.shape(keys)[-1:] != (2,):
        raise ValueError(f"key_impl: keys must have a last axis of size 2, got shape "
                         f"{np.shape(keys)}")
    return "threefry2x32"
