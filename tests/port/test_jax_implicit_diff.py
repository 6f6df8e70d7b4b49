"""Port: implicit differentiation in JAX, as in its documentation of `lax.custom_root`,
`lax.custom_linear_solve` and the custom-VJP fixed-point example (jax-ml/jax, docs on
custom derivative rules): a Newton square root whose derivative comes from the implicit
function theorem, a conjugate-gradient solve whose transpose is another solve, and a
fixed point `z = tanh(W z + x)` differentiated through its solution rather than its
iterations.
"""

from functools import partial

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    def newton_sqrt(y):
        def f(x):
            return x ** 2 - y

        def solve(f, x0):
            return lax.while_loop(lambda x: jnp.abs(f(x)) > 1e-6,
                                  lambda x: x - f(x) / (2 * x), x0)

        def tangent_solve(g, y):
            return y / g(1.0)

        return lax.custom_root(f, 1.0, solve, tangent_solve)

    a = jnp.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])

    def matvec(x):
        return a @ x

    def cg_solve(matvec, b):
        def body(_, state):
            x, r, p = state
            ap = matvec(p)
            alpha = (r @ r) / (p @ ap)
            x, r_new = x + alpha * p, r - alpha * ap
            beta = (r_new @ r_new) / (r @ r)
            return x, r_new, r_new + beta * p
        x, _, _ = lax.fori_loop(0, 6, body, (jnp.zeros_like(b), b, b))
        return x

    def linear_solve(b):
        return lax.custom_linear_solve(matvec, b, cg_solve, symmetric=True)

    @partial(jax.custom_vjp, nondiff_argnums=(0,))
    def fixed_point(f, params, z0):
        def cond(carry):
            z_prev, z = carry
            return jnp.max(jnp.abs(z_prev - z)) > 1e-6
        _, z = lax.while_loop(cond, lambda c: (c[1], f(params, c[1])), (z0, f(params, z0)))
        return z

    def fixed_point_fwd(f, params, z0):
        z = fixed_point(f, params, z0)
        return z, (params, z)

    def fixed_point_bwd(f, res, z_bar):
        params, z = res
        _, vjp_params = jax.vjp(lambda p: f(p, z), params)
        _, vjp_z = jax.vjp(lambda zz: f(params, zz), z)
        u = fixed_point(lambda v, u: v + vjp_z(u)[0], z_bar, z_bar)
        return vjp_params(u)[0], jnp.zeros_like(z)

    fixed_point.defvjp(fixed_point_fwd, fixed_point_bwd)
    w = jnp.array([[0.3, -0.2, 0.1], [0.1, 0.2, -0.3], [-0.2, 0.1, 0.25]])

    def layer(params, z):
        w, x = params
        return jnp.tanh(w @ z + x)

    def deq(w, x):
        return jnp.sum(fixed_point(layer, (w, x), jnp.zeros(3)) ** 2)

    b = jnp.array([1.0, -2.0, 0.5])
    ys = jnp.array([2.0, 9.0, 0.25])
    return {"sqrt": jax.vmap(newton_sqrt)(ys), "dsqrt": jax.vmap(jax.grad(newton_sqrt))(ys),
            "solve": linear_solve(b), "dsolve_db": jax.jacrev(linear_solve)(b),
            "dsolve_jvp": jax.jvp(linear_solve, (b,), (jnp.ones(3),))[1],
            "deq": deq(w, b), "deq_grads": jax.grad(deq, argnums=(0, 1))(w, b),
            "deq_jit_grad_x": jax.jit(jax.grad(deq, argnums=1))(w, b)}


def test_implicit_diff_matches_jax():
    got, _ = check_against_jax("test_jax_implicit_diff", program, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got["dsqrt"], 0.5 / np.sqrt([2.0, 9.0, 0.25]), rtol=1e-4)
