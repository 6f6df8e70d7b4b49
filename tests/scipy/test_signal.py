"""nanofn.scipy.signal and nanofn.numpy.convolve/correlate: values against scipy.signal and
numpy (hypothesis shapes, every mode, the valid-mode swap, boundaries), jit and vmap,
and gradients in both arguments against finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.scipy import signal
from nanofn.testing import check_grads

MODES = ["full", "same", "valid"]


def _pair(data, ndim, max_side=5, comparable=False):
    """Two shapes of rank `ndim` (one at least as large in every axis if `comparable`)."""
    s1 = data.draw(st.lists(st.integers(1, max_side), min_size=ndim, max_size=ndim), label="s1")
    s2 = data.draw(st.lists(st.integers(1, max_side), min_size=ndim, max_size=ndim), label="s2")
    if comparable:
        big, small = [max(a, b) for a, b in zip(s1, s2)], [min(a, b) for a, b in zip(s1, s2)]
        s1, s2 = (big, small) if data.draw(st.booleans(), label="in1 larger") else (small, big)
    return tuple(s1), tuple(s2)


def _seed(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**31 - 1), label="seed"))


def _close(got, expected, rtol=1e-10):
    got = np.asarray(got)
    assert got.shape == np.shape(expected), (got.shape, np.shape(expected))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-10)


# ------------------------------------------------------------------------ values


@pytest.mark.parametrize("name", ["convolve", "correlate"])
@given(data=st.data())
def test_numpy_convolve_correlate(name, data):
    rng = _seed(data)
    s1, s2 = _pair(data, 1, max_side=7)
    a, v = rng.normal(size=s1), rng.normal(size=s2)
    mode = data.draw(st.sampled_from(MODES), label="mode")
    _close(getattr(fnp, name)(a, v, mode), getattr(np, name)(a, v, mode))
    _close(nanofn.jit(lambda a, v: getattr(fnp, name)(a, v, mode))(a, v),
           getattr(np, name)(a, v, mode))


@pytest.mark.parametrize("name", ["convolve", "correlate", "fftconvolve"])
@given(data=st.data())
def test_nd_matches_scipy(name, data):
    rng = _seed(data)
    mode = data.draw(st.sampled_from(MODES), label="mode")
    s1, s2 = _pair(data, data.draw(st.integers(1, 3), label="ndim"), comparable=mode == "valid")
    a, b = rng.normal(size=s1), rng.normal(size=s2)
    _close(getattr(signal, name)(a, b, mode), getattr(scipy.signal, name)(a, b, mode), 1e-8)


@pytest.mark.parametrize("name", ["convolve2d", "correlate2d"])
@given(data=st.data())
def test_2d_matches_scipy(name, data):
    rng = _seed(data)
    mode = data.draw(st.sampled_from(MODES), label="mode")
    s1, s2 = _pair(data, 2, comparable=mode == "valid")
    a, b = rng.normal(size=s1), rng.normal(size=s2)
    boundary = data.draw(st.sampled_from(["fill", "wrap", "symm"]), label="boundary")
    fillvalue = data.draw(st.sampled_from([0.0, 1.5]), label="fillvalue")
    expected = getattr(scipy.signal, name)(a, b, mode, boundary=boundary, fillvalue=fillvalue)
    _close(getattr(signal, name)(a, b, mode, boundary=boundary, fillvalue=fillvalue), expected)


def test_methods_agree():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 5)), rng.normal(size=(3, 4))
    for mode in MODES:
        for name in ("convolve", "correlate"):
            _close(getattr(signal, name)(a, b, mode, method="fft"),
                   getattr(scipy.signal, name)(a, b, mode), 1e-8)


@given(data=st.data())
def test_fftconvolve_axes(data):
    rng = _seed(data)
    mode = data.draw(st.sampled_from(MODES), label="mode")
    shared = data.draw(st.integers(1, 3), label="shared")
    s1, s2 = _pair(data, 2, comparable=mode == "valid")
    where = data.draw(st.integers(0, 2), label="mapped axis")
    s1, s2 = s1[:where] + (shared,) + s1[where:], s2[:where] + (shared,) + s2[where:]
    axes = tuple(i for i in range(3) if i != where)
    a, b = rng.normal(size=s1), rng.normal(size=s2)
    _close(signal.fftconvolve(a, b, mode, axes=axes),
           scipy.signal.fftconvolve(a, b, mode, axes=axes), 1e-8)


@given(data=st.data())
def test_detrend_matches_scipy(data):
    rng = _seed(data)
    shape = tuple(data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=3), label="shape"))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    kind = data.draw(st.sampled_from(["linear", "constant"]), label="type")
    n = shape[axis]
    bp = sorted(data.draw(st.lists(st.integers(0, n), max_size=2), label="bp")) or 0
    x = rng.normal(size=shape)
    _close(signal.detrend(x, axis=axis, type=kind, bp=bp),
           scipy.signal.detrend(x, axis=axis, type=kind, bp=bp), 1e-9)


def test_bad_arguments_name_the_culprit():
    with pytest.raises(ValueError, match="mode"):
        fnp.convolve(np.ones(3), np.ones(2), "middle")
    with pytest.raises(ValueError, match="1-d"):
        fnp.correlate(np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="empty"):
        fnp.convolve(np.ones(0), np.ones(2))
    with pytest.raises(ValueError, match="same number of dimensions"):
        signal.convolve(np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="at least as large"):
        signal.convolve(np.ones((2, 5)), np.ones((3, 3)), "valid")
    with pytest.raises(ValueError, match="2-D"):
        signal.convolve2d(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="boundary"):
        signal.correlate2d(np.ones((3, 3)), np.ones((2, 2)), boundary="reflect")
    with pytest.raises(ValueError, match="method"):
        signal.convolve(np.ones(3), np.ones(2), method="magic")
    with pytest.raises(ValueError, match="same size along"):
        signal.fftconvolve(np.ones((2, 3)), np.ones((3, 3)), axes=1)
    with pytest.raises(ValueError, match="type"):
        signal.detrend(np.ones(3), type="quadratic")


# ------------------------------------------------------------------------ transforms


def test_vmap_equals_stacking():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 6, 4)), rng.normal(size=(3, 2, 3))
    for f in (lambda x, y: signal.convolve2d(x, y, "same"),
              lambda x, y: signal.correlate(x, y, "valid"),
              lambda x, y: signal.fftconvolve(x, y),
              lambda x, y: fnp.convolve(x[0], y[0], "full")):
        got = nanofn.vmap(f)(a, b)
        expected = np.stack([np.asarray(f(x, y)) for x, y in zip(a, b)])
        _close(got, expected)


@pytest.mark.parametrize("name", ["convolve", "correlate", "convolve2d", "correlate2d",
                                  "fftconvolve"])
@given(data=st.data())
def test_grads_in_both_arguments(name, data):
    rng = _seed(data)
    mode = data.draw(st.sampled_from(MODES), label="mode")
    ndim = 2 if name.endswith("2d") else data.draw(st.integers(1, 2), label="ndim")
    s1, s2 = _pair(data, ndim, max_side=4, comparable=mode == "valid")
    kwargs = {}
    if name.endswith("2d"):
        kwargs["boundary"] = data.draw(st.sampled_from(["fill", "wrap", "symm"]))
    a, b = rng.normal(size=s1), rng.normal(size=s2)
    f = lambda a, b: getattr(signal, name)(a, b, mode, **kwargs)  # noqa: E731
    check_grads(f, (a, b), order=2)


@pytest.mark.parametrize("name", ["convolve", "correlate"])
def test_numpy_grads_and_jit(name):
    rng = np.random.default_rng(2)
    for la, lv in ((5, 3), (2, 4), (1, 1)):
        a, v = rng.normal(size=la), rng.normal(size=lv)
        for mode in MODES:
            f = lambda a, v: getattr(fnp, name)(a, v, mode)  # noqa: E731
            check_grads(f, (a, v), order=2)
            check_grads(nanofn.jit(f), (a, v), order=1, modes=("rev",))


def test_convolution_gradient_identity():
    # d/da sum(convolve(a, v)) = sum(v) at every a[i] (each a[i] meets every v[j] once)
    a, v = np.arange(5.0), np.array([0.5, -1.0, 2.0])
    g = nanofn.grad(lambda a: fnp.sum(fnp.convolve(a, v)))(a)
    np.testing.assert_allclose(np.asarray(g), np.full(5, v.sum()))


def test_detrend_grads():
    x = np.random.default_rng(3).normal(size=(3, 7))
    check_grads(lambda x: signal.detrend(x, bp=[3]), (x,), order=2)
    check_grads(lambda x: signal.detrend(x, axis=0, type="constant"), (x,), order=2)
    # detrending is a projection: applying it twice changes nothing
    once = signal.detrend(x, bp=[2, 5])
    _close(signal.detrend(once, bp=[2, 5]), np.asarray(once))


# ------------------------------------------------------------------------ complex inputs



@pytest.mark.parametrize("name", ["convolve", "correlate", "convolve2d", "correlate2d",
                                  "fftconvolve"])
@pytest.mark.parametrize("mode", MODES)
def test_complex_inputs(name, mode):
    rng = np.random.default_rng(4)
    a = rng.normal(size=(4, 3)) + 1j * rng.normal(size=(4, 3))
    b = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
    for x, y in ((a, b), (b, a)):  # both orders: the valid-mode swap conjugates
        _close(getattr(signal, name)(x, y, mode), getattr(scipy.signal, name)(x, y, mode), 1e-9)
    check_grads(lambda x, y: getattr(signal, name)(x, y, mode), (a, b), order=2)


@pytest.mark.parametrize("name", ["convolve", "correlate"])
def test_numpy_complex_inputs(name):
    rng = np.random.default_rng(5)
    z = rng.normal(size=5) + 1j * rng.normal(size=5)
    w = rng.normal(size=3) + 1j * rng.normal(size=3)
    for mode in MODES:
        for x, y in ((z, w), (w, z)):
            _close(getattr(fnp, name)(x, y, mode), getattr(np, name)(x, y, mode))
        check_grads(lambda x, y: getattr(fnp, name)(x, y, mode), (z, w), order=2)


# ------------------------------------------------------------------------ spectral analysis


def _close_all(got, expected, rtol=1e-8):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        _close(g, e, rtol)


SPECTRAL_KWARGS = [{}, {"nperseg": 16}, {"nperseg": 16, "noverlap": 4, "nfft": 20},
                   {"nperseg": 10, "detrend": "linear"}, {"nperseg": 16, "scaling": "spectrum"},
                   {"nperseg": 16, "average": "median"}, {"nperseg": 9, "return_onesided": False},
                   {"nperseg": 16, "window": "hamming"}, {"nperseg": 8, "window": np.ones(8)}]


@pytest.mark.filterwarnings("ignore:.*nperseg.*greater:UserWarning")
@pytest.mark.parametrize("kwargs", SPECTRAL_KWARGS, ids=str)
def test_welch_and_csd_match_scipy(kwargs):
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(2, 50)), rng.normal(size=(2, 50))
    _close_all(signal.welch(x, **kwargs), scipy.signal.welch(x, **kwargs))
    _close_all(signal.csd(x, y, **kwargs), scipy.signal.csd(x, y, **kwargs))
    _close_all(signal.welch(x.T, axis=0, **kwargs), scipy.signal.welch(x.T, axis=0, **kwargs))


@pytest.mark.parametrize("kwargs", [
    {"nperseg": 16}, {"nperseg": 16, "boundary": "even"}, {"nperseg": 16, "boundary": "odd"},
    {"nperseg": 16, "boundary": None, "padded": False},
    {"nperseg": 15, "boundary": "constant", "detrend": "constant"},
    {"nperseg": 16, "return_onesided": False}], ids=str)
def test_stft_matches_scipy(kwargs):
    x = np.random.default_rng(7).normal(size=(2, 50))
    _close_all(signal.stft(x, **kwargs), scipy.signal.stft(x, **kwargs))


def test_spectral_grads_and_complex_inputs():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=40), rng.normal(size=40)
    z = x + 1j * y
    _close_all(signal.welch(z, nperseg=16), scipy.signal.welch(z, nperseg=16,
                                                                return_onesided=False))
    _close_all(signal.stft(z, nperseg=16), scipy.signal.stft(z, nperseg=16,
                                                              return_onesided=False))
    check_grads(lambda x: signal.welch(x, nperseg=16)[1], (x,), order=2)
    check_grads(lambda x, y: signal.welch(x + 0.5 * y, nperseg=8, average="median")[1],
                (x, y), order=1)
    if hasattr(nanofn.lax, "conj"):  # complex outputs and inputs in check_grads
        check_grads(lambda x, y: signal.csd(x, y, nperseg=16, detrend="linear")[1], (x, y),
                    order=1)
        check_grads(lambda x: signal.stft(x, nperseg=8)[2], (x,), order=1)
        check_grads(lambda z: signal.welch(z, nperseg=16)[1], (z,), order=1)
    with pytest.raises(ValueError, match="noverlap"):
        signal.welch(x, nperseg=8, noverlap=8)
    with pytest.raises(ValueError, match="scaling"):
        signal.welch(x, nperseg=8, scaling="loud")


@pytest.mark.parametrize("stft_kwargs,istft_kwargs", [
    ({"nperseg": 16}, {"nperseg": 16}),
    ({"nperseg": 16}, {}),                                   # nperseg from the frequencies
    ({"nperseg": 15}, {"nperseg": 15}),                      # odd: no FFT padding
    ({"nperseg": 16, "noverlap": 12, "nfft": 20}, {"nperseg": 16, "noverlap": 12, "nfft": 20}),
    ({"nperseg": 16, "window": "hamming"}, {"nperseg": 16, "window": "hamming"}),
    ({"nperseg": 8, "boundary": None, "padded": False}, {"nperseg": 8, "boundary": False}),
    ({"nperseg": 16, "return_onesided": False}, {"nperseg": 16, "input_onesided": False}),
], ids=str)
@pytest.mark.filterwarnings("ignore:NOLA condition failed:UserWarning")
def test_istft_matches_scipy_and_inverts_stft(stft_kwargs, istft_kwargs):
    x = np.random.default_rng(9).normal(size=(2, 48))
    z = scipy.signal.stft(x, **stft_kwargs)[2]
    t, y = signal.istft(z, **istft_kwargs)
    t_ref, y_ref = scipy.signal.istft(z, **istft_kwargs)
    _close(t, t_ref)
    _close(y, y_ref, 1e-7)
    n = min(48, y.shape[-1])
    first = 0 if istft_kwargs.get("boundary", True) else 1  # hann(0) = 0 without boundary
    _close(np.asarray(y)[..., first:n].real, x[..., first:n], 1e-7)  # the signal comes back


def test_istft_axes_grads_and_errors():
    rng = np.random.default_rng(10)
    z = scipy.signal.stft(rng.normal(size=(3, 40)), nperseg=8)[2]      # (3, freqs, segs)
    moved = np.moveaxis(z, 0, -1)                                        # (freqs, segs, 3)
    _close(signal.istft(moved, nperseg=8, freq_axis=0, time_axis=1)[1],
           scipy.signal.istft(moved, nperseg=8, freq_axis=0, time_axis=1)[1], 1e-7)
    # linear in Zxx: gradients in the real and imaginary directions, and under jit
    check_grads(lambda z: signal.istft(z, nperseg=8)[1], (z[0],), order=1)
    _close(nanofn.jit(lambda z: signal.istft(z, nperseg=8)[1])(z), signal.istft(z, nperseg=8)[1])
    with pytest.raises(ValueError, match="differ"):
        signal.istft(z, time_axis=1, freq_axis=1)
    with pytest.raises(ValueError, match="noverlap"):
        signal.istft(z, nperseg=8, noverlap=8)
    with pytest.raises(ValueError, match="nfft"):
        signal.istft(z, nperseg=8, nfft=4)
