"""Sorting and order statistics: sort, argsort, partition, median, quantile, searchsorted,
digitize, histogram (`unique` is in `_setops`).

Everything sorts through `lax.sort`'s stable argsort, so values carry gradients (a sorted
value's derivative is its source element's) and compile.
"""
from __future__ import annotations

import operator

import numpy as np

from .. import lax
from ..core import Tracer, concrete_or_error, get_aval
from ..lax.sorting import argsort as _lax_argsort
from ._ops import asarray, where
from ._shape_ops import moveaxis, ravel, take_along_axis


def _axis_and_array(a, axis):
    a = asarray(a)
    if axis is None:
        return ravel(a), 0
    nd = get_aval(a).ndim
    if nd == 0:
        raise np.exceptions.AxisError(f"axis {axis} is out of bounds for array of dimension 0")
    ax = operator.index(axis)
    if not -nd <= ax < nd:
        raise np.exceptions.AxisError(f"axis {ax} is out of bounds for array of dimension {nd}")
    return a, ax % nd


def argsort(a, axis=-1, kind=None, order=None, *, stable=True, descending=False):
    """`numpy.argsort` (int64 indices; always stable, so `kind` is accepted and ignored), plus
    JAX's `descending=` (ties still keep their original order)."""
    if order is not None:
        raise NotImplementedError("argsort: order= (structured arrays) is not supported")
    a, ax = _axis_and_array(a, axis)
    n = get_aval(a).shape[ax]
    if descending:
        # a stable descending sort: sort the reversed array, then map positions back
        # ascending stable sort of the reversed array, read backwards: equal elements then
        # come out in their original order
        idx = _lax_argsort(lax.rev(a, (ax,)), ax)
        idx = lax.sub(lax.broadcast_to(np.asarray(n - 1, np.int32), get_aval(idx).shape), idx)
        idx = lax.rev(idx, (ax,))
    else:
        idx = _lax_argsort(a, ax)
    return lax.convert_element_type(idx, np.int64)


def sort(a, axis=-1, kind=None, order=None, *, stable=True, descending=False):
    """`numpy.sort` (stable; NaNs last), plus JAX's `descending=`. Differentiable: each sorted
    value's derivative is that of the element it came from."""
    a, ax = _axis_and_array(a, axis)
    return take_along_axis(a, argsort(a, ax, descending=descending), ax)


def partition(a, kth, axis=-1):
    """`numpy.partition`: here the whole axis is sorted, which is one valid partition."""
    return sort(a, axis)


def argpartition(a, kth, axis=-1):
    """`numpy.argpartition`: indices of a full stable sort, one valid partition."""
    return argsort(a, axis)


def lexsort(keys, axis=-1):
    """`numpy.lexsort`: indices sorting by the last key first, then the others."""
    keys = [asarray(k) for k in keys]
    if not keys:
        raise TypeError("lexsort: need at least one key")
    ax = operator.index(axis)
    perm = argsort(keys[0], ax)
    for k in keys[1:]:
        perm = take_along_axis(perm, argsort(take_along_axis(k, perm, ax), ax), ax)
    return perm


# ---------------------------------------------------------------------------------------------
# quantiles
# ---------------------------------------------------------------------------------------------

_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def _float_dtype(dt):
    return np.dtype(dt) if np.issubdtype(dt, np.inexact) else np.dtype(np.float64)


def _quantile(a, q, axis, method, keepdims, nan_aware):
    if method not in _METHODS:
        raise ValueError(f"quantile: method must be one of {_METHODS}, got {method!r}")
    a = asarray(a)
    a_aval = get_aval(a)
    dt = _float_dtype(a_aval.dtype)
    if a_aval.dtype != dt:
        a = lax.convert_element_type(a, dt)
    q_arr = asarray(q)
    q_is_scalar = get_aval(q_arr).ndim == 0
    if not isinstance(q_arr, Tracer) and (np.any(q_arr < 0) or np.any(q_arr > 1)):
        raise ValueError("Quantiles must be in the range [0, 1]")
    if axis is None:
        axes = tuple(range(a_aval.ndim))
    else:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        axes = tuple(operator.index(x) % a_aval.ndim for x in axes)
    kept = [d for d in range(a_aval.ndim) if d not in axes]
    # move the reduced axes last and merge them into one
    moved = lax.transpose(a, tuple(kept) + axes) if a_aval.ndim else a
    lead = tuple(a_aval.shape[d] for d in kept)
    n = int(np.prod([a_aval.shape[d] for d in axes], dtype=np.int64))
    flat = lax.reshape(moved, lead + (n,))
    srt = sort(flat, axis=-1)                                   # NaNs last
    qf = lax.convert_element_type(q_arr, dt) if get_aval(q_arr).dtype != dt else q_arr
    if nan_aware:
        from ._ops import isnan, sum as _sum
        count = _sum(lax.convert_element_type(~isnan(flat), dt), axis=-1, keepdims=True)
    else:
        count = np.asarray(n, dt)
    qb = lax.reshape(qf, (1,) * len(lead) + (-1,)) if not q_is_scalar else qf
    pos = lax.mul(qb, lax.sub(count, np.asarray(1, dt)))        # fractional index per q
    lo = lax.floor(pos)
    hi = lax.ceil(pos)
    if method == "lower":
        idx_f = lo
    elif method == "higher":
        idx_f = hi
    elif method == "nearest":
        idx_f = lax.round_even(pos)
    else:
        idx_f = None

    def pick(idx):
        i = lax.convert_element_type(lax.max(idx, np.asarray(0, dt)), np.int64)
        i = lax.broadcast_to(i, lead + (get_aval(i).shape[-1] if get_aval(i).ndim > len(lead)
                                        else 1,))
        return take_along_axis(srt, i, -1)

    if idx_f is not None:
        out = pick(idx_f)
    else:
        lo_v, hi_v = pick(lo), pick(hi)
        if method == "midpoint":
            out = lax.mul(lax.add(lo_v, hi_v), np.asarray(0.5, dt))
        else:
            frac = lax.sub(pos, lo)
            frac = lax.broadcast_to(frac, get_aval(lo_v).shape)
            # lo + (hi - lo) * frac, written so equal neighbours (including infinities) give
            # exactly that value
            out = where(lax.eq(frac, np.zeros((), dt)), lo_v,
                        lax.add(lo_v, lax.mul(lax.sub(hi_v, lo_v), frac)))
    if nan_aware:
        out = where(lax.eq(lax.broadcast_to(count, get_aval(out).shape), np.zeros((), dt)),
                    np.asarray(np.nan, dt), out)
    else:
        # any NaN in the slice makes its quantile NaN (NumPy)
        from ._ops import isnan
        last = srt[..., n - 1:n] if n else None
        if last is not None:
            out = where(lax.broadcast_to(isnan(last), get_aval(out).shape),
                        np.asarray(np.nan, dt), out)
    # out: lead + (nq,)  ->  (nq,) + lead, then keepdims
    if q_is_scalar:
        out = lax.reshape(out, lead)
    else:
        out = moveaxis(out, -1, 0)
    if keepdims:
        shape = list(a_aval.shape)
        for d in axes:
            shape[d] = 1
        out = lax.reshape(out, (() if q_is_scalar else get_aval(q_arr).shape) + tuple(shape))
    elif not q_is_scalar and get_aval(q_arr).ndim != 1:
        out = lax.reshape(out, get_aval(q_arr).shape + lead)
    return out


def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
             keepdims=False, *, interpolation=None):
    """`numpy.quantile` (methods linear, lower, higher, midpoint, nearest)."""
    if out is not None:
        raise NotImplementedError("quantile: out= is not supported (arrays are immutable here)")
    return _quantile(a, q, axis, interpolation or method, keepdims, nan_aware=False)


def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
               keepdims=False, *, interpolation=None):
    """`numpy.percentile`: `quantile(a, q / 100)`."""
    q = asarray(q)
    return quantile(a, lax.div(q, np.asarray(100, get_aval(q).dtype)) if
                    np.issubdtype(get_aval(q).dtype, np.inexact) else np.asarray(q) / 100,
                    axis, out, overwrite_input, method, keepdims, interpolation=interpolation)


def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """`numpy.median`."""
    return quantile(a, 0.5, axis, out, overwrite_input, "linear", keepdims)


def nanquantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                keepdims=False, *, interpolation=None):
    """`numpy.nanquantile`: NaNs ignored (all-NaN slices give NaN)."""
    if out is not None:
        raise NotImplementedError("nanquantile: out= is not supported")
    return _quantile(a, q, axis, interpolation or method, keepdims, nan_aware=True)


def nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                  keepdims=False, *, interpolation=None):
    """`numpy.nanpercentile`."""
    q = asarray(q)
    return nanquantile(a, np.asarray(q) / 100 if not isinstance(q, Tracer) else
                       lax.div(q, np.asarray(100, get_aval(q).dtype)),
                       axis, out, overwrite_input, method, keepdims, interpolation=interpolation)


def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """`numpy.nanmedian`."""
    return nanquantile(a, 0.5, axis, out, overwrite_input, "linear", keepdims)


# ---------------------------------------------------------------------------------------------
# searching and binning
# ---------------------------------------------------------------------------------------------

def searchsorted(a, v, side="left", sorter=None, *, method=None):
    """`numpy.searchsorted` for a sorted 1-D `a`: the count of elements of `a` below `v`
    (`side='left'`) or not above it (`'right'`), computed by comparison, so it compiles and
    batches (cost len(a) x len(v))."""
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    a = asarray(a)
    if get_aval(a).ndim != 1:
        raise ValueError("searchsorted: a must be 1-D")
    if sorter is not None:
        a = take_along_axis(a, asarray(sorter), 0)
    v = asarray(v)
    from ._ops import less, less_equal, sum as _sum
    from ._promote import result_type
    dt = result_type(a, v)
    a, v = (x if get_aval(x).dtype == dt else lax.convert_element_type(x, dt) for x in (a, v))
    vv = lax.expand_dims(v, (get_aval(v).ndim,))
    cmp = less(a, vv) if side == "left" else less_equal(a, vv)
    return _sum(cmp, axis=-1, dtype=np.int64)


def digitize(x, bins, right=False):
    """`numpy.digitize` for monotonically increasing or decreasing `bins` (the direction is
    read from the end points, so traced bins work too)."""
    bins = asarray(bins)
    n = get_aval(bins).shape[0]
    side = "left" if right else "right"
    increasing = searchsorted(bins, x, side=side)
    if n < 2:
        return increasing
    decreasing = lax.sub(np.asarray(n, np.int64), searchsorted(bins[::-1], x, side=side))
    from ._ops import greater_equal
    return where(greater_equal(bins[-1], bins[0]), increasing, decreasing)


def histogram(a, bins=10, range=None, weights=None, density=None):
    """`numpy.histogram` with a static number of bins (or static bin edges): returns
    `(counts, edges)`. The last bin includes its right edge, as NumPy's."""
    a = asarray(a)
    flat = ravel(a)
    if isinstance(bins, (int, np.integer)):
        if range is None:
            if isinstance(flat, Tracer):
                raise ValueError("histogram: under a transformation give range= (the bin edges "
                                 "must not depend on traced data)")
            lo, hi = (float(np.min(flat)), float(np.max(flat))) if flat.size else (0.0, 1.0)
        else:
            lo, hi = (float(r) for r in range)
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, int(bins) + 1)
    else:
        edges = np.asarray(concrete_or_error(bins, "histogram: bins"), dtype=np.float64)
    nb = len(edges) - 1
    from ._ops import logical_and, less, less_equal, greater_equal, sum as _sum
    x = lax.expand_dims(lax.convert_element_type(flat, np.float64), (get_aval(flat).ndim,))
    lows, highs = edges[:-1], edges[1:]
    upper = np.array([False] * (nb - 1) + [True])
    inside = logical_and(greater_equal(x, lows),
                         where(upper, less_equal(x, highs), less(x, highs)))
    w = np.float64 if weights is not None or density else np.int64
    hit = lax.convert_element_type(inside, w)
    if weights is not None:
        hit = lax.mul(hit, lax.expand_dims(lax.convert_element_type(ravel(asarray(weights)),
                                                                    np.float64), (1,)))
    counts = _sum(hit, axis=0)
    if density:
        counts = counts / (_sum(counts) * np.diff(edges))
    return counts, edges
