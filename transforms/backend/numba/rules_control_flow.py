"""Calls inlined before fusion (pjit, remat, custom derivative calls, ...), and lowerings of
cond, scan and while: native `if` / `for` / `while` in the generated function,
with each body lowered inline ONCE (so a 10,000-step scan compiles to the size of one step).

Loop carries are plain local names rebound every iteration (the lowered body returns fresh
arrays, never aliases of its arguments); scan's stacked outputs are written row by row into
their output buffers; a scalar slice of an `xs` goes through one reused 0-d buffer.
"""
from __future__ import annotations

from .lowering import register_lowering
from .registry import register_inline_call

# Calls of a closed jaxpr (parameter named here) are inlined by fusion.prepare.
register_inline_call("pjit", "jaxpr")
register_inline_call("remat", "jaxpr")
register_inline_call("custom_jvp_call", "call_jaxpr")
register_inline_call("custom_vjp_call", "call_jaxpr")
register_inline_call("checkpoint", "jaxpr")
register_inline_call("core_call", "jaxpr")


def _carry_copies(ctx, names):
    """Fresh copies of the initial carries (so no output aliases an input)."""
    out = []
    for n in names:
        c = ctx.fresh("_cfcarry")
        ctx.emit(f"{c} = {n}.copy()")
        out.append(c)
    return out


@register_lowering("cond")
def _lower_cond(ctx, eqn):
    branches = eqn.params["branches"]
    idx = ctx.fresh("_cfidx")
    ctx.emit(f"{idx} = {ctx.scalar(0)}")
    args = [ctx.array(i) for i in range(1, len(eqn.invars))]
    outs = [ctx.fresh("_cfo") for _ in eqn.outvars]
    n = len(branches)
    for b, br in enumerate(branches):
        if b == n - 1:
            header = "else:" if n > 1 else "if True:"
        elif b == 0:
            header = f"if {idx} <= 0:"
        else:
            header = f"elif {idx} == {b}:"
        with ctx.block(header, f"branch {b}"):
            res = ctx.lower_jaxpr(br, args)
            for o, r in zip(outs, res):
                ctx.emit(f"{o} = {r}")
            if not res and not outs:
                ctx.emit("pass")
    for j, o in enumerate(outs):
        ctx.set_out(j, o)


@register_lowering("scan")
def _lower_scan(ctx, eqn):
    p = eqn.params
    body, nc, nk, length, reverse = (p["jaxpr"], p["num_consts"], p["num_carry"], p["length"],
                                     p["reverse"])
    nx = len(eqn.invars) - nc - nk
    consts = [ctx.array(i) for i in range(nc)]
    carry = _carry_copies(ctx, [ctx.array(i) for i in range(nc, nc + nk)])
    xs = [ctx.array(i) for i in range(nc + nk, nc + nk + nx)]
    x_avals = [eqn.invars[i].aval for i in range(nc + nk, nc + nk + nx)]
    ys = [ctx.out(nk + j) for j in range(len(eqn.outvars) - nk)]
    y_avals = [v.aval for v in eqn.outvars[nk:]]
    scalar_bufs = {}
    for j, a in enumerate(x_avals):
        if a.ndim == 1:           # a scalar per step: one reused 0-d buffer
            scalar_bufs[j] = ctx.empty((), a.dtype)
    it, i = ctx.fresh("_cfit"), ctx.fresh("_cfs")
    with ctx.block(f"for {it} in range({length}):", f"scan of {length} steps"):
        ctx.emit(f"{i} = {length - 1} - {it}" if reverse else f"{i} = {it}")
        x_names = []
        for j, x in enumerate(xs):
            if j in scalar_bufs:
                ctx.emit(f"{scalar_bufs[j]}[()] = {x}[{i}]")
                x_names.append(scalar_bufs[j])
            else:
                xn = ctx.fresh("_cfx")
                ctx.emit(f"{xn} = {x}[{i}]")
                x_names.append(xn)
        res = ctx.lower_jaxpr(body, consts + carry + x_names)
        for c, r in zip(carry, res[:nk]):
            ctx.emit(f"{c} = {r}")
        for y, r, a in zip(ys, res[nk:], y_avals):
            ctx.emit(f"{y}[{i}] = {r}[()]" if a.ndim == 1 else f"{y}[{i}] = {r}")
    for j, c in enumerate(carry):
        ctx.set_out(j, c)


@register_lowering("while")
def _lower_while(ctx, eqn):
    p = eqn.params
    cj, bj, cn, bn = p["cond_jaxpr"], p["body_jaxpr"], p["cond_nconsts"], p["body_nconsts"]
    cc = [ctx.array(i) for i in range(cn)]
    bc = [ctx.array(i) for i in range(cn, cn + bn)]
    carry = _carry_copies(ctx, [ctx.array(i) for i in range(cn + bn, len(eqn.invars))])
    with ctx.block("while True:", "while_loop"):
        pred = ctx.lower_jaxpr(cj, cc + carry)[0]
        with ctx.block(f"if not {pred}[()]:"):
            ctx.emit("break")
        res = ctx.lower_jaxpr(bj, bc + carry)
        for c, r in zip(carry, res):
            ctx.emit(f"{c} = {r}")
    for j, c in enumerate(carry):
        ctx.set_out(j, c)


