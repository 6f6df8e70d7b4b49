"""Where a jitted function's time goes: a per-step profile of its compiled plan.

`jit` runs a function as a plan: one straight-line Python function whose lines call a
numpy routine, a numba kernel or a generated fused kernel per equation
(`docs/design.md`). `profile` rebuilds that same plan with a clock around each line,
runs it, and adds the times up per primitive and per fused group, so the table is the
plan's own breakdown, not a sampling profiler's guess.

    >>> import nanofn, nanofn.numpy as fnp
    >>> from nanofn import profiler
    >>> f = lambda w, x: fnp.sum(fnp.tanh(x @ w) ** 2)
    >>> p = profiler.profile(nanofn.grad(f), fnp.ones((64, 64)), fnp.ones((32, 64)))
    >>> round(sum(row.share for row in p.rows), 6)
    1.0
    >>> print(p)  # doctest: +SKIP
    step                              calls   total ms   per call us   share
    dot_general                           2      0.241          12.0   51.3%
    ...
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["profile", "Profile", "ProfileRow"]


@dataclass
class ProfileRow:
    """One line of a profile: a primitive (or one fused group) and its time."""

    name: str
    calls: int  # times the step ran, over all runs
    seconds: float  # total time, over all runs
    share: float  # fraction of the whole run's time


@dataclass
class Profile:
    """A jit plan's time by step, sorted by time; `str()` prints the table."""

    rows: list[ProfileRow]
    runs: int
    seconds: float  # the whole plan, over all runs

    def __str__(self):
        head = f"{'step':<40} {'calls':>6} {'total ms':>10} {'per call us':>12} {'share':>7}"
        lines = [head]
        for r in self.rows:
            per = r.seconds / max(r.calls, 1) * 1e6
            name = r.name if len(r.name) <= 40 else r.name[:37] + "..."
            lines.append(f"{name:<40} {r.calls:>6} {r.seconds * 1e3:>10.3f} {per:>12.1f} "
                         f"{r.share:>6.1%}")
        lines.append(f"{'whole plan, per run':<40} {self.runs:>6} "
                     f"{self.seconds / self.runs * 1e3:>10.3f}")
        return "\n".join(lines)

    __repr__ = __str__


def _compiled(jf, args, kwargs):
    """The cached compiled entry `jf` runs for these arguments."""
    from nanofn._core import get_aval
    from nanofn._jit import _leaf_to_value
    from nanofn.tree_util import tree_flatten

    static, dyn_args, dyn_kwargs = jf._split(args, kwargs)
    leaves, in_tree = tree_flatten((dyn_args, dyn_kwargs))
    values = [_leaf_to_value(x) for x in leaves]
    key = (in_tree, tuple(get_aval(v) for v in values), static)
    return jf._cache.get(key), values


def _step_name(step) -> str:
    if step.kind == "fused":
        return f"fused{step.eqn.params['program']}"
    return step.eqn.primitive.name


def _timed_plan(plan, clock, acc):
    """The plan's function with each step's line between two clock reads."""
    src = plan.source.splitlines()
    out = []
    for lineno, text in enumerate(src, start=1):
        i = plan._line_step.get(lineno)
        if i is None:
            out.append(text)
            continue
        pad = text[: len(text) - len(text.lstrip())]
        out += [f"{pad}_t0 = _clock()", text, f"{pad}_acc[{i}] += _clock() - _t0"]
    ns = dict(plan._fn.__globals__)
    ns.update(_clock=clock, _acc=acc)
    exec(compile("\n".join(out) + "\n", "<nanofn profiled plan>", "exec"), ns)  # noqa: S102
    return ns["plan"]


def profile(fun, *args, runs: int = 20, warmup: int = 2, **kwargs) -> Profile:
    """Profile `jit(fun)` on these arguments: time per primitive and per fused group.

    The function is jitted (if it is not already) and called `warmup` times, so that the
    profile is of the plan that steady-state calls run (fused kernels compiled); then the
    plan runs `runs` times with a clock around each step. Rows are sorted by time; the
    last row, `(plan overhead)`, is the time between steps (Python, freeing buffers), so
    the shares add up to the whole.

    Args:
        fun: a function of arrays, or a `jit`-wrapped one.
        *args, **kwargs: the arguments to profile it on.
        runs: how many timed runs to add up.
        warmup: untimed calls first (at least 2: the second call builds the fused plan).

    Returns:
        A `Profile`; print it for the table.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import profiler
        >>> p = profiler.profile(lambda x: fnp.exp(x) @ x, fnp.ones((8, 8)), runs=3)
        >>> sorted(r.name for r in p.rows)[:2]
        ['(plan overhead)', 'dot_general']
    """
    from nanofn._jit import JitFunction, jit

    if runs < 1:
        raise ValueError(f"profile: runs must be at least 1, got {runs}")
    jf = fun if isinstance(fun, JitFunction) else jit(fun)
    for _ in range(max(warmup, 2)):
        jf(*args, **kwargs)
    compiled, values = _compiled(jf, args, kwargs)
    if compiled is None:
        raise ValueError("profile: this function was not compiled for these arguments "
                         "(is it traced under another transformation?)")
    plan = compiled.plan
    acc = [0.0] * len(plan.steps)
    fn = _timed_plan(plan, time.perf_counter, acc)
    arena = plan._new_arena() if plan._arena_layout else ()
    start = time.perf_counter()
    for _ in range(runs):
        fn(arena, *values)
    whole = time.perf_counter() - start

    by_name: dict[str, list] = {}
    for step, t in zip(plan.steps, acc):
        entry = by_name.setdefault(_step_name(step), [0, 0.0])
        entry[0] += runs
        entry[1] += t
    stepped = sum(t for _, t in by_name.values())
    rows = [ProfileRow(name, calls, t, t / whole) for name, (calls, t) in by_name.items()]
    rows.sort(key=lambda r: -r.seconds)
    overhead = max(whole - stepped, 0.0)
    rows.append(ProfileRow("(plan overhead)", runs, overhead, overhead / whole))
    total_share = sum(r.share for r in rows)
    for r in rows:  # the clock's own cost can push the steps past the whole: renormalise
        r.share /= total_share
    return Profile(rows, runs, whole)
