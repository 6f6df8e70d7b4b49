"""Ahead-of-time stages (`jit(f).trace / .lower / .compile`, `nanofn.stages`), and the
`jax_log_compiles` / `jax_explain_cache_misses` flags."""

import logging

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import stages
from nanofn import lax

SDS = nanofn.ShapeDtypeStruct


def _model(params, x, *, scale):
    h = fnp.tanh(x @ params["w"] + params["b"])
    return {"out": h * scale, "norm": fnp.sum(h ** 2)}


def _params(rng, n_in=3, n_out=2):
    return {"w": fnp.asarray(rng.normal(size=(n_in, n_out)), "float32"),
            "b": fnp.asarray(rng.normal(size=(n_out,)), "float32")}


def _assert_tree_close(a, b):
    la, ta = nanofn.tree_util.tree_flatten(a)
    lb, tb = nanofn.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6)


def test_compiled_call_equals_the_jitted_call_for_pytrees_and_kwargs():
    rng = np.random.default_rng(0)
    params, x = _params(rng), fnp.asarray(rng.normal(size=(5, 3)), "float32")
    f = nanofn.jit(_model)
    compiled = f.lower(params, x, scale=2.0).compile()
    assert isinstance(compiled, stages.Compiled)
    _assert_tree_close(compiled(params, x, scale=2.0), nanofn.jit(_model)(params, x, scale=2.0))
    assert compiled.in_tree == nanofn.tree_util.tree_structure(((params, x), {"scale": 2.0}))
    assert compiled.out_info == {"out": SDS((5, 2), "float32"), "norm": SDS((), "float32")}
    (p_info, x_info), kw_info = compiled.args_info
    assert p_info["w"].shape == (3, 2) and x_info.dtype == np.float32 and not x_info.donated
    assert kw_info["scale"].shape == ()


def test_static_arguments_are_left_out_of_the_compiled_call():
    f = nanofn.jit(lambda x, n, *, mode: x * n if mode == "mul" else x + n,
                   static_argnums=1, static_argnames="mode")
    compiled = f.lower(fnp.ones(3), 4, mode="mul").compile()
    np.testing.assert_array_equal(compiled(fnp.arange(3.0)), [0.0, 4.0, 8.0])
    np.testing.assert_array_equal(f.lower(fnp.ones(3), 4, mode="add").compile()(fnp.ones(3)),
                                  [5.0, 5.0, 5.0])
    assert compiled.in_tree.num_leaves == 1
    with pytest.raises(TypeError, match="input pytree"):
        compiled(fnp.ones(3), 4)


def test_lowering_shape_dtype_structs_needs_no_data():
    f = nanofn.jit(lambda a, b: fnp.maximum(a @ b, 0.0))
    lowered = f.lower(SDS((4, 3), "float32"), SDS((3, 2), np.float32))
    assert isinstance(lowered, stages.Lowered)
    assert lowered.out_info == SDS((4, 2), "float32")
    a, b = fnp.ones((4, 3)), -fnp.ones((3, 2))
    np.testing.assert_array_equal(lowered.compile()(a, b), np.zeros((4, 2)))
    assert f.trace_count == 1
    # a later plain call hits the cache the stages filled
    np.testing.assert_array_equal(f(a, b), np.zeros((4, 2)))
    assert f.trace_count == 1


@pytest.mark.parametrize("bad, match", [
    (lambda c: c(fnp.ones((2, 4))), r"Argument 'x' compiled with f32\[2,3\] and called with "
                                    r"f32\[2,4\]"),
    (lambda c: c(fnp.ones((2, 3), dtype="int32")), r"compiled with f32\[2,3\] and called "
                                                   r"with i32\[2,3\]"),
    (lambda c: c((fnp.ones((2, 3)),)), r"at x, the pytree is now"),
    (lambda c: c(fnp.ones((2, 3)), fnp.ones(1)), r"2 positional array arguments now and 1"),
    (lambda c: c(fnp.ones((2, 3)), y=1.0), r"keyword argument 'y' is new"),
])
def test_compiled_rejects_another_signature_with_a_type_error(bad, match):
    compiled = nanofn.jit(lambda x: x * 2).lower(fnp.ones((2, 3))).compile()
    with pytest.raises(TypeError, match=match):
        bad(compiled)


def test_compiled_refuses_transformations():
    compiled = nanofn.jit(lambda x: x * 2).lower(1.0).compile()
    with pytest.raises(TypeError, match="cannot be transformed"):
        nanofn.grad(lambda x: compiled(x))(1.0)


def test_compile_builds_the_plan_so_later_calls_neither_trace_nor_compile():
    f = nanofn.jit(lambda x: fnp.tanh(fnp.exp(x) * 2.0 + 1.0))
    compiled = f.lower(SDS((64,), "float32")).compile()
    entry = next(iter(f._cache.values()))
    assert entry.job is None and not entry.pending
    if nanofn.config.nanofn_use_kernels:
        assert entry.hot and any(st.kind == "fused" for st in entry.plan.steps)
    plan = entry.plan
    x = fnp.linspace(-1.0, 1.0, 64)
    expected = np.tanh(np.exp(np.asarray(x)) * 2 + 1)
    np.testing.assert_allclose(f(x), expected, rtol=1e-6)
    np.testing.assert_allclose(compiled(x), expected, rtol=1e-6)
    assert f.trace_count == 1 and entry.plan is plan  # nothing rebuilt by the calls
    assert "def plan(" in compiled.as_text()


def test_compile_after_clear_cache_puts_the_signature_back():
    f = nanofn.jit(lambda x: x + 1)
    lowered = f.lower(fnp.ones(2))
    f.clear_cache()
    compiled = lowered.compile()
    f(fnp.ones(2))
    assert f.trace_count == 1
    np.testing.assert_array_equal(compiled(fnp.zeros(2)), [1.0, 1.0])


def test_trace_jaxpr_is_make_jaxprs_and_lowering_simplifies_it():
    def f(x, y):
        a = fnp.sin(x) * y
        return a + fnp.sin(x) * y  # a common subexpression, merged when lowered
    x, y = fnp.ones(3), fnp.ones(3)
    traced = nanofn.jit(f).trace(x, y)
    assert isinstance(traced, stages.Traced)
    assert str(traced.jaxpr) == str(nanofn.make_jaxpr(f)(x, y))
    assert traced.fun_name == "f"
    assert traced.out_info == SDS((3,), "float32")
    lowered = traced.lower()
    names = [e.primitive.name for e in lowered.compiler_ir().eqns]
    assert names == ["sin", "mul", "add"]
    assert lowered.as_text() == str(lowered.compiler_ir())
    np.testing.assert_allclose(traced(x, y), 2 * np.sin(1.0), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="no MLIR or HLO"):
        lowered.compiler_ir("stablehlo")


def test_trace_of_a_cached_signature_keeps_the_cached_plan():
    f = nanofn.jit(lambda x: x * 3)
    f(fnp.ones(2))
    entry = next(iter(f._cache.values()))
    traced = f.trace(fnp.ones(2))
    assert f.trace_count == 2 and f._cache_size() == 1
    assert next(iter(f._cache.values())) is entry
    np.testing.assert_array_equal(traced.lower().compile()(fnp.ones(2)), [3.0, 3.0])


def test_eval_shape_of_a_jitted_function():
    f = nanofn.jit(lambda x, n: {"y": fnp.tile(x, n), "s": x.sum()}, static_argnums=1)
    out = f.eval_shape(SDS((2, 3), "float32"), 2)
    assert out == {"y": SDS((2, 6), "float32"), "s": SDS((), "float32")}
    assert out == nanofn.eval_shape(lambda x: {"y": fnp.tile(x, 2), "s": x.sum()},
                                    SDS((2, 3), "float32"))


def test_stages_module_names():
    assert nanofn.stages is stages
    assert isinstance(nanofn.jit(lambda x: x), stages.Wrapped)
    for name in ("Traced", "Lowered", "Compiled", "ArgInfo", "Wrapped", "CompilerOptions"):
        assert hasattr(stages, name)


@settings(max_examples=10, deadline=None)
@given(m=st.integers(1, 6), k=st.integers(1, 6), n=st.integers(1, 6), batch=st.integers(0, 3))
def test_cost_analysis_counts_matmul_flops(m, k, n, batch):
    lead = (batch,) if batch else ()
    a, b = SDS(lead + (m, k), "float32"), SDS(lead + (k, n), "float32")
    cost = nanofn.jit(lambda a, b: a @ b).lower(a, b).cost_analysis()
    assert cost["flops"] == 2 * max(batch, 1) * m * k * n
    if not batch:  # (a batched matmul may move its operands around as well)
        assert cost["bytes accessed"] == 4 * (m * k + k * n + m * n)


@settings(max_examples=10, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=0, max_size=3))
def test_cost_analysis_of_elementwise_and_reductions(shape):
    size = int(np.prod(shape))
    x = SDS(shape, "float32")
    cost = nanofn.jit(lambda x, y: x * y + x).lower(x, x).compile().cost_analysis()
    assert cost["flops"] == 2 * size and cost["transcendentals"] == 0
    assert cost["bytes accessed"] == 6 * 4 * size  # two steps, each reads 2 and writes 1
    cost = nanofn.jit(lambda x: fnp.exp(x).sum()).lower(x).cost_analysis()
    assert cost["transcendentals"] == size and cost["flops"] == size - 1
    cost = nanofn.jit(lambda x: x ** 3).lower(x).cost_analysis()
    assert cost["flops"] == 2 * size  # x * x * x


def test_cost_analysis_looks_inside_scan_and_cond():
    def f(x):
        y, _ = lax.scan(lambda c, a: (c * a, c), x, fnp.ones((5, 3)))
        return lax.cond(x[0] > 0, lambda v: v + 1.0, lambda v: v * 2.0 * v, y)
    cost = nanofn.jit(f).lower(SDS((3,), "float32")).cost_analysis()
    assert cost["flops"] == 5 * 3 + 1 + 2 * 3  # scan body 5 times; gt; the costlier branch


@settings(max_examples=10, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       dtype=st.sampled_from(["float32", "float64"]))
def test_memory_analysis_sizes_are_the_signatures(shape, dtype):
    x = SDS(shape, dtype)
    compiled = nanofn.jit(lambda x, y: (fnp.sin(x) * y).sum(0)).lower(x, x).compile()
    mem = compiled.memory_analysis()
    itemsize = np.dtype(dtype).itemsize
    assert mem.argument_size_in_bytes == 2 * itemsize * int(np.prod(shape))
    assert mem.output_size_in_bytes == itemsize * int(np.prod(shape[1:]))
    assert mem.alias_size_in_bytes == 0
    assert mem.temp_size_in_bytes == sum(compiled.runtime_executable().buffer_nbytes)
    assert mem.generated_code_size_in_bytes == len(compiled.as_text().encode())
    assert mem.host_temp_size_in_bytes == 0


def test_memory_analysis_counts_returned_arguments_as_aliases():
    compiled = nanofn.jit(lambda x, y: (x, y + 1)).lower(fnp.ones(4), fnp.ones(2)).compile()
    assert compiled.memory_analysis().alias_size_in_bytes == 16


def _messages(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "nanofn._jit" and r.levelno == logging.WARNING]


def test_log_compiles_logs_once_per_new_signature(caplog):
    def step(w, x):
        return fnp.sum(x @ w)
    f = nanofn.jit(step)
    with caplog.at_level(logging.WARNING, logger="nanofn._jit"):
        f(fnp.ones((3, 2)), fnp.ones((4, 3)))  # flag off: nothing at WARNING
        with nanofn.log_compiles():
            f(fnp.ones((3, 2)), fnp.ones((4, 3)))  # a cache hit
            f(fnp.ones((3, 2)), fnp.ones((5, 3)))
            f(fnp.ones((3, 2)), fnp.ones((5, 3)))
            f.lower(SDS((3, 2), "float64"), SDS((1, 3), "float64"))
        f(fnp.ones((3, 2)), fnp.ones((6, 3)))  # off again
    msgs = _messages(caplog)
    assert len(msgs) == 2, msgs
    assert msgs[0].startswith("Compiling jit(step) with global shapes and types "
                              "(f32[3,2], f32[5,3])")
    assert "Argument names: (w, x)" in msgs[0]
    assert "(f64[3,2], f64[1,3])" in msgs[1]
    assert not nanofn.config.jax_log_compiles


def test_log_compiles_names_static_arguments(caplog):
    f = nanofn.jit(lambda x, n: x * n, static_argnums=1)
    with caplog.at_level(logging.WARNING, logger="nanofn._jit"), nanofn.log_compiles():
        f(fnp.ones(2), 3)
    assert "Static arguments: (n=3)" in _messages(caplog)[0]


def test_explain_cache_misses_names_what_changed(caplog):
    def f(params, x, n=1):
        return params["w"] * x * n
    jf = nanofn.jit(f, static_argnames="n")
    p = {"w": fnp.ones(3)}
    with caplog.at_level(logging.WARNING, logger="nanofn._jit"):
        jf(p, fnp.ones(3))
        with nanofn.explain_cache_misses():
            jf(p, fnp.ones(3))  # a hit: nothing
            jf(p, fnp.ones(3, dtype="int32"))
            jf({"w": fnp.ones(4)}, fnp.ones(4))
            jf(p, fnp.ones(3), n=2)
            jf({"w": fnp.ones(3), "b": 1.0}, fnp.ones(3))
    msgs = _messages(caplog)
    assert len(msgs) == 4, msgs
    assert all(m.startswith("TRACING CACHE MISS at ") and __file__ in m for m in msgs)
    assert "* at x, now i32[3] and before f32[3]" in msgs[0]
    assert "* at params['w'], now f32[4] and before f32[3]" in msgs[1]
    assert "* at x, now f32[4] and before f32[3]" in msgs[1]
    assert "* static argument n: now 2 and before not given" in msgs[2]
    assert "* at params, the pytree is now" in msgs[3]


def test_explain_cache_misses_on_a_first_call(caplog):
    f = nanofn.jit(lambda x: x)
    with caplog.at_level(logging.WARNING, logger="nanofn._jit"):
        with nanofn.explain_cache_misses():
            f(1.0)
    (msg,) = _messages(caplog)
    assert "never seen function" in msg


def test_flags_are_real_config_flags():
    from nanofn import _config
    for name in ("jax_log_compiles", "jax_explain_cache_misses"):
        assert name not in _config._ACCEPTED
        assert nanofn.config.read(name) is False
        with nanofn.config._override(name, True):
            assert getattr(nanofn.config, name) is True


def test_compile_of_a_data_dependent_loop_does_not_run_it_on_zeros():
    # on zeros this loop would never end: compile() must not run the program
    f = nanofn.jit(lambda x: lax.while_loop(lambda v: v < 10.0, lambda v: v * 2.0, x))
    compiled = f.lower(SDS((), "float32")).compile()
    assert float(compiled(1.0)) == 16.0


def test_compile_of_a_checkpointed_function():
    f = nanofn.jit(nanofn.checkpoint(lambda x: fnp.sin(x) * 2.0))
    compiled = f.lower(SDS((3,), "float32")).compile()
    np.testing.assert_allclose(compiled(fnp.ones(3)), 2 * np.sin(1.0), rtol=1e-6)
    assert compiled.cost_analysis()["transcendentals"] == 3
