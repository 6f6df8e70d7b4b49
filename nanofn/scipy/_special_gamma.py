"""The gamma family of `nanofn.scipy.special`: gamma, log-gamma and their signs, beta,
digamma and polygamma, the Hurwitz zeta function, the incomplete gamma and beta functions,
factorials, binomial coefficients, the Pochhammer symbol and Bernoulli numbers.

Values come from the special-function primitives (`nanofn.ops._special_fns`), whose
derivatives are closed forms (digamma for lgamma, polygamma for digamma, ...), so `grad`
of any order, `vmap` and `jit` apply. Re-exported from `nanofn.scipy.special`.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from nanofn import numpy as jnp
from nanofn.numpy._dtypes import default_float, dtype_of, promote_float
from nanofn.ops import _special_fns as sf

__all__ = ["gammaln", "gammasgn", "gamma", "loggamma", "digamma", "polygamma", "betaln", "beta",
           "betainc", "gammainc", "gammaincc", "zeta", "multigammaln", "factorial", "comb",
           "poch", "bernoulli"]


def _c(x, value):
    return np.asarray(value, dtype_of(x))


def _real(name, *args):
    args = promote_float(*args)
    for a in args:
        if np.issubdtype(dtype_of(a), np.complexfloating):
            raise TypeError(f"{name} does not accept complex inputs (got {dtype_of(a)})")
    return args


def gammaln(x):
    """`log|Gamma(x)|` (inf at the poles 0, -1, -2, ...); its derivative is `digamma`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import gammaln
        >>> round(float(gammaln(fnp.array(5.0))), 5)  # log(4!)
        3.17805
    """
    (x,) = _real("gammaln", x)
    return sf.lgamma_p.bind(x)


def gammasgn(x):
    """The sign of `Gamma(x)`: 1 for x > 0, alternating between the poles below 0, NaN at the
    poles 0, -1, ... (scipy's convention; `-0.0` gives -1).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import gammasgn
        >>> gammasgn(fnp.array([2.0, -0.5, -1.5]))
        Array([ 1., -1.,  1.], dtype=float32)
    """
    (x,) = _real("gammasgn", x)
    floor = jnp.floor(x)
    odd = jnp.not_equal(jnp.remainder(floor, _c(x, 2)), _c(x, 0))
    negative_side = jnp.where(odd, _c(x, -1), _c(x, 1))
    pole = jnp.logical_and(jnp.less(x, _c(x, 0)), jnp.equal(x, floor))
    sign = jnp.where(jnp.greater(x, _c(x, 0)), _c(x, 1), negative_side)
    sign = jnp.where(jnp.equal(x, _c(x, 0)), jnp.where(jnp.less(jnp.divide(_c(x, 1), x), _c(x, 0)), _c(x, -1), _c(x, 1)), sign)
    nan = jnp.logical_or(pole, jnp.logical_or(jnp.isnan(x), jnp.equal(x, _c(x, -np.inf))))
    return jnp.where(nan, _c(x, np.nan), sign)


def gamma(x):
    """The gamma function, `gammasgn(x) * exp(gammaln(x))` (±inf at 0, NaN at negative
    integers, as scipy).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import gamma
        >>> gamma(fnp.array([5.0, 0.5])).tolist()  # 4!, sqrt(pi) in float32
        [24.0, 1.772453784942627]
    """
    (x,) = _real("gamma", x)
    return jnp.multiply(gammasgn(x), jnp.exp(gammaln(x)))


def loggamma(x):
    """The principal branch of `log Gamma(x)`; for real inputs `gammaln(x)` for x >= 0 and NaN
    for x < 0 (complex inputs are not supported).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import loggamma
        >>> round(float(loggamma(fnp.array(3.0))), 6)  # log 2
        0.693147
    """
    (x,) = _real("loggamma", x)
    return jnp.where(jnp.less(x, _c(x, 0)), _c(x, np.nan), gammaln(x))


def digamma(x):
    """The digamma function `psi(x) = d/dx log Gamma(x)` (-inf at 0, NaN at negative
    integers); its derivative is `polygamma(1, x)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import digamma
        >>> round(float(digamma(fnp.array(1.0))), 6)  # minus Euler's constant
        -0.577216
    """
    (x,) = _real("digamma", x)
    return sf.digamma_p.bind(x)


def polygamma(n, x):
    """The n-th derivative of `digamma`, `psi^(n)(x)`, for integer `n >= 0` (NaN otherwise).

    Differentiable in `x` (giving `polygamma(n + 1, x)`), not in `n`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import polygamma
        >>> round(float(polygamma(1, fnp.array(1.0))), 6)  # pi^2 / 6
        1.644934
    """
    if np.issubdtype(dtype_of(n), np.floating) or np.issubdtype(dtype_of(n), np.integer):
        pass
    else:
        raise TypeError(f"polygamma: n must be an integer or float array, got {dtype_of(n)}")
    (x,) = _real("polygamma", x)
    n = jnp.asarray(n).astype(dtype_of(x))
    return sf.polygamma_p.bind(n, x)


_LARGE = 10.0  # from here on the Stirling remainder series below is accurate to double precision
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _stirling_remainder(x):
    """`gammaln(x) - ((x - 1/2) log x - x + log(2 pi) / 2)` for x >= 10: an odd series in 1/x."""
    r = jnp.reciprocal(x)
    r2 = jnp.multiply(r, r)
    acc = _c(x, 0)
    for coef in (1.0 / 156.0, -691.0 / 360360.0, 1.0 / 1188.0, -1.0 / 1680.0, 1.0 / 1260.0,
                 -1.0 / 360.0, 1.0 / 12.0):
        acc = jnp.add(jnp.multiply(acc, r2), _c(x, coef))
    return jnp.multiply(acc, r)


def _gammaln_drop(a, b):
    """`gammaln(b) - gammaln(a + b)` for b >= 10 and a + b >= 10, without the cancellation of
    two huge log-gammas: `-(b - 1/2) log1p(a / b) - a log(a + b) + a` plus the remainders."""
    s = jnp.add(a, b)
    main = jnp.add(jnp.negative(jnp.multiply(jnp.subtract(b, _c(b, 0.5)), jnp.log1p(jnp.divide(a, b)))),
                   jnp.subtract(a, jnp.multiply(a, jnp.log(s))))
    return jnp.add(main, jnp.subtract(_stirling_remainder(b), _stirling_remainder(s)))


def betaln(a, b):
    """`log|B(a, b)| = gammaln(a) + gammaln(b) - gammaln(a + b)`; once the larger argument
    reaches 10 the difference of log-gammas is formed from Stirling's series, so huge
    arguments keep full precision.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import betaln
        >>> round(float(betaln(fnp.array(2.0), fnp.array(3.0))), 6)  # log(1/12)
        -2.484907
    """
    a, b = _real("betaln", a, b)
    lo, hi = jnp.minimum(a, b), jnp.maximum(a, b)
    big = _c(a, _LARGE)
    direct = jnp.subtract(jnp.add(gammaln(a), gammaln(b)), gammaln(jnp.add(a, b)))
    # one large argument: gammaln(lo) + [gammaln(hi) - gammaln(lo + hi)]
    one_ok = jnp.greater_equal(hi, big) & jnp.greater_equal(jnp.add(lo, hi), big)
    h1 = jnp.where(one_ok, hi, big)
    l1 = jnp.where(one_ok, lo, _c(a, 1))
    one = jnp.add(gammaln(l1), _gammaln_drop(l1, h1))
    # both large: log(2 pi)/2 - log(hi)/2 + (lo - 1/2) log(lo / s) - hi log1p(lo / hi) + remainders
    both_ok = jnp.greater_equal(lo, big)
    l2 = jnp.where(both_ok, lo, big)
    h2 = jnp.where(both_ok, hi, big)
    s2 = jnp.add(l2, h2)
    both = jnp.add(
        jnp.subtract(jnp.multiply(jnp.subtract(l2, _c(a, 0.5)), jnp.log(jnp.divide(l2, s2))),
                     jnp.multiply(h2, jnp.log1p(jnp.divide(l2, h2)))),
        jnp.subtract(_c(a, _HALF_LOG_2PI), jnp.multiply(_c(a, 0.5), jnp.log(h2))))
    both = jnp.add(both, jnp.subtract(jnp.add(_stirling_remainder(l2), _stirling_remainder(h2)),
                                      _stirling_remainder(s2)))
    finite = jnp.isfinite(a) & jnp.isfinite(b)
    return jnp.where(finite & both_ok, both, jnp.where(finite & one_ok, one, direct))


def beta(a, b):
    """The beta function `B(a, b) = Gamma(a) Gamma(b) / Gamma(a + b)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import beta
        >>> round(float(beta(fnp.array(2.0), fnp.array(3.0))), 6)
        0.083333
    """
    a, b = _real("beta", a, b)
    sign = jnp.multiply(jnp.multiply(gammasgn(a), gammasgn(b)), gammasgn(jnp.add(a, b)))
    return jnp.multiply(sign, jnp.exp(betaln(a, b)))


def betainc(a, b, x):
    """The regularized incomplete beta function `I_x(a, b)` for a, b >= 0 and 0 <= x <= 1.

    Differentiable in `x`; the derivative in `a` and `b` raises NotImplementedError, as in
    JAX.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import betainc
        >>> round(float(betainc(fnp.array(2.0), fnp.array(3.0), fnp.array(0.4))), 6)
        0.5248
    """
    a, b, x = _real("betainc", a, b, x)
    return sf.regularized_incomplete_beta_p.bind(a, b, x)


def gammainc(a, x):
    """The regularized lower incomplete gamma function `P(a, x)` for a, x >= 0.

    Differentiable in both arguments (in `a` by the series and continued fraction
    differentiated term by term; that derivative is itself differentiable only in `x`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import gammainc
        >>> round(float(gammainc(fnp.array(1.0), fnp.array(2.0))), 6)  # 1 - exp(-2)
        0.864665
    """
    a, x = _real("gammainc", a, x)
    return sf.igamma_p.bind(a, x)


def gammaincc(a, x):
    """The regularized upper incomplete gamma function `Q(a, x) = 1 - P(a, x)`, accurate also
    where it is tiny.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import gammaincc
        >>> print(f"{float(gammaincc(fnp.array(1.0, dtype=fnp.float64), 50.0)):.6e}")
        1.928750e-22
    """
    a, x = _real("gammaincc", a, x)
    return sf.igammac_p.bind(a, x)


def zeta(x, q=None):
    """The Hurwitz zeta function `sum_{k>=0} (k + q)^-x` for x > 1 (inf at x = 1, NaN below).

    As in JAX, `q` is required (the Riemann zeta function is `zeta(x, 1.0)` for x > 1).
    Differentiable in `q` (`d/dq = -x zeta(x + 1, q)`) and in `x` (`-sum log(k + q)
    (k + q)^-x`, Euler-Maclaurin summed as the function is); second derivatives in `x`
    are not implemented.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import zeta
        >>> round(float(zeta(fnp.array(2.0), 1.0)), 6)  # pi^2 / 6
        1.644934
    """
    if q is None:
        raise NotImplementedError("zeta: the Riemann zeta function (q=None) is not "
                                  "implemented; pass q=1.0 for x > 1, as in JAX")
    x, q = _real("zeta", x, q)
    return sf.zeta_p.bind(x, q)


def multigammaln(a, d):
    """The log of the multivariate gamma function of dimension `d` (a static int):
    `d (d-1) / 4 log(pi) + sum_{j<d} gammaln(a - j/2)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import multigammaln
        >>> round(float(multigammaln(fnp.array(3.0), 2)), 6)
        1.550195
    """
    try:
        d = operator.index(d)
    except TypeError:
        raise TypeError(f"multigammaln: d must be a Python int (static), got {d!r}") from None
    if d < 1:
        raise ValueError(f"multigammaln: d must be >= 1, got {d}")
    (a,) = _real("multigammaln", a)
    out = _c(a, d * (d - 1) / 4 * math.log(math.pi))
    for j in range(d):
        out = jnp.add(out, gammaln(jnp.subtract(a, _c(a, j / 2))))
    return out


def factorial(n, exact=False):
    """`n! = Gamma(n + 1)` for real n >= 0, 0 for n < 0 (only `exact=False`, as in JAX).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import factorial
        >>> factorial(fnp.array([0.0, 4.0, -1.0])).tolist()
        [1.0, 24.0, 0.0]
    """
    if exact:
        raise NotImplementedError("factorial: exact=True is not supported (as in JAX); the "
                                  "result would overflow 64-bit integers above n = 20")
    (n,) = _real("factorial", n)
    return jnp.where(jnp.less(n, _c(n, 0)), _c(n, 0), jnp.exp(gammaln(jnp.add(n, _c(n, 1)))))


def comb(N, k, *, repetition=False):
    """The number of combinations `N choose k`, from `gammaln` (0 unless 0 <= k <= N).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import comb
        >>> round(float(comb(fnp.array(5.0), fnp.array(2.0))), 4)
        10.0
    """
    N, k = _real("comb", N, k)
    if repetition:
        result = comb(jnp.subtract(jnp.add(N, k), _c(N, 1)), k)
        return jnp.where(jnp.logical_and(jnp.equal(k, _c(k, 0)), jnp.greater_equal(N, _c(N, 0))),
                         _c(N, 1), result)
    ok = jnp.logical_and(jnp.logical_and(jnp.less_equal(k, N), jnp.greater_equal(N, _c(N, 0))),
                         jnp.greater_equal(k, _c(k, 0)))
    safe_n = jnp.where(ok, N, _c(N, 0))
    safe_k = jnp.where(ok, k, _c(k, 0))
    one = _c(N, 1)
    # Gamma(n + 1) / (Gamma(k + 1) Gamma(n - k + 1)) = 1 / ((n + 1) B(k + 1, n - k + 1)); betaln
    # keeps precision where the log-gammas of a huge n would cancel
    log_c = jnp.negative(jnp.add(jnp.log1p(safe_n),
                                 betaln(jnp.add(safe_k, one),
                                        jnp.add(jnp.subtract(safe_n, safe_k), one))))
    return jnp.where(ok, jnp.exp(log_c), _c(N, 0))


def poch(z, m):
    """The Pochhammer symbol (rising factorial) `Gamma(z + m) / Gamma(z)` (1 where m == 0).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import poch
        >>> float(poch(fnp.array(3.0), fnp.array(2.0)))  # 3 * 4
        12.0
    """
    z, m = _real("poch", z, m)
    zm = jnp.add(z, m)
    # exp(log|G(z+m)| - log|G(z)|) keeps large arguments finite where the ratio is
    sign = jnp.multiply(gammasgn(zm), gammasgn(z))
    # for z and z + m >= 10 the log-gamma difference comes from Stirling's series (no cancellation)
    large = jnp.greater_equal(z, _c(z, _LARGE)) & jnp.greater_equal(zm, _c(z, _LARGE)) & \
        jnp.isfinite(z) & jnp.isfinite(m)
    z_l = jnp.where(large, z, _c(z, _LARGE))
    m_l = jnp.where(large, m, _c(m, 0))
    log_ratio = jnp.where(large, jnp.negative(_gammaln_drop(m_l, z_l)),
                          jnp.subtract(gammaln(zm), gammaln(z)))
    ratio = jnp.multiply(sign, jnp.exp(log_ratio))
    # at a pole of G(z) with G(z + m) finite the ratio is 0 (scipy: poch(-1, 1) = 0 ... )
    return jnp.where(jnp.equal(m, _c(m, 0)), _c(z, 1), ratio)


def bernoulli(n):
    """The Bernoulli numbers `B_0, ..., B_n` (with `B_1 = -1/2`), `n` a static int.

    Exact rationals rounded once for n <= 200; beyond, `B_2k = (-1)^(k+1) 2 (2k)! zeta(2k) /
    (2 pi)^(2k)` (inf once it overflows).

    Example:
        >>> from nanofn.scipy.special import bernoulli
        >>> bernoulli(4)  # float32 unless x64, as JAX
        Array([ 1.        , -0.5       ,  0.16666667,  0.        , -0.03333334],      dtype=float32)
    """
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"bernoulli: n must be a Python int (static), got {n!r}") from None
    if n < 0:
        raise ValueError(f"bernoulli: n must be a non-negative integer, got {n}")
    if n <= 200:  # exactly, in rationals (Akiyama-Tanigawa), then rounded once
        from fractions import Fraction
        row, out = [], []
        for m in range(n + 1):
            row.append(Fraction(1, m + 1))
            for j in range(m, 0, -1):
                row[j - 1] = j * (row[j - 1] - row[j])
            out.append(float(row[0]))
        out = np.array(out)
        if n >= 1:
            out[1] = -0.5  # the recursion gives B_1 = +1/2
        return _as_default_float(out)
    from nanofn.ops import _special_kernels
    out = np.zeros(n + 1)
    out[0], out[1] = 1.0, -0.5
    evens = np.arange(2, n + 1, 2, dtype=np.float64)
    zeta_even = _special_kernels.call("zeta", evens, np.ones_like(evens))
    log_mag = (math.log(2.0) + _special_kernels.call("lgamma", evens + 1)
               - evens * math.log(2 * math.pi))
    sign = np.where((evens // 2) % 2 == 1, 1.0, -1.0)
    with np.errstate(over="ignore"):  # inf once it overflows
        out[2::2] = sign * np.exp(log_mag) * zeta_even
    return _as_default_float(out)


def _as_default_float(values):
    """float64 numpy values as an array of the default float dtype (float32 unless x64, as
    JAX); values beyond float32's range become inf, without numpy's overflow warning."""
    with np.errstate(over="ignore"):
        return jnp.asarray(values.astype(default_float()))
