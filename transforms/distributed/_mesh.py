"""`Mesh`: the processes laid out row-major on named axes, one sub-communicator per axis group,
and the stack of meshes bound by `with mesh:` that collectives resolve their axis names in."""
from __future__ import annotations

import threading
from math import prod

import numpy as np

from . import _runtime as R


class _Bound(threading.local):
    def __init__(self):
        self.stack = []


_bound = _Bound()
_COMMS = {}             # (axis names, sizes) -> {name: Comm}


class Mesh:
    """`Mesh({"data": 2, "model": 2})`: axis name -> size, sizes multiplying to the number of
    processes. Process `p` sits at the row-major coordinates of `p` (the last axis varies
    fastest). Creating a mesh is collective: every process must create the same meshes in the
    same order. `with mesh:` binds its axis names for `lax.psum(x, "data")` and friends."""

    def __init__(self, axes):
        if isinstance(axes, Mesh):
            axes = axes.shape
        try:
            items = list(axes.items()) if hasattr(axes, "items") else [tuple(a) for a in axes]
        except TypeError:
            raise TypeError(f"Mesh: expected a dict of axis name -> size, got {axes!r}") from None
        if not items:
            raise ValueError("Mesh: at least one axis is needed, e.g. Mesh({'data': 2})")
        names, sizes = [], []
        for item in items:
            if len(item) != 2:
                raise TypeError(f"Mesh: expected (name, size) pairs, got {item!r}")
            name, size = item
            if not isinstance(name, str) or not name:
                raise TypeError(f"Mesh: axis names must be non-empty strings, got {name!r}")
            if name in names:
                raise ValueError(f"Mesh: axis name {name!r} appears twice")
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(f"Mesh: the size of axis {name!r} must be a positive int, "
                                 f"got {size!r}")
            names.append(name)
            sizes.append(int(size))
        n = R.process_count()
        total = prod(sizes)
        if total != n:
            raise ValueError(f"Mesh {dict(zip(names, sizes))}: the axis sizes multiply to {total}"
                             f" but process_count() is {n}; the product must equal the number"
                             f" of processes")
        self.axis_names = tuple(names)
        self._sizes = tuple(sizes)
        self.coords = tuple(int(c) for c in np.unravel_index(R.process_index(), sizes))
        key = (self.axis_names, self._sizes)
        comms = _COMMS.get(key)
        if comms is None:
            # the same axes give the same groups: communicators are made once per layout
            # (every process creates its meshes in the same order, so all agree on the cache)
            comms = _COMMS[key] = self._split(names, sizes, n)
        self._comms = comms

    def _split(self, names, sizes, n):
        comms = {}
        world = R.world()
        for i, name in enumerate(names):
            rest = [c for j, c in enumerate(self.coords) if j != i]
            rest_sizes = [s for j, s in enumerate(sizes) if j != i]
            color = int(np.ravel_multi_index(rest, rest_sizes)) if rest else 0
            label = f"mesh axis {name!r} (size {sizes[i]})"
            if world is None or n == 1:
                comms[name] = R.Comm(None, 0, 1, label)
            else:
                sub = world.Split(color, self.coords[i])
                comms[name] = R.Comm(sub, sub.Get_rank(), sub.Get_size(), label)
        return comms

    @property
    def shape(self):
        return dict(zip(self.axis_names, self._sizes))

    @property
    def size(self):
        return prod(self._sizes)

    def axis_size(self, name) -> int:
        return self._sizes[self._pos(name)]

    def axis_index(self, name) -> int:
        """This process's coordinate along axis `name`."""
        return self.coords[self._pos(name)]

    def comm(self, name) -> R.Comm:
        """The process group of axis `name`, or for a tuple of names the group spanning those
        axes (members ranked row-major over them in the mesh's axis order, whatever the order
        of the tuple). A tuple's group is made on first use, which is collective: every
        process must use it in the same order (as they do when they run the same program)."""
        if isinstance(name, tuple):
            if len(name) == 1:
                name = name[0]
            else:
                name = tuple(sorted(name, key=self._pos))
                pos = [self._pos(n) for n in name]
                c = self._comms.get(name)
                if c is None:
                    c = self._comms[name] = self._split_group(name, pos)
                return c
        self._pos(name)
        return self._comms[name]

    def _split_group(self, names, pos):
        world = R.world()
        sizes = [self._sizes[p] for p in pos]
        label = f"mesh axes {names} (size {prod(sizes)})"
        if world is None or R.process_count() == 1:
            return R.Comm(None, 0, 1, label)
        rest = [p for p in range(len(self._sizes)) if p not in pos]
        color = int(np.ravel_multi_index([self.coords[p] for p in rest],
                                         [self._sizes[p] for p in rest])) if rest else 0
        key = int(np.ravel_multi_index([self.coords[p] for p in pos], sizes))
        sub = world.Split(color, key)
        return R.Comm(sub, sub.Get_rank(), sub.Get_size(), label)

    def _pos(self, name):
        try:
            return self.axis_names.index(name)
        except ValueError:
            raise KeyError(f"Mesh has no axis {name!r}; its axes are {self.axis_names}") from None

    def __repr__(self):
        return f"Mesh({self.shape})"

    def __enter__(self):
        _bound.stack.append(self)
        return self

    def __exit__(self, *exc):
        stack = _bound.stack
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is self:
                del stack[i]
                break
        return False


def find(name):
    """The innermost active mesh binding axis `name`, or None."""
    for m in reversed(_bound.stack):
        if name in m.axis_names:
            return m
    return None


def active_meshes():
    """The meshes bound by enclosing ``with mesh:`` blocks in this thread, outermost first."""
    return tuple(_bound.stack)
