"""Lowerings of conv_general_dilated (im2col / col2im around the BLAS gemm kernel) and of the
window reductions used for pooling (reduce_window_*, select_and_gather_add,
select_and_scatter_add) as generated loops.

Convolution, float32/float64: the same two strategies as the NumPy implementation
(`transforms.lax.conv`), chosen by the same cost model:

* gather (im2col): a (groups, rows, window*in) patch matrix is filled by generated loops that
  fold layout, padding, strides and both dilations into the index arithmetic (zeros where the
  window hangs over the border), then one gemm per group against the (window*in, out) kernel
  matrix; the product is written straight into a channels-last output or copied into any
  other layout.
* scatter (col2im, stride 1): one gemm per group of the input rows against the
  (in, window*out) kernel matrix, then each kernel offset's product is added at its output
  position. This is the cheap way to compute the input gradient of a convolution.

Other dtypes, mixed precision and tiny convolutions are direct generated loops.
"""
from __future__ import annotations

import math

import numpy as np

from .lowering import register_lowering

SMALL_CONV = 4096          # fewer multiply-adds than this: direct loops


def _conv_geometry():
    from ...lax.conv import _conv_out_size, _dilate_dim
    return _conv_out_size, _dilate_dim


def _index(spec, b, f, sp):
    """Index expressions for an operand with `spec` = (batch-like, feature-like, *spatial)."""
    idx = [None] * len(spec)
    idx[spec[0]] = b
    idx[spec[1]] = f
    for d, e in zip(spec[2:], sp):
        idx[d] = e
    return ", ".join(idx)


def _flat(names, sizes):
    """Row-major flat index of loop variables `names` over `sizes`."""
    if not names:
        return "0"
    e = names[0]
    for n, s in zip(names[1:], sizes[1:]):
        e = f"({e}) * {s} + {n}"
    return e


class _Loops:
    """Open nested `for` blocks and close them all at once."""

    def __init__(self, ctx):
        self.ctx, self.stack = ctx, []

    def open(self, var, n, parallel=False):
        cm = self.ctx.block(f"for {var} in {'_prange' if parallel else 'range'}({n}):")
        cm.__enter__()
        self.stack.append(cm)

    def close(self):
        while self.stack:
            self.stack.pop().__exit__(None, None, None)


def _input_pos(ctx, o, k, stride, rd, lo, ld, size, tag):
    """Emit the input index for output position `o` and kernel offset `k` of one spatial
    dimension; returns (index_name, ok_name)."""
    p, q, ok = ctx.fresh(f"_p{tag}"), ctx.fresh(f"_q{tag}"), ctx.fresh(f"_ok{tag}")
    terms = []
    if stride != 1:
        terms.append(f"{o} * {stride}")
    elif o != "0":
        terms.append(o)
    terms.append(f"{k} * {rd}" if rd != 1 else k)
    expr = " + ".join(terms)
    if lo:
        expr += f" - {lo}"
    ctx.emit(f"{p} = {expr}")
    if ld == 1:
        ctx.emit(f"{q} = {p}")
        ctx.emit(f"{ok} = {p} >= 0 and {p} < {size}")
    else:
        ctx.emit(f"{q} = {p} // {ld}")
        ctx.emit(f"{ok} = {p} >= 0 and {p} % {ld} == 0 and {q} < {size}")
    return q, ok


def _gemm(ctx, m, n, k, a, b, c, g="0", comment=None):
    """Emit `c[g] = a[g] @ b[g]` for C-contiguous 3-D float arrays `a` (G, m, k), `b`
    (G, k, n) and `c` (G, m, n) through the backend's BLAS gemm kernel (whichever calling
    convention it has: flat storage with offsets, or 2-D arrays)."""
    import inspect
    from . import kernels
    gemm = ctx.kernel("gemm")
    dt = ctx.eqn.outvars[0].aval.dtype
    one, zero = ctx.literal(1, dt), ctx.literal(0, dt)
    nparams = len(inspect.signature(getattr(kernels.gemm, "py_func", kernels.gemm)).parameters)
    if nparams >= 16:
        flat = []
        for name, size in ((a, m * k), (b, k * n), (c, m * n)):
            f = ctx.fresh("_cvflat")
            ctx.emit(f"{f} = {name}.reshape({name}.size)")
            flat.append((f, f"{g} * {size}" if g != "0" else "0"))
        (fa, oa), (fb, ob), (fc, oc) = flat
        ctx.emit(f"{gemm}(0, 0, {m}, {n}, {k}, {one}, {fa}, {oa}, {k}, {fb}, {ob}, {n}, {zero}, "
                 f"{fc}, {oc}, {n})", comment)
    else:
        ctx.emit(f"{gemm}(0, 0, {m}, {n}, {k}, {one}, {a}[{g}], {k}, {b}[{g}], {n}, {zero}, "
                 f"{c}[{g}], {n})", comment)


@register_lowering("conv_general_dilated")
def _lower_conv(ctx, eqn):
    out_size, dilate = _conv_geometry()
    p = eqn.params
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    strides, pads = p["window_strides"], p["padding"]
    ld, rd = p["lhs_dilation"], p["rhs_dilation"]
    g, bg = p["feature_group_count"], p["batch_group_count"]
    la, ra, oa = eqn.invars[0].aval, eqn.invars[1].aval, eqn.outvars[0].aval
    nsp = la.ndim - 2
    n, c = la.shape[lhs_spec[0]], la.shape[lhs_spec[1]]
    o, i = ra.shape[rhs_spec[0]], ra.shape[rhs_spec[1]]
    psz = [la.shape[d] for d in lhs_spec[2:]]
    ksz = [ra.shape[d] for d in rhs_spec[2:]]
    osz = [oa.shape[d] for d in out_spec[2:]]
    groups = g if g > 1 else bg
    nb, og = n // bg, o // groups
    ic = i                                    # input channels per group
    kp, op, pp = math.prod(ksz), math.prod(osz), math.prod(psz)
    out = ctx.out(0)
    if oa.size == 0:
        return
    lhs, rhs = ctx.array(0), ctx.array(1)
    blas = (la.dtype == ra.dtype == oa.dtype and oa.dtype in (np.float32, np.float64)
            and nb * op * kp * ic * o >= SMALL_CONV)
    if not blas or kp * ic == 0:
        return _conv_direct(ctx, eqn, lhs, rhs, out)
    gather_cost = n * op * kp * c
    if any(x > 1 for x in ld) or any(lo + hi for lo, hi in pads):
        gather_cost += math.prod(dilate(psz[d], ld[d]) + pads[d][0] + pads[d][1]
                                 for d in range(nsp)) * n * c
    scatter_cost = n * pp * kp * o
    zero = ctx.literal(0, oa.dtype)
    par = n * op * kp * c >= (1 << 16)
    ks = [f"_cvk{d}" for d in range(nsp)]
    kflat = _flat(ks, ksz)
    channels_last_out = (out_spec[0] == 0 and out_spec[1] == nsp + 1 and
                         tuple(out_spec[2:]) == tuple(range(1, nsp + 1)))
    if bg == 1 and all(s == 1 for s in strides) and scatter_cost < gather_cost:
        # -------- col2im: Y = X @ W2 per group, then add each kernel offset's slab --------
        channels_last_in = (lhs_spec[0] == 0 and lhs_spec[1] == nsp + 1 and
                            tuple(lhs_spec[2:]) == tuple(range(1, nsp + 1)))
        rows = n * pp
        ps = [f"_cvp{d}" for d in range(nsp)]
        if g == 1 and channels_last_in:
            xmat = ctx.fresh("_xm")
            ctx.emit(f"{xmat} = {lhs}.reshape((1, {rows}, {ic}))")
        else:
            xmat = ctx.empty((g, rows, ic), oa.dtype)
            lp = _Loops(ctx)
            lp.open("_cvg", g)
            lp.open("_cvn", n, par)
            for d in range(nsp):
                lp.open(ps[d], psz[d])
            row = _flat(["_cvn"] + ps, [n] + psz)
            lp.open("_cvi", ic)
            ctx.emit(f"{xmat}[_cvg, {row}, _cvi] = {lhs}[{_index(lhs_spec, '_cvn', f'_cvg * {ic} + _cvi', ps)}]")
            lp.close()
        w2 = ctx.empty((g, ic, kp * og), oa.dtype)
        lp = _Loops(ctx)
        lp.open("_cvg", g)
        for d in range(nsp):
            lp.open(ks[d], ksz[d])
        lp.open("_cvi", ic)
        lp.open("_cvoo", og)
        ctx.emit(f"{w2}[_cvg, _cvi, ({kflat}) * {og} + _cvoo] = "
                 f"{rhs}[{_index(rhs_spec, f'_cvg * {og} + _cvoo', '_cvi', ks)}]")
        lp.close()
        y = ctx.empty((g, rows, kp * og), oa.dtype)
        with ctx.block(f"for _cvg in range({g}):", "BLAS gemm per group"):
            _gemm(ctx, rows, kp * og, ic, xmat, w2, y, "_cvg")
        ctx.emit(f"{out}.fill({zero})")
        lp = _Loops(ctx)
        lp.open("_cvn", n, par)
        lp.open("_cvg", g)
        for d in range(nsp):
            lp.open(ps[d], psz[d])
        row = _flat(["_cvn"] + ps, [n] + psz)
        ctx.emit(f"_cvrow = {row}")
        oks, os_ = [], []
        for d in range(nsp):
            lp.open(ks[d], ksz[d])
            ov, ok = ctx.fresh("_o"), ctx.fresh("_ok")
            ctx.emit(f"{ov} = {ps[d]} * {ld[d]} + {pads[d][0]} - {ks[d]} * {rd[d]}")
            ctx.emit(f"{ok} = {ov} >= 0 and {ov} < {osz[d]}")
            oks.append(ok)
            os_.append(ov)
        with ctx.block(f"if {' and '.join(oks)}:"):
            with ctx.block(f"for _cvoo in range({og}):"):
                ctx.emit(f"{out}[{_index(out_spec, '_cvn', f'_cvg * {og} + _cvoo', os_)}] += "
                         f"{y}[_cvg, _cvrow, ({kflat}) * {og} + _cvoo]")
        lp.close()
        return
    # -------- im2col: patches (groups, rows, window*in) @ kernel (groups, window*in, out) ----
    rows, kic = nb * op, kp * ic
    wm = ctx.empty((groups, kic, og), oa.dtype)
    lp = _Loops(ctx)
    lp.open("_cvg", groups)
    for d in range(nsp):
        lp.open(ks[d], ksz[d])
    lp.open("_cvi", ic)
    lp.open("_cvoo", og)
    ctx.emit(f"{wm}[_cvg, ({kflat}) * {ic} + _cvi, _cvoo] = "
             f"{rhs}[{_index(rhs_spec, f'_cvg * {og} + _cvoo', '_cvi', ks)}]")
    lp.close()
    pm = ctx.empty((groups, rows, kic), oa.dtype)
    os_ = [f"_cvo{d}" for d in range(nsp)]
    lp = _Loops(ctx)
    lp.open("_cvg", groups)
    lp.open("_cvn", nb, par)
    for d in range(nsp):
        lp.open(os_[d], osz[d])
    ctx.emit(f"_cvrow = {_flat(['_cvn'] + os_, [nb] + osz)}")
    qs, oks = [], []
    for d in range(nsp):
        lp.open(ks[d], ksz[d])
        q, ok = _input_pos(ctx, os_[d], ks[d], strides[d], rd[d], pads[d][0], ld[d], psz[d], d)
        qs.append(q)
        oks.append(ok)
    ctx.emit(f"_cvcol = ({kflat}) * {ic}")
    bexpr = "_cvn" if bg == 1 else f"_cvg * {nb} + _cvn"
    fexpr = f"_cvg * {ic} + _cvi" if g > 1 else "_cvi"
    with ctx.block(f"if {' and '.join(oks)}:"):
        with ctx.block(f"for _cvi in range({ic}):"):
            ctx.emit(f"{pm}[_cvg, _cvrow, _cvcol + _cvi] = {lhs}[{_index(lhs_spec, bexpr, fexpr, qs)}]")
    with ctx.block("else:"):
        with ctx.block(f"for _cvi in range({ic}):"):
            ctx.emit(f"{pm}[_cvg, _cvrow, _cvcol + _cvi] = {zero}")
    lp.close()
    if groups == 1 and channels_last_out:
        om = ctx.fresh("_om")
        ctx.emit(f"{om} = {out}.reshape((1, {rows}, {o}))")
        _gemm(ctx, rows, o, kic, pm, wm, om, "0", "BLAS gemm")
        return
    res = ctx.empty((groups, rows, og), oa.dtype)
    with ctx.block(f"for _cvg in range({groups}):", "BLAS gemm per group"):
        _gemm(ctx, rows, og, kic, pm, wm, res, "_cvg")
    lp = _Loops(ctx)
    lp.open("_cvg", groups)
    lp.open("_cvn", nb)
    for d in range(nsp):
        lp.open(os_[d], osz[d])
    ctx.emit(f"_cvrow = {_flat(['_cvn'] + os_, [nb] + osz)}")
    lp.open("_cvoo", og)
    ctx.emit(f"{out}[{_index(out_spec, '_cvn', f'_cvg * {og} + _cvoo', os_)}] = {res}[_cvg, _cvrow, _cvoo]")
    lp.close()


def _conv_direct(ctx, eqn, lhs, rhs, out):
    """Direct loops: one accumulator per output element (any dtype)."""
    p = eqn.params
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    strides, pads = p["window_strides"], p["padding"]
    ld, rd = p["lhs_dilation"], p["rhs_dilation"]
    g, bg = p["feature_group_count"], p["batch_group_count"]
    la, ra, oa = eqn.invars[0].aval, eqn.invars[1].aval, eqn.outvars[0].aval
    nsp = la.ndim - 2
    n = la.shape[lhs_spec[0]]
    o, ic = ra.shape[rhs_spec[0]], ra.shape[rhs_spec[1]]
    psz = [la.shape[d] for d in lhs_spec[2:]]
    ksz = [ra.shape[d] for d in rhs_spec[2:]]
    osz = [oa.shape[d] for d in out_spec[2:]]
    groups = g if g > 1 else bg
    nb, og = n // bg, o // groups
    odt = oa.dtype
    cast = (lambda e: e) if la.dtype == odt else (lambda e: f"{ctx.dtype(odt)}({e})")
    os_ = [f"_cvo{d}" for d in range(nsp)]
    ks = [f"_cvk{d}" for d in range(nsp)]
    lp = _Loops(ctx)
    lp.open("_cvn", nb)
    for d in range(nsp):
        lp.open(os_[d], osz[d])
    lp.open("_cvg", groups)
    lp.open("_cvoo", og)
    ctx.emit(f"_cvacc = {ctx.literal(0, odt)}")
    qs, oks = [], []
    inner = _Loops(ctx)
    for d in range(nsp):
        inner.open(ks[d], ksz[d])
        q, ok = _input_pos(ctx, os_[d], ks[d], strides[d], rd[d], pads[d][0], ld[d], psz[d], d)
        qs.append(q)
        oks.append(ok)
    bexpr = "_cvn" if bg == 1 else f"_cvg * {nb} + _cvn"
    fexpr = f"_cvg * {ic} + _cvi" if g > 1 else "_cvi"
    with ctx.block(f"if {' and '.join(oks) or 'True'}:"):
        with ctx.block(f"for _cvi in range({ic}):"):
            a = cast(f"{lhs}[{_index(lhs_spec, bexpr, fexpr, qs)}]")
            b = cast(f"{rhs}[{_index(rhs_spec, f'_cvg * {og} + _cvoo', '_cvi', ks)}]")
            ctx.emit(f"_cvacc = {ctx.dtype(odt)}(_cvacc + {a} * {b})" if odt.kind in "iub"
                     else f"_cvacc = _cvacc + {a} * {b}")
    inner.close()
    ctx.emit(f"{out}[{_index(out_spec, '_cvn', f'_cvg * {og} + _cvoo', os_)}] = _cvacc")
    lp.close()


# ---------------------------------------------------------------------------------------------
# Window reductions
# ---------------------------------------------------------------------------------------------

def _identity_literal(ctx, kind, dtype):
    dtype = np.dtype(dtype)
    if kind == "sum":
        return ctx.literal(0, dtype)
    if dtype == np.bool_:
        return "False" if kind == "max" else "True"
    if dtype.kind == "f":
        return ctx.literal(-np.inf if kind == "max" else np.inf, dtype)
    info = np.iinfo(dtype)
    return ctx.literal(info.min if kind == "max" else info.max, dtype)


def _window_loops(ctx, eqn, x_aval, out_aval, body_open, body_elem, body_close,
                  parallel=True):
    """Loops over output positions and window offsets: `body_open(out_index)` before the
    window, `body_elem(operand_index, ok_expr)` for each window offset (`ok_expr`: the offset
    falls on a real element, not padding or a dilation hole), `body_close(out_index)` after.
    Output positions are independent (so the outer loop may run in parallel) unless
    `parallel` is False."""
    p = eqn.params
    wdims, ws, pads = p["window_dimensions"], p["window_strides"], p["padding"]
    bd, wd = p["base_dilation"], p["window_dilation"]
    nd = x_aval.ndim
    os_ = [f"_cvo{d}" for d in range(nd)]
    ks = [f"_cvk{d}" for d in range(nd)]
    par = parallel and out_aval.size * math.prod(wdims) >= (1 << 16)
    lp = _Loops(ctx)
    for d in range(nd):
        lp.open(os_[d], out_aval.shape[d], par and d == 0 and out_aval.shape[0] > 1)
    body_open(os_)
    inner = _Loops(ctx)
    qs, oks = [], []
    for d in range(nd):
        if wdims[d] == 1 and ws[d] == 1 and pads[d] == (0, 0) and bd[d] == 1:
            qs.append(os_[d])
            continue
        inner.open(ks[d], wdims[d])
        q, ok = _input_pos(ctx, os_[d], ks[d], ws[d], wd[d], pads[d][0], bd[d], x_aval.shape[d],
                           d)
        qs.append(q)
        oks.append(ok)
    body_elem(qs, " and ".join(oks) or "True")
    inner.close()
    body_close(os_)
    lp.close()


def _lower_reduce_window(kind):
    def rule(ctx, eqn):
        xa, oa = eqn.invars[0].aval, eqn.outvars[0].aval
        out = ctx.out(0)
        if oa.size == 0:
            return
        x = ctx.array(0)
        init = _identity_literal(ctx, kind, oa.dtype)
        dt = oa.dtype

        def combine(acc, v):
            if kind == "sum":
                e = f"{acc} + {v}"
                return f"{ctx.dtype(dt)}({e})" if dt.kind in "iu" and dt != np.int64 else e
            if dt.kind == "f":
                return f"{ctx.kernel('maxf' if kind == 'max' else 'minf')}({acc}, {v})"
            op = ">=" if kind == "max" else "<="
            return f"({acc} if {acc} {op} {v} else {v})"

        def open_(os_):
            ctx.emit(f"_cvacc = {init}")

        def elem(qs, ok):
            v = f"{x}[{', '.join(qs)}]"
            with ctx.block(f"if {ok}:"):
                ctx.emit(f"_cvacc = {combine('_cvacc', v)}")

        def close(os_):
            ctx.emit(f"{out}[{', '.join(os_)}] = _cvacc")
        _window_loops(ctx, eqn, xa, oa, open_, elem, close)
    return rule


for _kind in ("sum", "max", "min"):
    register_lowering(f"reduce_window_{_kind}")(_lower_reduce_window(_kind))


@register_lowering("select_and_gather_add")
def _lower_sga(ctx, eqn):
    xa, oa = eqn.invars[1].aval, eqn.outvars[0].aval
    out = ctx.out(0)
    if oa.size == 0:
        return
    t, x = ctx.array(0), ctx.array(1)
    lowest = _identity_literal(ctx, "max", xa.dtype)
    zero = ctx.literal(0, oa.dtype)

    def open_(os_):
        ctx.emit(f"_cvbest = {lowest}")
        ctx.emit(f"_cvval = {zero}")
        ctx.emit("_cvfirst = True")

    def elem(qs, ok):
        ix = ", ".join(qs)
        with ctx.block(f"if {ok}:"):
            ctx.emit(f"_cvv = {x}[{ix}]")
            ctx.emit(f"_cvtv = {t}[{ix}]")
        with ctx.block("else:"):
            ctx.emit(f"_cvv = {lowest}")
            ctx.emit(f"_cvtv = {zero}")
        with ctx.block("if _cvfirst or _cvv > _cvbest:"):
            ctx.emit("_cvbest = _cvv")
            ctx.emit("_cvval = _cvtv")
            ctx.emit("_cvfirst = False")

    def close(os_):
        ctx.emit(f"{out}[{', '.join(os_)}] = _cvval")
    _window_loops(ctx, eqn, xa, oa, open_, elem, close)


@register_lowering("select_and_scatter_add")
def _lower_ssa(ctx, eqn):
    sa, xa, oa = eqn.invars[0].aval, eqn.invars[1].aval, eqn.outvars[0].aval
    out = ctx.out(0)
    if oa.size == 0:
        return
    s, x = ctx.array(0), ctx.array(1)
    ctx.emit(f"{out}.fill({ctx.literal(0, oa.dtype)})")
    if sa.size == 0:
        return
    lowest = _identity_literal(ctx, "max", xa.dtype)
    nd = xa.ndim
    qn = [f"_cvq{d}" for d in range(nd)]

    def open_(os_):
        ctx.emit(f"_cvbest = {lowest}")
        ctx.emit("_cvfirst = True")
        ctx.emit("_cvhit = False")
        for q in qn:
            ctx.emit(f"{q} = 0")

    def elem(qs, ok):
        with ctx.block(f"if {ok}:"):
            ctx.emit(f"_cvv = {x}[{', '.join(qs)}]")
        with ctx.block("else:"):
            ctx.emit(f"_cvv = {lowest}")
        with ctx.block("if _cvfirst or _cvv > _cvbest:"):
            ctx.emit("_cvbest = _cvv")
            ctx.emit("_cvfirst = False")
            ctx.emit(f"_cvhit = {ok}")
            for q, e in zip(qn, qs):
                ctx.emit(f"{q} = {e}")

    def close(os_):
        with ctx.block("if _cvhit:"):
            ctx.emit(f"{out}[{', '.join(qn)}] += {s}[{', '.join(os_)}]")
    # overlapping windows may hit the same position: no parallel loop here
    _window_loops(ctx, eqn, xa, sa, open_, elem, close, parallel=False)
