"""The BCSR (compressed sparse row) matrix, as a thin layer over BCOO
(jax.experimental.sparse.bcsr).

nanofn's BCSR holds a matrix (n_batch = n_dense = 0) as `data`, column `indices` and row
pointers `indptr`; every operation converts to BCOO (the row of entry `i` is found by a
binary search in `indptr`) and back, so gradients and transformations come the same way.
"""

from __future__ import annotations

import operator

import numpy as np

import nanofn.numpy as fnp
from nanofn.experimental.sparse._bcoo import (
    BCOO, JAXSparse, SparseInfo, _extract, _is_bcoo, _matmul, _shape_tuple, _sum_duplicates,
    bcoo_dot_general, bcoo_fromdense, bcoo_sort_indices, empty, eye,
)
from nanofn.tree_util import register_pytree_node

__all__ = ["BCSR", "bcsr_dot_general", "bcsr_extract", "bcsr_fromdense",
           "bcsr_sum_duplicates", "bcsr_todense"]


class BCSR(JAXSparse):
    """A sparse matrix in compressed sparse row format (jax.experimental.sparse.BCSR).

    `BCSR((data, indices, indptr), shape=(n, m))`: the entries of row `r` are
    `data[indptr[r]:indptr[r + 1]]`, in the columns `indices[indptr[r]:indptr[r + 1]]`;
    slots past `indptr[-1]` and columns out of range are padding. nanofn supports
    two-dimensional matrices only (n_batch = n_dense = 0); `fromdense`, `todense`,
    `to_bcoo`, `from_bcoo`, `@` with dense arrays on either side and scalar `*`, and it is
    a pytree.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> M = fnp.array([[0., 1., 0., 2.], [3., 0., 0., 0.], [0., 0., 4., 0.]])
        >>> B = sparse.BCSR.fromdense(M)
        >>> B
        BCSR(float32[3, 4], nse=4)
        >>> B.indices, B.indptr
        (Array([1, 3, 0, 2], dtype=int32), Array([0, 2, 3, 4], dtype=int32))
        >>> B @ fnp.ones(4)
        Array([3., 3., 4.], dtype=float32)
    """

    def __init__(self, args, *, shape, indices_sorted=False, unique_indices=False):
        data, indices, indptr = args
        self.data, self.indices, self.indptr = map(fnp.asarray, (data, indices, indptr))
        self.shape = _shape_tuple(shape)
        self.indices_sorted = bool(indices_sorted)
        self.unique_indices = bool(unique_indices)
        if self.indices.ndim != 1 or self.data.ndim != 1 or self.indptr.ndim != 1:
            raise NotImplementedError(
                "BCSR: nanofn supports n_batch = 0 and n_dense = 0 only (one-dimensional "
                f"data, indices and indptr), got data.shape={tuple(self.data.shape)}, "
                f"indices.shape={tuple(self.indices.shape)}, "
                f"indptr.shape={tuple(self.indptr.shape)}")
        if len(self.shape) != 2:
            raise ValueError(f"BCSR: shape must have two dimensions, got {self.shape}")
        if self.data.shape != self.indices.shape:
            raise ValueError(f"BCSR: data.shape={tuple(self.data.shape)} and indices.shape="
                             f"{tuple(self.indices.shape)} must match")
        if self.indptr.shape[0] != self.shape[0] + 1:
            raise ValueError(f"BCSR: indptr.shape={tuple(self.indptr.shape)} must be "
                             f"({self.shape[0] + 1},) for shape {self.shape}")

    nse = property(lambda self: self.indices.shape[-1], doc="The number of stored elements.")
    dtype = property(lambda self: self.data.dtype)
    n_batch = property(lambda self: 0)
    n_sparse = property(lambda self: 2)
    n_dense = property(lambda self: 0)

    def __repr__(self):
        return f"BCSR({self.dtype}{list(self.shape)}, nse={self.nse})"

    def tree_flatten(self):
        return (self.data, self.indices, self.indptr), tuple(
            SparseInfo(self.shape, self.indices_sorted, self.unique_indices))

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.data, obj.indices, obj.indptr = children
        obj.shape, obj.indices_sorted, obj.unique_indices = aux
        return obj

    @classmethod
    def fromdense(cls, mat, *, nse=None, index_dtype=np.int32, n_dense=0, n_batch=0):
        """A BCSR holding the nonzero entries of a dense matrix (see `bcsr_fromdense`).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> sparse.BCSR.fromdense(fnp.eye(2), nse=3).indptr
            Array([0, 1, 2], dtype=int32)
        """
        return bcsr_fromdense(mat, nse=nse, n_batch=n_batch, n_dense=n_dense,
                              index_dtype=index_dtype)

    @classmethod
    def from_bcoo(cls, arr):
        """The BCSR form of a two-dimensional BCOO (its entries sorted by position).

        Example:
            >>> from nanofn.experimental import sparse
            >>> sparse.BCSR.from_bcoo(sparse.eye(3)).indptr
            Array([0, 1, 2, 3], dtype=int32)
        """
        if not _is_bcoo(arr):
            raise TypeError(f"BCSR.from_bcoo: expected a BCOO, got {type(arr).__name__}")
        if arr.ndim != 2 or arr.n_batch or arr.n_dense:
            raise NotImplementedError(
                "BCSR.from_bcoo: only a two-dimensional BCOO with n_batch = n_dense = 0 "
                f"(got shape {arr.shape}, n_batch={arr.n_batch}, n_dense={arr.n_dense})")
        if not arr.indices_sorted:
            arr = bcoo_sort_indices(arr)
        rows = arr.indices[:, 0]
        dt = arr.indices.dtype
        indptr = fnp.searchsorted(rows, fnp.arange(arr.shape[0] + 1, dtype=dt),
                                  side="left").astype(dt)
        return cls((arr.data, arr.indices[:, 1], indptr), shape=arr.shape,
                   indices_sorted=True, unique_indices=arr.unique_indices)

    @classmethod
    def from_scipy_sparse(cls, mat, *, index_dtype=None, n_dense=0, n_batch=0):
        """A BCSR with the entries of a scipy.sparse matrix or array.

        Example:
            >>> import scipy.sparse
            >>> from nanofn.experimental import sparse
            >>> sparse.BCSR.from_scipy_sparse(scipy.sparse.eye(2, dtype="float32")).indptr
            Array([0, 1, 2], dtype=int32)
        """
        if n_dense or n_batch:
            raise NotImplementedError("BCSR.from_scipy_sparse with n_batch or n_dense > 0")
        csr = mat.tocsr()
        dt = index_dtype or np.int32
        return cls((fnp.asarray(csr.data), fnp.asarray(csr.indices.astype(dt)),
                    fnp.asarray(csr.indptr.astype(dt))), shape=csr.shape)

    @classmethod
    def _empty(cls, shape, *, dtype=None, index_dtype="int32", n_dense=0, n_batch=0, nse=0):
        """An empty BCSR matrix (see `sparse.empty`)."""
        return cls.from_bcoo(empty(shape, dtype=dtype, index_dtype=index_dtype,
                                   n_dense=n_dense, n_batch=n_batch, nse=nse))

    @classmethod
    def _eye(cls, N, M, k, *, dtype=None, index_dtype="int32", n_batch=0, n_dense=0):
        """A BCSR `N x M` matrix with ones on diagonal `k` (see `sparse.eye`)."""
        return cls.from_bcoo(eye(N, M, k, dtype=dtype, index_dtype=index_dtype,
                                 n_batch=n_batch, n_dense=n_dense))

    def sum_duplicates(self, nse=None, remove_zeros=True):
        """A copy with the entries at one position added up, sorted, explicit zeros
        dropped unless `remove_zeros=False` (see `bcsr_sum_duplicates`).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> B = sparse.BCSR((fnp.array([1., 2.]), fnp.array([1, 1]), fnp.array([0, 2])),
            ...                 shape=(1, 2))
            >>> B.sum_duplicates().data
            Array([3.], dtype=float32)
        """
        out = _sum_duplicates(self.to_bcoo(), nse, remove_zeros, "BCSR.sum_duplicates")
        return BCSR.from_bcoo(out)

    def to_bcoo(self):
        """The same matrix as a BCOO (padding slots become out-of-range rows).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> sparse.BCSR.fromdense(fnp.eye(2)).to_bcoo().indices
            Array([[0, 0],
                   [1, 1]], dtype=int32)
        """
        dt = self.indices.dtype
        slots = fnp.arange(self.nse, dtype=self.indptr.dtype)
        rows = fnp.searchsorted(self.indptr[1:], slots, side="right").astype(dt)
        indices = fnp.stack([rows, self.indices], axis=1)
        return BCOO((self.data, indices), shape=self.shape,
                    indices_sorted=self.indices_sorted, unique_indices=self.unique_indices)

    def todense(self):
        """The dense matrix (see `bcsr_todense`).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> sparse.BCSR.fromdense(fnp.eye(2)).todense()
            Array([[1., 0.],
                   [0., 1.]], dtype=float32)
        """
        return self.to_bcoo().todense()

    def transpose(self, axes=None):
        raise NotImplementedError("BCSR.transpose is not implemented (as in JAX); use "
                                  "to_bcoo().T")

    def __matmul__(self, other):
        return _matmul(self.to_bcoo(), other)

    def __rmatmul__(self, other):
        return _matmul(other, self.to_bcoo())

    def __mul__(self, other):
        other = fnp.asarray(other)
        if other.ndim:
            raise NotImplementedError("BCSR * array: only scalars; use to_bcoo()")
        return BCSR((self.data * other, self.indices, self.indptr), shape=self.shape,
                    indices_sorted=self.indices_sorted, unique_indices=self.unique_indices)

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1


register_pytree_node(BCSR, lambda m: m.tree_flatten(), BCSR.tree_unflatten)


def bcsr_fromdense(mat, *, nse=None, n_batch=0, n_dense=0, index_dtype=np.int32):
    """A BCSR of the nonzero entries of a dense matrix, row by row
    (jax.experimental.sparse.bcsr_fromdense); `nse` as in `bcoo_fromdense` (needed under
    `jit`), extra slots are padding. n_batch = n_dense = 0.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> B = sparse.bcsr_fromdense(fnp.array([[0., 5.], [6., 7.]]))
        >>> B.data
        Array([5., 6., 7.], dtype=float32)
        >>> B.indices, B.indptr
        (Array([1, 0, 1], dtype=int32), Array([0, 1, 3], dtype=int32))
    """
    n_batch, n_dense = operator.index(n_batch), operator.index(n_dense)
    if n_batch or n_dense:
        raise NotImplementedError(f"bcsr_fromdense: n_batch={n_batch}, n_dense={n_dense}: "
                                  "nanofn's BCSR has n_batch = n_dense = 0 only")
    mat = fnp.asarray(mat)
    if mat.ndim != 2:
        raise ValueError(f"bcsr_fromdense: mat must be a matrix, got shape {tuple(mat.shape)}")
    return BCSR.from_bcoo(bcoo_fromdense(mat, nse=nse, index_dtype=index_dtype))


def bcsr_todense(mat):
    """The dense matrix a BCSR stands for (jax.experimental.sparse.bcsr_todense).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> B = sparse.BCSR((fnp.array([1., 2.]), fnp.array([1, 0]), fnp.array([0, 1, 2])),
        ...                 shape=(2, 2))
        >>> sparse.bcsr_todense(B)
        Array([[0., 1.],
               [2., 0.]], dtype=float32)
    """
    if not isinstance(mat, BCSR):
        raise TypeError(f"bcsr_todense: expected a BCSR, got {type(mat).__name__}")
    return mat.todense()


def bcsr_dot_general(lhs, rhs, *, dimension_numbers, precision=None,
                     preferred_element_type=None, out_sharding=None):
    """`lax.dot_general` where one or both operands are BCSR (or BCOO)
    (jax.experimental.sparse.bcsr_dot_general); the BCSR operands run as BCOO through
    `bcoo_dot_general`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> B = sparse.BCSR.fromdense(fnp.array([[1., 0.], [0., 2.]]))
        >>> sparse.bcsr_dot_general(B, fnp.array([3., 4.]),
        ...                         dimension_numbers=(((1,), (0,)), ((), ())))
        Array([3., 8.], dtype=float32)
    """
    lhs = lhs.to_bcoo() if isinstance(lhs, BCSR) else lhs
    rhs = rhs.to_bcoo() if isinstance(rhs, BCSR) else rhs
    return bcoo_dot_general(lhs, rhs, dimension_numbers=dimension_numbers, precision=precision,
                            preferred_element_type=preferred_element_type,
                            out_sharding=out_sharding)


def bcsr_extract(indices, indptr, mat):
    """The values of the dense matrix `mat` at the positions given by CSR `indices` and
    `indptr`: the `data` of a BCSR with that pattern (jax.experimental.sparse.bcsr_extract);
    padding slots read 0.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> M = fnp.array([[1., 2.], [3., 4.]])
        >>> sparse.bcsr_extract(fnp.array([1, 0]), fnp.array([0, 1, 2]), M)
        Array([2., 3.], dtype=float32)
    """
    indices, indptr, mat = map(fnp.asarray, (indices, indptr, mat))
    if mat.ndim != 2 or indices.ndim != 1 or indptr.shape != (mat.shape[0] + 1,):
        raise ValueError(f"bcsr_extract: need indices of shape (nse,), indptr of shape "
                         f"(n + 1,) and a matrix (n, m); got indices.shape="
                         f"{tuple(indices.shape)}, indptr.shape={tuple(indptr.shape)}, "
                         f"mat.shape={tuple(mat.shape)}")
    pattern = BCSR((fnp.zeros(indices.shape, mat.dtype), indices, indptr), shape=mat.shape)
    view = pattern.to_bcoo()
    return _extract(view.indices, mat.shape, mat)


def bcsr_sum_duplicates(mat, nse=None):
    """A BCSR with the entries at one position added up (explicit zeros kept)
    (jax.experimental.sparse.bcsr_sum_duplicates); `nse` as in `bcoo_sum_duplicates`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> B = sparse.BCSR((fnp.array([1., 2., 5.]), fnp.array([1, 1, 0]),
        ...                  fnp.array([0, 2, 3])), shape=(2, 2))
        >>> C = sparse.bcsr_sum_duplicates(B)
        >>> C.data, C.indices, C.indptr
        (Array([3., 5.], dtype=float32), Array([1, 0], dtype=int32), Array([0, 1, 2], dtype=int32))
    """
    if not isinstance(mat, BCSR):
        raise TypeError(f"bcsr_sum_duplicates: expected a BCSR, got {type(mat).__name__}")
    return BCSR.from_bcoo(_sum_duplicates(mat.to_bcoo(), nse, False, "bcsr_sum_duplicates"))
