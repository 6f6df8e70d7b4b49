"""nanofn.numpy.linalg: norms against numpy (every ord, axis, keepdims), their gradients
(including at zero), and the matrix primitives' values, derivatives and batching rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nanofn
from nanofn.numpy import linalg
from nanofn.testing import check_grads, shapes

_VECTOR_ORDS = [None, 2, 1, np.inf, -np.inf, 0, 3, 0.5, -1.5]
_MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]


def _np(x):
    return np.asarray(x)


@pytest.mark.parametrize("ord", _VECTOR_ORDS)
@given(data=st.data())
def test_vector_norms_match_numpy(ord, data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    keepdims = data.draw(st.booleans())
    x = np.random.default_rng(data.draw(st.integers(0, 2**16))).normal(size=shape)
    x[np.abs(x) < 0.2] = 0.0  # some exact zeros (ord=0 counts them)
    with np.errstate(divide="ignore"):
        want = np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    got = linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    assert got.shape == want.shape
    np.testing.assert_allclose(_np(got), want, rtol=1e-12)


@pytest.mark.parametrize("ord", _MATRIX_ORDS)
@given(data=st.data())
def test_matrix_norms_match_numpy(ord, data):
    shape = data.draw(shapes(min_dims=2, max_dims=3, min_side=1, max_side=4))
    axes = tuple(data.draw(st.permutations(range(len(shape))))[:2])
    keepdims = data.draw(st.booleans())
    x = np.random.default_rng(data.draw(st.integers(0, 2**16))).normal(size=shape)
    want = np.linalg.norm(x, ord=ord, axis=axes, keepdims=keepdims)
    got = linalg.norm(x, ord=ord, axis=axes, keepdims=keepdims)
    assert got.shape == want.shape
    np.testing.assert_allclose(_np(got), want, rtol=1e-10)
    if len(shape) == 2:  # axis=None means the matrix norm of a 2-d array
        np.testing.assert_allclose(_np(linalg.norm(x, ord=ord)), np.linalg.norm(x, ord=ord),
                                   rtol=1e-10)


def test_norm_of_any_rank_without_ord_is_the_flat_2_norm():
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_allclose(_np(linalg.norm(x)), np.linalg.norm(x))
    assert linalg.norm(x, keepdims=True).shape == (1, 1, 1)
    assert linalg.norm(np.arange(3)).dtype == np.float32
    with pytest.raises(ValueError, match="must be 1-d or 2-d"):
        linalg.norm(x, ord=1)
    with pytest.raises(ValueError, match="only defined for matrices"):
        linalg.norm(np.ones(3), ord="fro")
    with pytest.raises(ValueError, match="invalid ord=3"):
        linalg.norm(np.ones((2, 2)), ord=3)


def test_vector_and_matrix_norm_functions():
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    np.testing.assert_allclose(_np(linalg.vector_norm(x)), np.linalg.norm(x.ravel()))
    np.testing.assert_allclose(_np(linalg.vector_norm(x, axis=(0, 2), ord=1, keepdims=True)),
                               np.sum(np.abs(x), axis=(0, 2), keepdims=True))
    np.testing.assert_allclose(_np(linalg.matrix_norm(x, ord=np.inf)),
                               np.linalg.norm(x, ord=np.inf, axis=(1, 2)))


@pytest.mark.parametrize("ord", [None, 1, np.inf, 3, 1.5])
def test_vector_norm_grads(ord):
    x = np.array([[0.3, -1.2, 2.0], [1.1, 0.5, -0.7]])
    check_grads(lambda x: linalg.norm(x, ord=ord, axis=1), (x,), order=2)


@pytest.mark.parametrize("ord", ["fro", 1, -1, np.inf, -np.inf])
def test_matrix_norm_grads(ord):
    x = np.array([[0.3, -1.2, 2.0], [1.1, 0.5, -0.7]])
    check_grads(lambda x: linalg.norm(x, ord=ord), (x,), order=2)


@pytest.mark.parametrize("ord", [2, -2, "nuc"])
def test_singular_value_norm_grads(ord):
    x = np.array([[0.3, -1.2, 2.0], [1.1, 0.5, -0.7]])
    check_grads(lambda x: linalg.norm(x, ord=ord), (x,), order=1)
    # the gradient of the largest singular value is u1 v1^T
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    g = nanofn.grad(lambda x: linalg.norm(x, ord=2))(x)
    np.testing.assert_allclose(_np(g), np.outer(u[:, 0], vh[0]), rtol=1e-10)


@pytest.mark.parametrize("ord", [None, 2, 3, "fro"])
def test_norm_gradient_at_zero_is_zero_not_nan(ord):
    z = np.zeros((2, 2)) if ord == "fro" else np.zeros(3)
    g = _np(nanofn.grad(lambda x: linalg.norm(x, ord=ord))(z))
    np.testing.assert_array_equal(g, np.zeros_like(z))
    x = np.array([3.0, 4.0, 0.0])
    np.testing.assert_allclose(_np(nanofn.grad(linalg.norm)(x)), x / 5.0)


# ------------------------------------------------------------------------ matrix primitives


def _well_conditioned(rng, shape):
    n = shape[-1]
    return rng.normal(size=shape) + 3.0 * np.eye(n)


def _spd(rng, shape):
    a = rng.normal(size=shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


@settings(max_examples=5)
@given(st.data())
def test_matrix_functions_match_numpy(data):
    batch = data.draw(shapes(max_dims=2, min_side=1, max_side=2))
    n = data.draw(st.integers(1, 4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    a = _well_conditioned(rng, batch + (n, n))
    b = rng.normal(size=batch + (n, 2))
    np.testing.assert_allclose(_np(linalg.inv(a)), np.linalg.inv(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(linalg.det(a)), np.linalg.det(a), rtol=1e-10)
    np.testing.assert_allclose(_np(linalg.solve(a, b)), np.linalg.solve(a, b), rtol=1e-10,
                               atol=1e-12)
    sign, logdet = linalg.slogdet(a)
    want_sign, want_logdet = np.linalg.slogdet(a)
    np.testing.assert_array_equal(_np(sign), want_sign)
    np.testing.assert_allclose(_np(logdet), want_logdet, rtol=1e-10, atol=1e-12)
    spd = _spd(rng, batch + (n, n))
    np.testing.assert_allclose(_np(linalg.cholesky(spd)), np.linalg.cholesky(spd), rtol=1e-10)
    np.testing.assert_allclose(_np(linalg.svdvals(b)), np.linalg.svd(b, compute_uv=False),
                               rtol=1e-10)


def test_solve_vector_and_broadcasting():
    rng = np.random.default_rng(1)
    a = _well_conditioned(rng, (3, 3))
    v = rng.normal(size=3)
    np.testing.assert_allclose(_np(linalg.solve(a, v)), np.linalg.solve(a, v), rtol=1e-12)
    stack = _well_conditioned(rng, (2, 3, 3))
    b = rng.normal(size=(3, 2))
    np.testing.assert_allclose(_np(linalg.solve(stack, b)), np.linalg.solve(stack, b),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="do not match"):
        linalg.solve(a, np.ones(4))
    with pytest.raises(ValueError, match="square matrices"):
        linalg.inv(np.ones((2, 3)))


def test_matrix_function_grads():
    rng = np.random.default_rng(2)
    a = _well_conditioned(rng, (3, 3))
    b = rng.normal(size=(3, 2))
    check_grads(linalg.inv, (a,), order=2)
    check_grads(linalg.det, (a,), order=2)
    check_grads(lambda a: linalg.slogdet(a)[1], (a,), order=2)
    check_grads(linalg.solve, (a, b), order=2)
    check_grads(lambda a, v: linalg.solve(a, v), (a, b[:, 0]), order=2)
    check_grads(linalg.cholesky, (_spd(rng, (3, 3)),), order=2)
    # symmetrize_input=False: JAX's rule, exact along symmetric perturbations
    check_grads(lambda x: linalg.cholesky(x + x.T, upper=True, symmetrize_input=False),
                (_spd(rng, (3, 3)) / 2,), order=2)
    check_grads(linalg.svdvals, (b,), order=1)


def test_det_gradient_is_the_cofactor_matrix():
    a = np.array([[2.0, 1.0], [0.5, 3.0]])
    g = _np(nanofn.grad(linalg.det)(a))
    np.testing.assert_allclose(g, [[3.0, -0.5], [-1.0, 2.0]])


@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 4)])
def test_svd_derivatives_of_singular_vectors(shape):
    x = np.random.default_rng(3).normal(size=shape)
    u, s, vh = linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(_np(u) * _np(s) @ _np(vh), x, atol=1e-12)

    def sign_free(x):  # u and vh are defined up to a sign per singular pair
        u, s, vh = linalg.svd(x, full_matrices=False)
        return u * u, s, vh * vh
    check_grads(sign_free, (x,), order=1)  # both modes, singular vectors included


def test_cholesky_of_a_non_positive_definite_matrix_is_nan():
    # JAX's convention: NaNs in the factor's triangle, its zeros kept; other matrices of a
    # batch are factored as usual
    bad = np.array([[1.0, 2.0], [2.0, 1.0]])
    lower = _np(linalg.cholesky(bad))
    assert np.isnan(lower[np.tril_indices(2)]).all() and lower[0, 1] == 0.0
    upper = _np(linalg.cholesky(bad, upper=True))
    assert np.isnan(upper[np.triu_indices(2)]).all() and upper[1, 0] == 0.0
    both = _np(linalg.cholesky(np.stack([bad, 4 * np.eye(2)])))
    np.testing.assert_array_equal(both[1], 2 * np.eye(2))


def test_helpers_trace_diagonal_transpose():
    x = np.arange(18.0).reshape(2, 3, 3)
    np.testing.assert_array_equal(_np(linalg.trace(x)), np.trace(x, axis1=-2, axis2=-1))
    np.testing.assert_array_equal(_np(linalg.diagonal(x)), np.diagonal(x, axis1=-2, axis2=-1))
    assert linalg.matrix_transpose(x).shape == (2, 3, 3)
    np.testing.assert_array_equal(_np(linalg.matrix_transpose(x)), np.swapaxes(x, -1, -2))
    assert float(linalg.vecdot(np.ones(3), np.arange(3.0))) == 3.0


def test_batching_rules_match_a_loop():
    rng = np.random.default_rng(4)
    a = _well_conditioned(rng, (2, 3, 3))
    a = np.moveaxis(a, 0, 2)  # batch along axis 2
    b = rng.normal(size=(3, 2))
    for prim in (linalg.inv_p, linalg.det_p, linalg.slogdet_p, linalg.cholesky_p, linalg.svd_p):
        out, dims = prim.batch([a], [2])
        outs, dims = (out, dims) if prim.multiple_results else ([out], [dims])
        for i in range(2):
            want = prim.bind(a[:, :, i])
            want = want if prim.multiple_results else [want]
            for o, d, w in zip(outs, dims, want):
                np.testing.assert_allclose(np.take(_np(o), i, axis=d), _np(w), rtol=1e-12)
    out, d = linalg.solve_p.batch([a, b], [2, None])
    for i in range(2):
        np.testing.assert_allclose(np.take(_np(out), i, axis=d), np.linalg.solve(a[:, :, i], b),
                                   rtol=1e-12)


def test_complex_norms_and_vecdot():
    # the singular-value norms of a complex matrix once took the real rules' path: their
    # gradients were silently wrong (now checked in the real and imaginary directions)
    rng = np.random.default_rng(21)
    a = rng.normal(size=(2, 3, 3)) + 1j * rng.normal(size=(2, 3, 3))
    for ord in (2, -2, "nuc", "fro", 1, np.inf):
        np.testing.assert_allclose(np.asarray(linalg.norm(a, ord, axis=(-2, -1))),
                                   np.linalg.norm(a, ord, axis=(-2, -1)), rtol=1e-12)
        check_grads(lambda a: linalg.norm(a, ord, axis=(-2, -1)), (a,), order=1)
    # vecdot conjugates its first argument (array API, JAX)
    x, y = a[0, 0], a[1, 1]
    np.testing.assert_allclose(np.asarray(linalg.vecdot(x, y)), np.vdot(x, y), rtol=1e-12)
    check_grads(linalg.vecdot, (x, y), order=2)
