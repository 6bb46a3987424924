"""Caching of compiled functions: in memory (per jaxpr, per generated source) and on disk
(generated modules + Numba's machine-code cache), so a new process starts warm."""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np

import transforms as T
import transforms.numpy as tnp

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


def test_unwritable_cache_dir_falls_back_with_warning(tmp_path, monkeypatch):
    from transforms.backend.numba import cache
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(blocker / "sub"))
    monkeypatch.setattr(cache, "_dir", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = cache.cache_dir()
    assert os.path.isdir(d) and not d.startswith(str(blocker))
    assert any("not writable" in str(w.message) for w in caught)
    monkeypatch.setattr(cache, "_dir", None)


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
