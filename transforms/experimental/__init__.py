"""`jax.experimental`: the names tutorials still import from it (`checkify` is the
run-time error-checking transformation).

`enable_x64()` / `disable_x64()` are context managers setting the `jax_enable_x64` flag for a
block (older JAX's `jax.experimental.enable_x64`; newer code writes `with T.enable_x64(True):`).
"""
from __future__ import annotations

import contextlib

from . import checkify, mesh_utils, ode, shard_map  # noqa: F401,E402

__all__ = ["enable_x64", "disable_x64", "ode", "shard_map", "mesh_utils", "checkify"]


@contextlib.contextmanager
def enable_x64(new_val: bool = True):
    """Set `jax_enable_x64` to `new_val` for the block (see `transforms.config`)."""
    from ..environment import enable_x64 as _state
    with _state(bool(new_val)):
        yield


@contextlib.contextmanager
def disable_x64():
    """Set `jax_enable_x64` to False for the block."""
    with enable_x64(False):
        yield
