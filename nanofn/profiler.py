"""Where the time goes: a per-step profile of a jit plan, and JAX's tracing profiler.

Two tools. `profile(fun, *args)` breaks one jitted function's time down by the steps of
its compiled plan. `trace` / `start_trace` / `stop_trace`, with `TraceAnnotation`,
`StepTraceAnnotation` and `annotate_function`, are `jax.profiler`'s tracing API: while a
trace runs, every annotated region and every call of a `jit`-compiled function is recorded
as a span, and stopping the trace writes them as a Chrome trace-event file, in the
folders JAX writes, that Perfetto (ui.perfetto.dev) opens.

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

A trace of a training loop, written under `log_dir/plugins/profile/<time>/`:

    >>> import pathlib, tempfile
    >>> step = nanofn.jit(lambda x: fnp.tanh(x) * 2)
    >>> with tempfile.TemporaryDirectory() as log_dir:
    ...     with profiler.trace(log_dir):
    ...         for i in range(3):
    ...             with profiler.StepTraceAnnotation("train", step_num=i):
    ...                 x = step(fnp.ones(4))
    ...     sorted(p.name[-14:] for p in pathlib.Path(log_dir).glob("plugins/profile/*/*"))
    ['.trace.json.gz']
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["profile", "Profile", "ProfileRow", "trace", "start_trace", "stop_trace",
           "TraceAnnotation", "StepTraceAnnotation", "annotate_function"]


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
    from nanofn._core import get_aval, trace_flags
    from nanofn._jit import _leaf_to_value
    from nanofn.tree_util import tree_flatten

    static, dyn_args, dyn_kwargs = jf._split(args, kwargs)
    leaves, in_tree = tree_flatten((dyn_args, dyn_kwargs))
    values = [_leaf_to_value(x) for x in leaves]
    key = (in_tree, tuple(get_aval(v) for v in values), static, trace_flags)
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


# --------------------------------------------------------------- the tracing profiler
#
# While a trace runs, `_session` holds it; otherwise it is None, and that one check is all
# an annotation (or, through `nanofn._jit._trace_hook`, a jitted call) costs. A span is a
# tuple (name, start ns, end ns, thread id, args), appended to the session's list (a list
# append is atomic, so threads record without a lock).

class _Session:
    def __init__(self, log_dir, create_perfetto_link, create_perfetto_trace):
        self.log_dir = log_dir
        self.create_perfetto_link = create_perfetto_link
        self.create_perfetto_trace = create_perfetto_trace or create_perfetto_link
        self.spans: list[tuple] = []
        self.threads: dict[int, str] = {}  # thread id -> name, for the trace's thread rows
        self.t0 = time.perf_counter_ns()

    def add(self, name, start, end, args):
        tid = threading.get_native_id()
        if tid not in self.threads:
            self.threads[tid] = threading.current_thread().name
        self.spans.append((name, start, end, tid, args))


_session: _Session | None = None
_lock = threading.Lock()  # start_trace / stop_trace, one at a time
_jit_call = threading.local()  # .passing: the JitFunction whose call the hook lets through


def _span_args(kwargs) -> dict:
    # JAX's trace files give annotation arguments as strings ({"step_num": "0"}); so do we.
    return {k: str(v) for k, v in kwargs.items()}


def _trace_jit_call(jf, args, kwargs):
    """`nanofn._jit._trace_hook` while a trace runs: call `jf` inside a span.

    `JitFunction.__call__` calls this first; it calls `jf` again, and that inner call,
    told by `_jit_call.passing` that it is the one to run, gets `()` back and runs as
    usual. The result comes back in a 1-tuple (a jitted function may return None)."""
    if getattr(_jit_call, "passing", None) is jf:
        _jit_call.passing = None
        return ()
    session = _session
    if session is None:  # the trace stopped meanwhile, in another thread
        return ()
    traces = jf.trace_count
    _jit_call.passing = jf
    start = time.perf_counter_ns()
    try:
        return (jf(*args, **kwargs),)
    finally:
        end = time.perf_counter_ns()
        _jit_call.passing = None
        name = f"jit({getattr(jf, '__name__', None) or type(jf.fun).__name__})"
        if session is _session:
            session.add(name, start, end, {"compiled": "true"} if jf.trace_count != traces
                        else {})


def start_trace(log_dir: os.PathLike | str, create_perfetto_link: bool = False,
                create_perfetto_trace: bool = False, profiler_options: Any = None) -> None:
    """Start a profiler trace (JAX's `jax.profiler.start_trace`); `stop_trace` writes it.

    Until `stop_trace`, every `TraceAnnotation` / `StepTraceAnnotation` region, every call
    of an `annotate_function`-wrapped function and every call of a `jit`-compiled function
    (named `jit(<its name>)`, with `compiled: "true"` on calls that traced and compiled
    it) is recorded as a span: name, start, duration, thread and arguments, on every
    thread. Only one trace runs at a time.

    Where JAX records the device and its own C++ and Python stack as well, nanofn records
    these spans only (a jitted call's steps: see `profile`). The file is Chrome's
    trace-event JSON, the `.trace.json.gz` that JAX writes beside its `.xplane.pb`.

    Args:
        log_dir: the directory to write the trace under (usually TensorBoard's log
            directory): `log_dir/plugins/profile/<YYYY_MM_DD_HH_MM_SS>/<host>.trace.json.gz`.
        create_perfetto_link: also write `perfetto_trace.json.gz` and print its path with
            how to open it in https://ui.perfetto.dev. JAX serves the file to the Perfetto
            UI and waits until it is opened; nanofn has no server, so it prints and goes on.
        create_perfetto_trace: also write `perfetto_trace.json.gz` beside the trace (the
            same events without the `metadata` field, as JAX writes it for Perfetto).
        profiler_options: accepted for JAX's signature (`jax.profiler.ProfileOptions`);
            nanofn's tracer has no collectors to configure, so it is not used.

    Raises:
        RuntimeError: a trace is already running.

    Example:
        >>> import pathlib, tempfile
        >>> from nanofn import profiler
        >>> with tempfile.TemporaryDirectory() as log_dir:
        ...     profiler.start_trace(log_dir)
        ...     with profiler.TraceAnnotation("load"):
        ...         data = list(range(10))
        ...     profiler.stop_trace()
        ...     len(list(pathlib.Path(log_dir).glob("plugins/profile/*/*.trace.json.gz")))
        1
    """
    del profiler_options  # nothing to configure
    global _session
    with _lock:
        if _session is not None:
            raise RuntimeError(f"Profile has already been started (writing to "
                               f"{_session.log_dir!r}). Only one profile may be run at a "
                               "time: call stop_trace() first.")
        from nanofn import _jit
        _session = _Session(os.fspath(log_dir), bool(create_perfetto_link),
                            bool(create_perfetto_trace))
        _jit._trace_hook = _trace_jit_call


def stop_trace() -> None:
    """Stop the running trace and write it (JAX's `jax.profiler.stop_trace`).

    Writes the spans recorded since `start_trace` to
    `log_dir/plugins/profile/<YYYY_MM_DD_HH_MM_SS>/<host>.trace.json.gz`: gzipped Chrome
    trace-event JSON (`{"displayTimeUnit": "ns", "metadata": ..., "traceEvents": [...]}`,
    one complete event, `"ph": "X"`, per span, times in microseconds from the trace's
    start, plus the process and thread names), in the folders JAX writes for TensorBoard's
    profile plugin. Perfetto's UI (https://ui.perfetto.dev, "Open trace file") and
    chrome://tracing open the file directly; so do the TensorBoard profile plugins that
    read `.trace.json.gz` (recent ones build their tools from JAX's `.xplane.pb` only,
    which nanofn does not write).

    Raises:
        RuntimeError: no trace is running.

    Example:
        >>> from nanofn import profiler
        >>> profiler.stop_trace()
        Traceback (most recent call last):
        ...
        RuntimeError: No profile started: stop_trace() needs a trace begun by start_trace...
    """
    global _session
    with _lock:
        session = _session
        if session is None:
            raise RuntimeError("No profile started: stop_trace() needs a trace begun by "
                               "start_trace(log_dir) (or use `with trace(log_dir):`)")
        from nanofn import _jit
        _jit._trace_hook = None
        _session = None
        events = _trace_json(session)
        folder = _write_trace(session.log_dir, events)
        if session.create_perfetto_trace:  # Perfetto wants no `metadata` field (JAX)
            perfetto = os.path.join(folder, "perfetto_trace.json.gz")
            _write_json_gz(perfetto, {k: v for k, v in events.items() if k != "metadata"})
            if session.create_perfetto_link:
                print(f"Perfetto trace: {os.path.abspath(perfetto)}\n"
                      "Open https://ui.perfetto.dev, choose 'Open trace file' and pick it "
                      "(nanofn serves no link: copy the file over first if this machine is "
                      "remote).")


@contextlib.contextmanager
def trace(log_dir: os.PathLike | str, create_perfetto_link: bool = False,
          create_perfetto_trace: bool = False, profiler_options: Any = None):
    """A profiler trace around a block (JAX's `jax.profiler.trace`): `start_trace` on
    entry, `stop_trace` on exit, even when the block raises, so the trace is written.

    Args: as `start_trace`'s.

    Example:
        >>> import pathlib, socket, tempfile
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn import profiler
        >>> f = nanofn.jit(lambda x: fnp.sin(x) + 1)
        >>> with tempfile.TemporaryDirectory() as log_dir:
        ...     with profiler.trace(log_dir, create_perfetto_trace=True):
        ...         y = f(fnp.ones(3))
        ...     run, = pathlib.Path(log_dir).glob("plugins/profile/*")
        ...     sorted(p.name.replace(socket.gethostname(), "<host>") for p in run.iterdir())
        ['<host>.trace.json.gz', 'perfetto_trace.json.gz']
    """
    start_trace(log_dir, create_perfetto_link, create_perfetto_trace, profiler_options)
    try:
        yield
    finally:
        stop_trace()


class TraceAnnotation:
    """A named region of a trace (JAX's `jax.profiler.TraceAnnotation`): a context
    manager whose block becomes one span, `kwargs` its arguments (shown as strings, as
    JAX writes them). Outside a trace it records nothing and costs one check.

    For a whole function, use `annotate_function`, which wraps each call in one.

    Example:
        >>> import pathlib, tempfile
        >>> from nanofn import profiler
        >>> with tempfile.TemporaryDirectory() as log_dir:
        ...     with profiler.trace(log_dir):
        ...         with profiler.TraceAnnotation("load", batch=32):
        ...             data = list(range(32))
        ...     n = len(list(pathlib.Path(log_dir).glob("plugins/profile/*/*")))
        >>> n
        1
        >>> with profiler.TraceAnnotation("untraced"):  # no trace running: nothing recorded
        ...     pass
    """

    __slots__ = ("name", "kwargs", "_start")

    def __init__(self, name: str, **kwargs):
        self.name = name
        self.kwargs = kwargs
        self._start = None

    def __enter__(self):
        if _session is not None:
            self._start = (_session, time.perf_counter_ns())
        return self

    def __exit__(self, *exc):
        if self._start is not None:
            end = time.perf_counter_ns()
            session, start = self._start
            self._start = None
            if session is _session:  # not stopped (or restarted) meanwhile
                session.add(self.name, start, end, _span_args(self.kwargs))
        return False


class StepTraceAnnotation(TraceAnnotation):
    """A training step's region of a trace (JAX's `jax.profiler.StepTraceAnnotation`):
    a `TraceAnnotation` for one step, with the step's number as `step_num=` (its span
    carries `step_num` among its arguments).

    Example:
        >>> import tempfile
        >>> from nanofn import profiler
        >>> with tempfile.TemporaryDirectory() as log_dir:
        ...     with profiler.trace(log_dir):
        ...         for i in range(3):
        ...             with profiler.StepTraceAnnotation("train", step_num=i):
        ...                 pass
    """

    __slots__ = ()


def annotate_function(func: Callable, name: str | None = None, **decorator_kwargs):
    """Record each call of `func` as a span of the running trace (JAX's
    `jax.profiler.annotate_function`): a decorator, `@annotate_function`, or with a name
    or arguments, `@functools.partial(annotate_function, name="load")`. The span is named
    `name`, or the function's qualified name. The wrapper keeps `func`'s name and
    docstring; outside a trace it costs one check before calling `func`.

    Example:
        >>> import functools, tempfile
        >>> from nanofn import profiler
        >>> @profiler.annotate_function
        ... def load(n):
        ...     "Read a batch."
        ...     return list(range(n))
        >>> @functools.partial(profiler.annotate_function, name="prepare", stage=1)
        ... def prep(batch):
        ...     return [2 * b for b in batch]
        >>> with tempfile.TemporaryDirectory() as log_dir:
        ...     with profiler.trace(log_dir):
        ...         out = prep(load(3))
        >>> out, load.__name__, load.__doc__
        ([0, 2, 4], 'load', 'Read a batch.')
    """
    name = name or getattr(func, "__qualname__", None) or func.__name__
    args = _span_args(decorator_kwargs)

    @functools.wraps(func)
    def wrapper(*a, **k):
        session = _session
        if session is None:
            return func(*a, **k)
        start = time.perf_counter_ns()
        try:
            return func(*a, **k)
        finally:
            end = time.perf_counter_ns()
            if session is _session:
                session.add(name, start, end, args)

    return wrapper


def _trace_json(session: _Session) -> dict:
    """The session's spans as Chrome trace-event JSON (JAX's `.trace.json.gz` layout)."""
    pid = os.getpid()
    events: list[dict] = [
        {"ph": "M", "pid": pid, "name": "process_name", "args": {"name": "/host:CPU"}},
        {"ph": "M", "pid": pid, "name": "process_sort_index", "args": {"sort_index": pid}}]
    main = threading.main_thread().native_id
    for i, (tid, tname) in enumerate(sorted(session.threads.items(),
                                            key=lambda kv: (kv[0] != main, kv[0]))):
        events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name",
                       "args": {"name": "python" if tid == main else tname}})
        events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_sort_index",
                       "args": {"sort_index": i + 1}})
    # Outer spans before the spans they hold: by start, then the longer first.
    for name, start, end, tid, args in sorted(session.spans,
                                              key=lambda s: (s[3], s[1], -s[2])):
        event = {"ph": "X", "pid": pid, "tid": tid, "ts": (start - session.t0) / 1e3,
                 "dur": (end - start) / 1e3, "name": name}
        if args:
            event["args"] = args
        events.append(event)
    return {"displayTimeUnit": "ns", "metadata": {"highres-ticks": True},
            "traceEvents": events}


def _write_json_gz(path: str, obj) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(obj, f)


def _write_trace(log_dir: str, events: dict) -> str:
    """Write `<log_dir>/plugins/profile/<time>/<host>.trace.json.gz`; return its folder."""
    root = os.path.join(log_dir, "plugins", "profile")
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S")
    folder = os.path.join(root, stamp)
    n = 1
    while os.path.exists(folder):  # a second trace within the same second: its own run
        n += 1
        folder = os.path.join(root, f"{stamp}_{n}")
    os.makedirs(folder)
    _write_json_gz(os.path.join(folder, f"{socket.gethostname()}.trace.json.gz"), events)
    return folder
