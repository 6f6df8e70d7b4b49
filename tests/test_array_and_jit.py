"""Array semantics, type promotion, the jaxpr printer, and jit's caching and errors."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp


def test_array_is_immutable_with_helpful_error():
    x = fnp.zeros(3)
    with pytest.raises(TypeError, match=r"x.at\[idx\].set"):
        x[0] = 1.0


def test_asarray_shares_memory_read_only():
    x = fnp.arange(4.0)
    a = np.asarray(x)
    b = np.asarray(x)
    assert np.shares_memory(a, b)
    assert not a.flags.writeable


def test_repr_like_jax():
    assert repr(fnp.array([1.0, 2.0])) == "Array([1., 2.], dtype=float32)"
    assert repr(fnp.array(3)) == "Array(3, dtype=int32)"


def test_weak_python_scalars_and_float64():
    x32 = fnp.ones(2)
    assert (x32 * 2.0).dtype == np.float32
    assert (x32 + 1).dtype == np.float32
    assert (fnp.array([1, 2]) + 1).dtype == np.int32
    assert (fnp.array([1, 2]) * 1.5).dtype == np.float32
    assert (np.ones(2) * x32).dtype == np.float64  # a float64 numpy array is strong
    assert fnp.sin(np.ones(2)).dtype == np.float64
    assert fnp.array([1.0]).dtype == np.float32  # arrays nanofn creates default to 32 bits


def test_operators_and_methods():
    x = fnp.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(x @ x, np.asarray(x) @ np.asarray(x))
    assert float(x.sum()) == 10.0
    np.testing.assert_allclose(x.mean(axis=0), [2.0, 3.0])
    assert x.T.shape == (2, 2) and x.reshape(4).shape == (4,)
    assert x.astype("int32").dtype == np.int32
    np.testing.assert_allclose(-x // 3, np.floor_divide(-np.asarray(x), 3))
    np.testing.assert_allclose(x % 3, np.asarray(x) % 3)
    np.testing.assert_array_equal(x > 2, np.asarray(x) > 2)
    assert int(x.argmax()) == 3
    assert x.item(3) == 4.0 and x.item(1, 0) == 3.0 and x[0, 1].item() == 2.0  # numpy's item
    with pytest.raises(ValueError, match="size 1"):
        x.item()


def test_broadcast_error_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(3,\), \(4,\) do not broadcast"):
        fnp.ones(3) + fnp.ones(4)


def test_matmul_error_names_shapes_and_contracted_dims():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\).*axis -1 of the "
                                         r"first \(size 3\) and axis -2 of the second \(size 4\)"):
        fnp.ones((2, 3)) @ fnp.ones((4, 5))


def test_make_jaxpr_prints_readable_ir():
    text = str(nanofn.make_jaxpr(lambda x: fnp.sum(fnp.sin(x)))(fnp.zeros(3)))
    assert text == ("{ lambda ; a:f32[3]. let\n    b:f32[3] = sin a\n"
                    "    c:f32[] = reduce_sum[axes=(0,)] b\n  in (c) }")


def test_jaxpr_typechecks_and_evaluates():
    from nanofn import _core
    closed = nanofn.make_jaxpr(lambda x, y: fnp.tanh(x @ y).sum())(fnp.ones((2, 3)), fnp.ones(3))
    _core.typecheck_jaxpr(closed.jaxpr)
    (out,) = closed(np.ones((2, 3), np.float32), np.ones(3, np.float32))
    np.testing.assert_allclose(float(out), 2 * np.tanh(3.0), rtol=1e-6)


def test_jit_traces_once_per_signature():
    f = nanofn.jit(lambda x, y: x * y + 1)
    f(fnp.ones(3), 2.0)
    f(fnp.zeros(3), 5.0)
    assert f.trace_count == 1
    f(fnp.ones(4), 2.0)
    assert f.trace_count == 2


def test_jit_side_effects_run_at_trace_time_only():
    calls = []

    @nanofn.jit
    def f(x):
        calls.append(1)
        return x + 1
    for _ in range(3):
        f(fnp.ones(2))
    assert len(calls) == 1


def test_jit_static_args_and_errors():
    f = nanofn.jit(lambda x, n: x * n, static_argnums=1)
    assert float(f(fnp.array(2.0), 3)) == 6.0
    g = nanofn.jit(lambda x, opts: x, static_argnames="opts")
    with pytest.raises(ValueError, match="static argument 'opts' must be hashable"):
        g(fnp.ones(1), opts=[1, 2])


def test_jit_concretization_error_names_argument():
    def f(x, y):
        return x if y > 0 else -x
    with pytest.raises(nanofn.ConcretizationError, match=r"traced argument y.*static_argnums"):
        nanofn.jit(f)(fnp.ones(2), 1.0)
    assert float(nanofn.jit(f, static_argnums=1)(fnp.ones(()), 1.0)) == 1.0


def test_leaked_tracer_is_reported():
    leaked = []

    @nanofn.jit
    def f(x):
        leaked.append(x)
        return x
    f(fnp.ones(2))
    with pytest.raises(nanofn.UnexpectedTracerError, match="leaked tracer"):
        fnp.sin(leaked[0])


def test_jit_simplifies_dead_code_and_common_subexpressions():
    def f(x):
        unused = fnp.exp(x)  # noqa: F841  dead
        a = fnp.sin(x)
        b = fnp.sin(x)  # the same value again
        return a + b + (fnp.ones(3) * 2).sum()  # a constant-foldable term
    closed = nanofn.jit(f).lower(fnp.ones(3)).compiler_ir()
    names = [e.primitive.name for e in closed.eqns]
    assert names == ["sin", "add", "add"]
    np.testing.assert_allclose(nanofn.jit(f)(fnp.ones(3)), 2 * np.sin(1.0) + 6, rtol=1e-6)


def test_jit_grad_and_grad_jit_agree():
    def loss(w, x):
        return fnp.sum(fnp.tanh(x @ w) ** 2)
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=(3, 2)), rng.normal(size=(5, 3))
    g = nanofn.grad(loss)(w, x)
    np.testing.assert_allclose(nanofn.jit(nanofn.grad(loss))(w, x), g, rtol=1e-12)
    np.testing.assert_allclose(nanofn.grad(nanofn.jit(loss))(w, x), g, rtol=1e-12)


def test_eval_shape_and_disable_jit():
    out = nanofn.eval_shape(lambda x: x @ x.T, nanofn.ShapeDtypeStruct((3, 2), np.float32))
    assert out == nanofn.ShapeDtypeStruct((3, 3), np.float32)
    calls = []
    f = nanofn.jit(lambda x: calls.append(1) or x)
    with nanofn.disable_jit():
        f(fnp.ones(1))
        f(fnp.ones(1))
    assert len(calls) == 2 and f.trace_count == 0


def test_python_scalars_returned_from_jit_take_the_default_dtypes():
    # as in JAX: a Python float that leaves a jitted function is float32, an int int32
    f = nanofn.jit(lambda w, s: (w * s, s, 3, True, 1j), static_argnames="s")
    _, s, i, b, c = f(np.ones(2, np.float32), s=2.0)
    assert (s.dtype, i.dtype, b.dtype, c.dtype) == (np.float32, np.int32, np.bool_,
                                                    np.complex64)
    cond = nanofn.jit(lambda w: nanofn.lax.cond(w > 0, lambda: 1.5, lambda: 2.5))
    assert cond(1.0).dtype == np.float32 and float(cond(-1.0)) == 2.5


def test_the_rest_of_jax_arrays_surface():
    import copy
    x = fnp.arange(4.0)
    assert float(round(fnp.asarray(2.6))) == 3.0
    q, r = divmod(x, 3.0)
    np.testing.assert_array_equal(np.asarray(q), [0, 0, 0, 1])
    np.testing.assert_array_equal(np.asarray(2 << fnp.arange(3)), [2, 4, 8])
    np.testing.assert_array_equal(np.asarray(16 >> fnp.arange(3)), [16, 8, 4])
    assert 2.0 in x and 7.0 not in x
    for dtype in (np.int32, np.uint8, np.int16):
        np.testing.assert_array_equal(np.asarray(x.view(dtype)), np.arange(4.0, dtype=np.float32)
                                      .view(dtype))
    np.testing.assert_array_equal(np.asarray(fnp.ones((2, 4), np.uint8).view(np.float32)),
                                  np.ones((2, 4), np.uint8).view(np.float32))
    with pytest.raises(ValueError, match="multiple of 4"):
        fnp.ones(3, np.uint8).view(np.float32)
    assert nanofn.jit(lambda v: v.view(np.int32))(x).dtype == np.int32
    assert x.device == nanofn.devices()[0] and x.is_ready() and x.on_device_size_in_bytes() == 16
    (shard,) = x.addressable_shards
    assert shard.device == x.device and shard.replica_id == 0
    np.testing.assert_array_equal(np.asarray(x.addressable_data(0)), np.asarray(x))
    assert copy.copy(x) is x and copy.deepcopy(x) is not x
    assert x.__array_namespace__() is fnp
    np.testing.assert_array_equal(np.asarray(x.clone()), np.asarray(x))


def test_dlpack_export_copies_unless_asked_not_to():
    x = fnp.arange(3.0)
    a = np.from_dlpack(x)  # a copy: writing into it leaves x alone
    a[0] = 9.0
    np.testing.assert_array_equal(np.asarray(x), [0.0, 1.0, 2.0])
    shared = np.from_dlpack(x, copy=False)  # shared, read-only
    assert not shared.flags.writeable
    with pytest.raises(BufferError, match="DLPack 1.0"):
        x.__dlpack__(copy=False)


def test_shards_of_a_placed_array_follow_its_sharding():
    old = nanofn.config.read("jax_num_cpu_devices")
    nanofn.config.update("jax_num_cpu_devices", 4)
    try:
        mesh = nanofn.sharding.Mesh(np.array(nanofn.devices()).reshape(2, 2), ("a", "b"))
        y = nanofn.device_put(fnp.arange(8.0).reshape(4, 2),
                              nanofn.NamedSharding(mesh, nanofn.P("a")))
        shards = y.addressable_shards
        assert [s.replica_id for s in shards] == [0, 1, 0, 1]
        np.testing.assert_array_equal(np.asarray(shards[2].data), [[4.0, 5.0], [6.0, 7.0]])
        assert y.device == y.sharding
    finally:
        nanofn.config.update("jax_num_cpu_devices", old)
