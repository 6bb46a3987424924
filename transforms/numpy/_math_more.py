"""More of NumPy's math that JAX provides: floating-point decomposition (`frexp`, `ldexp`,
`modf`, `nextafter`, `spacing`), integer `gcd`/`lcm`, `float_power`, `i0`, `trapezoid`,
`ediff1d`, `unwrap`, `sort_complex`, bit packing, and the multi-dimensional histograms.

There is no bit-cast primitive, so the floating-point functions work with exact arithmetic on
powers of two (`2.0 ** k` is exact for every representable power): a float32 value is
handled in float64 (which holds every float32 exactly, subnormals included), a float64 one in
float64.
"""
from __future__ import annotations

import numpy as np

from .. import lax
from ..core import concrete_or_error, get_aval
from . import _ops
from ._ops import asarray, where
from ._promote import dtype_of, ufunc_dtype, ufunc_result_dtype
from ._shape_ops import concatenate, moveaxis, ravel, reshape


def _float_dtype(*args):
    """The floating dtype for non-ufunc functions (`trapezoid`, `unwrap`, `i0`): integers give
    float64, as NumPy's."""
    dt = _ops.result_type_(*args)
    return np.dtype(np.float64) if dt.kind in "biu" else np.dtype(dt)


def _ufunc_dtype(ufunc, *args):
    """The dtype NumPy's `ufunc` gives these operands (its loop selection: int8 -> float16;
    the first output of a two-output ufunc)."""
    if ufunc.nout == 1:
        return np.dtype(ufunc_result_dtype(ufunc, *args))
    with np.errstate(all="ignore"):
        return ufunc(*[np.ones((), dtype_of(a)) for a in args])[0].dtype


def _pow2(k):
    """2.0 ** k in float64, exact (k integral, from -1074 to 1023)."""
    k = _ops.astype(k, np.float64)
    return lax.pow(_ops.full_like(k, 2.0), k)


def _times_pow2(x, e):
    """x * 2**e for float64 `x` and integral float64 `e`, as two exact power-of-two factors
    (so neither factor overflows or underflows where the result does not)."""
    half = _ops.floor(e / 2.0)
    return x * _pow2(half) * _pow2(e - half)


def _quiet(fn):
    """Eager NumPy evaluation of the intermediate steps may overflow or divide by zero in
    lanes that `where` then discards: silence those warnings (the result is what counts)."""
    import functools

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)
    return wrapped


@_quiet
def ldexp(x1, x2, /):
    """Mirrors `numpy.ldexp`: `x1 * 2**x2` for integer `x2`, computed exactly (as two
    power-of-two factors, so the result is right also where `2**x2` alone would overflow).
    Result dtype as NumPy (float64 for integer `x1`). Differentiable in `x1`; batches and
    compiles."""
    x1 = asarray(x1)
    x2 = asarray(x2)
    if get_aval(x2).dtype.kind not in "iub":
        raise TypeError(f"ldexp: x2 must be an integer array, got {get_aval(x2).dtype}")
    # by the operands' dtypes: a weak int64 x1 (a Python int passed to jit) is float64 too
    dt = ufunc_dtype(np.ldexp, get_aval(x1).dtype, get_aval(x2).dtype)
    e = _ops.astype(_ops.clip(_ops.astype(x2, np.int64), -2200, 2200), np.float64)
    return _ops.astype(_times_pow2(_ops.astype(x1, np.float64), e), dt)


@_quiet
def frexp(x, /):
    """Mirrors `numpy.frexp`: `(mantissa, exponent)` with `x = mantissa * 2**exponent`,
    `0.5 <= |mantissa| < 1` (0, inf and nan give exponent 0 and themselves). The exponent is
    int32 (NumPy's). The mantissa is differentiable (the exponent is piecewise constant);
    batches and compiles."""
    x = asarray(x)
    if get_aval(x).dtype.kind == "c":
        raise TypeError("frexp: complex input is not supported")
    dt = _ufunc_dtype(np.frexp, x)
    xf = _ops.astype(x, np.float64)
    ax = _ops.abs(xf)
    ok = _ops.logical_and(_ops.isfinite(xf), _ops.not_equal(xf, 0))
    safe = where(ok, ax, 1.0)
    e = _ops.floor(_ops.log2(safe)) + 1.0
    # log2 may round across a power of two: one correction step each way makes it exact
    e = lax.stop_gradient(e)
    e = where(_ops.greater_equal(_times_pow2(safe, -e), 1.0), e + 1.0, e)
    e = where(_ops.less(_times_pow2(safe, -e), 0.5), e - 1.0, e)
    m = where(ok, _times_pow2(xf, -where(ok, e, 0.0)), xf)
    return _ops.astype(m, dt), _ops.astype(where(ok, e, 0.0), np.int32)


@_quiet
def modf(x, /):
    """Mirrors `numpy.modf`: `(fractional part, integral part)`, both with the sign of `x`
    (`modf(inf)` is `(0., inf)`). Differentiable (the fractional part has derivative 1);
    batches and compiles."""
    x = asarray(x)
    dt = _ufunc_dtype(np.modf, x)
    xf = _ops.astype(x, dt)
    whole = _ops.trunc(xf)
    frac = where(_ops.isinf(xf), _ops.astype(_copysign0(xf), dt), xf - whole)
    return frac, whole


def _copysign0(x):
    """A zero with the sign of `x`."""
    from ._math_extra import copysign
    return copysign(0.0, x)


@_quiet
def float_power(x1, x2, /):
    """Mirrors `numpy.float_power`: `x1 ** x2` computed in float64 (complex128 for complex
    input). Differentiable; batches and compiles."""
    dt = np.complex128 if _ops.result_type_(x1, x2).kind == "c" else np.float64
    return _ops.power(_ops.astype(asarray(x1), dt), _ops.astype(asarray(x2), dt))


@_quiet
def nextafter(x1, x2, /):
    """Mirrors `numpy.nextafter`: the next representable value after `x1` towards `x2`, in
    their (floating) result dtype; subnormals and infinities as NumPy. Built from exact
    power-of-two arithmetic (there is no bit-cast primitive). Piecewise constant: zero
    derivative; batches and compiles."""
    if _ops.result_type_(x1, x2).kind == "c":
        raise TypeError("nextafter: complex input is not supported")
    dt = _ufunc_dtype(np.nextafter, x1, x2)
    info = np.finfo(dt)
    a = _ops.astype(_ops.astype(asarray(x1), dt), np.float64)
    b = _ops.astype(_ops.astype(asarray(x2), dt), np.float64)
    tiny = float(info.smallest_subnormal)
    p = info.nmant + 1                           # significand bits
    m, e = frexp(a)
    e = _ops.astype(e, np.float64)
    step = _ops.maximum(_pow2(e - p), tiny)      # the spacing of values in [2**(e-1), 2**e)
    # moving towards zero from a power of two the spacing below is half the one above
    down = _ops.logical_and(_ops.equal(_ops.abs(m), 0.5), _ops.greater(step, tiny))
    toward_bigger = _ops.equal(_ops.less(b, a), _ops.less(a, 0))   # |x| grows
    step = where(_ops.logical_or(toward_bigger, _ops.logical_not(down)), step, step / 2)
    direction = where(_ops.greater(b, a), 1.0, -1.0)
    out = a + direction * step
    out = where(_ops.equal(a, 0), direction * tiny, out)
    out = where(_ops.isinf(a), _ops.astype(_ops.sign(a), np.float64) * float(info.max), out)
    out = where(_ops.equal(a, b), b, out)
    out = where(_ops.logical_or(_ops.isnan(a), _ops.isnan(b)), np.nan, out)
    return lax.stop_gradient(_ops.astype(out, dt))


@_quiet
def spacing(x, /):
    """Mirrors `numpy.spacing`: the distance from `x` to the next representable value away
    from zero, with the sign of `x` (`spacing(0)` is the smallest subnormal; nan for inf and
    nan). Zero derivative; batches and compiles."""
    x = asarray(x)
    dt = _ufunc_dtype(np.spacing, x)
    xf = _ops.astype(x, dt)
    ax = _ops.abs(xf)
    d = nextafter(ax, np.asarray(np.inf, dt)) - ax
    neg = _ops.less(xf, 0)
    out = where(neg, -d, d)
    return where(_ops.isinf(xf), np.asarray(np.nan, dt), out)


def _integer_args(name, x1, x2):
    a, b = asarray(x1), asarray(x2)
    dt = _ops.result_type_(a, b)
    if dt.kind not in "iu":
        raise TypeError(f"{name}: arguments must be integers, got {dt}")
    shape = np.broadcast_shapes(get_aval(a).shape, get_aval(b).shape)
    from ._shape_ops import broadcast_to
    return (broadcast_to(_ops.astype(a, dt), shape), broadcast_to(_ops.astype(b, dt), shape))


def _gcd(a, b):
    a, b = _ops.abs(a), _ops.abs(b)

    def body(c):
        x, y = c
        nz = _ops.not_equal(y, 0)
        return where(nz, y, x), where(nz, _ops.remainder(x, where(nz, y, 1)), 0)

    return lax.while_loop(lambda c: _ops.any(_ops.not_equal(c[1], 0)), body, (a, b))[0]


def gcd(x1, x2, /):
    """Mirrors `numpy.gcd`: the greatest common divisor of integers (`gcd(0, 0)` is 0),
    by Euclid's algorithm in a `lax.while_loop`. Integer result: no derivative; batches and
    compiles."""
    a, b = _integer_args("gcd", x1, x2)
    return _gcd(a, b)


def lcm(x1, x2, /):
    """Mirrors `numpy.lcm`: the least common multiple of integers (0 when either is 0),
    non-negative. Integer result: no derivative; batches and compiles."""
    a, b = _integer_args("lcm", x1, x2)
    g = _gcd(a, b)
    zero = _ops.equal(g, 0)
    return where(zero, 0, _ops.abs(_ops.floor_divide(a, where(zero, 1, g)) * b))


@_quiet
def i0(x):
    """Mirrors `numpy.i0`: the modified Bessel function of the first kind, order 0 (as
    `exp(|x|) * i0e(x)`). Float64 for integer input. Differentiable (derivative `i1`);
    batches and compiles."""
    x = asarray(x)
    dt = _float_dtype(x)
    if dt.kind == "c":
        raise TypeError("i0: complex input is not supported")
    xf = _ops.astype(x, dt)
    return _ops.astype(lax.bessel_i0e(xf) * _ops.exp(_ops.abs(xf)), dt)


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """Mirrors `numpy.trapezoid`: the trapezoidal-rule integral of `y` along `axis`, with
    sample points `x` (1-D or shaped as `y`) or spacing `dx`. Differentiable in `y`, `x` and
    `dx`; batches and compiles."""
    y = asarray(y)
    y = _ops.astype(y, _float_dtype(y))
    y = moveaxis(y, axis, -1)
    if x is None:
        d = dx
    else:
        x = asarray(x)
        x = moveaxis(x, axis, -1) if get_aval(x).ndim > 1 else x
        d = x[..., 1:] - x[..., :-1]
    return _ops.sum(d * (y[..., 1:] + y[..., :-1]) / 2.0, axis=-1)


def ediff1d(ary, to_end=None, to_begin=None):
    """Mirrors `numpy.ediff1d`: the differences of consecutive elements of `ravel(ary)`, with
    `to_begin`/`to_end` (cast to `ary`'s dtype) around them. Differentiable; batches and
    compiles."""
    a = ravel(asarray(ary))
    dt = get_aval(a).dtype
    parts = [a[1:] - a[:-1]]
    if to_begin is not None:
        parts.insert(0, ravel(_ops.astype(asarray(to_begin), dt)))
    if to_end is not None:
        parts.append(ravel(_ops.astype(asarray(to_end), dt)))
    return concatenate(parts) if len(parts) > 1 else parts[0]


@_quiet
def unwrap(p, discont=None, axis=-1, *, period=2 * np.pi):
    """Mirrors `numpy.unwrap`: removes jumps larger than `discont` (default `period / 2`)
    along `axis` by adding multiples of `period` (floating-point version; NumPy's integer
    special case gives the same values). Differentiable in `p`; batches and compiles."""
    p = asarray(p)
    p = _ops.astype(p, _float_dtype(p, period))
    p = moveaxis(p, axis, -1)
    if get_aval(p).shape[-1] < 2:
        return moveaxis(p, -1, axis)
    half = period / 2
    discont = half if discont is None else discont
    dd = p[..., 1:] - p[..., :-1]
    ddmod = _ops.remainder(dd + half, period) - half
    ddmod = where(_ops.logical_and(_ops.equal(ddmod, -half), _ops.greater(dd, 0)), half,
                  ddmod)
    correct = where(_ops.less(_ops.abs(dd), discont), 0.0, ddmod - dd)
    corrected = p[..., 1:] + _ops.cumsum(correct, axis=-1)
    return moveaxis(concatenate([p[..., :1], corrected], axis=-1), -1, axis)


def sort_complex(a):
    """Mirrors `numpy.sort_complex`: sorted by real part, then imaginary part, as a complex
    array (NumPy's dtype: complex64 for complex64 and 8/16-bit integers, else complex128).
    Values are differentiable (each is its source element's); batches and compiles."""
    a = asarray(a)
    dt = get_aval(a).dtype
    # NumPy: int8/16 and uint8/16 give complex64, complex64 stays, all else complex128
    cdt = np.complex64 if dt.char in "bhBH" or dt == np.complex64 else np.complex128
    c = _ops.astype(a, cdt)
    from ._sorting import lexsort
    from ._shape_ops import take_along_axis
    order = lexsort((_ops.imag(c), _ops.real(c)), axis=-1)
    return take_along_axis(c, order, -1)


# ---------------------------------------------------------------------------------------------
# bits
# ---------------------------------------------------------------------------------------------

def _bit_weights(bitorder, name):
    if bitorder not in ("big", "little"):
        raise ValueError(f"{name}: bitorder must be 'big' or 'little', got {bitorder!r}")
    w = 1 << np.arange(8)
    return w[::-1].copy() if bitorder == "big" else w


def packbits(a, axis=None, bitorder="big"):
    """Mirrors `numpy.packbits`: groups of 8 truth values along `axis` (flattened when None;
    zero-padded at the end) packed into uint8. Batches and compiles; integer result: no
    derivative."""
    a = asarray(a)
    if get_aval(a).dtype.kind not in "biu":
        raise TypeError(f"packbits: a must be a boolean or integer array, got "
                        f"{get_aval(a).dtype}")
    w = _bit_weights(bitorder, "packbits")
    if axis is None:
        a, axis = ravel(a), 0
    bits = moveaxis(lax.convert_element_type(_ops.not_equal(a, 0), np.int64), axis, -1)
    shape = get_aval(bits).shape
    n = shape[-1]
    pad = -n % 8
    if pad:
        bits = concatenate([bits, np.zeros(shape[:-1] + (pad,), np.int64)], axis=-1)
    bits = reshape(bits, shape[:-1] + ((n + pad) // 8, 8))
    packed = _ops.sum(bits * w, axis=-1)
    return moveaxis(_ops.astype(packed, np.uint8), -1, axis)


def unpackbits(a, axis=None, count=None, bitorder="big"):
    """Mirrors `numpy.unpackbits`: each uint8 of `a` unpacked into 8 bits (uint8) along `axis`
    (flattened when None); `count` keeps the first `count` bits (or pads with zeros, or with a
    negative value drops the last ones). Batches and compiles; no derivative."""
    a = asarray(a)
    if get_aval(a).dtype != np.uint8:
        raise TypeError(f"unpackbits: a must be uint8, got {get_aval(a).dtype}")
    w = _bit_weights(bitorder, "unpackbits").astype(np.uint8)
    if axis is None:
        a, axis = ravel(a), 0
    moved = moveaxis(a, axis, -1)
    shape = get_aval(moved).shape
    bits = _ops.not_equal(lax.bitwise_and(lax.expand_dims(moved, (len(shape),)),
                                          np.broadcast_to(w, shape + (8,))), 0)
    bits = reshape(_ops.astype(bits, np.uint8), shape[:-1] + (shape[-1] * 8,))
    if count is not None:
        total = shape[-1] * 8
        count = int(count)
        keep = count if count >= 0 else max(total + count, 0)
        if keep <= total:
            bits = bits[..., :keep]
        else:
            bits = concatenate([bits, np.zeros(shape[:-1] + (keep - total,), np.uint8)],
                               axis=-1)
    return moveaxis(bits, -1, axis)


# ---------------------------------------------------------------------------------------------
# histograms
# ---------------------------------------------------------------------------------------------

def histogram_bin_edges(a, bins=10, range=None, weights=None):  # noqa: A002 - NumPy's name
    """Mirrors `numpy.histogram_bin_edges`: the float64 bin edges `histogram` uses. A bin count
    with `range=` works everywhere (the edges depend only on static values); otherwise the
    edges depend on the data, so `a` must be concrete (as JAX needs concrete bins)."""
    if np.ndim(bins) == 1:
        return np.asarray(concrete_or_error(bins, "histogram_bin_edges: bins"), np.float64)
    if isinstance(bins, (int, np.integer)) and range is not None:
        lo, hi = (float(r) for r in range)
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        return np.linspace(lo, hi, int(bins) + 1)
    a = np.asarray(concrete_or_error(asarray(a), "histogram_bin_edges: a (without range= "
                                                 "the edges depend on the data)"))
    w = None if weights is None else np.asarray(concrete_or_error(weights, "weights"))
    return np.histogram_bin_edges(a, bins, range, w).astype(np.float64)


def _bin_index(x, edges):
    """The bin of each value of `x` for the sorted `edges` (the last bin includes its right
    edge), and whether the value is inside the edges at all."""
    n = len(edges) - 1
    inner = edges[1:-1]
    idx = _ops.sum(_ops.astype(_ops.greater_equal(lax.expand_dims(x, (1,)), inner), np.int64),
                   axis=1) if n > 1 else _ops.zeros(get_aval(x).shape, np.int64)
    inside = _ops.logical_and(_ops.greater_equal(x, edges[0]), _ops.less_equal(x, edges[-1]))
    return idx, inside


def histogramdd(sample, bins=10, range=None, weights=None, density=None):  # noqa: A002
    """Mirrors `jax.numpy.histogramdd` / `numpy.histogramdd`: the D-dimensional histogram of
    the (N, D) `sample`, returning `(counts, [edges per dimension])`. Bins are static (counts,
    or edge arrays); bin counts need `range=` under a transformation. Counts are float64 (as
    NumPy, and JAX with x64); compiles and batches; differentiable in `weights`."""
    s = asarray(sample)
    if get_aval(s).ndim == 1:
        s = lax.expand_dims(s, (1,))
    if get_aval(s).ndim != 2:
        raise ValueError(f"histogramdd: sample must be (N, D), got shape {get_aval(s).shape}")
    d = get_aval(s).shape[1]
    bins_list = list(bins) if isinstance(bins, (list, tuple)) else [bins] * d
    ranges = list(range) if range is not None else [None] * d
    if len(bins_list) != d or len(ranges) != d:
        raise ValueError(f"histogramdd: bins and range need one entry per dimension ({d})")
    edges = [histogram_bin_edges(s[:, k], b, r) for k, (b, r) in
             enumerate(zip(bins_list, ranges))]
    sf = _ops.astype(s, np.float64)
    flat = _ops.zeros(get_aval(sf).shape[:1], np.int64)
    inside = _ops.ones(get_aval(sf).shape[:1], np.bool_)
    for k, e in enumerate(edges):
        idx, ok = _bin_index(sf[:, k], e)
        flat = flat * (len(e) - 1) + idx
        inside = _ops.logical_and(inside, ok)
    nbins = tuple(len(e) - 1 for e in edges)
    total = int(np.prod(nbins))
    flat = where(inside, flat, total)            # out of range: dropped by the scatter
    w = np.ones(get_aval(flat).shape, np.float64) if weights is None else \
        _ops.astype(ravel(asarray(weights)), np.float64)
    counts = _ops.at(np.zeros((total,), np.float64))[flat].add(w, mode="drop")
    counts = reshape(counts, nbins)
    if density:
        widths = np.ones(nbins)
        for k, e in enumerate(edges):
            shape = [1] * d
            shape[k] = len(e) - 1
            widths = widths * np.diff(e).reshape(shape)
        counts = counts / (_ops.sum(counts) * widths)
    return counts, edges


def histogram2d(x, y, bins=10, range=None, weights=None, density=None):  # noqa: A002
    """Mirrors `jax.numpy.histogram2d` / `numpy.histogram2d`: `(counts, xedges, yedges)` of
    the points `(x[i], y[i])`; bins and transformations as `histogramdd`."""
    if not (isinstance(bins, (list, tuple)) and len(bins) == 2):
        bins = [bins, bins]
    sample = _ops.stack([ravel(asarray(x)), ravel(asarray(y))], axis=1)
    counts, edges = histogramdd(sample, bins, range, weights, density)
    return counts, edges[0], edges[1]

