"""gather (clamped) and scatter / scatter_add / scatter_mul (out-of-bounds updates dropped),
as generated loops over the index batch on flat storage."""
from __future__ import annotations

import numpy as np

from .lowering import register_lowering


def _geometry(x_shape, idx_aval):
    """(k, number of index tuples, leading dims of x, their C strides in rows, row width)."""
    k = idx_aval.shape[-1]
    nb = int(np.prod(idx_aval.shape[:-1], dtype=np.int64))
    lead = x_shape[:k]
    strides, acc = [], 1
    for n in reversed(lead):
        strides.append(acc)
        acc *= n
    w = int(np.prod(x_shape[k:], dtype=np.int64))
    return k, nb, lead, list(reversed(strides)), w


def _row_expr(lead, strides, w):
    terms = []
    for d, s in enumerate(strides):
        if lead[d] > 1:
            terms.append(f"_j{d}" if s * w == 1 else f"{s * w} * _j{d}")
    return " + ".join(terms) if terms else "0"


@register_lowering("gather")
def _gather(ctx, eqn):
    x_aval, i_aval = eqn.invars[0].aval, eqn.invars[1].aval
    k, nb, lead, strides, w = _geometry(x_aval.shape, i_aval)
    if nb == 0 or w == 0:
        return
    x, xo = ctx.flat(0)
    ix, io = ctx.flat(1)
    out, oo = ctx.out_flat(0)
    if eqn.params.get("mode") == "fill":
        _gather_fill(ctx, eqn, x, xo, ix, io, out, oo, k, nb, lead, strides, w)
        return
    with ctx.block(f"for _b in {ctx.range(nb)}:"):
        for d, n in enumerate(lead):
            if n > 1:
                ctx.emit(f"_j{d} = min(max(_np.int64({ix}[{io} + {k} * _b + {d}]), 0), {n - 1})")
        ctx.emit(f"_r = {xo} + {_row_expr(lead, strides, w)}")
        if w == 1:
            ctx.emit(f"{out}[{oo} + _b] = {x}[_r]")
        else:
            with ctx.block(f"for _w in {ctx.range(w)}:"):
                ctx.emit(f"{out}[{oo} + {w} * _b + _w] = {x}[_r + _w]")


def _gather_fill(ctx, eqn, x, xo, ix, io, out, oo, k, nb, lead, strides, w):
    """mode='fill': an out-of-bounds index tuple gives the fill value for its whole row."""
    from ...lax.indexing import default_fill_value
    from .lowering import format_literal
    dt = eqn.invars[0].aval.dtype
    fv = eqn.params.get("fill_value")
    fill = format_literal(np.asarray(default_fill_value(dt) if fv is None else fv).astype(dt),
                          dt)
    with ctx.block(f"for _b in {ctx.range(nb)}:"):
        conds = []
        for d, n in enumerate(lead):
            ctx.emit(f"_j{d} = _np.int64({ix}[{io} + {k} * _b + {d}])")
            conds.append(f"0 <= _j{d} < {n}")
        ctx.emit(f"_ok = {' and '.join(conds) if conds else 'True'}")
        ctx.emit(f"_r = {xo} + ({_row_expr(lead, strides, w)} if _ok else 0)")
        if w == 1:
            ctx.emit(f"{out}[{oo} + _b] = {x}[_r] if _ok else {fill}")
        else:
            with ctx.block(f"for _w in {ctx.range(w)}:"):
                ctx.emit(f"{out}[{oo} + {w} * _b + _w] = {x}[_r + _w] if _ok else {fill}")


def _scatter(name, combine):
    @register_lowering(name)
    def rule(ctx, eqn):
        x_aval, i_aval = eqn.invars[0].aval, eqn.invars[1].aval
        ctx.copy_into(0, 0)
        k, nb, lead, strides, w = _geometry(x_aval.shape, i_aval)
        if nb == 0 or w == 0 or any(n == 0 for n in lead):
            return
        out, oo = ctx.out_flat(0)
        ix, io = ctx.flat(1)
        upd, uo = ctx.flat(2)
        dt = x_aval.dtype
        with ctx.block(f"for _b in {ctx.range(nb)}:"):
            conds = []
            for d, n in enumerate(lead):
                ctx.emit(f"_j{d} = _np.int64({ix}[{io} + {k} * _b + {d}])")
                conds.append(f"0 <= _j{d} < {n}")
            with ctx.block(f"if {' and '.join(conds) if conds else 'True'}:",
                           "out-of-bounds updates are dropped"):
                ctx.emit(f"_r = {oo} + {_row_expr(lead, strides, w)}")
                if w == 1:
                    cur, new = f"{out}[_r]", f"{upd}[{uo} + _b]"
                    ctx.emit(f"{cur} = {combine(ctx, cur, new, dt)}")
                else:
                    with ctx.block(f"for _w in {ctx.range(w)}:"):
                        cur, new = f"{out}[_r + _w]", f"{upd}[{uo} + {w} * _b + _w]"
                        ctx.emit(f"{cur} = {combine(ctx, cur, new, dt)}")
    return rule


def _wrap(ctx, e, dt):
    return e if dt in (np.float32, np.float64, np.int64, np.uint64) else f"{ctx.dtype(dt)}({e})"


def _add(ctx, cur, new, dt):
    return f"{cur} or {new}" if dt == np.bool_ else _wrap(ctx, f"{cur} + {new}", dt)


def _mul(ctx, cur, new, dt):
    return f"{cur} and {new}" if dt == np.bool_ else _wrap(ctx, f"{cur} * {new}", dt)


_scatter("scatter", lambda ctx, cur, new, dt: new)
_scatter("scatter_add", _add)
_scatter("scatter_mul", _mul)
# np.minimum/np.maximum: a NaN on either side wins
_scatter("scatter_min", lambda ctx, cur, new, dt:
         f"({new} if ({new} < {cur} or {new} != {new}) else {cur})")
_scatter("scatter_max", lambda ctx, cur, new, dt:
         f"({new} if ({new} > {cur} or {new} != {new}) else {cur})")
