"""The registry of lowering rules for non-fused primitives (see `lowering` for how to write one)."""
from __future__ import annotations


LOWERINGS = {}
CALLS_BLAS = set()      # primitives whose lowering calls a threaded library (BLAS, LAPACK)


def register_lowering(name, calls_blas=False):
    """Decorator: `rule(ctx, eqn)` lowers equations of primitive `name` (see module doc).
    `calls_blas`: the rule calls BLAS/LAPACK, whose own threads rule out `prange` loops in
    the same function."""
    def deco(fn):
        LOWERINGS[name] = fn
        if calls_blas:
            CALLS_BLAS.add(name)
        return fn
    return deco


def _pointwise_rules():
    from .rules_elementwise import POINTWISE
    return POINTWISE
