"""Tiered execution for `jit(f, tiered=True)`: never wait for a compile.

The first call of a new signature runs `f` itself eagerly (as without `jit`), then traces it
and starts building the compiled version in a background process (`backend.numba.background`),
which writes it to the disk cache; its results are converted to the traced outputs' dtypes (if
they do not have the traced structure and shapes, or `f` raised, the traced program is
interpreted instead, as below). Later calls run the jaxpr through the eager NumPy interpreter
(the primitives' own implementations, as outside `jit`) until that process has finished; the
next call then loads the machine code from the disk cache and every later call runs compiled.
(Running `f` itself first spares that call the interpreter's overhead: it returns in about the
time of an eager step plus the trace. Python side effects of `f`, like a `print`, then happen
once more than under plain `jit`: on that call and when it is traced.)

* Results: both tiers compute the same function, but not with the same floating-point
  operations (the compiled code fuses and reorders them), so a run's first steps can differ
  from a fully compiled run in the last bits -- within the tolerances that hold between `jit`
  and eager execution. `tiered=False` (the default unless ``NUMBAX_TIERED=1``) keeps runs
  bit-reproducible.
* A background compile that fails (the process crashes, an unsupported operation) leaves the
  function running eagerly, with one `TieredCompileWarning` per jitted function.
* Without a writable disk cache there is nothing to hand the compiled code over through:
  the function is then compiled in the calling process as without `tiered`.
* Only calls made outside any transformation are tiered: under `grad`, `vmap` or another
  `jit` the function is part of a larger traced program, compiled as a whole.
* `donate_argnums`: eager calls do not write into donated arrays (donation permits reuse, it
  does not require it); compiled calls do, as usual.

The switch can be watched: ``f.tier_stats`` counts eager calls, background compiles, switches
to compiled code (and how many of those loaded it from the disk cache) and failures;
``f.wait_compiled(timeout)`` blocks until the background compiles started so far are done.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import warnings

import numpy as np


class TieredCompileWarning(RuntimeWarning):
    """A background compile of `jit(tiered=True)` failed: the function keeps running in the
    eager interpreter."""


def default_tiered():
    """Whether `jit` is tiered when not told: ``NUMBAX_TIERED`` set to anything but 0."""
    return os.environ.get("NUMBAX_TIERED", "") not in ("", "0")


def new_stats():
    return {"eager_calls": 0, "background_compiles": 0, "switches": 0, "loaded_from_disk": 0,
            "failures": 0}


class TierState:
    """Tiered execution of one traced signature: its background compile (None until the first
    eager call has returned), and whether that failed or must be skipped."""
    __slots__ = ("bc", "failed", "foreground")

    def __init__(self):
        self.bc = None
        self.failed = False
        self.foreground = False


def ready(caches, entry, name):
    """True when `entry` should now be compiled in this process: its background compile has
    finished (the machine code waits in the disk cache), or tiering does not apply to it. False
    while the call must run eagerly."""
    st = entry.tier
    if st is None:
        entry.tier = TierState()
        return False
    if st.foreground:
        return True
    if st.failed:
        return False
    bc = st.bc
    if bc is None or not bc.done.is_set():
        return False
    if bc.no_disk_cache or bc.in_process:
        st.foreground = True                 # nothing to hand over: compile here
        return True
    if bc.error is not None:
        st.failed = True
        caches.tier["failures"] += 1
        if not caches.tier_warned:
            caches.tier_warned = True
            warnings.warn(f"jit({name}, tiered=True): compiling in the background failed "
                          f"({bc.error}); running in the eager interpreter instead",
                          TieredCompileWarning, stacklevel=5)
        return False
    return True


def eager(caches, entry, leaves):
    """Run `entry`'s jaxpr on `leaves` through the eager interpreter; starts the background
    compile after the first such call (so that lowering does not slow that call down)."""
    from .ir import eval_jaxpr
    from .pjit import interpreting
    closed = entry.closed
    args = [x if type(x) is np.ndarray and x.dtype == a.dtype else np.asarray(x, a.dtype)
            for x, a in zip(leaves, closed.in_avals)]
    with interpreting():
        outs = eval_jaxpr(closed.jaxpr, closed.consts, *args)
    outs = [o if type(o) is np.ndarray and o.dtype == a.dtype else np.asarray(o, a.dtype)
            for o, a in zip(outs, closed.out_avals)]
    caches.tier["eager_calls"] += 1
    st = entry.tier
    if st.bc is None and not st.failed:
        _start(caches, entry)
    return outs


class _Failed:
    """The first eager call raised: the traced program's interpreter gives the error."""


def first_call(fun, args, kwargs):
    """The first call of a new signature under tiering: `fun` run eagerly, before it is traced
    (its traced program then starts compiling). An exception is not raised here: the
    interpreter of the traced program runs instead and reports it as jit would."""
    try:
        return fun(*args, **kwargs)
    except Exception:                    # noqa: BLE001 -- rerun through the traced program
        return _Failed


def adopt(caches, entry, result):
    """The eager result of `first_call` as the flat outputs of `entry` (each leaf a NumPy
    array of the traced output's dtype), counted as an eager call, and the background compile
    started; None when it does not have the traced output's structure and shapes (then the
    traced program is interpreted instead)."""
    import optree

    from .tree import NAMESPACE
    if result is _Failed:
        return None
    try:
        flat, tree = optree.tree_flatten(result, namespace=NAMESPACE)
    except Exception:                    # noqa: BLE001
        return None
    avals = entry.closed.out_avals
    if tree != entry.out_tree or len(flat) != len(avals):
        return None
    outs = []
    for x, a in zip(flat, avals):
        x = np.asarray(x)
        if x.shape != tuple(a.shape):
            return None
        outs.append(x if x.dtype == a.dtype else x.astype(a.dtype))
    caches.tier["eager_calls"] += 1
    st = entry.tier
    if st.bc is None and not st.failed:
        _start(caches, entry)
    return outs


def _start(caches, entry):
    st = entry.tier
    st.bc = BackgroundCompile(entry.closed, entry.donate).start()
    caches.tier["background_compiles"] += 1


# What the child process runs (an attribute, so that tests can make it fail).
CHILD_ARGS = ("-m", "transforms.backend.numba.background")


class BackgroundCompile:
    """Lower a closed jaxpr and compile it in a child process that writes the disk cache.

    Everything runs in a thread, including importing the backend (Numba takes a second or two
    to import, which the eager calls need not wait for). `done` (threading.Event) is set when
    the work has ended; then `lowered` holds the generated program, and `error` is None on
    success, else what failed. `no_disk_cache`: there was no writable cache directory to hand
    the machine code over through; `in_process`: the program is not one module (split at
    cross-process collectives); in both cases the caller compiles in its own process. `spawned`:
    whether a child process was started (not when the disk cache already held the entry)."""

    def __init__(self, closed, donate=()):
        self.closed, self.donate = closed, tuple(sorted(donate))
        self.lowered = None
        self.error = None
        self.no_disk_cache = False
        self.in_process = False
        self.spawned = False
        self.done = threading.Event()

    def start(self):
        threading.Thread(target=self._run, name="numbax-background-compile",
                         daemon=True).start()
        return self

    def _run(self):
        time.sleep(0.001)    # hand the GIL back first: the calling thread returns at once
        try:
            from .backend.numba import cache, lower
            st = cache._resolve()
            if st.path is None or not st.writable:
                self.no_disk_cache = True
                return
            self.lowered = lower(self.closed, self.donate)
            if not hasattr(self.lowered, "source"):
                # split at cross-process collectives: no single module to hand over
                self.in_process = True
                return
            if cache.on_disk(self.lowered, st.path):
                return
            env = dict(os.environ, NUMBAX_CACHE_DIR=st.path)
            # the child must import this very package, whatever its sys.path would be
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"]
                                        if env.get("PYTHONPATH") else "")
            msg = json.dumps({"key": self.lowered.key, "source": self.lowered.source})
            self.spawned = True
            proc = subprocess.run([sys.executable, *CHILD_ARGS], input=msg.encode(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            if proc.returncode:
                tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
                self.error = (f"the compiling process exited with status {proc.returncode}"
                              + (": " + " | ".join(tail) if tail else ""))
        except Exception as e:             # noqa: BLE001 - reported to the caller, once
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.done.set()


def lowered_for(entry):
    """The program the background compile lowered (None if there is none to reuse)."""
    st = entry.tier
    if st is None or st.bc is None or st.bc.error is not None or not st.bc.done.is_set():
        return None
    return st.bc.lowered


def switched(caches, exe):
    """Count a switch to compiled code (`exe` just built)."""
    caches.tier["switches"] += 1
    if getattr(exe, "loaded_from_disk", False):
        caches.tier["loaded_from_disk"] += 1


def wait(caches, timeout=None):
    """Wait for every background compile of these caches; True if all have finished."""
    end = None if timeout is None else time.monotonic() + timeout
    for entry in list(caches.entries.values()):
        st = entry.tier
        if st is None or st.bc is None:
            continue
        left = None if end is None else max(0.0, end - time.monotonic())
        if not st.bc.done.wait(left):
            return False
    return True
