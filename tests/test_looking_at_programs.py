"""The tools for looking at programs and models: jaxpr graphs (nanofn.viz), model
summaries (nn.summary, nn.param_table, nn.count_flops) and the jit profiler."""

import math
import re

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import lax, nn, profiler, viz


# ----------------------------------------------------------------------------- viz


def _graph(dot):
    """(nodes by name -> label, edges as (src label, dst label, edge label))."""
    nodes = dict(re.findall(r'^\s*(n\d+) \[label="([^"]*)"', dot, re.M))
    edges = [(nodes[a], nodes[b], lab)
             for a, b, lab in re.findall(r'^\s*(n\d+) -> (n\d+) \[label="([^"]*)"', dot, re.M)]
    return nodes, edges


def test_dot_of_a_small_jaxpr_has_its_structure():
    f = lambda x, y: fnp.sin(x) * y + 1.0  # noqa: E731
    dot = viz.to_dot(nanofn.make_jaxpr(f)(fnp.ones((2, 3)), fnp.ones(3)), title="f")
    assert dot.startswith("digraph jaxpr {") and dot.rstrip().endswith("}")
    nodes, edges = _graph(dot)
    prims = [e.primitive.name for e in nanofn.make_jaxpr(f)(fnp.ones((2, 3)), fnp.ones(3)).eqns]
    assert sorted(v.split("\\n")[0] for v in nodes.values()) == sorted(
        ["in0", "in1", "1.0", "out0"] + prims)
    heads = {(a.split("\\n")[0], b.split("\\n")[0], lab) for a, b, lab in edges}
    assert ("in0", "sin", "f32[2,3]") in heads
    assert ("sin", "mul", "f32[2,3]") in heads
    assert ("add", "out0", "f32[2,3]") in heads
    assert ("1.0", "add", "f32[]") in heads


def test_dot_of_grad_and_of_jit_fused_program():
    f = lambda x: fnp.sum(fnp.tanh(x) ** 2)  # noqa: E731
    x = fnp.ones(5)
    g_nodes, _ = _graph(viz.to_dot(nanofn.make_jaxpr(nanofn.grad(f))(x)))
    assert "tanh" in {v.split("\\n")[0] for v in g_nodes.values()}
    prog = viz.jit_program(nanofn.grad(f), x)
    fused = [e for e in prog.eqns if e.primitive.name == "fused_elementwise"]
    nodes, edges = _graph(viz.to_dot(prog))
    boxes = [v for v in nodes.values() if v.startswith("fused kernel")]
    assert len(boxes) == len(fused) >= 1  # each fused group is one box
    ops = [op[0] for op in fused[0].params["program"].ops]
    assert boxes[0].split("\\n")[1:] == ops
    # the unfused program computes the same as the fused one
    unfused = viz.jit_program(nanofn.grad(f), x, fused=False)
    np.testing.assert_allclose(prog(x)[0], unfused(x)[0], rtol=1e-6)


def test_dot_draws_control_flow_bodies_as_clusters():
    def f(x):
        c, ys = lax.scan(lambda c, xi: (c * fnp.tanh(xi), c), 1.0, x)
        return c + ys.sum()
    dot = viz.to_dot(nanofn.make_jaxpr(f)(fnp.ones(3)))
    assert dot.count("subgraph cluster_") == 2  # the scan and its body
    assert "jaxpr.in0" in dot and "tanh" in dot


def test_to_dot_rejects_what_is_not_a_jaxpr():
    with pytest.raises(TypeError, match="expected a jaxpr"):
        viz.to_dot(lambda x: x)


# ------------------------------------------------------------------------ summary


def _direct_count(params):
    return sum(int(np.size(x)) for x in nanofn.tree_util.tree_leaves(params))


LAYERS = {
    "Dense": (nn.Dense(7), (-1, 5)),
    "Conv": (nn.Conv(4, (3, 3)), (-1, 6, 6, 2)),
    "ConvTranspose": (nn.ConvTranspose(3, (2, 2)), (-1, 4, 4, 2)),
    "BatchNorm": (nn.BatchNorm(), (-1, 4, 4, 3)),
    "LayerNorm": (nn.LayerNorm(), (-1, 6)),
    "GroupNorm": (nn.GroupNorm(2), (-1, 4, 4, 4)),
    "Embedding": (nn.Embedding(11, 3), (-1, 4)),
    "SimpleRNN": (nn.SimpleRNN(5), (-1, 3, 2)),
    "LSTM": (nn.LSTM(5), (-1, 3, 2)),
    "GRU": (nn.GRU(5), (-1, 3, 2)),
    "MultiHeadAttention": (nn.MultiHeadAttention(2, key_size=3), (-1, 4, 6)),
    "MaxPool": (nn.MaxPool((2, 2)), (-1, 4, 4, 1)),
    "Flatten": (nn.Flatten, (-1, 2, 3)),
    "Relu": (nn.Relu, (-1, 3)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_summary_counts_every_layer_kinds_parameters(name):
    layer, shape = LAYERS[name]
    out_shape, params = layer.init(nanofn.random.key(1), shape)
    s = nn.summary(layer, shape, params)
    assert len(s.rows) == 1
    assert s.rows[0].params == _direct_count(params)
    assert s.rows[0].output_shape == out_shape
    leaves = nanofn.tree_util.tree_leaves(params)
    assert s.total_bytes == sum(np.asarray(x).nbytes for x in leaves)


def test_summary_of_serial_has_a_row_per_layer_and_flops_of_the_dots():
    model = nn.serial(nn.Dense(16), nn.Relu, nn.serial(nn.Dense(8), nn.Tanh), nn.Dense(3))
    s = nn.summary(model, (-1, 4))
    assert [r.output_shape for r in s.rows] == [(-1, 16), (-1, 16), (-1, 8), (-1, 8), (-1, 3)]
    _, params = model.init(nanofn.random.key(0), (-1, 4))
    assert s.total_params == _direct_count(params) == 4 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3
    assert s.total_flops == 2 * (4 * 16 + 16 * 8 + 8 * 3)
    text = str(s)
    assert "total" in text and f"{s.total_params:,}" in text


def test_count_flops_of_conv_and_scan():
    conv = nn.Conv(5, (3, 3))
    _, p = conv.init(nanofn.random.key(0), (-1, 6, 6, 2))
    prog = nanofn.make_jaxpr(conv.apply)(p, fnp.ones((1, 6, 6, 2)))
    assert nn.count_flops(prog) == 2 * (4 * 4 * 5) * (3 * 3 * 2)
    w = fnp.ones((3, 3))
    scan = nanofn.make_jaxpr(lambda x: lax.scan(lambda c, _: (c @ w, None), x, None,
                                                length=7)[0])(fnp.ones((2, 3)))
    assert nn.count_flops(scan) == 7 * 2 * 2 * 3 * 3


def test_param_table_shows_shapes_not_values():
    params = {"w": fnp.full((2, 3), 123.0), "b": fnp.zeros(3, dtype="float64")}
    text = nn.param_table(params)
    assert "float32[2,3]" in text and "float64[3]" in text and "123" not in text
    assert text.splitlines()[-1] == f"total: 9 parameters, {6 * 4 + 3 * 8} B"


# ----------------------------------------------------------------------- profiler


def test_profile_shares_sum_to_the_whole_and_name_the_steps():
    def f(w, x):
        return fnp.sum(fnp.tanh(x @ w) ** 2)

    w, x = fnp.ones((32, 32)) * 0.01, fnp.ones((16, 32))
    p = profiler.profile(nanofn.grad(f), w, x, runs=5)
    assert math.isclose(sum(r.share for r in p.rows), 1.0, rel_tol=1e-9)
    names = [r.name for r in p.rows]
    assert "dot_general" in names and names[-1] == "(plan overhead)"
    assert all(r.seconds >= 0 and r.calls % 5 == 0 for r in p.rows)
    assert sorted(r.seconds for r in p.rows[:-1]) == [r.seconds for r in p.rows[:-1]][::-1]
    assert "whole plan" in str(p)
    # the profiled plan computes what the jitted function computes
    np.testing.assert_allclose(nanofn.jit(nanofn.grad(f))(w, x), nanofn.grad(f)(w, x),
                               rtol=1e-5)


def test_profile_rejects_zero_runs():
    with pytest.raises(ValueError, match="runs"):
        profiler.profile(fnp.sin, fnp.ones(3), runs=0)
