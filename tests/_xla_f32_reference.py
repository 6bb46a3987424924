"""The float32 log/log1p/erf/erfinv of `transforms.random` as they were before they became
the `xla_*_f32` primitives (`transforms.xla_f32`): compositions of `lax` operations and
`fma32`, evaluated eagerly here. tests/test_random_xla_f32.py checks that the primitives give
these values bit for bit (the compositions were themselves checked against JAX's samples).
"""
import numpy as np

from transforms import lax
from transforms.core import Tracer, get_aval
from transforms.fma32 import fma32_numpy
from transforms.random import bitcast_convert_type


def _fma32_value(a, b, c):
    return fma32_numpy(a, b, c)


_fma32 = _fma32_value

_ERFINV32_SMALL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                   0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV32_LARGE = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                   0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _f32c(bits):
    return np.asarray(np.uint32(bits)).view(np.float32)


_LOG_P = [_f32c(b) for b in (0x3D9021BB, 0xBDEBD1B8, 0x3DEF251A, 0xBDFE5D4F, 0x3E11E9BF,
                             0xBE2AAE50, 0x3E4CCEAC, 0xBE7FFFFC, 0x3EAAAAAA)]
_LOG_Q1, _LOG_Q2 = _f32c(0xB95E8083), _f32c(0x3F318000)      # ln 2 = Q2 - Q1 (two parts)
_LOG1P_P = [np.float32(4.527e-05)] + [_f32c(b) for b in (
    0x3EFF40C5, 0x40D284FA, 0x41EF4B9C, 0x4273CC76, 0x426473AD, 0x41A05101)]
_LOG1P_Q = [np.float32(1.0)] + [_f32c(b) for b in (
    0x417101AD, 0x42A6185B, 0x435DC32D, 0x439A8CA3, 0x43586D8A, 0x42707982)]


def _log_f32_value(v):
    f32, i32 = np.float32, np.int32
    shape = get_aval(v).shape
    full = lambda x: lax.full(shape, x, np.float32)  # noqa: E731
    tiny = np.finfo(np.float32).tiny
    vv = lax.select(lax.gt(v, f32(tiny)), v, full(tiny))
    bits = bitcast_convert_type(vv, i32)
    e = lax.add(lax.convert_element_type(
        lax.sub(lax.shift_right_logical(bits, np.asarray(23, i32)), np.asarray(127, i32)),
        np.float32), f32(1.0))
    m = bitcast_convert_type(lax.bitwise_or(lax.bitwise_and(bits, np.asarray(-2139095041, i32)),
                                            np.asarray(0x3F000000, i32)), np.float32)
    below = lax.lt(m, _f32c(0x3F3504F3))
    x = lax.add(lax.sub(m, f32(1.0)), lax.select(below, m, full(0.0)))
    e = lax.sub(e, lax.select(below, full(1.0), full(0.0)))
    x2 = lax.mul(x, x)
    x3 = lax.mul(x2, x)
    p = _LOG_P
    y = _fma32_value(x, p[0], p[1])
    y1 = _fma32_value(x, p[3], p[4])
    y2 = _fma32_value(x, p[6], p[7])
    y = _fma32_value(y, x, p[2])
    y1 = _fma32_value(y1, x, p[5])
    y2 = _fma32_value(y2, x, p[8])
    y = _fma32_value(y, x3, y1)
    y = _fma32_value(y, x3, y2)
    y = _fma32_value(y, x3, lax.mul(e, _LOG_Q1))
    r = lax.add(_fma32_value(x2, f32(-0.5), x), y)
    r = _fma32_value(e, _LOG_Q2, r)
    # log(0) = -inf, log(inf) = inf, log(negative or NaN) = NaN
    r = lax.select(lax.eq(v, f32(np.inf)), full(np.inf), r)
    r = lax.select(lax.bitwise_or(lax.lt(v, f32(0.0)), lax.ne(v, v)), full(np.nan), r)
    return lax.select(lax.eq(v, f32(0.0)), full(-np.inf), r)


def _branches(cond, if_true, if_false, x):
    """`select(cond, if_true(x), if_false(x))`; on NumPy input each branch runs only on the
    elements it is selected for (same values, less work)."""
    if isinstance(x, Tracer) or isinstance(cond, Tracer):
        return lax.select(cond, if_true(x), if_false(x))
    x, cond = np.asarray(x), np.asarray(cond)
    out = np.empty(x.shape, np.float32)
    if cond.any():
        out[cond] = if_true(x[cond])
    if not cond.all():
        out[~cond] = if_false(x[~cond])
    return out


def _log1p_small(y):
    f32 = np.float32
    shape = get_aval(y).shape
    num = lax.full(shape, _LOG1P_P[0], np.float32)
    den = lax.full(shape, _LOG1P_Q[0], np.float32)
    for cp, cq in zip(_LOG1P_P[1:], _LOG1P_Q[1:]):
        num = _fma32_value(num, y, cp)
        den = _fma32_value(den, y, cq)
    y2 = lax.mul(y, y)
    b = lax.mul(lax.mul(y, y2), lax.div(num, den))
    return lax.add(y, _fma32_value(y2, f32(-0.5), b))


def _log1p_f32_value(y):
    return _branches(lax.lt(lax.abs(y), _f32c(0x3ED413CD)), _log1p_small,
                     lambda v: _log_f32_value(lax.add(v, np.float32(1.0))), y)


_ERF_P = [_f32c(b) for b in (0x39702D51, 0x3B5F5DA2, 0x3D50B6EB, 0x3E3DA740, 0x3F906EBA)]
_ERF_Q = [_f32c(b) for b in (0xB3FD3906, 0x37C588DF, 0x3A856D28, 0x3C6687D4, 0x3DE34C21,
                             0x3EFEB44A)] + [np.float32(1.0)]


def _erf_f32_value(x):
    """XLA's CPU float32 erf: `x P(x^2) / Q(x^2)` with FMA Horner steps, +-1 from |x| >=
    3.832 (0x407547CB)."""
    shape = get_aval(x).shape
    x2 = lax.mul(x, x)
    p = _fma32_value(x2, _ERF_P[0], _ERF_P[1])
    for c in _ERF_P[2:]:
        p = _fma32_value(x2, p, c)
    q = _fma32_value(x2, _ERF_Q[0], _ERF_Q[1])
    for c in _ERF_Q[2:]:
        q = _fma32_value(x2, q, c)
    r = lax.div(lax.mul(x, p), q)
    one = lax.select(lax.lt(x, np.float32(0.0)), lax.full(shape, -1.0, np.float32),
                     lax.full(shape, 1.0, np.float32))
    return lax.select(lax.ge(lax.abs(x), _f32c(0x407547CB)), one, r)


def _horner_fma32(coeffs, w):
    """Horner's rule with every step one FMA (as XLA's CPU backend contracts it)."""
    p = lax.full(get_aval(w).shape, np.float32(coeffs[0]), np.float32)
    for c in coeffs[1:]:
        p = _fma32(p, w, np.float32(c))
    return p


def erfinv_f32(x):
    """The float32 branch of the former `random.erfinv` (eager)."""
    x = np.asarray(x, np.float32)
    c = lambda v: np.asarray(v, np.float32)  # noqa: E731
    with np.errstate(all="ignore"):
        w = lax.neg(_log1p_f32_value(lax.neg(lax.mul(x, x))))
        small = lax.lt(w, c(5.0))
        p = _branches(small, lambda w: _horner_fma32(_ERFINV32_SMALL, lax.sub(w, c(2.5))),
                      lambda w: _horner_fma32(_ERFINV32_LARGE, lax.sub(lax.sqrt(w), c(3.0))),
                      w)
        out = lax.mul(p, x)
        shape = get_aval(x).shape
        out = lax.select(lax.eq(x, c(1.0)), lax.full(shape, np.inf, np.float32), out)
        return lax.select(lax.eq(x, c(-1.0)), lax.full(shape, -np.inf, np.float32), out)


def log_f32(v):
    with np.errstate(all="ignore"):
        return _log_f32_value(np.asarray(v, np.float32))


def log1p_f32(v):
    with np.errstate(all="ignore"):
        return _log1p_f32_value(np.asarray(v, np.float32))


def erf_f32(v):
    with np.errstate(all="ignore"):
        return _erf_f32_value(np.asarray(v, np.float32))
