"""numpy.convolve and numpy.correlate on the convolution primitive.

Both are one `conv_general_dilated` over a single batch and feature axis, so they have
every derivative, batch under `vmap` and stage under `jit` through the convolution's own
rules. `nanofn.scipy.signal` builds its n-dimensional functions on `_conv_nd` below.
"""

from __future__ import annotations

import warnings

import numpy as np

from nanofn.numpy._dtypes import asarray_value, promote_float
from nanofn.numpy._lax_numpy import _shape, _wrap_output
from nanofn.ops import _base as lax
from nanofn.ops._conv import conv_general_dilated
from nanofn.ops._shape import rev as _rev

__all__ = ["convolve", "correlate"]

_MODES = ("full", "same", "valid")


def _conj(x):
    """The complex conjugate (the identity on real arrays)."""
    if np.dtype(lax._dtype(x)).kind != "c":
        return x
    try:
        from nanofn.ops._complex import conj_p  # complex numbers' primitives
    except ImportError:  # a tree without them yet: conj(z) = 2 Re(z) - z
        re = lax.convert_element_type(_real(x), lax._dtype(x))
        return lax._sub(lax._mul(re, np.asarray(2, lax._dtype(x))), x)
    return conj_p.bind(x)


def _real(x):
    """The real part (the identity on real arrays)."""
    dtype = np.dtype(lax._dtype(x))
    if dtype.kind != "c":
        return x
    try:
        from nanofn.ops._complex import real_p  # complex numbers' primitives
    except ImportError:  # a tree without them yet: the cast keeps the real part
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            return lax.convert_element_type(x, np.finfo(dtype).dtype)
    return real_p.bind(x)


def _flip(x):
    return _rev(x, tuple(range(len(_shape(x)))))


def _conv_nd(x, k, padding):
    """Cross-correlation of `x` with the kernel `k` (same rank), zero-padded by `padding`
    (a `(low, high)` pair per axis)."""
    nd = len(_shape(x))
    out = conv_general_dilated(lax.reshape(x, (1, 1) + tuple(_shape(x))),
                               lax.reshape(k, (1, 1) + tuple(_shape(k))),
                               (1,) * nd, [tuple(p) for p in padding])
    return lax.reshape(out, tuple(_shape(out)[2:]))


def _check_1d(fname, a, v, mode):
    if mode not in _MODES:
        raise ValueError(f"{fname}: mode must be one of {list(_MODES)}, got {mode!r}")
    a, v = asarray_value(a), asarray_value(v)
    if len(_shape(a)) != 1 or len(_shape(v)) != 1:
        raise ValueError(f"{fname}: a and v must be 1-d, got shapes {_shape(a)} and {_shape(v)}")
    if _shape(a)[0] == 0 or _shape(v)[0] == 0:
        raise ValueError(f"{fname}: inputs cannot be empty, got shapes {_shape(a)} and "
                         f"{_shape(v)}")
    return promote_float(a, v)


def _conv_1d(x, y, mode):
    """`sum_k x[n + k] y[k]` over the windows `mode` asks for (y no longer than x)."""
    m = _shape(y)[0]
    pads = {"valid": (0, 0), "same": (m // 2, m - m // 2 - 1), "full": (m - 1, m - 1)}[mode]
    return _conv_nd(x, y, [pads])


def convolve(a, v, mode="full", *, precision=None, preferred_element_type=None):
    """The discrete linear convolution of two 1-d arrays (numpy.convolve).

    Args:
        a, v: 1-d arrays (real or complex; integers are promoted to float).
        mode: `"full"` (every overlap, length `len(a) + len(v) - 1`), `"same"` (length
            `max(len(a), len(v))`, centred) or `"valid"` (full overlaps only).
        precision: accepted for JAX compatibility; nanofn computes in the inputs' dtype.
        preferred_element_type: the result's dtype, if given.

    Returns:
        The convolution `(a * v)[n] = sum_m a[m] v[n - m]`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.convolve(fnp.array([1.0, 2.0, 3.0]), fnp.array([0.0, 1.0, 0.5]))
        Array([0. , 1. , 2.5, 4. , 1.5], dtype=float32)
    """
    del precision  # unused
    a, v = _check_1d("convolve", a, v, mode)
    if _shape(a)[0] < _shape(v)[0]:
        a, v = v, a
    out = _conv_1d(a, _flip(v), mode)
    return _finish(out, preferred_element_type)


def correlate(a, v, mode="valid", *, precision=None, preferred_element_type=None):
    """The cross-correlation of two 1-d arrays (numpy.correlate):
    `c[k] = sum_n a[n + k] conj(v[n])`.

    Args:
        a, v: 1-d arrays (real or complex; integers are promoted to float).
        mode: `"valid"` (default), `"same"` or `"full"`, as in `convolve`.
        precision: accepted for JAX compatibility.
        preferred_element_type: the result's dtype, if given.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.correlate(fnp.array([1.0, 2.0, 3.0]), fnp.array([0.0, 1.0, 0.5]), "full")
        Array([0.5, 2. , 3.5, 3. , 0. ], dtype=float32)
    """
    del precision  # unused
    a, v = _check_1d("correlate", a, v, mode)
    v = _conj(v)
    if _shape(a)[0] < _shape(v)[0]:  # correlate(a, v) is correlate(v, a) reversed
        return _finish(_flip(_conv_1d(v, a, mode)), preferred_element_type)
    return _finish(_conv_1d(a, v, mode), preferred_element_type)


def _finish(out, preferred_element_type):
    if preferred_element_type is not None:
        out = lax.convert_element_type(out, np.dtype(preferred_element_type))
    return _wrap_output(out)
