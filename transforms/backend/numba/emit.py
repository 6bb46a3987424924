"""Source text of generated code: dtypes and literals, flat index arithmetic, the line
emitter, the module-wide name and constant state, and IR text for comments."""
from __future__ import annotations

import builtins
import contextlib
import keyword
import math
import os

import numpy as np

from ...errors import UnsupportedDtypeError
from ...ir import ClosedJaxpr, Jaxpr, _Namer


# With Numba (NUMBAX_DIRECT=0), loops shorter than this run to `n + _z` (_z: a run-time zero
# argument). Numba's LLVM fully unrolls loops of small known length; with many of them that
# makes compile time explode (the unrolled straight-line code is scheduled superlinearly)
# while saving next to nothing at run time. The direct compiler's LLVM unrolls fully only up
# to size 100 (direct/codegen.py), and there constant bounds compile faster -- no trip-count
# checks and vector epilogues: a sixth less LLVM time for the digits CNN, a fifth for the
# DP-SGD example -- and ran as fast (benchmarks/, same run, within 3%).
SMALL_LOOP = 1024


def small_loop():
    """The length below which generated loops get a run-time bound (see SMALL_LOOP)."""
    from .direct import enabled
    return 0 if enabled() else SMALL_LOOP


def _profiling():
    """NUMBAX_PROFILE=1: generated functions count CPU cycles per step (see Executable.profile)."""
    return os.environ.get("NUMBAX_PROFILE", "") not in ("", "0")


def loop_stop(n, start=0):
    """Source of the stop of a generated loop over [start, n) (see SMALL_LOOP)."""
    return f"{n} + _z" if n - start < small_loop() else str(n)


def loop_range(n, start=0):
    """Source of a range over [start, n) for a generated loop (see SMALL_LOOP)."""
    stop = loop_stop(n, start)
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
    return math.prod(int(d) for d in shape)      # (np.prod: ~15 us a call, hundreds a program)


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

    @contextlib.contextmanager
    def loops(self, shape, prefix="_i", ranges=None, skip=()):
        """Open nested `for` loops over the dims of `shape`, outermost first, and yield the
        index expression of each dim: `{prefix}{d}` for a looped dim, the constant start for
        a dim of extent 1 (no loop), None for the dims in `skip` (the caller loops over those
        itself). `ranges`: (start, stop) per dim instead of (0, shape[d]). Loops of small
        static length run to a run-time bound (see SMALL_LOOP); the loops close when the
        `with` block ends."""
        idx = []
        with contextlib.ExitStack() as stack:
            for d, n in enumerate(shape):
                if d in skip:
                    idx.append(None)
                    continue
                lo, hi = ranges[d] if ranges is not None else (0, n)
                if hi - lo == 1:
                    idx.append(str(lo))
                    continue
                stack.enter_context(self.block(f"for {prefix}{d} in {loop_range(hi, lo)}:"))
                idx.append(f"{prefix}{d}")
            yield idx


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


def _const_array(c):
    """A constant as the compiled signature wants it: C-contiguous, writeable, aligned, in
    the machine's byte order (signatures are typed by dtype name, not byte order)."""
    c = np.asarray(c)
    if not c.dtype.isnative:
        c = c.astype(c.dtype.newbyteorder("="))
    if not (c.flags.c_contiguous and c.flags.writeable and c.flags.aligned):
        c = np.array(c, order="C", copy=True)
    return c
