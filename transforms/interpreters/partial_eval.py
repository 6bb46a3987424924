"""Staging: trace Python functions into jaxprs, and partial evaluation for reverse mode.

A `StagingTrace` records every primitive applied to its tracers as an equation. Values from
outside (NumPy arrays, tracers of enclosing transforms) become constants of the jaxpr.

In *partial* mode (used by `linearize`, hence `vjp`/`grad`), an operation none of whose inputs
is one of this trace's tracers is not recorded but evaluated right away by the parent trace:
known values stay concrete, only the work that depends on the unknown (tangent) inputs is
staged. That staged part is the linear function that `transpose` turns into the backward pass.
"""
from __future__ import annotations

import numpy as np

from ..core import Trace, Tracer, bind_in, get_aval, new_trace
from ..ir import ClosedJaxpr, Eqn, Jaxpr, Literal, Var
from ..source_info import user_frame


class StagingTracer(Tracer):
    # the IR variable is `_var`, not `var`: `x.var()` is the ndarray method on every tracer
    __slots__ = ("_var",)

    def __init__(self, trace, var):
        self._trace, self._var = trace, var

    @property
    def aval(self):
        return self._var.aval


class WeakStagingTracer(StagingTracer):
    """A StagingTracer standing for a Python scalar (see `Tracer.weak_type`)."""
    __slots__ = ()
    weak_type = True


def weakened(t):
    """`t` marked weakly typed when it is a staging tracer (others are returned as they are)."""
    return WeakStagingTracer(t._trace, t._var) if type(t) is StagingTracer else t


class StagingTrace(Trace):
    def __init__(self, parent, partial=False):
        super().__init__(parent)
        self.partial = partial
        self.eqns = []
        self.const_vars = {}     # id(value) -> (value, Var)
        self.invars = []

    # -- building blocks ------------------------------------------------------------------------
    def new_arg(self, aval):
        v = Var(aval)
        self.invars.append(v)
        return StagingTracer(self, v)

    def var_of(self, x):
        """The IR atom for `x`: its Var if ours, a Literal for scalars, else a constvar."""
        if isinstance(x, Tracer):
            if self.is_own(x):
                return x._var
        elif isinstance(x, (bool, int, float)):
            return Literal(np.asarray(x))
        elif isinstance(x, (np.ndarray, np.generic)) and np.ndim(x) == 0:
            # a copy: a 0-d array closed over is captured by value, like any other constant
            return Literal(np.array(x))
        key = id(x)
        hit = self.const_vars.get(key)
        if hit is None:
            hit = (x, Var(get_aval(x)))
            self.const_vars[key] = hit
        return hit[1]

    def add_eqn(self, prim, invars, out_avals, params):
        outvars = [Var(a) for a in out_avals]
        # the linear jaxprs of linearize are transient: skip the (costly) stack walk there
        info = None if self.partial else user_frame(3)
        self.eqns.append(Eqn(prim, invars, outvars, params, info))
        return [StagingTracer(self, v) for v in outvars]

    # -- dispatch -------------------------------------------------------------------------------
    def process_primitive(self, prim, args, params):
        if self.partial and not any([self.is_own(a) for a in args]):
            return bind_in(self.parent, prim, *args, **params)
        custom = getattr(prim, "staging_rule", None)
        if custom is not None:
            return custom(self, args, params)
        return self.stage(prim, args, params)

    def stage(self, prim, args, params):
        """Record `prim(*args)` as an equation (the default for every primitive)."""
        invars = [self.var_of(a) for a in args]
        out_aval = prim.abstract_eval(*[v.aval for v in invars], **params)
        if prim.multiple_results:
            return self.add_eqn(prim, invars, out_aval, params)
        return self.add_eqn(prim, invars, [out_aval], params)[0]

    def build(self, outs) -> ClosedJaxpr:
        outvars = [self.var_of(o) for o in outs]
        consts = [c for c, _ in self.const_vars.values()]
        constvars = [v for _, v in self.const_vars.values()]
        return ClosedJaxpr(Jaxpr(constvars, self.invars, outvars, self.eqns), consts)


def trace_to_jaxpr(fun, in_avals, partial=False):
    """Trace `fun` (flat list of args -> flat list of outputs) into a `ClosedJaxpr`."""
    with new_trace(StagingTrace, partial) as trace:
        ins = [trace.new_arg(a) for a in in_avals]
        outs = fun(*ins)
        return trace.build(list(outs))


def hoist_consts(closed: ClosedJaxpr):
    """`(jaxpr, consts)`: `closed` as a const-free ClosedJaxpr whose leading inputs are its
    former constants (closure conversion: values a traced function closed over, possibly
    tracers of an enclosing transformation, become explicit operands)."""
    j = closed.jaxpr
    return (ClosedJaxpr(Jaxpr([], list(j.constvars) + list(j.invars), j.outvars, j.eqns), []),
            list(closed.consts))


# ---------------------------------------------------------------------------------------------
# linearize: partial evaluation of the JVP
# ---------------------------------------------------------------------------------------------

def linearize_flat(fun, primals, differentiable):
    """Evaluate `fun` at `primals` and stage its derivative as a linear jaxpr.

    Returns `(primal_outs, linear, out_nonzero)`: `linear` maps the tangents of the inputs
    flagged in `differentiable` to the non-zero output tangents (`out_nonzero` marks them).
    """
    from .jvp import JVPTrace, JVPTracer
    with new_trace(StagingTrace, True) as staging:
        tangents = [staging.new_arg(get_aval(p)) if d else None
                    for p, d in zip(primals, differentiable)]
        with new_trace(JVPTrace) as jvp_trace:
            ins = [JVPTracer(jvp_trace, p, t) for p, t in zip(primals, tangents)]
            outs = fun(*ins)
            out_p, out_t = [], []
            for o in outs:
                if jvp_trace.is_own(o):
                    out_p.append(o.primal)
                    out_t.append(o.tangent)
                else:
                    out_p.append(o)
                    out_t.append(None)
        out_nonzero = [t is not None for t in out_t]
        linear = staging.build([t for t in out_t if t is not None])
    return out_p, linear, out_nonzero


# ---------------------------------------------------------------------------------------------
# Jaxpr-level partial evaluation (for higher-order primitives under linearize)
# ---------------------------------------------------------------------------------------------

def partial_eval_jaxpr(closed: ClosedJaxpr, in_unknown):
    """Split `closed` into a known part and an unknown part.

    Returns `(known, unknown, out_unknown, num_res)`:
      known(*known_inputs)            -> known_outputs + residuals
      unknown(*residuals, *unknown_inputs) -> unknown_outputs
    """
    jaxpr = closed.jaxpr
    unknown_vars = {v for v, u in zip(jaxpr.invars, in_unknown) if u}
    known_eqns, unknown_eqns = [], []
    for eqn in jaxpr.eqns:
        unk = [isinstance(v, Var) and v in unknown_vars for v in eqn.invars]
        if any(unk):
            rule = getattr(eqn.prim, "partial_eval_jaxpr_rule", None)
            if rule is not None and not all(unk):
                # a higher-order equation splits into a known and an unknown equation
                eqn_known, eqn_unknown, eqn_out_unk = rule(eqn, unk)
                if eqn_known is not None:
                    known_eqns.append(eqn_known)
                if eqn_unknown is not None:          # None: no output depends on unknowns
                    unknown_eqns.append(eqn_unknown)
                unknown_vars.update(v for v, u in zip(eqn.outvars, eqn_out_unk) if u)
            else:
                unknown_eqns.append(eqn)
                unknown_vars.update(eqn.outvars)
        else:
            known_eqns.append(eqn)
    out_unknown = [isinstance(v, Var) and v in unknown_vars for v in jaxpr.outvars]
    # residuals: known Vars (incl. constvars and known invars) read by unknown equations or
    # returned as unknown... plus known outputs that are returned unknown (impossible)
    res, seen = [], set()
    for eqn in unknown_eqns:
        for v in eqn.invars:
            if isinstance(v, Var) and v not in unknown_vars and v not in seen:
                seen.add(v)
                res.append(v)
    known_in = [v for v, u in zip(jaxpr.invars, in_unknown) if not u]
    known_out = [v for v, u in zip(jaxpr.outvars, out_unknown) if not u]
    known = ClosedJaxpr(Jaxpr(jaxpr.constvars, known_in, known_out + res, known_eqns),
                        closed.consts)
    res_vars = [Var(v.aval) for v in res]
    sub = dict(zip(res, res_vars))
    unknown_in = [v for v, u in zip(jaxpr.invars, in_unknown) if u]
    unk_eqns = [Eqn(e.prim, [sub.get(v, v) if isinstance(v, Var) else v for v in e.invars],
                    e.outvars, e.params, e.source_info) for e in unknown_eqns]
    unk_out = [sub.get(v, v) if isinstance(v, Var) else v
               for v, u in zip(jaxpr.outvars, out_unknown) if u]
    unknown = ClosedJaxpr(Jaxpr([], res_vars + unknown_in, unk_out, unk_eqns), [])
    return known, unknown, out_unknown, len(res)
