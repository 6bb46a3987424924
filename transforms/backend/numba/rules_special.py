"""Pointwise lowerings of the special-function primitives (`lax/special.py`): Numba's math
where it has the function (lgamma, erfc), else the float64 kernels of `kernels_special.py`;
float32 operands are computed in float64 and rounded once."""
from __future__ import annotations

import numpy as np

from .rules_elementwise import register_pointwise


def _f64_kernel(name, template):
    @register_pointwise(name)
    def rule(ctx, x, **params):
        dt = ctx.out_dtype
        if dt not in (np.float32, np.float64):
            raise TypeError(f"jit: '{name}' needs a float32 or float64 operand, got {dt}")
        arg = x if dt == np.float64 else f"_np.float64({x})"
        expr = template(ctx, arg, **params)
        return expr if dt == np.float64 else ctx.cast(expr, dt)
    return rule


_f64_kernel("lgamma", lambda ctx, x: f"_math.lgamma({x})")
_f64_kernel("erfc", lambda ctx, x: f"_math.erfc({x})")
_f64_kernel("digamma", lambda ctx, x: f"{ctx.kernel('digamma_f64')}({x})")
_f64_kernel("polygamma", lambda ctx, x, n: f"{ctx.kernel('polygamma_f64')}({int(n)}, {x})")
_f64_kernel("erf_inv", lambda ctx, x: f"{ctx.kernel('erf_inv_f64')}({x})")
_f64_kernel("bessel_i0e", lambda ctx, x: f"{ctx.kernel('bessel_i0e_f64')}({x})")
_f64_kernel("bessel_i1e", lambda ctx, x: f"{ctx.kernel('bessel_i1e_f64')}({x})")
