"""Convolution and windowed reductions (pooling).

Primitives, each with its rules beside it:

    conv_general_dilated[window_strides, padding, lhs_dilation, rhs_dilation,
                         dimension_numbers, feature_group_count, batch_group_count,
                         preferred_element_type]                      (lhs, rhs) -> out
    reduce_window_sum / reduce_window_max / reduce_window_min
        [window_dimensions, window_strides, padding, base_dilation, window_dilation]
    select_and_gather_add[...]   (t, x): per window, `t` at the position of `x`'s maximum
    select_and_scatter_add[...]  (s, x): the transpose: each window's `s` added at that position

`dimension_numbers` is normalised to `(lhs_spec, rhs_spec, out_spec)`, each a tuple of axis
indices `(batch/out-feature, feature/in-feature, *spatial)` as JAX's ConvDimensionNumbers.

The NumPy implementation works in a canonical channels-last layout (N, *spatial, C) x
(*window, I, O). It either gathers patches (im2col) and makes one BLAS matmul, or, for a
stride-1 convolution whose kernel-side work is smaller that way (the input gradient of a
convolution: a padded, dilated cotangent), multiplies first and scatters the products into the
output (col2im). Never a Python loop over pixels; only over the few kernel offsets (and over
blocks of images when the patch matrix would be large). Numba lowerings are in
`transforms/backend/numba/rules_conv.py`.

Note: `transforms.lax.conv` is the function `lax.conv` (as in JAX); import this module's
internals as `from transforms.lax.conv import ...`.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..core import Primitive, ShapedArray, get_aval
from ..errors import ShapeError
from ..interpreters import batching as B
from ..interpreters.jvp import deflinear, defbilinear
from ..source_info import where
from ._util import as_array, is_undefined
from .linalg import check_precision

__all__ = ["conv_general_dilated", "conv", "conv_transpose", "ConvDimensionNumbers",
           "conv_dimension_numbers", "reduce_window", "max_pool", "avg_pool", "sum_pool",
           "padtype_to_pads", "conv_general_dilated_p", "reduce_window_sum_p",
           "reduce_window_max_p", "reduce_window_min_p", "reduce_window_prod_p",
           "reduce_window_and_p", "reduce_window_or_p", "reduce_window_xor_p",
           "select_and_gather_add_p", "select_and_scatter_add_p"]


def _lax():
    from .. import lax
    return lax


# =============================================================================================
# Dimension numbers and padding
# =============================================================================================

class ConvDimensionNumbers(tuple):
    """`(lhs_spec, rhs_spec, out_spec)`: for each operand the axis of (batch or out-feature,
    feature or in-feature, *spatial)."""

    def __new__(cls, lhs_spec, rhs_spec, out_spec):
        return super().__new__(cls, (tuple(lhs_spec), tuple(rhs_spec), tuple(out_spec)))

    lhs_spec = property(lambda self: self[0])
    rhs_spec = property(lambda self: self[1])
    out_spec = property(lambda self: self[2])

    def __repr__(self):
        return f"ConvDimensionNumbers(lhs_spec={self[0]}, rhs_spec={self[1]}, out_spec={self[2]})"


def conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers):
    """Normalise `dimension_numbers` (None, strings like ('NHWC', 'HWIO', 'NHWC'), or specs)."""
    nd = len(lhs_shape)
    if len(rhs_shape) != nd:
        raise TypeError(f"conv_general_dilated: lhs and rhs must have the same rank, got "
                        f"{len(lhs_shape)} and {len(rhs_shape)}")
    if nd < 3:
        raise TypeError(f"conv_general_dilated: operands must have rank >= 3 (batch, feature and "
                        f"at least one spatial dimension), got rank {nd}")
    if dimension_numbers is None:
        iota = tuple(range(nd))
        return ConvDimensionNumbers(iota, iota, iota)
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        return dimension_numbers
    if not isinstance(dimension_numbers, (tuple, list)) or len(dimension_numbers) != 3:
        raise TypeError("dimension_numbers must be None, a ConvDimensionNumbers or a triple of "
                        f"specs, got {dimension_numbers!r}")
    if all(isinstance(s, str) for s in dimension_numbers):
        lhs_s, rhs_s, out_s = dimension_numbers
        for s, name in zip(dimension_numbers, ("lhs", "rhs", "out")):
            if len(s) != nd:
                raise TypeError(f"conv_general_dilated: {name} spec {s!r} has {len(s)} letters for "
                                f"rank-{nd} operands")
        for s, pair in ((lhs_s, "NC"), (rhs_s, "OI"), (out_s, "NC")):
            if any(s.count(ch) != 1 for ch in pair):
                raise TypeError(f"conv_general_dilated: spec {s!r} must contain each of "
                                f"{pair[0]!r} and {pair[1]!r} exactly once")
        rhs_sp = [c for c in rhs_s if c not in "OI"]
        for s, pair in ((lhs_s, "NC"), (out_s, "NC")):
            sp = sorted(c for c in s if c not in pair)
            if sp != sorted(rhs_sp):
                raise TypeError(f"conv_general_dilated: spatial letters of {s!r} and {rhs_s!r} "
                                "differ")

        def perm(s, pair):
            sp = [i for i, c in enumerate(s) if c not in pair]
            if s is not rhs_s:
                sp = sorted(sp, key=lambda i: rhs_s.index(s[i]))
            return (s.index(pair[0]), s.index(pair[1])) + tuple(sp)
        return ConvDimensionNumbers(perm(lhs_s, "NC"), perm(rhs_s, "OI"), perm(out_s, "NC"))
    specs = [tuple(int(i) for i in s) for s in dimension_numbers]
    for s in specs:
        if sorted(s) != list(range(nd)):
            raise TypeError(f"conv_general_dilated: spec {s} is not a permutation of "
                            f"range({nd})")
    return ConvDimensionNumbers(*specs)


def padtype_to_pads(in_shape, window_shape, window_strides, padding):
    """'SAME' / 'SAME_LOWER' / 'VALID' -> explicit (lo, hi) pairs (JAX's rule)."""
    if not isinstance(padding, str):
        return tuple((int(lo), int(hi)) for lo, hi in padding)
    p = padding.upper()
    if p == "VALID":
        return tuple((0, 0) for _ in in_shape)
    if p in ("SAME", "SAME_LOWER"):
        pads = []
        for n, k, s in zip(in_shape, window_shape, window_strides):
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            lo = total // 2 if p == "SAME" else total - total // 2
            pads.append((lo, total - lo))
        return tuple(pads)
    raise ValueError(f"padding must be 'SAME', 'SAME_LOWER', 'VALID' or a sequence of (low, "
                     f"high) pairs, got {padding!r}")


def _dilate_dim(n, d):
    return 0 if n == 0 else 1 + d * (n - 1)


def _conv_out_size(n, k, s, lo, hi, ld, rd):
    padded = _dilate_dim(n, ld) + lo + hi
    eff = _dilate_dim(k, rd)
    return max(0, (padded - eff) // s + 1) if padded >= eff else 0


# =============================================================================================
# conv_general_dilated
# =============================================================================================

conv_general_dilated_p = Primitive("conv_general_dilated")


def _conv_shape(lhs_shape, rhs_shape, window_strides, padding, lhs_dilation, rhs_dilation,
                dimension_numbers, feature_group_count, batch_group_count):
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    n, c = lhs_shape[lhs_spec[0]], lhs_shape[lhs_spec[1]]
    o, i = rhs_shape[rhs_spec[0]], rhs_shape[rhs_spec[1]]
    g, bg = feature_group_count, batch_group_count
    if g < 1 or bg < 1:
        raise ValueError(f"conv_general_dilated: feature_group_count ({g}) and "
                         f"batch_group_count ({bg}) must be positive")
    if g > 1 and bg > 1:
        raise ValueError("conv_general_dilated: at most one of feature_group_count and "
                         "batch_group_count may exceed 1")
    if c != i * g:
        raise ShapeError(f"conv_general_dilated: lhs feature dimension {c} must equal rhs input "
                         f"feature dimension {i} times feature_group_count {g}{where()}")
    if o % g or o % bg:
        raise ShapeError(f"conv_general_dilated: rhs output feature dimension {o} must be a "
                         f"multiple of the group count{where()}")
    if n % bg:
        raise ShapeError(f"conv_general_dilated: lhs batch dimension {n} must be a multiple of "
                         f"batch_group_count {bg}{where()}")
    sp = []
    for d, (ls, rs) in enumerate(zip(lhs_spec[2:], rhs_spec[2:])):
        sp.append(_conv_out_size(lhs_shape[ls], rhs_shape[rs], window_strides[d], padding[d][0],
                                 padding[d][1], lhs_dilation[d], rhs_dilation[d]))
    canon = [n // bg, o] + sp
    shape = [0] * len(lhs_shape)
    for pos, size in zip(out_spec, canon):
        shape[pos] = size
    return tuple(shape)


@conv_general_dilated_p.def_abstract_eval
def _conv_abstract(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                   dimension_numbers, feature_group_count, batch_group_count,
                   preferred_element_type):
    if lhs.dtype != rhs.dtype:
        raise TypeError(f"conv_general_dilated requires operands of the same dtype, got "
                        f"{lhs.dtype} and {rhs.dtype}")
    shape = _conv_shape(lhs.shape, rhs.shape, window_strides, padding, lhs_dilation,
                        rhs_dilation, dimension_numbers, feature_group_count, batch_group_count)
    return ShapedArray(shape, preferred_element_type or lhs.dtype)


def _pad_dilate_np(x, axes, lo_hi, dil, value=0):
    """Interior-dilate `x` along `axes` by `dil` and pad by (lo, hi) (negative crops)."""
    if all(d == 1 for d in dil) and all(lo == 0 and hi == 0 for lo, hi in lo_hi):
        return x
    shape = list(x.shape)
    inner = []
    for ax, d, (lo, hi) in zip(axes, dil, lo_hi):
        n = _dilate_dim(x.shape[ax], d)
        shape[ax] = n + max(lo, 0) + max(hi, 0)
        inner.append((ax, max(lo, 0), n, d))
    out = np.full(shape, value, dtype=x.dtype)
    idx = [slice(None)] * x.ndim
    for ax, start, n, d in inner:
        idx[ax] = slice(start, start + n, d)
    out[tuple(idx)] = x
    crop = [slice(None)] * x.ndim
    for ax, (lo, hi) in zip(axes, lo_hi):
        if lo < 0 or hi < 0:
            crop[ax] = slice(-min(lo, 0), shape[ax] - (-min(hi, 0)))
    return out[tuple(crop)]


_NP_BLOCK = 1 << 20         # elements of one patch-matrix block in the NumPy implementation


def _conv_gather(x, w, strides, pads, ld, rd, out_sp, g, bg):
    """im2col: patches (groups, rows, window*in) @ kernel (groups, window*in, out)."""
    n, c = x.shape[0], x.shape[-1]
    k_sp, i, o = w.shape[:-2], w.shape[-2], w.shape[-1]
    nsp = len(k_sp)
    xp = _pad_dilate_np(x, range(1, nsp + 1), pads, ld)
    if xp.strides[-1] != xp.itemsize:
        xp = np.ascontiguousarray(xp)
    sn, *ssp, sc = xp.strides
    kp, op = math.prod(k_sp), math.prod(out_sp)
    as_strided = np.lib.stride_tricks.as_strided
    sp_strides = tuple(s * st for s, st in zip(ssp, strides))
    k_strides = tuple(s * r for s, r in zip(ssp, rd))
    if g == 1 and bg == 1:
        view = as_strided(xp, (n,) + tuple(out_sp) + tuple(k_sp) + (c,),
                          (sn,) + sp_strides + k_strides + (sc,), writeable=False)
        per_image = op * kp * c
        if n * per_image <= _NP_BLOCK or per_image > _NP_BLOCK // 2:
            y = view.reshape(n * op, kp * c) @ w.reshape(kp * i, o)
            return y.reshape((n,) + tuple(out_sp) + (o,))
        # blocks of images: the patch matrix of a block stays in cache (no huge temporary)
        nbb = _NP_BLOCK // per_image
        y = np.empty((n * op, o), np.result_type(x, w))
        wm = w.reshape(kp * c, o)
        for b0 in range(0, n, nbb):
            blk = y[b0 * op:min(n, b0 + nbb) * op]
            np.matmul(view[b0:b0 + nbb].reshape(blk.shape[0], kp * c), wm, out=blk)
        return y.reshape((n,) + tuple(out_sp) + (o,))
    if g > 1:
        view = as_strided(xp, (g, n) + tuple(out_sp) + tuple(k_sp) + (i,),
                          (sc * i, sn) + sp_strides + k_strides + (sc,), writeable=False)
        patches = view.reshape(g, n * op, kp * i)
        wg = np.moveaxis(w.reshape(kp, i, g, o // g), 2, 0).reshape(g, kp * i, o // g)
        y = np.matmul(patches, wg)                         # (g, n*op, o/g)
        return np.moveaxis(y, 0, 1).reshape((n,) + tuple(out_sp) + (o,))
    nb = n // bg
    view = as_strided(xp, (bg, nb) + tuple(out_sp) + tuple(k_sp) + (c,),
                      (sn * nb, sn) + sp_strides + k_strides + (sc,), writeable=False)
    patches = view.reshape(bg, nb * op, kp * c)
    wb = np.moveaxis(w.reshape(kp * c, bg, o // bg), 1, 0)
    y = np.matmul(patches, wb)                             # (bg, nb*op, o/bg)
    return np.moveaxis(y, 0, 1).reshape((nb,) + tuple(out_sp) + (o,))


def _conv_scatter(x, w, pads, ld, rd, out_sp, g):
    """col2im (stride 1): products (rows, window, out) = x @ kernel, then each kernel offset's
    slab is added into the output at its (dilated) position."""
    n, c = x.shape[0], x.shape[-1]
    p_sp = x.shape[1:-1]
    k_sp, i, o = w.shape[:-2], w.shape[-2], w.shape[-1]
    kp, pp = math.prod(k_sp), math.prod(p_sp)
    og = o // g
    if g == 1:
        y = x.reshape(n * pp, c) @ np.moveaxis(w.reshape(kp, i, o), 1, 0).reshape(i, kp * o)
        y = y.reshape((1, n) + tuple(p_sp) + (kp, o))
    else:
        xg = np.moveaxis(x.reshape(n * pp, g, i), 1, 0)                  # (g, n*pp, i)
        wg = np.transpose(w.reshape(kp, i, g, og), (2, 1, 0, 3)).reshape(g, i, kp * og)
        y = np.matmul(xg, wg).reshape((g, n) + tuple(p_sp) + (kp, og))
    out = np.zeros((n,) + tuple(out_sp) + (g, og), dtype=y.dtype)
    for kk, k in enumerate(itertools.product(*[range(s) for s in k_sp])):
        src, dst = [], []
        for d in range(len(k_sp)):
            lo, l, r, p, on = pads[d][0], ld[d], rd[d], p_sp[d], out_sp[d]
            # input p lands at output o = p*l + lo - k*r
            pmin = max(0, -(-(k[d] * r - lo) // l))
            pmax = min(p - 1, (on - 1 + k[d] * r - lo) // l)
            if pmin > pmax:
                break
            src.append(slice(pmin, pmax + 1))
            o0 = pmin * l + lo - k[d] * r
            dst.append(slice(o0, o0 + (pmax - pmin) * l + 1, l))
        else:
            sl = y[(slice(None), slice(None)) + tuple(src) + (kk, slice(None))]
            out[(slice(None),) + tuple(dst)] += np.moveaxis(sl, 0, -2)
    return out.reshape((n,) + tuple(out_sp) + (o,))


def _conv_canonical(x, w, strides, pads, ld, rd, g, bg):
    n, c = x.shape[0], x.shape[-1]
    k_sp, o = w.shape[:-2], w.shape[-1]
    out_sp = tuple(_conv_out_size(x.shape[1 + d], k_sp[d], strides[d], pads[d][0], pads[d][1],
                                  ld[d], rd[d]) for d in range(len(k_sp)))
    if n == 0 or 0 in out_sp or c == 0 or o == 0 or 0 in k_sp:
        return np.zeros((n // bg,) + out_sp + (o,), dtype=np.result_type(x, w))
    kp = math.prod(k_sp)
    gather_cost = n * math.prod(out_sp) * kp * c
    if any(l > 1 for l in ld) or any(lo + hi for lo, hi in pads):
        gather_cost += math.prod(_dilate_dim(x.shape[1 + d], ld[d]) + pads[d][0] + pads[d][1]
                                 for d in range(len(k_sp))) * n * c
    scatter_cost = n * math.prod(x.shape[1:-1]) * kp * o
    if bg == 1 and all(s == 1 for s in strides) and scatter_cost < gather_cost:
        return _conv_scatter(x, w, pads, ld, rd, out_sp, g)
    return _conv_gather(x, w, strides, pads, ld, rd, out_sp, g, bg)


@conv_general_dilated_p.def_impl
def _conv_impl(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
               dimension_numbers, feature_group_count, batch_group_count, preferred_element_type):
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    lhs, rhs = np.asarray(lhs), np.asarray(rhs)
    if preferred_element_type is not None and lhs.dtype != preferred_element_type:
        # accumulate in the preferred type (int8 inputs must not wrap in int8)
        lhs, rhs = lhs.astype(preferred_element_type), rhs.astype(preferred_element_type)
    x = np.transpose(lhs, (lhs_spec[0],) + tuple(lhs_spec[2:]) + (lhs_spec[1],))
    w = np.transpose(rhs, tuple(rhs_spec[2:]) + (rhs_spec[1], rhs_spec[0]))
    y = _conv_canonical(x, w, window_strides, padding, lhs_dilation, rhs_dilation,
                        feature_group_count, batch_group_count)
    positions = (out_spec[0],) + tuple(out_spec[2:]) + (out_spec[1],)
    y = np.transpose(y, tuple(np.argsort(positions)))
    dt = preferred_element_type or lhs.dtype
    return y.astype(dt, copy=False)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None,
                         out_sharding=None):
    """General N-d convolution (jax.lax.conv_general_dilated).

    `padding`: 'SAME', 'SAME_LOWER', 'VALID' or a sequence of (low, high) pairs per spatial
    dimension. `lhs_dilation` dilates the input (a transposed convolution), `rhs_dilation` the
    kernel (atrous). `dimension_numbers`: None (NCHW / OIHW / NCHW), a triple of strings such
    as ('NHWC', 'HWIO', 'NHWC'), or a ConvDimensionNumbers. `out_sharding` is accepted (one
    device).
    """
    del out_sharding
    check_precision(precision)       # validated; the CPU computes at full precision
    lhs, rhs = as_array(lhs), as_array(rhs)
    la, ra = get_aval(lhs), get_aval(rhs)
    if la.dtype != ra.dtype:
        dt = np.result_type(la.dtype, ra.dtype)
        lax = _lax()
        lhs, rhs = lax.convert_element_type(lhs, dt), lax.convert_element_type(rhs, dt)
    dn = conv_dimension_numbers(la.shape, ra.shape, dimension_numbers)
    nsp = la.ndim - 2
    window_strides = tuple(int(s) for s in window_strides) if window_strides is not None \
        else (1,) * nsp
    lhs_dilation = (1,) * nsp if lhs_dilation is None else tuple(int(d) for d in lhs_dilation)
    rhs_dilation = (1,) * nsp if rhs_dilation is None else tuple(int(d) for d in rhs_dilation)
    for name, v in (("window_strides", window_strides), ("lhs_dilation", lhs_dilation),
                    ("rhs_dilation", rhs_dilation)):
        if len(v) != nsp:
            raise ValueError(f"conv_general_dilated: {name} {v} must have {nsp} entries (one per "
                             "spatial dimension)")
        if any(s < 1 for s in v):
            raise ValueError(f"conv_general_dilated: {name} must be positive, got {v}")
    if isinstance(padding, str):
        if any(d != 1 for d in lhs_dilation):
            # the string rules size the padding from the undilated input, which is not what a
            # transposed convolution needs (JAX refuses too): explicit pairs say what is meant
            raise ValueError(f"conv_general_dilated: padding {padding!r} cannot be used with "
                             f"lhs_dilation {lhs_dilation}; give explicit (low, high) pairs, or "
                             "use lax.conv_transpose")
        in_sp = [la.shape[d] for d in dn.lhs_spec[2:]]
        k_sp = [_dilate_dim(ra.shape[d], r) for d, r in zip(dn.rhs_spec[2:], rhs_dilation)]
        padding = padtype_to_pads(in_sp, k_sp, window_strides, padding)
    else:
        padding = tuple((int(lo), int(hi)) for lo, hi in padding)
        if len(padding) != nsp:
            raise ValueError(f"conv_general_dilated: padding {padding} must have {nsp} (low, high) "
                             "pairs")
    pet = None if preferred_element_type is None else np.dtype(preferred_element_type)
    # checked here as well as in the abstract rule: eager calls run the implementation
    # directly, which would return an empty or truncated result for inconsistent groups
    _conv_shape(la.shape, ra.shape, window_strides, padding, lhs_dilation, rhs_dilation, dn,
                int(feature_group_count), int(batch_group_count))
    return conv_general_dilated_p.bind(
        lhs, rhs, window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dn,
        feature_group_count=int(feature_group_count), batch_group_count=int(batch_group_count),
        preferred_element_type=pet)


def conv(lhs, rhs, window_strides, padding, precision=None, preferred_element_type=None):
    """NCHW / OIHW convolution without dilation (jax.lax.conv)."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, precision=precision,
                                preferred_element_type=preferred_element_type)


def _reshape_axis_out_of(src, size1, x):
    """Split axis `src` of `x` into (size1, rest), size1 major."""
    lax = _lax()
    shape = list(get_aval(x).shape)
    shape[src:src + 1] = [size1, shape[src] // size1]
    return lax.reshape(x, shape)


def _reshape_axis_into(src, dst, x):
    """Merge axis `src` into axis `dst` (numbered with `src` removed), `src` as the major part."""
    lax = _lax()
    shape = get_aval(x).shape
    perm = [i for i in range(len(shape)) if i != src]
    perm.insert(dst, src)
    x = lax.transpose(x, perm)
    new = [shape[i] for i in range(len(shape)) if i != src]
    new[dst] *= shape[src]
    return lax.reshape(x, new)


def _spec_transpose(spec):
    return (spec[1], spec[0]) + tuple(spec[2:])


def _vjp_lhs_padding(in_shape, window, strides, out_shape, padding, lhs_dil, rhs_dil):
    pads = []
    for n, k, s, o, (lo, _), ld, rd in zip(in_shape, window, strides, out_shape, padding,
                                            lhs_dil, rhs_dil):
        ld_n, rd_k, sd_o = _dilate_dim(n, ld), _dilate_dim(k, rd), _dilate_dim(o, s)
        before = rd_k - lo - 1
        after = ld_n + rd_k - 1 - sd_o - before
        pads.append((before, after))
    return tuple(pads)


def _vjp_rhs_padding(in_shape, window, strides, out_shape, padding, lhs_dil, rhs_dil):
    pads = []
    for n, k, s, o, (lo, _), ld, rd in zip(in_shape, window, strides, out_shape, padding,
                                            lhs_dil, rhs_dil):
        ld_n, rd_k, sd_o = _dilate_dim(n, ld), _dilate_dim(k, rd), _dilate_dim(o, s)
        hi = (sd_o - ld_n) + (rd_k - lo - 1)
        pads.append((lo, hi))
    return tuple(pads)


def _conv_transpose_lhs(ct, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                        dimension_numbers, feature_group_count, batch_group_count,
                        preferred_element_type):
    """Cotangent of the input: a convolution of `ct` with the flipped kernel."""
    lax = _lax()
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    ct_shape = get_aval(ct).shape
    lhs_shape, r = lhs.aval.shape, rhs
    g = feature_group_count
    if g > 1:
        r = _reshape_axis_out_of(rhs_spec[0], g, r)
        r = _reshape_axis_into(rhs_spec[0], rhs_spec[1], r)
    elif batch_group_count > 1:
        r = _reshape_axis_out_of(rhs_spec[0], batch_group_count, r)
        r = _reshape_axis_into(rhs_spec[0], rhs_spec[1], r)
        g = batch_group_count
    r_shape = get_aval(r).shape
    pads = _vjp_lhs_padding([lhs_shape[d] for d in lhs_spec[2:]],
                            [r_shape[d] for d in rhs_spec[2:]], window_strides,
                            [ct_shape[d] for d in out_spec[2:]], padding, lhs_dilation,
                            rhs_dilation)
    r = lax.rev(r, tuple(rhs_spec[2:]))
    out = conv_general_dilated_p.bind(
        ct, r, window_strides=lhs_dilation, padding=pads, lhs_dilation=window_strides,
        rhs_dilation=rhs_dilation,
        dimension_numbers=ConvDimensionNumbers(out_spec, _spec_transpose(rhs_spec), lhs_spec),
        feature_group_count=g, batch_group_count=1, preferred_element_type=None)
    if batch_group_count > 1:
        out = _reshape_axis_out_of(lhs_spec[1], batch_group_count, out)
        out = _reshape_axis_into(lhs_spec[1], lhs_spec[0], out)
    return _fit_shape(out, lhs_shape, lhs.aval.dtype)


def _conv_transpose_rhs(ct, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                        dimension_numbers, feature_group_count, batch_group_count,
                        preferred_element_type):
    """Cotangent of the kernel: a convolution of the input with `ct` (feature and batch
    groups swap roles)."""
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    ct_shape = get_aval(ct).shape
    rhs_shape = rhs.aval.shape
    lhs_shape = get_aval(lhs).shape
    g, bg = feature_group_count, batch_group_count
    if bg > 1:
        g, bg = bg, 1
    elif g > 1:
        g, bg = 1, g
    pads = _vjp_rhs_padding([lhs_shape[d] for d in lhs_spec[2:]],
                            [rhs_shape[d] for d in rhs_spec[2:]], window_strides,
                            [ct_shape[d] for d in out_spec[2:]], padding, lhs_dilation,
                            rhs_dilation)
    out = conv_general_dilated_p.bind(
        lhs, ct, window_strides=rhs_dilation, padding=pads, lhs_dilation=lhs_dilation,
        rhs_dilation=window_strides,
        dimension_numbers=ConvDimensionNumbers(_spec_transpose(lhs_spec),
                                               _spec_transpose(out_spec),
                                               _spec_transpose(rhs_spec)),
        feature_group_count=g, batch_group_count=bg, preferred_element_type=None)
    return _fit_shape(out, rhs_shape, rhs.aval.dtype)


defbilinear(conv_general_dilated_p, _conv_transpose_lhs, _conv_transpose_rhs)


def _fit_shape(x, shape, dtype):
    """The transposed convolution can come out short where strided windows never reached the
    end of the input: pad with zeros (those positions get no cotangent)."""
    lax = _lax()
    a = get_aval(x)
    if a.shape != tuple(shape):
        if any(s > t for s, t in zip(a.shape, shape)):
            x = lax.slice(x, (0,) * len(shape), tuple(min(s, t) for s, t in zip(a.shape, shape)))
            a = get_aval(x)
        x = lax.pad(x, np.zeros((), a.dtype), [(0, t - s, 0) for s, t in zip(a.shape, shape)])
    if get_aval(x).dtype != dtype:
        x = lax.convert_element_type(x, dtype)
    return x


@conv_general_dilated_p.def_batch
def _conv_batch(args, dims, *, window_strides, padding, lhs_dilation, rhs_dilation,
                dimension_numbers, feature_group_count, batch_group_count,
                preferred_element_type):
    lhs, rhs = args
    ld, rd = dims
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    g, bg = feature_group_count, batch_group_count
    params = dict(window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
                  rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                  preferred_element_type=preferred_element_type)

    def bind(l, r, g, bg):
        return conv_general_dilated_p.bind(l, r, feature_group_count=g, batch_group_count=bg,
                                           **params)

    if ld is not None and rd is not None:
        size = get_aval(lhs).shape[ld]
        if bg > 1:
            new_lhs = _reshape_axis_into(ld, lhs_spec[0], lhs)
            bg *= size
        else:
            new_lhs = _reshape_axis_into(ld, lhs_spec[1], lhs)
            g *= size
        new_rhs = _reshape_axis_into(rd, rhs_spec[0], rhs)
        out = bind(new_lhs, new_rhs, g, bg)
        return _reshape_axis_out_of(out_spec[1], size, out), out_spec[1]
    if ld is not None:
        size = get_aval(lhs).shape[ld]
        if bg == 1:
            new_lhs = _reshape_axis_into(ld, lhs_spec[0], lhs)
        else:
            new_lhs = _reshape_axis_out_of(lhs_spec[0] + int(ld <= lhs_spec[0]), bg, lhs)
            new_lhs = _reshape_axis_into(ld + int(lhs_spec[0] < ld), lhs_spec[0] + 1, new_lhs)
            new_lhs = _reshape_axis_into(lhs_spec[0], lhs_spec[0], new_lhs)
        out = bind(new_lhs, rhs, g, bg)
        return _reshape_axis_out_of(out_spec[0], size, out), out_spec[0]
    size = get_aval(rhs).shape[rd]
    if g == 1 and bg == 1:
        new_rhs = _reshape_axis_into(rd, rhs_spec[0], rhs)
        out = bind(lhs, new_rhs, g, bg)
        return _reshape_axis_out_of(out_spec[1], size, out), out_spec[1]
    groups = g if g > 1 else bg
    new_rhs = _reshape_axis_out_of(rhs_spec[0] + int(rd <= rhs_spec[0]), groups, rhs)
    new_rhs = _reshape_axis_into(rd + int(rhs_spec[0] < rd), rhs_spec[0] + 1, new_rhs)
    new_rhs = _reshape_axis_into(rhs_spec[0], rhs_spec[0], new_rhs)
    out = bind(lhs, new_rhs, g, bg)
    out = _reshape_axis_out_of(out_spec[1], groups, out)
    out = _reshape_axis_out_of(out_spec[1] + 1, size, out)
    out = _reshape_axis_into(out_spec[1], out_spec[1] + 1, out)
    return out, out_spec[1]


def conv_transpose(lhs, rhs, strides, padding, rhs_dilation=None, dimension_numbers=None,
                   transpose_kernel=False, precision=None, preferred_element_type=None,
                   use_consistent_padding=False):
    """Transposed ("deconvolution") convolution via input dilation (jax.lax.conv_transpose).

    'SAME'/'VALID' `padding` name the forward convolution's padding; (low, high) pairs are
    the transposed convolution's own, unless `use_consistent_padding`, which reads them as
    the forward convolution's too (each side then gets `window - 1 - pad`: the result is the
    gradient of the forward `conv_general_dilated` with those pads, as PyTorch's)."""
    check_precision(precision)
    lhs, rhs = as_array(lhs), as_array(rhs)
    la, ra = get_aval(lhs), get_aval(rhs)
    nsp = la.ndim - 2
    if dimension_numbers is None:
        dimension_numbers = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"),
                             3: ("NHWDC", "HWDIO", "NHWDC")}.get(nsp)
    dn = conv_dimension_numbers(la.shape, ra.shape, dimension_numbers)
    k_sp = [ra.shape[d] for d in dn.rhs_spec[2:]]
    rhs_dilation = (1,) * nsp if rhs_dilation is None else tuple(rhs_dilation)
    eff = [_dilate_dim(k, r) for k, r in zip(k_sp, rhs_dilation)]
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"conv_transpose: unknown padding {padding!r}")
        pads = []
        for k, s in zip(eff, strides):
            if padding.upper() == "SAME":       # output size: input * stride
                pad_len = k + s - 2
                lo = k - 1 if s > k - 1 else -(-pad_len // 2)
            else:                               # output size: (input - 1) * stride + window
                pad_len = k + s - 2 + max(k - s, 0)
                lo = k - 1
            pads.append((lo, pad_len - lo))
    elif use_consistent_padding:
        pads = tuple((k - 1 - int(lo), k - 1 - int(hi)) for k, (lo, hi) in zip(eff, padding))
    else:
        pads = tuple(padding)
    if transpose_kernel:
        lax = _lax()
        rhs = lax.rev(rhs, tuple(dn.rhs_spec[2:]))
        perm = list(range(ra.ndim))
        perm[dn.rhs_spec[0]], perm[dn.rhs_spec[1]] = perm[dn.rhs_spec[1]], perm[dn.rhs_spec[0]]
        rhs = lax.transpose(rhs, perm)
    return conv_general_dilated(lhs, rhs, (1,) * nsp, pads, lhs_dilation=strides,
                                rhs_dilation=rhs_dilation, dimension_numbers=dn,
                                preferred_element_type=preferred_element_type)


# =============================================================================================
# Windowed reductions
# =============================================================================================

def _window_geometry(shape, window_dimensions, window_strides, padding, base_dilation,
                     window_dilation):
    out = []
    for n, k, s, (lo, hi), bd, wd in zip(shape, window_dimensions, window_strides, padding,
                                         base_dilation, window_dilation):
        padded = _dilate_dim(n, bd) + lo + hi
        eff = _dilate_dim(k, wd)
        out.append(max(0, (padded - eff) // s + 1) if padded >= eff else 0)
    return tuple(out)


def _window_slices(out_shape, window_dimensions, window_strides, window_dilation):
    """For every offset in the window, the strided slice of the padded operand it reads."""
    for k in itertools.product(*[range(w) for w in window_dimensions]):
        yield k, tuple(slice(ki * wd, ki * wd + (o - 1) * s + 1, s) if o > 0 else slice(0, 0)
                       for ki, wd, o, s in zip(k, window_dilation, out_shape, window_strides))


def _identity(kind, dtype):
    dtype = np.dtype(dtype)
    if kind in ("sum", "or", "xor"):
        return np.zeros((), dtype)
    if kind == "prod":
        return np.ones((), dtype)
    if kind == "and":
        return np.asarray(True if dtype == np.bool_ else ~np.zeros((), dtype), dtype)
    if np.issubdtype(dtype, np.floating):
        return np.asarray(-np.inf if kind == "max" else np.inf, dtype)
    if dtype == np.bool_:
        return np.asarray(kind != "max", dtype)
    info = np.iinfo(dtype)
    return np.asarray(info.min if kind == "max" else info.max, dtype)


def _rw_abstract(x, *, window_dimensions, window_strides, padding, base_dilation,
                 window_dilation):
    if len(window_dimensions) != x.ndim:
        raise ShapeError(f"reduce_window: window_dimensions {window_dimensions} must have one "
                         f"entry per operand dimension (rank {x.ndim})")
    return ShapedArray(_window_geometry(x.shape, window_dimensions, window_strides, padding,
                                        base_dilation, window_dilation), x.dtype)


def _padded(x, value, padding, base_dilation):
    x = np.asarray(x)
    return _pad_dilate_np(x, range(x.ndim), padding, base_dilation, value)


def _make_reduce_window(kind, combine):
    p = Primitive(f"reduce_window_{kind}")

    @p.def_impl
    def impl(x, *, window_dimensions, window_strides, padding, base_dilation, window_dilation):
        x = np.asarray(x)
        init = _identity(kind, x.dtype)
        xp = _padded(x, init, padding, base_dilation)
        out_shape = _window_geometry(x.shape, window_dimensions, window_strides, padding,
                                     base_dilation, window_dilation)
        acc = None
        for _, sl in _window_slices(out_shape, window_dimensions, window_strides,
                                    window_dilation):
            v = xp[sl]
            acc = np.array(v, copy=True) if acc is None else combine(acc, v, out=acc)
        if acc is None:
            acc = np.full(out_shape, init, x.dtype)
        return acc

    p.def_abstract_eval(_rw_abstract)

    @p.def_batch
    def batch(args, dims, **params):
        (x,), (d,) = args, dims
        return p.bind(x, **_insert_window_dim(params, d)), d

    return p


def _insert_window_dim(params, d):
    new = dict(params)
    for k, v in (("window_dimensions", 1), ("window_strides", 1), ("padding", (0, 0)),
                 ("base_dilation", 1), ("window_dilation", 1)):
        t = list(params[k])
        t.insert(d, v)
        new[k] = tuple(t)
    return new


reduce_window_sum_p = _make_reduce_window("sum", np.add)
reduce_window_max_p = _make_reduce_window("max", np.maximum)
reduce_window_min_p = _make_reduce_window("min", np.minimum)
# general monoid reducers (jax.lax.reduce_window with lax.mul / bitwise_and / or / xor): eager,
# vmap and jit; not differentiable (JAX raises on differentiating a general reducer too)
reduce_window_prod_p = _make_reduce_window("prod", np.multiply)
reduce_window_and_p = _make_reduce_window("and", np.bitwise_and)
reduce_window_or_p = _make_reduce_window("or", np.bitwise_or)
reduce_window_xor_p = _make_reduce_window("xor", np.bitwise_xor)


def _not_differentiable(p, what):
    def rule(primals, tangents, **params):
        raise TypeError(f"reduce_window with computation={what} is not differentiable (as in "
                        "JAX: only lax.add, lax.max and lax.min window reductions have "
                        "derivatives)")
    p.def_jvp(rule)


for _p, _what in ((reduce_window_prod_p, "lax.mul"), (reduce_window_and_p, "lax.bitwise_and"),
                  (reduce_window_or_p, "lax.bitwise_or"),
                  (reduce_window_xor_p, "lax.bitwise_xor")):
    _not_differentiable(_p, _what)


deflinear(reduce_window_sum_p)


@reduce_window_sum_p.def_transpose
def _rw_sum_transpose(ct, x, *, window_dimensions, window_strides, padding, base_dilation,
                      window_dilation):
    lax = _lax()
    in_shape = x.aval.shape
    ct_shape = get_aval(ct).shape
    pads = _vjp_lhs_padding(in_shape, window_dimensions, window_strides, ct_shape, padding,
                            base_dilation, window_dilation)
    cfg = [(lo, hi, s - 1) for (lo, hi), s in zip(pads, window_strides)]
    padded = lax.pad(ct, np.zeros((), get_aval(ct).dtype), cfg)
    ones = (1,) * len(in_shape)
    out = reduce_window_sum_p.bind(padded, window_dimensions=tuple(window_dimensions),
                                   window_strides=tuple(base_dilation),
                                   padding=((0, 0),) * len(in_shape), base_dilation=ones,
                                   window_dilation=tuple(window_dilation))
    return [_fit_shape(out, in_shape, x.aval.dtype)]


def _chooser_jvp(p, select_max):
    def rule(primals, tangents, **params):
        x, = primals
        t, = tangents
        out = p.bind(x, **params)
        if not select_max:       # min pooling: the argmin of x is the argmax of -x
            x = _lax().neg(x)
        return out, select_and_gather_add_p.bind(t, x, **params)
    return rule


# select_and_gather_add(t, x): per window, t at x's argmax (first one on ties)
select_and_gather_add_p = Primitive("select_and_gather_add")
# select_and_scatter_add(s, x): s[o] added at the argmax position of x in window o
select_and_scatter_add_p = Primitive("select_and_scatter_add")

reduce_window_max_p.def_jvp(_chooser_jvp(reduce_window_max_p, True))
reduce_window_min_p.def_jvp(_chooser_jvp(reduce_window_min_p, False))


def _argmax_windows(x, padding, base_dilation, window_dimensions, window_strides,
                    window_dilation):
    x = np.asarray(x)
    xp = _padded(x, _identity("max", x.dtype), padding, base_dilation)
    out_shape = _window_geometry(x.shape, window_dimensions, window_strides, padding,
                                 base_dilation, window_dilation)
    best = idx = None
    for kk, (_, sl) in enumerate(_window_slices(out_shape, window_dimensions, window_strides,
                                                window_dilation)):
        v = xp[sl]
        if best is None:
            best = np.array(v, copy=True)
            idx = np.zeros(out_shape, np.int32)
        else:
            m = v > best
            np.copyto(best, v, where=m)
            idx[m] = kk
    return idx, out_shape


@select_and_gather_add_p.def_impl
def _sga_impl(t, x, **params):
    idx, out_shape = _argmax_windows(x, params["padding"], params["base_dilation"],
                                     params["window_dimensions"], params["window_strides"],
                                     params["window_dilation"])
    t = np.asarray(t)
    tp = _padded(t, np.zeros((), t.dtype), params["padding"], params["base_dilation"])
    out = np.zeros(out_shape, t.dtype)
    for kk, (_, sl) in enumerate(_window_slices(out_shape, params["window_dimensions"],
                                                params["window_strides"],
                                                params["window_dilation"])):
        np.copyto(out, tp[sl], where=idx == kk)
    return out


@select_and_gather_add_p.def_abstract_eval
def _sga_abstract(t, x, **params):
    if t.shape != x.shape:
        raise ShapeError(f"select_and_gather_add: shapes {t.shape} and {x.shape} differ")
    return _rw_abstract(t, **params)


@select_and_scatter_add_p.def_impl
def _ssa_impl(s, x, **params):
    x = np.asarray(x)
    s = np.asarray(s)
    idx, out_shape = _argmax_windows(x, params["padding"], params["base_dilation"],
                                     params["window_dimensions"], params["window_strides"],
                                     params["window_dilation"])
    # accumulate into the padded, dilated frame, then cut the operand's positions out of it
    lo_hi = params["padding"]
    bd = params["base_dilation"]
    full_shape = tuple(_dilate_dim(n, d) + max(lo, 0) + max(hi, 0)
                       for n, d, (lo, hi) in zip(x.shape, bd, lo_hi))
    full = np.zeros(full_shape, s.dtype)
    crop = tuple(slice(-min(lo, 0), n - (-min(hi, 0))) for n, (lo, hi) in zip(full_shape, lo_hi))
    frame = full[crop]
    zero = np.zeros((), s.dtype)
    for kk, (_, sl) in enumerate(_window_slices(out_shape, params["window_dimensions"],
                                                params["window_strides"],
                                                params["window_dilation"])):
        frame[sl] += np.where(idx == kk, s, zero)
    take = tuple(slice(max(lo, 0), max(lo, 0) + _dilate_dim(n, d), d)
                 for n, d, (lo, hi) in zip(x.shape, bd, lo_hi))
    return np.ascontiguousarray(full[take])


@select_and_scatter_add_p.def_abstract_eval
def _ssa_abstract(s, x, **params):
    out = _rw_abstract(x, **params)
    if s.shape != out.shape:
        raise ShapeError(f"select_and_scatter_add: source shape {s.shape} != window output "
                         f"shape {out.shape}")
    return ShapedArray(x.shape, s.dtype)


# linear in the values; the selector operand only chooses where they go
deflinear(select_and_gather_add_p, linear_argnums=(0,))
deflinear(select_and_scatter_add_p, linear_argnums=(0,))


@select_and_gather_add_p.def_transpose
def _sga_transpose(ct, t, x, **params):
    if is_undefined(x):
        raise TypeError("select_and_gather_add is not linear in its selector operand")
    return [select_and_scatter_add_p.bind(ct, x, **params), None]


@select_and_scatter_add_p.def_transpose
def _ssa_transpose(ct, s, x, **params):
    if is_undefined(x):
        raise TypeError("select_and_scatter_add is not linear in its selector operand")
    return [select_and_gather_add_p.bind(ct, x, **params), None]


def _two_operand_batch(p):
    def rule(args, dims, **params):
        size = B.batch_size(args, dims)
        d = next(d for d in dims if d is not None)
        a, b = [v if dv == d else B.move_dim(v, dv, d, size) for v, dv in zip(args, dims)]
        return p.bind(a, b, **_insert_window_dim(params, d)), d
    return rule


select_and_gather_add_p.def_batch(_two_operand_batch(select_and_gather_add_p))
select_and_scatter_add_p.def_batch(_two_operand_batch(select_and_scatter_add_p))


# ---------------------------------------------------------------------------------------------
# User-facing window reductions
# ---------------------------------------------------------------------------------------------

def _window_params(shape, window_dimensions, window_strides, padding, base_dilation,
                   window_dilation):
    nd = len(shape)
    wdims = tuple(int(w) for w in window_dimensions)
    strides = tuple(int(s) for s in window_strides) if window_strides is not None else (1,) * nd
    bd = (1,) * nd if base_dilation is None else tuple(int(d) for d in base_dilation)
    wd = (1,) * nd if window_dilation is None else tuple(int(d) for d in window_dilation)
    for name, v in (("window_dimensions", wdims), ("window_strides", strides),
                    ("base_dilation", bd), ("window_dilation", wd)):
        if len(v) != nd:
            raise ValueError(f"reduce_window: {name} {v} must have {nd} entries (the operand's "
                             "rank)")
    if isinstance(padding, str):
        pads = padtype_to_pads([_dilate_dim(n, d) for n, d in zip(shape, bd)],
                               [_dilate_dim(k, d) for k, d in zip(wdims, wd)], strides, padding)
    else:
        pads = tuple((int(lo), int(hi)) for lo, hi in padding)
        if len(pads) != nd:
            raise ValueError(f"reduce_window: padding {pads} must have {nd} (low, high) pairs")
    return dict(window_dimensions=wdims, window_strides=strides, padding=pads,
                base_dilation=bd, window_dilation=wd)


def _is_value(x, v):
    try:
        return bool(np.all(np.asarray(x) == v))
    except Exception:  # noqa: BLE001 - a traced init value
        return False


def reduce_window(operand, init_value, computation, window_dimensions, window_strides=None,
                  padding="VALID", base_dilation=None, window_dilation=None):
    """Reduce each window of `operand` with `computation` (lax.add, lax.max, lax.min, lax.mul,
    lax.bitwise_and/or/xor), as jax.lax.reduce_window: every window starts from `init_value`
    and combines its real elements (padding positions and dilation holes add nothing)."""
    from .. import tree as tree_util
    from . import elementwise as E
    lax = _lax()
    if tree_util.structure(operand).num_leaves != 1:
        raise NotImplementedError("reduce_window over a pytree of operands is not supported")
    x = as_array(operand)
    a = get_aval(x)
    params = _window_params(a.shape, window_dimensions, window_strides, padding, base_dilation,
                            window_dilation)
    name = getattr(computation, "__name__", "")
    kind = {"add": "sum", "max": "max", "min": "min", "maximum": "max", "minimum": "min",
            "mul": "prod", "multiply": "prod", "bitwise_and": "and", "bitwise_or": "or",
            "bitwise_xor": "xor", "logical_and": "and", "logical_or": "or",
            "logical_xor": "xor"}.get(name)
    if computation in (E.add, lax.add):
        kind = "sum"
    elif computation in (E.max, lax.max):
        kind = "max"
    elif computation in (E.min, lax.min):
        kind = "min"
    else:
        for fn_name, k in (("mul", "prod"), ("bitwise_and", "and"), ("bitwise_or", "or"),
                           ("bitwise_xor", "xor")):
            if computation is getattr(lax, fn_name, None):
                kind = k
    if kind is None:
        raise NotImplementedError(
            "reduce_window supports computation=lax.add, lax.max, lax.min, lax.mul, "
            f"lax.bitwise_and, lax.bitwise_or or lax.bitwise_xor; got {computation!r}")
    dt = np.dtype(a.dtype)
    if kind in ("and", "or", "xor") and dt.kind not in "biu":
        raise TypeError(f"reduce_window with lax.bitwise_{kind} needs an integer or boolean "
                        f"operand, got {dt}")
    if kind in ("and", "or", "xor") and dt == np.bool_:
        kind = {"and": "min", "or": "max"}.get(kind, kind)   # differentiable-free either way
    prim = {"sum": reduce_window_sum_p, "max": reduce_window_max_p,
            "min": reduce_window_min_p, "prod": reduce_window_prod_p,
            "and": reduce_window_and_p, "or": reduce_window_or_p,
            "xor": reduce_window_xor_p}[kind]
    out = prim.bind(x, **params)
    # JAX's (XLA's) semantics: each window starts from init_value and combines the window's
    # real elements (padding and dilation holes contribute nothing), so a non-identity
    # init_value is combined once into every output
    ident = _identity(kind, a.dtype)
    if _is_value(init_value, ident) or (kind == "max" and _is_value(
            init_value, np.finfo(a.dtype).min if np.issubdtype(a.dtype, np.floating) else ident)):
        return out
    init = init_value if hasattr(init_value, "aval") else np.asarray(init_value, a.dtype)
    combine = {"sum": lax.add, "max": lax.max, "min": lax.min, "prod": lax.mul,
               "and": lax.bitwise_and, "or": lax.bitwise_or, "xor": lax.bitwise_xor}[kind]
    return combine(out, init)


def _pool_params(x, window_shape, strides, padding):
    a = get_aval(x)
    nsp = len(window_shape)
    if a.ndim < nsp + 1:
        raise ValueError(f"pooling window {tuple(window_shape)} needs inputs of rank >= "
                         f"{nsp + 1} (batch..., spatial..., features), got {a.shape}")
    lead = a.ndim - nsp - 1
    strides = tuple(window_shape) if strides is None else tuple(strides)
    wd = (1,) * lead + tuple(window_shape) + (1,)
    st = (1,) * lead + strides + (1,)
    if isinstance(padding, str):
        pad = padding
    else:
        pad = ((0, 0),) * lead + tuple(tuple(p) for p in padding) + ((0, 0),)
    return wd, st, pad


def max_pool(x, window_shape, strides=None, padding="VALID"):
    """Max pooling over the spatial axes of `x` shaped (batch..., *spatial, features), as
    flax.linen.max_pool (strides default to the window: non-overlapping windows)."""
    x = as_array(x)
    wd, st, pad = _pool_params(x, window_shape, strides, padding)
    return reduce_window(x, -np.inf, _lax().max, wd, st, pad)


def sum_pool(x, window_shape, strides=None, padding="VALID"):
    """Sum over each window of the spatial axes (see `max_pool`)."""
    x = as_array(x)
    wd, st, pad = _pool_params(x, window_shape, strides, padding)
    return reduce_window(x, 0, _lax().add, wd, st, pad)


def avg_pool(x, window_shape, strides=None, padding="VALID", count_include_pad=True):
    """Average pooling (see `max_pool`); with 'SAME' padding and `count_include_pad=False`
    only the real elements of each window are counted."""
    lax = _lax()
    x = as_array(x)
    a = get_aval(x)
    y = sum_pool(x, window_shape, strides, padding)
    if count_include_pad or (isinstance(padding, str) and padding.upper() == "VALID"):
        return lax.div(y, np.asarray(math.prod(window_shape), a.dtype))
    lead = a.ndim - len(window_shape) - 1
    ones = np.ones((1,) * lead + a.shape[lead:], a.dtype)
    counts = sum_pool(ones, window_shape, strides, padding)
    return lax.div(y, counts)
