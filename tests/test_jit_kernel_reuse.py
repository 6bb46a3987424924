"""Compiled pieces reused across programs: a backend kernel is compiled once per argument
*type*, not once per constant it is called with, so a second program (other shapes) takes
it from the disk cache instead of compiling it again."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np

import pytest

import transforms as T
import transforms.numpy as tnp

pytestmark = pytest.mark.usefixtures("numba_path")   # the Numba path's machinery (NUMBAX_DIRECT=0)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent("""
    import json, sys, numpy as np
    import transforms as T, transforms.numpy as tnp
    from transforms.backend.numba import kernels
    m, k, n = (int(v) for v in sys.argv[1:4])
    a = np.arange(m * k, dtype=np.float32).reshape(m, k) / 7
    b = np.arange(k * n, dtype=np.float32).reshape(k, n) / 5
    out = T.jit(lambda a, b: tnp.tanh(a @ b))(a, b)
    np.testing.assert_allclose(out, np.tanh(a @ b), rtol=1e-5, atol=1e-6)
    from numba.core.dispatcher import Dispatcher
    disps = {k: v for k, v in vars(kernels).items() if isinstance(v, Dispatcher)}
    used = {k: d for k, d in disps.items() if d.signatures}
    print(json.dumps({
        "hits": sum(sum(d.stats.cache_hits.values()) for d in used.values()),
        "misses": sum(sum(d.stats.cache_misses.values()) for d in used.values()),
        "gemm": sorted(k for k in used if k.startswith("gemm")),
        "sigs": sorted(str(s) for d in used.values() for s in d.signatures)}))
""")


def _child(cache_dir, m, k, n):
    env = dict(os.environ, NUMBAX_CACHE_DIR=str(cache_dir),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", CHILD, str(m), str(k), str(n)], env=env,
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_gemm_kernel_compiled_once_is_reused_by_another_program_from_disk(tmp_path):
    first = _child(tmp_path, 40, 24, 16)
    assert first["gemm"]                                         # a BLAS kernel was used
    assert first["misses"] >= 1 and first["hits"] == 0          # compiled (cold cache)
    assert all("Literal" not in s for s in first["sigs"])
    second = _child(tmp_path, 32, 40, 20)                          # other shapes, new program
    assert second["gemm"] and set(second["gemm"]) <= set(first["gemm"])
    assert second["misses"] == 0 and second["hits"] >= 1          # all from the disk
    assert set(second["sigs"]) <= set(first["sigs"])


def test_kernels_are_typed_without_literal_constants():
    from transforms.backend.numba import kernels

    def two_products(x, w, v):
        return (x @ w) @ v, tnp.transpose(x) @ x     # several shapes and transposes

    x = np.linspace(-1, 1, 40 * 24).reshape(40, 24)     # large enough for BLAS
    w = np.linspace(0, 1, 24 * 16).reshape(24, 16)
    v = np.linspace(1, 2, 16 * 32).reshape(16, 32)
    got = T.jit(two_products)(x, w, v)
    np.testing.assert_allclose(got[0], (x @ w) @ v, rtol=1e-12)
    np.testing.assert_allclose(got[1], x.T @ x, rtol=1e-12)
    from numba.core.dispatcher import Dispatcher
    gemms = [v for k, v in vars(kernels).items() if k.startswith("gemm") and
             isinstance(v, Dispatcher)]
    f64 = [s for d in gemms for s in d.signatures if "float64" in str(s)]
    # three products, two shapes of transposes: one compiled version per kernel used
    assert 1 <= len(f64) <= len(gemms) and all("Literal" not in str(s) for s in f64)
