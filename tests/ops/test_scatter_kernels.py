"""The numba kernel behind `scatter` with combine="add" (the transpose of gather, `take` and
`x[idx]`) against its numpy reference (`np.add.at`) and an independent loop.

Cases cover repeated indices (they accumulate), out-of-bounds indices (dropped, as the
primitive specifies), size-0 operands, batches and update rows, non-contiguous and
negative-stride inputs, every dtype the kernel is compiled for, the dtypes that fall back
to numpy, the config switch, and the gradient of an embedding lookup.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.ops import _shape as S
from nanofn.testing import shapes

KERNEL_DTYPES = [np.float32, np.float64, np.int32, np.int64, np.complex64, np.complex128]


def loop_scatter_add(x, idx, upd):
    """Independent reference: one Python loop over the index rows."""
    out = np.array(x, copy=True)
    k = idx.shape[-1]
    for b in np.ndindex(*idx.shape[:-1]):
        point = tuple(int(i) for i in idx[b])
        if all(0 <= i < n for i, n in zip(point, x.shape[:k])):
            out[point] = out[point] + upd[b]
    return out


def values(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return rng.integers(-50, 50, size=shape).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


@st.composite
def cases(draw, dtype=None):
    """(operand, indices, updates): sides may be 0; indices repeat and stray out of bounds."""
    shape = draw(shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    k = draw(st.integers(0, len(shape)))
    batch = draw(shapes(max_dims=2, min_side=0, max_side=5))
    nb = int(np.prod(batch, dtype=np.int64))
    hi = max(shape[:k], default=1) + 1
    idx = np.asarray(draw(st.lists(st.integers(-2, hi), min_size=nb * k, max_size=nb * k)),
                     dtype=draw(st.sampled_from([np.int32, np.int64])))
    dtype = dtype or draw(st.sampled_from(KERNEL_DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    return (values(rng, shape, dtype), idx.reshape(batch + (k,)),
            values(rng, batch + shape[k:], dtype))


def assert_same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    if got.dtype.kind in "fc":
        tol = 1e-5 if got.dtype in (np.float32, np.complex64) else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


@given(case=cases())
def test_kernel_matches_reference_and_loop(case):
    x, idx, upd = case
    before = [a.copy() for a in case]
    got = S._scatter_add_fast(x, idx, upd)
    assert_same(got, S._scatter_reference(x, idx, upd, combine="add"))
    assert_same(got, loop_scatter_add(x, idx, upd))
    for a, b in zip(case, before):  # inputs are never written
        np.testing.assert_array_equal(a, b)


def strided(a, reverse):
    """The same values as `a`, as a view with stride 2 (or -1) along its first axis."""
    if a.ndim == 0:
        return a
    if reverse:
        return np.flip(np.flip(a, 0).copy(), 0)
    big = np.zeros((2 * a.shape[0],) + a.shape[1:], a.dtype)
    big[::2] = a
    return big[::2]


@given(case=cases(dtype=np.float64), rev=st.tuples(st.booleans(), st.booleans(),
                                                    st.booleans()))
def test_non_contiguous_and_negative_strides(case, rev):
    x, idx, upd = case
    views = [strided(a, r) for a, r in zip(case, rev)]
    for a, v in zip(case, views):
        np.testing.assert_array_equal(a, v)
    assert_same(S._scatter_add_fast(*views), loop_scatter_add(x, idx, upd))
    if upd.ndim >= 2:  # Fortran order
        assert_same(S._scatter_add_fast(x, idx, np.asfortranarray(upd)),
                    loop_scatter_add(x, idx, upd))


def test_repeated_indices_accumulate():
    x = np.zeros((4, 2), np.float32)
    idx = np.array([[1], [3], [1], [1], [5], [-1]], np.int32)  # 5 and -1: out of bounds
    upd = np.arange(12, dtype=np.float32).reshape(6, 2)
    got = S.scatter_p.bind(x, idx, upd, combine="add")
    want = np.array([[0, 0], [0 + 4 + 6, 1 + 5 + 7], [0, 0], [2, 3]], np.float32)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_points_in_several_axes_and_whole_array_updates():
    x = np.ones((2, 3, 2))
    idx = np.array([[0, 2], [1, 0], [0, 2], [2, 0], [0, 3]], np.int64)  # last two dropped
    upd = np.arange(10.0).reshape(5, 2)
    got = np.asarray(S.scatter_p.bind(x, idx, upd, combine="add"))
    want = np.ones((2, 3, 2))
    want[0, 2] += upd[0] + upd[2]
    want[1, 0] += upd[1]
    np.testing.assert_array_equal(got, want)
    # k == 0: every update row adds to the whole operand
    whole = S.scatter_p.bind(np.zeros(3), np.zeros((4, 0), np.int32), np.ones((4, 3)),
                             combine="add")
    np.testing.assert_array_equal(np.asarray(whole), np.full(3, 4.0))


def test_large_indices_are_dropped_not_wrapped():
    x = np.zeros(3)
    idx = np.array([[2**40], [-2**40], [2]], np.int64)
    got = S._scatter_add_fast(x, idx, np.ones(3))
    np.testing.assert_array_equal(got, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", [np.bool_, np.float16, np.int8])
def test_other_dtypes_use_numpy(dtype):
    x = np.zeros(3, dtype)
    idx = np.array([[0], [0], [2]], np.int32)
    upd = np.ones(3, dtype)
    got = np.asarray(S.scatter_p.bind(x, idx, upd, combine="add"))
    want = x.copy()
    np.add.at(want, idx[:, 0], upd)
    np.testing.assert_array_equal(got, want)


def test_config_switch_takes_the_reference(monkeypatch):
    def fail(*args):
        raise AssertionError("the kernel ran with kernels disabled")

    monkeypatch.setattr(S, "_scatter_add_fast", fail)
    x, idx, upd = np.zeros((3, 2)), np.array([[0], [0]], np.int32), np.ones((2, 2))
    with nanofn.config._override("nanofn_use_kernels", False):
        got = np.asarray(S.scatter_p.bind(x, idx, upd, combine="add"))
    np.testing.assert_array_equal(got, [[2, 2], [0, 0], [0, 0]])


def test_embedding_gradient_counts_repeats():
    rng = np.random.default_rng(1)
    table = rng.standard_normal((50, 8)).astype(np.float32)
    ids = rng.integers(0, 20, 300).astype(np.int32)  # many repeats
    w = rng.standard_normal((300, 8)).astype(np.float32)

    def loss(t):
        return fnp.sum(t[ids] * w)

    want = np.zeros((50, 8), np.float64)
    np.add.at(want, ids, w.astype(np.float64))
    for fn in (nanofn.grad(loss), nanofn.jit(nanofn.grad(loss))):
        for _ in range(2):  # jit: the plain plan, then the fused one
            np.testing.assert_allclose(np.asarray(fn(table)), want, rtol=1e-5, atol=1e-5)
    with nanofn.config._override("nanofn_use_kernels", False):
        np.testing.assert_allclose(np.asarray(nanofn.grad(loss)(table)), want, rtol=1e-5,
                                   atol=1e-5)
    # take along axis 1: nanofn.numpy moves the axis to the front and back
    g = nanofn.grad(lambda t: fnp.sum(fnp.take(t, ids[:10] % 8, axis=1)))(table)
    want_take = np.zeros((50, 8))
    np.add.at(want_take, (slice(None), ids[:10] % 8), 1.0)
    np.testing.assert_allclose(np.asarray(g), want_take)
