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
    assert body.count("_hc(_h0, ") == 2
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


def test_call_needs_a_registered_helper_with_matching_arguments():
    @numba.njit("float64(float64)")
    def plain(x):
        return x + 1.0

    @numba.njit
    def uses_unregistered(x):
        return calls.call(plain, x)

    with pytest.raises(numba.core.errors.TypingError, match="not a helper registered"):
        uses_unregistered(1.0)

    calls.register(plain, "test0000", "plain")

    @numba.njit
    def uses_registered(x):
        return calls.call(plain, x)

    assert uses_registered(2.0) == 3.0

    @numba.njit
    def wrong_arity(x):
        return calls.call(plain, x, x)

    with pytest.raises(numba.core.errors.TypingError, match="takes"):
        wrong_arity(1.0)


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
        "    _hc(_h0, a, _hc(_h1, a))  # _h0(x)",
        "    x._h0(a)",
        "    _h01(a)",
        "    _hc(_h1, )"]
