"""Scalar lowering rules of elementwise primitives (they run inside fused loops).

A rule is ``rule(ctx, *args, **params) -> expression`` (or a list of expressions for a
primitive with several results), where ``args`` are scalar expressions of the operands and the
returned expression must have exactly the Numba type of the output dtype (``ctx.cast`` wraps
one). ``ctx.let(expr)`` binds a temporary, ``ctx.kernel(name)`` refers to a function of
``kernels.py``, ``ctx.in_dtypes``/``ctx.out_dtype`` give the dtypes.

Numba's scalar typing differs from NumPy's for small integers (int32 + int32 is int64), so
results of those are cast back, which gives NumPy's wrap-around semantics.
"""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedDtypeError
from .registry import (POINTWISE, SlowPath, register_identity, register_keeps_zero,  # noqa: F401
                       register_pointwise, register_zero_identity)


_BOOL = np.dtype(np.bool_)


def _wide(dt):
    """Dtypes whose Numba arithmetic stays in the same type (no cast needed)."""
    return dt in (np.float32, np.float64, np.int64, np.uint64)


def _fix(ctx, expr, dt=None):
    dt = np.dtype(ctx.out_dtype if dt is None else dt)
    return expr if _wide(dt) else ctx.cast(expr, dt)


def _is_float(dt):
    return np.dtype(dt).kind == "f"


def _no_complex(ctx):
    if any(np.dtype(d).kind == "c" for d in ctx.in_dtypes + [ctx.out_dtype]):
        raise UnsupportedDtypeError(f"jit: complex dtypes are not supported by the Numba backend "
                                  f"(primitive '{ctx.eqn.prim.name}')")


# ---------------------------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------------------------

def _binop(name, op, bool_op=None):
    @register_pointwise(name)
    def rule(ctx, x, y):
        _no_complex(ctx)
        if ctx.in_dtypes[0] == _BOOL:
            if bool_op is None:
                raise UnsupportedDtypeError(f"jit: '{name}' on booleans")
            return f"({x} {bool_op} {y})"
        return _fix(ctx, f"{x} {op} {y}")
    return rule


_binop("add", "+", "or")
_binop("sub", "-")
# x + 0, 0 + x and x - 0 are x (simplify.py drops them; -0.0 + 0.0 then stays -0.0)
register_zero_identity("add", (0, 1))
register_zero_identity("sub", (1,))
_binop("mul", "*", "and")


@register_pointwise("div")
def _div(ctx, x, y):
    _no_complex(ctx)
    dt = ctx.out_dtype
    if _is_float(dt):
        return f"{x} / {y}"
    if dt == _BOOL:
        raise UnsupportedDtypeError("jit: 'div' on booleans")
    if np.dtype(dt).kind == "u":     # idiv's signed fix-up would go through float64
        return _fix(ctx, f"{ctx.kernel('udiv')}({x}, {y})")
    return _fix(ctx, f"{ctx.kernel('idiv')}({x}, {y})")


@register_pointwise("rem")
def _rem(ctx, x, y):
    _no_complex(ctx)
    dt = ctx.out_dtype
    if _is_float(dt):
        return f"_np.fmod({x}, {y})"
    if np.dtype(dt).kind == "u":     # irem's signed fix-up would go through float64
        return _fix(ctx, f"{ctx.kernel('urem')}({x}, {y})")
    return _fix(ctx, f"{ctx.kernel('irem')}({x}, {y})")


@register_pointwise("pow")
def _pow(ctx, x, y):
    _no_complex(ctx)
    dt = ctx.out_dtype
    if dt == np.float32:
        return f"{ctx.kernel('pow_f32')}({x}, {y})"
    if dt == np.float64:
        return f"_math.pow({x}, {y})"
    if dt.kind == "u":
        return ctx.cast(f"{ctx.kernel('upow')}({x}, {y})", dt)
    if dt.kind == "i":
        return _fix(ctx, f"{ctx.kernel('ipow')}({x}, {y})")
    raise UnsupportedDtypeError(f"jit: pow on {dt}")


@register_pointwise("max")
def _max(ctx, x, y):
    _no_complex(ctx)
    dt = ctx.out_dtype
    if _is_float(dt):
        return f"{ctx.kernel('maxf')}({x}, {y})"
    if dt == _BOOL:
        return f"({x} or {y})"
    return f"({x} if {x} >= {y} else {y})"


@register_pointwise("min")
def _min(ctx, x, y):
    _no_complex(ctx)
    dt = ctx.out_dtype
    if _is_float(dt):
        return f"{ctx.kernel('minf')}({x}, {y})"
    if dt == _BOOL:
        return f"({x} and {y})"
    return f"({x} if {x} <= {y} else {y})"


def _logaddexp_rule(name, base2):
    """NumPy's form: max + log1p(exp(-|x - y|)) (base 2: max + log1p(2**-|d|) / ln 2), with
    log1p(u), u in [0, 1], as Goldberg's log(w) * u / (w - 1), w = 1 + u (u itself when w
    rounds to 1): a few ulp given our accurate log kernel. Ties (equal infinities included)
    give x + ln 2 (x + 1); a NaN operand NaN. Emitted inline rather than as one kernel: a
    kernel holding both exp and log is too big for LLVM to inline, and the loop would not
    vectorise. logaddexp2 runs in float64 (exact 2**-|d| by splitting off the integer part)."""
    @register_pointwise(name)
    def rule(ctx, x, y):
        dt = _float_only(ctx, name)
        if dt not in (np.float32, np.float64):
            raise NotImplementedError(f"jit: '{name}' on {dt}")
        wd = np.dtype(np.float64) if base2 else dt
        suf = "f32" if wd == np.float32 else "f64"
        one = ctx.lit(1, wd)
        xw, yw = (x, y) if wd == dt else (ctx.let(f"_np.float64({x})"),
                                          ctx.let(f"_np.float64({y})"))
        d = ctx.let(f"{xw} - {yw}")
        m = ctx.let(f"({xw} if {xw} > {yw} else {yw})")
        if base2:
            # 2**-a = 2**-k * exp(-(a - k) ln 2), k = floor(a): exact scaling, no error growth
            a = ctx.let(f"min(_np.abs({d}), 1100.0)")
            k = ctx.let(f"_np.floor({a})")
            u = ctx.let(f"{ctx.kernel('_scale_f64')}({ctx.kernel('exp_f64')}"
                        f"(({k} - {a}) * 0.6931471805599453), -{k})")
        else:
            u = ctx.let(f"{ctx.kernel('exp_' + suf)}(-_np.abs({d}))")
        w = ctx.let(f"{one} + {u}")
        lg = ctx.let(f"{ctx.kernel('log_' + suf)}({w}) * ({u} / ({w} - {one}))")
        lg = ctx.let(f"({lg} if {w} != {one} else {u})")
        if base2:
            r = ctx.let(f"{m} + {lg} * 1.4426950408889634")
            r = ctx.let(f"({r} if {d} == {d} else {d})")
            if dt != wd:
                r = ctx.let(ctx.cast(r, dt))
            tie = f"{x} + {ctx.lit(1, dt)}"
        else:
            r = ctx.let(f"{m} + {lg}")
            tie = f"{x} + {ctx.lit(0.6931471805599453, dt)}"
        return f"({r} if {x} != {y} else {tie})"
    return rule


_logaddexp_rule("logaddexp", False)
_logaddexp_rule("logaddexp2", True)


@register_pointwise("atan2")
def _atan2(ctx, x, y):
    _no_complex(ctx)
    return ctx.cast(f"_math.atan2({x}, {y})", ctx.out_dtype)


@register_pointwise("neg")
def _neg(ctx, x):
    _no_complex(ctx)
    if ctx.out_dtype == _BOOL:
        raise UnsupportedDtypeError("jit: 'neg' on booleans")
    return _fix(ctx, f"-{x}")


# ---------------------------------------------------------------------------------------------
# Unary math
# ---------------------------------------------------------------------------------------------

def _float_only(ctx, name):
    _no_complex(ctx)
    dt = ctx.out_dtype
    if not _is_float(dt):
        raise UnsupportedDtypeError(f"jit: '{name}' on {dt}")
    return dt


def _unary_kernel(name, f32, f64):
    """f32/f64: kernel name (own vectorisable kernel) or a template over `{x}`."""
    @register_pointwise(name)
    def rule(ctx, x):
        dt = _float_only(ctx, name)
        if dt == np.float32:
            impl = f32
        elif dt == np.float64:
            impl = f64
        else:
            impl = "_math.%s({x})" % name
        if "{" in impl:
            return ctx.cast(impl.format(x=x), dt)
        return f"{ctx.kernel(impl)}({x})"
    return rule


_unary_kernel("exp", "exp_f32", "exp_f64")
_unary_kernel("log", "log_f32", "log_f64")
_unary_kernel("tanh", "tanh_f32", "_math.tanh({x})")
_unary_kernel("logistic", "logistic_f32", "logistic_f64")
_unary_kernel("log1p", "_math.log1p({x})", "_math.log1p({x})")
_unary_kernel("expm1", "_math.expm1({x})", "_math.expm1({x})")
_unary_kernel("cbrt", "_np.cbrt({x})", "_np.cbrt({x})")
_unary_kernel("tan", "_math.tan(_np.float64({x}))", "_math.tan({x})")
for _n, _f in (("asin", "asin"), ("acos", "acos"), ("atan", "atan"), ("sinh", "sinh"),
               ("cosh", "cosh"), ("asinh", "asinh"), ("atanh", "atanh"), ("erf", "erf")):
    _unary_kernel(_n, f"_math.{_f}({{x}})", f"_math.{_f}({{x}})")


@register_pointwise("exp2")
def _exp2(ctx, x):
    dt = _float_only(ctx, "exp2")
    k = ctx.kernel("exp_f64")
    if dt == np.float32:
        return ctx.cast(f"{k}(_np.float64({x}) * 0.6931471805599453)", dt)
    # exp(x ln2) loses |x| ulps in float64: use libm's exact exp2 there
    return f"_np.exp2({x})"


def _count_big_sincos(ctx, x):
    return f"{ctx.kernel('sincos_big_f32')}({x})"


# the float32 kernels are exact below kernels.SINCOS_LIMIT_F32 (see sincos_big_f32): a nest
# with an argument beyond runs its exact version
_SINCOS_SLOW = SlowPath([np.float32], _count_big_sincos)


def _sincos(name):
    @register_pointwise(name, slow_path=_SINCOS_SLOW)
    def rule(ctx, x):
        dt = _float_only(ctx, name)
        if dt == np.float32:
            if ctx.exact:
                return f"{ctx.kernel(name + '_f32_exact')}({x})"
            ctx.count_big(f"{ctx.kernel('sincos_big_f32')}({x})")
            return f"{ctx.kernel(name + '_f32')}({x})"
        return ctx.cast(f"_math.{name}({x})", dt)
    return rule


_sincos("sin")
_sincos("cos")


@register_pointwise("sqrt")
def _sqrt(ctx, x):
    _float_only(ctx, "sqrt")
    return f"_np.sqrt({x})"


@register_pointwise("rsqrt")
def _rsqrt(ctx, x):
    dt = _float_only(ctx, "rsqrt")
    return f"{ctx.lit(1, dt)} / _np.sqrt({x})"


@register_pointwise("abs")
def _abs(ctx, x):
    _no_complex(ctx)
    dt = ctx.out_dtype
    if _is_float(dt):
        return f"_np.abs({x})"
    if dt.kind == "u" or dt == _BOOL:
        return x
    return _fix(ctx, f"abs({x})")


@register_pointwise("sign")
def _sign(ctx, x):
    _no_complex(ctx)
    dt = ctx.out_dtype
    if _is_float(dt):
        # NumPy: +-1 for +-inf too, +0 for both zeros, NaN stays NaN (selects: vectorises)
        one, mone, zero = ctx.lit(1, dt), ctx.lit(-1, dt), ctx.lit(0, dt)
        return f"({one} if {x} > 0 else ({mone} if {x} < 0 else ({zero} if {x} == 0 else {x})))"
    if dt == _BOOL:
        return x
    if dt.kind == "u":
        return ctx.cast(f"{x} > 0", dt)
    return ctx.cast(f"({x} > 0) - ({x} < 0)", dt)


def _rounding(name, template, kernel=None):
    @register_pointwise(name)
    def rule(ctx, x):
        _no_complex(ctx)
        if not _is_float(ctx.out_dtype):
            return x
        if kernel is not None:
            return f"{ctx.kernel(kernel)}({x})"
        return template.format(x=x)
    return rule


_rounding("floor", "_np.floor({x})")
_rounding("ceil", "_np.ceil({x})")
_rounding("round_even", "_np.rint({x})")
_rounding("round", None, kernel="round_away")


def power_by_squaring(ctx, x, n, mul):
    """Source of `x ** n` for a positive int `n`, unrolled into about 2 log2(n) products;
    `mul(a, b)`: source of the product of two expressions (typed as the output)."""
    acc, base = None, x
    while n:
        if n & 1:
            acc = base if acc is None else ctx.let(mul(acc, base))
        n >>= 1
        if n:
            base = ctx.let(mul(base, base))
    return acc


@register_pointwise("integer_pow")
def _integer_pow(ctx, x, *, y):
    _no_complex(ctx)
    dt = ctx.out_dtype
    if y == 0:
        return ctx.lit(1, dt)
    if dt.kind in "iu" and y < 0:
        # as the eager reference: a float64 power truncated back (0 ** -n is inf there)
        return ctx.cast(f"_math.pow(_np.float64({x}), {float(y)!r})", dt)
    if dt == _BOOL:
        return x
    n = abs(y)
    if n > 64:
        kernel = "upow" if dt.kind == "u" else "ipow"
        e = f"{x} ** {ctx.lit(n, dt)}" if _is_float(dt) else f"{ctx.kernel(kernel)}({x}, {n})"
    else:
        e = power_by_squaring(ctx, x, n, lambda a, b: _fix(ctx, f"{a} * {b}"))
    if y < 0:
        return f"{ctx.lit(1, dt)} / {e}"
    return e


# ---------------------------------------------------------------------------------------------
# Comparisons, logic, bits
# ---------------------------------------------------------------------------------------------

for _n, _op in (("eq", "=="), ("ne", "!="), ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">=")):
    def _cmp(ctx, x, y, _op=_op):
        _no_complex(ctx)
        return f"({x} {_op} {y})"
    register_pointwise(_n)(_cmp)


def _bitop(name, op, bool_op):
    @register_pointwise(name)
    def rule(ctx, x, y):
        if ctx.out_dtype == _BOOL:
            return f"({x} {bool_op} {y})"
        return _fix(ctx, f"{x} {op} {y}")
    return rule


_bitop("and", "&", "and")
_bitop("or", "|", "or")
_bitop("xor", "^", "!=")


@register_pointwise("not")
def _not(ctx, x):
    if ctx.out_dtype == _BOOL:
        return f"(not {x})"
    return ctx.cast(f"~{x}", ctx.out_dtype)


@register_pointwise("shift_left")
def _shl(ctx, x, y):
    # amounts >= the width or negative give 0 (NumPy and XLA)
    dt = ctx.out_dtype
    bits = dt.itemsize * 8
    c = ctx.cast
    # (typed zero: Numba unifies uint64 with an int64 literal as float64)
    return c(f"({c(x, dt)} << {c(y, dt)}) if 0 <= {y} < {bits} else {ctx.lit(0, dt)}", dt)


@register_pointwise("shift_right_logical")
def _shr_logical(ctx, x, y):
    # on the unsigned reading of the bits; amounts >= the width or negative give 0
    dt = ctx.out_dtype
    u = np.dtype(f"u{dt.itemsize}")
    bits = dt.itemsize * 8
    c = ctx.cast
    return c(f"({c(x, u)} >> {c(y, u)}) if 0 <= {y} < {bits} else {ctx.lit(0, u)}", dt)


@register_pointwise("shift_right_arithmetic")
def _shr_arithmetic(ctx, x, y):
    # on the signed reading of the bits; amounts >= the width or negative give -1 or 0 by sign
    dt = ctx.out_dtype
    i = np.dtype(f"i{dt.itemsize}")
    bits = dt.itemsize * 8
    c = ctx.cast
    xs = ctx.let(c(x, i))
    fill = f"({ctx.lit(-1, i)} if {xs} < 0 else {ctx.lit(0, i)})"
    return c(f"({xs} >> {c(y, i)}) if 0 <= {y} < {bits} else {fill}", dt)


@register_pointwise("is_finite")
def _is_finite(ctx, x):
    if not _is_float(ctx.in_dtypes[0]):
        return "True"
    return f"_np.isfinite({x})"


# ---------------------------------------------------------------------------------------------
# select_n, conversions
# ---------------------------------------------------------------------------------------------

@register_pointwise("select_n")
def _select_n(ctx, which, *cases):
    if ctx.in_dtypes[0] == _BOOL:
        if len(cases) == 1:
            return cases[0]
        return f"({cases[1]} if {which} else {cases[0]})"
    e = cases[-1]
    for i in range(len(cases) - 2, -1, -1):
        e = f"({cases[i]} if {which} == {i} else {e})"
    return e


# a conversion to the operand's own dtype is dropped before fusion
register_identity("convert_element_type", lambda eqn: True)
register_keeps_zero("convert_element_type")


@register_pointwise("convert_element_type")
def _convert(ctx, x, *, new_dtype, **_):
    src = np.dtype(ctx.in_dtypes[0])
    dst = np.dtype(new_dtype)
    if src.kind == "c" or dst.kind == "c":
        raise UnsupportedDtypeError("jit: complex dtypes are not supported by the Numba backend")
    if dst == src:
        return x
    if dst == _BOOL:
        return f"({x} != 0)"
    if src.kind == "f" and dst.kind in "iu":
        # saturating, as the eager impl (and XLA): NaN -> 0, out of range -> min/max
        from ...lax.elementwise import float_to_int_bounds
        lo, hi = float_to_int_bounds(dst)
        info = np.iinfo(dst)
        xv = ctx.let(x)
        return (f"({ctx.lit(info.max, dst)} if {xv} >= {hi!r} else ({ctx.lit(info.min, dst)} "
                f"if {xv} < {lo!r} else ({ctx.cast(xv, dst)} if {xv} == {xv} else "
                f"{ctx.lit(0, dst)})))")
    return ctx.cast(x, dst)


@register_pointwise("copy")
def _copy(ctx, x):
    return x


@register_pointwise("bitcast_convert_type")
def _bitcast(ctx, x, *, new_dtype):
    src = np.dtype(ctx.in_dtypes[0])
    dst = np.dtype(new_dtype)
    if src == dst:
        return x
    pairs = {("int32", "float32"): "i32_as_f32", ("uint32", "float32"): "i32_as_f32",
             ("float32", "int32"): "f32_as_i32", ("int64", "float64"): "i64_as_f64",
             ("float64", "int64"): "f64_as_i64", ("uint64", "float64"): "i64_as_f64"}
    k = pairs.get((src.name, dst.name))
    if k is not None:
        return f"{ctx.kernel(k)}({x})"
    if src.kind in "iu" and dst.kind in "iu" and src.itemsize == dst.itemsize:
        return ctx.cast(x, dst)          # same width integers: two's complement wrap
    if (src.name, dst.name) == ("float32", "uint32"):
        return ctx.cast(f"{ctx.kernel('f32_as_i32')}({x})", dst)
    if (src.name, dst.name) == ("float64", "uint64"):
        return ctx.cast(f"{ctx.kernel('f64_as_i64')}({x})", dst)
    raise UnsupportedDtypeError(f"jit: bitcast_convert_type {src} -> {dst}")


@register_pointwise("threefry2x32")
def _threefry(ctx, k0, k1, x0, x1):
    t = ctx.let(f"{ctx.kernel('threefry2x32')}({k0}, {k1}, {x0}, {x1})")
    return [f"{t}[0]", f"{t}[1]"]
