"""Helpers compiled as modules of their own (backend/numba/helpers.py), reused across programs
and processes through the disk cache, and compiled in part by a worker process
(backend/numba/workers.py). Everything is asserted through the cache's statistics and files,
never by timing."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms.backend.numba import STATS, clear_memory_cache, split, workers

pytestmark = pytest.mark.usefixtures("numba_path")   # the Numba path's machinery (NUMBAX_DIRECT=0)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# two leaves of different sizes, updated by the same loop nest: one outlined helper `_h0`
PROGRAMS = textwrap.dedent("""
    import transforms as T, transforms.numpy as tnp

    def first(a, b):
        return tnp.tanh(a) * 2.0 + 1.0, tnp.tanh(b) * 2.0 + 1.0

    def second(a, b, c):          # other inputs and names: the same helper
        return tnp.tanh(a) * 2.0 + 1.0, tnp.tanh(b) * 2.0 + 1.0, c * 3.0
""")
exec(PROGRAMS)


def _args():
    rng = np.random.default_rng(0)
    return (rng.standard_normal(50).astype(np.float32),
            rng.standard_normal(30).astype(np.float32),
            rng.standard_normal(7).astype(np.float32))


def _fresh(monkeypatch, d):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(d))
    T.clear_caches()
    clear_memory_cache()


def _stats():
    return {k: STATS[k] for k in ("compiled", "disk_hits", "helper_compiled",
                                  "helper_disk_hits", "helper_memory_hits",
                                  "helpers_by_worker")}


def _delta(before):
    return {k: STATS[k] - v for k, v in before.items()}


def test_outlined_helper_is_one_module_shared_by_two_programs(tmp_path, monkeypatch):
    _fresh(monkeypatch, tmp_path)
    a, b, c = _args()
    (h1,) = _helpers(first, a, b)
    (h2,) = _helpers(second, a, b, c)
    assert h1.key == h2.key and h1.name == "_h0"
    before = _stats()
    got = T.jit(first)(a, b)
    assert _delta(before)["helper_compiled"] == 1 and _delta(before)["compiled"] == 1
    assert os.path.isfile(tmp_path / f"nbx_{h1.key}.py")
    np.testing.assert_allclose(got[0], np.tanh(a) * 2 + 1, rtol=1e-5)
    before = _stats()
    got = T.jit(second)(a, b, c)
    d = _delta(before)
    # the second program compiles its main function only: the helper is the first one's
    assert d["compiled"] == 1 and d["helper_compiled"] == 0 and d["helper_memory_hits"] >= 1
    np.testing.assert_allclose(got[1], np.tanh(b) * 2 + 1, rtol=1e-5)
    np.testing.assert_allclose(got[2], c * 3, rtol=1e-6)


def _helpers(fn, *args):
    from transforms.backend.numba import lower
    return lower(T.jit(fn).trace(*args).jaxpr).helpers


CHILD = PROGRAMS + textwrap.dedent("""
    import json, sys, numpy as np
    from transforms.backend.numba import STATS
    rng = np.random.default_rng(0)
    a = rng.standard_normal(50).astype(np.float32)
    b = rng.standard_normal(30).astype(np.float32)
    c = rng.standard_normal(7).astype(np.float32)
    out = T.jit(second)(a, b, c) if sys.argv[1] == "second" else T.jit(first)(a, b)
    print(json.dumps({"stats": STATS, "out": [o.tolist() for o in out]}))
""")


def _child(d, which, **env):
    e = dict(os.environ, NUMBAX_CACHE_DIR=str(d), **env,
             PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", CHILD, which], env=e, capture_output=True,
                         text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_fresh_processes_load_helpers_from_the_disk_cache(tmp_path):
    cold = _child(tmp_path, "first")
    assert cold["stats"]["compiled"] == 1 and cold["stats"]["helper_compiled"] == 1
    # a warm process loads the main function and its helper without compiling anything
    warm = _child(tmp_path, "first")
    s = warm["stats"]
    assert s["compiled"] == 0 and s["disk_hits"] == 1
    assert s["helper_compiled"] == 0 and s["helper_disk_hits"] == 1
    assert warm["out"] == cold["out"]
    # another program in a new process: its main function compiles, the helper loads
    other = _child(tmp_path, "second")
    s = other["stats"]
    assert s["compiled"] == 1 and s["helper_compiled"] == 0 and s["helper_disk_hits"] == 1
    assert other["out"][:2] == cold["out"]


# a long function split into pieces (each with a signature): the parallel path's workload
def _loss(w, x, y):
    h = tnp.tanh(x @ w)
    m = tnp.max(h, axis=1, keepdims=True)
    lse = tnp.log(tnp.sum(tnp.exp(h - m), axis=1, keepdims=True)) + m
    return -tnp.mean(tnp.sum((h - lse) * y, axis=1)) + 0.1 * tnp.sum(w * w)


def _loss_args():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((12, 5)).astype(np.float32),
            rng.standard_normal((7, 12)).astype(np.float32),
            np.eye(5, dtype=np.float32)[rng.integers(0, 5, 7)])


def _split_everything(monkeypatch):
    monkeypatch.setenv("NUMBAX_SPLIT_LINES", "1")
    monkeypatch.setattr(split, "MIN_PIECE", 1)


def test_split_pieces_get_signatures_and_modules(tmp_path, monkeypatch):
    _fresh(monkeypatch, tmp_path)
    _split_everything(monkeypatch)
    hs = _helpers(T.value_and_grad(_loss), *_loss_args())
    pieces = [h for h in hs if h.name.startswith("_p")]
    assert len(pieces) >= 3
    for h in pieces:        # a written signature: compiled on its own, before the main one
        deco = next(ln for ln in h.source.splitlines() if ln.startswith("@_njit("))
        assert deco.startswith("@_njit(_t.")


def _files(d):
    """name -> bytes of the generated modules, and the names of Numba's files."""
    mods = {n: open(os.path.join(d, n), "rb").read() for n in os.listdir(d)
            if n.startswith("nbx_") and n.endswith(".py")}
    return mods, sorted(os.listdir(os.path.join(d, "__pycache__")))


def test_parallel_compile_matches_serial(tmp_path, monkeypatch):
    _split_everything(monkeypatch)
    args = _loss_args()
    f = T.value_and_grad(_loss)
    # serial
    _fresh(monkeypatch, tmp_path / "serial")
    monkeypatch.setenv("NUMBAX_COMPILE_WORKERS", "0")
    before = _stats()
    v_serial, g_serial = T.jit(f)(*args)
    assert _delta(before)["helpers_by_worker"] == 0
    # with the worker, made to take work however small
    _fresh(monkeypatch, tmp_path / "parallel")
    monkeypatch.setenv("NUMBAX_COMPILE_WORKERS", "1")
    monkeypatch.setattr(workers, "STARTUP_LINES", 0)
    monkeypatch.setattr(workers, "MIN_SAVING_LINES", -10 ** 6)
    monkeypatch.setattr(workers, "_disabled", False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(workers, "STEAL", False)       # the worker's share stays its own
    before = _stats()
    v_par, g_par = T.jit(f)(*args)
    d = _delta(before)
    assert d["helpers_by_worker"] >= 1
    # what the worker compiled, this process loaded from the disk
    assert d["helper_disk_hits"] >= d["helpers_by_worker"]
    np.testing.assert_array_equal(v_par, v_serial)
    np.testing.assert_array_equal(g_par, g_serial)
    assert _files(tmp_path / "serial") == _files(tmp_path / "parallel")
    v_e, g_e = f(*args)
    np.testing.assert_allclose(v_par, v_e, rtol=1e-5)
    np.testing.assert_allclose(g_par, g_e, rtol=1e-4, atol=1e-6)
    # by default this process takes over what the worker has not started: same results
    _fresh(monkeypatch, tmp_path / "stealing")
    monkeypatch.setattr(workers, "STEAL", True)
    v_st, g_st = T.jit(f)(*args)
    np.testing.assert_array_equal(v_st, v_serial)
    np.testing.assert_array_equal(g_st, g_serial)
    assert _files(tmp_path / "stealing") == _files(tmp_path / "serial")


def test_worker_that_cannot_start_falls_back_to_serial(tmp_path, monkeypatch):
    _split_everything(monkeypatch)
    _fresh(monkeypatch, tmp_path)
    monkeypatch.setattr(workers, "STARTUP_LINES", 0)
    monkeypatch.setattr(workers, "MIN_SAVING_LINES", -10 ** 6)
    monkeypatch.setattr(workers, "_disabled", False)
    monkeypatch.setattr(workers, "_worker", None)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)

    def no_process():
        raise OSError("cannot start a process here")
    monkeypatch.setattr(workers, "_start", no_process)
    monkeypatch.setenv("NUMBAX_COMPILE_WORKERS", "1")
    before = _stats()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # silently
        v, g = T.jit(T.value_and_grad(_loss))(*_loss_args())
    d = _delta(before)
    assert d["helpers_by_worker"] == 0 and d["helper_compiled"] >= 3
    assert workers._disabled                  # no second attempt in this process
    v_e, _ = T.value_and_grad(_loss)(*_loss_args())
    np.testing.assert_allclose(v, v_e, rtol=1e-5)


def test_worker_switch_and_sharing_rule(monkeypatch):
    monkeypatch.setenv("NUMBAX_COMPILE_WORKERS", "0")
    assert not workers.workers_enabled()
    monkeypatch.setenv("NUMBAX_COMPILE_WORKERS", "several")
    with pytest.raises(ValueError, match="NUMBAX_COMPILE_WORKERS"):
        workers.workers_enabled()
    monkeypatch.setattr(workers, "_disabled", False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setenv("NUMBAX_COMPILE_WORKERS", "1")
    assert workers.workers_enabled()
    monkeypatch.setenv("NUMBAX_COMPILE_WORKERS", "auto")       # by the load: busy -> serial
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    assert not workers.workers_enabled()
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert workers.workers_enabled()
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert not workers.workers_enabled()

    class H:
        def __init__(self, lines):
            self.lines = lines
    small = [H(10), H(12)]
    ours, theirs = workers.partition(small, workers.STARTUP_LINES)
    assert theirs == [] and len(ours) == 2           # not worth a new process
    big = [H(170), H(170), H(40), H(40), H(35), H(30)]
    ours, theirs = workers.partition(big, workers.STARTUP_LINES)
    assert theirs and len(ours) + len(theirs) == len(big)
    load = sum(h.lines + workers.PER_FUNCTION_LINES for h in ours)
    assert load < sum(h.lines + workers.PER_FUNCTION_LINES for h in big)


def test_no_writable_cache_directory_compiles_helpers_in_memory(tmp_path, monkeypatch):
    from transforms.backend.numba import cache
    _split_everything(monkeypatch)
    _fresh(monkeypatch, tmp_path)
    monkeypatch.setattr(cache, "_resolve", lambda: cache._State("x", None, False))
    monkeypatch.setenv("NUMBAX_COMPILE_WORKERS", "1")
    monkeypatch.setattr(workers, "STARTUP_LINES", 0)
    monkeypatch.setattr(workers, "MIN_SAVING_LINES", -10 ** 6)
    before = _stats()
    v, _ = T.jit(T.value_and_grad(_loss))(*_loss_args())
    assert _delta(before)["helpers_by_worker"] == 0
    assert not [n for n in os.listdir(tmp_path) if n.startswith("nbx_")]
    v_e, _ = T.value_and_grad(_loss)(*_loss_args())
    np.testing.assert_allclose(v, v_e, rtol=1e-5)


SPLIT_FN = """def _fn(a, _wf32, _z):
    _v1 = _wf32[0:12].reshape((3, 4))
    _f2 = _v1.reshape(_v1.size)
    for i in range(12):
        _f2[i] = a[i] * 2.0
    s_ = 0.0
    for i in range(12):
        s_ = s_ + _f2[i]
    q = _f2[0] * s_
    for i in range(3):
        _f2[i] = q
"""


def test_split_writes_signatures_only_for_known_types(monkeypatch):
    monkeypatch.setenv("NUMBAX_SPLIT_LINES", "1")
    monkeypatch.setattr(split, "MIN_PIECE", 1)
    arr = "_t.Array(_t.float32, 1, 'C')"
    known = {"a": arr, "_wf32": arr, "_z": "_t.int64", "s_": "_t.float32"}
    pieces, text = split.split("import numpy as _np\n", SPLIT_FN, "cache=False", known)
    # the first loop reads a view built by a slice and two reshapes: typed, signed
    assert pieces[0].startswith(f"@_njit(_t.none({arr}, {arr}), cache=False)")
    # the second updates an IR scalar: cast to its dtype at the call and on return
    assert pieces[1].startswith(f"@_njit(_t.Tuple((_t.float32,))({arr}, _t.float32)")
    assert "return _np.float32(s_)," in pieces[1]
    assert "s_, = _p1(_f2, _np.float32(s_))" in text
    # the third reads `q`, whose type only Numba knows: typed from the call
    assert pieces[2].startswith("@_njit(cache=False)")


def test_helper_key_carries_the_backend_fingerprint(monkeypatch):
    """A helper's cached machine code holds the kernels it calls (linked in), so its cache key
    must change with the backend, as the main module's does: the same helper text under
    another backend fingerprint is another module."""
    from transforms.backend.numba import lowering
    a, b, _ = _args()
    (h,) = _helpers(first, a, b)
    real = lowering.BACKEND_FINGERPRINT
    assert f"# backend {real}" in h.source
    monkeypatch.setattr(lowering, "BACKEND_FINGERPRINT", "0" * 16)
    (h2,) = _helpers(first, a, b)
    assert h2.key != h.key
    assert h2.source.replace("0" * 16, real) == h.source
