"""`scipy.ndimage.map_coordinates` (`jax.scipy.ndimage`): interpolate an N-d array at
arbitrary coordinates with order 0 (nearest) or 1 (linear) splines.

Written with gathers and `where`, so it differentiates (with respect to the input and, for
order 1, the coordinates), batches and compiles. Boundary modes follow JAX's, which differ
from SciPy's at the edges: 'constant' gives `cval` to every out-of-range neighbour (SciPy's
'grid-constant'), 'wrap' is periodic with period `size` (SciPy's 'grid-wrap'); 'nearest',
'mirror' and 'reflect' agree with SciPy. Order 0 rounds halves away from zero, as JAX."""
from __future__ import annotations

import itertools

import numpy as np

from .. import numpy as tnp
from ..core import get_aval

__all__ = ["map_coordinates"]


def _fix_index(index, size, mode):
    """The in-range index a boundary mode maps `index` to."""
    if mode in ("constant", "nearest"):
        return tnp.clip(index, 0, size - 1)
    if mode == "wrap":
        return tnp.remainder(index, size)
    if mode == "mirror":
        if size == 1:
            return tnp.zeros_like(index)
        period = 2 * (size - 1)
        return (size - 1) - tnp.abs(tnp.remainder(index, period) - (size - 1))
    if mode == "reflect":
        i = tnp.remainder(index, 2 * size)
        return tnp.where(tnp.less(i, size), i, 2 * size - 1 - i)
    raise ValueError(f"map_coordinates: mode must be one of 'constant', 'nearest', 'wrap', "
                     f"'mirror', 'reflect', got {mode!r}")


def _round_half_away(x):
    return tnp.sign(x) * tnp.floor(tnp.abs(x) + 0.5)


def map_coordinates(input, coordinates, order, mode="constant", cval=0.0):
    """Values of `input` at `coordinates` (a sequence of `input.ndim` arrays of one shape,
    the result's shape), as `jax.scipy.ndimage.map_coordinates`. `order` is 0 or 1 (JAX
    implements no higher order either); `mode` one of 'constant', 'nearest', 'wrap',
    'mirror', 'reflect'; `cval` the value outside the input in 'constant' mode.
    Differentiates, batches and compiles."""
    input = tnp.asarray(input)
    nd = get_aval(input).ndim
    coordinates = [tnp.asarray(c) for c in coordinates]
    if len(coordinates) != nd:
        raise ValueError(f"map_coordinates: coordinates must be a sequence of length "
                         f"input.ndim = {nd}, got {len(coordinates)}")
    if order not in (0, 1):
        raise NotImplementedError(f"map_coordinates: order must be 0 or 1, got {order!r} "
                                  "(as JAX)")
    shapes = {get_aval(c).shape for c in coordinates}
    if len(shapes) > 1:
        raise ValueError(f"map_coordinates: coordinate arrays have different shapes "
                         f"{sorted(shapes)}")
    _fix_index(tnp.zeros((), np.int32), 2, mode)        # validates the mode eagerly
    dt = get_aval(input).dtype
    if dt not in (np.float32, np.float64):
        dt = np.dtype(np.float64)
    coordinates = [c if get_aval(c).dtype in (np.float32, np.float64)
                   else tnp.astype(c, np.float64) for c in coordinates]
    # per axis: a list of (index, weight) pairs; the result sums over every combination
    per_axis = []
    for c, size in zip(coordinates, get_aval(input).shape):
        if order == 0:
            per_axis.append([(tnp.astype(_round_half_away(c), np.int32), None)])
        else:
            lo = tnp.floor(c)
            frac = c - lo
            lo = tnp.astype(lo, np.int32)
            per_axis.append([(lo, 1 - frac), (lo + 1, frac)])
    shape = get_aval(input).shape
    strides = np.cumprod((1,) + shape[::-1])[:-1][::-1]
    flat_input = tnp.reshape(input, (-1,))
    out = None
    for combo in itertools.product(*per_axis):
        idx, valid, weight = [], None, None
        for (i, w), size in zip(combo, get_aval(input).shape):
            idx.append(_fix_index(i, size, mode))
            if mode == "constant":
                ok = tnp.logical_and(tnp.greater_equal(i, 0), tnp.less(i, size))
                valid = ok if valid is None else tnp.logical_and(valid, ok)
            if w is not None:
                weight = w if weight is None else weight * w
        # a flat take, not input[idx]: input may be a NumPy constant with traced indices
        lin = None
        for i, st in zip(idx, strides):
            lin = i * int(st) if lin is None else lin + i * int(st)
        val = tnp.astype(tnp.take(flat_input, lin), dt)
        if valid is not None:
            val = tnp.where(valid, val, tnp.asarray(cval, dt))
        term = val if weight is None else val * tnp.astype(weight, dt)
        out = term if out is None else out + term
    return out
