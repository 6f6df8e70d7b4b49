"""Scalar kernels for the special functions numpy lacks (gamma family, incomplete gamma and
beta, Hurwitz zeta, scaled Bessel I0/I1, exponential integrals, dilogarithm).

Each is a plain-Python scalar function in float64 that numba compiles into a ufunc on first
use (cached on disk), so `import nanofn` never imports numba. float32 inputs are computed
in float64 and rounded once. The algorithms are the classical ones: recurrences and
asymptotic series for digamma, Euler-Maclaurin summation for the Hurwitz zeta function (as
in Cephes), the power series and Legendre's continued fraction for the incomplete gamma
functions, Lentz's continued fraction for the incomplete beta function, and for the
derivative of P(a, x) in `a` the same series and continued fraction carried with their
derivatives (forward mode by hand).
"""

from __future__ import annotations

import math
import threading

import numpy as np

# numba's math.floor returns an int64, which wraps for |x| >= 2**63 (digamma(-1e300) gave
# 692, not NaN): the kernels use np.floor, a float

EULER = 0.5772156649015329
MACHEP = 1.11022302462515654042e-16
BIG = 4.503599627370496e15
BIGINV = 2.22044604925031308085e-16
MAXITER = 2000

# Euler-Maclaurin coefficients (2k)! / B_2k, as in Cephes' zeta.c
_ZETA_A = (12.0, -720.0, 30240.0, -1209600.0, 47900160.0, -1.8924375803183791606e9,
           7.47242496e10, -2.950130727918164224e12, 1.1646782814350067249e14,
           -4.5979787224074726105e15, 1.8152105401943546773e17, -7.1661652561756670113e18)


def lgamma(x):
    return math.lgamma(x)


def digamma(x):
    if math.isnan(x):
        return math.nan
    if x == math.inf:
        return math.inf
    if x == -math.inf:
        return math.nan
    if x == 0.0:
        return -math.copysign(math.inf, x)  # the pole at 0 approached from that side
    if x < 0.0 and x == np.floor(x):
        return math.nan
    shift = 0.0
    if x < 0.0:  # reflection: psi(1 - x) - psi(x) = pi cot(pi x)
        # tan(pi x) from x less its nearest integer: exact, and in [-1/2, 1/2], so a tiny
        # x keeps its digits (x - floor(x) rounded -1e-30 to 1, and psi to 2.6e16, not 1e30)
        r = x - np.floor(x + 0.5)
        shift = -math.pi / math.tan(math.pi * r)
        x = 1.0 - x
    acc = 0.0
    while x < 10.0:
        acc -= 1.0 / x
        x += 1.0
    z = 1.0 / (x * x)
    series = z * (1.0 / 12 - z * (1.0 / 120 - z * (1.0 / 252 - z * (
        1.0 / 240 - z * (1.0 / 132 - z * (691.0 / 32760 - z / 12.0))))))
    return shift + acc + math.log(x) - 0.5 / x - series


def zeta(s, q):
    """Hurwitz zeta sum_{k>=0} (k + q)^-s for s > 1."""
    if math.isnan(s) or math.isnan(q):
        return math.nan
    if s == 1.0:
        return math.inf
    if s < 1.0:
        return math.nan
    if q <= 0.0:
        if q == np.floor(q):
            return math.inf
        if s != np.floor(s):
            return math.nan  # (k + q)^-s is not real
    if q == math.inf:
        return 0.0
    total = math.pow(q, -s)
    a = q
    i = 0
    b = 0.0
    while i < 9 or a <= 9.0:
        i += 1
        a += 1.0
        b = math.pow(a, -s)
        total += b
        if abs(b / total) < MACHEP:
            return total
    w = a
    total += b * w / (s - 1.0) - 0.5 * b
    fac = 1.0
    k = 0.0
    for j in range(12):
        fac *= s + k
        b /= w
        t = fac * b / _ZETA_A[j]
        total += t
        if abs(t / total) < MACHEP:
            break
        k += 1.0
        fac *= s + k
        b /= w
        k += 1.0
    return total


def zeta_ds(s, q):
    """d/ds of the Hurwitz zeta, -sum_{k>=0} log(k + q) (k + q)^-s for s > 1: `zeta`'s
    Euler-Maclaurin sum with every term's derivative in s carried along."""
    if math.isnan(s) or math.isnan(q):
        return math.nan
    if s == 1.0:
        return -math.inf
    if s < 1.0 or q <= 0.0:  # (k + q)^-s or its log is not real (or a pole)
        return math.nan
    if q == math.inf:
        return 0.0
    b = math.pow(q, -s)
    db = -math.log(q) * b
    total, dtotal = b, db
    a = q
    i = 0
    while i < 9 or a <= 9.0:
        i += 1
        a += 1.0
        b = math.pow(a, -s)
        db = -math.log(a) * b
        total += b
        dtotal += db
        if abs(b / total) < MACHEP and abs(db / dtotal) < MACHEP:
            return dtotal
    w = a
    # the tail integral w^(1-s) / (s - 1) and the half term, differentiated in s
    dtotal += db * w / (s - 1.0) - b * w / ((s - 1.0) * (s - 1.0)) - 0.5 * db
    total += b * w / (s - 1.0) - 0.5 * b
    fac, dfac = 1.0, 0.0
    k = 0.0
    for j in range(12):
        dfac = dfac * (s + k) + fac
        fac *= s + k
        b /= w
        db /= w
        t = fac * b / _ZETA_A[j]
        dt = (dfac * b + fac * db) / _ZETA_A[j]
        total += t
        dtotal += dt
        if abs(t / total) < MACHEP and abs(dt / dtotal) < MACHEP:
            break
        k += 1.0
        dfac = dfac * (s + k) + fac
        fac *= s + k
        b /= w
        db /= w
        k += 1.0
    return dtotal


def polygamma(n, x):
    if math.isnan(n) or math.isnan(x) or n < 0 or n != np.floor(n):
        return math.nan
    if n == 0:
        return digamma(x)
    sign = 1.0 if np.fmod(n, 2.0) == 1.0 else -1.0
    return sign * math.exp(math.lgamma(n + 1.0)) * zeta(n + 1.0, x)


def _igam_log_prefactor(a, x):
    """`log(x^a e^-x / Gamma(a))`. For large `a` the three terms are huge and nearly cancel
    (P(1e8, 0.999e8) came out 15% off): Stirling's series leaves `a (log1p(t) - t)`, with
    `x = a (1 + t)`, and small terms."""
    if a < 15.0:
        return a * math.log(x) - x - math.lgamma(a)
    t = (x - a) / a
    r = 1.0 / (a * a)
    # log Gamma(a) - ((a - 1/2) log a - a + log(2 pi) / 2), Stirling's series
    stirling = (1.0 - r * (1.0 / 30 - r * (1.0 / 105 - r * (1.0 / 140 - r * (
        1.0 / 99 - r * 691.0 / 30030))))) / (12.0 * a)
    return (a * (math.log1p(t) - t) + 0.5 * math.log(a) - 0.9189385332046728
            - stirling)


def _igam_iterations(a):
    """Terms for the series and the continued fraction: near x = a both need a few times
    sqrt(a) of them (with MAXITER alone, P(1e6, 1e6) came out 5% low)."""
    return MAXITER + int(min(20.0 * math.sqrt(a), 1e8))


def _igam_series(a, x):
    """P(a, x) by its power series (x < a + 1 or x small)."""
    r = a
    c = 1.0
    ans = 1.0
    for _ in range(_igam_iterations(a)):
        r += 1.0
        c *= x / r
        ans += c
        if c <= MACHEP * ans:
            break
    return ans * math.exp(_igam_log_prefactor(a, x)) / a


def _igamc_fraction(a, x):
    """Q(a, x) by Legendre's continued fraction (x > a + 1), Cephes' recurrence."""
    y = 1.0 - a
    z = x + y + 1.0
    c = 0.0
    pkm2 = 1.0
    qkm2 = x
    pkm1 = x + 1.0
    qkm1 = z * x
    ans = pkm1 / qkm1
    for _ in range(_igam_iterations(a)):
        c += 1.0
        y += 1.0
        z += 2.0
        yc = y * c
        pk = pkm1 * z - pkm2 * yc
        qk = qkm1 * z - qkm2 * yc
        if qk != 0.0:
            r = pk / qk
            t = abs((ans - r) / r)
            ans = r
        else:
            t = 1.0
        pkm2, pkm1, qkm2, qkm1 = pkm1, pk, qkm1, qk
        if abs(pk) > BIG:
            pkm2 *= BIGINV
            pkm1 *= BIGINV
            qkm2 *= BIGINV
            qkm1 *= BIGINV
        if t <= MACHEP:
            break
    return ans * math.exp(_igam_log_prefactor(a, x))


def _igam_check(a, x):
    """(done, value of P) for the edge cases of the incomplete gamma functions."""
    if math.isnan(a) or math.isnan(x) or a < 0.0 or x < 0.0:
        return True, math.nan
    if a == 0.0:
        return True, (math.nan if x == 0.0 else 1.0)
    if x == 0.0:
        return True, 0.0
    if x == math.inf:
        return True, (math.nan if a == math.inf else 1.0)
    if a == math.inf:
        return True, 0.0
    return False, 0.0


def igamma(a, x):
    """The regularized lower incomplete gamma function P(a, x)."""
    done, v = _igam_check(a, x)
    if done:
        return v
    if x > 1.0 and x > a:
        return 1.0 - _igamc_fraction(a, x)
    return _igam_series(a, x)


def igammac(a, x):
    """The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x)."""
    done, v = _igam_check(a, x)
    if done:
        return 1.0 - v
    if x < 1.0 or x < a:
        return 1.0 - _igam_series(a, x)
    return _igamc_fraction(a, x)


def igamma_grad_a(a, x):
    """d/da P(a, x), the series and continued fraction above differentiated term by term."""
    done, v = _igam_check(a, x)
    if done:
        return math.nan if math.isnan(v) else 0.0
    lp = _igam_log_prefactor(a, x)
    dlp = math.log(x) - digamma(a)
    if x > 1.0 and x > a:  # Q = cf * e^lp, dP/da = -dQ/da
        y = 1.0 - a
        z = x + y + 1.0
        c = 0.0
        pkm2, dpkm2 = 1.0, 0.0
        qkm2, dqkm2 = x, 0.0
        pkm1, dpkm1 = x + 1.0, 0.0
        qkm1, dqkm1 = z * x, -x
        ans = pkm1 / qkm1
        dans = -pkm1 * dqkm1 / (qkm1 * qkm1)
        for _ in range(MAXITER):
            c += 1.0
            y += 1.0
            z += 2.0
            yc = y * c
            # dy/da = dz/da = -1
            pk = pkm1 * z - pkm2 * yc
            dpk = dpkm1 * z - pkm1 - dpkm2 * yc + pkm2 * c
            qk = qkm1 * z - qkm2 * yc
            dqk = dqkm1 * z - qkm1 - dqkm2 * yc + qkm2 * c
            t = 1.0
            if qk != 0.0:
                r = pk / qk
                dr = (dpk - r * dqk) / qk
                t = abs((dans - dr) / dr) if dr != 0.0 else abs(dans - dr)
                t = max(t, abs((ans - r) / r))
                ans, dans = r, dr
            pkm2, pkm1, qkm2, qkm1 = pkm1, pk, qkm1, qk
            dpkm2, dpkm1, dqkm2, dqkm1 = dpkm1, dpk, dqkm1, dqk
            if abs(pk) > BIG:
                pkm2 *= BIGINV
                pkm1 *= BIGINV
                qkm2 *= BIGINV
                qkm1 *= BIGINV
                dpkm2 *= BIGINV
                dpkm1 *= BIGINV
                dqkm2 *= BIGINV
                dqkm1 *= BIGINV
            if t <= MACHEP:
                break
        e = math.exp(lp)
        return -(dans * e + ans * e * dlp)
    # P = S / a * e^lp with S = sum_k c_k, c_k = c_{k-1} x / (a + k)
    r = a
    c = 1.0
    dc = 0.0
    s = 1.0
    ds = 0.0
    for _ in range(MAXITER):
        r += 1.0
        dc = dc * x / r - c * x / (r * r)
        c *= x / r
        s += c
        ds += dc
        if c <= MACHEP * s and abs(dc) <= MACHEP * abs(ds):
            break
    e = math.exp(lp)
    return e * (ds / a - s / (a * a) + s / a * dlp)


def _betacf(a, b, x):
    """Lentz's continued fraction for the incomplete beta function (Numerical Recipes)."""
    tiny = 1e-300
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < tiny:
        d = tiny
    d = 1.0 / d
    h = d
    for m in range(1, 10 * MAXITER):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < tiny:
            d = tiny
        c = 1.0 + aa / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < tiny:
            d = tiny
        c = 1.0 + aa / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < MACHEP:
            break
    return h


def betainc(a, b, x):
    """The regularized incomplete beta function I_x(a, b)."""
    if math.isnan(a) or math.isnan(b) or math.isnan(x):
        return math.nan
    if a < 0.0 or b < 0.0 or x < 0.0 or x > 1.0 or (a == 0.0 and b == 0.0):
        return math.nan
    if math.isinf(a) and math.isinf(b):
        return math.nan
    # the end points win over degenerate parameters (scipy: I_0(0, b) = 0, I_1(a, 0) = 1)
    if x == 0.0:
        return 0.0
    if x == 1.0:
        return 1.0
    if a == 0.0:
        return 1.0
    if b == 0.0:
        return 0.0
    # an infinite parameter puts all the mass at one end point
    if math.isinf(b):
        return 1.0
    if math.isinf(a):
        return 0.0
    lbt = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
           + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def _bessel_ie(nu, x):
    """exp(-|x|) I_nu(|x|) for nu in {0, 1}: power series up to 30, Hankel's asymptotic
    series beyond (its terms shrink until k ~ 2x, far past double precision)."""
    ax = abs(x)
    if ax == math.inf:
        return 0.0
    if ax <= 30.0:
        half = 0.5 * ax
        q = half * half
        term = 1.0 if nu == 0 else half
        total = term
        k = 0.0
        for _ in range(200):
            k += 1.0
            term *= q / (k * (k + nu))
            total += term
            if term < MACHEP * total:
                break
        return total * math.exp(-ax)
    mu = 4.0 * nu * nu
    term = 1.0
    total = 1.0
    k = 0.0
    for _ in range(60):
        k += 1.0
        term *= -(mu - (2.0 * k - 1.0) ** 2) / (k * 8.0 * ax)
        total += term
        if abs(term) < MACHEP * abs(total):
            break
    return total / math.sqrt(2.0 * math.pi * ax)


def i0e(x):
    if math.isnan(x):
        return math.nan
    return _bessel_ie(0, x)


def i1e(x):
    if math.isnan(x):
        return math.nan
    v = _bessel_ie(1, x)
    return -v if x < 0.0 else v


def expn(n, x):
    """The generalized exponential integral E_n(x) = int_1^inf e^(-x t) / t^n dt
    (Numerical Recipes' series for x <= 1, Lentz's continued fraction beyond)."""
    if math.isnan(n) or math.isnan(x) or n < 0 or n != np.floor(n) or x < 0.0:
        return math.nan
    if n == math.inf:
        return math.nan
    if x == math.inf:
        return 0.0
    if x == 0.0:
        return math.inf if n <= 1 else 1.0 / (n - 1.0)
    if n == 0:
        return math.exp(-x) / x
    nm1 = n - 1.0
    if x > 1.0:
        b = x + n
        c = 1.0 / 1e-300
        d = 1.0 / b
        h = d
        i = 1.0
        for _ in range(MAXITER):
            an = -i * (nm1 + i)
            b += 2.0
            d = 1.0 / (an * d + b)
            c = b + an / c
            de = c * d
            h *= de
            if abs(de - 1.0) < MACHEP:
                break
            i += 1.0
        return h * math.exp(-x)
    ans = 1.0 / nm1 if nm1 != 0.0 else -math.log(x) - EULER
    fact = 1.0
    i = 1.0
    for _ in range(MAXITER):
        fact *= -x / i
        if i != nm1:
            de = -fact / (i - nm1)
        else:
            psi = -EULER
            for ii in range(1, int(nm1) + 1):
                psi += 1.0 / ii
            de = fact * (-math.log(x) + psi)
        ans += de
        if abs(de) < abs(ans) * MACHEP:
            break
        i += 1.0
    return ans


def expi(x):
    """The exponential integral Ei(x) = -PV int_{-x}^inf e^(-t) / t dt (Ei(x) = -E1(-x), x < 0)."""
    if math.isnan(x):
        return math.nan
    if x < 0.0:
        return -expn(1.0, -x)
    if x == 0.0:
        return -math.inf
    if x == math.inf:
        return math.inf
    if x <= 40.0:  # gamma + log x + sum x^k / (k k!): all terms positive
        total = 0.0
        term = 1.0
        k = 0.0
        for _ in range(MAXITER):
            k += 1.0
            term *= x / k
            total += term / k
            if term / k < MACHEP * total:
                break
        return EULER + math.log(x) + total
    total = 1.0  # e^x / x sum k! / x^k, the asymptotic series (terms shrink until k ~ x)
    term = 1.0
    k = 0.0
    for _ in range(100):
        k += 1.0
        term *= k / x
        total += term
        if term < MACHEP * total:
            break
    return math.exp(x) / x * total


def _li2_small(z):
    """Li2(z) = sum z^k / k^2 for |z| <= 1/2."""
    total = 0.0
    power = 1.0
    for k in range(1, 80):
        power *= z
        t = power / (k * k)
        total += t
        if abs(t) < MACHEP * abs(total):
            break
    return total


def _li2_upto_half(z):
    """Li2(z) for z <= 1/2, by z -> z / (z - 1) and z -> 1 / z."""
    if z >= -0.5:
        if z >= 0.0:
            return _li2_small(z)
        return -_li2_small(z / (z - 1.0)) - 0.5 * math.log1p(-z) ** 2
    if z >= -1.0:
        return -_li2_small(z / (z - 1.0)) - 0.5 * math.log1p(-z) ** 2
    # z < -1: Li2(z) = -pi^2/6 - log(-z)^2 / 2 - Li2(1/z), with 1/z in (-1, 0)
    w = 1.0 / z
    inner = -_li2_small(w / (w - 1.0)) - 0.5 * math.log1p(-w) ** 2
    return -math.pi ** 2 / 6.0 - 0.5 * math.log(-z) ** 2 - inner


def spence(x):
    """scipy's spence(x) = int_1^x log t / (1 - t) dt = Li2(1 - x), for x >= 0."""
    if math.isnan(x) or x < 0.0:
        return math.nan
    if x == math.inf:
        return math.nan  # as scipy (the limit is -inf)
    if x == 0.0:
        return math.pi ** 2 / 6.0
    if x >= 0.5:  # z = 1 - x <= 1/2
        return _li2_upto_half(1.0 - x)
    # z = 1 - x in (1/2, 1): Li2(z) = pi^2/6 - log z log(1 - z) - Li2(1 - z)
    return math.pi ** 2 / 6.0 - math.log1p(-x) * math.log(x) - _li2_small(x)


# -------------------------------------------------------- Dawson, Fresnel, sine/cosine integrals

_TINY = 1e-300
_EPS = 1e-16


def dawsn(x):
    """Dawson's integral exp(-x^2) int_0^x exp(t^2) dt: its Taylor series near 0, Rybicki's
    sampling-theorem sum (spacing 0.2, so the aliasing error is about exp(-(pi/0.4)^2))
    in the middle, the asymptotic series far out."""
    if math.isnan(x):
        return math.nan
    ax = abs(x)
    if ax < 0.2:
        x2 = x * x
        term = x
        total = x
        k = 0
        while abs(term) > 1e-17 * abs(total):
            k += 1
            term *= -2.0 * x2 / (2 * k + 1)
            total += term
        return total
    if ax > 50.0:
        if ax == math.inf:
            return math.copysign(0.0, x)
        r = 1.0 / (2.0 * ax * ax)
        term = 1.0
        total = 1.0
        k = 0
        while term > 1e-17:
            k += 1
            term *= (2 * k - 1) * r
            total += term
        return math.copysign(total / (2.0 * ax), x)
    h = 0.2
    n0 = 2 * int(round(ax / (2 * h)))
    xp = ax - n0 * h
    total = 0.0
    for j in range(-41, 42, 2):
        total += math.exp(-(xp - j * h) ** 2) / (j + n0)
    return math.copysign(total / math.sqrt(math.pi), x)


def _fresnel(x):
    """(S(x), C(x)): power series up to 1.5, then the continued fraction of erfc along the
    diagonal (modified Lentz)."""
    ax = abs(x)
    if ax > 1e16:  # the oscillation, of amplitude 1 / (pi x), is below half an ulp of 1/2
        s, c = 0.5, 0.5  # (pi x^2 overflowed to inf for x > 1e154: NaN)
    elif ax <= 1.5:
        f = 0.5 * math.pi * ax * ax
        term = ax  # f^j / j! * ax
        s = 0.0
        c = ax
        j = 0
        while True:
            j += 1
            term *= f / j
            contrib = term / (2 * j + 1)
            if j % 2 == 1:
                s += contrib if (j // 2) % 2 == 0 else -contrib
            else:
                c += contrib if (j // 2) % 2 == 0 else -contrib
            if contrib < 1e-17 * max(abs(c), 1e-300) and j > 2:
                break
    else:
        pix2 = math.pi * ax * ax
        b = complex(1.0, -pix2)
        cc = complex(1.0 / _TINY, 0.0)
        d = 1.0 / b
        hh = d
        n = -1
        for _ in range(2, 2000):
            n += 2
            a = -n * (n + 1.0)
            b += 4.0
            d = 1.0 / (a * d + b)
            cc = b + a / cc
            delta = cc * d
            hh *= delta
            if abs(delta.real - 1.0) + abs(delta.imag) < _EPS:
                break
        hh *= complex(ax, -ax)
        cs = complex(0.5, 0.5) * (1.0 - complex(math.cos(0.5 * pix2), math.sin(0.5 * pix2)) * hh)
        c, s = cs.real, cs.imag
    if x < 0:
        return -s, -c
    return s, c


def fresnel_s(x):
    if math.isnan(x):
        return math.nan
    return _fresnel(x)[0]


def fresnel_c(x):
    if math.isnan(x):
        return math.nan
    return _fresnel(x)[1]


def _sici(x):
    """(Si(x), Ci(|x|)): power series up to 2, then the continued fraction of E1(ix)."""
    t = abs(x)
    if t == 0.0:
        return x, -math.inf
    if t == math.inf:  # Ci(-inf) is NaN, as in scipy and JAX
        return math.copysign(0.5 * math.pi, x), (0.0 if x > 0.0 else math.nan)
    if t > 2.0:
        b = complex(1.0, t)
        c = complex(1.0 / _TINY, 0.0)
        d = 1.0 / b
        h = d
        for i in range(2, 2000):
            a = -(i - 1.0) ** 2
            b += 2.0
            d = 1.0 / (a * d + b)
            c = b + a / c
            delta = c * d
            h *= delta
            if abs(delta.real - 1.0) + abs(delta.imag) < _EPS:
                break
        h = complex(math.cos(t), -math.sin(t)) * h
        si, ci = 0.5 * math.pi + h.imag, -h.real
    else:
        term = 1.0  # t^j / j!
        si = 0.0
        ci = 0.0
        j = 0
        while True:
            j += 1
            term *= t / j
            contrib = term / j
            sign = 1.0 if ((j - 1) // 2) % 2 == 0 else -1.0
            if j % 2 == 1:
                si += sign * contrib
            else:
                ci -= contrib if (j // 2) % 2 == 1 else -contrib
            if contrib < 1e-17 and j > 2:
                break
        ci += EULER + math.log(t)
    return (-si if x < 0 else si), ci


def sici_si(x):
    if math.isnan(x):
        return math.nan
    return _sici(x)[0]


def sici_ci(x):
    if math.isnan(x):
        return math.nan
    return _sici(x)[1]


# ------------------------------------------------------------------------ Owen's T


def _owens_t_integral(h, a):
    """(1/2pi) int_0^a exp(-h^2 (1 + u^2) / 2) / (1 + u^2) du for 0 <= a <= 1 (Gauss-Legendre)."""
    total = 0.0
    hh = 0.5 * h * h
    for i in range(_GL_N):
        u = a * _GL_X[i]
        total += _GL_W[i] * math.exp(-hh * u * u) / (1.0 + u * u)
    return a * total * math.exp(-hh) / (2.0 * math.pi)


def owens_t(h, a):
    if math.isnan(h) or math.isnan(a):
        return math.nan
    h = abs(h)  # T is even in h and odd in a
    if h == math.inf:
        return 0.0
    aa = abs(a)
    if aa <= 1.0:
        out = _owens_t_integral(h, aa)
    elif aa == math.inf:
        out = 0.25 * math.erfc(h / math.sqrt(2.0)) if h > 0 else 0.25
    else:
        rest = _owens_t_integral(aa * h, 1.0 / aa)
        s = math.sqrt(2.0)
        if aa * h <= 0.67:
            out = 0.25 - 0.25 * math.erf(h / s) * math.erf(aa * h / s) - rest
        else:
            q1, q2 = math.erfc(h / s), math.erfc(aa * h / s)
            out = 0.25 * (q1 + q2 - q1 * q2) - rest
    return -out if a < 0 else out


# ------------------------------------------------------------------------ Bessel J_n


def bessel_jn(n, x):
    """J_n(x) for integer n >= 0: Miller's backward recurrence from well above max(n, |x|),
    normalised by J_0 + 2 (J_2 + J_4 + ...) = 1."""
    if math.isnan(n) or math.isnan(x):
        return math.nan
    if n < 0 or n != np.floor(n):
        return math.nan
    k = int(n)
    ax = abs(x)
    if ax == math.inf:
        return 0.0
    if ax == 0.0:
        return 1.0 if k == 0 else 0.0
    top = max(k, int(ax)) + 20 + int(math.sqrt(40.0 * (max(k, ax) + 1.0)))
    top += top % 2
    nxt = 0.0
    cur = 1e-300
    norm = 0.0
    want = 0.0
    for m in range(top, 0, -1):
        prev = 2.0 * m / ax * cur - nxt  # J_(m-1)
        nxt, cur = cur, prev
        if abs(cur) > 1e250:  # rescale, keeping the ratios
            cur *= 1e-250
            nxt *= 1e-250
            norm *= 1e-250
            want *= 1e-250
        if m - 1 == k:
            want = cur
        if (m - 1) % 2 == 0 and m - 1 > 0:
            norm += 2.0 * cur
    norm += cur  # J_0
    out = want / norm
    return -out if (x < 0 and k % 2 == 1) else out


# ------------------------------------------------------------------- confluent hypergeometric 1F1


def _hyp1f1_series(a, b, x):
    """(M, dM/da, dM/db) by the power series (x >= 0, so no cancellation for a, b > 0)."""
    term = 1.0
    m = 1.0
    sa = 0.0  # sum_{j<k} 1/(a + j)
    sb = 0.0
    da = 0.0
    db = 0.0
    k = 0
    while k < 100000:
        if a + k == 0.0:  # a non-positive integer: the series stops here
            break
        sa += 1.0 / (a + k)
        sb += 1.0 / (b + k)
        term *= (a + k) / (b + k) * x / (k + 1)
        k += 1
        m += term
        da += term * sa
        db -= term * sb
        if abs(term) <= 1e-17 * abs(m) and abs(term * sa) <= 1e-17 * abs(da) and k > x:
            break
    return m, da, db


def _hyp1f1_all(a, b, x):
    if x >= 0.0:
        return _hyp1f1_series(a, b, x)
    # Kummer: M(a, b, x) = e^x M(b - a, b, -x)
    m, da, db = _hyp1f1_series(b - a, b, -x)
    e = math.exp(x)
    return e * m, -e * da, e * (da + db)


def hyp1f1(a, b, x):
    if math.isnan(a) or math.isnan(b) or math.isnan(x):
        return math.nan
    if a == 0.0:  # JAX's conventions, checked in this order
        return 1.0
    if a == b:
        return math.exp(x)
    if b == 0.0 or (b < 0 and b == np.floor(b)):
        return math.inf
    return _hyp1f1_all(a, b, x)[0]


def hyp1f1_da(a, b, x):
    if math.isnan(a) or math.isnan(b) or math.isnan(x):
        return math.nan
    return _hyp1f1_all(a, b, x)[1]


def hyp1f1_db(a, b, x):
    if math.isnan(a) or math.isnan(b) or math.isnan(x):
        return math.nan
    return _hyp1f1_all(a, b, x)[2]


# ------------------------------------------------------------------------ Gauss hypergeometric 2F1


def _hyp2f1_series(a, b, c, x):
    """(F, dF/da, dF/db, dF/dc) by the power series, for 0 <= x < 1."""
    term = 1.0
    f = 1.0
    sa = sb = sc = 0.0
    da = db = dc = 0.0
    k = 0
    while k < 200000:
        if a + k == 0.0 or b + k == 0.0:  # a non-positive integer parameter: a polynomial
            break
        sa += 1.0 / (a + k)
        sb += 1.0 / (b + k)
        sc += 1.0 / (c + k)
        term *= (a + k) * (b + k) / ((c + k) * (k + 1)) * x
        k += 1
        f += term
        da += term * sa
        db += term * sb
        dc -= term * sc
        if (abs(term) <= 1e-17 * abs(f) and abs(term * sa) <= 1e-17 * abs(da)
                and abs(term * sb) <= 1e-17 * abs(db) and abs(term * sc) <= 1e-17 * abs(dc)):
            break
    return f, da, db, dc


def _hyp2f1_all(a, b, c, x):
    if x >= 0.0:
        return _hyp2f1_series(a, b, c, x)
    # Pfaff: F(a, b; c; x) = (1 - x)^-a F(a, c - b; c; x / (x - 1)), the argument in (0, 1)
    g, ga, gb, gc = _hyp2f1_series(a, c - b, c, x / (x - 1.0))
    p = math.pow(1.0 - x, -a)
    return p * g, p * (ga - math.log1p(-x) * g), -p * gb, p * (gb + gc)


def _hyp2f1_value(a, b, c, x):
    d = c - a - b
    s = 1.0 - x
    if x == 0.0 or ((a == 0.0 or b == 0.0) and c != 0.0):  # JAX's cases, in JAX's order
        return 1.0
    if c == 0.0 or (c < 0.0 and c == np.floor(c)):
        return math.inf
    if d <= -1.0 and not (abs(d - round(d)) >= 50 * 2.220446049250313e-16 and s < 0.0):
        return math.pow(s, d) * _hyp2f1_all(c - a, c - b, c, x)[0]  # Euler's transformation
    if d <= 0.0 and x == 1.0:
        return math.inf
    if x < 1.0 and b == c:
        return math.pow(s, -a)
    if x < 1.0 and a == c:
        return math.pow(s, -b)
    if x > 1.0:
        return math.inf
    if x == 1.0:
        return math.exp(math.lgamma(c) + math.lgamma(d) - math.lgamma(c - a) - math.lgamma(c - b))
    return _hyp2f1_all(a, b, c, x)[0]


def _nan4(a, b, c, x):
    return math.isnan(a) or math.isnan(b) or math.isnan(c) or math.isnan(x)


def hyp2f1(a, b, c, x):
    if _nan4(a, b, c, x):
        return math.nan
    return _hyp2f1_value(a, b, c, x)


def hyp2f1_da(a, b, c, x):
    if _nan4(a, b, c, x) or x >= 1.0:
        return math.nan
    return _hyp2f1_all(a, b, c, x)[1]


def hyp2f1_db(a, b, c, x):
    if _nan4(a, b, c, x) or x >= 1.0:
        return math.nan
    return _hyp2f1_all(a, b, c, x)[2]


def hyp2f1_dc(a, b, c, x):
    if _nan4(a, b, c, x) or x >= 1.0:
        return math.nan
    return _hyp2f1_all(a, b, c, x)[3]


# ------------------------------------------------------------------------ Faddeeva w(z)


def _weideman_coefficients(n):
    """Coefficients of Weideman's (1994) rational approximation of w(z) in the upper
    half-plane, with n terms (from an FFT of the sampled integrand)."""
    m = 2 * n
    m2 = 2 * m
    k = np.arange(-m + 1, m)
    ell = math.sqrt(n / math.sqrt(2.0))
    theta = k * math.pi / m
    t = ell * np.tan(theta / 2)
    f = np.exp(-t * t) * (ell * ell + t * t)
    f = np.concatenate(([0.0], f))
    a = np.real(np.fft.fft(np.fft.fftshift(f))) / m2
    return np.ascontiguousarray(a[1:n + 1][::-1]), ell


_W_N = 64
_W_COEF, _W_L = _weideman_coefficients(_W_N)


def _wofz_upper(z):
    """w(z) for Im z >= 0: Laplace's continued fraction far out, Weideman's approximation
    elsewhere."""
    if abs(z) > 12.0:
        f = z
        for k in range(60, 0, -1):
            f = z - (0.5 * k) / f
        return 1j / (math.sqrt(math.pi) * f)
    lz = _W_L - 1j * z
    zz = (_W_L + 1j * z) / lz
    p = 0.0 + 0.0j
    for i in range(_W_N):
        p = p * zz + _W_COEF[i]
    return 2.0 * p / (lz * lz) + (1.0 / math.sqrt(math.pi)) / lz


def _wofz(x, y):
    z = complex(x, y)
    if y >= 0.0:
        return _wofz_upper(z)
    # w(z) = 2 exp(-z^2) - w(-z) below the real axis
    return 2.0 * np.exp(-z * z) - _wofz_upper(-z)


def wofz_re(x, y):
    if math.isnan(x) or math.isnan(y):
        return math.nan
    return _wofz(x, y).real


def wofz_im(x, y):
    if math.isnan(x) or math.isnan(y):
        return math.nan
    return _wofz(x, y).imag


def _gauss_legendre(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return (x + 1.0) / 2.0, w / 2.0  # on [0, 1]


_GL_N = 64
_GL_X, _GL_W = _gauss_legendre(_GL_N)


# ------------------------------------------------------------------------ compiled ufuncs

UNARY = ("lgamma", "digamma", "i0e", "i1e", "expi", "spence", "dawsn", "fresnel_s", "fresnel_c",
         "sici_si", "sici_ci")
BINARY = ("zeta", "zeta_ds", "polygamma", "igamma", "igammac", "igamma_grad_a", "expn",
          "owens_t", "bessel_jn", "wofz_re", "wofz_im")
TERNARY = ("betainc", "hyp1f1", "hyp1f1_da", "hyp1f1_db")
QUATERNARY = ("hyp2f1", "hyp2f1_da", "hyp2f1_db", "hyp2f1_dc")
_HELPERS = ("_igam_log_prefactor", "_igam_iterations", "_igam_series", "_igamc_fraction",
            "_igam_check", "_betacf", "_bessel_ie", "_li2_small", "_li2_upto_half", "_fresnel",
            "_sici", "_owens_t_integral",
            "_hyp1f1_series", "_hyp1f1_all", "_hyp2f1_series", "_hyp2f1_all", "_hyp2f1_value",
            "_nan4", "_wofz_upper", "_wofz")

_ufuncs: dict = {}
_SIGNATURES = {**{n: "float64(float64)" for n in UNARY},
               **{n: "float64(float64, float64)" for n in BINARY},
               **{n: "float64(float64, float64, float64)" for n in TERNARY},
               **{n: "float64(float64, float64, float64, float64)" for n in QUATERNARY}}
# One thread compiles at a time: the helpers are module globals that the ufuncs find by
# name while numba compiles them, so a second thread re-wrapping them meanwhile (a
# background plan build calling a special function while the caller does too) would make
# numba link against a helper not compiled yet. The helpers are wrapped once, all together
# (wrapping compiles nothing: numba compiles a helper when a ufunc first needs it), and
# each ufunc is compiled on its first use, so `i0` does not wait for `hyp2f1`.
_compile_lock = threading.Lock()
_wrapped = False


def _compile(name):
    global _wrapped
    import numba  # imported on first use only, so `import nanofn` stays fast

    with _compile_lock:
        if name in _ufuncs:
            return  # another thread compiled it while this one waited
        g = globals()
        if not _wrapped:
            for helper in ("digamma", "zeta", "polygamma") + _HELPERS + ("expn",):
                g[helper] = numba.njit(cache=True)(getattr(g[helper], "py_func", g[helper]))
            _wrapped = True
        fn = g[name]
        _ufuncs[name] = numba.vectorize([_SIGNATURES[name]], cache=True)(
            getattr(fn, "py_func", fn))


def call(name, *args):
    """Evaluate kernel `name` elementwise (float64 inside; the result has the args' dtype)."""
    if name not in _ufuncs:
        _compile(name)
    dtype = np.result_type(*[np.asarray(a).dtype for a in args])
    with np.errstate(all="ignore"):  # poles give inf and domain errors NaN, as in JAX
        out = _ufuncs[name](*[np.asarray(a, np.float64) for a in args])
        return np.asarray(out).astype(dtype, copy=False)
