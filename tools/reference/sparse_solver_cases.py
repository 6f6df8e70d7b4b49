"""The Krylov solver cases: small linear systems and solver settings, written once for both
libraries. Few iterations (`maxiter`) on purpose: a converged solution says little about
the iteration, a partial one pins it down.

Each case is `name -> (solver, kind, kwargs)`: `solver` names a function of
`scipy.sparse.linalg` (`cg`, `bicgstab`, `gmres`), `kind` the system `system(kind)` builds
(float64 or complex128, fixed seed). `record_sparse_solvers.py` runs them with JAX into
`sparse_solvers.json`; `tests/scipy/test_sparse_linalg.py` runs them with nanofn.
"""

import numpy as np

N = 10


def system(kind):
    """`(A, b, M)`: a matrix of the kind asked for, a right-hand side and a Jacobi
    preconditioner (the inverse of A's diagonal)."""
    rng = np.random.default_rng(7)
    q = rng.normal(size=(N, N))
    b = rng.normal(size=N)
    if kind.startswith("complex"):
        q = q + 1j * rng.normal(size=(N, N))
        b = b + 1j * rng.normal(size=N)
    if kind.endswith("spd"):  # symmetric (Hermitian) positive definite, badly scaled
        a = q @ q.conj().T + np.diag(np.linspace(1.0, 30.0, N))
    else:  # nonsymmetric, diagonally dominant enough to converge
        a = q + np.diag(np.linspace(4.0, 12.0, N))
    return a, b, np.diag(1.0 / np.diag(a))


CASES = {
    "cg/2": ("cg", "spd", {"maxiter": 2}),
    "cg/5": ("cg", "spd", {"maxiter": 5}),
    "cg/M/3": ("cg", "spd", {"maxiter": 3, "M": True}),
    "cg/tol": ("cg", "spd", {"tol": 1e-3}),
    "cg/complex/4": ("cg", "complex spd", {"maxiter": 4}),
    "bicgstab/2": ("bicgstab", "general", {"maxiter": 2}),
    "bicgstab/M/3": ("bicgstab", "general", {"maxiter": 3, "M": True}),
    "bicgstab/complex/3": ("bicgstab", "complex general", {"maxiter": 3}),
    "gmres/1": ("gmres", "general", {"maxiter": 1, "restart": 4}),
    "gmres/restart1/6": ("gmres", "general", {"maxiter": 6, "restart": 1}),
    "gmres/M/2": ("gmres", "general", {"maxiter": 2, "restart": 3, "M": True}),
    "gmres/complex/1": ("gmres", "complex general", {"maxiter": 1, "restart": 5}),
    "gmres/full": ("gmres", "general", {"tol": 1e-12}),
}
