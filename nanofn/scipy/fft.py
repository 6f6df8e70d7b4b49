"""nanofn.scipy.fft: the discrete cosine transform (jax.scipy.fft's `dct`, `dctn`, `idct`,
`idctn`), built on `nanofn.numpy.fft`, so it differentiates and batches like any
function of primitives.

As in JAX, only type 2 (and its inverse) is provided, with `norm` None ("backward") or
"ortho". A DCT-II of length N is one complex FFT of the same length (Makhoul, 1980): the
even-indexed inputs in order, then the odd-indexed ones reversed; the FFT's bin k times
`2 exp(-i pi k / 2N)` has the DCT as its real part. The inverse undoes each step.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy.fft import dct, idct
    >>> dct(fnp.array([1.0, 2.0, 3.0]))
    Array([12.       , -3.4641016,  0.       ], dtype=float32)
    >>> idct(dct(fnp.array([1.0, 2.0, 3.0]))).round(5)
    Array([1., 2., 3.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

import nanofn.numpy as fnp
from nanofn import lax
from nanofn.numpy._dtypes import promote_float
from nanofn.numpy._lax_numpy import canonicalize_axis

__all__ = ["dct", "dctn", "idct", "idctn"]


def _check(name, type, norm):
    if type != 2:
        raise NotImplementedError(f"{name}: only the type 2 DCT is implemented (as in JAX), "
                                  f"got type={type}")
    if norm not in (None, "backward", "ortho"):
        raise ValueError(f"{name}: norm must be None, 'backward' or 'ortho', got {norm!r}")


def _resized(x, n, axis):
    """`x` cut or zero-padded to length `n` along `axis` (None: unchanged)."""
    if n is None or n == x.shape[axis]:
        return x
    if n < 1:
        raise ValueError(f"the transform length n must be at least 1, got {n}")
    if n < x.shape[axis]:
        return fnp.take(x, fnp.arange(n), axis=axis)
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, n - x.shape[axis])
    return fnp.pad(x, pad)


def _along(v, axis, ndim):
    """A 1-d array `v` shaped to broadcast along `axis` of an `ndim`-d array."""
    shape = [1] * ndim
    shape[axis] = -1
    return fnp.reshape(v, shape)


def _ortho_scale(n, dtype):
    """The factors that make the unnormalised DCT-II orthonormal: 1/sqrt(4N), then
    1/sqrt(2N)."""
    return np.concatenate([[1 / np.sqrt(4 * n)], np.full(n - 1, 1 / np.sqrt(2 * n))]).astype(
        dtype)


def _float(x):
    """`x` as an array the transforms take: integers and booleans become floats (int64
    float64, the others float32) and float16 becomes float32 (as JAX, whose FFTs start at 32 bits); complex
    input is transformed part by part (see `_by_parts`)."""
    (x,) = promote_float(fnp.asarray(x))
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _by_parts(transform, x, **kwargs):
    """A real-linear transform of complex `x`: of its real and imaginary parts, as JAX and
    scipy do."""
    return lax.complex(transform(fnp.real(x), **kwargs), transform(fnp.imag(x), **kwargs))


def dct(x, type=2, n=None, axis=-1, norm=None):
    """The discrete cosine transform (type 2) along `axis`: `y[k] = 2 sum_j x[j] cos(pi k
    (2 j + 1) / 2N)`, as `scipy.fft.dct` and `jax.scipy.fft.dct`.

    Args:
      x: a real or complex array (complex: its real and imaginary parts are transformed
        separately, as JAX and scipy do).
      type: 2 (the only type implemented, as in JAX).
      n: the transform length: `x` is cut or zero-padded to it along `axis`.
      axis: the axis to transform.
      norm: None ("backward") or "ortho" (an orthonormal transform).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.fft import dct
        >>> dct(fnp.array([1.0, 2.0, 3.0]), norm="ortho").round(4)
        Array([ 3.4641, -1.4142,  0.    ], dtype=float32)
    """
    _check("dct", type, norm)
    x = _float(x)
    if fnp.issubdtype(x.dtype, fnp.complexfloating):
        return _by_parts(dct, x, n=n, axis=axis, norm=norm)
    axis = canonicalize_axis(axis, x.ndim, "axis")
    x = _resized(x, n, axis)
    size = x.shape[axis]
    idx = np.concatenate([np.arange(0, size, 2), np.arange(1, size, 2)[::-1]])
    v = fnp.take(x, idx, axis=axis)
    spectrum = fnp.fft.fft(v, axis=axis)
    k = np.arange(size)
    twiddle = _along((2 * np.exp(-1j * np.pi * k / (2 * size))).astype(spectrum.dtype), axis,
                     x.ndim)
    out = fnp.real(spectrum * twiddle)
    if norm == "ortho":
        out = out * _along(_ortho_scale(size, out.dtype), axis, x.ndim)
    return out


def idct(x, type=2, n=None, axis=-1, norm=None):
    """The inverse of `dct` (a scaled DCT-III) along `axis`, as `scipy.fft.idct`: with the
    same `norm`, `idct(dct(x)) == x`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.fft import idct
        >>> idct(fnp.array([12.0, -3.4641016, 0.0])).round(4)
        Array([1., 2., 3.], dtype=float32)
    """
    _check("idct", type, norm)
    x = _float(x)
    if fnp.issubdtype(x.dtype, fnp.complexfloating):
        return _by_parts(idct, x, n=n, axis=axis, norm=norm)
    axis = canonicalize_axis(axis, x.ndim, "axis")
    x = _resized(x, n, axis)
    size = x.shape[axis]
    if norm == "ortho":  # back to the unnormalised coefficients
        x = x / _along(_ortho_scale(size, x.dtype), axis, x.ndim)
    ctype = fnp.result_type(x.dtype, np.complex64)
    k = np.arange(size)
    # V[k] = (y[k] - i y[N - k]) / (2 w[k]) with w the DCT's twiddle and y[N] = 0
    shifted = fnp.take(x, np.concatenate([[0], np.arange(size - 1, 0, -1)]), axis=axis)
    shifted = shifted * _along((k > 0).astype(x.dtype), axis, x.ndim)
    spectrum = (x - 1j * shifted) * _along(
        (np.exp(1j * np.pi * k / (2 * size)) / 2).astype(ctype), axis, x.ndim)
    v = fnp.real(fnp.fft.ifft(spectrum, axis=axis))
    # undo the interleaving: the first half holds the even entries, the rest the odd ones
    # reversed
    order = np.empty(size, np.int64)
    half = (size + 1) // 2
    order[0::2] = np.arange(half)
    order[1::2] = np.arange(size - 1, half - 1, -1)
    return fnp.take(v, order, axis=axis)


def _axes(name, x, s, axes):
    if s is not None and len(s) > x.ndim:
        raise ValueError(f"{name}: s ({s}) must have at most x.ndim ({x.ndim}) entries")
    if axes is None:
        axes = tuple(range(x.ndim)) if s is None else tuple(range(x.ndim - len(s), x.ndim))
    axes = tuple(canonicalize_axis(a, x.ndim, "axes") for a in axes)
    if s is not None and len(s) != len(axes):
        raise ValueError(f"{name}: s ({s}) and axes ({axes}) must have the same length")
    return axes, (s if s is not None else (None,) * len(axes))


def dctn(x, type=2, s=None, axes=None, norm=None):
    """The DCT (type 2) over several axes (default: all), one axis after another, as
    `scipy.fft.dctn`; `s` gives each axis's transform length.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.fft import dctn
        >>> dctn(fnp.ones((2, 2)))
        Array([[16.,  0.],
               [ 0.,  0.]], dtype=float32)
    """
    _check("dctn", type, norm)
    axes, sizes = _axes("dctn", fnp.asarray(x), s, axes)
    if not axes:  # nothing to transform: the input as it is, as JAX
        return fnp.asarray(x)
    x = _float(x)
    for a, n in zip(axes, sizes):
        x = dct(x, n=n, axis=a, norm=norm)
    return x


def idctn(x, type=2, s=None, axes=None, norm=None):
    """The inverse of `dctn` over several axes (default: all), as `scipy.fft.idctn`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.fft import idctn
        >>> idctn(fnp.array([[16.0, 0.0], [0.0, 0.0]]))
        Array([[1., 1.],
               [1., 1.]], dtype=float32)
    """
    _check("idctn", type, norm)
    axes, sizes = _axes("idctn", fnp.asarray(x), s, axes)
    if not axes:  # nothing to transform: the input as it is, as JAX
        return fnp.asarray(x)
    x = _float(x)
    for a, n in zip(axes, sizes):
        x = idct(x, n=n, axis=a, norm=norm)
    return x
