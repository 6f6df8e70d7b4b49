"""nanofn.experimental.sparse: sparse arrays in batched coordinate (BCOO) format
(jax.experimental.sparse).

`BCOO((data, indices), shape=...)` or `BCOO.fromdense(M)` holds the nonzero entries of an
array; it works with `@` against dense arrays (both sides), scalar and elementwise
arithmetic, `transpose`, `sum`, `todense`, and passes through `jit`, `grad` and `vmap` as
a pytree. `sparsify(f)` runs a function written for dense arrays on BCOO arguments.

Every operation is built from nanofn's differentiable operations (gathers and
`nanofn.ops.segment_sum`), so derivatives with respect to the stored values and to dense
operands come from nanofn's autodiff. Batch and dense dimensions (`n_batch`, `n_dense`) work
throughout; shape operations (`bcoo_slice`, `bcoo_dynamic_slice`, `bcoo_reshape`,
`bcoo_squeeze`, `bcoo_broadcast_in_dim`, `bcoo_concatenate`, `bcoo_rev`,
`bcoo_update_layout`) give basic indexing and `reshape`. `BCSR` is a thin layer over BCOO
(matrices only); `COO`, `CSR` and `CSC` are the simple matrix formats; `random_bcoo` draws
with JAX's keys; `sparse.grad`, `value_and_grad`, `jacfwd`, `jacrev` and `jacobian`
differentiate with respect to stored values. Not provided: `bcoo_gather`,
`bcoo_dot_general_sampled`, `bcoo_conv_general_dilated`, `bcsr_broadcast_in_dim`,
`bcsr_concatenate` and the `*_p` primitives (nanofn's sparse operations are not
primitives).

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
from nanofn.experimental.sparse._bcoo_shape import (
    bcoo_broadcast_in_dim as bcoo_broadcast_in_dim,
    bcoo_concatenate as bcoo_concatenate,
    bcoo_dynamic_slice as bcoo_dynamic_slice,
    bcoo_reshape as bcoo_reshape,
    bcoo_rev as bcoo_rev,
    bcoo_slice as bcoo_slice,
    bcoo_squeeze as bcoo_squeeze,
    bcoo_update_layout as bcoo_update_layout,
)
from nanofn.experimental.sparse._bcsr import (
    BCSR as BCSR, bcsr_dot_general as bcsr_dot_general, bcsr_extract as bcsr_extract,
    bcsr_fromdense as bcsr_fromdense, bcsr_sum_duplicates as bcsr_sum_duplicates,
    bcsr_todense as bcsr_todense,
)
from nanofn.experimental.sparse._coo import (
    COO as COO, CSC as CSC, CSR as CSR,
    coo_fromdense as coo_fromdense, coo_matmat as coo_matmat, coo_matvec as coo_matvec,
    coo_todense as coo_todense,
    csr_fromdense as csr_fromdense, csr_matmat as csr_matmat, csr_matvec as csr_matvec,
    csr_todense as csr_todense,
)
from nanofn.experimental.sparse._random import random_bcoo as random_bcoo
from nanofn.experimental.sparse._ad import (
    grad as grad, jacfwd as jacfwd, jacobian as jacobian, jacrev as jacrev,
    value_and_grad as value_and_grad,
)
from nanofn.experimental.sparse._transform import sparsify as sparsify
from nanofn.experimental.sparse import linalg as linalg

__all__ = [
    "BCOO", "BCSR", "COO", "CSC", "CSR", "JAXSparse", "SparseEfficiencyError", "SparseEfficiencyWarning",
    "bcoo_broadcast_in_dim", "bcoo_concatenate", "bcoo_dynamic_slice", "bcoo_reshape",
    "bcoo_rev", "bcoo_slice", "bcoo_squeeze", "bcoo_update_layout", "bcoo_dot_general", "bcoo_extract", "bcoo_fromdense", "bcoo_multiply_dense",
    "bcoo_multiply_sparse", "bcoo_reduce_sum", "bcoo_sort_indices", "bcoo_sum_duplicates",
    "bcoo_todense", "bcoo_transpose", "bcsr_fromdense", "bcsr_todense", "empty", "eye",
    "linalg", "sparsify", "todense", "coo_fromdense", "coo_matmat", "coo_matvec",
    "coo_todense", "csr_fromdense", "csr_matmat", "csr_matvec", "csr_todense",
    "bcsr_dot_general", "bcsr_extract", "bcsr_sum_duplicates", "random_bcoo", "grad", "value_and_grad", "jacfwd", "jacrev", "jacobian",
]
