"""The softmax-family, cross-entropy and layer-norm primitives (nanofn/ops/_nn.py): numba
kernels against their numpy references on odd layouts and extreme values, the switch that
turns kernels off, gradients (check_grads, float64, order 2), the vmap law and jit."""

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as jnp
from nanofn import nn
from nanofn.nn import losses
from nanofn.ops import _nn
from nanofn.scipy import special
from nanofn.testing import check_grads

TOL = {np.float32: 2e-5, np.float64: 1e-12}


# ------------------------------------------------------------------------ drawing inputs


def _layout(data, a):
    """`a`'s values, in a layout hypothesis picks: contiguous, Fortran order, reversed
    (negative strides) or a strided view into a larger array."""
    a = np.asarray(a)
    kind = data.draw(st.sampled_from(["c", "fortran", "reversed", "strided"]), label="layout")
    if a.ndim == 0:
        return a
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "reversed":
        return np.flip(np.flip(a).copy())  # same values, every stride negative
    if kind == "strided":
        big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
        view = big[tuple(slice(None, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    return np.array(a, order="C")


def _draw_x(data, dtype, *, min_dims=1, specials=True, last=None):
    ndim = data.draw(st.integers(min_dims, 3), label="ndim")
    shape = [data.draw(st.integers(0, 4), label="side") for _ in range(ndim)]
    shape[-1] = last if last is not None else data.draw(
        st.sampled_from([0, 1, 2, 5, 10, 300]), label="last")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    scale = data.draw(st.sampled_from([1.0, 30.0, 1000.0]), label="scale")
    x = rng.standard_normal(shape) * scale
    if specials and x.size and data.draw(st.booleans(), label="specials"):
        flat = x.reshape(-1)
        for _ in range(data.draw(st.integers(1, 3))):
            flat[rng.integers(flat.size)] = data.draw(st.sampled_from([np.inf, -np.inf]))
    return _layout(data, x.astype(dtype)), rng


def _close(got, want, dtype):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                               rtol=TOL[dtype], atol=TOL[dtype])


DTYPES = st.sampled_from([np.float32, np.float64])


# ------------------------------------------------------------------------ kernel == reference


def _kernels_for_any_row():
    """Long rows normally take numpy's faster exp: make every row use the kernels."""
    return mock.patch.multiple(_nn, _EXP_ROW_MAX=10**9, _CE_ROW_MAX=10**9)


@given(st.data(), DTYPES)
def test_softmax_family_kernels_match_reference(data, dtype):
    x, _ = _draw_x(data, dtype)
    with _kernels_for_any_row():
        _close(_nn.logsumexp_p.impl(x), _nn._logsumexp_ref(x), dtype)
        _close(_nn.log_softmax_p.impl(x), _nn._log_softmax_ref(x), dtype)
        _close(_nn.softmax_p.impl(x), _nn._softmax_ref(x), dtype)
    assert x.size == 0 or _nn._softmax_kernel._dispatcher is not None  # the kernel ran


@given(st.data(), DTYPES)
def test_softmax_grad_kernels_match_reference(data, dtype):
    x, rng = _draw_x(data, dtype, specials=False)
    g = _layout(data, rng.standard_normal(x.shape).astype(dtype))
    out = _nn._log_softmax_ref(x)
    with _kernels_for_any_row():
        _close(_nn.log_softmax_grad_p.impl(g, out), _nn._log_softmax_grad_ref(g, out), dtype)
    s = _nn._softmax_ref(x)
    _close(_nn.softmax_grad_p.impl(g, s), _nn._softmax_grad_ref(g, s), dtype)


@given(st.data(), DTYPES)
def test_cross_entropy_kernels_match_reference(data, dtype):
    x, rng = _draw_x(data, dtype)
    n = x.shape[-1]
    # out-of-range labels are defined at this level: they pick nothing
    labels = _layout(data, rng.integers(-2, n + 2, x.shape[:-1]).astype(
        data.draw(st.sampled_from([np.int32, np.int64]), label="label dtype")))
    with _kernels_for_any_row():
        loss, probs = _nn.ce_int_p.impl(x, labels)
    want_loss, want_probs = _nn._ce_ref(x, labels)
    _close(loss, want_loss, dtype)
    _close(probs, want_probs, dtype)
    g = _layout(data, rng.standard_normal(x.shape[:-1]).astype(dtype))
    _close(_nn.ce_int_grad_p.impl(want_probs, labels, g),
           _nn._ce_grad_ref(want_probs, labels, g), dtype)


@given(st.data(), DTYPES)
def test_layer_norm_kernels_match_reference(data, dtype):
    x, rng = _draw_x(data, dtype, specials=False)
    batch_dims = data.draw(st.integers(0, x.ndim - 1), label="batch_dims")
    pshape = x.shape[:batch_dims] + x.shape[-1:]
    scale = _layout(data, rng.standard_normal(pshape).astype(dtype))
    bias = _layout(data, rng.standard_normal(pshape).astype(dtype))
    g = _layout(data, rng.standard_normal(x.shape).astype(dtype))
    params = dict(epsilon=1e-5, batch_dims=batch_dims)
    _close(_nn.layer_norm_p.impl(x, scale, bias, **params),
           _nn._layer_norm_ref(x, scale, bias, **params), dtype)
    # dscale/dbias sum over rows: compare them relative to the size of what is summed
    got = _nn.layer_norm_grad_p.impl(x, scale, g, **params)
    want = _nn._layer_norm_grad_ref(x, scale, g, **params)
    rows = max(1, int(np.prod(x.shape[batch_dims:-1])))
    _close(got[0], want[0], dtype)
    for a, b in zip(got[1:], want[1:]):
        np.testing.assert_allclose(a, b, rtol=TOL[dtype] * rows, atol=TOL[dtype] * rows)
        assert a.dtype == dtype and a.shape == pshape


@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (1e3, 1e-2), (1e4, 1e-3), (-3e4, 1.0)])
def test_layer_norm_float32_rows_far_from_zero_keep_their_accuracy(mean, std):
    # the kernels' row sums are float64 (vectorised, reassociated) and two-pass: rows with
    # a large mean and a small variance are as accurate as float32 allows, against the
    # float64 reference of the same float32 values
    rng = np.random.default_rng(7)
    x = (mean + std * rng.standard_normal((2, 50, 128))).astype(np.float32)
    scale, bias = (rng.standard_normal(128).astype(np.float32) for _ in range(2))
    g = rng.standard_normal(x.shape).astype(np.float32)
    p = dict(epsilon=1e-5, batch_dims=0)
    wide = [a.astype(np.float64) for a in (x, scale, bias, g)]
    with nanofn.config._override("nanofn_use_kernels", True):
        got = [_nn.layer_norm_p.impl(x, scale, bias, **p)] + _nn.layer_norm_grad_p.impl(
            x, scale, g, **p)
    want = [_nn._layer_norm_ref(*wide[:3], **p)] + _nn._layer_norm_grad_ref(
        wide[0], wide[1], wide[3], **p)
    for a, b in zip(got, want):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=2e-7 * np.abs(b).max())


def test_extreme_rows():
    x = np.array([[1000.0, 1000.0, -1000.0], [-np.inf, -np.inf, -np.inf], [0.0, np.inf, 1.0],
                  [np.nan, 0.0, 1.0], [-np.inf, 0.0, -np.inf]], np.float32)
    lse = np.asarray(_nn.logsumexp(x))
    np.testing.assert_allclose(lse[0], 1000 + np.log(2), rtol=1e-7)
    assert lse[1] == -np.inf and lse[2] == np.inf and np.isnan(lse[3]) and lse[4] == 0
    s = np.asarray(_nn.softmax(x))
    np.testing.assert_array_equal(s[0], [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(s[4], [0.0, 1.0, 0.0])
    assert np.isnan(s[3]).all()
    ls = np.asarray(_nn.log_softmax(x))
    np.testing.assert_allclose(ls[0], [-np.log(2), -np.log(2), -2000 - np.log(2)], rtol=1e-6)
    # exact where the other terms are tiny next to the maximum (log1p, not log(1 + tiny))
    tiny = float(_nn.logsumexp(np.array([0.0, -40.0])))
    assert tiny == np.log1p(np.exp(-40.0))


def test_long_float64_rows_take_numpy_exp():
    x = np.random.default_rng(4).standard_normal((3, _nn._EXP_ROW_MAX + 1))
    np.testing.assert_array_equal(np.asarray(_nn.softmax(x)), _nn._softmax_ref(x))
    short = x[:, :_nn._EXP_ROW_MAX]
    # shorter rows run the kernel: the same numbers as its loops run as plain Python
    np.testing.assert_allclose(np.asarray(_nn.softmax(short)),
                               _run_py(_nn._softmax_kernel, np.ascontiguousarray(short)),
                               rtol=1e-15)


@pytest.mark.parametrize("cols", [1, 7, 33, 128, 1000, 5000])
def test_float32_rows_of_every_width_take_the_vectorised_kernels(cols):
    # nanofn/ops/_softmax32.py: within a few float32 ulp of the float64 reference
    rng = np.random.default_rng(cols)
    x = (rng.standard_normal((4, cols)) * 20).astype(np.float32)
    g = rng.standard_normal((4, cols)).astype(np.float32)
    labels = rng.integers(0, cols, 4)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    s, ls = _nn._softmax_ref(x64), _nn._log_softmax_ref(x64)
    loss, probs = _nn._ce_ref(x64, labels)
    pairs = [(_nn.softmax(x), s), (_nn.log_softmax(x), ls), (_nn.logsumexp(x),
                                                                 _nn._logsumexp_ref(x64)),
             (_nn.softmax_grad_p.bind(g, s.astype(np.float32)), _nn._softmax_grad_ref(g64, s)),
             (_nn.log_softmax_grad_p.bind(g, ls.astype(np.float32)),
              _nn._log_softmax_grad_ref(g64, ls)),
             *zip(_nn.ce_int_p.bind(x, labels), (loss, probs))]
    for got, want in pairs:
        got = np.asarray(got)
        assert got.dtype == np.float32
        # absolute error: float32 rounding of the inputs' scale (|g| ~ 1, |s| <= 1), as the
        # float32 reference has it: g - sum(g * s) cancels where s is near 1
        np.testing.assert_allclose(got, want, rtol=4e-7 * np.sqrt(cols),
                                   atol=3e-7 * (np.abs(want).max() + 1))
    with mock.patch.object(_nn, "_float32_kernel", side_effect=AssertionError("used")):
        with pytest.raises(AssertionError, match="used"):
            _nn.softmax(x)


def _run_py(kern, x):
    """The kernel's Python source run as plain Python (the same loops numba compiles)."""
    out = np.empty_like(x)
    kern.py_func(x, out)
    return out


def test_empty_row_and_empty_batch():
    assert np.asarray(_nn.logsumexp(np.zeros((2, 0)))).tolist() == [-np.inf, -np.inf]
    assert _nn.softmax(np.zeros((0, 7), np.float32)).shape == (0, 7)
    assert _nn.layer_norm(np.zeros((3, 0)), np.ones(0), np.zeros(0)).shape == (3, 0)
    loss = _nn.softmax_cross_entropy_int(np.zeros((0, 4)), np.zeros(0, np.int32))
    assert loss.shape == (0,)


# ------------------------------------------------------------------------ the switch


@given(st.data(), DTYPES)
def test_kernels_off_gives_the_reference_and_matches(data, dtype):
    x, rng = _draw_x(data, dtype, specials=False, last=5)
    labels = rng.integers(0, 5, x.shape[:-1])
    scale, bias = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)

    def run():
        outs = [nn.softmax(x), nn.log_softmax(x, axis=0), nn.logsumexp(x, axis=-1),
                losses.softmax_cross_entropy_with_integer_labels(x, labels),
                _nn.layer_norm(x, scale, bias)]
        grads = nanofn.grad(lambda v: (losses.softmax_cross_entropy_with_integer_labels(
            v, labels).sum() + (nn.log_softmax(v) ** 2).sum()
            + (_nn.layer_norm(v, scale, bias) ** 2).sum()))(x)
        return [np.asarray(o) for o in outs + [grads]]

    on = run()
    with nanofn.config._override("nanofn_use_kernels", False):
        off = run()
        np.testing.assert_array_equal(np.asarray(_nn.softmax(x)), _nn._softmax_ref(x))
    for a, b in zip(on, off):
        _close(a, b, dtype)


def test_other_float_dtypes_take_the_reference_path():
    x = np.array([[0.0, 1.0, 2.0]], np.float16)
    out = _nn.softmax(x)
    assert out.dtype == np.float16
    np.testing.assert_allclose(np.asarray(out, np.float64), _nn._softmax_ref(x), rtol=1e-3)


# ------------------------------------------------------------------------ gradients


def test_public_functions_check_grads():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal((3, 4))
    labels = np.array([0, 3, 1])
    check_grads(lambda v: nn.softmax(v) * w, (x,), order=2)
    check_grads(lambda v: nn.log_softmax(v, axis=0) * w, (x,), order=2)
    check_grads(lambda v: nn.logsumexp(v, axis=(0, 1)), (x,), order=2)
    check_grads(lambda v: nn.logsumexp(v, axis=0, keepdims=True), (x,), order=2)
    check_grads(lambda v: special.logsumexp(v, axis=1), (x,), order=2)
    check_grads(lambda v: special.softmax(v) * w, (x,), order=2)
    check_grads(lambda v: losses.softmax_cross_entropy_with_integer_labels(v, labels),
                (x,), order=2)
    check_grads(lambda v: losses.softmax_cross_entropy_with_integer_labels(v, labels, axis=0),
                (x.T,), order=2)
    scale, bias = rng.standard_normal(4), rng.standard_normal(4)
    check_grads(lambda v, s, b: _nn.layer_norm(v, s, b) * w, (x, scale, bias), order=2)
    init, apply = nn.LayerNorm()
    _, params = init(nanofn.random.key(0), (-1, 4))
    params = {"scale": scale, "offset": bias}
    check_grads(lambda p, v: apply(p, v) * w, (params, x), order=2)


def test_backward_primitives_check_grads():
    rng = np.random.default_rng(1)
    g, x = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    out, s = _nn.log_softmax(x), _nn.softmax(x)
    labels = rng.integers(0, 4, (2, 3))
    check_grads(lambda a, b: _nn.log_softmax_grad_p.bind(a, b), (g, out), order=2)
    check_grads(lambda a, b: _nn.softmax_grad_p.bind(a, b), (g, s), order=2)
    check_grads(lambda p, c: _nn.ce_int_grad_p.bind(p, labels, c), (s, g[..., 0]), order=2)
    check_grads(lambda a, sc, c: _nn.layer_norm_grad_p.bind(a, sc, c, epsilon=1e-5,
                                                            batch_dims=1),
                (x, rng.standard_normal((2, 4)), g), order=1)
    # both results of the cross-entropy primitive carry derivatives
    check_grads(lambda v: _nn.ce_int_p.bind(v, labels), (x,), order=2)


def test_grad_is_fused_and_labels_get_none():
    x = np.random.default_rng(2).standard_normal((4, 3))
    labels = np.array([0, 1, 2, 1])
    jaxpr = str(nanofn.make_jaxpr(nanofn.grad(
        lambda v: losses.softmax_cross_entropy_with_integer_labels(v, labels).mean()))(x))
    assert "softmax_cross_entropy_int_grad" in jaxpr and "exp" not in jaxpr.split("=")[-1]
    grad = nanofn.grad(lambda v: losses.softmax_cross_entropy_with_integer_labels(
        v, labels).sum())(x)
    expected = _nn._softmax_ref(x) - np.eye(3)[labels]
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=1e-12)


# ------------------------------------------------------------------------ vmap and jit

CASES = {
    "logsumexp": (lambda x, l, s, b: _nn.logsumexp(x), (0, None, None, None)),
    "log_softmax": (lambda x, l, s, b: _nn.log_softmax(x), (0, None, None, None)),
    "softmax": (lambda x, l, s, b: _nn.softmax(x), (0, None, None, None)),
    "ce": (lambda x, l, s, b: _nn.softmax_cross_entropy_int(x, l), (0, 0, None, None)),
    "layer_norm": (lambda x, l, s, b: _nn.layer_norm(x, s, b), (0, None, 0, 0)),
    "grad_ce": (lambda x, l, s, b: nanofn.grad(lambda v: (
        _nn.softmax_cross_entropy_int(v, l) * jnp.arange(3.0)).sum())(x), (0, 0, None, None)),
    "grad_layer_norm": (lambda x, l, s, b: nanofn.grad(lambda v, sc, bi: (
        _nn.layer_norm(v, sc, bi) ** 3).sum(), argnums=(0, 1, 2))(x, s, b), (0, None, 0, 0)),
    "grad_log_softmax": (lambda x, l, s, b: nanofn.grad(lambda v: (
        nn.log_softmax(v) ** 2).sum())(x), (0, None, None, None)),
}


def _case_args(size, rng):
    x = rng.standard_normal((size, 3, 5))
    labels = rng.integers(0, 5, (size, 3))
    s, b = rng.standard_normal((size, 5)), rng.standard_normal((size, 5))
    return x, labels, s, b


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("size", [0, 1, 3])
def test_vmap_law(name, size):
    fn, in_axes = CASES[name]
    args = _case_args(size, np.random.default_rng(size))
    got = nanofn.vmap(fn, in_axes=in_axes)(*args)
    slices = [fn(*[a[i] if ax == 0 else a for a, ax in zip(args, in_axes)])
              for i in range(size)]
    got = got if isinstance(got, tuple) else (got,)
    for k, g in enumerate(got):
        if size:
            want = np.stack([np.asarray(s[k] if isinstance(s, tuple) else s) for s in slices])
            np.testing.assert_allclose(np.asarray(g), want, rtol=1e-12, atol=1e-12)
        else:
            assert g.shape[0] == 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_equals_eager(name):
    fn, _ = CASES[name]
    args = _case_args(2, np.random.default_rng(5))
    args = (args[0], args[1], args[2][0], args[3][0])
    got, want = nanofn.jit(fn)(*args), fn(*args)
    for a, b in zip(got if isinstance(got, tuple) else (got,),
                    want if isinstance(want, tuple) else (want,)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)


@pytest.mark.parametrize("size", [0, 1, 3])
def test_vmap_with_unbatched_operands(size):
    rng = np.random.default_rng(size)
    x, labels, s, b = _case_args(size, rng)
    x0, l0 = x[0] if size else rng.standard_normal((3, 5)), rng.integers(0, 5, 3)
    got = nanofn.vmap(_nn.softmax_cross_entropy_int, in_axes=(0, None))(x, l0)
    want = [np.asarray(_nn.softmax_cross_entropy_int(x[i], l0)) for i in range(size)]
    np.testing.assert_allclose(np.asarray(got).reshape(size, 3), np.reshape(want, (size, 3)))
    got = nanofn.vmap(_nn.layer_norm, in_axes=(None, 0, 0))(x0, s, b)
    want = [np.asarray(_nn.layer_norm(x0, s[i], b[i])) for i in range(size)]
    np.testing.assert_allclose(np.asarray(got).reshape(size, 3, 5), np.reshape(want, (size, 3, 5)))
    # per-example gradients with shared parameters: dscale is summed per example
    sc = rng.standard_normal(5)
    grad = nanofn.grad(lambda v, c: (_nn.layer_norm(v, c, np.zeros(5)) ** 3).sum(),
                       argnums=(0, 1))
    dx, dsc = nanofn.vmap(grad, in_axes=(0, None))(x, sc)
    assert dx.shape == x.shape and dsc.shape == (size, 5)
    for i in range(size):
        want_dx, want_dsc = grad(x[i], sc)
        np.testing.assert_allclose(np.asarray(dx[i]), np.asarray(want_dx), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(dsc[i]), np.asarray(want_dsc), rtol=1e-12)


def test_out_of_range_labels():
    x = np.random.default_rng(3).standard_normal((2, 3))
    with pytest.raises(ValueError, match=r"\[0, 3\).*3 classes.*label 3"):
        _nn.softmax_cross_entropy_int(x, np.array([0, 3]))
    with pytest.raises(ValueError, match="label -1"):
        losses.softmax_cross_entropy_with_integer_labels(x, np.array([-1, 0]))
    # under jit the values are unknown: such a label's loss is NaN (as in optax), and it
    # picks nothing in the gradient
    loss = nanofn.jit(_nn.softmax_cross_entropy_int)(x, np.array([0, 3]))
    assert np.isnan(np.asarray(loss)[1]) and np.isfinite(np.asarray(loss)[0])
    grad = nanofn.jit(nanofn.grad(lambda v, l: _nn.softmax_cross_entropy_int(v, l).sum()))(
        x, np.array([0, 3]))
    np.testing.assert_allclose(np.asarray(grad)[1], _nn._softmax_ref(x)[1], rtol=1e-12)


# ------------------------------------------------------------------------ errors


def test_errors_name_shapes_and_dtypes():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match=r"softmax: x must be a floating array.*i32\[2,3\]"):
        _nn.softmax(np.zeros((2, 3), np.int32))
    with pytest.raises(ValueError, match="logsumexp: x needs at least one axis"):
        _nn.logsumexp(np.float32(1.0))
    with pytest.raises(ValueError, match=r"softmax_grad: out must match g.*f32\[2,4\]"):
        _nn.softmax_grad_p.bind(x, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\).*i(32|64)\[3\]"):
        _nn.softmax_cross_entropy_int(x, np.zeros(3, np.int32))
    with pytest.raises(TypeError, match="labels must be integer class indices"):
        _nn.ce_int_p.bind(x, np.zeros(2, np.float32))
    with pytest.raises(ValueError, match=r"layer_norm: scale must have shape \(3,\).*f32\[4\]"):
        _nn.layer_norm(x, np.ones(4, np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"layer_norm: bias must have shape \(3,\) and dtype "
                                         "float32"):
        _nn.layer_norm(x, np.ones(3, np.float32), np.zeros(3, np.float64))
    with pytest.raises(ValueError, match=r"layer_norm: scale must have shape \(3,\)"):
        nanofn.jit(lambda a, s: _nn.layer_norm(a, s, s))(x, np.ones(4, np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernels", [True, False])
def test_a_row_holding_inf_is_nan_in_softmax_and_log_softmax_as_in_jax(dtype, kernels):
    # JAX shifts by the row's maximum: x - max is NaN at the +inf, and so is every entry
    # of softmax and log_softmax; logsumexp (shifted by 0 there) is +inf
    x = np.array([[1.0, np.inf, 2.0], [1.0, -np.inf, 0.0], [-np.inf, -np.inf, -np.inf]],
                 dtype)
    with nanofn.config._override("nanofn_use_kernels", kernels):
        for f in (nn.softmax, nn.log_softmax, nanofn.jit(nn.softmax),
                  nanofn.jit(nn.log_softmax)):
            out = np.asarray(f(x))
            assert np.isnan(out[0]).all() and np.isnan(out[2]).all()
            assert np.isfinite(out[1][[0, 2]]).all()
        np.testing.assert_array_equal(np.asarray(nn.logsumexp(x, axis=-1))[[0, 2]],
                                      [np.inf, -np.inf])
        probs = np.asarray(nn.softmax(x[1:2]))
        np.testing.assert_allclose(probs, [[np.e / (np.e + 1), 0.0, 1 / (np.e + 1)]],
                                   rtol=1e-6)
