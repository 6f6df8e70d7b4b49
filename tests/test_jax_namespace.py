"""The `jax` namespace as programs use it (issue 13, item 2): module imports, devices and
transfers, config flags with their JAX meaning, `jax.errors` names and kinds, `Array`
isinstance on traced values, casting dtype constructors, and the small helpers."""

import importlib

import numpy as np
import pytest

import nanofn
import nanofn.numpy as jnp
from nanofn import errors


# (module, names a JAX program imports from the matching jax module)
IMPORTS = [
    ("nanofn.lax", ["scan", "while_loop", "fori_loop", "cond", "dot_general", "stop_gradient"]),
    ("nanofn.numpy", ["ndarray", "float32", "einsum"]),
    ("nanofn.numpy.linalg", ["norm", "solve", "cholesky"]),
    ("nanofn.numpy.fft", ["fft", "ifft", "rfft"]),
    ("nanofn.nn", ["relu", "softmax", "logsumexp"]),
    ("nanofn.nn.initializers", ["glorot_normal", "zeros", "normal"]),
    ("nanofn.random", ["PRNGKey", "split", "normal"]),
    ("nanofn.scipy.special", ["logsumexp", "erf"]),
    ("nanofn.scipy.linalg", ["cho_factor", "cho_solve", "solve_triangular"]),
    ("nanofn.scipy.signal", ["convolve"]),
    ("nanofn.tree_util", ["tree_map", "tree_flatten", "register_pytree_node"]),
    ("nanofn.tree", ["map", "leaves"]),
    ("nanofn.typing", ["ArrayLike", "DTypeLike"]),
    ("nanofn.dtypes", ["canonicalize_dtype", "issubdtype", "result_type", "float0", "finfo"]),
    ("nanofn.flatten_util", ["ravel_pytree"]),
    ("nanofn.errors", ["ConcretizationTypeError", "TracerArrayConversionError",
                       "TracerBoolConversionError", "TracerIntegerConversionError",
                       "UnexpectedTracerError", "KeyReuseError",
                       "NonConcreteBooleanIndexError"]),
    ("nanofn.experimental", ["ode"]),
    ("nanofn.experimental.ode", ["odeint"]),
    ("nanofn.example_libraries.stax", ["serial", "Dense"]),
    ("nanofn.example_libraries.optimizers", ["adam", "sgd"]),
]


@pytest.mark.parametrize("module, names", IMPORTS, ids=[m for m, _ in IMPORTS])
def test_from_module_import_name(module, names):
    mod = importlib.import_module(module)
    for name in names:
        assert getattr(mod, name) is not None, f"from {module} import {name}"


def test_lax_is_a_module_and_the_same_as_the_attribute():
    import nanofn.lax as lax_mod
    assert lax_mod is nanofn.lax
    assert lax_mod.scan is nanofn.ops.scan
    for name in ("errors", "typing", "dtypes", "flatten_util"):
        assert getattr(nanofn, name).__name__ == f"nanofn.{name}"


def test_devices_and_transfers():
    x = jnp.ones(3)
    (dev,) = nanofn.devices()
    assert nanofn.local_devices() == [dev] and dev.platform == "cpu"
    assert nanofn.default_backend() == "cpu"
    assert x.devices() == {dev}
    assert x.sharding.device_set == {dev} and x.sharding.is_fully_replicated
    put = nanofn.device_put({"a": np.arange(3.0, dtype=np.float32), "b": 2.0}, dev)
    assert type(put["a"]) is nanofn.Array and put["a"].dtype == np.float32
    got = nanofn.device_get({"a": x, "n": 3})
    assert type(got["a"]) is np.ndarray and got["n"] == 3
    assert nanofn.block_until_ready((x, 1)) == (x, 1)
    with pytest.raises(errors.TracerArrayConversionError, match="device_get"):
        nanofn.jit(nanofn.device_get)(x)


def test_config_flags_with_jax_meaning():
    cfg = nanofn.config
    cfg.config_with_absl()
    for name, value in [("jax_platform_name", "cpu"), ("jax_platforms", "cpu"),
                        ("jax_default_matmul_precision", "highest"),
                        ("jax_numpy_rank_promotion", "raise"), ("jax_disable_jit", False),
                        ("jax_traceback_filtering", "auto"), ("jax_debug_nans", False)]:
        old = cfg.read(name)
        cfg.update(name, value)
        assert cfg.read(name) == value and getattr(cfg, name) == value
        cfg.update(name, old)
    with pytest.raises(ValueError, match="jax_not_a_flag"):
        cfg.update("jax_not_a_flag", 1)
    with pytest.raises(ValueError, match="jax_numpy_rank_promotion"):
        cfg.update("jax_numpy_rank_promotion", "sometimes")


def test_enable_x64_makes_default_dtypes_64_bit():
    assert jnp.zeros(2).dtype == np.float32 and jnp.array([1, 2]).dtype == np.int32
    nanofn.config.update("jax_enable_x64", True)
    try:
        assert jnp.zeros(2).dtype == np.float64
        assert jnp.array([1.0, 2.0]).dtype == np.float64
        assert jnp.arange(3).dtype == np.int64
        assert jnp.sin(1).dtype == np.float64
        assert nanofn.random.normal(nanofn.random.PRNGKey(0), (2,)).dtype == np.float64
        assert nanofn.grad(lambda x: x * x)(3.0).dtype == np.float64
        assert nanofn.jit(lambda x: x + 1.0)(jnp.ones(2, jnp.float32)).dtype == np.float32
        # indices and counts take the default integer, as JAX's (int64 under x64)
        x = jnp.array([3.0, 1.0, 2.0])
        for index in (jnp.argmax(x), jnp.argsort(x), jnp.nonzero(x)[0], jnp.indices((2,)),
                      jnp.nonzero(x, size=2)[0], jnp.where(x > 1)[0],
                      jnp.bincount(jnp.array([0, 1])), jnp.sum(jnp.array([True])),
                      jnp.count_nonzero(x), jnp.sum(jnp.array([1], np.int32)),
                      nanofn.random.categorical(nanofn.random.PRNGKey(0), x)):
            assert index.dtype == np.int64
        assert nanofn.nn.one_hot(jnp.array([0]), 2).dtype == np.float64
        assert jnp.fft.fft(jnp.arange(4)).dtype == np.complex128
    finally:
        nanofn.config.update("jax_enable_x64", False)
    assert jnp.zeros(2).dtype == np.float32 and jnp.array([1.0]).dtype == np.float32
    assert jnp.argmax(jnp.array([1.0, 2.0])).dtype == np.int32
    assert jnp.sum(jnp.array([1], np.int8)).dtype == np.int32
    assert jnp.fft.fft(jnp.arange(4)).dtype == np.complex64


def test_error_names_and_kinds():
    with pytest.raises(errors.TracerBoolConversionError) as info:
        nanofn.jit(lambda x: 1.0 if x > 0 else 0.0)(1.0)
    assert isinstance(info.value, errors.ConcretizationTypeError)
    assert isinstance(info.value, TypeError)
    with pytest.raises(errors.TracerIntegerConversionError):
        nanofn.jit(lambda n: jnp.zeros(3)[: int(n)])(2)
    with pytest.raises(errors.TracerIntegerConversionError):
        nanofn.jit(lambda n: list(range(n)))(2)
    with pytest.raises(errors.TracerArrayConversionError):
        nanofn.jit(lambda x: np.asarray(x))(1.0)
    with pytest.raises(errors.NonConcreteBooleanIndexError) as info:
        nanofn.jit(lambda x: x[x > 0])(jnp.ones(3))
    assert isinstance(info.value, IndexError)
    leaked = []
    nanofn.jit(lambda x: leaked.append(x) or x)(1.0)
    with pytest.raises(errors.UnexpectedTracerError):
        leaked[0] + 1
    assert issubclass(errors.UnexpectedTracerError, TypeError)


@pytest.mark.parametrize("bad", [
    lambda: jnp.dot(jnp.ones(3), jnp.ones(4)),
    lambda: jnp.ones((2, 3)) @ jnp.ones((4, 2)),
    lambda: jnp.ones(3) + jnp.ones(4),
    lambda: jnp.ones(3).reshape(2, 2),
    lambda: jnp.concatenate([jnp.ones((2, 3)), jnp.ones((2, 4))]),
])
def test_shape_mismatch_is_a_type_error_as_in_jax(bad):
    with pytest.raises(TypeError):
        bad()
    with pytest.raises(ValueError):  # and still a ValueError, as numpy says
        bad()


def test_isinstance_array_holds_for_traced_values():
    seen = []

    def f(x):
        seen.append((isinstance(x, nanofn.Array), isinstance(x, jnp.ndarray)))
        return jnp.sum(x * x)

    x = jnp.ones(2)
    f(x)
    nanofn.grad(f)(x)
    nanofn.jit(f)(x)
    nanofn.vmap(f)(jnp.ones((2, 2)))
    assert seen == [(True, True)] * 4
    assert not isinstance(np.ones(2), nanofn.Array) and not isinstance(1.0, jnp.ndarray)


def test_dtype_constructors_cast_traced_values():
    assert nanofn.jit(lambda x: jnp.int32(x) + 1)(2.7).dtype == np.int32
    assert int(nanofn.jit(lambda x: jnp.int32(x) + 1)(2.7)) == 3
    np.testing.assert_array_equal(nanofn.vmap(jnp.float32)(jnp.arange(3)), [0.0, 1.0, 2.0])
    assert float(nanofn.grad(lambda x: jnp.float32(x) * 3.0)(1.0)) == 3.0
    assert jnp.float64(1.5).dtype == np.float64
    # still usable as dtypes
    assert jnp.zeros(2, jnp.float64).dtype == np.float64
    assert jnp.ones(2).astype(jnp.int32).dtype == np.int32
    assert jnp.ones(2).dtype == jnp.float32 and np.dtype(jnp.float32) == np.float32
    assert jnp.issubdtype(jnp.float32, jnp.floating)


def test_jacobian_named_call_named_scope_typeof():
    x = jnp.array([1.0, 2.0])
    np.testing.assert_allclose(nanofn.jacobian(lambda v: v ** 2)(x), np.diag([2.0, 4.0]))
    f = nanofn.named_call(lambda v: v * 3, name="triple")
    assert float(nanofn.grad(lambda v: f(v))(1.0)) == 3.0
    with nanofn.named_scope("block"):
        y = x + 1
    np.testing.assert_array_equal(y, [2.0, 3.0])
    t = nanofn.typeof(x)
    assert t.shape == (2,) and t.dtype == np.float32
    shapes = []
    nanofn.jit(lambda v: shapes.append(nanofn.typeof(v).shape) or v)(jnp.ones((2, 5)))
    assert shapes == [(2, 5)]


def test_ensure_compile_time_eval_computes_concrete_values_under_jit():
    def f(x):
        with nanofn.ensure_compile_time_eval():
            n = jnp.sum(jnp.arange(4))
            assert type(n) is nanofn.Array  # concrete, so int() works
        return x * int(n)

    assert float(nanofn.jit(f)(1.0)) == 6.0


def test_pure_callback_under_jit_vmap_and_its_errors():
    calls = []

    def host_sin(v):
        calls.append(np.shape(v))
        return np.sin(v)

    spec = nanofn.ShapeDtypeStruct((), jnp.float32)
    xs = jnp.arange(3.0)
    expect = np.sin(np.arange(3.0, dtype=np.float32))
    np.testing.assert_allclose(nanofn.jit(lambda x: nanofn.pure_callback(host_sin, spec, x))(
        xs[1]), expect[1], rtol=1e-6)
    calls.clear()
    out = nanofn.vmap(lambda x: nanofn.pure_callback(host_sin, spec, x))(xs)
    np.testing.assert_allclose(out, expect, rtol=1e-6)
    assert calls == [(), (), ()]  # sequential: once per example
    calls.clear()
    vspec = nanofn.ShapeDtypeStruct((), jnp.float32)
    out = nanofn.jit(nanofn.vmap(lambda x: nanofn.pure_callback(
        host_sin, vspec, x, vmap_method="expand_dims")))(xs)
    np.testing.assert_allclose(out, expect, rtol=1e-6)
    assert calls == [(3,)]
    with pytest.raises(ValueError, match="custom_jvp"):
        nanofn.grad(lambda x: nanofn.pure_callback(host_sin, spec, x))(1.0)
    with pytest.raises(TypeError, match="shape"):
        nanofn.pure_callback(lambda v: np.ones(2), spec, 1.0)


def test_ravel_pytree_round_trip_and_grad():
    from nanofn.flatten_util import ravel_pytree
    tree = {"w": jnp.ones((2, 3)), "b": (jnp.arange(2.0), jnp.array(5, jnp.int32))}
    flat, unravel = ravel_pytree(tree)
    assert flat.shape == (9,) and flat.dtype == np.float32
    back = unravel(flat)
    assert back["b"][1].dtype == np.int32 and int(back["b"][1]) == 5
    np.testing.assert_array_equal(back["w"], tree["w"])
    g = nanofn.grad(lambda v: jnp.sum(unravel(v)["w"] ** 2))(flat)
    np.testing.assert_array_equal(g, [0, 0, 0] + [2.0] * 6)
    with pytest.raises(ValueError, match=r"\(9,\)"):
        unravel(jnp.ones(4))


def test_dtypes_module():
    from nanofn import dtypes
    assert dtypes.canonicalize_dtype(jnp.float64) == np.float64
    assert dtypes.result_type(jnp.ones(1, jnp.int32), 1.0) == np.float32
    assert dtypes.issubdtype(jnp.int8, np.integer) and not dtypes.issubdtype(dtypes.float0,
                                                                               np.floating)
    assert dtypes.scalar_type_of(jnp.ones(1, jnp.int32)) is int


def test_more_lax_names():
    from nanofn import lax
    x = jnp.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])
    np.testing.assert_array_equal(lax.clamp(-1.0, x, 2.0), np.clip(np.asarray(x), -1, 2))
    np.testing.assert_array_equal(nanofn.grad(lambda v: jnp.sum(lax.clamp(-1.0, v, 2.0)))(x),
                                  [[1, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(lax.square(x), np.asarray(x) ** 2)
    np.testing.assert_allclose(lax.reciprocal(x), 1 / np.asarray(x), rtol=1e-6)
    np.testing.assert_allclose(lax.dot(x, jnp.ones(3)), [2.0, 3.0])
    assert lax.batch_matmul(jnp.ones((4, 2, 3)), jnp.ones((4, 3, 5))).shape == (4, 2, 5)
    assert lax.broadcast(jnp.ones(3), (2, 5)).shape == (2, 5, 3)
    assert lax.broadcast_shapes((2, 1), (1, 3)) == (2, 3)
    assert lax.collapse(jnp.ones((2, 3, 4)), 0, 2).shape == (6, 4)
    np.testing.assert_array_equal(lax.tile(x, (2, 1)), np.tile(np.asarray(x), (2, 1)))
    parts = lax.split(jnp.arange(5), (2, 3))
    np.testing.assert_array_equal(parts[1], [2, 3, 4])
    np.testing.assert_array_equal(lax.stack(lax.unstack(x, axis=1), axis=1), x)
    np.testing.assert_array_equal(lax.reduce_and(x > -3, (1,)), [True, False])
    np.testing.assert_array_equal(lax.reduce_or(x > 4, (1,)), [False, True])
    np.testing.assert_allclose(lax.reduce(x, -np.inf, lax.max, (0,)), [4.0, 5.0, 3.0])
    np.testing.assert_allclose(lax.reduce(x, 1.0, lax.add, (1,)), [3.0, 4.0])
    np.testing.assert_allclose(lax.reduce(x, 0.0, lambda a, b: a + b, (0,)),
                               np.asarray(x).sum(0))  # any computation: a pairwise tree
    np.testing.assert_allclose(lax.lgamma(jnp.array([3.0])), [np.log(2.0)], rtol=1e-6)
    assert lax.add_p.name == "add" and lax.while_p.name == "while"
    assert lax.optimization_barrier(x) is x


def test_flag_contexts_and_small_helpers():
    with nanofn.enable_x64():
        assert jnp.ones(1).dtype == np.float64
    assert jnp.ones(1).dtype == np.float32
    with nanofn.default_matmul_precision("highest"):
        assert nanofn.config.jax_default_matmul_precision == "highest"
    assert nanofn.config.jax_default_matmul_precision is None
    with nanofn.default_device(nanofn.devices()[0]), nanofn.transfer_guard("disallow"):
        assert float(jnp.sum(jnp.ones(2))) == 2.0
    assert nanofn.process_indices() == [0]
    assert nanofn.float0 is nanofn.dtypes.float0
    assert isinstance(nanofn.devices()[0], nanofn.Device)
    assert "numpy" in nanofn.print_environment_info(return_string=True)


def test_io_callback_runs_every_call_in_order():
    from nanofn.experimental import io_callback
    log = []

    def record(x):
        log.append(float(x))
        return np.asarray(x * 10, np.float32)

    spec = nanofn.ShapeDtypeStruct((), jnp.float32)

    def f(x):
        io_callback(record, spec, x)  # result unused: still runs (effectful)
        return io_callback(record, spec, x + 1) + 1

    out = nanofn.jit(f)(1.0)
    assert float(out) == 21.0 and log == [1.0, 2.0]
    log.clear()
    ys = nanofn.vmap(lambda x: io_callback(record, spec, x))(jnp.arange(3.0))
    np.testing.assert_array_equal(ys, [0.0, 10.0, 20.0])
    assert log == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="ordered"):
        nanofn.vmap(lambda x: io_callback(record, spec, x, ordered=True))(jnp.arange(2.0))


def test_linear_transpose_is_the_matrix_transpose():
    A = jnp.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
    f_t = nanofn.linear_transpose(lambda x: A @ x, nanofn.ShapeDtypeStruct((3,), jnp.float32))
    (xt,) = f_t(jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(xt, np.asarray(A).T @ [1.0, 2.0])
    g_t = nanofn.linear_transpose(lambda x, y: {"s": x + 2 * y}, jnp.zeros(2), jnp.zeros(2))
    ct_x, ct_y = g_t({"s": jnp.array([1.0, -1.0])})
    np.testing.assert_array_equal(ct_x, [1.0, -1.0])
    np.testing.assert_array_equal(ct_y, [2.0, -2.0])
    with pytest.raises(TypeError, match="floating point"):
        nanofn.linear_transpose(lambda n: n, jnp.zeros(2, jnp.int32))


def test_experimental_x64_contexts():
    from nanofn.experimental import disable_x64, enable_x64
    with enable_x64():
        assert jnp.zeros(1).dtype == np.float64
        with disable_x64():
            assert jnp.zeros(1).dtype == np.float32
        assert jnp.zeros(1).dtype == np.float64
    assert jnp.zeros(1).dtype == np.float32


# ------------------------------------------------------------------------ JAX's arguments


def test_jit_takes_jaxs_keyword_arguments():
    import nanofn.numpy as fnp
    f = nanofn.jit(lambda x, n: x * n, static_argnames=None, static_argnums=1,
                   donate_argnames=("x",), keep_unused=True, inline=True, in_shardings=None,
                   out_shardings=None, device=None, backend="cpu", compiler_options={})
    x = np.arange(3.0, dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(f(x, 2)), x * 2)
    np.testing.assert_array_equal(x, np.arange(3.0))  # "donated": still the caller's
    g = nanofn.jit(donate_argnums=0)(lambda x: fnp.sin(x))
    np.testing.assert_allclose(np.asarray(g(x)), np.sin(x))


def test_make_jaxpr_binds_axis_names_and_returns_shapes():
    import nanofn.numpy as fnp
    from nanofn import lax
    jaxpr = nanofn.make_jaxpr(lambda x: lax.psum(x, "i") * lax.axis_index("i"),
                              axis_env=[("i", 4)])(fnp.ones(3))
    assert [e.primitive.name for e in jaxpr.eqns][:2] == ["psum", "axis_index"]
    jaxpr, shapes = nanofn.make_jaxpr(lambda x: {"a": x, "b": (x.sum(), x[None])},
                                      return_shape=True)(fnp.ones(3))
    assert shapes == {"a": nanofn.ShapeDtypeStruct((3,), np.float32),
                      "b": (nanofn.ShapeDtypeStruct((), np.float32),
                            nanofn.ShapeDtypeStruct((1, 3), np.float32))}
    with pytest.raises(NameError, match="'j'"):
        nanofn.make_jaxpr(lambda x: lax.psum(x, "j"), axis_env=[("i", 2)])(fnp.ones(3))


def test_custom_rules_take_nondiff_argnames():
    import functools

    @functools.partial(nanofn.custom_jvp, nondiff_argnames=("n",))
    def power(x, n):
        return x ** n

    @power.defjvp
    def _(n, primals, tangents):
        (x,), (t,) = primals, tangents
        return x ** n, n * x ** (n - 1) * t
    assert float(nanofn.grad(power)(2.0, 3)) == 12.0

    @functools.partial(nanofn.custom_vjp, nondiff_argnames="scale")
    def scaled(x, scale):
        return x * scale
    scaled.defvjp(lambda x, scale: (x * scale, None), lambda scale, res, ct: (ct * scale,))
    assert float(nanofn.grad(scaled)(2.0, 5.0)) == 5.0
    with pytest.raises(ValueError, match="nondiff_argnames names 'm'"):
        nanofn.custom_jvp(lambda x, n: x, nondiff_argnames=("m",))


def test_device_functions_take_a_backend():
    assert nanofn.device_count(backend="cpu") == nanofn.device_count()
    assert nanofn.local_device_count(backend=None) == nanofn.local_device_count()
    assert nanofn.process_index(backend="cpu") == 0 and nanofn.process_count("cpu") == 1
    assert nanofn.local_devices(host_id=0) == nanofn.local_devices()
    assert nanofn.process_indices(backend="cpu") == [0]


def test_like_functions_take_shape_dtype_structs():
    import nanofn.numpy as fnp
    spec = nanofn.ShapeDtypeStruct((2, 3), np.int32)
    assert fnp.zeros_like(spec).shape == (2, 3) and fnp.zeros_like(spec).dtype == np.int32
    assert fnp.ones_like(spec, dtype=float).dtype == np.float32
    assert np.asarray(fnp.full_like(spec, 7)).tolist() == [[7] * 3] * 2


def test_only_typed_keys_have_an_extended_key_dtype():
    key = nanofn.random.key(0)
    for issubdtype in (jnp.issubdtype, nanofn.dtypes.issubdtype):
        assert issubdtype(key.dtype, nanofn.dtypes.prng_key)
        assert issubdtype(key.dtype, nanofn.dtypes.extended)
        assert not issubdtype(key.dtype, np.integer)
        for dtype in (nanofn.random.PRNGKey(0).dtype, np.float32, np.int64):
            assert not issubdtype(dtype, nanofn.dtypes.prng_key)
            assert not issubdtype(dtype, nanofn.dtypes.extended)
    assert issubclass(nanofn.dtypes.prng_key, nanofn.dtypes.extended)


def test_lax_algorithm_and_accuracy_types_are_accepted_where_jax_takes_them():
    from nanofn import lax
    x = jnp.arange(6.0).reshape(2, 3)
    want = np.asarray(x) @ np.asarray(x).T
    for precision in (lax.DotAlgorithmPreset.F32_F32_F32, lax.DotAlgorithmPreset.DEFAULT,
                      lax.DotAlgorithm(np.float32, np.float32, np.float32)):
        np.testing.assert_array_equal(jnp.matmul(x, x.T, precision=precision), want)
        np.testing.assert_array_equal(jnp.einsum("ij,kj->ik", x, x, precision=precision),
                                      want)
        np.testing.assert_array_equal(
            lax.dot_general(x, x, (((1,), (1,)), ((), ())), precision=precision), want)
    for accuracy in (lax.AccuracyMode.HIGHEST, lax.Tolerance(atol=1e-6, rtol=1e-6)):
        np.testing.assert_allclose(lax.exp(x, accuracy=accuracy), np.exp(np.asarray(x)),
                                   rtol=1e-6)
    with pytest.raises(ValueError, match="unknown precision 'sloppy'"):
        jnp.matmul(x, x.T, precision="sloppy")
    # annotations written against jax.lax evaluate
    import typing
    def f(x, precision: lax.PrecisionLike = None, dn: lax.DotDimensionNumbers = None,
          conv: lax.ConvGeneralDilatedDimensionNumbers = None):
        return x
    assert set(typing.get_type_hints(f)) == {"precision", "dn", "conv"}
    assert [a.name for a in lax.RandomAlgorithm] == ["RNG_DEFAULT", "RNG_THREE_FRY",
                                                     "RNG_PHILOX"]
