"""The GELU primitives (`gelu`, `gelu_grad` in nanofn/ops/_nn.py) and the float32 tanh
their kernels use (`tanh_approx`, nanofn/ops/_fastmath.py): the tanh's ulp error over a
dense grid and at the float32 edge values, kernels against float64 numpy on hypothesis
shapes and values (empty, 0-d, +-inf, NaN, huge and tiny), derivatives to order 2 with
finite differences (float64) and against the composite formula they replace, jit, vmap
and the kernel switch."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as jnp
from nanofn import nn
from nanofn.ops import _fastmath, _nn
from nanofn.testing import check_grads

F32 = np.finfo(np.float32)


def _ulps(x32, got32):
    """`|got - tanh(x)|` in float32 ulps of the exact value."""
    exact = np.tanh(x32.astype(np.float64))
    _, e = np.frexp(exact)
    ulp = np.maximum(np.ldexp(1.0, e - 24), 2.0 ** -149)
    return np.abs(got32.astype(np.float64) - exact) / ulp


# ------------------------------------------------------------------------ tanh_approx


def test_tanh_max_ulp_error_over_a_dense_grid():
    # every 499th float32 from 0 to past the saturation point (2.2e6 values, every binade),
    # both signs
    top = int(np.float32(9.3).view(np.int32))
    x = np.arange(0, top, 499, dtype=np.int32).view(np.float32)
    x = np.concatenate([x, -x])
    got = _fastmath.tanh_float32(x)
    err = _ulps(x, got)
    assert err.max() <= 6.02, (err.max(), x[err.argmax()])  # 6.02 over every float32
    assert (err[np.abs(x) >= 1] <= 2).mean() > 0.92  # 6.5% above 2 ulp near +-1
    np.testing.assert_array_equal(got.view(np.int32), _fastmath.tanh_float32_ref(x).view(np.int32))


def test_tanh_edge_values():
    tiny = np.array([F32.smallest_subnormal, F32.smallest_normal, 1e-30, 1e-8, 2.0 ** -13],
                    np.float32)
    np.testing.assert_array_equal(_fastmath.tanh_float32(tiny), tiny)  # tanh(x) = x
    np.testing.assert_array_equal(_fastmath.tanh_float32(-tiny), -tiny)
    zero = _fastmath.tanh_float32(np.array([0.0, -0.0], np.float32))
    assert list(np.signbit(zero)) == [False, True] and not zero.any()
    big = np.array([9.1, 9.2, 20.0, 1e4, 1e20, F32.max, np.inf], np.float32)
    np.testing.assert_array_equal(_fastmath.tanh_float32(big), 1.0)
    np.testing.assert_array_equal(_fastmath.tanh_float32(-big), -1.0)
    assert np.isnan(_fastmath.tanh_float32(np.array([np.nan], np.float32))).all()
    # around the clamp and where float32 tanh reaches 1, and every power of two
    near = np.array([np.nextafter(np.float32(v), np.float32(d)) for v in (9.1, 9.011)
                     for d in (0, 20)], np.float32)
    powers = np.ldexp(np.float32(1), np.arange(-149, 4)).astype(np.float32)
    for x in (near, powers, np.nextafter(powers, np.float32(0))):
        assert _ulps(x, _fastmath.tanh_float32(x)).max() <= 6.02
    # never beyond [-1, 1], though rounding could overshoot where tanh is near 1
    x = np.linspace(0, 9.2, 200001, dtype=np.float32)
    assert (np.abs(_fastmath.tanh_float32(x)) <= 1).all()
    # the scalar function, in numba and in plain Python, agrees with the array kernel
    half = np.float32(0.5)
    assert _fastmath.tanh_approx(half) == _fastmath.tanh_approx.py_func(half)


def test_tanh_shapes_and_dtype():
    for shape in [(), (0,), (1,), (3, 0, 2), (2, 3)]:
        x = np.linspace(-3, 3, int(np.prod(shape))).reshape(shape).astype(np.float32)
        got = _fastmath.tanh_float32(x)
        assert got.shape == shape and got.dtype == np.float32
        np.testing.assert_allclose(got, np.tanh(x), rtol=6e-7, atol=0)


# ------------------------------------------------------------------------ gelu vs numpy


def _draw(data, *, specials=True):
    ndim = data.draw(st.integers(0, 3), label="ndim")
    shape = tuple(data.draw(st.sampled_from([0, 1, 2, 5])) for _ in range(ndim))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    scale = data.draw(st.sampled_from([1e-20, 1e-3, 1.0, 4.0, 30.0, 1e30]), label="scale")
    x = rng.standard_normal(shape) * scale
    if specials and x.size and data.draw(st.booleans(), label="specials"):
        flat = x.reshape(-1)
        for _ in range(data.draw(st.integers(1, 3))):
            flat[rng.integers(flat.size)] = data.draw(st.sampled_from(
                [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-40, 9.99, 10.0, -10.0, 4.6, -4.6]))
    g = rng.standard_normal(shape)
    layout = data.draw(st.sampled_from(["c", "reversed", "strided"]), label="layout")
    if layout == "reversed" and ndim:
        x, g = np.flip(np.flip(x).copy()), np.flip(np.flip(g).copy())
    elif layout == "strided" and ndim:
        x, g = np.repeat(x, 2, axis=-1)[..., ::2], np.repeat(g, 2, axis=-1)[..., ::2]
    return x, g


def _near(got, want, x, g=None):
    """float32 `got` against float64 `want`: within a few ulp of `want`, plus what the
    tanh approximation's absolute error (up to 3.6e-7 near +-1) can add: about
    `0.5 |x|` times it forward; backward, where `1 - t^2` is small and its absolute error
    is multiplied by up to 14, at most 4.5e-6 |g| (JAX's XLA float32 GELU gradient is off
    by up to 3.5e-6 in the same places)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == np.float32
    same = (np.isnan(got) == np.isnan(want)).all() and (got[np.isinf(want)]
                                                       == want[np.isinf(want)]).all()
    assert same, (x, got, want)
    ok = np.isfinite(want)
    slack = 3e-7 * np.abs(x) if g is None else 6e-6 * np.abs(g)
    err = np.abs(got[ok] - want[ok])
    assert (err <= 5e-7 * np.abs(want[ok]) + slack[ok] + F32.smallest_subnormal).all(), (
        x[ok][err.argmax()], got[ok][err.argmax()], want[ok][err.argmax()])


@given(st.data())
def test_float32_kernels_match_float64_reference(data):
    x64, g64 = _draw(data)
    x, g = x64.astype(np.float32), g64.astype(np.float32)
    xr, gr = x.astype(np.float64), g.astype(np.float64)  # the same inputs, in float64
    with nanofn.config._override("nanofn_use_kernels", True):
        _near(_nn.gelu_p.impl(x), _nn._gelu_ref(xr), xr)
        _near(_nn.gelu_grad_p.impl(x, g), _nn._gelu_grad_ref(xr, gr), xr, gr)


@given(st.data())
def test_reference_paths_float64_and_kernels_off(data):
    x, g = _draw(data)
    got = _nn.gelu_p.impl(x)  # float64 always takes the reference
    assert got.dtype == np.float64 and got.shape == x.shape
    np.testing.assert_array_equal(got, _nn._gelu_ref(x))
    np.testing.assert_array_equal(_nn.gelu_grad_p.impl(x, g), _nn._gelu_grad_ref(x, g))
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    with nanofn.config._override("nanofn_use_kernels", False):
        np.testing.assert_array_equal(nn.gelu(x32), _nn._gelu_ref(x32))
        np.testing.assert_array_equal(_nn.gelu_grad_p.impl(x32, g32), _nn._gelu_grad_ref(x32, g32))
        off = np.asarray(nn.gelu(x32))
    on = np.asarray(nn.gelu(x32))
    # float32 numpy loses digits where 1 + tanh cancels (x < -3): compare loosely
    np.testing.assert_allclose(on, off, rtol=1e-5, atol=1e-6 * np.nanmax(np.abs(x32), initial=1))


def test_edge_values_match_the_composite():
    # gelu(inf) = inf, gelu(-inf) = -inf * 0 = NaN and gelu'(+-inf) = NaN, as the composite
    # (and JAX's gelu) give; past |x| = 10 gelu is relu and its derivative 1 or 0
    x = np.array([np.inf, -np.inf, np.nan, 20.0, -20.0, 1e30, -1e30, 0.0, -0.0], np.float32)
    y = np.asarray(nn.gelu(x))
    np.testing.assert_array_equal(y, np.array([np.inf, np.nan, np.nan, 20, 0, 1e30, 0, 0, 0],
                                              np.float32))
    d = np.asarray(nanofn.vmap(nanofn.grad(nn.gelu))(x))
    np.testing.assert_array_equal(d, [np.nan, np.nan, np.nan, 1, 0, 1, 0, 0.5, 0.5])
    for dtype in (np.float32, np.float64):
        with nanofn.config._override("nanofn_use_kernels", False):
            np.testing.assert_array_equal(nn.gelu(x.astype(dtype)), y)
            np.testing.assert_array_equal(nanofn.vmap(nanofn.grad(nn.gelu))(x.astype(dtype)), d)


# ------------------------------------------------------------------------ derivatives


def _composite(x):
    """What nanofn.nn.gelu computed before it was a primitive."""
    xc = jnp.clip(x, -10.0, 10.0)
    inner = float(np.sqrt(2 / np.pi)) * (xc + 0.044715 * (xc * xc * xc))
    return x * (0.5 * (1.0 + jnp.tanh(inner)))


def test_check_grads_order_2():
    x = np.random.default_rng(0).standard_normal((3, 4)) * 3
    w = np.random.default_rng(1).standard_normal((3, 4))
    check_grads(lambda v: nn.gelu(v) * w, (x,), order=2)
    check_grads(lambda v: _nn.gelu_grad_p.bind(v, w), (x,), order=2)
    check_grads(lambda v, c: _nn.gelu_grad_p.bind(v, c), (x, w), order=2)
    check_grads(nn.gelu, (np.array([-12.0, -9.0, 0.0, 9.0, 12.0]),), order=2)


def test_derivatives_equal_the_composite_to_order_3():
    x = np.concatenate([np.linspace(-11, 11, 45), [0.0, 1e-8]])
    f = lambda v: nn.gelu(v).sum()  # noqa: E731
    c = lambda v: _composite(v).sum()  # noqa: E731
    for k in range(3):
        np.testing.assert_allclose(nanofn.grad(f)(x), nanofn.grad(c)(x), rtol=1e-13, atol=1e-15)
        f, c = (lambda h: lambda v: h(v).sum())(nanofn.grad(f)), \
            (lambda h: lambda v: h(v).sum())(nanofn.grad(c))
    t = np.random.default_rng(2).standard_normal(x.shape)
    _, got = nanofn.jvp(nn.gelu, (x,), (t,))
    _, want = nanofn.jvp(_composite, (x,), (t,))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_float32_gradient_is_close_to_float64():
    x = np.linspace(-8, 8, 1001)
    g32 = np.asarray(nanofn.grad(lambda v: nn.gelu(v).sum())(x.astype(np.float32)))
    g64 = np.asarray(nanofn.grad(lambda v: nn.gelu(v).sum())(x))
    np.testing.assert_allclose(g32, g64, rtol=5e-7, atol=6e-6)


# ------------------------------------------------------------------------ transformations


def test_jit_vmap_eager_agree():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 3, 5)) * 3).astype(np.float32)
    loss = lambda v: (nn.gelu(v) ** 2).sum()  # noqa: E731
    eager = (np.asarray(nn.gelu(x)), np.asarray(nanofn.grad(loss)(x)))
    jitted = nanofn.jit(lambda v: (nn.gelu(v), nanofn.grad(loss)(v)))
    for _ in range(2):  # the plain plan, then the compiled one
        for a, b in zip(jitted(x), eager):
            np.testing.assert_array_equal(np.asarray(a), b)
    for axis in (0, 1, 2):
        got = nanofn.vmap(nn.gelu, in_axes=axis, out_axes=axis)(x)
        np.testing.assert_array_equal(got, eager[0])
        got = nanofn.vmap(nanofn.grad(loss), in_axes=axis, out_axes=axis)(x)
        want = np.stack([nanofn.grad(loss)(s) for s in np.moveaxis(x, axis, 0)], axis)
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("in_axes", [(0, 0), (0, 1), (1, 0), (None, 0), (0, None)])
def test_vmap_gelu_grad(in_axes):
    rng = np.random.default_rng(4)
    x, g = rng.standard_normal((3, 3, 2)), rng.standard_normal((3, 3, 2))
    x, g = (a if ax is not None else a[0] for a, ax in zip((x, g), in_axes))
    got = nanofn.vmap(_nn.gelu_grad_p.bind, in_axes=in_axes)(x, g)
    pick = lambda a, ax, i: a if ax is None else np.take(a, i, ax)  # noqa: E731
    want = np.stack([_nn._gelu_grad_ref(pick(x, in_axes[0], i), pick(g, in_axes[1], i))
                     for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_one_primitive_each_way():
    x = np.ones((2, 3), np.float32)
    names = lambda f: [e.primitive.name for e in nanofn.make_jaxpr(f)(x).eqns]  # noqa: E731
    assert names(nn.gelu) == ["gelu"]
    back = names(nanofn.grad(lambda v: nn.gelu(v).sum()))
    assert "gelu_grad" in back and "tanh" not in back


def test_approximate_false_and_non_float_inputs():
    x = np.linspace(-4, 4, 9)
    from scipy.special import erf
    np.testing.assert_allclose(nn.gelu(x, approximate=False), x * 0.5 * (1 + erf(x / np.sqrt(2))),
                               rtol=1e-14)
    ints = nn.gelu(np.arange(-2, 3))  # promoted to the default float
    np.testing.assert_allclose(ints, nn.gelu(np.arange(-2.0, 3.0, dtype=np.float32)))
    assert float(nn.gelu(1.0)) == pytest.approx(0.8411920, rel=1e-6)


def test_bad_operands_raise():
    with pytest.raises(TypeError, match="gelu: x must be a floating array"):
        _nn.gelu_p.bind(np.arange(3))
    with pytest.raises(ValueError, match="gelu_grad: g must match x"):
        _nn.gelu_grad_p.bind(np.ones(3), np.ones(4))
