"""custom_root and custom_linear_solve: the solver is never differentiated, the gradients
come from the implicit function theorem and must equal those of a differentiable closed
form (finite differences through `check_grads` on that form)."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import lax

RNG = np.random.default_rng(0)
A = RNG.normal(size=(3, 3)) + 3 * np.eye(3)  # well conditioned, not symmetric
SPD = A @ A.T
B = RNG.normal(size=3)


def _dense_solve(matvec, b):
    """Solve by materialising the matrix (columns = matvec of unit vectors)."""
    cols = [matvec(e) for e in fnp.eye(b.shape[0], dtype=fnp.result_type(b))]
    return fnp.linalg.solve(fnp.stack(cols, axis=1), b)


def _lsolve(a, b, symmetric=False):
    return lax.custom_linear_solve(lambda x: a @ x, b, lambda mv, rhs: _dense_solve(mv, rhs),
                                   transpose_solve=lambda vm, rhs: _dense_solve(vm, rhs),
                                   symmetric=symmetric)


@pytest.mark.parametrize("symmetric", [False, True])
def test_linear_solve_gradients_match_linalg_solve(symmetric):
    a = SPD if symmetric else A
    loss = lambda a, b: fnp.sum(fnp.sin(_lsolve(a, b, symmetric)))
    want = lambda a, b: fnp.sum(fnp.sin(fnp.linalg.solve(a, b)))
    np.testing.assert_allclose(loss(a, B), want(a, B), rtol=1e-12)
    for got, ref in zip(nanofn.grad(loss, argnums=(0, 1))(a, B),
                        nanofn.grad(want, argnums=(0, 1))(a, B)):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    jitted = nanofn.jit(nanofn.grad(loss, argnums=(0, 1)))(a, B)
    np.testing.assert_allclose(jitted[0], nanofn.grad(want)(a, B), rtol=1e-10, atol=1e-12)


def test_linear_solve_without_a_transpose_solve_is_a_clear_error():
    f = lambda b: fnp.sum(lax.custom_linear_solve(lambda x: A @ x, b, _dense_solve))
    np.testing.assert_allclose(f(B), np.sum(np.linalg.solve(A, B)), rtol=1e-12)
    with pytest.raises(TypeError, match="transpose_solve"):
        nanofn.grad(f)(B)


@pytest.mark.parametrize("symmetric", [False, True])
def test_linear_solve_forward_mode_matches_linalg_solve(symmetric):
    # jvp / jacfwd: A x_dot = b_dot - A_dot x, one more solve, no transpose_solve needed
    a = SPD if symmetric else A
    solve = lambda a, b: lax.custom_linear_solve(lambda x: a @ x, b, _dense_solve,
                                                 symmetric=symmetric)
    ta, tb = RNG.normal(size=a.shape), RNG.normal(size=B.shape)
    got = nanofn.jvp(solve, (a, B), (ta, tb))
    want = nanofn.jvp(fnp.linalg.solve, (a, B), (ta, tb))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    for g, w in zip(nanofn.jacfwd(solve, argnums=(0, 1))(a, B),
                    nanofn.jacfwd(fnp.linalg.solve, argnums=(0, 1))(a, B)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    batched = nanofn.vmap(lambda t: nanofn.jvp(lambda b: solve(a, b), (B,), (t,))[1])(
        np.stack([tb, 2 * tb]))
    np.testing.assert_allclose(batched[1], 2 * batched[0], rtol=1e-12)
    # reverse mode goes through the same rule: the transpose solve, never the iterations
    loss = lambda a, b: fnp.sum(fnp.sin(_lsolve(a, b, symmetric)))
    nanofn.testing.check_grads(loss, (a, B), order=1, modes=("fwd", "rev"))


def test_linear_solve_with_aux_in_forward_mode():
    def solve_aux(mv, rhs):
        return _dense_solve(mv, rhs), fnp.int32(7)
    f = lambda b: lax.custom_linear_solve(lambda x: A @ x, b, solve_aux, has_aux=True)
    (x, aux), (x_dot, aux_dot) = nanofn.jvp(f, (B,), (np.ones_like(B),))
    np.testing.assert_allclose(x_dot, np.linalg.solve(A, np.ones_like(B)), rtol=1e-12)
    assert int(aux) == 7 and aux_dot.dtype == nanofn.dtypes.float0


def _newton(f, x):
    for _ in range(40):
        jac = nanofn.jacfwd(f)(x)
        x = x - fnp.linalg.solve(jac, f(x))
    return x


def _root(theta):
    """The root of x^3 + theta * x - c (elementwise, cubic with a unique real root)."""
    return lax.custom_root(lambda x: x ** 3 + theta * x - 1.0, fnp.ones(3), _newton,
                           lambda g, y: _dense_solve(g, y))


def test_root_gradient_matches_the_implicit_function_theorem():
    theta = np.array([0.5, 1.0, 2.0])
    x = np.asarray(_root(theta))
    np.testing.assert_allclose(x ** 3 + theta * x - 1.0, 0.0, atol=1e-12)
    # dx/dtheta = -x / (3 x^2 + theta), elementwise
    np.testing.assert_allclose(nanofn.grad(lambda t: fnp.sum(_root(t)))(theta),
                               -x / (3 * x ** 2 + theta), rtol=1e-10)
    np.testing.assert_allclose(nanofn.jit(nanofn.grad(lambda t: fnp.sum(_root(t))))(theta),
                               -x / (3 * x ** 2 + theta), rtol=1e-10)


def test_root_forward_mode():
    # the implicit rule serves jvp and jacfwd too
    theta = np.array([0.5, 1.0, 2.0])
    x = np.asarray(_root(theta))
    dx = -x / (3 * x ** 2 + theta)
    _, tangent = nanofn.jvp(_root, (theta,), (np.ones(3),))
    np.testing.assert_allclose(tangent, dx, rtol=1e-10)
    np.testing.assert_allclose(nanofn.jacfwd(_root)(theta), np.diag(dx), rtol=1e-10, atol=1e-14)
    nanofn.testing.check_grads(lambda t: fnp.sum(_root(t) ** 2), (theta,), order=1,
                               modes=("fwd", "rev"))
    # grad of grad: the transpose solve is differentiated, the Newton steps are not
    nanofn.testing.check_grads(lambda t: fnp.sum(_root(t) ** 2), (theta,), order=2,
                               modes=("rev",))


def test_root_with_aux_and_vmap():
    def solve(f, x):
        return _newton(f, x), fnp.asarray(40)

    def root(t):
        x, n = lax.custom_root(lambda x: x * x - t, fnp.ones(1), solve,
                               lambda g, y: y / g(fnp.ones(1)), has_aux=True)
        return x[0], n

    ts = np.array([4.0, 9.0, 16.0])
    g = nanofn.vmap(nanofn.grad(lambda t: root(t)[0]))(ts)
    np.testing.assert_allclose(g, 0.5 / np.sqrt(ts), rtol=1e-10)
    assert int(root(4.0)[1]) == 40
