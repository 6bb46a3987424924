"""Lowering one jaxpr (the top-level one, or a nested one for control flow) into the body
of a generated function: binds its values, walks the fusion plan's steps and hands each to
the loop-nest writer (`loops`), a pointwise rule or an opaque rule (`context`)."""
from __future__ import annotations

import numpy as np

from ...ir import Jaxpr, Literal
from . import fusion
from .context import RuleContext, ScalarContext
from .emit import (Binding, Emitter, ModuleBuilder, _all_outputs_empty, _c_strides,
                   _eqn_text, _lin, _profiling, _shape_str, _size, dtype_ctor, loop_range)
from .fusion import Nest, RowGroup, ScalarStep, View
from .loops import NestWriter
from .outline import NestBlock
from .registry import LOWERINGS, POINTWISE, slow_path


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
        self.plan = fusion.plan(jaxpr, lambda e: e.prim.name in POINTWISE,
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
            e = _lin([(a, idx[d]) for _, d, a in vw.terms if d is not None],
                     sum(c for c, _, _ in vw.terms))
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
        cs = _c_strides(shape)
        with self.em.loops(shape) as idx:
            val = self.read_view(vw, idx, dtype)
            self.em.emit(f"{out}[{_lin([(cs[d], idx[d]) for d in dims], out_off)}] = {val}")

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
            return f"{dtype_ctor(src.dtype)}({sum(c for c, _, _ in src.terms)})"
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

    def pointwise(self, eqn, args, emit, exact, count=None, local=None):
        """Expressions for the outputs of pointwise `eqn` applied to scalar expressions
        (`local`: told the names of the temporaries the rule binds)."""
        rule = POINTWISE.get(eqn.prim.name)
        if rule is None:
            raise NotImplementedError(f"no Numba lowering for primitive '{eqn.prim.name}'")
        sctx = ScalarContext(self, eqn, emit, exact, count, local)
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
        slow = [m for m in nest.members if slow_path(m.eqn) is not None] if nest.size else []
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
        if slow:
            # members with a slow path (registry.SlowPath): a quick pass counts the arguments
            # beyond the fast code's range (a reduction inside the main loop would slow it
            # down far more); then one of two versions
            cnt = self.mod.fresh("_nbig")
            self.em.emit(f"{cnt} = 0")
            NestWriter(self, nest, exact=False, count=cnt, check=True).write()
            which = "/".join(dict.fromkeys(m.eqn.prim.name for m in slow))
            with self.em.block(f"if {cnt} > 0:", f"arguments beyond the fast {which} range"):
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
                                           len(nw.slice_lines), nw.template))
        for m in nest.reductions:
            v = m.eqn.outvars[0]
            if v.aval.shape == ():
                self.env[v] = Binding("scalar", self.name(v) + "_")
