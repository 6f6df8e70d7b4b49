"""nanofn.lax.linalg: results equal jax.lax.linalg's (float64, recorded by
tools/reference/record_lax_linalg.py), sign/phase-free checks where LAPACK's choice is free
(eigen- and singular vectors), gradients by finite differences, and the module imports as
JAX's does."""

import os

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn.testing import check_grads

HERE = os.path.dirname(os.path.abspath(__file__))
from lax_linalg_cases import A, CASES, SPD, SYM, TALL  # noqa: E402

REF = dict(np.load(os.path.join(HERE, "data", "lax_linalg_jax.npz")))


def test_module_imports_as_in_jax():
    import nanofn.lax.linalg as by_import
    from nanofn.lax import linalg as by_from
    assert by_import is by_from is nanofn.lax.linalg


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_results_as_jax(name):
    from nanofn.lax import linalg
    with nanofn.enable_x64():
        got = CASES[name](linalg)
        parts = got if isinstance(got, (tuple, list)) else [got]
        parts = [np.asarray(p) for p in parts]
    refs = [REF[f"{name}:{i}"] for i in range(len(parts))]
    assert f"{name}:{len(parts)}" not in REF
    for g, r in zip(parts, refs):
        if name == "eig_w":
            g, r = np.sort_complex(g), np.sort_complex(r)
        assert g.shape == r.shape and g.dtype == r.dtype, (g.shape, g.dtype, r.shape, r.dtype)
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-10)


def test_decompositions_reconstruct_their_input():
    from nanofn.lax import linalg
    with nanofn.enable_x64():
        v, w = linalg.eigh(SYM)
        np.testing.assert_allclose(np.asarray(v) * np.asarray(w) @ np.asarray(v).T, SYM,
                                   atol=1e-10)
        u, s, vh = linalg.svd(TALL)
        assert u.shape == (5, 5) and vh.shape == (3, 3)
        np.testing.assert_allclose(np.asarray(u)[:, :3] * np.asarray(s) @ np.asarray(vh),
                                   TALL, atol=1e-10)
        q, r = linalg.qr(TALL, full_matrices=False)
        np.testing.assert_allclose(np.asarray(q) @ np.asarray(r), TALL, atol=1e-10)
        t, z = linalg.schur(A)
        np.testing.assert_allclose(np.asarray(z) @ np.asarray(t) @ np.asarray(z).T, A,
                                   atol=1e-10)
        w, vl, vr = [np.asarray(x) for x in linalg.eig(A)]
        np.testing.assert_allclose(A @ vr, vr * w, atol=1e-10)
        np.testing.assert_allclose(vl.conj().T @ A, w[:, None] * vl.conj().T, atol=1e-10)
        np.testing.assert_allclose(np.linalg.norm(vl, axis=0), 1.0)
        lu, piv, perm = linalg.lu(A)
        np.testing.assert_array_equal(linalg.lu_pivots_to_permutation(piv, 4), perm)


def test_gradients_match_finite_differences():
    from nanofn.lax import linalg
    with nanofn.enable_x64():
        x = fnp.asarray(A)
        check_grads(lambda m: linalg.hessenberg(m)[0], (x,), order=1, modes=["rev"])
        check_grads(lambda m: linalg.tridiagonal(m + m.T)[1:3], (x,), order=1,
                    modes=["rev"])
        check_grads(lambda m: linalg.cholesky(m @ m.T + 4 * fnp.eye(4)), (x,), order=1,
                    modes=["rev"])
        check_grads(lambda m, b: linalg.triangular_solve(m + 4 * fnp.eye(4), b, lower=True),
                    (x, fnp.asarray(TALL[:2, :3] @ np.ones((3, 4)))), order=1,
                    modes=["rev"])
        check_grads(lambda d, b: linalg.tridiagonal_solve(0.3 * d, d + 4.0, -0.2 * d, b),
                    (fnp.asarray(A[0]), fnp.asarray(A[:, :2])), order=1, modes=["rev"])
        check_grads(lambda m: linalg.qr(m, pivoting=True)[:2], (fnp.asarray(TALL),),
                    order=1, modes=["rev"])
        check_grads(lambda r, w: linalg.cholesky_update(r, w),
                    (fnp.asarray(np.linalg.cholesky(SPD).T), fnp.asarray(A[1])), order=1,
                    modes=["rev"])


def test_jit_and_vmap():
    from nanofn.lax import linalg
    batch = np.stack([A, A.T + np.eye(4)]).astype(np.float32)
    got = nanofn.vmap(lambda m: linalg.hessenberg(m)[0])(batch)
    np.testing.assert_allclose(got, linalg.hessenberg(batch)[0], atol=1e-5)
    np.testing.assert_allclose(nanofn.jit(lambda m: linalg.lu(m)[0])(batch[0]),
                               linalg.lu(batch[0])[0], atol=1e-6)


def test_bad_arguments_are_named():
    from nanofn.lax import linalg
    with pytest.raises(ValueError, match="cholesky: x must be a square"):
        linalg.cholesky(np.ones((2, 3)))
    with pytest.raises(ValueError, match="triangular_solve: b of shape"):
        linalg.triangular_solve(np.eye(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match="lu_pivots_to_permutation"):
        linalg.lu_pivots_to_permutation(np.array([0.5]), 2)
    with pytest.raises(NotImplementedError, match="qr: complex"):
        linalg.qr(np.eye(2) * 1j, pivoting=True)
