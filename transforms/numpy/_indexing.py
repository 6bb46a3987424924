"""NumPy indexing on traced values (`x[idx]`) and functional updates (`x.at[idx].set(v)`).

Basic indices (ints, slices, None, Ellipsis) become `slice`/`rev`/`reshape`; a traced scalar
index becomes `dynamic_slice`; integer arrays become one `gather` following NumPy's placement
rule for advanced indices. Updates with static indices compute NumPy's own index arithmetic on
an array of positions, so every NumPy indexing form is exact, and write with one scatter.
"""
from __future__ import annotations

import numpy as np
from builtins import max as builtins_max

from .. import lax
from ..core import Tracer, get_aval
from ..errors import InvalidIndexError, NonConcreteBooleanIndexError

_SCALAR_INT = (int, np.integer)


def _is_array_index(i):
    if isinstance(i, Tracer):
        return True
    if isinstance(i, (np.ndarray, list)):
        return True
    return False


def _concrete_mask(m, update=False):
    """A boolean index as a NumPy array; a mask only known at run time is an error."""
    if isinstance(m, Tracer):
        v = m.concrete_value()
        if v is None:
            fix = ("x.at[mask].set(v) -> tnp.where(mask, v, x)" if update else
                   "x[mask] -> tnp.where(mask, x, 0), or a reduction such as "
                   "tnp.sum(x, where=mask)")
            raise NonConcreteBooleanIndexError(
                f"boolean indices must be concrete: got {m.aval} under jit/vmap, where the "
                f"result's shape would depend on the data (as in JAX). Use {fix}.")
        return np.asarray(v)
    return np.asarray(m)


def _expand(idx, ndim):
    """Normalise to a tuple without Ellipsis; booleans masks are converted (concrete only)."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    for i in idx:
        if isinstance(i, list):
            i = np.asarray(i)
        if isinstance(i, (np.ndarray, Tracer)) and i.dtype == np.bool_:
            out.extend(np.nonzero(_concrete_mask(i)))
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


def _normalize_int(i, n, axis, clamp=False):
    """A static integer index as a position. Out of bounds: NumPy's IndexError, or (`clamp`,
    inside transforms) the nearest position, as JAX's gathers."""
    i = int(i)
    if not -n <= i < n:
        if not clamp or n == 0:
            raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
        return 0 if i < 0 else n - 1
    return i % n


_GET_MODES = {None: "promise_in_bounds", "promise_in_bounds": "promise_in_bounds",
              "clip": "clip", "fill": "fill", "drop": "fill"}


def _check_mode(mode, modes):
    if mode not in modes:
        raise ValueError(f"invalid out-of-bounds mode {mode!r}; use one of "
                         f"{sorted(m for m in modes if m)}")


def getitem(x, idx, mode=None, fill_value=None):
    """`x[idx]`. Out-of-bounds indices follow JAX inside transforms (`x` traced): gathers
    clamp by default, `mode='fill'` gives `fill_value` (NaN for floats), `mode='clip'` clamps
    (also the gradient). Eagerly on a NumPy array a static out-of-bounds index is NumPy's
    IndexError."""
    from ._ops import asarray
    _check_mode(mode, _GET_MODES)
    x = asarray(x)
    items = _expand(idx, x.ndim)
    if mode in ("fill", "drop"):
        # every integer index goes through the gather, which fills out-of-bounds positions
        items = [np.asarray(i) if isinstance(i, _SCALAR_INT) and not isinstance(i, bool)
                 else i for i in items]
    advanced = any(_is_array_index(i) and (not isinstance(i, Tracer) or i.ndim > 0 or
                                           mode in ("fill", "drop"))
                   for i in items)
    # NumPy's IndexError for a static out-of-bounds index only eagerly on NumPy input and
    # without an explicit mode; inside transforms, JAX's semantics
    numpy_errors = not isinstance(x, Tracer) and mode is None
    if advanced:
        return _advanced_getitem(x, items, _GET_MODES[mode], fill_value, numpy_errors)
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
            k = _normalize_int(i, n, dim, clamp=not numpy_errors)
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
            raise InvalidIndexError(f"invalid index {i!r} of type {type(i).__name__}: indices must be "
                                    "integers, slices, None, Ellipsis or integer/boolean arrays")
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


def _as_index_array(i, n, check=True):
    """Integer index array `i` for an axis of size `n`, negative entries counted from the
    end. Out-of-bounds concrete entries raise NumPy's IndexError when `check` (eager NumPy
    input); otherwise they stay out of bounds for the gather/scatter mode to handle."""
    from ._ops import asarray, where, less
    a = asarray(i)
    if not np.issubdtype(a.dtype, np.integer):
        raise IndexError(f"arrays used as indices must be of integer type, got {a.dtype}")
    if isinstance(a, np.ndarray):
        if check and ((a < -n) | (a >= n)).any() and n > 0:
            bad = a[(a < -n) | (a >= n)].flat[0]
            raise IndexError(f"index {bad} is out of bounds for axis with size {n}")
        return np.where(a < 0, a + n, a).astype(np.int64)
    a = lax.convert_element_type(a, np.int64)
    return where(less(a, 0), a + n, a)


def _advanced_getitem(x, items, mode="promise_in_bounds", fill_value=None,
                      numpy_errors=False):
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
    y = getitem(x, tuple(basic), None if numpy_errors else "promise_in_bounds") if any(b is not slice(None) for b in basic if b is not None) \
        or None in basic else x
    # 2. advanced dims to the front, one gather
    idx = [_as_index_array(a, y.shape[p], check=numpy_errors)
           for a, p in zip(adv_arrays, adv_positions)]
    from ._shape_ops import broadcast_arrays, stack
    idx = broadcast_arrays(*idx)
    bshape = idx[0].shape
    rest = [d for d in range(y.ndim) if d not in adv_positions]
    y = lax.transpose(y, adv_positions + rest)
    gathered = lax.gather(y, stack(idx, axis=-1) if len(idx) > 1 else
                          lax.expand_dims(idx[0], (len(bshape),)), mode=mode,
                          fill_value=fill_value)
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


def _jax_out_of_bounds(run, array, mode, default):
    """`run(mode)` with JAX's out-of-bounds semantics for `.at` (a JAX-only API, so JAX's
    rules hold eagerly too): without a `mode`, an eager NumPy operand first takes NumPy's own
    fast path, and only an out-of-bounds index (NumPy's IndexError) reruns it in `default`
    mode -- "clip" for gets (JAX clamps), "drop" for updates (JAX drops them)."""
    if mode is not None or isinstance(array, Tracer):
        return run(mode)
    try:
        return run(None)
    except IndexError:
        return run(default)


class _IndexUpdateRef:
    """`x.at[idx]`: the JAX update methods, with JAX's out-of-bounds rules also eagerly:
    an out-of-bounds get clamps (`mode='fill'` gives `fill_value`), out-of-bounds updates
    are dropped (`mode='clip'` clamps them instead)."""
    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array, self.index = array, index

    def get(self, *, mode=None, fill_value=None, **kwargs):
        return _jax_out_of_bounds(lambda m: getitem(self.array, self.index, m, fill_value),
                                  self.array, mode, "clip")

    def set(self, values, *, mode=None, **kwargs):
        return self._update(values, "set", mode)

    def add(self, values, *, mode=None, **kwargs):
        return self._update(values, "add", mode)

    def subtract(self, values, *, mode=None, **kwargs):
        from ._ops import negative
        return self._update(negative(values), "add", mode)

    def multiply(self, values, *, mode=None, **kwargs):
        return self._update(values, "multiply", mode)

    mul = multiply

    def divide(self, values, *, mode=None, **kwargs):
        # as JAX: x / (1 at the other positions, the product of the divisors at indexed ones),
        # so an integer array gives a floating-point result (NumPy's true division)
        from ._ops import ones_like, true_divide
        x = _asarray(self.array)
        return true_divide(x, _IndexUpdateRef(ones_like(x), self.index)._update(
            values, "multiply", mode))

    def power(self, values, *, mode=None, **kwargs):
        from ._ops import ones_like, power
        x = _asarray(self.array)
        return power(x, _IndexUpdateRef(ones_like(x), self.index)._update(
            values, "multiply", mode))

    def min(self, values, *, mode=None, **kwargs):
        return self._update(values, "min", mode)

    def max(self, values, *, mode=None, **kwargs):
        return self._update(values, "max", mode)

    def apply(self, func, *, mode=None, **kwargs):
        """`func` (elementwise) applied at the indexed positions, once per time a position
        is indexed (as JAX)."""
        return _jax_out_of_bounds(lambda m: _apply(self.array, self.index, func, m),
                                  self.array, mode, "drop")

    def _update(self, values, op, mode):
        return _jax_out_of_bounds(lambda m: _update(self.array, self.index, values, op, m),
                                  self.array, mode, "drop")


def _asarray(x):
    from ._ops import asarray
    return asarray(x)


def _has_tracer(idx):
    items = idx if isinstance(idx, tuple) else (idx,)
    return any(isinstance(i, Tracer) and i.concrete_value() is None for i in items)


_SET_MODES = (None, "promise_in_bounds", "drop", "fill", "clip")


def _static_positions(shape, idx, clip):
    """Flat positions addressed by the static index `idx` (NumPy's index arithmetic, so every
    indexing form is exact), shaped as `x[idx]`. Out-of-bounds integer indices address the
    position `size` (which a scatter drops), or the nearest element when `clip`.

    Done on an array one larger along every axis: an out-of-bounds index becomes that extra
    position, so NumPy lays the result out as usual, and it is recognised afterwards."""
    size = int(np.prod(shape, dtype=np.int64))
    items = _expand(idx, len(shape))
    padded, new_items, d = tuple(n + 1 for n in shape), [], 0
    for i in items:
        if i is None:
            new_items.append(i)
            continue
        n = shape[d]
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            new_items.append(slice(start, None if stop < 0 else stop, step))
        else:
            if isinstance(i, Tracer):
                i = i.concrete_value()
            a = np.asarray(i)
            if not np.issubdtype(a.dtype, np.integer):
                raise IndexError(f"arrays used as indices must be of integer type, got {a.dtype}")
            a = np.where(a < 0, a + n, a)
            a = np.clip(a, 0, max(n - 1, 0)) if clip and n else np.where((a < 0) | (a >= n), n, a)
            new_items.append(a)
        d += 1
    pos = np.arange(int(np.prod(padded, dtype=np.int64)), dtype=np.int64).reshape(padded)
    pos = np.asarray(pos[tuple(new_items)])
    if size == 0 or pos.size == 0:
        return np.full(pos.shape, size, np.int64)
    coords = np.unravel_index(pos, padded)
    valid = np.ones(pos.shape, bool)
    for c, n in zip(coords, shape):
        valid &= c < n
    flat = np.ravel_multi_index(tuple(np.minimum(c, n - 1) for c, n in zip(coords, shape)),
                                shape)
    return np.where(valid, flat, size).astype(np.int64)


def _scatter_operands(x, idx, mode):
    """`(target, indices, index-batch shape, unique)`: `target` is `x` flattened (static
    index) or `x` (traced index); a scatter of updates shaped `batch + window` at `indices`
    performs the update of `x[idx]`. `unique`: no position is addressed twice (known)."""
    clip = mode == "clip"
    if _has_tracer(idx):
        # a traced boolean mask with a known value is its nonzero() positions (as on NumPy)
        items, fixed = idx if isinstance(idx, tuple) else (idx,), []
        for i in items:
            if isinstance(i, Tracer) and i.dtype == np.bool_:
                fixed.extend(np.nonzero(_concrete_mask(i, update=True)))
            else:
                fixed.append(i)
        idx = tuple(fixed)
    if not _has_tracer(idx):
        if not isinstance(x, Tracer) and mode is None:
            # eagerly on NumPy input, NumPy's own arithmetic (and its IndexError)
            items = idx if isinstance(idx, tuple) else (idx,)
            positions = np.asarray(np.arange(x.size, dtype=np.int64).reshape(x.shape)[items])
        else:
            positions = _static_positions(x.shape, idx, clip)
        inb = positions[positions < x.size]
        unique = np.unique(inb).size == inb.size
        return lax.reshape(x, (-1,)), positions.reshape(positions.shape + (1,)), \
            positions.shape, unique
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
    comps = broadcast_arrays(*[_as_index_array(i, x.shape[d], check=False)
                               for d, i in enumerate(lead)])
    if clip:
        comps = [lax.min(lax.max(c, 0), builtins_max(x.shape[d] - 1, 0))
                 for d, c in enumerate(comps)]
    bshape = comps[0].shape
    return x, stack(comps, axis=-1), bshape, bshape == ()


def _update(x, idx, values, op, mode=None):
    from ._promote import asarray_of
    _check_mode(mode, _SET_MODES)
    x = _asarray(x)
    values = asarray_of(values, x.dtype) if not isinstance(values, Tracer) else (
        lax.convert_element_type(values, x.dtype))
    target, ind, bshape, unique = _scatter_operands(x, idx, mode)
    vals = lax.broadcast_to(values, tuple(bshape) + get_aval(target).shape[ind.shape[-1]:])
    if op == "set":
        out = lax.scatter(target, ind, vals)
    elif op == "add":
        out = lax.scatter_add(target, ind, vals)
    elif op == "multiply":
        out = lax.scatter_mul(target, ind, vals, unique_indices=bool(unique))
    elif op == "min":
        out = lax.scatter_min(target, ind, vals)
    else:
        out = lax.scatter_max(target, ind, vals)
    return lax.reshape(out, x.shape)


def _apply(x, idx, func, mode):
    _check_mode(mode, _SET_MODES)
    x = _asarray(x)
    if not _has_tracer(idx):
        target, ind, _, _ = _scatter_operands(x, idx, mode)
        pos = np.asarray(ind).reshape(-1)
        pos = pos[pos < x.size]
        counts = np.bincount(pos, minlength=x.size) if pos.size else np.zeros(x.size, int)
        y = target
        for r in range(int(counts.max()) if counts.size else 0):
            # positions indexed more than r times get func applied an (r+1)-th time
            at = np.nonzero(counts > r)[0]
            y = lax.scatter(y, at[:, None], func(lax.gather(y, at[:, None])))
        return lax.reshape(y, x.shape)
    target, ind, bshape, _ = _scatter_operands(x, idx, mode)
    nb = int(np.prod(bshape, dtype=np.int64))
    k = get_aval(ind).shape[-1]
    flat_ind = lax.reshape(ind, (nb, k))

    def body(j, y):                    # one index tuple at a time: duplicates apply again
        row = lax.dynamic_slice(flat_ind, [j, np.zeros((), np.int64)], [1, k])
        cur = lax.gather(y, row)
        return lax.scatter(y, row, func(cur))
    y = target
    if nb <= 4:
        for j in range(nb):
            y = body(np.asarray(j, np.int64), y)
    else:
        y = lax.fori_loop(0, nb, body, y)
    return lax.reshape(y, x.shape)
