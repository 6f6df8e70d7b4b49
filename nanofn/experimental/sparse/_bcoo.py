"""The BCOO (batched coordinate) sparse array and its operations (jax.experimental.sparse.bcoo).

A BCOO array of shape `batch + sparse + dense` stores `data` of shape
`batch + (nse,) + dense` and `indices` of shape `batch + (nse, n_sparse)`: entry `i` of a
batch puts the block `data[..., i, ...]` at the sparse position `indices[..., i, :]`.
Duplicate positions add up; a position outside the sparse shape (padding, by convention
the sparse shape itself) contributes nothing.

Every operation here is written with nanofn's differentiable operations: gathers
(`take`) read dense operands at the stored positions and `nanofn.ops.segment_sum` adds
entries into a dense result, so `grad`, `jit` and `vmap` need no rules of their own. The
operations work on the linear position of each entry in the sparse shape (row-major), with
entries out of range masked to zero.
"""

from __future__ import annotations

import math
import operator
from typing import NamedTuple

import numpy as np

import nanofn.numpy as fnp
from nanofn import lax as _lax
from nanofn import ops as _ops
from nanofn._core import ShapeError as _ShapeError, Tracer as _Tracer
from nanofn.tree_util import register_pytree_node

__all__ = [
    "BCOO", "JAXSparse", "SparseEfficiencyError", "SparseEfficiencyWarning",
    "bcoo_dot_general", "bcoo_extract", "bcoo_fromdense", "bcoo_multiply_dense",
    "bcoo_multiply_sparse", "bcoo_reduce_sum", "bcoo_sort_indices", "bcoo_sum_duplicates",
    "bcoo_todense", "bcoo_transpose", "empty", "eye", "todense",
]


class SparseEfficiencyError(ValueError):
    """Raised where an operation would store many explicit zeros
    (jax.experimental.sparse.SparseEfficiencyError).

    Example:
        >>> from nanofn.experimental import sparse
        >>> issubclass(sparse.SparseEfficiencyError, ValueError)
        True
    """


class SparseEfficiencyWarning(UserWarning):
    """Warning counterpart of `SparseEfficiencyError`
    (jax.experimental.sparse.SparseEfficiencyWarning).

    Example:
        >>> from nanofn.experimental import sparse
        >>> issubclass(sparse.SparseEfficiencyWarning, UserWarning)
        True
    """


class SparseInfo(NamedTuple):
    """The static part of a BCOO (its pytree auxiliary data)."""
    shape: tuple
    indices_sorted: bool = False
    unique_indices: bool = False


# --------------------------------------------------------------------------- helpers


def _shape_tuple(shape):
    try:
        return tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"BCOO: shape must be a sequence of ints, got {shape!r}") from None


def _layout(data_shape, indices_shape, shape):
    """(n_batch, n_sparse, n_dense, nse) of a BCOO, checking that the buffers fit `shape`."""
    if len(indices_shape) < 2:
        raise ValueError(f"BCOO: indices must have at least 2 dimensions (nse, n_sparse), "
                         f"got indices.shape={tuple(indices_shape)}")
    n_batch = len(indices_shape) - 2
    nse, n_sparse = indices_shape[-2:]
    n_dense = len(shape) - n_batch - n_sparse
    if n_dense < 0:
        raise ValueError(f"BCOO: indices.shape={tuple(indices_shape)} (n_batch={n_batch}, "
                         f"n_sparse={n_sparse}) has more dimensions than shape={shape}")
    if any(s not in (1, t) for s, t in zip(indices_shape[:n_batch], shape[:n_batch])):
        raise ValueError(f"BCOO: indices batch dimensions {tuple(indices_shape[:n_batch])} "
                         f"do not fit shape={shape}")
    if len(data_shape) != n_batch + 1 + n_dense or any(
            s not in (1, t) for s, t in zip(data_shape[:n_batch], shape[:n_batch])):
        raise ValueError(f"BCOO: data.shape={tuple(data_shape)} does not fit shape={shape} "
                         f"with indices.shape={tuple(indices_shape)} (n_batch={n_batch}, "
                         f"nse={nse}, n_dense={n_dense})")
    if tuple(data_shape[n_batch:]) != (nse,) + tuple(shape[n_batch + n_sparse:]):
        raise ValueError(f"BCOO: data.shape={tuple(data_shape)} does not fit shape={shape}: "
                         f"expected {(nse,) + tuple(shape[n_batch + n_sparse:])} after the "
                         f"{n_batch} batch dimensions (nse={nse}, n_dense={n_dense})")
    return n_batch, n_sparse, n_dense, nse


def _index_dtype(size):
    return np.int32 if size < 2 ** 31 - 1 else np.int64


def _linear(indices, dims):
    """Row-major linear positions of `indices` (..., k) within `dims`, and whether each
    row is in range. Out-of-range rows get position 0 (callers mask them)."""
    dims = tuple(dims)
    lead = indices.shape[:-1]
    if any(d == 0 for d in dims):
        return fnp.zeros(lead, np.int32), fnp.zeros(lead, bool)
    if not dims:
        return fnp.zeros(lead, np.int32), fnp.ones(lead, bool)
    dt = _index_dtype(math.prod(dims))
    idx = indices.astype(dt)
    upper = np.asarray(dims, dt)
    valid = fnp.all((idx >= 0) & (idx < upper), axis=-1)
    idx = fnp.clip(idx, 0, upper - 1)
    strides = np.asarray([math.prod(dims[i + 1:]) for i in range(len(dims))], dt)
    lin = fnp.sum(idx * strides, axis=-1).astype(dt)
    return lin, valid


def _mask(x, valid):
    """`x` with the rows (leading axis) where `valid` is False set to zero."""
    valid = fnp.reshape(valid, valid.shape + (1,) * (x.ndim - valid.ndim))
    return fnp.where(valid, x, fnp.zeros((), x.dtype))


def _is_bcoo(x):
    return isinstance(x, BCOO)


def _need(name, mat, *, n_batch=True, n_dense=False):
    """Raise NotImplementedError when `mat`'s layout is one `name` does not handle."""
    if n_batch and mat.n_batch:
        raise NotImplementedError(f"{name}: BCOO arrays with n_batch > 0 are not supported "
                                  f"by nanofn (got n_batch={mat.n_batch}); convert with "
                                  "BCOO.fromdense(x.todense()) first")
    if n_dense and mat.n_dense:
        raise NotImplementedError(f"{name}: BCOO arrays with n_dense > 0 are not supported "
                                  f"by nanofn (got n_dense={mat.n_dense})")


def _broadcast_batch(mat):
    """`mat` with data and indices broadcast to its full batch shape."""
    nb = mat.n_batch
    if nb == 0 or (mat.data.shape[:nb] == mat.indices.shape[:nb] == mat.shape[:nb]):
        return mat
    batch = mat.shape[:nb]
    return BCOO((fnp.broadcast_to(mat.data, batch + mat.data.shape[nb:]),
                 fnp.broadcast_to(mat.indices, batch + mat.indices.shape[nb:])),
                shape=mat.shape, indices_sorted=mat.indices_sorted,
                unique_indices=mat.unique_indices)


def _flatten_batch(mat):
    """(data, indices) of `mat` with its batch dimensions turned into sparse ones:
    data (N, *dense), indices (N, n_batch + n_sparse), over `mat.shape[:n_batch+n_sparse]`."""
    nb = mat.n_batch
    if nb == 0:
        return mat.data, mat.indices
    batch = mat.shape[:nb]
    nse = mat.nse
    data = fnp.broadcast_to(mat.data, batch + mat.data.shape[nb:])
    indices = fnp.broadcast_to(mat.indices, batch + mat.indices.shape[nb:])
    grids = fnp.meshgrid(*[fnp.arange(b, dtype=indices.dtype) for b in batch], indexing="ij")
    bidx = fnp.stack([fnp.broadcast_to(g[..., None], batch + (nse,)) for g in grids], -1)
    indices = fnp.concatenate([bidx, indices], axis=-1)
    n = math.prod(batch) * nse
    return (fnp.reshape(data, (n,) + data.shape[nb + 1:]),
            fnp.reshape(indices, (n, indices.shape[-1])))


def _batched(fn, nb, *args):
    """`fn` applied to each batch element of its arguments (nanofn.vmap, `nb` times): BCOO
    arguments (all with n_batch = nb and one batch shape) are passed with n_batch = 0,
    dense ones lose their leading `nb` axes (they must have the full batch shape). A BCOO
    result gets the batch dimensions back as its leading `nb` dimensions."""
    if nb == 0:
        return fn(*args)
    batch = next(a.shape[:nb] for a in args if _is_bcoo(a))
    leaves, specs = [], []
    for a in args:
        if _is_bcoo(a):
            leaves += [fnp.broadcast_to(a.data, batch + a.data.shape[nb:]),
                       fnp.broadcast_to(a.indices, batch + a.indices.shape[nb:])]
            specs.append((a.shape[nb:], a.indices_sorted, a.unique_indices))
        else:
            leaves.append(a)
            specs.append(None)
    box = {}

    def one(*flat):
        it = iter(flat)
        call = [next(it) if s is None else
                BCOO((next(it), next(it)), shape=s[0], indices_sorted=s[1], unique_indices=s[2])
                for s in specs]
        out = fn(*call)
        if not _is_bcoo(out):
            return out
        box["info"] = (out.shape, out.indices_sorted, out.unique_indices)
        return out.data, out.indices

    for _ in range(nb):
        one = _vmap(one)
    out = one(*leaves)
    if "info" not in box:
        return out
    shape, sorted_, unique = box["info"]
    return BCOO(out, shape=batch + shape, indices_sorted=sorted_, unique_indices=unique)


def _concrete_int(x, what):
    if isinstance(x, _Tracer):
        try:
            return int(x)
        except Exception:  # a traced value: the size of the result cannot depend on it
            raise _concretization(what) from None
    return int(np.asarray(x))


def _concretization(what):
    from nanofn.errors import ConcretizationTypeError
    try:
        return ConcretizationTypeError(
            f"{what}: the number of stored elements depends on the values of a traced array; "
            "pass nse= (a Python int) to use it under jit or vmap")
    except TypeError:  # an error class that wants other arguments
        return ValueError(f"{what}: pass nse= to use it under a transformation")


# --------------------------------------------------------------------------- base class


class JAXSparse:
    """Base class of nanofn's sparse arrays (jax.experimental.sparse.JAXSparse): `shape`,
    `ndim`, `size`, `len()` and `T`; arithmetic and reductions come from subclasses.

    Example:
        >>> from nanofn.experimental import sparse
        >>> isinstance(sparse.eye(2), sparse.JAXSparse)
        True
    """

    __hash__ = None
    __array_ufunc__ = None  # numpy defers to our reflected operators (`ndarray @ BCOO`)
    __array_priority__ = 1000

    def __len__(self):
        return self.shape[0]

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def T(self):
        return self.transpose()

    def block_until_ready(self):
        return self

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"{type(self).__name__}: nanofn.numpy and numpy functions do not take "
                        "sparse arrays; call .todense() first, use the array's operators and "
                        "methods, or wrap the function with sparse.sparsify")

    def _unsupported(name):
        def method(self, *args, **kwargs):
            raise NotImplementedError(f"{type(self).__name__}.{name} is not implemented in "
                                      "nanofn's sparse arrays")
        method.__name__ = name
        return method

    reshape = _unsupported("reshape")
    __getitem__ = _unsupported("__getitem__")
    __iter__ = _unsupported("__iter__")
    __pow__ = _unsupported("__pow__")
    __rpow__ = _unsupported("__rpow__")
    __rtruediv__ = _unsupported("__rtruediv__")
    del _unsupported


# --------------------------------------------------------------------------- BCOO


class BCOO(JAXSparse):
    """A sparse array in batched coordinate format (jax.experimental.sparse.BCOO).

    `BCOO((data, indices), shape=shape)`: `data` of shape `batch + (nse,) + dense` holds
    the stored values, `indices` of shape `batch + (nse, n_sparse)` their positions among
    the sparse dimensions. Duplicates add up; positions out of range (padding uses the
    sparse shape itself) contribute nothing. `indices_sorted` and `unique_indices` are
    promises about `indices` that operations pass on.

    A BCOO is a pytree (children `data` and `indices`), so it passes through `jit`,
    `vmap` (mapping a leading batch dimension) and `grad` (through functions of `data`).
    Its operators: `@` with dense arrays (both sides) and other BCOOs, `*` and `/` with
    scalars and dense arrays, `*` with another BCOO, `+`/`-` with another BCOO of the same
    shape or a dense array, unary `-`, `abs`, `**`, basic indexing and iteration; methods
    `todense`, `transpose`/`T`, `reshape`, `sum`, `sum_duplicates`, `sort_indices`,
    `update_layout`, `astype`.

    Differences from JAX: `A * B` of two BCOOs keeps `A`'s indices (nse of `A`) instead of
    JAX's `nse_A * nse_B`; products of two BCOOs need n_batch = n_dense = 0.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> M = fnp.array([[0., 2., 0.], [1., 0., 4.]])
        >>> A = sparse.BCOO.fromdense(M)
        >>> A
        BCOO(float32[2, 3], nse=3)
        >>> A.data
        Array([2., 1., 4.], dtype=float32)
        >>> A.indices
        Array([[0, 1],
               [1, 0],
               [1, 2]], dtype=int32)
        >>> A @ fnp.ones(3)
        Array([2., 5.], dtype=float32)
        >>> B = sparse.BCOO((fnp.array([1., 3.]), fnp.array([[0, 0], [1, 1]])), shape=(2, 2))
        >>> B.todense()
        Array([[1., 0.],
               [0., 3.]], dtype=float32)
    """

    def __init__(self, args, *, shape, indices_sorted=False, unique_indices=False):
        data, indices = args
        self.data = fnp.asarray(data)
        self.indices = fnp.asarray(indices)
        if not np.issubdtype(self.indices.dtype, np.integer):
            raise TypeError(f"BCOO: indices must be integers, got dtype {self.indices.dtype}")
        self.shape = _shape_tuple(shape)
        self.indices_sorted = bool(indices_sorted)
        self.unique_indices = bool(unique_indices)
        _layout(self.data.shape, self.indices.shape, self.shape)

    # -- layout
    @property
    def _info(self):
        return SparseInfo(self.shape, self.indices_sorted, self.unique_indices)

    @property
    def nse(self) -> int:
        """The number of stored elements (per batch)."""
        return self.indices.shape[-2]

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def n_batch(self) -> int:
        return self.indices.ndim - 2

    @property
    def n_sparse(self) -> int:
        return self.indices.shape[-1]

    @property
    def n_dense(self) -> int:
        return self.data.ndim - 1 - self.n_batch

    def __repr__(self):
        try:
            extra = f", nse={self.nse}"
            if self.n_batch:
                extra += f", n_batch={self.n_batch}"
            if self.n_dense:
                extra += f", n_dense={self.n_dense}"
            return f"BCOO({self.dtype}{list(self.shape)}{extra})"
        except Exception:
            return "BCOO(<invalid>)"

    # -- pytree
    def tree_flatten(self):
        return (self.data, self.indices), tuple(self._info)

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        obj.data, obj.indices = children
        shape, obj.indices_sorted, obj.unique_indices = aux
        obj.shape = _vmapped_shape(tuple(shape), obj.data, obj.indices)
        return obj

    # -- constructors
    @classmethod
    def fromdense(cls, mat, *, nse=None, index_dtype=np.int32, n_dense=0, n_batch=0):
        """A BCOO holding the nonzero entries of the dense array `mat` (see `bcoo_fromdense`).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> sparse.BCOO.fromdense(fnp.eye(3), nse=4).data
            Array([1., 1., 1., 0.], dtype=float32)
        """
        return bcoo_fromdense(mat, nse=nse, n_batch=n_batch, n_dense=n_dense,
                              index_dtype=index_dtype)

    @classmethod
    def from_scipy_sparse(cls, mat, *, index_dtype=None, n_dense=0, n_batch=0):
        """A BCOO with the entries of a scipy.sparse matrix or array.

        Example:
            >>> import scipy.sparse
            >>> from nanofn.experimental import sparse
            >>> sparse.BCOO.from_scipy_sparse(scipy.sparse.eye(2, dtype='float32')).todense()
            Array([[1., 0.],
                   [0., 1.]], dtype=float32)
        """
        if n_dense or n_batch:
            raise NotImplementedError("BCOO.from_scipy_sparse with n_batch or n_dense > 0")
        coo = mat.tocoo()
        indices = np.stack([coo.row, coo.col], axis=1).astype(index_dtype or np.int32)
        return cls((fnp.asarray(coo.data), fnp.asarray(indices)), shape=coo.shape)

    # -- conversions and methods
    def todense(self):
        """The dense array this BCOO stands for (see `bcoo_todense`).

        Example:
            >>> from nanofn.experimental import sparse
            >>> sparse.eye(2).todense()
            Array([[1., 0.],
                   [0., 1.]], dtype=float32)
        """
        return bcoo_todense(self)

    def transpose(self, axes=None):
        """The transposed array: `axes` permutes the dimensions (reversed by default).

        Example:
            >>> from nanofn.experimental import sparse
            >>> sparse.eye(2, 3, k=1).transpose().shape
            (3, 2)
        """
        perm = tuple(range(self.ndim))[::-1] if axes is None else tuple(axes)
        out = bcoo_transpose(self, permutation=perm)
        sparse_perm = perm[self.n_batch:self.n_batch + self.n_sparse]
        keeps_order = sparse_perm == tuple(range(self.n_batch, self.n_batch + self.n_sparse))
        out.indices_sorted = self.indices_sorted and keeps_order
        return out

    def sum(self, axis=None, dtype=None, keepdims=False):
        """Sum over `axis`: a BCOO, or (all axes, the default) a dense scalar, as in JAX.
        `dtype` and `keepdims` as in `nanofn.numpy.sum`.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> A = sparse.BCOO.fromdense(fnp.array([[1., 0.], [2., 3.]]))
            >>> A.sum(0).todense()
            Array([3., 3.], dtype=float32)
            >>> A.sum()
            Array(6., dtype=float32)
            >>> A.sum(1, keepdims=True).shape
            (2, 1)
        """
        if dtype is not None or keepdims:
            return _sparsify(lambda x: fnp.sum(x, axis=axis, dtype=dtype,
                                               keepdims=keepdims))(self)
        if axis is None:
            return fnp.sum(bcoo_reduce_sum(self, axes=tuple(range(self.ndim))).data)
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        axes = tuple(operator.index(a) % self.ndim if -self.ndim <= a < self.ndim
                     else _bad_axis(a, self.shape) for a in axes)
        out = bcoo_reduce_sum(self, axes=axes)
        return fnp.sum(out.data) if out.ndim == 0 else out

    def sum_duplicates(self, nse=None, remove_zeros=True):
        """A copy with entries at the same position added, sorted; explicit zeros dropped
        unless `remove_zeros=False` (see `bcoo_sum_duplicates`).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> A = sparse.BCOO((fnp.array([1., 2.]), fnp.array([[1], [1]])), shape=(3,))
            >>> A.sum_duplicates().data
            Array([3.], dtype=float32)
        """
        return _sum_duplicates(self, nse, remove_zeros, "BCOO.sum_duplicates")

    def sort_indices(self):
        """A copy with the entries in row-major order of their positions.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> A = sparse.BCOO((fnp.array([1., 2.]), fnp.array([[2], [0]])), shape=(3,))
            >>> A.sort_indices().indices.ravel()
            Array([0, 2], dtype=int32)
        """
        return bcoo_sort_indices(self)

    def astype(self, dtype):
        """A copy with `data` converted to `dtype`.

        Example:
            >>> from nanofn.experimental import sparse
            >>> sparse.eye(2).astype("int32").dtype
            dtype('int32')
        """
        return BCOO((self.data.astype(dtype), self.indices), shape=self.shape,
                    indices_sorted=self.indices_sorted, unique_indices=self.unique_indices)

    def reshape(self, *args, **kwargs):
        """The array with a new shape, as `nanofn.numpy.reshape` (see `bcoo_reshape` for
        the dimensions that can be combined).

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> sparse.BCOO.fromdense(fnp.array([[0., 1.], [2., 0.]])).reshape(-1).todense()
            Array([0., 1., 2., 0.], dtype=float32)
        """
        return _sparsify(lambda x: x.reshape(*args, **kwargs))(self)

    def __getitem__(self, idx):
        """Basic indexing (integers, slices, None, Ellipsis) of a BCOO, giving a BCOO.

        Example:
            >>> import nanofn.numpy as fnp
            >>> from nanofn.experimental import sparse
            >>> A = sparse.BCOO.fromdense(fnp.array([[0., 1.], [2., 0.]]))
            >>> A[1].todense(), A[:, ::-1].todense()
            (Array([2., 0.], dtype=float32), Array([[1., 0.],
                   [0., 2.]], dtype=float32))
        """
        out = _sparsify(lambda x: x[idx])(self)
        return out if _is_bcoo(out) else bcoo_fromdense(out)

    def __iter__(self):
        return iter(self[i] for i in range(self.shape[0]))

    def __pow__(self, other):
        return _sparsify(lambda x: fnp.power(x, other))(self)

    def update_layout(self, *, n_batch=None, n_dense=None, on_inefficient="error"):
        """The same array with `n_batch` batch and `n_dense` dense dimensions (see
        `bcoo_update_layout`).

        Example:
            >>> from nanofn.experimental import sparse
            >>> sparse.eye(3).update_layout(n_batch=1, on_inefficient=None).data.shape
            (3, 3)
        """
        from nanofn.experimental.sparse._bcoo_shape import bcoo_update_layout
        return bcoo_update_layout(self, n_batch=n_batch, n_dense=n_dense,
                                  on_inefficient=on_inefficient)

    @classmethod
    def _empty(cls, shape, *, dtype=None, index_dtype="int32", n_dense=0, n_batch=0, nse=0):
        """A BCOO of `shape` with `nse` padding entries (see `sparse.empty`)."""
        return empty(shape, dtype=dtype, index_dtype=index_dtype, n_dense=n_dense,
                     n_batch=n_batch, nse=nse)

    @classmethod
    def _eye(cls, N, M, k, *, dtype=None, index_dtype="int32", n_batch=0, n_dense=0):
        """A BCOO `N x M` matrix with ones on diagonal `k` (see `sparse.eye`)."""
        return eye(N, M, k, dtype=dtype, index_dtype=index_dtype, n_batch=n_batch,
                   n_dense=n_dense)

    def _with_data(self, data):
        return BCOO((data, self.indices), shape=self.shape,
                    indices_sorted=self.indices_sorted, unique_indices=self.unique_indices)

    def _unique(self):
        """Self with duplicates added (same nse), for elementwise functions that are not
        linear (abs(a) + abs(b) is not abs(a + b))."""
        if self.unique_indices:
            return self
        return _sum_duplicates(self, self.nse, False, "BCOO")

    # -- operators
    def __neg__(self):
        return self._with_data(-self.data)

    def __pos__(self):
        return self

    def __abs__(self):
        u = self._unique()
        return u._with_data(fnp.abs(u.data))

    def __matmul__(self, other):
        return _matmul(self, other)

    def __rmatmul__(self, other):
        return _matmul(other, self)

    def __mul__(self, other):
        return _multiply(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if _is_bcoo(other):
            raise NotImplementedError("BCOO / BCOO: division by a sparse array would give a "
                                      "dense result; divide by other.todense()")
        if type(other) in (bool, int, float, complex):
            return self._with_data(self.data / other)
        other = fnp.asarray(other)
        if other.ndim == 0:
            return self._with_data(self.data / other)
        vals = _gather_dense(self, other, "BCOO.__truediv__")
        return _broadcast_batch(self)._with_data(_broadcast_batch(self).data / vals)

    def __add__(self, other):
        return _add(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        return _add(self, -other)

    def __rsub__(self, other):
        return _add(-self, other)


def _sparsify(f):
    from nanofn.experimental.sparse._transform import sparsify
    return sparsify(f)


def _bad_axis(a, shape):
    raise ValueError(f"axis {a} is out of bounds for a BCOO of shape {shape}")


def _vmapped_shape(shape, data, indices):
    """The shape of a BCOO rebuilt from children that `vmap` mapped or stacked.

    vmap sees a BCOO as its leaves `data` and `indices`: mapping an axis removes it from
    both, stacking outputs inserts one, while the static shape stays as it was. Here the
    shape is made to agree with the children again (JAX does this with a vmappable rule):
    the axis removed or inserted is a batch axis (one of the leading `n_batch`)."""
    if not (hasattr(data, "shape") and hasattr(indices, "shape")):
        return shape  # a tree of non-array leaves (vmap's axis specs, tree utilities)
    if indices.ndim < 2:
        raise ValueError("vmap over a BCOO maps a batch dimension: this BCOO has n_batch=0 "
                         f"(shape {shape}); pass it with in_axes=None, or build it with "
                         "BCOO.fromdense(..., n_batch=1)")
    n_batch = indices.ndim - 2
    expected = n_batch + indices.shape[-1] + max(data.ndim - 1 - n_batch, 0)
    sizes = tuple(max(a, b) for a, b in zip(data.shape[:n_batch], indices.shape[:n_batch]))
    fits = lambda b: all(s in (1, t) for s, t in zip(sizes, b))  # noqa: E731
    if len(shape) == expected + 1:  # a batch axis was mapped away
        for k in range(n_batch + 1):
            new = shape[:k] + shape[k + 1:]
            if fits(new[:n_batch]):
                return new
    elif len(shape) == expected - 1:  # outputs were stacked along a new batch axis
        for k in range(n_batch):
            new = shape[:k] + (sizes[k],) + shape[k:]
            if fits(new[:n_batch]):
                return new
    return shape


register_pytree_node(BCOO, lambda m: m.tree_flatten(), BCOO.tree_unflatten)


# --------------------------------------------------------------------------- todense / fromdense


def bcoo_todense(mat):
    """The dense array a BCOO stands for: entries added at their positions, padding
    (out-of-range positions) ignored (jax.experimental.sparse.bcoo_todense). Any
    n_batch and n_dense.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO((fnp.array([1., 2., 5.]), fnp.array([[0], [0], [3]])), shape=(3,))
        >>> sparse.bcoo_todense(A)
        Array([3., 0., 0.], dtype=float32)
    """
    if not _is_bcoo(mat):
        raise TypeError(f"bcoo_todense: expected a BCOO, got {type(mat).__name__}")
    data, indices = _flatten_batch(mat)
    k = mat.n_batch + mat.n_sparse
    sdims, ddims = mat.shape[:k], mat.shape[k:]
    lin, valid = _linear(indices, sdims)
    out = _ops.segment_sum(_mask(data, valid), lin, num_segments=math.prod(sdims))
    return fnp.reshape(out, sdims + ddims)


def _extract(indices, dims, dense):
    """The blocks of `dense` (shape dims + block) at `indices` (N, len(dims)); 0 for
    out-of-range rows."""
    lin, valid = _linear(indices, dims)
    flat = fnp.reshape(dense, (math.prod(dims),) + dense.shape[len(dims):])
    if flat.shape[0] == 0:
        return fnp.zeros(lin.shape + flat.shape[1:], dense.dtype)
    return _mask(fnp.take(flat, lin, axis=0), valid)


def bcoo_fromdense(mat, *, nse=None, n_batch=0, n_dense=0, index_dtype=np.int32):
    """A BCOO of the nonzero entries of a dense array, in row-major order
    (jax.experimental.sparse.bcoo_fromdense).

    `nse` entries are stored per batch (default: the largest number of nonzeros in a
    batch, which needs a concrete `mat`; pass it under `jit`). Extra slots are padding:
    zero data at index `shape` (out of range); with too small an `nse` the later nonzeros
    are dropped. The first `n_batch` dimensions become batch dimensions and the last
    `n_dense` dense blocks (stored whole when any element is nonzero). The data is a gather
    from `mat`, so gradients flow to `mat`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.bcoo_fromdense(fnp.array([0., 3., 0., 4.]), nse=3)
        >>> A.data, A.indices.ravel()
        (Array([3., 4., 0.], dtype=float32), Array([1, 3, 4], dtype=int32))
    """
    mat = fnp.asarray(mat)
    n_batch, n_dense = operator.index(n_batch), operator.index(n_dense)
    if n_batch < 0 or n_dense < 0 or n_batch + n_dense > mat.ndim:
        raise ValueError(f"bcoo_fromdense: n_batch={n_batch} and n_dense={n_dense} must be "
                         f"non-negative and add up to at most mat.ndim={mat.ndim} "
                         f"(mat.shape={tuple(mat.shape)})")
    n_sparse = mat.ndim - n_batch - n_dense
    sdims = tuple(mat.shape[n_batch:n_batch + n_sparse])
    mask = mat != 0
    if n_dense:
        mask = fnp.any(mask, axis=tuple(range(mat.ndim - n_dense, mat.ndim)))
    counts = fnp.sum(mask, axis=tuple(range(n_batch, mask.ndim)), dtype=np.int32)
    if nse is None:
        nse = _concrete_int(fnp.max(counts, initial=0), "bcoo_fromdense") \
            if counts.size else 0
    nse = operator.index(nse)
    if nse < 0:
        raise ValueError(f"bcoo_fromdense: nse must be non-negative, got {nse}")

    def one(m, x):  # one batch element: mask of shape sdims, values of shape sdims + dense
        if n_sparse:
            idx = fnp.stack(fnp.nonzero(m, size=nse, fill_value=sdims), axis=-1)
        else:
            idx = fnp.zeros((nse, 0), np.int32)
        return idx.astype(index_dtype), _extract(idx, sdims, x)

    for _ in range(n_batch):
        one = _vmap(one)
    indices, data = one(mask, mat)
    # slots past a batch's count are padding (only matters when n_sparse == 0)
    keep = fnp.arange(nse, dtype=np.int32) < counts[..., None]
    data = fnp.where(fnp.reshape(keep, keep.shape + (1,) * n_dense), data,
                     fnp.zeros((), data.dtype))
    return BCOO((data, indices), shape=tuple(mat.shape), indices_sorted=True,
                unique_indices=True)


def _vmap(f):
    import nanofn
    return nanofn.vmap(f)


def bcoo_extract(sparr, arr, *, assume_unique=None):
    """A BCOO with `sparr`'s indices and the values of the dense `arr` at them
    (jax.experimental.sparse.bcoo_extract). With duplicate indices each
    copy reads the full value (`assume_unique=False`, which JAX uses to read it once, is
    not supported).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> sparse.bcoo_extract(sparse.eye(2), fnp.full((2, 2), 7.)).data
        Array([7., 7.], dtype=float32)
    """
    if not _is_bcoo(sparr):
        raise TypeError(f"bcoo_extract: expected a BCOO first, got {type(sparr).__name__}")
    arr = fnp.asarray(arr)
    if tuple(arr.shape) != sparr.shape:
        raise _ShapeError(f"bcoo_extract: shape mismatch: sparr.shape={sparr.shape}, "
                         f"arr.shape={tuple(arr.shape)}")
    if assume_unique is False and not sparr.unique_indices:
        raise NotImplementedError("bcoo_extract: assume_unique=False")
    if sparr.n_batch:
        nb = sparr.n_batch
        sp = _broadcast_batch(sparr)
        return _batched(lambda s, a: bcoo_extract(s, a, assume_unique=assume_unique), nb,
                        sp, arr)
    data = _extract(sparr.indices, sparr.shape[:sparr.n_sparse], arr)
    return BCOO((data, sparr.indices), shape=sparr.shape, indices_sorted=sparr.indices_sorted,
                unique_indices=sparr.unique_indices)


# --------------------------------------------------------------------------- transpose


def bcoo_transpose(mat, *, permutation):
    """Permute the dimensions of a BCOO (jax.experimental.sparse.bcoo_transpose): batch
    dimensions among themselves, sparse among themselves (by permuting index columns),
    dense among themselves, as JAX requires.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO.fromdense(fnp.array([[0., 1.], [0., 0.]]))
        >>> sparse.bcoo_transpose(A, permutation=(1, 0)).todense()
        Array([[0., 0.],
               [1., 0.]], dtype=float32)
    """
    perm = tuple(operator.index(p) for p in permutation)
    if sorted(perm) != list(range(mat.ndim)):
        raise TypeError(f"bcoo_transpose: permutation {perm} is not a permutation of the "
                        f"dimensions of shape {mat.shape}")
    nb, ns = mat.n_batch, mat.n_sparse
    bperm, sperm, dperm = perm[:nb], perm[nb:nb + ns], perm[nb + ns:]
    if sorted(bperm) != list(range(nb)):
        raise NotImplementedError(f"bcoo_transpose: permutation {perm} moves batch axes "
                                  f"to non-batch positions (n_batch={nb})")
    if sorted(dperm) != list(range(nb + ns, mat.ndim)):
        raise NotImplementedError(f"bcoo_transpose: permutation {perm} moves dense axes "
                                  f"to non-dense positions (n_dense={mat.n_dense})")
    indices = mat.indices
    if sperm != tuple(range(nb, nb + ns)):
        indices = fnp.take(indices, np.asarray([p - nb for p in sperm], np.int32), axis=-1)
    indices = fnp.transpose(indices, bperm + (nb, nb + 1))
    data = fnp.transpose(mat.data, bperm + (nb,) + tuple(p - ns + 1 for p in dperm))
    return BCOO((data, indices), shape=tuple(mat.shape[p] for p in perm),
                unique_indices=mat.unique_indices)


# --------------------------------------------------------------------------- dot_general


def _norm_dims(dimension_numbers):
    try:
        (lc, rc), (lb, rb) = dimension_numbers
        return (tuple(map(operator.index, lc)), tuple(map(operator.index, rc)),
                tuple(map(operator.index, lb)), tuple(map(operator.index, rb)))
    except (TypeError, ValueError):
        raise TypeError("bcoo_dot_general: dimension_numbers must be "
                        "((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch)), got "
                        f"{dimension_numbers!r}") from None


def _check_dot(lshape, rshape, lc, rc, lb, rb):
    for name, dims, shape in (("lhs", lc + lb, lshape), ("rhs", rc + rb, rshape)):
        if any(not 0 <= d < len(shape) for d in dims) or len(set(dims)) != len(dims):
            raise _ShapeError(f"bcoo_dot_general: {name} dimensions {dims} are out of range or "
                            f"repeated for {name} of shape {tuple(shape)}")
    if len(lc) != len(rc) or len(lb) != len(rb):
        raise _ShapeError("bcoo_dot_general: lhs and rhs need as many contracting and batch "
                        f"dimensions, got {(lc, rc)} and {(lb, rb)}")
    for what, ld, rd in (("contracting", lc, rc), ("batch", lb, rb)):
        ls, rs = tuple(lshape[d] for d in ld), tuple(rshape[d] for d in rd)
        if ls != rs:
            raise _ShapeError(f"bcoo_dot_general requires {what} dimensions to have the same "
                            f"shape, got {ls} and {rs} (lhs shape {tuple(lshape)}, rhs shape "
                            f"{tuple(rshape)})")


def bcoo_dot_general(lhs, rhs, *, dimension_numbers, precision=None,
                     preferred_element_type=None, out_sharding=None):
    """`lax.dot_general` where one or both operands are BCOO
    (jax.experimental.sparse.bcoo_dot_general).

    With one dense operand the result is dense: each stored entry reads the matching slice
    of the dense operand (a gather) and the products are added into the result at the
    entry's free and batch positions (`segment_sum`). Any dimension numbers over the
    sparse (and batch) dimensions work; contracting or batching a dense dimension
    (`n_dense > 0`) raises NotImplementedError. Two BCOOs give a BCOO of
    `lhs.nse * rhs.nse` entries (every pair; those that do not meet are padding), n_batch
    = n_dense = 0 only. `precision` is ignored.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO.fromdense(fnp.array([[1., 0.], [0., 2.]]))
        >>> sparse.bcoo_dot_general(A, fnp.array([[1., 1.], [1., 1.]]),
        ...                         dimension_numbers=(((0,), (0,)), ((), ())))
        Array([[1., 1.],
               [2., 2.]], dtype=float32)
    """
    del precision, out_sharding
    lc, rc, lb, rb = _norm_dims(dimension_numbers)
    if _is_bcoo(lhs) and _is_bcoo(rhs):
        _check_dot(lhs.shape, rhs.shape, lc, rc, lb, rb)
        return _spdot(lhs, rhs, lc, rc, lb, rb, preferred_element_type)
    if _is_bcoo(lhs):
        rhs = fnp.asarray(rhs)
        _check_dot(lhs.shape, rhs.shape, lc, rc, lb, rb)
        return _dot_sparse_dense(lhs, rhs, lc, rc, lb, rb, preferred_element_type)
    if _is_bcoo(rhs):
        lhs = fnp.asarray(lhs)
        _check_dot(lhs.shape, rhs.shape, lc, rc, lb, rb)
        out = _dot_sparse_dense(rhs, lhs, rc, lc, rb, lb, preferred_element_type)
        # out is (batch, rhs free, lhs free): move lhs free before rhs free
        nbt = len(lb)
        n_rfree = rhs.ndim - len(rc) - len(rb)
        perm = (tuple(range(nbt)) + tuple(range(nbt + n_rfree, out.ndim))
                + tuple(range(nbt, nbt + n_rfree)))
        return fnp.transpose(out, perm)
    return _lax.dot_general(lhs, rhs, ((lc, rc), (lb, rb)),
                            preferred_element_type=preferred_element_type)


def _dot_sparse_dense(mat, dense, lc, rc, lb, rb, preferred_element_type):
    k = mat.n_batch + mat.n_sparse
    if any(d >= k for d in lc + lb):
        raise NotImplementedError(
            "bcoo_dot_general: contracting or batch dimensions among the dense dimensions of "
            f"the BCOO operand (n_dense={mat.n_dense}, dimensions {lc + lb}) are not supported")
    data, indices = _flatten_batch(mat)
    lshape = mat.shape
    lfree = tuple(d for d in range(k) if d not in lc + lb)
    rfree = tuple(d for d in range(dense.ndim) if d not in rc + rb)
    rfree_shape = tuple(dense.shape[d] for d in rfree)
    # the dense operand as (batch and contracted positions, free dims): one row per position
    gdims = lb + lc
    gshape = tuple(lshape[d] for d in gdims)
    rows = fnp.reshape(fnp.transpose(dense, rb + rc + rfree),
                       (math.prod(gshape),) + rfree_shape)
    ng = len(data.shape) - 1  # dense block dims of the BCOO
    cols = lambda dims: fnp.take(indices, np.asarray(dims, np.int32), axis=1) \
        if dims else fnp.zeros((indices.shape[0], 0), indices.dtype)  # noqa: E731
    glin, gvalid = _linear(cols(gdims), gshape)
    sdims = lb + lfree
    sshape = tuple(lshape[d] for d in sdims)
    slin, svalid = _linear(cols(sdims), sshape)
    if rows.shape[0] == 0:
        picked = fnp.zeros((indices.shape[0],) + rfree_shape, dense.dtype)
    else:
        picked = fnp.take(rows, glin, axis=0)  # (N, *rfree)
    prod = (fnp.reshape(data, data.shape + (1,) * len(rfree))
            * fnp.reshape(picked, (picked.shape[0],) + (1,) * ng + rfree_shape))
    prod = _mask(prod, gvalid & svalid)
    out = _ops.segment_sum(prod, slin, num_segments=math.prod(sshape))
    out = fnp.reshape(out, sshape + tuple(lshape[k:]) + rfree_shape)
    if preferred_element_type is not None:
        out = out.astype(preferred_element_type)
    return out


def _spdot(lhs, rhs, lc, rc, lb, rb, preferred_element_type):
    _need("bcoo_dot_general (two BCOO operands)", lhs, n_dense=True)
    _need("bcoo_dot_general (two BCOO operands)", rhs, n_dense=True)
    li, ri = lhs.indices, rhs.indices
    lfree = tuple(d for d in range(lhs.ndim) if d not in lc + lb)
    rfree = tuple(d for d in range(rhs.ndim) if d not in rc + rb)
    lvalid = _linear(li, lhs.shape)[1]
    rvalid = _linear(ri, rhs.shape)[1]
    meet = lvalid[:, None] & rvalid[None, :]
    for a, b in zip(lc + lb, rc + rb):
        meet = meet & (li[:, a][:, None] == ri[:, b][None, :])
    data = lhs.data[:, None] * rhs.data[None, :]
    if preferred_element_type is not None:
        data = data.astype(preferred_element_type)
    n = lhs.nse * rhs.nse
    out_shape = (tuple(lhs.shape[d] for d in lb) + tuple(lhs.shape[d] for d in lfree)
                 + tuple(rhs.shape[d] for d in rfree))
    dt = np.promote_types(li.dtype, ri.dtype)
    parts = ([fnp.broadcast_to(li[:, d][:, None], (lhs.nse, rhs.nse)) for d in lb + lfree]
             + [fnp.broadcast_to(ri[:, d][None, :], (lhs.nse, rhs.nse)) for d in rfree])
    if parts:
        idx = fnp.stack([p.astype(dt) for p in parts], axis=-1)
        idx = fnp.where(meet[..., None], idx, np.asarray(out_shape, dt))
    else:
        idx = fnp.zeros((lhs.nse, rhs.nse, 0), dt)
    data = fnp.where(meet, data, fnp.zeros((), data.dtype))
    return BCOO((fnp.reshape(data, (n,)), fnp.reshape(idx, (n, len(out_shape)))),
                shape=out_shape)


def _matmul(a, b):
    """`a @ b` with one or both a BCOO, with numpy's matmul rules for operands of one or
    two dimensions (and a BCOO of more dimensions times a vector or matrix)."""
    if _is_bcoo(a) and not _is_bcoo(b):
        if not _array_like(b):
            return NotImplemented
        b = fnp.asarray(b)
    elif _is_bcoo(b) and not _is_bcoo(a):
        if not _array_like(a):
            return NotImplemented
        a = fnp.asarray(a)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one dimension, got shapes "
                         f"{a.shape} and {b.shape}")
    if b.ndim > 2 or (a.ndim > 2 and _is_bcoo(b)):
        raise NotImplementedError(f"BCOO matmul with batch dimensions (shapes {a.shape} and "
                                  f"{b.shape}): use bcoo_dot_general")
    if a.shape[-1] != b.shape[0]:
        raise _ShapeError(f"matmul: shape mismatch: {a.shape} @ {b.shape} (contracting "
                         f"{a.shape[-1]} with {b.shape[0]})")
    return bcoo_dot_general(a, b, dimension_numbers=(((a.ndim - 1,), (0,)), ((), ())))


def _array_like(x):
    from nanofn._core import is_array_like
    return is_array_like(x) or isinstance(x, (list, tuple))


# --------------------------------------------------------------------------- reduce_sum


def bcoo_reduce_sum(mat, *, axes):
    """Sum a BCOO over `axes`, giving a BCOO (jax.experimental.sparse.bcoo_reduce_sum): a
    summed sparse dimension drops its index column, a summed dense dimension is summed in
    `data`, and a summed batch dimension moves its entries into the stored elements (nse
    grows by its size).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO.fromdense(fnp.array([[1., 0.], [2., 3.]]))
        >>> sparse.bcoo_reduce_sum(A, axes=(1,)).todense()
        Array([1., 5.], dtype=float32)
    """
    axes = sorted({operator.index(a) for a in axes})
    if any(not 0 <= a < mat.ndim for a in axes):
        raise ValueError(f"bcoo_reduce_sum: axes {tuple(axes)} out of range for shape "
                         f"{mat.shape}")
    nb, ns = mat.n_batch, mat.n_sparse
    sdims = mat.shape[nb:nb + ns]
    _, valid = _linear(mat.indices, sdims)
    data = mat.data
    dense_axes = tuple(a - ns + 1 for a in axes if a >= nb + ns)
    if dense_axes:
        data = fnp.sum(data, axis=dense_axes)
    valid = fnp.broadcast_to(valid, tuple(map(max, valid.shape[:nb], data.shape[:nb]))
                             + valid.shape[nb:])
    data = fnp.where(fnp.reshape(valid, valid.shape + (1,) * (data.ndim - nb - 1)), data,
                     fnp.zeros((), data.dtype))
    indices = mat.indices
    keep = [d for d in range(ns) if d + nb not in axes]
    kept_shape = tuple(sdims[d] for d in keep)
    if keep:
        indices = fnp.take(indices, np.asarray(keep, np.int32), axis=-1)
        indices = fnp.where(valid[..., None], indices, np.asarray(kept_shape, indices.dtype))
    else:
        indices = fnp.zeros(indices.shape[:-1] + (0,), indices.dtype)
    batch_axes = [a for a in axes if a < nb]
    if batch_axes:
        # a summed batch axis joins the stored elements: (..., b, ..., nse) -> (..., b * nse)
        batch = mat.shape[:nb]
        data = fnp.broadcast_to(data, batch + data.shape[nb:])
        indices = fnp.broadcast_to(indices, batch + indices.shape[nb:])
        rest = [a for a in range(nb) if a not in batch_axes]
        new_batch = tuple(batch[a] for a in rest)
        n = math.prod(batch[a] for a in batch_axes) * mat.nse
        data = fnp.reshape(fnp.transpose(data, rest + batch_axes + list(range(nb, data.ndim))),
                           new_batch + (n,) + data.shape[nb + 1:])
        indices = fnp.reshape(fnp.transpose(indices, rest + batch_axes + [nb, nb + 1]),
                              new_batch + (n, indices.shape[-1]))
    out_shape = tuple(s for d, s in enumerate(mat.shape) if d not in axes)
    return BCOO((data, indices), shape=out_shape)


# --------------------------------------------------------------------------- sorting, duplicates


def _keys(mat):
    """Linear positions of the entries, out-of-range ones mapped past the end."""
    sdims = mat.shape[mat.n_batch:mat.n_batch + mat.n_sparse]
    lin, valid = _linear(mat.indices, sdims)
    size = math.prod(sdims)
    return fnp.where(valid, lin, np.asarray(size, lin.dtype)), size


def _unravel(keys, sdims, dtype):
    size = math.prod(sdims)
    cols = []
    for d in range(len(sdims)):
        stride = math.prod(sdims[d + 1:])
        cols.append((keys // stride) % sdims[d] if sdims[d] else keys * 0)
    if not cols:
        return fnp.zeros(keys.shape + (0,), dtype)
    idx = fnp.stack(cols, axis=-1).astype(dtype)
    return fnp.where((keys >= size)[:, None], np.asarray(sdims, dtype), idx)


def bcoo_sort_indices(mat):
    """A copy of `mat` with its entries in row-major order of position, padding last
    (jax.experimental.sparse.bcoo_sort_indices), batch by batch; works under jit.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO((fnp.array([1., 2.]), fnp.array([[1, 0], [0, 1]])), shape=(2, 2))
        >>> sparse.bcoo_sort_indices(A).data
        Array([2., 1.], dtype=float32)
    """
    if mat.n_batch:
        return _batched(bcoo_sort_indices, mat.n_batch, mat)
    keys, _ = _keys(mat)
    order = fnp.argsort(keys, stable=True)
    return BCOO((fnp.take(mat.data, order, axis=0), fnp.take(mat.indices, order, axis=0)),
                shape=mat.shape, indices_sorted=True, unique_indices=mat.unique_indices)


def bcoo_sum_duplicates(mat, nse=None):
    """Add up the entries that share a position, sorting them
    (jax.experimental.sparse.bcoo_sum_duplicates); explicit zeros are kept. `nse` entries
    are stored (default: the number of distinct positions, which needs concrete indices;
    pass it under `jit`; the largest count over the batches when n_batch > 0): extra
    slots are padding, and with too few the last positions are dropped.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO((fnp.array([1., 2., 3.]), fnp.array([[0, 0], [1, 1], [0, 0]])),
        ...                 shape=(2, 2))
        >>> B = sparse.bcoo_sum_duplicates(A)
        >>> B.data, B.nse
        (Array([4., 2.], dtype=float32), 2)
    """
    return _sum_duplicates(mat, nse, False, "bcoo_sum_duplicates")


def _nonzero_rows(data, nb):
    """Whether each stored block (axes after nb + 1) has a nonzero element."""
    return fnp.any(data != 0, axis=tuple(range(nb + 1, data.ndim))) if data.ndim > nb + 1 \
        else data != 0


def _sum_duplicates(mat, nse, remove_zeros, name):
    if mat.n_sparse == 0 and nse is None:
        nse = 1  # every entry sits at the one position (JAX keeps it even when zero)
    if mat.n_batch:
        if nse is None:  # the largest number of distinct positions in a batch
            keys, size = _keys(mat)
            if remove_zeros:
                keys = fnp.where(_nonzero_rows(mat.data, mat.n_batch), keys,
                                 np.asarray(size, keys.dtype))
            skeys = fnp.sort(keys, axis=-1)
            first = fnp.concatenate([skeys[..., :1] < size,
                                     (skeys[..., 1:] != skeys[..., :-1]) & (skeys[..., 1:] < size)],
                                    axis=-1)
            nse = _concrete_int(fnp.max(fnp.sum(first.astype(np.int32), axis=-1), initial=0)
                                if first.size else 0, name)
        return _batched(lambda m: _sum_duplicates(m, nse, remove_zeros, name), mat.n_batch, mat)
    keys, size = _keys(mat)
    data = mat.data
    if remove_zeros:
        keys = fnp.where(_nonzero_rows(data, 0), keys, np.asarray(size, keys.dtype))
    order = fnp.argsort(keys, stable=True)
    skeys = fnp.take(keys, order)
    sdata = fnp.take(data, order, axis=0)
    first = fnp.concatenate([fnp.ones((min(mat.nse, 1),), bool), skeys[1:] != skeys[:-1]])
    group = fnp.cumsum(first.astype(np.int32)) - 1
    if nse is None:
        real = first & (skeys < size)
        nse = _concrete_int(fnp.sum(real.astype(np.int32)), name) if mat.nse else 0
    nse = operator.index(nse)
    sdata = _mask(sdata, skeys < size)
    out_data = _ops.segment_sum(sdata, group, num_segments=nse)
    big = np.asarray(size, keys.dtype)
    out_keys = _ops.segment_min(skeys, group, num_segments=nse) if mat.nse else \
        fnp.full((nse,), big)
    out_keys = fnp.minimum(out_keys, big)
    out_data = _mask(out_data, out_keys < size)
    indices = _unravel(out_keys, mat.shape[:mat.n_sparse], mat.indices.dtype)
    return BCOO((out_data, indices), shape=mat.shape, indices_sorted=True,
                unique_indices=True)


# --------------------------------------------------------------------------- elementwise


def _gather_dense(mat, v, name):
    """The values of the dense `v` (broadcastable to `mat.shape`, not beyond it) at `mat`'s
    entries: shape batch + (nse, *dense)."""
    shape = mat.shape
    if v.ndim > len(shape) or any(s not in (1, t) for s, t in
                                  zip(v.shape[::-1], shape[::-1])):
        raise NotImplementedError(
            f"{name}: a dense operand of shape {tuple(v.shape)} that does not broadcast to "
            f"the BCOO's shape {shape} would densify the result; use .todense()")
    v = fnp.reshape(v, (1,) * (len(shape) - v.ndim) + tuple(v.shape))
    nb = mat.n_batch
    if nb:
        v = fnp.broadcast_to(v, shape[:nb] + tuple(v.shape[nb:]))
        return _batched(lambda m, w: _gather_dense(m, w, name), nb, mat, v)
    ns = mat.n_sparse
    vs = tuple(v.shape[:ns])
    scale = np.asarray([1 if s != 1 else 0 for s in vs], mat.indices.dtype)
    idx = mat.indices * scale if ns else mat.indices
    vals = _extract(idx, vs, v)  # (nse, *v dense dims)
    vals = _mask(vals, _linear(mat.indices, shape[:ns])[1])
    return fnp.broadcast_to(vals, (mat.nse,) + shape[ns:])


def bcoo_multiply_dense(sp_mat, v):
    """Elementwise product of a BCOO and a dense array that broadcasts to its shape: a
    BCOO with the same indices (jax.experimental.sparse.bcoo_multiply_dense).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.eye(2)
        >>> sparse.bcoo_multiply_dense(A, fnp.array([2., 3.])).todense()
        Array([[2., 0.],
               [0., 3.]], dtype=float32)
    """
    if type(v) in (bool, int, float, complex):  # weakly typed: keeps data's dtype
        return sp_mat._with_data(sp_mat.data * v)
    v = fnp.asarray(v)
    if v.ndim == 0:
        return sp_mat._with_data(sp_mat.data * v)
    vals = _gather_dense(sp_mat, v, "bcoo_multiply_dense")
    return _broadcast_batch(sp_mat)._with_data(_broadcast_batch(sp_mat).data * vals)


def bcoo_multiply_sparse(lhs, rhs):
    """Elementwise product of two BCOOs of the same shape
    (jax.experimental.sparse.bcoo_multiply_sparse): a BCOO with `lhs`'s indices, each entry
    times `rhs`'s (duplicate-summed) value at its position, found by binary search.
    (JAX's result stores `lhs.nse * rhs.nse` entries; the values agree.)

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO.fromdense(fnp.array([[1., 2.], [0., 3.]]))
        >>> sparse.bcoo_multiply_sparse(A, sparse.eye(2)).todense()
        Array([[1., 0.],
               [0., 3.]], dtype=float32)
    """
    if not (_is_bcoo(lhs) and _is_bcoo(rhs)):
        raise TypeError("bcoo_multiply_sparse: both operands must be BCOO")
    if lhs.shape != rhs.shape:
        raise _ShapeError(f"bcoo_multiply_sparse: shapes must match, got lhs.shape="
                         f"{lhs.shape} and rhs.shape={rhs.shape}")
    if lhs.n_batch != rhs.n_batch or lhs.n_dense != rhs.n_dense:
        from nanofn.experimental.sparse._bcoo_shape import bcoo_update_layout
        nb, nd = min(lhs.n_batch, rhs.n_batch), min(lhs.n_dense, rhs.n_dense)
        lhs = bcoo_update_layout(lhs, n_batch=nb, n_dense=nd)
        rhs = bcoo_update_layout(rhs, n_batch=nb, n_dense=nd)
    if lhs.indices is rhs.indices and lhs.unique_indices:
        return lhs._with_data(lhs.data * rhs.data)
    if lhs.n_batch:
        return _batched(bcoo_multiply_sparse, lhs.n_batch, lhs, rhs)
    r = rhs if rhs.unique_indices else _sum_duplicates(rhs, rhs.nse, False, "BCOO")
    rkeys, size = _keys(r)
    order = fnp.argsort(rkeys, stable=True)
    rkeys = fnp.take(rkeys, order)
    rdata = fnp.take(r.data, order, axis=0)
    lkeys, _ = _keys(lhs)
    if r.nse == 0:
        vals = fnp.zeros(lhs.data.shape, rdata.dtype)
    else:
        pos = fnp.clip(fnp.searchsorted(rkeys, lkeys), 0, r.nse - 1)
        found = (fnp.take(rkeys, pos) == lkeys) & (lkeys < size)
        vals = _mask(fnp.take(rdata, pos, axis=0), found)
    return lhs._with_data(lhs.data * vals)


def _multiply(mat, other):
    if _is_bcoo(other):
        return bcoo_multiply_sparse(mat, other)
    if not _array_like(other):
        return NotImplemented
    return bcoo_multiply_dense(mat, other)


def _add(a, b):
    """a + b with at least one BCOO: two BCOOs of one shape give a BCOO holding both sets
    of entries (or, sharing indices, the summed data); a BCOO and a dense array of the
    result's shape give a dense array."""
    if _is_bcoo(a) and _is_bcoo(b):
        if a.shape != b.shape:
            raise _ShapeError(f"BCOO addition: shapes must match, got {a.shape} and {b.shape}")
        if a.indices is b.indices:
            return a._with_data(a.data + b.data)
        if a.n_batch != b.n_batch or a.n_dense != b.n_dense:
            from nanofn.experimental.sparse._bcoo_shape import bcoo_update_layout
            nb, nd = min(a.n_batch, b.n_batch), min(a.n_dense, b.n_dense)
            a = bcoo_update_layout(a, n_batch=nb, n_dense=nd)
            b = bcoo_update_layout(b, n_batch=nb, n_dense=nd)
        a, b = _broadcast_batch(a), _broadcast_batch(b)
        nb = a.n_batch
        data = fnp.concatenate([a.data, b.data.astype(a.dtype)], axis=nb)
        indices = fnp.concatenate([a.indices, b.indices.astype(a.indices.dtype)], axis=nb)
        return BCOO((data, indices), shape=a.shape)
    mat, other = (a, b) if _is_bcoo(a) else (b, a)
    if not _array_like(other):
        return NotImplemented
    other = fnp.asarray(other)
    out_shape = np.broadcast_shapes(mat.shape, tuple(other.shape))
    if tuple(other.shape) != out_shape:
        raise NotImplementedError(
            f"BCOO addition with a dense array of shape {tuple(other.shape)}: only a dense "
            f"array of the result's shape {out_shape} is supported (anything else would "
            "densify the sparse array silently); use .todense()")
    return a.todense() + b if _is_bcoo(a) else a + b.todense()


# --------------------------------------------------------------------------- constructors


def empty(shape, dtype=None, index_dtype="int32", sparse_format="bcoo", **kwds):
    """A sparse array of `shape` with no stored entries (jax.experimental.sparse.empty), in
    `sparse_format` 'bcoo', 'bcsr', 'coo', 'csr' or 'csc'. For BCOO and BCSR `kwds` may
    give `nse` (slots of padding), `n_batch` and `n_dense`.

    Example:
        >>> from nanofn.experimental import sparse
        >>> sparse.empty((2, 3))
        BCOO(float32[2, 3], nse=0)
        >>> sparse.empty((2, 3)).todense().sum()
        Array(0., dtype=float32)
    """
    if sparse_format != "bcoo":
        return _format_class(sparse_format, "empty")._empty(shape, dtype=dtype,
                                                            index_dtype=index_dtype, **kwds)
    n_batch, n_dense, nse = kwds.pop("n_batch", 0), kwds.pop("n_dense", 0), kwds.pop("nse", 0)
    if kwds:
        raise TypeError(f"sparse.empty: unexpected arguments {sorted(kwds)}")
    shape = _shape_tuple(shape)
    n_sparse = len(shape) - n_batch - n_dense
    if min(n_sparse, n_batch, n_dense, nse) < 0:
        raise ValueError(f"sparse.empty: invalid shape={shape}, n_batch={n_batch}, "
                         f"n_dense={n_dense}, nse={nse}")
    batch, sdims = shape[:n_batch], shape[n_batch:n_batch + n_sparse]
    data = fnp.zeros(batch + (nse,) + shape[n_batch + n_sparse:], dtype or fnp.float32)
    indices = fnp.broadcast_to(fnp.asarray(np.asarray(sdims, index_dtype)),
                               batch + (nse, n_sparse))
    return BCOO((data, indices), shape=shape, indices_sorted=True, unique_indices=True)


def eye(N, M=None, k=0, dtype=None, index_dtype="int32", sparse_format="bcoo", **kwds):
    """A sparse `N x M` matrix with ones on diagonal `k` (jax.experimental.sparse.eye), in
    `sparse_format` 'bcoo', 'bcsr', 'coo', 'csr' or 'csc'. For BCOO `kwds` may give
    `n_batch` and `n_dense` (then built with `fromdense`).

    Example:
        >>> from nanofn.experimental import sparse
        >>> sparse.eye(3, 4, k=1).indices
        Array([[0, 1],
               [1, 2],
               [2, 3]], dtype=int32)
    """
    if sparse_format != "bcoo":
        return _format_class(sparse_format, "eye")._eye(
            N, N if M is None else M, k, dtype=dtype, index_dtype=index_dtype, **kwds)
    n_batch, n_dense = kwds.pop("n_batch", 0), kwds.pop("n_dense", 0)
    if kwds:
        raise TypeError(f"sparse.eye: unexpected arguments {sorted(kwds)}")
    N = operator.index(N)
    M = N if M is None else operator.index(M)
    k = operator.index(k)
    dtype = dtype or fnp.float32
    if n_batch or n_dense:
        return bcoo_fromdense(fnp.eye(N, M, k, dtype=dtype), n_batch=n_batch, n_dense=n_dense,
                              index_dtype=index_dtype)
    n = max(min(N, M - k) if k > 0 else min(N + k, M), 0)
    i = np.arange(n) + max(-k, 0)
    indices = np.stack([i, i + k], axis=1).astype(index_dtype).reshape(n, 2)
    return BCOO((fnp.ones(n, dtype), fnp.asarray(indices)), shape=(N, M),
                indices_sorted=True, unique_indices=True)


def _format_class(sparse_format, name):
    from nanofn.experimental.sparse import _bcsr, _coo
    formats = {"bcsr": _bcsr.BCSR, "coo": _coo.COO, "csr": _coo.CSR, "csc": _coo.CSC}
    if sparse_format not in formats:
        raise ValueError(f"sparse.{name}: sparse_format={sparse_format!r} must be one of "
                         f"{['bcoo', *formats]}")
    return formats[sparse_format]


def todense(arr):
    """`arr` as a dense array: a BCOO is converted, anything else passes through
    (jax.experimental.sparse.todense). Inside `sparsify` it densifies a sparse argument.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> sparse.todense(sparse.eye(2)).sum(), sparse.todense(fnp.ones(2)).sum()
        (Array(2., dtype=float32), Array(2., dtype=float32))
    """
    if _is_bcoo(arr):
        return bcoo_todense(arr)
    from nanofn.experimental.sparse import _transform
    return _transform._mark_todense(arr)
