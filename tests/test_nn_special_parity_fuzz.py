"""Mismatches found by running the same calls through nanofn and JAX 0.10.2 (jax.nn,
jax.scipy.special) over dtypes, edge values and keyword arguments. Each test pins the value
nanofn should give, from numpy / math or scipy.special (the reference where JAX itself is
less accurate), so none needs JAX installed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sp

import nanofn
import nanofn.numpy as fnp
from nanofn import nn
from nanofn.scipy import special


def _np(x):
    return np.asarray(x)


# ------------------------------------------------------------------------ nn.logsumexp


@pytest.mark.parametrize("a", [[np.inf, 1.0], [np.nan, 1.0], [-np.inf, 1.0]])
def test_logsumexp_ignores_zero_weights_even_at_inf_or_nan(a):
    # jax.nn.logsumexp and scipy.special.logsumexp leave out entries whose weight is 0;
    # nanofn.nn.logsumexp gave nan for an inf or nan there
    a, b = np.array(a), np.array([0.0, 1.0])
    assert float(_np(nn.logsumexp(a, b=b))) == 1.0
    value, sign = nn.logsumexp(a, b=b, return_sign=True)
    assert (float(_np(value)), float(_np(sign))) == (1.0, 1.0)
    assert float(_np(special.logsumexp(a, b=b))) == 1.0


def test_logsumexp_zero_weight_row_along_axis():
    a = np.array([[np.inf, 1.0, 2.0], [0.5, np.inf, np.inf]])
    b = np.array([0.0, 1.0, 2.0])
    want = [math.log(math.exp(1.0) + 2 * math.exp(2.0)), np.inf]
    np.testing.assert_allclose(_np(nn.logsumexp(a, axis=1, b=b)), want, rtol=1e-15)


def test_logsumexp_negative_sum_is_nan_with_zero_gradient():
    # JAX: nan where the weighted sum is negative, and no gradient flows through it
    a = np.array([1.0, 2.0])
    b = np.array([1.0, -1.0])
    for f in (nn.logsumexp, special.logsumexp):
        assert math.isnan(float(_np(f(a, b=b))))
        ga = _np(nanofn.grad(lambda x, f=f: f(x, b=b))(a))
        gb = _np(nanofn.grad(lambda w, f=f: f(a, b=w))(b))
        np.testing.assert_array_equal(ga, [0.0, 0.0])
        np.testing.assert_array_equal(gb, [0.0, 0.0])


def test_logsumexp_gradient_of_zero_weight_is_zero():
    # the entry is left out (as -inf), so it gets no gradient in a or in b, as in JAX
    a = np.array([0.3, -0.2, 1.1])
    b = np.array([0.0, 1.0, 2.0])
    gb = _np(nanofn.grad(lambda w: nn.logsumexp(a, b=w))(b))
    total = math.exp(-0.2) + 2 * math.exp(1.1)
    np.testing.assert_allclose(gb, [0.0, math.exp(-0.2) / total, math.exp(1.1) / total],
                               rtol=1e-14)


def test_special_logsumexp_all_masked_row_has_finite_b_gradient():
    # where= with a row masked out entirely: log(0) = -inf, whose derivative is inf; the
    # weights masked out must still get 0, not inf * 0 = nan
    a = np.array([[0.3, 1.2], [0.5, -0.4]])
    b = np.array([[1.0, -2.0], [0.5, 1.5]])
    where = np.array([[False, False], [True, True]])

    def f(w):
        value, _ = special.logsumexp(a, b=w, axis=1, where=where, return_sign=True)
        return fnp.sum(fnp.where(fnp.isfinite(value), value, 0.0))

    g = _np(nanofn.grad(f)(b))
    total = 0.5 * math.exp(0.5) + 1.5 * math.exp(-0.4)
    np.testing.assert_allclose(g, [[0.0, 0.0], [math.exp(0.5) / total,
                                                math.exp(-0.4) / total]], rtol=1e-14)


# ------------------------------------------------------------------------ activations


def test_exact_gelu_float32_tail():
    # x * Phi(x) with Phi from erfc: 1 + erf(x / sqrt 2) cancelled (gelu(-5) was 4% off)
    x = np.array([-5.0, -8.0, -3.0, 0.5, 2.0], np.float32)
    want = [float(v) * 0.5 * math.erfc(-float(v) / math.sqrt(2.0)) for v in x]
    got = _np(nn.gelu(x, approximate=False))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=2e-6)


@pytest.mark.parametrize("fn", ["elu", "celu", "selu", "relu6", "hard_sigmoid", "hard_silu",
                                "hard_swish"])
@pytest.mark.parametrize("dtype", [np.int32, np.bool_])
def test_integer_inputs_give_the_default_float(fn, dtype):
    # JAX mixes the integers with a Python float (where(x > 0, 0., x), x + 3.), which
    # gives the default float: float64 under jax_enable_x64 (nanofn gave float32)
    x = np.array([0, 1], dtype)
    with nanofn.enable_x64(True):
        assert _np(getattr(nn, fn)(x)).dtype == np.float64
    assert _np(getattr(nn, fn)(x)).dtype == np.float32


@pytest.mark.parametrize("fn", ["softplus", "soft_sign", "mish"])
def test_bool_inputs_give_the_default_float(fn):
    # logaddexp(x, 0) and abs(x) + 1 meet a Python int first: booleans become the default
    # int, then the default float; int32 stays float32
    with nanofn.enable_x64(True):
        assert _np(getattr(nn, fn)(np.array([True, False]))).dtype == np.float64
        assert _np(getattr(nn, fn)(np.array([1, 2], np.int32))).dtype == np.float32


def test_standardize_python_mean_keeps_float32():
    x = np.array([1.0, 2.0, 4.0], np.float32)
    with nanofn.enable_x64(True):
        out = _np(nn.standardize(x, mean=0.5))
    assert out.dtype == np.float32
    variance = np.mean(x.astype(np.float64) ** 2) - 0.25
    np.testing.assert_allclose(out, (x - 0.5) / np.sqrt(variance + 1e-5), rtol=1e-6)


# ------------------------------------------------------------------------ special


def test_digamma_negative_arguments():
    # psi(x) for tiny negative x is ~ -1/x: the reflection took tan(pi (x - floor(x))), and
    # x - floor(x) rounded -1e-30 to 1; huge negative x are poles (numba's math.floor
    # wrapped its int64 for -1e300, giving 692)
    x = np.array([-1e-30, -1e-8, -2.000000001, -1e300, -3.7, -100.3, -0.5])
    np.testing.assert_allclose(_np(special.digamma(x)), sp.psi(x), rtol=1e-12)
    assert float(_np(special.digamma(np.float32(-1e-30)))) == pytest.approx(1e30, rel=1e-6)


def test_erfinv_near_one():
    # Newton on erf stalls where erf(x) is 1 to its last bits: erfinv(1 - 2**-52) was 5.41
    y = np.array([1 - 2.0 ** -52, -(1 - 2.0 ** -53), 0.9999999999, 1 - 1e-13, 0.75, 0.5])
    np.testing.assert_allclose(_np(special.erfinv(y)), sp.erfinv(y), rtol=1e-14)


def test_ndtri_float32_small_p():
    # 2p - 1 rounds to -1 in float32 below ~3e-8: ndtri(1e-8) was NaN
    p = np.array([1e-8, 3e-8, 1e-6, 2e-5, 1e-20, 1e-37], np.float32)
    got = _np(special.ndtri(p))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, sp.ndtri(p.astype(np.float64)), rtol=2e-6)


def test_log_ndtr_far_lower_tail():
    # -x**2 / 2 overflows to -inf below about -1.9e154; a cap on x held it at -5.5e303
    x = np.array([-1e300, -1e200, -1e153, -1e100])
    np.testing.assert_allclose(_np(special.log_ndtr(x)), sp.log_ndtr(x), rtol=1e-14)


def test_fresnel_and_sici_at_infinity_and_beyond():
    # S and C tend to 1/2; pi x**2 overflowed for x > 1e154 and gave NaN (JAX gives 1/2)
    s, c = special.fresnel(np.array([1e300, -1e300, 1e20]))
    np.testing.assert_array_equal(_np(s), [0.5, -0.5, 0.5])
    np.testing.assert_array_equal(_np(c), [0.5, -0.5, 0.5])
    # Ci(-inf) is NaN in scipy and JAX (nanofn gave 0)
    si, ci = special.sici(np.array([-np.inf, np.inf]))
    np.testing.assert_array_equal(_np(si), [-math.pi / 2, math.pi / 2])
    assert math.isnan(float(_np(ci)[0])) and float(_np(ci)[1]) == 0.0


@pytest.mark.parametrize("a", [1e6, 1e8])
def test_incomplete_gamma_large_a(a):
    # near x = a the series and the continued fraction need ~sqrt(a) terms (2000 gave
    # P(1e6, 1e6) 5% low), and the prefactor x**a e**-x / Gamma(a) cancels in its log
    x = np.array([a, a * 1.001, a * 0.999, a + math.sqrt(a), a - 3 * math.sqrt(a)])
    np.testing.assert_allclose(_np(special.gammainc(a, x)) + _np(special.gammaincc(a, x)),
                               1.0, rtol=1e-12)
    np.testing.assert_allclose(_np(special.gammaincc(a, x)), sp.gammaincc(a, x), rtol=1e-6)
    # P(a, a) = 1/2 + 1 / (3 sqrt(2 pi a)) + O(1/a) (Temme)
    assert float(_np(special.gammainc(a, a))) == pytest.approx(
        0.5 + 1 / (3 * math.sqrt(2 * math.pi * a)), rel=1e-6)


def test_incomplete_gamma_far_below_large_a():
    # P(1e8, 0.999e8) = 7.369931066896994e-24: its power series summed in 30-digit
    # arithmetic (mpmath), where scipy 1.17 gives 6.41e-24
    assert float(_np(special.gammainc(1e8, 0.999e8))) == pytest.approx(
        7.369931066896994e-24, rel=1e-6)
