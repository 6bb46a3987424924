"""3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3).

A 3x3 convolution producing a 2x2 output tile from a 4x4 input tile takes 36 multiplies per
(in, out) channel pair done directly, 16 after transforming the tile and the kernel (Lavin &
Gray, "Fast Algorithms for Convolutional Neural Networks", 2015): with

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

the output tile is A^T [(G g G^T) * (B^T d B)] A, summed over input channels, where `*`
multiplies element by element. Summing over channels makes each of the 16 elements one
matrix product: M[e] = V[e] (tiles, in) @ U[e] (in, out), so the convolution becomes 16 BLAS
gemms with 16/36 of im2col's multiply-adds, plus the transforms (additions only, and the
halvings of G; exact in binary except for the rounding of those sums, so the result differs
from a direct sum by a few ulp of the tile's magnitudes).

The loops are a helper generated per layout, dtype, channels and spatial sizes, the batch a
run-time argument: a training step, its evaluation on another batch size and a last partial
batch share one compiled helper (0.17 s of LLVM for the digits CNN's 4x4x32 -> 64 maps, where
a helper per batch size took 0.26-0.34 s each); or, with
`WINOGRAD_KERNEL`, the library kernel `kernels_conv` "winograd" (sizes as run-time
arguments, compiled once per dtype, precompiled by `transforms.precompile`). Run in one
process beside the generated helper, alternated, the kernel measured within +-1% on the
convolutions below and the small CNN's (one BLAS thread and default threads, identical
bits); called repeatedly on its own, though, the CNN step's Winograd convolutions took
50-70% more cycles, so the kernel is off by default (see `WINOGRAD_KERNEL`).

Layout: channels-last operands; the input is first copied into a zero-padded buffer covering
every tile (no border tests in the transform loop); images are processed in blocks sized so
that V and M stay in the L2 cache.

Chosen (see `use_winograd`) for 2-D 3x3 kernels, stride 1, no dilation, one group, at least
`WINO_MIN_CHANNELS` in and out channels and a map whose tiles cost at most
`WINO_MAX_RATIO` of the cheaper other path's multiply-adds: ResNet's 8x8 and 4x4 stages.
Measured single-threaded, batch 32: 8x8x64 -> 64 channels 1.39 ms (im2col) -> 1.0-1.2 ms,
4x4x128 -> 128 1.27 ms (im2col) / 1.17 ms (taps) -> 0.96 ms; PyTorch (oneDNN, one thread)
0.9 and 0.87 ms.
"""
from __future__ import annotations

import hashlib
import math
import re

import numpy as np

from .emit import Emitter

WINO_MIN_CHANNELS = 32     # shallower gemms lose more to the transforms than they gain
WINO_MAX_RATIO = 0.7       # tiles' multiply-adds over the other path's, at most
WINO_BLOCK = 1 << 18       # elements of V (16 x tiles x in) for one block of images
WINO_MAX_OUT = 64          # largest output map side handled (beyond: im2col's big gemms)
# The size-generic library kernel (compiled once per dtype) instead of a helper generated per
# shape: off by default. Timed alternately with the generated helper in one process it
# matched it (+-1%, bit-identical results), but in steady state (repeated calls of one
# version, whichever else is compiled in the process) the CNN benchmark's step took 86 ms of
# CPU against 70 (its two Winograd convolutions 50-70% more cycles, NUMBAX_PROFILE). Not
# verified: with run-time sizes the 16 store streams of the transforms each need their own
# run-time alias check, beyond LLVM's vectoriser limit, so those loops may stay scalar.
WINOGRAD_KERNEL = False


def winograd_cost(G):
    """Multiply-adds per (image, in, out) channel pair: 16 per 2x2 output tile."""
    return 16 * math.ceil(G.osz[0] / 2) * math.ceil(G.osz[1] / 2)


def use_winograd(G, other_cost):
    """Whether `lower_conv_winograd` handles this convolution; `other_cost`: multiply-adds per
    (image, in, out) channel pair of the path taken otherwise."""
    channels_last = (0, 3, 1, 2)
    if (G.nsp != 2 or tuple(G.ksz) != (3, 3) or G.groups != 1 or any(s != 1 for s in G.strides)
            or any(x != 1 for x in G.ld) or any(x != 1 for x in G.rd)
            or G.c < WINO_MIN_CHANNELS or G.o < WINO_MIN_CHANNELS
            or tuple(G.out_spec) != channels_last or max(G.osz) > WINO_MAX_OUT):
        return False
    return winograd_cost(G) <= WINO_MAX_RATIO * other_cost


def block_images(G):
    """Images per block of a batch of any size: V and M of a full block fill `WINO_BLOCK`."""
    tiles = -(-G.osz[0] // 2) * -(-G.osz[1] // 2)
    return max(1, WINO_BLOCK // (16 * tiles * max(G.c, G.o)))


def _tiling(ctx, G, full_block=False):
    """The tiling both lowerings share: sizes, 2x2 output tiles (th x tw), the padded input
    (hp x wp), images per block (nbb) and gemm rows per block, the output, and the scratch
    arrays U (kernel), V (input tiles), M (products) and the padded input block."""
    n, c, o = G.n, G.c, G.o
    ho, wo = G.osz
    dt = G.oa.dtype
    th, tw = -(-ho // 2), -(-wo // 2)
    tiles = th * tw
    hp, wp = 2 * th + 2, 2 * tw + 2            # padded input covering every tile
    of, o_off = ctx.out_flat(0)
    nbb = min(n, block_images(G))
    rows = nbb * tiles                          # gemm rows of a full block
    # (`full_block`: V and M hold a block of `block_images` whatever the batch, their row
    # stride a constant of the batch-generic helper)
    vrows = block_images(G) * tiles if full_block else rows
    u = ctx.scratch(16 * c * o, dt)
    v = ctx.scratch(16 * vrows * c, dt)
    m = ctx.scratch(16 * vrows * o, dt)
    xp = ctx.scratch(nbb * hp * wp * c, dt)
    return n, c, o, ho, wo, dt, th, tw, hp, wp, of, o_off, nbb, rows, u, v, m, xp


def lower_conv_winograd(ctx, eqn, G, x, x_off, rhs=None):
    """Emit the convolution (see the module docstring): with `WINOGRAD_KERNEL` one call of
    the library kernel `kernels_conv` "winograd" (compiled once per dtype, sizes as
    arguments), else loops generated for this shape. `x`, `x_off`: the input as a flat
    channels-last array; `rhs`: the kernel as an N-d C-contiguous array when the caller has
    it already (else taken here).

    The kernel is a function of its own taking every array as an argument: the same loops
    inline in the generated function, on its local scratch arrays, ran 3-4x slower (an
    8x8x64 map: 3.4 ms against 0.95 ms)."""
    if not WINOGRAD_KERNEL:
        from .rules_conv import _gemm_beta
        return _lower_generated(ctx, eqn, G, _gemm_beta, x, x_off, rhs)
    from . import kernels_conv
    from .rules_linalg import gemm_kernel
    from .kernels import GEMM, GEMM_SERIAL
    (n, c, o, ho, wo, dt, th, tw, hp, wp, of, o_off, nbb, rows, u, v, m,
     xp) = _tiling(ctx, G)
    if tuple(G.rhs_spec) == (3, 2, 0, 1):       # HWIO: the kernel's storage as it is
        w, w_off = ctx.flat(1)
    else:
        w, w_off = (rhs if rhs is not None else ctx.array(1)), 0
    # element strides of the kernel's (out, in, kh, kw) axes in its C-contiguous storage
    shape = G.ra.shape
    cs = [int(np.prod(shape[d + 1:], dtype=np.int64)) for d in range(4)]
    so, si, skh, skw = (cs[d] for d in G.rhs_spec)
    wsize = kernels_conv.wino_kernel_size(c, o, skh, skw, si, so)
    g = gemm_kernel(rows * c * o)
    mode = 0 if g == GEMM_SERIAL else (2 if g == GEMM else 1)
    (plh, _), (plw, _) = G.pads
    ph, pw = G.psz
    sizes = (n, ph, pw, plh, plw, ho, wo, c, o, nbb, skh, skw, si, so, wsize, mode)
    k = ctx.kernel(kernels_conv.name("winograd", dt))
    ctx.emit(f"{k}({x}, {x_off}, {w}, {w_off}, {of}, {o_off}, {u}, 0, {v}, 0, {m}, 0, "
             f"{xp}, 0, ({', '.join(str(int(s)) for s in sizes)},))", "Winograd F(2x2, 3x3)")


def _lower_generated(ctx, eqn, G, gemm, x, x_off, rhs=None):
    """Emit the convolution as loops generated for this shape, in a helper of its own (see
    `WINOGRAD_KERNEL`). `x`, `x_off`: the input as a flat channels-last array; `gemm` as for
    `conv_taps.lower_conv_taps`; `rhs`: the kernel as an N-d array if the caller has it.

    The work is one helper function (per distinct geometry but the batch, an argument)
    taking every array as an argument: the same loops inline in the generated function, on
    its local scratch arrays, ran 3-4x slower (an 8x8x64 map: 3.4 ms against 0.95 ms).

    Every index in the helper is a sum of products of loop counters and constants (the
    operands passed as slices, not with offsets; V and M rows strided by a full block's,
    whatever the batch): the direct compiler then proves them non-negative and emits no
    test for Python's negative indices. LLVM took 0.4 s over the helper with the block's
    actual row count as the stride of V and M (a run-time value once the batch is an
    argument), 0.26 s with a constant stride, 0.2 s (half the machine code) without the
    offsets as well; the run time stayed the same (+-1%)."""
    (n, c, o, ho, wo, dt, th, tw, hp, wp, of, o_off, nbb, rows, u, v, m,
     xp) = _tiling(ctx, G, full_block=True)
    hwio = tuple(G.rhs_spec) == (3, 2, 0, 1)
    w, w_off = ctx.flat(1) if hwio else ((rhs if rhs is not None else ctx.array(1)), 0)
    lits = {"half": ctx.literal(0.5, dt), "zero": ctx.literal(0, dt), "one": ctx.literal(1, dt)}
    src = Emitter()

    class _Gemm:            # the gemm emitter bound to the helper's source
        eqn = ctx.eqn
        emit, block = src.emit, src.block
        kernel, literal = ctx.kernel, ctx.literal
    _kernel_transform(src, G, "w", "u", lits["half"])
    _blocks(src, _Gemm, G, gemm, block_images(G), rows, th, tw, hp, wp, lits)
    body = "\n".join(src.lines)
    # a written signature: the helper compiles on its own (a module of its own, cached by
    # content, possibly compiled by a worker process: helpers.py), and without the Python
    # and C wrappers only compiled callers need not. Its arrays never overlap (the input,
    # the kernel, the output and four scratch arrays of their own), so they are `noalias`:
    # LLVM then vectorises the transforms with no run-time overlap checks (the digits CNN's
    # helper: 18% less LLVM time, a third less machine code)
    def arr(dtype, ndim=1):
        return f"_t.Array({ctx.numba_type(dtype)}, {ndim}, 'C')"
    xdt, wdt = ctx.eqn.invars[0].aval.dtype, ctx.eqn.invars[1].aval.dtype
    sig = (f"_t.none({arr(xdt)}, {arr(wdt)}, "
           f"{arr(ctx.eqn.outvars[0].aval.dtype)}, {arr(dt)}, {arr(dt)}, {arr(dt)}, {arr(dt)}, "
           "_t.int64)")
    name = f"_wg_conv_{helper_key(sig, body)}"
    ctx.add_helper(name, "\n".join([
        f"@_njit({sig}, cache=True, nogil=True, error_model='numpy', "
        "no_cpython_wrapper=True, no_cfunc_wrapper=True, noalias=True)",
        f"def {name}(x, w, out, u, v, m, xp, n):", body]))
    # the batch is an argument: one compiled helper serves every batch size (a training step
    # and its evaluation, the last partial batch); the scratch arrays the caller passes hold
    # min(n, block) images. The operands are passed as slices (no offsets in the helper's
    # indices, see above).
    xs = _operand(x, x_off, n * G.pp * c)
    # (the kernel flat in any layout: constant strides index it, no run-time shape)
    ws = _operand(w, w_off, 9 * c * o) if hwio else f"{w}.reshape({9 * c * o})"
    ctx.emit(f"{name}({xs}, {ws}, {_operand(of, o_off, n * ho * wo * o)}, {u}, {v}, {m}, "
             f"{xp}, {n})", "Winograd F(2x2, 3x3)")


def _operand(flat, off, size):
    """The elements [off, off + size) of the flat array `flat`: a slice the backend emits as
    a view (`views.py`: literal bounds; buffer offsets are integers)."""
    if not isinstance(off, (int, np.integer)):
        return f"{flat}[{off}:{off} + {size}]"    # (a computed offset: NumPy's slice)
    return f"{flat}[{int(off)}:{int(off) + size}]"


# a program's module-level constant (``_C3_f32``): numbered in the order the program made them
_CONST = re.compile(r"(?<![\w.])_C\d+_\w+")


def helper_key(sig, body):
    """The helper's name suffix: a hash of its signature and code, with the program's constant
    names replaced by their order of use in `body` (their values follow from the dtypes in
    `sig`), so every program emitting these loops names, and caches, one helper alike."""
    order = {}
    canon = _CONST.sub(lambda mt: order.setdefault(mt.group(0), f"_K{len(order)}"), body)
    return hashlib.sha1(f"{sig}\n{canon}".encode()).hexdigest()[:12]


def _blocks(src, gctx, G, gemm, nbb, rows, th, tw, hp, wp, lits):
    """The loop over blocks of `nbb` images of the helper's argument `n` (the batch): pad,
    transform, 16 gemms, transform back. `rows`: gemm rows of the largest block of this
    batch (it bounds the products, which picks the gemm kernel)."""
    c, o = G.c, G.o
    (ph, pw), (ho, wo) = G.psz, G.osz
    (plh, _), (plw, _) = G.pads
    tiles = th * tw
    rs = nbb * tiles            # rows of V and M per tile element: a full block's
    zero = lits["zero"]
    # the input rows/columns of the padded buffer that hold input data
    y_lo, y_hi = max(0, plh), min(hp, ph + plh)
    x_lo, x_hi = max(0, plw), min(wp, pw + plw)
    # the batch `n` is the helper's argument (only these lines read it): every loop below
    # runs over `_wgnb` images, a run-time count already. The block size stays a constant
    # (it follows from the channels and the map): as an argument too, LLVM took 0.45 s
    # over the helper instead of 0.26 (and the direct compiler takes constant steps only).
    with src.block(f"for _wgb in range(0, n, {nbb}):", "a block of images"):
        src.emit(f"_wgnb = min({nbb}, n - _wgb)")
        src.emit(f"_wgrows = _wgnb * {tiles}")
        # zero-padded copy of the block's images
        with src.block(f"for _wgi in range(_wgnb * {hp * wp * c}):"):
            src.emit(f"xp[_wgi] = {zero}")
        with src.block("for _wgn in range(_wgnb):"):
            # (the offsets y_lo - plh and x_lo - plw are >= 0: indices without subtraction)
            with src.block(f"for _wgy in range({y_hi - y_lo}):"):
                src.emit(f"_wgd = ((_wgn * {hp} + _wgy + {y_lo}) * {wp} + {x_lo}) * {c}")
                src.emit(f"_wgs = (((_wgb + _wgn) * {ph} + _wgy + {y_lo - plh}) * {pw} + "
                         f"{x_lo - plw}) * {c}")
                run = max(0, x_hi - x_lo) * c
                if G.la.dtype == G.oa.dtype and run:
                    # one memmove per row: as a loop of constant length over provably
                    # contiguous elements, LLVM vectorised and unrolled it completely (the
                    # CNN's input gradient: 0.41 s of LLVM over the helper instead of 0.14)
                    src.emit(f"_st(xp, _wgd, _wgd + {run}, _sl(x, _wgs, _wgs + {run}))")
                else:
                    with src.block(f"for _wgi in range({run}):"):
                        src.emit("xp[_wgd + _wgi] = x[_wgs + _wgi]")
        _input_transform(src, c, hp, wp, th, tw, "xp", "v", rs)
        with src.block("for _wge in range(16):", "one gemm per tile element"):
            gemm(gctx, "_wgrows", o, c, "v", f"_wge * {rs * c}", c, "u", f"_wge * {c * o}",
                 o, "m", f"_wge * {rs * o}", o, zero, rows * c * o)
        _output_transform(src, o, ho, wo, th, tw, "m", "out", rs)


def _kernel_transform(src, G, w, u, half):
    """U[e, i, o] = (G g G^T)[e] for the 3x3 kernel g of each (in i, out o) pair; `w` is the
    kernel's C-contiguous storage, flat, in its own layout (`G.rhs_spec`)."""
    c, o = G.c, G.o
    # element strides of the kernel's (out, in, kh, kw) axes (indexed as 4-d, the direct
    # compiler multiplies by the run-time shape: 10% more LLVM time over the helper)
    shape = G.ra.shape
    cs = [math.prod(shape[d + 1:]) for d in range(4)]
    so, si, skh, skw = (cs[d] for d in G.rhs_spec)

    def g(kh, kw):
        return f"{w}[{kh * skh + kw * skw} + {_scaled('_wgi', si)} + {_scaled('_wgo', so)}]"
    with src.block(f"for _wgi in range({c}):"):
        with src.block(f"for _wgo in range({o}):"):
            for r in range(3):                   # t = G g: 4 rows of 3
                g0, g1, g2 = g(r, 0), g(r, 1), g(r, 2)
                src.emit(f"_wgg{r}0, _wgg{r}1, _wgg{r}2 = {g0}, {g1}, {g2}")
            for j in range(3):
                src.emit(f"_wgt0{j} = _wgg0{j}")
                src.emit(f"_wgt1{j} = (_wgg0{j} + _wgg1{j} + _wgg2{j}) * {half}")
                src.emit(f"_wgt2{j} = (_wgg0{j} - _wgg1{j} + _wgg2{j}) * {half}")
                src.emit(f"_wgt3{j} = _wgg2{j}")
            for r in range(4):                   # U = t G^T: 4 columns
                vals = [f"_wgt{r}0", f"(_wgt{r}0 + _wgt{r}1 + _wgt{r}2) * {half}",
                        f"(_wgt{r}0 - _wgt{r}1 + _wgt{r}2) * {half}", f"_wgt{r}2"]
                for j, val in enumerate(vals):
                    src.emit(f"{u}[{(r * 4 + j) * c * o} + _wgi * {o} + _wgo] = {val}")


def _scaled(name, stride):
    return name if stride == 1 else f"{name} * {stride}"


def _input_transform(src, c, hp, wp, th, tw, xp, v, rs):
    """V[e, tile, i] = (B^T d B)[e] for the 4x4 input tile d of each tile and channel (`rs`
    rows per element e)."""
    with src.block("for _wgn in range(_wgnb):"):
        with src.block(f"for _wgty in range({th}):"):
            with src.block(f"for _wgtx in range({tw}):"):
                src.emit(f"_wgrow = (_wgn * {th} + _wgty) * {tw} + _wgtx")
                src.emit(f"_wgs = ((_wgn * {hp} + 2 * _wgty) * {wp} + 2 * _wgtx) * {c}")
                with src.block(f"for _wgi in range({c}):"):
                    for r in range(4):
                        for j in range(4):
                            src.emit(f"_wgd{r}{j} = {xp}[_wgs + {(r * wp + j) * c} + _wgi]")
                    for j in range(4):          # B^T d (rows)
                        src.emit(f"_wgt0{j} = _wgd0{j} - _wgd2{j}")
                        src.emit(f"_wgt1{j} = _wgd1{j} + _wgd2{j}")
                        src.emit(f"_wgt2{j} = _wgd2{j} - _wgd1{j}")
                        src.emit(f"_wgt3{j} = _wgd1{j} - _wgd3{j}")
                    for r in range(4):          # (.) B (columns)
                        vals = [f"_wgt{r}0 - _wgt{r}2", f"_wgt{r}1 + _wgt{r}2",
                                f"_wgt{r}2 - _wgt{r}1", f"_wgt{r}1 - _wgt{r}3"]
                        for j, val in enumerate(vals):
                            src.emit(f"{v}[({(r * 4 + j) * rs} + _wgrow) * {c} + _wgi] = "
                                     f"{val}")


def _output_transform(src, o, ho, wo, th, tw, m, of, rs):
    """out[2x2 tile] = A^T m A for the 4x4 product tile m of each tile and out channel; tiles
    hanging over an odd-sized output keep their first row / column only."""
    with src.block("for _wgn in range(_wgnb):"):
        with src.block(f"for _wgty in range({th}):"):
            with src.block(f"for _wgtx in range({tw}):"):
                src.emit(f"_wgrow = (_wgn * {th} + _wgty) * {tw} + _wgtx")
                src.emit(f"_wgd = (((_wgb + _wgn) * {ho} + 2 * _wgty) * {wo} + "
                         f"2 * _wgtx) * {o}")
                if ho % 2 == 0 and wo % 2 == 0:     # no tile hangs over: no edge branch
                    _output_tile(src, o, ho, wo, m, of, False, rs)   # (less for LLVM)
                else:
                    full = f"2 * _wgty + 1 < {ho} and 2 * _wgtx + 1 < {wo}"
                    for edge in (False, True):
                        with src.block("else:" if edge else f"if {full}:"):
                            _output_tile(src, o, ho, wo, m, of, edge, rs)


def _output_tile(src, o, ho, wo, m, of, edge, rs):
    """The loop over out channels of one tile (`edge`: the tile may hang over the output)."""
    if edge:
        src.emit(f"_wgy1 = 2 * _wgty + 1 < {ho}")
        src.emit(f"_wgx1 = 2 * _wgtx + 1 < {wo}")
    with src.block(f"for _wgo in range({o}):"):
        for r in range(4):
            for j in range(4):
                src.emit(f"_wgm{r}{j} = {m}[({(r * 4 + j) * rs} + _wgrow) * {o} + _wgo]")
        for j in range(4):                      # A^T m (rows)
            src.emit(f"_wgt0{j} = _wgm0{j} + _wgm1{j} + _wgm2{j}")
            src.emit(f"_wgt1{j} = _wgm1{j} - _wgm2{j} - _wgm3{j}")
        outs = [("0", "_wgt00 + _wgt01 + _wgt02", None),
                (f"{o}", "_wgt01 - _wgt02 - _wgt03", "_wgx1"),
                (f"{wo * o}", "_wgt10 + _wgt11 + _wgt12", "_wgy1"),
                (f"{(wo + 1) * o}", "_wgt11 - _wgt12 - _wgt13", "_wgy1 and _wgx1")]
        for off, val, cond in outs:
            line = f"{of}[_wgd + {off} + _wgo] = {val}"
            if edge and cond:
                with src.block(f"if {cond}:"):
                    src.emit(line)
            else:
                src.emit(line)
