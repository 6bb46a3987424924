"""`pjit`: the primitive behind `jit`. It carries a closed jaxpr and is compiled as a unit.

Its rules transform the inner jaxpr and bind `pjit` again, which is what makes every
composition work: `grad(jit(f))` differentiates *inside* the compiled function, `vmap(jit(f))`
batches inside it, and the derivative of a jitted function is itself compiled.

The same machinery serves `remat` (`transforms/checkpoint.py`): `call_rules(prim)` registers the
generic rules of a "call" primitive (one with a `jaxpr` parameter) on any primitive.
"""
from __future__ import annotations

import contextlib
import threading

from .core import Primitive, bind_in
from .interpreters import jvp as _jvp
from .interpreters.partial_eval import partial_eval_jaxpr, trace_to_jaxpr
from .interpreters.transpose import UndefinedPrimal, backward_pass, is_undefined
from .ir import ClosedJaxpr, dce_jaxpr, eval_jaxpr

pjit_p = Primitive("pjit", multiple_results=True)


class _JaxprCache:
    """Derived jaxprs (jvp, transpose, batched) keyed by the source jaxpr's identity."""

    def __init__(self):
        self._d = {}

    def get(self, jaxpr, key, make):
        k = (id(jaxpr), key)
        hit = self._d.get(k)
        if hit is None or hit[0] is not jaxpr:
            hit = (jaxpr, make())
            self._d[k] = hit
        return hit[1]


_cache = _JaxprCache()


def _eval_closed(closed):
    return lambda *args: eval_jaxpr(closed.jaxpr, closed.consts, *args)


# ---------------------------------------------------------------------------------------------
# impl: compile through the backend
# ---------------------------------------------------------------------------------------------

class _Interpreting(threading.local):
    depth = 0


_interpreting = _Interpreting()


@contextlib.contextmanager
def interpreting():
    """Within this context (this thread only), nested `pjit` equations run through the eager
    NumPy interpreter instead of being compiled: the eager tier of `jit(tiered=True)` must
    not wait for a compile of an inner jitted function either."""
    _interpreting.depth += 1
    try:
        yield
    finally:
        _interpreting.depth -= 1


def _pjit_impl(*args, jaxpr, name):
    if _interpreting.depth:
        return eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, *args)
    try:
        from .backend.numba import execute
    except ImportError as e:
        # never fall back to interpreting silently: a broken install would look like a slow one
        raise ImportError(f"jit({name}): the Numba backend could not be imported ({e}); "
                          "install numba, or run without jit under transforms.disable_jit()"
                          ) from e
    return execute(jaxpr, args)


pjit_p.def_impl(_pjit_impl)


# ---------------------------------------------------------------------------------------------
# Generic rules of call primitives
# ---------------------------------------------------------------------------------------------

def jvp_jaxpr(closed: ClosedJaxpr, nonzero):
    """`interpreters.jvp.jvp_jaxpr(closed, nonzero)`, cached per source jaxpr."""
    return _cache.get(closed, ("jvp", tuple(nonzero)),
                      lambda: _jvp.jvp_jaxpr(closed, list(nonzero)))


def transpose_jaxpr(closed: ClosedJaxpr, undefined, ct_nonzero):
    """Jaxpr mapping (known inputs, nonzero cotangents) to cotangents of the linear inputs."""
    def make():
        in_avals = closed.in_avals
        res_avals = [a for a, u in zip(in_avals, undefined) if not u]
        ct_avals = [a for a, nz in zip(closed.out_avals, ct_nonzero) if nz]

        # Split first: the non-linear part (e.g. the primal recomputation that `remat`
        # stages into the backward pass) is evaluated, and only the linear part is
        # transposed. A scan that carries both primal and tangent values is thereby split
        # into a primal scan (run forward, giving residuals) and a linear one (transposed).
        known, unknown, out_unk, num_res = _split(closed, list(undefined))

        def fun(*args):
            known_in = list(args[:len(res_avals)])
            cts_it = iter(args[len(res_avals):])
            cts = [next(cts_it) if nz else None for nz in ct_nonzero]
            k_outs = eval_jaxpr(known.jaxpr, known.consts, *known_in)
            residuals = list(k_outs[len(k_outs) - num_res:]) if num_res else []
            lin_args = residuals + [UndefinedPrimal(a) for a, u in zip(in_avals, undefined) if u]
            # cotangents of outputs that do not depend on the linear inputs contribute nothing
            unk_cts = [c for c, u in zip(cts, out_unk) if u]
            outs = backward_pass(unknown.jaxpr, unknown.consts, lin_args, unk_cts)[num_res:]
            from .lax import zeros_like_aval
            lin_avals = [a for a, u in zip(in_avals, undefined) if u]
            return [zeros_like_aval(a) if o is None else o for o, a in zip(outs, lin_avals)]

        return trace_to_jaxpr(fun, res_avals + ct_avals)
    return _cache.get(closed, ("transpose", tuple(undefined), tuple(ct_nonzero)), make)


def batched_jaxpr(closed: ClosedJaxpr, axis_size, dims, axis_name):
    """`closed` batched along `dims` (see `interpreters.batching.batch_jaxpr`), cached."""
    def make():
        from .interpreters.batching import batch_jaxpr
        return batch_jaxpr(closed, axis_size, list(dims), None, axis_name)
    return _cache.get(closed, ("batch", dims, axis_size, axis_name), make)


def _uses_axis(closed, axis_name):
    """Whether a collective over `axis_name` appears anywhere inside `closed`."""
    if axis_name is None:
        return False
    for eqn in closed.jaxpr.eqns:
        names = eqn.params.get("axis_name")
        if names is not None:
            names = names if isinstance(names, tuple) else (names,)
            if axis_name in names:
                return True
        for v in eqn.params.values():
            for sub in (v if isinstance(v, (tuple, list)) else (v,)):
                if isinstance(sub, ClosedJaxpr) and _uses_axis(sub, axis_name):
                    return True
    return False


def call_rules(prim, name_param="name"):
    """Register impl-independent rules of a call primitive `prim(*args, jaxpr=..., ...)`."""

    def abstract_eval(*avals, jaxpr, **params):
        return jaxpr.out_avals

    def jvp(primals, tangents, *, jaxpr, **params):
        nonzero = tuple(t is not None for t in tangents)
        new, out_nz = jvp_jaxpr(jaxpr, nonzero)
        outs = prim.bind(*primals, *[t for t in tangents if t is not None], jaxpr=new,
                         **_renamed(params, name_param, "jvp"))
        n = len(jaxpr.out_avals)
        it = iter(outs[n:])
        return outs[:n], [next(it) if nz else None for nz in out_nz]

    def transpose(cts, *args, jaxpr, **params):
        undefined = tuple(is_undefined(a) for a in args)
        ct_nonzero = tuple(c is not None for c in cts)
        new = transpose_jaxpr(jaxpr, undefined, ct_nonzero)
        res = [a for a in args if not is_undefined(a)]
        outs = iter(prim.bind(*res, *[c for c in cts if c is not None], jaxpr=new,
                              **_renamed(params, name_param, "transpose")))
        return [next(outs) if u else None for u in undefined]

    def batch_trace_rule(trace, args, dims, *, jaxpr, **params):
        # needs the trace: a collective over this vmap's axis name may sit inside the body
        if all(d is None for d in dims) and not _uses_axis(jaxpr, trace.axis_name):
            return prim.bind(*args, jaxpr=jaxpr, **params), [None] * len(jaxpr.out_avals)
        new, out_dims = batched_jaxpr(jaxpr, trace.axis_size, tuple(dims), trace.axis_name)
        outs = prim.bind(*args, jaxpr=new, **_renamed(params, name_param, "vmap"))
        return outs, out_dims

    prim.def_abstract_eval(abstract_eval)
    prim.def_jvp(jvp)
    prim.def_transpose(transpose)
    prim.def_batch_trace_rule(batch_trace_rule)


def _renamed(params, name_param, what):
    if name_param in params:
        params = dict(params)
        params[name_param] = f"{what}({params[name_param]})"
    return params


# ---------------------------------------------------------------------------------------------
# Partial evaluation of pjit (reverse mode through a jitted function)
# ---------------------------------------------------------------------------------------------

def _split(closed, unknown):
    """Known and unknown halves of `closed`, with unused equations removed."""
    known, unk, out_unk, res_src = partial_eval_jaxpr(closed, unknown)
    kj, _, kc_used = dce_jaxpr(known.jaxpr)
    known = ClosedJaxpr(kj, [c for c, u in zip(known.consts, kc_used) if u])
    return known, unk, out_unk, len(res_src)


def _pjit_staging_rule(trace, args, params):
    own = [trace.is_own(a) for a in args]
    if not trace.partial or all(own):
        return trace.stage(pjit_p, args, params)
    jaxpr, name = params["jaxpr"], params["name"]
    known, unknown, out_unk, num_res = _split(jaxpr, own)
    known_args = [a for a, o in zip(args, own) if not o]
    if known.jaxpr.eqns:
        known_outs = bind_in(trace.parent, pjit_p, *known_args, jaxpr=known, name=name)
    else:
        known_outs = _eval_in(trace.parent, known, known_args)   # nothing worth compiling
    n_known = len(known_outs) - num_res
    res = known_outs[n_known:]
    staged = trace.stage(pjit_p, list(res) + [a for a, o in zip(args, own) if o],
                         dict(jaxpr=unknown, name=name))
    k_it, u_it = iter(known_outs[:n_known]), iter(staged)
    return [next(u_it) if u else next(k_it) for u in out_unk]


def _eval_in(trace, closed, args):
    from .core import set_current_trace
    with set_current_trace(trace):
        return eval_jaxpr(closed.jaxpr, closed.consts, *args)


call_rules(pjit_p)
pjit_p.def_staging_rule(_pjit_staging_rule)
