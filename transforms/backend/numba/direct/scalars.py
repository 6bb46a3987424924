"""Scalar types of the direct compiler and Numba's typing rules for them.

Values are typed by NumPy dtypes (bool, int8..int64, uint8..uint64, float32, float64). The
rules below reproduce what Numba's typing gives for the same Python expression (measured
against Numba 0.68 operator by operator), so a function compiled directly computes in the
same types, hence to the same bits, as the Numba-compiled one:

* ``+ - * // %`` on integers (bool counts as one) compute in int64, or uint64 when both are
  unsigned; with a float involved, in NumPy's promotion of the two (float32 with a 32/64-bit
  integer is float64, with bool/int8/uint8/int16/uint16 float32);
* ``/`` on two integers gives float64, else the promotion;
* ``& | ^`` of two bools is bool, else the integer rule; shifts take the left operand's
  signedness at 64 bits;
* a conditional expression, ``min``/``max`` and a variable assigned several types take
  NumPy's promotion of the types (int64 with uint64 is float64).
"""
from __future__ import annotations

import numpy as np

from llvmlite import ir

BOOL = np.dtype(bool)
I64 = np.dtype(np.int64)
U64 = np.dtype(np.uint64)
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)

SUPPORTED = frozenset(np.dtype(t) for t in (
    bool, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float32, np.float64))


class Unsupported(Exception):
    """The function uses something the direct compiler does not compile (Numba then does)."""


def check(t):
    if t not in SUPPORTED:
        raise Unsupported(f"dtype {t}")
    return t


def is_float(t):
    return t.kind == "f"


def is_int(t):
    return t.kind in "iub"


def ll(t):
    """The LLVM type of a scalar value of dtype `t` (bool is i1)."""
    if t.kind == "b":
        return ir.IntType(1)
    if t.kind in "iu":
        return ir.IntType(8 * t.itemsize)
    if t == F32:
        return ir.FloatType()
    if t == F64:
        return ir.DoubleType()
    raise Unsupported(f"dtype {t}")


def ll_abi(t):
    """The LLVM type of a scalar argument passed from C (ctypes): bool is a C bool byte."""
    return ir.IntType(8) if t.kind == "b" else ll(t)


def ll_mem(t):
    """The LLVM type of an array element of dtype `t` (bool is a byte)."""
    return ir.IntType(8) if t.kind == "b" else ll(t)


def promote(a, b):
    return check(np.promote_types(a, b))


def arith(a, b):
    """Result type of + - * // % (Numba's rules)."""
    if is_float(a) or is_float(b):
        return promote(a, b)
    return U64 if (a.kind == "u" and b.kind == "u") else I64


def truediv(a, b):
    if is_float(a) or is_float(b):
        return promote(a, b)
    return F64


def bitwise(a, b):
    if is_float(a) or is_float(b):
        raise Unsupported("bitwise operation on floats")
    if a.kind == "b" and b.kind == "b":
        return BOOL
    return U64 if (a.kind == "u" and b.kind == "u") else I64


def shift(a, b):
    if is_float(a) or is_float(b):
        raise Unsupported("shift of floats")
    return U64 if a.kind == "u" else I64


def unify(a, b):
    """The type of a variable (or conditional expression) given types `a` and `b`."""
    return a if a == b else promote(a, b)


def float_of_int(t):
    """The float type NumPy's ufuncs (sqrt, exp, rint...) compute an integer `t` in."""
    return F32 if (t.kind == "b" or t.itemsize <= 2) else F64
