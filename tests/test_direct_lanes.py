"""The direct compiler's two LLVM lanes (`direct/lanes.py`): two threads of this process share
a program's modules, each calling LLVM without llvmlite's process-wide lock (in a context and
with a target machine of its own); what they make is the same machine code, loaded in
order."""
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from transforms.backend.numba.direct import codegen, engine, lanes

_IR = """
define void @"lanes_test_axpy"(float* %x, float* %y, i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%i1, %loop]
  %px = getelementptr float, float* %x, i64 %i
  %py = getelementptr float, float* %y, i64 %i
  %a = load float, float* %px
  %b = load float, float* %py
  %m = fmul float %a, 2.5
  %s = fadd float %m, %b
  store float %s, float* %py
  %i1 = add i64 %i, 1
  %c = icmp slt i64 %i1, %n
  br i1 %c, label %loop, label %done
done:
  ret void
}
"""


def _module(name="lanes_test_axpy"):
    triple, layout = engine.triple_and_layout()
    return (f'target triple = "{triple}"\ntarget datalayout = "{layout}"\n' +
            _IR.replace("lanes_test_axpy", name))


def test_lanes_emit_the_same_object_bytes_as_the_calling_thread():
    jobs = [lanes.submit(_module()) for _ in range(4)]
    objs = [lanes.result(j) for j in jobs]
    assert all(o == engine.optimise_and_emit(_module()) for o in objs)


def test_lanes_do_not_wait_for_llvmlites_lock():
    """While another thread holds llvmlite's lock (Numba compiling, machine code being
    loaded) the lanes go on: their calls are to their own context and target machine."""
    from llvmlite.binding import ffi
    if lanes.lane_count() < 2:
        pytest.skip("one lane (one core or NUMBAX_COMPILE_WORKERS=0)")
    assert type(ffi.lib._lock).__name__ == "LanesPass"
    with ffi.lib._lock:
        jobs = [lanes.submit(_module(f"lanes_test_unlocked_{k}")) for k in range(6)]
        assert all(j.done.wait(timeout=120) for j in jobs), "a lane waited for the lock"
    assert {j.lane for j in jobs} <= {0, 1}
    assert all(lanes.result(j) == engine.optimise_and_emit(_module(f"lanes_test_unlocked_{k}"))
               for k, j in enumerate(jobs))
    # a thread that is not a lane still takes the lock
    held = threading.Event()
    release = threading.Event()

    def hold():
        with ffi.lib._lock:
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(30)
    got = ffi.lib._lock._lock.acquire(blocking=False)
    release.set()
    t.join()
    assert not got


def test_the_switch_interval_is_short_while_jobs_are_outstanding():
    """While jobs are outstanding the GIL is handed to a lane 0.5 ms after it asks, not 5 ms
    (a lane needs it after each call into LLVM); the interval in force before comes back
    once none are."""
    before = sys.getswitchinterval()
    busy = lanes._state["busy"] if lanes.lane_count() else []
    for b in busy:                 # the lanes cannot start the job
        b.acquire()
    try:
        job = lanes.submit(_module("lanes_test_switch"))
        assert sys.getswitchinterval() == pytest.approx(min(before, lanes._SWITCH))
    finally:
        for b in busy:
            b.release()
    assert lanes.result(job)
    for _ in range(1000):          # (restored by the lane, after `result` may return)
        if not lanes._outstanding:
            break
        threading.Event().wait(0.01)
    assert sys.getswitchinterval() == pytest.approx(before)


def test_an_llvmlite_lock_laid_out_otherwise_leaves_one_lane_that_takes_it():
    """If llvmlite's lock is not the class `lanes` knows, it is left alone: one lane, whose
    calls take the lock like any other thread's, and the same object bytes."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import threading
        from llvmlite.binding import ffi
        from test_direct_lanes import _module
        from transforms.backend.numba.direct import engine, lanes

        class OtherLock:                       # an llvmlite of another layout
            def __init__(self):
                self.inner = threading.RLock()
            def __enter__(self):
                self.inner.acquire()
            def __exit__(self, *exc):
                self.inner.release()

        lock = OtherLock()
        ffi.lib._lock = lock
        for w in ffi.lib._fntab.values():
            w._lock = lock
        assert lanes.lane_count() == 1
        assert type(ffi.lib._lock) is OtherLock
        jobs = [lanes.submit(_module(f"other_lock_{{k}}")) for k in range(3)]
        assert all(lanes.result(j) == engine.optimise_and_emit(_module(f"other_lock_{{k}}"))
                   for k, j in enumerate(jobs))
        assert {{j.lane for j in jobs}} == {{0}}
        print("ok")
    """)
    p = subprocess.run([sys.executable, "-c", script], env=dict(os.environ),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-3000:]


def test_a_job_that_llvm_rejects_raises_with_its_message():
    job = lanes.submit("define void @broken( {")
    with pytest.raises(RuntimeError, match="LLVM failed"):
        lanes.result(job)


def test_jobs_compile_and_load_in_this_process():
    jobs = [lanes.submit(_module(f"lanes_test_axpy_{k}")) for k in range(4)]
    objs = [lanes.result(j) for j in jobs]
    assert all(j.lane in (0, 1) for j in jobs)
    import ctypes
    addr = engine.load_object(objs[2], ["lanes_test_axpy_2"])["lanes_test_axpy_2"]
    f = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(addr)
    x = np.arange(5, dtype=np.float32)
    y = np.ones(5, dtype=np.float32)
    f(x.ctypes.data, y.ctypes.data, 5)
    np.testing.assert_array_equal(y, 2.5 * np.arange(5, dtype=np.float32) + 1)


_PROGRAM = """
import json, os, sys
import numpy as np
import transforms as T
from transforms.backend.numba.direct import lanes, STATS

def step(w, x):
    h = T.numpy.tanh(x @ w["a"] + w["b"])
    return T.numpy.sum(T.nn.softmax(h @ w["c"], axis=-1) ** 2)

rng = np.random.default_rng(0)
w = {"a": rng.standard_normal((6, 8)).astype(np.float32),
     "b": rng.standard_normal(8).astype(np.float32),
     "c": rng.standard_normal((8, 3)).astype(np.float32)}
x = rng.standard_normal((5, 6)).astype(np.float32)
g = T.jit(T.grad(step))(w, x)
v = T.jit(T.vmap(lambda r: step(w, r[None])))(x)
n = T.jit(lambda k: T.numpy.sum(T.random.normal(k, (40, 40)), axis=0))(T.random.key(1))
{after}
print(json.dumps({"g": {k: np.asarray(a).tolist() for k, a in g.items()},
                  "v": np.asarray(v).tolist(), "n": np.asarray(n).tolist(),
                  "lanes": lanes.STATS, "direct": STATS}))
"""


def _run(tmp_path, workers, cache, after="", **env_vars):
    env = dict(os.environ, NUMBAX_COMPILE_WORKERS=str(workers), NUMBAX_CACHE_DIR=str(cache),
               NUMBAX_DIRECT="strict", **env_vars)
    p = subprocess.run([sys.executable, "-c", _PROGRAM.replace("{after}", after)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def _objects(cache):
    d = cache / "__pycache__"
    return sorted(n for n in os.listdir(d) if n.endswith(".dobj"))


def test_a_program_compiled_on_two_lanes_equals_one_compiled_on_one(tmp_path):
    one = _run(tmp_path, 0, tmp_path / "one")
    two = _run(tmp_path, 1, tmp_path / "two")
    assert one["lanes"]["lanes"] == 1 and one["lanes"]["lane1"] == 0
    assert one["lanes"]["lane0"] > 0
    assert two["lanes"]["lanes"] == 2 and two["lanes"]["lane0"] + two["lanes"]["lane1"] > 0
    assert one["g"] == two["g"] and one["v"] == two["v"]            # bit for bit
    assert _objects(tmp_path / "one") == _objects(tmp_path / "two")
    for name in _objects(tmp_path / "one"):                          # the same machine code
        a = (tmp_path / "one" / "__pycache__" / name).read_bytes()
        b = (tmp_path / "two" / "__pycache__" / name).read_bytes()
        assert a == b, name
    warm = _run(tmp_path, 1, tmp_path / "two")                       # loaded, not compiled
    assert warm["g"] == two["g"] and warm["direct"]["compiled"] == 0
    assert warm["lanes"]["lane0"] == warm["lanes"]["lane1"] == 0


def test_llvm_options_change_machine_code_not_results(tmp_path, monkeypatch):
    # the default options (no loop strength reduction, full unrolling up to size 100) make
    # other machine code than LLVM's own defaults, with the same results to the bit
    assert codegen.DEFAULT_LLVM_OPTIONS == ("-disable-lsr", "-unroll-threshold=100")
    monkeypatch.setenv("NUMBAX_LLVM_OPTIONS", " -disable-lsr  ")
    assert codegen.llvm_options() == ("-disable-lsr",)
    monkeypatch.setenv("NUMBAX_LLVM_OPTIONS", "")
    assert codegen.llvm_options() == ()
    monkeypatch.delenv("NUMBAX_LLVM_OPTIONS")
    assert codegen.llvm_options() == codegen.DEFAULT_LLVM_OPTIONS
    ours = _run(tmp_path, 1, tmp_path / "ours")
    llvms = _run(tmp_path, 1, tmp_path / "llvm", NUMBAX_LLVM_OPTIONS="")
    for k in ("g", "v", "n"):
        assert ours[k] == llvms[k], k
    names = _objects(tmp_path / "ours")
    assert names == _objects(tmp_path / "llvm")
    assert any((tmp_path / "ours" / "__pycache__" / n).read_bytes() !=
               (tmp_path / "llvm" / "__pycache__" / n).read_bytes() for n in names)


def test_a_forked_child_finishes_its_parents_pending_compiles(tmp_path):
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    script = textwrap.dedent(f"""
        import os, sys
        import numpy as np
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_direct_lanes import _module
        from transforms.backend.numba.direct import engine, lanes
        jobs = [lanes.submit(_module(f"fork_axpy_{{k}}")) for k in range(6)]
        pid = os.fork()
        if pid == 0:
            import faulthandler
            faulthandler.dump_traceback_later(120, exit=True)     # never left hanging
            try:
                objs = [lanes.result(j) for j in jobs]
                ok = all(o == engine.optimise_and_emit(_module(f"fork_axpy_{{k}}"))
                         for k, o in enumerate(objs))
            except BaseException:
                ok = False
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0, status
        assert all(lanes.result(j) for j in jobs)
        print("ok")
    """)
    env = dict(os.environ, NUMBAX_COMPILE_WORKERS="1")
    p = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-3000:]
