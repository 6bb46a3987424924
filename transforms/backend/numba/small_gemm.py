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

`small_gemm_batched` runs a whole batch of such products from one call, through a worker
function emitted into the module; when the runner allows two threads (`blas_threads`) the
second half of the batch runs on a thread started for the call and joined before it returns.

The vector width and the register budget follow the CPU Numba compiles for (AVX-512: 16
float32 lanes and 32 registers; else AVX2-sized vectors and 16 registers). The contraction runs
in order k = 0, 1, ..., K-1 with one rounding per fused multiply-add (two on a CPU without
FMA), so results differ from
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
    if feats is None and config.CPU_NAME in (None, "", "host"):
        from llvmlite import binding as llb
        host = llb.get_host_cpu_features()
        if host.get("avx512f"):
            return 64
        return 32 if host.get("avx") else 16
    # a named CPU without a feature list: SSE2's width, correct everywhere (only slower)
    feats = feats or ""
    if "+avx512f" in feats:
        return 64
    return 32 if "+avx" in feats else 16


VECTOR_BYTES = _vector_bytes()
# Tile of C held in registers: ROWS rows x VECS vectors (16 accumulators with 32 registers,
# 8 with 16), leaving room for the B vectors and the broadcast.
ROWS = 4
VECS = 4 if VECTOR_BYTES == 64 else 2
MAX_ROWS = 16


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


def _i64(v):
    return ir.Constant(ir.IntType(64), v)


def _emit_gemm(builder, fty, TA, TB, M, N, K, pa, lda_, pb, ldb_, pc, ldc_):
    """Emit ``C = op(A) @ op(B)`` at `builder`: pa/pb/pc point at the first element of each
    matrix, the leading dimensions are i64 values, the rest compile-time ints."""
    isz = 4 if isinstance(fty, ir.FloatType) else 8
    lanes = VECTOR_BYTES // isz
    const = _i64
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
            # llvm.fmuladd.v<w>f<bits>: one fused multiply-add where the CPU has it, else a
            # multiply and an add (llvm.fma would become a libm call per lane there);
            # llvmlite's declare_intrinsic knows no vector types
            name = f"llvm.fmuladd.{'v%d' % w if w > 1 else ''}f{isz * 8}"
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
        # accumulators: stack slots that LLVM promotes to registers (only whole-value loads
        # and stores), zeroed before and stored to C after the contraction loop
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
        # narrow column blocks take more rows: the same number of accumulators (enough
        # independent fused multiply-adds to hide their latency), fewer B loads per FMA
        rows = max(ROWS, min(MAX_ROWS, (ROWS * VECS) // len(pieces)))
        full = M // rows
        if full:
            with cgutils.for_range(builder, const(full)) as il:
                tile(builder.mul(il.index, const(rows)), rows, j0, pieces)
        if M % rows:
            tile(const(full * rows), M % rows, j0, pieces)

    block = lanes * VECS
    nfull = N // block
    if nfull:
        with cgutils.for_range(builder, const(nfull)) as jl:
            row_tiles(builder.mul(jl.index, const(block)),
                      [(v * lanes, lanes) for v in range(VECS)])
    if N % block:
        row_tiles(const(nfull * block), _pieces(N % block, lanes))


def _flat_arrays_of(dt, *arrays):
    return all(isinstance(t, types.Array) and t.ndim == 1 and t.layout in "CF" and
               t.dtype == dt for t in arrays) and dt in (types.float32, types.float64)


@intrinsic
def small_gemm(typingctx, ta, tb, m, n, k, a, a_off, lda, b, b_off, ldb, c, c_off, ldc):
    """Row-major ``C[m, n] = op(A) @ op(B)`` on flat float32/float64 storage (the conventions
    of `kernels.gemm` with alpha=1, beta=0); ta, tb, m, n, k must be integer literals."""
    lits = [_literal(t) for t in (ta, tb, m, n, k)]
    if any(v is None for v in lits):
        return None
    if not isinstance(c, types.Array) or not _flat_arrays_of(c.dtype, a, b, c):
        return None
    dt = c.dtype
    TA, TB, M, N, K = lits
    if not supported(M, N, K, TB, dt.bitwidth // 8):
        return None
    ip = types.intp
    sig = types.none(ta, tb, m, n, k, a, ip, ip, b, ip, ip, c, ip, ip)

    def codegen(context, builder, signature, args):
        (_, _, _, _, _, a_, ao, lda_, b_, bo, ldb_, c_, co, ldc_) = args
        ptrs = [builder.gep(context.make_array(signature.args[i])(context, builder, v).data,
                            [off]) for i, v, off in ((5, a_, ao), (8, b_, bo), (11, c_, co))]
        _emit_gemm(builder, context.get_value_type(dt), TA, TB, M, N, K,
                   ptrs[0], lda_, ptrs[1], ldb_, ptrs[2], ldc_)
        return context.get_dummy_value()
    return sig, codegen


def split_min():
    """Batched products with at least this many multiply-adds in all run as one
    `small_gemm_batched` call that splits the batch over two threads when the runner allows
    two (`blas_threads`); None (the default): never, each entry is a kernel call in a loop.
    `NUMBAX_SMALL_GEMM_SPLIT` sets it (e.g. 2097152: starting and joining a thread costs some
    tens of microseconds, about 2**20 multiply-adds of this kernel).

    Off by default because it lost on the idle 2-core machine it was measured on: the
    Transformer benchmark's step took 70-72 ms with the split against 58-60 ms without
    (the second thread competes with OpenBLAS's own threads, which keep spinning for a while
    after each threaded product of the same step)."""
    v = os.environ.get("NUMBAX_SMALL_GEMM_SPLIT", "").strip()
    if not v or v == "0":
        return None
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"NUMBAX_SMALL_GEMM_SPLIT must be an integer, got {v!r}") from None


def batched_spec(ta, tb, m, n, k, lda, ldb, ldc, bshape, astrides, bstrides, cstrides):
    """The literal string `small_gemm_batched` reads its static description from: transpose
    flags, sizes, leading dimensions, then the batch shape and each operand's stride per
    batch dim (elements)."""
    head = " ".join(str(int(v)) for v in (ta, tb, m, n, k, lda, ldb, ldc))
    rest = [" ".join(str(int(v)) for v in vs) for vs in (bshape, astrides, bstrides, cstrides)]
    return "|".join([head] + rest)


def _parse_spec(spec):
    parts = spec.split("|")
    ta, tb, m, n, k, lda, ldb, ldc = (int(v) for v in parts[0].split())
    bshape, ast, bst, cst = ([int(v) for v in p.split()] for p in parts[1:])
    return ta, tb, m, n, k, lda, ldb, ldc, bshape, ast, bst, cst


def _worker(module, fty, spec):
    """The function ``i8* worker(i8* job)`` running the batch entries [lo, hi) of the job
    ``{A*, B*, C*, lo, hi}`` (internal to `module`; one per spec and dtype)."""
    import hashlib
    ta, tb, m, n, k, lda, ldb, ldc, bshape, ast, bst, cst = _parse_spec(spec)
    i8p, i64 = ir.IntType(8).as_pointer(), ir.IntType(64)
    fp = fty.as_pointer()
    job = ir.LiteralStructType([fp, fp, fp, i64, i64])
    tag = hashlib.sha1(f"{spec}/{fty}".encode()).hexdigest()[:16]
    name = f"numbax_small_gemm_worker_{tag}"
    fn = module.globals.get(name)
    if fn is not None:
        return fn, job
    fn = ir.Function(module, ir.FunctionType(i8p, [i8p]), name=name)
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    st = b.bitcast(fn.args[0], job.as_pointer())
    field = [b.load(b.gep(st, [ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), i)]))
             for i in range(5)]
    pa, pb, pc, lo, hi = field
    with cgutils.for_range_slice(b, lo, hi, _i64(1), inc=True) as (idx, _):
        offs = [_i64(0)] * 3
        inner = 1
        for n_t in bshape:
            inner *= n_t
        for t, n_t in enumerate(bshape):
            inner //= n_t
            if n_t == 1:
                continue
            # index in batch dim t (C order, as the output's leading dims)
            it = b.urem(b.udiv(idx, _i64(inner)), _i64(n_t)) if inner > 1 else \
                b.urem(idx, _i64(n_t))
            offs = [b.add(o, b.mul(it, _i64(s[t]))) for o, s in zip(offs, (ast, bst, cst))]
        _emit_gemm(b, fty, ta, tb, m, n, k, b.gep(pa, [offs[0]]), _i64(lda),
                   b.gep(pb, [offs[1]]), _i64(ldb), b.gep(pc, [offs[2]]), _i64(ldc))
    b.ret(ir.Constant(i8p, None))
    return fn, job


@intrinsic
def small_gemm_batched(typingctx, spec, nthreads, a, a_off, b, b_off, c, c_off):
    """Every batch entry of a batched product (`small_gemm` per entry; `spec` a literal
    string from `batched_spec`, offsets of the first entry in the flat arrays a, b, c). With
    `nthreads` >= 2 the second half of the batch runs on a thread started for this call
    (pthread_create, joined before returning: no pool to survive a fork, and concurrent
    callers each get their own); if the thread cannot be started, the caller runs it."""
    if not isinstance(spec, types.StringLiteral) or not isinstance(nthreads, types.Integer):
        return None
    if not isinstance(c, types.Array) or not _flat_arrays_of(c.dtype, a, b, c):
        return None
    dt = c.dtype
    ta, tb, m, n, k, _, _, _, bshape, _, _, _ = _parse_spec(spec.literal_value)
    if not supported(m, n, k, tb, dt.bitwidth // 8):
        return None
    nb = 1
    for n_t in bshape:
        nb *= n_t
    ip = types.intp
    sig = types.none(spec, nthreads, a, ip, b, ip, c, ip)

    def codegen(context, builder, signature, args):
        (_, nt, a_, ao, b_, bo, c_, co) = args
        fty = context.get_value_type(dt)
        worker, job = _worker(builder.module, fty, spec.literal_value)
        ptrs = [builder.gep(context.make_array(signature.args[i])(context, builder, v).data,
                            [off]) for i, v, off in ((2, a_, ao), (4, b_, bo), (6, c_, co))]
        i8p, i32, i64 = ir.IntType(8).as_pointer(), ir.IntType(32), ir.IntType(64)
        nt = builder.sext(nt, i64) if nt.type.width < 64 else nt
        threaded = builder.and_(builder.icmp_signed(">=", nt, _i64(2)),
                                ir.Constant(ir.IntType(1), int(nb >= 2)))
        half = _i64(nb // 2)

        def make_job(lo, hi):
            slot = cgutils.alloca_once(builder, job)
            v = ir.Constant(job, ir.Undefined)
            for i, x in enumerate(ptrs + [lo, hi]):
                v = builder.insert_value(v, x, i)
            builder.store(v, slot)
            return builder.bitcast(slot, i8p)
        first = make_job(_i64(0), builder.select(threaded, half, _i64(nb)))
        second = make_job(half, _i64(nb))
        tid = cgutils.alloca_once_value(builder, _i64(0))
        started = cgutils.alloca_once_value(builder, ir.Constant(ir.IntType(1), 0))
        create = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i32, [i64.as_pointer(), i8p, worker.type, i8p]),
            "pthread_create")
        join = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i32, [i64, i8p.as_pointer()]), "pthread_join")
        with builder.if_then(threaded):
            rc = builder.call(create, [tid, ir.Constant(i8p, None), worker, second])
            builder.store(builder.icmp_signed("==", rc, ir.Constant(i32, 0)), started)
        builder.call(worker, [first])
        with builder.if_then(threaded):
            with builder.if_else(builder.load(started)) as (then, otherwise):
                with then:
                    builder.call(join, [builder.load(tid), ir.Constant(i8p.as_pointer(), None)])
                with otherwise:
                    builder.call(worker, [second])
        return context.get_dummy_value()
    return sig, codegen
