"""Convolution and pooling, derived from one linear primitive: `conv_patches`.

`conv_patches` cuts an `(N, C, *spatial)` array into the windows a convolution or a pool
reads ("im2col"): the result is `(N, *out_spatial, C, *window)`. It is linear, and its
transpose, `conv_patches_transpose`, adds every window back where it came from
("col2im"); each is the other's transpose. With them:

* `conv_general_dilated` is patches followed by one `dot_general` with the kernel, so its
  gradients with respect to both the input and the kernel, and its batching, come from
  the rules of `conv_patches` and `dot_general`: no convolution-specific derivative code.
* `reduce_window` (max, min and sum pooling) is patches followed by a reduction over the
  window axes; the gradient of max pooling flows to each window's maximum through
  `reduce_max`'s rule.

The cost is memory: the patches are `prod(window)` times the (strided) input. For the
small images nanofn is meant for, that is the numpy im2col approach BENCHMARKS.md uses as
its reference.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nanofn._core import Primitive, ShapedArray
from nanofn.ops import _base as lax
from nanofn.ops._base import _aval_shape, bdim_to_front

__all__ = ["conv_general_dilated", "conv", "conv_with_general_padding", "conv_transpose",
           "reduce_window", "ConvDimensionNumbers", "conv_dimension_numbers",
           "padtype_to_pads"]


# ------------------------------------------------------------------------ geometry


def _out_size(size, k, stride, lo, hi, lhs_dil, rhs_dil):
    dilated_in = (size - 1) * lhs_dil + 1 if size else 0
    dilated_k = (k - 1) * rhs_dil + 1
    padded = dilated_in + lo + hi
    return max(0, (padded - dilated_k) // stride + 1) if padded >= dilated_k else 0


def _patches_shape(x_shape, window, strides, padding, lhs_dilation, rhs_dilation):
    n, c, *spatial = x_shape
    out = [_out_size(s, k, st, lo, hi, ld, rd) for s, k, st, (lo, hi), ld, rd in
           zip(spatial, window, strides, padding, lhs_dilation, rhs_dilation)]
    return (n, *out, c, *window)


def _dilate_and_pad(x, padding, lhs_dilation, pad_value):
    """Insert `lhs_dilation - 1` values between elements, then pad (negative pads crop)."""
    nsp = len(padding)
    if any(d > 1 for d in lhs_dilation):
        shape = x.shape[:2] + tuple((s - 1) * d + 1 if s else 0
                                    for s, d in zip(x.shape[2:], lhs_dilation))
        dil = np.full(shape, pad_value, x.dtype)
        dil[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in lhs_dilation)] = x
        x = dil
    pos = [(max(lo, 0), max(hi, 0)) for lo, hi in padding]
    if any(p != (0, 0) for p in pos):
        x = np.pad(x, [(0, 0), (0, 0)] + pos, constant_values=pad_value)
    crop = tuple(slice(max(-lo, 0), x.shape[2 + i] - max(-hi, 0))
                 for i, (lo, hi) in enumerate(padding))
    if any(lo < 0 or hi < 0 for lo, hi in padding):
        x = x[(slice(None), slice(None)) + crop]
    assert x.ndim == nsp + 2
    return x


def _check_geometry(name, x_ndim, window, strides, padding, lhs_dilation, rhs_dilation):
    nsp = x_ndim - 2
    for what, v in (("window", window), ("window_strides", strides), ("padding", padding),
                    ("lhs_dilation", lhs_dilation), ("rhs_dilation", rhs_dilation)):
        if len(v) != nsp:
            raise ValueError(f"{name}: {what}={v} must have one entry per spatial dimension "
                             f"({nsp} for an input of rank {x_ndim})")
    if any(s < 1 for s in strides) or any(d < 1 for d in lhs_dilation + rhs_dilation):
        raise ValueError(f"{name}: strides and dilations must be positive, got strides={strides}, "
                         f"lhs_dilation={lhs_dilation}, rhs_dilation={rhs_dilation}")


# ------------------------------------------------------------------------ conv_patches

conv_patches_p = Primitive("conv_patches")


@conv_patches_p.def_impl
def _conv_patches_impl(x, *, window, strides, padding, lhs_dilation, rhs_dilation, pad_value):
    nsp = len(window)
    out_shape = _patches_shape(x.shape, window, strides, padding, lhs_dilation, rhs_dilation)
    if 0 in out_shape:
        return np.zeros(out_shape, x.dtype)
    xp = _dilate_and_pad(x, padding, lhs_dilation, pad_value)
    extent = tuple((k - 1) * d + 1 for k, d in zip(window, rhs_dilation))
    win = sliding_window_view(xp, extent, axis=tuple(range(2, 2 + nsp)))
    # win: (N, C, *full_out, *extent) -> take strides on the output axes, dilation on the window
    idx = (slice(None), slice(None)) + tuple(
        slice(None, o * s, s) for o, s in zip(out_shape[1:1 + nsp], strides)) + tuple(
        slice(None, None, d) for d in rhs_dilation)
    win = win[idx]
    perm = (0,) + tuple(range(2, 2 + nsp)) + (1,) + tuple(range(2 + nsp, 2 + 2 * nsp))
    return np.ascontiguousarray(np.transpose(win, perm))


@conv_patches_p.def_abstract_eval
def _conv_patches_abstract_eval(x, *, window, strides, padding, lhs_dilation, rhs_dilation,
                                pad_value):
    _check_geometry("conv_patches", x.ndim, window, strides, padding, lhs_dilation, rhs_dilation)
    return ShapedArray(_patches_shape(x.shape, window, strides, padding, lhs_dilation,
                                      rhs_dilation), x.dtype)


conv_patches_transpose_p = Primitive("conv_patches_transpose")


@conv_patches_transpose_p.def_impl
def _conv_patches_transpose_impl(ct, *, x_shape, window, strides, padding, lhs_dilation,
                                 rhs_dilation):
    nsp = len(window)
    n, c = x_shape[:2]
    # the padded, dilated input the patches were cut from
    dil = tuple((s - 1) * d + 1 if s else 0 for s, d in zip(x_shape[2:], lhs_dilation))
    pshape = tuple(s + lo + hi for s, (lo, hi) in zip(dil, padding))
    acc = np.zeros((n, c) + tuple(max(p, 0) for p in pshape), ct.dtype)
    out = ct.shape[1:1 + nsp]
    # ct: (N, *O, C, *K) -> (N, C, *O, *K)
    ct_t = np.transpose(ct, (0, 1 + nsp) + tuple(range(1, 1 + nsp)) +
                        tuple(range(2 + nsp, 2 + 2 * nsp)))
    for k in itertools.product(*(range(w) for w in window)):
        target = (slice(None), slice(None)) + tuple(
            slice(ki * rd, ki * rd + (o - 1) * s + 1, s) if o else slice(0, 0)
            for ki, rd, o, s in zip(k, rhs_dilation, out, strides))
        acc[target] += ct_t[(Ellipsis,) + k]
    # undo the padding (a negative pad was a crop: put zeros back)
    lo_hi = [(lo, hi) for lo, hi in padding]
    sl = tuple(slice(max(lo, 0), max(lo, 0) + d) for (lo, hi), d in zip(lo_hi, dil))
    if any(lo < 0 or hi < 0 for lo, hi in lo_hi):
        acc = np.pad(acc, [(0, 0), (0, 0)] + [(max(-lo, 0), max(-hi, 0)) for lo, hi in lo_hi])
    acc = acc[(slice(None), slice(None)) + sl]
    # undo the dilation
    if any(d > 1 for d in lhs_dilation):
        acc = acc[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in lhs_dilation)]
    return np.ascontiguousarray(acc)


conv_patches_transpose_p.abstract_eval = (
    lambda ct, *, x_shape, **params: ShapedArray(x_shape, ct.dtype))


def _patch_params(params):
    return {k: params[k] for k in ("window", "strides", "padding", "lhs_dilation", "rhs_dilation")}


def _conv_patches_jvp(t, x, *, out, pad_value, **params):
    del out, pad_value  # unused: the pad value is a constant, its tangent is zero
    return conv_patches_p.bind(t, pad_value=0.0, **params)


def _conv_patches_vjp(ct, x, *, out, pad_value, **params):
    del out, pad_value  # unused
    return conv_patches_transpose_p.bind(ct, x_shape=tuple(_aval_shape(x)), **params)


conv_patches_p.jvp_terms = [_conv_patches_jvp]
conv_patches_p.vjp = [_conv_patches_vjp]
lax.deflinear(conv_patches_transpose_p,
              lambda ct, y, *, x_shape, **params: conv_patches_p.bind(ct, pad_value=0.0, **params))


def _fold_batch(prim, out_batch_axes):
    """Batching: fold the vmapped axis into the leading N axis, then unfold it."""
    def rule(vals, dims, **params):
        x = bdim_to_front(vals[0], dims[0])
        b, n = _aval_shape(x)[:2]
        x = lax.reshape(x, (b * n,) + tuple(_aval_shape(x)[2:]))
        if "x_shape" in params:
            params = dict(params, x_shape=(b * params["x_shape"][0],) + tuple(params["x_shape"][1:]))
        y = prim.bind(x, **params)
        return lax.reshape(y, (b, n) + tuple(_aval_shape(y)[1:])), 0
    return rule


conv_patches_p.batch = _fold_batch(conv_patches_p, 1)
conv_patches_transpose_p.batch = _fold_batch(conv_patches_transpose_p, 1)


def conv_patches(x, window, strides, padding, lhs_dilation=None, rhs_dilation=None,
                 pad_value=0.0):
    """The windows of an `(N, C, *spatial)` array: `(N, *out_spatial, C, *window)`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn.ops._conv import conv_patches
        >>> conv_patches(fnp.ones((1, 1, 4, 4)), (2, 2), (2, 2), ((0, 0), (0, 0))).shape
        (1, 2, 2, 1, 2, 2)
    """
    nsp = len(window)
    return conv_patches_p.bind(
        x, window=tuple(window), strides=tuple(strides),
        padding=tuple(tuple(p) for p in padding),
        lhs_dilation=tuple(lhs_dilation or (1,) * nsp),
        rhs_dilation=tuple(rhs_dilation or (1,) * nsp), pad_value=float(pad_value))


# ------------------------------------------------------------------------ dimension numbers


class ConvDimensionNumbers(tuple):
    """`(lhs_spec, rhs_spec, out_spec)`: each a tuple of axis indices, batch/feature first.

    lhs_spec = (batch axis, feature axis, *spatial axes); rhs_spec = (out feature axis, in
    feature axis, *spatial axes); out_spec like lhs_spec (JAX's convention).
    """

    def __new__(cls, lhs_spec, rhs_spec, out_spec):
        return super().__new__(cls, (tuple(lhs_spec), tuple(rhs_spec), tuple(out_spec)))

    lhs_spec = property(lambda self: self[0])
    rhs_spec = property(lambda self: self[1])
    out_spec = property(lambda self: self[2])


def conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers):
    """Turn `None`, a `ConvDimensionNumbers`, or strings like `("NHWC", "HWIO", "NHWC")`
    into `ConvDimensionNumbers`."""
    nd = len(lhs_shape)
    if dimension_numbers is None:
        return ConvDimensionNumbers(tuple(range(nd)), tuple(range(nd)), tuple(range(nd)))
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        return dimension_numbers
    lhs, rhs, out = dimension_numbers
    if isinstance(lhs, str):
        if not (len(lhs) == len(rhs) == len(out) == nd):
            raise ValueError(f"conv: dimension_numbers {dimension_numbers} do not match an input "
                             f"of rank {nd}")
        spatial = [ch for ch in rhs if ch not in "IO"]

        def spec(s, first, second):
            return (s.index(first), s.index(second)) + tuple(s.index(ch) for ch in spatial)
        lhs_sp = [ch for ch in lhs if ch not in "NC"]
        if sorted(lhs_sp) != sorted(spatial):
            raise ValueError(f"conv: spatial dimensions of {lhs} and {rhs} do not match")
        return ConvDimensionNumbers(spec(lhs, "N", "C"), spec(rhs, "O", "I"), spec(out, "N", "C"))
    return ConvDimensionNumbers(lhs, rhs, out)


def padtype_to_pads(in_shape, window_shape, window_strides, padding):
    """'SAME' / 'VALID' (or explicit pairs) to a list of `(low, high)` pads per spatial axis."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return tuple((0, 0) for _ in window_shape)
        if mode in ("SAME", "SAME_LOWER"):
            pads = []
            for size, k, s in zip(in_shape, window_shape, window_strides):
                out = -(-size // s)
                total = max((out - 1) * s + k - size, 0)
                lo = total // 2 if mode == "SAME" else -(-total // 2)
                pads.append((lo, total - lo))
            return tuple(pads)
        raise ValueError(f"padding must be 'SAME', 'VALID' or a sequence of (low, high) pairs, "
                         f"got {padding!r}")
    pads = tuple(tuple(int(v) for v in p) for p in padding)
    if len(pads) != len(window_shape) or any(len(p) != 2 for p in pads):
        raise ValueError(f"padding {padding!r} must have one (low, high) pair per spatial axis "
                         f"({len(window_shape)})")
    return pads


# ------------------------------------------------------------------------ convolution


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None):
    """General convolution with jax.lax's signature and meaning.

    Args:
        lhs: input, e.g. `(N, H, W, C)` with `dimension_numbers=("NHWC", "HWIO", "NHWC")`
            (the default layout is NCHW / OIHW / NCHW).
        rhs: kernel.
        window_strides: one stride per spatial axis.
        padding: 'SAME', 'VALID' or a sequence of `(low, high)` pairs.
        lhs_dilation: input dilation (transposed convolution), one per spatial axis.
        rhs_dilation: kernel dilation (atrous convolution), one per spatial axis.
        dimension_numbers: layouts, as strings or `ConvDimensionNumbers`.
        feature_group_count: grouped convolution (depthwise when equal to the channels).

    Returns:
        The convolution, in `out_spec` layout.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> x, k = fnp.ones((1, 5, 5, 1)), fnp.ones((3, 3, 1, 2))
        >>> y = nanofn.lax.conv_general_dilated(x, k, (1, 1), "SAME",
        ...                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))
        >>> y.shape, float(y[0, 2, 2, 0])
        ((1, 5, 5, 2), 9.0)
    """
    del precision  # unused
    if batch_group_count != 1:
        raise NotImplementedError("conv_general_dilated: batch_group_count > 1 is not supported")
    from nanofn.numpy._dtypes import promote
    lhs, rhs = promote(lhs, rhs)
    ls, rs = tuple(_aval_shape(lhs)), tuple(_aval_shape(rhs))
    if len(ls) != len(rs) or len(ls) < 3:
        raise ValueError(f"conv_general_dilated: input {ls} and kernel {rs} must have the same "
                         "rank, at least 3 (batch, feature, one spatial axis)")
    dn = conv_dimension_numbers(ls, rs, dimension_numbers)
    nsp = len(ls) - 2
    x = lax.transpose(lhs, dn.lhs_spec)  # (N, C, *S)
    w = lax.transpose(rhs, dn.rhs_spec)  # (O, I, *K)
    xs, ws = tuple(_aval_shape(x)), tuple(_aval_shape(w))
    n, c, spatial = xs[0], xs[1], xs[2:]
    o, i, window = ws[0], ws[1], ws[2:]
    g = int(feature_group_count)
    if c != i * g or o % g:
        raise ValueError(
            f"conv_general_dilated: input has {c} features and the kernel expects {i} per group "
            f"x {g} groups = {i * g} (kernel shape {rs}, input shape {ls}); the output features "
            f"({o}) must be divisible by feature_group_count={g}")
    strides = tuple(window_strides)
    lhs_dilation = tuple(lhs_dilation or (1,) * nsp)
    rhs_dilation = tuple(rhs_dilation or (1,) * nsp)
    if isinstance(padding, str):
        dil_in = tuple((s - 1) * d + 1 for s, d in zip(spatial, lhs_dilation))
        dil_k = tuple((k - 1) * d + 1 for k, d in zip(window, rhs_dilation))
        pads = padtype_to_pads(dil_in, dil_k, strides, padding)
    else:
        pads = padtype_to_pads(spatial, window, strides, padding)
    p = conv_patches(x, window, strides, pads, lhs_dilation, rhs_dilation)  # (N, *O, C, *K)
    out_sp = tuple(_aval_shape(p)[1:1 + nsp])
    kk = int(np.prod(window, dtype=np.int64))
    # group the features: patches (N, *O, G, I*K) . kernel (G, O/G, I*K) -> (G, N, *O, O/G)
    p = lax.reshape(p, (n,) + out_sp + (g, i * kk))
    wg = lax.reshape(w, (g, o // g, i * kk))
    y = lax.dot_general_p.bind(p, wg, dimension_numbers=(((nsp + 2,), (2,)), ((nsp + 1,), (0,))),
                               preferred_element_type=None)
    # y: (G, N, *O, O/G) -> (N, G, O/G, *O) -> (N, O, *O)
    y = lax.transpose(y, (1, 0, nsp + 2) + tuple(range(2, 2 + nsp)))
    y = lax.reshape(y, (n, o) + out_sp)
    # back to the requested output layout
    y = lax.transpose(y, tuple(np.argsort(dn.out_spec).tolist()))
    if preferred_element_type is not None:
        y = lax.convert_element_type(y, preferred_element_type)
    return y


def conv(lhs, rhs, window_strides, padding, precision=None, preferred_element_type=None):
    """Convolution in NCHW / OIHW layout (`conv_general_dilated` without dilation)."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_with_general_padding(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                              precision=None, preferred_element_type=None):
    """Convolution in NCHW / OIHW layout with explicit padding and dilations."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                precision=precision, preferred_element_type=preferred_element_type)


def conv_transpose(lhs, rhs, strides, padding, rhs_dilation=None, dimension_numbers=None,
                   transpose_kernel=False, precision=None, preferred_element_type=None):
    """Transposed convolution (the gradient of a strided convolution), as `jax.lax.conv_transpose`:
    the input is dilated by `strides` and convolved with the kernel.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> y = nanofn.lax.conv_transpose(fnp.ones((1, 3, 3, 1)), fnp.ones((2, 2, 1, 1)), (2, 2),
        ...                               "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        >>> y.shape
        (1, 6, 6, 1)
    """
    ls, rs = tuple(_aval_shape(lhs)), tuple(_aval_shape(rhs))
    dn = conv_dimension_numbers(ls, rs, dimension_numbers)
    nsp = len(ls) - 2
    k_sdims = [rs[d] for d in dn.rhs_spec[2:]]
    rhs_dilation = tuple(rhs_dilation or (1,) * nsp)
    eff_k = [(k - 1) * d + 1 for k, d in zip(k_sdims, rhs_dilation)]
    if isinstance(padding, str):
        pads = []
        for k, st in zip(eff_k, strides):  # the padding that makes this the adjoint of a conv
            mode = padding.upper()
            if mode == "SAME":
                total = k + st - 2
                lo = k - 1 if st > k - 1 else -(-total // 2)
            elif mode == "VALID":
                total = k + st - 2 + max(k - st, 0)
                lo = k - 1
            else:
                raise ValueError(f"conv_transpose: padding {padding!r} is not 'SAME' or 'VALID'")
            pads.append((lo, total - lo))
    else:
        pads = padding
    if transpose_kernel:
        from nanofn.numpy import flip, swapaxes
        rhs = flip(rhs, tuple(dn.rhs_spec[2:]))
        rhs = swapaxes(rhs, dn.rhs_spec[0], dn.rhs_spec[1])
    return conv_general_dilated(lhs, rhs, (1,) * nsp, pads, lhs_dilation=tuple(strides),
                                rhs_dilation=rhs_dilation, dimension_numbers=dn,
                                precision=precision, preferred_element_type=preferred_element_type)


# ------------------------------------------------------------------------ pooling


def reduce_window(operand, init_value, computation, window_dimensions, window_strides,
                  padding, base_dilation=None, window_dilation=None):
    """Reduce every window of `operand` with `computation` (jax.lax's signature).

    `computation` is `nanofn.lax.add`, `nanofn.lax.max` or `nanofn.lax.min` (or the
    matching numpy/nanofn.numpy function); padding is filled with `init_value`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> x = fnp.arange(16.0).reshape(1, 4, 4, 1)
        >>> y = nanofn.lax.reduce_window(x, -fnp.inf, nanofn.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        >>> y[0, :, :, 0]
        Array([[ 5.,  7.],
               [13., 15.]], dtype=float32)
    """
    name = getattr(computation, "__name__", str(computation))
    kind = {"add": "sum", "max": "max", "maximum": "max", "min": "min", "minimum": "min"}.get(name)
    if kind is None:
        raise NotImplementedError(f"reduce_window: computation {name!r} is not supported; use "
                                  "lax.add, lax.max or lax.min")
    shape = tuple(_aval_shape(operand))
    nd = len(shape)
    window = tuple(int(w) for w in window_dimensions)
    strides = tuple(int(s) for s in window_strides)
    if len(window) != nd or len(strides) != nd:
        raise ValueError(f"reduce_window: window_dimensions {window} and window_strides "
                         f"{strides} need one entry per axis of the operand {shape}")
    pads = padtype_to_pads(shape, window, strides, padding)
    init = float(np.asarray(init_value))
    x = lax.reshape(operand, (1, 1) + shape)
    p = conv_patches(x, window, strides, pads, base_dilation, window_dilation, pad_value=init)
    out_shape = tuple(_aval_shape(p)[1:1 + nd])
    axes = tuple(range(1 + nd, 2 + 2 * nd))  # the C axis (size 1) and the window axes
    red = {"sum": lax.reduce_sum_p, "max": lax.reduce_max_p, "min": lax.reduce_min_p}[kind]
    y = red.bind(p, axes=axes)
    y = lax.reshape(y, out_shape)
    if kind == "sum" and init != 0.0:
        y = lax._add(y, lax._c(y, init))
    return y
