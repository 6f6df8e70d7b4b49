"""Where W7's jitted GPT train step spends its time: `nanofn.profiler`'s per-step clock
over the step's compiled (fused) plan, grouped by what each step computes.

    python -m benchmarks.w7_profile [--runs 10]

The fused attention primitive (`nanofn/ops/_attention.py`) is one row; other steps with
an operand of the attention-logit shape `(B, heads, T, S)` (attention composed of ops)
are counted as attention, its matmuls apart from its softmax; the others by primitive. Fused
elementwise groups are one row: they hold the residual adds, AdamW and the global-norm
clipping, which the fuser merges across layers (GELU is a primitive of its own). Run
it with `OPENBLAS_NUM_THREADS=1` on a shared machine: with two BLAS threads competing
with other processes, matrix products take several times longer and drown the rest.
"""

from __future__ import annotations

import argparse
import inspect
import time

import nanofn
import nanofn.warmup
from benchmarks import workloads
from nanofn import profiler

_GROUPS = {
    "dot_general": "matmuls (projections, MLP, output head)",
    "layer_norm": "layer norm (forward + backward)", "layer_norm_grad":
    "layer norm (forward + backward)",
    "softmax_cross_entropy_int": "loss (softmax cross-entropy)",
    "softmax_cross_entropy_int_grad": "loss (softmax cross-entropy)",
    "gather": "embedding (gather + scatter-add)", "scatter": "embedding (gather + scatter-add)",
    "scatter_add": "embedding (gather + scatter-add)",
    "gelu": "GELU (forward + backward kernels)", "gelu_grad": "GELU (forward + backward kernels)",
    "tanh": "tanh (unfused)",
    "reduce_sum": "reductions (bias grads, norms)",
    "attention": "attention (fused primitive, forward + backward)",
    "attention_grad": "attention (fused primitive, forward + backward)",
}
_ATTENTION = {"dot_general": "attention matmuls (q k^T, w v and their grads)"}


def _shapes(step):
    return [tuple(v.aval.shape) for v in list(step.eqn.invars) + list(step.eqn.outvars)
            if hasattr(getattr(v, "aval", None), "shape")]


def clock_plan(run, data_names, runs, warmup=0):
    """Clock a workload's jitted step plan by plan step: `run` is a workload row (its
    closure holds `step` and the data named `data_names`; `run.box` the parameters).
    Returns `(plan, seconds per step summed over runs, seconds per run)`."""
    closure = inspect.getclosurevars(run).nonlocals
    step, data = closure["step"], [closure[n] for n in data_names]
    for _ in range(3):
        run()
    nanofn.warmup.wait()  # time the fused plan, not the plain one that runs meanwhile
    for _ in range(2):
        run()
    compiled, values = profiler._compiled(step, (*run.box, *data), {})
    plan = compiled.plan
    acc = [0.0] * len(plan.steps)
    fn = profiler._timed_plan(plan, time.perf_counter, acc)
    arena = plan._new_arena() if plan._arena_layout else ()
    for _ in range(warmup):
        fn(arena, *values)
    acc[:] = [0.0] * len(acc)
    start = time.perf_counter()
    for _ in range(runs):
        fn(arena, *values)
    return plan, acc, (time.perf_counter() - start) / runs


def breakdown(runs=10, batch=16, context=128, d_model=128, heads=4, layers=4):
    """(rows, whole seconds per run): (group, seconds per run, share) sorted by time."""
    run = workloads._w7_nanofn(True, batch, context, d_model, heads, layers)
    plan, acc, whole = clock_plan(run, ("x", "y"), runs)
    logits = (batch, heads, context, context)
    groups: dict[str, float] = {}
    for st, t in zip(plan.steps, acc):
        name = profiler._step_name(st)
        if name.startswith("fused"):
            group = "fused elementwise (residuals, AdamW, clipping)"
        elif name in ("attention", "attention_grad"):
            group = _GROUPS[name]
        elif logits in _shapes(st):
            group = _ATTENTION.get(name, "attention softmax (scale, mask, softmax, backward)")
        else:
            group = _GROUPS.get(name, "other (reshapes, broadcasts, ...)")
        groups[group] = groups.get(group, 0.0) + t / runs
    groups["plan overhead (between steps)"] = max(whole - sum(groups.values()), 0.0)
    rows = sorted(((g, t, t / whole) for g, t in groups.items()), key=lambda r: -r[1])
    return rows, whole


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    rows, whole = breakdown(args.runs)
    print(f"W7 jitted train step, {whole * 1e3:.1f} ms per run (mean of {args.runs})")
    for group, t, share in rows:
        print(f"  {group:<55} {t * 1e3:8.2f} ms {share:6.1%}")


if __name__ == "__main__":
    main()
