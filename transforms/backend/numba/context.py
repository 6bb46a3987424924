"""What lowering rules are handed: `ScalarContext` (pointwise rules, inside fused loops) and
`RuleContext` (opaque rules; its methods are described in `lowering`'s module docstring)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...ir import ClosedJaxpr
from . import fusion
from .emit import (Binding, _c_strides, _const_array, _lin, _size, dtype_ctor, loop_range,
                   numba_type_name)
from .memory import _ws_name
from .registry import LOWERINGS

if TYPE_CHECKING:
    from .function import FunctionLowerer


class ScalarContext:
    """Passed to pointwise rules: `rule(ctx, *arg_exprs, **params) -> expr (or list)`.
    `local(name)`, when given, is told the name of each temporary the rule binds."""

    def __init__(self, fl, eqn, emit, exact, count, local=None):
        self.fl, self.eqn, self._emit, self.exact, self._count = fl, eqn, emit, exact, count
        self.mod = fl.mod
        self._local = local

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
        if self._local is not None:
            self._local(t)
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

    def loops(self, shape, prefix="_i", ranges=None, skip=()):
        """`with ctx.loops(shape) as idx:` opens nested loops over the dims of `shape`;
        `idx[d]` is dim d's index expression (`{prefix}{d}`, or the start of a dim of
        extent 1, or None for a dim in `skip`). `ranges`: (start, stop) per dim."""
        return self.em.loops(shape, prefix, ranges, skip)

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

    def scratch(self, size, dtype):
        """Name of a 1-D array of `size` elements of `dtype` for this rule's own temporary
        use while its code runs (uninitialised; disjoint from every value and from this
        rule's other scratch arrays). Unlike `empty`, no allocation per call: it is a view of
        the function's workspace, which is reused across calls, so large temporaries cost no
        page faults. A rule that lowers a sub-jaxpr must not keep scratch live across it."""
        base = getattr(self.mod, "scratch_base", None)
        if base is None:                    # lowered outside `lowering.lower`
            return self.empty((size,), dtype)
        dn = np.dtype(dtype).name
        used = self.__dict__.setdefault("_scratch_used", {})
        start = used.get(dn, 0)
        used[dn] = start + (max(int(size), 1) + 15) // 16 * 16
        self.mod.scratch_need[dn] = max(self.mod.scratch_need.get(dn, 0), used[dn])
        off = base.get(dn, 0) + start
        t = self.fresh("_ws")
        self.emit(f"{t} = {_ws_name(dn)}[{off}:{off + int(size)}]")
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
        # (the FunctionLowerer class, taken from the instance: importing it would be a cycle)
        sub = type(self.fl)(self.mod, self.em, jaxpr)
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
            self.emit(f"{out} = _nd({f}, {tuple(aval.shape)!r})")
            outs.append(out)
        return outs
