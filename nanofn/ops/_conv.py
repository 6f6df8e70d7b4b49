"""Convolution and pooling primitives.

Convolution is derived from one linear primitive, `conv_patches`: it cuts an
`(N, C, *spatial)` array into the windows a convolution reads ("im2col"), as
`(N, *out_spatial, *window, C)`. Its transpose, `conv_patches_transpose`, adds every window
back where it came from ("col2im"); each is the other's transpose. `conv_general_dilated`
is patches followed by one `dot_general` with the kernel, so its gradients with respect to
the input and the kernel, and its batching, come from the rules of these two primitives
and of `dot_general` (kept in BLAS): no convolution-specific derivative code.

Pooling (`reduce_window`) has its own primitives, which never build the patches:

* `reduce_window_max`; its tangent `select_and_gather_add(t, x)` reads `t` at each
  window's first maximum of `x`, its cotangent `select_and_scatter_add(ct, x)` adds `ct`
  there (the element JAX sends it to). Both are linear in their first operand and each is
  the other's transpose, so max pooling has derivatives of every order. Min pooling is
  max pooling of the order-reversed operand.
* `reduce_window_sum` (sum and average pooling) and its transpose
  `reduce_window_sum_transpose`.

The impls are numba kernels with numpy references beside them, in `_conv_kernels.py`.
"""

from __future__ import annotations

import collections
import itertools
import math

import numpy as np

from nanofn._core import Primitive, ShapedArray
from nanofn.ops import _base as lax
from nanofn.ops import _conv_kernels as K
from nanofn.ops._base import _aval_shape, bdim_to_front

__all__ = ["conv_general_dilated", "conv_general_dilated_patches", "conv_general_dilated_local",
           "conv", "conv_with_general_padding", "conv_transpose",
           "reduce_window", "ConvDimensionNumbers", "conv_dimension_numbers",
           "padtype_to_pads"]


# ------------------------------------------------------------------------ geometry


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
    return K.patches(x, window, strides, padding, lhs_dilation, rhs_dilation, pad_value)


@conv_patches_p.def_abstract_eval
def _conv_patches_abstract_eval(x, *, window, strides, padding, lhs_dilation, rhs_dilation,
                                pad_value):
    _check_geometry("conv_patches", x.ndim, window, strides, padding, lhs_dilation, rhs_dilation)
    return ShapedArray(K.patches_shape(x.shape, window, strides, padding, lhs_dilation,
                                      rhs_dilation), x.dtype)


conv_patches_transpose_p = Primitive("conv_patches_transpose")


@conv_patches_transpose_p.def_impl
def _conv_patches_transpose_impl(ct, *, x_shape, window, strides, padding, lhs_dilation,
                                 rhs_dilation):
    return K.patches_transpose(ct, x_shape, window, strides, padding, lhs_dilation,
                               rhs_dilation)


conv_patches_transpose_p.abstract_eval = (
    lambda ct, *, x_shape, **params: ShapedArray(x_shape, ct.dtype))

# `impl_into(*args, out=buf, **params)`: the impl writing its result into `buf`, a
# C-contiguous array of the result's shape and dtype that jit's plan keeps between calls
# (so a step allocates nothing). It returns the result: `buf` itself, or, for primitives
# marked `impl_into_views = True`, a view of `buf`'s memory in another layout. Tracing
# has checked the arguments, so these skip the impls' checks.
conv_patches_p.impl_into = (
    lambda x, *, out, window, strides, padding, lhs_dilation, rhs_dilation, pad_value:
    K.patches(x, window, strides, padding, lhs_dilation, rhs_dilation, pad_value, out=out))
conv_patches_transpose_p.impl_into = (
    lambda ct, *, out, x_shape, window, strides, padding, lhs_dilation, rhs_dilation:
    K.patches_transpose(ct, x_shape, window, strides, padding, lhs_dilation, rhs_dilation,
                        out=out))
conv_patches_transpose_p.impl_into_views = True  # channels last in memory (see the kernel)


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
    """The windows of an `(N, C, *spatial)` array: `(N, *out_spatial, *window, C)`.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn.ops._conv import conv_patches
        >>> conv_patches(fnp.ones((1, 3, 4, 4)), (2, 2), (2, 2), ((0, 0), (0, 0))).shape
        (1, 2, 2, 2, 2, 3)
    """
    nsp = len(window)
    return conv_patches_p.bind(
        x, window=tuple(window), strides=tuple(strides),
        padding=tuple(tuple(p) for p in padding),
        lhs_dilation=tuple(lhs_dilation or (1,) * nsp),
        rhs_dilation=tuple(rhs_dilation or (1,) * nsp), pad_value=float(pad_value))


# ------------------------------------------------------------------------ dimension numbers


class ConvDimensionNumbers(collections.namedtuple("ConvDimensionNumbers",
                                                   ("lhs_spec", "rhs_spec", "out_spec"))):
    """`(lhs_spec, rhs_spec, out_spec)`: each a tuple of axis indices, batch/feature first.

    lhs_spec = (batch axis, feature axis, *spatial axes); rhs_spec = (out feature axis, in
    feature axis, *spatial axes); out_spec like lhs_spec (JAX's convention).

    Example:
        >>> from nanofn import lax
        >>> lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2)).rhs_spec
        (3, 2, 0, 1)
    """
    __slots__ = ()

    def __new__(cls, lhs_spec, rhs_spec, out_spec):
        return super().__new__(cls, tuple(lhs_spec), tuple(rhs_spec), tuple(out_spec))


def _check_spec_strings(specs):
    for s, pair in zip(specs, (("N", "C"), ("O", "I"), ("N", "C"))):
        if not isinstance(s, str) or any(s.count(ch) != 1 for ch in pair) or \
                len(set(s)) != len(s):
            raise TypeError(f"conv: dimension_numbers {specs!r}: {s!r} must name "
                            f"{pair[0]!r} and {pair[1]!r} once each, with no repeated letter")
    spatial = [set(s) - set(pair) for s, pair in zip(specs, ("NC", "OI", "NC"))]
    if not spatial[0] == spatial[1] == spatial[2]:
        raise TypeError(f"conv: dimension_numbers {specs!r} must name the same spatial axes "
                        "in all three layouts")


def conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers):
    """Turn `None`, a `ConvDimensionNumbers`, or strings like `("NHWC", "HWIO", "NHWC")`
    into `ConvDimensionNumbers` (`None` is the NCHW / OIHW / NCHW layout).

    Example:
        >>> from nanofn import lax
        >>> lax.conv_dimension_numbers((1, 5, 5, 3), (3, 3, 3, 8), ("NHWC", "HWIO", "NHWC"))
        ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))
    """
    nd = len(lhs_shape)
    if len(rhs_shape) != nd:
        raise TypeError(f"conv: the input and the kernel must have the same rank, got shapes "
                        f"{tuple(lhs_shape)} and {tuple(rhs_shape)}")
    if dimension_numbers is None:
        return ConvDimensionNumbers(tuple(range(nd)), tuple(range(nd)), tuple(range(nd)))
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        return dimension_numbers
    if not isinstance(dimension_numbers, (tuple, list)) or len(dimension_numbers) != 3:
        raise TypeError(f"conv: dimension_numbers must be None, a ConvDimensionNumbers or "
                        f"three layouts (lhs, rhs, out), got {dimension_numbers!r}")
    lhs, rhs, out = dimension_numbers
    if isinstance(lhs, str):
        _check_spec_strings((lhs, rhs, out))
        if not (len(lhs) == len(rhs) == len(out) == nd):
            raise TypeError(f"conv: dimension_numbers {dimension_numbers} do not match an input "
                            f"of rank {nd}")
        spatial = [ch for ch in rhs if ch not in "IO"]

        def spec(s, first, second):
            return (s.index(first), s.index(second)) + tuple(s.index(ch) for ch in spatial)
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


def _conv_pads(spatial, window, strides, padding, lhs_dilation, rhs_dilation):
    """Explicit `(low, high)` pads; 'SAME'/'VALID' are judged on the dilated input and
    kernel sizes, as XLA does."""
    if isinstance(padding, str):
        dil_in = tuple((s - 1) * d + 1 for s, d in zip(spatial, lhs_dilation))
        dil_k = tuple((k - 1) * d + 1 for k, d in zip(window, rhs_dilation))
        return padtype_to_pads(dil_in, dil_k, strides, padding)
    return padtype_to_pads(spatial, window, strides, padding)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None,
                         out_sharding=None):
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
        batch_group_count: the batch in `batch_group_count` groups, group `k` convolved
            with the `k`-th group of the output features (the output batch is the group
            size): XLA's form of a grouped convolution's kernel gradient.

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
    del precision, out_sharding  # unused: numpy's precision, one device
    from nanofn.numpy._dtypes import promote
    lhs, rhs = promote(lhs, rhs)
    pet = lax.check_preferred_element_type("conv_general_dilated", lax._dtype(lhs),
                                           preferred_element_type)
    if pet is not None and pet != lax._dtype(lhs):  # accumulate in it: int8 sums in int32
        lhs, rhs = lax.convert_element_type(lhs, pet), lax.convert_element_type(rhs, pet)
    ls, rs = tuple(_aval_shape(lhs)), tuple(_aval_shape(rhs))
    if len(ls) != len(rs) or len(ls) < 3:
        raise ValueError(f"conv_general_dilated: input {ls} and kernel {rs} must have the same "
                         "rank, at least 3 (batch, feature, one spatial axis)")
    dn = conv_dimension_numbers(ls, rs, dimension_numbers)
    if batch_group_count != 1:
        return _batch_grouped(lhs, rhs, dn, int(batch_group_count), int(feature_group_count),
                              dict(window_strides=window_strides, padding=padding,
                                   lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
                                   preferred_element_type=preferred_element_type))
    nsp = len(ls) - 2
    x = lax.transpose(lhs, dn.lhs_spec)  # (N, C, *S)
    # the kernel as (*K, I, O): an HWIO kernel is then used in place, and the patches'
    # (*K, I) axes meet the kernel's in memory order in all three matrix products (forward,
    # input gradient, weight gradient), so none of them copies an operand or its result
    w = lax.transpose(rhs, tuple(dn.rhs_spec[2:]) + (dn.rhs_spec[1], dn.rhs_spec[0]))
    xs, ws = tuple(_aval_shape(x)), tuple(_aval_shape(w))
    n, c, spatial = xs[0], xs[1], xs[2:]
    o, i, window = ws[-1], ws[-2], ws[:-2]
    g = int(feature_group_count)
    if c != i * g or o % g:
        raise ValueError(
            f"conv_general_dilated: input has {c} features and the kernel expects {i} per group "
            f"x {g} groups = {i * g} (kernel shape {rs}, input shape {ls}); the output features "
            f"({o}) must be divisible by feature_group_count={g}")
    strides = tuple(window_strides)
    lhs_dilation = tuple(lhs_dilation or (1,) * nsp)
    rhs_dilation = tuple(rhs_dilation or (1,) * nsp)
    pads = _conv_pads(spatial, window, strides, padding, lhs_dilation, rhs_dilation)
    p = conv_patches(x, window, strides, pads, lhs_dilation, rhs_dilation)  # (N, *O, *K, C)
    out_sp = tuple(_aval_shape(p)[1:1 + nsp])
    # group the features: patches (N, *O, *K, G, I) . kernel (*K, I, G, O/G) -> (G, N, *O, O/G)
    p = lax.reshape(p, (n,) + out_sp + tuple(window) + (g, i))
    wg = lax.reshape(w, tuple(window) + (i, g, o // g))
    contract = (tuple(range(1 + nsp, 1 + 2 * nsp)) + (2 + 2 * nsp,), tuple(range(nsp + 1)))
    y = lax.dot_general_p.bind(p, wg, dimension_numbers=(contract, ((1 + 2 * nsp,), (nsp + 1,))),
                               preferred_element_type=None)
    # y: (G, N, *O, O/G) -> (N, G, O/G, *O) -> (N, O, *O)
    y = lax.transpose(y, (1, 0, nsp + 2) + tuple(range(2, 2 + nsp)))
    y = lax.reshape(y, (n, o) + out_sp)
    # back to the requested output layout
    return lax.transpose(y, tuple(np.argsort(dn.out_spec).tolist()))


def _batch_grouped(lhs, rhs, dn, groups, feature_groups, conv_args):
    """`batch_group_count=groups` as a feature-grouped convolution: batch group `k` moves
    next to the others as channel group `k`, which `feature_group_count=groups` pairs with
    the `k`-th group of output features, as XLA's batch groups are."""
    ls = tuple(_aval_shape(lhs))
    n, o = ls[dn.lhs_spec[0]], _aval_shape(rhs)[dn.rhs_spec[0]]
    if feature_groups != 1 or groups < 1 or n % groups or o % groups:
        raise ValueError(
            f"conv_general_dilated: batch_group_count={groups} needs feature_group_count=1 and "
            f"must divide the batch ({n}) and the output features ({o})")
    x = lax.transpose(lhs, dn.lhs_spec)  # (N, C, *S)
    c, spatial = ls[dn.lhs_spec[1]], tuple(_aval_shape(x))[2:]
    x = lax.reshape(x, (groups, n // groups, c) + spatial)
    x = lax.transpose(x, (1, 0) + tuple(range(2, 3 + len(spatial))))
    x = lax.reshape(x, (n // groups, groups * c) + spatial)
    x = lax.transpose(x, tuple(np.argsort(dn.lhs_spec)))  # back to the input's layout
    return conv_general_dilated(x, rhs, dimension_numbers=dn, feature_group_count=groups,
                                **conv_args)


def conv_general_dilated_patches(lhs, filter_shape, window_strides, padding, lhs_dilation=None,
                                 rhs_dilation=None, dimension_numbers=None, precision=None,
                                 preferred_element_type=None):
    """The patches a convolution with a `filter_shape` window would see, as channels
    (`jax.lax.conv_general_dilated_patches`).

    The output has `lhs`'s layout with `C * prod(filter_shape)` features, ordered channel
    major (`c * prod(filter_shape) + window position`). The windows are copied (im2col,
    then a transpose), not computed as a convolution with an identity kernel as XLA
    does: values are the same, except that a non-finite input stays where it is instead
    of turning the other entries of its windows into NaN (`inf * 0`).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> x = fnp.arange(16.0).reshape(1, 1, 4, 4)  # NCHW
        >>> p = nanofn.lax.conv_general_dilated_patches(x, (2, 2), (2, 2), "VALID")
        >>> p.shape, p[0, :, 0, 0]
        ((1, 4, 2, 2), Array([0., 1., 4., 5.], dtype=float32))
    """
    del precision  # unused: a copy is exact
    from nanofn.numpy._dtypes import asarray_value
    lhs = asarray_value(lhs)
    shape = tuple(_aval_shape(lhs))
    nsp = len(shape) - 2
    filter_shape = tuple(int(d) for d in filter_shape)
    if nsp < 1 or len(filter_shape) != nsp:
        raise ValueError(f"conv_general_dilated_patches: filter_shape {filter_shape} needs "
                         f"{max(nsp, 0)} spatial sizes for an input of shape {shape} (rank "
                         f"at least 3: batch, feature, spatial axes)")
    pet = lax.check_preferred_element_type("conv_general_dilated_patches", lax._dtype(lhs),
                                           preferred_element_type)
    dims = conv_dimension_numbers(shape, (0,) * len(shape), dimension_numbers)
    x = lax.transpose(lhs, dims.lhs_spec)  # (N, C, *S)
    n, c, spatial = shape[dims.lhs_spec[0]], shape[dims.lhs_spec[1]], tuple(_aval_shape(x)[2:])
    strides = tuple(int(s) for s in window_strides)
    lhs_dilation = tuple(lhs_dilation or (1,) * nsp)
    rhs_dilation = tuple(rhs_dilation or (1,) * nsp)
    if len(strides) != nsp:
        raise ValueError(f"conv_general_dilated_patches: window_strides={window_strides} "
                         f"needs one entry per spatial axis ({nsp})")
    pads = _conv_pads(spatial, filter_shape, strides, padding, lhs_dilation, rhs_dilation)
    p = conv_patches(x, filter_shape, strides, pads, lhs_dilation, rhs_dilation)
    # (N, *O, *K, C) -> (N, C, *K, *O) -> (N, C * prod(K), *O): channel-major features
    out_sp = tuple(_aval_shape(p)[1:1 + nsp])
    y = lax.transpose(p, (0, 1 + 2 * nsp) + tuple(range(1 + nsp, 1 + 2 * nsp))
                      + tuple(range(1, 1 + nsp)))
    y = lax.reshape(y, (n, c * math.prod(filter_shape)) + out_sp)
    if pet is not None and pet != lax._dtype(y):
        y = lax.convert_element_type(y, pet)
    return lax.transpose(y, tuple(np.argsort(dims.out_spec).tolist()))


def conv_general_dilated_local(lhs, rhs, window_strides, padding, filter_shape,
                               lhs_dilation=None, rhs_dilation=None, dimension_numbers=None,
                               precision=None):
    """An unshared convolution, a locally connected layer (`jax.lax.conv_general_dilated_local`):
    every output position has its own kernel.

    `rhs` has the layout `dimension_numbers[1]` names, but its spatial axes index *output*
    positions and its input-feature axis holds `C * prod(filter_shape)` entries: the
    patches of `conv_general_dilated_patches` (channel major, then window positions). So
    the result is, at each output position, those patches contracted with that position's
    kernel: one `dot_general` with the spatial axes as batch axes.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> x = fnp.ones((1, 2, 4, 4))  # NCHW
        >>> w = fnp.ones((3, 2 * 2 * 2, 3, 3))  # OIHW: 3 outputs, 2x2 windows, 3x3 positions
        >>> nanofn.lax.conv_general_dilated_local(x, w, (1, 1), "VALID", (2, 2)).shape
        (1, 3, 3, 3)
    """
    patches = conv_general_dilated_patches(lhs, filter_shape, window_strides, padding,
                                           lhs_dilation, rhs_dilation, dimension_numbers,
                                           precision)
    lhs_shape, rhs_shape = tuple(_aval_shape(lhs)), tuple(_aval_shape(rhs))
    _, rhs_spec, out_spec = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    pshape = tuple(_aval_shape(patches))
    want = {rhs_spec[1]: pshape[out_spec[1]]}
    want.update({r: pshape[o] for r, o in zip(rhs_spec[2:], out_spec[2:])})
    bad = {a: n for a, n in want.items() if rhs_shape[a] != n}
    if bad:
        raise ValueError(f"conv_general_dilated_local: rhs of shape {rhs_shape} must have "
                         f"{want[rhs_spec[1]]} input features (channels times the window "
                         f"size) and one kernel per output position, "
                         f"{tuple(pshape[o] for o in out_spec[2:])}; axes {sorted(bad)} differ")
    nsp = len(out_spec) - 2
    out = lax.dot_general(patches, rhs, (((out_spec[1],), (rhs_spec[1],)),
                                         (tuple(out_spec[2:]), tuple(rhs_spec[2:]))),
                          precision=precision)
    # out is (spatial..., batch, features); put each where out_spec says
    logical = {out_spec[0]: nsp, out_spec[1]: nsp + 1}
    logical.update({a: i for i, a in enumerate(out_spec[2:])})
    return lax.transpose(out, tuple(logical[a] for a in range(nsp + 2)))


def conv(lhs, rhs, window_strides, padding, precision=None, preferred_element_type=None):
    """Convolution in NCHW / OIHW layout (`conv_general_dilated` without dilation)."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_with_general_padding(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                              precision=None, preferred_element_type=None):
    """Convolution in NCHW / OIHW layout with explicit padding and dilations."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                precision=precision, preferred_element_type=preferred_element_type)


def _transpose_pads(k, stride, padding):
    """The `(low, high)` padding of a transposed convolution along one axis of effective
    kernel size `k`, given the forward convolution's padding ('SAME', 'VALID' or a pair)."""
    if padding == "SAME":
        total = k + stride - 2
        lo = k - 1 if stride > k - 1 else -(-total // 2)
    elif padding == "VALID":
        total = k + stride - 2 + max(k - stride, 0)
        lo = k - 1
    else:  # the forward pads (lo, hi) become k - 1 - lo and k - 1 - hi
        lo, total = k - 1 - padding[0], 2 * (k - 1) - padding[0] - padding[1]
    return lo, total - lo


_TRANSPOSE_LAYOUTS = {3: ("NHC", "HIO", "NHC"), 4: ("NHWC", "HWIO", "NHWC"),
                      5: ("NHWDC", "HWDIO", "NHWDC"), 2: ("NC", "IO", "NC")}


def conv_transpose(lhs, rhs, strides, padding, rhs_dilation=None, dimension_numbers=None,
                   transpose_kernel=False, precision=None, preferred_element_type=None,
                   use_consistent_padding=False):
    """Transposed convolution (the gradient of a strided convolution), as `jax.lax.conv_transpose`:
    the input is dilated by `strides` and convolved with the kernel.

    Unlike `conv_general_dilated`, the default layout is channels last, as in JAX
    (`("NHWC", "HWIO", "NHWC")` for 2-d, `("NHC", "HIO", "NHC")` for 1-d,
    `("NHWDC", "HWDIO", "NHWDC")` for 3-d). 'SAME' and 'VALID' name the padding of the
    forward convolution this one transposes; explicit `(low, high)` pairs are the padding of
    the transposed convolution itself, unless `use_consistent_padding=True`, which reads them
    as the forward convolution's padding too (PyTorch's meaning).

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> y = nanofn.lax.conv_transpose(fnp.ones((1, 3, 3, 1)), fnp.ones((2, 2, 1, 1)), (2, 2),
        ...                               "SAME")
        >>> y.shape
        (1, 6, 6, 1)
    """
    ls, rs = tuple(_aval_shape(lhs)), tuple(_aval_shape(rhs))
    if dimension_numbers is None:
        if len(ls) not in _TRANSPOSE_LAYOUTS:
            raise ValueError(f"conv_transpose: no default dimension_numbers for an input of "
                             f"rank {len(ls)} (shape {ls}); pass dimension_numbers")
        dimension_numbers = _TRANSPOSE_LAYOUTS[len(ls)]
    dn = conv_dimension_numbers(ls, rs, dimension_numbers)
    nsp = len(ls) - 2
    strides = tuple(int(s) for s in strides)
    if len(strides) != nsp:
        raise ValueError(f"conv_transpose: strides {strides} need one entry per spatial axis "
                         f"({nsp}) of the input {ls}")
    k_sdims = [rs[d] for d in dn.rhs_spec[2:]]
    rhs_dilation = tuple(rhs_dilation or (1,) * nsp)
    eff_k = [(k - 1) * d + 1 for k, d in zip(k_sdims, rhs_dilation)]
    if isinstance(padding, str) and padding.upper() in ("SAME", "VALID"):
        pads = [_transpose_pads(k, st, padding.upper()) for k, st in zip(eff_k, strides)]
    elif isinstance(padding, str):
        raise ValueError(f"conv_transpose: padding {padding!r} is not 'SAME', 'VALID' or a "
                         "sequence of (low, high) pairs")
    elif use_consistent_padding:
        forward = padtype_to_pads(eff_k, eff_k, strides, padding)  # checks the pairs
        pads = [_transpose_pads(k, st, p) for k, st, p in zip(eff_k, strides, forward)]
    else:
        pads = padding
    if transpose_kernel:
        from nanofn.numpy import flip, swapaxes
        rhs = flip(rhs, tuple(dn.rhs_spec[2:]))
        rhs = swapaxes(rhs, dn.rhs_spec[0], dn.rhs_spec[1])
    return conv_general_dilated(lhs, rhs, (1,) * nsp, pads, lhs_dilation=strides,
                                rhs_dilation=rhs_dilation, dimension_numbers=dn,
                                precision=precision, preferred_element_type=preferred_element_type)


# ------------------------------------------------------------------------ pooling primitives

_GEO = ("window_dimensions", "window_strides", "padding", "base_dilation", "window_dilation")


def _geo(params):
    return tuple(params[k] for k in _GEO)


def _check_pool(name, shape, params):
    nd = len(shape)
    for k in _GEO:
        if len(params[k]) != nd:
            raise ValueError(f"{name}: {k}={params[k]} needs one entry per axis of the operand "
                             f"{tuple(shape)}")
    if any(len(p) != 2 for p in params["padding"]):
        raise ValueError(f"{name}: padding={params['padding']} must be (low, high) pairs")
    for k in ("window_dimensions", "window_strides", "base_dilation", "window_dilation"):
        if any(v < 1 for v in params[k]):
            raise ValueError(f"{name}: {k}={params[k]} must be positive")
    return K.pool_out_shape(tuple(shape), *_geo(params))


def _pool_unit(params):
    """The params for an operand with one more (batch) axis in front, not pooled."""
    return dict(window_dimensions=(1,) + params["window_dimensions"],
                window_strides=(1,) + params["window_strides"],
                padding=((0, 0),) + params["padding"],
                base_dilation=(1,) + params["base_dilation"],
                window_dilation=(1,) + params["window_dilation"])


def _numeric(name, aval):
    if aval.dtype.kind not in "biuf":
        raise TypeError(f"{name} does not accept dtype {aval.dtype.name} (operand "
                        f"{aval.str_short()}); pass a real or integer array")


# --- reduce_window_max and its two linear companions ----------------------------------------
# The tangent of max pooling reads the input tangent at each window's first maximum
# (`select_and_gather_add`); the cotangent adds each window's cotangent there
# (`select_and_scatter_add`). Both are linear in their first operand and each is the
# other's transpose; the operand `x` only chooses positions, so it gets no derivative.

reduce_window_max_p = Primitive("reduce_window_max")
select_and_gather_add_p = Primitive("select_and_gather_add")
select_and_scatter_add_p = Primitive("select_and_scatter_add")


@reduce_window_max_p.def_impl
def _reduce_window_max_impl(x, **params):
    _check_pool("reduce_window_max", x.shape, params)  # a bad window must not reach a kernel
    return K.max_pool(x, *_geo(params))


@reduce_window_max_p.def_abstract_eval
def _reduce_window_max_abstract_eval(x, **params):
    _numeric("reduce_window_max", x)
    return ShapedArray(_check_pool("reduce_window_max", x.shape, params), x.dtype)




@select_and_gather_add_p.def_impl
def _select_and_gather_add_impl(t, x, **params):
    if t.shape != x.shape:
        raise ValueError("select_and_gather_add: shape mismatch")  # abstract_eval explains
    _check_pool("select_and_gather_add", x.shape, params)
    return K.max_pool_gather(t, x, *_geo(params))


@select_and_scatter_add_p.def_impl
def _select_and_scatter_add_impl(ct, x, **params):
    if ct.shape != _check_pool("select_and_scatter_add", x.shape, params):
        raise ValueError("select_and_scatter_add: shape mismatch")  # abstract_eval explains
    return K.max_pool_scatter(ct, x, *_geo(params))


@select_and_gather_add_p.def_abstract_eval
def _select_and_gather_add_abstract_eval(t, x, **params):
    _numeric("select_and_gather_add", x)
    if t.shape != x.shape or t.dtype != x.dtype:
        raise TypeError(f"select_and_gather_add: the tangent {t.str_short()} must have the "
                        f"operand's shape and dtype {x.str_short()}")
    return ShapedArray(_check_pool("select_and_gather_add", x.shape, params), t.dtype)


@select_and_scatter_add_p.def_abstract_eval
def _select_and_scatter_add_abstract_eval(ct, x, **params):
    _numeric("select_and_scatter_add", x)
    out = _check_pool("select_and_scatter_add", x.shape, params)
    if tuple(ct.shape) != out or ct.dtype != x.dtype:
        raise TypeError(f"select_and_scatter_add: the cotangent {ct.str_short()} must have "
                        f"the pooled shape {out} and the operand's dtype ({x.str_short()})")
    return ShapedArray(x.shape, ct.dtype)


reduce_window_max_p.jvp_terms = [
    lambda t, x, *, out, **params: select_and_gather_add_p.bind(t, x, **params)]
reduce_window_max_p.vjp = [
    lambda ct, x, *, out, **params: select_and_scatter_add_p.bind(ct, x, **params)]
select_and_gather_add_p.jvp_terms = [
    lambda t, t0, x, *, out, **params: select_and_gather_add_p.bind(t, x, **params), None]
select_and_gather_add_p.vjp = [
    lambda ct, t0, x, *, out, **params: select_and_scatter_add_p.bind(ct, x, **params), None]
select_and_scatter_add_p.jvp_terms = [
    lambda t, c0, x, *, out, **params: select_and_scatter_add_p.bind(t, x, **params), None]
select_and_scatter_add_p.vjp = [
    lambda ct, c0, x, *, out, **params: select_and_gather_add_p.bind(ct, x, **params), None]


def _front_all(vals, dims):
    """Move every batch axis to the front; give unbatched operands one by broadcasting."""
    size = next(_aval_shape(v)[d] for v, d in zip(vals, dims) if d is not None)
    out = []
    for v, d in zip(vals, dims):
        if d is None:
            shape = tuple(_aval_shape(v))
            v = lax.broadcast_in_dim(v, (size,) + shape, tuple(range(1, 1 + len(shape))))
        else:
            v = bdim_to_front(v, d)
        out.append(v)
    return out


def _pool_batch(prim):
    def rule(vals, dims, **params):
        unit = _pool_unit(params)
        if "x_shape" in params:
            size = _aval_shape(vals[0])[dims[0]]
            unit["x_shape"] = (size,) + tuple(params["x_shape"])
        return prim.bind(*_front_all(vals, dims), **unit), 0
    return rule


for _prim in (reduce_window_max_p, select_and_gather_add_p, select_and_scatter_add_p):
    _prim.batch = _pool_batch(_prim)

reduce_window_max_p.impl_into = (
    lambda x, *, out, **params: K.max_pool(x, *_geo(params), out=out))
select_and_gather_add_p.impl_into = (
    lambda t, x, *, out, **params: K.max_pool_gather(t, x, *_geo(params), out=out))
select_and_scatter_add_p.impl_into = (
    lambda ct, x, *, out, **params: K.max_pool_scatter(ct, x, *_geo(params), out=out))


# --- reduce_window_sum and its transpose ---------------------------------------------------

reduce_window_sum_p = Primitive("reduce_window_sum")
reduce_window_sum_transpose_p = Primitive("reduce_window_sum_transpose")


@reduce_window_sum_p.def_impl
def _reduce_window_sum_impl(x, **params):
    _check_pool("reduce_window_sum", x.shape, params)
    return K.sum_pool(x, *_geo(params))


@reduce_window_sum_p.def_abstract_eval
def _reduce_window_sum_abstract_eval(x, **params):
    _numeric("reduce_window_sum", x)
    return ShapedArray(_check_pool("reduce_window_sum", x.shape, params), x.dtype)


@reduce_window_sum_transpose_p.def_impl
def _reduce_window_sum_transpose_impl(ct, *, x_shape, **params):
    if ct.shape != _check_pool("reduce_window_sum_transpose", x_shape, params):
        raise ValueError("reduce_window_sum_transpose: shape mismatch")  # abstract_eval explains
    return K.sum_pool_transpose(ct, x_shape, *_geo(params))


@reduce_window_sum_transpose_p.def_abstract_eval
def _reduce_window_sum_transpose_abstract_eval(ct, *, x_shape, **params):
    out = _check_pool("reduce_window_sum_transpose", x_shape, params)
    if tuple(ct.shape) != out:
        raise TypeError(f"reduce_window_sum_transpose: the cotangent {ct.str_short()} must "
                        f"have the pooled shape {out} of an operand of shape {tuple(x_shape)}")
    return ShapedArray(tuple(x_shape), ct.dtype)


lax.deflinear(reduce_window_sum_p, lambda ct, x, **params: reduce_window_sum_transpose_p.bind(
    ct, x_shape=tuple(_aval_shape(x)), **params))
lax.deflinear(reduce_window_sum_transpose_p,
              lambda ct, y, *, x_shape, **params: reduce_window_sum_p.bind(ct, **params))
reduce_window_sum_p.batch = _pool_batch(reduce_window_sum_p)
reduce_window_sum_transpose_p.batch = _pool_batch(reduce_window_sum_transpose_p)
reduce_window_sum_p.impl_into = (
    lambda x, *, out, **params: K.sum_pool(x, *_geo(params), out=out))
reduce_window_sum_transpose_p.impl_into = (
    lambda ct, *, out, x_shape, **params: K.sum_pool_transpose(ct, x_shape, *_geo(params),
                                                               out=out))


# ------------------------------------------------------------------------ pooling


def reduce_window(operand, init_value, computation, window_dimensions, window_strides=None,
                  padding="VALID", base_dilation=None, window_dilation=None):
    """Reduce every window of `operand` with `computation` (jax.lax's signature).

    As in JAX, padding and base-dilation holes hold `init_value`, and `init_value` takes
    part in every window's reduction. `lax.add`, `lax.max` and `lax.min` (or the matching
    numpy/nanofn.numpy functions) run as pooling primitives with their own kernels; the
    gradient of max (min) pooling goes to each window's first maximum (minimum). Any other
    associative, commutative `computation` (`lax.mul`, a lambda, a variadic one over a
    tuple of operands with a tuple of init values) combines the windows' elements as
    `lax.reduce` does, pairwise, and is differentiable where `computation` is.

    Args:
        operand: the array to pool (or a tuple of arrays of one shape).
        init_value: the reduction's start value (-inf for max, 0 for sum), or a tuple.
        computation: `lax.add`, `lax.max`, `lax.min`, or any `f(a, b)` as in `lax.reduce`.
        window_dimensions: window size, one per axis of `operand`.
        window_strides: step between windows, one per axis (default 1).
        padding: 'SAME', 'VALID' (the default) or one `(low, high)` pair per axis.
        base_dilation: operand dilation, one per axis (default 1).
        window_dilation: window dilation, one per axis (default 1).

    Returns:
        The reduced windows, one per output position.

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
    if isinstance(operand, (tuple, list)):
        kind = None
    shape = tuple(_aval_shape(operand[0] if isinstance(operand, (tuple, list)) else operand))
    nd = len(shape)
    window = tuple(int(w) for w in window_dimensions)
    strides = tuple(int(s) for s in (window_strides or (1,) * nd))
    if len(window) != nd or len(strides) != nd:
        raise ValueError(f"reduce_window: window_dimensions {window} and window_strides "
                         f"{strides} need one entry per axis of the operand {shape}")
    base_dilation = tuple(int(d) for d in (base_dilation or (1,) * nd))
    window_dilation = tuple(int(d) for d in (window_dilation or (1,) * nd))
    # as in JAX, 'SAME' pads the undilated operand for the dilated window
    dilated = tuple((w - 1) * d + 1 for w, d in zip(window, window_dilation))
    pads = padtype_to_pads(shape, dilated, strides, padding)
    geo = dict(window_dimensions=window, window_strides=strides, padding=pads,
               base_dilation=base_dilation, window_dilation=window_dilation)
    if kind is None:
        return _reduce_window_any(operand, init_value, computation, shape, **geo)
    init = np.asarray(init_value).item()
    dtype = lax._dtype(operand)
    if kind == "sum" and dtype == bool:
        raise TypeError(f"reduce_window: a sum of booleans (operand {dtype.name}{list(shape)}); "
                        "convert the operand to an integer dtype first")
    if kind == "max":
        y = reduce_window_max_p.bind(operand, **geo)
        if init > K.lowest(dtype):
            y = lax.max_p.bind(y, lax._c(y, init))
        return y
    if kind == "sum":
        y = reduce_window_sum_p.bind(operand, **geo)
        return lax._add(y, lax._c(y, init)) if init != 0 else y
    # min(x) = flip(max(flip(x))) with an order-reversing flip (negation for floats, bitwise
    # not for integers and booleans, which never overflows): min pooling shares max
    # pooling's kernels and its first-extremum gradient
    flip = lax._neg if dtype.kind == "f" else (lambda v: lax.not_p.bind(v))
    y = flip(reduce_window_max_p.bind(flip(operand), **geo))
    if init < K.highest(dtype):
        y = lax.min_p.bind(y, lax._c(y, init))
    return y


def _reduce_window_any(operand, init_value, computation, shape, *, window_dimensions,
                       window_strides, padding, base_dilation, window_dilation):
    """`reduce_window` with any computation: each operand is padded (and base-dilated) with
    its init value, the window's elements are stacked on a new leading axis as one strided
    slice per window offset, and `lax.reduce` combines them over that axis."""
    from nanofn.ops import _shape
    from nanofn.ops._lax_extras import reduce, reduce_window_shape_tuple
    single = not isinstance(operand, (tuple, list))
    operands = [operand] if single else list(operand)
    inits = [init_value] if single else list(init_value)
    if len(inits) != len(operands):
        raise ValueError(f"reduce_window: {len(operands)} operands but {len(inits)} "
                         f"init_values")
    if any(tuple(_aval_shape(x)) != shape for x in operands):
        raise ValueError(f"reduce_window: operands must have one shape, got "
                         f"{[tuple(_aval_shape(x)) for x in operands]}")
    out_shape = reduce_window_shape_tuple(shape, window_dimensions, window_strides, padding,
                                          base_dilation, window_dilation)
    stacks = []
    for x, init in zip(operands, inits):
        fill = lax.convert_element_type(init, lax._dtype(x))
        if 0 in out_shape:  # no window fits: an empty stack, which reduces to the init value
            stacks.append(lax.broadcast_in_dim(fill, (0,) + out_shape, ()))
            continue
        x = _shape.pad(x, fill, [(lo, hi, d - 1) for (lo, hi), d in zip(padding, base_dilation)])
        windows = []
        for offset in itertools.product(*[range(w) for w in window_dimensions]):
            start = [o * d for o, d in zip(offset, window_dilation)]
            limit = [b + (n - 1) * st + 1 for b, n, st in zip(start, out_shape, window_strides)]
            windows.append(lax.expand_dims(_shape.slice(x, start, limit, window_strides), (0,)))
        stacks.append(_shape.concatenate(windows, 0))
    return reduce(stacks[0] if single else tuple(stacks), init_value if single else tuple(inits),
                  computation, (0,))
