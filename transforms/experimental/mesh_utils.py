"""`jax.experimental.mesh_utils`: device arrays for `transforms.sharding.Mesh`."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["create_device_mesh"]


def create_device_mesh(mesh_shape, devices=None, *, contiguous_submeshes=False,
                       allow_split_physical_axes=False):
    """An array of `mesh_shape` devices (as JAX's): the given `devices`, or devices numbered
    0..n-1 (this process's first, the rest simulated; see transforms.sharding)."""
    from ..environment import Device
    shape = tuple(int(s) for s in mesh_shape)
    n = math.prod(shape)
    devs = [Device(i) for i in range(n)] if devices is None else list(devices)
    if len(devs) != n:
        raise ValueError(f"create_device_mesh: shape {shape} needs {n} devices, got {len(devs)}")
    arr = np.empty(n, dtype=object)
    arr[:] = devs
    return arr.reshape(shape)
