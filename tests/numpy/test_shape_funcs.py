"""Tests for nanofn/numpy/_shape_funcs.py: every function against numpy on hypothesis-drawn
shapes (size-0 and size-1 axes included), negative axes, gradients in float64, jit, and
numpy-style errors that name the shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.testing import check_grads, shapes

RNG = np.random.default_rng(2)


def rand(shape):
    return RNG.standard_normal(shape)


def as_np(x):
    return np.asarray(x)


def same(got, want):
    got = as_np(got)
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------------ joining


@given(shapes(min_dims=1, max_dims=3, max_side=3), st.data())
@settings(max_examples=20)
def test_concatenate(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    ax = axis % len(shape)
    xs = [rand(shape[:ax] + (s,) + shape[ax + 1:]) for s in sizes]
    same(fnp.concatenate(xs, axis=axis), np.concatenate(xs, axis=axis))
    same(fnp.concatenate(xs, axis=None), np.concatenate(xs, axis=None))
    if sum(x.size for x in xs):
        check_grads(lambda *xs: fnp.concatenate(xs, axis=axis), tuple(xs), order=1)


def test_concatenate_promotes_and_errors():
    out = fnp.concatenate([np.array([1], np.int32), np.array([0.5], np.float32)])
    assert out.dtype == np.float32 and out.tolist() == [1.0, 0.5]
    with pytest.raises(ValueError, match="along dimension 1, the array at index 0 has size 3 "
                                         "and the array at index 1 has size 2"):
        fnp.concatenate([np.zeros((2, 3)), np.zeros((2, 2))])
    with pytest.raises(ValueError, match=r"index 0 has 2 dimension\(s\) \(shape \(2, 3\)\) and "
                                         r"the array at index 1 has 1 dimension\(s\)"):
        fnp.concatenate([np.zeros((2, 3)), np.zeros(3)])
    with pytest.raises(ValueError, match="zero-dimensional arrays cannot be concatenated"):
        fnp.concatenate([np.float32(1), np.float32(2)])
    with pytest.raises(ValueError, match="axis 2 is out of bounds"):
        fnp.concatenate([np.zeros((2, 3))], axis=2)


@pytest.mark.parametrize("name", ["hstack", "vstack", "dstack", "column_stack"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 1), (0, 2)])
def test_stacks(name, shape):
    xs = [rand(shape), rand(shape)]
    same(getattr(fnp, name)(xs), getattr(np, name)(xs))
    if len(shape) and 0 not in shape:
        check_grads(lambda a, b: getattr(fnp, name)([a, b]), tuple(xs), order=1)


@pytest.mark.parametrize("name", ["atleast_1d", "atleast_2d", "atleast_3d"])
def test_atleast(name):
    for shape in [(), (2,), (2, 3), (2, 3, 4), (1, 0, 2, 1)]:
        x = rand(shape)
        same(getattr(fnp, name)(x), getattr(np, name)(x))
    a, b = getattr(fnp, name)(1.0, np.ones(2))
    want_a, want_b = getattr(np, name)(1.0, np.ones(2))
    assert a.shape == want_a.shape and b.shape == want_b.shape


def test_append():
    same(fnp.append(np.arange(3), [[4, 5]]), np.append(np.arange(3), [[4, 5]]))
    same(fnp.append(np.ones((2, 2)), np.zeros((1, 2)), axis=0),
         np.append(np.ones((2, 2)), np.zeros((1, 2)), axis=0))


# ------------------------------------------------------------------------ splitting


@given(shapes(min_dims=1, max_dims=3, max_side=6), st.data())
@settings(max_examples=20)
def test_split_and_array_split(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = rand(shape)
    n = shape[axis]
    sections = data.draw(st.integers(1, 4))
    points = sorted(data.draw(st.lists(st.integers(-n - 2, n + 2), max_size=3)))
    for got, want in zip(fnp.array_split(x, sections, axis), np.array_split(x, sections, axis)):
        same(got, want)
    for got, want in zip(fnp.split(x, points, axis), np.split(x, points, axis)):
        same(got, want)
    if n % sections == 0:
        assert len(fnp.split(x, sections, axis)) == sections
    else:
        with pytest.raises(ValueError, match="does not result in an equal division"):
            fnp.split(x, sections, axis)


def test_split_grads():
    x = rand((5, 2))
    check_grads(lambda x: fnp.array_split(x, 3)[1] * fnp.split(x, [1, 3])[2][:1], (x,), order=2)


# ------------------------------------------------------------------------ tiling, repeating


@given(shapes(max_dims=3, max_side=3), st.lists(st.integers(0, 3), max_size=4))
@settings(max_examples=20)
def test_tile(shape, reps):
    x = rand(shape)
    same(fnp.tile(x, reps), np.tile(x, reps))
    if reps:
        same(fnp.tile(x, reps[0]), np.tile(x, reps[0]))
    if x.size and np.prod(reps):
        check_grads(lambda x: fnp.tile(x, reps), (x,), order=1)


@given(shapes(max_dims=3, max_side=3), st.data())
@settings(max_examples=20)
def test_repeat(shape, data):
    x = rand(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1))
                     if shape else st.none())
    count = data.draw(st.integers(0, 3))
    same(fnp.repeat(x, count, axis=axis), np.repeat(x, count, axis=axis))
    n = x.size if axis is None else shape[axis]
    reps = np.asarray(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), np.int32)
    same(fnp.repeat(x, reps, axis=axis), np.repeat(x, reps, axis=axis))
    same(fnp.repeat(x, fnp.asarray(reps), axis=axis), np.repeat(x, reps, axis=axis))
    if x.size and count:
        check_grads(lambda x: fnp.repeat(x, count, axis=axis), (x,), order=1)
        check_grads(lambda x: fnp.repeat(x, reps, axis=axis), (x,), order=1)


def test_repeat_traced_counts_need_total_length():
    x = np.array([1.0, 2.0, 3.0])
    reps = np.array([2, 0, 1], np.int32)
    f = nanofn.jit(lambda x, r: fnp.repeat(x, r, total_repeat_length=5))
    same(f(x, reps), [1.0, 1.0, 3.0, 3.0, 3.0])  # shorter sum: the last element fills
    g = nanofn.jit(lambda x, r: fnp.repeat(x, r, total_repeat_length=2))
    same(g(x, reps), [1.0, 1.0])  # longer sum: cut
    same(fnp.repeat(x, reps, total_repeat_length=4), [1.0, 1.0, 3.0, 3.0])
    same(fnp.repeat(x, 2, total_repeat_length=7), [1, 1, 2, 2, 3, 3, 3])
    with pytest.raises(nanofn.ConcretizationError, match="total_repeat_length"):
        nanofn.jit(lambda x, r: fnp.repeat(x, r))(x, reps)
    with pytest.raises(ValueError, match=r"repeats of shape \(2,\) cannot be broadcast to the "
                                         r"axis 0 of size 3"):
        fnp.repeat(x, np.array([1, 2]))


# ------------------------------------------------------------------------ flipping, rolling


@given(shapes(max_dims=3, max_side=4), st.data())
@settings(max_examples=20)
def test_flip_roll_swapaxes_rot90(shape, data):
    x = rand(shape)
    nd = len(shape)
    axes = st.integers(-nd, nd - 1) if nd else st.just(0)
    same(fnp.flip(x), np.flip(x))
    if nd:
        ax = data.draw(axes)
        same(fnp.flip(x, ax), np.flip(x, ax))
        shift = data.draw(st.integers(-7, 7))
        same(fnp.roll(x, shift, ax), np.roll(x, shift, ax))
        same(nanofn.jit(lambda x, s: fnp.roll(x, s, ax))(x, shift), np.roll(x, shift, ax))
        a2 = data.draw(axes)
        same(fnp.swapaxes(x, ax, a2), np.swapaxes(x, ax, a2))
    shift = data.draw(st.integers(-7, 7))
    same(fnp.roll(x, shift), np.roll(x, shift))
    if nd >= 2:
        same(fnp.roll(x, (1, -2), (0, 1)), np.roll(x, (1, -2), (0, 1)))
        same(fnp.fliplr(x), np.fliplr(x))
        k = data.draw(st.integers(-5, 5))
        same(fnp.rot90(x, k), np.rot90(x, k))
        same(fnp.rot90(x, k, axes=(1, 0)), np.rot90(x, k, axes=(1, 0)))
    if nd >= 1:
        same(fnp.flipud(x), np.flipud(x))


def test_flip_roll_grads_and_errors():
    x = rand((3, 4))
    check_grads(lambda x: fnp.roll(fnp.flip(x, 0), 2, axis=1), (x,), order=2)
    check_grads(lambda x: fnp.swapaxes(fnp.rot90(x), 0, 1), (x,), order=1)
    # a traced shift
    g = nanofn.jit(nanofn.grad(lambda x, s: fnp.sum(fnp.roll(x, s, 1) * np.arange(4.0))))
    np.testing.assert_allclose(as_np(g(x, 1)), np.broadcast_to(np.roll(np.arange(4.0), -1),
                                                                 (3, 4)))
    with pytest.raises(ValueError, match=r"fliplr: the input must be at least 2-d, got shape "
                                         r"\(3,\)"):
        fnp.fliplr(np.ones(3))
    with pytest.raises(ValueError, match="axis 2 is out of bounds for an array of dimension 2"):
        fnp.flip(x, 2)


# ------------------------------------------------------------------------ padding


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
@given(shape=shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), data=st.data())
@settings(max_examples=12)
def test_pad_modes(mode, shape, data):
    x = rand(shape)
    nd = len(shape)
    widths = data.draw(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)),
                                min_size=nd, max_size=nd))
    same(fnp.pad(x, widths, mode=mode), np.pad(x, widths, mode=mode))
    same(fnp.pad(x, 2, mode=mode), np.pad(x, 2, mode=mode))
    if mode == "constant" and nd:
        vals = data.draw(st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)),
                                  min_size=nd, max_size=nd))
        same(fnp.pad(x, widths, constant_values=vals), np.pad(x, widths, constant_values=vals))
    if x.size:
        check_grads(lambda x: fnp.pad(x, widths, mode=mode), (x,), order=1)


@pytest.mark.parametrize("mode, kwargs", [
    ("linear_ramp", {}), ("linear_ramp", {"end_values": ((-2, 3), (1.5, 4))}),
    ("maximum", {}), ("minimum", {"stat_length": ((1, 2), (3, 1))}), ("mean", {}),
    ("mean", {"stat_length": 2}), ("median", {}), ("median", {"stat_length": (1, 3)}),
    ("reflect", {"reflect_type": "odd"}), ("symmetric", {"reflect_type": "odd"}),
])
@pytest.mark.parametrize("dtype", ["float64", "int32"])
def test_pad_statistic_ramp_and_odd_modes_match_numpy(mode, kwargs, dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(-9, 10, (3, 4)).astype(dtype) if dtype == "int32" else \
        rng.standard_normal((3, 4))
    for widths in [((2, 3), (1, 0)), ((7, 1), (0, 9)), 1]:
        got = fnp.pad(x, widths, mode=mode, **kwargs)
        want = np.pad(x, widths, mode=mode, **kwargs)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)
    if dtype == "float64":
        with nanofn.enable_x64():
            check_grads(lambda x: fnp.pad(x, ((2, 3), (1, 4)), mode=mode, **kwargs), (x,),
                        order=1)
    jitted = nanofn.jit(lambda x: fnp.pad(x, (2, 1), mode=mode, **kwargs))(x)
    np.testing.assert_allclose(np.asarray(jitted), np.pad(x, (2, 1), mode=mode, **kwargs),
                               rtol=1e-6)


def test_pad_empty_and_errors():
    same(fnp.pad(np.zeros((0, 2)), 1), np.pad(np.zeros((0, 2)), 1))
    same(nanofn.jit(lambda x, c: fnp.pad(x, 1, constant_values=c))(np.ones(2), 5.0),
         [5.0, 1.0, 1.0, 5.0])
    with pytest.raises(ValueError, match=r"can't extend the empty axis 0 \(shape \(0, 2\)\)"):
        fnp.pad(np.zeros((0, 2)), 1, mode="edge")
    with pytest.raises(NotImplementedError, match="mode 'median_low' is not supported"):
        fnp.pad(np.ones(3), 1, mode="median_low")
    with pytest.raises(ValueError, match=r"unsupported keyword argument\(s\) \['stat_length'\]"):
        fnp.pad(np.ones(3), 1, mode="edge", stat_length=2)
    with pytest.raises(ValueError, match="stat_length must be positive"):
        fnp.pad(np.ones(3), 1, mode="mean", stat_length=0)
    with pytest.raises(ValueError, match="reflect_type must be 'even' or 'odd'"):
        fnp.pad(np.ones(3), 1, mode="reflect", reflect_type="odds")
    with pytest.raises(ValueError, match=r"can't extend the empty axis 0"):
        fnp.pad(np.zeros((0, 2)), 1, mode="mean")
    assert fnp.pad(np.zeros((0, 2)), 1, mode="empty").shape == (2, 4)
    with pytest.raises(ValueError, match=r"pad_width \[1, 2, 3\] cannot be broadcast to \(2, 2\)"):
        fnp.pad(np.ones((2, 2)), [1, 2, 3])
    with pytest.raises(ValueError, match="must be non-negative"):
        fnp.pad(np.ones(2), -1)


# ------------------------------------------------------------------------ take


@given(shapes(min_dims=1, max_dims=3, max_side=4), st.data())
@settings(max_examples=25)
def test_take(shape, data):
    x = rand(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    n = x.size if axis is None else shape[axis]
    ishape = data.draw(shapes(max_dims=2, max_side=3))
    size = int(np.prod(ishape))
    if n:
        idx = np.asarray(data.draw(st.lists(st.integers(-n, n - 1), min_size=size,
                                            max_size=size)), np.int32).reshape(ishape)
        same(fnp.take(x, idx, axis=axis), np.take(x, idx, axis=axis))
        same(nanofn.jit(lambda x, i: fnp.take(x, i, axis=axis))(x, idx),
             np.take(x, idx, axis=axis))
        wide = (idx * 3 + 1).astype(np.int32)
        same(fnp.take(x, wide, axis=axis, mode="wrap"), np.take(x, wide, axis=axis, mode="wrap"))
        same(fnp.take(x, wide, axis=axis, mode="clip"), np.take(x, wide, axis=axis, mode="clip"))
        if x.size:
            check_grads(lambda x: fnp.take(x, idx, axis=axis), (x,), order=2)


def test_take_out_of_range():
    x = np.arange(4.0)
    with pytest.raises(IndexError, match="index 4 is out of bounds for axis 0 with size 4"):
        fnp.take(x, np.array([4]))
    out = nanofn.jit(lambda x, i: fnp.take(x, i))(x, np.array([1, 9]))  # traced: JAX's fill
    assert as_np(out)[0] == 1.0 and np.isnan(as_np(out)[1])
    same(fnp.take(x, np.array([1, 9]), mode="fill", fill_value=-1.0), [1.0, -1.0])
    with pytest.raises(nanofn.ConcretizationError, match="mode='raise' needs concrete"):
        nanofn.jit(lambda x, i: fnp.take(x, i, mode="raise"))(x, np.array([1]))
    with pytest.raises(TypeError, match="indices must be integers, got dtype float64"):
        fnp.take(x, np.array([1.0]))


@given(shapes(min_dims=1, max_dims=3, max_side=4), st.data())
@settings(max_examples=25)
def test_take_along_axis(shape, data):
    x = rand(shape)
    nd = len(shape)
    axis = data.draw(st.integers(-nd, nd - 1))
    ax = axis % nd
    n = shape[ax]
    if n == 0:
        return
    ishape = tuple(data.draw(st.sampled_from([d, 1])) if i != ax else data.draw(st.integers(0, 3))
                   for i, d in enumerate(shape))
    idx = np.asarray(data.draw(st.lists(st.integers(-n, n - 1), min_size=int(np.prod(ishape)),
                                        max_size=int(np.prod(ishape)))), np.int64).reshape(ishape)
    same(fnp.take_along_axis(x, idx, axis), np.take_along_axis(x, idx, axis))
    if x.size and idx.size:
        check_grads(lambda x: fnp.take_along_axis(x, idx, axis), (x,), order=2)


def test_take_along_axis_flat_and_errors():
    x = rand((2, 3))
    idx = np.array([5, 0, -1])
    same(fnp.take_along_axis(x, idx, None), np.take_along_axis(x, idx, None))
    with pytest.raises(ValueError, match=r"indices \(shape \(3,\)\) and arr \(shape \(2, 3\)\) "
                                         "must have the same number of dimensions"):
        fnp.take_along_axis(x, idx, 1)
    argmax = fnp.argmax(x, axis=1, keepdims=True)
    same(fnp.take_along_axis(x, argmax, 1), np.max(x, axis=1, keepdims=True))


# ------------------------------------------------------------------------ diagonals, triangles


@given(shapes(min_dims=2, max_dims=4, max_side=4), st.data())
@settings(max_examples=25)
def test_diagonal_trace_tril_triu(shape, data):
    x = rand(shape)
    nd = len(shape)
    a1 = data.draw(st.integers(-nd, nd - 1))
    a2 = data.draw(st.integers(-nd, nd - 1).filter(lambda a: a % nd != a1 % nd))
    k = data.draw(st.integers(-5, 5))
    same(fnp.diagonal(x, k, a1, a2), np.diagonal(x, k, a1, a2))
    np.testing.assert_allclose(as_np(fnp.trace(x, k, a1, a2)), np.trace(x, k, a1, a2))
    same(fnp.tril(x, k), np.tril(x, k))
    same(fnp.triu(x, k), np.triu(x, k))
    if np.diagonal(x, k, a1, a2).size:
        check_grads(lambda x: fnp.diagonal(x, k, a1, a2), (x,), order=2)
    if x.size:
        check_grads(lambda x: fnp.tril(x, k) - fnp.triu(x, k), (x,), order=1)


@given(st.integers(0, 4), st.integers(-5, 5))
@settings(max_examples=20)
def test_diag(n, k):
    v = rand((n,))
    same(fnp.diag(v, k), np.diag(v, k))
    m = rand((n, n + 1))
    same(fnp.diag(m, k), np.diag(m, k))
    if n:
        check_grads(lambda v: fnp.diag(v, k), (v,), order=2)


def test_triangles_and_diag_edge_cases():
    same(fnp.tril(np.arange(1, 4)), np.tril(np.arange(1, 4)))  # 1-d: numpy broadcasts
    same(fnp.triu(np.ones((2, 0, 3))), np.triu(np.ones((2, 0, 3))))
    with pytest.raises(ValueError, match=r"diag: the input must be 1-d or 2-d, got shape "
                                         r"\(1, 1, 1\)"):
        fnp.diag(np.ones((1, 1, 1)))
    with pytest.raises(ValueError, match="axis1 and axis2 cannot be the same"):
        fnp.diagonal(np.ones((2, 2)), 0, 1, -1)
    with pytest.raises(ValueError, match=r"at least 2-d, got shape \(3,\)"):
        fnp.diagonal(np.ones(3))


# ------------------------------------------------------------------------ grids


@given(st.lists(st.integers(0, 3), min_size=0, max_size=3), st.booleans(),
       st.sampled_from(["xy", "ij"]))
@settings(max_examples=20)
def test_meshgrid(sizes, sparse, indexing):
    xs = [rand((n,)) for n in sizes]
    got = fnp.meshgrid(*xs, sparse=sparse, indexing=indexing)
    want = np.meshgrid(*xs, sparse=sparse, indexing=indexing)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        same(g, w)


def test_broadcast_arrays_and_ix():
    a, b = rand((2, 1)), rand((3,))
    for g, w in zip(fnp.broadcast_arrays(a, b), np.broadcast_arrays(a, b)):
        same(g, w)
    with pytest.raises(ValueError, match=r"shapes \(2,\), \(3,\) do not broadcast"):
        fnp.broadcast_arrays(np.ones(2), np.ones(3))
    x = rand((4, 5))
    rows, mask = np.array([3, 0]), np.array([True, False, True, False, True])
    for g, w in zip(fnp.ix_(rows, mask), np.ix_(rows, mask)):
        same(g, w)
    same(fnp.asarray(x)[fnp.ix_(rows, mask)], x[np.ix_(rows, mask)])
    check_grads(lambda x: x[fnp.ix_(rows, mask)], (x,), order=1)
    with pytest.raises(ValueError, match=r"argument 0 has shape \(2, 2\)"):
        fnp.ix_(np.ones((2, 2), np.int32))


def test_methods_and_inputs_untouched():
    x = rand((3, 4))
    x0 = x.copy()
    xa = fnp.asarray(x)
    same(xa.swapaxes(0, 1), x.swapaxes(0, 1))
    same(xa.take(np.array([1, 2]), axis=1), x.take([1, 2], axis=1))
    same(xa.repeat(2, axis=0), x.repeat(2, axis=0))
    same(xa.diagonal(), x.diagonal())
    np.testing.assert_allclose(as_np(xa.trace()), x.trace())
    for f in [fnp.flip, fnp.tril, lambda x: fnp.pad(x, 1, "reflect"), lambda x: fnp.roll(x, 1),
              lambda x: fnp.take(x, np.array([0, 0])), lambda x: fnp.split(x, 2, 1),
              lambda x: fnp.tile(x, 2), lambda x: fnp.concatenate([x, x])]:
        f(x)
    np.testing.assert_array_equal(x, x0)


# ------------------------------------------------------------------------ vmap



@pytest.mark.parametrize("f", [
    lambda x: fnp.concatenate([x, x[:, :1]], axis=-1),
    lambda x: fnp.split(x, [1, 2], axis=1)[1],
    lambda x: fnp.tile(x, (2, 1, 2)),
    lambda x: fnp.repeat(x, np.array([1, 0, 2]), axis=1),
    lambda x: fnp.roll(fnp.flip(x, 0), 2),
    lambda x: fnp.pad(x, ((1, 2), (0, 3)), mode="reflect"),
    lambda x: fnp.take(x, np.array([[2, 0]]), axis=1),
    lambda x: fnp.take_along_axis(x, np.array([[0], [2]]), axis=1),
    lambda x: fnp.diagonal(x, 1) + fnp.trace(x),
    lambda x: fnp.tril(x, -1) + fnp.triu(x),
    lambda x: fnp.diag(x[0], 1),
], ids=["concatenate", "split", "tile", "repeat", "roll", "pad", "take", "take_along_axis",
        "diagonal", "tril", "diag"])
@pytest.mark.parametrize("size", [0, 3])
def test_vmap_equals_loop(f, size):
    vmap = nanofn.vmap
    xs = rand((size, 2, 3))
    got = as_np(vmap(f)(xs))
    want = np.stack([as_np(f(x)) for x in xs]) if size else \
        np.zeros((0,) + as_np(f(np.zeros((2, 3)))).shape)
    np.testing.assert_array_equal(got, want)


def test_vmap_with_batched_shift_and_indices():
    vmap = nanofn.vmap
    x = rand((3, 4))
    shifts = np.array([0, 1, -5], np.int32)
    got = vmap(lambda s: fnp.roll(x, s, axis=1))(shifts)
    np.testing.assert_array_equal(as_np(got), np.stack([np.roll(x, s, 1) for s in shifts]))
    idx = np.array([[0, 3], [1, 1]], np.int32)
    got = vmap(lambda i: fnp.take(x, i, axis=1))(idx)
    np.testing.assert_array_equal(as_np(got), np.stack([np.take(x, i, 1) for i in idx]))
