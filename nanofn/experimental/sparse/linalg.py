"""Sparse linear algebra (jax.experimental.sparse.linalg): `spsolve` only.

nanofn solves by building the dense matrix and calling `nanofn.numpy.linalg.solve` (LU),
which is fine for the small systems nanofn targets but not for large sparse ones. JAX's
`lobpcg_standard` is not provided.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.experimental.sparse import linalg
    >>> linalg.spsolve(fnp.array([2., 4.]), fnp.array([0, 1]), fnp.array([0, 1, 2]),
    ...                fnp.array([2., 2.]))
    Array([1. , 0.5], dtype=float32)
"""

import nanofn.numpy as fnp
from nanofn import ops as _ops

__all__ = ["spsolve"]


def spsolve(data, indices, indptr, b, tol=1e-6, reorder=1):
    """Solve `A x = b` for a square matrix `A` in CSR form (`data`, column `indices`, row
    pointers `indptr`) (jax.experimental.sparse.linalg.spsolve).

    nanofn densifies `A` (duplicates add up) and uses a dense LU solve, so gradients with
    respect to `data` and `b` come from `nanofn.numpy.linalg.solve`; `tol` and `reorder`
    (JAX's QR options) are ignored.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental.sparse import linalg
        >>> x = linalg.spsolve(fnp.array([1., 1., 2.]), fnp.array([0, 1, 1]),
        ...                    fnp.array([0, 2, 3]), fnp.array([3., 4.]))
        >>> x
        Array([1., 2.], dtype=float32)
    """
    del tol, reorder
    data, indices, indptr, b = map(fnp.asarray, (data, indices, indptr, b))
    n = indptr.shape[0] - 1
    if b.ndim != 1 or b.shape[0] != n:
        raise ValueError(f"spsolve: b must be a vector of length {n} (indptr.shape="
                         f"{tuple(indptr.shape)}), got b.shape={tuple(b.shape)}")
    if data.shape != indices.shape:
        raise ValueError(f"spsolve: data.shape={tuple(data.shape)} and indices.shape="
                         f"{tuple(indices.shape)} must match")
    nnz = data.shape[0]
    # row of each stored entry: how many row starts lie at or before its position
    rows = fnp.searchsorted(indptr[1:], fnp.arange(nnz, dtype=indptr.dtype), side="right")
    lin = rows.astype(fnp.int32) * n + indices.astype(fnp.int32)
    A = _ops.segment_sum(data, lin, num_segments=n * n).reshape(n, n)
    return fnp.linalg.solve(A, b.astype(A.dtype))
