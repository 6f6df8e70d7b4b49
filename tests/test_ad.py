"""grad / value_and_grad / vjp / jvp: analytic identities, nesting, pytrees and errors."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.testing import arrays, check_grads, shapes


def test_grad_of_sum_of_squares_is_2x():
    x = fnp.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(nanofn.grad(lambda x: fnp.sum(x * x))(x), 2 * np.asarray(x))


@given(arrays(shapes(max_dims=2, max_side=4), np.float64, elements=(-2.0, 2.0)))
def test_grad_matches_analytic_tanh_identity(x):
    g = nanofn.grad(lambda x: fnp.sum(fnp.tanh(x)))(x)
    np.testing.assert_allclose(g, 1 - np.tanh(x) ** 2, rtol=1e-12)
    assert np.asarray(g).dtype == np.float64  # float64 inputs stay float64


def test_issue_example_loss_grad_has_params_structure():
    def loss(params, x, y):
        pred = fnp.tanh(x @ params["w"] + params["b"])
        return fnp.mean((pred - y) ** 2)

    rng = np.random.default_rng(0)
    params = {"w": fnp.zeros((3, 1)), "b": fnp.zeros(1)}
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
    g = nanofn.grad(loss)(params, x, y)
    assert nanofn.tree.structure(g) == nanofn.tree.structure(params)
    v, g2 = nanofn.value_and_grad(loss)(params, x, y)
    np.testing.assert_allclose(float(v), np.mean((0 - y) ** 2), rtol=1e-6)
    # d/dw mean((tanh(xw + b) - y)^2) at w = 0, b = 0 is mean(2 (0 - y) * 1 * x)
    np.testing.assert_allclose(g2["w"], (2 * (-y) * x).mean(0)[:, None], rtol=1e-5)
    check_grads(lambda w, b: loss({"w": w, "b": b}, x, y),
                (np.asarray(params["w"], np.float64) + 0.1, np.asarray(params["b"], np.float64)),
                order=2)


def test_argnums_tuple_and_has_aux():
    f = lambda x, y: (x * y ** 2, {"aux": x + y})  # noqa: E731
    (gx, gy), aux = nanofn.grad(f, argnums=(0, 1), has_aux=True)(3.0, 2.0)
    assert (float(gx), float(gy)) == (4.0, 12.0)
    assert float(aux["aux"]) == 5.0
    (v, aux), g = nanofn.value_and_grad(f, argnums=1, has_aux=True)(3.0, 2.0)
    assert (float(v), float(g)) == (12.0, 12.0)


def test_nested_derivatives_and_perturbation_confusion():
    # d/dx [x * d/dy (x * y)] = d/dx [x * x] = 2x; a confused implementation gives x or 3x.
    f = lambda x: x * nanofn.grad(lambda y: x * y)(1.0)  # noqa: E731
    assert float(nanofn.grad(f)(3.0)) == 6.0
    # the classic from Siskind & Pearlmutter: d/dx (x * (d/dy (x + y))|y=1) = 1
    g = lambda x: x * nanofn.grad(lambda y: x + y)(1.0)  # noqa: E731
    assert float(nanofn.grad(g)(5.0)) == 1.0


def test_third_derivative_and_jvp_of_grad():
    f = lambda x: x ** 4  # noqa: E731
    assert float(nanofn.grad(nanofn.grad(nanofn.grad(f)))(2.0)) == 48.0  # 24 x
    _, t = nanofn.jvp(nanofn.grad(fnp.sin), (0.5,), (1.0,))
    np.testing.assert_allclose(float(t), -np.sin(0.5), rtol=1e-6)  # d/dx cos x


def test_python_control_flow_on_values_under_grad():
    def f(x):
        if x > 0:
            return x ** 2
        return -x
    assert float(nanofn.grad(f)(3.0)) == 6.0
    assert float(nanofn.grad(f)(-3.0)) == -1.0


def test_vjp_and_jvp_agree_by_inner_product():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 3))
    f = lambda x: fnp.tanh(w @ x)  # noqa: E731
    x, v, u = rng.normal(size=3), rng.normal(size=3), rng.normal(size=4)
    y, jv = nanofn.jvp(f, (x,), (v,))
    _, pullback = nanofn.vjp(f, x)
    (jtu,) = pullback(u)
    np.testing.assert_allclose(np.dot(u, jv), np.dot(jtu, v), rtol=1e-12)


def test_unused_input_gets_zero_gradient_and_constant_output():
    g = nanofn.grad(lambda x, y: fnp.sum(x) * 2.0, argnums=1)(fnp.ones(2), fnp.ones(3))
    np.testing.assert_array_equal(g, np.zeros(3))


def test_broadcast_gradient_sums_back_to_input_shape():
    x, b = np.ones((4, 3)), np.ones(3)
    gb = nanofn.grad(lambda b: fnp.sum((x + b) ** 2))(b)
    np.testing.assert_allclose(gb, np.full(3, 16.0))


def test_grad_non_scalar_output_error_names_shape():
    with pytest.raises(TypeError, match=r"scalar output.*shape \(3,\)"):
        nanofn.grad(lambda x: x * 2)(fnp.ones(3))


def test_grad_integer_input_error_names_argument():
    with pytest.raises(TypeError, match="argument 0 has dtype int32"):
        nanofn.grad(lambda x: fnp.sum(x * 1.0))(fnp.array([1, 2]))


def test_concretization_error_under_make_jaxpr():
    def f(x):
        if x > 0:
            return x
        return -x
    with pytest.raises(nanofn.ConcretizationError, match="lax.cond"):
        nanofn.make_jaxpr(f)(1.0)


def test_inputs_are_not_mutated():
    x = np.array([1.0, 2.0])
    x_copy = x.copy()
    nanofn.grad(lambda x: fnp.sum(fnp.sin(x) * x))(x)
    nanofn.jit(lambda x: x * 2)(x)
    np.testing.assert_array_equal(x, x_copy)
    assert x.flags.writeable


def test_vjp_cotangent_structure_error():
    _, pullback = nanofn.vjp(lambda x: (x, x), fnp.ones(2))
    with pytest.raises(ValueError, match="structure must match"):
        pullback(fnp.ones(2))


@given(st.sampled_from(["sin", "exp", "tanh", "logistic"]), st.floats(-2, 2))
def test_second_derivatives_match_finite_differences(name, x):
    f = {"sin": fnp.sin, "exp": fnp.exp, "tanh": fnp.tanh,
         "logistic": lambda v: 1 / (1 + fnp.exp(-v))}[name]
    check_grads(f, (np.float64(x),), order=2)


def test_debug_nans_names_primitive_forward_and_backward():
    with nanofn.debug_nans():
        with pytest.raises(FloatingPointError, match="primitive 'log' produced a NaN at .*test_ad"):
            fnp.log(fnp.array([-1.0]))
        # sqrt(0) is fine forward; its derivative 0.5 / sqrt(0) times a zero cotangent is NaN
        with pytest.raises(FloatingPointError, match="backward pass of 'sqrt'.*test_ad"):
            nanofn.grad(lambda x: fnp.sum(fnp.sqrt(x) * 0.0))(fnp.array([0.0]))
    assert np.isnan(float(fnp.log(fnp.array(-1.0))))  # off again: NaN returned quietly


def test_reverse_mode_records_nothing_for_primitives_without_derivative():
    # stop_gradient's result is a constant to what follows (as in JAX): a custom_jvp rule
    # of it is never called, and the gradient only flows around it
    @nanofn.custom_jvp
    def ident(v):
        return v

    @ident.defjvp
    def _(primals, tangents):
        raise AssertionError("the rule of a stop_gradient'ed input was called")

    f = lambda x: fnp.sum(ident(nanofn.lax.stop_gradient(x)) * x)  # noqa: E731
    assert float(nanofn.grad(f)(3.0)) == 3.0
    assert float(nanofn.jit(nanofn.grad(f))(3.0)) == 3.0
    assert float(nanofn.grad(lambda x: fnp.where(x > 0, x * x, 0.0))(2.0)) == 4.0
