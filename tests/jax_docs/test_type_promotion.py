"""JAX's "Type promotion semantics" document, ported: the binary promotion table of
`tnp.promote_types`/`tnp.result_type` over every dtype and the weak Python scalars, and the
dtype (and weak type) of arithmetic on arrays and scalars, eagerly, while tracing and under
`jit`.

The expected values come from a promotion lattice written here (JAX's lattice with 64-bit
defaults, i.e. JAX's x64 mode), with this library's documented difference (README, "Where
`tnp` follows NumPy and where JAX"): an integer meeting a float or complex array promotes as in
NumPy, to a type holding both exactly. Where JAX is importable every value is also compared
with JAX's (x64 mode), and the documented differences assert what JAX gives instead.
bfloat16 is left out: `tnp` has no bfloat16 dtype (README).
"""
import itertools
import operator

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import dtypes as tdtypes

from ._helpers import jax_x64_each_test

try:
    import jax
    import jax.numpy as jnp
except ImportError:                      # our own asserts still run
    jax = jnp = None


_jax_x64 = pytest.fixture(autouse=True)(jax_x64_each_test)   # JAX in x64, per test

needs_jax = pytest.mark.skipif(jax is None, reason="JAX is not installed")

INTS = ["int8", "int16", "int32", "int64"]
UINTS = ["uint8", "uint16", "uint32", "uint64"]
FLOATS = ["float16", "float32", "float64"]
COMPLEX = ["complex64", "complex128"]
DTYPES = ["bool"] + INTS + UINTS + FLOATS + COMPLEX
SCALARS = [True, 3, 2.5, 1.5j]           # the weak Python scalars: bool, int, float, complex

# ---------------------------------------------------------------------------------------------
# The reference lattice (x64 defaults): each type's immediate successors. "i*", "f*", "c*" are
# the weak Python int, float and complex.
# ---------------------------------------------------------------------------------------------

_UP = {
    "bool": ["i*"], "i*": ["uint8", "int8"], "f*": ["c*", "float16"], "c*": ["complex64"],
    "uint8": ["uint16", "int16"], "uint16": ["uint32", "int32"], "uint32": ["uint64", "int64"],
    "uint64": ["f*"], "int8": ["int16"], "int16": ["int32"], "int32": ["int64"],
    "int64": ["f*"], "float16": ["float32"], "float32": ["float64", "complex64"],
    "float64": ["complex128"], "complex64": ["complex128"], "complex128": [],
}
_WEAK_DEFAULT = {"i*": "int64", "f*": "float64", "c*": "complex128"}


def _above(t):
    """`t` and every type it promotes to."""
    seen, todo = {t}, [t]
    while todo:
        for u in _UP[todo.pop()]:
            if u not in seen:
                seen.add(u)
                todo.append(u)
    return seen


def _join(a, b):
    """The least upper bound of `a` and `b` on the lattice."""
    common = _above(a) & _above(b)
    least = [c for c in common if all(d in _above(c) for d in common)]
    assert len(least) == 1, (a, b, least)
    return least[0]


def _weak_name(v):
    return {bool: "bool", int: "i*", float: "f*", complex: "c*"}[type(v)]


def _exact_float_for_int(name):
    """The smallest float holding every value of integer type `name` (NumPy's rule)."""
    bits = np.dtype(name).itemsize * 8
    return "float16" if bits == 8 else "float32" if bits == 16 else "float64"


def expected_promotion(a, b):
    """The dtype name our `promote_types(a, b)` gives: the lattice join, except that an
    integer array with a float/complex array takes a type holding both exactly (NumPy's rule,
    the README's documented difference)."""
    ka, kb = np.dtype(a).kind, np.dtype(b).kind
    if ka in "iu" and kb in "fc" or kb in "iu" and ka in "fc":
        i, f = (a, b) if ka in "iu" else (b, a)
        return _join(_exact_float_for_int(i), f)
    return _join(a, b)


def _mixed_int_inexact(a, b):
    ka, kb = np.dtype(a).kind, np.dtype(b).kind
    return (ka in "iu" and kb in "fc") or (kb in "iu" and ka in "fc")


# ---------------------------------------------------------------------------------------------
# promote_types / result_type tables
# ---------------------------------------------------------------------------------------------

def test_lattice_matches_the_documented_table_corners():
    # a few cells of the published table, so the lattice written above is itself checked
    assert _join("uint8", "int8") == "int16"
    assert _join("uint64", "int64") == "f*"
    assert _join("bool", "i*") == "i*"
    assert _join("float16", "c*") == "complex64"
    assert _join("int8", "f*") == "f*"
    assert expected_promotion("int32", "float32") == "float64"
    assert expected_promotion("int8", "float16") == "float16"
    assert expected_promotion("uint16", "complex64") == "complex64"
    assert expected_promotion("int64", "complex64") == "complex128"


@pytest.mark.parametrize("a", DTYPES)
def test_promote_types_table(a):
    for b in DTYPES:
        want = expected_promotion(a, b)
        if want == "f*":                 # uint64 with int64: no integer type holds both
            want = "float64"
        got = tnp.promote_types(a, b)
        assert got == np.dtype(want), (a, b, got, want)
        assert tnp.promote_types(b, a) == got, (b, a)        # symmetric
        assert tnp.result_type(np.ones(2, a), np.ones((), b)) == got, (a, b)
        assert tdtypes.result_type(np.dtype(a), b) == got, (a, b)


@needs_jax
@pytest.mark.parametrize("a", DTYPES)
def test_promote_types_table_against_jax(a):
    for b in DTYPES:
        ours, theirs = tnp.promote_types(a, b), jnp.promote_types(a, b)
        if _mixed_int_inexact(a, b):
            # documented difference: JAX keeps the float/complex operand's type
            inexact = b if np.dtype(b).kind in "fc" else a
            assert theirs == np.dtype(inexact), (a, b, theirs)
        else:
            assert ours == theirs, (a, b, ours, theirs)


def _expected_weak(dtype, scalar):
    """The dtype of `dtype` array combined with a weak Python scalar (same in JAX x64)."""
    j = _join(dtype, _weak_name(scalar))
    return _WEAK_DEFAULT.get(j, j)


@pytest.mark.parametrize("scalar", SCALARS, ids=["bool", "int", "float", "complex"])
def test_result_type_with_weak_python_scalars(scalar):
    for a in DTYPES:
        want = np.dtype(_expected_weak(a, scalar))
        assert tnp.result_type(np.ones(3, a), scalar) == want, (a, scalar)
        assert tnp.result_type(a, scalar) == want, (a, scalar)
        assert tnp.result_type(scalar, np.ones((), a)) == want, (a, scalar)
        if jnp is not None:
            assert jnp.result_type(a, scalar) == want, (a, scalar)
    # the scalar type never wins over a same-kind array: precision is the array's
    assert tnp.result_type(np.int8, 300) == np.int8          # value ignored, as in JAX


def test_python_types_as_dtype_arguments_are_numpys():
    # documented difference: a Python type given as a dtype is NumPy's strong dtype here
    # (int -> int64, float -> float64, complex -> complex128); JAX reads it as weak
    for a, t, ours, theirs in [(np.int8, int, np.int64, np.int8),
                               (np.float32, float, np.float64, np.float32),
                               (np.float16, complex, np.complex128, np.complex64),
                               (np.int8, float, np.float64, np.float64)]:
        assert tnp.promote_types(a, t) == ours and tnp.result_type(a, t) == ours, (a, t)
        # a Python *value* of that type is weak in both
        assert tnp.result_type(a, t(1)) == theirs, (a, t)
        if jnp is not None:
            assert jnp.promote_types(a, t) == theirs and jnp.result_type(a, t) == theirs


def test_result_type_of_python_scalars_alone():
    for s, t in itertools.product(SCALARS, SCALARS):
        j = _join(_weak_name(s), _weak_name(t))
        want = np.dtype(_WEAK_DEFAULT.get(j, j))
        assert tnp.result_type(s, t) == want, (s, t)
        if jnp is not None:
            assert jnp.result_type(s, t) == want, (s, t)
    dt, weak = tdtypes.result_type(2, 0.5, return_weak_type_flag=True)
    assert dt == np.float64 and weak
    dt, weak = tdtypes.result_type(np.float32, 0.5, return_weak_type_flag=True)
    assert dt == np.float32 and not weak


# ---------------------------------------------------------------------------------------------
# Arithmetic: eager, traced (weak types) and compiled
# ---------------------------------------------------------------------------------------------

OPS = {"add": operator.add, "mul": operator.mul, "sub": operator.sub}


def _traced(f, *args):
    """(dtype, weak) of `f`'s result while tracing `f` (no compile)."""
    box = []

    def g(*a):
        r = f(*a)
        box.append((np.dtype(r.dtype), tdtypes.is_weakly_typed(r)))
        return r
    T.make_jaxpr(g)(*args)
    return box[0]


@pytest.mark.parametrize("a", DTYPES)
def test_array_with_scalar_arithmetic_dtypes(a):
    x = np.ones(3, a)
    for (name, op), s in itertools.product(OPS.items(), SCALARS):
        if name == "sub" and a == "bool" and isinstance(s, bool):
            continue                     # boolean subtract is an error (tested below)
        want = np.dtype(_expected_weak(a, s))
        for f in (lambda u, v: op(u, v), lambda u, v: op(v, u)):
            assert f(x, s).dtype == want, (a, name, s)
            # the scalar as a jit argument is a weak tracer: same dtype, and the result is
            # strong (an array took part)
            assert _traced(f, x, s) == (want, False), (a, name, s)
            # the array as a tracer, the scalar a constant
            assert _traced(lambda u: f(u, s), x) == (want, False), (a, name, s)
            if jax is not None:
                theirs = jax.eval_shape(f, x, s)
                assert theirs.dtype == want, (a, name, s)
                # documented difference: JAX marks the result weak when the scalar's kind
                # is above the array's (int8 array + 2.5 is a weak float); here it is strong
                assert theirs.weak_type == (np.dtype(a).kind in "biu" and type(s) in (
                    float, complex) or a == "bool" and type(s) is int), (a, name, s)


def test_weak_scalars_stay_weak_under_tracing():
    # Python scalars passed to jit only: the result is weak, with the default dtype of the
    # highest kind; meeting an array it then adapts to the array's precision
    for s, t in itertools.product(SCALARS, SCALARS):
        j = _join(_weak_name(s), _weak_name(t))
        want = np.dtype(_WEAK_DEFAULT.get(j, j))
        if want == np.bool_:
            continue                     # bool + bool is a bool, never weak
        assert _traced(operator.add, s, t) == (want, True), (s, t)
        if jax is not None:
            theirs = jax.eval_shape(operator.add, s, t)
            assert (theirs.dtype, theirs.weak_type) == (want, True), (s, t)
    f32 = np.ones(3, np.float32)
    assert _traced(lambda s, x: (s * 2) * x, 3, np.ones(2, np.int16)) == (np.int16, False)
    assert _traced(lambda s, x: (s + 0.5) * x, 3, f32) == (np.float32, False)
    assert _traced(lambda s, x: (s * 1j) * x, 2.0, f32) == (np.complex64, False)


def test_jit_values_and_dtypes():
    # one compiled program covering the representative cases: weak scalars keep the array's
    # precision (int8 wraps around at 128 as in JAX and NumPy), a weak tracer adapts too
    def f(i8, f32, s_int, s_float):
        return (i8 + 100, i8 * s_int, f32 * s_float, f32 + s_int, i8 + f32,
                s_int * s_float, i8 / s_int)

    i8 = np.array([1, 27, 100, -128], np.int8)
    f32 = np.array([0.5, 1.5, -2.0, 3.25], np.float32)
    args = (i8, f32, 2, 1.5)
    eager = f(*args)
    compiled = T.jit(f)(*args)
    want_dtypes = [np.int8, np.int8, np.float32, np.float32, np.float32, np.float64,
                   np.float64]
    want_values = [
        np.array([101, 127, -56, -28], np.int8), np.array([2, 54, -56, 0], np.int8),
        f32 * np.float32(1.5), f32 + np.float32(2), i8.astype(np.float32) + f32, 3.0,
        np.array([0.5, 13.5, 50.0, -64.0]),     # true division of integers: float64 (NumPy)
    ]
    for k, (e, c, dt, v) in enumerate(zip(eager, compiled, want_dtypes, want_values)):
        assert np.asarray(e).dtype == dt and np.asarray(c).dtype == dt, k
        np.testing.assert_array_equal(np.asarray(e), v)
        np.testing.assert_array_equal(np.asarray(c), v)
    if jax is not None:
        theirs = jax.jit(f)(*args)
        for k, (c, t) in enumerate(zip(compiled[:-1], theirs[:-1])):
            np.testing.assert_array_equal(np.asarray(c), np.asarray(t), err_msg=str(k))
            assert np.asarray(c).dtype == t.dtype, k
        assert theirs[-1].dtype == np.float32        # JAX: float32 (README difference)
        np.testing.assert_allclose(np.asarray(compiled[-1]), np.asarray(theirs[-1]))


def test_tutorial_examples():
    x = tnp.arange(5, dtype="int8")
    y = 2 * x                                          # the weak 2 keeps int8
    assert y.dtype == np.int8 and list(y) == [0, 2, 4, 6, 8]
    assert (tnp.int32(2) * x).dtype == np.int32       # a typed scalar promotes
    assert (tnp.int16(1) + 1).dtype == np.int16
    assert (tnp.int16(1) + np.array(1)).dtype == np.int64  # a NumPy array is not weak
    assert (np.int16(1) + 1 + tnp.int16(1)).dtype == np.int16
    assert tnp.asarray(2, dtype="int32").dtype == np.int32
    # documented difference: tnp.asarray(2) is a strong int64 NumPy array (JAX: weak int)
    assert tnp.asarray(2).dtype == np.int64
    assert not tdtypes.is_weakly_typed(tnp.asarray(2))
    assert tdtypes.is_weakly_typed(2) and not tdtypes.is_weakly_typed(np.int64(2))
    if jnp is not None:
        assert jnp.asarray(2).dtype == np.int64 and jax.typeof(jnp.asarray(2)).weak_type
        assert jnp.promote_types(np.int8, np.uint8) == tnp.promote_types(np.int8, np.uint8)


def test_integer_true_division_follows_numpy():
    # documented difference: NumPy's true division of integers is float64 for every integer
    # width; JAX's is float32 for the 8-32 bit ones (float64 for 64-bit ones in x64 mode)
    for a in ["bool"] + INTS + UINTS:
        x = np.arange(1, 4).astype(a)
        want = np.array([float(v) / 2 for v in x])
        for r in (x / 2, tnp.true_divide(x, 2)):        # compiled: test_jit_values_...
            assert np.asarray(r).dtype == np.float64, a
            np.testing.assert_allclose(np.asarray(r), want)
        assert _traced(lambda u: u / 2, x) == (np.float64, False), a
        if jnp is not None:
            theirs = (jnp.asarray(x) / 2).dtype
            # (a bool array with the weak 2 is a weak int64 there, hence float64)
            wide = np.dtype(a).itemsize == 8 or a == "bool"
            assert theirs == (np.float64 if wide else np.float32), a


def test_float16_is_eager_only():
    # documented difference: the compiled backend has no float16, and NumPy's unary float
    # functions of int8/uint8/bool arrays are float16 (JAX: float32)
    h = np.array([0.5, 2.0], np.float16)
    assert (h * 2.5).dtype == np.float16 and tnp.sqrt(np.arange(3, dtype=np.int8)).dtype == \
        np.float16
    assert _traced(lambda u: u * 2.5, h) == (np.float16, False)      # tracing is fine
    with pytest.raises(T.errors.UnsupportedDtypeError, match="float16"):
        T.jit(lambda u: u * 2.5)(h)
    with pytest.raises(T.errors.UnsupportedDtypeError, match="float16"):
        T.jit(tnp.sqrt)(np.arange(3, dtype=np.int8))
    if jnp is not None:
        assert jnp.sqrt(np.arange(3, dtype=np.int8)).dtype == np.float32


# ---------------------------------------------------------------------------------------------
# Operations NumPy (and JAX) reject: the same TypeError eagerly and while tracing
# ---------------------------------------------------------------------------------------------

def _raises_both(f, *args, match):
    with pytest.raises(TypeError, match=match):
        f(*args)
    with pytest.raises(TypeError, match=match):
        T.make_jaxpr(f)(*args)


def test_boolean_subtract_is_an_error():
    b = np.array([True, False])
    _raises_both(lambda u: u - u, b, match="subtract|sub")
    _raises_both(lambda u: tnp.subtract(u, True), b, match="subtract|sub")
    _raises_both(lambda u: T.lax.sub(u, u), b, match="sub")
    # bool with a Python int is an integer subtraction
    assert (b - 1).dtype == np.int64
    assert _traced(lambda u: u - 1, b) == (np.int64, False)
    if jnp is not None:
        with pytest.raises(TypeError):
            jnp.asarray(b) - jnp.asarray(b)


@pytest.mark.parametrize("op", [operator.floordiv, operator.mod, tnp.fmod, tnp.divmod],
                         ids=["floordiv", "mod", "fmod", "divmod"])
def test_complex_floor_division_is_an_error(op):
    z = np.array([1 + 2j, 3.0], np.complex64)
    for other in (2, 1.5, np.ones(2, np.int32), np.ones(2, np.float64), z):
        _raises_both(lambda u: op(u, other), z, match="complex|not supported")
        _raises_both(lambda u: op(other, u), z, match="complex|not supported")
    x = np.array([7.0, -7.0], np.float32)
    _raises_both(lambda u: op(u, 1j), x, match="complex|not supported")
    _raises_both(lambda u: T.lax.rem(u, u), z, match="rem")
    if jnp is not None and op is not tnp.divmod:
        with pytest.raises(TypeError):
            (jnp.fmod if op is tnp.fmod else op)(jnp.asarray(z), 2)


# ---------------------------------------------------------------------------------------------
# Strict dtype promotion
# ---------------------------------------------------------------------------------------------

def test_strict_promotion():
    x, y = np.float32(1) * np.ones(3, np.float32), np.ones(3, np.int32)
    err = tdtypes.TypePromotionError
    with T.numpy_dtype_promotion("strict"):
        assert T.config.jax_numpy_dtype_promotion == "strict"
        for bad in [lambda: tnp.add(x, y), lambda: tnp.multiply(y, np.ones(3, np.int16)),
                    lambda: tnp.add(y, 1.5), lambda: tnp.add(x, 1j),
                    lambda: tnp.add(np.array([True]), 1), lambda: tnp.result_type(x, y),
                    lambda: tnp.arctan2(x, y)]:
            with pytest.raises(err, match="strict"):
                bad()
        # traced values follow the same rule, eagerly-written operators included
        with pytest.raises(err, match="float32, int32"):
            T.make_jaxpr(lambda a, b: a + b)(x, y)
        with pytest.raises(err):
            T.make_jaxpr(lambda a, s: a * s)(y, 0.5)    # a weak float does not fit int32
        # Python scalars that fit the array's dtype, and equal dtypes, are allowed
        z = tnp.add(x, 1.0)
        assert z.dtype == np.float32 and list(z) == [2.0, 2.0, 2.0]
        assert tnp.add(y, 2).dtype == np.int32 and tnp.add(x, 2).dtype == np.float32
        assert T.jit(lambda a, s: a * s + 1)(x, 2.0).dtype == np.float32
        np.testing.assert_array_equal(T.jit(lambda a, b: a * b)(y, y), y)
        assert tnp.mean(x).dtype == np.float32      # library code inside is not affected
        # explicit casts are the way out
        assert tnp.add(x, y.astype(np.float32)).dtype == np.float32
    assert T.config.jax_numpy_dtype_promotion == "standard"
    assert tnp.add(x, y).dtype == np.float64                    # standard again
    with pytest.raises(ValueError, match="strict"):
        T.config.update("jax_numpy_dtype_promotion", "loose")
    if jax is not None:
        with jax.numpy_dtype_promotion("strict"):
            with pytest.raises(jax.dtypes.TypePromotionError):
                jnp.add(x, y)
            with pytest.raises(jax.dtypes.TypePromotionError):
                jnp.add(y, 1.5)
            assert jnp.add(x, 1.0).dtype == np.float32
