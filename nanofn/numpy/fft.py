"""nanofn.numpy.fft: numpy.fft's functions (jax.numpy.fft's names) on the `fft` primitive.

Every transform is one or a few binds of the linear primitive `nanofn.lax.fft`, so each is
differentiable in both modes to any order, batches under `vmap` and stages under `jit`.
`n`/`s` crop or zero-pad the input first; `norm` is `"backward"` (the default: the inverse
transforms divide by the length), `"ortho"` (both divide by its square root) or
`"forward"` (the forward transforms divide). More than three axes are transformed three
(or two) at a time. Real inputs of `fft`, `ifft` and friends are cast to complex; the
result is complex64 for float32 (and integer) input, complex128 for float64, as in JAX.

Example:
    >>> import nanofn.numpy as fnp
    >>> fnp.fft.fft(fnp.array([1.0, 0.0, 0.0, 0.0]))
    Array([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j], dtype=complex64)
"""

from __future__ import annotations

import math
import operator

import numpy as np

from nanofn.numpy._dtypes import asarray_value, default_float, promote_float
from nanofn.numpy._lax_numpy import _ndim, _shape, _wrap_output, moveaxis
from nanofn.numpy._shape_funcs import roll
from nanofn.ops import _base as lax
from nanofn.ops._fft import FftType, _negate_indices
from nanofn.ops._fft import fft as _lax_fft
from nanofn.ops._shape import pad as _lax_pad
from nanofn.ops._shape import slice as _lax_slice

__all__ = ["fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn",
           "rfftn", "irfftn", "hfft", "ihfft", "fftfreq", "rfftfreq", "fftshift", "ifftshift"]

_NORMS = (None, "backward", "ortho", "forward")


def _scale(func_name, norm, s, inverse):
    """The factor `norm` asks for on top of numpy's default ("backward") scaling."""
    if norm not in _NORMS:
        raise ValueError(f"fft.{func_name}: invalid norm {norm!r}; use \"backward\", "
                         "\"ortho\" or \"forward\"")
    if norm in (None, "backward"):
        return None
    size = math.prod(s)
    if norm == "ortho":
        return math.sqrt(size) if inverse else 1 / math.sqrt(size)
    return size if inverse else 1 / size


def _resize(x, sizes):
    """Crop or zero-pad the trailing axes of `x` to `sizes`."""
    shape = _shape(x)
    lead = len(shape) - len(sizes)
    target = tuple(shape[:lead]) + tuple(sizes)
    if any(t < n for t, n in zip(target, shape)):
        x = _lax_slice(x, (0,) * len(shape), tuple(min(t, n) for t, n in zip(target, shape)))
    if any(t > n for t, n in zip(target, shape)):
        x = _lax_pad(x, np.zeros((), lax._dtype(x)),
                     [(0, t - n, 0) for t, n in zip(target, _shape(x))])
    return x


def _transform(x, fft_type, s):
    """`fft_p` over the trailing len(s) axes, three (or two) at a time past three."""
    if len(s) <= 3:
        return _lax_fft(x, fft_type, s)
    nd = _ndim(x)
    k = 2 if len(s) == 4 else 3
    outer = tuple(range(nd - len(s), nd - k))  # the leading transformed axes
    back = tuple(range(nd - len(s) + k, nd))
    if fft_type in (FftType.FFT, FftType.RFFT):  # the real axes first, then the rest
        x = _lax_fft(x, fft_type, tuple(s[-k:]))
        x = moveaxis(x, outer, back)
        x = _transform(x, FftType.FFT, s[:-k])
        return moveaxis(x, back, outer)
    x = moveaxis(x, outer, back)  # inverse: the complex axes first, the real ones last
    x = _transform(x, FftType.IFFT, s[:-k])
    x = moveaxis(x, back, outer)
    return _lax_fft(x, fft_type, tuple(s[-k:]))


def _prepare(func_name, fft_type, a, s, axes):
    """Move `axes` to the end and crop/pad to `s`; returns (x, lengths, moved axes)."""
    (x,) = promote_float(a)  # integers and bools: the default float, as in JAX
    if np.dtype(lax._dtype(x)) == np.float16:  # no half-precision transform: float32, as JAX
        x = lax.convert_element_type(x, np.float32)
    if fft_type == FftType.RFFT and np.dtype(lax._dtype(x)).kind == "c":
        raise TypeError(f"fft.{func_name}: the input must be real, got dtype "
                        f"{np.dtype(lax._dtype(x)).name}")
    nd = _ndim(x)
    if s is not None:
        s = tuple(operator.index(n) for n in s)
        if any(n < 1 for n in s):
            raise ValueError(f"fft.{func_name}: s={s} must hold positive lengths")
        if axes is not None and len(s) != len(axes):
            raise ValueError(f"fft.{func_name}: s={s} and axes={tuple(axes)} have different "
                             "lengths")
    if axes is None:
        axes = tuple(range(nd - len(s), nd)) if s is not None else tuple(range(nd))
    axes = tuple(operator.index(ax) for ax in axes)
    for ax in axes:
        if not -nd <= ax < nd:
            raise ValueError(f"fft.{func_name}: axis {ax} is out of bounds for an input of "
                             f"rank {nd}")
    axes = tuple(ax % nd for ax in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"fft.{func_name}: repeated axes {axes} are not supported")
    if nd == 0:
        raise ValueError(f"fft.{func_name}: the input must have at least one dimension")
    moved = tuple(range(nd - len(axes), nd))
    x = moveaxis(x, axes, moved)
    shape = _shape(x)
    if s is None:
        s = tuple(shape[ax] for ax in moved)
        if fft_type == FftType.IRFFT and s:
            s = s[:-1] + (2 * (s[-1] - 1),)
    if fft_type == FftType.IRFFT:
        if s and s[-1] < 1:
            raise ValueError(f"fft.{func_name}: invalid output length {s[-1]} (give n or s)")
        x = _resize(x, s[:-1] + (s[-1] // 2 + 1,))
    else:
        x = _resize(x, s)
    return x, s, axes, moved


def _fft_core(func_name, fft_type, a, s, axes, norm, *, negate=False):
    x, s, axes, moved = _prepare(func_name, fft_type, a, s, axes)
    if not s:
        return _wrap_output(_lax_fft(x, fft_type, ()))
    if negate and fft_type == FftType.RFFT:  # conj(rfft(x)) == rfft(x at -j), x real
        x = _negate_indices(x, len(s))
    out = _transform(x, fft_type, s)
    if negate and fft_type == FftType.IRFFT:  # irfft(conj(y)) == irfft(y) at -j
        out = _negate_indices(out, len(s))
    factor = _scale(func_name, norm, s, fft_type in (FftType.IFFT, FftType.IRFFT))
    if factor is not None:
        out = lax._mul(out, np.asarray(factor, lax._dtype(out)))
    return _wrap_output(moveaxis(out, moved, axes))


def _one_axis(func_name, n, axis):
    if isinstance(axis, (tuple, list)):
        raise ValueError(f"fft.{func_name}: axis must be one int, got {axis}; the n-dimensional "
                         "transforms (fftn, rfftn, ...) take several axes")
    return (None if n is None else (n,)), (operator.index(axis),)


def _two_axes(func_name, axes):
    if len(axes) != 2:
        raise ValueError(f"fft.{func_name} takes exactly 2 axes, got axes={tuple(axes)}")
    return axes


def fft(a, n=None, axis=-1, norm=None):
    """The one-dimensional discrete Fourier transform (numpy.fft.fft).

    Args:
        a: the input array (real inputs are cast to complex).
        n: the transform length; `a` is cropped or zero-padded along `axis` to it.
        axis: the axis to transform.
        norm: `"backward"` (default), `"ortho"` or `"forward"`.

    Returns:
        The complex transform.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.fft(fnp.array([1.0, 2.0, 3.0, 4.0]))
        Array([10.+0.j, -2.+2.j, -2.+0.j, -2.-2.j], dtype=complex64)
    """
    s, axes = _one_axis("fft", n, axis)
    return _fft_core("fft", FftType.FFT, a, s, axes, norm)


def ifft(a, n=None, axis=-1, norm=None):
    """The one-dimensional inverse discrete Fourier transform (numpy.fft.ifft).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.ifft(fnp.array([4.0, 0.0, 0.0, 0.0]))
        Array([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j], dtype=complex64)
    """
    s, axes = _one_axis("ifft", n, axis)
    return _fft_core("ifft", FftType.IFFT, a, s, axes, norm)


def rfft(a, n=None, axis=-1, norm=None):
    """The discrete Fourier transform of a real input: the `n // 2 + 1` non-negative
    frequencies (numpy.fft.rfft).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.rfft(fnp.array([1.0, 2.0, 3.0, 4.0]))
        Array([10.+0.j, -2.+2.j, -2.+0.j], dtype=complex64)
    """
    s, axes = _one_axis("rfft", n, axis)
    return _fft_core("rfft", FftType.RFFT, a, s, axes, norm)


def irfft(a, n=None, axis=-1, norm=None):
    """The inverse of `rfft`: a real signal of length `n` (default `2 * (m - 1)` for `m`
    input frequencies) from its non-negative frequencies (numpy.fft.irfft).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.irfft(fnp.array([10.0, -2 + 2j, -2.0]))
        Array([1., 2., 3., 4.], dtype=float32)
    """
    s, axes = _one_axis("irfft", n, axis)
    return _fft_core("irfft", FftType.IRFFT, a, s, axes, norm)


def hfft(a, n=None, axis=-1, norm=None):
    """The transform of a signal with Hermitian symmetry, given by its first half: a real
    spectrum of length `n` (default `2 * (m - 1)`) (numpy.fft.hfft).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.hfft(fnp.array([1.0, 2.0, 3.0]))
        Array([ 8., -2.,  0., -2.], dtype=float32)
    """
    s, axes = _one_axis("hfft", n, axis)
    # numpy: irfft(conj(a), n, norm swapped), and irfft(conj(y)) is irfft(y) at -j
    return _fft_core("hfft", FftType.IRFFT, a, s, axes,
                     _swap_direction("hfft", norm), negate=True)


def ihfft(a, n=None, axis=-1, norm=None):
    """The inverse of `hfft`: the first `n // 2 + 1` Hermitian frequencies of a real signal
    (numpy.fft.ihfft).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.ihfft(fnp.array([8.0, -2.0, 0.0, -2.0]))
        Array([1.+0.j, 2.+0.j, 3.+0.j], dtype=complex64)
    """
    s, axes = _one_axis("ihfft", n, axis)
    # numpy: conj(rfft(a, n, norm swapped)), and conj(rfft(x)) is rfft(x at -j)
    return _fft_core("ihfft", FftType.RFFT, a, s, axes, _swap_direction("ihfft", norm),
                     negate=True)


def _swap_direction(func_name, norm):
    if norm not in _NORMS:
        raise ValueError(f"fft.{func_name}: invalid norm {norm!r}; use \"backward\", "
                         "\"ortho\" or \"forward\"")
    return {None: "forward", "backward": "forward", "ortho": "ortho", "forward": "backward"}[norm]


def fftn(a, s=None, axes=None, norm=None):
    """The n-dimensional discrete Fourier transform over `axes` (default: all, or the last
    `len(s)`) (numpy.fft.fftn).

    Args:
        a: the input array.
        s: the transform lengths, one per axis (crop or zero-pad).
        axes: the axes to transform.
        norm: `"backward"` (default), `"ortho"` or `"forward"`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.fftn(fnp.array([[1.0, 2.0], [3.0, 4.0]]))
        Array([[10.+0.j, -2.+0.j],
               [-4.+0.j,  0.+0.j]], dtype=complex64)
    """
    return _fft_core("fftn", FftType.FFT, a, s, axes, norm)


def ifftn(a, s=None, axes=None, norm=None):
    """The n-dimensional inverse discrete Fourier transform (numpy.fft.ifftn).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.ifftn(fnp.array([[4.0, 0.0], [0.0, 0.0]]))
        Array([[1.+0.j, 1.+0.j],
               [1.+0.j, 1.+0.j]], dtype=complex64)
    """
    return _fft_core("ifftn", FftType.IFFT, a, s, axes, norm)


def rfftn(a, s=None, axes=None, norm=None):
    """The n-dimensional transform of a real input; the last axis keeps its non-negative
    frequencies (numpy.fft.rfftn).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.rfftn(fnp.array([[1.0, 2.0], [3.0, 4.0]]))
        Array([[10.+0.j, -2.+0.j],
               [-4.+0.j,  0.+0.j]], dtype=complex64)
    """
    return _fft_core("rfftn", FftType.RFFT, a, s, axes, norm)


def irfftn(a, s=None, axes=None, norm=None):
    """The inverse of `rfftn`: a real array whose last transformed axis has length
    `s[-1]` (default `2 * (m - 1)`) (numpy.fft.irfftn).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.irfftn(fnp.array([[10.0, -2.0], [-4.0, 0.0]]))
        Array([[1., 2.],
               [3., 4.]], dtype=float32)
    """
    return _fft_core("irfftn", FftType.IRFFT, a, s, axes, norm)


def fft2(a, s=None, axes=(-2, -1), norm=None):
    """The two-dimensional discrete Fourier transform (numpy.fft.fft2).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.fft2(fnp.ones((2, 2)))
        Array([[4.+0.j, 0.+0.j],
               [0.+0.j, 0.+0.j]], dtype=complex64)
    """
    return _fft_core("fft2", FftType.FFT, a, s, _two_axes("fft2", axes), norm)


def ifft2(a, s=None, axes=(-2, -1), norm=None):
    """The two-dimensional inverse discrete Fourier transform (numpy.fft.ifft2).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.ifft2(fnp.array([[4.0, 0.0], [0.0, 0.0]]))
        Array([[1.+0.j, 1.+0.j],
               [1.+0.j, 1.+0.j]], dtype=complex64)
    """
    return _fft_core("ifft2", FftType.IFFT, a, s, _two_axes("ifft2", axes), norm)


def rfft2(a, s=None, axes=(-2, -1), norm=None):
    """The two-dimensional transform of a real input (numpy.fft.rfft2).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.rfft2(fnp.ones((2, 2)))
        Array([[4.+0.j, 0.+0.j],
               [0.+0.j, 0.+0.j]], dtype=complex64)
    """
    return _fft_core("rfft2", FftType.RFFT, a, s, _two_axes("rfft2", axes), norm)


def irfft2(a, s=None, axes=(-2, -1), norm=None):
    """The inverse of `rfft2` (numpy.fft.irfft2).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.irfft2(fnp.array([[4.0, 0.0], [0.0, 0.0]]))
        Array([[1., 1.],
               [1., 1.]], dtype=float32)
    """
    return _fft_core("irfft2", FftType.IRFFT, a, s, _two_axes("irfft2", axes), norm)


def _check_freq_args(func_name, n, d):
    if isinstance(n, (list, tuple)):
        raise ValueError(f"fft.{func_name}: n must be one int, got {n}")
    if isinstance(d, (list, tuple)):
        raise ValueError(f"fft.{func_name}: d must be one number, got {d}")
    return operator.index(n)


def fftfreq(n, d=1.0, *, dtype=None, device=None):
    """The sample frequencies of an `n`-point `fft` with sample spacing `d`:
    `[0, 1, ..., n//2 - 1 (or (n-1)//2), -(n//2), ..., -1] / (d * n)` (numpy.fft.fftfreq).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.fftfreq(4)
        Array([ 0.  ,  0.25, -0.5 , -0.25], dtype=float32)
    """
    del device  # unused: one device
    n = _check_freq_args("fftfreq", n, d)
    dtype = np.dtype(dtype or default_float())  # float64 under jax_enable_x64, as JAX
    k = (np.arange(n) + n // 2) % n - n // 2
    return _wrap_output(lax._div(np.asarray(k, dtype), asarray_value(d * n, dtype)))


def rfftfreq(n, d=1.0, *, dtype=None, device=None):
    """The sample frequencies of an `n`-point `rfft`: `[0, 1, ..., n // 2] / (d * n)`
    (numpy.fft.rfftfreq).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.rfftfreq(4)
        Array([0.  , 0.25, 0.5 ], dtype=float32)
    """
    del device  # unused: one device
    n = _check_freq_args("rfftfreq", n, d)
    dtype = np.dtype(dtype or default_float())  # float64 under jax_enable_x64, as JAX
    return _wrap_output(lax._div(np.arange(n // 2 + 1, dtype=dtype), asarray_value(d * n, dtype)))


def _shifts(x, axes, sign):
    shape = _shape(x)
    if axes is None:
        axes = tuple(range(len(shape)))
    elif not isinstance(axes, (tuple, list)):
        axes = (axes,)
    return [sign * (shape[ax] // 2) for ax in axes], tuple(axes)


def fftshift(x, axes=None):
    """Move the zero frequency to the centre: roll each axis by half its length
    (numpy.fft.fftshift).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.fftshift(fnp.fft.fftfreq(5))
        Array([-0.4, -0.2,  0. ,  0.2,  0.4], dtype=float32)
    """
    x = asarray_value(x)
    shifts, axes = _shifts(x, axes, 1)
    return roll(x, tuple(shifts), axes) if axes else _wrap_output(x)


def ifftshift(x, axes=None):
    """The inverse of `fftshift` (numpy.fft.ifftshift).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.fft.ifftshift(fnp.array([-0.4, -0.2, 0.0, 0.2, 0.4]))
        Array([ 0. ,  0.2,  0.4, -0.4, -0.2], dtype=float32)
    """
    x = asarray_value(x)
    shifts, axes = _shifts(x, axes, -1)
    return roll(x, tuple(shifts), axes) if axes else _wrap_output(x)
