"""nanofn.experimental.jet (JAX's Taylor-mode `jet`): against polynomial composition done
exactly by numpy (hypothesis draws the polynomial, the point and the curve), against
closed forms (exp, sin, Faa di Bruno's second and third order terms), pytrees, integer
outputs, `jit`, and the errors JAX raises."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from numpy.polynomial import Polynomial

import nanofn
import nanofn.numpy as fnp
from nanofn.experimental import jet as jet_module
from nanofn.experimental.jet import jet, jet2

floats = st.floats(-1.5, 1.5, allow_nan=False, allow_infinity=False)


@given(st.lists(floats, min_size=1, max_size=5), floats, st.lists(floats, min_size=0, max_size=4))
def test_a_polynomial_along_a_polynomial_curve_gives_the_composed_coefficients(a, x0, c):
    # f(x(t)) = p(x0 + c1 t + ... + cK t^K) is a polynomial in t: its coefficients up to K
    # are what jet2 returns, and times k! what jet returns
    p = Polynomial(a)
    curve = Polynomial([x0] + c)
    want = np.zeros(len(c) + 1)
    got_coef = p(curve).coef[: len(c) + 1]
    want[: got_coef.size] = got_coef

    def f(x):
        return sum(ak * x ** k for k, ak in enumerate(a))

    with nanofn.enable_x64():
        y0, terms = jet2(f, (np.float64(x0),), (tuple(np.float64(v) for v in c),))
        np.testing.assert_allclose(float(y0), want[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose([float(v) for v in terms], want[1:], rtol=1e-10, atol=1e-10)
        derivs = [v * math.factorial(k + 1) for k, v in enumerate(c)]
        _, dterms = jet(f, (np.float64(x0),), (tuple(np.float64(v) for v in derivs),))
        np.testing.assert_allclose([float(v) for v in dterms],
                                   [w * math.factorial(k + 1) for k, w in enumerate(want[1:])],
                                   rtol=1e-10, atol=1e-9)


def test_closed_forms():
    x0 = 0.3
    # exp along x0 + t: every derivative is exp(x0)
    y0, terms = jet(fnp.exp, (x0,), ((1.0, 0.0, 0.0, 0.0),))
    np.testing.assert_allclose([float(y0)] + [float(t) for t in terms], [math.exp(x0)] * 5,
                               rtol=1e-6)
    # Faa di Bruno for sin along a curve with derivatives h1, h2, h3
    h1, h2, h3 = 0.7, -0.4, 1.3
    _, (f1, f2, f3) = jet(fnp.sin, (x0,), ((h1, h2, h3),))
    s, c = math.sin(x0), math.cos(x0)
    np.testing.assert_allclose(
        [float(f1), float(f2), float(f3)],
        [c * h1, -s * h1 ** 2 + c * h2, -c * h1 ** 3 - 3 * s * h1 * h2 + c * h3], rtol=1e-5)


def test_pytrees_several_arguments_integer_outputs_and_jit():
    x = np.array([0.5, 1.5], np.float32)
    y = np.array([2.0, -1.0], np.float32)

    def f(x, y):
        return {"prod": x * y, "count": fnp.sum(x > 1.0), "sq": (x ** 2,)}

    out, series = jet(f, (x, y), ((np.ones(2, np.float32), np.zeros(2, np.float32)),
                                  (np.zeros(2, np.float32), np.ones(2, np.float32))))
    np.testing.assert_allclose(out["prod"], x * y)
    # d/dt (x + t)(y + t^2/2) = y, second derivative 2 x' y'' ... = 2 * 0 + x + ... at 0
    np.testing.assert_allclose(series["prod"][0], y)
    np.testing.assert_allclose(series["prod"][1], x)  # x * y'' + 2 x' y' + x'' y
    np.testing.assert_array_equal(series["count"][0], 0)  # an integer output: zeros,
    assert series["count"][0].dtype == np.float32  # scaled by a float factorial, as JAX's
    assert jet2(f, (x, y), ((x,), (y,)))[1]["count"][0].dtype == np.int32
    np.testing.assert_allclose(series["sq"][0][0], 2 * x)
    np.testing.assert_allclose(series["sq"][0][1], np.full(2, 2.0))
    jitted = nanofn.jit(lambda x: jet(fnp.tanh, (x,), ((fnp.ones_like(x), fnp.zeros_like(x)),)))
    (y0, (t1, t2)), (e0, (e1, e2)) = jitted(x), jet(fnp.tanh, (x,), ((np.ones(2, np.float32),
                                                                     np.zeros(2, np.float32)),))
    for a, b in ((y0, e0), (t1, e1), (t2, e2)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_zero_terms_and_errors_as_jax():
    y0, terms = jet(fnp.cos, (0.0,), ((),))
    assert float(y0) == 1.0 and terms == []
    with pytest.raises(ValueError, match="inconsistent lengths"):
        jet(lambda a, b: a * b, (1.0, 2.0), ((1.0,), (1.0, 2.0)))
    with pytest.raises(ValueError, match="primal value at position 0 is not an array"):
        jet(lambda a: a, ([1.0, 2.0],), ((1.0,),))
    with pytest.raises(ValueError, match="term 0 for argument 0 is not an array"):
        jet(lambda a: a, (1.0,), (((1.0, 2.0),),))
    assert jet_module.__all__ == ["jet", "jet2"]
