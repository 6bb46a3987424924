"""Whether and how generated loops run in parallel (`prange`): the threading layer, the
size threshold, and the guard the runner holds around calls of parallel code."""
from __future__ import annotations

import contextlib
import os
import threading


def parallel_allowed():
    """Whether generated loops may use prange (NUMBAX_PARALLEL: "auto" (default), 1, 0).

    Numba runs parallel loops on a threading layer, and two of the three are not safe for
    every program: GNU OpenMP (`omp`, Numba's choice when TBB is missing) kills a child
    process that uses it after fork() (multiprocessing / DataLoader-style workers), and
    `workqueue` aborts when two threads enter parallel code at once. Only TBB survives both.
    So by default ("auto") loops are parallel only when Numba's layer will be TBB (the `tbb`
    pip package installed, and NUMBA_THREADING_LAYER unset or tbb/safe/threadsafe);
    NUMBAX_PARALLEL=1 makes them parallel on any layer (our calls of parallel code are then
    serialised under `workqueue`, and fork() after a parallel call is unsafe under GNU
    OpenMP: one warning says so); NUMBAX_PARALLEL=0 never."""
    v = os.environ.get("NUMBAX_PARALLEL", "auto").strip().lower()
    if v in ("0", "off", "false", "no"):
        return False
    if v in ("1", "on", "true", "yes"):
        return True
    return _tbb_layer()


_TBB = None


def _tbb_layer():
    """Whether Numba's threading layer is (or will be) TBB."""
    global _TBB
    if _TBB is None:
        import numba
        from numba.np.ufunc import parallel as npar
        layer = str(numba.config.THREADING_LAYER).lower()
        prio = [str(x).lower() for x in getattr(numba.config, "THREADING_LAYER_PRIORITY",
                                                 ["tbb", "omp", "workqueue"])]
        if getattr(npar, "_is_initialized", False):
            _TBB = npar.threading_layer() == "tbb"
        elif layer in ("tbb", "safe") or (layer in ("default", "threadsafe") and prio and
                                          prio[0] == "tbb"):
            try:
                npar._check_tbb_version_compatible()
                import numba.np.ufunc.tbbpool  # noqa: F401
                _TBB = True
            except Exception:                   # not installed / too old: serial loops
                _TBB = False
        else:
            _TBB = False
    return _TBB


_PARALLEL_LOCK = threading.Lock()


def parallel_guard():
    """For the runner of a function with parallel loops: a lock to hold around each call
    when the threading layer cannot take concurrent callers (`workqueue`), else a no-op
    context; warns once if the layer makes fork() after a call unsafe (GNU OpenMP)."""
    import warnings

    from numba.np.ufunc import parallel as npar
    try:
        npar._launch_threads()
        layer = npar.threading_layer()
    except Exception:
        layer = None
    if layer == "workqueue":
        return _PARALLEL_LOCK
    if layer == "omp" and getattr(npar, "_IS_LINUX", False) and not _ParallelWarned.done:
        _ParallelWarned.done = True
        warnings.warn("transforms.jit: parallel loops (NUMBAX_PARALLEL=1) run on Numba's "
                      "OpenMP threading layer: on Linux (GNU OpenMP) a child process made "
                      "by fork() after such a call is killed when it uses them. Install the "
                      "`tbb` package, set NUMBA_THREADING_LAYER=workqueue, or leave "
                      "NUMBAX_PARALLEL unset.", RuntimeWarning, stacklevel=3)
    return contextlib.nullcontext()


class _ParallelWarned:
    done = False


def _parallel_min():
    """Fused loops over at least this many elements use prange (NUMBAX_PARALLEL_MIN; 0 = never;
    and only if `parallel_allowed()`).

    The default is high: a parallel region's threads compete with BLAS's own threads (and
    with anything else running) for the same cores, which on a small or busy machine costs far
    more than it gains; only very large elementwise work is split."""
    if not parallel_allowed():
        return 1 << 62
    try:
        v = int(os.environ.get("NUMBAX_PARALLEL_MIN", 1 << 20))
    except ValueError:
        v = 1 << 20
    return v if v > 0 else 1 << 62


PARALLEL_CHUNK = 1 << 14       # iterations per work item of a parallel loop
