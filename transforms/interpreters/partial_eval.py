"""Staging: trace Python functions into jaxprs, and partial evaluation for reverse mode.

A `StagingTrace` records every primitive applied to its tracers as an equation. Values from
outside (NumPy arrays, tracers of enclosing transforms) become constants of the jaxpr.

In *partial* mode (used by `linearize`, hence `vjp`/`grad`), an operation none of whose inputs
is one of this trace's tracers is not recorded but evaluated right away by the parent trace:
known values stay concrete, only the work that depends on the unknown (tangent) inputs is
staged. That staged part is the linear function that `transpose` turns into the backward pass.
"""
from __future__ import annotations

import functools

import numpy as np

from ..config import config
from ..core import Trace, Tracer, bind_in, dead_constant, get_aval, new_trace
from ..ir import ClosedJaxpr, Eqn, Jaxpr, Literal, Var, check_jaxpr
from ..source_info import replayed, user_frame


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


class ConstStagingTracer(StagingTracer):
    """A constant of the jaxpr made by `StagingTrace.lift`: it keeps its concrete value, as
    a JAX array created under `jit` does (`int(tnp.array(3))`, `bool(tnp.array(True))`),
    while operations on it are staged like those on any other tracer."""
    __slots__ = ("_value",)

    def __init__(self, trace, var, value):
        self._trace, self._var, self._value = trace, var, value

    def concrete_value(self):
        return self._value

    def constant_value(self):
        return self._value


class WeakConstStagingTracer(ConstStagingTracer):
    """A constant of the jaxpr computed from weakly typed values only (`tnp.zeros_like(s)` of
    a weak `s`): weak, as the JAX array would be."""
    __slots__ = ()
    weak_type = True


def weakened(t):
    """`t` marked weakly typed when it is a staging tracer (others are returned as they are)."""
    if type(t) is StagingTracer:
        return WeakStagingTracer(t._trace, t._var)
    if type(t) is ConstStagingTracer:
        return WeakConstStagingTracer(t._trace, t._var, t._value)
    return t


def strengthened(t):
    """`t` with its weak type dropped (a result JAX casts explicitly: reductions, astype)."""
    if type(t) is WeakStagingTracer:
        return StagingTracer(t._trace, t._var)
    if type(t) is WeakConstStagingTracer:
        return ConstStagingTracer(t._trace, t._var, t._value)
    return t


_PY_SCALARS = (bool, int, float, complex)


def all_weak(*args):
    """Every operand is a Python scalar or a weakly typed tracer, and one is a tracer: the
    result of combining them is weak too (as in JAX)."""
    tracer = False
    for a in args:
        if isinstance(a, Tracer):
            if not a.weak_type:
                return False
            tracer = True
        elif not isinstance(a, _PY_SCALARS):
            return False
    return tracer


def keep_weak(out, *args):
    """`out`, marked weakly typed when it is a staging tracer (or a constant of the staging
    trace) computed from weak values only; eager results and other tracers are returned at the
    cost of one type check."""
    if type(out) is not StagingTracer and type(out) is not ConstStagingTracer:
        return out
    return weakened(out) if all_weak(*args) else out


def _operands(args, positions):
    out = []
    for i in positions:
        if i < len(args):
            a = args[i]
            out.extend(a) if isinstance(a, (list, tuple)) else out.append(a)
    return out


def weak_through(*positions):
    """Decorator: the function's staged result is weak when its operands at `positions` (a
    list there counts element by element) are all weak, as JAX's structural primitives
    (reshape, broadcast, slice, concatenate...) propagate weak types."""
    def deco(f):
        @functools.wraps(f)
        def keeps(*args, **kwargs):
            out = f(*args, **kwargs)
            if type(out) is not StagingTracer and type(out) is not ConstStagingTracer:
                return out                     # (eager: no operand list built)
            return keep_weak(out, *_operands(args, positions))
        return keeps
    return deco


class StagingTrace(Trace):
    def __init__(self, parent, partial=False):
        super().__init__(parent)
        self.partial = partial
        self.eqns = []
        self.const_vars = {}     # id(value) -> (value, Var)
        self.invars = []
        self.lifted = False      # whether `lift` made a constant (then `_folded` is tried)

    def lift(self, val):
        if self.partial:
            # this trace's own values are the unknown (tangent-dependent) ones: a constant is
            # known, so it belongs to the enclosing trace
            return self.parent.lift(val)
        self.lifted = True
        return ConstStagingTracer(self, self.var_of(val), val)

    def _folded(self, prim, args, params):
        """`prim` computed now, by the parent trace, when its operands are lifted constants
        and NumPy values only (at least one lifted): the result is a lifted constant again,
        so `int(tnp.array(x.shape).prod())` works under jit (README: operations on constants
        only run in NumPy while tracing). None when the equation must be staged: an operand
        is traced, or the primitive has effects or a body (control flow, callbacks,
        collectives), which run when the program runs, not while it is traced."""
        vals, lifted = [], False
        for a in args:
            if isinstance(a, Tracer):
                if not isinstance(a, ConstStagingTracer) or a._trace is not self:
                    return None
                vals.append(a._value)
                lifted = True
            else:
                vals.append(a)
        if not lifted or prim.staging_rule is not None or "axis_name" in params \
                or prim.name.endswith("callback"):
            return None
        out = bind_in(self.parent, prim, *vals, **params)
        if prim.multiple_results:
            return [self.lift(o) for o in out]
        return self.lift(out)

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
            v = dead_constant(x)
            if v is not None:           # a constant lifted by a transformation that returned
                return self.var_of(v)
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
        info = None if self.partial else (replayed() or user_frame(3))
        self.eqns.append(Eqn(prim, invars, outvars, params, info))
        return [StagingTracer(self, v) for v in outvars]

    # -- dispatch -------------------------------------------------------------------------------
    def process_primitive(self, prim, args, params):
        if self.partial and not any([self.is_own(a) for a in args]):
            return bind_in(self.parent, prim, *args, **params)
        if self.lifted:
            out = self._folded(prim, args, params)
            if out is not None:
                return out
        custom = prim.staging_rule
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
        return checked(ClosedJaxpr(Jaxpr(constvars, self.invars, outvars, self.eqns), consts))


def checked(closed: ClosedJaxpr) -> ClosedJaxpr:
    """`closed`, type-checked by `ir.check_jaxpr` first when the `jax_enable_checks` flag is
    on (the test suite turns it on; every jaxpr a transformation builds passes here)."""
    if config.jax_enable_checks:
        check_jaxpr(closed)
    return closed


def trace_to_jaxpr(fun, in_avals, partial=False):
    """Trace `fun` (flat list of args -> flat list of outputs) into a `ClosedJaxpr`."""
    with new_trace(StagingTrace, partial) as trace:
        ins = [trace.new_arg(a) for a in in_avals]
        outs = fun(*ins)
        return trace.build(list(outs))


def convert_constvars(closed: ClosedJaxpr, which=None):
    """Closure conversion: `(jaxpr, values)` where `jaxpr` is `closed` with the constants
    flagged in `which` (all of them by default) turned into leading inputs, in order, and
    `values` are those constants. Bind the result as `jaxpr(*values, *args)`.

    Values a traced function closed over (possibly tracers of an enclosing transformation)
    thereby become explicit operands, so every transformation of the equation sees them;
    constants not flagged stay constants of the returned ClosedJaxpr."""
    j = closed.jaxpr
    if which is None:
        which = [True] * len(j.constvars)
    moved = [v for v, w in zip(j.constvars, which) if w]
    kept = [v for v, w in zip(j.constvars, which) if not w]
    values = [c for c, w in zip(closed.consts, which) if w]
    kept_vals = [c for c, w in zip(closed.consts, which) if not w]
    return checked(ClosedJaxpr(Jaxpr(kept, moved + list(j.invars), j.outvars, j.eqns),
                               kept_vals)), values


# ---------------------------------------------------------------------------------------------
# linearize: partial evaluation of the JVP
# ---------------------------------------------------------------------------------------------

def linearize_flat(fun, primals, differentiable):
    """Evaluate `fun` at `primals` and stage its derivative as a linear jaxpr.

    Returns `(primal_outs, linear, out_nonzero)`: `linear` maps the tangents of the inputs
    flagged in `differentiable` to the non-zero output tangents (`out_nonzero` marks them).
    """
    from .jvp import jvp_flat
    with new_trace(StagingTrace, True) as staging:
        tangents = [staging.new_arg(get_aval(p)) if d else None
                    for p, d in zip(primals, differentiable)]
        out_p, out_t = jvp_flat(fun, primals, tangents)
        out_nonzero = [t is not None for t in out_t]
        linear = staging.build([t for t in out_t if t is not None])
    return out_p, linear, out_nonzero


# ---------------------------------------------------------------------------------------------
# Jaxpr-level partial evaluation (for higher-order primitives under linearize)
# ---------------------------------------------------------------------------------------------

def partial_eval_jaxpr(closed: ClosedJaxpr, in_unknown, instantiate=False):
    """Split `closed` by which inputs are unknown.

    Returns `(known, unknown, out_unknown, res_src)`:
      known(*known_inputs)                   -> (*known_outputs, *residuals)
      unknown(*residuals, *unknown_inputs)   -> unknown_outputs
    `len(res_src)` is the number of residuals; `res_src[r]` is the index (among all inputs of
    `closed`) of the known input that residual `r` simply is, or None when it is computed.
    Outputs flagged in `instantiate` (a bool or one flag per output) are unknown outputs even
    when computable from knowns (their value becomes a residual).

    The split is traced: the jaxpr is evaluated on a partial staging trace over a staging
    trace of the known part, so every nested equation with mixed inputs (cond, scan, while,
    pjit, remat, custom_jvp/vjp) is split by its primitive's own `staging_rule` rather than
    moved wholesale to the unknown side (which would make the backward pass try to transpose
    non-linear primal work). Each equation keeps its source location; numeric constants stay
    constants of the part that uses them.
    """
    from ..ir import dce_closed, dce_jaxpr
    n_out = len(closed.out_avals)
    if isinstance(instantiate, bool):
        instantiate = [instantiate] * n_out
    in_avals = closed.in_avals
    with new_trace(StagingTrace) as kt:
        k_in = [kt.new_arg(a) for a, u in zip(in_avals, in_unknown) if not u]
        with new_trace(StagingTrace, True) as ut:
            u_in = [ut.new_arg(a) for a, u in zip(in_avals, in_unknown) if u]
            ki, ui = iter(k_in), iter(u_in)
            args = [next(ui) if u else next(ki) for u in in_unknown]
            outs = _replay(closed, args)
            out_unknown = [ut.is_own(o) or bool(inst) for o, inst in zip(outs, instantiate)]
            uk = ut.build([o for o, u in zip(outs, out_unknown) if u])
        uj = uk.jaxpr
        res_vars, res_vals, c_vars, c_vals = [], [], [], []
        for v, c in zip(uj.constvars, uk.consts):
            if isinstance(c, Tracer) and kt.is_own(c):
                res_vars.append(v)
                res_vals.append(c)
            else:
                c_vars.append(v)
                c_vals.append(c)
        full = Jaxpr(c_vars, res_vars + list(uj.invars), uj.outvars, uj.eqns)
        pruned, used_in, used_c = dce_jaxpr(full)
        used_res = used_in[:len(res_vars)]
        res_vars = [v for v, u in zip(res_vars, used_res) if u]
        res_vals = [c for c, u in zip(res_vals, used_res) if u]
        unknown = ClosedJaxpr(Jaxpr(pruned.constvars, res_vars + list(uj.invars), pruned.outvars,
                                    pruned.eqns), [c for c, u in zip(c_vals, used_c) if u])
        known = kt.build([o for o, u in zip(outs, out_unknown) if not u] + res_vals)
    known = checked(dce_closed(known))
    checked(unknown)
    pos = {id(t): i for i, t in zip([i for i, u in enumerate(in_unknown) if not u], k_in)}
    res_src = [pos.get(id(r)) for r in res_vals]
    return known, unknown, out_unknown, res_src


def _replay(closed, args):
    """`eval_jaxpr`, telling the staging traces which equation they are re-staging so the
    new equations keep its source location (and skip the stack walk)."""
    from .. import source_info
    env = dict(zip(closed.jaxpr.constvars, closed.consts))
    env.update(zip(closed.jaxpr.invars, args))

    def read(v):
        return v.val if type(v) is Literal else env[v]

    for eqn in closed.jaxpr.eqns:
        with source_info.replaying(eqn.source_info):
            out = eqn.prim.bind(*[read(v) for v in eqn.invars], **eqn.params)
        env.update(zip(eqn.outvars, out if eqn.prim.multiple_results else [out]))
    return [read(v) for v in closed.jaxpr.outvars]
