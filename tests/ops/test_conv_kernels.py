"""The numba kernels behind convolution and pooling against their numpy references, and the
pooling primitives (`reduce_window_max`, `select_and_gather_add`, `select_and_scatter_add`,
`reduce_window_sum`, `reduce_window_sum_transpose`) against independent loops.

Shapes come from hypothesis with sides of 0 and 1, odd sizes, strides larger than the
window, negative (cropping) and positive padding, both dilations, and inputs that are
transposed views, negatively strided or sliced; values repeat (ties) and include -inf and
NaN where the semantics say who wins.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nanofn
from nanofn import lax
from nanofn.ops import _conv as C
from nanofn.ops import _conv_kernels as K
from nanofn.testing import check_grads

FLOATS = [np.float32, np.float64]


def layout(draw, x):
    """The same values as `x`, laid out as a copy, a transposed view, a reversed view or a
    slice of a bigger array (every kernel must read any strides)."""
    kind = draw(st.sampled_from(["plain", "transposed", "reversed", "sliced"]))
    if kind == "transposed":
        return np.ascontiguousarray(x.transpose(*range(x.ndim)[::-1])).transpose(
            *range(x.ndim)[::-1])
    if kind == "reversed":
        return np.flip(np.flip(x).copy())
    if kind == "sliced":
        big = np.zeros(tuple(2 * s + 1 for s in x.shape), x.dtype)
        big[tuple(slice(1, None, 2) for _ in x.shape)] = x
        return big[tuple(slice(1, None, 2) for _ in x.shape)]
    return x


def tie_values(rng, shape, dtype, specials=False):
    """Few distinct values (so windows have ties), optionally with -inf and NaN."""
    x = rng.integers(-3, 4, size=shape).astype(dtype)
    if specials and x.size:
        flat = x.reshape(-1)
        for v in (-np.inf, np.nan):
            if rng.random() < 0.5:
                flat[rng.integers(0, flat.size)] = v
    return x


# ------------------------------------------------------------------------ im2col / col2im


@st.composite
def conv_geometry(draw):
    nsp = draw(st.integers(1, 2))
    n, c = draw(st.integers(0, 2)), draw(st.integers(0, 3))
    spatial = tuple(draw(st.integers(0, 6)) for _ in range(nsp))
    window = tuple(draw(st.integers(1, 3)) for _ in range(nsp))
    strides = tuple(draw(st.integers(1, 4)) for _ in range(nsp))
    padding = tuple((draw(st.integers(-1, 2)), draw(st.integers(-1, 2))) for _ in range(nsp))
    lhs = tuple(draw(st.integers(1, 2)) for _ in range(nsp))
    rhs = tuple(draw(st.integers(1, 2)) for _ in range(nsp))
    dtype = draw(st.sampled_from(FLOATS))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x = layout(draw, rng.standard_normal((n, c) + spatial).astype(dtype))
    return x, (window, strides, padding, lhs, rhs)


@given(conv_geometry(), st.sampled_from([0.0, -np.inf]))
def test_im2col_kernel_matches_reference(case, pad_value):
    x, geo = case
    got = K.patches(x, *geo, pad_value)
    want = K.patches_reference(x, *geo, pad_value)
    assert got.dtype == x.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@given(conv_geometry(), st.sampled_from([0, 99]))
def test_both_im2col_kernels_match_reference(case, few):
    # FEW_CHANNELS = 0: the channel-inner kernel for every input; 99: the row-inner one
    x, geo = case
    saved = K.FEW_CHANNELS
    K.FEW_CHANNELS = few
    try:
        got = K.patches(x, *geo, 0.0)
    finally:
        K.FEW_CHANNELS = saved
    np.testing.assert_array_equal(got, K.patches_reference(x, *geo, 0.0))


@given(conv_geometry(), st.data())
def test_col2im_kernel_matches_reference(case, data):
    x, geo = case
    shape = K.patches_shape(x.shape, *geo)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    ct = layout(data.draw, rng.standard_normal(shape).astype(x.dtype))
    got = K.patches_transpose(ct, x.shape, *geo)
    want = K.patches_transpose_reference(ct, x.shape, *geo)
    assert got.dtype == ct.dtype and got.shape == want.shape == x.shape
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_im2col_and_col2im_take_the_kernel(monkeypatch):
    def fail(*args):
        raise AssertionError("the numpy reference ran where the kernel applies")

    monkeypatch.setattr(K, "patches_reference", fail)
    monkeypatch.setattr(K, "patches_transpose_reference", fail)
    x = np.arange(2 * 3 * 5 * 4, dtype=np.float32).reshape(2, 5, 4, 3).transpose(0, 3, 1, 2)
    geo = ((3, 3), (1, 2), ((1, 1), (0, 2)), (1, 1), (2, 1))
    p = K.patches(x, *geo, 0.0)
    # one window by hand: output (0, 1, 0), offset (2, 1): input row 1*1 + 2*2 - 1 = 4,
    # column 0*2 + 1 - 0 = 1
    np.testing.assert_array_equal(p[0, 1, 0, 2, 1], x[0, :, 4, 1])
    assert K.patches_transpose(p, x.shape, *geo).shape == x.shape


# ------------------------------------------------------------------------ pooling


@st.composite
def pool_geometry(draw, max_active=3, specials=True):
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(0, 5)) for _ in range(rank))
    active = draw(st.sets(st.integers(0, rank - 1), max_size=min(max_active, rank)))
    window, strides, padding, base, wdil = [], [], [], [], []
    for a in range(rank):
        on = a in active
        window.append(draw(st.integers(1, 3)) if on else 1)
        strides.append(draw(st.integers(1, 4)) if on else 1)
        padding.append((draw(st.integers(-1, 2)), draw(st.integers(-1, 2))) if on else (0, 0))
        base.append(draw(st.integers(1, 2)) if on else 1)
        wdil.append(draw(st.integers(1, 2)) if on else 1)
    dtype = draw(st.sampled_from(FLOATS))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x = layout(draw, tie_values(rng, shape, dtype, specials))
    geo = (tuple(window), tuple(strides), tuple(padding), tuple(base), tuple(wdil))
    return x, geo, rng


def windows_loop(shape, window, strides, padding, base, wdil):
    """Independent geometry: for every output position, the list of input positions its
    window reads in window order (None for padding and dilation holes)."""
    out = K.pool_out_shape(shape, window, strides, padding, base, wdil)
    for o in np.ndindex(*out):
        cells = []
        for k in itertools.product(*(range(w) for w in window)):
            pos = []
            for oi, ki, s, (lo, _), b, d, size in zip(o, k, strides, padding, base, wdil, shape):
                q = oi * s + ki * d - lo  # position in the dilated operand
                pos.append(q // b if q >= 0 and q % b == 0 and q // b < size else None)
            cells.append(None if None in pos else tuple(pos))
        yield o, cells


def first_max(x, cells):
    """The first maximum of a window in window order (padding reads -inf; NaN wins)."""
    best, arg = None, None
    for cell in cells:
        v = -np.inf if cell is None else x[cell]
        if best is None or v > best or (np.isnan(v) and not np.isnan(best)):
            best, arg = v, cell
    return best, arg


@given(pool_geometry())
def test_max_pool_kernel_matches_reference_and_loop(case):
    x, geo, _ = case
    got = K.max_pool(x, *geo)
    np.testing.assert_array_equal(got, K.max_pool_reference(x, *geo))
    want = np.empty(got.shape, x.dtype)
    for o, cells in windows_loop(x.shape, *geo):
        want[o] = first_max(x, cells)[0]
    np.testing.assert_array_equal(got, want)


@given(pool_geometry())
def test_max_pool_scatter_and_gather_route_to_the_first_max(case):
    x, geo, rng = case
    out = K.pool_out_shape(x.shape, *geo)
    ct = rng.integers(1, 5, size=out).astype(x.dtype)  # small integers: sums are exact
    t = rng.integers(1, 5, size=x.shape).astype(x.dtype)
    want_scatter = np.zeros(x.shape, x.dtype)
    want_gather = np.zeros(out, x.dtype)
    for o, cells in windows_loop(x.shape, *geo):
        arg = first_max(x, cells)[1]
        if arg is not None:
            want_scatter[arg] += ct[o]
            want_gather[o] = t[arg]
    for scatter in (K.max_pool_scatter, K.max_pool_scatter_reference):
        np.testing.assert_array_equal(scatter(ct, x, *geo), want_scatter)
    for gather in (K.max_pool_gather, K.max_pool_gather_reference):
        np.testing.assert_array_equal(gather(t, x, *geo), want_gather)


@st.composite
def disjoint_pool_geometry(draw):
    """Pooling whose windows share no element (stride >= dilated window on every axis),
    with padding and base dilation, sometimes leaving elements no window reads."""
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(0, 6)) for _ in range(rank))
    window, strides, padding, base, wdil = [], [], [], [], []
    for _ in range(rank):
        w, d = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        window.append(w)
        wdil.append(d)
        strides.append(draw(st.integers((w - 1) * d + 1, (w - 1) * d + 2)))
        padding.append((draw(st.integers(-1, 1)), draw(st.integers(-1, 1))))
        base.append(draw(st.integers(1, 2)))
    dtype = draw(st.sampled_from(FLOATS))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x = layout(draw, tie_values(rng, shape, dtype, specials=True))
    return x, (tuple(window), tuple(strides), tuple(padding), tuple(base), tuple(wdil)), rng


@given(disjoint_pool_geometry())
def test_disjoint_max_pool_scatter_kernel_routes_to_the_first_max(case):
    x, geo, rng = case
    out = K.pool_out_shape(x.shape, *geo)
    ct = np.flip(rng.integers(1, 5, size=out).astype(x.dtype))  # negative strides
    want = np.zeros(x.shape, x.dtype)
    for o, cells in windows_loop(x.shape, *geo):
        arg = first_max(x, cells)[1]
        if arg is not None:
            want[arg] += ct[o]
    calls = []
    kern = K._max_pool_scatter_disjoint_kernel
    K._max_pool_scatter_disjoint_kernel = lambda *a: (calls.append(1), kern(*a))
    try:
        got = K.max_pool_scatter(ct, x, *geo)
    finally:
        K._max_pool_scatter_disjoint_kernel = kern
    np.testing.assert_array_equal(got, want)
    view = K._pool_view(x.shape, *geo)
    if view is not None and x.size and 0 not in out:
        assert calls  # the windows are disjoint: the disjoint kernel ran


def test_disjoint_windows_tells_overlap_and_cover():
    # size 5, window 2, stride 2, no padding: windows {0, 1} {2, 3}; 4 is read by none
    tab = K.index_table(5, 2, 2, 2, 0, 1, 1)
    assert K.disjoint_windows(5, tab) == (True, False)
    tab = K.index_table(4, 2, 2, 2, 0, 1, 1)  # {0, 1} {2, 3}: disjoint and covering
    assert K.disjoint_windows(4, tab) == (True, True)
    tab = K.index_table(4, 3, 2, 1, 0, 1, 1)  # stride 1: overlapping
    assert K.disjoint_windows(4, tab) == (False, True)
    tab = K.index_table(3, 2, 2, 2, 1, 1, 1)  # pad 1: {pad, 0} {1, 2}
    assert K.disjoint_windows(3, tab) == (True, True)


def test_disjoint_scatter_writes_every_element_it_does_not_zero():
    # the covering case allocates without zeroing: every element must be written
    x = np.random.default_rng(4).standard_normal((3, 6, 4, 5)).astype(np.float32)
    geo = ((1, 2, 2, 1), (1, 2, 2, 1), ((0, 0),) * 4, (1,) * 4, (1,) * 4)
    ct = np.ones(K.pool_out_shape(x.shape, *geo), np.float32)
    real_empty = np.empty
    try:
        K.np.empty = lambda shape, dtype=float: np.full(  # garbage where floats are left
            shape, np.nan if np.dtype(dtype).kind == "f" else 7, dtype)
        got = K.max_pool_scatter(ct, x, *geo)
    finally:
        K.np.empty = real_empty
    np.testing.assert_array_equal(got, K.max_pool_scatter_reference(ct, x, *geo))


@given(pool_geometry(specials=False))
def test_sum_pool_kernels_match_reference(case):
    x, geo, rng = case
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    got = K.sum_pool(x, *geo)
    np.testing.assert_allclose(got, K.sum_pool_reference(x, *geo), rtol=tol, atol=tol)
    want = np.zeros(got.shape, x.dtype)
    for o, cells in windows_loop(x.shape, *geo):
        want[o] = sum(x[c] for c in cells if c is not None)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    ct = np.flip(rng.standard_normal(got.shape).astype(x.dtype))  # negative strides
    gt = K.sum_pool_transpose(ct, x.shape, *geo)
    np.testing.assert_allclose(gt, K.sum_pool_transpose_reference(ct, x.shape, *geo),
                               rtol=tol, atol=tol)
    # adjoint: <sum_pool(x), ct> == <x, sum_pool_transpose(ct)>
    np.testing.assert_allclose(np.vdot(got, ct), np.vdot(x, gt), rtol=1e-4, atol=1e-4)


def test_pooling_kernels_run_where_they_apply(monkeypatch):
    def fail(*args):
        raise AssertionError("the numpy reference ran where the kernel applies")

    for name in ("max_pool_reference", "max_pool_scatter_reference", "max_pool_gather_reference",
                 "sum_pool_reference", "sum_pool_transpose_reference"):
        monkeypatch.setattr(K, name, fail)
    x = np.random.default_rng(0).standard_normal((2, 5, 3, 4)).astype(np.float32)
    geo = ((1, 2, 1, 3), (1, 2, 1, 1), ((0, 0), (0, 1), (0, 0), (1, 1)), (1,) * 4, (1,) * 4)
    y = K.max_pool(x, *geo)
    K.max_pool_scatter(y, x, *geo)
    K.max_pool_gather(x, x, *geo)
    K.sum_pool_transpose(K.sum_pool(x, *geo), x.shape, *geo)


def test_kernels_off_takes_the_references(monkeypatch):
    calls = []
    for name in ("_im2col_kernel", "_im2col_few_channels_kernel", "_col2im_kernel",
                 "_max_pool_kernel", "_max_pool_scatter_kernel",
                 "_max_pool_scatter_disjoint_kernel", "_max_pool_gather_kernel",
                 "_sum_pool_kernel", "_sum_pool_transpose_kernel"):
        monkeypatch.setattr(K, name, lambda *a, _n=name: calls.append(_n))
    x = np.random.default_rng(1).standard_normal((2, 6, 6, 3))
    w = np.random.default_rng(2).standard_normal((3, 3, 3, 4))

    def loss(x, w):
        h = lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        a = lax.reduce_window(h, -np.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        b = lax.reduce_window(h, 0.0, lax.add, (1, 2, 2, 1), (1, 1, 1, 1), "SAME")
        return (a * a).sum() + (b * b).sum()

    with nanofn.config._override("nanofn_use_kernels", False):
        nanofn.grad(loss, argnums=(0, 1))(x, w)
    assert calls == []


# ------------------------------------------------------------------------ out= forms
# jit's plan passes a kept buffer as `out` (the primitives' `impl_into`): the result must
# equal the plain call's and live in that buffer's memory, whatever the buffer held before,
# with kernels on and off.


def garbage(shape, dtype):
    """A C-contiguous array full of NaN: a kept buffer holding some earlier value."""
    return np.full(shape, np.nan, dtype)


def check_into(plain, into, shape, dtype, exact=True):
    for kernels in (True, False):
        with nanofn.config._override("nanofn_use_kernels", kernels):
            want = plain()
            buf = garbage(shape, dtype)
            got = into(buf)
        assert got.shape == tuple(shape) and got.dtype == dtype
        if got.size:
            assert np.shares_memory(got, buf)
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            tol = 1e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@given(conv_geometry(), st.data())
def test_im2col_and_col2im_write_into_out(case, data):
    x, geo = case
    shape = K.patches_shape(x.shape, *geo)
    check_into(lambda: K.patches(x, *geo, 0.0), lambda b: K.patches(x, *geo, 0.0, out=b),
               shape, x.dtype)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    ct = layout(data.draw, rng.standard_normal(shape).astype(x.dtype))
    check_into(lambda: K.patches_transpose(ct, x.shape, *geo),
               lambda b: K.patches_transpose(ct, x.shape, *geo, out=b), x.shape, x.dtype,
               exact=False)


@given(pool_geometry())
def test_pooling_writes_into_out(case):
    x, geo, rng = case
    out = K.pool_out_shape(x.shape, *geo)
    ct = rng.integers(1, 5, size=out).astype(x.dtype)
    t = rng.integers(1, 5, size=x.shape).astype(x.dtype)
    check_into(lambda: K.max_pool(x, *geo), lambda b: K.max_pool(x, *geo, out=b), out, x.dtype)
    check_into(lambda: K.max_pool_scatter(ct, x, *geo),
               lambda b: K.max_pool_scatter(ct, x, *geo, out=b), x.shape, x.dtype)
    check_into(lambda: K.max_pool_gather(t, x, *geo),
               lambda b: K.max_pool_gather(t, x, *geo, out=b), out, x.dtype)
    check_into(lambda: K.sum_pool(x, *geo), lambda b: K.sum_pool(x, *geo, out=b), out,
               x.dtype)
    check_into(lambda: K.sum_pool_transpose(ct, x.shape, *geo),
               lambda b: K.sum_pool_transpose(ct, x.shape, *geo, out=b), x.shape, x.dtype)


def test_primitives_impl_into_equals_impl():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5))
    conv = dict(window=(3, 3), strides=(1, 2), padding=((1, 1), (0, 2)), lhs_dilation=(1, 1),
                rhs_dilation=(2, 1))
    pool = dict(window_dimensions=(1, 1, 2, 2), window_strides=(1, 1, 2, 1),
                padding=((0, 0), (0, 0), (0, 1), (1, 0)), base_dilation=(1, 1, 1, 1),
                window_dilation=(1, 1, 1, 1))
    p = C.conv_patches_p.impl(x, pad_value=0.0, **conv)
    y = C.reduce_window_max_p.impl(x, **pool)
    cases = [(C.conv_patches_p, (x,), dict(conv, pad_value=0.0)),
             (C.conv_patches_transpose_p, (p,), dict(conv, x_shape=x.shape)),
             (C.reduce_window_max_p, (x,), pool),
             (C.select_and_scatter_add_p, (y, x), pool),
             (C.select_and_gather_add_p, (x, x), pool),
             (C.reduce_window_sum_p, (x,), pool),
             (C.reduce_window_sum_transpose_p, (y,), dict(pool, x_shape=x.shape))]
    for prim, args, params in cases:
        want = prim.impl(*args, **params)
        buf = garbage(want.shape, want.dtype)
        got = prim.impl_into(*args, out=buf, **params)
        assert np.shares_memory(got, buf), prim.name
        # only primitives that say so return another layout than the buffer's own
        assert got is buf or getattr(prim, "impl_into_views", False), prim.name
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=prim.name)


# ------------------------------------------------------------------------ the primitives


def test_max_pool_gradient_goes_to_the_first_max_as_in_jax():
    # jax.grad of this reduce_window gives [0, 3, 1, 0, 2, 0]: the first of equal maxima wins
    x = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 1.0]])
    f = lambda x: lax.reduce_window(x, -np.inf, lax.max, (1, 3), (1, 1), "SAME").sum()  # noqa
    np.testing.assert_array_equal(np.asarray(nanofn.grad(f)(x)), [[0, 3, 1, 0, 2, 0]])
    np.testing.assert_array_equal(np.asarray(nanofn.jit(nanofn.grad(f))(x)),
                                  [[0, 3, 1, 0, 2, 0]])


@pytest.mark.parametrize("kernels", [True, False])
def test_pooling_gradients_and_second_order(kernels):
    rng = np.random.default_rng(3)
    x = rng.permutation(2 * 5 * 6 * 3).reshape(2, 5, 6, 3) / 7.0  # distinct: no ties
    with nanofn.config._override("nanofn_use_kernels", kernels):
        for comp, init in ((lax.max, -np.inf), (lax.min, np.inf), (lax.add, 0.0)):
            f = lambda x: lax.reduce_window(x, init, comp, (1, 3, 2, 1), (1, 2, 1, 1),  # noqa
                                            ((0, 0), (1, 1), (0, 1), (0, 0)))
            check_grads(f, (x,), order=2)


def test_pooling_under_vmap_jit_and_grad_of_grad():
    rng = np.random.default_rng(4)
    xs = rng.permutation(3 * 4 * 6 * 2).reshape(3, 4, 6, 2).astype(np.float64)

    def pool(x):
        return lax.reduce_window(x, -np.inf, lax.max, (2, 3, 1), (2, 2, 1), "SAME")

    def loss(x):
        return (pool(x) ** 2).sum() + lax.reduce_window(x, 0.0, lax.add, (1, 2, 2), (1, 1, 2),
                                                        "VALID").sum() ** 2

    eager = np.stack([np.asarray(nanofn.grad(loss)(x)) for x in xs])
    np.testing.assert_allclose(np.asarray(nanofn.vmap(nanofn.grad(loss))(xs)), eager)
    batched_grad = nanofn.vmap(nanofn.grad(loss))
    np.testing.assert_allclose(np.asarray(nanofn.jit(batched_grad)(xs)), eager)
    np.testing.assert_allclose(np.asarray(nanofn.vmap(pool)(xs)),
                               np.stack([np.asarray(pool(x)) for x in xs]))
    # vmap over a non-leading axis, and a cotangent batched while the operand is not
    np.testing.assert_allclose(np.asarray(nanofn.vmap(pool, in_axes=2, out_axes=2)(xs)),
                               np.stack([np.asarray(pool(xs[:, :, j])) for j in range(6)], 2))
    y, pull = nanofn.vjp(pool, xs[0])
    cts = rng.standard_normal((5,) + y.shape)
    np.testing.assert_allclose(np.asarray(nanofn.vmap(lambda c: pull(c)[0])(cts)),
                               np.stack([np.asarray(pull(c)[0]) for c in cts]))
    # the gradient of max pooling is piecewise constant: its own gradient is zero
    hess_diag = nanofn.grad(lambda x: (nanofn.grad(lambda z: pool(z).sum())(x) * x).sum())
    np.testing.assert_allclose(np.asarray(hess_diag(xs[0])),
                               np.asarray(nanofn.grad(lambda z: pool(z).sum())(xs[0])))


@given(pool_geometry(max_active=2))
def test_reduce_window_same_with_and_without_kernels(case):
    x, geo, rng = case
    window, strides, padding, base, wdil = geo
    x = x.astype(np.float64)
    x[~np.isfinite(x)] = 0.0

    def loss(x):
        a = lax.reduce_window(x, -np.inf, lax.max, window, strides, padding, base, wdil)
        b = lax.reduce_window(x, 0.0, lax.add, window, strides, padding, base, wdil)
        return (a * a).sum() + (b * a).sum()

    on = [np.asarray(v) for v in nanofn.value_and_grad(loss)(x)]
    jitted = [np.asarray(v) for v in nanofn.jit(nanofn.value_and_grad(loss))(x)]
    with nanofn.config._override("nanofn_use_kernels", False):
        off = [np.asarray(v) for v in nanofn.value_and_grad(loss)(x)]
    for a, b, c in zip(on, jitted, off):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(b, c, rtol=1e-12, atol=1e-12)


def test_reduce_window_init_value_joins_every_window_as_in_jax():
    x = np.array([[1.0, 3.0, -5.0, -4.0]])
    got = lax.reduce_window(x, 0.0, lax.max, (1, 2), (1, 2), "VALID")
    np.testing.assert_array_equal(np.asarray(got), [[3.0, 0.0]])
    got = lax.reduce_window(x, 0.0, lax.min, (1, 2), (1, 2), "VALID")
    np.testing.assert_array_equal(np.asarray(got), [[0.0, -5.0]])
    got = lax.reduce_window(x, 1.0, lax.add, (1, 2), (1, 2), "VALID")
    np.testing.assert_array_equal(np.asarray(got), [[5.0, -8.0]])


def test_integer_pooling_uses_the_reference():
    info = np.iinfo(np.int32)
    x = np.array([[info.min, 5, info.max, -2, 7, 7]], np.int32)
    mx = lax.reduce_window(x, info.min, lax.max, (1, 2), (1, 2), "VALID")
    mn = lax.reduce_window(x, info.max, lax.min, (1, 2), (1, 2), "VALID")
    np.testing.assert_array_equal(np.asarray(mx), [[5, info.max, 7]])
    np.testing.assert_array_equal(np.asarray(mn), [[info.min, -2, 7]])
    assert np.asarray(mx).dtype == np.int32


def test_pooling_errors_name_the_fault():
    x = np.ones((2, 4))
    with pytest.raises(ValueError, match="window_dimensions"):
        C.reduce_window_max_p.bind(x, window_dimensions=(2,), window_strides=(1, 1),
                                   padding=((0, 0), (0, 0)), base_dilation=(1, 1),
                                   window_dilation=(1, 1))
    with pytest.raises(ValueError, match="must be positive"):
        C.reduce_window_sum_p.bind(x, window_dimensions=(1, 0), window_strides=(1, 1),
                                   padding=((0, 0), (0, 0)), base_dilation=(1, 1),
                                   window_dilation=(1, 1))
    geo = dict(window_dimensions=(1, 2), window_strides=(1, 2), padding=((0, 0), (0, 0)),
               base_dilation=(1, 1), window_dilation=(1, 1))
    with pytest.raises(TypeError, match=r"pooled shape \(2, 2\)"):
        C.select_and_scatter_add_p.bind(np.ones((2, 3)), x, **geo)
    with pytest.raises(TypeError, match="complex"):
        C.reduce_window_max_p.bind(x.astype(complex), **geo)
