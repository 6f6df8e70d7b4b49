"""jax.numpy's keyword arguments, modes and edge shapes, with JAX's (and, where JAX follows
it, numpy's) meanings: pad modes, quantile methods and weights, unique along an axis,
set operations with NaN, ufunc methods, reductions with initial=, creation dtypes and the
polynomial helpers (values against numpy or worked by hand)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp


def _np(x):
    return np.asarray(x)


def _seed(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**31 - 1), label="seed"))


# ------------------------------------------------------------------------ pad


def test_pad_with_a_function_as_mode():
    def fill(vector, pad_width, iaxis, kwargs):  # numpy's example, written functionally
        v = vector.at[:pad_width[0]].set(kwargs.get("padder", 10))
        return v.at[vector.shape[0] - pad_width[1]:].set(kwargs.get("padder", 10))

    def np_fill(vector, pad_width, iaxis, kwargs):
        vector[:pad_width[0]] = kwargs.get("padder", 10)
        vector[vector.size - pad_width[1]:] = kwargs.get("padder", 10)

    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(_np(fnp.pad(x, 2, fill)), np.pad(x, 2, np_fill))
    np.testing.assert_array_equal(_np(fnp.pad(x, ((1, 0), (0, 2)), fill, padder=-1)),
                                  np.pad(x, ((1, 0), (0, 2)), np_fill, padder=-1))


def test_pad_of_a_0d_array_is_the_array():
    for kw in ({"constant_values": ((1, 2), (3, 4))}, {"mode": "mean", "stat_length": 3}):
        assert float(fnp.pad(np.float32(3.0), 2, **kw)) == 3.0


def test_pad_booleans_with_statistics_and_ramps():
    b = np.array([True, False, True])
    for mode, kw in (("mean", {"stat_length": 2}), ("median", {"stat_length": 2}),
                     ("linear_ramp", {}), ("linear_ramp", {"end_values": (1.5, -2)})):
        np.testing.assert_array_equal(_np(fnp.pad(b, (2, 3), mode=mode, **kw)),
                                      np.pad(b, (2, 3), mode=mode, **kw))


# ------------------------------------------------------------------------ quantiles


@given(data=st.data())
def test_quantile_methods_with_and_without_nans(data):
    rng = _seed(data)
    a = rng.normal(size=(4, 5, 3))  # float64 stays float64: compared closely with numpy
    an = a.copy()
    an[0, 1, 2] = np.nan
    an[2, :, 1] = np.nan
    method = data.draw(st.sampled_from(["linear", "lower", "higher", "midpoint", "nearest",
                                        "inverted_cdf"]), label="method")
    axis = data.draw(st.sampled_from([None, 0, -1, (0, 2)]), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    q = np.array([0.0, 0.3, 0.55, 1.0])
    np.testing.assert_allclose(
        _np(fnp.quantile(a, q, axis=axis, method=method, keepdims=keepdims)),
        np.quantile(a, q, axis=axis, method=method, keepdims=keepdims), rtol=1e-12)
    np.testing.assert_allclose(
        _np(fnp.nanquantile(an, q, axis=axis, method=method, keepdims=keepdims)),
        np.nanquantile(an, q, axis=axis, method=method, keepdims=keepdims), rtol=1e-12)
    np.testing.assert_allclose(
        _np(fnp.nanpercentile(an, 30.0, axis=axis, method=method)),
        np.nanpercentile(an, 30.0, axis=axis, method=method), rtol=1e-12)


def test_weighted_quantiles_with_inverted_cdf():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 5)).astype(np.float32)
    w = rng.uniform(size=(4, 5)).astype(np.float32)
    q = np.array([0.3, 0.55])
    for axis in (None, 0, 1):
        np.testing.assert_allclose(
            _np(fnp.quantile(a, q, axis=axis, method="inverted_cdf", weights=w)),
            np.quantile(a, q, axis=axis, method="inverted_cdf", weights=w))
    # weights of the reduced axis only
    np.testing.assert_allclose(
        _np(fnp.quantile(a, q, axis=0, method="inverted_cdf", weights=w[:, 0])),
        np.quantile(a, q, axis=0, method="inverted_cdf", weights=w[:, 0]))
    an = a.copy()
    an[1, 2] = np.nan
    np.testing.assert_allclose(
        _np(fnp.nanquantile(an, q, axis=1, method="inverted_cdf", weights=w)),
        np.nanquantile(an, q, axis=1, method="inverted_cdf", weights=w))
    with pytest.raises(NotImplementedError, match="inverted_cdf"):
        fnp.quantile(a, 0.5, weights=w)
    with pytest.raises(ValueError, match="method must be one of"):
        fnp.quantile(a, 0.5, method="hazen")
    f = nanofn.jit(lambda x, w: fnp.quantile(x, 0.5, axis=1, method="inverted_cdf", weights=w))
    np.testing.assert_allclose(_np(f(a, w)), np.quantile(a, 0.5, axis=1, method="inverted_cdf",
                                                         weights=w))


def test_average_with_weights_over_a_tuple_of_axes():
    rng = np.random.default_rng(1)
    a, w = rng.normal(size=(4, 5, 3)), rng.uniform(size=(4, 5, 3))
    for axis, ws in (((0, 2), w[:, 0, :]), ((2, 0), w[:, 0, :].T), ((1, 2), w[0])):
        full = np.broadcast_to(np.expand_dims(w[:, 0, :], 1), a.shape) if 0 in axis \
            else np.broadcast_to(w[0], a.shape)
        avg, total = fnp.average(a, axis=axis, weights=ws, returned=True)
        want, want_total = np.average(a, axis=axis, weights=full, returned=True)
        np.testing.assert_allclose(_np(avg), want)
        np.testing.assert_allclose(_np(total), want_total)


# ------------------------------------------------------------------------ unique and sets


@given(data=st.data())
def test_unique_along_an_axis_with_size(data):
    rng = _seed(data)
    x = rng.integers(0, 2, size=(5, 3, 2)).astype(np.int32)
    axis = data.draw(st.integers(-3, 2), label="axis")
    vals, index, inverse, counts = np.unique(x, True, True, True, axis=axis)
    got = fnp.unique(x, True, True, True, axis=axis)
    for g, w in zip(got, (vals, index, inverse.ravel(), counts)):
        np.testing.assert_array_equal(_np(g), w)
    k = vals.shape[axis]
    size = k + data.draw(st.integers(0, 3), label="extra")
    f = nanofn.jit(lambda x: fnp.unique(x, True, False, True, axis=axis, size=size,
                                        fill_value=7))
    v, i, c = f(x)
    np.testing.assert_array_equal(np.take(_np(v), np.arange(k), axis=axis), vals)
    assert (np.take(_np(v), np.arange(k, size), axis=axis) == 7).all()
    np.testing.assert_array_equal(_np(i)[:k], index)
    np.testing.assert_array_equal(_np(c), np.r_[counts, np.zeros(size - k, int)])


def test_unique_nan_rules():
    x = np.array([3.0, np.nan, 1.0, np.nan, 1.0], np.float32)
    assert fnp.unique(x, axis=0, equal_nan=False).shape == (4,)  # NaNs are distinct
    assert fnp.unique(x, axis=0).shape == (3,)
    # the array API functions never merge NaNs, as in numpy 2 and JAX
    assert fnp.unique_values(x).shape == np.unique_values(x).shape == (4,)
    np.testing.assert_array_equal(_np(fnp.unique_counts(x).counts), [2, 1, 1, 1])
    with pytest.raises(ValueError, match="fill_value"):
        fnp.unique(np.zeros(0), size=3)


def test_setxor1d_keeps_nans():
    a = np.array([1.0, np.nan, 2.0, 2.0])
    b = np.array([np.nan, 2.0, 3.0])
    np.testing.assert_array_equal(_np(fnp.setxor1d(a, b)), np.setxor1d(a, b))
    np.testing.assert_array_equal(_np(fnp.setxor1d(a, b[1:])), np.setxor1d(a, b[1:]))


# ------------------------------------------------------------------------ counting and finding


def test_histogram2d_bins_per_coordinate_and_bincount_inputs():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=30), rng.normal(size=30)
    bins = [np.array([-1.0, 0.0, 1.0]), 4]
    for g, w in zip(fnp.histogram2d(x, y, bins=bins), np.histogram2d(x, y, bins=bins)):
        np.testing.assert_allclose(_np(g), w)
    np.testing.assert_array_equal(_np(fnp.bincount(np.array([True, False, True]))), [1, 2])
    with pytest.raises(TypeError, match="weights must be numbers"):
        fnp.bincount(np.array([0, 1]), weights=np.array([True, False]))


def test_argwhere_fill_value_per_dimension():
    x = np.array([[0, 1, 0], [2, 0, 3]])
    got = fnp.argwhere(x, size=5, fill_value=(7, 8))
    np.testing.assert_array_equal(_np(got), np.r_[np.argwhere(x), [[7, 8], [7, 8]]])


def test_take_clip_disables_negative_indices():
    x = np.arange(12).reshape(3, 4)
    idx = np.array([0, 2, -1, 5, -7])
    for axis in (None, 0, 1):
        np.testing.assert_array_equal(_np(fnp.take(x, idx, axis=axis, mode="clip")),
                                      np.take(x, idx, axis=axis, mode="clip"))


def test_updates_accept_mode_fill():
    a = np.zeros((2, 3))
    got = fnp.put_along_axis(a, np.array([[0], [5]]), 1.0, axis=1, inplace=False, mode="fill")
    np.testing.assert_array_equal(_np(got), [[1, 0, 0], [0, 0, 0]])  # out of range: dropped
    np.testing.assert_array_equal(_np(fnp.zeros(3).at[4].set(1.0, mode="fill")), np.zeros(3))


def test_insert_with_a_slice():
    x = np.arange(12.0).reshape(3, 4)
    for axis in (None, 1):
        np.testing.assert_array_equal(_np(fnp.insert(x, slice(None, None, 2), 9.0, axis=axis)),
                                      np.insert(x, slice(None, None, 2), 9.0, axis=axis))


def test_roll_with_an_array_of_shifts():
    x = np.arange(24.0).reshape(2, 3, 4)
    want = np.roll(x, [1, -2], (0, 2))
    np.testing.assert_array_equal(_np(fnp.roll(x, np.array([1, -2]), (0, 2))), want)
    f = nanofn.jit(lambda s: fnp.roll(x, s, (0, 2)))
    np.testing.assert_array_equal(_np(f(np.array([1, -2]))), want)


def test_argmax_keepdims_without_axis_keeps_every_axis():
    x = np.arange(12.0).reshape(3, 4)
    for f, g in ((fnp.argmax, np.argmax), (fnp.argmin, np.argmin), (fnp.nanargmax, np.argmax)):
        assert f(x, keepdims=True).shape == g(x, keepdims=True).shape == (1, 1)


# ------------------------------------------------------------------------ reductions


def test_reduction_initial_takes_the_result_dtype():
    i = np.array([[1, -2, 3], [4, 0, -6]], np.int32)
    out = fnp.sum(i, axis=0, initial=2.5)  # JAX: the initial value is cast, 2.5 -> 2
    assert out.dtype == np.int32
    np.testing.assert_array_equal(_np(out), i.sum(0) + 2)
    assert fnp.prod(i, initial=2.5).dtype == np.int32
    b = i > 0
    out = fnp.max(b, axis=1, initial=5)
    assert out.dtype == bool and _np(out).all()
    assert fnp.min(b, axis=0, where=b, initial=1).dtype == bool
    assert fnp.maximum.reduce(b, axis=0, initial=3).dtype == bool


def test_nan_extrema_with_initial_and_all_nan_slices():
    x = np.array([[1.0, np.nan], [np.nan, np.nan]], np.float32)
    np.testing.assert_array_equal(_np(fnp.nanmax(x, axis=1, initial=5.0)),
                                  np.nanmax(x, axis=1, initial=5.0))
    np.testing.assert_array_equal(_np(fnp.nanmin(x, axis=1, initial=-1.0)), [-1.0, -1.0])
    assert np.isnan(_np(fnp.nanmax(x, axis=1))[1])


def test_cumulative_sums_with_a_bool_dtype():
    x = np.array([0.0, 1.5, 0.0, -2.0, 0.3], np.float32)
    for f, g in ((fnp.cumsum, np.cumsum), (fnp.cumprod, np.cumprod),
                 (fnp.nancumsum, np.nancumsum)):
        out = f(x, dtype=bool)
        assert out.dtype == bool
        np.testing.assert_array_equal(_np(out), g(x, dtype=bool))


def test_nanmean_with_an_integer_dtype():
    x = np.array([[1.0, np.nan, 2.0], [3.0, 4.0, np.nan]], np.float32)
    out = fnp.nanmean(x, axis=1, dtype=np.int32)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(_np(out), [1, 3])


# ------------------------------------------------------------------------ creation


def test_arange_with_a_dtype_and_a_fractional_step():
    for args in ((0, 5, 1.5), (1, 2, 0.3), (5.5,)):
        np.testing.assert_array_equal(_np(fnp.arange(*args, dtype=np.int32)),
                                      np.arange(*args, dtype=np.int32))


def test_linspace_with_an_integer_dtype_floors():
    for endpoint in (True, False):
        want = np.linspace(2.5, -1, 5, endpoint=endpoint, dtype=np.int32)
        np.testing.assert_array_equal(
            _np(fnp.linspace(2.5, -1, 5, endpoint=endpoint, dtype=np.int32)), want)
        got = nanofn.jit(lambda a, e=endpoint: fnp.linspace(a, -1.0, 5, endpoint=e,
                                                            dtype=np.int32))(np.float32(2.5))
        assert got.dtype == np.int32
        np.testing.assert_array_equal(_np(got), want)


def test_geomspace_with_different_signs_is_nan_inside():
    with np.errstate(invalid="ignore"):
        want = np.geomspace(-1.0, 1000.0, 4)
    np.testing.assert_array_equal(_np(fnp.geomspace(-1.0, 1000.0, 4)), want)


def test_array_order_and_r_matrix_directives():
    x = np.arange(3.0)
    assert fnp.array(x, order="K").shape == fnp.asarray(x, order=None).shape == (3,)
    with pytest.raises(NotImplementedError, match="order='K'"):
        fnp.asarray(x, order="F")
    np.testing.assert_array_equal(_np(fnp.r_["r", np.array([1, 2]), 3]), [[1, 2, 3]])
    np.testing.assert_array_equal(_np(fnp.r_["c", np.array([1, 2])]), [[1], [2]])


# ------------------------------------------------------------------------ polynomials


def test_polynomial_keywords():
    p = np.array([1.0, -3.0, 2.0, 0.5])
    np.testing.assert_array_equal(_np(fnp.polyint(p, m=0, k=1.0)), p)  # no constants used
    d = fnp.polyder(np.array([1, 2, 3]))
    assert d.dtype == np.float32  # integer coefficients give floats, as JAX
    np.testing.assert_array_equal(_np(d), [2.0, 2.0])
    np.testing.assert_array_equal(_np(fnp.polymul(np.zeros(0), np.array([2.0, 1.0]))), [0, 0])
    q, r = fnp.polydiv(p, np.array([2.0, 1.0]), trim_leading_zeros=True)
    want_q, want_r = np.polydiv(p, np.array([2.0, 1.0]))
    np.testing.assert_allclose(_np(q), want_q)
    np.testing.assert_allclose(_np(r), want_r)  # the remainder's leading zeros are dropped
    assert fnp.polydiv(p, np.array([2.0, 1.0]))[1].shape == (4,)


def test_roots_without_stripping_gives_nan_for_leading_zeros():
    p = np.array([0.0, 0.0, 1.0, 2.0])
    for f in (lambda p: fnp.roots(p, strip_zeros=False),
              nanofn.jit(lambda p: fnp.roots(p, strip_zeros=False))):
        r = _np(f(p))
        assert r.shape == (3,)
        np.testing.assert_allclose(r[0], -2.0)
        assert np.isnan(r[1:]).all()
    r = _np(fnp.roots(np.array([1.0, -3.0, 2.0, 0.0]), strip_zeros=False))
    np.testing.assert_allclose(np.sort_complex(r), [0.0, 1.0, 2.0], atol=1e-6)


def test_roots_keeps_trailing_zeros_in_the_companion_matrix():
    # JAX strips only leading zeros: a trailing zero's root comes out of the eigenvalue
    # solve in place (JAX 0.10 gives [0, 1, 2] here; numpy appends it: [2, 1, 0]).
    p = np.array([0.0, 1.0, -3.0, 2.0, 0.0])
    r = _np(fnp.roots(p))
    np.testing.assert_allclose(r, [0.0, 1.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(_np(fnp.roots(np.array([2.0, 0.0, 0.0]))), [0.0, 0.0])


# ------------------------------------------------------------------------ ufunc methods


def test_generic_ufunc_reduce_axes_where_and_result_dtype():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    np.testing.assert_array_equal(_np(fnp.bitwise_xor.reduce(x, axis=(0, 1))),
                                  np.bitwise_xor.reduce(x, axis=(0, 1)))
    wh = x % 3 > 0
    np.testing.assert_array_equal(_np(fnp.bitwise_xor.reduce(x, axis=None, where=wh)),
                                  np.bitwise_xor.reduce(x.ravel()[wh.ravel()]))
    out = fnp.logical_xor.reduce(x, axis=0)
    assert out.dtype == bool
    np.testing.assert_array_equal(_np(out), np.logical_xor.reduce(x != 0, axis=0))


def test_ufunc_accumulate_and_at_take_the_result_dtype():
    x = np.array([[2.0, 0.0, 3.0], [1.0, 5.0, 0.0]])
    out = fnp.logical_and.accumulate(x, axis=1)
    assert out.dtype == bool
    np.testing.assert_array_equal(_np(out), np.logical_and.accumulate(x != 0, axis=1))
    a = np.array([1.0, 0.0, 2.0, 3.0])
    out = fnp.logical_or.at(a, np.array([1, 1, 3]), np.array([0.0, 1.0, 0.0]), inplace=False)
    assert out.dtype == bool
    np.testing.assert_array_equal(_np(out), [True, True, True, True])
    # a tuple of index arrays, applied once per position in order
    z = np.zeros((3, 4), np.int32)
    got = fnp.bitwise_xor.at(z, (np.array([0, 0, 2]), np.array([1, 1, 3])), np.array([5, 6, 7]),
                             inplace=False)
    want = z.copy()
    np.bitwise_xor.at(want, (np.array([0, 0, 2]), np.array([1, 1, 3])), np.array([5, 6, 7]))
    np.testing.assert_array_equal(_np(got), want)


def test_negative_is_a_ufunc():
    got = fnp.negative.at(np.arange(5.0), np.array([0, 0, 2]), inplace=False)
    np.testing.assert_array_equal(_np(got), [0.0, 1.0, -2.0, 3.0, 4.0])
    assert (fnp.negative.nin, fnp.add.nin, fnp.add.nargs) == (1, 2, 2)


def test_take_along_axis_defaults_to_the_last_axis():
    x = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    idx = np.argsort(x)  # along the last axis
    np.testing.assert_array_equal(fnp.take_along_axis(x, idx), np.sort(x))
    np.testing.assert_array_equal(fnp.take_along_axis(x, idx, wrap_negative_indices=True),
                                  np.sort(x))


def test_fft_of_float16_is_complex64_and_trapezoid_promotes_y_with_x():
    half = np.ones(4, np.float16)
    assert fnp.fft.fft(half).dtype == np.complex64  # as JAX: no half-precision transform
    np.testing.assert_allclose(np.asarray(fnp.fft.fft(half)), np.fft.fft(half.astype(np.float32)))
    y, x = np.arange(4, dtype=np.int32), np.array([0.0, 0.5, 1.5, 3.0])
    got = fnp.trapezoid(y, x)
    assert got.dtype == np.float64  # float64 x decides, promoted together with y
    np.testing.assert_allclose(float(got), np.trapezoid(y, x))


def test_pinv_names_an_rtol_it_cannot_use():
    a = np.eye(3)
    np.testing.assert_allclose(fnp.linalg.pinv(a, np.float32(1e-3)), a)
    with pytest.raises(TypeError, match=r"pinv: rtol must be a concrete scalar.*shape \(3,\)"):
        fnp.linalg.pinv(a, np.ones(3))
    with pytest.raises(TypeError, match="pinv: rtol.*traced"):
        nanofn.jit(lambda m, r: fnp.linalg.pinv(m, r))(a, 1e-3)
