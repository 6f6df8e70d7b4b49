"""nanofn.lax.linalg: jax.lax.linalg's names, signatures and return conventions.

These are the lax-level forms JAX programs call (`lax.linalg.eigh` returns `(v, w)`,
`lax.linalg.lu` returns `(lu, pivots, permutation)`, `lax.linalg.qr` defaults to full
matrices, `lax.linalg.svd` returns `(u, s, vh)`). Each is written over nanofn's
`numpy.linalg` and `scipy.linalg` primitives or plain nanofn operations, so gradients,
`jit` and `vmap` come from their rules (`tridiagonal_solve` is a primitive of its own, with
its rules here). `hessenberg`, `tridiagonal`, `householder_product`
and `ormqr` use LAPACK's packed Householder form (`v[0] = 1` implied, `tau` factors),
computed here with ordinary operations (real matrices), so they are differentiable.

Example:
    >>> import nanofn.numpy as fnp
    >>> from nanofn.lax import linalg
    >>> v, w = linalg.eigh(fnp.array([[2.0, 1.0], [1.0, 2.0]]))
    >>> w
    Array([1., 3.], dtype=float32)
"""

from __future__ import annotations

import enum

import numpy as np

import nanofn.numpy as fnp
from nanofn._core import Primitive
from nanofn.numpy import linalg as _nl
from nanofn.numpy._dtypes import dtype_of, promote_float
from nanofn.scipy import linalg as _sl

__all__ = ["EigImplementation", "EighImplementation", "SvdAlgorithm", "cholesky",
           "cholesky_update", "eig", "eigh", "hessenberg", "householder_product", "lu",
           "lu_pivots_to_permutation", "ormqr", "qdwh", "qr", "schur", "svd", "symmetric_product",
           "triangular_solve", "tridiagonal", "tridiagonal_solve"]


class EigImplementation(enum.Enum):
    """Accepted for JAX compatibility: nanofn has one `eig` implementation (LAPACK's)."""
    CUSOLVER = "cusolver"
    MAGMA = "magma"
    LAPACK = "lapack"


class EighImplementation(enum.Enum):
    """Accepted for JAX compatibility: nanofn has one `eigh` implementation."""
    QR = "qr"
    JACOBI = "jacobi"
    QDWH = "qdwh"


class SvdAlgorithm(enum.Enum):
    """Accepted for JAX compatibility: nanofn has one `svd` implementation."""
    DEFAULT = "default"
    QR = "QR"
    JACOBI = "Jacobi"
    POLAR = "polar"
    DIVIDE_AND_CONQUER = "divide_and_conquer"


def _shape(x):
    return tuple(np.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)


def _matrix(name, x, *, square=True, real_only=False):
    (x,) = promote_float(x)
    shape = _shape(x)
    if len(shape) < 2 or (square and shape[-1] != shape[-2]):
        kind = "a square matrix (..., n, n)" if square else "a matrix (..., m, n)"
        raise ValueError(f"{name}: x must be {kind}, got shape {shape}")
    if real_only and np.issubdtype(dtype_of(x), np.complexfloating):
        raise NotImplementedError(f"{name}: complex matrices are not supported, got "
                                  f"{dtype_of(x)}")
    return x


def _mT(x):
    return fnp.swapaxes(x, -1, -2)


def _subset(name, subset_by_index, size):
    if subset_by_index is None:
        return slice(None)
    lo, hi = subset_by_index
    if not 0 <= lo <= hi <= size:
        raise ValueError(f"{name}: subset_by_index={subset_by_index} must satisfy "
                         f"0 <= lo <= hi <= {size}")
    return slice(lo, hi)


# ------------------------------------------------------------------ factorizations


def cholesky(x, *, symmetrize_input=True):
    """The lower Cholesky factor `L` of a symmetric positive definite `x = L @ L^H`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> linalg.cholesky(fnp.array([[4.0, 2.0], [2.0, 2.0]]))
        Array([[2., 0.],
               [1., 1.]], dtype=float32)
    """
    return _nl.cholesky(_matrix("cholesky", x), symmetrize_input=symmetrize_input)


def cholesky_update(r_matrix, w_vector):
    """The upper Cholesky factor of `R^T R + w w^T`, given the upper factor `R` of
    `R^T R`, by Givens rotations (JAX's algorithm; O(n^2)).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> r = linalg.cholesky_update(fnp.eye(2), fnp.array([0.0, 1.0]))
        >>> fnp.round(r.T @ r, 4)
        Array([[1., 0.],
               [0., 2.]], dtype=float32)
    """
    r, w = promote_float(r_matrix, w_vector)
    n = _shape(r)[-1] if len(_shape(r)) == 2 else -1
    if len(_shape(r)) != 2 or _shape(r) != (n, n) or _shape(w) != (n,):
        raise ValueError(f"cholesky_update: needs an (n, n) matrix and an (n,) vector, got "
                         f"r_matrix {_shape(r)} and w_vector {_shape(w)}")
    rows = []
    z = w
    for k in range(n):
        x, y = r[k, k], z[k]
        zero = y == 0
        scale = fnp.maximum(fnp.abs(x), fnp.abs(y))
        scale = fnp.where(zero | (scale == 0), 1.0, scale).astype(x.dtype)
        xs, ys = x / scale, y / scale
        rh = 1.0 / fnp.sqrt(xs * xs + ys * ys)
        c = fnp.where(zero, 1.0, xs * rh).astype(x.dtype)
        s = fnp.where(zero, 0.0, -ys * rh).astype(x.dtype)
        row = c * r[k] - s * z
        z = c * z + s * r[k]
        rows.append(row)
    return fnp.stack(rows)


def lu(x):
    """LU decomposition with partial pivoting: `(lu, pivots, permutation)` as in JAX.

    `lu` holds `L` (unit diagonal, below) and `U` (on and above the diagonal); `pivots[i]`
    is the row swapped with row `i` at step `i` (LAPACK's, from 0); `permutation` is the
    resulting row order, so `x[permutation] == L @ U`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> lu, piv, perm = linalg.lu(fnp.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> piv, perm
        (Array([1, 1], dtype=int32), Array([1, 0], dtype=int32))
    """
    x = _matrix("lu", x, square=False)
    return tuple(_sl.lu_p.bind(x))


def lu_pivots_to_permutation(pivots, permutation_size):
    """The row permutation of size `permutation_size` made by LAPACK swap `pivots`
    (applied in order: row `i` swapped with row `pivots[i]`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> linalg.lu_pivots_to_permutation(fnp.array([2, 2, 2], dtype="int32"), 4)
        Array([2, 0, 1, 3], dtype=int32)
    """
    shape = _shape(pivots)
    if len(shape) < 1 or not np.issubdtype(dtype_of(pivots), np.integer):
        raise ValueError(f"lu_pivots_to_permutation: pivots must be an integer array of at "
                         f"least one axis, got {dtype_of(pivots)} of shape {shape}")
    size = int(permutation_size)
    if size < shape[-1]:
        raise ValueError(f"lu_pivots_to_permutation: permutation_size={size} is smaller than "
                         f"the number of pivots {shape[-1]}")
    pivots = fnp.asarray(pivots, np.int32)
    idx = np.arange(size, dtype=np.int32)
    perm = fnp.broadcast_to(fnp.asarray(idx), shape[:-1] + (size,))
    for i in range(shape[-1]):
        j = pivots[..., i:i + 1]
        at_i = perm[..., i:i + 1]
        at_j = fnp.take_along_axis(perm, j, axis=-1)
        perm = fnp.where(idx == i, at_j, fnp.where(idx == j, at_i, perm))
    return perm


def qr(x, *, pivoting=False, full_matrices=True, use_magma=None):
    """QR decomposition `x = q @ r`; `q` is `(m, m)` when `full_matrices` (the default, as
    in lax.linalg) and `(m, min(m, n))` otherwise. With `pivoting=True` (real matrices),
    `(q, r, p)` with `x[..., p] = q @ r`: Householder QR that moves the remaining column
    of largest norm forward at each step (LAPACK's geqp3), so `|diag(r)|` decreases.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> q, r = linalg.qr(fnp.ones((3, 2)))
        >>> q.shape, r.shape
        ((3, 3), (3, 2))
    """
    del use_magma
    x = _matrix("qr", x, square=False, real_only=pivoting)
    if pivoting:
        return _qr_pivoted(x, full_matrices)
    q, r = _nl.qr(x, mode="complete" if full_matrices else "reduced")
    return q, r


def _qr_pivoted(a, full_matrices):
    *batch, m, n = _shape(a)
    k = min(m, n)
    cols = np.arange(n)
    perm = fnp.broadcast_to(fnp.asarray(cols.astype(np.int32)), tuple(batch) + (n,))
    reflectors = []
    for j in range(k):
        norms = fnp.sum(a[..., j:, :] * a[..., j:, :], axis=-2)
        norms = fnp.where(cols >= j, norms, -1.0)
        p = fnp.argmax(norms, axis=-1)[..., None]  # the first largest, as LAPACK's idamax
        col_j, col_p = a[..., :, j:j + 1], fnp.take_along_axis(a, p[..., None, :], axis=-1)
        a = fnp.where(cols == j, col_p, fnp.where(cols == p[..., None, :], col_j, a))
        at_j, at_p = perm[..., j:j + 1], fnp.take_along_axis(perm, p, axis=-1)
        perm = fnp.where(cols == j, at_p, fnp.where(cols == p, at_j, perm))
        _, tau, v = _reflector(a[..., j:, j])
        full = fnp.concatenate([fnp.zeros_like(a[..., :j, 0]), v], axis=-1)
        a = a - (tau[..., None] * full)[..., :, None] * fnp.matmul(full[..., None, :], a)
        reflectors.append((tau, full))
    qcols = m if full_matrices else k
    q = fnp.broadcast_to(fnp.asarray(np.eye(m, qcols, dtype=dtype_of(a))),
                         tuple(batch) + (m, qcols))
    for tau, v in reversed(reflectors):
        q = q - (tau[..., None] * v)[..., :, None] * fnp.matmul(v[..., None, :], q)
    r = fnp.triu(a if full_matrices else a[..., :k, :])
    return q, r, perm


def svd(x, *, full_matrices=True, compute_uv=True, subset_by_index=None, algorithm=None):
    """Singular value decomposition: `(u, s, vh)` (or `s` alone when not `compute_uv`),
    singular values descending; `subset_by_index=(lo, hi)` keeps values `lo..hi-1`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> linalg.svd(fnp.array([[0.0, 2.0], [1.0, 0.0]]), compute_uv=False)
        Array([2., 1.], dtype=float32)
    """
    del algorithm
    x = _matrix("svd", x, square=False)
    m, n = _shape(x)[-2:]
    keep = _subset("svd", subset_by_index, min(m, n))
    if not compute_uv:
        return _nl.svd(x, full_matrices=False, compute_uv=False)[..., keep]
    u, s, vh = _nl.svd(x, full_matrices=full_matrices and subset_by_index is None)
    if subset_by_index is None:
        return u, s, vh
    return u[..., :, keep], s[..., keep], vh[..., keep, :]


def eigh(x, *, lower=True, symmetrize_input=True, sort_eigenvalues=True,
         subset_by_index=None, implementation=None):
    """Eigenvectors and eigenvalues of a Hermitian matrix, `(v, w)` in lax.linalg's order
    (eigenvalues ascending, eigenvectors as columns).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> v, w = linalg.eigh(fnp.array([[2.0, 0.0], [0.0, 1.0]]))
        >>> w
        Array([1., 2.], dtype=float32)
    """
    del sort_eigenvalues, implementation  # always sorted ascending
    x = _matrix("eigh", x)
    w, v = _nl.eigh(x, UPLO="L" if lower else "U", symmetrize_input=symmetrize_input)
    keep = _subset("eigh", subset_by_index, _shape(x)[-1])
    return v[..., :, keep], w[..., keep]


def _unit_largest_real(v):
    """Columns scaled to unit 2-norm with their largest component real (LAPACK's)."""
    v = v / fnp.linalg.norm(v, axis=-2, keepdims=True)
    big = fnp.argmax(fnp.abs(v), axis=-2)[..., None, :]
    lead = fnp.take_along_axis(v, big, axis=-2)
    return v * (fnp.conj(lead) / fnp.abs(lead))


def eig(x, *, compute_left_eigenvectors=True, compute_right_eigenvectors=True,
        enable_eigvec_derivs=False, implementation=None, use_magma=None):
    """Eigenvalues and (left and right) eigenvectors of a general square matrix, as the
    list `[w, vl, vr]` (vectors omitted when not asked for), all complex.

    Right eigenvectors satisfy `x @ vr = vr * w`, left ones `vl^H @ x = w * vl^H`; each is
    normalised to unit length with its largest component real, as LAPACK does.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> w, vl, vr = linalg.eig(fnp.array([[2.0, 0.0], [0.0, 3.0]]))
        >>> w
        Array([2.+0.j, 3.+0.j], dtype=complex64)
    """
    del enable_eigvec_derivs, implementation, use_magma
    x = _matrix("eig", x)
    if not (compute_left_eigenvectors or compute_right_eigenvectors):
        return [_nl.eigvals(x)]
    w, vr = _nl.eig(x)
    out = [w]
    if compute_left_eigenvectors:
        out.append(_unit_largest_real(fnp.conj(_mT(fnp.linalg.inv(vr)))))
    if compute_right_eigenvectors:
        out.append(vr)
    return out


def schur(x, *, compute_schur_vectors=True, sort_eig_vals=False, select_callable=None):
    """Real Schur form `x = vs @ t @ vs^H` (complex Schur form for complex `x`): `(t, vs)`,
    or `t` alone when not `compute_schur_vectors`. Values only (not differentiable).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> t, vs = linalg.schur(fnp.array([[1.0, 2.0], [0.0, 3.0]]))
        >>> fnp.diagonal(t)
        Array([1., 3.], dtype=float32)
    """
    if sort_eig_vals or select_callable is not None:
        raise NotImplementedError("schur: sort_eig_vals and select_callable are not "
                                  "supported")
    x = _matrix("schur", x)
    complex_ = np.issubdtype(dtype_of(x), np.complexfloating)
    t, vs = _sl.schur(x, output="complex" if complex_ else "real")
    return (t, vs) if compute_schur_vectors else t


# ------------------------------------------------------------ Householder reflectors


def _reflector(x):
    """LAPACK's larfg for real vectors `x` (last axis): `(beta, tau, v)` with `v[0] = 1`
    and `(I - tau v v^T) x = (beta, 0, ..., 0)`."""
    alpha, rest = x[..., 0], x[..., 1:]
    xnorm = fnp.sqrt(fnp.sum(rest * rest, axis=-1))
    trivial = xnorm == 0
    norm = fnp.sqrt(alpha * alpha + xnorm * xnorm)
    beta = fnp.where(alpha >= 0, -norm, norm)
    safe_beta = fnp.where(trivial, 1.0, beta).astype(x.dtype)
    tau = fnp.where(trivial, 0.0, (beta - alpha) / safe_beta).astype(x.dtype)
    denom = fnp.where(trivial, 1.0, alpha - beta).astype(x.dtype)
    v_rest = fnp.where(trivial[..., None], 0.0, rest / denom[..., None]).astype(x.dtype)
    v = fnp.concatenate([fnp.ones_like(alpha)[..., None], v_rest], axis=-1)
    return fnp.where(trivial, alpha, beta).astype(x.dtype), tau, v


def _reduce_columns(a):
    """Householder reduction of real square `a` (..., n, n) by reflectors on columns
    `0..n-2` below the diagonal, applied on both sides (gehrd / sytrd 'L').

    Returns the reduced matrix and the reflectors: a list of `(tau, v)`, `v` of length n
    with zeros above position `j + 1` and 1 there."""
    n = _shape(a)[-1]
    taus, vs = [], []
    for j in range(n - 1):
        _, tau, v = _reflector(a[..., j + 1:, j])
        full = fnp.concatenate([fnp.zeros_like(a[..., :j + 1, 0]), v], axis=-1)
        # H a H with H = I - tau v v^T
        tv = tau[..., None] * full
        a = a - tv[..., :, None] * fnp.matmul(full[..., None, :], a)
        a = a - fnp.matmul(a, full[..., :, None]) * tv[..., None, :]
        taus.append(tau)
        vs.append(full)
    return a, taus, vs


def _below_subdiagonal(kept, vs, n):
    """`kept` on and above the subdiagonal, and below it the reflector entries: column
    `j` holds `vs[j][j + 2:]`."""
    zero = fnp.zeros_like(kept[..., 0])
    vmat = fnp.stack(list(vs[:n - 2]) + [zero] * (n - len(vs[:n - 2])), axis=-1)
    return fnp.where(np.tril(np.ones((n, n), bool), -2), vmat, kept)


def hessenberg(a):
    """Reduction to upper Hessenberg form, in LAPACK's packed form `(a_out, taus)`, as
    lax.linalg: `a_out` holds the Hessenberg matrix on and above its subdiagonal and the
    Householder vectors below it; `taus` has `n - 1` factors. Real matrices.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> out, taus = linalg.hessenberg(fnp.array([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0],
        ...                                          [4.0, 0.0, 1.0]]))
        >>> out[1, 0], taus.shape
        (Array(-5., dtype=float32), (2,))
    """
    a = _matrix("hessenberg", a, real_only=True)
    n = _shape(a)[-1]
    if n == 0:
        return a, fnp.zeros(_shape(a)[:-2] + (0,), dtype_of(a))
    reduced, taus, vs = _reduce_columns(a)
    out = _below_subdiagonal(fnp.triu(reduced, -1), vs, n)
    return out, (fnp.stack(taus, axis=-1) if taus else
                 fnp.zeros(_shape(a)[:-2] + (0,), dtype_of(a)))


def tridiagonal(a, *, lower=True):
    """Reduction of a real symmetric matrix to tridiagonal form `Q^T a Q = T`, in
    LAPACK's (sytrd) packed form, as lax.linalg: `(arr, d, e, taus)` with `d` the
    diagonal of `T`, `e` its off-diagonal, the Householder vectors stored in `arr`
    below the subdiagonal (above the superdiagonal when `lower=False`) and the other
    triangle of `a` left as it was.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> arr, d, e, taus = linalg.tridiagonal(fnp.array([[2.0, 0.0, 0.0], [0.0, 3.0, 4.0],
        ...                                                 [0.0, 4.0, 1.0]]))
        >>> d, e
        (Array([2., 3., 1.], dtype=float32), Array([0., 4.], dtype=float32))
    """
    a = _matrix("tridiagonal", a, real_only=True)
    n = _shape(a)[-1]
    if not lower:
        flip = a[..., ::-1, ::-1]
        arr, d, e, taus = tridiagonal(flip, lower=True)
        return arr[..., ::-1, ::-1], d[..., ::-1], e[..., ::-1], taus[..., ::-1]
    if n == 0:
        empty = fnp.zeros(_shape(a)[:-2] + (0,), dtype_of(a))
        return a, empty, empty, empty
    # the reduction reads the lower triangle only: mirror it
    sym = fnp.tril(a) + _mT(fnp.tril(a, -1))
    reduced, taus, vs = _reduce_columns(sym)
    d = fnp.diagonal(reduced, axis1=-2, axis2=-1)
    e = fnp.diagonal(reduced, offset=-1, axis1=-2, axis2=-1)
    arr = fnp.where(np.triu(np.ones((n, n), bool), 1), a,
                    _below_subdiagonal(reduced, vs, n))
    return arr, d, e, (fnp.stack(taus, axis=-1) if taus else
                       fnp.zeros(_shape(a)[:-2] + (0,), dtype_of(a)))


def _reflectors_of(name, a, taus):
    a = _matrix(name, a, square=False, real_only=True)
    (taus,) = promote_float(taus)
    m, n = _shape(a)[-2:]
    k = _shape(taus)[-1] if len(_shape(taus)) else -1
    if k < 0 or k > min(m, n) or _shape(taus)[:-1] != _shape(a)[:-2]:
        raise ValueError(f"{name}: taus must have shape {_shape(a)[:-2]} + (k,) with "
                         f"k <= {min(m, n)}, got {_shape(taus)} for a of shape {_shape(a)}")
    below = np.tril(np.ones((m, n), bool), -1)
    vmat = fnp.where(below, a, 0.0) + np.eye(m, n, dtype=dtype_of(a))
    return a, taus, vmat, m, n, k


def householder_product(a, taus):
    """The first `n` columns of `Q = H_0 H_1 ... H_{k-1}`, `H_i = I - taus[i] v_i v_i^T`,
    with `v_i` stored below the diagonal of column `i` of `a` (unit leading entry), as
    LAPACK's orgqr and lax.linalg. Real matrices.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> linalg.householder_product(fnp.zeros((2, 2)), fnp.array([2.0, 0.0]))
        Array([[-1.,  0.],
               [ 0.,  1.]], dtype=float32)
    """
    a, taus, vmat, m, n, k = _reflectors_of("householder_product", a, taus)
    q = fnp.broadcast_to(fnp.asarray(np.eye(m, n, dtype=dtype_of(a))), _shape(a))
    for i in reversed(range(k)):
        v = vmat[..., :, i]
        q = q - (taus[..., i, None] * v)[..., :, None] * fnp.matmul(v[..., None, :], q)
    return q


def ormqr(a, taus, c, *, left=True, transpose=False):
    """`Q @ c` (or `Q^T @ c`, `c @ Q`, `c @ Q^T`) for `Q` the product of the Householder
    reflectors stored in `a` and `taus` (see `householder_product`), as LAPACK's ormqr.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> linalg.ormqr(fnp.zeros((2, 2)), fnp.array([2.0, 0.0]), fnp.ones((2, 1)))
        Array([[-1.],
               [ 1.]], dtype=float32)
    """
    a, taus, vmat, m, n, k = _reflectors_of("ormqr", a, taus)
    (c,) = promote_float(c)
    cm, cn = _shape(c)[-2:] if len(_shape(c)) >= 2 else (None, None)
    if cm is None or (left and cm != m) or (not left and cn != m):
        raise ValueError(f"ormqr: c of shape {_shape(c)} does not match Q of size {m} "
                         f"(left={left})")
    # Q = H_0 ... H_{k-1}: Q c and c Q^T apply H_{k-1} first, Q^T c and c Q apply H_0 first
    order = range(k) if left == transpose else reversed(range(k))
    for i in order:
        v = vmat[..., :, i]
        t = taus[..., i, None, None]
        if left:  # H c = c - tau v (v^T c)
            c = c - t * v[..., :, None] * fnp.matmul(v[..., None, :], c)
        else:  # c H = c - tau (c v) v^T
            c = c - t * fnp.matmul(c, v[..., :, None]) * v[..., None, :]
    return c


# ------------------------------------------------------------------ polar (QDWH)


def _qdwh_schedule(eps, max_iterations):
    """The weights `(a, b, c)` of QDWH's steps, from the lower bound `l = eps` on the
    scaled smallest singular value until `l` reaches 1 (a static list)."""
    steps, l, k = [], eps, 0
    while l + 5.0 * eps < 1 and k < max_iterations:
        l2 = l * l
        dd = (4.0 * (1.0 / l2 - 1.0) / l2) ** (1.0 / 3.0)
        sqd = (1.0 + dd) ** 0.5
        a = sqd + (2.0 - dd + 2.0 * (2.0 - l2) / (l2 * sqd)) ** 0.5
        b = (a - 1.0) ** 2 / 4.0
        c = a + b - 1.0
        l = l * (a + b * l2) / (1.0 + c * l2)
        steps.append((a, b, c))
        k += 1
    return steps


def _qdwh_step(u, a, b, c):
    """One dynamically weighted Halley step `u (a I + b u^H u) (I + c u^H u)^-1`, written
    as `(b/c) u + (a - b/c) u (I + c u^H u)^-1`: by a QR factorization while `c` is large
    (better conditioned), by a linear solve with `I + c u^H u` after."""
    m, n = _shape(u)
    e, root = b / c, float(np.sqrt(c))
    if c > 100:
        q, _ = _nl.qr(fnp.concatenate([root * u, fnp.eye(n, dtype=dtype_of(u))]),
                      mode="reduced")
        return e * u + (a - e) / root * fnp.matmul(q[:m], fnp.conj(_mT(q[m:])))
    z = fnp.eye(n, dtype=dtype_of(u)) + c * fnp.matmul(fnp.conj(_mT(u)), u)
    return e * u + (a - e) * fnp.conj(_mT(fnp.linalg.solve(z, fnp.conj(_mT(u)))))


def qdwh(x, *, is_hermitian=False, max_iterations=None, eps=None, dynamic_shape=None):
    """Polar decomposition `x = u @ h` (`u` with orthonormal columns, `h` Hermitian
    positive semi-definite) by the QR-based dynamically weighted Halley iteration
    (Nakatsukasa, Bai and Gygi 2010), as lax.linalg: returns `(u, h, num_iters,
    is_converged)`. `x` is an `(m, n)` matrix with `m >= n`; `max_iterations` defaults to
    10 and `eps` to the dtype's machine epsilon.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> u, h, k, ok = linalg.qdwh(fnp.array([[2.0, 0.0], [0.0, -3.0]]))
        >>> fnp.round(u, 4), fnp.round(h, 4), bool(ok)
        (Array([[ 1.,  0.],
               [ 0., -1.]], dtype=float32), Array([[2., 0.],
               [0., 3.]], dtype=float32), True)
    """
    del is_hermitian  # the same iteration serves both
    if dynamic_shape is not None:
        raise NotImplementedError("qdwh: dynamic_shape is not supported")
    x = _matrix("qdwh", x, square=False)
    if len(_shape(x)) != 2 or _shape(x)[0] < _shape(x)[1]:
        raise ValueError(f"qdwh: x must be an (m, n) matrix with m >= n, got shape "
                         f"{_shape(x)}")
    from nanofn import ops
    max_iterations = 10 if max_iterations is None else int(max_iterations)
    eps = float(np.finfo(dtype_of(x)).eps) if eps is None else float(eps)
    tol = (5.0 * eps) ** (1.0 / 3.0)
    # scale so that the largest singular value is at most 1: ||x||_2 <= sqrt(|x|_1 |x|_inf)
    one = fnp.max(fnp.sum(fnp.abs(x), axis=0))
    inf = fnp.max(fnp.sum(fnp.abs(x), axis=1))
    scale = fnp.where(one == 0, 1.0, 1.0 / fnp.sqrt(fnp.where(one == 0, 1.0, one * inf)))
    u = x * scale.astype(x.dtype)
    steps = _qdwh_schedule(eps, max_iterations)
    moving = fnp.asarray(True)
    for a, b, c in steps:
        previous = u
        u = _qdwh_step(u, a, b, c)
        if c <= 100:  # convergence is judged once the steps are solves
            moving = fnp.linalg.norm(u - previous) > tol

    def not_done(state):
        k, _, moving = state
        return moving & (k < max_iterations)

    def halley(state):
        k, u, _ = state
        new = _qdwh_step(u, 3.0, 1.0, 3.0)
        return k + 1, new, fnp.linalg.norm(new - u) > tol

    k, u, moving = ops.while_loop(not_done, halley,
                                  (fnp.asarray(len(steps)), u, moving))
    u = 1.5 * u - 0.5 * fnp.matmul(u, fnp.matmul(fnp.conj(_mT(u)), u))  # Newton-Schulz
    h = fnp.matmul(fnp.conj(_mT(u)), x)
    h = (h + fnp.conj(_mT(h))) / 2
    return u, h, k, ~moving


# ---------------------------------------------------------------------- solvers


def triangular_solve(a, b, *, left_side=False, lower=False, transpose_a=False,
                     conjugate_a=False, unit_diagonal=False):
    """Solve `op(a) @ x = b` (`left_side=True`) or `x @ op(a) = b` (the default, as in
    lax.linalg) for triangular `a`; `op` transposes and/or conjugates `a` as asked.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> a = fnp.array([[2.0, 0.0], [1.0, 1.0]])
        >>> linalg.triangular_solve(a, fnp.array([[2.0], [3.0]]), left_side=True, lower=True)
        Array([[1.],
               [2.]], dtype=float32)
    """
    a, b = promote_float(a, b)
    sa, sb = _shape(a), _shape(b)
    if len(sa) < 2 or sa[-1] != sa[-2] or len(sb) < 2:
        raise ValueError(f"triangular_solve: a must be (..., n, n) and b a matrix, got a "
                         f"{sa} and b {sb}")
    n = sa[-1]
    if (left_side and sb[-2] != n) or (not left_side and sb[-1] != n):
        raise ValueError(f"triangular_solve: b of shape {sb} does not match a of shape {sa} "
                         f"(left_side={left_side})")
    if conjugate_a:
        a = fnp.conj(a)
    if left_side:
        return _sl._tri_solve(*_batched(a, b), lower, transpose_a, unit_diagonal)
    # x op(a) = b  <=>  op(a)^T x^T = b^T
    xt = _sl._tri_solve(*_batched(a, _mT(b)), lower, not transpose_a, unit_diagonal)
    return _mT(xt)


def _batched(a, b):
    batch = tuple(np.broadcast_shapes(_shape(a)[:-2], _shape(b)[:-2]))
    return (fnp.broadcast_to(a, batch + _shape(a)[-2:]),
            fnp.broadcast_to(b, batch + _shape(b)[-2:]))


# ------------------------------------------------------------------------ tridiagonal_solve

tridiagonal_solve_p = Primitive("tridiagonal_solve")


def _gtsv(dl, d, du, b):
    """Solve tridiagonal systems by Gaussian elimination with partial pivoting (the
    algorithm of LAPACK's `gtsv`, which JAX calls on CPU), vectorised over the batch axes
    and the columns of `b`: O(m) steps along the diagonal, each on whole batches.

    At step i the pivot is the larger of `A[i, i]` and `A[i+1, i]`; when rows i and i+1
    are interchanged, row i gains an entry two places right of the diagonal (`du2`)."""
    dt = np.result_type(d.dtype, b.dtype)
    m = d.shape[-1]
    sub = np.array(dl[..., 1:], dt)            # sub[i] = A[i+1, i]
    d = np.array(d, dt)                        # copies: the elimination works in place
    du = np.array(du, dt)
    du2 = np.zeros(d.shape[:-1] + (max(m - 2, 0),), dt)
    x = np.array(np.broadcast_to(b, d.shape[:-1] + b.shape[-2:]), dt)
    for i in range(m - 1):
        swap = np.abs(d[..., i]) < np.abs(sub[..., i])
        piv = np.where(swap, sub[..., i], d[..., i])
        other = np.where(swap, d[..., i], sub[..., i])   # the entry eliminated below
        fact = other / np.where(piv == 0, 1, piv)
        # row i+1 before elimination: (sub[i], d[i+1], du[i+1]); row i: (d[i], du[i], 0)
        next_d, next_du = d[..., i + 1], du[..., i + 1] if i + 1 < m - 1 else 0
        row_i = (np.where(swap, next_d, du[..., i]),
                 np.where(swap, next_du, 0) if i < m - 2 else None)
        low = (np.where(swap, du[..., i], next_d), np.where(swap, 0, next_du))
        d[..., i] = piv
        d[..., i + 1] = low[0] - fact * row_i[0]
        du[..., i] = row_i[0]
        if i < m - 2:
            du2[..., i] = row_i[1]
            du[..., i + 1] = low[1] - fact * row_i[1]
        bi, bn = x[..., i, :].copy(), x[..., i + 1, :].copy()
        x[..., i, :] = np.where(swap[..., None], bn, bi)
        x[..., i + 1, :] = np.where(swap[..., None], bi, bn) - fact[..., None] * x[..., i, :]
    # back substitution with the two super-diagonals
    for i in range(m - 1, -1, -1):
        acc = x[..., i, :]
        if i + 1 < m:
            acc = acc - du[..., i, None] * x[..., i + 1, :]
        if i + 2 < m:
            acc = acc - du2[..., i, None] * x[..., i + 2, :]
        x[..., i, :] = acc / d[..., i, None]
    return x


@tridiagonal_solve_p.def_impl
def _tridiagonal_solve_impl(dl, d, du, b):
    return _gtsv(np.asarray(dl), np.asarray(d), np.asarray(du), np.asarray(b))


@tridiagonal_solve_p.def_abstract_eval
def _tridiagonal_solve_abstract_eval(dl, d, du, b):
    m = d.shape[-1] if d.ndim else -1
    if m < 0 or dl.shape != d.shape or du.shape != d.shape or b.ndim != d.ndim + 1 \
            or b.shape[:-1] != d.shape or len({dl.dtype, d.dtype, du.dtype, b.dtype}) != 1 \
            or not np.issubdtype(d.dtype, np.inexact):
        raise ValueError(f"tridiagonal_solve: dl, d, du must share a shape (..., m) and b be "
                         f"(..., m, k), all of one float or complex dtype; got dl "
                         f"{dl.str_short()}, d {d.str_short()}, du {du.str_short()}, b "
                         f"{b.str_short()}")
    return b


def _tri_matvec(dl, d, du, x):
    """`A @ x` for the tridiagonal `A` of (dl, d, du) and x of shape (..., m, k)."""
    m = _shape(d)[-1]
    out = d[..., :, None] * x
    if m > 1:
        below = fnp.pad(dl[..., 1:, None] * x[..., :-1, :], [(0, 0)] * (len(_shape(x)) - 2)
                        + [(1, 0), (0, 0)])
        above = fnp.pad(du[..., :-1, None] * x[..., 1:, :], [(0, 0)] * (len(_shape(x)) - 2)
                        + [(0, 1), (0, 0)])
        out = out + below + above
    return out


def _transposed_diagonals(dl, d, du):
    """The diagonals of `A^T`: its sub-diagonal is A's super-diagonal and the other way
    round, each moved one place along the diagonal (a zero in the unused ends)."""
    pad = [(0, 0)] * (len(_shape(d)) - 1)
    dl_t = fnp.pad(du[..., :-1], pad + [(1, 0)])
    du_t = fnp.pad(dl[..., 1:], pad + [(0, 1)])
    return dl_t, d, du_t


def _tridiagonal_solve_jvp(primals, tangents):
    dl, d, du, b = primals
    x = tridiagonal_solve_p.bind(dl, d, du, b)
    zeros = [fnp.zeros_like(p) if t is None else t for p, t in zip(primals[:3], tangents[:3])]
    rhs = tangents[3]
    if any(t is not None for t in tangents[:3]):  # d x = A^-1 (d b - d A x)
        da_x = _tri_matvec(*zeros, x)
        rhs = -da_x if rhs is None else rhs - da_x
    if rhs is None:
        return x, None
    return x, tridiagonal_solve_p.bind(dl, d, du, rhs)


def _tridiagonal_solve_vjp(ct, primals, out, needs):
    dl, d, du, _ = primals
    ct_b = tridiagonal_solve_p.bind(*_transposed_diagonals(dl, d, du), ct)
    # A's cotangent is -ct_b out^T, read on the three diagonals
    m = _shape(d)[-1]
    pad = [(0, 0)] * (len(_shape(d)) - 1)
    ct_d = -fnp.sum(ct_b * out, axis=-1)
    ct_dl = -fnp.pad(fnp.sum(ct_b[..., 1:, :] * out[..., :-1, :], axis=-1), pad + [(1, 0)]) \
        if m > 1 else fnp.zeros_like(dl)
    ct_du = -fnp.pad(fnp.sum(ct_b[..., :-1, :] * out[..., 1:, :], axis=-1), pad + [(0, 1)]) \
        if m > 1 else fnp.zeros_like(du)
    return [ct_dl if needs[0] else None, ct_d if needs[1] else None,
            ct_du if needs[2] else None, ct_b if needs[3] else None]


def _tridiagonal_solve_batch(vals, dims):
    return tridiagonal_solve_p.bind(*_sl._broadcast_batch(vals, dims)), 0


tridiagonal_solve_p.jvp = _tridiagonal_solve_jvp
tridiagonal_solve_p.vjp_joint = _tridiagonal_solve_vjp
tridiagonal_solve_p.batch = _tridiagonal_solve_batch


def tridiagonal_solve(dl, d, du, b, *, perturb_singular=False):
    """Solve the tridiagonal system `A @ x = b`, `A` given by its diagonals: `dl[i] =
    A[i, i-1]` (`dl[0]` unused), `d[i] = A[i, i]`, `du[i] = A[i, i+1]` (`du[-1]`
    unused); `b` has shape `(..., m, k)`.

    Solved as LAPACK's `gtsv` solves it (Gaussian elimination with partial pivoting, O(m)
    steps, each over every batch at once), as JAX does on CPU; differentiable in every
    argument (the tangent and the cotangent are tridiagonal solves too, the cotangent with
    `A^T`). A singular system gives inf or nan.

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> linalg.tridiagonal_solve(fnp.array([0.0, 1.0]), fnp.array([2.0, 2.0]),
        ...                          fnp.array([1.0, 0.0]), fnp.array([[3.0], [3.0]]))
        Array([[1.],
               [1.]], dtype=float32)
    """
    del perturb_singular
    dl, d, du, b = promote_float(dl, d, du, b)
    m = _shape(d)[-1] if len(_shape(d)) else -1
    if m < 0 or _shape(dl) != _shape(d) or _shape(du) != _shape(d) \
            or len(_shape(b)) != len(_shape(d)) + 1 or _shape(b)[-2] != m:
        raise ValueError(f"tridiagonal_solve: dl, d, du must share a shape (..., m) and b "
                         f"be (..., m, k); got dl {_shape(dl)}, d {_shape(d)}, du "
                         f"{_shape(du)}, b {_shape(b)}")
    return tridiagonal_solve_p.bind(dl, d, du, b)


def symmetric_product(a_matrix, c_matrix, *, alpha=1.0, beta=0.0, symmetrize_output=False):
    """`alpha * a @ a^T + beta * c`; with `symmetrize_output` the upper triangle is
    replaced by the transpose of the lower one (here both are already equal).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn.lax import linalg
        >>> linalg.symmetric_product(fnp.array([[1.0], [2.0]]), fnp.eye(2), beta=1.0)
        Array([[2., 2.],
               [2., 5.]], dtype=float32)
    """
    a, c = promote_float(a_matrix, c_matrix)
    sa, sc = _shape(a), _shape(c)
    if len(sa) < 2 or sc[-2:] != (sa[-2], sa[-2]):
        raise ValueError(f"symmetric_product: a_matrix must be (..., m, n) and c_matrix "
                         f"(..., m, m); got {sa} and {sc}")
    out = alpha * fnp.matmul(a, _mT(a)) + beta * c
    if symmetrize_output:
        low = fnp.tril(out)
        out = low + _mT(fnp.tril(out, -1))
    return out.astype(dtype_of(c))
