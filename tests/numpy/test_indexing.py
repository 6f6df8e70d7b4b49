"""Tests for `x[idx]` and `x.at[idx]` (nanofn/numpy/_indexing.py) against numpy.

Hypothesis draws shapes (with size-0 and size-1 axes) and numpy indices (ints, slices with
any step, None, Ellipsis, integer arrays that broadcast, boolean masks); results and errors
must match numpy's, eagerly and under jit, and gradients must pass check_grads.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.numpy._indexing import IndexUpdateHelper, getitem
from nanofn.testing import check_grads, shapes

RNG = np.random.default_rng(1)


def as_np(x):
    return np.asarray(x)


def rand(shape):
    return RNG.standard_normal(shape)


@st.composite
def numpy_index(draw, shape, arrays=True, masks=True):
    """A numpy index for an array of `shape`."""
    ndim = len(shape)
    k = draw(st.integers(0, ndim))
    back = draw(st.booleans())  # index the last k axes after a leading Ellipsis
    axes = range(ndim - k, ndim) if back else range(k)
    bshape = draw(shapes(max_dims=2, max_side=3))
    items = []
    for ax in axes:
        n = shape[ax]
        kinds = ["slice"] + (["int"] if n else []) + (["arr"] if arrays and n else []) + \
            (["mask"] if masks else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
            step = st.one_of(st.none(), st.sampled_from([-3, -2, -1, 1, 2, 3]))
            items.append(slice(draw(bound), draw(bound), draw(step)))
        elif kind == "arr":
            lead = draw(st.integers(0, len(bshape)))
            sub = tuple(draw(st.sampled_from([d, 1])) for d in bshape[lead:])
            vals = draw(st.lists(st.integers(-n, n - 1), min_size=int(np.prod(sub)),
                                 max_size=int(np.prod(sub))))
            items.append(np.asarray(vals, dtype=draw(st.sampled_from([np.int32, np.int64])))
                         .reshape(sub))
        else:
            items.append(np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                                    dtype=bool))
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    if back:
        items.insert(0, Ellipsis)
    elif draw(st.booleans()):
        items.append(Ellipsis)
    if len(items) == 1 and draw(st.booleans()):
        return items[0]  # a bare index, not a tuple
    return tuple(items)


@st.composite
def array_and_index(draw, **kw):
    shape = draw(shapes(max_dims=3, max_side=4))
    return rand(shape), draw(numpy_index(shape, **kw))


def traced(f, *args):
    """f evaluated on tracers that carry values (reverse mode), so nanofn's traceable
    indexing runs (eager calls on concrete arrays go straight to numpy)."""
    out, _ = nanofn.vjp(f, *args)
    return out


def numpy_or_error(f):
    try:
        return f(), None
    except IndexError as e:
        return None, e


# ------------------------------------------------------------------------ reading


@given(array_and_index())
@settings(max_examples=60)
def test_getitem_matches_numpy(case):
    x, idx = case
    want, err = numpy_or_error(lambda: x[idx])
    if err is not None:
        with pytest.raises(IndexError):
            fnp.asarray(x)[idx]
        with pytest.raises(IndexError):
            traced(lambda x: x[idx], x)
        return
    for got in [fnp.asarray(x)[idx], traced(lambda x: x[idx], x)]:
        assert got.shape == want.shape
        np.testing.assert_array_equal(as_np(got), want)


def random_index(rng, shape, masks=True):
    """A random numpy index for `shape` (a seeded complement to the hypothesis strategy,
    which favours tiny shapes): ints, slices with any step, arrays, masks, None, `...`."""
    ndim = len(shape)
    k = int(rng.integers(0, ndim + 1))
    back = bool(rng.integers(2))
    axes = range(ndim - k, ndim) if back else range(k)
    bshape = tuple(int(d) for d in rng.integers(1, 4, size=rng.integers(0, 3)))
    items = []
    for ax in axes:
        n = shape[ax]
        kinds = ["slice", "slice"] + (["int", "arr"] if n else []) + (["mask"] if masks else [])
        kind = kinds[rng.integers(len(kinds))]
        if kind == "int":
            items.append(int(rng.integers(-n, n)))
        elif kind == "slice":
            def bound():
                return None if rng.random() < 0.3 else int(rng.integers(-n - 2, n + 3))
            step = None if rng.random() < 0.2 else int(rng.choice([-3, -2, -1, 1, 2, 3]))
            items.append(slice(bound(), bound(), step))
        elif kind == "arr":
            sub = tuple(d if rng.random() < 0.7 else 1
                        for d in bshape[rng.integers(0, len(bshape) + 1):])
            items.append(rng.integers(-n, n, size=sub))
        else:
            items.append(rng.random(n) < 0.5)
    for _ in range(int(rng.integers(0, 3))):
        items.insert(int(rng.integers(0, len(items) + 1)), None)
    if back:
        items.insert(0, Ellipsis)
    return tuple(items)


def test_getitem_and_updates_match_numpy_on_many_random_indices():
    rng = np.random.default_rng(7)
    for _ in range(250):
        shape = tuple(int(d) for d in rng.integers(0, 5, size=rng.integers(1, 4)))
        x = rand(shape)
        idx = random_index(rng, shape)
        want, err = numpy_or_error(lambda: x[idx])
        if err is not None:
            with pytest.raises(IndexError):
                traced(lambda x: x[idx], x)
            continue
        got = traced(lambda x: x[idx], x)
        assert got.shape == want.shape, (shape, idx)
        np.testing.assert_array_equal(as_np(got), want, err_msg=f"{shape} {idx}")
        v = rand(want.shape)
        for method in ("set", "add"):
            got = traced(lambda x, v: getattr(x.at[idx], method)(v), x, v)
            np.testing.assert_allclose(as_np(got), reference_update(x, idx, v, method),
                                       rtol=1e-12, err_msg=f"{method} {shape} {idx}")


@given(array_and_index(masks=False))
@settings(max_examples=30)
def test_getitem_under_jit_matches_numpy(case):
    x, idx = case
    want, err = numpy_or_error(lambda: x[idx])
    if err is not None:
        return
    got = nanofn.jit(lambda x: x[idx])(x)
    np.testing.assert_array_equal(as_np(got), want)


@given(array_and_index(masks=False))
@settings(max_examples=15)
def test_getitem_index_arrays_traced_under_jit(case):
    x, idx = case
    want, err = numpy_or_error(lambda: x[idx])
    if err is not None:
        return
    items = idx if isinstance(idx, tuple) else (idx,)
    arrays = [i for i, e in enumerate(items) if isinstance(e, (np.ndarray, int))]

    def f(x, *traced):
        full = list(items)
        for i, t in zip(arrays, traced):
            full[i] = t
        return x[tuple(full)]

    got = nanofn.jit(f)(x, *[np.asarray(items[i]) for i in arrays])
    np.testing.assert_array_equal(as_np(got), want)


def test_dynamic_integer_indices_under_jit():
    x = rand((4, 3))
    f = nanofn.jit(lambda x, i: x[i])
    g = nanofn.jit(lambda x, i: x[1:, i])
    for i in range(-4, 4):
        np.testing.assert_array_equal(as_np(f(x, i)), x[i])
    for i in range(-3, 3):
        np.testing.assert_array_equal(as_np(g(x, i)), x[1:, i])
    # traced out-of-range reads clamp (JAX's rule; they cannot be checked)
    np.testing.assert_array_equal(as_np(f(x, 10)), x[3])
    np.testing.assert_array_equal(as_np(f(x, -10)), x[0])
    # with an array index beside it, the traced scalar joins the advanced block
    h = nanofn.jit(lambda x, i: x[np.array([0, 2]), i])
    np.testing.assert_array_equal(as_np(h(x, -1)), x[[0, 2], -1])


def test_basic_indexing_uses_slice_primitives():
    jaxpr = str(nanofn.make_jaxpr(lambda x: x[1:, ::-1, None, 0])(np.zeros((3, 4, 2))))
    assert "gather" not in jaxpr and "slice" in jaxpr and "rev" in jaxpr
    jaxpr = str(nanofn.make_jaxpr(lambda x, i: x[i, 1])(np.zeros((3, 4)), 1))
    assert "gather" not in jaxpr and "dynamic_slice" in jaxpr
    jaxpr = str(nanofn.make_jaxpr(lambda x: x[np.array([0, 1])])(np.zeros((3, 4))))
    assert "gather" in jaxpr


def test_getitem_on_0d_and_empty_arrays():
    s = fnp.asarray(np.float64(2.5))
    assert float(s[()]) == 2.5 and s[None].shape == (1,) and s[...].shape == ()
    e = fnp.zeros((0, 3))
    assert e[:, 1].shape == (0,) and e[np.array([], np.int32)].shape == (0, 3)
    assert e[1:, np.array([0, 2])].shape == (0, 2)


# ------------------------------------------------------------------------ errors


INDEX_ERRORS = [
    ((0, 5), IndexError, "index 5 is out of bounds for axis 1 with size 3"),
    (-3, IndexError, "index -3 is out of bounds for axis 0 with size 2"),
    ((slice(None), np.array([0, 3])), IndexError,
     "index 3 is out of bounds for axis 1 with size 3"),
    ((0, 0, 0), IndexError,
     "too many indices for array: array is 2-dimensional, but 3 were indexed"),
    (1.5, IndexError, r"only integers, slices \(`:`\), ellipsis"),
    (np.array([0.0]), IndexError,
     r"arrays used as indices must be of integer \(or boolean\) type"),
    ((Ellipsis, Ellipsis), IndexError, r"an index can only have a single ellipsis \('...'\)"),
    (np.array([True, False, True]), IndexError,
     "boolean index did not match indexed array along axis 0; size of axis is 2 but size of "
     "corresponding boolean axis is 3"),
    ((np.array([0, 1]), np.array([0, 1, 2])), IndexError,
     r"shape mismatch: indexing arrays could not be broadcast together with shapes \(2,\) "
     r"\(3,\)"),
    (slice(None, None, 0), ValueError, "slice step cannot be zero"),
]


@pytest.mark.parametrize("idx, err, message", INDEX_ERRORS)
def test_index_errors_match_numpy(idx, err, message):
    x = np.arange(6.0).reshape(2, 3)
    with pytest.raises(err, match=message):  # numpy's own error
        x[idx]
    with pytest.raises(err, match=message):  # eager
        fnp.asarray(x)[idx]
    with pytest.raises(err, match=message):  # traced: nanofn's indexing code
        nanofn.jit(lambda x: x[idx])(x)
    with pytest.raises(err, match=message):
        nanofn.grad(lambda x: fnp.sum(x[idx]))(x)
    with pytest.raises(err, match=message):
        nanofn.jit(lambda x: x.at[idx].set(0.0))(x)


def test_traced_boolean_mask_under_jit_is_a_clear_error():
    x = np.arange(4.0)
    with pytest.raises(nanofn.ConcretizationError, match=r"boolean mask of shape \(4,\).*where"):
        nanofn.jit(lambda x: x[x > 1.0])(x)
    # outside jit (even under grad) the mask is concrete and works
    g = nanofn.grad(lambda x: fnp.sum(x[x > 1.0] ** 2))(x)
    np.testing.assert_allclose(as_np(g), np.where(x > 1.0, 2 * x, 0.0))


def test_traced_slice_bounds_under_jit_are_a_clear_error():
    with pytest.raises(nanofn.ConcretizationError, match="slice indices must be static.*"
                                                         "dynamic_slice"):
        nanofn.jit(lambda x, i: x[i:])(np.arange(4.0), 1)


# ------------------------------------------------------------------------ updates


def reference_update(x, idx, v, method):
    y = x.copy()
    if method == "set":
        y[idx] = v
    else:
        {"add": np.add, "multiply": np.multiply, "min": np.minimum,
         "max": np.maximum}[method].at(y, idx, v)
    return y


@pytest.mark.parametrize("method", ["set", "add", "multiply", "min", "max"])
@given(case=array_and_index())
@settings(max_examples=20)
def test_at_updates_match_numpy(method, case):
    x, idx = case
    target, err = numpy_or_error(lambda: x[idx])
    if err is not None:
        with pytest.raises(IndexError):
            getattr(fnp.asarray(x).at[idx], method)(1.0)
        with pytest.raises(IndexError):
            traced(lambda x: getattr(x.at[idx], method)(1.0), x)
        return
    v = rand(target.shape)
    xa = fnp.asarray(x)
    want = reference_update(x, idx, v, method)
    np.testing.assert_allclose(as_np(getattr(xa.at[idx], method)(v)), want, rtol=1e-12)
    got = traced(lambda x, v: getattr(x.at[idx], method)(v), x, v)
    np.testing.assert_allclose(as_np(got), want, rtol=1e-12)
    np.testing.assert_array_equal(as_np(xa), x)  # the original is untouched
    # a scalar broadcasts to the indexed shape
    want = reference_update(x, idx, 0.5, method)
    np.testing.assert_allclose(as_np(getattr(xa.at[idx], method)(0.5)), want, rtol=1e-12)
    np.testing.assert_allclose(as_np(traced(lambda x: getattr(x.at[idx], method)(0.5), x)),
                               want, rtol=1e-12)


@given(case=array_and_index(masks=False))
@settings(max_examples=15)
def test_at_set_under_jit(case):
    x, idx = case
    target, err = numpy_or_error(lambda: x[idx])
    if err is not None:
        return
    v = rand(target.shape)
    got = nanofn.jit(lambda x, v: x.at[idx].set(v))(x, v)
    np.testing.assert_array_equal(as_np(got), reference_update(x, idx, v, "set"))


def test_at_other_methods():
    x = fnp.asarray(np.arange(1.0, 6.0))
    np.testing.assert_allclose(as_np(x.at[1:3].divide(2.0)), [1, 1, 1.5, 4, 5])
    np.testing.assert_allclose(as_np(x.at[::2].power(2)), [1, 2, 9, 4, 25])
    np.testing.assert_allclose(as_np(x.at[-1].subtract(1.0)), [1, 2, 3, 4, 4])
    np.testing.assert_allclose(as_np(x.at[np.array([0, 0])].mul(3.0)), [9, 2, 3, 4, 5])
    np.testing.assert_allclose(as_np(x.at[1].apply(lambda v: -v)), [1, -2, 3, 4, 5])
    np.testing.assert_array_equal(as_np(x.at[np.array([1, 9])].get(mode="fill",
                                                                     fill_value=0.0)), [2, 0])
    np.testing.assert_array_equal(as_np(x.at[np.array([1, 9])].get(mode="clip")), [2, 5])
    # out-of-range updates: IndexError by default, dropped or clamped on request
    with pytest.raises(IndexError, match="index 9 is out of bounds for axis 0 with size 5"):
        x.at[np.array([9])].set(0.0)
    np.testing.assert_array_equal(as_np(x.at[np.array([9, 0])].set(0.0, mode="drop")),
                                  [0, 2, 3, 4, 5])
    np.testing.assert_array_equal(as_np(x.at[np.array([9])].set(0.0, mode="clip")),
                                  [1, 2, 3, 4, 0])
    # values are cast to x's dtype
    xi = fnp.asarray(np.arange(3, dtype=np.int32))
    out = xi.at[0].set(7.9)
    assert out.dtype == np.int32 and out.tolist() == [7, 1, 2]
    with pytest.raises(TypeError, match="divide requires a float array"):
        xi.at[0].divide(2)


def test_at_traced_indices_under_jit_drop_out_of_range():
    x = np.zeros(4)
    f = nanofn.jit(lambda x, i, v: x.at[i].add(v))
    np.testing.assert_array_equal(as_np(f(x, -1, 2.0)), [0, 0, 0, 2])
    np.testing.assert_array_equal(as_np(f(x, 7, 2.0)), [0, 0, 0, 0])
    g = nanofn.jit(lambda x, i: x.at[i].set(1.0))
    np.testing.assert_array_equal(as_np(g(x, np.array([0, 5, -2]))), [1, 0, 1, 0])


def test_at_value_shape_error():
    x = fnp.zeros((3, 4))
    with pytest.raises(ValueError, match=r"values of shape \(3,\) cannot be broadcast to the "
                                         r"indexed shape \(2, 4\)"):
        x.at[1:].set(fnp.ones(3))


def test_inputs_are_never_mutated():
    x = rand((3, 4))
    x0 = x.copy()
    idx = np.array([0, 2, 0])
    idx0 = idx.copy()
    v = rand((3, 4))
    v0 = v.copy()
    getitem(x, (idx, slice(None)))
    for method in ("set", "add", "multiply", "min", "max"):
        getattr(IndexUpdateHelper(x)[idx], method)(v)
    nanofn.grad(lambda x: fnp.sum(IndexUpdateHelper(x)[idx].set(v) * x))(x)
    nanofn.jit(lambda x, v: IndexUpdateHelper(x)[idx].add(v))(x, v)
    for a, b in [(x, x0), (idx, idx0), (v, v0)]:
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------ gradients


@given(array_and_index())
@settings(max_examples=15)
def test_getitem_grads(case):
    x, idx = case
    want, err = numpy_or_error(lambda: x[idx])
    if err is not None or want.size == 0 or x.size == 0:
        return
    check_grads(lambda x: x[idx], (x,), order=2)


@pytest.mark.parametrize("method", ["set", "add", "min", "max"])
@given(case=array_and_index())
@settings(max_examples=8)
def test_at_grads(method, case):
    x, idx = case
    target, err = numpy_or_error(lambda: x[idx])
    if err is not None or x.size == 0:
        return
    v = rand(target.shape)
    check_grads(lambda x, v: getattr(x.at[idx], method)(v), (x, v), order=2)


def test_at_grads_unique_index_methods():
    x = np.abs(rand((3, 4))) + 0.5  # positive, for power
    for f in [lambda x, v: x.at[1:, ::2].multiply(v), lambda x, v: x.at[0, :2].divide(v[0]),
              lambda x, v: x.at[np.array([2, 0]), 1].power(v[:, 0] ** 2 + 1.0),
              lambda x, v: x.at[1:, 1:3].apply(lambda s: s * v)]:
        v = rand((2, 2))
        check_grads(f, (x, v), order=2)


def test_grad_through_dynamic_index():
    x = rand((5, 2))

    def f(x, i):
        return fnp.sum(x[i] * x[i - 1])

    for i in [0, 3, -1]:
        g = nanofn.grad(f)(x, i)
        want = np.zeros_like(x)
        want[i] += x[i - 1]
        want[i - 1] += x[i]
        np.testing.assert_allclose(as_np(g), want)
        np.testing.assert_allclose(as_np(nanofn.jit(nanofn.grad(f))(x, i)), want)


# ------------------------------------------------------------------------ vmap



@given(array_and_index(masks=False))
@settings(max_examples=15)
def test_vmap_getitem_and_at_equal_loop(case):
    vmap = nanofn.vmap
    x, idx = case
    want, err = numpy_or_error(lambda: x[idx])
    if err is not None:
        return
    xs = np.stack([x, x + 1.0, -x])
    got = vmap(lambda x: x[idx])(xs)
    np.testing.assert_array_equal(as_np(got), np.stack([e[idx] for e in xs]))
    vs = rand((3,) + want.shape)
    got = vmap(lambda x, v: x.at[idx].add(v))(xs, vs)
    np.testing.assert_array_equal(as_np(got), np.stack(
        [reference_update(np.asarray(e), idx, v, "add") for e, v in zip(xs, vs)]))


def test_vmap_over_traced_indices():
    vmap = nanofn.vmap
    x = rand((5, 3))
    xs = rand((4, 5, 3))
    i = np.array([0, -1, 3, 9], np.int32)  # 9 is out of range: clamped on reads
    clamp = np.clip(np.where(i < 0, i + 5, i), 0, 4)
    np.testing.assert_array_equal(as_np(vmap(lambda i: fnp.asarray(x)[i])(i)), x[clamp])
    np.testing.assert_array_equal(as_np(vmap(lambda x, i: x[i, 1:])(xs, i)),
                                  np.stack([e[c, 1:] for e, c in zip(xs, clamp)]))
    arr = np.array([[0, 4], [1, 1], [-2, 0], [3, 2]], np.int32)
    np.testing.assert_array_equal(as_np(vmap(lambda x, a: x[a, ::-1])(xs, arr)),
                                  np.stack([e[a, ::-1] for e, a in zip(xs, arr)]))
    got = vmap(lambda x, i, v: x.at[i].set(v))(xs, i, rand((4, 3)) * 0 + 7.0)
    want = xs.copy()
    for b, j in enumerate(i):
        if -5 <= j < 5:  # out-of-range writes are dropped
            want[b, j] = 7.0
    np.testing.assert_array_equal(as_np(got), want)
    # a size-0 batch
    assert vmap(lambda x, i: x[i])(xs[:0], i[:0]).shape == (0, 3)


def test_vmap_boolean_mask_is_a_clear_error():
    vmap = nanofn.vmap
    with pytest.raises(nanofn.ConcretizationError, match=r"boolean mask of shape \(3,\)"):
        vmap(lambda x: x[x > 0])(rand((2, 3)))


@given(st.lists(st.integers(0, 4), min_size=0, max_size=7), st.sampled_from([None, "clip"]))
def test_at_apply_and_power_act_once_per_occurrence_of_an_index(idx, mode):
    # numpy's ufunc.at and JAX: an element hit k times gets k applications
    x = np.linspace(0.5, 2.5, 5)
    idx = np.asarray(idx, np.int64)
    want_apply, want_power = x.copy(), x.copy()
    np.multiply.at(want_apply, idx, 3.0)  # v * 3, once per occurrence
    np.power.at(want_power, idx, 2.0)
    a = fnp.asarray(x)
    np.testing.assert_allclose(np.asarray(a.at[idx].apply(lambda v: v * 3.0, mode=mode)),
                               want_apply, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(a.at[idx].power(2.0, mode=mode)), want_power,
                               rtol=1e-12)
    jitted = nanofn.jit(lambda v, i: v.at[i].apply(lambda t: t * 3.0))
    if len(idx):
        np.testing.assert_allclose(np.asarray(jitted(x, idx)), want_apply, rtol=1e-12)
    # d/dx of sin applied k times
    grad = nanofn.grad(lambda v: fnp.sum(v.at[idx].apply(fnp.sin)))(x)
    want = np.ones_like(x)
    for i in range(5):
        y = x[i]
        for _ in range(int(np.sum(idx == i))):
            want[i] *= np.cos(y)
            y = np.sin(y)
    np.testing.assert_allclose(np.asarray(grad), want, rtol=1e-12)
