"""jacfwd, jacrev, hessian and linearize: layouts, agreement, analytic values."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import hessian, jacfwd, jacrev, linearize, vmap
from nanofn.tree_util import tree_flatten, tree_structure

RNG = np.random.default_rng(1)


def _arr(*shape, dtype=np.float64):
    return fnp.asarray(RNG.normal(size=shape).astype(dtype))


def _close(a, b, tol=1e-10):
    la, ta = tree_flatten(a)
    lb, tb = tree_flatten(b)
    assert ta == tb, (ta, tb)
    for x, y in zip(la, lb):
        assert np.shape(x) == np.shape(y), (np.shape(x), np.shape(y))
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def pytree_fun(p, x):
    """A function of a dict and an array returning a tuple and a dict."""
    h = fnp.tanh(x @ p["w"] + p["b"])
    return {"out": h * 2.0, "norm": fnp.sum(h * h)}, fnp.sin(x) * p["b"].sum()


PARAMS = {"w": _arr(3, 2), "b": _arr(2)}
X = _arr(4, 3)


def test_jacobian_layout_is_output_tree_over_input_tree():
    jac = jacfwd(pytree_fun, argnums=(0, 1))(PARAMS, X)
    out = pytree_fun(PARAMS, X)
    assert tree_structure(jac[0]["out"]) == tree_structure((PARAMS, X))
    assert jac[0]["out"][0]["w"].shape == (4, 2, 3, 2)
    assert jac[0]["norm"][1].shape == (4, 3)
    assert jac[1][0]["b"].shape == (4, 3, 2)
    assert tree_structure(jac) == tree_structure(out).compose(tree_structure((PARAMS, X)))
    # argnums=int: the inner structure is that argument's own
    jac0 = jacrev(pytree_fun)(PARAMS, X)
    assert set(jac0[0]["out"]) == {"w", "b"} and jac0[0]["out"]["w"].shape == (4, 2, 3, 2)


@pytest.mark.parametrize("argnums", [0, 1, (0, 1), (1, 0)])
def test_jacfwd_equals_jacrev_on_pytrees(argnums):
    _close(jacfwd(pytree_fun, argnums)(PARAMS, X), jacrev(pytree_fun, argnums)(PARAMS, X))


def test_jacobian_matches_finite_differences():
    def f(x):
        return fnp.stack([fnp.sin(x[0]) * x[1], fnp.exp(x[1]) + x[2] ** 2])

    x = np.array([0.3, -0.7, 1.1])
    jac = np.asarray(jacrev(f)(fnp.asarray(x)))
    eps = 1e-6
    num = np.stack([(np.asarray(f(fnp.asarray(x + eps * e))) -
                     np.asarray(f(fnp.asarray(x - eps * e)))) / (2 * eps) for e in np.eye(3)], 1)
    np.testing.assert_allclose(jac, num, rtol=1e-6, atol=1e-8)
    # analytic
    want = np.array([[np.cos(x[0]) * x[1], np.sin(x[0]), 0],
                     [0, np.exp(x[1]), 2 * x[2]]])
    np.testing.assert_allclose(jac, want, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jacfwd(f)(fnp.asarray(x))), want, rtol=1e-12)


@given(n=st.integers(1, 4), m=st.integers(1, 3))
def test_jacobians_of_linear_maps_are_the_matrix(n, m):
    a = RNG.normal(size=(m, n))
    f = lambda x: fnp.asarray(a) @ x  # noqa: E731
    x = fnp.asarray(RNG.normal(size=n))
    np.testing.assert_allclose(np.asarray(jacfwd(f)(x)), a, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jacrev(f)(x)), a, rtol=1e-12)


def test_hessian_analytic():
    a = RNG.normal(size=(3, 3))
    a = a + a.T
    x0 = RNG.normal(size=3)

    def f(x):  # 1/2 x^T A x + sum(sin x): Hessian A - diag(sin x)
        return 0.5 * x @ (fnp.asarray(a) @ x) + fnp.sum(fnp.sin(x))

    h = np.asarray(hessian(f)(fnp.asarray(x0)))
    np.testing.assert_allclose(h, a - np.diag(np.sin(x0)), rtol=1e-10, atol=1e-12)
    # pytree argument: nested blocks, each of shape in.shape + in.shape
    hp = hessian(lambda p: fnp.sum(p["u"] ** 2 * p["v"]))({"u": fnp.asarray(x0),
                                                          "v": fnp.asarray(x0 * 0 + 2.0)})
    np.testing.assert_allclose(np.asarray(hp["u"]["u"]), np.diag(np.full(3, 4.0)))
    np.testing.assert_allclose(np.asarray(hp["u"]["v"]), np.diag(2 * x0))
    np.testing.assert_allclose(np.asarray(hp["v"]["v"]), np.zeros((3, 3)))


def test_has_aux_and_scalar_and_empty_inputs():
    jac, aux = jacfwd(lambda x: (x ** 2, {"m": x.mean()}), has_aux=True)(fnp.asarray([1.0, 2.0]))
    np.testing.assert_allclose(np.asarray(jac), np.diag([2.0, 4.0]))
    np.testing.assert_allclose(float(aux["m"]), 1.5)
    jac, aux = jacrev(lambda x: (x ** 2, x.sum()), has_aux=True)(fnp.asarray([1.0, 2.0]))
    np.testing.assert_allclose(np.asarray(jac), np.diag([2.0, 4.0]))
    h, aux = hessian(lambda x: (fnp.sum(x ** 3), 7.0), has_aux=True)(fnp.asarray([1.0]))
    np.testing.assert_allclose(np.asarray(h), [[6.0]])
    assert float(aux) == 7.0
    assert float(jacfwd(fnp.sin)(0.0)) == 1.0 and float(jacrev(fnp.sin)(0.0)) == 1.0
    empty = fnp.zeros((0,))
    assert jacfwd(lambda x: x * 2)(empty).shape == (0, 0)
    assert jacrev(lambda x: fnp.sum(x) + 1.0)(empty).shape == (0,)


def test_jacobians_compose_with_jit_and_vmap():
    f = lambda x: fnp.tanh(x) * x.sum()  # noqa: E731
    x = _arr(3)
    want = np.asarray(jacrev(f)(x))
    _close(nanofn.jit(jacfwd(f))(x), want)
    _close(jacfwd(nanofn.jit(f))(x), want)
    xs = _arr(4, 3)
    batched = vmap(jacfwd(f))(xs)
    _close(batched, np.stack([np.asarray(jacrev(f)(r)) for r in xs]))


def test_jacobian_errors():
    with pytest.raises(TypeError, match="jacfwd requires real- or complex-valued inputs"):
        jacfwd(lambda x: x * 2)(fnp.arange(3))
    with pytest.raises(TypeError, match="jacrev requires floating-point outputs"):
        jacrev(lambda x: (x > 0).astype("int32"))(fnp.ones(2))
    with pytest.raises(ValueError, match="argnums=2 is out of range"):
        jacrev(lambda x: x, argnums=2)(fnp.ones(2))
    with pytest.raises(TypeError, match="has_aux=True requires the function to return a pair"):
        jacfwd(lambda x: x, has_aux=True)(fnp.ones(2))


# ------------------------------------------------------------------------ linearize


def test_linearize_matches_jvp_on_pytrees():
    def f(p, x):
        return {"y": fnp.exp(x) * p["a"], "z": fnp.sum(fnp.sin(p["a"]) * x)}

    p, x = {"a": _arr(3)}, _arr(3)
    out, f_jvp = linearize(f, p, x)
    _close(out, f(p, x))
    for _ in range(2):
        tp, tx = {"a": _arr(3)}, _arr(3)
        _close(f_jvp(tp, tx), nanofn.jvp(f, (p, x), (tp, tx))[1])


def test_linearize_stages_only_tangent_work():
    x = _arr(5)
    _, f_jvp = linearize(lambda v: fnp.sin(fnp.exp(v)), x)
    prims = [e.primitive.name for e in f_jvp.jaxpr.eqns]
    # the primal sin/exp/cos run once at linearize time; only multiplications are staged
    assert "sin" not in prims and "exp" not in prims and "cos" not in prims, prims
    assert set(prims) <= {"mul"}, prims
    t = _arr(5)
    _close(f_jvp(t), np.cos(np.exp(np.asarray(x))) * np.exp(np.asarray(x)) * np.asarray(t))


def test_linearize_has_aux_integer_inputs_and_composition():
    out, f_jvp, aux = linearize(lambda x, n: (x * n, n + 1), _arr(2), fnp.asarray(3),
                                has_aux=True)
    assert int(aux) == 4
    t = _arr(2)
    _close(f_jvp(t, fnp.asarray(0)), np.asarray(t) * 3)
    # under jit the linearization is staged too
    g = nanofn.jit(lambda x, t: linearize(fnp.tanh, x)[1](t))
    x = _arr(3)
    _close(g(x, fnp.ones(3, "float64")), 1 - np.tanh(np.asarray(x)) ** 2)


def test_linearize_errors():
    _, f_jvp = linearize(lambda a, b: a * b, _arr(2), _arr(2))
    with pytest.raises(ValueError, match="tangents with the structure of the primals"):
        f_jvp(_arr(2))
    with pytest.raises(ValueError, match=r"tangent leaf 1 has shape \(3,\)"):
        f_jvp(_arr(2), _arr(3))
