"""Layers: stax-style `(init, apply)` pairs with named parameters.

Each constructor (`Dense(10)`, `Conv(32, (3, 3))`, ...) returns a `Layer`, a 2-tuple
`(init, apply)`; see `nanofn/nn/_base.py` for the protocol (shapes with -1 for the batch,
the `rng`/`training`/`state` keywords, input checks). Parameter-free layers that need no
configuration are ready-made values, as in stax: `Relu`, `Tanh`, `Flatten`, ...

Images and other spatial inputs are channels-last (`NHWC`, or `NWC`/`NDHWC` for 1-D and
3-D); convolution kernels are `HWIO`. The number of spatial dimensions is taken from the
length of `filter_shape` / `window_shape`, so one `Conv` covers 1-D, 2-D and 3-D.
"""

from __future__ import annotations

import math

import numpy as np

from nanofn import numpy as fnp
from nanofn import ops as lax
from nanofn import random
from nanofn._core import Tracer
from nanofn.nn import _functions as F
from nanofn.nn import initializers as inits
from nanofn.nn._base import (
    fmt_shape, known, leaf_layer, need_min_rank, need_rank, prod,
)
from nanofn.nn._base import Initializer, Layer, Padding, Shape  # noqa: F401  (annotations)

__all__ = [
    "AvgPool", "BatchNorm", "Celu", "Conv", "ConvTranspose", "Dense", "Dropout", "Elu",
    "Embedding", "Exp", "Flatten", "Gelu", "GlobalAvgPool", "GlobalMaxPool", "GroupNorm",
    "HardTanh", "LayerNorm", "LeakyRelu", "LogSigmoid", "LogSoftmax", "MaxPool",
    "PixelShuffle", "Relu", "Relu6", "Reshape", "Selu", "Sigmoid", "Silu", "Softmax",
    "Softplus", "SumPool", "Tanh", "Upsample", "ZeroPad", "elementwise",
]


def _key(rng, i):
    return random.fold_in(rng, i)


def _tuple(value, n, name, arg):
    """An int or a sequence of `n` ints, as a tuple of `n` ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name}: {arg} must have {n} entries (one per spatial axis), got "
                         f"{value}")
    return value


def _ndim_check(name, x, rank, what):
    if x.ndim != rank:
        raise ValueError(f"{name}: expects inputs of rank {rank} ({what}), got inputs of shape "
                         f"{fmt_shape(tuple(x.shape))}")


# ------------------------------------------------------------------------ Dense


def Dense(out_dim: int, w_init: Initializer | None = None,
          b_init: Initializer = inits.zeros) -> Layer:
    """A fully connected layer: `outputs = inputs @ w + b` on the last axis.

    Args:
      out_dim: number of output features.
      w_init: initializer of the `(in_dim, out_dim)` weight (default `glorot_normal()`,
        as in stax).
      b_init: initializer of the `(out_dim,)` bias (default zeros).

    Returns:
      A layer with params `{"w": (in_dim, out_dim), "b": (out_dim,)}` mapping
      `(..., in_dim)` to `(..., out_dim)`.

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.Dense(3)
        >>> out_shape, params = init(nanofn.random.key(0), (-1, 5))
        >>> out_shape, params["w"].shape, apply(params, nanofn.numpy.ones((2, 5))).shape
        ((-1, 3), (5, 3), (2, 3))
    """
    w_init = w_init if w_init is not None else inits.glorot_normal()
    name = f"Dense({out_dim})"

    def out_shape(input_shape):
        need_min_rank(name, input_shape, 1, "features last")
        return input_shape[:-1] + (out_dim,)

    def init_params(rng, input_shape):
        in_dim = known(name, input_shape[-1], "the feature axis", input_shape)
        return {"w": w_init(_key(rng, 0), (in_dim, out_dim)), "b": b_init(_key(rng, 1),
                                                                             (out_dim,))}

    def forward(params, x, **kwargs):
        x = fnp.asarray(x)
        w = params["w"]
        if x.ndim < 1 or x.shape[-1] != w.shape[0]:
            raise ValueError(f"{name}: the weight expects {w.shape[0]} input features on the "
                             f"last axis, got inputs of shape {fmt_shape(tuple(x.shape))}")
        return x @ w + params["b"]

    return leaf_layer(name, out_shape, init_params, forward)


# ------------------------------------------------------------------------ convolutions


def _spatial_letters(n):
    if n < 1 or n > 3:
        raise ValueError(f"convolutions and pooling support 1, 2 or 3 spatial dimensions, got "
                         f"{n}")
    return "DHW"[3 - n:]


def _dimension_numbers(n):
    s = _spatial_letters(n)
    return ("N" + s + "C", s + "IO", "N" + s + "C")


def _explicit_padding(name, padding, in_sizes, window, strides, dilation):
    """Padding as ((lo, hi), ...) per spatial axis (None where the input size is unknown)."""
    n = len(window)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return [(0, 0)] * n
        if mode != "SAME":
            raise ValueError(f"{name}: padding must be 'SAME', 'VALID' or explicit "
                             f"((lo, hi), ...) pairs, got {padding!r}")
        pads = []
        for size, k, s, d in zip(in_sizes, window, strides, dilation):
            if size < 0:
                pads.append(None)
                continue
            eff = (k - 1) * d + 1
            out = -(-size // s)
            total = max((out - 1) * s + eff - size, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, (int, np.integer)):
        return [(int(padding), int(padding))] * n
    pads = [tuple(int(v) for v in p) if not isinstance(p, (int, np.integer)) else (int(p),) * 2
            for p in padding]
    if len(pads) != n or any(len(p) != 2 for p in pads):
        raise ValueError(f"{name}: explicit padding needs one (lo, hi) pair per spatial axis "
                         f"({n}), got {padding!r}")
    return pads


def _window_out_sizes(name, input_shape, in_sizes, window, strides, dilation, pads):
    out = []
    for size, k, s, d, p in zip(in_sizes, window, strides, dilation, pads):
        if size < 0:
            out.append(-1)
            continue
        eff = (k - 1) * d + 1
        o = (size + p[0] + p[1] - eff) // s + 1
        if o < 1:
            raise ValueError(f"{name}: the window (size {k}, dilation {d}) does not fit inputs "
                             f"of shape {fmt_shape(input_shape)} with this padding; use a "
                             "smaller window, padding='SAME', or larger inputs")
        out.append(o)
    return tuple(out)


def _padding_arg(name, padding, n):
    """What lax.conv_general_dilated takes: "SAME"/"VALID" or explicit (lo, hi) pairs."""
    if isinstance(padding, str):
        return padding.upper()
    return [tuple(p) for p in _explicit_padding(name, padding, (-1,) * n, (1,) * n, (1,) * n,
                                                (1,) * n)]


def Conv(out_chan: int, filter_shape: Shape, strides: Shape | None = None,
         padding: Padding = "VALID", dilation: Shape | None = None, feature_group_count: int = 1,
         w_init: Initializer | None = None, b_init: Initializer = inits.zeros) -> Layer:
    """A convolution over 1, 2 or 3 spatial axes (`len(filter_shape)`), channels last.

    Inputs are `(N, *spatial, C)` (NWC, NHWC or NDHWC), the kernel is `(*filter_shape,
    C // feature_group_count, out_chan)` (WIO, HWIO, DHWIO), and the call is
    `nanofn.lax.conv_general_dilated` with those dimension numbers.

    Args:
      out_chan: number of output channels.
      filter_shape: spatial size of the kernel, e.g. `(3, 3)`.
      strides: step per spatial axis (default 1).
      padding: "VALID" (no padding, the default, as in stax), "SAME" (output size
        `ceil(input / stride)`), an int, or explicit `((lo, hi), ...)` pairs.
      dilation: kernel dilation per spatial axis (default 1).
      feature_group_count: split the channels into this many groups convolved
        separately (`C` for a depthwise convolution).
      w_init: kernel initializer (default `glorot_normal()` with HWIO fans).
      b_init: bias initializer (default zeros).

    Returns:
      A layer with params `{"w": kernel, "b": (out_chan,)}`.

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.Conv(4, (3, 3), padding="SAME")
        >>> init(nanofn.random.key(0), (-1, 8, 8, 1))[0]
        (-1, 8, 8, 4)
    """
    filter_shape = tuple(int(k) for k in filter_shape)
    n = len(filter_shape)
    name = f"Conv({out_chan}, {filter_shape})"
    dn = _dimension_numbers(n)
    strides = _tuple(strides if strides is not None else 1, n, name, "strides")
    dilation = _tuple(dilation if dilation is not None else 1, n, name, "dilation")
    groups = int(feature_group_count)
    w_init = w_init if w_init is not None else inits.glorot_normal()
    _explicit_padding(name, padding, (-1,) * n, filter_shape, strides, dilation)  # validate
    if groups < 1 or out_chan % groups:
        raise ValueError(f"{name}: out_chan ({out_chan}) must be a multiple of "
                         f"feature_group_count ({groups})")

    def out_shape(input_shape):
        need_rank(name, input_shape, n + 2, "N, " + ", ".join(_spatial_letters(n)) + ", C")
        in_sizes = input_shape[1:-1]
        pads = _explicit_padding(name, padding, in_sizes, filter_shape, strides, dilation)
        pads = [p if p is not None else (0, 0) for p in pads]
        spatial = _window_out_sizes(name, input_shape, in_sizes, filter_shape, strides,
                                    dilation, pads)
        return (input_shape[0],) + spatial + (out_chan,)

    def init_params(rng, input_shape):
        in_chan = known(name, input_shape[-1], "the channel axis", input_shape)
        if in_chan % groups:
            raise ValueError(f"{name}: the {in_chan} input channels must be a multiple of "
                             f"feature_group_count ({groups})")
        kernel_shape = filter_shape + (in_chan // groups, out_chan)
        return {"w": w_init(_key(rng, 0), kernel_shape), "b": b_init(_key(rng, 1),
                                                                      (out_chan,))}

    def forward(params, x, **kwargs):
        x = fnp.asarray(x)
        w = params["w"]
        _ndim_check(name, x, n + 2, "N, spatial..., C")
        if x.shape[-1] != w.shape[-2] * groups:
            raise ValueError(f"{name}: the kernel expects {w.shape[-2] * groups} input "
                             f"channels on the last axis, got inputs of shape "
                             f"{fmt_shape(tuple(x.shape))}")
        y = lax.conv_general_dilated(x, w, strides, _padding_arg(name, padding, n), None,
                                     dilation, dn, groups)
        return y + params["b"]

    return leaf_layer(name, out_shape, init_params, forward)


def _transpose_padding(k, s, padding):
    """Padding of the stride-dilated input that makes a transposed convolution (JAX's
    `lax.conv_transpose` with `transpose_kernel=False`)."""
    if padding == "SAME":
        pad_len = k + s - 2
        pad_a = k - 1 if s > k - 1 else -(-pad_len // 2)
    else:
        pad_len = k + s - 2 + max(k - s, 0)
        pad_a = k - 1
    return pad_a, pad_len - pad_a


def ConvTranspose(out_chan: int, filter_shape: Shape, strides: Shape | None = None,
                  padding: Padding = "VALID", w_init: Initializer | None = None,
                  b_init: Initializer = inits.zeros) -> Layer:
    """A transposed convolution ("deconvolution"), channels last: it upsamples by `strides`.

    Computed as `lax.conv_transpose` does (with `transpose_kernel=False`): the input is
    dilated by `strides` (zeros between pixels), padded, and convolved with the kernel.
    With "SAME" the output is `input * stride` per axis; with "VALID` it is
    `input * stride + max(k - stride, 0)`.

    Args:
      out_chan: number of output channels.
      filter_shape: spatial size of the kernel (1, 2 or 3 axes).
      strides: upsampling factor per spatial axis (default 1).
      padding: "VALID" (default), "SAME" or explicit `((lo, hi), ...)` pairs for the
        dilated input.
      w_init: initializer of the `(*filter_shape, C, out_chan)` kernel.
      b_init: bias initializer.

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.ConvTranspose(2, (3, 3), strides=(2, 2), padding="SAME")
        >>> init(nanofn.random.key(0), (-1, 4, 4, 3))[0]
        (-1, 8, 8, 2)
    """
    filter_shape = tuple(int(k) for k in filter_shape)
    n = len(filter_shape)
    name = f"ConvTranspose({out_chan}, {filter_shape})"
    dn = _dimension_numbers(n)
    strides = _tuple(strides if strides is not None else 1, n, name, "strides")
    w_init = w_init if w_init is not None else inits.glorot_normal()
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"{name}: padding must be 'SAME', 'VALID' or explicit pairs, got "
                             f"{padding!r}")
        pads = [_transpose_padding(k, s, padding.upper()) for k, s in zip(filter_shape, strides)]
    else:
        pads = _explicit_padding(name, padding, (-1,) * n, filter_shape, strides, (1,) * n)

    def out_shape(input_shape):
        need_rank(name, input_shape, n + 2, "N, spatial..., C")
        spatial = []
        for size, k, s, p in zip(input_shape[1:-1], filter_shape, strides, pads):
            if size < 0:
                spatial.append(-1)
                continue
            o = (size - 1) * s + 1 + p[0] + p[1] - k + 1
            if o < 1:
                raise ValueError(f"{name}: inputs of shape {fmt_shape(input_shape)} give an "
                                 "empty output with this padding")
            spatial.append(o)
        return (input_shape[0],) + tuple(spatial) + (out_chan,)

    def init_params(rng, input_shape):
        in_chan = known(name, input_shape[-1], "the channel axis", input_shape)
        return {"w": w_init(_key(rng, 0), filter_shape + (in_chan, out_chan)),
                "b": b_init(_key(rng, 1), (out_chan,))}

    def forward(params, x, **kwargs):
        x = fnp.asarray(x)
        w = params["w"]
        _ndim_check(name, x, n + 2, "N, spatial..., C")
        if x.shape[-1] != w.shape[-2]:
            raise ValueError(f"{name}: the kernel expects {w.shape[-2]} input channels on the "
                             f"last axis, got inputs of shape {fmt_shape(tuple(x.shape))}")
        y = lax.conv_general_dilated(x, w, (1,) * n, [tuple(p) for p in pads], strides,
                                     None, dn, 1)
        return y + params["b"]

    return leaf_layer(name, out_shape, init_params, forward)


# ------------------------------------------------------------------------ pooling


def _window_counts(in_sizes, window, strides, pads):
    """How many real (unpadded) inputs each pooling window covers, as a numpy array."""
    per_axis = []
    for size, k, s, (lo, hi) in zip(in_sizes, window, strides, pads):
        n_out = (size + lo + hi - k) // s + 1
        start = np.arange(n_out) * s - lo
        per_axis.append(np.minimum(start + k, size) - np.maximum(start, 0))
    counts = per_axis[0]
    for c in per_axis[1:]:
        counts = np.multiply.outer(counts, c)
    return counts


def _pooling(kind, window_shape, strides, padding):
    window_shape = tuple(int(k) for k in window_shape)
    n = len(window_shape)
    name = f"{kind}({window_shape})"
    _spatial_letters(n)
    strides = _tuple(strides, n, name, "strides") if strides is not None else (1,) * n
    ones = (1,) * n
    _explicit_padding(name, padding, (-1,) * n, window_shape, strides, ones)  # validate

    def out_shape(input_shape):
        need_rank(name, input_shape, n + 2, "N, spatial..., C")
        in_sizes = input_shape[1:-1]
        pads = _explicit_padding(name, padding, in_sizes, window_shape, strides, ones)
        pads = [p if p is not None else (0, 0) for p in pads]
        spatial = _window_out_sizes(name, input_shape, in_sizes, window_shape, strides, ones,
                                    pads)
        return (input_shape[0],) + spatial + (input_shape[-1],)

    def forward(params, x, **kwargs):
        x = fnp.asarray(x)
        _ndim_check(name, x, n + 2, "N, spatial..., C")
        in_sizes = tuple(x.shape[1:-1])
        pads = _explicit_padding(name, padding, in_sizes, window_shape, strides, ones)
        full_pads = [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)]
        dims, steps = (1,) + window_shape + (1,), (1,) + strides + (1,)
        if kind == "MaxPool":
            init = np.array(-np.inf, x.dtype)
            return lax.reduce_window(x, init, lax.max, dims, steps, full_pads)
        total = lax.reduce_window(x, np.array(0, x.dtype), lax.add, dims, steps, full_pads)
        if kind == "SumPool":
            return total
        counts = _window_counts(in_sizes, window_shape, strides, pads)
        return total / np.asarray(counts[..., None], x.dtype)

    return leaf_layer(name, out_shape, None, forward)


def MaxPool(window_shape: Shape, strides: Shape | None = None, padding: Padding = "VALID") -> Layer:
    """Max pooling over 1, 2 or 3 spatial axes (`len(window_shape)`), channels last.

    Args:
      window_shape: pooling window per spatial axis, e.g. `(2, 2)`.
      strides: step per spatial axis (default 1, as in stax; pass `window_shape` for
        non-overlapping windows).
      padding: "VALID" (default), "SAME" or explicit `((lo, hi), ...)` pairs (padded
        positions never win the max).

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.MaxPool((2, 2), strides=(2, 2))
        >>> init(nanofn.random.key(0), (-1, 8, 8, 3))[0]
        (-1, 4, 4, 3)
    """
    return _pooling("MaxPool", window_shape, strides, padding)


def AvgPool(window_shape: Shape, strides: Shape | None = None, padding: Padding = "VALID") -> Layer:
    """Average pooling over 1, 2 or 3 spatial axes, channels last.

    Each output is the mean of the real inputs under its window: padded positions are
    not counted (stax's convention; so with "SAME" padding the border windows average
    fewer values).

    Args:
      window_shape: pooling window per spatial axis.
      strides: step per spatial axis (default 1).
      padding: "VALID" (default), "SAME" or explicit pairs.

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.AvgPool((2,), strides=(2,))
        >>> apply((), nanofn.numpy.array([[[1.0], [3.0], [5.0], [7.0]]])).ravel()
        Array([2., 6.], dtype=float32)
    """
    return _pooling("AvgPool", window_shape, strides, padding)


def SumPool(window_shape: Shape, strides: Shape | None = None, padding: Padding = "VALID") -> Layer:
    """Sum pooling over 1, 2 or 3 spatial axes, channels last (padding adds zeros).

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.SumPool((2,), strides=(2,))
        >>> apply((), nanofn.numpy.array([[[1.0], [3.0], [5.0], [7.0]]])).ravel()
        Array([ 4., 12.], dtype=float32)
    """
    return _pooling("SumPool", window_shape, strides, padding)


def _global_pool(kind):
    name = kind

    def out_shape(input_shape):
        need_min_rank(name, input_shape, 3, "N, spatial..., C")
        return (input_shape[0], input_shape[-1])

    def forward(params, x, **kwargs):
        x = fnp.asarray(x)
        if x.ndim < 3:
            raise ValueError(f"{name}: expects inputs (N, spatial..., C) of rank >= 3, got "
                             f"shape {fmt_shape(tuple(x.shape))}")
        axes = tuple(range(1, x.ndim - 1))
        return fnp.mean(x, axis=axes) if kind == "GlobalAvgPool" else fnp.max(x, axis=axes)

    return leaf_layer(name, out_shape, None, forward, check_shapes=False)


GlobalAvgPool = _global_pool("GlobalAvgPool")
GlobalMaxPool = _global_pool("GlobalMaxPool")


def ZeroPad(padding: Padding) -> Layer:
    """Pads the spatial axes of `(N, *spatial, C)` inputs with zeros.

    Args:
      padding: one `(lo, hi)` pair or int per spatial axis, e.g. `((1, 1), (2, 2))` or
        `(1, 2)`; the number of entries sets the number of spatial axes.

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.ZeroPad(((1, 1), (0, 2)))
        >>> init(nanofn.random.key(0), (-1, 4, 4, 3))[0]
        (-1, 6, 6, 3)
    """
    pads = [(int(p), int(p)) if isinstance(p, (int, np.integer)) else tuple(int(v) for v in p)
            for p in padding]
    if any(len(p) != 2 or min(p) < 0 for p in pads):
        raise ValueError(f"ZeroPad: padding must be non-negative ints or (lo, hi) pairs, one "
                         f"per spatial axis, got {padding!r}")
    n = len(pads)
    name = f"ZeroPad({tuple(pads)})"

    def out_shape(input_shape):
        need_rank(name, input_shape, n + 2, "N, spatial..., C")
        spatial = tuple(d if d < 0 else d + lo + hi for d, (lo, hi) in zip(input_shape[1:-1],
                                                                             pads))
        return (input_shape[0],) + spatial + (input_shape[-1],)

    def forward(params, x, **kwargs):
        x = fnp.asarray(x)
        _ndim_check(name, x, n + 2, "N, spatial..., C")
        config = [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in pads] + [(0, 0, 0)]
        return lax.pad(x, np.array(0, x.dtype), config)

    return leaf_layer(name, out_shape, None, forward)


# ------------------------------------------------------------------------ reshaping


def _flatten():
    name = "Flatten"

    def out_shape(input_shape):
        need_min_rank(name, input_shape, 1, "batch first")
        return (input_shape[0], prod(input_shape[1:]))

    def forward(params, x, **kwargs):
        x = fnp.asarray(x)
        return fnp.reshape(x, (x.shape[0], -1)) if x.ndim else x

    return leaf_layer(name, out_shape, None, forward, check_shapes=False)


Flatten = _flatten()


def Reshape(new_shape: Shape) -> Layer:
    """Reshapes every example (all axes but the first, batch, axis) to `new_shape`.

    Args:
      new_shape: the per-example shape; one entry may be -1 (inferred).

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.Reshape((8, 8, 1))
        >>> init(nanofn.random.key(0), (-1, 64))[0]
        (-1, 8, 8, 1)
    """
    new_shape = tuple(int(d) for d in new_shape)
    name = f"Reshape({new_shape})"
    if sum(d == -1 for d in new_shape) > 1 or any(d < -1 for d in new_shape):
        raise ValueError(f"{name}: new_shape may hold at most one -1 and no other negative size")

    def resolve(example_shape):
        size = prod(example_shape)
        if -1 not in new_shape:
            if size >= 0 and size != math.prod(new_shape):
                raise ValueError(f"{name}: examples of shape {fmt_shape(example_shape)} "
                                 f"({size} values) cannot be reshaped to "
                                 f"{fmt_shape(new_shape)} ({math.prod(new_shape)} values)")
            return new_shape
        rest = math.prod(d for d in new_shape if d != -1)
        if size < 0:
            return new_shape
        if rest == 0 or size % rest:
            raise ValueError(f"{name}: examples of shape {fmt_shape(example_shape)} ({size} "
                             f"values) cannot be reshaped to {fmt_shape(new_shape)}")
        return tuple(size // rest if d == -1 else d for d in new_shape)

    def out_shape(input_shape):
        need_min_rank(name, input_shape, 1, "batch first")
        return (input_shape[0],) + resolve(input_shape[1:])

    def forward(params, x, **kwargs):
        x = fnp.asarray(x)
        return fnp.reshape(x, (x.shape[0],) + resolve(tuple(x.shape[1:])))

    return leaf_layer(name, out_shape, None, forward)


# ------------------------------------------------------------------------ dropout


def Dropout(rate: float) -> Layer:
    """Dropout: while training, zero each input with probability `rate` and scale the
    survivors by `1 / (1 - rate)`; the identity otherwise.

    Note `rate` is the probability of DROPPING a unit (as in Keras, PyTorch and Flax),
    the opposite of stax's `Dropout(rate)`, whose argument is the keep probability.

    Training is switched on per call: `apply(params, x, rng=key, training=True)`. The
    default `training=False` is evaluation: the layer returns its inputs unchanged.

    Args:
      rate: drop probability in [0, 1).

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.Dropout(0.5)
        >>> x = nanofn.numpy.ones((1000,))
        >>> y = apply((), x, rng=nanofn.random.key(0), training=True)
        >>> sorted(set(y.tolist())), bool(apply((), x) is x or (apply((), x) == x).all())
        ([0.0, 2.0], True)
    """
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"Dropout: rate is the probability of dropping a unit and must lie in "
                         f"[0, 1), got {rate}")
    name = f"Dropout(rate={rate})"

    def forward(params, x, *, rng=None, training=False, **kwargs):
        if not training or rate == 0.0:
            return x
        if rng is None:
            raise ValueError(
                f"{name}: training=True needs a PRNG key to draw the dropout mask. Call "
                "apply(params, inputs, rng=key, training=True) with a fresh key each step, "
                "e.g. key, step_key = nanofn.random.split(key); or pass training=False "
                "(the default) to evaluate without dropout.")
        x = fnp.asarray(x)
        keep = random.bernoulli(rng, 1.0 - rate, tuple(x.shape))
        return fnp.where(keep, x / (1.0 - rate), 0.0)

    return leaf_layer(name, lambda s: s, None, forward, check_shapes=False)


# ------------------------------------------------------------------------ normalisation


def _norm_params(feature_shape, center, scale, beta_init, gamma_init, rng):
    params = {}
    if scale:
        params["scale"] = gamma_init(_key(rng, 0), feature_shape)
    if center:
        params["offset"] = beta_init(_key(rng, 1), feature_shape)
    return params


def _scale_offset(y, params, expand):
    if "scale" in params:
        y = y * expand(params["scale"])
    if "offset" in params:
        y = y + expand(params["offset"])
    return y


def BatchNorm(axis: int | Shape | None = None, epsilon: float = 1e-5, center: bool = True,
              scale: bool = True, beta_init: Initializer = inits.zeros,
              gamma_init: Initializer = inits.ones, momentum: float = 0.99) -> Layer:
    """Batch normalisation, with running statistics kept in the layer's state.

    While training, each feature is normalised with the mean and variance of the current
    batch (over the axes in `axis`); those statistics also update exponential moving
    averages kept in the state, `{"mean", "var"}`. In evaluation the moving averages are
    used instead, so predictions do not depend on the batch.

    Calls (see docs/nn.md):

    * training, keeping statistics:
      `y, state = apply(params, x, state=state, training=True)`;
    * evaluation: `y, state = apply(params, x, state=state)` (state unchanged);
    * training without state: `y = apply(params, x, training=True)` (batch statistics,
      nothing kept, like stax's BatchNorm).

    Args:
      axis: axes to take statistics over; default all but the last (channel) axis.
      epsilon: added to the variance.
      center: learn an offset (`beta`, param "offset").
      scale: learn a scale (`gamma`, param "scale").
      beta_init: initializer of the offset (zeros).
      gamma_init: initializer of the scale (ones).
      momentum: weight of the old value in the moving averages:
        `new = momentum * old + (1 - momentum) * batch`.

    Example:
        >>> import nanofn
        >>> layer = nanofn.nn.BatchNorm()
        >>> _, params = layer.init(nanofn.random.key(0), (-1, 3))
        >>> _, state = layer.init_state((-1, 3))
        >>> x = nanofn.random.normal(nanofn.random.key(1), (16, 3)) * 5.0 + 2.0
        >>> y, state = layer.apply(params, x, state=state, training=True)
        >>> y.mean(0).round(4).tolist(), state["mean"].shape
        ([0.0, 0.0, -0.0], (3,))
    """
    name = "BatchNorm"
    momentum = float(momentum)

    def axes_of(ndim):
        if axis is None:
            return tuple(range(ndim - 1))
        ax = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        return tuple(sorted(a % ndim for a in ax))

    def feature_shape(input_shape):
        axes = axes_of(len(input_shape))
        shape = tuple(d for i, d in enumerate(input_shape) if i not in axes)
        for d in shape:
            known(name, d, "the feature axes", input_shape)
        return shape

    def out_shape(input_shape):
        need_min_rank(name, input_shape, 1, "batch first")
        feature_shape(input_shape)
        return input_shape

    def init_params(rng, input_shape):
        return _norm_params(feature_shape(input_shape), center, scale, beta_init,
                            gamma_init, rng)

    def initial_state(input_shape):
        shape = feature_shape(input_shape)
        return {"mean": fnp.zeros(shape), "var": fnp.ones(shape)}

    def forward(params, x, *, state=None, training=False, **kwargs):
        x = F._float(x)
        axes = axes_of(x.ndim)
        features = tuple(d for i, d in enumerate(x.shape) if i not in axes)

        def expand(v):
            return fnp.reshape(v, tuple(1 if i in axes else d for i, d in enumerate(x.shape)))

        for k, v in list(params.items()) + list((state or {}).items()):
            if tuple(v.shape) != features:
                raise ValueError(f"{name}: {k} has shape {tuple(v.shape)} but inputs of shape "
                                 f"{fmt_shape(tuple(x.shape))} have features {features}")
        if training:
            mean = fnp.mean(x, axis=axes, keepdims=True)
            var = fnp.mean(fnp.square(x - mean), axis=axes, keepdims=True)
            new_state = state
            if state is not None:
                m, v = lax.stop_gradient((fnp.reshape(mean, features),
                                          fnp.reshape(var, features)))
                # the state keeps its dtype, so a jitted step sees the same types every call
                new_state = {k: fnp.astype(momentum * state[k] + (1.0 - momentum) * batch,
                                           state[k].dtype)
                             for k, batch in (("mean", m), ("var", v))}
        else:
            if state is None:
                raise ValueError(
                    f"{name}: evaluation (training=False) normalises with the running "
                    "statistics, which live in the layer's state. Call "
                    "apply(params, inputs, state=state) with `_, state = "
                    "layer.init_state(input_shape)` (threaded through training with "
                    "apply(params, inputs, state=state, training=True)), or pass "
                    "training=True to normalise with batch statistics.")
            mean = fnp.astype(expand(state["mean"]), x.dtype)
            var = fnp.astype(expand(state["var"]), x.dtype)
            new_state = state
        y = (x - mean) * lax.rsqrt(var + epsilon)
        return _scale_offset(y, params, expand), new_state

    return leaf_layer(name, out_shape, init_params, forward, initial_state=initial_state)


def LayerNorm(axis: int | Shape | None = -1, epsilon: float = 1e-5, center: bool = True,
              scale: bool = True, beta_init: Initializer = inits.zeros,
              gamma_init: Initializer = inits.ones) -> Layer:
    """Layer normalisation: normalise each example over `axis` (default: the last), then
    scale and shift with learned per-feature parameters.

    Args:
      axis: axis or axes to normalise over (their sizes give the parameter shape).
      epsilon: added to the variance.
      center, scale: learn an offset / a scale.
      beta_init, gamma_init: their initializers.

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.LayerNorm()
        >>> _, params = init(nanofn.random.key(0), (-1, 4))
        >>> apply(params, nanofn.numpy.array([[1.0, 2.0, 3.0, 4.0]])).std().round(3)
        Array(1., dtype=float32)
    """
    name = "LayerNorm"

    def axes_of(ndim):
        ax = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        return tuple(sorted(a % ndim for a in ax))

    def out_shape(input_shape):
        need_min_rank(name, input_shape, 1, "features last")
        return input_shape

    def init_params(rng, input_shape):
        axes = axes_of(len(input_shape))
        shape = tuple(known(name, input_shape[a], "the normalised axes", input_shape)
                      for a in axes)
        return _norm_params(shape, center, scale, beta_init, gamma_init, rng)

    def forward(params, x, **kwargs):
        x = F._float(x)
        axes = axes_of(x.ndim)
        if axes == (x.ndim - 1,):  # the kernel primitive: one pass forward, one backward
            from nanofn.ops import _nn
            c = x.shape[-1]
            gamma = params.get("scale", fnp.ones((c,), x.dtype))
            beta = params.get("offset", fnp.zeros((c,), x.dtype))
            return _nn.layer_norm(x, fnp.asarray(gamma, x.dtype), fnp.asarray(beta, x.dtype),
                                  epsilon=epsilon)
        y = F.standardize(x, axis=axes, epsilon=epsilon)

        def expand(v):
            return fnp.reshape(v, tuple(d if i in axes else 1 for i, d in enumerate(x.shape)))
        return _scale_offset(y, params, expand)

    return leaf_layer(name, out_shape, init_params, forward)


def GroupNorm(num_groups: int = 32, epsilon: float = 1e-5, center: bool = True, scale: bool = True,
              beta_init: Initializer = inits.zeros, gamma_init: Initializer = inits.ones) -> Layer:
    """Group normalisation (Wu & He, 2018): split the channels (last axis) into
    `num_groups` groups and normalise each example's group over its channels and all
    spatial positions; then a learned per-channel scale and offset.

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.GroupNorm(2)
        >>> init(nanofn.random.key(0), (-1, 5, 5, 4))[1]["scale"].shape
        (4,)
    """
    name = f"GroupNorm({num_groups})"
    g = int(num_groups)

    def out_shape(input_shape):
        need_min_rank(name, input_shape, 2, "N, ..., C")
        c = input_shape[-1]
        if c >= 0 and c % g:
            raise ValueError(f"{name}: the {c} channels must be a multiple of num_groups ({g})")
        return input_shape

    def init_params(rng, input_shape):
        c = known(name, input_shape[-1], "the channel axis", input_shape)
        return _norm_params((c,), center, scale, beta_init, gamma_init, rng)

    def forward(params, x, **kwargs):
        x = F._float(x)
        c = x.shape[-1]
        if c % g:
            raise ValueError(f"{name}: the {c} channels of inputs of shape "
                             f"{fmt_shape(tuple(x.shape))} are not a multiple of {g}")
        grouped = fnp.reshape(x, tuple(x.shape[:-1]) + (g, c // g))
        axes = tuple(range(1, grouped.ndim - 2)) + (grouped.ndim - 1,)
        y = fnp.reshape(F.standardize(grouped, axis=axes, epsilon=epsilon), tuple(x.shape))
        return _scale_offset(y, params, lambda v: v)

    return leaf_layer(name, out_shape, init_params, forward)


# ------------------------------------------------------------------------ embedding


def Embedding(num_embeddings: int, features: int,
              embedding_init: Initializer | None = None) -> Layer:
    """A lookup table: integer ids of shape `(...)` become vectors `(..., features)`.

    Args:
      num_embeddings: vocabulary size (ids lie in `[0, num_embeddings)`).
      features: size of each vector.
      embedding_init: initializer of the `(num_embeddings, features)` table (default:
        normal with variance `1 / features`).

    Returns:
      A layer with params `{"embeddings": (num_embeddings, features)}`, and a method
      `attend(params, query)` giving `query @ embeddings.T` (flax's `Embed.attend`): the
      logits of an output head tied to the input embedding.

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.Embedding(10, 4)
        >>> _, params = init(nanofn.random.key(0), (-1, 7))
        >>> apply(params, nanofn.numpy.zeros((2, 7), dtype="int32")).shape
        (2, 7, 4)
        >>> nanofn.nn.Embedding(10, 4).attend(params, nanofn.numpy.ones((2, 4))).shape
        (2, 10)
    """
    name = f"Embedding({num_embeddings}, {features})"
    embedding_init = embedding_init if embedding_init is not None else \
        inits.variance_scaling(1.0, "fan_in", "normal", in_axis=-1, out_axis=-2)

    def out_shape(input_shape):
        if not isinstance(input_shape, tuple):
            raise ValueError(f"{name}: expects one input of integer ids")
        return input_shape + (features,)

    def init_params(rng, input_shape):
        return {"embeddings": embedding_init(_key(rng, 0), (num_embeddings, features))}

    def forward(params, ids, **kwargs):
        ids = fnp.asarray(ids)
        if not fnp.issubdtype(ids.dtype, fnp.integer):
            raise TypeError(f"{name}: inputs must be integer ids, got dtype {ids.dtype}")
        if not isinstance(ids, Tracer) and ids.size:
            lo, hi = int(fnp.min(ids)), int(fnp.max(ids))
            if lo < 0 or hi >= num_embeddings:
                raise ValueError(f"{name}: ids must lie in [0, {num_embeddings}), found "
                                 f"{lo if lo < 0 else hi}")
        return fnp.take(params["embeddings"], ids, axis=0)

    layer = leaf_layer(name, out_shape, init_params, forward)

    def attend(params, query):
        """Scores of `query (..., features)` against every embedding: `query @ table.T`,
        the output head of a model whose input and output embeddings are tied."""
        return fnp.asarray(query) @ fnp.transpose(params["embeddings"])

    layer.attend = attend
    return layer


# ------------------------------------------------------------------------ resampling


def PixelShuffle(upscale_factor: int) -> Layer:
    """Rearranges channels into space (TensorFlow's `depth_to_space`, channels last):
    `(N, H, W, C * r * r) -> (N, H * r, W * r, C)`, where input channel
    `(i * r + j) * C + c` goes to output pixel `(h * r + i, w * r + j)`, channel `c`.

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.PixelShuffle(2)
        >>> init(nanofn.random.key(0), (-1, 3, 3, 8))[0]
        (-1, 6, 6, 2)
    """
    r = int(upscale_factor)
    name = f"PixelShuffle({r})"

    def out_shape(input_shape):
        need_rank(name, input_shape, 4, "N, H, W, C")
        n, h, w, c = input_shape
        c = known(name, c, "the channel axis", input_shape)
        if c % (r * r):
            raise ValueError(f"{name}: the {c} channels must be a multiple of r * r = {r * r}")
        return (n, -1 if h < 0 else h * r, -1 if w < 0 else w * r, c // (r * r))

    def forward(params, x, **kwargs):
        x = fnp.asarray(x)
        _ndim_check(name, x, 4, "N, H, W, C")
        n, h, w, c = x.shape
        y = fnp.reshape(x, (n, h, w, r, r, c // (r * r)))
        y = fnp.transpose(y, (0, 1, 3, 2, 4, 5))
        return fnp.reshape(y, (n, h * r, w * r, c // (r * r)))

    return leaf_layer(name, out_shape, None, forward)


def _linear_weights(n_in, factor):
    """`(n_in * factor, n_in)` matrix of linear interpolation with half-pixel centres
    (edges clamped): PyTorch's `align_corners=False`, jax.image.resize's "linear"."""
    n_out = n_in * factor
    centres = (np.arange(n_out) + 0.5) / factor - 0.5
    centres = np.clip(centres, 0.0, n_in - 1)
    lo = np.floor(centres).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = centres - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1.0 - frac
    m[np.arange(n_out), hi] += frac
    return m


def Upsample(scale_factor: int | Shape, method: str = "nearest") -> Layer:
    """Upsamples the spatial axes of `(N, *spatial, C)` inputs by integer factors.

    Args:
      scale_factor: an int per spatial axis (a tuple; its length sets the number of
        spatial axes), or an int for 2-D inputs.
      method: "nearest" (repeat each pixel) or "bilinear" (also "linear"/"trilinear":
        separable linear interpolation with half-pixel centres and clamped edges, like
        PyTorch's `align_corners=False`).

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.Upsample(2)
        >>> apply((), nanofn.numpy.array([[[[1.0], [2.0]]]])).ravel()
        Array([1., 1., 2., 2., 1., 1., 2., 2.], dtype=float32)
    """
    factors = (int(scale_factor),) * 2 if isinstance(scale_factor, (int, np.integer)) \
        else tuple(int(f) for f in scale_factor)
    if method not in ("nearest", "bilinear", "linear", "trilinear"):
        raise ValueError(f"Upsample: method must be 'nearest' or 'bilinear', got {method!r}")
    if any(f < 1 for f in factors):
        raise ValueError(f"Upsample: scale factors must be positive ints, got {scale_factor}")
    n = len(factors)
    name = f"Upsample({factors}, {method!r})"

    def out_shape(input_shape):
        need_rank(name, input_shape, n + 2, "N, spatial..., C")
        spatial = tuple(-1 if d < 0 else d * f for d, f in zip(input_shape[1:-1], factors))
        return (input_shape[0],) + spatial + (input_shape[-1],)

    def forward(params, x, **kwargs):
        x = fnp.asarray(x)
        _ndim_check(name, x, n + 2, "N, spatial..., C")
        if method == "nearest":
            shape = tuple(x.shape)
            expanded = [shape[0]]
            for d, f in zip(shape[1:-1], factors):
                expanded += [d, f]
            y = fnp.reshape(x, (shape[0],) + sum(((d, 1) for d in shape[1:-1]), ())
                            + (shape[-1],))
            y = fnp.broadcast_to(y, tuple(expanded) + (shape[-1],))
            return fnp.reshape(y, (shape[0],) + tuple(d * f for d, f in zip(shape[1:-1],
                                                                             factors))
                               + (shape[-1],))
        y = F._float(x)
        for axis, f in enumerate(factors, start=1):
            if f == 1:
                continue
            m = np.asarray(_linear_weights(y.shape[axis], f), y.dtype)
            y = fnp.moveaxis(fnp.tensordot(m, y, axes=([1], [axis])), 0, axis)
        return y

    return leaf_layer(name, out_shape, None, forward)


# ------------------------------------------------------------------------ elementwise


def elementwise(fun, **fun_kwargs):
    """A parameter-free layer applying `fun(inputs, **fun_kwargs)` (any shape-preserving
    function).

    Example:
        >>> import nanofn
        >>> init, apply = nanofn.nn.elementwise(nanofn.nn.leaky_relu, negative_slope=0.5)
        >>> apply((), nanofn.numpy.array([-2.0, 2.0]))
        Array([-1.,  2.], dtype=float32)
    """
    name = f"elementwise({getattr(fun, '__name__', 'fun')})"

    def forward(params, x, **kwargs):
        return fun(x, **fun_kwargs)

    return leaf_layer(name, lambda s: s, None, forward, check_shapes=False)


Tanh = elementwise(fnp.tanh)
Relu = elementwise(F.relu)
Relu6 = elementwise(F.relu6)
Exp = elementwise(fnp.exp)
LogSoftmax = elementwise(F.log_softmax, axis=-1)
Softmax = elementwise(F.softmax, axis=-1)
Softplus = elementwise(F.softplus)
Sigmoid = elementwise(F.sigmoid)
LogSigmoid = elementwise(F.log_sigmoid)
Elu = elementwise(F.elu)
LeakyRelu = elementwise(F.leaky_relu)
Selu = elementwise(F.selu)
Celu = elementwise(F.celu)
Gelu = elementwise(F.gelu)
Silu = elementwise(F.silu)
HardTanh = elementwise(F.hard_tanh)
