"""Integer-array indexing: `gather` and its scatter partners.

`gather(x, idx)`: `idx` is an integer array of shape `B + (k,)` indexing the first `k` axes of
`x`; the result has shape `B + x.shape[k:]`. Out-of-bounds indices are clamped, or filled
with mode='fill' (see GATHER_MODES). `scatter_add` / `scatter` / `scatter_mul` /
`scatter_min` / `scatter_max` write `updates` of shape `B + x.shape[k:]` at those positions;
out-of-bounds updates are dropped (as JAX's scatter). NumPy advanced
indexing (`x[i, :, j]`, `.at[...]`) is rewritten onto this pair by `transforms.numpy`.
"""
from __future__ import annotations

import numpy as np

from ..core import Primitive, ShapedArray, get_aval
from ..errors import EmptyAxisIndexError, ShapeError
from ..interpreters import batching as B
from ..interpreters.jvp import deflinear
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

# Out-of-bounds modes of `gather` (JAX's GatherScatterMode):
#   "clip"               indices are clamped, and so are the transpose's (scatter-add) ones
#   "promise_in_bounds"  clamped here; the transpose drops out-of-bounds cotangents (what
#                        JAX's x[idx] does: XLA's gather clamps, its scatter drops)
#   "fill"               out-of-bounds index tuples give `fill_value`; transpose drops them
GATHER_MODES = ("clip", "promise_in_bounds", "fill")


def default_fill_value(dtype):
    """JAX's fill for out-of-bounds gathers: NaN for inexact dtypes, the most negative value
    for signed integers, the largest for unsigned ones, True for booleans."""
    dtype = np.dtype(dtype)
    if dtype.kind in "fc":
        return np.nan
    if dtype.kind == "i":
        return np.iinfo(dtype).min
    if dtype.kind == "u":
        return np.iinfo(dtype).max
    return True


@gather_p.def_impl
def _gather_impl(x, idx, *, mode="clip", fill_value=None):
    x = np.asarray(x)
    shape = _gather_shape(x, np.asarray(idx))
    if _prod(shape) == 0:            # (an empty axis may have no element to clamp to)
        return np.empty(shape, x.dtype)
    comps, _ = _index_tuple(x.shape, idx, "clip")
    out = x[comps]
    if mode == "fill":
        _, valid = _index_tuple(x.shape, idx, "drop")
        if valid is not None and not valid.all():
            fill = default_fill_value(x.dtype) if fill_value is None else fill_value
            out = np.array(out, copy=True)
            out[~valid] = np.asarray(fill).astype(x.dtype)
    return out


@gather_p.def_abstract_eval
def _gather_abstract(x, idx, *, mode="clip", fill_value=None):
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"gather indices must be integers, got {idx.dtype}")
    return ShapedArray(_gather_shape(x, idx), x.dtype)


def gather(x, idx, mode="clip", fill_value=None):
    """`x[idx[..., 0], ..., idx[..., k-1]]` with out-of-bounds `mode` (see GATHER_MODES)."""
    if mode not in GATHER_MODES:
        raise ValueError(f"gather: mode must be one of {GATHER_MODES}, got {mode!r}")
    if mode != "fill":
        fill_value = None
    elif isinstance(fill_value, np.generic):
        fill_value = fill_value.item()
    return gather_p.bind(as_array(x), as_array(idx), mode=mode, fill_value=fill_value)


gather_p.def_jvp(lambda p, t, *, mode="clip", fill_value=None: (
    gather(*p, mode=mode, fill_value=fill_value),
    gather(t[0], p[1], mode=mode, fill_value=0)))


@gather_p.def_transpose
def _gather_transpose(ct, x, idx, *, mode="clip", fill_value=None):
    # the cotangent goes where the value came from: the clamped position in "clip" mode;
    # out-of-bounds index tuples contributed nothing otherwise (scatter_add drops them)
    if mode == "clip":
        idx = _clamp_indices(idx, x.aval.shape)
    return [scatter_add(E.zeros_like_aval(x.aval), idx, ct), None]


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
def _gather_batch(args, dims, **params):
    (x, idx), (dx, di) = args, dims
    ia = get_aval(idx)
    if di is None:
        # a batched operand, shared indices: the batch axis becomes a window (trailing) axis
        k = ia.shape[-1]
        if dx < k:
            x = B.moveaxis(x, dx, k)
            dx = k
        return gather(x, idx, **params), ia.ndim - 1 + dx - k
    if dx is None:
        # shared operand, batched indices: the batch axis is one more index-batch axis
        if di == ia.ndim - 1:
            idx = B.moveaxis(idx, di, 0)
            di = 0
        return gather(x, idx, **params), di
    x, idx = B.moveaxis(x, dx, 0), B.moveaxis(idx, di, 0)
    return gather(x, _with_batch_component(idx), **params), 0


def _scatter(name, combine):
    p = Primitive(name)

    @p.def_impl
    def impl(x, idx, updates, **_):
        out = np.array(x, copy=True)
        comps, valid = _index_tuple(out.shape, idx, "drop")
        upd = np.asarray(updates)
        if valid is not None and not valid.all():
            comps = tuple(c[valid] for c in comps)
            upd = upd[valid]
        combine(out, comps, upd)
        return out

    @p.def_abstract_eval
    def abstract(x, idx, updates, **_):
        want = _gather_shape(x, idx)
        if updates.shape != want:
            raise ShapeError(f"{name}: updates of shape {updates.shape} do not match indexed "
                             f"shape {want}{where()}")
        if updates.dtype != x.dtype:
            raise TypeError(f"{name}: dtypes differ ({x.dtype}, {updates.dtype})")
        return x

    @p.def_batch
    def batch(args, dims, **params):
        (x, idx, upd), (dx, di, du) = args, dims
        size = B.batch_size(args, dims)
        if di is None:
            # shared indices: the batch axis is the first window axis of operand and updates
            ia = get_aval(idx)
            k = ia.shape[-1]
            x, upd = B.move_dim(x, dx, k, size), B.move_dim(upd, du, ia.ndim - 1, size)
            return p.bind(x, idx, upd, **params), k
        x, upd = B.bdim_at_front(x, dx, size), B.bdim_at_front(upd, du, size)
        idx = _with_batch_component(B.moveaxis(idx, di, 0))
        return p.bind(x, idx, upd, **params), 0

    def fn(x, idx, updates, **params):
        return p.bind(as_array(x), as_array(idx), as_array(updates), **params)
    fn.__name__ = name
    return p, fn


def _set(out, comps, upd):
    out[comps] = upd


scatter_add_p, scatter_add = _scatter("scatter_add", lambda o, c, u: np.add.at(o, c, u))
scatter_p, scatter = _scatter("scatter", _set)
scatter_mul_p, scatter_mul = _scatter("scatter_mul", lambda o, c, u: np.multiply.at(o, c, u))
scatter_min_p, scatter_min = _scatter("scatter_min", lambda o, c, u: np.minimum.at(o, c, u))
scatter_max_p, scatter_max = _scatter("scatter_max", lambda o, c, u: np.maximum.at(o, c, u))


deflinear(scatter_add_p, linear_argnums=(0, 2))   # linear in (operand, updates)


@scatter_add_p.def_transpose
def _scatter_add_transpose(ct, x, idx, u):
    ct_u = None
    if is_undefined(u):     # out-of-bounds updates were dropped: zero cotangent
        ct_u = _mask_updates(gather(ct, idx), _in_bounds(idx, get_aval(ct).shape))
    return [ct if is_undefined(x) else None, None, ct_u]


deflinear(scatter_p, linear_argnums=(0, 2))   # linear in (operand, updates)


@scatter_p.def_transpose
def _scatter_transpose(ct, x, idx, u):
    ua = u.aval if is_undefined(u) else get_aval(u)
    ct_x = scatter(ct, idx, E.zeros_like_aval(ua)) if is_undefined(x) else None
    ct_u = None
    if is_undefined(u):     # only updates that were not overwritten (or dropped) count
        ct_u = _mask_updates(gather(ct, idx), _scatter_winners(idx, get_aval(ct).shape))
    return [ct_x, None, ct_u]


@scatter_mul_p.def_jvp
def _scatter_mul_jvp(primals, tangents, *, unique_indices=False):
    x, idx, u = primals
    tx, _, tu = tangents
    out = scatter_mul(x, idx, u, unique_indices=unique_indices)
    t = None if tx is None else scatter_mul(tx, idx, u, unique_indices=unique_indices)
    if tu is not None:
        if not unique_indices:
            # d(prod of the updates at one position) needs the products of the others (as JAX)
            raise NotImplementedError(
                "differentiating x.at[idx].multiply(v) (or .divide/.power) with respect to v "
                "is implemented only when idx addresses each element at most once (as JAX)")
        # one update per position: d(x * u) = x * du there
        tu_x = E.mul(x, scatter_add(E.zeros_like_aval(get_aval(x)), idx, tu))
        t = tu_x if t is None else E.add(t, tu_x)
    return out, t


@scatter_mul_p.def_transpose
def _scatter_mul_transpose(ct, x, idx, u, *, unique_indices=False):
    if is_undefined(u):
        raise TypeError("scatter_mul is not linear in its updates")
    return [scatter_mul(ct, idx, u, unique_indices=unique_indices), None, None]


def _scatter_extremal_jvp(prim, fn):
    """JVP of scatter_min/max: each result takes the tangent of the operand or update(s) equal
    to it; ties share it equally (as JAX)."""
    def rule(primals, tangents):
        x, idx, u = primals
        tx, _, tu = tangents
        out = fn(x, idx, u)
        if tx is None and tu is None:
            return out, None
        xa, ua = get_aval(x), get_aval(u)
        rt = xa.dtype if xa.dtype.kind == "f" else np.dtype(np.float64)
        from_x = E.eq(x, out)
        from_u = E.bitwise_and(E.eq(u, gather(out, idx)), _in_bounds_b(idx, xa.shape, ua))
        count = E.add(E.convert_element_type(from_x, rt),
                      scatter_add(E.zeros_like_aval(ShapedArray(xa.shape, rt)), idx,
                                  E.convert_element_type(from_u, rt)))
        t = None
        if tx is not None:
            t = E.select(from_x, tx, E.zeros_like_aval(xa))
        if tu is not None:
            tu_sum = scatter_add(E.zeros_like_aval(xa), idx,
                                 E.select(from_u, tu, E.zeros_like_aval(ua)))
            t = tu_sum if t is None else E.add(t, tu_sum)
        return out, E.div(t, E.convert_element_type(count, xa.dtype))
    prim.def_jvp(rule)


def _in_bounds_b(idx, shape, ua):
    """`_in_bounds` broadcast over the window (trailing) axes of updates of aval `ua`."""
    ok = _in_bounds(idx, shape)
    return S.broadcast_in_dim(ok, ua.shape, tuple(range(get_aval(ok).ndim)))


_scatter_extremal_jvp(scatter_min_p, scatter_min)
_scatter_extremal_jvp(scatter_max_p, scatter_max)
