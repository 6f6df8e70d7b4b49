"""nanofn.scipy.linalg against scipy.linalg: values on hypothesis-drawn (batched) matrices,
derivatives against finite differences (order 2 where cheap), and the batching and jit
behaviour of its primitives triangular_solve, lu and expm."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sl
from hypothesis import given, settings, strategies as st

import nanofn
from nanofn.scipy import linalg as L
from nanofn.testing import check_grads, shapes


def _np(x):
    return np.asarray(x)


def _draw(data, *, min_n=1, max_n=4, max_batch=2):
    batch = data.draw(shapes(max_dims=max_batch, min_side=1, max_side=2), label="batch")
    n = data.draw(st.integers(min_n, max_n), label="n")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    return rng, batch, n


def _loop(f, *arrays):
    """Apply a 2-d scipy function over the leading axes of equally batched arrays."""
    batch = arrays[0].shape[:-2]
    outs = [f(*[a[idx] for a in arrays]) for idx in np.ndindex(*batch)]
    return np.stack(outs).reshape(batch + np.shape(outs[0])) if outs else None


# ------------------------------------------------------------------------ solve_triangular


@settings(max_examples=10)
@given(st.data())
def test_solve_triangular_matches_scipy(data):
    rng, batch, n = _draw(data)
    a = rng.normal(size=batch + (n, n)) + 3 * np.eye(n)
    k = data.draw(st.integers(1, 3))
    b = rng.normal(size=batch + (n, k))
    trans = data.draw(st.sampled_from([0, 1, 2, "N", "T", "C"]))
    lower, unit = data.draw(st.booleans()), data.draw(st.booleans())
    got = L.solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit)
    want = _loop(lambda a, b: sl.solve_triangular(a, b, trans=trans, lower=lower,
                                                  unit_diagonal=unit), a, b) \
        if batch else sl.solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit)
    np.testing.assert_allclose(_np(got), want, rtol=1e-10, atol=1e-12)
    vec = L.solve_triangular(a[(0,) * len(batch)], b[(0,) * len(batch)][:, 0], trans=trans,
                             lower=lower, unit_diagonal=unit)
    np.testing.assert_allclose(_np(vec), np.reshape(want, (-1, n, k))[0][:, 0], rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("trans", [0, 1])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular_grads(lower, trans, unit):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 3, 3)) + 3 * np.eye(3)
    b = rng.normal(size=(2, 3, 2))
    check_grads(lambda a, b: L.solve_triangular(a, b, trans=trans, lower=lower,
                                                unit_diagonal=unit), (a, b), order=2)
    # only the triangle that is read gets a gradient
    g = _np(nanofn.grad(lambda a: L.solve_triangular(a, b, lower=lower,
                                                    unit_diagonal=unit).sum())(a))
    outside = ~np.tri(3, 3, -1 if unit else 0, dtype=bool)
    outside = outside if lower else outside.T
    assert (g[:, outside] == 0).all()


# ------------------------------------------------------------------------ lu


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
@settings(max_examples=10)
@given(st.data())
def test_lu_matches_scipy(data):
    rng, _, n = _draw(data)
    m = data.draw(st.integers(1, 4), label="m")
    a = rng.normal(size=(m, n))
    if data.draw(st.booleans(), label="complex"):
        a = a + 1j * rng.normal(size=(m, n))
    if data.draw(st.booleans(), label="repeat rows") and m > 1:
        a[1] = a[0]  # a rank-deficient case
    p, l, u = L.lu(a)
    pw, lw, uw = sl.lu(a)
    assert (p.dtype, l.dtype, u.dtype) == (pw.dtype, lw.dtype, uw.dtype)  # p is real
    np.testing.assert_allclose(_np(p), pw)
    np.testing.assert_allclose(_np(l), lw, atol=1e-12)
    np.testing.assert_allclose(_np(u), uw, atol=1e-12)
    pl, u2 = L.lu(a, permute_l=True)
    np.testing.assert_allclose(_np(pl), pw @ lw, atol=1e-12)
    if m == n:
        lu_, piv = L.lu_factor(a)
        luw, pivw = sl.lu_factor(a)
        np.testing.assert_allclose(_np(lu_), luw, atol=1e-12)
        np.testing.assert_array_equal(_np(piv), pivw)


@settings(max_examples=8)
@given(st.data())
def test_lu_solve_matches_scipy(data):
    rng, batch, n = _draw(data, max_batch=0)
    a = rng.normal(size=(n, n)) + 3 * np.eye(n)
    b = rng.normal(size=(n, 2))
    for trans in (0, 1, 2):
        np.testing.assert_allclose(_np(L.lu_solve(L.lu_factor(a), b, trans=trans)),
                                   sl.lu_solve(sl.lu_factor(a), b, trans=trans), rtol=1e-10)
    np.testing.assert_allclose(_np(L.lu_solve(L.lu_factor(a), b[:, 0])),
                               np.linalg.solve(a, b[:, 0]), rtol=1e-10)


def test_lu_batched_and_grads():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(2, 3, 4, 4))
    p, l, u = L.lu(a)
    np.testing.assert_allclose(_np(p) @ _np(l) @ _np(u), a, atol=1e-12)
    check_grads(lambda a: L.lu(a)[1:], (a[0, 0],), order=2)
    check_grads(lambda a: L.lu_factor(a)[0], (a[0],), order=2)
    check_grads(lambda a, b: L.lu_solve(L.lu_factor(a), b),
                (a[0, 0] + 4 * np.eye(4), rng.normal(size=(4, 2))), order=2)
    for shape in ((4, 2), (2, 4), (3, 1)):  # rectangular, as JAX
        x = rng.normal(size=shape)
        check_grads(lambda a: L.lu(a)[1:], (x,), order=2)
        check_grads(lambda a: L.lu(a, permute_l=True), (x,), order=1)


# ------------------------------------------------------------------------ cholesky family


@settings(max_examples=8)
@given(st.data())
def test_cholesky_family_matches_scipy(data):
    rng, batch, n = _draw(data, max_batch=0)
    x = rng.normal(size=(n, n))
    spd = x @ x.T + n * np.eye(n)
    b = rng.normal(size=(n, 2))
    for lower in (False, True):
        np.testing.assert_allclose(_np(L.cholesky(spd, lower=lower)),
                                   sl.cholesky(spd, lower=lower), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(_np(L.cho_solve(L.cho_factor(spd, lower=lower), b)),
                                   sl.cho_solve(sl.cho_factor(spd, lower=lower), b), rtol=1e-10)
    for assume_a in ("gen", "sym", "pos"):
        np.testing.assert_allclose(_np(L.solve(spd, b, assume_a=assume_a)),
                                   sl.solve(spd, b, assume_a=assume_a), rtol=1e-10)


def test_cholesky_family_grads():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 3))
    spd = x @ x.T + 3 * np.eye(3)
    b = rng.normal(size=(3,))
    # scipy's cholesky reads one triangle and, as in JAX, its rule assumes a symmetric
    # input: exact along symmetric perturbations (x + x.T), which is what is checked
    half = spd / 2
    check_grads(lambda x: L.cholesky(x + x.T, lower=False), (half,), order=2)
    check_grads(lambda x, b: L.cho_solve(L.cho_factor(x + x.T, lower=True), b), (half, b),
                order=2)
    check_grads(lambda x, b: L.solve(x + x.T, b, assume_a="pos"), (half, b), order=2)
    # the pos solver's gradient is a general solve's (JAX's), for every perturbation
    g = _np(nanofn.grad(lambda a: L.solve(a, b, assume_a="pos").sum())(spd))
    w = np.linalg.solve(spd.T, np.ones(3))
    np.testing.assert_allclose(g, -np.outer(w, np.linalg.solve(spd, b)), rtol=1e-10)


# ------------------------------------------------------------------------ expm


@settings(max_examples=10)
@given(st.data())
def test_expm_matches_scipy(data):
    rng, batch, n = _draw(data)
    scale = data.draw(st.sampled_from([1e-3, 0.3, 1.0, 5.0, 30.0]), label="scale")
    a = rng.normal(size=batch + (n, n)) * scale
    want = _loop(sl.expm, a) if batch else sl.expm(a)
    np.testing.assert_allclose(_np(L.expm(a)), want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
    e = rng.normal(size=(n, n))
    a0 = a[(0,) * len(batch)]
    got_e, got_l = L.expm_frechet(a0, e)
    want_e, want_l = sl.expm_frechet(a0, e)
    np.testing.assert_allclose(_np(got_e), want_e, rtol=1e-9, atol=1e-12 * np.abs(want_e).max())
    np.testing.assert_allclose(_np(got_l), want_l, rtol=1e-7, atol=1e-9 * np.abs(want_l).max())


def test_expm_grads_and_identities():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2, 3, 3))
    check_grads(L.expm, (a,), order=2)
    check_grads(lambda a, e: L.expm_frechet(a, e, compute_expm=False), (a[0], a[1]), order=1)
    # d/dt expm(t A) = A expm(t A)
    t_dot = nanofn.jvp(lambda t: L.expm(t * a[0]), (1.0,), (1.0,))[1]
    np.testing.assert_allclose(_np(t_dot), a[0] @ sl.expm(a[0]), rtol=1e-10)
    # expm of a skew-symmetric matrix is orthogonal, and of a zero matrix the identity
    s = a[0] - a[0].T
    q = _np(L.expm(s))
    np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(_np(L.expm(np.zeros((2, 2)))), np.eye(2), rtol=1e-15, atol=0)


# ------------------------------------------------------------------------ the rest


def test_decompositions_match_scipy():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(5, 3))
    for mode in ("full", "economic"):
        q, r = L.qr(a, mode=mode)
        qw, rw = sl.qr(a, mode=mode)
        assert q.shape == qw.shape and r.shape == rw.shape
        np.testing.assert_allclose(np.abs(_np(r)), np.abs(rw), atol=1e-12)
    (r,) = L.qr(a, mode="r")
    assert r.shape == sl.qr(a, mode="r")[0].shape
    # column pivoting: scipy's (q, r, p) and (r, p); LAPACK's geqp3 picks the same columns
    for mode in ("full", "economic", "r"):
        got, want = L.qr(a, mode=mode, pivoting=True), sl.qr(a, mode=mode, pivoting=True)
        assert len(got) == len(want)
        np.testing.assert_array_equal(_np(got[-1]), want[-1])
        np.testing.assert_allclose(np.abs(_np(got[-2])), np.abs(want[-2]), atol=1e-12)
        if mode != "r":
            q, r, p = got
            np.testing.assert_allclose(_np(q) @ _np(r), a[:, _np(p)], atol=1e-12)
    u, s, vh = L.svd(a)
    np.testing.assert_allclose(_np(s), sl.svd(a, compute_uv=False), rtol=1e-12)
    assert u.shape == (5, 5) and vh.shape == (3, 3)
    sq = rng.normal(size=(4, 4))
    sq = sq + sq.T
    for lower in (True, False):
        w, v = L.eigh(sq, lower=lower)
        ww, vw = sl.eigh(sq, lower=lower)
        np.testing.assert_allclose(_np(w), ww, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.abs(_np(v)), np.abs(vw), atol=1e-8)
    np.testing.assert_allclose(_np(L.det(sq)), sl.det(sq), rtol=1e-12)
    np.testing.assert_allclose(_np(L.inv(sq)), sl.inv(sq), rtol=1e-10)
    np.testing.assert_allclose(_np(L.solve(sq, a[:4])), sl.solve(sq, a[:4]), rtol=1e-10)


def test_eigh_symmetrises_like_jax_and_differentiates():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(3, 3))
    sym = (a + a.T) / 2  # JAX's scipy eigh symmetrises (scipy's reads one triangle)
    for lower in (True, False):
        np.testing.assert_allclose(_np(L.eigh(a, lower=lower, eigvals_only=True)),
                                   np.linalg.eigvalsh(sym), rtol=1e-12)
    g = _np(nanofn.grad(lambda a: L.eigh(a, eigvals_only=True)[-1])(a))
    np.testing.assert_allclose(g, g.T, atol=1e-14)
    check_grads(lambda a: L.eigh(a, eigvals_only=True), (a,), order=2)


def test_solve_sylvester_polar_block_diag():
    rng = np.random.default_rng(6)
    A, B, C = rng.normal(size=(3, 3)), rng.normal(size=(2, 2)), rng.normal(size=(3, 2))
    np.testing.assert_allclose(_np(L.solve_sylvester(A, B, C)), sl.solve_sylvester(A, B, C),
                               rtol=1e-10)
    check_grads(L.solve_sylvester, (A + 3 * np.eye(3), B + 3 * np.eye(2), C), order=2)
    x = rng.normal(size=(4, 3))
    for side in ("right", "left"):
        u, p = L.polar(x, side=side)
        uw, pw = sl.polar(x, side=side)
        np.testing.assert_allclose(_np(u), uw, atol=1e-12)
        np.testing.assert_allclose(_np(p), pw, atol=1e-12)
    check_grads(lambda x: L.polar(x)[1], (x,), order=1)
    blocks = (np.ones((2, 2)), 3.0, np.arange(3.0), np.zeros((0, 2)))
    np.testing.assert_allclose(_np(L.block_diag(*blocks)), sl.block_diag(*blocks))
    check_grads(lambda a, b: L.block_diag(a, b), (x, A), order=1)


def test_primitives_under_vmap_and_jit():
    rng = np.random.default_rng(7)
    a = rng.normal(size=(3, 4, 4)) + 3 * np.eye(4)
    b = rng.normal(size=(4, 2))
    cases = (L.expm, lambda a: L.lu(a), lambda a: L.lu_factor(a),
             lambda a: L.solve_triangular(a, b, lower=True),
             lambda a: L.lu_solve(L.lu_factor(a), b))
    for f in cases:
        per_matrix = [nanofn.tree.leaves(f(x)) for x in a]
        eager = [np.stack([_np(leaves[i]) for leaves in per_matrix])
                 for i in range(len(per_matrix[0]))]
        for other in (nanofn.vmap(nanofn.jit(f))(a), nanofn.vmap(f)(a),
                      nanofn.vmap(f, in_axes=1)(np.moveaxis(a, 0, 1))):
            for e, o in zip(eager, nanofn.tree.leaves(other)):
                np.testing.assert_allclose(_np(o), _np(e), atol=1e-12)
    # b batched, a not
    out = nanofn.vmap(lambda b: L.solve_triangular(a[0], b, lower=True))(np.stack([b, 2 * b]))
    np.testing.assert_allclose(_np(out[1]), 2 * _np(out[0]), rtol=1e-12)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="trans"):
        L.solve_triangular(np.eye(2), np.ones(2), trans=3)
    with pytest.raises(ValueError, match="do not match"):
        L.solve_triangular(np.eye(2), np.ones(3))
    with pytest.raises(ValueError, match="assume_a"):
        L.solve(np.eye(2), np.ones(2), assume_a="banana")
    with pytest.raises(ValueError, match="square"):
        L.expm(np.ones((2, 3)))


# ------------------------------------------------------------------------ special matrices


@settings(max_examples=10)
@given(st.data())
def test_special_matrices_match_scipy(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    n = data.draw(st.integers(1, 5), label="n")
    m = data.draw(st.integers(1, 5), label="m")
    c, r = rng.normal(size=n), rng.normal(size=m)
    np.testing.assert_allclose(_np(L.toeplitz(c, r)), sl.toeplitz(c, r))
    np.testing.assert_allclose(_np(L.toeplitz(c)), sl.toeplitz(c))
    np.testing.assert_allclose(_np(L.hankel(c, r)), sl.hankel(c, r))
    np.testing.assert_allclose(_np(L.hankel(c)), sl.hankel(c))
    np.testing.assert_allclose(_np(L.circulant(c)), sl.circulant(c))
    np.testing.assert_allclose(_np(L.fiedler(c)), sl.fiedler(c))
    if n > 1:
        s = rng.uniform(size=n - 1)
        np.testing.assert_allclose(_np(L.leslie(c, s)), sl.leslie(c, s))
    poly = np.concatenate([[1.5], rng.normal(size=n)])
    np.testing.assert_allclose(_np(L.companion(poly)), sl.companion(poly), rtol=1e-12)
    np.testing.assert_allclose(_np(L.fiedler_companion(poly)), sl.fiedler_companion(poly),
                               rtol=1e-12)
    for mode in ("full", "same", "valid"):
        np.testing.assert_allclose(_np(L.convolution_matrix(c, m, mode)),
                                   sl.convolution_matrix(c, m, mode))
        np.testing.assert_allclose(_np(L.convolution_matrix(c, m, mode)) @ r,
                                   np.convolve(c, r, mode), atol=1e-12)
    np.testing.assert_allclose(_np(L.hilbert(n)), sl.hilbert(n), rtol=1e-6)
    np.testing.assert_allclose(_np(L.invhilbert(n)), sl.invhilbert(n), rtol=1e-6)
    for kind in ("symmetric", "lower", "upper"):
        np.testing.assert_allclose(_np(L.pascal(n, kind)), sl.pascal(n, kind))
        np.testing.assert_allclose(_np(L.invpascal(n, kind)), sl.invpascal(n, kind))
    for full in (False, True):
        np.testing.assert_allclose(_np(L.helmert(n, full)), sl.helmert(n, full), rtol=1e-6,
                                   atol=1e-7)
    for scale in (None, "n", "sqrtn"):
        np.testing.assert_allclose(_np(L.dft(n, scale)), sl.dft(n, scale), rtol=1e-6, atol=1e-6)
    k = 2 ** data.draw(st.integers(0, 3))
    np.testing.assert_array_equal(_np(L.hadamard(k)), sl.hadamard(k))


def test_special_matrices_batch_and_differentiate():
    rng = np.random.default_rng(8)
    c, r = rng.normal(size=(2, 3)), rng.normal(size=(4,))
    got = L.toeplitz(c, r)
    assert got.shape == (2, 3, 4)
    np.testing.assert_allclose(_np(got[1]), sl.toeplitz(c[1], r))
    check_grads(L.toeplitz, (c, r), order=1)
    check_grads(L.hankel, (c, r), order=1)
    check_grads(L.circulant, (c,), order=1)
    check_grads(L.companion, (np.array([2.0, -1.0, 0.5]),), order=2)
    with pytest.raises(ValueError, match="power of 2"):
        L.hadamard(3)


def test_eigh_tridiagonal_and_qr_multiply():
    rng = np.random.default_rng(9)
    d, e = rng.normal(size=4), rng.normal(size=3)
    w, v = L.eigh_tridiagonal(d, e)
    ww, vw = sl.eigh_tridiagonal(d, e)
    np.testing.assert_allclose(_np(w), ww, rtol=1e-10)
    np.testing.assert_allclose(np.abs(_np(v)), np.abs(vw), atol=1e-8)
    check_grads(lambda d, e: L.eigh_tridiagonal(d, e, eigvals_only=True), (d, e), order=2)
    a, c = rng.normal(size=(4, 3)), rng.normal(size=(2, 4))
    cq, rr = L.qr_multiply(a, c)
    cqw, rrw = sl.qr_multiply(a, c)
    np.testing.assert_allclose(np.abs(_np(cq)), np.abs(cqw), atol=1e-10)
    np.testing.assert_allclose(np.abs(_np(rr)), np.abs(rrw), atol=1e-10)
    qc, _ = L.qr_multiply(a, c.T[:3], mode="left")
    qcw, _ = sl.qr_multiply(a, c.T[:3], mode="left")
    np.testing.assert_allclose(np.abs(_np(qc)), np.abs(qcw), atol=1e-10)


# ------------------------------------------------------------------------ Schur family


def test_schur_family_matches_scipy():
    rng = np.random.default_rng(10)
    a = rng.normal(size=(2, 4, 4))
    for output in ("real", "complex"):
        t, z = L.schur(a, output=output)
        for i in range(2):
            tw, zw = sl.schur(a[i], output=output)
            np.testing.assert_allclose(_np(t[i]), tw, atol=1e-10)
            np.testing.assert_allclose(_np(z[i]), zw, atol=1e-10)
        zt = _np(z)
        np.testing.assert_allclose(zt @ _np(t) @ np.conj(np.swapaxes(zt, -1, -2)), a, atol=1e-10)
    h, q = L.hessenberg(a[0], calc_q=True)
    hw, qw = sl.hessenberg(a[0], calc_q=True)
    np.testing.assert_allclose(_np(h), hw, atol=1e-10)
    np.testing.assert_allclose(_np(q), qw, atol=1e-10)
    np.testing.assert_allclose(_np(L.hessenberg(a[1])), sl.hessenberg(a[1]), atol=1e-10)
    tr, zr = sl.schur(a[0])
    tc, zc = L.rsf2csf(tr, zr)
    tcw, zcw = sl.rsf2csf(tr, zr)
    np.testing.assert_allclose(_np(tc), tcw, atol=1e-10)
    np.testing.assert_allclose(_np(zc), zcw, atol=1e-10)


def test_sqrtm_and_funm():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3, 3))
    spd = x @ x.T + np.eye(3)
    root = _np(L.sqrtm(spd))
    assert root.dtype == np.complex128
    np.testing.assert_allclose(root, sl.sqrtm(spd), atol=1e-10)
    np.testing.assert_allclose(root @ root, spd, atol=1e-10)
    general = _np(L.sqrtm(x))
    np.testing.assert_allclose(general @ general, x, atol=1e-8)
    np.testing.assert_allclose(general, sl.sqrtm(x.astype(complex)), atol=1e-8)
    import nanofn.numpy as fnp
    np.testing.assert_allclose(_np(L.funm(x, fnp.exp)), sl.expm(x), atol=1e-8)
    batch = _np(L.sqrtm(np.stack([spd, 4 * spd])))
    np.testing.assert_allclose(batch[1], 2 * root, atol=1e-10)
    with pytest.raises(NotImplementedError, match="not differentiable"):
        nanofn.jvp(L.sqrtm, (spd,), (spd,))
    with pytest.raises(NotImplementedError, match="not differentiable"):
        nanofn.vjp(lambda a: L.schur(a)[0], spd)[1](np.ones((3, 3)))


def _complex_normal(rng, *shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def check_complex_holomorphic(f, x, rng, eps=1e-6):
    """JVP against a central difference along a complex tangent, and the VJP by JAX's
    pairing (no conjugation): sum(ct * J t) == sum(J^T ct * t)."""
    t = _complex_normal(rng, *x.shape)
    y, jt = nanofn.jvp(f, (x,), (t,))
    fd = (_np(f(x + eps * t)) - _np(f(x - eps * t))) / (2 * eps)
    np.testing.assert_allclose(_np(jt), fd, rtol=1e-6, atol=1e-7)
    y, pullback = nanofn.vjp(f, x)
    ct = _complex_normal(rng, *np.shape(y))
    (g,) = pullback(ct)
    lhs, rhs = np.sum(ct * _np(jt)), np.sum(_np(g) * t)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)), (lhs, rhs)


def test_complex128_holomorphic_primitives():
    rng = np.random.default_rng(12)
    a = _complex_normal(rng, 3, 3) + 3 * np.eye(3)
    b = _complex_normal(rng, 3, 2)
    np.testing.assert_allclose(_np(L.expm(a)), sl.expm(a), rtol=1e-12)
    for got, want in zip(L.lu(a), sl.lu(a)):
        np.testing.assert_allclose(_np(got), want, atol=1e-12)
    for lower in (True, False):
        for trans in (0, 1):
            np.testing.assert_allclose(
                _np(L.solve_triangular(a, b, trans=trans, lower=lower)),
                sl.solve_triangular(a, b, trans=trans, lower=lower), rtol=1e-12)
    for f in (L.expm, lambda a: L.lu(a)[1], lambda a: L.lu(a)[2],
              lambda a: L.solve_triangular(a, b, lower=True),
              lambda a: L.solve_triangular(a, b, trans=1, unit_diagonal=True),
              lambda a: L.lu_solve(L.lu_factor(a), b)):
        check_complex_holomorphic(f, a, rng)


def test_complex_values_match_scipy():
    rng = np.random.default_rng(22)
    a = rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))
    h = a @ a.conj().T + np.eye(3)
    b = rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2))
    c = rng.normal(size=3) + 1j * rng.normal(size=3)
    # toeplitz's default first row is conj(c): a Hermitian matrix, as in scipy
    np.testing.assert_array_equal(_np(L.toeplitz(c)), sl.toeplitz(c))
    for trans in (0, 1, 2):
        np.testing.assert_allclose(_np(L.lu_solve(L.lu_factor(a), b, trans=trans)),
                                   sl.lu_solve(sl.lu_factor(a), b, trans=trans), rtol=1e-10)
    check_grads(lambda a, b: L.lu_solve(L.lu_factor(a), b, trans=2), (a, b), order=1)
    np.testing.assert_allclose(_np(L.sqrtm(h)), sl.sqrtm(h), rtol=1e-10)
    t, z = L.schur(a, output="complex")
    np.testing.assert_allclose(_np(z) @ _np(t) @ _np(z).conj().T, a, atol=1e-12)
    np.testing.assert_allclose(np.tril(_np(t), -1), 0, atol=1e-12)
    hh, q = L.hessenberg(a, calc_q=True)
    np.testing.assert_allclose(_np(q) @ _np(hh) @ _np(q).conj().T, a, atol=1e-12)
    np.testing.assert_allclose(_np(L.funm(h, nanofn.numpy.exp)), sl.expm(h), rtol=1e-8)
    # polar: p = V S V^H (Hermitian), u = W V^H; beyond JAX, differentiable here
    for side in ("right", "left"):
        for m in (a, a[:, :2], a[:2]):
            u, p = L.polar(m, side=side)
            u_ref, p_ref = sl.polar(m, side=side)
            np.testing.assert_allclose(_np(u), u_ref, atol=1e-12)
            np.testing.assert_allclose(_np(p), p_ref, atol=1e-12)
    check_grads(lambda m: L.polar(m), (a,), order=1)
    check_grads(lambda m: L.polar(m, side="left"), (a[:2],), order=1)
