"""nanofn.scipy.sparse.linalg (cg, bicgstab, gmres): partial iterations against recorded JAX
output, converged solutions against numpy on hypothesis-drawn systems, pytrees,
preconditioners, derivatives by implicit differentiation (against finite differences and
the analytic `A^-1` rules), and jit/vmap."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import scipy.sparse.linalg as ssl
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.scipy.sparse import linalg as L
from nanofn.testing import check_grads

from sparse_solver_cases import CASES, system  # tools/reference (see tests/conftest.py)

with open(os.path.join(os.path.dirname(__file__), "data", "sparse_solvers.json")) as _fh:
    RECORDED = json.load(_fh)["cases"]

SOLVERS = {"cg": L.cg, "bicgstab": L.bicgstab, "gmres": L.gmres}


@pytest.mark.parametrize("name", sorted(CASES))
def test_partial_iterations_match_jax(name):
    solver, kind, kwargs = CASES[name]
    a, b, m = system(kind)
    kwargs = dict(kwargs, M=m if kwargs.get("M") else None)
    want = np.asarray(RECORDED[name]["real"]) + 1j * np.asarray(RECORDED[name]["imag"])
    got = np.asarray(SOLVERS[solver](a, b, **kwargs)[0])
    assert got.dtype == b.dtype
    np.testing.assert_allclose(got, want if np.iscomplexobj(b) else want.real, rtol=1e-9,
                               atol=1e-12)


def _system(data, spd):
    n = data.draw(st.integers(1, 8), label="n")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    q = rng.normal(size=(n, n))
    a = q @ q.T + n * np.eye(n) if spd else q + 3 * np.sqrt(n) * np.eye(n)
    return a, rng.normal(size=n)


@given(st.data(), st.sampled_from(sorted(SOLVERS)))
def test_converged_solutions_match_numpy_and_scipy(data, solver):
    a, b = _system(data, spd=solver == "cg")
    x, info = SOLVERS[solver](a, b, tol=1e-11)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b), rtol=1e-8, atol=1e-9)
    if solver == "gmres":
        assert int(info) == 0
        np.testing.assert_allclose(np.asarray(x), ssl.gmres(a, b, rtol=1e-11)[0], rtol=1e-7,
                                   atol=1e-8)
    else:
        assert info is None  # as JAX's
    x0 = np.linalg.solve(a, b)  # starting at the answer: nothing to do
    np.testing.assert_allclose(np.asarray(SOLVERS[solver](a, b, x0=x0, maxiter=0)[0]), x0)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_pytrees_functions_and_preconditioners(solver):
    a, b, m = system("spd")
    n = len(b)
    tree_b = {"w": b[:4].reshape(2, 2), "v": b[4:]}

    def matvec(t):  # A on the pytree, as a function
        y = a @ fnp.concatenate([fnp.ravel(t["w"]), t["v"]])
        return {"w": fnp.reshape(y[:4], (2, 2)), "v": y[4:]}
    x, _ = SOLVERS[solver](matvec, tree_b, tol=1e-12)
    flat = np.concatenate([np.ravel(x["w"]), x["v"]])
    np.testing.assert_allclose(flat, np.linalg.solve(a, b), rtol=1e-9)
    assert x["w"].shape == (2, 2) and x["v"].shape == (n - 4,)
    # a preconditioner changes the path, not the answer
    xm, _ = SOLVERS[solver](a, b, tol=1e-12, M=lambda r: fnp.asarray(np.diag(m)) * r)
    np.testing.assert_allclose(np.asarray(xm), np.linalg.solve(a, b), rtol=1e-9)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_gradients_are_implicit_and_match_finite_differences(solver):
    a, b, _ = system("spd" if solver == "cg" else "general")
    ct = np.linspace(-1.0, 1.0, len(b))

    def loss(a, b):
        return fnp.sum(ct * SOLVERS[solver](lambda v: a @ v, b, tol=1e-13)[0])
    ga, gb = nanofn.grad(loss, (0, 1))(a, b)
    # d(ct . A^-1 b)/db = A^-T ct and d/dA = -(A^-T ct) x^T
    lam = np.linalg.solve(a.T, ct)
    np.testing.assert_allclose(np.asarray(gb), lam, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(ga), -np.outer(lam, np.linalg.solve(a, b)),
                               rtol=1e-7, atol=1e-10)
    check_grads(lambda b: SOLVERS[solver](a, b, tol=1e-13)[0], (b,), order=1, modes=("rev",))
    # under jit (the starting guess is made from the traced b) and vmap
    jitted = nanofn.jit(nanofn.grad(loss, (0, 1)))(a, b)
    np.testing.assert_allclose(np.asarray(jitted[1]), np.asarray(gb), rtol=1e-8)
    rhs = np.stack([b, 2 * b, b[::-1]])
    batched = nanofn.vmap(lambda r: SOLVERS[solver](a, r, tol=1e-12)[0])(rhs)
    np.testing.assert_allclose(np.asarray(batched), np.linalg.solve(a, rhs.T).T, rtol=1e-8)


def test_complex_and_float32():
    a, b, _ = system("complex general")
    for solver in ("bicgstab", "gmres"):
        x = SOLVERS[solver](a, b, tol=1e-12)[0]
        assert x.dtype == np.complex128
        np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b), rtol=1e-9)
    h, hb, _ = system("complex spd")
    np.testing.assert_allclose(np.asarray(L.cg(h, hb, tol=1e-12)[0]), np.linalg.solve(h, hb),
                               rtol=1e-9)
    s, sb, _ = system("spd")
    x32 = L.cg(s.astype(np.float32), sb.astype(np.float32))[0]
    assert x32.dtype == np.float32
    np.testing.assert_allclose(np.asarray(x32), np.linalg.solve(s, sb), rtol=1e-4)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"cg: the linear operator must be a square .*\(2, 3\)"):
        L.cg(np.ones((2, 3)), np.ones(2))
    with pytest.raises(TypeError, match="gmres: the linear operator must be a function"):
        L.gmres("A", np.ones(2))
    with pytest.raises(ValueError, match="bicgstab: x0 and b must have the same tree"):
        L.bicgstab(lambda v: v, np.ones(2), x0={"a": np.ones(2)})
    with pytest.raises(ValueError, match="cg: b must be an array or a pytree of arrays"):
        L.cg(lambda v: v, None)
    with pytest.raises(ValueError, match="gmres: cannot make an array from a ragged"):
        L.gmres(np.eye(2), [[1.0], [2.0, 3.0]])  # a matrix acts on one array
    with pytest.raises(TypeError, match="cg: tol must be a real number, got 'x'"):
        L.cg(np.eye(2), np.ones(2), tol="x")
    # integers solve as floats, and a float64 operator on float32 vectors in float64
    for solver in SOLVERS.values():
        x = solver(2 * np.eye(2), np.ones(2, np.int32))[0]
        assert x.dtype == np.float64 and np.allclose(np.asarray(x), 0.5)
        assert solver(lambda v: 2 * v, np.ones(2, np.int32))[0].dtype == np.float32
    with pytest.raises(ValueError, match="the same shapes"):
        L.cg(np.eye(2), np.ones(2), x0=np.ones(3))
    with pytest.raises(ValueError, match=r"cg: the linear operator must map x to a value like "
                                         r"b .*shapes \[\(3,\)\]\); it gave .*\[\(6,\)\]"):
        L.cg(lambda v: fnp.concatenate([v, v]), np.ones(3))
    with pytest.raises(ValueError, match="gmres: the preconditioner M must map x"):
        L.gmres(np.eye(3), np.ones(3), M=lambda v: v[:2])
    with pytest.raises(ValueError, match="solve_method must be 'batched' or 'incremental'"):
        L.gmres(np.eye(2), np.ones(2), solve_method="qr")
    # both of JAX's solve methods are accepted and solve to the tolerance (the
    # incremental one may end a cycle sooner: tests/scipy/test_sparse_gmres_stopping.py)
    a, b, _ = system("general")
    for method in ("batched", "incremental"):
        x = np.asarray(L.gmres(a, b, solve_method=method)[0])
        assert np.linalg.norm(b - a @ x) <= 1e-5 * np.linalg.norm(b)
