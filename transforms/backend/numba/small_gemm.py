"""A register-blocked gemm for small products whose sizes are compile-time constants.

Attention multiplies many small matrices (per batch entry and head: 64 x 64 x 32 in the char-LM
Transformer). One BLAS call per matrix spends most of its time outside the arithmetic (argument
checks, dispatch, packing buffers sized for large products): the loop of 128 OpenBLAS sgemm calls
ran at about a quarter of the core's peak. `small_gemm` is emitted as LLVM IR straight into the
generated function, with M, N, K and the transpose flags known when it is compiled:

- a tile of ``ROWS`` rows of C times up to ``VECS`` vectors of columns is held in vector
  registers for the whole contraction; per step k the tile loads its rows' slice of B (contiguous
  vectors), broadcasts one element of A per row and does ``ROWS * VECS`` fused multiply-adds;
- the columns left over after whole vectors are covered by narrower vectors (8, 4, 2, 1 lanes),
  the rows left over by a tile with fewer rows: every shape is exact, nothing is read or written
  out of bounds;
- B stored transposed (``tb=1``: rows of B^T contiguous, the columns a vector needs strided) is
  first copied into a contiguous K x N scratch on the stack; A is read one element at a time,
  so either layout of A is read in place.

The vector width and the register budget follow the CPU Numba compiles for (AVX-512: 16
float32 lanes and 32 registers; else AVX2-sized vectors and 16 registers). The contraction runs
in order k = 0, 1, ..., K-1 with one rounding per fused multiply-add, so results differ from
BLAS (whose blocking orders the sum differently) by float rounding only.
"""
from __future__ import annotations

import os

from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic

# Largest B^T scratch (elements) copied onto the stack for tb=1.
MAX_SCRATCH = 1 << 14


def small_gemm_max():
    """Batched products with at most this many multiply-adds per batch entry use `small_gemm`
    instead of one BLAS call per entry; `NUMBAX_SMALL_GEMM_MAX` overrides the default 2**18
    (0 turns the kernel off). Measured on AVX-512, one thread: 64 x 64 x 32 products ran at
    the core's peak like the BLAS loop in nn form and 2x faster in nt form (no B^T packing
    per call); at 128 x 256 x 128 (2**22) the BLAS, blocked for caches, was 1.1x faster."""
    v = os.environ.get("NUMBAX_SMALL_GEMM_MAX", "").strip()
    try:
        return int(v) if v else 1 << 18
    except ValueError:
        raise ValueError(f"NUMBAX_SMALL_GEMM_MAX must be an integer, got {v!r}") from None


def _vector_bytes():
    """Bytes in one vector register of the CPU Numba compiles for."""
    feats = config.CPU_FEATURES
    if feats is None and not config.CPU_NAME:
        from llvmlite import binding as llb
        host = llb.get_host_cpu_features()
        if host.get("avx512f"):
            return 64
        return 32 if host.get("avx") else 16
    feats = feats or ""
    if "+avx512f" in feats:
        return 64
    return 32 if "+avx" in feats else 16


VECTOR_BYTES = _vector_bytes()
# Tile of C held in registers: ROWS rows x VECS vectors (16 accumulators with 32 registers,
# 8 with 16), leaving room for the B vectors and the broadcast.
ROWS = 4
VECS = 4 if VECTOR_BYTES == 64 else 2


def supported(m, n, k, tb, itemsize):
    """Whether `small_gemm` takes this product (B^T's scratch fits the stack)."""
    return m >= 1 and n >= 1 and k >= 0 and (not tb or k * n <= MAX_SCRATCH) and \
        itemsize in (4, 8)


def _pieces(n, lanes):
    """Column pieces (offset, width) covering `n` columns: whole vectors, then 8, 4, 2, 1."""
    out, j = [], 0
    while n - j >= lanes:
        out.append((j, lanes))
        j += lanes
    w = lanes // 2
    while j < n:
        while w > n - j:
            w //= 2
        out.append((j, w))
        j += w
    return out


def _literal(t):
    return t.literal_value if isinstance(t, types.IntegerLiteral) else None


@intrinsic
def small_gemm(typingctx, ta, tb, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc):
    """Row-major ``C[m, n] = op(A) @ op(B)`` on flat float32/float64 storage (the conventions
    of `kernels.gemm` with alpha=1, beta=0); ta, tb, m, n, k must be integer literals."""
    lits = [_literal(t) for t in (ta, tb, m, n, k)]
    if any(v is None for v in lits):
        return None
    if not all(isinstance(t, types.Array) and t.ndim == 1 and t.layout in "CF"
               for t in (a, b, c)):
        return None
    dt = c.dtype
    if dt not in (types.float32, types.float64) or a.dtype != dt or b.dtype != dt:
        return None
    TA, TB, M, N, K = lits
    isz = 4 if dt == types.float32 else 8
    if not supported(M, N, K, TB, isz):
        return None
    ip = types.intp
    sig = types.none(ta, tb, m, n, k, a, ip, ip, b, ip, ip, c, ip, ip)
    lanes = VECTOR_BYTES // isz

    def codegen(context, builder, signature, args):
        (_, _, _, _, _, a_, ao, lda_, b_, bo, ldb_, c_, co, ldc_) = args
        fty = context.get_value_type(dt)
        i64 = ir.IntType(64)

        def const(v):
            return ir.Constant(i64, v)

        def data(aryty, val):
            return context.make_array(aryty)(context, builder, val).data

        pa, pb, pc = (data(signature.args[i], v) for i, v in ((5, a_), (8, b_), (11, c_)))
        pa = builder.gep(pa, [ao])
        pc = builder.gep(pc, [co])
        pb = builder.gep(pb, [bo])
        if TB:
            # B^T is stored N x K: copy it into a contiguous K x N scratch (rows of B)
            scratch = cgutils.alloca_once(builder, ir.ArrayType(fty, max(K * N, 1)))
            ps = builder.bitcast(scratch, fty.as_pointer())
            with cgutils.for_range(builder, const(N)) as jl:
                src = builder.gep(pb, [builder.mul(jl.index, ldb_)])
                with cgutils.for_range(builder, const(K)) as kl:
                    v = builder.load(builder.gep(src, [kl.index]))
                    builder.store(v, builder.gep(ps, [builder.add(
                        builder.mul(kl.index, const(N)), jl.index)]))
            pb, ldb_ = ps, const(N)

        vtys = {}
        fmas = {}

        def vty(w):
            if w not in vtys:
                vtys[w] = ir.VectorType(fty, w) if w > 1 else fty
                # llvm.fma.v<w>f<bits> (llvmlite's declare_intrinsic knows no vector types)
                name = f"llvm.fma.{'v%d' % w if w > 1 else ''}f{isz * 8}"
                fmas[w] = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(vtys[w], [vtys[w]] * 3), name)
            return vtys[w]

        def load_vec(ptr, w):
            if w == 1:
                return builder.load(ptr, align=isz)
            return builder.load(builder.bitcast(ptr, vty(w).as_pointer()), align=isz)

        def store_vec(v, ptr, w):
            if w == 1:
                builder.store(v, ptr, align=isz)
            else:
                builder.store(v, builder.bitcast(ptr, vty(w).as_pointer()), align=isz)

        def splat(x, w):
            if w == 1:
                return x
            t = vty(w)
            v = builder.insert_element(ir.Constant(t, ir.Undefined), x, ir.Constant(
                ir.IntType(32), 0))
            return builder.shuffle_vector(v, ir.Constant(t, ir.Undefined),
                                          ir.Constant(ir.VectorType(ir.IntType(32), w), [0] * w))

        def a_elem(i, kk):
            # A[i, k]: stored M x K (ta=0) or K x M (ta=1)
            idx = builder.add(builder.mul(i, lda_), kk) if not TA else \
                builder.add(builder.mul(kk, lda_), i)
            return builder.load(builder.gep(pa, [idx]))

        def tile(i0, rows, j0, pieces):
            """C[i0:i0+rows, j0 + pieces] = A[i0:i0+rows, :] @ B[:, j0 + pieces]."""
            accs = [[cgutils.alloca_once(builder, vty(w)) for (_, w) in pieces]
                    for _ in range(rows)]
            for r in range(rows):
                for p, (_, w) in enumerate(pieces):
                    builder.store(ir.Constant(vty(w), None), accs[r][p])
            with cgutils.for_range(builder, const(K)) as kl:
                kk = kl.index
                brow = builder.gep(pb, [builder.add(builder.mul(kk, ldb_), j0)])
                bv = [load_vec(builder.gep(brow, [const(off)]), w) for (off, w) in pieces]
                for r in range(rows):
                    x = a_elem(builder.add(i0, const(r)), kk)
                    for p, (_, w) in enumerate(pieces):
                        acc = builder.load(accs[r][p])
                        builder.store(builder.call(fmas[w], [splat(x, w), bv[p], acc]),
                                      accs[r][p])
            for r in range(rows):
                crow = builder.gep(pc, [builder.add(builder.mul(builder.add(i0, const(r)), ldc_),
                                                    j0)])
                for p, (off, w) in enumerate(pieces):
                    store_vec(builder.load(accs[r][p]), builder.gep(crow, [const(off)]), w)

        def row_tiles(j0, pieces):
            full = M // ROWS
            if full:
                with cgutils.for_range(builder, const(full)) as il:
                    tile(builder.mul(il.index, const(ROWS)), ROWS, j0, pieces)
            if M % ROWS:
                tile(const(full * ROWS), M % ROWS, j0, pieces)

        block = lanes * VECS
        nfull = N // block
        if nfull:
            with cgutils.for_range(builder, const(nfull)) as jl:
                row_tiles(builder.mul(jl.index, const(block)),
                          [(v * lanes, lanes) for v in range(VECS)])
        if N % block:
            row_tiles(const(nfull * block), _pieces(N % block, lanes))
        return context.get_dummy_value()
    return sig, codegen
