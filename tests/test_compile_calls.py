"""Generated main functions call their helper modules through a symbol (backend/numba/calls.py),
so the helpers' code is not linked into, re-optimised with and re-emitted with every caller.
Asserted on the generated source and the main function's LLVM IR, never by timing."""
import re

import numba
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms.backend.numba import Executable, calls, clear_memory_cache, lower

pytestmark = pytest.mark.usefixtures("numba_path")   # the Numba path's machinery (NUMBAX_DIRECT=0)


def _two_leaves(a, b):         # the same loop nest over two leaves: one outlined helper `_h0`
    return tnp.tanh(a) * 2.0 + 1.0, tnp.tanh(b) * 2.0 + 1.0


def _args():
    rng = np.random.default_rng(0)
    return (rng.standard_normal(50).astype(np.float32),
            rng.standard_normal(30).astype(np.float32))


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))
    T.clear_caches()
    clear_memory_cache()
    yield tmp_path
    T.clear_caches()
    clear_memory_cache()


def _main_body(source):
    return source.split("def _fn(", 1)[1].split("\ndef make_runner", 1)[0]


def test_main_function_calls_helpers_by_symbol_not_linked(fresh):
    a, b = _args()
    low = lower(T.jit(_two_leaves).trace(a, b).jaxpr)
    (h,) = low.helpers
    body = _main_body(low.source)
    # every call of the helper goes through `_hc`, none is a plain (linked) call
    assert body.count("_hc(_r_h0, ") == 2 and "\n_r_h0 = _href(_h0)\n" in low.source
    assert not re.search(r"(?<![\w.(])_h0\(", body)
    exe = Executable(low)
    got = exe(a, b)
    np.testing.assert_allclose(got[0], np.tanh(a) * 2 + 1, rtol=1e-5)
    np.testing.assert_allclose(got[1], np.tanh(b) * 2 + 1, rtol=1e-5)
    fn = exe.module._fn
    ir = fn.inspect_llvm(fn.signatures[0])
    sym = calls.symbol_of(h.key, "_h0")
    # the helper is a declaration resolved by name, its body is not in the caller's module
    assert re.search(rf"declare .*@\"?{sym}\"?\(", ir)
    assert not re.search(rf"define .*@\"?{sym}", ir)
    assert not [ln for ln in ir.splitlines() if ln.startswith("define") and "_h0" in ln]


def test_disabled_keeps_linked_calls(fresh, monkeypatch):
    monkeypatch.setattr(calls, "ENABLED", False)
    a, b = _args()
    low = lower(T.jit(_two_leaves).trace(a, b).jaxpr)
    body = _main_body(low.source)
    assert "_hc(" not in body and body.count("_h0(") == 2
    got = Executable(low)(a, b)
    np.testing.assert_allclose(got[1], np.tanh(b) * 2 + 1, rtol=1e-5)


def test_call_needs_a_symbol_ref_and_falls_back_for_other_types():
    @numba.njit("float64(float64)")
    def plain(x):
        return x + 1.0

    @numba.njit
    def uses_dispatcher(x):
        return calls.call(plain, x)

    with pytest.raises(numba.core.errors.TypingError, match="not a SymbolRef"):
        uses_dispatcher(1.0)
    with pytest.raises(RuntimeError, match="not a helper registered"):
        calls.helper_ref(plain)
    ref = calls.helper_ref(calls.register(plain, "test0000", "plain"))
    assert ref.symbol == calls.symbol_of("test0000", "plain")

    @numba.njit
    def uses_ref(x):
        return calls.call(ref, x)

    assert uses_ref(2.0) == 3.0
    ir = uses_ref.inspect_llvm(uses_ref.signatures[0])
    assert re.search(rf"declare .*@\"?{ref.symbol}\"?\(", ir)

    @numba.njit
    def other_type(x):                 # an int64 argument: Numba's own call (converts)
        return calls.call(ref, x)

    assert other_type(2) == 3.0

    @numba.njit
    def wrong_arity(x):
        return calls.call(ref, x, x)

    with pytest.raises(numba.core.errors.TypingError, match="too many positional"):
        wrong_arity(1.0)


def test_long_helper_calls_do_not_warn(fresh):
    """A call of more than 30 arguments reaches Numba as one tuple: with a dispatcher in it
    Numba warns about first-class functions (the ref avoids that)."""
    import warnings

    def many(*xs):
        return tuple(tnp.tanh(x) * 2.0 + 1.0 for x in xs)

    xs = [np.full(5 + i, i, np.float32) for i in range(40)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", numba.NumbaExperimentalFeatureWarning)
        got = T.jit(many)(*xs)
    for x, g in zip(xs, got):
        np.testing.assert_allclose(g, np.tanh(x) * 2 + 1, rtol=1e-5)


def test_rewrite_touches_calls_only():
    src = ("def _fn(a):\n"
           "    # _h0(a) in a comment\n"
           "    _h0(a, _h1(a))  # _h0(x)\n"
           "    x._h0(a)\n"
           "    _h01(a)\n"
           "    _h1()\n")
    out = calls.rewrite(src, ["_h0", "_h1"])
    assert out.splitlines() == [
        "def _fn(a):",
        "    # _h0(a) in a comment",
        "    _hc(_r_h0, a, _hc(_r_h1, a))  # _h0(x)",
        "    x._h0(a)",
        "    _h01(a)",
        "    _hc(_r_h1, )"]


def _mlp(x, w1, w2):                     # two products big enough for BLAS
    return tnp.tanh(x @ w1) @ w2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_kernels_called_by_symbol(fresh, dtype):
    rng = np.random.default_rng(1)
    x, w1, w2 = (rng.standard_normal(s).astype(dtype) for s in ((64, 48), (48, 96), (96, 40)))
    low = lower(T.jit(_mlp).trace(x, w1, w2).jaxpr)
    body = _main_body(low.source)
    assert "_hc(_kr" in body and "_k_gemm" not in body
    dt = np.dtype(dtype).name
    assert re.search(rf"^_kr_gemm_cblas_\w+ = _kref\(_k_gemm_cblas_\w+, '{dt}'\)$", low.source,
                     re.M)
    exe = Executable(low)
    (got,) = exe(x, w1, w2)
    want = np.tanh(x.astype(np.float64) @ w1) @ w2
    np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-4 if dtype == np.float32 else 1e-10)
    fn = exe.module._fn
    ir = fn.inspect_llvm(fn.signatures[0])
    # the gemm kernel's body (its BLAS call) is not in the caller's module, only a declaration
    assert re.search(r"declare .*@\"?numbax_kernel_gemm_cblas", ir)
    assert not [ln for ln in ir.splitlines() if ln.startswith("define") and "gemm" in ln]


def test_kernel_rewrite_keeps_calls_it_cannot_type():
    src = ("def _fn(a, s):\n"
           "    _k_gemm_cblas_auto(0, 0, 2, 2, 2, _C0_f32, a, 0, 2, a, 0, 2, _C1_f32, a, 0, 2)\n"
           "    _k_gemm_cblas_serial(0, 0, 2, 2, 2, s, a, 0, 2, a, 0, 2, s, a, 0, 2)\n"
           "    _k_gemm_cblas_serial(0, 0, 2, 2, 2, 1.0, a, 0, 2, a, 0, 2, 0.0, a, 0, 2)\n"
           "    _k_exp_f32(_C0_f32)\n")
    out, binds = calls.rewrite_kernels(src, {"gemm_cblas_auto", "gemm_cblas_serial", "exp_f32"})
    lines = out.splitlines()
    assert lines[1].startswith("    _hc(_kr_gemm_cblas_auto_f32, 0, 0, 2, 2, 2, _C0_f32, a,")
    assert lines[2] == src.splitlines()[2]          # a run-time alpha: dtype unknown, linked
    assert lines[3].startswith("    _hc(_kr_gemm_cblas_serial_f64, 0, 0, 2, 2, 2, 1.0,")
    assert lines[4] == "    _k_exp_f32(_C0_f32)"      # small kernels stay inlined
    assert binds == ["_kr_gemm_cblas_auto_f32 = _kref(_k_gemm_cblas_auto, 'float32')",
                     "_kr_gemm_cblas_serial_f64 = _kref(_k_gemm_cblas_serial, 'float64')"]


def test_kernel_ref_falls_back_to_a_linked_call_for_other_types():
    from transforms.backend.numba import kernels
    r = calls.ref(kernels.gemm_cblas_serial, np.float64)
    a = np.arange(4.0)
    b = np.arange(4.0, 8.0)
    c = np.zeros(4)
    c32 = np.zeros(6, np.float32)

    @numba.njit
    def run(a, b, c):
        calls.call(r, 0, 0, 2, 2, 2, 1.0, a, 0, 2, b, 0, 2, 0.0, c, 0, 2)

    run(a, b, c)                                   # the published signature
    np.testing.assert_allclose(c, (a.reshape(2, 2) @ b.reshape(2, 2)).ravel())
    a32, b32 = a.astype(np.float32), b.astype(np.float32)

    @numba.njit
    def run32(a, b, c):                            # float32 operands: Numba's own call
        calls.call(r, 0, 0, 2, 2, 2, np.float32(1.0), a, 0, 2, b, 0, 2, np.float32(0.0),
                   c, 2, 2)

    run32(a32, b32, c32)
    np.testing.assert_allclose(c32[2:], (a.reshape(2, 2) @ b.reshape(2, 2)).ravel())
    assert not c32[:2].any()


CHILD = """
import json, numpy as np, transforms as T, transforms.numpy as tnp
from transforms.backend.numba import STATS

def f(x, w1, w2):
    a = tnp.tanh(x @ w1) @ w2
    return a, tnp.tanh(a) * 2.0 + 1.0, tnp.tanh(x) * 2.0 + 1.0

rng = np.random.default_rng(2)
x, w1, w2 = (rng.standard_normal(s).astype(np.float32) for s in ((64, 48), (48, 96), (96, 40)))
out = T.jit(f)(x, w1, w2)
print(json.dumps({"stats": dict(STATS), "out": [o.tolist() for o in out]}))
"""


def test_warm_process_resolves_the_symbols(tmp_path):
    """A new process loads the main function's machine code from the disk cache: its calls of
    helpers and gemm kernels by symbol resolve to the modules it loads first."""
    import json
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBAX_CACHE_DIR=str(tmp_path),
               PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                             text=True, timeout=600, cwd=root)
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    cold, warm = runs
    assert cold["stats"]["compiled"] == 1
    assert warm["stats"]["compiled"] == 0 and warm["stats"]["disk_hits"] == 1
    assert warm["out"] == cold["out"]
    rng = np.random.default_rng(2)
    x, w1, w2 = (rng.standard_normal(s).astype(np.float32)
                 for s in ((64, 48), (48, 96), (96, 40)))
    a = np.tanh(x.astype(np.float64) @ w1) @ w2
    np.testing.assert_allclose(np.array(warm["out"][0]), a, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.array(warm["out"][2]), np.tanh(x) * 2 + 1, rtol=1e-5,
                               atol=1e-6)
