"""stax: JAX's small neural-network library, with JAX's exact semantics.

A layer is an `(init_fun, apply_fun)` pair:

- `init_fun(rng, input_shape) -> (output_shape, params)`; `-1` in a shape stands for a
  size not known yet (usually the batch);
- `apply_fun(params, inputs, **kwargs) -> outputs`; `rng=` is a PRNG key (Dropout needs it).

Parameters are tuples and lists in `jax.example_libraries.stax`'s order (`Dense` gives
`(W, b)`, `serial` a list with one entry per layer, `()` for parameter-free layers), and
the same key gives the same initial weights as JAX. Two stax conventions worth knowing:
`Dropout(rate)` KEEPS each unit with probability `rate`, and `BatchNorm` always
normalises with the statistics of the batch it is given (it keeps no running averages).
The native `nanofn.nn` layers use named parameters and the usual meanings instead.

Example:
    >>> import nanofn
    >>> from nanofn.example_libraries import stax
    >>> init_fun, apply_fun = stax.serial(stax.Dense(4), stax.Relu, stax.Dense(2),
    ...                                   stax.LogSoftmax)
    >>> out_shape, params = init_fun(nanofn.random.PRNGKey(0), (-1, 3))
    >>> out_shape, [tuple(p.shape for p in layer) for layer in params]
    ((-1, 2), [((3, 4), (4,)), (), ((4, 2), (2,)), ()])
    >>> apply_fun(params, nanofn.numpy.ones((5, 3))).shape
    (5, 2)
"""

from __future__ import annotations

import functools
import math

import numpy as np

from nanofn import numpy as jnp
from nanofn import ops as lax
from nanofn import random
from nanofn.nn import (
    elu, gelu, leaky_relu, log_softmax, relu, selu, sigmoid, softmax, softplus, standardize,
)
from nanofn.nn.initializers import glorot_normal, normal, ones, zeros

__all__ = [
    "AvgPool", "BatchNorm", "Conv", "Conv1DTranspose", "ConvTranspose", "Dense", "Dropout",
    "Elu", "Exp", "FanInConcat", "FanInSum", "FanOut", "Flatten", "Gelu", "GeneralConv",
    "GeneralConvTranspose", "Identity", "LeakyRelu", "LogSoftmax", "MaxPool", "Relu", "Selu",
    "Sigmoid", "Softmax", "Softplus", "SumPool", "Tanh", "elementwise", "glorot",
    "glorot_normal", "logsoftmax", "normal", "ones", "parallel", "randn", "serial",
    "shape_dependent", "zeros", "relu", "log_softmax", "softmax", "softplus", "sigmoid",
    "elu", "leaky_relu", "selu", "gelu", "standardize",
]

# stax's aliases, kept for programs that use them
glorot = glorot_normal
randn = normal
logsoftmax = log_softmax


# ------------------------------------------------------------------ shape helpers
# stax computes output shapes before any array exists, with -1 allowed for unknown
# sizes; these follow lax's shape rules on plain integers.

def _window_out(size, window, stride, lo, hi, dilation=1):
    if size < 0:
        return -1
    span = (window - 1) * dilation + 1
    return max(0, (size + lo + hi - span) // stride + 1)


def _pads(in_shape, window_shape, strides, padding):
    if isinstance(padding, str):
        # padtype_to_pads needs real sizes; an unknown (-1) axis gets a dummy size and
        # its padding is never used, since its output size stays -1
        known = tuple(d if d >= 0 else w for d, w in zip(in_shape, window_shape))
        return tuple(tuple(p) for p in lax.padtype_to_pads(known, window_shape, strides,
                                                           padding))
    return tuple(tuple(p) for p in padding)


def _conv_shape(lhs_shape, rhs_shape, strides, padding, dimension_numbers):
    """Output shape of a convolution, in the output spec's layout (lax's
    conv_general_shape_tuple)."""
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    spatial = [c for c in lhs_spec if c not in "NC"]
    rhs_spatial = [c for c in rhs_spec if c not in "IO"]
    in_sp = [lhs_shape[lhs_spec.index(c)] for c in spatial]
    win = [rhs_shape[rhs_spec.index(c)] for c in rhs_spatial]
    pads = _pads(in_sp, win, strides, padding)
    out_sp = [_window_out(n, w, s, lo, hi) for n, w, s, (lo, hi)
              in zip(in_sp, win, strides, pads)]
    sizes = {"N": lhs_shape[lhs_spec.index("N")], "C": rhs_shape[rhs_spec.index("O")]}
    sizes.update(zip(spatial, out_sp))
    return tuple(sizes[c] for c in _out_letters(lhs_spec, out_spec))


def _out_letters(lhs_spec, out_spec):
    # out_spec uses the same letters as lhs_spec for spatial axes in JAX's convention
    # ('NHWC' -> 'NHWC'); map them by position among the spatial axes
    lhs_sp = [c for c in lhs_spec if c not in "NC"]
    out_sp = [c for c in out_spec if c not in "NC"]
    rename = dict(zip(out_sp, lhs_sp))
    return [rename.get(c, c) for c in out_spec]


def _conv_transpose_shape(lhs_shape, rhs_shape, strides, padding, dimension_numbers):
    """Output shape of lax.conv_transpose (lax's conv_transpose_shape_tuple)."""
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    spatial = [c for c in lhs_spec if c not in "NC"]
    rhs_spatial = [c for c in rhs_spec if c not in "IO"]
    in_sp = [lhs_shape[lhs_spec.index(c)] for c in spatial]
    win = [rhs_shape[rhs_spec.index(c)] for c in rhs_spatial]
    out_sp = []
    for n, w, s in zip(in_sp, win, strides):
        if n < 0:
            out_sp.append(-1)
        elif padding == "SAME":
            out_sp.append(n * s)
        elif padding == "VALID":
            out_sp.append(n * s + max(w - s, 0))
        else:
            raise ValueError(f"ConvTranspose: padding must be 'SAME' or 'VALID' here, got "
                             f"{padding!r}")
    sizes = {"N": lhs_shape[lhs_spec.index("N")], "C": rhs_shape[rhs_spec.index("O")]}
    sizes.update(zip(spatial, out_sp))
    return tuple(sizes[c] for c in _out_letters(lhs_spec, out_spec))


# ------------------------------------------------------------------------ layers

def Dense(out_dim, W_init=glorot_normal(), b_init=normal()):
    """Dense (fully connected) layer: `inputs @ W + b`, params `(W, b)`.

    Example:
        >>> import nanofn
        >>> from nanofn.example_libraries import stax
        >>> init_fun, apply_fun = stax.Dense(3)
        >>> out_shape, (W, b) = init_fun(nanofn.random.PRNGKey(0), (-1, 2))
        >>> out_shape, W.shape, b.shape
        ((-1, 3), (2, 3), (3,))
    """
    def init_fun(rng, input_shape):
        output_shape = tuple(input_shape[:-1]) + (out_dim,)
        k1, k2 = random.split(rng)
        W, b = W_init(k1, (input_shape[-1], out_dim)), b_init(k2, (out_dim,))
        return output_shape, (W, b)

    def apply_fun(params, inputs, **kwargs):
        W, b = params
        return jnp.dot(inputs, W) + b

    return init_fun, apply_fun


def GeneralConv(dimension_numbers, out_chan, filter_shape, strides=None, padding="VALID",
                W_init=None, b_init=normal(1e-6)):
    """Convolution layer with explicit dimension numbers `(lhs_spec, rhs_spec, out_spec)`,
    for example `('NHWC', 'HWIO', 'NHWC')`. Params `(W, b)`; `W` is laid out as `rhs_spec`.

    Example:
        >>> import nanofn
        >>> from nanofn.example_libraries import stax
        >>> init_fun, apply_fun = stax.GeneralConv(('NCHW', 'OIHW', 'NCHW'), 4, (3, 3))
        >>> out_shape, (W, b) = init_fun(nanofn.random.PRNGKey(0), (2, 1, 8, 8))
        >>> out_shape, W.shape, b.shape
        ((2, 4, 6, 6), (4, 1, 3, 3), (1, 4, 1, 1))
    """
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    one = (1,) * len(filter_shape)
    strides = tuple(strides or one)
    W_init = W_init or glorot_normal(rhs_spec.index("I"), rhs_spec.index("O"))

    def init_fun(rng, input_shape):
        filter_iter = iter(filter_shape)
        kernel_shape = [out_chan if c == "O" else
                        input_shape[lhs_spec.index("C")] if c == "I" else
                        next(filter_iter) for c in rhs_spec]
        output_shape = _conv_shape(input_shape, kernel_shape, strides, padding,
                                   dimension_numbers)
        bias_shape = [out_chan if c == "C" else 1 for c in out_spec]
        k1, k2 = random.split(rng)
        W, b = W_init(k1, tuple(kernel_shape)), b_init(k2, tuple(bias_shape))
        return output_shape, (W, b)

    def apply_fun(params, inputs, **kwargs):
        W, b = params
        return lax.conv_general_dilated(inputs, W, strides, padding, one, one,
                                        dimension_numbers=dimension_numbers) + b

    return init_fun, apply_fun


Conv = functools.partial(GeneralConv, ("NHWC", "HWIO", "NHWC"))
Conv.__doc__ = "2-D convolution layer on NHWC inputs with an HWIO kernel (see GeneralConv)."


def GeneralConvTranspose(dimension_numbers, out_chan, filter_shape, strides=None,
                         padding="VALID", W_init=None, b_init=normal(1e-6)):
    """Transposed-convolution layer (`lax.conv_transpose`), params `(W, b)`.

    Example:
        >>> import nanofn
        >>> from nanofn.example_libraries import stax
        >>> init_fun, apply_fun = stax.ConvTranspose(2, (3, 3), strides=(2, 2))
        >>> init_fun(nanofn.random.PRNGKey(0), (1, 4, 4, 3))[0]
        (1, 9, 9, 2)
    """
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    one = (1,) * len(filter_shape)
    strides = tuple(strides or one)
    W_init = W_init or glorot_normal(rhs_spec.index("I"), rhs_spec.index("O"))

    def init_fun(rng, input_shape):
        filter_iter = iter(filter_shape)
        kernel_shape = [out_chan if c == "O" else
                        input_shape[lhs_spec.index("C")] if c == "I" else
                        next(filter_iter) for c in rhs_spec]
        output_shape = _conv_transpose_shape(input_shape, kernel_shape, strides, padding,
                                             dimension_numbers)
        bias_shape = [out_chan if c == "C" else 1 for c in out_spec]
        k1, k2 = random.split(rng)
        W, b = W_init(k1, tuple(kernel_shape)), b_init(k2, tuple(bias_shape))
        return output_shape, (W, b)

    def apply_fun(params, inputs, **kwargs):
        W, b = params
        return lax.conv_transpose(inputs, W, strides, padding,
                                  dimension_numbers=dimension_numbers) + b

    return init_fun, apply_fun


Conv1DTranspose = functools.partial(GeneralConvTranspose, ("NHC", "HIO", "NHC"))
ConvTranspose = functools.partial(GeneralConvTranspose, ("NHWC", "HWIO", "NHWC"))


def _standardize(x, axis, epsilon):
    # jax.nn.standardize's default ("fast") variance, mean(x^2) - mean(x)^2 clipped at 0,
    # which stax's BatchNorm uses; nanofn.nn.standardize uses the two-pass formula. The two
    # differ only by rounding, but with small batches BatchNorm amplifies that difference
    # over a few training steps, so the compatibility layer follows JAX's formula.
    mean = jnp.mean(x, axis, keepdims=True)
    variance = jnp.maximum(jnp.mean(jnp.square(x), axis, keepdims=True) - jnp.square(mean), 0)
    return (x - mean) * lax.rsqrt(variance + epsilon)


def BatchNorm(axis=(0, 1, 2), epsilon=1e-5, center=True, scale=True, beta_init=zeros,
              gamma_init=ones):
    """Batch normalisation over `axis`, always with the statistics of the given batch
    (stax keeps no running averages). Params `(beta, gamma)`, `()` for a disabled one.

    Example:
        >>> import nanofn
        >>> from nanofn.example_libraries import stax
        >>> init_fun, apply_fun = stax.BatchNorm(axis=0)
        >>> _, params = init_fun(nanofn.random.PRNGKey(0), (-1, 3))
        >>> x = nanofn.numpy.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
        >>> apply_fun(params, x).round(3)
        Array([[-1.,  0.,  1.],
               [ 1.,  0., -1.]], dtype=float32)
    """
    _beta_init = lambda rng, shape: beta_init(rng, shape) if center else ()
    _gamma_init = lambda rng, shape: gamma_init(rng, shape) if scale else ()
    axis = (axis,) if np.isscalar(axis) else tuple(axis)

    def init_fun(rng, input_shape):
        shape = tuple(d for i, d in enumerate(input_shape) if i not in axis)
        k1, k2 = random.split(rng)
        beta, gamma = _beta_init(k1, shape), _gamma_init(k2, shape)
        return input_shape, (beta, gamma)

    def apply_fun(params, x, **kwargs):
        beta, gamma = params
        ed = tuple(None if i in axis else slice(None) for i in range(x.ndim))
        z = _standardize(x, axis, epsilon)
        if center and scale:
            return gamma[ed] * z + beta[ed]
        if center:
            return z + beta[ed]
        if scale:
            return gamma[ed] * z
        return z

    return init_fun, apply_fun


def elementwise(fun, **fun_kwargs):
    """A parameter-free layer applying `fun(inputs, **fun_kwargs)`.

    Example:
        >>> import nanofn
        >>> from nanofn.example_libraries import stax
        >>> init_fun, apply_fun = stax.elementwise(nanofn.nn.leaky_relu, negative_slope=0.5)
        >>> apply_fun((), nanofn.numpy.array([-2.0, 3.0]))
        Array([-1.,  3.], dtype=float32)
    """
    init_fun = lambda rng, input_shape: (input_shape, ())
    apply_fun = lambda params, inputs, **kwargs: fun(inputs, **fun_kwargs)
    return init_fun, apply_fun


Tanh = elementwise(jnp.tanh)
Relu = elementwise(relu)
Exp = elementwise(jnp.exp)
LogSoftmax = elementwise(log_softmax, axis=-1)
Softmax = elementwise(softmax, axis=-1)
Softplus = elementwise(softplus)
Sigmoid = elementwise(sigmoid)
Elu = elementwise(elu)
LeakyRelu = elementwise(leaky_relu)
Selu = elementwise(selu)
Gelu = elementwise(gelu)


def _pooling_layer(reducer, init_val, rescaler=None):
    def PoolingLayer(window_shape, strides=None, padding="VALID", spec=None):
        """Pooling layer over the spatial axes (NHWC by default, or `spec`, e.g. 'NCHW')."""
        window_shape = tuple(window_shape)
        strides = tuple(strides or (1,) * len(window_shape))
        rescale = rescaler(window_shape, strides, padding) if rescaler else None
        if spec is None:
            non_spatial_axes = 0, len(window_shape) + 1
        else:
            non_spatial_axes = spec.index("N"), spec.index("C")
        for i in sorted(non_spatial_axes):
            window_shape = window_shape[:i] + (1,) + window_shape[i:]
            strides = strides[:i] + (1,) + strides[i:]

        def init_fun(rng, input_shape):
            pads = _pads(input_shape, window_shape, strides, padding)
            out_shape = tuple(_window_out(n, w, s, lo, hi) for n, w, s, (lo, hi)
                              in zip(input_shape, window_shape, strides, pads))
            return out_shape, ()

        def apply_fun(params, inputs, **kwargs):
            out = lax.reduce_window(inputs, init_val, reducer, window_shape, strides, padding)
            return rescale(out, inputs, spec) if rescale else out

        return init_fun, apply_fun
    return PoolingLayer


MaxPool = _pooling_layer(lax.max, -np.inf)
SumPool = _pooling_layer(lax.add, 0.0)


def _normalize_by_window_size(dims, strides, padding):
    def rescale(outputs, inputs, spec):
        if spec is None:
            non_spatial_axes = 0, inputs.ndim - 1
        else:
            non_spatial_axes = spec.index("N"), spec.index("C")
        spatial_shape = tuple(inputs.shape[i] for i in range(inputs.ndim)
                              if i not in non_spatial_axes)
        one = jnp.ones(spatial_shape, dtype=inputs.dtype)
        window_sizes = lax.reduce_window(one, 0.0, lax.add, dims, strides, padding)
        for i in sorted(non_spatial_axes):
            window_sizes = jnp.expand_dims(window_sizes, i)
        return outputs / window_sizes
    return rescale


# with padding, stax's AvgPool divides by the number of real (unpadded) inputs per window
AvgPool = _pooling_layer(lax.add, 0.0, _normalize_by_window_size)


def _flatten():
    def init_fun(rng, input_shape):
        return (input_shape[0], math.prod(input_shape[1:])), ()

    def apply_fun(params, inputs, **kwargs):
        return jnp.reshape(inputs, (inputs.shape[0], -1))

    return init_fun, apply_fun


Flatten = _flatten()


def _identity():
    init_fun = lambda rng, input_shape: (input_shape, ())
    apply_fun = lambda params, inputs, **kwargs: inputs
    return init_fun, apply_fun


Identity = _identity()


def FanOut(num):
    """Layer giving `num` copies of its input (a list), for use with `parallel`."""
    init_fun = lambda rng, input_shape: ([input_shape] * num, ())
    apply_fun = lambda params, inputs, **kwargs: [inputs] * num
    return init_fun, apply_fun


def _fan_in_sum():
    init_fun = lambda rng, input_shape: (input_shape[0], ())
    apply_fun = lambda params, inputs, **kwargs: sum(inputs)
    return init_fun, apply_fun


FanInSum = _fan_in_sum()


def FanInConcat(axis=-1):
    """Layer concatenating a list of inputs along `axis`."""
    def init_fun(rng, input_shape):
        ax = axis % len(input_shape[0])
        concat_size = sum(shape[ax] for shape in input_shape)
        out_shape = tuple(input_shape[0][:ax]) + (concat_size,) + tuple(input_shape[0][ax + 1:])
        return out_shape, ()

    def apply_fun(params, inputs, **kwargs):
        return jnp.concatenate(inputs, axis)

    return init_fun, apply_fun


def Dropout(rate, mode="train"):
    """Dropout that KEEPS each unit with probability `rate` (stax's meaning) and scales
    kept units by `1 / rate`; `mode` other than 'train' makes it the identity.

    Example:
        >>> import nanofn
        >>> from nanofn.example_libraries import stax
        >>> _, apply_fun = stax.Dropout(0.5)
        >>> y = apply_fun((), nanofn.numpy.ones(6), rng=nanofn.random.PRNGKey(0))
        >>> sorted(set(y.tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
    """
    def init_fun(rng, input_shape):
        return input_shape, ()

    def apply_fun(params, inputs, **kwargs):
        rng = kwargs.get("rng", None)
        if rng is None:
            raise ValueError(
                "Dropout layer requires apply_fun to be called with a PRNG key argument. "
                "That is, instead of `apply_fun(params, inputs)`, call it like "
                "`apply_fun(params, inputs, rng=key)` where `key` is a PRNG key (e.g. from "
                "`nanofn.random.PRNGKey`).")
        if mode == "train":
            keep = random.bernoulli(rng, rate, inputs.shape)
            return jnp.where(keep, inputs / rate, 0)
        return inputs

    return init_fun, apply_fun


# ------------------------------------------------------------------ combinators

def serial(*layers):
    """Compose layers in sequence; params are a list with one entry per layer.

    `init_fun` splits the key once per layer (`rng, layer_rng = split(rng)`), and
    `apply_fun` splits `rng=` into one key per layer, exactly as stax does.
    """
    nlayers = len(layers)
    init_funs, apply_funs = zip(*layers)

    def init_fun(rng, input_shape):
        params = []
        for init in init_funs:
            rng, layer_rng = random.split(rng)
            input_shape, param = init(layer_rng, input_shape)
            params.append(param)
        return input_shape, params

    def apply_fun(params, inputs, **kwargs):
        rng = kwargs.pop("rng", None)
        rngs = random.split(rng, nlayers) if rng is not None else (None,) * nlayers
        for fun, param, layer_rng in zip(apply_funs, params, rngs):
            inputs = fun(param, inputs, rng=layer_rng, **kwargs)
        return inputs

    return init_fun, apply_fun


def parallel(*layers):
    """Apply layers side by side to a sequence of inputs (often between FanOut and
    FanInSum); params are a tuple with one entry per layer."""
    nlayers = len(layers)
    init_funs, apply_funs = zip(*layers)

    def init_fun(rng, input_shape):
        rngs = random.split(rng, nlayers)
        # stax returns this zip iterator; callers unpack it as (output_shapes, params)
        return zip(*[init(r, shape) for init, r, shape in zip(init_funs, rngs, input_shape)])

    def apply_fun(params, inputs, **kwargs):
        rng = kwargs.pop("rng", None)
        rngs = random.split(rng, nlayers) if rng is not None else (None,) * nlayers
        return [f(p, x, rng=r, **kwargs) for f, p, x, r in zip(apply_funs, params, inputs, rngs)]

    return init_fun, apply_fun


def shape_dependent(make_layer):
    """A layer built by `make_layer(input_shape)` once the input shape is known."""
    def init_fun(rng, input_shape):
        return make_layer(input_shape)[0](rng, input_shape)

    def apply_fun(params, inputs, **kwargs):
        return make_layer(inputs.shape)[1](params, inputs, **kwargs)

    return init_fun, apply_fun
