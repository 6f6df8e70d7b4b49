"""nanofn.experimental.sparse (jax.experimental.sparse): BCOO arrays against dense numpy."""

import numpy as np
import pytest
import scipy.sparse as scipy_sparse  # the [test] extra installs scipy
from hypothesis import given, strategies as st

import nanofn
import nanofn.numpy as fnp
from nanofn import lax
from nanofn.experimental import sparse
from nanofn.testing import check_grads


def _random_dense(rng, shape, density):
    x = rng.standard_normal(shape).astype(np.float32)
    return np.where(rng.random(shape) < density, x, 0).astype(np.float32)


def _dense(seed=0, shape=(4, 5), density=0.4):
    return _random_dense(np.random.default_rng(seed), shape, density)


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# ----------------------------------------------------------------------- JAX's own examples


def test_the_examples_of_jax_experimental_sparse_docs():
    # the example of jax.experimental.sparse's module documentation, with JAX's outputs
    M = fnp.array([[0., 1., 0., 2.], [3., 0., 0., 0.], [0., 0., 4., 0.]])
    M_sp = sparse.BCOO.fromdense(M)
    assert repr(M_sp) == "BCOO(float32[3, 4], nse=4)"
    np.testing.assert_array_equal(np.asarray(M_sp.data), [1., 2., 3., 4.])
    np.testing.assert_array_equal(np.asarray(M_sp.indices), [[0, 1], [0, 3], [1, 0], [2, 2]])
    assert M_sp.indices.dtype == np.int32 and M_sp.nse == 4 and M_sp.ndim == 2
    y = fnp.array([3., 6., 5.])
    np.testing.assert_array_equal(np.asarray(M_sp.T @ y), [18., 3., 20., 6.])
    g = nanofn.jit(nanofn.grad(lambda y: (M_sp.T @ y).sum()))(y)
    np.testing.assert_array_equal(np.asarray(g), [3., 3., 4.])

    def f(M, v):
        return 2 * fnp.dot(fnp.log1p(M.T), v) + 1

    _close(sparse.sparsify(f)(M_sp, y), [17.635532, 5.158883, 17.09438, 7.591674])
    # sparsify's docstring: integer data
    M = sparse.BCOO.fromdense(fnp.arange(12).reshape(3, 4))
    out = sparse.sparsify(lambda M, v: 2 * M.T @ v)(M, fnp.array([3, 4, 2]))
    np.testing.assert_array_equal(np.asarray(out), [64, 82, 100, 118])
    assert out.dtype == np.int32


# ----------------------------------------------------------------------- fromdense / todense

layouts = st.tuples(st.lists(st.integers(0, 4), min_size=0, max_size=3),
                    st.integers(0, 3), st.integers(0, 3), st.floats(0.0, 1.0),
                    st.integers(0, 1000))


@given(layouts)
def test_fromdense_todense_round_trip(case):
    shape, n_batch, n_dense, density, seed = case
    shape = tuple(shape)
    n_batch = min(n_batch, len(shape))
    n_dense = min(n_dense, len(shape) - n_batch)
    M = _random_dense(np.random.default_rng(seed), shape, density)
    A = sparse.BCOO.fromdense(M, n_batch=n_batch, n_dense=n_dense)
    assert (A.n_batch, A.n_dense, A.n_sparse) == (n_batch, n_dense,
                                                 len(shape) - n_batch - n_dense)
    assert A.shape == shape and A.dtype == np.float32
    assert A.indices_sorted and A.unique_indices
    _close(A.todense(), M)
    _close(sparse.bcoo_todense(A), M)
    # nse: the largest number of stored blocks in a batch
    mask = M != 0
    if n_dense:
        mask = mask.any(tuple(range(M.ndim - n_dense, M.ndim)))
    counts = mask.sum(tuple(range(n_batch, mask.ndim)))
    assert A.nse == (int(counts.max()) if counts.size else 0)


@given(st.integers(0, 1000), st.integers(0, 4))
def test_fromdense_pads_with_out_of_range_indices(seed, extra):
    M = _dense(seed, (3, 4), 0.5)
    count = int((M != 0).sum())
    A = sparse.BCOO.fromdense(M, nse=count + extra)
    assert A.nse == count + extra
    np.testing.assert_array_equal(np.asarray(A.data)[count:], 0)
    np.testing.assert_array_equal(np.asarray(A.indices)[count:], np.full((extra, 2), [3, 4]))
    _close(A.todense(), M)
    # rows in row-major order, the data read from M
    rows, cols = np.nonzero(M)
    np.testing.assert_array_equal(np.asarray(A.indices)[:count], np.stack([rows, cols], 1))
    _close(np.asarray(A.data)[:count], M[rows, cols])


def test_fromdense_with_too_small_nse_drops_the_last_entries():
    M = np.array([[1., 0.], [2., 3.]], np.float32)
    A = sparse.BCOO.fromdense(M, nse=2)
    _close(A.todense(), [[1., 0.], [2., 0.]])


def test_padding_entries_contribute_nothing_anywhere():
    # the first entry is real, the others are out of range (padding, or plain wrong)
    data = fnp.array([1., 5., 7., 9.])
    indices = fnp.array([[0, 1], [2, 0], [0, 3], [-1, 0]])
    A = sparse.BCOO((data, indices), shape=(2, 3))
    expect = np.array([[0., 1., 0.], [0., 0., 0.]], np.float32)
    _close(A.todense(), expect)
    x = np.arange(3., dtype=np.float32)
    _close(A @ x, expect @ x)
    _close(np.arange(2., dtype=np.float32) @ A, np.arange(2.) @ expect)
    _close(A.sum(0).todense(), expect.sum(0))
    _close(A.sum(), expect.sum())
    _close(A.T.todense(), expect.T)
    _close(A.sum_duplicates().todense(), expect)
    assert A.sum_duplicates().nse == 1
    _close((A * A).todense(), expect * expect)
    _close((A * fnp.ones((2, 3))).todense(), expect)


def test_construct_from_data_and_indices_and_duplicates_add_up():
    A = sparse.BCOO((fnp.array([1., 2., 3.]), fnp.array([[0, 0], [1, 1], [0, 0]])),
                    shape=(2, 2))
    assert repr(A) == "BCOO(float32[2, 2], nse=3)"
    _close(A.todense(), [[4., 0.], [0., 2.]])
    assert (A.ndim, A.size, len(A), A.nse, A.n_batch, A.n_sparse, A.n_dense) == \
        (2, 4, 2, 3, 0, 2, 0)


def test_batched_and_dense_layouts_repr_and_products():
    M = _dense(3, (2, 3, 4), 0.5)
    E = sparse.BCOO.fromdense(M, n_batch=1)
    assert repr(E).endswith("n_batch=1)")
    F = sparse.BCOO.fromdense(M, n_dense=1)
    assert repr(F).endswith("n_dense=1)")
    x = np.arange(4., dtype=np.float32)
    _close(E @ x, M @ x)
    y = np.arange(3., dtype=np.float32)
    dn = (((1,), (0,)), ((), ()))
    _close(sparse.bcoo_dot_general(F, y, dimension_numbers=dn), np.einsum("ijk,j->ik", M, y))
    _close(sparse.bcoo_dot_general(E, y, dimension_numbers=dn), np.einsum("ijk,j->ik", M, y))


def test_eye_and_empty():
    for N, M, k in [(3, 3, 0), (3, 4, 1), (4, 3, -2), (2, 2, 5)]:
        A = sparse.eye(N, M, k)
        _close(A.todense(), np.eye(N, M, k))
        assert A.indices_sorted and A.unique_indices
    _close(sparse.eye(3, n_batch=1).todense(), np.eye(3))
    E = sparse.empty((2, 3))
    assert E.nse == 0 and E.shape == (2, 3)
    _close(E.todense(), np.zeros((2, 3)))
    E = sparse.empty((2, 3), nse=2, dtype=fnp.int32)
    assert E.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(E.indices), [[2, 3], [2, 3]])
    _close(E.todense(), np.zeros((2, 3)))


def test_todense_passes_dense_arrays_through():
    x = fnp.ones(3)
    assert sparse.todense(x) is x


def test_from_scipy_sparse():
    M = _dense(5, (4, 3))
    A = sparse.BCOO.from_scipy_sparse(scipy_sparse.csr_matrix(M))
    _close(A.todense(), M)


# ----------------------------------------------------------------------- products


@given(st.integers(0, 1000), st.integers(1, 5), st.integers(1, 5), st.integers(1, 3))
def test_matmul_both_sides_against_numpy(seed, n, m, k):
    rng = np.random.default_rng(seed)
    M = _random_dense(rng, (n, m), 0.5)
    A = sparse.BCOO.fromdense(M, nse=int((M != 0).sum()) + 1)
    v, u = rng.standard_normal(m).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    X, Y = (rng.standard_normal((m, k)).astype(np.float32),
            rng.standard_normal((k, n)).astype(np.float32))
    _close(A @ v, M @ v)
    _close(A @ X, M @ X)
    _close(u @ A, u @ M)
    _close(Y @ A, Y @ M)
    _close(fnp.asarray(Y) @ A, Y @ M)
    _close(A.T @ u, M.T @ u)


DOT_CASES = [  # (lhs shape, rhs shape, dimension numbers)
    ((3, 4), (4, 2), (((1,), (0,)), ((), ()))),
    ((3, 4), (3, 2), (((0,), (0,)), ((), ()))),
    ((3, 4), (2, 4), (((1,), (1,)), ((), ()))),
    ((3, 4), (5,), (((), ()), ((), ()))),  # outer product
    ((3, 4), (3, 4), (((0, 1), (0, 1)), ((), ()))),  # full contraction
    ((2, 3, 4), (2, 4, 5), (((2,), (1,)), ((0,), (0,)))),  # batched matmul
    ((2, 3, 4), (4, 2), (((2,), (0,)), ((0,), (1,)))),
    ((2, 3, 4), (3, 2, 5), (((1,), (0,)), ((0,), (1,)))),
    ((2, 3, 4), (4, 3), (((1, 2), (1, 0)), ((), ()))),
]


@pytest.mark.parametrize("lshape, rshape, dn", DOT_CASES)
def test_dot_general_dimension_numbers(lshape, rshape, dn):
    rng = np.random.default_rng(1)
    L = _random_dense(rng, lshape, 0.5)
    R = rng.standard_normal(rshape).astype(np.float32)
    expect = lax.dot_general(fnp.asarray(L), fnp.asarray(R), dn)
    _close(sparse.bcoo_dot_general(sparse.BCOO.fromdense(L), R, dimension_numbers=dn), expect)
    _close(sparse.bcoo_dot_general(sparse.BCOO.fromdense(L, n_batch=1), R,
                                   dimension_numbers=dn), expect)
    # the BCOO on the right: swap the roles
    swapped = tuple(d[::-1] for d in dn)
    expect_r = lax.dot_general(fnp.asarray(R), fnp.asarray(L), swapped)
    _close(sparse.bcoo_dot_general(R, sparse.BCOO.fromdense(L), dimension_numbers=swapped),
           expect_r)
    # two BCOO operands give a BCOO
    Rs = _random_dense(rng, rshape, 0.5)
    out = sparse.bcoo_dot_general(sparse.BCOO.fromdense(L), sparse.BCOO.fromdense(Rs),
                                  dimension_numbers=dn)
    assert isinstance(out, sparse.BCOO)
    _close(out.todense(), lax.dot_general(fnp.asarray(L), fnp.asarray(Rs), dn))


def test_dot_general_dense_operands_is_lax_dot_general():
    a, b = np.ones((2, 3), np.float32), np.ones((3, 2), np.float32)
    _close(sparse.bcoo_dot_general(a, b, dimension_numbers=(((1,), (0,)), ((), ()))), a @ b)


def test_sparse_sparse_matmul():
    M, N = _dense(1, (3, 4)), _dense(2, (4, 2))
    out = sparse.BCOO.fromdense(M) @ sparse.BCOO.fromdense(N)
    assert isinstance(out, sparse.BCOO)
    _close(out.todense(), M @ N)


# ----------------------------------------------------------------------- transpose, sums


@pytest.mark.parametrize("perm", [(0, 1, 2), (2, 1, 0), (1, 0, 2), (0, 2, 1), (2, 0, 1)])
def test_transpose(perm):
    M = _dense(4, (2, 3, 4))
    A = sparse.BCOO.fromdense(M)
    _close(A.transpose(perm).todense(), M.transpose(perm))
    _close(sparse.bcoo_transpose(A, permutation=perm).todense(), M.transpose(perm))
    assert A.transpose(perm).indices_sorted == (perm == (0, 1, 2))
    _close(A.T.todense(), M.T)


def test_transpose_batched_and_dense_layouts():
    M = _dense(5, (2, 3, 4))
    E = sparse.BCOO.fromdense(M, n_batch=1)
    _close(E.transpose((0, 2, 1)).todense(), M.transpose(0, 2, 1))
    F = sparse.BCOO.fromdense(M, n_dense=1)
    _close(F.transpose((1, 0, 2)).todense(), M.transpose(1, 0, 2))
    with pytest.raises(NotImplementedError, match="n_batch=1"):
        E.T
    with pytest.raises(NotImplementedError, match="n_dense=1"):
        F.T


@pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)])
def test_reduce_sum_over_axes(axes):
    M = _dense(6, (2, 3, 4))
    out = sparse.bcoo_reduce_sum(sparse.BCOO.fromdense(M, nse=20), axes=axes)
    assert isinstance(out, sparse.BCOO) and out.shape == M.sum(axes).shape
    _close(out.todense(), M.sum(axes))
    # with a dense dimension
    out = sparse.bcoo_reduce_sum(sparse.BCOO.fromdense(M, n_dense=1), axes=axes)
    _close(out.todense(), M.sum(axes))


def test_sum_method():
    M = _dense(7)
    A = sparse.BCOO.fromdense(M)
    _close(A.sum(0).todense(), M.sum(0))
    _close(A.sum(axis=-1).todense(), M.sum(-1))
    _close(A.sum((0, 1)), M.sum())
    s = A.sum()
    assert not isinstance(s, sparse.BCOO)
    _close(s, M.sum())


# ----------------------------------------------------------------------- elementwise


def test_elementwise_with_scalars():
    M = _dense(8)
    A = sparse.BCOO.fromdense(M)
    for out, expect in [(2.0 * A, 2 * M), (A * 2, 2 * M), (A / 4.0, M / 4), (-A, -M),
                        (+A, M), (A * fnp.float32(3), 3 * M), (abs(A), np.abs(M))]:
        assert isinstance(out, sparse.BCOO)
        np.testing.assert_array_equal(np.asarray(out.indices), np.asarray(A.indices))
        _close(out.todense(), expect)


def test_elementwise_with_dense_arrays():
    M = _dense(9)
    A = sparse.BCOO.fromdense(M)
    row, full = np.arange(1., 6., dtype=np.float32), _dense(10) + 1
    _close((A * row).todense(), M * row)
    _close((row * A).todense(), M * row)
    _close((A * full).todense(), M * full)
    _close((A / full).todense(), M / full)
    _close(sparse.bcoo_multiply_dense(A, full).todense(), M * full)
    _close(A + full, M + full)
    _close(full - A, full - M)
    with pytest.raises(NotImplementedError, match=r"shape \(\)"):
        A + 1.0
    with pytest.raises(NotImplementedError, match=r"\(3, 4, 5\)"):
        A * np.ones((3, 4, 5), np.float32)


def test_elementwise_with_another_bcoo():
    M, N = _dense(11), _dense(12)
    A, B = sparse.BCOO.fromdense(M), sparse.BCOO.fromdense(N)
    _close((A * A).todense(), M * M)
    _close((A * B).todense(), M * N)
    _close(sparse.bcoo_multiply_sparse(B, A).todense(), M * N)
    _close((A + B).todense(), M + N)
    _close((A - B).todense(), M - N)
    # the same sparsity: the data combine directly
    A2 = sparse.BCOO((2 * A.data, A.indices), shape=A.shape, unique_indices=True)
    _close((A + A2).todense(), 3 * M)
    assert (A * A2).nse == A.nse
    # duplicates on the right are added before multiplying
    D = sparse.BCOO((fnp.array([1., 2.]), fnp.array([[0, 0], [0, 0]])), shape=(4, 5))
    E = sparse.BCOO((fnp.array([5.]), fnp.array([[0, 0]])), shape=(4, 5))
    _close((E * D).todense()[0, 0], 15.)
    _close((D * E).todense()[0, 0], 15.)
    _close(abs(-D).todense()[0, 0], 3.)


# ----------------------------------------------------------------------- duplicates, sorting


@given(st.integers(0, 1000), st.integers(0, 12), st.booleans())
def test_sum_duplicates_and_sort_indices(seed, nse, zeros):
    rng = np.random.default_rng(seed)
    shape = (3, 4)
    indices = np.stack([rng.integers(0, 4, nse), rng.integers(0, 5, nse)], 1)  # some out
    data = rng.standard_normal(nse).astype(np.float32)
    if zeros:
        data[::2] = 0
    A = sparse.BCOO((data, indices.astype(np.int32)), shape=shape)
    dense = np.asarray(A.todense())
    B = A.sum_duplicates(remove_zeros=False)
    valid = (indices[:, 0] < 3) & (indices[:, 1] < 4)
    positions = {tuple(i) for i in indices[valid]}
    assert B.nse == len(positions)
    assert B.indices_sorted and B.unique_indices
    keys = [tuple(i) for i in np.asarray(B.indices)]
    assert keys == sorted(positions)
    _close(B.todense(), dense)
    C = A.sum_duplicates()  # explicit zeros dropped too
    assert C.nse == len({tuple(i) for i, d in zip(indices[valid], data[valid]) if d != 0})
    _close(C.todense(), dense)
    D = sparse.bcoo_sum_duplicates(A, nse=nse + 2)
    assert D.nse == nse + 2
    np.testing.assert_array_equal(np.asarray(D.indices)[len(positions):],
                                  np.full((nse + 2 - len(positions), 2), [3, 4]))
    _close(D.todense(), dense)
    S = A.sort_indices()
    assert S.indices_sorted and S.nse == A.nse
    s = np.asarray(S.indices)
    sv = (s[:, 0] < 3) & (s[:, 1] < 4)
    lin = s[sv, 0] * 4 + s[sv, 1]
    assert list(lin) == sorted(lin) and sv.tolist() == sorted(sv.tolist(), reverse=True)
    _close(S.todense(), dense)
    _close(sparse.bcoo_sort_indices(A).todense(), dense)


# ----------------------------------------------------------------------- autodiff


def test_grad_with_respect_to_data_matches_dense():
    M = _dense(13)
    A = sparse.BCOO.fromdense(M, nse=int((M != 0).sum()) + 2)
    x = np.arange(5., dtype=np.float32)

    def loss_sparse(data):
        return fnp.sum(fnp.tanh(sparse.BCOO((data, A.indices), shape=A.shape) @ x) ** 2)

    def loss_dense(Md):
        return fnp.sum(fnp.tanh(Md @ x) ** 2)

    g = nanofn.grad(loss_sparse)(A.data)
    gd = np.asarray(nanofn.grad(loss_dense)(fnp.asarray(M)))
    idx = np.asarray(A.indices)
    real = (idx[:, 0] < 4) & (idx[:, 1] < 5)
    _close(np.asarray(g)[real], gd[idx[real, 0], idx[real, 1]])
    np.testing.assert_array_equal(np.asarray(g)[~real], 0)  # padding gets no gradient
    check_grads(loss_sparse, (A.data,), order=2, modes=("fwd", "rev"))


def test_grad_with_respect_to_dense_operand():
    M = _dense(14)
    A = sparse.BCOO.fromdense(M)
    x, y = np.arange(5., dtype=np.float32), np.linspace(-1, 1, 4).astype(np.float32)
    f = lambda x, y: fnp.sum(fnp.sin(A @ x) * (A @ (y @ A)))  # noqa: E731
    fd = lambda x, y: fnp.sum(fnp.sin(M @ x) * (M @ (y @ M)))  # noqa: E731
    for g, gd in zip(nanofn.grad(f, argnums=(0, 1))(x, y), nanofn.grad(fd, argnums=(0, 1))(x, y)):
        _close(g, gd)
    check_grads(f, (x, y), order=2)


def test_grad_through_operations():
    M = _dense(15)
    A = sparse.BCOO.fromdense(M)
    x = np.arange(4., dtype=np.float32)

    def f(data):
        B = sparse.BCOO((data, A.indices), shape=A.shape)
        C = (2.0 * B).T * B.T + B.T.sum_duplicates(nse=B.nse, remove_zeros=False)
        return fnp.sum((x @ C.T) ** 2) + C.sum(0).todense().sum() + (B * B).sum()

    check_grads(f, (A.data,), order=1)
    # fromdense: the data is read from the dense array, so gradients reach it
    nse = int((M != 0).sum())
    g = nanofn.grad(lambda m: fnp.sum(sparse.BCOO.fromdense(m, nse=nse) @ fnp.ones(5)))(M)
    _close(g, (M != 0).astype(np.float32))


# ----------------------------------------------------------------------- jit, vmap, pytree


def test_bcoo_is_a_pytree():
    A = sparse.BCOO.fromdense(_dense(16))
    leaves, tree = nanofn.tree_util.tree_flatten(A)
    assert len(leaves) == 2 and leaves[0] is A.data and leaves[1] is A.indices
    B = nanofn.tree_util.tree_unflatten(tree, leaves)
    assert isinstance(B, sparse.BCOO) and B.shape == A.shape
    assert (B.indices_sorted, B.unique_indices) == (True, True)
    C = nanofn.tree_util.tree_map(lambda v: v * 2 if v.dtype == np.float32 else v, A)
    _close(C.todense(), 2 * A.todense())


def test_jit():
    M = _dense(17)
    A = sparse.BCOO.fromdense(M)
    x = np.arange(5., dtype=np.float32)
    f = nanofn.jit(lambda A, x: (A @ x, (2 * A).T, A.sum(0)))
    y, AT, s = f(A, x)
    _close(y, M @ x)
    assert isinstance(AT, sparse.BCOO) and AT.shape == (5, 4)
    _close(AT.todense(), 2 * M.T)
    _close(s.todense(), M.sum(0))
    _close(f(A, x)[0], M @ x)  # the second call runs the compiled plan
    g = nanofn.jit(lambda m: sparse.BCOO.fromdense(m, nse=12).todense())
    _close(g(M), M)
    h = nanofn.jit(lambda A: A.sum_duplicates(nse=A.nse).sort_indices().todense())
    _close(h(A + A), 2 * M)
    _close(nanofn.jit(nanofn.grad(lambda x: fnp.sum(A @ x)))(x), M.sum(0))


def test_vmap_over_dense_vectors_and_over_data():
    M = _dense(18)
    A = sparse.BCOO.fromdense(M)
    xs = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    _close(nanofn.vmap(lambda A, x: A @ x, in_axes=(None, 0))(A, xs), xs @ M.T)
    _close(nanofn.vmap(lambda x: x @ A.T)(xs), xs @ M.T)
    datas = fnp.stack([A.data, 2 * A.data, -A.data])
    out = nanofn.vmap(lambda d: sparse.BCOO((d, A.indices), shape=A.shape) @ xs[0])(datas)
    _close(out, np.stack([M @ xs[0], 2 * M @ xs[0], -M @ xs[0]]))
    # returning a BCOO stacks its data along a new batch dimension
    B = nanofn.vmap(lambda d: sparse.BCOO((d, A.indices), shape=A.shape))(datas)
    assert B.shape == (3, 4, 5) and B.n_batch == 1
    _close(B.todense(), np.stack([M, 2 * M, -M]))


def test_vmap_over_a_batched_bcoo():
    M = _dense(19, (3, 4, 5))
    E = sparse.BCOO.fromdense(M, n_batch=1)
    x = np.arange(5., dtype=np.float32)
    _close(nanofn.vmap(lambda A: A @ x)(E), M @ x)
    _close(nanofn.vmap(lambda A: A.todense())(E), M)
    with pytest.raises(ValueError, match="n_batch=0"):
        nanofn.vmap(lambda A: A @ x)(sparse.BCOO.fromdense(M[0]))


# ----------------------------------------------------------------------- sparsify


def test_sparsify():
    M = _dense(20)
    A = sparse.BCOO.fromdense(M)
    v = np.arange(4., dtype=np.float32)

    def f(M, v):
        return 2 * fnp.dot(fnp.log1p(fnp.abs(M.T)), v) + 1

    _close(sparse.sparsify(f)(A, v), f(M, v))
    g = sparse.sparsify(lambda M, v: ((-M) * 3.0 / 2.0).T @ v)
    _close(g(A, v), (-M * 1.5).T @ v)
    h = sparse.sparsify(lambda M: fnp.sum(M, axis=0))
    out = h(A)
    assert isinstance(out, sparse.BCOO)
    _close(out.todense(), M.sum(0))
    _close(sparse.sparsify(lambda M: fnp.sum(M * M))(A), (M * M).sum())
    _close(sparse.sparsify(lambda M: sparse.todense(M.T) + 1)(A), M.T + 1)
    _close(sparse.sparsify(lambda M: M.astype(fnp.float64) @ fnp.ones(5))(A), M.sum(1))
    _close(sparse.sparsify(lambda x: x + 1)(fnp.ones(2)), [2., 2.])  # no sparse arguments
    _close(nanofn.jit(sparse.sparsify(f))(A, v), f(M, v))


def test_sparsify_unsupported_operations_name_the_primitive():
    A = sparse.BCOO.fromdense(_dense(21))
    with pytest.raises(NotImplementedError, match="'exp'"):
        sparse.sparsify(fnp.exp)(A)
    with pytest.raises(NotImplementedError, match="'cumsum'"):
        sparse.sparsify(lambda M: fnp.cumsum(M, axis=0))(A)
    with pytest.raises(NotImplementedError, match="use_tracer"):
        sparse.sparsify(fnp.sin, use_tracer=True)


# ----------------------------------------------------------------------- errors


def test_shape_mismatches_name_the_shapes():
    A = sparse.BCOO.fromdense(_dense(22))
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(4,\)"):
        A @ np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"\(3,\).*\(4, 5\)"):
        np.ones(3, np.float32) @ A
    with pytest.raises(TypeError, match=r"\(5,\) and \(3,\)"):
        sparse.bcoo_dot_general(A, np.ones((3, 2)), dimension_numbers=(((1,), (0,)), ((), ())))
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(5, 4\)"):
        A * A.T
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(5, 4\)"):
        A + A.T
    with pytest.raises(ValueError, match=r"data.shape=\(3,\).*shape=\(3, 3\)"):
        sparse.BCOO((fnp.ones(3), fnp.zeros((4, 2), fnp.int32)), shape=(3, 3))
    with pytest.raises(ValueError, match=r"n_batch=3.*mat.shape=\(4, 5\)"):
        sparse.BCOO.fromdense(_dense(22), n_batch=3)


def test_unsupported_layouts_name_n_dense():
    M = _dense(23, (2, 3, 4))
    F = sparse.BCOO.fromdense(M, n_dense=1)
    with pytest.raises(NotImplementedError, match="n_dense=1"):
        F @ np.ones(4, np.float32)
    with pytest.raises(ValueError):  # a reshape mixing sparse and dense axes, as in JAX
        F.reshape(24)


def test_traced_nse_is_required_under_jit():
    with pytest.raises(TypeError, match="bcoo_fromdense.*pass nse="):
        nanofn.jit(lambda m: sparse.BCOO.fromdense(m).data)(_dense(24))
    with pytest.raises(TypeError, match="sum_duplicates.*pass nse="):
        nanofn.jit(lambda A: A.sum_duplicates().data)(sparse.BCOO.fromdense(_dense(24)))


def test_numpy_functions_reject_bcoo_with_a_clear_message():
    A = sparse.BCOO.fromdense(_dense(25))
    with pytest.raises(TypeError, match="todense"):
        fnp.dot(A, np.ones(5, np.float32))


# ----------------------------------------------------------------------- BCSR


@given(st.integers(0, 1000), st.integers(0, 3))
def test_bcsr_round_trip_and_products(seed, extra):
    rng = np.random.default_rng(seed)
    M = _random_dense(rng, (4, 5), 0.4)
    count = int((M != 0).sum())
    B = sparse.BCSR.fromdense(M, nse=count + extra)
    assert B.nse == count + extra and B.shape == (4, 5)
    rows, cols = np.nonzero(M)
    np.testing.assert_array_equal(np.asarray(B.indices), np.r_[cols, [5] * extra])
    np.testing.assert_array_equal(np.asarray(B.indptr),
                                  np.r_[0, np.cumsum((M != 0).sum(1))])
    _close(B.todense(), M)
    _close(sparse.bcsr_todense(B), M)
    _close(B.to_bcoo().todense(), M)
    _close(sparse.BCSR.from_bcoo(sparse.BCOO.fromdense(M)).todense(), M)
    x, y = rng.standard_normal(5).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    _close(B @ x, M @ x)
    _close(y @ B, y @ M)
    _close((2.0 * B).todense(), 2 * M)


def test_bcsr_pytree_jit_grad_and_sparsify():
    M = _dense(26)
    B = sparse.BCSR.fromdense(M)
    x = np.arange(5., dtype=np.float32)
    _close(nanofn.jit(lambda B, x: B @ x)(B, x), M @ x)
    g = nanofn.grad(lambda d: fnp.sum(sparse.BCSR((d, B.indices, B.indptr), shape=B.shape)
                                      @ x))(B.data)
    _close(g, x[np.asarray(B.indices)])
    _close(sparse.sparsify(lambda A, v: fnp.dot(A, v) * 2)(B, x), 2 * M @ x)
    C = sparse.BCOO.fromdense(M)
    B2 = sparse.BCSR.from_bcoo(sparse.BCOO((C.data[::-1], C.indices[::-1]), shape=C.shape))
    _close(B2.todense(), M)  # an unsorted BCOO is sorted first
    with pytest.raises(NotImplementedError, match="n_batch=1"):
        sparse.BCSR.fromdense(_dense(27, (2, 3, 4)), n_batch=1)
    with pytest.raises(ValueError, match=r"indptr.shape=\(3,\).*\(4, 5\)"):
        sparse.BCSR((B.data, B.indices, B.indptr[:3]), shape=(4, 5))


# ----------------------------------------------------------------------- linalg


def test_spsolve_against_numpy():
    rng = np.random.default_rng(0)
    M = _random_dense(rng, (5, 5), 0.4) + 5 * np.eye(5, dtype=np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    csr = scipy_sparse.csr_matrix(M)
    x = sparse.linalg.spsolve(csr.data, csr.indices, csr.indptr, b)
    _close(x, np.linalg.solve(M, b), tol=1e-4)
    check_grads(lambda d, b: sparse.linalg.spsolve(d, csr.indices, csr.indptr, b),
                (csr.data.astype(np.float64), b.astype(np.float64)), order=1)
