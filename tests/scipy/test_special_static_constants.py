"""Special functions whose only input is a static Python int build their values in
numpy's float64; like JAX they return the default float dtype (float32 unless x64)."""

import warnings

import numpy as np
import scipy.special as sp

import nanofn
from nanofn.scipy import special


def test_bernoulli_is_float32_by_default_and_float64_under_x64():
    b = special.bernoulli(10)
    assert b.dtype == np.float32
    np.testing.assert_allclose(np.asarray(b), sp.bernoulli(10), rtol=1e-6)
    with nanofn.enable_x64():
        b64 = special.bernoulli(10)
        assert b64.dtype == np.float64
        np.testing.assert_allclose(np.asarray(b64), sp.bernoulli(10), rtol=1e-11)
        assert float(b64[4]) == -1 / 30  # exact rationals, rounded once


def test_bernoulli_overflows_to_inf_without_warnings():
    # B_n leaves float32's range near n = 66 and float64's near n = 260 (JAX: inf too).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = np.asarray(special.bernoulli(300))
        b_exact_path = np.asarray(special.bernoulli(200))
    assert b.dtype == np.float32
    assert np.isinf(b[-1]) and b[-1] < 0 and b[-2] == 0
    assert np.isinf(b_exact_path[-2:]).any() and np.isfinite(b[:60]).all()
