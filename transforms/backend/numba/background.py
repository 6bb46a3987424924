"""The child side of tiered execution and of parallel compilation.

Tiered execution (`jit(tiered=True)`, see `transforms.tiered`): a new
Python process reads a generated module (its cache key and source) from stdin, writes it to
the disk cache and compiles it there; Numba saves the machine code beside it, where the
parent process then loads it from.

A process, not a thread: Numba's type inference and code generation hold the GIL most of the
time, so calls running meanwhile in the parent's eager interpreter would crawl.

With ``--worker`` it is instead the compile worker of `workers.py`: it reads requests to
compile helper modules into the disk cache, one JSON line each, until its input closes.
"""
from __future__ import annotations

import json
import sys

from . import cache


class _Entry:
    """What `cache.load_module` needs of a lowered program: its key and source."""
    __slots__ = ("key", "source")

    def __init__(self, key, source):
        self.key, self.source = key, source


def compile_entry(msg):
    """Write and compile the generated module `msg` ({"key", "source"}) into the disk cache
    (``NUMBAX_CACHE_DIR``, which the parent sets to its resolved directory)."""
    st = cache._resolve()
    if st.path is None or not st.writable:
        raise SystemExit("no writable cache directory")
    cache.load_module(_Entry(msg["key"], msg["source"]))   # Numba saves what it compiles
    finish_direct()


def finish_direct():
    """Wait for the machine code the direct compiler is still compiling (it is saved to the
    disk cache as each function finishes), so that this process can exit."""
    from .direct import enabled
    if enabled():
        from .direct.function import load_pending
        load_pending()


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:        # a compile worker of workers.py
        from . import workers
        workers.serve()
    else:
        compile_entry(json.load(sys.stdin))
