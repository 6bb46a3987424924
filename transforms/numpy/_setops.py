"""Selections whose size depends on the data, with JAX's static `size=` forms: `nonzero`,
one-argument `where`, `argwhere`, `flatnonzero`, `unique` and the array-API `unique_*`,
`bincount`, `isin`, `compress`, `extract` and the 1-D set operations.

Without `size=` the result's shape depends on the values, so these need concrete input (NumPy
arrays, or concrete values inside `grad`); under `jit`/`vmap` they raise
`ConcretizationTypeError`, as JAX does. With `size=` the first `size` results are returned,
padded with `fill_value`, and everything is built from sorts, cumulative sums and scatters, so
it compiles and batches.

The common step is `_compact`: the selected elements of a 1-D array moved to the front (in
order) by scattering each to its rank among the selected ones.
"""
from __future__ import annotations

import collections

import numpy as np

from .. import lax
from ..core import Tracer, concrete_or_error, get_aval
from . import _ops
from ._ops import asarray, where
from ._shape_ops import concatenate, ravel, reshape, take

_INDEX = np.int64    # NumPy's intp (JAX with x64)


def _is_traced(x):
    return isinstance(x, Tracer) and x.concrete_value() is None


def _concrete(x, what):
    """`x` as a NumPy array, or the ConcretizationTypeError naming `what` and `size=`."""
    return np.asarray(concrete_or_error(x, f"{what} without size= (its output shape depends "
                                           f"on the data; pass size=)"))


def _any_tracer(*xs):
    return any(isinstance(x, Tracer) for x in xs)


def _count(keep):
    return _ops.sum(lax.convert_element_type(keep, _INDEX))


def _compact(values, keep, size, fill_value):
    """The entries of the 1-D `values` where `keep`, in order, in an array of length `size`;
    the slots past the last kept entry hold `fill_value`."""
    values = asarray(values)
    dt = get_aval(values).dtype
    rank = lax.sub(_ops.cumsum(lax.convert_element_type(keep, _INDEX)), np.asarray(1, _INDEX))
    slot = where(keep, rank, size)          # slot `size` is out of bounds: the scatter drops it
    base = _ops.full((size,), asarray(fill_value).astype(dt) if isinstance(fill_value, Tracer)
                     else np.asarray(fill_value, dt), dtype=dt)
    return _ops.at(base)[slot].set(values, mode="drop")


def _valid(size, count):
    """The mask of the filled slots of a compacted result of `count` entries."""
    return _ops.less(np.arange(size, dtype=_INDEX), count)


def _check_size(size):
    size = int(concrete_or_error(size, "size="))
    if size < 0:
        raise ValueError(f"size must be non-negative, got {size}")
    return size


# ---------------------------------------------------------------------------------------------
# nonzero and friends
# ---------------------------------------------------------------------------------------------

def nonzero(a, *, size=None, fill_value=None):
    """Mirrors `jax.numpy.nonzero` / `numpy.nonzero`: a tuple of int64 index arrays, one per
    dimension. Eager only without `size=`: under `jit`/`vmap` the output shape would depend on
    the data, so it raises `ConcretizationTypeError` (as JAX); with `size=` the first `size`
    nonzero positions are returned, padded with `fill_value` (default 0; a scalar or one value
    per dimension), which compiles and batches. No derivative (integer result)."""
    a = asarray(a)
    if size is None:
        if _is_traced(a):
            from ..errors import ConcretizationTypeError
            raise ConcretizationTypeError(
                "nonzero / one-argument where / argwhere / boolean-mask indexing produce an "
                "array whose shape depends on the data, which is not allowed under jit/vmap "
                "(as in JAX). Pass size= (and fill_value=), or use tnp.where(mask, x, 0).")
        return np.nonzero(np.asarray(a.concrete_value() if isinstance(a, Tracer) else a))
    size = _check_size(size)
    shape = get_aval(a).shape
    if len(shape) == 0:
        raise ValueError("nonzero: calling nonzero on 0d arrays is not allowed (NumPy 2); "
                         "use atleast_1d(a).nonzero()")
    fills = fill_value if isinstance(fill_value, (tuple, list)) else (fill_value,) * len(shape)
    if len(fills) != len(shape):
        raise ValueError(f"nonzero: fill_value must be a scalar or a tuple of length "
                         f"{len(shape)} (one per dimension), got length {len(fills)}")
    keep = _ops.not_equal(ravel(a), 0)
    n = int(np.prod(shape, dtype=np.int64))
    flat = _compact(np.arange(n, dtype=_INDEX), keep, size, 0)
    valid = _valid(size, _count(keep))
    out, stride = [], n
    for d, fill in zip(shape, fills):
        stride //= max(d, 1)
        idx = _ops.remainder(_ops.floor_divide(flat, max(stride, 1)), max(d, 1))
        out.append(where(valid, idx, np.asarray(0 if fill is None else fill).astype(_INDEX)
                         if not isinstance(fill, Tracer) else _ops.astype(fill, _INDEX)))
    return tuple(out)



def where(condition, x=None, y=None, /, *, size=None, fill_value=None):
    """Mirrors `jax.numpy.where`. Three arguments: `numpy.where` (elementwise selection;
    differentiable in `x` and `y`, the derivative passing only where each was selected;
    batches and compiles). One argument: `nonzero(condition, size=, fill_value=)` (eager only
    without `size=`, as JAX)."""
    if x is None and y is None:
        return nonzero(condition, size=size, fill_value=fill_value)
    if x is None or y is None:
        raise ValueError("where: either both or neither of x and y should be given")
    if size is not None or fill_value is not None:
        raise ValueError("where: size= and fill_value= apply to the one-argument form only")
    return _ops.where(condition, x, y)


def argwhere(a, *, size=None, fill_value=None):
    """Mirrors `jax.numpy.argwhere` / `numpy.argwhere`: the (N, ndim) int64 indices of the
    nonzero elements. Eager only without `size=` (`ConcretizationTypeError` under `jit`/`vmap`,
    as JAX); with `size=` exactly `size` rows padded with `fill_value` (default 0), which
    compiles and batches. No derivative (integer result)."""
    a = asarray(a)
    nd = get_aval(a).ndim
    if nd == 0:   # NumPy: one row of no columns when a is nonzero
        if size is not None:
            return np.zeros((_check_size(size), 0), _INDEX)
        return np.argwhere(_concrete(a, "argwhere"))
    if size is None:
        return np.argwhere(_concrete(a, "argwhere"))
    return _ops.stack(nonzero(a, size=size, fill_value=fill_value), axis=1)


def flatnonzero(a, *, size=None, fill_value=None):
    """Mirrors `jax.numpy.flatnonzero` / `numpy.flatnonzero`: the int64 indices of the nonzero
    elements of `ravel(a)`. Eager only without `size=` (as JAX); with `size=` padded with
    `fill_value` (default 0), which compiles and batches. No derivative (integer result)."""
    return nonzero(ravel(asarray(a)), size=size, fill_value=fill_value)[0]


# ---------------------------------------------------------------------------------------------
# unique
# ---------------------------------------------------------------------------------------------

def _first_of_runs(srt, equal_nan):
    """True at the first element of each run of equal values of the sorted 1-D `srt`."""
    first = np.ones((1,), np.bool_)
    is_new = concatenate([first, _ops.not_equal(srt[1:], srt[:-1])])
    if equal_nan and get_aval(srt).dtype.kind in "fc":
        both_nan = concatenate([np.zeros((1,), np.bool_),
                                _ops.logical_and(_ops.isnan(srt[1:]), _ops.isnan(srt[:-1]))])
        is_new = _ops.logical_and(is_new, _ops.logical_not(both_nan))
    return is_new


def _unique_sized(ar, return_index, return_inverse, return_counts, equal_nan, size,
                  fill_value):
    from ._sorting import argsort
    shape = get_aval(ar).shape
    flat = ravel(ar)
    dt = get_aval(flat).dtype
    n = get_aval(flat).shape[0]
    if n == 0:
        fill = np.zeros((), dt) if fill_value is None else fill_value
        outs = [_ops.full((size,), fill, dtype=dt)]
        if return_index:
            outs.append(np.zeros((size,), _INDEX))
        if return_inverse:
            outs.append(np.zeros(shape, _INDEX))
        if return_counts:
            outs.append(np.zeros((size,), _INDEX))
        return outs[0] if len(outs) == 1 else tuple(outs)
    perm = argsort(flat)                    # stable: the first occurrence of a value first
    srt = take(flat, perm)
    is_new = _first_of_runs(srt, equal_nan)
    fill = srt[0] if fill_value is None else fill_value     # JAX: the smallest value
    outs = [_compact(srt, is_new, size, fill)]
    if return_index:
        outs.append(_compact(perm, is_new, size, perm[0]))
    rank = lax.sub(_ops.cumsum(lax.convert_element_type(is_new, _INDEX)),
                   np.asarray(1, _INDEX))
    if return_inverse:
        inv = _ops.at(np.zeros((n,), _INDEX))[perm].set(rank)
        outs.append(reshape(inv, shape))
    if return_counts:
        outs.append(_ops.at(np.zeros((size,), _INDEX))[rank].add(
            np.ones((n,), _INDEX), mode="drop"))
    return outs[0] if len(outs) == 1 else tuple(outs)


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None,
           *, equal_nan=True, size=None, fill_value=None, sorted=True):
    """Mirrors `jax.numpy.unique` / `numpy.unique` of the flattened array (`axis=` is not
    supported): the sorted unique values, plus the first-occurrence indices, the inverse
    (shaped as the input, as NumPy 2) and the counts when asked. Eager only without `size=`
    (`ConcretizationTypeError` under `jit`/`vmap`, as JAX). With `size=`: the first `size`
    unique values padded with `fill_value` (default: the smallest value), the indices padded
    with the smallest value's index, the counts with 0; this compiles and batches. The values
    are differentiable with `size=` (each is its first occurrence's)."""
    if axis is not None:
        raise NotImplementedError("unique: axis= is not supported")
    ar = asarray(ar)
    if size is None:
        v = _concrete(ar, "unique")
        res = np.unique(v, return_index=return_index, return_inverse=return_inverse,
                        return_counts=return_counts, equal_nan=equal_nan)
        if not isinstance(ar, Tracer):
            return res
        # a concrete tracer (under grad): the sized path at the exact size, so the values
        # stay connected to `ar` and carry its derivative (as in JAX)
        size = len(res[0] if isinstance(res, tuple) else res)
    return _unique_sized(ar, return_index, return_inverse, return_counts, equal_nan,
                         _check_size(size), fill_value)


_UniqueAllResult = collections.namedtuple("_UniqueAllResult",
                                         "values indices inverse_indices counts")
_UniqueCountsResult = collections.namedtuple("_UniqueCountsResult", "values counts")
_UniqueInverseResult = collections.namedtuple("_UniqueInverseResult", "values inverse_indices")
_UniqueAllResult.__doc__ = "The result of `unique_all`, as NumPy's."
_UniqueCountsResult.__doc__ = "The result of `unique_counts`, as NumPy's."
_UniqueInverseResult.__doc__ = "The result of `unique_inverse`, as NumPy's."


def unique_values(x, /, *, size=None, fill_value=None):
    """Mirrors `jax.numpy.unique_values` / `numpy.unique_values` (array API): the sorted
    unique values, NaNs kept distinct. `size=`/`fill_value=` and the transformations as
    `unique`."""
    return unique(x, equal_nan=False, size=size, fill_value=fill_value)


def unique_counts(x, /, *, size=None, fill_value=None):
    """Mirrors `jax.numpy.unique_counts` / `numpy.unique_counts`: `(values, counts)` as a
    named tuple, NaNs distinct. `size=`/`fill_value=` and the transformations as `unique`."""
    return _UniqueCountsResult(*unique(x, return_counts=True, equal_nan=False, size=size,
                                      fill_value=fill_value))


def unique_inverse(x, /, *, size=None, fill_value=None):
    """Mirrors `jax.numpy.unique_inverse` / `numpy.unique_inverse`: `(values,
    inverse_indices)` (the inverse shaped as `x`), NaNs distinct. `size=`/`fill_value=` and
    the transformations as `unique`."""
    return _UniqueInverseResult(*unique(x, return_inverse=True, equal_nan=False, size=size,
                                       fill_value=fill_value))


def unique_all(x, /, *, size=None, fill_value=None):
    """Mirrors `jax.numpy.unique_all` / `numpy.unique_all`: `(values, indices,
    inverse_indices, counts)`, NaNs distinct. `size=`/`fill_value=` and the transformations
    as `unique`."""
    return _UniqueAllResult(*unique(x, return_index=True, return_inverse=True,
                                   return_counts=True, equal_nan=False, size=size,
                                   fill_value=fill_value))


# ---------------------------------------------------------------------------------------------
# counting and membership
# ---------------------------------------------------------------------------------------------

def bincount(x, weights=None, minlength=0, *, length=None):
    """Mirrors `jax.numpy.bincount`: the count (or the sum of `weights`) of each value of the
    1-D non-negative integer array `x`. As JAX, negative values count in bin 0 (NumPy raises)
    and, with `length=`, values >= length are dropped. Eager only without `length=` (the number
    of bins is `max(x) + 1`, so under `jit`/`vmap` it raises `ConcretizationTypeError`, as JAX);
    with `length=` it compiles and batches. Result dtype as NumPy: int64 counts, float64 sums
    (complex128 for complex weights; JAX keeps the weights' dtype). Differentiable in
    `weights`."""
    x = asarray(x)
    xdt = get_aval(x).dtype
    if xdt.kind not in "iub":
        raise TypeError(f"bincount: x must be an integer array, got {xdt}")
    if get_aval(x).ndim != 1:
        raise ValueError(f"bincount: x must be 1-D, got shape {get_aval(x).shape}")
    minlength = int(concrete_or_error(minlength, "bincount: minlength"))
    if minlength < 0:
        raise ValueError("bincount: minlength must be non-negative")
    if length is None:
        v = _concrete(x, "bincount")
        length = max(minlength, int(v.max()) + 1 if v.size else 0)
    else:
        length = _check_size(length)
    idx = _ops.maximum(lax.convert_element_type(x, _INDEX), 0)
    if weights is None:
        vals, dt = np.ones(get_aval(x).shape, _INDEX), _INDEX
    else:
        w = asarray(weights)
        if get_aval(w).shape != get_aval(x).shape:
            raise ValueError(f"bincount: weights shape {get_aval(w).shape} must match x "
                             f"shape {get_aval(x).shape}")
        dt = np.complex128 if get_aval(w).dtype.kind == "c" else np.float64
        vals = _ops.astype(w, dt)
    return _ops.at(np.zeros((length,), dt))[idx].add(vals, mode="drop")


def isin(element, test_elements, assume_unique=False, invert=False, *, method="auto"):
    """Mirrors `jax.numpy.isin` / `numpy.isin`: a boolean array shaped as `element`, True where
    the value occurs in `test_elements`. Compares every pair (cost len(element) x
    len(test_elements)), so it compiles and batches; boolean result: no derivative."""
    e, t = asarray(element), ravel(asarray(test_elements))
    if get_aval(t).shape[0] == 0:
        out = _ops.zeros_like(e, dtype=np.bool_)
    else:
        out = _ops.any(_ops.equal(lax.expand_dims(e, (get_aval(e).ndim,)), t), axis=-1)
    return _ops.logical_not(out) if invert else out


def compress(condition, a, axis=None, *, size=None, fill_value=0, out=None):
    """Mirrors `jax.numpy.compress` / `numpy.compress`: the slices of `a` along `axis`
    (flattened when None) where the 1-D `condition` is True. A concrete `condition` works
    everywhere (also on traced `a`, differentiably); a traced one needs `size=` (else
    `ConcretizationTypeError`, as JAX), giving `size` slices padded with `fill_value`, which
    compiles and batches."""
    if out is not None:
        raise TypeError("compress: the 'out' argument is not supported (arrays are immutable)")
    c = ravel(asarray(condition))
    a = asarray(a)
    if axis is None:
        a, axis = ravel(a), 0
    nd = get_aval(a).ndim
    if not -nd <= axis < nd:
        raise np.exceptions.AxisError(f"compress: axis {axis} is out of bounds for array of "
                                      f"dimension {nd}")
    axis %= nd
    n = get_aval(a).shape[axis]
    nc = get_aval(c).shape[0]
    if nc > n:
        c = c[:n]
    elif nc < n:
        c = concatenate([c, np.zeros((n - nc,), get_aval(c).dtype)])
    if size is None:
        idx = np.nonzero(_concrete(c, "compress"))[0]
        return take(a, idx, axis=axis)
    size = _check_size(size)
    keep = _ops.not_equal(c, 0)
    idx = _compact(np.arange(n, dtype=_INDEX), keep, size, 0)
    picked = take(a, idx, axis=axis, mode="clip") if n else \
        _ops.zeros(get_aval(a).shape[:axis] + (size,) + get_aval(a).shape[axis + 1:],
                   get_aval(a).dtype)
    valid = _valid(size, _count(keep))
    vshape = [1] * nd
    vshape[axis] = size
    fill = fill_value if isinstance(fill_value, Tracer) else np.asarray(fill_value)
    return where(reshape(valid, tuple(vshape)), picked, _ops.astype(fill, get_aval(a).dtype))


def extract(condition, arr, *, size=None, fill_value=0):
    """Mirrors `jax.numpy.extract` / `numpy.extract`: the elements of `ravel(arr)` where
    `ravel(condition)` is nonzero. Transformations and `size=` as `compress`."""
    return compress(ravel(asarray(condition)), ravel(asarray(arr)), size=size,
                    fill_value=fill_value)


# ---------------------------------------------------------------------------------------------
# 1-D set operations
# ---------------------------------------------------------------------------------------------

def _sorted_flat(a):
    from ._sorting import argsort
    flat = ravel(asarray(a))
    perm = argsort(flat)
    return take(flat, perm), perm


def _fill_default(out, valid, fill_value, default_first):
    """Pads the slots past `valid` with `fill_value`, or JAX's default: the first (smallest)
    result when `default_first`, else 0."""
    if fill_value is None:
        if not default_first or get_aval(out).shape[0] == 0:
            return where(valid, out, np.zeros((), get_aval(out).dtype))
        fill_value = out[0]
    return where(valid, out, _ops.astype(fill_value, get_aval(out).dtype))


def _promoted_pair(ar1, ar2):
    a, b = ravel(asarray(ar1)), ravel(asarray(ar2))
    dt = _ops.result_type_(a, b)
    return _ops.astype(a, dt), _ops.astype(b, dt)


def _set_op_eager(np_fn, name, ar1, ar2, size, *np_args):
    """The shared start of the two-array set operations: `(NumPy's result, None)` when they
    run eagerly (no `size=`, no tracer), else `(None, the checked size)`. Without `size=` a
    concrete tracer (under grad) takes the sized path at the exact size of NumPy's result, so
    the values stay connected to the inputs and carry their derivatives."""
    if size is None:
        res = np_fn(_concrete(asarray(ar1), name), _concrete(asarray(ar2), name), *np_args)
        if not _any_tracer(ar1, ar2):
            return res, None
        size = len(res[0] if isinstance(res, tuple) else res)
    return None, _check_size(size)


def union1d(ar1, ar2, *, size=None, fill_value=None):
    """Mirrors `jax.numpy.union1d` / `numpy.union1d`: the sorted unique values of both arrays.
    Eager only without `size=` (as JAX); with `size=` padded with `fill_value` (default: the
    smallest value), which compiles and batches."""
    a, b = _promoted_pair(ar1, ar2)
    return unique(concatenate([a, b]), size=size, fill_value=fill_value)


def setdiff1d(ar1, ar2, assume_unique=False, *, size=None, fill_value=None):
    """Mirrors `jax.numpy.setdiff1d` / `numpy.setdiff1d`: the sorted unique values of `ar1` not
    in `ar2` (with `assume_unique=True`, the values of `ar1` not in `ar2` in their order, as
    NumPy). Eager only without `size=` (as JAX); with `size=` padded with `fill_value` (default
    0, as JAX), which compiles and batches."""
    res, size = _set_op_eager(np.setdiff1d, "setdiff1d", ar1, ar2, size, assume_unique)
    if size is None:
        return res
    a, b = _promoted_pair(ar1, ar2)
    if assume_unique:
        vals, keep = a, isin(a, b, invert=True)
    else:
        vals, _ = _sorted_flat(a)
        keep = _ops.logical_and(_first_of_runs(vals, True), isin(vals, b, invert=True)) \
            if get_aval(vals).shape[0] else isin(vals, b)
    out = _compact(vals, keep, size, 0)
    return _fill_default(out, _valid(size, _count(keep)), fill_value, False)


def setxor1d(ar1, ar2, assume_unique=False, *, size=None, fill_value=None):
    """Mirrors `jax.numpy.setxor1d` / `numpy.setxor1d`: the sorted unique values in exactly
    one of the arrays. Eager only without `size=` (as JAX); with `size=` padded with
    `fill_value` (default: the smallest result), which compiles and batches."""
    res, size = _set_op_eager(np.setxor1d, "setxor1d", ar1, ar2, size, assume_unique)
    if size is None:
        return res
    a, b = _promoted_pair(ar1, ar2)
    parts, keeps = [], []
    for x, other in ((a, b), (b, a)):
        if get_aval(x).shape[0] == 0:
            continue
        s, _ = _sorted_flat(x)
        parts.append(s)
        keeps.append(_ops.logical_and(_first_of_runs(s, True), isin(s, other, invert=True)))
    if not parts:
        return _ops.full((size,), 0 if fill_value is None else fill_value,
                         dtype=get_aval(a).dtype)
    vals, keep = concatenate(parts), concatenate(keeps)
    from ._sorting import argsort
    order = argsort(vals)
    vals, keep = take(vals, order), take(keep, order)
    out = _compact(vals, keep, size, 0)
    return _fill_default(out, _valid(size, _count(keep)), fill_value, True)


def intersect1d(ar1, ar2, assume_unique=False, return_indices=False, *, size=None,
                fill_value=None):
    """Mirrors `jax.numpy.intersect1d` / `numpy.intersect1d`: the sorted unique values in both
    arrays, and with `return_indices` the index of each one's first occurrence in each array.
    Eager only without `size=` (as JAX); with `size=` the values are padded with `fill_value`
    (default: the smallest result) and the indices with the arrays' lengths (as JAX); this
    compiles and batches. `assume_unique` is accepted; with `size=` the inputs are
    de-duplicated anyway (same result for unique inputs)."""
    res, size = _set_op_eager(np.intersect1d, "intersect1d", ar1, ar2, size, assume_unique,
                              return_indices)
    if size is None:
        return res
    a, b = _promoted_pair(ar1, ar2)
    n1, n2 = get_aval(a).shape[0], get_aval(b).shape[0]
    if n1 == 0 or n2 == 0:
        vals = _ops.full((size,), 0 if fill_value is None else fill_value,
                         dtype=get_aval(a).dtype)
        if not return_indices:
            return vals
        return vals, np.full((size,), n1, _INDEX), np.full((size,), n2, _INDEX)
    s, perm = _sorted_flat(a)
    keep = _ops.logical_and(_first_of_runs(s, True), isin(s, b))
    valid = _valid(size, _count(keep))
    vals = _fill_default(_compact(s, keep, size, 0), valid, fill_value, True)
    if not return_indices:
        return vals
    ind1 = where(valid, _compact(perm, keep, size, 0), n1)
    # the first position of each value in b (argmax finds the first True)
    hits = _ops.equal(lax.expand_dims(_compact(s, keep, size, 0), (1,)), b)
    ind2 = where(valid, _ops.argmax(hits, axis=1).astype(_INDEX), n2)
    return vals, ind1, ind2
