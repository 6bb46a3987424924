"""Reductions: the plain ones (sum, prod, max, min, and, or) are accumulators fused into
loop nests (`register_reduction`: identity and combine); argmax/argmin and cumulative
sums/products are opaque rules."""
from __future__ import annotations

import numpy as np

from .emit import dtype_ctor
from .lowering import register_lowering
from .registry import register_reduction


def _small_int(dtype):
    """Numba widens these in arithmetic: the combined value is cast back (wrap-around)."""
    return dtype.kind in "iu" and dtype not in (np.int64, np.uint64)


def _arith(op, bool_op, identity):
    """Sum or product: `op` on numbers, `bool_op` on booleans."""
    def init(mod, dtype):
        return mod.lit(identity, np.dtype(dtype))

    def combine(mod, acc, v, dtype):
        dtype = np.dtype(dtype)
        if dtype == np.bool_:
            return f"({acc} {bool_op} {v})"
        if op == "+" and dtype in (np.float32, np.float64):
            # reassociable: LLVM vectorises the sum (kernels.add_reassoc)
            return f"{mod.kernel('add_reassoc')}({acc}, {v})"
        e = f"{acc} {op} {v}"
        return f"{dtype_ctor(dtype)}({e})" if _small_int(dtype) else e
    return init, combine


def _logical(bool_op, identity):
    """All or any."""
    def init(mod, dtype):
        return identity

    def combine(mod, acc, v, dtype):
        return f"({acc} {bool_op} {v})"
    return init, combine


def _extreme(name, is_max):
    """Max or min: NaN-propagating kernels for floats, `or`/`and` for booleans."""
    def init(mod, dtype):
        dtype = np.dtype(dtype)
        if dtype == np.bool_:
            return "False" if is_max else "True"
        if dtype.kind == "f":
            return mod.lit(-np.inf if is_max else np.inf, dtype)
        if dtype.kind == "c":
            raise NotImplementedError(f"jit: {name} of complex values is not supported by the "
                                      f"Numba backend")
        info = np.iinfo(dtype)
        return mod.lit(info.min if is_max else info.max, dtype)

    def combine(mod, acc, v, dtype):
        dtype = np.dtype(dtype)
        if dtype == np.bool_:
            return f"({acc} {'or' if is_max else 'and'} {v})"
        if dtype in (np.float32, np.float64):
            # LLVM vectorises these intrinsics' reductions (not maxf's selects)
            return f"{mod.kernel('max_reduce' if is_max else 'min_reduce')}({acc}, {v})"
        if dtype.kind == "f":
            return f"{mod.kernel('maxf' if is_max else 'minf')}({acc}, {v})"
        return f"({acc} if {acc} {'>=' if is_max else '<='} {v} else {v})"
    return init, combine


register_reduction("reduce_sum", *_arith("+", "or", 0), add_apart=True)
register_reduction("reduce_prod", *_arith("*", "and", 1))
register_reduction("reduce_and", *_logical("and", "True"))
register_reduction("reduce_or", *_logical("or", "False"))
register_reduction("reduce_max", *_extreme("reduce_max", True))
register_reduction("reduce_min", *_extreme("reduce_min", False))


def _arg(name):
    @register_lowering(name)
    def rule(ctx, eqn):
        axis = eqn.params["axis"]
        x_aval = eqn.invars[0].aval
        n = x_aval.shape[axis]
        odt = eqn.outvars[0].aval.dtype
        # loops over every dim but `axis` (`_j`, the rule's own loop)
        with ctx.loops(x_aval.shape, skip=(axis,)) as idx:
            idx[axis] = "_j"
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
        # loops over every dim but `axis` (`_j`, the rule's own loop)
        with ctx.loops(x_aval.shape, skip=(axis,)) as idx:
            idx[axis] = "_j"
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
    return rule


_cumulative("cumsum", "+")
_cumulative("cumprod", "*")
