"""nanofn.image: image resampling (jax.image's names, signatures and defaults).

`resize` changes an array's shape by nearest, linear, cubic, Lanczos or area resampling;
`scale_and_translate` resamples under a scale and a translation of chosen axes. Every
method except nearest is one weight matrix per resized axis, contracted with `einsum`, so
the results are differentiable in the image (and, for `scale_and_translate`, in the scale
and translation) and work under `jit` and `vmap`.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn import image
    >>> image.resize(fnp.array([0.0, 1.0]), (4,), "linear")
    Array([0.  , 0.25, 0.75, 1.  ], dtype=float32)
"""

from nanofn.image._scale import (
    ResizeMethod as ResizeMethod, resize as resize, scale_and_translate as scale_and_translate,
)

__all__ = ["ResizeMethod", "resize", "scale_and_translate"]
