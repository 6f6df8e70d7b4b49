"""Peak memory of `grad` through a deep MLP, with and without `checkpoint`.

The network is `depth` layers of `x = tanh(x @ W)` on a wide batch, and the loss is the
sum of the last activation. Peak memory is what `tracemalloc` records while `grad` runs
(numpy reports its array buffers to tracemalloc), above the memory in use when it starts.

Three variants, all giving the same gradients:
  plain      every intermediate of every layer is saved for the backward pass
  per-layer  each layer is checkpointed: one activation per layer is saved
  segments   groups of `segment` layers are checkpointed: only the groups' inputs are
             saved, and one group is recomputed (with its intermediates) at a time

Run: python benchmarks/checkpoint_memory.py [--depth 20] [--batch 2048] [--width 512]
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc

import numpy as np

import nanofn
import nanofn.numpy as fnp
from nanofn import checkpoint


def layer(w, x):
    return fnp.tanh(x @ w)


def make_loss(variant, segment):
    ck_layer = checkpoint(layer)

    def run_segment(ws, x):
        for w in ws:
            x = layer(w, x)
        return x

    ck_segment = checkpoint(run_segment)

    def loss(ws, x):
        if variant == "plain":
            for w in ws:
                x = layer(w, x)
        elif variant == "per-layer":
            for w in ws:
                x = ck_layer(w, x)
        else:
            for i in range(0, len(ws), segment):
                x = ck_segment(ws[i:i + segment], x)
        return x.sum()

    return loss


def peak_mib(fun, *args):
    gc.collect()  # free what earlier runs left behind, so they do not count
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = fun(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2 ** 20, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--segment", type=int, default=5)
    a = parser.parse_args()
    rng = np.random.default_rng(0)
    ws = [fnp.array((rng.normal(size=(a.width, a.width)) / np.sqrt(a.width)).astype(np.float32))
          for _ in range(a.depth)]
    x = fnp.array(rng.normal(size=(a.batch, a.width)).astype(np.float32))
    act_mib = a.batch * a.width * 4 / 2 ** 20
    print(f"{a.depth} layers of tanh(x @ W), x: {a.batch}x{a.width} float32 "
          f"({act_mib:.1f} MiB per activation)")
    reference = None
    for variant in ("plain", "per-layer", "segments"):
        grad = nanofn.grad(make_loss(variant, a.segment))
        grad(ws, x)  # warm up (first-call allocations, caches)
        peak, g = peak_mib(grad, ws, x)
        if reference is None:
            reference, base_peak = g, peak
        err = max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
                  for u, v in zip(g, reference))
        label = variant if variant != "segments" else f"segments of {a.segment}"
        print(f"  {label:<14} peak {peak:8.1f} MiB  ({peak / act_mib:5.1f} activations, "
              f"{peak / base_peak:4.2f}x plain)  max |grad - plain grad| = {err:.1e}")


if __name__ == "__main__":
    main()
