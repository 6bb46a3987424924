"""`jax.custom_batching`: `custom_vmap` (a function with its own batching rule) and
`sequential_vmap` (batch by looping over the examples).

    @custom_vmap
    def f(x): ...
    @f.def_vmap
    def f_vmap_rule(axis_size, in_batched, *args):
        ...                       # args: batched ones carry the batch on axis 0
        return out, out_batched   # out_batched: a pytree of bools shaped like `out`

As in JAX. Eagerly and under `jit`, `f` runs its own body; under `vmap` the rule runs instead.
Differentiating `f` differentiates its body (the rule is not used under `jvp`/`grad`, nor for
the `vmap` of a derivative). A body that closes over values batched by the same `vmap` is
rejected (the rule could not see their batch axis).
"""
from __future__ import annotations

import functools

from . import tree as tree_util
from .core import Primitive, as_leaf, get_aval

__all__ = ["custom_vmap", "sequential_vmap"]

custom_vmap_call_p = Primitive("custom_vmap_call", multiple_results=True)
_REGISTERED = []


def _impl(*args, call_jaxpr, num_consts, rule, in_tree, out_tree):
    from .ir import eval_jaxpr
    return eval_jaxpr(call_jaxpr.jaxpr, call_jaxpr.consts, *args)


custom_vmap_call_p.def_impl(_impl)
custom_vmap_call_p.def_abstract_eval(lambda *avals, call_jaxpr, **_: list(call_jaxpr.out_avals))


def _jvp(primals, tangents, *, call_jaxpr, **_):
    from .api import jvp
    from .ir import eval_jaxpr
    from .lax.elementwise import instantiate
    tangents = [instantiate(t, p) for t, p in zip(tangents, primals)]
    out, tout = jvp(lambda *a: eval_jaxpr(call_jaxpr.jaxpr, call_jaxpr.consts, *a),
                    list(primals), tangents)
    return list(out), list(tout)


custom_vmap_call_p.def_jvp(_jvp)


def _batch(args, dims, *, call_jaxpr, num_consts, rule, in_tree, out_tree):
    from .interpreters.batching import moveaxis
    if any(d is not None for d in dims[:num_consts]):
        raise NotImplementedError("custom_vmap: the function closes over a value batched by "
                                  "this vmap; pass it as an argument instead")
    size = next(get_aval(a).shape[d] for a, d in zip(args, dims) if d is not None)
    xs = [a if d is None else moveaxis(a, d, 0)
          for a, d in zip(args[num_consts:], dims[num_consts:])]
    flags = [d is not None for d in dims[num_consts:]]
    a_tree = tree_util.unflatten(in_tree, xs)
    b_tree = tree_util.unflatten(in_tree, flags)
    out, out_batched = rule(size, list(b_tree), *a_tree)
    flat, tree = tree_util.flatten(out)
    if tree != out_tree:
        raise TypeError(f"custom_vmap: the vmap rule returned an output of structure {tree}, "
                        f"but the function returns {out_tree}")
    flat_b, btree = tree_util.flatten(out_batched)
    if btree != tree:
        raise TypeError(f"custom_vmap: the vmap rule's out_batched {btree} must have the "
                        f"structure of its output {tree}")
    outs, odims = [], []
    for o, b in zip(flat, flat_b):
        o = as_leaf(o)
        if b and get_aval(o).shape[:1] != (size,):
            raise ValueError(f"custom_vmap: an output marked batched has shape "
                             f"{get_aval(o).shape}, not a leading axis of size {size}")
        outs.append(o)
        odims.append(0 if b else None)
    return outs, odims


custom_vmap_call_p.def_batch(_batch)


def _register_lowering():
    """The backend inlines the body (the rule only matters to `vmap`); declared on first use
    because the backend is not imported by `import transforms`."""
    if not _REGISTERED:
        from .backend.numba.registry import register_inline_call
        register_inline_call("custom_vmap_call", "call_jaxpr")
        _REGISTERED.append(True)


class custom_vmap:
    """A function with a custom batching rule (see the module docstring); `def_vmap(rule)`
    sets the rule and returns it (usable as a decorator)."""

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.vmap_rule = None

    def def_vmap(self, rule):
        """Set `rule(axis_size, in_batched, *args) -> (out, out_batched)`."""
        self.vmap_rule = rule
        return rule

    def __call__(self, *args, **kwargs):
        from .interpreters.partial_eval import convert_constvars, trace_to_jaxpr
        if kwargs:
            raise TypeError("custom_vmap: keyword arguments are not supported; pass them "
                            "positionally")
        if self.vmap_rule is None:
            raise AttributeError(f"No batching rule defined for custom_vmap function "
                                 f"{getattr(self.fun, '__name__', self.fun)} using def_vmap.")
        flat, in_tree = tree_util.flatten(args)
        flat = [as_leaf(x) for x in flat]
        store = {}

        def flat_fun(*xs):
            out = self.fun(*tree_util.unflatten(in_tree, list(xs)))
            outs, store["tree"] = tree_util.flatten(out)
            return [as_leaf(o) for o in outs]

        closed = trace_to_jaxpr(flat_fun, [get_aval(x) for x in flat])
        hoisted, consts = convert_constvars(closed)
        _register_lowering()
        outs = custom_vmap_call_p.bind(*consts, *flat, call_jaxpr=hoisted,
                                       num_consts=len(consts), rule=self.vmap_rule,
                                       in_tree=in_tree, out_tree=store["tree"])
        return tree_util.unflatten(store["tree"], list(outs))


def sequential_vmap(f):
    """`f` as a `custom_vmap` whose batching rule loops over the examples (`lax.map`) instead
    of vectorising `f`'s body."""
    from . import lax

    f = custom_vmap(f)

    @f.def_vmap
    def rule(axis_size, in_batched, *args):
        from .interpreters.batching import broadcast_batched
        flat, tree = tree_util.flatten(args)
        bflat, _ = tree_util.flatten(list(in_batched))
        full = [x if b else broadcast_batched(as_leaf(x), axis_size, 0)
                for x, b in zip(flat, bflat)]
        out = lax.map(lambda xs: f.fun(*tree_util.unflatten(tree, list(xs))), full)
        return out, tree_util.map(lambda _: True, out)
    return f
