"""The rest of nanofn.scipy.special (dawsn, fresnel, sici, owens_t, bessel_jn, hyp1f1,
hyp2f1, sph_harm_y, wofz) against scipy.special: values at hypothesis-drawn points over broadcasting
shapes, jit and vmap against eager, derivatives against finite differences (float64), and
JAX's conventions at the special points; plus the check that every jax.scipy.special name
is here."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, settings, strategies as st

import nanofn
from nanofn.scipy import special
from nanofn.testing import broadcastable_shapes, check_grads

# recorded from jax.scipy.special 0.10 (dir(), public names)
JAX_SPECIAL = (
    "bernoulli bessel_jn beta betainc betaln boxcox boxcox1p comb dawsn digamma entr erf erfc "
    "erfcx erfinv exp1 expi expit expn factorial fresnel gamma gammainc gammaincc gammaln "
    "gammasgn hyp1f1 hyp2f1 i0 i0e i1 i1e kl_div log_ndtr log_softmax loggamma logit logsumexp "
    "multigammaln ndtr ndtri owens_t poch polygamma rel_entr sici softmax spence sph_harm_y wofz "
    "xlog1py xlogy zeta").split()
NOT_YET = set()


def test_jax_special_names_are_here():
    missing = [n for n in JAX_SPECIAL if not hasattr(special, n)]
    assert sorted(missing) == sorted(NOT_YET), missing
    assert set(JAX_SPECIAL) - NOT_YET <= set(special.__all__)


class Spec(NamedTuple):
    fn: Callable
    ref: Callable
    domains: tuple
    diff: tuple
    grad_domains: tuple = None
    rtol: float = 1e-12
    order: int = 2


def _draw(rng, shape, dom):
    lo, hi, kind = dom
    if kind == "log":
        return np.exp(rng.uniform(np.log(lo), np.log(hi), size=shape))
    return rng.uniform(lo, hi, size=shape)


SPECS = {
    "dawsn": Spec(special.dawsn, sp.dawsn, ((-80, 80, "u"),), (0,), ((-6, 6, "u"),)),
    "fresnel_s": Spec(lambda x: special.fresnel(x)[0], lambda x: sp.fresnel(x)[0],
                      ((-8, 8, "u"),), (0,), ((-3, 3, "u"),), rtol=1e-11),
    "fresnel_c": Spec(lambda x: special.fresnel(x)[1], lambda x: sp.fresnel(x)[1],
                      ((-8, 8, "u"),), (0,), ((-3, 3, "u"),), rtol=1e-11),
    "sici_si": Spec(lambda x: special.sici(x)[0], lambda x: sp.sici(x)[0], ((-60, 60, "u"),),
                    (0,), ((-8, 8, "u"),)),
    "sici_ci": Spec(lambda x: special.sici(x)[1], lambda x: sp.sici(x)[1], ((0.01, 60, "log"),),
                    (0,), ((0.2, 8, "u"),), rtol=1e-11),
    "owens_t": Spec(special.owens_t, sp.owens_t, ((-5, 5, "u"), (-4, 4, "u")), (0, 1),
                    rtol=1e-11),
    "hyp1f1": Spec(special.hyp1f1, sp.hyp1f1, ((0.1, 6, "log"), (0.2, 6, "log"), (-25, 25, "u")),
                   (0, 1, 2), ((0.3, 3, "log"), (0.5, 4, "log"), (-4, 4, "u")), rtol=1e-10,
                   order=1),
    "hyp2f1": Spec(special.hyp2f1, sp.hyp2f1,
                   ((0.1, 6, "log"), (-3, 6, "u"), (0.2, 8, "log"), (-20, 0.95, "u")),
                   (0, 1, 2, 3),
                   ((0.3, 3, "log"), (0.3, 3, "log"), (0.5, 4, "log"), (-3, 0.8, "u")),
                   rtol=1e-9, order=1),
}


def _case(data, domains):
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    shapes = data.draw(broadcastable_shapes(len(domains), max_dims=2, max_side=4))
    return [_draw(rng, s, d) for s, d in zip(shapes, domains)]


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_values_match_scipy(name, data):
    spec = SPECS[name]
    args = _case(data, spec.domains)
    got = np.asarray(spec.fn(*args))
    want = spec.ref(*args)
    assert got.shape == np.shape(want) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=spec.rtol, atol=1e-300)
    assert np.asarray(spec.fn(*[a.astype(np.float32) for a in args])).dtype == np.float32


@pytest.mark.parametrize("name", sorted(SPECS))
def test_jit_and_vmap_agree_with_eager(name):
    spec = SPECS[name]
    rng = np.random.default_rng(0)
    args = [_draw(rng, (3, 2), d) for d in spec.grad_domains or spec.domains]
    eager = np.asarray(spec.fn(*args))
    np.testing.assert_array_equal(np.asarray(nanofn.jit(spec.fn)(*args)), eager)
    np.testing.assert_allclose(np.asarray(nanofn.vmap(spec.fn)(*args)), eager, rtol=1e-15)


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=5)
@given(data=st.data())
def test_derivatives_match_finite_differences(name, data):
    spec = SPECS[name]
    args = _case(data, spec.grad_domains or spec.domains)

    def f(*dargs):
        full = list(args)
        for i, v in zip(spec.diff, dargs):
            full[i] = v
        return spec.fn(*full)
    check_grads(f, tuple(args[i] for i in spec.diff), order=spec.order, rtol=1e-5, atol=1e-7)


def test_edge_points():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal(np.asarray(special.dawsn(x)), sp.dawsn(x))
    for ours, ref in zip(special.fresnel(x), sp.fresnel(x)):
        np.testing.assert_array_equal(np.asarray(ours), ref)
    si, ci = special.sici(x)
    np.testing.assert_array_equal(np.asarray(si), sp.sici(x)[0])
    np.testing.assert_array_equal(np.asarray(ci)[:2], [-np.inf, -np.inf])
    h, a = np.meshgrid([0.0, 1.0, -2.0, np.inf], [0.0, 1.0, -1.0, np.inf, -np.inf])
    np.testing.assert_allclose(np.asarray(special.owens_t(h, a)), sp.owens_t(h, a), rtol=1e-12,
                               atol=1e-300)
    # JAX's conventions for hyp1f1 (scipy gives inf at a == b == 0)
    got = special.hyp1f1(np.array([0.0, 0.0, 2.0, 1.0]), np.array([0.0, 3.0, 2.0, 0.0]), 1.5)
    np.testing.assert_allclose(np.asarray(got), [1.0, 1.0, np.exp(1.5), np.inf])
    # Si'(0) = 1, the limit of sin(x) / x
    assert float(nanofn.grad(lambda v: special.sici(v)[0])(0.0)) == 1.0


@given(data=st.data())
def test_bessel_jn_matches_scipy(data):
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    v = data.draw(st.integers(0, 12), label="v")
    shape = data.draw(st.sampled_from([(), (1,), (3,), (2, 3)]), label="shape")
    z = np.random.default_rng(seed).uniform(-40, 40, size=shape)
    got = np.asarray(special.bessel_jn(z, v=v))
    want = sp.jv(np.arange(v + 1).reshape((v + 1,) + (1,) * len(shape)), z)
    assert got.shape == (v + 1,) + shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_bessel_jn_derivatives_jit_vmap_and_errors():
    z = np.array([0.0, 0.7, -2.5, 11.0])
    check_grads(lambda z: special.bessel_jn(z, v=3), (z,), order=2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(nanofn.vmap(nanofn.grad(
        lambda t: special.bessel_jn(t, v=0)[0]))(z)), -sp.j1(z), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(np.asarray(nanofn.jit(lambda t: special.bessel_jn(t, v=4))(z)),
                                  np.asarray(special.bessel_jn(z, v=4)))
    with pytest.raises(TypeError, match="`v`"):
        special.bessel_jn(z, v=1.5)
    with pytest.raises(ValueError, match="`v`"):
        special.bessel_jn(z, v=-1)


@given(data=st.data())
def test_sph_harm_y_matches_scipy(data):
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    size = data.draw(st.integers(1, 6), label="size")
    n = rng.integers(0, 9, size=size)
    m = np.array([rng.integers(-k, k + 1) for k in n])
    theta, phi = rng.uniform(0, np.pi, size=size), rng.uniform(0, 2 * np.pi, size=size)
    got = np.asarray(special.sph_harm_y(n, m, theta, phi))
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, sp.sph_harm_y(n, m, theta, phi), rtol=1e-11, atol=1e-14)


def test_sph_harm_y_gradients_jit_and_errors():
    n, m = np.array([3, 2, 5]), np.array([-2, 1, 0])
    theta, phi = np.array([0.4, 1.2, 2.9]), np.array([0.3, 4.0, 1.0])
    check_grads(lambda t, p: nanofn.numpy.real(special.sph_harm_y(n, m, t, p)), (theta, phi),
                order=2, rtol=1e-5, atol=1e-7)
    check_grads(lambda t, p: nanofn.numpy.imag(special.sph_harm_y(n, m, t, p)), (theta, phi),
                order=1, rtol=1e-5, atol=1e-7)
    f = nanofn.jit(lambda n, m, t, p: special.sph_harm_y(n, m, t, p, n_max=5))
    np.testing.assert_allclose(np.asarray(f(n, m, theta, phi)), sp.sph_harm_y(n, m, theta, phi),
                               rtol=1e-11)
    with pytest.raises(ValueError, match="n_max"):
        nanofn.jit(lambda n: special.sph_harm_y(n, m, theta, phi))(n)
    with pytest.raises(NotImplementedError, match="diff_n"):
        special.sph_harm_y(n, m, theta, phi, diff_n=1)


def test_hyp1f1_parameter_derivatives_are_first_order_only():
    a, b, x = np.float64(1.3), np.float64(2.1), np.float64(0.7)
    with pytest.raises(NotImplementedError, match="hyp1f1_da"):
        nanofn.grad(nanofn.grad(lambda a: special.hyp1f1(a, b, x)))(a)
    np.testing.assert_allclose(float(nanofn.grad(lambda x: special.hyp1f1(a, b, x))(x)),
                               a / b * sp.hyp1f1(a + 1, b + 1, x), rtol=1e-12)


def test_hyp2f1_special_cases_follow_jax():
    a = np.array([1.0, 0.0, 1.0, 1.5, 2.0, 1.0, 1.0, 0.5])
    b = np.array([1.0, 2.0, 2.0, 2.5, 0.5, 3.0, 1.0, 0.5])
    c = np.array([2.0, 3.0, -2.0, 2.5, 2.0, 1.0, 2.0, 3.0])
    x = np.array([0.0, 0.5, 0.5, 0.5, 0.5, 0.3, 1.5, 1.0])
    want = [1.0, 1.0, np.inf, 0.5 ** -1.5, 0.5 ** -0.5, sp.hyp2f1(1.0, 3.0, 1.0, 0.3), np.inf,
            sp.hyp2f1(0.5, 0.5, 3.0, 1.0)]
    np.testing.assert_allclose(np.asarray(special.hyp2f1(a, b, c, x)), want, rtol=1e-12)


@given(data=st.data())
def test_wofz_matches_scipy(data):
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    shape = data.draw(st.sampled_from([(), (1,), (5,), (2, 3)]), label="shape")
    rng = np.random.default_rng(seed)
    z = rng.uniform(-30, 30, size=shape) + 1j * rng.uniform(-6, 30, size=shape)
    got, want = np.asarray(special.wofz(z)), sp.wofz(z)
    assert got.dtype == np.complex128
    # accurate relative to |w| (see the docstring)
    assert np.all(np.abs(got - want) <= 1e-12 * np.abs(want)), np.max(np.abs(got - want) /
                                                                       np.abs(want))


def test_wofz_derivatives_jit_vmap_and_dtypes():
    x, y = np.array([0.3, -1.7, 4.0, 0.0]), np.array([0.5, -0.8, 2.0, 1e-3])
    for part in (nanofn.numpy.real, nanofn.numpy.imag):
        check_grads(lambda x, y, part=part: part(special.wofz(x + 1j * y)), (x, y), order=2,
                    rtol=1e-5, atol=1e-7)
    z = np.complex128(1.0 + 1.0j)
    want = -2 * z * sp.wofz(z) + 2j / np.sqrt(np.pi)  # w' = -2 z w + 2i / sqrt(pi)
    np.testing.assert_allclose(complex(nanofn.grad(special.wofz, holomorphic=True)(z)), want,
                               rtol=1e-12)
    zs = x + 1j * y
    np.testing.assert_array_equal(np.asarray(nanofn.jit(special.wofz)(zs)),
                                  np.asarray(special.wofz(zs)))
    np.testing.assert_allclose(np.asarray(nanofn.vmap(special.wofz)(zs)),
                               np.asarray(special.wofz(zs)), rtol=1e-15)
    assert special.wofz(np.float32(1.0)).dtype == np.complex64
    np.testing.assert_allclose(np.asarray(special.wofz(x)), sp.wofz(x + 0j), rtol=1e-13)


def test_jax_only_arguments_of_the_older_names():
    a = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    keep = np.array([True, False, True])
    np.testing.assert_allclose(np.asarray(special.logsumexp(a, axis=1, where=keep)),
                               sp.logsumexp(a[:, keep], axis=1), rtol=1e-12)
    b = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(np.asarray(special.logsumexp(a, axis=1, b=b, where=keep)),
                               sp.logsumexp(a[:, keep], axis=1, b=b[keep]), rtol=1e-12)
    check_grads(lambda a: special.logsumexp(a, axis=1, where=keep), (a,), order=2)
    np.testing.assert_allclose(float(special.log_ndtr(np.float64(-3.0), series_order=5)),
                               sp.log_ndtr(-3.0), rtol=1e-12)
    with pytest.raises(ValueError, match="series_order"):
        special.log_ndtr(1.0, series_order=31)
    with pytest.raises(TypeError):
        special.softmax(a, 1)  # axis is keyword-only, as in JAX
