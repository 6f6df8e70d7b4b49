"""numpy's complex-number functions (`real`, `imag`, `conj`, `angle`, ...) and `logaddexp`.

They follow jax.numpy: `real` and `conj` of a real array return it unchanged, `imag` of a
real array is zeros, and gradients follow JAX's complex convention (see
`nanofn/ops/_complex.py`).
"""

from __future__ import annotations

import math

import numpy as np

from nanofn import _core as core
from nanofn._core import Array, Tracer
from nanofn.ops import _base as lax
from nanofn.ops import _complex as cx
from nanofn.numpy._dtypes import asarray_value, dtype_of, promote, promote_float
from nanofn.numpy._lax_numpy import _check_ranks


def _is_complex(x) -> bool:
    return dtype_of(x).kind == "c"


def _as_array(x):
    x = asarray_value(x)
    return x if isinstance(x, (Array, Tracer)) else core.wrap(core.owned(np.asarray(x)))


def iscomplexobj(x) -> bool:
    """Whether `x` has a complex dtype (whatever its values).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.iscomplexobj(fnp.array([1.0])), fnp.iscomplexobj(1j)
        (False, True)
    """
    if x is None:
        return False
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        dtype = np.asarray(x).dtype
    return np.dtype(dtype).kind == "c"


def isrealobj(x) -> bool:
    """Whether `x` does not have a complex dtype.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.isrealobj(fnp.array([1.0]))
        True
    """
    return not iscomplexobj(x)


def real(val, /):
    """The real part (a real array is returned as it is).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.real(fnp.array([1 + 2j]))
        Array([1.], dtype=float32)
    """
    x = _as_array(val)
    return cx.real_p.bind(x) if _is_complex(x) else x


def imag(val, /):
    """The imaginary part (zeros for a real array).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.imag(fnp.array([1 + 2j]))
        Array([2.], dtype=float32)
    """
    x = _as_array(val)
    if _is_complex(x):
        return cx.imag_p.bind(x)
    return lax.full(x.shape, 0, x.dtype)


def conjugate(x, /):
    """The complex conjugate (a real array is returned as it is).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.conjugate(fnp.array([1 + 2j]))
        Array([1.-2.j], dtype=complex64)
    """
    x = _as_array(x)
    return cx.conj_p.bind(x) if _is_complex(x) else x


conj = conjugate


def angle(z, deg=False):
    """The argument of complex numbers, `arctan2(imag(z), real(z))`, in radians (degrees
    with `deg=True`). Real inputs give 0 or pi.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.angle(fnp.array([1j, -1.0]))
        Array([1.5707964, 3.1415927], dtype=float32)
    """
    z = _as_array(z)
    if _is_complex(z):
        re, im = cx.real_p.bind(z), cx.imag_p.bind(z)
    else:
        (re,) = promote_float(z)
        im = lax.full(re.shape, 0, re.dtype)
    out = lax.atan2_p.bind(im, re)
    return lax.mul_p.bind(out, lax._c(out, 180 / math.pi)) if deg else out


def iscomplex(x, /):
    """True where the imaginary part is non-zero.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.iscomplex(fnp.array([1 + 0j, 1j]))
        Array([False,  True], dtype=bool)
    """
    i = imag(x)
    return lax.ne_p.bind(i, lax._c(i, 0))


def isreal(x, /):
    """True where the imaginary part is zero.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.isreal(fnp.array([1 + 0j, 1j]))
        Array([ True, False], dtype=bool)
    """
    i = imag(x)
    return lax.eq_p.bind(i, lax._c(i, 0))


def real_if_close(a, tol=100):
    """The real part if every imaginary part is below `tol` machine epsilons (numpy's
    `real_if_close`); else `a` unchanged. The result's dtype depends on the values, so
    this needs concrete values (not available under `jit`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.real_if_close(fnp.array([2.0 + 1e-10j]))
        Array([2.], dtype=float32)
    """
    a = _as_array(a)
    if not _is_complex(a):
        return a
    if isinstance(a, Tracer):
        try:
            value = core._lowest(a)
        except core.ConcretizationError:
            raise core.ConcretizationError(
                "real_if_close: the result's dtype depends on the values, which are not "
                "known under jit; use real(a) when the imaginary parts are known to be "
                "small") from None
    else:
        value = a
    value = np.asarray(core.to_numpy(value))
    if tol > 1:
        tol = tol * np.finfo(value.dtype).eps
    return real(a) if bool(np.all(np.abs(value.imag) < tol)) else a


def logaddexp2(x1, x2, /):
    """`log2(2**x1 + 2**x2)`, computed without overflow (`logaddexp` in base 2).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.logaddexp2(fnp.array([1.0]), fnp.array([1.0]))
        Array([2.], dtype=float32)
    """
    _check_ranks("logaddexp2", x1, x2)
    x1, x2 = promote_float(x1, x2)
    ln2 = lax._c(x1, math.log(2))
    out = cx.logaddexp_p.bind(lax.mul_p.bind(x1, ln2), lax.mul_p.bind(x2, ln2))
    return lax.div_p.bind(out, ln2)


del promote
