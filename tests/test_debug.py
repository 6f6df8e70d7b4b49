"""Tests for nanofn.debug.print and nanofn.debug.callback under every transformation."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import debug, lax

try:
    from nanofn import vmap
except ImportError:  # not exported yet
    from nanofn._batching import vmap


def lines(capsys):
    return capsys.readouterr().out.splitlines()


def test_print_eager_formats_values_and_returns_none(capsys):
    assert debug.print("x = {} and {y:.2f}", fnp.array([1.0, 2.0]), y=fnp.float32(0.5)) is None
    debug.print("tree {}", {"a": fnp.arange(2)})
    debug.print("plain {} {}", "text", 3)
    assert lines(capsys) == ["x = [1. 2.] and 0.50", "tree {'a': Array([0, 1], dtype=int32)}",
                             "plain text 3"]


def test_print_under_jit_prints_at_run_time_every_call(capsys):
    f = nanofn.jit(lambda x: (debug.print("x={}", x), x * 2)[1])
    assert lines(capsys) == []  # nothing happens before the first call
    f(1.0)
    f(2.0)
    assert lines(capsys) == ["x=1.0", "x=2.0"]
    assert f.trace_count == 1
    # the print survives jit's dead-code elimination though nothing uses it
    g = nanofn.jit(lambda x: (debug.print("unused {}", x + 1), x)[1])
    g(1.0)
    g(1.0)
    assert lines(capsys) == ["unused 2.0", "unused 2.0"]


def test_print_under_grad_and_jvp_shows_primals(capsys):
    def f(x):
        debug.print("x={}", x)
        return x * x

    assert float(nanofn.grad(f)(3.0)) == 6.0
    nanofn.jvp(f, (4.0,), (1.0,))
    assert float(nanofn.jit(nanofn.grad(f))(5.0)) == 10.0
    assert lines(capsys) == ["x=3.0", "x=4.0", "x=5.0"]


def test_print_under_vmap_prints_once_per_example(capsys):
    # as JAX: the batch is unstacked and printed example by example, in order
    out = vmap(lambda x, y: (debug.print("x={} y={}", x, y), x + y)[1], in_axes=(0, None))(
        fnp.array([1.0, 2.0, 3.0]), 10.0)
    assert np.allclose(out, [11.0, 12.0, 13.0])
    assert lines(capsys) == ["x=1.0 y=10.0", "x=2.0 y=10.0", "x=3.0 y=10.0"]
    nanofn.jit(vmap(lambda x: debug.print("jv {}", x * 2)))(fnp.arange(2.0))
    assert lines(capsys) == ["jv 0.0", "jv 2.0"]
    vmap(vmap(lambda x: debug.print("{}", x)), in_axes=1)(fnp.arange(4.0).reshape(2, 2))
    assert lines(capsys) == ["0.0", "1.0", "2.0", "3.0"]  # JAX's order for nested vmaps


def test_print_inside_control_flow(capsys):
    def body(c, x):
        debug.print("c={} x={}", c, x)
        return c + x, c

    f = nanofn.jit(lambda xs: lax.scan(body, 0.0, xs)[0])
    assert float(f(fnp.array([1.0, 2.0]))) == 3.0
    assert lines(capsys) == ["c=0.0 x=1.0", "c=1.0 x=2.0"]
    # under grad, each step prints once (the backward pass does not print again)
    g = nanofn.grad(lambda xs: lax.scan(body, 0.0, xs)[0])(fnp.array([1.0, 2.0, 3.0]))
    assert np.allclose(g, 1.0)
    assert lines(capsys) == ["c=0.0 x=1.0", "c=1.0 x=2.0", "c=3.0 x=3.0"]
    # only the branch that runs prints, even when its output is unused under jit
    h = nanofn.jit(lambda x: (lax.cond(x > 0, lambda: debug.print("pos {}", x),
                                       lambda: debug.print("neg {}", x)), x)[1])
    h(1.0)
    h(-2.0)
    assert lines(capsys) == ["pos 1.0", "neg -2.0"]


def test_callback_receives_concrete_arrays():
    seen = []

    def record(x, *, scale):
        seen.append((type(x), np.asarray(x).tolist(), scale))

    f = nanofn.jit(lambda x: (debug.callback(record, x + 1, scale="s"), x)[1])
    f(fnp.array([1.0, 2.0]))
    assert seen == [(nanofn.Array, [2.0, 3.0], "s")]


def test_inspect_array_sharding_reports_each_leaf_eagerly_and_under_jit():
    import nanofn.sharding as shd
    seen = []
    x = nanofn.numpy.ones(4)
    nanofn.debug.inspect_array_sharding((x, {"b": x}), callback=seen.append)
    assert len(seen) == 2 and all(isinstance(s, shd.SingleDeviceSharding) for s in seen)
    mesh = shd.Mesh(np.array(nanofn.devices()), ("x",))
    placed = nanofn.device_put(x, shd.NamedSharding(mesh, shd.PartitionSpec("x")))
    nanofn.debug.inspect_array_sharding(placed, callback=seen.append)
    assert seen[-1] == shd.NamedSharding(mesh, shd.PartitionSpec("x"))
    calls = []
    f = nanofn.jit(lambda v: nanofn.debug.inspect_array_sharding(v, callback=calls.append) or v)
    f(x), f(x)
    assert len(calls) == 1  # while tracing, once
    with pytest.raises(TypeError, match="callback must be callable"):
        nanofn.debug.inspect_array_sharding(x, callback=None)


def test_print_without_fields_two_call_form_and_unused_keywords_as_jax(capsys):
    x = nanofn.numpy.arange(3)
    nanofn.debug.print("values:", x, 2.5)
    nanofn.debug.print(ordered=True)("x = {}", x)
    nanofn.jit(lambda v: nanofn.debug.print("{a} and {b}", a=v, b=v + 1) or v)(x)
    assert capsys.readouterr().out.splitlines() == ["values: [0 1 2] 2.5", "x = [0 1 2]",
                                                     "[0 1 2] and [1 2 3]"]
    with pytest.raises(ValueError, match=r"Unused keyword arguments to `jax.debug.print`: "
                                         r"\['y'\]"):
        nanofn.debug.print("x = {x}", x=x, y=x)
    nanofn.debug.print("x = {x}", x=x, y=x, skip_format_check=True)
    assert capsys.readouterr().out == "x = [0 1 2]\n"
    with pytest.raises(TypeError, match="format string is missing"):
        nanofn.debug.print(None, x)


def test_log_emits_an_info_record_at_the_line_of_the_call(caplog):
    import logging
    f = nanofn.jit(lambda v: nanofn.debug.log("v = {}", v * 2) or v)
    with caplog.at_level(logging.INFO, logger="nanofn.debug"):
        f(nanofn.numpy.ones(2))
        f(nanofn.numpy.ones(2))  # every run logs, not only the trace
    records = [r for r in caplog.records if r.name == "nanofn.debug"]
    assert [r.getMessage() for r in records] == ["v = [2. 2.]"] * 2
    assert all(r.levelno == logging.INFO and r.pathname == __file__ for r in records)
    with caplog.at_level(logging.WARNING, logger="nanofn.debug"):
        f(nanofn.numpy.ones(2))
    assert len([r for r in caplog.records if r.name == "nanofn.debug"]) == 2


@pytest.mark.parametrize("spec, want", [
    (("x", "y"), [["CPU 0", "CPU 1"], ["CPU 2", "CPU 3"]]),
    ((None, "y"), [["CPU 0,2", "CPU 1,3"]]),
    (("x", None), [["CPU 0,1"], ["CPU 2,3"]]),
    ((None, None), [["CPU 0,1,2,3"]]),
])
def test_visualize_sharding_draws_each_block_with_its_devices(capsys, spec, want):
    from nanofn.sharding import Mesh, NamedSharding, PartitionSpec as P
    nanofn.config.update("jax_num_cpu_devices", 4)
    try:
        mesh = Mesh(np.array(nanofn.devices()).reshape(2, 2), ("x", "y"))
        sharding = NamedSharding(mesh, P(*spec))
        debug.visualize_array_sharding(nanofn.device_put(fnp.ones((8, 4)), sharding))
    finally:
        nanofn.config.update("jax_num_cpu_devices", -1)
    rows = [[cell.strip() for cell in line.strip("│").split("│")]
            for line in lines(capsys) if line.startswith("│")]
    assert rows == want


def test_visualize_sharding_errors_as_jax():
    from nanofn.sharding import SingleDeviceSharding
    with pytest.raises(ValueError, match="only 1D and 2D shapes"):
        debug.visualize_sharding((2, 2, 2), SingleDeviceSharding(nanofn.devices()[0]))
    with pytest.raises(TypeError, match="needs a concrete array"):
        nanofn.jit(lambda x: debug.visualize_array_sharding(x) or x)(fnp.ones(2))
