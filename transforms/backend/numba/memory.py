"""The memory plan of a generated function: workspace offsets of intermediates (first fit by
live range), the names of per-dtype workspaces and output arenas, and which outputs may be
written into donated inputs."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .emit import _SHORT, _size
from .fusion import Nest, RowGroup, ScalarStep
from .registry import ALIASES_OPERAND

if TYPE_CHECKING:
    from .function import FunctionLowerer


POOL_MIN_BYTES = 1 << 16       # outputs at least this big come from the recycling pool


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
            if st.eqn.prim.name in ALIASES_OPERAND:      # output = operand 0's storage
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


def _arena_name(dtype):
    return "_r" + _SHORT.get(np.dtype(dtype).name, np.dtype(dtype).name)
