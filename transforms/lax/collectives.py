"""Collectives over a named mapped axis: psum, pmean, pmax, pmin, all_gather, axis_index.

Inside `vmap(f, axis_name='i')`, `f` is written for one example; a collective combines the
values of all examples along axis 'i' (as under `jax.vmap` / `pmap`). The primitives take one
axis name each (a tuple of names is applied one name at a time by the wrappers). They are
batched by the `BatchTrace` whose `axis_name` matches (`batch_trace_rule`): a psum becomes a
`reduce_sum` over the batch axis, `axis_index` an `iota`. A BatchTrace with a different name
maps them like any other primitive. Bound with no matching vmap, a name that an active
`transforms.distributed.Mesh` binds (`with mesh:`) runs over that mesh axis's process group
(the primitives' NumPy impls call MPI; under `jit` the compiled program is split at its
collectives, see `transforms/distributed/_segmented.py`); a name neither binds raises
`UnboundAxisNameError` ("unbound axis name: i"). `ppermute` sends each member's value to
another (JAX semantics).

Differentiation follows JAX: psum is linear and its transpose is psum (the cotangents of all
examples are summed), so `vmap(grad(f), axis_name='i')` of a function using `psum` gives the
gradient of the sum over examples, while `grad` of a function that calls `vmap` inside sees
only ordinary reductions.
"""
from __future__ import annotations

import numpy as np

from ..core import EVAL_TRACE, Primitive, ShapedArray, current_trace, get_aval
from ..distributed import _mesh as M
from ..interpreters import batching as B
from . import elementwise as E
from . import reductions as R
from . import shape as S
from ._util import as_array


class UnboundAxisNameError(NameError, ValueError):
    """A collective named an axis that no enclosing `vmap(..., axis_name=...)` and no active
    `transforms.distributed.Mesh` defines."""


def _unbound(name):
    active = [m.axis_names for m in M.active_meshes()]
    where = f" (active mesh axes: {active})" if active else " (no mesh is active)"
    return UnboundAxisNameError(
        f"unbound axis name: {name!r}. Collectives (psum, pmean, pmax, pmin, all_gather, "
        "axis_index, ppermute) must run inside vmap(..., axis_name=...) with that name, or "
        f"inside `with transforms.distributed.Mesh({{{name!r}: n}}):`{where}.")


def _mesh_comm(name):
    if isinstance(name, tuple):           # ppermute over several axes of one mesh
        meshes = [M.find(n) for n in name]
        for n, m in zip(name, meshes):
            if m is None:
                raise _unbound(n)
        if any(m is not meshes[0] for m in meshes):
            raise ValueError(f"collective over {name}: the names are bound by different "
                             "meshes; a tuple of names must come from one mesh")
        return meshes[0].comm(name)
    m = M.find(name)
    if m is None:
        raise _unbound(name)
    return m.comm(name)


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
        if B.find_axis(n) is None and M.find(n) is None and not _deferred():
            raise _unbound(n)


def _axis_size(name):
    t = B.find_axis(name)
    if t is not None:
        return t.axis_size
    m = M.find(name)
    if m is None:
        raise _unbound(name)
    return m.axis_size(name)


def _known_size(name):
    """The size of axis `name` if a vmap or an active mesh binds it, else None."""
    t = B.find_axis(name)
    if t is not None:
        return t.axis_size
    m = M.find(name)
    return None if m is None else m.axis_size(name)


def _matches(trace, axis_name):
    return trace.axis_name is not None and trace.axis_name == axis_name


def _raise_unbound(*args, axis_name, **params):
    raise _unbound(axis_name)


# ---------------------------------------------------------------------------------------------
# psum / pmax / pmin
# ---------------------------------------------------------------------------------------------

def _reducer(name, reduce_all, unbatched):
    p = Primitive(name)
    op = name[1:]

    def impl(x, *, axis_name):            # across processes (no vmap binds the name)
        comm = _mesh_comm(axis_name)
        buf = np.array(x, order="C", copy=True)
        comm.check_same(f"{name} {buf.dtype.str}{list(buf.shape)}", f"lax.{name}")
        return comm.allreduce_(buf, op)

    p.def_impl(impl)
    p.def_abstract_eval(lambda x, *, axis_name: x)

    def batch_trace_rule(trace, args, dims, *, axis_name):
        (x,), (d,) = args, dims
        if not _matches(trace, axis_name):
            return p.bind(x, axis_name=axis_name), d       # another axis: map it through
        if d is None:
            return unbatched(x, trace.axis_size), None
        return reduce_all(x, (d,)), None                    # the same for every example

    p.def_batch_trace_rule(batch_trace_rule)
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


def _eager_mesh(names):
    """The mesh communicators of `names` if this is an eager call that only processes bind."""
    if current_trace() is not EVAL_TRACE:
        return None
    if any(B.find_axis(n) is not None or M.find(n) is None for n in names):
        return None
    return [_mesh_comm(n) for n in names]


def _packed_reduce(name, leaves, comms, op, mean=False):
    """Eager collective of many leaves: one contiguous buffer (and one MPI call) per dtype."""
    arrs = [np.asarray(x) for x in leaves]
    if name == "psum":
        arrs = [a.astype(np.int64) if a.dtype == np.bool_ else a for a in arrs]
    if mean:
        arrs = [a if np.issubdtype(a.dtype, np.inexact) else a.astype(np.float64) for a in arrs]
    groups = {}
    for i, a in enumerate(arrs):
        groups.setdefault(a.dtype, []).append(i)
    out = [None] * len(arrs)
    desc = f"{name} " + " ".join(f"{a.dtype.str}{list(a.shape)}" for a in arrs)
    for c in comms:
        c.check_same(desc, f"lax.{'pmean' if mean else name}")
    count = int(np.prod([c.size for c in comms]))
    exact = mean and count & (count - 1) == 0       # 1/count a power of two: scale as we pack
    for dt, idx in groups.items():
        buf = comms[0].pooled(dt, sum(arrs[i].size for i in idx))
        if len(comms) == 1 and op == "sum" and comms[0].direct_sum_ok(dt, buf.nbytes):
            # large: reduced straight from the leaves, no packing pass (see sum_leaves_into)
            comms[0].sum_leaves_into(
                [np.ascontiguousarray(arrs[i]).reshape(-1) for i in idx], buf,
                scale=np.asarray(1.0 / count, dt) if exact else None,
                divide=np.asarray(count, dt) if mean and not exact else None)
            _views_of(buf, idx, arrs, out)
            continue
        off = 0
        for i in idx:                                # one pass: pack (and scale)
            piece = buf[off:off + arrs[i].size]
            if exact and count > 1:
                np.multiply(arrs[i].reshape(-1), np.asarray(1.0 / count, dt), out=piece)
            else:
                piece[...] = arrs[i].reshape(-1)
            off += arrs[i].size
        for c in comms:
            c.allreduce_(buf, op)
        if mean and not exact:
            buf /= np.asarray(count, dt)
        _views_of(buf, idx, arrs, out)
    return out


def _views_of(buf, idx, arrs, out):
    """The results: views of the reduced buffer (small ones copied out, not to pin it)."""
    off = 0
    for i in idx:
        view = buf[off:off + arrs[i].size].reshape(arrs[i].shape)
        out[i] = view.copy() if view.nbytes * 8 < buf.nbytes else view
        off += arrs[i].size


def _tree_collective(p, x, axis_name):
    from .. import tree
    names = _names(axis_name)
    _check_bound(names)
    comms = _eager_mesh(names)
    if comms is not None:
        leaves, treedef = tree.flatten(x)
        return tree.unflatten(treedef, _packed_reduce(p.name, leaves, comms, p.name[1:]))

    def one(leaf):
        leaf = as_array(leaf)
        if p is psum_p and get_aval(leaf).dtype == np.bool_:
            leaf = E.convert_element_type(leaf, np.int64)     # counts, as NumPy's sum
        for n in names:
            leaf = p.bind(leaf, axis_name=n)
        return leaf
    return tree.map(one, x)


def _no_groups(name, axis_index_groups):
    """JAX's keyword is accepted for porting, but groups are not supported (as in JAX's vmap,
    which is what our pmap is): say so instead of an unexpected-keyword TypeError."""
    if axis_index_groups is not None:
        raise NotImplementedError(f"{name}: axis_index_groups is not supported (as in "
                                  f"jax.vmap's collectives); reduce over a separate named "
                                  f"axis for each group instead")


def psum(x, axis_name, *, axis_index_groups=None):
    """Sum of `x` over all examples of the mapped axis `axis_name` (a pytree of arrays)."""
    _no_groups("psum", axis_index_groups)
    return _tree_collective(psum_p, x, axis_name)


def pmax(x, axis_name, *, axis_index_groups=None):
    """Maximum of `x` over the mapped axis `axis_name`."""
    _no_groups("pmax", axis_index_groups)
    return _tree_collective(pmax_p, x, axis_name)


def pmin(x, axis_name, *, axis_index_groups=None):
    """Minimum of `x` over the mapped axis `axis_name`."""
    _no_groups("pmin", axis_index_groups)
    return _tree_collective(pmin_p, x, axis_name)


# pmean is its own primitive (not psum / psum(ones)) so that a compiled program can scale while
# it packs the buffer it reduces: one pass over the data instead of a pack and a divide, and the
# number of members is the one of the group it runs over (a jitted pmean traced under one mesh is
# right under any other)
pmean_p = Primitive("pmean")


@pmean_p.def_impl
def _pmean_impl(x, *, axis_name):          # across processes (no vmap binds the name)
    comm = _mesh_comm(axis_name)
    buf = np.array(x, order="C", copy=True)
    comm.check_same(f"pmean {buf.dtype.str}{list(buf.shape)}", "lax.pmean")
    comm.allreduce_(buf, "sum")
    buf /= np.asarray(comm.size, buf.dtype)
    return buf


pmean_p.def_abstract_eval(lambda x, *, axis_name: x)


def _pmean_batch_trace_rule(trace, args, dims, *, axis_name):
    (x,), (d,) = args, dims
    if not _matches(trace, axis_name):
        return pmean_p.bind(x, axis_name=axis_name), d
    if d is None:
        return x, None                                  # every example holds the same value
    s = R.reduce_sum(x, (d,))
    return E.div(s, np.asarray(trace.axis_size, get_aval(s).dtype)), None


pmean_p.def_batch_trace_rule(_pmean_batch_trace_rule)
pmean_p.def_jvp(lambda p, t, *, axis_name: (pmean_p.bind(p[0], axis_name=axis_name),
                                            pmean_p.bind(t[0], axis_name=axis_name)))
# pmean = psum / n and the transpose of psum is psum: the transpose of pmean is pmean
pmean_p.def_transpose(lambda ct, x, *, axis_name: [pmean_p.bind(ct, axis_name=axis_name)])


def pmean(x, axis_name, *, axis_index_groups=None):
    """Mean of `x` over the mapped axis `axis_name` (integers and bools averaged as float64)."""
    from .. import tree
    _no_groups("pmean", axis_index_groups)
    names = _names(axis_name)
    _check_bound(names)
    comms = _eager_mesh(names)
    if comms is not None:
        leaves, treedef = tree.flatten(x)
        return tree.unflatten(treedef, _packed_reduce("psum", leaves, comms, "sum", mean=True))

    def one(leaf):
        leaf = as_array(leaf)
        if not np.issubdtype(get_aval(leaf).dtype, np.inexact):
            leaf = E.convert_element_type(leaf, np.float64)
        for n in names:               # groups of one axis have equal sizes: mean of means
            leaf = pmean_p.bind(leaf, axis_name=n)
        return leaf
    return tree.map(one, x)


# ---------------------------------------------------------------------------------------------
# all_gather
# ---------------------------------------------------------------------------------------------

all_gather_p = Primitive("all_gather")


@all_gather_p.def_impl
def _all_gather_impl(x, *, axis_name, axis, tiled, axis_size):
    comm = _mesh_comm(axis_name)
    if comm.size != axis_size:
        raise ValueError(f"all_gather over {axis_name!r}: traced for {axis_size} members but "
                         f"the active mesh axis has {comm.size}")
    x = np.asarray(x)
    comm.check_same(f"all_gather {x.dtype.str}{list(x.shape)} axis={axis}", "lax.all_gather")
    out = np.moveaxis(comm.allgather(x), 0, axis)
    if tiled:
        out = out.reshape(out.shape[:axis] + (-1,) + out.shape[axis + 2:])
    return np.asarray(out, order="C")


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


all_gather_p.def_batch_trace_rule(_all_gather_batch_trace_rule)
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


def all_gather(x, axis_name, *, axis_index_groups=None, axis=0, tiled=False):
    """Every example's `x`, stacked along a new axis `axis` (or concatenated along `axis` when
    `tiled`); the result is the same for all examples."""
    from .. import tree
    _no_groups("all_gather", axis_index_groups)
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


@axis_index_p.def_impl
def _axis_index_impl(*, axis_name):
    m = M.find(axis_name)
    if m is None:
        raise _unbound(axis_name)
    return np.asarray(m.axis_index(axis_name), np.int32)

axis_index_p.def_abstract_eval(lambda *, axis_name: ShapedArray((), np.int32))


def _axis_index_batch_trace_rule(trace, args, dims, *, axis_name):
    if not _matches(trace, axis_name):
        return axis_index_p.bind(axis_name=axis_name), None
    return S.iota(np.int32, (trace.axis_size,), 0), 0


axis_index_p.def_batch_trace_rule(_axis_index_batch_trace_rule)


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


# ---------------------------------------------------------------------------------------------
# ppermute
# ---------------------------------------------------------------------------------------------

ppermute_p = Primitive("ppermute")
ppermute_p.def_abstract_eval(lambda x, *, axis_name, perm: x)


@ppermute_p.def_impl
def _ppermute_impl(x, *, axis_name, perm):
    comm = _mesh_comm(axis_name)
    x = np.asarray(x)
    comm.check_same(f"ppermute {x.dtype.str}{list(x.shape)} perm={list(perm)}", "lax.ppermute")
    _check_perm(perm, comm.size, axis_name)
    return comm.ppermute(x, perm)


def _ppermute_batch_trace_rule(trace, args, dims, *, axis_name, perm):
    (x,), (d,) = args, dims
    if isinstance(axis_name, tuple) and trace.axis_name in axis_name:
        raise NotImplementedError(
            f"ppermute over {axis_name}: traced (under jit) where no vmap bound "
            f"{trace.axis_name!r}, then mapped over it; call jit outside that vmap, or "
            "under it so that the names are bound while tracing")
    if not _matches(trace, axis_name):
        return ppermute_p.bind(x, axis_name=axis_name, perm=perm), d
    n = trace.axis_size
    _check_perm(perm, n, axis_name)
    x0 = B.move_dim(x, d, 0, n)
    shape = get_aval(x0).shape
    src_of = {dst: src for src, dst in perm}
    if sorted(src_of) == list(range(n)) and [src_of[i] for i in range(n)] == list(range(n)):
        return x0, 0                                      # the identity permutation
    zero = None
    pieces = []
    for dst in range(n):
        src = src_of.get(dst)
        if src is None:
            if zero is None:
                zero = S.full((1,) + shape[1:], 0, get_aval(x0).dtype)
            pieces.append(zero)
        else:
            pieces.append(S.slice(x0, (src,) + (0,) * (len(shape) - 1),
                                  (src + 1,) + shape[1:]))
    return S.concatenate(pieces, 0), 0


ppermute_p.def_batch_trace_rule(_ppermute_batch_trace_rule)
ppermute_p.def_jvp(lambda p, t, *, axis_name, perm: (
    ppermute_p.bind(p[0], axis_name=axis_name, perm=perm),
    ppermute_p.bind(t[0], axis_name=axis_name, perm=perm)))
# a permutation matrix (with zero rows where nothing arrives): its transpose sends back
ppermute_p.def_transpose(lambda ct, x, *, axis_name, perm: [
    ppermute_p.bind(ct, axis_name=axis_name, perm=tuple((d, s) for s, d in perm))])


def _check_perm(perm, size, axis_name):
    srcs = [s for s, _ in perm]
    dsts = [d for _, d in perm]
    for s, d in perm:
        if not (0 <= s < size and 0 <= d < size):
            raise ValueError(f"ppermute over {axis_name!r} (size {size}): pair {(s, d)} is out "
                             f"of range [0, {size})")
    if len(set(srcs)) != len(srcs):
        raise ValueError(f"ppermute: perm {list(perm)} sends from a source more than once")
    if len(set(dsts)) != len(dsts):
        raise ValueError(f"ppermute: perm {list(perm)} sends to a destination more than once")


def _normalize_perm(perm):
    try:
        pairs = tuple((int(s), int(d)) for s, d in perm)
    except (TypeError, ValueError):
        raise TypeError(f"ppermute: perm must be a list of (source, destination) int pairs, "
                        f"got {perm!r}") from None
    for (s, d), orig in zip(pairs, perm):
        if any(isinstance(v, bool) for v in orig):
            raise TypeError(f"ppermute: perm entries must be ints, got {orig!r}")
    return pairs


def _ppermute_gathered(leaf, names, pairs, n):
    """`ppermute` over several names of which a vmap binds at least one: every member gathers
    all values over the names (row-major) and keeps its source's row, zeros if it has none.
    Built from all_gather / axis_index / dynamic_slice, so grad (the transpose of all_gather is
    a psum and a slice: the inverse permutation) and vmap follow from their rules."""
    shape = get_aval(leaf).shape
    gathered = all_gather(leaf, names)                              # (n,) + shape
    zero = S.full((1,) + tuple(shape), 0, get_aval(leaf).dtype)
    gathered = S.concatenate([gathered, zero], 0)                   # row n: nothing arrives
    src_of = dict((d, s) for s, d in pairs)
    table = np.array([src_of.get(i, n) for i in range(n)], np.int32)
    src = S.reshape(S.dynamic_slice(table, [axis_index(names)], [1]), ())
    starts = [src] + [np.zeros((), np.int32)] * len(shape)
    return S.reshape(S.dynamic_slice(gathered, starts, (1,) + tuple(shape)), shape)


def _layout_order(names):
    """`names` in the order their axes are laid out - mesh axes first, in the mesh's order,
    then vmaps from the outermost in - which is the order ppermute linearises a tuple in (as
    JAX's ppermute, where the order of the names in the tuple does not matter)."""
    def key(n):
        t = B.find_axis(n)
        if t is not None:
            return (1, t.level)
        m = M.find(n)
        return (0, m.axis_names.index(n) if m is not None else 0)
    return tuple(sorted(names, key=key))


def ppermute(x, axis_name, perm):
    """Member `s` of axis `axis_name` sends its `x` (a pytree) to member `d` for every `(s, d)`
    in `perm`; a member that receives nothing gets zeros (as `jax.lax.ppermute`). For a tuple
    of names, `s` and `d` index the members of all of them row-major in the order the axes are
    laid out - a mesh's axes in the mesh's order (so `Mesh({"data": 2, "model": 2})` numbers
    them as process indices), vmaps outermost first - whatever the order of the tuple, as JAX's
    ppermute does under `shard_map`. (`axis_index` of a tuple follows the tuple's order.)"""
    from .. import tree
    names = _names(axis_name)
    _check_bound(names)
    pairs = _normalize_perm(perm)
    if len(set(names)) != len(names):
        raise ValueError(f"ppermute: axis name repeated in {names}")
    if len(names) == 1:
        name = names[0]
        size = _known_size(name)
        if size is not None:
            _check_perm(pairs, size, name)
        return tree.map(lambda leaf: ppermute_p.bind(as_array(leaf), axis_name=name,
                                                     perm=pairs), x)
    sizes = [_known_size(n) for n in names]
    if all(s is not None for s in sizes):
        _check_perm(pairs, int(np.prod(sizes)), names)
    if any(B.find_axis(n) is not None for n in names):
        n = int(np.prod(sizes))
        ordered = _layout_order(names)
        return tree.map(lambda leaf: _ppermute_gathered(as_array(leaf), ordered, pairs, n), x)
    # only meshes bind the names (now, or when the jitted program runs): one point-to-point
    # exchange over the process group spanning those mesh axes
    return tree.map(lambda leaf: ppermute_p.bind(as_array(leaf), axis_name=names, perm=pairs),
                    x)


COLLECTIVE_PRIMITIVES = ("psum", "pmean", "pmax", "pmin", "all_gather", "axis_index", "ppermute")

__all__ = ["psum", "pmean", "pmax", "pmin", "all_gather", "axis_index", "ppermute",
           "UnboundAxisNameError"]
