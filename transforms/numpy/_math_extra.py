"""More of NumPy's math, written over the core `tnp` functions (so each one differentiates,
batches and compiles through them): elementwise helpers, NaN-ignoring reductions, weighted
averages and covariance, finite differences, products of vectors and polynomials."""
from __future__ import annotations

import operator

import numpy as np

from .. import lax
from ..core import Tracer, get_aval
from . import _ops, _shape_ops
from ._ops import (asarray, isnan, logical_and, logical_not, logical_or, multiply, sqrt,
                   subtract, where)
from ._promote import result_type
from ._shape_ops import concatenate, moveaxis, reshape, stack


def _float(x):
    x = asarray(x)
    dt = get_aval(x).dtype
    return x if np.issubdtype(dt, np.inexact) else _ops.astype(x, result_type(dt, 1.0))


# ---------------------------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------------------------

def arccosh(x):
    """`numpy.arccosh`: log(x + sqrt(x - 1) sqrt(x + 1)) (NaN below 1)."""
    x = _float(x)
    return _ops.log(x + sqrt(x - 1) * sqrt(x + 1))


def _scaled(x, num, den):
    # NumPy's loops multiply by the ratio computed in the operand's own precision
    x = _float(x)
    dt = get_aval(x).dtype
    return x * (np.asarray(num, dt) / np.asarray(den, dt))


def degrees(x):
    """`numpy.degrees` (= rad2deg)."""
    return _scaled(x, 180.0, np.pi)


rad2deg = degrees


def radians(x):
    """`numpy.radians` (= deg2rad)."""
    return _scaled(x, np.pi, 180.0)


def fabs(x):
    """`numpy.fabs`: absolute value as a float."""
    return _ops.abs(_float(x))


def fmax(x1, x2):
    """`numpy.fmax`: the maximum, ignoring a NaN when the other value is not NaN."""
    m = _ops.maximum(x1, x2)            # NumPy's promotion, Python scalars weak (NEP 50)
    dt = get_aval(m).dtype
    a, b = _ops.astype(asarray(x1), dt), _ops.astype(asarray(x2), dt)
    return where(isnan(a), b, where(isnan(b), a, m)) if _inexact(m) else m


def fmin(x1, x2):
    """`numpy.fmin`: the minimum, ignoring a NaN when the other value is not NaN."""
    m = _ops.minimum(x1, x2)            # NumPy's promotion, Python scalars weak (NEP 50)
    dt = get_aval(m).dtype
    a, b = _ops.astype(asarray(x1), dt), _ops.astype(asarray(x2), dt)
    return where(isnan(a), b, where(isnan(b), a, m)) if _inexact(m) else m


def _inexact(x):
    return np.issubdtype(get_aval(x).dtype, np.inexact)


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """`numpy.nan_to_num`: NaN -> `nan`, +-inf -> the largest finite values (or the given)."""
    x = asarray(x)
    if not _inexact(x):
        return x
    fi = np.finfo(get_aval(x).dtype)
    hi = fi.max if posinf is None else posinf
    lo = fi.min if neginf is None else neginf
    x = where(isnan(x), nan, x)
    x = where(_ops.equal(x, np.inf), hi, x)
    return where(_ops.equal(x, -np.inf), lo, x)


def signbit(x):
    """`numpy.signbit`: True where the sign bit is set (including -0.0 and -nan)."""
    x = asarray(x)
    dt = get_aval(x).dtype
    if dt.kind == "b" or dt.kind == "u":
        return _ops.zeros_like(x, dtype=bool)
    if dt.kind == "i":
        return _ops.less(x, 0)
    bits = {2: np.int16, 4: np.int32, 8: np.int64}[dt.itemsize]
    from ..random import bitcast_convert_type
    return _ops.less(bitcast_convert_type(x, bits), 0)


def copysign(x1, x2):
    """`numpy.copysign`: |x1| with the sign bit of x2."""
    a = _float(x1)
    return where(signbit(x2), -_ops.abs(a), _ops.abs(a))


def isposinf(x):
    """`numpy.isposinf`."""
    return _ops.equal(asarray(x), np.inf)


def isneginf(x):
    """`numpy.isneginf`."""
    return _ops.equal(asarray(x), -np.inf)


def fix(x):
    """`numpy.fix`: round towards zero."""
    return _ops.trunc(x)


def isreal(x):
    """`numpy.isreal`: the imaginary part is zero (always True for real dtypes)."""
    x = asarray(x)
    if get_aval(x).dtype.kind == "c":
        return lax.eq(lax.imag(x), lax.zeros_like_aval(get_aval(lax.imag(x))))
    return _ops.ones_like(x, dtype=bool)


def iscomplex(x):
    """`numpy.iscomplex`: the imaginary part is nonzero (always False for real dtypes)."""
    x = asarray(x)
    if get_aval(x).dtype.kind == "c":
        return lax.ne(lax.imag(x), lax.zeros_like_aval(get_aval(lax.imag(x))))
    return _ops.zeros_like(x, dtype=bool)


def angle(z, deg=False):
    """`numpy.angle`: the argument atan2(imag, real), in degrees with `deg`."""
    z = asarray(z)
    dt = get_aval(z).dtype
    if dt.kind == "c":
        re, im = lax.real(z), lax.imag(z)
    else:
        re = z if dt.kind == "f" else lax.convert_element_type(z, np.float64)
        im = lax.zeros_like_aval(get_aval(re))
    out = lax.atan2(im, re)
    if deg:
        rdt = get_aval(out).dtype
        out = lax.mul(out, lax.full(get_aval(out).shape, np.asarray(180.0 / np.pi, rdt), rdt))
    return out


# ---------------------------------------------------------------------------------------------
# NaN-ignoring reductions
# ---------------------------------------------------------------------------------------------

def _nan_filled(a, fill):
    a = asarray(a)
    return where(isnan(a), fill, a) if _inexact(a) else a


def _optional(**kw):
    """Keyword arguments that were given (so reductions without them are called plainly)."""
    return {k: v for k, v in kw.items() if v is not None}


def nansum(a, axis=None, dtype=None, keepdims=False, initial=None, where=None):
    """`numpy.nansum`: NaNs count as zero."""
    return _ops.sum(_nan_filled(a, 0), axis=axis, dtype=dtype, keepdims=keepdims,
                    **_optional(initial=initial, where=where))


def nanprod(a, axis=None, dtype=None, keepdims=False, initial=None, where=None):
    """`numpy.nanprod`: NaNs count as one."""
    return _ops.prod(_nan_filled(a, 1), axis=axis, dtype=dtype, keepdims=keepdims,
                     **_optional(initial=initial, where=where))


def _count(a, axis, keepdims, dtype):
    return _ops.sum(logical_not(isnan(a)), axis=axis, keepdims=keepdims, dtype=dtype)


def nanmean(a, axis=None, dtype=None, keepdims=False):
    """`numpy.nanmean`: the mean of the non-NaN values (NaN where there are none)."""
    a = _float(a)
    dt = get_aval(a).dtype if dtype is None else np.dtype(dtype)
    return nansum(a, axis, dt, keepdims) / _count(a, axis, keepdims, dt)


def nanvar(a, axis=None, dtype=None, keepdims=False, ddof=0):
    """`numpy.nanvar`."""
    a = _float(a)
    dt = get_aval(a).dtype if dtype is None else np.dtype(dtype)
    mu = nanmean(a, axis, dt, keepdims=True)
    d = _nan_filled(a - mu, 0)
    n = _count(a, axis, keepdims, dt)
    return _ops.sum(d * d, axis=axis, dtype=dt, keepdims=keepdims) / _ops.maximum(n - ddof, 0)


def nanstd(a, axis=None, dtype=None, keepdims=False, ddof=0):
    """`numpy.nanstd`."""
    return sqrt(nanvar(a, axis, dtype, keepdims, ddof))


def _nan_extreme(a, axis, keepdims, reduce_fn, fill):
    a = asarray(a)
    if not _inexact(a):
        return reduce_fn(a, axis=axis, keepdims=keepdims)
    nan = isnan(a)
    out = reduce_fn(where(nan, fill, a), axis=axis, keepdims=keepdims)
    all_nan = _ops.all(nan, axis=axis, keepdims=keepdims)
    return where(all_nan, np.nan, out)


def nanmax(a, axis=None, out=None, keepdims=False):
    """`numpy.nanmax`: NaNs ignored; an all-NaN slice gives NaN."""
    return _nan_extreme(a, axis, keepdims, _ops.max, -np.inf)


def nanmin(a, axis=None, out=None, keepdims=False):
    """`numpy.nanmin`: NaNs ignored; an all-NaN slice gives NaN."""
    return _nan_extreme(a, axis, keepdims, _ops.min, np.inf)


def nanargmax(a, axis=None):
    """`numpy.nanargmax` (an all-NaN slice gives the index of its first element)."""
    return _ops.argmax(_nan_filled(a, -np.inf), axis=axis)


def nanargmin(a, axis=None):
    """`numpy.nanargmin`."""
    return _ops.argmin(_nan_filled(a, np.inf), axis=axis)


def nancumsum(a, axis=None, dtype=None):
    """`numpy.nancumsum`."""
    return _ops.cumsum(_nan_filled(a, 0), axis=axis, dtype=dtype)


def nancumprod(a, axis=None, dtype=None):
    """`numpy.nancumprod`."""
    return _ops.cumprod(_nan_filled(a, 1), axis=axis, dtype=dtype)


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    """`numpy.cumulative_sum` (array API): like cumsum, optionally starting with 0."""
    return _cumulative(_ops.cumsum, 0, x, axis, dtype, include_initial)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    """`numpy.cumulative_prod` (array API): like cumprod, optionally starting with 1."""
    return _cumulative(_ops.cumprod, 1, x, axis, dtype, include_initial)


def _cumulative(fn, identity, x, axis, dtype, include_initial):
    x = asarray(x)
    if axis is None:
        if get_aval(x).ndim > 1:
            raise ValueError("cumulative_sum/prod: axis is required for arrays of more than "
                             "one dimension")
        axis = 0
    out = fn(x, axis=axis, dtype=dtype)
    if include_initial:
        shape = list(get_aval(out).shape)
        shape[operator.index(axis)] = 1
        out = concatenate([_ops.full(shape, identity, get_aval(out).dtype), out], axis=axis)
    return out


def ptp(a, axis=None, keepdims=False):
    """`numpy.ptp`: max - min."""
    return subtract(_ops.max(a, axis=axis, keepdims=keepdims),
                    _ops.min(a, axis=axis, keepdims=keepdims))


def average(a, axis=None, weights=None, returned=False, keepdims=False):
    """`numpy.average`: the (weighted) mean; `returned=True` also gives the sum of weights."""
    a = asarray(a)
    if weights is None:
        avg = _ops.mean(a, axis=axis, keepdims=keepdims)
        if not returned:
            return avg
        n = np.prod([get_aval(a).shape[d] for d in _axes(axis, get_aval(a).ndim)]) \
            if get_aval(a).ndim else 1
        return avg, _ops.full_like(avg, n)
    w = asarray(weights)
    aa, wa = get_aval(a), get_aval(w)
    if aa.shape != wa.shape:
        if axis is None:
            raise TypeError("average: axis must be specified when shapes of a and weights "
                            "differ")
        if wa.ndim != 1:
            raise TypeError("average: 1-D weights expected when shapes of a and weights differ")
        ax = operator.index(axis) % aa.ndim
        if wa.shape[0] != aa.shape[ax]:
            raise ValueError("average: length of weights differs from that of the axis")
        w = lax.broadcast_in_dim(w, aa.shape, (ax,))
    dt = result_type(aa.dtype, wa.dtype, 1.0)
    a, w = _ops.astype(a, dt), _ops.astype(w, dt)
    scl = _ops.sum(w, axis=axis, keepdims=keepdims)
    avg = _ops.sum(multiply(a, w), axis=axis, keepdims=keepdims) / scl
    return (avg, _shape_ops.broadcast_to(scl, get_aval(avg).shape)) if returned else avg


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return tuple(operator.index(a) % ndim for a in (axis if isinstance(axis, tuple) else (axis,)))


def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None):
    """`numpy.cov` (without frequency/analytic weights)."""
    if fweights is not None or aweights is not None:
        raise NotImplementedError("cov: fweights/aweights are not supported")
    x = _float(_shape_ops.atleast_2d(m))
    if not rowvar and get_aval(x).shape[0] != 1:
        x = _shape_ops.transpose(x)
    if y is not None:
        yy = _float(_shape_ops.atleast_2d(y))
        if not rowvar and get_aval(yy).shape[0] != 1:
            yy = _shape_ops.transpose(yy)
        x = concatenate([x, yy], axis=0)
    n = get_aval(x).shape[1]
    ddof = (0 if bias else 1) if ddof is None else ddof
    xc = x - _ops.mean(x, axis=1, keepdims=True)
    c = _shape_ops.matmul(xc, _shape_ops.transpose(xc)) / max(n - ddof, 0)
    return _shape_ops.squeeze(c) if get_aval(c).shape == (1, 1) else c


def corrcoef(x, y=None, rowvar=True):
    """`numpy.corrcoef`: covariance normalised by the standard deviations, clipped to [-1, 1]."""
    c = cov(x, y, rowvar)
    if get_aval(c).ndim == 0:
        return c / c
    d = _shape_ops.diagonal(c)
    s = sqrt(d)
    c = c / s[:, None] / s[None, :]
    return _ops.clip(c, -1, 1)


# ---------------------------------------------------------------------------------------------
# differences, products
# ---------------------------------------------------------------------------------------------

def diff(a, n=1, axis=-1, prepend=None, append=None):
    """`numpy.diff`: the n-th discrete difference along `axis`."""
    a = asarray(a)
    nd = get_aval(a).ndim
    if nd == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    ax = operator.index(axis) % nd
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n}")
    parts = []
    for extra in (prepend, append):
        if extra is None:
            parts.append(None)
            continue
        e = asarray(extra)
        if get_aval(e).ndim == 0:
            shape = list(get_aval(a).shape)
            shape[ax] = 1
            e = _shape_ops.broadcast_to(e, tuple(shape))
        parts.append(e)
    if parts[0] is not None or parts[1] is not None:
        a = concatenate([p for p in (parts[0], a, parts[1]) if p is not None], axis=ax)
    bool_ = get_aval(a).dtype == np.bool_
    for _ in range(n):
        m = get_aval(a).shape[ax]
        hi = _slice(a, 1, m, ax)
        lo = _slice(a, 0, m - 1, ax)
        a = _ops.not_equal(hi, lo) if bool_ else subtract(hi, lo)
    return a


def _slice(a, start, stop, axis):
    idx = [slice(None)] * get_aval(a).ndim
    idx[axis] = slice(start, max(stop, start))
    return a[tuple(idx)]


def gradient(f, *varargs, axis=None, edge_order=1):
    """`numpy.gradient` with unit or scalar spacings: central differences inside, one-sided at
    the edges (edge_order 1)."""
    if edge_order != 1:
        raise NotImplementedError("gradient: only edge_order=1 is supported")
    f = _float(f)
    nd = get_aval(f).ndim
    axes = _axes(axis, nd)
    if len(varargs) == 0:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1:
        spacing = list(varargs) * len(axes)
    else:
        spacing = list(varargs)
    for h in spacing:
        if get_aval(asarray(h)).ndim != 0:
            raise NotImplementedError("gradient: only scalar spacings are supported")
    outs = []
    for ax, h in zip(axes, spacing):
        m = get_aval(f).shape[ax]
        if m < 2:
            raise ValueError("Shape of array too small to calculate a numerical gradient, at "
                             "least (edge_order + 1) elements are required.")
        first = (_slice(f, 1, 2, ax) - _slice(f, 0, 1, ax)) / h
        last = (_slice(f, m - 1, m, ax) - _slice(f, m - 2, m - 1, ax)) / h
        parts = [first]
        if m > 2:
            parts.append((_slice(f, 2, m, ax) - _slice(f, 0, m - 2, ax)) / (2.0 * h))
        parts.append(last)
        outs.append(concatenate(parts, axis=ax))
    return outs[0] if len(outs) == 1 else outs


def kron(a, b):
    """`numpy.kron`: the Kronecker product."""
    a, b = asarray(a), asarray(b)
    nd = max(get_aval(a).ndim, get_aval(b).ndim)
    a = reshape(a, (1,) * (nd - get_aval(a).ndim) + get_aval(a).shape)
    b = reshape(b, (1,) * (nd - get_aval(b).ndim) + get_aval(b).shape)
    sa, sb = get_aval(a).shape, get_aval(b).shape
    ae = reshape(a, tuple(x for s in sa for x in (s, 1)))
    be = reshape(b, tuple(x for s in sb for x in (1, s)))
    return reshape(multiply(ae, be), tuple(p * q for p, q in zip(sa, sb)))


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """`numpy.cross` of 3-vectors (or 2-vectors, whose cross product is the z component)."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a = moveaxis(asarray(a), axisa, -1)
    b = moveaxis(asarray(b), axisb, -1)
    na, nb = get_aval(a).shape[-1], get_aval(b).shape[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("incompatible dimensions for cross product (dimension must be 2 or 3)")
    a0, a1 = a[..., 0], a[..., 1]
    b0, b1 = b[..., 0], b[..., 1]
    a2 = a[..., 2] if na == 3 else None
    b2 = b[..., 2] if nb == 3 else None
    z = a0 * b1 - a1 * b0
    if a2 is None and b2 is None:
        return z
    a2 = 0 * a0 if a2 is None else a2
    b2 = 0 * b0 if b2 is None else b2
    x = a1 * b2 - a2 * b1
    y = a2 * b0 - a0 * b2
    return moveaxis(stack([x, y, z], axis=-1), -1, axisc)


def matvec(x1, x2, /):
    """`numpy.matvec`: matrix-vector products over the last axes (broadcasting the rest)."""
    return _shape_ops.matmul(x1, asarray(x2)[..., None])[..., 0]


def vecmat(x1, x2, /):
    """`numpy.vecmat`: vector-matrix products over the last axes (the vector conjugated)."""
    return _shape_ops.matmul(asarray(x1)[..., None, :], x2)[..., 0, :]


def vecdot(x1, x2, /, *, axis=-1):
    """`numpy.vecdot`: the dot product over `axis`, broadcasting the rest."""
    return _ops.sum(multiply(x1, x2), axis=axis)


def polyval(p, x):
    """`numpy.polyval`: Horner's rule, highest power first."""
    p, x = asarray(p), asarray(x)
    out = _ops.zeros_like(x, dtype=result_type(get_aval(p).dtype, get_aval(x).dtype))
    for i in range(get_aval(p).shape[0]):
        out = out * x + p[i]
    return out


def _conv_operands(a, v, precision, preferred_element_type):
    """`a`, `v` as arrays, cast to `preferred_element_type` when given (JAX's keyword: the
    dtype accumulated in and returned); `precision` is validated (the CPU is exact)."""
    from ..lax.linalg import check_precision
    check_precision(precision)
    a, v = asarray(a), asarray(v)
    if preferred_element_type is not None:
        a, v = _ops.astype(a, preferred_element_type), _ops.astype(v, preferred_element_type)
    return a, v


def convolve(a, v, mode="full", *, precision=None, preferred_element_type=None):
    """`numpy.convolve` of two 1-D arrays (modes full, same, valid); `precision` and
    `preferred_element_type` as `jax.numpy.convolve`."""
    a, v = _conv_operands(a, v, precision, preferred_element_type)
    if get_aval(v).ndim == 1 and get_aval(a).ndim == 1 and get_aval(v).shape[0] > get_aval(a).shape[0]:
        a, v = v, a                     # convolution commutes; slide the shorter one
    return _correlate(a, _shape_ops.flip(v), mode, "convolve")


def correlate(a, v, mode="valid", *, precision=None, preferred_element_type=None):
    """`numpy.correlate` of two 1-D arrays: c[k] = sum_n a[n + k] conj(v[n]); `precision`
    and `preferred_element_type` as `jax.numpy.correlate`."""
    a, v = _conv_operands(a, v, precision, preferred_element_type)
    if get_aval(v).dtype.kind == "c":
        v = _ops.conjugate(v)           # NumPy's (and JAX's) definition for complex v
    return _correlate(a, v, mode, "correlate")


def _correlate(a, v, mode, name):
    if get_aval(a).ndim != 1 or get_aval(v).ndim != 1:
        raise ValueError(f"{name}: both inputs must be 1-D")
    n, m = get_aval(a).shape[0], get_aval(v).shape[0]
    if n == 0 or m == 0:
        raise ValueError(f"{name}: inputs cannot be empty")
    swap = m > n
    if swap:          # NumPy correlates the longer with the shorter and reverses
        a, v, n, m = v, a, m, n
    dt = result_type(get_aval(a).dtype, get_aval(v).dtype)
    a, v = _ops.astype(a, dt), _ops.astype(v, dt)
    if mode == "valid":
        lo, hi = 0, 0
    elif mode == "same":
        lo = m // 2
        hi = m - 1 - lo
    elif mode == "full":
        lo = hi = m - 1
    else:
        raise ValueError(f"{name}: mode must be 'full', 'same' or 'valid', got {mode!r}")
    zero = _ops.zeros((), dt)
    ap = lax.pad(a, zero, [(lo, hi, 0)])
    L = n + lo + hi - m + 1
    # windows of ap: rows of an (L, m) matrix built from m shifted slices, then a mat-vec
    cols = stack([ap[j:j + L] for j in range(m)], axis=1)
    out = _shape_ops.matmul(cols, v) if dt.kind != "b" else _ops.any(logical_and(cols, v), axis=1)
    return _shape_ops.flip(out) if swap else out
