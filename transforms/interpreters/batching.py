"""vmap: batching by a `BatchTrace`, one batched primitive per primitive (never a Python loop).

A `BatchTracer` carries `(val, batch_dim)`: `val` is the whole batch (a value of the parent
trace: a NumPy array or a parent tracer) and `batch_dim` is the axis of `val` that is mapped.
The tracer's own aval is `val`'s with that axis removed, which is what the user's function sees.

Batching-rule convention (for everyone who writes primitives)
-------------------------------------------------------------
Write the rule right after the primitive's other rules, as `@prim.def_batch`::

    batch(args, dims, **params) -> (out, out_dim)

* `args` are the unwrapped operand values (NumPy arrays, Python scalars or tracers of the
  *parent* trace); `dims[i]` is the batch axis of `args[i]` as a non-negative int, or `None`
  when `args[i]` is not batched (it is then the same value for every example, with its
  unbatched shape). At least one entry of `dims` is an int (all-`None` calls never reach a
  rule: the primitive is simply bound in the parent trace).
* The rule runs with the parent trace current, so it just calls `lax` functions / binds
  primitives on `args`. It must compute the whole batch at once (one batched primitive, or a
  few), never loop over examples.
* It returns the batched output and its batch axis (an int, or `None` if the output does not
  depend on the example). For `multiple_results` primitives, `out` and `out_dim` are lists.
* Move batch axes only when needed; the helpers below do the moving and broadcasting:
  `batch_size(args, dims)`, `moveaxis(x, src, dst)`, `move_dim(x, dim, dst, size)` (moves, or
  broadcasts an unbatched `x`), `bdim_at_front(x, dim, size)`, `broadcast_batched(x, size,
  dim)`.

Higher-order primitives (control flow, pjit) and collectives, which need the axis size or
name, define instead::

    prim.batch_trace_rule(trace, args, dims, **params) -> (out, out_dim)

`trace` is the `BatchTrace` (`trace.axis_size`, `trace.axis_name`, `trace.parent`); the rule
runs with `trace.parent` current. It is called even when every dim is `None`, because the
body may refer to this trace's axis (`psum`, `axis_index`); return `None` dims for unbatched
outputs (binding the primitive unchanged when nothing inside needs the axis is fine).
To batch a jaxpr (the body of a higher-order primitive) use
`batch_jaxpr(closed, axis_size, in_dims, out_dims=None, axis_name=None)`.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Hashable

import numpy as np

from .. import tree as tree_util
from ..core import (ShapedArray, Trace, Tracer, as_leaf, bind_in, get_aval, new_trace,
                    set_current_trace)

not_mapped = None


# ---------------------------------------------------------------------------------------------
# Tracer and trace
# ---------------------------------------------------------------------------------------------

class BatchTracer(Tracer):
    __slots__ = ("val", "batch_dim", "_aval")

    def __init__(self, trace, val, batch_dim):
        self._trace, self.val, self.batch_dim = trace, val, batch_dim
        self._aval = None

    @property
    def aval(self):
        a = self._aval
        if a is None:
            va = get_aval(self.val)
            d = self.batch_dim
            if d is None:                       # unmapped: a lifted constant
                a = self._aval = va
            else:
                a = self._aval = ShapedArray(va.shape[:d] + va.shape[d + 1:], va.dtype)
        return a

    def concrete_value(self):
        if self.batch_dim is not None:
            return None
        v = self.val
        return v.concrete_value() if isinstance(v, Tracer) else v

    def constant_value(self):
        if self.batch_dim is not None:
            return None
        v = self.val
        return v.constant_value() if isinstance(v, Tracer) else v


class BatchTrace(Trace):
    """Maps every primitive over one axis of size `axis_size` (named `axis_name`, if given)."""

    def __init__(self, parent, axis_size, axis_name=None):
        super().__init__(parent)
        self.axis_size = axis_size
        self.axis_name = axis_name

    def __repr__(self):
        return f"BatchTrace(level={self.level}, axis_size={self.axis_size}, " \
               f"axis_name={self.axis_name!r})"

    def unwrap(self, x):
        if self.is_own(x):
            return x.val, x.batch_dim
        return x, None

    def wrap(self, val, dim, own=False):
        """`val` with batch axis `dim` as a value of this trace; an unbatched `val` is
        returned as it is, unless it was computed from values of this trace (`own`), which
        keeps lifted constants values of this trace (`tnp.arange(10)[::2][i]`)."""
        if dim is None and not own:
            return val
        return BatchTracer(self, val, dim)

    def lift(self, val):
        return BatchTracer(self, val, None)         # a constant: the same for every example

    def process_primitive(self, prim, args, params):
        vals, dims, own = [], [], False
        for a in args:
            if self.is_own(a):
                vals.append(a.val)
                dims.append(a.batch_dim)
                own = True
            else:
                vals.append(a)
                dims.append(None)
        custom = prim.batch_trace_rule
        if custom is not None:
            with set_current_trace(self.parent):
                out, out_dim = custom(self, vals, dims, **params)
        else:
            if all(d is None for d in dims):
                out = bind_in(self.parent, prim, *vals, **params)
                if not own:
                    return out
                out_dim = [None] * len(out) if prim.multiple_results else None
            else:
                if prim.batch is None:
                    raise NotImplementedError(
                        f"batching rule for '{prim.name}' not implemented")
                with set_current_trace(self.parent):
                    out, out_dim = prim.batch(vals, dims, **params)
        if prim.multiple_results:
            return [self.wrap(o, d, own) for o, d in zip(out, out_dim)]
        return self.wrap(out, out_dim, own)


def find_axis(axis_name, trace=None):
    """The innermost live `BatchTrace` named `axis_name` above `trace` (default: current)."""
    from ..core import current_trace
    t = current_trace() if trace is None else trace
    while t is not None:
        if isinstance(t, BatchTrace) and t.axis_name is not None and t.axis_name == axis_name:
            return t
        t = t.parent
    return None


# ---------------------------------------------------------------------------------------------
# Helpers for batching rules
# ---------------------------------------------------------------------------------------------

def batch_size(args, dims):
    for a, d in zip(args, dims):
        if d is not None:
            return get_aval(a).shape[d]
    raise ValueError("batch_size: no batched operand")


def moveaxis(x, src, dst):
    """Move axis `src` of `x` to position `dst` (one `transpose`, or nothing)."""
    from ..lax import shape as S
    nd = get_aval(x).ndim
    src, dst = src % nd, dst % nd
    if src == dst:
        return x
    perm = [i for i in range(nd) if i != src]
    perm.insert(dst, src)
    return S.transpose(x, perm)


def broadcast_batched(x, size, dim):
    """An unbatched `x` repeated `size` times along a new axis at position `dim`."""
    from ..lax import shape as S
    a = get_aval(x)
    shape = list(a.shape)
    shape.insert(dim, size)
    dims = [i for i in range(len(shape)) if i != dim]
    return S.broadcast_in_dim(x, tuple(shape), tuple(dims))


def move_dim(x, dim, dst, size):
    """`x` with its batch axis at `dst`: moved if `dim` is an int, broadcast if `dim` is None."""
    if dim is None:
        return broadcast_batched(x, size, dst)
    return moveaxis(x, dim, dst)


def bdim_at_front(x, dim, size):
    return move_dim(x, dim, 0, size)


def shift_axis(axis, bdim):
    """An axis of the unbatched operand, as an axis of the batched value (batch at `bdim`)."""
    return axis + (1 if bdim is not None and axis >= bdim else 0)


# ---------------------------------------------------------------------------------------------
# Generic rules used by several primitive families
# ---------------------------------------------------------------------------------------------

def elementwise_batch_rule(prim):
    """For n-ary primitives whose operands all have the output's shape: align batch axes (at
    the first batched operand's axis), broadcast unbatched operands, bind once."""
    def rule(args, dims, **params):
        bd = next(d for d in dims if d is not None)
        size = batch_size(args, dims)
        new = [a if d == bd else move_dim(a, d, bd, size) for a, d in zip(args, dims)]
        return prim.bind(*new, **params), bd
    return rule


def defvectorized(prim):
    """Register the batching rule of a primitive that acts elementwise on operands of one shape
    (with one or more outputs of that shape): batch axes are aligned, unbatched operands
    broadcast, and the primitive is bound once."""
    rule = elementwise_batch_rule(prim)
    if prim.multiple_results:
        def multi(args, dims, **params):
            outs, bd = rule(args, dims, **params)
            return outs, [bd] * len(outs)
        prim.def_batch(multi)
    else:
        prim.def_batch(rule)
    return prim


# ---------------------------------------------------------------------------------------------
# in_axes / out_axes
# ---------------------------------------------------------------------------------------------

class _NoneAxis:
    """Stands for `None` in an axis spec while broadcasting it over a value tree."""
    __repr__ = lambda self: "None"  # noqa: E731


_NONE = _NoneAxis()


def _flatten_axes(what, axes, tree):
    """One axis (int or None) per leaf of `tree`; `axes` is a tree prefix of `tree`."""
    import optree
    spec = optree.tree_map(lambda a: _NONE if a is None else a, axes, none_is_leaf=True,
                           namespace=tree_util.NAMESPACE)
    try:
        flat = optree.broadcast_prefix(spec, tree, namespace=tree_util.NAMESPACE)
    except ValueError as e:
        raise ValueError(
            f"vmap {what} specification must be a tree prefix of the corresponding value, got "
            f"specification {axes!r} for value tree {tree_util.structure(tree)}: {e}") from None
    out = []
    for a in flat:
        if a is _NONE:
            out.append(None)
        elif isinstance(a, (int, np.integer)) and not isinstance(a, bool):
            out.append(int(a))
        else:
            raise TypeError(f"vmap {what} must be ints or None (or trees of them), got {a!r}")
    return out


def _check_axes_spec(what, axes):
    if isinstance(axes, list) and what == "in_axes":
        axes = tuple(axes)          # one entry per positional argument
    if isinstance(axes, bool):
        raise TypeError(f"vmap {what} must be an int, None, or a tuple, got {axes!r}")
    if what == "in_axes" and not (axes is None or isinstance(axes, (int, np.integer, tuple))):
        raise TypeError(
            "vmap in_axes must be an int, None, or a tuple of entries corresponding to the "
            f"positional arguments passed to the function, got {axes!r}")
    return axes


def _leaf_value(x):
    return as_leaf(x, "vmap: argument")


def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_name: Hashable | None = None,
         axis_size: int | None = None, spmd_axis_name: Any = None) -> Callable:
    """Vectorise `fun` over an axis of its inputs (JAX's `vmap`).

    `in_axes`: an int, None, or a tuple with one entry (an int, None or a pytree prefix of
    that argument) per positional argument; negative axes count from the end. Keyword
    arguments are always mapped over axis 0. `out_axes`: the same for the outputs; an output
    that does not depend on the mapped axis is broadcast, and `None` is allowed only for such
    outputs. `axis_name` names the axis for collectives (`lax.psum`, `lax.axis_index`, ...);
    `axis_size` gives the size when no input is mapped. `spmd_axis_name` (a sharding hint
    in JAX) is accepted and ignored: there is one device.
    """
    if not callable(fun):
        raise TypeError(f"vmap: expected a callable, got {type(fun).__name__}")
    in_axes = _check_axes_spec("in_axes", in_axes)
    out_axes = _check_axes_spec("out_axes", out_axes)

    @functools.wraps(fun)
    def vmapped(*args, **kwargs):
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(
                f"vmap in_axes must be an int, None, or a tuple of entries corresponding to "
                f"the positional arguments passed to the function, but got len(in_axes)="
                f"{len(in_axes)}, len(args)={len(args)}")
        pos_paths, pos_tree = tree_util.flatten_with_path(args)
        kw_paths, kw_tree = tree_util.flatten_with_path(kwargs)
        axes = _flatten_axes("in_axes", in_axes, args) + [0] * len(kw_paths)
        names = ([f"args{tree_util.keystr(p)}" for p, _ in pos_paths]
                 + [f"kwargs{tree_util.keystr(p)}" for p, _ in kw_paths])
        # unmapped leaves pass through untouched, as in JAX: a Python scalar stays weakly
        # typed (and hashable, so it can feed a static argument of a jitted function)
        leaves = [x if ax is None else _leaf_value(x)
                  for (_, x), ax in zip(pos_paths + kw_paths, axes)]
        size = _mapped_size(leaves, axes, names, axis_size)
        for i, (x, ax) in enumerate(zip(leaves, axes)):
            if ax is not None:
                axes[i] = ax % get_aval(x).ndim
        n_pos = len(pos_paths)
        store = {}

        with new_trace(BatchTrace, size, axis_name) as trace:
            ins = [x if ax is None else BatchTracer(trace, x, ax) for x, ax in zip(leaves, axes)]
            a = tree_util.unflatten(pos_tree, ins[:n_pos])
            kw = tree_util.unflatten(kw_tree, ins[n_pos:])
            out = fun(*a, **kw)
            out_flat, out_tree = tree_util.flatten(out)
            oaxes = _flatten_axes("out_axes", out_axes, out)
            results = []
            for i, (o, want) in enumerate(zip(out_flat, oaxes)):
                val, dim = trace.unwrap(o) if isinstance(o, Tracer) else (_leaf_value(o), None)
                results.append(_place_output(val, dim, want, size, i, out_tree))
            store["tree"] = out_tree
        # a broadcast unbatched output is a read-only NumPy view: hand out a real array
        results = [np.array(r) if isinstance(r, np.ndarray) and not r.flags.writeable else r
                   for r in results]
        return tree_util.unflatten(store["tree"], results)

    return vmapped


def _mapped_size(leaves, axes, names, axis_size):
    sizes = []
    for x, ax, name in zip(leaves, axes, names):
        if ax is None:
            continue
        a = get_aval(x)
        if not -a.ndim <= ax < a.ndim:
            raise ValueError(
                f"vmap was requested to map its argument along axis {ax}, which implies that "
                f"its rank should be at least {ax + 1 if ax >= 0 else -ax}, but is only "
                f"{a.ndim} (its shape is {a.shape}), for {name}")
        sizes.append((a.shape[ax % a.ndim], ax, name, a))
    if not sizes:
        if axis_size is None:
            raise ValueError("vmap must have at least one non-None value in in_axes, or be "
                             "given axis_size")
        return int(axis_size)
    distinct = {s for s, *_ in sizes}
    if len(distinct) > 1 or (axis_size is not None and int(axis_size) not in distinct):
        lines = "\n".join(f"  * one axis had size {s}: axis {ax} of {name} of type "
                          f"{a.str_short()}" for s, ax, name, a in sizes)
        extra = "" if axis_size is None else f" (axis_size={axis_size} was given)"
        raise ValueError(f"vmap got inconsistent sizes for array axes to be mapped"
                         f"{extra}:\n{lines}")
    return sizes[0][0]


def _place_output(val, dim, want, size, index, out_tree):
    if want is None:
        if dim is not None:
            raise ValueError(
                f"vmap has mapped output (output {index} of {out_tree}) but out_axes is None: "
                "out_axes=None is only allowed for outputs that do not depend on the mapped "
                "axis")
        return val
    nd = get_aval(val).ndim + (0 if dim is not None else 1)
    if not -nd <= want < nd:
        raise ValueError(f"vmap out_axes {want} is out of bounds for output {index} of rank "
                         f"{nd - 1} (batched rank {nd})")
    return move_dim(val, dim, want % nd, size)


# ---------------------------------------------------------------------------------------------
# Batching a jaxpr (for higher-order primitives: pjit, control flow)
# ---------------------------------------------------------------------------------------------

def batch_jaxpr(closed, axis_size, in_dims, out_dims=None, axis_name=None):
    """Batch a `ClosedJaxpr`: returns `(batched_closed_jaxpr, out_dims)`.

    `in_dims[i]` is the batch axis (int) of input `i` in the new jaxpr's inputs, or `None` for
    an unbatched input (its aval is unchanged). `out_dims`, if given, forces each output's
    batch axis (`None` forces it unbatched: a `ValueError` if it depends on the batch; an int
    moves the axis there, broadcasting unbatched outputs); if `None`, each output keeps the
    axis its batching produced (reported in the returned `out_dims`, `None` = unbatched).
    `axis_name` makes collectives over that name inside the jaxpr act on this axis.
    """
    from ..ir import eval_jaxpr
    from .partial_eval import trace_to_jaxpr
    in_avals = []
    for a, d in zip(closed.in_avals, in_dims):
        if d is None:
            in_avals.append(a)
        else:
            shape = list(a.shape)
            shape.insert(d, axis_size)
            in_avals.append(ShapedArray(shape, a.dtype))
    store = {}

    def fun(*args):
        with new_trace(BatchTrace, axis_size, axis_name) as trace:
            ins = [x if d is None else BatchTracer(trace, x, d) for x, d in zip(args, in_dims)]
            outs = eval_jaxpr(closed.jaxpr, closed.consts, *ins)
            res, dims = [], []
            for i, o in enumerate(outs):
                val, dim = trace.unwrap(o) if isinstance(o, Tracer) else (o, None)
                if out_dims is not None:
                    want = out_dims[i]
                    if want is None and dim is not None:
                        raise ValueError(f"batch_jaxpr: output {i} is batched but was required "
                                         "to be unbatched")
                    if want is not None:
                        val = move_dim(val, dim, want, axis_size)
                    dim = want
                res.append(val)
                dims.append(dim)
            store["dims"] = dims
            return res

    new = trace_to_jaxpr(fun, in_avals)
    return new, store["dims"]


__all__ = ["vmap", "BatchTrace", "BatchTracer", "batch_jaxpr", "batch_size", "moveaxis",
           "move_dim", "bdim_at_front", "broadcast_batched", "elementwise_batch_rule",
           "find_axis", "not_mapped", "shift_axis", "defvectorized"]
