"""nanofn.experimental.multihost_utils in one process (tests/distributed/mpi has the
multi-process cases): every helper, on pytrees, and its errors."""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn.experimental import multihost_utils as mhu
from nanofn.sharding import NamedSharding, PartitionSpec as P

Point = collections.namedtuple("Point", ["x", "y"])


def test_the_module_is_reachable_as_in_jax():
    import nanofn.experimental
    assert nanofn.experimental.multihost_utils is mhu
    from nanofn.experimental import compilation_cache, pjit
    assert callable(compilation_cache.compilation_cache.set_cache_dir)
    assert callable(pjit.pjit)
    for name in mhu.__all__:
        assert getattr(mhu, name).__doc__, name


def test_sync_global_devices_returns_at_once_and_checks_its_name():
    assert mhu.sync_global_devices("checkpoint saved") is None
    with pytest.raises(TypeError, match="string"):
        mhu.sync_global_devices(3)


def test_broadcast_one_to_all_gives_numpy_leaves_of_any_pytree():
    tree = {"w": fnp.ones((2, 3)), "b": [np.float32(2.0), 3], "p": Point(np.arange(2), None)}
    for is_source in (None, True, False):
        out = mhu.broadcast_one_to_all(tree, is_source=is_source)
        assert set(out) == {"w", "b", "p"} and isinstance(out["p"], Point)
        assert type(out["w"]) is np.ndarray and out["w"].dtype == np.float32
        np.testing.assert_array_equal(out["w"], np.ones((2, 3)))
        assert out["b"][0].dtype == np.float32 and out["b"][1].shape == ()
        assert int(out["b"][1]) == 3 and out["p"].y is None
        np.testing.assert_array_equal(out["p"].x, [0, 1])


@pytest.mark.parametrize("tiled", [False, True])
def test_process_allgather_stacks_or_concatenates_one_process(tiled):
    tree = {"m": np.arange(6.0).reshape(2, 3), "s": np.float32(1.5), "i": 4,
            "t": (fnp.arange(3),)}
    out = mhu.process_allgather(tree, tiled=tiled)
    assert all(type(v) is np.ndarray for v in (out["m"], out["s"], out["i"], out["t"][0]))
    if tiled:
        np.testing.assert_array_equal(out["m"], tree["m"])
        np.testing.assert_array_equal(out["t"][0], np.arange(3))
    else:
        np.testing.assert_array_equal(out["m"], tree["m"][None])
        assert out["t"][0].shape == (1, 3)
    # scalars are stacked either way
    assert out["s"].shape == (1,) and out["s"].dtype == np.float32 and out["i"].shape == (1,)


def test_process_allgather_default_is_untiled():
    assert mhu.process_allgather(np.arange(3)).shape == (1, 3)
    assert mhu.process_allgather([]) == []


def test_assert_equal_passes_in_one_process():
    mhu.assert_equal({"lr": 1e-3, "dims": np.array([64, 10]), "nan": np.array([np.nan])})
    mhu.assert_equal(np.arange(3), "configs differ")


def test_leaves_that_cannot_travel_are_errors():
    with pytest.raises(TypeError, match="dtype object"):
        mhu.process_allgather({"f": np.array([object()])})
    with pytest.raises(TypeError, match="concrete arrays"):
        nanofn.jit(mhu.process_allgather)(fnp.ones(2))


def test_reached_preemption_sync_point_is_false():
    assert mhu.reached_preemption_sync_point(0) is False
    assert mhu.reached_preemption_sync_point(10_000) is False


def test_host_local_is_the_global_array_in_one_process():
    mesh = nanofn.make_mesh((1,), ("data",))
    local = {"x": np.arange(8.0).reshape(4, 2), "y": np.arange(4)}
    g = mhu.host_local_array_to_global_array(local, mesh, P("data"))
    assert set(g) == {"x", "y"}
    np.testing.assert_array_equal(g["x"], local["x"])
    assert g["x"].sharding == NamedSharding(mesh, P("data"))
    back = mhu.global_array_to_host_local_array(g, mesh, P("data"))
    np.testing.assert_array_equal(back["y"], local["y"])
    assert back["y"].sharding == NamedSharding(mesh, P("data"))
    # a pytree of specs, a prefix of the inputs; P() is replicated
    g = mhu.host_local_array_to_global_array(local, mesh, {"x": P("data", None), "y": P()})
    assert g["x"].sharding.spec == P("data", None) and g["y"].sharding.spec == P()


def test_host_local_to_global_with_simulated_devices():
    nanofn.config.update("jax_num_cpu_devices", 4)
    try:
        mesh = nanofn.make_mesh((2, 2), ("data", "model"))
        x = np.arange(16.0).reshape(4, 4)
        g = mhu.host_local_array_to_global_array(x, mesh, P("data", "model"))
        assert g.sharding.shard_shape(g.shape) == (2, 2)
        np.testing.assert_array_equal(g, x)
        local = mhu.global_array_to_host_local_array(g, mesh, P("data", "model"))
        np.testing.assert_array_equal(local, x)
        with pytest.raises(ValueError, match="divide"):
            mhu.host_local_array_to_global_array(np.arange(3.0), mesh, P("data"))
    finally:
        nanofn.config.update("jax_num_cpu_devices", -1)


def test_host_local_to_global_works_under_jit():
    mesh = nanofn.make_mesh((1,), ("data",))

    @nanofn.jit
    def f(x):
        g = mhu.host_local_array_to_global_array(x, mesh, P("data"))
        return mhu.global_array_to_host_local_array(g * 2, mesh, P("data"))

    np.testing.assert_array_equal(f(fnp.arange(3.0)), [0.0, 2.0, 4.0])


def test_host_local_to_global_errors():
    mesh = nanofn.make_mesh((1,), ("data",))
    for fn in (mhu.host_local_array_to_global_array, mhu.global_array_to_host_local_array):
        with pytest.raises(ValueError, match="None is not a valid pspec.*P\\(\\)"):
            fn(np.arange(4.0), mesh, None)
        with pytest.raises(ValueError, match="None is not a valid pspec"):
            fn({"a": np.ones(2), "b": np.ones(2)}, mesh, {"a": P(), "b": None})
        with pytest.raises(ValueError, match="mesh axis 'model'"):
            fn(np.arange(4.0), mesh, P("model"))
        with pytest.raises(ValueError, match="prefix"):
            fn({"a": np.ones(2)}, mesh, {"b": P()})
        with pytest.raises(TypeError, match="Mesh"):
            fn(np.arange(4.0), "mesh", P())


def test_live_devices_needs_distributed_initialize():
    with pytest.raises(RuntimeError, match="initialize"):
        with mhu.live_devices(nanofn.devices()):
            pass
    err = mhu.ProcessFailureError({nanofn.devices()[0]})
    assert "Devices failed" in str(err) and err.failed_devices == {nanofn.devices()[0]}


def test_pjit_is_jit_with_shardings_and_warns():
    from nanofn.experimental.pjit import pjit
    mesh = nanofn.make_mesh((1,), ("data",))
    with pytest.warns(DeprecationWarning, match="nanofn.jit"):
        f = pjit(lambda x, n: x * n, in_shardings=(NamedSharding(mesh, P("data")), None),
                 out_shardings=NamedSharding(mesh, P("data")), static_argnums=1,
                 donate_argnums=0, keep_unused=True, abstracted_axes=None,
                 compiler_options={})
    np.testing.assert_array_equal(f(fnp.arange(3.0), 3), [0.0, 3.0, 6.0])
    np.testing.assert_array_equal(f(fnp.arange(3.0), 3), [0.0, 3.0, 6.0])
    assert f.trace_count == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        g = pjit(lambda x, *, k: x + k, static_argnames="k")
    assert float(g(fnp.float32(1.0), k=2)) == 3.0
