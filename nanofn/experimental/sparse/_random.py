"""random_bcoo: random BCOO arrays (jax.experimental.sparse.random_bcoo)."""

from __future__ import annotations

import math
import operator

import numpy as np

import nanofn.numpy as fnp
from nanofn import random as _random
from nanofn.experimental.sparse._bcoo import BCOO, _vmap

__all__ = ["random_bcoo"]


def random_bcoo(key, shape, *, dtype=None, indices_dtype=None, nse=0.2, n_batch=0, n_dense=0,
                unique_indices=True, sorted_indices=False, generator=_random.uniform, **kwds):
    """A random BCOO array (jax.experimental.sparse.random_bcoo): `nse` positions per batch
    (a count, or for 0 < nse < 1 that fraction of the sparse size, rounded up) drawn with
    `nanofn.random.choice` (distinct unless `unique_indices=False`), and values from
    `generator(key, shape=..., dtype=dtype, **kwds)` (default `nanofn.random.uniform`;
    `dtype=None` is the default float dtype). Uses the same keys as JAX, so the same key
    gives JAX's array.

    Example:
        >>> import nanofn
        >>> from nanofn.experimental import sparse
        >>> A = sparse.random_bcoo(nanofn.random.key(0), (4, 5), nse=3)
        >>> A
        BCOO(float32[4, 5], nse=3)
        >>> int((A.todense() != 0).sum())
        3
    """
    shape = tuple(map(operator.index, shape))
    n_batch, n_dense = operator.index(n_batch), operator.index(n_dense)
    if n_batch < 0 or n_dense < 0 or n_batch + n_dense > len(shape):
        raise ValueError(f"random_bcoo: invalid n_batch={n_batch}, n_dense={n_dense} for "
                         f"shape={shape}")
    n_sparse = len(shape) - n_batch - n_dense
    batch, sparse_shape = shape[:n_batch], shape[n_batch:n_batch + n_sparse]
    dense = shape[n_batch + n_sparse:]
    sparse_size = math.prod(sparse_shape)
    if not 0 <= nse < sparse_size:
        raise ValueError(f"random_bcoo: got nse={nse}, expected a value between 0 and the "
                         f"sparse size {sparse_size} (shape={shape}, n_batch={n_batch}, "
                         f"n_dense={n_dense})")
    if 0 < nse < 1:
        nse = math.ceil(nse * sparse_size)
    nse = operator.index(nse)
    if indices_dtype is None:
        indices_dtype = fnp.asarray(0).dtype
    if sparse_size > np.iinfo(indices_dtype).max:
        raise ValueError(f"random_bcoo: indices_dtype={np.dtype(indices_dtype)} cannot hold "
                         f"positions of a sparse size {sparse_size}")

    def one_batch(k):
        if not sparse_shape:
            return fnp.zeros((nse, n_sparse), indices_dtype)
        flat = _random.choice(k, sparse_size, shape=(nse,), replace=not unique_indices)
        return fnp.stack(fnp.unravel_index(flat.astype(indices_dtype), sparse_shape), axis=1)

    keys = _random.split(key, math.prod(batch) + 1)
    if dtype is not None:
        kwds["dtype"] = dtype
    data = generator(keys[0], shape=batch + (nse,) + dense, **kwds)
    indices = fnp.reshape(_vmap(one_batch)(keys[1:]), batch + (nse, n_sparse))
    mat = BCOO((data, indices.astype(indices_dtype)), shape=shape)
    return mat.sort_indices() if sorted_indices else mat
