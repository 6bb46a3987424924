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
from ..errors import ShapeError
from ..source_info import where
from . import elementwise as E
from ._util import as_array, is_undefined


def _gather_shape(x, idx):
    k = idx.shape[-1]
    if k > x.ndim:
        raise ShapeError(f"gather: {k} index components for an array of rank {x.ndim}")
    return idx.shape[:-1] + x.shape[k:]


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
    return [scatter_add(E.zeros_like_aval(x.aval), idx, ct), None]


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
    return [ct if is_undefined(x) else None, None,
            gather(ct, idx) if is_undefined(u) else None]


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
    ct_u = gather(ct, idx) if is_undefined(u) else None
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
