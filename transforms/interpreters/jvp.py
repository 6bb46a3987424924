"""Forward mode: a JVPTracer carries (primal, tangent); `None` is a symbolic zero tangent."""
from __future__ import annotations

from ..core import Trace, Tracer, bind_in, get_aval, new_trace, set_current_trace


class JVPTracer(Tracer):
    __slots__ = ("primal", "tangent", "_aval")

    def __init__(self, trace, primal, tangent):
        self._trace, self.primal, self.tangent = trace, primal, tangent
        self._aval = None

    @property
    def aval(self):
        a = self._aval          # cached: shape/dtype are asked for many times per operation
        if a is None:
            a = self._aval = get_aval(self.primal)
        return a

    def concrete_value(self):
        p = self.primal
        return p.concrete_value() if isinstance(p, Tracer) else p

    def constant_value(self):
        if self.tangent is not None:
            return None
        p = self.primal
        return p.constant_value() if isinstance(p, Tracer) else p


class JVPTrace(Trace):
    def lift(self, val):
        return JVPTracer(self, val, None)          # a constant: zero tangent

    def process_primitive(self, prim, args, params):
        primals, tangents, any_tangent, any_own = [], [], False, False
        for a in args:
            if self.is_own(a):
                primals.append(a.primal)
                tangents.append(a.tangent)
                any_tangent = any_tangent or a.tangent is not None
                any_own = True
            else:
                primals.append(a)
                tangents.append(None)
        if not any_tangent:
            out = bind_in(self.parent, prim, *primals, **params)
            if not any_own:
                return out
            # computed from values of this trace without tangents (lifted constants): the
            # result stays a value of this trace, so that it can still be indexed by a
            # tracer and has `.at`, as a JAX array (`(tnp.arange(3.) * 2)[i]`)
            if prim.multiple_results:
                return [JVPTracer(self, o, None) for o in out]
            return JVPTracer(self, out, None)
        custom = prim.jvp_trace_rule           # higher-order primitives
        if custom is not None:
            with set_current_trace(self.parent):
                out, tout = custom(self, primals, tangents, **params)
        else:
            if prim.jvp is None:
                raise NotImplementedError(f"differentiation rule for '{prim.name}' not implemented")
            with set_current_trace(self.parent):
                out, tout = prim.jvp(primals, tangents, **params)
        if prim.multiple_results:
            return [JVPTracer(self, p, t) for p, t in zip(out, tout)]
        return JVPTracer(self, out, tout)


def jvp_flat(fun, primals, tangents):
    """Run `fun` (flat list -> flat list) in forward mode. Zero tangents come back as None."""
    with new_trace(JVPTrace) as trace:
        ins = [JVPTracer(trace, p, t) for p, t in zip(primals, tangents)]
        outs = fun(*ins)
        out_p, out_t = [], []
        for o in outs:
            if trace.is_own(o):
                out_p.append(o.primal)
                out_t.append(o.tangent)
            else:
                out_p.append(o)
                out_t.append(None)
    return out_p, out_t


def jvp_jaxpr(closed, nonzeros, instantiate=False):
    """The JVP of `closed` as a jaxpr: `(*primals, *nonzero_tangents) -> (*primal_outs,
    *nonzero_tangent_outs)`. Returns `(jaxpr, out_nonzero)`. `nonzeros` flags the inputs that
    have a tangent; outputs flagged in `instantiate` (a bool or one flag per output) always
    get one (a zero when it does not depend on the inputs)."""
    from ..ir import eval_jaxpr
    from .partial_eval import trace_to_jaxpr
    n_out = len(closed.out_avals)
    if isinstance(instantiate, bool):
        instantiate = [instantiate] * n_out
    in_avals = list(closed.in_avals)
    t_avals = [a for a, nz in zip(in_avals, nonzeros) if nz]
    store = {}

    def fun(*args):
        primals = list(args[:len(in_avals)])
        it = iter(args[len(in_avals):])
        tangents = [next(it) if nz else None for nz in nonzeros]
        out_p, out_t = jvp_flat(lambda *a: eval_jaxpr(closed.jaxpr, closed.consts, *a),
                                primals, tangents)
        if any(instantiate):
            from ..lax.elementwise import zeros_like_aval
            out_t = [zeros_like_aval(get_aval(p)) if t is None and inst else t
                     for p, t, inst in zip(out_p, out_t, instantiate)]
        store["nz"] = [t is not None for t in out_t]
        return list(out_p) + [t for t in out_t if t is not None]

    new = trace_to_jaxpr(fun, in_avals + t_avals)
    return new, store["nz"]


# ---------------------------------------------------------------------------------------------
# Rule helpers: JVPs (and transposes) of common shapes, registered in one line
# ---------------------------------------------------------------------------------------------

def _zeros_like(x):
    from ..lax.elementwise import zeros_like_aval
    return zeros_like_aval(get_aval(x))


def deflinear(prim, transpose=None, linear_argnums=None):
    """Register the JVP of a primitive that is linear in the operands `linear_argnums` (all
    of them by default) jointly: the tangent is `prim` applied to their tangents (zeros
    instantiated) with the other operands (integer indices, say) passed as they are. The
    other operands must not be differentiable. `transpose`, when given, is registered too."""
    def jvp(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        lin = range(len(primals)) if linear_argnums is None else linear_argnums
        ts = list(primals)
        for i in lin:
            t = tangents[i]
            ts[i] = _zeros_like(primals[i]) if t is None else t
        return out, prim.bind(*ts, **params)
    prim.def_jvp(jvp)
    if transpose is not None:
        prim.def_transpose(transpose)
    return prim


def defbilinear(prim, lhs_transpose, rhs_transpose):
    """Register the JVP and transpose of a primitive bilinear in its two operands (a product:
    dot_general, conv): `d(l * r) = dl * r + l * dr`. `lhs_transpose(ct, lhs, rhs, **params)`
    is the cotangent of `lhs` when `lhs` is the linear input (an `UndefinedPrimal`), and
    `rhs_transpose` likewise."""
    def jvp(primals, tangents, **params):
        lhs, rhs = primals
        tl, tr = tangents
        out = prim.bind(lhs, rhs, **params)
        from ..lax.elementwise import add_tangents
        return out, add_tangents(None if tl is None else prim.bind(tl, rhs, **params),
                                 None if tr is None else prim.bind(lhs, tr, **params))

    def transpose(ct, lhs, rhs, **params):
        from .transpose import is_undefined
        if is_undefined(lhs) and is_undefined(rhs):
            raise TypeError(f"{prim.name} is not linear in both operands at once")
        if is_undefined(lhs):
            return [lhs_transpose(ct, lhs, rhs, **params), None]
        return [None, rhs_transpose(ct, lhs, rhs, **params)]

    prim.def_jvp(jvp)
    prim.def_transpose(transpose)
    return prim


def defjvp_zero(prim):
    """Register a zero JVP: the primitive's outputs do not depend differentiably on its
    inputs (integer or boolean outputs, bit reinterpretation, random bits)."""
    def jvp(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        return out, ([None] * len(out) if prim.multiple_results else None)
    prim.def_jvp(jvp)
    return prim
