"""nanofn.numpy.linalg decompositions and composites: values against numpy on
hypothesis-drawn batched matrices, derivatives of every output (singular vectors and
eigenvectors through functions that do not depend on their signs) against finite
differences, det's gradient at singular matrices against the adjugate, and the batching,
jit and vmap behaviour of the primitives eigh, qr, eig and adjugate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nanofn
from nanofn.numpy import linalg
from nanofn.testing import check_grads, shapes


def _np(x):
    return np.asarray(x)


def _draw(data, *, min_n=1, max_n=4, square=True, max_batch=2):
    batch = data.draw(shapes(max_dims=max_batch, min_side=1, max_side=2), label="batch")
    m = data.draw(st.integers(min_n, max_n), label="m")
    n = m if square else data.draw(st.integers(min_n, max_n), label="n")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    return rng, batch, m, n


def _separated(rng, shape):
    """A matrix with well-separated singular values (so its singular vectors are well
    defined): U diag(s) V^T with s spread over [1, 1 + 2k]."""
    m, n = shape[-2:]
    k = min(m, n)
    u = np.linalg.qr(rng.normal(size=shape[:-2] + (m, m)))[0][..., :k]
    v = np.linalg.qr(rng.normal(size=shape[:-2] + (n, n)))[0][..., :k]
    s = 1.0 + 2.0 * np.arange(k)[::-1] + rng.uniform(0, 0.5, size=k)
    return (u * s) @ np.swapaxes(v, -1, -2)


def _sym_separated(rng, shape):
    n = shape[-1]
    q = np.linalg.qr(rng.normal(size=shape))[0]
    w = np.arange(n) * 1.5 - n / 2 + rng.uniform(0, 0.3, size=n)
    return (q * w) @ np.swapaxes(q, -1, -2)


# ------------------------------------------------------------------------ svd


@settings(max_examples=8)
@given(st.data())
def test_svd_values_and_reconstruction(data):
    rng, batch, m, n = _draw(data, square=False)
    a = rng.normal(size=batch + (m, n))
    for full in (False, True):
        u, s, vh = linalg.svd(a, full_matrices=full)
        uw, sw, vhw = np.linalg.svd(a, full_matrices=full)
        assert u.shape == uw.shape and vh.shape == vhw.shape
        np.testing.assert_allclose(_np(s), sw, rtol=1e-10, atol=1e-12)
        k = min(m, n)
        np.testing.assert_allclose((_np(u)[..., :k] * _np(s)[..., None, :]) @ _np(vh)[..., :k, :],
                                   a, atol=1e-10)
    np.testing.assert_allclose(_np(linalg.svd(a, compute_uv=False)), sw, rtol=1e-10, atol=1e-12)


@settings(max_examples=5)
@given(st.data())
def test_svd_reverse_mode_through_u_and_vh(data):
    rng, batch, m, n = _draw(data, min_n=1, max_n=4, square=False, max_batch=1)
    a = _separated(rng, batch + (m, n))

    def sign_free(a):  # each singular pair is defined up to a common sign
        u, s, vh = linalg.svd(a, full_matrices=False)
        return u * u, s, vh * vh, u[..., :, :1] * vh[..., :1, :]
    check_grads(sign_free, (a,), order=2)


def test_svd_gradient_matches_the_projector_identity():
    # d/dA <G, u1 v1^T> has a closed form; check the reverse rule against finite
    # differences of a sign-free function that uses u and vh separately
    rng = np.random.default_rng(0)
    a = _separated(rng, (4, 3))
    g = rng.normal(size=(4, 3))
    f = lambda a: (linalg.svd(a, full_matrices=False)[0][:, 0:1] @  # noqa: E731
                   linalg.svd(a, full_matrices=False)[2][0:1, :] * g).sum()
    check_grads(f, (a,), order=1, modes=("rev",))


def test_svd_full_matrices_derivatives_follow_jax():
    a = np.random.default_rng(1).normal(size=(4, 2))
    with pytest.raises(NotImplementedError, match="full_matrices"):
        nanofn.grad(lambda a: linalg.svd(a)[0].sum())(a)
    square = _separated(np.random.default_rng(1), (3, 3))
    check_grads(lambda a: [x * x for x in linalg.svd(a, full_matrices=True)], (square,), order=1)


def test_svd_hermitian():
    rng = np.random.default_rng(2)
    a = _sym_separated(rng, (2, 4, 4))
    u, s, vh = linalg.svd(a, hermitian=True)
    np.testing.assert_allclose(_np(s), np.linalg.svd(a, compute_uv=False), rtol=1e-10)
    np.testing.assert_allclose((_np(u) * _np(s)[..., None, :]) @ _np(vh), a, atol=1e-10)
    check_grads(lambda a: linalg.svd(a, hermitian=True, compute_uv=False), (a,), order=2)


# ------------------------------------------------------------------------ eigh


@settings(max_examples=8)
@given(st.data())
def test_eigh_values(data):
    rng, batch, n, _ = _draw(data)
    a = rng.normal(size=batch + (n, n))
    sym = (a + np.swapaxes(a, -1, -2)) / 2
    w, v = linalg.eigh(a)
    np.testing.assert_allclose(_np(w), np.linalg.eigvalsh(sym), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose((_np(v) * _np(w)[..., None, :]) @ np.swapaxes(_np(v), -1, -2),
                               sym, atol=1e-10)
    np.testing.assert_allclose(_np(linalg.eigvalsh(a)), np.linalg.eigvalsh(sym), rtol=1e-10,
                               atol=1e-12)
    for uplo in ("L", "U"):
        np.testing.assert_allclose(
            _np(linalg.eigh(a, UPLO=uplo, symmetrize_input=False)[0]),
            np.linalg.eigvalsh(a, UPLO=uplo), rtol=1e-10, atol=1e-12)


@settings(max_examples=5)
@given(st.data())
def test_eigh_grads_of_values_and_vectors(data):
    rng, batch, n, _ = _draw(data, max_batch=1)
    a = _sym_separated(rng, batch + (n, n)) + 0.1 * rng.normal(size=batch + (n, n))

    def sign_free(a):
        w, v = linalg.eigh(a)
        return w, v * v, (v[..., :, :1] * v[..., None, :, 0])
    check_grads(sign_free, (a,), order=2)


def test_eigh_gradient_identities():
    rng = np.random.default_rng(3)
    a = _sym_separated(rng, (4, 4))
    w, v = np.linalg.eigh(a)
    # d w_i / dA = v_i v_i^T (on a symmetric input)
    g = _np(nanofn.grad(lambda a: linalg.eigvalsh(a)[-1])(a))
    np.testing.assert_allclose(g, np.outer(v[:, -1], v[:, -1]), atol=1e-12)
    # a function of the eigenvectors that reconstructs A: grad of <G, V diag(w) V^T> is G_sym
    gmat = rng.normal(size=(4, 4))
    f = lambda a: (linalg.eigh(a)[1] * linalg.eigh(a)[0] @ linalg.eigh(a)[1].T * gmat).sum()  # noqa: E731
    np.testing.assert_allclose(_np(nanofn.grad(f)(a)), (gmat + gmat.T) / 2, atol=1e-10)


# ------------------------------------------------------------------------ qr


@settings(max_examples=8)
@given(st.data())
def test_qr_values(data):
    rng, batch, m, n = _draw(data, square=False)
    a = rng.normal(size=batch + (m, n))
    for mode, np_mode in (("reduced", "reduced"), ("complete", "complete")):
        q, r = linalg.qr(a, mode=mode)
        qw, rw = np.linalg.qr(a, mode=np_mode)
        assert q.shape == qw.shape and r.shape == rw.shape
        np.testing.assert_allclose(_np(q) @ _np(r), a, atol=1e-10)
        np.testing.assert_allclose(np.abs(_np(r)), np.abs(rw), atol=1e-10)
        np.testing.assert_allclose(np.swapaxes(_np(q), -1, -2) @ _np(q),
                                   np.broadcast_to(np.eye(q.shape[-1]), batch + (q.shape[-1],) * 2),
                                   atol=1e-10)
    assert linalg.qr(a, mode="r").shape == np.linalg.qr(a, mode="r").shape


@settings(max_examples=5)
@given(st.data())
def test_qr_grads_of_q_and_r(data):
    rng, batch, m, n = _draw(data, square=False, max_batch=1)
    m, n = max(m, n), min(m, n)  # JAX differentiates m >= n
    a = rng.normal(size=batch + (m, n)) + np.eye(m, n) * 2
    check_grads(lambda a: tuple(linalg.qr(a)), (a,), order=2)


def test_qr_wide_matrix_derivative_is_refused_like_jax():
    with pytest.raises(NotImplementedError, match="at least as many rows"):
        nanofn.grad(lambda a: linalg.qr(a)[1].sum())(np.ones((2, 3)))
    with pytest.raises(ValueError, match="mode"):
        linalg.qr(np.eye(2), mode="economic")


def test_qr_raw_mode_matches_numpy():
    a = np.random.default_rng(14).normal(size=(2, 4, 3))
    h, tau = linalg.qr(a, mode="raw")
    for i in range(2):
        hw, tauw = np.linalg.qr(a[i], mode="raw")
        np.testing.assert_allclose(_np(h[i]), hw, atol=1e-12)
        np.testing.assert_allclose(_np(tau[i]), tauw, atol=1e-12)
    h_jit = nanofn.jit(lambda a: linalg.qr(a, mode="raw")[0])(a)
    np.testing.assert_allclose(_np(h_jit), _np(h), atol=0)
    with pytest.raises(NotImplementedError, match="raw"):
        nanofn.jvp(lambda a: linalg.qr(a, mode="raw")[0], (a,), (a,))


# ------------------------------------------------------------------------ det and the adjugate


def _cofactor_t(a):
    n = a.shape[-1]
    out = np.empty_like(a)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(a, i, -2), j, -1)
            out[..., i, j] = (-1) ** (i + j) * np.linalg.det(minor) if n > 1 else 1.0
    return out


@settings(max_examples=8)
@given(st.data())
def test_det_gradient_at_singular_matrices_is_the_adjugate(data):
    rng, batch, n, _ = _draw(data, min_n=1, max_n=4)
    rank = data.draw(st.integers(0, n - 1), label="rank")
    a = rng.normal(size=batch + (n, rank)) @ rng.normal(size=batch + (rank, n))
    g = _np(nanofn.grad(lambda a: linalg.det(a).sum())(a))
    np.testing.assert_allclose(g, _cofactor_t(a), atol=1e-10)
    assert np.isfinite(g).all()
    if rank == n - 1 and not batch:
        check_grads(linalg.det, (a,), order=1)


def test_det_second_order_at_the_identity_and_generic_points():
    rng = np.random.default_rng(4)
    check_grads(linalg.det, (2.0 * np.eye(3),), order=2)
    check_grads(linalg.det, (rng.normal(size=(2, 3, 3)),), order=2)
    a = rng.normal(size=(3, 3))
    np.testing.assert_allclose(_np(linalg.adjugate_p.bind(a)), _cofactor_t(a).T, atol=1e-12)


# ------------------------------------------------------------------------ eig (values only)


def test_eig_values_and_eigvals_derivatives():
    a = np.random.default_rng(5).normal(size=(2, 3, 3))
    w, v = linalg.eig(a)
    assert w.dtype == np.complex128 and v.dtype == np.complex128
    np.testing.assert_allclose(_np(a).astype(complex) @ _np(v), _np(v) * _np(w)[..., None, :],
                               atol=1e-10)
    np.testing.assert_allclose(np.sort_complex(_np(linalg.eigvals(a))),
                               np.sort_complex(np.linalg.eigvals(a)), atol=1e-10)
    assert linalg.eigvals(np.eye(2, dtype=np.float32)).dtype == np.complex64
    # eigvals: dw = diag(V^-1 dA V), real and complex inputs, batched (JAX's rule);
    # the eigenvectors are not differentiable, as in JAX
    check_grads(linalg.eigvals, (a,), order=1)
    check_grads(linalg.eigvals, (a + 1j * np.random.default_rng(6).normal(size=a.shape),),
                order=1)
    with pytest.raises(NotImplementedError, match="eigenvectors"):
        nanofn.jvp(lambda a: linalg.eig(a)[1], (a,), (a,))
    with pytest.raises(NotImplementedError, match="eigenvectors"):
        nanofn.grad(lambda a: linalg.eig(a)[0].real.sum())(a)


# ------------------------------------------------------------------------ composites


@settings(max_examples=6)
@given(st.data())
def test_pinv_matches_numpy_and_differentiates(data):
    rng, batch, m, n = _draw(data, square=False, max_batch=1)
    a = _separated(rng, batch + (m, n))
    np.testing.assert_allclose(_np(linalg.pinv(a)), np.linalg.pinv(a), atol=1e-10)
    check_grads(linalg.pinv, (a,), order=2)


def test_pinv_rank_deficient_and_hermitian():
    rng = np.random.default_rng(6)
    u, v = rng.normal(size=3), rng.normal(size=4)
    a = np.outer(u, v)
    np.testing.assert_allclose(_np(linalg.pinv(a)), np.linalg.pinv(a), atol=1e-12)
    # the derivative is that at fixed rank: along rank-preserving paths it is exact
    check_grads(lambda u: linalg.pinv(linalg.outer(u, v)), (u,), order=1)
    s = _sym_separated(rng, (3, 3))
    np.testing.assert_allclose(_np(linalg.pinv(s, hermitian=True)), np.linalg.pinv(s),
                               atol=1e-10)
    np.testing.assert_allclose(_np(linalg.pinv(a, rtol=0.5)), np.linalg.pinv(a, rcond=0.5),
                               atol=1e-12)


@settings(max_examples=6)
@given(st.data())
def test_lstsq_matches_numpy(data):
    rng, _, m, n = _draw(data, square=False)
    a = rng.normal(size=(m, n))
    b = rng.normal(size=(m, 2))
    x, resid, rank, s = linalg.lstsq(a, b)
    xw, rw, rankw, sw = np.linalg.lstsq(a, b, rcond=None)
    np.testing.assert_allclose(_np(x), xw, atol=1e-10)
    assert int(rank) == rankw
    np.testing.assert_allclose(_np(s), sw, rtol=1e-10)
    _, resid_np, _, _ = linalg.lstsq(a, b, numpy_resid=True)
    np.testing.assert_allclose(_np(resid_np), rw, atol=1e-10)
    np.testing.assert_allclose(_np(linalg.lstsq(a, b[:, 0])[0]), xw[:, 0], atol=1e-10)


def test_lstsq_grads():
    rng = np.random.default_rng(7)
    a = _separated(rng, (5, 3))
    b = rng.normal(size=(5,))
    check_grads(lambda a, b: linalg.lstsq(a, b)[0], (a, b), order=2)
    check_grads(lambda a, b: linalg.lstsq(a, b)[1], (a, b), order=1)


@pytest.mark.parametrize("power", [0, 1, 2, 3, 6, -1, -3])
def test_matrix_power(power):
    rng = np.random.default_rng(8)
    a = rng.normal(size=(2, 3, 3)) + 2 * np.eye(3)
    np.testing.assert_allclose(_np(linalg.matrix_power(a, power)),
                               np.linalg.matrix_power(a, power), rtol=1e-10, atol=1e-12)
    if power:
        check_grads(lambda a: linalg.matrix_power(a, power), (a,), order=2)


def test_matrix_power_errors():
    with pytest.raises(TypeError, match="integer"):
        linalg.matrix_power(np.eye(2), 1.5)
    with pytest.raises(ValueError, match="square"):
        linalg.matrix_power(np.ones((2, 3)), 2)


@settings(max_examples=8)
@given(st.data())
def test_matrix_rank_and_cond(data):
    rng, batch, m, n = _draw(data, square=False)
    rank = data.draw(st.integers(0, min(m, n)), label="rank")
    a = rng.normal(size=batch + (m, rank)) @ rng.normal(size=batch + (rank, n))
    np.testing.assert_array_equal(_np(linalg.matrix_rank(a)), np.linalg.matrix_rank(a))
    sq = rng.normal(size=batch + (m, m)) + 3 * np.eye(m)
    for p in (None, 2, -2, 1, -1, np.inf, -np.inf, "fro", "nuc"):
        np.testing.assert_allclose(_np(linalg.cond(sq, p)), np.linalg.cond(sq, p), rtol=1e-9)


def test_cond_of_a_singular_matrix_is_inf_and_grads():
    assert np.isinf(float(linalg.cond(np.array([[1.0, 2.0], [2.0, 4.0]]), 1)))
    a = _separated(np.random.default_rng(9), (3, 3))
    check_grads(linalg.cond, (a,), order=1)
    check_grads(lambda a: linalg.cond(a, "fro"), (a,), order=2)


def test_tensorinv_tensorsolve():
    rng = np.random.default_rng(10)
    a = rng.normal(size=(4, 6, 8, 3))
    np.testing.assert_allclose(_np(linalg.tensorinv(a, ind=2)), np.linalg.tensorinv(a, ind=2),
                               rtol=1e-8, atol=1e-10)
    b = rng.normal(size=(6, 2, 3))
    c = rng.normal(size=6)
    np.testing.assert_allclose(_np(linalg.tensorsolve(b, c)), np.linalg.tensorsolve(b, c),
                               rtol=1e-8, atol=1e-10)
    b2 = np.moveaxis(b, 0, 2)
    np.testing.assert_allclose(_np(linalg.tensorsolve(b2, c, axes=(0, 1))),
                               np.linalg.tensorsolve(b2, c, axes=(0, 1)), rtol=1e-8, atol=1e-10)
    check_grads(linalg.tensorsolve, (b + np.eye(6).reshape(6, 2, 3) * 3, c), order=1)
    with pytest.raises(ValueError, match="must equal"):
        linalg.tensorinv(np.ones((2, 3)), ind=1)


@settings(max_examples=8)
@given(st.data())
def test_multi_dot_matches_numpy(data):
    count = data.draw(st.integers(2, 5), label="count")
    dims = data.draw(st.lists(st.integers(1, 5), min_size=count + 1, max_size=count + 1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    arrays = [rng.normal(size=(dims[i], dims[i + 1])) for i in range(count)]
    if data.draw(st.booleans()):
        arrays[0] = arrays[0][0]
    if data.draw(st.booleans()):
        arrays[-1] = arrays[-1][:, 0]
    got, want = linalg.multi_dot(arrays), np.linalg.multi_dot(arrays)
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(_np(got), want, rtol=1e-10, atol=1e-12)


def test_multi_dot_grads():
    rng = np.random.default_rng(11)
    arrays = (rng.normal(size=3), rng.normal(size=(3, 4)), rng.normal(size=(4, 2)))
    check_grads(lambda *xs: linalg.multi_dot(xs), arrays, order=2)


@settings(max_examples=8)
@given(st.data())
def test_cross_matches_numpy(data):
    shape1 = data.draw(shapes(max_dims=2, min_side=1, max_side=3))
    axis = data.draw(st.integers(-len(shape1) - 1, len(shape1)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    full = list(shape1)
    full.insert(axis % (len(shape1) + 1), 3)
    x1, x2 = rng.normal(size=full), rng.normal(size=full)
    np.testing.assert_allclose(_np(linalg.cross(x1, x2, axis=axis)),
                               np.cross(x1, x2, axis=axis), rtol=1e-12, atol=1e-12)
    check_grads(lambda a, b: linalg.cross(a, b, axis=axis), (x1, x2), order=2)


def test_cross_needs_three_components():
    with pytest.raises(ValueError, match="size 3"):
        linalg.cross(np.ones(2), np.ones(2))


def test_array_api_helpers():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(2, 3, 4))
    for offset in (-2, -1, 0, 1, 3):
        np.testing.assert_allclose(_np(linalg.trace(x, offset=offset)),
                                   np.trace(x, offset, axis1=-2, axis2=-1))
        np.testing.assert_allclose(_np(linalg.diagonal(x, offset=offset)),
                                   np.diagonal(x, offset, axis1=-2, axis2=-1))
    y = rng.normal(size=(4, 5))
    np.testing.assert_allclose(_np(linalg.matmul(x, y)), x @ y)
    np.testing.assert_allclose(_np(linalg.tensordot(x, rng.normal(size=(3, 4)) * 0 + 1, axes=2)),
                               np.tensordot(x, np.ones((3, 4)), axes=2))


# ------------------------------------------------------------------------ transforms


def test_new_primitives_batch_jit_and_vmap():
    rng = np.random.default_rng(13)
    a = _sym_separated(rng, (3, 4, 4))
    for f in (lambda a: linalg.eigh(a), lambda a: linalg.qr(a), lambda a: linalg.svd(a),
              lambda a: linalg.det(a), lambda a: linalg.eigvals(a), linalg.pinv,
              lambda a: linalg.adjugate_p.bind(a)):
        eager = nanofn.tree.leaves(f(a))
        jitted = nanofn.tree.leaves(nanofn.jit(f)(a))
        mapped = nanofn.tree.leaves(nanofn.vmap(f)(a))
        moved = nanofn.tree.leaves(nanofn.vmap(f, in_axes=2)(np.moveaxis(a, 0, 2)))
        for e, j, m, mv in zip(eager, jitted, mapped, moved):
            np.testing.assert_allclose(_np(j), _np(e), atol=1e-12)
            np.testing.assert_allclose(_np(m), _np(e), atol=1e-12)
            np.testing.assert_allclose(_np(mv), _np(e), atol=1e-12)
    g = nanofn.jit(nanofn.grad(lambda a: (linalg.eigh(a)[1] ** 2 * a).sum()))(a[0])
    np.testing.assert_allclose(_np(g), _np(nanofn.grad(
        lambda a: (linalg.eigh(a)[1] ** 2 * a).sum())(a[0])), atol=1e-12)


def test_dtypes_are_kept_and_integers_promote():
    from nanofn.scipy import linalg as sl_
    a32 = (np.random.default_rng(15).normal(size=(3, 3)) + 3 * np.eye(3)).astype(np.float32)
    for out in (linalg.eigh(a32), linalg.qr(a32), linalg.svd(a32), (linalg.det(a32),),
                (linalg.pinv(a32),), linalg.lstsq(a32, a32[:, 0])[:2], (sl_.expm(a32),),
                sl_.lu(a32), (sl_.solve_triangular(a32, a32[0]),),
                (linalg.matrix_power(a32, -2),)):
        for x in out:
            assert x.dtype == np.float32, out
    ints = np.array([[2, 1], [1, 3]])
    assert linalg.eigvalsh(ints).dtype == np.float32
    assert linalg.qr(ints)[0].dtype == np.float32
    assert sl_.expm(ints).dtype == np.float32
    np.testing.assert_allclose(_np(linalg.det(ints)), 5.0, rtol=1e-6)


# ------------------------------------------------------------------------ complex128


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


def test_complex128_inv_solve_det():
    rng = np.random.default_rng(16)
    a = _complex_normal(rng, 2, 3, 3) + 3 * np.eye(3)
    b = _complex_normal(rng, 2, 3, 2)
    np.testing.assert_allclose(_np(linalg.inv(a)), np.linalg.inv(a), rtol=1e-12)
    np.testing.assert_allclose(_np(linalg.solve(a, b)), np.linalg.solve(a, b), rtol=1e-12)
    np.testing.assert_allclose(_np(linalg.det(a)), np.linalg.det(a), rtol=1e-12)
    assert linalg.det(a).dtype == np.complex128
    np.testing.assert_allclose(_np(linalg.adjugate_p.bind(a)),
                               np.linalg.det(a)[:, None, None] * np.linalg.inv(a), rtol=1e-10)
    for f in (linalg.inv, linalg.det, lambda a: linalg.solve(a, b),
              lambda a: linalg.adjugate_p.bind(a)):
        check_complex_holomorphic(f, a, rng)
    # det's gradient at a singular complex matrix is still the adjugate (transposed)
    sing = _complex_normal(rng, 3, 2) @ _complex_normal(rng, 2, 3)
    _, pullback = nanofn.vjp(linalg.det, sing)
    np.testing.assert_allclose(_np(pullback(np.complex128(1.0))[0]), _cofactor_t(sing),
                               atol=1e-10)
    w = linalg.eigvals(a)
    np.testing.assert_allclose(np.sort_complex(_np(w).ravel()),
                               np.sort_complex(np.linalg.eigvals(a).ravel()), atol=1e-10)


def _herm(a):
    import nanofn.numpy as fnp
    return (a + fnp.conj(fnp.swapaxes(a, -1, -2))) / 2


def _ct(a):
    import nanofn.numpy as fnp
    return fnp.conj(fnp.swapaxes(a, -1, -2))


def _phase_free(u, vh):
    """Functions of singular vectors (or eigenvectors) that do not depend on the phase
    each column may take: |u|^2 and u @ vh."""
    return abs(u) ** 2, u @ vh


def test_complex128_decompositions():
    # values against numpy (real dtypes where numpy returns them), batched
    rng = np.random.default_rng(17)
    a = _complex_normal(rng, 2, 3, 3)
    tall = _complex_normal(rng, 4, 2)
    h = a @ np.conj(np.swapaxes(a, -1, -2)) + 3 * np.eye(3)
    u, s, vh = linalg.svd(a)
    assert s.dtype == np.float64 and u.dtype == np.complex128
    np.testing.assert_allclose(_np(s), np.linalg.svd(a, compute_uv=False), rtol=1e-12)
    np.testing.assert_allclose(_np(u) * _np(s)[..., None, :] @ _np(vh), a, atol=1e-12)
    w, v = linalg.eigh(h)
    assert w.dtype == np.float64
    np.testing.assert_allclose(_np(w), np.linalg.eigvalsh(h), rtol=1e-12)
    np.testing.assert_allclose(_np(linalg.cholesky(h)), np.linalg.cholesky(h), rtol=1e-12)
    sign, logdet = linalg.slogdet(a)
    assert sign.dtype == np.complex128 and logdet.dtype == np.float64
    np.testing.assert_allclose(_np(sign), np.linalg.slogdet(a)[0], rtol=1e-12)
    np.testing.assert_allclose(_np(logdet), np.linalg.slogdet(a)[1], rtol=1e-12)
    np.testing.assert_allclose(_np(linalg.pinv(tall)), np.linalg.pinv(tall), atol=1e-12)
    q, r = linalg.qr(a)
    np.testing.assert_allclose(_np(q) @ _np(r), a, atol=1e-12)
    rhs = _complex_normal(rng, 4)
    x, resid, rank, _ = linalg.lstsq(tall, rhs)
    ref = np.linalg.lstsq(tall, rhs, rcond=None)
    np.testing.assert_allclose(_np(x), ref[0], atol=1e-12)
    np.testing.assert_allclose(_np(resid), ref[1], rtol=1e-10)
    assert resid.dtype == np.float64 and int(rank) == 2
    np.testing.assert_allclose(_np(linalg.cond(a)), np.linalg.cond(a), rtol=1e-10)
    assert (_np(linalg.matrix_rank(a)) == 3).all()
    for got, want in zip(linalg.qr(tall, mode="raw"), np.linalg.qr(tall, mode="raw")):
        np.testing.assert_allclose(_np(got), want, rtol=1e-12)
    # derivatives in the real and imaginary directions of every input, every output
    check_grads(lambda a: _phase_free(*linalg.svd(a)[::2]) + (linalg.svd(a)[1],), (a,),
                order=2)
    check_grads(lambda a: _phase_free(*linalg.svd(a, full_matrices=False)[::2]), (tall,),
                order=1)
    check_grads(lambda a: _phase_free(*linalg.svd(a.T, full_matrices=False)[::2]), (tall,),
                order=1)
    check_grads(lambda h: (lambda w, v: (w, abs(v) ** 2, (v * w[..., None, :]) @ _ct(v)))(
        *linalg.eigh(h)), (h,), order=2)
    check_grads(lambda h: linalg.cholesky(_herm(h)), (h,), order=2)
    check_grads(linalg.qr, (a,), order=2)
    check_grads(linalg.qr, (tall,), order=1)
    check_grads(linalg.slogdet, (a,), order=2)
    check_grads(linalg.pinv, (tall,), order=1)
    check_grads(lambda t, b: linalg.lstsq(t, b)[:2], (tall, rhs), order=1)
    check_grads(lambda a: (linalg.norm(a, 2, axis=(-2, -1)), linalg.norm(a, "nuc", (-2, -1)),
                           linalg.cond(a)), (a,), order=1)


def test_complex128_scipy_cholesky_solvers():
    from nanofn.scipy import linalg as sl_
    import scipy.linalg as scipy_linalg  # the [test] extra installs scipy
    rng = np.random.default_rng(18)
    a = _complex_normal(rng, 3, 3)
    h = a @ a.conj().T + 3 * np.eye(3)
    b = _complex_normal(rng, 3)
    for lower in (False, True):
        np.testing.assert_allclose(_np(sl_.cholesky(h, lower=lower)),
                                   scipy_linalg.cholesky(h, lower=lower), rtol=1e-12)
        np.testing.assert_allclose(_np(sl_.cho_solve(sl_.cho_factor(h, lower=lower), b)),
                                   scipy_linalg.cho_solve((scipy_linalg.cholesky(h, lower=lower),
                                                           lower), b), rtol=1e-12)
        check_grads(lambda h, b: sl_.cho_solve(sl_.cho_factor(_herm(h), lower=lower), b),
                    (h, b), order=1)
    np.testing.assert_allclose(_np(sl_.solve(h, b, assume_a="pos")),
                               scipy_linalg.solve(h, b, assume_a="pos"), rtol=1e-12)
    # (JAX 0.10's reverse mode is wrong here: its custom_linear_solve(symmetric=True) takes
    # A^T for A^H; its own check_grads fails. nanofn's passes in both modes.)
    check_grads(lambda h, b: sl_.solve(_herm(h), b, assume_a="pos"), (h, b), order=1)
    check_grads(lambda h: sl_.eigh(h, eigvals_only=True), (h,), order=1)


@pytest.mark.parametrize("shape", [(0, 0), (2, 0, 0), (3, 0), (0, 3)])
def test_empty_matrices(shape):
    from nanofn.scipy import linalg as sl_
    a = np.zeros(shape)
    square = shape[-1] == shape[-2]
    fs = [lambda a: linalg.svd(a, full_matrices=False), linalg.qr, sl_.lu, linalg.pinv,
          linalg.matrix_rank]
    if square:
        fs += [linalg.inv, linalg.det, linalg.slogdet, linalg.eigh, sl_.expm, linalg.cholesky,
               linalg.eigvals, lambda a: linalg.adjugate_p.bind(a)]
    for f in fs:
        for x in nanofn.tree.leaves(f(a)):  # no error, and nothing made up
            assert np.isfinite(_np(x)).all()
    if square:
        np.testing.assert_array_equal(_np(linalg.det(a)), np.ones(shape[:-2]))
    else:
        with pytest.raises(ValueError, match="square"):
            linalg.eigh(a)
