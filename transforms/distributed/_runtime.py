"""The process world: joining MPI (or not), the failure policy and thin communicator wrappers.

Nothing here imports `mpi4py` until `initialize()` finds that the program was started by an MPI
launcher (`mpiexec`); otherwise the world is one process and every operation is local.
"""
from __future__ import annotations

import functools
import hashlib
import os
import sys
import threading
import time
import traceback

import numpy as np

_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                  "MPI_LOCALNRANKS", "HYDI_CONTROL_FD", "PMI_FD")

_lock = threading.RLock()
_state = {"initialized": False, "MPI": None, "world": None, "p2p": None, "rank": 0, "size": 1}


def launched() -> bool:
    """True if an MPI launcher started this process (its environment says so)."""
    if os.environ.get("NUMBAX_DISTRIBUTED", "").lower() in ("0", "off", "false", "no"):
        return False
    return any(v in os.environ for v in _LAUNCHER_VARS)


def _launcher_size():
    for v in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"):
        try:
            return int(os.environ[v])
        except (KeyError, ValueError):
            pass
    return None


def initialize():
    """Join the MPI world when started by `mpiexec` (idempotent); else a 1-process world."""
    if _state["initialized"]:
        return
    with _lock:
        if _state["initialized"]:
            return
        if launched():
            _yield_when_waiting()
            try:
                from mpi4py import MPI
            except ImportError:
                n = _launcher_size()
                if n is not None and n > 1:
                    raise ImportError(
                        f"this program was started by an MPI launcher with {n} processes, but "
                        "mpi4py is not installed; install it with: pip install -e "
                        "\".[distributed]\" (mpi4py and the mpich wheel)") from None
                MPI = None
            if MPI is not None:
                world = MPI.COMM_WORLD
                _state.update(MPI=MPI, world=world, p2p=world.Dup(), rank=world.Get_rank(),
                              size=world.Get_size())
                if _state["size"] > 1:
                    _install_failure_policy()
                    _keep_freed_memory()
        _state["initialized"] = True


def _yield_when_waiting():
    """Make MPICH give up the CPU at every turn of its busy-wait loop (unless the user set it).

    A process waiting in a collective spins; by default MPICH yields once every 1000 polls.
    When the processes share their cores with other work (a laptop, a shared node, more
    processes than cores), the peer being waited for may need exactly the core the spinning
    process holds, and every step then waits a scheduler slice. Measured on 2 shared cores
    (load 5), the 2-process data-parallel step runs at ~0.25 ms or, in some launches, at
    ~0.8 ms: 3 of 8 alternated launches were slow with MPICH's default and 1 of 8 with this
    (a modest effect on a noisy machine), while an Allreduce's latency did not change (22-24
    us for 100 kB). Read by MPI_Init, so it is set before mpi4py is imported."""
    os.environ.setdefault("MPIR_CVAR_POLLS_BEFORE_YIELD", "1")


def process_index() -> int:
    """This process's rank in the MPI world (0 without `mpiexec`), as `jax.process_index`."""
    initialize()
    return _state["rank"]


def process_count() -> int:
    """The number of processes in the MPI world (1 without `mpiexec`), as
    `jax.process_count`."""
    initialize()
    return _state["size"]


def mpi():
    initialize()
    return _state["MPI"]


def world():
    initialize()
    return _state["world"]


def p2p_comm():
    initialize()
    return _state["p2p"]


def _keep_freed_memory():
    """Stop glibc from unmapping freed large blocks (NUMBAX_MALLOPT=0 to opt out).

    By default every array above the mmap threshold is a fresh mapping, unmapped when freed;
    under MPI each unmapping invalidates the library's cache of the memory it has shared with
    the peers, and the next large Allreduce pays to set it up again (measured: 3x slower on
    2 processes). Serving large arrays from the heap and never trimming it keeps freed memory
    mapped and reused, as MPI libraries with their own allocator hooks arrange."""
    if os.environ.get("NUMBAX_MALLOPT", "1") == "0" or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        pass


# ---------------------------------------------------------------------------------------------
# Failure policy: an uncaught exception on any process ends the whole job
# ---------------------------------------------------------------------------------------------

# seconds between writing why a process aborts the job and aborting it: the launcher forwards
# a process's output on its own time, and an abort right after the write once tore the job
# down before the message reached the terminal (CI, under load: an empty stderr)
_ABORT_GRACE = 0.2


def _abort(code):
    time.sleep(_ABORT_GRACE)
    _state["world"].Abort(code)


def _abort_with(exc_type, exc, tb, where="") -> None:
    rank, size = _state["rank"], _state["size"]
    try:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        head = f"[process {rank} of {size}] uncaught exception{where}; aborting the MPI job:\n"
        sys.stderr.write(head + "".join(f"[process {rank}] {line}\n"
                                        for line in text.rstrip("\n").split("\n")))
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        _abort(1)


def _install_failure_policy():
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, SystemExit) or _state["size"] <= 1:
            return previous(exc_type, exc, tb)
        _abort_with(exc_type, exc, tb)

    sys.excepthook = hook

    def thread_hook(args):
        if args.exc_type is SystemExit:
            return
        name = getattr(args.thread, "name", "?")
        _abort_with(args.exc_type, args.exc_value, args.exc_traceback, f" in thread {name}")

    threading.excepthook = thread_hook

    # sys.exit(status) with a failure status skips sys.excepthook, and MPI_Finalize at exit
    # would then wait for processes that wait for this one: record the status, abort at exit
    real_exit = sys.exit

    def exit_recording_status(status=None):
        if status is not None and status != 0:
            _state["exit_status"] = status
        real_exit(status)

    sys.exit = exit_recording_status
    import atexit

    def abort_on_failure_status():
        status = _state.get("exit_status")
        if status is None:
            return
        code = status if isinstance(status, int) else 1
        rank, size = _state["rank"], _state["size"]
        sys.stderr.write(f"[process {rank} of {size}] exiting with status {status!r}; aborting "
                         "the MPI job so that no other process waits for this one\n")
        sys.stderr.flush()
        sys.stdout.flush()
        _abort(code)

    atexit.register(abort_on_failure_status)


# ---------------------------------------------------------------------------------------------
# Communicator wrapper: the operations collectives need, with a local fast path for size 1
# ---------------------------------------------------------------------------------------------

_OPS = ("sum", "max", "min")
# reductions that went over MPI (a packed Allreduce or a DirectSum run each count one; the
# agreement checks of first calls do not): how tests count a step's collectives, not by timing
COUNTS = {"reductions": 0}
# a `_direct.DirectSum` is used from this many bytes (below, one Allreduce's latency wins: the
# crossover on 2 processes was between 100 and 400 kB) and up to this many members (above, MPI's
# tuned Allreduce wins; its messages are n - 1 per member)
_DIRECT_MIN_BYTES = 1 << 18
_DIRECT_MAX_MEMBERS = 8
_TAG = 1 << 12              # its messages' first tag (ppermute uses 7); see _direct
_checks = threading.local()       # .off: a compiled program past its first (checked) call


class checks_off:
    """Context: skip the agreement checks (a compiled program checks on its first call only)."""

    def __enter__(self):
        self.prev = getattr(_checks, "off", False)
        _checks.off = True

    def __exit__(self, *exc):
        _checks.off = self.prev


def _fingerprint(desc: str) -> int:
    return int.from_bytes(hashlib.blake2b(desc.encode(), digest_size=7).digest(), "little")


def direct_sum_fits(dtype, nbytes: int) -> bool:
    """True if a sum of `nbytes` of `dtype` is large enough that packing it for one Allreduce
    costs more than the extra latency of a reduce-scatter and an all-gather, in a dtype NumPy
    adds as MPI would (bool and float16 are reduced in a wider wire type)."""
    return nbytes >= _DIRECT_MIN_BYTES and _direct_dtype(np.dtype(dtype))


@functools.lru_cache(maxsize=None)
def _direct_dtype(dt):
    return dt.kind in "iufc" and _wire(np.empty(0, dt), "sum") is None


def _wire(x: np.ndarray, op: str):
    """The dtype MPI reduces `x` in (MPI has no MAX for bool, no float16)."""
    if x.dtype == np.bool_:
        return np.uint8
    if x.dtype == np.float16:
        return np.float32
    return None


class Comm:
    """One process group: a sub-communicator of the world (or a 1-process stand-in)."""

    def __init__(self, comm, rank, size, label):
        self.comm, self.rank, self.size, self.label = comm, rank, size, label
        self._pools = {}
        self._direct = {}          # layout -> its planned DirectSum

    def pooled(self, dtype, size) -> np.ndarray:
        """A 1-D buffer for a packed reduction whose results will be views of it: one of a
        small pool kept per (dtype, size) that no earlier result refers to any more, else a
        new one. MPI moves memory it has moved before several times faster than new memory
        (the library caches what it has registered), and results still held by the caller
        are never overwritten (a live view keeps its base's reference count up)."""
        key = (np.dtype(dtype).str, int(size))
        pool = self._pools.get(key)
        if pool is None:
            if len(self._pools) >= 16:
                self._pools.pop(next(iter(self._pools)))
            pool = self._pools[key] = []
        for buf in pool:
            if sys.getrefcount(buf) <= 3:        # the pool's list, this name, getrefcount's
                return buf
        buf = np.empty(int(size), dtype)
        pool.append(buf)
        if len(pool) > 3:
            pool.pop(0)
        return buf

    def __repr__(self):
        return f"Comm({self.label}, rank {self.rank} of {self.size})"

    # -- agreement -------------------------------------------------------------------------
    def check_same(self, desc: str, what: str):
        """Raise the same ValueError on every member unless all members pass the same `desc`
        (a cheap check: one 2-integer allreduce; the descriptions are gathered only on error)."""
        if self.size == 1 or getattr(_checks, "off", False):
            return
        MPI = _state["MPI"]
        h = _fingerprint(desc)
        buf = np.array([h, -h], np.int64)
        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.MAX)
        if buf[0] == h and buf[1] == -h:
            return
        descs = self.comm.allgather(desc)
        ranks = self.comm.allgather(_state["rank"])
        lines = "\n".join(f"  process {r} (coordinate {i}): {d}"
                          for i, (r, d) in enumerate(zip(ranks, descs)))
        raise ValueError(f"{what}: the processes of {self.label} disagree (every member must "
                         f"call the same collective on values of the same shapes and dtypes):\n"
                         f"{lines}")

    # -- data ------------------------------------------------------------------------------
    def allreduce_(self, buf: np.ndarray, op: str) -> np.ndarray:
        """Reduce the C-contiguous `buf` in place over the group; returns it."""
        if self.size == 1:
            return buf
        COUNTS["reductions"] += 1
        MPI = _state["MPI"]
        mop = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
        wire = _wire(buf, op)
        if wire is None:
            self.comm.Allreduce(MPI.IN_PLACE, buf, op=mop)
            return buf
        tmp = buf.astype(wire)
        self.comm.Allreduce(MPI.IN_PLACE, tmp, op=mop)
        buf[...] = tmp
        return buf

    def direct_sum_ok(self, dtype, nbytes: int) -> bool:
        """True if a sum of `nbytes` of `dtype` over this group should go through a
        `_direct.DirectSum` rather than a packed buffer and MPI's Allreduce: a sum that
        `direct_sum_fits`, and few enough members that n - 1 messages per member stay cheap
        (past that, MPI's own tuned Allreduce is the better algorithm)."""
        return 1 < self.size <= _DIRECT_MAX_MEMBERS and direct_sum_fits(dtype, nbytes)

    def direct_sum(self, dtype, sizes, scale=None, divide=None, pack_small=True):
        """The `_direct.DirectSum` of this group for operands of `sizes` elements of `dtype`
        (planned once per layout and kept: a repeated reduction does no planning)."""
        key = (np.dtype(dtype).str, tuple(int(s) for s in sizes),
               None if scale is None else float(scale), None if divide is None else float(divide),
               pack_small)
        ds = self._direct.get(key)
        if ds is None:
            from ._direct import DirectSum
            if len(self._direct) >= 16:
                self._direct.pop(next(iter(self._direct)))
            ds = self._direct[key] = DirectSum(self, dtype, sizes, scale, divide, pack_small)
        return ds

    def sum_leaves_into(self, flats, out: np.ndarray, scale=None, divide=None) -> np.ndarray:
        """`out` (1-D, C-contiguous, the leaves' total size) = the sum over the group of the
        1-D `flats` laid end to end, times `scale` or divided by `divide` if given (see
        `_direct.DirectSum`: a reduce-scatter straight from the leaves, then an all-gather)."""
        ds = self.direct_sum(out.dtype, [f.size for f in flats], scale, divide, False)
        return ds.run_into(flats, out)

    def allgather(self, x: np.ndarray) -> np.ndarray:
        """(size,) + x.shape: every member's `x` in coordinate order."""
        x = np.asarray(x, order="C")
        out = np.empty((self.size,) + x.shape, x.dtype)
        if self.size == 1:
            out[0] = x
            return out
        self.comm.Allgather(x.reshape(-1).view(np.uint8), out.reshape(-1).view(np.uint8))
        return out

    def ppermute(self, x: np.ndarray, perm) -> np.ndarray:
        """Member `s` sends `x` to `d` for each `(s, d)` of `perm`; zeros where nothing arrives."""
        x = np.asarray(x, order="C")
        out = np.zeros_like(x)
        src = [s for s, d in perm if d == self.rank]
        dst = [d for s, d in perm if s == self.rank]
        if self.size == 1:
            if src:
                out[...] = x
            return out
        raw, rout = x.reshape(-1).view(np.uint8), out.reshape(-1).view(np.uint8)   # any dtype
        MPI = _state["MPI"]
        reqs = [self.comm.Irecv(rout, source=src[0], tag=7)] if src else []
        reqs += [self.comm.Isend(raw, dest=d, tag=7) for d in dst]
        MPI.Request.Waitall(reqs)
        return out


def world_comm() -> Comm:
    initialize()
    c = _state.get("world_comm")
    if c is None:
        c = _state["world_comm"] = Comm(_state["world"], _state["rank"], _state["size"],
                                        "the world")
    return c
