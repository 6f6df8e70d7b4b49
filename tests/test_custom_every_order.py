"""Custom rules apply at every order of differentiation (issue 13, item 5).

A custom_vjp whose fwd calls the function itself (the Newton square root of JAX's
custom-derivatives tutorial, a while_loop inside) must use its rule again when the
backward pass is differentiated; a custom_jvp whose rule calls the function likewise
under jacrev, hessian and vmap. Checked against the analytic derivatives of sqrt.
"""

from functools import partial

import numpy as np
import pytest

import nanofn as jax
import nanofn.numpy as jnp
from nanofn import lax


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def fixed_point(f, a, x_guess):
    def cond_fun(carry):
        x_prev, x = carry
        return jnp.abs(x_prev - x) > 1e-6

    def body_fun(carry):
        _, x = carry
        return x, f(a, x)

    _, x_star = lax.while_loop(cond_fun, body_fun, (x_guess, f(a, x_guess)))
    return x_star


def fixed_point_fwd(f, a, x_init):
    x_star = fixed_point(f, a, x_init)
    return x_star, (a, x_star)


def fixed_point_rev(f, res, x_star_bar):
    a, x_star = res
    _, vjp_a = jax.vjp(lambda a: f(a, x_star), a)
    a_bar, = vjp_a(fixed_point(partial(rev_iter, f), (a, x_star, x_star_bar), x_star_bar))
    return a_bar, jnp.zeros_like(x_star)


def rev_iter(f, packed, u):
    a, x_star, x_star_bar = packed
    _, vjp_x = jax.vjp(lambda x: f(a, x), x_star)
    return x_star_bar + vjp_x(u)[0]


fixed_point.defvjp(fixed_point_fwd, fixed_point_rev)


def newton_sqrt(a):
    return fixed_point(lambda a, x: 0.5 * (x + a / x), a, a)


@jax.custom_jvp
def sqrt_jvp(a):
    def cond(c):
        return jnp.any(jnp.abs(c[0] - c[1]) > 1e-6)

    def body(c):
        return c[1], 0.5 * (c[1] + a / c[1])

    return lax.while_loop(cond, body, (a, 0.5 * (a + 1.0)))[1]


@sqrt_jvp.defjvp
def _sqrt_jvp_rule(primals, tangents):
    (a,), (t,) = primals, tangents
    y = sqrt_jvp(a)
    return y, t / (2.0 * y)


def d1(a):
    return 0.5 * a ** -0.5


def d2(a):
    return -0.25 * a ** -1.5


def d3(a):
    return 0.375 * a ** -2.5


A = np.array([2.0, 3.0, 0.7])


@pytest.mark.parametrize("order, expect", [(1, d1), (2, d2), (3, d3)])
def test_custom_vjp_newton_sqrt_grad_at_every_order(order, expect):
    f = newton_sqrt
    for _ in range(order):
        f = jax.grad(f)
    for a in A:
        np.testing.assert_allclose(float(f(float(a))), expect(a), rtol=1e-4)


def test_custom_vjp_newton_sqrt_second_order_under_jit_vmap_and_jacrev():
    gg = jax.grad(jax.grad(newton_sqrt))
    np.testing.assert_allclose(float(jax.jit(gg)(2.0)), d2(2.0), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(jax.vmap(gg)(jnp.asarray(A, "float32"))), d2(A),
                               rtol=1e-4)
    np.testing.assert_allclose(float(jax.jacrev(jax.jacrev(newton_sqrt))(2.0)), d2(2.0),
                               rtol=1e-4)


def test_custom_vjp_rule_is_used_not_the_loop():
    # the rule's backward pass is the only reverse-mode route: differentiating the loop
    # itself raises, so a finite second derivative proves the rule ran at both orders
    with pytest.raises(ValueError, match="while_loop"):
        jax.grad(lambda a: fixed_point.fun(lambda a, x: 0.5 * (x + a / x), a, a))(2.0)
    assert np.isfinite(float(jax.grad(jax.grad(newton_sqrt))(2.0)))


def test_custom_jvp_newton_sqrt_under_jacrev_hessian_and_vmap():
    a = jnp.asarray(A, "float32")
    np.testing.assert_allclose(np.asarray(jax.jacrev(sqrt_jvp)(a)), np.diag(d1(A)), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(jax.hessian(lambda x: jnp.sum(sqrt_jvp(x)))(a)),
                               np.diag(d2(A)), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(jax.vmap(jax.grad(jax.grad(sqrt_jvp)))(a)), d2(A),
                               rtol=1e-4)
    np.testing.assert_allclose(np.asarray(jax.jacrev(jax.jacrev(sqrt_jvp))(a)),
                               np.einsum("ij,jk->ijk", np.eye(3), np.diag(d2(A))), rtol=1e-4)
    np.testing.assert_allclose(float(jax.grad(jax.grad(jax.grad(sqrt_jvp)))(2.0)), d3(2.0),
                               rtol=1e-4)
