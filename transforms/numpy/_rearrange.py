"""Rearranging with static positions: `delete`, `insert`, `resize`, `fill_diagonal`,
`diagflat`, `diag_indices_from`, `block`, `trim_zeros`, and the selections `choose` and
`piecewise`.

The positional ones ask NumPy itself where every element goes: NumPy's function is run on an
array of element *codes* (0..N-1 for the input, N.. for the inserted values), and the result is
a gather of the input by those codes. So the index arithmetic is exactly NumPy's, while the data
may be traced: they compile, batch and differentiate (a gather), and only the positions (`obj`,
shapes) must be concrete, as in JAX.
"""
from __future__ import annotations

import numpy as np

from ..core import Tracer, concrete_or_error, get_aval
from . import _ops
from ._ops import asarray, where
from ._shape_ops import broadcast_to, concatenate, diag, ravel, reshape, take


def _gather_codes(sources, codes):
    """The array shaped as `codes` whose element is element `codes[...]` of the concatenated
    flattened `sources`."""
    flat = concatenate([ravel(s) for s in sources]) if len(sources) > 1 else ravel(sources[0])
    codes = np.asarray(codes, np.int64)
    if codes.size == 0:
        return _ops.zeros(codes.shape, get_aval(flat).dtype)
    return reshape(take(flat, ravel(codes)), codes.shape)


def _static(obj, fn):
    if isinstance(obj, slice):
        return obj
    hint = ("; for unique integer indices pass assume_unique_indices=True"
            if fn == "delete" else "")
    return np.asarray(concrete_or_error(obj, f"{fn}: obj (the positions set the result's "
                                             f"shape{hint})"))


def delete(arr, obj, axis=None, *, assume_unique_indices=False):
    """Mirrors `jax.numpy.delete` / `numpy.delete`: `arr` without the entries `obj` (an int,
    slice, integer or boolean array) along `axis` (flattened when None). `obj` must be concrete;
    a traced integer `obj` is accepted with `assume_unique_indices=True` (as JAX: the result
    then has `len(obj)` fewer entries). Differentiable in `arr`; batches and compiles."""
    a = asarray(arr)
    if axis is None:
        a, axis = ravel(a), 0
    shape = get_aval(a).shape
    nd = len(shape)
    if not -nd <= axis < nd:
        raise np.exceptions.AxisError(f"delete: axis {axis} is out of bounds for array of "
                                      f"dimension {nd}")
    axis %= nd
    if assume_unique_indices and isinstance(obj, Tracer) and obj.concrete_value() is None:
        from ._setops import _compact, isin
        n = shape[axis]
        ob = ravel(obj)
        if get_aval(ob).dtype.kind not in "iu":
            raise TypeError("delete: assume_unique_indices=True needs integer indices")
        ob = where(_ops.less(ob, 0), ob + n, ob)
        rng = np.arange(n, dtype=np.int64)
        keep_idx = _compact(rng, isin(rng, ob, invert=True), n - get_aval(ob).shape[0], 0)
        return take(a, keep_idx, axis=axis)
    codes = np.delete(np.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape),
                      _static(obj, "delete"), axis=axis)
    return _gather_codes([a], codes)


def insert(arr, obj, values, axis=None):
    """Mirrors `jax.numpy.insert` / `numpy.insert`: `values` inserted before the positions
    `obj` (int, slice or integer array; must be concrete) along `axis` (flattened when None),
    cast to `arr`'s dtype, broadcast as NumPy does. Differentiable in `arr` and `values`;
    batches and compiles."""
    a = asarray(arr)
    v = _ops.astype(asarray(values), get_aval(a).dtype)
    if axis is None:
        a, axis = ravel(a), 0
    shape, vshape = get_aval(a).shape, get_aval(v).shape
    n, m = int(np.prod(shape, dtype=np.int64)), int(np.prod(vshape, dtype=np.int64))
    # NumPy broadcasts/moves the values array the same way whatever its contents: the codes
    # of the values (n, n+1, ...) land where the values would
    codes = np.insert(np.arange(n).reshape(shape), _static(obj, "insert"),
                      np.arange(n, n + m).reshape(vshape), axis=axis)
    return _gather_codes([a, v], codes)


def resize(a, new_shape):
    """Mirrors `jax.numpy.resize` / `numpy.resize`: the flattened `a` repeated cyclically to
    fill `new_shape` (static). Differentiable; batches and compiles."""
    a = asarray(a)
    shape = get_aval(a).shape
    new_shape = (int(new_shape),) if np.ndim(new_shape) == 0 else tuple(int(s) for s in
                                                                         new_shape)
    if any(s < 0 for s in new_shape):
        raise ValueError(f"resize: all elements of new_shape must be non-negative, got "
                         f"{new_shape}")
    n = int(np.prod(shape, dtype=np.int64))
    if n == 0:
        return _ops.zeros(new_shape, get_aval(a).dtype)
    return _gather_codes([a], np.resize(np.arange(n), new_shape))


def fill_diagonal(a, val, wrap=False, *, inplace=False):
    """Mirrors `jax.numpy.fill_diagonal`: a new array equal to `a` with its main diagonal set
    to `val` (cycled, as NumPy). NumPy's version writes into `a` and returns None; arrays are
    values here, so `inplace=True` is an error (as JAX) and the result is returned. `a` needs
    ndim >= 2 (all dimensions equal when ndim > 2). Differentiable in `a` and `val`; batches
    and compiles."""
    if inplace:
        raise ValueError("fill_diagonal: inplace=True is not supported (arrays are immutable "
                         "values here); use inplace=False and the returned array")
    a = asarray(a)
    shape = get_aval(a).shape
    if len(shape) < 2:
        raise ValueError(f"fill_diagonal: array must be at least 2-d, got shape {shape}")
    v = ravel(_ops.astype(asarray(val), get_aval(a).dtype))
    n, m = int(np.prod(shape, dtype=np.int64)), get_aval(v).shape[0]
    codes = np.arange(n).reshape(shape)
    if m:
        np.fill_diagonal(codes, np.arange(n, n + m), wrap=wrap)
    return _gather_codes([a, v], codes)


def diagflat(v, k=0):
    """Mirrors `jax.numpy.diagflat` / `numpy.diagflat`: the 2-D array with the flattened `v` on
    diagonal `k`. Differentiable; batches and compiles."""
    return diag(ravel(asarray(v)), k)


def diag_indices_from(arr):
    """Mirrors `numpy.diag_indices_from`: the index arrays of the main diagonal of `arr`
    (ndim >= 2, all dimensions equal). Static: uses only the shape (also of traced arrays)."""
    shape = get_aval(asarray(arr)).shape
    if len(shape) < 2:
        raise ValueError("diag_indices_from: input array must be at least 2-d")
    if len(set(shape)) != 1:
        raise ValueError(f"diag_indices_from: all dimensions of input must be of equal "
                         f"length, got shape {shape}")
    return np.diag_indices(shape[0], len(shape))


def _block_depth(x, path="arrays"):
    if isinstance(x, tuple):
        raise TypeError(f"block: {path} is a tuple; only lists can be used to arrange blocks")
    if not isinstance(x, list):
        return 0, get_aval(asarray(x)).ndim
    if not x:
        raise ValueError(f"block: {path} is an empty list")
    info = [_block_depth(e, f"{path}[{i}]") for i, e in enumerate(x)]
    depths = {d for d, _ in info}
    if len(depths) != 1:
        raise ValueError(f"block: list depths are mismatched inside {path} (every leaf must be "
                         f"nested equally deep)")
    return depths.pop() + 1, max(nd for _, nd in info)


def _block_assemble(x, depth, ndim):
    if not isinstance(x, list):
        a = asarray(x)
        nd = get_aval(a).ndim
        return reshape(a, (1,) * (ndim - nd) + get_aval(a).shape) if nd < ndim else a
    return concatenate([_block_assemble(e, depth - 1, ndim) for e in x], axis=-depth)


def block(arrays):
    """Mirrors `jax.numpy.block` / `numpy.block`: assembles nested lists of arrays, the
    innermost lists joined along the last axis, the next ones along the one before, ...
    (arrays are first given leading axes of length 1 up to the result's ndim).
    Differentiable; batches and compiles."""
    depth, nd = _block_depth(arrays)
    return _block_assemble(arrays, depth, max(depth, nd))


def choose(a, choices, out=None, mode="raise"):
    """Mirrors `jax.numpy.choose` / `numpy.choose`: element `choices[a[i]][i]` of the
    broadcast arrays. `mode='wrap'`/`'clip'` compile and batch; the default `'raise'` checks
    the indices, so it needs a concrete `a` (under `jit`/`vmap` pass another mode; as JAX).
    Differentiable in `choices`."""
    if out is not None:
        raise TypeError("choose: the 'out' argument is not supported (arrays are immutable)")
    if mode not in ("raise", "wrap", "clip"):
        raise ValueError(f"choose: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    a = asarray(a)
    if get_aval(a).dtype.kind not in "iub":
        raise TypeError(f"choose: a must be an integer array, got {get_aval(a).dtype}")
    if isinstance(choices, (list, tuple)):
        choices = [asarray(c) for c in choices]
    else:
        c = asarray(choices)
        choices = [c[i] for i in range(get_aval(c).shape[0])]
    n = len(choices)
    if n == 0:
        raise ValueError("choose: choices must not be empty")
    if mode == "raise":
        av = np.asarray(concrete_or_error(a, "choose(mode='raise'): a (the bounds check needs "
                                             "its values; pass mode='wrap' or 'clip')"))
        if av.size and (av.min() < 0 or av.max() >= n):
            raise ValueError(f"choose: invalid entry in choice array (indices must be in "
                             f"[0, {n}))")
    elif mode == "wrap":
        a = _ops.remainder(a, n)
    else:
        a = _ops.clip(a, 0, n - 1)
    out = choices[-1]
    for i in range(n - 2, -1, -1):
        out = where(_ops.equal(a, i), choices[i], out)
    shape = np.broadcast_shapes(get_aval(a).shape, *(get_aval(c).shape for c in choices))
    return broadcast_to(out, shape) if get_aval(out).shape != shape else out


def piecewise(x, condlist, funclist, *args, **kw):
    """Mirrors `jax.numpy.piecewise` / `numpy.piecewise`: `funclist[i](x)` where `condlist[i]`
    holds (later conditions win), and the extra last function (or value) where none holds;
    entries of `funclist` may be constants. Every function is evaluated on the whole of `x`
    and the results selected (as JAX), so it compiles, batches and differentiates; the result
    has `x`'s dtype."""
    x = asarray(x)
    dt = get_aval(x).dtype
    if isinstance(condlist, (bool, np.bool_)) or (not isinstance(condlist, (list, tuple))
                                                   and get_aval(asarray(condlist)).ndim
                                                   == get_aval(x).ndim):
        condlist = [condlist]
    conds = [asarray(c) for c in condlist]
    n = len(conds)
    if len(funclist) not in (n, n + 1):
        raise ValueError(f"piecewise: with {n} condition(s), funclist must have {n} or "
                         f"{n + 1} entries, got {len(funclist)}")

    def value(f):
        r = f(x, *args, **kw) if callable(f) else f
        return broadcast_to(_ops.astype(asarray(r), dt), get_aval(x).shape)

    out = value(funclist[n]) if len(funclist) == n + 1 else _ops.zeros_like(x)
    for c, f in zip(conds, funclist[:n]):
        out = where(c, value(f), out)
    return out


def trim_zeros(filt, trim="fb", axis=None):
    """Mirrors `jax.numpy.trim_zeros` / `numpy.trim_zeros`: `filt` without its leading ('f')
    and/or trailing ('b') zeros, along `axis` (all axes when None: the bounding box of the
    nonzero entries). Eager only: the result's shape depends on the values (a traced `filt`
    raises `ConcretizationTypeError`, as JAX); differentiable where the values are concrete."""
    t = trim.lower()
    if not set(t) <= {"f", "b"}:
        raise ValueError(f"trim_zeros: trim must be a combination of 'f' and 'b', got {trim!r}")
    a = asarray(filt)
    nz = np.asarray(concrete_or_error(a, "trim_zeros: filt (the result's shape depends on "
                                         "its values)")) != 0
    nd = nz.ndim
    axes = range(nd) if axis is None else [ax % nd for ax in np.atleast_1d(axis)]
    index = [slice(None)] * nd
    for ax in axes:
        hit = np.flatnonzero(nz.any(axis=tuple(d for d in range(nd) if d != ax)))
        if hit.size == 0:
            index[ax] = slice(0, 0)
            continue
        lo = hit[0] if "f" in t else 0
        hi = hit[-1] + 1 if "b" in t else nz.shape[ax]
        index[ax] = slice(int(lo), int(hi))
    return a[tuple(index)]

