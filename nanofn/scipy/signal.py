"""nanofn.scipy.signal: scipy.signal's convolutions (jax.scipy.signal's names).

`convolve`, `correlate`, `convolve2d` and `correlate2d` are one `conv_general_dilated`
each (a window of the full correlation, chosen by zero padding); `fftconvolve` multiplies
spectra from `nanofn.numpy.fft`. Everything is differentiable in both arguments to any
order, in float64 and complex128, and works under `jit` and `vmap`.

`stft`, `csd` and `welch` cut windowed, detrended segments, transform them with
`nanofn.numpy.fft` and average, as scipy does; `istft` inverts `stft` by windowed
overlap-add. They are differentiable too.

Beyond JAX: `convolve2d`/`correlate2d` also take `boundary="wrap"` and `"symm"` and a
nonzero `fillvalue`, as scipy does.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy import signal
    >>> signal.convolve(fnp.array([1.0, 2.0, 3.0]), fnp.array([1.0, 1.0]))
    Array([1., 3., 5., 3.], dtype=float32)
"""

from __future__ import annotations

import operator
import warnings

import numpy as np

import nanofn
from nanofn.numpy import _lax_numpy as lnp
from nanofn.numpy import fft as _fft
from nanofn.numpy._convolve import _conj, _conv_nd, _flip, _real
from nanofn.numpy._dtypes import asarray_value, promote_float
from nanofn.numpy._lax_numpy import _shape, _wrap_output
from nanofn.numpy._shape_funcs import pad as _np_pad
from nanofn.ops import _base as lax
from nanofn.ops._fft import _complex_dtype
from nanofn.ops._shape import slice as _lax_slice

__all__ = ["convolve", "correlate", "convolve2d", "correlate2d", "fftconvolve", "detrend",
           "stft", "istft", "csd", "welch"]

_MODES = ("full", "same", "valid")


def _inputs(fname, in1, in2, mode, allow_empty=False):
    if mode not in _MODES:
        raise ValueError(f"{fname}: mode must be one of {list(_MODES)}, got {mode!r}")
    in1, in2 = promote_float(in1, in2)
    s1, s2 = tuple(_shape(in1)), tuple(_shape(in2))
    if len(s1) != len(s2):
        raise ValueError(f"{fname}: in1 and in2 must have the same number of dimensions, got "
                         f"shapes {s1} and {s2}")
    if (0 in s1 or 0 in s2) and not allow_empty:
        raise ValueError(f"{fname}: zero-size inputs are not supported, got shapes {s1} and "
                         f"{s2}")
    return in1, in2, s1, s2


def _valid_swap(fname, s1, s2):
    """scipy's rule in "valid" mode: one input must be at least as large in every axis;
    True when that is in2 (and not in1)."""
    if all(a >= b for a, b in zip(s1, s2)):
        return False
    if all(a <= b for a, b in zip(s1, s2)):
        return True
    raise ValueError(f"{fname}: in 'valid' mode one input must be at least as large as the "
                     f"other in every dimension, got shapes {s1} and {s2}")


def _window(x, k, starts, sizes):
    """`out[i] = sum_n x[n + i + starts - (m - 1)] k[n]`: entries `starts .. starts + sizes`
    of the full cross-correlation of `x` with the kernel `k` (shape `m`)."""
    if not _shape(x):  # 0-d inputs: the product (conv_general_dilated needs an axis)
        return lax._mul(x, k)
    pads = []
    for n, m, start, size in zip(_shape(x), _shape(k), starts, sizes):
        low = m - 1 - start
        pads.append((low, size + m - 1 - n - low))
    return _conv_nd(x, k, pads)


def _full_window(mode, s1, s2, same_starts):
    """(starts, sizes) of the full result's window that `mode` keeps."""
    if mode == "full":
        return (0,) * len(s1), tuple(a + b - 1 for a, b in zip(s1, s2))
    if mode == "same":
        return same_starts, s1
    return (tuple(min(a, b) - 1 for a, b in zip(s1, s2)),
            tuple(abs(a - b) + 1 for a, b in zip(s1, s2)))


def _convolve(fname, in1, in2, mode):
    in1, in2, s1, s2 = _inputs(fname, in1, in2, mode)
    if mode == "valid":
        _valid_swap(fname, s1, s2)  # convolution commutes: only the error matters
    starts, sizes = _full_window(mode, s1, s2, tuple((b - 1) // 2 for b in s2))
    return _wrap_output(_window(in1, _flip(in2), starts, sizes))


def convolve(in1, in2, mode="full", method="auto", precision=None):
    """The n-dimensional convolution of two arrays of the same rank (scipy.signal.convolve).

    Args:
        in1, in2: arrays of the same number of dimensions (real or complex).
        mode: `"full"` (every overlap), `"same"` (the shape of `in1`, centred on the full
            result) or `"valid"` (where one input covers the other; one must be at least as
            large as the other in every axis).
        method: `"auto"` or `"direct"` (a direct convolution) or `"fft"` (`fftconvolve`).
        precision: accepted for JAX compatibility.

    Returns:
        `out[n] = sum_m in1[m] in2[n - m]` over the window `mode` keeps.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy import signal
        >>> signal.convolve(fnp.array([1.0, 2.0, 3.0]), fnp.array([0.0, 1.0, 0.5]), "same")
        Array([1. , 2.5, 4. ], dtype=float32)
    """
    del precision  # unused
    if method == "fft":
        return fftconvolve(in1, in2, mode=mode)
    if method not in ("auto", "direct"):
        raise ValueError(f"convolve: method must be 'auto', 'direct' or 'fft', got {method!r}")
    return _convolve("convolve", in1, in2, mode)


def correlate(in1, in2, mode="full", method="auto", precision=None):
    """The n-dimensional cross-correlation (scipy.signal.correlate):
    `out[k] = sum_n in1[n + k] conj(in2[n])`, with the full result's index `k` running from
    `-(in2.shape - 1)`.

    Args:
        in1, in2, mode, method, precision: as in `convolve`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy import signal
        >>> signal.correlate(fnp.array([1.0, 2.0, 3.0]), fnp.array([0.0, 1.0, 0.5]))
        Array([0.5, 2. , 3.5, 3. , 0. ], dtype=float32)
    """
    del precision  # unused
    if method == "fft":
        in1, in2, _, _ = _inputs("correlate", in1, in2, mode, allow_empty=True)
        return fftconvolve(in1, _flip(_conj(in2)), mode=mode)
    if method not in ("auto", "direct"):
        raise ValueError(f"correlate: method must be 'auto', 'direct' or 'fft', got {method!r}")
    in1, in2, s1, s2 = _inputs("correlate", in1, in2, mode)
    if mode == "valid":
        _valid_swap("correlate", s1, s2)
    starts, sizes = _full_window(mode, s1, s2, tuple((b - 1) // 2 for b in s2))
    return _wrap_output(_window(in1, _conj(in2), starts, sizes))


_BOUNDARIES = {"fill": "constant", "pad": "constant", "wrap": "wrap", "circular": "wrap",
               "symm": "symmetric", "symmetric": "symmetric"}


def _pad_boundary(fname, x, k_shape, mode, boundary, fillvalue):
    """Pad `x` as `boundary` asks, so that a zero-padded window sees the boundary values
    (nothing to do for the default zero fill or in "valid" mode)."""
    if boundary not in _BOUNDARIES:
        raise ValueError(f"{fname}: boundary must be one of 'fill', 'wrap' or 'symm', got "
                         f"{boundary!r}")
    kind = _BOUNDARIES[boundary]
    if mode == "valid" or (kind == "constant" and fillvalue == 0):
        return x, (0, 0)
    widths = [(m - 1, m - 1) for m in k_shape]
    if kind == "constant":
        return _np_pad(x, widths, constant_values=fillvalue), tuple(m - 1 for m in k_shape)
    return _np_pad(x, widths, mode=kind), tuple(m - 1 for m in k_shape)


def _check_2d(fname, in1, in2):
    if np.ndim(in1) != 2 or np.ndim(in2) != 2:
        raise ValueError(f"{fname}: inputs must both be 2-D, got shapes {np.shape(in1)} and "
                         f"{np.shape(in2)}")


def _padded_window(x, k, starts, sizes, offset):
    """`_window` of the input that `x` is, padded by `offset` on each side of each axis:
    the entries read the padding instead of zeros."""
    if not any(offset):
        return _window(x, k, starts, sizes)
    # full entry i of the unpadded input is the correlation of x at i + offset - (m - 1),
    # i.e. at i once offset == m - 1: cut those windows out and correlate without padding
    lo = tuple(starts)
    hi = tuple(s + n + m - 1 for s, n, m in zip(starts, sizes, _shape(k)))
    return _conv_nd(_lax_slice(x, lo, hi), k, [(0, 0)] * len(lo))


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0, precision=None):
    """The two-dimensional convolution (scipy.signal.convolve2d).

    Args:
        in1, in2: 2-D arrays.
        mode: `"full"`, `"same"` or `"valid"`, as in `convolve`.
        boundary: `"fill"` (pad with `fillvalue`), `"wrap"` (periodic) or `"symm"`
            (mirrored, the edge repeated).
        fillvalue: the padding value for `boundary="fill"`.
        precision: accepted for JAX compatibility.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy import signal
        >>> signal.convolve2d(fnp.ones((2, 2)), fnp.ones((2, 2)))
        Array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]], dtype=float32)
    """
    del precision  # unused
    _check_2d("convolve2d", in1, in2)
    in1, in2, s1, s2 = _inputs("convolve2d", in1, in2, mode)
    if mode == "valid" and _valid_swap("convolve2d", s1, s2):
        in1, in2, s1, s2 = in2, in1, s2, s1
    starts, sizes = _full_window(mode, s1, s2, tuple((b - 1) // 2 for b in s2))
    x, offset = _pad_boundary("convolve2d", in1, s2, mode, boundary, fillvalue)
    return _wrap_output(_padded_window(x, _flip(in2), starts, sizes, offset))


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0, precision=None):
    """The two-dimensional cross-correlation (scipy.signal.correlate2d).

    As in scipy, "same" mode centres on `in2.shape // 2` (not on `(in2.shape - 1) // 2`
    as `correlate` does), and in "valid" mode with `in2` the larger input the result is
    `correlate2d(in2, in1)` reversed, without conjugation.

    Args:
        in1, in2, mode, boundary, fillvalue, precision: as in `convolve2d`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy import signal
        >>> signal.correlate2d(fnp.array([[1.0, 2.0], [3.0, 4.0]]), fnp.array([[1.0]]))
        Array([[1., 2.],
               [3., 4.]], dtype=float32)
    """
    del precision  # unused
    _check_2d("correlate2d", in1, in2)
    in1, in2, s1, s2 = _inputs("correlate2d", in1, in2, mode)
    swap = mode == "valid" and _valid_swap("correlate2d", s1, s2)
    if swap:
        in1, in2, s1, s2 = in2, in1, s2, s1
    starts, sizes = _full_window(mode, s1, s2, tuple(b // 2 for b in s2))
    x, offset = _pad_boundary("correlate2d", in1, s2, mode, boundary, fillvalue)
    out = _padded_window(x, _conj(in2), starts, sizes, offset)
    return _wrap_output(_flip(out) if swap else out)


def fftconvolve(in1, in2, mode="full", axes=None):
    """Convolution by multiplying spectra (scipy.signal.fftconvolve): the same result as
    `convolve`, faster for large kernels.

    Args:
        in1, in2: arrays of the same rank.
        mode: `"full"`, `"same"` or `"valid"`.
        axes: the axes to convolve over (default all); along the others the inputs must
            have the same size, and each slice is convolved on its own.

    As in JAX, an empty input gives zeros of the mode's shape ("full": `n1 + n2 - 1`
    along each convolved axis; "same": `in1`'s shape; "valid" raises).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy import signal
        >>> signal.fftconvolve(fnp.array([1.0, 2.0, 3.0]), fnp.array([1.0, 1.0]))
        Array([1., 3., 5., 3.], dtype=float32)
    """
    in1, in2, s1, s2 = _inputs("fftconvolve", in1, in2, mode, allow_empty=True)
    nd = len(s1)
    if axes is None:
        axes = tuple(range(nd))
    else:
        axes = (axes,) if not isinstance(axes, (tuple, list)) else tuple(axes)
        axes = tuple(lnp.canonicalize_axis(operator.index(ax), nd, "axes") for ax in axes)
    mapped = [i for i in range(nd) if i not in axes]
    if any(s1[i] != s2[i] for i in mapped):
        raise ValueError(f"fftconvolve: in1 {s1} and in2 {s2} must have the same size along "
                         f"the axes not convolved over (axes={axes})")
    if 0 in s1 or 0 in s2:  # as JAX: zeros of the shape `mode` gives ("valid" is undefined)
        if mode == "valid":
            raise ValueError(f"fftconvolve: mode 'valid' needs nonempty inputs, got shapes "
                             f"{s1} and {s2}")
        shape = tuple(max(a + b - 1, 0) if mode == "full" and i in axes else a
                      for i, (a, b) in enumerate(zip(s1, s2)))
        return lnp.zeros(shape, lax._dtype(in1))
    f = lambda a, b: _fftconvolve(a, b, mode)  # noqa: E731
    # the outermost vmap takes the last mapped axis, so the inner ones keep their indices
    for ax in sorted(mapped):
        f = nanofn.vmap(f, in_axes=ax, out_axes=ax)
    return _wrap_output(f(in1, in2))


def _fftconvolve(in1, in2, mode):
    s1, s2 = tuple(_shape(in1)), tuple(_shape(in2))
    if mode == "valid" and _valid_swap("fftconvolve", s1, s2):
        in1, in2, s1, s2 = in2, in1, s2, s1
    full = tuple(a + b - 1 for a, b in zip(s1, s2))
    if all(a == 1 or b == 1 for a, b in zip(s1, s2)):  # an outer product: no transform
        out = lax._mul(lnp.broadcast_to(in1, full), lnp.broadcast_to(in2, full))
    elif np.dtype(lax._dtype(in1)).kind == "c":
        out = _fft.ifftn(lax._mul(_fft.fftn(in1, full), _fft.fftn(in2, full)), full)
    else:
        out = _fft.irfftn(lax._mul(_fft.rfftn(in1, full), _fft.rfftn(in2, full)), full)
    sizes = {"full": full, "same": s1,
             "valid": tuple(a - b + 1 for a, b in zip(s1, s2))}[mode]
    starts = tuple((f - s) // 2 for f, s in zip(full, sizes))
    return _lax_slice(out, starts, tuple(a + s for a, s in zip(starts, sizes)))


def detrend(data, axis=-1, type="linear", bp=0, overwrite_data=None):  # noqa: A002
    """Remove the mean (`type="constant"`) or the least-squares line (`"linear"`, piecewise
    between the breakpoints `bp`) along `axis` (scipy.signal.detrend).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy import signal
        >>> signal.detrend(fnp.array([1.0, 2.0, 4.0]))
        Array([ 0.16666..., -0.33333...,  0.16666...], dtype=float32)
    """
    if overwrite_data is not None:
        raise NotImplementedError("detrend: overwrite_data is not supported (arrays are "
                                  "immutable)")
    if type not in ("linear", "l", "constant", "c"):
        raise ValueError(f"detrend: type must be 'linear' or 'constant', got {type!r}")
    (x,) = promote_float(asarray_value(data))
    nd = len(_shape(x))
    axis = lnp.canonicalize_axis(axis, nd)
    if type in ("constant", "c"):
        return _wrap_output(x - lnp.mean(x, axis=axis, keepdims=True))
    n = _shape(x)[axis]
    cuts = np.unique(np.r_[0, np.asarray(bp, dtype=np.int64).ravel(), n])
    if cuts[0] < 0 or cuts[-1] > n:
        raise ValueError(f"detrend: breakpoints bp={bp} must lie in [0, {n}] (the length of "
                         f"axis {axis})")
    pieces = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        start = [0] * nd
        limit = list(_shape(x))
        start[axis], limit[axis] = int(lo), int(hi)
        pieces.append(_remove_line(_lax_slice(x, tuple(start), tuple(limit)), axis))
    return _wrap_output(pieces[0] if len(pieces) == 1 else _concat(pieces, axis))


def _remove_line(y, axis):
    """y minus its least-squares line a + b t along `axis` (closed form, no solver)."""
    m = _shape(y)[axis]
    dtype = np.dtype(lax._dtype(y))
    centred = y - lnp.mean(y, axis=axis, keepdims=True)
    if m < 2:
        return centred
    t = np.arange(m, dtype=np.float64)
    t -= t.mean()
    t /= np.sqrt((t * t).sum())  # unit norm: the slope is then <y, t>
    t = t.reshape([m if i == axis else 1 for i in range(len(_shape(y)))])
    t = t.astype(dtype if dtype.kind == "f" else np.finfo(dtype).dtype)
    slope = lnp.sum(y * t, axis=axis, keepdims=True)
    return centred - slope * t


def _concat(pieces, axis):
    from nanofn.numpy._shape_funcs import concatenate
    return concatenate(pieces, axis=axis)


# ------------------------------------------------------------------------ spectral analysis


def _triage_window(fname, window, nperseg, input_length, dtype):
    """The window array and the segment length (scipy's `_triage_segments`)."""
    if isinstance(window, (str, tuple)):
        n = input_length if nperseg is None else operator.index(nperseg)
        if n < 1:
            raise ValueError(f"{fname}: nperseg must be a positive integer, got {nperseg}")
        if n > input_length:
            warnings.warn(f"{fname}: nperseg={n} is greater than the signal length "
                          f"{input_length}, using nperseg={input_length}", stacklevel=4)
            n = input_length
        if window == "hann":  # the default, without scipy: a periodic Hann window
            win = np.sin(np.pi * np.arange(n) / n) ** 2 if n > 1 else np.ones(1)
        else:
            try:
                from scipy.signal import get_window
            except ImportError as err:
                raise ImportError(f"{fname}: window={window!r} needs scipy (pass the window "
                                  "as an array, or use 'hann')") from err
            win = get_window(window, n)
        return np.asarray(win, dtype=dtype), n
    win = asarray_value(window).astype(dtype)
    if len(_shape(win)) != 1:
        raise ValueError(f"{fname}: window must be 1-d, got shape {_shape(win)}")
    n = _shape(win)[0] if nperseg is None else operator.index(nperseg)
    if n != _shape(win)[0]:
        raise ValueError(f"{fname}: nperseg={n} differs from the window's length "
                         f"{_shape(win)[0]}")
    if input_length < n:
        raise ValueError(f"{fname}: the window ({n}) is longer than the signal ({input_length})")
    return win, n


def _pad_last(x, lo, hi, mode="constant"):
    widths = [(0, 0)] * (len(_shape(x)) - 1) + [(lo, hi)]
    return _np_pad(x, widths, mode=mode)


def _odd_ext(x, n):
    """Extend by `n` points at each end, mirrored through the end values (odd extension)."""
    if n < 1:
        return x
    if n > _shape(x)[-1] - 1:
        raise ValueError(f"the extension length {n} must not exceed {_shape(x)[-1] - 1}")
    left, right = x[..., :1], x[..., -1:]
    left_ext = x[..., n:0:-1]
    right_ext = x[..., -2:-(n + 2):-1]
    return _concat([2.0 * left - left_ext, x, 2.0 * right - right_ext], -1)


_BOUNDARY_EXT = {
    "even": lambda x, n: _pad_last(x, n, n, "reflect"),
    "odd": _odd_ext,
    "constant": lambda x, n: _pad_last(x, n, n, "edge"),
    "zeros": lambda x, n: _pad_last(x, n, n),
    None: lambda x, n: x,
}


def _empty_spectral(x, y, axis, complex_out):
    """JAX's results for an empty signal: `(freqs, times, result)`, all zeros of the signal's
    shape (the shorter length on `axis` for two signals), or None if neither is empty."""
    (x,) = promote_float(asarray_value(x))
    shape = _shape(x)
    if y is not None:
        (y,) = promote_float(asarray_value(y))
        if len(_shape(y)) == len(shape):
            ax = lnp.canonicalize_axis(axis, len(shape))
            outer = np.broadcast_shapes(shape[:ax] + (1,) + shape[ax + 1:],
                                        _shape(y)[:ax] + (1,) + _shape(y)[ax + 1:])
            shape = outer[:ax] + (min(shape[ax], _shape(y)[ax]),) + outer[ax + 1:]
    if 0 not in _shape(x) and (y is None or 0 not in _shape(y)):
        return None
    dtype = lax._dtype(x) if y is None else np.result_type(lax._dtype(x), lax._dtype(y))
    real = np.finfo(dtype).dtype
    out = _complex_dtype(real) if complex_out else real
    return lnp.zeros(shape, real), lnp.zeros(shape, real), lnp.zeros(shape, out)


def _spectral(fname, x, y, fs, window, nperseg, noverlap, nfft, detrend_type,
              return_onesided, scaling, axis, mode, boundary=None, padded=False):
    """scipy's `_spectral_helper`: windowed segments, detrended, transformed and scaled.
    Returns (freqs, times, result) with frequencies on `axis` and segments last."""
    if boundary not in _BOUNDARY_EXT:
        raise ValueError(f"{fname}: boundary must be one of {list(_BOUNDARY_EXT)}, got "
                         f"{boundary!r}")
    if y is None:
        (x,) = promote_float(asarray_value(x))
    else:
        x, y = promote_float(x, y)
        if len(_shape(x)) != len(_shape(y)):
            raise ValueError(f"{fname}: x and y must have the same rank, got shapes "
                             f"{_shape(x)} and {_shape(y)}")
    axis = lnp.canonicalize_axis(axis, len(_shape(x)))
    dtype = np.dtype(lax._dtype(x))
    real_dtype = np.finfo(dtype).dtype
    x = lnp.moveaxis(x, axis, -1)
    if y is not None:
        y = lnp.moveaxis(y, axis, -1)
        nx, ny = _shape(x)[-1], _shape(y)[-1]
        if nx < ny:
            x = _pad_last(x, 0, ny - nx)
        elif ny < nx:
            y = _pad_last(y, 0, nx - ny)
    win, nperseg = _triage_window(fname, window, nperseg, _shape(x)[-1], real_dtype)
    noverlap = nperseg // 2 if noverlap is None else operator.index(noverlap)
    nfft = nperseg if nfft is None else operator.index(nfft)
    if nfft < nperseg:
        raise ValueError(f"{fname}: nfft ({nfft}) must be at least nperseg ({nperseg})")
    if noverlap >= nperseg:
        raise ValueError(f"{fname}: noverlap ({noverlap}) must be less than nperseg "
                         f"({nperseg})")
    step = nperseg - noverlap
    ext = nperseg // 2
    if boundary is not None:
        x = _BOUNDARY_EXT[boundary](x, ext)
        y = None if y is None else _BOUNDARY_EXT[boundary](y, ext)
    if padded:
        nadd = (-(_shape(x)[-1] - nperseg) % step) % nperseg
        x = _pad_last(x, 0, nadd)
        y = None if y is None else _pad_last(y, 0, nadd)

    complex_in = dtype.kind == "c" or (y is not None and np.dtype(lax._dtype(y)).kind == "c")
    sides = "onesided" if return_onesided and not complex_in else "twosided"

    if callable(detrend_type):
        detrend_fn = detrend_type
    elif detrend_type:
        detrend_fn = lambda d: detrend(d, type=detrend_type, axis=-1)  # noqa: E731
    else:
        detrend_fn = lambda d: d  # noqa: E731

    def segments(v):
        n = _shape(v)[-1]
        starts = np.arange(0, n - nperseg + 1, step)
        seg = v[..., starts[:, None] + np.arange(nperseg)]  # (..., nseg, nperseg)
        seg = detrend_fn(seg) * win
        if sides == "twosided":
            return _fft.fft(seg, n=nfft)
        return _fft.rfft(_real(seg) if np.dtype(lax._dtype(seg)).kind == "c" else seg,
                         n=nfft)

    if scaling == "density":
        scale = 1.0 / (fs * float(np.sum(np.asarray(win, np.float64) ** 2)))
    elif scaling == "spectrum":
        scale = 1.0 / float(np.sum(np.asarray(win, np.float64))) ** 2
    else:
        raise ValueError(f"{fname}: scaling must be 'density' or 'spectrum', got {scaling!r}")
    if mode == "stft":
        scale = float(np.sqrt(scale))
    result = segments(x)
    if y is not None:
        result = _conj(result) * segments(y)
    elif mode == "psd":
        result = _conj(result) * result
    result = result * np.asarray(scale, lax._dtype(result))
    if sides == "onesided" and mode == "psd":
        end = None if nfft % 2 else -1
        result = result.at[..., 1:end].mul(2)
    freqs = (_fft.fftfreq if sides == "twosided" else _fft.rfftfreq)(nfft, 1 / fs,
                                                                      dtype=real_dtype)
    times = np.arange(nperseg / 2, _shape(x)[-1] - nperseg / 2 + 1, step) / fs
    if boundary is not None:
        times = times - (nperseg / 2) / fs
    if y is None and mode != "stft":
        result = _real(result)
    result = lnp.moveaxis(result, -1, axis)  # frequencies to `axis`, segments last
    return freqs, _wrap_output(np.asarray(times, real_dtype)), _wrap_output(result)


def stft(x, fs=1.0, window="hann", nperseg=256, noverlap=None, nfft=None, detrend=False,
         return_onesided=True, boundary="zeros", padded=True, axis=-1):
    """The short-time Fourier transform (scipy.signal.stft).

    Args:
        x: the signal.
        fs: the sampling frequency.
        window: a window name (`"hann"`; others need scipy) or a 1-d array.
        nperseg: the segment length.
        noverlap: the overlap of consecutive segments (default `nperseg // 2`).
        nfft: the FFT length (default `nperseg`).
        detrend: False, `"constant"`, `"linear"` or a function of each segment.
        return_onesided: the non-negative frequencies only (real input).
        boundary: how to extend the signal at both ends: `"zeros"`, `"even"`, `"odd"`,
            `"constant"` or None.
        padded: zero-pad the end so the last segment is whole.
        axis: the time axis.

    Returns:
        `(f, t, Zxx)`: frequencies, segment times, and the transform, with frequencies on
        `axis` and segments last.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy import signal
        >>> f, t, Z = signal.stft(fnp.ones(16), nperseg=8)
        >>> Z.shape
        (5, 5)
    """
    empty = _empty_spectral(x, None, axis, True)
    if empty is not None:
        return empty
    return _spectral("stft", x, None, fs, window, nperseg, noverlap, nfft, detrend,
                     return_onesided, "spectrum", axis, "stft", boundary, padded)


def _overlap_add(frames, step):
    """Sum frames `(..., nseg, n)` placed `step` apart: `(..., n + (nseg - 1) * step)`.

    Each frame is cut into `k = ceil(n / step)` blocks of `step` samples; block `j` of
    frame `i` lands on block `i + j` of the output, so the output is `k` shifted sums."""
    nseg, n = _shape(frames)[-2:]
    k = -(-n // step)
    batch = tuple(_shape(frames)[:-2])
    blocks = lnp.reshape(_pad_last(frames, 0, k * step - n), batch + (nseg, k, step))
    widths = [(0, 0)] * len(batch)
    out = None
    for j in range(k):
        shifted = _np_pad(blocks[..., j, :], widths + [(j, k - 1 - j), (0, 0)])
        out = shifted if out is None else out + shifted
    out = lnp.reshape(out, batch + ((nseg + k - 1) * step,))
    return out[..., :n + (nseg - 1) * step]


def istft(Zxx, fs=1.0, window="hann", nperseg=None, noverlap=None, nfft=None,
          input_onesided=True, boundary=True, time_axis=-1, freq_axis=-2):
    """The inverse short-time Fourier transform (scipy.signal.istft): inverse FFTs of
    the segments, windowed and overlap-added, divided by the summed squared window.

    Args:
        Zxx: the STFT, with frequencies on `freq_axis` and segments on `time_axis`.
        fs: the sampling frequency.
        window: a window name (`"hann"`; others need scipy) or a 1-d array, as given to
            `stft`.
        nperseg: the segment length (default: from the number of frequencies).
        noverlap: the overlap of consecutive segments (default `nperseg // 2`).
        nfft: the FFT length (default: from the number of frequencies).
        input_onesided: `Zxx` holds the non-negative frequencies of a real signal (use
            `irfft`; the result is real) or all of them (`ifft`; complex).
        boundary: `stft` extended the signal at both ends: remove `nperseg // 2` points
            from each end.
        time_axis, freq_axis: the axes of `Zxx`.

    Returns:
        `(t, x)`: sample times and the signal, its time axis where `Zxx`'s segments were.

    Example:
        >>> import numpy as np
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy import signal
        >>> x = fnp.sin(fnp.arange(32.0))
        >>> t, y = signal.istft(signal.stft(x, nperseg=8)[2], nperseg=8)
        >>> bool(np.allclose(y, x, atol=1e-5))
        True
    """
    (Z,) = promote_float(asarray_value(Zxx))
    nd = len(_shape(Z))
    if nd < 2:
        raise ValueError(f"istft: Zxx needs at least 2 dimensions, got shape {_shape(Z)}")
    time_axis = lnp.canonicalize_axis(time_axis, nd)
    freq_axis = lnp.canonicalize_axis(freq_axis, nd)
    if time_axis == freq_axis:
        raise ValueError(f"istft: time_axis and freq_axis must differ, both are {time_axis}")
    if np.dtype(lax._dtype(Z)).kind != "c":
        Z = lax.convert_element_type(Z, _complex_dtype(lax._dtype(Z)))
    nseg, nfreq = _shape(Z)[time_axis], _shape(Z)[freq_axis]
    n_default = 2 * (nfreq - 1) if input_onesided else nfreq
    nperseg = n_default if nperseg is None else operator.index(nperseg)
    if nperseg < 1:
        raise ValueError(f"istft: nperseg must be a positive integer, got {nperseg}")
    if nfft is None:  # an odd nperseg with a one-sided input: no FFT padding
        nfft = nperseg if input_onesided and nperseg == n_default + 1 else n_default
    nfft = operator.index(nfft)
    if nfft < nperseg:
        raise ValueError(f"istft: nfft ({nfft}) must be at least nperseg ({nperseg})")
    noverlap = nperseg // 2 if noverlap is None else operator.index(noverlap)
    if noverlap >= nperseg:
        raise ValueError(f"istft: noverlap ({noverlap}) must be less than nperseg "
                         f"({nperseg})")
    step = nperseg - noverlap
    outer = [d for d in range(nd) if d not in (time_axis, freq_axis)]
    Z = lax.transpose(Z, tuple(outer) + (time_axis, freq_axis))  # (..., segments, freqs)
    frames = (_fft.irfft if input_onesided else _fft.ifft)(Z, n=nfft, axis=-1)
    frames = frames[..., :nperseg]
    real_dtype = np.finfo(lax._dtype(frames)).dtype
    win, _ = _triage_window("istft", window, nperseg, nperseg, real_dtype)
    win_np = np.asarray(win, np.float64)
    # undo stft's 'spectrum' scaling (1 / sum(win)), window again, and overlap-add
    frames = frames * (asarray_value(win) * np.asarray(win_np.sum(), real_dtype)).astype(
        lax._dtype(frames))
    x = _overlap_add(frames, step)
    norm = np.zeros(nperseg + (nseg - 1) * step)
    for i in range(nseg):
        norm[i * step:i * step + nperseg] += win_np ** 2
    if boundary:
        cut = nperseg // 2
        x = x[..., cut:_shape(x)[-1] - cut]
        norm = norm[cut:len(norm) - cut]
    x = x / np.where(norm > 1e-10, norm, 1.0).astype(real_dtype)
    if len(_shape(x)) > 1 and time_axis != nd - 1:
        x = lnp.moveaxis(x, -1, time_axis - (freq_axis < time_axis))
    times = np.arange(_shape(x)[0], dtype=real_dtype) / np.asarray(fs, real_dtype)
    return _wrap_output(times), x


def csd(x, y, fs=1.0, window="hann", nperseg=None, noverlap=None, nfft=None,
        detrend="constant", return_onesided=True, scaling="density", axis=-1, average="mean"):
    """The cross power spectral density of `x` and `y` by Welch's method
    (scipy.signal.csd): averaged `conj(X) * Y` over overlapping windowed segments.

    Args:
        x, y: the signals (`y=None`: the power spectral density of `x`).
        fs, window, nperseg, noverlap, nfft, detrend, return_onesided, axis: as in
            `stft` (here `nperseg` defaults to 256 and `detrend` to `"constant"`).
        scaling: `"density"` (V**2/Hz) or `"spectrum"` (V**2).
        average: `"mean"` or `"median"` over the segments.

    Returns:
        `(f, Pxy)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy import signal
        >>> f, p = signal.csd(fnp.ones(32), fnp.ones(32), nperseg=8)
        >>> p.shape, p.dtype
        ((5,), dtype('complex64'))
    """
    empty = _empty_spectral(x, y, axis, y is not None)
    if empty is not None:
        return empty[0], empty[2]
    freqs, _, pxy = _spectral("csd", x, y, fs, window, 256 if nperseg is None else nperseg,
                              noverlap, nfft, detrend, return_onesided, scaling, axis, "psd")
    if y is not None and np.dtype(pxy.dtype).kind != "c":
        pxy = lax.convert_element_type(pxy, _complex_dtype(pxy.dtype))
    if len(_shape(pxy)) >= 2 and _shape(pxy)[-1] > 0:
        if average == "median":
            from nanofn.numpy._reductions import median
            nseg = _shape(pxy)[-1]
            ii = np.arange(1, (nseg - 1) // 2 + 1)
            bias = 1 + np.sum(1.0 / (ii + ii + 1) - 1.0 / (ii + ii))  # scipy's _median_bias
            if np.dtype(pxy.dtype).kind == "c":
                im_part = _real(lax._mul(pxy, np.asarray(-1j, pxy.dtype)))
                re, im = median(_real(pxy), axis=-1), median(im_part, axis=-1)
                pxy = lax.convert_element_type(re, pxy.dtype) + \
                    lax.convert_element_type(im, pxy.dtype) * np.asarray(1j, pxy.dtype)
            else:
                pxy = median(pxy, axis=-1)
            pxy = pxy / np.asarray(bias, pxy.dtype)
        elif average == "mean":
            pxy = lnp.mean(pxy, axis=-1)
        else:
            raise ValueError(f"csd: average must be 'median' or 'mean', got {average!r}")
    return freqs, _wrap_output(pxy)


def welch(x, fs=1.0, window="hann", nperseg=None, noverlap=None, nfft=None,
          detrend="constant", return_onesided=True, scaling="density", axis=-1,
          average="mean"):
    """The power spectral density by Welch's method (scipy.signal.welch).

    Args: as in `csd`, for one signal.

    Returns:
        `(f, Pxx)`, `Pxx` real.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy import signal
        >>> f, p = signal.welch(fnp.sin(fnp.arange(64.0)), nperseg=16)
        >>> f.shape, p.shape
        ((9,), (9,))
    """
    return csd(x, None, fs=fs, window=window, nperseg=nperseg, noverlap=noverlap, nfft=nfft,
               detrend=detrend, return_onesided=return_onesided, scaling=scaling, axis=axis,
               average=average)
