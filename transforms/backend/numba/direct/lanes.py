"""Where the direct compiler's LLVM work runs: two lanes, so both cores work on a cold start.

Lowering a function to LLVM IR is Python (it holds the GIL); optimising and emitting it is
LLVM (`codegen.py`), called through ctypes, which releases the GIL -- but llvmlite guards every
call into LLVM with one process-wide lock, so two LLVM jobs never overlap in one process.
Hence two lanes, each taking jobs (modules) in order from one queue:

- the *local* lane, a thread of this process: LLVM runs there while the main thread goes on
  lowering the program's next functions;
- the *worker* lane: a thread feeding a compile worker process (``codegen.py``: Python and
  llvmlite only, ready 0.05-0.15 s after it starts), which compiles for the same CPU and
  features, so its object files are the bytes this process would have made. It is started
  on the first job, stays for the process's later programs and exits when this process does
  (its input closes).

`submit` returns at once; `result` waits for a job's object file. What is loaded, and in what
order, is `function.py`'s business (a function's code must be loaded after that of the
helpers it calls).

The worker lane is on with two or more cores unless ``NUMBAX_COMPILE_WORKERS=0``. If the
worker cannot start or dies, its job goes back to the queue and the local lane does the
rest: nothing is lost, only time.
A forked child starts its own lanes and recompiles what its parent had not finished.
"""
from __future__ import annotations

import atexit
import os
import queue
import subprocess
import sys
import threading

from . import codegen, engine

STATS = {"local": 0, "worker": 0, "worker_started": 0, "worker_failed": 0}

_lock = threading.Lock()
_state = {}              # "queue", "pid" (the process that started the lanes), "proc"
_outstanding = set()     # jobs submitted and not finished (re-queued in a forked child)


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
        STATS[lane] += 1
        if obj is not None and self.on_done is not None:
            try:
                self.on_done(obj)
            except Exception:                  # noqa: BLE001 - (a cache write: best effort)
                pass
        with _lock:
            _outstanding.discard(self)
        self.done.set()


def start():
    """Start the lanes (and the compile worker) if they are not running: called before
    lowering the first function that is not in the disk cache, so the worker process is
    starting up while that function is lowered."""
    _lanes()


def submit(ir_text, on_done=None):
    """Queue module `ir_text` for compilation: its `Job` (see there for `on_done`)."""
    job = Job(ir_text, on_done)
    q = _lanes()
    with _lock:
        _outstanding.add(job)
    q.put(job)
    return job


def result(job):
    """Wait for `job`: its object file's bytes (RuntimeError with LLVM's message if it
    failed)."""
    if not job.done.is_set():
        _lanes()                 # (a forked child: its lanes take over the parent's jobs)
        job.done.wait()
    if job.error is not None:
        raise RuntimeError(f"LLVM failed on a directly compiled module: {job.error}")
    return job.obj


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
        st.clear()
        st.update(queue=q, proc=None, pid=os.getpid())
        # llvmlite's calls outside the target machine's lock happen here, never in a lane
        # thread (see `_before_fork`)
        engine._init()
        cpu = engine.host_cpu()
        threading.Thread(target=_local_lane, args=(q,), name="numbax-llvm", daemon=True).start()
        if _worker_wanted():
            threading.Thread(target=_worker_lane, args=(q, cpu), name="numbax-llvm-worker",
                             daemon=True).start()
        return q


def _worker_wanted():
    """Whether to start the compile worker: on two or more cores unless
    ``NUMBAX_COMPILE_WORKERS=0``. Unlike Numba's helper worker (`workers.py`, 2.3 s to
    start), it is not held back on a busy machine: it costs 0.05-0.15 s to start, and a compile
    it takes would otherwise wait for this process's one lane."""
    raw = os.environ.get("NUMBAX_COMPILE_WORKERS", "").strip().lower()
    return raw not in ("0", "off", "false", "no") and (os.cpu_count() or 1) >= 2


def _local_lane(q):
    while True:
        job = q.get()
        try:
            obj = engine.optimise_and_emit(job.ir)
        except Exception as e:                 # noqa: BLE001 - reported by `result`
            job._finish("local", error=f"{type(e).__name__}: {e}")
        else:
            job._finish("local", obj=obj)


def _start_worker(cpu=None):
    """The compile worker process for `cpu` (name, features; default this host's), ready
    (it has said so), or None."""
    cpu, features = cpu or engine.host_cpu()
    # run codegen.py by path without putting its directory first on the worker's sys.path;
    # when its input closes it leaves at once (every answer is flushed as written): Python's
    # own shutdown, 15 ms, would be waited for by this process's exit (`_stop`)
    boot = ("import os, sys, importlib.util as u; s = u.spec_from_file_location("
            "'numbax_codegen', sys.argv[1]); m = u.module_from_spec(s); "
            "s.loader.exec_module(m); "
            "m.serve(sys.argv[2], sys.argv[3], sys.stdin.buffer, sys.stdout.buffer); "
            "os._exit(0)")
    try:
        proc = subprocess.Popen([sys.executable, "-c", boot, codegen.__file__, cpu, features],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, close_fds=True)
    except OSError:
        return None
    _state["proc"] = proc
    atexit.register(_stop, proc)
    if codegen.read_exact(proc.stdout, 1) != codegen.READY:
        _stop(proc)
        return None
    STATS["worker_started"] += 1
    return proc


def _worker_lane(q, cpu):
    proc = _start_worker(cpu)
    if proc is None:
        STATS["worker_failed"] += 1
        return
    while True:
        job = q.get()
        try:
            codegen.write_frame(proc.stdin, codegen.REQUEST, job.ir.encode())
            frame = codegen.read_frame(proc.stdout)
        except (OSError, ValueError):
            frame = None
        if frame is None:                      # the worker is gone: the local lane goes on
            q.put(job)
            STATS["worker_failed"] += 1
            _stop(proc)
            return
        tag, payload = frame
        if tag == codegen.OK:
            job._finish("worker", obj=payload)
        else:
            job._finish("worker", error=payload.decode(errors="replace"))


def _stop(proc):
    if proc.poll() is None:
        try:
            proc.stdin.close()
            proc.wait(timeout=2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            proc.kill()


def _before_fork():
    # no lock (ours, the target machine's, and so llvmlite's global one, which a lane thread
    # takes only inside the target machine's) may be held by a lane thread at the fork: the
    # child would wait for it forever
    engine._tm_lock.acquire()
    _lock.acquire()


def _after_fork():
    _lock.release()
    engine._tm_lock.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork,
                        after_in_child=_after_fork)


def worker_process():
    """The running compile worker (a `subprocess.Popen`), or None (for tests)."""
    proc = _state.get("proc") if _state.get("pid") == os.getpid() else None
    return proc if proc is not None and proc.poll() is None else None
