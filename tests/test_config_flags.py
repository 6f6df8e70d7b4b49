"""JAX's numerics-checking flags do in nanofn what they do in JAX.

* `jax_numpy_rank_promotion` ("allow" / "warn" / "raise"): the numpy layer's elementwise
  functions warn or raise where they would broadcast operands of different ranks;
  scalars, 0-d arrays, the batch axis of `vmap` and the functions JAX exempts are not
  checked. Which functions raise was read off JAX 0.10.2.
* `jax_numpy_dtype_promotion` ("standard" / "strict"): the table of `add(x, y)` dtypes,
  standard and strict, against JAX's, recorded by `tools/reference/record_promotion.py`
  into `tests/reference/promotion_jax.json`.
* `jax_debug_infs`: the first primitive that makes an infinity raises, eagerly, under
  `jit` and in the backward pass, as `jax_debug_nans` does for NaNs.
* The PRNG flags nanofn implements one value of raise on the others; the flags it only
  accepts keep their values and change nothing.
"""

import json
import os
import warnings

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import dtypes
from nanofn.dtypes import TypePromotionError

HERE = os.path.dirname(os.path.abspath(__file__))
A = fnp.ones((2, 3))
B = fnp.ones(3)
AI = fnp.ones((2, 3), "int32")
BI = fnp.ones(3, "int32")
MASK_A = fnp.ones((2, 3), bool)
MASK_B = fnp.ones(3, bool)

# functions JAX checks, on operands of shapes (2, 3) and (3,)
PROMOTING = {
    "add": lambda: A + B, "radd": lambda: B + A, "fnp.add": lambda: fnp.add(A, B),
    "subtract": lambda: A - B, "multiply": lambda: A * B, "true_divide": lambda: A / B,
    "floor_divide": lambda: A // B, "remainder": lambda: A % B, "power": lambda: A ** B,
    "equal": lambda: A == B, "not_equal": lambda: A != B, "less": lambda: A < B,
    "maximum": lambda: fnp.maximum(A, B), "minimum": lambda: fnp.minimum(A, B),
    "bitwise_and": lambda: AI & BI, "left_shift": lambda: fnp.left_shift(AI, BI),
    "logical_and": lambda: fnp.logical_and(MASK_A, MASK_B),
    "logical_xor": lambda: fnp.logical_xor(MASK_A, MASK_B),
    "arctan2": lambda: fnp.arctan2(A, B), "hypot": lambda: fnp.hypot(A, B),
    "logaddexp": lambda: fnp.logaddexp(A, B), "logaddexp2": lambda: fnp.logaddexp2(A, B),
    "fmod": lambda: fnp.fmod(A, B), "float_power": lambda: fnp.float_power(A, B),
    "copysign": lambda: fnp.copysign(A, B), "ldexp": lambda: fnp.ldexp(A, BI),
    "nextafter": lambda: fnp.nextafter(A, B), "isclose": lambda: fnp.isclose(A, B),
    "allclose": lambda: fnp.allclose(A, B), "clip": lambda: fnp.clip(A, B, 2.0),
    "divmod": lambda: fnp.divmod(A, B), "fmax": lambda: fnp.fmax(A, B),
    "lcm": lambda: fnp.lcm(AI, BI), "numpy operand": lambda: A + np.ones(3, np.float32),
    "3-d with 2-d": lambda: fnp.ones((2, 2, 3)) + fnp.ones((2, 3)),
}

# what JAX does not check: scalars, equal ranks, and functions that broadcast on purpose
EXEMPT = {
    "python scalar": lambda: A + 1.0, "0-d array": lambda: A + fnp.float32(1),
    "numpy scalar": lambda: A * np.float32(2), "int power": lambda: fnp.power(A, 2),
    "equal ranks": lambda: A + fnp.ones((1, 3)), "where": lambda: fnp.where(MASK_A, A, B),
    "where condition": lambda: fnp.where(MASK_B, A, A), "matmul": lambda: A @ B,
    "batched matmul": lambda: fnp.matmul(fnp.ones((2, 3, 3)), fnp.ones((3, 3))),
    "outer": lambda: fnp.outer(A, B), "subtract.outer": lambda: fnp.subtract.outer(B, B),
    "dot": lambda: fnp.dot(A, B), "einsum": lambda: fnp.einsum("ij,j->i", A, B),
    "broadcast_arrays": lambda: fnp.broadcast_arrays(A, B),
    "heaviside": lambda: fnp.heaviside(A, B), "gcd": lambda: fnp.gcd(AI, BI),
    "array_equiv": lambda: fnp.array_equiv(A, B), "isin": lambda: fnp.isin(A, B),
    "searchsorted": lambda: fnp.searchsorted(B, A), "interp": lambda: fnp.interp(A, B, B),
    "average": lambda: fnp.average(A, axis=1, weights=B), "mean": lambda: fnp.mean(A, 1),
    "var": lambda: fnp.var(A, axis=0), "std": lambda: fnp.std(A, axis=1),
    "cov": lambda: fnp.cov(A), "cov fweights": lambda: fnp.cov(A, fweights=BI),
    "corrcoef": lambda: fnp.corrcoef(A), "linspace": lambda: fnp.linspace(B, B + 1, 4),
    "nanquantile": lambda: fnp.nanquantile(A, fnp.array([0.1, 0.5]), axis=1),
    "percentile": lambda: fnp.percentile(A, 50, axis=1), "median": lambda: fnp.median(A, 0),
    "polyfit": lambda: fnp.polyfit(fnp.arange(5.0), fnp.arange(5.0), 1, w=fnp.ones(5)),
    "polyval": lambda: fnp.polyval(B, A), "kron": lambda: fnp.kron(A, B),
    "cross": lambda: fnp.cross(A, B), "norm": lambda: fnp.linalg.norm(A, axis=1),
    "unpackbits": lambda: fnp.unpackbits(fnp.arange(6, dtype=np.uint8).reshape(2, 3)),
    "packbits": lambda: fnp.packbits(fnp.ones((2, 8), np.uint8)),
    "take_along_axis": lambda: fnp.take_along_axis(A, fnp.zeros((2, 1), int), axis=1),
    "at set": lambda: A.at[:, 0].set(B[:2]), "softmax": lambda: nanofn.nn.softmax(A),
    "log_softmax": lambda: nanofn.nn.log_softmax(A),
    "logsumexp": lambda: nanofn.nn.logsumexp(A, axis=1),
    "standardize": lambda: nanofn.nn.standardize(A, axis=1),
    "one_hot": lambda: nanofn.nn.one_hot(BI, 3),
    "uniform bounds": lambda: nanofn.random.uniform(nanofn.random.key(0), (2, 3),
                                                    minval=B, maxval=B + 1),
    "categorical": lambda: nanofn.random.categorical(nanofn.random.key(0), A),
    "grad of a sum": lambda: nanofn.grad(lambda x: fnp.sum(x ** 2))(A),
    "vmap": lambda: nanofn.vmap(lambda x, y: x + y)(A, A),
    "vmap unbatched operand": lambda: nanofn.vmap(lambda x, y: x + y, in_axes=(0, None))(A, B),
}


@pytest.mark.parametrize("name", list(PROMOTING))
def test_rank_promotion_raise_names_the_shapes_and_the_flag(name):
    with nanofn.numpy_rank_promotion("raise"):
        with pytest.raises(ValueError, match="jax_numpy_rank_promotion='raise'") as info:
            PROMOTING[name]()
    assert "(3,)" in str(info.value) or "(2, 3)" in str(info.value)
    PROMOTING[name]()  # "allow" again: it broadcasts


@pytest.mark.parametrize("name", list(EXEMPT))
def test_rank_promotion_raise_leaves_what_jax_leaves(name):
    with nanofn.numpy_rank_promotion("raise"):
        EXEMPT[name]()


def test_rank_promotion_message_names_the_function_and_shapes():
    with nanofn.numpy_rank_promotion("raise"):
        with pytest.raises(ValueError, match=r"^true_divide: operands of shapes \(2, 3\) "
                                             r"\(3,\) have different ranks"):
            A / B


def test_rank_promotion_under_jit_vmap_and_grad():
    with nanofn.numpy_rank_promotion("raise"):
        with pytest.raises(ValueError, match="add: .*jax_numpy_rank_promotion"):
            nanofn.jit(lambda x, y: x + y)(A, B)
        # vmap's batch axis is not promotion; a rank mismatch inside the function is
        np.testing.assert_allclose(nanofn.vmap(lambda x: x * 2.0)(A), 2 * np.ones((2, 3)))
        with pytest.raises(ValueError, match=r"add: operands of shapes \(2, 3\) \(3,\)"):
            nanofn.vmap(lambda x: x + B)(fnp.ones((4, 2, 3)))
        with pytest.raises(ValueError, match="multiply"):
            nanofn.grad(lambda x: fnp.sum(x * B))(A)
        nanofn.jit(nanofn.vmap(lambda x, y: x - y, in_axes=(0, None)))(A, B)
        with pytest.raises(ValueError, match="add: "):  # a numpy function as the function
            nanofn.jit(fnp.add)(A, B)
        with pytest.raises(ValueError, match="multiply: "):
            nanofn.vmap(fnp.multiply)(fnp.ones((4, 2, 3)), fnp.ones((4, 3)))


def test_a_jitted_function_traced_before_the_flag_is_checked_again():
    f = nanofn.jit(lambda x, y: x + y)
    f(A, B)
    with nanofn.numpy_rank_promotion("raise"):
        with pytest.raises(ValueError, match="jax_numpy_rank_promotion"):
            f(A, B)


def test_rank_promotion_warn_warns_and_computes():
    with nanofn.numpy_rank_promotion("warn"):
        with pytest.warns(UserWarning, match=r"add: .*shapes \(2, 3\) \(3,\).*'warn'"):
            out = A + B
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            A + fnp.ones((2, 3))  # same rank: no warning
            A + 2.0
    np.testing.assert_array_equal(out, 2 * np.ones((2, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A + B  # "allow" again: no warning


def test_rank_promotion_flag_values():
    assert nanofn.config.jax_numpy_rank_promotion == "allow"
    with pytest.raises(ValueError, match="jax_numpy_rank_promotion"):
        nanofn.config.update("jax_numpy_rank_promotion", "sometimes")
    with pytest.raises(TypeError):
        nanofn.numpy_rank_promotion()  # as in JAX, the value is required
    nanofn.config.update("jax_numpy_rank_promotion", "raise")
    try:
        with pytest.raises(ValueError):
            A + B
    finally:
        nanofn.config.update("jax_numpy_rank_promotion", "allow")
    A + B


# ------------------------------------------------------------------------ dtype promotion

with open(os.path.join(HERE, "reference", "promotion_jax.json")) as _fh:
    JAX_PROMOTION = json.load(_fh)
SCALARS = {"True": True, "int": 3, "float": 2.5, "complex": 1 + 2j}


def _operand(name):
    return SCALARS[name] if name in SCALARS else fnp.ones(2, name)


def _add_outcome(x, y):
    try:
        return str(fnp.add(x, y).dtype)
    except TypePromotionError:
        return "TypePromotionError"


@pytest.mark.parametrize("mode", ["standard", "strict"])
def test_dtype_promotion_table_matches_jax(mode):
    # recorded with float64 on, where Python scalars default to 64 bits: so here too
    got = {}
    with nanofn.enable_x64(), nanofn.numpy_dtype_promotion(mode):
        for key in JAX_PROMOTION[mode]:
            a, b = key.split("+")
            got[key] = _add_outcome(_operand(a), _operand(b))
    wrong = {k: (JAX_PROMOTION[mode][k], v) for k, v in got.items()
             if v != JAX_PROMOTION[mode][k]}
    assert not wrong, f"(JAX, nanofn) differ: {wrong}"


@pytest.mark.parametrize("a, b, ok", [
    ("int32", "float32", False), ("int8", "int16", False), ("int64", "uint64", False),
    ("bool", "int32", False), ("uint8", "int8", False), ("float32", "complex64", False),
    ("float32", "float32", True), (2.0, "int32", False), (2, "int32", True),
    (2, "uint8", True), (2.0, "float16", True), (2, "float32", True), (2j, "float32", False),
    (2j, "complex64", True), (True, "int32", False), (True, "bool", True), (2, "bool", False),
])
def test_strict_promotion_pairs(a, b, ok):
    x = a if not isinstance(a, str) else fnp.ones(2, a)
    y = fnp.ones(2, b)
    with nanofn.numpy_dtype_promotion("strict"):
        if ok:
            assert (x + y).dtype == np.dtype(b)
        else:
            with pytest.raises(TypePromotionError, match="jax_numpy_dtype_promotion='strict'"):
                x + y
    x + y  # standard again


def test_strict_promotion_sees_64_bit_values_as_jax_does():
    # without x64, JAX makes every 64-bit value 32-bit before promoting, so float32 with
    # float64 is no promotion there; with x64 it is one (nanofn keeps float64 data either way)
    x = fnp.ones(2, "float32")
    with nanofn.numpy_dtype_promotion("strict"):
        assert (x + np.float64(2)).dtype == np.float64
        assert (fnp.arange(3) + np.int64(1)).dtype == np.int64
        with pytest.raises(TypePromotionError):
            x + np.int64(1)
        with nanofn.enable_x64():
            with pytest.raises(TypePromotionError, match="float32, float64"):
                x + np.float64(2)


def test_strict_promotion_allows_explicit_casts_and_same_dtypes():
    i, f = fnp.arange(3), fnp.ones(3)
    with nanofn.numpy_dtype_promotion("strict"):
        assert (i.astype("float32") + f).dtype == np.float32
        assert (fnp.asarray(i, dtype="float32") * f).dtype == np.float32
        assert fnp.array([1, 2], dtype="float32").dtype == np.float32
        assert nanofn.lax.convert_element_type(i, np.float32).dtype == np.float32
        assert (f * 2 + 1.0).dtype == np.float32 and (i * 2).dtype == np.int32
        assert fnp.sin(i).dtype == np.float32 and (i / 2).dtype == np.float32
        assert fnp.where(i > 0, f, 0.0).dtype == np.float32
        assert fnp.sum(f).dtype == np.float32 and fnp.mean(f).dtype == np.float32
        with pytest.raises(TypePromotionError):
            fnp.where(i > 0, f, i)
        with pytest.raises(TypePromotionError):
            fnp.promote_types("int32", "float32")
        with pytest.raises(TypePromotionError):
            dtypes.result_type(np.int8, np.int16)
        with pytest.raises(TypePromotionError):
            nanofn.jit(lambda a, b: a * b)(i, f)
    assert fnp.promote_types("int32", "float32") == np.float32


def test_type_promotion_error_is_jax_s():
    assert issubclass(TypePromotionError, ValueError)
    assert TypePromotionError.__module__ == "nanofn.dtypes"
    with pytest.raises(ValueError, match="jax_numpy_dtype_promotion"):
        nanofn.config.update("jax_numpy_dtype_promotion", "loose")
    with pytest.raises(TypeError):
        nanofn.numpy_dtype_promotion()


def test_result_type_weak_type_flag():
    assert dtypes.result_type(2.0, 1, return_weak_type_flag=True) == (np.float32, True)
    assert dtypes.result_type(fnp.ones(2), 1, return_weak_type_flag=True) == (np.float32,
                                                                                 False)
    assert dtypes.result_type(True, return_weak_type_flag=True) == (np.bool_, False)
    assert dtypes.result_type(float) == np.float32 and fnp.result_type(np.int8, int) == np.int8


# ------------------------------------------------------------------------ debug_infs


def test_debug_infs_names_the_primitive_eagerly():
    with nanofn.debug_infs():
        with pytest.raises(FloatingPointError,
                           match="debug_infs: primitive 'log' produced an infinity at .*test_"):
            fnp.log(fnp.array([0.0, 1.0]))
        with pytest.raises(FloatingPointError, match="'div'"):
            fnp.ones(2) / 0.0
        assert np.isnan(float(fnp.log(fnp.array(-1.0))))  # a NaN is not an infinity
        fnp.ones(2, "int32") // 1  # integers have no infinities
    assert float(fnp.log(fnp.array(0.0))) == -np.inf  # off again


def test_debug_infs_under_jit_grad_and_vmap():
    x = np.array([1000.0], np.float32)
    f = nanofn.jit(lambda v: fnp.exp(v) * 2.0)
    f(x)  # compiled (and run) without the check
    with nanofn.debug_infs():
        with pytest.raises(FloatingPointError, match="primitive 'exp' produced an infinity"):
            f(x)
        with pytest.raises(FloatingPointError, match="primitive 'exp'"):
            nanofn.jit(lambda v: fnp.exp(v) + 1.0)(x)
        with pytest.raises(FloatingPointError, match="'div'.*backward pass of 'sqrt'"):
            nanofn.grad(lambda v: fnp.sum(fnp.sqrt(v)))(fnp.array([0.0]))
        with pytest.raises(FloatingPointError, match="'div'"):
            nanofn.vmap(lambda v: 1.0 / v)(fnp.array([0.0, 1.0]))
        np.testing.assert_allclose(f(np.array([0.0], np.float32)), [2.0])
    assert float(f(x)[0]) == np.inf


def test_debug_infs_names_the_primitive_of_a_fused_plan():
    x = np.array([1000.0], np.float32)
    f = nanofn.jit(lambda v: fnp.exp(v) * 2.0)
    for _ in range(3):  # planned with fused kernels, without the check
        f(x)
    with nanofn.debug_infs():
        with pytest.raises(FloatingPointError, match="primitive 'exp' produced an infinity"):
            f(x)


def test_debug_nans_and_debug_infs_are_separate():
    with nanofn.debug_nans():
        assert float(fnp.log(fnp.array(0.0))) == -np.inf
        with pytest.raises(FloatingPointError, match="NaN"):
            fnp.log(fnp.array(-1.0))
        with nanofn.debug_infs():
            with pytest.raises(FloatingPointError, match="infinity"):
                fnp.log(fnp.array(0.0))
        assert nanofn.config.jax_debug_infs is False
    assert nanofn.config.jax_debug_nans is False


# ------------------------------------------------------------------------ context managers


CONTEXTS = [  # (context manager, flag, value it sets)
    (lambda: nanofn.numpy_rank_promotion("warn"), "jax_numpy_rank_promotion", "warn"),
    (lambda: nanofn.numpy_dtype_promotion("strict"), "jax_numpy_dtype_promotion", "strict"),
    (nanofn.debug_infs, "jax_debug_infs", True),
    (nanofn.check_tracer_leaks, "jax_check_tracer_leaks", True),
    (nanofn.checking_leaks, "jax_check_tracer_leaks", True),
    (nanofn.enable_checks, "jax_enable_checks", True),
    (nanofn.debug_key_reuse, "jax_debug_key_reuse", True),
    (nanofn.softmax_custom_jvp, "jax_softmax_custom_jvp", True),
    (lambda: nanofn.default_prng_impl("threefry2x32"), "jax_default_prng_impl",
     "threefry2x32"),
    (lambda: nanofn.legacy_prng_key("error"), "jax_legacy_prng_key", "error"),
    (nanofn.threefry_partitionable, "jax_threefry_partitionable", True),
    (lambda: nanofn.enable_custom_prng(False), "jax_enable_custom_prng", False),
]


@pytest.mark.parametrize("context, flag, value", CONTEXTS, ids=[c[1] for c in CONTEXTS])
def test_contexts_set_and_restore_on_exit_and_on_errors(context, flag, value):
    old = nanofn.config.read(flag)
    with context():
        assert nanofn.config.read(flag) == value
    assert nanofn.config.read(flag) == old
    with pytest.raises(KeyError):
        with context():
            raise KeyError("inside")
    assert nanofn.config.read(flag) == old


def test_contexts_restore_the_checks_themselves():
    with pytest.raises(RuntimeError):
        with nanofn.numpy_rank_promotion("raise"), nanofn.numpy_dtype_promotion("strict"), \
                nanofn.debug_infs():
            raise RuntimeError
    A + B  # no rank check
    assert (fnp.ones(2, "int32") + fnp.ones(2)).dtype == np.float32  # standard promotion
    assert float(fnp.log(fnp.array(0.0))) == -np.inf  # no inf check


def test_a_context_decorates_a_function():
    @nanofn.numpy_rank_promotion("raise")
    def f(x, y):
        return x + y
    with pytest.raises(ValueError):
        f(A, B)
    A + B


@pytest.mark.parametrize("flag, value, supported", [
    ("jax_default_prng_impl", "rbg", "threefry2x32"),
    ("jax_default_prng_impl", "philox4x32", "threefry2x32"),
    ("jax_threefry_partitionable", False, "True"),
    ("jax_enable_custom_prng", True, "False"),
])
def test_unsupported_prng_values_raise_clearly(flag, value, supported):
    old = nanofn.config.read(flag)
    with pytest.raises(NotImplementedError, match=f"{flag}={value!r}.*{supported}"):
        nanofn.config.update(flag, value)
    assert nanofn.config.read(flag) == old
    context = getattr(nanofn, flag[4:])
    with pytest.raises(NotImplementedError, match=repr(value)):
        with context(value):
            pass
    assert nanofn.config.read(flag) == old


def test_values_jax_does_not_know_are_value_errors():
    with pytest.raises(ValueError, match="jax_default_prng_impl"):
        nanofn.config.update("jax_default_prng_impl", "mersenne")
    with pytest.raises(ValueError, match="jax_legacy_prng_key"):
        nanofn.config.update("jax_legacy_prng_key", "sometimes")


def test_accepted_flags_change_no_result():
    key = nanofn.random.key(0)
    x = fnp.array([0.5, -1.0, 2.0])
    want = (nanofn.random.normal(key, (3,)), nanofn.grad(
        lambda v: fnp.sum(nanofn.nn.softmax(v) * fnp.arange(3.0)))(x))
    with nanofn.debug_key_reuse(), nanofn.enable_checks(), nanofn.checking_leaks(), \
            nanofn.softmax_custom_jvp(True), nanofn.legacy_prng_key("error"):
        got = (nanofn.random.normal(key, (3,)), nanofn.grad(
            lambda v: fnp.sum(nanofn.nn.softmax(v) * fnp.arange(3.0)))(x))
        nanofn.random.normal(key, (3,))  # a reused raw key: JAX does not check it either
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_enable_checks_type_checks_the_jaxprs_jit_plans():
    # A primitive whose shape rule disagrees with itself (the kind of bug enable_checks is
    # for): the jaxpr records float32, a second look says float64.
    from nanofn._core import Primitive, ShapedArray
    from nanofn.errors import JaxprTypeError
    looks = []

    def rule(x):
        looks.append(1)
        return ShapedArray(x.shape, np.float32 if len(looks) == 1 else np.float64)

    shaky = Primitive("shaky")
    shaky.abstract_eval = rule
    shaky.impl = lambda x: np.asarray(x, np.float32)
    f = lambda x: shaky.bind(x) * 2
    x = np.ones(3, np.float32)
    np.testing.assert_array_equal(nanofn.jit(f)(x), 2 * x)  # unchecked: planned as traced
    looks.clear()
    with nanofn.enable_checks(True):
        with pytest.raises(JaxprTypeError, match="jax_enable_checks: the jaxpr as traced "
                                                 "fails its type check: shaky"):
            nanofn.jit(f)(x)
