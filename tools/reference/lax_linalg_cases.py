"""The lax.linalg calls compared with JAX: name -> call(linalg_module) returning an array
or a tuple/list of arrays. Shared by test_lax_linalg.py and record_lax_linalg.py (which
runs them under JAX with x64 enabled)."""

import numpy as np

_rng = np.random.default_rng(0)
A = _rng.standard_normal((4, 4))
SPD = A @ A.T + 4 * np.eye(4)
SYM = A + A.T
TALL = _rng.standard_normal((5, 3))
BATCH = _rng.standard_normal((2, 3, 3))
B = _rng.standard_normal((4, 2))
LOW = np.tril(A) + 3 * np.eye(4)
R_UP = np.linalg.cholesky(SPD).T
W = _rng.standard_normal(4)
PIVOTS = np.array([2, 3, 3, 3], np.int32)
DL = np.array([0.0, 1.0, -0.5, 2.0])
D = np.array([4.0, 3.0, 5.0, 4.5])
DU = np.array([1.0, 0.3, 0.7, 0.0])

CASES = {
    "cholesky": lambda L: L.cholesky(SPD),
    "cholesky_update": lambda L: L.cholesky_update(R_UP, W),
    "lu": lambda L: L.lu(A),
    "lu_tall": lambda L: L.lu(TALL),
    "lu_pivots_to_permutation": lambda L: L.lu_pivots_to_permutation(PIVOTS, 6),
    "hessenberg": lambda L: L.hessenberg(A),
    "hessenberg_batch": lambda L: L.hessenberg(BATCH),
    "tridiagonal_lower": lambda L: L.tridiagonal(SYM),
    "tridiagonal_upper": lambda L: L.tridiagonal(SYM, lower=False),
    "householder_product": lambda L: L.householder_product(*L.hessenberg(A)),
    "householder_product_tall": lambda L: L.householder_product(TALL, np.array([1.2, 0.4])),
    "ormqr_left": lambda L: L.ormqr(TALL, np.array([1.2, 0.4, 1.1]),
                                    np.arange(10.0).reshape(5, 2)),
    "ormqr_left_t": lambda L: L.ormqr(TALL, np.array([1.2, 0.4, 1.1]),
                                      np.arange(10.0).reshape(5, 2), transpose=True),
    "ormqr_right": lambda L: L.ormqr(TALL, np.array([1.2, 0.4, 1.1]),
                                     np.arange(10.0).reshape(2, 5), left=False),
    "ormqr_right_t": lambda L: L.ormqr(TALL, np.array([1.2, 0.4, 1.1]),
                                       np.arange(10.0).reshape(2, 5), left=False,
                                       transpose=True),
    "triangular_solve_right": lambda L: L.triangular_solve(LOW, B.T, lower=True),
    "triangular_solve_left_t": lambda L: L.triangular_solve(LOW, B, left_side=True,
                                                            lower=True, transpose_a=True),
    "triangular_solve_unit": lambda L: L.triangular_solve(LOW.T, B, left_side=True,
                                                          unit_diagonal=True),
    "tridiagonal_solve": lambda L: L.tridiagonal_solve(DL, D, DU, B),
    "symmetric_product": lambda L: L.symmetric_product(TALL, np.eye(5), alpha=2.0,
                                                       beta=0.5, symmetrize_output=True),
    "qr_pivoting": lambda L: L.qr(TALL, pivoting=True),
    "qr_pivoting_wide": lambda L: L.qr(TALL.T, pivoting=True, full_matrices=False),
    "qdwh": lambda L: L.qdwh(TALL),
    "qdwh_ill_conditioned": lambda L: L.qdwh(TALL @ np.diag([1.0, 1e-3, 1e-6])),
    "svd_s": lambda L: L.svd(TALL, compute_uv=False),
    "eigh_w": lambda L: L.eigh(SYM)[1],
    "eig_w": lambda L: L.eig(SYM + np.triu(A), compute_left_eigenvectors=False,
                             compute_right_eigenvectors=False)[0],
}
