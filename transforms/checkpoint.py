"""`checkpoint` / `remat`: recompute a function's forward pass during the backward pass.

`remat` is a call primitive like `pjit` (same jvp/transpose/batching rules) with one
difference under reverse mode: instead of saving the known intermediates of the inner function
as residuals, it saves only its *inputs* and stages the whole function (primal + tangent) into
the backward pass, where the transposer recomputes the primal equations before transposing.
"""
from __future__ import annotations

import functools

from . import tree as tree_util
from .core import Primitive, bind_in, get_aval
from .interpreters.partial_eval import convert_constvars, trace_to_jaxpr
from .ir import ClosedJaxpr, Jaxpr, eval_jaxpr
from .pjit import _split, call_rules

remat_p = Primitive("remat", multiple_results=True)
remat_p.def_impl(lambda *args, jaxpr, prevent_cse=True, **_: eval_jaxpr(jaxpr.jaxpr, jaxpr.consts,
                                                                       *args))
call_rules(remat_p)


def _remat_halves(jaxpr, unknown):
    """Split a remat's jaxpr for unknown inputs `unknown` into `(known, out_unk, unk)`:
    `known` maps the known inputs to the known outputs only (its residuals are discarded:
    they will be recomputed) and `unk` is the whole function (all inputs) restricted to the
    unknown outputs, so the primal work is recomputed where the unknown outputs are needed."""
    from .ir import dce_jaxpr
    known, _, out_unk, num_res = _split(jaxpr, unknown)
    n_known_out = len(known.out_avals) - num_res
    kj = Jaxpr(known.jaxpr.constvars, known.jaxpr.invars, known.jaxpr.outvars[:n_known_out],
               known.jaxpr.eqns)
    kj, _, used = dce_jaxpr(kj)
    known_prims = ClosedJaxpr(kj, [c for c, u in zip(known.consts, used) if u])
    full = jaxpr.jaxpr
    unk_j = Jaxpr(full.constvars, full.invars, [v for v, u in zip(full.outvars, out_unk) if u],
                  full.eqns)
    unk_j, _, used = dce_jaxpr(unk_j)
    unk_closed = ClosedJaxpr(unk_j, [c for c, u in zip(jaxpr.consts, used) if u])
    return known_prims, out_unk, unk_closed


def _remat_staging_rule(trace, args, params):
    own = [trace.is_own(a) for a in args]
    if not trace.partial or all(own):
        return trace.stage(remat_p, args, params)
    if params.get("policy") is not None:      # save what the policy marks saveable
        from .ad_checkpoint import policy_staging_rule
        return policy_staging_rule(trace, args, params)
    known_prims, out_unk, unk_closed = _remat_halves(params["jaxpr"], own)
    known_args = [a for a, o in zip(args, own) if not o]
    # known outputs now ...
    known_outs = bind_in(trace.parent, remat_p, *known_args, jaxpr=known_prims,
                         prevent_cse=params["prevent_cse"])
    # ... and the whole function staged for the backward pass, keeping only unknown outputs
    staged = trace.stage(remat_p, list(args), dict(params, jaxpr=unk_closed))
    k_it, u_it = iter(known_outs), iter(staged)
    return [next(u_it) if u else next(k_it) for u in out_unk]


remat_p.def_staging_rule(_remat_staging_rule)


def checkpoint(fun, prevent_cse=True, policy=None, static_argnums=(), static_argnames=()):
    """Wrap `fun` so reverse mode recomputes its intermediates instead of storing them.

    `policy(prim, *avals, **params) -> bool` (see `transforms.ad_checkpoint.checkpoint_policies`)
    marks intermediates worth saving anyway; `None` saves only the inputs. Keyword arguments
    are always passed through as given (so `static_argnames` is accepted for JAX programs).
    """
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    extra = {} if policy is None else {"policy": policy}

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        from .api import flatten_fun
        flat, flat_fun, store = flatten_fun(fun, args, kwargs, static)
        closed = trace_to_jaxpr(flat_fun, [get_aval(x) for x in flat])
        # values `fun` closed over (possibly tracers of an enclosing grad/vmap/scan) become
        # leading operands, so every transform of the remat equation sees them
        hoisted, consts = convert_constvars(closed)
        outs = remat_p.bind(*consts, *flat, jaxpr=hoisted, prevent_cse=prevent_cse, **extra)
        return tree_util.unflatten(store["tree"], list(outs))

    return wrapped


remat = checkpoint
