"""Shape primitives: broadcast_in_dim, reshape, transpose, squeeze, concatenate, pad, slice,
dynamic_slice, dynamic_update_slice, rev, iota. All are linear; each has its transpose here."""
from __future__ import annotations

import numpy as np

from ..core import Primitive, ShapedArray, get_aval
from ..errors import ShapeError
from ..interpreters import batching as B
from ..interpreters.jvp import deflinear
from ..interpreters.partial_eval import weak_through
from ..source_info import where
from ._util import as_array, is_undefined

# ---------------------------------------------------------------------------------------------
# broadcast_in_dim
# ---------------------------------------------------------------------------------------------

broadcast_in_dim_p = Primitive("broadcast_in_dim")


@broadcast_in_dim_p.def_impl
def _broadcast_in_dim_impl(x, *, shape, broadcast_dimensions):
    x = np.asarray(x)
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape)


@broadcast_in_dim_p.def_abstract_eval
def _broadcast_in_dim_abstract(x, *, shape, broadcast_dimensions):
    if len(broadcast_dimensions) != x.ndim:
        raise ShapeError(f"broadcast_in_dim: operand rank {x.ndim} != len{broadcast_dimensions}")
    for i, d in enumerate(broadcast_dimensions):
        if x.shape[i] not in (1, shape[d]):
            raise ShapeError(f"cannot broadcast shape {x.shape} to {shape}{where()}")
    return ShapedArray(shape, x.dtype)


@weak_through(0)
def broadcast_in_dim(x, shape, broadcast_dimensions):
    x = as_array(x)
    shape = tuple(int(s) for s in shape)
    if get_aval(x).shape == shape and tuple(broadcast_dimensions) == tuple(range(len(shape))):
        return x
    return broadcast_in_dim_p.bind(x, shape=shape, broadcast_dimensions=tuple(broadcast_dimensions))


@weak_through(0)
def broadcast_to(x, shape):
    """NumPy-style broadcast (trailing dimensions aligned)."""
    x = as_array(x)
    a = get_aval(x)
    shape = tuple(shape)
    if a.shape == shape:
        return x
    if len(shape) < a.ndim:
        raise ShapeError(f"cannot broadcast shape {a.shape} to {shape}{where()}")
    dims = tuple(range(len(shape) - a.ndim, len(shape)))
    for s, d in zip(a.shape, dims):
        if s not in (1, shape[d]):
            raise ShapeError(f"cannot broadcast shape {a.shape} to {shape}{where()}")
    return broadcast_in_dim(x, shape, dims)


deflinear(broadcast_in_dim_p)


@broadcast_in_dim_p.def_transpose
def _broadcast_in_dim_transpose(ct, x, *, shape, broadcast_dimensions):
    from .reductions import reduce_sum
    in_shape = x.aval.shape
    new_dims = [d for d in range(len(shape)) if d not in broadcast_dimensions]
    expanded = [d for i, d in enumerate(broadcast_dimensions) if in_shape[i] == 1 and shape[d] != 1]
    summed = reduce_sum(ct, tuple(sorted(new_dims + expanded))) if new_dims or expanded else ct
    return [reshape(summed, in_shape)]


@broadcast_in_dim_p.def_batch
def _broadcast_in_dim_batch(args, dims, *, shape, broadcast_dimensions):
    # the batch axis goes right after the output position of the operand axis before it, so
    # broadcast_dimensions stays increasing and nothing moves
    (x,), (d,) = args, dims
    bdims = broadcast_dimensions
    o = bdims[d - 1] + 1 if d > 0 else 0
    new_bdims = tuple(bdims[:d]) + (o,) + tuple(b + 1 for b in bdims[d:])
    new_shape = tuple(shape[:o]) + (get_aval(x).shape[d],) + tuple(shape[o:])
    return broadcast_in_dim_p.bind(x, shape=new_shape, broadcast_dimensions=new_bdims), o


def full(shape, fill_value, dtype=None):
    fill = np.asarray(fill_value, dtype=dtype) if not hasattr(fill_value, "aval") else fill_value
    if dtype is not None and get_aval(fill).dtype != np.dtype(dtype):
        from .elementwise import convert_element_type
        fill = convert_element_type(fill, dtype)
    return broadcast_in_dim(fill, tuple(shape), ())


# ---------------------------------------------------------------------------------------------
# reshape, transpose, squeeze, expand_dims
# ---------------------------------------------------------------------------------------------

reshape_p = Primitive("reshape")
reshape_p.def_impl(lambda x, *, new_sizes: np.reshape(x, new_sizes))


@reshape_p.def_abstract_eval
def _reshape_abstract(x, *, new_sizes):
    if int(np.prod(new_sizes, dtype=np.int64)) != x.size:
        raise ShapeError(f"cannot reshape array of shape {x.shape} (size {x.size}) into shape "
                         f"{new_sizes}{where()}")
    return ShapedArray(new_sizes, x.dtype)


@weak_through(0)
def reshape(x, new_sizes, dimensions=None):
    x = as_array(x)
    if dimensions is not None and tuple(dimensions) != tuple(range(get_aval(x).ndim)):
        x = transpose(x, tuple(int(d) for d in dimensions))  # as jax.lax.reshape
    a = get_aval(x)
    new_sizes = tuple(int(s) for s in new_sizes)
    if -1 in new_sizes:
        known = int(np.prod([s for s in new_sizes if s != -1], dtype=np.int64))
        if new_sizes.count(-1) > 1 or known == 0 or a.size % known:
            raise ShapeError(f"cannot reshape array of shape {a.shape} into shape {new_sizes}"
                             f"{where()}")
        new_sizes = tuple(a.size // known if s == -1 else s for s in new_sizes)
    if a.shape == new_sizes:
        return x
    return reshape_p.bind(x, new_sizes=new_sizes)


deflinear(reshape_p, lambda ct, x, *, new_sizes: [reshape(ct, x.aval.shape)])


@reshape_p.def_batch
def _reshape_batch(args, dims, *, new_sizes):
    (x,), (d,) = args, dims
    x = B.moveaxis(x, d, 0)
    return reshape_p.bind(x, new_sizes=(get_aval(x).shape[0],) + tuple(new_sizes)), 0


transpose_p = Primitive("transpose")
transpose_p.def_impl(lambda x, *, permutation: np.transpose(x, permutation))


@transpose_p.def_abstract_eval
def _transpose_abstract(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise ValueError(f"transpose permutation {permutation} does not match rank {x.ndim}")
    return ShapedArray(tuple(x.shape[p] for p in permutation), x.dtype)


@weak_through(0)
def transpose(x, permutation):
    x = as_array(x)
    permutation = tuple(int(p) for p in permutation)
    if permutation == tuple(range(len(permutation))):
        return x
    return transpose_p.bind(x, permutation=permutation)


deflinear(transpose_p,
          lambda ct, x, *, permutation: [transpose(ct, tuple(np.argsort(permutation)))])


@transpose_p.def_batch
def _transpose_batch(args, dims, *, permutation):
    (x,), (d,) = args, dims
    perm = [p + (p >= d) for p in permutation]
    perm.insert(d, d)                      # the batch axis stays where it is
    return transpose_p.bind(x, permutation=tuple(perm)), d


squeeze_p = Primitive("squeeze")
squeeze_p.def_impl(lambda x, *, dimensions: np.squeeze(x, dimensions))


@squeeze_p.def_abstract_eval
def _squeeze_abstract(x, *, dimensions):
    for d in dimensions:
        if x.shape[d] != 1:
            raise ShapeError(f"cannot squeeze axis {d} of size {x.shape[d]} (shape {x.shape})")
    return ShapedArray(tuple(s for i, s in enumerate(x.shape) if i not in dimensions), x.dtype)


@weak_through(0)
def squeeze(x, dimensions):
    x = as_array(x)
    nd = get_aval(x).ndim
    dims = tuple(sorted(int(d) % nd for d in dimensions))
    if not dims:
        return x
    return squeeze_p.bind(x, dimensions=dims)


deflinear(squeeze_p, lambda ct, x, *, dimensions: [reshape(ct, x.aval.shape)])


@squeeze_p.def_batch
def _squeeze_batch(args, dims, *, dimensions):
    (x,), (d,) = args, dims
    new = tuple(k + (k >= d) for k in dimensions)
    return squeeze_p.bind(x, dimensions=new), d - sum(k < d for k in dimensions)


@weak_through(0)
def expand_dims(x, dimensions):
    x = as_array(x)
    a = get_aval(x)
    nd = a.ndim + len(dimensions)
    dims = sorted(int(d) % nd for d in dimensions)
    shape = list(a.shape)
    for d in dims:
        shape.insert(d, 1)
    return reshape(x, shape)


# ---------------------------------------------------------------------------------------------
# concatenate
# ---------------------------------------------------------------------------------------------

concatenate_p = Primitive("concatenate")
concatenate_p.def_impl(lambda *xs, dimension: np.concatenate(xs, axis=dimension))


@concatenate_p.def_abstract_eval
def _concatenate_abstract(*xs, dimension):
    s0 = list(xs[0].shape)
    for x in xs[1:]:
        s = list(x.shape)
        if len(s) != len(s0) or any(a != b for i, (a, b) in enumerate(zip(s, s0)) if i != dimension):
            raise ShapeError(f"concatenate: shapes {', '.join(str(x.shape) for x in xs)} differ "
                             f"outside axis {dimension}{where()}")
        if x.dtype != xs[0].dtype:
            raise TypeError(f"concatenate: dtypes differ ({xs[0].dtype}, {x.dtype})")
    s0[dimension] = sum(x.shape[dimension] for x in xs)
    return ShapedArray(s0, xs[0].dtype)


@weak_through(0)
def concatenate(xs, dimension):
    xs = [as_array(x) for x in xs]
    if len(xs) == 1:
        return xs[0]
    return concatenate_p.bind(*xs, dimension=int(dimension))


deflinear(concatenate_p)


@concatenate_p.def_transpose
def _concatenate_transpose(ct, *xs, dimension):
    out, start = [], 0
    shape = get_aval(ct).shape
    for x in xs:
        a = x.aval if is_undefined(x) else get_aval(x)
        size = a.shape[dimension]
        if is_undefined(x):
            starts = [0] * len(shape)
            limits = list(shape)
            starts[dimension], limits[dimension] = start, start + size
            out.append(slice(ct, starts, limits))
        else:
            out.append(None)
        start += size
    return out


@concatenate_p.def_batch
def _concatenate_batch(args, dims, *, dimension):
    bd = next(d for d in dims if d is not None)
    size = B.batch_size(args, dims)
    xs = [x if d == bd else B.move_dim(x, d, bd, size) for x, d in zip(args, dims)]
    return concatenate_p.bind(*xs, dimension=dimension + (dimension >= bd)), bd


# ---------------------------------------------------------------------------------------------
# pad (low/high may be negative; interior padding between elements)
# ---------------------------------------------------------------------------------------------

pad_p = Primitive("pad")


@pad_p.def_impl
def _pad_impl(x, padding_value, *, padding_config):
    x = np.asarray(x)
    # interior padding first, then crop/pad the edges
    shape = [s + (s - 1) * max(i, 0) if s > 0 else 0 for s, (_, _, i) in zip(x.shape, padding_config)]
    if any(i for _, _, i in padding_config):
        y = np.full(shape, padding_value, dtype=x.dtype)
        y[tuple(np.s_[::i + 1] for _, _, i in padding_config)] = x
    else:
        y = x
    pads = [(max(lo, 0), max(hi, 0)) for lo, hi, _ in padding_config]
    if any(p != (0, 0) for p in pads):
        y = np.pad(y, pads, constant_values=padding_value)
    crops = tuple(np.s_[-min(lo, 0):y.shape[d] - (-min(hi, 0))]
                  for d, (lo, hi, _) in enumerate(padding_config))
    return np.asarray(y[crops], order="C")      # (ascontiguousarray makes 0-d arrays 1-d)


@pad_p.def_abstract_eval
def _pad_abstract(x, padding_value, *, padding_config):
    if len(padding_config) != x.ndim:
        raise ValueError(f"pad: padding config has {len(padding_config)} entries for rank {x.ndim}")
    shape = []
    for s, (lo, hi, interior) in zip(x.shape, padding_config):
        if interior < 0:
            raise ValueError("pad: interior padding must be non-negative")
        n = lo + hi + s + max(s - 1, 0) * interior
        if n < 0:
            raise ValueError(f"pad: negative resulting dimension for {padding_config}")
        shape.append(n)
    return ShapedArray(shape, x.dtype)


@weak_through(0, 1)
def pad(x, padding_value, padding_config):
    x = as_array(x)
    padding_value = as_array(padding_value, get_aval(x).dtype) \
        if not hasattr(padding_value, "aval") else padding_value
    cfg = tuple((int(lo), int(hi), int(i)) for lo, hi, i in padding_config)
    return pad_p.bind(x, padding_value, padding_config=cfg)


deflinear(pad_p)


@pad_p.def_transpose
def _pad_transpose(ct, x, v, *, padding_config):
    from .reductions import reduce_sum
    from .elementwise import sub
    ct_x = ct_v = None
    if is_undefined(x):
        unpadded = pad(ct, 0, [(-lo, -hi, 0) for lo, hi, _ in padding_config])
        shape = get_aval(unpadded).shape
        ct_x = slice(unpadded, [0] * len(shape), shape, [i + 1 for _, _, i in padding_config])
    if is_undefined(v):
        total = reduce_sum(ct, tuple(range(get_aval(ct).ndim)))
        ct_v = total if ct_x is None else sub(total, reduce_sum(ct_x, tuple(range(len(padding_config)))))
    return [ct_x, ct_v]


@pad_p.def_batch
def _pad_batch(args, dims, *, padding_config):
    (x, v), (dx, dv) = args, dims
    if dv is None:
        cfg = list(padding_config)
        cfg.insert(dx, (0, 0, 0))
        return pad_p.bind(x, v, padding_config=tuple(cfg)), dx
    # a per-example padding value: pad with zeros, then select the padding positions
    from .elementwise import select_n
    size = B.batch_size(args, dims)
    xa = get_aval(x)
    x_shape = xa.shape if dx is None else xa.shape[:dx] + xa.shape[dx + 1:]
    x = B.bdim_at_front(x, dx, size)
    padded = pad_p.bind(x, np.zeros((), xa.dtype), padding_config=((0, 0, 0),) + padding_config)
    out_shape = get_aval(padded).shape
    mask = pad(full(x_shape, True, np.bool_), np.asarray(False), padding_config)
    mask = broadcast_in_dim(mask, out_shape, tuple(range(1, len(out_shape))))
    v = broadcast_in_dim(B.moveaxis(v, dv, 0), out_shape, (0,))
    return select_n(mask, v, padded), 0


# ---------------------------------------------------------------------------------------------
# slice, dynamic_slice, dynamic_update_slice, rev
# ---------------------------------------------------------------------------------------------

slice_p = Primitive("slice")


@slice_p.def_impl
def _slice_impl(x, *, start_indices, limit_indices, strides):
    strides = strides or (1,) * len(start_indices)
    return np.asarray(x)[tuple(np.s_[s:l:st] for s, l, st in zip(start_indices, limit_indices,
                                                                  strides))]


@slice_p.def_abstract_eval
def _slice_abstract(x, *, start_indices, limit_indices, strides):
    strides = strides or (1,) * len(start_indices)
    shape = []
    for d, (s, l, st) in enumerate(zip(start_indices, limit_indices, strides)):
        if not 0 <= s <= l <= x.shape[d] or st < 1:
            raise ValueError(f"slice [{s}:{l}:{st}] out of bounds for axis {d} of shape {x.shape}")
        shape.append(max(0, -(-(l - s) // st)))
    return ShapedArray(shape, x.dtype)


@weak_through(0)
def slice(x, start_indices, limit_indices, strides=None):  # noqa: A001 - lax name
    x = as_array(x)
    start = tuple(int(s) for s in start_indices)
    limit = tuple(int(s) for s in limit_indices)
    strides = None if strides is None or all(s == 1 for s in strides) else tuple(int(s) for s in strides)
    if strides is None and all(s == 0 for s in start) and limit == get_aval(x).shape:
        return x
    return slice_p.bind(x, start_indices=start, limit_indices=limit, strides=strides)


deflinear(slice_p)


@slice_p.def_transpose
def _slice_transpose(ct, x, *, start_indices, limit_indices, strides):
    shape = x.aval.shape
    strides = strides or (1,) * len(shape)
    out_shape = get_aval(ct).shape
    cfg = []
    for n, s, st, m in zip(shape, start_indices, strides, out_shape):
        used = s + (m - 1) * st + 1 if m else s
        cfg.append((s, n - used, st - 1) if m else (s, n - s, 0))
    zero = np.zeros((), dtype=x.aval.dtype)
    if any(m == 0 for m in out_shape):
        from .elementwise import zeros_like_aval
        return [zeros_like_aval(x.aval)]
    return [pad(ct, zero, cfg)]


@slice_p.def_batch
def _slice_batch(args, dims, *, start_indices, limit_indices, strides):
    (x,), (d,) = args, dims
    n = get_aval(x).shape[d]
    start, limit = list(start_indices), list(limit_indices)
    start.insert(d, 0)
    limit.insert(d, n)
    if strides is not None:
        strides = list(strides)
        strides.insert(d, 1)
        strides = tuple(strides)
    return slice_p.bind(x, start_indices=tuple(start), limit_indices=tuple(limit),
                        strides=strides), d


def _clamp_starts(starts, shape, sizes):
    """JAX's start indices: a negative start counts from the end (once), then the window is
    clamped into bounds. dynamic_slice / dynamic_update_slice, their batching rules and their
    Numba lowerings all apply exactly this."""
    out = []
    for s, n, k in zip(starts, shape, sizes):
        s = int(s)
        s = s + n if s < 0 else s
        out.append(min(max(s, 0), n - k))
    return out


dynamic_slice_p = Primitive("dynamic_slice")


@dynamic_slice_p.def_impl
def _dynamic_slice_impl(x, *idx, slice_sizes):
    x = np.asarray(x)
    st = _clamp_starts(idx, x.shape, slice_sizes)
    return x[tuple(np.s_[s:s + k] for s, k in zip(st, slice_sizes))]


@dynamic_slice_p.def_abstract_eval
def _dynamic_slice_abstract(x, *idx, slice_sizes):
    if len(idx) != x.ndim or len(slice_sizes) != x.ndim:
        raise ValueError(f"dynamic_slice needs {x.ndim} start indices and slice sizes")
    if any(k > n or k < 0 for k, n in zip(slice_sizes, x.shape)):
        raise ShapeError(f"dynamic_slice sizes {slice_sizes} exceed operand shape {x.shape}")
    return ShapedArray(slice_sizes, x.dtype)


@weak_through(0)
def dynamic_slice(x, start_indices, slice_sizes):
    """Slice of size `slice_sizes` at traced `start_indices`: a negative start counts from the
    end, then the window is clamped into bounds (as JAX)."""
    idx = [as_array(i) for i in start_indices]
    return dynamic_slice_p.bind(as_array(x), *idx, slice_sizes=tuple(int(s) for s in slice_sizes))


deflinear(dynamic_slice_p, linear_argnums=(0,))


@dynamic_slice_p.def_transpose
def _dynamic_slice_transpose(ct, x, *idx, slice_sizes):
    from .elementwise import zeros_like_aval
    return [dynamic_update_slice(zeros_like_aval(x.aval), ct, idx)] + [None] * len(idx)


def _batched_starts(idx, didx, shape, sizes, size, clamp_unit=True):
    """Start indices clamped as dynamic_slice clamps them, each as an int64 (B,) array.
    `clamp_unit=False` leaves the starts of unit windows unclamped, for a clip-mode gather,
    which clamps those itself: the gather then sees the index as given, which is what
    checkify's index check reports (`checkify(vmap(lambda x, i: x[i]))`, as JAX)."""
    from .elementwise import add, convert_element_type, lt, max as lmax, min as lmin, select
    out = []
    for s, d, n, k in zip(idx, didx, shape, sizes):
        s = convert_element_type(s, np.int64)
        s = select(lt(s, np.int64(0)), add(s, np.int64(n)), s)       # from the end
        if clamp_unit or k != 1:
            s = lmax(lmin(s, np.int64(n - k)), np.int64(0))
        out.append(B.move_dim(s, d, 0, size))
    return out


def _index_grid(starts, sizes, size, batch_component):
    """int64 indices of shape (B, *sizes, k): start + offset for each window position, with the
    example number as the first component when `batch_component`."""
    full_shape = (size,) + tuple(sizes)
    comps = [iota(np.int64, full_shape, 0)] if batch_component else []
    from .elementwise import add
    for i, s in enumerate(starts):
        c = broadcast_in_dim(s, full_shape, (0,))
        comps.append(c if sizes[i] == 1 else add(c, iota(np.int64, full_shape, i + 1)))
    comps = [reshape(c, full_shape + (1,)) for c in comps]
    return concatenate(comps, len(full_shape))


@dynamic_slice_p.def_batch
def _dynamic_slice_batch(args, dims, *, slice_sizes):
    x, *idx = args
    dx, *didx = dims
    size = B.batch_size(args, dims)
    if all(d is None for d in didx):
        # only the operand is batched: take the whole batch axis
        zero = np.zeros((), get_aval(idx[0]).dtype if idx else np.int64)
        idx = list(idx)
        idx.insert(dx, zero)
        sizes = list(slice_sizes)
        sizes.insert(dx, size)
        return dynamic_slice_p.bind(x, *idx, slice_sizes=tuple(sizes)), dx
    # per-example starts: one gather. Axes after the last batched start are sliced first with
    # an ordinary dynamic_slice (their starts are shared), so the gather indexes only axes < m.
    from .indexing import gather
    xa = get_aval(x)
    shape = xa.shape if dx is None else xa.shape[:dx] + xa.shape[dx + 1:]
    m = 1 + max(i for i, d in enumerate(didx) if d is not None)
    lead = 0 if dx is None else 1
    if dx is not None:
        x = B.moveaxis(x, dx, 0)
    if tuple(slice_sizes[m:]) != tuple(shape[m:]):
        zero = np.zeros((), np.int64)
        pre_idx = [zero] * (lead + m) + list(idx[m:])
        pre_sizes = ((size,) if lead else ()) + tuple(shape[:m]) + tuple(slice_sizes[m:])
        x = dynamic_slice_p.bind(x, *pre_idx, slice_sizes=pre_sizes)
    starts = _batched_starts(idx[:m], didx[:m], shape[:m], slice_sizes[:m], size,
                             clamp_unit=False)
    grid = _index_grid(starts, slice_sizes[:m], size, batch_component=dx is not None)
    return gather(x, grid, mode="clip"), 0


dynamic_update_slice_p = Primitive("dynamic_update_slice")


@dynamic_update_slice_p.def_impl
def _dus_impl(x, update, *idx):
    x = np.array(x, copy=True)
    update = np.asarray(update)
    st = _clamp_starts(idx, x.shape, update.shape)
    x[tuple(np.s_[s:s + k] for s, k in zip(st, update.shape))] = update
    return x


@dynamic_update_slice_p.def_abstract_eval
def _dus_abstract(x, update, *idx):
    if update.ndim != x.ndim or any(u > n for u, n in zip(update.shape, x.shape)):
        raise ShapeError(f"dynamic_update_slice: update {update.shape} does not fit in {x.shape}")
    if update.dtype != x.dtype:
        raise TypeError(f"dynamic_update_slice: dtypes differ ({x.dtype}, {update.dtype})")
    return x


def dynamic_update_slice(x, update, start_indices):
    return dynamic_update_slice_p.bind(as_array(x), as_array(update),
                                       *[as_array(i) for i in start_indices])


deflinear(dynamic_update_slice_p, linear_argnums=(0, 1))


@dynamic_update_slice_p.def_transpose
def _dus_transpose(ct, x, u, *idx):
    from .elementwise import zeros_like_aval
    ua = u.aval if is_undefined(u) else get_aval(u)
    ct_x = dynamic_update_slice(ct, zeros_like_aval(ua), idx) if is_undefined(x) else None
    ct_u = dynamic_slice(ct, idx, ua.shape) if is_undefined(u) else None
    return [ct_x, ct_u] + [None] * len(idx)


@dynamic_update_slice_p.def_batch
def _dus_batch(args, dims):
    x, u, *idx = args
    dx, du, *didx = dims
    size = B.batch_size(args, dims)
    if all(d is None for d in didx):
        bd = dx if dx is not None else du
        x, u = B.move_dim(x, dx, bd, size), B.move_dim(u, du, bd, size)
        zero = np.zeros((), get_aval(idx[0]).dtype if idx else np.int64)
        idx = list(idx)
        idx.insert(bd, zero)
        return dynamic_update_slice_p.bind(x, u, *idx), bd
    # per-example starts: one scatter over an index grid covering the update window
    from .indexing import scatter
    x, u = B.bdim_at_front(x, dx, size), B.bdim_at_front(u, du, size)
    shape, ushape = get_aval(x).shape[1:], get_aval(u).shape[1:]
    starts = _batched_starts(idx, didx, shape, ushape, size)
    grid = _index_grid(starts, ushape, size, batch_component=True)
    return scatter(x, grid, u), 0


def dynamic_slice_in_dim(operand, start_index, slice_size=1, axis=0):
    """`lax.dynamic_slice_in_dim`: dynamic_slice along one axis (starts 0 elsewhere)."""
    x = as_array(operand)
    a = get_aval(x)
    axis = int(axis) % a.ndim
    starts = [np.zeros((), np.int64)] * a.ndim
    starts[axis] = start_index
    sizes = list(a.shape)
    sizes[axis] = int(slice_size)
    return dynamic_slice(x, starts, sizes)


def dynamic_index_in_dim(operand, index, axis=0, keepdims=True):
    """`lax.dynamic_index_in_dim`: the size-1 slice at `index` (negative counts from the end)."""
    out = dynamic_slice_in_dim(operand, index, 1, axis)
    if keepdims:
        return out
    a = get_aval(out)
    axis = int(axis) % a.ndim
    return reshape(out, a.shape[:axis] + a.shape[axis + 1:])


def dynamic_update_slice_in_dim(operand, update, start_index, axis):
    """`lax.dynamic_update_slice_in_dim`."""
    x = as_array(operand)
    a = get_aval(x)
    axis = int(axis) % a.ndim
    starts = [np.zeros((), np.int64)] * a.ndim
    starts[axis] = start_index
    return dynamic_update_slice(x, update, starts)


def dynamic_update_index_in_dim(operand, update, index, axis):
    """`lax.dynamic_update_index_in_dim`: `update` (without or with the size-1 axis) at
    `index` along `axis`."""
    x = as_array(operand)
    a = get_aval(x)
    axis = int(axis) % a.ndim
    u = as_array(update)
    if get_aval(u).ndim == a.ndim - 1:
        us = get_aval(u).shape
        u = reshape(u, us[:axis] + (1,) + us[axis:])
    return dynamic_update_slice_in_dim(x, u, index, axis)


rev_p = Primitive("rev")
rev_p.def_impl(lambda x, *, dimensions: np.flip(x, dimensions) if dimensions else np.asarray(x))
rev_p.def_abstract_eval(lambda x, *, dimensions: x)


@weak_through(0)
def rev(x, dimensions):
    dims = tuple(sorted(int(d) for d in dimensions))
    if not dims:
        return as_array(x)
    return rev_p.bind(as_array(x), dimensions=dims)


deflinear(rev_p, lambda ct, x, *, dimensions: [rev(ct, dimensions)])


@rev_p.def_batch
def _rev_batch(args, dims, *, dimensions):
    (x,), (d,) = args, dims
    return rev_p.bind(x, dimensions=tuple(k + (k >= d) for k in dimensions)), d


iota_p = Primitive("iota")


@iota_p.def_impl
def _iota_impl(*, dtype, shape, dimension):
    r = np.arange(shape[dimension], dtype=dtype)
    expanded = [1] * len(shape)
    expanded[dimension] = shape[dimension]
    return np.broadcast_to(r.reshape(expanded), shape)


iota_p.def_abstract_eval(lambda *, dtype, shape, dimension: ShapedArray(shape, dtype))


def iota(dtype, shape, dimension=0):
    if isinstance(shape, int):
        shape = (shape,)
    return iota_p.bind(dtype=np.dtype(dtype), shape=tuple(int(s) for s in shape),
                       dimension=int(dimension))
