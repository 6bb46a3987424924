"""Compiling a program's helper modules on two cores: a worker process takes some.

Numba compiles one function at a time and holds the GIL while it does, so a second core helps
only through a second process. Before a new program's main function is compiled, its helper
modules (`helpers.py`) that the disk cache does not hold yet are shared between this process
and one worker process: the worker compiles its share into the disk cache while this process
compiles the rest; this process then loads the worker's share from the disk (and compiles
any the worker did not deliver) and compiles the main function.

The worker is a new Python process (``python -m transforms.backend.numba.background
--worker``), never a fork: this process may already run OpenBLAS, OpenMP or user threads,
and a forked child would inherit their locks in whatever state they were. Starting it costs
about as much as compiling `STARTUP_LINES` lines of helpers, so the work is shared only when
that pays; this process starts on its own share and then takes over the worker's from its far
end (loading what the worker finished, waiting on an entry lock for what it is compiling),
so it never idles while the worker starts up. Once started, the worker stays for later
programs (it exits with this process, or when its
input closes). Entry locks (`cache._EntryLock`) make two processes wanting one helper compile
it once; each entry is written atomically, so the cache holds the same files whichever
process compiled what.

Serial (no worker) when ``NUMBAX_COMPILE_WORKERS=0``, on one core, by default when no core is
idle (on the shared 2-core development machine at load 4-9 the worker made the CNN step's
first call slower, not faster: with autogroup scheduling a session's processes share one
share of the CPU, so a worker takes from its own parent), without a writable
cache directory, or when the worker cannot be started or fails (then silently: this process
compiles what is missing).
"""
from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys

from . import cache

STARTUP_LINES = 290       # a new worker's start-up (imports, Numba's set-up, kernels): ~2.3 s
PER_FUNCTION_LINES = 6    # a function's fixed cost (wrapping, its module) in lines
MIN_SAVING_LINES = 40     # share only when the estimated wall-time saving is at least this
DIRECT_SPEEDUP = 8        # how much faster the direct compiler compiles a line than Numba
TIMEOUT = 900             # seconds to wait for the worker's answer before giving up on it

_worker = None            # the running worker process, or None
_disabled = False         # the worker failed: serial from now on
_pending = []             # requests the worker has not answered yet
STEAL = True              # False: wait for the worker's answer before loading its share


def workers_enabled():
    """Whether compile work may go to a worker process now. ``NUMBAX_COMPILE_WORKERS``:
    unset or ``auto`` -- when this machine has two or more cores and one is idle (the load
    average, which counts this compiling process, is below the cores minus one half: on a
    machine whose cores are all busy a worker only adds its start-up); ``1`` -- always on two
    or more cores; ``0`` -- never."""
    raw = os.environ.get("NUMBAX_COMPILE_WORKERS", "").strip().lower()
    if raw in ("", "auto"):
        n = None
    else:
        try:
            n = int(raw)
        except ValueError:
            raise ValueError("NUMBAX_COMPILE_WORKERS must be 'auto', 0 or 1, got "
                             f"{raw!r}") from None
    cores = os.cpu_count() or 1
    if _disabled or cores < 2 or n == 0:
        return False
    if n is None:
        try:
            return os.getloadavg()[0] < cores - 0.5
        except (AttributeError, OSError):
            return False
    return True


def _cost(h):
    return h.lines + PER_FUNCTION_LINES


def partition(missing, startup):
    """Split helper modules `missing` between this process and a worker that starts after
    `startup` line-equivalents: longest first, each to whichever finishes it sooner. Returns
    (ours, the worker's); the worker's is empty when sharing would not save
    `MIN_SAVING_LINES`."""
    ours, theirs, t_ours, t_theirs = [], [], 0, startup
    for h in sorted(missing, key=_cost, reverse=True):
        if t_ours <= t_theirs:
            ours.append(h)
            t_ours += _cost(h)
        else:
            theirs.append(h)
            t_theirs += _cost(h)
    serial = sum(_cost(h) for h in missing)
    if not theirs or serial - max(t_ours, t_theirs) < MIN_SAVING_LINES:
        return list(missing), []
    return ours, theirs


def compile_helpers(hs):
    """Load helper modules `hs` (callees first) into this process, compiling what the disk
    cache lacks; a worker process compiles part of it when that pays (see the module
    docstring)."""
    st = cache._resolve()
    todo = [h for h in hs if h.key not in cache._helper_modules]
    theirs = []
    if len(todo) > 1 and st.path is not None and st.writable and workers_enabled():
        missing = [h for h in todo if not cache.helper_on_disk(h, st.path)]
        alive = _worker is not None and _worker.poll() is None
        startup = 0 if alive else STARTUP_LINES
        from . import direct
        if direct.enabled():
            # the direct compiler compiles a line several times faster than Numba: a
            # worker's start-up is worth that many more lines (only big programs share)
            startup *= DIRECT_SPEEDUP
        _, theirs = partition(missing, startup)
    job = _send(theirs, hs, st.path) if theirs else None
    skip = {h.key for h in theirs} if job else set()
    for h in todo:                      # ours first
        if h.key not in skip and not (_closure(h, hs) & skip):
            cache.helper(h.key, h.source, h.name)
    # then the worker's share from its far end (the worker starts at the near end): each is
    # loaded from the disk if the worker compiled it, waited for if the worker is compiling
    # it (its entry lock), or compiled here if the worker has not reached it -- so this
    # process never idles while the worker still starts up
    if job and not STEAL:
        _drain()
    by_key = {h.key: h for h in hs}
    for h in reversed([h for h in todo if h.key in skip or _closure(h, hs) & skip]):
        for k in [x.key for x in hs if x.key in _closure(h, hs)]:
            cache.helper(k, by_key[k].source, by_key[k].name)
        cache.helper(h.key, h.source, h.name)
    if job:
        cache.STATS["helpers_by_worker"] += sum(
            1 for h in theirs if cache._helper_modules.get(h.key) is not None and
            getattr(cache._helper_modules[h.key], "_nbx_from_disk", False))


def _closure(h, hs):
    """Keys of the helper modules `h` calls, directly or not."""
    by_key = {x.key: x for x in hs}
    out, stack = set(), list(h.deps)
    while stack:
        k = stack.pop()
        if k not in out:
            out.add(k)
            stack += list(by_key[k].deps) if k in by_key else []
    return out


def _send(theirs, hs, d):
    """Hand `theirs` (with the modules they call) to the worker; False if it cannot run."""
    global _worker, _disabled
    by_key = {h.key: h for h in hs}
    keys = set()
    for h in theirs:
        keys |= {h.key} | _closure(h, hs)
    items = [[h.key, h.source, h.name] for h in hs if h.key in keys and h.key in by_key]
    if _worker is not None and _pending and not _drain():
        return False
    try:
        if _worker is None or _worker.poll() is not None:
            _worker = _start()
        _worker.stdin.write(json.dumps({"dir": d, "helpers": items}) + "\n")
        _worker.stdin.flush()
        _pending.append(1)
        return True
    except (OSError, ValueError):
        _stop()
        _disabled = True
        return False


def _start():
    env = dict(os.environ, NUMBAX_COMPILE_WORKERS="0", NUMBAX_PRECOMPILE="0",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", NUMBAX_TIERED="0")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    p = subprocess.Popen([sys.executable, "-m", "transforms.backend.numba.background",
                          "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=env, text=True)
    if not getattr(_start, "registered", False):
        atexit.register(_stop)
        _start.registered = True
    return p


def _drain():
    """Read the worker's answers to earlier requests (it answers once it has compiled or
    loaded everything asked); False (and serial from now on) if it failed."""
    global _disabled
    p = _worker
    while _pending:
        try:
            ready, _, _ = select.select([p.stdout], [], [], TIMEOUT)
            line = p.stdout.readline() if ready else ""
            ok = bool(line) and json.loads(line).get("ok", False)
        except (OSError, ValueError):
            ok = False
        _pending.pop()
        if not ok:                        # dead, hung or failing: serial from now on
            _pending.clear()
            _stop()
            _disabled = True
            return False
    return True


def _stop():
    """End the worker (at exit, or after a failure)."""
    global _worker
    p, _worker = _worker, None
    busy = bool(_pending)
    _pending.clear()
    if p is None:
        return
    if busy:                  # whatever it still does, this process did or no longer needs
        p.kill()
        p.wait()
        return
    try:
        p.stdin.close()
    except OSError:
        pass
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def serve(stdin=sys.stdin, stdout=sys.stdout):
    """The worker's loop: one JSON request per line ({"dir", "helpers": [[key, source,
    name], ...]}), each helper compiled into that cache directory; one answer per line."""
    for line in stdin:
        try:
            msg = json.loads(line)
            os.environ["NUMBAX_CACHE_DIR"] = msg["dir"]
            for key, source, name in msg["helpers"]:
                cache.helper(key, source, name)
            from .background import finish_direct
            finish_direct()
            stdout.write(json.dumps({"ok": True}) + "\n")
        except Exception as e:                       # noqa: BLE001 - reported to the parent
            stdout.write(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}) + "\n")
        stdout.flush()
