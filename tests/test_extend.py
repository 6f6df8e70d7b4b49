"""Primitives defined the JAX way (nanofn.extend.core.Primitive with the registries of
nanofn.interpreters.ad and .batching): reverse mode derived from a JVP rule or a
transpose rule, batching rules used by vmap, symbolic zeros, and clear errors for missing
rules."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import _core, core, lax
from nanofn.extend.core import (ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Primitive, Var,
                                jaxpr_as_fun, new_jaxpr_eqn)
from nanofn.interpreters import ad, batching, mlir
from nanofn.testing import check_grads

RNG = np.random.default_rng(7)


def _arr(*shape):
    return fnp.asarray(RNG.normal(size=shape))  # float64


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def _same_shape(x):
    return core.ShapedArray(x.shape, x.dtype)


# ------------------------------------------------------------------------ primitives


def make_sin_mul():
    """f(x, y) = sin(x) * y, with a whole JAX JVP rule (no transpose rule) that records
    the tangent types it is given."""
    p = Primitive("sin_mul")
    p.def_impl(lambda x, y: np.sin(x) * y)
    p.def_abstract_eval(lambda x, y: _same_shape(x))
    seen = []

    def jvp(primals, tangents):
        x, y = primals
        tx, ty = tangents
        seen.append(tuple(type(t) for t in tangents))
        out = p.bind(x, y)
        t = ad.Zero.from_primal_value(out)
        if type(tx) is not ad.Zero:
            t = ad.add_tangents(t, fnp.cos(x) * y * tx)
        if type(ty) is not ad.Zero:
            t = ad.add_tangents(t, fnp.sin(x) * ty)
        return out, t

    ad.primitive_jvps[p] = jvp
    batching.defbroadcasting(p)
    return p, seen


def make_multiply_add(transpose=True):
    """The tutorial's multiply_add: its JVP applies multiply_add to tangents, so reverse
    mode needs its transpose rule."""
    p = Primitive("multiply_add")
    p.def_impl(lambda x, y, z: np.add(np.multiply(x, y), z))
    p.def_abstract_eval(lambda x, y, z: _same_shape(x))

    def jvp(primals, tangents):
        x, y, z = primals
        xt, yt, zt = [lax.full_like(x, 0) if type(t) is ad.Zero else t for t in tangents]
        return p.bind(x, y, z), p.bind(xt, y, p.bind(x, yt, zt))

    def transpose_rule(ct, x, y, z):
        zero = lax.full_like(ct, 0)
        ct_x = p.bind(ct, y, zero) if ad.is_undefined_primal(x) else None
        ct_y = p.bind(x, ct, zero) if ad.is_undefined_primal(y) else None
        assert not (ad.is_undefined_primal(x) and ad.is_undefined_primal(y))  # linear
        return ct_x, ct_y, ct if ad.is_undefined_primal(z) else None

    ad.primitive_jvps[p] = jvp
    if transpose:
        ad.primitive_transposes[p] = transpose_rule

    def batch(args, axes):
        size = next(x.shape[d] for x, d in zip(args, axes) if d is not batching.not_mapped)
        return p.bind(*[batching.bdim_at_front(x, d, size) for x, d in zip(args, axes)]), 0

    batching.primitive_batchers[p] = batch
    return p


def make_running_sum():
    """A linear primitive (cumulative sum along the last axis) declared with deflinear."""
    p = Primitive("running_sum")
    p.def_impl(lambda x: np.cumsum(x, axis=-1))
    p.def_abstract_eval(_same_shape)
    calls = {"transpose": 0}

    def transpose_rule(ct):
        calls["transpose"] += 1
        return [fnp.flip(p.bind(fnp.flip(ct, -1)), -1)]

    ad.deflinear(p, transpose_rule)
    batching.primitive_batchers[p] = lambda args, axes: (
        p.bind(fnp.moveaxis(args[0], axes[0], 0)), 0)
    return p, calls


# ------------------------------------------------------------------------ reverse mode


def test_jvp_only_primitive_has_correct_grads_to_second_order():
    p, _ = make_sin_mul()
    f = lambda x, y: p.bind(x, y)  # noqa: E731
    x, y = _arr(4), _arr(4)
    want_x = np.cos(np.asarray(x)) * np.asarray(y)
    _close(nanofn.grad(lambda x: f(x, y).sum())(x), want_x)
    _close(nanofn.grad(lambda y: f(x, y).sum())(y), np.sin(np.asarray(x)))
    _close(nanofn.jit(nanofn.grad(lambda x: f(x, y).sum()))(x), want_x)
    _close(nanofn.hessian(lambda x: f(x, y).sum())(x),
           np.diag(-np.sin(np.asarray(x)) * np.asarray(y)))
    check_grads(f, (x, y), order=2)
    check_grads(lambda x: f(f(x, x), x), (x,), order=2, modes=("rev",))


def test_jvp_applying_its_own_primitive_uses_the_transpose_rule():
    p = make_multiply_add()
    square_add = lambda a, b: p.bind(a, a, b)  # noqa: E731
    assert float(nanofn.grad(square_add)(2.0, 10.0)) == 4.0
    assert float(nanofn.grad(nanofn.grad(square_add))(2.0, 10.0)) == 2.0
    assert float(nanofn.jit(nanofn.grad(nanofn.grad(square_add)))(3.0, 10.0)) == 2.0
    a, b = _arr(3), _arr(3)
    check_grads(square_add, (a, b), order=2)
    _close(nanofn.vmap(nanofn.grad(square_add))(a, b), 2 * np.asarray(a))


def test_linear_primitive_vjp_and_jvp_come_from_its_transpose():
    p, calls = make_running_sum()
    x, w = _arr(5), _arr(5)
    _close(p.bind(x), np.cumsum(np.asarray(x)))
    _close(nanofn.jvp(p.bind, (x,), (w,))[1], np.cumsum(np.asarray(w)))
    _, vjp_fn = nanofn.vjp(p.bind, x)
    before = calls["transpose"]
    _close(vjp_fn(w)[0], np.cumsum(np.asarray(w)[::-1])[::-1])
    assert calls["transpose"] == before + 1  # the transpose rule, called once
    _close(nanofn.linear_transpose(p.bind, x)(w)[0], np.cumsum(np.asarray(w)[::-1])[::-1])
    check_grads(lambda x: p.bind(x) ** 2, (x,), order=2)
    m = np.tril(np.ones((5, 5)))
    _close(nanofn.hessian(lambda x: (p.bind(x) ** 2).sum())(x), 2 * m.T @ m)


def test_deflinear2_and_defbilinear():
    add2_p = Primitive("add_twice")  # x + 2 y, linear in both
    add2_p.def_impl(lambda x, y: x + 2 * y)
    add2_p.def_abstract_eval(lambda x, y: _same_shape(x))
    got_args = []

    def add2_transpose(ct, x, y):
        got_args.append((ad.is_undefined_primal(x), ad.is_undefined_primal(y)))
        return [ct, 2 * ct]

    ad.deflinear2(add2_p, add2_transpose)
    x, y = _arr(3), _arr(3)
    gx, gy = nanofn.grad(lambda x, y: add2_p.bind(x, y).sum(), argnums=(0, 1))(x, y)
    _close(gx, np.ones(3))
    _close(gy, 2 * np.ones(3))
    assert got_args[-1] == (True, True)
    nanofn.grad(lambda x: add2_p.bind(x, y).sum())(x)
    assert got_args[-1] == (True, False)  # y is a value the rule may read

    mul_p = Primitive("bilinear_mul")
    mul_p.def_impl(np.multiply)
    mul_p.def_abstract_eval(lambda x, y: _same_shape(x))
    ad.defbilinear(mul_p, lambda ct, x, y: mul_p.bind(ct, y), lambda ct, x, y: mul_p.bind(x, ct))
    check_grads(lambda x, y: mul_p.bind(x, y), (x, y), order=2)


def test_defjvp_and_defjvp2():
    exp_p = Primitive("my_exp")
    exp_p.def_impl(np.exp)
    exp_p.def_abstract_eval(_same_shape)
    ad.defjvp2(exp_p, lambda t, out, x: t * out)
    x = _arr(3)
    _close(nanofn.grad(lambda x: exp_p.bind(x).sum())(x), np.exp(np.asarray(x)))
    check_grads(exp_p.bind, (x,), order=2)

    pow_p = Primitive("my_pow")  # x ** y, one derivative function per argument
    pow_p.def_impl(np.power)
    pow_p.def_abstract_eval(lambda x, y: _same_shape(x))
    ad.defjvp(pow_p, lambda t, x, y: t * y * pow_p.bind(x, y - 1),
              lambda t, x, y: t * fnp.log(x) * pow_p.bind(x, y))
    x = fnp.asarray(RNG.uniform(0.5, 2.0, size=3))
    check_grads(pow_p.bind, (x, _arr(3)), order=2)
    with pytest.raises(TypeError, match="multiple results"):
        ad.defjvp(Primitive("pair", multiple_results=True), None)


def test_multiple_results_primitive():
    p = Primitive("sin_cos", multiple_results=True)
    p.def_impl(lambda x: [np.sin(x), np.cos(x)])
    p.def_abstract_eval(lambda x: [_same_shape(x), _same_shape(x)])

    def jvp(primals, tangents):
        x, = primals
        t, = tangents
        s, c = p.bind(x)
        return [s, c], [c * t, -s * t]

    ad.primitive_jvps[p] = jvp
    batching.defvectorized(p)
    x = _arr(4)
    _close(nanofn.grad(lambda x: p.bind(x)[1].sum())(x), -np.sin(np.asarray(x)))
    check_grads(lambda x: p.bind(x), (x,), order=2)
    s, c = nanofn.jit(nanofn.vmap(p.bind))(x)
    _close(s, np.sin(np.asarray(x)))
    _close(c, np.cos(np.asarray(x)))


# ------------------------------------------------------------------------ symbolic zeros


def test_zero_tangents_reach_the_rule_as_ad_zero():
    p, seen = make_sin_mul()
    x, y = _arr(3), _arr(3)
    nanofn.jvp(lambda x: p.bind(x, y), (x,), (fnp.ones_like(x),))
    assert seen[-1][0] is not ad.Zero and seen[-1][1] is ad.Zero  # y is a constant
    nanofn.grad(lambda y: p.bind(x, y).sum())(y)  # reverse mode transposes the JVP
    assert seen[-1][0] is ad.Zero and seen[-1][1] is not ad.Zero

    zeros_seen = []
    q = Primitive("scaled")  # x * n for an integer n: n's tangent is a float0 Zero
    q.def_impl(lambda x, n: x * n)
    q.def_abstract_eval(lambda x, n: _same_shape(x))

    def q_jvp(primals, tangents):
        zeros_seen.append(tangents[1])
        return q.bind(*primals), (ad.Zero(tangents[0].aval) if type(tangents[0]) is ad.Zero
                                  else tangents[0] * primals[1])

    ad.primitive_jvps[q] = q_jvp
    out, t = nanofn.jvp(lambda x: q.bind(x, fnp.int32(3)), (x,), (fnp.ones_like(x),))
    _close(t, 3 * np.ones(3))
    z = zeros_seen[-1]
    assert type(z) is ad.Zero and z.aval.shape == () and z.aval.dtype.kind == "V"  # float0
    # a rule may return a Zero: the output tangent is then zeros
    _, t = nanofn.jvp(lambda n: q.bind(x, n), (fnp.float64(2.0),), (fnp.float64(1.0),))
    _close(t, np.zeros(3))


def test_zero_helpers():
    z = ad.Zero(core.ShapedArray((2,), "float32"))
    assert repr(z) == "Zero(f32[2])"
    _close(ad.instantiate_zeros(z), np.zeros(2))
    _close(ad.add_tangents(z, fnp.ones(2)), np.ones(2))
    _close(ad.add_tangents(fnp.ones(2), z), np.ones(2))
    u = ad.UndefinedPrimal(core.ShapedArray((), "float64"))
    assert ad.is_undefined_primal(u) and not ad.is_undefined_primal(1.0)
    assert nanofn.tree_util.tree_leaves([z, u, 1.0]) == [1.0]  # no leaves, as in JAX


# ------------------------------------------------------------------------ batching


def test_batching_rule_is_used_by_vmap():
    p = Primitive("rowsum")
    p.def_impl(lambda x: np.sum(x, axis=-1))
    p.def_abstract_eval(lambda x: core.ShapedArray(x.shape[:-1], x.dtype))
    calls = []

    def rule(args, axes):
        calls.append(axes)
        x, = args
        return p.bind(fnp.moveaxis(x, axes[0], 0)), 0

    batching.primitive_batchers[p] = rule
    xs = _arr(3, 4, 5)
    _close(nanofn.vmap(p.bind)(xs), np.asarray(xs).sum(-1))
    _close(nanofn.vmap(p.bind, in_axes=2)(xs), np.asarray(xs).sum(1).T)
    assert calls == [(0,), (2,)]  # once per vmap, for the whole batch
    _close(nanofn.jit(nanofn.vmap(nanofn.vmap(p.bind)))(xs), np.asarray(xs).sum(-1))
    # a rule may give a negative result axis
    batching.primitive_batchers[p] = lambda args, axes: (
        p.bind(fnp.moveaxis(args[0], axes[0], -2)), -1)
    _close(nanofn.vmap(p.bind, out_axes=1)(xs), np.asarray(xs).sum(-1).T)


def test_defbroadcasting_and_defvectorized():
    p, _ = make_sin_mul()  # defbroadcasting
    x, y = _arr(3, 4), _arr(4)
    want = np.sin(np.asarray(x)) * np.asarray(y)
    _close(nanofn.vmap(p.bind, in_axes=(0, None))(x, y), want)
    _close(nanofn.vmap(p.bind, in_axes=(1, 0))(x.T, fnp.broadcast_to(y, (3, 4))), want)
    _close(nanofn.vmap(p.bind, in_axes=(None, 0))(y, x), np.sin(np.asarray(y)) * np.asarray(x))
    _close(nanofn.vmap(p.bind, in_axes=(0, None))(x, 2.0), np.sin(np.asarray(x)) * 2.0)
    _close(nanofn.vmap(lambda s: p.bind(x, s))(y), np.sin(np.asarray(x))[None] *
           np.asarray(y)[:, None, None])

    sq = Primitive("square_it")
    sq.def_impl(np.square)
    sq.def_abstract_eval(_same_shape)
    batching.defvectorized(sq)
    _close(nanofn.vmap(sq.bind, in_axes=1)(x), np.square(np.asarray(x)).T)


# ------------------------------------------------------------------------ errors


def test_missing_rules_raise_naming_the_primitive_and_the_rule():
    p = Primitive("bare")
    with pytest.raises(NotImplementedError, match="'bare' has no evaluation rule"):
        p.bind(1.0)
    p.def_impl(lambda x: 2 * x)
    assert float(p.bind(1.0)) == 2.0
    with pytest.raises(NotImplementedError, match="'bare' has no abstract evaluation rule"):
        nanofn.jit(p.bind)(1.0)
    p.def_abstract_eval(_same_shape)
    assert float(nanofn.jit(p.bind)(1.0)) == 2.0
    with pytest.raises(NotImplementedError,
                       match=r"'bare' has no JVP rule: set ad\.primitive_jvps\[bare_p\]"):
        nanofn.jvp(p.bind, (1.0,), (1.0,))
    with pytest.raises(NotImplementedError, match="'bare' has no JVP rule"):
        nanofn.grad(p.bind)(1.0)
    with pytest.raises(NotImplementedError, match=r"'bare' has no batching rule: set "
                                                  r"batching\.primitive_batchers\[bare_p\]"):
        nanofn.vmap(p.bind)(fnp.ones(2))
    with pytest.raises(NotImplementedError, match="'bare' has no transpose rule"):
        ad.get_primitive_transpose(p)

    q = make_multiply_add(transpose=False)
    assert float(nanofn.jvp(lambda a: q.bind(a, a, 1.0), (2.0,), (1.0,))[1]) == 4.0
    with pytest.raises(NotImplementedError, match=r"'multiply_add' has no transpose rule.*"
                                                  r"ad\.primitive_transposes"):
        nanofn.grad(lambda a: q.bind(a, a, 1.0))(2.0)


def test_registries_hold_only_user_primitives():
    with pytest.raises(TypeError, match="nanofn's own"):
        ad.primitive_jvps[lax.sin_p] = lambda primals, tangents: None
    with pytest.raises(TypeError, match="not a primitive"):
        batching.primitive_batchers["sin"] = lambda *a: None
    with pytest.raises(KeyError):
        ad.primitive_jvps[lax.exp_p]
    assert lax.exp_p not in ad.primitive_transposes
    p = Primitive("with_rules")
    with pytest.raises(TypeError, match="callable"):
        ad.primitive_jvps[p] = 3
    rule = lambda primals, tangents: (primals[0], tangents[0])  # noqa: E731
    ad.primitive_jvps[p] = rule
    assert ad.primitive_jvps[p] is rule and p in ad.primitive_jvps
    assert ad.primitive_jvps.get(p) is rule
    del ad.primitive_jvps[p]
    assert p not in ad.primitive_jvps


def test_register_lowering_is_accepted_and_ignored():
    p = Primitive("lowered")
    p.def_impl(lambda x: x + 1)
    p.def_abstract_eval(_same_shape)
    assert mlir.register_lowering(p, mlir.lower_fun(lambda x: x + 1, multiple_results=False),
                                  platform="cpu") is None
    assert float(nanofn.jit(p.bind)(1.0)) == 2.0
    with pytest.raises(TypeError):
        mlir.register_lowering("lowered", lambda ctx, x: [x])


# ------------------------------------------------------------------------ the IR


def test_primitives_share_names_and_stay_out_of_the_registry():
    a, b = Primitive("same_name"), Primitive("same_name")
    assert a is not b and a.name == b.name == "same_name"
    assert _core.registry.get("same_name") is None
    assert isinstance(lax.exp_p, Primitive) and isinstance(a, _core.Primitive)
    assert core.Primitive is Primitive
    assert a.get_bind_params({"k": 1}) == ([], {"k": 1})


def test_jaxpr_names_and_helpers():
    closed = nanofn.make_jaxpr(lambda x: fnp.exp(fnp.tanh(x)) * 2.0 + fnp.ones(3))(fnp.ones(3))
    assert isinstance(closed, ClosedJaxpr) and isinstance(closed.jaxpr, Jaxpr)
    assert closed.literals is closed.consts or closed.literals == closed.consts
    eqns = closed.jaxpr.eqns
    assert all(isinstance(e, JaxprEqn) for e in eqns)
    assert any(isinstance(v, Literal) for e in eqns for v in e.invars)
    assert core.JaxprEqn is JaxprEqn and core.Var is Var and core.Literal is Literal
    x = fnp.linspace(-1.0, 1.0, 3)
    want = np.exp(np.tanh(np.asarray(x))) * 2 + 1
    _close(jaxpr_as_fun(closed)(x)[0], want, tol=1e-6)
    _close(core.eval_jaxpr(closed.jaxpr, closed.literals, x)[0], want, tol=1e-6)
    # a jaxpr built by hand, with JAX's argument order for equations
    u, v, w = (Var(core.ShapedArray((3,), "float32")) for _ in range(3))
    jaxpr = Jaxpr([], [u], [new_jaxpr_eqn([u], [v], lax.sin_p, {}),
                            new_jaxpr_eqn([v, Literal(np.float32(2.0))], [w], lax.mul_p, {})],
                  [w])
    from nanofn.extend.core import check_jaxpr
    check_jaxpr(jaxpr)
    _close(jaxpr_as_fun(ClosedJaxpr(jaxpr, []))(x)[0], 2 * np.sin(np.asarray(x)), tol=1e-6)
    _close(nanofn.grad(lambda x: core.eval_jaxpr(jaxpr, [], x)[0].sum())(x),
           2 * np.cos(np.asarray(x)), tol=1e-6)
    assert core.max_dim(2, 3) == 3 and core.min_dim(2, 3) == 2
    assert core.AbstractValue is core.ShapedArray
