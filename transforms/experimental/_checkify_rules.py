"""The `checkify` interpreter: a jaxpr evaluated in the current trace with an `Error` value
threaded through it.

Each equation is bound as `eval_jaxpr` would bind it; a rule per primitive name adds the
enabled automatic checks (NaN outputs, integer/float division by zero, out-of-bounds indices)
as ordinary array operations on the values, and `check` equations are discharged into the
error. Higher-order primitives are rebuilt through their public functions with the error as an
extra operand/carry (`lax.switch`, `lax.scan`, `lax.while_loop`, `jit`), their bodies running
this interpreter; the error entering a body already has a (never fired) slot for every kind of
error the body can add (`effects_of`, a static walk), so carries keep one structure.
Custom-derivative calls and `remat` whose bodies can fail are inlined (`grad(checkify(f))` then
differentiates their bodies rather than using their rules; `checkify(grad(f))`, where checkify
runs after differentiation, is unaffected); the others are bound unchanged.
"""
from __future__ import annotations

import collections

import numpy as np

from .. import tree as tree_util
from ..core import get_aval
from ..ir import ClosedJaxpr, Jaxpr, Literal
from ._checkify_errors import (DivisionByZeroError, Error, ErrorEffect, NaNError, OOBError,
                               assert_func, init_error, update_error)

# JAX's list of the primitives whose output is NaN-checked (by our names)
NAN_PRIMITIVES = frozenset("""
    acos acosh add asin asinh atan2 atan atanh bessel_i0e bessel_i1e cbrt conv_general_dilated
    cos cosh cumlogsumexp cummax cummin cumprod cumsum digamma dot_general erf_inv erf erfc exp
    expm1 fft igamma_grad_a igamma igammac integer_pow lgamma linear_solve log1p log logistic
    mul pad pow psum reduce reduce_prod reduce_sum reduce_window reduce_window_sum
    regularized_incomplete_beta rem rng_uniform rsqrt sin sinh sqrt sub tan tanh div
""".split())
OOB_PRIMITIVES = frozenset(["dynamic_slice", "dynamic_update_slice", "gather", "scatter",
                            "scatter_add", "scatter_mul", "scatter_min", "scatter_max"])

_NAN_EFFECT = ErrorEffect(NaNError, ())
_DIV_EFFECT = ErrorEffect(DivisionByZeroError, ())
_OOB_EFFECT = ErrorEffect(OOBError, (((3,), np.dtype(np.int32)),))


def _tnp():
    from .. import numpy as tnp
    return tnp


# ---------------------------------------------------------------------------------------------
# Static effects: every error slot a jaxpr can add
# ---------------------------------------------------------------------------------------------

def _sub_jaxprs(params):
    for v in params.values():
        for j in (v if isinstance(v, (tuple, list)) else (v,)):
            if isinstance(j, ClosedJaxpr):
                yield j.jaxpr
            elif isinstance(j, Jaxpr):
                yield j


def effects_of(jaxpr: Jaxpr, enabled) -> set:
    """The error slots running `jaxpr` under checkify with `enabled` checks may add."""
    out = set()
    for eqn in jaxpr.eqns:
        name = eqn.prim.name
        if name == "check":
            err = tree_util.unflatten(eqn.params["err_tree"], [None] * len(eqn.invars))
            out |= {e for e in err._pred if e.error_type in enabled}
            continue
        if NaNError in enabled and name in NAN_PRIMITIVES and _inexact_out(eqn):
            out.add(_NAN_EFFECT)
        if DivisionByZeroError in enabled and name == "div":
            out.add(_DIV_EFFECT)
        if OOBError in enabled and name in OOB_PRIMITIVES:
            out.add(_OOB_EFFECT)
        for sub in _sub_jaxprs(eqn.params):
            out |= effects_of(sub, enabled)
    return out


def _inexact_out(eqn):
    return any(np.issubdtype(v.aval.dtype, np.inexact) for v in eqn.outvars)


# ---------------------------------------------------------------------------------------------
# The interpreter
# ---------------------------------------------------------------------------------------------

RULES = {}


def checkify_jaxpr(jaxpr: Jaxpr, consts, enabled, error: Error, args):
    """Evaluate `jaxpr` on `args` in the current trace; -> (error, outputs)."""
    env = {}

    def read(v):
        return v.val if type(v) is Literal else env[v]

    for v, x in zip(jaxpr.constvars, consts):
        env[v] = x
    for v, x in zip(jaxpr.invars, args):
        env[v] = x
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        rule = RULES.get(eqn.prim.name)
        if rule is None:
            out = eqn.prim.bind(*invals, **eqn.params)
        else:
            error, out = rule(error, enabled, eqn, invals)
        if eqn.prim.multiple_results:
            for v, x in zip(eqn.outvars, out):
                env[v] = x
        else:
            env[eqn.outvars[0]] = out
    return error, [read(v) for v in jaxpr.outvars]


def _closed(j):
    return (j.jaxpr, j.consts) if isinstance(j, ClosedJaxpr) else (j, [])


def _bind(eqn, invals):
    return eqn.prim.bind(*invals, **eqn.params)


def _rule(*names):
    def register(f):
        for n in names:
            RULES[n] = f
        return f
    return register


# -- check ------------------------------------------------------------------------------------

@_rule("check")
def _discharge(error, enabled, eqn, invals):
    new = tree_util.unflatten(eqn.params["err_tree"], list(invals))
    for eff, pred in new._pred.items():
        if eff.error_type in enabled:
            error = update_error(error, pred, new._code[eff], new._metadata,
                                 new._payload[eff], eff)
    return error, []


# -- automatic checks -------------------------------------------------------------------------

def _nan_check(error, enabled, eqn, out):
    if NaNError not in enabled or not _inexact_out(eqn):
        return error
    tnp = _tnp()
    outs = out if eqn.prim.multiple_results else [out]
    preds = [tnp.any(tnp.isnan(o)) for o in outs if np.issubdtype(get_aval(o).dtype, np.inexact)]
    pred = preds[0]
    for p in preds[1:]:
        pred = tnp.logical_or(pred, p)
    return assert_func(error, pred, NaNError(eqn.prim.name))


for _name in NAN_PRIMITIVES - {"div"}:
    RULES[_name] = lambda error, enabled, eqn, invals: (
        lambda out: (_nan_check(error, enabled, eqn, out), out))(_bind(eqn, invals))


@_rule("div")
def _div(error, enabled, eqn, invals):
    if DivisionByZeroError in enabled:
        tnp = _tnp()
        error = assert_func(error, tnp.any(tnp.equal(invals[1], 0)), DivisionByZeroError())
    out = _bind(eqn, invals)
    return _nan_check(error, enabled, eqn, out), out


def _oob(error, prim_name, shape, starts, upper):
    """Slot OOB fires when a start (int array, last axis = operand axes `axes`) is negative
    or above `upper` (same shape); the payload is the first one: (index, axis, size)."""
    tnp = _tnp()
    starts = tnp.asarray(starts)
    bad = tnp.logical_or(starts < 0, starts > upper)
    flat_bad = tnp.reshape(bad, (-1,))
    first = tnp.argmax(flat_bad)
    k = starts.shape[-1] if starts.ndim else 1
    axis = first % k
    size = tnp.asarray(np.asarray(shape[:k], np.int64))[axis]
    index = tnp.reshape(starts, (-1,))[first]
    payload = tnp.stack([index.astype(np.int32), axis.astype(np.int32), size.astype(np.int32)])
    return assert_func(error, tnp.any(flat_bad),
                       OOBError(prim_name, tuple(shape), payload))


def _normalized_starts(starts, shape):
    # dynamic_slice counts a negative start from the end once (JAX's wrapper does that
    # before binding the primitive, so its check sees the normalized start)
    tnp = _tnp()
    st = tnp.stack([tnp.asarray(s).astype(np.int64) for s in starts])
    n = np.asarray(shape, np.int64)
    return tnp.where(st < 0, st + n, st)


@_rule("dynamic_slice")
def _dynamic_slice(error, enabled, eqn, invals):
    out = _bind(eqn, invals)
    if OOBError in enabled and invals[1:]:
        shape = get_aval(invals[0]).shape
        sizes = np.asarray(eqn.params["slice_sizes"], np.int64)
        error = _oob(error, "dynamic_slice", shape, _normalized_starts(invals[1:], shape),
                     np.asarray(shape, np.int64) - sizes)
    return error, out


@_rule("dynamic_update_slice")
def _dynamic_update_slice(error, enabled, eqn, invals):
    out = _bind(eqn, invals)
    if OOBError in enabled and invals[2:]:
        shape = get_aval(invals[0]).shape
        sizes = np.asarray(get_aval(invals[1]).shape, np.int64)
        error = _oob(error, "dynamic_update_slice", shape,
                     _normalized_starts(invals[2:], shape), np.asarray(shape, np.int64) - sizes)
    return error, out


@_rule(*(OOB_PRIMITIVES - {"dynamic_slice", "dynamic_update_slice"}))
def _gather_scatter(error, enabled, eqn, invals):
    # gather/scatter index tuples: idx[..., j] indexes operand axis j (unit slices)
    out = _bind(eqn, invals)
    if OOBError in enabled:
        shape = get_aval(invals[0]).shape
        idx = invals[1]
        k = get_aval(idx).shape[-1]
        upper = np.asarray(shape[:k], np.int64) - 1
        if np.prod(get_aval(idx).shape) > 0:
            error = _oob(error, eqn.prim.name, shape, idx, upper)
    return error, out


# -- higher-order primitives ------------------------------------------------------------------

class _Body:
    """A body of a control-flow primitive run by the interpreter, with the error as flat
    leaves in front: `(err_leaves, *args) -> (err_leaves, outs)`. Every call pads its error to
    `effects` and records the metadata of the codes it added."""

    def __init__(self, jaxpr, consts, enabled, effects, metadata):
        self.jaxpr, self.consts, self.enabled = jaxpr, consts, enabled
        self.effects, self.metadata = effects, metadata

    def run(self, err_leaves, args):
        err = Error.from_leaves(self.effects, list(err_leaves), self.metadata)
        err, outs = checkify_jaxpr(self.jaxpr, self.consts, self.enabled, err, list(args))
        extra = set(err._pred) - set(self.effects)
        if extra:       # effects_of must foresee every slot a body adds (carries keep shape)
            raise AssertionError(f"checkify: body added error slots {extra} that effects_of "
                                 "did not foresee")
        err = err.with_placeholders(self.effects)
        self.metadata.update(err._metadata)
        return err.leaves(self.effects), outs


def _padded(error, enabled, *jaxprs):
    effects = set(error.effects())
    for j in jaxprs:
        effects |= effects_of(j, enabled)
    return error.with_placeholders(effects), effects


def _rebuild(effects, leaves, metadata):
    return Error.from_leaves(effects, list(leaves), dict(metadata))


@_rule("cond")
def _cond(error, enabled, eqn, invals):
    from .. import lax
    branches = [_closed(b) for b in eqn.params["branches"]]
    error, effects = _padded(error, enabled, *[j for j, _ in branches])
    if not effects:
        return error, _bind(eqn, invals)
    metadata = dict(error._metadata)
    bodies = [_Body(j, c, enabled, effects, metadata) for j, c in branches]
    fns = [lambda leaves, ops, b=b: b.run(leaves, ops) for b in bodies]
    leaves, outs = lax.switch(invals[0], fns, error.leaves(effects), list(invals[1:]))
    return _rebuild(effects, leaves, metadata), list(outs)


@_rule("scan")
def _scan(error, enabled, eqn, invals):
    from .. import lax
    p = eqn.params
    jaxpr, consts = _closed(p["jaxpr"])
    error, effects = _padded(error, enabled, jaxpr)
    if not effects:
        return error, _bind(eqn, invals)
    nc, nk = p["num_consts"], p["num_carry"]
    c, init, xs = invals[:nc], invals[nc:nc + nk], invals[nc + nk:]
    metadata = dict(error._metadata)
    body = _Body(jaxpr, consts, enabled, effects, metadata)

    def step(carry, x):
        leaves, k = carry
        leaves, outs = body.run(leaves, [*c, *k, *x])
        return (leaves, outs[:nk]), outs[nk:]

    (leaves, carry), ys = lax.scan(step, (error.leaves(effects), list(init)), list(xs),
                                   length=p["length"], reverse=p["reverse"],
                                   unroll=p.get("unroll", 1))
    return _rebuild(effects, leaves, metadata), [*carry, *ys]


@_rule("while")
def _while(error, enabled, eqn, invals):
    from .. import lax
    p = eqn.params
    cj, cconsts = _closed(p["cond_jaxpr"])
    bj, bconsts = _closed(p["body_jaxpr"])
    ncc, nbc = p["cond_nconsts"], p["body_nconsts"]
    cc, bc, init = invals[:ncc], invals[ncc:ncc + nbc], invals[ncc + nbc:]
    # the first evaluation of the condition, before the loop
    error, _ = checkify_jaxpr(cj, cconsts, enabled, error, [*cc, *init])
    error, effects = _padded(error, enabled, cj, bj)
    if not effects:
        return error, _bind(eqn, invals)
    metadata = dict(error._metadata)
    body = _Body(bj, bconsts, enabled, effects, metadata)
    cond = _Body(cj, cconsts, enabled, effects, metadata)

    def cond_fun(state):
        # the predicate only: its checks are accounted for in the body, after each step
        _, outs = checkify_jaxpr(cj, cconsts, frozenset(), init_error, [*cc, *state[1]])
        return outs[0]

    def body_fun(state):
        leaves, k = state
        leaves, k = body.run(leaves, [*bc, *k])
        leaves, _ = cond.run(leaves, [*cc, *k])     # the next evaluation of the condition
        return leaves, list(k)

    leaves, out = lax.while_loop(cond_fun, body_fun, (error.leaves(effects), list(init)))
    return _rebuild(effects, leaves, metadata), list(out)


_JIT_CACHE = collections.OrderedDict()


@_rule("pjit")
def _pjit(error, enabled, eqn, invals):
    from ..jit import jit
    closed = eqn.params["jaxpr"]
    jaxpr, consts = _closed(closed)
    error, effects = _padded(error, enabled, jaxpr)
    if not effects:
        return error, _bind(eqn, invals)
    # one compiled checkified function per (inner jaxpr, checks, incoming slots)
    key = (id(closed), frozenset(enabled), frozenset(effects))
    hit = _JIT_CACHE.get(key)
    if hit is None or hit[0] is not closed:
        metadata = dict(error._metadata)
        body = _Body(jaxpr, consts, enabled, effects, metadata)
        hit = (closed, jit(lambda leaves, args: body.run(leaves, args)), metadata)
        _JIT_CACHE[key] = hit
        if len(_JIT_CACHE) > 64:
            _JIT_CACHE.popitem(last=False)
    _, fn, metadata = hit
    leaves, outs = fn(error.leaves(effects), list(invals))
    return _rebuild(effects, leaves, {**error._metadata, **metadata}), list(outs)


@_rule("custom_jvp_call", "custom_vjp_call", "remat")
def _inlined_call(error, enabled, eqn, invals):
    # bound as it is when its body cannot fail (it keeps its custom rule or its
    # rematerialization under an enclosing grad), else inlined with the checks
    jaxpr, consts = _closed(eqn.params["jaxpr" if eqn.prim.name == "remat" else "call_jaxpr"])
    if not effects_of(jaxpr, enabled):
        return error, _bind(eqn, invals)
    return checkify_jaxpr(jaxpr, consts, enabled, error, invals)


__all__ = ["checkify_jaxpr", "effects_of", "RULES", "NAN_PRIMITIVES", "OOB_PRIMITIVES"]
