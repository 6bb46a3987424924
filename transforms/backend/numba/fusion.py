"""Jaxpr preparation and fusion planning for the Numba backend.

`prepare` rewrites a closed jaxpr into the form the code generator wants: nested call
primitives (`pjit`, `remat`, custom derivative calls) are inlined, identities are dropped,
`x + 0` and `x - 0` become `x` (`simplify`), a transpose of a matmul result is folded into
the matmul (operands swapped), dead code removed.

`plan` then walks the equations once, in order, and groups them into *steps*:

* **views** (`broadcast_in_dim`, `transpose`, `squeeze`, `rev`, static `slice`, `reshape` that
  only adds or drops unit axes, `iota`) are not steps at all: each is an affine index map onto
  its operand, composed through chains of views and applied where the value is read.
* **loop nests** (`Nest`): elementwise equations with the same output shape, and reductions
  whose operand has that shape, share one loop nest over that shape. Inside a nest a value is a
  scalar local; it is written to memory ("materialized") only if something outside the nest
  needs it (an output, another nest, an opaque operation, or a read through a non-identity view
  such as a transpose or an expanding broadcast). Reduction results are complete only after
  their nest, so their readers come later. Shape-() elementwise work is plain scalar code.
* **opaque steps**: everything else (dot_general, gather/scatter, concatenate, cumsum, ...) is
  emitted by a lowering rule from the registry in `registry.py`.

Nothing here knows a primitive by name: which primitives are views (and their index maps),
reductions, inlined calls or identities is declared by each primitive's rules module
(`registry.register_view`, `register_reduction`, `register_inline_call`, `register_identity`).

A nest stays *pending* while later equations can still join it; it is emitted ("flushed") when
something needs one of its results in memory, or at the end. The emitted order is always a
valid topological order (a consumer flushes its producer nests first).
"""
from __future__ import annotations

import numpy as np

from ...ir import ClosedJaxpr, Eqn, Jaxpr, Literal, Var, dce_jaxpr
# (register_inline_call: kept importable from here)
from .simplify import ZeroValues, zero_operand_identity
from .registry import (IDENTITIES, INLINE_CALLS, REDUCTIONS, SLOW_PATHS,  # noqa: F401
                       TRANSPOSE_FOLDS, VIEWS, load_rules, register_inline_call)


# A loop nest takes at most this many equations: the machine-code generation of LLVM (instruction
# selection, scheduling) is superlinear in the size of a loop body, so one enormous nest
# compiles far slower than a few smaller ones (which only add a store/load at the seams).
MAX_NEST_MEMBERS = 32


# ---------------------------------------------------------------------------------------------
# Preparation
# ---------------------------------------------------------------------------------------------

def _closed_of(p):
    if isinstance(p, ClosedJaxpr):
        return p.jaxpr, p.consts
    if isinstance(p, Jaxpr):
        return p, []
    raise TypeError(f"expected a jaxpr, got {type(p).__name__}")


def prepare(closed: ClosedJaxpr, has_rule=lambda name: False):
    """Inline calls, drop identities (`x + 0` too), fold transposes of dots, DCE. Returns
    (jaxpr, consts)."""
    load_rules()
    jaxpr = closed.jaxpr
    constvars = list(jaxpr.constvars)
    consts = list(closed.consts)
    eqns = []
    sub = {}

    def read(a):
        # `sub` maps a dropped Var (an identity, a common subexpression, a call's result) to
        # its replacement, which may itself have been dropped later: follow the chain
        while isinstance(a, Var) and a in sub:
            a = sub[a]
        return a

    def inline(j, j_consts, args, outvars):
        env = {}
        for v, c in zip(j.constvars, j_consts):
            nv = Var(v.aval)
            constvars.append(nv)
            consts.append(c)
            env[v] = nv
        for v, a in zip(j.invars, args):
            env[v] = a

        def r(a):
            return env.get(a, a) if isinstance(a, Var) else a
        for e in j.eqns:
            new_out = [Var(v.aval) for v in e.outvars]
            env.update(zip(e.outvars, new_out))
            emit(Eqn(e.prim, [r(a) for a in e.invars], new_out, e.params, e.source_info))
        for v, o in zip(outvars, j.outvars):
            # an inner result may itself have been replaced (a common subexpression or an
            # identity dropped by `emit`): resolve it now
            sub[v] = read(r(o))

    seen = {}
    zeros = ZeroValues()

    def emit(e):
        name = e.prim.name
        ins = [read(a) for a in e.invars]
        if name in INLINE_CALLS and not has_rule(name) and INLINE_CALLS[name] in e.params:
            j, jc = _closed_of(e.params[INLINE_CALLS[name]])
            inline(j, jc, ins, e.outvars)
            return
        if _is_identity(e, ins):
            sub[e.outvars[0]] = ins[0]
            return
        same = zero_operand_identity(e, ins, zeros)
        if same is not None:
            sub[e.outvars[0]] = same
            return
        key = _cse_key(e, ins)          # common subexpressions: compute once
        if key is not None:
            prev = seen.get(key)
            if prev is not None:
                for v, p in zip(e.outvars, prev.outvars):
                    sub[v] = p
                return
        new = Eqn(e.prim, ins, e.outvars, e.params, e.source_info)
        if key is not None:
            seen[key] = new
        zeros.note(new)
        eqns.append(new)

    for e in jaxpr.eqns:
        emit(e)
    outvars = [read(a) for a in jaxpr.outvars]
    new = Jaxpr(constvars, jaxpr.invars, outvars, eqns)
    # dead equations first: a use by one of them kept a transpose from folding
    new, _, used_consts = dce_jaxpr(new)
    new = _fold_dot_transposes(new)
    consts = [c for c, u in zip(consts, used_consts) if u]
    _check_defined(new)
    return new, consts


def _check_defined(jaxpr):
    """Every Var read (by an equation or as an output) is an input, a constant or an earlier
    result: a dangling reference would otherwise surface as a KeyError deep in emission."""
    defined = set(jaxpr.constvars) | set(jaxpr.invars)
    for e in jaxpr.eqns:
        for a in e.invars:
            if isinstance(a, Var) and a not in defined:
                raise AssertionError(f"backend preparation left {a} read by {e.prim.name} "
                                     "undefined (an eliminated value was not substituted)")
        defined.update(e.outvars)
    for a in jaxpr.outvars:
        if isinstance(a, Var) and a not in defined:
            raise AssertionError(f"backend preparation left output {a} undefined (an "
                                 "eliminated value was not substituted)")


def _freeze(x):
    if isinstance(x, (ClosedJaxpr, Jaxpr)):
        return ("jaxpr", id(x))
    if isinstance(x, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(_freeze(v) for v in x)
    if isinstance(x, np.ndarray):
        raise TypeError
    hash(x)
    return x


def _cse_key(e, ins):
    from ...ir import EFFECTFUL
    if e.prim.name in EFFECTFUL or e.prim.name in INLINE_CALLS:
        return None
    try:
        k_in = tuple(("v", id(a)) if isinstance(a, Var) else
                     ("l", a.aval.dtype.str, np.asarray(a.val).tobytes()) for a in ins)
        return (e.prim.name, k_in, _freeze(e.params))
    except TypeError:
        return None


def _is_identity(e, ins):
    """Whether `e` returns its operand unchanged (same aval, and the primitive's declared
    identity condition holds: `registry.register_identity`)."""
    if len(e.outvars) != 1 or not ins or not isinstance(ins[0], (Var, Literal)):
        return False
    if ins[0].aval != e.outvars[0].aval:
        return False
    when = IDENTITIES.get(e.prim.name)
    return when is not None and bool(when(e))


def _permutation(e):
    """The permutation of view equation `e` if it only permutes its operand's dims, every
    element kept (a transpose: output dim j is operand dim perm[j]), else None. (A slice
    from 0 has the same index map as the identity: the shapes tell them apart.)"""
    terms = view_terms(e) if len(e.outvars) == 1 and e.invars else None
    if terms is None or len(terms) != e.outvars[0].aval.ndim:
        return None
    perm = [None] * len(terms)
    for i, (c, d, a) in enumerate(terms):
        if c != 0 or a != 1 or d is None or perm[d] is not None:
            return None
        perm[d] = i
    src, out = e.invars[0].aval.shape, e.outvars[0].aval.shape
    if tuple(src[i] for i in perm) != tuple(out):
        return None
    return tuple(perm)


def _fold_dot_transposes(jaxpr):
    """A transpose of a result that is read nowhere else, produced by a primitive declared
    with `absorbs_transpose` (`dot_general`: its operands swapped), becomes that primitive's
    equation writing the transposed result directly: the transpose disappears."""
    uses = {}
    for e in jaxpr.eqns:
        for a in e.invars:
            if isinstance(a, Var):
                uses[a] = uses.get(a, 0) + 1
    for a in jaxpr.outvars:
        if isinstance(a, Var):
            uses[a] = uses.get(a, 0) + 1
    producers = {e.outvars[0]: e for e in jaxpr.eqns if e.prim.name in TRANSPOSE_FOLDS}
    # transposes of transposes read nowhere else are one transpose of the product (the
    # gradient of attention's keys: a dot, two swaps of its last dims, then the heads')
    perms = {e.outvars[0]: (e, p) for e in jaxpr.eqns
             if e.invars and isinstance(e.invars[0], Var) and (p := _permutation(e)) is not None}
    replaced, dropped = {}, set()
    # last first: an outer transpose folds with the inner ones before an inner one alone would
    for e in reversed(jaxpr.eqns):
        if id(e) in dropped or len(e.outvars) != 1 or e.outvars[0] not in perms:
            continue
        src, perm = e.invars[0], perms[e.outvars[0]][1]
        chain = []
        while src not in producers and src in perms and uses.get(src) == 1 and \
                id(perms[src][0]) not in dropped:
            # out dim j of the chain so far is dim perm[j] of src, dim p[perm[j]] of its input
            f, p = perms[src]
            chain.append(f)
            src, perm = f.invars[0], tuple(p[k] for k in perm)
        d = producers.get(src)
        if d is None or uses.get(src) != 1 or id(d) in dropped:
            continue
        new = TRANSPOSE_FOLDS[d.prim.name](d, perm, e.outvars)
        if new is None:
            continue
        dropped.update(id(f) for f in chain)
        # the new equation writes the transpose's result where the transpose was
        replaced[id(e)] = new
        dropped.add(id(d))
    if not replaced:
        return jaxpr
    eqns = [replaced.get(id(e), e) for e in jaxpr.eqns if id(e) not in dropped]
    return Jaxpr(jaxpr.constvars, jaxpr.invars, jaxpr.outvars, eqns)


# ---------------------------------------------------------------------------------------------
# Views: affine index maps
# ---------------------------------------------------------------------------------------------

class View:
    """How to read a value at an index of its own shape.

    kind 'var': base Var read at base index [c + a * idx[d] for (c, d, a) in terms] (d None:
    constant c); kind 'lit': a scalar literal; kind 'iota': the integer
    sum(c + a * idx[d] for (c, d, a) in terms) cast to dtype (an iota has one term; a
    reshaped one, a term per dim)."""
    __slots__ = ("kind", "var", "value", "dtype", "terms", "shape")

    def __init__(self, kind, shape, var=None, value=None, dtype=None, terms=()):
        self.kind, self.shape, self.var, self.value = kind, tuple(shape), var, value
        self.dtype, self.terms = dtype, tuple(terms)

    def is_identity(self):
        if self.kind != "var" or self.var.aval.shape != self.shape:
            return False
        return all((c == 0 and d == k and a == 1) or (n == 1 and d is None and c == 0)
                   for k, ((c, d, a), n) in enumerate(zip(self.terms, self.shape)))

    def compose(self, inner_terms, shape):
        """This view read through a view whose map onto *this* view's index is inner_terms."""
        def sub(t):
            c, d, a = t
            if d is None:
                return t
            c2, d2, a2 = inner_terms[d]
            if d2 is None:
                return (c + a * c2, None, 0)
            return (c + a * c2, d2, a * a2)
        if self.kind == "lit":
            return View("lit", shape, value=self.value, dtype=self.dtype)
        if self.kind == "iota":
            return View("iota", shape, dtype=self.dtype, terms=tuple(sub(t) for t in self.terms))
        return View("var", shape, var=self.var, terms=tuple(sub(t) for t in self.terms))


def identity_view(v: Var):
    return View("var", v.aval.shape, var=v,
                terms=tuple((0, d, 1) for d in range(v.aval.ndim)))


def view_terms(eqn):
    """The index map of a view equation onto its operand (terms per operand dim), or None
    (not a view primitive, or not a view with these parameters: `registry.register_view`)."""
    rule = VIEWS.get(eqn.prim.name)
    if rule is None or rule.terms is None:
        return None
    return rule.terms(eqn)


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------

class Src:
    """How a nest member reads one operand: kind in lit / scalar / buf / local / iota."""
    __slots__ = ("kind", "var", "value", "dtype", "terms")

    def __init__(self, kind, var=None, value=None, dtype=None, terms=()):
        self.kind, self.var, self.value, self.dtype, self.terms = kind, var, value, dtype, terms

    def __repr__(self):
        return f"Src({self.kind}, {self.var})"


class Member:
    __slots__ = ("eqn", "srcs", "reduce_axes")

    def __init__(self, eqn, srcs, reduce_axes=None):
        self.eqn, self.srcs, self.reduce_axes = eqn, srcs, reduce_axes


class Nest:
    """One loop nest over `shape`: elementwise members (outputs of that shape) and reductions
    (operands of that shape). `store` lists the members' outputs written to memory."""

    def __init__(self, shape, index):
        self.shape = tuple(shape)
        self.index = index
        self.members = []
        self.locals = {}          # Var -> Member
        self.reductions = []      # Members
        self.store = []           # Vars materialized by this nest
        self.member_eqns = set()
        self.reads = set()        # buffer Vars read by members

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))


class ScalarStep:
    """Shape-() elementwise equation: one line of scalar code at function level."""

    def __init__(self, member):
        self.member = member


class OpaqueStep:
    def __init__(self, eqn):
        self.eqn = eqn


class RowGroup:
    """Consecutive loop nests over the same rows (their first dimension), run row by row:
    one outer loop over the rows, each nest an inner phase for the current row. A phase may
    read what earlier phases stored for the same row -- e.g. softmax: the row max, then the
    sum of exponentials, then the normalised row -- so rows are finished while in cache and
    the nests share one loop."""

    def __init__(self, nests):
        self.nests = list(nests)

    @property
    def rows(self):
        return self.nests[0].shape[0]


# Row fusion is for modest sizes (bigger nests are split over threads, not rows).
ROW_GROUP_MAX = 1 << 20


def _rowable(st):
    if not isinstance(st, Nest) or len(st.shape) < 1 or st.shape[0] < 2 or \
            st.size >= ROW_GROUP_MAX or st.size == 0:
        return False                # (an empty nest has no rows to run: no loop at all)
    nd = len(st.shape)
    for m in st.reductions:
        ax = sorted(m.reduce_axes)
        if 0 in ax or ax != list(range(nd - len(ax), nd)):
            return False            # only reductions over trailing dims finish within a row
    # (a nest with a slow path runs as two versions of its loop: never inside a row loop)
    return not any(m.eqn.prim.name in SLOW_PATHS for m in st.members)


def _row_local(st, produced, rows):
    """Whether nest `st` reads values produced in the group, and only in its own row."""
    if not any(s.kind == "buf" and s.var in produced for m in st.members for s in m.srcs):
        return False                # unrelated work: better its own (maybe shared) loop
    for m in st.members:
        for s in m.srcs:
            if s.kind == "buf" and s.var in produced:
                if s.var.aval.shape[:1] != (rows,) or s.terms[0] != (0, 0, 1):
                    return False
                if any(d == 0 for (_, d, _) in s.terms[1:]):
                    return False
    return True


def row_fuse(steps):
    """Merge runs of consecutive nests over the same rows into RowGroups."""
    out = []
    for st in steps:
        if _rowable(st):
            prev = out[-1] if out else None
            group = prev if isinstance(prev, RowGroup) else (
                RowGroup([prev]) if _rowable(prev) else None)
            if group is not None and st.shape[0] == group.rows:
                produced = {v for n in group.nests for v in n.store} | \
                    {m.eqn.outvars[0] for n in group.nests for m in n.reductions}
                if _row_local(st, produced, group.rows):
                    group.nests.append(st)
                    out[-1] = group
                    continue
        out.append(st)
    return out


class Plan:
    def __init__(self, jaxpr, steps, views, state, outputs_needed):
        self.jaxpr, self.steps, self.views, self.state = jaxpr, steps, views, state
        self.outputs_needed = outputs_needed


def plan(jaxpr: Jaxpr, is_pointwise, is_opaque):
    """Group the equations of `jaxpr` into steps (see module docstring)."""
    views = {}        # Var -> View (vars produced by view equations)
    state = {}        # Var -> 'buf' | 'scalar' | ('local', nest) | ('red', nest)
    for v in jaxpr.constvars + jaxpr.invars:
        state[v] = "buf"

    def view_of(a):
        if isinstance(a, Literal):
            return View("lit", (), value=a.val, dtype=a.aval.dtype)
        vw = views.get(a)
        return vw if vw is not None else identity_view(a)

    # -- classify, build views, effective consumers ---------------------------------------------
    kinds = []
    for e in jaxpr.eqns:
        rule = VIEWS.get(e.prim.name)
        view = None
        if rule is not None and len(e.outvars) == 1:
            if rule.source is not None:
                view = rule.source(e)
            else:
                terms = rule.terms(e)
                operand = view_of(e.invars[0])
                if terms is not None and isinstance(e.invars[0], (Var, Literal)):
                    view = operand.compose(terms, e.outvars[0].aval.shape)
                elif rule.of_iota is not None and operand.kind == "iota":
                    view = rule.of_iota(e, operand)
        if view is not None:
            views[e.outvars[0]] = view
            k = "view"
        elif e.prim.name in REDUCTIONS:
            k = "reduce"
        elif is_pointwise(e):
            k = "pointwise"
        else:
            k = "opaque"
        kinds.append(k)

    consumers = {}
    for e, k in zip(jaxpr.eqns, kinds):
        if k == "view":
            continue
        for a in e.invars:
            vw = view_of(a)
            if vw.kind == "var":
                consumers.setdefault(vw.var, set()).add(id(e))
    outputs_needed = set()
    for a in jaxpr.outvars:
        vw = view_of(a)
        if vw.kind == "var":
            outputs_needed.add(vw.var)

    steps = []
    pending = {}      # nest index -> Nest (nests that later equations may still join)
    counter = [0]

    def flush(nest):
        if pending.get(nest.index) is not nest:
            return
        del pending[nest.index]
        for v, m in nest.locals.items():
            if v in outputs_needed or any(c not in nest.member_eqns
                                          for c in consumers.get(v, ())):
                nest.store.append(v)
                state[v] = "buf"
            else:
                state[v] = "dead"
        for m in nest.reductions:
            v = m.eqn.outvars[0]
            state[v] = "scalar" if v.aval.shape == () else "buf"
        steps.append(nest)

    def needs_flush(a, shape):
        """The pending nest that must be flushed before reading `a` in a nest of `shape`."""
        vw = view_of(a)
        if vw.kind != "var":
            return None
        st = state.get(vw.var)
        if isinstance(st, tuple):
            kind, nest = st
            if kind == "red":
                return nest
            if shape is None or nest.shape != tuple(shape) or not vw.is_identity() or \
                    pending.get(nest.index) is not nest:
                return nest
        return None

    def src_of(a):
        vw = view_of(a)
        if vw.kind == "lit":
            return Src("lit", value=vw.value, dtype=vw.dtype)
        if vw.kind == "iota":
            return Src("iota", dtype=vw.dtype, terms=vw.terms)
        st = state[vw.var]
        if isinstance(st, tuple):
            return Src("local", var=vw.var)
        if st == "scalar":
            return Src("scalar", var=vw.var)
        assert st == "buf", (vw.var, st)
        return Src("buf", var=vw.var, terms=vw.terms)

    def resolve(e, shape):
        while True:
            todo = [n for n in (needs_flush(a, shape) for a in e.invars) if n is not None]
            if not todo:
                return
            for n in todo:
                flush(n)

    def nest_for(e, shape):
        """The pending nest `e` joins: one whose values it reads, or one that reads the same
        memory (siblings share the pass over it); several such nests are merged. Unrelated
        work of the same shape gets its own nest (identical nests are compiled once)."""
        cands = []
        for a in e.invars:
            vw = view_of(a)
            if vw.kind != "var":
                continue
            st = state[vw.var]
            if isinstance(st, tuple) and st[0] == "local":
                cands.append(st[1])
            elif st == "buf" and vw.var.aval.size > 1:
                cands += [n for n in pending.values() if n.shape == shape and vw.var in n.reads]
        cands = list({n.index: n for n in cands}.values())
        for n in [c for c in cands if len(c.members) >= MAX_NEST_MEMBERS]:
            flush(n)          # full: LLVM's code generation is superlinear in a loop body
            cands.remove(n)
        if not cands:
            nest = Nest(shape, counter[0])
            counter[0] += 1
            pending[nest.index] = nest
            return nest
        cands.sort(key=lambda n: n.index)
        nest = cands[0]
        for other in cands[1:]:
            nest.members += other.members
            nest.reductions += other.reductions
            nest.member_eqns |= other.member_eqns
            nest.reads |= other.reads
            for v in other.locals:
                nest.locals[v] = other.locals[v]
                state[v] = ("local", nest)
            for m in other.reductions:
                state[m.eqn.outvars[0]] = ("red", nest)
            del pending[other.index]
        return nest

    for e, k in zip(jaxpr.eqns, kinds):
        if k == "view":
            continue
        if k == "opaque":
            resolve(e, None)
            steps.append(OpaqueStep(e))
            for v in e.outvars:
                state[v] = "buf"
            continue
        if k == "reduce":
            shape = e.invars[0].aval.shape
        else:
            shape = e.outvars[0].aval.shape
        resolve(e, shape)
        if k == "pointwise" and shape == ():
            m = Member(e, [src_of(a) for a in e.invars])
            steps.append(ScalarStep(m))
            for v in e.outvars:
                state[v] = "scalar"
            continue
        nest = nest_for(e, tuple(shape))
        srcs = [src_of(a) for a in e.invars]
        nest.reads.update(s.var for s in srcs if s.kind == "buf")
        if k == "reduce":
            m = Member(e, srcs, reduce_axes=tuple(e.params["axes"]))
            nest.reductions.append(m)
            state[e.outvars[0]] = ("red", nest)
        else:
            m = Member(e, srcs)
            for v in e.outvars:
                nest.locals[v] = m
                state[v] = ("local", nest)
        nest.members.append(m)
        nest.member_eqns.add(id(e))

    for nest in sorted(pending.values(), key=lambda n: n.index):
        flush(nest)
    steps = row_fuse(steps)
    return Plan(jaxpr, steps, views, state, outputs_needed)
