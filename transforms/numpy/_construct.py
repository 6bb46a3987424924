"""More of NumPy's array construction and rearrangement, over the core `tnp` functions:
stacking and splitting helpers, rolls and rotations, grids and index helpers, functional
`put`, interpolation, `select`. Index helpers whose results depend only on shapes return
plain NumPy arrays (as constants they cost nothing under `jit`)."""
from __future__ import annotations

import operator

import numpy as np

from .. import lax
from ..core import Tracer, concrete_or_error, get_aval
from . import _ops, _shape_ops
from ._ops import asarray, where
from ._shape_ops import concatenate, moveaxis, ravel, reshape, stack

# shape-only helpers: NumPy's own results are constants
tri = np.tri
tril_indices = np.tril_indices
triu_indices = np.triu_indices
diag_indices = np.diag_indices
indices = np.indices
mask_indices = np.mask_indices
broadcast_shapes = np.broadcast_shapes
promote_types = np.promote_types
printoptions = np.printoptions
set_printoptions = np.set_printoptions
get_printoptions = np.get_printoptions
complex64 = np.complex64
complex128 = np.complex128
euler_gamma = np.euler_gamma


def tril_indices_from(arr, k=0):
    """`numpy.tril_indices_from` (from the shape only)."""
    return np.tril_indices(get_aval(asarray(arr)).shape[-2], k, get_aval(asarray(arr)).shape[-1])


def triu_indices_from(arr, k=0):
    """`numpy.triu_indices_from` (from the shape only)."""
    return np.triu_indices(get_aval(asarray(arr)).shape[-2], k, get_aval(asarray(arr)).shape[-1])


def unravel_index(indices, shape):
    """`numpy.unravel_index`: a tuple of coordinate arrays (traced indices work)."""
    idx = asarray(indices)
    if not isinstance(idx, Tracer):
        return np.unravel_index(idx, shape)
    out = []
    for s in reversed(tuple(shape)):
        out.append(_ops.remainder(idx, s))
        idx = _ops.floor_divide(idx, s)
    return tuple(reversed(out))


def ravel_multi_index(multi_index, dims, mode="raise", order="C"):
    """`numpy.ravel_multi_index` (C order; traced indices clip as JAX's mode='clip')."""
    if order != "C":
        raise NotImplementedError("ravel_multi_index: only order='C' is supported")
    if not any(isinstance(i, Tracer) for i in multi_index):
        return np.ravel_multi_index(tuple(np.asarray(i) for i in multi_index), dims, mode=mode)
    flat = 0
    for i, d in zip(multi_index, dims):
        flat = flat * d + _ops.clip(asarray(i), 0, d - 1)
    return flat


# ---------------------------------------------------------------------------------------------
# stacking and splitting
# ---------------------------------------------------------------------------------------------

def atleast_3d(*arys):
    """`numpy.atleast_3d`: (n,) -> (1, n, 1), (m, n) -> (m, n, 1)."""
    outs = []
    for a in arys:
        a = asarray(a)
        s = get_aval(a).shape
        if len(s) == 0:
            a = reshape(a, (1, 1, 1))
        elif len(s) == 1:
            a = reshape(a, (1, s[0], 1))
        elif len(s) == 2:
            a = reshape(a, s + (1,))
        outs.append(a)
    return outs[0] if len(outs) == 1 else outs


def column_stack(tup):
    """`numpy.column_stack`: 1-D arrays become columns; 2-D arrays are stacked as they are."""
    cols = []
    for a in tup:
        a = asarray(a)
        cols.append(reshape(a, (-1, 1)) if get_aval(a).ndim < 2 else a)
    return concatenate(cols, axis=1)


def dstack(tup):
    """`numpy.dstack`: concatenate along the third axis."""
    return concatenate([atleast_3d(a) for a in tup], axis=2)


def row_stack(tup):
    """`numpy.row_stack` (= vstack)."""
    return _shape_ops.vstack(tup)


def _split_along(name, axis, min_ndim):
    def split(ary, indices_or_sections):
        a = asarray(ary)
        if get_aval(a).ndim < min_ndim:
            raise ValueError(f"{name} only works on arrays of {min_ndim} or more dimensions")
        ax = axis if get_aval(a).ndim > 1 or axis == 0 else 0
        return _shape_ops.split(a, indices_or_sections, axis=ax)
    split.__name__ = name
    split.__doc__ = f"`numpy.{name}`: split along axis {axis}."
    return split


vsplit = _split_along("vsplit", 0, 2)
hsplit = _split_along("hsplit", 1, 1)
dsplit = _split_along("dsplit", 2, 3)


def append(arr, values, axis=None):
    """`numpy.append`: a new array with `values` after `arr` (flattened when axis is None)."""
    if axis is None:
        return concatenate([ravel(asarray(arr)), ravel(asarray(values))])
    return concatenate([asarray(arr), asarray(values)], axis=axis)


# ---------------------------------------------------------------------------------------------
# rolls, rotations, grids
# ---------------------------------------------------------------------------------------------

def roll(a, shift, axis=None):
    """`numpy.roll` with static shifts."""
    a = asarray(a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), get_aval(a).shape)
    shifts = shift if isinstance(shift, (tuple, list)) else (shift,)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    if len(axes) == 1 and len(shifts) > 1:
        axes = axes * len(shifts)
    if len(shifts) != len(axes):
        raise ValueError("roll: shift and axis must have the same length")
    for s, ax in zip(shifts, axes):
        s = operator.index(concrete_or_error(s, "roll: shift"))
        ax = operator.index(ax) % get_aval(a).ndim
        n = get_aval(a).shape[ax]
        if n == 0:
            continue
        s %= n
        if s:
            idx_hi = [slice(None)] * get_aval(a).ndim
            idx_lo = [slice(None)] * get_aval(a).ndim
            idx_hi[ax], idx_lo[ax] = slice(n - s, n), slice(0, n - s)
            a = concatenate([a[tuple(idx_hi)], a[tuple(idx_lo)]], axis=ax)
    return a


def rollaxis(a, axis, start=0):
    """`numpy.rollaxis`: move `axis` to before position `start`."""
    a = asarray(a)
    n = get_aval(a).ndim
    axis = operator.index(axis) % n
    start = operator.index(start)
    if start < 0:
        start += n
    if not 0 <= start <= n:
        raise np.exceptions.AxisError(f"start {start} out of range")
    if axis < start:
        start -= 1
    return moveaxis(a, axis, start)


def rot90(m, k=1, axes=(0, 1)):
    """`numpy.rot90`: rotate by 90 degrees `k` times in the plane of `axes`."""
    m = asarray(m)
    a0, a1 = (operator.index(x) % get_aval(m).ndim for x in axes)
    if a0 == a1:
        raise ValueError("rot90: axes must be different")
    k = operator.index(k) % 4
    if k == 0:
        return m
    if k == 2:
        return _shape_ops.flip(_shape_ops.flip(m, a0), a1)
    perm = list(range(get_aval(m).ndim))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return _shape_ops.transpose(_shape_ops.flip(m, a1), perm)
    return _shape_ops.flip(_shape_ops.transpose(m, perm), a1)


def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """`numpy.meshgrid` (returns a list of arrays)."""
    if indexing not in ("xy", "ij"):
        raise ValueError("meshgrid: indexing must be 'xy' or 'ij'")
    xs = [ravel(asarray(x)) for x in xi]
    nd = len(xs)
    shapes = [get_aval(x).shape[0] for x in xs]
    if indexing == "xy" and nd > 1:
        shapes[0], shapes[1] = shapes[1], shapes[0]
    outs = []
    for i, x in enumerate(xs):
        pos = i
        if indexing == "xy" and nd > 1 and i < 2:
            pos = 1 - i
        shape = [1] * nd
        shape[pos] = get_aval(x).shape[0]
        x = reshape(x, tuple(shape))
        outs.append(x if sparse else _shape_ops.broadcast_to(x, tuple(shapes)))
    return outs


class _Concatenator:
    """`np.r_` / `np.c_`: concatenation by index syntax (slices become aranges/linspaces)."""

    def __init__(self, axis, columns):
        self.axis, self.columns = axis, columns

    def __getitem__(self, key):
        items = key if isinstance(key, tuple) else (key,)
        parts = []
        for it in items:
            if isinstance(it, slice):
                start = 0 if it.start is None else it.start
                step = 1 if it.step is None else it.step
                if isinstance(step, complex):
                    parts.append(np.linspace(start, it.stop, int(abs(step))))
                else:
                    parts.append(np.arange(start, it.stop, step))
            elif isinstance(it, str):
                raise NotImplementedError("r_/c_: string directives are not supported")
            else:
                a = asarray(it)
                parts.append(reshape(a, (1,)) if get_aval(a).ndim == 0 else a)
        if self.columns:
            parts = [reshape(p, (-1, 1)) if get_aval(asarray(p)).ndim == 1 else p for p in parts]
            return concatenate(parts, axis=-1)
        return concatenate(parts, axis=self.axis)


r_ = _Concatenator(0, False)
c_ = _Concatenator(-1, True)


def ix_(*args):
    """`numpy.ix_`: open-mesh index arrays for the cross product of 1-D index sequences."""
    n = len(args)
    out = []
    for i, a in enumerate(args):
        a = asarray(a)
        if get_aval(a).ndim != 1:
            raise ValueError("Cross index must be 1 dimensional")
        shape = [1] * n
        shape[i] = get_aval(a).shape[0]
        out.append(reshape(a, tuple(shape)))
    return tuple(out)


def vander(x, N=None, increasing=False):
    """`numpy.vander`: columns are powers of x (decreasing unless `increasing`)."""
    x = asarray(x)
    n = get_aval(x).shape[0] if N is None else N
    powers = np.arange(n) if increasing else np.arange(n - 1, -1, -1)
    return _ops.power(x[:, None], powers[None, :].astype(np.result_type(get_aval(x).dtype,
                                                                        np.int64)))


def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    """`numpy.logspace`."""
    y = _ops.linspace(start, stop, num, endpoint=endpoint, axis=axis)
    out = _ops.power(base, y)
    return out if dtype is None else _ops.astype(out, dtype)


def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """`numpy.geomspace` for positive endpoints."""
    y = _ops.linspace(_ops.log10(start), _ops.log10(stop), num, endpoint=endpoint, axis=axis)
    out = _ops.power(10.0, y)
    return out if dtype is None else _ops.astype(out, dtype)


# ---------------------------------------------------------------------------------------------
# functional put, select, interp
# ---------------------------------------------------------------------------------------------

def put(a, ind, v, mode=None, *, inplace=False):
    """`jax.numpy.put`: a new array with the flat positions `ind` set to `v` (NumPy's `put`
    writes in place, which immutable values cannot do: `inplace=True` is an error, as JAX)."""
    if inplace:
        raise ValueError("put: inplace=True is not supported (arrays are immutable values "
                         "here); use the returned array")
    a = asarray(a)
    flat = ravel(a)
    ind = ravel(asarray(ind))
    n = get_aval(flat).shape[0]
    if mode == "wrap":
        ind = _ops.remainder(ind, n)
    elif mode == "clip":
        ind = _ops.clip(ind, 0, n - 1)
    v = ravel(asarray(v))
    k = get_aval(ind).shape[0]
    if get_aval(v).shape[0] not in (k, 1):
        # NumPy repeats `v` cyclically to the length of `ind`
        v = _shape_ops.tile(v, -(-k // get_aval(v).shape[0]))[:k]
    from ._ops import at
    return reshape(at(flat)[ind].set(v), get_aval(a).shape)


def place(arr, mask, vals, *, inplace=False):
    """`jax.numpy.place` (concrete mask): a new array with `vals` (cycled) placed where `mask`
    is True."""
    if inplace:
        raise ValueError("place: inplace=True is not supported; use the returned array")
    m = np.asarray(concrete_or_error(mask, "place: mask (its True count sets the shape)"),
                   dtype=bool)
    pos = np.flatnonzero(m)
    return put(arr, pos, vals) if pos.size else asarray(arr)


def put_along_axis(arr, indices, values, axis, inplace=False, *, mode=None):
    """`jax.numpy.put_along_axis`: a new array with `values` written at `indices` along
    `axis` (the counterpart of `take_along_axis`)."""
    if inplace:
        raise ValueError("put_along_axis: inplace=True is not supported; use the returned "
                         "array")
    a = asarray(arr)
    idx = asarray(indices)
    nd = get_aval(a).ndim
    if axis is None:
        return reshape(put(a, idx, values), get_aval(a).shape)
    ax = operator.index(axis) % nd
    ishape = get_aval(idx).shape
    n = get_aval(a).shape[ax]
    idx = where(_ops.less(idx, 0), idx + n, idx)
    grids = np.indices(ishape, sparse=True)
    full = tuple(idx if d == ax else np.broadcast_to(grids[d], ishape) for d in range(nd))
    from ._ops import at
    return at(a)[full].set(_shape_ops.broadcast_to(asarray(values), ishape))


def select(condlist, choicelist, default=0):
    """`numpy.select`: the first choice whose condition holds, else `default`."""
    if len(condlist) != len(choicelist):
        raise ValueError("select: list of cases must be same length as list of conditions")
    out = asarray(default)
    for c, v in reversed(list(zip(condlist, choicelist))):
        out = where(c, v, out)
    return out


def interp(x, xp, fp, left=None, right=None, period=None):
    """`numpy.interp`: piecewise-linear interpolation on increasing `xp` (differentiable in
    `x` and `fp`)."""
    if period is not None:
        raise NotImplementedError("interp: period= is not supported")
    from ._sorting import searchsorted
    x, xp, fp = asarray(x), asarray(xp), asarray(fp)
    dt = np.float64                           # NumPy's interp always returns float64
    x, xp, fp = (_ops.astype(v, dt) for v in (x, xp, fp))
    n = get_aval(xp).shape[0]
    if n == 0:
        raise ValueError("interp: array of sample points is empty")
    i = _ops.clip(searchsorted(xp, x, side="right"), 1, max(n - 1, 1))
    x0, x1 = _shape_ops.take(xp, i - 1), _shape_ops.take(xp, i)
    f0, f1 = _shape_ops.take(fp, i - 1), _shape_ops.take(fp, i)
    dx = x1 - x0
    t = where(_ops.equal(dx, 0), 0, (x - x0) / where(_ops.equal(dx, 0), 1, dx))
    y = f0 + t * (f1 - f0) if n > 1 else f0
    lo = fp[0] if left is None else left
    hi = fp[-1] if right is None else right
    y = where(_ops.less(x, xp[0]), lo, y)
    y = where(_ops.greater(x, xp[-1]), hi, y)
    return where(_ops.equal(x, xp[-1]), fp[-1], y) if right is None else y
