"""jax.experimental.mesh_utils: device meshes in order of id, as JAX arranges CPU devices."""

import numpy as np
import pytest

import nanofn
from nanofn.experimental import mesh_utils


@pytest.fixture
def eight_devices():
    old = nanofn.config.read("jax_num_cpu_devices")
    nanofn.config.update("jax_num_cpu_devices", 8)
    yield nanofn.devices()
    nanofn.config.update("jax_num_cpu_devices", old)


def test_create_device_mesh_reshapes_the_devices_in_order(eight_devices):
    mesh = mesh_utils.create_device_mesh((4, 2))
    assert mesh.shape == (4, 2)
    assert [d.id for d in mesh.ravel()] == list(range(8))
    assert [d.id for d in mesh_utils.create_device_mesh((3,)).ravel()] == [0, 1, 2]
    m = nanofn.sharding.Mesh(mesh, ("x", "y"))
    x = nanofn.device_put(np.arange(16.0).reshape(8, 2),
                          nanofn.NamedSharding(m, nanofn.P("x", "y")))
    assert x.sharding.shard_shape((8, 2)) == (2, 1)


def test_hybrid_mesh_in_one_process_and_errors(eight_devices):
    mesh = mesh_utils.create_hybrid_device_mesh((4, 2), (1, 1))
    assert [d.id for d in mesh.ravel()] == list(range(8))
    with pytest.raises(ValueError, match="1 granules .* cannot make a \\(2, 1\\) mesh"):
        mesh_utils.create_hybrid_device_mesh((2, 2), (2, 1))
    with pytest.raises(ValueError, match="needs 16 devices, got 8"):
        mesh_utils.create_device_mesh((4, 4))
    with pytest.raises(ValueError, match="must have the same length"):
        mesh_utils.create_hybrid_device_mesh((2, 2), (1,))
    with pytest.raises(ValueError, match="positive sizes"):
        mesh_utils.create_device_mesh((0, 2))
