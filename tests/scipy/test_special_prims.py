"""The special-function primitives (nanofn.ops._special_fns), from one table: values against
scipy.special across their domains (tails included) and at edge points, jit against eager,
the vmap law, and derivatives against finite differences (check_grads, float64, order 2
where the derivative is itself differentiable)."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, strategies as st

import nanofn
from nanofn.ops import _special_fns as S
from nanofn.testing import broadcastable_shapes, check_grads


class Spec(NamedTuple):
    prim: object
    ref: Callable
    domains: tuple          # one (lo, hi, kind) per argument; kind: "u" uniform, "log", "int"
    diff: tuple             # arguments with a derivative
    order: int = 2
    rtol: float = 1e-12
    grad_domains: tuple = None  # narrower domains for the gradient checks


def _draw(rng, shape, dom):
    lo, hi, kind = dom
    if kind == "log":
        return np.exp(rng.uniform(np.log(lo), np.log(hi), size=shape))
    if kind == "int":
        return rng.integers(lo, hi + 1, size=shape).astype(np.float64)
    return rng.uniform(lo, hi, size=shape)


def _zeta_ds_reference(s, q):
    """d/ds zeta(s, q) by a fourth-order central difference of scipy's zeta (relative
    error below 1e-8 on the table's domain)."""
    h = 1e-3 / (1.0 + np.abs(np.log(q)))  # the terms vary as exp(-s log(k + q))
    return (8 * (sp.zeta(s + h, q) - sp.zeta(s - h, q))
            - (sp.zeta(s + 2 * h, q) - sp.zeta(s - 2 * h, q))) / (12 * h)


def _away_from_integers(x):
    return np.where(np.abs(x - np.round(x)) < 0.05, np.round(x) + 0.25, x)


SPECS = {
    "lgamma": Spec(S.lgamma_p, sp.gammaln, ((-30, 150, "u"),), (0,), rtol=1e-10,
                   grad_domains=((0.1, 30, "log"),)),
    "digamma": Spec(S.digamma_p, sp.digamma, ((-30, 1e4, "u"),), (0,), rtol=1e-9,
                    grad_domains=((0.1, 30, "log"),)),
    "polygamma": Spec(S.polygamma_p, sp.polygamma, ((0, 5, "int"), (1e-3, 1e3, "log")), (1,),
                      rtol=1e-11, grad_domains=((0, 3, "int"), (0.2, 20, "log"))),
    # zeta's derivative in s is zeta_ds, whose own derivative in s is not implemented
    "zeta": Spec(S.zeta_p, sp.zeta, ((1.01, 40, "u"), (1e-3, 1e3, "log")), (0, 1), order=1,
                 rtol=1e-12, grad_domains=((1.5, 6, "u"), (0.2, 20, "log"))),
    "zeta_ds": Spec(S.zeta_ds_p, lambda s, q: _zeta_ds_reference(s, q),
                    ((1.2, 40, "u"), (1e-2, 1e3, "log")), (1,), order=1, rtol=1e-7,
                    grad_domains=((1.5, 6, "u"), (0.2, 20, "log"))),
    "igamma": Spec(S.igamma_p, sp.gammainc, ((1e-2, 300, "log"), (1e-3, 500, "log")), (0, 1),
                   order=1, rtol=1e-10, grad_domains=((0.3, 20, "log"), (0.1, 30, "log"))),
    "igammac": Spec(S.igammac_p, sp.gammaincc, ((1e-2, 300, "log"), (1e-3, 500, "log")), (0, 1),
                    order=1, rtol=1e-10, grad_domains=((0.3, 20, "log"), (0.1, 30, "log"))),
    "regularized_incomplete_beta": Spec(
        S.regularized_incomplete_beta_p, sp.betainc,
        ((1e-2, 200, "log"), (1e-2, 200, "log"), (0, 1, "u")), (2,), rtol=1e-9,
        grad_domains=((0.5, 10, "log"), (0.5, 10, "log"), (0.05, 0.95, "u"))),
    "bessel_i0e": Spec(S.bessel_i0e_p, sp.i0e, ((-800, 800, "u"),), (0,),
                       grad_domains=((0.05, 60, "u"),)),
    "bessel_i1e": Spec(S.bessel_i1e_p, sp.i1e, ((-800, 800, "u"),), (0,),
                       grad_domains=((0.05, 60, "u"),)),
    "expi": Spec(S.expi_p, sp.expi, ((-700, 700, "u"),), (0,), rtol=1e-12,
                 grad_domains=((0.05, 50, "u"),)),
    "expn": Spec(S.expn_p, sp.expn, ((0, 8, "int"), (1e-6, 600, "log")), (1,), rtol=1e-12,
                 grad_domains=((0, 5, "int"), (0.1, 30, "log"))),
    "spence": Spec(S.spence_p, sp.spence, ((1e-8, 1e8, "log"),), (0,), rtol=1e-12,
                   grad_domains=((0.05, 50, "log"),)),
    "dawsn": Spec(S.dawsn_p, sp.dawsn, ((-100, 100, "u"),), (0,), grad_domains=((-6, 6, "u"),)),
    "fresnel_s": Spec(S.fresnel_s_p, lambda x: sp.fresnel(x)[0], ((-10, 10, "u"),), (0,),
                      rtol=1e-11, grad_domains=((-3, 3, "u"),)),
    "fresnel_c": Spec(S.fresnel_c_p, lambda x: sp.fresnel(x)[1], ((-10, 10, "u"),), (0,),
                      rtol=1e-11, grad_domains=((-3, 3, "u"),)),
    "sici_si": Spec(S.sici_si_p, lambda x: sp.sici(x)[0], ((-100, 100, "u"),), (0,),
                    grad_domains=((-8, 8, "u"),)),
    "sici_ci": Spec(S.sici_ci_p, lambda x: sp.sici(x)[1], ((1e-3, 100, "log"),), (0,),
                    rtol=1e-11, grad_domains=((0.2, 8, "u"),)),
    "owens_t": Spec(S.owens_t_p, sp.owens_t, ((-6, 6, "u"), (-5, 5, "u")), (0, 1), rtol=1e-11),
    "bessel_jn": Spec(S.bessel_jn_p, sp.jv, ((0, 10, "int"), (0.5, 50, "u")), (1,), rtol=1e-9,
                      grad_domains=((0, 5, "int"), (0.5, 10, "u"))),
    "hyp1f1": Spec(S.hyp1f1_p, sp.hyp1f1, ((0.1, 5, "log"), (0.2, 5, "log"), (-20, 20, "u")),
                   (2,), rtol=1e-10, grad_domains=((0.3, 3, "log"), (0.5, 4, "log"), (-4, 4, "u"))),
    "hyp2f1": Spec(S.hyp2f1_p, sp.hyp2f1,
                   ((0.1, 5, "log"), (0.1, 5, "log"), (0.2, 8, "log"), (-10, 0.9, "u")), (3,),
                   rtol=1e-9, grad_domains=((0.3, 3, "log"), (0.3, 3, "log"), (0.5, 4, "log"),
                                            (-2, 0.7, "u"))),
    "wofz_re": Spec(S.wofz_re_p, lambda x, y: sp.wofz(x + 1j * y).real,
                    ((-6, 6, "u"), (0.5, 6, "u")), (0, 1), rtol=1e-11),
    "wofz_im": Spec(S.wofz_im_p, lambda x, y: sp.wofz(x + 1j * y).imag,
                    ((-6, 6, "u"), (0.5, 6, "u")), (0, 1), rtol=1e-11),
}


def _case(data, spec, domains):
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    rng = np.random.default_rng(seed)
    n = len(domains)
    shapes = data.draw(broadcastable_shapes(n, max_dims=2, max_side=4)) if n > 1 else \
        [data.draw(broadcastable_shapes(1, max_dims=2, max_side=5))[0]]
    return [_draw(rng, s, d) for s, d in zip(shapes, domains)]


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_values_match_scipy(name, data):
    spec = SPECS[name]
    args = _case(data, spec, spec.domains)
    if name in ("lgamma", "digamma"):
        args = [_away_from_integers(args[0])]  # poles and near-pole cancellation
    got = np.asarray(spec.prim.bind(*args))
    want = spec.ref(*args)
    assert got.shape == np.shape(want) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=spec.rtol, atol=1e-300)
    np.testing.assert_array_equal(np.asarray(nanofn.jit(spec.prim.bind)(*args)), got)
    # float32 in, float32 out, rounded from the float64 value
    got32 = np.asarray(spec.prim.bind(*[a.astype(np.float32) for a in args]))
    assert got32.dtype == np.float32


@pytest.mark.parametrize("name", sorted(SPECS))
def test_vmap_law(name):
    spec = SPECS[name]
    rng = np.random.default_rng(0)
    gd = spec.grad_domains or spec.domains
    args = [_draw(rng, (3, 2), d) for d in gd]
    batched = np.asarray(nanofn.vmap(spec.prim.bind)(*args))
    stacked = np.stack([np.asarray(spec.prim.bind(*[a[i] for a in args])) for i in range(3)])
    np.testing.assert_allclose(batched, stacked, rtol=1e-15)
    # one argument mapped, the others broadcast
    if len(args) > 1:
        in_axes = (0,) + (None,) * (len(args) - 1)
        fixed = [args[0]] + [a[0] for a in args[1:]]
        got = np.asarray(nanofn.vmap(spec.prim.bind, in_axes=in_axes)(*fixed))
        np.testing.assert_allclose(got, np.asarray(spec.prim.bind(*fixed)), rtol=1e-15)


@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_derivatives_match_finite_differences(name, data):
    spec = SPECS[name]
    args = _case(data, spec, spec.grad_domains or spec.domains)
    for i in spec.diff:
        def f(x, i=i):
            return spec.prim.bind(*args[:i], x, *args[i + 1:])
        # second differences of a central difference lose about three more digits
        check_grads(f, (args[i],), order=spec.order, rtol=1e-5,
                    atol=1e-7 if spec.order == 1 else 1e-6)


# ------------------------------------------------------------------------ edges and identities


def test_edge_points_follow_scipy():
    edges = np.array([0.0, -0.0, -1.0, -2.5, 1e-300, np.inf, -np.inf, np.nan])
    for prim, ref in ((S.lgamma_p, sp.gammaln), (S.digamma_p, sp.digamma),
                      (S.bessel_i0e_p, sp.i0e), (S.bessel_i1e_p, sp.i1e), (S.expi_p, sp.expi)):
        want = ref(edges)
        if prim is S.lgamma_p:
            want[6] = np.inf  # log|Gamma(-inf)|: scipy says -inf, libm and JAX inf
        np.testing.assert_allclose(np.asarray(prim.bind(edges)), want, rtol=1e-12)
    pos = np.array([0.0, 1e-300, 1.0, np.inf, np.nan, -1.0])
    np.testing.assert_allclose(np.asarray(S.spence_p.bind(pos)), sp.spence(pos), rtol=1e-12)
    a, x = np.meshgrid([0.0, 1.0, np.inf, np.nan, -1.0], [0.0, 2.0, np.inf, np.nan, -1.0])
    for prim, ref in ((S.igamma_p, sp.gammainc), (S.igammac_p, sp.gammaincc)):
        np.testing.assert_allclose(np.asarray(prim.bind(a, x)), ref(a, x), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(S.expn_p.bind(a, x)), sp.expn(a, x), rtol=1e-12)
    s, q = np.meshgrid([0.5, 1.0, 2.0, 3.0], [-2.0, -1.5, 0.0, 1.0, np.inf])
    np.testing.assert_allclose(np.asarray(S.zeta_p.bind(s, q)), sp.zeta(s, q), rtol=1e-12)
    b = np.array([0.0, 0.5, 1.0, -0.1, 1.1, np.nan])
    np.testing.assert_allclose(np.asarray(S.regularized_incomplete_beta_p.bind(2.0, 3.0, b)),
                               sp.betainc(2.0, 3.0, b), rtol=1e-12)


def test_igamma_grad_a_matches_finite_differences_of_the_accurate_side():
    rng = np.random.default_rng(1)
    a = np.exp(rng.uniform(-3, 5, 400))
    x = np.exp(rng.uniform(-5, 5.5, 400))
    h = 1e-6 * a
    fd_p = (sp.gammainc(a + h, x) - sp.gammainc(a - h, x)) / (2 * h)
    fd_q = -(sp.gammaincc(a + h, x) - sp.gammaincc(a - h, x)) / (2 * h)
    fd = np.where(sp.gammainc(a, x) < 0.5, fd_p, fd_q)  # differences of the small side
    got = np.asarray(S.igamma_grad_a_p.bind(a, x))
    np.testing.assert_allclose(got, fd, rtol=1e-4, atol=1e-300)


def test_analytic_derivatives():
    x = np.array([0.3, 1.0, 2.5, 10.0])
    grad = nanofn.vmap(nanofn.grad(lambda v: S.lgamma_p.bind(v)))
    np.testing.assert_allclose(np.asarray(grad(x)), sp.digamma(x), rtol=1e-12)
    # d/dx I0 = I1, so d/dx i0e = i1e - i0e for x > 0
    g0 = nanofn.vmap(nanofn.grad(lambda v: S.bessel_i0e_p.bind(v)))(x)
    np.testing.assert_allclose(np.asarray(g0), sp.i1e(x) - sp.i0e(x), rtol=1e-12)
    # the limit of i1e' at 0 is 1/2; spence' at 1 is -1
    assert float(nanofn.grad(lambda v: S.bessel_i1e_p.bind(v))(0.0)) == 0.5
    assert float(nanofn.grad(lambda v: S.spence_p.bind(v))(1.0)) == -1.0
    np.testing.assert_allclose(float(nanofn.grad(nanofn.grad(lambda v: S.spence_p.bind(v)))(1.0)),
                               0.5, rtol=1e-12)
    # d/dx E_0 and its second derivative (E_0(x) = e^-x / x)
    d1 = nanofn.grad(lambda v: S.expn_p.bind(np.float64(0), v))(np.float64(2))
    np.testing.assert_allclose(float(d1), -np.exp(-2.0) * 3 / 4, rtol=1e-12)


@pytest.mark.parametrize("prim,which,arg", [
    (S.regularized_incomplete_beta_p, 0, "a"), (S.regularized_incomplete_beta_p, 1, "b"),
    (S.zeta_ds_p, 0, "s"), (S.polygamma_p, 0, "n"), (S.expn_p, 0, "n")])
def test_missing_derivatives_raise_instead_of_returning_zero(prim, which, arg):
    args = [2.0, 3.0, 0.4][:len(prim.jvp_terms)]

    def f(v):
        return prim.bind(*args[:which], v, *args[which + 1:])
    with pytest.raises(NotImplementedError, match=f"`{arg}`"):
        nanofn.grad(f)(args[which])


@pytest.mark.parametrize("prim,ref,which", [
    (S.hyp1f1_da_p, sp.hyp1f1, 0), (S.hyp1f1_db_p, sp.hyp1f1, 1),
    (S.hyp2f1_da_p, sp.hyp2f1, 0), (S.hyp2f1_db_p, sp.hyp2f1, 1), (S.hyp2f1_dc_p, sp.hyp2f1, 2)])
def test_hypergeometric_parameter_derivatives_match_differences_of_scipy(prim, ref, which):
    rng = np.random.default_rng(2)
    n = 3 if ref is sp.hyp1f1 else 4
    args = [np.exp(rng.uniform(-1, 1.2, 40)) for _ in range(n - 1)]
    args.append(rng.uniform(-15, 15, 40) if n == 3 else rng.uniform(-5, 0.9, 40))
    h = 1e-6 * args[which]
    up = [a + h if i == which else a for i, a in enumerate(args)]
    down = [a - h if i == which else a for i, a in enumerate(args)]
    fd = (ref(*up) - ref(*down)) / (2 * h)
    np.testing.assert_allclose(np.asarray(prim.bind(*args)), fd, rtol=1e-6, atol=1e-9)


def test_kernels_compile_once_when_threads_race_for_them(monkeypatch):
    # A background plan build and the caller may both reach the special-function kernels
    # first: they must compile one at a time, under a lock (a race once left `hyp2f1`
    # missing for the rest of the process), and each only when it is first used.
    import threading
    from nanofn.ops import _special_kernels as K
    monkeypatch.setattr(K, "_ufuncs", {})
    monkeypatch.setattr(K, "_wrapped", False)
    barrier, results, errors = threading.Barrier(3), {}, []

    def work(name, args):
        barrier.wait()
        try:
            results[name] = float(K.call(name, *args))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)
    threads = [threading.Thread(target=work, args=a) for a in
               (("hyp2f1", (0.5, 0.5, 1.5, 0.25)), ("i0e", (1.0,)),
                ("betainc", (2.0, 3.0, 0.4)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(K._ufuncs) == {"hyp2f1", "i0e", "betainc"}
    np.testing.assert_allclose(results["hyp2f1"], sp.hyp2f1(0.5, 0.5, 1.5, 0.25))
    np.testing.assert_allclose(results["i0e"], sp.i0e(1.0))
    np.testing.assert_allclose(results["betainc"], sp.betainc(2.0, 3.0, 0.4))
