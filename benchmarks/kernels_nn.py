"""Softmax cross-entropy, layer-norm and GELU kernels against their numpy references.

    python -m benchmarks.kernels_nn [--reps N]

Prints median microseconds (min-max) per call, forward + backward, for W1's loss
(softmax cross-entropy, 256 x 10), a 256 x 512 layer norm and a 256 x 512 log-softmax,
and W7's shapes: its loss (2048 x 256), its causal attention softmax (16 x 4 x 128 x 128),
its layer norm (2048 rows of 128, forward and backward apart) and its GELU
(16 x 128 x 512):

* `impl`: the primitives' impls called on numpy arrays, kernel vs numpy reference (the
  numbers a jit plan sees);
* `eager`: `nanofn.value_and_grad` of the summed loss, kernels on, kernels off, and the
  composite formula the kernels replaced (what the same step cost before);
* `jit`: the same under `jit` (for GELU: its VJP, the primitive against the composite
  that the fuser compiles).
Ratios are taken within one run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import nanofn
import nanofn.numpy as jnp
from nanofn import lax, warmup
from nanofn.ops import _nn


def _median(fn, reps):
    try:
        fn()
        fn()
        warmup.wait()  # jit: the compiled plan, not the numpy path it runs meanwhile
        fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    except Exception as err:  # noqa: BLE001 - report the failure, go on with the table
        print(f"    (failed: {type(err).__name__}: {err})")
        return np.nan, np.nan, np.nan
    t = np.array(times) * 1e6
    return np.median(t), t.min(), t.max()


def _row(name, results):
    base = results[0][1][0]
    cells = "  ".join(f"{label} {m:8.1f} ({lo:.0f}-{hi:.0f}) x{m / base:4.2f}"
                      for label, (m, lo, hi) in results)
    print(f"{name:<28} {cells}")


def _ce_composite(x, labels):
    m = lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True))
    lse = jnp.log(jnp.sum(jnp.exp(x - m), axis=-1)) + m[:, 0]
    picked = jnp.sum(x * nanofn.nn.one_hot(labels, x.shape[-1], dtype=x.dtype), axis=-1)
    return lse - picked


def _ln_composite(x, scale, bias, eps=1e-5):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * lax.rsqrt(var + eps) * scale + bias


def _gelu_composite(x):
    xc = jnp.clip(x, -10.0, 10.0)
    return x * (0.5 * (1.0 + jnp.tanh(0.7978845608028654 * (xc + 0.044715 * (xc * xc * xc)))))


def _w7_rows(reps):
    """W7's layer norm and GELU: kernel vs numpy reference, and GELU's jitted VJP."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 128, 128)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    scale, bias = np.ones(128, np.float32), np.zeros(128, np.float32)
    p = dict(epsilon=1e-5, batch_dims=0)
    h = rng.standard_normal((16, 128, 512)).astype(np.float32)
    gh = rng.standard_normal(h.shape).astype(np.float32)

    def off(fn):
        return lambda: _with_kernels_off(fn)

    rows = [("impl layer_norm fwd 2048x128", lambda: _nn.layer_norm_p.impl(x, scale, bias, **p)),
            ("impl layer_norm bwd 2048x128",
             lambda: _nn.layer_norm_grad_p.impl(x, scale, g, **p)),
            ("impl gelu fwd 16x128x512", lambda: _nn.gelu_p.impl(h)),
            ("impl gelu bwd 16x128x512", lambda: _nn.gelu_grad_p.impl(h, gh))]
    for name, fn in rows:
        _row(name, [("kernel", _median(fn, reps)), ("numpy", _median(off(fn), reps))])

    def vjp_of(f):
        def run(v, c):
            y, pullback = nanofn.vjp(f, v)
            return y, pullback(c)[0]
        return nanofn.jit(run)
    new, old = vjp_of(nanofn.nn.gelu), vjp_of(_gelu_composite)
    _row("jit gelu 16x128x512 vjp", [("kernel", _median(lambda: new(h, gh), reps)),
                                     ("composite", _median(lambda: old(h, gh), reps))])


def _with_kernels_off(fn):
    with nanofn.config._override("nanofn_use_kernels", False):
        return fn()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    reps = parser.parse_args(argv).reps
    rng = np.random.default_rng(0)
    x10 = rng.standard_normal((256, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 256).astype(np.int32)
    g256 = np.full(256, 1 / 256, np.float32)
    x512 = rng.standard_normal((256, 512)).astype(np.float32)
    x_w7 = rng.standard_normal((2048, 256)).astype(np.float32)  # W7's loss and attention
    labels_w7 = rng.integers(0, 256, 2048).astype(np.int32)
    g_w7 = np.full(2048, 1 / 2048, np.float32)
    logits_w7 = rng.standard_normal((16, 4, 128, 128)).astype(np.float32)
    scale, bias = np.ones(512, np.float32), np.zeros(512, np.float32)
    g512 = rng.standard_normal((256, 512)).astype(np.float32)

    def off(fn):
        def run():
            with nanofn.config._override("nanofn_use_kernels", False):
                fn()
        return run

    print(f"median us (min-max), x = ratio to the first column; {reps} reps, float32")
    # --- impls: what a jit plan runs -----------------------------------------------
    def ce_impl():
        _, probs = _nn.ce_int_p.impl(x10, labels)
        _nn.ce_int_grad_p.impl(probs, labels, g256)

    def ln_impl():
        _nn.layer_norm_p.impl(x512, scale, bias, epsilon=1e-5, batch_dims=0)
        _nn.layer_norm_grad_p.impl(x512, scale, g512, epsilon=1e-5, batch_dims=0)

    def lsm_impl():
        out = _nn.log_softmax_p.impl(x512)
        _nn.log_softmax_grad_p.impl(g512, out)

    def ce_w7():
        _, probs = _nn.ce_int_p.impl(x_w7, labels_w7)
        _nn.ce_int_grad_p.impl(probs, labels_w7, g_w7)

    def attn_w7():
        p = _nn.attention_softmax_p.impl(logits_w7, scale=0.17, causal=True)
        _nn.attention_softmax_grad_p.impl(logits_w7, p, scale=0.17, causal=True)

    for name, fn in [("impl CE 256x10 fwd+bwd", ce_impl), ("impl layer_norm 256x512", ln_impl),
                     ("impl log_softmax 256x512", lsm_impl),
                     ("impl CE 2048x256 fwd+bwd", ce_w7),
                     ("impl attention softmax 16x4x128x128 causal", attn_w7)]:
        _row(name, [("kernel", _median(fn, reps)), ("numpy", _median(off(fn), reps))])

    # --- eager value_and_grad: kernels on / off / the composite they replaced ---------
    ce = nanofn.value_and_grad(
        lambda v: nanofn.nn.losses.softmax_cross_entropy_with_integer_labels(v, labels).mean())
    ce_old = nanofn.value_and_grad(lambda v: _ce_composite(v, labels).mean())
    ln = nanofn.value_and_grad(lambda v, s, b: (_nn.layer_norm(v, s, b) * g512).sum(),
                               argnums=(0, 1, 2))
    ln_old = nanofn.value_and_grad(lambda v, s, b: (_ln_composite(v, s, b) * g512).sum(),
                                   argnums=(0, 1, 2))
    _row("eager CE 256x10 v&g", [("kernel", _median(lambda: ce(x10), reps)),
                                 ("numpy", _median(off(lambda: ce(x10)), reps)),
                                 ("composite", _median(lambda: ce_old(x10), reps))])
    _row("eager layer_norm 256x512 v&g",
         [("kernel", _median(lambda: ln(x512, scale, bias), reps)),
          ("numpy", _median(off(lambda: ln(x512, scale, bias)), reps)),
          ("composite", _median(lambda: ln_old(x512, scale, bias), reps))])
    jce, jce_old = nanofn.jit(ce), nanofn.jit(ce_old)
    _row("jit CE 256x10 v&g", [("kernel", _median(lambda: jce(x10), reps)),
                               ("composite", _median(lambda: jce_old(x10), reps))])
    jln, jln_old = nanofn.jit(ln), nanofn.jit(ln_old)
    _row("jit layer_norm 256x512 v&g",
         [("kernel", _median(lambda: jln(x512, scale, bias), reps)),
          ("composite", _median(lambda: jln_old(x512, scale, bias), reps))])
    _w7_rows(max(reps // 4, 10))


if __name__ == "__main__":
    main()
