"""`transforms.precompile`: the backend's kernels compiled once per machine, then reused by a
new program (other functions, other shapes) straight from the disk cache -- asserted
through Numba's cache statistics of the kernels, not by timing."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.usefixtures("numba_path")   # the Numba path's machinery (NUMBAX_DIRECT=0)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A program the precompile step never saw: other ops, other shapes, a gradient.
PROGRAM = textwrap.dedent("""
    import json, numpy as np
    import transforms as T, transforms.numpy as tnp
    from transforms.backend.numba import kernels
    from numba.core.dispatcher import Dispatcher

    def loss(w, x):
        h = tnp.tanh(x @ w)
        return tnp.sum(tnp.exp(h) * tnp.log(tnp.abs(h) + 1.0)) + tnp.max(h)

    rng = np.random.default_rng(0)
    w = rng.standard_normal((24, 16)).astype(np.float32)      # large enough for BLAS
    x = rng.standard_normal((40, 24)).astype(np.float32)
    g = T.jit(T.grad(loss))(w, x)
    ref = T.grad(loss)(w, x)                      # eager NumPy interpreter
    np.testing.assert_allclose(g, ref, rtol=2e-4, atol=2e-5)
    used = {k: d for k, d in vars(kernels).items()
            if isinstance(d, Dispatcher) and d.signatures}
    print(json.dumps({
        "used": sorted(used),
        "hits": sum(sum(d.stats.cache_hits.values()) for d in used.values()),
        "misses": sum(sum(d.stats.cache_misses.values()) for d in used.values())}))
""")


def _run(args, cache_dir):
    env = dict(os.environ, NUMBAX_CACHE_DIR=str(cache_dir),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable] + args, env=env, capture_output=True, text=True,
                         timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()


def test_precompiled_kernels_are_loaded_by_a_new_program(tmp_path):
    lines = _run(["-m", "transforms.precompile", "--dtypes", "float32", "--processes", "1"],
                 tmp_path)
    assert "kernel signatures compiled" in lines[-1]
    got = json.loads(_run(["-c", PROGRAM], tmp_path)[-1])
    # the new program calls kernels (gemm, exp, log, tanh; max is an LLVM intrinsic) ...
    assert any(k.startswith("gemm") for k in got["used"])
    assert {"exp_f32", "log_f32", "tanh_f32"} <= set(got["used"])
    # ... and every one of them came from the cache the precompile step wrote
    assert got["misses"] == 0 and got["hits"] >= len(got["used"]) >= 4
    # running it again finds the cache warm
    again = _run(["-m", "transforms.precompile", "--dtypes", "float32", "--processes", "1"],
                 tmp_path)
    assert "already in" in again[-1]


def test_without_precompile_the_program_compiles_its_kernels(tmp_path):
    """The counter-check: the same program on an empty cache misses (so the test above
    really measures the precompile step)."""
    got = json.loads(_run(["-c", PROGRAM], tmp_path)[-1])
    assert got["misses"] >= len(got["used"]) >= 4 and got["hits"] == 0


def test_precompile_rejects_other_dtypes():
    from transforms import precompile
    with pytest.raises(ValueError, match="dtypes must be among"):
        precompile.precompile(["int8"])
