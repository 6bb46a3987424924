"""float32 `log`, `log1p`, `erf` and `erf_inv` evaluated exactly as XLA's CPU backend
evaluates them, each ONE pointwise primitive: `xla_log_f32`, `xla_log1p_f32`, `xla_erf_f32`,
`xla_erfinv_f32`.

`transforms.random` gives JAX's samples to the last bit, so its samplers must reproduce the
float32 arithmetic JAX's programs compile to on x86-64: XLA's CPU backend evaluates float32
log with a Cephes-style polynomial (mantissa in [sqrt(1/2), sqrt(2)) around 1, exponent
times ln 2 in two parts), log1p with a rational approximation for |x| < sqrt(2) - 1, erf as
`x P(x^2) / Q(x^2)`, and JAX's float32 erf_inv is Giles' single-precision approximation
("Approximating the erfinv function", GPU Computing Gems Jade, 2011) on `w = -log1p(-x^2)`;
every multiply feeding an add is contracted into one fused multiply-add (`fma32_numpy`).

Written as `lax` operations, each of these was ~30-90 jaxpr equations (selects, bit
manipulations, one `fma32` per Horner step) and, under tracing, the plain `lax` function as
well (for its derivative): `random.normal(key, (64, 10))` alone was ~200 equations and the
inlined samplers dominated compile time of programs that draw noise. As primitives they are
one equation each, lowered to one scalar kernel per element (the Numba backend's
`kernels_xla_f32`, the same float32 steps), with

* an eager implementation in NumPy (below), the reference the kernels must match bit for bit;
* the derivative of the plain function (`lax.log`, `lax.log1p`, `lax.erf`, `lax.erf_inv`:
  1/x, 1/(1+x), 2/sqrt(pi) exp(-x^2), sqrt(pi)/2 exp(y^2)) -- the approximation's value
  with the function's exact derivative, as JAX differentiates its samplers;
* elementwise batching. They are not linear, so they have no transpose rule: reverse mode
  transposes the linear tangent expressions of their JVPs.

One primitive per function rather than one with a `fn` parameter: each has its own
derivative and its own kernel, so a shared primitive would only dispatch on `fn` in every
rule, and jaxprs read better with the function in the primitive's name.
Known limit (as in `transforms.random`): XLA flushes float32 denormals to zero, these do not.
"""
from __future__ import annotations

import math

import numpy as np

from . import lax
from .core import Primitive, ShapedArray, get_aval
from .fma32 import fma32_numpy
from .interpreters.batching import defvectorized
from .lax._util import as_array

__all__ = ["xla_log_f32", "xla_log1p_f32", "xla_erf_f32", "xla_erfinv_f32",
           "log_f32_numpy", "log1p_f32_numpy", "erf_f32_numpy", "erfinv_f32_numpy",
           "xla_log_f32_p", "xla_log1p_f32_p", "xla_erf_f32_p", "xla_erfinv_f32_p"]

_F32 = np.dtype(np.float32)
_I32 = np.dtype(np.int32)


def _f32c(bits):
    """The float32 whose bit pattern is `bits` (XLA's constants are given as bits)."""
    return np.asarray(np.uint32(bits)).view(np.float32)[()]


# XLA's float32 log: the polynomial in x = m - 1 (three interleaved Horner chains joined with
# x^3), ln 2 = Q2 - Q1 in two parts
LOG_P = tuple(_f32c(b) for b in (0x3D9021BB, 0xBDEBD1B8, 0x3DEF251A, 0xBDFE5D4F, 0x3E11E9BF,
                                 0xBE2AAE50, 0x3E4CCEAC, 0xBE7FFFFC, 0x3EAAAAAA))
LOG_Q1, LOG_Q2 = _f32c(0xB95E8083), _f32c(0x3F318000)
LOG_SQRTHF = _f32c(0x3F3504F3)                      # sqrt(1/2)
# XLA's float32 log1p for |x| < sqrt(2) - 1: x - x^2/2 + x^3 P(x)/Q(x)
LOG1P_P = (np.float32(4.527e-05),) + tuple(_f32c(b) for b in (
    0x3EFF40C5, 0x40D284FA, 0x41EF4B9C, 0x4273CC76, 0x426473AD, 0x41A05101))
LOG1P_Q = (np.float32(1.0),) + tuple(_f32c(b) for b in (
    0x417101AD, 0x42A6185B, 0x435DC32D, 0x439A8CA3, 0x43586D8A, 0x42707982))
LOG1P_SMALL = _f32c(0x3ED413CD)                     # sqrt(2) - 1
# XLA's float32 erf: x P(x^2) / Q(x^2), +-1 from |x| >= 3.832
ERF_P = tuple(_f32c(b) for b in (0x39702D51, 0x3B5F5DA2, 0x3D50B6EB, 0x3E3DA740, 0x3F906EBA))
ERF_Q = tuple(_f32c(b) for b in (0xB3FD3906, 0x37C588DF, 0x3A856D28, 0x3C6687D4, 0x3DE34C21,
                                 0x3EFEB44A)) + (np.float32(1.0),)
ERF_ONE = _f32c(0x407547CB)
# Giles' single-precision erfinv: w < 5 and w >= 5 (w = -log1p(-x^2))
ERFINV_SMALL = tuple(np.float32(c) for c in (
    2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
    -0.00125372503, -0.00417768164, 0.246640727, 1.50140941))
ERFINV_LARGE = tuple(np.float32(c) for c in (
    -0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
    -0.0076224613, 0.00943887047, 1.00167406, 2.83297682))

_TINY = np.finfo(np.float32).tiny
_F = np.float32


# ---------------------------------------------------------------------------------------------
# Eager implementations (NumPy, float32 arrays; the reference of the backend's kernels)
# ---------------------------------------------------------------------------------------------

def log_f32_numpy(v):
    """XLA's CPU float32 log of a float32 array."""
    v = np.asarray(v, _F32)
    with np.errstate(all="ignore"):
        vv = np.where(v > _TINY, v, _F(_TINY))          # NaN and v <= tiny: fixed below
        bits = vv.view(_I32)
        e = ((bits >> 23) - np.int32(127)).astype(_F32) + _F(1.0)
        m = ((bits & np.int32(-2139095041)) | np.int32(0x3F000000)).view(_F32)   # [0.5, 1)
        below = m < LOG_SQRTHF
        x = (m - _F(1.0)) + np.where(below, m, _F(0.0))
        e = e - np.where(below, _F(1.0), _F(0.0))
        x2 = x * x
        x3 = x2 * x
        p = LOG_P
        y = fma32_numpy(x, p[0], p[1])
        y1 = fma32_numpy(x, p[3], p[4])
        y2 = fma32_numpy(x, p[6], p[7])
        y = fma32_numpy(y, x, p[2])
        y1 = fma32_numpy(y1, x, p[5])
        y2 = fma32_numpy(y2, x, p[8])
        y = fma32_numpy(y, x3, y1)
        y = fma32_numpy(y, x3, y2)
        y = fma32_numpy(y, x3, e * LOG_Q1)
        r = fma32_numpy(x2, _F(-0.5), x) + y
        r = fma32_numpy(e, LOG_Q2, r)
        # log(0) = -inf, log(inf) = inf, log(negative or NaN) = NaN
        r = np.where(v == np.inf, _F(np.inf), r)
        r = np.where((v < 0) | (v != v), _F(np.nan), r)
        return np.asarray(np.where(v == 0, _F(-np.inf), r), _F32)


def _log1p_small_numpy(y):
    num = np.full(y.shape, LOG1P_P[0], _F32)
    den = np.full(y.shape, LOG1P_Q[0], _F32)
    for cp, cq in zip(LOG1P_P[1:], LOG1P_Q[1:]):
        num = fma32_numpy(num, y, cp)
        den = fma32_numpy(den, y, cq)
    y2 = y * y
    b = (y * y2) * (num / den)
    return y + fma32_numpy(y2, _F(-0.5), b)


def log1p_f32_numpy(y):
    """XLA's CPU float32 log1p of a float32 array (each branch computed only where taken)."""
    y = np.asarray(y, _F32)
    with np.errstate(all="ignore"):
        small = np.abs(y) < LOG1P_SMALL
        out = np.empty(y.shape, _F32)
        if small.any():
            out[small] = _log1p_small_numpy(y[small])
        if not small.all():
            out[~small] = log_f32_numpy(y[~small] + _F(1.0))
        return out


def erf_f32_numpy(x):
    """XLA's CPU float32 erf of a float32 array."""
    x = np.asarray(x, _F32)
    with np.errstate(all="ignore"):
        x2 = x * x
        p = fma32_numpy(x2, ERF_P[0], ERF_P[1])
        for c in ERF_P[2:]:
            p = fma32_numpy(x2, p, c)
        q = fma32_numpy(x2, ERF_Q[0], ERF_Q[1])
        for c in ERF_Q[2:]:
            q = fma32_numpy(x2, q, c)
        r = (x * p) / q
        one = np.where(x < 0, _F(-1.0), _F(1.0))
        return np.asarray(np.where(np.abs(x) >= ERF_ONE, one, r), _F32)


def _horner_numpy(coeffs, w):
    p = np.full(w.shape, coeffs[0], _F32)
    for c in coeffs[1:]:
        p = fma32_numpy(p, w, c)
    return p


def erfinv_f32_numpy(x):
    """JAX's float32 erf_inv of a float32 array: Giles' approximation on XLA's log1p, every
    Horner step one FMA; +-inf at +-1, NaN outside [-1, 1]."""
    x = np.asarray(x, _F32)
    with np.errstate(all="ignore"):
        w = -log1p_f32_numpy(-(x * x))
        small = w < _F(5.0)
        p = np.empty(x.shape, _F32)
        if small.any():
            p[small] = _horner_numpy(ERFINV_SMALL, w[small] - _F(2.5))
        if not small.all():
            p[~small] = _horner_numpy(ERFINV_LARGE, np.sqrt(w[~small]) - _F(3.0))
        out = p * x
        out = np.where(x == _F(1.0), _F(np.inf), out)
        return np.asarray(np.where(x == _F(-1.0), _F(-np.inf), out), _F32)


# ---------------------------------------------------------------------------------------------
# The primitives
# ---------------------------------------------------------------------------------------------

def _const(v, like):
    return np.full(get_aval(like).shape, v, _F32)


def _define(name, impl, deriv):
    """A float32 -> float32 pointwise primitive with eager `impl` and the JVP
    `t * deriv(x, y)` (y the primitive's own output)."""
    p = Primitive(name)
    p.def_impl(impl)

    @p.def_abstract_eval
    def _abstract(x):
        if x.dtype != _F32:
            raise TypeError(f"{name}: operand must be float32, got {x.str_short()}")
        return ShapedArray(x.shape, _F32)

    @p.def_jvp
    def _jvp(primals, tangents):
        x, = primals
        t, = tangents
        y = p.bind(x)
        if t is None:
            return y, None
        return y, lax.mul(t, deriv(x, y))

    defvectorized(p)
    return p


xla_log_f32_p = _define("xla_log_f32", log_f32_numpy, lambda x, y: lax.div(_const(1.0, x), x))
xla_log1p_f32_p = _define(
    "xla_log1p_f32", log1p_f32_numpy,
    lambda x, y: lax.div(_const(1.0, x), lax.add(x, _const(1.0, x))))
xla_erf_f32_p = _define(
    "xla_erf_f32", erf_f32_numpy,
    lambda x, y: lax.mul(lax.exp(lax.neg(lax.mul(x, x))), _const(2.0 / math.sqrt(math.pi), x)))
xla_erfinv_f32_p = _define(
    "xla_erfinv_f32", erfinv_f32_numpy,
    lambda x, y: lax.mul(lax.exp(lax.mul(y, y)), _const(math.sqrt(math.pi) / 2.0, x)))


def _bind(p, x):
    x = as_array(x)
    dt = get_aval(x).dtype
    if dt != _F32:
        raise TypeError(f"{p.name}: argument x must be float32, got {dt}")
    return p.bind(x)


def xla_log_f32(x):
    """float32 `log(x)` with XLA's CPU evaluation (JAX's bits); differentiates as `lax.log`."""
    return _bind(xla_log_f32_p, x)


def xla_log1p_f32(x):
    """float32 `log1p(x)` with XLA's CPU evaluation; differentiates as `lax.log1p`."""
    return _bind(xla_log1p_f32_p, x)


def xla_erf_f32(x):
    """float32 `erf(x)` with XLA's CPU evaluation; differentiates as `lax.erf`."""
    return _bind(xla_erf_f32_p, x)


def xla_erfinv_f32(x):
    """JAX's float32 `erf_inv(x)` (Giles' approximation on XLA's log1p, FMA Horner steps);
    differentiates as `lax.erf_inv`."""
    return _bind(xla_erfinv_f32_p, x)
