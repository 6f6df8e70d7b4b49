"""custom_jvp and custom_vjp: the rules are used, compose with jit/vmap/grad, and bad
rules give clear errors."""

import functools

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import _core as core
from nanofn import custom_jvp, custom_vjp, hessian, jacfwd, jacrev, vmap
from nanofn.testing import check_grads

RNG = np.random.default_rng(2)


def _arr(*shape):
    return fnp.asarray(RNG.normal(size=shape))


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# ======================================================================== custom_jvp


def make_sin_with_rule(scale=1.0):
    """sin whose rule says d sin = scale * cos: scale != 1 proves the rule is used."""
    calls = {"fun": 0, "rule": 0}

    @custom_jvp
    def f(x):
        calls["fun"] += 1
        return fnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        calls["rule"] += 1
        (x,), (t,) = primals, tangents
        return f(x), scale * fnp.cos(x) * t

    return f, calls


def test_custom_jvp_rule_is_used_by_every_mode():
    f, calls = make_sin_with_rule(scale=3.0)
    x = _arr(4)
    _close(f(x), np.sin(np.asarray(x)))
    assert calls == {"fun": 1, "rule": 0}  # eager: just the function
    want = 3.0 * np.cos(np.asarray(x))
    _close(nanofn.jvp(f, (x,), (fnp.ones_like(x),))[1], want)
    _close(nanofn.grad(lambda v: f(v).sum())(x), want)
    _close(jacfwd(f)(x), np.diag(want))
    _close(jacrev(f)(x), np.diag(want))


def test_custom_jvp_numerically_stable_example():
    @custom_jvp
    def log1pexp(x):
        return fnp.log1p(fnp.exp(x))

    @log1pexp.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return log1pexp(x), t * fnp.where(x > 0, 1.0 / (1.0 + fnp.exp(-x)),
                                          fnp.exp(x) / (1.0 + fnp.exp(x)))

    assert float(nanofn.grad(log1pexp)(fnp.asarray(800.0))) == 1.0
    with np.errstate(invalid="ignore"):  # inf * 0 in the naive derivative
        naive = nanofn.grad(lambda x: fnp.log1p(fnp.exp(x)))(fnp.asarray(800.0))
    assert np.isnan(float(naive))


def test_custom_jvp_higher_order_and_check_grads():
    f, _ = make_sin_with_rule()
    x = _arr(3)
    _close(nanofn.grad(nanofn.grad(lambda v: f(v).sum()))(x[0]), -np.sin(np.asarray(x[0])))
    _close(hessian(lambda v: f(v).sum())(x), np.diag(-np.sin(np.asarray(x))))
    check_grads(f, (x,), order=2)


def test_custom_jvp_nondiff_argnums_and_kwargs():
    @functools.partial(custom_jvp, nondiff_argnums=(0,))
    def apply(fn, x, scale=2.0):
        return fn(x) * scale

    @apply.defjvp
    def apply_jvp(fn, primals, tangents):
        x, scale = primals
        tx, tscale = tangents
        y = apply(fn, x, scale)
        return y, 10.0 * tx + tscale * fn(x)  # deliberately not the true derivative in x

    x = _arr(3)
    _close(apply(fnp.sin, x), 2 * np.sin(np.asarray(x)))
    _close(nanofn.grad(lambda v: apply(fnp.sin, v).sum())(x), np.full(3, 10.0))
    _close(nanofn.grad(lambda s: apply(fnp.sin, x, scale=s).sum())(fnp.asarray(2.0)),
           np.sin(np.asarray(x)).sum(), tol=1e-6)  # float32: the dtype of the scale


def test_custom_jvp_defjvps_and_integer_argument():
    @custom_jvp
    def f(x, y):
        return x * y

    f.defjvps(lambda tx, out, x, y: 5.0 * tx * y, None)
    x, y = fnp.asarray(3.0), fnp.asarray(4.0)
    assert float(nanofn.grad(f, 0)(x, y)) == 20.0
    assert float(nanofn.grad(f, 1)(x, y)) == 0.0  # None: no derivative for y

    @custom_jvp
    def shift(x, n):
        return x + n.astype(x.dtype)

    @shift.defjvp
    def _(primals, tangents):
        (x, n), (tx, tn) = primals, tangents
        assert tn.dtype == n.dtype  # integer arguments get integer (zero) tangents
        return shift(x, n), tx

    _close(nanofn.grad(lambda v: shift(v, fnp.asarray(3)).sum())(_arr(2)), np.ones(2))


def test_custom_jvp_under_jit_and_vmap():
    f, _ = make_sin_with_rule(scale=3.0)
    x = _arr(4)
    want = 3.0 * np.cos(np.asarray(x))
    jaxpr = nanofn.make_jaxpr(f)(x)
    assert [e.primitive.name for e in jaxpr.eqns] == ["custom_jvp_call"]
    _close(nanofn.jit(f)(x), np.sin(np.asarray(x)))
    _close(nanofn.grad(nanofn.jit(lambda v: f(v).sum()))(x), want)
    _close(nanofn.jit(nanofn.grad(lambda v: f(v).sum()))(x), want)
    _close(nanofn.jvp(nanofn.jit(f), (x,), (fnp.ones_like(x),))[1], want)
    xs = _arr(3, 4)
    _close(vmap(f)(xs), np.sin(np.asarray(xs)))
    _close(vmap(nanofn.grad(lambda v: f(v).sum()))(xs), 3.0 * np.cos(np.asarray(xs)))
    _close(nanofn.grad(lambda m: vmap(f)(m).sum())(xs), 3.0 * np.cos(np.asarray(xs)))
    _close(nanofn.jit(vmap(nanofn.grad(lambda v: f(v).sum())))(xs), 3.0 * np.cos(np.asarray(xs)))
    _close(vmap(vmap(f), in_axes=1)(xs), np.sin(np.asarray(xs)).T)


def test_python_control_flow_on_values_works_eagerly():
    @custom_jvp
    def f(x):
        return fnp.sin(x) if x > 0 else fnp.cos(x)

    f.defjvp(lambda p, t: (f(p[0]), 7.0 * t[0]))

    @custom_vjp
    def g(x):
        return fnp.sin(x) if x > 0 else fnp.cos(x)

    g.defvjp(lambda x: (g(x), None), lambda res, ct: (7.0 * ct,))
    for fun in (f, g):
        for x in (1.0, -1.0):
            assert float(nanofn.grad(fun)(fnp.asarray(x))) == 7.0


def test_custom_jvp_errors():
    @custom_jvp
    def f(x):
        return {"a": x, "b": x * 2}

    with pytest.raises(AttributeError, match="No JVP rule is defined for the custom_jvp "
                                             "function 'f'"):
        f(1.0)
    x = _arr(3)
    f.defjvp(lambda p, t: p[0])
    with pytest.raises(TypeError, match="must return a pair"):
        nanofn.jvp(f, (x,), (x,))
    f.defjvp(lambda p, t: ((p[0], p[0] * 2), (t[0], t[0])))
    with pytest.raises(TypeError, match=r"same structure as the function:\n"
                                        r"  function returns: PyTreeDef\(\{'a': \*, 'b': \*\}\)"):
        nanofn.jvp(f, (x,), (x,))
    f.defjvp(lambda p, t: ({"a": p[0], "b": p[0] * 2}, (t[0], t[0])))
    with pytest.raises(TypeError, match="primal and tangent outputs with the same structure"):
        nanofn.jvp(f, (x,), (x,))
    f.defjvp(lambda p, t: ({"a": p[0], "b": p[0] * 2}, {"a": t[0], "b": t[0][:2]}))
    with pytest.raises(TypeError, match=r"returned a tangent f64\[2\] for the primal output "
                                        r"f64\[3\] at leaf 1"):
        nanofn.jvp(f, (x,), (x,))
    f.defjvp(lambda p, t: ({"a": p[0], "b": p[0][:2]}, {"a": t[0], "b": t[0][:2]}))
    with pytest.raises(TypeError, match=r"returned a primal output f64\[2\] at leaf 1, but the "
                                        r"function returns f64\[3\]"):
        nanofn.jvp(f, (x,), (x,))

    g = custom_jvp(lambda fn, x: fn(x), nondiff_argnums=(0,))
    with pytest.raises(TypeError, match="defjvps cannot be used with nondiff_argnums"):
        g.defjvps(None)
    h = custom_jvp(lambda x, y: x * y, nondiff_argnums=(1,))
    h.defjvp(lambda y, p, t: (h(p[0], y), t[0] * y))
    with pytest.raises(core.UnexpectedTracerError,
                       match="argument 'y' \\(positional argument 1\\) is in nondiff_argnums"):
        nanofn.grad(lambda v: h(v, v))(fnp.asarray(1.0))
    k = custom_jvp(lambda x, mode: x)
    k.defjvp(lambda p, t: (p[0], t[0]))
    with pytest.raises(TypeError, match="holds a str.*Mark non-array arguments with "
                                        "nondiff_argnums"):
        nanofn.grad(lambda v: k(v, "fast"))(fnp.asarray(1.0))


# ======================================================================== custom_vjp


def make_sin_vjp(scale=1.0):
    calls = {"fun": 0, "fwd": 0, "bwd": 0}

    @custom_vjp
    def f(x):
        calls["fun"] += 1
        return fnp.sin(x)

    def fwd(x):
        calls["fwd"] += 1
        return fnp.sin(x), fnp.cos(x)

    def bwd(cos_x, g):
        calls["bwd"] += 1
        return (scale * cos_x * g,)

    f.defvjp(fwd, bwd)
    return f, calls


def test_custom_vjp_rule_is_used():
    f, calls = make_sin_vjp(scale=3.0)
    x = _arr(4)
    _close(f(x), np.sin(np.asarray(x)))
    assert calls == {"fun": 1, "fwd": 0, "bwd": 0}  # eager: fun only, as in JAX
    g = nanofn.grad(lambda v: f(v).sum())(x)
    _close(g, 3.0 * np.cos(np.asarray(x)))
    # fwd and bwd ran once; fun was traced once (abstractly) to check fwd's output
    assert calls["fwd"] == 1 and calls["bwd"] == 1 and calls["fun"] == 2
    nanofn.grad(lambda v: f(v).sum())(x)
    assert calls["fwd"] == 2 and calls["bwd"] == 2 and calls["fun"] == 2  # check is cached
    _close(jacrev(f)(x), np.diag(3.0 * np.cos(np.asarray(x))))


def test_custom_vjp_clip_gradient_pytrees_and_none_cotangents():
    @custom_vjp
    def f(params, x):
        return {"y": params["w"] * x, "z": params["b"] + x}

    def fwd(params, x):
        return f(params, x), (params["w"], x)

    def bwd(res, ct):
        w, x = res
        # clip the gradient for w; say "zero" for b with None; pass x's through
        return {"w": fnp.clip(ct["y"] * x, -1.0, 1.0), "b": None}, ct["y"] * w + ct["z"]

    f.defvjp(fwd, bwd)
    params = {"w": fnp.asarray([1.0, 2.0], "float64"), "b": fnp.asarray([0.5, 0.5], "float64")}
    x = fnp.asarray([3.0, -0.1], "float64")
    gp, gx = nanofn.grad(lambda p, v: fnp.sum(f(p, v)["y"]) + fnp.sum(f(p, v)["z"]),
                         argnums=(0, 1))(params, x)
    _close(gp["w"], [1.0, -0.1])
    _close(gp["b"], [0.0, 0.0])
    _close(gx, [2.0, 3.0])  # ct_y * w + ct_z


def test_custom_vjp_nondiff_argnums_multiple_outputs_and_kwargs():
    @functools.partial(custom_vjp, nondiff_argnums=(1,))
    def scale_pair(x, k, y=1.0):
        return x * k, x * y

    def fwd(x, k, y=1.0):
        return scale_pair(x, k, y), (x, y)

    def bwd(k, res, cts):
        x, y = res
        ct0, ct1 = cts
        return (ct0 * k * 100.0 + ct1 * y, (ct1 * x).sum().astype(y.dtype))

    scale_pair.defvjp(fwd, bwd)
    x = _arr(3)
    gx = nanofn.grad(lambda v: scale_pair(v, 2.0)[0].sum())(x)
    _close(gx, np.full(3, 200.0))  # only the first output's cotangent is non-zero
    gy = nanofn.grad(lambda y: scale_pair(x, 2.0, y=y)[1].sum())(fnp.asarray(1.5, "float64"))
    _close(gy, np.asarray(x).sum())


def test_custom_vjp_under_jit_vmap_and_grad_of_grad():
    f, _ = make_sin_vjp()
    x = _arr(4)
    want = np.cos(np.asarray(x))
    jaxpr = nanofn.make_jaxpr(f)(x)
    assert [e.primitive.name for e in jaxpr.eqns] == ["custom_vjp_call"]
    loss = lambda v: f(v).sum()  # noqa: E731
    _close(nanofn.jit(f)(x), np.sin(np.asarray(x)))
    _close(nanofn.grad(nanofn.jit(loss))(x), want)
    _close(nanofn.jit(nanofn.grad(loss))(x), want)
    xs = _arr(3, 4)
    _close(vmap(nanofn.grad(loss))(xs), np.cos(np.asarray(xs)))
    _close(nanofn.grad(lambda m: vmap(loss)(m).sum())(xs), np.cos(np.asarray(xs)))
    _close(nanofn.jit(vmap(nanofn.grad(loss)))(xs), np.cos(np.asarray(xs)))
    _close(vmap(vmap(f))(xs), np.sin(np.asarray(xs)))
    # second order: the residual cos(x) is differentiated through fwd
    _close(nanofn.grad(nanofn.grad(lambda v: f(v)))(x[0]), -np.sin(np.asarray(x[0])))
    _close(nanofn.grad(lambda v: nanofn.grad(loss)(v).sum())(x), -np.sin(np.asarray(x)))
    check_grads(f, (x,), order=2, modes=("rev",))


def test_custom_vjp_forward_mode_is_refused():
    f, _ = make_sin_vjp()
    x = _arr(3)
    with pytest.raises(TypeError, match=r"can't apply forward-mode autodiff \(jvp\) to a "
                                        r"custom_vjp function \('f'\)"):
        nanofn.jvp(f, (x,), (x,))
    with pytest.raises(TypeError, match="forward-mode"):
        jacfwd(f)(x)


def test_custom_vjp_errors():
    @custom_vjp
    def f(x, y):
        return x * y

    x, y = _arr(3), _arr(3)
    loss = lambda a, b: f(a, b).sum()  # noqa: E731
    with pytest.raises(AttributeError, match="call f.defvjp\\(fwd, bwd\\)"):
        f(x, y)
    ok_fwd = lambda a, b: (f(a, b), (a, b))  # noqa: E731

    def grad_with(fwd, bwd):
        f.defvjp(fwd, bwd)
        return nanofn.grad(loss, argnums=(0, 1))(x, y)

    with pytest.raises(TypeError, match="fwd rule '<lambda>' of function 'f' must return a pair"):
        grad_with(lambda a, b: f(a, b), None)
    with pytest.raises(TypeError, match=r"primal outputs with the same structure as the "
                                        r"function:\n  function returns: PyTreeDef\(\*\)\n"
                                        r"  rule returns:     PyTreeDef\(\(\*,\)\)"):
        grad_with(lambda a, b: ((f(a, b),), None), None)
    with pytest.raises(TypeError, match="returned a residual of type str"):
        grad_with(lambda a, b: (f(a, b), "oops"), None)

    def bwd_bare(res, g):
        return g * res[1]

    with pytest.raises(TypeError, match=r"bwd rule 'bwd_bare' of function 'f' must return a "
                                        r"tuple with one cotangent per differentiable argument "
                                        r"\(2 here: argument 'x' \(positional argument 0\), "
                                        r"argument 'y' \(positional argument 1\)\), got a value "
                                        r"of type Array"):
        grad_with(ok_fwd, bwd_bare)
    with pytest.raises(TypeError, match="got a tuple of length 1"):
        grad_with(ok_fwd, lambda res, g: (g,))
    with pytest.raises(TypeError, match=r"cotangent of type f64\[2\] for argument 'y' "
                                        r"\(positional argument 1\), whose primal is f64\[3\]"):
        grad_with(ok_fwd, lambda res, g: (g, g[:2]))
    with pytest.raises(TypeError, match=r"cotangent of type f32\[3\] for argument 'x'"):
        grad_with(ok_fwd, lambda res, g: (g.astype("float32"), g))
    with pytest.raises(TypeError, match="whose structure does not match the argument's"):
        grad_with(ok_fwd, lambda res, g: ({"a": g}, g))
    # correct rule: no error, right value
    gx, gy = grad_with(ok_fwd, lambda res, g: (g * res[1], g * res[0]))
    _close(gx, y)
    _close(gy, x)

    h = custom_vjp(lambda x, n: x * n, nondiff_argnums=(1,))
    h.defvjp(lambda x, n: (x * n, None), lambda n, res, g: (g * n,))
    with pytest.raises(core.UnexpectedTracerError, match="is in nondiff_argnums but holds a "
                                                         "traced value"):
        nanofn.grad(lambda v: h(v, v))(fnp.asarray(1.0))
