"""The loop-nest writer: one fused loop nest (elementwise members and reductions) as nested
`for` loops over flat buffers, with loop invariants hoisted."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .context import ScalarContext
from .emit import _c_strides, _eqn_text, _lin, _size, dtype_ctor, loop_stop
from .fusion import Nest
from .outline import Bound, NestTemplate
from .parallel import _parallel_min
from .registry import REDUCTIONS, slow_path

if TYPE_CHECKING:
    from .function import FunctionLowerer


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
        # what the code written is made of (free and local names, loop and slice bounds),
        # recorded as it is written: the outliner builds helper functions from it
        self.template = NestTemplate()

    def write(self):
        fl, nest = self.fl, self.nest
        S = nest.shape
        nd = len(S)
        self.slice_lines = []
        if nest.size == 0:
            self._write_empty()
            return
        loop_dims = [d for d in range(1 if self.row else 0, nd) if S[d] > 1]
        # dims are merged into one loop where every buffer read and every iota value moves
        # by the same flat step (a 1-D iota of one dim never merges; a reshaped one may)
        accesses = []
        for m in nest.members:
            for s in m.srcs:
                if s.kind == "buf":
                    accesses.append(self._strides(s.var.aval.shape, s.terms)[1])
                elif s.kind == "iota":
                    accesses.append(self._iota_strides(s.terms)[1])
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
            if groups and all(a[groups[-1][-1]] == a[d] * S[d] for a in accesses):
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
        self.bases = {}                 # outer terms of a flat index -> hoisted name
        self.second_pass = []           # sums of stored values, in their own inner loops
        par = (nest.size >= _parallel_min() and ng > 0 and not self.mod.threaded_calls and
               not self.row and
               (not nest.reductions or (self.row_form and self.K > 0) or
                (not self.row_form and all(groups[0][0] not in ax for ax in red_axes))))
        if par:
            self.mod.parallel = True
        members = nest.members
        if self.check:
            members = self._check_members()
        # in the counting pass, a slow-path member whose value feeds another checked member
        # (sin of an expression holding a sin) is also computed: with the fast code, which is
        # exact whenever its own arguments were counted as in range
        feeds = {s.var for m in members for s in m.srcs if s.kind == "local"} if self.check \
            else set()
        for m in members:
            if m.reduce_axes is not None:
                self._reduction(m)
            elif self.check and slow_path(m.eqn) is not None:
                self._count_slow(m)
                if any(v in feeds for v in m.eqn.outvars):
                    self._pointwise(m)
            else:
                self._pointwise(m)
        ident = tuple((0, d, 1) for d in range(nd))
        for v in (nest.store if not self.check else ()):
            self.pre[ng].append(f"{self._index(v, ident, inner=True)} = {self.local_expr[v]}")
        inits = []
        if not self.row_form and not self.check:
            for m in nest.reductions:
                v = m.eqn.outvars[0]
                if v.aval.shape == ():
                    continue
                init = REDUCTIONS[m.eqn.prim.name].init(self.mod, v.aval.dtype)
                buf = self._buffer(v)
                if buf is None:
                    b = fl.env[v]
                    self.template.free(b.flat)
                    inits.append([f"{b.flat}[", Bound(b.off), ":",
                                  Bound(b.off + _size(v.aval.shape)), f"] = {init}"])
                else:
                    inits.append(f"{buf}[:] = {init}")
        base = self._base = self.em.level
        for line in self.slice_lines:
            self.em.emit(line)
        for line in inits + self.pre[0]:
            self._put(line)

        for gi in range(ng):
            if par and gi == 0:
                self.template.parallel = True
                self._put(["for _i0 in _prange(", Bound(self.sizes[0]), "):"])
            else:
                self._put_loop(gi)
            self.em.level += 1
            for line in self.pre[gi + 1]:
                self._put(line)
        # stores after the innermost level: reductions whose reduced axes all have size 1
        # (K == ng) finish there; without this their results were never written
        for line in self.post[ng]:
            self._put(line)
        for gi in range(ng, 0, -1):
            self.em.level -= 1
            if gi - 1 == self.K and self.second_pass:
                with_loops = 0
                for gj in range(self.K, ng):
                    self._put_loop(gj)
                    self.em.level += 1
                    with_loops += 1
                for line in self.second_pass:
                    self._put(line)
                self.em.level -= with_loops
            for line in self.post[gi - 1]:
                self._put(line)
        for line in self.post[ng] if ng == 0 else ():
            self._put(line)
        assert self.em.level == base

    def _write_empty(self):
        """A nest over zero elements: no iterations; reductions are their initial values."""
        if self.check:
            return
        self._base = self.em.level
        for m in self.nest.reductions:
            v = m.eqn.outvars[0]
            init = REDUCTIONS[m.eqn.prim.name].init(self.mod, v.aval.dtype)
            if v.aval.shape == ():
                self._put(f"{self._local(self.fl.name(v) + '_')} = {init}")
            else:
                b = self.fl.env[v]
                n = _size(v.aval.shape)
                if n:
                    self.template.free(b.flat)
                    self._put([f"{b.flat}[", Bound(b.off), ":", Bound(b.off + n),
                               f"] = {init}"])

    # -- emission and its record ----------------------------------------------------------------
    def _put(self, line):
        """Emit one line of the nest (source text, or a list of text and `Bound` fragments)
        and record it in the template, at its depth below the nest's first line."""
        frags = [line] if isinstance(line, str) else line
        self.em.emit("".join(f if isinstance(f, str) else f.text for f in frags))
        self.template.line(self.em.level - self._base, frags)

    def _put_loop(self, gi):
        """Emit the `for` line of loop group `gi` (a short loop's bound is run-time: SMALL_LOOP)."""
        n = self.sizes[gi]
        self._put([f"for _i{gi} in range(", Bound(n, loop_stop(n)), "):"])

    def _local(self, name):
        """`name`, recorded as assigned inside the nest."""
        self.template.local(name)
        return name

    def _scalar(self, v):
        """The scalar expression of Var `v` bound outside the nest (its name recorded free)."""
        b = self.fl.env[v]
        if b.kind == "scalar":
            self.template.free(b.name)
        elif b.kind == "arr":
            self.template.free(b.flat)
        return self.fl.scalar_expr(v)

    # -- helpers ------------------------------------------------------------------------------
    def _check_members(self):
        """The members with a slow path (`registry.SlowPath`) and the members their
        arguments depend on."""
        need = set()
        todo = [m for m in self.nest.members if slow_path(m.eqn) is not None]
        while todo:
            m = todo.pop()
            if id(m) in need:
                continue
            need.add(id(m))
            for s in m.srcs:
                if s.kind == "local":
                    todo.append(self.nest.locals[s.var])
        return [m for m in self.nest.members if id(m) in need]

    def _count_slow(self, m):
        """In the counting pass: add up the arguments of slow-path member `m` that need the
        exact code (the member's own value is not computed)."""
        args, depth = [], 0
        for s in m.srcs:
            e, d = self._src(s)
            args.append(e)
            depth = max(depth, d)
        ctx = ScalarContext(self.fl, m.eqn, self.pre[depth].append, False, None)
        self.pre[depth].append(f"{self.count} += {slow_path(m.eqn).count(ctx, *args)}")

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

    def _iota_strides(self, terms):
        """(constant, step per nest dim) of an iota's value read through `terms`."""
        st = [0] * len(self.nest.shape)
        for c, d, a in terms:
            if d is not None and self.nest.shape[d] > 1:
                st[d] += a
        return sum(c for c, _, _ in terms), tuple(st)

    def _parts(self, st):
        parts = [(st[g[-1]], f"_i{gi}") for gi, g in enumerate(self.groups)]
        if self.row and st:
            parts.insert(0, (st[0], "_r0"))
        return parts

    def _index(self, v, terms, inner=False):
        off, st = self._strides(v.aval.shape, terms)
        return self._elem(v, self._parts(st), off, inner)

    def _buffer(self, v):
        """The array holding Var `v` from element 0: its own array, or a slice of a shared one
        (a workspace or output arena) taken once before the loops. Loops then index every
        buffer from 0, which keeps index arithmetic simple and lets LLVM tell buffers apart
        (so the loops vectorize), and makes nests that only differ in where their buffers
        live share one helper function."""
        b = self.fl.env[v]
        if b.off == 0 and not b.flat.startswith(("_w", "_r", "_o")):
            self.template.free(b.flat)
            return b.flat
        if self.row:
            return None           # inside a row loop: offsets (no slices per row)
        name = self.slices.get(v)
        if name is None:
            name = self.slices[v] = self.mod.fresh("_s")
            n = max(_size(v.aval.shape), 1)
            self.slice_lines.append(f"{name} = {b.flat}[{b.off}:{b.off + n}]")
            self.template.slice(name, f"{b.flat}[{b.off}:{b.off + n}]", b.flat)
        return name

    def _elem(self, v, parts, off, inner=False):
        """`v`'s element at flat offset `off` + parts. `inner`: the access sits in the innermost
        loop, so the terms of the outer loops are summed once per row, before that loop."""
        b = self.fl.env[v]
        if b.kind != "arr":
            return self._scalar(v)
        buf = self._buffer(v)
        if buf is None:
            self.template.free(b.flat)
            buf, off = b.flat, b.off + off
        ng = len(self.groups)
        if inner and ng:
            last = f"_i{ng - 1}"
            outer = [(c, n) for c, n in parts if c and n != last]
            if outer:
                # `base + i` rather than `a * _r0 + b * _i0 + ... + i`: LLVM did not vectorise
                # inner loops of 3- and 4-deep nests (a masked softmax's rows, 5x slower) whose
                # flat indices kept every outer term (its alias checks need the inner loop's
                # address range, which it then failed to compute)
                key = _lin(outer, off)
                nm = self.bases.get(key)
                if nm is None:
                    nm = self.bases[key] = self._local(self.mod.fresh("_row"))
                    self.pre[ng - 1].append(f"{nm} = {key}")
                rest = [(c, n) for c, n in parts if n == last]
                return f"{buf}[{_lin(rest, 0) + ' + ' + nm if any(c for c, _ in rest) else nm}]"
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
            return self._scalar(s.var), 0
        if s.kind == "local":
            return self.local_expr[s.var], self.local_depth[s.var]
        if s.kind == "iota":
            off, st = self._iota_strides(s.terms)
            depth = max((gi + 1 for gi, g in enumerate(self.groups) if st[g[-1]]), default=0)
            return f"{dtype_ctor(s.dtype)}({_lin(self._parts(st), off)})", depth
        b = fl.env[s.var]
        if b.kind != "arr":
            return self._scalar(s.var), 0
        key = (s.var, s.terms)
        hit = self.loaded.get(key)
        if hit is None:
            off, st = self._strides(s.var.aval.shape, s.terms)
            dep = self._depth(st)
            expr = self._elem(s.var, self._parts(st), off, inner=dep == len(self.groups))
            if dep < len(self.groups):
                # invariant in the inner loops: loaded once outside them. Left inline, the
                # load is repeated per element (the loop's stores might change it), which
                # kept loops such as softmax's exp(x - max) from vectorising
                nm = self._local(self.mod.fresh("_ld"))
                self.pre[dep].append(f"{nm} = {expr}")
                expr = nm
            hit = (expr, dep)
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
        outs = self.fl.pointwise(m.eqn, args, emit, self.exact, self.count,
                                 local=self.template.local)
        comment = _eqn_text(m.eqn, self.mod)
        for v, expr in zip(m.eqn.outvars, outs):
            nm = self._local(self.fl.name(v) + "_")
            emit(f"{nm} = {expr}", comment)
            comment = None
            self.local_expr[v] = nm
            self.local_depth[v] = depth

    def _sum_apart(self, m, src):
        """Whether row-form reduction `m` adds up, in a second loop over the row, a value this
        nest computes and stores whole (same-shape, so read back at the loop indices)."""
        return (self.row_form and 0 < self.K < len(self.groups) and not self.check and
                REDUCTIONS[m.eqn.prim.name].add_apart and src.kind == "local" and
                np.issubdtype(m.eqn.outvars[0].aval.dtype, np.floating) and
                src.var in self.nest.store and src.var.aval.shape == tuple(self.nest.shape) and
                self.local_depth.get(src.var) == len(self.groups))

    def _reduction(self, m):
        e, _ = self._src(m.srcs[0])
        v = m.eqn.outvars[0]
        red = REDUCTIONS[m.eqn.prim.name]
        dt = v.aval.dtype
        ng = len(self.groups)
        comment = _eqn_text(m.eqn, self.mod)
        nd = len(self.nest.shape)
        ax = set(m.reduce_axes)
        kept = [d for d in range(nd) if d not in ax]
        terms = [(0, d, 1) for d in kept]
        if self.row_form or v.aval.shape == ():
            # a scalar accumulator (a full reduction accumulates in any loop order)
            acc = self._local(self.fl.name(v) + "_")
            k = self.K if self.row_form else 0
            self.pre[k].insert(0, f"{acc} = {red.init(self.mod, dt)}")
            src = m.srcs[0]
            if self._sum_apart(m, src):
                # a floating-point sum keeps the loop it is in scalar (LLVM may not reorder
                # the additions), and with it everything else there (softmax's exp ran 5x
                # slower): the summands are stored anyway, so they are added up in a loop of
                # their own after the row's loop (same order, same result)
                ident = tuple((0, d, 1) for d in range(nd))
                # hoisted row offsets (computed before the first inner loop) still hold in a
                # second pass of one loop
                one = len(self.groups) - self.K == 1
                comb = red.combine(self.mod, acc, self._index(src.var, ident, inner=one), dt)
                self.second_pass.append(f"{acc} = {comb}  # {comment}")
            elif self.row_form and self._row_sum_apart(m) and self.K == ng - 1:
                # the summands are not stored: a row buffer holds them, added up after the
                # row's loop, in the same order (softmax's backward row sum beside its
                # elementwise work kept that whole loop scalar)
                n = self.sizes[ng - 1]
                row = self._local(self.mod.fresh("_rs"))
                self.pre[0].append(f"{row} = _np.empty({n}, {dtype_ctor(dt)})")
                self.pre[ng].append(f"{row}[_i{ng - 1}] = {e}  # {comment}")
                comb = red.combine(self.mod, acc, f"{row}[_j]", dt)
                self.post[k].append(f"for _j in range({n}): {acc} = {comb}")
            else:
                comb = red.combine(self.mod, acc, e, dt)
                self.pre[ng].append(f"{acc} = {comb}  # {comment}")
            if v.aval.shape != ():
                self.post[k].append(f"{self._index(v, terms)} = {acc}")
        elif self._row_sum_apart(m):
            # a float sum over the innermost loop into memory (layer norm's row sums next to
            # column sums) made every iteration wait for the previous one, so nothing in that
            # loop vectorised: the summands go to a row buffer and are added up after the
            # loop, in the same order (same result)
            ix = self._index(v, terms)
            n = self.sizes[ng - 1]
            row = self._local(self.mod.fresh("_rs"))
            acc = self._local(self.mod.fresh("_sum"))
            self.pre[0].append(f"{row} = _np.empty({n}, {dtype_ctor(dt)})")
            self.pre[ng].append(f"{row}[_i{ng - 1}] = {e}  # {comment}")
            self.post[ng - 1] += [f"{acc} = {ix}",
                                  f"for _j in range({n}): {acc} = "
                                  f"{red.combine(self.mod, acc, f'{row}[_j]', dt)}",
                                  f"{ix} = {acc}"]
        else:
            ix = self._index(v, terms, inner=True)
            self.pre[ng].append(f"{ix} = {red.combine(self.mod, ix, e, dt)}  # {comment}")

    def _row_sum_apart(self, m):
        """Whether reduction `m` is a float sum over the innermost loop, among other work
        there."""
        ng = len(self.groups)
        return (ng > 0 and not self.check and REDUCTIONS[m.eqn.prim.name].add_apart and
                np.issubdtype(m.eqn.outvars[0].aval.dtype, np.floating) and
                self.groups[-1][0] in set(m.reduce_axes) and len(self.nest.members) > 1 and
                bool(self.nest.store or len(self.nest.reductions) > 1))
