"""numba kernels for convolution and pooling, each next to its plain numpy reference.

The primitives of `nanofn/ops/_conv.py` call the dispatchers at the bottom of each section
(`patches`, `patches_transpose`, `max_pool`, `max_pool_scatter`, `max_pool_gather`,
`sum_pool`, `sum_pool_transpose`). A dispatcher runs the numba kernel when kernels are
enabled (`nanofn._kernels.enabled()`), the dtype is float32 or float64 and the geometry is
one the kernel covers; otherwise it runs the numpy reference, which handles every case.
Tests compare the two on odd shapes.

Geometry shared by all kernels: for one spatial axis, a table `tab[o, k]` gives the input
index that output position `o` reads at window offset `k`, or -1 where it reads padding or
a hole of the input dilation. With the tables the kernels are plain loops that never index
outside their arrays, whatever the strides, padding (negative pads crop), and dilations.

* im2col (`patches`): `(N, C, H, W)` -> `(N, OH, OW, KH, KW, C)`; col2im
  (`patches_transpose`) adds the windows back. 1-d convolutions use the same kernels
  with a unit H axis.
* Pooling works on a 5-d view `(B, H, M, W, C)` of the operand: the (at most two) axes
  that carry a window, stride, padding or base dilation are H and W, the axes before,
  between and after them are merged into B, M and C. Max pooling sends each window's
  gradient to the window's first maximum (a NaN counts as a maximum, as `np.argmax`
  decides), the element `jax.lax` routes it to; padding reads as -inf and never gets one.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nanofn._kernels import enabled, kernel

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# ------------------------------------------------------------------------ geometry


def out_size(size, k, stride, lo, hi, lhs_dil, rhs_dil):
    """Number of windows along one axis (0 when the window does not fit)."""
    dilated_in = (size - 1) * lhs_dil + 1 if size else 0
    dilated_k = (k - 1) * rhs_dil + 1
    padded = dilated_in + lo + hi
    return (padded - dilated_k) // stride + 1 if padded >= dilated_k else 0


def patches_shape(x_shape, window, strides, padding, lhs_dilation, rhs_dilation):
    """`(N, *out_spatial, *window, C)` for an `(N, C, *spatial)` input."""
    n, c, *spatial = x_shape
    out = [out_size(s, k, st, lo, hi, ld, rd) for s, k, st, (lo, hi), ld, rd in
           zip(spatial, window, strides, padding, lhs_dilation, rhs_dilation)]
    return (n, *out, *window, c)


def index_table(size, n_out, k, stride, lo, lhs_dil, rhs_dil):
    """`tab[o, j]`: the input index window `o` reads at offset `j`, or -1 (padding/hole)."""
    pos = (np.arange(n_out, dtype=np.int64)[:, None] * stride
           + np.arange(k, dtype=np.int64)[None, :] * rhs_dil - lo)
    ok = (pos >= 0) & (pos <= (size - 1) * lhs_dil) & (pos % lhs_dil == 0)
    return np.where(ok, pos // lhs_dil, -1).astype(np.int64)


def _dilate_and_pad(x, padding, lhs_dilation, pad_value):
    """Insert `lhs_dilation - 1` values between elements, then pad (negative pads crop)."""
    if any(d > 1 for d in lhs_dilation):
        shape = x.shape[:2] + tuple((s - 1) * d + 1 if s else 0
                                    for s, d in zip(x.shape[2:], lhs_dilation))
        dil = np.full(shape, pad_value, x.dtype)
        dil[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in lhs_dilation)] = x
        x = dil
    pos = [(max(lo, 0), max(hi, 0)) for lo, hi in padding]
    if any(p != (0, 0) for p in pos):
        x = np.pad(x, [(0, 0), (0, 0)] + pos, constant_values=pad_value)
    if any(lo < 0 or hi < 0 for lo, hi in padding):
        x = x[(slice(None), slice(None)) + tuple(
            slice(max(-lo, 0), x.shape[2 + i] - max(-hi, 0)) for i, (lo, hi) in enumerate(padding))]
    return x


def _use_kernel(*arrays):
    return enabled() and all(a.dtype in _KERNEL_DTYPES for a in arrays)


# ------------------------------------------------------------------------ im2col


def patches_reference(x, window, strides, padding, lhs_dilation, rhs_dilation, pad_value):
    """numpy im2col: `(N, C, *S)` -> `(N, *O, *window, C)` (any number of spatial axes)."""
    nsp = len(window)
    out_shape = patches_shape(x.shape, window, strides, padding, lhs_dilation, rhs_dilation)
    if 0 in out_shape:
        return np.zeros(out_shape, x.dtype)
    xp = _dilate_and_pad(x, padding, lhs_dilation, pad_value)
    extent = tuple((k - 1) * d + 1 for k, d in zip(window, rhs_dilation))
    win = sliding_window_view(xp, extent, axis=tuple(range(2, 2 + nsp)))
    # win: (N, C, *full_out, *extent): strides on the output axes, dilation on the window
    idx = (slice(None), slice(None)) + tuple(
        slice(None, o * s, s) for o, s in zip(out_shape[1:1 + nsp], strides)) + tuple(
        slice(None, None, d) for d in rhs_dilation)
    perm = (0,) + tuple(range(2, 2 + 2 * nsp)) + (1,)
    return np.ascontiguousarray(np.transpose(win[idx], perm))


def _padded_channels_last(x, padding, lhs_dilation, pad_value):
    """`(N, C, H, W)` -> an `(N, H', W', C)` buffer holding the dilated input with its
    positive padding (holes and pads read `pad_value`), and the offsets at which window 0
    starts in it (a negative pad crops: the windows start past the cropped part)."""
    n, c, h, w = x.shape
    dil = [(s - 1) * d + 1 for s, d in zip((h, w), lhs_dilation)]
    lo = [max(p[0], 0) for p in padding]
    hi = [max(p[1], 0) for p in padding]
    xt = x.transpose(0, 2, 3, 1)
    if lo == hi == [0, 0] and tuple(lhs_dilation) == (1, 1):
        buf = np.ascontiguousarray(xt)
    else:
        buf = np.full((n, dil[0] + lo[0] + hi[0], dil[1] + lo[1] + hi[1], c), pad_value,
                      x.dtype)
        buf[:, lo[0]:lo[0] + dil[0]:lhs_dilation[0], lo[1]:lo[1] + dil[1]:lhs_dilation[1]] = xt
    return buf, (max(-padding[0][0], 0), max(-padding[1][0], 0)), lo, dil


@kernel
def _im2col_kernel(xp, oh0, ow0, sh, sw, dh, dw, out):
    # xp: (N, H', W', C) padded, dilated, contiguous; out: (N, OH, OW, KH, KW, C)
    n_, oh_, ow_, kh_, kw_, c_ = out.shape
    for n in range(n_):
        for oh in range(oh_):
            for ow in range(ow_):
                for kh in range(kh_):
                    r = oh0 + oh * sh + kh * dh
                    for kw in range(kw_):
                        q = ow0 + ow * sw + kw * dw
                        for c in range(c_):
                            out[n, oh, ow, kh, kw, c] = xp[n, r, q, c]


@kernel
def _im2col_few_channels_kernel(xp, oh0, ow0, sh, sw, dh, dw, out):
    # `_im2col_kernel` with the output column as the innermost loop: with one or two
    # channels the channel loop is too short to pay for itself, a row of windows is not
    n_, oh_, ow_, kh_, kw_, c_ = out.shape
    for n in range(n_):
        for oh in range(oh_):
            for kh in range(kh_):
                r = oh0 + oh * sh + kh * dh
                for kw in range(kw_):
                    q0 = ow0 + kw * dw
                    for c in range(c_):
                        for ow in range(ow_):
                            out[n, oh, ow, kh, kw, c] = xp[n, r, q0 + ow * sw, c]


FEW_CHANNELS = 2  # up to this many channels, im2col runs `_im2col_few_channels_kernel`


def _as_2d(shape, window, strides, padding, lhs_dilation, rhs_dilation):
    """Give a 1-d geometry a unit leading spatial axis (so the 2-d kernels serve it)."""
    if len(window) == 2:
        return shape, window, strides, padding, lhs_dilation, rhs_dilation
    return ((shape[0], shape[1], 1, shape[2]), (1,) + tuple(window), (1,) + tuple(strides),
            ((0, 0),) + tuple(padding), (1,) + tuple(lhs_dilation), (1,) + tuple(rhs_dilation))


def _into(result, out):
    """`result` copied into `out` (when given), or `result` itself."""
    if out is None:
        return result
    np.copyto(out, result)
    return out


def patches(x, window, strides, padding, lhs_dilation, rhs_dilation, pad_value, out=None):
    """im2col: the numba kernel for 1-d and 2-d float inputs, else `patches_reference`.

    With `out` (a C-contiguous array of the result's shape and dtype), the result is
    written into it and `out` returned.
    """
    out_shape = patches_shape(x.shape, window, strides, padding, lhs_dilation, rhs_dilation)
    if len(window) > 2 or not _use_kernel(x) or 0 in out_shape:
        return _into(patches_reference(x, window, strides, padding, lhs_dilation,
                                       rhs_dilation, pad_value), out)
    shape, window, strides, padding, lhs_dilation, rhs_dilation = _as_2d(
        x.shape, window, strides, padding, lhs_dilation, rhs_dilation)
    xp, (oh0, ow0), _, _ = _padded_channels_last(x.reshape(shape), padding, lhs_dilation,
                                                 x.dtype.type(pad_value))
    shape2 = patches_shape(shape, window, strides, padding, lhs_dilation, rhs_dilation)
    res = np.empty(shape2, x.dtype) if out is None else out.reshape(shape2)
    run = _im2col_few_channels_kernel if shape[1] <= FEW_CHANNELS else _im2col_kernel
    run(xp, oh0, ow0, strides[0], strides[1], rhs_dilation[0], rhs_dilation[1], res)
    return res.reshape(out_shape) if out is None else out


# ------------------------------------------------------------------------ col2im


def patches_transpose_reference(ct, x_shape, window, strides, padding, lhs_dilation,
                                rhs_dilation):
    """numpy col2im: add every window of `ct` (`(N, *O, *window, C)`) back into `x_shape`."""
    nsp = len(window)
    n, c = x_shape[:2]
    dil = tuple((s - 1) * d + 1 if s else 0 for s, d in zip(x_shape[2:], lhs_dilation))
    pshape = tuple(s + lo + hi for s, (lo, hi) in zip(dil, padding))
    acc = np.zeros((n, c) + tuple(max(p, 0) for p in pshape), ct.dtype)
    out = ct.shape[1:1 + nsp]
    ct_t = np.moveaxis(ct, -1, 1)  # (N, C, *O, *K)
    for k in itertools.product(*(range(w) for w in window)):
        target = (slice(None), slice(None)) + tuple(
            slice(ki * rd, ki * rd + (o - 1) * s + 1, s) if o else slice(0, 0)
            for ki, rd, o, s in zip(k, rhs_dilation, out, strides))
        acc[target] += ct_t[(Ellipsis,) + k]
    # undo the padding (a negative pad was a crop: put zeros back), then the dilation
    sl = tuple(slice(max(lo, 0), max(lo, 0) + d) for (lo, hi), d in zip(padding, dil))
    if any(lo < 0 or hi < 0 for lo, hi in padding):
        acc = np.pad(acc, [(0, 0), (0, 0)] + [(max(-lo, 0), max(-hi, 0)) for lo, hi in padding])
    acc = acc[(slice(None), slice(None)) + sl]
    if any(d > 1 for d in lhs_dilation):
        acc = acc[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in lhs_dilation)]
    return np.ascontiguousarray(acc)


@kernel
def _col2im_kernel(ct, htab, wtab, acc):
    # ct: (N, OH, OW, KH, KW, C) any strides; acc: (N, H, W, C) zeros on entry. The index
    # tables say where each window offset lands (-1: padding or a dilation hole, dropped).
    n_, oh_, ow_, kh_, kw_, c_ = ct.shape
    for n in range(n_):
        for oh in range(oh_):
            for ow in range(ow_):
                for kh in range(kh_):
                    r = htab[oh, kh]
                    if r >= 0:
                        for kw in range(kw_):
                            q = wtab[ow, kw]
                            if q >= 0:
                                for c in range(c_):
                                    acc[n, r, q, c] += ct[n, oh, ow, kh, kw, c]


def patches_transpose(ct, x_shape, window, strides, padding, lhs_dilation, rhs_dilation,
                      out=None):
    """col2im: the numba kernel for 1-d and 2-d float inputs, else the reference.

    The kernel's result is channels-last in memory (an `(N, C, *S)` view of an
    `(N, *S, C)` array), the order in which it accumulates fastest, and the order an
    NHWC network's gradient wants next. With `out` (a C-contiguous `x_shape` array of the
    result's dtype) the result lives in `out`'s memory: the kernel returns such a view of
    it, the reference path `out` itself.
    """
    if len(window) > 2 or not _use_kernel(ct) or 0 in ct.shape or 0 in x_shape:
        return _into(patches_transpose_reference(ct, x_shape, window, strides, padding,
                                                 lhs_dilation, rhs_dilation), out)
    shape, window, strides, padding, lhs_dilation, rhs_dilation = _as_2d(
        x_shape, window, strides, padding, lhs_dilation, rhs_dilation)
    n, c, h, w = shape
    shape2 = patches_shape(shape, window, strides, padding, lhs_dilation, rhs_dilation)
    htab = index_table(h, shape2[1], window[0], strides[0], padding[0][0], lhs_dilation[0],
                       rhs_dilation[0])
    wtab = index_table(w, shape2[2], window[1], strides[1], padding[1][0], lhs_dilation[1],
                       rhs_dilation[1])
    if out is None:
        acc = np.zeros((n, h, w, c), ct.dtype)
    else:
        acc = out.reshape(-1).reshape(n, h, w, c)  # out's memory, channels last
        acc.fill(0)
    _col2im_kernel(ct.reshape(shape2), htab, wtab, acc)
    acc = acc.transpose(0, 3, 1, 2)
    return acc if len(x_shape) == 4 else acc[:, :, 0, :]


# ------------------------------------------------------------------------ pooling geometry
def pool_out_shape(shape, window, strides, padding, base_dilation, window_dilation):
    """The shape `reduce_window` gives an operand of `shape` (one window entry per axis)."""
    return tuple(out_size(s, k, st, lo, hi, bd, wd) for s, k, st, (lo, hi), bd, wd in
                 zip(shape, window, strides, padding, base_dilation, window_dilation))


def _pool_view(shape, window, strides, padding, base_dilation, window_dilation):
    """The 5-d view `(B, H, M, W, C)` and its two index tables, or None when more than two
    axes carry a window (the reference handles those)."""
    active = [a for a in range(len(shape))
              if window[a] != 1 or strides[a] != 1 or tuple(padding[a]) != (0, 0)
              or base_dilation[a] != 1]
    if len(active) > 2:
        return None
    out = pool_out_shape(shape, window, strides, padding, base_dilation, window_dilation)
    prod = math.prod
    if len(active) == 2:
        a1, a2 = active
        b, m, c = prod(shape[:a1]), prod(shape[a1 + 1:a2]), prod(shape[a2 + 1:])
    elif len(active) == 1:  # the windowed axis is W, H is a unit axis
        a2 = active[0]
        b, m, c = prod(shape[:a2]), 1, prod(shape[a2 + 1:])
    else:
        b, m, c = 1, 1, prod(shape)
    sizes, outs, tabs = [1, 1], [1, 1], [np.zeros((1, 1), np.int64)] * 2
    for slot, a in zip((0, 1)[2 - len(active):], active):
        sizes[slot], outs[slot] = shape[a], out[a]
        tabs[slot] = index_table(shape[a], out[a], window[a], strides[a], padding[a][0],
                                 base_dilation[a], window_dilation[a])
    in5 = (b, sizes[0], m, sizes[1], c)
    out5 = (b, outs[0], m, outs[1], c)
    return in5, out5, tabs[0], tabs[1]


def _pool_patches(x, window, strides, padding, base_dilation, window_dilation, pad_value):
    """`(*out_shape, prod(window))` windows of `x` (padding and holes read `pad_value`)."""
    nd = x.ndim
    p = patches_reference(x.reshape((1, 1) + x.shape), window, strides, padding,
                          base_dilation, window_dilation, pad_value)
    return p.reshape(p.shape[1:1 + nd] + (math.prod(window),))


def highest(dtype):
    """The largest value of `dtype` (inf for floats)."""
    dtype = np.dtype(dtype)
    return np.inf if dtype.kind == "f" else (np.iinfo(dtype).max if dtype.kind in "iu" else True)


def lowest(dtype):
    """The smallest value of `dtype` (-inf for floats): what max pooling pads with."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind in "iu":
        return np.iinfo(dtype).min
    if dtype.kind == "b":
        return False
    raise TypeError(f"max pooling does not support dtype {dtype.name}")


# ------------------------------------------------------------------------ max pooling


def max_pool_reference(x, window, strides, padding, base_dilation, window_dilation):
    """numpy max of every window (padding and dilation holes read as the lowest value)."""
    p = _pool_patches(x, window, strides, padding, base_dilation, window_dilation,
                      lowest(x.dtype))
    return p.max(axis=-1)


def _argmax_reference(x, window, strides, padding, base_dilation, window_dilation):
    """Flat index (in the padded, dilated operand's windows) of each window's first max."""
    p = _pool_patches(x, window, strides, padding, base_dilation, window_dilation,
                      lowest(x.dtype))
    return p, np.argmax(p, axis=-1)


def max_pool_scatter_reference(ct, x, window, strides, padding, base_dilation,
                               window_dilation):
    """numpy: add each window's cotangent to the window's first maximum of `x`."""
    out = pool_out_shape(x.shape, window, strides, padding, base_dilation, window_dilation)
    if 0 in out or x.size == 0:
        return np.zeros(x.shape, ct.dtype)
    p, arg = _argmax_reference(x, window, strides, padding, base_dilation, window_dilation)
    onehot = np.zeros(p.shape, ct.dtype)
    np.put_along_axis(onehot, arg[..., None], ct[..., None], axis=-1)
    cols = onehot.reshape((1,) + out + tuple(window) + (1,))
    g = patches_transpose_reference(cols, (1, 1) + x.shape, window, strides, padding,
                                    base_dilation, window_dilation)
    return g.reshape(x.shape)


def max_pool_gather_reference(t, x, window, strides, padding, base_dilation, window_dilation):
    """numpy: the value of `t` at each window's first maximum of `x` (0 for padding)."""
    out = pool_out_shape(x.shape, window, strides, padding, base_dilation, window_dilation)
    if 0 in out or x.size == 0:
        return np.zeros(out, t.dtype)
    _, arg = _argmax_reference(x, window, strides, padding, base_dilation, window_dilation)
    pt = _pool_patches(t, window, strides, padding, base_dilation, window_dilation, 0)
    return np.take_along_axis(pt, arg[..., None], axis=-1)[..., 0]


@kernel
def _max_pool_kernel(x, htab, wtab, out):
    # x: (B, H, M, W, C); out: (B, OH, M, OW, C); padding reads -inf; NaN wins, first max wins
    b_, m_, c_ = x.shape[0], x.shape[2], x.shape[4]
    oh_, kh_ = htab.shape
    ow_, kw_ = wtab.shape
    neg = -np.inf
    for b in range(b_):
        for oh in range(oh_):
            for m in range(m_):
                for ow in range(ow_):
                    first = True
                    for kh in range(kh_):
                        ih = htab[oh, kh]
                        for kw in range(kw_):
                            iw = wtab[ow, kw]
                            if ih < 0 or iw < 0:
                                if first:
                                    for c in range(c_):
                                        out[b, oh, m, ow, c] = neg
                            elif first:
                                for c in range(c_):
                                    out[b, oh, m, ow, c] = x[b, ih, m, iw, c]
                            else:
                                for c in range(c_):  # branch-free, so it vectorises
                                    v = x[b, ih, m, iw, c]
                                    best = out[b, oh, m, ow, c]
                                    take = (v > best) | ((v != v) & (best == best))
                                    out[b, oh, m, ow, c] = v if take else best
                            first = False


@kernel
def _window_argmax(x, b, oh, m, ow, htab, wtab, best, argh, argw):
    # For every channel c, the first maximum of the window (oh, ow) of x[b, :, m, :, c]:
    # its value in best[c] and position in (argh[c], argw[c]); argh[c] = -1 when it is
    # padding (which reads -inf). A NaN counts as the maximum, as in `_max_pool_kernel`.
    c_ = x.shape[4]
    kh_ = htab.shape[1]
    kw_ = wtab.shape[1]
    first = True
    for kh in range(kh_):
        ih = htab[oh, kh]
        for kw in range(kw_):
            iw = wtab[ow, kw]
            if ih < 0 or iw < 0:
                if first:
                    for c in range(c_):
                        best[c] = -np.inf
                        argh[c] = -1
            elif first:
                for c in range(c_):
                    best[c] = x[b, ih, m, iw, c]
                    argh[c] = ih
                    argw[c] = iw
            else:
                for c in range(c_):  # branch-free, so it vectorises
                    v = x[b, ih, m, iw, c]
                    bc = best[c]
                    take = (v > bc) | ((v != v) & (bc == bc))
                    best[c] = v if take else bc
                    argh[c] = ih if take else argh[c]
                    argw[c] = iw if take else argw[c]
            first = False


@kernel
def _max_pool_scatter_kernel(x, ct, htab, wtab, best, argh, argw, gx):
    # gx: (B, H, M, W, C) zeros on entry; ct: (B, OH, M, OW, C); best, argh, argw: (C,)
    # scratch. Per window: find the first maximum of x (as `_max_pool_kernel` does), then
    # add the window's cotangent there.
    b_, m_, c_ = x.shape[0], x.shape[2], x.shape[4]
    oh_ = htab.shape[0]
    ow_ = wtab.shape[0]
    for b in range(b_):
        for oh in range(oh_):
            for m in range(m_):
                for ow in range(ow_):
                    _window_argmax(x, b, oh, m, ow, htab, wtab, best, argh, argw)
                    for c in range(c_):
                        if argh[c] >= 0:
                            gx[b, argh[c], m, argw[c], c] += ct[b, oh, m, ow, c]


@kernel
def _max_pool_scatter_disjoint_kernel(x, ct, htab, wtab, best, arg, gx):
    # Windows that share no element (`disjoint_windows`): every element gets one write,
    # so gx needs no zeroing where the windows cover it and no scattered adds. Per window:
    # the first maximum's offset in the window (as `_max_pool_kernel` decides; padding
    # reads -inf), then ct written there and 0 at the window's other elements, all
    # branch-free over the channels. best: (C,) scratch, arg: (C,) int32 scratch.
    b_, m_, c_ = x.shape[0], x.shape[2], x.shape[4]
    oh_, kh_ = htab.shape
    ow_, kw_ = wtab.shape
    neg = -np.inf
    for b in range(b_):
        for oh in range(oh_):
            for m in range(m_):
                for ow in range(ow_):
                    k = 0
                    for kh in range(kh_):
                        ih = htab[oh, kh]
                        for kw in range(kw_):
                            iw = wtab[ow, kw]
                            if ih < 0 or iw < 0:
                                if k == 0:
                                    for c in range(c_):
                                        best[c] = neg
                                        arg[c] = 0
                            elif k == 0:
                                for c in range(c_):
                                    best[c] = x[b, ih, m, iw, c]
                                    arg[c] = 0
                            else:
                                for c in range(c_):
                                    v = x[b, ih, m, iw, c]
                                    bc = best[c]
                                    take = (v > bc) | ((v != v) & (bc == bc))
                                    best[c] = v if take else bc
                                    arg[c] = k if take else arg[c]
                            k += 1
                    k = 0
                    for kh in range(kh_):
                        ih = htab[oh, kh]
                        for kw in range(kw_):
                            iw = wtab[ow, kw]
                            if ih >= 0 and iw >= 0:
                                for c in range(c_):
                                    gx[b, ih, m, iw, c] = ct[b, oh, m, ow, c] if arg[c] == k else 0
                            k += 1


@kernel
def _max_pool_gather_kernel(x, t, htab, wtab, best, argh, argw, out):
    # out: (B, OH, M, OW, C) = t at each window's first maximum of x (0 if it is padding)
    b_, m_, c_ = x.shape[0], x.shape[2], x.shape[4]
    oh_ = htab.shape[0]
    ow_ = wtab.shape[0]
    for b in range(b_):
        for oh in range(oh_):
            for m in range(m_):
                for ow in range(ow_):
                    _window_argmax(x, b, oh, m, ow, htab, wtab, best, argh, argw)
                    for c in range(c_):
                        out[b, oh, m, ow, c] = t[b, argh[c], m, argw[c], c] if argh[c] >= 0 else 0


def _pool_setup(x, geo):
    view = _pool_view(x.shape, *geo)
    if view is None or x.dtype not in _KERNEL_DTYPES or not enabled():
        return None
    out = pool_out_shape(x.shape, *geo)
    if 0 in out or x.size == 0:
        return None
    return view, out


def _scratch(c, dtype):
    return np.empty(c, dtype), np.empty(c, np.int64), np.empty(c, np.int64)


def _result(shape5, dtype, out, zero=False):
    """The 5-d array a pooling kernel writes: a new one, or `out` seen in 5-d."""
    if out is None:
        return (np.zeros if zero else np.empty)(shape5, dtype)
    res = out.reshape(shape5)
    if zero:
        res.fill(0)
    return res


def max_pool(x, window, strides, padding, base_dilation, window_dilation, out=None):
    """Max of every window: the numba kernel where it applies, else the reference.

    Like every pooling dispatcher here, with `out` (a C-contiguous array of the result's
    shape and dtype) the result is written into it and `out` returned.
    """
    geo = (window, strides, padding, base_dilation, window_dilation)
    setup = _pool_setup(x, geo)
    if setup is None:
        return _into(max_pool_reference(x, *geo), out)
    (in5, out5, htab, wtab), shape = setup
    y = _result(out5, x.dtype, out)
    _max_pool_kernel(np.ascontiguousarray(x).reshape(in5), htab, wtab, y)
    return y.reshape(shape) if out is None else out


def disjoint_windows(size, tab):
    """`(disjoint, covering)` for one axis's index table: no input element is read by two
    windows (or twice by one), and every element is read by some window."""
    used = tab[tab >= 0]
    counts = np.bincount(used, minlength=size)
    return bool((counts <= 1).all()), bool((counts >= 1).all())


def max_pool_scatter(ct, x, window, strides, padding, base_dilation, window_dilation,
                     out=None):
    """Cotangent of max pooling: each window's `ct` added at its first maximum of `x`."""
    geo = (window, strides, padding, base_dilation, window_dilation)
    setup = _pool_setup(x, geo)
    if setup is None or ct.dtype not in _KERNEL_DTYPES:
        return _into(max_pool_scatter_reference(ct, x, *geo), out)
    (in5, out5, htab, wtab), _ = setup
    (dh, ch), (dw, cw) = disjoint_windows(in5[1], htab), disjoint_windows(in5[3], wtab)
    if dh and dw and ct.dtype == x.dtype:
        # a window's elements each get ct or 0; those no window reads need zeros first
        gx = _result(in5, ct.dtype, out, zero=not (ch and cw))
        _max_pool_scatter_disjoint_kernel(np.ascontiguousarray(x).reshape(in5),
                                          np.ascontiguousarray(ct).reshape(out5), htab, wtab,
                                          np.empty(in5[4], x.dtype), np.empty(in5[4], np.int32),
                                          gx)
        return gx.reshape(x.shape) if out is None else out
    gx = _result(in5, ct.dtype, out, zero=True)
    _max_pool_scatter_kernel(np.ascontiguousarray(x).reshape(in5),
                             np.ascontiguousarray(ct).reshape(out5), htab, wtab,
                             *_scratch(in5[4], x.dtype), gx)
    return gx.reshape(x.shape) if out is None else out


def max_pool_gather(t, x, window, strides, padding, base_dilation, window_dilation,
                    out=None):
    """Tangent of max pooling: `t` read at each window's first maximum of `x`."""
    geo = (window, strides, padding, base_dilation, window_dilation)
    setup = _pool_setup(x, geo)
    if setup is None or t.dtype not in _KERNEL_DTYPES:
        return _into(max_pool_gather_reference(t, x, *geo), out)
    (in5, out5, htab, wtab), shape = setup
    y = _result(out5, t.dtype, out)
    _max_pool_gather_kernel(np.ascontiguousarray(x).reshape(in5),
                            np.ascontiguousarray(t).reshape(in5), htab, wtab,
                            *_scratch(in5[4], x.dtype), y)
    return y.reshape(shape) if out is None else out


# ------------------------------------------------------------------------ sum pooling


def sum_pool_reference(x, window, strides, padding, base_dilation, window_dilation):
    """numpy sum of every window (padding and dilation holes read 0)."""
    p = _pool_patches(x, window, strides, padding, base_dilation, window_dilation, 0)
    return p.sum(axis=-1, dtype=x.dtype)


def sum_pool_transpose_reference(ct, x_shape, window, strides, padding, base_dilation,
                                 window_dilation):
    """numpy: add each window's cotangent to every element of the window."""
    out = pool_out_shape(x_shape, window, strides, padding, base_dilation, window_dilation)
    cols = np.broadcast_to(ct.reshape((1,) + out + (1,) * len(window) + (1,)),
                           (1,) + out + tuple(window) + (1,))
    g = patches_transpose_reference(cols, (1, 1) + tuple(x_shape), window, strides, padding,
                                    base_dilation, window_dilation)
    return g.reshape(x_shape)


@kernel
def _sum_pool_kernel(x, htab, wtab, out):
    # out: (B, OH, M, OW, C) zeros on entry
    b_, m_, c_ = x.shape[0], x.shape[2], x.shape[4]
    oh_, kh_ = htab.shape
    ow_, kw_ = wtab.shape
    for b in range(b_):
        for oh in range(oh_):
            for m in range(m_):
                for ow in range(ow_):
                    for kh in range(kh_):
                        ih = htab[oh, kh]
                        if ih >= 0:
                            for kw in range(kw_):
                                iw = wtab[ow, kw]
                                if iw >= 0:
                                    for c in range(c_):
                                        out[b, oh, m, ow, c] += x[b, ih, m, iw, c]


@kernel
def _sum_pool_transpose_kernel(ct, htab, wtab, gx):
    # gx: (B, H, M, W, C) zeros on entry; ct: (B, OH, M, OW, C)
    b_, m_, c_ = gx.shape[0], gx.shape[2], gx.shape[4]
    oh_, kh_ = htab.shape
    ow_, kw_ = wtab.shape
    for b in range(b_):
        for oh in range(oh_):
            for m in range(m_):
                for ow in range(ow_):
                    for kh in range(kh_):
                        ih = htab[oh, kh]
                        if ih >= 0:
                            for kw in range(kw_):
                                iw = wtab[ow, kw]
                                if iw >= 0:
                                    for c in range(c_):
                                        gx[b, ih, m, iw, c] += ct[b, oh, m, ow, c]


def sum_pool(x, window, strides, padding, base_dilation, window_dilation, out=None):
    """Sum of every window: the numba kernel where it applies, else the reference."""
    geo = (window, strides, padding, base_dilation, window_dilation)
    setup = _pool_setup(x, geo)
    if setup is None:
        return _into(sum_pool_reference(x, *geo), out)
    (in5, out5, htab, wtab), shape = setup
    y = _result(out5, x.dtype, out, zero=True)
    _sum_pool_kernel(np.ascontiguousarray(x).reshape(in5), htab, wtab, y)
    return y.reshape(shape) if out is None else out


def sum_pool_transpose(ct, x_shape, window, strides, padding, base_dilation, window_dilation,
                       out=None):
    """Transpose of `sum_pool`: each window's `ct` added to all of the window's elements."""
    geo = (window, strides, padding, base_dilation, window_dilation)
    view = _pool_view(x_shape, *geo)
    if (view is None or ct.dtype not in _KERNEL_DTYPES or not enabled() or 0 in ct.shape
            or 0 in x_shape):
        return _into(sum_pool_transpose_reference(ct, x_shape, *geo), out)
    in5, out5, htab, wtab = view
    gx = _result(in5, ct.dtype, out, zero=True)
    _sum_pool_transpose_kernel(np.ascontiguousarray(ct).reshape(out5), htab, wtab, gx)
    return gx.reshape(x_shape) if out is None else out
