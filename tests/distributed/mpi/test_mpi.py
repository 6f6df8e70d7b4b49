"""Every process runs these tests; inputs depend on the rank so that each process can
compute the expected result of a collective with plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import distributed as dist
from nanofn import lax, optim
from nanofn.testing import check_grads

R = nanofn.process_index()
N = nanofn.process_count()


def local(seed, shape):
    """Rank r's input; `every(seed, shape)[r] == local(seed, shape)` on every rank."""
    return every(seed, shape)[R]


def every(seed, shape):
    return np.random.default_rng(seed).normal(size=(N,) + tuple(shape))


def test_each_process_is_one_device():
    assert N >= 2 and nanofn.device_count() == N and nanofn.local_device_count() == 1
    assert [d.id for d in nanofn.devices()] == list(range(N))
    assert nanofn.local_devices()[0].id == R
    with pytest.raises(RuntimeError, match="already called"):
        dist.initialize()


def test_every_collective_across_processes():
    X = every(1, (N, 2))
    perm = [(k, (k + 1) % N) for k in range(N - 1)]  # the last one sends nothing

    def f(v):
        return {"sum": lax.psum(v, "d"), "mean": lax.pmean(v, "d"), "max": lax.pmax(v, "d"),
                "min": lax.pmin(v, "d"), "gather": lax.all_gather(v, "d", axis=1),
                "tiled": lax.all_gather(v, "d", tiled=True),
                "scatter": lax.psum_scatter(v, "d"),
                "scatter_tiled": lax.psum_scatter(v.reshape(-1), "d", tiled=True),
                "perm": lax.ppermute(v, "d", perm),
                "shuffle": lax.pshuffle(v, "d", [(k + 1) % N for k in range(N)]),
                "a2a": lax.all_to_all(v, "d", 0, 1), "idx": lax.axis_index("d"),
                "size": lax.axis_size("d") + fnp.zeros((), np.int32)}

    out = nanofn.pmap(f, axis_name="d")(X[R][None])
    got = {k: np.asarray(v)[0] for k, v in out.items()}
    np.testing.assert_allclose(got["sum"], X.sum(0))
    np.testing.assert_allclose(got["mean"], X.mean(0))
    np.testing.assert_allclose(got["max"], X.max(0))
    np.testing.assert_allclose(got["min"], X.min(0))
    np.testing.assert_allclose(got["gather"], np.moveaxis(X, 0, 1))
    np.testing.assert_allclose(got["tiled"], X.reshape(N * N, 2))
    np.testing.assert_allclose(got["scatter"], X.sum(0)[R])
    np.testing.assert_allclose(got["scatter_tiled"], np.split(X.sum(0).reshape(-1), N)[R])
    src = {d: s for s, d in perm}
    np.testing.assert_allclose(got["perm"], X[src[R]] if R in src else 0 * X[0])
    np.testing.assert_allclose(got["shuffle"], X[(R + 1) % N])
    np.testing.assert_allclose(got["a2a"], np.stack([X[i][R] for i in range(N)], axis=1))
    assert int(got["idx"]) == R and int(got["size"]) == N


def test_collectives_within_index_groups_across_processes():
    groups = [list(range(0, N, 2)), list(range(1, N, 2))]  # evens and odds (3: sizes 2, 1)
    mine = next(g for g in groups if R in g)
    X = every(4, (N, 2))

    def f(v):
        return {"sum": lax.psum(v, "d", axis_index_groups=groups),
                "max": lax.pmax(v, "d", axis_index_groups=groups)}

    got = {k: np.asarray(v)[0] for k, v in nanofn.pmap(f, axis_name="d")(X[R][None]).items()}
    np.testing.assert_allclose(got["sum"], X[mine].sum(0))
    np.testing.assert_allclose(got["max"], X[mine].max(0))
    pairs = [[k, k + 1] for k in range(0, N - N % 2, 2)] + ([[N - 1]] if N % 2 else [])
    if N % 2 == 0:  # all_gather needs groups of one size
        gathered = nanofn.pmap(lambda v: lax.all_gather(v, "d", axis_index_groups=pairs),
                               axis_name="d")(X[R][None])
        np.testing.assert_allclose(np.asarray(gathered)[0], X[[R - R % 2, R - R % 2 + 1]])


def test_gradients_through_collectives_across_processes():
    w = every(2, (3,))[0]  # the same on every process
    X = every(3, (4, 3))

    def loss(w, x):
        return lax.psum(fnp.sum(fnp.tanh(x @ w)), "d")

    g = nanofn.pmap(nanofn.grad(loss), axis_name="d", in_axes=(None, 0))(w, X[R][None])[0]
    # the transpose of psum is psum: each process's gradient is N times its own term's
    want = N * X[R].T @ (1 - np.tanh(X[R] @ w) ** 2)
    np.testing.assert_allclose(g, want, rtol=1e-12)
    # every collective's JVP against finite differences (all processes move their inputs
    # at once), and its VJP by the inner-product identity summed over the processes:
    # sum_r <u_r, (J v)_r> == sum_r <(J^T u)_r, v_r>
    total = nanofn.pmap(lambda s: lax.psum(s, "d"), axis_name="d")
    rng = np.random.default_rng(100 + R)
    for f in (lambda v: lax.psum(v * v, "d"), lambda v: lax.all_gather(v, "d") ** 2,
              lambda v: lax.psum_scatter(lax.all_gather(v, "d") * v, "d"),
              lambda v: lax.ppermute(v, "d", [(k, (k + 1) % N) for k in range(N)]) * v,
              lambda v: lax.all_to_all(v[:N], "d", 0, 1) * 2.0,
              lambda v: lax.pmax(v, "d") * v):
        pf = nanofn.pmap(f, axis_name="d")
        x = X[R][None]
        check_grads(pf, (x,), order=2, modes=("fwd",))
        y, jv = nanofn.jvp(pf, (x,), (rng.normal(size=x.shape),))
        v = rng.normal(size=x.shape)
        _, jv = nanofn.jvp(pf, (x,), (v,))
        u = rng.normal(size=np.shape(y))
        jtu = nanofn.vjp(pf, x)[1](u)[0]
        lhs = total(np.array([np.sum(u * np.asarray(jv))]))
        rhs = total(np.array([np.sum(np.asarray(jtu) * v)]))
        np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


def _spy_on_comm(monkeypatch):
    """[(method, send buffer)] of every Allreduce, Allgather and Sendrecv (the ring's
    messages) that the world group makes from now on (mpi4py's methods are read-only: the
    group and its ring get a recording proxy)."""
    group = dist._state._state.group
    real, log = group.comm, []

    class Recording:
        def __getattr__(self, name):
            return getattr(real, name)

        def Allreduce(self, send, recv, **kwargs):
            log.append(("Allreduce", send))
            return real.Allreduce(send, recv, **kwargs)

        def Allgather(self, send, recv):
            log.append(("Allgather", send))
            return real.Allgather(send, recv)

        def Sendrecv(self, send, *args):
            log.append(("Sendrecv", send))
            return real.Sendrecv(send, *args)

    monkeypatch.setattr(group, "comm", Recording())
    monkeypatch.setattr(group._ring, "comm", group.comm)
    return log


def test_many_leaves_are_bucketed_into_few_messages(monkeypatch):
    log = _spy_on_comm(monkeypatch)
    tree = {f"w{i}": local(10 + i, (i + 1,)).astype(np.float32) for i in range(50)}
    out = nanofn.pmap(lambda t: lax.psum(t, "d"), axis_name="d")(
        nanofn.tree.map(lambda x: x[None], tree))
    for i in range(50):
        np.testing.assert_allclose(out[f"w{i}"][0], every(10 + i, (i + 1,)).astype(np.float32)
                                   .sum(0), rtol=1e-5)
    assert [m for m, _ in log].count("Allreduce") == 1


@pytest.mark.parametrize("n", [1024, 1 << 16])  # MPI's collectives; the ring
def test_collectives_read_a_writable_input_where_it_is_and_never_alias_it(monkeypatch, n):
    # MPI is handed the caller's own memory (no copy first); the results are new buffers
    # that later writes to the caller's buffer do not change
    from nanofn.distributed import _groups
    from nanofn.distributed._data_parallel import _on_group
    log = _spy_on_comm(monkeypatch)
    X = every(20, (1, n)).astype(np.float32)
    x = X[R].copy()
    ring = x.nbytes >= _groups.RING_MIN_BYTES
    s, g = nanofn.pmap(lambda v: (lax.psum(v, "d"), lax.all_gather(v, "d")), axis_name="d")(x)
    inside = _on_group(lambda v: lax.psum(v, "b"), "b")(x[0])
    reads = [m for m, b in log if isinstance(b, np.ndarray) and np.shares_memory(b, x)]
    # the ring sends one of the N parts of each psum's operand as it is (the others travel
    # combined with other processes' parts)
    psum = "Sendrecv" if ring else "Allreduce"
    assert reads == [psum, "Allgather", psum]
    assert ring == ("Sendrecv" in [m for m, _ in log])
    np.testing.assert_array_equal(x, X[R])  # read, not written
    x[...] = 0.0
    # float32 sums in another order than numpy's: near-zero sums need an absolute margin
    np.testing.assert_allclose(s[0], X.sum(0)[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(g[0], X[:, 0])
    np.testing.assert_allclose(inside, X.sum(0)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.complex128])
def test_large_reductions_go_round_the_ring_equal_on_every_process(dtype, monkeypatch):
    from nanofn.distributed import _groups
    log = _spy_on_comm(monkeypatch)
    n = _groups.RING_MIN_BYTES // np.dtype(dtype).itemsize + 7  # parts of unequal sizes
    X = every(30, (n,))
    if np.dtype(dtype).kind == "c":
        X = X + 1j * every(31, (n,))
    X = (X * 100).astype(dtype)
    Y = every(32, (2, N, n // 2)).astype(dtype)  # psum_scatter over its middle axis

    def f(v, w):
        out = {"sum": lax.psum(v, "d"), "gather": lax.all_gather(v, "d", axis=1),
               "scatter": lax.psum_scatter(w, "d", scatter_dimension=1)}
        if np.dtype(dtype).kind != "c":
            out.update(max=lax.pmax(v, "d"), min=lax.pmin(v, "d"))
        return out

    got = nanofn.pmap(f, axis_name="d")(X[R][None, None], Y[R][None])
    got = {k: np.asarray(v)[0] for k, v in got.items()}
    # N-1 messages a reduce-scatter, 2(N-1) an allreduce (psum, pmax, pmin)
    assert [m for m, _ in log].count("Sendrecv") == (N - 1) * (2 * (len(got) - 2) + 1)
    # sums in another order than numpy's, of values up to about 400 (X) and 4 (Y)
    rtol, atol = {np.float32: (1e-5, 1e-3), np.int32: (0, 0)}.get(dtype, (1e-12, 1e-10))
    np.testing.assert_allclose(got["sum"][0], X.sum(0), rtol=rtol, atol=atol)
    np.testing.assert_array_equal(got["gather"][0], X)
    np.testing.assert_allclose(got["scatter"], Y.sum(0)[:, R], rtol=rtol, atol=atol)
    if "max" in got:
        np.testing.assert_array_equal(got["max"][0], X.max(0))
        np.testing.assert_array_equal(got["min"][0], X.min(0))
    # every process holds the same bits (each part is reduced in one order, then passed on)
    from mpi4py import MPI
    mine = np.concatenate([np.ascontiguousarray(got[k]).view(np.uint8).ravel()
                           for k in ("sum", "gather")])
    assert MPI.COMM_WORLD.allgather(mine.tobytes()) == [mine.tobytes()] * N


@pytest.mark.parametrize("n", [5, 1 << 17])  # MPI's collectives; the ring
def test_boolean_reductions_across_processes(n):
    X = every(40, (n,)) < 0.0  # each process's flags
    count, mx, mn = (np.asarray(o)[0] for o in nanofn.pmap(
        lambda v: (lax.psum(v, "d"), lax.pmax(v, "d"), lax.pmin(v, "d")), axis_name="d")(
            X[R][None]))
    assert count.dtype == np.int32 and mx.dtype == mn.dtype == np.bool_
    np.testing.assert_array_equal(count, X.sum(0))
    np.testing.assert_array_equal(mx, X.any(0))
    np.testing.assert_array_equal(mn, X.all(0))


def test_a_collective_of_a_scalar_keeps_its_shape():
    from nanofn.distributed._data_parallel import _on_group
    out = _on_group(lambda v: lax.psum(fnp.sum(v), "b"), "b")(np.ones(3, np.float32))
    assert out.shape == () and float(out) == 3.0 * N
    out = nanofn.pmap(lambda v: (lax.pmax(v[0], "d"), lax.psum(v, "d")), axis_name="d")(
        np.full((1, 2), float(R)))
    assert out[0].shape == (1,) and float(out[0][0]) == N - 1
    assert out[1].shape == (1, 2)


def test_mismatched_shapes_across_processes_raise_clearly():
    x = np.ones((1, 2 + R))  # each process a different shape
    with pytest.raises(dist.CollectiveMismatchError, match=r"(?s)rank 0: psum\(f64\[2\]\).*rank 1: psum\(f64\[3\]\)"):
        nanofn.pmap(lambda v: lax.psum(v, "d"), axis_name="d")(x)
    x = np.ones((1, 2), np.float32 if R == 0 else np.float64)
    with pytest.raises(dist.CollectiveMismatchError, match=r"f32\[2\]"):
        nanofn.pmap(lambda v: lax.all_gather(v, "d"), axis_name="d")(x)
    dist.sync_global_devices("after mismatch")  # the processes are still in step


def _mlp_problem():
    rng = np.random.default_rng(0)
    params = {"w1": (rng.normal(size=(5, 7)) / 3).astype(np.float32),  # 5 rows: padded
              "b1": np.zeros(7, np.float32),
              "w2": (rng.normal(size=(7, 3)) / 3).astype(np.float32)}
    x = rng.normal(size=(12 * N, 5)).astype(np.float32)  # a global batch over N processes
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 12 * N)]

    def loss(p, x, y):
        h = fnp.tanh(x @ p["w1"] + p["b1"])
        return -fnp.mean(fnp.sum(y * nanofn.nn.log_softmax(h @ p["w2"]), axis=1))
    return params, x, y, loss


@pytest.mark.parametrize("ring", [False, True])  # MPI's collectives; every one a ring
@pytest.mark.parametrize("shard_optimizer", [False, True])
def test_data_parallel_equals_one_process_on_the_global_batch(shard_optimizer, ring,
                                                               monkeypatch):
    from nanofn.distributed import _data_parallel, _groups
    monkeypatch.setattr(_data_parallel, "SHARD_MIN_ELEMENTS", 30)  # shard w1 (5x7) only
    if ring:  # down to buffers of fewer elements than processes (empty messages)
        monkeypatch.setattr(_groups, "RING_MIN_BYTES", 0)
    params, x, y, loss = _mlp_problem()
    opt = optim.adam(1e-2)
    # one process, global batch, no collectives
    p, s = nanofn.tree.map(fnp.asarray, params), opt.init(nanofn.tree.map(fnp.asarray, params))
    ref_losses = []
    for _ in range(5):
        l, g = nanofn.value_and_grad(loss)(p, x, y)
        u, s = opt.update(g, s, p)
        p = optim.apply_updates(p, u)
        ref_losses.append(float(l))
    dp = dist.data_parallel(loss, opt, shard_optimizer=shard_optimizer)
    state = dp.init(nanofn.tree.map(fnp.asarray, params))
    losses = []
    for _ in range(5):
        state, l = dp.step(state, *dist.shard_batch((x, y)))
        losses.append(float(l))
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-5)
    for k in params:
        np.testing.assert_allclose(state.params[k], p[k], rtol=2e-4, atol=2e-6)
    if shard_optimizer:  # each process holds the Adam moments of its slice only
        small, big = state.opt_state[0].mu  # small leaves in full, large ones by rows
        assert [v.shape for v in small] == [params["b1"].shape, params["w2"].shape]
        assert [v.shape for v in big] == [(-(-5 // N), 7)]


def test_data_parallel_takes_numpy_or_nanofn_batches_alike():
    # a step given nanofn arrays runs the same collectives as one given numpy buffers
    params, x, y, loss = _mlp_problem()
    runs = []
    for as_array in (False, True):
        for shard in (False, True):
            dp = dist.data_parallel(loss, optim.adam(1e-2), shard_optimizer=shard)
            state = dp.init(nanofn.tree.map(fnp.asarray, params))
            xb, yb = dist.shard_batch((x, y))
            if as_array:
                xb, yb = fnp.asarray(xb), fnp.asarray(yb)
            losses = []
            for _ in range(3):
                state, l = dp.step(state, xb, yb)
                losses.append(float(l))
            runs.append((losses, state.params))
    for (losses, p), (want_losses, want) in zip(runs[2:], runs[:2]):
        np.testing.assert_allclose(losses, want_losses, rtol=1e-6)
        for k in params:
            np.testing.assert_allclose(p[k], want[k], rtol=1e-6)


def test_rank_aware_helpers(tmp_path_factory):
    mine = {"w": np.full(3, float(R)), "step": R}
    got = dist.broadcast_one_to_all(mine)
    np.testing.assert_array_equal(got["w"], np.zeros(3))
    assert got["step"] == 0
    got = dist.broadcast_one_to_all(mine, is_source=(R == N - 1))
    np.testing.assert_array_equal(got["w"], np.full(3, N - 1.0))
    rows = dist.shard_batch(np.arange(4 * N))
    np.testing.assert_array_equal(rows, np.arange(4 * R, 4 * R + 4))
    assert dist.is_main_process() == (R == 0)
    # a checkpoint written by process 0 is read back by all, from rank 0's path
    path = dist.broadcast_one_to_all({"p": str(tmp_path_factory.mktemp("ckpt") / "c.npz")})["p"]
    dist.save_checkpoint(path, {"w": np.arange(3.0) + 1, "step": 7})
    back = dist.load_checkpoint(path)
    np.testing.assert_array_equal(back["w"], [1.0, 2.0, 3.0])
    assert back["step"] == 7
    with pytest.raises(FileNotFoundError, match="process 0"):
        dist.load_checkpoint(path + ".missing")


def test_jitted_function_with_collectives_inside_pmap_and_vmap():
    @nanofn.jit
    def normalize(v):
        return v / lax.psum(v, "d")

    x = every(4, (3,)) ** 2
    out = nanofn.pmap(normalize, axis_name="d")(x[R][None])[0]
    np.testing.assert_allclose(out, x[R] / x.sum(0))
    # a vmap inside a pmap: psum over both names, the vmap's as an array op
    y = every(5, (2, 3))
    both = nanofn.pmap(nanofn.vmap(lambda v: lax.psum(v, ("d", "i")), axis_name="i"),
                       axis_name="d")(y[R][None])[0]
    np.testing.assert_allclose(both, np.broadcast_to(y.sum((0, 1)), (2, 3)))


def test_shutdown_and_initialize_with_explicit_arguments():  # keep last: it re-joins
    dist.shutdown()
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="one of .* started by an MPI launcher"):
        nanofn.device_count()
    with pytest.raises(ValueError, match=f"num_processes={N + 1}.*{N} process"):
        dist.initialize(num_processes=N + 1)
    with pytest.raises(ValueError, match="local_device_ids"):
        dist.initialize(local_device_ids=[0, 1])
    dist.initialize(coordinator_address="ignored:1234", num_processes=N, process_id=R)
    assert nanofn.device_count() == N and nanofn.process_index() == R
    out = nanofn.pmap(lambda v: lax.psum(v, "d"), axis_name="d")(np.ones((1, 2)))
    np.testing.assert_allclose(out, np.full((1, 2), float(N)))
