"""Tests for nanofn.testing: check_grads, assert_trees_allclose and the strategies."""

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, find, given, settings
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as jnp
from nanofn.testing import (
    arrays,
    assert_trees_allclose,
    broadcastable_shapes,
    check_grads,
    floats_in,
    pytrees_of_arrays,
    shapes,
)

X = np.array([0.5, -1.0, 2.0])


def _number_after(label, message, start="largest error"):
    """The number printed after `label` in the "largest error" line of a failure message."""
    assert start in message, message
    match = re.search(re.escape(label) + r" (\S+)", message[message.index(start):])
    assert match, f"{label!r} not in message:\n{message}"
    return float(match.group(1).rstrip(","))


# --- check_grads passes on correct derivatives ---------------------------------------------


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("modes", [("fwd",), ("rev",), ("fwd", "rev")])
def test_check_grads_passes_polynomial_and_sin(order, modes):
    check_grads(lambda x: 3.0 * x**3 - 2.0 * x + 1.0, (X,), order=order, modes=modes)
    check_grads(lambda x: jnp.sum(jnp.sin(x) * x), (X,), order=order, modes=modes)


def test_check_grads_passes_several_args_and_scalar_inputs():
    y = np.arange(6.0).reshape(2, 3) / 3.0
    check_grads(lambda x, y: jnp.sin(x) * y + x * x, (X, y), order=2)
    check_grads(lambda a: a * a * a, (1.5,), order=2)  # a Python float argument


def test_check_grads_passes_pytree_args_and_outputs():
    params = {"w": np.array([[0.3, -0.2], [0.1, 0.7]]), "b": (np.array([0.1, -0.4]), 0.5)}
    x = np.array([1.0, 2.0])

    def f(params, x):
        h = jnp.tanh(params["w"] @ x + params["b"][0]) * params["b"][1]
        return {"h": h, "pair": (jnp.sum(h * h), jnp.exp(x))}

    check_grads(f, (params, x), order=2, modes=("fwd", "rev"))


def test_check_grads_float32_uses_looser_defaults():
    x = X.astype(np.float32)
    check_grads(lambda x: jnp.sin(x) * jnp.exp(x), (x,), order=2)

    def nearly_right(x):  # a 1e-4 relative error: far beyond float64's rtol, within float32's
        return jnp.sin(x) + 1e-4 * jnp.sin(nanofn.lax.stop_gradient(x))

    check_grads(nearly_right, (x,), order=1)
    with pytest.raises(AssertionError, match="atol=1e-05, rtol=1e-05"):
        check_grads(nearly_right, (X,), order=1)


def test_check_grads_holds_integer_inputs_fixed_and_ignores_integer_outputs():
    seen = []

    def f(x, n):
        seen.append(np.asarray(n).copy())
        return {"y": x ** 3 * n, "count": x.shape[0]}

    n = np.array([1, 2, 3])
    check_grads(f, (X, n), order=2)
    assert len(seen) > 5
    for value in seen:
        np.testing.assert_array_equal(value, n)
        assert value.dtype == n.dtype


def test_check_grads_calls_f_with_nanofn_arrays_not_numpy_arrays():
    seen = []

    def f(x):
        seen.append(type(x))
        return x * x

    check_grads(f, (X,), order=2)
    check_grads(f, (jnp.ones(3),), order=1)
    assert seen and np.ndarray not in seen


def test_check_grads_tolerances_and_eps_are_used():
    def slightly_wrong(x):  # derivative off by a relative 1e-3
        return jnp.sin(x) + 1e-3 * jnp.sin(nanofn.lax.stop_gradient(x))

    with pytest.raises(AssertionError):
        check_grads(slightly_wrong, (X,), order=1)
    check_grads(slightly_wrong, (X,), order=1, rtol=1e-2, atol=1e-2)
    check_grads(slightly_wrong, (X,), order=1, rtol={np.float64: 1e-2}, atol={np.float64: 1e-2})
    # A huge finite-difference step makes the central difference itself inaccurate.
    with pytest.raises(AssertionError, match="eps=0.5"):
        check_grads(jnp.sin, (X,), order=1, eps=0.5)


# --- check_grads fails on wrong derivatives ------------------------------------------------


def _sin_with_wrong_vjp(bad_index, factor):
    @nanofn.custom_vjp
    def f(x):
        return jnp.sin(x)

    def fwd(x):
        return jnp.sin(x), x

    def bwd(x, ct):
        scale = np.ones(np.shape(x))
        scale[bad_index] = factor
        return (jnp.cos(x) * ct * scale,)

    f.defvjp(fwd, bwd)
    return f


def _sin_with_wrong_jvp(bad_index, factor):
    @nanofn.custom_jvp
    def f(x):
        return jnp.sin(x)

    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        scale = np.ones(np.shape(x))
        scale[bad_index] = factor
        return jnp.sin(x), jnp.cos(x) * t * scale

    f.defjvp(f_jvp)
    return f


def test_check_grads_fails_on_wrong_vjp_and_locates_it():
    f = _sin_with_wrong_vjp(bad_index=1, factor=2.0)
    with pytest.raises(AssertionError) as info:
        check_grads(f, (X,), order=1, modes=("rev",))
    message = str(info.value)
    assert "VJP check failed at order 1" in message
    assert "cotangent for input args[0]" in message
    assert "at index (1,)" in message
    expected = _number_after("expected (finite differences)", message)
    actual = _number_after("actual (VJP)", message)
    assert actual == pytest.approx(2.0 * expected, rel=1e-6)
    error = _number_after("|error|", message)
    assert error == pytest.approx(abs(actual - expected), rel=1e-5)


def test_check_grads_fails_on_wrong_jvp_and_locates_it():
    x = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    f = _sin_with_wrong_jvp(bad_index=(1, 0), factor=3.0)
    with pytest.raises(AssertionError) as info:
        check_grads(f, (x,), order=1, modes=("fwd",))
    message = str(info.value)
    assert "JVP check failed at order 1" in message
    assert "tangent output out (shape (2, 3)): 1 of 6 elements out of tolerance" in message
    assert "at index (1, 0)" in message
    expected = _number_after("expected (finite differences)", message)
    actual = _number_after("actual (JVP)", message)
    assert actual == pytest.approx(3.0 * expected, rel=1e-6)


def test_check_grads_names_the_wrong_leaf_of_a_pytree_output():
    g = _sin_with_wrong_jvp(bad_index=2, factor=-1.0)

    def f(params):
        return {"a": jnp.sin(params["x"]), "b": [jnp.exp(params["x"]), g(params["x"])]}

    with pytest.raises(AssertionError, match=re.escape("tangent output out['b'][1]")):
        check_grads(f, ({"x": X},), order=1, modes=("fwd",))


def test_check_grads_names_the_wrong_input_of_a_vjp():
    g = _sin_with_wrong_vjp(bad_index=0, factor=0.0)

    def f(params, y):
        return jnp.sin(params["u"]) * y + g(params["v"])

    params = {"u": X, "v": X + 0.25}
    with pytest.raises(AssertionError) as info:
        check_grads(f, (params, X), order=1, modes=("rev",))
    assert "cotangent for input args[0]['v']" in str(info.value)
    assert "at index (0,)" in str(info.value)


def _variance_with_stopped_mean(x):
    # The derivative of the mean term vanishes at first order (the deviations sum to zero),
    # so stop_gradient there is harmless for the gradient but wrong for the Hessian.
    mean = jnp.mean(x, axis=-1, keepdims=True)
    return jnp.mean((x - nanofn.lax.stop_gradient(mean)) ** 2, axis=-1)


@pytest.mark.parametrize("modes, label", [(("fwd",), "JVP of JVP"), (("rev",), "VJP of VJP")])
def test_check_grads_order_2_catches_what_order_1_misses(modes, label):
    x = np.array([[1.0, 2.0, -1.0, 0.5], [0.3, 0.2, 0.1, -2.0]])
    check_grads(_variance_with_stopped_mean, (x,), order=1, modes=modes)
    with pytest.raises(AssertionError, match=f"{label} check failed at order 2"):
        check_grads(_variance_with_stopped_mean, (x,), order=2, modes=modes)
    check_grads(lambda x: jnp.var(x, axis=-1), (x,), order=2, modes=modes)


def test_check_grads_catches_a_wrong_second_derivative_in_forward_mode():
    @nanofn.custom_jvp
    def f(x):
        return jnp.sin(x)

    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        # Right first derivative, but stop_gradient hides its own derivative.
        return jnp.sin(x), jnp.cos(nanofn.lax.stop_gradient(x)) * t

    f.defjvp(f_jvp)
    check_grads(f, (X,), order=1)
    with pytest.raises(AssertionError) as info:
        check_grads(f, (X,), order=2, modes=("fwd",))
    message = str(info.value)
    assert "JVP of JVP check failed at order 2" in message
    assert "tangent output tangent of out" in message


def test_check_grads_catches_a_wrong_second_derivative_in_reverse_mode():
    @nanofn.custom_vjp
    def f(x):
        return jnp.sin(x)

    def fwd(x):
        return jnp.sin(x), x

    def bwd(x, ct):
        return (jnp.cos(nanofn.lax.stop_gradient(x)) * ct,)

    f.defvjp(fwd, bwd)
    check_grads(f, (X,), order=1, modes=("rev",))
    with pytest.raises(AssertionError) as info:
        check_grads(f, (X,), order=2, modes=("rev",))
    message = str(info.value)
    assert "VJP of VJP check failed at order 2" in message
    assert "cotangent for input args[0]" in message


def test_check_grads_failures_are_reproducible():
    f = _sin_with_wrong_vjp(bad_index=2, factor=1.5)
    messages = []
    for _ in range(2):
        with pytest.raises(AssertionError) as info:
            check_grads(f, (X,), order=1, modes=("rev",))
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_check_grads_rejects_bad_arguments():
    with pytest.raises(ValueError, match="modes"):
        check_grads(jnp.sin, (X,), order=1, modes=("forward",))
    with pytest.raises(ValueError, match="order"):
        check_grads(jnp.sin, (X,), order=0)
    with pytest.raises(TypeError, match="no floating-point leaves"):
        check_grads(lambda n: n * 2, (np.array([1, 2]),), order=1)
    with pytest.raises(TypeError, match=re.escape("check_grads(f, (x,), ...)")):
        check_grads(jnp.sin, X, order=1)


# --- assert_trees_allclose ----------------------------------------------------------------


def test_assert_trees_allclose_passes_within_tolerance():
    a = {"w": np.ones((2, 2)), "b": [np.zeros(3), 1.0]}
    b = {"w": np.ones((2, 2)) + 1e-9, "b": [np.zeros(3), 1.0 + 1e-9]}
    assert_trees_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_assert_trees_allclose_reports_path_index_and_error():
    a = {"w": np.ones(2), "b": [np.zeros(3), np.array([[1.0, 2.0], [3.0, 4.0]])]}
    b = {"w": np.ones(2), "b": [np.zeros(3), np.array([[1.0, 2.0], [3.5, 4.0]])]}
    with pytest.raises(AssertionError) as info:
        assert_trees_allclose(a, b, rtol=1e-3)
    message = str(info.value)
    assert "leaf ['b'][1] (shape (2, 2)): 1 of 4 elements out of tolerance" in message
    assert "at index (1, 0)" in message
    assert _number_after("|error|", message) == pytest.approx(0.5)


def test_assert_trees_allclose_checks_structure_and_shapes():
    with pytest.raises(AssertionError, match="structures differ"):
        assert_trees_allclose({"a": 1.0}, {"b": 1.0})
    with pytest.raises(AssertionError, match="structures differ"):
        assert_trees_allclose([1.0, 2.0], (1.0, 2.0))
    with pytest.raises(AssertionError, match=re.escape("leaf ['a']: actual shape (2,)")):
        assert_trees_allclose({"a": np.ones(2)}, {"a": np.ones(3)})


# --- strategies ---------------------------------------------------------------------------


@given(shapes(min_dims=1, max_dims=4, min_side=2, max_side=3))
def test_shapes_respect_their_bounds(shape):
    assert 1 <= len(shape) <= 4
    assert all(2 <= side <= 3 for side in shape)


def test_shapes_defaults_include_scalars_and_empty_axes():
    assert find(shapes(), lambda s: s == ()) == ()
    assert 0 in find(shapes(), lambda s: 0 in s)


@given(broadcastable_shapes(3, max_dims=4))
def test_broadcastable_shapes_broadcast(shapes_):
    assert len(shapes_) == 3
    result = np.broadcast_shapes(*shapes_)
    arrays_ = [np.zeros(s) for s in shapes_]
    assert np.broadcast(*arrays_).shape == result
    assert all(len(s) <= 4 for s in shapes_)


def test_broadcastable_shapes_include_size_one_and_missing_axes():
    def stretched_size_one(pair):
        a, b = pair
        out = np.broadcast_shapes(a, b)
        return len(a) == len(out) and any(s == 1 and o > 1 for s, o in zip(a, out))

    find(broadcastable_shapes(2, min_side=1), stretched_size_one)
    find(broadcastable_shapes(2), lambda pair: len(pair[0]) < len(pair[1]))


@pytest.mark.parametrize(
    "domain, lo, hi",
    [((-1, 1), -0.9, 0.9), ((0, None), 0.1, 10.1), ((None, 0), -10.0, -0.1),
     ((None, None), -10.0, 10.0), ((0, 0.01), 0.0025, 0.0075), ((2, 3), 2.1, 2.9)],
)
def test_floats_in_respects_the_domain_and_margin(domain, lo, hi):
    @given(floats_in(domain))
    def check(x):
        assert lo <= x <= hi

    check()


@given(floats_in((-1, 1), width=32))
def test_floats_in_width_32_draws_float32_values(x):
    assert np.float32(x) == x and -0.9 <= x <= 0.9


def test_floats_in_rejects_bad_domains():
    with pytest.raises(ValueError, match="lo < hi"):
        floats_in((1, 0))
    with pytest.raises(ValueError, match="pair"):
        floats_in(0.5)


@given(arrays(shapes(max_dims=2), elements=(0, None)))
def test_arrays_float_domain(x):
    assert x.dtype == np.float64 and x.ndim <= 2
    assert np.all(x >= 0.1) and np.all(np.isfinite(np.log(x)))


@given(arrays((3, 2), dtype=np.float32, elements=(-1, 1)))
def test_arrays_float32(x):
    assert x.shape == (3, 2) and x.dtype == np.float32 and np.all(np.abs(x) <= 0.9)


@given(arrays(4, dtype=np.int32, elements=(0, 5)),
       arrays((2,), elements=st.sampled_from([1.0, 2.0])))
def test_arrays_int_bounds_and_custom_elements(n, x):
    assert n.shape == (4,) and n.dtype == np.int32 and np.all((0 <= n) & (n <= 5))
    assert set(x.tolist()) <= {1.0, 2.0}


@given(pytrees_of_arrays(dtype=np.float32, max_leaves=6))
def test_pytrees_of_arrays_are_nested_containers_of_arrays(tree):
    def walk(node):
        if isinstance(node, dict):
            assert node and all(isinstance(k, str) for k in node)
            return sum(walk(v) for v in node.values())
        if isinstance(node, (list, tuple)):
            assert node
            return sum(walk(v) for v in node)
        assert isinstance(node, np.ndarray) and node.dtype == np.float32 and node.ndim <= 2
        return 1

    leaves = nanofn.tree_util.tree_leaves(tree)
    assert walk(tree) == len(leaves) >= 1


def test_pytrees_of_arrays_include_every_container_kind():
    for kind in (dict, list, tuple):
        find(pytrees_of_arrays(), lambda tree, kind=kind: isinstance(tree, kind))


@given(pytrees_of_arrays(shape=shapes(max_dims=1, max_side=3), elements=(-2, 2)))
def test_check_grads_on_drawn_pytrees(tree):
    def f(tree):
        return nanofn.tree_util.tree_map(lambda x: jnp.sin(x) * x, tree)

    check_grads(f, (tree,), order=1)


@pytest.mark.parametrize(
    "fn, domain",
    [(jnp.log, (0, None)), (jnp.sqrt, (0, None)), (jnp.arctanh, (-1, 1)),
     (jnp.tanh, (None, None))],
)
def test_check_grads_on_elementwise_functions_over_their_domains(fn, domain):
    @given(arrays(shapes(max_dims=2, max_side=3), elements=domain))
    def check(x):
        check_grads(fn, (x,), order=2)

    check()


# --- the worked example of docs/property-testing.md (kept verbatim; see the last test) ----

# BEGIN layer norm example
def layer_norm(params, x, eps=1e-5):
    """Normalise the last axis of x, then scale and shift it."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return params["scale"] * (x - mean) / jnp.sqrt(var + eps) + params["bias"]


@st.composite
def layer_norm_inputs(draw):
    batch = draw(st.integers(1, 3))
    features = draw(st.integers(2, 5))
    x = draw(arrays((batch, features), elements=(-3, 3)))
    # The derivatives of layer_norm grow like 1 / std(x): keep each row spread out,
    # so that finite differences stay accurate.
    assume(np.all(np.std(x, axis=-1) > 0.1))
    params = {"scale": draw(arrays((features,), elements=(0.5, 2))),
              "bias": draw(arrays((features,)))}
    return params, x


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(layer_norm_inputs())
def test_layer_norm_gradients(inputs):
    params, x = inputs
    check_grads(layer_norm, (params, x), order=2, modes=("fwd", "rev"))
# END layer norm example


def test_docs_example_matches_this_file():
    doc = (Path(__file__).parent.parent / "docs" / "property-testing.md").read_text()
    source = Path(__file__).read_text()
    example = source.split("# BEGIN layer norm example\n")[1].split("# END layer norm example")[0]
    assert example.strip() in doc


# --- check_jvp / check_vjp: a given rule against finite differences ---------------------


def test_check_jvp_and_check_vjp_accept_nanofn_rules_over_pytrees_with_integer_leaves():
    import functools

    def f(p, n):
        return {"y": jnp.sin(p["w"]) * n, "n": n + 1}
    args = ({"w": np.array([0.3, -1.2, 2.0])}, np.int32(3))
    nanofn.testing.check_jvp(f, functools.partial(nanofn.jvp, f), args)
    nanofn.testing.check_vjp(f, functools.partial(nanofn.vjp, f), args)


def test_check_jvp_finds_a_wrong_tangent_and_a_wrong_primal():
    x = (np.array([0.3, 1.0, 2.0]),)
    wrong_tangent = lambda p, t: (jnp.exp(p[0]), 1.01 * jnp.exp(p[0]) * t[0])  # noqa: E731
    with pytest.raises(AssertionError, match="JVP check failed"):
        nanofn.testing.check_jvp(jnp.exp, wrong_tangent, x)
    wrong_primal = lambda p, t: (jnp.exp(p[0]) + 1, jnp.exp(p[0]) * t[0])  # noqa: E731
    with pytest.raises(AssertionError, match=r"(?s)^mine\n.*primal output"):
        nanofn.testing.check_jvp(jnp.exp, wrong_primal, x, err_msg="mine")


def test_check_vjp_finds_a_wrong_pullback():
    f = lambda x, y: x * y  # noqa: E731

    def f_vjp(x, y):
        return f(x, y), lambda g: (g * y, g * y)  # the second should be g * x
    args = (np.array([1.0, 2.0]), np.array([3.0, -1.0]))
    with pytest.raises(AssertionError, match="VJP check failed"):
        nanofn.testing.check_vjp(f, f_vjp, args)
    with pytest.raises(TypeError, match="args must be a tuple"):
        nanofn.testing.check_vjp(f, f_vjp, np.ones(2))
