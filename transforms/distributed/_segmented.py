"""Compiled programs that contain collectives over process groups.

A jaxpr with `psum`/`pmax`/`pmin`/`all_gather`/`ppermute`/`axis_index` equations cannot be one
Numba function (MPI is called from Python), so `backend.numba.compile` hands it here and it is
split at its collectives:

    segment 0 (compiled) -> collectives of stage 0 -> segment 1 (compiled) -> ... -> segment S

A collective's *stage* is the number of collectives on its longest dependency chain (as soon as
possible, so independent collectives share a stage); every other equation runs in the first
segment that needs its value (as late as possible, so cheap broadcasts are not computed early
and handed across). In a stage, all `psum` (`pmean`, `pmax`, `pmin`) operands with the same
axis and dtype are reduced together into one contiguous buffer; their results are views of
it, read by later segments or returned to the caller as they are (no copy out). Small groups
(and max/min, and groups over many processes) are packed - one pass, which also applies
pmean's 1/n when that is exact - and reduced by ONE in-place `Allreduce`; a large sum over a
few processes skips the packing pass: a reduce-scatter straight from the operands and an
in-place all-gather, planned once per group with persistent MPI requests (`_direct.DirectSum`;
its results sit at its own offsets, small operands staged together). A pytree of gradients
therefore costs one reduction per dtype, not one per leaf (`benchmarks/distributed.py`
measures it against a bare Allreduce). The buffers are pooled and reused once no earlier
result refers to them. Axis names
resolve against the mesh active at call time; the first call checks that every member agrees
on the collectives' shapes and dtypes.
A `scan`, `while` or `cond` whose body holds collectives runs its loop (or picks its branch)
in Python with each body compiled the same way (split at its own collectives); other equations
that nest collectives run through their NumPy impl.
"""
from __future__ import annotations

import sys

import numpy as np

from ..ir import ClosedJaxpr, Jaxpr, Literal, Var
from . import _mesh as M
from . import _runtime as R

COLLECTIVES = {"psum", "pmean", "pmax", "pmin", "all_gather", "axis_index", "ppermute"}
_REDUCE_OP = {"psum": "sum", "pmean": "sum", "pmax": "max", "pmin": "min"}


def _sub_jaxprs(params):
    for v in params.values():
        items = v if isinstance(v, (list, tuple)) else (v,)
        for it in items:
            if isinstance(it, ClosedJaxpr):
                yield it.jaxpr
            elif isinstance(it, Jaxpr):
                yield it


def _contains(jaxpr, memo=None) -> bool:
    memo = {} if memo is None else memo
    key = id(jaxpr)
    if key in memo:
        return memo[key]
    memo[key] = False
    found = False
    for e in jaxpr.eqns:
        if e.prim.name in COLLECTIVES or any(_contains(j, memo) for j in _sub_jaxprs(e.params)):
            found = True
            break
    memo[key] = found
    return found


def needs_split(closed) -> bool:
    """True if `closed` (or a jaxpr nested in it) has a collective equation."""
    return _contains(closed.jaxpr)


class _Segment:
    __slots__ = ("invars", "outvars", "exe", "closed")


class _Host:
    """The collectives of one stage: packed reductions, then the other host equations."""
    __slots__ = ("groups", "others")


class _Group:
    """The reductions of one stage with the same (op, axis, dtype): reduced together into one
    buffer whose views are their results."""
    __slots__ = ("name", "axis", "dtype", "eqns", "invars", "outvars", "shapes", "sizes",
                 "offsets", "nbytes", "desc", "pool", "direct")

    def __init__(self, name, axis, dt, es):
        self.name, self.axis, self.dtype, self.eqns = name, axis, dt, es
        self.invars = [e.invars[0] for e in es]
        self.outvars = [e.outvars[0] for e in es]
        self.shapes = [e.outvars[0].aval.shape for e in es]
        self.sizes = [int(np.prod(sh, dtype=np.int64)) for sh in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(int).tolist()
        self.nbytes = sum(self.sizes) * dt.itemsize
        self.desc = f"{name} {dt.str} " + " ".join(str(list(sh)) for sh in self.shapes)
        self.pool = []            # buffers a packed Allreduce has reduced in
        self.direct = None        # the DirectSum of the last group of processes, if direct

    def describe(self):
        """The MPI calls of this group, as `jit(...).lower()` shows them."""
        mean = self.name == "pmean"
        what = f"{len(self.eqns)} value(s)"
        buf = f"one {self.dtype.name}[{sum(self.sizes)}] buffer"
        packed = (f"MPI Allreduce({_REDUCE_OP[self.name]}{', scaled by 1/n' if mean else ''}) "
                  f"over {self.axis!r}: {what} packed in {buf}")
        if self.name not in ("psum", "pmean") or not R.direct_sum_fits(self.dtype, self.nbytes):
            return "# " + packed
        return (f"# MPI sum{' (scaled by 1/n)' if mean else ''} over {self.axis!r}: {what} "
                f"reduced into {buf} without packing: a reduce-scatter straight from the "
                f"values, then an all-gather, on 2 to {R._DIRECT_MAX_MEMBERS} processes (on "
                f"more: {packed})")

    def reduce(self, comm, values):
        """(buffer, offsets): the reduced values are views of the buffer at the offsets."""
        name, dt = self.name, self.dtype
        ds = self.direct
        if ds is not None and ds.comm is comm:          # planned by an earlier call
            return ds.run(values), ds.offsets
        if name in ("psum", "pmean") and comm.direct_sum_ok(dt, self.nbytes):
            n = comm.size
            exact = name == "pmean" and n & (n - 1) == 0
            ds = self.direct = comm.direct_sum(
                dt, self.sizes, scale=np.asarray(1.0 / n, dt) if exact else None,
                divide=np.asarray(n, dt) if name == "pmean" and not exact else None)
            return ds.run(values), ds.offsets
        pool = self.pool
        free = _free_buffer(pool)
        buf = _reduce_packed(comm, name, dt, values, self.sizes, free)
        if buf is not free:
            pool.append(buf)
            if len(pool) > _POOL:
                pool.pop(0)
        return buf, self.offsets


class SegmentedExecutable:
    """Callable like `backend.numba.Executable`: `exe(*arrays) -> list of outputs`."""

    def __init__(self, closed, compile=True):     # noqa: A002 - compile=False: plan only
        from ..backend.numba import compile as backend_compile
        from ..backend.numba.fusion import prepare
        from ..interpreters.partial_eval import trace_to_jaxpr
        jaxpr, consts = prepare(closed)
        self.in_avals = [v.aval for v in jaxpr.invars]
        self.out_avals = [v.aval for v in jaxpr.outvars]
        self.const_env = dict(zip(jaxpr.constvars, consts))
        self.invars = list(jaxpr.invars)
        self.outvars = list(jaxpr.outvars)
        self.checked = False

        # stage of each collective = collectives on its longest dependency chain (ASAP, so
        # independent collectives share a stage and a buffer)
        depth = {}

        def dep(a):
            return depth.get(a, 0) if isinstance(a, Var) else 0

        is_host = {}
        host_eqns = {}
        for e in jaxpr.eqns:
            d = max([dep(a) for a in e.invars], default=0)
            host = e.prim.name in COLLECTIVES or any(_contains(j) for j in _sub_jaxprs(e.params))
            is_host[id(e)] = host
            if host:
                host_eqns.setdefault(d, []).append(e)
            for v in e.outvars:
                depth[v] = d + 1 if host else d
        n_last = max(host_eqns, default=-1) + 1
        # every other equation runs in the first segment that needs its value (ALAP: a
        # broadcast constant feeding the last segment is not computed early and passed on)
        where = {v: n_last for v in jaxpr.outvars if isinstance(v, Var)}
        seg_eqns = {}
        for e in reversed(jaxpr.eqns):
            if is_host[id(e)]:
                k = depth[e.outvars[0]] - 1
            else:
                k = min([where[v] for v in e.outvars if v in where], default=None)
                if k is None:
                    continue                                     # dead
                seg_eqns.setdefault(k, []).append(e)
            for a in e.invars:
                if isinstance(a, Var):
                    where[a] = min(where.get(a, k), k)
        for eqns in seg_eqns.values():
            eqns.reverse()
        n_stages = max(host_eqns, default=-1) + 1

        # what each segment must hand on: values read by later segments, hosts, or the caller
        needed_after = [set() for _ in range(n_stages + 1)]   # values read at/after segment k
        for k, eqns in seg_eqns.items():
            for e in eqns:
                for a in e.invars:
                    if isinstance(a, Var):
                        needed_after[k].add(a)
        # the collectives of each stage: same-(op, axis, dtype) reductions are packed
        stage_plan = []
        for k in range(n_stages):
            groups, others = {}, []
            for e in host_eqns.get(k, []):
                if e.prim.name in _REDUCE_OP:
                    key = (e.prim.name, e.params["axis_name"], np.dtype(e.outvars[0].aval.dtype))
                    groups.setdefault(key, []).append(e)
                else:
                    others.append(e)
            stage_plan.append((list(groups.items()), others))
        host_reads = [set() for _ in range(n_stages)]
        for k, (groups, others) in enumerate(stage_plan):
            for e in [e for _, es in groups for e in es] + others:
                host_reads[k].update(a for a in e.invars if isinstance(a, Var))
        final = {a for a in jaxpr.outvars if isinstance(a, Var)}

        self.steps = []
        for k in range(n_stages + 1):
            eqns = seg_eqns.get(k, [])
            defined = {v for e in eqns for v in e.outvars}
            later = set(final)
            for j in range(k + 1, n_stages + 1):
                later |= needed_after[j]
            for j in range(k, n_stages):
                later |= host_reads[j]
            outs = [v for e in eqns for v in e.outvars if v in later]
            ins, seen = [], set()
            for e in eqns:
                for a in e.invars:
                    if isinstance(a, Var) and a not in defined and a not in seen:
                        seen.add(a)
                        ins.append(a)
            seg = None
            if eqns:
                seg = _Segment()
                seg.invars, seg.outvars = ins, outs
                seg.closed = trace_to_jaxpr(_segment_fun(eqns, ins, outs), [v.aval for v in ins])
                seg.exe = backend_compile(seg.closed) if compile else None
            host = None
            if k < n_stages:
                host = _Host()
                groups, host.others = stage_plan[k]
                host.groups = [_Group(name, axis, dt, es) for (name, axis, dt), es in groups]
            self.steps.append((seg, host))
        # scan/while/cond whose bodies hold collectives: run with compiled bodies (each body
        # split at its collectives in turn), the loop or the branch choice in Python
        self.runners = {}
        if compile:
            for _, host in self.steps:
                for e in (host.others if host else ()):
                    runner = _control_flow_runner(e)
                    if runner is not None:
                        self.runners[id(e)] = runner
        # which outputs to copy out of their reduction buffer: a small result reduced with
        # large ones (a loss next to the gradients) would otherwise keep the buffer pinned
        # while the caller holds it (see `_free_buffer`); decided once, here
        small = set()
        for _, host in self.steps:
            for g in (host.groups if host else ()):
                small.update(v for v, size in zip(g.outvars, g.sizes) if size * 8 < sum(g.sizes))
        self.copy_out = [isinstance(a, Var) and a in small for a in self.outvars]

    def __call__(self, *args):
        if len(args) != len(self.invars):
            raise TypeError(f"compiled function takes {len(self.invars)} arrays, got {len(args)}")
        env = dict(self.const_env)
        env.update(zip(self.invars, args))
        if self.checked:
            with R.checks_off():
                self._run(env)
        else:
            self._run(env)
            self.checked = True
        return [a.val if isinstance(a, Literal) else env[a].copy() if c else env[a]
                for a, c in zip(self.outvars, self.copy_out)]

    def _run(self, env):
        def read(a):
            return np.asarray(a.val) if isinstance(a, Literal) else env[a]

        for seg, host in self.steps:
            if seg is not None:
                env.update(zip(seg.outvars, seg.exe(*[env[v] for v in seg.invars])))
            if host is None:
                continue
            for g in host.groups:
                comm = _comm(g.axis)
                comm.check_same(g.desc, f"lax.{g.name}")
                buf, offsets = g.reduce(comm, [read(v) for v in g.invars])
                for v, shape, size, off in zip(g.outvars, g.shapes, g.sizes, offsets):
                    env[v] = buf[off:off + size].reshape(shape)
            for e in host.others:
                runner = self.runners.get(id(e))
                if runner is not None:
                    out = runner(*[read(a) for a in e.invars])
                else:
                    out = e.prim.bind(*[read(a) for a in e.invars], **e.params)
                if e.prim.multiple_results:
                    env.update(zip(e.outvars, out))
                else:
                    env[e.outvars[0]] = np.asarray(out)


class SegmentedLowered:
    """`jit(f).lower(...)` of a program with collectives: each compiled segment's IR and source,
    with the MPI calls between them as comments."""

    def __init__(self, closed):
        from ..backend.numba import lower as backend_lower
        plan = SegmentedExecutable(closed, compile=False)
        texts, sources = [], []
        for k, (seg, host) in enumerate(plan.steps):
            if seg is not None:
                low = backend_lower(seg.closed)
                texts.append(f"# ---- compiled segment {k} ----\n{low.as_text()}")
                sources.append(f"# ---- compiled segment {k} ----\n{low.source}")
            if host is not None:
                lines = []
                lines += [g.describe() for g in host.groups]
                for e in host.others:
                    lines.append(f"# host: {e.prim.name} {e.params.get('axis_name', '')}")
                texts.append("\n".join(lines))
                sources.append("\n".join(lines))
        self.text = "\n".join(texts)
        self.source = "\n".join(sources)

    def as_text(self):
        return self.text


_POOL = 3      # buffers kept per packed reduction: results alive in the caller's loop pin some


def _free_buffer(pool):
    """A buffer of `pool` that no result of an earlier call refers to any more, or None.

    The results of a packed reduction are views of its buffer. MPI moves memory it has moved
    before much faster than new memory (the library caches what it has registered; measured 4x
    on 2 processes for 2.7 MB), so the buffers are kept and reused - but only one none of
    whose views is alive (a view keeps its base alive, so the reference count says so): then
    nothing has to be copied out and results kept by the caller are never overwritten. A
    small pool covers the usual loop `g = step(g)`, where the last result is still alive
    while the next call runs."""
    for buf in pool:
        # references: the pool's list, this loop's name, getrefcount's argument
        if sys.getrefcount(buf) <= 3:
            return buf
    return None


def _reduce_packed(comm, name, dt, values, sizes, buf=None):
    """Pack `values` (of a group that `_Group.reduce` does not sum directly) into one
    contiguous buffer (`buf` if given, else a new one) in one pass (a pmean scales as it copies
    when 1/n is exact, else divides after), reduce it in place over `comm` and return it; the
    results are views of it."""
    if buf is None or buf.dtype != dt or buf.size != sum(sizes):
        buf = np.empty(sum(sizes), dt)
    n = comm.size
    exact = name == "pmean" and n & (n - 1) == 0          # 1/n a power of two: x/n == x*(1/n)
    inv = np.asarray(1.0 / n, dt) if exact else None
    off = 0
    for v, size in zip(values, sizes):
        piece = buf[off:off + size]
        src = np.asarray(v).reshape(-1)
        if exact and n > 1:
            np.multiply(src, inv, out=piece)
        else:
            piece[...] = src
        off += size
    comm.allreduce_(buf, _REDUCE_OP[name])
    if name == "pmean" and not exact:
        buf /= np.asarray(n, dt)
    return buf


def _control_flow_runner(e):
    """For a `scan`, `while` or `cond` equation whose bodies hold collectives: a function of
    its operands running it with compiled bodies (`backend.numba.compile` splits a body with
    collectives into segments in turn), or None for any other equation (its NumPy impl).
    Only the loop, the predicate's value and the branch index are handled in Python; every
    process must take the same branches and trip counts, as for any collective."""
    from ..backend.numba import compile as backend_compile
    name, p = e.prim.name, e.params
    if name == "scan":
        body = backend_compile(p["jaxpr"])
        nc, nk, length, reverse = p["num_consts"], p["num_carry"], p["length"], p["reverse"]
        y_avals = p["jaxpr"].out_avals[nk:]

        def run_scan(*args):
            consts, carry = list(args[:nc]), list(args[nc:nc + nk])
            xs = [np.asarray(x) for x in args[nc + nk:]]
            ys = [np.empty((length,) + a.shape, a.dtype) for a in y_avals]
            for step in range(length):
                i = length - 1 - step if reverse else step
                outs = body(*consts, *carry, *[np.asarray(x[i]) for x in xs])
                carry = outs[:nk]
                for y, o in zip(ys, outs[nk:]):
                    y[i] = o
            return [np.asarray(c) for c in carry] + ys
        return run_scan
    if name == "while":
        cond, body = backend_compile(p["cond_jaxpr"]), backend_compile(p["body_jaxpr"])
        cn, bn = p["cond_nconsts"], p["body_nconsts"]

        def run_while(*args):
            cc, bc, carry = args[:cn], args[cn:cn + bn], list(args[cn + bn:])
            while bool(cond(*cc, *carry)[0]):
                carry = body(*bc, *carry)
            return [np.asarray(c) for c in carry]
        return run_while
    if name == "cond":
        branches = [backend_compile(b) for b in p["branches"]]

        def run_cond(index, *args):
            i = int(np.clip(np.asarray(index), 0, len(branches) - 1))
            return [np.asarray(o) for o in branches[i](*args)]
        return run_cond
    return None


def _comm(axis):
    m = M.find(axis)
    if m is None:
        from ..lax.collectives import _unbound
        raise _unbound(axis)
    return m.comm(axis)


def _segment_fun(eqns, ins, outs):
    def fun(*vals):
        env = dict(zip(ins, vals))

        def read(a):
            return a.val if isinstance(a, Literal) else env[a]
        for e in eqns:
            out = e.prim.bind(*[read(a) for a in e.invars], **e.params)
            if e.prim.multiple_results:
                env.update(zip(e.outvars, out))
            else:
                env[e.outvars[0]] = out
        return [env[v] for v in outs]
    return fun
