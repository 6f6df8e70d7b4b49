"""Complex-number primitives: `real`, `imag`, `conj`, `complex`, and `logaddexp`.

Complex differentiation follows JAX. A complex value is a pair of reals, and every rule
is R-linear. A cotangent `c` of a complex value `z` stands for the covector
`dz -> Re(c * dz)` (no conjugation), so a holomorphic primitive's reverse rule is the same
multiplication as its forward rule (`ct * f'(z)`), and only the primitives that are not
holomorphic (`real`, `imag`, `conj`, `abs` of complex) have reverse rules that differ from
their forward ones. With this pairing `grad` of a real-valued `f(z)` returns
`df/dx - i df/dy`, JAX's convention: `grad(lambda z: abs(z) ** 2)(3 + 4j) == 6 - 8j`.
"""

from __future__ import annotations

import numpy as np

from nanofn._core import get_aval
from nanofn.ops._base import (_c, _dtype, _mul, _neg, _select, _sub,
                              convert_element_type_p, elementwise, eq_p, exp_p)


def _complex_only(dtype):
    return dtype.kind == "c"


def _real_float_only(dtype):
    return dtype.kind == "f"


def real_dtype(dtype):
    """The real dtype of a complex one (float32 for complex64); other dtypes unchanged."""
    dtype = np.dtype(dtype)
    return np.finfo(dtype).dtype if dtype.kind == "c" else dtype


def complex_dtype(dtype):
    """The complex dtype whose parts have `dtype` (complex64 for float32 and below)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return dtype
    return np.dtype(np.complex128) if dtype == np.float64 else np.dtype(np.complex64)


def _checked_bind(prim, *args):
    """Bind after the shape/dtype rule (eager dispatch skips it; lax's contract is checked)."""
    prim.abstract_eval(*[get_aval(a) for a in args])
    return prim.bind(*args)


def _to_complex(x, like):
    """A real value `x` as a complex value of `like`'s dtype (imaginary part zero)."""
    return convert_element_type_p.bind(x, new_dtype=_dtype(like))


# --- real ----------------------------------------------------------------------------
real_p = elementwise("real", lambda x: np.real(x).copy(), nargs=1, out_dtype=real_dtype,
                     allowed=_complex_only)
real_p.jvp_terms = [lambda t, x, *, out: real_p.bind(t)]
real_p.vjp = [lambda ct, x, *, out: _to_complex(ct, x)]  # Re(c dz) for c = ct + 0i


def real(x):
    """The real part of a complex array.

    Example:
        >>> import nanofn, numpy as np
        >>> nanofn.lax.real(nanofn.numpy.asarray(np.complex64(3 + 4j)))
        Array(3., dtype=float32)
    """
    return _checked_bind(real_p, x)


# --- imag ----------------------------------------------------------------------------
imag_p = elementwise("imag", lambda x: np.imag(x).copy(), nargs=1, out_dtype=real_dtype,
                     allowed=_complex_only)
imag_p.jvp_terms = [lambda t, x, *, out: imag_p.bind(t)]
# Im(dz) = Re(-i dz): the cotangent is -i ct
imag_p.vjp = [lambda ct, x, *, out: complex_p.bind(_c(ct, 0), _neg(ct))]


def imag(x):
    """The imaginary part of a complex array.

    Example:
        >>> import nanofn, numpy as np
        >>> nanofn.lax.imag(nanofn.numpy.asarray(np.complex64(3 + 4j)))
        Array(4., dtype=float32)
    """
    return _checked_bind(imag_p, x)


# --- conj ----------------------------------------------------------------------------
def _conj_impl(x):
    return np.conjugate(x).astype(complex_dtype(x.dtype), copy=False)


# a real input gives a complex result, as lax.conj (nanofn.numpy.conj returns reals as they are)
conj_p = elementwise("conj", _conj_impl, nargs=1, out_dtype=complex_dtype,
                     allowed=lambda d: d.kind in "fc")
conj_p.jvp_terms = [lambda t, x, *, out: conj_p.bind(t)]
# Re(c conj(dz)) = Re(conj(c) dz); for a real x the walker keeps the real part
conj_p.vjp = [lambda ct, x, *, out: conj_p.bind(ct)]


def conj(x):
    """The complex conjugate; a real input gives a complex result, as `lax.conj` (see
    `nanofn.numpy.conj`, which returns real arrays unchanged).

    Example:
        >>> import nanofn, numpy as np
        >>> nanofn.lax.conj(nanofn.numpy.asarray(np.complex64(3 + 4j)))
        Array(3.-4.j, dtype=complex64)
        >>> nanofn.lax.conj(nanofn.numpy.float32(2))
        Array(2.+0.j, dtype=complex64)
    """
    return _checked_bind(conj_p, x)


# --- complex -------------------------------------------------------------------------
def _complex_impl(x, y):
    out = np.empty(np.broadcast_shapes(np.shape(x), np.shape(y)), complex_dtype(x.dtype))
    out.real = x
    out.imag = y
    return out


complex_p = elementwise("complex", _complex_impl, nargs=2, out_dtype=complex_dtype,
                        allowed=_real_float_only)


def _complex_jvp_y(t, x, y, *, out):
    return _mul(_to_complex(t, out), _c(out, 1j))  # d(x + iy) = i dy


complex_p.jvp_terms = [lambda t, x, y, *, out: _to_complex(t, out), _complex_jvp_y]
# Re(c (dx + i dy)) = Re(c) dx - Im(c) dy
complex_p.vjp = [lambda ct, x, y, *, out: real_p.bind(ct),
                 lambda ct, x, y, *, out: _neg(imag_p.bind(ct))]


def complex(x, y):
    """`x + i y` from two real arrays of one dtype (numpy broadcasting).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.complex(fnp.float32(3), fnp.float32(4))
        Array(3.+4.j, dtype=complex64)
    """
    return _checked_bind(complex_p, x, y)


# --- logaddexp -----------------------------------------------------------------------
# One primitive, so its derivative has no kink where x1 == x2: written from max and abs,
# the second derivative at the tie would be 0 instead of 1/4.
def _logaddexp_impl(x1, x2):
    if x1.dtype.kind == "c":
        amax = np.where((x1.real > x2.real) | ((x1.real == x2.real) & (x1.imag >= x2.imag)),
                        x1, x2)
        out = amax + np.log1p(np.exp(x1 + x2 - 2 * amax))
        wrapped = np.remainder(out.imag + np.pi, 2 * np.pi) - np.pi  # imaginary part in [-pi, pi)
        return (out.real + 1j * wrapped).astype(out.dtype, copy=False)
    out = np.logaddexp(x1, x2)  # logaddexp(-inf, -inf) = -inf, (inf, inf) = inf
    return out if isinstance(out, np.ndarray) else np.asarray(out)


logaddexp_p = elementwise("logaddexp", _logaddexp_impl, nargs=2, allowed=lambda d: d.kind in "fc")


def _replace_inf(x):
    """x, with +inf replaced by 0 (so exp(x1 - out) is 1, not nan, where both are +inf)."""
    re_x = real_p.bind(x) if _dtype(x).kind == "c" else x
    return _select(eq_p.bind(re_x, _c(re_x, np.inf)), x, _c(x, 0))


def _logaddexp_deriv(i):
    def deriv(g, x1, x2, *, out):
        x = (x1, x2)[i]
        return _mul(g, exp_p.bind(_sub(_replace_inf(x), _replace_inf(out))))  # exp(x - out)
    return deriv


logaddexp_p.jvp_terms = logaddexp_p.vjp = [_logaddexp_deriv(0), _logaddexp_deriv(1)]
logaddexp_p.numpy_rules = True


for _p in (real_p, imag_p, conj_p, complex_p):
    _p.numpy_rules = True
del _p
