"""Still more of `nanofn.scipy.special`: Dawson's, Fresnel's and the sine/cosine integrals,
Owen's T, Bessel functions of the first kind, the confluent hypergeometric function and
Gauss's hypergeometric function, spherical harmonics and the Faddeeva function.
Re-exported from `nanofn.scipy.special`.

Values come from numba kernels (float64 inside; `nanofn.ops._special_kernels`), derivatives
from closed forms (`nanofn.ops._special_fns`); `sph_harm_y` is composed from nanofn.numpy.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from nanofn import numpy as jnp
from nanofn.numpy._dtypes import dtype_of
from nanofn.numpy._lax_numpy import _shape
from nanofn.ops import _special_fns as sf
from nanofn.scipy._special_gamma import _c, _real

__all__ = ["dawsn", "fresnel", "sici", "owens_t", "bessel_jn", "hyp1f1", "hyp2f1", "sph_harm_y",
           "wofz"]


def dawsn(x):
    """Dawson's integral `exp(-x^2) * integral_0^x exp(t^2) dt`; its derivative is
    `1 - 2 x dawsn(x)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import dawsn
        >>> round(float(dawsn(fnp.array(1.0))), 6)
        0.53808
    """
    (x,) = _real("dawsn", x)
    return sf.dawsn_p.bind(x)


def fresnel(x):
    """The Fresnel integrals `(S(x), C(x))`: `S = integral_0^x sin(pi t^2 / 2) dt` and
    `C = integral_0^x cos(pi t^2 / 2) dt` (scipy's order: S first).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import fresnel
        >>> s, c = fresnel(fnp.array(1.0))
        >>> round(float(s), 6), round(float(c), 6)
        (0.438259, 0.779893)
    """
    (x,) = _real("fresnel", x)
    return sf.fresnel_s_p.bind(x), sf.fresnel_c_p.bind(x)


def sici(x):
    """The sine and cosine integrals `(Si(x), Ci(x))`: `Si = integral_0^x sin(t)/t dt`,
    `Ci = gamma + log|x| + integral_0^|x| (cos(t) - 1)/t dt` (for x < 0, the real part, as
    scipy and JAX).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import sici
        >>> si, ci = sici(fnp.array(1.0))
        >>> round(float(si), 6), round(float(ci), 6)
        (0.946083, 0.337404)
    """
    (x,) = _real("sici", x)
    return sf.sici_si_p.bind(x), sf.sici_ci_p.bind(x)


def owens_t(h, a):
    """Owen's T function `T(h, a) = 1/(2 pi) integral_0^a exp(-h^2 (1 + t^2) / 2) / (1 + t^2) dt`,
    the probability that a standard bivariate normal lies in a wedge; differentiable in both.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import owens_t
        >>> round(float(owens_t(fnp.array(0.5), fnp.array(2.0))), 6)
        0.141581
    """
    h, a = _real("owens_t", h, a)
    return sf.owens_t_p.bind(h, a)


def bessel_jn(z, *, v, n_iter=50):
    """Bessel functions of the first kind `J_0(z), ..., J_v(z)` of integer order.

    Args:
        z: real points.
        v: the highest order (a non-negative Python int).
        n_iter: accepted for JAX compatibility; the kernel chooses its own recurrence length
            (Miller's backward recurrence from above `max(v, |z|)`), accurate to ~1e-15.

    Returns:
        An array of shape `(v + 1,) + z.shape`, orders along the first axis. Differentiable in
        `z` (`J_n' = (J_(n-1) - J_(n+1)) / 2`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import bessel_jn
        >>> [round(float(j), 6) for j in bessel_jn(fnp.array(1.0), v=2)]
        [0.765198, 0.440051, 0.114903]
    """
    del n_iter  # unused: see the docstring
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"bessel_jn: the order `v` must be an int, got {type(v).__name__}") \
            from None
    if v < 0:
        raise ValueError(f"bessel_jn: the order `v` must be >= 0, got {v}")
    (z,) = _real("bessel_jn", z)
    orders = np.arange(v + 1, dtype=dtype_of(z)).reshape((v + 1,) + (1,) * len(_shape(z)))
    zb = jnp.broadcast_to(z, (v + 1,) + _shape(z))
    return sf.bessel_jn_p.bind(jnp.broadcast_to(orders, (v + 1,) + _shape(z)), zb)


def hyp1f1(a, b, x):
    """Kummer's confluent hypergeometric function `1F1(a; b; x) = sum_k (a)_k / (b)_k x^k / k!`.

    Computed by its power series (through Kummer's transformation
    `1F1(a; b; x) = e^x 1F1(b - a; b; -x)` for x < 0). JAX's conventions at the special
    points: 1 where `a == 0` (also for `a == b == 0`, where scipy gives inf), `exp(x)` where
    `a == b`, inf where `b == 0` (or a negative integer). Differentiable in `x`
    (`a/b 1F1(a+1; b+1; x)`) and, to first order, in `a` and `b` (the series differentiated
    term by term).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import hyp1f1
        >>> round(float(hyp1f1(fnp.array(1.0), fnp.array(2.0), fnp.array(1.0))), 6)  # e - 1
        1.718282
    """
    a, b, x = _real("hyp1f1", a, b, x)
    return sf.hyp1f1_p.bind(a, b, x)


def hyp2f1(a, b, c, x):
    """Gauss's hypergeometric function `2F1(a, b; c; x) = sum_k (a)_k (b)_k / (c)_k x^k / k!`.

    Computed by its power series, through Pfaff's transformation
    `(1 - x)^-a 2F1(a, c - b; c; x / (x - 1))` for x < 0, with JAX's special cases (in JAX's
    order): 1 where `x == 0` or `a` or `b` is 0 (and `c` is not), inf where `c` is 0 or a
    negative integer, Euler's transformation where `c - a - b <= -1`, inf at `x == 1` when
    `c - a - b <= 0`, `(1 - x)^-a` where `b == c`, `(1 - x)^-b` where `a == c`, inf for
    `x > 1` (no analytic continuation, as JAX), Gauss's sum at `x == 1`. Differentiable in
    `x` (`ab/c 2F1(a+1, b+1; c+1; x)`) and, to first order and for x < 1, in `a`, `b` and
    `c` (the series differentiated term by term).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import hyp2f1
        >>> round(float(hyp2f1(1.0, 1.0, 2.0, fnp.array(0.5))), 6)  # -log(1 - x) / x
        1.386294
    """
    a, b, c, x = _real("hyp2f1", a, b, c, x)
    return sf.hyp2f1_p.bind(a, b, c, x)


def wofz(z):
    """The Faddeeva function `w(z) = exp(-z^2) erfc(-iz)` of a complex `z`.

    Weideman's rational approximation (64 terms) in the upper half-plane, Laplace's
    continued fraction for `|z| > 12`, and `w(z) = 2 exp(-z^2) - w(-z)` below the real axis;
    accurate to about 1e-14 relative to `|w(z)|` (a part much smaller than `|w|`, like the
    real part `exp(-x^2)` on the real axis far out, is accurate only to that absolute size).
    Holomorphic, with `w'(z) = -2 z w(z) + 2i / sqrt(pi)`: `grad(..., holomorphic=True)`
    applies, and gradients of real functions of `w` follow JAX's convention.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import wofz
        >>> w = complex(wofz(fnp.array(1.0 + 1.0j, dtype=fnp.complex128)))
        >>> round(w.real, 6), round(w.imag, 6)
        (0.304744, 0.208219)
    """
    z = jnp.asarray(z)
    if not np.issubdtype(dtype_of(z), np.inexact):
        z = jnp.astype(z, np.float32)
    if np.issubdtype(dtype_of(z), np.complexfloating):
        x, y = jnp.real(z), jnp.imag(z)
    else:
        x, y = z, jnp.zeros_like(z)
    cdtype = np.complex128 if dtype_of(x) == np.float64 else np.complex64
    re, im = sf.wofz_re_p.bind(x, y), sf.wofz_im_p.bind(x, y)
    return jnp.add(jnp.astype(re, cdtype), jnp.multiply(np.asarray(1j, cdtype),
                                                         jnp.astype(im, cdtype)))


def sph_harm_y(n, m, theta, phi, diff_n=None, n_max=None):
    """Spherical harmonics `Y_n^m(theta, phi)`, scipy's `sph_harm_y` (with the Condon-Shortley
    phase): `theta` the polar angle (colatitude) in [0, pi], `phi` the azimuth.

    Composed from nanofn.numpy (a recurrence in the degree, normalised at every step, so
    high degrees neither overflow nor underflow), hence differentiable in `theta` and `phi`.

    Args:
        n: degrees, integers >= 0.
        m: orders, integers with `|m| <= n`.
        theta, phi: the angles; all four arguments broadcast.
        diff_n: not supported (as in JAX); must be None.
        n_max: the largest degree (a Python int); needed under `jit`, where `n` is not known.
            Degrees above it are clipped to it, as in JAX.

    Returns:
        complex64 (complex128 for float64 angles) values.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import sph_harm_y
        >>> complex(sph_harm_y(1, 0, fnp.array(0.0), fnp.array(0.0)))  # sqrt(3 / (4 pi))
        (0.4886025...+0j)
    """
    if diff_n is not None:
        raise NotImplementedError("sph_harm_y: the `diff_n` argument is not supported (as in "
                                  "JAX); leave it None")
    if n_max is None:
        try:
            n_max = int(np.max(np.asarray(n)))
        except Exception:  # noqa: BLE001 - a tracer under jit
            raise ValueError("sph_harm_y: pass `n_max` (a Python int, the largest degree) when "
                             "`n` is traced, e.g. under jit") from None
    theta, phi = _real("sph_harm_y", theta, phi)
    dtype = dtype_of(theta)
    n = jnp.minimum(jnp.astype(jnp.asarray(n), dtype), _c(theta, n_max))
    m = jnp.astype(jnp.asarray(m), dtype)
    n, m, theta, phi = jnp.broadcast_arrays(n, m, theta, phi)
    am = jnp.abs(m)
    x, s = jnp.cos(theta), jnp.sin(theta)
    # P_mm: the normalised sectoral term, built up one order at a time
    p_mm = jnp.full(_shape(theta), 1 / math.sqrt(4 * math.pi), dtype)
    for k in range(1, n_max + 1):
        step = jnp.multiply(_c(s, -math.sqrt((2 * k + 1) / (2 * k))), s)
        p_mm = jnp.where(jnp.less_equal(_c(am, k), am), jnp.multiply(step, p_mm), p_mm)
    result = jnp.where(jnp.equal(n, am), p_mm, jnp.zeros_like(p_mm))
    prev2, prev1 = jnp.zeros_like(p_mm), p_mm  # P_(l-2), P_(l-1) once l passes |m|
    a_prev = jnp.ones_like(p_mm)
    for ell in range(1, n_max + 1):
        lc = _c(am, ell)
        started = jnp.greater(lc, am)
        denom = jnp.where(started, jnp.subtract(_c(am, ell * ell), jnp.square(am)), _c(am, 1))
        a_l = jnp.sqrt(jnp.divide(_c(am, 4 * ell * ell - 1), denom))
        first = jnp.equal(lc, jnp.add(am, _c(am, 1)))
        rec = jnp.multiply(a_l, jnp.subtract(jnp.multiply(x, prev1), jnp.divide(prev2, a_prev)))
        start = jnp.multiply(jnp.sqrt(jnp.add(jnp.multiply(_c(am, 2), am), _c(am, 3))),
                             jnp.multiply(x, p_mm))  # P_(m+1)^m from P_m^m
        p_l = jnp.where(first, start, rec)
        prev2 = jnp.where(started, prev1, prev2)
        prev1 = jnp.where(started, p_l, prev1)
        a_prev = jnp.where(started, a_l, a_prev)
        result = jnp.where(started & jnp.equal(n, lc), p_l, result)
    angle = jnp.multiply(am, phi)
    cdtype = np.complex128 if dtype == np.float64 else np.complex64
    e = jnp.add(jnp.astype(jnp.cos(angle), cdtype),
                jnp.multiply(np.asarray(1j, cdtype), jnp.astype(jnp.sin(angle), cdtype)))
    y = jnp.multiply(jnp.astype(result, cdtype), e)
    # negative orders: Y_n^-m = (-1)^m conj(Y_n^m)
    sign = jnp.where(jnp.equal(jnp.remainder(am, _c(am, 2)), _c(am, 1)), _c(am, -1), _c(am, 1))
    neg = jnp.multiply(jnp.astype(sign, cdtype), jnp.conj(y))
    return jnp.where(jnp.less(m, _c(m, 0)), neg, y)
