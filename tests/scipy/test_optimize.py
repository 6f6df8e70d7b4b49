"""nanofn.scipy.optimize.minimize against scipy.optimize.minimize(method="BFGS") and
against jax.scipy.optimize.minimize's results recorded by tools/reference/record_sciopt.py."""

import inspect
import json
import os

import numpy as np
import pytest
import scipy.optimize

import nanofn
import nanofn.numpy as fnp
import nanofn.scipy
from nanofn.scipy.optimize import OptimizeResults, minimize
from nanofn.testing import check_grads

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference")
from sciopt_cases import MINIMIZE  # noqa: E402

with open(os.path.join(HERE, "sciopt_jax.json")) as fh:
    RECORD = json.load(fh)
JAX = RECORD["minimize"]

LBFGS = "l-bfgs-experimental-do-not-rely-on-this"


@pytest.mark.parametrize("path", sorted(RECORD["signatures"]))
def test_signatures_match_jax(path):
    # optimize.minimize, integrate.trapezoid, cluster.vq.vq: names, kinds, defaults.
    obj = nanofn.scipy
    for part in path.split("."):
        obj = getattr(obj, part)
    got = [[p.name, str(p.kind), None if p.default is inspect.Parameter.empty
            else repr(p.default)] for p in inspect.signature(obj).parameters.values()]
    assert got == RECORD["signatures"][path]


def _run(name, method="BFGS", jit=False):
    make, x0, args = MINIMIZE[name]
    args = tuple(fnp.asarray(a) for a in args)

    def solve(x0, *args):
        return minimize(make(fnp), x0, args, method=method)

    return (nanofn.jit(solve) if jit else solve)(fnp.asarray(x0), *args)


def _scipy(name):
    make, x0, args = MINIMIZE[name]
    return scipy.optimize.minimize(make(np), x0, args, method="BFGS", jac="3-point",
                                   options={"gtol": 1e-8})


@pytest.mark.parametrize("name", sorted(MINIMIZE))
@pytest.mark.parametrize("method", ["BFGS", LBFGS])
def test_converges_to_scipys_minimum(name, method):
    res = _run(name, method)
    want = _scipy(name)
    assert bool(res.success) and int(res.status) == 0
    np.testing.assert_allclose(np.asarray(res.x), want.x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(res.fun), want.fun, atol=1e-9)
    assert np.max(np.abs(np.asarray(res.jac))) < 1e-5
    assert int(res.nit) > 0 and int(res.nfev) >= int(res.nit)


def test_known_minima():
    np.testing.assert_allclose(np.asarray(_run("rosen4_zeros").x), np.ones(4), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(_run("rosen2_classic").x), np.ones(2), rtol=1e-6)
    _, _, (A, b) = MINIMIZE["quadratic3"]
    res = _run("quadratic3")
    np.testing.assert_allclose(np.asarray(res.x), np.linalg.solve(A, b), rtol=1e-6)
    # After a few exact-ish line searches on a quadratic, BFGS's estimate is A^-1.
    np.testing.assert_allclose(np.asarray(res.hess_inv), np.linalg.inv(A), rtol=1e-3,
                               atol=1e-4)


@pytest.mark.parametrize("name", [n for n in sorted(MINIMIZE) if JAX[n]["success"]])
def test_matches_jax_where_jax_converges(name):
    res = _run(name, jit=True)
    want = JAX[name]
    assert isinstance(res, OptimizeResults)
    np.testing.assert_allclose(np.asarray(res.x), want["x"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(float(res.fun), want["fun"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(np.asarray(res.hess_inv), want["hess_inv"], rtol=1e-5,
                               atol=1e-7)
    # The same line search, step for step: the same counts.
    assert (int(res.nit), int(res.nfev), int(res.njev), int(res.status)) == (
        want["nit"], want["nfev"], want["njev"], want["status"])


def test_recovers_where_jaxs_line_search_gives_up():
    # JAX stops this classic start after a failed zoom (status 3); nanofn's zoom tests the
    # bracket's width whichever way it points and goes on to the minimum.
    assert not JAX["rosen2_classic"]["success"] and JAX["rosen2_classic"]["status"] == 3
    res = _run("rosen2_classic", jit=True)
    assert bool(res.success)
    np.testing.assert_allclose(np.asarray(res.x), [1.0, 1.0], rtol=1e-6)


def test_a_failed_line_search_leaves_a_consistent_result():
    # JAX's issue-4594 quadratic in float32: the line search runs out of steps. JAX then
    # reports the failed trial step as x; nanofn keeps the point fun and jac belong to.
    A = fnp.eye(2, dtype=fnp.float32) * 1e4

    def f(x):
        return fnp.mean((A @ x) ** 2)

    res = minimize(f, fnp.ones(2, dtype=fnp.float32), method="BFGS")
    assert not bool(res.success) and int(res.status) == 5
    np.testing.assert_allclose(float(res.fun), float(f(res.x)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(res.jac), np.asarray(nanofn.grad(f)(res.x)),
                               rtol=1e-6)
    assert float(res.fun) < float(f(fnp.ones(2, dtype=fnp.float32)))


def test_result_types_and_float32():
    res = minimize(lambda x: fnp.sum((x - 2.0) ** 2), fnp.zeros(3, dtype=fnp.float32),
                   method="bfgs")
    assert res.x.dtype == fnp.float32 and res.hess_inv.shape == (3, 3)
    assert res.status.dtype == fnp.int32 and res.success.dtype == fnp.bool_
    np.testing.assert_allclose(np.asarray(res.x), [2.0, 2.0, 2.0], rtol=1e-6)
    res = minimize(lambda x: fnp.sum((x - 2.0) ** 2), fnp.zeros(3), method=LBFGS)
    assert res.hess_inv is None


def test_options_and_iteration_limit():
    f = MINIMIZE["rosen4_zeros"][0](fnp)
    res = minimize(f, fnp.zeros(4, dtype=fnp.float64), method="BFGS", options={"maxiter": 3})
    assert int(res.nit) == 3 and int(res.status) == 1 and not bool(res.success)
    loose = minimize(f, fnp.zeros(4, dtype=fnp.float64), method="BFGS",
                     options={"gtol": 1e-2})
    assert bool(loose.success) and int(loose.nit) < int(_run("rosen4_zeros").nit)


def test_bad_input_errors():
    f = lambda x: fnp.sum(x ** 2)  # noqa: E731
    with pytest.raises(TypeError, match="args must be a tuple"):
        minimize(f, fnp.zeros(2), [1.0], method="BFGS")
    with pytest.raises(ValueError, match="method 'Nelder-Mead' not recognized"):
        minimize(f, fnp.zeros(2), method="Nelder-Mead")
    with pytest.raises(ValueError, match=r"x0 must be 1-D, got shape \(2, 2\)"):
        minimize(f, fnp.zeros((2, 2)), method="BFGS")
    with pytest.raises(TypeError, match="unknown options"):
        minimize(f, fnp.zeros(2), method="BFGS", options={"maxfev": 3})


def test_gradients_through_the_minimum():
    # JAX cannot differentiate minimize; nanofn differentiates x* (and fun) with respect
    # to args and closed-over arrays by the implicit function theorem.
    _, _, (A, b) = MINIMIZE["quadratic3"]
    f = MINIMIZE["quadratic3"][0](fnp)
    tight = {"gtol": 1e-10}

    def xstar_sum(A, b):
        x0 = fnp.zeros(3, dtype=fnp.float64)
        return fnp.sum(minimize(f, x0, (A, b), method="BFGS", options=tight).x)

    u = np.linalg.solve(A, np.ones(3))          # x* = A^-1 b, A symmetric
    gA, gb = nanofn.jit(nanofn.grad(xstar_sum, argnums=(0, 1)))(fnp.asarray(A),
                                                                fnp.asarray(b))
    np.testing.assert_allclose(np.asarray(gb), u, rtol=1e-8)
    outer = -np.outer(u, np.linalg.solve(A, b))  # f sees only A's symmetric part
    np.testing.assert_allclose(np.asarray(gA), (outer + outer.T) / 2, rtol=1e-7, atol=1e-10)
    check_grads(lambda b: xstar_sum(fnp.asarray(A), b), (fnp.asarray(b),), order=1,
                modes=("rev",), atol=1e-5, rtol=1e-5)

    # A closed-over parameter of a nonlinear problem: x*(a) = (a, a^2); fun* = 0.
    def rosen_a(a):
        res = minimize(lambda x: (a - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2,
                       fnp.zeros(2, dtype=fnp.float64), method="BFGS", options=tight)
        return res.x[0] + res.x[1], res.fun

    (ga, gfun) = nanofn.grad(lambda a: rosen_a(a)[0])(1.5), nanofn.grad(
        lambda a: rosen_a(a)[1])(1.5)
    np.testing.assert_allclose(float(ga), 1 + 2 * 1.5, rtol=1e-6)
    assert abs(float(gfun)) < 1e-6


def test_vmap_over_args_matches_one_at_a_time():
    def f(x, c):
        return fnp.sum((x - c) ** 2) + fnp.sum(x ** 4)

    cs = fnp.asarray(np.arange(6.0).reshape(3, 2))
    x0 = fnp.zeros(2, dtype=fnp.float64)
    res = nanofn.vmap(lambda c: minimize(f, x0, (c,), method="BFGS"))(cs)
    for i in range(3):
        one = minimize(f, x0, (cs[i],), method="BFGS")
        np.testing.assert_allclose(np.asarray(res.x[i]), np.asarray(one.x), rtol=1e-12)
        assert int(res.nit[i]) == int(one.nit) and bool(res.success[i])
