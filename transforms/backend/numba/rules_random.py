"""Numba lowering of `argsort` (defined in `transforms.random`; used by `random.permutation`,
`random.choice(replace=False)` and anything that shuffles), and of the pointwise `fma32`
(LLVM's `fma` per element through the `kernels.fma32` intrinsic: the samplers' exactly
rounded multiply-adds) and
`xla_log_f32`/`xla_log1p_f32`/`xla_erf_f32`/`xla_erfinv_f32` (the samplers' float32 functions
as XLA evaluates them, `transforms.xla_f32`: one scalar kernel call per element too).

`threefry2x32` and `bitcast_convert_type` are pointwise and live in `rules_elementwise`.
The operand is viewed as (outer, n, inner) around the sorted axis; each line of n values is
copied out, sorted with NumPy's stable merge sort (as the eager implementation:
`np.argsort(kind="stable")`) and the int32 indices written back.
"""
from __future__ import annotations

import math

from .lowering import dtype_ctor, register_lowering
from .registry import register_pointwise


@register_lowering("argsort")
def _lower_argsort(ctx, eqn):
    axis = eqn.params["axis"]
    shape = eqn.invars[0].aval.shape
    dt = eqn.invars[0].aval.dtype
    n = shape[axis]
    outer, inner = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    x = ctx.array(0)
    out = ctx.out(0)
    x3, o3, line = ctx.fresh("_as_x"), ctx.fresh("_as_o"), ctx.fresh("_as_line")
    a, b, j, idx = ctx.fresh("_as_a"), ctx.fresh("_as_b"), ctx.fresh("_as_j"), ctx.fresh("_as_i")
    ctx.emit(f"{x3} = {x}.reshape(({outer}, {n}, {inner}))")
    ctx.emit(f"{o3} = {out}.reshape(({outer}, {n}, {inner}))")
    ctx.emit(f"{line} = _np.empty({n}, {dtype_ctor(dt)})")
    with ctx.block(f"for {a} in range({outer}):"):
        with ctx.block(f"for {b} in range({inner}):"):
            with ctx.block(f"for {j} in range({n}):"):
                ctx.emit(f"{line}[{j}] = {x3}[{a}, {j}, {b}]")
            ctx.emit(f"{idx} = _np.argsort({line}, kind='mergesort')")
            with ctx.block(f"for {j} in range({n}):"):
                ctx.emit(f"{o3}[{a}, {j}, {b}] = _np.int32({idx}[{j}])")


@register_pointwise("fma32")
def _fma32(ctx, a, b, c):
    return f"{ctx.kernel('fma32')}({a}, {b}, {c})"


def _xla_f32_rule(name):
    # one call of the float32 scalar kernel per element (kernels_xla_f32: the same steps as
    # the primitive's NumPy implementation, so jit and eager agree to the bit)
    @register_pointwise(name)
    def rule(ctx, x):
        return f"{ctx.kernel(name)}({x})"
    return rule


for _name in ("xla_log_f32", "xla_log1p_f32", "xla_erf_f32", "xla_erfinv_f32"):
    _xla_f32_rule(_name)
