"""Array creation, elementwise math and reductions with NumPy 2 signatures and dtype rules."""
from __future__ import annotations

import builtins

import numpy as np

from .. import lax
from ..lax.complex import real_dtype as _real_dtype
from ..core import EVAL_TRACE, Tracer, current_trace, get_aval
from ..interpreters.partial_eval import strengthened
from ._promote import (asarray_of, dtype_of, keep_weak, promote, result_type, to_float,
                       ufunc_dtype, ufunc_result_dtype)



class _ScalarMeta(type):
    """Metaclass of `tnp.float32` and friends (as `jnp.float32`): the class is a dtype wherever
    NumPy takes one (its `dtype` attribute), calling it converts a traced or concrete value,
    and it compares equal to NumPy's scalar type."""

    def __call__(cls, x=0):
        if isinstance(x, Tracer) or (isinstance(x, (list, tuple)) and _contains_tracer(x)):
            return lax.convert_element_type(asarray(x), cls.dtype)
        return cls.type(x)

    def __eq__(cls, other):
        if isinstance(other, _ScalarMeta):
            return cls.dtype == other.dtype
        try:
            return cls.dtype == np.dtype(other)
        except TypeError:
            return NotImplemented

    def __hash__(cls):
        return hash(cls.dtype)

    def __instancecheck__(cls, inst):
        return isinstance(inst, cls.type)

    def __repr__(cls):
        return f"tnp.{cls.__name__}"


def _ScalarType(np_type):
    return _ScalarMeta(np_type.__name__, (), {"dtype": np.dtype(np_type), "type": np_type,
                                              "__module__": "transforms.numpy"})


float16, float32, float64 = map(_ScalarType, (np.float16, np.float32, np.float64))
int8, int16, int32, int64 = map(_ScalarType, (np.int8, np.int16, np.int32, np.int64))
uint8, uint16, uint32, uint64 = map(_ScalarType, (np.uint8, np.uint16, np.uint32, np.uint64))
bool_ = _ScalarType(np.bool_)
pi, e, inf, nan, newaxis = np.pi, np.e, np.inf, np.nan, None
ndarray = np.ndarray
dtype = np.dtype
finfo, iinfo, issubdtype = np.finfo, np.iinfo, np.issubdtype
floating, integer, inexact, number = np.floating, np.integer, np.inexact, np.number


def _eager():
    return current_trace() is EVAL_TRACE


# ---------------------------------------------------------------------------------------------
# Creation
# ---------------------------------------------------------------------------------------------

def _float_to_int(a, dtype):
    """True when converting `a` to `dtype` is float -> integer, which goes through
    lax.convert_element_type (saturating, the same eagerly and under jit) rather than NumPy's
    cast, whose NaN/inf/out-of-range results are platform-defined."""
    return dtype is not None and np.dtype(dtype).kind in "iu" and \
        isinstance(a, (np.ndarray, np.generic)) and a.dtype.kind == "f"


def asarray(a, dtype=None, copy=None):
    if isinstance(a, Tracer):
        return a if dtype is None else lax.convert_element_type(a, dtype)
    if _float_to_int(a, dtype):
        return lax.convert_element_type(a, dtype)
    if isinstance(a, (list, tuple)) and _contains_tracer(a):
        return stack([asarray(x) for x in a]).astype(dtype) if dtype else stack(
            [asarray(x) for x in a])
    return np.array(a, dtype=dtype, copy=copy) if copy else np.asarray(a, dtype=dtype)


def array(object, dtype=None, copy=True, ndmin=0):  # noqa: A002 - numpy's name
    out = asarray(object, dtype=dtype)
    if isinstance(out, np.ndarray) and copy:
        out = out.copy()
    while out.ndim < ndmin:
        out = expand_dims(out, 0)
    return out


def _contains_tracer(seq):
    for x in seq:
        if isinstance(x, Tracer):
            return True
        if isinstance(x, (list, tuple)) and _contains_tracer(x):
            return True
    return False


def _shape_tuple(shape):
    from ..core import concrete_or_error
    shape = concrete_or_error(shape, "an array shape")
    if isinstance(shape, (int, np.integer)) or np.ndim(shape) == 0:
        return (int(shape),)
    return tuple(int(concrete_or_error(s, "an array shape")) for s in shape)


def full(shape, fill_value, dtype=None):
    shape = _shape_tuple(shape)
    if isinstance(fill_value, Tracer):
        v = fill_value if dtype is None else lax.convert_element_type(fill_value, dtype)
        return lax.broadcast_to(v, shape)
    dt = np.dtype(dtype) if dtype is not None else np.asarray(fill_value).dtype
    if _eager():
        return np.full(shape, fill_value, dtype=dt)
    return lax.full(shape, fill_value, dt)


def zeros(shape, dtype=float):
    return full(shape, 0, np.dtype(dtype))


def ones(shape, dtype=float):
    return full(shape, 1, np.dtype(dtype))


def empty(shape, dtype=float):
    return zeros(shape, dtype)


def full_like(a, fill_value, dtype=None, shape=None):
    av = get_aval(a)
    return full(av.shape if shape is None else shape, fill_value, dtype or av.dtype)


def zeros_like(a, dtype=None, shape=None):
    return full_like(a, 0, dtype, shape)


def ones_like(a, dtype=None, shape=None):
    return full_like(a, 1, dtype, shape)


def empty_like(a, dtype=None, shape=None):
    return zeros_like(a, dtype, shape)


def arange(start, stop=None, step=None, dtype=None):
    for v in (start, stop, step):
        if isinstance(v, Tracer):
            from ..core import concrete_or_error
            concrete_or_error(v, "arange's start/stop/step")
    return np.arange(start, stop, step, dtype=dtype) if stop is not None else \
        np.arange(start, dtype=dtype) if step is None else np.arange(0, start, step, dtype=dtype)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    if isinstance(start, Tracer) or isinstance(stop, Tracer):
        dt = dtype or result_type(start, stop, 1.0)
        div = (num - 1) if endpoint else num
        t = np.arange(num, dtype=dt) / builtins.max(div, 1)
        s, e_ = asarray(start, dt), asarray(stop, dt)
        out = s + (e_ - s) * t.reshape((num,) + (1,) * get_aval(s).ndim)
        out = moveaxis(out, 0, axis)
        return (out, (e_ - s) / div) if retstep else out
    return np.linspace(start, stop, num, endpoint=endpoint, retstep=retstep, dtype=dtype,
                       axis=axis)


def eye(N, M=None, k=0, dtype=float):
    return np.eye(N, M, k, dtype=dtype)


def identity(n, dtype=float):
    return np.eye(n, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Elementwise
# ---------------------------------------------------------------------------------------------

def _binary(lax_fn, np_ufunc):
    def fn(x1, x2):
        a, b = promote(x1, x2)
        return keep_weak(lax_fn(a, b), x1, x2)
    fn.__name__ = np_ufunc.__name__
    return fn


add = _binary(lax.add, np.add)
subtract = _binary(lax.sub, np.subtract)
multiply = _binary(lax.mul, np.multiply)
maximum = _binary(lax.max, np.maximum)
minimum = _binary(lax.min, np.minimum)
equal = _binary(lax.eq, np.equal)
not_equal = _binary(lax.ne, np.not_equal)
less = _binary(lax.lt, np.less)
less_equal = _binary(lax.le, np.less_equal)
greater = _binary(lax.gt, np.greater)
greater_equal = _binary(lax.ge, np.greater_equal)
bitwise_and = _binary(lax.bitwise_and, np.bitwise_and)
bitwise_or = _binary(lax.bitwise_or, np.bitwise_or)
bitwise_xor = _binary(lax.bitwise_xor, np.bitwise_xor)
def arctan2(x1, x2):
    a, b = promote(x1, x2, dtype=ufunc_result_dtype(np.arctan2, x1, x2))
    return lax.atan2(a, b)


def true_divide(x1, x2):
    dt = result_type(x1, x2)
    if not np.issubdtype(dt, np.inexact):
        dt = ufunc_dtype(np.true_divide, dt, dt)
    a, b = promote(x1, x2, dtype=dt)
    return keep_weak(lax.div(a, b), x1, x2)


divide = true_divide


def _promote_no_bool(x1, x2):
    """Promote; booleans become int8 (NumPy's loops for //, %, ** on booleans)."""
    dt = result_type(x1, x2)
    return promote(x1, x2, dtype=np.int8 if dt == np.bool_ else dt)


def _promote_real(name, x1, x2):
    """`_promote_no_bool` for NumPy's real-only ufuncs (//, %, divmod, fmod): complex operands
    are NumPy's TypeError, traced or not (the rules below have no complex case)."""
    dt = result_type(x1, x2)
    if dt.kind == "c":
        from ..source_info import where
        raise TypeError(f"{name} does not support complex operands (got {dtype_of(x1).name} "
                        f"and {dtype_of(x2).name}){where()}")
    return promote(x1, x2, dtype=np.int8 if dt == np.bool_ else dt)


def _signbit(x):
    """True where the sign bit of float `x` is set (-0.0 and negative NaNs included)."""
    from ..random import bitcast_convert_type
    it = {2: np.int16, 4: np.int32, 8: np.int64}[get_aval(x).dtype.itemsize]
    return lax.lt(bitcast_convert_type(x, it), np.zeros((), it))


def _zero_with_sign(neg, like):
    """-0.0 where `neg`, else +0.0, of `like`'s dtype and shape."""
    z = zeros_like(like)
    return lax.select(neg, lax.neg(z), z)


def _float_divmod(a, b):
    """NumPy's float floor division and remainder (npy_divmod), branch-free: the quotient
    comes from fmod so that it is exact, and zeros get NumPy's signs (remainder takes the
    divisor's sign, a zero quotient that of a / b). x // 0 is x / 0 and x % 0 is NaN."""
    mod = lax.rem(a, b)                                   # C fmod: exact
    div = lax.div(lax.sub(a, mod), b)
    adj = lax.bitwise_and(lax.ne(mod, 0), lax.ne(lax.lt(b, 0), lax.lt(mod, 0)))
    mod = lax.select(adj, lax.add(mod, b), mod)
    # a zero remainder takes the divisor's sign; `- (sg(mod) - mod)` (exactly +0.0) keeps the
    # tangent of mod (d/da = 1) on that branch
    zmod = lax.sub(_zero_with_sign(lax.lt(b, 0), mod), lax.sub(lax.stop_gradient(mod), mod))
    mod = lax.select(lax.eq(mod, 0), zmod, mod)
    div = lax.select(adj, lax.sub(div, 1), div)
    fl = lax.floor(div)
    fl = lax.select(lax.gt(lax.sub(div, fl), 0.5), lax.add(fl, 1), fl)
    zsign = lax.ne(_signbit(a), lax.lt(b, 0))
    fl = lax.select(lax.eq(div, 0), _zero_with_sign(zsign, div), fl)
    bzero = lax.eq(b, 0)
    return lax.select(bzero, lax.div(a, b), fl), mod


def floor_divide(x1, x2):
    a, b = _promote_real("floor_divide", x1, x2)
    if np.issubdtype(a.dtype, np.inexact):
        return _float_divmod(a, b)[0]
    q = lax.div(a, b)            # truncates toward zero
    fix = lax.bitwise_and(lax.ne(lax.rem(a, b), 0), lax.ne(lax.lt(a, 0), lax.lt(b, 0)))
    return lax.select(fix, lax.sub(q, 1), q)


def remainder(x1, x2):
    a, b = _promote_real("remainder", x1, x2)
    if np.issubdtype(a.dtype, np.inexact):
        return _float_divmod(a, b)[1]
    r = lax.rem(a, b)
    fix = lax.bitwise_and(lax.ne(r, 0), lax.ne(lax.lt(r, 0), lax.lt(b, 0)))
    return lax.select(fix, lax.add(r, b), r)


mod = remainder


def divmod(x1, x2):  # noqa: A001 - numpy's name
    """(x1 // x2, x1 % x2) as NumPy's divmod (one fmod for floats)."""
    a, b = _promote_real("divmod", x1, x2)
    if np.issubdtype(a.dtype, np.inexact):
        return _float_divmod(a, b)
    return floor_divide(a, b), remainder(a, b)


def fmod(x1, x2):
    a, b = _promote_real("fmod", x1, x2)
    return lax.rem(a, b)


def power(x1, x2):
    out = _power(x1, x2)
    if isinstance(x2, Tracer) and out.dtype.kind in "iu":
        return strengthened(out)   # JAX: an integer power with a traced exponent is strong
    return keep_weak(out, x1, x2)


def _power(x1, x2):
    if isinstance(x2, (int, np.integer)) and not isinstance(x2, bool) and not isinstance(
            x1, (int, float)):
        x = asarray(x1)
        if x2 < 0 and x.dtype.kind in "biu":
            # NumPy's error; the exponent is known when tracing, so jit raises it too (the
            # compiled integer power has no such check)
            raise ValueError("Integers to negative integer powers are not allowed.")
        # a constant integer exponent: integer_pow, when it keeps x's dtype (NEP 50: a Python
        # int is weak, a NumPy integer scalar is not)
        if x.dtype != np.bool_ and result_type(x, x2) == x.dtype and (
                np.issubdtype(x.dtype, np.inexact) or x2 >= 0):
            return lax.integer_pow(x, int(x2))
    a, b = _promote_no_bool(x1, x2)
    return lax.pow(a, b)


def _unary(lax_fn, np_ufunc, floating=True):
    def fn(x):
        xa = to_float(x, np_ufunc) if floating else asarray(x)
        return keep_weak(lax_fn(xa), x)
    fn.__name__ = np_ufunc.__name__
    return fn


exp = _unary(lax.exp, np.exp)
exp2 = _unary(lax.exp2, np.exp2)
log = _unary(lax.log, np.log)
log1p = _unary(lax.log1p, np.log1p)
expm1 = _unary(lax.expm1, np.expm1)
cbrt = _unary(lax.cbrt, np.cbrt)
sqrt = _unary(lax.sqrt, np.sqrt)
sin = _unary(lax.sin, np.sin)
cos = _unary(lax.cos, np.cos)
tan = _unary(lax.tan, np.tan)
tanh = _unary(lax.tanh, np.tanh)
sinh = _unary(lax.sinh, np.sinh)
cosh = _unary(lax.cosh, np.cosh)
arcsin = _unary(lax.asin, np.arcsin)
arccos = _unary(lax.acos, np.arccos)
arctan = _unary(lax.atan, np.arctan)
arcsinh = _unary(lax.asinh, np.arcsinh)
arctanh = _unary(lax.atanh, np.arctanh)
negative = _unary(lax.neg, np.negative, floating=False)
floor = _unary(lax.floor, np.floor)
ceil = _unary(lax.ceil, np.ceil)
rint = _unary(lax.round_even, np.rint)
isfinite = _unary(lax.is_finite, np.isfinite, floating=False)


def log2(x):
    x = to_float(x, np.log2)
    return lax.div(lax.log(x), np.asarray(np.log(2.0), x.dtype))


def log10(x):
    x = to_float(x, np.log10)
    return lax.div(lax.log(x), np.asarray(np.log(10.0), x.dtype))


def abs(x):  # noqa: A001
    x = asarray(x)
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.unsignedinteger):
        return x
    return lax.abs(x)


absolute = abs


def sign(x):
    x = asarray(x)
    return lax.sign(x)


def _abs_square(x):
    """|x|**2: `x * x` for real values, `real(x * conj(x))` (real) for complex ones -- what
    norms and variances need (`square` of a complex number is not |x|**2)."""
    x = asarray(x)
    if x.dtype.kind == "c":
        return lax.real(lax.mul(x, lax.conj(x)))
    return square(x)


def real(val):
    val = asarray(val)
    return lax.real(val) if val.dtype.kind == "c" else val


def imag(val):
    val = asarray(val)
    return lax.imag(val) if val.dtype.kind == "c" else zeros_like(val)


def conjugate(x):
    x = asarray(x)
    return lax.conj(x) if x.dtype.kind == "c" else x


conj = conjugate


def iscomplexobj(x):
    return get_aval(asarray(x)).dtype.kind == "c"


def square(x):
    x = asarray(x)
    if x.dtype == np.bool_:
        x = asarray_of(x, np.int8)           # NumPy squares booleans in int8
    return lax.integer_pow(x, 2)


def reciprocal(x):
    x = asarray(x)
    if x.dtype == np.bool_:
        x = asarray_of(x, np.int8)           # NumPy's loop for booleans
    return lax.div(np.ones((), x.dtype), x)


def positive(x):
    return asarray(x)


def round(a, decimals=0):  # noqa: A001
    a = asarray(a)
    if a.dtype == np.bool_:
        a = asarray_of(a, np.float16)        # NumPy rounds booleans in float16
    if not np.issubdtype(a.dtype, np.inexact):
        return a
    if decimals == 0:
        return lax.round_even(a)
    f = np.asarray(10.0 ** decimals, a.dtype)
    return lax.div(lax.round_even(lax.mul(a, f)), f)


around = round


def trunc(x):
    x = to_float(x, np.trunc)
    return lax.select(lax.lt(x, 0), lax.ceil(x), lax.floor(x))


def isnan(x):
    x = asarray(x)
    if not np.issubdtype(x.dtype, np.inexact):
        return zeros_like(x, bool)
    return lax.ne(x, x)


def isinf(x):
    x = asarray(x)
    if not np.issubdtype(x.dtype, np.inexact):
        return zeros_like(x, bool)
    return lax.eq(lax.abs(x), np.asarray(np.inf, x.dtype))


def logical_and(x1, x2):
    a, b = promote(x1, x2, dtype=np.bool_)
    return lax.bitwise_and(a, b)


def logical_or(x1, x2):
    a, b = promote(x1, x2, dtype=np.bool_)
    return lax.bitwise_or(a, b)


def logical_xor(x1, x2):
    a, b = promote(x1, x2, dtype=np.bool_)
    return lax.bitwise_xor(a, b)


def logical_not(x):
    return lax.bitwise_not(asarray_of(x, np.bool_))


def invert(x):
    return lax.bitwise_not(asarray(x))


bitwise_not = invert


def where(condition, x=None, y=None):
    # the public `tnp.where` (with the one-argument `size=` form) is `_setops.where`; this is
    # the three-argument selection the other modules build on
    if x is None and y is None:
        from ._setops import nonzero
        return nonzero(condition)
    if x is None or y is None:
        raise ValueError("where: either both or neither of x and y should be given")
    c = asarray_of(condition, np.bool_)
    a, b = promote(x, y)
    shape = np.broadcast_shapes(get_aval(c).shape, get_aval(a).shape)
    c, a, b = lax.broadcast_to(c, shape), lax.broadcast_to(a, shape), lax.broadcast_to(b, shape)
    return lax.select(c, a, b)


def clip(a, a_min=None, a_max=None, *, min=None, max=None):  # noqa: A002
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    out = asarray(a)
    if lo is not None:
        out = maximum(out, lo)
    if hi is not None:
        out = minimum(out, hi)
    return out


def logaddexp(x1, x2):
    a, b = promote(x1, x2, dtype=ufunc_result_dtype(np.logaddexp, x1, x2))
    return keep_weak(lax.logaddexp(a, b), x1, x2)


def logaddexp2(x1, x2):
    a, b = promote(x1, x2, dtype=ufunc_result_dtype(np.logaddexp2, x1, x2))
    return keep_weak(lax.logaddexp2(a, b), x1, x2)


def sinc(x):
    x = to_float(x)
    px = lax.mul(x, np.asarray(np.pi, x.dtype))
    safe = where(equal(x, 0), ones_like(x), px)
    return where(equal(x, 0), ones_like(x), lax.div(lax.sin(safe), safe))


def heaviside(x1, x2):
    a, b = promote(x1, x2, dtype=ufunc_result_dtype(np.heaviside, x1, x2))
    # NumPy: 0 below zero, x2 at (either) zero, 1 above, NaN for NaN
    return where(less(a, 0), zeros_like(a), where(greater(a, 0), ones_like(a),
                                                  where(equal(a, 0), b, a)))


def deg2rad(x):
    return multiply(to_float(x), np.pi / 180)


def hypot(x1, x2):
    """sqrt(x1**2 + x2**2) without overflow or underflow (the larger magnitude factored out:
    hypot(1e200, 1e200) is 1.41e200); inf if either is infinite, even with a NaN (as NumPy)."""
    a, b = promote(x1, x2, dtype=ufunc_result_dtype(np.hypot, x1, x2))
    a, b = lax.abs(a), lax.abs(b)
    big, small = lax.max(a, b), lax.min(a, b)
    zero = lax.eq(big, 0)
    q = lax.div(small, lax.select(zero, ones_like(big), big))
    r = lax.mul(big, lax.sqrt(lax.add(lax.mul(q, q), ones_like(q))))
    r = lax.select(zero, big, r)
    inf = full_like(big, np.inf)
    return lax.select(lax.bitwise_or(lax.eq(a, inf), lax.eq(b, inf)), inf, r)


def copy(a):
    return asarray(a) if isinstance(a, Tracer) else np.array(a, copy=True)


def astype(x, dtype):
    """`x` converted to `dtype`; float -> integer truncates toward zero, and saturates where
    NumPy's result is platform-defined: NaN -> 0, +-inf and out-of-range values -> the
    integer type's max/min (JAX's rule)."""
    if _float_to_int(x, dtype):
        return lax.convert_element_type(x, dtype)
    return asarray_of(x, np.dtype(dtype))


def result_type_(*args):
    return result_type(*args)


def can_cast(from_, to, casting="safe"):
    return np.can_cast(from_, to, casting)


def shape(a):
    return get_aval(a).shape


def ndim(a):
    return get_aval(a).ndim


def size(a, axis=None):
    av = get_aval(a)
    return av.size if axis is None else av.shape[axis]


def isscalar(x):
    return np.isscalar(x)


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------

def _axes(a, axis):
    nd = get_aval(a).ndim
    if axis is None:
        return tuple(range(nd))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    out = []
    for ax in axis:
        ax = int(ax)
        if not -nd <= ax < nd:
            from numpy.exceptions import AxisError
            raise AxisError(f"axis {ax} is out of bounds for array of dimension {nd}")
        out.append(ax % nd)
    return tuple(out)


def _keepdims(out, a, axes, keepdims):
    if not keepdims:
        return out
    shape = tuple(1 if i in axes else s for i, s in enumerate(get_aval(a).shape))
    return lax.reshape(out, shape)


def _sum_dtype(dt):
    # NumPy sums small integers and bools in the default integer type
    if dt == np.bool_ or (np.issubdtype(dt, np.signedinteger) and dt.itemsize < 8):
        return np.dtype(np.int64)
    if np.issubdtype(dt, np.unsignedinteger) and dt.itemsize < 8:
        return np.dtype(np.uint64)
    return dt


def _mask(where, a):
    """NumPy's `where=` of a reduction: a boolean mask broadcast to `a`'s shape."""
    return lax.broadcast_to(asarray_of(where, np.bool_), get_aval(a).shape)


def _masked(a, where, fill):
    """`a` with the elements `where` excludes replaced by `fill` (the reduction's identity)."""
    if where is None:
        return a
    return lax.select(_mask(where, a), a, lax.broadcast_to(asarray_of(fill, a.dtype),
                                                            get_aval(a).shape))


def _reduced_shape(a, axes, keepdims):
    shape = get_aval(a).shape
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def sum(a, axis=None, dtype=None, keepdims=False, initial=None, where=None):  # noqa: A001
    a = asarray(a)
    dt = np.dtype(dtype) if dtype is not None else _sum_dtype(a.dtype)
    a = _masked(asarray_of(a, dt), where, 0)
    axes = _axes(a, axis)
    out = _keepdims(lax.reduce_sum(a, axes), a, axes, keepdims)
    # NumPy casts `initial` to the result's dtype (np.sum(ints, initial=0.5) adds 0)
    return out if initial is None else lax.add(out, asarray_of(initial, dt))


def prod(a, axis=None, dtype=None, keepdims=False, initial=None, where=None):
    a = asarray(a)
    dt = np.dtype(dtype) if dtype is not None else _sum_dtype(a.dtype)
    a = _masked(asarray_of(a, dt), where, 1)
    axes = _axes(a, axis)
    out = _keepdims(lax.reduce_prod(a, axes), a, axes, keepdims)
    return out if initial is None else lax.mul(out, asarray_of(initial, dt))


def _count(a, axes):
    shape = get_aval(a).shape
    return int(np.prod([shape[i] for i in axes], dtype=np.int64))


def _mean_dtype(a, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    return a.dtype if np.issubdtype(a.dtype, np.inexact) else np.dtype(np.float64)


def mean(a, axis=None, dtype=None, keepdims=False, where=None):
    a = asarray(a)
    dt = _mean_dtype(a, dtype)
    a = asarray_of(a, dt)
    axes = _axes(a, axis)
    if where is not None:
        # masked elements are replaced, not multiplied by 0 (a masked nan or inf stays out)
        s = lax.reduce_sum(_masked(a, where, 0), axes)
        n = lax.reduce_sum(asarray_of(_mask(where, a), _real_dtype(dt)), axes)
        return _keepdims(lax.div(s, asarray_of(n, dt)), a, axes, keepdims)
    n = _count(a, axes)
    s = lax.reduce_sum(a, axes)
    return _keepdims(lax.div(s, np.asarray(n, dt)), a, axes, keepdims)


def var(a, axis=None, dtype=None, ddof=0, keepdims=False, *, where=None, mean=None,
        correction=None):
    if correction is not None:
        ddof = correction
    a = asarray(a)
    dt = _mean_dtype(a, dtype)
    a = asarray_of(a, dt)
    axes = _axes(a, axis)
    mu = globals()["mean"](a, axis, keepdims=True, where=where) if mean is None else \
        asarray_of(mean, dt)
    centered = subtract(a, mu)
    # |x - mean|**2: real for complex input, as NumPy's (and JAX's) variance
    s = lax.reduce_sum(_masked(_abs_square(centered), where, 0), axes)
    rt = _real_dtype(dt)
    if where is None:
        n = np.asarray(builtins.max(_count(a, axes) - ddof, 0), rt)
    else:
        n = lax.reduce_sum(asarray_of(_mask(where, a), rt), axes)
        n = lax.max(lax.sub(n, np.asarray(ddof, rt)), np.zeros((), rt))
    return _keepdims(lax.div(s, n), a, axes, keepdims)


def std(a, axis=None, dtype=None, ddof=0, keepdims=False, *, where=None, mean=None,
        correction=None):
    return sqrt(var(a, axis, dtype, ddof, keepdims, where=where, mean=mean,
                    correction=correction))


def _minmax(lax_fn, name, combine):
    def fn(a, axis=None, keepdims=False, initial=None, where=None):
        a = asarray(a)
        axes = _axes(a, axis)
        if where is not None and initial is None:
            raise ValueError(f"reduction operation '{name}' does not have an identity, so to "
                             "use a where mask one has to specify 'initial'")
        empty = builtins.any(get_aval(a).shape[i] == 0 for i in axes)
        if empty and initial is None:
            raise ValueError(f"zero-size array to reduction operation {name} which has no "
                             "identity")
        if initial is None:
            return _keepdims(lax_fn(a, axes), a, axes, keepdims)
        init = asarray_of(initial, a.dtype)          # NumPy casts `initial` to a's dtype
        if empty:
            return lax.broadcast_to(init, _reduced_shape(a, axes, keepdims))
        out = _keepdims(lax_fn(_masked(a, where, init), axes), a, axes, keepdims)
        return combine(out, lax.broadcast_to(init, get_aval(out).shape))
    return fn


max = _minmax(lax.reduce_max, "maximum", lambda x, y: maximum(x, y))  # noqa: A001
min = _minmax(lax.reduce_min, "minimum", lambda x, y: minimum(x, y))  # noqa: A001
amax, amin = max, min


def _argminmax(lax_fn):
    def fn(a, axis=None, keepdims=False):
        a = asarray(a)
        if axis is None:
            out = lax_fn(lax.reshape(a, (-1,)), 0)
            return lax.reshape(out, (1,) * get_aval(a).ndim) if keepdims else out
        ax = _axes(a, axis)[0]
        out = lax_fn(a, ax)
        return _keepdims(out, a, (ax,), keepdims)
    return fn


argmax = _argminmax(lax.argmax)
argmin = _argminmax(lax.argmin)


def _cumulative(lax_fn):
    def fn(a, axis=None, dtype=None):
        a = asarray(a)
        dt = np.dtype(dtype) if dtype is not None else _sum_dtype(a.dtype)
        a = asarray_of(a, dt)
        if axis is None:
            a, axis = lax.reshape(a, (-1,)), 0
        return lax_fn(a, _axes(a, axis)[0])
    return fn


cumsum = _cumulative(lax.cumsum)
cumprod = _cumulative(lax.cumprod)


def all(a, axis=None, keepdims=False, *, where=None):  # noqa: A001
    a = _masked(asarray_of(a, np.bool_), where, True)
    axes = _axes(a, axis)
    return _keepdims(lax.reduce_and(a, axes), a, axes, keepdims)


def any(a, axis=None, keepdims=False, *, where=None):  # noqa: A001
    a = _masked(asarray_of(a, np.bool_), where, False)
    axes = _axes(a, axis)
    return _keepdims(lax.reduce_or(a, axes), a, axes, keepdims)


def count_nonzero(a, axis=None, keepdims=False):
    return sum(not_equal(a, 0), axis=axis, keepdims=keepdims)


def _traced(*xs):
    return builtins.any(isinstance(x, Tracer) for x in xs)


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """NumPy's isclose: |a - b| <= atol + rtol * |b| for finite values; infinities are close
    only to themselves; NaNs only when `equal_nan`."""
    a, b = asarray(a), asarray(b)
    if not np.issubdtype(result_type(a, b), np.inexact):
        a, b = asarray_of(a, np.float64), asarray_of(b, np.float64)
    a, b = promote(a, b)
    both_finite = logical_and(isfinite(a), isfinite(b))
    fa, fb = where(both_finite, a, zeros_like(a)), where(both_finite, b, zeros_like(b))
    near = less_equal(abs(subtract(fa, fb)), add(atol, multiply(rtol, abs(fb))))
    out = where(both_finite, near, equal(a, b))
    if equal_nan:
        out = logical_or(out, logical_and(isnan(a), isnan(b)))
    return out


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """NumPy's allclose; a traced boolean inside transforms, a Python bool eagerly."""
    out = all(isclose(a, b, rtol, atol, equal_nan))
    return out if _traced(a, b) else bool(out)


def array_equal(a1, a2, equal_nan=False):
    """NumPy's array_equal; a traced boolean inside transforms (False when the shapes
    differ, which is known while tracing), a Python bool eagerly."""
    a1, a2 = asarray(a1), asarray(a2)
    if get_aval(a1).shape != get_aval(a2).shape:
        return False
    eq = equal(a1, a2)
    if equal_nan and np.issubdtype(result_type(a1, a2), np.inexact):
        eq = logical_or(eq, logical_and(isnan(a1), isnan(a2)))
    out = all(eq)
    return out if _traced(a1, a2) else bool(out)


def array_equiv(a1, a2):
    """NumPy's array_equiv: equal after broadcasting (False when they do not broadcast)."""
    a1, a2 = asarray(a1), asarray(a2)
    try:
        np.broadcast_shapes(get_aval(a1).shape, get_aval(a2).shape)
    except ValueError:
        return False
    out = all(equal(a1, a2))
    return out if _traced(a1, a2) else bool(out)


from ._shape_ops import expand_dims, moveaxis, stack  # noqa: E402,F401


def at(x):
    """Functional updates for any array, NumPy input included: `tnp.at(x)[idx].set(v)`.

    Traced values also have `x.at[idx]` (as in JAX); plain `numpy.ndarray`s cannot carry that
    attribute, so eager code that starts from NumPy arrays uses this form. Never mutates `x`.
    """
    from ._indexing import _IndexUpdateHelper
    return _IndexUpdateHelper(asarray(x))


def _shift_operands(x1, x2):
    a, b = promote(x1, x2)
    if a.dtype == np.bool_:           # NumPy shifts booleans as int8 (its first shift loop)
        a, b = lax.convert_element_type(a, np.int8), lax.convert_element_type(b, np.int8)
    return a, b


def left_shift(x1, x2):
    a, b = _shift_operands(x1, x2)
    return lax.shift_left(a, b)


def right_shift(x1, x2):
    """Arithmetic shift for signed integers (NumPy: by >= the bit width gives -1 or 0 by
    sign), logical for unsigned."""
    a, b = _shift_operands(x1, x2)
    if np.issubdtype(a.dtype, np.signedinteger):
        return lax.shift_right_arithmetic(a, b)
    return lax.shift_right_logical(a, b)
