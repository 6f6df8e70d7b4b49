"""nanofn.numpy.linalg: norms and the basic matrix functions, with derivatives.

`norm` (and `vector_norm`, `matrix_norm`) are written with other nanofn functions. The
matrix functions `inv`, `solve`, `det`, `slogdet`, `cholesky` and `svd` are primitives,
because numpy's LAPACK routines do the work; each has its rules in its block:

* `inv`:      d(A^-1) = -A^-1 dA A^-1
* `solve`:    x = A^-1 b,  dx = A^-1 (db - dA x)
* `det`:      d det(A) = det(A) tr(A^-1 dA)    (A must be invertible to differentiate)
* `slogdet`:  d log|det(A)| = tr(A^-1 dA); the sign is piecewise constant
* `cholesky`: of the symmetric part S of A: dL = L Phi(L^-1 dS L^-T), Phi taking the lower
  triangle with the diagonal halved
* `svd`:      ds_i = u_i^T dA v_i; forward mode also gives the singular vectors' tangents
  (distinct singular values); reverse mode handles the singular values only.

Every primitive works on stacks of matrices (leading batch axes), and `vmap` moves its
batch axis to the front.
"""

from __future__ import annotations

import numpy as np

from nanofn._core import Primitive, ShapedArray
from nanofn.ops import _base as lax
from nanofn.ops._base import _aval_shape, _c, _dtype, bdim_to_front
from nanofn.numpy import _lax_numpy as lnp
from nanofn.numpy._dtypes import asarray_value, dtype_of, promote_float
from nanofn.numpy._lax_numpy import _shape as _shape_of, canonicalize_axes, canonicalize_axis

__all__ = ["norm", "vector_norm", "matrix_norm", "inv", "solve", "det", "slogdet", "cholesky",
           "svd", "svdvals", "trace", "diagonal", "matrix_transpose", "outer", "vecdot"]

# ------------------------------------------------------------------------ helpers


def _mT(x):
    """Swap the last two axes."""
    nd = len(_aval_shape(x))
    perm = tuple(range(nd - 2)) + (nd - 1, nd - 2)
    return lax.transpose_p.bind(x, permutation=perm)


def _mm(a, b):
    """Matrix product of two stacks with the same leading (batch) axes."""
    nd = len(_aval_shape(a))
    batch = tuple(range(nd - 2))
    return lax.dot_general_p.bind(a, b, dimension_numbers=(((nd - 1,), (nd - 2,)), (batch, batch)),
                                  preferred_element_type=None)


def _expand_last2(x):
    """A stack of scalars (shape batch) as a stack of 1x1 matrices (shape batch + (1, 1))."""
    return lax.reshape(x, tuple(_aval_shape(x)) + (1, 1))


def _sum_last2(x):
    nd = len(_aval_shape(x))
    return lax.reduce_sum_p.bind(x, axes=(nd - 2, nd - 1))


def _safe_sqrt(s):
    """sqrt with a zero (not NaN) derivative at 0, so the norm of a zero vector has a zero
    gradient (a subgradient) instead of NaN."""
    zero = lax.eq_p.bind(s, _c(s, 0))
    root = lax.sqrt_p.bind(lax._select(zero, s, _c(s, 1)))
    return lax._select(zero, root, _c(s, 0))


def _abs2(x):
    """`|x|^2`, real also for complex `x` (`x * x` for real `x`)."""
    return lnp.multiply(x, x) if dtype_of(x).kind != "c" else lnp.square(lnp.abs(x))


def _check_square(name, a):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name}: needs square matrices in the last two axes, got "
                         f"{a.str_short()}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name}: needs a float dtype, got {a.str_short()}; "
                        "nanofn.numpy.linalg converts integers for you")


def _unary_batch(prim):
    def batch(vals, dims, **params):
        out = prim.bind(bdim_to_front(vals[0], dims[0]), **params)
        if prim.multiple_results:
            return out, [0] * len(out)
        return out, 0
    return batch


def _as_float_matrix(a, name):
    (a,) = promote_float(a)
    if len(_shape_of(a)) < 2:
        raise ValueError(f"{name}: needs an array of at least 2 dimensions, got shape "
                         f"{tuple(_shape_of(a))}")
    return a


def _lapack(name, fn):
    """numpy's linalg routine; a singular matrix becomes a clear error naming the function."""
    def impl(*args, **params):
        try:
            return fn(*args, **params)
        except np.linalg.LinAlgError as err:
            raise np.linalg.LinAlgError(f"{name}: {err}") from None
    return impl


# ======================================================================== inv

inv_p = Primitive("inv")
inv_p.impl = _lapack("inv", lambda a: np.linalg.inv(a))


def _inv_abstract_eval(a):
    _check_square("inv", a)
    return a


inv_p.abstract_eval = _inv_abstract_eval
inv_p.jvp_terms = [lambda t, a, *, out: lax._neg(_mm(_mm(out, t), out))]  # -A^-1 dA A^-1
inv_p.vjp = [lambda ct, a, *, out: lax._neg(_mm(_mm(_mT(out), ct), _mT(out)))]
inv_p.batch = _unary_batch(inv_p)


def inv(a):
    """Inverse of a square matrix (or of each matrix in a stack).

    Args:
        a: array of shape `(..., n, n)`.

    Returns:
        The inverse, of `a`'s shape (float).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.inv(fnp.array([[2.0, 0.0], [0.0, 4.0]]))
        Array([[0.5 , 0.  ],
               [0.  , 0.25]], dtype=float32)
    """
    return inv_p.bind(_as_float_matrix(a, "inv"))


# ======================================================================== solve

solve_p = Primitive("solve")
solve_p.impl = _lapack("solve", lambda a, b: np.linalg.solve(a, b))


@solve_p.def_abstract_eval
def _solve_abstract_eval(a, b):
    _check_square("solve", a)
    if b.dtype != a.dtype or b.ndim != a.ndim or b.shape[:-1] != a.shape[:-1]:
        raise ValueError(f"solve: b must have shape a.shape[:-1] + (k,) and a's dtype; got "
                         f"a {a.str_short()} and b {b.str_short()}")
    return b


def _solve_jvp(primals, tangents):
    a, b = primals
    ta, tb = tangents
    x = solve_p.bind(a, b)
    rhs = tb
    if ta is not None:
        da_x = _mm(ta, x)
        rhs = lax._neg(da_x) if rhs is None else lax._sub(rhs, da_x)
    return x, solve_p.bind(a, rhs)


def _solve_vjp(ct, primals, out, needs):
    a, _ = primals
    ct_b = solve_p.bind(_mT(a), ct)  # A^-T ct
    ct_a = lax._neg(_mm(ct_b, _mT(out))) if needs[0] else None
    return [ct_a, ct_b if needs[1] else None]


def _solve_batch(vals, dims):
    size = next(_aval_shape(v)[d] for v, d in zip(vals, dims) if d is not None)
    moved = []
    for v, d in zip(vals, dims):
        if d is None:
            shape = tuple(_aval_shape(v))
            v = lax.broadcast_in_dim(v, (size,) + shape, tuple(range(1, len(shape) + 1)))
        else:
            v = bdim_to_front(v, d)
        moved.append(v)
    return solve_p.bind(*moved), 0


solve_p.jvp = _solve_jvp
solve_p.vjp_joint = _solve_vjp
solve_p.batch = _solve_batch


def solve(a, b):
    """Solve `a @ x = b` for `x`.

    Args:
        a: array of shape `(..., n, n)`.
        b: a vector of shape `(n,)`, or matrices of shape `(..., n, k)` (numpy 2's rule:
            only a 1-d `b` is a vector). Leading axes broadcast.

    Returns:
        `x`, of `b`'s shape (with the broadcast leading axes).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.solve(fnp.array([[2.0, 0.0], [0.0, 4.0]]), fnp.array([1.0, 1.0]))
        Array([0.5 , 0.25], dtype=float32)
    """
    a, b = promote_float(a, b)
    a = _as_float_matrix(a, "solve")
    a_shape, b_shape = tuple(_shape_of(a)), tuple(_shape_of(b))
    vector = len(b_shape) == 1
    if vector:
        b = lax.reshape(b, b_shape + (1,))
        b_shape = b_shape + (1,)
    if len(b_shape) < 2 or b_shape[-2] != a_shape[-1]:
        raise ValueError(f"solve: a of shape {a_shape} and b of shape "
                         f"{b_shape[:-1] if vector else b_shape} do not match: b needs shape "
                         f"({a_shape[-1]},) or (..., {a_shape[-1]}, k)")
    batch = lax.broadcast_shapes("solve", a_shape[:-2], b_shape[:-2])
    a = lax.broadcast_to(a, batch + a_shape[-2:])
    b = lax.broadcast_to(b, batch + b_shape[-2:])
    x = solve_p.bind(a, b)
    return lax.reshape(x, batch + (a_shape[-1],)) if vector else x


# ======================================================================== det, slogdet

det_p = Primitive("det")
det_p.impl = lambda a: np.asarray(np.linalg.det(a), dtype=a.dtype)


def _det_abstract_eval(a):
    _check_square("det", a)
    return ShapedArray(a.shape[:-2], a.dtype)


def _adjugate_t(a, det):
    """d det(A) / dA = det(A) A^-T (needs A invertible)."""
    return lax._mul(_expand_last2(det), _mT(inv_p.bind(a)))


det_p.abstract_eval = _det_abstract_eval
det_p.jvp_terms = [lambda t, a, *, out: _sum_last2(lax._mul(_adjugate_t(a, out), t))]
det_p.vjp = [lambda ct, a, *, out: lax._mul(_expand_last2(ct), _adjugate_t(a, out))]
det_p.batch = _unary_batch(det_p)


def det(a):
    """Determinant of a square matrix (or of each matrix in a stack).

    The derivative, `det(A) A^-T`, needs `A` to be invertible (a singular matrix raises
    `LinAlgError` when differentiated).

    Args:
        a: array of shape `(..., n, n)`.

    Returns:
        The determinants, of shape `a.shape[:-2]`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.linalg.det(fnp.array([[1.0, 2.0], [3.0, 4.0]])))
        -2.0
    """
    return det_p.bind(_as_float_matrix(a, "det"))


slogdet_p = Primitive("slogdet", multiple_results=True)


@slogdet_p.def_impl
def _slogdet_impl(a):
    sign, logabsdet = np.linalg.slogdet(a)
    return [np.asarray(sign, a.dtype), np.asarray(logabsdet, a.dtype)]


def _slogdet_abstract_eval(a):
    _check_square("slogdet", a)
    out = ShapedArray(a.shape[:-2], a.dtype)
    return [out, out]


def _slogdet_jvp(primals, tangents):
    (a,), (t,) = primals, tangents
    sign, logabsdet = slogdet_p.bind(a)
    # d log|det A| = tr(A^-1 dA); the sign does not change under small perturbations
    return [sign, logabsdet], [None, _sum_last2(lax._mul(_mT(inv_p.bind(a)), t))]


def _slogdet_vjp(cts, primals, outs, needs):
    del outs, needs  # unused
    _, ct = cts
    if ct is None:
        return [None]
    (a,) = primals
    return [lax._mul(_expand_last2(ct), _mT(inv_p.bind(a)))]


slogdet_p.abstract_eval = _slogdet_abstract_eval
slogdet_p.jvp = _slogdet_jvp
slogdet_p.vjp_joint = _slogdet_vjp
slogdet_p.batch = _unary_batch(slogdet_p)


def slogdet(a):
    """Sign and log of the absolute value of the determinant (stable for large matrices).

    Args:
        a: array of shape `(..., n, n)`.

    Returns:
        `(sign, logabsdet)`, each of shape `a.shape[:-2]`; `det = sign * exp(logabsdet)`.
        `logabsdet` is differentiable (for invertible `a`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> sign, logdet = fnp.linalg.slogdet(fnp.array([[2.0, 0.0], [0.0, -3.0]]))
        >>> float(sign), round(float(logdet), 4)
        (-1.0, 1.7918)
    """
    sign, logabsdet = slogdet_p.bind(_as_float_matrix(a, "slogdet"))
    return sign, logabsdet


# ======================================================================== cholesky

cholesky_p = Primitive("cholesky")


@cholesky_p.def_impl
def _cholesky_impl(a):
    sym = (a + np.swapaxes(a, -1, -2)) / np.asarray(2, a.dtype)
    try:
        return np.linalg.cholesky(sym)
    except np.linalg.LinAlgError:
        # JAX's convention: a matrix that is not positive definite gives NaNs, not an error
        return np.full(a.shape, np.nan, a.dtype)


def _cholesky_abstract_eval(a):
    _check_square("cholesky", a)
    return a


def _sym(x):
    return lax._mul(lax._add(x, _mT(x)), _c(x, 0.5))


def _phi(x):
    """The lower triangle of each matrix, with the diagonal halved."""
    n = _aval_shape(x)[-1]
    rows, cols = np.indices((n, n))
    weight = np.where(rows > cols, 1.0, np.where(rows == cols, 0.5, 0.0)).astype(_dtype(x))
    return lax._mul(x, weight)


def _cholesky_jvp(t, a, *, out):
    l_inv = inv_p.bind(out)
    return _mm(out, _phi(_mm(_mm(l_inv, _sym(t)), _mT(l_inv))))


def _cholesky_vjp(ct, a, *, out):
    l_inv = inv_p.bind(out)
    return _sym(_mm(_mm(_mT(l_inv), _phi(_mm(_mT(out), ct))), l_inv))


cholesky_p.abstract_eval = _cholesky_abstract_eval
cholesky_p.jvp_terms = [_cholesky_jvp]
cholesky_p.vjp = [_cholesky_vjp]
cholesky_p.batch = _unary_batch(cholesky_p)


def cholesky(a, *, upper=False, symmetrize_input=True):
    """Cholesky factor of a symmetric positive definite matrix: `a = L @ L.T`.

    As in JAX, the factor is that of the symmetric part `(a + a.T) / 2` (with
    `symmetrize_input=False`, only the lower triangle of `a` is read, like numpy), and a
    matrix that is not positive definite gives NaNs rather than an error.

    Args:
        a: array of shape `(..., n, n)`.
        upper: return the upper factor `U = L.T` (`a = U.T @ U`) instead.
        symmetrize_input: factor `(a + a.T) / 2` (True) or the lower triangle of `a`.

    Returns:
        The triangular factor, of `a`'s shape.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.cholesky(fnp.array([[4.0, 2.0], [2.0, 2.0]]))
        Array([[2., 0.],
               [1., 1.]], dtype=float32)
    """
    a = _as_float_matrix(a, "cholesky")
    if not symmetrize_input:  # mirror the strict lower triangle into the upper one
        n = _shape_of(a)[-1]
        rows, cols = np.indices((n, n))
        a = lnp.where(rows >= cols, a, _mT(a))
    factor = cholesky_p.bind(a)
    return _mT(factor) if upper else factor


# ======================================================================== svd

svd_p = Primitive("svd", multiple_results=True)


@svd_p.def_impl
def _svd_impl(a):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return [u, s.astype(a.dtype, copy=False), vh]


def _svd_abstract_eval(a):
    if a.ndim < 2:
        raise ValueError(f"svd: needs at least 2 dimensions, got {a.str_short()}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"svd: needs a float dtype, got {a.str_short()}")
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    return [ShapedArray(batch + (m, k), a.dtype), ShapedArray(batch + (k,), a.dtype),
            ShapedArray(batch + (k, n), a.dtype)]


def _diag_part(x):
    """The diagonal of each k x k matrix in a stack."""
    k = _aval_shape(x)[-1]
    eye = np.eye(k, dtype=bool)
    picked = lax._select(eye, _c(x, 0), x)
    return lax.reduce_sum_p.bind(picked, axes=(len(_aval_shape(x)) - 1,))


def _row(x):
    """A stack of vectors (batch + (k,)) as a stack of 1 x k rows."""
    shape = tuple(_aval_shape(x))
    return lax.reshape(x, shape[:-1] + (1, shape[-1]))


def _col(x):
    """A stack of vectors (batch + (k,)) as a stack of k x 1 columns."""
    shape = tuple(_aval_shape(x))
    return lax.reshape(x, shape + (1,))


def _safe_reciprocal(x):
    """1/x, with 0 where x == 0."""
    zero = lax.eq_p.bind(x, _c(x, 0))
    return lax._select(zero, lax._div(_c(x, 1), lax._select(zero, x, _c(x, 1))), _c(x, 0))


def _svd_jvp(primals, tangents):
    # The reduced SVD's tangents (Townsend, "Differentiating the singular value
    # decomposition", 2016), for distinct singular values. With dP = U^T dA V:
    #   ds = diag(dP)
    #   dU = U (F o (dP S + S dP^T)) + (I - U U^T) dA V S^-1
    #   dV = V (F o (S dP + dP^T S)) + (I - V V^T) dA^T U S^-1,  F_ij = 1 / (s_j^2 - s_i^2)
    (a,), (t,) = primals, tangents
    u, s, vh = svd_p.bind(a)
    v = _mT(vh)
    dp = _mm(_mm(_mT(u), t), v)
    ds = _diag_part(dp)
    s_j, s_i = _row(s), _col(s)
    f = _safe_reciprocal(lax._mul(lax._add(s_j, s_i), lax._sub(s_j, s_i)))
    dp_s, s_dp = lax._mul(dp, s_j), lax._mul(s_i, dp)
    du = _mm(u, lax._mul(f, lax._add(dp_s, _mT(dp_s))))
    dv = _mm(v, lax._mul(f, lax._add(s_dp, _mT(s_dp))))
    m, n = _aval_shape(a)[-2:]
    inv_s = _safe_reciprocal(s_j)
    if m > n:  # the part of dA V outside the span of U
        dav = _mm(t, v)
        du = lax._add(du, lax._mul(lax._sub(dav, _mm(u, _mm(_mT(u), dav))), inv_s))
    if n > m:  # the part of dA^T U outside the span of V
        dau = _mm(_mT(t), u)
        dv = lax._add(dv, lax._mul(lax._sub(dau, _mm(v, _mm(vh, dau))), inv_s))
    return [u, s, vh], [du, ds, _mT(dv)]


def _svd_vjp(cts, primals, outs, needs):
    del primals, needs  # unused
    ct_u, ct_s, ct_vh = cts
    if ct_u is not None or ct_vh is not None:
        raise NotImplementedError(
            "svd: reverse-mode derivatives through the singular vectors (u, vh) are not "
            "implemented; only the singular values are (use svdvals, or norm with ord=2 or "
            "'nuc'). Forward mode (jvp) handles u and vh.")
    if ct_s is None:
        return [None]
    u, _, vh = outs
    return [_mm(lax._mul(u, _row(ct_s)), vh)]  # dA = U diag(ct_s) V^T


svd_p.abstract_eval = _svd_abstract_eval
svd_p.jvp = _svd_jvp
svd_p.vjp_joint = _svd_vjp
svd_p.batch = _unary_batch(svd_p)


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """Singular value decomposition `a = u @ diag(s) @ vh`.

    Forward mode differentiates all three outputs (for distinct singular values); reverse
    mode only the singular values (a cotangent on `u` or `vh` raises
    `NotImplementedError`).

    Args:
        a: array of shape `(..., m, n)`.
        full_matrices: must be False when `compute_uv` (nanofn computes the reduced SVD).
        compute_uv: return `(u, s, vh)` (True) or only `s`.
        hermitian: ignored (the general algorithm is used).

    Returns:
        `(u, s, vh)` with shapes `(..., m, k)`, `(..., k)`, `(..., k, n)`, `k = min(m, n)`,
        singular values in descending order; or `s` alone.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.svd(fnp.array([[3.0, 0.0], [0.0, -4.0]]), compute_uv=False)
        Array([4., 3.], dtype=float32)
    """
    del hermitian  # unused
    a = _as_float_matrix(a, "svd")
    u, s, vh = svd_p.bind(a)
    if not compute_uv:
        return s
    if full_matrices and _shape_of(a)[-1] != _shape_of(a)[-2]:
        raise NotImplementedError("svd: full_matrices=True is not supported for non-square "
                                  "matrices; pass full_matrices=False")
    return u, s, vh


def svdvals(x, /):
    """Singular values of `x` (descending), differentiable.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.svdvals(fnp.array([[0.0, 2.0], [1.0, 0.0]]))
        Array([2., 1.], dtype=float32)
    """
    return svd(x, compute_uv=False)


# ======================================================================== norms


def _vector_norm(x, ord, axes, keepdims):
    if ord is None or ord == 2:
        return _safe_sqrt(lnp.sum(_abs2(x), axis=axes, keepdims=keepdims))
    abs_x = lnp.abs(x)
    ax = axes
    if ord == np.inf:
        return lnp.max(abs_x, axis=ax, keepdims=keepdims)
    if ord == -np.inf:
        return lnp.min(abs_x, axis=ax, keepdims=keepdims)
    if ord == 0:
        nonzero = lnp.not_equal(x, np.asarray(0, dtype_of(abs_x)))
        return lnp.sum(nonzero, axis=ax, keepdims=keepdims, dtype=dtype_of(abs_x))
    if ord == 1:
        return lnp.sum(abs_x, axis=ax, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(f"norm: ord={ord!r} is only defined for matrices")
    p = float(ord)
    total = lnp.sum(lnp.power(abs_x, np.asarray(p, dtype_of(abs_x))), axis=ax, keepdims=keepdims)
    if p < 0:
        return lnp.power(total, np.asarray(1.0 / p, dtype_of(abs_x)))
    # p-th root with a zero derivative at 0 (like the 2-norm), instead of 0 * inf = NaN
    zero = lnp.equal(total, np.asarray(0, dtype_of(abs_x)))
    safe = lnp.where(zero, np.asarray(1, dtype_of(abs_x)), total)
    return lnp.where(zero, np.asarray(0, dtype_of(abs_x)),
                     lnp.power(safe, np.asarray(1.0 / p, dtype_of(abs_x))))


def _move_to_end(x, axes):
    nd = len(_shape_of(x))
    rest = [d for d in range(nd) if d not in axes]
    return lax.transpose(x, tuple(rest) + tuple(axes))


def _matrix_norm(x, ord, axes, keepdims):
    row, col = axes
    if ord is None or ord == "fro":
        out = _safe_sqrt(lnp.sum(_abs2(x), axis=axes))
    elif ord in (1, -1, np.inf, -np.inf):
        # 1: the largest column sum of |x|; inf: the largest row sum
        summed, other = (row, col) if ord in (1, -1) else (col, row)
        sums = lnp.sum(lnp.abs(x), axis=summed)
        other -= other > summed
        pick = lnp.max if ord in (1, np.inf) else lnp.min
        out = pick(sums, axis=other)
    elif ord in (2, -2, "nuc"):
        s = svd_p.bind(_move_to_end(x, axes))[1]
        if ord == "nuc":
            out = lnp.sum(s, axis=-1)
        else:
            out = (lnp.max if ord == 2 else lnp.min)(s, axis=-1)
    else:
        raise ValueError(f"norm: invalid ord={ord!r} for a matrix norm; use None, 'fro', "
                         "'nuc', 1, -1, 2, -2, inf or -inf")
    if keepdims:
        shape = [1 if d in axes else n for d, n in enumerate(_shape_of(x))]
        out = lax.reshape(out, shape)
    return out


def norm(x, ord=None, axis=None, keepdims=False):
    """Vector or matrix norm, like `numpy.linalg.norm`.

    With `axis` an int (or `x` 1-d and `axis` None) this is a vector norm: `ord` None or 2
    (Euclidean), 1, inf, -inf, 0 (count of non-zeros) or any other `p`
    (`sum(|x|**p)**(1/p)`). With `axis` a pair (or `x` 2-d and `axis` None) it is a matrix
    norm: None or 'fro' (Frobenius), 'nuc' (sum of singular values), 1 / -1 (max / min
    column sum of `|x|`), inf / -inf (max / min row sum), 2 / -2 (largest / smallest
    singular value). With `axis` and `ord` both None, `x` of any rank is treated as one
    flat vector.

    Unlike JAX (whose gradient of the 2-norm at the zero vector is NaN), the gradient of
    the 2-norm, the Frobenius norm and the p-norms (p > 0) at zero is 0, a subgradient.

    Args:
        x: array-like input (integers become float32).
        ord: the kind of norm (see above).
        axis: None, an int, or a pair of ints.
        keepdims: keep the reduced axes with size 1.

    Returns:
        The norm(s).

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.linalg.norm(fnp.array([3.0, 4.0])))
        5.0
        >>> float(fnp.linalg.norm(fnp.array([[1.0, -2.0], [3.0, 4.0]]), ord=1))
        6.0
    """
    (x,) = promote_float(x)
    nd = len(_shape_of(x))
    if axis is None:
        if ord is None:
            return _vector_norm(x, None, None, keepdims) if not keepdims else \
                lax.reshape(_vector_norm(x, None, None, False), (1,) * nd)
        if nd not in (1, 2):
            raise ValueError(f"norm: with ord={ord!r} and axis=None, x must be 1-d or 2-d; got "
                             f"shape {tuple(_shape_of(x))}. Give axis=")
        axes = tuple(range(nd))
    else:
        axes = canonicalize_axes(axis, nd)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError(f"norm: axis must be an int or a pair of ints, got {axis!r}")


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    """Vector norm over `axis` (all axes, as one flat vector, if None); see `norm`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.linalg.vector_norm(fnp.ones((2, 2)), ord=1))
        4.0
    """
    (x,) = promote_float(x)
    nd = len(_shape_of(x))
    if axis is None or isinstance(axis, (tuple, list)):
        axes = canonicalize_axes(axis, nd)
        moved = _move_to_end(x, axes)
        size = int(np.prod([_shape_of(x)[a] for a in axes], dtype=np.int64))
        flat = lax.reshape(moved, tuple(_shape_of(moved))[:nd - len(axes)] + (size,))
        out = _vector_norm(flat, ord, nd - len(axes), False)
        if keepdims:
            out = lax.reshape(out, [1 if d in axes else n for d, n in enumerate(_shape_of(x))])
        return out
    return _vector_norm(x, ord, canonicalize_axis(axis, nd), keepdims)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    """Matrix norm over the last two axes; see `norm`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.linalg.matrix_norm(fnp.eye(2), ord=1))
        1.0
    """
    (x,) = promote_float(x)
    nd = len(_shape_of(x))
    return _matrix_norm(x, ord, (nd - 2, nd - 1), keepdims)


# ======================================================================== small helpers


def trace(x, /, *, offset=0, dtype=None):
    """Sum of the main diagonal of each matrix in the last two axes (array API).

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.linalg.trace(fnp.eye(3)))
        3.0
    """
    from nanofn.numpy._reductions import einsum
    if offset:
        raise NotImplementedError("linalg.trace: offset is not supported")
    x = asarray_value(x)
    if dtype is not None:
        x = lnp.astype(x, dtype)
    return einsum("...ii->...", x)


def diagonal(x, /, *, offset=0):
    """The main diagonal of each matrix in the last two axes (array API).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.diagonal(fnp.array([[1, 2], [3, 4]]))
        Array([1, 4], dtype=int32)
    """
    from nanofn.numpy._reductions import einsum
    if offset:
        raise NotImplementedError("linalg.diagonal: offset is not supported")
    return einsum("...ii->...i", asarray_value(x))


def matrix_transpose(x, /):
    """Swap the last two axes.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.matrix_transpose(fnp.ones((2, 3))).shape
        (3, 2)
    """
    x = asarray_value(x)
    if len(_shape_of(x)) < 2:
        raise ValueError(f"matrix_transpose: needs at least 2 dimensions, got shape "
                         f"{tuple(_shape_of(x))}")
    return lnp._wrap_output(_mT(x))


def outer(x1, x2, /):
    """Outer product of two 1-d arrays.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.outer(fnp.ones(2), fnp.ones(3)).shape
        (2, 3)
    """
    x1, x2 = asarray_value(x1), asarray_value(x2)
    if len(_shape_of(x1)) != 1 or len(_shape_of(x2)) != 1:
        raise ValueError("linalg.outer: both inputs must be 1-d")
    return lnp.outer(x1, x2)


def vecdot(x1, x2, /, *, axis=-1):
    """Dot product of vectors along `axis` (broadcasting the other axes).

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.linalg.vecdot(fnp.array([1.0, 2.0]), fnp.array([3.0, 4.0])))
        11.0
    """
    return lnp.sum(lnp.multiply(x1, x2), axis=axis)
