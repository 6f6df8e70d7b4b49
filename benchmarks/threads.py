"""One jitted training step shared by several threads, against the same calls made serially.

The step is `jit(value_and_grad(loss))` of a small MLP (the size of a quick CPU training
step). It is warmed up (traced, fused, kernels compiled) first. Then the same total number
of calls runs once in the main thread and once split over `--threads` threads started
together; the figure is wall time per call, threaded over serial (1.0 = no cost from
sharing; below 1.0 the threads overlap work, since kernels and BLAS release the GIL).
The best of `--repeats` rounds is kept for each.

Run: python benchmarks/threads.py [--threads 4] [--calls 2000] [--batch 32] [--width 64]
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

import nanofn
import nanofn.numpy as fnp


def loss(params, x, y):
    h = fnp.tanh(x @ params["w1"] + params["b1"])
    out = h @ params["w2"] + params["b2"]
    return fnp.mean((out - y) ** 2)


def setup(batch, width):
    rng = np.random.default_rng(0)
    params = {"w1": rng.normal(size=(width, width)).astype(np.float32) * 0.1,
              "b1": np.zeros(width, np.float32),
              "w2": rng.normal(size=(width, 1)).astype(np.float32) * 0.1,
              "b2": np.zeros(1, np.float32)}
    x = rng.normal(size=(batch, width)).astype(np.float32)
    y = rng.normal(size=(batch, 1)).astype(np.float32)
    return params, x, y


def serial(step, args, calls):
    start = time.perf_counter()
    for _ in range(calls):
        step(*args)
    return (time.perf_counter() - start) / calls


def threaded(step, args, calls, n_threads):
    per_thread = calls // n_threads
    barrier = threading.Barrier(n_threads + 1)
    errors = []

    def body():
        barrier.wait()
        try:
            for _ in range(per_thread):
                step(*args)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=body) for _ in range(n_threads)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed / (per_thread * n_threads)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    params, x, y = setup(args.batch, args.width)
    step = nanofn.jit(nanofn.value_and_grad(loss))
    for _ in range(5):  # trace, fuse, compile (or load) kernels
        step(params, x, y)
    want = step(params, x, y)
    threaded(step, (params, x, y), 4 * args.threads, args.threads)  # threads warmed too
    t_serial = min(serial(step, (params, x, y), args.calls) for _ in range(args.repeats))
    t_threads = min(threaded(step, (params, x, y), args.calls, args.threads)
                    for _ in range(args.repeats))
    got = step(params, x, y)
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
    print(f"serial:    {t_serial * 1e6:8.1f} us per call")
    print(f"{args.threads} threads: {t_threads * 1e6:8.1f} us per call "
          f"({t_threads / t_serial:.2f}x serial)")


if __name__ == "__main__":
    main()
