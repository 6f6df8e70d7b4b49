"""Tests for the shape and indexing primitives in nanofn/ops/_shape.py.

Each primitive is checked against an independent numpy reference (written with loops or
plain slicing, not with the primitive's impl), under jit, for gradients (check_grads in
float64, both modes, order 2 where cheap), for its batching rule against a loop over the
batch, and for its error messages.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import lax
from nanofn._core import ShapedArray
from nanofn.ops import _shape as S
from nanofn.testing import check_grads, shapes

RNG = np.random.default_rng(0)


def rand(shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def as_np(x):
    return np.asarray(x)


# ------------------------------------------------------------------------ references


def ref_pad(x, value, config):
    """Per-axis source maps: output position -> operand index, or -1 for padding."""
    maps = []
    for n, (lo, hi, interior) in zip(x.shape, config):
        size = lo + hi + n + max(n - 1, 0) * interior
        src = np.full(size, -1)
        for j in range(n):
            p = lo + j * (interior + 1)
            if 0 <= p < size:
                src[p] = j
        maps.append(src)
    out = np.full([len(m) for m in maps], value, dtype=x.dtype)
    for pos in np.ndindex(*out.shape):
        s = tuple(m[p] for m, p in zip(maps, pos))
        if all(i >= 0 for i in s):
            out[pos] = x[s]
    return out


def ref_gather(x, idx, mode="clip", fill=None):
    k = idx.shape[-1]
    batch = idx.shape[:-1]
    out = np.empty(batch + x.shape[k:], x.dtype)
    for b in np.ndindex(*batch):
        point = [int(i) for i in idx[b]]
        if mode == "clip":
            point = [min(max(i, 0), n - 1) for i, n in zip(point, x.shape)]
            out[b] = x[tuple(point)]
        elif all(0 <= i < n for i, n in zip(point, x.shape)):
            out[b] = x[tuple(point)]
        else:
            out[b] = fill
    return out


def ref_scatter(x, idx, upd, combine):
    out = x.copy()
    k = idx.shape[-1]
    fns = {"set": lambda a, b: b, "add": np.add, "mul": np.multiply, "min": np.minimum,
           "max": np.maximum}
    for b in np.ndindex(*idx.shape[:-1]):
        point = tuple(int(i) for i in idx[b])
        if all(0 <= i < n for i, n in zip(point, x.shape[:k])):
            out[point] = fns[combine](out[point], upd[b])
    return out


# ------------------------------------------------------------------------ batching helper


def check_batch(prim, args, dims, size=3, **params):
    """prim.batch on arguments batched along `dims` equals stacking prim over the batch.

    `args` are per-example generators: each is a function of the example number returning
    that example's value (unbatched arguments are called once with 0).
    """
    examples = [[a(b) for a in args] for b in range(size)]
    vals = []
    for i, (a, d) in enumerate(zip(args, dims)):
        if d is None:
            vals.append(examples[0][i])
            for ex in examples:
                ex[i] = examples[0][i]
        else:
            vals.append(np.stack([ex[i] for ex in examples], axis=d))
    out, out_dim = prim.batch(vals, list(dims), **params)
    want = np.stack([as_np(prim.bind(*ex, **params)) for ex in examples])
    got = as_np(out)
    got = np.broadcast_to(got, (size,) + got.shape) if out_dim is None else \
        np.moveaxis(got, out_dim, 0)
    np.testing.assert_array_equal(got, want)


def batch_dims_for(nargs, ndims):
    """Strategy: a batch axis (or None) per argument, at least one batched."""
    per = [st.one_of(st.none(), st.integers(0, nd)) for nd in ndims]
    return st.tuples(*per).filter(lambda ds: any(d is not None for d in ds))


# ======================================================================== concatenate


@given(shapes(min_dims=1, max_dims=3, max_side=3), st.data())
@settings(max_examples=15)
def test_concatenate_matches_numpy(shape, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    xs = [rand(shape[:axis] + (s,) + shape[axis + 1:]) for s in sizes]
    out = lax.concatenate(xs, axis)
    np.testing.assert_array_equal(as_np(out), np.concatenate(xs, axis))
    jit_out = nanofn.jit(lambda *a: lax.concatenate(a, axis))(*xs)
    np.testing.assert_array_equal(as_np(jit_out), np.concatenate(xs, axis))


def test_concatenate_grads_and_batch():
    a, b = rand((2, 3)), rand((2, 1))
    check_grads(lambda a, b: lax.concatenate([a, b], 1), (a, b), order=2)
    check_grads(lambda a: lax.concatenate([a, np.ones((2, 1))], 1), (a,), order=1)
    for dims in [(0, None), (None, 2), (1, 0)]:
        check_batch(S.concatenate_p, [lambda i: rand((2, 3)), lambda i: rand((2, 1))], dims,
                    dimension=1)


def test_concatenate_errors():
    with pytest.raises(ValueError, match=r"agree except along dimension 0.*f32\[2,3\].*f32\[2,2\]"):
        lax.concatenate([np.zeros((2, 3), np.float32), np.zeros((2, 2), np.float32)], 0)
    with pytest.raises(TypeError, match="one dtype"):
        lax.concatenate([np.zeros(2, np.float32), np.zeros(2, np.int32)], 0)
    with pytest.raises(ValueError, match="dimension 1 is out of range"):
        S.concatenate_p.bind(np.zeros(2), np.zeros(2), dimension=1)


# ======================================================================== pad

@given(st.data())
@settings(max_examples=20)
def test_pad_matches_reference(data):
    shape = data.draw(shapes(max_dims=3, max_side=3))
    config = data.draw(st.lists(st.tuples(st.integers(-2, 2), st.integers(-2, 2),
                                          st.integers(0, 2)),
                                min_size=len(shape), max_size=len(shape)))
    sizes = S._pad_sizes(shape, config)
    x = rand(shape)
    if any(s < 0 for s in sizes):
        with pytest.raises(ValueError, match="negative dimension"):
            lax.pad(x, 0.5, config)
        return
    want = ref_pad(x, 0.5, config)
    np.testing.assert_array_equal(as_np(lax.pad(x, 0.5, config)), want)
    np.testing.assert_array_equal(
        as_np(nanofn.jit(lambda x, v: lax.pad(x, v, config))(x, np.float64(0.5))), want)
    if x.size and want.size:
        check_grads(lambda x, v: lax.pad(x, v, config), (x, np.float64(0.5)), order=2)


def test_pad_batch_rules():
    config = ((1, -1, 1), (0, 2, 0))
    x = lambda i: rand((3, 2))  # noqa: E731
    v = lambda i: np.float64(i + 0.5)  # noqa: E731
    for dims in [(0, None), (2, None), (None, 0), (1, 0)]:
        check_batch(S.pad_p, [x, v], dims, padding_config=config)


def test_pad_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match=r"padding_value.*operand's dtype.*f32\[2,3\]"):
        S.pad_p.bind(x, np.float64(0), padding_config=((0, 0, 0),) * 2)
    with pytest.raises(ValueError, match=r"one \(lo, hi, interior\) triple per axis"):
        lax.pad(x, 0.0, [(1, 1, 0)])
    with pytest.raises(ValueError, match="interior padding must be non-negative"):
        lax.pad(x, 0.0, [(0, 0, -1), (0, 0, 0)])
    with pytest.raises(ValueError, match=r"negative dimension \(-1, 3\)"):
        lax.pad(x, 0.0, [(-3, 0, 0), (0, 0, 0)])


# ======================================================================== rev


@given(shapes(max_dims=3, max_side=4), st.data())
@settings(max_examples=15)
def test_rev_matches_numpy(shape, data):
    dims = tuple(data.draw(st.sets(st.integers(0, max(len(shape) - 1, 0)), max_size=len(shape))))
    x = rand(shape)
    np.testing.assert_array_equal(as_np(lax.rev(x, dims)), np.flip(x, dims) if dims else x)


def test_rev_grads_batch_errors():
    check_grads(lambda x: lax.rev(x, (0, 2)), (rand((2, 3, 2)),), order=2)
    for d in (0, 1, 2):
        check_batch(S.rev_p, [lambda i: rand((3, 2))], (d,), dimensions=(1,))
    with pytest.raises(ValueError, match=r"distinct axes of f64\[2\]"):
        lax.rev(np.zeros(2), (0, 0))


# ======================================================================== slice


@given(st.data())
@settings(max_examples=20)
def test_slice_matches_numpy(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=5))
    starts, limits, strides = [], [], []
    for n in shape:
        lo = data.draw(st.integers(0, n))
        starts.append(lo)
        limits.append(data.draw(st.integers(lo, n)))
        strides.append(data.draw(st.integers(1, 3)))
    x = rand(shape)
    want = x[tuple(slice(a, b, c) for a, b, c in zip(starts, limits, strides))]
    np.testing.assert_array_equal(as_np(lax.slice(x, starts, limits, strides)), want)
    if x.size:
        check_grads(lambda x: lax.slice(x, starts, limits, strides), (x,), order=2)


def test_slice_with_strides_grads():
    x = rand((7, 5))
    for start, limit, strides in [((1, 0), (7, 5), (2, 3)), ((0, 2), (6, 4), (3, 1)),
                                  ((2, 1), (3, 5), (4, 2))]:
        want = x[tuple(slice(a, b, c) for a, b, c in zip(start, limit, strides))]
        np.testing.assert_array_equal(as_np(lax.slice(x, start, limit, strides)), want)
        check_grads(lambda x: lax.slice(x, start, limit, strides), (x,), order=2)


def test_slice_in_dim_and_index_in_dim():
    x = rand((4, 5))
    np.testing.assert_array_equal(as_np(lax.slice_in_dim(x, -3, None, 2, axis=1)), x[:, -3::2])
    np.testing.assert_array_equal(as_np(lax.index_in_dim(x, -1, 0)), x[-1:])
    np.testing.assert_array_equal(as_np(lax.index_in_dim(x, 2, 1, keepdims=False)), x[:, 2])
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 1 with size 5"):
        lax.index_in_dim(x, 5, 1)


def test_slice_batch_and_errors():
    for d in (0, 1, 2):
        check_batch(S.slice_p, [lambda i: rand((4, 3))], (d,), start_indices=(1, 0),
                    limit_indices=(4, 2), strides=(2, 1))
        check_batch(S.slice_p, [lambda i: rand((4, 3))], (d,), start_indices=(1, 0),
                    limit_indices=(4, 2), strides=None)
    with pytest.raises(ValueError, match=r"axis 0 of f64\[3\] has size 3; need 0 <= start \(1\) "
                                         r"<= limit \(4\) <= 3"):
        lax.slice(np.zeros(3), (1,), (4,))
    with pytest.raises(ValueError, match="strides .* must be positive"):
        lax.slice(np.zeros(3), (0,), (3,), (0,))


# ======================================================================== dynamic slices


@given(st.data())
@settings(max_examples=20)
def test_dynamic_slice_clamps_like_xla(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=4))
    sizes = [data.draw(st.integers(0, n)) for n in shape]
    starts = [data.draw(st.integers(-6, 6)) for _ in shape]
    x = rand(shape)
    # negative starts count from the end once, then the window is clamped to fit
    clamped = [min(max(s + n if s < 0 else s, 0), n - m) for s, n, m in zip(starts, shape, sizes)]
    want = x[tuple(slice(c, c + m) for c, m in zip(clamped, sizes))]
    got = lax.dynamic_slice(x, [np.int32(s) for s in starts], sizes)
    np.testing.assert_array_equal(as_np(got), want)
    jitted = nanofn.jit(lambda x, *s: lax.dynamic_slice(x, s, sizes))
    np.testing.assert_array_equal(as_np(jitted(x, *[np.int32(s) for s in starts])), want)
    # dynamic_update_slice writes into the same clamped window
    upd = rand(sizes)
    want_u = x.copy()
    want_u[tuple(slice(c, c + m) for c, m in zip(clamped, sizes))] = upd
    got_u = lax.dynamic_update_slice(x, upd, [np.int32(s) for s in starts])
    np.testing.assert_array_equal(as_np(got_u), want_u)


def test_dynamic_slice_grads():
    x = rand((4, 3))
    i = np.int32(1)
    check_grads(lambda x: lax.dynamic_slice(x, (i, np.int32(5)), (2, 2)), (x,), order=2)
    check_grads(lambda x, u: lax.dynamic_update_slice(x, u, (np.int32(-2), np.int32(1))),
                (x, rand((2, 2))), order=2)
    check_grads(lambda x: lax.dynamic_index_in_dim(x, np.int32(2), 1, keepdims=False), (x,),
                order=1)
    check_grads(lambda x, u: lax.dynamic_update_index_in_dim(x, u, 3, 0), (x, rand(3)),
                order=1)


def test_dynamic_slice_traced_index_under_grad_and_jit():
    x = rand((5,))

    def f(x, i):
        return fnp.sum(lax.dynamic_slice_in_dim(x, i, 2) ** 2)

    g = nanofn.jit(nanofn.grad(f))(x, np.int32(3))
    want = np.zeros(5)
    want[3:5] = 2 * x[3:5]
    np.testing.assert_allclose(as_np(g), want)


def test_dynamic_slice_batch_rules():
    x = lambda i: rand((4, 3))  # noqa: E731
    s0 = lambda i: np.int32([0, 3, -1][i])  # noqa: E731  (3 and -1 get clamped)
    s1 = lambda i: np.int32([1, 0, 2][i])  # noqa: E731
    for dims in [(0, None, None), (1, None, None), (None, 0, None), (None, 0, 0), (2, 0, None),
                 (0, 0, 0)]:
        check_batch(S.dynamic_slice_p, [x, s0, s1], dims, slice_sizes=(2, 2))
    u = lambda i: rand((2, 1))  # noqa: E731
    for dims in [(0, None, None, None), (None, 1, None, None), (None, None, 0, None),
                 (1, 0, None, 0), (0, 2, 0, 0), (None, None, 0, 0)]:
        check_batch(S.dynamic_update_slice_p, [x, u, s0, s1], dims)


def test_dynamic_slice_errors():
    x = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match="one of each per axis"):
        S.dynamic_slice_p.bind(x, np.int32(0), slice_sizes=(1, 1))
    with pytest.raises(ValueError, match=r"slice_sizes \(4, 1\) must fit"):
        lax.dynamic_slice(x, (0, 0), (4, 1))
    with pytest.raises(TypeError, match=r"start index 0 must be an integer scalar, got f32\[\]"):
        S.dynamic_slice_p.bind(x, np.float32(0), np.int32(0), slice_sizes=(1, 1))
    with pytest.raises(TypeError, match="start indices must be integer scalars"):
        lax.dynamic_slice(x, (fnp.array([0, 1]), 0), (1, 1))
    with pytest.raises(ValueError, match=r"update f32\[4,1\] must have the operand's rank and fit"):
        lax.dynamic_update_slice(x, np.zeros((4, 1), np.float32), (0, 0))
    with pytest.raises(TypeError, match="must have the operand's dtype"):
        lax.dynamic_update_slice(x, np.zeros((1, 1)), (0, 0))


def test_dynamic_update_slice_does_not_mutate_inputs():
    x, u = rand((3, 3)), rand((1, 2))
    x0, u0 = x.copy(), u.copy()
    lax.dynamic_update_slice(x, u, (1, 1))
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(u, u0)


# ======================================================================== gather


@st.composite
def gather_case(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    k = draw(st.integers(1, len(shape)))
    batch = draw(shapes(max_dims=2, max_side=3))
    idx = draw(st.lists(st.integers(-2, 5), min_size=int(np.prod(batch)) * k,
                        max_size=int(np.prod(batch)) * k))
    return rand(shape), np.asarray(idx, np.int32).reshape(batch + (k,))


@given(gather_case())
@settings(max_examples=25)
def test_gather_matches_reference(case):
    x, idx = case
    np.testing.assert_array_equal(as_np(lax.gather(x, idx)), ref_gather(x, idx, "clip"))
    np.testing.assert_array_equal(as_np(lax.gather(x, idx, mode="fill", fill_value=-7.0)),
                                  ref_gather(x, idx, "fill", -7.0))
    got = nanofn.jit(lambda x, i: lax.gather(x, i, mode="fill"))(x, idx)
    np.testing.assert_array_equal(as_np(got), ref_gather(x, idx, "fill", np.nan))


def test_gather_default_fill_values():
    idx = np.array([[5]], np.int32)
    assert np.isnan(as_np(lax.gather(np.zeros(2), idx, mode="fill"))[0])
    assert as_np(lax.gather(np.zeros(2, np.int32), idx, mode="fill"))[0] == np.iinfo(np.int32).min
    assert as_np(lax.gather(np.zeros(2, np.uint8), idx, mode="fill"))[0] == 255
    assert as_np(lax.gather(np.zeros(2, bool), idx, mode="fill"))[0]


@given(gather_case())
@settings(max_examples=10)
def test_gather_grads(case):
    x, idx = case
    # clip mode: the cotangent flows to the clamped positions; fill mode: nowhere for OOB
    check_grads(lambda x: lax.gather(x, idx), (x,), order=2)
    check_grads(lambda x: lax.gather(x, idx, mode="fill", fill_value=0.0), (x,), order=2)


def test_gather_batch_rules():
    x = lambda i: rand((3, 2, 2))  # noqa: E731
    idx = lambda i: np.asarray([[[i, 1], [2, 0]], [[0, 0], [5, -1]]][i % 2], np.int32)  # noqa
    for dims in [(0, None), (3, None), (None, 0), (None, 2), (1, 1), (0, 0)]:
        check_batch(S.gather_p, [x, idx], dims, mode="clip", fill_value=None)
        check_batch(S.gather_p, [x, idx], dims, mode="fill", fill_value=-1.0)


def test_gather_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match=r"indices must be an integer array.*f32\[1\]"):
        S.gather_p.bind(x, np.zeros(1, np.float32), mode="clip", fill_value=None)
    with pytest.raises(ValueError, match=r"index 3 axes, but the operand f32\[2,3\] has only 2"):
        lax.gather(x, np.zeros((1, 3), np.int32))
    with pytest.raises(IndexError, match="cannot read from an empty axis"):
        lax.gather(np.zeros((0, 2)), np.zeros((1, 1), np.int32))
    with pytest.raises(ValueError, match="mode must be 'clip' or 'fill'"):
        lax.gather(x, np.zeros((1, 1), np.int32), mode="wrap")


# ======================================================================== scatter

COMBINES = ["set", "add", "mul", "min", "max"]


@st.composite
def scatter_case(draw, unique=False):
    shape = draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    k = draw(st.integers(0, len(shape)))
    batch = draw(shapes(max_dims=2, max_side=3))
    nb = int(np.prod(batch))
    if unique:
        points = list(np.ndindex(*shape[:k]))
        chosen = draw(st.lists(st.sampled_from(points), min_size=nb, max_size=nb, unique=True)) \
            if nb <= len(points) else None
        if chosen is None:
            batch, nb, chosen = (1,), 1, [points[0]]
        idx = np.asarray(chosen, np.int32).reshape(batch + (k,))
    else:
        idx = np.asarray(draw(st.lists(st.integers(-1, 4), min_size=nb * k, max_size=nb * k)),
                         np.int32).reshape(batch + (k,))
    upd = rand(batch + shape[k:])
    return rand(shape), idx, upd


@pytest.mark.parametrize("combine", COMBINES)
@given(case=scatter_case())
@settings(max_examples=15)
def test_scatter_matches_reference(combine, case):
    x, idx, upd = case
    x0, idx0, upd0 = x.copy(), idx.copy(), upd.copy()
    got = S.scatter_p.bind(x, idx, upd, combine=combine)
    np.testing.assert_allclose(as_np(got), ref_scatter(x, idx, upd, combine), rtol=1e-12)
    jitted = nanofn.jit(lambda x, i, u: S.scatter_p.bind(x, i, u, combine=combine))
    np.testing.assert_allclose(as_np(jitted(x, idx, upd)), ref_scatter(x, idx, upd, combine),
                               rtol=1e-12)
    for a, b in [(x, x0), (idx, idx0), (upd, upd0)]:  # inputs untouched
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("combine", ["set", "add", "min", "max"])
@given(case=scatter_case())
@settings(max_examples=8)
def test_scatter_grads_any_indices(combine, case):
    x, idx, upd = case
    check_grads(lambda x, u: S.scatter_p.bind(x, idx, u, combine=combine), (x, upd), order=2)


@given(case=scatter_case())
@settings(max_examples=8)
def test_scatter_mul_grads_any_indices(case):
    x, idx, upd = case  # repeated indices multiply several updates into one point
    check_grads(lambda x, u: S.scatter_p.bind(x, idx, u, combine="mul"), (x, upd), order=2)


def test_scatter_mul_gradient_is_exact_with_repeats_and_zeros():
    # out[0] = x0 * u0 * u1 * u2, out[1] = x1 * u3; the cofactor of each factor is the
    # product of the others, also when one of them is zero
    idx = np.array([[0], [0], [0], [1], [5]], np.int32)  # 5 is out of bounds: dropped
    f = lambda x, u: fnp.sum(lax.scatter_mul(x, idx, u) * np.array([1.0, 10.0]))  # noqa
    for x, u, want_x, want_u in [
            ([2.0, 3.0], [5.0, 7.0, 11.0, 13.0, 17.0], [385.0, 130.0], [154.0, 110.0, 70.0,
                                                                         30.0, 0.0]),
            ([2.0, 3.0], [5.0, 0.0, 11.0, 13.0, 17.0], [0.0, 130.0], [0.0, 110.0, 0.0,
                                                                      30.0, 0.0]),
            ([0.0, 3.0], [5.0, 0.0, 11.0, 13.0, 17.0], [0.0, 130.0], [0.0, 0.0, 0.0,
                                                                      30.0, 0.0])]:
        gx, gu = nanofn.grad(f, argnums=(0, 1))(np.array(x), np.array(u))
        np.testing.assert_allclose(as_np(gx), want_x)
        np.testing.assert_allclose(as_np(gu), want_u)


def test_scatter_set_gradient_goes_to_the_winning_update():
    x = np.zeros(3)
    idx = np.array([[1], [1], [2], [7]], np.int32)  # two writes to 1; 7 is dropped
    _, pullback = nanofn.vjp(lambda x, u: lax.scatter(x, idx, u), x, np.ones(4))
    ct_x, ct_u = pullback(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(as_np(ct_x), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(as_np(ct_u), [0.0, 2.0, 3.0, 0.0])


def test_scatter_min_max_share_ties():
    x = np.array([1.0, 5.0])
    idx = np.array([[0], [0]], np.int32)
    g = nanofn.grad(lambda x, u: fnp.sum(lax.scatter_max(x, idx, u)), argnums=(0, 1))
    gx, gu = g(x, np.array([1.0, 0.5]))  # x[0] ties with u[0]
    np.testing.assert_allclose(as_np(gx), [0.5, 1.0])
    np.testing.assert_allclose(as_np(gu), [0.5, 0.0])


@pytest.mark.parametrize("combine", COMBINES)
def test_scatter_batch_rules(combine):
    x = lambda i: rand((3, 2))  # noqa: E731
    idx = lambda i: np.asarray([[[0], [2]], [[1], [1]], [[4], [2]]][i], np.int32)  # noqa
    u = lambda i: rand((2, 2))  # noqa: E731
    for dims in [(0, None, None), (2, None, None), (None, None, 0), (None, None, 2),
                 (1, None, 1), (None, 0, None), (0, 0, 0), (None, 1, 2), (2, 2, None)]:
        check_batch(S.scatter_p, [x, idx, u], dims, combine=combine)


def test_scatter_errors():
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"updates must have shape .* = \(2, 2\), got f32\[2\]"):
        lax.scatter_add(x, np.zeros((2, 1), np.int32), np.zeros(2, np.float32))
    with pytest.raises(TypeError, match=r"updates \(f64\[2,2\]\) must have the operand's dtype"):
        S.scatter_p.bind(x, np.zeros((2, 1), np.int32), np.zeros((2, 2)), combine="add")
    with pytest.raises(ValueError, match="combine must be one of"):
        S.scatter_p.bind(x, np.zeros((2, 1), np.int32), np.zeros((2, 2), np.float32),
                         combine="sub")
    with pytest.raises(TypeError, match="indices must be integers"):
        lax.scatter(x, np.zeros((2, 1)), np.zeros((2, 2), np.float32))


# ======================================================================== abstract evaluation


def test_abstract_eval_shapes():
    f32 = np.dtype(np.float32)
    i32 = np.dtype(np.int32)
    a = ShapedArray((4, 5), f32)
    assert S.slice_p.abstract_eval(a, start_indices=(1, 0), limit_indices=(4, 5),
                                   strides=(2, 3)).shape == (2, 2)
    assert S.pad_p.abstract_eval(a, ShapedArray((), f32),
                                 padding_config=((1, -1, 2), (0, 0, 0))).shape == (10, 5)
    assert S.gather_p.abstract_eval(a, ShapedArray((7, 1), i32), mode="clip",
                                    fill_value=None).shape == (7, 5)
    assert S.dynamic_slice_p.abstract_eval(a, ShapedArray((), i32), ShapedArray((), i32),
                                           slice_sizes=(2, 3)).shape == (2, 3)
    jaxpr = nanofn.make_jaxpr(lambda x: lax.gather(x, np.array([[1]], np.int32)))(
        np.zeros((4, 5), np.float32))
    assert "gather" in str(jaxpr)


# ======================================================================== vmap



def loop(f, args, in_axes, size):
    """Stack f over the batch, the reference for vmap."""
    def example(a, d, b):
        return a if d is None else np.take(a, b, axis=d)
    if size == 0:  # the output's per-example shape, from a dummy example
        dummy = [a if d is None else np.zeros(np.delete(a.shape, d), a.dtype)
                 for a, d in zip(args, in_axes)]
        out = as_np(f(*dummy))
        return np.zeros((0,) + out.shape, out.dtype)
    return np.stack([as_np(f(*[example(a, d, b) for a, d in zip(args, in_axes)]))
                     for b in range(size)])


def int_batch(size, lo, hi):
    return RNG.integers(lo, hi, size=size).astype(np.int32)


VMAP_CASES = {
    "concatenate": (lambda x, y: lax.concatenate([x, y], 1), lambda b: [rand((b, 4, 3)),
                                                                         rand((b, 4, 1))]),
    "pad": (lambda x, v: lax.pad(x, v, [(1, -1, 1), (0, 2, 0)]),
            lambda b: [rand((b, 4, 3)), rand((b,))]),
    "rev": (lambda x: lax.rev(x, (0, 1)), lambda b: [rand((b, 4, 3))]),
    "slice": (lambda x: lax.slice(x, (1, 0), (4, 3), (2, 2)), lambda b: [rand((b, 4, 3))]),
    "dynamic_slice": (lambda x, i: lax.dynamic_slice(x, (i, np.int32(1)), (2, 2)),
                      lambda b: [rand((b, 4, 3)), int_batch(b, -5, 6)]),
    "dynamic_update_slice": (lambda x, u, i: lax.dynamic_update_slice(x, u, (np.int32(1), i)),
                             lambda b: [rand((b, 4, 3)), rand((b, 2, 2)), int_batch(b, -5, 6)]),
    "gather": (lambda x, i: lax.gather(x, i), lambda b: [rand((b, 4, 3)),
                                                         RNG.integers(-1, 5, (b, 5, 1))]),
    "scatter_add": (lambda x, i, u: lax.scatter_add(x, i, u),
                    lambda b: [rand((b, 4, 3)), RNG.integers(-1, 5, (b, 5, 2)), rand((b, 5))]),
    "scatter": (lambda x, i, u: lax.scatter(x, i, u),
                lambda b: [rand((b, 4, 3)), RNG.integers(-1, 5, (b, 5, 1)), rand((b, 5, 3))]),
}


@pytest.mark.parametrize("name", sorted(VMAP_CASES))
@pytest.mark.parametrize("size", [0, 1, 3])
def test_vmap_equals_loop(name, size):
    vmap = nanofn.vmap
    f, make = VMAP_CASES[name]
    args = [a.astype(np.int32) if a.dtype == np.int64 else a for a in make(size)]
    n = len(args)
    # every argument batched, then each argument alone batched (the others shared)
    specs = [(0,) * n] + [tuple(0 if j == i else None for j in range(n)) for i in range(n)]
    for in_axes in specs:
        call_args = [a if d is not None else (a[0] if size else np.zeros(a.shape[1:], a.dtype))
                     for a, d in zip(args, in_axes)]
        got = vmap(f, in_axes=in_axes)(*call_args)
        want = loop(f, call_args, in_axes, size)
        np.testing.assert_array_equal(as_np(got), want)


def test_vmap_of_grad_through_gather():
    vmap = nanofn.vmap
    xs, idx = rand((3, 5)), np.array([[4], [0], [4]], np.int32)
    g = vmap(nanofn.grad(lambda x: fnp.sum(lax.gather(x, idx) ** 2)))(xs)
    want = np.zeros_like(xs)
    want[:, 4] = 4 * xs[:, 4]
    want[:, 0] = 2 * xs[:, 0]
    np.testing.assert_allclose(as_np(g), want)


def test_dynamic_updates_give_python_scalars_the_operands_dtype():
    out = nanofn.lax.dynamic_update_index_in_dim(fnp.zeros(4, "float32"), 1.0, 2, 0)
    assert out.dtype == np.float32 and np.asarray(out).tolist() == [0, 0, 1, 0]
    out = nanofn.jit(lambda x, i: nanofn.lax.dynamic_update_index_in_dim(x, 7, i, 0))(
        fnp.zeros(3, "int32"), 1)
    assert out.dtype == np.int32 and np.asarray(out).tolist() == [0, 7, 0]
