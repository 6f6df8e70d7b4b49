"""nanofn.scipy.fft (the type-2 DCT and its inverse) against scipy.fft, with hypothesis
choosing shapes, axes, lengths and norms; gradients against finite differences."""

import numpy as np
import pytest
import scipy.fft as sfft
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nanofn
from nanofn.scipy import fft
from nanofn.testing import check_grads


@settings(max_examples=40, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=7),
                    elements=st.floats(-10, 10)),
       data=st.data(), norm=st.sampled_from([None, "backward", "ortho"]))
def test_dct_and_idct_match_scipy(x, data, norm):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = data.draw(st.one_of(st.none(), st.integers(1, 9)))
    for ours, theirs in ((fft.dct, sfft.dct), (fft.idct, sfft.idct)):
        np.testing.assert_allclose(np.asarray(ours(x, n=n, axis=axis, norm=norm)),
                                   theirs(x, n=n, axis=axis, norm=norm), atol=1e-9)
    np.testing.assert_allclose(np.asarray(fft.idct(fft.dct(x, axis=axis, norm=norm),
                                                   axis=axis, norm=norm)), x, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=3, max_side=6),
                    elements=st.floats(-10, 10)),
       norm=st.sampled_from([None, "ortho"]))
def test_dctn_and_idctn_match_scipy(x, norm):
    np.testing.assert_allclose(np.asarray(fft.dctn(x, norm=norm)), sfft.dctn(x, norm=norm),
                               atol=1e-9)
    np.testing.assert_allclose(np.asarray(fft.idctn(x, norm=norm)),
                               sfft.idctn(x, norm=norm), atol=1e-9)
    s, axes = (3,) * 2, (0, -1)
    np.testing.assert_allclose(np.asarray(fft.dctn(x, s=s, axes=axes, norm=norm)),
                               sfft.dctn(x, s=s, axes=axes, norm=norm), atol=1e-9)


def test_gradients_jit_and_float32():
    x = np.random.default_rng(0).normal(size=(4, 5))
    check_grads(lambda v: fft.dct(v, axis=0, norm="ortho"), (x,), order=2)
    check_grads(lambda v: fft.idctn(v), (x,), order=1)
    np.testing.assert_allclose(np.asarray(nanofn.jit(fft.dctn)(x)), sfft.dctn(x), atol=1e-9)
    y = fft.dct(x.astype(np.float32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(np.asarray(y), sfft.dct(x), rtol=1e-4, atol=1e-4)


def test_only_type_2_and_known_norms():
    with pytest.raises(NotImplementedError, match="type 2"):
        fft.dct(np.ones(4), type=3)
    with pytest.raises(ValueError, match="norm"):
        fft.idct(np.ones(4), norm="forward")
