"""The one compiled loop of a reduction over processes: add the last contribution and scale.

`_direct.DirectSum` adds the contributions of the other members to this member's chunk;
doing the final add and pmean's 1/n in one pass, rather than NumPy's add then multiply (a
second pass over the chunk), saves about a quarter of that work. The loop is written in place
(`y = (x + y) * factor`, two arrays): with a separate `out` that is `y`, LLVM's run-time
overlap check fails and the loop runs unvectorised - measured 108 us instead of 64 us for
1.3 MB of float32, as slow as two NumPy passes. Compiled on first use, cached on disk like the
backend's kernels.
"""
from __future__ import annotations

import numpy as np

_kernel = None


def _get():
    global _kernel
    if _kernel is None:
        from ..backend.numba.cache import njit

        @njit(cache=True, nogil=True, error_model="numpy")
        def add_then_scale(x, y, factor, divide):
            if divide:
                for i in range(y.size):
                    y[i] = (x[i] + y[i]) / factor
            else:
                for i in range(y.size):
                    y[i] = (x[i] + y[i]) * factor
        _kernel = add_then_scale
    return _kernel


def add_scaled_into(x, y, scale=None, divide=None):
    """`y = (x + y) * scale`, or `/ divide`, or plain `x + y`, in place (1-D arrays of one
    dtype that do not overlap)."""
    if scale is None and divide is None:
        np.add(x, y, out=y)
        return
    factor = scale if divide is None else divide
    _get()(x, y, np.asarray(factor, y.dtype)[()], divide is not None)
