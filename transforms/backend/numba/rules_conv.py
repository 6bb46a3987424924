"""Lowerings of conv_general_dilated (im2col / col2im around the BLAS gemm kernel) and of the
window reductions used for pooling (reduce_window_*, select_and_gather_add,
select_and_scatter_add) as generated loops.

Convolution, float32/float64: the same two strategies as the NumPy implementation
(`transforms.lax.conv`), chosen by the same cost model, both BLOCKED over images (and, for a
kernel-gradient convolution whose "kernel" is a whole feature map, over channels), so the
temporary matrices stay around BLOCK elements (in cache, reused, no page faults) instead of
the full im2col matrix (tens of MB, 2-3x slower measured):

* gather (im2col): the patch matrix of a block (rows: images x output positions; columns:
  window x channels) is filled by generated loops that fold layout, padding, strides and
  both dilations into the index arithmetic (zeros where the window hangs over the border),
  then one gemm against the (window * channels, out) kernel matrix, accumulating over
  channel blocks; the product goes straight into a channels-last output (else it is
  copied into the output layout). An input whose feature axis is not innermost is first
  copied channels-last.
  With one group and no dilation along the last spatial axis, each patch row is filled
  with whole contiguous runs (last window axis x channels) of a channels-last input.
* scatter (col2im, stride 1): gemms of a block of input rows against the (in, window * out)
  kernel matrix, then each output position sums the kernel offsets' products that land on
  it. This is the cheap way to compute the input gradient of a convolution. Channels-last,
  one group, no dilation: one gemm per kernel offset, so col2im adds whole contiguous rows;
  the block is sized to stay in L2 (SCATTER_BLOCK).
* window rows: when the window is larger than the output (the kernel gradient of a
  convolution), the gemm reduces over (in-channel, window position): the rhs (an NHWC
  gradient) is used in place as the B matrix and only A^T is built, a block of rows at a
  time (see `_conv_window_rows`).

Before those: a 3x3 stride-1 convolution of a small map with many channels runs as
Winograd's F(2x2, 3x3) (`conv_winograd`: 16 gemms with 16/36 of the multiply-adds), and a
convolution of a map so small that much of the window hangs over the padding (ResNet's 2x2
and 1x1 stages) as one gemm per kernel offset over the positions where that offset lands
on the map (`conv_taps`); each is chosen when it costs clearly fewer multiply-adds. An
HWIO-like kernel (window, in, out) is used as the gemm's B matrix in place. Temporaries are
`ctx.scratch` views of the function's reused workspace: a fresh allocation per call cost
more in page faults than the small-map gemms themselves.

Max-pool gradients whose windows do not overlap (`select_and_scatter_add` with stride >=
window, the usual 2x2 pooling) get a vectorised loop that writes every element once; other
window configurations use the general loops.

Other dtypes, mixed precision and tiny convolutions are direct generated loops.
"""
from __future__ import annotations

import math

import numpy as np

from .conv_taps import channels_last_input, lower_conv_taps, use_taps, valid_fraction
from .conv_winograd import lower_conv_winograd, use_winograd
from .lowering import parallel_allowed, register_lowering

SMALL_CONV = 4096          # fewer multiply-adds than this: direct loops
# 2-D kernel gradients, the common 2-D im2col convolution and channels-last pooling call the
# size-generic `kernels_conv` kernels (compiled once per dtype) rather than loops generated
# per shape (False: the generated loops; for measurements)
# All off by default: timed alternately with the generated loops in one process they
# matched them, but called repeatedly in a process of their own they were slower (the CNN
# step's window rows 4.5 ms more CPU; a 2x2 max-pool of 64x24x24x64 2.7 ms against 0.46, the
# ResNet stem's im2col 2.59 against 1.88): see kernels_conv.py.
WINDOW_ROWS_KERNEL = False
IM2COL_KERNEL = False
POOL_KERNEL = False


def _conv_geometry():
    from ...lax.conv import _conv_out_size, _dilate_dim
    return _conv_out_size, _dilate_dim


class _Geometry:
    """Everything the strategies read from one conv_general_dilated equation."""

    def __init__(self, eqn):
        p = eqn.params
        self.lhs_spec, self.rhs_spec, self.out_spec = p["dimension_numbers"]
        self.strides, self.pads = p["window_strides"], p["padding"]
        self.ld, self.rd = p["lhs_dilation"], p["rhs_dilation"]
        self.g, self.bg = p["feature_group_count"], p["batch_group_count"]
        la, ra, oa = eqn.invars[0].aval, eqn.invars[1].aval, eqn.outvars[0].aval
        self.la, self.ra, self.oa = la, ra, oa
        self.nsp = la.ndim - 2
        self.n, self.c = la.shape[self.lhs_spec[0]], la.shape[self.lhs_spec[1]]
        self.o, self.ic = ra.shape[self.rhs_spec[0]], ra.shape[self.rhs_spec[1]]   # ic: per group
        self.psz = [la.shape[d] for d in self.lhs_spec[2:]]
        self.ksz = [ra.shape[d] for d in self.rhs_spec[2:]]
        self.osz = [oa.shape[d] for d in self.out_spec[2:]]
        self.groups = self.g if self.g > 1 else self.bg
        self.nb, self.og = self.n // self.bg, self.o // self.groups
        self.kp, self.op, self.pp = (math.prod(self.ksz), math.prod(self.osz),
                                     math.prod(self.psz))


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


def _input_pos(ctx, o, k, stride, rd, lo, ld, size, tag, o_count=None, k_count=None):
    """Emit the input index for output position `o` and kernel offset `k` of one spatial
    dimension; returns (index_name, ok_name). `o_count`/`k_count`: how many values the loops
    give `o` and `k` (from 0), when known: if every position they reach is a real element,
    `ok` is the constant ``True`` (less for the compiler to prove)."""
    if o_count and k_count and ld == 1 and lo <= 0 and \
            (o_count - 1) * stride + (k_count - 1) * rd - lo < size:
        p = ctx.fresh(f"_p{tag}")
        terms = [f"{o} * {stride}" if stride != 1 else o, f"{k} * {rd}" if rd != 1 else k]
        ctx.emit(f"{p} = {' + '.join(terms)}" + (f" + {-lo}" if lo else ""))
        return p, "True"
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


def _gemm(ctx, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc, beta=0, comment=None,
          max_macs=None, trans_a=0):
    """Emit C = A @ B (+ C if beta) on flat 1-D arrays (row-major, with element offsets and
    row strides) through the backend's BLAS gemm kernel (A stored k x m and transposed if
    `trans_a`). `max_macs` bounds m * n * k when a size is a run-time expression (a partial
    block): products below `blas_parallel_min` run on the calling thread only, larger ones on
    the threads chosen at run time (`rules_linalg.gemm_kernel`). (Without the bound, blocked
    products went to the threaded BLAS: the 7x7 stem convolution of a ResNet step took 20 ms
    instead of 1.2 under load, waiting for the BLAS threads.)"""
    dt = ctx.eqn.outvars[0].aval.dtype
    one, b_lit = ctx.literal(1, dt), ctx.literal(beta, dt)
    from .rules_linalg import gemm_kernel
    if max_macs is None and all(isinstance(x, (int, np.integer)) for x in (m, n, k)):
        max_macs = m * n * k
    g = ctx.kernel(gemm_kernel(max_macs))
    ctx.emit(f"{g}({trans_a}, 0, {m}, {n}, {k}, {one}, {a}, {a_off}, {lda}, {b}, "
             f"{b_off}, {ldb}, {b_lit}, {c}, {c_off}, {ldc})", comment)


def _gemm_beta(ctx, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc, beta, max_macs):
    """`_gemm` with run-time sizes and a `beta` expression; `max_macs` (an int) bounds
    m * n * k, which picks the gemm kernel (`rules_linalg.gemm_kernel`)."""
    from .rules_linalg import gemm_kernel
    one = ctx.literal(1, ctx.eqn.outvars[0].aval.dtype)
    g = ctx.kernel(gemm_kernel(max_macs))
    ctx.emit(f"{g}(0, 0, {m}, {n}, {k}, {one}, {a}, {a_off}, {lda}, {b}, {b_off}, {ldb}, "
             f"{beta}, {c}, {c_off}, {ldc})", "BLAS gemm")


# Elements in one block buffer (patches / products): big enough for efficient gemm calls,
# small enough to stay in cache and be reused across calls without page faults.
BLOCK = 1 << 19
TARGET_M = 512             # gemm rows per block, at least (when there are that many)
# col2im reads its block of products right after the gemms wrote them: a block that stays in
# the L2 cache is 25% faster for the CNN benchmark's input gradient (the im2col paths measured
# best with the larger BLOCK)
SCATTER_BLOCK = 1 << 17


def _flat_name(ctx, nd_name):
    f = ctx.fresh("_cvf")
    ctx.emit(f"{f} = {nd_name}.reshape({nd_name}.size)")
    return f


@register_lowering("conv_general_dilated", calls_blas=True)
def _lower_conv(ctx, eqn):
    _, dilate = _conv_geometry()
    G = _Geometry(eqn)
    lhs_spec, rhs_spec, out_spec = G.lhs_spec, G.rhs_spec, G.out_spec
    strides, pads, ld, rd, g, bg = G.strides, G.pads, G.ld, G.rd, G.g, G.bg
    la, ra, oa, nsp = G.la, G.ra, G.oa, G.nsp
    n, c, o, ic, psz, ksz, osz = G.n, G.c, G.o, G.ic, G.psz, G.ksz, G.osz
    groups, nb, og, kp, op, pp = G.groups, G.nb, G.og, G.kp, G.op, G.pp
    out = ctx.out(0)
    if oa.size == 0:
        return
    lhs, rhs = ctx.array(0), ctx.array(1)
    blas = (la.dtype == ra.dtype == oa.dtype and oa.dtype in (np.float32, np.float64)
            and nb * op * kp * ic * o >= SMALL_CONV)
    if not blas or kp * ic == 0:
        return _conv_direct(ctx, eqn, lhs, rhs, out)
    taps = use_taps(G)    # a small map: skip the window offsets that fall on padding
    if use_winograd(G, valid_fraction(G) * kp * op if taps else kp * op):
        return lower_conv_winograd(ctx, eqn, G, *channels_last_input(ctx, G), rhs)
    if taps:
        return lower_conv_taps(ctx, eqn, G, _gemm_beta)
    gather_cost = n * op * kp * c
    if any(x > 1 for x in ld) or any(lo + hi for lo, hi in pads):
        gather_cost += math.prod(dilate(psz[d], ld[d]) + pads[d][0] + pads[d][1]
                                 for d in range(nsp)) * n * c
    scatter_cost = n * pp * kp * o
    zero = ctx.literal(0, oa.dtype)
    ks = [f"_cvk{d}" for d in range(nsp)]
    kflat = _flat(ks, ksz)
    channels_last = tuple(range(1, nsp + 1))
    last_in = lhs_spec[1] == nsp + 1 and lhs_spec[0] == 0 and tuple(lhs_spec[2:]) == channels_last
    last_out = out_spec[1] == nsp + 1 and out_spec[0] == 0 and tuple(out_spec[2:]) == channels_last
    if bg == 1 and all(s == 1 for s in strides) and scatter_cost < gather_cost:
        return _conv_scatter(ctx, eqn, lhs, rhs, out, last_in, zero, ks, kflat)
    if groups == 1 and kp > op:
        return _conv_window_rows(ctx, eqn, zero)
    # -------- im2col, blocked: patches (image block rows, window * channel block) @ kernel --
    if lhs_spec[1] != la.ndim - 1:
        # the feature axis is not innermost: one transposing copy to (batch, *spatial, feature)
        xc = ctx.empty((n,) + tuple(psz) + (c,), oa.dtype)
        ps = [f"_cvp{d}" for d in range(nsp)]
        lp = _Loops(ctx)
        lp.open("_cvn", n)
        for d in range(nsp):
            lp.open(ps[d], psz[d])
        lp.open("_cvc", c)
        ctx.emit(f"{xc}[_cvn, {', '.join(ps)}, _cvc] = {lhs}[{_index(lhs_spec, '_cvn', '_cvc', ps)}]")
        lp.close()
        lhs, lhs_spec = xc, (0, nsp + 1) + channels_last
    # blocks: enough images for >= TARGET_M gemm rows, channels blocked to fit BLOCK
    nbb = max(1, min(nb, -(-TARGET_M // op)))
    if nbb * op * kp * ic <= BLOCK:
        nbb, ib = max(nbb, min(nb, BLOCK // (op * kp * ic))), ic
    else:
        nbb = max(1, min(nbb, BLOCK // (op * kp)))
        ib = max(1, min(ic, BLOCK // (nbb * op * kp)))
    pm = ctx.scratch(nbb * op * kp * ib, oa.dtype)
    # the kernel matrix (groups, window * in, out): whole when the channels are not blocked;
    # an HWIO-like kernel (window, in, out) of one group already is that matrix (no copy)
    if groups == 1 and ib == ic and tuple(rhs_spec) == (nsp + 1, nsp) + tuple(range(nsp)):
        wm, wm_off = ctx.flat(1)
    else:
        wm, wm_off = ctx.scratch(groups * kp * ic * og, oa.dtype), 0
        lp = _Loops(ctx)
        lp.open("_cvg", groups)
        for d in range(nsp):
            lp.open(ks[d], ksz[d])
        lp.open("_cvi", ic)
        lp.open("_cvoo", og)
        if ib == ic:      # rows ordered (window, channel) within a group
            row = f"(_cvg * {kp} + {kflat}) * {ic} + _cvi"
        else:             # rows ordered (channel block, window, channel in block)
            row = (f"_cvg * {kp * ic} + (_cvi // {ib}) * {kp * ib} + ({kflat}) * "
                   f"min({ib}, {ic} - (_cvi // {ib}) * {ib}) + _cvi % {ib}")
        ctx.emit(f"{wm}[({row}) * {og} + _cvoo] = "
                 f"{rhs}[{_index(rhs_spec, f'_cvg * {og} + _cvoo', '_cvi', ks)}]")
        lp.close()
    direct_out = groups == 1 and last_out
    if direct_out:
        of = _flat_name(ctx, out)
    else:
        res = ctx.scratch(nbb * op * og, oa.dtype)
    os_ = [f"_cvo{d}" for d in range(nsp)]
    # the common case (one group, channels not blocked, no dilation along the last spatial
    # axis) copies whole contiguous runs of (last window axis x channels) per patch row
    runs = (groups == 1 and ib == ic and rd[-1] == 1 and ld[-1] == 1
            and tuple(lhs_spec) == (0, nsp + 1) + channels_last)
    if runs:
        lhs = _flat_name(ctx, lhs)
    if runs and direct_out and nsp == 2 and IM2COL_KERNEL:
        return _im2col_kernel_call(ctx, G, lhs, wm, wm_off, pm, of, nbb, ib)
    bexpr = "_cvn" if bg == 1 else f"_cvg * {nb} + _cvn"
    fexpr = f"_cvg * {ic} + _cvi0 + _cvi" if g > 1 else "_cvi0 + _cvi"
    with ctx.block(f"for _cvg in range({groups}):"):
        with ctx.block(f"for _cvb in range(0, {nb}, {nbb}):", "a block of images"):
            ctx.emit(f"_cvnb = min({nbb}, {nb} - _cvb)")
            with ctx.block(f"for _cvi0 in range(0, {ic}, {ib}):", "a block of channels"):
                ctx.emit(f"_cvib = min({ib}, {ic} - _cvi0)")
                ctx.emit(f"_cvcols = {kp} * _cvib")
                lp = _Loops(ctx)
                lp.open("_cvnn", "_cvnb")
                ctx.emit("_cvn = _cvb + _cvnn")
                for d in range(nsp):
                    lp.open(os_[d], osz[d])
                ctx.emit(f"_cvrow = {_flat(['_cvnn'] + os_, ['_cvnb'] + osz)}")
                if runs:
                    _gather_runs(ctx, eqn, pm, lhs, ks, os_, psz, ksz, c)
                else:
                    qs, oks = [], []
                    for d in range(nsp):
                        lp.open(ks[d], ksz[d])
                        q, ok = _input_pos(ctx, os_[d], ks[d], strides[d], rd[d], pads[d][0],
                                           ld[d], psz[d], d)
                        qs.append(q)
                        oks.append(ok)
                    ctx.emit(f"_cvbase = _cvrow * _cvcols + ({kflat}) * _cvib")
                    with ctx.block(f"if {' and '.join(oks)}:"):
                        with ctx.block("for _cvi in range(_cvib):"):
                            ctx.emit(f"{pm}[_cvbase + _cvi] = "
                                     f"{lhs}[{_index(lhs_spec, bexpr, fexpr, qs)}]")
                    with ctx.block("else:"):
                        with ctx.block("for _cvi in range(_cvib):"):
                            ctx.emit(f"{pm}[_cvbase + _cvi] = {zero}")
                lp.close()
                w_off = f"{wm_off} + _cvg * {kp * ic * og} + _cvi0 * {kp * og}"
                beta = "0" if ib == ic else None
                if direct_out:
                    c_name, c_off = of, f"_cvb * {op * o}"
                else:
                    c_name, c_off = res, "0"
                macs = nbb * op * og * kp * ib
                if beta is None:
                    with ctx.block("if _cvi0 == 0:"):
                        _gemm(ctx, f"_cvnb * {op}", og, "_cvcols", pm, 0, "_cvcols", wm, w_off,
                              og, c_name, c_off, og, 0, max_macs=macs)
                    with ctx.block("else:"):
                        _gemm(ctx, f"_cvnb * {op}", og, "_cvcols", pm, 0, "_cvcols", wm, w_off,
                              og, c_name, c_off, og, 1, max_macs=macs)
                else:
                    _gemm(ctx, f"_cvnb * {op}", og, "_cvcols", pm, 0, "_cvcols", wm, w_off, og,
                          c_name, c_off, og, 0, "BLAS gemm", max_macs=macs)
            if not direct_out:
                lp = _Loops(ctx)
                lp.open("_cvnn", "_cvnb")
                for d in range(nsp):
                    lp.open(os_[d], osz[d])
                ctx.emit(f"_cvrow = {_flat(['_cvnn'] + os_, ['_cvnb'] + osz)}")
                lp.open("_cvoo", og)
                ctx.emit(f"{out}[{_index(out_spec, '_cvb + _cvnn', f'_cvg * {og} + _cvoo', os_)}]"
                         f" = {res}[_cvrow * {og} + _cvoo]")
                lp.close()


def _im2col_kernel_call(ctx, G, xf, wm, wm_off, pm, of, nbb, ib):
    """The blocked im2col loops and gemms of a 2-D channels-last convolution (one group,
    channels not blocked, no dilation along the last spatial axis) as one call of the
    `kernels_conv` im2col kernel: sizes as arguments, compiled once per dtype."""
    from . import kernels_conv
    from .kernels import GEMM, GEMM_SERIAL
    from .rules_linalg import gemm_kernel
    g = gemm_kernel(nbb * G.op * G.og * G.kp * ib)
    mode = 0 if g == GEMM_SERIAL else (2 if g == GEMM else 1)
    sizes = (G.n, *G.psz, G.c, *G.ksz, *G.osz, G.o, *G.strides, G.rd[0], G.pads[0][0],
             G.pads[1][0], G.ld[0], nbb, mode)
    k = ctx.kernel(kernels_conv.name("im2col", G.oa.dtype))
    ctx.emit(f"{k}({xf}, 0, {wm}, {wm_off}, {pm}, 0, {of}, 0, "
             f"({', '.join(str(int(v)) for v in sizes)},))", "im2col blocks and gemms")


def _gather_runs(ctx, eqn, pm, xf, ks, os_, psz, ksz, c):
    """Fill one patch row (inside the loops over image `_cvn` and output position `os_`) of
    a channels-last input `xf` (flat): for each offset of the leading window axes, the last
    window axis and the channels form ONE contiguous run in both the input and the patch
    row; a run that hangs over the border is copied offset by offset (zeros outside)."""
    p = eqn.params
    strides, pads, ld, rd = (p["window_strides"], p["padding"], p["lhs_dilation"],
                             p["rhs_dilation"])
    nsp = len(psz)
    zero = ctx.literal(0, eqn.outvars[0].aval.dtype)
    run = ksz[-1] * c
    lp = _Loops(ctx)
    qs, oks = [], []
    for d in range(nsp - 1):
        lp.open(ks[d], ksz[d])
        q, ok = _input_pos(ctx, os_[d], ks[d], strides[d], rd[d], pads[d][0], ld[d], psz[d], d)
        qs.append(q)
        oks.append(ok)
    last = nsp - 1
    ctx.emit(f"_cvbase = _cvrow * {math.prod(ksz) * c} + ({_flat(ks[:-1], ksz[:-1])}) * {run}")
    start = f"{os_[last]} * {strides[last]}" + (f" - {pads[last][0]}" if pads[last][0] else "")
    ctx.emit(f"_cvp = {start}")
    row = _flat(["_cvn"] + qs, [None] + psz[:-1]) if qs else "_cvn"
    with ctx.block(f"if {' and '.join(oks) or 'True'}:"):
        ctx.emit(f"_cvsrc = (({row}) * {psz[last]} + _cvp) * {c}")
        with ctx.block(f"if _cvp >= 0 and _cvp + {ksz[last]} <= {psz[last]}:"):
            with ctx.block(f"for _cvi in range({run}):"):
                ctx.emit(f"{pm}[_cvbase + _cvi] = {xf}[_cvsrc + _cvi]")
        with ctx.block("else:"):
            with ctx.block(f"for _cvkl in range({ksz[last]}):"):
                with ctx.block(f"if _cvp + _cvkl >= 0 and _cvp + _cvkl < {psz[last]}:"):
                    with ctx.block(f"for _cvi in range({c}):"):
                        ctx.emit(f"{pm}[_cvbase + _cvkl * {c} + _cvi] = "
                                 f"{xf}[_cvsrc + _cvkl * {c} + _cvi]")
                with ctx.block("else:"):
                    with ctx.block(f"for _cvi in range({c}):"):
                        ctx.emit(f"{pm}[_cvbase + _cvkl * {c} + _cvi] = {zero}")
    with ctx.block("else:"):
        with ctx.block(f"for _cvi in range({run}):"):
            ctx.emit(f"{pm}[_cvbase + _cvi] = {zero}")
    lp.close()


def _conv_window_rows(ctx, eqn, zero):
    """A convolution whose window is larger than its output (the kernel gradient of a
    convolution, where the "kernel" is a whole feature map): the reduction runs over
    (in-channel, window position) pairs, so the rhs is already the gemm's B matrix when its
    layout is (in, *window, out) -- NHWC activations and gradients are -- and only the
    transposed patch matrix A^T (rows: in-channel x window position; columns: output
    position x batch) is built, a block of rows at a time, each block one accumulating
    gemm with the tiny output matrix. (The image-block im2col would instead reorder the
    whole rhs and feed BLAS a huge reduction dimension.)"""
    G = _Geometry(eqn)
    lhs_spec, rhs_spec, out_spec = G.lhs_spec, G.rhs_spec, G.out_spec
    strides, pads, ld, rd, la, oa, nsp = G.strides, G.pads, G.ld, G.rd, G.la, G.oa, G.nsp
    nb, c, o, psz, ksz, osz, kp, op = G.n, G.c, G.o, G.psz, G.ksz, G.osz, G.kp, G.op
    x, x_off = ctx.flat(0)
    lstr = [math.prod(la.shape[d + 1:]) for d in range(la.ndim)]
    ks = [f"_cvk{d}" for d in range(nsp)]
    os_ = [f"_cvo{d}" for d in range(nsp)]
    spatial = tuple(range(1, nsp + 1))
    if tuple(rhs_spec) == (nsp + 1, 0) + spatial:
        bm, b_off = ctx.flat(1)
    else:                     # one reordering copy of the rhs to (in, *window, out)
        rhs = ctx.array(1)
        bm, b_off = ctx.scratch(c * kp * o, oa.dtype), 0
        lp = _Loops(ctx)
        lp.open("_cvc", c)
        for d in range(nsp):
            lp.open(ks[d], ksz[d])
        lp.open("_cvoo", o)
        ctx.emit(f"{bm}[(_cvc * {kp} + {_flat(ks, ksz)}) * {o} + _cvoo] = "
                 f"{rhs}[{_index(rhs_spec, '_cvoo', '_cvc', ks)}]")
        lp.close()
    cols = op * nb            # A^T columns: (output position, batch)
    rows = c * kp             # gemm reduction: (in-channel, window position)
    rblk = max(1, min(rows, BLOCK // cols))
    at = ctx.scratch(rblk * cols, oa.dtype)
    direct = tuple(out_spec) == (nsp, nsp + 1) + tuple(range(nsp))
    if direct:                # the product (output position, batch, out) IS the output layout
        cm, c_off = ctx.out_flat(0)
    else:
        cm, c_off = ctx.scratch(cols * o, oa.dtype), 0
    bstride = lstr[lhs_spec[0]]
    if nsp == 2 and WINDOW_ROWS_KERNEL:     # the library kernel, sizes as arguments
        from . import kernels_conv
        from .kernels import GEMM, GEMM_SERIAL
        from .rules_linalg import gemm_kernel
        g = gemm_kernel(cols * o * rblk)
        mode = 0 if g == GEMM_SERIAL else (2 if g == GEMM else 1)
        sizes = (nb, c, o, *ksz, *osz, *psz, *strides, *rd, pads[0][0], pads[1][0], *ld,
                 bstride, lstr[lhs_spec[1]], lstr[lhs_spec[2]], lstr[lhs_spec[3]],
                 math.prod(la.shape), rblk, mode)
        k = ctx.kernel(kernels_conv.name("window_rows", oa.dtype))
        ctx.emit(f"{k}({x}, {x_off}, {bm}, {b_off}, {at}, 0, {cm}, {c_off}, "
                 f"({', '.join(str(int(v)) for v in sizes)},))", "A^T blocks and gemms")
    else:
        _window_rows_loops(ctx, G, x, x_off, lstr, bm, b_off, at, cm, c_off, rows, rblk, cols,
                           bstride, zero)
    if not direct:
        lp = _Loops(ctx)
        for d in range(nsp):
            lp.open(os_[d], osz[d])
        lp.open("_cvb", nb)
        lp.open("_cvoo", o)
        out = ctx.out(0)
        ctx.emit(f"{out}[{_index(out_spec, '_cvb', '_cvoo', os_)}] = "
                 f"{cm}[(({_flat(os_, osz)}) * {nb} + _cvb) * {o} + _cvoo]")
        lp.close()


def _window_rows_loops(ctx, G, x, x_off, lstr, bm, b_off, at, cm, c_off, rows, rblk, cols,
                       bstride, zero):
    """The loops of `_conv_window_rows` as generated code (convolutions not 2-D)."""
    lhs_spec, strides, pads, ld, rd = G.lhs_spec, G.strides, G.pads, G.ld, G.rd
    nsp, nb, c, o, psz, ksz, osz, kp = G.nsp, G.n, G.c, G.o, G.psz, G.ksz, G.osz, G.kp
    ks = [f"_cvk{d}" for d in range(nsp)]
    os_ = [f"_cvo{d}" for d in range(nsp)]
    with ctx.block(f"for _cvr0 in range(0, {rows}, {rblk}):", "a block of A^T rows"):
        ctx.emit(f"_cvrn = min({rblk}, {rows} - _cvr0)")
        with ctx.block("for _cvrr in range(_cvrn):"):
            ctx.emit("_cvr = _cvr0 + _cvrr")
            ctx.emit(f"_cvc = _cvr // {kp}")
            for d in range(nsp):
                ctx.emit(f"{ks[d]} = (_cvr // {math.prod(ksz[d + 1:])}) % {ksz[d]}")
            lp = _Loops(ctx)
            for d in range(nsp):
                lp.open(os_[d], osz[d])
            qs, oks = [], []
            for d in range(nsp):
                q, ok = _input_pos(ctx, os_[d], ks[d], strides[d], rd[d], pads[d][0], ld[d],
                                   psz[d], d)
                qs.append(q)
                oks.append(ok)
            ctx.emit(f"_cvbase = _cvrr * {cols} + ({_flat(os_, osz)}) * {nb}")
            src = " + ".join([f"{x_off}", f"_cvc * {lstr[lhs_spec[1]]}"] +
                             [f"{q} * {lstr[lhs_spec[2 + d]]}" for d, q in enumerate(qs)])
            with ctx.block(f"if {' and '.join(oks) or 'True'}:"):
                ctx.emit(f"_cvsrc = {src}")
                with ctx.block(f"for _cvb in range({nb}):"):
                    b_ix = "_cvsrc + _cvb" if bstride == 1 else f"_cvsrc + _cvb * {bstride}"
                    ctx.emit(f"{at}[_cvbase + _cvb] = {x}[{b_ix}]")
            with ctx.block("else:"):
                with ctx.block(f"for _cvb in range({nb}):"):
                    ctx.emit(f"{at}[_cvbase + _cvb] = {zero}")
            lp.close()
        for first in (True, False):
            with ctx.block("if _cvr0 == 0:" if first else "else:"):
                _gemm(ctx, cols, o, "_cvrn", at, 0, cols, bm, f"{b_off} + _cvr0 * {o}", o,
                      cm, c_off, o, 0 if first else 1, "BLAS gemm", max_macs=cols * o * rblk,
                      trans_a=1)


def _conv_scatter(ctx, eqn, lhs, rhs, out, last_in, zero, ks, kflat):
    """col2im, blocked over images: products (rows, window * out) = X @ W2 per group, then
    each output position sums the kernel offsets' slabs that land on it."""
    G = _Geometry(eqn)
    lhs_spec, rhs_spec, out_spec = G.lhs_spec, G.rhs_spec, G.out_spec
    pads, ld, rd, g, oa, nsp = G.pads, G.ld, G.rd, G.g, G.oa, G.nsp
    n, c, ic, psz, ksz, osz = G.n, G.c, G.ic, G.psz, G.ksz, G.osz
    kp, pp, og = G.kp, G.pp, G.og
    w2 = ctx.scratch(g * ic * kp * og, oa.dtype)
    lp = _Loops(ctx)
    lp.open("_cvg", g)
    for d in range(nsp):
        lp.open(ks[d], ksz[d])
    lp.open("_cvi", ic)
    lp.open("_cvoo", og)
    ctx.emit(f"{w2}[(_cvg * {ic} + _cvi) * {kp * og} + ({kflat}) * {og} + _cvoo] = "
             f"{rhs}[{_index(rhs_spec, f'_cvg * {og} + _cvoo', '_cvi', ks)}]")
    lp.close()
    nbb = max(1, min(n, SCATTER_BLOCK // max(1, pp * kp * og)))
    y = ctx.scratch(nbb * pp * kp * og, oa.dtype)
    of, of_off = ctx.out_flat(0)
    # one group, no input dilation and channels-last operands: one gemm per kernel offset,
    # so that each offset's products are contiguous and col2im adds whole rows at a time
    channels_last = (0, nsp + 1) + tuple(range(1, nsp + 1))
    runs = (g == 1 and all(x == 1 for x in ld) and last_in
            and tuple(out_spec) == channels_last)
    ostr = [math.prod(oa.shape[d + 1:]) for d in range(oa.ndim)]
    ps = [f"_cvp{d}" for d in range(nsp)]
    if last_in:
        xf = _flat_name(ctx, lhs)
    else:
        xb = ctx.scratch(nbb * pp * ic, oa.dtype)
    with ctx.block(f"for _cvg in range({g}):"):
        with ctx.block(f"for _cvb in range(0, {n}, {nbb}):", "a block of images"):
            ctx.emit(f"_cvnb = min({nbb}, {n} - _cvb)")
            if last_in:      # rows of the channels-last input are the matrix rows
                a, a_off, lda = xf, f"_cvb * {pp * c} + _cvg * {ic}", c
            else:
                lp = _Loops(ctx)
                lp.open("_cvnn", "_cvnb")
                for d in range(nsp):
                    lp.open(ps[d], psz[d])
                row = _flat(["_cvnn"] + ps, ["_cvnb"] + psz)
                lp.open("_cvi", ic)
                ctx.emit(f"{xb}[({row}) * {ic} + _cvi] = "
                         f"{lhs}[{_index(lhs_spec, '_cvb + _cvnn', f'_cvg * {ic} + _cvi', ps)}]")
                lp.close()
                a, a_off, lda = xb, "0", ic
            if runs:
                _col2im_runs(ctx, G, a, a_off, lda, w2, y, nbb, of, of_off, ostr, zero)
            else:
                _gemm(ctx, f"_cvnb * {pp}", kp * og, ic, a, a_off, lda, w2, f"_cvg * {ic * kp * og}",
                      kp * og, y, 0, kp * og, 0, "BLAS gemm", max_macs=nbb * pp * kp * og * ic)
                # col2im as a gather: each output element of the block sums the products that
                # land on it (kernel offset by kernel offset), so it is written once, its
                # cache line stays hot, and no zero-fill pass over the output is needed
                os_ = [f"_cvo{d}" for d in range(nsp)]
                lp = _Loops(ctx)
                lp.open("_cvnn", "_cvnb")
                for d in range(nsp):
                    lp.open(os_[d], osz[d])
                terms = [str(of_off), f"(_cvb + _cvnn) * {ostr[out_spec[0]]}",
                         f"_cvg * {og * ostr[out_spec[1]]}"]
                terms += [f"{ov} * {ostr[out_spec[2 + d]]}" for d, ov in enumerate(os_)]
                ctx.emit(f"_cvdst = {' + '.join(terms)}")
                step = "" if ostr[out_spec[1]] == 1 else f" * {ostr[out_spec[1]]}"
                with ctx.block(f"for _cvoo in range({og}):"):
                    ctx.emit(f"{of}[_cvdst + _cvoo{step}] = {zero}")
                oks = []
                for d in range(nsp):
                    lp.open(ks[d], ksz[d])
                    t, ok = ctx.fresh("_cvt"), ctx.fresh("_cvok")
                    ctx.emit(f"{t} = {os_[d]} - {pads[d][0]} + {ks[d]} * {rd[d]}")
                    if ld[d] == 1:
                        ctx.emit(f"{ps[d]} = {t}")
                        ctx.emit(f"{ok} = {t} >= 0 and {t} < {psz[d]}")
                    else:
                        ctx.emit(f"{ps[d]} = {t} // {ld[d]}")
                        ctx.emit(f"{ok} = {t} >= 0 and {t} % {ld[d]} == 0 and {ps[d]} < {psz[d]}")
                    oks.append(ok)
                with ctx.block(f"if {' and '.join(oks)}:"):
                    ctx.emit(f"_cvbase = (({_flat(['_cvnn'] + ps, ['_cvnb'] + psz)}) * {kp} + "
                             f"{kflat}) * {og}")
                    with ctx.block(f"for _cvoo in range({og}):"):
                        ctx.emit(f"{of}[_cvdst + _cvoo{step}] += {y}[_cvbase + _cvoo]")
                lp.close()


def _col2im_runs(ctx, G, a, a_off, lda, w2, y, nbb, of, of_off, ostr, zero):
    """col2im for one block of images, channels-last: products of kernel offset k are
    y[k] = X @ W2[:, k] (one gemm each, contiguous rows), and each output row (leading
    output position) is zeroed then receives, per kernel offset, ONE contiguous run of
    (last-axis positions x channels) -- long vectorised loops on a row that stays in L1."""
    nsp, psz, ksz, osz, kp, pp, og, ic = G.nsp, G.psz, G.ksz, G.osz, G.kp, G.pp, G.og, G.ic
    pads, rd = G.pads, G.rd
    ks = [f"_cvk{d}" for d in range(nsp)]
    os_ = [f"_cvo{d}" for d in range(nsp - 1)]
    ps = [f"_cvp{d}" for d in range(nsp - 1)]
    kstride = nbb * pp * og                     # elements between two offsets' products
    with ctx.block(f"for _cvk in range({kp}):", "one gemm per kernel offset"):
        _gemm(ctx, f"_cvnb * {pp}", og, ic, a, a_off, lda, w2, f"_cvk * {og}", kp * og,
              y, f"_cvk * {kstride}", og, 0, "BLAS gemm", max_macs=nbb * pp * og * ic)
    lp = _Loops(ctx)
    lp.open("_cvnn", "_cvnb")
    for d in range(nsp - 1):
        lp.open(os_[d], osz[d])
    terms = [str(of_off), f"(_cvb + _cvnn) * {ostr[0]}"]
    terms += [f"{o} * {ostr[1 + d]}" for d, o in enumerate(os_)]
    ctx.emit(f"_cvdst = {' + '.join(terms)}")
    row = osz[-1] * og
    with ctx.block(f"for _cvt in range({row}):"):
        ctx.emit(f"{of}[_cvdst + _cvt] = {zero}")
    oks = []
    for d in range(nsp):
        lp.open(ks[d], ksz[d])
        if d < nsp - 1:
            ctx.emit(f"{ps[d]} = {os_[d]} - {pads[d][0]} + {ks[d]} * {rd[d]}")
            oks.append(f"{ps[d]} >= 0 and {ps[d]} < {psz[d]}")
    last = nsp - 1
    # input position of output position o along the last axis: o + shift
    ctx.emit(f"_cvsh = {ks[last]} * {rd[last]} - {pads[last][0]}")
    ctx.emit("_cva = max(0, -_cvsh)")
    ctx.emit(f"_cvz = min({osz[last]}, {psz[last]} - _cvsh)")
    with ctx.block(f"if {' and '.join(oks + ['_cva < _cvz'])}:"):
        prow = _flat(["_cvnn"] + ps + ["(_cva + _cvsh)"], [None] + psz)
        ctx.emit(f"_cvsrc = ({_flat(ks, ksz)}) * {kstride} + ({prow}) * {og}")
        ctx.emit(f"_cvd2 = _cvdst + _cva * {og}")
        with ctx.block(f"for _cvt in range((_cvz - _cva) * {og}):"):
            ctx.emit(f"{of}[_cvd2 + _cvt] += {y}[_cvsrc + _cvt]")
    lp.close()


def _conv_direct(ctx, eqn, lhs, rhs, out):
    """Direct loops: one accumulator per output element (any dtype)."""
    G = _Geometry(eqn)
    lhs_spec, rhs_spec, out_spec = G.lhs_spec, G.rhs_spec, G.out_spec
    strides, pads, ld, rd, g, bg = G.strides, G.pads, G.ld, G.rd, G.g, G.bg
    la, oa, nsp, ic, psz, ksz, osz = G.la, G.oa, G.nsp, G.ic, G.psz, G.ksz, G.osz
    groups, nb, og = G.groups, G.nb, G.og
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
    if kind in ("sum", "or", "xor"):
        return ctx.literal(0, dtype) if dtype != np.bool_ else "False"
    if kind == "prod":
        return ctx.literal(1, dtype) if dtype != np.bool_ else "True"
    if kind == "and":
        return ctx.literal(-1 if dtype.kind == "i" else np.iinfo(dtype).max, dtype) \
            if dtype != np.bool_ else "True"
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
    # as everywhere in the backend: no parallel loop in a function that also calls BLAS
    # (Numba's worker threads and OpenBLAS's then fight for the cores: a 60x slowdown of
    # the digits CNN step on 2 cores)
    par = (parallel and not ctx.mod.threaded_calls and parallel_allowed() and
           out_aval.size * math.prod(wdims) >= (1 << 16))
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
                           d, out_aval.shape[d], wdims[d])
        qs.append(q)
        if ok != "True":
            oks.append(ok)
    body_elem(qs, " and ".join(oks) or "True")
    inner.close()
    body_close(os_)
    lp.close()


def _pool_kernel_call(ctx, eqn, kind):
    """Channels-last float pooling (a 4-D operand, windows over its first three axes, the last
    untouched, no dilation) as one call of the `kernels_conv` pool kernel (sizes as
    arguments, each output row a vector loop over the last axis); False when the equation is
    not of that form or the generated loops would run in parallel."""
    xa, oa = eqn.invars[0].aval, eqn.outvars[0].aval
    p = eqn.params
    wd, ws, pads = p["window_dimensions"], p["window_strides"], p["padding"]
    if not (POOL_KERNEL and kind in ("max", "min", "sum") and xa.ndim == 4 and
            oa.dtype in (np.float32, np.float64) and xa.dtype == oa.dtype and
            all(b == 1 for b in p["base_dilation"]) and
            all(w == 1 for w in p["window_dilation"]) and wd[3] == 1 and ws[3] == 1 and
            tuple(pads[3]) == (0, 0) and oa.size and xa.size):
        return False
    if (not ctx.mod.threaded_calls and parallel_allowed() and
            oa.size * math.prod(wd) >= (1 << 16)):
        return False            # (the generated loops run in parallel there)
    from . import kernels_conv
    x, x_off = ctx.flat(0)
    of, o_off = ctx.out_flat(0)
    sizes = (*xa.shape[:3], *oa.shape[:3], *wd[:3], *ws[:3], *(lo for lo, _ in pads[:3]),
             xa.shape[3], {"max": 0, "min": 1, "sum": 2}[kind])
    k = ctx.kernel(kernels_conv.name("pool", oa.dtype))
    ctx.emit(f"{k}({x}, {x_off}, {of}, {o_off}, ({', '.join(str(int(v)) for v in sizes)},))",
             f"pooling ({kind})")
    return True


def _lower_reduce_window(kind):
    def rule(ctx, eqn):
        xa, oa = eqn.invars[0].aval, eqn.outvars[0].aval
        if _pool_kernel_call(ctx, eqn, kind):
            return
        out = ctx.out(0)
        if oa.size == 0:
            return
        x = ctx.array(0)
        init = _identity_literal(ctx, kind, oa.dtype)
        dt = oa.dtype

        def combine(acc, v):
            if kind in ("sum", "prod", "and", "or", "xor"):
                op = {"sum": "+", "prod": "*", "and": "&", "or": "|", "xor": "^"}[kind]
                if dt == np.bool_:
                    op = {"prod": "and", "and": "and", "or": "or", "xor": "!="}[kind]
                    return f"({acc} {op} {v})"
                e = f"{acc} {op} {v}"
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


for _kind in ("sum", "max", "min", "prod", "and", "or", "xor"):
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


MAX_TILE_WINDOW = 16        # window elements unrolled in the tiled max-pool gradient


def _pool_tiling(eqn, shape):
    """For windows that tile the operand (no padding, no dilation, stride >= window): the
    number of leading dims that carry windows and the contiguous length of the trailing
    untouched dims (window 1, stride 1); else None."""
    p = eqn.params
    wdims, ws, pads = p["window_dimensions"], p["window_strides"], p["padding"]
    if any(b != 1 for b in p["base_dilation"]) or any(w != 1 for w in p["window_dilation"]):
        return None
    if any(lo or hi for lo, hi in pads) or any(s < w for s, w in zip(ws, wdims)):
        return None
    lead = len(shape)
    while lead and wdims[lead - 1] == 1 and ws[lead - 1] == 1:
        lead -= 1
    if lead == 0 or math.prod(wdims) > MAX_TILE_WINDOW:
        return None
    return lead, math.prod(shape[lead:])


def _lower_ssa_tiled(ctx, eqn, lead, lanes):
    """Max-pool gradient when windows do not overlap: each window's argmax is found for all
    `lanes` trailing elements at once (the window offsets unrolled, the lane loop innermost,
    so it vectorises); every operand element is written exactly once (the routed cotangent
    or zero), so no zero-fill pass and no read-modify-write."""
    p = eqn.params
    wdims, ws = p["window_dimensions"], p["window_strides"]
    sa, xa = eqn.invars[0].aval, eqn.invars[1].aval
    s, s_off = ctx.flat(0)
    x, x_off = ctx.flat(1)
    out, o_off = ctx.out_flat(0)
    xs = xa.shape
    xstr = [math.prod(xs[d + 1:]) for d in range(len(xs))]
    sstr = [math.prod(sa.shape[d + 1:]) for d in range(len(xs))]
    covered = all(sa.shape[d] * ws[d] == xs[d] for d in range(lead))
    if not covered:           # elements outside every window get zero
        ctx.emit(f"{out}[{o_off}:{o_off} + {xa.size}] = {ctx.literal(0, xa.dtype)}")
    os_ = [f"_mpo{d}" for d in range(lead)]
    lp = _Loops(ctx)
    for d in range(lead):
        lp.open(os_[d], sa.shape[d])
    xb = " + ".join(f"{o} * {ws[d] * xstr[d]}" for d, o in enumerate(os_) if ws[d] * xstr[d])
    sb = " + ".join(f"{o} * {sstr[d]}" for d, o in enumerate(os_) if sstr[d])
    ctx.emit(f"_mpx = {xb or '0'}")
    ctx.emit(f"_mps = {sb or '0'}")
    offsets = [sum(k * xstr[d] for d, k in enumerate(ks))
               for ks in np.ndindex(*wdims[:lead])]
    with ctx.block(f"for _mpl in range({lanes}):"):
        ctx.emit(f"_mpb = {x}[{x_off} + _mpx + _mpl]")
        ctx.emit("_mpa = 0")
        for j, off in enumerate(offsets[1:], 1):
            ctx.emit(f"_mpv = {x}[{x_off} + _mpx + {off} + _mpl]")
            ctx.emit(f"_mpa = {j} if _mpv > _mpb else _mpa")
            ctx.emit("_mpb = _mpv if _mpv > _mpb else _mpb")
        ctx.emit(f"_mpg = {s}[{s_off} + _mps + _mpl]")
        zero = ctx.literal(0, xa.dtype)
        for j, off in enumerate(offsets):
            ctx.emit(f"{out}[{o_off} + _mpx + {off} + _mpl] = _mpg if _mpa == {j} else {zero}")
    lp.close()


@register_lowering("select_and_scatter_add")
def _lower_ssa(ctx, eqn):
    sa, xa, oa = eqn.invars[0].aval, eqn.invars[1].aval, eqn.outvars[0].aval
    if oa.size and sa.size:
        tiling = _pool_tiling(eqn, xa.shape)
        if tiling is not None:
            return _lower_ssa_tiled(ctx, eqn, *tiling)
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
