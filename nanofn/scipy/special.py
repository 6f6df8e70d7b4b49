"""Special functions, like `scipy.special` (and `jax.scipy.special`), with derivatives.

All are written with nanofn primitives, so `grad`, `vmap` and `jit` apply. Where a direct
formula loses precision, a stabler one takes over: `logsumexp` subtracts the maximum (and
its gradient is the softmax, finite even for huge inputs or `-inf` entries); `erfc`,
`ndtr` and `log_ndtr` switch to continued fractions in the far tail, where `1 - erf(x)`
would round to zero; `ndtri` refines `erfinv` with Newton steps on `log_ndtr`, so it stays
accurate for tiny probabilities.
"""

from __future__ import annotations

import math

import numpy as np

from nanofn.ops import _base as lax
from nanofn.numpy import _lax_numpy as lnp
from nanofn.numpy._dtypes import dtype_of, promote_float
from nanofn.numpy._lax_numpy import _shape as _shape_of, canonicalize_axes

__all__ = ["logsumexp", "softmax", "log_softmax", "erf", "erfc", "erfinv", "expit", "logit",
           "xlogy", "xlog1py", "ndtr", "ndtri", "log_ndtr", "entr"]


def _const(x, value):
    return np.asarray(value, dtype_of(x))


# ------------------------------------------------------------------------ logsumexp


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, where=None):
    """`log(sum(b * exp(a)))` over `axis`, computed without overflow.

    The maximum is subtracted before exponentiating (and held constant for the
    derivative), so the result and its gradient, the softmax of `a` (weighted by `b`), are
    finite for huge inputs; `-inf` entries contribute nothing, and an all `-inf` slice gives
    `-inf`. Entries with `b == 0` are ignored, even where `a` is infinite.

    Args:
        a: array-like input (integers become float32).
        axis: None (all axes), an int or a tuple of ints.
        b: optional weights, broadcastable to `a`; may be negative with `return_sign`.
        keepdims: keep reduced axes with size 1.
        return_sign: also return the sign of the sum (then a negative sum is allowed and
            the result is `log|sum|`); otherwise a negative sum gives NaN.
        where: optional boolean mask, broadcastable to `a`: only entries where it is True
            are summed (like `b == 0` elsewhere).

    Returns:
        The result, or `(result, sign)` with `return_sign`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import logsumexp
        >>> float(logsumexp(fnp.array([1000.0, 1000.0])))  # doctest: +ELLIPSIS
        1000.693...
    """
    if np.issubdtype(np.dtype(lnp.result_type(a)), np.complexfloating):
        # complex input: the log of the complex sum (nanofn.nn.logsumexp, as in JAX)
        from nanofn.nn import logsumexp as complex_logsumexp
        return complex_logsumexp(a, axis=axis, b=b, keepdims=keepdims,
                                 return_sign=return_sign, where=where)
    if where is not None:  # a mask is a weight of 0 or 1
        (a,) = promote_float(a)
        mask = lnp.astype(lnp.asarray(where), dtype_of(a))
        # chosen, not multiplied: a masked-out weight gets no gradient, not 0 * inf = nan
        b = mask if b is None else lnp.where(where, promote_float(b, a)[0], _const(mask, 0))
    if b is None:
        (a,) = promote_float(a)
        shape = _shape_of(a)
        axes = canonicalize_axes(axis, len(shape)) if shape else ()
        if axes and not return_sign:  # the kernel primitive, over the merged axes
            from nanofn.ops import _nn
            return _nn.over_axes(_nn.logsumexp, a, tuple(sorted(axes)), reduce=True,
                                 keepdims=keepdims)
    else:
        a, b = promote_float(a, b)
        shape = lax.broadcast_shapes("logsumexp", _shape_of(a), _shape_of(b))
        a, b = lnp.broadcast_to(a, shape), lnp.broadcast_to(b, shape)
        a = lnp.where(lnp.not_equal(b, _const(b, 0)), a, _const(a, -np.inf))
    shape = _shape_of(a)
    axes = canonicalize_axes(axis, len(shape)) if shape else ()
    if all(shape[d] for d in axes):
        peak = lax.stop_gradient_p.bind(lnp.max(a, axis=axes, keepdims=True))
    else:  # an empty sum: no maximum to subtract
        peak = lnp.zeros([1 if d in axes else n for d, n in enumerate(shape)], dtype_of(a))
    peak = lnp.where(lnp.isfinite(peak), peak, _const(peak, 0))  # all -inf (or an inf) slices
    terms = lnp.exp(lnp.subtract(a, peak))
    if b is not None:
        terms = lnp.multiply(b, terms)
    total = lnp.sum(terms, axis=axes, keepdims=True)
    if return_sign:
        sign = lnp.sign(total)
        out = lnp.add(lnp.log(lnp.abs(total)), peak)
    else:
        # log(top + rest) = log(top) + log1p(rest / top), with `top` the terms at the maximum
        # (exp(0) = 1 each, times b): exact where the other terms are tiny next to it
        at_peak = lnp.equal(a, peak)
        zero = _const(terms, 0)
        top = lnp.sum(lnp.where(at_peak, terms, zero), axis=axes, keepdims=True)
        rest = lnp.sum(lnp.where(at_peak, zero, terms), axis=axes, keepdims=True)
        usable = lnp.greater(top, zero)
        safe_top = lnp.where(usable, top, _const(top, 1))
        fine = lnp.add(lnp.log(safe_top), lnp.log1p(lnp.divide(rest, safe_top)))
        out = lnp.add(lnp.where(usable, fine, lnp.log(total)), peak)
        if b is not None:
            # a negative weighted sum gives nan, through which no gradient flows (as JAX)
            negative = lnp.less(lax.stop_gradient_p.bind(total), _const(total, 0))
            out = lnp.where(negative, _const(out, np.nan), out)
    if not keepdims:
        out = lnp.squeeze(out, axis=axes) if axes else out
        if return_sign:
            sign = lnp.squeeze(sign, axis=axes) if axes else sign
    return (out, sign) if return_sign else out


def softmax(x, /, *, axis=None):
    """`exp(x) / sum(exp(x))` over `axis` (all axes by default, as in scipy).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import softmax
        >>> softmax(fnp.array([0.0, 0.0]))
        Array([0.5, 0.5], dtype=float32)
    """
    (x,) = promote_float(x)
    shape = _shape_of(x)
    axes = canonicalize_axes(axis, len(shape)) if shape else ()
    if axes:  # the kernel primitive, over the merged axes
        from nanofn.ops import _nn
        return _nn.over_axes(_nn.softmax, x, tuple(sorted(axes)))
    return lnp.exp(log_softmax(x, axis=axis))


def log_softmax(x, /, *, axis=None):
    """`x - logsumexp(x)` over `axis` (all axes by default, as in scipy).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import log_softmax
        >>> log_softmax(fnp.array([0.0, 0.0]))
        Array([-0.6931472, -0.6931472], dtype=float32)
    """
    (x,) = promote_float(x)
    shape = _shape_of(x)
    axes = canonicalize_axes(axis, len(shape)) if shape else ()
    if axes:  # the kernel primitive, over the merged axes
        from nanofn.ops import _nn
        return _nn.over_axes(_nn.log_softmax, x, tuple(sorted(axes)))
    return lnp.subtract(x, logsumexp(x, axis=axis, keepdims=True))


# ------------------------------------------------------------------------ error function


def erf(x):
    """The error function `2/sqrt(pi) * integral_0^x exp(-t^2) dt`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import erf
        >>> round(float(erf(fnp.array(1.0))), 6)
        0.842701
    """
    (x,) = promote_float(x)
    return lax.erf_p.bind(x)




def _tail_cap(x):
    """Far-tail arguments are capped here: exp(-t^2) is long 0, and 64 t and t^2 stay finite
    (so an infinite argument gives 0, not inf - inf = NaN)."""
    return _const(x, math.sqrt(float(np.finfo(dtype_of(x)).max)) / 128)


_CF_TERMS = 60  # enough for ~1 ulp from the switch-over points below on


def _exp_neg_square(x, scale):
    """`exp(-scale * x**2)` for scale 1 or 1/2, accurate also when the result is tiny.

    `x*x` rounds with an absolute error of about x**2 * 1e-16, which `exp` turns into a
    relative error of the same size (1e-13 at x = 30). Splitting `x = hi + lo`, with `hi`
    a multiple of 1/64 (so `hi*hi` is exact), leaves only the small cross terms to round.
    """
    hi = lnp.divide(lnp.floor(lnp.add(lnp.multiply(x, _const(x, 64)), _const(x, 0.5))),
                    _const(x, 64))
    lo = lnp.subtract(x, hi)
    exact = lnp.multiply(_const(x, scale), lnp.multiply(hi, hi))
    small = lnp.multiply(_const(x, scale), lnp.multiply(lo, lnp.add(hi, x)))  # 2hi lo + lo^2
    return lnp.multiply(lnp.exp(lnp.negative(exact)), lnp.exp(lnp.negative(small)))


def _continued_fraction(t, step):
    """`t + step / (t + 2 step / (t + 3 step / (t + ...)))`, evaluated bottom-up.

    With step 1/2 this is Laplace's fraction for erfc: erfc(z) = exp(-z^2) / (sqrt(pi) cf);
    with step 1 it is Mills' ratio of the normal law: ndtr(-t) = pdf(t) / cf.
    """
    f = t
    for k in range(_CF_TERMS, 0, -1):
        f = lnp.add(t, lnp.divide(_const(t, k * step), f))
    return f


def erfc(x):
    """The complementary error function `1 - erf(x)`, accurate also where it is tiny.

    For `x >= 2` it is computed from a continued fraction, so `erfc(10)` (about 2e-45) keeps
    full relative precision where `1 - erf(10)` would round to 0.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import erfc
        >>> print(f"{float(erfc(fnp.array(10.0, dtype=fnp.float64))):.6e}")
        2.088488e-45
    """
    (x,) = promote_float(x)
    tail = lnp.greater_equal(x, _const(x, 2.0))
    z = lnp.where(tail, x, _const(x, 2.0))  # keep the unused branch finite (and its gradient)
    z = lnp.minimum(z, _tail_cap(z))  # erfc(inf) = 0, not inf - inf = NaN
    cf = lnp.divide(_exp_neg_square(z, 1.0),
                    lnp.multiply(_const(z, math.sqrt(math.pi)), _continued_fraction(z, 0.5)))
    near = lnp.subtract(_const(x, 1), lax.erf_p.bind(lnp.where(tail, _const(x, 0), x)))
    return lnp.where(tail, cf, near)


def erfinv(x):
    """The inverse of `erf` on (-1, 1) (±inf at ±1, NaN outside).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import erf, erfinv
        >>> round(float(erfinv(erf(fnp.array(0.5)))), 5)
        0.5
    """
    (x,) = promote_float(x)
    return lax.erf_inv_p.bind(x)


# ------------------------------------------------------------------------ normal distribution

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_NORMAL_TAIL = -2.0 * _SQRT2  # below this, ndtr comes from Mills' continued fraction


def _lower_tail(x):
    """(in_tail, t): where `x` is in the far lower tail, and `t = -x` clamped into it."""
    tail = lnp.less_equal(x, _const(x, _NORMAL_TAIL))
    t = lnp.where(tail, lnp.negative(x), _const(x, -_NORMAL_TAIL))
    return tail, lnp.minimum(t, _tail_cap(t))  # x = -inf: a finite t whose pdf is 0


def ndtr(x):
    """The standard normal CDF, `(1 + erf(x / sqrt(2))) / 2`, accurate in the lower tail.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import ndtr
        >>> float(ndtr(fnp.array(0.0)))
        0.5
    """
    (x,) = promote_float(x)
    tail, t = _lower_tail(x)
    far = lnp.divide(_exp_neg_square(t, 0.5),
                     lnp.multiply(_const(t, math.sqrt(2 * math.pi)), _continued_fraction(t, 1.0)))
    xm = lnp.where(tail, _const(x, 0), x)
    # here -x / sqrt(2) < 2, where 1 - erf keeps full relative precision (as in erfc)
    near = lnp.multiply(_const(x, 0.5), lnp.subtract(
        _const(x, 1), lax.erf_p.bind(lnp.divide(lnp.negative(xm), _const(x, _SQRT2)))))
    return lnp.where(tail, far, near)


def log_ndtr(x, series_order=3):
    """`log(ndtr(x))`, finite far into the lower tail (`log_ndtr(-40)` is about -804.6).

    `series_order` is accepted for JAX compatibility (an int in [0, 30]) and changes nothing:
    the tail comes from a continued fraction accurate to rounding, not a truncated series.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import log_ndtr
        >>> round(float(log_ndtr(fnp.array(-40.0, dtype=fnp.float64))), 3)
        -804.608
    """
    if not isinstance(series_order, int) or not 0 <= series_order <= 30:
        raise ValueError(f"log_ndtr: `series_order` must be an int in [0, 30], got "
                         f"{series_order!r}")
    (x,) = promote_float(x)
    tail, t = _lower_tail(x)
    # log(pdf(t) / cf(t)), never forming the (underflowing) pdf itself; the square is of
    # the uncapped -x (the cap held log_ndtr(-1e300) at -5.5e303, not -inf), while cf(t) ~ t
    # only enters through its log
    u = lnp.where(tail, lnp.negative(x), t)
    log_tail = lnp.subtract(lnp.subtract(lnp.multiply(_const(t, -0.5), lnp.multiply(u, u)),
                                         _const(t, _LOG_SQRT_2PI)),
                            lnp.log(_continued_fraction(t, 1.0)))
    upper = lnp.greater(x, _const(x, 0))
    xu = lnp.where(upper, x, _const(x, 0))
    log_upper = lnp.log1p(lnp.negative(ndtr(lnp.negative(xu))))  # 1 - tiny, without rounding
    xm = lnp.where(lnp.logical_or(tail, upper), _const(x, 0), x)
    log_middle = lnp.log(ndtr(xm))
    out = lnp.where(tail, log_tail, lnp.where(upper, log_upper, log_middle))
    return lnp.where(lnp.equal(x, _const(x, -np.inf)), _const(x, -np.inf), out)


def _log_normal_pdf(x):
    return lnp.subtract(lnp.multiply(_const(x, -0.5), lnp.multiply(x, x)),
                        _const(x, _LOG_SQRT_2PI))


def ndtri(p):
    """The inverse of `ndtr` (the standard normal quantile function) on (0, 1).

    Starts from `sqrt(2) * erfinv(2p - 1)` (or, for p < 1e-10, 1e-5 below float64, the
    tail asymptotics) and takes Newton steps on `log_ndtr`, which keeps full relative
    precision for tiny `p`.
    Returns -inf at 0, inf at 1 and NaN outside [0, 1].

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import ndtri
        >>> round(float(ndtri(fnp.array(0.975))), 5)
        1.95996
    """
    (p,) = promote_float(p)
    dtype = dtype_of(p)
    upper = lnp.greater(p, _const(p, 0.5))
    q = lnp.where(upper, lnp.subtract(_const(p, 1), p), p)  # exact for p >= 0.5
    inside = lnp.greater(q, _const(q, 0))
    q = lnp.where(inside, q, _const(q, 0.25))  # keep the iteration finite where not used
    # below this, 2q - 1 would round to -1 (erfinv -inf; float32 ndtri(1e-8) was NaN)
    tiny = lnp.less(q, _const(q, 1e-10 if dtype == np.float64 else 1e-5))
    # tail start: x ~ -sqrt(2 L - log(2 L) - log(2 pi)) with L = -log q
    two_l = lnp.multiply(_const(q, -2), lnp.log(lnp.where(tiny, q, _const(q, 1e-20))))
    x_tail = lnp.negative(lnp.sqrt(lnp.subtract(lnp.subtract(two_l, lnp.log(two_l)),
                                                _const(q, 2 * _LOG_SQRT_2PI))))
    x_mid = lnp.multiply(_const(q, _SQRT2), lax.erf_inv_p.bind(
        lnp.subtract(lnp.multiply(_const(q, 2), lnp.where(tiny, _const(q, 0.25), q)),
                     _const(q, 1))))
    x = lnp.where(tiny, x_tail, x_mid)
    log_q = lnp.log(q)
    for _ in range(3 if dtype == np.float64 else 2):
        # Newton on g(x) = log_ndtr(x) - log q, with g'(x) = pdf(x) / cdf(x)
        log_cdf = log_ndtr(x)
        step = lnp.multiply(lnp.subtract(log_cdf, log_q),
                            lnp.exp(lnp.subtract(log_cdf, _log_normal_pdf(x))))
        x = lnp.subtract(x, step)
    x = lnp.where(upper, lnp.negative(x), x)
    edge = lnp.where(lnp.equal(p, _const(p, 0)), _const(p, -np.inf), _const(p, np.inf))
    x = lnp.where(inside, x, lnp.where(lnp.equal(p, _const(p, 0.5)), _const(p, 0), edge))
    bad = lnp.logical_or(lnp.less(p, _const(p, 0)), lnp.greater(p, _const(p, 1)))
    return lnp.where(lnp.logical_or(bad, lnp.isnan(p)), _const(p, np.nan), x)


# ------------------------------------------------------------------------ logistic


def expit(x):
    """The logistic sigmoid `1 / (1 + exp(-x))`, stable for large |x|.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import expit
        >>> float(expit(fnp.array(0.0)))
        0.5
    """
    (x,) = promote_float(x)
    return lax.logistic_p.bind(x)


def logit(x):
    """The inverse of `expit`: `log(x / (1 - x))`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import logit
        >>> float(logit(fnp.array(0.5)))
        0.0
    """
    (x,) = promote_float(x)
    return lnp.subtract(lnp.log(x), lnp.log1p(lnp.negative(x)))


# ------------------------------------------------------------------------ x log y


def _x_times_log(name, log_fn, lo):
    def fn(x, y):
        x, y = promote_float(x, y)
        # where x == 0 and log(y) is not finite, use y's stand-in 1 so the result is 0, not NaN;
        # a NaN y still gives NaN (as scipy and JAX)
        finite = lnp.logical_and(lnp.greater(y, _const(y, lo)), lnp.less(y, _const(y, np.inf)))
        keep = lnp.logical_or(lnp.logical_or(lnp.not_equal(x, _const(x, 0)), finite), lnp.isnan(y))
        y_safe = lnp.where(keep, y,
                           _const(y, 1 + lo if lo < 0 else 1))
        return lnp.multiply(x, log_fn(y_safe))
    fn.__name__ = fn.__qualname__ = name
    return fn


xlogy = _x_times_log("xlogy", lnp.log, 0.0)
xlogy.__doc__ = """`x * log(y)`, with 0 where `x == 0` (even if `y` is 0).

    The derivative in `x` is `log(y)` and in `y` is `x / y`; at `x = y = 0` both are 0
    (JAX gives -inf and NaN there).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import xlogy
        >>> xlogy(fnp.array([0.0, 2.0]), fnp.array([0.0, 1.0]))
        Array([0., 0.], dtype=float32)
    """

xlog1py = _x_times_log("xlog1py", lnp.log1p, -1.0)
xlog1py.__doc__ = """`x * log1p(y)`, with 0 where `x == 0` (even if `y` is -1).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import xlog1py
        >>> xlog1py(fnp.array([0.0, 1.0]), fnp.array([-1.0, 0.0]))
        Array([0., 0.], dtype=float32)
    """


def entr(x):
    """Elementwise entropy term `-x log x` (0 at 0, -inf for negative x).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.special import entr
        >>> entr(fnp.array([0.0, 1.0, 0.5])).tolist()
        [0.0, 0.0, 0.3465735912322998]
    """
    (x,) = promote_float(x)
    value = lnp.subtract(_const(x, 0), xlogy(x, x))  # 0 - 0 is +0, where -0 would print
    return lnp.where(lnp.less(x, _const(x, 0)), _const(x, -np.inf), value)


# ------------------------------------------------------------------------ the other families

from nanofn.scipy._special_gamma import (  # noqa: E402
    bernoulli as bernoulli, beta as beta, betainc as betainc, betaln as betaln, comb as comb,
    digamma as digamma, factorial as factorial, gamma as gamma, gammainc as gammainc,
    gammaincc as gammaincc, gammaln as gammaln, gammasgn as gammasgn, loggamma as loggamma,
    multigammaln as multigammaln, poch as poch, polygamma as polygamma, zeta as zeta,
)
from nanofn.scipy._special_misc import (  # noqa: E402
    boxcox as boxcox, boxcox1p as boxcox1p, erfcx as erfcx, exp1 as exp1, expi as expi,
    expn as expn, i0 as i0, i0e as i0e, i1 as i1, i1e as i1e, kl_div as kl_div,
    rel_entr as rel_entr, spence as spence,
)

__all__ += ["bernoulli", "beta", "betainc", "betaln", "comb", "digamma", "factorial", "gamma",
            "gammainc", "gammaincc", "gammaln", "gammasgn", "loggamma", "multigammaln", "poch",
            "polygamma", "zeta", "boxcox", "boxcox1p", "erfcx", "exp1", "expi", "expn", "i0",
            "i0e", "i1", "i1e", "kl_div", "rel_entr", "spence"]

from nanofn.scipy._special_more import (  # noqa: E402
    bessel_jn as bessel_jn, dawsn as dawsn, fresnel as fresnel, hyp1f1 as hyp1f1,
    hyp2f1 as hyp2f1, owens_t as owens_t, sici as sici, sph_harm_y as sph_harm_y,
    wofz as wofz,
)

__all__ += ["bessel_jn", "dawsn", "fresnel", "hyp1f1", "hyp2f1", "owens_t", "sici", "sph_harm_y",
            "wofz"]
