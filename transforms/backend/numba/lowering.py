"""Lowering a jaxpr to the source of ONE Numba function (plus a tiny Python runner).

Registering a lowering rule
===========================

Primitives that are not elementwise, views or reductions (those are fused by `fusion.py`)
are lowered by a rule registered by primitive name::

    from transforms.backend.numba.lowering import register_lowering

    @register_lowering("cumsum")
    def _lower_cumsum(ctx, eqn):
        n = eqn.invars[0].aval.shape[0]
        with ctx.block(f"for _j in {ctx.range(n)}:"):          # header + indented body
            ctx.emit(f"{ctx.out_elem(0, ['_j'])} = {ctx.read(0, ['_j'])}")

A rule emits Python/Numba statements at the current indentation with `ctx.emit(line)`;
`ctx.block(header)` opens a nested block (`for`, `while`, `if`, `else`). All storage in the
generated function is flat (1-D, C order), so there are two ways to read and write:

* element access: `ctx.read(i, idx)` is the value of operand i at index expressions `idx`
  (one per dim; views such as transposes and broadcasts are folded into the index),
  `ctx.out_elem(j, idx)` is an assignable element of output j, `ctx.scalar(i)` reads a shape-()
  operand, `ctx.flat(i)` / `ctx.out_flat(j)` give (1-D array name, element offset);
* whole arrays: `ctx.array(i)` is an N-d C-contiguous array holding operand i (a view of its
  storage, or a copy when the operand is a non-trivial view), `ctx.out(j)` an N-d array to
  write output j into; or bind an output to an existing array with `ctx.set_out(j, name)`,
  to flat storage with `ctx.set_out_flat(j, name, off)`, to a scalar with
  `ctx.set_out_scalar(j, expr)`, or to operand i reshaped with `ctx.alias_out(j, i)`.

`ctx.view(i)` is the raw `fusion.View` of operand i (for rules that fold index maps
themselves, like dot_general folding transposes into BLAS flags). Other helpers:
`ctx.range(n)` (the `range(...)` to use for a loop of static length: small loops get a
run-time bound so that LLVM does not unroll them), `ctx.fresh(prefix)`, `ctx.literal(v, dtype)`,
`ctx.dtype(dtype)` (e.g. `_np.float32`), `ctx.numba_type(dtype)`, `ctx.kernel(name)` (a function
of kernels.py), `ctx.empty(shape, dtype)` (an N-d temporary), `ctx.add_helper(key, source)`
(module-level source added once, e.g. an ``@_njit`` helper), `ctx.const(array)` (an extra
constant argument, flattened), and, for control flow, `ctx.lower_jaxpr(closed_jaxpr,
arg_names) -> out_names`, which lowers a nested jaxpr inline at the current position (with its
own fusion) taking and returning N-d array names. Each rule's code is preceded by a comment
with its IR equation, so the generated code reads like the IR.

Rules for elementwise primitives are scalar expressions registered with
`rules_elementwise.register_pointwise(name)`; they join fused loops automatically.

There is no fallback: a primitive with no rule raises NotImplementedError naming it.

Zero-size arrays: an equation whose outputs are all empty is never handed to its rule (there
is nothing to write; rules may treat a dim of size 1 as index 0 and need not think about
size 0). A rule whose output is non-empty may still get empty operands (a contraction over
an empty axis, padding an empty array, a scan of length 0): it must write every output
element. Dtypes the backend cannot compile raise `UnsupportedDtypeError` (a TypeError).
"""
from __future__ import annotations

import builtins
import contextlib
import hashlib
import keyword
import os
import threading

import numpy as np

from ...errors import UnsupportedDtypeError
from ...ir import ClosedJaxpr, Jaxpr, Literal, _Namer, _pp
from . import fusion, tabulate
from .fusion import Nest, RowGroup, ScalarStep, View

LOWERINGS = {}
CALLS_BLAS = set()      # primitives whose lowering calls a threaded library (BLAS, LAPACK)


def register_lowering(name, calls_blas=False):
    """Decorator: `rule(ctx, eqn)` lowers equations of primitive `name` (see module doc).
    `calls_blas`: the rule calls BLAS/LAPACK, whose own threads rule out `prange` loops in
    the same function."""
    def deco(fn):
        LOWERINGS[name] = fn
        if calls_blas:
            CALLS_BLAS.add(name)
        return fn
    return deco


def _pointwise_rules():
    from .rules_elementwise import POINTWISE
    return POINTWISE


def parallel_allowed():
    """Whether generated loops may use prange (NUMBAX_PARALLEL: "auto" (default), 1, 0).

    Numba runs parallel loops on a threading layer, and two of the three are not safe for
    every program: GNU OpenMP (`omp`, Numba's choice when TBB is missing) kills a child
    process that uses it after fork() (multiprocessing / DataLoader-style workers), and
    `workqueue` aborts when two threads enter parallel code at once. Only TBB survives both.
    So by default ("auto") loops are parallel only when Numba's layer will be TBB (the `tbb`
    pip package installed, and NUMBA_THREADING_LAYER unset or tbb/safe/threadsafe);
    NUMBAX_PARALLEL=1 makes them parallel on any layer (our calls of parallel code are then
    serialised under `workqueue`, and fork() after a parallel call is unsafe under GNU
    OpenMP: one warning says so); NUMBAX_PARALLEL=0 never."""
    v = os.environ.get("NUMBAX_PARALLEL", "auto").strip().lower()
    if v in ("0", "off", "false", "no"):
        return False
    if v in ("1", "on", "true", "yes"):
        return True
    return _tbb_layer()


_TBB = None


def _tbb_layer():
    """Whether Numba's threading layer is (or will be) TBB."""
    global _TBB
    if _TBB is None:
        import numba
        from numba.np.ufunc import parallel as npar
        layer = str(numba.config.THREADING_LAYER).lower()
        prio = [str(x).lower() for x in getattr(numba.config, "THREADING_LAYER_PRIORITY",
                                                 ["tbb", "omp", "workqueue"])]
        if getattr(npar, "_is_initialized", False):
            _TBB = npar.threading_layer() == "tbb"
        elif layer in ("tbb", "safe") or (layer in ("default", "threadsafe") and prio and
                                          prio[0] == "tbb"):
            try:
                npar._check_tbb_version_compatible()
                import numba.np.ufunc.tbbpool  # noqa: F401
                _TBB = True
            except Exception:                   # not installed / too old: serial loops
                _TBB = False
        else:
            _TBB = False
    return _TBB


_PARALLEL_LOCK = threading.Lock()


def parallel_guard():
    """For the runner of a function with parallel loops: a lock to hold around each call
    when the threading layer cannot take concurrent callers (`workqueue`), else a no-op
    context; warns once if the layer makes fork() after a call unsafe (GNU OpenMP)."""
    import warnings

    from numba.np.ufunc import parallel as npar
    try:
        npar._launch_threads()
        layer = npar.threading_layer()
    except Exception:
        layer = None
    if layer == "workqueue":
        return _PARALLEL_LOCK
    if layer == "omp" and getattr(npar, "_IS_LINUX", False) and not _ParallelWarned.done:
        _ParallelWarned.done = True
        warnings.warn("transforms.jit: parallel loops (NUMBAX_PARALLEL=1) run on Numba's "
                      "OpenMP threading layer: on Linux (GNU OpenMP) a child process made "
                      "by fork() after such a call is killed when it uses them. Install the "
                      "`tbb` package, set NUMBA_THREADING_LAYER=workqueue, or leave "
                      "NUMBAX_PARALLEL unset.", RuntimeWarning, stacklevel=3)
    return contextlib.nullcontext()


class _ParallelWarned:
    done = False


def _parallel_min():
    """Fused loops over at least this many elements use prange (NUMBAX_PARALLEL_MIN; 0 = never;
    and only if `parallel_allowed()`).

    The default is high: a parallel region's threads compete with BLAS's own threads (and
    with anything else running) for the same cores, which on a small or busy machine costs far
    more than it gains; only very large elementwise work is split."""
    if not parallel_allowed():
        return 1 << 62
    try:
        v = int(os.environ.get("NUMBAX_PARALLEL_MIN", 1 << 20))
    except ValueError:
        v = 1 << 20
    return v if v > 0 else 1 << 62


POOL_MIN_BYTES = 1 << 16       # outputs at least this big come from the recycling pool

# Loops shorter than this run to `n + _z` (_z: a run-time zero argument). LLVM fully unrolls
# loops of small known length; with many of them that makes compile time explode (the unrolled
# straight-line code is scheduled superlinearly) while saving next to nothing at run time.
SMALL_LOOP = 1024

PARALLEL_CHUNK = 1 << 14       # iterations per work item of a parallel loop


def _profiling():
    """NUMBAX_PROFILE=1: generated functions count CPU cycles per step (see Executable.profile)."""
    return os.environ.get("NUMBAX_PROFILE", "") not in ("", "0")


def loop_range(n, start=0):
    """Source of a range over [start, n) for a generated loop (see SMALL_LOOP)."""
    stop = f"{n} + _z" if n - start < SMALL_LOOP else str(n)
    return f"range({start}, {stop})" if start else f"range({stop})"

_NB_TYPES = {"bool": "boolean"}
_SHORT = {"float32": "f32", "float64": "f64", "int8": "i8", "int16": "i16", "int32": "i32",
          "int64": "i64", "uint8": "u8", "uint16": "u16", "uint32": "u32", "uint64": "u64",
          "bool": "b", "float16": "f16", "complex64": "c64", "complex128": "c128"}


def numba_type_name(dtype):
    dtype = np.dtype(dtype)
    _check_dtype(dtype)
    return "_t." + _NB_TYPES.get(dtype.name, dtype.name)


def unsupported_dtype(dtype, what=None):
    """The UnsupportedDtypeError (a TypeError) for a dtype the backend cannot compile, or None
    if it can; `what` names the value in the message (e.g. 'input 2', or an equation)."""
    if dtype.kind not in "biufc" or dtype == np.float16 or dtype == np.clongdouble:
        return UnsupportedDtypeError(
            f"jit: {what + ' has ' if what else 'arrays of '}dtype {dtype}, which the Numba "
            f"backend does not support (use "
            f"{'float32' if dtype.kind == 'f' else 'a real numeric dtype'})")
    return None


def _check_dtype(dtype, what=None):
    err = unsupported_dtype(dtype, what)
    if err is not None:
        raise err


def _check_dtypes(jaxpr):
    """Every value of `jaxpr` has a supported dtype; an unsupported input is reported by its
    position (`err.flat_input`, which `jit` turns into the user's argument path)."""
    for i, v in enumerate(jaxpr.invars):
        try:
            _check_dtype(v.aval.dtype, f"input {i}")
        except UnsupportedDtypeError as e:
            e.flat_input = i
            raise
    for v in jaxpr.constvars:
        _check_dtype(v.aval.dtype, "a constant")
    _check_eqn_dtypes(jaxpr)
    for a in jaxpr.outvars:                   # literal outputs (e.g. a constant string)
        _check_dtype(a.aval.dtype, "an output")


def _check_eqn_dtypes(jaxpr):
    for e in jaxpr.eqns:
        for v in e.outvars:
            where = f" at {e.source_info}" if e.source_info is not None else ""
            _check_dtype(v.aval.dtype, f"the result of '{e.prim.name}'{where}")
        for j in _sub_jaxprs(e):               # control-flow bodies
            for v in j.invars + j.constvars:
                _check_dtype(v.aval.dtype, f"a value inside '{e.prim.name}'")
            _check_eqn_dtypes(j)


def dtype_ctor(dtype):
    dtype = np.dtype(dtype)
    return "_np.bool_" if dtype == np.bool_ else f"_np.{dtype.name}"


def format_literal(value, dtype):
    """Source text of a scalar of `dtype` whose Numba type is exactly `dtype`."""
    dtype = np.dtype(dtype)
    v = np.asarray(value).astype(dtype).item()
    if dtype == np.bool_:
        return "True" if v else "False"
    if dtype.kind == "f":
        f = float(v)
        if f != f:
            txt = "_np.nan"
        elif f in (float("inf"), float("-inf")):
            txt = "_np.inf" if f > 0 else "-_np.inf"
        else:
            txt = repr(f)
        return txt if dtype == np.float64 and txt[0] != "-" and "_np" not in txt \
            else f"{dtype_ctor(dtype)}({txt})"
    if dtype.kind in "iu":
        if dtype == np.int64 and v >= 0:
            return str(int(v))
        return f"{dtype_ctor(dtype)}({int(v)})"
    if dtype.kind == "c":           # complex(re, im) spelled out: nan/inf parts stay valid source
        ft = np.float32 if dtype == np.complex64 else np.float64
        return (f"{dtype_ctor(dtype)}(complex({format_literal(v.real, ft)}, "
                f"{format_literal(v.imag, ft)}))")
    raise NotImplementedError(f"literal of dtype {dtype}")


def _size(shape):
    return int(np.prod(shape, dtype=np.int64))


def _nbytes(aval):
    return _size(aval.shape) * aval.dtype.itemsize


def _c_strides(shape):
    st, acc = [], 1
    for n in reversed(shape):
        st.append(acc)
        acc *= n
    return tuple(reversed(st))


def _lin(parts, off):
    """Source of off + sum(coef * name) for parts = [(coef, name)] (zero coefs dropped)."""
    terms = []
    for c, n in parts:
        if c == 0:
            continue
        if not n.isidentifier() and not n.isdigit():
            n = f"({n})"
        terms.append(n if c == 1 else f"{c} * {n}")
    if off or not terms:
        terms.append(str(off))
    s = " + ".join(terms)
    return s.replace("+ -", "- ")


# ---------------------------------------------------------------------------------------------
# Names and emission
# ---------------------------------------------------------------------------------------------

_RESERVED = set(keyword.kwlist) | set(dir(builtins))


class Emitter:
    def __init__(self, level=1):
        self.lines = []
        self.level = level

    def emit(self, text, comment=None):
        pad = "    " * self.level
        line = f"{pad}{text}"
        if comment:
            line = f"{line}  # {comment}"
        self.lines.append(line)

    @contextlib.contextmanager
    def block(self, header, comment=None):
        self.emit(header, comment)
        self.level += 1
        try:
            yield
        finally:
            self.level -= 1


class ModuleBuilder:
    """State shared by everything that goes into one generated module."""

    def __init__(self):
        self.namer = _Namer()
        self.helpers = {}                 # key -> source
        self.imports = set()
        self.extra_consts = []            # (name, array) added by rules
        self.counter = 0
        self.parallel = False
        self.consts = {}                  # (dtype, text) -> global name
        self.const_lines = []
        self.vtypes = {}                  # name in generated code -> ('arr'|'scalar', dtype)
        # set when the function calls a threaded library (BLAS): then no prange anywhere,
        # since two thread pools on the same cores spin against each other
        self.threaded_calls = False

    def fresh(self, prefix="_t"):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def name(self, v):
        n = self.namer(v)
        if n in _RESERVED or n.startswith("_"):
            n = n[0].upper() + n[1:]
        return n

    def kernel(self, name):
        """Use kernels.<name> in generated code (as _k_<name>)."""
        self.imports.add(name)
        return f"_k_{name}"

    def lit(self, value, dtype):
        """A literal of exactly `dtype`: plain text where Numba infers the dtype itself
        (bool, non-negative int64, float64), else a module-level constant (no call in loops)."""
        txt = format_literal(value, dtype)
        if np.dtype(dtype).kind == "c":     # a complex global would stop Numba's disk cache
            return txt
        if "(" not in txt or txt.startswith("-"):
            if "(" not in txt:
                return txt
        key = (np.dtype(dtype).str, txt)
        name = self.consts.get(key)
        if name is None:
            name = f"_C{len(self.consts)}_{_SHORT.get(np.dtype(dtype).name, 'x')}"
            self.consts[key] = name
            self.const_lines.append(f"{name} = {txt}")
        return name


# ---------------------------------------------------------------------------------------------
# Values in generated code
# ---------------------------------------------------------------------------------------------

class Binding:
    """What a Var is in generated code.

    kind 'arr': the value is stored in the 1-D array `flat` from element `off` on (every array
    in generated code is flat; shape-() values are 1-element arrays); `nd` caches an N-d view.
    kind 'scalar': a scalar expression `name`. kind 'lit': a literal `value`."""
    __slots__ = ("kind", "name", "value", "dtype", "flat", "off", "nd", "shape")

    def __init__(self, kind, name=None, value=None, dtype=None, flat=None, off=0, nd=None,
                 shape=None):
        self.kind, self.name, self.value, self.dtype = kind, name, value, dtype
        self.flat, self.off, self.nd, self.shape = flat, off, nd, shape


class _Env(dict):
    """Var -> Binding; records the type of every name bound (helper signatures need them)."""

    def __init__(self, mod):
        super().__init__()
        self.mod = mod

    def __setitem__(self, v, b):
        super().__setitem__(v, b)
        if b.kind == "arr":
            self.mod.vtypes[b.flat] = ("arr", np.dtype(v.aval.dtype))
        elif b.kind == "scalar":
            self.mod.vtypes[b.name] = ("scalar", np.dtype(v.aval.dtype))


class FunctionLowerer:
    """Lowers one jaxpr (the top-level one, or a nested one for control flow) into `em`."""

    def __init__(self, mod: ModuleBuilder, em: Emitter, jaxpr: Jaxpr, top=False):
        self.mod, self.em, self.jaxpr, self.top = mod, em, jaxpr, top
        self.env = _Env(mod)              # Var -> Binding
        self.alloc = None                 # Var -> (workspace name, element offset) or None
        self.out_alloc = {}               # Var -> pooled output argument name (flat)
        pw = _pointwise_rules()
        self.plan = fusion.plan(jaxpr, lambda e: e.prim.name in pw,
                                lambda e: e.prim.name in LOWERINGS)
        self.declared = set()
        self.base_level = em.level
        self.mark = None                  # (line index, level): where allocations go

    def set_mark(self):
        """Allocations made during the current step are inserted here (before its loops)."""
        self.mark = [len(self.em.lines), self.em.level]

    def emit_at_mark(self, text):
        if self.mark is None:
            self.em.emit(text)
            return
        idx, level = self.mark
        self.em.lines.insert(idx, "    " * level + text)
        self.mark[0] += 1

    # -- naming and values ----------------------------------------------------------------------
    def name(self, v):
        return self.mod.name(v)

    def lit(self, value, dtype):
        return self.mod.lit(value, dtype)

    def view_of(self, a):
        if isinstance(a, Literal):
            return View("lit", (), value=a.val, dtype=a.aval.dtype)
        vw = self.plan.views.get(a)
        return vw if vw is not None else fusion.identity_view(a)

    def declare(self, v):
        """Allocate the storage of a materialized Var (once); returns its Binding."""
        if v in self.declared:
            return self.env[v]
        self.declared.add(v)
        aval = v.aval
        n = max(_size(aval.shape), 1) if aval.ndim == 0 else _size(aval.shape)
        if v in self.out_alloc:
            name, off = self.out_alloc[v]
            b = Binding("arr", flat=name, off=off, shape=aval.shape, dtype=aval.dtype)
        elif self.alloc is not None and self.alloc(v) is not None:
            ws, off = self.alloc(v)
            b = Binding("arr", flat=ws, off=off, shape=aval.shape, dtype=aval.dtype)
        else:
            name = self.name(v)
            self.emit_at_mark(f"{name} = _np.empty({n}, {dtype_ctor(aval.dtype)})")
            b = Binding("arr", flat=name, off=0, shape=aval.shape, dtype=aval.dtype)
        self.env[v] = b
        return b

    def bind_flat(self, v, flat, off=0):
        """Bind Var `v` to the 1-D array `flat` (from element `off`)."""
        self.env[v] = Binding("arr", flat=flat, off=off, shape=v.aval.shape, dtype=v.aval.dtype)
        self.declared.add(v)

    def bind_array(self, v, nd_name):
        """Bind Var `v` to an existing N-d C-contiguous array `nd_name` (flattened here)."""
        aval = v.aval
        f = self.mod.fresh("_f")
        self.em.emit(f"{f} = {nd_name}.reshape({_size(aval.shape)})")
        b = Binding("arr", flat=f, off=0, nd=nd_name, shape=aval.shape, dtype=aval.dtype)
        self.env[v] = b
        self.declared.add(v)
        return b

    def flat_of(self, v):
        """(1-D array, element offset) of materialized Var `v` (scalars get a 1-element array)."""
        b = self.env[v]
        if b.kind != "arr":
            out = self.mod.fresh("_s")
            self.em.emit(f"{out} = _np.empty(1, {dtype_ctor(v.aval.dtype)})")
            self.em.emit(f"{out}[0] = {self.scalar_expr(v)}")
            return out, 0
        return b.flat, b.off

    def nd(self, v):
        """Name of an N-d C-contiguous array holding materialized Var `v`."""
        b = self.env[v]
        if b.kind == "arr" and b.nd is not None:
            return b.nd
        flat, off = self.flat_of(v)
        n = _size(v.aval.shape)
        name = self.mod.fresh("_v")
        whole = b.kind == "arr" and off == 0 and not flat.startswith(("_w", "_o", "_r"))
        src = flat if whole else f"{flat}[{off}:{off + n}]"
        if b.kind == "arr":
            self.emit_at_mark(f"{name} = {src}.reshape({tuple(v.aval.shape)!r})")
        else:
            self.em.emit(f"{name} = {src}.reshape({tuple(v.aval.shape)!r})")
        if b.kind == "arr" and self.mark is not None and self.mark[1] == self.base_level:
            b.nd = name
        return name

    def scalar_expr(self, v):
        b = self.env[v]
        if b.kind == "scalar":
            return b.name
        if b.kind == "lit":
            return self.lit(b.value, b.dtype)
        return f"{b.flat}[{b.off}]"

    def elem(self, v, parts, off=0):
        """Element of materialized Var `v` at flat index off + sum(coef * index)."""
        b = self.env[v]
        if b.kind != "arr":
            return self.scalar_expr(v)
        return f"{b.flat}[{_lin(parts, b.off + off)}]"

    def read_view(self, vw: View, idx, dtype=None):
        """Scalar expression reading `vw` at the index expressions `idx` (one per dim)."""
        if vw.kind == "lit":
            return self.lit(vw.value, dtype if dtype is not None else vw.dtype)
        if vw.kind == "iota":
            c, d, a = vw.terms[0]
            e = _lin([(a, idx[d])] if d is not None else [], c)
            return f"{dtype_ctor(vw.dtype)}({e})"
        v = vw.var
        if self.env[v].kind != "arr":
            return self.scalar_expr(v)
        cs = _c_strides(v.aval.shape)
        off = 0
        coefs = {}
        for (c, d, a), s in zip(vw.terms, cs):
            off += c * s
            if d is not None and a:
                coefs[idx[d]] = coefs.get(idx[d], 0) + a * s
        return self.elem(v, [(c, n) for n, c in coefs.items()], off)

    def flat_of_view(self, vw: View, dtype=None):
        """(1-D array, offset) holding the value of view `vw` (copied unless it is stored)."""
        if vw.kind == "var" and vw.is_identity() and self.env[vw.var].kind == "arr":
            return self.flat_of(vw.var)
        shape = vw.shape
        dt = dtype if dtype is not None else (vw.var.aval.dtype if vw.kind == "var"
                                              else vw.dtype)
        out = self.mod.fresh("_c")
        self.em.emit(f"{out} = _np.empty({_size(shape)}, {dtype_ctor(dt)})")
        self.emit_copy(vw, out, 0, shape, dt)
        return out, 0

    def array_of_view(self, vw: View, dtype=None):
        """Name of an N-d C-contiguous array holding the value described by view `vw`."""
        if vw.kind == "var" and vw.is_identity() and self.env[vw.var].kind == "arr":
            return self.nd(vw.var)
        flat, off = self.flat_of_view(vw, dtype)
        name = self.mod.fresh("_v")
        self.em.emit(f"{name} = {flat}.reshape({tuple(vw.shape)!r})")
        return name

    def emit_copy(self, vw: View, out, out_off, shape, dtype):
        """Write the value of view `vw` (of `shape`) into the 1-D array `out` from `out_off`."""
        nd = len(shape)
        n = _size(shape)
        if n == 0:
            return
        if vw.kind == "var" and vw.is_identity() and self.env[vw.var].kind == "arr":
            flat, off = self.flat_of(vw.var)
            self.em.emit(f"{out}[{out_off}:{out_off + n}] = {flat}[{off}:{off + n}]")
            return
        if vw.kind == "lit" or (vw.kind == "var" and self.env[vw.var].kind != "arr"):
            val = self.read_view(vw, [None] * nd, dtype)
            self.em.emit(f"{out}[{out_off}:{out_off + n}] = {val}")
            return
        dims = [d for d in range(nd) if shape[d] > 1]
        idx = [f"_i{d}" if shape[d] > 1 else "0" for d in range(nd)]
        val = self.read_view(vw, idx, dtype)
        for d in dims:
            self.em.emit(f"for _i{d} in {loop_range(shape[d])}:")
            self.em.level += 1
        cs = _c_strides(shape)
        self.em.emit(f"{out}[{_lin([(cs[d], idx[d]) for d in dims], out_off)}] = {val}")
        self.em.level -= len(dims)

    # -- top-level walk -------------------------------------------------------------------------
    def bind_inputs(self, names):
        """Inputs are 1-D arrays (`names`), or Bindings."""
        for v, n in zip(self.jaxpr.invars, names):
            if isinstance(n, Binding):
                self.env[v] = n
                self.declared.add(v)
            else:
                self.bind_flat(v, n)

    def bind_consts(self, names):
        for v, n in zip(self.jaxpr.constvars, names):
            self.bind_flat(v, n)

    def run(self):
        prof = self.top and _profiling()
        for i, step in enumerate(self.plan.steps):
            self.set_mark()
            if prof:
                self.em.emit(f"_pt = {self.mod.kernel('cycles')}()")
            if isinstance(step, Nest):
                self.emit_nest(step)
            elif isinstance(step, RowGroup):
                self.emit_row_group(step)
            elif isinstance(step, ScalarStep):
                self.emit_scalar_step(step)
            else:
                self.emit_opaque(step.eqn)
            if prof:
                self.em.emit(f"_prof[{i}] += {self.mod.kernel('cycles')}() - _pt")

    def outputs(self):
        return [self.view_of(a) for a in self.jaxpr.outvars]

    # -- scalar steps ---------------------------------------------------------------------------
    def src_expr_scalar(self, src):
        if src.kind == "lit":
            return self.lit(src.value, src.dtype)
        if src.kind in ("scalar", "local"):
            return self.scalar_expr(src.var)
        if src.kind == "buf":
            v = src.var
            cs = _c_strides(v.aval.shape)
            return self.elem(v, [], sum(c * s for (c, _, _), s in zip(src.terms, cs)))
        if src.kind == "iota":
            return f"{dtype_ctor(src.dtype)}({src.terms[0][0]})"
        raise AssertionError(src.kind)

    def emit_scalar_step(self, step):
        m = step.member
        args = [self.src_expr_scalar(s) for s in m.srcs]
        outs = self.pointwise(m.eqn, args, lambda text, c=None: self.em.emit(text, c), False)
        comment = _eqn_text(m.eqn, self.mod)
        for v, expr in zip(m.eqn.outvars, outs):
            nm = self.name(v) + "_"
            self.em.emit(f"{nm} = {expr}", comment)
            comment = None
            self.env[v] = Binding("scalar", nm)

    def pointwise(self, eqn, args, emit, exact, count=None):
        """Expressions for the outputs of pointwise `eqn` applied to scalar expressions."""
        rule = _pointwise_rules().get(eqn.prim.name)
        if rule is None:
            raise NotImplementedError(f"no Numba lowering for primitive '{eqn.prim.name}'")
        sctx = ScalarContext(self, eqn, emit, exact, count)
        out = rule(sctx, *args, **eqn.params)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    # -- opaque steps ---------------------------------------------------------------------------
    def emit_opaque(self, eqn):
        name = eqn.prim.name
        rule = LOWERINGS.get(name)
        if rule is None:
            raise NotImplementedError(
                f"no Numba lowering for primitive '{name}' (jit cannot compile it; register "
                "one with transforms.backend.numba.lowering.register_lowering)")
        self.em.emit(f"# {_eqn_text(eqn, self.mod)}")
        if _all_outputs_empty(eqn):
            # nothing to compute: rules may then assume every output has an element (their
            # loops treat a size-1 dim as index 0, and a size-0 dim must never reach them)
            for v in eqn.outvars:
                self.declare(v)
            return
        ctx = RuleContext(self, eqn)
        rule(ctx, eqn)
        for j, v in enumerate(eqn.outvars):
            if v not in self.env:
                ctx.out(j)

    # -- nests ----------------------------------------------------------------------------------
    def emit_row_group(self, group: RowGroup):
        for nest in group.nests:
            for v in nest.store:
                self.declare(v)
            for m in nest.reductions:
                self.declare(m.eqn.outvars[0])
        shapes = " then ".join(_shape_str(n.shape) for n in group.nests)
        self.em.emit(f"# fused rows: {len(group.nests)} loop nests run row by row over {shapes}")
        with self.em.block(f"for _r0 in {loop_range(group.rows)}:"):
            for nest in group.nests:
                names = ", ".join(dict.fromkeys(m.eqn.prim.name for m in nest.members))
                self.em.emit(f"# row of {_shape_str(nest.shape)}: {names}"[:100])
                NestWriter(self, nest, exact=False, count=None, row=True).write()

    def emit_nest(self, nest: Nest):
        # (an empty nest has no arguments to check: its fast and exact versions are empty)
        sin_members = [m for m in nest.members
                       if m.eqn.prim.name in ("sin", "cos") and
                       m.eqn.outvars[0].aval.dtype == np.float32] if nest.size else []
        for v in nest.store:
            self.declare(v)
        for m in nest.reductions:
            v = m.eqn.outvars[0]
            if v.aval.shape != ():
                self.declare(v)
        names = ", ".join(dict.fromkeys(m.eqn.prim.name for m in nest.members))
        title = f"fused loop over {_shape_str(nest.shape)}: {names}"
        if len(title) > 96:
            title = title[:93] + "..."
        self.em.emit(f"# {title}")
        if sin_members:
            # a quick pass counts the arguments beyond the fast kernels' range (a reduction
            # inside the main loop would slow it down far more); then one of two versions
            cnt = self.mod.fresh("_nbig")
            self.em.emit(f"{cnt} = 0")
            NestWriter(self, nest, exact=False, count=cnt, check=True).write()
            with self.em.block(f"if {cnt} > 0:", "arguments beyond the fast sin/cos range"):
                NestWriter(self, nest, exact=True, count=None).write()
            with self.em.block("else:"):
                NestWriter(self, nest, exact=False, count=None).write()
        else:
            # written aside: identical nests become one shared helper function (outline())
            tmp = Emitter(self.em.level)
            nw = NestWriter(self, nest, exact=False, count=None)
            nw.em = tmp
            nw.write()
            scalars = [(self.name(m.eqn.outvars[0]) + "_", m.eqn.outvars[0].aval.dtype)
                       for m in nest.reductions if m.eqn.outvars[0].aval.shape == ()]
            self.em.lines.append(NestBlock(tmp.lines, self.em.level, scalars,
                                           [_eqn_text(m.eqn, self.mod) for m in nest.members],
                                           len(nw.slice_lines)))
        for m in nest.reductions:
            v = m.eqn.outvars[0]
            if v.aval.shape == ():
                self.env[v] = Binding("scalar", self.name(v) + "_")


class NestBlock:
    """The code of one fused loop nest, kept aside until all nests are known: nests with the
    same code up to names and integer constants are emitted once, as a helper function."""

    def __init__(self, lines, level, scalar_outs, eqn_texts, n_slices=0):
        self.lines, self.level, self.scalar_outs = lines, level, scalar_outs
        self.eqn_texts = eqn_texts
        self.n_slices = n_slices      # leading `name = array[a:b]` lines: arguments if outlined


_KEEP_NAMES = set(keyword.kwlist) | {"range", "int", "min", "max", "abs", "float", "bool",
                                      "_np", "_math", "_prange", "len", "_numba",
                                      "complex"}


def _templatize(block: NestBlock):
    """(key, body lines, free names, int constants): the block's code with its free names
    (arrays, scalars from outside) and integer constants replaced by parameters."""
    import io
    import tokenize
    pad = "    " * block.level
    args = {}                     # slice name -> its expression (passed by the caller)
    for line in block.lines[:block.n_slices]:
        name, expr = line.strip().split(" = ", 1)
        args[name] = expr
    text = "\n".join(line[len(pad):] if line.startswith(pad) else line.lstrip()
                     for line in block.lines[block.n_slices:]) + "\n"
    text = text.replace(" + _z)", ")")          # a helper's loop bounds are run-time values
    toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    local = set()
    for i, t in enumerate(toks):
        if t.type == tokenize.NAME and i + 1 < len(toks) and toks[i + 1].string in ("=", "+=") \
                and (i == 0 or toks[i - 1].type in (tokenize.INDENT, tokenize.DEDENT,
                                                     tokenize.NEWLINE, tokenize.NL)):
            local.add(t.string)
        if t.type == tokenize.NAME and t.string == "for" and i + 1 < len(toks):
            local.add(toks[i + 1].string)
    # integers that become parameters: loop bounds (inside range(...)) and slice bounds
    # (inside [a:b]); strides and offsets within index expressions stay literal
    param_ctx = set()
    flags = []          # one bool per open bracket: integers inside it are parameters
    for i, t in enumerate(toks):
        if t.type != tokenize.OP:
            if flags and flags[-1]:
                param_ctx.add(i)
            continue
        if t.string in ("(", "["):
            if t.string == "(":
                flag = (i > 0 and toks[i - 1].string in ("range", "_prange")) or \
                    bool(flags and flags[-1])
            else:
                flag, depth = False, 0
                for t2 in toks[i + 1:]:
                    if t2.type != tokenize.OP:
                        continue
                    if t2.string in ("(", "["):
                        depth += 1
                    elif t2.string in (")", "]"):
                        if depth == 0:
                            break
                        depth -= 1
                    elif t2.string == ":" and depth == 0:
                        flag = True
                        break
            flags.append(flag)
        elif t.string in (")", "]") and flags:
            flags.pop()
    free, ints, ren = [], [], {}
    repl = []           # (row, col_start, col_end, new)
    for i, t in enumerate(toks):
        if t.type == tokenize.NAME:
            n = t.string
            if n in _KEEP_NAMES or n.startswith(("_k_", "_C")) or n.startswith("_i") or \
                    (i and toks[i - 1].string == "."):
                continue
            if n in local:
                new = ren.setdefault(n, f"v{len(ren)}_")
            else:
                if n not in free:
                    free.append(n)
                new = f"p{free.index(n)}"
            repl.append((t.start[0], t.start[1], t.end[1], new))
        elif t.type == tokenize.NUMBER and t.string.isdigit() and i in param_ctx:
            repl.append((t.start[0], t.start[1], t.end[1], f"n{len(ints)}"))
            ints.append(int(t.string))
    lines = text.split("\n")
    for row, c0, c1, new in sorted(repl, key=lambda r: (r[0], -r[1])):
        ln = lines[row - 1]
        lines[row - 1] = ln[:c0] + new + ln[c1:]
    body = [ln for ln in lines if ln.strip()]
    key = "\n".join(ln.split("  #")[0].rstrip() for ln in body)
    outs = [ren.get(n, n) for n, _ in block.scalar_outs]
    return key, body, free, ints, outs, args


def outline(em: Emitter, mod: ModuleBuilder):
    """Resolve the NestBlocks of `em`: nests whose code repeats become one helper each."""
    blocks = [b for b in em.lines if isinstance(b, NestBlock)]
    info = {}
    for b in blocks:
        key, body, free, ints, outs, args = _templatize(b)
        types = tuple(mod.vtypes[args[n].split("[")[0]] if n in args else mod.vtypes[n]
                      for n in free)                     # same code, other dtypes: another
        info[id(b)] = (key + repr(types), body, free, ints, outs, args, types)
    counts = {}
    for b in blocks:
        counts[info[id(b)][0]] = counts.get(info[id(b)][0], 0) + 1
    names = {}
    out = []
    for item in em.lines:
        if not isinstance(item, NestBlock):
            out.append(item)
            continue
        key, body, free, ints, outs, args, types_ = info[id(item)]
        # repeated nests are compiled once (compile time grows faster than the size of a
        # function, so even a twice-used nest is cheaper as a helper)
        if counts[key] < 2:
            out += item.lines
            continue
        h = names.get(key)
        if h is None:
            h = names[key] = f"_h{len(names)}"
            params = [f"p{i}" for i in range(len(free))] + [f"n{i}" for i in range(len(ints))]
            # helpers are only called from compiled code: no Python or C-callable wrappers
            # (each wrapper is more LLVM to build and optimise: ~0.1 s of cold compile)
            flags = ("cache=True, nogil=True, error_model='numpy', no_cpython_wrapper=True, "
                     "no_cfunc_wrapper=True")
            if "_prange" in key:
                flags += ", parallel=True"
            types = []
            for kind, dt in types_:
                types.append(f"_t.Array({numba_type_name(dt)}, 1, 'C')" if kind == "arr"
                             else numba_type_name(dt))
            types += ["_t.int64"] * len(ints)
            rt = [numba_type_name(dt) for _, dt in item.scalar_outs]
            ret = f"_t.Tuple(({', '.join(rt)},))" if rt else "_t.none"
            sig = f"{ret}({', '.join(types)})"
            src = [f"@_njit({sig}, {flags})", f"def {h}({', '.join(params)}):",
                   f'    """A fused loop nest used {counts[key]} times '
                   '(comments: its first use)."""']
            src += ["    " + ln for ln in body]
            if outs:
                src.append(f"    return ({', '.join(outs)},)")
            mod.helpers[key] = "\n".join(src)
        pad = "    " * item.level
        for t in item.eqn_texts:
            out.append(f"{pad}# {t}")
        call = f"{h}({', '.join([args.get(n, n) for n in free] + [str(i) for i in ints])})"
        if item.scalar_outs:
            call = f"{', '.join(n for n, _ in item.scalar_outs)}, = {call}"
        out.append(pad + call)
    em.lines = out
    return any("_prange" in ln for ln in out)


def _sub_jaxprs(eqn):
    """The Jaxprs nested in `eqn`'s parameters (control-flow bodies, branches)."""
    for p in eqn.params.values():
        for sub in (p if isinstance(p, (tuple, list)) else (p,)):
            if isinstance(sub, ClosedJaxpr):
                yield sub.jaxpr
            elif isinstance(sub, Jaxpr):
                yield sub


def _all_outputs_empty(eqn):
    """Whether `eqn` computes nothing: it has outputs, all of them of size 0, and running it
    has no other effect (no effectful primitive, no nested jaxpr that might hold one)."""
    from ...ir import EFFECTFUL
    if not eqn.outvars or any(_size(v.aval.shape) for v in eqn.outvars):
        return False
    return eqn.prim.name not in EFFECTFUL and next(_sub_jaxprs(eqn), None) is None


def _shape_str(shape):
    return "[" + ",".join(map(str, shape)) + "]"


def _eqn_text(eqn, mod):
    """The equation in IR syntax (as in `pp_jaxpr`), for comments."""
    namer = mod.namer
    lhs = " ".join(f"{namer(v)}:{v.aval.str_short()}" for v in eqn.outvars)
    params = []
    for k, v in eqn.params.items():
        if isinstance(v, (ClosedJaxpr, Jaxpr)) or (
                isinstance(v, (tuple, list)) and v and
                all(isinstance(b, (ClosedJaxpr, Jaxpr)) for b in v)):
            params.append(f"{k}={{...}}")
        elif isinstance(v, np.dtype):
            params.append(f"{k}={v.name}")
        elif callable(v) and not isinstance(v, type):
            params.append(f"{k}={getattr(v, '__name__', type(v).__name__)}")
        else:
            params.append(f"{k}={v}")
    p = f"[{' '.join(params)}]" if params else ""
    txt = f"{lhs} = {eqn.prim.name}{p} {' '.join(namer(a) for a in eqn.invars)}".rstrip()
    return txt if len(txt) <= 140 else txt[:137] + "..."


def _reduce_init(mod, name, dtype):
    dtype = np.dtype(dtype)
    if name == "reduce_sum":
        return mod.lit(0, dtype)
    if name == "reduce_prod":
        return mod.lit(1, dtype)
    if name == "reduce_and":
        return "True"
    if name == "reduce_or":
        return "False"
    if dtype == np.bool_:
        return "False" if name == "reduce_max" else "True"
    if dtype.kind == "f":
        return mod.lit(-np.inf if name == "reduce_max" else np.inf, dtype)
    if dtype.kind == "c":
        raise NotImplementedError(f"jit: {name} of complex values is not supported by the "
                                  f"Numba backend")
    info = np.iinfo(dtype)
    return mod.lit(info.min if name == "reduce_max" else info.max, dtype)


def _reduce_combine(mod, name, acc, v, dtype):
    dtype = np.dtype(dtype)
    small_int = dtype.kind in "iu" and dtype not in (np.int64, np.uint64)
    if name == "reduce_sum":
        if dtype == np.bool_:
            return f"({acc} or {v})"
        e = f"{acc} + {v}"
        return f"{dtype_ctor(dtype)}({e})" if small_int else e
    if name == "reduce_prod":
        if dtype == np.bool_:
            return f"({acc} and {v})"
        e = f"{acc} * {v}"
        return f"{dtype_ctor(dtype)}({e})" if small_int else e
    if name == "reduce_and" or (name == "reduce_min" and dtype == np.bool_):
        return f"({acc} and {v})"
    if name == "reduce_or" or (name == "reduce_max" and dtype == np.bool_):
        return f"({acc} or {v})"
    if dtype.kind == "f":
        return f"{mod.kernel('maxf' if name == 'reduce_max' else 'minf')}({acc}, {v})"
    return f"({acc} if {acc} {'>=' if name == 'reduce_max' else '<='} {v} else {v})"


class NestWriter:
    """Writes one fused loop nest.

    The loop dims are the nest's non-unit dims, adjacent dims merged when every access walks
    them contiguously (so same-shape elementwise work is one flat loop). Every buffer is read
    and written through flat element offsets. Statements are placed at the shallowest loop
    depth their operands allow (hoisting loop invariants such as broadcast rows). Reductions
    over trailing dims accumulate in a scalar ("row form"); otherwise into the output buffer."""

    def __init__(self, fl: FunctionLowerer, nest: Nest, exact, count, check=False, row=False):
        self.fl, self.nest, self.exact, self.count = fl, nest, exact, count
        self.mod, self.em = fl.mod, fl.em
        self.check = check      # only count the float32 sin/cos arguments beyond the fast range
        self.row = row          # inside a RowGroup: dim 0 is the enclosing loop's `_r0`

    def write(self):
        fl, nest = self.fl, self.nest
        S = nest.shape
        nd = len(S)
        self.slice_lines = []
        if nest.size == 0:
            self._write_empty()
            return
        loop_dims = [d for d in range(1 if self.row else 0, nd) if S[d] > 1]
        accesses = []
        iota_dims = set()
        for m in nest.members:
            for s in m.srcs:
                if s.kind == "buf":
                    accesses.append(self._strides(s.var.aval.shape, s.terms)[1])
                elif s.kind == "iota" and s.terms[0][1] is not None:
                    iota_dims.add(s.terms[0][1])
        if nest.store:
            accesses.append(_c_strides(S))
        red_axes = []
        for m in nest.reductions:
            ax = set(m.reduce_axes)
            red_axes.append(ax)
            ost = _c_strides([S[d] for d in range(nd) if d not in ax])
            st, j = [], 0
            for d in range(nd):
                if d in ax:
                    st.append(0)
                else:
                    st.append(ost[j])
                    j += 1
            accesses.append(tuple(st))
        groups = []
        for d in loop_dims:
            if groups and d not in iota_dims and groups[-1][-1] not in iota_dims and all(
                    a[groups[-1][-1]] == a[d] * S[d] for a in accesses):
                groups[-1].append(d)
            else:
                groups.append([d])
        self.groups = groups
        self.group_of = {d: gi for gi, g in enumerate(groups) for d in g}
        self.sizes = [_size([S[d] for d in g]) for g in groups]
        ng = len(groups)
        self.row_form, self.K = True, ng
        if nest.reductions:
            red_groups = [frozenset(gi for gi, g in enumerate(groups) if g[0] in ax)
                          for ax in red_axes]
            first = red_groups[0]
            k = ng - len(first)
            if all(r == first for r in red_groups) and first == frozenset(range(k, ng)):
                self.K = k
            else:
                self.row_form = False
        self.pre = [[] for _ in range(ng + 1)]
        self.post = [[] for _ in range(ng + 1)]
        self.slices, self.slice_lines = {}, []
        self.local_expr, self.local_depth, self.loaded = {}, {}, {}
        par = (nest.size >= _parallel_min() and ng > 0 and not self.mod.threaded_calls and
               not self.row and
               (not nest.reductions or (self.row_form and self.K > 0) or
                (not self.row_form and all(groups[0][0] not in ax for ax in red_axes))))
        if par:
            self.mod.parallel = True
        members = nest.members
        if self.check:
            members = self._check_members()
        for m in members:
            if m.reduce_axes is not None:
                self._reduction(m)
            elif self.check and m.eqn.prim.name in ("sin", "cos"):
                e, d = self._src(m.srcs[0])
                self.pre[d].append(f"{self.count} += {self.mod.kernel('sincos_big_f32')}({e})")
            else:
                self._pointwise(m)
        ident = tuple((0, d, 1) for d in range(nd))
        for v in (nest.store if not self.check else ()):
            self.pre[ng].append(f"{self._index(v, ident)} = {self.local_expr[v]}")
        inits = []
        if not self.row_form and not self.check:
            for m in nest.reductions:
                v = m.eqn.outvars[0]
                if v.aval.shape == ():
                    continue
                init = _reduce_init(self.mod, m.eqn.prim.name, v.aval.dtype)
                buf = self._buffer(v)
                if buf is None:
                    b = fl.env[v]
                    buf = f"{b.flat}[{b.off}:{b.off + _size(v.aval.shape)}]"
                    inits.append(f"{buf} = {init}")
                else:
                    inits.append(f"{buf}[:] = {init}")
        base = self.em.level
        for line in self.slice_lines + inits + self.pre[0]:
            self.em.emit(line)

        for gi in range(ng):
            rng = f"_prange({self.sizes[gi]})" if (par and gi == 0) else \
                loop_range(self.sizes[gi])
            self.em.emit(f"for _i{gi} in {rng}:")
            self.em.level += 1
            for line in self.pre[gi + 1]:
                self.em.emit(line)
        # stores after the innermost level: reductions whose reduced axes all have size 1
        # (K == ng) finish there; without this their results were never written
        for line in self.post[ng]:
            self.em.emit(line)
        for gi in range(ng, 0, -1):
            self.em.level -= 1
            for line in self.post[gi - 1]:
                self.em.emit(line)
        for line in self.post[ng] if ng == 0 else ():
            self.em.emit(line)
        assert self.em.level == base

    def _write_empty(self):
        """A nest over zero elements: no iterations; reductions are their initial values."""
        if self.check:
            return
        for m in self.nest.reductions:
            v = m.eqn.outvars[0]
            init = _reduce_init(self.mod, m.eqn.prim.name, v.aval.dtype)
            if v.aval.shape == ():
                self.em.emit(f"{self.fl.name(v)}_ = {init}")
            else:
                b = self.fl.env[v]
                n = _size(v.aval.shape)
                if n:
                    self.em.emit(f"{b.flat}[{b.off}:{b.off + n}] = {init}")

    # -- helpers ------------------------------------------------------------------------------
    def _check_members(self):
        """The float32 sin/cos members and the members their arguments depend on."""
        need = set()
        todo = [m for m in self.nest.members if m.eqn.prim.name in ("sin", "cos")
                and m.eqn.outvars[0].aval.dtype == np.float32]
        while todo:
            m = todo.pop()
            if id(m) in need:
                continue
            need.add(id(m))
            for s in m.srcs[:1] if m.eqn.prim.name in ("sin", "cos") else m.srcs:
                if s.kind == "local":
                    todo.append(self.nest.locals[s.var])
        return [m for m in self.nest.members if id(m) in need]

    def _strides(self, shape, terms):
        """(flat offset, flat stride per nest dim) of a buffer of `shape` read through `terms`."""
        cs = _c_strides(shape)
        st = [0] * len(self.nest.shape)
        off = 0
        for (c, d, a), s in zip(terms, cs):
            off += c * s
            if d is not None and self.nest.shape[d] > 1:
                st[d] += a * s
        return off, tuple(st)

    def _parts(self, st):
        parts = [(st[g[-1]], f"_i{gi}") for gi, g in enumerate(self.groups)]
        if self.row and st:
            parts.insert(0, (st[0], "_r0"))
        return parts

    def _index(self, v, terms):
        off, st = self._strides(v.aval.shape, terms)
        return self._elem(v, self._parts(st), off)

    def _buffer(self, v):
        """The array holding Var `v` from element 0: its own array, or a slice of a shared one
        (a workspace or output arena) taken once before the loops. Loops then index every
        buffer from 0, which keeps index arithmetic simple and lets LLVM tell buffers apart
        (so the loops vectorize), and makes nests that only differ in where their buffers
        live share one helper function."""
        b = self.fl.env[v]
        if b.off == 0 and not b.flat.startswith(("_w", "_r", "_o")):
            return b.flat
        if self.row:
            return None           # inside a row loop: offsets (no slices per row)
        name = self.slices.get(v)
        if name is None:
            name = self.slices[v] = self.mod.fresh("_s")
            n = max(_size(v.aval.shape), 1)
            self.slice_lines.append(f"{name} = {b.flat}[{b.off}:{b.off + n}]")
        return name

    def _elem(self, v, parts, off):
        b = self.fl.env[v]
        if b.kind != "arr":
            return self.fl.scalar_expr(v)
        buf = self._buffer(v)
        if buf is None:
            return f"{b.flat}[{_lin(parts, b.off + off)}]"
        return f"{buf}[{_lin(parts, off)}]"

    def _depth(self, st):
        dep = 0
        for gi, g in enumerate(self.groups):
            if st[g[-1]]:
                dep = gi + 1
        return dep

    def _src(self, s):
        """(expression, depth) of a member operand."""
        fl = self.fl
        if s.kind == "lit":
            return fl.lit(s.value, s.dtype), 0
        if s.kind == "scalar":
            return fl.scalar_expr(s.var), 0
        if s.kind == "local":
            return self.local_expr[s.var], self.local_depth[s.var]
        if s.kind == "iota":
            c, d, a = s.terms[0]
            if d is None or self.nest.shape[d] == 1:
                return f"{dtype_ctor(s.dtype)}({c})", 0
            if self.row and d == 0:
                return f"{dtype_ctor(s.dtype)}({_lin([(a, '_r0')], c)})", 0
            gi = self.group_of[d]
            return f"{dtype_ctor(s.dtype)}({_lin([(a, f'_i{gi}')], c)})", gi + 1
        b = fl.env[s.var]
        if b.kind != "arr":
            return fl.scalar_expr(s.var), 0
        key = (s.var, s.terms)
        hit = self.loaded.get(key)
        if hit is None:
            off, st = self._strides(s.var.aval.shape, s.terms)
            hit = (self._elem(s.var, self._parts(st), off), self._depth(st))
            self.loaded[key] = hit
        return hit

    def _pointwise(self, m):
        args, depth = [], 0
        for s in m.srcs:
            e, d = self._src(s)
            args.append(e)
            depth = max(depth, d)
        lines = self.pre[depth]

        def emit(text, comment=None):
            lines.append(text if not comment else f"{text}  # {comment}")
        outs = self.fl.pointwise(m.eqn, args, emit, self.exact, self.count)
        comment = _eqn_text(m.eqn, self.mod)
        for v, expr in zip(m.eqn.outvars, outs):
            nm = self.fl.name(v) + "_"
            emit(f"{nm} = {expr}", comment)
            comment = None
            self.local_expr[v] = nm
            self.local_depth[v] = depth

    def _reduction(self, m):
        e, _ = self._src(m.srcs[0])
        v = m.eqn.outvars[0]
        name = m.eqn.prim.name
        dt = v.aval.dtype
        ng = len(self.groups)
        comment = _eqn_text(m.eqn, self.mod)
        nd = len(self.nest.shape)
        ax = set(m.reduce_axes)
        kept = [d for d in range(nd) if d not in ax]
        terms = [(0, d, 1) for d in kept]
        if self.row_form or v.aval.shape == ():
            # a scalar accumulator (a full reduction accumulates in any loop order)
            acc = self.fl.name(v) + "_"
            k = self.K if self.row_form else 0
            self.pre[k].insert(0, f"{acc} = {_reduce_init(self.mod, name, dt)}")
            comb = _reduce_combine(self.mod, name, acc, e, dt)
            self.pre[ng].append(f"{acc} = {comb}  # {comment}")
            if v.aval.shape != ():
                self.post[k].append(f"{self._index(v, terms)} = {acc}")
        else:
            ix = self._index(v, terms)
            self.pre[ng].append(f"{ix} = {_reduce_combine(self.mod, name, ix, e, dt)}  # {comment}")


class ScalarContext:
    """Passed to pointwise rules: `rule(ctx, *arg_exprs, **params) -> expr (or list)`."""

    def __init__(self, fl, eqn, emit, exact, count):
        self.fl, self.eqn, self._emit, self.exact, self._count = fl, eqn, emit, exact, count
        self.mod = fl.mod

    @property
    def in_dtypes(self):
        return [a.aval.dtype for a in self.eqn.invars]

    @property
    def out_dtype(self):
        return self.eqn.outvars[0].aval.dtype

    def kernel(self, name):
        return self.mod.kernel(name)

    def let(self, expr):
        """Bind `expr` to a fresh temporary (emitted before the rule's own line)."""
        t = self.mod.fresh("_t")
        self._emit(f"{t} = {expr}")
        return t

    def count_big(self, expr):
        """In the fast pass of a nest, add `expr` (0/1) to the nest's slow-path counter."""
        if self._count is not None:
            self._emit(f"{self._count} += {expr}")

    def lit(self, value, dtype):
        return self.mod.lit(value, dtype)

    @staticmethod
    def cast(expr, dtype):
        return f"{dtype_ctor(dtype)}({expr})"


class RuleContext:
    """Passed to opaque lowering rules (see the module docstring)."""

    def __init__(self, fl: FunctionLowerer, eqn):
        self.fl, self.eqn, self.mod, self.em = fl, eqn, fl.mod, fl.em

    def emit(self, line, comment=None):
        self.em.emit(line, comment)

    def block(self, header, comment=None):
        return self.em.block(header, comment)

    def fresh(self, prefix="_t"):
        return self.mod.fresh(prefix)

    @staticmethod
    def range(n, start=0):
        """`range(...)` source for a loop of static bounds (small ones get a run-time bound so
        that LLVM does not unroll them: see SMALL_LOOP)."""
        return loop_range(n, start)

    def view(self, i):
        return self.fl.view_of(self.eqn.invars[i])

    def aval(self, i):
        return self.eqn.invars[i].aval

    def array(self, i):
        """Name of an N-d C-contiguous array holding operand i (a view where possible)."""
        a = self.eqn.invars[i]
        return self.fl.array_of_view(self.fl.view_of(a), a.aval.dtype)

    def flat(self, i):
        """(1-D array name, element offset) holding operand i in C order (copied if it is a
        non-trivial view)."""
        a = self.eqn.invars[i]
        return self.fl.flat_of_view(self.fl.view_of(a), a.aval.dtype)

    def scalar(self, i):
        """Scalar expression of shape-() operand i."""
        a = self.eqn.invars[i]
        return self.fl.read_view(self.fl.view_of(a), [], a.aval.dtype)

    def read(self, i, idx):
        """Scalar expression of operand i at index expressions `idx` (one per dim)."""
        a = self.eqn.invars[i]
        return self.fl.read_view(self.fl.view_of(a), list(idx), a.aval.dtype)

    @staticmethod
    def index(shape, idx, off=0):
        """Flat C-order index expression of `idx` (expressions, one per dim) in `shape`."""
        cs = _c_strides(shape)
        return _lin([(s, ix) for s, ix, n in zip(cs, idx, shape) if n > 1], off)

    def out_flat(self, j):
        """(1-D array name, element offset) of output j's storage (allocated here)."""
        v = self.eqn.outvars[j]
        b = self.fl.declare(v)
        return b.flat, b.off

    def out_elem(self, j, idx):
        """Element of output j at index expressions `idx` (an assignable expression)."""
        v = self.eqn.outvars[j]
        b = self.fl.declare(v)
        return f"{b.flat}[{self.index(v.aval.shape, idx, b.off)}]"

    def copy_into(self, i, j):
        """Emit code writing the value of operand i into output j (same size)."""
        a = self.eqn.invars[i]
        flat, off = self.out_flat(j)
        self.fl.emit_copy(self.fl.view_of(a), flat, off, a.aval.shape, a.aval.dtype)

    def out(self, j):
        """Name of an N-d array to write output j into (a view of its storage)."""
        v = self.eqn.outvars[j]
        self.fl.declare(v)
        return self.fl.nd(v)

    def set_out(self, j, name):
        """Output j is the existing N-d C-contiguous array `name`."""
        self.fl.bind_array(self.eqn.outvars[j], name)

    def set_out_flat(self, j, flat, off=0):
        """Output j is stored in the 1-D array `flat` from element `off`."""
        self.fl.bind_flat(self.eqn.outvars[j], flat, off)

    def alias_out(self, j, i):
        """Output j is operand i with output j's shape (a reshape: no copy if stored)."""
        a = self.eqn.invars[i]
        flat, off = self.fl.flat_of_view(self.fl.view_of(a), a.aval.dtype)
        self.fl.bind_flat(self.eqn.outvars[j], flat, off)

    def set_out_scalar(self, j, expr):
        v = self.eqn.outvars[j]
        nm = self.fl.name(v) + "_"
        self.emit(f"{nm} = {expr}")
        self.fl.declared.add(v)
        self.fl.env[v] = Binding("scalar", nm)

    def empty(self, shape, dtype):
        t = self.fresh("_w")
        self.emit(f"{t} = _np.empty({tuple(shape)!r}, {dtype_ctor(dtype)})")
        return t

    def literal(self, value, dtype):
        return self.mod.lit(value, dtype)

    @staticmethod
    def dtype(dtype):
        return dtype_ctor(dtype)

    @staticmethod
    def numba_type(dtype):
        return numba_type_name(dtype)

    def kernel(self, name):
        return self.mod.kernel(name)

    def add_helper(self, key, source):
        """Add module-level source once (e.g. an `@_njit(cache=True)` helper function)."""
        self.mod.helpers.setdefault(key, source)

    def const(self, array):
        """Name of an extra argument holding a constant array (flattened to 1-D)."""
        name = self.mod.fresh("_k")
        self.mod.extra_consts.append((name, _const_array(array)))
        return name

    def lower_jaxpr(self, closed, arg_names):
        """Lower `closed` (a ClosedJaxpr or Jaxpr) inline here, its inputs bound to the N-d
        arrays `arg_names`; returns its outputs as names of freshly allocated N-d arrays."""
        if isinstance(closed, ClosedJaxpr):
            jaxpr, consts = closed.jaxpr, closed.consts
        else:
            jaxpr, consts = closed, []
        jaxpr, consts = fusion.prepare(ClosedJaxpr(jaxpr, consts),
                                       has_rule=lambda n: n in LOWERINGS)
        sub = FunctionLowerer(self.mod, self.em, jaxpr)
        flat_args = []
        for v, n in zip(jaxpr.invars, arg_names):
            f = self.fresh("_f")
            self.emit(f"{f} = {n}.reshape({_size(v.aval.shape)})")
            flat_args.append(f)
        sub.bind_inputs(flat_args)
        sub.bind_consts([self.const(c) for c in consts])
        sub.run()
        outs = []
        for a, vw in zip(jaxpr.outvars, sub.outputs()):
            aval = a.aval
            f = self.fresh("_r")
            self.emit(f"{f} = _np.empty({_size(aval.shape)}, {dtype_ctor(aval.dtype)})")
            sub.emit_copy(vw, f, 0, aval.shape, aval.dtype)
            out = self.fresh("_r")
            self.emit(f"{out} = {f}.reshape({tuple(aval.shape)!r})")
            outs.append(out)
        return outs


# ---------------------------------------------------------------------------------------------
# The whole module
# ---------------------------------------------------------------------------------------------

class Lowered:
    """The generated module source and what the runtime needs to call it."""

    def __init__(self, source, text, key, consts, in_avals, out_avals, workspace, parallel):
        self.source, self.text, self.key = source, text, key
        self.consts = consts
        self.in_avals, self.out_avals = in_avals, out_avals
        self.workspace = workspace          # ((dtype name, elements), ...) of the scratch arrays
        self.parallel = parallel

    def as_text(self):
        return self.text


def _plan_arena(fl: FunctionLowerer, outputs_set):
    """First-fit element offsets in one workspace per dtype for intermediate buffers."""
    steps = fl.plan.steps
    defs, last = {}, {}
    alias = {}

    def root(v):
        while v in alias:
            v = alias[v]
        return v

    def use(v, i):
        r = root(v)
        last[r] = max(last.get(r, -1), i)

    for i, st in enumerate(steps):
        for n in (st.nests if isinstance(st, RowGroup) else [st] if isinstance(st, Nest) else []):
            for m in n.members:
                for s in m.srcs:
                    if s.kind == "buf":
                        use(s.var, i)
            for v in n.store:
                defs[v] = i
            for m in n.reductions:
                v = m.eqn.outvars[0]
                if v.aval.shape != ():
                    defs[v] = i
        if isinstance(st, (Nest, RowGroup)):
            continue
        elif isinstance(st, ScalarStep):
            for s in st.member.srcs:
                if s.kind == "buf":
                    use(s.var, i)
        else:
            for a in st.eqn.invars:
                vw = fl.view_of(a)
                if vw.kind == "var":
                    use(vw.var, i)
            if st.eqn.prim.name == "reshape":
                vw = fl.view_of(st.eqn.invars[0])
                if vw.kind == "var" and vw.is_identity():
                    alias[st.eqn.outvars[0]] = vw.var
                    continue
            for v in st.eqn.outvars:
                defs[v] = i
    for a in fl.jaxpr.outvars:        # outputs (and what output views read) live to the end
        vw = fl.view_of(a)
        if vw.kind == "var":
            last[root(vw.var)] = len(steps) + 1
    out_roots = {root(v) for v in outputs_set}
    offsets = {}
    active = {}
    for v in sorted(defs, key=lambda v: defs[v]):
        if v in out_roots:
            continue
        n = max(_size(v.aval.shape), 1)
        dn = v.aval.dtype.name
        start = defs[v]
        act = [a for a in active.get(dn, []) if a[2] >= start]
        size = (n + 15) // 16 * 16
        off = 0
        for a0, a1, _ in sorted(act):
            if off + size <= a0:
                break
            off = max(off, a1)
        act.append((off, off + size, last.get(v, start)))
        active[dn] = act
        offsets[v] = off
    return offsets, None, out_roots


def _const_array(c):
    """A constant as the compiled signature wants it: C-contiguous, writeable, aligned, in
    the machine's byte order (signatures are typed by dtype name, not byte order)."""
    c = np.asarray(c)
    if not c.dtype.isnative:
        c = c.astype(c.dtype.newbyteorder("="))
    if not (c.flags.c_contiguous and c.flags.writeable and c.flags.aligned):
        c = np.array(c, order="C", copy=True)
    return c


def _ws_name(dtype):
    return "_w" + _SHORT.get(np.dtype(dtype).name, np.dtype(dtype).name)


def _donations(fl, jaxpr, out_roots, donate):
    """Outputs that may be written in place into donated inputs: {output Var: input index}.

    Allowed when the output is stored by a loop nest that reads the input only at the same
    index (every element is read before it is overwritten, in the same iteration), no later
    step reads the input, and no output is the input or a view of it."""
    if not donate:
        return {}
    steps = fl.plan.steps
    producer = {}
    for i, st in enumerate(steps):
        if isinstance(st, Nest):
            for v in st.store:
                producer[v] = i
    last_read, bad = {}, set()
    for i, st in enumerate(steps):
        reads = []
        if isinstance(st, Nest):
            for m in st.members:
                for src in m.srcs:
                    if src.kind == "buf":
                        reads.append(src.var)
                        ident = all((c == 0 and d == k and a == 1) for k, (c, d, a)
                                    in enumerate(src.terms)) and \
                            src.var.aval.shape == st.shape
                        if not ident:
                            bad.add((src.var, i))
        elif isinstance(st, ScalarStep):
            reads = [src.var for src in st.member.srcs if src.kind == "buf"]
        elif isinstance(st, RowGroup):
            reads = [src.var for n in st.nests for m in n.members for src in m.srcs
                     if src.kind == "buf"]
            bad.update((v, i) for v in reads)
        else:
            reads = [fl.view_of(a).var for a in st.eqn.invars if fl.view_of(a).kind == "var"]
            bad.update((v, i) for v in reads)
        for v in reads:
            last_read[v] = max(last_read.get(v, -1), i)
    for a in jaxpr.outvars:
        vw = fl.view_of(a)
        if vw.kind == "var" and vw.var in jaxpr.invars:
            bad.add((vw.var, -1))
    blocked = {v for v, _ in bad if _ == -1}
    out = {}
    used = set()
    for v in sorted(out_roots, key=lambda v: jaxpr.outvars.index(v) if v in jaxpr.outvars
                    else 1 << 30):
        d = producer.get(v)
        if d is None or v.aval.ndim == 0:
            continue
        for k in sorted(donate):
            if k in used or k >= len(jaxpr.invars):
                continue
            inp = jaxpr.invars[k]
            if inp.aval != v.aval or inp in blocked or (inp, d) in bad or \
                    last_read.get(inp, -1) > d:
                continue
            out[v] = k
            used.add(k)
            break
    return out


def lower(closed: ClosedJaxpr, fn_name="_fn", donate=()):
    """Generate the module source for `closed`. Returns a `Lowered`.

    `donate`: indices of inputs whose buffers outputs may be written into (jit's
    donate_argnums): the input arrays are then overwritten."""
    from . import kernels
    from . import (rules_elementwise, rules_indexing, rules_linalg,  # noqa: F401
                   rules_reductions, rules_shape)
    from . import rules_control_flow, rules_conv  # noqa: F401  (cond/scan/while, conv/pooling)
    from . import rules_random  # noqa: F401  (argsort)
    from . import rules_decompositions  # noqa: F401  (cholesky, solve, eigh, qr, svd, ...)
    from . import rules_special  # noqa: F401  (lgamma, digamma, erf_inv, ...)
    from . import rules_debug  # noqa: F401  (checkpoint_name, debug callbacks)
    from . import rules_complex  # noqa: F401  (complex pointwise rules, fft)
    jaxpr, consts = fusion.prepare(closed, has_rule=lambda n: n in LOWERINGS)
    _check_dtypes(jaxpr)
    consts = [_const_array(c) for c in consts]
    mod = ModuleBuilder()
    text = _pp(jaxpr, mod.namer)          # names the variables as the IR text does
    em = Emitter()
    in_names = [mod.name(v) for v in jaxpr.invars]
    const_names = [mod.name(v) for v in jaxpr.constvars]

    fl = FunctionLowerer(mod, em, jaxpr, top=True)
    mod.threaded_calls = _calls_blas(jaxpr)
    out_views = [fl.view_of(a) for a in jaxpr.outvars]
    outputs_set = set()
    for vw in out_views:
        if vw.kind == "var" and vw.is_identity() and vw.var not in jaxpr.invars and \
                vw.var not in jaxpr.constvars:
            outputs_set.add(vw.var)
    offsets, _, out_roots = _plan_arena(fl, outputs_set)
    order = {v: i for i, v in reversed(list(enumerate(jaxpr.outvars)))}
    pooled = []                     # (arg name, var): big outputs, from the recycling pool
    arena = {}                      # dtype name -> elements of the small-output arena
    out_alloc = {}                  # var -> (flat array name, element offset)

    def out_slot(aval):
        if _nbytes(aval) >= POOL_MIN_BYTES:
            arg = f"_o{len(pooled)}"
            pooled.append((arg, aval))
            return arg, 0
        dn = aval.dtype.name
        off = arena.get(dn, 0)
        arena[dn] = off + (max(_size(aval.shape), 1) + 15) // 16 * 16
        return _arena_name(dn), off
    in_place = _donations(fl, jaxpr, out_roots, set(donate))
    for v in sorted(out_roots, key=lambda v: order.get(v, 1 << 30)):
        if fl.plan.state.get(v) == "scalar":
            continue
        if v in in_place:
            out_alloc[v] = (in_names[in_place[v]], 0)       # written into the donated input
            continue
        out_alloc[v] = out_slot(v.aval)
    fl.out_alloc = out_alloc
    ws = {}                          # dtype name -> elements
    for v, off in offsets.items():
        dn = v.aval.dtype.name
        ws[dn] = max(ws.get(dn, 0), off + max(_size(v.aval.shape), 1))

    def alloc(v):
        off = offsets.get(v)
        if off is None:
            return None
        return _ws_name(v.aval.dtype), off
    fl.alloc = alloc
    mod.vtypes["_z"] = ("scalar", np.dtype(np.int64))
    fl.bind_inputs(in_names)
    fl.bind_consts(const_names)
    fl.run()

    # -- outputs ------------------------------------------------------------------------------
    out_plan = []       # per output: ('slot', name, off, shape) | ('view', ...) | ('in', i) | ...
    pool_args = {n for n, _ in pooled}
    # positions by name / Var: dictionaries, since programs can have thousands of leaves
    in_index = {n: i for i, n in enumerate(in_names)}
    const_index = {n: i for i, n in enumerate(const_names)}
    invar_index = {v: i for i, v in reversed(list(enumerate(jaxpr.invars)))}
    constvar_index = {v: i for i, v in reversed(list(enumerate(jaxpr.constvars)))}
    for a, vw in zip(jaxpr.outvars, out_views):
        aval = a.aval
        ident = vw.kind == "var" and vw.is_identity()
        if vw.kind == "lit":
            out_plan.append(("lit", (np.asarray(vw.value, dtype=aval.dtype), aval.shape)))
            continue
        if ident and vw.var in invar_index:
            out_plan.append(("in", invar_index[vw.var]))
            continue
        if ident and vw.var in constvar_index:
            out_plan.append(("const", constvar_index[vw.var]))
            continue
        b = fl.env.get(vw.var) if vw.kind == "var" else None
        slot = out_alloc.get(vw.var) if ident else None
        if slot is not None and b is not None and b.kind == "arr" and (b.flat, b.off) == slot:
            out_plan.append(("slot", slot[0], slot[1], aval.shape))
            continue
        if b is not None and b.kind == "arr" and (
                b.flat in in_index or b.flat in const_index or b.flat in pool_args or
                b.flat.startswith(("_w", "_r"))):
            # a view of stored data: the runner copies it out with NumPy (no loops to compile)
            cs = _c_strides(vw.var.aval.shape)
            off, strides = b.off, [0] * aval.ndim
            for (c, d, k), st in zip(vw.terms, cs):
                off += c * st
                if d is not None:
                    strides[d] += k * st
            out_plan.append(("view", b.flat, off, aval.shape, tuple(strides)))
            continue
        # a scalar, or a value stored elsewhere: copy it into an output slot
        name, off = out_slot(aval)
        em.emit(f"# output {len(out_plan)}")
        fl.emit_copy(vw, name, off, aval.shape, aval.dtype)
        out_plan.append(("slot", name, off, aval.shape))
    em.emit("return None")
    main_parallel = outline(em, mod)
    # long runs of one helper over many leaves: a loop over tables (see tabulate.py)
    leaf_arrays = {n: (v.aval.dtype, _size(v.aval.shape)) for n, v in zip(in_names, jaxpr.invars)}
    leaf_arrays.update({n: (a.dtype, _size(a.shape)) for n, a in pooled})
    em.lines, tables = tabulate.tabulate(em.lines, leaf_arrays)
    addressed = tables.addressed
    moved = set(addressed) - tabulate.remaining_uses(em.lines, addressed)

    # -- header ---------------------------------------------------------------------------------
    extra_names = [n for n, _ in mod.extra_consts]
    extra_consts = [c for _, c in mod.extra_consts]
    ws_names = [_ws_name(dn) for dn in sorted(ws)]
    arena_names = [_arena_name(dn) for dn in sorted(arena)]
    prof = _profiling()
    params = [n for n in in_names if n not in moved] + const_names + extra_names + \
        ws_names + arena_names + [n for n, _ in pooled if n not in moved] + \
        (["_addr"] if addressed else []) + ["_z"] + (["_prof"] if prof else [])

    def flat_t(dtype):
        return f"_t.Array({numba_type_name(dtype)}, 1, 'C')"
    arg_types = [flat_t(v.aval.dtype) for n, v in zip(in_names, jaxpr.invars) if n not in moved]
    arg_types += [flat_t(v.aval.dtype) for v in jaxpr.constvars]
    arg_types += [flat_t(c.dtype) for c in extra_consts]
    arg_types += [flat_t(dn) for dn in sorted(ws)]
    arg_types += [flat_t(dn) for dn in sorted(arena)]
    arg_types += [flat_t(a.dtype) for n, a in pooled if n not in moved]
    arg_types += (["_t.Array(_t.int64, 1, 'C')"] if addressed else []) + ["_t.int64"]
    arg_types += ["_t.Array(_t.int64, 1, 'C')"] if prof else []
    flags = "cache=True, nogil=True, error_model='numpy', no_cfunc_wrapper=True"  # (no C caller)
    if main_parallel:
        flags += ", parallel=True"
    head = [f"# backend {BACKEND_FINGERPRINT}",
            "# Generated by transforms.backend.numba from the IR below. Each statement is",
            "# annotated with the IR equation it implements. Every array is flat (1-D, C order);",
            "# intermediates live at fixed offsets of per-dtype workspaces (_w*), small outputs in",
            "# per-dtype output arenas (_r*), large ones in recycled buffers (_o*). _z is a",
            "# run-time 0: loops of small static size run to `n + _z`, so that LLVM does not",
            "# unroll them completely (which costs compile time, not run time).",
            f"# kernels version {kernels.source_version()}", "#"]
    head += ["# " + line for line in text.splitlines()]
    head += ["import math as _math", "import numpy as _np", "import numba as _numba",
             "from numba import prange as _prange, types as _t",
             "from transforms.backend.numba.cache import njit as _njit",
             "from transforms.backend.numba.lowering import parallel_guard as _parallel_guard"]
    head += [f"from transforms.backend.numba.kernels import {k} as _k_{k}"
             for k in sorted(mod.imports)]
    if addressed:
        head += tabulate.LEAF_SOURCE.splitlines()
    head.append("")
    head += mod.const_lines + tables.lines
    head.append("")
    for src in mod.helpers.values():
        head += [src, ""]
    head.append("_SIG = _t.none(")
    head += [f"    {t}," for t in arg_types]
    head += [")", "", "", f"@_njit(_SIG, {flags})", f"def {fn_name}({', '.join(params)}):"]
    body = em.lines if em.lines else ["    pass"]

    # -- the Python-side runner ----------------------------------------------------------------
    nconst = len(const_names) + len(extra_names)
    cn = [f"_c{i}" for i in range(nconst)]
    run = ["", "", "def make_runner(consts, pool_get, ws_pool):",
           '    """Bind the constants and buffers; returns run(*args) -> list of outputs."""']
    if cn:
        run.append(f"    {', '.join(cn)}{',' if len(cn) == 1 else ''} = "
                   f"[c.reshape(-1) for c in consts]")
    run.append(f"    fn = {fn_name}")
    if prof:
        run.append(f"    prof = _np.zeros({len(fl.plan.steps)}, _np.int64)")
    if ws:
        run.append("    ws_take, ws_give = ws_pool")
    args = [f"a{i}" for i in range(len(in_names))]
    run.append(f"    def run({', '.join(args)}):")
    for k, (_, a) in enumerate(pooled):
        run.append(f"        o{k} = pool_get({tuple(a.shape)!r}, _np.{a.dtype.name})")
    for dn in sorted(arena):
        run.append(f"        {_arena_name(dn)} = _np.empty({arena[dn]}, _np.{dn})")
    for x, v in zip(args, jaxpr.invars):
        run.append(f"        f{x[1:]} = {x}" + ("" if v.aval.ndim == 1 else ".ravel()"))
    call_args = ["f" + x[1:] for x, n in zip(args, in_names) if n not in moved] + cn
    call_args += [f"ws[{i}]" for i in range(len(ws))]
    call_args += [_arena_name(dn) for dn in sorted(arena)]
    call_args += [f"o{k}.ravel()" for k, (n, _) in enumerate(pooled) if n not in moved]
    if addressed:
        # data addresses of the leaves the tables index (all alive during the call)
        pool_index = {n: k for k, (n, _) in enumerate(pooled)}
        refs = [f"f{in_index[n]}" if n in in_index else f"o{pool_index[n]}"
                for n in addressed]
        run.append(f"        _addr = _np.array([{', '.join(r + '.ctypes.data' for r in refs)}], "
                   "_np.int64)")
        call_args.append("_addr")
    call_args.append("0")
    if prof:
        call_args.append("prof")
    if ws:
        run.append("        ws = ws_take()")
    if main_parallel or any("parallel=True" in h for h in mod.helpers.values()):
        # dynamic scheduling of parallel loops in chunks: a core busy with other work simply
        # takes fewer chunks (the default static split waits for the slowest core); `guard`:
        # see lowering.parallel_guard (a lock only on a layer that cannot take concurrency)
        run.insert(run.index(f"    fn = {fn_name}") + 1, "    guard = _parallel_guard()")
        run.append("        with guard:")
        run.append(f"            chunk = _numba.set_parallel_chunksize({PARALLEL_CHUNK})")
        run.append(f"            fn({', '.join(call_args)})")
        run.append("            _numba.set_parallel_chunksize(chunk)")
    else:
        run.append(f"        fn({', '.join(call_args)})")
    outs = []
    pool_index = {n: k for k, (n, _) in enumerate(pooled)}
    ws_index = {_ws_name(dn): i for i, dn in enumerate(sorted(ws))}

    def py_storage(name):
        if name in in_index:
            return f"f{in_index[name]}"
        if name in const_index:
            return f"_c{const_index[name]}"
        if name in ws_index:
            return f"ws[{ws_index[name]}]"
        if name in pool_index:
            return f"o{pool_index[name]}.reshape(-1)"
        return name
    for item in out_plan:
        kind = item[0]
        if kind == "view":
            _, name, off, shape, strides = item
            outs.append(f"_view({py_storage(name)}, {off}, {tuple(shape)!r}, {strides!r})")
        elif kind == "slot" and item[1] in in_index:          # written in place (donated)
            _, name, off, shape = item
            outs.append(f"f{in_index[name]}.reshape({tuple(shape)!r})")
        elif kind == "slot":
            _, name, off, shape = item
            if name in pool_index:
                outs.append(f"o{pool_index[name]}")
            else:
                sl = f"{name}[{off}:{off + _size(shape)}]"
                outs.append(sl if len(shape) == 1 else f"{sl}.reshape({tuple(shape)!r})")
        elif kind == "in":
            outs.append(f"a{item[1]}")
        elif kind == "const":
            outs.append(f"consts[{item[1]}].copy()")
        else:
            val, shape = item[1]
            outs.append(f"_np.full({tuple(shape)!r}, {_py_literal(val.item())}, "
                        f"_np.{val.dtype.name})")
    run.append(f"        outs = [{', '.join(outs)}]")
    if ws:
        run.append("        ws_give(ws)")
    run.append("        return outs")
    if prof:
        run.append("    run.profile = (prof, PROFILE_STEPS)")
    run.append("    return run")
    if prof:
        run += ["", "", "PROFILE_STEPS = " + repr(_step_labels(fl, mod))]
    run += ["", "", "def _view(flat, off, shape, strides):",
            '    """A copy of the strided view of the flat array `flat` (element units)."""',
            "    it = flat.itemsize",
            "    v = _np.lib.stride_tricks.as_strided(flat[off:], shape,",
            "                                         [s * it for s in strides])",
            "    return _np.array(v, order='C')"]
    source = "\n".join(head + body + run) + "\n"
    key = hashlib.sha1(source.encode()).hexdigest()[:20]
    ws_spec = tuple((dn, n) for dn, n in sorted(ws.items()))
    return Lowered(source, text + "\n" + _plan_text(fl, mod), key, consts + extra_consts,
                   [v.aval for v in jaxpr.invars], [a.aval for a in jaxpr.outvars],
                   ws_spec, mod.parallel)


def _backend_fingerprint():
    """Hash of this backend's own source files. It is written into every generated module, so
    a changed backend (a fixed kernel, say) never reuses machine code that Numba cached for
    the old one: Numba's cache does not notice changes in the modules a function imports."""
    import glob
    h = hashlib.sha1()
    for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "*.py"))):
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


BACKEND_FINGERPRINT = _backend_fingerprint()


def _py_literal(v):
    """Python source for a scalar, including the non-finite floats (`inf` is not a name)."""
    if isinstance(v, float) and not np.isfinite(v):
        return f"float({str(v)!r})"
    return repr(v)


def _calls_blas(jaxpr):
    """Whether lowering `jaxpr` may call BLAS (matmuls, convolutions), nested jaxprs included."""
    for e in jaxpr.eqns:
        if e.prim.name in CALLS_BLAS:
            return True
        if any(_calls_blas(j) for j in _sub_jaxprs(e)):
            return True
    return False


def _arena_name(dtype):
    return "_r" + _SHORT.get(np.dtype(dtype).name, np.dtype(dtype).name)


def _step_labels(fl, mod):
    out = []
    for st in fl.plan.steps:
        if isinstance(st, RowGroup):
            out.append(f"rows [{st.rows}]: " + " | ".join(
                ",".join(dict.fromkeys(m.eqn.prim.name for m in n.members)) for n in st.nests
            )[:60])
        elif isinstance(st, Nest):
            ops = ",".join(dict.fromkeys(m.eqn.prim.name for m in st.members))
            out.append(f"nest {_shape_str(st.shape)} {ops}"[:70])
        elif isinstance(st, ScalarStep):
            out.append(f"scalar {st.member.eqn.prim.name}")
        else:
            e = st.eqn
            out.append(f"{e.prim.name} -> {','.join(v.aval.str_short() for v in e.outvars)}")
    return out


def _plan_text(fl, mod):
    """The fusion plan in words (part of `Lowered.as_text()`)."""
    lines = ["", "fusion plan:"]
    for i, st in enumerate(fl.plan.steps):
        if isinstance(st, RowGroup):
            lines.append(f"  {i}: rows fused: one loop over {st.rows} rows running "
                         f"{len(st.nests)} nests per row:")
            for n in st.nests:
                outs = [mod.namer(v) for v in n.store] + \
                    [mod.namer(m.eqn.outvars[0]) for m in n.reductions]
                ops = " ".join(f"{mod.namer(m.eqn.outvars[0])}={m.eqn.prim.name}"
                               for m in n.members)
                lines.append(f"       nest over {_shape_str(n.shape)} -> "
                             f"{', '.join(outs) or '-'}  [{ops}]")
        elif isinstance(st, Nest):
            outs = [mod.namer(v) for v in st.store] + \
                [mod.namer(m.eqn.outvars[0]) for m in st.reductions]
            ops = " ".join(f"{mod.namer(m.eqn.outvars[0])}={m.eqn.prim.name}" for m in st.members)
            lines.append(f"  {i}: loop nest over {_shape_str(st.shape)} -> "
                         f"{', '.join(outs) or '-'}  [{ops}]")
        elif isinstance(st, ScalarStep):
            e = st.member.eqn
            lines.append(f"  {i}: scalar {mod.namer(e.outvars[0])} = {e.prim.name}")
        else:
            e = st.eqn
            lines.append(f"  {i}: {e.prim.name} -> {', '.join(mod.namer(v) for v in e.outvars)}")
    return "\n".join(lines)
