"""The fast Fourier transform: one linear primitive, `fft`, with four kinds.

`fft_p` transforms the trailing `len(fft_lengths)` (at most 3) axes of its operand:

* `FFT` and `IFFT`: complex to complex, the shape kept;
* `RFFT`: real to complex, the last axis becomes `n // 2 + 1` long (the non-negative
  frequencies; the others are their complex conjugates);
* `IRFFT`: complex to real, the inverse of `RFFT`, the last axis becomes `fft_lengths[-1]`.

Every kind is linear, so the tangent map is the primitive itself and reverse mode needs
only a transpose, under JAX's convention for complex cotangents (the transpose of a linear
map `A` is `A^T`, no conjugation; a real input's cotangent is the real part):

* the DFT matrix `F[k, j] = exp(-2 pi i k j / n)` is symmetric, so `FFT` and `IFFT` are
  their own transposes;
* `RFFT` keeps rows `k < n // 2 + 1` of `F`; its transpose is `Re(sum_k ct[k] F[k, j])`,
  which is `n * irfft(ct / w)` read at the negated index `-j mod n`, where `w` is 1 for
  the zero (and, for even `n`, the Nyquist) frequency and 2 for the others, whose mirror
  images `irfft` counts twice;
* `IRFFT`'s transpose is, by the same bookkeeping, `w / n * conj(rfft(ct))`, and
  `conj(rfft(ct)) == rfft(ct at -j)`.

Reading an array at negated indices (`_negate_indices`, a reversal and a shift) stands in
for a complex conjugate in both rules, so they need only real-valued primitives.
"""

from __future__ import annotations

import enum
import math
import operator

import numpy as np

from nanofn._core import Primitive, ShapedArray
from nanofn.ops import _base as lax
from nanofn.ops._base import _aval_shape, _dtype, bdim_to_front
from nanofn.ops._shape import concatenate_p, rev_p, slice_p

__all__ = ["fft", "FftType"]


class FftType(enum.IntEnum):
    """Which transform `fft` computes (jax.lax.FftType)."""

    FFT = 0    # forward, complex to complex
    IFFT = 1   # inverse, complex to complex
    RFFT = 2   # forward, real to complex
    IRFFT = 3  # inverse, complex to real


def _fft_type(fft_type) -> FftType:
    if isinstance(fft_type, FftType):
        return fft_type
    if isinstance(fft_type, str) and fft_type.upper() in FftType.__members__:
        return FftType[fft_type.upper()]
    raise ValueError(f"fft: unknown fft_type {fft_type!r}; use one of "
                     f"{', '.join(FftType.__members__)} (or lax.FftType)")


def _complex_dtype(dtype):
    return np.dtype(np.complex64 if np.dtype(dtype) in (np.float32, np.complex64)
                    else np.complex128)


def _real_dtype(dtype):
    return np.dtype(np.float32 if np.dtype(dtype) in (np.float32, np.complex64) else np.float64)


# ------------------------------------------------------------------------ fft

fft_p = Primitive("fft")


@fft_p.def_impl
def _fft_impl(x, *, fft_type, fft_lengths):
    # eager binds skip the shape rule, and numpy would crop or pad silently: check here
    _fft_abstract_eval(ShapedArray(x.shape, x.dtype), fft_type=fft_type, fft_lengths=fft_lengths)
    axes = tuple(range(x.ndim - len(fft_lengths), x.ndim))
    if fft_type == FftType.FFT:
        out = np.fft.fftn(x, s=fft_lengths, axes=axes)
    elif fft_type == FftType.IFFT:
        out = np.fft.ifftn(x, s=fft_lengths, axes=axes)
    elif fft_type == FftType.RFFT:
        out = np.fft.rfftn(x, s=fft_lengths, axes=axes)
    else:
        out = np.fft.irfftn(x, s=fft_lengths, axes=axes)
    dtype = _real_dtype(x.dtype) if fft_type == FftType.IRFFT else _complex_dtype(x.dtype)
    return np.asarray(out, dtype=dtype)


@fft_p.def_abstract_eval
def _fft_abstract_eval(x, *, fft_type, fft_lengths):
    k = len(fft_lengths)
    if not 1 <= k <= 3 or k > x.ndim:
        raise ValueError(f"fft: fft_lengths {fft_lengths} must name 1 to 3 trailing axes of "
                         f"the operand {x.str_short()}")
    if any(n < 1 for n in fft_lengths):
        raise ValueError(f"fft: fft_lengths {fft_lengths} must be positive")
    minor = x.shape[x.ndim - k:]
    if fft_type == FftType.RFFT:
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"fft: RFFT takes a float32 or float64 operand, got {x.str_short()}")
        if minor != tuple(fft_lengths):
            raise ValueError(f"fft: RFFT operand {x.str_short()} must end in fft_lengths "
                             f"{fft_lengths}")
        shape = x.shape[:x.ndim - k] + tuple(fft_lengths[:-1]) + (fft_lengths[-1] // 2 + 1,)
        return ShapedArray(shape, _complex_dtype(x.dtype))
    if x.dtype not in (np.complex64, np.complex128):
        raise TypeError(f"fft: {FftType(fft_type).name} takes a complex64 or complex128 "
                        f"operand, got {x.str_short()}")
    if fft_type == FftType.IRFFT:
        if minor[:-1] != tuple(fft_lengths[:-1]) or minor[-1] != fft_lengths[-1] // 2 + 1:
            raise ValueError(f"fft: IRFFT operand {x.str_short()} must end in "
                             f"{tuple(fft_lengths[:-1]) + (fft_lengths[-1] // 2 + 1,)} "
                             f"for fft_lengths {fft_lengths}")
        return ShapedArray(x.shape[:x.ndim - k] + tuple(fft_lengths), _real_dtype(x.dtype))
    if minor != tuple(fft_lengths):
        raise ValueError(f"fft: {FftType(fft_type).name} operand {x.str_short()} must end in "
                         f"fft_lengths {fft_lengths}")
    return x


def _negate_indices(x, k):
    """`x[..., -j mod n]` on each of the last `k` axes: element 0 stays, the rest reverse."""
    shape = _aval_shape(x)
    for axis in range(len(shape) - k, len(shape)):
        n = shape[axis]
        if n <= 1:
            continue
        lo = [0] * len(shape)
        hi = list(shape)
        hi[axis] = 1
        head = slice_p.bind(x, start_indices=tuple(lo), limit_indices=tuple(hi), strides=None)
        lo[axis], hi[axis] = 1, n
        tail = slice_p.bind(x, start_indices=tuple(lo), limit_indices=tuple(hi), strides=None)
        x = concatenate_p.bind(head, rev_p.bind(tail, dimensions=(axis,)), dimension=axis)
    return x


def _half_spectrum_weights(n, dtype):
    """1 for the frequencies `irfft` counts once (zero, and Nyquist for even n), else 2."""
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w.astype(dtype)


def _fft_transpose(ct, x, *, fft_type, fft_lengths):
    del x  # unused: the transpose of a linear map does not depend on the point
    if fft_type in (FftType.FFT, FftType.IFFT):  # the DFT matrix is symmetric
        return fft_p.bind(ct, fft_type=fft_type, fft_lengths=fft_lengths)
    size = math.prod(fft_lengths)
    k = len(fft_lengths)
    if fft_type == FftType.RFFT:  # Re(F^T ct) = size * irfft(ct / w) at -j
        scale = (size / _half_spectrum_weights(fft_lengths[-1], np.float64)).astype(_dtype(ct))
        y = fft_p.bind(lax._mul(ct, scale), fft_type=FftType.IRFFT, fft_lengths=fft_lengths)
        return _negate_indices(y, k)
    # IRFFT: conj(w / size * rfft(ct)) = w / size * rfft(ct at -j)
    y = fft_p.bind(_negate_indices(ct, k), fft_type=FftType.RFFT, fft_lengths=fft_lengths)
    scale = (_half_spectrum_weights(fft_lengths[-1], np.float64) / size).astype(_dtype(y))
    return lax._mul(y, scale)


lax.deflinear(fft_p, _fft_transpose)


def _fft_batch(vals, dims, **params):
    return fft_p.bind(bdim_to_front(vals[0], dims[0]), **params), 0


fft_p.batch = _fft_batch


def fft(x, fft_type, fft_lengths):
    """The fast Fourier transform of the trailing `len(fft_lengths)` axes (jax.lax.fft).

    Args:
        x: the operand: real for `RFFT` (cast to a float type), complex otherwise (cast
            to a complex type).
        fft_type: an `FftType` or its name, `"FFT"`, `"IFFT"`, `"RFFT"` or `"IRFFT"`.
        fft_lengths: the lengths of the transformed (trailing) axes, at most 3 of them;
            for `IRFFT`, the lengths of the real output.

    Returns:
        The transform: complex64/complex128 except for `IRFFT`, which is real.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> nanofn.lax.fft(fnp.array([1.0, 2.0, 3.0, 4.0]), "RFFT", (4,))
        Array([10.+0.j, -2.+2.j, -2.+0.j], dtype=complex64)
    """
    fft_type = _fft_type(fft_type)
    fft_lengths = tuple(operator.index(n) for n in fft_lengths)
    dtype = np.dtype(_dtype(x))
    if fft_type == FftType.RFFT:
        if dtype.kind == "c":
            raise TypeError(f"fft: RFFT takes a real operand, got dtype {dtype.name}")
        target = dtype if dtype.kind == "f" and dtype.itemsize >= 4 else np.dtype(np.float32)
    else:
        target = _complex_dtype(dtype) if dtype.kind in "fc" else np.dtype(np.complex64)
    if dtype != target:
        x = lax.convert_element_type_p.bind(x, new_dtype=target)
    if not fft_lengths:
        return x
    return fft_p.bind(x, fft_type=fft_type, fft_lengths=fft_lengths)
