"""Where the direct compiler's LLVM work runs: lanes, threads of this process taking modules
in order from one queue, so both cores work on a cold start.

Lowering a function to LLVM IR is Python (it holds the GIL); optimising and emitting it is
LLVM (`codegen.py`), called through ctypes, which releases the GIL. llvmlite guards every
call into LLVM with one process-wide lock, which would keep two lanes from ever overlapping.
LLVM itself lets threads work at once on modules of different LLVM contexts with different
target machines, so:

- each lane has an LLVM context and a target machine of its own, made (under llvmlite's
  lock) before the lane starts, for this host's CPU and features: an object file is the
  same bytes whichever lane compiled it, and the bytes `engine.optimise_and_emit` makes;
- a call into LLVM from a lane thread does not take llvmlite's lock (`_let_lanes_pass`);
  every other thread's calls still do, so Numba's compiles and the loading of machine code
  (`engine.py`) are serialised as llvmlite means them to be;
- what a lane makes in its context (parsed modules) it disposes of itself: a module freed
  by another thread would race with the lane's use of the context.

A separate compile worker process did the second lane's share before; starting it (a new
Python importing llvmlite) cost 0.06-0.07 CPU-seconds of every cold start.

`submit` returns at once; `result` waits for a job's object file. What is loaded, and in what
order, is `function.py`'s business (a function's code must be loaded after that of the
helpers it calls).

Two lanes run with two or more cores unless ``NUMBAX_COMPILE_WORKERS=0``, one otherwise (or
if llvmlite's lock is not laid out as this module expects: then its one lane takes the lock
like any other thread). A forked child starts its own lanes and recompiles what its parent
had not finished.
"""
from __future__ import annotations

import os
import queue
import sys
import threading

import llvmlite.binding as llb

from . import codegen, engine

STATS = {"lanes": 0, "lane0": 0, "lane1": 0}

_lock = threading.Lock()
_state = {}     # "queue", "pid" (the process that started the lanes), "busy", "switch"
_outstanding = set()     # jobs submitted and not finished (re-queued in a forked child)
_in_lane = threading.local()      # .active: this thread is a lane (see `_let_lanes_pass`)


class Job:
    """One module to compile: its IR text, then its object file or the error's text;
    `on_done(obj)` is called (on the lane's thread) when it compiled."""

    __slots__ = ("ir", "obj", "error", "done", "lane", "on_done")

    def __init__(self, ir_text, on_done=None):
        self.ir, self.obj, self.error, self.lane = ir_text, None, None, None
        self.on_done = on_done
        self.done = threading.Event()

    def _finish(self, lane, obj=None, error=None):
        self.obj, self.error, self.lane, self.ir = obj, error, lane, None
        STATS[f"lane{lane}"] += 1
        if obj is not None and self.on_done is not None:
            try:
                self.on_done(obj)
            except Exception:                  # noqa: BLE001 - (a cache write: best effort)
                pass
        with _lock:
            _outstanding.discard(self)
            if not _outstanding:
                _hurry(False)
        self.done.set()


def start():
    """Start the lanes if they are not running: called before lowering the first function
    that is not in the disk cache."""
    _lanes()


def submit(ir_text, on_done=None):
    """Queue module `ir_text` for compilation: its `Job` (see there for `on_done`)."""
    job = Job(ir_text, on_done)
    q = _lanes()
    with _lock:
        _outstanding.add(job)
        _hurry(True)
    q.put(job)
    return job


# Python's switch interval while jobs are outstanding. A lane needs the GIL back after each
# of its calls into LLVM (a dozen per module), and while the main thread lowers (Python,
# never releasing the GIL by itself) it gets it only when the main thread is asked to drop
# it, after the switch interval: at the default 5 ms the two lanes compiled a program's
# modules in 0.78 s beside a busy main thread instead of 0.30 s, with 0.5 ms in 0.44 s (the
# lanes then share the cores with the main thread, as they should).
_SWITCH = 0.0005


def _hurry(on):
    """(With `_lock` held.) Shorten the switch interval to `_SWITCH` while jobs are
    outstanding (`on`), and give back the one in force before when none are."""
    if on and "switch" not in _state:
        before = sys.getswitchinterval()
        if before > _SWITCH:
            _state["switch"] = before
            sys.setswitchinterval(_SWITCH)
    elif not on and "switch" in _state:
        sys.setswitchinterval(_state.pop("switch"))


def result(job):
    """Wait for `job`: its object file's bytes (RuntimeError with LLVM's message if it
    failed)."""
    if not job.done.is_set():
        _lanes()                 # (a forked child: its lanes take over the parent's jobs)
        job.done.wait()
    if job.error is not None:
        raise RuntimeError(f"LLVM failed on a directly compiled module: {job.error}")
    return job.obj


def lane_count():
    """How many lanes this process runs (starting them if they were not)."""
    _lanes()
    return len(_state["busy"])


def _lanes():
    """The job queue, the lanes serving it started in this process if they were not."""
    st = _state
    if st.get("pid") == os.getpid():
        return st["queue"]
    with _lock:
        if st.get("pid") == os.getpid():
            return st["queue"]
        q = queue.Queue()
        for job in list(_outstanding):        # a forked child: the parent's unfinished jobs
            if job.ir is not None:
                q.put(job)
        # the target machines and contexts are made here, under llvmlite's lock, never in a
        # lane thread (see `_before_fork`)
        engine._init()
        n = 2 if _second_lane_wanted() and _let_lanes_pass() else 1
        busy = [threading.Lock() for _ in range(n)]
        switch = st.get("switch")      # (a forked child: the interval its parent shortened)
        st.clear()
        st.update(queue=q, pid=os.getpid(), busy=busy)
        if switch is not None:
            st["switch"] = switch
        cpu = engine.host_cpu()
        for k in range(n):
            tm, context = codegen.target_machine(*cpu), llb.create_context()
            threading.Thread(target=_lane, args=(q, k, busy[k], tm, context, n > 1),
                             name=f"numbax-llvm-{k}", daemon=True).start()
        STATS["lanes"] = n
        return q


def _second_lane_wanted():
    """Whether to run a second lane: on two or more cores unless
    ``NUMBAX_COMPILE_WORKERS=0``."""
    raw = os.environ.get("NUMBAX_COMPILE_WORKERS", "").strip().lower()
    return raw not in ("0", "off", "false", "no") and (os.cpu_count() or 1) >= 2


def _lane(q, k, busy, tm, context, unlocked):
    _in_lane.active = unlocked
    while True:
        job = q.get()
        obj = error = None
        with busy:              # (only around LLVM: `_finish` takes `_lock`, which
            try:                # `_before_fork` takes before the lanes' `busy` locks)
                obj = codegen.optimise_and_emit(tm, job.ir, context)
            except Exception as e:             # noqa: BLE001 - reported by `result`
                error = f"{type(e).__name__}: {e}"
        job._finish(k, obj=obj, error=error)


def _let_lanes_pass():
    """Make llvmlite's process-wide lock let lane threads through (their calls go to their
    own context and target machine); False, leaving it alone, when it is not laid out as
    expected (the one lane then takes it). Once per process, and only ever for the threads
    `_lane` marks."""
    try:
        from llvmlite.binding import ffi
        base, lock = ffi._LLVMLock, ffi.lib._lock
    except (ImportError, AttributeError):
        return False
    if getattr(type(lock), "_numbax_lanes_pass", False):
        return True
    if type(lock) is not base or not hasattr(lock, "_lock"):
        return False

    class LanesPass(base):
        """llvmlite's lock, not taken by a lane thread."""
        _numbax_lanes_pass = True

        def __enter__(self):
            if not getattr(_in_lane, "active", False):
                base.__enter__(self)

        def __exit__(self, *exc):
            if not getattr(_in_lane, "active", False):
                base.__exit__(self, *exc)

    lock.__class__ = LanesPass
    return True


def _before_fork():
    # no lock (ours, a lane's, the engine's target machine's) may be held by a lane thread
    # at the fork, and no lane may be inside LLVM: the child would wait forever for a lock
    # held by a thread it does not have
    engine._tm_lock.acquire()
    _lock.acquire()
    for b in _state.get("busy", ()):
        b.acquire()


def _after_fork():
    for b in _state.get("busy", ()):
        b.release()
    _lock.release()
    engine._tm_lock.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork,
                        after_in_child=_after_fork)
