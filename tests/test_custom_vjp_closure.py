"""custom_vjp and custom_jvp functions that close over values traced by an enclosing
transformation (an argument of an enclosing jit, a value being vmapped).

Those values become inputs of the call, so jit, vmap, grad and their compositions work,
with the custom rule in charge of the derivative: as in JAX, and also where JAX 0.10 fails
on such a closure (`grad(jit(f))`, a custom function inside a `scan` body). Differentiating
with respect to a closed-over value is refused, as JAX refuses it: the rule gives
derivatives for the function's arguments only. Every value below is checked against its
closed form; the rules multiply the true derivative by SCALE, which proves that they are
the ones used.
"""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import lax
from nanofn._custom import CustomJVPException, CustomVJPException
from nanofn.errors import UnexpectedTracerError

SCALE = 10.0


def vjp_model(x, s):
    """x * s as a custom_vjp function closing over s; its rule says d/dx = SCALE * s."""
    @nanofn.custom_vjp
    def f(y):
        return y * s

    def f_fwd(y):
        return f(y), None

    def f_bwd(_, g):
        return (SCALE * g * s,)

    f.defvjp(f_fwd, f_bwd)
    return f(x)


def jvp_model(x, s):
    """x * s as a custom_jvp function closing over s; its rule says d/dx = SCALE * s."""
    @nanofn.custom_jvp
    def f(y):
        return y * s

    @f.defjvp
    def f_jvp(primals, tangents):
        (y,), (t,) = primals, tangents
        return f(y), SCALE * t * s

    return f(x)


MODELS = pytest.mark.parametrize("model", [vjp_model, jvp_model],
                                 ids=["custom_vjp", "custom_jvp"])
ERRORS = {vjp_model: CustomVJPException, jvp_model: CustomJVPException}


def _close(got, want, rtol=1e-6):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=1e-12)


# ======================================================================== jit


@MODELS
def test_forward_under_jit_and_nested_jit(model):
    jitted = nanofn.jit(model)
    _close(jitted(2.0, 3.0), 6.0)
    _close(jitted(2.0, 5.0), 10.0)  # the compiled program takes the new value
    inner_jit = nanofn.jit(lambda x, s: nanofn.jit(lambda y: model(y, s))(x) + 1.0)
    _close(inner_jit(2.0, 3.0), 7.0)
    _close(nanofn.jit(nanofn.jit(model))(2.0, 4.0), 8.0)


@MODELS
def test_grad_of_jit_and_jit_of_grad(model):
    _close(nanofn.grad(model)(2.0, 3.0), SCALE * 3.0)
    _close(nanofn.jit(nanofn.grad(model))(2.0, 3.0), SCALE * 3.0)
    jitted = nanofn.jit(model)
    _close(nanofn.grad(jitted)(2.0, 3.0), SCALE * 3.0)
    _close(nanofn.grad(jitted)(2.0, 5.0), SCALE * 5.0)
    _close(nanofn.jit(nanofn.grad(nanofn.jit(model)))(2.0, 4.0), SCALE * 4.0)
    value, g = nanofn.jit(nanofn.value_and_grad(model))(2.0, 3.0)
    _close(value, 6.0)
    _close(g, SCALE * 3.0)


def test_make_jaxpr_shows_the_closed_over_value_as_an_input():
    jaxpr = nanofn.make_jaxpr(vjp_model)(2.0, 3.0)
    (eqn,) = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "custom_vjp_call"]
    assert len(eqn.invars) == 2  # s, then x
    assert eqn.invars[0] is jaxpr.jaxpr.invars[1]


# ======================================================================== vmap


@MODELS
def test_vmap_of_the_outer_function(model):
    xs, ss = fnp.array([1.0, 2.0, 3.0]), fnp.array([4.0, 5.0, 6.0])
    _close(nanofn.vmap(model)(xs, ss), [4.0, 10.0, 18.0])
    _close(nanofn.vmap(model, in_axes=(0, None))(xs, 2.0), [2.0, 4.0, 6.0])
    _close(nanofn.vmap(nanofn.grad(model))(xs, ss), SCALE * np.array([4.0, 5.0, 6.0]))
    _close(nanofn.jit(nanofn.vmap(nanofn.grad(model)))(xs, ss), SCALE * np.array([4.0, 5.0, 6.0]))
    _close(nanofn.grad(lambda x, s: nanofn.vmap(model)(x, s).sum())(xs, ss),
           SCALE * np.array([4.0, 5.0, 6.0]))
    # a closed-over value batched where the function's argument is not
    _close(nanofn.vmap(lambda s: model(2.0, s))(ss), [8.0, 10.0, 12.0])


# ======================================================================== arrays


def test_closed_over_array_custom_vjp():
    w = fnp.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])  # y -> w @ y
    c = fnp.array([0.5, -2.0])

    def loss(x, w):
        @nanofn.custom_vjp
        def f(y):
            return w @ y

        f.defvjp(lambda y: (f(y), None), lambda _, g: (SCALE * (w.T @ g),))
        return fnp.sum(f(x) * c)

    x = fnp.array([1.0, 1.0, 2.0])
    want = SCALE * np.asarray(w).T @ np.asarray(c)
    _close(nanofn.jit(loss)(x, w), np.asarray(c) @ (np.asarray(w) @ np.asarray(x)))
    _close(nanofn.grad(nanofn.jit(loss))(x, w), want)
    _close(nanofn.jit(nanofn.grad(loss))(x, w), want)
    ws = fnp.stack([w, 2.0 * w])
    _close(nanofn.vmap(nanofn.grad(loss), in_axes=(None, 0))(x, ws), [want, 2.0 * want])


def test_closed_over_array_custom_jvp():
    w = fnp.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])

    def apply(x, w):
        @nanofn.custom_jvp
        def f(y):
            return w @ y

        f.defjvp(lambda p, t: (f(p[0]), SCALE * (w @ t[0])))
        return f(x)

    x, t = fnp.array([1.0, 1.0, 2.0]), fnp.array([0.0, 1.0, -1.0])
    _, t_out = nanofn.jit(lambda x, t, w: nanofn.jvp(lambda y: apply(y, w), (x,), (t,)))(x, t, w)
    _close(t_out, SCALE * (np.asarray(w) @ np.asarray(t)))
    jac = nanofn.jit(nanofn.jacrev(apply))(x, w)
    _close(jac, SCALE * np.asarray(w))
    _close(nanofn.jacfwd(nanofn.jit(apply))(x, w), SCALE * np.asarray(w))


def test_a_function_passed_in_nondiff_argnums_may_close_over_traced_values():
    apply = nanofn.custom_vjp(lambda fn, x: fn(x), nondiff_argnums=(0,))
    apply.defvjp(lambda fn, x: (fn(x), x), lambda fn, x, g: (SCALE * g * x,))

    def f(x, s):
        return apply(lambda y: s * y * y, x)

    _close(nanofn.jit(f)(2.0, 3.0), 12.0)
    _close(nanofn.jit(nanofn.grad(f))(2.0, 3.0), SCALE * 2.0)
    _close(nanofn.grad(nanofn.jit(f))(2.0, 3.0), SCALE * 2.0)


# ======================================================================== second order


def _newton_sqrt(a, s):
    """sqrt(a * s) by Newton's method: a while_loop, which reverse mode cannot enter."""
    def body(x):
        return 0.5 * (x + a * s / x)
    return lax.while_loop(lambda c: fnp.abs(c[0] - c[1]) > 1e-6 * c[1],
                          lambda c: (c[1], body(c[1])), (a, body(a)))[1]


def vjp_sqrt(a, s):
    @nanofn.custom_vjp
    def f(a):
        return _newton_sqrt(a, s)

    def f_fwd(a):
        out = f(a)
        return out, out

    def f_bwd(out, g):  # d sqrt(a s) / da = s / (2 sqrt(a s))
        return (g * s / (2.0 * out),)

    f.defvjp(f_fwd, f_bwd)
    return f(a)


def jvp_sqrt(a, s):
    @nanofn.custom_jvp
    def f(a):
        return _newton_sqrt(a, s)

    @f.defjvp
    def f_jvp(primals, tangents):
        out = f(primals[0])
        return out, tangents[0] * s / (2.0 * out)

    return f(a)


def _d1(a, s):
    return 0.5 * np.sqrt(s / a)


def _d2(a, s):
    return -0.25 * np.sqrt(s) * a ** -1.5


SQRTS = pytest.mark.parametrize("sqrt", [vjp_sqrt, jvp_sqrt], ids=["custom_vjp", "custom_jvp"])


@SQRTS
def test_grad_of_grad_uses_the_rule_at_both_orders(sqrt):
    a, s = 2.0, 3.0
    _close(nanofn.jit(sqrt)(a, s), np.sqrt(a * s))
    _close(nanofn.jit(nanofn.grad(sqrt))(a, s), _d1(a, s))
    _close(nanofn.jit(nanofn.grad(nanofn.grad(sqrt)))(a, s), _d2(a, s), rtol=1e-5)
    jitted = nanofn.jit(sqrt)
    jitted(a, s)  # compiled outside any grad: the gradients below replay its program
    _close(nanofn.grad(jitted)(a, s), _d1(a, s))
    _close(nanofn.grad(nanofn.grad(jitted))(a, s), _d2(a, s), rtol=1e-5)
    as_, ss = fnp.array([2.0, 4.0]), fnp.array([3.0, 5.0])
    _close(nanofn.vmap(nanofn.grad(nanofn.grad(sqrt)))(as_, ss), _d2(np.asarray(as_),
                                                                      np.asarray(ss)), rtol=1e-5)
    _close(nanofn.jit(nanofn.vmap(nanofn.grad(sqrt)))(as_, ss), _d1(np.asarray(as_),
                                                                     np.asarray(ss)))


def test_hessian_of_a_custom_jvp_function_closing_over_a_jit_argument():
    _close(nanofn.jit(nanofn.hessian(jvp_sqrt))(2.0, 3.0), _d2(2.0, 3.0), rtol=1e-5)


# ======================================================================== control flow


@MODELS
def test_closure_over_a_scan_step_value(model):
    def run(x, ss):
        return lax.scan(lambda c, s: (model(c, s), None), x, ss)[0]

    ss = fnp.array([2.0, 3.0])
    _close(run(1.0, ss), 6.0)
    _close(nanofn.grad(run)(1.0, ss), SCALE ** 2 * 6.0)
    _close(nanofn.jit(nanofn.grad(run))(1.0, ss), SCALE ** 2 * 6.0)
    with pytest.raises(ERRORS[model], match="closes over"):
        nanofn.grad(run, argnums=1)(1.0, ss)


# ======================================================================== refused


@MODELS
def test_differentiating_a_closed_over_value_is_refused(model):
    err = ERRORS[model]
    assert issubclass(err, UnexpectedTracerError)
    kind = "custom_vjp" if model is vjp_model else "custom_jvp"
    message = (rf"{kind} function 'f' is differentiated with respect to a value it closes "
               r"over \(f32\[\]\)")
    with pytest.raises(err, match=message):
        nanofn.grad(model, argnums=1)(2.0, 3.0)
    with pytest.raises(err, match="closes over"):
        nanofn.grad(model, argnums=(0, 1))(2.0, 3.0)
    with pytest.raises(err, match="closes over"):
        nanofn.grad(lambda s: model(2.0, s))(3.0)
    with pytest.raises(err, match="closes over"):
        nanofn.jit(nanofn.grad(model, argnums=1))(2.0, 3.0)
    with pytest.raises(err, match="closes over"):
        nanofn.grad(nanofn.jit(model), argnums=1)(2.0, 3.0)
    with pytest.raises(err, match="closes over"):
        nanofn.vmap(nanofn.grad(model, argnums=1))(fnp.ones(2), fnp.ones(2))
    with pytest.raises(err, match="closes over"):
        nanofn.jvp(model, (2.0, 3.0), (0.0, 1.0))
    with pytest.raises(err, match="closes over"):
        nanofn.jit(lambda x, s: nanofn.jvp(lambda s: model(x, s), (s,), (1.0,)))(2.0, 3.0)


def test_forward_mode_of_custom_vjp_is_still_refused():
    with pytest.raises(TypeError, match="can't apply forward-mode autodiff"):
        nanofn.jit(lambda x, s: nanofn.jvp(lambda x: vjp_model(x, s), (x,), (1.0,)))(2.0, 3.0)
    _, t = nanofn.jit(lambda x, s: nanofn.jvp(lambda x: jvp_model(x, s), (x,), (1.0,)))(2.0, 3.0)
    _close(t, SCALE * 3.0)


def test_a_value_only_bwd_reads_may_be_differentiated():
    def model(x, s):  # the output does not depend on s; bwd reads it
        @nanofn.custom_vjp
        def f(y):
            return 3.0 * y

        f.defvjp(lambda y: (f(y), None), lambda _, g: (g * s,))
        return f(x)

    _close(nanofn.grad(model, argnums=1)(2.0, 3.0), 0.0)
    _close(nanofn.grad(nanofn.grad(model), argnums=1)(2.0, 3.0), 1.0)  # d/ds of bwd's g * s
    _close(nanofn.jit(nanofn.grad(nanofn.grad(model), argnums=1))(2.0, 3.0), 1.0)
    _, t = nanofn.jvp(lambda s: nanofn.grad(model)(2.0, s), (3.0,), (1.0,))
    _close(t, 1.0)


# ======================================================================== unchanged


def test_functions_closing_over_no_traced_value_run_as_before():
    calls = {"fwd": 0, "bwd": 0}

    def model(x, s):
        @nanofn.custom_vjp
        def f(y):
            return y * s

        def f_fwd(y):
            calls["fwd"] += 1
            return f(y), None

        def f_bwd(_, g):
            calls["bwd"] += 1
            return (SCALE * g * s,)

        f.defvjp(f_fwd, f_bwd)
        return f(x)

    _close(nanofn.grad(model)(2.0, 3.0), SCALE * 3.0)  # s is a Python float here
    assert calls == {"fwd": 1, "bwd": 1}  # run once each, never traced to look inside
    _close(model(2.0, 3.0), 6.0)
    assert calls == {"fwd": 1, "bwd": 1}
