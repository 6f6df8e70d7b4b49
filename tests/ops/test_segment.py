"""jax.ops's segment reductions against numpy's unbuffered `ufunc.at`, with gradients."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import ops
from nanofn.testing import check_grads

KINDS = {"segment_sum": (np.add, 0.0), "segment_prod": (np.multiply, 1.0),
         "segment_max": (np.maximum, -np.inf), "segment_min": (np.minimum, np.inf)}


def reference(name, data, ids, n, clip=False):
    ufunc, init = KINDS[name]
    out = np.full((n,) + data.shape[ids.ndim:], init, data.dtype)
    ids = np.clip(ids, 0, n - 1) if clip else ids
    keep = (ids >= 0) & (ids < n)
    ufunc.at(out, ids[keep], data[keep])
    return out


@st.composite
def segment_case(draw):
    ids_shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    row = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    n = draw(st.integers(1, 5))
    ids = np.array(draw(st.lists(st.integers(-1, n), min_size=int(np.prod(ids_shape)),
                                 max_size=int(np.prod(ids_shape)))), np.int32)
    seed = draw(st.integers(0, 2**16))
    data = np.random.default_rng(seed).uniform(0.5, 2.0, ids_shape + row)
    return data, ids.reshape(ids_shape), n


@pytest.mark.parametrize("name", sorted(KINDS))
@given(case=segment_case(), clip=st.booleans())
@settings(max_examples=15, deadline=None)
def test_segment_reductions_match_numpy(name, case, clip):
    data, ids, n = case
    fn = getattr(ops, name)
    mode = "clip" if clip else None
    want = reference(name, data, ids, n, clip)
    np.testing.assert_allclose(np.asarray(fn(data, ids, n, mode=mode)), want, rtol=1e-12)
    jitted = nanofn.jit(fn, static_argnames=("num_segments", "mode"))
    np.testing.assert_allclose(np.asarray(jitted(data, ids, num_segments=n, mode=mode)), want,
                               rtol=1e-12)
    if ids.ndim == 1:
        for bucket in (1, 2):
            np.testing.assert_allclose(np.asarray(fn(data, ids, n, bucket_size=bucket, mode=mode)),
                                       want, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(KINDS))
@given(case=segment_case())
@settings(max_examples=8, deadline=None)
def test_segment_reduction_gradients(name, case):
    data, ids, n = case  # ties are unlikely with continuous data; repeats are common

    def f(d):  # empty max/min segments hold -inf/inf, which finite differences cannot take
        out = getattr(ops, name)(d, ids, n)
        return fnp.where(fnp.isfinite(out), out, 0.0)
    check_grads(f, (data,), order=2)


def test_segment_sum_default_length_and_empty_segments():
    out = ops.segment_sum(fnp.arange(5), fnp.array([0, 0, 3, 3, 4]))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(out), [1, 0, 0, 5, 4])
    mx = ops.segment_max(np.array([1, 2], np.int32), np.array([0, 0]), 2)
    np.testing.assert_array_equal(np.asarray(mx), [2, np.iinfo(np.int32).min])


def test_segment_prod_gradient_with_a_zero_in_the_segment():
    d = np.array([2.0, 0.0, 5.0, 3.0])
    g = nanofn.grad(lambda d: fnp.sum(ops.segment_prod(d, np.array([0, 0, 0, 1]), 2)))(d)
    np.testing.assert_allclose(np.asarray(g), [0.0, 10.0, 0.0, 1.0])


def test_segment_sum_under_vmap_matches_a_loop():
    data = np.random.default_rng(0).normal(size=(3, 6, 2))
    ids = np.array([[0, 1, 1, 2, 0, 0], [2, 2, 2, 2, 2, 2], [0, 1, 2, 3, 3, 1]])
    got = nanofn.vmap(lambda d, i: ops.segment_sum(d, i, 4))(data, ids)
    for b in range(3):
        np.testing.assert_allclose(np.asarray(got[b]), reference("segment_sum", data[b],
                                                                 ids[b], 4))


def test_segment_errors_name_the_argument():
    with pytest.raises(TypeError, match="segment_ids must be integers, got dtype float32"):
        ops.segment_sum(np.ones(3), np.array([0.0, 1.0, 1.0], np.float32))
    with pytest.raises(ValueError, match=r"segment_ids of shape \(2,\) must match .* \(3, 2\)"):
        ops.segment_max(np.ones((3, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match="num_segments must be non-negative, got -1"):
        ops.segment_min(np.ones(3), np.array([0, 1, 1]), -1)
    with pytest.raises(nanofn.errors.ConcretizationTypeError, match="num_segments"):
        nanofn.jit(ops.segment_sum)(np.ones(3), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="bucket_size must be positive"):
        ops.segment_sum(np.ones(3), np.array([0, 1, 1]), bucket_size=0)
