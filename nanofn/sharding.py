"""nanofn.sharding: meshes of devices, partition specs and shardings (`jax.sharding`).

A `Mesh` arranges devices in a grid whose axes have names; a `PartitionSpec` says, for
each axis of an array, which mesh axes split it; a `NamedSharding` pairs the two. In JAX a
sharding decides which block of an array each device stores. nanofn keeps every array
whole in the process that made it, so here a sharding is a *description*: nanofn checks
it (each split axis must divide evenly, as in JAX), answers JAX's questions about it
(`shard_shape`, `devices_indices_map`, ...), and an array placed with one (`device_put`,
`make_array_from_callback`, `shard_map`) reports it as its `.sharding`. Every other array
reports a `SingleDeviceSharding` on the first device of its process: nanofn does not carry
layouts through operations.

The programs that use the layout are written with `nanofn.shard_map`, which runs a
function once per device block as nested `vmap`s with the mesh axis names bound. Under an
MPI launch a mesh that spans several processes describes arrays that no one process
holds: building such an array raises an error (use `pmap`, or `shard_map` over this
process's devices, with process-local data).

Example:
    >>> import nanofn, numpy as np
    >>> from nanofn.sharding import Mesh, NamedSharding, PartitionSpec as P
    >>> mesh = Mesh(np.array(nanofn.devices()), ("x",))
    >>> NamedSharding(mesh, P("x")).shard_shape((8, 3))
    (8, 3)
"""

from __future__ import annotations

import collections
import enum
import math
import threading
import warnings
import weakref

import numpy as np

from nanofn import _core as core

__all__ = ["Sharding", "SingleDeviceSharding", "NamedSharding", "PartitionSpec", "Mesh",
           "AbstractMesh", "AxisType", "get_mesh", "set_mesh", "get_abstract_mesh",
           "make_single_device_sharding", "Shard"]


def _this_process() -> int:
    from nanofn.distributed._state import process_index
    return process_index()


def _first_device():
    from nanofn.distributed._state import local_devices
    return local_devices()[0]


# ------------------------------------------------------------------------ partition specs


class _Unconstrained:
    """The value of `PartitionSpec.UNCONSTRAINED`: any layout along this array axis."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self):
        return "UNCONSTRAINED"

    def __reduce__(self):
        return (_Unconstrained, ())


def _canonical_entry(entry):
    """One entry of a spec: None, UNCONSTRAINED, a mesh axis name, or a tuple of names
    (a list becomes a tuple, a one-name tuple its name, an empty one None)."""
    if isinstance(entry, list):
        entry = tuple(entry)
    if isinstance(entry, tuple):
        if len(entry) == 0:
            return None
        if len(entry) == 1:
            return entry[0]
    return entry


def _rebuild_spec(partitions, unreduced, reduced):
    return PartitionSpec(*partitions, unreduced=unreduced, reduced=reduced)


class PartitionSpec:
    """How an array's axes are split over the axes of a mesh (`jax.sharding.PartitionSpec`,
    also `nanofn.P`).

    Entry `i` describes array axis `i`: `None` (not split: every device along the mesh has
    all of it), a mesh axis name (split into that many blocks), or a tuple of names (split
    over all of them, the first one major). Axes past the last entry are not split. A spec
    is immutable and compares by value; it is not a tuple (as in JAX), so pytrees of specs
    treat it as a leaf.

    Example:
        >>> from nanofn.sharding import PartitionSpec as P
        >>> P("x", None), P(("x", "y")), P()
        (P('x', None), P(('x', 'y'),), P())
        >>> len(P("x", None)), P("x", None)[0], P(["x"]) == P("x")
        (2, 'x', True)
    """

    __slots__ = ("_partitions", "unreduced", "reduced")

    UNCONSTRAINED = _Unconstrained()

    def __init_subclass__(cls, **kwargs):
        raise TypeError("PartitionSpec cannot be subclassed")

    def __init__(self, *partitions, unreduced=frozenset(), reduced=frozenset()):
        parts = tuple(_canonical_entry(p) for p in partitions)
        sets = []
        for what, names in (("unreduced", unreduced), ("reduced", reduced)):
            if not isinstance(names, (set, frozenset)):
                raise TypeError(f"PartitionSpec: {what} must be a set or frozenset of mesh "
                                f"axis names, got {type(names).__name__}")
            if None in names:
                raise ValueError(f"PartitionSpec: {what} holds mesh axis names; None is not "
                                 "one")
            sets.append(frozenset(names))
        unreduced, reduced = sets
        if unreduced & reduced:
            raise ValueError(f"PartitionSpec: an axis cannot be both unreduced and reduced: "
                             f"{sorted(map(str, unreduced & reduced))}")
        split = {n for p in parts for n in (p if isinstance(p, tuple) else (p,))}
        if (unreduced | reduced) & split:
            both = sorted(map(str, (unreduced | reduced) & split))
            raise ValueError(f"PartitionSpec: the axes {both} split an array axis and cannot "
                             "also be unreduced or reduced")
        object.__setattr__(self, "_partitions", parts)
        object.__setattr__(self, "unreduced", unreduced)
        object.__setattr__(self, "reduced", reduced)

    def __setattr__(self, name, value):
        raise AttributeError("a PartitionSpec is immutable; make a new one (spec.update(...))")

    @property
    def partitions(self) -> tuple:
        """The entries, one per array axis."""
        return self._partitions

    def _plain(self, what):
        if self.unreduced or self.reduced:
            raise ValueError(f"{what} of a PartitionSpec with unreduced or reduced axes is "
                             "ambiguous; use spec.partitions")

    def __getitem__(self, i):
        self._plain("indexing")
        return self._partitions[i]

    def __iter__(self):
        self._plain("iterating")
        return iter(self._partitions)

    def __len__(self):
        return len(self._partitions)

    def __eq__(self, other):
        if not isinstance(other, PartitionSpec):
            return NotImplemented
        return (self._partitions == other._partitions and self.unreduced == other.unreduced
                and self.reduced == other.reduced)

    def __hash__(self):
        return hash((PartitionSpec, self._partitions, self.unreduced, self.reduced))

    def __repr__(self):
        body = repr(self._partitions)[1:-1]
        extra = []
        if self.unreduced:
            extra.append(f"unreduced={set(self.unreduced)!r}")
        if self.reduced:
            extra.append(f"reduced={set(self.reduced)!r}")
        if extra:
            body = (body + " " if body.endswith(",") else body + ", ") if body else ""
            body += ", ".join(extra)
        return f"P({body})"

    def __reduce__(self):
        return (_rebuild_spec, (self._partitions, self.unreduced, self.reduced))

    def __add__(self, other):
        if isinstance(other, PartitionSpec):
            return PartitionSpec(*self._partitions, *other._partitions,
                                 unreduced=self.unreduced | other.unreduced,
                                 reduced=self.reduced | other.reduced)
        if isinstance(other, tuple):
            self._plain("adding a tuple to")
            return PartitionSpec(*self._partitions, *other)
        return NotImplemented

    def __radd__(self, other):
        if isinstance(other, tuple):
            self._plain("adding a tuple to")
            return PartitionSpec(*other, *self._partitions)
        return NotImplemented

    def index(self, value):
        """The position of the entry `value` (written as in the constructor)."""
        return self._partitions.index(_canonical_entry(value))

    def count(self, value):
        """How many entries equal `value` (written as in the constructor)."""
        return self._partitions.count(_canonical_entry(value))

    def update(self, partitions=None, unreduced=None, reduced=None):
        """A copy with some of `partitions`, `unreduced`, `reduced` replaced.

        Example:
            >>> from nanofn.sharding import PartitionSpec as P
            >>> P("x").update(partitions=("y", None))
            P('y', None)
        """
        return PartitionSpec(*(self._partitions if partitions is None else partitions),
                             unreduced=self.unreduced if unreduced is None else unreduced,
                             reduced=self.reduced if reduced is None else reduced)


P = PartitionSpec


def _entry_names(entry) -> tuple:
    """The mesh axis names of one spec entry, major first (none for None/UNCONSTRAINED)."""
    if entry is None or entry is PartitionSpec.UNCONSTRAINED:
        return ()
    return entry if isinstance(entry, tuple) else (entry,)


def _dim_names(spec, ndim: int) -> list:
    """Per array axis (`ndim` of them), the mesh axes that split it."""
    names = [_entry_names(e) for e in spec.partitions]
    return names + [()] * (ndim - len(names))


def _spec_names(spec) -> list:
    return [n for e in spec.partitions for n in _entry_names(e)]


# ------------------------------------------------------------------------ meshes


class AxisType(enum.Enum):
    """How a mesh axis is handled (`jax.sharding.AxisType`): `Auto` (the compiler lays
    arrays out), `Explicit` (the layout is part of an array's type) or `Manual` (inside
    `shard_map`). nanofn records it; every array is whole in its process either way.

    Example:
        >>> from nanofn.sharding import AxisType
        >>> list(AxisType)
        [Auto, Explicit, Manual]
    """

    Auto = enum.auto()
    Explicit = enum.auto()
    Manual = enum.auto()

    def __repr__(self):
        return self.name


def _axis_types(names, axis_types, who):
    if axis_types is None:
        axis_types = (AxisType.Auto,) * len(names)
    if not isinstance(axis_types, tuple):
        axis_types = (axis_types,)
    if not all(isinstance(t, AxisType) for t in axis_types):
        raise TypeError(f"{who}: axis_types must be AxisType values (nanofn.sharding.AxisType"
                        f".Auto, .Explicit, .Manual), got {axis_types!r}")
    if len(axis_types) != len(names):
        raise ValueError(f"{who}: there are {len(names)} axis names {names} but "
                         f"{len(axis_types)} axis_types {axis_types}; give one type per axis")
    return axis_types


class _MeshBase:
    __slots__ = ()

    def __setattr__(self, name, value):
        raise AttributeError(f"a {type(self).__name__} is immutable; make a new one "
                             "(mesh.update(...))")

    @property
    def shape_tuple(self) -> tuple:
        """`((name, size), ...)` in axis order."""
        return tuple(self.shape.items())

    @property
    def empty(self) -> bool:
        """Whether the mesh has no devices (what `get_mesh()` returns when none is set)."""
        return self.size == 0

    @property
    def _name_to_type(self) -> dict:
        return dict(zip(self.axis_names, self.axis_types))

    def _axes_str(self):
        return ", ".join(f"{n!r}: {s}" for n, s in self.shape.items())


class Mesh(_MeshBase):
    """Devices in a grid whose axes have names (`jax.sharding.Mesh`).

    Args:
        devices: an array (or nested lists) of devices, such as
            `np.array(nanofn.devices()).reshape(2, 2)`.
        axis_names: one name per axis of `devices` (a string for a one-axis mesh).
        axis_types: an `AxisType` per axis (default: all `Auto`).

    `shape` maps each axis name to its size, in order; `size` is the number of devices.
    Meshes compare by value. `with mesh:` is JAX's older way to set the mesh (deprecated
    there too, with the same warning); use `nanofn.set_mesh(mesh)`.

    Example:
        >>> import nanofn, numpy as np
        >>> from nanofn.sharding import Mesh
        >>> mesh = Mesh(np.array(nanofn.devices()).reshape(1, 1), ("x", "y"))
        >>> dict(mesh.shape), mesh.axis_names, mesh.size
        ({'x': 1, 'y': 1}, ('x', 'y'), 1)
        >>> mesh
        Mesh(axis_sizes=(1, 1), axis_names=('x', 'y'), axis_types=(Auto, Auto))
    """

    __slots__ = ("devices", "axis_names", "axis_types", "size", "shape", "_key")

    def __init__(self, devices, axis_names, axis_types=None):
        devices = np.array(devices, dtype=object)
        if isinstance(axis_names, str):
            axis_names = (axis_names,)
        axis_names = tuple(axis_names)
        if any(n is None for n in axis_names):
            raise ValueError(f"Mesh: axis names cannot be None, got {axis_names}")
        if len(set(axis_names)) != len(axis_names):
            raise ValueError(f"Mesh: axis names must be distinct, got {axis_names}")
        if devices.ndim != len(axis_names):
            raise ValueError(f"Mesh: devices has {devices.ndim} axes (shape {devices.shape}) "
                             f"but {len(axis_names)} axis names {axis_names} were given; give "
                             "one name per axis of devices")
        axis_types = _axis_types(axis_names, axis_types, "Mesh")
        devices.flags.writeable = False
        empty = not axis_names and devices.flat[0] is None
        set_ = object.__setattr__
        set_(self, "devices", devices)
        set_(self, "axis_names", axis_names)
        set_(self, "axis_types", axis_types)
        set_(self, "size", 0 if empty else math.prod(devices.shape))
        set_(self, "shape", collections.OrderedDict(zip(axis_names, devices.shape)))
        set_(self, "_key", (tuple(devices.flat), devices.shape, axis_names, axis_types))

    def __eq__(self, other):
        return isinstance(other, Mesh) and self._key == other._key

    def __hash__(self):
        return hash((Mesh, self._key))

    def __reduce__(self):
        return (Mesh, (self.devices, self.axis_names, self.axis_types))

    @property
    def axis_sizes(self) -> tuple:
        """The size of each axis, in order."""
        return self.devices.shape

    @property
    def device_ids(self) -> np.ndarray:
        """The ids of the devices, in the mesh's shape."""
        return np.vectorize(lambda d: d.id, otypes=[int])(self.devices)

    @property
    def local_devices(self) -> list:
        """The devices of this process, in mesh order."""
        me = _this_process()
        return [d for d in self.devices.flat if d is not None and d.process_index == me]

    @property
    def is_multi_process(self) -> bool:
        """Whether some devices belong to other processes (an MPI job)."""
        return self.devices.size != len(self.local_devices)

    @property
    def local_mesh(self) -> Mesh:
        """The smallest block of the mesh that holds this process's devices (they must fill
        it)."""
        if self.empty:
            return self
        me = _this_process()
        local = np.vectorize(lambda d: d.process_index == me, otypes=[bool])(self.devices)
        box = []
        for axis in range(self.devices.ndim):
            others = tuple(a for a in range(self.devices.ndim) if a != axis)
            hit = np.flatnonzero(local.any(axis=others))
            if hit.size == 0:
                raise ValueError("Mesh.local_mesh: no device of the mesh is in this process")
            box.append(slice(int(hit.min()), int(hit.max()) + 1))
        if not local[tuple(box)].all():
            raise ValueError("Mesh.local_mesh: this process's devices do not form a block of "
                             "the mesh")
        return Mesh(self.devices[tuple(box)], self.axis_names, self.axis_types)

    @property
    def abstract_mesh(self) -> AbstractMesh:
        """The mesh without its devices: axis sizes, names and types."""
        return AbstractMesh(self.axis_sizes if self.axis_names else (), self.axis_names,
                            self.axis_types)

    def update(self, devices=None, axis_names=None, axis_types=None) -> Mesh:
        """A copy with some of `devices`, `axis_names`, `axis_types` replaced."""
        return Mesh(self.devices if devices is None else devices,
                    self.axis_names if axis_names is None else axis_names,
                    self.axis_types if axis_types is None else axis_types)

    def __str__(self):
        if self.empty:
            return "Mesh()"
        return f"Mesh({self._axes_str()}, axis_types={self.axis_types})"

    def __repr__(self):
        if self.empty:
            return "Mesh(axis_sizes=(), axis_names=())"
        return (f"Mesh(axis_sizes={self.axis_sizes}, axis_names={self.axis_names!r}, "
                f"axis_types={self.axis_types})")

    def __enter__(self):
        warnings.warn("`with mesh:` is deprecated (as in JAX); use `with nanofn.set_mesh(mesh):`",
                      DeprecationWarning, stacklevel=2)
        _mesh_state.legacy.append(self)
        return self

    def __exit__(self, *exc_info):
        _mesh_state.legacy.pop()
        return False


class AbstractMesh(_MeshBase):
    """A mesh's axis sizes, names and types without devices (`jax.sharding.AbstractMesh`).

    `shard_map` and `NamedSharding.shard_shape` accept one; the questions that need devices
    (`devices`, `local_devices`, `devices_indices_map`) raise ValueError.

    Example:
        >>> from nanofn.sharding import AbstractMesh
        >>> mesh = AbstractMesh((2, 4), ("x", "y"))
        >>> mesh.shape["y"], mesh.size
        (4, 8)
    """

    __slots__ = ("axis_sizes", "axis_names", "axis_types", "size", "shape", "abstract_device")

    def __init__(self, axis_sizes, axis_names, axis_types=None, *, abstract_device=None):
        axis_sizes, axis_names = tuple(int(s) for s in axis_sizes), tuple(axis_names)
        if len(axis_sizes) != len(axis_names):
            raise ValueError(f"AbstractMesh: {len(axis_sizes)} axis sizes {axis_sizes} but "
                             f"{len(axis_names)} axis names {axis_names}")
        axis_types = _axis_types(axis_names, axis_types, "AbstractMesh")
        set_ = object.__setattr__
        set_(self, "axis_sizes", axis_sizes)
        set_(self, "axis_names", axis_names)
        set_(self, "axis_types", axis_types)
        set_(self, "abstract_device", abstract_device)
        set_(self, "size", math.prod(axis_sizes) if axis_sizes else 0)
        set_(self, "shape", collections.OrderedDict(zip(axis_names, axis_sizes)))

    def _key(self):
        return (self.axis_sizes, self.axis_names, self.axis_types, self.abstract_device)

    def __eq__(self, other):
        return isinstance(other, AbstractMesh) and self._key() == other._key()

    def __hash__(self):
        return hash((AbstractMesh, self._key()))

    def __reduce__(self):
        return (_rebuild_abstract_mesh, self._key())

    @property
    def abstract_mesh(self) -> AbstractMesh:
        """Itself."""
        return self

    def update(self, axis_sizes=None, axis_names=None, axis_types=None) -> AbstractMesh:
        """A copy with some of `axis_sizes`, `axis_names`, `axis_types` replaced."""
        return AbstractMesh(self.axis_sizes if axis_sizes is None else axis_sizes,
                            self.axis_names if axis_names is None else axis_names,
                            self.axis_types if axis_types is None else axis_types,
                            abstract_device=self.abstract_device)

    def __repr__(self):
        axes = self._axes_str() if self.axis_names else "()"
        return f"AbstractMesh({axes}, axis_types={self.axis_types})"

    def _no(self, what):
        raise ValueError(f"AbstractMesh has no {what}: it holds axis sizes and names only; "
                         "use a Mesh")

    devices = property(lambda self: self._no("devices"))
    device_ids = property(lambda self: self._no("device_ids"))
    local_devices = property(lambda self: self._no("local_devices"))
    local_mesh = property(lambda self: self._no("local_mesh"))
    is_multi_process = property(lambda self: self._no("is_multi_process"))

    def __enter__(self):
        self._no("context manager")

    def __exit__(self, *exc_info):
        return False


def _rebuild_abstract_mesh(sizes, names, types, device):
    return AbstractMesh(sizes, names, types, abstract_device=device)


_EMPTY_MESH = Mesh(np.empty((), dtype=object), ())
_EMPTY_ABSTRACT_MESH = AbstractMesh((), ())


class _MeshState(threading.local):
    """The mesh set by `set_mesh` (and the older `with mesh:` stack), per thread like the
    trace state."""

    mesh = _EMPTY_MESH

    def __init__(self):
        self.legacy: list = []


_mesh_state = _MeshState()


class set_mesh:
    """Set the mesh that `shard_map(mesh=None)`, `device_put(x, P(...))` and
    `with_sharding_constraint(x, P(...))` use (`jax.set_mesh`).

    Called plainly it sets the mesh from then on; used in a `with` block it sets it for the
    block and restores the previous one after. `set_mesh(None)` clears it. Not inside
    `jit` or another transformation, as in JAX.

    Example:
        >>> import nanofn
        >>> mesh = nanofn.make_mesh((1,), ("x",))
        >>> with nanofn.set_mesh(mesh):
        ...     nanofn.sharding.get_mesh().axis_names
        ('x',)
        >>> nanofn.sharding.get_mesh().empty
        True
    """

    __slots__ = ("_previous",)

    def __init__(self, mesh):
        if mesh is not None and not isinstance(mesh, Mesh):
            raise ValueError(f"set_mesh: expected a nanofn.sharding.Mesh (or None), got "
                             f"{type(mesh).__name__}")
        if core._state.trace_stack:
            raise ValueError("set_mesh can be called only outside jit, grad, vmap and the "
                             "other transformations (as in JAX)")
        if mesh is not None and AxisType.Manual in mesh.axis_types:
            raise ValueError(f"set_mesh: {mesh} has Manual axes; shard_map makes axes manual")
        self._previous = _mesh_state.mesh
        _mesh_state.mesh = _EMPTY_MESH if mesh is None else mesh

    def __enter__(self):
        return None

    def __exit__(self, *exc_info):
        _mesh_state.mesh = self._previous
        return False


def get_mesh() -> Mesh:
    """The mesh set by `set_mesh`, or an empty `Mesh()` (`jax.sharding.get_mesh`).

    Example:
        >>> import nanofn
        >>> nanofn.sharding.get_mesh()
        Mesh(axis_sizes=(), axis_names=())
    """
    return _mesh_state.mesh


def get_abstract_mesh() -> AbstractMesh:
    """The axis sizes, names and types of the mesh set by `set_mesh` (empty if none)
    (`jax.sharding.get_abstract_mesh`).

    Example:
        >>> import nanofn
        >>> nanofn.sharding.get_abstract_mesh().empty
        True
    """
    mesh = _mesh_state.mesh
    return _EMPTY_ABSTRACT_MESH if mesh.empty else mesh.abstract_mesh


def _context_mesh(legacy=False):
    """The mesh a bare PartitionSpec refers to: `set_mesh`'s, else (where JAX still reads
    it) the innermost `with mesh:`; None if neither."""
    mesh = _mesh_state.mesh
    if mesh.empty and legacy and _mesh_state.legacy:
        mesh = _mesh_state.legacy[-1]
    return None if mesh.empty else mesh


# ------------------------------------------------------------------------ shardings


class IndivisibleError(ValueError):
    """An array axis does not divide evenly into the blocks a sharding asks for."""


def _shape_tuple(shape) -> tuple:
    return tuple(int(s) for s in shape)


class Sharding:
    """How an array is laid out over devices: the base class (`jax.sharding.Sharding`).

    A subclass gives `device_set`, `num_devices`, `is_fully_replicated`,
    `is_fully_addressable`, `memory_kind` and `devices_indices_map`; the rest follows.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> isinstance(fnp.ones(2).sharding, nanofn.sharding.Sharding)
        True
    """

    @property
    def device_set(self) -> set:
        """Every device the sharding spans (of all processes)."""
        raise NotImplementedError

    @property
    def num_devices(self) -> int:
        """The number of devices the sharding spans."""
        raise NotImplementedError

    @property
    def is_fully_replicated(self) -> bool:
        """Whether every device holds the whole array."""
        raise NotImplementedError

    @property
    def is_fully_addressable(self) -> bool:
        """Whether every device belongs to this process."""
        raise NotImplementedError

    @property
    def memory_kind(self):
        """The memory the array lives in (a label; nanofn has host memory only)."""
        raise NotImplementedError

    def with_memory_kind(self, kind):
        """The same sharding with another `memory_kind`."""
        raise NotImplementedError

    def devices_indices_map(self, global_shape) -> dict:
        """For each device, the tuple of slices of an array of `global_shape` it holds."""
        raise NotImplementedError

    @property
    def addressable_devices(self) -> set:
        """The devices of this process."""
        me = _this_process()
        return {d for d in self.device_set if d.process_index == me}

    def addressable_devices_indices_map(self, global_shape) -> dict:
        """`devices_indices_map`, for this process's devices only."""
        local = self.addressable_devices
        return {d: i for d, i in self.devices_indices_map(global_shape).items() if d in local}

    def shard_shape(self, global_shape) -> tuple:
        """The shape of the block each device holds of an array of `global_shape`."""
        global_shape = _shape_tuple(global_shape)
        index = next(iter(self.devices_indices_map(global_shape).values()))
        return tuple(len(range(*s.indices(n))) for s, n in zip(index, global_shape))

    def is_equivalent_to(self, other, ndim: int) -> bool:
        """Whether both put the same blocks of any array of rank `ndim` on the same devices.

        Example:
            >>> import nanofn, numpy as np
            >>> from nanofn.sharding import Mesh, NamedSharding, PartitionSpec as P
            >>> mesh = Mesh(np.array(nanofn.devices()), ("x",))
            >>> NamedSharding(mesh, P("x")).is_equivalent_to(NamedSharding(mesh, P()), 1)
            True
        """
        if not isinstance(other, Sharding) or self.memory_kind != other.memory_kind:
            return False
        shape = (math.lcm(max(self.num_devices, 1), max(other.num_devices, 1)),) * ndim
        try:
            return self.devices_indices_map(shape) == other.devices_indices_map(shape)
        except ValueError:
            return False


class SingleDeviceSharding(Sharding):
    """An array held whole by one device (`jax.sharding.SingleDeviceSharding`): what an
    array that was not placed with another sharding reports.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> s = fnp.ones((2, 3)).sharding
        >>> s, s.num_devices, s.shard_shape((2, 3))
        (SingleDeviceSharding(device=CpuDevice(id=0)), 1, (2, 3))
    """

    def __init__(self, device, *, memory_kind=None):
        self._device = device
        self._memory_kind = memory_kind

    device_set = property(lambda self: {self._device})
    num_devices = property(lambda self: 1)
    is_fully_replicated = property(lambda self: True)
    memory_kind = property(lambda self: self._memory_kind)

    @property
    def is_fully_addressable(self) -> bool:
        return self._device.process_index == _this_process()

    def with_memory_kind(self, kind):
        return SingleDeviceSharding(self._device, memory_kind=kind)

    def devices_indices_map(self, global_shape) -> dict:
        return {self._device: (slice(None),) * len(_shape_tuple(global_shape))}

    def shard_shape(self, global_shape) -> tuple:
        return _shape_tuple(global_shape)

    def __repr__(self):
        mem = "" if self._memory_kind is None else f", memory_kind={self._memory_kind}"
        return f"SingleDeviceSharding(device={self._device!r}{mem})"

    def __eq__(self, other):
        return (isinstance(other, SingleDeviceSharding) and other._device == self._device
                and other._memory_kind == self._memory_kind)

    def __hash__(self):
        return hash(("single", self._device, self._memory_kind))

    def __reduce__(self):
        return (_rebuild_single, (self._device, self._memory_kind))


def _rebuild_single(device, memory_kind):
    return SingleDeviceSharding(device, memory_kind=memory_kind)


def make_single_device_sharding(device, *, memory_kind=None) -> SingleDeviceSharding:
    """`SingleDeviceSharding(device, memory_kind=memory_kind)`
    (`jax.sharding.make_single_device_sharding`).

    Example:
        >>> import nanofn
        >>> nanofn.sharding.make_single_device_sharding(nanofn.devices()[0])
        SingleDeviceSharding(device=CpuDevice(id=0))
    """
    return SingleDeviceSharding(device, memory_kind=memory_kind)


def _check_spec(mesh, spec, who):
    """JAX's checks of a spec against a mesh: known axes, each used once, UNCONSTRAINED
    only with an Auto axis, unreduced/reduced axes Explicit."""
    names = _spec_names(spec)
    for n in names:
        if n not in mesh.axis_names:
            raise ValueError(f"{who}: {spec} names the mesh axis {n!r}, but the mesh has axes "
                             f"{mesh.axis_names}")
    twice = sorted({str(n) for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{who}: {spec} uses the mesh axes {twice} more than once; a mesh "
                         "axis may split one array axis at most")
    if (PartitionSpec.UNCONSTRAINED in spec.partitions
            and AxisType.Auto not in mesh.axis_types):
        raise ValueError(f"{who}: {spec} holds P.UNCONSTRAINED, which needs an Auto mesh "
                         f"axis; the mesh's axis types are {mesh.axis_types}")
    for what, axes in (("unreduced", spec.unreduced), ("reduced", spec.reduced)):
        for n in axes:
            if n not in mesh.axis_names:
                raise ValueError(f"{who}: {what} axis {n!r} of {spec} is not a mesh axis "
                                 f"{mesh.axis_names}")
            if mesh._name_to_type[n] is not AxisType.Explicit:
                raise ValueError(f"{who}: {what} axes must be Explicit mesh axes; {n!r} is "
                                 f"{mesh._name_to_type[n]!r}")


class NamedSharding(Sharding):
    """An array split over a mesh by a partition spec (`jax.sharding.NamedSharding`).

    Array axis `i` is cut into as many equal blocks as the mesh axes named by `spec[i]`
    have devices together; a device holds the block at its position along those mesh axes,
    and devices that differ only along unnamed mesh axes hold the same block. nanofn keeps
    the values whole in one process; the sharding describes the layout (see the module
    docs).

    Args:
        mesh: a `Mesh` (or `AbstractMesh`).
        spec: a `PartitionSpec`.
        memory_kind: a label, kept and compared (nanofn has host memory only).

    Example:
        >>> import nanofn, numpy as np
        >>> from nanofn.sharding import Mesh, NamedSharding, PartitionSpec as P
        >>> mesh = Mesh(np.array(nanofn.devices()), ("x",))
        >>> s = NamedSharding(mesh, P("x", None))
        >>> s
        NamedSharding(mesh=Mesh('x': 1, axis_types=(Auto,)), spec=P('x', None))
        >>> s.num_devices, s.is_fully_replicated, s.shard_shape((4, 2))
        (1, True, (4, 2))
        >>> s.devices_indices_map((4, 2))
        {CpuDevice(id=0): (slice(None, None, None), slice(None, None, None))}
    """

    def __init__(self, mesh, spec, *, memory_kind=None):
        if not isinstance(mesh, (Mesh, AbstractMesh)):
            raise TypeError(f"NamedSharding: mesh must be a Mesh or AbstractMesh, got "
                            f"{type(mesh).__name__}")
        if not isinstance(spec, PartitionSpec):
            raise TypeError(f"NamedSharding: spec must be a PartitionSpec (nanofn.P(...)), "
                            f"got {type(spec).__name__} {spec!r}")
        _check_spec(mesh, spec, "NamedSharding")
        self._mesh, self._spec, self._memory_kind = mesh, spec, memory_kind

    mesh = property(lambda self: self._mesh, doc="The mesh.")
    spec = property(lambda self: self._spec, doc="The partition spec.")
    memory_kind = property(lambda self: self._memory_kind)
    num_devices = property(lambda self: self._mesh.size)

    @property
    def device_set(self) -> set:
        return set(self._mesh.devices.flat)

    @property
    def addressable_devices(self) -> set:
        return set(self._mesh.local_devices)

    @property
    def is_fully_addressable(self) -> bool:
        return not self._mesh.is_multi_process

    @property
    def is_fully_replicated(self) -> bool:
        if self._mesh.size == 1:
            return True
        if self._spec.unreduced:
            return False
        return math.prod(self._mesh.shape[n] for n in _spec_names(self._spec)) == 1

    @property
    def replicated_axes(self) -> frozenset:
        """The mesh axes along which every device holds the same block."""
        used = set(_spec_names(self._spec)) | self._spec.unreduced | self._spec.reduced
        return frozenset(self._mesh.axis_names) - used

    def with_memory_kind(self, kind):
        return NamedSharding(self._mesh, self._spec, memory_kind=kind)

    def update(self, **kwargs) -> NamedSharding:
        """A copy with some of `mesh`, `spec`, `memory_kind` replaced."""
        spec = kwargs.pop("spec", self._spec)
        if not isinstance(spec, PartitionSpec):
            spec = PartitionSpec(*spec)
        out = NamedSharding(kwargs.pop("mesh", self._mesh), spec,
                            memory_kind=kwargs.pop("memory_kind", self._memory_kind))
        if kwargs:
            raise TypeError(f"NamedSharding.update: unknown arguments {sorted(kwargs)}")
        return out

    def _parts(self, ndim) -> list:
        """How many blocks each of `ndim` array axes is cut into."""
        sizes = self._mesh.shape
        return [math.prod(sizes[n] for n in names) for names in _dim_names(self._spec, ndim)]

    def _check_rank(self, shape, who):
        if len(shape) < len(self._spec):
            hint = " (a scalar takes P())" if not shape else ""
            raise ValueError(f"{who}: {self} has {len(self._spec)} entries, so it needs a value "
                             f"of rank {len(self._spec)} or more, but the value has shape "
                             f"{shape} (rank {len(shape)}){hint}")

    def shard_shape(self, global_shape) -> tuple:
        shape = _shape_tuple(global_shape)
        self._check_rank(shape, "shard_shape")
        parts = self._parts(len(shape))
        for axis, (n, p) in enumerate(zip(shape, parts)):
            if n % p:
                raise IndivisibleError(
                    f"{self} cuts array axis {axis} into {p} blocks, but that axis has size "
                    f"{n}, which {p} does not divide (array shape {shape}; blocks per axis "
                    f"{parts})")
        return tuple(n // p for n, p in zip(shape, parts))

    def devices_indices_map(self, global_shape) -> dict:
        shape = _shape_tuple(global_shape)
        block = self.shard_shape(shape)
        devices = self._mesh.devices
        sizes = self._mesh.shape
        dims = _dim_names(self._spec, len(shape))
        parts = self._parts(len(shape))
        out = {}
        for pos in np.ndindex(devices.shape):
            where = dict(zip(self._mesh.axis_names, pos))
            index = []
            for names, b, p in zip(dims, block, parts):
                if p == 1:
                    index.append(slice(None))
                    continue
                k = 0
                for n in names:  # the first name is the major one
                    k = k * sizes[n] + where[n]
                index.append(slice(k * b, (k + 1) * b))
            out[devices[pos]] = tuple(index)
        return out

    def __repr__(self):
        mem = "" if self._memory_kind is None else f", memory_kind={self._memory_kind}"
        return f"NamedSharding(mesh={self._mesh}, spec={self._spec}{mem})"

    def __eq__(self, other):
        return (isinstance(other, NamedSharding) and self._spec == other._spec
                and self._memory_kind == other._memory_kind and self._mesh == other._mesh)

    def __hash__(self):
        return hash((NamedSharding, self._mesh, self._spec, self._memory_kind))

    def __reduce__(self):
        return (_rebuild_named, (self._mesh, self._spec, self._memory_kind))


def _rebuild_named(mesh, spec, memory_kind):
    return NamedSharding(mesh, spec, memory_kind=memory_kind)


# ------------------------------------------------------------------------ arrays and layouts
# An array placed with a sharding reports it (`Array.sharding` reads `_sharding_of`). The
# record is kept beside the array, keyed by its id and dropped with it, so `Array` needs no
# field for it; results of operations are new arrays and report a SingleDeviceSharding.

_placements: dict = {}


def _sharding_of(x) -> Sharding:
    entry = _placements.get(id(x))
    if entry is not None and entry[0]() is x:
        return entry[1]
    return SingleDeviceSharding(_first_device())


def _place(value, sharding) -> core.Array:
    """A new Array over `value`'s buffer (no copy) that reports `sharding`."""
    arr = core.Array(value._value if type(value) is core.Array else value)
    key = id(arr)

    def forget(ref, key=key):
        entry = _placements.get(key)
        if entry is not None and entry[0] is ref:
            _placements.pop(key, None)

    _placements[key] = (weakref.ref(arr, forget), sharding)
    return arr


class Shard:
    """One device's block of an array (`jax.Shard`), from `x.addressable_shards`.

    `index` is the tuple of slices of the whole array the device holds, `replica_id`
    counts the earlier devices holding the same block, and `data` is that block.

    Example:
        >>> import nanofn.numpy as fnp
        >>> shard = fnp.arange(3.0).addressable_shards[0]
        >>> shard.index, shard.data
        ((slice(None, None, None),), Array([0., 1., 2.], dtype=float32))
    """

    __slots__ = ("device", "index", "replica_id", "_array")

    def __init__(self, device, index, replica_id, array):
        self.device, self.index, self.replica_id, self._array = device, index, replica_id, array

    @property
    def data(self):
        """The block, as an array of its own."""
        return self._array[self.index]

    def __repr__(self):
        return (f"Shard(device={self.device!r}, index={self.index}, "
                f"replica_id={self.replica_id}, data={self.data!r})")


def _shards(x, addressable: bool) -> list:
    sharding = _sharding_of(x)
    layout = (sharding.addressable_devices_indices_map(x.shape) if addressable
              else sharding.devices_indices_map(x.shape))
    seen: dict = {}
    out = []
    for device in sorted(layout, key=lambda d: d.id):
        index = layout[device]
        key = tuple((s.start, s.stop, s.step) for s in index)
        out.append(Shard(device, index, seen.get(key, 0), x))
        seen[key] = seen.get(key, 0) + 1
    return out


def _not_in_one_process(who, mesh) -> ValueError:
    procs = sorted({d.process_index for d in mesh.devices.flat})
    return ValueError(
        f"{who}: the mesh spans the devices of processes {procs}, so an array laid out over "
        "it would be global across processes; nanofn holds an array whole in the process "
        "that made it, and no process holds such an array. Write the per-process program "
        "instead: pmap, or shard_map over a mesh of this process's devices "
        "(nanofn.local_devices()), each process passing its own (process-local) data.")


def _to_sharding(target, who, legacy_mesh=False) -> Sharding:
    """A Sharding from a Sharding, a PartitionSpec (read against the mesh in context) or a
    device."""
    if isinstance(target, Sharding):
        return target
    if isinstance(target, PartitionSpec):
        mesh = _context_mesh(legacy=legacy_mesh)
        if mesh is None:  # JAX raises RuntimeError here for the constraint
            error = RuntimeError if who == "with_sharding_constraint" else ValueError
            raise error(f"{who}: a PartitionSpec ({target}) needs a mesh: set one with "
                        "nanofn.set_mesh(mesh), or pass NamedSharding(mesh, spec)")
        return NamedSharding(mesh, target)
    from nanofn.distributed._state import CpuDevice
    if isinstance(target, CpuDevice):
        return SingleDeviceSharding(target)
    raise TypeError(f"{who}: expected a device, a Sharding or a PartitionSpec, got "
                    f"{type(target).__name__} {target!r}")


def _check_fits(sharding, shape, who):
    """The checks JAX makes when it lays a value of `shape` out with `sharding`: rank and
    even division; and here, that the array can exist in this process."""
    if isinstance(sharding, NamedSharding):
        mesh = sharding.mesh
        if isinstance(mesh, Mesh) and mesh.is_multi_process:
            raise _not_in_one_process(who, mesh)
        sharding._check_rank(tuple(shape), who)
        try:
            sharding.shard_shape(shape)
        except IndivisibleError as e:
            raise IndivisibleError(f"{who}: {e}") from None
    elif isinstance(sharding, SingleDeviceSharding):
        if not sharding.is_fully_addressable:
            raise ValueError(f"{who}: {sharding._device} belongs to process "
                             f"{sharding._device.process_index}, not this one "
                             f"({_this_process()}); each process holds its own arrays")
    elif not sharding.is_fully_addressable:
        raise ValueError(f"{who}: {sharding} spans devices of other processes")


def _put_leaf(x, target, who, legacy_mesh=False):
    """`x` checked against `target` and, if concrete, placed with it."""
    sharding = _to_sharding(target, who, legacy_mesh)
    _check_fits(sharding, tuple(x.shape), who)
    if type(x) is not core.Array:  # traced: the layout is not part of nanofn's types
        return x
    return _place(x, sharding)


def _targets(targets, tree, who, is_target):
    """One target per leaf of `tree`, from `targets`, a pytree prefix of it."""
    from nanofn._tree import _flatten_up_to_checked
    from nanofn.tree_util import tree_flatten, tree_leaves
    leaves, treedef = tree_flatten(targets, is_leaf=lambda t: t is None or is_target(t))
    subtrees = _flatten_up_to_checked(treedef, tree, who, "the shardings", "the values")
    out = []
    for t, sub in zip(leaves, subtrees):
        out.extend([t] * len(tree_leaves(sub)))
    return out


def _is_target(t) -> bool:
    from nanofn.distributed._state import CpuDevice
    return isinstance(t, (Sharding, PartitionSpec, CpuDevice))


def _constrain(x, shardings):
    """`with_sharding_constraint`: check each leaf against its sharding; return the values
    (concrete ones placed with it)."""
    import nanofn.numpy as fnp
    from nanofn.tree_util import tree_flatten, tree_unflatten
    leaves, treedef = tree_flatten(x)
    targets = _targets(shardings, x, "with_sharding_constraint", _is_target)
    out = []
    for leaf, target in zip(leaves, targets):
        out.append(leaf if target is None else
                   _put_leaf(fnp.asarray(leaf), target, "with_sharding_constraint",
                             legacy_mesh=True))
    return tree_unflatten(treedef, out)
