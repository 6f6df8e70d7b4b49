"""reduce_prod, the cumulative ops, sort and top_k: values against numpy, derivatives against
finite differences (float64, second order where twice differentiable), exact gradients at
zeros and ties, batching rules against a loop, and the shape rules' errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nanofn
from nanofn import lax
from nanofn.ops import _reduce as R
from nanofn.testing import check_grads, shapes


def _np(x):
    return np.asarray(x)


@st.composite
def array_and_axes(draw, min_dims=1, max_side=4, min_side=0):
    shape = draw(shapes(min_dims=min_dims, max_dims=3, min_side=min_side, max_side=max_side))
    axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1),
                         unique_by=lambda a: a % len(shape)))
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).uniform(-2, 2, size=shape)
    return x, tuple(axes)


@st.composite
def array_and_axis(draw, min_side=0, distinct=False, max_side=4):
    shape = draw(shapes(min_dims=1, max_dims=3, min_side=min_side, max_side=max_side))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if distinct:  # values well apart, so max/sort derivatives are smooth at the point
        x = rng.permutation(int(np.prod(shape))).reshape(shape) / 2.0 - 1.0
    else:
        x = rng.uniform(-2, 2, size=shape)
    return x, axis, draw(st.booleans())


def _scan_ref(ufunc, x, axis, reverse):
    if reverse:
        return np.flip(ufunc.accumulate(np.flip(x, axis), axis=axis), axis)
    return ufunc.accumulate(x, axis=axis)


_SCANS = {"cumsum": (lax.cumsum, np.add), "cumprod": (lax.cumprod, np.multiply),
          "cummax": (lax.cummax, np.maximum), "cummin": (lax.cummin, np.minimum)}


# ------------------------------------------------------------------------ values


@given(array_and_axes())
def test_reduce_prod_matches_numpy(case):
    x, axes = case
    np.testing.assert_allclose(_np(lax.reduce_prod(x, axes)), np.prod(x, axis=axes), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(_SCANS))
@given(case=array_and_axis())
def test_scans_match_numpy(name, case):
    x, axis, reverse = case
    fn, ufunc = _SCANS[name]
    np.testing.assert_allclose(_np(fn(x, axis, reverse)), _scan_ref(ufunc, x, axis, reverse),
                               rtol=1e-12)


def test_integer_and_bool_dtypes_are_kept():
    i = np.array([[3, 1, 2], [4, 0, 5]], np.int32)
    assert lax.cumsum(i, 1).dtype == np.int32
    assert lax.reduce_prod(i, (1,)).dtype == np.int32
    np.testing.assert_array_equal(_np(lax.cummax(i, 1)), [[3, 3, 3], [4, 4, 5]])
    np.testing.assert_array_equal(_np(lax.cummax(np.array([False, True, False]), 0)),
                                  [False, True, True])


@given(st.data())
def test_sort_multiple_operands_matches_lexsort(data):
    shape = data.draw(shapes(min_dims=1, max_dims=2, min_side=0, max_side=5))
    dim = data.draw(st.integers(0, len(shape) - 1))
    num_keys = data.draw(st.integers(1, 2))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    k1 = rng.integers(0, 3, size=shape).astype(np.float64)  # many ties
    k2 = rng.integers(0, 3, size=shape).astype(np.int32)
    payload = rng.normal(size=shape)
    outs = lax.sort((k1, k2, payload), dimension=dim, num_keys=num_keys)
    perm = np.lexsort((k2, k1)[2 - num_keys:], axis=dim)  # numpy: the last key is primary
    for got, op in zip(outs, (k1, k2, payload)):
        np.testing.assert_array_equal(_np(got), np.take_along_axis(op, perm, axis=dim))


def test_sort_nans_last_and_stable():
    x = np.array([2.0, np.nan, 1.0, 2.0, -np.inf])
    keys, idx = lax.sort_key_val(x, np.arange(5))
    np.testing.assert_array_equal(_np(keys), [-np.inf, 1.0, 2.0, 2.0, np.nan])
    np.testing.assert_array_equal(_np(idx), [4, 2, 0, 3, 1])


@given(st.data())
def test_top_k_matches_numpy(data):
    n = data.draw(st.integers(1, 6))
    k = data.draw(st.integers(0, n))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.integers(0, 4, size=(2, n)).astype(np.float64)
    vals, idx = lax.top_k(x, k)
    want_idx = np.argsort(-x, axis=-1, kind="stable")[:, :k]  # ties: the lower index first
    np.testing.assert_array_equal(_np(idx), want_idx)
    np.testing.assert_array_equal(_np(vals), np.take_along_axis(x, want_idx, axis=-1))


def test_top_k_along_another_axis():
    x = np.array([[1.0, 5.0], [4.0, 2.0], [3.0, 0.0]])
    vals, idx = lax.top_k(x, 2, axis=0)
    np.testing.assert_array_equal(_np(vals), [[4.0, 5.0], [3.0, 2.0]])
    np.testing.assert_array_equal(_np(idx), [[1, 0], [2, 1]])



@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_top_k_ranks_positive_zero_above_negative_zero(dtype):
    # top_k orders floats totally (as XLA's TopK does): 0.0 > -0.0; sort keeps them equal
    x = np.array([-0.0, 0.0, -1.0, -0.0, 0.0], dtype)
    vals, idx = lax.top_k(x, 5)
    np.testing.assert_array_equal(_np(idx), [1, 4, 0, 3, 2])
    np.testing.assert_array_equal(np.signbit(_np(vals)), [False, False, True, True, True])
    batched = nanofn.jit(nanofn.vmap(lambda r: lax.top_k(r, 2)[1]))(np.stack([x, -x]))
    np.testing.assert_array_equal(_np(batched), [[1, 4], [2, 0]])
    assert _np(lax.sort(x)).tolist() == [-1.0, -0.0, 0.0, -0.0, 0.0]


# ------------------------------------------------------------------------ derivatives


@settings(max_examples=6)
@given(array_and_axes(max_side=3, min_side=1))
def test_reduce_prod_grads(case):
    x, axes = case
    check_grads(lambda x: lax.reduce_prod(x, axes), (x,), order=2)


@pytest.mark.parametrize("zeros", [1, 2, 3])
def test_reduce_prod_grads_with_zeros(zeros):
    x = np.array([[0.7, -1.3, 2.0, 0.5], [1.5, 0.8, -0.6, 1.1]])
    x[0, :zeros] = 0.0
    x[1, 1:1 + zeros] = 0.0
    check_grads(lambda x: lax.reduce_prod(x, (1,)), (x,), order=2)
    check_grads(lambda x: lax.reduce_prod(x, (0, 1)), (x,), order=2)


def test_reduce_prod_gradient_with_one_zero_is_product_of_others():
    x = np.array([3.0, 0.0, 2.0, -1.5])
    g = _np(nanofn.grad(lambda x: lax.reduce_prod(x, (0,)))(x))
    np.testing.assert_array_equal(g, [0.0, 3.0 * 2.0 * -1.5, 0.0, 0.0])
    # the Hessian at that point: d2/dx_i dx_j = product of the elements other than i and j
    h = np.stack([_np(nanofn.grad(lambda x: nanofn.grad(
        lambda x: lax.reduce_prod(x, (0,)))(x)[i])(x)) for i in range(4)])
    want = np.array([[0.0 if i == j else np.prod(np.delete(x, [i, j])) for j in range(4)]
                     for i in range(4)])
    np.testing.assert_allclose(h, want, atol=1e-12)


def test_reduce_prod_gradient_with_two_zeros_is_zero():
    g = nanofn.grad(lambda x: lax.reduce_prod(x, (0,)))(np.array([0.0, 2.0, 0.0]))
    np.testing.assert_array_equal(_np(g), [0.0, 0.0, 0.0])


@settings(max_examples=6)
@given(array_and_axis(min_side=1, max_side=4))
def test_cumsum_and_cumprod_grads(case):
    x, axis, reverse = case
    check_grads(lambda x: lax.cumsum(x, axis, reverse), (x,), order=2)
    check_grads(lambda x: lax.cumprod(x, axis, reverse), (x,), order=2)


@pytest.mark.parametrize("reverse", [False, True])
def test_cumprod_first_derivatives_exact_with_zeros(reverse):
    x = np.array([[0.0, 2.0, 0.5, 0.0, 1.5], [1.2, 0.0, -0.7, 2.0, 0.9], [0.6, 1.1, 0.0, 0.0, 0.0]])
    check_grads(lambda x: lax.cumprod(x, 1, reverse), (x,), order=1)
    # compare the Jacobian with the analytic d out[k] / d x[i] = prod of x[j], j <= k, j != i
    v = x[0]
    jac = np.stack([_np(nanofn.grad(lambda v: lax.cumprod(v, 0)[k])(v)) for k in range(5)])
    want = np.array([[np.prod(np.delete(v[:k + 1], i)) if i <= k else 0.0 for i in range(5)]
                     for k in range(5)])
    np.testing.assert_array_equal(jac, want)


@pytest.mark.parametrize("name", ["cummax", "cummin"])
@settings(max_examples=6)
@given(case=array_and_axis(min_side=1, distinct=True))
def test_cum_extremum_grads(name, case):
    x, axis, reverse = case
    check_grads(lambda x: _SCANS[name][0](x, axis, reverse), (x,), order=2)


def test_cummax_splits_tied_cotangents_like_jax_tree():
    # JAX differentiates cummax as an odd-even associative_scan of max, and max splits a
    # tie evenly. For n = 5 the tree pairs (x0, x1), (x2, x3); out3 = max(max(x0, x1),
    # max(x2, x3)) and out4 = max(out3, x4) tie x1 with x3 (1/2 each); out1 and out2 are x1.
    x = np.array([1.0, 3.0, 2.0, 3.0, 0.0])  # cummax: [1, 3, 3, 3, 3]
    ct = np.array([1.0, 10.0, 100.0, 1000.0, 10000.0])
    _, f_vjp = nanofn.vjp(lambda x: lax.cummax(x, 0), x)
    np.testing.assert_array_equal(_np(f_vjp(ct)[0]), [1.0, 10 + 100 + 500 + 5000, 0.0,
                                                      500 + 5000, 0.0])
    # reverse scans the flipped array: out3 and out2 are x3; out1 and out0 tie x1 with x3
    _, f_vjp = nanofn.vjp(lambda x: lax.cummax(x, 0, reverse=True), x)
    np.testing.assert_array_equal(_np(f_vjp(ct)[0]), [0.0, 0.5 + 5, 0.0, 0.5 + 5 + 100 + 1000,
                                                      10000.0])
    # forward mode agrees with reverse mode, also for cummin and under jit
    for fn in (lax.cummax, lax.cummin):
        for rev in (False, True):
            f = nanofn.jit(lambda v, fn=fn, rev=rev: fn(v, 0, reverse=rev))
            np.testing.assert_array_equal(_np(nanofn.jacfwd(f)(x)), _np(nanofn.jacrev(f)(x)))
    # three equal values: the tree gives out2 = max(max(x0, x1), x2)
    jac = nanofn.jacrev(lambda v: lax.cummin(v, 0))(np.full(3, 2.0))
    np.testing.assert_array_equal(_np(jac), [[1, 0, 0], [0.5, 0.5, 0], [0.25, 0.25, 0.5]])


@settings(max_examples=6)
@given(case=array_and_axis(min_side=1, distinct=True))
def test_sort_grads(case):
    x, axis, _ = case
    check_grads(lambda x: lax.sort(x, axis), (x,), order=2)
    payload = np.cos(x)
    check_grads(lambda p: lax.sort((x, p), axis)[1], (payload,), order=2)


def test_sort_vjp_puts_cotangents_back_where_elements_came_from():
    x = np.array([3.0, 1.0, 2.0])
    _, f_vjp = nanofn.vjp(lambda x: lax.sort(x), x)
    np.testing.assert_array_equal(_np(f_vjp(np.array([10.0, 20.0, 30.0]))[0]), [30.0, 10.0, 20.0])


def test_top_k_grads():
    x = np.array([[0.3, -1.2, 2.5, 0.9], [1.7, 0.1, -0.4, 1.1]])
    check_grads(lambda x: lax.top_k(x, 2)[0], (x,), order=2)


def test_rules_compose_under_jit():
    x = np.array([[0.5, -1.0, 0.0], [2.0, 1.5, -0.5]])

    def f(x):
        return (lax.reduce_prod(x, (1,)).sum() + lax.cumprod(x, 1).sum()
                + (lax.sort(x, 0) * x).sum() + lax.cummax(x, 1).sum())
    g = nanofn.grad(f)
    np.testing.assert_allclose(_np(nanofn.jit(g)(x)), _np(g(x)), rtol=1e-12)
    np.testing.assert_allclose(_np(nanofn.jit(f)(x)), _np(f(x)), rtol=1e-12)


# ------------------------------------------------------------------------ batching rules


def _batched_matches_loop(prim, args, dims, params):
    """prim's batching rule, on arguments batched along `dims`, equals binding per slice."""
    size = next(np.shape(a)[d] for a, d in zip(args, dims) if d is not None)
    out, out_dim = prim.batch(list(args), list(dims), **params)
    outs, out_dims = (out, out_dim) if prim.multiple_results else ([out], [out_dim])
    for i in range(size):
        sliced = [a if d is None else np.take(a, i, axis=d) for a, d in zip(args, dims)]
        want = prim.bind(*sliced, **params)
        want = want if prim.multiple_results else [want]
        for o, od, w in zip(outs, out_dims, want):
            got = _np(o) if od is None else np.take(_np(o), i, axis=od)
            np.testing.assert_array_equal(got, _np(w))


@given(st.data())
def test_batching_rules_match_a_loop(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    shape = data.draw(shapes(min_dims=1, max_dims=2, min_side=1, max_side=4))
    size = data.draw(st.integers(0, 3))
    bdim = data.draw(st.integers(0, len(shape)))
    axis = data.draw(st.integers(0, len(shape) - 1))
    reverse = data.draw(st.booleans())
    x = rng.integers(-3, 4, size=shape[:bdim] + (size,) + shape[bdim:]).astype(np.float64)
    for prim in (R.cumsum_p, R.cumprod_p, R.cummax_p, R.cummin_p):
        _batched_matches_loop(prim, (x,), (bdim,), {"axis": axis, "reverse": reverse})
    _batched_matches_loop(R.reduce_prod_p, (x,), (bdim,), {"axes": (axis,)})
    sort_params = {"dimension": axis, "is_stable": True, "num_keys": 1}
    _batched_matches_loop(R.sort_p, (x, x * 2), (bdim, bdim), sort_params)
    if size:  # an unbatched operand is broadcast along the batch
        y = rng.normal(size=shape)
        _batched_matches_loop(R.sort_p, (x, y), (bdim, None), sort_params)
        _batched_matches_loop(R.sort_p, (y, x), (None, bdim), sort_params)


# ------------------------------------------------------------------------ errors


def test_shape_rules_name_the_problem():
    with pytest.raises(ValueError, match="reduce_prod: axes"):
        R.reduce_prod_p.bind(np.ones((2, 3)), axes=(2,))
    with pytest.raises(ValueError, match="cumsum: axis 2 is out of range"):
        R.cumsum_p.bind(np.ones((2, 3)), axis=2, reverse=False)
    with pytest.raises(ValueError, match="cumprod: axis 5 is out of range"):
        lax.cumprod(np.ones(3), axis=5)
    with pytest.raises(TypeError, match="cumsum does not accept booleans"):
        nanofn.jit(lambda x: lax.cumsum(x))(np.array([True, False]))
    with pytest.raises(ValueError, match="sort: every operand must have one shape"):
        lax.sort((np.ones(3), np.ones(4)))
    with pytest.raises(ValueError, match="num_keys=3"):
        lax.sort((np.ones(3), np.ones(3)), num_keys=3)
    with pytest.raises(ValueError, match="at least one dimension"):
        lax.sort(np.float64(1.0))
    with pytest.raises(ValueError, match="top_k: k=4"):
        lax.top_k(np.ones(3), 4)


@given(st.data(), st.sampled_from([np.float32, np.float64, np.int32, np.complex64]))
def test_reduce_sum_over_leading_axes_as_a_product_with_ones(data, dtype):
    # `sum_np` (reduce_sum's impl and the jit plan's) turns sums over leading axes of a
    # C-contiguous float array into `ones @ x`; any layout, axes and dtype must still give
    # numpy's sum, also into a given `out`, eagerly and under jit
    from nanofn.ops._base import sum_np
    shape = data.draw(shapes(min_dims=1, max_dims=4, min_side=0, max_side=9), label="shape")
    k = data.draw(st.integers(0, len(shape)), label="leading axes")
    axes = tuple(range(k)) if data.draw(st.booleans(), label="leading") else tuple(
        sorted(data.draw(st.sets(st.integers(0, len(shape) - 1)), label="axes")))
    x = np.random.default_rng(data.draw(st.integers(0, 99), label="seed")).uniform(
        -3, 3, size=shape).astype(dtype)
    if data.draw(st.booleans(), label="transposed") and x.ndim > 1:
        x = x.T
    want = np.add.reduce(x.astype(np.float64 if dtype != np.complex64 else dtype), axis=axes)
    tol = dict(rtol=1e-5, atol=1e-4) if dtype in (np.float32, np.complex64) else dict(
        rtol=1e-12, atol=1e-12)
    got = sum_np(x, axes)
    assert got.shape == want.shape and got.dtype == x.dtype
    np.testing.assert_allclose(got, want, **tol)
    out = np.empty(want.shape, x.dtype)
    assert sum_np(x, axes, out=out) is out
    np.testing.assert_allclose(out, want, **tol)
    np.testing.assert_allclose(nanofn.jit(lambda a: lax.reduce_sum(a * 1, axes))(x), want,
                               **tol)


# ------------------------------------------------------- lax.reduce with any computation


@given(array_and_axes(min_side=0))
def test_reduce_with_a_general_computation_matches_numpy(xa):
    # logaddexp and a maximum that is not lax.max take the pairwise-tree path
    x, axes = xa
    got = lax.reduce(x, -np.inf, nanofn.numpy.logaddexp, axes)
    np.testing.assert_allclose(_np(got), np.logaddexp.reduce(x, axis=axes) if axes else
                               np.logaddexp(x, -np.inf), rtol=1e-12)
    got = lax.reduce(x, -np.inf, lambda a, b: nanofn.numpy.maximum(a, b), axes)
    want = np.max(x, axis=axes, initial=-np.inf) if x.size or axes else x
    np.testing.assert_array_equal(_np(got), want)


@given(array_and_axis(min_side=1))
def test_variadic_reduce_computes_argmax_with_first_index(xa):
    x, axis, _ = xa
    x = np.round(x)  # ties, so the first index must win

    def larger(a, b):
        take_a = (a[0] > b[0]) | ((a[0] == b[0]) & (a[1] < b[1]))
        return (nanofn.numpy.where(take_a, a[0], b[0]), nanofn.numpy.where(take_a, a[1], b[1]))

    idx = lax.broadcasted_iota(np.int32, x.shape, axis % x.ndim)
    for fn in (lambda x, i: lax.reduce((x, i), (-np.inf, np.int32(2**31 - 1)), larger, (axis,)),
               nanofn.jit(lambda x, i: lax.reduce((x, i), (-np.inf, np.int32(2**31 - 1)),
                                                  larger, (axis,)))):
        vals, where = fn(x, idx)
        np.testing.assert_array_equal(_np(vals), x.max(axis))
        np.testing.assert_array_equal(_np(where), x.argmax(axis))


def test_general_reduce_of_nothing_is_the_init_and_errors_name_the_problem():
    empty = np.zeros((0, 3))
    got = lax.reduce(empty, 5.0, lambda a, b: a + b + 0.0, (0,))
    np.testing.assert_array_equal(_np(got), [5.0, 5.0, 5.0])
    with pytest.raises(ValueError, match="2 operands but 1 init_values"):
        lax.reduce((empty, empty), (0.0,), lambda a, b: a, (0,))
    with pytest.raises(ValueError, match="one shape"):
        lax.reduce((np.ones(2), np.ones(3)), (0.0, 0.0), lambda a, b: a, (0,))
    with pytest.raises(ValueError, match="dimension 2 is out of range"):
        lax.reduce(np.ones((2, 2)), 0.0, lambda a, b: a + b, (2,))
    with pytest.raises(TypeError, match="computation returned 1 results for 2 operands"):
        lax.reduce((np.ones(3), np.ones(3)), (0.0, 0.0), lambda a, b: (a[0],), (0,))


def test_general_reduce_gradients_and_vmap():
    x = np.random.default_rng(3).uniform(-1, 1, size=(3, 5))
    smooth_max = lambda x: lax.reduce(x, -np.inf, nanofn.numpy.logaddexp, (1,))
    check_grads(smooth_max, (x,), order=2)
    np.testing.assert_allclose(_np(nanofn.vmap(smooth_max)(np.stack([x, 2 * x]))),
                               np.stack([np.logaddexp.reduce(x, 1),
                                         np.logaddexp.reduce(2 * x, 1)]), rtol=1e-12)


@given(array_and_axes(min_side=0), st.sampled_from([np.int8, np.int32, np.uint16]))
def test_reduce_and_or_are_bitwise_on_integers(xa, dtype):
    x, axes = xa
    x = (x * 40).astype(dtype)
    np.testing.assert_array_equal(_np(lax.reduce_and(x, axes)),
                                  np.bitwise_and.reduce(x, axis=axes) if axes else x)
    np.testing.assert_array_equal(_np(lax.reduce_or(x, axes)),
                                  np.bitwise_or.reduce(x, axis=axes) if axes else x)
    with pytest.raises(TypeError, match="reduce_and: needs booleans or integers, got float64"):
        lax.reduce_and(x.astype(np.float64), axes)
