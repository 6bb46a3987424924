"""`jax.sharding` for code written against JAX's meshes: `PartitionSpec` (`P`), `Mesh`,
`make_mesh`, `NamedSharding`, `SingleDeviceSharding`, `AxisType`, `set_mesh`/`get_mesh`,
`reshard`.

Arrays here are NumPy arrays on one CPU device per process, so a sharding is a description,
not a placement: `device_put(x, sharding)`, `reshard` and `lax.with_sharding_constraint` return
the values unchanged. What a sharding means for the values is kept exactly where it matters,
in `shard_map` (transforms/shard_map.py): its blocks, collectives and reassembly follow the
mesh and the specs as in JAX.

A mesh may have more devices than this process has (JAX would need that many devices, e.g.
fake CPU devices): they are simulated devices, numbered from 0, as `pmap`'s slices are; a
program written for an 8-device mesh runs here and gives JAX's values. It does not spread
work over processes: `transforms.distributed` does that.
"""
from __future__ import annotations

import collections
import contextlib
import enum
import math
import threading

import numpy as np

__all__ = ["PartitionSpec", "P", "Mesh", "AbstractMesh", "AxisType", "Sharding",
           "NamedSharding", "SingleDeviceSharding", "make_mesh", "set_mesh", "get_mesh",
           "get_abstract_mesh", "use_mesh", "reshard", "make_single_device_sharding"]


class _Unconstrained:
    def __repr__(self):
        return "UNCONSTRAINED"


class PartitionSpec:
    """How each dimension of an array is split over mesh axes, as `jax.P`: one entry per
    leading dimension, each `None` (not split), an axis name, or a tuple of axis names (split
    over their product, the first the major one). Missing trailing entries are unsplit
    dimensions. A leaf of pytrees (not a tuple), hashable, compared by its entries."""

    UNCONSTRAINED = _Unconstrained()

    __slots__ = ("_parts", "reduced", "unreduced")

    def __init__(self, *partitions, reduced=frozenset(), unreduced=frozenset()):
        parts = []
        for p in partitions:
            if isinstance(p, list):
                p = tuple(p)
            if isinstance(p, tuple):
                if not all(isinstance(a, str) for a in p):
                    raise TypeError(f"PartitionSpec: a tuple entry must hold axis names, got {p!r}")
                p = p[0] if len(p) == 1 else p
            elif p is not None and not isinstance(p, str) and p is not self.UNCONSTRAINED:
                raise TypeError(f"PartitionSpec: each entry must be None, an axis name or a tuple "
                                f"of axis names, got {p!r}")
            parts.append(p)
        self._parts = tuple(parts)
        self.reduced = frozenset(reduced)
        self.unreduced = frozenset(unreduced)

    def __iter__(self):
        return iter(self._parts)

    def __len__(self):
        return len(self._parts)

    def __getitem__(self, i):
        return self._parts[i]

    def __eq__(self, other):
        if isinstance(other, PartitionSpec):
            return self._parts == other._parts
        if isinstance(other, tuple):
            return self._parts == other
        return NotImplemented

    def __hash__(self):
        return hash(("PartitionSpec", self._parts))

    def __repr__(self):
        return "P(" + ", ".join(repr(p) for p in self._parts) + ")"

    def _normalized(self, ndim=None):
        """The entries padded with None to `ndim`, each a tuple of axis names."""
        parts = [() if p is None or p is self.UNCONSTRAINED else (p,) if isinstance(p, str)
                 else tuple(p) for p in self._parts]
        if ndim is not None:
            parts += [()] * (ndim - len(parts))
        return parts


P = PartitionSpec


class AxisType(enum.Enum):
    """How a mesh axis is used (as `jax.sharding.AxisType`); recorded, with no effect on
    values here."""
    Auto = "Auto"
    Explicit = "Explicit"
    Manual = "Manual"

    def __repr__(self):
        return self.name


def _axis_names(names):
    names = (names,) if isinstance(names, str) else tuple(names)
    if not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"Mesh: axis names must be non-empty strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"Mesh: axis names must be distinct, got {names!r}")
    return names


def _axis_types(types, n):
    if types is None:
        return (AxisType.Explicit,) * n
    types = (types,) if isinstance(types, AxisType) else tuple(types)
    if len(types) != n or not all(isinstance(t, AxisType) for t in types):
        raise ValueError(f"Mesh: axis_types must be {n} AxisType values, got {types!r}")
    return types


class AbstractMesh:
    """A mesh's axis names and sizes without devices (as `jax.sharding.AbstractMesh`)."""

    def __init__(self, axis_sizes, axis_names, axis_types=None):
        self.axis_names = _axis_names(axis_names)
        sizes = tuple(int(s) for s in axis_sizes)
        if len(sizes) != len(self.axis_names) or any(s < 1 for s in sizes):
            raise ValueError(f"Mesh: {len(self.axis_names)} axis names {self.axis_names} need as "
                             f"many positive sizes, got {tuple(axis_sizes)!r}")
        self.axis_sizes = sizes
        self.axis_types = _axis_types(axis_types, len(sizes))

    @property
    def shape(self):
        """Axis name -> size, in mesh order (an OrderedDict, as JAX)."""
        return collections.OrderedDict(zip(self.axis_names, self.axis_sizes))

    @property
    def shape_tuple(self):
        return tuple(zip(self.axis_names, self.axis_sizes))

    @property
    def size(self):
        return math.prod(self.axis_sizes)

    @property
    def empty(self):
        return not self.axis_names

    def axis_size(self, name):
        try:
            return self.axis_sizes[self.axis_names.index(name)]
        except ValueError:
            raise ValueError(f"mesh has no axis named {name!r}; its axes are "
                             f"{self.axis_names}") from None

    @property
    def abstract_mesh(self):
        return AbstractMesh(self.axis_sizes, self.axis_names, self.axis_types)

    def __eq__(self, other):
        return (isinstance(other, AbstractMesh) and self.shape_tuple == other.shape_tuple
                and self.axis_types == other.axis_types and self._key() == other._key())

    def __hash__(self):
        return hash((self.shape_tuple, self.axis_types, self._key()))

    def _key(self):
        return None

    def __repr__(self):
        axes = ", ".join(f"{n!r}: {s}" for n, s in self.shape_tuple)
        types = ", ".join(t.name for t in self.axis_types)
        return f"{type(self).__name__}({axes}, axis_types=({types}{',' if len(self.axis_types) == 1 else ''}))"

    # `with mesh:` makes it the mesh of `shard_map(mesh=None)` and `get_mesh()`
    def __enter__(self):
        _MESHES.stack.append(self)
        return self

    def __exit__(self, *exc):
        _MESHES.stack.pop()
        return False


class Mesh(AbstractMesh):
    """Devices arranged in named axes, as `jax.sharding.Mesh(devices, axis_names)`: `devices`
    an array (or nested sequence) of `Device`s whose shape is the mesh's shape. Devices beyond
    this process's one are simulated (see the module docstring)."""

    def __init__(self, devices, axis_names, axis_types=None):
        arr = devices if isinstance(devices, np.ndarray) else np.array(devices, dtype=object)
        names = _axis_names(axis_names)
        if arr.ndim != len(names):
            raise ValueError(f"Mesh: devices of shape {arr.shape} need {arr.ndim} axis names, "
                             f"got {len(names)}: {names!r}")
        super().__init__(arr.shape, names, axis_types)
        self.devices = arr

    @property
    def device_ids(self):
        return np.vectorize(lambda d: d.id, otypes=[np.int64])(self.devices)

    @property
    def local_devices(self):
        return list(self.devices.flat)

    def _key(self):
        return tuple(self.device_ids.flat)


def make_mesh(axis_shapes, axis_names, axis_types=None, *, devices=None):
    """A `Mesh` of the given shape and axis names (as `jax.make_mesh`). Without `devices`, its
    devices are numbered 0..size-1: this process's device first, the rest simulated."""
    from .environment import Device
    shape = tuple(int(s) for s in axis_shapes)
    names = _axis_names(axis_names)
    if len(shape) != len(names):
        raise ValueError(f"make_mesh: axis_shapes {shape} and axis_names {names} differ in length")
    n = math.prod(shape)
    if devices is None:
        devices = [Device(i) for i in range(n)]
    devices = list(devices)
    if len(devices) != n:
        raise ValueError(f"make_mesh: a mesh of shape {shape} needs {n} devices, got "
                         f"{len(devices)}")
    arr = np.empty(n, dtype=object)
    arr[:] = devices
    return Mesh(arr.reshape(shape), names, axis_types)


class _MeshStack(threading.local):
    def __init__(self):
        self.stack = []


_MESHES = _MeshStack()


def get_mesh():
    """The mesh set by `set_mesh`/`with mesh:` (innermost), or None."""
    return _MESHES.stack[-1] if _MESHES.stack else None


def get_abstract_mesh():
    """The current mesh's `AbstractMesh` (names and sizes), or None."""
    m = get_mesh()
    return None if m is None else m.abstract_mesh


class _MeshSetting:
    """`set_mesh(mesh)`: sets the mesh now; also usable as `with set_mesh(mesh):`, which
    restores the previous one on exit."""

    def __init__(self, mesh):
        self.mesh = mesh
        _MESHES.stack.append(mesh)

    def __enter__(self):
        return self.mesh

    def __exit__(self, *exc):
        if self.mesh in _MESHES.stack:
            del _MESHES.stack[len(_MESHES.stack) - 1 - _MESHES.stack[::-1].index(self.mesh)]
        return False


def set_mesh(mesh):
    """Make `mesh` the current mesh (as `jax.set_mesh`), for `shard_map(mesh=None)`."""
    if not isinstance(mesh, AbstractMesh):
        raise TypeError(f"set_mesh: expected a Mesh, got {type(mesh).__name__}")
    return _MeshSetting(mesh)


use_mesh = set_mesh


class Sharding:
    """Base of the sharding descriptions (as `jax.sharding.Sharding`)."""

    memory_kind = "device"

    @property
    def is_fully_replicated(self):
        return True

    @property
    def num_devices(self):
        return len(self.device_set)

    def shard_shape(self, global_shape):
        return tuple(global_shape)

    @property
    def addressable_devices(self):
        from .environment import local_devices
        return set(local_devices())


class NamedSharding(Sharding):
    """An array split over `mesh` as `spec` says (as `jax.NamedSharding`)."""

    def __init__(self, mesh, spec=None, *, memory_kind=None):
        if not isinstance(mesh, AbstractMesh):
            raise TypeError(f"NamedSharding: mesh must be a Mesh, got {type(mesh).__name__}")
        spec = PartitionSpec() if spec is None else spec
        if isinstance(spec, tuple):
            spec = PartitionSpec(*spec)
        if not isinstance(spec, PartitionSpec):
            raise TypeError(f"NamedSharding: spec must be a PartitionSpec, got {spec!r}")
        used = [a for part in spec._normalized() for a in part]
        for a in used:
            mesh.axis_size(a)                       # raises naming the unknown axis
        if len(set(used)) != len(used):
            raise ValueError(f"NamedSharding: {spec} uses a mesh axis twice")
        self.mesh, self.spec = mesh, spec
        if memory_kind is not None:
            self.memory_kind = memory_kind

    @property
    def device_set(self):
        return set(getattr(self.mesh, "devices", np.empty(0, object)).flat)

    @property
    def num_devices(self):
        return self.mesh.size

    @property
    def is_fully_replicated(self):
        return all(self.mesh.axis_size(a) == 1 for part in self.spec._normalized() for a in part)

    def shard_shape(self, global_shape):
        """The shape of one device's block of an array of `global_shape`."""
        parts = self.spec._normalized(len(global_shape))
        if len(parts) > len(global_shape):
            raise ValueError(f"NamedSharding: {self.spec} has {len(parts)} entries for an array "
                             f"of rank {len(global_shape)}")
        out = []
        for d, (n, axes) in enumerate(zip(global_shape, parts)):
            k = math.prod(self.mesh.axis_size(a) for a in axes)
            if n % k:
                raise ValueError(f"NamedSharding: dimension {d} of size {n} is not divisible by "
                                 f"{k}, the size of mesh axes {axes}")
            out.append(n // k)
        return tuple(out)

    def __eq__(self, other):
        return (isinstance(other, NamedSharding) and self.mesh == other.mesh
                and self.spec == other.spec)

    def __hash__(self):
        return hash((self.mesh, self.spec))

    def __repr__(self):
        return f"NamedSharding(mesh={self.mesh!r}, spec={self.spec!r}, memory_kind={self.memory_kind})"


class SingleDeviceSharding(Sharding):
    """The whole array on one device (as `jax.sharding.SingleDeviceSharding`)."""

    def __init__(self, device, *, memory_kind=None):
        self._device = device
        if memory_kind is not None:
            self.memory_kind = memory_kind

    @property
    def device_set(self):
        return {self._device}

    def __eq__(self, other):
        return isinstance(other, SingleDeviceSharding) and self._device == other._device

    def __hash__(self):
        return hash(("SingleDeviceSharding", self._device))

    def __repr__(self):
        return f"SingleDeviceSharding(device={self._device!r}, memory_kind={self.memory_kind})"


def make_single_device_sharding(device):
    """`SingleDeviceSharding(device)`."""
    return SingleDeviceSharding(device)


def reshard(x, out_shardings):
    """`x` unchanged (as `jax.reshard`: the values are the same; placement is one device)."""
    del out_shardings
    return x
