"""The unbatched COO, CSR and CSC matrices (jax.experimental.sparse.coo / .csr).

JAX keeps these simple formats for matrices next to BCOO. In nanofn each is a pytree of
its buffers whose operations convert to a BCOO view (the row of a CSR entry is found by a
binary search in `indptr`) and use BCOO's products, so gradients with respect to `data`
and the dense operand, `jit` and `vmap` come from nanofn's autodiff of those.
"""

from __future__ import annotations

import operator

import numpy as np

import nanofn.numpy as fnp
from nanofn.experimental.sparse._bcoo import (
    BCOO, JAXSparse, _concrete_int, _shape_tuple, bcoo_dot_general, bcoo_todense,
)
from nanofn.tree_util import register_pytree_node

__all__ = [
    "COO", "CSC", "CSR", "coo_fromdense", "coo_matmat", "coo_matvec", "coo_todense",
    "csr_fromdense", "csr_matmat", "csr_matvec", "csr_todense",
]


def _matrix_shape(shape, name):
    shape = _shape_tuple(shape)
    if len(shape) != 2:
        raise ValueError(f"{name} must have ndim=2, got shape={shape}")
    return shape


def _nonzero_2d(mat, nse, name):
    """(data, row, col) of the first `nse` nonzeros of a matrix in row-major order; the
    slots past the nonzeros hold zero data at row = col = 0 (JAX's padding for COO/CSR)."""
    mat = fnp.asarray(mat)
    if mat.ndim != 2:
        raise ValueError(f"{name}: mat must be a matrix, got shape {tuple(mat.shape)}")
    count = fnp.sum(mat != 0, dtype=np.int32)
    if nse is None:
        nse = _concrete_int(count, name)
    nse = _concrete_int(nse, name)
    row, col = fnp.nonzero(mat, size=nse, fill_value=0)
    real = fnp.arange(nse, dtype=np.int32) < count
    data = fnp.where(real, mat[row, col], fnp.zeros((), mat.dtype)) if nse else \
        fnp.zeros((0,), mat.dtype)
    return mat, data, row, col, real


def _product(view, other, transpose, name):
    """`view @ other` (or `view.T @ other`) for a BCOO `view` of a matrix and a dense
    vector or matrix, with the operand dtypes promoted."""
    other = fnp.asarray(other)
    if other.ndim not in (1, 2):
        raise NotImplementedError(f"{name}: the dense operand must be a vector or a matrix, "
                                  f"got shape {tuple(other.shape)}")
    k = 0 if transpose else 1
    if view.shape[k] != other.shape[0]:
        raise ValueError(f"{name}: shape mismatch: sparse matrix of shape {view.shape}"
                         f"{' (transposed)' if transpose else ''} times shape "
                         f"{tuple(other.shape)}")
    dtype = fnp.promote_types(view.dtype, other.dtype)
    view = view._with_data(view.data.astype(dtype))
    return bcoo_dot_general(view, other.astype(dtype),
                            dimension_numbers=(((k,), (0,)), ((), ())))


# --------------------------------------------------------------------------- COO


class COO(JAXSparse):
    """A sparse matrix in coordinate format (jax.experimental.sparse.COO): `data`, `row`
    and `col` of length nse; duplicates add up. `rows_sorted` and `cols_sorted` are
    promises about the order. It supports `fromdense`, `todense`, `.T`, `@` with dense
    vectors and matrices, and is a pytree. Prefer BCOO, as JAX advises.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.COO.fromdense(fnp.array([[0., 2.], [3., 0.]]))
        >>> A
        COO(float32[2, 2], nse=2)
        >>> A.row, A.col
        (Array([0, 1], dtype=int32), Array([1, 0], dtype=int32))
        >>> A @ fnp.array([1., 10.])
        Array([20.,  3.], dtype=float32)
    """

    def __init__(self, args, *, shape, rows_sorted=False, cols_sorted=False):
        self.data, self.row, self.col = map(fnp.asarray, args)
        self.shape = _matrix_shape(shape, "COO")
        self._rows_sorted = bool(rows_sorted)
        self._cols_sorted = bool(cols_sorted)
        if not (self.data.ndim == self.row.ndim == self.col.ndim == 1
                and self.data.shape == self.row.shape == self.col.shape):
            raise ValueError(f"COO: data, row and col must be vectors of one length, got "
                             f"shapes {tuple(self.data.shape)}, {tuple(self.row.shape)}, "
                             f"{tuple(self.col.shape)}")

    nse = property(lambda self: self.data.size, doc="The number of stored elements.")
    dtype = property(lambda self: self.data.dtype)

    def __repr__(self):
        return f"COO({self.dtype}{list(self.shape)}, nse={self.nse})"

    def _bcoo(self):
        return BCOO((self.data, fnp.stack([self.row, self.col], axis=1)), shape=self.shape)

    @classmethod
    def fromdense(cls, mat, *, nse=None, index_dtype=np.int32):
        """A COO of the nonzero entries of a dense matrix (see `coo_fromdense`).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> sparse.COO.fromdense(fnp.eye(2), nse=3).data
            Array([1., 1., 0.], dtype=float32)
        """
        return coo_fromdense(mat, nse=nse, index_dtype=index_dtype)

    @classmethod
    def _empty(cls, shape, *, dtype=None, index_dtype="int32"):
        shape = _matrix_shape(shape, "COO")
        idx = fnp.zeros((0,), index_dtype)
        return cls((fnp.zeros((0,), dtype or fnp.float32), idx, idx), shape=shape,
                   rows_sorted=True, cols_sorted=True)

    @classmethod
    def _eye(cls, N, M, k, *, dtype=None, index_dtype="int32"):
        rows, cols = _diagonal(N, M, k, index_dtype)
        return cls((fnp.ones(rows.shape, dtype or fnp.float32), rows, cols), shape=(N, M),
                   rows_sorted=True, cols_sorted=True)

    def _sort_indices(self):
        """A copy with the entries sorted by row, then column."""
        if self._rows_sorted:
            return self
        order = fnp.lexsort((self.col, self.row))
        return COO((self.data[order], self.row[order], self.col[order]), shape=self.shape,
                   rows_sorted=True)

    def todense(self):
        """The dense matrix (see `coo_todense`).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> sparse.COO((fnp.array([5.]), fnp.array([1]), fnp.array([0])),
            ...            shape=(2, 2)).todense()
            Array([[0., 0.],
                   [5., 0.]], dtype=float32)
        """
        return coo_todense(self)

    def transpose(self, axes=None):
        if axes is not None:
            raise NotImplementedError("COO.transpose: the axes argument is not supported")
        return COO((self.data, self.col, self.row), shape=self.shape[::-1],
                   rows_sorted=self._cols_sorted, cols_sorted=self._rows_sorted)

    def __matmul__(self, other):
        if isinstance(other, JAXSparse):
            raise NotImplementedError("COO @ sparse: matmul between two sparse objects")
        return _product(self._bcoo(), other, False, "COO.__matmul__")

    def tree_flatten(self):
        return (self.data, self.row, self.col), (self.shape, self._rows_sorted,
                                                 self._cols_sorted)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.data, obj.row, obj.col = children
        obj.shape, obj._rows_sorted, obj._cols_sorted = aux
        return obj


def _diagonal(N, M, k, index_dtype):
    N, M, k = operator.index(N), operator.index(M), operator.index(k)
    n = max(min(N, M - k) if k > 0 else min(N + k, M), 0)
    i = np.arange(n)
    return (fnp.asarray((i + max(-k, 0)).astype(index_dtype)),
            fnp.asarray((i + max(k, 0)).astype(index_dtype)))


def coo_fromdense(mat, *, nse=None, index_dtype=np.int32):
    """A COO matrix of the nonzero entries of `mat`, row by row
    (jax.experimental.sparse.coo_fromdense). `nse` defaults to the number of nonzeros
    (pass it under `jit`); extra slots hold zeros at row = col = 0.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.coo_fromdense(fnp.array([[0., 1.], [2., 0.]]))
        >>> A.data, A.row, A.col
        (Array([1., 2.], dtype=float32), Array([0, 1], dtype=int32), Array([1, 0], dtype=int32))
    """
    mat, data, row, col, _ = _nonzero_2d(mat, nse, "coo_fromdense")
    return COO((data, row.astype(index_dtype), col.astype(index_dtype)),
               shape=tuple(mat.shape), rows_sorted=True)


def coo_todense(mat):
    """The dense matrix a COO stands for; duplicates add up
    (jax.experimental.sparse.coo_todense).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.COO((fnp.array([1., 2.]), fnp.array([0, 0]), fnp.array([1, 1])),
        ...                shape=(1, 2))
        >>> sparse.coo_todense(A)
        Array([[0., 3.]], dtype=float32)
    """
    if not isinstance(mat, COO):
        raise TypeError(f"coo_todense: expected a COO, got {type(mat).__name__}")
    return bcoo_todense(mat._bcoo())


def coo_matvec(mat, v, transpose=False):
    """`mat @ v` (or `mat.T @ v`) for a COO matrix and a dense vector
    (jax.experimental.sparse.coo_matvec).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.COO.fromdense(fnp.array([[1., 2.], [0., 3.]]))
        >>> sparse.coo_matvec(A, fnp.array([1., 1.])), sparse.coo_matvec(A, fnp.array([1., 1.]), transpose=True)
        (Array([3., 3.], dtype=float32), Array([1., 5.], dtype=float32))
    """
    v = fnp.asarray(v)
    if v.ndim != 1:
        raise ValueError(f"coo_matvec: v must be a vector, got shape {tuple(v.shape)}")
    return _product(mat._bcoo(), v, transpose, "coo_matvec")


def coo_matmat(mat, B, *, transpose=False):
    """`mat @ B` (or `mat.T @ B`) for a COO matrix and a dense matrix
    (jax.experimental.sparse.coo_matmat).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.COO.fromdense(fnp.array([[1., 0.], [0., 3.]]))
        >>> sparse.coo_matmat(A, fnp.ones((2, 2)))
        Array([[1., 1.],
               [3., 3.]], dtype=float32)
    """
    B = fnp.asarray(B)
    if B.ndim != 2:
        raise ValueError(f"coo_matmat: B must be a matrix, got shape {tuple(B.shape)}")
    return _product(mat._bcoo(), B, transpose, "coo_matmat")


# --------------------------------------------------------------------------- CSR / CSC


def _csr_view(data, indices, indptr, shape):
    """A BCOO view of CSR buffers of `shape` (the row of slot i: how many row ends are at
    or before i); slots past indptr[-1] fall outside and are padding."""
    slots = fnp.arange(data.shape[0], dtype=indptr.dtype)
    rows = fnp.searchsorted(indptr[1:], slots, side="right").astype(indices.dtype)
    return BCOO((data, fnp.stack([rows, indices], axis=1)), shape=shape)


class _Compressed(JAXSparse):
    """Shared parts of CSR and CSC: buffers `data`, `indices`, `indptr`."""

    def __init__(self, args, *, shape):
        self.data, self.indices, self.indptr = map(fnp.asarray, args)
        name = type(self).__name__
        self.shape = _matrix_shape(shape, name)
        if not (self.data.ndim == self.indices.ndim == self.indptr.ndim == 1
                and self.data.shape == self.indices.shape):
            raise ValueError(f"{name}: data and indices must be vectors of one length and "
                             f"indptr a vector, got shapes {tuple(self.data.shape)}, "
                             f"{tuple(self.indices.shape)}, {tuple(self.indptr.shape)}")
        n = self.shape[0 if name == "CSR" else 1]
        if self.indptr.shape[0] != n + 1:
            raise ValueError(f"{name}: indptr.shape={tuple(self.indptr.shape)} must be "
                             f"({n + 1},) for shape {self.shape}")

    nse = property(lambda self: self.data.size, doc="The number of stored elements.")
    dtype = property(lambda self: self.data.dtype)

    def __repr__(self):
        return f"{type(self).__name__}({self.dtype}{list(self.shape)}, nse={self.nse})"

    def tree_flatten(self):
        return (self.data, self.indices, self.indptr), self.shape

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.data, obj.indices, obj.indptr = children
        obj.shape = aux
        return obj


def _csr_parts(mat, nse, index_dtype, name):
    mat, data, row, col, real = _nonzero_2d(mat, nse, name)
    m = mat.shape[0]
    counts = fnp.bincount(fnp.where(real, row, m), length=m + 1)[:m]
    indptr = fnp.concatenate([fnp.zeros((1,), index_dtype),
                              fnp.cumsum(counts).astype(index_dtype)])
    return data, col.astype(index_dtype), indptr, tuple(mat.shape)


class CSR(_Compressed):
    """A sparse matrix in compressed sparse row format (jax.experimental.sparse.CSR): the
    entries of row `r` are `data[indptr[r]:indptr[r + 1]]` in columns
    `indices[indptr[r]:indptr[r + 1]]`. It supports `fromdense`, `todense`, `.T` (a CSC),
    `@` with dense vectors and matrices, and is a pytree.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.CSR.fromdense(fnp.array([[0., 2.], [3., 4.]]))
        >>> A.indices, A.indptr
        (Array([1, 0, 1], dtype=int32), Array([0, 1, 3], dtype=int32))
        >>> A @ fnp.array([1., 1.])
        Array([2., 7.], dtype=float32)
    """

    @classmethod
    def fromdense(cls, mat, *, nse=None, index_dtype=np.int32):
        """A CSR of the nonzero entries of a dense matrix (see `csr_fromdense`).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> sparse.CSR.fromdense(fnp.eye(2)).indptr
            Array([0, 1, 2], dtype=int32)
        """
        return csr_fromdense(mat, nse=nse, index_dtype=index_dtype)

    @classmethod
    def _empty(cls, shape, *, dtype=None, index_dtype="int32"):
        shape = _matrix_shape(shape, "CSR")
        return cls((fnp.zeros((0,), dtype or fnp.float32), fnp.zeros((0,), index_dtype),
                    fnp.zeros((shape[0] + 1,), index_dtype)), shape=shape)

    @classmethod
    def _eye(cls, N, M, k, *, dtype=None, index_dtype="int32"):
        rows, cols = _diagonal(N, M, k, index_dtype)
        counts = np.bincount(np.asarray(rows), minlength=N)[:N]
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(index_dtype)
        return cls((fnp.ones(rows.shape, dtype or fnp.float32), cols, fnp.asarray(indptr)),
                   shape=(N, M))

    def _bcoo(self):
        return _csr_view(self.data, self.indices, self.indptr, self.shape)

    def todense(self):
        """The dense matrix (see `csr_todense`).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> sparse.CSR.fromdense(fnp.array([[0., 1.], [2., 0.]])).todense()
            Array([[0., 1.],
                   [2., 0.]], dtype=float32)
        """
        return csr_todense(self)

    def transpose(self, axes=None):
        if axes is not None:
            raise NotImplementedError("CSR.transpose: the axes argument is not supported")
        return CSC((self.data, self.indices, self.indptr), shape=self.shape[::-1])

    def __matmul__(self, other):
        if isinstance(other, JAXSparse):
            raise NotImplementedError("CSR @ sparse: matmul between two sparse objects")
        return _product(self._bcoo(), other, False, "CSR.__matmul__")


class CSC(_Compressed):
    """A sparse matrix in compressed sparse column format (jax.experimental.sparse.CSC):
    the entries of column `c` are `data[indptr[c]:indptr[c + 1]]` in rows
    `indices[indptr[c]:indptr[c + 1]]` (the CSR of the transpose). It supports
    `fromdense`, `todense`, `.T` (a CSR), `@` with dense vectors and matrices, and is a
    pytree.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.CSC.fromdense(fnp.array([[0., 2.], [3., 4.]]))
        >>> A.indices, A.indptr
        (Array([1, 0, 1], dtype=int32), Array([0, 1, 3], dtype=int32))
        >>> A @ fnp.array([1., 1.])
        Array([2., 7.], dtype=float32)
    """

    @classmethod
    def fromdense(cls, mat, *, nse=None, index_dtype=np.int32):
        """A CSC of the nonzero entries of a dense matrix, column by column.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> sparse.CSC.fromdense(fnp.array([[1., 1.], [0., 1.]])).indptr
            Array([0, 1, 3], dtype=int32)
        """
        return csr_fromdense(fnp.asarray(mat).T, nse=nse, index_dtype=index_dtype).T

    @classmethod
    def _empty(cls, shape, *, dtype=None, index_dtype="int32"):
        shape = _matrix_shape(shape, "CSC")
        return CSR._empty(shape[::-1], dtype=dtype, index_dtype=index_dtype).T

    @classmethod
    def _eye(cls, N, M, k, *, dtype=None, index_dtype="int32"):
        return CSR._eye(M, N, -k, dtype=dtype, index_dtype=index_dtype).T

    def _bcoo(self):  # the CSR view of the transpose, transposed back
        return _csr_view(self.data, self.indices, self.indptr, self.shape[::-1]).T

    def todense(self):
        """The dense matrix.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> sparse.CSC.fromdense(fnp.array([[0., 1.], [2., 0.]])).todense()
            Array([[0., 1.],
                   [2., 0.]], dtype=float32)
        """
        return csr_todense(self.T).T

    def transpose(self, axes=None):
        if axes is not None:
            raise NotImplementedError("CSC.transpose: the axes argument is not supported")
        return CSR((self.data, self.indices, self.indptr), shape=self.shape[::-1])

    def __matmul__(self, other):
        if isinstance(other, JAXSparse):
            raise NotImplementedError("CSC @ sparse: matmul between two sparse objects")
        view = _csr_view(self.data, self.indices, self.indptr, self.shape[::-1])
        return _product(view, other, True, "CSC.__matmul__")


for _cls in (COO, CSR, CSC):
    register_pytree_node(_cls, lambda m: m.tree_flatten(), _cls.tree_unflatten)
del _cls


def csr_fromdense(mat, *, nse=None, index_dtype=np.int32):
    """A CSR matrix of the nonzero entries of `mat`, row by row
    (jax.experimental.sparse.csr_fromdense). `nse` defaults to the number of nonzeros
    (pass it under `jit`); extra slots hold zeros past `indptr[-1]`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.csr_fromdense(fnp.array([[0., 1.], [2., 3.]]))
        >>> A.data, A.indices, A.indptr
        (Array([1., 2., 3.], dtype=float32), Array([1, 0, 1], dtype=int32), Array([0, 1, 3], dtype=int32))
    """
    data, indices, indptr, shape = _csr_parts(mat, nse, index_dtype, "csr_fromdense")
    return CSR((data, indices, indptr), shape=shape)


def csr_todense(mat):
    """The dense matrix a CSR stands for (jax.experimental.sparse.csr_todense).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.CSR((fnp.array([4.]), fnp.array([0]), fnp.array([0, 0, 1])), shape=(2, 2))
        >>> sparse.csr_todense(A)
        Array([[0., 0.],
               [4., 0.]], dtype=float32)
    """
    if not isinstance(mat, CSR):
        raise TypeError(f"csr_todense: expected a CSR, got {type(mat).__name__}")
    return bcoo_todense(mat._bcoo())


def csr_matvec(mat, v, transpose=False):
    """`mat @ v` (or `mat.T @ v`) for a CSR matrix and a dense vector
    (jax.experimental.sparse.csr_matvec).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.CSR.fromdense(fnp.array([[1., 2.], [0., 3.]]))
        >>> sparse.csr_matvec(A, fnp.array([1., 1.]), transpose=True)
        Array([1., 5.], dtype=float32)
    """
    v = fnp.asarray(v)
    if v.ndim != 1:
        raise ValueError(f"csr_matvec: v must be a vector, got shape {tuple(v.shape)}")
    return _product(mat._bcoo(), v, transpose, "csr_matvec")


def csr_matmat(mat, B, *, transpose=False):
    """`mat @ B` (or `mat.T @ B`) for a CSR matrix and a dense matrix
    (jax.experimental.sparse.csr_matmat).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.CSR.fromdense(fnp.array([[1., 0.], [0., 3.]]))
        >>> sparse.csr_matmat(A, fnp.ones((2, 1)))
        Array([[1.],
               [3.]], dtype=float32)
    """
    B = fnp.asarray(B)
    if B.ndim != 2:
        raise ValueError(f"csr_matmat: B must be a matrix, got shape {tuple(B.shape)}")
    return _product(mat._bcoo(), B, transpose, "csr_matmat")
