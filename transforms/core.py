"""The tracing core: abstract values, primitives, traces and tracers, the current-trace context.

Dispatch is "stackless", as in today's JAX: there is one *current trace*. `Primitive.bind`
hands the primitive to it; a trace's rules run with the trace's *parent* as the current trace,
so transforms nest to any depth. Every trace has a `level` (its depth) and an `alive` flag that
is cleared when its transform returns; a tracer whose trace is dead, or deeper than the current
trace, has leaked and is reported as an `UnexpectedTracerError`.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from .config import config as _config
from .errors import (ConcretizationTypeError, ImmutableTracerError, TracerArrayConversionError,
                     TracerBoolConversionError, TracerIntegerConversionError,
                     UnexpectedTracerError)

# ---------------------------------------------------------------------------------------------
# Abstract values
# ---------------------------------------------------------------------------------------------

_SHORT_DTYPE = {
    "float16": "f16", "float32": "f32", "float64": "f64", "int8": "i8", "int16": "i16",
    "int32": "i32", "int64": "i64", "uint8": "u8", "uint16": "u16", "uint32": "u32",
    "uint64": "u64", "bool": "bool", "complex64": "c64", "complex128": "c128",
}


_SHORT_NAMES = {}         # dtype -> its short name (NumPy computes `dtype.name` on each call)


def _short_name(dtype):
    name = _SHORT_NAMES.get(dtype)
    if name is None:
        name = _SHORT_NAMES[dtype] = _SHORT_DTYPE.get(dtype.name, dtype.name)
    return name


class ShapeAndDtype:
    """What `ShapedArray` and `ShapeDtypeStruct` share: a `shape` tuple and a `dtype`, and the
    `ndim` and `size` they imply."""
    __slots__ = ("shape", "dtype")

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))


class ShapedArray(ShapeAndDtype):
    """The abstract value of an array: its shape and dtype."""
    __slots__ = ()

    def __init__(self, shape, dtype):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)

    def __eq__(self, other):
        return (isinstance(other, ShapedArray) and self.shape == other.shape
                and self.dtype == other.dtype)

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def str_short(self):
        return f"{_short_name(self.dtype)}[{','.join(map(str, self.shape))}]"

    __str__ = str_short

    def __repr__(self):
        return f"ShapedArray({self.str_short()})"

    def update(self, shape=None, dtype=None):
        return ShapedArray(self.shape if shape is None else shape,
                           self.dtype if dtype is None else dtype)


def dtype_of_python_scalar(x):
    if isinstance(x, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(x, int):
        return np.dtype(np.int64)
    if isinstance(x, float):
        return np.dtype(np.float64)
    if isinstance(x, complex):
        return np.dtype(np.complex128)
    raise TypeError(f"{type(x).__name__} is not a valid array value")


def _aval_of_array(shape, dtype):
    """ShapedArray without re-validating: `shape`/`dtype` come from an ndarray (hot path)."""
    a = object.__new__(ShapedArray)
    a.shape, a.dtype = shape, dtype
    return a


def get_aval(x) -> ShapedArray:
    if isinstance(x, Tracer):
        return x.aval
    if isinstance(x, (np.ndarray, np.generic)):
        return _aval_of_array(x.shape, x.dtype)
    if isinstance(x, (bool, int, float, complex)):
        return ShapedArray((), dtype_of_python_scalar(x))
    if hasattr(x, "__array__") or isinstance(x, (list, tuple)):
        a = np.asarray(x)
        if a.dtype == object:
            raise TypeError(f"cannot interpret {type(x).__name__} as an array")
        return ShapedArray(a.shape, a.dtype)
    raise TypeError(f"value of type {type(x).__name__} is not a valid array: {x!r:.80}")


def as_leaf(x, what="argument"):
    """`x` as a leaf a transformation can take: tracers and arrays as they are, NumPy and
    Python scalars and array-likes as arrays; anything else is a TypeError naming `what`."""
    if isinstance(x, (Tracer, np.ndarray)):
        return x
    if isinstance(x, (np.generic, bool, int, float, complex)):
        return np.asarray(x)
    try:
        a = np.asarray(x)
    except Exception:  # noqa: BLE001 - reported below as not an array
        a = None
    if a is None or a.dtype == object:
        raise TypeError(f"{what} of type {type(x).__name__} is not a valid array: {x!r:.80}")
    return a


def is_float_dtype(dtype) -> bool:
    return np.issubdtype(dtype, np.inexact)


# ---------------------------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------------------------

class Primitive:
    """A named operation. Its rules are attributes, registered next to its definition with the
    `def_*` decorators (`@prim.def_jvp`, ...); a rule left `None` is not implemented:

    impl(*arrays, **params)                   NumPy implementation (eager mode)
    abstract_eval(*avals, **params)           output aval(s)
    jvp(primals, tangents, **params)          -> (primal_out, tangent_out); tangent None = zero
    transpose(ct, *args, **params)            for linear primitives; linear args are
                                              `UndefinedPrimal`s; returns one ct per arg
    batch(args, dims, **params)               -> (out, out_dim); dims are int or None

    Hooks of higher-order primitives (control flow, pjit, remat, custom derivatives), which
    need the interpreter itself rather than values:

    jvp_trace_rule(trace, primals, tangents, **params)
        forward mode, called by `JVPTrace` instead of `jvp` (e.g. custom_jvp runs the user's
        rule in the trace); -> (primal_outs, tangent_outs)
    staging_rule(trace, args, params)
        called by `StagingTrace` instead of recording one equation; under linearize (a
        *partial* trace) this is where an equation with known and unknown inputs is split
        into a known part, evaluated now, and an unknown part, staged
    batch_trace_rule(trace, args, dims, **params)
        vmap, called by `BatchTrace` instead of `batch` (it sees the axis size and name);
        -> (outs, out_dims)

    Helpers for common rule shapes: `interpreters.jvp.deflinear` / `defbilinear` /
    `defjvp_zero`, `interpreters.batching.defvectorized`. Numba lowerings live in
    `transforms.backend.numba`.
    """

    def __init__(self, name, multiple_results=False):
        self.name = name
        self.multiple_results = multiple_results
        self.impl = None
        self.abstract_eval = None
        self.jvp = None
        self.transpose = None
        self.batch = None
        self.jvp_trace_rule = None
        self.staging_rule = None
        self.batch_trace_rule = None

    def __repr__(self):
        return self.name

    def bind(self, *args, **params):
        return _state.trace.process_primitive(self, args, params)

    # decorators, so that a rule is written as `@prim.def_jvp` right after the primitive
    def def_impl(self, f):
        self.impl = f
        return f

    def def_abstract_eval(self, f):
        self.abstract_eval = f
        return f

    def def_jvp(self, f):
        self.jvp = f
        return f

    def def_transpose(self, f):
        self.transpose = f
        return f

    def def_batch(self, f):
        self.batch = f
        return f

    def def_jvp_trace_rule(self, f):
        self.jvp_trace_rule = f
        return f

    def def_staging_rule(self, f):
        self.staging_rule = f
        return f

    def def_batch_trace_rule(self, f):
        self.batch_trace_rule = f
        return f


# ---------------------------------------------------------------------------------------------
# Traces and the current-trace context
# ---------------------------------------------------------------------------------------------

class Trace:
    """Base of every interpreter. Subclasses implement `process_primitive`."""

    def __init__(self, parent):
        self.parent = parent
        self.level = 0 if parent is None else parent.level + 1
        self.alive = True

    def process_primitive(self, prim, args, params):
        raise NotImplementedError

    def lift(self, val):
        """`val` (a concrete NumPy array) as a value of this trace that keeps its concrete
        value: the counterpart of a JAX array inside a transformation, which can be indexed by
        a tracer and has `.at`. The eager traces keep `val` itself; `JVPTrace` gives it a zero
        tangent, `BatchTrace` leaves it unmapped, `StagingTrace` makes it a constant."""
        return val

    def is_own(self, x):
        """True if `x` is one of this trace's tracers; raises on a leaked tracer (a constant
        lifted by a transformation that has returned is no leak: it is a foreign constant,
        which the trace that finally computes on it replaces by its value, `dead_constant`)."""
        if isinstance(x, Tracer):
            t = x._trace
            if t is self:
                return True
            if not t.alive or t.level >= self.level:
                if dead_constant(x) is None:
                    raise leaked_tracer_error(x)
        return False

    def __repr__(self):
        return f"{type(self).__name__}(level={self.level})"


def dead_constant(x):
    """The value of tracer `x` when it is a constant lifted (`Trace.lift`) by a
    transformation that has returned, else None. Such a value, kept in a global or a cache
    by the function being transformed, is used as the NumPy array it stands for, as a JAX
    array created inside a transformation outlives it."""
    if x._trace.alive:
        return None
    return x.constant_value()


def leaked_tracer_error(x):
    from .source_info import where
    t = x._trace
    state = "has already returned" if not t.alive else "is not active here"
    return UnexpectedTracerError(
        f"Encountered an unexpected tracer {x.aval.str_short()} created by "
        f"{type(t).__name__}: the transformation that created it {state}{where()}. "
        "This usually means a traced value was stored outside the function being transformed "
        "(a global, a closure, an attribute) and used after the transform returned. "
        "Return it from the function instead.")


class EvalTrace(Trace):
    """The bottom of the stack: run each primitive's NumPy implementation."""

    def process_primitive(self, prim, args, params):
        for a in args:
            if isinstance(a, Tracer):
                args = [_eager_operand(x) for x in args]
                break
        quiet = _fp_warnings_off()
        try:
            out = prim.impl(*args, **params)
        except Exception:
            # NumPy's own message lacks the user's line: let the shape rule explain instead
            if prim.abstract_eval is not None:
                prim.abstract_eval(*[get_aval(a) for a in args], **params)
            raise
        finally:
            _fp_warnings_restore(quiet)
        if _config.debug_floats:           # jax_debug_nans / jax_debug_infs
            from .float_checks import check_outputs
            check_outputs(prim.name, out)
        return out


def _eager_operand(x):
    """`x`, a lifted constant of a returned transformation replaced by its value; any other
    tracer reaching the eager trace has leaked."""
    if isinstance(x, Tracer):
        v = dead_constant(x)
        if v is None:
            raise leaked_tracer_error(x)
        return v
    return x


def _make_fp_quiet():
    """(off, restore): switch NumPy's floating-point warnings off for the calling context
    and back. Eager primitives return IEEE results (inf, nan) silently, as XLA does: JAX
    users see no "divide by zero" warning from, say, sqrt's derivative at 0. NumPy keeps
    its error state in a context variable; setting it directly costs ~0.2 us against ~0.8
    us for entering `np.errstate`, which matters on every eager primitive. Without that
    variable (another NumPy), `np.errstate` does the same."""
    try:
        from numpy._core import _ufunc_config
        var = _ufunc_config._extobj_contextvar
        with np.errstate(all="ignore"):
            quiet = var.get()
        return (lambda: var.set(quiet)), var.reset
    except Exception:                       # noqa: BLE001 -- any other NumPy layout
        def off():
            state = np.errstate(all="ignore")
            state.__enter__()
            return state
        return off, (lambda state: state.__exit__(None, None, None))


_fp_warnings_off, _fp_warnings_restore = _make_fp_quiet()


class _State(threading.local):
    def __init__(self):
        self.trace = EVAL_TRACE


EVAL_TRACE = EvalTrace(None)
_state = _State()


def current_trace() -> Trace:
    return _state.trace


@contextlib.contextmanager
def set_current_trace(trace):
    prev = _state.trace
    _state.trace = trace
    try:
        yield trace
    finally:
        _state.trace = prev


@contextlib.contextmanager
def new_trace(trace_type, *args, **kwargs):
    """Create a child of the current trace, make it current, and kill it on exit."""
    prev = _state.trace
    trace = trace_type(prev, *args, **kwargs)
    _state.trace = trace
    try:
        yield trace
    finally:
        _state.trace = prev
        trace.alive = False


def bind_in(trace, prim, *args, **params):
    """Bind `prim` with `trace` as the current trace (how a rule defers to its parent)."""
    prev = _state.trace
    _state.trace = trace
    try:
        return trace.process_primitive(prim, args, params)
    finally:
        _state.trace = prev


# ---------------------------------------------------------------------------------------------
# Tracers
# ---------------------------------------------------------------------------------------------

_CONCRETE_HINT = (
    "Use transforms.lax.cond / lax.switch / lax.select / tnp.where for data-dependent "
    "branches, lax.while_loop / lax.fori_loop / lax.scan for loops, or mark the argument "
    "static with jit(..., static_argnums=...).")


class Tracer:
    """A value standing in for an array inside a transform. Operators and methods are
    installed by `transforms.numpy` (so they mean exactly what `tnp` functions mean)."""
    __slots__ = ("_trace",)
    __array_priority__ = 1000
    # A weakly typed value (a Python scalar passed to jit, or arithmetic on such values only):
    # in dtype promotion it behaves like the Python scalar it stands for (NEP 50), as JAX's
    # weak types do, so `jit(f)(x_f32, 0.1)` stays float32 like `f(x_f32, 0.1)`.
    weak_type = False

    @property
    def aval(self) -> ShapedArray:
        raise NotImplementedError

    def concrete_value(self):
        """A concrete NumPy value if this tracer has one (e.g. under grad), else None."""
        return None

    def constant_value(self):
        """The concrete value when this tracer is a constant of its transformation (a value
        `Trace.lift` made, or computed from such values only), else None. Unlike
        `concrete_value`, a tracer under `grad` that carries a derivative has none: NumPy
        may compute on constants, never on differentiated or mapped values."""
        return None

    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: len(self.aval.shape))
    size = property(lambda self: self.aval.size)

    def __len__(self):
        if not self.aval.shape:
            raise TypeError("len() of unsized object (a 0-d traced array)")
        return self.aval.shape[0]

    def __iter__(self):
        if not self.aval.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.aval.shape[0]))

    def _concrete_or_raise(self, what, error_type):
        v = self.concrete_value()
        if v is None:
            from .source_info import where
            raise error_type(
                f"{what} was called on a traced value {self.aval.str_short()} whose value is not "
                f"known while tracing{where()}. {_CONCRETE_HINT}")
        return v

    def __bool__(self):
        return bool(self._concrete_or_raise("bool() (a Python `if`, `while`, `and`/`or`)",
                                            TracerBoolConversionError))

    def __int__(self):
        return int(self._concrete_or_raise("int()", TracerIntegerConversionError))

    def __index__(self):
        return int(self._concrete_or_raise("an integer conversion (__index__)",
                                           TracerIntegerConversionError))

    def __float__(self):
        return float(self._concrete_or_raise("float()", ConcretizationTypeError))

    def __complex__(self):
        return complex(self._concrete_or_raise("complex()", ConcretizationTypeError))

    def __array__(self, dtype=None, copy=None):
        v = self.concrete_value()
        if v is None:
            from .source_info import where
            raise TracerArrayConversionError(
                f"A traced value {self.aval.str_short()} was converted to a NumPy array{where()}. "
                "Inside transformed functions use transforms.numpy (tnp) instead of numpy, "
                "or move the NumPy code outside the transformed function. Indexing a NumPy "
                "array by a traced value (`c[i]`) lands here too: convert the array first "
                "(`tnp.asarray(c)[i]`), as with JAX.")
        return np.asarray(v, dtype=dtype)

    def __setitem__(self, idx, value):
        raise ImmutableTracerError(
            f"traced arrays are immutable ({self.aval.str_short()}): `x[idx] = v` cannot work "
            "inside a transform, as with JAX arrays. Use the functional update "
            "`x = x.at[idx].set(v)` (or .add, .multiply, .min, .max).")

    def __hash__(self):
        raise TypeError("traced values are not hashable (a static argument must be a Python "
                        "value: see jit(static_argnums=...))")

    def __repr__(self):
        return f"Traced<{self.aval.str_short()}>with<{type(self._trace).__name__}>"

    __str__ = __repr__


def lift_concrete(out):
    """`out` (a `transforms.numpy` function's result) with every NumPy array or scalar in it
    (through tuples and lists) lifted into the current trace (`Trace.lift`): outside every
    transformation it is `out` itself, inside one `tnp.arange(10)[i]` indexes by a tracer,
    as a JAX array does."""
    trace = _state.trace
    if trace is EVAL_TRACE or isinstance(out, Tracer):
        return out
    if isinstance(out, (np.ndarray, np.generic)):
        return trace.lift(out)
    if isinstance(out, (tuple, list)) and out:
        items = [lift_concrete(o) for o in out]
        if type(out) is list:
            return items
        if type(out) is tuple:
            return tuple(items)
        if hasattr(out, "_make"):              # a named tuple (linalg.svd's result, ...)
            return out._make(items)
    return out


def full_lower(x):
    """Concrete value of `x` when it has one, else `x`."""
    if isinstance(x, Tracer):
        v = x.concrete_value()
        return x if v is None else v
    return x


def concrete_or_error(x, what="this value"):
    """A concrete Python/NumPy value for `x`, or a ConcretizationTypeError naming `what`."""
    if isinstance(x, Tracer):
        v = x.concrete_value()
        if v is None:
            from .source_info import where
            raise ConcretizationTypeError(
                f"{what} must be concrete, but got a traced value {x.aval.str_short()}{where()}. "
                f"{_CONCRETE_HINT}")
        return v
    return x
