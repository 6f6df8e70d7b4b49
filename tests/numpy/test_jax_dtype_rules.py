"""Where JAX's result dtype differs from numpy's, nanofn follows JAX (found by running the
same programs under both): running sums keep narrow integers, float16 means and
variances are computed in float32, rounding leaves integers integers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import nanofn
import nanofn.numpy as fnp

small_ints = st.sampled_from([np.int8, np.uint8, np.int16, np.uint16])


@given(hnp.arrays(small_ints, hnp.array_shapes(max_dims=2, max_side=6)))
def test_running_sums_and_products_keep_narrow_integers(x):
    # JAX: cumsum/cumprod (and the nan versions, cumulative_prod) wrap in the input's
    # dtype; booleans count as int32; cumulative_sum widens as sum does
    for name in ("cumsum", "cumprod", "nancumsum", "nancumprod"):
        got = getattr(fnp, name)(x, axis=-1)
        assert got.dtype == x.dtype
        with np.errstate(over="ignore"):
            want = getattr(np, name)(x, axis=-1, dtype=x.dtype)
        np.testing.assert_array_equal(np.asarray(got), want)
    assert fnp.cumulative_prod(x, axis=-1).dtype == x.dtype
    assert fnp.cumulative_sum(x, axis=-1).dtype.itemsize == 4
    assert fnp.cumsum(x > 3).dtype == fnp.cumprod(x > 3).dtype == np.int32


@given(hnp.arrays(np.float16, hnp.array_shapes(min_dims=1, max_dims=2, max_side=40),
                  elements=st.floats(-2000, 2000, width=16)))
def test_float16_means_and_variances_are_computed_in_float32(x):
    wide = x.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        wants = {name: getattr(np, name)(wide, axis=0).astype(np.float16)  # rounded once
                 for name in ("mean", "var", "sum", "prod")}
        wants["std"] = np.sqrt(wants["var"])  # JAX: the root of the float16 variance
    for name, want in wants.items():
        got = getattr(fnp, name)(x, axis=0)
        assert got.dtype == np.float16
        np.testing.assert_allclose(np.asarray(got, np.float32), want.astype(np.float32),
                                   rtol=2e-3)
    # 100 copies of 1000 sum past float16's largest value; their mean does not
    assert float(fnp.mean(np.full(100, 1000.0, np.float16))) == 1000.0
    grad = nanofn.grad(lambda v: fnp.mean(v).astype(np.float32))(x)
    assert grad.dtype == np.float16


@given(hnp.arrays(st.sampled_from([np.int32, np.int64]), hnp.array_shapes(max_dims=2),
                  elements=st.integers(-10**6, 10**6)),
       st.integers(-4, 2))
def test_integers_round_to_tens_halves_to_even_as_numpy(x, decimals):
    got = fnp.round(x, decimals)  # JAX raises NotImplementedError for decimals < 0
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(got), np.round(x, decimals))


@given(hnp.arrays(np.bool_, hnp.array_shapes(max_dims=2, max_side=5)), st.booleans())
def test_arithmetic_without_a_boolean_meaning_makes_booleans_int32(x, as_operator):
    # JAX (promote_args_numeric): square, power, floor_divide, remainder, fmod and the
    # shifts compute booleans as the default int; numpy gives bool, int8 or float64
    y = np.ones_like(x)
    a, b = fnp.asarray(x), fnp.asarray(y)
    ints = x.astype(np.int32), y.astype(np.int32)
    cases = {"square": (fnp.square(a), ints[0] ** 2),
             "power 2": (a ** 2 if as_operator else fnp.power(a, 2), ints[0] ** 2),
             "power": (a ** b if as_operator else fnp.power(a, b), ints[0] ** ints[1]),
             "floor_divide": (a // b if as_operator else fnp.floor_divide(a, b),
                              ints[0] // ints[1]),
             "remainder": (a % b if as_operator else fnp.remainder(a, b), ints[0] % ints[1]),
             "fmod": (fnp.fmod(a, b), np.fmod(*ints)),
             "left_shift": (a << b if as_operator else fnp.left_shift(a, b), ints[0] << ints[1]),
             "right_shift": (a >> b if as_operator else fnp.right_shift(a, b),
                             ints[0] >> ints[1])}
    for name, (got, want) in cases.items():
        assert got.dtype == np.int32, name
        np.testing.assert_array_equal(np.asarray(got), want, err_msg=name)
    jitted = nanofn.jit(lambda u, v: (fnp.square(u), u // v, u << v))(x, y)
    assert [o.dtype for o in jitted] == [np.int32] * 3
    with pytest.raises(TypeError, match="integers"):  # JAX raises too
        fnp.gcd(a, b)


@given(st.sampled_from([np.uint8, np.int8, np.int16, np.float16]), st.integers(0, 2**31 - 1))
def test_python_numbers_stay_weakly_typed_beside_arrays(dtype, seed):
    # JAX: a Python int or float takes the array's dtype in every function, not only in the
    # operators (these converted it to a 32-bit array first, and widened the result)
    x = np.random.default_rng(seed).integers(0, 9, size=4).astype(dtype)
    k = 3.0 if np.dtype(dtype).kind == "f" else 3
    results = {"fmax": fnp.fmax(x, k), "fmin": fnp.fmin(k, x), "outer": fnp.outer(x, k),
               "kron": fnp.kron(x, k), "append": fnp.append(x, k), "clip": fnp.clip(k, x, x),
               "linalg.outer": fnp.linalg.outer(x, x), "vecdot": fnp.vecdot(x, x),
               "linalg.vecdot": fnp.linalg.vecdot(x, x)}
    for name, got in results.items():
        assert got.dtype == dtype, name
    wide = x.astype(np.float64)
    np.testing.assert_array_equal(np.asarray(results["fmax"]), np.fmax(x, k))
    np.testing.assert_array_equal(np.asarray(results["append"]), np.append(x, k).astype(dtype))
    want = np.sum(wide * wide).astype(dtype) if np.dtype(dtype).kind == "f" else \
        (x * x).sum(dtype=dtype)  # integers wrap in their dtype, as a dot product does
    np.testing.assert_allclose(np.asarray(results["vecdot"], np.float64),
                               np.float64(want), rtol=1e-2)


def test_setdiff1d_keeps_the_first_arrays_dtype():
    # numpy and JAX: the values come from ar1, in its dtype, whatever ar2's is
    a = np.array([3.0, 1.0, 2.0, 2.0], np.float32)
    out = fnp.setdiff1d(a, np.array([2 + 0j, 5j], np.complex64))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(out), [1.0, 3.0])
    big = np.array([2**24 + 1, 5], np.int32)  # not exact in float32
    out = fnp.setdiff1d(big, np.array([5.0], np.float32))
    assert out.dtype == np.int32 and np.asarray(out).tolist() == [2**24 + 1]


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint16, np.bool_])
def test_floor_ceil_trunc_leave_integers_and_rint_makes_floats(dtype):
    x = np.array([0, 1, 1, 0], dtype)
    for name in ("floor", "ceil", "trunc"):
        out = getattr(fnp, name)(x)
        assert out.dtype == dtype and isinstance(out, nanofn.Array)  # JAX: returned as is
        np.testing.assert_array_equal(np.asarray(out), x)
    assert fnp.rint(x).dtype == np.float32  # JAX: the default float
    np.testing.assert_array_equal(np.asarray(fnp.rint(np.array([0.5, 1.5, 2.5]))), [0, 2, 2])
    assert fnp.floor(2.5).dtype == np.float32 and float(fnp.trunc(-2.5)) == -2.0


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint8, np.int16, np.int32, np.uint32,
                                   np.int64, np.uint64])
def test_integers_become_float32_unless_64_bit_under_x64(x64, dtype):
    # JAX's to_inexact_dtype: up to 32 bits -> float32; 64-bit -> the default float
    x = fnp.asarray(np.array([1, 0, 1], dtype))
    want = np.float64 if np.dtype(dtype).itemsize == 8 else np.float32
    for out in (fnp.sin(x), fnp.mean(x), fnp.var(x), fnp.sqrt(x), fnp.median(x),
                fnp.quantile(x, 0.5)):
        assert out.dtype == want


def test_defaults_follow_x64(x64):
    from nanofn.scipy import linalg as sl
    assert fnp.fft.fftfreq(4).dtype == fnp.fft.rfftfreq(4).dtype == np.float64
    assert fnp.linalg.matrix_rank(np.eye(2)).dtype == np.int64
    assert fnp.linalg.lstsq(np.eye(2), np.ones(2))[2].dtype == np.int64
    assert sl.hilbert(3).dtype == sl.invhilbert(3).dtype == sl.helmert(3).dtype == np.float64
    assert sl.invpascal(3).dtype == np.float64 and sl.pascal(3).dtype == np.float32  # JAX's
    assert sl.hadamard(4).dtype == np.int64 and sl.dft(3).dtype == np.complex128


def test_defaults_without_x64():
    from nanofn.scipy import linalg as sl
    assert fnp.fft.fftfreq(4).dtype == np.float32 and sl.dft(3).dtype == np.complex64
    assert fnp.linalg.matrix_rank(np.eye(2)).dtype == np.int32 and sl.hadamard(2).dtype == np.int32
    assert fnp.sin(np.arange(3)).dtype == np.float32  # an int64 numpy array, x64 off


def test_index_results_are_the_default_int_under_x64(x64):
    # JAX returns int64 indices and counts with x64 on (int32 without)
    a = fnp.asarray(np.array([3, 1, 1, 0, 2], np.int32))
    outs = [fnp.argwhere(a > 0, size=3), fnp.flatnonzero(a), fnp.nonzero(a, size=4)[0],
            *fnp.unique(a, return_index=True, return_inverse=True, return_counts=True)[1:],
            fnp.intersect1d(a, np.array([1, 2], np.int32), return_indices=True)[1],
            fnp.triu_indices(3)[0], fnp.diag_indices(2)[0],
            fnp.ravel_multi_index((np.array([1]), np.array([2])), (3, 4))]
    assert [o.dtype for o in outs] == [np.int64] * len(outs)
    # quantiles take a's dtype whatever q's is
    q = fnp.asarray([10.0, 50.0])
    assert q.dtype == np.float64 and fnp.percentile(np.ones(3, np.float32), q).dtype == np.float32


@pytest.mark.parametrize("signed", [np.int8, np.int16, np.int32])
@pytest.mark.parametrize("flag", ["x32", "x64"])
def test_uint32_with_a_signed_int_gives_the_default_int(flag, signed, request):
    # JAX: the 64-bit int of that pair is the default int (int32 without x64); nanofn
    # keeps 64 bits only where an operand has them
    request.getfixturevalue(flag)
    a, b = np.array([1, 2], np.uint32), np.array([3, -4], signed)
    want = np.int64 if flag == "x64" else np.int32
    for got in (fnp.add(a, b), fnp.multiply(b, a), fnp.maximum(a, b), fnp.where(True, a, b),
                fnp.concatenate([a, b])):
        assert got.dtype == want
    np.testing.assert_array_equal(np.asarray(fnp.add(a, b)), [4, -2])
    assert fnp.add(a, np.array([1], np.int64)).dtype == np.int64  # a 64-bit operand
