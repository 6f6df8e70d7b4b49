"""The eager fast path of grad: the reverse pass on numpy values, the tape's direct impl
calls, operator fast paths, and contiguous dot_general cotangents.

Each fast path must give exactly what the general path gives: the reverse pass is run
both ways (`nanofn._ad.numpy_backward`) and against jit, on programs that mix primitives
whose rules run on numpy with ones whose rules must see Arrays (custom_vjp, scan)."""

import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import _ad
from nanofn import _core as core
from nanofn import lax

RNG = np.random.default_rng(5)


@nanofn.custom_vjp
def scaled_square(x):
    return x * x


SEEN_IN_BWD = []


def _sq_fwd(x):
    return x * x, x


def _sq_bwd(x, g):
    SEEN_IN_BWD.append((type(x), type(g)))
    return (3.0 * x * g,)  # deliberately not the true derivative: it must be used as given


scaled_square.defvjp(_sq_fwd, _sq_bwd)


def program(params, x):
    """Elementwise ops with weak scalars, broadcasting, reductions, matmuls, select, max,
    a custom_vjp and a scan: most kinds of reverse-mode rule."""
    w, b, v = params["w"], params["b"], params["v"]
    h = fnp.tanh(x @ w + b)                      # dot_general, broadcasting add
    h = fnp.where(h > 0.1, h, 0.5 * h)           # select
    h = fnp.maximum(h, -0.3) / (1.0 + h * h)     # max, div
    h = h - fnp.max(h, axis=1, keepdims=True)    # reduce_max, broadcast
    s = fnp.sum(fnp.exp(h) * fnp.sin(h), axis=0)  # reduce_sum
    s = scaled_square(s) + s @ v                 # custom_vjp (rules see Arrays)

    def cell(c, xt):
        c = fnp.cos(c * xt) + xt
        return c, fnp.sum(c)
    c, ys = lax.scan(cell, s[:2], fnp.reshape(x[:, :2], (-1, 2)))
    return fnp.sum(c * c) + 0.1 * fnp.sum(ys) + fnp.mean(s ** 2)


def make_args(dtype):
    params = {"w": RNG.normal(size=(3, 4)).astype(dtype),
              "b": RNG.normal(size=(4,)).astype(dtype),
              "v": RNG.normal(size=(4, 4)).astype(dtype)}
    x = RNG.normal(size=(5, 3)).astype(dtype)
    return params, x


def _leaves(tree):
    return nanofn.tree.leaves(tree)


@pytest.fixture
def array_backward():
    """Run the reverse pass on Arrays (the general path) inside the test."""
    _ad.numpy_backward = False
    yield
    _ad.numpy_backward = True


def grads_both_ways(f, *args):
    fast = nanofn.grad(f, argnums=tuple(range(len(args))))(*args)
    _ad.numpy_backward = False
    try:
        slow = nanofn.grad(f, argnums=tuple(range(len(args))))(*args)
    finally:
        _ad.numpy_backward = True
    return fast, slow


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_backward_equals_array_backward_and_jit(dtype):
    params, x = make_args(dtype)
    fast, slow = grads_both_ways(program, params, x)
    jitted = nanofn.jit(nanofn.grad(program, argnums=(0, 1)))(params, x)
    for a, b, c in zip(_leaves(fast), _leaves(slow), _leaves(jitted)):
        assert type(a) is core.Array and a.dtype == dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # same ops, same order
        tol = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=tol, atol=tol)
    assert not core._state.numpy_mode


def test_custom_vjp_rule_sees_arrays_and_its_result_is_used():
    x = fnp.array([1.0, -2.0, 0.5])
    SEEN_IN_BWD.clear()
    g = nanofn.grad(lambda x: fnp.sum(scaled_square(x)))(x)
    np.testing.assert_allclose(np.asarray(g), 3.0 * np.asarray(x))
    assert SEEN_IN_BWD and all(t is core.Array for pair in SEEN_IN_BWD for t in pair)


@settings(max_examples=15, deadline=None)
@given(shape=st.sampled_from([(), (1,), (3,), (2, 3), (0, 2)]),
       bshape=st.sampled_from([(), (1,), (3,), (1, 3)]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_broadcasting_cotangents_are_summed_back_on_numpy(shape, bshape, dtype):
    try:
        np.broadcast_shapes(shape, bshape)
    except ValueError:
        return
    a = RNG.normal(size=shape).astype(dtype)
    b = RNG.normal(size=bshape).astype(dtype)

    def f(a, b):
        return fnp.sum(fnp.sin(a) * b + a / (2.0 + b * b) - fnp.exp(-a * a))
    fast, slow = grads_both_ways(f, a, b)
    for g, s, p in zip(fast, slow, (a, b)):
        assert g.shape == p.shape and g.dtype == dtype
        np.testing.assert_array_equal(np.asarray(g), np.asarray(s))


def test_higher_order_and_transforms_of_eager_grad_still_trace():
    f = lambda x: fnp.sum(fnp.sin(x) * x)  # noqa: E731
    x = RNG.normal(size=4)
    hess = nanofn.hessian(f)(x)
    expected = np.diag(2 * np.cos(x) - x * np.sin(x))
    np.testing.assert_allclose(np.asarray(hess), expected, rtol=1e-12, atol=1e-12)
    per_example = nanofn.vmap(nanofn.grad(lambda v: fnp.sin(v) * v))(x)
    np.testing.assert_allclose(np.asarray(per_example), np.sin(x) + x * np.cos(x), rtol=1e-12)
    # a vjp taken eagerly, pulled back under jit (traced cotangents, numpy tape entries)
    _, pullback = nanofn.vjp(lambda v: fnp.sin(v) * v, x)
    out = nanofn.jit(lambda ct: pullback(ct)[0])(fnp.ones(4, x.dtype))
    np.testing.assert_allclose(np.asarray(out), np.sin(x) + x * np.cos(x), rtol=1e-12)


def test_numpy_mode_is_off_after_a_failing_backward():
    def bad_bwd(res, g):
        raise RuntimeError("boom")

    @nanofn.custom_vjp
    def f(x):
        return x * 2.0
    f.defvjp(lambda x: (x * 2.0, None), bad_bwd)
    with pytest.raises(RuntimeError, match="boom"):
        nanofn.grad(lambda x: fnp.sum(fnp.sin(f(x))))(fnp.ones(2))
    assert not core._state.numpy_mode
    assert type(fnp.sin(fnp.ones(2))) is core.Array  # eager results are Arrays again


def test_debug_nans_still_names_the_backward_op():
    with nanofn.debug_nans():
        with pytest.raises(FloatingPointError, match="backward pass of 'sqrt'"):
            nanofn.grad(lambda x: fnp.sum(fnp.sqrt(x) * 0.0))(fnp.array([0.0]))
    assert not core._state.numpy_mode


def test_division_by_zero_is_quiet_and_restores_numpy_error_state():
    before = np.geterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = nanofn.grad(lambda x: fnp.sum(1.0 / x))(fnp.array([0.0, 2.0]))
        assert float(fnp.log(fnp.array(0.0))) == -np.inf
    np.testing.assert_array_equal(np.asarray(g), [-np.inf, -0.25])
    assert np.geterr() == before
    with pytest.raises(FloatingPointError):  # numpy's own setting is still in force
        with np.errstate(divide="raise"):
            np.float64(1.0) / np.float64(0.0)


@pytest.mark.parametrize("x_shape, y_shape, dn", [
    ((6, 5), (5, 4), (((1,), (0,)), ((), ()))),          # x @ w
    ((5, 6), (5, 4), (((0,), (0,)), ((), ()))),          # x.T @ w
    ((6, 5), (4, 5), (((1,), (1,)), ((), ()))),          # x @ w.T
    ((2, 6, 5), (2, 5, 4), (((2,), (1,)), ((0,), (0,)))),  # batched matmul
])
def test_dot_general_cotangents_are_contiguous_and_correct(x_shape, y_shape, dn):
    x = RNG.normal(size=x_shape)
    y = RNG.normal(size=y_shape)
    out, pullback = nanofn.vjp(lambda a, b: lax.dot_general(a, b, dn), x, y)
    ct = RNG.normal(size=out.shape)
    gx, gy = pullback(ct)
    assert np.asarray(gx).flags.c_contiguous and np.asarray(gy).flags.c_contiguous
    ex = np.einsum  # reference cotangents by einsum, written per case
    letters = "abcdefgh"
    (lc, rc), (lb, rb) = dn
    xs = list(letters[:len(x_shape)])
    ys = list(letters[len(x_shape):len(x_shape) + len(y_shape)])
    for i, j in zip(lc + lb, rc + rb):
        ys[j] = xs[i]
    outs = [xs[i] for i in lb] + [c for i, c in enumerate(xs) if i not in lc + lb] + \
        [c for i, c in enumerate(ys) if i not in rc + rb]
    xs, ys, outs = "".join(xs), "".join(ys), "".join(outs)
    np.testing.assert_allclose(np.asarray(gx), ex(f"{outs},{ys}->{xs}", ct, y), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(gy), ex(f"{outs},{xs}->{ys}", ct, x), rtol=1e-12)
    nanofn.testing.check_grads(lambda a, b: lax.dot_general(a, b, dn), (x, y), order=2)


def test_operator_fast_paths_keep_promotion_rules():
    f16 = fnp.ones(2, "float16")
    i32 = fnp.array([1, 2])
    f32 = fnp.ones(2)
    f64 = fnp.ones(2, "float64")
    assert (f16 * 2.0).dtype == np.float16 and (2 * f16).dtype == np.float16
    assert (i32 / 2).dtype == np.float32 and (i32 * 2).dtype == np.int32
    assert (i32 + 1.5).dtype == np.float32 and (1.5 - i32).dtype == np.float32
    assert (f32 + f64).dtype == np.float64 and (f64 - f32).dtype == np.float64
    assert (i32 / i32).dtype == np.float32
    np.testing.assert_array_equal(np.asarray(1.0 - f32 * 3.0), [-2.0, -2.0])
    np.testing.assert_array_equal(np.asarray(6.0 / (f32 + 1.0)), [3.0, 3.0])
    assert f32.__add__("a") is NotImplemented and f32.__rsub__(object()) is NotImplemented
    with pytest.raises(TypeError):
        f32 + "a"
    assert (f32 == "a") is False
    np.testing.assert_array_equal(np.asarray(f32 + [1.0, 2.0]), [2.0, 3.0])
    # the same fast paths on tracers
    g = nanofn.grad(lambda x: fnp.sum(2.0 / x + x * 3 - 1 / (x + x)))(fnp.array([1.0, 2.0]))
    assert g.dtype == np.float32
    np.testing.assert_allclose(np.asarray(g), [-2.0 + 3.0 + 0.5, -0.5 + 3.0 + 0.125])


# ------------------------------------------------------------------ numpy-mode rules, buffers

def every_numpy_rule(x, y):
    """Uses every primitive with a `vjp_numpy` rule, each in several argument patterns:
    both arguments differentiated, one of them, the same value twice (x * x), constants,
    broadcasting, and values used several times (summed cotangents)."""
    a = fnp.tanh(x) * fnp.sin(y) + 0.5 * fnp.exp(-x * x) + x / (1.0 + y * y)
    b = fnp.cos(a) - a / 3.0 + 2.0 / (x * x + 1.0) - (x - a)
    c = nanofn.nn.sigmoid(b) * fnp.log(1.5 + fnp.tanh(a)) + fnp.sqrt(1.0 + b * b)
    d = c ** 3 + c ** 2 + c ** 1 + c ** 0 + lax.integer_pow(c, -2) - fnp.square(a)
    e = d.astype(np.float64).astype(d.dtype) * x + fnp.sum(d * y, axis=0, keepdims=True)
    return fnp.sum(e) + fnp.sum(e * e, axis=1).mean() + fnp.sum(y * 0.0 + x[0])


@contextlib.contextmanager
def inplace_min_size(n):
    """The reverse pass reuses buffers (and the tape forgets residuals) from `n` elements
    on, within this context (hypothesis tests cannot take function-scoped fixtures)."""
    saved = _ad.inplace_min_size
    _ad.inplace_min_size = n
    try:
        yield
    finally:
        _ad.inplace_min_size = saved


@pytest.fixture
def inplace_on_small_arrays():
    """Let the reverse pass reuse buffers and the tape forget residuals on tiny arrays too."""
    with inplace_min_size(1):
        yield


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("min_size", [1, 1 << 12])
def test_numpy_rules_and_buffer_reuse_equal_the_general_path(dtype, min_size, monkeypatch):
    monkeypatch.setattr(_ad, "inplace_min_size", min_size)
    x = RNG.normal(size=(3, 4)).astype(dtype)
    y = RNG.normal(size=(4,)).astype(dtype)
    x0, y0 = x.copy(), y.copy()
    fast, slow = grads_both_ways(every_numpy_rule, x, y)
    jitted = nanofn.jit(nanofn.grad(every_numpy_rule, argnums=(0, 1)))(x, y)
    for a, b, c, p in zip(fast, slow, jitted, (x, y)):
        assert a.shape == p.shape and a.dtype == dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        tol = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=tol, atol=tol)
    np.testing.assert_array_equal(x, x0)  # the inputs were never written into
    np.testing.assert_array_equal(y, y0)


def test_numpy_rules_check_grads_with_residuals_forgotten(inplace_on_small_arrays):
    x = RNG.normal(size=(3, 4))
    y = RNG.normal(size=(4,))
    nanofn.testing.check_grads(every_numpy_rule, (x, y), order=1, modes=["rev"])


@settings(max_examples=10, deadline=None)
@given(shape=st.sampled_from([(), (1,), (5,), (2, 3)]),
       dtype=st.sampled_from([np.float32, np.float64]),
       min_size=st.sampled_from([1, 1 << 12]))
def test_buffer_reuse_on_any_shape(shape, dtype, min_size):
    x = np.asarray(RNG.normal(size=shape)).astype(dtype)

    def f(x):
        a = fnp.sin(x) * x
        return fnp.sum(a / (2.0 + x * x) - fnp.tanh(a) + fnp.exp(-a) * a)
    with inplace_min_size(min_size):
        fast, slow = grads_both_ways(f, x)
    assert fast[0].shape == np.shape(x)
    np.testing.assert_array_equal(np.asarray(fast[0]), np.asarray(slow[0]))


def test_vjp_pullback_can_run_twice_and_leaves_values_alone(inplace_on_small_arrays):
    x = fnp.array([0.5, -1.0, 2.0])
    out, pullback = nanofn.vjp(lambda v: fnp.exp(v) * v - v / (1.0 + v * v), x)
    ct = fnp.array([1.0, 2.0, 3.0])
    out_before, ct_before = np.array(out), np.array(ct)
    (g1,) = pullback(ct)
    (g2,) = pullback(ct)
    np.testing.assert_array_equal(np.asarray(g1), np.asarray(g2))
    np.testing.assert_array_equal(np.asarray(out), out_before)
    np.testing.assert_array_equal(np.asarray(ct), ct_before)
    xv = np.asarray(x)
    expected = np.exp(xv) * (1 + xv) - (1 - xv * xv) / (1 + xv * xv) ** 2
    np.testing.assert_allclose(np.asarray(g1), expected * [1, 2, 3], rtol=1e-6)


def test_tape_forgets_large_values_its_rules_do_not_read(inplace_on_small_arrays):
    x = fnp.array([0.5, -1.0, 2.0])
    with core.new_main(_ad.TapeTrace, []) as main:
        t = _ad.TapeTracer(main.trace, x, 0)
        (fnp.sin(t) + t) * t
    tape = list(main.global_data)
    kept = {e[0].name: (e[3], e[4]) for e in tape}
    sin_args, sin_out = kept["sin"]
    add_args, add_out = kept["add"]
    mul_args, mul_out = kept["mul"]
    assert type(sin_args[0]) is np.ndarray and type(sin_out) is core.ShapedArray
    assert all(type(a) is core.ShapedArray for a in add_args)  # add reads no values
    assert all(type(a) is np.ndarray for a in mul_args)  # mul reads both operands
    assert type(mul_out) is core.ShapedArray and mul_out.shape == (3,)


def test_grad_frees_residuals_during_the_reverse_pass():
    import weakref
    seen = []

    @nanofn.custom_vjp
    def probe(v):
        return v

    def probe_fwd(v):
        return v, None

    def probe_bwd(_, g):
        seen.append(residual() is None)  # runs after exp's rule: exp's output is gone
        return (g,)
    probe.defvjp(probe_fwd, probe_bwd)
    residual = None

    def f(x):
        nonlocal residual
        e = fnp.exp(probe(x))
        residual = weakref.ref(e.primal)
        return fnp.sum(e)
    nanofn.grad(f)(fnp.ones(8))
    assert seen == [True]


def test_aux_values_come_back_as_given():
    raw = np.arange(3.0)
    (v, aux), g = nanofn.value_and_grad(lambda x: (fnp.sum(x * x), (raw, x * 2.0)),
                                        has_aux=True)(fnp.ones(3))
    assert aux[0] is raw
    assert type(aux[1]) is core.Array
    np.testing.assert_array_equal(np.asarray(aux[1]), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(np.asarray(g), [2.0, 2.0, 2.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("owned", [True, False])
def test_one_pass_kernels_give_the_ufunc_passes_bits(dtype, owned):
    # tanh, logistic and div run one kernel pass on large arrays (ops/_base.py
    # `_ONE_PASS_MIN`): bitwise the general path's cotangents, whether or not the
    # cotangent buffer may be written into
    from nanofn.ops import _base
    n = _base._ONE_PASS_MIN + 7
    x = (RNG.normal(size=n) * 3).astype(dtype)
    y = (RNG.normal(size=n) + 0.1).astype(dtype)

    def f(x, y):
        z = fnp.tanh(x) * 2.0 + lax.logistic(y) + x / y
        return fnp.sum(z if owned else z * 1.0 + z)  # `* 1.0 + z`: z's cotangent is shared

    fast, slow = grads_both_ways(f, x, y)
    for a, b in zip(fast, slow):
        assert a.dtype == dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    kernels = (_base._tanh_vjp_kernel, _base._logistic_vjp_kernel, _base._div_vjp_kernel)
    assert all(k._dispatcher is not None for k in kernels)  # they ran
    with nanofn.config._override("nanofn_use_kernels", False):
        off = nanofn.grad(f, argnums=(0, 1))(x, y)
    for a, b in zip(fast, off):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@settings(max_examples=20, deadline=None)
@given(shape=st.sampled_from([(), (1,), (7,), (3, 4)]),
       dtype=st.sampled_from([np.float32, np.float64]),
       min_size=st.sampled_from([1, 1 << 12]))
def test_a_product_with_the_ones_a_sum_hands_back_is_not_computed(shape, dtype, min_size):
    # grad of sum(f(x)) seeds the product rules with ones broadcast: x * 1 is x bitwise,
    # so the rule hands back x itself (a value of this pass) or a broadcast number, never
    # the caller's arrays (a closed-over constant is multiplied as before)
    x = np.asarray(RNG.normal(size=shape)).astype(dtype)
    y = np.asarray(RNG.normal(size=shape)).astype(dtype)
    c = np.asarray(RNG.normal(size=shape)).astype(dtype)  # the caller's, closed over
    c0 = c.copy()

    def f(x, y):
        return fnp.sum(fnp.sin(x) * fnp.cos(y) + 0.5 * x + c * y + x * x)

    with inplace_min_size(min_size):
        fast, slow = grads_both_ways(f, x, y)
    jitted = nanofn.jit(nanofn.grad(f, argnums=(0, 1)))(x, y)
    for a, b, j in zip(fast, slow, jitted):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(np.asarray(a), np.asarray(j), rtol=tol, atol=tol)
    gy = fast[1]
    c[...] = 100.0  # the caller writes into its constant: the gradient keeps its values
    np.testing.assert_allclose(np.asarray(gy), -np.sin(x) * np.sin(y) + c0, rtol=1e-5,
                               atol=1e-5)
