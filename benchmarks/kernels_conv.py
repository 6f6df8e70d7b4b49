"""Time the convolution and pooling kernels against their numpy references (W4's shapes).

    python -m benchmarks.kernels_conv [--reps N]

Each row is one piece of the W4 convnet step on its real shapes (batch 64, NHWC): the
numba kernel and the numpy reference run alternately in one process, so their ratio is
meaningful on a noisy machine even when the absolute times drift. Medians in ms of the
calling thread's CPU time (`time.thread_time`: both sides are single-threaded, and CPU
time does not count the time other processes hold the core), or of wall time with
`--wall`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _ms(fn, clock=time.thread_time):
    t = clock()
    fn()
    return (clock() - t) * 1e3


def pieces():
    """(name, kernel thunk, reference thunk) for each piece of W4."""
    from nanofn.ops import _conv_kernels as K
    rng = np.random.default_rng(0)
    rows = []
    for n, h, c in ((64, 28, 1), (64, 14, 16)):
        x = rng.standard_normal((n, h, h, c)).astype(np.float32).transpose(0, 3, 1, 2)  # NHWC
        geo = ((3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1))
        p = K.patches(x, *geo, 0.0)
        rows.append((f"im2col 3x3 {h}x{h}x{c}", lambda x=x, geo=geo: K.patches(x, *geo, 0.0),
                     lambda x=x, geo=geo: K.patches_reference(x, *geo, 0.0)))
        rows.append((f"col2im 3x3 {h}x{h}x{c}",
                     lambda p=p, s=x.shape, geo=geo: K.patches_transpose(p, s, *geo),
                     lambda p=p, s=x.shape, geo=geo: K.patches_transpose_reference(p, s, *geo)))
    for h, c in ((28, 16), (14, 32)):
        x = rng.standard_normal((64, h, h, c)).astype(np.float32)
        geo = ((1, 2, 2, 1), (1, 2, 2, 1), ((0, 0),) * 4, (1,) * 4, (1,) * 4)
        ct = rng.standard_normal((64, h // 2, h // 2, c)).astype(np.float32)
        rows.append((f"max pool 2x2 {h}x{h}x{c}", lambda x=x, geo=geo: K.max_pool(x, *geo),
                     lambda x=x, geo=geo: K.max_pool_reference(x, *geo)))
        rows.append((f"max pool grad {h}x{h}x{c}",
                     lambda ct=ct, x=x, geo=geo: K.max_pool_scatter(ct, x, *geo),
                     lambda ct=ct, x=x, geo=geo: K.max_pool_scatter_reference(ct, x, *geo)))
        rows.append((f"avg pool 2x2 {h}x{h}x{c}", lambda x=x, geo=geo: K.sum_pool(x, *geo),
                     lambda x=x, geo=geo: K.sum_pool_reference(x, *geo)))
        rows.append((f"avg pool grad {h}x{h}x{c}",
                     lambda ct=ct, s=x.shape, geo=geo: K.sum_pool_transpose(ct, s, *geo),
                     lambda ct=ct, s=x.shape, geo=geo: K.sum_pool_transpose_reference(ct, s,
                                                                                      *geo)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--wall", action="store_true", help="time wall clock, not CPU")
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.wall else time.thread_time
    print(f"{'piece':28s} {'kernel ms':>10s} {'numpy ms':>10s} {'speed-up':>9s}")
    for name, kern, ref in pieces():
        tk, tr = [], []
        kern(), ref()  # warm-up (the first call compiles or loads the kernel)
        for _ in range(args.reps):  # alternate, so drift hits both alike
            tk.append(_ms(kern, clock))
            tr.append(_ms(ref, clock))
        mk, mr = float(np.median(tk)), float(np.median(tr))
        print(f"{name:28s} {mk:10.3f} {mr:10.3f} {mr / mk:8.1f}x")


if __name__ == "__main__":
    main()
