"""nanofn.scipy's signal, ndimage, interpolate, optimize, integrate, fft and sparse.linalg
where they once differed from jax.scipy: each test pins JAX's behaviour, checked against
scipy, numpy or closed forms (no JAX needed)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.signal
from hypothesis import given
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.scipy import fft, integrate, ndimage, optimize, signal
from nanofn.scipy.interpolate import RegularGridInterpolator
from nanofn.scipy.sparse import linalg as sparse_linalg

# ------------------------------------------------------------------------ signal


@pytest.mark.parametrize("fname", ["convolve", "correlate"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
def test_zero_dimensional_convolution_is_the_product(fname, mode, method):
    out = getattr(signal, fname)(np.float32(2.0), np.float32(3.0), mode=mode, method=method)
    assert out.shape == () and out.dtype == np.float32
    assert float(out) == float(getattr(scipy.signal, fname)(2.0, 3.0, mode=mode)) == 6.0
    g = nanofn.grad(lambda u: getattr(signal, fname)(u, np.float32(3.0), mode=mode))
    assert float(g(np.float32(2.0))) == 3.0


@pytest.mark.parametrize("call", [
    lambda a, b, mode: signal.fftconvolve(a, b, mode=mode),
    lambda a, b, mode: signal.convolve(a, b, mode=mode, method="fft"),
    lambda a, b, mode: signal.correlate(a, b, mode=mode, method="fft"),
])
def test_fft_convolution_of_an_empty_input_gives_zeros(call):
    a, b = np.zeros(0, np.float32), np.ones(3, np.float32)
    full = call(a, b, "full")  # JAX: zeros of the full length 0 + 3 - 1
    assert full.shape == (2,) and full.dtype == np.float32 and not np.any(np.asarray(full))
    assert call(a, b, "same").shape == (0,)
    with pytest.raises(ValueError, match="valid"):
        call(a, b, "valid")
    two_d = signal.fftconvolve(np.zeros((3, 0), np.float32), np.ones((3, 2), np.float32),
                               axes=1)
    assert two_d.shape == (3, 1)


@given(batch=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       n1=st.integers(1, 6), n2=st.integers(1, 6), mode=st.sampled_from(["full", "same"]),
       seed=st.integers(0, 2**31 - 1))
def test_fftconvolve_over_the_last_axis_with_several_batch_axes(batch, n1, n2, mode, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(*batch, n1))
    b = rng.normal(size=(*batch, n2))
    got = signal.fftconvolve(a, b, mode=mode, axes=-1)
    np.testing.assert_allclose(got, scipy.signal.fftconvolve(a, b, mode=mode, axes=-1),
                               rtol=1e-10, atol=1e-10)


def test_fftconvolve_over_a_middle_axis():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 5, 3, 2)), rng.normal(size=(2, 3, 3, 2))
    for mode in ("full", "same", "valid"):
        np.testing.assert_allclose(signal.fftconvolve(a, b, mode=mode, axes=(1,)),
                                   scipy.signal.fftconvolve(a, b, mode=mode, axes=(1,)),
                                   atol=1e-10)


@pytest.mark.parametrize("shape, axis", [((0,), -1), ((3, 0), -1), ((0, 5), 0), ((0, 5), -1)])
def test_spectral_functions_of_an_empty_signal(shape, axis):
    x = np.zeros(shape, np.float32)
    f, p = signal.welch(x, axis=axis)
    assert f.shape == p.shape == shape
    assert f.dtype == p.dtype == np.float32
    f, p = signal.csd(x, x, axis=axis)
    assert p.shape == shape and p.dtype == np.complex64
    f, t, z = signal.stft(x, axis=axis)
    assert f.shape == t.shape == z.shape == shape and z.dtype == np.complex64
    assert float(fnp.sum(fnp.abs(z))) == 0.0


# ------------------------------------------------------------------------ ndimage


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("mode", ["constant", "nearest", "wrap", "mirror", "reflect"])
def test_map_coordinates_complex_input_with_integer_coordinates(order, mode):
    rng = np.random.default_rng(1)
    image = (rng.normal(size=(4, 5)) + 1j * rng.normal(size=(4, 5))).astype(np.complex64)
    rows, cols = np.array([0, 3, 1, 2]), np.array([4, 0, 2, 1])
    out = ndimage.map_coordinates(image, [rows, cols], order, mode=mode)
    assert out.dtype == np.complex64
    np.testing.assert_allclose(out, image[rows, cols], rtol=1e-6)
    # the same points as floats give the same samples
    as_float = ndimage.map_coordinates(image, [rows * 1.0, cols * 1.0], order, mode=mode)
    np.testing.assert_allclose(as_float, out, rtol=1e-6)


# ------------------------------------------------------------------------ interpolate


@pytest.mark.parametrize("method", ["linear", "nearest"])
def test_regular_grid_fill_value_promotes_like_jax(x64, method):
    grid = (np.array([0.0, 1.0, 2.0], np.float32),)
    values = np.array([1.0, 2.0, 4.0], np.float32)
    xi = np.array([0.5, 3.0], np.float32)
    # a Python float is weakly typed: the result keeps the values' float32
    weak = RegularGridInterpolator(grid, values, method=method, fill_value=-1.0)(xi)
    assert weak.dtype == np.float32 and float(weak[1]) == -1.0
    # a float64 array is not: float32 values with it give float64
    strong = RegularGridInterpolator(grid, values, method=method,
                                     fill_value=np.float64(-1.0))(xi)
    assert strong.dtype == np.float64 and float(strong[1]) == -1.0
    with pytest.raises(ValueError, match="fill_value"):
        RegularGridInterpolator(grid, values, fill_value=1j)


# ------------------------------------------------------------------------ fft


@pytest.mark.parametrize("name", ["dct", "idct"])
@pytest.mark.parametrize("norm", [None, "ortho"])
@pytest.mark.parametrize("n", [None, 3, 7])
def test_dct_of_complex_input_transforms_both_parts(name, norm, n):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5)) + 1j * rng.normal(size=(3, 5))
    for axis in (0, -1):
        got = getattr(fft, name)(x, n=n, axis=axis, norm=norm)
        assert got.dtype == np.complex128
        np.testing.assert_allclose(got, getattr(scipy.fft, name)(x, n=n, axis=axis, norm=norm),
                                   rtol=1e-10, atol=1e-12)
    got = getattr(fft, name + "n")(x.astype(np.complex64), norm=norm)
    assert got.dtype == np.complex64
    np.testing.assert_allclose(got, getattr(scipy.fft, name + "n")(x, norm=norm), rtol=1e-4,
                               atol=1e-5)


def test_dct_dtypes_and_axes():
    half = np.arange(4, dtype=np.float16)
    for f in (fft.dct, fft.idct, fft.dctn, fft.idctn):
        assert f(half).dtype == np.float32  # as JAX: FFTs start at 32 bits
    np.testing.assert_allclose(fft.dct(half), scipy.fft.dct(half.astype(np.float64)),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="axis"):
        fft.dct(np.ones(4), axis=1)  # was taken modulo the rank: axis 0
    with pytest.raises(ValueError, match="axis"):
        fft.idct(np.float32(1.0))
    with pytest.raises(ValueError, match="axes"):
        fft.dctn(np.ones(4), axes=(0, 1))
    with pytest.raises(ValueError, match="s"):
        fft.idctn(np.ones(4), s=(2, 4))
    ints = np.arange(4, dtype=np.int32)
    same = fft.dctn(ints, axes=())  # nothing to transform: the input as it is
    assert same.dtype == np.int32 and np.array_equal(same, ints)


def test_dct_of_int64_is_float64(x64):
    assert fft.dct(np.arange(4, dtype=np.int64)).dtype == np.float64
    assert fft.dct(np.arange(4, dtype=np.int32)).dtype == np.float32


# ------------------------------------------------------------------------ integrate


def test_trapezoid_promotes_y_and_x_together(x64):
    y, x = np.array([1, 2, 4], np.int32), np.array([0, 1, 3], np.int64)
    out = integrate.trapezoid(y, x)
    assert out.dtype == np.float64 and float(out) == np.trapezoid(y, x) == 7.5
    assert integrate.trapezoid(y, x.astype(np.int32)).dtype == np.float32


# ------------------------------------------------------------------------ sparse.linalg


def test_gmres_info_is_the_default_integer(x64):
    _, info = sparse_linalg.gmres(np.eye(3) * 2.0, np.ones(3))
    assert info.dtype == np.int64 and int(info) == 0


# ------------------------------------------------------------------------ optimize

_LBFGS = "l-bfgs-experimental-do-not-rely-on-this"


def _bowl(x):
    return fnp.sum(fnp.arange(1.0, 4.0) * (x - 2.0) ** 2)


@pytest.mark.parametrize("options, status", [({"ftol": 0.1}, 4), ({"maxgrad": 3}, 3),
                                             ({"maxfun": 5}, 2)])
def test_lbfgs_honours_ftol_maxfun_and_maxgrad(options, status):
    res = optimize.minimize(_bowl, np.zeros(3), method=_LBFGS, options=options)
    assert int(res.status) == status and not bool(res.success)
    if "maxfun" in options or "maxgrad" in options:  # counted before the last step
        limit = options.get("maxfun", options.get("maxgrad"))
        assert int(res.nfev) >= limit
    full = optimize.minimize(_bowl, np.zeros(3), method=_LBFGS)
    assert int(full.status) == 0 and bool(full.success)
    assert int(res.nit) < int(full.nit)
    np.testing.assert_allclose(full.x, [2.0, 2.0, 2.0], atol=1e-4)
