"""Port: JAX's "Custom derivative rules" tutorial (jax-ml/jax, docs/notebooks/
Custom_derivative_rules_for_Python_code).

Its program cells: `log1pexp` with a numerically stable custom_jvp (grad, jit, vmap);
`f(x) = x / (1 + sqrt(x))` made safe at 0; `defjvps`; `clip_gradient` as a custom_vjp
with nondiff arguments; and the implicit-function `fixed_point` custom_vjp used for a
Newton square root with a `while_loop`, differentiated once and twice (issue 13 item 5:
the rule is used at both orders). Change: values returned instead of printed.
"""

from functools import partial

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    out = {}

    @jax.custom_jvp
    def log1pexp(x):
        return jnp.log(1. + jnp.exp(x))

    @log1pexp.defjvp
    def log1pexp_jvp(primals, tangents):
        x, = primals
        x_dot, = tangents
        ans = log1pexp(x)
        ans_dot = (1 - 1 / (1 + jnp.exp(x))) * x_dot
        return ans, ans_dot

    out["log1pexp_grad"] = jax.jit(jax.grad(log1pexp))(jnp.array(100.))
    out["log1pexp_vmap"] = jax.vmap(jax.jit(jax.grad(log1pexp)))(jnp.arange(3.))
    out["log1pexp_hessian"] = jax.grad(jax.grad(log1pexp))(1.5)

    @jax.custom_jvp
    def f(x):
        return x / (1 + jnp.sqrt(x))

    @f.defjvp
    def f_jvp(primals, tangents):
        x, = primals
        x_dot, = tangents
        ans = f(x)
        ans_dot = ((jnp.sqrt(x) + 2) / (2 * (jnp.sqrt(x) + 1) ** 2)) * x_dot
        return ans, ans_dot

    out["safe_grad_at_0"] = jax.grad(f)(0.)
    out["safe_grad_at_4"] = jax.grad(f)(4.)

    @jax.custom_jvp
    def g(x, y):
        return jnp.sin(x) * y

    g.defjvps(lambda x_dot, primal_out, x, y: jnp.cos(x) * x_dot * y,
              lambda y_dot, primal_out, x, y: jnp.sin(x) * y_dot)
    out["defjvps_grad"] = jax.grad(g, (0, 1))(2., 3.)
    out["defjvps_jvp"] = jax.jvp(g, (2., 3.), (1., 0.5))

    @partial(jax.custom_vjp, nondiff_argnums=(0, 1))
    def clip_gradient(lo, hi, x):
        return x

    def clip_gradient_fwd(lo, hi, x):
        return x, None

    def clip_gradient_bwd(lo, hi, _, g):
        return (jnp.clip(g, lo, hi),)

    clip_gradient.defvjp(clip_gradient_fwd, clip_gradient_bwd)

    def clip_sin(x):
        x = clip_gradient(-0.75, 0.75, x)
        return jnp.sin(x)

    t = jnp.linspace(0, 10, 50)
    out["clip_sin_grads"] = jax.vmap(jax.grad(clip_sin))(t)

    # implicit differentiation of a fixed point: the Newton square root
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
        a_bar, = vjp_a(fixed_point(partial(rev_iter, f), (a, x_star, x_star_bar),
                                   x_star_bar))
        return a_bar, jnp.zeros_like(x_star)

    def rev_iter(f, packed, u):
        a, x_star, x_star_bar = packed
        _, vjp_x = jax.vjp(lambda x: f(a, x), x_star)
        return x_star_bar + vjp_x(u)[0]

    fixed_point.defvjp(fixed_point_fwd, fixed_point_rev)

    def newton_sqrt(a):
        update = lambda a, x: 0.5 * (x + a / x)
        return fixed_point(update, a, a)

    out["newton_sqrt"] = newton_sqrt(2.)
    out["newton_sqrt_grad"] = jax.grad(newton_sqrt)(2.)
    out["newton_sqrt_grad_grad"] = jax.grad(jax.grad(newton_sqrt))(2.)
    return out


def test_custom_derivatives_match_jax():
    got, _ = check_against_jax("test_jax_custom_derivatives", program)
    assert abs(got["newton_sqrt_grad_grad"] - (-0.25 * 2.0 ** -1.5)) < 1e-4
