"""The Numba backend: a closed jaxpr becomes ONE generated, cached, fused Numba function.

    execute(closed_jaxpr, args) -> list of outputs      (compile-or-fetch, then call)
    compile(closed_jaxpr) -> Executable                  (callable: Executable(*args) -> list)
    lower(closed_jaxpr) -> Lowered                      (.source, .as_text())

Pipeline: `fusion.prepare` (inline calls, simplify) -> `fusion.plan` (loop nests, views,
opaque steps) -> `lowering.lower` (Python/Numba source, buffer plan) -> `cache.load_module`
(write to the cache directory, import; Numba's `cache=True` reuses machine code across
processes) -> `Executable` (binds constants, the workspace and the output pool).

Lowering rules for new primitives: see `registry` (one declaration per primitive:
`register_lowering` for opaque operations, `register_pointwise` for elementwise ones,
`register_view` and `register_reduction` for those fused into loops).
"""
from __future__ import annotations

import sys
import threading
from collections import OrderedDict

import numpy as np

from . import cache
from .blas_threads import refresh as _blas_refresh
from .cache import STATS, cache_dir
from .lowering import Lowered, register_lowering
from .rules_elementwise import register_pointwise

__all__ = ["execute", "compile", "lower", "Executable", "register_lowering",
           "register_pointwise", "cache_dir", "STATS", "clear_memory_cache"]


def lower(closed, donate=()) -> Lowered:
    """Generate the module for `closed`; outputs may overwrite the inputs listed in `donate`."""
    from .lowering import lower as _lower
    from ...distributed import _segmented
    if _segmented.needs_split(closed):      # collectives across processes: split at them
        return _segmented.SegmentedLowered(closed)
    STATS["lowered"] += 1
    return _lower(closed, donate=tuple(sorted(donate)))


class Executable:
    """A compiled jaxpr. `exe(*arrays)` returns the list of outputs (NumPy arrays)."""

    def __init__(self, lowered: Lowered):
        self.lowered = lowered
        self.module = cache.load_module(lowered)
        ws = cache.WorkspacePool(lowered.workspace) if lowered.workspace else None
        self.run = self.module.make_runner(list(lowered.consts), cache.POOL.get,
                                           (ws.take, ws.give) if ws else None)
        self.in_avals = lowered.in_avals
        self.out_avals = lowered.out_avals
        self.loaded_from_disk = getattr(self.module, "loaded_from_disk", False)

    @property
    def source(self):
        return self.lowered.source

    def profile(self, top=25):
        """With NUMBAX_PROFILE=1 at lowering time: CPU cycles spent per step, largest first."""
        prof = getattr(self.run, "profile", None)
        if prof is None:
            raise RuntimeError("compile with NUMBAX_PROFILE=1 in the environment to profile "
                               "(T.clear_caches() first if it was compiled without)")
        counts, labels = prof
        total = int(counts.sum()) or 1
        rows = sorted(zip(counts.tolist(), labels), reverse=True)[:top]
        return "\n".join(f"{c / total:6.1%} {c:>14,d}  {lab}" for c, lab in rows)

    def __call__(self, *args):
        # the BLAS threads of mid-sized products for this call: threaded while a core is free
        # (re-measured at most every blas_threads.PERIOD seconds; a clock read otherwise)
        _blas_refresh()
        try:
            return self.run(*args)
        except TypeError:
            fixed = [_fix_arg(x, a) for x, a in zip(args, self.in_avals)]
            if len(args) != len(self.in_avals):
                raise TypeError(f"compiled function takes {len(self.in_avals)} arrays, got "
                                f"{len(args)}") from None
            return self.run(*fixed)


def _fix_arg(x, aval):
    """Arguments the compiled signature accepts: C-contiguous, writeable, exact dtype in the
    machine's byte order (the generated code is typed by dtype name, which says nothing of
    byte order: a big-endian array is converted, as eager NumPy ufuncs do)."""
    x = np.asarray(x)
    want = aval.dtype if aval.dtype.isnative else aval.dtype.newbyteorder("=")
    if x.dtype != want:
        x = x.astype(want)
    if x.shape != aval.shape:
        raise TypeError(f"compiled function expected an array of shape {aval.shape}, got "
                        f"{x.shape}")
    if not x.flags.c_contiguous or not x.flags.writeable or not x.flags.aligned:
        x = np.array(x, order="C", copy=True)
    if x.dtype.kind in "biuf" and x.dtype.num != np.dtype(x.dtype.name).num:
        # the same dtype under another C type (long long for int64): code compiled by the
        # direct compiler recognises the canonical one
        x = x.view(np.dtype(x.dtype.name))
    return x


# Both least recently used first, each at most cache.memory_cache_size() long.
_lock = threading.Lock()
_by_identity = OrderedDict()      # (id(closed), donate) -> (closed, Executable)
_by_key = OrderedDict()           # source hash -> Executable


def compile(closed, donate=(), lowered=None) -> Executable:   # noqa: A001 - the natural name
    """Compile `closed` (or fetch it from the in-memory caches). `donate`: indices of inputs
    whose buffers outputs may be written into (their arrays are then overwritten).
    `lowered`: `lower(closed, donate)` when the caller already has it (tiered execution
    lowers in the background)."""
    donate = tuple(sorted(donate))
    ikey = (id(closed), donate)
    hit = _by_identity.get(ikey)
    if hit is not None and hit[0] is closed:
        with _lock:
            if ikey in _by_identity:
                _by_identity.move_to_end(ikey)
        return hit[1]
    from ...distributed import _segmented
    if _segmented.needs_split(closed):      # collectives across processes: split at them
        exe = _segmented.SegmentedExecutable(closed)
        with _lock:
            _by_identity[(id(closed), donate)] = (closed, exe)
        return exe
    from .direct.lower import collector_paused
    # the collector paused over the whole compile, not only each function's IR: the cold
    # digits CNN example made one full collection fewer (0.03 s), peak memory unchanged
    with collector_paused():
        if lowered is None:
            lowered = lower(closed, donate)
        with _lock:
            exe = _by_key.get(lowered.key)
        if exe is None or not _same_consts(exe.lowered.consts, lowered.consts):
            exe = Executable(lowered)
    n = cache.memory_cache_size()
    with _lock:
        _by_key[lowered.key] = exe
        _by_key.move_to_end(lowered.key)
        _by_identity[ikey] = (closed, exe)
        _by_identity.move_to_end(ikey)
        for d in (_by_key, _by_identity):
            while len(d) > n:
                d.popitem(last=False)
    return exe


def _same_consts(a, b):
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def execute(closed, args):
    """Run `closed` on NumPy `args` through its compiled function (the `pjit` impl)."""
    exe = compile(closed)
    args = [a if type(a) is np.ndarray else np.asarray(a) for a in args]
    return exe(*args)


def clear_memory_cache():
    """Forget the compiled functions, generated modules (also from ``sys.modules``) and
    recycled output buffers held in memory; the disk cache is untouched. Executables stay
    alive only where something still holds them: `T.clear_caches()` also drops those of every
    jitted function."""
    with _lock:
        _by_identity.clear()
        _by_key.clear()
        with cache._lock:
            for key in list(cache._modules):
                cache.forget_module(key)
            for key, mod in list(cache._helper_modules.items()):
                cache._helper_modules.pop(key, None)
                sys.modules.pop(mod.__name__, None)
    cache.POOL.clear()
