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

The loops are a library kernel (`kernels_conv` "winograd": sizes as run-time arguments,
compiled once per dtype and precompiled by `transforms.precompile`); this module chooses the
path and lays out its scratch. Against the per-shape generated helper it replaced (1.1-1.4 s
of compile per new shape) it measured within +-1% on the convolutions below and the small
CNN's (one process, alternated, one BLAS thread), once its HWIO kernel transform kept a
unit-stride loop of its own.

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

import math

import numpy as np

WINO_MIN_CHANNELS = 32     # shallower gemms lose more to the transforms than they gain
WINO_MAX_RATIO = 0.7       # tiles' multiply-adds over the other path's, at most
WINO_BLOCK = 1 << 18       # elements of V (16 x tiles x in) for one block of images
WINO_MAX_OUT = 64          # largest output map side handled (beyond: im2col's big gemms)


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


def lower_conv_winograd(ctx, eqn, G, x, x_off, rhs=None):
    """Emit the convolution (see the module docstring) as one call of the library kernel
    `kernels_conv` "winograd" (compiled once per dtype, sizes as arguments). `x`, `x_off`:
    the input as a flat channels-last array; `rhs`: the kernel as an N-d C-contiguous array
    when the caller has it already (else taken here).

    The kernel is a function of its own taking every array as an argument: the same loops
    inline in the generated function, on its local scratch arrays, ran 3-4x slower (an
    8x8x64 map: 3.4 ms against 0.95 ms)."""
    from . import kernels_conv
    from .rules_linalg import gemm_kernel
    from .kernels import GEMM, GEMM_SERIAL
    n, c, o = G.n, G.c, G.o
    ho, wo = G.osz
    dt = G.oa.dtype
    th, tw = -(-ho // 2), -(-wo // 2)
    tiles = th * tw
    hp, wp = 2 * th + 2, 2 * tw + 2            # padded input covering every tile
    of, o_off = ctx.out_flat(0)
    nbb = max(1, min(n, WINO_BLOCK // (16 * tiles * max(c, o))))
    rows = nbb * tiles                          # gemm rows of a full block
    u = ctx.scratch(16 * c * o, dt)
    v = ctx.scratch(16 * rows * c, dt)
    m = ctx.scratch(16 * rows * o, dt)
    xp = ctx.scratch(nbb * hp * wp * c, dt)
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
