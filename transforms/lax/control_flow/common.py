"""What cond, scan and while share: tracing user functions into bodies, the body
surgery their rules need (permuting inputs, batching with forced outputs), and the
"split one equation in two" machinery their partial-evaluation rules are written in
(`_Split`, `_register_split`)."""
from __future__ import annotations

from ... import tree as tree_util
from ...core import ShapedArray, as_leaf, bind_in
from ...interpreters import batching as B
from ...interpreters.partial_eval import convert_constvars, trace_to_jaxpr
from ...ir import ClosedJaxpr, Jaxpr

# =============================================================================================
# Helpers: tracing user functions, jaxpr surgery (JVP, partial evaluation, batching)
# =============================================================================================

def _is_weak(x):
    return type(x) in (bool, int, float, complex)


def _leaf(x):
    return as_leaf(x, "value")


def _lax():
    from ... import lax
    return lax


def _zeros(aval):
    from ..elementwise import zeros_like_aval
    return zeros_like_aval(aval)


def _stacked(aval, n):
    return ShapedArray((n,) + aval.shape, aval.dtype)


def _unstacked(aval):
    return ShapedArray(aval.shape[1:], aval.dtype)


def _trace(flat_fun, in_avals):
    """Trace `flat_fun` into a const-free ClosedJaxpr whose leading inputs are the values the
    function closed over. Returns `(closed, consts)`: bind with `*consts, *args`."""
    return convert_constvars(trace_to_jaxpr(flat_fun, in_avals))


def _trace_jaxpr(fun, in_avals):
    """Trace `fun` (flat -> flat) from inside a rule: returns a ClosedJaxpr (numeric consts
    captured by the rule stay its consts)."""
    return trace_to_jaxpr(fun, list(in_avals))


def _permute(closed, in_order, out_order):
    j = closed.jaxpr
    return ClosedJaxpr(Jaxpr(j.constvars, [j.invars[i] for i in in_order],
                             [j.outvars[i] for i in out_order], j.eqns), closed.consts)


def _stage_normally(trace, prim, args, params):
    invars = [trace.var_of(a) for a in args]
    out_avals = prim.abstract_eval(*[v.aval for v in invars], **params)
    return trace.add_eqn(prim, invars, out_avals, params)


def _batch_jaxpr(closed, size, in_batched, force, axis_name):
    """Batch a body with batch axis 0 on the flagged inputs. Returns `(jaxpr, out_batched)`;
    outputs flagged in `force` are batched (axis 0) even if they don't depend on the batch."""
    in_dims = [0 if b else None for b in in_batched]
    if isinstance(force, bool):
        force = [force] * len(closed.out_avals)
    _, dims = B.batch_jaxpr(closed, size, in_dims, None, axis_name)
    out_b = [d is not None or bool(f) for d, f in zip(dims, force)]
    new, _ = B.batch_jaxpr(closed, size, in_dims, [0 if b else None for b in out_b], axis_name)
    return new, out_b


def _instantiate(t, aval):
    return _zeros(aval) if t is None else t


def _fmt_path(path):
    return tree_util.keystr(path) if path else ""



# ---------------------------------------------------------------------------------------------
# Splitting a higher-order equation into a known and an unknown equation (partial evaluation)
# ---------------------------------------------------------------------------------------------

class _Split:
    """How one equation with some unknown inputs splits in two (see `_run_split`).

    known: (params, arg indices) of the known equation; its outputs are the original outputs
           listed in `known_out`, then `n_res` residuals.
    unknown: (params, operands) of the unknown equation, operands ('arg', i) or ('res', j),
           or None when no output is unknown; its outputs are the original outputs listed in
           `unknown_out` (None: an output not needed, e.g. a carry the known part computes).
    """
    __slots__ = ("known", "known_out", "n_res", "unknown", "unknown_out", "out_unknown")

    def __init__(self, known, known_out, n_res, unknown, unknown_out, out_unknown):
        self.known, self.known_out, self.n_res = known, known_out, n_res
        self.unknown, self.unknown_out, self.out_unknown = unknown, unknown_out, out_unknown


def _run_split(trace, prim, args, plan):
    """Staging rule body: evaluate the known equation in the parent trace now, stage the
    unknown one."""
    kparams, kidx = plan.known
    kouts = bind_in(trace.parent, prim, *[args[i] for i in kidx], **kparams)
    nko = len(plan.known_out)
    res = kouts[nko:]
    outs = [None] * len(plan.out_unknown)
    for o, i in zip(kouts[:nko], plan.known_out):
        outs[i] = o
    if plan.unknown is not None:
        uparams, uops = plan.unknown
        vals = [args[i] if kind == "arg" else res[i] for kind, i in uops]
        invars = [trace.var_of(v) for v in vals]
        out_avals = prim.abstract_eval(*[v.aval for v in invars], **uparams)
        uouts = trace.add_eqn(prim, invars, out_avals, uparams)
        for o, i in zip(uouts, plan.unknown_out):
            if i is not None:
                outs[i] = o
    return outs


def _staging_rule(prim, split):
    def rule(trace, args, params):
        own = [trace.is_own(a) for a in args]
        if not trace.partial or all(own):
            return _stage_normally(trace, prim, args, params)
        plan = split(params, own)
        if plan is None:
            return _stage_normally(trace, prim, args, params)
        return _run_split(trace, prim, args, plan)
    return rule


def _register_split(prim, split):
    prim.def_staging_rule(_staging_rule(prim, split))



def _split3(seq, a, b):
    seq = list(seq)
    return seq[:a], seq[a:a + b], seq[a + b:]


def _check_operands(name, avals, expected):
    if len(avals) != len(expected) or any(a != b for a, b in zip(avals, expected)):
        raise TypeError(f"{name}: operand types ({', '.join(a.str_short() for a in avals)}) do "
                        f"not match the body's ({', '.join(a.str_short() for a in expected)})")


def _check_carry(what, tree, in_avals, out_avals):
    paths = [p for p, _ in tree_util.leaves_with_path(
        tree_util.unflatten(tree, list(range(len(in_avals)))))]
    for p, a, b in zip(paths, in_avals, out_avals):
        if a != b:
            hint = ""
            if a.shape == b.shape:
                hint = (" (the body changed the dtype, e.g. by NumPy type promotion; cast it "
                        "back with .astype)")
            raise TypeError(f"{what} carry input {a.str_short()} != carry output "
                            f"{b.str_short()} for carry{_fmt_path(p)}: the body function must "
                            f"return a carry with the same shapes and dtypes as it receives"
                            f"{hint}")

