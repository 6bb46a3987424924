"""The `fma32` primitive: `a * b + c` on float32 arrays with ONE rounding (a fused
multiply-add), as XLA's CPU code generator contracts a multiply feeding an add.

`transforms.random` evaluates JAX's samplers (uniform's affine map, the float32 log/log1p/erf
polynomials, erf_inv's Horner steps) with it so that values equal JAX's to the last bit.
One primitive instead of its ~20-operation emulation in `lax` keeps traced programs small: a
jitted `random.normal` used to expand into about a thousand scalar statements, most of them
these emulations, which dominated compile time.

The value is computed in float64, where the product of two float32 values is exact; the
sum's own rounding error (two-sum) breaks the one case in which rounding that float64 sum to
float32 would round twice wrongly: a sum exactly halfway between two float32 values (the 29
bits below float32 precision equal to 1 followed by zeros), nudged one float64 ulp towards
the exact sum (that is the eager implementation; jitted code uses LLVM's `fma`, the FMA
instruction, which rounds once too and so gives the same bits). It differentiates as
`a * b + c` and batches elementwise.
"""
from __future__ import annotations

import numpy as np

from . import lax
from .core import Primitive, ShapedArray, get_aval
from .interpreters.batching import defvectorized
from .lax._util import as_array
from .lax.elementwise import add_tangents

__all__ = ["fma32", "fma32_numpy", "fma32_p"]

_F32 = np.dtype(np.float32)
_LOW_BITS = (1 << 29) - 1        # the float64 mantissa bits below float32 precision
_HALF = 1 << 28                  # ... holding exactly half a float32 ulp


def fma32_numpy(a, b, c):
    """`a * b + c` rounded once to float32, on NumPy operands (broadcast against each other);
    the tie fix-up is computed only where a tie occurs (rarely)."""
    a, b, c = (np.asarray(v, np.float64) for v in (a, b, c))
    s = np.multiply(a, b)                        # exact
    s += c
    bits = s.reshape(-1).view(np.int64)
    tie = np.bitwise_and(bits, _LOW_BITS) == _HALF
    if tie.any():
        shape = s.shape
        pb = (np.broadcast_to(a, shape).reshape(-1)[tie]
              * np.broadcast_to(b, shape).reshape(-1)[tie])
        cb = np.broadcast_to(c, shape).reshape(-1)[tie]
        sb = bits[tie].view(np.float64)
        bb = sb - pb
        err = (pb - (sb - bb)) + (cb - bb)
        # towards err: +1 on the magnitude when err has the sign of s, else -1 (0: exact)
        step = np.where((err < 0) == (sb < 0), 1, -1) * (err != 0)
        bits[tie] += step.astype(np.int64)
    return np.asarray(s.astype(np.float32))


fma32_p = Primitive("fma32")


@fma32_p.def_impl
def _fma32_impl(a, b, c):
    return fma32_numpy(a, b, c)


@fma32_p.def_abstract_eval
def _fma32_abstract(a, b, c):
    avals = (a, b, c)
    if any(v.dtype != _F32 or v.shape != a.shape for v in avals):
        raise TypeError(f"fma32: operands must be float32 arrays of one shape, got "
                        f"{', '.join(v.str_short() for v in avals)}")
    return ShapedArray(a.shape, _F32)


@fma32_p.def_jvp
def _fma32_jvp(primals, tangents):
    # the tangent of `a * b + c`, in the order `lax.mul`/`lax.add` form it (same bits)
    a, b, c = primals
    ta, tb, tc = tangents
    prod = add_tangents(None if ta is None else lax.mul(ta, b),
                        None if tb is None else lax.mul(a, tb))
    return fma32_p.bind(a, b, c), add_tangents(prod, tc)


defvectorized(fma32_p)           # elementwise over operands of one shape


def fma32(a, b, c):
    """`a * b + c` with one rounding for float32 operands (arrays or scalars, broadcast to one
    shape); a TypeError names the operand that is not float32."""
    args = []
    for name, v in zip("abc", (a, b, c)):
        v = as_array(v)
        if get_aval(v).dtype != _F32:
            raise TypeError(f"fma32: operand {name} must be float32, got {get_aval(v).dtype}")
        args.append(v)
    shape = np.broadcast_shapes(*(get_aval(v).shape for v in args))
    args = [v if get_aval(v).shape == shape else lax.broadcast_to(v, shape) for v in args]
    return fma32_p.bind(*args)
