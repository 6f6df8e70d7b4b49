"""nanofn.experimental.sparse against jax.experimental.sparse semantics: batched layouts,
shape operations, indexing, COO/CSR/CSC, random_bcoo, sparse autodiff and BCSR helpers,
each checked against dense numpy computations."""

import itertools

import numpy as np
import pytest
import scipy.sparse as scipy_sparse
from hypothesis import given, settings, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn.experimental import sparse


def _dense(seed=0, shape=(4, 5), density=0.5, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    return np.where(rng.random(shape) < density, x, 0).astype(dtype)


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# layouts (shape, n_batch, n_dense) with every kind of dimension
LAYOUTS = [((4, 5), 0, 0), ((3, 4, 5), 1, 0), ((3, 4, 5), 0, 1), ((2, 3, 4, 2), 1, 1),
           ((3, 4, 5), 2, 0), ((5,), 0, 0), ((1, 4, 5), 1, 0)]


def _layout_cases():
    return [pytest.param(*c, id=f"{c[0]}-b{c[1]}-d{c[2]}") for c in LAYOUTS]


# ----------------------------------------------------------------------- batched layouts


@pytest.mark.parametrize("shape,nb,nd", _layout_cases())
def test_operations_on_batched_and_dense_layouts_match_numpy(shape, nb, nd):
    # these raised NotImplementedError for n_batch > 0 before
    M = _dense(1, shape)
    A = sparse.BCOO.fromdense(M, n_batch=nb, n_dense=nd)
    for ax in range(len(shape)):
        out = A.sum(ax)
        _close(out.todense() if isinstance(out, sparse.BCOO) else out, M.sum(ax))
    _close(A.sum(), M.sum())
    _close((A * M).todense(), M * M)
    _close((A * M[-1:]).todense(), M * M[-1:])
    _close((A / (np.abs(M) + 1)).todense(), M / (np.abs(M) + 1))
    _close((A * A).todense(), M * M)
    _close((A + A).todense(), 2 * M)
    _close((A - 2 * A).todense(), -M)
    _close(sparse.bcoo_extract(A, 3 * M).todense(), 3 * M)
    B = A.sort_indices()
    assert B.indices_sorted and B.n_batch == nb
    _close(B.todense(), M)
    S = A.sum_duplicates()
    assert S.n_batch == nb and S.unique_indices
    _close(S.todense(), M)


def test_batched_sum_duplicates_adds_entries_per_batch():
    data = fnp.array([[1., 2., 3.], [4., 0., 5.]])
    indices = fnp.array([[[0], [0], [2]], [[1], [1], [1]]])
    A = sparse.BCOO((data, indices), shape=(2, 3))
    S = sparse.bcoo_sum_duplicates(A)
    assert S.nse == 2  # the largest count of distinct positions over the batches
    _close(S.todense(), [[3., 0., 3.], [0., 9., 0.]])
    _close(S.data, [[3., 3.], [9., 0.]])
    assert A.sum_duplicates(nse=3).nse == 3


def test_sum_duplicates_without_sparse_dimensions_keeps_one_entry():
    # JAX stores the single position even when its value is zero
    A = sparse.BCOO.fromdense(fnp.array(0.0), nse=2)
    assert sparse.bcoo_sum_duplicates(A).nse == 1
    A = sparse.BCOO.fromdense(fnp.array(2.5))
    out = A.sum_duplicates()
    assert out.nse == 1 and float(out.todense()) == 2.5


def test_reduce_sum_over_batch_axes_moves_entries_into_nse():
    M = _dense(2, (3, 4, 5))
    A = sparse.BCOO.fromdense(M, n_batch=2)
    out = sparse.bcoo_reduce_sum(A, axes=(1,))
    assert out.n_batch == 1 and out.nse == 4 * A.nse
    _close(out.todense(), M.sum(1))


def test_mixed_layouts_in_products_and_sums():
    M = _dense(3, (3, 4))
    A, B = sparse.BCOO.fromdense(M, n_batch=1), sparse.BCOO.fromdense(M)
    _close((A * B).todense(), M * M)
    _close((A + B).todense(), 2 * M)


# ----------------------------------------------------------------------- update_layout


@pytest.mark.parametrize("shape,nb,nd", _layout_cases())
def test_update_layout_to_every_layout_keeps_the_values(shape, nb, nd):
    M = _dense(4, shape)
    A = sparse.BCOO.fromdense(M, n_batch=nb, n_dense=nd)
    for nb2 in range(len(shape) + 1):
        for nd2 in range(len(shape) + 1 - nb2):
            B = sparse.bcoo_update_layout(A, n_batch=nb2, n_dense=nd2, on_inefficient=None)
            assert (B.n_batch, B.n_dense) == (nb2, nd2)
            _close(B.todense(), M)


def test_update_layout_inefficient_increase_errors_or_warns():
    A = sparse.BCOO.fromdense(_dense(5, (3, 4)))
    with pytest.raises(sparse.SparseEfficiencyError, match="n_batch"):
        sparse.bcoo_update_layout(A, n_batch=1)
    with pytest.warns(sparse.SparseEfficiencyWarning):
        A.update_layout(n_dense=1, on_inefficient="warn")
    with pytest.raises(ValueError, match="on_inefficient"):
        A.update_layout(n_batch=1, on_inefficient="ignore")
    B = sparse.BCOO.fromdense(_dense(5, (3, 4)), n_batch=1)
    C = B.update_layout(n_batch=0)
    assert C.nse == 3 * B.nse and C.n_batch == 0
    # a size-1 dimension moves without complaint
    D = sparse.BCOO.fromdense(_dense(5, (1, 4))).update_layout(n_batch=1)
    assert D.n_batch == 1


# ----------------------------------------------------------------------- slicing & co.


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(LAYOUTS), st.data())
def test_slice_and_dynamic_slice_match_numpy(layout, data):
    shape, nb, nd = layout
    M = _dense(6, shape)
    A = sparse.BCOO.fromdense(M, n_batch=nb, n_dense=nd)
    start = [data.draw(st.integers(0, n)) for n in shape]
    limit = [data.draw(st.integers(s, n)) for s, n in zip(start, shape)]
    strides = [data.draw(st.integers(1, 3)) for _ in shape]
    out = sparse.bcoo_slice(A, start_indices=start, limit_indices=limit, strides=strides)
    expected = M[tuple(slice(a, b, c) for a, b, c in zip(start, limit, strides))]
    assert out.shape == expected.shape and (out.n_batch, out.n_dense) == (nb, nd)
    _close(out.todense(), expected)
    sizes = [data.draw(st.integers(0, n)) for n in shape]
    starts = [data.draw(st.integers(-n - 2, n + 2)) for n in shape]
    out = sparse.bcoo_dynamic_slice(A, [np.int32(s) for s in starts], sizes)
    # lax.dynamic_slice: negative starts wrap once, then clamp so the block fits
    clamped = [min(max(s + n if s < 0 else s, 0), n - m) for s, n, m in zip(starts, shape, sizes)]
    expected = M[tuple(slice(s, s + m) for s, m in zip(clamped, sizes))]
    _close(out.todense(), expected)


def test_dynamic_slice_under_jit_with_traced_starts():
    M = _dense(7, (5, 6))
    A = sparse.BCOO.fromdense(M)
    f = nanofn.jit(lambda A, i: sparse.bcoo_dynamic_slice(A, (i, i + 1), (2, 3)).todense())
    for i in range(5):
        j = min(i, 3)
        _close(f(A, fnp.array(i)), M[j:j + 2, min(i + 1, 3):min(i + 1, 3) + 3])


def test_slice_with_more_entries_than_positions_sums_duplicates():
    A = sparse.BCOO.fromdense(_dense(8, (6,), density=1.0))
    out = sparse.bcoo_slice(A, start_indices=(1,), limit_indices=(3,))
    assert out.nse == 2
    _close(out.todense(), np.asarray(A.todense())[1:3])


@pytest.mark.parametrize("shape,nb,nd", _layout_cases())
def test_rev_squeeze_concatenate_broadcast_match_numpy(shape, nb, nd):
    M = _dense(9, shape)
    A = sparse.BCOO.fromdense(M, n_batch=nb, n_dense=nd)
    for r in range(len(shape) + 1):
        for dims in itertools.combinations(range(len(shape)), r):
            _close(sparse.bcoo_rev(A, dims).todense(), np.flip(M, dims) if dims else M)
    for d in range(len(shape)):
        if d >= nb + A.n_sparse:
            with pytest.raises(NotImplementedError, match="dense"):
                sparse.bcoo_concatenate([A, A], dimension=d)
            continue
        M2 = _dense(10, shape[:d] + (2,) + shape[d + 1:])
        B = sparse.BCOO.fromdense(M2, n_batch=nb, n_dense=nd)
        out = sparse.bcoo_concatenate([A, B, A], dimension=d)
        _close(out.todense(), np.concatenate([M, M2, M], axis=d))
    out = sparse.bcoo_broadcast_in_dim(A, shape=(2,) + shape,
                                       broadcast_dimensions=tuple(range(1, len(shape) + 1)))
    assert out.n_batch == nb + 1
    _close(out.todense(), np.broadcast_to(M, (2,) + shape))
    out = sparse.bcoo_broadcast_in_dim(A, shape=shape + (1,),
                                       broadcast_dimensions=tuple(range(len(shape))))
    _close(out.todense(), M[..., None])
    ones = [d for d, n in enumerate(shape) if n == 1]
    if ones:
        _close(sparse.bcoo_squeeze(A, dimensions=ones).todense(), M.squeeze(tuple(ones)))


def test_concatenate_keeps_padding_out_of_range():
    # padding of the first operand must not land inside the second one
    A = sparse.BCOO.fromdense(fnp.array([1., 0.]), nse=2)
    B = sparse.BCOO.fromdense(fnp.array([0., 0., 3.]))
    _close(sparse.bcoo_concatenate([A, B], dimension=0).todense(), [1., 0., 0., 0., 3.])


@pytest.mark.parametrize("shape,nb,nd", _layout_cases())
def test_reshape_matches_numpy(shape, nb, nd):
    M = _dense(11, shape)
    A = sparse.BCOO.fromdense(M, n_batch=nb, n_dense=nd)
    batch, dense = shape[:nb], shape[len(shape) - nd:]
    sparse_shape = shape[nb:len(shape) - nd]
    n = int(np.prod(sparse_shape))
    for new_sparse in [(n,), (1, n), (n, 1)] + ([sparse_shape[::-1]] if sparse_shape else []):
        new = batch + tuple(new_sparse) + dense
        out = sparse.bcoo_reshape(A, new_sizes=new)
        _close(out.todense(), M.reshape(new))
    if nd == 0 and int(np.prod(batch)) == 1:
        _close(A.reshape(-1).todense(), M.reshape(-1))
    with pytest.raises((ValueError, TypeError)):
        sparse.bcoo_reshape(A, new_sizes=(int(np.prod(shape)) + 1,))


def test_reshape_with_dimensions_permutes_first():
    M = _dense(12, (3, 4))
    A = sparse.BCOO.fromdense(M)
    _close(sparse.bcoo_reshape(A, new_sizes=(12,), dimensions=(1, 0)).todense(),
           M.T.reshape(12))


def test_shape_ops_errors_name_the_arguments():
    A = sparse.BCOO.fromdense(_dense(13))
    with pytest.raises(ValueError, match="start_indices"):
        sparse.bcoo_slice(A, start_indices=(0,), limit_indices=(1, 1))
    with pytest.raises(ValueError, match="strides"):
        sparse.bcoo_slice(A, start_indices=(0, 0), limit_indices=(1, 1), strides=(0, 1))
    with pytest.raises(ValueError, match="size 1"):
        sparse.bcoo_squeeze(A, dimensions=(0,))
    with pytest.raises(TypeError, match="slice_sizes"):
        sparse.bcoo_dynamic_slice(A, (0, 0), (9, 1))
    with pytest.raises(TypeError, match="BCOO"):
        sparse.bcoo_slice(_dense(13), start_indices=(0, 0), limit_indices=(1, 1))


# ----------------------------------------------------------------------- methods


INDICES = [0, -1, (slice(None), 1), (Ellipsis, 0), slice(1, None), slice(None, None, -1),
           None, (0, None), slice(None, None, 2), (Ellipsis, slice(1, 3)), (1, 2)]


@pytest.mark.parametrize("shape,nb,nd", _layout_cases())
def test_indexing_iteration_and_methods_match_numpy(shape, nb, nd):
    M = _dense(14, shape)
    A = sparse.BCOO.fromdense(M, n_batch=nb, n_dense=nd)
    for idx in INDICES:
        try:
            expected = M[idx]
        except IndexError:
            continue
        out = A[idx]
        assert isinstance(out, sparse.BCOO), idx
        _close(out.todense(), expected)
    for row, expected in zip(A, M):
        _close(row.todense(), expected)
    _close((A ** 2).todense(), M ** 2)
    _close((A ** 3).todense(), M ** 3)
    out = A.sum(0, keepdims=True)  # dense when every axis is summed, as in JAX
    _close(out.todense() if isinstance(out, sparse.BCOO) else out, M.sum(0, keepdims=True))
    _close(A.sum(dtype=fnp.float32), M.sum())
    assert A.block_until_ready() is A


def test_integer_index_of_a_unit_dimension_squeezes_like_jax():
    # JAX squeezes (n_batch = 0 here); a reshape would have made a batch dimension
    A = sparse.BCOO.fromdense(_dense(15, (4, 1, 5)))
    out = A[0]
    assert out.shape == (1, 5) and out.n_batch == 0 and out.data.ndim == 1


def test_sparsify_shape_functions():
    M = _dense(16, (3, 4))
    A = sparse.BCOO.fromdense(M)
    _close(sparse.sparsify(lambda x: fnp.stack([x, 2 * x]))(A).todense(), np.stack([M, 2 * M]))
    _close(sparse.sparsify(lambda x: fnp.expand_dims(x, 1))(A).todense(), M[:, None])
    _close(sparse.sparsify(lambda x: fnp.flip(x, 1))(A).todense(), M[:, ::-1])
    _close(sparse.sparsify(lambda x: fnp.concatenate([x, x], 1))(A).todense(),
           np.concatenate([M, M], 1))
    _close(sparse.sparsify(lambda x: x[1:, ::2].T @ fnp.ones(2))(A), M[1:, ::2].T.sum(1))


def test_grad_through_shape_operations_matches_dense():
    M = _dense(17, (4, 5))
    A = sparse.BCOO.fromdense(M)
    w = _dense(18, (2, 5), density=1.0)

    def f(data):
        B = sparse.BCOO((data, A.indices), shape=A.shape)
        C = sparse.bcoo_concatenate([B[1:3], sparse.bcoo_rev(B, (1,))[:2]], dimension=0)
        return (C.reshape((4, 5)).todense() * np.concatenate([w, w])).sum()

    g = nanofn.grad(f)(A.data)
    rows, cols = np.asarray(A.indices).T
    dense_g = np.zeros((4, 5), np.float32)
    dense_g[1:3] += w
    dense_g[:2, ::-1] += w
    _close(g, dense_g[rows, cols])


# ----------------------------------------------------------------------- COO / CSR / CSC


@pytest.mark.parametrize("shape", [(4, 5), (3, 3), (0, 3), (1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.complex64])
def test_coo_csr_csc_against_scipy_and_numpy(shape, dtype):
    M = _dense(19, shape, dtype=dtype)
    rng = np.random.default_rng(0)
    v, vt = rng.standard_normal(shape[1]).astype(dtype), rng.standard_normal(shape[0]).astype(dtype)
    B, Bt = (rng.standard_normal((shape[1], 2)).astype(dtype),
             rng.standard_normal((shape[0], 2)).astype(dtype))
    coo, csr = sparse.COO.fromdense(M), sparse.CSR.fromdense(M)
    csc = sparse.CSC.fromdense(M)
    ref_csr, ref_csc = scipy_sparse.csr_matrix(M), scipy_sparse.csc_matrix(M)
    np.testing.assert_array_equal(np.asarray(coo.row), ref_csr.tocoo().row)
    np.testing.assert_array_equal(np.asarray(coo.col), ref_csr.tocoo().col)
    np.testing.assert_array_equal(np.asarray(csr.indptr), ref_csr.indptr)
    np.testing.assert_array_equal(np.asarray(csr.indices), ref_csr.indices)
    np.testing.assert_array_equal(np.asarray(csc.indptr), ref_csc.indptr)
    np.testing.assert_array_equal(np.asarray(csc.indices), ref_csc.indices)
    assert coo.row.dtype == np.int32
    for X in (coo, csr, csc):
        assert X.shape == shape and X.dtype == dtype and X.nse == np.count_nonzero(M)
        _close(X.todense(), M)
        _close(X.T.todense(), M.T)
        _close(X @ v, M @ v, 1e-4)
        _close(X @ B, M @ B, 1e-4)
        _close(nanofn.jit(lambda X, v: X @ v)(X, v), M @ v, 1e-4)
    assert type(csr.T) is sparse.CSC and type(csc.T) is sparse.CSR
    _close(sparse.coo_matvec(coo, vt, transpose=True), M.T @ vt, 1e-4)
    _close(sparse.coo_matmat(coo, Bt, transpose=True), M.T @ Bt, 1e-4)
    _close(sparse.csr_matvec(csr, vt, transpose=True), M.T @ vt, 1e-4)
    _close(sparse.csr_matmat(csr, Bt, transpose=True), M.T @ Bt, 1e-4)
    _close(sparse.coo_todense(coo), M)
    _close(sparse.csr_todense(csr), M)


def test_coo_csr_padding_and_promotion():
    M = np.array([[0., 2.], [3., 0.]], np.float32)
    coo = sparse.coo_fromdense(M, nse=4, index_dtype=np.int16)
    np.testing.assert_array_equal(np.asarray(coo.data), [2., 3., 0., 0.])
    np.testing.assert_array_equal(np.asarray(coo.row), [0, 1, 0, 0])
    assert coo.row.dtype == np.int16
    csr = sparse.csr_fromdense(M, nse=4)
    np.testing.assert_array_equal(np.asarray(csr.indptr), [0, 1, 2])
    _close(csr.todense(), M)
    # int data times float vector promotes like nanofn.numpy (float32, not float64)
    out = sparse.COO.fromdense(M.astype(np.int32)) @ np.ones(2, np.float32)
    assert out.dtype == np.float32


@pytest.mark.parametrize("fmt", ["coo", "csr", "csc", "bcsr", "bcoo"])
def test_empty_and_eye_in_every_format(fmt):
    for (N, M), k in itertools.product([(3, 4), (4, 3), (2, 2)], [-1, 0, 2]):
        E = sparse.eye(N, M, k, sparse_format=fmt)
        _close(E.todense(), np.eye(N, M, k))
    Z = sparse.empty((3, 4), sparse_format=fmt)
    assert Z.nse == 0
    _close(Z.todense(), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="sparse_format"):
        sparse.empty((2, 2), sparse_format="dok")


def test_coo_csr_gradients_and_pytrees():
    M = _dense(20, (3, 4))
    v = _dense(21, (4,), density=1.0)
    for cls in (sparse.COO, sparse.CSR, sparse.CSC):
        X = cls.fromdense(M)
        leaves, tree = nanofn.tree_util.tree_flatten(X)
        assert len(leaves) == 3
        Y = nanofn.tree_util.tree_unflatten(tree, leaves)
        _close(Y.todense(), M)
        g = sparse.grad(lambda X: (X @ v).sum())(X)
        assert type(g) is cls
        _close(g.todense(), (M != 0) * v[None, :])
        gv = nanofn.grad(lambda v: (X @ v).sum())(v)
        _close(gv, M.sum(0))


# ----------------------------------------------------------------------- random_bcoo


@pytest.mark.parametrize("shape,nb,nd", _layout_cases()[:5])
def test_random_bcoo_layout_and_properties(shape, nb, nd):
    key = nanofn.random.key(3)
    A = sparse.random_bcoo(key, shape, nse=0.5, n_batch=nb, n_dense=nd)
    sparse_size = int(np.prod(shape[nb:len(shape) - nd]))
    assert (A.n_batch, A.n_dense, A.shape) == (nb, nd, shape)
    assert A.nse == int(np.ceil(0.5 * sparse_size)) and A.dtype == np.float32
    assert A.indices.dtype == np.int32
    # unique positions: todense keeps every value
    S = A.sum_duplicates(remove_zeros=False)
    assert S.nse == A.nse
    B = sparse.random_bcoo(key, shape, nse=2, n_batch=nb, n_dense=nd, sorted_indices=True,
                           indices_dtype=np.int16, dtype=fnp.int32,
                           generator=nanofn.random.randint, minval=1, maxval=5)
    assert B.indices_sorted and B.indices.dtype == np.int16 and B.dtype == np.int32
    assert B.nse == 2 and int(np.min(np.asarray(B.data))) >= 1
    again = sparse.random_bcoo(key, shape, nse=0.5, n_batch=nb, n_dense=nd)
    np.testing.assert_array_equal(np.asarray(again.indices), np.asarray(A.indices))


def test_random_bcoo_matches_the_keys_jax_uses():
    # data from the first of split(key, batch_size + 1), positions from choice() with the
    # others; the same key gives the same array as JAX
    key = nanofn.random.key(0)
    A = sparse.random_bcoo(key, (4, 5), nse=3)
    keys = nanofn.random.split(key, 2)
    _close(A.data, nanofn.random.uniform(keys[0], (3,)))
    flat = nanofn.random.choice(keys[1], 20, shape=(3,), replace=False)
    np.testing.assert_array_equal(np.asarray(A.indices),
                                  np.stack(np.unravel_index(np.asarray(flat), (4, 5)), 1))
    with pytest.raises(ValueError, match="nse"):
        sparse.random_bcoo(key, (2, 2), nse=4)


# ----------------------------------------------------------------------- sparse autodiff


def _f(X, v):
    return fnp.sum(fnp.sin(X @ v))


def test_sparse_grad_and_value_and_grad_match_dense_gradients():
    M = _dense(22, (4, 5)).astype(np.float64)
    v = _dense(23, (5,), density=1.0).astype(np.float64)
    X = sparse.BCOO.fromdense(M)
    dense_gM = nanofn.grad(_f)(fnp.asarray(M), v)
    rows, cols = np.asarray(X.indices).T
    g = sparse.grad(_f)(X, v)
    assert isinstance(g, sparse.BCOO) and g.nse == X.nse
    np.testing.assert_array_equal(np.asarray(g.indices), np.asarray(X.indices))
    _close(g.data, np.asarray(dense_gM)[rows, cols])
    value, g2 = sparse.value_and_grad(_f)(X, v)
    _close(value, _f(fnp.asarray(M), v))
    _close(g2.data, g.data)
    gX, gv = sparse.grad(_f, argnums=(0, 1))(X, v)
    _close(gX.data, g.data)
    _close(gv, nanofn.grad(_f, argnums=1)(fnp.asarray(M), v))
    # as in JAX, a single argument comes back bare and several in argument order
    assert isinstance(sparse.grad(_f, argnums=(0,))(X, v), sparse.BCOO)
    first, second = sparse.grad(_f, argnums=(1, 0))(X, v)
    assert isinstance(first, sparse.BCOO) and not isinstance(second, sparse.BCOO)
    (g3, aux) = sparse.grad(lambda X, v: (_f(X, v), 7), has_aux=True)(X, v)
    assert aux == 7
    _close(g3.data, g.data)


def test_sparse_jacobians_have_output_dimensions_as_batch_dimensions():
    M = _dense(24, (4, 5)).astype(np.float64)
    v = _dense(25, (5,), density=1.0).astype(np.float64)
    X = sparse.BCOO.fromdense(M)
    f = lambda X, v: fnp.sin(X @ v)  # noqa: E731
    dense_J = np.asarray(nanofn.jacrev(f)(fnp.asarray(M), v))  # (4, 4, 5)
    rows, cols = np.asarray(X.indices).T
    for jac in (sparse.jacfwd, sparse.jacrev, sparse.jacobian):
        J = jac(f)(X, v)
        assert isinstance(J, sparse.BCOO) and J.shape == (4, 4, 5) and J.n_batch == 1
        _close(J.data, dense_J[:, rows, cols])
        _close(J.todense(), dense_J * (M != 0))
        Jv = jac(f, argnums=1)(X, v)
        _close(Jv, nanofn.jacrev(f, argnums=1)(fnp.asarray(M), v))


def test_sparse_grad_of_bcsr_batched_bcoo_and_pytrees():
    M = _dense(26, (2, 3, 4))
    X = sparse.BCOO.fromdense(M, n_batch=1)
    g = sparse.grad(lambda X: (X * X).sum())(X)
    assert g.n_batch == 1
    _close(g.todense(), 2 * M)
    v = np.ones(4, np.float32)
    B = sparse.BCSR.fromdense(M[0])
    gB = sparse.grad(lambda B: (B @ v).sum())(B)
    assert isinstance(gB, sparse.BCSR)
    _close(gB.todense(), M[0] != 0)
    gt = sparse.grad(lambda p: (p["X"] @ p["v"]).sum())({"X": sparse.BCOO.fromdense(M[0]),
                                                          "v": v})
    _close(gt["X"].todense(), (M[0] != 0) * v)
    _close(gt["v"], M[0].sum(0))


# ----------------------------------------------------------------------- BCSR helpers


def test_bcsr_dot_general_extract_and_sum_duplicates():
    M = _dense(27, (4, 5))
    B = sparse.BCSR.fromdense(M, nse=12)
    W = _dense(28, (5, 2), density=1.0)
    _close(sparse.bcsr_dot_general(B, W, dimension_numbers=(((1,), (0,)), ((), ()))), M @ W)
    W2 = _dense(29, (4, 2), density=1.0)
    _close(sparse.bcsr_dot_general(B, W2, dimension_numbers=(((0,), (0,)), ((), ()))),
           M.T @ W2)
    data = sparse.bcsr_extract(B.indices, B.indptr, 2 * M)
    _close(sparse.BCSR((data, B.indices, B.indptr), shape=B.shape).todense(), 2 * M)
    dup = sparse.BCSR((fnp.array([1., 2., 5., 0.]), fnp.array([1, 1, 0, 0]),
                       fnp.array([0, 2, 3])), shape=(2, 2))
    S = sparse.bcsr_sum_duplicates(dup)
    _close(S.data, [3., 5.])
    _close(S.todense(), [[0., 3.], [5., 0.]])
    assert dup.sum_duplicates(nse=3).nse == 3
