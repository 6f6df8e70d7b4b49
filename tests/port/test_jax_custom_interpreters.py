"""Port: JAX's "Writing custom Jaxpr interpreters" tutorial (jax-ml/jax, docs/notebooks/
Writing_custom_interpreters_in_Jax).

Its program cells: looking at the parts of a jaxpr (`examine_jaxpr` of `foo` and `bar`),
the default evaluator `eval_jaxpr` written by hand over `closed_jaxpr.jaxpr` and
`closed_jaxpr.literals` (reading `Literal`s, binding `eqn.primitive` with `eqn.params`),
and the `inverse` interpreter, which walks a jaxpr backwards through a registry keyed by
`lax.exp_p` and `lax.tanh_p`, traced by `make_jaxpr` and run under `jit`, `vmap` and
`grad`. Changes: values returned instead of printed; `safe_map` is written here (the
tutorial imports JAX's private `jax._src.util`); `Literal` comes from `jax.extend.core`
(JAX 0.10 no longer has it in `jax.core`); of the printed jaxprs, what both libraries
share is compared (numbers of variables and equations, avals, the primitives of the
inverse), as nanofn writes `dot` with other equations than XLA's.
"""

from functools import wraps

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax, core, extend):
    out = {}

    def safe_map(f, *args):
        args = list(map(list, args))
        n = len(args[0])
        for arg in args[1:]:
            assert len(arg) == n, f"length mismatch: {list(map(len, args))}"
        return list(map(f, *args))

    def examine_jaxpr(closed_jaxpr):
        jaxpr = closed_jaxpr.jaxpr
        seen = {"n_invars": len(jaxpr.invars), "n_outvars": len(jaxpr.outvars),
                "invar_shapes": [v.aval.shape for v in jaxpr.invars],
                "outvar_shapes": [v.aval.shape for v in jaxpr.outvars]}
        for eqn in jaxpr.eqns:
            # every equation reads variables or literals and binds variables
            assert all(isinstance(v, (extend.core.Var, extend.core.Literal))
                       for v in eqn.invars)
            assert all(isinstance(v, extend.core.Var) for v in eqn.outvars)
            assert isinstance(eqn.params, dict)
        assert str(jaxpr).startswith("{ lambda")
        return seen

    def foo(x):
        return x + 1

    foo_jaxpr = jax.make_jaxpr(foo)(5)
    out["foo"] = examine_jaxpr(foo_jaxpr)
    out["foo/n_eqns"] = len(foo_jaxpr.jaxpr.eqns)
    out["foo/eqn_is_add"] = int(foo_jaxpr.jaxpr.eqns[0].primitive is lax.add_p)

    def bar(w, b, x):
        return jnp.dot(w, x) + b + jnp.ones(5), x

    bar_jaxpr = jax.make_jaxpr(bar)(jnp.ones((5, 10)), jnp.ones(5), jnp.ones(10))
    out["bar"] = examine_jaxpr(bar_jaxpr)

    # 2. the default interpreter, written by hand
    def eval_jaxpr(jaxpr, consts, *args):
        env = {}

        def read(var):
            if type(var) is extend.core.Literal:
                return var.val
            return env[var]

        def write(var, val):
            env[var] = val

        safe_map(write, jaxpr.invars, args)
        safe_map(write, jaxpr.constvars, consts)
        for eqn in jaxpr.eqns:
            invals = safe_map(read, eqn.invars)
            outvals = eqn.primitive.bind(*invals, **eqn.params)
            if not eqn.primitive.multiple_results:
                outvals = [outvals]
            safe_map(write, eqn.outvars, outvals)
        return safe_map(read, jaxpr.outvars)

    def f(x):
        return jnp.exp(jnp.tanh(x))

    closed_jaxpr = jax.make_jaxpr(f)(jnp.ones(5))
    x = jnp.linspace(-1.0, 1.0, 5)
    out["eval_f"] = eval_jaxpr(closed_jaxpr.jaxpr, closed_jaxpr.literals, x)
    out["core_eval_f"] = core.eval_jaxpr(closed_jaxpr.jaxpr, closed_jaxpr.literals, x)
    out["jaxpr_as_fun_f"] = extend.core.jaxpr_as_fun(closed_jaxpr)(x)
    w = jnp.arange(50.0).reshape(5, 10) / 50.0
    args = (w, jnp.arange(5.0), jnp.linspace(0.0, 1.0, 10))
    out["eval_bar"] = eval_jaxpr(bar_jaxpr.jaxpr, bar_jaxpr.literals, *args)
    out["eval_foo"] = eval_jaxpr(foo_jaxpr.jaxpr, foo_jaxpr.literals, 41)
    # the hand-written interpreter is traceable: transformations see the primitives
    out["eval_f_grad"] = jax.grad(
        lambda x: eval_jaxpr(closed_jaxpr.jaxpr, closed_jaxpr.literals, x)[0].sum())(x)
    out["eval_f_jit"] = jax.jit(
        lambda x: eval_jaxpr(closed_jaxpr.jaxpr, closed_jaxpr.literals, x))(x)

    # 3. the inverse interpreter
    inverse_registry = {}
    inverse_registry[lax.exp_p] = jnp.log
    inverse_registry[lax.tanh_p] = jnp.arctanh

    def inverse(fun):
        @wraps(fun)
        def wrapped(*args, **kwargs):
            closed_jaxpr = jax.make_jaxpr(fun)(*args, **kwargs)
            out = inverse_jaxpr(closed_jaxpr.jaxpr, closed_jaxpr.literals, *args)
            return out[0]
        return wrapped

    def inverse_jaxpr(jaxpr, consts, *args):
        env = {}

        def read(var):
            if type(var) is extend.core.Literal:
                return var.val
            return env[var]

        def write(var, val):
            env[var] = val

        safe_map(write, jaxpr.outvars, args)
        safe_map(write, jaxpr.constvars, consts)
        for eqn in jaxpr.eqns[::-1]:
            invals = safe_map(read, eqn.outvars)
            if eqn.primitive not in inverse_registry:
                raise NotImplementedError(f"{eqn.primitive} does not have registered inverse.")
            outval = inverse_registry[eqn.primitive](*invals)
            safe_map(write, eqn.invars, [outval])
        return safe_map(read, jaxpr.invars)

    f_inv = inverse(f)
    out["f_inv_f_1"] = f_inv(f(1.0))
    assert jnp.allclose(f_inv(f(1.0)), 1.0)
    inv_jaxpr = jax.make_jaxpr(inverse(f))(f(1.))
    out["inverse_jaxpr/n_eqns"] = len(inv_jaxpr.jaxpr.eqns)
    out["inverse_jaxpr/prims"] = [int(inv_jaxpr.jaxpr.eqns[0].primitive is lax.log_p),
                                  int(inv_jaxpr.jaxpr.eqns[1].primitive is lax.atanh_p)]
    ys = (jnp.arange(5) + 1.) / 5.
    out["jit_vmap_grad_inverse"] = jax.jit(jax.vmap(jax.grad(inverse(f))))(ys)
    xs = jnp.linspace(-0.9, 0.9, 7)
    out["vmap_inverse"] = jax.vmap(inverse(f))(f(xs))
    out["jit_inverse"] = jax.jit(inverse(f))(f(xs))
    out["grad_inverse_at_f"] = jax.grad(inverse(f))(f(0.3))
    # an equation without an inverse is reported
    try:
        inverse(jnp.sin)(0.5)
        out["sin_has_no_inverse"] = 0
    except NotImplementedError:
        out["sin_has_no_inverse"] = 1
    return out


def test_custom_interpreters_match_jax():
    got, _ = check_against_jax("test_jax_custom_interpreters", program)
    np.testing.assert_allclose(got["vmap_inverse"], np.linspace(-0.9, 0.9, 7), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(got["eval_f/0"], np.exp(np.tanh(np.linspace(-1.0, 1.0, 5))),
                               rtol=1e-6)
