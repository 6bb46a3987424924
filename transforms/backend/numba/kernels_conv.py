"""Convolution kernels compiled once per dtype, with every size a run-time argument, and
called from generated code through a symbol (no linking, no re-optimisation).

A convolution helper generated per shape (sizes as constants) compiled in 1.1-1.4 s, once
per distinct shape: every new batch size, map size or channel count compiled it again. The
kernels here take the sizes as arguments, so one compiled copy per dtype serves every shape;
`python -m transforms.precompile` compiles them into the disk cache ahead of use.

Calling convention. Numba links a compiled callee's LLVM module into its caller and runs
the caller's module optimisation (and machine-code emission) over it again, so a large
kernel called directly would still cost its optimisation in every program that calls it.
These kernels are instead compiled with a C entry point (`llvm_cfunc_wrapper_name`) taking
raw pointers and int64 sizes, whose address is registered with LLVM's symbol table under a
fixed name (`numbax_conv_<kernel>_<dtype>`); generated code declares that symbol and calls
it (the `caller` intrinsic): the caller holds a declaration only. The symbol must be
registered before any machine code referring to it is loaded, including code from the disk
cache: generated code imports the caller as ``kernels.conv_<kernel>_<dtype>_<version>``
(`kernels.__getattr__` -> `resolve`), and that import compiles or loads the kernel and
registers its address first. `<version>` is a hash of this file, so a generated helper
module (keyed by its own text) can never call an entry point of another version.

Unlike `calls.py` (Numba's own calling convention, for helper modules and the gemm kernels
called from non-parallel main functions), the C entry point works from any caller: parallel
main functions and split or outlined helpers too.

Each kernel is the loop nest the generated code had (the same operations in the same
order, identical results), its sizes run-time values. Timed alternately against the
per-shape code in one process every kernel was within +-1.5%; called repeatedly in a process
of its own each was slower (the CNN step 86 against 70 ms of CPU with the Winograd kernel,
window rows 4.5 ms more; a 2x2 max-pool of 64x24x24x64 2.7 ms against 0.46; the ResNet
stem's im2col 2.59 against 1.88). The cause is not found; it is the kernels' own code, not
the symbol call: the pooling kernel called as a plain Numba function from Python took 3.4
ms too, and its machine code inlines `maxf`. So every kernel is opt-in (`conv_winograd.WINOGRAD_KERNEL`,
`rules_conv.WINDOW_ROWS_KERNEL`, `IM2COL_KERNEL`, `POOL_KERNEL`), and
`transforms.precompile` compiles only those switched on. Compiling them costs once per machine and dtype
(CPU-seconds on the loaded 2-core machine, the gemm kernels already compiled): Winograd
3.0, window rows 1.1, im2col 1.2, pooling 1.5 -- more than one per-shape helper each (their
loops are vectorised with run-time trip counts and alias checks; inlining the parts into the
entry point by Numba instead of linking them did not make it cheaper), paid back by the
second shape; `transforms.precompile` compiles them ahead.
"""
from __future__ import annotations

import hashlib

import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import kernels
from .cache import njit as _cached_njit

_jit = _cached_njit(cache=True, nogil=True, error_model="numpy")

with open(__file__, "rb") as _f:
    VERSION = hashlib.sha1(_f.read()).hexdigest()[:8]

_GEMMS = (getattr(kernels, kernels.GEMM_SERIAL), getattr(kernels, kernels.GEMM_AUTO),
          kernels.gemm)
_gemm_serial, _gemm_auto, _gemm_threaded = _GEMMS


@_jit
def _gemm(mode, m, n, k, a, a_off, b, b_off, c, c_off, one, zero):
    """C = A @ B of row-major, densely stored A (m x k), B (k x n), C (m x n); `mode` picks
    the gemm kernel as `rules_linalg.gemm_kernel` does (0 serial, 1 auto, 2 threaded)."""
    if mode == 0:
        _gemm_serial(0, 0, m, n, k, one, a, a_off, k, b, b_off, n, zero, c, c_off, n)
    elif mode == 1:
        _gemm_auto(0, 0, m, n, k, one, a, a_off, k, b, b_off, n, zero, c, c_off, n)
    else:
        _gemm_threaded(0, 0, m, n, k, one, a, a_off, k, b, b_off, n, zero, c, c_off, n)


# ---------------------------------------------------------------------------------------------
# Winograd F(2x2, 3x3) (see conv_winograd.py for the algorithm, the layout and when it is used)
# ---------------------------------------------------------------------------------------------

@_jit
def _wino_kernel_pair(w, b, skh, skw, u, d, co, half):
    """U[e, d] for the 3x3 kernel g[kh, kw] = w[b + kh * skh + kw * skw] of one pair."""
    g00, g01, g02 = w[b], w[b + skw], w[b + 2 * skw]
    b1 = b + skh
    g10, g11, g12 = w[b1], w[b1 + skw], w[b1 + 2 * skw]
    b2 = b + 2 * skh
    g20, g21, g22 = w[b2], w[b2 + skw], w[b2 + 2 * skw]
    # t = G g: 4 rows of 3
    t00, t01, t02 = g00, g01, g02
    t10 = (g00 + g10 + g20) * half
    t11 = (g01 + g11 + g21) * half
    t12 = (g02 + g12 + g22) * half
    t20 = (g00 - g10 + g20) * half
    t21 = (g01 - g11 + g21) * half
    t22 = (g02 - g12 + g22) * half
    t30, t31, t32 = g20, g21, g22
    # U = t G^T
    u[d] = t00
    u[co + d] = (t00 + t01 + t02) * half
    u[2 * co + d] = (t00 - t01 + t02) * half
    u[3 * co + d] = t02
    u[4 * co + d] = t10
    u[5 * co + d] = (t10 + t11 + t12) * half
    u[6 * co + d] = (t10 - t11 + t12) * half
    u[7 * co + d] = t12
    u[8 * co + d] = t20
    u[9 * co + d] = (t20 + t21 + t22) * half
    u[10 * co + d] = (t20 - t21 + t22) * half
    u[11 * co + d] = t22
    u[12 * co + d] = t30
    u[13 * co + d] = (t30 + t31 + t32) * half
    u[14 * co + d] = (t30 - t31 + t32) * half
    u[15 * co + d] = t32


@_jit
def _wino_kernel_transform(w, skh, skw, si, so, c, o, u, half):
    """U[e, i, o] = (G g G^T)[e] for the 3x3 kernel g of each (in i, out o) pair, g[kh, kw]
    at w[kh * skh + kw * skw + i * si + o * so]."""
    co = c * o
    if so == 1:         # (HWIO: a unit-stride loop, which LLVM vectorises)
        for i in range(c):
            for oo in range(o):
                _wino_kernel_pair(w, i * si + oo, skh, skw, u, i * o + oo, co, half)
    else:
        for i in range(c):
            for oo in range(o):
                _wino_kernel_pair(w, i * si + oo * so, skh, skw, u, i * o + oo, co, half)


@_jit
def _wino_input_transform(xp, v, nb, th, tw, hp, wp, c, rows):
    """V[e, tile, i] = (B^T d B)[e] for the 4x4 input tile d of each tile and channel."""
    for nn in range(nb):
        for ty in range(th):
            for tx in range(tw):
                row = (nn * th + ty) * tw + tx
                s0 = ((nn * hp + 2 * ty) * wp + 2 * tx) * c
                s1, s2, s3 = s0 + wp * c, s0 + 2 * wp * c, s0 + 3 * wp * c
                rc = rows * c
                d = row * c
                for i in range(c):
                    d00, d01, d02, d03 = xp[s0 + i], xp[s0 + c + i], xp[s0 + 2 * c + i], \
                        xp[s0 + 3 * c + i]
                    d10, d11, d12, d13 = xp[s1 + i], xp[s1 + c + i], xp[s1 + 2 * c + i], \
                        xp[s1 + 3 * c + i]
                    d20, d21, d22, d23 = xp[s2 + i], xp[s2 + c + i], xp[s2 + 2 * c + i], \
                        xp[s2 + 3 * c + i]
                    d30, d31, d32, d33 = xp[s3 + i], xp[s3 + c + i], xp[s3 + 2 * c + i], \
                        xp[s3 + 3 * c + i]
                    # B^T d (rows)
                    t00, t01, t02, t03 = d00 - d20, d01 - d21, d02 - d22, d03 - d23
                    t10, t11, t12, t13 = d10 + d20, d11 + d21, d12 + d22, d13 + d23
                    t20, t21, t22, t23 = d20 - d10, d21 - d11, d22 - d12, d23 - d13
                    t30, t31, t32, t33 = d10 - d30, d11 - d31, d12 - d32, d13 - d33
                    # (.) B (columns)
                    q = d + i
                    v[q] = t00 - t02
                    v[rc + q] = t01 + t02
                    v[2 * rc + q] = t02 - t01
                    v[3 * rc + q] = t01 - t03
                    v[4 * rc + q] = t10 - t12
                    v[5 * rc + q] = t11 + t12
                    v[6 * rc + q] = t12 - t11
                    v[7 * rc + q] = t11 - t13
                    v[8 * rc + q] = t20 - t22
                    v[9 * rc + q] = t21 + t22
                    v[10 * rc + q] = t22 - t21
                    v[11 * rc + q] = t21 - t23
                    v[12 * rc + q] = t30 - t32
                    v[13 * rc + q] = t31 + t32
                    v[14 * rc + q] = t32 - t31
                    v[15 * rc + q] = t31 - t33


@_jit
def _wino_output_transform(m, out, b0, nb, th, tw, ho, wo, o, rows):
    """out[2x2 tile] = A^T m A for the 4x4 product tile m of each tile and out channel; tiles
    hanging over an odd-sized output keep their first row / column only."""
    ro = rows * o
    for nn in range(nb):
        for ty in range(th):
            for tx in range(tw):
                row = (nn * th + ty) * tw + tx
                dst = (((b0 + nn) * ho + 2 * ty) * wo + 2 * tx) * o
                y1 = 2 * ty + 1 < ho
                x1 = 2 * tx + 1 < wo
                s = row * o
                for oo in range(o):
                    q = s + oo
                    m00, m01, m02, m03 = m[q], m[ro + q], m[2 * ro + q], m[3 * ro + q]
                    m10, m11, m12, m13 = m[4 * ro + q], m[5 * ro + q], m[6 * ro + q], \
                        m[7 * ro + q]
                    m20, m21, m22, m23 = m[8 * ro + q], m[9 * ro + q], m[10 * ro + q], \
                        m[11 * ro + q]
                    m30, m31, m32, m33 = m[12 * ro + q], m[13 * ro + q], m[14 * ro + q], \
                        m[15 * ro + q]
                    # A^T m (rows)
                    t00, t01 = m00 + m10 + m20, m01 + m11 + m21
                    t02, t03 = m02 + m12 + m22, m03 + m13 + m23
                    t10, t11 = m10 - m20 - m30, m11 - m21 - m31
                    t12, t13 = m12 - m22 - m32, m13 - m23 - m33
                    out[dst + oo] = t00 + t01 + t02
                    if x1:
                        out[dst + o + oo] = t01 - t02 - t03
                    if y1:
                        out[dst + wo * o + oo] = t10 + t11 + t12
                        if x1:
                            out[dst + (wo + 1) * o + oo] = t11 - t12 - t13


@_jit
def _winograd(x, w, out, u, v, m, xp, n, ph, pw, plh, plw, ho, wo, c, o, nbb, skh, skw, si,
              so, mode, half):
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    tiles = th * tw
    hp, wp = 2 * th + 2, 2 * tw + 2
    rows = nbb * tiles
    one, zero = half + half, half - half
    _wino_kernel_transform(w, skh, skw, si, so, c, o, u, half)
    # the rows/columns of the padded buffer that hold input data
    y_lo, y_hi = max(0, plh), min(hp, ph + plh)
    x_lo, x_hi = max(0, plw), min(wp, pw + plw)
    run = max(0, x_hi - x_lo) * c
    for b0 in range(0, n, nbb):
        nb = min(nbb, n - b0)
        nrows = nb * tiles
        for i in range(nb * hp * wp * c):          # zero-padded copy of the block's images
            xp[i] = zero
        for nn in range(nb):
            for y in range(y_lo, y_hi):
                d = ((nn * hp + y) * wp + x_lo) * c
                s = (((b0 + nn) * ph + y - plh) * pw + x_lo - plw) * c
                for i in range(run):
                    xp[d + i] = x[s + i]
        _wino_input_transform(xp, v, nb, th, tw, hp, wp, c, nrows)
        for e in range(16):                        # one gemm per tile element
            _gemm(mode, nrows, o, c, v, e * nrows * c, u, e * c * o, m, e * nrows * o, one,
                  zero)
        _wino_output_transform(m, out, b0, nb, th, tw, ho, wo, o, nrows)


def _winograd_entry_py(x, w, out, u, v, m, xp, n, ph, pw, plh, plw, ho, wo, c, o, nbb,
                       skh, skw, si, so, wsize, mode, half):
    th, tw = (ho + 1) // 2, (wo + 1) // 2
    rows = nbb * th * tw
    _winograd(carray(x, n * ph * pw * c), carray(w, wsize), carray(out, n * ho * wo * o),
              carray(u, 16 * c * o), carray(v, 16 * rows * c), carray(m, 16 * rows * o),
              carray(xp, nbb * (2 * th + 2) * (2 * tw + 2) * c), n, ph, pw, plh, plw, ho, wo,
              c, o, nbb, skh, skw, si, so, mode, half)


# ---------------------------------------------------------------------------------------------
# Window rows: the kernel gradient of a 2-D convolution (see rules_conv._conv_window_rows)
# ---------------------------------------------------------------------------------------------

@_jit
def _pos(o, k, stride, rd, pad, ld, size):
    """(input index, valid) of output position `o` and window offset `k` along one axis."""
    p = o * stride + k * rd - pad
    if ld == 1:
        return p, p >= 0 and p < size
    q = p // ld
    return q, p >= 0 and p % ld == 0 and q < size


@_jit
def _window_rows(x, bm, at, cm, nb, c, o, k0n, k1n, o0n, o1n, p0n, p1n, s0, s1, rd0, rd1,
                 pad0, pad1, ld0, ld1, bstr, cstr, hstr, wstr, rblk, mode, half):
    one, zero = half + half, half - half
    kp = k0n * k1n
    cols = o0n * o1n * nb
    rows = c * kp
    for r0 in range(0, rows, rblk):
        rn = min(rblk, rows - r0)
        for rr in range(rn):
            r = r0 + rr
            cc = r // kp
            k0 = (r // k1n) % k0n
            k1 = r % k1n
            for o0 in range(o0n):
                q0, ok0 = _pos(o0, k0, s0, rd0, pad0, ld0, p0n)
                for o1 in range(o1n):
                    q1, ok1 = _pos(o1, k1, s1, rd1, pad1, ld1, p1n)
                    base = rr * cols + (o0 * o1n + o1) * nb
                    if ok0 and ok1:
                        src = cc * cstr + q0 * hstr + q1 * wstr
                        if bstr == 1:
                            for b in range(nb):
                                at[base + b] = x[src + b]
                        else:
                            for b in range(nb):
                                at[base + b] = x[src + b * bstr]
                    else:
                        for b in range(nb):
                            at[base + b] = zero
        beta = zero if r0 == 0 else one
        if mode == 0:
            _gemm_serial(1, 0, cols, o, rn, one, at, 0, cols, bm, r0 * o, o, beta, cm, 0, o)
        elif mode == 1:
            _gemm_auto(1, 0, cols, o, rn, one, at, 0, cols, bm, r0 * o, o, beta, cm, 0, o)
        else:
            _gemm_threaded(1, 0, cols, o, rn, one, at, 0, cols, bm, r0 * o, o, beta, cm, 0, o)


def _window_rows_entry_py(x, bm, at, cm, nb, c, o, k0n, k1n, o0n, o1n, p0n, p1n, s0, s1,
                         rd0, rd1, pad0, pad1, ld0, ld1, bstr, cstr, hstr, wstr, xsize, rblk,
                         mode, half):
    kp, cols = k0n * k1n, o0n * o1n * nb
    _window_rows(carray(x, xsize), carray(bm, c * kp * o), carray(at, rblk * cols),
                 carray(cm, cols * o), nb, c, o, k0n, k1n, o0n, o1n, p0n, p1n, s0, s1, rd0,
                 rd1, pad0, pad1, ld0, ld1, bstr, cstr, hstr, wstr, rblk, mode, half)


# ---------------------------------------------------------------------------------------------
# im2col: a 2-D convolution of a channels-last input as blocked patch matrices and gemms (see
# rules_conv: one group, channels not blocked, no dilation along the last spatial axis)
# ---------------------------------------------------------------------------------------------

@_jit
def _im2col(x, wm, pm, out, n, ph, pw, c, k0n, k1n, ho, wo, o, s0, s1, rd0, pad0, pad1, ld0,
            nbb, mode, half):
    one, zero = half + half, half - half
    run = k1n * c                   # (last window axis x channels): contiguous in both
    cols = k0n * run
    op = ho * wo
    for b0 in range(0, n, nbb):
        nb = min(nbb, n - b0)
        for nn in range(nb):
            img = b0 + nn
            for o0 in range(ho):
                for o1 in range(wo):
                    row = (nn * ho + o0) * wo + o1
                    p = o1 * s1 - pad1
                    for k0 in range(k0n):
                        q0, ok0 = _pos(o0, k0, s0, rd0, pad0, ld0, ph)
                        base = row * cols + k0 * run
                        if ok0:
                            src = ((img * ph + q0) * pw + p) * c
                            if p >= 0 and p + k1n <= pw:
                                for i in range(run):
                                    pm[base + i] = x[src + i]
                            else:           # the run hangs over the border: offset by offset
                                for kl in range(k1n):
                                    if p + kl >= 0 and p + kl < pw:
                                        for i in range(c):
                                            pm[base + kl * c + i] = x[src + kl * c + i]
                                    else:
                                        for i in range(c):
                                            pm[base + kl * c + i] = zero
                        else:
                            for i in range(run):
                                pm[base + i] = zero
        _gemm(mode, nb * op, o, cols, pm, 0, wm, 0, out, b0 * op * o, one, zero)


def _im2col_entry_py(x, wm, pm, out, n, ph, pw, c, k0n, k1n, ho, wo, o, s0, s1, rd0, pad0,
                     pad1, ld0, nbb, mode, half):
    cols = k0n * k1n * c
    _im2col(carray(x, n * ph * pw * c), carray(wm, cols * o), carray(pm, nbb * ho * wo * cols),
            carray(out, n * ho * wo * o), n, ph, pw, c, k0n, k1n, ho, wo, o, s0, s1, rd0, pad0,
            pad1, ld0, nbb, mode, half)


# ---------------------------------------------------------------------------------------------
# Pooling: reduce_window max / min / sum over the leading three axes of a 4-D array whose last
# axis is untouched (channels-last pooling), each output row a vector loop over that axis
# ---------------------------------------------------------------------------------------------

@_jit
def _pool(x, out, d0, d1, d2, o0n, o1n, o2n, w0, w1, w2, s0, s1, s2, pl0, pl1, pl2, lanes,
          kind, half):
    init = half - half
    if kind == 0:
        init = -np.inf
    elif kind == 1:
        init = np.inf
    for a in range(o0n):
        for b in range(o1n):
            for cc in range(o2n):
                dst = ((a * o1n + b) * o2n + cc) * lanes
                for lane in range(lanes):
                    out[dst + lane] = init
                for k0 in range(w0):
                    p0 = a * s0 + k0 - pl0
                    if p0 < 0 or p0 >= d0:
                        continue
                    for k1 in range(w1):
                        p1 = b * s1 + k1 - pl1
                        if p1 < 0 or p1 >= d1:
                            continue
                        for k2 in range(w2):
                            p2 = cc * s2 + k2 - pl2
                            if p2 < 0 or p2 >= d2:
                                continue
                            src = ((p0 * d1 + p1) * d2 + p2) * lanes
                            if kind == 0:
                                for lane in range(lanes):
                                    out[dst + lane] = kernels.maxf(out[dst + lane],
                                                                   x[src + lane])
                            elif kind == 1:
                                for lane in range(lanes):
                                    out[dst + lane] = kernels.minf(out[dst + lane],
                                                                   x[src + lane])
                            else:
                                for lane in range(lanes):
                                    out[dst + lane] = out[dst + lane] + x[src + lane]


def _pool_entry_py(x, out, d0, d1, d2, o0n, o1n, o2n, w0, w1, w2, s0, s1, s2, pl0, pl1, pl2,
                   lanes, kind, half):
    _pool(carray(x, d0 * d1 * d2 * lanes), carray(out, o0n * o1n * o2n * lanes), d0, d1, d2,
          o0n, o1n, o2n, w0, w1, w2, s0, s1, s2, pl0, pl1, pl2, lanes, kind, half)


# ---------------------------------------------------------------------------------------------
# Entry points, symbols and the generated code's callers
# ---------------------------------------------------------------------------------------------

# kernel -> (C entry's Python function, number of pointer arguments, number of int64 sizes)
_KERNELS = {
    "winograd": (_winograd_entry_py, 7, 16),
    "window_rows": (_window_rows_entry_py, 4, 24),
    "im2col": (_im2col_entry_py, 4, 17),
    "pool": (_pool_entry_py, 2, 17),
}
DTYPES = {"f32": types.float32, "f64": types.float64}

_dispatchers = {}     # kernel -> its entry point's dispatcher (one compiled copy per dtype)
_registered = set()   # (kernel, dtype short name) whose symbol is registered
_callers = {}         # (kernel, dtype short name) -> caller intrinsic


def symbol(kernel, dt):
    """The LLVM symbol of `kernel`'s C entry point for dtype short name `dt`."""
    return f"numbax_conv_{kernel}_{dt}"


def _signature(kernel, dt):
    _, nptr, nint = _KERNELS[kernel]
    ft = DTYPES[dt]
    return types.none(*([types.CPointer(ft)] * nptr + [types.int64] * nint + [ft]))


def dispatchers():
    """{qualified name: dispatcher} of every kernel's entry point (compiled or not; for
    `transforms.precompile`)."""
    for k, (pyf, _, _) in _KERNELS.items():
        if k not in _dispatchers:
            _dispatchers[k] = _cached_njit(cache=True, nogil=True, error_model="numpy")(pyf)
    return {f"kernels_conv.{k}": _dispatchers[k] for k in _KERNELS}


def entry(kernel, dt):
    """Compile (or load from the disk cache) the entry point of `kernel` for dtype short name
    `dt` and register its address as `symbol(kernel, dt)`."""
    if (kernel, dt) in _registered:
        return
    import llvmlite.binding as llb
    d = dispatchers()[f"kernels_conv.{kernel}"]
    sig = _signature(kernel, dt)
    d.compile(sig.args)
    cres = d.overloads[sig.args]
    llb.add_symbol(symbol(kernel, dt),
                   cres.library.get_pointer_to_function(cres.fndesc.llvm_cfunc_wrapper_name))
    _registered.add((kernel, dt))


def name(kernel, dtype):
    """The kernels-module name generated code imports `kernel`'s caller for `dtype` as."""
    dt = {"float32": "f32", "float64": "f64"}[np.dtype(dtype).name]
    return f"conv_{kernel}_{dt}_{VERSION}"


def resolve(attr):
    """The caller intrinsic for kernels-module attribute `attr` (a `name(...)`), its entry
    point compiled or loaded and registered; None if `attr` is not such a name."""
    parts = attr[len("conv_"):].rsplit("_", 2) if attr.startswith("conv_") else ()
    if len(parts) != 3 or parts[0] not in _KERNELS or parts[1] not in DTYPES or \
            parts[2] != VERSION:
        return None
    kernel, dt = parts[0], parts[1]
    key = (kernel, dt)
    c = _callers.get(key)
    if c is None:
        entry(kernel, dt)
        c = _callers[key] = _make_caller(kernel, dt)
    return c


def enabled():
    """The kernels generated code calls now (each has a switch: see the module docstring)."""
    from . import conv_winograd, rules_conv
    on = {"winograd": conv_winograd.WINOGRAD_KERNEL,
          "window_rows": rules_conv.WINDOW_ROWS_KERNEL,
          "im2col": rules_conv.IM2COL_KERNEL, "pool": rules_conv.POOL_KERNEL}
    return [k for k in _KERNELS if on[k]]


def compile_all(dtype):
    """Compile (or load) the entry points switched on (`enabled`) for float `dtype`; returns
    their names."""
    return [resolve(name(k, dtype)) and name(k, dtype) for k in enabled()]


def _make_caller(kernel, dt):
    """An intrinsic ``f(a0, off0, a1, off1, ..., (size, ...))`` calling the entry point:
    each array's data from its element offset, then the int64 sizes; the dtype's 0.5 last."""
    _, nptr, nint = _KERNELS[kernel]
    ft = DTYPES[dt]
    sym = symbol(kernel, dt)

    def typer(args):
        arrs, offs, sizes = args[0:-1:2], args[1:-1:2], args[-1]
        if not all(isinstance(a, types.Array) and a.dtype == ft and a.layout == "C"
                   for a in arrs):
            return None
        if not all(isinstance(t, types.Integer) for t in offs):
            return None
        if not isinstance(sizes, types.BaseTuple) or len(sizes) != nint or \
                not all(isinstance(t, types.Integer) for t in sizes):
            return None

        def codegen(context, builder, signature, llargs):
            fty = context.get_value_type(ft)
            i64 = ir.IntType(64)
            fnty = ir.FunctionType(ir.VoidType(), [fty.as_pointer()] * nptr + [i64] * nint +
                                   [fty])
            fn = cgutils.get_or_insert_function(builder.module, fnty, sym)
            vals = []
            for j in range(nptr):
                aty, oty = signature.args[2 * j], signature.args[2 * j + 1]
                data = context.make_array(aty)(context, builder, llargs[2 * j]).data
                off = context.cast(builder, llargs[2 * j + 1], oty, types.int64)
                vals.append(builder.gep(data, [off]))
            tup = cgutils.unpack_tuple(builder, llargs[-1], nint)
            for t, v in zip(signature.args[-1], tup):
                vals.append(context.cast(builder, v, t, types.int64))
            vals.append(ir.Constant(fty, 0.5))
            builder.call(fn, vals)
            return context.get_dummy_value()
        return types.none(*args), codegen
    # (an intrinsic needs named parameters: Numba cannot lower a call through *args)
    params = ", ".join([f"a{j}, o{j}" for j in range(nptr)] + ["sizes"])
    ns = {"typer": typer}
    exec(f"def conv_{kernel}_{dt}(typingctx, {params}):\n"
         f"    return typer(({params},))\n", ns)
    return intrinsic(ns[f"conv_{kernel}_{dt}"])


# (the C entry's sizes: the kernel's size is the element just past its last one)
def wino_kernel_size(c, o, skh, skw, si, so):
    """Elements of the kernel array the Winograd entry reads (strides all non-negative)."""
    return 2 * skh + 2 * skw + (c - 1) * si + (o - 1) * so + 1

