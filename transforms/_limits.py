"""Limits read from the environment that both `jit` and the backend need (kept free of the
backend's imports, so that `jit` can run eagerly without loading Numba)."""
from __future__ import annotations

import os


def memory_cache_size():
    """How many compiled functions the in-memory caches keep (per jitted function, and in
    the backend's caches of modules and executables): ``$NUMBAX_MEMORY_CACHE_SIZE``, default
    256. Generated modules evicted or cleared leave ``sys.modules``; Numba itself never frees
    machine code, so a long-lived process compiling without end still grows, slowly."""
    v = os.environ.get("NUMBAX_MEMORY_CACHE_SIZE")
    if not v:
        return 256
    try:
        n = int(v)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"NUMBAX_MEMORY_CACHE_SIZE must be a positive integer, got {v!r}")
    return n
