"""Calls inlined before fusion (pjit, remat, custom derivative calls, ...), and lowerings of
cond, scan and while: native `if` / `for` / `while` in the generated function,
with each body lowered inline ONCE (so a 10,000-step scan compiles to the size of one step).

Loop carries are buffers allocated once, before the loop: each iteration's results (fresh
arrays, never aliases of the body's arguments) are copied into them once the body is done.
Rebinding the carry names to the results instead would let a buffer allocated inside the
loop outlive its iteration, which the direct compiler (one buffer per allocation site) does
not allow: such loops went to Numba, a 1,000-step scan's first call taking 7x JAX's. Scan's
stacked outputs are written row by row into their output buffers; a scalar slice of an `xs`
goes through one reused 0-d buffer.
"""
from __future__ import annotations

from .emit import _size
from .lowering import register_lowering
from .registry import register_inline_call

# Calls of a closed jaxpr (parameter named here) are inlined by fusion.prepare.
register_inline_call("pjit", "jaxpr")
register_inline_call("remat", "jaxpr")
register_inline_call("custom_jvp_call", "call_jaxpr")
register_inline_call("custom_vjp_call", "call_jaxpr")
register_inline_call("checkpoint", "jaxpr")
register_inline_call("core_call", "jaxpr")


def _carry_copies(ctx, names, avals):
    """The carry buffers, holding copies of the initial carries `names` (so no output
    aliases an input)."""
    carry = [ctx.empty(a.shape, a.dtype) for a in avals]
    _store_carries(ctx, carry, names, avals)
    return carry


def _store_carries(ctx, carry, results, avals):
    """Copy an iteration's `results` into the `carry` buffers (all results are computed
    before the first copy, so a result computed from another carry reads its old value)."""
    for c, r, a in zip(carry, results, avals):
        n = _size(a.shape)
        ctx.emit(f"_st({c}.reshape({n}), 0, {n}, {r}.reshape({n}))")


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
    carry = _carry_copies(ctx, [ctx.array(i) for i in range(nc, nc + nk)],
                          [eqn.invars[i].aval for i in range(nc, nc + nk)])
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
            else:                 # row i, as a view (the views intrinsics: both compilers)
                xn = ctx.fresh("_cfx")
                ctx.emit(f"{xn} = _nd(_sl({x}, {i}, {i} + 1), {tuple(x_avals[j].shape[1:])!r})")
                x_names.append(xn)
        res = ctx.lower_jaxpr(body, consts + carry + x_names)
        _store_carries(ctx, carry, res[:nk], [v.aval for v in eqn.outvars[:nk]])
        for y, r, a in zip(ys, res[nk:], y_avals):
            if a.ndim == 1:
                ctx.emit(f"{y}[{i}] = {r}[()]")
            else:
                m = _size(a.shape[1:])
                ctx.emit(f"_st(_nd({y}, {_size(a.shape)}), {i} * {m}, {i} * {m} + {m}, "
                         f"{r}.reshape({m}))")
    for j, c in enumerate(carry):
        ctx.set_out(j, c)


@register_lowering("while")
def _lower_while(ctx, eqn):
    p = eqn.params
    cj, bj, cn, bn = p["cond_jaxpr"], p["body_jaxpr"], p["cond_nconsts"], p["body_nconsts"]
    cc = [ctx.array(i) for i in range(cn)]
    bc = [ctx.array(i) for i in range(cn, cn + bn)]
    carry = _carry_copies(ctx, [ctx.array(i) for i in range(cn + bn, len(eqn.invars))],
                          [eqn.invars[i].aval for i in range(cn + bn, len(eqn.invars))])
    with ctx.block("while True:", "while_loop"):
        pred = ctx.lower_jaxpr(cj, cc + carry)[0]
        with ctx.block(f"if not {pred}[()]:"):
            ctx.emit("break")
        res = ctx.lower_jaxpr(bj, bc + carry)
        _store_carries(ctx, carry, res, [v.aval for v in eqn.outvars])
    for j, c in enumerate(carry):
        ctx.set_out(j, c)


