"""nanofn.scipy.cluster.vq: the nearest code of each observation (jax.scipy.cluster.vq).

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.scipy.cluster.vq import vq
    >>> codes, dists = vq(fnp.array([[0.0, 0.1], [2.0, 2.0]]), fnp.array([[0.0, 0.0], [2.0, 1.0]]))
    >>> codes
    Array([0, 1], dtype=int32)
"""

from __future__ import annotations

import nanofn.numpy as fnp
from nanofn.numpy._dtypes import promote_float

__all__ = ["vq"]


def vq(obs, code_book, check_finite=True):
    """The index of the nearest row of `code_book` to each row of `obs`, and its
    Euclidean distance (jax.scipy.cluster.vq.vq).

    `obs` is `(M, N)` and `code_book` `(K, N)`; 1-D inputs are treated as `N = 1`.
    Returns `(codes, dists)`, both `(M,)`: int32 indices (the first of equal distances)
    and floating distances. `check_finite` is accepted and unused, as in JAX. The
    distances are differentiable in both arguments (away from ties and zero distance).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.cluster.vq import vq
        >>> obs = fnp.array([[1.1, 2.1, 3.1], [5.9, 4.8, 6.2]])
        >>> book = fnp.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [4.0, 5.0, 6.0]])
        >>> codes, dists = vq(obs, book)
        >>> codes, fnp.round(dists, 4)
        (Array([0, 2], dtype=int32), Array([0.1732, 1.9209], dtype=float32))
    """
    del check_finite
    obs, code_book = promote_float(obs, code_book)
    if obs.ndim != code_book.ndim:
        raise ValueError(f"vq: obs and code_book must have the same number of dimensions, "
                         f"got shapes {tuple(obs.shape)} and {tuple(code_book.shape)}")
    if obs.ndim == 1:
        obs, code_book = obs[:, None], code_book[:, None]
    if obs.ndim != 2:
        raise ValueError(f"vq: obs and code_book must be 1-D or 2-D, got shapes "
                         f"{tuple(obs.shape)} and {tuple(code_book.shape)}")
    if obs.shape[1] != code_book.shape[1]:
        raise ValueError(f"vq: obs and code_book must have the same number of features "
                         f"(last axis), got shapes {tuple(obs.shape)} and "
                         f"{tuple(code_book.shape)}")
    dist = fnp.linalg.norm(obs[:, None, :] - code_book[None, :, :], axis=-1)
    codes = fnp.argmin(dist, axis=-1)
    return codes, fnp.take_along_axis(dist, codes[:, None], axis=1)[:, 0]
