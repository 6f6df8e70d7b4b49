"""nanofn.experimental.ode.odeint: solutions against closed forms and scipy's solve_ivp,
gradients by the adjoint method against finite differences (with respect to y0, t, args
and arrays the dynamics close over), pytree states, jit and vmap."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.experimental.ode import odeint
from nanofn.testing import check_grads

TOL = {"rtol": 1e-10, "atol": 1e-10}


def _decay(y, t, k):
    return -k * y


def _oscillator(y, t, w):  # y = (position, velocity)
    return fnp.stack([y[1], -w * w * y[0]])


def _lotka_volterra(y, t, p):
    a, b, c, d = p[0], p[1], p[2], p[3]
    return fnp.stack([a * y[0] - b * y[0] * y[1], d * y[0] * y[1] - c * y[1]])


@given(k=st.floats(0.1, 3.0), y0=st.floats(-2.0, 2.0), t1=st.floats(0.1, 3.0))
def test_exponential_decay_matches_closed_form(k, y0, t1):
    t = np.linspace(0.0, t1, 4)
    ys = odeint(_decay, np.float64(y0), t, np.float64(k), **TOL)
    np.testing.assert_allclose(np.asarray(ys), y0 * np.exp(-k * t), rtol=1e-8, atol=1e-9)


def test_oscillator_matches_closed_form():
    w = 1.7
    t = np.linspace(0.0, 4.0, 9)
    ys = np.asarray(odeint(_oscillator, np.array([1.0, 0.0]), t, np.float64(w), **TOL))
    np.testing.assert_allclose(ys[:, 0], np.cos(w * t), atol=1e-8)
    np.testing.assert_allclose(ys[:, 1], -w * np.sin(w * t), atol=1e-8)


def test_matches_solve_ivp():
    p = np.array([1.1, 0.4, 0.4, 0.1])
    y0, t = np.array([10.0, 5.0]), np.linspace(0.0, 5.0, 11)
    ys = np.asarray(odeint(_lotka_volterra, y0, t, p, **TOL))
    ref = scipy.integrate.solve_ivp(lambda t, y: _lotka_volterra(y, t, p), (0.0, 5.0), y0,
                                    t_eval=t, rtol=1e-11, atol=1e-11, method="DOP853")
    np.testing.assert_allclose(ys, ref.y.T, rtol=1e-7)


def test_default_tolerances_and_float32():
    ys = odeint(lambda y, t: -y, np.float32(1.0), np.array([0.0, 1.0], np.float32))
    assert ys.dtype == np.float32 and ys.shape == (2,)
    np.testing.assert_allclose(np.asarray(ys), [1.0, np.exp(-1.0)], rtol=1e-5)


def test_pytree_state():
    def f(state, t):
        return {"x": state["v"], "v": -state["x"], "c": fnp.zeros(())}
    y0 = {"x": np.array([1.0, 2.0]), "v": np.array([0.0, 0.0]), "c": np.float64(3.0)}
    t = np.linspace(0.0, 1.0, 3)
    ys = odeint(f, y0, t, **TOL)
    assert set(ys) == {"x", "v", "c"} and ys["x"].shape == (3, 2) and ys["c"].shape == (3,)
    np.testing.assert_allclose(np.asarray(ys["x"]), np.cos(t)[:, None] * [1.0, 2.0], atol=1e-8)
    np.testing.assert_allclose(np.asarray(ys["c"]), 3.0)


def test_hmax_and_mxstep():
    t = np.array([0.0, 1.0])
    ys = odeint(lambda y, t: -y, np.float64(1.0), t, hmax=0.05, **TOL)
    np.testing.assert_allclose(float(ys[1]), np.exp(-1.0), rtol=1e-9)
    # too few steps allowed: the solver stops short and returns an extrapolated value
    short = odeint(lambda y, t: -y, np.float64(1.0), np.array([0.0, 10.0]), mxstep=2, **TOL)
    assert abs(float(short[1]) - np.exp(-10.0)) > 1e-6


def test_bad_arguments():
    with pytest.raises(TypeError, match="t must be"):
        odeint(lambda y, t: -y, 1.0, np.array([0, 1]))
    with pytest.raises(ValueError, match="strictly increasing"):
        odeint(lambda y, t: -y, 1.0, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match="args"):
        odeint(lambda y, t, s: -y, 1.0, np.array([0.0, 1.0]), "fast")


# ------------------------------------------------------------------------ gradients


def test_grads_of_decay_match_closed_form():
    t = np.array([0.0, 0.5, 2.0])

    def loss(y0, t, k):
        return fnp.sum(odeint(_decay, y0, t, k, **TOL) ** 2)

    y0, k = np.float64(1.3), np.float64(0.8)
    g_y0, g_t, g_k = nanofn.grad(loss, argnums=(0, 1, 2))(y0, t, k)
    e = np.exp(-2 * k * t)  # y(t)^2 = y0^2 exp(-2 k t)
    np.testing.assert_allclose(float(g_y0), np.sum(2 * y0 * e), rtol=1e-7)
    np.testing.assert_allclose(float(g_k), np.sum(-2 * t * y0 ** 2 * e), rtol=1e-7)
    # moving t[i] (i > 0) moves y(t[i]) along -k y; moving t[0] shifts the whole solution
    expected_t = -2 * k * y0 ** 2 * e
    expected_t[0] = -expected_t[1:].sum()
    np.testing.assert_allclose(np.asarray(g_t), expected_t, rtol=1e-7)


def test_grads_against_finite_differences():
    p = np.array([1.1, 0.4, 0.4, 0.1])
    y0, t = np.array([2.0, 1.0]), np.array([0.0, 0.7, 1.5])
    check_grads(lambda y0, t, p: odeint(_lotka_volterra, y0, t, p, **TOL), (y0, t, p),
                order=1, modes=("rev",))


def test_grads_through_closed_over_arrays():
    w = np.array([[-0.5, 1.0], [-1.0, -0.3]])
    b = np.array([0.2, -0.1])

    def solve(w, b, y0):
        return odeint(lambda y, t: fnp.tanh(w @ y + b), y0, np.array([0.0, 1.0, 2.0]), **TOL)

    check_grads(solve, (w, b, np.array([1.0, -0.5])), order=1, modes=("rev",))


def test_grads_with_pytree_args_and_state():
    def f(state, t, params):
        return (params["a"] * state[1], -params["b"] * fnp.sin(state[0]))

    def solve(y0, params):
        ys = odeint(f, (y0, np.float64(0.0)), np.array([0.0, 0.8]), params, **TOL)
        return ys[0][-1] + 2.0 * ys[1][-1]

    params = {"a": np.float64(1.2), "b": np.float64(0.7)}
    check_grads(solve, (np.float64(0.4), params), order=1, modes=("rev",))


def test_jit_and_vmap():
    t = np.linspace(0.0, 1.0, 3)
    solve = lambda y0, k: odeint(_decay, y0, t, k, **TOL)  # noqa: E731
    y0s, ks = np.array([1.0, 2.0, -1.0]), np.array([0.5, 1.0, 2.0])
    expected = y0s[:, None] * np.exp(-ks[:, None] * t)
    np.testing.assert_allclose(np.asarray(nanofn.jit(solve)(y0s[0], ks[0])), expected[0],
                               rtol=1e-8)
    np.testing.assert_allclose(np.asarray(nanofn.vmap(solve)(y0s, ks)), expected, rtol=1e-8)
    grad_k = nanofn.jit(nanofn.grad(lambda k: solve(np.float64(1.0), k)[-1]))
    np.testing.assert_allclose(float(grad_k(np.float64(0.5))), -np.exp(-0.5), rtol=1e-7)


def test_vmap_and_jit_over_closed_over_parameters():
    t = np.array([0.0, 1.0])

    def solve(k):  # k is closed over by the dynamics, not passed in args
        return odeint(lambda y, t: -k * y, np.float64(1.0), t, **TOL)[-1]

    ks = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(np.asarray(nanofn.vmap(solve)(ks)), np.exp(-ks), rtol=1e-8)
    grads = nanofn.jit(nanofn.vmap(nanofn.grad(solve)))(ks)
    np.testing.assert_allclose(np.asarray(grads), -np.exp(-ks), rtol=1e-8)


def test_complex_state():
    w = 1.3 + 0.5j
    t = np.linspace(0.0, 1.0, 3)
    solve = lambda y0: odeint(lambda y, t: 1j * w * y, y0, t, **TOL)  # noqa: E731
    np.testing.assert_allclose(np.asarray(solve(np.complex128(1.0))), np.exp(1j * w * t),
                               atol=1e-8)
    check_grads(solve, (np.complex128(1.0 + 0.5j),), order=1, modes=("rev",))
