"""Port: Newton's method, root finding and minimization, as written with JAX's
`lax.while_loop`, `grad` and `hessian` (the pattern of JAX's control-flow docs and of
the autodiff cookbook's Hessian section; jax-ml/jax docs/control-flow.md).

Root finding: the derivative comes from `grad` inside the loop body; a `vmap` over
starting points and a `jit` of the whole solve. Minimization: Newton steps on the
Rosenbrock function with `hessian` and `jnp.linalg.solve`, under `lax.fori_loop`.
"""

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    def f(x):
        return x ** 3 - 2 * x - 5

    df = jax.grad(f)

    def newton_root(x0, tol=1e-6, max_iter=50):
        def cond(state):
            x, step, i = state
            return (jnp.abs(step) > tol) & (i < max_iter)

        def body(state):
            x, _, i = state
            step = f(x) / df(x)
            return x - step, step, i + 1

        x, _, n = lax.while_loop(cond, body, (x0, jnp.array(1.0), 0))
        return x, n

    root, iters = jax.jit(newton_root)(2.0)
    roots = jax.vmap(lambda x0: newton_root(x0)[0])(jnp.array([1.5, 2.0, 3.0, 10.0]))

    def rosenbrock(p):
        x, y = p[0], p[1]
        return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2

    def newton_step(i, p):
        g = jax.grad(rosenbrock)(p)
        H = jax.hessian(rosenbrock)(p)
        return p - jnp.linalg.solve(H, g)

    path = [jnp.array([-1.2, 1.0])]
    for _ in range(6):
        path.append(newton_step(0, path[-1]))
    p_final = jax.jit(lambda p: lax.fori_loop(0, 6, newton_step, p))(jnp.array([-1.2, 1.0]))
    return {"root": root, "iters": iters, "roots": roots, "residual": f(root),
            "path": jnp.stack(path), "p_final": p_final,
            "hessian_at_start": jax.hessian(rosenbrock)(jnp.array([-1.2, 1.0]))}


def test_newton_matches_jax():
    got, _ = check_against_jax("test_jax_newton", program, rtol=1e-4, atol=1e-5)
    assert abs(got["residual"]) < 1e-4
