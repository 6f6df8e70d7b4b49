"""nanofn.scipy.sparse.linalg.gmres: when it stops. As JAX's, the restarts end once the
preconditioned residual |M (b - A x)| is at most max(tol |b|, atol) (a bound on the
unpreconditioned b), and the 'incremental' method ends a cycle early once its
least-squares residual (tracked by Givens rotations) is below the bound scaled to the
preconditioned problem."""

from __future__ import annotations

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn.scipy.sparse.linalg import gmres


def _system(complex_=False, n=6, seed=3):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n)) + np.diag(np.linspace(3.0, 8.0, n))
    b = rng.normal(size=n)
    if complex_:
        a = a + 1j * rng.normal(size=(n, n))
        b = b + 1j * rng.normal(size=n)
    return a, b


def _precond_residual(a, b, m, x):
    return np.linalg.norm(m @ (b - a @ np.asarray(x)))


@pytest.mark.parametrize("tol,restart", [(1e-3, 2), (1e-6, 3)])
def test_restarts_stop_on_the_preconditioned_residual(tol, restart):
    a, b = _system()
    m = 0.01 * np.diag(1 / np.diag(a))  # shrinks residuals a hundredfold
    x = np.asarray(gmres(a, b, tol=tol, restart=restart, M=m)[0])
    bound = tol * np.linalg.norm(b)
    # the first cycle count whose preconditioned residual is within the bound
    cycles = next(k for k in range(1, 60) if _precond_residual(
        a, b, m, gmres(a, b, tol=0.0, restart=restart, M=m, maxiter=k)[0]) <= bound)
    np.testing.assert_allclose(x, np.asarray(gmres(a, b, tol=0.0, restart=restart, M=m,
                                                   maxiter=cycles)[0]), rtol=1e-12)
    # ... which leaves the true residual above the bound: the preconditioner shrank it
    assert np.linalg.norm(b - a @ x) > bound


def test_matches_jax_recorded_with_a_shrinking_preconditioner():
    # jax.scipy.sparse.linalg.gmres (JAX 0.10, x64) on _system() with M = 0.01 D^-1
    want = {(1e-3, 2): [-0.4614747482964005, 0.12958532820079224, -0.2806394529324216,
                        -0.1540590676673866, 0.05694482789288582, 0.0780313992110747],
            (1e-6, 3): [-0.5077346517180711, 0.07088451696711134, -0.2893477031821653,
                        -0.15551993087510138, 0.08775685268627599, 0.07021099407462875]}
    a, b = _system()
    m = 0.01 * np.diag(1 / np.diag(a))
    for (tol, restart), x in want.items():
        for method in ("batched", "incremental"):
            got = gmres(a, b, tol=tol, restart=restart, M=m, solve_method=method)[0]
            np.testing.assert_allclose(np.asarray(got), x, rtol=1e-10)


@pytest.mark.parametrize("complex_", [False, True])
def test_incremental_ends_a_cycle_early(complex_):
    n = 8
    a, b = _system(complex_, n=n, seed=5)
    tol = 0.05
    bound = tol * np.linalg.norm(b)
    x = np.asarray(gmres(a, b, tol=tol, restart=n, maxiter=1,
                         solve_method="incremental")[0])
    full = np.asarray(gmres(a, b, tol=tol, restart=n, maxiter=1)[0])
    np.testing.assert_allclose(full, np.linalg.solve(a, b), rtol=1e-8)  # all n steps
    # the incremental cycle is the batched one of the smallest Krylov dimension that
    # reaches the bound
    steps = next(k for k in range(1, n + 1) if np.linalg.norm(
        b - a @ np.asarray(gmres(a, b, tol=0.0, restart=k, maxiter=1)[0])) <= bound)
    assert steps < n
    want = np.asarray(gmres(a, b, tol=0.0, restart=steps, maxiter=1)[0])
    np.testing.assert_allclose(x, want, rtol=1e-10, atol=1e-12)
    assert np.linalg.norm(b - a @ x) <= bound


def test_incremental_under_jit_vmap_and_grad():
    a, b = _system(n=8, seed=5)
    solve = nanofn.jit(lambda r: gmres(a, r, tol=1e-10, restart=4,
                                       solve_method="incremental")[0])
    rhs = np.stack([b, -2 * b, b[::-1]])
    np.testing.assert_allclose(np.asarray(nanofn.vmap(solve)(rhs)),
                               np.linalg.solve(a, rhs.T).T, rtol=1e-8)
    ct = np.linspace(-1.0, 1.0, 8)
    g = nanofn.grad(lambda r: fnp.sum(ct * solve(r)))(b)
    np.testing.assert_allclose(np.asarray(g), np.linalg.solve(a.T, ct), rtol=1e-7)


def test_float32_with_an_unreachable_tolerance_stops_at_maxiter():
    a, b = _system()
    x = gmres(a.astype(np.float32), b.astype(np.float32), tol=1e-12, maxiter=3)[0]
    assert x.dtype == np.float32
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b), rtol=1e-4)
