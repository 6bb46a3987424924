"""Collectives over a named mapped axis: psum, pmean, pmax, pmin, all_gather, axis_index.

Inside `vmap(f, axis_name='i')`, `f` is written for one example; a collective combines the
values of all examples along axis 'i' (as under `jax.vmap` / `pmap`). The primitives take one
axis name each (a tuple of names is applied one name at a time by the wrappers). They are
batched by the `BatchTrace` whose `axis_name` matches (`batch_trace_rule`): a psum becomes a
`reduce_sum` over the batch axis, `axis_index` an `iota`. A BatchTrace with a different name
maps them like any other primitive. Bound with no matching vmap, they raise
`UnboundAxisNameError` ("unbound axis name: i").

Differentiation follows JAX: psum is linear and its transpose is psum (the cotangents of all
examples are summed), so `vmap(grad(f), axis_name='i')` of a function using `psum` gives the
gradient of the sum over examples, while `grad` of a function that calls `vmap` inside sees
only ordinary reductions.
"""
from __future__ import annotations

import numpy as np

from ..core import Primitive, ShapedArray, current_trace, get_aval
from ..interpreters import batching as B
from . import elementwise as E
from . import reductions as R
from . import shape as S
from ._util import as_array


class UnboundAxisNameError(NameError, ValueError):
    """A collective named an axis that no enclosing `vmap(..., axis_name=...)` defines."""


def _unbound(name):
    return UnboundAxisNameError(
        f"unbound axis name: {name!r}. Collectives (psum, pmean, pmax, pmin, all_gather, "
        "axis_index) must run inside vmap(..., axis_name=...) with that name.")


def _names(axis_name):
    if isinstance(axis_name, (tuple, list)):
        if not axis_name:
            raise ValueError("collective: empty tuple of axis names")
        return tuple(axis_name)
    if axis_name is None:
        raise ValueError("collective: axis_name must be given (vmap's axis_name)")
    return (axis_name,)


def _deferred():
    """True if we are staging code for later (jit), where the axis may be bound later."""
    from ..interpreters.partial_eval import StagingTrace
    t = current_trace()
    while t is not None:
        if isinstance(t, StagingTrace) and not t.partial:
            return True
        t = t.parent
    return False


def _check_bound(names):
    for n in names:
        if B.find_axis(n) is None and not _deferred():
            raise _unbound(n)


def _axis_size(name):
    t = B.find_axis(name)
    if t is None:
        raise _unbound(name)
    return t.axis_size


def _matches(trace, axis_name):
    return trace.axis_name is not None and trace.axis_name == axis_name


def _raise_unbound(*args, axis_name, **params):
    raise _unbound(axis_name)


# ---------------------------------------------------------------------------------------------
# psum / pmax / pmin
# ---------------------------------------------------------------------------------------------

def _reducer(name, reduce_all, unbatched):
    p = Primitive(name)
    p.def_impl(_raise_unbound)
    p.def_abstract_eval(lambda x, *, axis_name: x)

    def batch_trace_rule(trace, args, dims, *, axis_name):
        (x,), (d,) = args, dims
        if not _matches(trace, axis_name):
            return p.bind(x, axis_name=axis_name), d       # another axis: map it through
        if d is None:
            return unbatched(x, trace.axis_size), None
        return reduce_all(x, (d,)), None                    # the same for every example

    p.batch_trace_rule = batch_trace_rule
    return p


def _psum_unbatched(x, n):
    return E.mul(x, np.asarray(n, get_aval(x).dtype))


psum_p = _reducer("psum", R.reduce_sum, _psum_unbatched)
pmax_p = _reducer("pmax", R.reduce_max, lambda x, n: x)
pmin_p = _reducer("pmin", R.reduce_min, lambda x, n: x)

psum_p.def_jvp(lambda p, t, *, axis_name: (psum_p.bind(p[0], axis_name=axis_name),
                                           psum_p.bind(t[0], axis_name=axis_name)))
# the Jacobian of psum is an all-ones matrix over the examples: its transpose is psum itself
psum_p.def_transpose(lambda ct, x, *, axis_name: [psum_p.bind(ct, axis_name=axis_name)])


def _pminmax_jvp(p):
    def rule(primals, tangents, *, axis_name):
        x, = primals
        t = tangents[0]
        out = p.bind(x, axis_name=axis_name)
        # the tangent of the example(s) holding the extremum, averaged over ties (as reduce_max)
        loc = E.convert_element_type(E.eq(x, out), get_aval(x).dtype)
        num = psum_p.bind(E.mul(t, loc), axis_name=axis_name)
        return out, E.div(num, psum_p.bind(loc, axis_name=axis_name))
    return rule


pmax_p.def_jvp(_pminmax_jvp(pmax_p))
pmin_p.def_jvp(_pminmax_jvp(pmin_p))


def _tree_collective(p, x, axis_name):
    from .. import tree
    names = _names(axis_name)
    _check_bound(names)

    def one(leaf):
        leaf = as_array(leaf)
        if p is psum_p and get_aval(leaf).dtype == np.bool_:
            leaf = E.convert_element_type(leaf, np.int64)     # counts, as NumPy's sum
        for n in names:
            leaf = p.bind(leaf, axis_name=n)
        return leaf
    return tree.map(one, x)


def psum(x, axis_name):
    """Sum of `x` over all examples of the mapped axis `axis_name` (a pytree of arrays)."""
    return _tree_collective(psum_p, x, axis_name)


def pmax(x, axis_name):
    """Maximum of `x` over the mapped axis `axis_name`."""
    return _tree_collective(pmax_p, x, axis_name)


def pmin(x, axis_name):
    """Minimum of `x` over the mapped axis `axis_name`."""
    return _tree_collective(pmin_p, x, axis_name)


def pmean(x, axis_name):
    """Mean of `x` over the mapped axis `axis_name`."""
    from .. import tree
    names = _names(axis_name)
    _check_bound(names)
    found = [B.find_axis(n) for n in names]

    def one(leaf):
        leaf = as_array(leaf)
        a = get_aval(leaf)
        if not np.issubdtype(a.dtype, np.inexact):
            leaf = E.convert_element_type(leaf, np.float64)
        dt = get_aval(leaf).dtype
        s = leaf
        for n in names:
            s = psum_p.bind(s, axis_name=n)
        if all(t is not None for t in found):
            count = np.asarray(np.prod([t.axis_size for t in found]), dt)
        else:                                   # staged for later: count the examples
            count = np.ones((), dt)
            for n in names:
                count = psum_p.bind(count, axis_name=n)
        return E.div(s, count)
    return tree.map(one, x)


# ---------------------------------------------------------------------------------------------
# all_gather
# ---------------------------------------------------------------------------------------------

all_gather_p = Primitive("all_gather")
all_gather_p.def_impl(_raise_unbound)


@all_gather_p.def_abstract_eval
def _all_gather_abstract(x, *, axis_name, axis, tiled, axis_size):
    shape = list(x.shape)
    if tiled:
        shape[axis] *= axis_size
    else:
        shape.insert(axis, axis_size)
    return ShapedArray(shape, x.dtype)


def _merge_axes(x, axis, count):
    """Merge `count` adjacent axes of `x` starting at `axis` into one."""
    shape = get_aval(x).shape
    merged = int(np.prod(shape[axis:axis + count], dtype=np.int64))
    return S.reshape(x, shape[:axis] + (merged,) + shape[axis + count:])


def _all_gather_batch_trace_rule(trace, args, dims, *, axis_name, axis, tiled, axis_size):
    (x,), (d,) = args, dims
    if not _matches(trace, axis_name):
        if d is None:
            return all_gather_p.bind(x, axis_name=axis_name, axis=axis, tiled=tiled,
                                     axis_size=axis_size), None
        x = B.moveaxis(x, d, 0)
        return all_gather_p.bind(x, axis_name=axis_name, axis=axis + 1, tiled=tiled,
                                 axis_size=axis_size), 0
    out = B.move_dim(x, d, axis, trace.axis_size)    # the examples, stacked along `axis`
    if tiled:
        out = _merge_axes(out, axis, 2)
    return out, None


all_gather_p.batch_trace_rule = _all_gather_batch_trace_rule
all_gather_p.def_jvp(lambda p, t, **kw: (all_gather_p.bind(p[0], **kw),
                                         all_gather_p.bind(t[0], **kw)))


@all_gather_p.def_transpose
def _all_gather_transpose(ct, x, *, axis_name, axis, tiled, axis_size):
    # example i receives the sum over examples of the slot that holds its own value
    total = psum_p.bind(ct, axis_name=axis_name)
    n = x.aval.shape[axis] if tiled else 1
    idx = axis_index_p.bind(axis_name=axis_name)
    starts = [np.zeros((), np.int32)] * get_aval(total).ndim
    starts[axis] = E.mul(idx, np.asarray(n, np.int32)) if n != 1 else idx
    sizes = list(get_aval(total).shape)
    sizes[axis] = n
    piece = S.dynamic_slice(total, starts, sizes)
    return [S.reshape(piece, x.aval.shape)]


def all_gather(x, axis_name, *, axis=0, tiled=False):
    """Every example's `x`, stacked along a new axis `axis` (or concatenated along `axis` when
    `tiled`); the result is the same for all examples."""
    from .. import tree
    names = _names(axis_name)
    sizes = [_axis_size(n) for n in names]

    def one(leaf):
        leaf = as_array(leaf)
        nd = get_aval(leaf).ndim
        ax = int(axis)
        if not (-(nd + 1) <= ax <= nd) or (tiled and not -nd <= ax < nd):
            raise ValueError(f"all_gather: axis {axis} out of range for rank {nd}")
        ax = ax % (nd if tiled else nd + 1)
        out = leaf
        for n, size in zip(reversed(names), reversed(sizes)):   # first name is the major one
            out = all_gather_p.bind(out, axis_name=n, axis=ax, tiled=False, axis_size=size)
        if len(names) > 1:
            out = _merge_axes(out, ax, len(names))
        if tiled:
            out = _merge_axes(out, ax, 2)
        return out
    return tree.map(one, x)


# ---------------------------------------------------------------------------------------------
# axis_index
# ---------------------------------------------------------------------------------------------

axis_index_p = Primitive("axis_index")
axis_index_p.def_impl(_raise_unbound)
axis_index_p.def_abstract_eval(lambda *, axis_name: ShapedArray((), np.int32))


def _axis_index_batch_trace_rule(trace, args, dims, *, axis_name):
    if not _matches(trace, axis_name):
        return axis_index_p.bind(axis_name=axis_name), None
    return S.iota(np.int32, (trace.axis_size,), 0), 0


axis_index_p.batch_trace_rule = _axis_index_batch_trace_rule


def axis_index(axis_name):
    """The position (int32) of the current example along the mapped axis `axis_name`; for a
    tuple of names, the row-major position over all of them."""
    names = _names(axis_name)
    _check_bound(names)
    out = None
    for n in names:
        i = axis_index_p.bind(axis_name=n)
        out = i if out is None else E.add(E.mul(out, np.asarray(_axis_size(n), np.int32)), i)
    return out


__all__ = ["psum", "pmean", "pmax", "pmin", "all_gather", "axis_index", "UnboundAxisNameError"]
