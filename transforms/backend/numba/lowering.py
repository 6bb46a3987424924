"""Lowering a jaxpr to the source of ONE Numba function (plus a tiny Python runner).

Registering a lowering rule
===========================

Primitives that are not elementwise, views or reductions (those are fused by `fusion.py`)
are lowered by a rule registered by primitive name::

    from transforms.backend.numba.lowering import register_lowering

    @register_lowering("cumsum")
    def _lower_cumsum(ctx, eqn):
        x = ctx.array(0)                  # name of a C-contiguous array holding operand 0
        out = ctx.out(0)                  # name of the (already allocated) result buffer
        n = eqn.invars[0].aval.shape[0]
        with ctx.block(f"for _j in range({n}):"):   # emits the header, indents the body
            ctx.emit(f"{out}[_j] = {x}[_j]")

A rule emits Python/Numba statements at the current indentation with `ctx.emit(line)`;
`ctx.block(header)` opens a nested block (`for`, `while`, `if`, `else`). It reads its operands
with `ctx.array(i)` (materialising views, literals and scalars into arrays), `ctx.scalar(i)`
(a scalar expression for a shape-() operand), or `ctx.view(i)` (the raw `fusion.View`, for rules
that fold index maps themselves, like dot_general folding transposes into BLAS flags). It
writes its results into `ctx.out(j)` -- or, instead, binds an existing array/scalar with
`ctx.set_out(j, name)` / `ctx.set_out_scalar(j, expr)`. Other helpers: `ctx.fresh(prefix)` (a
new unique name), `ctx.literal(value, dtype)`, `ctx.dtype(dtype)` (e.g. `_np.float32`),
`ctx.numba_type(dtype)`, `ctx.empty(shape, dtype)` (allocate a temporary),
`ctx.add_helper(key, source)` (a module-level helper, e.g. an ``@_njit`` function, added once),
`ctx.const(array)` (an extra constant argument), and, for control flow,
`ctx.lower_jaxpr(closed_jaxpr, arg_names) -> out_names`, which lowers a nested jaxpr inline at
the current position (with its own fusion) taking and returning array names. Each rule's
output is preceded by a comment with its IR equation, so the generated code reads like the IR.

Rules for elementwise primitives are scalar expressions registered with
`rules_elementwise.register_pointwise(name)`; they join fused loops automatically.

There is no fallback: a primitive with no rule raises NotImplementedError naming it.
"""
from __future__ import annotations

import builtins
import contextlib
import hashlib
import keyword
import os

import numpy as np

from ...ir import ClosedJaxpr, Jaxpr, Literal, _Namer, _pp
from . import fusion
from .fusion import Nest, ScalarStep, View

LOWERINGS = {}


def register_lowering(name):
    """Decorator: `rule(ctx, eqn)` lowers equations of primitive `name` (see module doc)."""
    def deco(fn):
        LOWERINGS[name] = fn
        return fn
    return deco


def _pointwise_rules():
    from .rules_elementwise import POINTWISE
    return POINTWISE


def _parallel_min():
    """Fused loops over at least this many elements use prange (NUMBAX_PARALLEL_MIN; 0 = never)."""
    try:
        v = int(os.environ.get("NUMBAX_PARALLEL_MIN", 1 << 18))
    except ValueError:
        v = 1 << 18
    return v if v > 0 else 1 << 62


POOL_MIN_BYTES = 1 << 16       # outputs at least this big come from the recycling pool

_NB_TYPES = {"bool": "boolean"}
_SHORT = {"float32": "f32", "float64": "f64", "int8": "i8", "int16": "i16", "int32": "i32",
          "int64": "i64", "uint8": "u8", "uint16": "u16", "uint32": "u32", "uint64": "u64",
          "bool": "b", "float16": "f16", "complex64": "c64", "complex128": "c128"}


def numba_type_name(dtype):
    dtype = np.dtype(dtype)
    return "_t." + _NB_TYPES.get(dtype.name, dtype.name)


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
    if dtype.kind == "c":
        return f"{dtype_ctor(dtype)}({complex(v)!r})"
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


class FunctionLowerer:
    """Lowers one jaxpr (the top-level one, or a nested one for control flow) into `em`."""

    def __init__(self, mod: ModuleBuilder, em: Emitter, jaxpr: Jaxpr, top=False):
        self.mod, self.em, self.jaxpr, self.top = mod, em, jaxpr, top
        self.env = {}                     # Var -> Binding
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
            b = Binding("arr", flat=self.out_alloc[v], off=0, shape=aval.shape, dtype=aval.dtype)
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
        self.em.emit(f"{f} = {nd_name}.reshape({max(_size(aval.shape), 1)})")
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
        whole = b.kind == "arr" and off == 0 and not flat.startswith(("_w", "_o"))
        src = flat if whole else f"{flat}[{off}:{off + max(n, 1)}]"
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
        self.em.emit(f"{out} = _np.empty({max(_size(shape), 1)}, {dtype_ctor(dt)})")
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
            self.em.emit(f"for _i{d} in range({shape[d]}):")
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
        for i, step in enumerate(self.plan.steps):
            self.step_index = i
            self.set_mark()
            if isinstance(step, Nest):
                self.emit_nest(step)
            elif isinstance(step, ScalarStep):
                self.emit_scalar_step(step)
            else:
                self.emit_opaque(step.eqn)

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
        ctx = RuleContext(self, eqn)
        rule(ctx, eqn)
        for j, v in enumerate(eqn.outvars):
            if v not in self.env:
                ctx.out(j)

    # -- nests ----------------------------------------------------------------------------------
    def emit_nest(self, nest: Nest):
        sin_members = [m for m in nest.members
                       if m.eqn.prim.name in ("sin", "cos") and
                       m.eqn.outvars[0].aval.dtype == np.float32]
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
            cnt = self.mod.fresh("_nbig")
            self.em.emit(f"{cnt} = 0")
            NestWriter(self, nest, exact=False, count=cnt).write()
            with self.em.block(f"if {cnt} > 0:", "arguments beyond the fast sin/cos range"):
                NestWriter(self, nest, exact=True, count=None).write()
        else:
            NestWriter(self, nest, exact=False, count=None).write()
        for m in nest.reductions:
            v = m.eqn.outvars[0]
            if v.aval.shape == ():
                self.env[v] = Binding("scalar", self.name(v) + "_")


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

    def __init__(self, fl: FunctionLowerer, nest: Nest, exact, count):
        self.fl, self.nest, self.exact, self.count = fl, nest, exact, count
        self.mod, self.em = fl.mod, fl.em

    def write(self):
        fl, nest = self.fl, self.nest
        S = nest.shape
        nd = len(S)
        loop_dims = [d for d in range(nd) if S[d] > 1]
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
        self.local_expr, self.local_depth, self.loaded = {}, {}, {}
        par = (nest.size >= _parallel_min() and ng > 0 and
               (not nest.reductions or (self.row_form and self.K > 0) or
                (not self.row_form and all(groups[0][0] not in ax for ax in red_axes))))
        if par:
            self.mod.parallel = True
        for m in nest.members:
            if m.reduce_axes is not None:
                self._reduction(m)
            else:
                self._pointwise(m)
        ident = tuple((0, d, 1) for d in range(nd))
        for v in nest.store:
            self.pre[ng].append(f"{self._index(v, ident)} = {self.local_expr[v]}")
        if not self.row_form:
            for m in nest.reductions:
                v = m.eqn.outvars[0]
                if v.aval.shape == ():
                    continue
                b = fl.env[v]
                n = _size(v.aval.shape)
                init = _reduce_init(self.mod, m.eqn.prim.name, v.aval.dtype)
                self.em.emit(f"{b.flat}[{b.off}:{b.off + n}] = {init}")
        base = self.em.level
        for line in self.pre[0]:
            self.em.emit(line)
        for gi in range(ng):
            rng = "_prange" if (par and gi == 0) else "range"
            self.em.emit(f"for _i{gi} in {rng}({self.sizes[gi]}):")
            self.em.level += 1
            for line in self.pre[gi + 1]:
                self.em.emit(line)
        for gi in range(ng, 0, -1):
            self.em.level -= 1
            for line in self.post[gi - 1]:
                self.em.emit(line)
        for line in self.post[ng] if ng == 0 else ():
            self.em.emit(line)
        assert self.em.level == base

    # -- helpers ------------------------------------------------------------------------------
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
        return [(st[g[-1]], f"_i{gi}") for gi, g in enumerate(self.groups)]

    def _index(self, v, terms):
        off, st = self._strides(v.aval.shape, terms)
        return self.fl.elem(v, self._parts(st), off)

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
            gi = self.group_of[d]
            return f"{dtype_ctor(s.dtype)}({_lin([(a, f'_i{gi}')], c)})", gi + 1
        b = fl.env[s.var]
        if b.kind != "arr":
            return fl.scalar_expr(s.var), 0
        key = (s.var, s.terms)
        hit = self.loaded.get(key)
        if hit is None:
            off, st = self._strides(s.var.aval.shape, s.terms)
            hit = (fl.elem(s.var, self._parts(st), off), self._depth(st))
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
            self.pre[ng].append(f"{acc} = {_reduce_combine(self.mod, name, acc, e, dt)}  # {comment}")
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
            self.emit(f"{f} = {n}.reshape({max(_size(v.aval.shape), 1)})")
            flat_args.append(f)
        sub.bind_inputs(flat_args)
        sub.bind_consts([self.const(c) for c in consts])
        sub.run()
        outs = []
        for a, vw in zip(jaxpr.outvars, sub.outputs()):
            aval = a.aval
            f = self.fresh("_r")
            self.emit(f"{f} = _np.empty({max(_size(aval.shape), 1)}, {dtype_ctor(aval.dtype)})")
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

    def __init__(self, source, text, key, consts, in_avals, out_avals, ws_nbytes, parallel):
        self.source, self.text, self.key = source, text, key
        self.consts = consts
        self.in_avals, self.out_avals = in_avals, out_avals
        self.ws_nbytes, self.parallel = ws_nbytes, parallel

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
        if isinstance(st, Nest):
            for m in st.members:
                for s in m.srcs:
                    if s.kind == "buf":
                        use(s.var, i)
            for v in st.store:
                defs[v] = i
            for m in st.reductions:
                v = m.eqn.outvars[0]
                if v.aval.shape != ():
                    defs[v] = i
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
    for v in outputs_set:
        last[root(v)] = len(steps) + 1
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
    """A constant as the compiled signature wants it: C-contiguous, writeable, aligned."""
    c = np.asarray(c)
    if not (c.flags.c_contiguous and c.flags.writeable and c.flags.aligned):
        c = np.array(c, order="C", copy=True)
    return c


def _ws_name(dtype):
    return "_w" + _SHORT.get(np.dtype(dtype).name, np.dtype(dtype).name)


def lower(closed: ClosedJaxpr, fn_name="_fn"):
    """Generate the module source for `closed`. Returns a `Lowered`."""
    from . import kernels
    from . import rules_elementwise, rules_indexing, rules_linalg, rules_reductions, rules_shape  # noqa: F401
    from . import rules_control_flow, rules_conv  # noqa: F401  (cond/scan/while, conv/pooling)
    jaxpr, consts = fusion.prepare(closed, has_rule=lambda n: n in LOWERINGS)
    consts = [_const_array(c) for c in consts]
    mod = ModuleBuilder()
    text = _pp(jaxpr, mod.namer)          # names the variables as the IR text does
    em = Emitter()
    in_names = [mod.name(v) for v in jaxpr.invars]
    const_names = [mod.name(v) for v in jaxpr.constvars]

    fl = FunctionLowerer(mod, em, jaxpr, top=True)
    out_views = [fl.view_of(a) for a in jaxpr.outvars]
    outputs_set = set()
    for vw in out_views:
        if vw.kind == "var" and vw.is_identity() and vw.var not in jaxpr.invars and \
                vw.var not in jaxpr.constvars:
            outputs_set.add(vw.var)
    offsets, ws_bytes, out_roots = _plan_arena(fl, outputs_set)
    pooled = []                     # (arg name, var)
    out_alloc = {}
    order = {v: i for i, v in reversed(list(enumerate(jaxpr.outvars)))}
    for v in sorted(out_roots, key=lambda v: order.get(v, 1 << 30)):
        if v.aval.ndim == 0 or fl.plan.state.get(v) == "scalar":
            continue
        if _nbytes(v.aval) >= POOL_MIN_BYTES and v in order:
            arg = f"_o{len(pooled)}"
            pooled.append((arg, v))
            out_alloc[v] = arg
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
    fl.bind_inputs(in_names)
    fl.bind_consts(const_names)
    fl.run()

    # -- outputs ------------------------------------------------------------------------------
    ret, ret_avals = [], []
    out_plan = []
    done = {}
    for a, vw in zip(jaxpr.outvars, out_views):
        aval = a.aval
        ident = vw.kind == "var" and vw.is_identity()
        if vw.kind == "lit":
            out_plan.append(("lit", (np.asarray(vw.value, dtype=aval.dtype), aval.shape)))
            continue
        if ident and vw.var in jaxpr.invars:
            out_plan.append(("in", jaxpr.invars.index(vw.var)))
            continue
        if ident and vw.var in jaxpr.constvars:
            out_plan.append(("const", jaxpr.constvars.index(vw.var)))
            continue
        if ident and vw.var in done:
            out_plan.append(done[vw.var])
            continue
        if ident and vw.var in out_alloc:
            out_plan.append(("pool", [n for n, _ in pooled].index(out_alloc[vw.var])))
            done[vw.var] = out_plan[-1]
            continue
        b = fl.env.get(vw.var) if vw.kind == "var" else None
        if ident and b is not None and b.kind == "arr" and b.off == 0 and \
                not b.flat.startswith(("_w", "_o")) and b.flat not in in_names and \
                b.flat not in const_names:
            ret.append(b.flat)
            ret_avals.append(aval)
            out_plan.append(("ret", (len(ret) - 1, aval.shape)))
            done[vw.var] = out_plan[-1]
            continue
        # a view, a scalar, or a value in scratch memory: copy into a fresh array
        name = mod.fresh("_out")
        em.emit(f"{name} = _np.empty({max(_size(aval.shape), 1)}, {dtype_ctor(aval.dtype)})")
        fl.emit_copy(vw, name, 0, aval.shape, aval.dtype)
        ret.append(name)
        ret_avals.append(aval)
        out_plan.append(("ret", (len(ret) - 1, aval.shape)))
    em.emit(f"return ({', '.join(ret)}{',' if len(ret) == 1 else ''})" if ret else "return None")

    # -- header ---------------------------------------------------------------------------------
    extra_names = [n for n, _ in mod.extra_consts]
    extra_consts = [c for _, c in mod.extra_consts]
    ws_names = [_ws_name(dn) for dn in sorted(ws)]
    params = in_names + const_names + extra_names + ws_names + [n for n, _ in pooled]

    def flat_t(dtype):
        return f"_t.Array({numba_type_name(dtype)}, 1, 'C')"
    arg_types = [flat_t(v.aval.dtype) for v in jaxpr.invars + jaxpr.constvars]
    arg_types += [flat_t(c.dtype) for c in extra_consts]
    arg_types += [flat_t(dn) for dn in sorted(ws)]
    arg_types += [flat_t(v.aval.dtype) for _, v in pooled]
    ret_types = [flat_t(a.dtype) for a in ret_avals]
    ret_t = f"_t.Tuple(({', '.join(ret_types)}{',' if len(ret_types) == 1 else ''}))" \
        if ret else "_t.none"
    flags = "cache=True, nogil=True, error_model='numpy'"
    if mod.parallel:
        flags += ", parallel=True"
    head = ["# Generated by transforms.backend.numba from the IR below. Each statement is",
            "# annotated with the IR equation it implements. Every array is flat (1-D, C order).",
            f"# kernels version {kernels.source_version()}", "#"]
    head += ["# " + line for line in text.splitlines()]
    head += ["import math as _math", "import numpy as _np",
             "from numba import njit as _njit, prange as _prange, types as _t"]
    head += [f"from transforms.backend.numba.kernels import {k} as _k_{k}"
             for k in sorted(mod.imports)]
    head.append("")
    head += mod.const_lines
    head.append("")
    for src in mod.helpers.values():
        head += [src, ""]
    head.append("_SIG = " + ret_t + "(")
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
    if ws:
        run.append("    ws_take, ws_give = ws_pool")
    args = [f"a{i}" for i in range(len(in_names))]
    run.append(f"    def run({', '.join(args)}):")
    for k, (_, v) in enumerate(pooled):
        run.append(f"        o{k} = pool_get({tuple(v.aval.shape)!r}, _np.{v.aval.dtype.name})")
    call_args = [f"{x}.reshape(-1)" for x in args] + cn
    call_args += [f"ws[{i}]" for i in range(len(ws))]
    call_args += [f"o{k}.reshape(-1)" for k in range(len(pooled))]
    if ws:
        run.append("        ws = ws_take()")
    run.append(f"        r = fn({', '.join(call_args)})")
    if ws:
        run.append("        ws_give(ws)")
    outs = []
    for kind, k in out_plan:
        if kind == "ret":
            i, shape = k
            outs.append(f"r[{i}].reshape({tuple(shape)!r})")
        elif kind == "pool":
            outs.append(f"o{k}")
        elif kind == "in":
            outs.append(f"a{k}")
        elif kind == "const":
            outs.append(f"consts[{k}].copy()")
        else:
            val, shape = k
            outs.append(f"_np.full({tuple(shape)!r}, {val.item()!r}, _np.{val.dtype.name})")
    run.append(f"        return [{', '.join(outs)}]")
    run.append("    return run")
    source = "\n".join(head + body + run) + "\n"
    key = hashlib.sha1(source.encode()).hexdigest()[:20]
    ws_spec = tuple((dn, n) for dn, n in sorted(ws.items()))
    return Lowered(source, text + "\n" + _plan_text(fl, mod), key, consts + extra_consts,
                   [v.aval for v in jaxpr.invars], [a.aval for a in jaxpr.outvars],
                   ws_spec, mod.parallel)


def _plan_text(fl, mod):
    """The fusion plan in words (part of `Lowered.as_text()`)."""
    lines = ["", "fusion plan:"]
    for i, st in enumerate(fl.plan.steps):
        if isinstance(st, Nest):
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
