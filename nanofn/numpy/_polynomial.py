"""Polynomials (coefficients highest power first, numpy's convention) and window functions.

Written with `nanofn.numpy` functions, so each one differentiates, jits and vmaps; only
trimming leading zeros (`trim_leading_zeros=True`, `roots(strip_zeros=True)`) reads the
values and needs them concrete.
"""

from __future__ import annotations

import operator

import numpy as np

from nanofn import _core as core
from nanofn._core import Tracer
import nanofn.numpy as fnp  # the finished namespace, used at call time
from nanofn.numpy._dtypes import asarray_value, dtype_of, promote, promote_float
from nanofn.numpy._lax_numpy import _ndim, _shape, _wrap_output

__all__ = [
    "polyadd", "polysub", "polymul", "polydiv", "polyder", "polyint", "poly", "roots",
    "polyfit", "vander", "bartlett", "blackman", "hamming", "hanning", "kaiser", "i0",
]


def _coeffs(p, fname, name="p"):
    p = asarray_value(p)
    if _ndim(p) != 1:
        raise ValueError(f"{fname}: {name} must be a 1-d array of coefficients, got shape "
                         f"{_shape(p)}")
    return p


def _concrete(x, fname, why):
    try:
        return np.asarray(core._lowest(x) if isinstance(x, Tracer) else core.to_numpy(x))
    except core.ConcretizationError:
        raise core.ConcretizationError(f"{fname}: {why} reads the values, which are not "
                                       "known while tracing (jit)") from None


def _trim_leading(p, fname):
    v = _concrete(p, fname, "trimming leading zeros")
    nz = np.flatnonzero(v)
    return p[int(nz[0]):] if nz.size else p[-1:] if v.size else p


def polyadd(a1, a2):
    """The sum of two polynomials.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.polyadd(fnp.array([1.0, 2.0]), fnp.array([1.0, 0.0, 3.0]))
        Array([1., 2., 5.], dtype=float32)
    """
    a, b = promote(_coeffs(a1, "polyadd", "a1"), _coeffs(a2, "polyadd", "a2"))
    na, nb = _shape(a)[0], _shape(b)[0]
    if na < nb:
        a = fnp.concatenate([fnp.zeros(nb - na, dtype_of(a)), a])
    elif nb < na:
        b = fnp.concatenate([fnp.zeros(na - nb, dtype_of(b)), b])
    return _wrap_output(a + b)


def polysub(a1, a2):
    """The difference of two polynomials.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.polysub(fnp.array([1.0, 2.0]), fnp.array([1.0, 0.0, 3.0]))
        Array([-1.,  2., -1.], dtype=float32)
    """
    return polyadd(a1, -asarray_value(a2))


def polymul(a1, a2, *, trim_leading_zeros=False):
    """The product of two polynomials (the convolution of their coefficients).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.polymul(fnp.array([1.0, 1.0]), fnp.array([1.0, -1.0]))
        Array([ 1.,  0., -1.], dtype=float32)
    """
    from nanofn.numpy._convolve import convolve
    a, b = promote(_coeffs(a1, "polymul", "a1"), _coeffs(a2, "polymul", "a2"))
    if trim_leading_zeros:
        a, b = _trim_leading(a, "polymul"), _trim_leading(b, "polymul")
    if _shape(a)[0] == 0:  # an empty polynomial is 0, as JAX
        a = fnp.zeros(1, dtype_of(a))
    if _shape(b)[0] == 0:
        b = fnp.zeros(1, dtype_of(b))
    return convolve(a, b)


def polydiv(u, v, *, trim_leading_zeros=False):
    """Divide polynomial `u` by `v`: returns `(quotient, remainder)` (long division).

    The remainder keeps `u`'s length unless `trim_leading_zeros=True`, which drops its
    leading entries below `sqrt(eps)` in magnitude (JAX's rule; eager only).

    Example:
        >>> import nanofn.numpy as fnp
        >>> q, r = fnp.polydiv(fnp.array([1.0, -3.0, 2.0]), fnp.array([1.0, -1.0]))
        >>> q
        Array([ 1., -2.], dtype=float32)
    """
    u, v = promote_float(_coeffs(u, "polydiv", "u"), _coeffs(v, "polydiv", "v"))
    m, n = _shape(u)[0] - 1, _shape(v)[0] - 1
    if n < 0:
        raise ValueError("polydiv: v must have at least one coefficient")
    scale = 1.0 / v[0]
    q = fnp.zeros(max(m - n + 1, 1), dtype_of(u))
    r, v = fnp.asarray(u), fnp.asarray(v)
    for k in range(0, m - n + 1):
        d = scale * r[k]
        q = q.at[k].set(d)
        r = r.at[k:k + n + 1].add(-d * v)
    if trim_leading_zeros:  # drop the remainder's leading near-zeros (|r| < sqrt(eps)), as JAX
        rv = _concrete(r, "polydiv", "trimming leading zeros")
        big = np.flatnonzero(~(np.abs(rv) < np.sqrt(np.finfo(rv.dtype).eps)))
        r = r[int(big[0]) if big.size else rv.size:]
    return _wrap_output(q), _wrap_output(r)


def polyder(p, m=1):
    """The `m`-th derivative of polynomial `p`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.polyder(fnp.array([1.0, 2.0, 3.0]))
        Array([2., 2.], dtype=float32)
    """
    p = _coeffs(p, "polyder")
    m = operator.index(m)
    if m < 0:
        raise ValueError(f"polyder: the order m must be non-negative, got {m}")
    (p,) = promote_float(p)  # integer coefficients give floats, as JAX
    for _ in range(m):
        n = _shape(p)[0]
        if n <= 1:
            return fnp.zeros(0 if n == 0 else 0, dtype_of(p))
        p = p[:-1] * fnp.arange(n - 1, 0, -1).astype(dtype_of(p))
    return _wrap_output(p)


def polyint(p, m=1, k=None):
    """The `m`-th antiderivative of polynomial `p` (integration constants `k`, default 0).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.polyint(fnp.array([3.0, 2.0, 1.0]))
        Array([1., 1., 1., 0.], dtype=float32)
    """
    (p,) = promote_float(_coeffs(p, "polyint"))
    m = operator.index(m)
    if m < 0:
        raise ValueError(f"polyint: the order m must be non-negative, got {m}")
    ks = fnp.zeros(m, dtype_of(p)) if k is None else fnp.ravel(asarray_value(k)).astype(dtype_of(p))
    if _shape(ks)[0] == 1 and m != 1:  # one constant for every integration (none for m=0)
        ks = fnp.broadcast_to(ks, (m,))
    if _shape(ks)[0] != m:
        raise ValueError(f"polyint: k must have m={m} constants, got {_shape(ks)[0]}")
    for i in range(m):
        n = _shape(p)[0]
        p = fnp.concatenate([p / fnp.arange(n, 0, -1).astype(dtype_of(p)), ks[i:i + 1]])
    return _wrap_output(p)


def poly(seq_of_zeros):
    """The coefficients of the monic polynomial with the given roots (or the
    characteristic polynomial of a square matrix).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.poly(fnp.array([1.0, 2.0]))
        Array([ 1., -3.,  2.], dtype=float32)
    """
    z = asarray_value(seq_of_zeros)
    if _ndim(z) == 2 and _shape(z)[0] == _shape(z)[1] and _shape(z)[0] > 0:
        from nanofn.numpy import linalg
        z = linalg.eigvals(z)
    elif _ndim(z) != 1:
        raise ValueError(f"poly: input must be 1-d or a square matrix, got shape {_shape(z)}")
    (z,) = promote_float(z)
    a = fnp.ones(1, dtype_of(z))
    for i in range(_shape(z)[0]):
        a = polymul(a, fnp.stack([fnp.ones((), dtype_of(z)), -z[i]]))
    return _wrap_output(a)


def roots(p, *, strip_zeros=True):
    """The roots of polynomial `p` (the eigenvalues of its companion matrix; complex).

    With `strip_zeros` (default) leading zeros are dropped (eager only); without it each
    leading zero gives a NaN root (as JAX), so the result always has `len(p) - 1` roots
    and can be traced. Trailing zeros stay in the companion matrix either way, so their
    zero roots come out in the eigenvalue order JAX gives (numpy instead appends them).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.sort_complex(fnp.roots(fnp.array([1.0, -3.0, 2.0]))).real
        Array([1., 2.], dtype=float32)
    """
    from nanofn.numpy import linalg
    (p,) = promote_float(_coeffs(p, "roots"))
    if strip_zeros:
        v = _concrete(p, "roots", "strip_zeros=True")
        nz = np.flatnonzero(v)
        if nz.size == 0:
            return fnp.zeros(0, np.result_type(dtype_of(p), np.complex64))
        p = p[int(nz[0]):]
    n = _shape(p)[0] - 1
    cdt = np.result_type(dtype_of(p), np.complex64)
    if n < 1:
        return fnp.zeros(0, cdt)
    lead = 0
    if not strip_zeros:  # JAX: each leading zero gives a NaN root (traceable)
        is_zero = p == 0
        lead = fnp.where(fnp.all(is_zero), n + 1, fnp.argmin(is_zero))
        # x**lead * p(x) has the same roots plus `lead` zeros, and a non-zero leading term
        p = fnp.roll(fnp.where(fnp.all(is_zero), fnp.ones_like(p), p), -lead)
    top = fnp.expand_dims(-p[1:] / p[0], 0)
    comp = fnp.concatenate([top, fnp.eye(n - 1, n, dtype=dtype_of(p))], axis=0)
    r = linalg.eigvals(comp).astype(cdt)
    if not strip_zeros:  # zero roots last, then the last `lead` of them become NaN
        from nanofn.numpy import argsort
        r = r[argsort(r == 0, stable=True)]
        r = fnp.where(fnp.arange(n) < n - lead, r, np.asarray(complex(np.nan, np.nan), cdt))
    return _wrap_output(r)


def vander(x, N=None, increasing=False):
    """The Vandermonde matrix: columns are powers of the 1-d `x` (decreasing by default).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.vander(fnp.array([1.0, 2.0]), 3)
        Array([[1., 1., 1.],
               [4., 2., 1.]], dtype=float32)
    """
    x = asarray_value(x)
    if _ndim(x) != 1:
        raise ValueError(f"vander: x must be 1-d, got shape {_shape(x)}")
    N = _shape(x)[0] if N is None else operator.index(N)
    if N < 0:
        raise ValueError(f"vander: N must be non-negative, got {N}")
    powers = fnp.arange(N) if increasing else fnp.arange(N - 1, -1, -1)
    cols = [x ** int(k) if k else fnp.ones_like(x) for k in np.asarray(powers.tolist(), int)]
    if not cols:
        return fnp.zeros((_shape(x)[0], 0), dtype_of(x))
    return fnp.stack(cols, axis=-1)


def polyfit(x, y, deg, rcond=None, full=False, w=None, cov=False):
    """Least-squares polynomial fit of degree `deg` to the points `(x, y)`.

    `y` may be 2-d (one fit per column). `full=True` also returns residuals, rank,
    singular values and rcond; `cov=True` the scaled covariance of the coefficients.

    Example:
        >>> import nanofn.numpy as fnp
        >>> x = fnp.array([0.0, 1.0, 2.0, 3.0])
        >>> fnp.round(fnp.polyfit(x, 2 * x + 1, 1), 4)
        Array([2., 1.], dtype=float32)
    """
    from nanofn.numpy import linalg
    x, y = promote_float(x, y)
    deg = operator.index(deg)
    if deg < 0:
        raise ValueError(f"polyfit: deg must be non-negative, got {deg}")
    if _ndim(x) != 1 or _ndim(y) not in (1, 2) or _shape(y)[0] != _shape(x)[0]:
        raise ValueError(f"polyfit: x must be 1-d and y 1-d or 2-d of the same length, got "
                         f"shapes {_shape(x)} and {_shape(y)}")
    n = _shape(x)[0]
    rcond = n * float(np.finfo(dtype_of(x)).eps) if rcond is None else rcond
    lhs = vander(x, deg + 1)
    rhs = y
    if w is not None:
        w = asarray_value(w, dtype_of(x))
        lhs = lhs * w[:, None]
        rhs = rhs * (w if _ndim(y) == 1 else w[:, None])
    scale = fnp.sqrt(fnp.sum(lhs * lhs, axis=0))  # column scaling, as numpy does
    scale = fnp.where(scale == 0, 1.0, scale).astype(dtype_of(x))
    c, resids, rank, s = linalg.lstsq(lhs / scale, rhs, rcond=rcond)
    c = (c.T / scale).T
    if full:
        return c, resids, rank, s, fnp.asarray(rcond, dtype_of(x))
    if cov:
        lhs_s = lhs / scale
        vinv = linalg.inv(lhs_s.T @ lhs_s) / fnp.outer(scale, scale)
        if cov == "unscaled":
            fac = 1.0
        else:
            if n <= deg + 1:
                raise ValueError("polyfit: the data has too few points to scale the covariance")
            fac = resids / (n - deg - 1)
        if _ndim(y) == 1:
            return c, vinv * fac
        return c, vinv[:, :, None] * fac
    return c


# ------------------------------------------------------------------------ windows


def _window_n(M, fname):
    M = operator.index(M)
    return M


def bartlett(M):
    """The Bartlett (triangular) window of `M` points.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.bartlett(5)
        Array([0. , 0.5, 1. , 0.5, 0. ], dtype=float32)
    """
    M = _window_n(M, "bartlett")
    if M < 1:
        return fnp.zeros(0, np.float32)
    if M == 1:
        return fnp.ones(1, np.float32)
    n = fnp.arange(M, dtype=np.float32)
    return 1.0 - fnp.abs(2.0 * n / (M - 1) - 1.0)


def _cosine_window(M, coeffs):
    if M < 1:
        return fnp.zeros(0, np.float32)
    if M == 1:
        return fnp.ones(1, np.float32)
    n = fnp.arange(M, dtype=np.float32)
    out = fnp.full((M,), coeffs[0], np.float32)
    for k, c in enumerate(coeffs[1:], start=1):
        out = out + ((-1) ** k) * c * fnp.cos(2.0 * np.pi * k * n / (M - 1))
    return out


def blackman(M):
    """The Blackman window of `M` points.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.blackman(3)
        Array([-1.4901161e-08,  1.0000000e+00, -1.4901161e-08], dtype=float32)
    """
    return _cosine_window(_window_n(M, "blackman"), (0.42, 0.5, 0.08))


def hamming(M):
    """The Hamming window of `M` points.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.hamming(3)
        Array([0.08, 1.  , 0.08], dtype=float32)
    """
    return _cosine_window(_window_n(M, "hamming"), (0.54, 0.46))


def hanning(M):
    """The Hann window of `M` points.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.hanning(3)
        Array([0., 1., 0.], dtype=float32)
    """
    return _cosine_window(_window_n(M, "hanning"), (0.5, 0.5))


def i0(x):
    """The modified Bessel function of the first kind, order 0 (differentiable).

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.i0(0.0))
        1.0
    """
    from nanofn.scipy.special import i0 as _i0
    (x,) = promote_float(asarray_value(x))
    return _i0(x)


def kaiser(M, beta):
    """The Kaiser window of `M` points with shape parameter `beta`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.kaiser(3, 0.0)
        Array([1., 1., 1.], dtype=float32)
    """
    M = _window_n(M, "kaiser")
    if M < 1:
        return fnp.zeros(0, np.float32)
    if M == 1:
        return fnp.ones(1, np.float32)
    beta = asarray_value(beta, np.float32)
    n = fnp.arange(M, dtype=np.float32)
    alpha = (M - 1) / 2.0
    r = (n - alpha) / alpha
    return i0(beta * fnp.sqrt(fnp.maximum(1.0 - r * r, 0.0))) / i0(beta)
