"""More of `jax.lax`, composed from the primitives (so each differentiates, batches and
compiles as its parts do): elementwise helpers (`clamp square reciprocal acosh nextafter
population_count clz mulhi reduce_precision`), shapes (`broadcast broadcasted_iota
broadcast_to_rank broadcast_shapes full_like empty collapse split tile stack unstack`),
cumulative reductions (`cummax cummin cumlogsumexp`), general reductions (`reduce
reduce_xor`), indexing (`scatter_sub scatter_apply index_take`), `batch_matmul`,
`approx_max_k approx_min_k`, `optimization_barrier`, `dtype`.
"""
from __future__ import annotations

import operator

import numpy as np

from .. import tree as tree_util
from ..core import get_aval
from . import elementwise as E
from . import indexing as I
from . import reductions as R
from . import shape as S
from ._util import as_array

__all__ = ["clamp", "square", "reciprocal", "acosh", "nextafter", "population_count", "clz",
           "mulhi", "reduce_precision", "broadcast", "broadcasted_iota", "broadcast_to_rank",
           "broadcast_shapes", "full_like", "empty", "collapse", "split", "tile", "stack",
           "unstack", "cummax", "cummin", "cumlogsumexp", "reduce", "reduce_xor", "scatter_sub",
           "scatter_apply", "index_take", "batch_matmul", "approx_max_k", "approx_min_k",
           "optimization_barrier", "dtype", "random_gamma_grad"]


def _arr(x):
    return as_array(x)


def _bitcast(x, dtype):
    from ..random import bitcast_convert_type
    return bitcast_convert_type(x, dtype)


def _uint(dtype):
    return np.dtype(f"uint{np.dtype(dtype).itemsize * 8}")


def _c(v, dtype):
    return np.asarray(v, dtype)


# ---------------------------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------------------------

def clamp(min, x, max):  # noqa: A002 - JAX's argument names
    """`x` clipped to `[min, max]` elementwise; `min`/`max` are scalars or of `x`'s shape (as
    `jax.lax.clamp`). The derivative flows to `x` strictly inside the bounds and to the bound
    that is taken strictly outside them; at a tie, to neither (as JAX)."""
    x = _arr(x)
    a = get_aval(x)
    lo, hi = as_array(min, a.dtype), as_array(max, a.dtype)
    for nm, b in (("min", lo), ("max", hi)):
        s = get_aval(b).shape
        if s not in ((), a.shape):
            raise TypeError(f"clamp: {nm} must be a scalar or have x's shape {a.shape}, got "
                            f"shape {s}")
    lo_b = lo if get_aval(lo).shape == a.shape else S.broadcast_to(lo, a.shape)
    hi_b = hi if get_aval(hi).shape == a.shape else S.broadcast_to(hi, a.shape)
    from .misc import stop_gradient
    inside = E.bitwise_and(E.gt(x, lo_b), E.lt(x, hi_b))
    # at a tie with a bound neither x nor the bound gets the derivative (as JAX)
    outside = E.select(E.lt(x, lo_b), lo_b, E.select(E.gt(x, hi_b), hi_b, stop_gradient(x)))
    return E.select(inside, x, outside)


def square(x):
    """`x * x` (`integer_pow(x, 2)`)."""
    return E.integer_pow(_arr(x), 2)


def reciprocal(x):
    """`1 / x` (`integer_pow(x, -1)`)."""
    return E.integer_pow(_arr(x), -1)


def acosh(x):
    """Inverse hyperbolic cosine, `log(x + sqrt(x - 1) * sqrt(x + 1))` (NaN below 1)."""
    x = _arr(x)
    one = _c(1, get_aval(x).dtype)
    return E.log(E.add(x, E.mul(E.sqrt(E.sub(x, one)), E.sqrt(E.add(x, one)))))


def nextafter(x1, x2):
    """The next representable float after `x1` in the direction of `x2`, elementwise (as
    `numpy.nextafter`; `x2` when they are equal, NaN if either is NaN). Not differentiable
    (zero derivative)."""
    from .misc import stop_gradient
    x1, x2 = _arr(x1), _arr(x2)
    dt = get_aval(x1).dtype
    if not np.issubdtype(dt, np.floating):
        raise TypeError(f"nextafter: operands must be floating, got {dt}")
    x2 = as_array(x2, dt) if not hasattr(x2, "aval") else x2
    shape = np.broadcast_shapes(get_aval(x1).shape, get_aval(x2).shape)
    x1, x2 = S.broadcast_to(stop_gradient(x1), shape), S.broadcast_to(stop_gradient(x2), shape)
    idt = np.dtype(f"int{dt.itemsize * 8}")
    i = _bitcast(x1, idt)
    one = _c(1, idt)
    # moving away from zero adds one to the magnitude bits, towards zero subtracts one
    away = E.eq(E.gt(x2, x1), E.ge(x1, _c(0, dt)))
    stepped = _bitcast(E.select(away, E.add(i, one), E.sub(i, one)), dt)
    tiny = np.nextafter(np.zeros((), dt), np.ones((), dt))
    at_zero = E.select(E.gt(x2, x1), S.full(shape, tiny, dt), S.full(shape, -tiny, dt))
    out = E.select(E.eq(x1, _c(0, dt)), at_zero, stepped)
    out = E.select(E.eq(x1, x2), x2, out)
    nan = E.bitwise_or(E.ne(x1, x1), E.ne(x2, x2))
    return E.select(nan, S.full(shape, np.nan, dt), out)


def _unsigned_view(x, name):
    x = _arr(x)
    dt = get_aval(x).dtype
    if dt.kind not in "iu":
        raise TypeError(f"{name}: operand must be an integer, got {dt}")
    return x, dt, (x if dt.kind == "u" else _bitcast(x, _uint(dt)))


def population_count(x):
    """The number of set bits of each integer (of its two's complement bits if signed), in
    `x`'s dtype."""
    x, dt, u = _unsigned_view(x, "population_count")
    ut = get_aval(u).dtype
    one = _c(1, ut)
    total = S.full(get_aval(u).shape, 0, ut)
    for b in range(dt.itemsize * 8):
        total = E.add(total, E.bitwise_and(E.shift_right_logical(u, _c(b, ut)), one))
    return total if dt == ut else E.convert_element_type(total, dt)


def clz(x):
    """The number of leading zero bits of each integer (its width for 0), in `x`'s dtype."""
    x, dt, u = _unsigned_view(x, "clz")
    ut = get_aval(u).dtype
    bits = dt.itemsize * 8
    shape = get_aval(u).shape
    n = S.full(shape, bits, ut)
    s = bits // 2
    while s >= 1:           # binary search for the highest set bit
        t = E.shift_right_logical(u, _c(s, ut))
        nz = E.ne(t, _c(0, ut))
        n = E.select(nz, E.sub(n, _c(s, ut)), n)
        u = E.select(nz, t, u)
        s //= 2
    out = E.sub(n, u)       # u is now 0 or 1
    return out if dt == ut else E.convert_element_type(out, dt)


def mulhi(x, y):
    """The high half of the double-width product of two integers of the same dtype (8, 16 or
    32 bits; 64-bit operands are not supported here)."""
    x, y = _arr(x), _arr(y)
    dt = get_aval(x).dtype
    if get_aval(y).dtype != dt or dt.kind not in "iu":
        raise TypeError(f"mulhi: operands must be integers of one dtype, got {dt} and "
                        f"{get_aval(y).dtype}")
    bits = dt.itemsize * 8
    if bits > 32:
        raise NotImplementedError("mulhi: 64-bit operands are not supported")
    wide = np.dtype(("int" if dt.kind == "i" else "uint") + "64")
    p = E.mul(E.convert_element_type(x, wide), E.convert_element_type(y, wide))
    hi = E.shift_right_arithmetic(p, _c(bits, wide)) if dt.kind == "i" else \
        E.shift_right_logical(p, _c(bits, wide))
    return E.convert_element_type(hi, dt)


def reduce_precision(operand, exponent_bits, mantissa_bits):
    """Round floats to a format of `exponent_bits` exponent and `mantissa_bits` mantissa bits
    (round to nearest even; overflow to inf, underflow to signed zero; NaN kept), returned
    in the operand's dtype, as XLA's ReducePrecision. The derivative passes through unchanged
    (JAX rounds the tangent too)."""
    from .misc import stop_gradient
    x = _arr(operand)
    dt = get_aval(x).dtype
    if not np.issubdtype(dt, np.floating):
        raise TypeError(f"reduce_precision: operand must be floating, got {dt}")
    exponent_bits, mantissa_bits = operator.index(exponent_bits), operator.index(mantissa_bits)
    fi = np.finfo(dt)
    M, Ebits, nbits = fi.nmant, fi.nexp, fi.bits
    if exponent_bits < 1 or mantissa_bits < 0:
        raise ValueError(f"reduce_precision: need exponent_bits >= 1 and mantissa_bits >= 0, "
                         f"got {exponent_bits}, {mantissa_bits}")
    ut = _uint(dt)
    xs = stop_gradient(x)
    b = _bitcast(xs, ut)
    if mantissa_bits < M:
        shift = M - mantissa_bits
        last = 1 << shift
        bias_base = (last >> 1) - 1
        last_bit = E.shift_right_logical(E.bitwise_and(b, _c(last, ut)), _c(shift, ut))
        mask = (~(last - 1)) & ((1 << nbits) - 1)
        b = E.bitwise_and(E.add(b, E.add(last_bit, _c(bias_base, ut))), _c(mask, ut))
    if exponent_bits < Ebits:
        sign_mask = 1 << (nbits - 1)
        exp_mask = ((1 << Ebits) - 1) << M
        bias = (1 << (Ebits - 1)) - 1
        rbias = (1 << (exponent_bits - 1)) - 1
        e = E.bitwise_and(b, _c(exp_mask, ut))
        over = E.gt(e, _c((bias + rbias) << M, ut))
        under = E.le(e, _c((bias - rbias) << M, ut))
        signed_zero = E.bitwise_and(b, _c(sign_mask, ut))
        signed_inf = E.bitwise_or(signed_zero, _c(exp_mask, ut))
        b = E.select(over, signed_inf, E.select(under, signed_zero, b))
    r = _bitcast(b, dt)
    r = E.select(E.ne(xs, xs), xs, r)
    return E.add(x, stop_gradient(E.sub(r, x))) if np.issubdtype(dt, np.inexact) else r


# ---------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------

def broadcast(operand, sizes, *, out_sharding=None):
    """`operand` with new leading axes of `sizes`: shape `tuple(sizes) + operand.shape`."""
    del out_sharding
    x = _arr(operand)
    a = get_aval(x)
    sizes = tuple(operator.index(s) for s in sizes)
    return S.broadcast_in_dim(x, sizes + a.shape, tuple(range(len(sizes), len(sizes) + a.ndim)))


def broadcasted_iota(dtype, shape, dimension, *, out_sharding=None):
    """An array of `shape` counting 0, 1, ... along `dimension` (constant along the others)."""
    del out_sharding
    shape = tuple(operator.index(s) for s in shape)
    return S.iota(np.dtype(dtype), shape, operator.index(dimension))


def broadcast_to_rank(x, rank):
    """`x` with leading axes of size 1 added up to `rank` dimensions (unchanged if it has as
    many or more)."""
    x = _arr(x)
    a = get_aval(x)
    if a.ndim >= rank:
        return x
    return S.reshape(x, (1,) * (rank - a.ndim) + a.shape)


def broadcast_shapes(*shapes):
    """The shape arrays of `shapes` broadcast to (NumPy's rule), or a ValueError."""
    return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))


def full_like(x, fill_value, dtype=None, shape=None, sharding=None):
    """An array like `x` (its shape and dtype unless `shape`/`dtype` are given) filled with
    `fill_value`."""
    del sharding
    a = get_aval(_arr(x))
    return S.full(a.shape if shape is None else tuple(shape), fill_value,
                  a.dtype if dtype is None else np.dtype(dtype))


def empty(shape, dtype, *, out_sharding=None):
    """An array of `shape` and `dtype` whose contents do not matter (zeros here)."""
    del out_sharding
    return S.full(tuple(shape), 0, np.dtype(dtype))


def collapse(operand, start_dimension, stop_dimension=None):
    """`operand` with dimensions `[start_dimension, stop_dimension)` merged into one."""
    x = _arr(operand)
    shape = get_aval(x).shape
    nd = len(shape)
    lo = operator.index(start_dimension) % (nd + 1) if nd else 0
    hi = nd if stop_dimension is None else operator.index(stop_dimension)
    hi = hi + nd if hi < 0 else hi
    if not 0 <= lo <= hi <= nd:
        raise ValueError(f"collapse: bad dimensions [{start_dimension}, {stop_dimension}) for "
                         f"shape {shape}")
    return S.reshape(x, shape[:lo] + (int(np.prod(shape[lo:hi], dtype=np.int64)),) + shape[hi:])


def split(operand, sizes, axis=0):
    """Split `operand` along `axis` into pieces of the given `sizes` (which must add up to the
    axis' size); a list of arrays."""
    x = _arr(operand)
    shape = get_aval(x).shape
    axis = operator.index(axis) % len(shape)
    sizes = [operator.index(s) for s in sizes]
    if sum(sizes) != shape[axis] or any(s < 0 for s in sizes):
        raise ValueError(f"split: sizes {sizes} must be non-negative and add up to the size "
                         f"{shape[axis]} of axis {axis}")
    out, start = [], 0
    for s in sizes:
        lo = [0] * len(shape)
        hi = list(shape)
        lo[axis], hi[axis] = start, start + s
        out.append(S.slice(x, lo, hi))
        start += s
    return out


def tile(operand, reps):
    """`operand` repeated `reps[i]` times along each axis `i` (`len(reps)` must be its rank;
    as `jax.lax.tile`)."""
    x = _arr(operand)
    shape = get_aval(x).shape
    reps = tuple(operator.index(r) for r in reps)
    if len(reps) != len(shape):
        raise ValueError(f"tile: reps {reps} must have one entry per dimension of the operand "
                         f"(shape {shape})")
    inter = tuple(v for r, d in zip(reps, shape) for v in (r, d))
    b = S.broadcast_in_dim(x, inter, tuple(range(1, 2 * len(shape), 2)))
    return S.reshape(b, tuple(r * d for r, d in zip(reps, shape)))


def stack(operands, axis=0):
    """Arrays of one shape stacked along a new axis `axis`."""
    xs = [_arr(o) for o in operands]
    if not xs:
        raise ValueError("stack: need at least one array")
    nd = get_aval(xs[0]).ndim
    axis = operator.index(axis) % (nd + 1)
    return S.concatenate([S.expand_dims(x, (axis,)) for x in xs], axis)


def unstack(x, axis=0):
    """The slices of `x` along `axis`, as a tuple of arrays of one rank less."""
    x = _arr(x)
    shape = get_aval(x).shape
    axis = operator.index(axis) % len(shape)
    out = []
    for i in range(shape[axis]):
        lo, hi = [0] * len(shape), list(shape)
        lo[axis], hi[axis] = i, i + 1
        out.append(S.squeeze(S.slice(x, lo, hi), (axis,)))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------------

def _cum(fn, operand, axis, reverse):
    from .extras import associative_scan
    x = _arr(operand)
    return associative_scan(fn, x, reverse=bool(reverse), axis=operator.index(axis))


def cummax(operand, axis=0, reverse=False):
    """Running maximum along `axis` (from the end with `reverse`)."""
    return _cum(E.max, operand, axis, reverse)


def cummin(operand, axis=0, reverse=False):
    """Running minimum along `axis` (from the end with `reverse`)."""
    return _cum(E.min, operand, axis, reverse)


def cumlogsumexp(operand, axis=0, reverse=False):
    """Running `log(sum(exp(x)))` along `axis`, computed stably (`logaddexp` prefix scan)."""
    return _cum(E.logaddexp, operand, axis, reverse)


_MONOIDS = {}


def _monoids():
    if not _MONOIDS:
        _MONOIDS.update({
            E.add: (R.reduce_sum, lambda d: 0), E.mul: (R.reduce_prod, lambda d: 1),
            E.max: (R.reduce_max, lambda d: -np.inf if d.kind == "f" else
                    (False if d.kind == "b" else np.iinfo(d).min)),
            E.min: (R.reduce_min, lambda d: np.inf if d.kind == "f" else
                    (True if d.kind == "b" else np.iinfo(d).max)),
        })
    return _MONOIDS


def reduce(operands, init_values, computation, dimensions, out_sharding=None):
    """Reduce `operands` (an array or a pytree of arrays of one shape) over `dimensions` with
    the binary `computation` starting from `init_values` (matching pytree of scalars), as
    `jax.lax.reduce`. `lax.add`/`mul`/`max`/`min` with their identity as init use the reduction
    primitives; any other (associative, commutative) computation is applied as a balanced tree
    of calls, so Python functions of lax operations work too."""
    del out_sharding
    xs, tree = tree_util.flatten(operands)
    inits, itree = tree_util.flatten(init_values)
    if tree != itree:
        raise TypeError(f"reduce: operands {tree} and init_values {itree} differ in structure")
    xs = [_arr(x) for x in xs]
    shape = get_aval(xs[0]).shape
    for x in xs[1:]:
        if get_aval(x).shape != shape:
            raise ValueError("reduce: operands must all have one shape")
    dims = tuple(sorted(operator.index(d) % len(shape) for d in dimensions)) if shape else ()
    inits = [as_array(i, get_aval(x).dtype) for i, x in zip(inits, xs)]
    mono = _monoids().get(computation) if len(xs) == 1 else None
    if mono is not None:
        red, ident = mono
        dt = get_aval(xs[0]).dtype
        out = red(xs[0], dims)
        if isinstance(inits[0], np.ndarray) and inits[0] == ident(dt):
            return tree_util.unflatten(tree, [out])
        return tree_util.unflatten(tree, [computation(S.broadcast_to(inits[0], get_aval(out).shape)
                                                      if get_aval(out).shape else inits[0], out)])
    # general: move the reduced axes last, merge them, then combine halves pairwise
    keep = [d for d in range(len(shape)) if d not in dims]
    kshape = tuple(shape[d] for d in keep)
    n = int(np.prod([shape[d] for d in dims], dtype=np.int64))
    xs = [S.reshape(S.transpose(x, keep + list(dims)), kshape + (n,)) for x in xs]

    def combine(a, b):
        out = computation(tree_util.unflatten(tree, a), tree_util.unflatten(tree, b))
        flat, t = tree_util.flatten(out)
        if t != tree:
            raise TypeError(f"reduce: computation returned structure {t}, expected {tree}")
        return [_arr(o) for o in flat]

    def piece(v, lo, hi):
        return S.slice(v, (0,) * len(kshape) + (lo,), kshape + (hi,))

    while n > 1:
        if n % 2:
            xs = [S.concatenate([v, S.broadcast_to(i, kshape + (1,))], len(kshape))
                  for v, i in zip(xs, inits)]
            n += 1
        h = n // 2
        xs = combine([piece(v, 0, h) for v in xs], [piece(v, h, n) for v in xs])
        n = h
    if n == 0:
        res = [S.broadcast_to(i, kshape) for i in inits]
    else:
        res = combine([S.broadcast_to(i, kshape) for i in inits],
                      [S.reshape(v, kshape) for v in xs])
    return tree_util.unflatten(tree, res)


def reduce_xor(operand, axes):
    """Bitwise xor of the elements over `axes` (integers or booleans)."""
    x = _arr(operand)
    return reduce(x, np.zeros((), get_aval(x).dtype), E.bitwise_xor, axes)


# ---------------------------------------------------------------------------------------------
# indexing, products, top-k
# ---------------------------------------------------------------------------------------------

def scatter_sub(x, idx, updates, **params):
    """`x` with `updates` subtracted at `idx` (as `scatter_add` with negated updates; same
    index convention as `lax.scatter_add`)."""
    return I.scatter_add(x, idx, E.neg(_arr(updates)), **params)


def scatter_apply(operand, scatter_indices, func, *, update_shape=(), **params):
    """`operand` with `func` applied to the entries at `scatter_indices` (same index
    convention as `lax.scatter`); an index given several times is updated once."""
    x, idx = _arr(operand), _arr(scatter_indices)
    vals = I.gather(x, idx)
    return I.scatter(x, idx, _arr(func(vals)))


def index_take(src, idxs, axes):
    """`src` indexed along `axes` by the rows of `idxs` (shape `(n, len(axes))`): the result
    has shape `(n,) + ` the remaining dims of `src`, as `jax.lax.index_take`."""
    x, idx = _arr(src), _arr(idxs)
    nd = get_aval(x).ndim
    axes = [operator.index(a) % nd for a in axes]
    if get_aval(idx).ndim != 2 or get_aval(idx).shape[1] != len(axes):
        raise ValueError(f"index_take: idxs must have shape (n, {len(axes)}), got "
                         f"{get_aval(idx).shape}")
    perm = axes + [d for d in range(nd) if d not in axes]
    return I.gather(S.transpose(x, perm), idx)


def batch_matmul(lhs, rhs, precision=None):
    """Batched matrix product of `(..., m, k)` and `(..., k, n)` arrays with equal batch
    dimensions."""
    from .linalg import dot_general
    a, b = _arr(lhs), _arr(rhs)
    na, nb = get_aval(a).ndim, get_aval(b).ndim
    if na < 2 or na != nb or get_aval(a).shape[:-2] != get_aval(b).shape[:-2]:
        raise ValueError(f"batch_matmul: operands must have the same rank (>= 2) and batch "
                         f"dimensions, got {get_aval(a).shape} and {get_aval(b).shape}")
    batch = tuple(range(na - 2))
    return dot_general(a, b, (((na - 1,), (na - 2,)), (batch, batch)), precision=precision)


def _top_along(x, k, dim, negate):
    from .sorting import top_k
    x = _arr(x)
    nd = get_aval(x).ndim
    dim = operator.index(dim) % nd
    if dim != nd - 1:
        x = S.transpose(x, [d for d in range(nd) if d != dim] + [dim])
    v, i = top_k(E.neg(x) if negate else x, k)
    if negate:
        v = E.neg(v)
    if dim != nd - 1:
        back = list(range(nd - 1))
        back.insert(dim, nd - 1)
        v, i = S.transpose(v, back), S.transpose(i, back)
    return v, i


def approx_max_k(operand, k, reduction_dimension=-1, recall_target=0.95,
                 reduction_input_size_override=-1, aggregate_to_topk=True):
    """The `k` largest values along `reduction_dimension` and their int32 indices. Exact here
    (`top_k`): the approximation is an accelerator optimisation."""
    return _top_along(operand, k, reduction_dimension, False)


def approx_min_k(operand, k, reduction_dimension=-1, recall_target=0.95,
                 reduction_input_size_override=-1, aggregate_to_topk=True):
    """The `k` smallest values along `reduction_dimension` (ascending) and their int32
    indices; exact here. Floating operands only (values are negated for `top_k`)."""
    if not np.issubdtype(get_aval(_arr(operand)).dtype, np.floating):
        raise TypeError("approx_min_k: operand must be floating")
    return _top_along(operand, k, reduction_dimension, True)


def random_gamma_grad(a, x):
    """The derivative of a Gamma(`a`, 1) sample `x` with respect to `a` under implicit
    reparameterisation (as `jax.lax.random_gamma_grad`); see `transforms.random.gamma`."""
    from ..random_dists import random_gamma_grad as _impl
    return _impl(a, x)


def optimization_barrier(operand, /):
    """Identity on a pytree of arrays (XLA uses it to stop reordering; nothing reorders
    across it here that would change results)."""
    return tree_util.map(_arr, operand)


def dtype(x, *, canonicalize=False):
    """The dtype of `x` (an array, scalar, tracer or dtype-like), as NumPy 2 would give it."""
    from ..core import Tracer
    if isinstance(x, Tracer):
        return x.aval.dtype
    if isinstance(x, (np.dtype, type, str)):
        return np.dtype(x)
    return np.result_type(x)
