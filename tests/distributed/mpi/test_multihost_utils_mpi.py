"""nanofn.experimental.multihost_utils across the processes of an MPI job (every process
runs these; inputs depend on the rank). Mismatches must raise on every rank, not hang."""

from __future__ import annotations

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn.experimental import multihost_utils as mhu
from nanofn.sharding import Mesh, PartitionSpec as P

R = nanofn.process_index()
N = nanofn.process_count()


def every(seed, shape):
    return np.random.default_rng(seed).normal(size=(N,) + tuple(shape))


def test_multihost_sync_global_devices():
    assert N >= 2
    mhu.sync_global_devices("start")
    mhu.sync_global_devices("start")  # the same name twice in a row is fine


def test_multihost_sync_global_devices_name_mismatch_raises_everywhere():
    name = "saved" if R == 0 else "restored"
    with pytest.raises(AssertionError, match="different names") as err:
        mhu.sync_global_devices(name)
    text = str(err.value)
    assert "process 0: 'saved'" in text and f"process {N - 1}: 'restored'" in text
    mhu.sync_global_devices("after the mismatch")  # the processes are still in step


def test_multihost_broadcast_one_to_all_from_process_0_and_another_source():
    mine = {"w": np.full(3, float(R)), "step": R, "nested": (fnp.arange(2) * R,)}
    got = mhu.broadcast_one_to_all(mine)
    np.testing.assert_array_equal(got["w"], np.zeros(3))
    assert int(got["step"]) == 0 and type(got["w"]) is np.ndarray
    np.testing.assert_array_equal(got["nested"][0], [0, 0])
    got = mhu.broadcast_one_to_all(mine, is_source=R == N - 1)
    np.testing.assert_array_equal(got["w"], np.full(3, N - 1.0))
    assert int(got["step"]) == N - 1 and got["nested"][0].dtype == np.int32
    np.testing.assert_array_equal(got["nested"][0], [0, N - 1])
    # bool and float16 leaves travel as bytes
    got = mhu.broadcast_one_to_all([np.array([R % 2 == 1, True]), np.float16(R + 0.5)],
                                   is_source=R == 1)
    assert got[0].tolist() == [True, True] and got[1] == np.float16(1.5)


def test_multihost_broadcast_one_to_all_errors_raise_everywhere():
    with pytest.raises(ValueError, match="exactly one process must be the source"):
        mhu.broadcast_one_to_all(np.ones(2), is_source=R < 2)
    with pytest.raises(ValueError, match="(?s)structures, shapes or dtypes.*process 1: "):
        mhu.broadcast_one_to_all(np.ones(2 + (R == 1)))


@pytest.mark.parametrize("tiled", [False, True])
def test_multihost_process_allgather_per_rank_values(tiled):
    X = every(1, (2, 3))
    tree = {"m": X[R], "s": np.float32(R), "t": (fnp.asarray(X[R, 0]),)}
    out = mhu.process_allgather(tree, tiled=tiled)
    dtype = np.asarray(tree["t"][0]).dtype  # what fnp.asarray made of a float64 row
    if tiled:
        np.testing.assert_array_equal(out["m"], X.reshape(2 * N, 3))
        np.testing.assert_array_equal(out["t"][0], X[:, 0].reshape(-1).astype(dtype))
    else:
        np.testing.assert_array_equal(out["m"], X)
        np.testing.assert_array_equal(out["t"][0], X[:, 0].astype(dtype))
    np.testing.assert_array_equal(out["s"], np.arange(N, dtype=np.float32))  # stacked
    assert mhu.process_allgather(R).tolist() == list(range(N))


def test_multihost_process_allgather_mismatch_raises_everywhere():
    with pytest.raises(ValueError, match="(?s)process_allgather.*process 0: .*\\[2\\]"):
        mhu.process_allgather({"x": np.ones(2 + R)})
    with pytest.raises(ValueError, match="process_allgather"):
        mhu.process_allgather({"x": np.ones(2)} if R else {"y": np.ones(2)})


def test_multihost_assert_equal():
    mhu.assert_equal({"lr": 1e-3, "dims": np.array([64, 10])}, "configs differ")
    cfg = np.array([1.0, 2.0, 3.0]) + (R == N - 1)
    with pytest.raises(AssertionError, match=f"configs differ.*processes \\[{N - 1}\\]"):
        mhu.assert_equal({"cfg": cfg}, "configs differ")
    with pytest.raises(AssertionError, match="shapes differ"):
        mhu.assert_equal(np.ones(1 + R), "shapes differ")
    mhu.sync_global_devices("after assert_equal")


def test_multihost_host_local_and_global_arrays_over_processes():
    mesh = Mesh(np.array(nanofn.devices()), ("data",))
    local = {"x": np.arange(4.0).reshape(2, 2) + 10 * R, "rep": np.arange(3)}
    g = mhu.host_local_array_to_global_array(local, mesh, {"x": P("data"), "rep": P()})
    want = np.concatenate([np.arange(4.0).reshape(2, 2) + 10 * r for r in range(N)])
    np.testing.assert_array_equal(g["x"], want)
    np.testing.assert_array_equal(g["rep"], np.arange(3))
    # a step on the global arrays computes JAX's values: the mean over the global batch
    assert float(fnp.mean(g["x"])) == pytest.approx(want.mean())
    back = mhu.global_array_to_host_local_array(g, mesh, {"x": P("data"), "rep": P()})
    np.testing.assert_array_equal(back["x"], local["x"])
    np.testing.assert_array_equal(back["rep"], np.arange(3))
    # a 2-D mesh with the processes along "data", and an array split along its axis 1
    mesh2 = Mesh(np.array(nanofn.devices()).reshape(N, 1), ("data", "model"))
    y = np.arange(6.0).reshape(3, 2) * (R + 1)
    g = mhu.host_local_array_to_global_array(y, mesh2, P(None, ("data", "model")))
    np.testing.assert_array_equal(
        g, np.concatenate([np.arange(6.0).reshape(3, 2) * (r + 1) for r in range(N)], 1))
    np.testing.assert_array_equal(
        mhu.global_array_to_host_local_array(g, mesh2, P(None, ("data", "model"))), y)


def test_multihost_host_local_mismatch_raises_everywhere():
    mesh = Mesh(np.array(nanofn.devices()), ("data",))
    with pytest.raises(ValueError, match="(?s)host_local_array_to_global_array.*process 1"):
        mhu.host_local_array_to_global_array(np.ones(2 + R), mesh, P("data"))
    # a mesh without process 0: it is not in the mesh, and every process raises
    sub = Mesh(np.array(nanofn.devices()[1:]), ("data",))
    with pytest.raises(ValueError, match="not in the mesh"):
        mhu.host_local_array_to_global_array(np.ones(2), sub, P("data"))
    mhu.sync_global_devices("after the host-local mismatches")


def test_multihost_live_devices_yields_every_device():
    with mhu.live_devices(nanofn.devices()) as devices:
        assert [d.id for d in devices] == list(range(N))
    assert mhu.reached_preemption_sync_point(5) is False
