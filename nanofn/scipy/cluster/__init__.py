"""nanofn.scipy.cluster: vector quantization (jax.scipy.cluster's names).

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy.cluster import vq
    >>> vq.vq(fnp.array([0.1, 2.9]), fnp.array([0.0, 3.0]))[0]
    Array([0, 1], dtype=int32)
"""

from nanofn.scipy.cluster import vq as vq

__all__ = ["vq"]
