"""Elementwise primitives: arithmetic, math, comparisons, select, dtype conversion.

Operands of a primitive have equal shapes and dtypes (the `lax` wrappers broadcast and
promote). Every primitive's rules sit right below it. JVP rules receive `None` for a zero
tangent. Batching is generic for all of them (`defvectorized`: align the batch axes,
broadcast unbatched operands, bind once), set where each primitive is created.
"""
from __future__ import annotations

import math

import numpy as np

from ..core import Primitive, ShapedArray, Tracer, get_aval
from ..interpreters.partial_eval import keep_weak
from ..interpreters.batching import defvectorized
from ..source_info import where
from ._util import as_array, bind_new_dtype, check_same_dtypes, check_same_shapes, is_undefined

ELEMENTWISE = set()     # names of elementwise primitives (fusable, trivially batchable)


def _same_aval(*avals, **_):
    check_same_shapes("elementwise", avals)
    return avals[0]


_KIND_NAMES = {"b": "bool", "i": "signed integer", "u": "unsigned integer", "f": "floating",
               "c": "complex floating"}


def _check_kinds(name, aval, kinds):
    """TypeError (as JAX's) for an operand whose dtype kind the primitive does not accept:
    NumPy raises it eagerly, and the compiled code would have no such operation either."""
    if kinds is not None and aval.dtype.kind not in kinds:
        raise TypeError(f"{name} does not accept dtype {aval.dtype.name} (accepted: "
                        f"{', '.join(_KIND_NAMES[k] for k in kinds)}){where()}")


def _elementwise(name, impl, arity, out_dtype=None, kinds=None):
    """The primitive `name` of `arity` operands of one shape and dtype (of the dtype `kinds`
    when given), computed by `impl`; its output has that shape and `out_dtype` (default: the
    operands'). Batching is `defvectorized`; the backend fuses it (ELEMENTWISE)."""
    p = Primitive(name)
    p.def_impl(impl)

    def abstract_eval(*xs, **_):
        if len(xs) != arity:
            raise TypeError(f"{name} takes {arity} operand(s), got {len(xs)}")
        if arity > 1:
            check_same_shapes(name, xs)
            check_same_dtypes(name, xs)
        _check_kinds(name, xs[0], kinds)
        return xs[0] if out_dtype is None else ShapedArray(xs[0].shape, out_dtype)

    p.def_abstract_eval(abstract_eval)
    defvectorized(p)
    ELEMENTWISE.add(name)
    return p


def _unary(name, impl, out_dtype=None, kinds=None):
    return _elementwise(name, impl, 1, out_dtype, kinds)


def _binary(name, impl, out_dtype=None, kinds=None):
    return _elementwise(name, impl, 2, out_dtype, kinds)


_ARRAYS = (np.ndarray, Tracer)

# ---------------------------------------------------------------------------------------------
# lax-level wrappers: numpy-style broadcasting and scalar handling for rule code
# ---------------------------------------------------------------------------------------------

def _prep(x, y):
    """Make two operands bindable: scalars take the other's dtype; shapes broadcast."""
    if isinstance(x, _ARRAYS) and isinstance(y, _ARRAYS) and x.dtype == y.dtype and \
            x.shape == y.shape:
        return x, y                                  # the common case, kept cheap
    xt, yt = isinstance(x, (Tracer, np.ndarray, np.generic)), isinstance(y, (Tracer, np.ndarray,
                                                                            np.generic))
    if not xt and not yt and np.asarray(x).dtype.kind != np.asarray(y).dtype.kind:
        raise _scalar_kind_error(x, np.asarray(y).dtype)   # two Python scalars, as in JAX
    if not xt:
        x = _scalar_as(x, get_aval(y).dtype if yt else None)
    if not yt:
        y = _scalar_as(y, get_aval(x).dtype)
    ax, ay = get_aval(x), get_aval(y)
    if ax.dtype != ay.dtype:
        # a weakly typed tracer (a Python scalar passed to jit) adapts as the scalar does
        # eagerly: jit(lax.add)(x_f32, 2.0) is float32 like lax.add(x_f32, 2.0)
        wx, wy = _is_weak(x), _is_weak(y)
        if wx != wy:
            weak, strong = (x, ay.dtype) if wx else (y, ax.dtype)
            _scalar_as(_WEAK_STANDIN[get_aval(weak).dtype.kind], strong)   # kind check
            weak = convert_element_type(weak, strong)
            x, y = (weak, y) if wx else (x, weak)
            ax, ay = get_aval(x), get_aval(y)
    if ax.dtype != ay.dtype:
        dt = np.result_type(ax.dtype, ay.dtype)
        x, y = convert_element_type(x, dt), convert_element_type(y, dt)
    if ax.shape != ay.shape:
        from .shape import broadcast_to
        try:
            shape = np.broadcast_shapes(ax.shape, ay.shape)
        except ValueError:
            from ..errors import ShapeError
            from ..source_info import where
            raise ShapeError(f"incompatible shapes for broadcasting: {ax.shape} and {ay.shape}"
                             f"{where()}") from None
        x, y = broadcast_to(x, shape), broadcast_to(y, shape)
    return x, y


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


_WEAK_STANDIN = {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}


def _is_weak(x):
    return isinstance(x, Tracer) and x.weak_type


def _scalar_as(v, dtype):
    """Python scalar (or sequence) `v` as an array of `dtype`, the other operand's. It is weakly
    typed: it adapts to `dtype` when that is of its kind or a wider one (an int to a float
    array, as the rules need), never to a narrower kind, which would change its value silently
    (`lax.add(1, 1.5)` giving 2, `lax.mul(int_array, 0.5)` giving zeros): that is JAX's
    TypeError (lax operands must have equal dtypes)."""
    a = np.asarray(v)
    if dtype is None or a.dtype == dtype:
        return a
    if _KIND_RANK.get(a.dtype.kind, 9) > _KIND_RANK.get(np.dtype(dtype).kind, -1):
        raise _scalar_kind_error(v, dtype)
    return np.asarray(v, dtype=dtype)


def _scalar_kind_error(v, dtype):
    from ..source_info import where
    return TypeError(
        f"lax operations require arguments of the same dtype, got {np.asarray(v).dtype.name} "
        f"(the Python {type(v).__name__} {v!r}) and {np.dtype(dtype).name}: a Python scalar "
        f"adapts only to a dtype of its own kind. Convert explicitly "
        f"(lax.convert_element_type), or use transforms.numpy, which promotes{where()}")


def _bin_fn(p):
    # JAX's primitives keep weak types: the result of weak operands only is weak
    def fn(x, y):
        return keep_weak(p.bind(*_prep(x, y)), x, y)
    fn.__name__ = p.name
    return fn


def _un_fn(p):
    def fn(x):
        return keep_weak(p.bind(as_array(x)), x)
    fn.__name__ = p.name
    return fn


# ---------------------------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------------------------

add_p = _binary("add", np.add)
# NumPy has no boolean subtract and no complex fmod: rejecting those kinds at tracing time makes
# jit raise the TypeError eager code raises (JAX's lax rejects them too)
sub_p = _binary("sub", np.subtract, kinds="iufc")
mul_p = _binary("mul", np.multiply)
div_p = _binary("div", lambda x, y: _div_impl(x, y))
rem_p = _binary("rem", lambda x, y: np.fmod(x, y), kinds="iuf")
pow_p = _binary("pow", np.power)
max_p = _binary("max", np.maximum)
min_p = _binary("min", np.minimum)
atan2_p = _binary("atan2", np.arctan2)
neg_p = _unary("neg", np.negative)


def _div_impl(x, y):
    # lax.div on integers rounds toward zero (C semantics); tnp builds floor_divide on top.
    if np.issubdtype(np.result_type(x), np.integer):
        q = np.floor_divide(x, y)
        return np.where((np.remainder(x, y) != 0) & ((x < 0) != (y < 0)), q + 1, q).astype(
            np.result_type(x))
    return np.true_divide(x, y)


add, sub, mul, div, rem, pow, max, min, atan2 = map(   # noqa: A001
    _bin_fn, (add_p, sub_p, mul_p, div_p, rem_p, pow_p, max_p, min_p, atan2_p))
neg = _un_fn(neg_p)


def add_tangents(a, b):
    """`a + b` where either may be None (a symbolic zero tangent or cotangent)."""
    if a is None:
        return b
    if b is None:
        return a
    return add(a, b)


def zeros_like_aval(a):
    from .shape import full
    return full(a.shape, 0, a.dtype)


def instantiate(t, like):
    """A zero tangent (None) made concrete with the shape/dtype of `like` (a value or aval)."""
    if t is not None:
        return t
    a = like if isinstance(like, ShapedArray) else get_aval(like)
    return zeros_like_aval(a)


def _linear_binary_transpose(sign_y):
    def rule(ct, x, y):
        return [ct if is_undefined(x) else None,
                (ct if sign_y > 0 else neg(ct)) if is_undefined(y) else None]
    return rule


add_p.def_jvp(lambda p, t: (add(*p), add_tangents(*t)))
add_p.def_transpose(_linear_binary_transpose(+1))
sub_p.def_jvp(lambda p, t: (sub(*p), t[0] if t[1] is None else
                            neg(t[1]) if t[0] is None else sub(t[0], t[1])))
sub_p.def_transpose(_linear_binary_transpose(-1))
neg_p.def_jvp(lambda p, t: (neg(p[0]), neg(t[0])))
neg_p.def_transpose(lambda ct, x: [neg(ct)])


@mul_p.def_jvp
def _mul_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    return mul(x, y), add_tangents(None if tx is None else mul(tx, y),
                                    None if ty is None else mul(x, ty))


@mul_p.def_transpose
def _mul_transpose(ct, x, y):
    if is_undefined(x) and is_undefined(y):
        raise TypeError("mul is not linear in both operands")
    if is_undefined(x):
        return [mul(ct, y), None]
    return [None, mul(x, ct)]


@div_p.def_jvp
def _div_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    out = div(x, y)
    t = None if tx is None else div(tx, y)
    if ty is not None:
        t = add_tangents(t, neg(mul(ty, div(out, y))))
    return out, t


@div_p.def_transpose
def _div_transpose(ct, x, y):
    if is_undefined(y):
        raise TypeError("div is not linear in its denominator")
    return [div(ct, y), None]


@rem_p.def_jvp
def _rem_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    out = rem(x, y)
    t = tx
    if ty is not None:
        t = add_tangents(t, neg(mul(ty, trunc(div(x, y)))))
    return out, t


def trunc(x):
    return select(lt(x, 0), ceil(x), floor(x))


@pow_p.def_jvp
def _pow_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    out = pow(x, y)
    t = None
    if tx is not None:
        # y * x**(y-1), written to stay finite at x == 0 for y >= 1
        t = mul(tx, mul(y, pow(x, sub(y, 1))))
    if ty is not None:
        safe_x = select(eq(x, 0), full_like(x, 1), x)
        t = add_tangents(t, mul(ty, select(eq(x, 0), full_like(x, 0), mul(out, log(safe_x)))))
    return out, t


def full_like(x, v):
    from .shape import full
    a = get_aval(x)
    return full(a.shape, v, a.dtype)


def _minmax_jvp(fn, pick_x):
    def rule(primals, tangents):
        x, y = primals
        tx, ty = tangents
        out = fn(x, y)
        # ties split the tangent equally, as JAX does
        wx = select(pick_x(x, y), full_like(x, 1), select(eq(x, y), full_like(x, 0.5),
                                                          full_like(x, 0)))
        t = None
        if tx is not None:
            t = mul(tx, wx)
        if ty is not None:
            t = add_tangents(t, mul(ty, sub(1, wx)))
        return out, t
    return rule


max_p.def_jvp(_minmax_jvp(max, lambda x, y: gt(x, y)))
min_p.def_jvp(_minmax_jvp(min, lambda x, y: lt(x, y)))


@atan2_p.def_jvp
def _atan2_jvp(primals, tangents):
    y, x = primals
    ty, tx = tangents
    denom = add(mul(x, x), mul(y, y))
    t = None if ty is None else mul(ty, div(x, denom))
    if tx is not None:
        t = add_tangents(t, neg(mul(tx, div(y, denom))))
    return atan2(y, x), t


# ---------------------------------------------------------------------------------------------
# logaddexp, logaddexp2: log(e**x + e**y) and log2(2**x + 2**y) as NumPy computes them
# (max + log1p(exp(-|x - y|)): exact to the last bits when one term is far below the other).
# Not lax primitives in JAX (jnp.logaddexp is a custom_jvp there); here one primitive each so
# that eager mode is NumPy's own ufunc and the Numba backend has one fused kernel.
# ---------------------------------------------------------------------------------------------

def _np_logaddexp(ufunc):
    def impl(x, y):
        x, y = np.asarray(x), np.asarray(y)
        with np.errstate(invalid="ignore"):
            return ufunc(x, y).astype(x.dtype, copy=False)
    return impl


logaddexp_p = _binary("logaddexp", _np_logaddexp(np.logaddexp))
logaddexp2_p = _binary("logaddexp2", _np_logaddexp(np.logaddexp2))
logaddexp, logaddexp2 = _bin_fn(logaddexp_p), _bin_fn(logaddexp2_p)


def _logaddexp_jvp(fn, scale):
    def rule(primals, tangents):
        # d/dx = e**x / (e**x + e**y) = logistic(x - y): finite for infinite operands; ties
        # (equal infinities included) split evenly, as the max in the formula does
        x, y = primals
        tx, ty = tangents
        half = full_like(x, 0.5)
        tie = eq(x, y)
        d = sub(x, y) if scale == 1 else mul(sub(x, y), scale)
        wx = select(tie, half, logistic(d))
        wy = select(tie, half, logistic(neg(d)))
        t = None if tx is None else mul(tx, wx)
        if ty is not None:
            t = add_tangents(t, mul(ty, wy))
        return fn(x, y), t
    return rule


logaddexp_p.def_jvp(_logaddexp_jvp(logaddexp, 1))
logaddexp2_p.def_jvp(_logaddexp_jvp(logaddexp2, math.log(2.0)))


# ---------------------------------------------------------------------------------------------
# Unary math
# ---------------------------------------------------------------------------------------------

def _np_logistic(x):
    x = np.asarray(x)
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-x))).astype(x.dtype, copy=False)


def _np_rsqrt(x):
    x = np.asarray(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1 / np.sqrt(x)).astype(x.dtype, copy=False)


def _np_erf(x):
    # Imported on first use: scipy.special takes about a third of `import transforms`.
    from scipy import special
    x = np.asarray(x)
    return special.erf(x).astype(x.dtype, copy=False)


def _np_round(x):
    # lax.round rounds half away from zero; tnp.round uses half-to-even (NumPy's rule)
    return np.copysign(np.floor(np.abs(x) + 0.5), x).astype(np.asarray(x).dtype, copy=False)


exp_p = _unary("exp", np.exp)
exp2_p = _unary("exp2", np.exp2)
log_p = _unary("log", np.log)
log1p_p = _unary("log1p", np.log1p)
expm1_p = _unary("expm1", np.expm1)
cbrt_p = _unary("cbrt", np.cbrt)
tanh_p = _unary("tanh", np.tanh)
logistic_p = _unary("logistic", _np_logistic)
sin_p = _unary("sin", np.sin)
cos_p = _unary("cos", np.cos)
tan_p = _unary("tan", np.tan)
asin_p = _unary("asin", np.arcsin)
acos_p = _unary("acos", np.arccos)
atan_p = _unary("atan", np.arctan)
sinh_p = _unary("sinh", np.sinh)
cosh_p = _unary("cosh", np.cosh)
asinh_p = _unary("asinh", np.arcsinh)
atanh_p = _unary("atanh", np.arctanh)
sqrt_p = _unary("sqrt", np.sqrt)
rsqrt_p = _unary("rsqrt", _np_rsqrt)
erf_p = _unary("erf", _np_erf)
abs_p = _unary("abs", np.abs)
abs_p.def_abstract_eval(lambda x: ShapedArray(
    x.shape, np.finfo(x.dtype).dtype if x.dtype.kind == "c" else x.dtype))   # |complex| is real
sign_p = _unary("sign", np.sign, kinds="iufc")
floor_p = _unary("floor", np.floor)
ceil_p = _unary("ceil", np.ceil)
round_p = _unary("round", _np_round)
round_even_p = _unary("round_even", np.rint)

(exp, exp2, log, log1p, expm1, cbrt, tanh, logistic, sin, cos, tan, asin, acos, atan, sinh, cosh,
 asinh, atanh, sqrt, rsqrt, erf, abs, sign, floor, ceil, round, round_even) = map(  # noqa: A001
    _un_fn, (exp_p, exp2_p, log_p, log1p_p, expm1_p, cbrt_p, tanh_p, logistic_p, sin_p, cos_p,
             tan_p, asin_p, acos_p, atan_p, sinh_p, cosh_p, asinh_p, atanh_p, sqrt_p, rsqrt_p,
             erf_p, abs_p, sign_p, floor_p, ceil_p, round_p, round_even_p))


def _unary_jvp(p, fn, deriv):
    """JVP of y = fn(x): t * deriv(x, y)."""
    def rule(primals, tangents):
        x, = primals
        y = fn(x)
        return y, mul(tangents[0], deriv(x, y))
    p.def_jvp(rule)


_LN2 = math.log(2.0)
_unary_jvp(exp_p, exp, lambda x, y: y)
_unary_jvp(exp2_p, exp2, lambda x, y: mul(y, _LN2))
_unary_jvp(log_p, log, lambda x, y: div(1, x))
_unary_jvp(log1p_p, log1p, lambda x, y: div(1, add(x, 1)))
_unary_jvp(expm1_p, expm1, lambda x, y: add(y, 1))
# d/dx x^(1/3) = 1 / (3 y^2): infinite at 0, as JAX's rule
_unary_jvp(cbrt_p, cbrt, lambda x, y: div(1, mul(3, mul(y, y))))
_unary_jvp(tanh_p, tanh, lambda x, y: sub(1, mul(y, y)))
_unary_jvp(logistic_p, logistic, lambda x, y: mul(y, sub(1, y)))
_unary_jvp(sin_p, sin, lambda x, y: cos(x))
_unary_jvp(cos_p, cos, lambda x, y: neg(sin(x)))
_unary_jvp(tan_p, tan, lambda x, y: add(1, mul(y, y)))
_unary_jvp(asin_p, asin, lambda x, y: rsqrt(sub(1, mul(x, x))))
_unary_jvp(acos_p, acos, lambda x, y: neg(rsqrt(sub(1, mul(x, x)))))
_unary_jvp(atan_p, atan, lambda x, y: div(1, add(1, mul(x, x))))
_unary_jvp(sinh_p, sinh, lambda x, y: cosh(x))
_unary_jvp(cosh_p, cosh, lambda x, y: sinh(x))
_unary_jvp(asinh_p, asinh, lambda x, y: rsqrt(add(mul(x, x), 1)))
_unary_jvp(atanh_p, atanh, lambda x, y: div(1, sub(1, mul(x, x))))
_unary_jvp(sqrt_p, sqrt, lambda x, y: div(0.5, y))
_unary_jvp(rsqrt_p, rsqrt, lambda x, y: mul(div(y, x), -0.5))
_unary_jvp(erf_p, erf, lambda x, y: mul(exp(neg(mul(x, x))), 2.0 / math.sqrt(math.pi)))


@abs_p.def_jvp
def _abs_jvp(primals, tangents):
    x, = primals
    t, = tangents
    y = abs(x)
    if get_aval(x).dtype.kind != "c":
        # JAX's convention: t where x >= 0 (so d|x|/dx = 1 at 0 and -0), -t elsewhere (NaN too)
        return y, select(ge(x, full_like(x, 0)), t, neg(t))
    # |z| is not holomorphic: d|z| = Re(conj(z) dz) / |z| (0 at z = 0), a real tangent
    from .complex import conj, real
    safe = select(eq(y, 0), full_like_aval(get_aval(y), 1), y)
    return y, div(real(mul(conj(x), t)), safe)


def full_like_aval(a, v):
    from .shape import full
    return full(a.shape, v, a.dtype)

for _p, _f in ((sign_p, sign), (floor_p, floor), (ceil_p, ceil), (round_p, round),
               (round_even_p, round_even)):
    # piecewise constant: zero derivative almost everywhere
    _p.def_jvp(lambda primals, tangents, _f=_f: (_f(primals[0]), None))


integer_pow_p = Primitive("integer_pow")
ELEMENTWISE.add("integer_pow")


@integer_pow_p.def_impl
def _integer_pow_impl(x, *, y):
    x = np.asarray(x)
    if y == 2:
        return np.multiply(x, x)
    return np.power(x, y).astype(x.dtype, copy=False) if y >= 0 or x.dtype.kind == "f" \
        else np.power(x.astype(np.float64), y).astype(x.dtype)


integer_pow_p.def_abstract_eval(lambda x, *, y: x)
defvectorized(integer_pow_p)


def integer_pow(x, y: int):
    return keep_weak(integer_pow_p.bind(as_array(x), y=int(y)), x)


@integer_pow_p.def_jvp
def _integer_pow_jvp(primals, tangents, *, y):
    x, = primals
    out = integer_pow(x, y)
    if y == 0:
        return out, None
    if y == 1:
        return out, tangents[0]
    d = mul(x, float(y)) if y == 2 else mul(integer_pow(x, y - 1), float(y))
    return out, mul(tangents[0], d)


# ---------------------------------------------------------------------------------------------
# Comparisons, logic, bit operations (no derivatives: outputs are not differentiable)
# ---------------------------------------------------------------------------------------------

_BOOL = np.dtype(np.bool_)
eq_p = _binary("eq", np.equal, _BOOL)
ne_p = _binary("ne", np.not_equal, _BOOL)
lt_p = _binary("lt", np.less, _BOOL)
le_p = _binary("le", np.less_equal, _BOOL)
gt_p = _binary("gt", np.greater, _BOOL)
ge_p = _binary("ge", np.greater_equal, _BOOL)
and_p = _binary("and", np.bitwise_and, kinds="biu")
or_p = _binary("or", np.bitwise_or, kinds="biu")
xor_p = _binary("xor", np.bitwise_xor, kinds="biu")


def _same_width(dt, kind):
    return np.dtype(f"{kind}{np.dtype(dt).itemsize}")


def _np_shift_left(x, y):
    # NumPy and XLA agree: a shift by >= the bit width, or by a negative amount, gives 0
    x, y = np.asarray(x), np.asarray(y)
    return np.left_shift(x, y).astype(x.dtype, copy=False)


def _np_shift_right_logical(x, y):
    # zeros shifted in whatever the sign; amounts >= the width (or negative) give 0 (XLA)
    x, y = np.asarray(x), np.asarray(y)
    u = _same_width(x.dtype, "u")
    return np.right_shift(x.view(u), y.astype(u)).astype(u, copy=False).view(x.dtype)


def _np_shift_right_arithmetic(x, y):
    # copies of the sign bit shifted in (the bits read as signed, unsigned types too, as XLA);
    # amounts >= the width (or negative) give -1 or 0 by sign, as NumPy's right_shift
    x, y = np.asarray(x), np.asarray(y)
    i = _same_width(x.dtype, "i")
    yy = np.where((y >= 0) & (y < 8 * x.dtype.itemsize), y, 8 * x.dtype.itemsize - 1)
    return np.right_shift(x.view(i), yy.astype(i)).astype(i, copy=False).view(x.dtype)


shift_left_p = _binary("shift_left", _np_shift_left, kinds="iu")
shift_right_logical_p = _binary("shift_right_logical", _np_shift_right_logical,
                                kinds="iu")
shift_right_arithmetic_p = _binary("shift_right_arithmetic", _np_shift_right_arithmetic,
                                   kinds="iu")
not_p = _unary("not", lambda x: np.invert(x), kinds="biu")
is_finite_p = _unary("is_finite", np.isfinite, _BOOL)

(eq, ne, lt, le, gt, ge, bitwise_and, bitwise_or, bitwise_xor, shift_left, shift_right_logical,
 shift_right_arithmetic) = map(
    _bin_fn, (eq_p, ne_p, lt_p, le_p, gt_p, ge_p, and_p, or_p, xor_p, shift_left_p,
              shift_right_logical_p, shift_right_arithmetic_p))
bitwise_not = _un_fn(not_p)
is_finite = _un_fn(is_finite_p)

for _p in (eq_p, ne_p, lt_p, le_p, gt_p, ge_p, and_p, or_p, xor_p, shift_left_p,
           shift_right_logical_p, shift_right_arithmetic_p, not_p, is_finite_p):
    _p.def_jvp(lambda primals, tangents, _p=_p, **params: (_p.bind(*primals, **params), None))


# ---------------------------------------------------------------------------------------------
# select_n and convert_element_type
# ---------------------------------------------------------------------------------------------

select_n_p = Primitive("select_n")
ELEMENTWISE.add("select_n")


_SAME_SIZE_INT = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}


@select_n_p.def_impl
def _select_n_impl(which, *cases):
    which = np.asarray(which)
    if len(cases) == 2 and which.dtype == np.bool_:
        f, t = np.asarray(cases[0]), np.asarray(cases[1])
        it = _SAME_SIZE_INT.get(t.dtype.itemsize) if t.dtype.kind in "fiub" else None
        if it is not None and t.size >= 1024 and t.shape == f.shape == which.shape and \
                t.dtype == f.dtype:
            # Exact and branch-free on the bit patterns: f ^ ((t ^ f) & -which). np.where
            # mispredicts on irregular masks (relu, where) and is ~20x slower on large arrays.
            fb = f.view(it)
            mask = which.astype(it)
            np.negative(mask, out=mask)
            out = np.bitwise_xor(t.view(it), fb)
            out &= mask
            out ^= fb
            return out.view(t.dtype)
        return np.where(which, t, f)
    return np.choose(np.asarray(which, dtype=np.int64), cases)


@select_n_p.def_abstract_eval
def _select_n_abstract(which, *cases):
    check_same_shapes("select_n", (which,) + cases)
    check_same_dtypes("select_n", cases)
    if which.dtype != _BOOL and not np.issubdtype(which.dtype, np.integer):
        raise TypeError(f"select_n: predicate must be bool or int, got {which.dtype}")
    return cases[0]


defvectorized(select_n_p)


def _check_which(which):
    """The predicate's dtype, checked eagerly too (the shape rule runs only when tracing)."""
    dt = get_aval(which).dtype
    if dt != _BOOL and not np.issubdtype(dt, np.integer):
        raise TypeError(f"select: the predicate must be bool or integer, got {dt}{where()}")


def select_n(which, *cases):
    """`cases[which]` elementwise (lax.select_n): `which` bool or integer."""
    which = as_array(which)
    _check_which(which)
    return keep_weak(select_n_p.bind(which, *cases), *cases)   # the predicate does not count


def select(pred, on_true, on_false):
    """`on_true` where `pred` else `on_false` (lax.select); operands broadcast."""
    on_true, on_false = _prep(on_true, on_false)
    pred = as_array(pred)
    _check_which(pred)
    a = get_aval(on_true)
    if get_aval(pred).shape != a.shape:
        from .shape import broadcast_to
        pred = broadcast_to(pred, a.shape)
    return keep_weak(select_n_p.bind(pred, on_false, on_true), on_true, on_false)


@select_n_p.def_jvp
def _select_n_jvp(primals, tangents):
    which, *cases = primals
    out = select_n(which, *cases)
    if all(t is None for t in tangents[1:]):
        return out, None
    ts = [instantiate(t, c) for t, c in zip(tangents[1:], cases)]
    return out, select_n(which, *ts)


@select_n_p.def_transpose
def _select_n_transpose(ct, which, *cases):
    if is_undefined(which):
        raise TypeError("select_n is not linear in its predicate")
    zeros = None
    out = [None]
    for i, c in enumerate(cases):
        if is_undefined(c):
            if zeros is None:
                zeros = zeros_like_aval(c.aval)
            branches = [zeros] * len(cases)
            branches[i] = ct
            out.append(select_n(which, *branches))
        else:
            out.append(None)
    return out


convert_element_type_p = Primitive("convert_element_type")
ELEMENTWISE.add("convert_element_type")


def float_to_int_bounds(new_dtype):
    """(lo, hi) of the integer dtype as exact floats: a truncated float t is in range iff
    lo <= t < hi (powers of two, exact in every float type)."""
    info = np.iinfo(new_dtype)
    if new_dtype.kind == "u":
        return 0.0, 2.0 ** info.bits
    return -2.0 ** (info.bits - 1), 2.0 ** (info.bits - 1)


@convert_element_type_p.def_impl
def _convert_impl(x, *, new_dtype):
    x = np.asarray(x)
    if x.dtype.kind == "c" and new_dtype.kind != "c":
        x = x.real                  # complex -> real keeps the real part (as JAX), no warning
    if x.dtype == np.bool_ or new_dtype.kind not in "iu" or x.dtype.kind in "iub":
        return x.astype(new_dtype)
    # float -> int truncates toward zero (C); values C leaves undefined saturate as in JAX
    # (XLA): NaN -> 0, +inf and too large -> the max, -inf and too small -> the min (0 for
    # unsigned types). The Numba lowering computes the same.
    lo, hi = float_to_int_bounds(new_dtype)
    info = np.iinfo(new_dtype)
    with np.errstate(invalid="ignore"):
        t = np.trunc(x)
        big, small, nan = t >= hi, t < lo, np.isnan(x)
        out = np.where(big | small | nan, 0, t).astype(new_dtype)
    if big.any() or small.any():
        out = np.where(big, info.max, np.where(small, info.min, out)).astype(new_dtype)
    return out


convert_element_type_p.def_abstract_eval(
    lambda x, *, new_dtype: ShapedArray(x.shape, new_dtype))
defvectorized(convert_element_type_p)


def convert_element_type(x, dtype):
    return bind_new_dtype(convert_element_type_p, x, dtype)


@convert_element_type_p.def_jvp
def _convert_jvp(primals, tangents, *, new_dtype):
    out = convert_element_type(primals[0], new_dtype)
    t = tangents[0]
    if new_dtype.kind not in "fc" or t is None:
        return out, None
    return out, convert_element_type(t, new_dtype)


@convert_element_type_p.def_transpose
def _convert_transpose(ct, x, *, new_dtype):
    return [convert_element_type(ct, x.aval.dtype)]
