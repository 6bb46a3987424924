"""Reductions: reduce_sum/max/min/prod/and/or, argmax/argmin, cumsum/cumprod."""
from __future__ import annotations

import numpy as np

from ..core import Primitive, ShapedArray, get_aval
from ..interpreters.batching import shift_axis
from ..interpreters.partial_eval import keep_weak
from . import elementwise as E
from . import shape as S
from ._util import as_array


def _reduced_aval(x, axes):
    return ShapedArray(tuple(s for i, s in enumerate(x.shape) if i not in axes), x.dtype)


def _reduction(name, np_fn, dtype=None):
    p = Primitive(name)
    p.def_impl(lambda x, *, axes: np_fn(x, axis=axes))
    if dtype is None:
        p.def_abstract_eval(lambda x, *, axes: _reduced_aval(x, axes))
    else:
        p.def_abstract_eval(lambda x, *, axes: _reduced_aval(x, axes).update(dtype=dtype))

    @p.def_batch
    def batch(args, dims, *, axes):
        (x,), (d,) = args, dims
        return p.bind(x, axes=tuple(shift_axis(a, d) for a in axes)), d - sum(a < d for a in axes)

    def fn(x, axes):
        x = as_array(x)
        nd = get_aval(x).ndim
        axes = tuple(sorted(int(a) % nd for a in axes)) if nd else ()
        if not axes:
            return x
        return keep_weak(p.bind(x, axes=axes), x)       # JAX's reductions keep weak types
    fn.__name__ = name
    return p, fn


def _np_sum(x, axis):
    x = np.asarray(x)
    return np.sum(x, axis=axis, dtype=x.dtype)


def _np_prod(x, axis):
    x = np.asarray(x)
    return np.prod(x, axis=axis, dtype=x.dtype)


reduce_sum_p, reduce_sum = _reduction("reduce_sum", _np_sum)
def _np_extremum(np_fn, kind):
    def impl(x, axis):
        x = np.asarray(x)
        if x.size == 0:
            # an empty reduction gives the identity (-inf, the dtype's min, ...), as JAX's
            # lax.reduce_max/min and the compiled code; NumPy would raise. (tnp.max keeps
            # NumPy's error: it checks before binding.)
            from .conv import _identity
            return np_fn(x, axis=axis, initial=_identity(kind, x.dtype))
        return np_fn(x, axis=axis)
    return impl


reduce_max_p, reduce_max = _reduction("reduce_max", _np_extremum(np.max, "max"))
reduce_min_p, reduce_min = _reduction("reduce_min", _np_extremum(np.min, "min"))
reduce_prod_p, reduce_prod = _reduction("reduce_prod", _np_prod)
reduce_and_p, reduce_and = _reduction("reduce_and", np.all, np.dtype(np.bool_))
reduce_or_p, reduce_or = _reduction("reduce_or", np.any, np.dtype(np.bool_))


def _keep_dims_broadcast(y, x_shape, axes):
    """Broadcast a reduced value back to `x_shape` (the reduced axes restored)."""
    kept = tuple(i for i in range(len(x_shape)) if i not in axes)
    return S.broadcast_in_dim(y, x_shape, kept)


reduce_sum_p.def_jvp(lambda p, t, *, axes: (reduce_sum(p[0], axes), reduce_sum(t[0], axes)))
reduce_sum_p.def_transpose(
    lambda ct, x, *, axes: [_keep_dims_broadcast(ct, x.aval.shape, axes)])


def _minmax_reduce_jvp(fn):
    def rule(primals, tangents, *, axes):
        x, = primals
        out = fn(x, axes)
        shape = get_aval(x).shape
        # the tangent at the extremum, averaged over ties (as JAX)
        loc = E.convert_element_type(E.eq(x, _keep_dims_broadcast(out, shape, axes)),
                                     get_aval(x).dtype)
        counts = reduce_sum(loc, axes)
        return out, E.div(reduce_sum(E.mul(tangents[0], loc), axes), counts)
    return rule


reduce_max_p.def_jvp(_minmax_reduce_jvp(reduce_max))
reduce_min_p.def_jvp(_minmax_reduce_jvp(reduce_min))
for _p, _f in ((reduce_and_p, reduce_and), (reduce_or_p, reduce_or)):
    _p.def_jvp(lambda primals, tangents, _f=_f, *, axes: (_f(primals[0], axes), None))


@reduce_prod_p.def_jvp
def _reduce_prod_jvp(primals, tangents, *, axes):
    # d prod = sum_i t_i * prod_{j != i} x_j; the product of the others is an exclusive
    # cumulative product from the left times one from the right (exact at zeros).
    x, = primals
    a = get_aval(x)
    kept = [i for i in range(a.ndim) if i not in axes]
    perm = kept + list(axes)
    n = int(np.prod([a.shape[i] for i in axes]))
    lead = [a.shape[i] for i in kept]
    xs = S.reshape(S.transpose(x, perm), lead + [n])
    ts = S.reshape(S.transpose(tangents[0], perm), lead + [n])
    ones = S.full(lead + [1], 1, a.dtype)
    ax = len(lead)
    left = S.concatenate([ones, S.slice(cumprod(xs, ax), [0] * (ax + 1), lead + [n - 1])], ax) \
        if n > 1 else ones
    right = S.concatenate([S.slice(cumprod(xs, ax, reverse=True), [0] * ax + [1], lead + [n]),
                           ones], ax) if n > 1 else ones
    return reduce_prod(x, axes), reduce_sum(E.mul(ts, E.mul(left, right)), (ax,))


# ---------------------------------------------------------------------------------------------
# argmax / argmin
# ---------------------------------------------------------------------------------------------

def _arg(name, np_fn):
    p = Primitive(name)

    @p.def_impl
    def impl(x, *, axis, index_dtype):
        return np.asarray(np_fn(x, axis=axis)).astype(index_dtype)

    @p.def_abstract_eval
    def abstract(x, *, axis, index_dtype):
        if x.shape[axis] == 0:
            # NumPy's error (eager raises it from np.argmax); shapes are static, so a traced
            # or jitted call raises it here instead of returning index 0
            raise ValueError(f"attempt to get {name} of an empty sequence (axis {axis} of an "
                             f"operand of shape {tuple(x.shape)} has size 0)")
        return ShapedArray(tuple(s for i, s in enumerate(x.shape) if i != axis), index_dtype)
    p.def_jvp(lambda primals, tangents, **kw: (p.bind(primals[0], **kw), None))

    @p.def_batch
    def batch(args, dims, *, axis, index_dtype):
        (x,), (d,) = args, dims
        return p.bind(x, axis=shift_axis(axis, d), index_dtype=index_dtype), d - (axis < d)

    def fn(x, axis, index_dtype=np.int64):
        x = as_array(x)
        return p.bind(x, axis=int(axis) % get_aval(x).ndim, index_dtype=np.dtype(index_dtype))
    return p, fn


argmax_p, argmax = _arg("argmax", np.argmax)
argmin_p, argmin = _arg("argmin", np.argmin)


# ---------------------------------------------------------------------------------------------
# cumulative sums and products
# ---------------------------------------------------------------------------------------------

def _cumulative(name, np_fn):
    p = Primitive(name)

    @p.def_impl
    def impl(x, *, axis, reverse):
        x = np.asarray(x)
        if reverse:
            return np.flip(np_fn(np.flip(x, axis), axis=axis, dtype=x.dtype), axis)
        return np_fn(x, axis=axis, dtype=x.dtype)

    p.def_abstract_eval(lambda x, *, axis, reverse: x)

    @p.def_batch
    def batch(args, dims, *, axis, reverse):
        (x,), (d,) = args, dims
        return p.bind(x, axis=shift_axis(axis, d), reverse=reverse), d

    def fn(x, axis, reverse=False):
        x = as_array(x)
        return keep_weak(p.bind(x, axis=int(axis) % get_aval(x).ndim, reverse=bool(reverse)), x)
    return p, fn


cumsum_p, cumsum = _cumulative("cumsum", np.cumsum)
cumprod_p, cumprod = _cumulative("cumprod", np.cumprod)

cumsum_p.def_jvp(lambda p, t, **kw: (cumsum_p.bind(p[0], **kw), cumsum_p.bind(t[0], **kw)))
cumsum_p.def_transpose(lambda ct, x, *, axis, reverse: [cumsum(ct, axis, not reverse)])


@cumprod_p.def_jvp
def _cumprod_jvp(primals, tangents, *, axis, reverse):
    # Exact at zeros (no division by x): an inclusive prefix scan over (value, tangent) pairs
    # with the product rule (a1, d1) . (a2, d2) = (a1 a2, d1 a2 + a1 d2), in log2(n) doubling
    # steps of shifts (slice + pad with the identity (1, 0)). Linear in the tangent.
    x, = primals
    out = cumprod(x, axis, reverse)
    a, d = x, tangents[0]
    shape = get_aval(x).shape
    n = shape[axis]
    if reverse:
        a, d = S.rev(a, (axis,)), S.rev(d, (axis,))

    def shift(v, s, fill):
        limit = list(shape)
        limit[axis] = n - s
        cfg = [(0, 0, 0)] * len(shape)
        cfg[axis] = (s, 0, 0)
        return S.pad(S.slice(v, [0] * len(shape), limit), np.asarray(fill, get_aval(v).dtype),
                     cfg)

    s = 1
    while s < n:
        a_sh, d_sh = shift(a, s, 1), shift(d, s, 0)
        d = E.add(E.mul(d_sh, a), E.mul(a_sh, d))
        a = E.mul(a_sh, a)
        s *= 2
    if reverse:
        d = S.rev(d, (axis,))
    return out, d
