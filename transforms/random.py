"""`transforms.random`: stateless, splittable pseudo-random numbers, as `jax.random`.

A key is a `uint32[2]` array. Nothing here keeps state: the same key and arguments give the
same numbers on every run, machine and NumPy version, eagerly or traced (jit, vmap, grad).

The generator is the counter-based Threefry-2x32 block cipher (20 rounds, Salmon et al.,
"Parallel random numbers: as easy as 1, 2, 3", 2011) used the way JAX uses it with
`jax_threefry_partitionable=True` (JAX's default):

* `key(seed)`: `[0, seed mod 2**32]`, as JAX's default mode (`jax_enable_x64=False`), where
  every seed is converted to 32 bits (JAX with x64 enabled would give `[seed >> 32, low]`);
  a Python int seed must fit in int64 (JAX's OverflowError otherwise).
* `split(key, shape)[i] = threefry(key, (hi(i), lo(i)))` where `i` is the row-major flat
  index of each new key, as a 64-bit counter split into two 32-bit words.
* `fold_in(key, d) = threefry(key, (0, uint32(d)))`; a Python int `d` must be in
  `[0, 2**32)` (JAX's OverflowError), NumPy integers wrap modulo 2**32.
* `bits(key, shape)`: for each flat index `i`, `(b1, b2) = threefry(key, (hi(i), lo(i)))`
  and the 32-bit result is `b1 ^ b2` (64-bit: `b1 << 32 | b2`).

Floats are built from bits by this module (never by NumPy's generators): `uniform` sets the
mantissa of a float in [1, 2) from the top bits and subtracts 1; `normal` is
`sqrt(2) * erfinv(u)` for `u` uniform in (-1, 1), with our own `erfinv` (Giles'
single/double-precision approximations, built from `lax` operations so it traces).

Float32 samples are bit-identical to JAX's on x86-64 CPU, eagerly and under jit: the
arithmetic JAX's samplers compile to is reproduced step by step, including what XLA's CPU
backend does to it: a multiply feeding an add is one fused multiply-add (`_fma32`, exact via
float64), float32 `log`/`log1p`/`erf` are XLA's own polynomial/rational kernels and float32
`erfinv` is JAX's (one primitive each, `transforms.xla_f32`, so that a sampler traces to a few
equations), and `x / sqrt2` is `x * float32(1/sqrt2)`. Known limits: XLA flushes float32
denormals to zero, we do not (no sampler produces them from a key, but user-given bounds
could); inside a user's jit with constant bounds XLA may constant-fold `erf` with another
implementation (JAX's own eager and traced-bounds results are the ones matched); float64
follows the formulas without FMA (JAX without x64 has no float64).

Two primitives are defined here, with all their rules below their definitions:
`threefry2x32` (four uint32 arrays of one shape -> two) and `bitcast_convert_type`
(reinterpret bits between dtypes of equal width), plus `argsort` (stable, int32 indices)
used by `permutation` and sampling without replacement.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from . import lax
from .core import Primitive, ShapedArray, Tracer, concrete_or_error, get_aval
from .errors import ConcretizationTypeError
from .fma32 import fma32, fma32_numpy
from .interpreters.batching import defvectorized
from .interpreters.jvp import defjvp_zero
from .lax._util import as_array, bind_new_dtype
from .xla_f32 import xla_erf_f32, xla_erfinv_f32, xla_log1p_f32, xla_log_f32

__all__ = [
    "PRNGKey", "key", "key_data", "wrap_key_data", "split", "fold_in", "bits", "uniform",
    "normal", "bernoulli", "randint", "permutation", "choice", "categorical",
    "truncated_normal", "gumbel", "exponential", "threefry2x32", "bitcast_convert_type",
    "erfinv",
]

_U32 = np.dtype(np.uint32)
_U64 = np.dtype(np.uint64)
_UINT = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: _U32, 64: _U64}
_MASK32 = 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# The threefry2x32 primitive
# ---------------------------------------------------------------------------------------------

ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
KS_PARITY = 0x1BD11BDA


def threefry2x32_numpy(k0, k1, x0, x1):
    """Threefry-2x32 with 20 rounds on uint32 NumPy arrays of one shape (wrapping arithmetic).

    This is the reference the eager implementation runs and that compiled lowerings
    mirror: five groups of four mix rounds, each group followed by a key injection.
    """
    k0, k1, x0, x1 = (np.asarray(a, dtype=_U32) for a in (k0, k1, x0, x1))
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(KS_PARITY))
    with np.errstate(over="ignore"):
        x0 = x0 + ks[0]
        x1 = x1 + ks[1]
        for group in range(5):
            for r in ROTATIONS[group % 2]:
                x0 = x0 + x1
                x1 = (x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))
                x1 = x1 ^ x0
            x0 = x0 + ks[(group + 1) % 3]
            x1 = x1 + ks[(group + 2) % 3] + np.uint32(group + 1)
    return np.asarray(x0, dtype=_U32), np.asarray(x1, dtype=_U32)


threefry2x32_p = Primitive("threefry2x32", multiple_results=True)


@threefry2x32_p.def_impl
def _threefry2x32_impl(k0, k1, x0, x1):
    return list(threefry2x32_numpy(k0, k1, x0, x1))


@threefry2x32_p.def_abstract_eval
def _threefry2x32_abstract(k0, k1, x0, x1):
    avals = (k0, k1, x0, x1)
    for a in avals:
        if a.dtype != _U32:
            raise TypeError(f"threefry2x32: operands must be uint32, got "
                            f"{', '.join(b.str_short() for b in avals)}")
        if a.shape != x0.shape:
            raise TypeError(f"threefry2x32: operands must have one shape, got "
                            f"{', '.join(b.str_short() for b in avals)}")
    return [ShapedArray(x0.shape, _U32), ShapedArray(x0.shape, _U32)]


defjvp_zero(threefry2x32_p)        # integer outputs: zero tangents


defvectorized(threefry2x32_p)      # elementwise over operands of one shape


def threefry2x32(k0, k1, x0, x1):
    """The raw block function: uint32 operands broadcast to one shape; returns two arrays."""
    args = [lax.convert_element_type(as_array(a), _U32) for a in (k0, k1, x0, x1)]
    shape = np.broadcast_shapes(*(get_aval(a).shape for a in args))
    args = [a if get_aval(a).shape == shape else lax.broadcast_to(a, shape) for a in args]
    return tuple(threefry2x32_p.bind(*args))


# ---------------------------------------------------------------------------------------------
# The bitcast_convert_type primitive
# ---------------------------------------------------------------------------------------------

bitcast_convert_type_p = Primitive("bitcast_convert_type")


@bitcast_convert_type_p.def_impl
def _bitcast_impl(x, *, new_dtype):
    return np.asarray(x).view(new_dtype)     # equal widths: any strides can be viewed


@bitcast_convert_type_p.def_abstract_eval
def _bitcast_abstract(x, *, new_dtype):
    if x.dtype.itemsize != new_dtype.itemsize:
        raise TypeError(f"bitcast_convert_type: {x.dtype} and {new_dtype} differ in width")
    return ShapedArray(x.shape, new_dtype)


# reinterpreting bits is not differentiable: its derivative is taken as zero
defjvp_zero(bitcast_convert_type_p)
defvectorized(bitcast_convert_type_p)


def bitcast_convert_type(x, new_dtype):
    """Reinterpret the bits of `x` as `new_dtype` (same width), as `lax.bitcast_convert_type`."""
    return bind_new_dtype(bitcast_convert_type_p, x, new_dtype)


# The argsort primitive (stable) lives with the sorting primitives; shuffles use it.
from .lax.sorting import argsort, argsort_p  # noqa: E402,F401


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def _shape(shape, name):
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)) or (isinstance(shape, Tracer) and not shape.shape):
        shape = (shape,)
    try:
        out = tuple(operator.index(concrete_or_error(d, f"{name}: a shape entry")) for d in shape)
    except ConcretizationTypeError:
        raise                    # a traced size: that error says what to make static
    except TypeError:
        raise TypeError(f"{name}: shape must be a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in out):
        raise ValueError(f"{name}: negative dimension in shape {out}")
    return out


def _check_key(name, key):
    key = as_array(key)
    a = get_aval(key)
    if not (np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{name}: a PRNG key is a uint32[2] array (from random.key(seed) or "
                        f"random.split), got {a.str_short()}")
    if a.shape != (2,):
        if a.ndim >= 2 and a.shape[-1] == 2:
            raise ValueError(f"{name} accepts a single key, but was given a key array of shape "
                             f"{a.shape[:-1]} != (). Use transforms.vmap for batching.")
        raise TypeError(f"{name}: a PRNG key is a uint32[2] array, got {a.str_short()}")
    if a.dtype != _U32:
        key = lax.convert_element_type(key, _U32)
    return key


def _key_words(key):
    k0 = lax.reshape(lax.slice(key, (0,), (1,)), ())
    k1 = lax.reshape(lax.slice(key, (1,), (2,)), ())
    return k0, k1


def _iota_2x32(shape):
    """The row-major flat index of every element of `shape`, as (high, low) uint32 words."""
    size = math.prod(shape)
    if size >= 2 ** 32:
        raise NotImplementedError("random arrays of 2**32 elements or more are not supported")
    lo = lax.iota(_U32, (size,), 0)
    if shape != (size,):
        lo = lax.reshape(lo, shape)
    hi = lax.full(shape, 0, _U32)
    return hi, lo


def _threefry_shape(key, shape):
    """(b1, b2): threefry of `key` over the counters of `shape` (JAX's partitionable scheme)."""
    k0, k1 = _key_words(key)
    hi, lo = _iota_2x32(shape)
    if shape != ():
        k0, k1 = lax.broadcast_to(k0, shape), lax.broadcast_to(k1, shape)
    return threefry2x32_p.bind(k0, k1, hi, lo)


def _stack_last(a, b):
    shape = get_aval(a).shape
    a = lax.reshape(a, shape + (1,))
    b = lax.reshape(b, shape + (1,))
    return lax.concatenate([a, b], len(shape))


def _random_bits(key, bit_width, shape):
    b1, b2 = _threefry_shape(key, shape)
    if bit_width == 64:
        hi = lax.convert_element_type(b1, _U64)
        lo = lax.convert_element_type(b2, _U64)
        return lax.bitwise_or(lax.shift_left(hi, np.asarray(32, _U64)), lo)
    out = lax.bitwise_xor(b1, b2)
    if bit_width == 32:
        return out
    return lax.convert_element_type(out, _UINT[bit_width])


def _float_dtype(dtype, name):
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"{name}: dtype must be a floating type, got {dtype}")
    return dtype


def _convert(x, dtype):
    if not isinstance(x, Tracer):
        return np.asarray(x, dtype=dtype)
    return lax.convert_element_type(x, dtype)


def _check_broadcastable(name, shape, *arg_shapes):
    for s in arg_shapes:
        try:
            ok = np.broadcast_shapes(s, shape) == tuple(shape)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{name}: parameter of shape {tuple(s)} does not broadcast to the "
                             f"requested shape {tuple(shape)}")


def _bcast(x, shape):
    a = get_aval(x)
    return x if a.shape == tuple(shape) else lax.broadcast_to(x, shape)


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------

def _scalar_integer(x, what):
    """`x` as an array, checked to be a scalar of an integer dtype (`what` names it)."""
    x = as_array(x)
    a = get_aval(x)
    if a.shape != ():
        raise TypeError(f"{what} must be a scalar, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{what} must be an integer, got {a.dtype}")
    return x


def key(seed, *, impl=None):
    """A PRNG key (uint32[2]) from an integer seed: `[0, seed mod 2**32]`, as JAX's default
    (32-bit) mode makes it from any integer seed. A Python int must fit in int64 (JAX raises
    OverflowError beyond); NumPy integers of any width keep their low 32 bits.
    `key(0)` is `[0, 0]`."""
    if impl not in (None, "threefry2x32", "threefry"):
        raise ValueError(f"unknown PRNG implementation {impl!r}; only 'threefry2x32' exists")
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError("PRNG key seed must be an integer, got a bool")
    if isinstance(seed, int):
        if not -2 ** 63 <= seed < 2 ** 63:
            raise OverflowError(f"PRNG key seed {seed} is too large: a Python int seed must fit "
                                f"in int64 (as in JAX)")
        return np.array([0, seed & _MASK32], dtype=_U32)
    seed = _scalar_integer(seed, "PRNG key seed")
    if isinstance(seed, np.ndarray):
        return np.array([0, int(seed) & _MASK32], dtype=_U32)
    if get_aval(seed).dtype.itemsize == 8:      # the low word, without a float round trip
        u = lax.convert_element_type(seed, _U64)
        lo = lax.convert_element_type(lax.bitwise_and(u, np.asarray(_MASK32, _U64)), _U32)
    else:
        lo = lax.convert_element_type(seed, _U32)
    hi = lax.full((), 0, _U32)
    return lax.concatenate([lax.reshape(hi, (1,)), lax.reshape(lo, (1,))], 0)


PRNGKey = key


def key_data(keys):
    """The raw uint32 data of a key (keys are already raw arrays here)."""
    return keys


def wrap_key_data(key_bits_array, *, impl=None):
    """A key from raw uint32 data (keys are raw arrays here)."""
    del impl
    return lax.convert_element_type(as_array(key_bits_array), _U32)


def split(key, num=2):
    """`num` new keys (an int, or a shape: the result has shape `num + (2,)`)."""
    key = _check_key("split", key)
    shape = _shape(num, "split")
    b1, b2 = _threefry_shape(key, shape)
    return _stack_last(b1, b2)


def fold_in(key, data):
    """A new key from `key` and an integer `data`: a Python int must be in [0, 2**32) (as in
    JAX, OverflowError otherwise); NumPy and traced integers are taken modulo 2**32."""
    key = _check_key("fold_in", key)
    if isinstance(data, (bool, np.bool_)):
        data = int(data)
    if isinstance(data, int):
        if not 0 <= data <= _MASK32:
            raise OverflowError(f"Python integer {data} out of bounds for uint32 (fold_in data; "
                                f"as in JAX, pass a NumPy integer to wrap it modulo 2**32)")
        d = np.asarray(data, dtype=_U32)
    else:
        d = lax.convert_element_type(_scalar_integer(data, "fold_in: data"), _U32)
    k0, k1 = _key_words(key)
    y0, y1 = threefry2x32_p.bind(k0, k1, np.zeros((), _U32), d)
    return lax.concatenate([lax.reshape(y0, (1,)), lax.reshape(y1, (1,))], 0)


def bits(key, shape=(), dtype=None):
    """Uniform random bits: unsigned integers of `dtype` (uint8/16/32/64, default uint32)."""
    key = _check_key("bits", key)
    dtype = _U32 if dtype is None else np.dtype(dtype)
    if dtype.kind != "u" or dtype.itemsize * 8 not in _UINT:
        raise TypeError(f"bits: dtype must be an unsigned integer type, got {dtype}")
    return _random_bits(key, dtype.itemsize * 8, _shape(shape, "bits"))


# ---------------------------------------------------------------------------------------------
# Continuous distributions
# ---------------------------------------------------------------------------------------------

def uniform(key, shape=(), dtype=np.float32, minval=0.0, maxval=1.0):
    """Uniform floats in [minval, maxval)."""
    key = _check_key("uniform", key)
    dtype = _float_dtype(dtype, "uniform")
    shape = _shape(shape, "uniform")
    minval, maxval = _convert(minval, dtype), _convert(maxval, dtype)
    _check_broadcastable("uniform", shape, get_aval(minval).shape, get_aval(maxval).shape)
    return _uniform(key, shape, dtype, minval, maxval)


def _uniform(key, shape, dtype, minval, maxval):
    finfo = np.finfo(dtype)
    nbits, nmant = finfo.bits, finfo.nmant
    rng_bits = max(nbits, 8)
    udt = _UINT[nbits]
    b = _random_bits(key, rng_bits, shape)
    if rng_bits != nbits:
        b = lax.convert_element_type(b, udt)
    one_bits = np.asarray(np.array(1.0, dtype).view(udt))
    float_bits = lax.bitwise_or(lax.shift_right_logical(b, np.asarray(rng_bits - nmant, udt)),
                                one_bits)
    floats = lax.sub(bitcast_convert_type(float_bits, dtype), np.asarray(1.0, dtype))
    if isinstance(maxval, np.ndarray) and isinstance(minval, np.ndarray):
        span = np.asarray(maxval - minval, dtype)
    else:
        span = lax.sub(maxval, minval)
    if dtype == np.float32:
        # JAX computes floats * span + minval; XLA's CPU backend fuses it into one FMA
        out = _fma32(floats, span, minval)
    else:
        out = lax.add(lax.mul(floats, span), minval)
    return lax.max(_bcast(minval, shape), out)


def _fma32_value(a, b, c):
    """`a * b + c` rounded once to float32 (see `transforms.fma32`); the operands are float32
    and broadcast against each other."""
    if not any(isinstance(v, Tracer) for v in (a, b, c)):
        return fma32_numpy(a, b, c)
    return fma32(*(lax.convert_element_type(as_array(v), np.float32) for v in (a, b, c)))


def _fma32(a, b, c):
    """`a * b + c` for float32 operands with ONE rounding, as the fused multiply-add that
    XLA's CPU code generator emits where a multiply feeds an add (so values agree with JAX's
    to the last bit); differentiates as `a * b + c`."""
    return _fma32_value(a, b, c)


def normal(key, shape=(), dtype=np.float32):
    """Standard normal floats: `sqrt(2) * erfinv(u)` with `u` uniform in (-1, 1). A complex
    `dtype` gives the standard complex normal (as JAX): real and imaginary parts drawn from
    the two halves of `split(key)`, each scaled by `1/sqrt(2)` so that `E|z|^2 = 1`."""
    key = _check_key("normal", key)
    shape = _shape(shape, "normal")
    if np.issubdtype(np.dtype(dtype), np.complexfloating):
        dtype = np.dtype(dtype)
        real = np.finfo(dtype).dtype
        k_re, k_im = _split2(key)
        re = lax.convert_element_type(_normal(k_re, shape, real), dtype)
        im = lax.convert_element_type(_normal(k_im, shape, real), dtype)
        z = lax.add(re, lax.mul(np.asarray(1j, dtype), im))
        return lax.div(z, np.asarray(np.sqrt(2.0), dtype))
    dtype = _float_dtype(dtype, "normal")
    return _normal(key, shape, dtype)


def _normal(key, shape, dtype):
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    u = _uniform(key, shape, dtype, np.asarray(lo, dtype), np.asarray(1.0, dtype))
    return lax.mul(np.asarray(np.sqrt(2.0), dtype), erfinv(u))


def truncated_normal(key, lower, upper, shape=None, dtype=np.float32):
    """Standard normal values truncated to the open interval (lower, upper). `shape` defaults
    to the broadcast shape of `lower` and `upper`."""
    key = _check_key("truncated_normal", key)
    dtype = _float_dtype(dtype, "truncated_normal")
    lower, upper = _convert(lower, dtype), _convert(upper, dtype)
    lshape, ushape = get_aval(lower).shape, get_aval(upper).shape
    if shape is None:
        shape = np.broadcast_shapes(lshape, ushape)
    else:
        shape = _shape(shape, "truncated_normal")
        _check_broadcastable("truncated_normal", shape, lshape, ushape)
    sqrt2 = np.asarray(np.sqrt(2.0), dtype)
    if dtype == np.float32:
        # as XLA compiles JAX's erf(lower / sqrt2): the division by a constant becomes a
        # multiplication by its float32 reciprocal, and erf is XLA's float32 kernel
        inv = np.float32(1.0) / sqrt2
        a = _xla_erf_f32(lax.mul(lower, inv))
        b = _xla_erf_f32(lax.mul(upper, inv))
    else:
        a = lax.erf(lax.div(lower, sqrt2))
        b = lax.erf(lax.div(upper, sqrt2))
    u = _uniform(key, shape, dtype, a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = lax.mul(sqrt2, erfinv(u))
    lo = _bcast(_nextafter(lax.stop_gradient(lower), +1), shape)
    hi = _bcast(_nextafter(lax.stop_gradient(upper), -1), shape)
    return lax.min(lax.max(out, lo), hi)


def _nextafter(x, direction):
    """The next representable float after `x` towards +inf (direction > 0) or -inf."""
    x = as_array(x)
    dtype = get_aval(x).dtype
    if isinstance(x, np.ndarray):
        return np.nextafter(x, np.asarray(np.inf if direction > 0 else -np.inf, dtype))
    idt = np.dtype(f"int{dtype.itemsize * 8}")
    i = bitcast_convert_type(x, idt)
    one = np.asarray(1, idt)
    positive = lax.ge(x, np.asarray(0, dtype))        # +0 counts as non-negative
    if direction > 0:
        stepped = lax.select(positive, lax.add(i, one), lax.sub(i, one))
    else:
        stepped = lax.select(positive, lax.sub(i, one), lax.add(i, one))
    out = bitcast_convert_type(stepped, dtype)
    tiny = np.asarray(np.nextafter(np.asarray(0, dtype), np.asarray(direction, dtype)))
    out = lax.select(lax.eq(x, np.asarray(0, dtype)), lax.full(get_aval(x).shape, tiny, dtype),
                     out)
    inf = np.asarray(np.inf if direction > 0 else -np.inf, dtype)
    # moving towards the infinity `x` already is keeps it; NaN stays NaN
    keep = lax.bitwise_or(lax.eq(x, inf), lax.ne(x, x))
    return lax.select(keep, x, out)


def gumbel(key, shape=(), dtype=np.float32):
    """Standard Gumbel samples: `-log(-log(u))`, `u` uniform in [tiny, 1)."""
    key = _check_key("gumbel", key)
    dtype = _float_dtype(dtype, "gumbel")
    return _gumbel(key, _shape(shape, "gumbel"), dtype)


def _gumbel(key, shape, dtype):
    u = _uniform(key, shape, dtype, np.asarray(np.finfo(dtype).tiny, dtype),
                 np.asarray(1.0, dtype))
    log = _xla_log_f32 if dtype == np.float32 else lax.log
    return lax.neg(log(lax.neg(log(u))))


def exponential(key, shape=(), dtype=np.float32):
    """Standard exponential samples: `-log1p(-u)`."""
    key = _check_key("exponential", key)
    dtype = _float_dtype(dtype, "exponential")
    u = _uniform(key, _shape(shape, "exponential"), dtype, np.asarray(0.0, dtype),
                 np.asarray(1.0, dtype))
    log1p = _xla_log1p_f32 if dtype == np.float32 else lax.log1p
    return lax.neg(log1p(lax.neg(u)))


# ---------------------------------------------------------------------------------------------
# erfinv (Giles, "Approximating the erfinv function", GPU Computing Gems Jade, 2011)
# ---------------------------------------------------------------------------------------------

_ERFINV64_A = (-3.6444120640178196996e-21, -1.685059138182016589e-19, 1.2858480715256400167e-18,
               1.115787767802518096e-17, -1.333171662854620906e-16, 2.0972767875968561637e-17,
               6.6376381343583238325e-15, -4.0545662729752068639e-14, -8.1519341976054721522e-14,
               2.6335093153082322977e-12, -1.2975133253453532498e-11, -5.4154120542946279317e-11,
               1.051212273321532285e-09, -4.1126339803469836976e-09, -2.9070369957882005086e-08,
               4.2347877827932403518e-07, -1.3654692000834678645e-06, -1.3882523362786468719e-05,
               0.0001867342080340571352, -0.00074070253416626697512, -0.0060336708714301490533,
               0.24015818242558961693, 1.6536545626831027356)
_ERFINV64_B = (2.2137376921775787049e-09, 9.0756561938885390979e-08, -2.7517406297064545428e-07,
               1.8239629214389227755e-08, 1.5027403968909827627e-06, -4.013867526981545969e-06,
               2.9234449089955446044e-06, 1.2475304481671778723e-05, -4.7318229009055733981e-05,
               6.8284851459573175448e-05, 2.4031110387097893999e-05, -0.0003550375203628474796,
               0.00095328937973738049703, -0.0016882755560235047313, 0.0024914420961078508066,
               -0.0037512085075692412107, 0.005370914553590063617, 1.0052589676941592334,
               3.0838856104922207635)
_ERFINV64_C = (-2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09,
               -3.7894654401267369937e-09, 7.6157012080783393804e-09, -1.4960026627149240478e-08,
               2.9147953450901080826e-08, -6.7711997758452339498e-08, 2.2900482228026654717e-07,
               -9.9298272942317002539e-07, 4.5260625972231537039e-06, -1.9681778105531670567e-05,
               7.5995277030017761139e-05, -0.00021503011930044477347, -0.00013871931833623122026,
               1.0103004648645343977, 4.8499064014085844221)


def _xla_log_f32(v):
    """float32 `log(v)` as XLA's CPU evaluates it (the `xla_log_f32` primitive)."""
    return xla_log_f32(v)


def _xla_log1p_f32(y):
    """float32 `log1p(y)` as XLA's CPU evaluates it (the `xla_log1p_f32` primitive)."""
    return xla_log1p_f32(y)


def _xla_erf_f32(x):
    """float32 `erf(x)` as XLA's CPU evaluates it (the `xla_erf_f32` primitive)."""
    return xla_erf_f32(x)


def _horner(coeffs, w, dtype):
    p = np.asarray(coeffs[0], dtype)
    p = lax.full(get_aval(w).shape, p, dtype)
    for c in coeffs[1:]:
        p = lax.add(lax.mul(p, w), np.asarray(c, dtype))
    return p


def erfinv(x):
    """The inverse error function on (-1, 1) (±inf at ±1). Float32 (and narrower, computed in
    float32) is JAX's, to the bit: Giles' single-precision approximation, the `xla_erfinv_f32`
    primitive, differentiating as `lax.erf_inv`; float64 is his double-precision one, built
    from `lax` operations."""
    x = as_array(x)
    dtype = get_aval(x).dtype
    if not np.issubdtype(dtype, np.floating):
        x = lax.convert_element_type(x, np.float64 if dtype.itemsize >= 8 else np.float32)
        dtype = get_aval(x).dtype
    if dtype.itemsize < 4:
        return lax.convert_element_type(erfinv(lax.convert_element_type(x, np.float32)), dtype)
    if dtype == np.float32:
        # JAX's float32 erf_inv to the last bit: Giles' single-precision approximation on
        # w = -log1p(-x^2) with XLA's float32 log1p and FMA Horner steps, as ONE primitive
        return xla_erfinv_f32(x)
    c = lambda v: np.asarray(v, dtype)  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        # (1 - x)(1 + x) has exact factors: full float64 precision near |x| = 1
        w = lax.neg(lax.log(lax.mul(lax.sub(c(1.0), x), lax.add(c(1.0), x))))
        small = lax.lt(w, c(6.25))
        pa = _horner(_ERFINV64_A, lax.sub(lax.select(small, w, c(3.125)), c(3.125)), dtype)
        sw = lax.sqrt(lax.select(small, c(10.5625), w))
        pb = _horner(_ERFINV64_B, lax.sub(sw, c(3.25)), dtype)
        pc = _horner(_ERFINV64_C, lax.sub(sw, c(5.0)), dtype)
        p = lax.select(small, pa, lax.select(lax.lt(w, c(16.0)), pb, pc))
        out = lax.mul(p, x)
        # erfinv(±1) = ±inf
        shape = get_aval(x).shape
        out = lax.select(lax.eq(x, c(1.0)), lax.full(shape, np.inf, dtype), out)
        return lax.select(lax.eq(x, c(-1.0)), lax.full(shape, -np.inf, dtype), out)


# ---------------------------------------------------------------------------------------------
# Discrete distributions
# ---------------------------------------------------------------------------------------------

def bernoulli(key, p=0.5, shape=None):
    """Booleans that are True with probability `p`. `shape` defaults to `p`'s shape."""
    key = _check_key("bernoulli", key)
    if isinstance(p, (float, int)) and not isinstance(p, bool):
        p = np.asarray(p, np.float32)
    p = as_array(p)
    dtype = get_aval(p).dtype
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"bernoulli: probability `p` must have a floating dtype, got {dtype}")
    if shape is None:
        shape = get_aval(p).shape
    else:
        shape = _shape(shape, "bernoulli")
        _check_broadcastable("bernoulli", shape, get_aval(p).shape)
    u = _uniform(key, shape, dtype, np.asarray(0.0, dtype), np.asarray(1.0, dtype))
    return lax.lt(u, _bcast(p, shape))


def _clip_to(val, dtype):
    """Clip an integer array into `dtype`'s range (compared in its own dtype) and convert."""
    src = get_aval(val).dtype
    ti, si = np.iinfo(dtype), np.iinfo(src)
    lo, hi = max(ti.min, si.min), min(ti.max, si.max)
    if lo > si.min:
        val = lax.max(val, np.asarray(lo, src))
    if hi < si.max:
        val = lax.min(val, np.asarray(hi, src))
    return lax.convert_element_type(val, dtype)


def _int_operand(v):
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        v = np.asarray(v, np.int64 if -2 ** 63 <= int(v) < 2 ** 63 else np.uint64)
    v = as_array(v)
    if not np.issubdtype(get_aval(v).dtype, np.integer):
        v = lax.convert_element_type(v, np.int64)
    return v


def randint(key, shape, minval, maxval, dtype=np.int32):
    """Uniform integers in [minval, maxval) (JAX's algorithm: two words of random bits
    reduced modulo the span; values out of `dtype`'s range are clipped into it).

    As JAX, 8- and 16-bit dtypes are sampled as int32 in `[clip(minval), clip(maxval))` (the
    bounds converted to int32, then clipped to `[dtype.min, dtype.max + 1]`) and cast: so
    `randint(k, s, -5, 1000, int8)` draws from [-5, 128). A Python int bound outside int32 is
    then an OverflowError, as in JAX."""
    key = _check_key("randint", key)
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):
        raise TypeError(f"randint: dtype must be an integer type, got {dtype}")
    shape = _shape(shape, "randint")
    if dtype.itemsize < 4:
        info = np.iinfo(dtype)

        def as_int32(v, top):
            if isinstance(v, int) and not isinstance(v, bool) and not -2 ** 31 <= v < 2 ** 31:
                raise OverflowError(f"randint: Python int bound {v} out of bounds for int32 "
                                    f"(8- and 16-bit dtypes are sampled in int32, as in JAX)")
            v = lax.convert_element_type(_int_operand(v), np.int32)     # wraps, as astype
            return lax.min(lax.max(v, np.asarray(info.min, np.int32)),
                           np.asarray(top, np.int32))
        wide = randint(key, shape, as_int32(minval, info.max), as_int32(maxval, info.max + 1),
                       np.int32)
        return lax.convert_element_type(wide, dtype)
    minval, maxval = _int_operand(minval), _int_operand(maxval)
    _check_broadcastable("randint", shape, get_aval(minval).shape, get_aval(maxval).shape)
    nbits = dtype.itemsize * 8
    udt = _UINT[nbits]
    with np.errstate(over="ignore"):
        dmax = _clip_to(np.asarray(np.iinfo(dtype).max, dtype), get_aval(maxval).dtype)
        maxval_out_of_range = lax.gt(maxval, dmax)
        minval = _bcast(_clip_to(minval, dtype), shape)
        maxval = _bcast(_clip_to(maxval, dtype), shape)
        maxval_out_of_range = _bcast(maxval_out_of_range, shape)

        k1, k2 = _split2(key)
        higher = _random_bits(k1, nbits, shape)
        lower = _random_bits(k2, nbits, shape)

        span = lax.convert_element_type(lax.sub(maxval, minval), udt)
        one = np.asarray(1, udt)
        span = lax.select(lax.le(maxval, minval), lax.full(shape, one, udt), span)
        span = lax.select(lax.bitwise_and(maxval_out_of_range, lax.gt(maxval, minval)),
                          lax.add(span, one), span)
        # a span of 2**nbits wraps to 0: `_urem` then leaves its operand unchanged, which
        # makes every value of the dtype equally likely (as XLA's x % 0 == x does in JAX)
        span_is_0 = lax.eq(span, np.asarray(0, udt))
        safe_span = lax.select(span_is_0, lax.full(shape, one, udt), span)

        def _urem(x):
            return lax.select(span_is_0, x, lax.rem(x, safe_span))

        multiplier = _urem(lax.full(shape, np.asarray(2 ** (nbits // 2), udt), udt))
        multiplier = _urem(lax.mul(multiplier, multiplier))
        offset = lax.add(lax.mul(_urem(higher), multiplier), _urem(lower))
        offset = _urem(offset)
        return lax.add(minval, lax.convert_element_type(offset, dtype))


def _split2(key):
    ks = split(key, 2)
    return lax.reshape(lax.slice(ks, (0, 0), (1, 2)), (2,)), \
        lax.reshape(lax.slice(ks, (1, 0), (2, 2)), (2,))


def _shuffle(key, x, axis):
    """Shuffle `x` along `axis` by sorting on random 32-bit keys, in as many rounds as JAX
    uses (enough that ties are unlikely)."""
    from . import numpy as tnp
    a = get_aval(x)
    num_rounds = int(np.ceil(3 * np.log(max(1, a.size)) / np.log(np.iinfo(np.uint32).max)))
    is_iota = isinstance(x, np.ndarray) and a.ndim == 1 and np.array_equal(
        x, np.arange(a.shape[0]))
    for _ in range(num_rounds):
        key, subkey = _split2(key)
        sort_keys = _random_bits(subkey, 32, a.shape)
        perm = argsort(sort_keys, axis)
        if is_iota:           # shuffling arange(n): the sorting permutation is the answer
            x, is_iota = lax.convert_element_type(perm, a.dtype), False
        else:
            x = tnp.take_along_axis(x, perm, axis=axis)
    return x


def permutation(key, x, axis=0, independent=False):
    """A random permutation of `arange(x)` (integer `x`) or of `x` along `axis`."""
    from . import numpy as tnp
    key = _check_key("permutation", key)
    if isinstance(x, (int, np.integer)) or (not isinstance(x, (list, tuple))
                                             and np.ndim(x) == 0 and not isinstance(x, Tracer)):
        n = operator.index(x)
        return _shuffle(key, np.arange(n, dtype=np.int32), 0)
    x = as_array(x)
    a = get_aval(x)
    if a.ndim == 0:
        n = operator.index(concrete_or_error(x, "permutation: an integer `x`"))
        return _shuffle(key, np.arange(n, dtype=np.int32), 0)
    axis = operator.index(axis) % a.ndim
    if independent or a.ndim == 1:
        return _shuffle(key, x, axis)
    ind = _shuffle(key, np.arange(a.shape[axis], dtype=np.int32), 0)
    return tnp.take(x, ind, axis=axis)


def choice(key, a, shape=(), replace=True, p=None, axis=0):
    """Samples from `a` (an array, or `arange(a)` for an integer), with or without
    replacement, uniformly or with probabilities `p`."""
    from . import numpy as tnp
    key = _check_key("choice", key)
    shape = _shape(shape, "choice")
    if isinstance(a, (int, np.integer)) or (not isinstance(a, (Tracer, list, tuple))
                                             and np.ndim(a) == 0):
        arr = None
        n_inputs = operator.index(a)
    else:
        arr = as_array(a)
        if get_aval(arr).ndim == 0:
            n_inputs = operator.index(concrete_or_error(arr, "choice: an integer `a`"))
            arr = None
        else:
            axis = operator.index(axis) % get_aval(arr).ndim
            n_inputs = get_aval(arr).shape[axis]
    n_draws = math.prod(shape)
    out_dtype = np.dtype(np.int32) if arr is None else get_aval(arr).dtype
    if n_draws == 0:
        full_shape = shape if arr is None else (
            get_aval(arr).shape[:axis] + shape + get_aval(arr).shape[axis + 1:])
        return np.zeros(full_shape, out_dtype)
    if n_inputs <= 0:
        raise ValueError("choice: a must be greater than 0 unless no samples are taken")
    if not replace and n_draws > n_inputs:
        raise ValueError(f"choice: cannot take a larger sample ({n_draws}) than population "
                         f"({n_inputs}) when replace=False")
    if p is None:
        if replace:
            ind = randint(key, shape, 0, n_inputs)
            result = ind if arr is None else tnp.take(arr, ind, axis=axis)
        else:
            src = np.arange(n_inputs, dtype=np.int32) if arr is None else arr
            perm = permutation(key, src, axis=0 if arr is None else axis)
            result = tnp.take(perm, np.arange(n_draws), axis=0 if arr is None else axis)
    else:
        p = as_array(p)
        if not np.issubdtype(get_aval(p).dtype, np.floating):
            p = lax.convert_element_type(p, np.float32)
        if get_aval(p).shape != (n_inputs,):
            raise ValueError(f"choice: p must have shape ({n_inputs},), got "
                             f"{get_aval(p).shape}")
        pdt = get_aval(p).dtype
        if replace:
            p_cuml = tnp.cumsum(p)
            total = p_cuml[-1]
            u = _uniform(key, shape, pdt, np.asarray(0.0, pdt), np.asarray(1.0, pdt))
            r = lax.mul(total, lax.sub(np.asarray(1.0, pdt), u))
            # searchsorted(p_cuml, r, side='left') = number of cumulative sums below r
            below = lax.lt(lax.broadcast_to(p_cuml, shape + (n_inputs,)),
                           lax.broadcast_in_dim(r, shape + (n_inputs,), tuple(range(len(shape)))))
            ind = tnp.sum(below, axis=-1).astype(np.int32)
        else:
            with np.errstate(divide="ignore"):
                g = lax.add(_gumbel(key, (n_inputs,), pdt), lax.log(p))
            order = argsort(lax.neg(g), 0)          # descending, ties by lower index (top_k)
            ind = lax.slice(order, (0,), (n_draws,))
            ind = lax.reshape(ind, shape)
        result = ind if arr is None else tnp.take(arr, ind, axis=axis)
    if arr is None:
        return lax.reshape(result, shape)
    ashape = get_aval(arr).shape
    return lax.reshape(result, ashape[:axis] + shape + ashape[axis + 1:])


def categorical(key, logits, axis=-1, shape=None):
    """Samples of category indices (int32) from unnormalised log-probabilities, by the
    Gumbel-max trick: `argmax(logits + gumbel, axis)`."""
    from . import numpy as tnp
    key = _check_key("categorical", key)
    logits = as_array(logits)
    la = get_aval(logits)
    if not np.issubdtype(la.dtype, np.floating):
        logits = lax.convert_element_type(logits, np.float32)
        la = get_aval(logits)
    if la.ndim == 0:
        raise ValueError("categorical: logits must have at least one dimension")
    axis = operator.index(axis)
    if axis >= 0:
        axis -= la.ndim
    batch_shape = tuple(np.delete(np.array(la.shape, dtype=np.int64), axis).tolist())
    if shape is None:
        shape = batch_shape
    else:
        shape = _shape(shape, "categorical")
        _check_broadcastable("categorical", shape, batch_shape)
    prefix = shape[:len(shape) - len(batch_shape)]
    logits_shape = list(shape[len(shape) - len(batch_shape):])
    logits_shape.insert(axis % la.ndim, la.shape[axis])
    g = _gumbel(key, tuple(prefix) + tuple(logits_shape), la.dtype)
    expanded = logits
    if prefix:
        expanded = lax.reshape(logits, (1,) * len(prefix) + la.shape)
    return tnp.argmax(tnp.add(g, expanded), axis=axis).astype(np.int32)


# The other distributions of jax.random (built on the samplers above)
from .random_dists import (  # noqa: E402,F401
    STREAM_NOTES, ball, beta, binomial, cauchy, chisquare, clone, dirichlet, double_sided_maxwell,
    f, gamma, generalized_normal, geometric, key_dtype, key_impl, laplace, loggamma, logistic,
    lognormal, maxwell, multinomial, multivariate_normal, orthogonal, pareto, poisson,
    rademacher, rayleigh, t, triangular, wald, weibull_min)
from . import random_dists as _dists  # noqa: E402

__all__ = __all__ + [n for n in _dists.__all__ if n != "STREAM_NOTES"]
