"""The direct compiler (backend/numba/direct) against Numba on the same Python source.

Generated code is compiled by the direct compiler when it is within its subset and by Numba
otherwise, so the two must agree to the bit: each case here is a small function in the
subset, compiled both ways for the same signature and run on the same inputs (edge values
included: negative operands of // and %, zero divisors, integer overflow, NaN and infinities,
out-of-range casts excluded where the result is undefined in both). Then whole programs:
`jit` with the direct compiler on and off gives identical outputs, and a function outside the
subset falls back to Numba.
"""
from __future__ import annotations

import itertools
import linecache

import numpy as np
import pytest

numba = pytest.importorskip("numba")
from numba import types as nt  # noqa: E402

import transforms as T  # noqa: E402
import transforms.numpy as tnp  # noqa: E402
from transforms.backend.numba import direct  # noqa: E402
from transforms.backend.numba.direct.function import compile_function  # noqa: E402
from transforms.backend.numba.direct.scalars import Unsupported  # noqa: E402

_counter = itertools.count()
rng = np.random.default_rng(0)     # replaced per test (conftest)


def _define(src, name="f", extra=None):
    """A function defined from `src` whose source `inspect` can find (as generated modules
    register theirs)."""
    filename = f"<direct-test-{next(_counter)}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    ns = {"np": np, "math": __import__("math")}
    ns.update(extra or {})
    exec(compile(src, filename, "exec"), ns)
    return ns[name]


def _both(py_func, sig):
    """(direct, numba) compilations of `py_func` for signature `sig`."""
    d = compile_function(py_func, sig, "test")
    n = numba.njit(sig, error_model="numpy")(py_func)
    return d, n


def _arr(dt, ndim=1):
    return nt.Array(numba.from_dtype(np.dtype(dt)), ndim, "C")


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


def _run_both(d, nb, inputs, outputs):
    """Run the direct (`d`) and Numba (`nb`) compilations on `inputs` followed by zeroed
    arrays like `outputs`; assert both wrote the same bytes; the direct compiler's outputs."""
    results = []
    for fn in (d, nb):
        outs = [np.zeros_like(o) for o in outputs]
        fn(*inputs, *outs)
        results.append(outs)
    for a, b in zip(*results):
        _same(a, b)
    return results[0]


def _values(dt, n, rng):
    dt = np.dtype(dt)
    if dt.kind == "b":
        return rng.integers(0, 2, n).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        edge = [0, 1, -1, 2, -2, 7, -7, info.min, info.max, info.max - 1]
        vals = [v for v in edge if info.min <= v <= info.max]
        r = rng.integers(max(info.min, -1000), min(info.max, 1000), n - len(vals), dtype=dt)
        return np.concatenate([np.array(vals, dt), r])
    edge = [0.0, -0.0, 1.0, -1.5, 2.5, np.inf, -np.inf, np.nan, 1e30, -3e-30]
    r = rng.standard_normal(n - len(edge)) * 10
    return np.concatenate([np.array(edge), r]).astype(dt)


DTYPES = [np.bool_, np.int8, np.int32, np.int64, np.uint8, np.uint32, np.uint64, np.float32,
          np.float64]
ARITH = ["+", "-", "*", "/", "//", "%", "&", "|", "^", "<<", ">>", "<", "<=", "==", "!=",
         ">", ">="]


# every pair of DTYPES was checked for every operator (1,139 cases, ~4 min: set
# NUMBAX_TEST_FULL_MATRIX=1); by default the pairs where Numba's rules are least obvious
_DEFAULT_PAIRS = [(np.int32, np.int32), (np.uint32, np.int64), (np.int64, np.uint64),
                  (np.uint64, np.uint64), (np.float32, np.int64), (np.float32, np.uint8),
                  (np.bool_, np.bool_), (np.int8, np.uint8), (np.float64, np.float32)]


def _pair_cases():
    import os
    full = os.environ.get("NUMBAX_TEST_FULL_MATRIX") == "1"
    pairs = list(itertools.product(DTYPES, repeat=2)) if full else _DEFAULT_PAIRS
    out = []
    for op in ARITH:
        for a, b in pairs:
            fa, fb = np.dtype(a).kind == "f", np.dtype(b).kind == "f"
            if op in ("&", "|", "^", "<<", ">>") and (fa or fb):
                continue                      # a typing error in Numba too
            if op in ("//", "%") and (fa or fb):
                continue                      # float // and % are outside the subset
            if op in ("<<", ">>") and np.dtype(b).kind == "b":
                continue
            out.append((op, a, b))
    return out


@pytest.mark.parametrize("op,a,b", _pair_cases(),
                         ids=lambda v: v if isinstance(v, str) else np.dtype(v).name)
def test_binary_operators_match_numba(op, a, b):
    """Every operator on pairs of dtypes computes in Numba's result type to the bit (the
    result is stored into float64 and int64 outputs, so overflow and rounding show)."""
    src = (f"def f(x, y, of, oi):\n"
           f"    for i in range(len(x)):\n"
           f"        r = x[i] {op} y[i]\n"
           f"        of[i] = r\n"
           f"        oi[i] = np.int64(r) if r == r and -1e18 < r < 1e18 else 0\n")
    f = _define(src)
    n = 64
    x, y = _values(a, n, rng), _values(b, n, rng)[::-1].copy()
    if op in ("<<", ">>"):
        y = (np.abs(y.astype(np.int64)) % 31).astype(b)
    sig = nt.none(_arr(a), _arr(b), _arr(np.float64), _arr(np.int64))
    d, nb = _both(f, sig)
    with np.errstate(all="ignore"):
        _run_both(d, nb, [x, y], [np.zeros(n), np.zeros(n, np.int64)])


UNARY = [
    "-x[i]", "abs(x[i])", "~x[i] if x[i] == x[i] else 0", "not x[i]", "np.float32(x[i])",
    "np.sqrt(x[i])", "np.abs(x[i])", "np.floor(x[i])", "np.ceil(x[i])", "np.rint(x[i])",
    "np.trunc(x[i])", "np.isnan(x[i])", "np.isinf(x[i])", "np.isfinite(x[i])",
    "np.exp(x[i])", "np.log(x[i])", "math.exp(x[i])", "math.tanh(x[i])",
    "math.log1p(x[i])", "math.sqrt(x[i])", "np.copysign(x[i], -1.0)", "math.pow(x[i], 2.5)",
    "math.atan2(x[i], 0.5)", "min(x[i], 3)", "max(x[i], x[i] * 2)", "x[i] if x[i] > 1 else 0",
    "np.int32(x[i]) if -1e9 < x[i] < 1e9 else 0", "int(x[i]) if -1e9 < x[i] < 1e9 else 0",
    "np.uint8(x[i]) if 0 <= x[i] < 200 else 0", "np.fmod(x[i], 1.5)", "np.exp2(x[i])",
    "math.floor(x[i]) if -1e9 < x[i] < 1e9 else 0", "bool(x[i])", "float(x[i])",
]
# (Numba types neither; the direct compiler leaves math.floor of integers and float(bool)
# to Numba)
_UNARY_SKIP = {"f": ("~x[i]",), "i": ("math.floor",), "u": ("math.floor",),
               "b": ("math.floor", "float(")}


@pytest.mark.parametrize("dt", [np.bool_, np.int32, np.int64, np.uint32, np.float32,
                                np.float64], ids=lambda d: np.dtype(d).name)
def test_unary_functions_match_numba(dt):
    """Scalar functions, casts and builtins on each dtype (one function per dtype holding
    every expression: one compile each way)."""
    exprs = [e for e in UNARY if not e.startswith(_UNARY_SKIP[np.dtype(dt).kind])]
    body = ["def f(x, o):", "    n = len(x)", "    for i in range(n):"]
    body += [f"        o[{k} * n + i] = {e}" for k, e in enumerate(exprs)]
    f = _define("\n".join(body) + "\n")
    x = _values(dt, 40, rng)
    sig = nt.none(_arr(dt), _arr(np.float64))
    d, nb = _both(f, sig)
    o1, o2 = np.zeros(40 * len(exprs)), np.zeros(40 * len(exprs))
    with np.errstate(all="ignore"):
        d(x, o1)
        nb(x, o2)
    for k, e in enumerate(exprs):          # (which expression, when one differs)
        assert o1[40 * k:40 * (k + 1)].tobytes() == o2[40 * k:40 * (k + 1)].tobytes(), e


CONTROL = {
    "while_break_continue": """
def f(x, o):
    i = 0
    total = 0.0
    while True:
        if i >= len(x):
            break
        v = x[i]
        i += 1
        if v < 0:
            continue
        total += v
    o[0] = total
""",
    "chained_and_short_circuit": """
def f(x, o):
    n = len(x)
    for i in range(-2, n + 2):
        ok = 0 <= i < n and x[i] > 0.5
        o[i + 2] = 1.0 if ok else (2.0 if (i < 0 or i >= n) else 0.0)
""",
    "negative_indices_and_steps": """
def f(x, o):
    for i in range(len(x) - 1, -1, -2):
        o[i] = x[-1 - i] * 2
    o[-1] = x[-2]
""",
    "conditions_and_slice_fill": """
def f(x, o):
    n = len(x)
    t = (1.5, -2.0, 3.0)
    for i in range(n):
        o[i] = 1.0 if (i % 3 == 0 and 1) or (x[i] > 0 and 0) else math.copysign(2.0, x[i])
    o[n:n + 2] = 7.0
    o[-2:] = t[1] * len(t)
    o[n + 2:n] = 99.0
    o[:-30] = 5.0
""",
    "nested_loops_2d_index": """
def f(x, o):
    m = _nd(x, (4, 5))
    for i in range(4):
        for j in range(5):
            o[i * 5 + j] = m[i, j] - m[-1, -j]
""",
}


@pytest.mark.parametrize("name", sorted(CONTROL))
def test_control_flow_matches_numba(name):
    from transforms.backend.numba.views import shaped
    f = _define(CONTROL[name], extra={"_nd": shaped})
    x = rng.standard_normal(20)
    sig = nt.none(_arr(np.float64), _arr(np.float64))
    d, nb = _both(f, sig)
    o1, o2 = np.full(24, -7.0), np.full(24, -7.0)
    d(x, o1)
    nb(x, o2)
    _same(o1, o2)


def test_kernels_tuples_and_views_match_numba():
    """Calls of kernels.py (compiled from their source, tuple results included) and the
    views of views.py."""
    from transforms.backend.numba import kernels
    from transforms.backend.numba.views import empty, rows, store
    src = """
def f(x, k, o, u):
    buf = _em(8, np.float32)
    store(buf, 0, 8, np.float32(0.5))
    s = rows(o, 8, 16)
    for i in range(8):
        s[i] = _k.exp_f32(x[i]) + _k.log_f32(buf[i]) + _k.tanh_f32(x[i] * np.float32(3))
        s[i] = _k.add_reassoc(s[i], _k.sin_f32(x[i]))
    for i in range(4):
        a, b = _k.threefry2x32(k[0], k[1], np.uint32(i), np.uint32(7))
        u[2 * i] = a
        u[2 * i + 1] = b
    store(o, 0, 8, rows(o, 8, 16))
"""
    f = _define(src, extra={"_k": kernels, "_em": empty, "rows": rows, "store": store})
    x = rng.standard_normal(8).astype(np.float32)
    key = np.array([12, 345], np.uint32)
    sig = nt.none(_arr(np.float32), _arr(np.uint32), _arr(np.float32), _arr(np.uint32))
    d, nb = _both(f, sig)
    o, _ = _run_both(d, nb, [x, key], [np.zeros(16, np.float32), np.zeros(8, np.uint32)])
    np.testing.assert_allclose(o[:8], np.exp(x) + np.log(0.5) + np.tanh(3 * x) +
                               np.sin(x), rtol=1e-5, atol=1e-6)


_KERNELS_SRC = """
import numba as nb

_TABLE = (0.25, -1.5, 3.0, 7.25)


@nb.njit
def table(i):
    return _TABLE[i & 3]


@nb.njit
def scaled(a, b):
    return a * b + table(3)


@nb.njit
def fill(o, v):
    for i in range(len(o)):
        o[i] = scaled(v, v) + table(i)
"""


def test_functions_returning_nothing_are_emitted_in_one_pass(monkeypatch):
    """A function returning no value is typed by its emitting pass alone (no typing pass
    over a scratch module); one returning a value first has typing passes (for its
    signature). The collector is back on afterwards."""
    import gc
    from transforms.backend.numba.direct import lower
    passes = []
    emit = lower.FunctionCompiler._emit

    def counting(self, dry):
        passes.append((self.fdef.name, dry, gc.isenabled()))
        return emit(self, dry)
    monkeypatch.setattr(lower.FunctionCompiler, "_emit", counting)
    ns = _define("""
import numba as nb


@nb.njit
def half_up(v):
    if v > 0:
        return v * 0.5
    return v


def f(x, o):
    s = np.float32(0)
    for i in range(len(x)):
        s = s + x[i]
        o[i] = half_up(s)
""").__globals__
    d, nb = _both(ns["f"], nt.none(_arr(np.float32), _arr(np.float64)))
    x = rng.standard_normal(16).astype(np.float32)
    o1, o2 = np.zeros(16), np.zeros(16)
    d(x, o1)
    nb(x, o2)
    _same(o1, o2)
    c = np.cumsum(x, dtype=np.float32).astype(np.float64)
    np.testing.assert_array_equal(o1, np.where(c > 0, c * 0.5, c))
    assert [p[:2] for p in passes if p[0] == "f"] == [("f", False)]
    assert [p[:2] for p in passes if p[0] == "half_up"] == [("half_up", True),
                                                          ("half_up", False)]
    assert not any(p[2] for p in passes) and gc.isenabled()


def test_parameters_read_directly_or_through_their_slot_after_reassignment():
    """Parameters the body never assigns are read as the arguments themselves; one it
    reassigns (an array to a view of itself, a scalar in a loop) goes through its slot:
    both as Numba, to the bit."""
    from transforms.backend.numba.views import rows
    f = _define("""
def f(x, k, o):
    n = len(x)
    for i in range(n):
        o[i] = x[i] * k
    x = rows(x, 2, n)
    for i in range(len(x)):
        k = k + 1
        o[n + i] = x[i] - k
""", extra={"rows": rows})
    d, nb = _both(f, nt.none(_arr(np.float64), nt.int64, _arr(np.float64)))
    x = rng.standard_normal(6)
    o1, o2 = np.zeros(10), np.zeros(10)
    d(x, 3, o1)
    nb(x, 3, o2)
    _same(o1, o2)
    np.testing.assert_array_equal(o1, np.concatenate([x * 3, x[2:] - np.arange(4, 8)]))


def test_values_assigned_once_and_read_after_need_no_stack_slot():
    """A variable assigned once and read only after its assignment in the statements that
    follow it (or inside them), and a loop's target read only in its body, are used as the
    values they hold: no stack slot. Reads the assignment does not dominate -- after a loop
    that may not run, after an `if` assigning it, a target read after its loop, a value
    carried to the next iteration, a name a later tuple assignment only subscripts -- go
    through a slot. Every result as Numba's, to the bit."""
    from transforms.backend.numba.direct import engine
    from transforms.backend.numba.direct.function import _argtypes
    from transforms.backend.numba.direct.lower import (FunctionCompiler, ModuleBuilder,
                                                       function_ast)
    from transforms.backend.numba.views import rows
    f = _define("""
def f(x, n, o):
    a = x[0] * 2.0
    v = rows(x, 1, 4)
    for i in range(n):
        b = x[i] + a
        for j in range(2):
            o[i] += b * j + v[j]
    last = -1.0
    for k in range(n):
        last = x[k]
    for m in range(n):
        pass
    o[5] = last
    o[6] = m if n > 0 else -2.0
    if n > 3:
        c = 1.0
    else:
        c = 2.0
    o[7] = c
    carried = 0.5
    for q in range(3):
        o[8] += carried
        carried = x[q]
    if n >= 0:
        buf = rows(o, 9, 12)
    e, buf[0] = x[3], x[4]
    buf[1] = e
""", extra={"rows": rows})
    sig = nt.none(_arr(np.float64), nt.int64, _arr(np.float64))
    triple, layout = engine.triple_and_layout()
    mb = ModuleBuilder("ssa_test", triple, layout)
    fc = FunctionCompiler(mb, function_ast(f), f.__globals__, _argtypes(sig),
                          "ssa_test_f")
    fc.compile()
    text = str(mb.module)
    assert fc.single == {"a", "v", "i", "b", "j", "k", "q", "e"}
    slots = {line.split('"')[1].split(".")[0] for line in text.splitlines()
             if "alloca" in line and '"' in line}
    assert {"a", "v", "i", "b", "j", "k", "q"}.isdisjoint(slots)
    assert {"last", "m", "c", "carried", "buf"} <= slots
    d, nb = _both(f, sig)
    x = rng.standard_normal(8)
    for n in (0, 2, 5):
        o, = _run_both(d, nb, [x, n], [np.zeros(12)])
        assert o[5] == (x[n - 1] if n else -1.0)
        assert o[9] == x[4] and o[10] == x[3]


def test_noalias_marks_array_parameters_and_changes_no_result():
    """``njit(..., noalias=True)`` (the Winograd helper: arrays that never overlap) makes the
    direct compiler mark every array parameter LLVM ``noalias``, scalars not; the results are
    those of the function compiled without it, and Numba's, to the bit."""
    from transforms.backend.numba.direct import engine
    from transforms.backend.numba.direct.function import _argtypes
    from transforms.backend.numba.direct.lower import (FunctionCompiler, ModuleBuilder,
                                                       function_ast)
    f = _define("""
def f(x, w, k, o):
    for i in range(len(o)):
        o[i] = x[i] * w[i % 4] + k
""")
    sig = nt.none(_arr(np.float32), _arr(np.float32), nt.float32, _arr(np.float32))

    def header(noalias):
        triple, layout = engine.triple_and_layout()
        mb = ModuleBuilder("noalias_test", triple, layout)
        FunctionCompiler(mb, function_ast(f), f.__globals__, _argtypes(sig), "noalias_f",
                         noalias=noalias).compile()
        return next(line for line in str(mb.module).splitlines()
                    if line.startswith("define") and "noalias_f" in line)
    assert header(True).count("noalias %") == 3 and "float noalias" not in header(True)
    assert "noalias %" not in header(False)
    x = rng.standard_normal(64).astype(np.float32)
    w = rng.standard_normal(4).astype(np.float32)
    marked = compile_function(f, sig, "noalias-test-1", noalias=True)
    plain, nb = _both(f, sig)
    o1, = _run_both(marked, nb, [x, w, np.float32(0.5)], [np.zeros(64, np.float32)])
    o2, = _run_both(plain, nb, [x, w, np.float32(0.5)], [np.zeros(64, np.float32)])
    _same(o1, o2)


def test_a_kernel_lowered_once_is_pasted_into_later_modules():
    """A kernel is lowered once per process and argument types (`kernel_ir`): one kernel
    called with two argument types in one module gives two functions, and a second module
    calling it gets the lowered text pasted in (a nested kernel and a constant table of its
    own included); every result as Numba's, to the bit."""
    import types
    from transforms.backend.numba.direct import kernel_ir
    ns = _define(_KERNELS_SRC, "fill").py_func.__globals__      # one set of kernels
    k = types.ModuleType("kern")
    k.scaled, k.fill = ns["scaled"], ns["fill"]
    first = _define("""
def f(x, n, o, p):
    for i in range(len(x)):
        o[i] = _k.scaled(x[i], np.float32(2))
        p[i] = _k.scaled(n[i], 3)
""", extra={"_k": k})
    second = _define("""
def f(x, o):
    _k.fill(o, x[0])
    for i in range(len(x)):
        o[i] += _k.scaled(x[i], x[i])
""", extra={"_k": k})
    x = rng.standard_normal(8).astype(np.float32)
    n = np.array([0, 1, -3, 2**40, -(2**60), 7, 5, 9], np.int64)

    built = kernel_ir.STATS["built"]
    d, nb = _both(first, nt.none(_arr(np.float32), _arr(np.int64), _arr(np.float32),
                                 _arr(np.float64)))
    o, q = _run_both(d, nb, [x, n], [np.zeros(8, np.float32), np.zeros(8, np.float64)])
    np.testing.assert_array_equal(q, n * 3 + 7.25)
    np.testing.assert_allclose(o, x * 2 + 7.25, rtol=1e-6)
    # scaled for (float32, float32) and for (int64, int64), table for int64
    assert set(kernel_ir._cache[ns["scaled"].py_func]) == {
        (np.dtype(np.float32),) * 2, (np.dtype(np.int64),) * 2}
    assert kernel_ir.STATS["built"] == built + 3

    built, pasted = kernel_ir.STATS["built"], kernel_ir.STATS["pasted"]
    d, nb = _both(second, nt.none(_arr(np.float32), _arr(np.float32)))
    o, = _run_both(d, nb, [x], [np.zeros(8, np.float32)])
    table = np.array(ns["_TABLE"])[np.arange(8) & 3]
    np.testing.assert_allclose(o, x[0] ** 2 + 7.25 + table + x * x + 7.25, rtol=1e-5)
    # only `fill` was lowered; scaled (twice: in fill and in f) and table were pasted
    assert kernel_ir.STATS["built"] == built + 1
    assert kernel_ir.STATS["pasted"] >= pasted + 3


def test_syntax_trees_of_generated_functions_are_not_kept():
    """A generated function is compiled once, so its syntax tree is dropped after lowering
    (the trees of a program's functions were a quarter of the objects alive after a cold
    start); the trees of kernels, which every module calling them compiles, are kept. A
    kernel parsed from its own lines gets the tree, line numbers included, that parsing its
    whole file gives."""
    import ast
    import inspect
    import time
    from transforms.backend.numba import kernels
    from transforms.backend.numba.direct import lower as L
    c = float(time.time_ns() % 1_000_003) + 0.5          # a program no cache has seen
    compiled = direct.STATS["compiled"]
    f = T.jit(lambda x: tnp.maximum(x * c, 1.0).sum())
    x = np.arange(12.0, dtype=np.float32)
    np.testing.assert_allclose(float(f(x)), np.maximum(x * np.float32(c), 1).sum(),
                               rtol=1e-6)
    assert direct.STATS["compiled"] > compiled
    assert not [code for code in L._ASTS if "nbx_" in code.co_filename]
    assert not [name for name, _ in L._SPANS if "nbx_" in name]

    kernel = kernels.maxf.py_func
    whole = {n.name: n for n in ast.parse(inspect.getsource(kernels)).body
             if isinstance(n, ast.FunctionDef)}
    L._SPANS.clear()
    L._parse_function(kernels.minf.py_func)            # the file: parsed whole once
    assert L._SPANS
    own = L._parse_function(kernel)                    # then only the kernel's lines
    assert ast.dump(own, include_attributes=True) == \
        ast.dump(whole["maxf"], include_attributes=True)


@pytest.mark.parametrize("src", [
    "def f(x, o):\n    o[0] = x[1:3].sum()\n",
    # one variable holding two types: Numba types each assignment on its own (SSA) and
    # unifies at joins; the direct compiler leaves such functions to Numba
    "def f(x, o):\n    acc = 0\n    for i in range(len(x)):\n        acc = acc + x[i]\n"
    "    o[0] = acc\n",
    "def f(x, o):\n    r = len(x)\n    o[0] = r\n    r = x[0]\n    o[1] = r\n",
    "def f(x, o):\n    with open('f'):\n        pass\n",
], ids=["slice", "joined_types", "retyped", "with"])
def test_outside_the_subset_raises_unsupported(src):
    f = _define(src)
    with pytest.raises(Unsupported):
        compile_function(f, nt.none(_arr(np.float64), _arr(np.float64)), "test")


def _mlp_step():
    def loss(p, x, y):
        h = tnp.tanh(x @ p["w1"] + p["b1"])
        logits = h @ p["w2"]
        lse = tnp.log(tnp.sum(tnp.exp(logits - logits.max(1, keepdims=True)), 1))
        return tnp.mean(lse - tnp.take_along_axis(logits, y[:, None], 1)[:, 0])

    def step(p, x, y):
        v, g = T.value_and_grad(loss)(p, x, y)
        return T.tree.map(lambda a, b: a - 0.1 * b, p, g), v
    return step


def _mlp_data(rng):
    p = {"w1": rng.standard_normal((20, 16)).astype(np.float32),
         "b1": np.zeros(16, np.float32),
         "w2": rng.standard_normal((16, 5)).astype(np.float32)}
    x = rng.standard_normal((32, 20)).astype(np.float32)
    y = rng.integers(0, 5, 32)
    return p, x, y


def test_jit_with_and_without_the_direct_compiler_agree_bitwise(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))
    p, x, y = _mlp_data(rng)
    outs = {}
    for mode in ("1", "0"):
        monkeypatch.setenv("NUMBAX_DIRECT", mode)
        T.clear_caches()
        before = dict(direct.STATS)
        step = T.jit(_mlp_step())
        q, v = step(p, x, y)
        for _ in range(3):
            q, v = step(q, x, y)
        outs[mode] = T.tree.leaves((q, v))
        if mode == "1":
            assert direct.STATS["compiled"] + direct.STATS["loaded"] > \
                before["compiled"] + before["loaded"]
    T.clear_caches()
    for a, b in zip(outs["1"], outs["0"]):
        _same(np.asarray(a), np.asarray(b))
    eager = _mlp_step()(p, x, y)
    for a, b in zip(T.tree.leaves(T.jit(_mlp_step())(p, x, y)), T.tree.leaves(eager)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


_CHILD = """
import json, sys, numpy as np
import transforms as T, transforms.numpy as tnp
from transforms.backend.numba import direct
x = np.linspace(-2, 2, 12).astype(np.float32).reshape(3, 4)
w = np.linspace(0, 1, 20).astype(np.float32).reshape(4, 5)
out = T.jit(lambda x, w: tnp.tanh(x @ w).sum(0) * 2)(x, w)
print(json.dumps({"out": out.tolist(), "stats": direct.STATS}))
"""


def _child(cache_dir):
    import json
    import os
    import subprocess
    import sys
    env = dict(os.environ, NUMBAX_CACHE_DIR=str(cache_dir), NUMBAX_DIRECT="strict")
    r = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_machine_code_is_cached_on_disk_and_a_damaged_file_is_recompiled(tmp_path):
    """A new process loads the object file the first one wrote (no compile); a damaged one
    (its checksum fails) is compiled again and rewritten, never handed to LLVM."""
    first = _child(tmp_path)
    assert first["stats"]["compiled"] >= 1 and first["stats"]["loaded"] == 0
    objs = sorted((tmp_path / "__pycache__").glob("nbx_*._fn.*.dobj"))
    assert len(objs) == 1
    second = _child(tmp_path)
    assert second["stats"]["loaded"] >= 1 and second["stats"]["compiled"] == 0
    assert second["out"] == first["out"]
    data = bytearray(objs[0].read_bytes())
    data[len(data) // 2] ^= 0xFF                       # one flipped byte
    objs[0].write_bytes(bytes(data))
    third = _child(tmp_path)
    assert third["stats"]["compiled"] >= 1 and third["out"] == first["out"]
    assert objs[0].read_bytes() != bytes(data)         # rewritten
    objs[0].write_bytes(b"")                           # truncated to nothing
    assert _child(tmp_path)["out"] == first["out"]


def test_the_python_entry_is_a_module_of_its_own_and_a_damaged_one_is_recompiled(tmp_path):
    """The entry is compiled as its own module (both lanes share a program's last compile),
    cached in a file of its own beside its function's and loaded after it; a damaged entry
    file alone sends the function to be compiled again, with the same result."""
    first = _child(tmp_path)
    fns = sorted((tmp_path / "__pycache__").glob("nbx_*._fn.*.dobj"))
    entries = sorted((tmp_path / "__pycache__").glob("nbx_*._fn_py.*.dobj"))
    assert len(fns) == 1 and len(entries) == 1
    assert fns[0].name.split(".")[2] == entries[0].name.split(".")[2]     # one key
    entries[0].write_bytes(entries[0].read_bytes()[:-7])               # truncated
    second = _child(tmp_path)
    assert second["stats"]["compiled"] >= 1 and second["out"] == first["out"]
    third = _child(tmp_path)                                           # rewritten: loaded
    assert third["stats"]["compiled"] == 0 and third["out"] == first["out"]


def test_arguments_the_signature_does_not_take_are_converted():
    """Big-endian, strided, read-only and unpickled arrays reach compiled code converted (the
    entry point reports them; the executable converts them, as for Numba's dispatcher)."""
    import pickle
    f = T.jit(lambda x, y: x * 2 + y)
    x = np.arange(6, dtype=np.float32)
    y = np.ones(6, np.float32)
    want = x * 2 + y
    ro = x.copy()
    ro.flags.writeable = False
    for arg in (x.astype(">f4"), np.repeat(x, 2)[::2], ro,
                pickle.loads(pickle.dumps(x)), np.asarray(x, dtype=np.float32)):
        np.testing.assert_array_equal(f(arg, y), want)
    g = T.jit(lambda i: i + 1)
    np.testing.assert_array_equal(g(np.arange(3, dtype=np.longlong)), [1, 2, 3])


_MIXED = """
import json, os, numpy as np, transforms as T, transforms.numpy as tnp
from transforms.backend.numba.direct import lower as L
if os.environ.get("REFUSE_MAIN") == "1":      # the main function left to Numba, helpers not
    orig = L.FunctionCompiler.compile
    def compile(self):
        if self.fdef.name == "_fn":
            raise L.Unsupported("test: main function refused")
        return orig(self)
    L.FunctionCompiler.compile = compile
def f(a, b):
    return tnp.tanh(a) * 2.0 + 1.0, tnp.tanh(b) * 2.0 + 1.0
a = np.linspace(-1, 1, 50).astype(np.float32)
b = np.linspace(0, 1, 30).astype(np.float32)
r = T.jit(f)(a, b)
print(json.dumps([r[0].tolist(), r[1].tolist()]))
"""


def test_numba_code_calling_direct_helpers_is_never_cached_across_modes(tmp_path):
    """A Numba-compiled main function calling directly compiled helpers is not written to
    (nor loaded from) Numba's disk cache: the same module compiled with the direct compiler
    off calls Numba-compiled helpers under other symbols, and loading one process's machine
    code in the other crashed. All four runs on one cache directory agree."""
    import json
    import os
    import subprocess
    import sys
    outs = []
    for refuse, mode in (("1", "strict"), ("0", "0"), ("1", "strict"), ("0", "0")):
        env = dict(os.environ, NUMBAX_CACHE_DIR=str(tmp_path), NUMBAX_DIRECT=mode,
                   REFUSE_MAIN=refuse)
        r = subprocess.run([sys.executable, "-c", _MIXED], env=env, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        outs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    assert all(o == outs[0] for o in outs)


def test_a_function_compiled_on_first_call_that_calls_direct_helpers_is_not_cached():
    """Generated code compiled by Numba on its first call (no signature: a `while_loop`'s
    body) that calls a directly compiled helper gets no disk cache either: its cached code
    would link the helper's symbol of this version of the direct compiler, which the next
    one does not define (LLVM then aborted the process). One that calls none is cached."""
    from transforms.backend.numba import cache
    from transforms.backend.numba.direct.function import load_pending
    h = _define("def h(x, o):\n    o[0] = x[0] * 2.0\n", "h")
    sig = nt.none(_arr(np.float64), _arr(np.float64))
    d = compile_function(h, sig, "lazy-test", entry=False)

    def generated(src, name, extra):
        filename = f"<numbax-generated nbx_lazy{next(_counter)}>"
        linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
        ns = dict(extra)
        exec(compile(src, filename, "exec"), ns)
        return cache.njit(cache=True, nogil=True)(ns[name])

    g = generated("def g(x, o):\n    h(x, o)\n    o[1] = x[1]\n", "g", {"h": d})
    plain = generated("def p(x, o):\n    o[1] = x[1]\n", "p", {})
    assert not isinstance(g._cache, cache._DiskCache)
    assert isinstance(plain._cache, cache._DiskCache)
    load_pending()
    o = np.zeros(2)
    g(np.array([1.5, 4.0]), o)
    np.testing.assert_array_equal(o, [3.0, 4.0])


# -- the entry point of functions of many and of few arguments ------------------------------
# (array arguments as (dtype, ndim), scalars as dtype; the function's two outputs follow)
def _interleaved(arrays, scalars):
    kinds = []
    for k, a in enumerate(arrays):
        kinds.append(a)
        if k % 3 == 1:
            kinds.append(scalars[(k // 3) % len(scalars)])
    return kinds


# 32 inputs: arrays of ten dtypes and one to three dimensions, every kind of scalar between
# them (the entry takes them in its loop); 6 inputs (taken one by one)
_MANY = _interleaved([(np.float32, 1), (np.float64, 2), (np.int8, 1), (np.int16, 3),
                      (np.int32, 2), (np.int64, 1), (np.uint8, 2), (np.uint16, 1),
                      (np.uint32, 3), (np.uint64, 2), (np.bool_, 1), (np.float32, 3)] * 2,
                     [np.int64, np.float64, np.bool_, np.float32, np.int32, np.uint64,
                      np.uint8, np.int8])
_FEW = [(np.float32, 2), np.int64, np.float64, np.bool_, np.uint64, np.float32]
# the scalars' values: -1 and -1.0 are also the C API's error returns (the entry must then
# ask whether an error was raised, and go on)
_SCALAR_VALUES = {np.int64: -1, np.float64: -1.0, np.bool_: True, np.float32: 0.1,
                  np.int32: -2 ** 31, np.uint64: 2 ** 63 + 12345, np.uint8: 255, np.int8: -128}


def _kinds_function(kinds):
    """(py_func, signature) of a function of arguments `kinds` and two outputs: it writes a
    weighted sum and the shape of each array, and the value of each scalar, to them."""
    body = ["def f(" + ", ".join(f"a{k}" for k in range(len(kinds))) + ", o, oi):"]
    for m, kd in enumerate(kinds):
        a = f"a{m}"
        if not isinstance(kd, tuple):
            body.append(f"    o[{m}] = {a}")
            if np.dtype(kd).kind in "bi":
                body.append(f"    oi[{m}] = {a}")
            continue
        idx = [f"i{d}" for d in range(kd[1])]
        ind = "    "
        for d, i in enumerate(idx):
            body.append(f"{ind}for {i} in range({a}.shape[{d}]):")
            ind += "    "
        weight = " + ".join(f"{i} * {7 ** d}" for d, i in enumerate(idx)) + " + 1"
        body.append(f"{ind}o[{m}] = o[{m}] + {a}[{', '.join(idx)}] * ({weight})")
        body.append(f"    oi[{m}] = " + " + ".join(f"{a}.shape[{d}] * {100 ** d}"
                                                   for d in range(kd[1])))
    f = _define("\n".join(body) + "\n")
    sig = nt.none(*[_arr(kd[0], kd[1]) if isinstance(kd, tuple) else numba.from_dtype(
        np.dtype(kd)) for kd in kinds], _arr(np.float64), _arr(np.int64))
    return f, sig


def _kinds_values(kinds, rng):
    args = []
    for m, kd in enumerate(kinds):
        if not isinstance(kd, tuple):
            args.append(_SCALAR_VALUES[kd])
            continue
        shape = (5, 4, 3)[:kd[1]] if m % 2 else (2, 6, 3)[:kd[1]]
        dt = np.dtype(kd[0])
        a = (rng.integers(0, 2, shape).astype(bool) if dt.kind == "b" else
             rng.integers(0 if dt.kind == "u" else -50, 50, shape).astype(dt))
        args.append(a)
    n = len(kinds)
    return args + [np.zeros(n), np.zeros(n, np.int64)]


def _kinds_expected(kinds, args):
    n = len(kinds)
    o, oi = np.zeros(n), np.zeros(n, np.int64)
    for m, (kd, a) in enumerate(zip(kinds, args)):
        if not isinstance(kd, tuple):
            o[m] = np.float64(np.dtype(kd).type(a))
            oi[m] = int(a) if np.dtype(kd).kind in "bi" else 0
            continue
        w = sum(np.indices(a.shape)[d] * 7 ** d for d in range(a.ndim)) + 1
        o[m] = (a.astype(np.float64) * w).sum()
        oi[m] = sum(s * 100 ** d for d, s in enumerate(a.shape))
    return o, oi


def test_the_entry_takes_few_and_many_arguments_in_two_ways():
    from transforms.backend.numba.direct.function import _UNROLL
    assert len(_FEW) + 2 <= _UNROLL < len(_MANY) + 2


@pytest.mark.parametrize("kinds", [_MANY, _FEW], ids=["many", "few"])
def test_entry_of_arguments_of_mixed_kinds_matches_numba(kinds):
    """Arrays of many dtypes and one to three dimensions, int/uint/float/bool scalars of
    several widths (-1 among them: the C API's error value) reach the compiled function as
    Numba's dispatcher passes them: outputs equal to the bit, and to NumPy."""
    f, sig = _kinds_function(kinds)
    d, nb = _both(f, sig)
    args = _kinds_values(kinds, rng)
    o, oi = _run_both(d, nb, args[:-2], args[-2:])
    want_o, want_oi = _kinds_expected(kinds, args)
    np.testing.assert_allclose(o, want_o, rtol=1e-6)
    np.testing.assert_array_equal(oi, want_oi)
    # a float32 scalar is rounded to float32 on the way in; -1 went through as a value
    assert o[kinds.index(np.float32)] == np.float64(np.float32(0.1)) != 0.1
    assert oi[kinds.index(np.int64)] == -1


class _BadBool:
    def __bool__(self):
        raise ValueError("no truth value here")


def _not_taken(a):
    """Versions of array `a` an entry taking `a`'s dtype and ndim does not take."""
    yield a.astype(np.complex64)                           # a dtype outside the signature
    yield a.reshape(-1)[:1].reshape((1,) * (a.ndim + 1))   # one dimension too many
    yield np.repeat(a, 2, axis=-1)[..., ::2]               # strided
    ro = a.copy()
    ro.flags.writeable = False
    yield ro
    yield a.tolist()                                       # not an array
    yield a.view(type("Sub", (np.ndarray,), {}))           # a subclass
    if a.dtype.itemsize > 1:
        yield a.astype(a.dtype.newbyteorder())             # swapped byte order
    if a.dtype != np.int64:
        yield a.astype(np.int64)


@pytest.mark.parametrize("kinds", [_MANY, _FEW], ids=["many", "few"])
def test_entry_reports_the_first_argument_it_does_not_take(kinds):
    """The entry's result for arguments it does not take (nothing runs): the index k of the
    first such argument at any position, -1 for a wrong count; a scalar whose conversion
    raises raises that error, unless an array before it was not taken."""
    f, sig = _kinds_function(kinds)
    d = compile_function(f, sig, "test")
    args = _kinds_values(kinds, rng)
    n = len(args)
    o, oi = args[-2:]
    assert d.fast(*args) is None and oi.any()
    arrays = [m for m, a in enumerate(args) if isinstance(a, np.ndarray)]
    for k in sorted({arrays[1], arrays[len(arrays) // 2], arrays[-1]}):
        for bad in _not_taken(args[k]):
            o[:] = 0
            oi[:] = 0
            call = args[:k] + [bad] + args[k + 1:]
            assert d.fast(*call) == k
            assert not o.any() and not oi.any()            # nothing ran
            with pytest.raises(TypeError, match=f"argument {k} is not"):
                d(*call)
    call = list(args)                                      # the first of two
    call[arrays[1]], call[arrays[-1]] = call[arrays[1]].tolist(), None
    assert d.fast(*call) == arrays[1]
    # scalar conversions that raise
    for kd, bad, err in ((np.float64, "x", TypeError), (np.int64, 2 ** 70, OverflowError),
                         (np.uint64, -1, OverflowError), (np.bool_, _BadBool(), ValueError),
                         (np.int64, 1.5, TypeError)):
        call = list(args)
        at = kinds.index(kd)
        call[at] = bad
        with pytest.raises(err):
            d.fast(*call)
        call[[m for m in arrays if m > at][0]] = None     # an array after it: the error
        with pytest.raises(err):
            d.fast(*call)
        earlier = [m for m in arrays if m < at][-1]
        call[earlier] = None                               # one before it: reported first
        assert d.fast(*call) == earlier
    for call in (args[:-1], args + [oi], []):              # wrong counts
        assert d.fast(*call) == -1
        with pytest.raises(TypeError, match=f"takes {n} arguments"):
            d(*call)


def test_entry_of_a_function_of_no_arguments():
    f = _define("def f():\n    x = 1\n")
    d = compile_function(f, nt.none(), "test")
    assert d.fast() is None
    assert d.fast(1) == -1


def test_jit_of_many_mixed_arguments_agrees_with_numba(monkeypatch, tmp_path):
    """A jitted function of 18 arrays (seven dtypes, one to three dimensions) and Python
    scalars gives the same bits with the direct compiler (its entry taking inputs, outputs
    and scalars: over 20 arguments) as compiled by Numba only (NUMBAX_DIRECT=0)."""
    from transforms.backend.numba.direct import function as dfunction
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))
    entries = []
    real_entry = dfunction._python_entry

    def spy(mb, fn, argtypes, name):
        entries.append(len(argtypes))
        return real_entry(mb, fn, argtypes, name)

    monkeypatch.setattr(dfunction, "_python_entry", spy)
    specs = [(np.float32, (3,)), (np.float64, (2, 3)), (np.int32, (4,)),
             (np.int64, (2, 2, 3)), (np.uint8, (5,)), (np.int16, (3, 2)),
             (np.bool_, (4,))] * 2 + [(np.float32, (2, 3, 2)), (np.float64, (6,)),
                                      (np.int32, (3, 3)), (np.bool_, (2, 2))]
    xs = []
    for dt, shape in specs:
        dt = np.dtype(dt)
        xs.append(rng.integers(0, 2, shape).astype(bool) if dt.kind == "b" else
                  (rng.standard_normal(shape) * 10).astype(dt))

    def f(xs, s, t):
        outs = [~x if x.dtype == np.bool_ else x * 2 + 1 for x in xs]
        total = sum(tnp.sum(x.astype(np.float32)) for x in xs)
        return outs, total * s + t

    results = {}
    for mode in ("strict", "0"):
        monkeypatch.setenv("NUMBAX_DIRECT", mode)
        T.clear_caches()
        before = direct.STATS["compiled"]
        results[mode] = T.tree.leaves(T.jit(f)(xs, 1.5, 3))
        if mode == "strict":
            assert direct.STATS["compiled"] > before and max(entries) > 20
        else:
            assert direct.STATS["compiled"] == before
    T.clear_caches()
    assert len(results["0"]) == len(xs) + 1
    for a, b in zip(results["strict"], results["0"]):
        _same(np.asarray(a), np.asarray(b))
    for x, got in zip(xs, results["0"]):
        np.testing.assert_array_equal(got, ~x if x.dtype == bool else x * 2 + 1)


_CHILD_MANY = """
import json, sys, numpy as np
import transforms as T
from transforms.backend.numba import direct
from transforms.backend.numba.direct import function as F
taken = [0]
real = F._python_entry
def spy(mb, fn, argtypes, name):
    taken[0] = max(taken[0], len(argtypes))
    return real(mb, fn, argtypes, name)
F._python_entry = spy
xs = [np.linspace(-1, 1, 6 + k).astype(np.float32 if k % 2 else np.float64) for k in range(10)]
out = T.jit(lambda xs: [x * 3 - 1 for x in xs])(xs)
print(json.dumps({"out": [o.tolist() for o in out], "stats": direct.STATS,
                  "entry_args": taken[0], "unroll": F._UNROLL}))
"""


def test_an_entry_with_its_argument_table_is_loaded_from_disk_in_another_process(tmp_path):
    """The entry of a function of many arguments reads a constant table of the module (no
    address compiled in): its object file, written by one process, runs in another."""
    import json
    import os
    import subprocess
    import sys
    runs = []
    for _ in range(2):
        env = dict(os.environ, NUMBAX_CACHE_DIR=str(tmp_path), NUMBAX_DIRECT="strict")
        r = subprocess.run([sys.executable, "-c", _CHILD_MANY], env=env, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    assert runs[0]["stats"]["compiled"] >= 1 and runs[0]["stats"]["loaded"] == 0
    assert runs[1]["stats"]["loaded"] >= 1 and runs[1]["stats"]["compiled"] == 0
    assert runs[1]["out"] == runs[0]["out"]
    for k, o in enumerate(runs[1]["out"]):
        x = np.linspace(-1, 1, 6 + k).astype(np.float32 if k % 2 else np.float64)
        np.testing.assert_array_equal(o, x * 3 - 1)
    # (the entry took more arguments than it takes one by one: it has the table)
    assert runs[0]["entry_args"] > runs[0]["unroll"]
