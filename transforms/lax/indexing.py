"""Integer-array indexing: `gather` and its scatter partners.

`gather(x, idx)`: `idx` is an integer array of shape `B + (k,)` indexing the first `k` axes of
`x`; the result has shape `B + x.shape[k:]`. Out-of-bounds indices are clamped (as JAX's
gather). `scatter_add` / `scatter` / `scatter_mul` write `updates` of shape `B + x.shape[k:]`
at those positions; out-of-bounds updates are dropped (as JAX's scatter). NumPy advanced
indexing (`x[i, :, j]`, `.at[...]`) is rewritten onto this pair by `transforms.numpy`.
"""
from __future__ import annotations

import numpy as np

from ..core import Primitive, ShapedArray, get_aval
from ..errors import EmptyAxisIndexError, ShapeError
from ..interpreters import batching as B
from ..source_info import where
from . import elementwise as E
from . import shape as S
from ._util import as_array, is_undefined


def _gather_shape(x, idx):
    k = idx.shape[-1]
    if k > x.ndim:
        raise ShapeError(f"gather: {k} index components for an array of rank {x.ndim}")
    out = idx.shape[:-1] + x.shape[k:]
    empty = [d for d in range(k) if x.shape[d] == 0]
    if empty and _prod(out):
        # no element to clamp to (NumPy raises IndexError; JAX: "non-empty take from an empty
        # axis"): raised by the shape rule, so eager, traced and jitted calls all agree
        raise EmptyAxisIndexError(
            f"gather: a non-empty result of shape {out} from axis {empty[0]} of size 0 "
            f"(operand shape {tuple(x.shape)})")
    return out


def _prod(shape):
    return int(np.prod(shape, dtype=np.int64))


def _index_tuple(x_shape, idx, mode):
    idx = np.asarray(idx)
    k = idx.shape[-1]
    comps = []
    valid = None
    for d in range(k):
        i = idx[..., d]
        n = x_shape[d]
        if mode == "clip":
            comps.append(np.clip(i, 0, max(n - 1, 0)))
        else:
            ok = (i >= 0) & (i < n)
            valid = ok if valid is None else valid & ok
            comps.append(i)
    return tuple(comps), valid


gather_p = Primitive("gather")


@gather_p.def_impl
def _gather_impl(x, idx):
    x = np.asarray(x)
    shape = _gather_shape(x, np.asarray(idx))
    if _prod(shape) == 0:            # (an empty axis may have no element to clamp to)
        return np.empty(shape, x.dtype)
    comps, _ = _index_tuple(x.shape, idx, "clip")
    return x[comps]


@gather_p.def_abstract_eval
def _gather_abstract(x, idx):
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"gather indices must be integers, got {idx.dtype}")
    return ShapedArray(_gather_shape(x, idx), x.dtype)


def gather(x, idx):
    return gather_p.bind(as_array(x), as_array(idx))


gather_p.def_jvp(lambda p, t: (gather(*p), gather(t[0], p[1])))


@gather_p.def_transpose
def _gather_transpose(ct, x, idx):
    # gather clamps out-of-bounds indices, so its transpose adds at the clamped positions
    return [scatter_add(E.zeros_like_aval(x.aval), _clamp_indices(idx, x.aval.shape), ct), None]


def _clamp_indices(idx, shape):
    ia = get_aval(idx)
    hi = np.asarray([max(n - 1, 0) for n in shape[:ia.shape[-1]]], ia.dtype)
    return E.min(E.max(idx, 0), hi)


def _mask_updates(ct_u, keep):
    """Zero the update cotangents whose index-batch position is not kept (`keep`: shape B)."""
    ua = get_aval(ct_u)
    keep = S.broadcast_in_dim(keep, ua.shape, tuple(range(get_aval(keep).ndim)))
    return E.select(keep, ct_u, E.zeros_like_aval(ua))


def _in_bounds(idx, shape):
    """Which index-batch positions address an element inside `shape` (scatter keeps those)."""
    from .reductions import reduce_and
    ia = get_aval(idx)
    hi = np.asarray(shape[:ia.shape[-1]], ia.dtype)
    ok = E.bitwise_and(E.ge(idx, 0), E.lt(idx, hi))
    return reduce_and(ok, (ia.ndim - 1,))


def _scatter_winners(idx, shape):
    """Which index-batch positions' updates survive a `scatter` (the last write wins; writes
    out of bounds are dropped)."""
    ia = get_aval(idx)
    k, bshape = ia.shape[-1], ia.shape[:-1]
    ids = S.reshape(S.iota(np.int64, (int(np.prod(bshape, dtype=np.int64)),), 0), bshape)
    board = scatter(S.full(shape[:k], -1, np.int64), idx, ids)
    return E.eq(gather(board, idx), ids)


def _with_batch_component(idx):
    """Batched indices (batch axis 0, components last) with the example number prepended as
    a new first component, so they index an operand whose batch axis is 0."""
    from .shape import concatenate, iota
    shape = get_aval(idx).shape
    return concatenate([iota(get_aval(idx).dtype, shape[:-1] + (1,), 0), idx], len(shape) - 1)


@gather_p.def_batch
def _gather_batch(args, dims):
    (x, idx), (dx, di) = args, dims
    ia = get_aval(idx)
    if di is None:
        # a batched operand, shared indices: the batch axis becomes a window (trailing) axis
        k = ia.shape[-1]
        if dx < k:
            x = B.moveaxis(x, dx, k)
            dx = k
        return gather(x, idx), ia.ndim - 1 + dx - k
    if dx is None:
        # shared operand, batched indices: the batch axis is one more index-batch axis
        if di == ia.ndim - 1:
            idx = B.moveaxis(idx, di, 0)
            di = 0
        return gather(x, idx), di
    x, idx = B.moveaxis(x, dx, 0), B.moveaxis(idx, di, 0)
    return gather(x, _with_batch_component(idx)), 0


def _scatter(name, combine):
    p = Primitive(name)

    @p.def_impl
    def impl(x, idx, updates):
        out = np.array(x, copy=True)
        comps, valid = _index_tuple(out.shape, idx, "drop")
        upd = np.asarray(updates)
        if valid is not None and not valid.all():
            comps = tuple(c[valid] for c in comps)
            upd = upd[valid]
        combine(out, comps, upd)
        return out

    @p.def_abstract_eval
    def abstract(x, idx, updates):
        want = _gather_shape(x, idx)
        if updates.shape != want:
            raise ShapeError(f"{name}: updates of shape {updates.shape} do not match indexed "
                             f"shape {want}{where()}")
        if updates.dtype != x.dtype:
            raise TypeError(f"{name}: dtypes differ ({x.dtype}, {updates.dtype})")
        return x

    @p.def_batch
    def batch(args, dims):
        (x, idx, upd), (dx, di, du) = args, dims
        size = B.batch_size(args, dims)
        if di is None:
            # shared indices: the batch axis is the first window axis of operand and updates
            ia = get_aval(idx)
            k = ia.shape[-1]
            x, upd = B.move_dim(x, dx, k, size), B.move_dim(upd, du, ia.ndim - 1, size)
            return p.bind(x, idx, upd), k
        x, upd = B.bdim_at_front(x, dx, size), B.bdim_at_front(upd, du, size)
        idx = _with_batch_component(B.moveaxis(idx, di, 0))
        return p.bind(x, idx, upd), 0

    def fn(x, idx, updates):
        return p.bind(as_array(x), as_array(idx), as_array(updates))
    fn.__name__ = name
    return p, fn


def _set(out, comps, upd):
    out[comps] = upd


scatter_add_p, scatter_add = _scatter("scatter_add", lambda o, c, u: np.add.at(o, c, u))
scatter_p, scatter = _scatter("scatter", _set)
scatter_mul_p, scatter_mul = _scatter("scatter_mul", lambda o, c, u: np.multiply.at(o, c, u))


@scatter_add_p.def_jvp
def _scatter_add_jvp(primals, tangents):
    x, idx, u = primals
    tx, _, tu = tangents
    out = scatter_add(x, idx, u)
    if tx is None and tu is None:
        return out, None
    return out, scatter_add(E.instantiate(tx, x), idx, E.instantiate(tu, u))


@scatter_add_p.def_transpose
def _scatter_add_transpose(ct, x, idx, u):
    ct_u = None
    if is_undefined(u):     # out-of-bounds updates were dropped: zero cotangent
        ct_u = _mask_updates(gather(ct, idx), _in_bounds(idx, get_aval(ct).shape))
    return [ct if is_undefined(x) else None, None, ct_u]


@scatter_p.def_jvp
def _scatter_jvp(primals, tangents):
    x, idx, u = primals
    tx, _, tu = tangents
    out = scatter(x, idx, u)
    if tx is None and tu is None:
        return out, None
    return out, scatter(E.instantiate(tx, x), idx, E.instantiate(tu, u))


@scatter_p.def_transpose
def _scatter_transpose(ct, x, idx, u):
    ua = u.aval if is_undefined(u) else get_aval(u)
    ct_x = scatter(ct, idx, E.zeros_like_aval(ua)) if is_undefined(x) else None
    ct_u = None
    if is_undefined(u):     # only updates that were not overwritten (or dropped) count
        ct_u = _mask_updates(gather(ct, idx), _scatter_winners(idx, get_aval(ct).shape))
    return [ct_x, None, ct_u]


@scatter_mul_p.def_jvp
def _scatter_mul_jvp(primals, tangents):
    x, idx, u = primals
    tx, _, tu = tangents
    out = scatter_mul(x, idx, u)
    if tu is not None:
        raise NotImplementedError("differentiation of .at[].multiply with respect to the "
                                  "multiplier; write x * factor instead")
    return out, None if tx is None else scatter_mul(tx, idx, u)


@scatter_mul_p.def_transpose
def _scatter_mul_transpose(ct, x, idx, u):
    return [scatter_mul(ct, idx, u), None, None]
