"""Shape manipulation and contractions: reshape ... einsum, with NumPy signatures."""
from __future__ import annotations

import builtins

import numpy as np

from .. import lax
from ..core import Tracer, concrete_or_error, get_aval
from ..errors import EmptyAxisIndexError, ShapeError
from ..source_info import where as _where
from ._promote import asarray_of, promote_dtypes, result_type


def _arr(a):
    from ._ops import asarray
    return asarray(a)


def _ax(axis, nd):
    axis = int(axis)
    if not -nd <= axis < builtins.max(nd, 1):
        from numpy.exceptions import AxisError
        raise AxisError(f"axis {axis} is out of bounds for array of dimension {nd}")
    return axis % nd if nd else 0


def reshape(a, shape=None, order="C", *, newshape=None):
    if shape is None:
        shape = newshape
    if order != "C":
        raise NotImplementedError("only order='C' reshapes are supported")
    if isinstance(shape, Tracer):       # a concrete traced shape (a lifted constant)
        shape = concrete_or_error(shape, "a reshape shape")
        if np.ndim(shape) == 0:
            shape = (shape,)
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    return lax.reshape(_arr(a), tuple(int(concrete_or_error(s, "a reshape dimension"))
                                      for s in shape))


def ravel(a, order="C"):
    return reshape(a, (-1,), order)


def transpose(a, axes=None):
    a = _arr(a)
    nd = a.ndim
    perm = tuple(reversed(range(nd))) if axes is None else tuple(_ax(x, nd) for x in axes)
    return lax.transpose(a, perm)


def swapaxes(a, axis1, axis2):
    a = _arr(a)
    perm = list(range(a.ndim))
    i, j = _ax(axis1, a.ndim), _ax(axis2, a.ndim)
    perm[i], perm[j] = perm[j], perm[i]
    return lax.transpose(a, perm)


def moveaxis(a, source, destination):
    a = _arr(a)
    nd = a.ndim
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    src = [_ax(s, nd) for s in src]
    dst = [_ax(d, nd) for d in dst]
    order = [n for n in range(nd) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return lax.transpose(a, order)


def expand_dims(a, axis):
    a = _arr(a)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return lax.expand_dims(a, axes)


def squeeze(a, axis=None):
    a = _arr(a)
    if axis is None:
        dims = tuple(i for i, s in enumerate(a.shape) if s == 1)
    else:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        dims = tuple(_ax(x, a.ndim) for x in axes)
        for d in dims:
            if a.shape[d] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not equal "
                                 f"to one (axis {d} of shape {a.shape})")
    return lax.squeeze(a, dims)


def broadcast_to(array, shape):
    return lax.broadcast_to(_arr(array), tuple(shape) if not isinstance(shape, int) else (shape,))


def broadcast_arrays(*args):
    arrs = [_arr(a) for a in args]
    shape = np.broadcast_shapes(*[a.shape for a in arrs])
    return [lax.broadcast_to(a, shape) for a in arrs]


def atleast_1d(*arys):
    res = [reshape(a, (1,)) if _arr(a).ndim == 0 else _arr(a) for a in arys]
    return res[0] if len(res) == 1 else res


def atleast_2d(*arys):
    out = []
    for a in arys:
        a = _arr(a)
        out.append(reshape(a, (1,) * (2 - a.ndim) + a.shape) if a.ndim < 2 else a)
    return out[0] if len(out) == 1 else out


def concatenate(arrays, axis=0, dtype=None):
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    arrays = list(arrays)
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    arrs = [_arr(a) for a in arrays]
    dt = np.dtype(dtype) if dtype is not None else result_type(*arrs)
    from ._promote import asarray_of
    arrs = [asarray_of(a, dt) for a in arrs]
    nd = arrs[0].ndim
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    for a in arrs:
        if a.ndim != nd:
            raise ValueError(f"all the input arrays must have same number of dimensions; got "
                             f"{', '.join(str(x.shape) for x in arrs)}")
    return lax.concatenate(arrs, _ax(axis, nd))


concat = concatenate


def stack(arrays, axis=0, dtype=None):
    arrs = [_arr(a) for a in arrays]
    if not arrs:
        raise ValueError("need at least one array to stack")
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise ShapeError(f"all input arrays must have the same shape, got {sorted(shapes)}"
                         f"{_where()}")
    ax = _ax(axis, arrs[0].ndim + 1)
    return concatenate([lax.expand_dims(a, (ax,)) for a in arrs], ax, dtype)


def vstack(tup):
    return concatenate([atleast_2d(a) for a in tup], 0)


def hstack(tup):
    arrs = [atleast_1d(a) for a in tup]
    return concatenate(arrs, 0 if arrs[0].ndim == 1 else 1)


def split(ary, indices_or_sections, axis=0):
    a = _arr(ary)
    ax = _ax(axis, a.ndim)
    n = a.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if n % k:
            raise ValueError("array split does not result in an equal division")
        cuts = [i * (n // k) for i in range(1, k)]
    else:
        cuts = [int(i) for i in indices_or_sections]
    bounds = [0] + [builtins.min(builtins.max(c if c >= 0 else c + n, 0), n) for c in cuts] + [n]
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        start = [0] * a.ndim
        limit = list(a.shape)
        start[ax], limit[ax] = lo, builtins.max(lo, hi)
        out.append(lax.slice(a, start, limit))
    return out


def array_split(ary, indices_or_sections, axis=0):
    a = _arr(ary)
    if isinstance(indices_or_sections, (int, np.integer)):
        n, k = a.shape[_ax(axis, a.ndim)], int(indices_or_sections)
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        return split(a, list(np.cumsum(sizes)[:-1]), axis)
    return split(a, indices_or_sections, axis)


def flip(m, axis=None):
    m = _arr(m)
    axes = range(m.ndim) if axis is None else (
        [axis] if isinstance(axis, (int, np.integer)) else axis)
    return lax.rev(m, [_ax(a, m.ndim) for a in axes])


def fliplr(m):
    return flip(m, 1)


def flipud(m):
    return flip(m, 0)


def pad(array, pad_width, mode="constant", **kwargs):
    from ._pad import pad as _pad      # at call time: _pad builds on the whole of tnp
    return _pad(array, pad_width, mode, **kwargs)


pad.__doc__ = """Mirrors `numpy.pad` with every string mode; see `transforms.numpy._pad`."""


def tile(A, reps):
    a = _arr(A)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    nd = builtins.max(a.ndim, len(reps))
    a = reshape(a, (1,) * (nd - a.ndim) + a.shape)
    reps = (1,) * (nd - len(reps)) + reps
    # broadcast to (r0, s0, r1, s1, ...) then merge each pair
    inter = []
    dims = []
    for i, (r, s) in enumerate(zip(reps, a.shape)):
        inter += [r, s]
        dims.append(2 * i + 1)
    out = lax.broadcast_in_dim(a, inter, dims)
    return lax.reshape(out, [r * s for r, s in zip(reps, a.shape)])


def repeat(a, repeats, axis=None):
    a = _arr(a)
    if axis is None:
        a, axis = ravel(a), 0
    ax = _ax(axis, a.ndim)
    if not isinstance(repeats, (int, np.integer)):
        reps = np.asarray(concrete_or_error(repeats, "repeat counts"))
        if reps.ndim == 0:
            repeats = int(reps)
        else:
            idx = np.repeat(np.arange(a.shape[ax]), reps)
            return take(a, idx, axis=ax)
    r = int(repeats)
    shape = list(a.shape)
    inter = shape[:ax + 1] + [r] + shape[ax + 1:]
    dims = list(range(ax + 1)) + list(range(ax + 2, len(inter)))
    out = lax.broadcast_in_dim(a, inter, dims)
    shape[ax] *= r
    return lax.reshape(out, shape)


def _tri_mask(shape, k, lower):
    n, m = shape[-2], shape[-1]
    mask = np.tri(n, m, k, dtype=bool) if lower else ~np.tri(n, m, k - 1, dtype=bool)
    return mask


def tril(m, k=0):
    from ._ops import where, zeros_like
    m = _arr(m)
    return where(np.broadcast_to(_tri_mask(m.shape, k, True), m.shape), m, zeros_like(m))


def triu(m, k=0):
    from ._ops import where, zeros_like
    m = _arr(m)
    return where(np.broadcast_to(_tri_mask(m.shape, k, False), m.shape), m, zeros_like(m))


def diagonal(a, offset=0, axis1=0, axis2=1):
    a = _arr(a)
    a = moveaxis(a, (axis1, axis2), (-2, -1))
    n, m = a.shape[-2], a.shape[-1]
    i = np.arange(builtins.max(0, builtins.min(n, m - offset) if offset >= 0 else builtins.min(n + offset, m)))
    rows, cols = (i, i + offset) if offset >= 0 else (i - offset, i)
    return a[..., rows, cols]


def diag(v, k=0):
    v = _arr(v)
    if v.ndim == 1:
        n = v.shape[0] + builtins.abs(k)
        from ._ops import zeros
        out = zeros((n, n), v.dtype)
        i = np.arange(v.shape[0])
        rows, cols = (i, i + k) if k >= 0 else (i - k, i)
        if isinstance(out, Tracer) or isinstance(v, Tracer):
            from ._ops import at
            return at(out)[rows, cols].set(v)
        return np.diag(v, k)
    return diagonal(v, k)


def trace(a, offset=0, axis1=0, axis2=1):
    from ._ops import sum
    return sum(diagonal(a, offset, axis1, axis2), axis=-1)


# ---------------------------------------------------------------------------------------------
# Indexing helpers as functions
# ---------------------------------------------------------------------------------------------

def _oob_mode(name, a, idx, n, mode, axis, out_size=None):
    """The gather mode for `take`/`take_along_axis` with NumPy's `mode` argument. Eagerly on
    NumPy input (and for mode='raise' with concrete indices) out-of-bounds indices are
    NumPy's IndexError; inside transforms the default is JAX's 'fill'. An empty result
    (`out_size` 0) reads nothing, so its indices are not checked (as NumPy)."""
    if mode not in (None, "raise", "fill", "clip", "wrap"):
        raise ValueError(f"{name}: invalid mode {mode!r}")
    traced = isinstance(a, Tracer) or isinstance(idx, Tracer)
    if mode == "raise" or (mode is None and not traced):
        if isinstance(idx, Tracer):
            concrete = idx.concrete_value()
            if concrete is None:
                raise ValueError(f"{name}: mode='raise' needs concrete indices (a traced index "
                                 "cannot raise); use mode='fill' or 'clip'")
            idx_c = np.asarray(concrete)
        else:
            idx_c = np.asarray(idx)
        bad = (idx_c < -n) | (idx_c >= n)
        if idx_c.size and out_size != 0 and bad.any():
            raise IndexError(f"index {idx_c[bad].flat[0]} is out of bounds for axis {axis} "
                             f"with size {n}")
        return "promise_in_bounds"
    return "fill" if mode is None else mode


def take(a, indices, axis=None, out=None, mode=None, unique_indices=False,
         indices_are_sorted=False, fill_value=None):
    if out is not None:
        raise TypeError("take: the 'out' argument is not supported (arrays are immutable)")
    a = _arr(a)
    if axis is None:
        a, axis = ravel(a), 0
    ax = _ax(axis, a.ndim)
    idx = _arr(indices)
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"take: indices must be integers, got {idx.dtype}")
    moved = moveaxis(a, ax, 0)
    n = a.shape[ax]
    out_size = idx.size * _prod(a.shape[:ax] + a.shape[ax + 1:])
    _check_not_empty_axis("take", n, out_size, ax)
    from ._ops import where, less
    gmode = _oob_mode("take", a, idx, n, mode, ax, out_size)
    if gmode == "wrap":
        from ._ops import remainder
        idx, gmode = remainder(idx, n), "promise_in_bounds"
    if gmode != "clip":          # NumPy's clip mode clamps negative indices to 0
        idx = where(less(idx, 0), idx + n, idx) if not (isinstance(idx, np.ndarray) and
                                                      (idx >= 0).all()) else idx
    out = lax.gather(moved, lax.expand_dims(idx, (idx.ndim,)), mode=gmode,
                     fill_value=fill_value)
    # result: a.shape[:ax] + idx.shape + a.shape[ax+1:]
    k = idx.ndim
    perm = list(range(k, k + ax)) + list(range(k)) + list(range(k + ax, out.ndim))
    return lax.transpose(out, perm)


def _check_not_empty_axis(fn, n, out_size, ax):
    """A non-empty result taken from an axis of size 0 has no element to come from (NumPy's
    IndexError; shapes are static, so this is known at trace time, and a compiled gather
    would have nothing to clamp to). An empty result is fine, as in NumPy."""
    if n == 0 and out_size:
        raise EmptyAxisIndexError(f"{fn}: cannot take a non-empty result ({out_size} "
                                  f"elements) from axis {ax}, which has size 0")


def _prod(shape):
    return int(np.prod(shape, dtype=np.int64))


def take_along_axis(arr, indices, axis, mode=None, fill_value=None):
    a = _arr(arr)
    idx = _arr(indices)
    if axis is None:
        a, axis = ravel(a), 0
        idx = ravel(idx)
    ax = _ax(axis, a.ndim)
    if idx.ndim != a.ndim:
        raise ValueError("take_along_axis: indices and arr must have the same number of dimensions")
    n = a.shape[ax]
    from ._ops import where, less
    gmode = _oob_mode("take_along_axis", a, idx, n, mode, ax)
    if gmode == "wrap":
        from ._ops import remainder
        idx, gmode = remainder(idx, n), "promise_in_bounds"
    idx = where(less(idx, 0), idx + n, idx)
    shape = np.broadcast_shapes(tuple(s if i != ax else 1 for i, s in enumerate(a.shape)),
                                tuple(s if i != ax else 1 for i, s in enumerate(idx.shape)))
    out_shape = tuple(s if i != ax else idx.shape[ax] for i, s in enumerate(shape))
    _check_not_empty_axis("take_along_axis", n, _prod(out_shape), ax)
    comps = []
    for d in range(a.ndim):
        if d == ax:
            comps.append(lax.broadcast_to(lax.convert_element_type(idx, np.int64), out_shape))
        else:
            comps.append(lax.iota(np.int64, out_shape, d) if out_shape[d] > 1 else
                         np.zeros(out_shape, np.int64))
    a_b = lax.broadcast_to(a, tuple(builtins.max(s, o) if i != ax else s for i, (s, o) in
                                    enumerate(zip(a.shape, out_shape))))
    return lax.gather(a_b, stack(comps, axis=-1), mode=gmode, fill_value=fill_value)


# ---------------------------------------------------------------------------------------------
# Contractions
# ---------------------------------------------------------------------------------------------

def _float_or_same(a, b):
    return promote_dtypes(a, b)


def _dg(precision, preferred_element_type):
    """lax.dot_general with the `precision` (validated, no effect) and accumulation type of a
    jnp-style contraction call."""
    def dg(a, b, dn):
        return lax.dot_general(a, b, dn, precision=precision,
                               preferred_element_type=preferred_element_type)
    return dg


def dot(a, b, *, precision=None, preferred_element_type=None):
    a, b = _float_or_same(_arr(a), _arr(b))
    dg = _dg(precision, preferred_element_type)
    if a.ndim == 0 or b.ndim == 0:
        lax.check_precision(precision)
        out = a * b
        return out if preferred_element_type is None else out.astype(preferred_element_type)
    if b.ndim == 1:
        return dg(a, b, (((a.ndim - 1,), (0,)), ((), ())))
    return dg(a, b, (((a.ndim - 1,), (b.ndim - 2,)), ((), ())))


def vdot(a, b):
    """Dot product of the flattened arrays, the first one complex-conjugated (as NumPy)."""
    from ._ops import conjugate
    return dot(conjugate(ravel(a)), ravel(b))


def matmul(a, b, *, precision=None, preferred_element_type=None):
    a, b = _arr(a), _arr(b)
    dg = _dg(precision, preferred_element_type)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: input operand does not have enough dimensions "
                         f"(shapes {a.shape}, {b.shape}){_where()}")
    a, b = _float_or_same(a, b)
    va, vb = a.ndim == 1, b.ndim == 1
    if va:
        a = lax.expand_dims(a, (0,))
    if vb:
        b = lax.expand_dims(b, (1,))
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"matmul: contracting dimensions differ: {a.shape} @ {b.shape} "
                         f"({a.shape[-1]} != {b.shape[-2]}){_where()}")
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    nb = len(batch)
    if a.ndim == 2 and b.ndim == 2:
        out = dg(a, b, (((1,), (0,)), ((), ())))
    elif b.ndim == 2:
        # (..., n, k) @ (k, m): contract directly, no broadcasting of b
        out = dg(a, b, (((a.ndim - 1,), (0,)), ((), ())))
    else:
        a = lax.broadcast_to(a, batch + a.shape[-2:])
        b = lax.broadcast_to(b, batch + b.shape[-2:])
        out = dg(a, b, (((nb + 1,), (nb,)), (tuple(range(nb)), tuple(range(nb)))))
    if va:
        out = lax.squeeze(out, (out.ndim - 2,))
    if vb:
        out = lax.squeeze(out, (out.ndim - 1,))
    return out


def outer(a, b):
    a, b = _float_or_same(ravel(a), ravel(b))
    return lax.dot_general(lax.expand_dims(a, (1,)), lax.expand_dims(b, (0,)),
                           (((1,), (0,)), ((), ())))


def inner(a, b):
    a, b = _float_or_same(_arr(a), _arr(b))
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return lax.dot_general(a, b, (((a.ndim - 1,), (b.ndim - 1,)), ((), ())))


def tensordot(a, b, axes=2, *, precision=None, preferred_element_type=None):
    a, b = _float_or_same(_arr(a), _arr(b))
    if isinstance(axes, (int, np.integer)):
        ax_a = tuple(range(a.ndim - axes, a.ndim))
        ax_b = tuple(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = (ax_a,) if isinstance(ax_a, (int, np.integer)) else tuple(ax_a)
        ax_b = (ax_b,) if isinstance(ax_b, (int, np.integer)) else tuple(ax_b)
    ax_a = tuple(_ax(x, a.ndim) for x in ax_a)
    ax_b = tuple(_ax(x, b.ndim) for x in ax_b)
    return _dg(precision, preferred_element_type)(a, b, ((ax_a, ax_b), ((), ())))


def einsum(subscripts, *operands, optimize=None, precision=None, preferred_element_type=None):
    """Mirrors `numpy.einsum` (both calling forms, as `jax.numpy.einsum`). `optimize` is
    accepted and ignored (contractions run left to right); `precision` is validated and has
    no effect; with `preferred_element_type` the operands are converted to it first, so
    products and sums accumulate in that type. Differentiable; batches under `vmap` and
    compiles under `jit`."""
    from ._einsum import einsum as _einsum
    lax.check_precision(precision)
    if preferred_element_type is not None:
        operands = [asarray_of(o, np.dtype(preferred_element_type)) for o in operands]
    return _einsum(subscripts, *operands)
