"""More of `nanofn.scipy.special`: modified Bessel functions, exponential integrals, the
dilogarithm, relative entropies, Box-Cox transforms and the scaled complementary error
function. Re-exported from `nanofn.scipy.special`.
"""

from __future__ import annotations

import math

import numpy as np

from nanofn import numpy as jnp
from nanofn.numpy._dtypes import dtype_of
from nanofn.ops import _special_fns as sf
from nanofn.scipy._special_gamma import _c, _real

__all__ = ["i0", "i0e", "i1", "i1e", "expi", "exp1", "expn", "spence", "rel_entr", "kl_div",
           "boxcox", "boxcox1p", "erfcx"]


# ------------------------------------------------------------------------ Bessel


def i0e(x):
    """The exponentially scaled modified Bessel function of order 0, `exp(-|x|) I0(x)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import i0e
        >>> round(float(i0e(fnp.array(1.0))), 6)
        0.46576
    """
    (x,) = _real("i0e", x)
    return sf.bessel_i0e_p.bind(x)


def i1e(x):
    """The exponentially scaled modified Bessel function of order 1, `exp(-|x|) I1(x)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import i1e
        >>> round(float(i1e(fnp.array(1.0))), 6)
        0.207910
    """
    (x,) = _real("i1e", x)
    return sf.bessel_i1e_p.bind(x)


def i0(x):
    """The modified Bessel function of order 0, `I0(x) = exp(|x|) i0e(x)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import i0
        >>> round(float(i0(fnp.array(1.0))), 6)
        1.266066
    """
    (x,) = _real("i0", x)
    return jnp.multiply(jnp.exp(jnp.abs(x)), i0e(x))


def i1(x):
    """The modified Bessel function of order 1, `I1(x) = exp(|x|) i1e(x)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import i1
        >>> round(float(i1(fnp.array(1.0))), 6)
        0.565159
    """
    (x,) = _real("i1", x)
    return jnp.multiply(jnp.exp(jnp.abs(x)), i1e(x))


# ------------------------------------------------------------------------ exponential integrals


def expi(x):
    """The exponential integral `Ei(x) = PV int_{-inf}^x e^t / t dt`; `Ei'(x) = e^x / x`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import expi
        >>> round(float(expi(fnp.array(1.0))), 6)
        1.895118
    """
    (x,) = _real("expi", x)
    return sf.expi_p.bind(x)


def expn(n, x):
    """The generalized exponential integral `E_n(x) = int_1^inf e^(-x t) / t^n dt` for
    integer n >= 0 and x >= 0 (NaN otherwise); `d/dx E_n = -E_(n-1)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import expn
        >>> round(float(expn(2, fnp.array(1.0))), 6)
        0.148496
    """
    (x,) = _real("expn", x)
    n = jnp.asarray(n)
    if not (np.issubdtype(dtype_of(n), np.integer) or np.issubdtype(dtype_of(n), np.floating)):
        raise TypeError(f"expn: n must be integer-valued, got dtype {dtype_of(n)}")
    return sf.expn_p.bind(n.astype(dtype_of(x)), x)


def exp1(x):
    """The exponential integral `E1(x) = int_x^inf e^-t / t dt` for x >= 0.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import exp1
        >>> round(float(exp1(fnp.array(1.0))), 6)
        0.219384
    """
    (x,) = _real("exp1", x)
    return sf.expn_p.bind(_c(x, 1), x)


def spence(x):
    """Spence's function `int_1^x log(t) / (1 - t) dt = Li2(1 - x)` for x >= 0 (NaN below).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import spence
        >>> round(float(spence(fnp.array(0.0))), 6)  # pi^2 / 6
        1.644934
    """
    (x,) = _real("spence", x)
    return sf.spence_p.bind(x)


# ------------------------------------------------------------------------ entropies


def rel_entr(p, q):
    """Elementwise relative entropy: `p log(p / q)` for p, q > 0; 0 for p = 0, q >= 0;
    inf otherwise.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import rel_entr
        >>> rel_entr(fnp.array([0.0, 1.0, 1.0]), fnp.array([1.0, 1.0, 0.0])).tolist()
        [0.0, 0.0, inf]
    """
    p, q = _real("rel_entr", p, q)
    zero = _c(p, 0)
    both = jnp.logical_and(jnp.greater(p, zero), jnp.greater(q, zero))
    safe_p = jnp.where(both, p, _c(p, 1))
    safe_q = jnp.where(both, q, _c(q, 1))
    value = jnp.multiply(safe_p, jnp.log(jnp.divide(safe_p, safe_q)))
    at_zero = jnp.logical_and(jnp.equal(p, zero), jnp.greater_equal(q, zero))
    out = jnp.where(both, value, jnp.where(at_zero, zero, _c(p, np.inf)))
    return jnp.where(jnp.logical_or(jnp.isnan(p), jnp.isnan(q)), _c(p, np.nan), out)


def kl_div(p, q):
    """Elementwise Kullback-Leibler term: `p log(p / q) - p + q` for p, q > 0; q for p = 0,
    q >= 0; inf otherwise.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import kl_div
        >>> kl_div(fnp.array([0.0, 1.0]), fnp.array([2.0, 1.0])).tolist()
        [2.0, 0.0]
    """
    p, q = _real("kl_div", p, q)
    return jnp.add(jnp.subtract(rel_entr(p, q), p), q)


# ------------------------------------------------------------------------ Box-Cox


def _boxcox(name, log_fn):
    def fn(x, lmbda):
        x, lmbda = _real(name, x, lmbda)
        log_x = log_fn(x)
        zero = jnp.equal(lmbda, _c(lmbda, 0))
        safe_l = jnp.where(zero, _c(lmbda, 1), lmbda)
        # expm1 keeps (x^l - 1) / l accurate for small l
        return jnp.where(zero, log_x, jnp.divide(jnp.expm1(jnp.multiply(safe_l, log_x)), safe_l))
    fn.__name__ = fn.__qualname__ = name
    return fn


boxcox = _boxcox("boxcox", jnp.log)
boxcox.__doc__ = """The Box-Cox transform: `(x^lmbda - 1) / lmbda`, or `log(x)` where lmbda == 0.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import boxcox
        >>> boxcox(fnp.array([1.0, 4.0]), fnp.array([0.0, 0.5])).tolist()
        [0.0, 2.0]
    """

boxcox1p = _boxcox("boxcox1p", jnp.log1p)
boxcox1p.__doc__ = """The Box-Cox transform of `1 + x`: `((1 + x)^lmbda - 1) / lmbda`, or
    `log1p(x)` where lmbda == 0.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import boxcox1p
        >>> boxcox1p(fnp.array([0.0, 3.0]), fnp.array([0.0, 0.5])).tolist()
        [0.0, 2.0]
    """


# ------------------------------------------------------------------------ erfcx


def erfcx(x):
    """The scaled complementary error function `exp(x^2) erfc(x)`, finite for large x
    (about `1 / (x sqrt(pi))`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import erfcx
        >>> round(float(erfcx(fnp.array(30.0, dtype=fnp.float64))), 8)
        0.01879589
    """
    from nanofn.scipy import special
    (x,) = _real("erfcx", x)
    tail = jnp.greater_equal(x, _c(x, 2.0))
    z = jnp.where(tail, x, _c(x, 2.0))
    far = jnp.divide(_c(z, 1 / math.sqrt(math.pi)), special._continued_fraction(z, 0.5))
    xm = jnp.where(tail, _c(x, 0), x)
    near = jnp.multiply(jnp.exp(jnp.multiply(xm, xm)), special.erfc(xm))
    return jnp.where(tail, far, near)
