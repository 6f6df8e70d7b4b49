"""Where W1's jitted MLP train step spends its time: `nanofn.profiler`'s per-step clock
over the step's compiled (fused) plan, one row per plan step, slowest first.

    python -m benchmarks.w1_profile [--runs 50]

Run it on one pinned core with one BLAS thread (`OPENBLAS_NUM_THREADS=1
NUMBA_NUM_THREADS=1 taskset -c 1 ...`): the matrix products are most of the step, and the
question it answers is how much of the step is left for everything else.
"""

from __future__ import annotations

import argparse
import inspect
import time

import numpy as np

import nanofn.warmup
from benchmarks import workloads
from nanofn import profiler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    runs = parser.parse_args(argv).runs
    run = workloads._w1_nanofn(True)
    closure = inspect.getclosurevars(run).nonlocals
    step, x, onehot, box = closure["step"], closure["x"], closure["onehot"], run.box
    for _ in range(3):
        run()
    nanofn.warmup.wait()  # time the fused plan, not the plain one that runs meanwhile
    for _ in range(3):
        run()
    compiled, values = profiler._compiled(step, (*box, x, onehot), {})
    plan = compiled.plan
    acc = [0.0] * len(plan.steps)
    timed = profiler._timed_plan(plan, time.perf_counter, acc)
    arena = plan._new_arena() if plan._arena_layout else ()
    for _ in range(5):
        timed(arena, *values)
    acc[:] = [0.0] * len(acc)
    start = time.perf_counter()
    for _ in range(runs):
        timed(arena, *values)
    whole = (time.perf_counter() - start) / runs
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
        shapes = [tuple(v.aval.shape) for v in list(st.eqn.invars) + list(st.eqn.outvars)
                  if hasattr(getattr(v, "aval", None), "shape")]
        print(f"  {t / runs * 1e3:7.3f} ms  {name[:40]:<40} {shapes[:4]}")
    print(f"matrix products: {products / runs * 1e3:.3f} ms; the rest: "
          f"{(sum(acc) - products) / runs * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
