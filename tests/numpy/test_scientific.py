"""nanofn/numpy/_scientific.py: values against numpy (hypothesis shapes and arguments),
gradients against finite differences in float64, and the edges each function defines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.testing import broadcastable_shapes, check_grads, shapes


def _seed(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**31 - 1), label="seed"))


def _close(got, expected, rtol=1e-10, atol=1e-12):
    if isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            _close(g, e, rtol, atol)
        return
    got = np.asarray(got)
    assert got.shape == np.shape(expected), (got.shape, np.shape(expected))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


# ------------------------------------------------------------------------ differences


@given(data=st.data())
def test_diff(data):
    rng = _seed(data)
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=0, max_side=5), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    n = data.draw(st.integers(0, 3), label="n")
    x = rng.normal(size=shape)
    kwargs = {}
    if data.draw(st.booleans(), label="prepend"):
        kwargs["prepend"] = 0.5
    if data.draw(st.booleans(), label="append"):
        side = list(shape)
        side[axis] = 2
        kwargs["append"] = rng.normal(size=side)
    _close(fnp.diff(x, n, axis, **kwargs), np.diff(x, n, axis, **kwargs))
    if n and np.diff(x, n, axis, **kwargs).size:
        check_grads(lambda x: fnp.diff(x, n, axis, **kwargs), (x,), order=1)


def test_diff_bool_and_ediff1d():
    b = np.array([True, True, False, True])
    _close(fnp.diff(b), np.diff(b))
    assert fnp.diff(b).dtype == np.bool_
    x = np.random.default_rng(0).normal(size=(2, 3))
    _close(fnp.ediff1d(x), np.ediff1d(x))
    _close(fnp.ediff1d(x, to_end=[1.0, 2.0], to_begin=-1.0),
           np.ediff1d(x, to_end=[1.0, 2.0], to_begin=-1.0))
    check_grads(lambda x: fnp.ediff1d(x, to_begin=0.0), (x,), order=1)


@given(data=st.data())
def test_gradient(data):
    rng = _seed(data)
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=3, max_side=6), label="shape")
    edge_order = data.draw(st.sampled_from([1, 2]), label="edge_order")
    f = rng.normal(size=shape)
    kind = data.draw(st.sampled_from(["none", "scalar", "coords"]), label="spacing")
    if kind == "none":
        spacing = ()
    elif kind == "scalar":
        spacing = (0.3,)
    else:
        spacing = tuple(np.cumsum(rng.uniform(0.2, 1.0, size=n)) for n in shape)
    _close(fnp.gradient(f, *spacing, edge_order=edge_order),
           np.gradient(f, *spacing, edge_order=edge_order), rtol=1e-9, atol=1e-9)
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    one = spacing[axis:axis + 1] if kind == "coords" else spacing
    _close(fnp.gradient(f, *one, axis=axis, edge_order=edge_order),
           np.gradient(f, *one, axis=axis, edge_order=edge_order), rtol=1e-9, atol=1e-9)
    check_grads(lambda f: fnp.gradient(f, *one, axis=axis, edge_order=edge_order), (f,),
                order=1)


def test_gradient_grad_wrt_coordinates():
    f = np.sin(np.linspace(0.0, 2.0, 6))
    x = np.cumsum(np.array([0.1, 0.5, 0.3, 0.4, 0.2, 0.6]))
    check_grads(lambda f, x: fnp.gradient(f, x, edge_order=2), (f, x), order=2)


# ------------------------------------------------------------------------ products


@given(data=st.data())
def test_kron(data):
    rng = _seed(data)
    a = rng.normal(size=data.draw(shapes(max_dims=3, max_side=3), label="a"))
    b = rng.normal(size=data.draw(shapes(max_dims=3, max_side=3), label="b"))
    _close(fnp.kron(a, b), np.kron(a, b))
    check_grads(fnp.kron, (a, b), order=2)


@pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors:DeprecationWarning")
@given(data=st.data())
def test_cross(data):
    rng = _seed(data)
    na, nb = data.draw(st.sampled_from([2, 3]), label="na"), data.draw(st.sampled_from([2, 3]))
    batch = data.draw(shapes(max_dims=2, max_side=3), label="batch")
    a = np.moveaxis(rng.normal(size=batch + (na,)), -1, 0)
    b = rng.normal(size=batch + (nb,))
    kwargs = {"axisa": 0}
    if na == 3 or nb == 3:
        kwargs["axisc"] = data.draw(st.integers(0, len(batch)), label="axisc")
    _close(fnp.cross(a, b, **kwargs), np.cross(a, b, **kwargs))
    check_grads(lambda a, b: fnp.cross(a, b, **kwargs), (a, b), order=2)
    if not batch:  # 1-d vectors: `axis` sets all three axes
        _close(fnp.cross(a, b, axis=0), np.cross(a, b, axis=0))


def test_r_and_c():
    a, b = np.arange(3.0), np.arange(6.0).reshape(2, 3)
    for key in [(a, 5.0, slice(0, 3)), ("0,2", a, a), ("1,2,0", a, a), ("-1,3,1", a, a),
                (slice(0, 1, 5j), a), ("0,2,-1", a, a), (b, b), ("1", b, b)]:
        _close(fnp.r_[key], np.r_[key])
    _close(fnp.c_[a, a], np.c_[a, a])
    _close(fnp.c_[b, b], np.c_[b, b])
    _close(fnp.c_[a, 2.0 * a, a], np.c_[a, 2.0 * a, a])
    g = nanofn.grad(lambda x: fnp.sum(fnp.r_[x, 2.0 * x] ** 2))(a)
    _close(g, 10.0 * a)


# ------------------------------------------------------------------------ selection


@given(data=st.data())
def test_select(data):
    rng = _seed(data)
    shape = data.draw(shapes(max_dims=2, max_side=4), label="shape")
    x = rng.normal(size=shape)
    conds = [x < -0.5, x > 0.5, np.abs(x) < 0.2]
    choices = [x * 2.0, np.sin(x), x ** 2]
    _close(fnp.select(conds, choices, default=-1.0), np.select(conds, choices, default=-1.0))
    check_grads(lambda x: fnp.select(conds, [x * 2.0, fnp.sin(x), x ** 2], default=x), (x,),
                order=2)


@given(data=st.data())
def test_partition_contract(data):
    rng = _seed(data)
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=5), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    kth = data.draw(st.integers(0, shape[axis] - 1), label="kth")
    x = rng.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape)
    got = np.moveaxis(np.asarray(fnp.partition(x, kth, axis)), axis, -1)
    expected = np.moveaxis(np.partition(x, kth, axis), axis, -1)
    np.testing.assert_array_equal(got[..., kth], expected[..., kth])
    assert np.all(got[..., :kth] <= got[..., kth:kth + 1])
    assert np.all(got[..., kth + 1:] >= got[..., kth:kth + 1])
    idx = np.asarray(fnp.argpartition(x, kth, axis))
    np.testing.assert_array_equal(np.take_along_axis(x, idx, axis),
                                  np.asarray(fnp.partition(x, kth, axis)))
    check_grads(lambda x: fnp.partition(x, kth, axis), (x,), order=2)


@given(data=st.data())
def test_fmax_fmin(data):
    rng = _seed(data)
    s1, s2 = data.draw(broadcastable_shapes(2, max_dims=2, max_side=3), label="shapes")
    a, b = rng.normal(size=s1), rng.normal(size=s2)
    a = np.where(rng.uniform(size=s1) < 0.3, np.nan, a)
    b = np.where(rng.uniform(size=s2) < 0.3, np.nan, b)
    _close(fnp.fmax(a, b), np.fmax(a, b))
    _close(fnp.fmin(a, b), np.fmin(a, b))
    a, b = rng.normal(size=s1), rng.normal(size=s2)  # away from NaN: the max/min rules
    check_grads(fnp.fmax, (a, b), order=2)
    check_grads(fnp.fmin, (a, b), order=2)


def test_fmax_gradient_flows_to_the_number():
    g = nanofn.grad(lambda x, y: fnp.fmax(x, y), argnums=(0, 1))(np.float64(np.nan), 2.0)
    assert float(g[0]) == 0.0 and float(g[1]) == 1.0


# ------------------------------------------------------------------------ elementwise


@given(data=st.data())
def test_sinc(data):
    rng = _seed(data)
    x = rng.uniform(-3, 3, size=data.draw(shapes(max_dims=2, max_side=4)))
    _close(fnp.sinc(x), np.sinc(x), atol=1e-15)
    check_grads(fnp.sinc, (x,), order=2)


def test_sinc_derivatives_at_zero():
    # sinc(x) = 1 - (pi x)^2 / 6 + ...: sinc'(0) = 0, sinc''(0) = -pi^2 / 3
    assert float(fnp.sinc(0.0)) == 1.0
    assert float(nanofn.grad(fnp.sinc)(np.float64(0.0))) == 0.0
    np.testing.assert_allclose(float(nanofn.grad(nanofn.grad(fnp.sinc))(np.float64(0.0))),
                               -np.pi ** 2 / 3, rtol=1e-12)
    check_grads(fnp.sinc, (np.array([0.0, 1e-3, -0.02, 0.0159]),), order=2)


def test_nan_to_num():
    x = np.array([np.nan, np.inf, -np.inf, 1.5, -0.0])
    for kwargs in ({}, {"nan": 7.0, "posinf": 1e3, "neginf": -1e3}):
        _close(fnp.nan_to_num(x, **kwargs), np.nan_to_num(x, **kwargs))
    x32 = x.astype(np.float32)
    _close(fnp.nan_to_num(x32), np.nan_to_num(x32))
    _close(fnp.nan_to_num(np.array([1, 2])), np.array([1, 2]))
    g = nanofn.grad(lambda v: fnp.sum(fnp.nan_to_num(v * 2.0)))(x)
    _close(g, [0.0, 0.0, 0.0, 2.0, 2.0])
    z = x + 1j * x[::-1]  # complex: the real and imaginary parts separately, as numpy
    for kwargs in ({}, {"nan": 7.0, "posinf": 1e3, "neginf": -1e3}):
        _close(fnp.nan_to_num(z, **kwargs), np.nan_to_num(z, **kwargs))


def test_angles():
    x = np.random.default_rng(0).normal(size=(3,))
    for ours, theirs in ((fnp.deg2rad, np.deg2rad), (fnp.rad2deg, np.rad2deg),
                         (fnp.radians, np.radians), (fnp.degrees, np.degrees)):
        _close(ours(x), theirs(x))
        check_grads(ours, (x,), order=2)
    assert fnp.deg2rad(np.arange(3)).dtype == np.float32


# ------------------------------------------------------------------------ splitting


def test_splits():
    x = np.arange(24.0).reshape(2, 4, 3)
    for ours, theirs, arg in ((fnp.vsplit, np.vsplit, 2), (fnp.hsplit, np.hsplit, [1, 3]),
                              (fnp.dsplit, np.dsplit, 3), (fnp.hsplit, np.hsplit, 2)):
        _close(ours(x, arg), theirs(x, arg))
    _close(fnp.hsplit(np.arange(6.0), 3), np.hsplit(np.arange(6.0), 3))
    _close(fnp.vsplit(np.arange(4.0), 2), [np.arange(2.0), np.arange(2.0, 4.0)])  # as JAX
    with pytest.raises(ValueError, match="1 or more"):
        fnp.vsplit(np.float32(1.0), 1)
    with pytest.raises(ValueError, match="3 or more"):
        fnp.dsplit(np.ones((2, 2)), 2)
    check_grads(lambda x: fnp.hsplit(x, [1, 3])[1], (x,), order=1)


# ------------------------------------------------------------------------ integration


@given(data=st.data())
def test_trapezoid(data):
    rng = _seed(data)
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=5), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    y = rng.normal(size=shape)
    _close(fnp.trapezoid(y, dx=0.3, axis=axis), np.trapezoid(y, dx=0.3, axis=axis))
    x1 = np.cumsum(rng.uniform(0.1, 1.0, size=shape[axis]))
    _close(fnp.trapezoid(y, x1, axis=axis), np.trapezoid(y, x1, axis=axis))
    xn = np.cumsum(rng.uniform(0.1, 1.0, size=shape), axis=axis)
    _close(fnp.trapezoid(y, xn, axis=axis), np.trapezoid(y, xn, axis=axis))
    check_grads(lambda y, x: fnp.trapezoid(y, x, axis=axis), (y, x1), order=2)


# ------------------------------------------------------------------------ interpolation


@given(data=st.data())
def test_interp(data):
    rng = _seed(data)
    n = data.draw(st.integers(1, 6), label="n")
    xp = np.cumsum(rng.uniform(0.1, 1.0, size=n))
    fp = rng.normal(size=n)
    x = rng.uniform(xp[0] - 1, xp[-1] + 1, size=data.draw(shapes(max_dims=2, max_side=4)))
    _close(fnp.interp(x, xp, fp), np.interp(x, xp, fp))
    _close(fnp.interp(x, xp, fp, left=-5.0, right=5.0),
           np.interp(x, xp, fp, left=-5.0, right=5.0))
    _close(fnp.interp(x, xp, fp, period=2.5), np.interp(x, xp, fp, period=2.5))
    if n > 1:  # away from the knots, where the derivative in x jumps
        x = np.where(np.min(np.abs(x[..., None] - xp), axis=-1) < 1e-3, xp[0] - 0.5, x)
        check_grads(fnp.interp, (x, xp, fp), order=2)


def test_interp_at_knots_and_repeated_points():
    xp, fp = np.array([0.0, 1.0, 1.0, 2.0]), np.array([0.0, 1.0, 3.0, 4.0])
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    _close(fnp.interp(x, xp, fp), np.interp(x, xp, fp))
    g = nanofn.grad(lambda fp: fnp.interp(0.25, np.array([0.0, 1.0]), fp))(np.array([1., 3.]))
    _close(g, [0.75, 0.25])


@given(data=st.data())
def test_polyval(data):
    rng = _seed(data)
    p = rng.normal(size=data.draw(st.integers(1, 5), label="degree"))
    x = rng.normal(size=data.draw(shapes(max_dims=2, max_side=4), label="x"))
    _close(fnp.polyval(p, x), np.polyval(p, x), rtol=1e-9)
    check_grads(fnp.polyval, (p, x), order=2)


def test_jit_and_vmap():
    x = np.random.default_rng(5).normal(size=(3, 5))
    for f in (lambda v: fnp.diff(v, 2), lambda v: fnp.gradient(v), fnp.sinc,
              lambda v: fnp.interp(v, np.array([-1.0, 0.0, 2.0]), np.array([1.0, 0.0, 3.0])),
              lambda v: fnp.trapezoid(v), lambda v: fnp.polyval(v, 0.7),
              lambda v: fnp.kron(v, np.array([1.0, -1.0]))):
        expected = np.stack([np.asarray(f(v)) for v in x])
        _close(nanofn.vmap(f)(x), expected)
        _close(nanofn.jit(f)(x[0]), expected[0])
