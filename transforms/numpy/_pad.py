"""`pad` with every NumPy mode, built from lax primitives so it differentiates, batches and
compiles.

Axes are padded one after another, each over the whole array padded so far: that is how
NumPy fills corners (a later axis's padding covers the earlier axes' pads).

* 'constant' is `lax.pad` (one call per axis when the two sides' values differ);
* 'edge', 'wrap', 'reflect', 'symmetric' are linear in the input along each axis: NumPy's own
  `pad` applied to an identity matrix gives the (padded length x length) coefficient matrix.
  For all but reflect_type='odd' its rows are one-hot, and the padding is a gather (`take`)
  of those indices; 'odd' reflections (values 2 * edge - mirror) contract with the matrix.
  Building the matrix with NumPy itself reproduces its iterative reflection of pads wider
  than the array exactly;
* 'maximum', 'minimum', 'mean', 'median' reduce the first/last `stat_length` entries;
* 'linear_ramp' interpolates from `end_values` to the edge;
* 'empty' (undefined values in NumPy) pads with zeros, as JAX does.
"""
from __future__ import annotations

import numpy as np

from .. import lax
from .. import numpy as tnp      # safe: tnp.pad imports this module at its first call
from ..core import Tracer, concrete_or_error

_LINEAR_MODES = ("edge", "wrap", "reflect", "symmetric")
_STAT_MODES = ("maximum", "minimum", "mean", "median")
_MODES = ("constant", "empty", "linear_ramp") + _LINEAR_MODES + _STAT_MODES


def _per_axis_pairs(value, ndim, what, *, integer):
    """NumPy's forms n, (n,), (before, after), ((before, after),) or one pair per axis."""
    v = np.asarray(concrete_or_error(value, what))
    try:
        out = np.broadcast_to(v.astype(np.int64) if integer else v, (ndim, 2))
    except ValueError:
        raise ValueError(f"pad: {what} {value!r} does not fit an array of rank {ndim}") from None
    return out


def pad(array, pad_width, mode="constant", **kwargs):
    """Mirrors `numpy.pad`: every string mode ('constant', 'edge', 'linear_ramp', 'maximum',
    'mean', 'median', 'minimum', 'reflect', 'symmetric', 'wrap', 'empty') with
    `constant_values`, `end_values`, `stat_length` and `reflect_type` in NumPy's forms.
    Differentiable, batchable and compiled (pad widths must be concrete). Callable modes are
    not supported; 'empty' pads with zeros."""
    a = tnp.asarray(array)
    if callable(mode):
        raise NotImplementedError("pad: a callable mode is not supported; pad with a string "
                                  "mode or build the result with concatenate")
    if mode not in _MODES:
        raise ValueError(f"pad: mode {mode!r} is not one of {', '.join(_MODES)}")
    allowed = {"constant": {"constant_values"}, "linear_ramp": {"end_values"},
               "reflect": {"reflect_type"}, "symmetric": {"reflect_type"}}
    allowed.update({m: {"stat_length"} for m in _STAT_MODES})
    bad = set(kwargs) - allowed.get(mode, set())
    if bad:
        raise ValueError(f"pad: unsupported keyword argument(s) for mode {mode!r}: "
                         f"{', '.join(sorted(bad))}")
    widths = _per_axis_pairs(pad_width, a.ndim, "pad_width", integer=True)
    if (widths < 0).any():
        raise ValueError("index can't contain negative values")
    if mode in ("constant", "empty"):
        return _pad_constant(a, widths, kwargs.get("constant_values", 0) if mode == "constant"
                             else 0)
    for axis, (lo, hi) in enumerate(widths):
        if lo == 0 and hi == 0:
            continue
        if a.shape[axis] == 0:
            raise ValueError(f"pad: can't extend empty axis {axis} using modes other than "
                             "'constant' or 'empty'")
        if mode in _LINEAR_MODES:
            a = _pad_linear_axis(a, axis, int(lo), int(hi), mode,
                                 kwargs.get("reflect_type", "even"))
        elif mode in _STAT_MODES:
            stat = _per_axis_pairs(kwargs.get("stat_length", None) if
                                   kwargs.get("stat_length") is not None else a.shape[axis],
                                   a.ndim, "stat_length", integer=True)
            a = _pad_stat_axis(a, axis, int(lo), int(hi), mode, stat[axis])
        else:
            ends = _per_axis_pairs(kwargs.get("end_values", 0), a.ndim, "end_values",
                                   integer=False)
            a = _pad_ramp_axis(a, axis, int(lo), int(hi), ends[axis])
    return a


def _pad_constant(a, widths, constant_values):
    if isinstance(constant_values, Tracer):
        cv = lax.convert_element_type(constant_values, a.dtype)
        if cv.ndim:
            raise NotImplementedError("pad: a traced constant_values must be a scalar")
        return lax.pad(a, cv, [(int(lo), int(hi), 0) for lo, hi in widths])
    values = np.asarray(constant_values)
    if values.ndim == 0:
        return lax.pad(a, values.astype(a.dtype),
                       [(int(lo), int(hi), 0) for lo, hi in widths])
    values = _per_axis_pairs(values, a.ndim, "constant_values", integer=False)
    for axis, ((lo, hi), (v_lo, v_hi)) in enumerate(zip(widths, values)):
        for side, width, v in ((0, lo, v_lo), (1, hi, v_hi)):
            if width:
                config = [(0, 0, 0)] * a.ndim
                config[axis] = (int(width), 0, 0) if side == 0 else (0, int(width), 0)
                a = lax.pad(a, np.asarray(v).astype(a.dtype), config)
    return a


def _pad_linear_axis(a, axis, lo, hi, mode, reflect_type):
    if reflect_type not in ("even", "odd"):
        raise ValueError(f"pad: reflect_type must be 'even' or 'odd', got {reflect_type!r}")
    n = a.shape[axis]
    extra = {"reflect_type": reflect_type} if mode in ("reflect", "symmetric") else {}
    coeffs = np.pad(np.eye(n, dtype=np.int64), ((lo, hi), (0, 0)), mode=mode, **extra)
    one_hot = ((coeffs == 0) | (coeffs == 1)).all() and (coeffs.sum(axis=1) == 1).all()
    if one_hot:
        return tnp.take(a, coeffs.argmax(axis=1), axis=axis)
    out = tnp.tensordot(tnp.asarray(coeffs.astype(a.dtype)), a, axes=((1,), (axis,)))
    return tnp.moveaxis(out, 0, axis)


def _round_if_integer(x, dtype):
    if np.dtype(dtype).kind in "iub":
        x = tnp.round(x)
    return tnp.astype(x, dtype)


def _stat(part, axis, mode, dtype):
    if mode == "maximum":
        return tnp.max(part, axis=axis, keepdims=True)
    if mode == "minimum":
        return tnp.min(part, axis=axis, keepdims=True)
    if mode == "mean":
        return _round_if_integer(tnp.mean(part, axis=axis, keepdims=True), dtype)
    return _round_if_integer(tnp.median(part, axis=axis, keepdims=True), dtype)


def _pad_stat_axis(a, axis, lo, hi, mode, stat_length):
    n = a.shape[axis]
    pieces = []
    for side, width, length in ((0, lo, stat_length[0]), (1, hi, stat_length[1])):
        if not width:
            continue
        length = max(1, min(int(length), n)) if length > 0 else 0
        if length == 0:
            raise ValueError("pad: stat_length of 0 yields no value for padding")
        idx = np.arange(length) if side == 0 else np.arange(n - length, n)
        value = _stat(tnp.take(a, idx, axis=axis), axis, mode, a.dtype)
        shape = list(a.shape)
        shape[axis] = width
        pieces.append((side, tnp.broadcast_to(value, tuple(shape))))
    before = [p for s, p in pieces if s == 0]
    after = [p for s, p in pieces if s == 1]
    return tnp.concatenate(before + [a] + after, axis=axis)


def _pad_ramp_axis(a, axis, lo, hi, end_values):
    n = a.shape[axis]
    pieces = []
    for side, width, end in ((0, lo, end_values[0]), (1, hi, end_values[1])):
        if not width:
            continue
        edge = tnp.take(a, np.array([0 if side == 0 else n - 1]), axis=axis)
        # NumPy: linspace(end, edge, width, endpoint=False) (reversed on the right side),
        # computed in floating point and cast like linspace's dtype= (floor for integers)
        frac_shape = [1] * a.ndim
        frac_shape[axis] = width
        frac = tnp.reshape(tnp.asarray(np.arange(width) / width), tuple(frac_shape))
        fdt = np.result_type(a.dtype, np.float32) if a.dtype.kind == "f" else np.float64
        ramp = float(end) + (tnp.astype(edge, fdt) - float(end)) * tnp.astype(frac, fdt)
        if a.dtype.kind in "iu":
            # through int64, as NumPy's C cast: a negative end value wraps (-2 is 254 in uint8)
            ramp = tnp.astype(tnp.floor(ramp), np.int64)
        ramp = tnp.astype(ramp, a.dtype)
        if side == 1:
            ramp = tnp.take(ramp, np.arange(width)[::-1], axis=axis)
        pieces.append((side, ramp))
    before = [p for s, p in pieces if s == 0]
    after = [p for s, p in pieces if s == 1]
    return tnp.concatenate(before + [a] + after, axis=axis)
