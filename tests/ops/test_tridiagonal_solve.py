"""lax.linalg.tridiagonal_solve: Gaussian elimination with partial pivoting along the
diagonal (LAPACK's gtsv, as JAX on CPU), against a dense solve; its JVP and VJP (both
tridiagonal solves, the VJP with A^T) against finite differences, under jit and vmap.
JAX's values and gradients for the same systems are checked in tests/ops/test_lax_linalg.py."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nanofn
from nanofn.lax import linalg
from nanofn.testing import check_grads


def dense(dl, d, du):
    m = d.shape[-1]
    a = np.zeros(d.shape + (m,), d.dtype)
    i = np.arange(m)
    a[..., i, i] = d
    a[..., i[1:], i[:-1]] = dl[..., 1:]
    a[..., i[:-1], i[1:]] = du[..., :-1]
    return a


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(1, 3), batch=st.sampled_from([(), (3,), (2, 2)]),
       seed=st.integers(0, 2**16))
def test_matches_a_dense_solve(m, k, batch, seed):
    rng = np.random.default_rng(seed)
    dl, d, du = (rng.standard_normal(batch + (m,)) for _ in range(3))
    b = rng.standard_normal(batch + (m, k))
    want = np.linalg.solve(dense(dl, d, du), b)
    got = np.asarray(linalg.tridiagonal_solve(dl, d, du, b))
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8 * np.abs(want).max())


def test_pivots_where_the_diagonal_is_zero():
    # [[0, 1], [1, 0]] x = [2, 3]: without row interchanges the first pivot is 0
    x = linalg.tridiagonal_solve(np.array([0.0, 1.0]), np.zeros(2), np.array([1.0, 0.0]),
                                 np.array([[2.0], [3.0]]))
    np.testing.assert_array_equal(np.asarray(x), [[3.0], [2.0]])
    # a zero diagonal all the way down, well conditioned only with pivoting
    m = 6
    d, off = np.zeros(m), np.ones(m)
    b = np.arange(1.0, m + 1)[:, None]
    np.testing.assert_allclose(np.asarray(linalg.tridiagonal_solve(off, d, off, b)),
                               np.linalg.solve(dense(off, d, off), b), atol=1e-12)


def test_a_singular_system_gives_non_finite_values_without_warnings():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = linalg.tridiagonal_solve(np.zeros(3), np.zeros(3), np.zeros(3), np.ones((3, 1)))
    assert not np.isfinite(np.asarray(x)).all()


@pytest.mark.parametrize("m", [1, 2, 5])
def test_gradients_in_every_argument(m):
    rng = np.random.default_rng(m)
    dl, du = (0.3 * rng.standard_normal((2, m)) for _ in range(2))
    d = rng.standard_normal((2, m)) + 3.0
    b = rng.standard_normal((2, m, 2))
    check_grads(linalg.tridiagonal_solve, (dl, d, du, b), order=2, modes=("fwd", "rev"))


def test_unused_corner_entries_get_no_gradient():
    rng = np.random.default_rng(0)
    dl, d, du = rng.standard_normal(4), rng.standard_normal(4) + 3, rng.standard_normal(4)
    b = rng.standard_normal((4, 1))
    g_dl, _, g_du = nanofn.grad(
        lambda *a: nanofn.numpy.sum(linalg.tridiagonal_solve(*a, b) ** 2),
        argnums=(0, 1, 2))(dl, d, du)
    assert float(g_dl[0]) == 0.0 and float(g_du[-1]) == 0.0


def test_jit_and_vmap_agree_with_one_system_at_a_time():
    rng = np.random.default_rng(3)
    dl, d, du = (rng.standard_normal((4, 6)) for _ in range(3))
    b = rng.standard_normal((6, 2))
    batched = nanofn.jit(nanofn.vmap(linalg.tridiagonal_solve, in_axes=(0, 0, 0, None)))
    want = np.stack([np.asarray(linalg.tridiagonal_solve(dl[i], d[i], du[i], b))
                     for i in range(4)])
    np.testing.assert_allclose(np.asarray(batched(dl, d, du, b)), want, rtol=1e-12)
    with pytest.raises(ValueError, match=r"tridiagonal_solve: .*\(\.\.\., m, k\)"):
        linalg.tridiagonal_solve(dl, d, du, b)
