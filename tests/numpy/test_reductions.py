"""numpy-level products, cumulative ops, sorting, statistics and einsum: numpy semantics
(axis None / negative / tuple, keepdims, dtypes) against numpy itself, and gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nanofn
import nanofn.numpy
from nanofn.numpy import _reductions as fnp
from nanofn.testing import check_grads, shapes


def _np(x):
    return np.asarray(x)


@st.composite
def array_and_axis(draw, min_dims=0, min_side=0, max_side=4, ints=False):
    shape = draw(shapes(min_dims=min_dims, max_dims=3, min_side=min_side, max_side=max_side))
    nd = len(shape)
    choices = [st.none()]
    if nd:
        choices += [st.integers(-nd, nd - 1),
                    st.lists(st.integers(0, nd - 1), unique=True).map(tuple)]
    axis = draw(st.one_of(*choices))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.integers(-3, 4, size=shape).astype(np.int32) if ints else rng.uniform(-2, 2, size=shape)
    return x, axis, draw(st.booleans())


# ------------------------------------------------------------------------ products, scans


@given(array_and_axis())
def test_prod_matches_numpy(case):
    x, axis, keepdims = case
    got = fnp.prod(x, axis=axis, keepdims=keepdims)
    want = np.prod(x, axis=axis, keepdims=keepdims)
    assert got.shape == want.shape
    np.testing.assert_allclose(_np(got), want, rtol=1e-12)


def test_prod_dtypes_initial_where():
    assert fnp.prod(np.array([True, True])).dtype == np.int32
    assert fnp.prod(np.array([2, 3], np.int8)).dtype == np.int32
    assert fnp.prod(np.array([2, 3], np.uint8)).dtype == np.uint32
    assert fnp.prod(np.array([2.0, 3.0], np.float32)).dtype == np.float32
    assert fnp.prod(np.array([2, 3]), dtype=np.float64).dtype == np.float64
    assert float(fnp.prod(np.array([2.0, 3.0]), initial=5.0)) == 30.0
    assert float(fnp.prod(np.array([2.0, 3.0, 4.0]), where=np.array([True, False, True]))) == 8.0
    assert float(fnp.nanprod(np.array([2.0, np.nan, 4.0]))) == 8.0


@given(array_and_axis(min_dims=1, ints=True))
def test_cumulative_match_numpy(case):
    x, axis, _ = case
    if isinstance(axis, tuple):
        axis = axis[0] if axis else None
    for ours, theirs in ((fnp.cumsum, np.cumsum), (fnp.cumprod, np.cumprod)):
        got, want = ours(x, axis=axis), theirs(x, axis=axis)
        assert got.shape == want.shape and got.dtype == np.int32
        np.testing.assert_array_equal(_np(got), want)


def test_cumulative_variants():
    x = np.array([[1.0, np.nan], [2.0, 3.0]])
    np.testing.assert_array_equal(_np(fnp.nancumsum(x, axis=1)), np.nancumsum(x, axis=1))
    np.testing.assert_array_equal(_np(fnp.nancumprod(x)), np.nancumprod(x))
    assert fnp.cumsum(np.array([True, True])).dtype == np.int32
    np.testing.assert_array_equal(_np(fnp.cumsum(np.float64(2.0))), [2.0])
    np.testing.assert_array_equal(
        _np(fnp.cumulative_sum(np.array([[1, 2], [3, 4]]), axis=1, include_initial=True)),
        [[0, 1, 3], [0, 3, 7]])
    np.testing.assert_array_equal(_np(fnp.cumulative_prod(np.array([2, 3]))), [2, 6])
    with pytest.raises(ValueError, match="axis must be given"):
        fnp.cumulative_sum(np.ones((2, 2)))


@settings(max_examples=6)
@given(array_and_axis(min_dims=1, min_side=1, max_side=3))
def test_prod_and_cumprod_grads(case):
    x, axis, keepdims = case
    check_grads(lambda x: fnp.prod(x, axis=axis, keepdims=keepdims), (x,), order=2)
    ax = axis if not isinstance(axis, tuple) else (axis[0] if axis else None)
    check_grads(lambda x: fnp.cumprod(x, axis=ax), (x,), order=2)


def test_prod_grad_with_zero():
    x = np.array([[2.0, 0.0, 3.0], [1.0, 2.0, 4.0]])
    g = _np(nanofn.grad(lambda x: fnp.prod(x))(x))
    np.testing.assert_array_equal(g, [[0.0, 48.0, 0.0], [0.0, 0.0, 0.0]])


# ------------------------------------------------------------------------ sorting


@given(st.data())
def test_sort_and_argsort_match_numpy(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=5))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.integers(0, 3, size=shape).astype(np.float64)  # ties test stability
    x[rng.random(shape) < 0.1] = np.nan
    np.testing.assert_array_equal(_np(fnp.sort(x, axis=axis)), np.sort(x, axis=axis))
    np.testing.assert_array_equal(_np(fnp.argsort(x, axis=axis)),
                                  np.argsort(x, axis=axis, kind="stable"))
    # descending: NaNs first, equal elements keep their order
    ax = -1 if axis is None else axis
    flat = x.ravel() if axis is None else x
    want_idx = np.flip(np.argsort(np.flip(flat, ax), axis=ax, kind="stable"), ax)
    want_idx = flat.shape[ax] - 1 - want_idx
    np.testing.assert_array_equal(_np(fnp.argsort(x, axis=axis, descending=True)), want_idx)
    np.testing.assert_array_equal(_np(fnp.sort(x, axis=axis, descending=True)),
                                  np.take_along_axis(flat, want_idx, axis=ax))


@given(st.data())
@settings(max_examples=30)
def test_complex_sort_orders_by_real_then_imaginary_part_as_numpy(data):
    shape = data.draw(shapes(min_dims=1, max_dims=2, max_side=6))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    z = rng.integers(-1, 2, size=shape) + 1j * rng.integers(-1, 2, size=shape)  # many ties
    np.testing.assert_array_equal(_np(fnp.sort(z, axis=axis)), np.sort(z, axis=axis))
    np.testing.assert_array_equal(_np(fnp.argsort(z, axis=axis)),
                                  np.argsort(z, axis=axis, kind="stable"))
    flat = z.ravel() if axis is None else z
    ax = -1 if axis is None else axis
    np.testing.assert_array_equal(_np(fnp.sort(z, axis=axis, descending=True)),
                                  np.flip(np.sort(flat, axis=ax), ax))
    check_grads(lambda v: fnp.sort(v * (1 + 0.5j), axis=axis),
                (rng.normal(size=shape),), order=1)


def test_descending_integers_and_bools():
    i = np.array([0, -2147483648, 7, 7, 2147483647], np.int32)
    np.testing.assert_array_equal(_np(fnp.sort(i, descending=True)), np.sort(i)[::-1])
    np.testing.assert_array_equal(_np(fnp.argsort(i, descending=True)), [4, 2, 3, 0, 1])
    b = np.array([False, True, False])
    np.testing.assert_array_equal(_np(fnp.sort(b, descending=True)), [True, False, False])


def test_lexsort_matches_numpy():
    rng = np.random.default_rng(0)
    keys = (rng.integers(0, 3, 20), rng.integers(0, 3, 20), rng.normal(size=20))
    np.testing.assert_array_equal(_np(fnp.lexsort(keys)), np.lexsort(keys))


def test_sort_grad():
    x = np.array([[0.3, -1.0, 2.0], [1.5, 0.2, -0.7]])
    check_grads(lambda x: fnp.sort(x, axis=None, descending=True), (x,), order=2)
    w = np.arange(6.0).reshape(2, 3)
    g = _np(nanofn.grad(lambda x: (fnp.sort(x, axis=1) * w).sum())(x))
    ranks = np.argsort(np.argsort(x, axis=1), axis=1)
    np.testing.assert_array_equal(g, np.take_along_axis(w, ranks, axis=1))


# ------------------------------------------------------------------------ statistics


@given(array_and_axis(min_side=1))
def test_statistics_match_numpy(case):
    x, axis, keepdims = case
    for ours, theirs in ((fnp.ptp, np.ptp), (fnp.median, np.median), (fnp.nansum, np.nansum),
                         (fnp.nanmean, np.nanmean), (fnp.nanmax, np.nanmax),
                         (fnp.nanmin, np.nanmin), (fnp.nanvar, np.nanvar)):
        got, want = ours(x, axis=axis, keepdims=keepdims), theirs(x, axis=axis, keepdims=keepdims)
        assert got.shape == np.shape(want), ours.__name__
        np.testing.assert_allclose(_np(got), want, rtol=1e-12, atol=1e-12, err_msg=ours.__name__)
    got = fnp.count_nonzero(np.round(x), axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(_np(got), np.count_nonzero(np.round(x), axis=axis,
                                                             keepdims=keepdims))


@pytest.mark.parametrize("method", ["linear", "lower", "higher", "nearest", "midpoint"])
def test_quantile_methods_match_numpy(method):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 7))
    q = np.array([0.0, 0.1, 0.25, 0.5, 0.9, 1.0])
    np.testing.assert_allclose(_np(fnp.quantile(x, q, axis=1, method=method)),
                               np.quantile(x, q, axis=1, method=method), rtol=1e-12)
    np.testing.assert_allclose(_np(fnp.percentile(x, 30.0, axis=(0, 1), method=method,
                                                  keepdims=True)),
                               np.percentile(x, 30.0, axis=(0, 1), method=method,
                                             keepdims=True), rtol=1e-12)


def test_quantile_nan_empty_and_ints():
    assert np.isnan(float(fnp.median(np.array([1.0, np.nan, 3.0]))))
    assert np.isnan(float(fnp.median(np.zeros(0))))
    m = fnp.median(np.array([1, 2, 3, 4]))
    assert m.dtype == np.float32 and float(m) == 2.5


def test_quantile_grads():
    x = np.array([[0.3, -1.0, 2.0, 0.8], [1.5, 0.2, -0.7, 0.1]])
    check_grads(lambda x: fnp.median(x, axis=1), (x,), order=2)
    check_grads(lambda x, q: fnp.quantile(x, q, axis=0), (x, np.array([0.2, 0.7])), order=1)


def test_average_matches_numpy():
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(3, 4)), rng.uniform(0.5, 2, size=(3, 4))
    np.testing.assert_allclose(_np(fnp.average(x, weights=w)), np.average(x, weights=w))
    np.testing.assert_allclose(_np(fnp.average(x, axis=1, weights=w[0])),
                               np.average(x, axis=1, weights=w[0]))
    avg, total = fnp.average(x, axis=0, weights=w, returned=True)
    want_avg, want_total = np.average(x, axis=0, weights=w, returned=True)
    np.testing.assert_allclose(_np(avg), want_avg)
    np.testing.assert_allclose(_np(total), want_total)
    np.testing.assert_allclose(_np(fnp.average(x, axis=(0, 1), keepdims=True)),
                               np.average(x, axis=(0, 1), keepdims=True))
    check_grads(lambda x, w: fnp.average(x, axis=1, weights=w), (x, w), order=2)
    with pytest.raises(ValueError, match="1-d weights need the length"):
        fnp.average(x, axis=1, weights=np.ones(3))


def test_cov_and_corrcoef_match_numpy():
    rng = np.random.default_rng(3)
    m, y = rng.normal(size=(3, 6)), rng.normal(size=(6,))
    np.testing.assert_allclose(_np(fnp.cov(m)), np.cov(m), rtol=1e-12)
    np.testing.assert_allclose(_np(fnp.cov(m.T, rowvar=False, bias=True)),
                               np.cov(m.T, rowvar=False, bias=True), rtol=1e-12)
    fw, aw = np.array([1, 2, 1, 3, 1, 1]), rng.uniform(0.5, 2, 6)
    np.testing.assert_allclose(_np(fnp.cov(m, fweights=fw, aweights=aw)),
                               np.cov(m, fweights=fw, aweights=aw), rtol=1e-12)
    np.testing.assert_allclose(_np(fnp.cov(m[0], y)), np.cov(m[0], y), rtol=1e-12)
    np.testing.assert_allclose(_np(fnp.corrcoef(m)), np.corrcoef(m), rtol=1e-12)


@given(st.integers(1, 4), st.integers(2, 7), st.integers(0, 2**31 - 1), st.booleans())
def test_cov_and_corrcoef_of_complex_variables_match_numpy(nvars, nobs, seed, weighted):
    # c[i, j] = sum_k x[i, k] conj(x[j, k]): the conjugate goes on the second factor
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(nvars, nobs)) + 1j * rng.normal(size=(nvars, nobs))
    y = rng.normal(size=nobs)  # a real variable beside them
    kw = {"aweights": rng.uniform(0.5, 2, nobs)} if weighted else {}
    np.testing.assert_allclose(_np(fnp.cov(m, **kw)), np.cov(m, **kw), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(fnp.cov(m.T, y, rowvar=False)), np.cov(m.T, y, rowvar=False),
                               rtol=1e-10, atol=1e-12)
    got = _np(fnp.corrcoef(m, y))
    np.testing.assert_allclose(got, np.corrcoef(m, y), rtol=1e-10, atol=1e-12)
    assert np.all(np.abs(got.real) <= 1) and np.all(np.abs(got.imag) <= 1)
    assert fnp.cov(y).dtype == fnp.corrcoef(np.stack([y, y[::-1]])).dtype == np.float64


@given(shapes(min_dims=1, max_dims=2, min_side=1, max_side=5), st.integers(0, 2**31 - 1),
       st.sampled_from([0, 1]))
def test_nanvar_and_nanstd_of_complex_values_are_real(shape, seed, ddof):
    # |x - mean|^2, as numpy and JAX (this squared x - mean, a complex number)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    x[rng.random(shape) < 0.3] = np.nan
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's warnings for all-NaN slices
        for axis in (None, -1):
            want = np.nanvar(x, axis=axis, ddof=ddof)
            got = _np(fnp.nanvar(x, axis=axis, ddof=ddof))
            assert got.dtype == np.float64
            np.testing.assert_allclose(got, want, rtol=1e-10, equal_nan=True)
            np.testing.assert_allclose(_np(fnp.nanstd(x, axis=axis, ddof=ddof)),
                                       np.nanstd(x, axis=axis, ddof=ddof), rtol=1e-10,
                                       equal_nan=True)


def test_an_integer_dtype_gives_an_integer_mean():
    # numpy and JAX: the mean computed, then truncated to the integer dtype asked for
    x = np.array([[1, 2, 4], [3, 5, -8]], np.int8)
    for a in (x, x + 0.5):
        got = nanofn.numpy.mean(a, axis=1, dtype=np.int32)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(_np(got), np.mean(a, axis=1, dtype=np.int32))
    assert nanofn.numpy.mean(x, dtype=np.float32).dtype == np.float32


# ------------------------------------------------------------------------ einsum

_EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("ij->", [(2, 3)]), ("i,j->ij", [(2,), (3,)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("ij...,jk", [(2, 3, 5), (3, 4)]), ("...ii->...i", [(4, 3, 3)]), ("iij->j", [(3, 3, 2)]),
    ("ijk,jil->kl", [(2, 3, 4), (3, 2, 5)]), ("i,i,i->i", [(3,), (3,), (3,)]), ("ij->ji", [(2, 3)]),
    ("", [()]), (",->", [(), ()]), ("i->", [(0,)]), ("ij,jk->ik", [(2, 0), (0, 3)]),
    ("ij,ij->", [(1, 3), (2, 3)]), ("Ab,bC", [(2, 3), (3, 4)]), ("i,i", [(1,), (3,)]),
    ("ijk,kl,lm,ij->m", [(2, 3, 4), (4, 2), (2, 3), (2, 3)]), ("...,...", [(2, 1), (3,)]),
    ("bi,bi->b", [(4, 3), (4, 3)]), ("ij,ij->ij", [(2, 3), (2, 3)]),
]


@pytest.mark.parametrize("spec,shapes_", _EINSUM_CASES)
def test_einsum_matches_numpy(spec, shapes_):
    rng = np.random.default_rng(4)
    ops = [rng.normal(size=s) for s in shapes_]
    got, want = fnp.einsum(spec, *ops), np.einsum(spec, *ops)
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(_np(got), want, rtol=1e-12, atol=1e-12)


@given(st.data())
def test_einsum_random_contractions_match_numpy(data):
    letters = "abcde"
    sizes = {c: data.draw(st.integers(1, 3), label=c) for c in letters}
    n_ops = data.draw(st.integers(1, 3))
    terms = [data.draw(st.lists(st.sampled_from(letters), max_size=3)) for _ in range(n_ops)]
    used = sorted({c for t in terms for c in t})
    out = data.draw(st.permutations(used).map(lambda p: p[:data.draw(st.integers(0, len(p)))]))
    spec = ",".join("".join(t) for t in terms) + "->" + "".join(out)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    ops = [rng.normal(size=[sizes[c] for c in t]) for t in terms]
    np.testing.assert_allclose(_np(fnp.einsum(spec, *ops)), np.einsum(spec, *ops), rtol=1e-10,
                               atol=1e-12, err_msg=spec)


def test_einsum_interleaved_dtypes_and_errors():
    a, b = np.ones((2, 3)), np.ones((3, 4))
    np.testing.assert_array_equal(_np(fnp.einsum(a, [0, 1], b, [1, 2], [0, 2])),
                                  np.einsum(a, [0, 1], b, [1, 2], [0, 2]))
    i = np.arange(6, dtype=np.int32).reshape(2, 3)
    assert fnp.einsum("ij,ij->i", i, i).dtype == np.int32
    assert fnp.einsum("ij,j->i", i, np.ones(3, np.float32)).dtype == np.float32
    assert fnp.einsum("ij->i", i, preferred_element_type=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="name 2 operand"):
        fnp.einsum("ij,jk", a)
    with pytest.raises(ValueError, match="label 'j' has sizes 3 and 4"):
        fnp.einsum("ij,jk", a, np.ones((4, 2)))
    # an output without '...' sums the ellipsis dimensions away, as JAX does
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_allclose(fnp.einsum("...i->i", x), x.reshape(-1, 4).sum(0))
    assert fnp.einsum("...ij,...jk->ik", x, np.ones((2, 4, 5))).shape == (3, 5)
    with pytest.raises(ValueError, match="does not appear in any input"):
        fnp.einsum("ij->k", a)
    with pytest.raises(ValueError, match="has shape"):
        fnp.einsum("ijk", a)


@pytest.mark.parametrize("spec,shapes_", [
    ("ij,jk->ik", [(2, 3), (3, 2)]), ("ii->i", [(3, 3)]), ("ii", [(3, 3)]),
    ("bij,bjk,bk->bi", [(2, 2, 3), (2, 3, 2), (2, 2)]), ("i,j->ij", [(2,), (3,)]),
])
def test_einsum_grads(spec, shapes_):
    rng = np.random.default_rng(5)
    ops = tuple(rng.normal(size=s) for s in shapes_)
    check_grads(lambda *ops: fnp.einsum(spec, *ops), ops, order=2)


def test_einsum_diagonal_ignores_inf_off_the_diagonal():
    x = np.array([[1.0, np.inf], [np.inf, 2.0]])
    np.testing.assert_array_equal(_np(fnp.einsum("ii->i", x)), [1.0, 2.0])


def test_einsum_under_jit():
    a, b = np.ones((2, 3)), np.arange(12.0).reshape(3, 4)
    f = nanofn.jit(lambda a, b: fnp.einsum("ij,jk->ki", a, b))
    np.testing.assert_array_equal(_np(f(a, b)), np.einsum("ij,jk->ki", a, b))


def test_nan_reductions_have_finite_gradients_equal_to_those_without_the_nans():
    import nanofn.numpy as jnp
    x = np.array([[1.0, np.nan, 3.0, 0.5], [np.nan, 2.0, -1.0, 4.0]])
    valid = ~np.isnan(x)
    for nan_fn, fn in [(jnp.nanmean, jnp.mean), (jnp.nanvar, jnp.var), (jnp.nanstd, jnp.std),
                       (jnp.nansum, jnp.sum)]:
        g = _np(nanofn.grad(lambda v: nan_fn(v, axis=1).sum())(x))
        want = _np(nanofn.grad(lambda v: fn(v, axis=1, where=valid).sum())(
            np.where(valid, x, 0.0)))
        np.testing.assert_allclose(g, np.where(valid, want, 0.0), rtol=1e-12)


def test_variance_with_too_few_elements_is_nan_as_in_jax():
    import nanofn.numpy as jnp
    x = np.array([[1.0, 3.0], [2.0, 2.0]])
    for ddof, want in [(1, [2.0, 0.0]), (2, [np.nan, np.nan]), (3, [np.nan, np.nan])]:
        np.testing.assert_array_equal(_np(jnp.var(x, axis=1, ddof=ddof)), want)
        np.testing.assert_array_equal(_np(jnp.nanvar(x, axis=1, ddof=ddof)), want)
        np.testing.assert_array_equal(_np(nanofn.jit(lambda v: jnp.var(v, axis=1, ddof=ddof))(x)),
                                      want)
    mask = np.array([[True, False], [True, True]])
    np.testing.assert_array_equal(_np(jnp.var(x, axis=1, ddof=1, where=mask)), [np.nan, 0.0])
    g = _np(nanofn.grad(lambda v: jnp.var(v, axis=1, ddof=1, where=mask)[1])(x))
    np.testing.assert_array_equal(g, [[0.0, 0.0], [0.0, 0.0]])  # finite, though row 0 is nan
