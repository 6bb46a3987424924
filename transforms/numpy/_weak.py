"""Which `tnp` functions keep a traced value's weak type (JAX's rules), applied by name.

JAX propagates weakness through nearly every primitive (elementwise ops, select, shape
changes, indexing, concatenation, contractions): the result is weak when every array operand
is, so `jit(lambda s, x: abs(s) * x)(2, int8_array)` is int8. `jnp`'s reductions, `astype` and
a few integer-to-float conversions (rint) cast explicitly, and their results are strong. An
explicit `dtype=` argument makes a result strong too.

Arithmetic operators mark their results in `_ops` (`keep_weak`); the functions listed here are
wrapped once, when the namespace is built (`apply`), so that every path to them (the public
name, its aliases, the tracer methods and operators, other `tnp` modules) follows the rule.
Only staging tracers carry weakness: eager NumPy results and other tracers pass unchanged at
the cost of one type check."""
from __future__ import annotations

import functools

import numpy as np

from ..core import EVAL_TRACE, Tracer, _state
from ..interpreters.partial_eval import (ConstStagingTracer, StagingTracer,
                                         WeakConstStagingTracer, WeakStagingTracer,
                                         strengthened, weakened)

_STAGED = (StagingTracer, WeakStagingTracer, ConstStagingTracer, WeakConstStagingTracer)
_WEAK = (WeakStagingTracer, WeakConstStagingTracer)

# Elementwise and structural functions: the result is weak when every array operand is (a
# weak tracer or a Python scalar, one tracer at least). The value names the operand positions
# (None: every argument); other arguments (conditions, indices, shapes) do not count.
_KEEP = {
    # unary ufuncs and their relatives
    "abs": None, "square": None, "round": None, "trunc": None, "fix": None, "sign": None,
    "reciprocal": None, "real": None, "imag": None, "fabs": None, "deg2rad": None,
    "rad2deg": None, "sinc": None, "invert": None, "positive": None, "conjugate": None,
    "signbit": None, "i0": None, "spacing": None, "modf": None,
    "frexp": None,
    # binary ufuncs not marked by `_ops._binary`
    "floor_divide": None, "remainder": None, "divmod": None, "fmod": None, "arctan2": None,
    "hypot": None, "copysign": None, "heaviside": None, "fmax": None, "fmin": None,
    "nextafter": None, "left_shift": None, "right_shift": None, "gcd": None, "lcm": None,
    "float_power": None,
    # selection: the condition does not count (JAX's select rule)
    "where": (1, 2), "select": (1, 2), "clip": None, "piecewise": (0,),
    # shape and order
    "reshape": (0,), "transpose": (0,), "ravel": (0,), "expand_dims": (0,),
    "broadcast_to": (0,), "squeeze": (0,), "swapaxes": (0,), "moveaxis": (0,),
    "flip": (0,), "fliplr": (0,), "flipud": (0,), "rot90": (0,), "roll": (0,),
    "atleast_1d": None, "atleast_2d": None, "atleast_3d": None, "tile": (0,),
    "repeat": (0,), "pad": (0,), "sort": (0,), "diff": (0,), "copy": (0,),
    "tril": (0,), "triu": (0,), "diagonal": (0,), "diag": (0,), "trace": (0,),
    # indexing (the index does not count)
    "getitem": (0,), "_update": (0,), "take": (0,), "take_along_axis": (0,), "compress": (1,),
    # joining and contractions
    "concatenate": (0,), "concat": (0,), "stack": (0,), "hstack": (0,), "vstack": (0,),
    "dstack": (0,), "column_stack": (0,), "append": (0, 1),
    "matmul": None, "dot": None, "vdot": None, "inner": None, "outer": None,
    "tensordot": (0, 1), "kron": None, "einsum": None, "cross": (0, 1),
    # constructors from a value: weak when that value is and no dtype is given
    "full_like": (0,), "zeros_like": (0,), "ones_like": (0,), "empty_like": (0,),
    "full": (1,),
}

# Functions whose traced results are always strong (JAX casts them explicitly).
_STRONG = ("sum", "prod", "max", "min", "amax", "amin", "nansum", "nanprod", "nanmax",
           "nanmin", "ptp", "astype", "cumsum", "cumprod", "nancumsum", "nancumprod",
           "cumulative_sum", "cumulative_prod")


def _leaves(x, out):
    if isinstance(x, (list, tuple)):
        for v in x:
            _leaves(v, out)
    else:
        out.append(x)
    return out


def _weakness(xs):
    """True when some leaf of `xs` (through lists and tuples) is a weak tracer and none is a
    strong array (a strong tracer, a NumPy array or scalar, a dtype); False when one is
    strong; None when there is no array at all. Returns at the first strong leaf."""
    found = None
    for a in xs:
        if isinstance(a, Tracer):
            if not a.weak_type:
                return False
            found = True
        elif isinstance(a, (list, tuple)):
            w = _weakness(a)
            if w is False:
                return False
            found = found or w
        elif isinstance(a, (np.ndarray, np.generic, np.dtype, type)):
            return False
    return found


def _all_weak(operands, args, kwargs):
    """Every array among `operands` is a weak tracer or a Python scalar (one tracer at least),
    and no dtype is given (by name, or by position as a NumPy dtype or type)."""
    if _weakness(operands) is not True or kwargs.get("dtype") is not None:
        return False
    return not any(isinstance(a, (np.dtype, type)) for a in args)


def _lift_weak(out, operands):
    """A NumPy result (a constant: `zeros_like`, `imag` of a real value) of weak operands of
    the current staging trace, as a weak constant of that trace; None otherwise."""
    trace = _state.trace
    for a in _leaves(operands, []):
        if isinstance(a, _WEAK) and a._trace is trace:
            return weakened(trace.lift(out))
    return None


def _mark(out, weak):
    if type(out) in _STAGED:
        return weakened(out) if weak else strengthened(out)
    if isinstance(out, tuple):
        return tuple(_mark(o, weak) for o in out)
    return out


def _keeping(f, positions):
    @functools.wraps(f)
    def keeps(*args, **kwargs):
        if _state.trace is EVAL_TRACE:
            return f(*args, **kwargs)          # eager: NumPy's rules, nothing is weak
        out = f(*args, **kwargs)
        const = isinstance(out, (np.ndarray, np.generic))
        if type(out) not in _STAGED and not isinstance(out, tuple) and not const:
            return out                         # another transformation's tracer
        if positions is None:
            operands = (args, [v for k, v in kwargs.items() if k != "dtype"])
        else:
            operands = [args[i] for i in positions if i < len(args)]
        weak = _all_weak(operands, args, kwargs)
        if const:
            lifted = _lift_weak(out, operands) if weak else None
            return out if lifted is None else lifted
        return _mark(out, weak)
    keeps._tnp_weak = True
    keeps._tnp_eager = f                # what an eager call runs (see _lift.lifting)
    return keeps


def _strong(f):
    @functools.wraps(f)
    def strong(*args, **kwargs):
        if _state.trace is EVAL_TRACE:
            return f(*args, **kwargs)
        return _mark(f(*args, **kwargs), False)
    strong._tnp_weak = True
    strong._tnp_eager = f
    return strong


def _rint(f):
    """JAX's rint of an integer converts to float first (strong), else keeps weakness."""
    keep = _keeping(f, None)

    @functools.wraps(f)
    def rint(x):
        if isinstance(x, Tracer) and x.dtype.kind in "biu":
            return _mark(f(x), False)
        return keep(x)
    rint._tnp_weak = True
    return rint


def apply(modules):
    """Wrap the listed functions wherever `modules` bind them (aliases such as `absolute` and
    `bitwise_not` included, by identity)."""
    wrapped = {}
    for m in modules:
        for name, rule in list(_KEEP.items()) + [(n, "strong") for n in _STRONG] + [
                ("rint", "rint")]:
            f = vars(m).get(name)
            if f is None or not callable(f) or getattr(f, "_tnp_weak", False) or \
                    isinstance(f, type) or id(f) in wrapped:
                continue
            wrapped[id(f)] = (f, _strong(f) if rule == "strong" else _rint(f)
                              if rule == "rint" else _keeping(f, rule))
    for m in modules:
        for name, val in list(vars(m).items()):
            hit = wrapped.get(id(val))
            if hit is not None and hit[0] is val:
                setattr(m, name, hit[1])
