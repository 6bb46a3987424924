"""`jax.ad_checkpoint`: `checkpoint` with rematerialisation policies, `checkpoint_name`,
`checkpoint_policies`, `print_saved_residuals`.

    from transforms.ad_checkpoint import checkpoint, checkpoint_name, checkpoint_policies as cp
    f = checkpoint(block, policy=cp.save_only_these_names("attn_out"))

A policy is `policy(prim, *input_avals, **params) -> bool`: under reverse mode, the values
computed by the equations it marks saveable are kept as residuals of the forward pass; every
other intermediate is recomputed in the backward pass from the checkpointed function's inputs
and the saved values. `policy=None` (and `nothing_saveable`) saves only the inputs;
`everything_saveable` saves what plain differentiation would. Primitives here are this
library's own objects, so a hand-written policy should compare `prim.name` (e.g.
`"dot_general"`, `"name"`), not JAX's primitive objects.

Policies see the equations of the checkpointed function itself; the insides of a `jit`ted call
or a control-flow body nested in it are saved or recomputed as a whole.
"""
from __future__ import annotations

import builtins
import inspect

from . import tree as tree_util
from .checkpoint import checkpoint, remat, remat_p  # noqa: F401
from .core import Primitive, bind_in, get_aval
from .interpreters.partial_eval import partial_eval_jaxpr, trace_to_jaxpr
from .ir import ClosedJaxpr, Eqn, Jaxpr, Var, dce_jaxpr

__all__ = ["checkpoint", "remat", "checkpoint_name", "checkpoint_policies",
           "print_saved_residuals", "saved_residuals", "name_p"]


# --------------------------------------------------------------------------------------------
# checkpoint_name: an identity primitive carrying a name

name_p = Primitive("name")
name_p.def_impl(lambda x, *, name: x)
name_p.def_abstract_eval(lambda x, *, name: x)
name_p.def_jvp(lambda primals, tangents, *, name: (name_p.bind(primals[0], name=name),
                                                   tangents[0]))
name_p.def_transpose(lambda ct, x, *, name: [ct])
name_p.def_batch(lambda args, dims, *, name: (name_p.bind(args[0], name=name), dims[0]))


def checkpoint_name(x, name):
    """`x` unchanged, tagged with `name` for `save_only_these_names` and friends.

    `x` may be a pytree (every leaf gets the name). Differentiates, batches and compiles as the
    identity.
    """
    from .api import as_leaf
    return tree_util.map(lambda leaf: name_p.bind(as_leaf(leaf), name=name), x)


# --------------------------------------------------------------------------------------------
# Policies

def everything_saveable(*_, **__):
    """Save every intermediate (as if `checkpoint` were not used)."""
    return True


def nothing_saveable(*_, **__):
    """Save nothing but the inputs: recompute everything (the default of `checkpoint`)."""
    return False


class _DotsSaveable:
    def __init__(self, no_batch_dims):
        self.no_batch_dims = no_batch_dims

    def __call__(self, prim, *avals, **params):
        if self.no_batch_dims:
            if prim.name == "dot_general":
                (_, _), (lb, rb) = params["dimension_numbers"]
                return not lb and not rb
            return False
        return prim.name in ("dot_general", "conv_general_dilated")

    def __repr__(self):
        return "dots_with_no_batch_dims_saveable" if self.no_batch_dims else "dots_saveable"


dots_saveable = checkpoint_dots = _DotsSaveable(False)
dots_saveable.__doc__ = "Save the results of matrix products and convolutions only."
dots_with_no_batch_dims_saveable = checkpoint_dots_with_no_batch_dims = _DotsSaveable(True)


class _Names:
    def __init__(self, names, only):
        self.names, self.only = frozenset(names), only

    def __call__(self, prim, *avals, **params):
        if prim.name != "name":
            return False
        return (params["name"] in self.names) == self.only

    def __eq__(self, other):
        return type(other) is _Names and (self.names, self.only) == (other.names, other.only)

    def __hash__(self):
        return hash((self.names, self.only))


def save_only_these_names(*names):
    """Save only values tagged by `checkpoint_name` with one of `names`."""
    return _Names(names, True)


def save_any_names_but_these(*names):
    """Save every value tagged by `checkpoint_name` except those with one of `names`."""
    return _Names(names, False)


def save_anything_except_these_names(*names):
    """Save every intermediate except the values tagged with one of `names`."""
    only_not = frozenset(names)

    def policy(prim, *avals, **params):
        return not (prim.name == "name" and params["name"] in only_not)
    return policy


def save_from_both_policies(policy_1, policy_2):
    """Saveable iff either policy marks it saveable (logical or)."""
    def policy(prim, *avals, **params):
        a, b = policy_1(prim, *avals, **params), policy_2(prim, *avals, **params)
        if not (isinstance(a, bool) and isinstance(b, bool)):
            raise ValueError(f"policies must return booleans, got {a!r} and {b!r}")
        return a or b
    return policy


def save_and_offload_only_these_names(*, names_which_can_be_saved, names_which_can_be_offloaded,
                                      offload_src="device", offload_dst="pinned_host"):
    """Save the values tagged with a name in either list. JAX moves the second list's values
    to host memory; here the device is the host, so offloading a value is saving it."""
    del offload_src, offload_dst
    return _Names(tuple(names_which_can_be_saved) + tuple(names_which_can_be_offloaded), True)


def offload_dot_with_no_batch_dims(offload_src="device", offload_dst="pinned_host"):
    """`dots_with_no_batch_dims_saveable` (JAX offloads those products to the host; here
    the device is the host, so they are simply saved)."""
    del offload_src, offload_dst
    return dots_with_no_batch_dims_saveable


class _Policies:
    """`checkpoint_policies`: the policy namespace (as `jax.checkpoint_policies`)."""
    everything_saveable = staticmethod(everything_saveable)
    nothing_saveable = staticmethod(nothing_saveable)
    dots_saveable = checkpoint_dots = dots_saveable
    dots_with_no_batch_dims_saveable = dots_with_no_batch_dims_saveable
    checkpoint_dots_with_no_batch_dims = dots_with_no_batch_dims_saveable
    save_only_these_names = staticmethod(save_only_these_names)
    save_any_names_but_these = staticmethod(save_any_names_but_these)
    save_anything_except_these_names = staticmethod(save_anything_except_these_names)
    save_from_both_policies = staticmethod(save_from_both_policies)
    save_and_offload_only_these_names = staticmethod(save_and_offload_only_these_names)
    offload_dot_with_no_batch_dims = staticmethod(offload_dot_with_no_batch_dims)


checkpoint_policies = _Policies()


# --------------------------------------------------------------------------------------------
# The policy-aware split of a remat equation under linearize

def _saveable(policy, eqn):
    return builtins.bool(policy(eqn.prim, *[v.aval for v in eqn.invars], **eqn.params))


def _subst(atoms, sub):
    return [sub.get(v, v) if isinstance(v, Var) else v for v in atoms]


def _policy_split(closed, unknown, policy):
    """Split a remat body under `policy` for the inputs flagged `unknown`.

    Returns `(known, staged, out_unk, n_known_out, staged_used)`:
      known(*known_inputs)                      -> known_outputs + saved values
      staged(*[known_inputs, saved, unknown_inputs][staged_used]) -> unknown_outputs
    The staged part recomputes every known intermediate that is not saved.
    """
    known, unknown_j, out_unk, res_src = partial_eval_jaxpr(closed, unknown)
    num_res = len(res_src)
    kj = known.jaxpr
    n_kout = len(kj.outvars) - num_res
    known_out, res = kj.outvars[:n_kout], kj.outvars[n_kout:]
    save = [_saveable(policy, e) for e in kj.eqns]
    candidates = [v for e, s in zip(kj.eqns, save) if s for v in e.outvars]
    # what the staged part recomputes: residuals from known inputs and saved values
    rec = Jaxpr(kj.constvars, list(kj.invars) + candidates, res,
                [e for e, s in zip(kj.eqns, save) if not s])
    rec, used_in, _ = dce_jaxpr(rec)
    saved = [v for v, u in zip(candidates, used_in[len(kj.invars):]) if u]
    # the known part: its outputs and the saved values
    kj2, _, used_c = dce_jaxpr(Jaxpr(kj.constvars, kj.invars, list(known_out) + saved, kj.eqns))
    known2 = ClosedJaxpr(kj2, [c for c, u in zip(known.consts, used_c) if u])
    # the staged part: recomputation + the linear (unknown) equations
    uj = unknown_j.jaxpr
    sub = dict(zip(uj.invars[:num_res], res))
    eqns = list(rec.eqns) + [Eqn(e.prim, _subst(e.invars, sub), e.outvars, e.params,
                                 e.source_info) for e in uj.eqns]
    # constants: the known part's (read by the recomputation) and the unknown part's own
    sj = Jaxpr(list(kj.constvars) + list(uj.constvars),
               list(kj.invars) + saved + list(uj.invars[num_res:]), _subst(uj.outvars, sub), eqns)
    sj, staged_used, used_c = dce_jaxpr(sj, prune_invars=True)   # residuals: only what is read
    consts = list(known.consts) + list(unknown_j.consts)
    staged = ClosedJaxpr(sj, [c for c, u in zip(consts, used_c) if u])
    return known2, staged, out_unk, n_kout, staged_used


def policy_staging_rule(trace, args, params):
    """Split `remat(*args)` whose `args` are partly unknown (tangents) under `policy`.

    Known outputs and the saveable intermediates are computed now; the staged equation takes
    the known inputs and the saved values and recomputes every other known intermediate (in
    the backward pass, where the transposer evaluates the non-linear part) before its linear
    part.
    """
    own = [trace.is_own(a) for a in args]
    known, staged, out_unk, n_kout, used = _policy_split(params["jaxpr"], own, params["policy"])
    known_args = [a for a, o in zip(args, own) if not o]
    unk_args = [a for a, o in zip(args, own) if o]
    k_outs = bind_in(trace.parent, remat_p, *known_args, jaxpr=known, **{
        k: v for k, v in params.items() if k != "jaxpr"})
    k_vals, saved_vals = list(k_outs[:n_kout]), list(k_outs[n_kout:])
    staged_args = [a for a, u in zip(known_args + saved_vals + unk_args, used) if u]
    outs = trace.stage(remat_p, staged_args, dict(params, jaxpr=staged))
    k_it, u_it = iter(k_vals), iter(outs)
    return [next(u_it) if u else next(k_it) for u in out_unk]




# --------------------------------------------------------------------------------------------
# print_saved_residuals

_CALLS = frozenset({"pjit", "remat", "custom_jvp_call", "custom_vjp_call"})


def _origin(jaxpr, var):
    """('arg', i) | ('const', None) | ('eqn', eqn) for where `var` of `jaxpr` comes from."""
    while True:
        if not isinstance(var, Var):
            return ("const", None)
        if var in jaxpr.invars:
            return ("arg", jaxpr.invars.index(var))
        if var in jaxpr.constvars:
            return ("const", None)
        for e in jaxpr.eqns:
            if var in e.outvars:
                inner = e.params.get("jaxpr", e.params.get("call_jaxpr"))
                if isinstance(inner, ClosedJaxpr) and len(inner.jaxpr.outvars) == len(e.outvars):
                    kind, what = _origin(inner.jaxpr, inner.jaxpr.outvars[e.outvars.index(var)])
                    if kind == "arg":
                        # only a call's inputs are its jaxpr's inputs: a scan output passing a
                        # body input through is a stacked carry, not that argument
                        if e.prim.name not in _CALLS:
                            return ("eqn", e)
                        var = e.invars[what]
                        break
                    return kind, what
                return ("eqn", e)
        else:
            return ("const", None)


def saved_residuals(f, *args, **kwargs):
    """`[(aval, description), ...]`: the values reverse mode keeps from `f`'s forward pass."""
    from .api import flatten_fun, is_float_dtype
    from .interpreters.partial_eval import linearize_flat
    flat, flat_fun, _ = flatten_fun(f, args, kwargs, ())
    avals = [get_aval(x) for x in flat]
    diff = [is_float_dtype(a.dtype) for a in avals]

    def outer(*ins):
        _, linear, _ = linearize_flat(flat_fun, list(ins), diff)
        return list(linear.consts)

    closed = trace_to_jaxpr(outer, avals)
    try:
        names = list(inspect.signature(f).parameters)
    except (TypeError, ValueError):
        names = []
    arg_paths = [p for p, _ in tree_util.leaves_with_path(tuple(args))]

    def arg_name(i):
        p = arg_paths[i]
        k = p[0].idx if p else 0
        base = names[k] if k < len(names) else f"args[{k}]"
        return base + tree_util.keystr(p[1:])

    out = []
    for v in closed.jaxpr.outvars:
        aval = v.aval if isinstance(v, Var) else get_aval(v.val)
        kind, what = _origin(closed.jaxpr, v)
        if kind == "arg":
            out.append((aval, f"from the argument {arg_name(what)}"))
        elif kind == "const":
            out.append((aval, "from a constant"))
        else:
            src = f" from {what.source_info}" if what.source_info is not None else ""
            if what.prim.name == "name":
                out.append((aval, f"named {what.params['name']!r}{src}"))
            else:
                out.append((aval, f"output of {what.prim.name}{src}"))
    return out


def print_saved_residuals(f, *args, **kwargs):
    """Print, one a line, each residual reverse mode saves from `f(*args, **kwargs)`:
    `f32[3,3] from the argument w`, `f32[3] output of cos from model.py:12 (f)`,
    `f32[3] named 'h' from model.py:13 (f)`."""
    for aval, what in saved_residuals(f, *args, **kwargs):
        print(f"{aval.str_short()} {what}")
