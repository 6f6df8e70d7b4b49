"""`custom_gradient`, JAX's saving policies for `checkpoint`, and `closure_convert` of
closed-over scalars (which `custom_gradient` relies on)."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import checkpoint_policies as cp
from nanofn.ad_checkpoint import checkpoint_name
from nanofn.testing import check_grads


@nanofn.custom_gradient
def sin_with_rule(x):
    c = fnp.cos(x)  # closed over by the rule: a residual of the forward pass
    return fnp.sin(x), lambda g: (g * c,)


@nanofn.custom_gradient
def product(x, y):
    return x * y, lambda ct: (ct * y, ct * x)


@nanofn.custom_gradient
def clip_gradient(x):
    return x, lambda g: fnp.clip(g, -1.0, 1.0)  # one argument: the cotangent may be bare


XS = np.linspace(-2.0, 2.0, 5)


@pytest.mark.parametrize("transform", ["eager", "jit", "vmap"])
def test_the_rule_gives_the_gradient(transform):
    g = nanofn.grad(sin_with_rule)
    if transform == "jit":
        g = nanofn.jit(g)
    if transform == "vmap":
        got = nanofn.vmap(g)(XS)
    else:
        got = [g(x) for x in XS]
    np.testing.assert_allclose(np.asarray(got), np.cos(XS), rtol=1e-6)


def test_second_order_differentiates_the_rule():
    for x in XS:
        np.testing.assert_allclose(nanofn.grad(nanofn.grad(sin_with_rule))(x), -np.sin(x),
                                   rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(nanofn.jit(nanofn.grad(nanofn.grad(sin_with_rule)))(x),
                                   -np.sin(x), rtol=1e-5, atol=1e-7)
    check_grads(sin_with_rule, (np.float64(0.3),), order=2, modes=["rev"])  # as JAX: no jvp


def test_several_arguments_and_a_rule_that_differs_from_the_function():
    gx, gy = nanofn.grad(product, argnums=(0, 1))(2.0, 3.0)
    assert (float(gx), float(gy)) == (3.0, 2.0)
    # the rule is used even where it is not the derivative: clip the cotangent
    assert float(nanofn.grad(lambda x: 5.0 * clip_gradient(x))(2.0)) == 1.0
    assert float(clip_gradient(2.0)) == 2.0


def test_bad_rules_are_clear_errors():
    @nanofn.custom_gradient
    def no_rule(x):
        return x, 3.0

    @nanofn.custom_gradient
    def too_many(x):
        return x, lambda g: (g, g)

    with pytest.raises(TypeError, match="callable rule"):
        nanofn.grad(no_rule)(1.0)
    with pytest.raises(ValueError, match="2 cotangents for a function of 1"):
        nanofn.grad(too_many)(1.0)


def test_closure_convert_hoists_closed_over_scalars():
    def f(w):
        conv, consts = nanofn.closure_convert(lambda x: x * w, fnp.ones(()))
        return conv(fnp.asarray(2.0), *consts)

    assert float(nanofn.grad(f)(3.0)) == 2.0  # eager: w is a concrete scalar
    assert float(nanofn.jit(nanofn.grad(f))(3.0)) == 2.0


POLICIES = [cp.everything_saveable, cp.nothing_saveable, cp.dots_saveable,
            cp.dots_with_no_batch_dims_saveable, cp.save_only_these_names("h"),
            cp.save_anything_except_these_names("h"),
            cp.save_from_both_policies(cp.dots_saveable, cp.save_only_these_names("h"))]


@pytest.mark.parametrize("policy", POLICIES)
def test_checkpoint_accepts_every_policy_with_the_same_gradients(policy):
    w = np.random.default_rng(0).normal(size=(3, 3))

    def block(w, x):
        return fnp.tanh(checkpoint_name(x @ w, "h"))

    def loss(w, f):
        return fnp.sum(f(w, f(w, np.ones((2, 3)))))

    want = nanofn.grad(loss)(w, block)
    got = nanofn.grad(loss)(w, nanofn.checkpoint(block, policy=policy))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_policies_answer_as_jax_does():
    from nanofn.ops import dot_general_p, sin_p
    batched = {"dimension_numbers": (((2,), (1,)), ((0,), (0,)))}
    plain = {"dimension_numbers": (((1,), (0,)), ((), ()))}
    assert cp.dots_saveable(dot_general_p, **plain) and not cp.dots_saveable(sin_p)
    assert cp.dots_with_no_batch_dims_saveable(dot_general_p, **plain)
    assert not cp.dots_with_no_batch_dims_saveable(dot_general_p, **batched)
    assert cp.everything_saveable(sin_p) and not cp.nothing_saveable(dot_general_p)
