"""Resizing, scaling and translating images by separable resampling kernels.

Each resized axis gets an `(input size, output size)` weight matrix: the kernel evaluated
at the distance between every input pixel's centre and every output pixel's centre mapped
back into the input (pixel centres at `i + 0.5`), stretched by the inverse scale when
downsampling with antialiasing, and normalised to sum to one. One `einsum` contracts the
image with all the matrices.
"""

from __future__ import annotations

import enum
import operator

import numpy as np

import nanofn
import nanofn.numpy as fnp
from nanofn import lax
from nanofn.numpy._dtypes import promote_float
from nanofn.numpy._lax_numpy import canonicalize_axis


def _lanczos_kernel(radius, x):
    y = radius * fnp.sin(np.pi * x) * fnp.sin(np.pi * x / radius)
    # y / (pi^2 x^2), with its limit 1 near x = 0
    out = fnp.where(x > 1e-3, y / fnp.where(x != 0, np.pi ** 2 * x ** 2, 1), 1)
    return fnp.where(x > radius, 0.0, out)


def _keys_cubic_kernel(x):
    # Keys' cubic convolution kernel with a = -0.5 (Pillow, TensorFlow, PyTorch antialiased)
    out = ((1.5 * x - 2.5) * x) * x + 1.0
    out = fnp.where(x >= 1.0, ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0, out)
    return fnp.where(x >= 2.0, 0.0, out)


def _opencv_cubic_kernel(x):
    # the cubic kernel with a = -0.75 that OpenCV and PyTorch (without antialiasing) use
    a = -0.75
    out = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    out = fnp.where(x >= 1.0, ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a, out)
    return fnp.where(x >= 2.0, 0.0, out)


def _triangle_kernel(x):
    return fnp.maximum(0.0, 1.0 - fnp.abs(x))


_AREA = object()  # the box filter is computed from interval overlaps, not a kernel


class ResizeMethod(enum.Enum):
    """Image resize method, as `jax.image.ResizeMethod`.

    `NEAREST` (nearest neighbour), `LINEAR` (triangle kernel), `LANCZOS3` and `LANCZOS5`
    (Lanczos kernels of radius 3 and 5), `CUBIC` (Keys' cubic kernel, a = -0.5),
    `CUBIC_PYTORCH` (PyTorch's bicubic: `CUBIC` with antialiasing, otherwise OpenCV's
    kernel with a = -0.75 and the edges repeated) and `AREA` (the average over each output
    pixel's area).

    Example:
        >>> from nanofn.image import ResizeMethod
        >>> ResizeMethod.from_string("bilinear")
        <ResizeMethod.LINEAR: 1>
    """

    NEAREST = 0
    LINEAR = 1
    LANCZOS3 = 2
    LANCZOS5 = 3
    CUBIC = 4
    CUBIC_PYTORCH = 5
    AREA = 6

    @staticmethod
    def from_string(s: str):
        """The method a string names (`"linear"`, `"bilinear"`, `"cubic"`, `"lanczos3"`, ...)."""
        names = {"nearest": ResizeMethod.NEAREST, "linear": ResizeMethod.LINEAR,
                 "bilinear": ResizeMethod.LINEAR, "trilinear": ResizeMethod.LINEAR,
                 "triangle": ResizeMethod.LINEAR, "lanczos3": ResizeMethod.LANCZOS3,
                 "lanczos5": ResizeMethod.LANCZOS5, "cubic": ResizeMethod.CUBIC,
                 "bicubic": ResizeMethod.CUBIC, "tricubic": ResizeMethod.CUBIC,
                 "cubic-pytorch": ResizeMethod.CUBIC_PYTORCH,
                 "bicubic-pytorch": ResizeMethod.CUBIC_PYTORCH, "area": ResizeMethod.AREA}
        if s not in names:
            raise ValueError(f'Unknown resize method "{s}"; use one of {sorted(names)}')
        return names[s]


_KERNELS = {
    ResizeMethod.LINEAR: (1, _triangle_kernel),
    ResizeMethod.LANCZOS3: (3, lambda x: _lanczos_kernel(3.0, x)),
    ResizeMethod.LANCZOS5: (5, lambda x: _lanczos_kernel(5.0, x)),
    ResizeMethod.CUBIC: (2, _keys_cubic_kernel),
    ResizeMethod.CUBIC_PYTORCH: (2, _opencv_cubic_kernel),
    ResizeMethod.AREA: (1, _AREA),
}

_MIN_TOTAL = 1000.0 * float(np.finfo(np.float32).eps)  # below it, a column's weights are zero


def _normalise(weights):
    total = fnp.sum(weights, axis=0, keepdims=True)
    return fnp.where(fnp.abs(total) > _MIN_TOTAL, weights / fnp.where(total != 0, total, 1), 0.0)


def _weight_matrix(input_size, output_size, scale, translation, kernel, antialias,
                   edge_padding, radius, dtype):
    """The `(input_size, output_size)` resampling matrix of one axis."""
    inv_scale = 1.0 / scale
    # downsampling with antialiasing widens the kernel to low-pass filter the input
    kernel_scale = fnp.maximum(inv_scale, 1.0) if antialias else 1.0
    # where each output pixel's centre falls in the input, as a fractional index
    sample_f = ((fnp.arange(output_size, dtype=dtype) + 0.5) * inv_scale
                - translation * inv_scale - 0.5)
    k = radius if edge_padding else 0  # edge padding also samples k pixels beyond each edge
    expanded = fnp.arange(-k, input_size + k, dtype=dtype)
    if kernel is _AREA:
        left_out = fnp.arange(output_size, dtype=dtype) * inv_scale - translation * inv_scale
        right_out = left_out + inv_scale
        left_in = fnp.arange(input_size, dtype=dtype)
        weights = fnp.maximum(0.0, fnp.minimum(right_out[None, :], left_in[:, None] + 1.0)
                              - fnp.maximum(left_out[None, :], left_in[:, None]))
    else:
        weights = kernel(fnp.abs(sample_f[None, :] - expanded[:, None]) / kernel_scale)
    if edge_padding:
        # the weights of pixels beyond the edges move onto the edge pixels
        clamped = np.clip(np.arange(-k, input_size + k), 0, input_size - 1)
        columns = np.broadcast_to(np.arange(output_size), (clamped.shape[0], output_size))
        matrix = fnp.zeros((input_size, output_size), dtype=dtype)
        return _normalise(matrix.at[clamped[:, None], columns].add(weights))
    weights = _normalise(weights)
    # output pixels whose centre falls outside the input get nothing
    inside = (sample_f >= -0.5) & (sample_f <= input_size - 0.5)
    return fnp.where(inside[None, :], weights, 0.0)


def _check_shape(fname, shape, image):
    try:
        shape = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"{fname}: shape must be a sequence of integers, got {shape!r}") from None
    if len(shape) != image.ndim:
        raise ValueError(f"{fname}: shape must have length equal to the number of dimensions "
                         f"of image; {shape} vs {tuple(image.shape)}")
    if any(d < 0 for d in shape):
        raise ValueError(f"{fname}: shape must not have negative sizes, got {shape}")
    return shape


def _method(fname, method):
    if isinstance(method, str):
        return ResizeMethod.from_string(method)
    if not isinstance(method, ResizeMethod):
        raise TypeError(f"{fname}: method must be a ResizeMethod or its name, got {method!r}")
    return method


def _scale_and_translate(image, shape, spatial_dims, scales, translations, method, antialias,
                         precision, dtype):
    if method == ResizeMethod.CUBIC_PYTORCH and antialias:
        method = ResizeMethod.CUBIC
    radius, kernel = _KERNELS[method]
    edge_padding = method == ResizeMethod.CUBIC_PYTORCH and not antialias
    if not spatial_dims:
        return image
    ndim = image.ndim
    operands = [image, list(range(ndim))]
    out_indices = list(range(ndim))
    for i, d in enumerate(spatial_dims):
        w = _weight_matrix(image.shape[d], shape[d], scales[i], translations[i], kernel,
                           antialias, edge_padding, radius, dtype)
        operands += [w.astype(image.dtype), [d, ndim + i]]
        out_indices[d] = ndim + i
    return fnp.einsum(*operands, out_indices, precision=precision)


def _as_factors(fname, name, value, k):
    """Scales or translations as a list of k scalars: nanofn arrays stay (for gradients),
    anything else becomes float64 numpy scalars, cast later to the weights' dtype."""
    if isinstance(value, nanofn.Array):
        (value,) = promote_float(value)
        if value.shape != (k,):
            raise ValueError(f"{fname}: {name} must have one entry per spatial dimension ({k}), "
                             f"got shape {tuple(value.shape)}")
        return [value[i] for i in range(k)], [value.dtype]
    values = list(value) if np.ndim(value) else [value]
    if len(values) != k:
        raise ValueError(f"{fname}: {name} must have one entry per spatial dimension ({k}), "
                         f"got {len(values)}")
    arrays = [v for v in values if isinstance(v, nanofn.Array)]
    if arrays:
        values = [promote_float(v)[0] if isinstance(v, nanofn.Array) else float(v)
                  for v in values]
        return values, [v.dtype for v in values if isinstance(v, nanofn.Array)]
    return [np.float64(v) for v in values], []


def scale_and_translate(image, shape, spatial_dims, scale, translation, method,
                        antialias=True, precision=lax.Precision.HIGHEST):
    """Resample `image` under a scale and a translation of its `spatial_dims`.

    Mirrors `jax.image.scale_and_translate`. A point at `x` along spatial axis `i` of the
    input goes to `x * scale[i] + translation[i]` in the output (pixel centres at
    `index + 0.5`); each output pixel is sampled at the inverse of that map, and output
    pixels whose sample falls outside the input are zero.

    Args:
        image: the array to resample (integer images are converted to the default float).
        shape: the output shape, one size per dimension of `image`.
        spatial_dims: the K axes that are scaled and translated (negative axes count from
            the end); the others keep their size.
        scale: K scales (output size over input size for a plain resize).
        translation: K translations, in output pixels.
        method: a `ResizeMethod` or its name, any but `"nearest"`: `"linear"`,
            `"cubic"`, `"cubic-pytorch"`, `"lanczos3"`, `"lanczos5"`, `"area"`.
        antialias: low-pass filter by widening the kernel when downsampling (no effect
            when upsampling).
        precision: accepted for JAX compatibility (nanofn computes in the arrays' dtype).

    Returns:
        The resampled image, of shape `shape`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.image import scale_and_translate
        >>> scale_and_translate(fnp.array([1.0, 2.0, 3.0, 4.0]), (4,), (0,),
        ...                     fnp.array([1.0]), fnp.array([1.0]), "linear")
        Array([0., 1., 2., 3.], dtype=float32)
    """
    fname = "scale_and_translate"
    image = fnp.asarray(image)
    shape = _check_shape(fname, shape, image)
    method = _method(fname, method)
    if method == ResizeMethod.NEAREST:
        raise ValueError("scale_and_translate: nearest neighbour resampling is not supported "
                         "(as in JAX); use resize for a nearest-neighbour resize")
    try:
        spatial_dims = tuple(canonicalize_axis(operator.index(d), image.ndim, "spatial_dims")
                             for d in spatial_dims)
    except TypeError:
        raise TypeError("scale_and_translate: spatial_dims must be a sequence of integers, got "
                        f"{spatial_dims!r}") from None
    k = len(spatial_dims)
    scales, scale_dtypes = _as_factors(fname, "scale", scale, k)
    translations, translation_dtypes = _as_factors(fname, "translation", translation, k)
    (image,) = promote_float(image)
    dtype = fnp.result_type(image.dtype, *scale_dtypes, *translation_dtypes)
    scales = [fnp.asarray(s, dtype=dtype) for s in scales]
    translations = [fnp.asarray(t, dtype=dtype) for t in translations]
    return _scale_and_translate(image, shape, spatial_dims, scales, translations, method,
                                antialias, precision, dtype)


def _resize_nearest(image, shape):
    for d, (m, n) in enumerate(zip(image.shape, shape)):
        if m == n:
            continue
        if m == 0:
            raise ValueError(f"resize: cannot resize the empty axis {d} of shape "
                             f"{tuple(image.shape)} to size {n} by nearest neighbour")
        # in float32, as JAX computes these offsets
        centres = (np.arange(n, dtype=np.float32) + np.float32(0.5)) * np.float32(m)
        offsets = np.floor(centres / np.float32(n)).astype(np.int32)
        index = [slice(None)] * image.ndim
        index[d] = offsets
        image = image[tuple(index)]
    return image


def resize(image, shape, method, antialias=True, precision=lax.Precision.HIGHEST):
    """Resize `image` to `shape` by the given resampling method.

    Mirrors `jax.image.resize`. Every axis whose size changes is resampled (batch and
    channel axes keep their size, so they are untouched); pixel centres are at
    `index + 0.5`, so a resize preserves the image's extent, not its corner pixels.

    Args:
        image: the array to resize.
        shape: the output shape, one size per dimension of `image`.
        method: a `ResizeMethod` or its name: `"nearest"`; `"linear"`, `"bilinear"`,
            `"trilinear"`, `"triangle"`; `"cubic"`, `"bicubic"`, `"tricubic"` (Keys,
            a = -0.5); `"cubic-pytorch"`, `"bicubic-pytorch"`; `"lanczos3"`, `"lanczos5"`;
            `"area"`.
        antialias: low-pass filter by widening the kernel when downsampling (no effect
            when upsampling, nor for `"nearest"`).
        precision: accepted for JAX compatibility (nanofn computes in the arrays' dtype).

    Returns:
        The resized array: `image`'s dtype for `"nearest"`, else a floating dtype.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.image import resize
        >>> resize(fnp.array([[1.0, 2.0], [3.0, 4.0]]), (2, 4), "nearest")
        Array([[1., 1., 2., 2.],
               [3., 3., 4., 4.]], dtype=float32)
        >>> resize(fnp.array([0.0, 1.0, 2.0, 3.0]), (2,), "linear", antialias=False)
        Array([0.5, 2.5], dtype=float32)
    """
    image = fnp.asarray(image)
    shape = _check_shape("resize", shape, image)
    method = _method("resize", method)
    if method == ResizeMethod.NEAREST:
        return _resize_nearest(image, shape)
    (image,) = promote_float(image)
    dtype = image.dtype
    spatial_dims = tuple(d for d in range(image.ndim) if image.shape[d] != shape[d])
    for d in spatial_dims:
        if image.shape[d] == 0:
            raise ValueError(f"resize: cannot resize the empty axis {d} of shape "
                             f"{tuple(image.shape)} to size {shape[d]}")
    scales = [fnp.asarray(1.0 if shape[d] == 0 else shape[d] / image.shape[d], dtype=dtype)
              for d in spatial_dims]
    translations = [fnp.asarray(0.0, dtype=dtype)] * len(spatial_dims)
    return _scale_and_translate(image, shape, spatial_dims, scales, translations, method,
                                antialias, precision, dtype)


__all__ = ["ResizeMethod", "resize", "scale_and_translate"]
