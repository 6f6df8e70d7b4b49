"""The top-level transforms and the Array object where they were found to differ from JAX.

Each test pins one behaviour that now agrees with JAX 0.10.2 (checked against numpy,
analytic values or the documented JAX semantics; JAX itself is not imported):

* `grad`, `vmap`, `jacfwd`, ... keep the wrapped function's `__name__`, as JAX's do.
* `jvp` (and `linearize`'s `f_jvp`) give integer and boolean outputs float0 tangents.
* `vmap` of a gradient with integer inputs batches their float0 cotangents.
* `vjp`'s `vjp_fn`, `linearize`'s `f_jvp` and `linear_transpose`'s result are pytrees
  (`tree_util.Partial`), so they can be passed to jit-compiled functions.
* `vjp_fn` refuses a cotangent of another kind (complex for real, integer for float).
* `linear_transpose` refuses `reduce_axes` and non-floating outputs.
* `pure_callback` accepts every `vmap_method` of JAX and checks it when called.
* `custom_jvp.defjvp` / `custom_vjp.defvjp` accept `symbolic_zeros=True`.
* `checkpoint_policies` has the offloading policies, and its policies answer as JAX's.
* `debug.callback` passes Python numbers as arrays.
* `Array.flatten(order=)`, `round(x)` (an integer array), `x.view` between bool and
  one-byte integers.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nanofn
import nanofn.numpy as fnp
from nanofn import ad_checkpoint
from nanofn import checkpoint_policies as cp
from nanofn._dtypes_float0 import float0
from nanofn.ops._base import dot_general_p

X3 = np.array([0.5, 1.0, 2.0], np.float32)


# ------------------------------------------------------------------------ names


def test_transforms_keep_the_function_name():
    def loss(x):
        """The loss."""
        return (x * x).sum()

    for t in (nanofn.grad, nanofn.value_and_grad, nanofn.vmap, nanofn.jacfwd,
              nanofn.jacrev, nanofn.hessian, nanofn.jit):
        g = t(loss)
        assert g.__name__ == "loss" and g.__qualname__ == loss.__qualname__
        assert g.__doc__ == "The loss."


# ------------------------------------------------------------------------ float0


def test_jvp_of_integer_output_is_float0():
    def f(a):
        return (a > 0).astype(fnp.int32), a * 2.0

    _, (t_ints, t_y) = nanofn.jvp(f, (X3,), (X3,))
    assert t_ints.dtype == float0 and t_ints.shape == (3,)
    np.testing.assert_allclose(t_y, 2 * X3)
    _, t = nanofn.jvp(lambda a: 2, (1.0,), (1.0,))  # a Python int output too
    assert t.dtype == float0 and t.shape == ()
    # batched, the float0 tangent gets the batch axis
    _, (tb, _) = nanofn.vmap(lambda a: nanofn.jvp(f, (a,), (a,)))(np.ones((2, 3), np.float32))
    assert tb.dtype == float0 and tb.shape == (2, 3)


def test_linearize_of_integer_output_is_float0():
    _, f_jvp = nanofn.linearize(lambda a: (fnp.floor(a).astype(fnp.int32), fnp.sin(a)), X3)
    t_int, t = f_jvp(X3)
    assert t_int.dtype == float0 and t_int.shape == (3,)
    np.testing.assert_allclose(t, np.cos(X3) * X3, rtol=1e-6)


@pytest.mark.parametrize("out_axes", [0, 1, -1])
def test_vmap_of_gradient_with_integer_input(out_axes):
    def g(x, k):
        return nanofn.grad(lambda a, b: (a * b).sum(), argnums=(0, 1), allow_int=True)(x, k)

    x, k = np.ones((4, 3), np.float32), np.arange(12, dtype=np.int32).reshape(4, 3)
    gx, gk = nanofn.vmap(g, out_axes=out_axes)(x, k)
    want = np.moveaxis(k.astype(np.float32), 0, out_axes)
    np.testing.assert_array_equal(gx, want)
    assert gk.dtype == float0 and gk.shape == want.shape
    # vjp's pullback, vmapped, too
    _, ck = nanofn.vmap(lambda a, b: nanofn.vjp(lambda u, v: u * v, a, b)[1](a))(x, k)
    assert ck.dtype == float0 and ck.shape == (4, 3)


# ------------------------------------------------------------------------ pytree functions


def test_vjp_linearize_and_transpose_functions_pass_through_jit():
    apply = nanofn.jit(lambda fn, c: fn(c))
    _, vjp_fn = nanofn.vjp(fnp.sin, X3)
    np.testing.assert_allclose(apply(vjp_fn, X3)[0], np.cos(X3) * X3, rtol=1e-6)
    _, f_jvp = nanofn.linearize(fnp.sin, X3)
    np.testing.assert_allclose(apply(f_jvp, X3), np.cos(X3) * X3, rtol=1e-6)
    assert f_jvp.jaxpr is not None  # the linear program is still there to inspect
    f_t = nanofn.linear_transpose(lambda a: 2.0 * a + a[::-1], X3)
    np.testing.assert_allclose(apply(f_t, X3)[0], 2 * X3 + X3[::-1])
    for fn in (vjp_fn, f_jvp, f_t):
        assert nanofn.tree_util.tree_leaves(fn) == []
        assert isinstance(fn, nanofn.tree_util.Partial)


def test_vjp_cotangent_of_another_kind_is_refused():
    _, vjp_fn = nanofn.vjp(lambda a: a * 2.0, X3)
    for ct in (np.ones(3, np.int32), np.ones(3, np.complex64), np.ones(3, bool)):
        with pytest.raises(TypeError, match="cotangent leaf 0 has dtype"):
            vjp_fn(ct)
    # another precision of the same kind is cast, as are Python numbers
    np.testing.assert_allclose(vjp_fn(np.ones(3))[0], 2.0)
    assert vjp_fn(np.ones(3))[0].dtype == np.float32
    _, vjp_s = nanofn.vjp(lambda a: a * 2.0, 1.0)
    assert float(vjp_s(1)[0]) == 2.0


def test_linear_transpose_checks():
    with pytest.raises(NotImplementedError, match="reduce_axes"):
        nanofn.linear_transpose(lambda a: a, X3, reduce_axes=("i",))
    with pytest.raises(TypeError, match="floating point"):
        nanofn.linear_transpose(lambda a: a.astype(fnp.int32), X3)
    with pytest.raises(TypeError, match="floating point"):
        nanofn.linear_transpose(lambda a: a, np.arange(3))
    spec = nanofn.ShapeDtypeStruct((3,), np.float32)
    (ct,) = nanofn.linear_transpose(lambda a: a.sum(), spec)(np.float32(2.0))
    np.testing.assert_array_equal(ct, [2.0, 2.0, 2.0])


# ------------------------------------------------------------------------ pure_callback


def _callback_calls(vmap_method, xs, w):
    calls = []

    def cb(a, b):
        calls.append((np.shape(a), np.shape(b)))
        return (np.asarray(a) * np.asarray(b)).astype(np.float32)

    out = nanofn.vmap(lambda a: nanofn.pure_callback(
        cb, nanofn.ShapeDtypeStruct(a.shape, a.dtype), a, w, vmap_method=vmap_method))(xs)
    return out, calls


@pytest.mark.parametrize("vmap_method,shapes", [
    ("sequential", [((3,), (3,))] * 2),
    ("sequential_unrolled", [((3,), (3,))] * 2),
    ("expand_dims", [((2, 3), (1, 3))]),
    ("broadcast_all", [((2, 3), (2, 3))]),
    ("legacy_vectorized", [((2, 3), (3,))]),
])
def test_pure_callback_vmap_methods(vmap_method, shapes):
    xs, w = np.arange(6.0, dtype=np.float32).reshape(2, 3), np.array([1.0, 2.0, 3.0], np.float32)
    out, calls = _callback_calls(vmap_method, xs, w)
    np.testing.assert_allclose(out, xs * w)
    assert calls == shapes


def test_pure_callback_checks_vmap_method_when_called():
    spec = nanofn.ShapeDtypeStruct((3,), np.float32)
    with pytest.raises(ValueError, match="vmap_method"):
        nanofn.pure_callback(lambda a: a, spec, X3, vmap_method="vectorized")


# ------------------------------------------------------------------------ symbolic zeros


def test_custom_jvp_symbolic_zeros():
    from nanofn._custom import SymbolicZero
    @nanofn.custom_jvp
    def f(x, y):
        return x * y

    def f_jvp(primals, tangents):
        x, y = primals
        tx, ty = tangents
        out = 0.0
        if type(tx) is not SymbolicZero:
            out = out + 10.0 * tx * y
        if type(ty) is not SymbolicZero:
            out = out + 10.0 * ty * x
        return f(x, y), out

    f.defjvp(f_jvp, symbolic_zeros=True)
    assert float(nanofn.grad(f)(2.0, 3.0)) == 30.0
    assert float(nanofn.grad(f, argnums=1)(2.0, 3.0)) == 20.0
    assert float(nanofn.jvp(f, (2.0, 3.0), (1.0, 1.0))[1]) == 50.0

    # a rule may answer a symbolic zero
    g = nanofn.custom_jvp(lambda x: x * 2.0)
    g.defjvp(lambda p, t: (g(*p), SymbolicZero.from_primal_value(p[0])), symbolic_zeros=True)
    _, t = nanofn.jvp(g, (X3,), (X3,))
    np.testing.assert_array_equal(t, np.zeros(3))
    np.testing.assert_array_equal(nanofn.grad(lambda a: g(a).sum())(X3), np.zeros(3))


def test_custom_vjp_symbolic_zeros():
    from nanofn._custom import CustomVJPPrimal, SymbolicZero
    @nanofn.custom_vjp
    def f(x, k):
        return x * k

    seen = []

    def fwd(x, k):
        seen.append((type(x), x.perturbed, k.perturbed))
        return x.value * k.value, k.value

    def bwd(k, g):
        return (g * k * 10.0, SymbolicZero.from_primal_value(k))

    f.defvjp(fwd, bwd, symbolic_zeros=True)
    np.testing.assert_allclose(nanofn.grad(lambda a: f(a, 3).sum())(X3), 30.0)
    assert seen[-1] == (CustomVJPPrimal, True, False)  # the integer k cannot be perturbed
    np.testing.assert_allclose(nanofn.jit(nanofn.grad(lambda a: f(a, 2.0).sum()))(X3), 20.0)
    np.testing.assert_allclose(
        nanofn.vmap(nanofn.grad(lambda a: f(a, 2.0)))(X3), np.full(3, 20.0))


def test_symbolic_zero_helpers():
    from nanofn._custom import (
        CustomVJPPrimal,
        SymbolicZero,
        custom_vjp_primal_tree_values,
        zero_from_primal,
    )
    assert custom_vjp_primal_tree_values({"a": [CustomVJPPrimal(1.0, True)]}) == {"a": [1.0]}
    with pytest.raises(TypeError, match="CustomVJPPrimal"):
        custom_vjp_primal_tree_values([1.0])
    z = zero_from_primal({"w": fnp.ones((2, 3)), "n": fnp.ones(2, fnp.int32)})
    assert z["w"].shape == (2, 3) and z["w"].dtype == np.float32 and not np.any(z["w"])
    assert z["n"].dtype == float0 and z["n"].shape == (2,)
    s = zero_from_primal(fnp.ones(4), symbolic_zeros=True)
    assert isinstance(s, SymbolicZero) and s.shape == (4,) and s.dtype == np.float32
    assert repr(s) == "SymbolicZero"


# ------------------------------------------------------------------------ checkpoint policies


def test_offloading_policies():
    policy = cp.save_and_offload_only_these_names(
        names_which_can_be_saved=["a"], names_which_can_be_offloaded=["b"],
        offload_src="device", offload_dst="pinned_host")
    assert policy("name", name="a") is cp.Saveable
    assert policy("name", name="b") == cp.Offloadable("device", "pinned_host")
    assert policy("name", name="c") is cp.Recompute
    assert policy(dot_general_p) is cp.Recompute
    with pytest.raises(ValueError, match="both saved and offloaded"):
        cp.save_and_offload_only_these_names(
            names_which_can_be_saved=["a"], names_which_can_be_offloaded=["a"],
            offload_src="device", offload_dst="pinned_host")
    plain = {"dimension_numbers": (((1,), (0,)), ((), ()))}
    batched = {"dimension_numbers": (((2,), (1,)), ((0,), (0,)))}
    off = cp.offload_dot_with_no_batch_dims("device", "pinned_host")
    assert off(dot_general_p, **plain) == ad_checkpoint.Offloadable("device", "pinned_host")
    assert off(dot_general_p, **batched) is ad_checkpoint.Recompute
    # any policy works with checkpoint (values do not depend on it)
    f = nanofn.checkpoint(lambda a: (ad_checkpoint.checkpoint_name(fnp.sin(a), "b") *
                                     fnp.cos(a)).sum(), policy=policy)
    np.testing.assert_allclose(nanofn.grad(f)(X3), np.cos(2 * X3), rtol=1e-5)


def test_policies_answer_as_jax():
    assert cp.dots_saveable("conv_general_dilated")  # convolutions are dots here, as in JAX
    assert not cp.dots_with_no_batch_dims_saveable("conv_general_dilated")
    but = cp.save_any_names_but_these("x")
    assert but("name", name="y") and not but("name", name="x")
    assert not but("sin")  # only named values are saved
    everything_but = cp.save_anything_except_these_names("x")
    assert everything_but("sin") and not everything_but("name", name="x")
    both = cp.save_from_both_policies(cp.nothing_saveable,
                                      cp.offload_dot_with_no_batch_dims("a", "b"))
    with pytest.raises(ValueError, match="must return a bool"):
        both("sin")


# ------------------------------------------------------------------------ debug.callback


def test_debug_callback_gets_python_numbers_as_arrays():
    seen = []
    nanofn.debug.callback(lambda a, b, flag: seen.append((a, b, flag)), 3, b=2.5, flag="s")
    a, b, flag = seen[0]
    assert isinstance(a, nanofn.Array) and a.dtype == np.int32 and int(a) == 3
    assert isinstance(b, nanofn.Array) and b.dtype == np.float32 and float(b) == 2.5
    assert flag == "s"  # other values pass unchanged
    nanofn.jit(lambda x: nanofn.debug.callback(lambda v, k: seen.append((v, k)), x, 7) or x)(X3)
    v, k = seen[-1]
    assert isinstance(k, nanofn.Array) and int(k) == 7
    np.testing.assert_array_equal(v, X3)


# ------------------------------------------------------------------------ Array methods


_arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                     elements=st.floats(-100, 100, width=32))


@given(_arrays, st.sampled_from(["C", "F"]))
def test_flatten_order(x, order):
    np.testing.assert_array_equal(fnp.asarray(x).flatten(order), x.flatten(order))
    np.testing.assert_array_equal(fnp.asarray(x).flatten(order=order), x.flatten(order=order))


@given(_arrays)
def test_builtin_round_gives_integers(x):
    r = round(fnp.asarray(x))
    assert r.dtype == np.int32 and r.shape == x.shape
    np.testing.assert_array_equal(r, np.round(x).astype(np.int32))  # half to even
    r1 = round(fnp.asarray(x), 1)
    assert r1.dtype == np.float32
    np.testing.assert_allclose(r1, np.round(x, 1), atol=1e-5)


def test_builtin_round_of_complex_and_traced():
    z = fnp.asarray(np.array([1 + 2j, 2.7 - 1j, -0.5 + 3j], np.complex64))
    np.testing.assert_array_equal(round(z), [1, 3, 0])
    assert round(z).dtype == np.int32
    out = nanofn.jit(lambda a: round(a))(np.array([0.5, 1.5, 2.6], np.float32))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [0, 2, 3])


def test_view_between_bool_and_bytes():
    b = np.array([[True, False], [False, True]])
    for dt in (np.uint8, np.int8):
        np.testing.assert_array_equal(fnp.asarray(b).view(dt), b.view(dt))
        assert fnp.asarray(b).view(dt).dtype == dt
    u = np.array([0, 1, 2, 255], np.uint8)
    np.testing.assert_array_equal(fnp.asarray(u).view(bool), u != 0)
    with pytest.raises(TypeError, match="one-byte"):
        fnp.asarray(b).view(np.int32)


def test_jit_passes_float0_gradients_through_and_under_vmap():
    f = nanofn.grad(lambda x, n: x * n, argnums=(0, 1), allow_int=True)
    dx, dn = nanofn.jit(f)(2.0, 3)
    assert float(dx) == 3.0 and dn.dtype == nanofn.dtypes.float0
    dxs, dns = nanofn.vmap(nanofn.jit(f))(np.ones(3, np.float32), np.arange(3, dtype=np.int32))
    assert np.asarray(dxs).tolist() == [0.0, 1.0, 2.0]
    assert dns.dtype == nanofn.dtypes.float0 and dns.shape == (3,)


def test_shape_dtype_struct_takes_jax_keywords():
    s = nanofn.ShapeDtypeStruct((3, 2), "float32", sharding=None, weak_type=True)
    assert s.weak_type and s.sharding is None and len(s) == 3
    assert s.update(shape=(4,)).shape == (4,) and s.update(dtype="int32").weak_type
    assert s != nanofn.ShapeDtypeStruct((3, 2), "float32")
    with pytest.raises(TypeError, match="unknown fields"):
        s.update(size=3)
    with pytest.raises(TypeError, match="unsized"):
        len(nanofn.ShapeDtypeStruct((), "float32"))


def test_custom_derivatives_module_exports_symbolic_zero_names():
    from nanofn import custom_derivatives as cd
    for name in ("SymbolicZero", "CustomVJPPrimal", "zero_from_primal",
                 "custom_vjp_primal_tree_values"):
        assert getattr(cd, name) is getattr(nanofn._custom, name)


def test_reprs_and_formats_follow_jax():
    assert repr(nanofn.core.ShapedArray((3, 2), "float32")) == "ShapedArray(float32[3,2])"
    assert repr(fnp.zeros((0, 3))) == "Array([], shape=(0, 3), dtype=float32)"
    assert repr(fnp.zeros(0)) == "Array([], dtype=float32)"
    assert f"{fnp.float32(2.5):.2f}" == "2.50"
    with pytest.raises(TypeError):
        f"{fnp.ones(2):.2f}"  # a format spec applies to 0-d arrays only, as in numpy
    assert nanofn.make_jaxpr(lambda x: x + 1)(1.0).effects == frozenset()


def test_grad_accepts_the_default_of_jax_reduce_axes():
    assert float(nanofn.grad(lambda x: 2.0 * x, reduce_axes=())(1.0)) == 2.0
    assert float(nanofn.value_and_grad(lambda x: 2.0 * x, reduce_axes=())(1.0)[1]) == 2.0
    with pytest.raises(NotImplementedError, match="reduce_axes"):
        nanofn.grad(lambda x: x, reduce_axes=("batch",))


def test_checkpoint_static_argnames_by_keyword_and_by_position():
    def layer(x, w, activation="tanh", scale=1.0):
        act = fnp.tanh if activation == "tanh" else fnp.sin
        return scale * act(x @ w)

    f = nanofn.checkpoint(layer, static_argnames=("activation",))
    x, w = np.ones((2, 3), np.float32), np.full((3, 3), 0.1, np.float32)
    for call in (lambda w: f(x, w, activation="sin").sum(), lambda w: f(x, w, "sin").sum()):
        np.testing.assert_allclose(nanofn.grad(call)(w),
                                   nanofn.grad(lambda w: layer(x, w, "sin").sum())(w),
                                   rtol=1e-6)
    with pytest.raises(TypeError, match="static_argnums"):  # a string is not an array
        nanofn.grad(lambda w: nanofn.checkpoint(layer)(x, w, "sin").sum())(w)


def test_vmap_sum_match_sums_a_batched_output_with_out_axes_none():
    f = nanofn.vmap(lambda x, y: x * y, in_axes=(0, None), out_axes=None, sum_match=True)
    np.testing.assert_allclose(f(fnp.arange(3.0), 2.0), 6.0)
    g = nanofn.vmap(lambda x: (x, 2 * x), out_axes=(0, None), sum_match=True)(fnp.ones(4))
    assert g[0].shape == (4,) and float(g[1]) == 8.0
    with pytest.raises(ValueError, match="out_axes is None"):
        nanofn.vmap(lambda x: x, out_axes=None)(fnp.ones(3))
