"""The one operator table for the elementwise primitives of `transforms.lax`.

Each `OpInfo` says, once, what an operator is (our function and its NumPy reference), where its
inputs live (one domain per argument: a function of an `np.random.Generator`, a shape and a
dtype), which dtypes it takes, how close its values must be, and which transforms apply. The
value and gradient tests (test_primitives.py), the vmap tests (test_vmap.py), the jit test
(test_jit.py) and, through each op's tnp spelling, test_numpy's value, traced-dtype and gradient
cases generate their cases from `OPS`; adding a primitive here tests it under all of them.

No random state lives here: every test builds its own generator with `op_rng(...)`, seeded from
the case's name, so a test's inputs do not depend on which tests ran before it.
"""
import zlib
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

from transforms import lax

F64, F32 = np.float64, np.float32
FLOATS = (F64, F32)


def op_rng(*key):
    """A fresh generator for one test case, seeded from its key (e.g. op name, dtype, mode):
    stable across runs and independent of test order."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


# --- input domains: (rng, shape, dtype) -> array -------------------------------------------

def real(rng, shape, dtype):
    """Anywhere in (-1, 1)."""
    return rng.uniform(-1.0, 1.0, shape).astype(dtype)


def positive(rng, shape, dtype):
    """In (0.5, 2): log, sqrt, the base of pow."""
    return rng.uniform(0.5, 2.0, shape).astype(dtype)


def unit(rng, shape, dtype):
    """Inside (-0.8, 0.8): asin/acos/atanh/tan away from their singularities."""
    return rng.uniform(-0.8, 0.8, shape).astype(dtype)


def away_from_zero(rng, shape, dtype):
    """|x| in (0.3, 1.5), either sign: kinks and divisions stay out of reach of finite
    differences."""
    x = rng.uniform(0.3, 1.5, shape)
    return (x * np.where(rng.random(shape) < 0.5, -1.0, 1.0)).astype(dtype)


def off_integers(rng, shape, dtype):
    """Three times `away_from_zero`, nudged off exact integers and half-integers so that floor,
    ceil and the roundings are flat under a finite-difference step."""
    x = away_from_zero(rng, shape, F64) * 3
    frac = x - np.floor(x)
    x = np.where(np.abs(frac - 0.5) < 0.02, x + 0.05, x)
    x = np.where((frac < 0.02) | (frac > 0.98), x + 0.1, x)
    return x.astype(dtype)


def rem_dividend(rng, shape, dtype):
    return (rng.uniform(0.1, 0.9, shape) * 5).astype(dtype)


def rem_divisor(rng, shape, dtype):
    return (rng.uniform(0.5, 2.0, shape) + 0.05).astype(dtype)


def small_ints(rng, shape, dtype):
    """Integers in [0, 4): many ties, for comparisons; small shift counts."""
    return rng.integers(0, 4, shape).astype(dtype)


def signed_nonzero(rng, shape, dtype):
    """Integers in [-4, 4] without zero: integer division and remainder."""
    return (rng.integers(1, 5, shape) * rng.choice([-1, 1], shape)).astype(dtype)


def boolean(rng, shape, dtype):
    return rng.random(shape) < 0.5


def bits(rng, shape, dtype):
    """Integers in [-20, 20), both signs (bitwise ops see negative numbers' high bits), or
    random booleans for bool."""
    if np.dtype(dtype) == np.bool_:
        return boolean(rng, shape, dtype)
    return rng.integers(-20, 20, shape).astype(dtype)


def no_ties(rng, shape, dtype):
    """(x, y) with y at least 0.15 away from x: max/min are smooth at every element."""
    x = real(rng, shape, F64)
    return x.astype(dtype), (x + away_from_zero(rng, shape, F64) * 0.5).astype(dtype)


# --- references that NumPy does not name ----------------------------------------------------

def _logistic(x):
    return 1 / (1 + np.exp(-x))


def _round_half_away(x):
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(x.dtype)


def _div_toward_zero(x, y):
    """C-style integer division (lax.div on integers truncates; NumPy's // floors)."""
    return (np.sign(x) * np.sign(y) * (np.abs(x) // np.abs(y))).astype(x.dtype)


def _erf(x):
    from scipy.special import erf
    return erf(x)


# --- the record -----------------------------------------------------------------------------

@dataclass(frozen=True)
class OpInfo:
    """One operator and everything its generated tests need.

    name:     the test id (the primitive's name, or `integer_pow3` for a fixed exponent).
    fn:       our function, taking `len(domains)` arrays.
    ref:      its NumPy reference on the same arrays.
    domains:  one input domain per argument, `(rng, shape, dtype) -> array`.
    dtypes:   the dtypes its value tests run in; gradients run in float64 only (finite
              differences need it), vmap in float32 (else the first dtype), jit in every
              dtype listed.
    rtol/atol: value tolerances per dtype; `exact=True` compares bit for bit instead.
    grad:     "check" (fwd and rev derivatives to `grad_order` against finite differences),
              "zero" (piecewise constant: gradient and tangent are exactly zero, plus an order
              1 check), or None (no derivative to test: non-float output, stop_gradient).
    sample:   optional `(rng, shape, dtype) -> args` drawing all arguments jointly, for the
              value and gradient tests of ops whose arguments must keep apart (max/min ties).
    vmap/jit: whether the vmap and jit tests include the op.
    tnp:      the `transforms.numpy` function that is exactly this primitive on one array
              (e.g. "arcsin" for asin), tested the same way through tnp; None if there is none.
    """
    name: str
    fn: Callable
    ref: Callable
    domains: Tuple[Callable, ...]
    dtypes: Tuple[type, ...] = FLOATS
    rtol: Tuple[Tuple[type, float], ...] = ((F64, 1e-12), (F32, 2e-6))
    atol: Tuple[Tuple[type, float], ...] = ((F64, 0.0), (F32, 1e-6))
    exact: bool = False
    grad: Optional[str] = "check"
    grad_order: int = 2
    sample: Optional[Callable] = None
    vmap: bool = True
    jit: bool = True
    tnp: Optional[str] = None

    @property
    def nargs(self):
        return len(self.domains)

    def tol(self, dtype):
        """{'rtol':, 'atol':} for values in `dtype`."""
        return {"rtol": dict(self.rtol)[dtype], "atol": dict(self.atol)[dtype]}

    def args(self, rng, shape, dtype):
        """Arguments for the value and gradient tests."""
        if self.sample is not None:
            return tuple(self.sample(rng, shape, dtype))
        return tuple(d(rng, shape, dtype) for d in self.domains)


def _unary(name, fn, ref, domain=real, **kw):
    return OpInfo(name, fn, ref, (domain,), **kw)


def _binary(name, fn, ref, dx=real, dy=real, **kw):
    return OpInfo(name, fn, ref, (dx, dy), **kw)


_CONST = dict(exact=True, grad="zero", grad_order=1)
_INT = dict(dtypes=(np.int32,), exact=True, grad=None)
_INTS = dict(_INT, dtypes=(np.int32, np.int64))
_BITS = dict(_INT, dtypes=(np.int32, np.int64, np.bool_))

OPS = [
    # unary, smooth
    _unary("neg", lax.neg, np.negative, tnp="negative"),
    _unary("exp", lax.exp, np.exp, tnp="exp"),
    _unary("exp2", lax.exp2, np.exp2, tnp="exp2"),
    _unary("log", lax.log, np.log, positive, tnp="log"),
    _unary("log1p", lax.log1p, np.log1p, positive, tnp="log1p"),
    _unary("expm1", lax.expm1, np.expm1, tnp="expm1"),
    _unary("tanh", lax.tanh, np.tanh, tnp="tanh"),
    _unary("logistic", lax.logistic, _logistic),
    _unary("sin", lax.sin, np.sin, tnp="sin"),
    _unary("cos", lax.cos, np.cos, tnp="cos"),
    _unary("tan", lax.tan, np.tan, unit, tnp="tan"),
    _unary("asin", lax.asin, np.arcsin, unit, tnp="arcsin"),
    _unary("acos", lax.acos, np.arccos, unit, tnp="arccos"),
    _unary("atan", lax.atan, np.arctan, tnp="arctan"),
    _unary("sinh", lax.sinh, np.sinh, tnp="sinh"),
    _unary("cosh", lax.cosh, np.cosh, tnp="cosh"),
    _unary("asinh", lax.asinh, np.arcsinh, tnp="arcsinh"),
    _unary("atanh", lax.atanh, np.arctanh, unit, tnp="arctanh"),
    _unary("sqrt", lax.sqrt, np.sqrt, positive, tnp="sqrt"),
    _unary("rsqrt", lax.rsqrt, lambda x: 1 / np.sqrt(x), positive),
    _unary("cbrt", lax.cbrt, np.cbrt, away_from_zero, tnp="cbrt"),
    _unary("erf", lax.erf, _erf),
    _unary("abs", lax.abs, np.abs, away_from_zero, tnp="abs"),
    _unary("integer_pow3", lambda x: lax.integer_pow(x, 3), lambda x: x ** 3),
    # unary, piecewise constant: exact values, zero derivative
    _unary("sign", lax.sign, np.sign, off_integers, **_CONST, tnp="sign"),
    _unary("floor", lax.floor, np.floor, off_integers, **_CONST, tnp="floor"),
    _unary("ceil", lax.ceil, np.ceil, off_integers, **_CONST, tnp="ceil"),
    _unary("round", lax.round, _round_half_away, off_integers, **_CONST),
    _unary("round_even", lax.round_even, np.rint, off_integers, **_CONST, tnp="round"),
    # unary, no derivative to check
    _unary("is_finite", lax.is_finite, np.isfinite, exact=True, grad=None, tnp="isfinite"),
    _unary("not", lax.bitwise_not, np.logical_not, boolean, dtypes=(np.bool_,), exact=True,
           grad=None, tnp="logical_not"),
    _unary("convert", lambda x: lax.convert_element_type(x * 4, np.int32),
           lambda x: (x * 4).astype(np.int32), exact=True, grad=None),
    _unary("stop_gradient", lax.stop_gradient, lambda x: x, exact=True, grad=None),
    # binary
    _binary("add", lax.add, np.add),
    _binary("sub", lax.sub, np.subtract),
    _binary("mul", lax.mul, np.multiply),
    _binary("div", lax.div, np.divide, real, away_from_zero),
    _binary("rem", lax.rem, np.fmod, rem_dividend, rem_divisor),
    _binary("pow", lax.pow, np.power, positive, real),
    _binary("atan2", lax.atan2, np.arctan2, real, away_from_zero),
    _binary("max", lax.max, np.maximum, sample=no_ties, exact=True),
    _binary("min", lax.min, np.minimum, sample=no_ties, exact=True),
    # binary, comparisons and integer/bit ops: exact, no derivative
    _binary("eq", lax.eq, np.equal, small_ints, small_ints, **_INTS),
    _binary("ne", lax.ne, np.not_equal, small_ints, small_ints, **_INT),
    _binary("lt", lax.lt, np.less, exact=True, grad=None),
    _binary("le", lax.le, np.less_equal, small_ints, small_ints, **_INT),
    _binary("gt", lax.gt, np.greater, exact=True, grad=None),
    _binary("ge", lax.ge, np.greater_equal, small_ints, small_ints, **_INT),
    _binary("and", lax.bitwise_and, np.bitwise_and, bits, bits, **_BITS),
    _binary("or", lax.bitwise_or, np.bitwise_or, bits, bits,
            **dict(_BITS, dtypes=(np.bool_, np.int32, np.int64))),
    _binary("xor", lax.bitwise_xor, np.bitwise_xor, bits, bits, **_BITS),
    _binary("shift_left", lax.shift_left, np.left_shift, bits, small_ints, **_INTS),
    _binary("shift_right", lax.shift_right_logical, np.right_shift, small_ints, small_ints,
            **_INT),
    _binary("div_int", lax.div, _div_toward_zero, signed_nonzero, signed_nonzero, **_INT),
]

BY_NAME = {op.name: op for op in OPS}
assert len(BY_NAME) == len(OPS), "operator names must be unique"
