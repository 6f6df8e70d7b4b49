"""nanofn.numpy.linalg: jax.numpy.linalg, batched over leading axes, with derivatives.

The decompositions are primitives, because numpy's LAPACK routines do the work; each has
its rules in its block, written with nanofn primitives so they can be differentiated again:

* `inv`:      d(A^-1) = -A^-1 dA A^-1
* `solve`:    x = A^-1 b,  dx = A^-1 (db - dA x)
* `det`:      d det(A) = tr(adj(A) dA), with the adjugate its own primitive (exact at
  singular matrices too, so det's gradient there is the adjugate, as in JAX)
* `slogdet`:  d log|det(A)| = Re tr(A^-1 dA); a real sign is piecewise constant
* `cholesky`: of A's lower triangle (as LAPACK and JAX): dL = L Phi(L^-1 dA L^-T), Phi taking
  the lower triangle with the diagonal halved
* `svd`:      Townsend's formulas for u, s and vh in both modes (distinct singular values)
* `eigh`:     dw = diag(V^T dA V), dV = V (F o V^T dA V), F_ij = 1 / (w_j - w_i)
* `qr`:       dQ = Q (Omega - Y) + X, dR = (Y - Omega) R with X = dA R^-1, Y = Q^T X
* `eig`:      dw = diag(V^-1 dA V) for the eigenvalues; the eigenvectors are values only
  (as in JAX), and so is `geqrf` (qr's 'raw' mode)

Complex matrices follow JAX's conventions: the rules above hold with conjugate transposes
(`V^H` for `V^T`), singular values, `eigh`'s eigenvalues and `slogdet`'s `logabsdet` are
real, and each reverse rule is the adjoint of the forward one under JAX's pairing of
cotangents (no conjugation).

`norm` (and `vector_norm`, `matrix_norm`), `pinv`, `lstsq`, `matrix_power`, `matrix_rank`,
`cond`, `tensorinv`, `tensorsolve`, `multi_dot`, `cross` and the array-API helpers are
written with these and other nanofn functions. `vmap` moves a primitive's batch axis to
the front. docs/linalg.md lists the rules and every convention choice.
"""

from __future__ import annotations

from operator import index as operator_index
from typing import NamedTuple

import numpy as np

from nanofn._core import Primitive, ShapedArray, Tracer
from nanofn.ops import _base as lax
from nanofn.ops import _complex as C
from nanofn.ops._base import _aval_shape, _c, _dtype, bdim_to_front
from nanofn.numpy import _lax_numpy as lnp
from nanofn.numpy._dtypes import asarray_value, default_int, dtype_of, promote, promote_float
from nanofn.numpy._lax_numpy import _shape as _shape_of, canonicalize_axes, canonicalize_axis

__all__ = ["norm", "vector_norm", "matrix_norm", "inv", "solve", "det", "slogdet", "cholesky",
           "svd", "svdvals", "trace", "diagonal", "matrix_transpose", "outer", "vecdot",
           "eigh", "eigvalsh", "eig", "eigvals", "qr", "pinv", "lstsq", "matrix_power",
           "matrix_rank", "cond", "tensorinv", "tensorsolve", "multi_dot", "cross", "matmul",
           "tensordot"]



class SVDResult(NamedTuple):
    U: object
    S: object
    Vh: object


class EighResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


class EigResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


class QRResult(NamedTuple):
    Q: object
    R: object


class SlogdetResult(NamedTuple):
    sign: object
    logabsdet: object

# ------------------------------------------------------------------------ helpers


def _mT(x):
    """Swap the last two axes."""
    nd = len(_aval_shape(x))
    perm = tuple(range(nd - 2)) + (nd - 1, nd - 2)
    return lax.transpose_p.bind(x, permutation=perm)


def _is_complex(x):
    return _dtype(x).kind == "c"


def _conj(x):
    """Complex conjugate; the identity on real values (lax's conj would make them complex)."""
    return C.conj_p.bind(x) if _is_complex(x) else x


def _H(x):
    """Conjugate transpose of the last two axes (`_mT` for real values)."""
    return _mT(_conj(x))


def _real(x):
    return C.real_p.bind(x) if _is_complex(x) else x


def _like(x, y):
    """A real `x` in `y`'s (complex) dtype, so the two can be multiplied."""
    return x if _dtype(x) == _dtype(y) else lax.convert_element_type_p.bind(x, new_dtype=_dtype(y))


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


def _check_square(name, a, complex_ok=False):
    """Square matrices of a float dtype; `complex_ok` for the primitives whose rules hold
    for complex matrices too (the holomorphic ones: their rules need no conjugation)."""
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name}: needs square matrices in the last two axes, got "
                         f"{a.str_short()}")
    if not (np.issubdtype(a.dtype, np.floating)
            or complex_ok and np.issubdtype(a.dtype, np.complexfloating)):
        raise TypeError(f"{name}: needs a {'float or complex' if complex_ok else 'float'} "
                        f"dtype, got {a.str_short()}; nanofn.numpy.linalg converts integers "
                        "for you")


def _unary_batch(prim):
    def batch(vals, dims, **params):
        out = prim.bind(bdim_to_front(vals[0], dims[0]), **params)
        if prim.multiple_results:
            return out, [0] * len(out)
        return out, 0
    return batch


def _no_complex(name, *xs):
    """Refuse complex input where the rules would need conjugation (not there yet), rather
    than give silently wrong numbers."""
    for x in xs:
        if np.issubdtype(dtype_of(x), np.complexfloating):
            raise TypeError(f"{name}: complex input is not supported (got "
                            f"{np.dtype(dtype_of(x)).name}); it needs real arrays")


def _as_float_matrix(a, name, complex_ok=False):
    (a,) = promote_float(a)
    if not complex_ok:
        _no_complex(name, a)
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
    _check_square("inv", a, complex_ok=True)
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
    return inv_p.bind(_as_float_matrix(a, "inv", complex_ok=True))


# ======================================================================== solve

solve_p = Primitive("solve")
solve_p.impl = _lapack("solve", lambda a, b: np.linalg.solve(a, b))


@solve_p.def_abstract_eval
def _solve_abstract_eval(a, b):
    _check_square("solve", a, complex_ok=True)
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
    a = _as_float_matrix(a, "solve", complex_ok=True)
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
    _check_square("det", a, complex_ok=True)
    return ShapedArray(a.shape[:-2], a.dtype)


def _adjugate_t(a, det):
    """d det(A) / dA = adj(A)^T (= det(A) A^-T where A is invertible; the adjugate is
    defined at singular matrices too, as in JAX)."""
    del det  # unused
    return _mT(adjugate_p.bind(a))


det_p.abstract_eval = _det_abstract_eval
det_p.jvp_terms = [lambda t, a, *, out: _sum_last2(lax._mul(_adjugate_t(a, out), t))]
det_p.vjp = [lambda ct, a, *, out: lax._mul(_expand_last2(ct), _adjugate_t(a, out))]
det_p.batch = _unary_batch(det_p)


def det(a):
    """Determinant of a square matrix (or of each matrix in a stack).

    The gradient is the transposed adjugate, `det(A) A^-T` for an invertible `A`, and
    still defined (and exact) at a singular `A`, as in JAX.

    Args:
        a: array of shape `(..., n, n)`.

    Returns:
        The determinants, of shape `a.shape[:-2]`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.linalg.det(fnp.array([[1.0, 2.0], [3.0, 4.0]])))
        -2.0
    """
    return det_p.bind(_as_float_matrix(a, "det", complex_ok=True))


slogdet_p = Primitive("slogdet", multiple_results=True)


@slogdet_p.def_impl
def _slogdet_impl(a):
    sign, logabsdet = np.linalg.slogdet(a)
    return [np.asarray(sign, a.dtype), np.asarray(logabsdet, C.real_dtype(a.dtype))]


def _slogdet_abstract_eval(a):
    _check_square("slogdet", a, complex_ok=True)
    return [ShapedArray(a.shape[:-2], a.dtype), ShapedArray(a.shape[:-2],
                                                            C.real_dtype(a.dtype))]


def _slogdet_jvp(primals, tangents):
    (a,), (t,) = primals, tangents
    sign, logabsdet = slogdet_p.bind(a)
    # With y = tr(A^-1 dA): d log|det A| = Re y. A real sign is piecewise constant; a
    # complex one (the phase of det A) turns: d sign = i Im(y) sign
    y = _sum_last2(lax._mul(_mT(inv_p.bind(a)), t))
    if not _is_complex(a):
        return [sign, logabsdet], [None, y]
    dsign = lax._mul(lax._sub(y, _like(_real(y), y)), sign)
    return [sign, logabsdet], [dsign, _real(y)]


def _slogdet_vjp(cts, primals, outs, needs):
    # the transpose of the rule above: ct_A = (ct_logabsdet + i Im(ct_sign sign)) A^-T
    del needs  # unused
    ct_sign, ct = cts
    (a,) = primals
    if not _is_complex(a):
        ct_sign = None
    if ct is None and ct_sign is None:
        return [None]
    scale = None if ct is None else _like(ct, a)
    if ct_sign is not None:
        turn = lax._mul(ct_sign, outs[0])
        turn = lax._sub(turn, _like(_real(turn), turn))  # i Im(ct_sign sign)
        scale = turn if scale is None else lax._add(scale, turn)
    return [lax._mul(_expand_last2(scale), _mT(inv_p.bind(a)))]


slogdet_p.abstract_eval = _slogdet_abstract_eval
slogdet_p.jvp = _slogdet_jvp
slogdet_p.vjp_joint = _slogdet_vjp
slogdet_p.batch = _unary_batch(slogdet_p)


def slogdet(a, *, method=None):
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
    if method not in (None, "lu", "qr"):
        raise ValueError(f"slogdet: method must be None, 'lu' or 'qr', got {method!r}")
    sign, logabsdet = slogdet_p.bind(_as_float_matrix(a, "slogdet", complex_ok=True))
    return SlogdetResult(sign, logabsdet)


# ======================================================================== cholesky

cholesky_p = Primitive("cholesky")


@cholesky_p.def_impl
def _cholesky_impl(a):
    # reads the lower triangle only (LAPACK's potrf), as JAX's primitive does
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        # JAX's convention: a matrix that is not positive definite gives NaNs, not an error
        # (in the lower triangle; the factor's zeros above the diagonal stay zeros)
        n = a.shape[-1]
        out = np.where(np.tril(np.ones((n, n), bool)), np.array(np.nan, a.dtype),
                       np.zeros((), a.dtype)) * np.ones(a.shape, a.dtype)
        for idx in np.ndindex(*a.shape[:-2]):
            try:
                out[idx] = np.linalg.cholesky(a[idx])
            except np.linalg.LinAlgError:
                pass
        return out


def _cholesky_abstract_eval(a):
    _check_square("cholesky", a, complex_ok=True)
    return a


def _sym(x):
    """The symmetric (Hermitian) part `(x + x^H) / 2`."""
    return lax._mul(lax._add(x, _H(x)), _c(x, 0.5))


def _phi(x):
    """The lower triangle of each matrix, with the diagonal halved."""
    n = _aval_shape(x)[-1]
    rows, cols = np.indices((n, n))
    weight = np.where(rows > cols, 1.0, np.where(rows == cols, 0.5, 0.0)).astype(_dtype(x))
    return lax._mul(x, weight)


def _cholesky_jvp(t, a, *, out):
    # JAX's rule: the tangent is used as given (public cholesky symmetrises its input
    # first, so its derivative is symmetric; with symmetrize_input=False it is not)
    l_inv = inv_p.bind(out)
    return _mm(out, _phi(_mm(_mm(l_inv, t), _H(l_inv))))


def _cholesky_vjp(ct, a, *, out):
    # the adjoint L^-H Phi(L^H gL) L^-1 (Phi is self-adjoint), conjugated for JAX's
    # cotangents: L^-T Phi(L^T ct) conj(L^-1)
    l_inv = inv_p.bind(out)
    return _mm(_mm(_mT(l_inv), _phi(_mm(_mT(out), ct))), _conj(l_inv))


cholesky_p.abstract_eval = _cholesky_abstract_eval
cholesky_p.jvp_terms = [_cholesky_jvp]
cholesky_p.vjp = [_cholesky_vjp]
cholesky_p.batch = _unary_batch(cholesky_p)


def cholesky(a, *, upper=False, symmetrize_input=True):
    """Cholesky factor of a symmetric (Hermitian) positive definite matrix: `a = L @ L^H`.

    As in JAX, the factor is that of the Hermitian part `(a + a^H) / 2` (with
    `symmetrize_input=False`, only the lower triangle of `a` is read, like numpy), and a
    matrix that is not positive definite gives NaNs rather than an error. With
    `symmetrize_input=False` the derivative is JAX's: the rule's tangent is not
    symmetrised, so the gradient is not symmetric.

    Args:
        a: array of shape `(..., n, n)`.
        upper: return the upper factor `U = L^H` (`a = U^H @ U`) instead.
        symmetrize_input: factor `(a + a^H) / 2` (True) or the lower triangle of `a`.

    Returns:
        The triangular factor, of `a`'s shape.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.cholesky(fnp.array([[4.0, 2.0], [2.0, 2.0]]))
        Array([[2., 0.],
               [1., 1.]], dtype=float32)
    """
    a = _as_float_matrix(a, "cholesky", complex_ok=True)
    _check_square("cholesky", ShapedArray(_shape_of(a), dtype_of(a)), complex_ok=True)
    if symmetrize_input:
        a = _sym(a)
    factor = cholesky_p.bind(a)
    return _H(factor) if upper else factor


# ======================================================================== svd

svd_p = Primitive("svd", multiple_results=True)


@svd_p.def_impl
def _svd_impl(a, *, full_matrices=False):
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return [u, s.astype(C.real_dtype(a.dtype), copy=False), vh]


def _svd_abstract_eval(a, *, full_matrices=False):
    if a.ndim < 2:
        raise ValueError(f"svd: needs at least 2 dimensions, got {a.str_short()}")
    if a.dtype.kind not in "fc":
        raise TypeError(f"svd: needs a float or complex dtype, got {a.str_short()}")
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    mu, nv = (m, n) if full_matrices else (k, k)
    return [ShapedArray(batch + (m, mu), a.dtype),
            ShapedArray(batch + (k,), C.real_dtype(a.dtype)),
            ShapedArray(batch + (nv, n), a.dtype)]


def _svd_check_full(a, full_matrices):
    m, n = _aval_shape(a)[-2:]
    if full_matrices and m != n:
        # as in JAX: the extra columns of a full U (or rows of a full V^T) are not unique
        raise NotImplementedError(
            "svd: derivatives of the full SVD (full_matrices=True) of a non-square matrix "
            "are not defined; use full_matrices=False")


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


def _svd_gaps(s, like):
    """F_ij = 1 / (s_j^2 - s_i^2) (0 where equal) and 1 / s_j (0 where s_j = 0), as rows
    of `like`'s dtype."""
    s_j, s_i = _row(s), _col(s)
    f = _safe_reciprocal(lax._mul(lax._add(s_j, s_i), lax._sub(s_j, s_i)))
    return _like(f, like), _like(_safe_reciprocal(s_j), like)


def _svd_jvp(primals, tangents, *, full_matrices=False):
    # The reduced SVD's tangents (Townsend, "Differentiating the singular value
    # decomposition", 2016; the complex case as in JAX), for distinct singular values.
    # With dP = U^H dA V:
    #   ds = Re diag(dP)
    #   dU = U (F o (dP S + S dP^H) + D) + (I - U U^H) dA V S^-1
    #   dV = V (F o (S dP + dP^H S)) + (I - V V^H) dA^H U S^-1,  F_ij = 1 / (s_j^2 - s_i^2)
    # where D = I o (dP - dP^H) / (2S) fixes the phase of U's columns (zero for real A).
    (a,), (t,) = primals, tangents
    _svd_check_full(a, full_matrices)
    u, s, vh = svd_p.bind(a)
    v = _H(vh)
    dp = _mm(_mm(_H(u), t), v)
    ds = _real(_diag_part(dp))
    f, inv_s = _svd_gaps(s, a)
    s_j, s_i = _like(_row(s), a), _like(_col(s), a)
    dp_s, s_dp = lax._mul(dp, s_j), lax._mul(s_i, dp)
    inner_u = lax._mul(f, lax._add(dp_s, _H(dp_s)))
    if _is_complex(a):
        skew = lax._sub(dp, _H(dp))
        inner_u = lax._add(inner_u, lax._mul(lax._mul(skew, 0.5 * _eye_like(skew)),
                                             inv_s))
    du = _mm(u, inner_u)
    dv = _mm(v, lax._mul(f, lax._add(s_dp, _H(s_dp))))
    m, n = _aval_shape(a)[-2:]
    if m > n:  # the part of dA V outside the span of U
        dav = _mm(t, v)
        du = lax._add(du, lax._mul(lax._sub(dav, _mm(u, _mm(_H(u), dav))), inv_s))
    if n > m:  # the part of dA^H U outside the span of V
        dau = _mm(_H(t), u)
        dv = lax._add(dv, lax._mul(lax._sub(dau, _mm(v, _mm(vh, dau))), inv_s))
    return [u, s, vh], [du, ds, _H(dv)]


def _svd_vjp(cts, primals, outs, needs, *, full_matrices=False):
    # The adjoint of `_svd_jvp` (distinct, non-zero singular values where u or vh get a
    # cotangent). In the Hermitian inner product, with gX = conj(ct_X) (JAX's cotangents
    # pair without conjugation), J = U^H gU, K = V^H gV and F as in `_svd_jvp`:
    #   gA = U [diag(gs) + (F o (J - J^H)) S + I o (J - J^H) / (2S) + S (F o (K - K^H))] V^H
    #        + (I - U U^H) gU S^-1 V^H + U S^-1 gV^H (I - V V^H)
    # and ct_A = conj(gA). For real A every conj is the identity and the I o term is zero.
    del needs  # unused
    ct_u, ct_s, ct_vh = (None if c is None else _conj(c) for c in cts)
    (a,) = primals
    _svd_check_full(a, full_matrices)
    u, s, vh = outs
    m, n = _aval_shape(a)[-2:]
    inner = None if ct_s is None else lax._mul(_eye_like(u), _like(_col(ct_s), u))
    if ct_u is None and ct_vh is None:
        return [None if inner is None else _conj(_mm(lax._mul(u, _like(_row(ct_s), u)), vh))]
    f, inv_s = _svd_gaps(s, u)
    s_j, s_i = _like(_row(s), u), _like(_col(s), u)

    def _acc(acc, term):
        return term if acc is None else lax._add(acc, term)

    extra = None
    if ct_u is not None:
        j = _mm(_H(u), ct_u)
        skew = lax._sub(j, _H(j))
        inner = _acc(inner, lax._mul(lax._mul(f, skew), s_j))
        if _is_complex(u):
            inner = lax._add(inner, lax._mul(lax._mul(skew, 0.5 * _eye_like(skew)),
                                             inv_s))
        if m > n:
            extra = _mm(lax._mul(lax._sub(ct_u, _mm(u, j)), inv_s), vh)
    if ct_vh is not None:
        k = _mm(ct_vh, _H(vh))  # = (V^H gV)^H
        inner = _acc(inner, lax._mul(s_i, lax._mul(f, lax._sub(_H(k), k))))
        if n > m:
            extra = _acc(extra, _mm(lax._mul(u, inv_s), lax._sub(ct_vh, _mm(k, vh))))
    out = _mm(_mm(u, inner), vh)
    return [_conj(out if extra is None else lax._add(out, extra))]


def _eye_like(s):
    """The k x k identity, in the dtype of a stack of k-vectors (or of k x k matrices)."""
    k = _aval_shape(s)[-1]
    return np.eye(k, dtype=_dtype(s))


svd_p.abstract_eval = _svd_abstract_eval
svd_p.jvp = _svd_jvp
svd_p.vjp_joint = _svd_vjp
svd_p.batch = _unary_batch(svd_p)


def svd(a, full_matrices=True, compute_uv=True, hermitian=False, subset_by_index=None):
    """Singular value decomposition `a = u @ diag(s) @ vh`.

    Both modes differentiate all three outputs (for distinct, non-zero singular values
    where `u` or `vh` is used; the singular values alone are differentiable everywhere).
    As in JAX, the full SVD of a non-square matrix is not differentiable.

    Args:
        a: array of shape `(..., m, n)`.
        full_matrices: `u` of shape `(..., m, m)` and `vh` of shape `(..., n, n)` (True) or
            the reduced `(..., m, k)` and `(..., k, n)`, `k = min(m, n)` (False).
        compute_uv: return `(u, s, vh)` (True) or only `s`.
        hermitian: `a` is symmetric: computed from `eigh` (as JAX does).

    Returns:
        `(u, s, vh)`, singular values in descending order; or `s` alone.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.svd(fnp.array([[3.0, 0.0], [0.0, -4.0]]), compute_uv=False)
        Array([4., 3.], dtype=float32)
    """
    a = _as_float_matrix(a, "svd", complex_ok=True)
    if subset_by_index is not None:
        raise NotImplementedError("svd: subset_by_index is not supported (nor is it by JAX "
                                  "on CPU)")
    if hermitian:
        return _svd_hermitian(a, compute_uv)
    m, n = _shape_of(a)[-2:]
    full = bool(full_matrices) and compute_uv and m != n
    u, s, vh = svd_p.bind(a, full_matrices=full)
    if not compute_uv:
        return s
    return SVDResult(u, s, vh)


def _svd_hermitian(a, compute_uv):
    import nanofn.numpy as fnp
    w, v = eigh(a)
    order = fnp.argsort(-fnp.abs(w), axis=-1)  # by |w|, descending
    s = fnp.take_along_axis(fnp.abs(w), order, axis=-1)
    if not compute_uv:
        return s
    u = fnp.take_along_axis(v, fnp.expand_dims(order, -2), axis=-1)
    sign = fnp.take_along_axis(fnp.sign(w), order, axis=-1)
    return SVDResult(u, s, _H(u * fnp.expand_dims(sign, -2).astype(u.dtype)))


def svdvals(x, /):
    """Singular values of `x` (descending), differentiable.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.svdvals(fnp.array([[0.0, 2.0], [1.0, 0.0]]))
        Array([2., 1.], dtype=float32)
    """
    return svd(x, compute_uv=False)


# ======================================================================== eigh

eigh_p = Primitive("eigh", multiple_results=True)


@eigh_p.def_impl
def _eigh_impl(a, *, lower=True):
    w, v = np.linalg.eigh(a, UPLO="L" if lower else "U")
    return [v, w.astype(C.real_dtype(a.dtype), copy=False)]


@eigh_p.def_abstract_eval
def _eigh_abstract_eval(a, *, lower=True):
    _check_square("eigh", a, complex_ok=True)
    return [a, ShapedArray(a.shape[:-1], C.real_dtype(a.dtype))]


def _eig_gaps(w):
    """F_ij = 1 / (w_j - w_i) off the diagonal, 0 where w_i == w_j."""
    return _safe_reciprocal(lax._sub(_row(w), _col(w)))


def _eigh_jvp(primals, tangents, *, lower=True):
    # For a symmetric (Hermitian) A = V diag(w) V^H and dP = V^H dA V:
    #   dw = Re diag(dP),  dV = V (F o dP),  F_ij = 1 / (w_j - w_i)
    (a,), (t,) = primals, tangents
    v, w = eigh_p.bind(a, lower=lower)
    dp = _mm(_mm(_H(v), t), v)
    return [v, w], [_mm(v, lax._mul(_like(_eig_gaps(w), v), dp)), _real(_diag_part(dp))]


def _eigh_vjp(cts, primals, outs, needs, *, lower=True):
    # the adjoint of the rule above: gA = V (diag(gw) + F o (V^H gV)) V^H in the Hermitian
    # inner product, with gV = conj(ct_V); JAX's cotangent is its conjugate:
    #   ct_A = conj(V) (diag(ct_w) + F o (V^T ct_V)) V^T
    del primals, needs, lower  # unused
    ct_v, ct_w = cts
    v, w = outs
    inner = None if ct_w is None else lax._mul(_eye_like(v), _like(_col(ct_w), v))
    if ct_v is not None:
        term = lax._mul(_like(_eig_gaps(w), v), _mm(_mT(v), ct_v))
        inner = term if inner is None else lax._add(inner, term)
    if inner is None:
        return [None]
    return [_mm(_mm(_conj(v), inner), _mT(v))]


eigh_p.jvp = _eigh_jvp
eigh_p.vjp_joint = _eigh_vjp
eigh_p.batch = _unary_batch(eigh_p)


def eigh(a, UPLO=None, symmetrize_input=True):
    """Eigenvalues and eigenvectors of a symmetric (or Hermitian) matrix, or of each in a
    stack.

    Differentiable in both modes; the eigenvectors' derivatives need distinct eigenvalues
    (functions of them that do not depend on their signs are the meaningful ones).

    Args:
        a: array of shape `(..., n, n)`.
        UPLO: 'L' (default) or 'U': the triangle read when `symmetrize_input` is False.
        symmetrize_input: decompose `(a + a^H) / 2` (JAX's default), so the gradient is
            that of a symmetric function of `a`.

    Returns:
        `EighResult(eigenvalues, eigenvectors)`: eigenvalues ascending, of shape
        `(..., n)`, and orthonormal eigenvectors as the columns of `(..., n, n)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> w, v = fnp.linalg.eigh(fnp.array([[2.0, 1.0], [1.0, 2.0]]))
        >>> w
        Array([1., 3.], dtype=float32)
    """
    if UPLO not in (None, "L", "U"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    a = _as_float_matrix(a, "eigh", complex_ok=True)
    _check_square("eigh", ShapedArray(_shape_of(a), dtype_of(a)), complex_ok=True)
    if symmetrize_input:
        a = _sym(a)
    v, w = eigh_p.bind(a, lower=UPLO != "U")
    return EighResult(w, v)


def eigvalsh(a, UPLO="L", *, symmetrize_input=True):
    """Eigenvalues of a symmetric matrix, ascending (see `eigh`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.eigvalsh(fnp.array([[2.0, 1.0], [1.0, 2.0]]))
        Array([1., 3.], dtype=float32)
    """
    return eigh(a, UPLO, symmetrize_input=symmetrize_input)[0]


# ======================================================================== eig (values only)

eig_p = Primitive("eig", multiple_results=True)


@eig_p.def_impl
def _eig_impl(a, *, compute_eigenvectors=True):
    w, v = np.linalg.eig(a)
    ctype = np.result_type(a.dtype, np.complex64)
    w, v = w.astype(ctype, copy=False), v.astype(ctype, copy=False)
    return [w, v] if compute_eigenvectors else [w]


@eig_p.def_abstract_eval
def _eig_abstract_eval(a, *, compute_eigenvectors=True):
    _check_square("eig", a, complex_ok=True)
    ctype = np.result_type(a.dtype, np.complex64)
    w = ShapedArray(a.shape[:-1], ctype)
    return [w, ShapedArray(a.shape, ctype)] if compute_eigenvectors else [w]


def _eig_check(compute_eigenvectors):
    if compute_eigenvectors:
        raise NotImplementedError(  # as in JAX (jax-ml/jax#2748)
            "eig: derivatives of the eigenvectors of a non-symmetric matrix are not "
            "implemented (as in JAX); differentiate eigvals, or use eigh for a symmetric "
            "(Hermitian) matrix")


def _eigvals_jvp(primals, tangents, *, compute_eigenvectors=True):
    # A = V diag(w) V^-1 with distinct eigenvalues: dw = diag(V^-1 dA V)
    (a,), (t,) = primals, tangents
    _eig_check(compute_eigenvectors)
    w, v = eig_p.bind(a, compute_eigenvectors=True)
    dw = _diag_part(solve_p.bind(v, _mm(_like(t, v), v)))
    return [w], [dw]


def _eigvals_vjp(cts, primals, outs, needs, *, compute_eigenvectors=True):
    # the transpose of the rule above: ct_A = V^-T diag(ct_w) V^T (its real part for a
    # real A, whose tangents are real)
    del outs, needs  # unused
    _eig_check(compute_eigenvectors)
    (a,), (ct_w,) = primals, cts
    if ct_w is None:
        return [None]
    _, v = eig_p.bind(a, compute_eigenvectors=True)
    ct_a = solve_p.bind(_mT(v), lax._mul(_col(ct_w), _mT(v)))
    return [ct_a if _is_complex(a) else _real(ct_a)]


eig_p.jvp = _eigvals_jvp
eig_p.vjp_joint = _eigvals_vjp
eig_p.batch = _unary_batch(eig_p)


def eig(a):
    """Eigenvalues and right eigenvectors of a general square matrix (complex results).

    Values only: as in JAX, the eigenvectors are not differentiable (`eigvals` is; use
    `eigh` for symmetric matrices).

    Returns:
        `EigResult(eigenvalues, eigenvectors)`, complex, eigenvectors as columns.

    Example:
        >>> import nanofn.numpy as fnp
        >>> w, v = fnp.linalg.eig(fnp.array([[0.0, 1.0], [-1.0, 0.0]]))
        >>> sorted(w.tolist(), key=lambda z: z.imag)
        [-1j, 1j]
    """
    a = _as_float_matrix(a, "eig", complex_ok=True)
    w, v = eig_p.bind(a, compute_eigenvectors=True)
    return EigResult(w, v)


def eigvals(a):
    """Eigenvalues of a general square matrix (complex), differentiable where they are
    distinct: `dw = diag(V^-1 dA V)`, as in JAX.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.eigvals(fnp.array([[2.0, 0.0], [0.0, 3.0]])).tolist()
        [(2+0j), (3+0j)]
    """
    (w,) = eig_p.bind(_as_float_matrix(a, "eigvals", complex_ok=True), compute_eigenvectors=False)
    return w


# ======================================================================== qr

qr_p = Primitive("qr", multiple_results=True)


@qr_p.def_impl
def _qr_impl(a, *, full_matrices=False):
    q, r = np.linalg.qr(a, mode="complete" if full_matrices else "reduced")
    return [q, r]


@qr_p.def_abstract_eval
def _qr_abstract_eval(a, *, full_matrices=False):
    if a.ndim < 2 or a.dtype.kind not in "fc":
        raise TypeError(f"qr: needs a float or complex array of at least 2 dimensions, got "
                        f"{a.str_short()}")
    m, n = a.shape[-2:]
    k = m if full_matrices else min(m, n)
    batch = a.shape[:-2]
    return [ShapedArray(batch + (m, k), a.dtype), ShapedArray(batch + (k, n), a.dtype)]


def _tri_mask(n, k, dtype):
    """The lower-triangle mask (k = 0 with the diagonal, -1 without), as a constant."""
    return np.tri(n, n, k, dtype=dtype)


def _qr_check(a, full_matrices):
    m, n = _aval_shape(a)[-2:]
    if m < n or (full_matrices and m != n):
        raise NotImplementedError(  # as in JAX
            f"qr: derivatives need a matrix with at least as many rows as columns (and the "
            f"reduced mode), got {m} x {n}{' with full_matrices' if full_matrices else ''}")


def _imag_diag(y):
    """I o (i Im y): the imaginary part of each matrix's diagonal (zero for real y)."""
    return lax._mul(lax._sub(y, _H(y)), 0.5 * _eye_like(y))


def _qr_jvp(primals, tangents, *, full_matrices=False):
    # A = QR, m >= n. With X = dA R^-1, Y = Q^H X and
    # Omega = tril(Y, -1) - tril(Y, -1)^H + I o (i Im Y) (the last term for complex A):
    #   dQ = Q (Omega - Y) + X,  dR = (Y - Omega) R
    (a,), (t,) = primals, tangents
    _qr_check(a, full_matrices)
    q, r = qr_p.bind(a, full_matrices=full_matrices)
    x = _H(solve_p.bind(_H(r), _H(t)))  # dA R^-1
    y = _mm(_H(q), x)
    low = lax._mul(y, _tri_mask(_aval_shape(y)[-1], -1, _dtype(y)))
    omega = lax._sub(low, _H(low))
    if _is_complex(a):
        omega = lax._add(omega, _imag_diag(y))
    dq = lax._add(_mm(q, lax._sub(omega, y)), x)
    dr = _mm(lax._sub(y, omega), r)
    return [q, r], [dq, dr]


def _qr_vjp(cts, primals, outs, needs, *, full_matrices=False):
    # The adjoint of the rule above (Hermitian inner product, gX = conj(ct_X)): with
    # B = Q^H gQ - gR R^H,
    #   gY = tril(B - B^H, -1) + I o (i Im B) - B,  gA = (gQ + Q gY) R^-H
    # and JAX's cotangent ct_A = conj(gA). For real A the conjugations are identities.
    del needs  # unused
    (a,) = primals
    _qr_check(a, full_matrices)
    ct_q, ct_r = (None if c is None else _conj(c) for c in cts)
    q, r = outs
    b = None
    if ct_q is not None:
        b = _mm(_H(q), ct_q)
    if ct_r is not None:
        rr = _mm(ct_r, _H(r))
        b = lax._neg(rr) if b is None else lax._sub(b, rr)
    if b is None:
        return [None]
    n = _aval_shape(b)[-1]
    gy = lax._sub(lax._mul(lax._sub(b, _H(b)), _tri_mask(n, -1, _dtype(b))), b)
    if _is_complex(b):
        gy = lax._add(gy, _imag_diag(b))
    gx = _mm(q, gy)
    if ct_q is not None:
        gx = lax._add(gx, ct_q)
    return [_conj(_H(solve_p.bind(r, _H(gx))))]  # conj(gX R^-H)


qr_p.jvp = _qr_jvp
qr_p.vjp_joint = _qr_vjp
qr_p.batch = _unary_batch(qr_p)


geqrf_p = Primitive("geqrf", multiple_results=True)


@geqrf_p.def_impl
def _geqrf_impl(a):
    h, tau = np.linalg.qr(a, mode="raw")  # Householder vectors below R, transposed
    return [np.ascontiguousarray(h), tau]


@geqrf_p.def_abstract_eval
def _geqrf_abstract_eval(a):
    if a.ndim < 2 or a.dtype.kind not in "fc":
        raise TypeError(f"qr: needs a float or complex array of at least 2 dimensions, got "
                        f"{a.str_short()}")
    m, n = a.shape[-2:]
    return [ShapedArray(a.shape[:-2] + (n, m), a.dtype),
            ShapedArray(a.shape[:-2] + (min(m, n),), a.dtype)]


def _geqrf_no_derivatives(*args, **params):
    raise NotImplementedError("qr: mode='raw' is not differentiable (as in JAX); use "
                              "mode='reduced'")


geqrf_p.jvp = _geqrf_no_derivatives
geqrf_p.vjp_joint = _geqrf_no_derivatives
geqrf_p.batch = _unary_batch(geqrf_p)


def qr(a, mode="reduced"):
    """QR decomposition `a = q @ r`, `q` with orthonormal columns, `r` upper triangular.

    Differentiable (both outputs) for `m >= n` in the reduced mode (and for square
    matrices in every mode), as in JAX.

    Args:
        a: array of shape `(..., m, n)`.
        mode: 'reduced' (`q` of shape `(..., m, k)`, `r` of `(..., k, n)`, `k = min(m, n)`),
            'complete' (`q` of `(..., m, m)`, `r` of `(..., m, n)`), 'r' (`r` only) or
            'raw' (LAPACK's Householder form `(h, tau)`, `h` transposed as numpy gives it;
            not differentiable).

    Returns:
        `QRResult(Q, R)`, `r` for mode 'r', or `(h, tau)` for mode 'raw'.

    Example:
        >>> import nanofn.numpy as fnp
        >>> q, r = fnp.linalg.qr(fnp.array([[3.0, 1.0], [4.0, 2.0]]))
        >>> abs(r).round(3)
        Array([[5. , 2.2],
               [0. , 0.4]], dtype=float32)
    """
    if mode not in ("reduced", "complete", "r", "raw"):
        raise ValueError(f"qr: mode must be 'reduced', 'complete', 'r' or 'raw', got {mode!r}")
    a = _as_float_matrix(a, "qr", complex_ok=True)
    if mode == "raw":
        h, tau = geqrf_p.bind(a)
        return QRResult(h, tau)
    q, r = qr_p.bind(a, full_matrices=mode == "complete")
    return r if mode == "r" else QRResult(q, r)


# ======================================================================== adjugate (det's gradient)

adjugate_p = Primitive("adjugate")


@adjugate_p.def_impl
def _adjugate_impl(a):
    # adj(A) = det(U) det(V) V diag(prod_{j != i} s_j) U^T for A = U S V^T: exact at
    # singular matrices too (rank n - 1 gives a rank-one adjugate, lower rank gives 0).
    n = a.shape[-1]
    if n == 0:
        return np.zeros_like(a)
    u, s, vh = np.linalg.svd(a)
    ones = np.ones(s.shape[:-1] + (1,), s.dtype)
    before = np.cumprod(np.concatenate([ones, s[..., :-1]], -1), -1)
    after = np.cumprod(np.concatenate([ones, s[..., :0:-1]], -1), -1)[..., ::-1]
    # for a complex A = U S V^H: adj(A) = det(U) det(V^H) V adj(S) U^H
    phase = np.linalg.det(u) * np.linalg.det(vh)
    phase = phase / np.where(np.abs(phase) == 0, 1, np.abs(phase))  # exactly unimodular
    adj = np.conj(np.swapaxes(vh, -1, -2)) * (before * after)[..., None, :] \
        @ np.conj(np.swapaxes(u, -1, -2))
    return (adj * phase[..., None, None]).astype(a.dtype, copy=False)


@adjugate_p.def_abstract_eval
def _adjugate_abstract_eval(a):
    _check_square("adjugate", a, complex_ok=True)
    return a


def _adjugate_jvp(t, a, *, out):
    # adj(A) = det(A) A^-1, so d adj = (tr(adj dA) adj - adj dA adj) / det(A); defined
    # where A is invertible (the second derivative of det at a singular matrix is not).
    d = _expand_last2(det_p.bind(a))
    tr = _expand_last2(_sum_last2(lax._mul(_mT(out), t)))
    return lax._div(lax._sub(lax._mul(tr, out), _mm(_mm(out, t), out)), d)


def _adjugate_vjp(ct, a, *, out):
    d = _expand_last2(det_p.bind(a))
    tr = _expand_last2(_sum_last2(lax._mul(out, ct)))  # <adj, ct>
    return lax._div(lax._sub(lax._mul(tr, _mT(out)), _mm(_mm(_mT(out), ct), _mT(out))), d)


adjugate_p.jvp_terms = [_adjugate_jvp]
adjugate_p.vjp = [_adjugate_vjp]
adjugate_p.batch = _unary_batch(adjugate_p)


# ======================================================================== composites


def _fnp():
    import nanofn.numpy as fnp
    return fnp


def _eps(dtype):
    return float(np.finfo(dtype).eps)


def _pinv_impl(a, rtol, hermitian):
    fnp = _fnp()
    u, s, vh = svd(a, full_matrices=False, hermitian=hermitian)
    cutoff = fnp.expand_dims(rtol * fnp.max(s, axis=-1, initial=0.0), -1)
    s_inv = fnp.where(s > cutoff, 1.0 / fnp.where(s > cutoff, s, 1.0), 0.0)
    return _mm(_H(vh), _H(u) * fnp.expand_dims(s_inv, -1))


def _pinv_fn(rtol, hermitian, a):
    return _pinv_impl(a, rtol, hermitian)


def _pinv_jvp(rtol, hermitian, primals, tangents):
    # Golub & Pereyra: dP = -P dA P + P P^H dA^H (I - A P) + (I - P A) dA^H P^H P
    (a,), (t,) = primals, tangents
    p = _pinv_fn(rtol, hermitian, a)
    ap, pa = _mm(a, p), _mm(p, a)
    eye_m, eye_n = np.eye(ap.shape[-1], dtype=_dtype(a)), np.eye(pa.shape[-1], dtype=_dtype(a))
    tt = _H(t)
    dp = (-_mm(_mm(p, t), p) + _mm(_mm(_mm(p, _H(p)), tt), eye_m - ap)
          + _mm(_mm(eye_n - pa, tt), _mm(_H(p), p)))
    return p, dp


_pinv_custom = None


def pinv(a, rtol=None, hermitian=False, *, rcond=None):
    """Moore-Penrose pseudo-inverse, from the SVD, with JAX's derivative rule.

    Singular values at or below `rtol * max(s)` count as zero. The derivative (Golub and
    Pereyra's formula) is that of the pseudo-inverse at a fixed rank.

    Args:
        a: array of shape `(..., m, n)`.
        rtol: relative cutoff; default `10 * max(m, n) * eps`.
        hermitian: `a` is symmetric (use `eigh`).
        rcond: numpy's older name for `rtol`.

    Returns:
        The pseudo-inverse, of shape `(..., n, m)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.pinv(fnp.array([[1.0, 0.0], [0.0, 0.0]]))
        Array([[1., 0.],
               [0., 0.]], dtype=float32)
    """
    global _pinv_custom
    if _pinv_custom is None:
        from nanofn._custom import custom_jvp
        _pinv_custom = custom_jvp(_pinv_fn, nondiff_argnums=(0, 1))
        _pinv_custom.defjvp(_pinv_jvp)
    a = _as_float_matrix(a, "pinv", complex_ok=True)
    if rcond is not None:
        if rtol is not None:
            raise ValueError("pinv: give rtol or rcond, not both")
        rtol = rcond
    if rtol is None:
        rtol = 10.0 * max(_shape_of(a)[-2:]) * _eps(dtype_of(a))
    if isinstance(rtol, Tracer) or np.ndim(rtol) != 0:
        got = ("a traced value (pass a Python float)" if isinstance(rtol, Tracer) else
               f"an array of shape {tuple(np.shape(rtol))}")
        raise TypeError(f"pinv: rtol must be a concrete scalar (one cutoff for every "
                        f"matrix), got {got}")
    return _pinv_custom(float(rtol), bool(hermitian), a)


def lstsq(a, b, rcond=None, *, numpy_resid=False):
    """Least-squares solution of `a @ x = b` (minimum norm where `a` is rank deficient).

    Args:
        a: array of shape `(m, n)`.
        b: array of shape `(m,)` or `(m, k)`.
        rcond: singular values below `rcond * s[0]` count as zero; default
            `eps * max(m, n)`.
        numpy_resid: return numpy's residuals (empty when `rank < n` or `m <= n`) instead
            of always the squared residual norms.

    Returns:
        `(x, residuals, rank, s)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> x, resid, rank, s = fnp.linalg.lstsq(fnp.array([[1.0, 0.0], [0.0, 1.0],
        ...                                                 [1.0, 1.0]]),
        ...                                      fnp.array([1.0, 1.0, 2.0]))
        >>> x.round(4), int(rank)
        (Array([1., 1.], dtype=float32), 2)
    """
    fnp = _fnp()
    a, b = promote_float(a, b)
    if len(_shape_of(a)) != 2 or len(_shape_of(b)) not in (1, 2) \
            or _shape_of(b)[0] != _shape_of(a)[0]:
        raise ValueError(f"lstsq: a must be (m, n) and b (m,) or (m, k); got shapes "
                         f"{tuple(_shape_of(a))} and {tuple(_shape_of(b))}")
    vector = len(_shape_of(b)) == 1
    if vector:
        b = fnp.expand_dims(b, -1)
    m, n = _shape_of(a)
    eps = _eps(dtype_of(a))
    rcond = eps * max(m, n) if rcond is None or rcond < 0 else rcond
    u, s, vt = svd(a, full_matrices=False)
    if min(m, n) == 0:
        mask = s > 0
    else:
        mask = s >= rcond * s[0]
    rank = fnp.sum(mask).astype(default_int())
    s_inv = fnp.where(mask, 1.0 / fnp.where(mask, s, 1.0), 0.0)
    x = _mm(_H(vt), fnp.expand_dims(s_inv, -1) * _mm(_H(u), b))
    if numpy_resid and (int(rank) < n or m <= n):
        resid = fnp.zeros((0,), dtype_of(s))
    else:
        resid = fnp.sum(_abs2(b - _mm(a, x)), axis=0)
    if vector:
        x = fnp.reshape(x, (n,))
    return x, resid, rank, s


def matrix_power(a, n):
    """`a` raised to the integer power `n` (by repeated squaring; `inv` for `n < 0`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.matrix_power(fnp.array([[1.0, 1.0], [0.0, 1.0]]), 3)
        Array([[1., 3.],
               [0., 1.]], dtype=float32)
    """
    fnp = _fnp()
    a = asarray_value(a)
    shape = tuple(_shape_of(a))
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"matrix_power: needs square matrices in the last two axes, got "
                         f"shape {shape}")
    try:
        n = operator_index(n)
    except TypeError:
        raise TypeError(f"matrix_power: the exponent must be an integer, got {n!r}") from None
    if n == 0:
        return fnp.broadcast_to(fnp.eye(shape[-1], dtype=dtype_of(a)), shape)
    if n < 0:
        a, n = inv(a), -n
    result = None
    while n:  # binary exponentiation
        if n & 1:
            result = a if result is None else fnp.matmul(result, a)
        n >>= 1
        if n:
            a = fnp.matmul(a, a)
    return result


def matrix_rank(M, rtol=None, *, hermitian=False, tol=None):
    """Number of singular values above `rtol * max(s)` (default `max(m, n) * eps`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> int(fnp.linalg.matrix_rank(fnp.array([[1.0, 2.0], [2.0, 4.0]])))
        1
    """
    fnp = _fnp()
    (M,) = promote_float(M)
    if len(_shape_of(M)) < 2:
        return fnp.any(M != 0).astype(default_int())
    s = svd(M, compute_uv=False, hermitian=hermitian)
    smax = fnp.max(s, axis=-1, keepdims=True, initial=0.0)
    if tol is not None:
        cutoff = fnp.asarray(tol, dtype_of(s))
        cutoff = cutoff if len(_shape_of(cutoff)) == 0 else fnp.expand_dims(cutoff, -1)
    else:
        if rtol is None:
            rtol = max(_shape_of(M)[-2:]) * _eps(dtype_of(M))
        rtol = fnp.asarray(rtol, dtype_of(s))
        cutoff = smax * (rtol if len(_shape_of(rtol)) == 0 else fnp.expand_dims(rtol, -1))
    return fnp.sum(s > cutoff, axis=-1).astype(default_int())


def cond(x, p=None):
    """Condition number of a matrix in the norm `p` (None / 2: ratio of the extreme
    singular values; -2: its inverse; otherwise `norm(x, p) * norm(inv(x), p)`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.linalg.cond(fnp.array([[2.0, 0.0], [0.0, 0.5]])))
        4.0
    """
    fnp = _fnp()
    (x,) = promote_float(x)
    if len(_shape_of(x)) < 2 or 0 in tuple(_shape_of(x))[-2:]:
        raise ValueError(f"cond: needs non-empty matrices of at least 2 dimensions, got shape "
                         f"{tuple(_shape_of(x))}")
    if p in (None, 2, -2):
        s = svd(x, compute_uv=False)
        r = s[..., 0] / s[..., -1] if p != -2 else s[..., -1] / s[..., 0]
    else:
        # a (numerically) singular matrix has an infinite condition number, as in numpy
        # and JAX; nanofn's inv raises on a singular matrix, so invert a stand-in there
        s = lax.stop_gradient_p.bind(svd(x, compute_uv=False))
        singular = s[..., -1] <= s[..., 0] * _eps(dtype_of(x))
        n = _shape_of(x)[-1]
        safe = fnp.where(singular[..., None, None], np.eye(n, dtype=dtype_of(x)), x)
        r = norm(x, ord=p, axis=(-2, -1)) * norm(inv(safe), ord=p, axis=(-2, -1))
        r = fnp.where(singular, np.inf, r)
    return fnp.where(fnp.isnan(r) & ~fnp.any(fnp.isnan(x), axis=(-2, -1)), np.inf, r)


def tensorinv(a, ind=2):
    """Inverse of a tensor for `tensordot` with `ind` leading axes.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.tensorinv(fnp.eye(4).reshape(4, 2, 2), ind=1).shape
        (2, 2, 4)
    """
    fnp = _fnp()
    (a,) = promote_float(a)
    shape = tuple(_shape_of(a))
    if ind <= 0:
        raise ValueError(f"tensorinv: ind must be a positive integer, got {ind}")
    rows, cols = int(np.prod(shape[:ind])), int(np.prod(shape[ind:]))
    if rows != cols:
        raise ValueError(f"tensorinv: prod(a.shape[:ind]) = {rows} must equal "
                         f"prod(a.shape[ind:]) = {cols} (a of shape {shape})")
    return fnp.reshape(inv(fnp.reshape(a, (rows, cols))), shape[ind:] + shape[:ind])


def tensorsolve(a, b, axes=None):
    """Solve `tensordot(a, x, axes=x.ndim) = b` for `x`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.tensorsolve(fnp.eye(6).reshape(6, 2, 3), fnp.ones(6)).shape
        (2, 3)
    """
    fnp = _fnp()
    a, b = promote_float(a, b)
    if axes is not None:
        nd = len(_shape_of(a))
        axes = [ax % nd for ax in axes]
        rest = [d for d in range(nd) if d not in axes]
        a = lax.transpose(a, tuple(rest) + tuple(axes))
    bshape = tuple(_shape_of(b))
    out_shape = tuple(_shape_of(a))[len(bshape):]
    size = int(np.prod(bshape))
    if int(np.prod(out_shape)) != size:
        raise ValueError(f"tensorsolve: a of shape {tuple(_shape_of(a))} and b of shape "
                         f"{bshape} do not make a square system")
    x = solve(fnp.reshape(a, (size, size)), fnp.reshape(b, (size,)))
    return fnp.reshape(x, out_shape)


def multi_dot(arrays, *, precision=None):
    """Product of a chain of matrices, multiplied in the cheapest order (the first may be
    a row vector and the last a column vector, 1-d).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.multi_dot([fnp.ones(3), fnp.ones((3, 4)), fnp.ones(4)])
        Array(12., dtype=float32)
    """
    del precision  # unused
    fnp = _fnp()
    arrays = [asarray_value(x) for x in arrays]
    if len(arrays) < 2:
        raise ValueError("multi_dot: needs at least two arrays")
    if len(arrays) == 2:
        return fnp.dot(arrays[0], arrays[1])
    first_1d, last_1d = len(_shape_of(arrays[0])) == 1, len(_shape_of(arrays[-1])) == 1
    if first_1d:
        arrays[0] = fnp.reshape(arrays[0], (1, -1))
    if last_1d:
        arrays[-1] = fnp.reshape(arrays[-1], (-1, 1))
    for i, x in enumerate(arrays):
        if len(_shape_of(x)) != 2:
            raise ValueError(f"multi_dot: array {i} must be 2-d (only the first and last may "
                             f"be 1-d), got shape {tuple(_shape_of(x))}")
    dims = [_shape_of(arrays[0])[0]] + [_shape_of(x)[1] for x in arrays]
    n = len(arrays)
    cost = [[0] * n for _ in range(n)]  # the classic matrix-chain dynamic program
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = float("inf")
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k

    def product(i, j):
        if i == j:
            return arrays[i]
        k = split[i][j]
        return fnp.matmul(product(i, k), product(k + 1, j))

    out = product(0, n - 1)
    if first_1d and last_1d:
        return fnp.reshape(out, ())
    if first_1d:
        return fnp.reshape(out, (-1,))
    if last_1d:
        return fnp.reshape(out, (-1,))
    return out


def cross(x1, x2, /, *, axis=-1):
    """Cross product of 3-vectors along `axis` (other axes broadcast).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.cross(fnp.array([1.0, 0.0, 0.0]), fnp.array([0.0, 1.0, 0.0]))
        Array([0., 0., 1.], dtype=float32)
    """
    fnp = _fnp()
    x1, x2 = asarray_value(x1), asarray_value(x2)
    for name, x in (("x1", x1), ("x2", x2)):
        shape = tuple(_shape_of(x))
        if not shape or not -len(shape) <= axis < len(shape) or shape[axis] != 3:
            raise ValueError(f"linalg.cross: {name} must have size 3 along axis {axis}, got "
                             f"shape {shape}")
    a = [fnp.take(x1, i, axis=axis) for i in range(3)]
    b = [fnp.take(x2, i, axis=axis) for i in range(3)]
    out = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    return fnp.stack(out, axis=axis if axis < 0 else axis)


def matmul(x1, x2, /, *, precision=None, preferred_element_type=None):
    """Matrix product (array API name for `nanofn.numpy.matmul`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.matmul(fnp.eye(2), fnp.ones((2, 3))).shape
        (2, 3)
    """
    del precision, preferred_element_type  # unused
    return _fnp().matmul(x1, x2)


def tensordot(x1, x2, /, *, axes=2, precision=None, preferred_element_type=None):
    """Tensor contraction (array API name for `nanofn.numpy.tensordot`).

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.linalg.tensordot(fnp.ones((2, 3)), fnp.ones((2, 3))))
        6.0
    """
    del precision, preferred_element_type  # unused
    return _fnp().tensordot(x1, x2, axes=axes)


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
    x = asarray_value(x)
    if dtype is not None:
        x = lnp.astype(x, dtype)
    return _fnp().trace(x, offset=offset, axis1=-2, axis2=-1)


def diagonal(x, /, *, offset=0):
    """The main diagonal of each matrix in the last two axes (array API).

    Example:
        >>> import nanofn.numpy as fnp
        >>> fnp.linalg.diagonal(fnp.array([[1, 2], [3, 4]]))
        Array([1, 4], dtype=int32)
    """
    return _fnp().diagonal(asarray_value(x), offset=offset, axis1=-2, axis2=-1)


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
    x1, x2 = promote(x1, x2)
    if len(_shape_of(x1)) != 1 or len(_shape_of(x2)) != 1:
        raise ValueError("linalg.outer: both inputs must be 1-d")
    return lnp.outer(x1, x2)


def vecdot(x1, x2, /, *, axis=-1, precision=None, preferred_element_type=None):
    """Dot product of vectors along `axis` (broadcasting the other axes), conjugating
    `x1` as the array API (and JAX) define it: `sum(conj(x1) * x2, axis)`.

    Example:
        >>> import nanofn.numpy as fnp
        >>> float(fnp.linalg.vecdot(fnp.array([1.0, 2.0]), fnp.array([3.0, 4.0])))
        11.0
        >>> complex(fnp.linalg.vecdot(fnp.array([1j]), fnp.array([1j])))
        (1+0j)
    """
    del precision, preferred_element_type  # unused
    x1 = asarray_value(x1)
    if dtype_of(x1).kind == "c":
        x1 = _conj(x1)
    prod = lnp.multiply(x1, x2)
    return lnp.sum(prod, axis=axis, dtype=dtype_of(prod))  # JAX: integers do not widen
