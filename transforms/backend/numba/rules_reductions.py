"""argmax/argmin and cumulative sums/products (the plain reductions are fused into loop
nests by `fusion.py`/`lowering.py`)."""
from __future__ import annotations

import numpy as np

from .lowering import register_lowering


def _outer_loops(ctx, shape, axis):
    """Loops over every dim but `axis`; returns the index list ('_j' at `axis`)."""
    idx, opened = [], 0
    for d, n in enumerate(shape):
        if d == axis:
            idx.append("_j")
        elif n == 1:
            idx.append("0")
        else:
            ctx.emit(f"for _i{d} in {ctx.range(n)}:")
            ctx.em.level += 1
            opened += 1
            idx.append(f"_i{d}")
    return idx, opened


def _arg(name):
    @register_lowering(name)
    def rule(ctx, eqn):
        axis = eqn.params["axis"]
        x_aval = eqn.invars[0].aval
        n = x_aval.shape[axis]
        odt = eqn.outvars[0].aval.dtype
        idx, opened = _outer_loops(ctx, x_aval.shape, axis)
        best, pos, v = ctx.fresh("_best"), ctx.fresh("_pos"), ctx.fresh("_v")
        ctx.emit(f"{best} = {ctx.read(0, [('0' if i == '_j' else i) for i in idx])}")
        ctx.emit(f"{pos} = 0")
        with ctx.block(f"for _j in {ctx.range(n, 1)}:"):
            ctx.emit(f"{v} = {ctx.read(0, idx)}")
            cmp = ">" if name == "argmax" else "<"
            if x_aval.dtype.kind == "f":
                # the first NaN wins, as in NumPy
                cond = f"{v} {cmp} {best} or ({v} != {v} and {best} == {best})"
            else:
                cond = f"{v} {cmp} {best}"
            with ctx.block(f"if {cond}:"):
                ctx.emit(f"{best} = {v}")
                ctx.emit(f"{pos} = _j")
        oix = [i for d, i in enumerate(idx) if d != axis]
        ctx.emit(f"{ctx.out_elem(0, oix)} = {ctx.dtype(odt)}({pos})")
        ctx.em.level -= opened
    return rule


_arg("argmax")
_arg("argmin")


def _cumulative(name, op):
    @register_lowering(name)
    def rule(ctx, eqn):
        axis, reverse = eqn.params["axis"], eqn.params["reverse"]
        x_aval = eqn.invars[0].aval
        dt = x_aval.dtype
        n = x_aval.shape[axis]
        idx, opened = _outer_loops(ctx, x_aval.shape, axis)
        acc = ctx.fresh("_acc")
        # -0.0 is the exact additive identity (NumPy: cumsum([-0.]) == [-0.])
        init = (-0.0 if dt.kind == "f" else 0) if name == "cumsum" else 1
        ctx.emit(f"{acc} = {ctx.literal(init, dt)}")
        rng = f"range({n} - 1, -1, -1)" if reverse else ctx.range(n)
        with ctx.block(f"for _j in {rng}:"):
            x = ctx.read(0, idx)
            if dt == np.bool_:
                e = f"({acc} or {x})" if name == "cumsum" else f"({acc} and {x})"
            else:
                e = f"{acc} {op} {x}"
                if dt not in (np.float32, np.float64, np.int64, np.uint64):
                    e = f"{ctx.dtype(dt)}({e})"
            ctx.emit(f"{acc} = {e}")
            ctx.emit(f"{ctx.out_elem(0, idx)} = {acc}")
        ctx.em.level -= opened
    return rule


_cumulative("cumsum", "+")
_cumulative("cumprod", "*")
