"""`lax.gather` and `lax.scatter*` with XLA's dimension numbers, against a reference that
follows XLA's definition one index vector at a time (plain numpy loops), with hypothesis
choosing the operand, the dimension numbers, the indices (in and out of bounds) and the
mode; and their gradients, `vmap` and `jit`."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import lax
from nanofn.testing import check_grads


# ------------------------------------------------------------------------ the reference


def _start(shape, sizes, vec, index_map, batch_pairs, b, mode):
    """The window's start in every operand axis, and whether it fits (XLA's rule)."""
    start = [0] * len(shape)
    for v, d in zip(vec, index_map):
        start[d] = int(v)
    for d, e in batch_pairs:
        start[d] = b[e]
    fits = all(0 <= start[d] <= shape[d] - sizes[d] for d in index_map)
    if mode == "clip" or (mode == "promise_in_bounds" and not fits):
        start = [min(max(s, 0), n - k) for s, n, k in zip(start, shape, sizes)]
    return start, fits


def ref_gather(x, idx, dn, slice_sizes, mode, fill):
    batch = idx.shape[:-1]
    window = [d for d in range(x.ndim)
              if d not in dn.collapsed_slice_dims and d not in dn.operand_batching_dims]
    wshape = tuple(slice_sizes[d] for d in window)
    out = np.empty(batch + wshape, x.dtype)
    pairs = list(zip(dn.operand_batching_dims, dn.start_indices_batching_dims))
    for b in np.ndindex(*batch):
        start, fits = _start(x.shape, slice_sizes, idx[b], dn.start_index_map, pairs, b, mode)
        if mode == "fill" and not fits:
            out[b] = fill
            continue
        sl = x[tuple(slice(s, s + k) for s, k in zip(start, slice_sizes))]
        out[b] = sl.reshape(wshape)
    rank = len(batch) + len(window)
    rest = iter(range(len(batch)))
    perm = [len(batch) + dn.offset_dims.index(p) if p in dn.offset_dims else next(rest)
            for p in range(rank)]
    return out.transpose(perm)


def ref_scatter(x, idx, upd, dn, combine, mode):
    out = x.copy()
    window_axes = list(dn.update_window_dims)
    scatter_axes = [a for a in range(upd.ndim) if a not in window_axes]
    upd = upd.transpose(scatter_axes + window_axes)
    batch = idx.shape[:-1]
    window = [d for d in range(x.ndim)
              if d not in dn.inserted_window_dims and d not in dn.operand_batching_dims]
    sizes = [1] * x.ndim
    for d, a in zip(window, window_axes):
        sizes[d] = upd.shape[len(batch) + window_axes.index(a)]
    pairs = list(zip(dn.operand_batching_dims, dn.scatter_indices_batching_dims))
    op = {"add": np.add, "mul": np.multiply, "min": np.minimum, "max": np.maximum}
    for b in np.ndindex(*batch):
        start, fits = _start(x.shape, sizes, idx[b], dn.scatter_dims_to_operand_dims, pairs,
                             b, "clip" if mode == "clip" else "drop")
        if mode != "clip" and not fits:
            continue
        for w in np.ndindex(*[sizes[d] for d in window]):
            pos = list(start)
            for d, o in zip(window, w):
                pos[d] += o
            pos = tuple(pos)
            u = upd[b + w]
            out[pos] = u if combine == "set" else op[combine](out[pos], u)
    return out


# ------------------------------------------------------------------------ strategies


@st.composite
def gathers(draw):
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    axes = list(range(rank))
    n_batching = draw(st.integers(0, min(1, rank - 1)))
    operand_batch = tuple(draw(st.permutations(axes))[:n_batching])
    free = [d for d in axes if d not in operand_batch]
    index_map = tuple(draw(st.permutations(free))[:draw(st.integers(1, len(free)))])
    collapsed = tuple(sorted(d for d in index_map if draw(st.booleans())))
    sizes = tuple(1 if d in collapsed or d in operand_batch else draw(st.integers(0, shape[d]))
                  for d in axes)
    batch_rank = draw(st.integers(n_batching, n_batching + 2))
    batch = list(draw(st.lists(st.integers(1, 3), min_size=batch_rank, max_size=batch_rank)))
    index_batch = tuple(draw(st.permutations(range(batch_rank)))[:n_batching])
    for d, e in zip(operand_batch, index_batch):
        batch[e] = shape[d]
    window = [d for d in axes if d not in collapsed and d not in operand_batch]
    out_rank = batch_rank + len(window)
    offset_dims = tuple(sorted(draw(st.permutations(range(out_rank)))[:len(window)]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    idx = rng.integers(-2, max(shape) + 2, size=tuple(batch) + (len(index_map),)).astype(
        np.int32)
    x = rng.normal(size=shape)
    dn = lax.GatherDimensionNumbers(offset_dims, collapsed, index_map, operand_batch,
                                    index_batch)
    return x, idx, dn, sizes


@st.composite
def scatters(draw):
    x, idx, gdn, sizes = draw(gathers())
    window = [d for d in range(x.ndim)
              if d not in gdn.collapsed_slice_dims and d not in gdn.operand_batching_dims]
    sizes = tuple(max(s, 1) for s in sizes)  # an empty window writes nothing: not drawn
    batch = idx.shape[:-1]
    urank = len(batch) + len(window)
    window_axes = tuple(sorted(draw(st.permutations(range(urank)))[:len(window)]))
    rest = iter(batch)
    ushape = tuple(sizes[window[window_axes.index(a)]] if a in window_axes else next(rest)
                   for a in range(urank))
    upd = np.random.default_rng(len(ushape)).normal(size=ushape)
    dn = lax.ScatterDimensionNumbers(window_axes, gdn.collapsed_slice_dims,
                                     gdn.start_index_map, gdn.operand_batching_dims,
                                     gdn.start_indices_batching_dims)
    return x, idx, upd, dn


# ------------------------------------------------------------------------ tests


@settings(max_examples=60, deadline=None)
@given(case=gathers(), mode=st.sampled_from([None, "clip", "fill", "promise_in_bounds"]))
def test_gather_matches_xlas_definition(case, mode):
    x, idx, dn, sizes = case
    want = ref_gather(x, idx, dn, sizes, "promise_in_bounds" if mode is None else mode, -5.0)
    got = lax.gather(x, idx, dn, sizes, mode=mode, fill_value=-5.0)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.asarray(got), want)
    jitted = nanofn.jit(lambda x, i: lax.gather(x, i, dn, sizes, mode=mode, fill_value=-5.0))
    np.testing.assert_array_equal(np.asarray(jitted(x, idx)), want)


@settings(max_examples=60, deadline=None)
@given(case=scatters(), combine=st.sampled_from(["set", "add", "mul", "min", "max"]),
       mode=st.sampled_from([None, "clip", "drop"]))
def test_scatter_matches_xlas_definition(case, combine, mode):
    x, idx, upd, dn = case
    if combine == "set":  # which of two updates of one element lands is not specified
        upd = np.full_like(upd, 3.5)
    fn = lax.scatter if combine == "set" else getattr(lax, f"scatter_{combine}")
    want = ref_scatter(x, idx, upd, dn, combine, mode)
    got = fn(x, idx, upd, dn, mode=mode)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    jitted = nanofn.jit(lambda x, u: fn(x, idx, u, dn, mode=mode))
    np.testing.assert_allclose(np.asarray(jitted(x, upd)), want, rtol=1e-12)


DN = lax.GatherDimensionNumbers(offset_dims=(0, 2), collapsed_slice_dims=(1,),
                                start_index_map=(0, 1))
SDN = lax.ScatterDimensionNumbers(update_window_dims=(0, 2), inserted_window_dims=(1,),
                                  scatter_dims_to_operand_dims=(0, 1))
X = np.random.default_rng(0).normal(size=(4, 6, 3))
IDX = np.array([[1, 5], [0, 2], [2, 1]], np.int32)  # in bounds: the gradients are smooth


def test_gradients_of_gather_and_scatter_match_finite_differences():
    check_grads(lambda x: lax.gather(x, IDX, DN, (2, 1, 3)), (X,), order=2)
    upd = np.random.default_rng(1).normal(size=(2, 3, 3))
    check_grads(lambda x, u: lax.scatter_add(x, IDX, u, SDN), (X, upd), order=2)
    check_grads(lambda x, u: lax.scatter(x, IDX, u, SDN), (X, upd), order=1)
    check_grads(lambda x, u: lax.scatter_sub(x, IDX, u, SDN), (X, upd), order=1)


def test_vmap_of_gather_and_scatter_equals_a_loop():
    xs = np.random.default_rng(2).normal(size=(5, 4, 6, 3))
    got = nanofn.vmap(lambda x: lax.gather(x, IDX, DN, (2, 1, 3)))(xs)
    want = np.stack([np.asarray(lax.gather(x, IDX, DN, (2, 1, 3))) for x in xs])
    np.testing.assert_array_equal(np.asarray(got), want)
    upd = np.random.default_rng(3).normal(size=(5, 2, 3, 3))
    got = nanofn.vmap(lambda x, u: lax.scatter_add(x, IDX, u, SDN))(xs, upd)
    want = np.stack([np.asarray(lax.scatter_add(x, IDX, u, SDN)) for x, u in zip(xs, upd)])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)


def test_scatter_apply_applies_once_per_write():
    dn = lax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=(0,),
                                     scatter_dims_to_operand_dims=(0,))
    got = lax.scatter_apply(np.arange(5.0), np.array([[1], [3], [1]]), lambda v: v * 2.0 + 1,
                            dn, update_shape=(3,))
    np.testing.assert_array_equal(np.asarray(got), [0.0, 7.0, 2.0, 7.0, 4.0])


def test_the_point_form_is_unchanged_and_modes_are_named():
    x = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(np.asarray(lax.gather(x, np.array([[2], [0]]))),
                                  x[[2, 0]])
    assert lax.GatherScatterMode.from_any("drop") is lax.GatherScatterMode.FILL_OR_DROP
    assert lax.GatherScatterMode.from_any(None) is lax.GatherScatterMode.FILL_OR_DROP
    got = lax.gather(x, np.array([[5]]), lax.GatherDimensionNumbers((1,), (0,), (0,)), (1, 2),
                     mode=lax.GatherScatterMode.FILL_OR_DROP)
    assert np.isnan(np.asarray(got)).all()


@pytest.mark.parametrize("call, match", [
    (lambda: lax.gather(X, IDX, DN, (2, 2, 3)), r"slice_sizes\[1\] must be 1"),
    (lambda: lax.gather(X, IDX, DN, (2, 1)), "one entry per axis"),
    (lambda: lax.gather(X, IDX[:, :1], DN, (2, 1, 3)), "one entry per axis of the index map"),
    (lambda: lax.gather(X, IDX, DN._replace(offset_dims=(0,)), (2, 1, 3)), "offset_dims"),
    (lambda: lax.gather(X, IDX, DN, None), "go together"),
    (lambda: lax.gather(X, IDX, DN, (2, 1, 3), mode="wrap"), "Unknown gather mode"),
    (lambda: lax.scatter_add(X, IDX, np.ones((2, 3)), SDN), "update_window_dims"),
    (lambda: lax.scatter_add(X, IDX, np.ones((2, 4, 3)), SDN), "batch shape"),
    (lambda: lax.scatter_add(X, IDX.astype(float), np.ones((2, 3, 3)), SDN), "integers"),
])
def test_bad_dimension_numbers_are_clear_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_every_window_position_of_a_small_case():
    # all in-bounds and out-of-bounds starts of a 1-D window, exhaustively
    x = np.arange(5.0)
    dn = lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(),
                                    start_index_map=(0,))
    for start, mode in itertools.product(range(-2, 7), ["clip", "fill"]):
        got = np.asarray(lax.gather(x, np.array([[start]]), dn, (2,), mode=mode,
                                    fill_value=-1.0))
        want = ref_gather(x, np.array([[start]]), dn, (2,), mode, -1.0)
        np.testing.assert_array_equal(got, want)
        assert fnp.asarray(got).shape == (1, 2)
