"""Complex numbers end to end: values, JAX's differentiation conventions, and the three
silent wrong gradients of issue 11 (complex abs, `.real`, the conj convention), plus
logaddexp's second derivative at ties."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.ops import _complex as C
from nanofn.testing import check_grads

finite = st.floats(-3, 3, allow_nan=False)
nonzero_complex = st.complex_numbers(min_magnitude=0.1, max_magnitude=3, allow_nan=False,
                                     allow_infinity=False)


def _c128(values):
    return np.asarray(values, dtype=np.complex128)


# ------------------------------------------------------------------ issue 11: the three bugs


def test_abs_of_complex_built_from_reals():
    g = nanofn.grad(lambda x: fnp.abs(x[0] + 1j * x[1]))(np.array([3.0, 4.0]))
    np.testing.assert_allclose(np.asarray(g), [0.6, 0.8])  # (x, y) / |z|


def test_abs_of_complex_is_real_under_jit():
    z = _c128([3 + 4j, 1 - 1j])
    f = lambda z: fnp.sum(fnp.abs(z))  # noqa: E731
    out = nanofn.jit(f)(z)
    assert out.dtype == np.float64
    assert nanofn.make_jaxpr(fnp.abs)(z).jaxpr.outvars[0].aval.dtype == np.float64
    np.testing.assert_allclose(float(out), np.sum(np.abs(z)))
    g_eager, g_jit = nanofn.grad(f)(z), nanofn.jit(nanofn.grad(f))(z)
    np.testing.assert_allclose(np.asarray(g_eager), np.conj(z) / np.abs(z))
    np.testing.assert_allclose(np.asarray(g_jit), np.asarray(g_eager))


def test_real_imag_conj_attributes():
    z = fnp.asarray(3 + 4j)
    assert float(z.real) == 3.0 and float(z.imag) == 4.0
    assert complex(z.conj()) == 3 - 4j and complex(z.conjugate()) == 3 - 4j
    x = fnp.asarray(np.array([1.0, 2.0]))
    assert x.real is x
    np.testing.assert_array_equal(np.asarray(x.imag), [0.0, 0.0])


@given(nonzero_complex)
def test_grad_of_real_function_of_complex_is_conjugate(z):
    # JAX: grad(f)(z) = df/dx - i df/dy; for |z|^2 that is 2 conj(z)
    g = nanofn.grad(lambda z: fnp.abs(z) ** 2)(np.complex128(z))
    np.testing.assert_allclose(complex(g), 2 * np.conj(z), rtol=1e-12)
    g = nanofn.grad(lambda z: fnp.real(z * fnp.conj(z)))(np.complex128(z))
    np.testing.assert_allclose(complex(g), 2 * np.conj(z), rtol=1e-12)


def test_grad_of_real_imag_conj():
    z = np.complex128(3 + 4j)
    assert complex(nanofn.grad(fnp.real)(z)) == 1
    assert complex(nanofn.grad(fnp.imag)(z)) == -1j
    assert complex(nanofn.grad(lambda z: fnp.real(fnp.conj(z) * 2j))(z)) == -2j


# ------------------------------------------------------------------ logaddexp


@given(finite, finite)
def test_logaddexp_second_derivative_is_smooth(a, b):
    # d/dx1 = p = sigmoid(x1 - x2), d2/dx1^2 = p (1 - p): 1/4 at a tie, never a kink
    for x2 in (b, a):  # a general point and a tie
        p = 1 / (1 + np.exp(-(a - x2)))
        h = nanofn.grad(nanofn.grad(fnp.logaddexp))(np.float64(a), np.float64(x2))
        np.testing.assert_allclose(float(h), p * (1 - p), rtol=1e-10, atol=1e-15)
        check_grads(fnp.logaddexp, (np.float64(a), np.float64(x2)), order=2)


def test_softplus_and_log_sigmoid_hessians_at_zero():
    assert float(nanofn.grad(nanofn.grad(nanofn.nn.softplus))(0.0)) == 0.25
    assert float(nanofn.grad(nanofn.grad(nanofn.nn.log_sigmoid))(0.0)) == -0.25
    assert float(nanofn.jit(nanofn.grad(nanofn.grad(nanofn.nn.softplus)))(0.0)) == 0.25


def test_logaddexp_infinities():
    inf = np.inf
    out = np.asarray(fnp.logaddexp(np.array([-inf, inf, -inf, 0.0]), np.array([-inf, inf, 1.0, inf])))
    np.testing.assert_array_equal(out, [-inf, inf, 1.0, inf])
    g = nanofn.grad(fnp.logaddexp, (0, 1))(np.float64(inf), np.float64(inf))
    assert [float(v) for v in g] == [1.0, 1.0]  # as JAX
    g = nanofn.grad(fnp.logaddexp, (0, 1))(np.float64(-inf), np.float64(0.0))
    assert [float(v) for v in g] == [0.0, 1.0]


@given(finite, finite)
def test_logaddexp2(a, b):
    out = fnp.logaddexp2(np.float64(a), np.float64(b))
    np.testing.assert_allclose(float(out), np.logaddexp2(a, b), rtol=1e-12)
    h = nanofn.grad(nanofn.grad(fnp.logaddexp2))(np.float64(a), np.float64(a))
    np.testing.assert_allclose(float(h), np.log(2) / 4, rtol=1e-12)
    check_grads(fnp.logaddexp2, (np.float64(a), np.float64(b)), order=2)


def test_logaddexp_complex():
    z1, z2 = _c128([1 + 2j, 3 - 1j, -1 + 1j]), _c128([0.5j, 2 + 1j, -1 - 0.5j])  # off the cut
    out = np.asarray(fnp.logaddexp(z1, z2))
    ref = np.log(np.exp(z1) + np.exp(z2))
    np.testing.assert_allclose(out.real, ref.real, rtol=1e-12)
    np.testing.assert_allclose(np.exp(1j * out.imag), np.exp(1j * ref.imag), rtol=1e-12)
    assert np.all((-np.pi <= out.imag) & (out.imag < np.pi))
    check_grads(fnp.logaddexp, (z1, z2), order=2)


# ------------------------------------------------------------------ numpy functions


@given(st.lists(st.complex_numbers(max_magnitude=5, allow_nan=False, allow_infinity=False),
                min_size=1, max_size=5))
def test_numpy_complex_functions_match_numpy(vals):
    z = _c128(vals)
    for name in ("real", "imag", "conj", "conjugate", "angle", "iscomplex", "isreal"):
        np.testing.assert_allclose(np.asarray(getattr(fnp, name)(z)), getattr(np, name)(z),
                                   err_msg=name)
    np.testing.assert_allclose(np.asarray(fnp.angle(z, deg=True)), np.angle(z, deg=True))
    x = z.real
    np.testing.assert_allclose(np.asarray(fnp.angle(x)), np.angle(x))
    np.testing.assert_array_equal(np.asarray(fnp.iscomplex(x)), np.iscomplex(x))
    assert fnp.iscomplexobj(z) and not fnp.iscomplexobj(x) and fnp.isrealobj(x)
    assert fnp.iscomplexobj(1j) and not fnp.iscomplexobj(None)


def test_real_if_close():
    near = fnp.real_if_close(_c128([2.0 + 1e-14j, 1.0]))
    assert near.dtype == np.float64
    far = fnp.real_if_close(_c128([2.0 + 1e-3j]))
    assert far.dtype == np.complex128
    with pytest.raises(nanofn.ConcretizationError if hasattr(nanofn, "ConcretizationError")
                       else Exception, match="real_if_close"):
        nanofn.jit(fnp.real_if_close)(_c128([1.0]))


def test_vdot_conjugates_first_argument():
    a, b = _c128([1 + 2j, 3j]), _c128([2 - 1j, 1 + 1j])
    np.testing.assert_allclose(complex(fnp.vdot(a, b)), np.vdot(a, b))


def test_lax_complex_primitives():
    x, y = np.array([1.0, 2.0]), np.array([3.0, -4.0])
    z = nanofn.lax.complex(x, y)
    np.testing.assert_array_equal(np.asarray(z), x + 1j * y)
    np.testing.assert_array_equal(np.asarray(nanofn.lax.real(z)), x)
    np.testing.assert_array_equal(np.asarray(nanofn.lax.imag(z)), y)
    np.testing.assert_array_equal(np.asarray(nanofn.lax.conj(z)), x - 1j * y)
    real_conj = nanofn.lax.conj(x)  # lax.conj of a real array is complex (numpy's conj: real)
    assert real_conj.dtype == np.complex128 and fnp.conj(x).dtype == np.float64
    with pytest.raises(TypeError, match="real does not accept dtype float64"):
        nanofn.lax.real(x)
    with pytest.raises(TypeError, match="complex does not accept dtype complex128"):
        nanofn.lax.complex(z, z)


def test_vmap_and_jit_of_complex_parts():
    z = _c128([[1 + 2j, 3j], [2.0, -1 - 1j]])
    f = lambda z: fnp.abs(z) + z.real * z.imag  # noqa: E731
    np.testing.assert_allclose(np.asarray(nanofn.vmap(f)(z)), np.abs(z) + z.real * z.imag)
    np.testing.assert_allclose(np.asarray(nanofn.jit(f)(z)), np.abs(z) + z.real * z.imag)


# ------------------------------------------------------------------ transforms


@given(nonzero_complex)
def test_holomorphic_grad_is_the_complex_derivative(z):
    z = np.complex128(z)
    np.testing.assert_allclose(complex(nanofn.grad(lambda z: z ** 3, holomorphic=True)(z)),
                               3 * z ** 2, rtol=1e-12)
    np.testing.assert_allclose(complex(nanofn.grad(fnp.exp, holomorphic=True)(z)), np.exp(z),
                               rtol=1e-12)


HOLOMORPHIC = ["sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
               "arcsinh", "arccosh", "arctanh", "exp", "expm1", "log", "log1p", "log2",
               "log10", "sqrt", "reciprocal", "square"]
off_the_axes = st.builds(complex, st.floats(0.1, 2.5) | st.floats(-2.5, -0.1),
                         st.floats(0.1, 2.5) | st.floats(-2.5, -0.1))


@pytest.mark.parametrize("name", HOLOMORPHIC)
@given(z=off_the_axes)
def test_holomorphic_derivatives_match_finite_differences(name, z):
    # Every branch cut lies on an axis, so off the axes each function is holomorphic and its
    # derivative is a central difference along the real axis. (JAX's arccosh derivative has
    # the wrong sign where Re z < 0: there nanofn follows the function, not JAX.)
    f = getattr(fnp, name)
    z, h = np.complex128(z), 1e-6
    want = (getattr(np, name)(z + h) - getattr(np, name)(z - h)) / (2 * h)
    got = complex(nanofn.grad(f, holomorphic=True)(z))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_grad_dtype_errors_are_jaxs():
    with pytest.raises(TypeError, match="grad requires real-valued outputs"):
        nanofn.grad(lambda z: z * z)(np.complex128(1j))
    with pytest.raises(TypeError, match="holomorphic=True requires inputs with complex dtype"):
        nanofn.grad(lambda x: x * x, holomorphic=True)(np.float64(1.0))
    with pytest.raises(TypeError, match="holomorphic=True requires outputs with complex dtype"):
        nanofn.grad(fnp.abs, holomorphic=True)(np.complex128(1j))
    with pytest.raises(TypeError, match="allow_int=True"):
        nanofn.grad(lambda x: x * 2.0)(np.int32(1))


def test_allow_int_gives_float0():
    from nanofn._dtypes_float0 import float0
    gx, gn = nanofn.grad(lambda x, n: x * n, argnums=(0, 1), allow_int=True)(
        np.float64(2.0), np.int32(3))
    assert float(gx) == 3.0
    assert gn.dtype == float0 and gn.shape == ()
    jx, jn = nanofn.jacrev(lambda x, n: x * n, argnums=(0, 1), allow_int=True)(
        np.ones(2), np.array([1, 2], np.int32))
    np.testing.assert_array_equal(np.asarray(jx), np.diag([1.0, 2.0]))
    assert jn.dtype == float0 and jn.shape == (2, 2)
    # vjp gives integer inputs float0 cotangents and takes float0 for integer outputs
    _, pullback = nanofn.vjp(lambda x, n: (x * n, n * 2), np.float64(2.0), np.int32(3))
    cx, cn = pullback((np.float64(1.0), np.zeros((), float0)))
    assert float(cx) == 3.0 and cn.dtype == float0
    _, tangent = nanofn.jvp(lambda x, n: x * n, (np.float64(2.0), np.int32(3)),
                            (np.float64(1.0), np.zeros((), float0)))
    assert float(tangent) == 3.0


def test_holomorphic_jacobians():
    z = _c128([1 + 1j, 2 - 1j])
    expected = np.diag(2 * z)
    for jac in (nanofn.jacfwd, nanofn.jacrev):
        np.testing.assert_allclose(np.asarray(jac(lambda z: z ** 2, holomorphic=True)(z)),
                                   expected)
    np.testing.assert_allclose(
        np.asarray(nanofn.hessian(lambda z: fnp.sum(z ** 3), holomorphic=True)(z)), np.diag(6 * z))
    with pytest.raises(TypeError, match="jacfwd requires real-valued inputs"):
        nanofn.jacfwd(lambda z: z ** 2)(z)
    with pytest.raises(TypeError, match="jacrev requires real-valued outputs"):
        nanofn.jacrev(lambda z: z ** 2)(z)
    # jacrev of a real function of complex inputs: rows are JAX's conjugate gradients
    np.testing.assert_allclose(np.asarray(nanofn.jacrev(fnp.abs)(z)), np.diag(np.conj(z) / np.abs(z)))


def test_jvp_and_vjp_with_complex_tangents():
    z, t = _c128([1 + 2j, -0.5j]), _c128([0.3 - 1j, 2 + 1j])
    _, tangent = nanofn.jvp(fnp.sin, (z,), (t,))
    np.testing.assert_allclose(np.asarray(tangent), np.cos(z) * t)
    _, tangent = nanofn.jvp(fnp.abs, (z,), (t,))  # Re(conj(z) t) / |z|, a real tangent
    np.testing.assert_allclose(np.asarray(tangent), np.real(np.conj(z) * t) / np.abs(z))
    _, pullback = nanofn.vjp(fnp.conj, z)
    np.testing.assert_allclose(np.asarray(pullback(t)[0]), np.conj(t))
    _, pullback = nanofn.vjp(lambda z: z * z, z)  # holomorphic: ct * f'(z), no conjugation
    np.testing.assert_allclose(np.asarray(pullback(t)[0]), t * 2 * z)


# ------------------------------------------------------------------ check_grads


def test_check_grads_checks_complex_inputs_and_outputs():
    z = _c128([1 + 2j, -0.5 + 0.3j])
    for f in (fnp.abs, lambda z: fnp.sin(z) * fnp.conj(z), lambda z: z.real * z.imag,
              fnp.angle, lambda z: fnp.exp(z) / (1 + z * z)):
        check_grads(f, (z,), order=2)
    check_grads(lambda x, y: nanofn.lax.complex(x, y) ** 2, (np.array([1.0, 2.0]),
                                                             np.array([0.5, 3.0])), order=2)


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_check_grads_catches_a_wrong_complex_rule(monkeypatch, mode):
    z = _c128([1 + 2j, -0.5 + 0.3j])
    if mode == "rev":  # a reverse rule without the conjugation
        monkeypatch.setattr(C.conj_p, "vjp", [lambda ct, x, *, out: ct])
    else:  # a forward rule that forgets conj
        monkeypatch.setattr(C.conj_p, "jvp_terms", [lambda t, x, *, out: t])
    with pytest.raises(AssertionError, match="check failed"):
        check_grads(lambda z: fnp.conj(z) * z, (z,), order=1, modes=(mode,))


# ------------------------------------------------------------------ reductions and dtypes


@pytest.mark.parametrize("name", ["var", "std", "mean"])
@pytest.mark.parametrize("kw", [{}, {"axis": 0, "ddof": 1}, {"axis": 1, "keepdims": True}])
def test_complex_reductions_match_numpy(name, kw):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4))
    if name == "mean":
        kw = {k: v for k, v in kw.items() if k != "ddof"}
    got, want = getattr(fnp, name)(z, **kw), getattr(np, name)(z, **kw)
    assert got.dtype == want.dtype  # var and std of complex are real
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    check_grads(lambda z: getattr(fnp, name)(z, **kw), (z,), order=2)


@pytest.mark.parametrize("name", ["var", "mean"])
def test_where_counts_broadcast_mask(name):
    # a where= mask that broadcasts against `a` counts every element it selects
    x = np.random.default_rng(1).normal(size=(3, 4))
    w = np.array([True, False, True, True])
    for a in (x, x + 1j * x[::-1]):
        np.testing.assert_allclose(np.asarray(getattr(fnp, name)(a, where=w)),
                                   getattr(np, name)(a, where=w), rtol=1e-12)


def test_complex_sigmoid_and_real_only_primitives():
    z = _c128([0.3 + 0.4j, -0.5 + 0.2j])
    np.testing.assert_allclose(np.asarray(nanofn.nn.sigmoid(z)), 1 / (1 + np.exp(-z)))
    check_grads(nanofn.nn.sigmoid, (z,), order=2)
    for f in (fnp.floor, fnp.cbrt, lambda z: fnp.arctan2(z, z)):
        with pytest.raises(TypeError, match="does not accept dtype complex128"):
            nanofn.jit(f)(z)


@pytest.mark.parametrize("kw", [{}, {"ord": "fro"}, {"axis": 1}, {"ord": 1, "axis": 0},
                                {"ord": 3, "axis": 1}, {"ord": -1.5, "axis": 1},
                                {"ord": np.inf, "axis": 1}, {"ord": 0, "axis": 1}, {"ord": 1}])
def test_norm_of_complex_is_real(kw):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4))
    got, want = fnp.linalg.norm(z, **kw), np.linalg.norm(z, **kw)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    if kw.get("ord") != 0:
        check_grads(lambda z: fnp.linalg.norm(z, **kw), (z,), order=2)


def test_isinf_and_round_of_complex():
    z = _c128([1.26 + 2.5j, np.inf + 1j, 1 - np.inf * 1j, 3.5 - 0.5j])
    for f, ref in ((fnp.isinf, np.isinf), (fnp.round, np.round),
                   (lambda z: fnp.round(z, 1), lambda z: np.round(z, 1))):
        np.testing.assert_array_equal(np.asarray(f(z)), ref(z))
        np.testing.assert_array_equal(np.asarray(nanofn.jit(f)(z)), ref(z))


# ------------------------------------------------------------------ against JAX's numbers

_REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")
from complex_cases import CASES as COMPLEX_CASES  # noqa: E402

with open(os.path.join(_REF, "complex_grads.json")) as _fh:
    JAX_COMPLEX = json.load(_fh)["cases"]


@pytest.mark.parametrize("name", sorted(COMPLEX_CASES))
def test_complex_gradient_matches_jax(name):
    make, z, holomorphic = COMPLEX_CASES[name]
    f = make(fnp)
    got = np.asarray(nanofn.grad(f, holomorphic=holomorphic)(_c128(z)))
    ref = JAX_COMPLEX[name]
    np.testing.assert_allclose(got, np.asarray(ref["real"]) + 1j * np.asarray(ref["imag"]),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(nanofn.jit(nanofn.grad(f, holomorphic=holomorphic))(
        _c128(z))), got, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fn", ["nn", "scipy"])
def test_logsumexp_of_complex_input(fn):
    # as JAX: shifted by the largest real part, the log of the complex sum
    from nanofn.scipy.special import logsumexp as scipy_lse
    lse = nanofn.nn.logsumexp if fn == "nn" else scipy_lse
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 5)) * 30 + 1j * rng.normal(size=(3, 5))
    want = np.log(np.sum(np.exp(z - 100), axis=1)) + 100  # no overflow at these sizes
    np.testing.assert_allclose(np.asarray(lse(z, axis=1)), want, rtol=1e-12)
    weights = np.arange(5.0) - 2
    out, sign = lse(z, axis=1, b=weights, return_sign=True)
    total = np.sum(weights * np.exp(z - 100), axis=1)
    np.testing.assert_allclose(np.asarray(out), np.log(np.abs(total)) + 100, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(sign), total / np.abs(total), rtol=1e-12)
    check_grads(lambda v: lse(v, axis=0), (z[:, :2] / 30,), order=1, modes=("rev",))
