"""nanofn.custom_batching: custom_vmap's rule is what vmap runs (with the right axis size and
in_batched, at every level, under jit), the function runs elsewhere, derivatives compose,
and bad rules give JAX's errors."""

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import grad, jit, jvp, vmap
from nanofn.custom_batching import custom_vmap, sequential_vmap
from nanofn.testing import check_grads

RNG = np.random.default_rng(3)


def _arr(*shape):
    return fnp.asarray(RNG.normal(size=shape))


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def make_f(scale=2.0):
    """f(x, y) = sin(x) * y, whose rule computes scale * sin(xs) * ys: scale != 1 shows
    that vmap ran the rule. `calls` records (axis_size, in_batched, shapes) of each call."""
    calls = []

    @custom_vmap
    def f(x, y):
        return fnp.sin(x) * y

    @f.def_vmap
    def rule(axis_size, in_batched, xs, ys):
        calls.append((axis_size, in_batched, (xs.shape, ys.shape)))
        return scale * fnp.sin(xs) * ys, any(in_batched)

    return f, calls


# ======================================================================== the rule under vmap


def test_rule_gets_axis_size_and_in_batched():
    f, calls = make_f()
    xs, y = _arr(4, 2), _arr(2)
    _close(vmap(f, in_axes=(0, None))(xs, y), 2.0 * fnp.sin(xs) * y)
    assert calls == [(4, [True, False], ((4, 2), (2,)))]  # y is unbatched, not broadcast
    _close(vmap(f)(xs, xs), 2.0 * fnp.sin(xs) * xs)
    assert calls[-1] == (4, [True, True], ((4, 2), (4, 2)))


def test_in_axes_other_than_zero_and_out_axes():
    f, calls = make_f()
    xs = _arr(2, 5)
    out = vmap(f, in_axes=(1, None), out_axes=1)(xs, 3.0)
    _close(out, 2.0 * fnp.sin(xs) * 3.0)
    assert calls == [(5, [True, False], ((5, 2), ()))]  # the batch axis moved to the front
    out = vmap(f, in_axes=(-1, None), out_axes=-1)(xs, 3.0)
    _close(out, 2.0 * fnp.sin(xs) * 3.0)


def test_pytree_arguments_and_outputs():
    calls = []

    @custom_vmap
    def f(d, z):
        return {"s": d["a"] + z, "t": d["b"]}

    @f.def_vmap
    def rule(axis_size, in_batched, d, z):
        calls.append((axis_size, in_batched))
        return {"s": d["a"] + z + 1.0, "t": d["b"]}, {"s": True, "t": in_batched[0]["b"]}

    d = {"a": _arr(2), "b": _arr(2)}
    z = _arr(2, 3)
    out = vmap(f, in_axes=({"a": None, "b": None}, 1))(d, z)
    assert calls == [(3, [{"a": False, "b": False}, True])]
    _close(out["s"], d["a"][None, :] + z.T + 1.0)
    _close(out["t"], fnp.broadcast_to(d["b"], (3, 2)))  # unbatched output, broadcast by vmap


def test_outside_vmap_the_function_runs():
    f, calls = make_f()
    x, y = _arr(3), _arr(3)
    _close(f(x, y), fnp.sin(x) * y)
    _close(jit(f)(x, y), fnp.sin(x) * y)
    _close(f(x, y=y), fnp.sin(x) * y)  # keyword arguments are resolved to positions
    assert calls == []


def test_jit_of_vmap_and_vmap_of_jit():
    f, calls = make_f()
    xs, y = _arr(4), _arr()
    expect = 2.0 * fnp.sin(xs) * y
    _close(jit(vmap(f, in_axes=(0, None)))(xs, y), expect)
    assert calls[-1][:2] == (4, [True, False])
    _close(vmap(jit(f), in_axes=(0, None))(xs, y), expect)  # the jaxpr's equation is batched
    assert calls[-1][:2] == (4, [True, False])
    n = len(calls)
    _close(vmap(jit(f), in_axes=(0, None))(xs, y), expect)  # the cached jaxpr, replayed
    assert len(calls) == n + 1


def test_nested_vmap_calls_the_rule_per_level():
    calls = []

    @custom_vmap
    def f(x):
        return x * 2.0

    @f.def_vmap
    def rule(axis_size, in_batched, xs):
        calls.append((axis_size, xs.shape))
        return f(xs) + 1.0, in_batched[0]  # calls f again: the outer level's rule runs

    out = vmap(vmap(f))(fnp.ones((2, 3)))
    _close(out, np.full((2, 3), 4.0))
    assert calls == [(3, (3,)), (2, (2, 3))]


def test_unbatched_output():
    @custom_vmap
    def f(x):
        return x, fnp.sum(x)

    @f.def_vmap
    def rule(axis_size, in_batched, xs):
        return (xs, fnp.sum(xs[0])), (True, False)

    xs = _arr(3, 2)
    a, b = vmap(f)(xs)
    _close(a, xs)
    _close(b, np.full(3, float(fnp.sum(xs[0]))))  # not batched: broadcast by out_axes=0
    a, b = vmap(f, out_axes=(0, None))(xs)
    assert b.shape == ()


# ======================================================================== errors


def test_no_rule_defined():
    @custom_vmap
    def g(x):
        return x

    with pytest.raises(AttributeError, match="No batching rule defined for custom_vmap "
                       "function g using def_vmap"):
        g(1.0)  # as in JAX, even outside vmap


def test_out_batched_structure_must_match_out():
    @custom_vmap
    def h(x):
        return x, x

    @h.def_vmap
    def bad_spec(axis_size, in_batched, xs):
        return (xs, xs), True

    with pytest.raises(ValueError, match="structure of output value and output batching "
                       "specification returned by custom vmap rule \\(bad_spec\\)"):
        vmap(h)(fnp.ones(3))

    @h.def_vmap
    def bad_out(axis_size, in_batched, xs):
        return [xs, xs], [True, True]

    with pytest.raises(ValueError, match="structure of output returned by custom vmap rule "
                       "\\(bad_out\\) does not match that of original"):
        vmap(h)(fnp.ones(3))


def test_out_batched_must_agree_with_shapes():
    @custom_vmap
    def w(x):
        return x

    @w.def_vmap
    def says_unbatched(axis_size, in_batched, xs):
        return xs, False

    with pytest.raises(ValueError, match="marked unbatched"):
        vmap(w)(fnp.ones(3))


def test_closure_over_a_value_batched_by_an_enclosing_vmap():
    def per_example(c, inner):
        @custom_vmap
        def k(x):
            return x * c

        @k.def_vmap
        def rule(axis_size, in_batched, xs):
            return xs * c + 1.0, True

        return vmap(k)(fnp.ones(2)) if inner else k(fnp.ones(2) * c)

    cs = _arr(3)
    # the inner vmap's rule runs; c is batched by the outer one, by ordinary rules
    _close(vmap(per_example, in_axes=(0, None))(cs, True), cs[:, None] + np.ones((3, 2)))
    # the rule would run for the vmap that batches the value the function closes over
    with pytest.raises(ValueError, match="closes over a value that is batched"):
        vmap(per_example, in_axes=(0, None))(cs, False)


# ======================================================================== sequential_vmap


def test_sequential_vmap_equals_vmap_of_the_function():
    def plain(x, y, d):
        return fnp.sum(x * y) + d["b"], x * 2.0

    seq = sequential_vmap(plain)
    xs, y, d = _arr(4, 3), _arr(3), {"b": _arr(4)}
    for in_axes in [(0, None, 0), (0, 0, 0), (None, 0, {"b": 0})]:
        args = (xs, xs if in_axes[1] == 0 else y, d)
        if in_axes[0] is None:
            args = (y, xs, d)
        got, want = vmap(seq, in_axes=in_axes)(*args), vmap(plain, in_axes=in_axes)(*args)
        for g, w in zip(got, want):
            _close(g, w)
    _close(jit(vmap(seq, in_axes=(0, None, 0)))(xs, y, d)[0],
           vmap(plain, in_axes=(0, None, 0))(xs, y, d)[0])
    _close(seq(y, y, {"b": y[0]})[0], plain(y, y, {"b": y[0]})[0])


def test_sequential_vmap_runs_a_loop():
    seq = sequential_vmap(lambda x: fnp.sin(x))
    text = str(nanofn.make_jaxpr(vmap(seq))(fnp.ones(3)))
    assert "scan" in text


# ======================================================================== derivatives


def test_derivatives_of_f_outside_vmap():
    f, calls = make_f()
    x, y = _arr(3), _arr(3)
    check_grads(f, (x, y), order=2, modes=("fwd", "rev"))
    _close(grad(lambda x: f(x, y).sum())(x), fnp.cos(x) * y)  # JAX refuses grad here
    assert calls == []


def test_derivatives_through_vmap_use_the_rule():
    f, calls = make_f(scale=3.0)
    xs, y = _arr(4, 2), _arr(2)
    vf = vmap(f, in_axes=(0, None))
    check_grads(vf, (xs, y), order=1, modes=("fwd", "rev"))
    _close(grad(lambda xs: vf(xs, y).sum())(xs), 3.0 * fnp.cos(xs) * y)  # the rule's


def test_vmap_of_jvp_uses_the_derived_rule():
    f, calls = make_f(scale=3.0)
    xs, y = _arr(4), _arr()
    ones, zero = fnp.ones_like(xs), fnp.zeros_like(y)
    # primals and tangents of x both batched: the rule runs with x batched
    out, t = vmap(lambda x, t: jvp(f, (x, y), (t, zero)))(xs, ones)
    _close(out, 3.0 * fnp.sin(xs) * y)
    _close(t, 3.0 * fnp.cos(xs) * y)
    assert calls[-1][:2] == (4, [True, False])
    # the primal batched, the tangent not: the rule sees x unbatched (as in JAX)
    out, t = vmap(lambda x: jvp(f, (x, y), (fnp.ones_like(x), zero)))(xs)
    assert calls[-1][:2] == (4, [False, False])
    _close(out, 3.0 * fnp.sin(xs) * y)
    check_grads(vmap(lambda x: f(x, y)), (xs,), order=1, modes=("fwd",))


def test_vmap_of_jvp_with_mixed_batching():
    # x batched in primal and tangent, y in its primal only: the rule runs once, with y
    # broadcast in its tangent (JAX vmaps the rule over y and returns a (4, 4) result)
    f, calls = make_f(scale=3.0)
    xs, ys = _arr(4), _arr(4)
    out, t = vmap(lambda x, y, t: jvp(f, (x, y), (t, fnp.zeros_like(y))))(xs, ys, fnp.ones_like(xs))
    assert calls[-1][:2] == (4, [True, True])
    _close(out, 3.0 * fnp.sin(xs) * ys)
    _close(t, 3.0 * fnp.cos(xs) * ys)


def test_vmap_of_grad_and_jit_of_vmap_of_grad():
    f, calls = make_f()
    xs, y = _arr(4), _arr()
    g = vmap(grad(f), in_axes=(0, None))  # JAX refuses; here the backward pass is f's
    _close(g(xs, y), fnp.cos(xs) * y)
    _close(jit(g)(xs, y), fnp.cos(xs) * y)


def test_grad_of_sequential_vmap():
    seq = sequential_vmap(lambda x, w: fnp.tanh(x @ w))
    xs, w = _arr(3, 2), _arr(2, 2)
    check_grads(vmap(seq, in_axes=(0, None)), (xs, w), order=1, modes=("fwd", "rev"))


def test_closure_over_a_traced_value_under_grad():
    xs = _arr(3)

    def loss(c):
        @custom_vmap
        def k(x):
            return fnp.sin(x * c)

        @k.def_vmap
        def rule(axis_size, in_batched, xs):
            return fnp.sin(xs * c), True

        return vmap(k)(xs).sum() + vmap(jit(k))(xs).sum() + k(fnp.asarray(0.5)) * 2.0

    def plain(c):
        return 2.0 * fnp.sin(xs * c).sum() + fnp.sin(0.5 * c) * 2.0

    c = fnp.asarray(1.3)
    _close(grad(loss)(c), grad(plain)(c))
    check_grads(loss, (c,), order=1, modes=("fwd", "rev"))


def test_second_order_through_vmap_uses_the_rule():
    f, calls = make_f(scale=3.0)
    xs, y = _arr(3), _arr()
    h = nanofn.hessian(lambda a: vmap(f, in_axes=(0, None))(a, y).sum())(xs)
    _close(h, np.diag(np.asarray(-3.0 * fnp.sin(xs) * y)))
    d2 = vmap(nanofn.jacfwd(nanofn.jacfwd(lambda a: f(a, y))))(xs)  # derived rule of a JVP
    _close(d2, -3.0 * fnp.sin(xs) * y)


def test_custom_vjp_around_custom_vmap():
    # JAX's recipe for a custom vmap and a custom reverse mode: custom_vjp outside
    @nanofn.custom_vjp
    @custom_vmap
    def g(x, y):
        return fnp.sin(x) * y

    @g.def_vmap  # reached through the custom_vjp object, as in JAX
    def g_rule(axis_size, in_batched, xs, ys):
        return fnp.cos(xs) * ys, True

    g.defvjp(lambda x, y: (g(x, y), (fnp.cos(x), fnp.sin(x), y)),
             lambda res, ct: (res[0] * ct * res[2], res[1] * ct))
    _close(vmap(g)(fnp.zeros(3), fnp.ones(3)), np.ones(3))
    _close(grad(g)(0.0, 1.0), 1.0)
