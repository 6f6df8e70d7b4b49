"""nanofn.scipy.linalg: scipy's linear algebra (jax.scipy.linalg's names), differentiable.

Three primitives live here, each with its rules in its block:

* `triangular_solve`: x = op(A)^-1 b for triangular A, op(A) = A or A^T;
  dx = op(A)^-1 (db - op(dA) x), and the cotangents gb = op(A)^-T gx, gA = -gb x^T
  (transposed for op(A) = A^T), kept to A's triangle.
* `lu`: P A = L U with partial pivoting; with X = L^-1 P dA U^-1,
  dL = L tril(X, -1) and dU = triu(X) U (rectangular too, U completed to a square).
* `expm`: the matrix exponential by scaling and squaring with a degree-13 Pade
  approximant (Higham 2005); its derivatives come from the block-triangular identity
  expm([[A, E], [0, A]]) = [[expm(A), L(A, E)], [0, expm(A)]], L the Frechet derivative,
  and the reverse rule is L(A^T, G).

Everything else is written with these and the primitives of `nanofn.numpy.linalg`, so it
gets every transform: the decompositions (`cholesky`, `cho_factor`/`cho_solve`, `lu`,
`lu_factor`/`lu_solve`, `qr`, `svd`, `eigh`), the solvers (`solve`, `solve_triangular`,
`solve_sylvester`), `det`, `inv`, `expm`, `expm_frechet`, `polar`, `block_diag`, and the
special matrices (`toeplitz`, `hankel`, `circulant`, ...).
"""

from __future__ import annotations

import numpy as np

from nanofn._core import Primitive, ShapedArray
from nanofn.numpy import linalg as _nl
from nanofn.numpy._dtypes import (asarray_value, default_float, default_int, dtype_of,
                                  promote_float)
from nanofn.numpy._lax_numpy import _shape as _shape_of
from nanofn.numpy.linalg import _mm, _mT, _unary_batch
from nanofn.ops import _base as lax
from nanofn.ops._base import _aval_shape, _dtype, bdim_to_front

__all__ = ["block_diag", "cho_factor", "cho_solve", "cholesky", "circulant", "companion",
           "convolution_matrix", "det", "dft", "eigh", "expm", "expm_frechet", "fiedler",
           "fiedler_companion", "hadamard", "hankel", "helmert", "hilbert", "inv",
           "invhilbert", "invpascal", "leslie", "lu", "lu_factor", "lu_solve", "pascal",
           "polar", "qr", "solve", "solve_sylvester", "solve_triangular", "svd", "toeplitz",
           "eigh_tridiagonal", "qr_multiply", "schur", "hessenberg", "rsf2csf", "sqrtm",
           "funm"]


def _fnp():
    import nanofn.numpy as fnp
    return fnp


def _mask(n, k, dtype, lower):
    """A triangle of ones: the lower (k = 0 with the diagonal, -1 without) or upper."""
    tri = np.tri(n, n, k, dtype=dtype)
    return tri if lower else tri.T


def _broadcast_batch(vals, dims):
    """Move batch axes to the front, broadcasting unbatched operands."""
    size = next(_aval_shape(v)[d] for v, d in zip(vals, dims) if d is not None)
    moved = []
    for v, d in zip(vals, dims):
        if d is None:
            shape = tuple(_aval_shape(v))
            v = lax.broadcast_in_dim(v, (size,) + shape, tuple(range(1, len(shape) + 1)))
        else:
            v = bdim_to_front(v, d)
        moved.append(v)
    return moved


# ======================================================================== triangular_solve

triangular_solve_p = Primitive("triangular_solve")


def _triangle(a, lower, unit_diagonal):
    n = a.shape[-1]
    keep = _mask(n, 0, a.dtype, lower)
    out = a * keep
    if unit_diagonal:
        out = out * (1 - np.eye(n, dtype=a.dtype)) + np.eye(n, dtype=a.dtype)
    return out


@triangular_solve_p.def_impl
def _triangular_solve_impl(a, b, *, lower, transpose_a, unit_diagonal):
    t = _triangle(a, lower, unit_diagonal)
    if transpose_a:
        t = np.swapaxes(t, -1, -2)
    return np.linalg.solve(t, b).astype(b.dtype, copy=False)


@triangular_solve_p.def_abstract_eval
def _triangular_solve_abstract_eval(a, b, *, lower, transpose_a, unit_diagonal):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2] or b.ndim != a.ndim \
            or b.shape[:-1] != a.shape[:-1] or a.dtype != b.dtype \
            or not np.issubdtype(a.dtype, np.inexact):
        raise ValueError(f"triangular_solve: needs a float or complex (..., n, n) matrix a "
                         f"and b of shape (..., n, k) and a's dtype; got a {a.str_short()} "
                         f"and b {b.str_short()}")
    return b


def _masked(t, lower, unit_diagonal):
    n = _aval_shape(t)[-1]
    return lax._mul(t, _mask(n, -1 if unit_diagonal else 0, _dtype(t), lower))


def _triangular_solve_jvp(primals, tangents, **params):
    a, b = primals
    ta, tb = tangents
    x = triangular_solve_p.bind(a, b, **params)
    rhs = tb
    if ta is not None:
        op = _masked(ta, params["lower"], params["unit_diagonal"])
        op = _mT(op) if params["transpose_a"] else op
        da_x = _mm(op, x)
        rhs = lax._neg(da_x) if rhs is None else lax._sub(rhs, da_x)
    return x, triangular_solve_p.bind(a, rhs, **params)


def _triangular_solve_vjp(ct, primals, out, needs, *, lower, transpose_a, unit_diagonal):
    a, _ = primals
    ct_b = triangular_solve_p.bind(a, ct, lower=lower, transpose_a=not transpose_a,
                                   unit_diagonal=unit_diagonal)
    ct_a = None
    if needs[0]:
        g = _mm(ct_b, _mT(out)) if not transpose_a else _mm(out, _mT(ct_b))
        ct_a = lax._neg(_masked(g, lower, unit_diagonal))
    return [ct_a, ct_b if needs[1] else None]


def _triangular_solve_batch(vals, dims, **params):
    return triangular_solve_p.bind(*_broadcast_batch(vals, dims), **params), 0


triangular_solve_p.jvp = _triangular_solve_jvp
triangular_solve_p.vjp_joint = _triangular_solve_vjp
triangular_solve_p.batch = _triangular_solve_batch


def _tri_solve(a, b, lower, transpose_a=False, unit_diagonal=False):
    return triangular_solve_p.bind(a, b, lower=bool(lower), transpose_a=bool(transpose_a),
                                   unit_diagonal=bool(unit_diagonal))


def _matrix_rhs(name, a, b):
    """b as a stack of matrices matching a's leading axes; and a function to undo it."""
    a_shape, b_shape = tuple(_shape_of(a)), tuple(_shape_of(b))
    if len(a_shape) < 2 or a_shape[-1] != a_shape[-2]:
        raise ValueError(f"{name}: a must be square in its last two axes, got shape {a_shape}")
    vector = len(b_shape) == len(a_shape) - 1
    if vector:
        b = lax.reshape(b, b_shape + (1,))
        b_shape = b_shape + (1,)
    if len(b_shape) < 2 or b_shape[-2] != a_shape[-1]:
        raise ValueError(f"{name}: a of shape {a_shape} and b of shape "
                         f"{b_shape[:-1] if vector else b_shape} do not match")
    batch = lax.broadcast_shapes(name, a_shape[:-2], b_shape[:-2])
    a = lax.broadcast_to(a, batch + a_shape[-2:])
    b = lax.broadcast_to(b, batch + b_shape[-2:])

    def undo(x):
        return lax.reshape(x, batch + (a_shape[-1],)) if vector else x
    return a, b, undo


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False,
                     debug=None, check_finite=True):
    """Solve `op(a) @ x = b` for triangular `a` (only its triangle is read).

    Args:
        a: array of shape `(..., n, n)`.
        b: array of shape `(..., n)` or `(..., n, k)`.
        trans: 0 or 'N' (`op(a) = a`), 1 or 'T' (`a.T`), 2 or 'C' (`a.conj().T`).
        lower: read the lower (True) or upper (False) triangle.
        unit_diagonal: take the diagonal of `a` to be ones.
        overwrite_b, debug, check_finite: accepted for scipy compatibility; ignored.

    Returns:
        `x`, of `b`'s shape.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import solve_triangular
        >>> solve_triangular(fnp.array([[2.0, 0.0], [1.0, 1.0]]), fnp.array([2.0, 3.0]),
        ...                  lower=True)
        Array([1., 2.], dtype=float32)
    """
    del overwrite_b, debug, check_finite  # unused
    if trans not in (0, 1, 2, "N", "T", "C"):
        raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', got "
                         f"{trans!r}")
    a, b = promote_float(a, b)
    if trans in (2, "C") and np.issubdtype(dtype_of(a), np.complexfloating):
        from nanofn import ops
        if not hasattr(ops, "conj"):
            raise NotImplementedError("solve_triangular: trans='C' of a complex matrix needs "
                                      "nanofn.lax.conj")
        a = ops.conj(a)
    a, b, undo = _matrix_rhs("solve_triangular", a, b)
    return undo(_tri_solve(a, b, lower, trans not in (0, "N"), unit_diagonal))


# ======================================================================== lu

lu_p = Primitive("lu", multiple_results=True)


@lu_p.def_impl
def _lu_impl(a):
    """Gaussian elimination with partial pivoting, vectorised over the stack."""
    *batch, m, n = a.shape
    work = np.array(a, dtype=a.dtype, copy=True).reshape((int(np.prod(batch)), m, n))
    count, k = work.shape[0], min(m, n)
    rows = np.arange(count)
    perm = np.tile(np.arange(m, dtype=np.int32), (count, 1))
    pivots = np.zeros((count, k), np.int32)
    for j in range(k):
        col = work[:, j:, j]
        size = np.abs(col.real) + np.abs(col.imag) if np.iscomplexobj(col) else np.abs(col)
        p = j + np.argmax(size, axis=1) if count else np.zeros(0, int)  # LAPACK's i?amax
        pivots[:, j] = p
        work[rows, j], work[rows, p] = work[rows, p], work[rows, j].copy()
        perm[rows, j], perm[rows, p] = perm[rows, p], perm[rows, j].copy()
        d = work[:, j, j]
        zero = d == 0  # as LAPACK: a zero pivot column is left unscaled
        mult = np.where(zero[:, None], 0, work[:, j + 1:, j] / np.where(zero, 1, d)[:, None])
        work[:, j + 1:, j] = mult
        work[:, j + 1:, j + 1:] -= mult[:, :, None] * work[:, j, None, j + 1:]
    return [work.reshape(a.shape), pivots.reshape(tuple(batch) + (k,)),
            perm.reshape(tuple(batch) + (m,))]


@lu_p.def_abstract_eval
def _lu_abstract_eval(a):
    if a.ndim < 2 or not np.issubdtype(a.dtype, np.inexact):
        raise TypeError(f"lu: needs a float or complex array of at least 2 dimensions, got "
                        f"{a.str_short()}")
    batch, (m, n) = a.shape[:-2], a.shape[-2:]
    return [a, ShapedArray(batch + (min(m, n),), np.int32), ShapedArray(batch + (m,), np.int32)]


def _permutation_matrix(perm, dtype):
    """P with P[i, perm[i]] = 1, so (P A)[i] = A[perm[i]]."""
    shape = tuple(_aval_shape(perm))
    m = shape[-1]
    cols = lax.broadcasted_iota(np.int32, shape + (m,), len(shape))
    rows = lax.broadcast_in_dim(perm, shape + (m,), tuple(range(len(shape))))
    return lax.convert_element_type(lax.eq_p.bind(rows, cols), dtype)


def _rect_mask(x, k, lower):
    """x times the lower (k = 0 with the diagonal, -1 without) or upper (k = 0, 1)
    triangle of ones of x's (possibly rectangular) shape."""
    m, n = _aval_shape(x)[-2:]
    tri = np.tri(m, n, k, dtype=_dtype(x)) if lower else 1 - np.tri(m, n, k - 1, dtype=_dtype(x))
    return lax._mul(x, tri)


def _lu_factors(lu_):
    """The square factors of a packed m x n LU: unit lower L (m x m) and upper U (n x n),
    U completed with an identity block where n > m (as JAX's rule does)."""
    fnp = _fnp()
    m, n = _aval_shape(lu_)[-2:]
    k = min(m, n)
    dtype = _dtype(lu_)
    low = _rect_mask(lu_[..., :, :k], -1, True)
    if m > k:
        low = fnp.concatenate([low, fnp.zeros(tuple(_aval_shape(low))[:-1] + (m - k,), dtype)],
                              axis=-1)
    low = lax._add(low, np.eye(m, dtype=dtype))
    up = _rect_mask(lu_[..., :k, :], 0, False)
    if n > k:
        up = fnp.concatenate([up, fnp.zeros(tuple(_aval_shape(up))[:-2] + (n - k, n), dtype)],
                             axis=-2)
        corner = np.zeros((n, n), dtype)
        corner[k:, k:] = np.eye(n - k, dtype=dtype)
        up = lax._add(up, corner)
    return low, up


def _lu_jvp(primals, tangents):
    # P A = L U; with X = L^-1 P dA U^-1:  d(lu) = L tril(X, -1) + triu(X) U
    (a,), (t,) = primals, tangents
    lu_, pivots, perm = lu_p.bind(a)
    low, up = _lu_factors(lu_)
    x = _tri_solve(low, _mm(_permutation_matrix(perm, _dtype(a)), t), True,
                   unit_diagonal=True)                                   # L^-1 P dA
    x = _mT(_tri_solve(up, _mT(x), False, transpose_a=True))             # ... U^-1
    d_lu = lax._add(_mm(low, _rect_mask(x, -1, True)), _mm(_rect_mask(x, 0, False), up))
    return [lu_, pivots, perm], [d_lu, None, None]


def _lu_vjp(cts, primals, outs, needs):
    # the transpose of the rule above: gX = tril(L^T g, -1) + triu(g U^T),
    # gA = P^T L^-T gX U^-T
    del primals, needs  # unused
    ct = cts[0]
    if ct is None:
        return [None]
    lu_, _, perm = outs
    low, up = _lu_factors(lu_)
    gx = lax._add(_rect_mask(_mm(_mT(low), ct), -1, True), _rect_mask(_mm(ct, _mT(up)), 0, False))
    g = _tri_solve(up, _mT(gx), False)                                   # U^-1 gX^T
    g = _tri_solve(low, _mT(g), True, transpose_a=True, unit_diagonal=True)  # L^-T gX U^-T
    return [_mm(_mT(_permutation_matrix(perm, _dtype(lu_))), g)]


lu_p.jvp = _lu_jvp
lu_p.vjp_joint = _lu_vjp
lu_p.batch = _unary_batch(lu_p)


def _lu_parts(a):
    (a,) = promote_float(a)
    if len(_shape_of(a)) < 2:
        raise ValueError(f"lu: needs at least 2 dimensions, got shape {tuple(_shape_of(a))}")
    return lu_p.bind(a)


def lu_factor(a, overwrite_a=False, check_finite=True):
    """LU factorisation with partial pivoting, packed as LAPACK's getrf packs it.

    Returns:
        `(lu, piv)`: `lu` holds `U` in its upper triangle and the unit lower `L` below the
        diagonal; row `i` was swapped with row `piv[i]` (int32).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import lu_factor
        >>> lu, piv = lu_factor(fnp.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> piv
        Array([1, 1], dtype=int32)
    """
    del overwrite_a, check_finite  # unused
    lu_, pivots, _ = _lu_parts(a)
    return lu_, pivots


def _pivots_to_permutation(piv, m):
    """The row permutation that LAPACK's swaps (row j <-> row piv[j], in order) make."""
    fnp = _fnp()
    piv = fnp.asarray(piv, dtype=np.int32)
    positions = np.arange(m, dtype=np.int32)
    perm = fnp.broadcast_to(positions, tuple(_shape_of(piv))[:-1] + (m,))
    for j in range(_shape_of(piv)[-1]):
        p = piv[..., j:j + 1]
        at_j, at_p = perm[..., j:j + 1], fnp.take_along_axis(perm, p, axis=-1)
        perm = fnp.where(positions == j, at_p, fnp.where(positions == p, at_j, perm))
    return perm


def lu_solve(lu_and_piv, b, trans=0, overwrite_b=False, check_finite=True):
    """Solve `a @ x = b` (`trans=0`), `a.T @ x = b` (1) or `a^H @ x = b` (2) from
    `lu_factor(a)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import lu_factor, lu_solve
        >>> a = fnp.array([[1.0, 2.0], [3.0, 4.0]])
        >>> lu_solve(lu_factor(a), fnp.array([5.0, 11.0]))
        Array([1., 2.], dtype=float32)
    """
    del overwrite_b, check_finite  # unused
    lu_, piv = lu_and_piv
    lu_, b = promote_float(lu_, b)
    m = _shape_of(lu_)[-1]
    perm = _pivots_to_permutation(piv, m)
    lu_, b, undo = _matrix_rhs("lu_solve", lu_, b)
    perm = _fnp().broadcast_to(perm, tuple(_shape_of(lu_))[:-1])
    p = _permutation_matrix(perm, dtype_of(lu_))
    if trans == 0:
        y = _tri_solve(lu_, _mm(p, b), True, unit_diagonal=True)
        return undo(_tri_solve(lu_, y, False))
    if trans not in (1, 2):
        raise ValueError(f"lu_solve: trans must be 0, 1 or 2, got {trans!r}")
    conj = _nl._conj if trans == 2 else (lambda x: x)  # a^H x = b: conj(a^T conj(x)) = b
    y = _tri_solve(lu_, conj(b), False, transpose_a=True)
    y = _tri_solve(lu_, y, True, transpose_a=True, unit_diagonal=True)
    return undo(conj(_mm(_mT(p), y)))


def lu(a, permute_l=False, overwrite_a=False, check_finite=True):
    """LU decomposition `a = p @ l @ u` with partial pivoting (differentiable).

    Args:
        a: array of shape `(..., m, n)`.
        permute_l: return `(p @ l, u)` instead of `(p, l, u)`.

    Returns:
        `(p, l, u)`: a permutation matrix `(..., m, m)`, unit lower `l` `(..., m, k)` and
        upper `u` `(..., k, n)`, `k = min(m, n)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import lu
        >>> p, l, u = lu(fnp.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> u.round(3)
        Array([[3.   , 4.   ],
               [0.   , 0.667]], dtype=float32)
    """
    del overwrite_a, check_finite  # unused
    fnp = _fnp()
    lu_, _, perm = _lu_parts(a)
    m, n = _shape_of(lu_)[-2:]
    k = min(m, n)
    dtype = dtype_of(lu_)
    low = fnp.tril(lu_[..., :, :k], -1) + np.eye(m, k, dtype=dtype)
    up = fnp.triu(lu_[..., :k, :])
    if permute_l:
        return fnp.matmul(_mT(_permutation_matrix(perm, dtype)), low), up
    # the permutation matrix is real for complex `a` too (scipy's and JAX's dtype)
    return _mT(_permutation_matrix(perm, np.empty(0, dtype).real.dtype)), low, up


# ======================================================================== expm

expm_p = Primitive("expm")

_PADE13 = (64764752532480000., 32382376266240000., 7771770303897600., 1187353796428800.,
           129060195264000., 10559470521600., 670442572800., 33522128640., 1323241920.,
           40840800., 960960., 16380., 182., 1.)
_THETA13 = 5.371920351148152  # Higham (2005), table 2.3


def _expm_one(a):
    b = _PADE13
    norm1 = np.abs(a).sum(axis=0).max() if a.size else 0.0
    squarings = max(0, int(np.ceil(np.log2(norm1 / _THETA13)))) if norm1 > _THETA13 else 0
    a = a / (2.0 ** squarings)
    eye = np.eye(a.shape[0], dtype=a.dtype)
    a2 = a @ a
    a4 = a2 @ a2
    a6 = a4 @ a2
    u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2
             + b[1] * eye)
    v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + b[0] * eye
    r = np.linalg.solve(v - u, v + u)
    for _ in range(squarings):
        r = r @ r
    return r


@expm_p.def_impl
def _expm_impl(a):
    wide = np.complex128 if np.iscomplexobj(a) else np.float64
    work = np.asarray(a, wide)  # single precision is computed in double, then rounded
    out = np.empty(a.shape, wide)
    for idx in np.ndindex(*a.shape[:-2]):
        out[idx] = _expm_one(work[idx])
    return out.astype(a.dtype, copy=False)


@expm_p.def_abstract_eval
def _expm_abstract_eval(a):
    _nl._check_square("expm", a, complex_ok=True)
    return a


def _frechet(a, e):
    """L(A, E), the derivative of expm at A along E, from expm of [[A, E], [0, A]]."""
    fnp = _fnp()
    n = _aval_shape(a)[-1]
    zero = fnp.zeros_like(a)
    big = fnp.concatenate([fnp.concatenate([a, e], axis=-1),
                           fnp.concatenate([zero, a], axis=-1)], axis=-2)
    return expm_p.bind(big)[..., :n, n:]


expm_p.jvp_terms = [lambda t, a, *, out: _frechet(a, t)]
expm_p.vjp = [lambda ct, a, *, out: _frechet(_mT(a), ct)]
expm_p.batch = _unary_batch(expm_p)


def expm(A, *, upper_triangular=False, max_squarings=16):
    """Matrix exponential (scaling and squaring with a degree-13 Pade approximant).

    Derivatives in both modes (and of any order) by the block-triangular identity for the
    Frechet derivative; see `expm_frechet`.

    Args:
        A: array of shape `(..., n, n)`.
        upper_triangular, max_squarings: accepted for JAX compatibility; the squarings
            are chosen from the 1-norm of each matrix.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import expm
        >>> expm(fnp.array([[0.0, 1.0], [0.0, 0.0]]))
        Array([[1., 1.],
               [0., 1.]], dtype=float32)
    """
    del upper_triangular, max_squarings  # unused
    (A,) = promote_float(A)
    return expm_p.bind(A)


def expm_frechet(A, E, *, method=None, compute_expm=True):
    """The Frechet derivative of `expm` at `A` along `E`.

    Returns:
        `(expm(A), L)` (or `L` alone with `compute_expm=False`), `L = d/dt expm(A + t E)`
        at `t = 0`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import expm_frechet
        >>> expm_frechet(fnp.zeros((2, 2)), fnp.eye(2), compute_expm=False)
        Array([[1., 0.],
               [0., 1.]], dtype=float32)
    """
    if method not in (None, "SPS", "blockEnlarge"):
        raise ValueError(f"expm_frechet: unknown method {method!r}")
    A, E = promote_float(A, E)
    if tuple(_shape_of(A)) != tuple(_shape_of(E)):
        raise ValueError(f"expm_frechet: A and E must have one shape, got "
                         f"{tuple(_shape_of(A))} and {tuple(_shape_of(E))}")
    expm_p.abstract_eval(ShapedArray(_shape_of(A), dtype_of(A)))
    n = _shape_of(A)[-1]
    fnp = _fnp()
    big = fnp.concatenate([fnp.concatenate([A, E], axis=-1),
                           fnp.concatenate([fnp.zeros_like(A), A], axis=-1)], axis=-2)
    out = expm_p.bind(big)
    frechet = out[..., :n, n:]
    return (out[..., :n, :n], frechet) if compute_expm else frechet


# ======================================================================== decompositions


def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    """Cholesky factor of a symmetric positive definite matrix (upper by default, as in
    scipy): `a = u.T @ u`, or `a = l @ l.T` with `lower=True`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import cholesky
        >>> cholesky(fnp.array([[4.0, 2.0], [2.0, 2.0]]))
        Array([[2., 1.],
               [0., 1.]], dtype=float32)
    """
    del overwrite_a, check_finite  # unused
    # as JAX: the lower factor of `a`'s lower triangle (or the upper one of its upper
    # triangle), with JAX's derivative rule (the tangent is not symmetrised)
    (a,) = promote_float(a)
    if lower:
        return _nl.cholesky(a, symmetrize_input=False)
    return _nl._H(_nl.cholesky(_nl._H(a), symmetrize_input=False))


def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """Cholesky factorisation for `cho_solve`: `(c, lower)`, `c` the triangular factor
    (zeros in the other triangle).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import cho_factor
        >>> cho_factor(fnp.array([[4.0, 2.0], [2.0, 2.0]]), lower=True)[0]
        Array([[2., 0.],
               [1., 1.]], dtype=float32)
    """
    return cholesky(a, lower=lower, overwrite_a=overwrite_a, check_finite=check_finite), lower


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    """Solve `a @ x = b` from `cho_factor(a)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import cho_factor, cho_solve
        >>> a = fnp.array([[4.0, 2.0], [2.0, 2.0]])
        >>> cho_solve(cho_factor(a), fnp.array([6.0, 4.0]))
        Array([1., 1.], dtype=float32)
    """
    del overwrite_b, check_finite  # unused
    c, lower = c_and_lower
    c, b = promote_float(c, b)
    c, b, undo = _matrix_rhs("cho_solve", c, b)
    conj = _nl._conj  # L^-H y = conj(L^-T conj(y)): triangular_solve has no conjugate flag
    if lower:   # L L^H x = b
        y = _tri_solve(c, b, True)
        return undo(conj(_tri_solve(c, conj(y), True, transpose_a=True)))
    y = conj(_tri_solve(c, conj(b), False, transpose_a=True))  # U^H U x = b
    return undo(_tri_solve(c, y, False))


def qr(a, overwrite_a=False, lwork=None, mode="full", pivoting=False, check_finite=True):
    """QR decomposition, scipy's modes: 'full' (`q` `(m, m)`), 'economic' (`q` `(m, k)`),
    'r' (returns `(r,)`). With `pivoting=True` (real matrices) the column permutation `p`
    comes last, `a[:, p] = q @ r` with `|diag(r)|` decreasing: `(q, r, p)`, or `(r, p)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import qr
        >>> q, r = qr(fnp.eye(3)[:, :2])
        >>> q.shape, r.shape
        ((3, 3), (3, 2))
    """
    del overwrite_a, lwork, check_finite  # unused
    if mode not in ("full", "r", "economic"):
        raise ValueError(f"qr: unsupported mode {mode!r}; use 'full', 'r' or 'economic'")
    if pivoting:
        from nanofn.ops import linalg as lax_linalg
        (a,) = promote_float(asarray_value(a))
        q, r, p = lax_linalg.qr(a, pivoting=True, full_matrices=mode != "economic")
        return (r, p) if mode == "r" else (q, r, p)
    q, r = _nl.qr(a, mode="reduced" if mode == "economic" else "complete")
    return (r,) if mode == "r" else (q, r)


def svd(a, full_matrices=True, compute_uv=True, overwrite_a=False, check_finite=True,
        lapack_driver="gesdd"):
    """Singular value decomposition; see `nanofn.numpy.linalg.svd`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import svd
        >>> svd(fnp.array([[0.0, 2.0], [1.0, 0.0]]), compute_uv=False)
        Array([2., 1.], dtype=float32)
    """
    del overwrite_a, check_finite, lapack_driver  # unused
    out = _nl.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)
    return tuple(out) if compute_uv else out


def eigh(a, b=None, lower=True, eigvals_only=False, overwrite_a=False, overwrite_b=False,
         turbo=True, eigvals=None, type=1, check_finite=True):
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix.

    As in JAX (and unlike scipy, which reads one triangle), the matrix is symmetrised
    first, `(a + a^H) / 2`; `lower` then changes nothing.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import eigh
        >>> eigh(fnp.array([[2.0, 1.0], [1.0, 2.0]]), eigvals_only=True)
        Array([1., 3.], dtype=float32)
    """
    del overwrite_a, overwrite_b, check_finite, turbo  # unused
    if b is not None or type != 1 or eigvals is not None:
        raise NotImplementedError("eigh: only the standard problem (b=None, type=1, "
                                  "eigvals=None) is supported, as in JAX")
    (a,) = promote_float(a)
    w, v = _nl.eigh(a, UPLO="L" if lower else "U")
    return w if eigvals_only else (w, v)


def det(a, overwrite_a=False, check_finite=True):
    """Determinant; see `nanofn.numpy.linalg.det` (its gradient is the adjugate).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import det
        >>> float(det(fnp.array([[1.0, 2.0], [3.0, 4.0]])))
        -2.0
    """
    del overwrite_a, check_finite  # unused
    return _nl.det(a)


def inv(a, overwrite_a=False, check_finite=True):
    """Matrix inverse; see `nanofn.numpy.linalg.inv`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import inv
        >>> inv(fnp.array([[2.0, 0.0], [0.0, 4.0]]))
        Array([[0.5 , 0.  ],
               [0.  , 0.25]], dtype=float32)
    """
    del overwrite_a, check_finite  # unused
    return _nl.inv(a)


def solve(a, b, lower=False, overwrite_a=False, overwrite_b=False, debug=False,
          check_finite=True, assume_a="gen"):
    """Solve `a @ x = b`; `assume_a='pos'` uses a Cholesky factorisation.

    Args:
        a: array of shape `(..., n, n)`.
        b: array of shape `(..., n)` or `(..., n, k)`.
        lower: with `assume_a` 'sym', 'her' or 'pos', read this triangle of `a`.
        assume_a: 'gen', 'sym', 'her' or 'pos'.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import solve
        >>> solve(fnp.array([[4.0, 2.0], [2.0, 2.0]]), fnp.array([6.0, 4.0]), assume_a="pos")
        Array([1., 1.], dtype=float32)
    """
    del overwrite_a, overwrite_b, debug, check_finite  # unused
    if assume_a not in ("gen", "sym", "her", "pos"):
        raise ValueError(f"solve: assume_a must be 'gen', 'sym', 'her' or 'pos', got "
                         f"{assume_a!r}")
    a, b = promote_float(a, b)
    if assume_a == "pos":
        return _solve_pos()(bool(lower), a, b)
    a_shape, b_shape = tuple(_shape_of(a)), tuple(_shape_of(b))
    if len(b_shape) == len(a_shape) - 1 and len(b_shape) > 1:  # a stack of vectors
        return _nl.solve(a, b[..., None])[..., 0]
    return _nl.solve(a, b)


_SOLVE_POS = []


def _solve_pos():
    """solve(a, b, assume_a='pos'): the value from a Cholesky factorisation, and, as in
    JAX, the derivative of a general solve (x = A^-1 b: dx = A^-1 (db - dA x), with A^-1
    applied through the same factorisation)."""
    if not _SOLVE_POS:
        from nanofn._custom import custom_jvp

        def value(lower, a, b):
            return cho_solve(cho_factor(a, lower=lower), b)

        def jvp(lower, primals, tangents):
            a, b = primals
            da, db = tangents
            factors = cho_factor(a, lower=lower)
            x = cho_solve(factors, b)
            vector = len(_shape_of(b)) == len(_shape_of(a)) - 1
            da_x = _mm(da, x[..., None])[..., 0] if vector else _mm(da, x)
            return x, cho_solve(factors, db - da_x)

        f = custom_jvp(value, nondiff_argnums=(0,))
        f.defjvp(jvp)
        _SOLVE_POS.append(f)
    return _SOLVE_POS[0]


def solve_sylvester(A, B, C, *, method="schur", tol=1e-8):
    """Solve the Sylvester equation `A @ X + X @ B = C` (as one linear system of size
    `m * n`, so small problems are cheap and every transform applies).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import solve_sylvester
        >>> solve_sylvester(fnp.eye(2), fnp.eye(2), fnp.eye(2))
        Array([[0.5, 0. ],
               [0. , 0.5]], dtype=float32)
    """
    del method, tol  # unused
    fnp = _fnp()
    A, B, C = promote_float(A, B, C)
    m, n = _shape_of(C)[-2:]
    if tuple(_shape_of(A)) != (m, m) or tuple(_shape_of(B)) != (n, n):
        raise ValueError(f"solve_sylvester: A must be (m, m), B (n, n) and C (m, n); got "
                         f"{tuple(_shape_of(A))}, {tuple(_shape_of(B))}, "
                         f"{tuple(_shape_of(C))}")
    # row-major vec: vec(A X) = (A kron I) vec X, vec(X B) = (I kron B^T) vec X
    dtype = dtype_of(C)
    system = _kron(A, np.eye(n, dtype=dtype)) + _kron(np.eye(m, dtype=dtype), _mT(B))
    return fnp.reshape(_nl.solve(system, fnp.reshape(C, (m * n,))), (m, n))


def _kron(a, b):
    fnp = _fnp()
    a, b = asarray_value(a), asarray_value(b)
    (p, q), (r, s) = _shape_of(a), _shape_of(b)
    return fnp.reshape(a[:, None, :, None] * b[None, :, None, :], (p * r, q * s))


def polar(a, side="right", *, method="qdwh", eps=None, max_iterations=None):
    """Polar decomposition `a = u @ p` (side 'right') or `a = p @ u` ('left'), from the
    SVD: `u` has orthonormal columns, `p` is symmetric (Hermitian) positive semi-definite.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import polar
        >>> u, p = polar(fnp.array([[2.0, 0.0], [0.0, -3.0]]))
        >>> p
        Array([[2., 0.],
               [0., 3.]], dtype=float32)
    """
    del method, eps, max_iterations  # unused
    if side not in ("right", "left"):
        raise ValueError(f"polar: side must be 'right' or 'left', got {side!r}")
    fnp = _fnp()
    (a,) = promote_float(a)
    w, s, vh = _nl.svd(a, full_matrices=False)
    u = fnp.matmul(w, vh)
    s = s.astype(dtype_of(a))
    if side == "right":  # p = V S V^H
        return u, fnp.matmul(_nl._H(vh) * s[..., None, :], vh)
    return u, fnp.matmul(w * s[..., None, :], _nl._H(w))  # p = W S W^H


def block_diag(*arrs):
    """A block-diagonal matrix from the given blocks (scalars and 1-d arrays are rows).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import block_diag
        >>> block_diag(fnp.ones((1, 2)), 2.0).tolist()
        [[1.0, 1.0, 0.0], [0.0, 0.0, 2.0]]
    """
    fnp = _fnp()
    if not arrs:
        return fnp.zeros((1, 0))
    blocks = [fnp.atleast_2d(asarray_value(x)) for x in arrs]
    for i, x in enumerate(blocks):
        if len(_shape_of(x)) != 2:
            raise ValueError(f"block_diag: argument {i} has more than 2 dimensions "
                             f"(shape {tuple(_shape_of(x))})")
    dtype = np.result_type(*[dtype_of(x) for x in blocks])
    total = sum(_shape_of(x)[1] for x in blocks)
    rows, before = [], 0
    for x in blocks:
        r, c = _shape_of(x)
        rows.append(fnp.pad(x.astype(dtype), ((0, 0), (before, total - before - c))))
        before += c
    return fnp.concatenate(rows, axis=0)


# ======================================================================== special matrices


def _vec_last(x):
    x = asarray_value(x)
    if len(_shape_of(x)) == 0:
        x = _fnp().reshape(x, (1,))
    return x


def toeplitz(c, r=None):
    """The Toeplitz matrix with first column `c` and first row `r` (`r[0]` is ignored;
    default `r = conj(c)`, as in scipy). Leading axes of `c` and `r` broadcast.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import toeplitz
        >>> toeplitz(fnp.array([1, 2, 3]), fnp.array([1, 4, 5])).tolist()
        [[1, 4, 5], [2, 1, 4], [3, 2, 1]]
    """
    fnp = _fnp()
    c = _vec_last(c)
    r = _nl._conj(c) if r is None else _vec_last(r)  # scipy's default: a Hermitian matrix
    dtype = np.result_type(dtype_of(c), dtype_of(r))
    nrows, ncols = _shape_of(c)[-1], _shape_of(r)[-1]
    batch = lax.broadcast_shapes("toeplitz", tuple(_shape_of(c))[:-1], tuple(_shape_of(r))[:-1])
    if nrows == 0 or ncols == 0:
        return fnp.zeros(batch + (nrows, ncols), dtype)
    c = fnp.broadcast_to(c.astype(dtype), batch + (nrows,))
    r = fnp.broadcast_to(r.astype(dtype), batch + (ncols,))
    elems = fnp.concatenate([fnp.flip(c, axis=-1), r[..., 1:]], axis=-1)
    i, j = np.indices((nrows, ncols))
    return elems[..., nrows - 1 - i + j]


def hankel(c, r=None):
    """The Hankel matrix with first column `c` and last row `r` (`r[0]` is ignored;
    default zeros).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import hankel
        >>> hankel(fnp.array([1, 2, 3]), fnp.array([3, 4, 5])).tolist()
        [[1, 2, 3], [2, 3, 4], [3, 4, 5]]
    """
    fnp = _fnp()
    c = _vec_last(c)
    r = fnp.zeros_like(c) if r is None else _vec_last(r)
    dtype = np.result_type(dtype_of(c), dtype_of(r))
    nrows, ncols = _shape_of(c)[-1], _shape_of(r)[-1]
    batch = lax.broadcast_shapes("hankel", tuple(_shape_of(c))[:-1], tuple(_shape_of(r))[:-1])
    if nrows == 0 or ncols == 0:
        return fnp.zeros(batch + (nrows, ncols), dtype)
    c = fnp.broadcast_to(c.astype(dtype), batch + (nrows,))
    r = fnp.broadcast_to(r.astype(dtype), batch + (ncols,))
    v = fnp.concatenate([c, r[..., 1:]], axis=-1)
    i, j = np.indices((nrows, ncols))
    return v[..., i + j]


def circulant(c):
    """The circulant matrix whose first column is `c` (leading axes batch).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import circulant
        >>> circulant(fnp.array([1, 2, 3])).tolist()
        [[1, 3, 2], [2, 1, 3], [3, 2, 1]]
    """
    c = _vec_last(c)
    n = _shape_of(c)[-1]
    i, j = np.indices((n, n))
    return c[..., (i - j) % n]


def companion(a):
    """The companion matrix of the polynomial with coefficients `a` (highest first).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import companion
        >>> companion(fnp.array([1.0, -10.0, 31.0, -30.0])).tolist()
        [[10.0, -31.0, 30.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    fnp = _fnp()
    (a,) = promote_float(a)
    if len(_shape_of(a)) != 1 or _shape_of(a)[0] < 2:
        raise ValueError(f"companion: a must be 1-d with at least 2 coefficients, got shape "
                         f"{tuple(_shape_of(a))}")
    first = -a[1:] / a[0]
    m = _shape_of(a)[0] - 1
    rows = np.arange(m)[:, None]
    return fnp.where(rows == 0, first, fnp.eye(m, m, k=-1, dtype=dtype_of(first)))


def leslie(f, s):
    """The Leslie matrix: fecundities `f` in the first row, survival rates `s` on the
    sub-diagonal.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import leslie
        >>> leslie(fnp.array([0.1, 2.0, 1.0]), fnp.array([0.2, 0.8])).tolist()
        [[0.1, 2.0, 1.0], [0.2, 0.0, 0.0], [0.0, 0.8, 0.0]]
    """
    fnp = _fnp()
    f, s = promote_float(f, s)
    n = _shape_of(f)[-1]
    if len(_shape_of(f)) != 1 or n < 2 or tuple(_shape_of(s)) != (n - 1,):
        raise ValueError(f"leslie: f must be 1-d of length n >= 2 and s of length n - 1; got "
                         f"shapes {tuple(_shape_of(f))} and {tuple(_shape_of(s))}")
    return fnp.where(np.arange(n)[:, None] == 0, f, fnp.diag(s, k=-1))


def fiedler(a):
    """The symmetric Fiedler matrix `|a_i - a_j|` (leading axes batch).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import fiedler
        >>> fiedler(fnp.array([1, 4, 12])).tolist()
        [[0, 3, 11], [3, 0, 8], [11, 8, 0]]
    """
    fnp = _fnp()
    a = _vec_last(a)
    return fnp.abs(a[..., :, None] - a[..., None, :])


def fiedler_companion(a):
    """The Fiedler companion matrix (pentadiagonal, same eigenvalues as `companion(a)`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import fiedler_companion
        >>> fiedler_companion(fnp.array([1.0, 2.0, 3.0, 4.0])).tolist()
        [[-2.0, -3.0, 1.0], [1.0, 0.0, 0.0], [0.0, -4.0, 0.0]]
    """
    fnp = _fnp()
    (a,) = promote_float(a)
    if len(_shape_of(a)) != 1:
        raise ValueError(f"fiedler_companion: a must be 1-d, got shape {tuple(_shape_of(a))}")
    size = _shape_of(a)[0]
    if size <= 2:
        return fnp.zeros((0, 0), dtype_of(a)) if size < 2 else \
            fnp.reshape(-a[1] / a[0], (1, 1))
    a = a / a[0]
    n = size - 1
    i, j = np.indices((n, n))
    # scipy's layout: a checkerboard of -a[k] and ones on the two diagonals either side
    out = fnp.zeros((n, n), dtype_of(a))
    even, odd = i % 2 == 0, i % 2 == 1
    picks = [((i == 0) & (j == 0), -a[1]), ((i == 1) & (j == 0), 1.0),
             ((j == i + 1) & even, -a[np.minimum(i + 2, n)]), ((j == i + 2) & even, 1.0),
             ((j == i - 1) & even & (i >= 2), -a[np.minimum(i + 1, n)]),
             ((j == i - 2) & odd & (i >= 3), 1.0)]
    for mask, value in reversed(picks):
        out = fnp.where(mask, value, out)
    return out


def convolution_matrix(a, n, mode="full"):
    """The matrix `A` with `A @ v == numpy.convolve(a, v, mode)` for `v` of length `n`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import convolution_matrix
        >>> convolution_matrix(fnp.array([1.0, 2.0]), 2).tolist()
        [[1.0, 0.0], [2.0, 1.0], [0.0, 2.0]]
    """
    fnp = _fnp()
    a = asarray_value(a)
    if len(_shape_of(a)) != 1 or _shape_of(a)[0] == 0:
        raise ValueError(f"convolution_matrix: a must be a non-empty 1-d array, got shape "
                         f"{tuple(_shape_of(a))}")
    if n <= 0:
        raise ValueError(f"convolution_matrix: n must be positive, got {n}")
    m = _shape_of(a)[0]
    if mode == "full":
        length, trim = n + m - 1, 0
    elif mode == "valid":
        length, trim = max(m, n) - min(m, n) + 1, min(m, n) - 1
    elif mode == "same":  # numpy's 'same': the max(m, n) central outputs
        length = max(m, n)
        trim = (n + m - 1 - length) // 2
    else:
        raise ValueError(f"convolution_matrix: mode must be 'full', 'valid' or 'same', got "
                         f"{mode!r}")
    column = fnp.concatenate([a, fnp.zeros((n - 1,), dtype_of(a))])
    row = fnp.concatenate([a[:1], fnp.zeros((n - 1,), dtype_of(a))])
    return toeplitz(column, row)[trim:trim + length]


def _constant(values, dtype):
    return _fnp().asarray(np.asarray(values), dtype=dtype)


def hilbert(n):
    """The Hilbert matrix `1 / (i + j + 1)` (the default float, as in JAX: float32, or
    float64 under jax_enable_x64).

    Example:
        >>> from nanofn.scipy.linalg import hilbert
        >>> hilbert(2).tolist()
        [[1.0, 0.5], [0.5, 0.3333333432674408]]
    """
    i, j = np.indices((n, n))
    return _constant(1.0 / (i + j + 1), default_float())


def invhilbert(n):
    """The inverse of the `n x n` Hilbert matrix (exact integers, in the default float).

    Example:
        >>> from nanofn.scipy.linalg import invhilbert
        >>> invhilbert(2).tolist()
        [[4.0, -6.0], [-6.0, 12.0]]
    """
    from math import comb
    out = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            s = i + j
            out[i, j] = ((-1) ** s * (s + 1) * comb(n + i, n - j - 1) * comb(n + j, n - i - 1)
                         * comb(s, i) ** 2)
    return _constant(out.astype(np.float64), default_float())


def pascal(n, kind=None):
    """The Pascal matrix: 'symmetric' (default), 'lower' or 'upper' (float32, as in JAX).

    Example:
        >>> from nanofn.scipy.linalg import pascal
        >>> pascal(3).tolist()
        [[1.0, 1.0, 1.0], [1.0, 2.0, 3.0], [1.0, 3.0, 6.0]]
    """
    from math import comb
    kind = "symmetric" if kind is None else kind
    if kind not in ("symmetric", "lower", "upper"):
        raise ValueError(f"pascal: kind must be 'symmetric', 'lower' or 'upper', got {kind!r}")
    lower = np.array([[comb(i, j) for j in range(n)] for i in range(n)], dtype=np.float64)
    lower = lower.reshape(n, n)
    out = {"lower": lower, "upper": lower.T, "symmetric": lower @ lower.T}[kind]
    return _constant(out, np.float32)


def invpascal(n, kind=None):
    """The inverse of `pascal(n, kind)` (the default float, as in JAX).

    Example:
        >>> from nanofn.scipy.linalg import invpascal
        >>> invpascal(3, 'lower').tolist()
        [[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [1.0, -2.0, 1.0]]
    """
    from math import comb
    kind = "symmetric" if kind is None else kind
    if kind not in ("symmetric", "lower", "upper"):
        raise ValueError(f"invpascal: kind must be 'symmetric', 'lower' or 'upper', got "
                         f"{kind!r}")
    inv_lower = np.array([[(-1) ** (i - j) * comb(i, j) for j in range(n)] for i in range(n)],
                         dtype=np.float64).reshape(n, n)
    out = {"lower": inv_lower, "upper": inv_lower.T,
           "symmetric": inv_lower.T @ inv_lower}[kind]
    return _constant(out, default_float())


def helmert(n, full=False):
    """The Helmert matrix (orthonormal rows; the first row, kept with `full=True`, is
    constant).

    Example:
        >>> from nanofn.scipy.linalg import helmert
        >>> helmert(2).round(4).tolist()
        [[0.7071, -0.7071]]
    """
    h = np.tril(np.ones((n, n)), -1) - np.diag(np.arange(n))
    d = np.arange(n) * np.arange(1, n + 1)
    h[0] = 1
    d[0] = n
    out = h / np.sqrt(d)[:, None]
    return _constant(out if full else out[1:], default_float())


def hadamard(n, dtype=int):
    """The `n x n` Hadamard matrix (Sylvester's construction; `n` a power of 2).

    Example:
        >>> from nanofn.scipy.linalg import hadamard
        >>> hadamard(2).tolist()
        [[1, 1], [1, -1]]
    """
    if n < 1 or n & (n - 1):
        raise ValueError(f"hadamard: n must be a positive power of 2, got {n}")
    h = np.array([[1]])
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    dtype = np.dtype(dtype)
    if dtype == np.dtype(int):
        dtype = default_int()  # JAX's default integer
    return _constant(h, dtype)


def dft(n, scale=None, *, dtype=None):
    """The discrete Fourier transform matrix `exp(-2 pi i j k / n)` (complex64), scaled by
    `1/n` (`scale='n'`) or `1/sqrt(n)` (`'sqrtn'`).

    Example:
        >>> import numpy as np
        >>> from nanofn.scipy.linalg import dft
        >>> np.round(np.asarray(dft(2)), 6).tolist()
        [[(1+0j), (1+0j)], [(1+0j), (-1-0j)]]
    """
    if scale not in (None, "n", "sqrtn"):
        raise ValueError(f"dft: scale must be None, 'n' or 'sqrtn', got {scale!r}")
    j, k = np.indices((n, n))
    m = np.exp(-2j * np.pi * ((j * k) % max(n, 1)) / max(n, 1))
    m = m / {None: 1.0, "n": n, "sqrtn": np.sqrt(n)}[scale]
    default = np.complex128 if default_float() == np.float64 else np.complex64
    return _constant(m, default if dtype is None else dtype)


# ======================================================================== more solvers


def eigh_tridiagonal(d, e, *, eigvals_only=False, select="a", select_range=None, tol=None,
                     key=None):
    """Eigenvalues (and eigenvectors) of the symmetric tridiagonal matrix with diagonal
    `d` and off-diagonal `e`, differentiable (computed as `eigh` of that matrix).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import eigh_tridiagonal
        >>> eigh_tridiagonal(fnp.array([2.0, 2.0]), fnp.array([1.0]), eigvals_only=True)
        Array([1., 3.], dtype=float32)
    """
    del tol, key  # unused
    if select != "a" or select_range is not None:
        raise NotImplementedError("eigh_tridiagonal: only select='a' is supported")
    fnp = _fnp()
    d, e = promote_float(d, e)
    _nl._no_complex("eigh_tridiagonal", d, e)
    n = _shape_of(d)[-1]
    if tuple(_shape_of(e))[-1:] != (max(n - 1, 0),):
        raise ValueError(f"eigh_tridiagonal: e must have length len(d) - 1; got shapes "
                         f"{tuple(_shape_of(d))} and {tuple(_shape_of(e))}")
    a = fnp.diag(d) + fnp.diag(e, k=1) + fnp.diag(e, k=-1) if n > 1 else fnp.diag(d)
    w, v = _nl.eigh(a, symmetrize_input=False)
    return w if eigvals_only else (w, v)


def qr_multiply(a, c, mode="right", pivoting=False, conjugate=False, overwrite_a=False,
                overwrite_c=False):
    """`Q @ c` (mode 'left') or `c @ Q` (mode 'right') for the economic QR of `a`; also
    returns `r`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import qr_multiply
        >>> cq, r = qr_multiply(fnp.eye(2), fnp.ones((1, 2)))
        >>> cq.shape, r.shape
        ((1, 2), (2, 2))
    """
    del overwrite_a, overwrite_c, conjugate  # unused (real arrays)
    if pivoting:
        raise NotImplementedError("qr_multiply: pivoting=True is not supported")
    if mode not in ("left", "right"):
        raise ValueError(f"qr_multiply: mode must be 'left' or 'right', got {mode!r}")
    fnp = _fnp()
    q, r = _nl.qr(a, mode="reduced")
    c = asarray_value(c)
    if mode == "left":
        vector = len(_shape_of(c)) == 1
        out = fnp.matmul(q, c[:, None] if vector else c)
        return (out[:, 0] if vector else out), r
    return fnp.matmul(c, q), r


# ======================================================================== Schur-based (values only)
#
# schur, hessenberg, rsf2csf, sqrtm and funm rest on LAPACK's Schur and Hessenberg
# reductions, which numpy does not expose; they call scipy (the optional `scipy` extra),
# and, as in JAX, they have no derivatives.


def _scipy_linalg(name):
    try:
        import scipy.linalg
    except ImportError:  # pragma: no cover - scipy is in the test extra
        raise ImportError(f"nanofn.scipy.linalg.{name} needs scipy (pip install "
                          f"'nanofn[scipy]')") from None
    return scipy.linalg


def _no_derivatives(name):
    def rule(*args, **params):
        raise NotImplementedError(f"{name}: not differentiable (as in JAX); it has no JVP or "
                                  "VJP rule")
    return rule


def _values_only(name, compute, avals):
    """A primitive computed matrix by matrix with scipy, with no derivative rules."""
    prim = Primitive(name, multiple_results=True)

    def impl(*arrays, **params):
        out_avals = avals(*[ShapedArray(x.shape, x.dtype) for x in arrays], **params)
        outs = [np.empty(a.shape, a.dtype) for a in out_avals]
        for idx in np.ndindex(*arrays[0].shape[:-2]):
            for out, res in zip(outs, compute(*[x[idx] for x in arrays], **params)):
                out[idx] = res
        return outs

    prim.impl = impl
    prim.abstract_eval = avals
    prim.jvp = _no_derivatives(name)
    prim.vjp_joint = _no_derivatives(name)

    def batch(vals, dims, **params):
        outs = prim.bind(*_broadcast_batch(vals, dims), **params)
        return outs, [0] * len(outs)
    prim.batch = batch
    return prim


def _complex_of(dtype):
    return np.result_type(dtype, np.complex64)


def _schur_avals(a, *, output):
    _nl._check_square("schur", a, complex_ok=True)
    dtype = a.dtype if output == "real" else _complex_of(a.dtype)
    return [ShapedArray(a.shape, dtype), ShapedArray(a.shape, dtype)]


schur_p = _values_only(
    "schur", lambda a, *, output: _scipy_linalg("schur").schur(a, output=output), _schur_avals)


def schur(a, output="real"):
    """Schur decomposition `a = z @ t @ z.T` (`t` quasi upper triangular for 'real',
    upper triangular for 'complex'). Values only; needs scipy.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import schur
        >>> t, z = schur(fnp.array([[1.0, 2.0], [0.0, 3.0]]))
        >>> t.tolist()
        [[1.0, 2.0], [0.0, 3.0]]
    """
    if output not in ("real", "complex"):
        raise ValueError(f"schur: output must be 'real' or 'complex', got {output!r}")
    (a,) = promote_float(a)
    t, z = schur_p.bind(a, output=output)
    return t, z


def _hessenberg_avals(a, *, calc_q):
    del calc_q  # unused
    _nl._check_square("hessenberg", a, complex_ok=True)
    return [a, a]


def _hessenberg_one(a, *, calc_q):
    del calc_q  # unused
    h, q = _scipy_linalg("hessenberg").hessenberg(a, calc_q=True)
    return h, q


hessenberg_p = _values_only("hessenberg", _hessenberg_one, _hessenberg_avals)


def hessenberg(a, *, calc_q=False, overwrite_a=False, check_finite=True):
    """Hessenberg form `a = q @ h @ q.T` (`h` zero below the first sub-diagonal). Values
    only; needs scipy.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import hessenberg
        >>> hessenberg(fnp.eye(3)).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    del overwrite_a, check_finite  # unused
    (a,) = promote_float(a)
    h, q = hessenberg_p.bind(a, calc_q=True)
    return (h, q) if calc_q else h


def _rsf2csf_avals(t, z):
    ctype = _complex_of(t.dtype)
    return [ShapedArray(t.shape, ctype), ShapedArray(z.shape, ctype)]


rsf2csf_p = _values_only("rsf2csf", lambda t, z: _scipy_linalg("rsf2csf").rsf2csf(t, z),
                         _rsf2csf_avals)


def rsf2csf(T, Z, check_finite=True):
    """Convert a real Schur form `(T, Z)` to the complex one. Values only; needs scipy.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import rsf2csf
        >>> t, z = rsf2csf(fnp.array([[0.0, 1.0], [-1.0, 0.0]]), fnp.eye(2))
        >>> sorted(abs(complex(x)) for x in [t[0, 0], t[1, 1]])
        [1.0, 1.0]
    """
    del check_finite  # unused
    T, Z = promote_float(T, Z)
    t, z = rsf2csf_p.bind(T, Z)
    return t, z


def _sqrtm_avals(a):
    _nl._check_square("sqrtm", a, complex_ok=True)
    return [ShapedArray(a.shape, _complex_of(a.dtype))]


def _sqrtm_one(a):
    # the principal square root through the complex Schur form (as JAX: complex result)
    t, z = _scipy_linalg("sqrtm").schur(a.astype(_complex_of(a.dtype)), output="complex")
    n = t.shape[0]
    r = np.zeros_like(t)
    for j in range(n):  # the upper-triangular recurrence r_ij (r_ii + r_jj) = t_ij - sum
        r[j, j] = np.sqrt(t[j, j])
        for i in range(j - 1, -1, -1):
            s = r[i, i + 1:j] @ r[i + 1:j, j]
            denom = r[i, i] + r[j, j]
            r[i, j] = (t[i, j] - s) / denom if denom != 0 else (0 if t[i, j] == s else np.nan)
    return (z @ r @ z.conj().T,)


sqrtm_p = _values_only("sqrtm", _sqrtm_one, _sqrtm_avals)


def sqrtm(A, blocksize=1):
    """The principal matrix square root (complex, as in JAX). Values only; needs scipy.

    Example:
        >>> import numpy as np
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import sqrtm
        >>> np.round(np.asarray(sqrtm(fnp.array([[4.0, 0.0], [0.0, 9.0]]))).real, 6).tolist()
        [[2.0, 0.0], [0.0, 3.0]]
    """
    if blocksize != 1:
        raise NotImplementedError("sqrtm: only blocksize=1 is supported")
    (A,) = promote_float(A)
    (out,) = sqrtm_p.bind(A)
    return out


def _funm_avals(a, *, func):
    del func  # unused
    _nl._check_square("funm", a, complex_ok=True)
    return [ShapedArray(a.shape, _complex_of(a.dtype))]


def _funm_one(a, *, func):
    def on_numpy(x):
        return np.asarray(func(x))
    return (np.asarray(_scipy_linalg("funm").funm(a, on_numpy, disp=False)[0],
                       _complex_of(a.dtype)),)


funm_p = _values_only("funm", _funm_one, _funm_avals)


def funm(A, func, disp=True):
    """A matrix function by Schur-Parlett: `func` (elementwise, e.g. `fnp.exp`) applied to
    the matrix `A` (complex result, as in JAX). Values only; needs scipy.

    Example:
        >>> import numpy as np
        >>> import nanofn.numpy as fnp
        >>> from nanofn.scipy.linalg import funm
        >>> np.round(np.asarray(funm(fnp.zeros((2, 2)), fnp.exp)).real, 6).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    (A,) = promote_float(A)
    (out,) = funm_p.bind(A, func=func)
    if disp:
        return out
    return out, None
