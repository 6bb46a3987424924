"""Caching of compiled functions: in memory (per jaxpr, per generated source) and on disk
(generated modules + Numba's machine-code cache), so a new process starts warm."""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np

import pytest

import transforms as T
import transforms.numpy as tnp

pytestmark = pytest.mark.usefixtures("numba_path")   # the Numba path's machinery (NUMBAX_DIRECT=0)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import json, sys, numpy as np
    import transforms as T, transforms.numpy as tnp
    from transforms.backend.numba import STATS

    def step(w, x):
        h = tnp.tanh(x @ w)
        return w - 0.1 * (x.T @ (1 - h * h)), tnp.sum(h)

    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    x = np.linspace(0, 2, 20, dtype=np.float32).reshape(5, 4)
    f = T.jit(step)
    w2, s = f(w, x)
    exe = f._cache[next(iter(f._cache))].exe
    print(json.dumps({"stats": STATS, "disk": exe.loaded_from_disk,
                      "s": float(s), "w": w2.ravel().tolist()}))
""")


def _run(cache_dir):
    env = dict(os.environ, NUMBAX_CACHE_DIR=str(cache_dir),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_new_process_loads_from_disk_cache(tmp_path):
    first = _run(tmp_path)
    assert first["disk"] is False and first["stats"]["compiled"] == 1
    files = [f for f in os.listdir(tmp_path) if f.startswith("nbx_") and f.endswith(".py")]
    assert len(files) == 1
    src = open(tmp_path / files[0]).read()
    assert "@_njit(" in src and "cache=True" in src
    assert os.path.isdir(tmp_path / "__pycache__")          # Numba's own cache files
    second = _run(tmp_path)
    assert second["disk"] is True                             # machine code loaded, not compiled
    assert second["stats"]["disk_hits"] == 1 and second["stats"]["compiled"] == 0
    assert second["s"] == first["s"] and second["w"] == first["w"]
    # the generated module's Python code too: compiled once, then read back
    assert first["stats"]["sources_compiled"] == 1
    assert second["stats"]["sources_compiled"] == 0
    (code,) = [f for f in os.listdir(tmp_path / "__pycache__") if f.endswith(".code")]
    assert code.startswith(files[0][:-3] + ".")
    # a damaged code file is compiled anew (and rewritten), the machine code still loads
    with open(tmp_path / "__pycache__" / code, "r+b") as f:
        f.truncate(20)
    third = _run(tmp_path)
    assert third["disk"] is True and third["stats"]["sources_compiled"] == 1
    assert third["s"] == first["s"] and third["w"] == first["w"]
    assert _run(tmp_path)["stats"]["sources_compiled"] == 0


def test_unwritable_cache_dir_falls_back_with_warning(tmp_path, monkeypatch):
    from transforms.backend.numba import cache
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(blocker / "sub"))
    monkeypatch.setattr(cache, "_state", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = cache.cache_dir()
    assert os.path.isdir(d) and not d.startswith(str(blocker))
    assert any("not writable" in str(w.message) for w in caught)
    monkeypatch.setattr(cache, "_state", None)


def test_in_memory_caches():
    from transforms.backend import numba as B
    x = np.arange(6, dtype=np.float32)

    def f(x):
        return tnp.exp(x) * 3

    closed = T.make_jaxpr(f)(x)
    before = dict(B.STATS)
    e1 = B.compile(closed)
    e2 = B.compile(closed)                                    # same jaxpr object
    assert e1 is e2
    closed2 = T.make_jaxpr(f)(x)                              # same program, new jaxpr
    e3 = B.compile(closed2)
    assert e3.module is e1.module                             # one module per source
    assert B.STATS["imported"] - before["imported"] <= 1
    np.testing.assert_allclose(B.execute(closed2, [x])[0], np.exp(x) * 3, rtol=1e-6)
    # a jitted function dispatches to its cached executable on every call
    jf = T.jit(f)
    jf(x)
    n = B.STATS["lowered"]
    for _ in range(3):
        jf(x)
    assert B.STATS["lowered"] == n


def test_output_pool_recycles_dropped_buffers():
    from transforms.backend.numba.cache import OutputPool
    pool = OutputPool(max_bytes=1 << 30)
    a = pool.get((256, 256), np.float32)
    addr = a.__array_interface__["data"][0]
    b = pool.get((256, 256), np.float32)                      # `a` alive: a new buffer
    assert b.__array_interface__["data"][0] != addr
    del a
    c = pool.get((256, 256), np.float32)                      # `a` dropped: its buffer again
    assert c.__array_interface__["data"][0] == addr
    c[...] = 1
    assert not np.shares_memory(c, b)


def test_generated_source_carries_the_backend_fingerprint():
    # a changed backend must never reuse machine code cached for the old one: the fingerprint
    # of the backend's sources is part of every generated module (and so of its cache key)
    import numpy as np
    import transforms as T
    from transforms.backend.numba.lowering import BACKEND_FINGERPRINT
    src = T.jit(lambda x: x * 3).lower(np.ones(2)).source
    assert src.splitlines()[0] == f"# backend {BACKEND_FINGERPRINT}"
    assert len(BACKEND_FINGERPRINT) == 16


# ---------------------------------------------------------------------------------------------
# The disk cache's safety and robustness (each scenario in fresh processes)
# ---------------------------------------------------------------------------------------------

# A program using a kernel (tanh) and BLAS; prints the result, where the code came from and
# every CacheWarning. PRELUDE (a format argument) runs first: it simulates the environment.
SCENARIO = textwrap.dedent("""
    import json, os, sys, warnings
    warnings.simplefilter("always")
    caught = []
    warnings.showwarning = lambda m, c, *a, **k: caught.append((c.__name__, str(m)))
    {prelude}
    import numpy as np
    import transforms as T, transforms.numpy as tnp
    from transforms.backend.numba import STATS

    def step(w, x):
        h = tnp.tanh(x @ w)
        return w - 0.1 * (x.T @ (1 - h * h)), tnp.sum(h)

    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    x = np.linspace(0, 2, 4 * {rows}, dtype=np.float32).reshape({rows}, 4)
    f = T.jit(step)
    w2, s = f(w, x)
    exe = f._cache[next(iter(f._cache))].exe
    print(json.dumps({{"stats": STATS, "disk": exe.loaded_from_disk, "s": float(s),
                      "w": w2.ravel().tolist(), "key": exe.lowered.key,
                      "warnings": [c + ": " + m for c, m in caught
                                   if c == "CacheWarning"]}}))
""")


def _expected(rows=5):
    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    x = np.linspace(0, 2, 4 * rows, dtype=np.float32).reshape(rows, 4)
    h = np.tanh(x @ w)
    return float(np.sum(h)), (w - np.float32(0.1) * (x.T @ (1 - h * h))).ravel()


def _scenario(cache_dir, prelude="", rows=5, env=None, check=True):
    e = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    e.pop("NUMBAX_CACHE_DIR", None)
    if cache_dir is not None:
        e["NUMBAX_CACHE_DIR"] = str(cache_dir)
    e.update(env or {})
    code = SCENARIO.format(prelude=textwrap.dedent(prelude),
                           rows=int(rows))
    out = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    import json
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if check:
        s, w = _expected(rows)
        np.testing.assert_allclose(res["s"], s, rtol=1e-5)
        np.testing.assert_allclose(res["w"], w, rtol=1e-5, atol=1e-6)
    return res


def _numba_files(d):
    sub = os.path.join(d, "__pycache__")
    return sorted(os.path.join(sub, n) for n in os.listdir(sub)) if os.path.isdir(sub) else []


def test_cache_directories_are_created_private(tmp_path):
    d = tmp_path / "a" / "numbax"
    _scenario(d)
    assert os.stat(d).st_mode & 0o777 == 0o700
    for sub in ("__pycache__", "src"):
        assert os.stat(d / sub).st_mode & 0o077 == 0, sub
    for n in os.listdir(d):
        if n.endswith(".py"):
            assert os.stat(d / n).st_mode & 0o077 == 0


def _needs_root():
    import pytest
    if not hasattr(os, "getuid") or os.getuid() != 0:
        pytest.skip("needs root (to give a directory to another user)")


def test_planted_module_in_shared_fallback_directory_never_runs(tmp_path):
    # Another local user created $TMPDIR/numbax-<uid> (mode 777) and planted nbx_<hash>.py
    # for a program we are about to run: it must not be executed, nor the directory used.
    _needs_root()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    blocked = tmp_path / "a_file"
    blocked.write_text("not a directory")              # the preferred directory is unusable
    key = _scenario(tmp_path / "probe")["key"]
    shared = tmpdir / f"numbax-{os.getuid()}"
    shared.mkdir()
    marker = tmp_path / "pwned"
    (shared / f"nbx_{key}.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    os.chown(shared, 65534, 65534)
    os.chmod(shared, 0o777)
    res = _scenario(blocked / "sub", env={"TMPDIR": str(tmpdir)})
    assert not marker.exists()
    assert res["disk"] is False
    assert len(res["warnings"]) == 1 and "refusing" in res["warnings"][0] and \
        "owned by uid 65534" in res["warnings"][0]


def test_cache_directory_writable_by_others_is_refused(tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    os.chmod(d, 0o777)
    res = _scenario(d)
    assert len(res["warnings"]) == 1 and "writable by other users" in res["warnings"][0]
    assert os.listdir(d) == []                          # nothing written, nothing read


def test_modified_generated_module_is_not_executed_and_is_rewritten(tmp_path):
    first = _scenario(tmp_path)
    path = tmp_path / f"nbx_{first['key']}.py"
    good = path.read_bytes()
    marker = tmp_path / "pwned"
    path.write_text(f"open({str(marker)!r}, 'w').write('x')\n" + good.decode())
    res = _scenario(tmp_path)
    assert not marker.exists()
    assert path.read_bytes() == good
    assert len(res["warnings"]) == 1 and "does not match" in res["warnings"][0]


def test_truncated_generated_module_is_rewritten(tmp_path):
    first = _scenario(tmp_path)
    path = tmp_path / f"nbx_{first['key']}.py"
    good = path.read_bytes()
    for damaged in (good[: len(good) // 2], b""):
        path.write_bytes(damaged)
        _scenario(tmp_path)
        assert path.read_bytes() == good
    assert _scenario(tmp_path)["disk"] is True


def test_damaged_numba_cache_files_are_discarded_and_rewritten(tmp_path):
    import glob
    _scenario(tmp_path)
    kernel_files = glob.glob(str(tmp_path / "src" / "*" / "*.nb*"))
    assert kernel_files
    for how in ("truncate", "empty"):
        for p in _numba_files(tmp_path) + kernel_files:
            data = open(p, "rb").read()
            with open(p, "wb") as f:
                f.write(data[: len(data) // 2] if how == "truncate" else b"")
        res = _scenario(tmp_path)                          # recompiles, correct result
        assert res["disk"] is False
        assert res["warnings"] and all("damaged" in w for w in res["warnings"])
        res = _scenario(tmp_path)                          # the rewritten entry loads
        assert res["disk"] is True and res["warnings"] == []


# Simulated full disk: every write into the cache directory fails with ENOSPC (os.write for
# the generated module and the probe, open(..., "wb") for Numba's files).
FULL_DISK = """
    import builtins, errno, os
    _d = os.path.realpath(os.environ["NUMBAX_CACHE_DIR"])
    _write, _open = os.write, builtins.open
    _fds = set()
    _os_open = os.open
    def _full():
        return OSError(errno.ENOSPC, "No space left on device")
    def os_open(p, flags, *a, **k):
        fd = _os_open(p, flags, *a, **k)
        if flags & (os.O_WRONLY | os.O_RDWR) and os.path.realpath(p).startswith(_d):
            _fds.add(fd)
        return fd
    def os_write(fd, data):
        if fd in _fds:
            raise _full()
        return _write(fd, data)
    class _Full:
        def __init__(self, f): self.f = f
        def __enter__(self): return self
        def __exit__(self, *a): self.f.close()
        def write(self, b): raise _full()
        def close(self): self.f.close()
    def b_open(p, mode="r", *a, **k):
        f = _open(p, mode, *a, **k)
        if isinstance(p, (str, bytes, os.PathLike)) and any(c in mode for c in "wax") and \\
                os.path.realpath(p).startswith(_d):
            return _Full(f)
        return f
    os.open, os.write, builtins.open = os_open, os_write, b_open
"""


def test_full_disk_compiles_without_writing(tmp_path):
    # the probe already fails: one warning, a correct result, no files left behind
    res = _scenario(tmp_path, prelude=FULL_DISK)
    assert len(res["warnings"]) == 1 and "disk is full" in res["warnings"][0]
    assert [n for n in os.listdir(tmp_path) if n.startswith(".probe")] == []
    assert not any(".tmp" in n for n in os.listdir(tmp_path))


def test_stale_probe_files_are_removed(tmp_path):
    stale = tmp_path / ".probe-123-456"
    stale.write_text("ok")                        # left by a process that hit a full disk
    os.utime(stale, (1000, 1000))
    _scenario(tmp_path)
    assert not stale.exists()


def test_disk_filling_up_after_start_compiles_without_writing(tmp_path):
    # the directory was fine at start (probe passed), then writes fail
    prelude = "from transforms.backend.numba import cache; cache.cache_dir()\n" + \
        textwrap.dedent(FULL_DISK)
    res = _scenario(tmp_path, prelude=prelude)
    assert len(res["warnings"]) == 1 and "disk is full" in res["warnings"][0]
    left = os.listdir(tmp_path)
    assert not any(n.startswith(".probe") or ".tmp" in n or n.endswith(".py") for n in left)


# Simulates a non-root user with an unwritable HOME and a read-only installation: none of
# Numba's own cache locations can be used.
NO_NUMBA_LOCATOR = """
    from numba.core import caching as _c
    def _refuse(self):
        raise PermissionError(13, "Permission denied")
    for _cls in (_c._CacheLocator, _c.InTreeCacheLocator, _c.UserWideCacheLocator):
        _cls.ensure_cache_path = _refuse
"""


def test_jit_works_when_numba_has_no_cache_locator(tmp_path):
    res = _scenario(tmp_path, prelude=NO_NUMBA_LOCATOR)
    assert res["warnings"] == []
    import glob
    assert glob.glob(str(tmp_path / "src" / "kernels-*" / "*.nbi"))   # kernels cached here
    assert _scenario(tmp_path, prelude=NO_NUMBA_LOCATOR)["disk"] is True


def test_read_only_prepopulated_cache_directory_is_used_for_loading(tmp_path):
    _scenario(tmp_path)
    before = {p: os.stat(p).st_mtime_ns for p in _numba_files(tmp_path)}
    # as root, permissions do not stop writes: simulate a read-only file system instead
    ro = FULL_DISK.replace('raise _full()', 'raise OSError(errno.EROFS, "Read-only file system")')
    res = _scenario(tmp_path, prelude=ro)
    assert res["disk"] is True and res["stats"]["compiled"] == 0
    assert len(res["warnings"]) == 1 and "Read-only" in res["warnings"][0]
    assert {p: os.stat(p).st_mtime_ns for p in _numba_files(tmp_path)} == before
    # a program not in the cache still runs (compiled in memory)
    res = _scenario(tmp_path, prelude=ro, rows=7)
    assert res["disk"] is False


def test_two_processes_compiling_the_same_program_leave_one_valid_entry(tmp_path):
    import json
    e = dict(os.environ, NUMBAX_CACHE_DIR=str(tmp_path),
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = SCENARIO.format(prelude="", rows=5)
    procs = [subprocess.Popen([sys.executable, "-c", code], env=e, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    s, w = _expected()
    disk = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        res = json.loads(out.strip().splitlines()[-1])
        np.testing.assert_allclose(res["s"], s, rtol=1e-5)
        assert res["warnings"] == []
        disk.append(res["disk"])
    # the entry lock makes the later process wait and load: the program is compiled once
    assert sorted(disk) == [False, True]
    mods = [n for n in os.listdir(tmp_path) if n.endswith(".py")]
    assert len(mods) == 1 and not [n for n in os.listdir(tmp_path) if ".tmp" in n]
    assert not [p for p in _numba_files(tmp_path) if ".tmp" in p]
    res = _scenario(tmp_path)
    assert res["disk"] is True and res["warnings"] == []


# ---------------------------------------------------------------------------------------------
# Size limit: least recently used entries go, with their Numba files
# ---------------------------------------------------------------------------------------------

def _fake_entry(d, key, used):
    """An entry of ~2.1 kB last used at time `used`."""
    os.makedirs(d / "__pycache__", exist_ok=True)
    files = [d / f"nbx_{key}.py", d / "__pycache__" / f"nbx_{key}._fn-9.py311.nbi",
             d / "__pycache__" / f"nbx_{key}._fn-9.py311.1.nbc"]
    for p, n in zip(files, (1000, 100, 1000)):
        p.write_bytes(b"x" * n)
        os.utime(p, (used, used))
    return files


def test_evict_removes_least_recently_used_entries_and_their_numba_files(tmp_path):
    from transforms.backend.numba import cache
    old = _fake_entry(tmp_path, "aaaa", 1000)
    mid = _fake_entry(tmp_path, "bbbb", 2000)
    new = _fake_entry(tmp_path, "cccc", 3000)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "kernels.x.nbi").write_bytes(b"k" * 5000)   # not an entry: stays
    assert cache.evict(str(tmp_path), max_bytes=2 * 2100 + 10) == 1
    assert not any(p.exists() for p in old)
    assert all(p.exists() for p in mid + new)
    assert (tmp_path / "src" / "kernels.x.nbi").exists()
    # reading an entry's module makes it recently used (its access time; mtime is kept)
    os.utime(mid[0], (4000, 2000))
    assert cache.evict(str(tmp_path), max_bytes=2100 + 10) == 1
    assert all(p.exists() for p in mid) and not any(p.exists() for p in new)


def test_evict_never_removes_an_entry_being_written(tmp_path):
    from transforms.backend.numba import cache
    if cache.fcntl is None:
        import pytest
        pytest.skip("no file locks on this platform")
    busy = _fake_entry(tmp_path, "aaaa", 1000)
    idle = _fake_entry(tmp_path, "bbbb", 2000)
    with cache._EntryLock(str(tmp_path), "aaaa"):          # another writer holds it
        assert cache.evict(str(tmp_path), max_bytes=10) == 1
        assert all(p.exists() for p in busy) and not any(p.exists() for p in idle)
    assert cache.evict(str(tmp_path), max_bytes=10) == 1
    assert not any(p.exists() for p in busy)


def _entry_keys(d):
    return sorted(n[4:-3] for n in os.listdir(d) if n.startswith("nbx_") and n.endswith(".py"))


def _entry_bytes(d):
    return sum(e[0] for e in __import__("transforms.backend.numba.cache",
                                        fromlist=["_scan"])._scan(str(d)).values())


def test_disk_cache_size_limit_evicts_least_recently_used(tmp_path):
    a = _scenario(tmp_path, rows=5)["key"]
    b = _scenario(tmp_path, rows=6)["key"]
    assert _entry_keys(tmp_path) == sorted([a, b])
    limit = int(_entry_bytes(tmp_path) * 1.2)
    assert _scenario(tmp_path, rows=5)["disk"] is True        # a is now the more recent one
    env = {"NUMBAX_CACHE_MAX_BYTES": str(limit)}
    c = _scenario(tmp_path, rows=7, env=env)["key"]
    assert _entry_keys(tmp_path) == sorted([a, c])
    assert not [p for p in _numba_files(tmp_path) if b in p]  # b's machine code went too
    assert _entry_bytes(tmp_path) <= limit
    # a tiny limit keeps only the entry just written
    d = _scenario(tmp_path, rows=8, env={"NUMBAX_CACHE_MAX_BYTES": "1"})["key"]
    assert _entry_keys(tmp_path) == [d]
    assert _scenario(tmp_path, rows=8)["disk"] is True


# ---------------------------------------------------------------------------------------------
# Parallel loops: fork() and concurrent callers (lowering.parallel_allowed / parallel_guard)
# ---------------------------------------------------------------------------------------------

PARALLEL = textwrap.dedent("""
    import json, os, threading, numpy as np
    import transforms as T, transforms.numpy as tnp
    f = T.jit(lambda x: tnp.tanh(x) * 2 + 1)
    x = np.linspace(-2, 2, 1 << 21, dtype=np.float32)          # above NUMBAX_PARALLEL_MIN
    ref = np.tanh(x) * 2 + 1
    y = f(x)
    par = "_prange(" in f.lower(x).source
    ok = bool(np.allclose(y, ref, atol=1e-6))
    if {mode!r} == "fork":
        pid = os.fork()
        if pid == 0:                       # a worker process: uses compiled code again
            g = T.jit(lambda x: tnp.exp(x) * 3)
            good = np.allclose(f(x), ref, atol=1e-6) and np.allclose(g(x), np.exp(x) * 3,
                                                                     rtol=1e-6)
            os._exit(0 if good else 3)
        _, status = os.waitpid(pid, 0)
        ok = ok and os.waitstatus_to_exitcode(status) == 0
    else:
        res = []
        def work():
            for _ in range(10):
                res.append(bool(np.allclose(f(x), ref, atol=1e-6)))
        ts = [threading.Thread(target=work) for _ in range(4)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        ok = ok and len(res) == 40 and all(res)
    print(json.dumps({{"ok": ok, "parallel": par}}))
""")


def _parallel_run(tmp_path, mode, **env):
    import json
    e = dict(os.environ, NUMBAX_CACHE_DIR=str(tmp_path),
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k in ("NUMBAX_PARALLEL", "NUMBA_THREADING_LAYER", "NUMBAX_PARALLEL_MIN"):
        e.pop(k, None)
    e.update(env)
    out = subprocess.run([sys.executable, "-c", PARALLEL.format(mode=mode)], env=e,
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_fork_after_a_large_jitted_call_works(tmp_path):
    # by default loops are parallel only on a fork-safe layer (TBB); GNU OpenMP killed the
    # child ("fork() called from a process already using GNU OpenMP")
    assert _parallel_run(tmp_path, "fork")["ok"]


def test_fork_after_an_opt_in_parallel_call_on_workqueue_works(tmp_path):
    res = _parallel_run(tmp_path, "fork", NUMBAX_PARALLEL="1", NUMBA_THREADING_LAYER="workqueue")
    assert res["parallel"] and res["ok"]


def test_threads_calling_a_parallel_function_concurrently_do_not_abort(tmp_path):
    # workqueue aborts the process when two threads enter parallel code at once: our calls of
    # parallel code are serialised on that layer
    res = _parallel_run(tmp_path, "threads", NUMBAX_PARALLEL="1",
                        NUMBA_THREADING_LAYER="workqueue", NUMBA_NUM_THREADS="4")
    assert res["parallel"] and res["ok"]
    res = _parallel_run(tmp_path, "threads", NUMBA_THREADING_LAYER="workqueue",
                        NUMBA_NUM_THREADS="4")
    assert res["ok"] and not res["parallel"]        # auto: no parallel loops on workqueue


def test_numba_cache_files_writable_or_owned_by_others_are_refused(tmp_path):
    first = _scenario(tmp_path)
    os.chmod(tmp_path / "__pycache__", 0o777)
    res = _scenario(tmp_path)
    assert res["disk"] is False
    assert len(res["warnings"]) == 1 and "writable by other users" in res["warnings"][0]
    os.chmod(tmp_path / "__pycache__", 0o700)
    if hasattr(os, "getuid") and os.getuid() == 0:        # a pickle planted by another user
        for p in _numba_files(tmp_path):
            if first["key"] in p and p.endswith(".nbi"):
                os.chown(p, 65534, 65534)
        res = _scenario(tmp_path)
        assert res["disk"] is False
        assert len(res["warnings"]) == 1 and "owned by uid 65534" in res["warnings"][0]
        res = _scenario(tmp_path)                           # replaced by a trusted entry
        assert res["disk"] is True and res["warnings"] == []
