"""nanofn.numpy.fft and the fft primitive: values against numpy.fft, jit and vmap laws,
gradients against finite differences in float64 (through real and imaginary parts, so
both directions of every complex input and output are checked), and reverse mode against
JAX's answers for complex cotangents (recorded by tools/reference/record_fft_reference.py).
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import lax
from nanofn.testing import check_grads

ONE_AXIS = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"]
MANY_AXES = ["fftn", "ifftn", "rfftn", "irfftn", "fft2", "ifft2", "rfft2", "irfft2"]
REAL_IN = {"rfft", "ihfft", "rfftn", "rfft2"}
NORMS = [None, "backward", "ortho", "forward"]


@pytest.fixture(autouse=True)
def _no_complex_warnings():
    with warnings.catch_warnings():  # real parts are taken by casting on purpose below
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        yield


def _input(rng, name, shape):
    x = rng.normal(size=shape)
    return x if name in REAL_IN else x + 1j * rng.normal(size=shape)


def _re(z):
    return lax.convert_element_type(z, np.float64)


def _im(z):
    return _re(z * np.complex128(-1j))


def _parts(y):
    """A complex result as its real and imaginary parts (check_grads takes real outputs)."""
    return (_re(y), _im(y)) if np.dtype(y.dtype).kind == "c" else (y,)


def _from_parts(name, re, im):
    if name in REAL_IN:
        return re
    c = lax.convert_element_type
    return c(re, np.complex128) + c(im, np.complex128) * np.complex128(1j)


# ------------------------------------------------------------------------ values


@pytest.mark.parametrize("name", ONE_AXIS)
@given(data=st.data())
def test_one_axis_matches_numpy(name, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1), label="seed"))
    ndim = data.draw(st.integers(1, 3), label="ndim")
    shape = tuple(data.draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
    axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
    n = data.draw(st.one_of(st.none(), st.integers(1, 9)), label="n")
    if name in ("irfft", "hfft") and n is None and shape[axis] == 1:
        n = 2  # numpy's default length 2 * (1 - 1) = 0 is an error in both
    norm = data.draw(st.sampled_from(NORMS), label="norm")
    x = _input(rng, name, shape)
    got = getattr(fnp.fft, name)(x, n=n, axis=axis, norm=norm)
    expected = getattr(np.fft, name)(x, n=n, axis=axis, norm=norm)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-10, atol=1e-10)
    jitted = nanofn.jit(lambda v: getattr(fnp.fft, name)(v, n=n, axis=axis, norm=norm))(x)
    np.testing.assert_allclose(np.asarray(jitted), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", MANY_AXES)
@given(data=st.data())
def test_many_axes_match_numpy(name, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1), label="seed"))
    two = name.endswith("2")
    ndim = data.draw(st.integers(2 if two else 1, 5), label="ndim")
    shape = tuple(data.draw(st.lists(st.integers(2, 4), min_size=ndim, max_size=ndim)))
    k = 2 if two else data.draw(st.integers(1, ndim), label="k")
    axes = tuple(data.draw(st.permutations(range(ndim)), label="axes")[:k])
    s = data.draw(st.one_of(st.none(), st.lists(st.integers(1, 5), min_size=k, max_size=k)),
                  label="s")
    norm = data.draw(st.sampled_from(NORMS), label="norm")
    x = _input(rng, name, shape)
    kwargs = {"s": s, "axes": axes, "norm": norm}
    got = getattr(fnp.fft, name)(x, **kwargs)
    expected = getattr(np.fft, name)(x, **kwargs)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-9, atol=1e-9)


def test_dtypes_follow_jax():
    x32 = np.arange(4, dtype=np.float32)
    assert fnp.fft.fft(x32).dtype == np.complex64
    assert fnp.fft.rfft(x32).dtype == np.complex64
    assert fnp.fft.irfft(fnp.fft.rfft(x32)).dtype == np.float32
    assert fnp.fft.fft(np.arange(4)).dtype == np.complex64  # integers: the default float
    assert fnp.fft.fft(x32.astype(np.float64)).dtype == np.complex128
    assert fnp.fft.irfft(np.ones(3, np.complex128)).dtype == np.float64
    np.testing.assert_allclose(np.asarray(fnp.fft.irfft(fnp.fft.rfft(x32))), x32, atol=1e-6)


def test_freqs_and_shifts_match_numpy():
    for n in (1, 4, 7):
        for d in (1.0, 0.1):
            np.testing.assert_allclose(np.asarray(fnp.fft.fftfreq(n, d)), np.fft.fftfreq(n, d),
                                       rtol=1e-6)
            np.testing.assert_allclose(np.asarray(fnp.fft.rfftfreq(n, d)),
                                       np.fft.rfftfreq(n, d), rtol=1e-6)
    assert fnp.fft.fftfreq(4, dtype=np.float64).dtype == np.float64
    x = np.arange(30.0).reshape(5, 6)
    for axes in (None, 0, 1, (0, 1), (1,)):
        np.testing.assert_array_equal(np.asarray(fnp.fft.fftshift(x, axes)),
                                      np.fft.fftshift(x, axes))
        np.testing.assert_array_equal(np.asarray(fnp.fft.ifftshift(x, axes)),
                                      np.fft.ifftshift(x, axes))


def test_bad_arguments_name_the_culprit():
    with pytest.raises(ValueError, match="norm"):
        fnp.fft.fft(np.ones(4), norm="sideways")
    with pytest.raises(TypeError, match="real"):
        fnp.fft.rfft(np.ones(4, np.complex64))
    with pytest.raises(ValueError, match="repeated axes"):
        fnp.fft.fftn(np.ones((2, 2)), axes=(0, 0))
    with pytest.raises(ValueError, match="exactly 2 axes"):
        fnp.fft.fft2(np.ones((2, 2, 2)), axes=(0, 1, 2))
    with pytest.raises(ValueError, match="positive"):
        fnp.fft.fftn(np.ones((2, 2)), s=(0, 2))
    with pytest.raises(ValueError, match="fft_lengths"):
        lax.fft(np.ones((2, 3), np.complex64), "FFT", (4,))
    with pytest.raises(ValueError, match="fft_type"):
        lax.fft(np.ones(3), "DCT", (3,))
    with pytest.raises(TypeError, match="complex"):
        from nanofn.ops._fft import fft_p
        fft_p.abstract_eval(nanofn._core.ShapedArray((3,), np.float32), fft_type=lax.FftType.FFT,
                            fft_lengths=(3,))


# ------------------------------------------------------------------------ transforms


@pytest.mark.parametrize("name", ["fft", "rfft", "irfft", "fftn", "irfftn", "ihfft"])
@pytest.mark.parametrize("batch", [0, 3])
def test_vmap_equals_stacking(name, batch):
    rng = np.random.default_rng(batch)
    x = _input(rng, name, (batch, 2, 5))
    kwargs = {"axes": (0, 1)} if name.endswith("n") else {"axis": 0}
    f = lambda v: getattr(fnp.fft, name)(v, **kwargs)  # noqa: E731
    got = nanofn.vmap(f, in_axes=1)(np.moveaxis(x, 0, 1))
    expected = np.stack([getattr(np.fft, name)(v, **kwargs) for v in x]) if batch else \
        got  # empty batch: the shape is the law
    assert got.shape[0] == batch
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-10, atol=1e-10)
    if not batch:
        one = getattr(np.fft, name)(_input(rng, name, (2, 5)), **kwargs)
        assert got.shape[1:] == one.shape and got.dtype == one.dtype


def _check(name, kwargs, shape, seed, order=2):
    rng = np.random.default_rng(seed)
    re, im = rng.normal(size=shape), rng.normal(size=shape)

    def f(re, im):
        return _parts(getattr(fnp.fft, name)(_from_parts(name, re, im), **kwargs))

    check_grads(f, (re, im), order=order, modes=("fwd", "rev"))
    check_grads(nanofn.jit(f), (re, im), order=1, modes=("rev",))


@pytest.mark.parametrize("name", ONE_AXIS)
@given(data=st.data())
def test_one_axis_grads(name, data):
    ndim = data.draw(st.integers(1, 2), label="ndim")
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
    n = data.draw(st.one_of(st.none(), st.integers(1, 7)), label="n")
    if name in ("irfft", "hfft") and n is None and shape[axis] == 1:
        n = 1
    norm = data.draw(st.sampled_from(NORMS), label="norm")
    _check(name, {"n": n, "axis": axis, "norm": norm}, shape, data.draw(st.integers(0, 99)))


@pytest.mark.parametrize("name", MANY_AXES)
@given(data=st.data())
def test_many_axes_grads(name, data):
    two = name.endswith("2")
    ndim = data.draw(st.integers(2 if two else 1, 4), label="ndim")
    shape = tuple(data.draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim)))
    k = 2 if two else data.draw(st.integers(1, ndim), label="k")
    axes = tuple(data.draw(st.permutations(range(ndim)), label="axes")[:k])
    s = data.draw(st.one_of(st.none(), st.lists(st.integers(1, 4), min_size=k, max_size=k)),
                  label="s")
    if s is None and name.startswith("irfft") and shape[axes[-1]] == 1:
        s = [shape[a] for a in axes[:-1]] + [1]
    _check(name, {"s": s, "axes": axes}, shape, data.draw(st.integers(0, 99)), order=1)


@pytest.mark.parametrize("fft_type", ["FFT", "IFFT", "RFFT", "IRFFT"])
@pytest.mark.parametrize("lengths", [(4,), (3,), (2, 3), (3, 2, 4)])
def test_primitive_grads_and_vmap_of_grad(fft_type, lengths):
    rng = np.random.default_rng(len(lengths))
    name = "rfft" if fft_type == "RFFT" else "fft"
    shape = (2,) + (lengths if fft_type != "IRFFT" else lengths[:-1] + (lengths[-1] // 2 + 1,))
    re, im = rng.normal(size=shape), rng.normal(size=shape)

    def f(re, im):
        return _parts(lax.fft(_from_parts(name, re, im), fft_type, lengths))

    check_grads(f, (re, im), order=2)
    loss = lambda re, im: sum(fnp.sum(p * p) for p in f(re, im))  # noqa: E731
    g = nanofn.vmap(nanofn.grad(loss, argnums=(0, 1)))(re, im)
    for i in range(2):
        gi = nanofn.grad(loss, argnums=(0, 1))(re[i], im[i])
        np.testing.assert_allclose(np.asarray(g[0][i]), np.asarray(gi[0]), rtol=1e-10, atol=1e-12)


def test_parseval_gradient_identity():
    # sum |fft(x)|^2 = n sum x^2, so its gradient is 2 n x
    x = np.random.default_rng(0).normal(size=7)
    loss = lambda v: fnp.sum(_re(fnp.fft.fft(v)) ** 2 + _im(fnp.fft.fft(v)) ** 2)  # noqa: E731
    np.testing.assert_allclose(np.asarray(nanofn.grad(loss)(x)), 14 * x, rtol=1e-10)
    loss_r = lambda v: fnp.sum(_re(fnp.fft.rfft(v, norm="ortho")) ** 2)  # noqa: E731
    check_grads(loss_r, (x,), order=2)


# ------------------------------------------------------------------------ JAX's convention

_REF = np.load(os.path.join(os.path.dirname(__file__), "data", "fft_jax_reference.npz"))
_CASES = sorted({k.split("/")[0] for k in _REF.files})


@pytest.mark.parametrize("case", _CASES)
def test_vjp_matches_jax(case):
    fn, kwargs = json.loads(str(_REF[f"{case}/call"]))
    x, ct = _REF[f"{case}/x"], _REF[f"{case}/ct"]
    f = lambda v: getattr(fnp.fft, fn)(v, **kwargs)  # noqa: E731
    y, vjp = nanofn.vjp(f, x)
    (x_bar,) = vjp(np.asarray(ct, dtype=y.dtype))
    np.testing.assert_allclose(np.asarray(x_bar), _REF[f"{case}/x_bar"], rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------ complex128 directly



@pytest.mark.parametrize("name", ONE_AXIS + MANY_AXES)
def test_complex128_check_grads(name):
    rng = np.random.default_rng(7)
    shape = (3, 4)
    x = _input(rng, name, shape)
    kwargs = {"norm": "ortho"} if name in ONE_AXIS else {"axes": (0, 1)}
    check_grads(lambda v: getattr(fnp.fft, name)(v, **kwargs), (x,), order=2)
    check_grads(nanofn.jit(lambda v: getattr(fnp.fft, name)(v, **kwargs)), (x,), order=1,
                modes=("rev",))
