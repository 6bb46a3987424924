"""Scalar float32 kernels of the `xla_*_f32` primitives (`transforms.xla_f32`): XLA's CPU
float32 log, log1p and erf, and JAX's float32 erf_inv, one call per element.

Each is the same sequence of float32 steps as the primitive's NumPy implementation, which is
the reference they must match bit for bit: float32 arithmetic where NumPy does float32
arithmetic (Numba keeps float32 * float32 in float32 and does not contract it into an FMA),
the exactly rounded `fma32` kernel where XLA contracts a multiply feeding an add, and bit
reinterpretation through the kernels' intrinsics. A branch is taken per element where the
NumPy code computes a branch only on the elements selecting it (same values).

Imported by `kernels.py` (generated code imports every kernel from there), after it has
defined `fma32` and the intrinsics used here. The constants come from `transforms.xla_f32`
and are frozen into these kernels' disk cache, which Numba stamps with THIS file: a change to
a constant there must come with an edit here (tests/test_random_xla_f32.py fails otherwise).
"""
from __future__ import annotations

import numpy as np

from ...xla_f32 import (ERF_ONE, ERF_P, ERF_Q, ERFINV_LARGE, ERFINV_SMALL, LOG1P_P, LOG1P_Q,
                        LOG1P_SMALL, LOG_P, LOG_Q1, LOG_Q2, LOG_SQRTHF)
from .cache import njit as _cached_njit
from .kernels import f32_as_i32, fma32, i32_as_f32

_jit = _cached_njit(cache=True, nogil=True, error_model="numpy")

_F = np.float32
_ZERO, _ONE, _HALF_NEG = _F(0.0), _F(1.0), _F(-0.5)
_INF, _NAN = _F(np.inf), _F(np.nan)
_TINY = _F(np.finfo(np.float32).tiny)
# scalars as module globals: Numba freezes them as float32 constants
(_P0, _P1, _P2, _P3, _P4, _P5, _P6, _P7, _P8) = LOG_P
_Q1, _Q2, _SQRTHF = LOG_Q1, LOG_Q2, LOG_SQRTHF
_L1P_P = LOG1P_P
_L1P_Q = LOG1P_Q
_L1P_SMALL = LOG1P_SMALL
_ERF_P, _ERF_Q, _ERF_ONE = ERF_P, ERF_Q, ERF_ONE
_EI_SMALL, _EI_LARGE = ERFINV_SMALL, ERFINV_LARGE


@_jit
def xla_log_f32(v):
    """`transforms.xla_f32.log_f32_numpy` on one float32."""
    if v == _ZERO:
        return -_INF
    if v < _ZERO or v != v:
        return _NAN
    if v == _INF:
        return _INF
    vv = v if v > _TINY else _TINY
    bits = f32_as_i32(vv)
    e = _F((bits >> np.int32(23)) - np.int32(127)) + _ONE
    m = i32_as_f32((bits & np.int32(-2139095041)) | np.int32(0x3F000000))
    if m < _SQRTHF:
        x = (m - _ONE) + m
        e = e - _ONE
    else:
        x = (m - _ONE) + _ZERO
        e = e - _ZERO
    x2 = x * x
    x3 = x2 * x
    y = fma32(x, _P0, _P1)
    y1 = fma32(x, _P3, _P4)
    y2 = fma32(x, _P6, _P7)
    y = fma32(y, x, _P2)
    y1 = fma32(y1, x, _P5)
    y2 = fma32(y2, x, _P8)
    y = fma32(y, x3, y1)
    y = fma32(y, x3, y2)
    y = fma32(y, x3, e * _Q1)
    r = fma32(x2, _HALF_NEG, x) + y
    return fma32(e, _Q2, r)


@_jit
def xla_log1p_f32(y):
    """`transforms.xla_f32.log1p_f32_numpy` on one float32."""
    if abs(y) < _L1P_SMALL:
        num = _L1P_P[0]
        den = _L1P_Q[0]
        for i in range(1, 7):
            num = fma32(num, y, _L1P_P[i])
            den = fma32(den, y, _L1P_Q[i])
        y2 = y * y
        b = (y * y2) * (num / den)
        return y + fma32(y2, _HALF_NEG, b)
    return xla_log_f32(y + _ONE)


@_jit
def xla_erf_f32(x):
    """`transforms.xla_f32.erf_f32_numpy` on one float32."""
    if abs(x) >= _ERF_ONE:
        return -_ONE if x < _ZERO else _ONE
    x2 = x * x
    p = fma32(x2, _ERF_P[0], _ERF_P[1])
    for i in range(2, 5):
        p = fma32(x2, p, _ERF_P[i])
    q = fma32(x2, _ERF_Q[0], _ERF_Q[1])
    for i in range(2, 7):
        q = fma32(x2, q, _ERF_Q[i])
    return (x * p) / q


@_jit
def xla_erfinv_f32(x):
    """`transforms.xla_f32.erfinv_f32_numpy` on one float32."""
    if x == _ONE:
        return _INF
    if x == -_ONE:
        return -_INF
    w = -xla_log1p_f32(-(x * x))
    if w < _F(5.0):
        t = w - _F(2.5)
        p = _EI_SMALL[0]
        for i in range(1, 9):
            p = fma32(p, t, _EI_SMALL[i])
    else:
        t = np.sqrt(w) - _F(3.0)
        p = _EI_LARGE[0]
        for i in range(1, 9):
            p = fma32(p, t, _EI_LARGE[i])
    return p * x
