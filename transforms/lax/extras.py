"""More of `jax.lax`, built from the primitives: `associative_scan`, the `*_in_dim` slicing
helpers, `conv_with_general_padding` and the shape calculators `conv_general_shape_tuple`,
`reduce_window_shape_tuple`. Being compositions, they differentiate, batch and compile."""
from __future__ import annotations

import numpy as np

from .. import tree as tree_util
from ..core import Tracer, get_aval
from . import shape as S

__all__ = ["associative_scan", "dynamic_slice_in_dim", "dynamic_update_slice_in_dim",
           "dynamic_index_in_dim", "dynamic_update_index_in_dim", "index_in_dim",
           "slice_in_dim", "conv_with_general_padding", "conv_general_shape_tuple",
           "reduce_window_shape_tuple"]


# --------------------------------------------------------------------------------------------
# associative_scan

def _take(x, axis, start, stop, step):
    """x[start:stop:step] along `axis` (static bounds)."""
    shape = get_aval(x).shape
    n = shape[axis]
    start, stop, step = slice(start, stop, step).indices(n)
    if stop <= start:
        stop = start
    lo = [0] * len(shape)
    hi = list(shape)
    st = [1] * len(shape)
    lo[axis], hi[axis], st[axis] = start, stop, step
    return S.slice(x, lo, hi, st)


def _interleave(a, b, axis):
    """a0 b0 a1 b1 ... along `axis`; `a` has as many or one more elements than `b`."""
    na, nb = get_aval(a).shape[axis], get_aval(b).shape[axis]
    head = _take(a, axis, 0, nb, 1) if na != nb else a
    pair = S.concatenate([S.expand_dims(head, (axis + 1,)), S.expand_dims(b, (axis + 1,))],
                         axis + 1)
    shape = list(get_aval(head).shape)
    shape[axis] *= 2
    out = S.reshape(pair, tuple(shape))
    if na != nb:
        out = S.concatenate([out, _take(a, axis, na - 1, na, 1)], axis)
    return out


def associative_scan(fn, elems, reverse=False, axis=0):
    """All prefix combinations `fn(...fn(fn(e0, e1), e2)..., ei)` along `axis`, computed as a
    balanced tree of `fn` applications (O(log n) depth), as `jax.lax.associative_scan`.

    `fn` must be associative and work elementwise on (pytrees of) slices; `elems` is a pytree
    of arrays of equal length along `axis`. `reverse=True` scans from the end.
    """
    leaves, treedef = tree_util.flatten(elems)
    if not leaves:
        raise ValueError("associative_scan: elems has no arrays")
    from ..numpy import asarray
    leaves = [asarray(x) for x in leaves]
    ndim = get_aval(leaves[0]).ndim
    axis = axis % ndim if ndim else 0
    lengths = {get_aval(x).shape[axis] for x in leaves}
    if len(lengths) != 1:
        raise ValueError(f"associative_scan: array sizes along axis {axis} differ: "
                         f"{sorted(lengths)}")

    def combine(a, b):
        out = fn(tree_util.unflatten(treedef, a), tree_util.unflatten(treedef, b))
        out_leaves, out_tree = tree_util.flatten(out)
        if out_tree != treedef:
            raise TypeError(f"associative_scan: fn returned structure {out_tree}, expected "
                            f"{treedef}")
        return [asarray(o) for o in out_leaves]

    def scan(xs):
        n = get_aval(xs[0]).shape[axis]
        if n < 2:
            return xs
        pairs = combine([_take(x, axis, 0, n - 1, 2) for x in xs],
                        [_take(x, axis, 1, n, 2) for x in xs])
        odd = scan(pairs)                                   # prefixes ending at 1, 3, 5, ...
        rest = [_take(x, axis, 2, n, 2) for x in xs]        # e2, e4, ...
        if n % 2 == 0:
            even = combine([_take(o, axis, 0, -1, 1) for o in odd], rest)
        else:
            even = combine(odd, rest)
        even = [S.concatenate([_take(x, axis, 0, 1, 1), e], axis) for x, e in zip(xs, even)]
        return [_interleave(e, o, axis) for e, o in zip(even, odd)]

    if reverse:
        leaves = [S.rev(x, (axis,)) for x in leaves]
    out = scan(leaves)
    if reverse:
        out = [S.rev(x, (axis,)) for x in out]
    return tree_util.unflatten(treedef, out)


# --------------------------------------------------------------------------------------------
# *_in_dim helpers

def _norm_index(i, n, allow_negative):
    """The start handed to dynamic_slice / dynamic_update_slice, which already count a negative
    start from the end once (as JAX: -9 on a size-6 axis is -3, clamped to 0). With
    allow_negative_indices=False a negative start is clamped to 0 instead."""
    if allow_negative:
        return i
    if isinstance(i, Tracer) or isinstance(i, np.ndarray):
        from ..numpy import maximum
        return maximum(i, 0)
    return max(int(i), 0)


def _starts(operand, axis, start):
    nd = get_aval(operand).ndim
    return [start if d == axis else np.int64(0) for d in range(nd)]


def dynamic_slice_in_dim(operand, start_index, slice_size, axis=0, *,
                         allow_negative_indices=True):
    """`slice_size` elements of `operand` along `axis` from a (traced) `start_index`, clamped
    into bounds; a negative index counts from the end."""
    from ..numpy import asarray
    operand = asarray(operand)
    shape = get_aval(operand).shape
    axis = axis % len(shape)
    start = _norm_index(start_index, shape[axis], allow_negative_indices)
    sizes = list(shape)
    sizes[axis] = int(slice_size)
    return S.dynamic_slice(operand, _starts(operand, axis, start), sizes)


def dynamic_index_in_dim(operand, index, axis=0, keepdims=True, *, allow_negative_indices=True):
    """The slice at (traced) `index` along `axis`; `keepdims=False` drops that axis."""
    out = dynamic_slice_in_dim(operand, index, 1, axis,
                               allow_negative_indices=allow_negative_indices)
    if keepdims:
        return out
    return S.squeeze(out, (axis % get_aval(out).ndim,))


def dynamic_update_slice_in_dim(operand, update, start_index, axis, *,
                                allow_negative_indices=True):
    """`operand` with `update` written along `axis` from a (traced) `start_index` (clamped)."""
    from ..numpy import asarray
    operand, update = asarray(operand), asarray(update)
    shape = get_aval(operand).shape
    axis = axis % len(shape)
    start = _norm_index(start_index, shape[axis], allow_negative_indices)
    return S.dynamic_update_slice(operand, update, _starts(operand, axis, start))


def dynamic_update_index_in_dim(operand, update, index, axis, *, allow_negative_indices=True):
    """`operand` with the slice at `index` along `axis` replaced by `update` (which may lack
    that axis)."""
    from ..numpy import asarray
    operand, update = asarray(operand), asarray(update)
    axis = axis % get_aval(operand).ndim
    if get_aval(update).ndim == get_aval(operand).ndim - 1:
        update = S.expand_dims(update, (axis,))
    return dynamic_update_slice_in_dim(operand, update, index, axis,
                                       allow_negative_indices=allow_negative_indices)


def index_in_dim(operand, index, axis=0, keepdims=True):
    """The slice at static `index` along `axis` (negative counts from the end)."""
    from ..numpy import asarray
    operand = asarray(operand)
    n = get_aval(operand).shape[axis]
    i = int(index) + n if int(index) < 0 else int(index)
    if not 0 <= i < n:
        raise IndexError(f"index {index} is out of bounds for axis {axis} with size {n}")
    out = slice_in_dim(operand, i, i + 1, 1, axis)
    return out if keepdims else S.squeeze(out, (axis % get_aval(out).ndim,))


def slice_in_dim(operand, start_index, limit_index, stride=1, axis=0):
    """`operand[start:limit:stride]` along `axis` (static; None and negatives as Python)."""
    from ..numpy import asarray
    operand = asarray(operand)
    axis = axis % get_aval(operand).ndim
    return _take(operand, axis, start_index, limit_index, stride)


# --------------------------------------------------------------------------------------------
# Convolutions and windows

def conv_with_general_padding(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                              precision=None, preferred_element_type=None):
    """`conv_general_dilated` with the default layouts (NCHW input, OIHW kernel)."""
    from .conv import conv_general_dilated
    return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                rhs_dilation=rhs_dilation, precision=precision,
                                preferred_element_type=preferred_element_type)


def _pads(in_spatial, k_spatial, strides, padding):
    from .conv import padtype_to_pads
    return padtype_to_pads(in_spatial, k_spatial, strides, padding)


def conv_general_shape_tuple(lhs_shape, rhs_shape, window_strides, padding, dimension_numbers):
    """The output shape of `conv_general_dilated` (no dilation) for these operand shapes."""
    from .conv import conv_dimension_numbers
    lhs_spec, rhs_spec, out_spec = conv_dimension_numbers(lhs_shape, rhs_shape,
                                                          dimension_numbers)
    lhs = [lhs_shape[d] for d in lhs_spec]          # N, C, spatial...
    rhs = [rhs_shape[d] for d in rhs_spec]          # O, I, spatial...
    strides = tuple(window_strides)
    pads = _pads(lhs[2:], rhs[2:], strides, padding)
    spatial = [(n + lo + hi - k) // s + 1 if n + lo + hi >= k else 0
               for n, k, s, (lo, hi) in zip(lhs[2:], rhs[2:], strides, pads)]
    logical = [lhs[0], rhs[0]] + spatial
    out = [0] * len(logical)
    for i, d in enumerate(out_spec):
        out[d] = int(logical[i])
    return tuple(out)


def reduce_window_shape_tuple(operand_shape, window_dimensions, window_strides, padding,
                              base_dilation=None, window_dilation=None):
    """The output shape of `reduce_window` with these window parameters."""
    nd = len(operand_shape)
    base_dilation = (1,) * nd if base_dilation is None else tuple(base_dilation)
    window_dilation = (1,) * nd if window_dilation is None else tuple(window_dilation)
    shape = [(d - 1) * b + 1 if d else 0 for d, b in zip(operand_shape, base_dilation)]
    win = [(w - 1) * wd + 1 for w, wd in zip(window_dimensions, window_dilation)]
    pads = _pads(shape, win, window_strides, padding)
    out = []
    for n, w, s, (lo, hi) in zip(shape, win, window_strides, pads):
        p = n + lo + hi
        out.append((p - w) // s + 1 if p >= w else 0)
    return tuple(out)
