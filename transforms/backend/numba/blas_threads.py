"""How many BLAS threads mid-sized matrix products use, chosen at run time.

Generated code calls `kernels.gemm_cblas_auto` for products between
`rules_linalg.blas_parallel_min()` and `rules_linalg.BLAS_THREADED_MIN` multiply-adds. That
kernel reads the process-wide C int exported here as ``numbax_blas_threads`` (resolved by
symbol name when the machine code is linked, so a program loaded from Numba's disk cache in
another process reads this process's int) and runs the product on that many BLAS threads.

Why at run time: on idle cores OpenBLAS's second thread makes a training step 1.2-1.4x
faster, but when the cores are shared (other processes, a test suite under xdist) each of
its synchronisations can wait a scheduler time slice and the same products run 5-50x
slower. The same compiled program must therefore run threaded on an idle machine and serial
on a busy one.

The choice (`NUMBAX_BLAS_THREADS`): ``auto`` (default) or a positive integer that forces the
count. In ``auto`` mode the runner of each compiled call calls `refresh()`, which at most
every `PERIOD` seconds measures the CPU time other processes used on the cores this process
may run on (`/proc/stat`'s busy time minus this process's own CPU time, over the time since
the previous measurement) and allows one BLAS thread per core they left free, up to
OpenBLAS's own thread count: fewer threads at once, more only after `CALM_WINDOWS`
measurements in a row found the core free (a thread too many costs far more than one too
few). Without `/proc/stat` (not Linux) ``auto`` means one thread.

The probe counts all of this process's threads as its own: several Python threads calling
compiled programs at once each get the count chosen for the idle cores (set
``NUMBAX_BLAS_THREADS=1`` there).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import time

ENV = "NUMBAX_BLAS_THREADS"
SYMBOL = "numbax_blas_threads"            # threads wanted for mid-sized products
SYMBOL_USED = "numbax_blas_threads_used"  # threads the last such product ran with (tests)
PERIOD = 0.2              # seconds between two measurements of the load
MIN_WINDOW = 0.05         # shorter: keep the previous choice
MAX_WINDOW = 2.0          # a longer gap between calls: the load is measured afresh
# a core counts as free when other processes used less than this fraction of a core on
# average: beyond, the second BLAS thread waits for the scheduler more than it helps
BUSY_FRACTION = 0.3
CALM_WINDOWS = 2          # measurements in a row with a free core before threads are added

# Start serial: until the first measurement nothing is known about the other processes.
_WANTED = ctypes.c_int(1)
_USED = ctypes.c_int(0)
_registered = False


def register():
    """Make the two ints resolvable by name from generated code (once per process)."""
    global _registered
    if not _registered:
        import llvmlite.binding as llb
        llb.add_symbol(SYMBOL, ctypes.addressof(_WANTED))
        llb.add_symbol(SYMBOL_USED, ctypes.addressof(_USED))
        _registered = True
        _start_probe()


def setting():
    """`NUMBAX_BLAS_THREADS` parsed: None for ``auto`` (or unset), else a positive int."""
    v = os.environ.get(ENV, "").strip().lower()
    if v in ("", "auto"):
        return None
    try:
        n = int(v)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{ENV} must be 'auto' or a positive integer (threads of BLAS for "
                         f"mid-sized matrix products), got {os.environ.get(ENV)!r}")
    return n


def wanted():
    """The thread count generated code currently uses for mid-sized products."""
    return _WANTED.value


def last_used():
    """The thread count the last mid-sized product (of any compiled program) ran with."""
    return _USED.value


def describe():
    """One line for benchmarks: the current count and how it was chosen."""
    n = setting()
    how = f"{ENV}={n}" if n is not None else (
        f"auto: one per core other processes left free; more than one after "
        f"{STATS['threaded']} of {STATS['measured']} measurements")
    return f"BLAS threads of mid-sized products: {wanted()} now ({how})"


def set_wanted(n):
    """Set the thread count directly (the runner does this through `refresh`)."""
    _WANTED.value = max(int(n), 1)


# -- the probe ---------------------------------------------------------------------------------

_pool = None


def pool_size():
    """OpenBLAS's own thread count (OPENBLAS_NUM_THREADS or the cores), read once."""
    global _pool
    if _pool is None:
        from .kernels import blas_pool_size
        _pool = max(blas_pool_size(), 1)
    return _pool


def _cores():
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _busy_seconds(cores):
    """Seconds the given cores spent busy (not idle, not waiting for I/O) since boot,
    including time the hypervisor gave to other guests (steal), or None without /proc/stat."""
    try:
        with open("/proc/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    want = {b"cpu%d" % c for c in cores}
    busy = 0
    for line in text.split(b"\n"):
        if not line.startswith(b"cpu"):
            if busy:
                break
            continue
        f = line.split()
        if f[0] not in want:
            continue
        v = [int(x) for x in f[1:9]]
        busy += sum(v) - v[3] - v[4]          # minus idle and iowait
    return busy / _TICK


try:
    _TICK = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):
    _TICK = 100


class _Probe:
    """The last measurement: (monotonic time, busy seconds of our cores, our CPU seconds)."""

    def __init__(self):
        self.cores = _cores()
        self.last = self.sample()

    def sample(self):
        return time.monotonic(), _busy_seconds(self.cores), time.process_time()

    def others(self):
        """Cores' worth of CPU time other processes used since the last call, or None
        without /proc/stat or within MIN_WINDOW of the last call. After a pause longer than
        MAX_WINDOW the average over the pause says little about now: the processes running
        at this instant are counted instead."""
        now = self.sample()
        t0, b0, p0 = self.last
        dt = now[0] - t0
        if now[1] is None or b0 is None or dt < MIN_WINDOW:
            return None             # /proc/stat counts in ticks: too coarse for short windows
        self.last = now
        if dt > MAX_WINDOW or dt <= 0:
            return _running_others()
        return max(now[1] - b0 - (now[2] - p0), 0.0) / dt


def _running_others():
    """Tasks running right now other than this thread (/proc/loadavg's 4th field counts
    the runnable tasks of the machine, the reader included), or None."""
    try:
        with open("/proc/loadavg", "rb") as f:
            running = int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return float(max(running - 1, 0))


_probe = None
_next = 0.0               # monotonic time of the next measurement


def _start_probe():
    """The first sample (at import of the kernels): the first call then measures the load
    over the time it took to trace and compile."""
    global _probe
    if _probe is None:
        _probe = _Probe()


def free_cores():
    """Cores other processes left free (on average since the previous call), or None when
    not known (no /proc/stat)."""
    _start_probe()
    others = _probe.others()
    if others is None:
        return None
    return max(len(_probe.cores) - others, 0.0)


def choose(free):
    """Threads for `free` cores (None: unknown): one per free core (a core busy for less
    than BUSY_FRACTION counts as free), at least 1, at most OpenBLAS's pool."""
    if free is None:
        return None
    return max(1, min(pool_size(), int(free + BUSY_FRACTION)))


_forced = None


@contextlib.contextmanager
def forced(n):
    """Within the block, mid-sized products run on `n` BLAS threads whatever the switch
    and the load say (process-wide: calls from other threads too). For A/B measurements."""
    global _forced, _next
    if int(n) < 1:
        raise ValueError(f"forced: the thread count must be positive, got {n!r}")
    prev = _forced, _WANTED.value
    _forced = int(n)
    _WANTED.value = _forced
    try:
        yield
    finally:
        _forced = prev[0]
        _WANTED.value = prev[1]
        _next = 0.0                 # the next call decides afresh


def refresh(force=False):
    """Set the thread count from `NUMBAX_BLAS_THREADS` and, in ``auto`` mode, the load
    measured since the previous measurement; a no-op until `PERIOD` seconds have passed
    since the previous one (unless `force`). Called by the runner before each call."""
    global _next
    now = time.monotonic()
    if now < _next and not force:
        return
    if _forced is not None:
        return
    n = setting()               # a bad value raises at every call, not once
    _next = now + PERIOD
    if n is None:
        n = _settle(choose(free_cores()))
        if n is None:               # unknown: keep the previous choice
            return
    _WANTED.value = n


_calm = 0                 # consecutive measurements that allowed more threads than now
STATS = {"measured": 0, "threaded": 0}


def _settle(n):
    """Fewer threads at once, more only after CALM_WINDOWS measurements in a row allowed
    them: a thread too many on a busy core costs 5-50x, one too few at most 2x."""
    global _calm
    if n is None:
        return None
    STATS["measured"] += 1
    cur = _WANTED.value
    if n > cur:
        _calm += 1
        if _calm < CALM_WINDOWS:
            n = cur
    else:
        _calm = 0
    if n > 1:
        STATS["threaded"] += 1
    return n
