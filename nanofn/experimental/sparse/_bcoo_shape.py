"""Shape operations on BCOO arrays: layout changes, slicing, reshaping, squeezing,
broadcasting, concatenation and reversal (jax.experimental.sparse.bcoo_*).

Batch and dense dimensions are handled with ordinary array operations on `data` and
`indices`; sparse dimensions by arithmetic on the index columns, with entries that fall
outside the result turned into padding (zero data at the out-of-range index `shape`).
Everything is written with nanofn's differentiable operations, so gradients with respect
to `data` come from nanofn's autodiff.
"""

from __future__ import annotations

import math
import operator
import warnings

import numpy as np

import nanofn.numpy as fnp
from nanofn import lax as _lax
from nanofn._core import ShapeError as _ShapeError
from nanofn.experimental.sparse._bcoo import (
    BCOO, SparseEfficiencyError, SparseEfficiencyWarning, _broadcast_batch, _is_bcoo, _linear,
    _sum_duplicates,
)

__all__ = [
    "bcoo_broadcast_in_dim", "bcoo_concatenate", "bcoo_dynamic_slice", "bcoo_reshape",
    "bcoo_rev", "bcoo_slice", "bcoo_squeeze", "bcoo_update_layout",
]


def _check_bcoo(mat, name):
    if not _is_bcoo(mat):
        raise TypeError(f"{name}: expected a BCOO array, got {type(mat).__name__}")


def _expand(x, ndim):
    """`x` (a 1-d array of per-column values) shaped to broadcast against indices."""
    return fnp.reshape(x, (1,) * (ndim - 1) + (-1,))


def _mask_data(data, keep, nb, n_dense):
    """`data` with the entries where `keep` (batch + (nse,)) is False set to zero."""
    keep = fnp.reshape(keep, keep.shape + (1,) * n_dense)
    return fnp.where(keep, data, fnp.zeros((), data.dtype))


# --------------------------------------------------------------------------- update_layout


def bcoo_update_layout(mat, *, n_batch=None, n_dense=None, on_inefficient="error"):
    """The same array stored with `n_batch` batch and `n_dense` dense dimensions
    (jax.experimental.sparse.bcoo_update_layout).

    Fewer batch or dense dimensions turn them into sparse ones (nse grows by their size);
    more turn sparse dimensions into batch or dense ones, which stores many explicit zeros
    unless those dimensions have size 0 or 1: then `on_inefficient` says what happens
    (`'error'`, the default, raises SparseEfficiencyError; `'warn'` warns; None allows it).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO.fromdense(fnp.array([[1., 0.], [0., 2.]]), n_batch=1)
        >>> B = sparse.bcoo_update_layout(A, n_batch=0)
        >>> B.n_batch, B.nse, B.indices.tolist()
        (0, 2, [[0, 0], [1, 1]])
        >>> (B.todense() == A.todense()).all()
        Array(True, dtype=bool)
    """
    _check_bcoo(mat, "bcoo_update_layout")
    n_batch = mat.n_batch if n_batch is None else operator.index(n_batch)
    n_dense = mat.n_dense if n_dense is None else operator.index(n_dense)
    if (n_batch, n_dense) == (mat.n_batch, mat.n_dense):
        return mat
    if on_inefficient not in ("error", "warn", None):
        raise ValueError(f"bcoo_update_layout: on_inefficient={on_inefficient!r} must be "
                         "'error', 'warn' or None")
    if n_batch < 0 or n_dense < 0 or n_batch + n_dense > mat.ndim:
        raise ValueError(f"bcoo_update_layout: n_batch={n_batch} and n_dense={n_dense} must "
                         f"be non-negative and add up to at most mat.ndim={mat.ndim}")

    def inefficient(what, old, new, dims):
        msg = (f"bcoo_update_layout: for a BCOO of shape {mat.shape}, increasing {what} from "
               f"{old} to {new} stores explicit zeros for dimensions of sizes {dims}")
        if on_inefficient == "error":
            raise SparseEfficiencyError(msg + "; pass on_inefficient='warn' or None to allow it")
        if on_inefficient == "warn":
            warnings.warn(msg, SparseEfficiencyWarning, stacklevel=3)

    moved = mat.shape[mat.ndim - n_dense:mat.ndim - mat.n_dense]
    if n_dense > mat.n_dense and any(d > 1 for d in moved):
        inefficient("n_dense", mat.n_dense, n_dense, moved)
    moved = mat.shape[mat.n_batch:n_batch]
    if n_batch > mat.n_batch and any(d > 1 for d in moved):
        inefficient("n_batch", mat.n_batch, n_batch, moved)
    if n_dense < mat.n_dense:
        mat = _dense_to_sparse(mat, mat.n_dense - n_dense)
    if n_batch < mat.n_batch:
        mat = _batch_to_sparse(mat, mat.n_batch - n_batch)
    if n_dense > mat.n_dense:
        mat = _sparse_to_dense(mat, n_dense - mat.n_dense)
    if n_batch > mat.n_batch:
        mat = _sparse_to_batch(mat, n_batch - mat.n_batch)
    return mat


def _grid(sizes, dtype):
    """All positions of `sizes` in row-major order: shape (prod(sizes), len(sizes))."""
    if not sizes:
        return fnp.zeros((1, 0), dtype)
    mesh = fnp.meshgrid(*[fnp.arange(s, dtype=dtype) for s in sizes], indexing="ij")
    return fnp.stack([fnp.ravel(m) for m in mesh], axis=-1)


def _dense_to_sparse(mat, n):
    """The leading `n` dense dimensions become the trailing sparse ones: each stored block
    splits into prod(sizes) entries."""
    nb, nse, k = mat.n_batch, mat.nse, mat.n_sparse
    sizes = mat.data.shape[nb + 1:nb + 1 + n]
    p = math.prod(sizes)
    data = fnp.reshape(mat.data, mat.data.shape[:nb] + (nse * p,) + mat.data.shape[nb + 1 + n:])
    ib = mat.indices.shape[:nb]
    idx = fnp.broadcast_to(mat.indices[..., None, :], ib + (nse, p, k))
    grid = fnp.broadcast_to(_grid(sizes, mat.indices.dtype), ib + (nse, p, n))
    indices = fnp.reshape(fnp.concatenate([idx, grid], axis=-1), ib + (nse * p, k + n))
    return BCOO((data, indices), shape=mat.shape)


def _batch_to_sparse(mat, n):
    """The trailing `n` batch dimensions become the leading sparse ones."""
    mat = _broadcast_batch(mat)
    nb, nse, k = mat.n_batch, mat.nse, mat.n_sparse
    keep, sizes = mat.shape[:nb - n], mat.shape[nb - n:nb]
    p = math.prod(sizes)
    grid = fnp.reshape(_grid(sizes, mat.indices.dtype), sizes + (1, n))
    grid = fnp.broadcast_to(grid, mat.shape[:nb] + (nse, n))
    indices = fnp.concatenate([grid, mat.indices], axis=-1)
    indices = fnp.reshape(indices, keep + (p * nse, n + k))
    data = fnp.reshape(mat.data, keep + (p * nse,) + mat.data.shape[nb + 1:])
    return BCOO((data, indices), shape=mat.shape)


def _sparse_to_dense(mat, n):
    """The trailing `n` sparse dimensions become the leading dense ones: each entry becomes
    a block that is zero except at its position."""
    nb, nd, k = mat.n_batch, mat.n_dense, mat.n_sparse
    sizes = mat.shape[nb + k - n:nb + k]
    lin, valid = _linear(mat.indices[..., k - n:], sizes)
    hot = (fnp.arange(math.prod(sizes), dtype=lin.dtype) == lin[..., None]) & valid[..., None]
    hot = fnp.reshape(hot, hot.shape[:-1] + sizes + (1,) * nd)
    data = fnp.reshape(mat.data, mat.data.shape[:nb + 1] + (1,) * n + mat.data.shape[nb + 1:])
    data = fnp.where(hot, data, fnp.zeros((), data.dtype))
    return BCOO((data, mat.indices[..., :k - n]), shape=mat.shape)


def _sparse_to_batch(mat, n):
    """The leading `n` sparse dimensions become the trailing batch ones: every new batch
    keeps all entries, those at other positions as zeros."""
    mat = _broadcast_batch(mat)
    nb, nd, nse = mat.n_batch, mat.n_dense, mat.nse
    sizes = mat.shape[nb:nb + n]
    lin, valid = _linear(mat.indices[..., :n], sizes)  # batch + (nse,)
    pos = fnp.reshape(fnp.arange(math.prod(sizes), dtype=lin.dtype), (-1, 1))
    hot = (pos == lin[..., None, :]) & valid[..., None, :]  # batch + (p, nse)
    hot = fnp.reshape(hot, mat.shape[:nb] + sizes + (nse,) + (1,) * nd)
    data = fnp.reshape(mat.data, mat.shape[:nb] + (1,) * n + mat.data.shape[nb:])
    data = fnp.where(hot, data, fnp.zeros((), data.dtype))
    rest = mat.indices[..., n:]
    indices = fnp.broadcast_to(fnp.reshape(rest, mat.shape[:nb] + (1,) * n + rest.shape[nb:]),
                               mat.shape[:nb] + sizes + rest.shape[nb:])
    return BCOO((data, indices), shape=mat.shape)


# --------------------------------------------------------------------------- slicing


def _shrink(mat, data, indices, new_shape):
    """A BCOO of `new_shape`; when it has more entries than sparse positions, duplicates are
    added up to that many entries (as JAX does)."""
    nb = mat.n_batch
    out = BCOO((data, indices), shape=new_shape)
    new_nse = math.prod(new_shape[nb:nb + mat.n_sparse])
    if mat.n_sparse and mat.nse > new_nse:
        out = _sum_duplicates(out, new_nse, False, "bcoo_slice")
        out = BCOO((out.data, out.indices), shape=new_shape)
    return out


def bcoo_slice(mat, *, start_indices, limit_indices, strides=None):
    """`lax.slice` of a BCOO (jax.experimental.sparse.bcoo_slice): the elements from
    `start_indices` up to `limit_indices` (exclusive) every `strides`; entries outside
    become padding.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO.fromdense(fnp.array([[1., 0., 2.], [0., 3., 0.]]))
        >>> sparse.bcoo_slice(A, start_indices=(0, 1), limit_indices=(2, 3)).todense()
        Array([[0., 2.],
               [3., 0.]], dtype=float32)
    """
    _check_bcoo(mat, "bcoo_slice")
    start = [operator.index(i) for i in start_indices]
    limit = [operator.index(i) for i in limit_indices]
    strides = [1] * mat.ndim if strides is None else [operator.index(i) for i in strides]
    if not len(start) == len(limit) == len(strides) == mat.ndim:
        raise ValueError(f"bcoo_slice: start_indices={tuple(start)}, limit_indices="
                         f"{tuple(limit)} and strides={tuple(strides)} must each have "
                         f"mat.ndim={mat.ndim} entries")
    if any(s <= 0 for s in strides):
        raise ValueError(f"bcoo_slice: strides must be positive, got {tuple(strides)}")
    if not all(0 <= a <= b <= n for a, b, n in zip(start, limit, mat.shape)):
        raise ValueError(f"bcoo_slice: invalid indices start_indices={tuple(start)}, "
                         f"limit_indices={tuple(limit)} for shape={mat.shape}")
    nb, ns = mat.n_batch, mat.n_sparse
    new_shape = tuple((b - a + s - 1) // s for a, b, s in zip(start, limit, strides))

    def batch_slices(buf):  # a broadcast (size-1) batch dimension stays as it is
        return tuple(slice(None) if buf.shape[i] != mat.shape[i] else
                     slice(start[i], limit[i], strides[i]) for i in range(nb))

    data = mat.data[batch_slices(mat.data) + (slice(None),) + tuple(
        slice(start[i], limit[i], strides[i]) for i in range(nb + ns, mat.ndim))]
    indices = mat.indices[batch_slices(mat.indices)]
    if ns:
        dt = indices.dtype
        lo = _expand(np.asarray(start[nb:nb + ns], dt), indices.ndim)
        hi = _expand(np.asarray(limit[nb:nb + ns], dt), indices.ndim)
        st = _expand(np.asarray(strides[nb:nb + ns], dt), indices.ndim)
        keep = fnp.all((indices >= lo) & (indices < hi) & ((indices - lo) % st == 0), axis=-1)
        indices = fnp.where(keep[..., None], (indices - lo) // st,
                            _expand(np.asarray(new_shape[nb:nb + ns], dt), indices.ndim))
        data = _mask_data(data, keep, nb, mat.n_dense)
    return _shrink(mat, data, indices, new_shape)


def bcoo_dynamic_slice(mat, start_indices, slice_sizes):
    """`lax.dynamic_slice` of a BCOO (jax.experimental.sparse.bcoo_dynamic_slice): a block
    of `slice_sizes` (static) starting at `start_indices`, which may be traced; starts are
    clamped so the block fits, as in `lax.dynamic_slice`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO.fromdense(fnp.array([1., 0., 2., 3.]))
        >>> sparse.bcoo_dynamic_slice(A, (fnp.array(2),), (2,)).todense()
        Array([2., 3.], dtype=float32)
    """
    _check_bcoo(mat, "bcoo_dynamic_slice")
    sizes = tuple(operator.index(i) for i in slice_sizes)
    starts = [fnp.asarray(i) for i in start_indices]
    if not len(starts) == len(sizes) == mat.ndim:
        raise ValueError(f"bcoo_dynamic_slice: start_indices ({len(starts)} entries) and "
                         f"slice_sizes={sizes} must each have mat.ndim={mat.ndim} entries")
    if any(s.ndim or not np.issubdtype(s.dtype, np.integer) for s in starts):
        raise TypeError("bcoo_dynamic_slice: start_indices must be integer scalars, got "
                        f"{[(tuple(s.shape), str(s.dtype)) for s in starts]}")
    if not all(0 <= s <= n for s, n in zip(sizes, mat.shape)):
        raise TypeError(f"bcoo_dynamic_slice: slice_sizes={sizes} must lie between 0 and the "
                        f"operand shape {mat.shape}")
    nb, ns, nse = mat.n_batch, mat.n_sparse, mat.nse
    zero = np.int32(0)

    def batch_part(buf):
        bcast = [buf.shape[i] != mat.shape[i] for i in range(nb)]
        return ([zero if b else starts[i] for i, b in enumerate(bcast)],
                [1 if b else sizes[i] for i, b in enumerate(bcast)])

    dstart, dsize = batch_part(mat.data)
    data = _lax.dynamic_slice(mat.data, dstart + [zero] + starts[nb + ns:],
                              dsize + [nse] + list(sizes[nb + ns:]))
    istart, isize = batch_part(mat.indices)
    indices = _lax.dynamic_slice(mat.indices, istart + [zero, zero], isize + [nse, ns])
    if ns:
        dt = indices.dtype
        dims = np.asarray(mat.shape[nb:nb + ns], dt)
        size = np.asarray(sizes[nb:nb + ns], dt)
        lo = fnp.stack([s.astype(dt) for s in starts[nb:nb + ns]])
        lo = fnp.clip(fnp.where(lo < 0, lo + dims, lo), 0, dims - size)
        lo, size_e = _expand(lo, indices.ndim), _expand(size, indices.ndim)
        keep = fnp.all((indices >= lo) & (indices < lo + size_e), axis=-1)
        indices = fnp.where(keep[..., None], indices - lo, size_e)
        data = _mask_data(data, keep, nb, mat.n_dense)
    return _shrink(mat, data, indices, sizes)


# --------------------------------------------------------------------------- reshape / squeeze


def bcoo_reshape(mat, *, new_sizes, dimensions=None, sharding=None):
    """`lax.reshape` of a BCOO (jax.experimental.sparse.bcoo_reshape): batch, sparse and
    dense dimensions are reshaped separately, so `new_sizes` must keep them apart (the
    products of the leading sizes must reach the batch size, then batch times sparse
    size). `dimensions`, if given, first permutes the dimensions (within each kind).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO.fromdense(fnp.array([[0., 1.], [2., 0.]]))
        >>> B = sparse.bcoo_reshape(A, new_sizes=(4,))
        >>> B.indices.ravel(), B.todense()
        (Array([1, 2], dtype=int32), Array([0., 1., 2., 0.], dtype=float32))
    """
    del sharding
    _check_bcoo(mat, "bcoo_reshape")
    new_sizes = tuple(operator.index(s) for s in new_sizes)
    if math.prod(new_sizes) != mat.size:
        raise TypeError(f"bcoo_reshape: cannot reshape shape {mat.shape} (size {mat.size}) to "
                        f"new_sizes={new_sizes}")
    if dimensions is not None:
        mat = mat.transpose(tuple(operator.index(d) for d in dimensions))
    mat = _broadcast_batch(mat)
    nb, ns = mat.n_batch, mat.n_sparse
    batch_size = math.prod(mat.shape[:nb])
    sshape = mat.shape[nb:nb + ns]
    sparse_size = math.prod(sshape)
    cum = np.cumprod((1,) + new_sizes)[1:]
    if batch_size != 1 and batch_size not in cum:
        raise ValueError(f"bcoo_reshape: new_sizes={new_sizes} mixes batch and sparse "
                         f"dimensions of shape={mat.shape} (n_batch={nb})")
    if sparse_size != 1 and batch_size * sparse_size not in cum:
        raise ValueError(f"bcoo_reshape: new_sizes={new_sizes} mixes sparse and dense "
                         f"dimensions of shape={mat.shape} (n_dense={mat.n_dense})")
    i1 = int(np.searchsorted(cum, batch_size, side="right"))
    i2 = int(np.searchsorted(cum, batch_size * sparse_size, side="right"))
    new_batch, new_sparse, new_dense = new_sizes[:i1], new_sizes[i1:i2], new_sizes[i2:]
    data = fnp.reshape(mat.data, new_batch + (mat.nse,) + new_dense)
    indices = fnp.reshape(mat.indices, new_batch + (mat.nse, ns))
    dt = indices.dtype
    if not new_sparse:
        indices = fnp.zeros(new_batch + (mat.nse, 0), dt)
    elif not ns:
        indices = fnp.zeros(new_batch + (mat.nse, len(new_sparse)), dt)
    else:
        lin, valid = _linear(indices, sshape)
        cols = []
        for d in range(len(new_sparse)):
            stride = math.prod(new_sparse[d + 1:])
            cols.append((lin // stride) % new_sparse[d])
        indices = fnp.stack(cols, axis=-1).astype(dt)
        indices = fnp.where(valid[..., None], indices,
                            _expand(np.asarray(new_sparse, dt), indices.ndim))
    return BCOO((data, indices), shape=new_sizes)


def bcoo_squeeze(arr, *, dimensions):
    """`lax.squeeze` of a BCOO (jax.experimental.sparse.bcoo_squeeze): drop the listed
    dimensions, which must have size 1.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO.fromdense(fnp.array([[0., 5., 6.]]))
        >>> sparse.bcoo_squeeze(A, dimensions=(0,)).todense()
        Array([0., 5., 6.], dtype=float32)
    """
    _check_bcoo(arr, "bcoo_squeeze")
    ndim = arr.ndim
    dims = []
    for d in dimensions:
        d = operator.index(d)
        if not -ndim <= d < ndim:
            raise ValueError(f"bcoo_squeeze: dimension {d} out of range for shape {arr.shape}")
        dims.append(d % ndim)
    if any(arr.shape[d] != 1 for d in dims):
        raise ValueError(f"bcoo_squeeze: dimensions {tuple(dims)} must have size 1, got "
                         f"shape={arr.shape}")
    nb, ns = arr.n_batch, arr.n_sparse
    batch = tuple(d for d in dims if d < nb)
    keep = [i for i in range(ns) if i + nb not in dims]
    dense = tuple(d - ns + 1 for d in dims if d >= nb + ns)
    data = fnp.squeeze(arr.data, batch + dense) if batch + dense else arr.data
    indices = fnp.take(arr.indices, np.asarray(keep, np.int32), axis=-1) if keep else \
        fnp.zeros(arr.indices.shape[:-1] + (0,), arr.indices.dtype)
    indices = fnp.squeeze(indices, batch) if batch else indices
    shape = tuple(s for i, s in enumerate(arr.shape) if i not in dims)
    return BCOO((data, indices), shape=shape, indices_sorted=arr.indices_sorted,
                unique_indices=arr.unique_indices)


# --------------------------------------------------------------------------- broadcast / concatenate / rev


def bcoo_broadcast_in_dim(mat, *, shape, broadcast_dimensions, sharding=None):
    """`lax.broadcast_in_dim` of a BCOO (jax.experimental.sparse.bcoo_broadcast_in_dim):
    dimension `i` of `mat` becomes dimension `broadcast_dimensions[i]` of the result; new
    leading dimensions are batch dimensions (sharing the stored entries), new sparse
    dimensions must have size 1.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO.fromdense(fnp.array([0., 2., 3.]))
        >>> B = sparse.bcoo_broadcast_in_dim(A, shape=(2, 3), broadcast_dimensions=(1,))
        >>> B.n_batch, B.todense()
        (1, Array([[0., 2., 3.],
               [0., 2., 3.]], dtype=float32))
    """
    del sharding
    _check_bcoo(mat, "bcoo_broadcast_in_dim")
    shape = tuple(operator.index(s) for s in shape)
    bdims = tuple(operator.index(d) for d in broadcast_dimensions)
    if len(bdims) != mat.ndim:
        raise ValueError(f"bcoo_broadcast_in_dim: broadcast_dimensions={bdims} must have "
                         f"mat.ndim={mat.ndim} entries (mat.shape={mat.shape})")
    if (any(not 0 <= d < len(shape) for d in bdims) or list(bdims) != sorted(set(bdims))
            or any(mat.shape[i] not in (1, shape[d]) for i, d in enumerate(bdims))):
        raise ValueError(f"bcoo_broadcast_in_dim: cannot broadcast shape {mat.shape} to "
                         f"shape={shape} with broadcast_dimensions={bdims}")
    nb, ns, nd, nse = mat.n_batch, mat.n_sparse, mat.n_dense, mat.nse
    bb, sb, db = bdims[:nb], bdims[nb:nb + ns], bdims[nb + ns:]
    new_nb = min(bdims[nb:], default=len(shape))
    new_nd = len(shape) - min(db) if nd else 0
    new_ns = len(shape) - new_nb - new_nd
    if math.prod(mat.shape[nb:nb + ns]) != math.prod(shape[new_nb:new_nb + new_ns]):
        raise NotImplementedError(f"bcoo_broadcast_in_dim: broadcasting shape {mat.shape} to "
                                  f"{shape} adds or grows sparse dimensions (n_batch={nb}, "
                                  f"n_dense={nd}); only size-1 sparse dimensions can be added")
    data, indices = mat.data, mat.indices
    if (new_nb, new_nd) != (nb, nd):
        data = _lax.broadcast_in_dim(
            data, shape[:new_nb] + (nse,) + shape[new_nb + new_ns:],
            bb + (new_nb,) + tuple(b + 1 - new_ns for b in db))
        indices = _lax.broadcast_in_dim(indices, shape[:new_nb] + (nse, ns),
                                        bb + (new_nb, new_nb + 1))
    if new_ns != ns:
        cols = [fnp.zeros(indices.shape[:-1], indices.dtype)] * new_ns
        for j, d in enumerate(sb):
            cols[d - new_nb] = indices[..., j]
        indices = fnp.stack(cols, axis=-1) if cols else \
            fnp.zeros(indices.shape[:-1] + (0,), indices.dtype)
    return BCOO((data, indices), shape=shape)


def bcoo_concatenate(operands, *, dimension):
    """`lax.concatenate` of BCOOs (jax.experimental.sparse.bcoo_concatenate) along a batch
    or sparse `dimension`: along a sparse one the stored entries are joined (nse adds up),
    along a batch one the batches (nse padded to the largest). The operands need one
    layout (n_batch, n_dense); concatenating dense dimensions is not supported, as in JAX.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO.fromdense(fnp.array([[1., 0.]]))
        >>> B = sparse.BCOO.fromdense(fnp.array([[0., 2.], [3., 0.]]))
        >>> sparse.bcoo_concatenate([A, B], dimension=0).todense()
        Array([[1., 0.],
               [0., 2.],
               [3., 0.]], dtype=float32)
    """
    operands = list(operands)
    if not operands or not all(_is_bcoo(op) for op in operands):
        raise TypeError("bcoo_concatenate: operands must be a non-empty sequence of BCOO "
                        f"arrays, got {[type(op).__name__ for op in operands]}")
    ndim = operands[0].ndim
    dimension = operator.index(dimension)
    if not 0 <= dimension < ndim:
        raise ValueError(f"bcoo_concatenate: dimension={dimension} out of range for "
                         f"{ndim}-dimensional operands")
    shapes = [op.shape for op in operands]
    if any(len(s) != ndim or s[:dimension] + s[dimension + 1:] !=
           shapes[0][:dimension] + shapes[0][dimension + 1:] for s in shapes):
        raise _ShapeError(f"bcoo_concatenate: operands must have equal shapes except in "
                          f"dimension {dimension}, got {shapes}")
    if len({op.n_dense for op in operands}) > 1:
        raise ValueError("bcoo_concatenate: operands must have the same n_dense, got "
                         f"{[op.n_dense for op in operands]}")
    n_batches = {op.n_batch for op in operands}
    if len(n_batches) > 1 and max(n_batches) == 1:  # a size-1 leading dimension can switch
        if all(op.shape[0] == 1 for op in operands if op.n_batch == 0):
            operands = [bcoo_update_layout(op, n_batch=1) for op in operands]
        elif all(op.shape[0] == 1 for op in operands if op.n_batch == 1):
            operands = [bcoo_update_layout(op, n_batch=0) for op in operands]
    if len({op.n_batch for op in operands}) > 1:
        raise ValueError("bcoo_concatenate: operands must have the same n_batch, got "
                         f"{[op.n_batch for op in operands]}")
    nb, ns = operands[0].n_batch, operands[0].n_sparse
    operands = [_broadcast_batch(op) for op in operands]
    out_shape = list(shapes[0])
    out_shape[dimension] = sum(s[dimension] for s in shapes)
    dtype = fnp.result_type(*[op.dtype for op in operands])
    if dimension < nb:
        nse = max(op.nse for op in operands)
        operands = [_set_nse(op, nse) for op in operands]
        data = fnp.concatenate([op.data.astype(dtype) for op in operands], axis=dimension)
        indices = fnp.concatenate([op.indices for op in operands], axis=dimension)
    elif dimension < nb + ns:
        col = dimension - nb
        offsets = np.cumsum([0] + [s[dimension] for s in shapes[:-1]])
        dt = operands[0].indices.dtype
        data = fnp.concatenate([op.data.astype(dtype) for op in operands], axis=nb)
        shifted = []
        for op, off in zip(operands, offsets):
            shift = np.zeros(ns, dt)
            shift[col] = off
            idx = op.indices.astype(dt)
            # padding stays out of range of the result
            valid = _linear(idx, op.shape[nb:nb + ns])[1]
            pad = np.asarray(out_shape[nb:nb + ns], dt)
            shifted.append(fnp.where(valid[..., None], idx + shift, pad))
        indices = fnp.concatenate(shifted, axis=nb)
    else:
        raise NotImplementedError("bcoo_concatenate: concatenation along dense dimensions "
                                  f"(dimension={dimension}, n_dense={operands[0].n_dense})")
    return BCOO((data, indices), shape=tuple(out_shape))


def _set_nse(mat, nse):
    """`mat` with `nse` stored elements (extra slots are padding)."""
    if mat.nse == nse:
        return mat
    nb = mat.n_batch
    extra = nse - mat.nse
    data = fnp.concatenate([mat.data, fnp.zeros(mat.data.shape[:nb] + (extra,)
                                                + mat.data.shape[nb + 1:], mat.dtype)], axis=nb)
    pad = np.asarray(mat.shape[nb:nb + mat.n_sparse], mat.indices.dtype)
    pad = fnp.broadcast_to(pad, mat.indices.shape[:nb] + (extra, mat.n_sparse))
    indices = fnp.concatenate([mat.indices, pad], axis=nb)
    return BCOO((data, indices), shape=mat.shape)


def bcoo_rev(operand, dimensions):
    """`lax.rev` of a BCOO (jax.experimental.sparse.bcoo_rev): reverse the order of the
    elements along `dimensions`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.experimental import sparse
        >>> A = sparse.BCOO.fromdense(fnp.array([1., 0., 2.]))
        >>> sparse.bcoo_rev(A, (0,)).todense()
        Array([2., 0., 1.], dtype=float32)
    """
    _check_bcoo(operand, "bcoo_rev")
    dims = tuple(operator.index(d) for d in dimensions)
    if any(not 0 <= d < operand.ndim for d in dims) or len(set(dims)) != len(dims):
        raise ValueError(f"bcoo_rev: dimensions={dims} must be distinct dimensions of "
                         f"shape {operand.shape}")
    nb, ns = operand.n_batch, operand.n_sparse
    bdims = [d for d in dims if d < nb]
    sdims = [d - nb for d in dims if nb <= d < nb + ns]
    ddims = [d - ns + 1 for d in dims if d >= nb + ns]
    data, indices = operand.data, operand.indices
    if bdims:
        indices = fnp.flip(indices, bdims)
    if bdims or ddims:
        data = fnp.flip(data, bdims + ddims)
    if sdims:
        dt = indices.dtype
        sshape = np.asarray(operand.shape[nb:nb + ns], dt)
        flip = np.zeros(ns, bool)
        flip[sdims] = True
        rev = fnp.where(flip, sshape - 1 - indices, indices)
        indices = fnp.where(rev < 0, sshape, rev)
    return BCOO((data, indices), shape=operand.shape)
