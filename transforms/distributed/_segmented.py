"""Compiled programs that contain collectives over process groups.

A jaxpr with `psum`/`pmax`/`pmin`/`all_gather`/`ppermute`/`axis_index` equations cannot be one
Numba function (MPI is called from Python), so `backend.numba.compile` hands it here and it is
split at its collectives:

    segment 0 (compiled) -> collectives of stage 0 -> segment 1 (compiled) -> ... -> segment S

An equation's *stage* is the number of collectives on its longest dependency chain; every
collective whose operands are ready after segment k runs in stage k. In a stage, all `psum`
(`pmax`, `pmin`) operands with the same axis and dtype are packed by segment k itself (a
`concatenate` of their flattened values, written once by compiled code into one fresh buffer)
and reduced by ONE in-place `Allreduce` on that contiguous buffer; their results are views of
it, read by later segments or returned without another copy. A pytree of gradients therefore
costs one MPI call per dtype, not one per leaf. Axis names resolve against the mesh active at
call time; the first call checks that every member agrees on the collectives' shapes and dtypes.
Equations that nest collectives inside control flow run through their NumPy impl.
"""
from __future__ import annotations

import numpy as np

from ..ir import ClosedJaxpr, Jaxpr, Literal, Var
from . import _mesh as M
from . import _runtime as R

COLLECTIVES = {"psum", "pmax", "pmin", "all_gather", "axis_index", "ppermute"}
_REDUCE_OP = {"psum": "sum", "pmax": "max", "pmin": "min"}


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
    __slots__ = ("invars", "outvars", "exe", "packs")


class _Host:
    """The collectives of one stage: packed reductions, then the other host equations."""
    __slots__ = ("groups", "others")


class SegmentedExecutable:
    """Callable like `backend.numba.Executable`: `exe(*arrays) -> list of outputs`."""

    def __init__(self, closed):
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

        depth = {}

        def dep(a):
            return depth.get(a, 0) if isinstance(a, Var) else 0

        seg_eqns, host_eqns = {}, {}
        for e in jaxpr.eqns:
            d = max([dep(a) for a in e.invars], default=0)
            host = e.prim.name in COLLECTIVES or any(_contains(j) for j in _sub_jaxprs(e.params))
            if host:
                host_eqns.setdefault(d, []).append(e)
                for v in e.outvars:
                    depth[v] = d + 1
            else:
                seg_eqns.setdefault(d, []).append(e)
                for v in e.outvars:
                    depth[v] = d
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
            packs, loose = [], []     # packed by segment k / reduced from a Python copy
            for key, es in groups.items():
                if len(es) > 1 and all(isinstance(e.invars[0], Var) for e in es):
                    packs.append((key, es))
                else:
                    loose.append((key, es))
            stage_plan.append((packs, loose, others))
        host_reads = [set() for _ in range(n_stages)]
        for k, (packs, loose, others) in enumerate(stage_plan):
            needed_after[k].update(e.invars[0] for _, es in packs for e in es)
            for e in [e for _, es in loose for e in es] + others:
                host_reads[k].update(a for a in e.invars if isinstance(a, Var))
        final = {a for a in jaxpr.outvars if isinstance(a, Var)}

        self.steps = []
        for k in range(n_stages + 1):
            eqns = seg_eqns.get(k, [])
            defined = {v for e in eqns for v in e.outvars}
            packs, loose, others = stage_plan[k] if k < n_stages else ([], [], [])
            later = set(final)
            for j in range(k + 1, n_stages + 1):
                later |= needed_after[j]
            for j in range(k, n_stages):
                later |= host_reads[j]
            outs = [v for e in eqns for v in e.outvars if v in later]
            ins = []
            seen = set()
            for e in eqns:
                for a in e.invars:
                    if isinstance(a, Var) and a not in defined and a not in seen:
                        seen.add(a)
                        ins.append(a)
            for _, es in packs:
                for e in es:
                    a = e.invars[0]
                    if a not in defined and a not in seen:
                        seen.add(a)
                        ins.append(a)
            seg = None
            if eqns or packs:
                seg = _Segment()
                seg.invars, seg.outvars, seg.packs = ins, outs, packs
                closed_seg = trace_to_jaxpr(_segment_fun(eqns, ins, outs, packs),
                                            [v.aval for v in ins])
                seg.exe = backend_compile(closed_seg)
            host = None
            if k < n_stages:
                host = _Host()
                host.groups = [(key, es, True) for key, es in packs] + \
                              [(key, es, False) for key, es in loose]
                host.others = others
            self.steps.append((seg, host))

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
        return [a.val if isinstance(a, Literal) else env[a] for a in self.outvars]

    def _run(self, env):
        def read(a):
            return np.asarray(a.val) if isinstance(a, Literal) else env[a]

        for seg, host in self.steps:
            packed = []
            if seg is not None:
                outs = seg.exe(*[env[v] for v in seg.invars])
                n = len(seg.outvars)
                env.update(zip(seg.outvars, outs[:n]))
                packed = outs[n:]
            if host is None:
                continue
            it = iter(packed)
            for (name, axis, dt), es, is_packed in host.groups:
                comm = _comm(axis)
                op = _REDUCE_OP[name]
                if is_packed:
                    buf = next(it)
                    comm.check_same(f"{name} {np.dtype(dt).str} " + " ".join(
                        str(list(e.outvars[0].aval.shape)) for e in es), f"lax.{name}")
                    comm.allreduce_(buf, op)
                    off = 0
                    for e in es:
                        shape = e.outvars[0].aval.shape
                        size = int(np.prod(shape, dtype=np.int64))
                        env[e.outvars[0]] = buf[off:off + size].reshape(shape)
                        off += size
                else:
                    for e in es:
                        x = np.array(read(e.invars[0]), dtype=dt, order="C", copy=True)
                        comm.check_same(f"{name} {x.dtype.str}{list(x.shape)}", f"lax.{name}")
                        env[e.outvars[0]] = comm.allreduce_(x, op)
            for e in host.others:
                out = e.prim.bind(*[read(a) for a in e.invars], **e.params)
                if e.prim.multiple_results:
                    env.update(zip(e.outvars, out))
                else:
                    env[e.outvars[0]] = np.asarray(out)


def _comm(axis):
    m = M.find(axis)
    if m is None:
        from ..lax.collectives import _unbound
        raise _unbound(axis)
    return m.comm(axis)


def _segment_fun(eqns, ins, outs, packs):
    from ..lax import shape as S

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
        res = [env[v] for v in outs]
        for (_, _, dt), es in packs:
            flat = [S.reshape(read(e.invars[0]), (int(np.prod(e.invars[0].aval.shape,
                                                               dtype=np.int64)),))
                    for e in es]
            res.append(S.concatenate(flat, 0))
        return res
    return fun
