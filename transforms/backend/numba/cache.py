"""Where generated modules live, how they are imported, and the buffer pools.

Generated source is written to ``<cache dir>/nbx_<hash>.py`` (the hash is of the source
itself, so a file never changes once written) and imported as a real module registered in
``sys.modules``; its function is decorated ``@njit(cache=True)``, so Numba's own disk cache
(``__pycache__`` next to the file) makes a new process load machine code instead of compiling.

Cache directory: ``$NUMBAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/numbax``, else
``~/.cache/numbax``; if that is not writable, a per-user temporary directory (with a warning).
"""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import threading
import warnings

import numpy as np

STATS = {"lowered": 0, "imported": 0, "compiled": 0, "disk_hits": 0, "memory_hits": 0}

_dir = None
_dir_for = None
_lock = threading.Lock()
_modules = {}          # key -> module (at most memory_cache_size(), oldest dropped first)


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


def forget_module(key):
    """Drop the generated module `key` from this cache and from ``sys.modules`` (objects
    still using it keep it alive; a later load imports it again)."""
    mod = _modules.pop(key, None)
    if mod is not None:
        sys.modules.pop(mod.__name__, None)


def _writable_dir(path):
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".probe-{os.getpid()}-{threading.get_ident()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
        return True
    except OSError:
        return False


def cache_dir():
    """The directory holding generated modules (created on first use)."""
    global _dir, _dir_for
    env = os.environ.get("NUMBAX_CACHE_DIR")
    if _dir is not None and _dir_for == env:
        return _dir
    if env:
        want = env
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        want = os.path.join(base, "numbax")
    path = want
    if not _writable_dir(path):
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        path = os.path.join(tempfile.gettempdir(), f"numbax-{uid}")
        if not _writable_dir(path):
            path = tempfile.mkdtemp(prefix="numbax-")
        warnings.warn(f"transforms.jit: cache directory {want!r} is not writable; using "
                      f"{path!r} instead (set NUMBAX_CACHE_DIR to choose one)", RuntimeWarning,
                      stacklevel=3)
    _dir, _dir_for = path, env
    return path


def load_module(lowered):
    """Import (writing first if needed) the generated module of `lowered`."""
    key = lowered.key
    mod = _modules.get(key)
    if mod is not None:
        STATS["memory_hits"] += 1
        return mod
    with _lock:
        mod = _modules.get(key)
        if mod is not None:
            return mod
        d = cache_dir()
        path = os.path.join(d, f"nbx_{key}.py")
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(tmp, "w") as f:
                f.write(lowered.source)
            os.replace(tmp, path)
        name = f"_numbax_generated.nbx_{key}"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        STATS["imported"] += 1
        fn = getattr(mod, "_fn", None)
        hits = sum(fn.stats.cache_hits.values()) if fn is not None else 0
        mod.loaded_from_disk = bool(hits)
        if hits:
            STATS["disk_hits"] += 1
        else:
            STATS["compiled"] += 1
        _modules[key] = mod
        n = memory_cache_size()
        while len(_modules) > n:
            forget_module(next(iter(_modules)))
        return mod


# ---------------------------------------------------------------------------------------------
# Buffers
# ---------------------------------------------------------------------------------------------

class OutputPool:
    """Recycles large output buffers whose arrays the user has dropped.

    Fresh large allocations cost page faults on every call (hundreds of microseconds per MB);
    a training loop drops last step's outputs when it rebinds its variables, so their memory
    can serve the next step. A slab is free when nothing but the pool refers to it (every view
    handed out keeps its slab alive through `.base`). Bounded by `max_bytes`
    (`NUMBAX_POOL_MAX_BYTES`, default 2 GiB; 0 turns recycling off). Recycled memory holds old
    values, so generated code must write every element of an output
    (tests/test_jit.py poisons fresh buffers to check exactly that)."""

    def __init__(self, max_bytes=None):
        if max_bytes is None:
            try:
                max_bytes = int(os.environ.get("NUMBAX_POOL_MAX_BYTES", 2 << 30))
            except ValueError:
                max_bytes = 2 << 30
        self.max_bytes = max_bytes
        self.total = 0
        self.slabs = {}
        self.lock = threading.Lock()
        self._free_refs = None

    def _free_refcount(self):
        # references held while testing a slab in get(): the list, the loop variable and
        # getrefcount's argument (measured once, so interpreter changes don't matter)
        if self._free_refs is None:
            lst = [np.empty(1, np.uint8)]
            for s in lst:
                self._free_refs = sys.getrefcount(s)
        return self._free_refs

    def get(self, shape, dtype):
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        free = self._free_refcount()
        with self.lock:
            lst = self.slabs.get(nbytes)
            if lst is None:
                lst = self.slabs[nbytes] = []
            for s in lst:
                if sys.getrefcount(s) == free:
                    return s.view(dtype).reshape(shape)
            s = np.empty(nbytes, np.uint8)
            if self.total + nbytes <= self.max_bytes and len(lst) < 8:
                lst.append(s)
                self.total += nbytes
            return s.view(dtype).reshape(shape)

    def clear(self):
        with self.lock:
            self.slabs.clear()
            self.total = 0


POOL = OutputPool()


class WorkspacePool:
    """Scratch memory of one compiled function (one flat array per dtype), reused across
    calls; thread-safe: each call takes its own set."""

    def __init__(self, spec):
        self.spec = [(np.dtype(dn), n) for dn, n in spec]
        self.free = []

    def take(self):
        try:
            return self.free.pop()
        except IndexError:
            return tuple(np.empty(n, dt) for dt, n in self.spec)

    def give(self, ws):
        if len(self.free) < 4:
            self.free.append(ws)
