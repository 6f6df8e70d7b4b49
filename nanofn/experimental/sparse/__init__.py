"""nanofn.experimental.sparse: sparse arrays in batched coordinate (BCOO) format
(jax.experimental.sparse).

`BCOO((data, indices), shape=...)` or `BCOO.fromdense(M)` holds the nonzero entries of an
array; it works with `@` against dense arrays (both sides), scalar and elementwise
arithmetic, `transpose`, `sum`, `todense`, and passes through `jit`, `grad` and `vmap` as
a pytree. `sparsify(f)` runs a function written for dense arrays on BCOO arguments.

Every operation is built from nanofn's differentiable operations (gathers and
`nanofn.ops.segment_sum`), so derivatives with respect to the stored values and to dense
operands come from nanofn's autodiff. Layouts: `n_batch = n_dense = 0` throughout;
`fromdense`, `todense` and products with dense arrays also take batch and dense
dimensions; other operations raise NotImplementedError naming `n_batch`. `BCSR` is a thin
layer over BCOO (matrices only: `fromdense`, `todense`, `@`). Not provided: the COO, CSR
and CSC formats, slicing, reshaping and concatenation of sparse arrays,
`random_bcoo`, the sparse autodiff wrappers (`sparse.grad`, ...) and the `*_p` primitives
(nanofn's sparse operations are not primitives).

Example:
    >>> import nanofn, nanofn.numpy as fnp
    >>> from nanofn.experimental import sparse
    >>> M = fnp.array([[0., 1., 0., 2.], [3., 0., 0., 0.], [0., 0., 4., 0.]])
    >>> A = sparse.BCOO.fromdense(M)
    >>> A
    BCOO(float32[3, 4], nse=4)
    >>> y = fnp.array([3., 6., 5.])
    >>> A.T @ y
    Array([18.,  3., 20.,  6.], dtype=float32)
    >>> nanofn.grad(lambda y: (A.T @ y).sum())(y)
    Array([3., 3., 4.], dtype=float32)
"""

from nanofn.experimental.sparse._bcoo import (
    BCOO as BCOO,
    JAXSparse as JAXSparse,
    SparseEfficiencyError as SparseEfficiencyError,
    SparseEfficiencyWarning as SparseEfficiencyWarning,
    bcoo_dot_general as bcoo_dot_general,
    bcoo_extract as bcoo_extract,
    bcoo_fromdense as bcoo_fromdense,
    bcoo_multiply_dense as bcoo_multiply_dense,
    bcoo_multiply_sparse as bcoo_multiply_sparse,
    bcoo_reduce_sum as bcoo_reduce_sum,
    bcoo_sort_indices as bcoo_sort_indices,
    bcoo_sum_duplicates as bcoo_sum_duplicates,
    bcoo_todense as bcoo_todense,
    bcoo_transpose as bcoo_transpose,
    empty as empty,
    eye as eye,
    todense as todense,
)
from nanofn.experimental.sparse._bcsr import (
    BCSR as BCSR, bcsr_fromdense as bcsr_fromdense, bcsr_todense as bcsr_todense,
)
from nanofn.experimental.sparse._transform import sparsify as sparsify
from nanofn.experimental.sparse import linalg as linalg

__all__ = [
    "BCOO", "BCSR", "JAXSparse", "SparseEfficiencyError", "SparseEfficiencyWarning",
    "bcoo_dot_general", "bcoo_extract", "bcoo_fromdense", "bcoo_multiply_dense",
    "bcoo_multiply_sparse", "bcoo_reduce_sum", "bcoo_sort_indices", "bcoo_sum_duplicates",
    "bcoo_todense", "bcoo_transpose", "bcsr_fromdense", "bcsr_todense", "empty", "eye",
    "linalg", "sparsify", "todense",
]
