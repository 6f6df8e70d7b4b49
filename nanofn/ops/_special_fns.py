"""Special-function primitives (jax.lax's lgamma, digamma, polygamma, zeta, igamma, igammac,
igamma_grad_a, regularized_incomplete_beta, bessel_i0e, bessel_i1e, and expi, expn, spence,
dawsn, fresnel, sici, owens_t, bessel_jn, hyp1f1, hyp2f1, wofz),
each with its derivatives by closed forms.

The values come from the numba kernels in `_special_kernels` (float64 inside, rounded once
for float32). Derivatives that have no closed form in terms of these functions raise
NotImplementedError rather than returning a silent zero: `betainc` in `a` and `b` (as in
JAX), `zeta` in `s`, and the integer orders of `polygamma` and `expn`.

This module is imported by `nanofn.scipy.special`, not by `import nanofn`.
"""

from __future__ import annotations

import numpy as np

from nanofn.ops._base import (_add, abs_p, lt_p, _c, _div, _mul, _neg, _select, _sub, defderiv,
                              elementwise, eq_p, exp_p, log1p_p, log_p, sign_p, sin_p, cos_p, erf_p)


def _real_float(dtype):
    return np.issubdtype(dtype, np.floating)


def _kernel(name):
    def impl(*args):
        from nanofn.ops import _special_kernels
        return _special_kernels.call(name, *args)
    impl.__name__ = name
    return impl


def _prim(name, kernel, nargs):
    return elementwise(name, _kernel(kernel), nargs=nargs, allowed=_real_float)


def _not_differentiable(prim_name, arg):
    def rule(g, *args, out):
        raise NotImplementedError(
            f"{prim_name}: the derivative with respect to `{arg}` is not implemented; "
            "hold that argument fixed (e.g. with nanofn.lax.stop_gradient)")
    return rule


def _safe(pred, x, fill):
    """`x` with `fill` where `pred` holds (so an unused branch stays finite)."""
    return _select(pred, x, _c(x, fill))


# --- lgamma, digamma, polygamma ------------------------------------------------------
lgamma_p = _prim("lgamma", "lgamma", 1)
defderiv(lgamma_p, lambda g, x, *, out: _mul(g, digamma_p.bind(x)))  # d log G = psi

digamma_p = _prim("digamma", "digamma", 1)
defderiv(digamma_p, lambda g, x, *, out: _mul(g, polygamma_p.bind(_c(x, 1), x)))

polygamma_p = _prim("polygamma", "polygamma", 2)
defderiv(polygamma_p, _not_differentiable("polygamma", "n"),
         lambda g, n, x, *, out: _mul(g, polygamma_p.bind(_add(n, _c(n, 1)), x)))

# --- Hurwitz zeta: d/dq zeta(s, q) = -s zeta(s + 1, q) --------------------------------
zeta_p = _prim("zeta", "zeta", 2)
# d/ds zeta(s, q) = -sum log(k + q) (k + q)^-s: its own kernel, whose derivative in q is
# -zeta(s + 1, q) - s zeta_ds(s + 1, q) (the derivative of log(k + q) (k + q)^-s in q)
zeta_ds_p = _prim("zeta_ds", "zeta_ds", 2)
defderiv(zeta_p, lambda g, s, q, *, out: _mul(g, zeta_ds_p.bind(s, q)),
         lambda g, s, q, *, out: _mul(g, _neg(_mul(s, zeta_p.bind(_add(s, _c(s, 1)), q)))))
defderiv(zeta_ds_p, _not_differentiable("zeta_ds", "s"),  # a second derivative of zeta in s
         lambda g, s, q, *, out: _mul(g, _neg(_add(
             zeta_p.bind(_add(s, _c(s, 1)), q),
             _mul(s, zeta_ds_p.bind(_add(s, _c(s, 1)), q))))))


# --- incomplete gamma ---------------------------------------------------------------
def _igamma_dx(a, x):
    # d/dx P(a, x) = x^(a-1) e^(-x) / Gamma(a)
    return exp_p.bind(_sub(_sub(_mul(_sub(a, _c(a, 1)), log_p.bind(x)), x), lgamma_p.bind(a)))


igamma_p = _prim("igamma", "igamma", 2)
igammac_p = _prim("igammac", "igammac", 2)
igamma_grad_a_p = _prim("igamma_grad_a", "igamma_grad_a", 2)
defderiv(igamma_p, lambda g, a, x, *, out: _mul(g, igamma_grad_a_p.bind(a, x)),
         lambda g, a, x, *, out: _mul(g, _igamma_dx(a, x)))
defderiv(igammac_p, lambda g, a, x, *, out: _neg(_mul(g, igamma_grad_a_p.bind(a, x))),
         lambda g, a, x, *, out: _neg(_mul(g, _igamma_dx(a, x))))
# d/dx (dP/da) = d/da (dP/dx) = dP/dx (log x - psi(a))
defderiv(igamma_grad_a_p, _not_differentiable("igamma_grad_a", "a"),
         lambda g, a, x, *, out: _mul(g, _mul(_igamma_dx(a, x),
                                              _sub(log_p.bind(x), digamma_p.bind(a)))))

# --- regularized incomplete beta: d/dx I_x(a, b) = x^(a-1) (1-x)^(b-1) / B(a, b) -------
regularized_incomplete_beta_p = _prim("regularized_incomplete_beta", "betainc", 3)


def _betainc_dx(g, a, b, x, *, out):
    log_beta = _sub(_add(lgamma_p.bind(a), lgamma_p.bind(b)), lgamma_p.bind(_add(a, b)))
    log_d = _sub(_add(_mul(_sub(a, _c(a, 1)), log_p.bind(x)),
                      _mul(_sub(b, _c(b, 1)), log1p_p.bind(_neg(x)))), log_beta)
    return _mul(g, exp_p.bind(log_d))


defderiv(regularized_incomplete_beta_p, _not_differentiable("betainc", "a"),
         _not_differentiable("betainc", "b"), _betainc_dx)

# --- exponentially scaled modified Bessel functions -----------------------------------
bessel_i0e_p = _prim("bessel_i0e", "i0e", 1)
bessel_i1e_p = _prim("bessel_i1e", "i1e", 1)
# i0e' = i1e - sign(x) i0e
defderiv(bessel_i0e_p, lambda g, x, *, out: _mul(g, _sub(bessel_i1e_p.bind(x),
                                                          _mul(sign_p.bind(x), out))))


def _bessel_i1e_deriv(g, x, *, out):
    # i1e' = i0e - i1e (sign(x) + 1/x); the limit at 0 is 1/2
    zero = eq_p.bind(x, _c(x, 0))
    safe_x = _safe(zero, x, 1.0)
    d = _sub(bessel_i0e_p.bind(x), _mul(out, _add(sign_p.bind(x), _div(_c(x, 1), safe_x))))
    return _mul(g, _safe(zero, d, 0.5))


defderiv(bessel_i1e_p, _bessel_i1e_deriv)

# --- exponential integrals: Ei'(x) = e^x / x, E_n'(x) = -E_(n-1)(x) -------------------
expi_p = _prim("expi", "expi", 1)
defderiv(expi_p, lambda g, x, *, out: _mul(g, _div(exp_p.bind(x), x)))

expn_p = _prim("expn", "expn", 2)


def _expn_dx(g, n, x, *, out):
    # E_n' = -E_(n-1) for n >= 1; E_0(x) = e^-x / x has E_0' = -e^-x (1 + x) / x^2
    zero = eq_p.bind(n, _c(n, 0))
    lower = expn_p.bind(_safe(zero, _sub(n, _c(n, 1)), 0.0), x)
    e0_deriv = _div(_mul(exp_p.bind(_neg(x)), _add(_c(x, 1), x)), _mul(x, x))
    return _neg(_mul(g, _select(zero, lower, e0_deriv)))


defderiv(expn_p, _not_differentiable("expn", "n"), _expn_dx)


# --- spence(x) = Li2(1 - x): d/dx = log(x) / (1 - x) = -log1p(u) / u with u = x - 1 ---------
def _spence_deriv(g, x, *, out):
    u = _sub(x, _c(x, 1))
    near = lt_p.bind(abs_p.bind(u), _c(u, 1e-3))
    safe_u = _safe(near, u, 1.0)
    far = _div(log1p_p.bind(safe_u), safe_u)
    # log1p(u) / u = 1 - u/2 + u^2/3 - u^3/4 + ..., a polynomial that stays differentiable
    taylor = _add(_c(u, 1), _mul(u, _add(_c(u, -0.5), _mul(u, _add(_c(u, 1 / 3),
                                                                   _mul(u, _c(u, -0.25)))))))
    return _neg(_mul(g, _select(near, far, taylor)))


spence_p = _prim("spence", "spence", 1)
defderiv(spence_p, _spence_deriv)

# --- Dawson's integral: D' = 1 - 2 x D -------------------------------------------------
dawsn_p = _prim("dawsn", "dawsn", 1)
defderiv(dawsn_p, lambda g, x, *, out: _mul(g, _sub(_c(x, 1), _mul(_mul(_c(x, 2), x), out))))

# --- Fresnel integrals: S' = sin(pi x^2 / 2), C' = cos(pi x^2 / 2) ---------------------------
fresnel_s_p = _prim("fresnel_s", "fresnel_s", 1)
fresnel_c_p = _prim("fresnel_c", "fresnel_c", 1)


def _half_pi_x2(x):
    return _mul(_c(x, np.pi / 2), _mul(x, x))


defderiv(fresnel_s_p, lambda g, x, *, out: _mul(g, sin_p.bind(_half_pi_x2(x))))
defderiv(fresnel_c_p, lambda g, x, *, out: _mul(g, cos_p.bind(_half_pi_x2(x))))

# --- sine and cosine integrals: Si' = sin(x) / x (1 at 0), Ci' = cos(x) / x ------------------
sici_si_p = _prim("sici_si", "sici_si", 1)
sici_ci_p = _prim("sici_ci", "sici_ci", 1)


def _si_deriv(g, x, *, out):
    zero = eq_p.bind(x, _c(x, 0))
    safe_x = _safe(zero, x, 1.0)
    return _mul(g, _safe(zero, _div(sin_p.bind(safe_x), safe_x), 1.0))


defderiv(sici_si_p, _si_deriv)
defderiv(sici_ci_p, lambda g, x, *, out: _mul(g, _div(cos_p.bind(x), x)))


# --- Owen's T: dT/dh = -phi(h) erf(a h / sqrt2) / 2, dT/da = exp(-(1+a^2) h^2/2) / (2 pi (1+a^2))
owens_t_p = _prim("owens_t", "owens_t", 2)


def _owens_t_dh(g, h, a, *, out):
    phi = _mul(_c(h, 1 / np.sqrt(2 * np.pi)), exp_p.bind(_mul(_c(h, -0.5), _mul(h, h))))
    erf_ah = erf_p.bind(_mul(_mul(a, h), _c(h, 1 / np.sqrt(2))))
    return _mul(g, _mul(_mul(_c(h, -0.5), phi), erf_ah))


def _owens_t_da(g, h, a, *, out):
    one_a2 = _add(_c(a, 1), _mul(a, a))
    return _mul(g, _div(exp_p.bind(_mul(_c(h, -0.5), _mul(one_a2, _mul(h, h)))),
                        _mul(_c(a, 2 * np.pi), one_a2)))


defderiv(owens_t_p, _owens_t_dh, _owens_t_da)

# --- Bessel J_n of integer order: J_n' = (J_(n-1) - J_(n+1)) / 2, J_0' = -J_1 ---------------
bessel_jn_p = _prim("bessel_jn", "bessel_jn", 2)


def _bessel_jn_dx(g, n, x, *, out):
    zero = eq_p.bind(n, _c(n, 0))
    one = _c(n, 1)
    below = bessel_jn_p.bind(_safe(zero, _sub(n, one), 1.0), x)
    above = bessel_jn_p.bind(_add(n, one), x)
    d = _select(zero, _mul(_c(x, 0.5), _sub(below, above)), _neg(above))
    return _mul(g, d)


defderiv(bessel_jn_p, _not_differentiable("bessel_jn", "v"), _bessel_jn_dx)

# --- confluent hypergeometric 1F1: d/dx M(a, b, x) = a/b M(a+1, b+1, x); d/da, d/db by the
# series differentiated term by term (their own kernels, without further derivatives) -------
hyp1f1_p = _prim("hyp1f1", "hyp1f1", 3)
hyp1f1_da_p = _prim("hyp1f1_da", "hyp1f1_da", 3)
hyp1f1_db_p = _prim("hyp1f1_db", "hyp1f1_db", 3)
defderiv(hyp1f1_p, lambda g, a, b, x, *, out: _mul(g, hyp1f1_da_p.bind(a, b, x)),
         lambda g, a, b, x, *, out: _mul(g, hyp1f1_db_p.bind(a, b, x)),
         lambda g, a, b, x, *, out: _mul(g, _mul(_div(a, b), hyp1f1_p.bind(
             _add(a, _c(a, 1)), _add(b, _c(b, 1)), x))))
for _p in (hyp1f1_da_p, hyp1f1_db_p):
    defderiv(_p, _not_differentiable(_p.name, "a"), _not_differentiable(_p.name, "b"),
             _not_differentiable(_p.name, "x"))

# --- Gauss hypergeometric 2F1: d/dx F(a, b; c; x) = ab/c F(a+1, b+1; c+1; x); d/da, d/db,
# d/dc by the series differentiated term by term (their own kernels, first order only) -------
hyp2f1_p = elementwise("hyp2f1", _kernel("hyp2f1"), nargs=4, allowed=_real_float)
hyp2f1_da_p = elementwise("hyp2f1_da", _kernel("hyp2f1_da"), nargs=4, allowed=_real_float)
hyp2f1_db_p = elementwise("hyp2f1_db", _kernel("hyp2f1_db"), nargs=4, allowed=_real_float)
hyp2f1_dc_p = elementwise("hyp2f1_dc", _kernel("hyp2f1_dc"), nargs=4, allowed=_real_float)


def _hyp2f1_dx(g, a, b, c, x, *, out):
    one = _c(a, 1)
    return _mul(g, _mul(_div(_mul(a, b), c),
                        hyp2f1_p.bind(_add(a, one), _add(b, one), _add(c, one), x)))


defderiv(hyp2f1_p, lambda g, a, b, c, x, *, out: _mul(g, hyp2f1_da_p.bind(a, b, c, x)),
         lambda g, a, b, c, x, *, out: _mul(g, hyp2f1_db_p.bind(a, b, c, x)),
         lambda g, a, b, c, x, *, out: _mul(g, hyp2f1_dc_p.bind(a, b, c, x)), _hyp2f1_dx)
for _p in (hyp2f1_da_p, hyp2f1_db_p, hyp2f1_dc_p):
    defderiv(_p, *[_not_differentiable(_p.name, arg) for arg in "abcx"])

# --- Faddeeva w(z) = exp(-z^2) erfc(-iz) as its real and imaginary parts u(x, y), v(x, y).
# w is holomorphic with w' = -2 z w + 2i/sqrt(pi) =: P + iQ, so (Cauchy-Riemann)
# du/dx = dv/dy = P and dv/dx = -du/dy = Q --------------------------------------------------
wofz_re_p = _prim("wofz_re", "wofz_re", 2)
wofz_im_p = _prim("wofz_im", "wofz_im", 2)


def _wofz_pq(x, y):
    u, v = wofz_re_p.bind(x, y), wofz_im_p.bind(x, y)
    p = _mul(_c(x, -2), _sub(_mul(x, u), _mul(y, v)))
    q = _add(_mul(_c(x, -2), _add(_mul(x, v), _mul(y, u))), _c(x, 2 / np.sqrt(np.pi)))
    return p, q


defderiv(wofz_re_p, lambda g, x, y, *, out: _mul(g, _wofz_pq(x, y)[0]),
         lambda g, x, y, *, out: _neg(_mul(g, _wofz_pq(x, y)[1])))
defderiv(wofz_im_p, lambda g, x, y, *, out: _mul(g, _wofz_pq(x, y)[1]),
         lambda g, x, y, *, out: _mul(g, _wofz_pq(x, y)[0]))

PRIMITIVES = (lgamma_p, digamma_p, polygamma_p, zeta_p, zeta_ds_p, igamma_p, igammac_p,
              igamma_grad_a_p, regularized_incomplete_beta_p, bessel_i0e_p, bessel_i1e_p,
              expi_p, expn_p, spence_p, dawsn_p, fresnel_s_p, fresnel_c_p, sici_si_p, sici_ci_p,
              owens_t_p, bessel_jn_p, hyp1f1_p, hyp1f1_da_p, hyp1f1_db_p, hyp2f1_p, hyp2f1_da_p,
              hyp2f1_db_p, hyp2f1_dc_p, wofz_re_p, wofz_im_p)
