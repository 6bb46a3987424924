"""Calls the direct compiler knows: casts, builtins, NumPy and `math` scalar functions, the
intrinsics of `kernels.py`, `views.py` and `calls.py`, and kernels (compiled from their
Python source into the caller's module).

Each entry gives Numba's result type for the same call (see `scalars.py`) and emits the same
operation: LLVM's intrinsics where Numba uses them (`llvm.sqrt`, `llvm.floor`, ...), the C
library's function where Numba calls that (`tanh`, `tanhf`, ...).
"""
from __future__ import annotations

import ast
import builtins
import math

import numpy as np
from llvmlite import ir

from . import scalars as S
from .lower import I1, I8, I32, I64, VOIDP, Arr, Sc, Static, Tup, TupT, const
from .scalars import Unsupported

_CASTS = {np.float32: S.F32, np.float64: S.F64, np.int8: np.dtype(np.int8),
          np.int16: np.dtype(np.int16), np.int32: np.dtype(np.int32), np.int64: S.I64,
          np.uint8: np.dtype(np.uint8), np.uint16: np.dtype(np.uint16),
          np.uint32: np.dtype(np.uint32), np.uint64: S.U64, np.bool_: S.BOOL,
          builtins.float: S.F64, builtins.bool: S.BOOL}

# unary float functions: LLVM intrinsic (Numba lowers these through them) or C library name
_LLVM_UNARY = {"sqrt": "llvm.sqrt", "exp": "llvm.exp", "log": "llvm.log",
               "log10": "llvm.log10", "log2": "llvm.log2", "sin": "llvm.sin",
               "cos": "llvm.cos", "fabs": "llvm.fabs", "exp2": "llvm.exp2"}
_LIBM_UNARY = {"tanh", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
               "atanh", "expm1", "log1p", "erf", "erfc", "lgamma", "cbrt"}
_ROUNDING = {"floor": "llvm.floor", "ceil": "llvm.ceil", "trunc": "llvm.trunc",
             "rint": "llvm.rint"}

_special = None


def _specials():
    """id(intrinsic object) -> handler, built on first use."""
    global _special
    if _special is not None:
        return _special
    from .. import calls, kernels, views
    table = {
        kernels.i32_as_f32: _i32_as_f32, kernels.f32_as_i32: _f32_as_i32,
        kernels.i64_as_f64: _i64_as_f64, kernels.f64_as_i64: _f64_as_i64,
        kernels.add_reassoc: _add_reassoc, kernels.fma32: _fma32,
        kernels.max_reduce: lambda fc, a: _extreme(fc, a, "llvm.maximum"),
        kernels.min_reduce: lambda fc, a: _extreme(fc, a, "llvm.minimum"),
        kernels._cblas_gemm: _cblas_gemm,
        kernels._blas_threads_local: _blas_threads_local,
        kernels._blas_threads_wanted: _blas_threads_wanted,
        kernels._blas_threads_note_used: _blas_threads_note_used,
        views.rows: _rows, views.shaped: _shaped, views.store: _store,
        calls.call: _symbol_call,
    }
    _special = {id(k): v for k, v in table.items()}
    _special[id(views.empty)] = "empty"
    _special[id(kernels.small_gemm)] = "small_gemm"
    return _special


def call_static(fc, obj, arg_nodes):
    """Emit the call of compile-time object `obj` with argument expressions `arg_nodes`."""
    h = _specials().get(id(obj))
    if h == "empty":
        return _empty(fc, arg_nodes)
    if h == "small_gemm":
        return _small_gemm(fc, arg_nodes)
    args = [fc.expr(a) for a in arg_nodes]
    if h is not None:
        return h(fc, args)
    if obj in _CASTS:
        _one(args, obj)
        return fc.cast(args[0], _CASTS[obj])
    if obj is builtins.int:
        _one(args, obj)
        a = args[0]
        return fc.cast(a, S.I64 if (S.is_float(a.t) or a.t.kind == "b") else a.t)
    if obj is builtins.len:
        if len(args) == 1 and isinstance(args[0], Tup):
            return Sc(const(S.I64, len(args[0].items)), S.I64)
        if len(args) != 1 or not isinstance(args[0], Arr):
            raise Unsupported("len of a non-array")
        return Sc(args[0].shape[0], S.I64)
    if obj is builtins.abs or obj is np.abs or obj is np.absolute:
        return _abs(fc, _one(args, obj))
    if obj is builtins.min or obj is builtins.max:
        return _minmax(fc, args, obj is builtins.min)
    mod = getattr(obj, "__module__", None)
    name = getattr(obj, "__name__", None)
    if isinstance(obj, np.ufunc) or (mod == "math" and callable(obj)) or \
            (obj is getattr(math, name or "", None)):
        return _math(fc, obj, args)
    from .function import DirectFunction
    if isinstance(obj, DirectFunction):
        return _direct_call(fc, obj, args)
    py_func = getattr(obj, "py_func", None)
    if py_func is not None and callable(py_func):      # a Numba dispatcher: a kernel
        return _kernel_call(fc, py_func, args)
    raise Unsupported(f"call of {obj!r}")


def _one(args, obj):
    if len(args) != 1 or not isinstance(args[0], Sc):
        raise Unsupported(f"{obj!r} takes one scalar")
    return args[0]


def _scalars(args, n, what):
    if len(args) != n or not all(isinstance(a, Sc) for a in args):
        raise Unsupported(f"{what} takes {n} scalars")
    return args


# -- builtins and NumPy/math scalar functions ---------------------------------------------

def _abs(fc, a):
    if a.t.kind == "b":
        return a
    if S.is_float(a.t):
        f = fc.mb.intrinsic(f"llvm.fabs.{_sfx(a.t)}", S.ll(a.t), [S.ll(a.t)])
        return Sc(fc.b.call(f, [a.v]), a.t)
    if a.t.kind == "u":
        return a
    b = fc.b
    return Sc(b.select(b.icmp_signed("<", a.v, ir.Constant(a.v.type, 0)), b.neg(a.v), a.v),
              a.t)


def _minmax(fc, args, is_min):
    if len(args) < 2 or not all(isinstance(a, Sc) for a in args):
        raise Unsupported("min/max form")
    t = args[0].t
    for a in args[1:]:
        t = S.unify(t, a.t)
    res = fc.cast(args[0], t)
    for a in args[1:]:
        v = fc.cast(a, t)
        better = fc.compare(_LT if is_min else _GT, v, res)
        res = Sc(fc.b.select(better.v, v.v, res.v), t)
    return res


_LT, _GT = ast.Lt(), ast.Gt()


def _sfx(t):
    return "f32" if t == S.F32 else "f64"


def _math(fc, obj, args):
    """np.<ufunc>(scalar...) and math.<fn>(scalar...)."""
    name = obj.__name__
    is_np = isinstance(obj, np.ufunc)
    b = fc.b
    if name in ("isnan", "isinf", "isfinite"):
        a = _one(args, obj)
        if not S.is_float(a.t):
            return Sc(const(S.BOOL, name == "isfinite"), S.BOOL)
        if name == "isnan":
            return Sc(b.fcmp_unordered("uno", a.v, a.v), S.BOOL)
        f = fc.mb.intrinsic(f"llvm.fabs.{_sfx(a.t)}", S.ll(a.t), [S.ll(a.t)])
        inf = ir.Constant(S.ll(a.t), float("inf"))
        ab = b.call(f, [a.v])
        return Sc(b.fcmp_ordered("==", ab, inf) if name == "isinf" else
                  b.fcmp_ordered("<", ab, inf), S.BOOL)
    if name in _ROUNDING or (is_np and name in ("floor", "ceil", "trunc", "rint")):
        a = _one(args, obj)
        if not is_np:                         # math.floor/ceil/trunc give an integer
            if name == "rint" or not S.is_float(a.t):
                raise Unsupported(f"math.{name}")
            f = fc.mb.intrinsic(f"{_ROUNDING[name]}.{_sfx(a.t)}", S.ll(a.t), [S.ll(a.t)])
            return fc.cast(Sc(b.call(f, [a.v]), a.t), S.I64)
        if not S.is_float(a.t):
            if name == "rint":
                a = fc.cast(a, S.float_of_int(a.t))
            else:
                return a
        f = fc.mb.intrinsic(f"{_ROUNDING[name]}.{_sfx(a.t)}", S.ll(a.t), [S.ll(a.t)])
        return Sc(b.call(f, [a.v]), a.t)
    if name in _LLVM_UNARY or name in _LIBM_UNARY:
        if is_np and name in _LIBM_UNARY:
            raise Unsupported(f"np.{name}")
        a = _one(args, obj)
        t = a.t if S.is_float(a.t) else (S.float_of_int(a.t) if is_np else S.F64)
        a = fc.cast(a, t)
        if name in _LLVM_UNARY:
            f = fc.mb.intrinsic(f"{_LLVM_UNARY[name]}.{_sfx(t)}", S.ll(t), [S.ll(t)])
        else:
            f = fc.mb.intrinsic(name + ("f" if t == S.F32 else ""), S.ll(t), [S.ll(t)])
        return Sc(b.call(f, [a.v]), t)
    if name == "copysign" and is_np:
        x, y = _scalars(args, 2, "copysign")
        t = S.promote(x.t if S.is_float(x.t) else S.float_of_int(x.t),
                      y.t if S.is_float(y.t) else S.float_of_int(y.t))
        f = fc.mb.intrinsic(f"llvm.copysign.{_sfx(t)}", S.ll(t), [S.ll(t), S.ll(t)])
        return Sc(b.call(f, [fc.cast(x, t).v, fc.cast(y, t).v]), t)
    if name == "fmod" and is_np:
        x, y = _scalars(args, 2, "fmod")
        if S.is_float(x.t) or S.is_float(y.t):
            t = S.promote(x.t if S.is_float(x.t) else S.float_of_int(x.t),
                          y.t if S.is_float(y.t) else S.float_of_int(y.t))
            return Sc(b.frem(fc.cast(x, t).v, fc.cast(y, t).v), t)
        raise Unsupported("np.fmod of integers")
    if name == "copysign" and not is_np:
        x, y = _scalars(args, 2, name)
        t = S.F32 if (x.t == S.F32 and y.t == S.F32) else S.F64
        f = fc.mb.intrinsic(f"llvm.copysign.{_sfx(t)}", S.ll(t), [S.ll(t), S.ll(t)])
        return Sc(b.call(f, [fc.cast(x, t).v, fc.cast(y, t).v]), t)
    if name in ("pow", "atan2") and not is_np:
        x, y = _scalars(args, 2, name)
        t = S.F32 if (x.t == S.F32 and y.t == S.F32) else S.F64
        if name == "pow":
            f = fc.mb.intrinsic(f"llvm.pow.{_sfx(t)}", S.ll(t), [S.ll(t), S.ll(t)])
        else:
            f = fc.mb.intrinsic("atan2f" if t == S.F32 else "atan2", S.ll(t),
                                [S.ll(t), S.ll(t)])
        return Sc(b.call(f, [fc.cast(x, t).v, fc.cast(y, t).v]), t)
    raise Unsupported(f"{'np' if is_np else 'math'}.{name}")


# -- kernels.py intrinsics ----------------------------------------------------------------

def _i32_as_f32(fc, args):
    x = _one(args, "i32_as_f32")
    if not S.is_int(x.t) or x.t.kind == "b":
        raise Unsupported("i32_as_f32 of a non-integer")
    v = x.v
    if x.t.itemsize > 4:
        v = fc.b.trunc(v, I32)
    elif x.t.itemsize < 4:
        v = fc.b.sext(v, I32)
    return Sc(fc.b.bitcast(v, ir.FloatType()), S.F32)


def _f32_as_i32(fc, args):
    x = _one(args, "f32_as_i32")
    if x.t != S.F32:
        raise Unsupported("f32_as_i32 of a non-float32")
    return Sc(fc.b.bitcast(x.v, I32), np.dtype(np.int32))


def _i64_as_f64(fc, args):
    x = _one(args, "i64_as_f64")
    if x.t.kind not in "iu" or x.t.itemsize != 8:
        raise Unsupported("i64_as_f64 of a non-64-bit integer")
    return Sc(fc.b.bitcast(x.v, ir.DoubleType()), S.F64)


def _f64_as_i64(fc, args):
    x = _one(args, "f64_as_i64")
    if x.t != S.F64:
        raise Unsupported("f64_as_i64 of a non-float64")
    return Sc(fc.b.bitcast(x.v, I64), S.I64)


def _add_reassoc(fc, args):
    a, b_ = _scalars(args, 2, "add_reassoc")
    if not S.is_float(a.t):
        raise Unsupported("add_reassoc of a non-float")
    return Sc(fc.b.fadd(a.v, fc.cast(b_, a.t).v, flags=("reassoc",)), a.t)


def _fma32(fc, args):
    a, b_, c = _scalars(args, 3, "fma32")
    if not all(x.t == S.F32 for x in (a, b_, c)):
        raise Unsupported("fma32 of a non-float32")
    ty = S.ll(S.F32)
    f = fc.mb.intrinsic("llvm.fma.f32", ty, [ty, ty, ty])
    return Sc(fc.b.call(f, [a.v, b_.v, c.v]), S.F32)


def _extreme(fc, args, llvm_name):
    a, b_ = _scalars(args, 2, llvm_name)
    if not S.is_float(a.t):
        raise Unsupported(f"{llvm_name} of a non-float")
    ty = S.ll(a.t)
    f = fc.mb.intrinsic(f"{llvm_name}.{_sfx(a.t)}", ty, [ty, ty])
    return Sc(fc.b.call(f, [a.v, fc.cast(b_, a.t).v]), a.t)


def _blas():
    from .. import kernels
    return kernels.BLAS


def _cblas_gemm(fc, args):
    blas = _blas()
    if blas is None or len(args) != 16:
        raise Unsupported("cblas gemm")
    ta, tb, m, n, k, alpha, a, ao, lda, bb, bo, ldb, beta, c, co, ldc = args
    if not all(isinstance(x, Arr) for x in (a, bb, c)) or \
            not (c.dtype == a.dtype == bb.dtype) or not S.is_float(c.dtype):
        raise Unsupported("cblas gemm operands")
    dt = c.dtype
    b = fc.b
    bits = blas[0]
    iN = ir.IntType(bits)
    fty = S.ll(dt)
    ptr = fty.as_pointer()
    fname = "numbax_cblas_sgemm" if dt == S.F32 else "numbax_cblas_dgemm"
    fn = fc.mb.declare(fname, ir.FunctionType(ir.VoidType(), [
        I32, I32, I32, iN, iN, iN, fty, ptr, iN, ptr, iN, fty, ptr, iN]))

    def ix(v):
        v = fc.cast(v, S.I64).v
        return b.trunc(v, iN) if bits < 64 else v

    def tr(flag):
        return b.select(fc.truth(flag), ir.Constant(I32, 112), ir.Constant(I32, 111))

    def data(arr, off):
        return b.gep(arr.ptr, [fc.cast(off, S.I64).v])
    b.call(fn, [ir.Constant(I32, 101), tr(ta), tr(tb), ix(m), ix(n), ix(k),
                fc.cast(alpha, dt).v, data(a, ao), ix(lda), data(bb, bo), ix(ldb),
                fc.cast(beta, dt).v, data(c, co), ix(ldc)])
    return Static(None)


def _blas_threads_local(fc, args):
    x = _one(args, "_blas_threads_local")
    blas = _blas()
    if blas is None or not blas[2]:
        return Sc(const(S.I64, 0), S.I64)
    fn = fc.mb.declare("numbax_blas_threads_local", ir.FunctionType(I32, [I32]))
    v = fc.cast(x, np.dtype(np.int32)).v
    return Sc(fc.b.sext(fc.b.call(fn, [v]), I64), S.I64)


def _blas_threads_wanted(fc, args):
    from .. import blas_threads
    if args:
        raise Unsupported("_blas_threads_wanted takes no argument")
    blas = _blas()
    if blas is None or not blas[2]:
        return Sc(const(S.I64, 1), S.I64)
    gv = fc.mb.external_global(blas_threads.SYMBOL, I32)
    return Sc(fc.b.sext(fc.b.load(gv), I64), S.I64)


def _blas_threads_note_used(fc, args):
    from .. import blas_threads
    x = _one(args, "_blas_threads_note_used")
    blas = _blas()
    if blas is not None and blas[2]:
        gv = fc.mb.external_global(blas_threads.SYMBOL_USED, I32)
        fc.b.store(fc.cast(x, np.dtype(np.int32)).v, gv)
    return Static(None)


# -- views.py -----------------------------------------------------------------------------

def _rows(fc, args):
    if len(args) != 3 or not isinstance(args[0], Arr):
        raise Unsupported("rows form")
    a, lo, hi = args
    b = fc.b
    lo64, hi64 = fc.cast(lo, S.I64).v, fc.cast(hi, S.I64).v
    row = None
    for d in a.shape[1:]:
        row = d if row is None else b.mul(row, d)
    start = lo64 if row is None else b.mul(lo64, row)
    return Arr(b.gep(a.ptr, [start]), [b.sub(hi64, lo64)] + a.shape[1:], a.dtype)


def _shaped(fc, args):
    if len(args) != 2 or not isinstance(args[0], Arr) or not isinstance(args[1], (Sc, Tup)):
        raise Unsupported("shaped form")
    a, shape = args
    dims = [shape] if isinstance(shape, Sc) else shape.items
    if not all(S.is_int(d.t) for d in dims):
        raise Unsupported("shaped to a non-integer shape")
    return Arr(a.ptr, [fc.cast(d, S.I64).v for d in dims], a.dtype)


def _store(fc, args):
    if len(args) != 4 or not isinstance(args[0], Arr):
        raise Unsupported("store form")
    a, lo, hi, v = args
    b = fc.b
    if len(a.shape) != 1 or (isinstance(v, Arr) and len(v.shape) != 1):
        raise Unsupported("store into a multi-dimensional array")
    lo64, hi64 = fc.cast(lo, S.I64).v, fc.cast(hi, S.I64).v
    if isinstance(v, Arr):
        if v.dtype != a.dtype:
            raise Unsupported("store of another dtype")
        mm = fc.mb.intrinsic("llvm.memmove.p0i8.p0i8.i64", ir.VoidType(),
                             [VOIDP, VOIDP, I64, I1])
        nbytes = b.mul(b.sub(hi64, lo64), const(S.I64, a.dtype.itemsize))
        b.call(mm, [b.bitcast(b.gep(a.ptr, [lo64]), VOIDP), b.bitcast(v.ptr, VOIDP), nbytes,
                    ir.Constant(I1, 0)])
        return Static(None)
    if not isinstance(v, Sc):
        raise Unsupported("store value")
    fill(fc, a, lo64, hi64, v)
    return Static(None)


def fill(fc, a, lo64, hi64, v):
    """a[lo64:hi64] = scalar v (bounds: i64 values within the array; empty if lo >= hi)."""
    b = fc.b
    val = fc.cast(v, a.dtype).v
    if a.dtype.kind == "b":
        val = b.zext(val, I8)
    i = fc.entry_b.alloca(I64)
    b.store(lo64, i)
    head = fc.fn.append_basic_block("fill.head")
    body = fc.fn.append_basic_block("fill.body")
    done = fc.fn.append_basic_block("fill.end")
    b.branch(head)
    b.position_at_end(head)
    iv = b.load(i)
    b.cbranch(b.icmp_signed("<", iv, hi64), body, done)
    b.position_at_end(body)
    b.store(val, b.gep(a.ptr, [iv]))
    b.store(b.add(iv, const(S.I64, 1)), i)
    b.branch(head)
    b.position_at_end(done)


def _empty(fc, arg_nodes):
    if len(arg_nodes) != 2:
        raise Unsupported("empty form")
    shape_node = arg_nodes[0]
    dims = [fc.static_int(x) for x in (
        shape_node.elts if isinstance(shape_node, ast.Tuple) else [shape_node])]
    dt = fc.expr(arg_nodes[1])
    if any(d is None or d < 0 for d in dims):          # (no dims: a 0-d array)
        raise Unsupported("empty of a size not known at compile time")
    n = 1
    for d in dims:
        n *= d
    if not isinstance(dt, Static):
        raise Unsupported("empty dtype")
    try:
        dtype = S.check(np.dtype(dt.obj))
    except TypeError:
        raise Unsupported("empty dtype") from None
    return Arr(fc.stack_or_heap(dtype, n), [const(S.I64, d) for d in dims], dtype,
               n=const(S.I64, n))


# -- calls of other compiled functions ----------------------------------------------------

def _symbol_call(fc, args):
    """calls.call(ref, *args): a helper or kernel through its reference."""
    if not args or not isinstance(args[0], Static):
        raise Unsupported("calls.call form")
    ref = args[0].obj
    target = getattr(ref, "dispatcher", None)
    from .function import DirectFunction
    if isinstance(target, DirectFunction):
        return _direct_call(fc, target, args[1:])
    py_func = getattr(target, "py_func", None)
    if py_func is None:
        raise Unsupported("calls.call of an unknown reference")
    return _kernel_call(fc, py_func, args[1:])


def _flatten(fc, args, types):
    out = []
    for a, t in zip(args, types):
        if isinstance(t, type(None)):
            raise Unsupported("argument type")
        if isinstance(a, Arr):
            if a.type != t:
                raise Unsupported("array argument of another type")
            out += [a.ptr] + a.shape
        elif isinstance(a, Sc):
            if not isinstance(t, np.dtype):
                raise Unsupported("scalar passed for an array")
            out.append(fc.cast(a, t).v)
        else:
            raise Unsupported("compile-time object as an argument")
    return out


def _kernel_call(fc, py_func, args):
    types = []
    for a in args:
        if isinstance(a, (Arr, Sc)):
            types.append(a.type)
        else:
            raise Unsupported("compile-time object passed to a kernel")
    fn, rt = fc.mb.kernel(py_func, types)
    res = fc.b.call(fn, _flatten(fc, args, types))
    if rt is None:
        return Static(None)
    if isinstance(rt, TupT):
        return Tup(Sc(fc.b.extract_value(res, i), t) for i, t in enumerate(rt.types))
    return Sc(res, rt)


def _direct_call(fc, target, args):
    """A call of a function compiled directly in another module, by its symbol."""
    if len(args) != len(target.argtypes):
        raise Unsupported("helper called with another number of arguments")
    from .lower import param_types
    params = [p for t in target.argtypes for p in param_types(t)]
    ret = ir.VoidType() if target.rettype is None else S.ll(target.rettype)
    fn = fc.mb.declare(target.symbol, ir.FunctionType(ret, params))
    res = fc.b.call(fn, _flatten(fc, args, target.argtypes))
    return Static(None) if target.rettype is None else Sc(res, target.rettype)


def _small_gemm(fc, arg_nodes):
    """small_gemm.small_gemm: the register-blocked product, sizes and transposes compile-time
    integers (the same IR generator as under Numba)."""
    from .. import small_gemm as sg
    if len(arg_nodes) != 14:
        raise Unsupported("small_gemm form")
    lits = [fc.static_int(x) for x in arg_nodes[:5]]
    if any(v is None for v in lits):
        raise Unsupported("small_gemm sizes not constants")
    a, ao, lda, bb, bo, ldb, c, co, ldc = [fc.expr(x) for x in arg_nodes[5:]]
    if not all(isinstance(x, Arr) for x in (a, bb, c)) or not (
            a.dtype == bb.dtype == c.dtype) or not S.is_float(c.dtype):
        raise Unsupported("small_gemm operands")
    TA, TB, M, N, K = lits
    if not sg.supported(M, N, K, TB, c.dtype.itemsize):
        raise Unsupported("small_gemm sizes")
    b = fc.b

    def p(arr, off):
        return b.gep(arr.ptr, [fc.cast(off, S.I64).v])
    sg._emit_gemm(b, S.ll(c.dtype), TA, TB, M, N, K, p(a, ao), fc.cast(lda, S.I64).v,
                  p(bb, bo), fc.cast(ldb, S.I64).v, p(c, co), fc.cast(ldc, S.I64).v)
    return Static(None)
