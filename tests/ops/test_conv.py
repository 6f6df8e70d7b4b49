"""Convolution and pooling against direct loops; gradients by check_grads (float64)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nanofn
from nanofn import lax
from nanofn.ops._conv import conv_patches_p, conv_patches_transpose_p
from nanofn.testing import check_grads


def conv_loop(x, w, strides, pads, lhs_dil, rhs_dil, groups):
    """Direct-loop reference in NCHW / OIHW layout."""
    n, c, *sp = x.shape
    o, i, *k = w.shape
    # dilate and pad the input explicitly
    dil = np.zeros((n, c) + tuple((s - 1) * d + 1 for s, d in zip(sp, lhs_dil)))
    dil[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in lhs_dil)] = x
    pad_pos = [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
    xp = np.pad(dil, [(0, 0), (0, 0)] + pad_pos)
    xp = xp[(slice(None), slice(None)) + tuple(slice(max(-lo, 0), xp.shape[2 + j] - max(-hi, 0))
                                               for j, (lo, hi) in enumerate(pads))]
    ext = [(kk - 1) * d + 1 for kk, d in zip(k, rhs_dil)]
    out_sp = [(s - e) // st + 1 for s, e, st in zip(xp.shape[2:], ext, strides)]
    out = np.zeros((n, o) + tuple(out_sp))
    og = o // groups
    for b, oc in itertools.product(range(n), range(o)):
        g = oc // og
        for pos in itertools.product(*(range(m) for m in out_sp)):
            acc = 0.0
            for ic in range(i):
                for kp in itertools.product(*(range(kk) for kk in k)):
                    idx = tuple(p * st + q * d for p, st, q, d in zip(pos, strides, kp, rhs_dil))
                    acc += xp[(b, g * i + ic) + idx] * w[(oc, ic) + kp]
            out[(b, oc) + pos] = acc
    return out


@given(st.data())
def test_conv_matches_direct_loop(data):
    nsp = data.draw(st.integers(1, 2))
    groups = data.draw(st.sampled_from([1, 2]))
    i = data.draw(st.integers(1, 2))
    o = groups * data.draw(st.integers(1, 2))
    k = tuple(data.draw(st.integers(1, 3)) for _ in range(nsp))
    sp = tuple(data.draw(st.integers(1, 5)) for _ in range(nsp))
    strides = tuple(data.draw(st.integers(1, 2)) for _ in range(nsp))
    lhs_dil = tuple(data.draw(st.integers(1, 2)) for _ in range(nsp))
    rhs_dil = tuple(data.draw(st.integers(1, 2)) for _ in range(nsp))
    pads = tuple((data.draw(st.integers(-1, 2)), data.draw(st.integers(0, 2))) for _ in range(nsp))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    x = rng.normal(size=(2, i * groups) + sp)
    w = rng.normal(size=(o, i) + k)
    expected = conv_loop(x, w, strides, pads, lhs_dil, rhs_dil, groups)
    got = lax.conv_general_dilated(x, w, strides, pads, lhs_dil, rhs_dil,
                                   feature_group_count=groups)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-10, atol=1e-10)


def test_conv_nhwc_same_and_gradients():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 4, 3))
    w = rng.normal(size=(3, 3, 3, 2))
    dn = ("NHWC", "HWIO", "NHWC")
    f = lambda x, w: lax.conv_general_dilated(x, w, (2, 1), "SAME", dimension_numbers=dn)  # noqa
    y = f(x, w)
    assert y.shape == (2, 3, 4, 2)
    ref = conv_loop(x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1), (2, 1),
                    ((1, 1), (1, 1)), (1, 1), (1, 1), 1).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-10)
    check_grads(f, (x, w), order=2)


def test_conv_transpose_is_adjoint_of_strided_conv():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 6, 6, 2))
    w = rng.normal(size=(3, 3, 2, 2))
    dn = ("NHWC", "HWIO", "NHWC")
    conv = lambda x: lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=dn)  # noqa
    y, pullback = nanofn.vjp(conv, x)
    u = rng.normal(size=y.shape)
    ct = pullback(u)[0]
    wt = np.swapaxes(w[::-1, ::-1], 2, 3)
    got = lax.conv_transpose(u, wt, (2, 2), "SAME", dimension_numbers=dn)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ct), rtol=1e-10, atol=1e-12)


def test_patches_and_transpose_are_adjoint():
    rng = np.random.default_rng(2)
    params = dict(window=(2, 3), strides=(2, 1), padding=((1, 0), (-1, 2)),
                  lhs_dilation=(2, 1), rhs_dilation=(1, 2))
    x = rng.normal(size=(2, 3, 5, 6))
    p = np.asarray(conv_patches_p.bind(x, pad_value=0.0, **params))
    u = rng.normal(size=p.shape)
    xt = np.asarray(conv_patches_transpose_p.bind(u, x_shape=x.shape, **params))
    np.testing.assert_allclose(np.vdot(p, u), np.vdot(x, xt), rtol=1e-10)


@pytest.mark.parametrize("comp,ref", [(lax.max, np.max), (lax.min, np.min), (lax.add, np.sum)])
def test_reduce_window_pooling(comp, ref):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 5, 3))
    init = {"max": -np.inf, "min": np.inf, "add": 0.0}[comp.__name__]
    y = lax.reduce_window(x, init, comp, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    expected = ref(x[:, :6, :4].reshape(2, 3, 2, 2, 2, 3), axis=(2, 4))
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-12)
    f = lambda x: lax.reduce_window(x, init, comp, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")  # noqa
    check_grads(f, (x,), order=1)


def test_conv_under_jit_and_vmap_matches_eager():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 1, 6, 6, 2))
    w = rng.normal(size=(3, 3, 2, 4))
    dn = ("NHWC", "HWIO", "NHWC")
    f = lambda x: lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=dn)  # noqa
    eager = np.stack([np.asarray(f(xi)) for xi in x])
    np.testing.assert_allclose(np.asarray(nanofn.jit(f)(x[0])), eager[0], rtol=1e-12)
    if hasattr(nanofn, "vmap"):
        np.testing.assert_allclose(np.asarray(nanofn.vmap(f)(x)), eager, rtol=1e-12)


def test_conv_feature_mismatch_error():
    with pytest.raises(ValueError, match="input has 3 features and the kernel expects 2"):
        lax.conv_general_dilated(np.ones((1, 4, 4, 3)), np.ones((3, 3, 2, 1)), (1, 1), "SAME",
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))


@given(st.data())
def test_conv_and_its_gradients_same_with_and_without_kernels(data):
    nsp = data.draw(st.integers(1, 2))
    groups = data.draw(st.sampled_from([1, 2]))
    k = tuple(data.draw(st.integers(1, 3)) for _ in range(nsp))
    sp = tuple(data.draw(st.integers(1, 6)) for _ in range(nsp))
    strides = tuple(data.draw(st.integers(1, 3)) for _ in range(nsp))
    lhs_dil = tuple(data.draw(st.integers(1, 2)) for _ in range(nsp))
    rhs_dil = tuple(data.draw(st.integers(1, 2)) for _ in range(nsp))
    pads = tuple((data.draw(st.integers(-1, 2)), data.draw(st.integers(0, 2))) for _ in range(nsp))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    channels_last = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    x = rng.normal(size=(2, 2 * groups) + sp).astype(dtype)
    w = rng.normal(size=(2 * groups, 2) + k).astype(dtype)
    dn = None
    if channels_last:  # the input as an NHWC array, the kernel as HWIO
        x, w = np.moveaxis(x, 1, -1), np.moveaxis(w, (0, 1), (-1, -2))
        letters = "HW"[-nsp:]
        dn = ("N" + letters + "C", letters + "IO", "N" + letters + "C")

    def loss(x, w):
        y = lax.conv_general_dilated(x, w, strides, pads, lhs_dil, rhs_dil, dimension_numbers=dn,
                                     feature_group_count=groups)
        return (y * y).sum(), y

    grad = nanofn.grad(loss, argnums=(0, 1), has_aux=True)
    on = grad(x, w)
    jitted = nanofn.jit(grad)(x, w)
    with nanofn.config._override("nanofn_use_kernels", False):
        off = grad(x, w)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for a, b, c in zip(nanofn.tree_util.tree_leaves(on), nanofn.tree_util.tree_leaves(jitted),
                       nanofn.tree_util.tree_leaves(off)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=tol, atol=tol)
        np.testing.assert_allclose(np.asarray(b), np.asarray(c), rtol=tol, atol=tol)


def test_conv_1d_and_3d_match_direct_loop_with_kernels():
    rng = np.random.default_rng(5)
    for sp, k in (((7,), (3,)), ((4, 3, 5), (2, 1, 3))):  # 1-d: the 2-d kernels; 3-d: numpy
        x = rng.normal(size=(2, 3) + sp)
        w = rng.normal(size=(4, 3) + k)
        pads = tuple((1, 0) for _ in sp)
        strides = tuple(2 for _ in sp)
        ones = tuple(1 for _ in sp)
        got = lax.conv_general_dilated(x, w, strides, pads)
        want = conv_loop(x, w, strides, pads, ones, ones, 1)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-10)
        check_grads(lambda x, w: lax.conv_general_dilated(x, w, strides, pads), (x, w),  # noqa
                    order=1)


@pytest.mark.parametrize("strides,padding,dilation", [((1, 1), "VALID", (1, 1)),
                                                      ((2, 1), [(1, 0), (0, 2)], (1, 2))])
def test_conv_general_dilated_patches_are_the_windows(strides, padding, dilation):
    x = np.random.default_rng(3).normal(size=(2, 3, 5, 6))  # NCHW
    fh, fw = 3, 2
    got = np.asarray(lax.conv_general_dilated_patches(x, (fh, fw), strides, padding,
                                                      rhs_dilation=dilation))
    pads = [(0, 0), (0, 0)] + ([(0, 0), (0, 0)] if padding == "VALID" else list(padding))
    xp = np.pad(x, pads)
    oh = (xp.shape[2] - dilation[0] * (fh - 1) - 1) // strides[0] + 1
    ow = (xp.shape[3] - dilation[1] * (fw - 1) - 1) // strides[1] + 1
    want = np.zeros((2, 3 * fh * fw, oh, ow))
    for c in range(3):
        for i in range(fh):
            for j in range(fw):
                rows = slice(i * dilation[0], i * dilation[0] + strides[0] * (oh - 1) + 1,
                             strides[0])
                cols = slice(j * dilation[1], j * dilation[1] + strides[1] * (ow - 1) + 1,
                             strides[1])
                want[:, c * fh * fw + i * fw + j] = xp[:, c, rows, cols]
    np.testing.assert_array_equal(got, want)
    nhwc = lax.conv_general_dilated_patches(x.transpose(0, 2, 3, 1), (fh, fw), strides,
                                            padding, rhs_dilation=dilation,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_array_equal(np.asarray(nhwc), want.transpose(0, 2, 3, 1))
    check_grads(lambda v: lax.conv_general_dilated_patches(v, (fh, fw), strides, padding,
                                                           rhs_dilation=dilation),
                (x,), order=1)


@pytest.mark.parametrize("shape, window, strides, pads, lhs_dil, rhs_dil", [
    ((2, 3, 9), (3,), (2,), [(2, 1)], (1,), (2,)),
    ((1, 2, 5, 4, 6), (2, 3, 2), (1, 2, 1), [(1, 0), (-1, 2), (0, 1)], (1, 2, 1), (2, 1, 1)),
    ((2, 2, 4, 5), (2, 2), (1, 3), [(0, -1), (1, 1)], (2, 1), (1, 2)),
])
def test_conv_general_dilated_patches_match_an_identity_kernel_convolution(
        shape, window, strides, pads, lhs_dil, rhs_dil):
    # The patches are copied, but must equal XLA's definition: a grouped convolution
    # whose kernel picks one window position per output feature (exact for finite input)
    x = np.random.default_rng(5).normal(size=shape)
    c, size = shape[1], int(np.prod(window))
    eye = np.tile(np.eye(size).reshape((size, 1) + window), (c,) + (1,) * len(shape[1:]))
    want = conv_loop(x, eye, strides, pads, lhs_dil, rhs_dil, c)
    patches = lambda v: lax.conv_general_dilated_patches(  # noqa: E731
        v, window, strides, pads, lhs_dilation=lhs_dil, rhs_dilation=rhs_dil)
    np.testing.assert_array_equal(np.asarray(patches(x)), want)
    check_grads(patches, (x,), order=2)
    # vmapped over a leading axis, and jitted
    xs = np.stack([x, 2 * x])
    np.testing.assert_array_equal(np.asarray(nanofn.jit(nanofn.vmap(patches))(xs)),
                                  np.stack([want, 2 * want]))


def test_conv_general_dilated_patches_dtypes_and_non_finite_values():
    x = np.arange(24, dtype=np.int8).reshape(1, 2, 3, 4)
    p = lax.conv_general_dilated_patches(x, (2, 2), (1, 1), "VALID")
    assert p.dtype == np.int8 and p.shape == (1, 8, 2, 3)
    assert int(p[0, 4 + 3, 1, 2]) == int(x[0, 1, 2, 3])
    wide = lax.conv_general_dilated_patches(x, (2, 2), (1, 1), "VALID",
                                            preferred_element_type=np.int32)
    assert wide.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(wide), np.asarray(p).astype(np.int32))
    # a copy: an infinity stays where it is, the rest of its windows stay finite
    v = np.array([[[1.0, np.inf, 3.0, 4.0]]], np.float32)
    got = np.asarray(lax.conv_general_dilated_patches(v, (2,), (1,), "VALID"))
    np.testing.assert_array_equal(got, [[[1.0, np.inf, 3.0], [np.inf, 3.0, 4.0]]])
    with pytest.raises(ValueError, match="filter_shape"):
        lax.conv_general_dilated_patches(v, (2, 2), (1,), "VALID")


@pytest.mark.parametrize("ls, rs, dn, groups", [
    ((4, 2, 5, 5), (4, 2, 3, 3), None, 2),
    ((6, 5, 5, 3), (3, 3, 3, 6), ("NHWC", "HWIO", "NHWC"), 3),
    ((4, 3, 7), (8, 3, 2), None, 4),
])
def test_batch_group_count_pairs_batch_groups_with_output_feature_groups(ls, rs, dn, groups):
    # XLA's definition: batch group k, convolved alone with output-feature group k
    rng = np.random.default_rng(0)
    lhs, rhs = rng.normal(size=ls), rng.normal(size=rs)
    nsp = len(ls) - 2
    got = lax.conv_general_dilated(lhs, rhs, (1,) * nsp, "SAME", dimension_numbers=dn,
                                   batch_group_count=groups)
    spec = lax.conv_dimension_numbers(ls, rs, dn)
    b, o = spec.lhs_spec[0], spec.rhs_spec[0]
    parts = [lax.conv_general_dilated(
        np.take(lhs, np.arange(k * ls[b] // groups, (k + 1) * ls[b] // groups), axis=b),
        np.take(rhs, np.arange(k * rs[o] // groups, (k + 1) * rs[o] // groups), axis=o),
        (1,) * nsp, "SAME", dimension_numbers=dn) for k in range(groups)]
    want = np.concatenate([np.asarray(p) for p in parts], axis=spec.out_spec[1])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-10)
    check_grads(lambda a, w: lax.conv_general_dilated(a, w, (1,) * nsp, "SAME",
                                                      dimension_numbers=dn,
                                                      batch_group_count=groups),
                (lhs, rhs), order=1, modes=("rev",))
    with pytest.raises(ValueError, match="batch_group_count=5"):
        lax.conv_general_dilated(lhs, rhs, (1,) * nsp, "SAME", dimension_numbers=dn,
                                 batch_group_count=5)


# --- conv_general_dilated_local: a kernel per output position ----------------------------


def _local_reference(x, w, stride, filter_shape):
    """NCHW input, OIHW kernel whose I axis is (channel, window row, window col) and whose
    spatial axes are output positions; VALID padding."""
    n, c, h, wd = x.shape
    kh, kw = filter_shape
    oh, ow = (h - kh) // stride[0] + 1, (wd - kw) // stride[1] + 1
    out = np.zeros((n, w.shape[0], oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
            out[:, :, i, j] = patch.reshape(n, -1) @ w[:, :, i, j].T
    return out


@given(st.data())
@settings(max_examples=10, deadline=None)
def test_conv_general_dilated_local_matches_a_loop_over_positions(data):
    c = data.draw(st.integers(1, 3))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    sh, sw = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    h, wd = kh + data.draw(st.integers(0, 4)), kw + data.draw(st.integers(0, 4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.normal(size=(2, c, h, wd))
    oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
    w = rng.normal(size=(3, c * kh * kw, oh, ow))
    got = lax.conv_general_dilated_local(x, w, (sh, sw), "VALID", (kh, kw))
    np.testing.assert_allclose(np.asarray(got), _local_reference(x, w, (sh, sw), (kh, kw)),
                               rtol=1e-10, atol=1e-10)
    # the same in NHWC / HWIO / NHWC layout
    got2 = lax.conv_general_dilated_local(
        np.transpose(x, (0, 2, 3, 1)), np.transpose(w, (2, 3, 1, 0)), (sh, sw), "VALID",
        (kh, kw), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(np.asarray(got2), np.transpose(np.asarray(got), (0, 2, 3, 1)),
                               rtol=1e-10, atol=1e-10)


def test_conv_general_dilated_local_gradients_and_errors():
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(1, 2, 4, 4)), rng.normal(size=(2, 8, 3, 3))
    check_grads(lambda x, w: lax.conv_general_dilated_local(x, w, (1, 1), "VALID", (2, 2)),
                (x, w), order=2)
    with pytest.raises(ValueError, match=r"rhs of shape \(2, 8, 2, 2\) must have 8 input "
                                         r"features .* \(3, 3\)"):
        lax.conv_general_dilated_local(x, w[:, :, :2, :2], (1, 1), "VALID", (2, 2))


def _window_loop(x, init, fn, window, strides, pads, base_dil, win_dil):
    """Reduce every window with `fn` over its elements, init included (a direct loop)."""
    dil = np.full(tuple((n - 1) * d + 1 for n, d in zip(x.shape, base_dil)), init, x.dtype)
    dil[tuple(slice(None, None, d) for d in base_dil)] = x
    xp = np.pad(dil, [(max(lo, 0), max(hi, 0)) for lo, hi in pads], constant_values=init)
    xp = xp[tuple(slice(max(-lo, 0), xp.shape[j] - max(-hi, 0)) for j, (lo, hi) in enumerate(pads))]
    ext = [(w - 1) * d + 1 for w, d in zip(window, win_dil)]
    out_shape = [max(0, (n - e) // s + 1) for n, e, s in zip(xp.shape, ext, strides)]
    out = np.full(out_shape, init, x.dtype)
    for pos in itertools.product(*(range(m) for m in out_shape)):
        vals = [xp[tuple(p * s + q * d for p, s, q, d in zip(pos, strides, off, win_dil))]
                for off in itertools.product(*(range(w) for w in window))]
        out[pos] = fn([init] + vals)
    return out


@st.composite
def window_cases(draw):
    nd = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=nd, max_size=nd)))
    window = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    strides = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    pads = tuple((draw(st.integers(-1, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    base = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    wdil = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    return shape, window, strides, pads, base, wdil


@given(window_cases(), st.integers(0, 2**16))
def test_reduce_window_with_any_computation_matches_a_loop(case, seed):
    # lax.mul and a lambda have no pooling primitive: the windows are stacked and reduced
    # pairwise (as lax.reduce does), init value and padding as XLA treats them
    shape, window, strides, pads, base, wdil = case
    x = np.random.default_rng(seed).uniform(0.5, 1.5, size=shape)
    args = (window, strides, pads, base, wdil)
    np.testing.assert_allclose(np.asarray(lax.reduce_window(x, 1.0, lax.mul, *args)),
                               _window_loop(x, 1.0, np.prod, *args), rtol=1e-12)
    softer = lambda a, b: nanofn.numpy.logaddexp(a, b)  # noqa: E731
    np.testing.assert_allclose(
        np.asarray(lax.reduce_window(x, -np.inf, softer, *args)),
        _window_loop(x, -np.inf, lambda v: np.logaddexp.reduce(v), *args), rtol=1e-12)


def test_reduce_window_variadic_argmax_gradients_jit_and_vmap():
    fnp = nanofn.numpy
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 5, 6))
    idx = np.arange(x.size, dtype=np.int32).reshape(x.shape)

    def larger(a, b):  # (value, flat index): the larger value, the first index on ties
        take_a = (a[0] > b[0]) | ((a[0] == b[0]) & (a[1] < b[1]))
        return fnp.where(take_a, a[0], b[0]), fnp.where(take_a, a[1], b[1])
    vals, where = lax.reduce_window((x, idx), (-np.inf, np.int32(0)), larger, (1, 2, 3),
                                    (1, 2, 3), "VALID")
    blocks = x[:, :4].reshape(2, 2, 2, 2, 3).transpose(0, 1, 3, 2, 4).reshape(2, 2, 2, 6)
    np.testing.assert_allclose(np.asarray(vals), blocks.max(-1), rtol=1e-12)
    np.testing.assert_array_equal(x.ravel()[np.asarray(where)], blocks.max(-1))
    prod = lambda v: lax.reduce_window(v, 1.0, lax.mul, (1, 2, 2), (1, 1, 2), "SAME")  # noqa
    check_grads(prod, (x,), order=2)
    np.testing.assert_allclose(np.asarray(nanofn.jit(prod)(x)), np.asarray(prod(x)), rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(nanofn.vmap(lambda v: lax.reduce_window(v, 1.0, lax.mul, (2, 2), (1, 2),
                                                           "SAME"))(x)),
        np.asarray(prod(x)), rtol=1e-12)
    with pytest.raises(ValueError, match="2 operands but 1 init_values"):
        lax.reduce_window((x, x), (0.0,), larger, (1, 2, 2), (1, 1, 1), "VALID")
