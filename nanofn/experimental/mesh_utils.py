"""Device meshes for `nanofn.sharding.Mesh` (`jax.experimental.mesh_utils`).

On accelerators JAX arranges devices so that mesh neighbours are physical neighbours. A
CPU process has no interconnect topology, so here a mesh is the devices in order of `id`,
reshaped: the same result JAX gives for CPU devices.

Example:
    >>> import nanofn
    >>> from nanofn.experimental import mesh_utils
    >>> mesh_utils.create_device_mesh((1, 1)).shape
    (1, 1)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["create_device_mesh", "create_hybrid_device_mesh"]


def _devices(devices, need, who):
    import nanofn
    devices = list(nanofn.devices() if devices is None else devices)
    if len(devices) < need:
        raise ValueError(f"{who}: a mesh of {need} devices needs {need} devices, got "
                         f"{len(devices)}; simulate more CPU devices with "
                         f"nanofn.config.update('jax_num_cpu_devices', {need})")
    return devices


def _shape(shape, name, who):
    try:
        shape = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"{who}: {name} must be a sequence of ints, got {shape!r}") from None
    if any(d < 1 for d in shape):
        raise ValueError(f"{who}: {name} must hold positive sizes, got {shape}")
    return shape


def create_device_mesh(mesh_shape, devices=None, *, contiguous_submeshes=False,
                       allow_split_physical_axes=False) -> np.ndarray:
    """An array of devices of shape `mesh_shape`, for `Mesh(devices, axis_names)`.

    Args:
        mesh_shape: the mesh's sizes; their product is the number of devices used.
        devices: the devices to arrange (default: `nanofn.devices()`); a mesh needing
            fewer takes the first ones, as JAX does for CPU devices.
        contiguous_submeshes, allow_split_physical_axes: accepted for JAX compatibility
            (they steer the placement on TPU topologies, which a CPU does not have).

    Returns:
        A numpy object array of devices.

    Example:
        >>> import nanofn
        >>> from nanofn.experimental import mesh_utils
        >>> mesh = nanofn.sharding.Mesh(mesh_utils.create_device_mesh((1,)), ("data",))
        >>> mesh.shape["data"]
        1
    """
    del contiguous_submeshes, allow_split_physical_axes  # no physical topology on a CPU
    shape = _shape(mesh_shape, "mesh_shape", "create_device_mesh")
    devices = _devices(devices, math.prod(shape), "create_device_mesh")
    out = np.empty(len(devices), dtype=object)
    out[:] = devices
    return out[:math.prod(shape)].reshape(shape)


def create_hybrid_device_mesh(mesh_shape, dcn_mesh_shape, devices=None, *,
                              process_is_granule=False, should_sort_granules_by_key=True,
                              allow_split_physical_axes=False) -> np.ndarray:
    """A mesh over several hosts: `dcn_mesh_shape` arranges the processes (granules) and
    `mesh_shape` the devices within each, giving a mesh of their elementwise product.

    The granules are the processes, in order of their index (JAX's `process_is_granule`,
    the only grouping a CPU has): one process can only be a `dcn_mesh_shape` of ones, and
    each process of an MPI run is one device.

    Example:
        >>> import nanofn
        >>> from nanofn.experimental import mesh_utils
        >>> mesh_utils.create_hybrid_device_mesh((1, 1), (1, 1)).shape
        (1, 1)
    """
    del process_is_granule, should_sort_granules_by_key, allow_split_physical_axes
    who = "create_hybrid_device_mesh"
    local = _shape(mesh_shape, "mesh_shape", who)
    dcn = _shape(dcn_mesh_shape, "dcn_mesh_shape", who)
    if len(local) != len(dcn):
        raise ValueError(f"{who}: mesh_shape {local} and dcn_mesh_shape {dcn} must have the "
                         "same length")
    devices = _devices(devices, math.prod(local) * math.prod(dcn), who)
    granules = {}
    for d in devices:
        granules.setdefault(getattr(d, "process_index", 0), []).append(d)
    groups = [granules[k] for k in sorted(granules)]
    if len(groups) < math.prod(dcn) or any(len(g) < math.prod(local) for g in groups):
        raise ValueError(f"{who}: {len(groups)} granules of {[len(g) for g in groups]} "
                         f"devices cannot make a {dcn} mesh of {local} meshes")
    blocks = [create_device_mesh(local, g) for g in groups[:math.prod(dcn)]]
    grid = np.empty(dcn + local, dtype=object)
    for k, block in enumerate(blocks):
        grid[np.unravel_index(k, dcn)] = block
    # interleave: axis i of the result is (dcn axis i, local axis i)
    nd = len(local)
    grid = grid.transpose([a for i in range(nd) for a in (i, nd + i)])
    return grid.reshape(tuple(a * b for a, b in zip(dcn, local)))
