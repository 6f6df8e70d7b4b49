"""Where W1's jitted MLP train step spends its time: `nanofn.profiler`'s per-step clock
over the step's compiled (fused) plan, one row per plan step, slowest first.

    python -m benchmarks.w1_profile [--runs 50]

Run it on one pinned core with one BLAS thread (`OPENBLAS_NUM_THREADS=1
NUMBA_NUM_THREADS=1 taskset -c 1 ...`): the matrix products are most of the step, and the
question it answers is how much of the step is left for everything else.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks import workloads
from benchmarks.w7_profile import _shapes, clock_plan
from nanofn import profiler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    runs = parser.parse_args(argv).runs
    run = workloads._w1_nanofn(True)
    plan, acc, whole = clock_plan(run, ("x", "onehot"), runs, warmup=5)
    calls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        calls.append(time.perf_counter() - t0)
    print(f"W1 jitted train step: timed plan {whole * 1e3:.3f} ms per run (mean of {runs}); "
          f"untimed calls, median {np.median(calls) * 1e3:.3f} ms")
    products = 0.0
    for st, t in sorted(zip(plan.steps, acc), key=lambda p: -p[1]):
        name = profiler._step_name(st)
        products += t if name == "dot_general" else 0.0
        print(f"  {t / runs * 1e3:7.3f} ms  {name[:40]:<40} {_shapes(st)[:4]}")
    print(f"matrix products: {products / runs * 1e3:.3f} ms; the rest: "
          f"{(sum(acc) - products) / runs * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
