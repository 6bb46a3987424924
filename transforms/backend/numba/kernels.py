"""Scalar kernels called from generated code: vectorisable float32/float64 transcendentals,
NaN-aware min/max, C-style integer division, and a BLAS ``gemm`` intrinsic.

Why our own transcendentals: the LLVM shipped with llvmlite has no vector math library, so
``math.exp`` in a Numba loop is a scalar libm call and the loop cannot be vectorised. The
kernels below are written with only arithmetic, comparisons/selects and bit casts, so LLVM
inlines them into the generated loops and vectorises those loops.

Method (Cody & Waite / Cephes / fdlibm style): reduce the argument exactly (``x = k*ln2 + r``,
``x = m * 2**e``, ``x = k*pi/2 + r``), approximate on the small interval with a polynomial, and
rebuild the result (``2**k`` is made by writing the exponent bits and bit casting; the scale is
applied in two halves so that overflow gives inf and underflow gives correctly rounded
subnormals). Special values (nan, +-inf, +-0, subnormals) are handled by selects at the end.
Accuracy is tested against float64 NumPy in ``tests/test_jit.py`` (float32 kernels within a few
ulp; float64 kernels within a few ulp of the double result).

``sin_f32``/``cos_f32`` reduce in double precision and are exact for ``|x| < SINCOS_LIMIT_F32``;
a generated loop that uses them also counts the elements beyond that limit
(``sincos_big_f32``) and, only if there are any, runs again with the exact libm version.

Every function here is compiled on first use by the calling generated function and is part of
that function's cached machine code; a version string derived from this file's source is
written into every generated module, so editing this file invalidates old cache entries.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .cache import njit as _cached_njit

# cache=True through the numbax cache directory (never Numba's default locations, which may
# be unwritable: a read-only install and an unwritable HOME made every jit fail)
_jit = _cached_njit(cache=True, nogil=True, error_model="numpy")

# ---------------------------------------------------------------------------------------------
# Bit casts and BLAS
# ---------------------------------------------------------------------------------------------


@intrinsic
def i32_as_f32(typingctx, x):
    """The float32 whose bits are the low 32 bits of the integer x."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        v = args[0]
        if v.type.width > 32:
            v = builder.trunc(v, ir.IntType(32))
        elif v.type.width < 32:
            v = builder.sext(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())
    return types.float32(x), codegen


@intrinsic
def f32_as_i32(typingctx, x):
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


@intrinsic
def i64_as_f64(typingctx, x):
    """The float64 whose bits are those of the (64-bit) integer x."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(x), codegen


@intrinsic
def f64_as_i64(typingctx, x):
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def cycles(typingctx):
    """The CPU's cycle counter (for NUMBAX_PROFILE=1 step timings)."""
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(64), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.readcyclecounter")
        return builder.call(fn, [])
    return types.int64(), codegen


_ll_char = ir.IntType(8)
_ll_voidp = ir.IntType(8).as_pointer()


@intrinsic
def _xxgemm(typingctx, transa, transb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c,
            c_off, ldc):
    """Column-major BLAS gemm: c = alpha * op(a) @ op(b) + beta * c (Fortran conventions).

    transa/transb are 0/1; a, b, c are float32 or float64 arrays whose data, from element
    offset *_off on, hold the matrices described by the leading dimensions."""
    if not all(isinstance(t, types.Array) for t in (a, b, c)):
        return None
    dt = c.dtype
    if dt not in (types.float32, types.float64) or a.dtype != dt or b.dtype != dt:
        return None
    ip = types.intp
    sig = types.int32(ip, ip, ip, ip, ip, dt, a, ip, ip, b, ip, ip, dt, c, ip, ip)
    kind = "s" if dt == types.float32 else "d"

    def codegen(context, builder, signature, args):
        (ta, tb, m_, n_, k_, alpha_, a_, ao, lda_, b_, bo, ldb_, beta_, c_, co, ldc_) = args
        intp_t = context.get_value_type(types.intp)
        fnty = ir.FunctionType(ir.IntType(32), [
            _ll_char, _ll_char, _ll_char, intp_t, intp_t, intp_t, _ll_voidp, _ll_voidp, intp_t,
            _ll_voidp, intp_t, _ll_voidp, _ll_voidp, intp_t])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        alpha_slot = cgutils.alloca_once_value(builder, alpha_)
        beta_slot = cgutils.alloca_once_value(builder, beta_)

        def data(aryty, val, off):
            ptr = context.make_array(aryty)(context, builder, val).data
            return builder.bitcast(builder.gep(ptr, [off]), _ll_voidp)

        def tchar(flag):
            is_t = builder.icmp_signed("!=", flag, ir.Constant(flag.type, 0))
            return builder.select(is_t, ir.Constant(_ll_char, ord("t")),
                                  ir.Constant(_ll_char, ord("n")))

        return builder.call(fn, (
            ir.Constant(_ll_char, ord(kind)), tchar(ta), tchar(tb), m_, n_, k_,
            builder.bitcast(alpha_slot, _ll_voidp), data(signature.args[6], a_, ao), lda_,
            data(signature.args[9], b_, bo), ldb_, builder.bitcast(beta_slot, _ll_voidp),
            data(signature.args[13], c_, co), ldc_))
    return sig, codegen


def _find_numpy_cblas():
    """Addresses of NumPy's own CBLAS sgemm/dgemm, or None.

    Using the BLAS NumPy uses (rather than SciPy's copy, which Numba's np.dot calls) means
    compiled and eager code share one BLAS thread pool: two OpenBLAS pools on the same cores
    spin against each other and can make both many times slower."""
    import ctypes
    import glob
    import os
    base = os.path.dirname(os.path.dirname(np.__file__))
    cands = glob.glob(os.path.join(base, "numpy.libs", "*openblas*"))
    cands += glob.glob(os.path.join(os.path.dirname(np.__file__), ".dylibs", "*openblas*"))
    names = [("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", 64),
             ("cblas_sgemm64_", "cblas_dgemm64_", 64),
             ("scipy_cblas_sgemm", "scipy_cblas_dgemm", 32)]
    for path in cands:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for sname, dname, bits in names:
            try:
                sf, df = getattr(lib, sname), getattr(lib, dname)
            except AttributeError:
                continue
            tl = None
            for tname in ("openblas_set_num_threads_local",
                          "scipy_openblas_set_num_threads_local64_"):
                try:
                    tl = ctypes.cast(getattr(lib, tname), ctypes.c_void_p).value
                    break
                except AttributeError:
                    continue
            pool = 1
            for gname in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads",
                          "scipy_openblas_get_num_threads"):
                try:
                    pool = int(getattr(lib, gname)())
                    break
                except AttributeError:
                    continue
            return (ctypes.cast(sf, ctypes.c_void_p).value,
                    ctypes.cast(df, ctypes.c_void_p).value, bits, os.path.basename(path), tl,
                    pool)
    return None


def _register_blas():
    if os.environ.get("NUMBAX_BLAS", "numpy") == "scipy":
        return None
    found = _find_numpy_cblas()
    if found is None:
        return None
    import llvmlite.binding as llb
    s_addr, d_addr, bits, name, tl_addr, pool = found
    llb.add_symbol("numbax_cblas_sgemm", s_addr)
    llb.add_symbol("numbax_cblas_dgemm", d_addr)
    if tl_addr is not None:
        llb.add_symbol("numbax_blas_threads_local", tl_addr)
        blas_threads.register()
    return bits, name, tl_addr is not None, pool


import os  # noqa: E402

from . import blas_threads  # noqa: E402

# (int bits, library name, has openblas_set_num_threads_local, OpenBLAS's thread count) of
# NumPy's CBLAS, or None
BLAS = _register_blas()


def blas_pool_size():
    """The number of threads NumPy's OpenBLAS was started with (1 when unknown)."""
    return BLAS[3] if BLAS is not None else 1


@intrinsic
def _cblas_gemm(typingctx, transa, transb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta,
                c, c_off, ldc):
    """Row-major CBLAS gemm of NumPy's BLAS (registered as numbax_cblas_[sd]gemm)."""
    if BLAS is None or not all(isinstance(t, types.Array) for t in (a, b, c)):
        return None
    dt = c.dtype
    if dt not in (types.float32, types.float64) or a.dtype != dt or b.dtype != dt:
        return None
    ip = types.intp
    sig = types.none(ip, ip, ip, ip, ip, dt, a, ip, ip, b, ip, ip, dt, c, ip, ip)
    fname = "numbax_cblas_sgemm" if dt == types.float32 else "numbax_cblas_dgemm"
    bits = BLAS[0]

    def codegen(context, builder, signature, args):
        (ta, tb, m_, n_, k_, alpha_, a_, ao, lda_, b_, bo, ldb_, beta_, c_, co, ldc_) = args
        i32, iN = ir.IntType(32), ir.IntType(bits)
        fty = context.get_value_type(dt)
        ptr = fty.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, iN, iN, iN, fty, ptr, iN, ptr, iN,
                                               fty, ptr, iN])
        fn = cgutils.get_or_insert_function(builder.module, fnty, fname)

        def data(aryty, val, off):
            p = context.make_array(aryty)(context, builder, val).data
            return builder.gep(p, [off])

        def tr(flag):
            is_t = builder.icmp_signed("!=", flag, ir.Constant(flag.type, 0))
            return builder.select(is_t, ir.Constant(i32, 112), ir.Constant(i32, 111))

        def ix(v):
            return builder.trunc(v, iN) if bits < 64 else v
        builder.call(fn, (ir.Constant(i32, 101), tr(ta), tr(tb), ix(m_), ix(n_), ix(k_), alpha_,
                          data(signature.args[6], a_, ao), ix(lda_),
                          data(signature.args[9], b_, bo), ix(ldb_), beta_,
                          data(signature.args[13], c_, co), ix(ldc_)))
        return context.get_dummy_value()
    return sig, codegen


@_jit
def gemm_cblas(ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc):
    """Row-major gemm on flat storage through NumPy's CBLAS (see `gemm`)."""
    if m == 0 or n == 0:
        return
    if k == 0:
        if beta == 0:
            for i in range(m):
                for j in range(n):
                    c[c_off + i * ldc + j] = 0
        return
    _cblas_gemm(ta, tb, m, n, k, alpha, a, a_off, max(lda, 1), b, b_off, max(ldb, 1), beta,
                c, c_off, max(ldc, 1))


@intrinsic
def _blas_threads_local(typingctx, n):
    """openblas_set_num_threads_local(n): the number of threads the BLAS calls made from this
    thread use; returns the previous number. Without that function: nothing, returns 0."""
    if not isinstance(n, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        if BLAS is None or not BLAS[2]:
            return ir.Constant(i64, 0)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, [i32]),
                                            "numbax_blas_threads_local")
        v = args[0]
        v = builder.trunc(v, i32) if v.type.width > 32 else (
            builder.sext(v, i32) if v.type.width < 32 else v)
        return builder.sext(builder.call(fn, [v]), i64)
    return types.int64(n), codegen


@_jit
def gemm_cblas_serial(ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off,
                      ldc):
    """`gemm_cblas` on the calling thread only. OpenBLAS splits even mid-sized products over
    its threads, which synchronise once per block of the contraction; with the cores busy
    (other processes, or BLAS calls in a row from generated code) each wait can last a
    scheduler time slice: a (2048 x 128)^T (2048 x 128) product took 50-150 ms on two
    threads of a loaded 2-core machine and 3 ms on one."""
    prev = _blas_threads_local(1)
    gemm_cblas(ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc)
    if prev > 0:
        _blas_threads_local(prev)


def _load_int_symbol(builder, name):
    """Load the C int exported as `name` (see `blas_threads`): declared by name, resolved
    when the machine code is linked, so code from the disk cache reads this process's int."""
    i32 = ir.IntType(32)
    mod = builder.module
    gv = mod.globals.get(name)
    if gv is None:
        gv = ir.GlobalVariable(mod, i32, name)
        gv.linkage = "external"
    return gv


@intrinsic
def _blas_threads_wanted(typingctx):
    """The thread count the runner chose for mid-sized products (`blas_threads`)."""
    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        if BLAS is None or not BLAS[2]:
            return ir.Constant(i64, 1)
        return builder.sext(builder.load(_load_int_symbol(builder, blas_threads.SYMBOL)), i64)
    return types.int64(), codegen


@intrinsic
def _blas_threads_note_used(typingctx, n):
    """Record `n` as the thread count of the last mid-sized product (`blas_threads`)."""
    if not isinstance(n, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        if BLAS is not None and BLAS[2]:
            builder.store(builder.trunc(args[0], ir.IntType(32)) if args[0].type.width > 32
                          else args[0], _load_int_symbol(builder, blas_threads.SYMBOL_USED))
        return context.get_dummy_value()
    return types.none(n), codegen


@_jit
def gemm_cblas_auto(ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off,
                    ldc):
    """`gemm_cblas` on as many BLAS threads as the runner chose for this call
    (`blas_threads`: threaded on idle cores, the calling thread only on busy ones)."""
    nt = _blas_threads_wanted()
    _blas_threads_note_used(nt)
    prev = _blas_threads_local(nt)
    gemm_cblas(ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc)
    if prev > 0 and prev != nt:
        _blas_threads_local(prev)


@_jit
def gemm_scipy(ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc):
    """Row-major gemm on flat storage through the BLAS SciPy provides to Numba (see `gemm`)."""
    if m == 0 or n == 0:
        return
    if k == 0:
        if beta == 0:
            for i in range(m):
                for j in range(n):
                    c[c_off + i * ldc + j] = 0
        return
    # column-major BLAS: C^T = op(B)^T @ op(A)^T
    _xxgemm(tb, ta, n, m, k, alpha, b, b_off, max(ldb, 1), a, a_off, max(lda, 1), beta,
            c, c_off, max(ldc, 1))


# The gemm generated code calls: row-major ``C[m, n] = alpha * op(A) @ op(B) + beta * C`` on
# flat storage. ``A`` starts at element ``a_off`` of array ``a``: it is stored m x k (row
# stride lda) or, with ta=1, k x m and transposed; likewise ``B`` (k x n, or n x k with tb=1,
# stride ldb); ``C`` is stored m x n with row stride ldc from ``c_off``. NumPy's CBLAS when
# found (so compiled and eager code share one BLAS thread pool), else SciPy's BLAS.
GEMM = "gemm_cblas" if BLAS is not None else "gemm_scipy"
gemm = gemm_cblas if BLAS is not None else gemm_scipy
# The same product on the calling thread only (where the BLAS allows choosing; else GEMM).
GEMM_SERIAL = "gemm_cblas_serial" if BLAS is not None and BLAS[2] else GEMM
# The same product on as many threads as the runner chose at run time (else GEMM).
GEMM_AUTO = "gemm_cblas_auto" if BLAS is not None and BLAS[2] else GEMM


# ---------------------------------------------------------------------------------------------
# Small scalar helpers (generated code calls these to stay short and readable)
# ---------------------------------------------------------------------------------------------


@_jit
def maxf(a, b):
    """NumPy's maximum: NaN-propagating."""
    return a if (a > b or a != a) else b


@_jit
def minf(a, b):
    """NumPy's minimum: NaN-propagating."""
    return a if (a < b or a != a) else b


def _fextreme(llvm_name):
    """An intrinsic calling LLVM's NaN-propagating `llvm.maximum`/`llvm.minimum` on two
    float32 or float64 values (+0.0 counts as larger than -0.0)."""
    @intrinsic
    def extreme(typingctx, a, b):
        # the accumulator `a` sets the type; `b` is cast to it (a literal may type wider)
        if a not in (types.float32, types.float64) or not isinstance(
                b, (types.Float, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            ty = context.get_value_type(a)
            suffix = "f32" if a == types.float32 else "f64"
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty, ty]),
                                                f"{llvm_name}.{suffix}")
            bv = context.cast(builder, args[1], signature.args[1], a)
            return builder.call(fn, [args[0], bv])
        return a(a, b), codegen
    return extreme


# Accumulators of float max/min reductions. LLVM vectorises a reduction through these
# intrinsics (vector.reduce.fmaximum), but not through `maxf`'s compare-and-select chain,
# whose NaN test makes the order of the selects matter: a softmax's row maximum ran 4-5x
# slower. They agree with NumPy's reductions except in which zero a row of +-0.0 gives.
max_reduce = _fextreme("llvm.maximum")
min_reduce = _fextreme("llvm.minimum")


@intrinsic
def add_reassoc(typingctx, a, b):
    """a + b on float32/float64 as an `fadd reassoc`: the accumulator of float sum reductions.
    A plain running sum must add in order, so LLVM kept every loop holding one scalar and
    latency-bound (~4 cycles per element: a layer norm's row sums); with this flag on the
    accumulating addition alone it vectorises the sum into partial sums (any order, as
    NumPy's pairwise sums are not a running sum either) and the loop's other work with it."""
    if a not in (types.float32, types.float64) or not isinstance(b, (types.Float, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        # the accumulator `a` sets the type; `b` is cast to it (a literal may type wider)
        bv = context.cast(builder, args[1], signature.args[1], a)
        return builder.fadd(args[0], bv, flags=("reassoc",))
    return a(a, b), codegen


@_jit
def idiv(a, b):
    """Integer division rounding toward zero (C semantics); x / 0 gives 0 as NumPy does, and
    MIN / -1 wraps to MIN as in NumPy (Numba's `//` gives 0 there)."""
    if b == 0:
        return a - a
    if b == -1:
        return -a
    q = a // b
    if q * b != a and ((a < 0) != (b < 0)):
        q += 1
    return q


@_jit
def irem(a, b):
    """Integer remainder with the sign of the dividend (C fmod); x % 0 and x % -1 give 0."""
    if b == 0 or b == -1:
        return a - a
    return a - b * idiv(a, b)


@_jit
def udiv(a, b):
    """Unsigned integer division (floor = truncation); x / 0 gives 0 as NumPy does. `idiv`
    must not see unsigned operands: Numba types `uint64 + 1` (a signed literal) as float64,
    which made `idiv`/`irem` round uint64 values above 2**53."""
    if b == 0:
        return a - a
    return a // b


@_jit
def urem(a, b):
    """Unsigned integer remainder, exact for every uint64; x % 0 gives 0."""
    if b == 0:
        return a - a
    return a % b


@_jit
def round_away(x):
    """Round half away from zero (lax.round's default), computed as the NumPy reference."""
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


@_jit
def ipow(x, n):
    """Integer power by squaring (n >= 0); negative n gives 0 unless |x| == 1 (as floats do
    after truncation)."""
    if n < 0:
        if x == 1:
            return x
        if x == -1:
            return x if (n & 1) else -x
        return x - x
    acc = x - x + 1
    b = x
    while n:
        if n & 1:
            acc = acc * b
        b = b * b
        n >>= 1
    return acc


@_jit
def upow(x, n):
    """Unsigned power by squaring, wrapping modulo 2**64 as NumPy does. Separate from ipow
    because Numba types uint64 combined with a signed literal as float64, which saturated
    large results instead of wrapping them."""
    one = np.uint64(1)
    acc, b, m = one, np.uint64(x), np.uint64(n)
    while m:
        if m & one:
            acc = acc * b
        b = b * b
        m >>= one
    return acc


@_jit
def _rotl32(v, r):
    return np.uint32((v << np.uint32(r)) | (v >> np.uint32(32 - r)))


@_jit
def _mix4(v0, v1, r0, r1, r2, r3):
    """Four Threefry mix rounds with rotations r0..r3."""
    v0 = np.uint32(v0 + v1)
    v1 = np.uint32(_rotl32(v1, r0) ^ v0)
    v0 = np.uint32(v0 + v1)
    v1 = np.uint32(_rotl32(v1, r1) ^ v0)
    v0 = np.uint32(v0 + v1)
    v1 = np.uint32(_rotl32(v1, r2) ^ v0)
    v0 = np.uint32(v0 + v1)
    v1 = np.uint32(_rotl32(v1, r3) ^ v0)
    return v0, v1


@_jit
def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32 (20 rounds) on uint32 scalars: the same function as
    transforms.random.threefry2x32_numpy. Written out group by group rather than as a loop:
    unrolling that loop was left to LLVM's size threshold, and the loop kept was 10x slower."""
    a0, a1 = np.uint32(k0), np.uint32(k1)
    a2 = np.uint32(a0 ^ a1 ^ np.uint32(0x1BD11BDA))
    v0 = np.uint32(np.uint32(x0) + a0)
    v1 = np.uint32(np.uint32(x1) + a1)
    v0, v1 = _mix4(v0, v1, 13, 15, 26, 6)
    v0, v1 = np.uint32(v0 + a1), np.uint32(v1 + a2 + np.uint32(1))
    v0, v1 = _mix4(v0, v1, 17, 29, 16, 24)
    v0, v1 = np.uint32(v0 + a2), np.uint32(v1 + a0 + np.uint32(2))
    v0, v1 = _mix4(v0, v1, 13, 15, 26, 6)
    v0, v1 = np.uint32(v0 + a0), np.uint32(v1 + a1 + np.uint32(3))
    v0, v1 = _mix4(v0, v1, 17, 29, 16, 24)
    v0, v1 = np.uint32(v0 + a1), np.uint32(v1 + a2 + np.uint32(4))
    v0, v1 = _mix4(v0, v1, 13, 15, 26, 6)
    v0, v1 = np.uint32(v0 + a2), np.uint32(v1 + a0 + np.uint32(5))
    return v0, v1


@intrinsic
def fma32(typingctx, a, b, c):
    """`a * b + c` on float32 scalars rounded once to float32 (transforms.fma32.fma32_numpy per
    element): LLVM's ``llvm.fma.f32``, one FMA instruction on a CPU that has one, else the C
    library's correctly rounded ``fmaf`` (`_publish_fmaf`). An exactly rounded result is one
    value, so this agrees to the bit with the float64 emulation of `fma32_numpy` -- which ran
    about 9x slower here and made every sampler's loop several times larger for LLVM."""
    if not all(t == types.float32 for t in (a, b, c)):
        return None

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        f = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f32, [f32] * 3),
                                           "llvm.fma.f32")
        return builder.call(f, args)
    return types.float32(a, b, c), codegen


def _publish_fmaf():
    # where the CPU has no FMA instruction LLVM calls `fmaf`, which the JIT linker does not
    # find by itself: give it the C library's
    import ctypes
    import ctypes.util
    import llvmlite.binding as llb
    if llb.address_of_symbol("fmaf"):
        return
    # this process's own symbols first (Python links the C math library): looking libm up
    # by name runs a subprocess, a few ms of every import
    for name in (None, "m"):
        try:
            lib = ctypes.CDLL(name if name is None else ctypes.util.find_library(name))
            addr = ctypes.cast(lib.fmaf, ctypes.c_void_p).value
        except (OSError, AttributeError, TypeError):
            continue
        llb.add_symbol("fmaf", addr)
        return


_publish_fmaf()


# ---------------------------------------------------------------------------------------------
# float32 kernels
# ---------------------------------------------------------------------------------------------

_F = np.float32
_LOG2E_F = _F(1.4426950408889634)
_LN2_HI_F = _F(0.693359375)
_LN2_LO_F = _F(-2.12194440e-4)


@_jit
def _scale_f32(y, k):
    """y * 2**k for an integer-valued float32 k in [-152, 130], in two exact halves."""
    ki = np.int32(k)
    k1 = ki >> np.int32(1)
    k2 = ki - k1
    s1 = i32_as_f32((k1 + np.int32(127)) << np.int32(23))
    s2 = i32_as_f32((k2 + np.int32(127)) << np.int32(23))
    return y * s1 * s2


@_jit
def exp_f32(x):
    # exp(x <= -104) rounds to 0. Those lanes (every masked-out attention logit) compute
    # exp(0) and are zeroed at the end: scaling by 2**-150 would produce subnormals, which
    # cost a microcode assist each (a softmax with a causal mask ran 20x slower). NaN -> 0
    # here too (fixed at the end).
    under = x <= _F(-104.0)
    xc = x if x > _F(-104.0) else _F(0.0)
    xc = xc if xc < _F(89.0) else _F(89.0)
    k = np.floor(xc * _LOG2E_F + _F(0.5))
    r = xc - k * _LN2_HI_F
    r = r - k * _LN2_LO_F
    p = _F(1.9875691500e-4)
    p = p * r + _F(1.3981999507e-3)
    p = p * r + _F(8.3334519073e-3)
    p = p * r + _F(4.1665795894e-2)
    p = p * r + _F(1.6666665459e-1)
    p = p * r + _F(5.0000001201e-1)
    y = p * r * r + r + _F(1.0)
    y = _scale_f32(y, k)
    y = _F(0.0) if under else y
    return y if x == x else x


@_jit
def log_f32(x):
    tiny = x < _F(1.1754943508222875e-38)        # subnormal (or <= 0, handled below)
    xs = x * _F(8388608.0) if tiny else x
    bits = f32_as_i32(xs)
    e = (bits >> np.int32(23)) - np.int32(126)
    e = e - np.int32(23) if tiny else e
    m = i32_as_f32((bits & np.int32(0x007FFFFF)) | np.int32(0x3F000000))   # [0.5, 1)
    small = m < _F(0.70710678118654752440)
    e = e - np.int32(1) if small else e
    f = (m + m - _F(1.0)) if small else (m - _F(1.0))
    z = f * f
    y = _F(7.0376836292e-2)
    y = y * f - _F(1.1514610310e-1)
    y = y * f + _F(1.1676998740e-1)
    y = y * f - _F(1.2420140846e-1)
    y = y * f + _F(1.4249322787e-1)
    y = y * f - _F(1.6668057665e-1)
    y = y * f + _F(2.0000714765e-1)
    y = y * f - _F(2.4999993993e-1)
    y = y * f + _F(3.3333331174e-1)
    y = y * f * z
    fe = _F(e)
    y = y + _LN2_LO_F * fe
    y = y - _F(0.5) * z
    r = f + y
    r = r + _LN2_HI_F * fe
    r = r if x < _F(np.inf) else x                # +inf
    r = r if x != _F(0.0) else _F(-np.inf)
    return r if x >= _F(0.0) else _F(np.nan)      # negative or NaN -> NaN


@_jit
def tanh_f32(x):
    z = np.abs(x)
    s = exp_f32(z + z)
    big = _F(1.0) - _F(2.0) / (s + _F(1.0))       # tanh(|x|); x's sign is applied at the end
    z2 = x * x
    p = _F(-5.70498872745e-3)
    p = p * z2 + _F(2.06390887954e-2)
    p = p * z2 - _F(5.37397155531e-2)
    p = p * z2 + _F(1.33314422036e-1)
    p = p * z2 - _F(3.33332819422e-1)
    small = p * z2 * x + x
    r = big if z > _F(0.625) else small           # NaN takes the polynomial path -> NaN
    # tanh keeps the sign of x, -0.0 included: OR in x's sign bit (bit operations, not one
    # more select: that pushed this kernel over LLVM's inlining threshold, un-vectorising it)
    return i32_as_f32(f32_as_i32(r) | (f32_as_i32(x) & np.int32(-2147483648)))


@_jit
def logistic_f32(x):
    e = exp_f32(-np.abs(x))
    r = _F(1.0) / (_F(1.0) + e)
    return r if x >= _F(0.0) else e * r


# float32 sin/cos: x = j*pi/2 + r (Cody-Waite: pi/2 split in four float32 parts, the first
# three of 11 significant bits so that j * part is exact for |j| < 2**13), then Cephes'
# polynomials on |r| <= pi/4. Exact to ~2 ulp for |x| < SINCOS_LIMIT_F32; beyond, the generated
# loop runs again with the libm version (see sincos_big_f32).

def _pi_bits(nbits=240):
    """floor(pi * 2**nbits) with Machin's formula in integer arithmetic."""
    one = 1 << (nbits + 20)

    def arctan_inv(n):
        total, term, k, sign = 0, one // n, 1, 1
        n2 = n * n
        while term:
            total += sign * (term // k)
            term //= n2
            k += 2
            sign = -sign
        return total
    return (16 * arctan_inv(5) - 4 * arctan_inv(239)) >> 20


def _split_pio2(bits):
    """pi/2 as a sum of floats whose significands have the given numbers of bits."""
    nb = 240
    rest = _pi_bits(nb)                     # pi * 2**nb = pi/2 * 2**(nb + 1)
    chunks = []
    for nbits in bits:
        shift = rest.bit_length() - nbits
        top = rest >> shift
        chunks.append(math.ldexp(top, shift - (nb + 1)))
        rest -= top << shift
    return chunks


_PIO2_F = [_F(c) for c in _split_pio2((11, 11, 11, 24))]
_P1, _P2, _P3, _P4 = _PIO2_F
SINCOS_LIMIT_F32 = 8192.0                  # |x| beyond this: exact (libm) fallback
_TWO_OVER_PI_F = _F(0.63661977236758134308)
_SINCOS_LIMIT_F32_F = _F(SINCOS_LIMIT_F32)


@_jit
def _reduce_pio2_f32(x):
    j = np.rint(x * _TWO_OVER_PI_F)
    r = x - j * _P1
    r = r - j * _P2
    r = r - j * _P3
    r = r - j * _P4
    j = j if np.abs(j) < _F(1e6) else _F(0.0)       # keeps the int conversion defined
    return r, np.int32(j) & np.int32(3)


@_jit
def _sin_poly_f32(r, z):
    return r + r * z * (_F(-1.6666654611e-1) + z * (_F(8.3321608736e-3)
                                                     + z * _F(-1.9515295891e-4)))


@_jit
def _cos_poly_f32(z):
    return _F(1.0) - _F(0.5) * z + z * z * (_F(4.166664568298827e-2) + z * (
        _F(-1.388731625493765e-3) + z * _F(2.443315711809948e-5)))


@_jit
def sin_f32(x):
    r, q = _reduce_pio2_f32(x)
    z = r * r
    s = _sin_poly_f32(r, z)
    c = _cos_poly_f32(z)
    v = s if (q & 1) == 0 else c
    v = v if q < 2 else -v
    return v if x != _F(0.0) else x               # sin(-0.) is -0. (the polynomial gives +0.)


@_jit
def cos_f32(x):
    r, q = _reduce_pio2_f32(x)
    z = r * r
    s = _sin_poly_f32(r, z)
    c = _cos_poly_f32(z)
    v = c if (q & 1) == 0 else s
    return v if (q == 0 or q == 3) else -v


@_jit
def sincos_big_f32(x):
    """1 if sin_f32/cos_f32 are not exact at x (|x| >= SINCOS_LIMIT_F32, inf), else 0."""
    return np.int64(1) if np.abs(x) >= _SINCOS_LIMIT_F32_F else np.int64(0)


@_jit
def sin_f32_exact(x):
    return np.float32(math.sin(np.float64(x)))


@_jit
def cos_f32_exact(x):
    return np.float32(math.cos(np.float64(x)))


# ---------------------------------------------------------------------------------------------
# float64 kernels
# ---------------------------------------------------------------------------------------------

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01      # 32 significant bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10


@_jit
def _scale_f64(y, k):
    ki = np.int64(k)
    k1 = ki >> np.int64(1)
    k2 = ki - k1
    s1 = i64_as_f64((k1 + np.int64(1023)) << np.int64(52))
    s2 = i64_as_f64((k2 + np.int64(1023)) << np.int64(52))
    return y * s1 * s2


@_jit
def exp_f64(x):
    # exp(x <= -746) rounds to 0: computed as exp(0) and zeroed, no subnormal assist (see
    # exp_f32). NaN -> 0 here (fixed at the end).
    under = x <= -746.0
    xc = x if x > -746.0 else 0.0
    xc = xc if xc < 710.0 else 710.0
    k = np.rint(xc * _LOG2E)
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    y = 1.0 + (r + r * r * p)
    y = _scale_f64(y, k)
    y = 0.0 if under else y
    return y if x == x else x


_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01


@_jit
def log_f64(x):
    tiny = x < 2.2250738585072014e-308
    xs = x * 18014398509481984.0 if tiny else x       # 2**54
    bits = f64_as_i64(xs)
    e = ((bits >> np.int64(52)) & np.int64(0x7FF)) - np.int64(1023)
    e = e - np.int64(54) if tiny else e
    m = i64_as_f64((bits & np.int64(0x000FFFFFFFFFFFFF)) | np.int64(0x3FF0000000000000))
    big = m > 1.4142135623730951
    m = m * 0.5 if big else m
    e = e + np.int64(1) if big else e
    f = m - 1.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    rr = t2 + t1
    dk = np.float64(e)
    r = dk * _LN2_HI - ((hfsq - (s * (hfsq + rr) + dk * _LN2_LO)) - f)
    r = r if x < np.inf else x
    r = r if x != 0.0 else -np.inf
    return r if x >= 0.0 else np.nan


@_jit
def logistic_f64(x):
    e = exp_f64(-np.abs(x))
    r = 1.0 / (1.0 + e)
    return r if x >= 0.0 else e * r


@_jit
def pow_f32(x, y):
    """C powf semantics, computed as exp(y * log|x|) in double precision."""
    xd = np.float64(x)
    yd = np.float64(y)
    r = exp_f64(yd * log_f64(np.abs(xd)))
    y_int = yd == np.rint(yd)
    half = yd * 0.5
    y_odd = y_int and np.abs(yd) < 9007199254740992.0 and np.rint(half) != half
    x_neg = np.copysign(1.0, xd) < 0.0
    r = -r if (x_neg and y_odd) else r
    r = np.nan if (xd < 0.0 and xd > -np.inf and not y_int) else r
    r = 1.0 if (np.abs(xd) == 1.0 and np.abs(yd) == np.inf) else r
    r = 1.0 if (xd == 1.0 or yd == 0.0) else r
    return np.float32(r)


@functools.lru_cache(maxsize=None)
def source_version():
    """A short hash of this file and of the BLAS in use: generated modules embed it, so
    editing the kernels or switching BLAS invalidates cached machine code. Computed once per
    process (as the backend's fingerprint is), not on every lowering."""
    import hashlib
    with open(__file__, "rb") as f:
        h = hashlib.sha1(f.read())
    # the kernel modules imported at the end of this one are linked into generated code too
    import os
    for name in ("kernels_special.py", "kernels_xla_f32.py", "small_gemm.py",
                 "kernels_conv.py"):
        with open(os.path.join(os.path.dirname(__file__), name), "rb") as f:
            h.update(f.read())
    h.update(repr(BLAS).encode())
    return h.hexdigest()[:12]


# special functions Numba's math lacks (own module; generated code imports them from here)
from .kernels_special import (  # noqa: E402,F401
    bessel_i0e_f64, bessel_i1e_f64, digamma_f64, erf_inv_f64, polygamma_f64)

# register-blocked gemm for small batched products (own module; emitted inline as LLVM IR)
from .small_gemm import small_gemm, small_gemm_batched  # noqa: E402,F401

# the thread count the runner chose (`blas_threads`), for `small_gemm_batched`'s split
blas_threads_wanted = _blas_threads_wanted

# XLA's float32 log/log1p/erf and JAX's float32 erf_inv (the samplers' `xla_*_f32` primitives)
from .kernels_xla_f32 import (  # noqa: E402,F401
    xla_erf_f32, xla_erfinv_f32, xla_log1p_f32, xla_log_f32)


def __getattr__(attr):
    """Generated code imports the convolution kernels' callers lazily (`kernels_conv`): the
    import compiles or loads the kernel's entry point and registers its symbol first."""
    if attr.startswith("conv_"):
        from . import kernels_conv
        c = kernels_conv.resolve(attr)
        if c is not None:
            return c
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
