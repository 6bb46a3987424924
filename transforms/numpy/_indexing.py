"""NumPy indexing on traced values (`x[idx]`) and functional updates (`x.at[idx].set(v)`).

Basic indices (ints, slices, None, Ellipsis) become `slice`/`rev`/`reshape`; a traced scalar
index becomes `dynamic_slice`; integer arrays become one `gather` following NumPy's placement
rule for advanced indices. Updates with static indices compute NumPy's own index arithmetic on
an array of positions, so every NumPy indexing form is exact, and write with one scatter.
"""
from __future__ import annotations

import numpy as np

from .. import lax
from ..core import Tracer, get_aval
from ..errors import ConcretizationTypeError

_SCALAR_INT = (int, np.integer)


def _is_array_index(i):
    if isinstance(i, Tracer):
        return True
    if isinstance(i, (np.ndarray, list)):
        return True
    return False


def _expand(idx, ndim):
    """Normalise to a tuple without Ellipsis; booleans masks are converted (concrete only)."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    for i in idx:
        if isinstance(i, list):
            i = np.asarray(i)
        if isinstance(i, (np.ndarray, Tracer)) and i.dtype == np.bool_:
            if isinstance(i, Tracer) and i.concrete_value() is None:
                raise ConcretizationTypeError(
                    "boolean-mask indexing gives an array whose shape depends on the data; it "
                    "is not allowed under jit/vmap (as in JAX). Use tnp.where(mask, x, 0).")
            out.extend(np.nonzero(np.asarray(i.concrete_value() if isinstance(i, Tracer) else i)))
            continue
        out.append(i)
    n_real = sum(1 for i in out if i is not None and i is not Ellipsis)
    if sum(1 for i in out if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_real > ndim:
        raise IndexError(f"too many indices for array: array is {ndim}-dimensional, but "
                         f"{n_real} were indexed")
    if Ellipsis in [i for i in out if not isinstance(i, (np.ndarray, Tracer))]:
        k = next(j for j, i in enumerate(out) if i is Ellipsis)
        out = out[:k] + [slice(None)] * (ndim - n_real) + out[k + 1:]
    else:
        out = out + [slice(None)] * (ndim - n_real)
    return out


def _normalize_int(i, n, axis):
    i = int(i)
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
    return i % n


def getitem(x, idx):
    from ._ops import asarray
    x = asarray(x)
    items = _expand(idx, x.ndim)
    advanced = any(_is_array_index(i) and (not isinstance(i, Tracer) or i.ndim > 0)
                   for i in items)
    if advanced:
        return _advanced_getitem(x, items)
    # basic indexing: walk the dimensions
    out = x
    dim = 0            # current dimension in `out`
    dyn = []
    starts, limits, strides, revs = [], [], [], []
    for i in items:
        if i is None:
            continue
        n = out.shape[dim] if dim < out.ndim else 0
        if isinstance(i, Tracer):                 # traced scalar integer
            dyn.append((dim, i))
            starts.append(0); limits.append(n); strides.append(1)
        elif isinstance(i, _SCALAR_INT):
            k = _normalize_int(i, n, dim)
            starts.append(k); limits.append(k + 1); strides.append(1)
        elif isinstance(i, slice):
            s, e, st = i.indices(n)
            if st > 0:
                starts.append(s); limits.append(max(s, e)); strides.append(st)
            else:
                # negative step: reverse, then slice forward
                cnt = len(range(s, e, st))
                revs.append(dim)
                rs = n - 1 - s
                starts.append(rs); limits.append(rs + (cnt - 1) * (-st) + 1 if cnt else rs)
                strides.append(-st)
        else:
            raise IndexError(f"invalid index {i!r} of type {type(i).__name__}")
        dim += 1
    if revs:
        out = lax.rev(out, revs)
    out = lax.slice(out, starts, limits, strides)
    for d, i in dyn:
        out = _dynamic_index(out, d, i)
    # ints drop their (now size-1) axis and None inserts one; order is preserved, so one
    # reshape does both
    final, d = [], 0
    for item in items:
        if item is None:
            final.append(1)
            continue
        if isinstance(item, slice):
            final.append(out.shape[d])
        d += 1
    return lax.reshape(out, final)


def _dynamic_index(x, dim, i):
    i = lax.convert_element_type(i, np.int64) if i.dtype != np.int64 else i
    # (dynamic_slice counts a negative start from the end itself, once)
    starts = [np.zeros((), np.int64)] * x.ndim
    starts[dim] = i
    sizes = list(x.shape)
    sizes[dim] = 1
    return lax.dynamic_slice(x, starts, sizes)


def _as_index_array(i, n):
    from ._ops import asarray, where, less
    a = asarray(i)
    if not np.issubdtype(a.dtype, np.integer):
        raise IndexError(f"arrays used as indices must be of integer type, got {a.dtype}")
    if isinstance(a, np.ndarray):
        if ((a < -n) | (a >= n)).any() and n > 0:
            bad = a[(a < -n) | (a >= n)].flat[0]
            raise IndexError(f"index {bad} is out of bounds for axis with size {n}")
        return np.where(a < 0, a + n, a).astype(np.int64)
    a = lax.convert_element_type(a, np.int64)
    return where(less(a, 0), a + n, a)


def _advanced_getitem(x, items):
    # 1. basic part: apply slices / None, keep advanced dims in place (ints count as advanced)
    basic, adv_positions, adv_arrays = [], [], []
    out_dim = 0
    for i in items:
        if i is None:
            basic.append(None)
            out_dim += 1
        elif isinstance(i, slice):
            basic.append(i)
            out_dim += 1
        else:
            basic.append(slice(None))
            adv_positions.append(out_dim)
            adv_arrays.append(i)
            out_dim += 1
    y = getitem(x, tuple(basic)) if any(b is not slice(None) for b in basic if b is not None) \
        or None in basic else x
    # 2. advanced dims to the front, one gather
    idx = [_as_index_array(a, y.shape[p]) for a, p in zip(adv_arrays, adv_positions)]
    from ._shape_ops import broadcast_arrays, stack
    idx = broadcast_arrays(*idx)
    bshape = idx[0].shape
    rest = [d for d in range(y.ndim) if d not in adv_positions]
    y = lax.transpose(y, adv_positions + rest)
    gathered = lax.gather(y, stack(idx, axis=-1) if len(idx) > 1 else
                          lax.expand_dims(idx[0], (len(bshape),)))
    # 3. NumPy's rule: adjacent advanced indices keep their place, otherwise go first
    adjacent = adv_positions == list(range(adv_positions[0], adv_positions[0] + len(adv_positions)))
    if adjacent and adv_positions[0] > 0:
        nb = len(bshape)
        first = adv_positions[0]
        perm = list(range(nb, nb + first)) + list(range(nb)) + list(range(nb + first, gathered.ndim))
        gathered = lax.transpose(gathered, perm)
    return gathered


# ---------------------------------------------------------------------------------------------
# .at[...] functional updates
# ---------------------------------------------------------------------------------------------

class _IndexUpdateHelper:
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, idx):
        return _IndexUpdateRef(self.array, idx)


class _IndexUpdateRef:
    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array, self.index = array, index

    def get(self, **kwargs):
        return getitem(self.array, self.index)

    def set(self, values, **kwargs):
        return _update(self.array, self.index, values, "set")

    def add(self, values, **kwargs):
        return _update(self.array, self.index, values, "add")

    def subtract(self, values, **kwargs):
        from ._ops import negative
        return _update(self.array, self.index, negative(values), "add")

    def multiply(self, values, **kwargs):
        return _update(self.array, self.index, values, "multiply")

    mul = multiply

    def divide(self, values, **kwargs):
        from ._ops import reciprocal
        return _update(self.array, self.index, reciprocal(values), "multiply")

    def min(self, values, **kwargs):
        from ._ops import minimum
        return self.set(minimum(self.get(), values))

    def max(self, values, **kwargs):
        from ._ops import maximum
        return self.set(maximum(self.get(), values))


def _has_tracer(idx):
    items = idx if isinstance(idx, tuple) else (idx,)
    return any(isinstance(i, Tracer) and i.concrete_value() is None for i in items)


def _update(x, idx, values, mode):
    from ._ops import asarray
    from ._promote import asarray_of
    x = asarray(x)
    values = asarray_of(values, x.dtype) if not isinstance(values, Tracer) else (
        lax.convert_element_type(values, x.dtype))
    if not _has_tracer(idx):
        # static index: NumPy computes which flat positions are addressed
        items = idx if isinstance(idx, tuple) else (idx,)
        items = tuple(i.concrete_value() if isinstance(i, Tracer) else i for i in items)
        positions = np.arange(x.size, dtype=np.int64).reshape(x.shape)[items]
        positions = np.asarray(positions)
        flat = lax.reshape(x, (-1,))
        vals = lax.broadcast_to(values, positions.shape)
        ind = positions.reshape(positions.shape + (1,))
    else:
        # traced index: integer (array) indices on leading axes, full slices after them
        items = list(idx) if isinstance(idx, tuple) else [idx]
        lead = []
        for i in items:
            if isinstance(i, slice) and i == slice(None):
                break
            if isinstance(i, (Tracer, np.ndarray, list, int, np.integer)):
                lead.append(i)
            else:
                raise NotImplementedError(
                    "x.at[idx] with traced indices supports integer indices on leading axes "
                    f"followed by ':' slices; got {idx!r}")
        if any(not (isinstance(i, slice) and i == slice(None)) for i in items[len(lead):]):
            raise NotImplementedError(
                "x.at[idx] with traced indices supports integer indices on leading axes "
                "followed by ':' slices")
        from ._shape_ops import broadcast_arrays, stack
        comps = broadcast_arrays(*[_as_index_array(i, x.shape[d]) for d, i in enumerate(lead)])
        bshape = comps[0].shape
        ind = stack(comps, axis=-1)
        flat = x
        vals = lax.broadcast_to(values, bshape + x.shape[len(lead):])
    if mode == "set":
        out = lax.scatter(flat, ind, vals)
    elif mode == "add":
        out = lax.scatter_add(flat, ind, vals)
    else:
        out = lax.scatter_mul(flat, ind, vals)
    return lax.reshape(out, x.shape)
