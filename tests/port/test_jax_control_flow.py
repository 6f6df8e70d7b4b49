"""Port: JAX's "Control flow and logical operators with JIT" tutorial (jax-ml/jax,
docs/control-flow.md).

Its cells: a Python loop under `jit` with a static argument, `lax.cond`, `lax.switch`,
`lax.while_loop`, `lax.fori_loop` (with static and traced bounds), `lax.scan` for a
cumulative sum, `jnp.where`, the logical operators, and `grad` through `cond`,
`fori_loop` and `scan` (the tutorial's table of what each differentiates through).
"""

from functools import partial

from _jax_port import check_against_jax


def program(jax, jnp, lax):
    out = {}

    @partial(jax.jit, static_argnums=(1,))
    def g(x, n):
        i = 0
        while i < n:
            i += 1
        return x + i

    out["static_loop"] = g(10.0, 20)

    def h(x):
        return lax.cond(x > 0, lambda x: x * 2.0, lambda x: -x, x)

    out["cond"] = jnp.stack([jax.jit(h)(3.0), jax.jit(h)(-3.0)])
    out["cond_grad"] = jnp.stack([jax.grad(h)(3.0), jax.grad(h)(-3.0)])
    branches = [lambda x: x - 1, lambda x: x, lambda x: x + 1]
    out["switch"] = jnp.stack([lax.switch(i, branches, 5.0) for i in range(-1, 4)])

    init_val = 0
    cond_fun = lambda x: x < 10
    body_fun = lambda x: x + 1
    out["while"] = lax.while_loop(cond_fun, body_fun, init_val)

    init_val = 0
    start = 0
    stop = 10
    body_fun = lambda i, x: x + i
    out["fori"] = lax.fori_loop(start, stop, body_fun, init_val)
    out["fori_traced"] = jax.jit(lambda n: lax.fori_loop(0, n, lambda i, x: x + i, 0))(10)

    def cumsum(res, el):
        res = res + el
        return res, res

    result_init = 0
    out["scan_total"], out["scan_cumsum"] = lax.scan(cumsum, result_init, jnp.arange(10))

    def power_sum(x):
        return lax.fori_loop(0, 5, lambda i, acc: acc + x ** i, 0.0)

    out["fori_grad"] = jax.grad(power_sum)(1.5)

    def scan_poly(x):
        return lax.scan(lambda c, a: (c * x + a, None), 0.0, jnp.array([1.0, -2.0, 3.0]))[0]

    out["scan_grad"] = jax.grad(scan_poly)(2.0)
    out["scan_grad2"] = jax.grad(jax.grad(scan_poly))(2.0)

    x = jnp.linspace(-2.0, 2.0, 9)
    out["where"] = jnp.where(x > 0, x, 0.01 * x)
    out["logical"] = jnp.stack([jnp.logical_and(x > -1, x < 1),
                                jnp.logical_or(x < -1, x > 1),
                                jnp.logical_not(x > 0)]).astype(jnp.int32)
    out["relu_grad"] = jax.vmap(jax.grad(lambda t: jnp.where(t > 0, t, 0.0)))(x)
    return out


def test_control_flow_matches_jax():
    got, _ = check_against_jax("test_jax_control_flow", program)
    assert int(got["while"]) == 10 and int(got["fori"]) == 45
