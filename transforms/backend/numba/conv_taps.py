"""Convolution by kernel offsets ("taps"), for small feature maps with many channels.

On a small map most of a padded window hangs over the border: a 3x3 "SAME" convolution of a
2x2 map uses 4 of its 9 offsets at every output position (16 of 36 (offset, position) pairs),
of a 1x1 map only the centre. The im2col path multiplies the zeros of those pairs anyway (a
1x1 map: 9x the work). Here every offset whose window meets the map is one gemm:

    out[n, o] += x[n, o * stride + k * dilation - pad_lo] @ w[k]      for o in box(k)

where box(k), the output positions at which offset k lands on the map, is a box (a range
per spatial axis) known at lowering time. Rows of the input for those positions are gathered
(channels-last: one contiguous run of channels each) into an (images x box, in) matrix, the
gemm with the offset's (in, out) slice of the kernel gives the box's contributions, which are
added to the output rows. An offset whose box is the whole output (the centre of a "SAME"
window) writes its gemm straight into the output (the first such one with beta = 0, so no
zero fill); if it also reads the input unshifted (stride 1, no padding effect), the input
itself is the gemm's A matrix. The kernel matrix of an HWIO-like kernel (spatial axes, then
in, then out) is the kernel's own storage: no copy.

Used when the offsets' valid pairs are at most `TAP_MAX_FILL` of all pairs and the input has
at least `TAP_MIN_CHANNELS` channels (the gemms' depth); one group, no input dilation.
Measured single-threaded against the im2col path, batch 32, 3x3 "SAME" convolutions: 2x2 map
x 256 channels 1.23 -> 0.63 ms of gemm, 1x1 map x 512 channels 2.4 -> 0.16 ms; an 8x8 map
(84% of the pairs valid) is faster as one im2col gemm.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

TAP_MAX_FILL = 0.75        # use the taps path when at most this fraction of pairs is valid
TAP_MIN_CHANNELS = 16      # fewer input channels: the per-offset gemms are too shallow
TAP_BLOCK = 1 << 19        # elements of one gathered input block (images x box x channels)


def tap_boxes(G):
    """[(flat offset index, shifts, lows, highs)] for every kernel offset whose window meets
    the input at some output position: the input position of output position o along axis d
    is o * stride[d] + shift[d], valid for lows[d] <= o < highs[d]."""
    res = []
    for ks in np.ndindex(*G.ksz):
        shifts, lows, highs = [], [], []
        for d, k in enumerate(ks):
            s, sh = G.strides[d], k * G.rd[d] - G.pads[d][0]
            lo = max(0, -(sh // s))                 # ceil(-sh / s)
            hi = min(G.osz[d], (G.psz[d] - 1 - sh) // s + 1)
            shifts.append(sh)
            lows.append(lo)
            highs.append(hi)
        if all(lo < hi for lo, hi in zip(lows, highs)):
            res.append((int(np.ravel_multi_index(ks, G.ksz)), shifts, lows, highs))
    return res


def valid_fraction(G, boxes=None):
    """Valid (offset, output position) pairs over all of them."""
    boxes = tap_boxes(G) if boxes is None else boxes
    pairs = sum(math.prod(h - lo for lo, h in zip(lows, highs)) for _, _, lows, highs in boxes)
    return pairs / max(1, G.kp * G.op)


def use_taps(G):
    """Whether `lower_conv_taps` handles this convolution (and is the cheaper path)."""
    channels_last = (0, G.nsp + 1) + tuple(range(1, G.nsp + 1))
    if (G.groups != 1 or any(x != 1 for x in G.ld) or G.c < TAP_MIN_CHANNELS
            or tuple(G.out_spec) != channels_last):
        return False
    return valid_fraction(G) <= TAP_MAX_FILL


def _hwio(G):
    return tuple(G.rhs_spec) == (G.nsp + 1, G.nsp) + tuple(range(G.nsp))


def lower_conv_taps(ctx, eqn, G, gemm):
    """Emit the convolution of channels-last operands by kernel offsets (see the module
    docstring). `gemm(ctx, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc, beta,
    max_macs)` emits one row-major product."""
    nsp, n, c, o, psz, osz, kp, op, pp = G.nsp, G.n, G.c, G.o, G.psz, G.osz, G.kp, G.op, G.pp
    dt = G.oa.dtype
    boxes = tap_boxes(G)
    x, x_off = channels_last_input(ctx, G)
    of, o_off = ctx.out_flat(0)
    if _hwio(G):                         # (*window, in, out): already the kernel matrices
        w, w_off = ctx.flat(1)
    else:                                # one copy into (*window, in, out)
        rhs = ctx.array(1)
        w, w_off = ctx.scratch(kp * c * o, dt), 0
        _copy_kernel(ctx, G, rhs, w)
    full = [b for b in boxes if all(lo == 0 and h == sz for lo, h, sz in
                                    zip(b[2], b[3], osz))]
    ident = [b for b in full if all(s == 1 and sh == 0 for s, sh in zip(G.strides, b[1]))
             and list(psz) == list(osz)]
    first = (ident or full or [None])[0]
    order = ([first] if first else []) + [b for b in boxes if b is not first]
    # table rows: offset, direct-into-output flag, identity flag, then shifts, lows, highs
    table = np.array([[k, b in full, b is first and b in ident] + sh + lo + hi
                      for b in order for k, sh, lo, hi in [b]], np.int64)
    tab = ctx.const(table.reshape(-1))
    width = table.shape[1]
    nbb = max(1, min(n, TAP_BLOCK // max(1, op * max(c, o))))
    a = ctx.scratch(nbb * op * c, dt)
    t = ctx.scratch(nbb * op * o, dt)
    zero = ctx.literal(0, dt)
    max_macs = nbb * op * c * o
    with ctx.block(f"for _ctb in range(0, {n}, {nbb}):", "a block of images"):
        ctx.emit(f"_ctnb = min({nbb}, {n} - _ctb)")
        ctx.emit(f"_ctout = {o_off} + _ctb * {op * o}")
        if first is None:                # no offset covers every position: start from zero
            with ctx.block(f"for _cti in range(_ctnb * {op * o}):"):
                ctx.emit(f"{of}[_ctout + _cti] = {zero}")
        with ctx.block(f"for _ctt in range({len(order)}):", "one gemm per kernel offset"):
            ctx.emit(f"_ctw = {w_off} + {tab}[_ctt * {width}] * {c * o}")
            ctx.emit(f"_ctfull = {tab}[_ctt * {width} + 1]")
            ctx.emit(f"_ctbeta = {zero} if (_ctt == 0 and {int(first is not None)}) "
                     f"else {ctx.literal(1, dt)}")
            for d in range(nsp):
                base = f"_ctt * {width} + 3"
                ctx.emit(f"_cts{d} = {tab}[{base} + {d}]")
                ctx.emit(f"_ctlo{d} = {tab}[{base} + {nsp + d}]")
                ctx.emit(f"_cthi{d} = {tab}[{base} + {2 * nsp + d}]")
            with ctx.block(f"if {tab}[_ctt * {width} + 2] == 1:", "the input as it is"):
                gemm(ctx, f"_ctnb * {op}", o, c, x, f"{x_off} + _ctb * {pp * c}", c, w, "_ctw",
                     o, of, "_ctout", o, "_ctbeta", max_macs)
            with ctx.block("else:"):
                _box_rows(ctx, G, "gather", x, x_off, a, c)
                with ctx.block("if _ctfull == 1:", "every output position: straight in"):
                    gemm(ctx, "_ctr", o, c, a, 0, c, w, "_ctw", o, of, "_ctout", o, "_ctbeta",
                         max_macs)
                with ctx.block("else:"):
                    gemm(ctx, "_ctr", o, c, a, 0, c, w, "_ctw", o, t, 0, o, zero, max_macs)
                    _box_rows(ctx, G, "add", of, o_off, t, o)


def _box_rows(ctx, G, kind, big, big_off, small, width):
    """Loops over the images of the block and the current offset's box: "gather" copies the
    input row of each position into row `_ctr` of `small`; "add" adds row `_ctr` of `small`
    into the position's output row. Leaves the number of rows in `_ctr`."""
    nsp = G.nsp
    os_ = [f"_cto{d}" for d in range(nsp)]
    if kind == "gather":
        pos = [f"{os_[d]} * {G.strides[d]} + _cts{d}" for d in range(nsp)]
        sizes = G.psz
    else:
        pos, sizes = os_, G.osz
    e = "(_ctb + _ctnn)"
    for p, s in zip(pos, sizes):
        e = f"({e}) * {s} + {p}"
    ctx.emit("_ctr = 0")
    with contextlib.ExitStack() as loops:      # bounds known at run time only: no ctx.loops
        loops.enter_context(ctx.block("for _ctnn in range(_ctnb):"))
        for d in range(nsp):
            loops.enter_context(ctx.block(f"for {os_[d]} in range(_ctlo{d}, _cthi{d}):"))
        ctx.emit(f"_ctbig = {big_off} + ({e}) * {width}")
        ctx.emit(f"_ctsmall = _ctr * {width}")
        with ctx.block(f"for _cti in range({width}):"):
            if kind == "gather":
                ctx.emit(f"{small}[_ctsmall + _cti] = {big}[_ctbig + _cti]")
            else:
                ctx.emit(f"{big}[_ctbig + _cti] += {small}[_ctsmall + _cti]")
        ctx.emit("_ctr += 1")


def channels_last_input(ctx, G):
    """(flat name, offset) of the input as (batch, *spatial, feature): the operand itself when
    it is stored so, else one transposing copy."""
    nsp = G.nsp
    if tuple(G.lhs_spec) == (0, nsp + 1) + tuple(range(1, nsp + 1)):
        return ctx.flat(0)
    lhs = ctx.array(0)
    xc = ctx.scratch(G.n * G.pp * G.c, G.oa.dtype)
    with ctx.loops((G.n,) + tuple(G.psz) + (G.c,), prefix="_ctx") as ix:
        nn, ps, cc = ix[0], ix[1:-1], ix[-1]
        idx = [None] * (nsp + 2)
        idx[G.lhs_spec[0]], idx[G.lhs_spec[1]] = nn, cc
        for d, p in zip(G.lhs_spec[2:], ps):
            idx[d] = p
        flat = nn
        for p, s in zip(ps, G.psz):
            flat = f"({flat}) * {s} + {p}"
        ctx.emit(f"{xc}[({flat}) * {G.c} + {cc}] = {lhs}[{', '.join(idx)}]")
    return xc, 0


def _copy_kernel(ctx, G, rhs, w):
    """Copy the kernel `rhs` (any layout) into `w` as (*window, in, out)."""
    nsp = G.nsp
    with ctx.loops(tuple(G.ksz) + (G.ic, G.o), prefix="_ctk") as ix:
        ks, ci, co = ix[:-2], ix[-2], ix[-1]
        idx = [None] * (nsp + 2)
        idx[G.rhs_spec[0]], idx[G.rhs_spec[1]] = co, ci
        for d, k in zip(G.rhs_spec[2:], ks):
            idx[d] = k
        flat = "0"
        for k, s in zip(ks, G.ksz):
            flat = f"({flat}) * {s} + {k}"
        ctx.emit(f"{w}[(({flat}) * {G.ic} + {ci}) * {G.o} + {co}] = {rhs}[{', '.join(idx)}]")
