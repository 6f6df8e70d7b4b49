"""nanofn.profiler's tracing API (JAX's jax.profiler.trace, start_trace / stop_trace,
TraceAnnotation, StepTraceAnnotation, annotate_function): the spans it records and the
Chrome trace-event file it writes, in JAX's layout. No JAX needed."""

import functools
import gzip
import inspect
import json
import os
import pathlib
import re
import socket
import threading

import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import _jit, profiler


def _trace_files(log_dir):
    return sorted(pathlib.Path(log_dir).glob("plugins/profile/*/*.trace.json.gz"))


def _load(log_dir):
    """The one trace file under log_dir: (path, its JSON)."""
    files = _trace_files(log_dir)
    assert len(files) == 1, files
    with gzip.open(files[0], "rt", encoding="utf-8") as f:
        return files[0], json.load(f)


def _spans(doc, name=None):
    return [e for e in doc["traceEvents"]
            if e["ph"] == "X" and (name is None or e["name"] == name)]


def _inside(inner, outer):
    return (outer["tid"] == inner["tid"] and outer["ts"] <= inner["ts"]
            and inner["ts"] + inner["dur"] <= outer["ts"] + outer["dur"])


@pytest.fixture(autouse=True)
def _no_trace_left_running():
    yield
    if profiler._session is not None:  # a failed test must not leave one for the next
        profiler.stop_trace()
    assert _jit._trace_hook is None


def test_a_traced_loop_writes_one_chrome_trace_in_jax_layout(tmp_path):
    step = nanofn.jit(lambda x: fnp.tanh(x) * 2)

    def model_step(x):
        return fnp.sum(step(x))

    with profiler.trace(tmp_path):
        for i in range(3):
            with profiler.StepTraceAnnotation("train", step_num=i):
                with profiler.TraceAnnotation("data", batch=4):
                    x = fnp.ones(4) * i
                with profiler.TraceAnnotation("compute"):
                    model_step(x)
    path, doc = _load(tmp_path)

    # <log_dir>/plugins/profile/<YYYY_MM_DD_HH_MM_SS>/<host>.trace.json.gz, as JAX writes
    assert path.parent.parent == tmp_path / "plugins" / "profile"
    assert re.fullmatch(r"\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d", path.parent.name)
    assert path.name == f"{socket.gethostname()}.trace.json.gz"
    assert os.listdir(path.parent) == [path.name]
    assert doc["displayTimeUnit"] == "ns" and set(doc) == {"displayTimeUnit", "metadata",
                                                           "traceEvents"}

    steps = _spans(doc, "train")
    assert [s["args"] for s in steps] == [{"step_num": str(i)} for i in range(3)]
    assert [s["args"] for s in _spans(doc, "data")] == [{"batch": "4"}] * 3
    calls = _spans(doc, "jit(<lambda>)")
    assert len(calls) == 3  # one span per call
    assert calls[0]["args"] == {"compiled": "true"} and "args" not in calls[2]
    assert {e["name"] for e in _spans(doc)} == {"train", "data", "compute", "jit(<lambda>)"}

    # nesting: each step holds its data and compute, compute holds the jitted call
    for s, d, c, j in zip(steps, _spans(doc, "data"), _spans(doc, "compute"), calls):
        assert _inside(d, s) and _inside(c, s) and _inside(j, c)
        assert d["ts"] + d["dur"] <= c["ts"]
        assert s["dur"] > 0
    assert all(a["ts"] + a["dur"] <= b["ts"] for a, b in zip(steps, steps[1:]))
    # events are in start order, an outer span before the spans it holds
    ts = [e["ts"] for e in _spans(doc)]
    assert ts == sorted(ts) and _spans(doc)[0]["name"] == "train"

    # all on this process and thread, which has its name row
    me = threading.get_native_id()
    assert {(e["pid"], e["tid"]) for e in _spans(doc)} == {(os.getpid(), me)}
    names = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {me: "python"}


def test_nothing_is_recorded_outside_a_trace(tmp_path):
    f = nanofn.jit(lambda x: x + 1)

    @profiler.annotate_function
    def helper():
        return f(fnp.ones(2))

    with profiler.TraceAnnotation("before"), profiler.StepTraceAnnotation("s", step_num=0):
        helper()
    assert profiler._session is None and _jit._trace_hook is None
    with profiler.trace(tmp_path):
        with profiler.TraceAnnotation("inside"):
            pass
    with profiler.TraceAnnotation("after"):
        helper()
    _, doc = _load(tmp_path)
    assert [e["name"] for e in _spans(doc)] == ["inside"]
    assert profiler._session is None and _jit._trace_hook is None


def test_start_twice_and_stop_without_start_are_errors(tmp_path):
    with pytest.raises(RuntimeError, match="No profile started"):
        profiler.stop_trace()
    profiler.start_trace(tmp_path / "a")
    with pytest.raises(RuntimeError, match="already been started.*Only one profile"):
        profiler.start_trace(tmp_path / "b")
    with pytest.raises(RuntimeError, match="already been started"):
        with profiler.trace(tmp_path / "c"):
            pass
    with profiler.TraceAnnotation("still traced"):
        pass
    profiler.stop_trace()  # the first trace was untouched by the failed starts
    with pytest.raises(RuntimeError, match="No profile started.*start_trace"):
        profiler.stop_trace()
    _, doc = _load(tmp_path / "a")
    assert [e["name"] for e in _spans(doc)] == ["still traced"]
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_trace_writes_even_when_its_body_raises(tmp_path):
    bad = nanofn.jit(lambda x: x @ x)
    with pytest.raises(TypeError):
        with profiler.trace(str(tmp_path)):
            with profiler.TraceAnnotation("ok"):
                pass
            with profiler.TraceAnnotation("fails"):
                bad(fnp.ones((2, 3)))  # a shape error inside the jitted call
    assert profiler._session is None and _jit._trace_hook is None
    _, doc = _load(tmp_path)
    assert [e["name"] for e in _spans(doc)] == ["ok", "fails", "jit(<lambda>)"]
    assert _inside(_spans(doc, "jit(<lambda>)")[0], _spans(doc, "fails")[0])
    with profiler.trace(tmp_path / "again"):  # and a new trace can start
        pass


def test_annotate_function_keeps_the_function(tmp_path):
    @profiler.annotate_function
    def load(n, scale=1):
        """Read a batch."""
        return [scale * i for i in range(n)]

    @functools.partial(profiler.annotate_function, name="prep", stage=2)
    def prepare(batch):
        return sum(batch)

    @profiler.annotate_function
    def broken():
        raise ValueError("no data")

    class Loader:
        @profiler.annotate_function
        def next(self):
            return 7

    assert load.__name__ == "load" and load.__doc__ == "Read a batch."
    assert inspect.signature(load) == inspect.signature(load.__wrapped__)
    assert prepare.__name__ == "prepare"
    assert load(3, scale=2) == [0, 2, 4]  # outside a trace too
    with profiler.trace(tmp_path):
        assert prepare(load(3, scale=2)) == 6
        assert Loader().next() == 7
        with pytest.raises(ValueError, match="no data"):
            broken()
    _, doc = _load(tmp_path)
    spans = _spans(doc)
    assert [e["name"] for e in spans] == [
        "test_annotate_function_keeps_the_function.<locals>.load", "prep",
        "test_annotate_function_keeps_the_function.<locals>.Loader.next",
        "test_annotate_function_keeps_the_function.<locals>.broken"]
    assert spans[1]["args"] == {"stage": "2"} and "args" not in spans[0]


def test_each_thread_records_its_own_spans(tmp_path):
    f = nanofn.jit(lambda x: x * 2)
    f(fnp.ones(3))
    ids = {}
    barrier = threading.Barrier(2)

    def work(k):
        ids[k] = threading.get_native_id()
        barrier.wait()
        for i in range(3):
            with profiler.StepTraceAnnotation(f"worker{k}", step_num=i):
                f(fnp.ones(3))

    with profiler.trace(tmp_path):
        threads = [threading.Thread(target=work, args=(k,), name=f"loader-{k}")
                   for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with profiler.TraceAnnotation("main"):
            pass
    _, doc = _load(tmp_path)
    me = threading.get_native_id()
    for k in range(2):
        steps = _spans(doc, f"worker{k}")
        assert [s["args"]["step_num"] for s in steps] == ["0", "1", "2"]
        assert {s["tid"] for s in steps} == {ids[k]}
        calls = [c for c in _spans(doc, "jit(<lambda>)") if c["tid"] == ids[k]]
        assert len(calls) == 3
        assert all(_inside(c, s) for c, s in zip(calls, steps))
    assert _spans(doc, "main")[0]["tid"] == me
    assert len({ids[0], ids[1], me}) == 3
    names = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {me: "python", ids[0]: "loader-0", ids[1]: "loader-1"}


def test_jitted_calls_keep_their_results(tmp_path):
    @nanofn.jit
    def nothing(x):
        return None

    pair = nanofn.jit(lambda x, n: (x * n, x + n), static_argnums=1)
    outer = nanofn.jit(lambda x: pair(x, 2)[0] + 1)  # pair is called while outer traces
    with profiler.trace(tmp_path):
        with profiler.TraceAnnotation("none"):
            assert nothing(fnp.ones(2)) is None
        with profiler.TraceAnnotation("static"):
            a, b = pair(fnp.ones(2), 3)
        assert a.tolist() == [3.0, 3.0] and b.tolist() == [4.0, 4.0]
        for name in ("nested", "nested again"):
            with profiler.TraceAnnotation(name):
                assert outer(fnp.ones(2)).tolist() == [3.0, 3.0]
        with profiler.TraceAnnotation("grad"):
            g = nanofn.grad(lambda x: fnp.sum(pair(x, 3)[0]))(fnp.ones(2))
        assert g.tolist() == [3.0, 3.0]
        with profiler.TraceAnnotation("disabled"), nanofn.disable_jit():
            assert pair(fnp.ones(2), 3)[0].tolist() == [3.0, 3.0]
    _, doc = _load(tmp_path)
    held = {}
    for region in _spans(doc):
        if not region["name"].startswith("jit("):
            held[region["name"]] = [(e["name"], e.get("args")) for e in _spans(doc)
                                    if e["name"].startswith("jit(") and _inside(e, region)]
    compiled = {"compiled": "true"}
    assert held == {
        "none": [("jit(nothing)", compiled)],
        "static": [("jit(<lambda>)", compiled)],
        "nested": [("jit(<lambda>)", compiled), ("jit(<lambda>)", compiled)],
        "nested again": [("jit(<lambda>)", None)],  # outer's plan holds pair's equations
        "grad": [("jit(<lambda>)", None)],
        "disabled": [("jit(<lambda>)", None)],
    }


def test_perfetto_files(tmp_path, capsys):
    with profiler.trace(tmp_path / "t", create_perfetto_trace=True):
        with profiler.TraceAnnotation("a"):
            pass
    path, doc = _load(tmp_path / "t")
    perfetto = path.parent / "perfetto_trace.json.gz"
    with gzip.open(perfetto, "rt") as f:
        pdoc = json.load(f)
    assert "metadata" not in pdoc and pdoc["traceEvents"] == doc["traceEvents"]
    assert capsys.readouterr().out == ""

    profiler.start_trace(tmp_path / "l", create_perfetto_link=True)
    profiler.stop_trace()  # prints, and does not wait for anyone to open it
    out = capsys.readouterr().out
    path, _ = _load(tmp_path / "l")
    perfetto = path.parent / "perfetto_trace.json.gz"
    assert perfetto.exists() and str(perfetto.resolve()) in out and "ui.perfetto.dev" in out


def test_traces_into_one_log_dir_keep_their_own_runs(tmp_path):
    for name in ("first", "second"):
        with profiler.trace(tmp_path):
            with profiler.TraceAnnotation(name):
                pass
    files = _trace_files(tmp_path)
    assert len(files) == 2 and files[0].parent != files[1].parent
    names = set()
    for p in files:
        with gzip.open(p, "rt") as f:
            names |= {e["name"] for e in _spans(json.load(f))}
    assert names == {"first", "second"}


def test_signatures_follow_jax():
    def params(f):
        return [(p.name, p.default) for p in inspect.signature(f).parameters.values()]

    empty = inspect.Parameter.empty
    jax_trace = [("log_dir", empty), ("create_perfetto_link", False),
                 ("create_perfetto_trace", False), ("profiler_options", None)]
    assert params(profiler.start_trace) == jax_trace
    assert params(profiler.trace) == jax_trace
    assert params(profiler.stop_trace) == []
    assert params(profiler.annotate_function) == [("func", empty), ("name", None),
                                                  ("decorator_kwargs", empty)]
    assert params(profiler.TraceAnnotation) == [("name", empty), ("kwargs", empty)]
    assert issubclass(profiler.StepTraceAnnotation, profiler.TraceAnnotation)
    assert nanofn.profiler.trace is profiler.trace  # `import nanofn as jax; jax.profiler...`
