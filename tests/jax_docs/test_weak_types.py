"""JAX's weak types ("Weakly-typed values" in the type promotion document) under tracing: which
operations keep a Python scalar's weakness and which drop it, and what that does to the dtype
of a later result under `jit`.

The rule (JAX's): elementwise functions (unary and binary ufuncs), selection (`where`,
`select`, `clip`), shape changes, indexing and `.at` updates, joining, contractions and the
`*_like` constructors keep weakness when every array operand is weak; reductions, cumulative
operations, `astype`, an explicit `dtype=` and `rint` of an integer give strong results. Every
case asserts our dtype and weakness, and is compared with JAX (x64 mode) where importable.
"""
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


def _traced(f, *args):
    """(dtype, weak) of `f`'s result while tracing `f` with weak Python scalar arguments."""
    box = []

    def g(*a):
        r = f(*a)
        r = r[0] if isinstance(r, tuple) else r
        box.append((np.dtype(r.dtype), bool(tdtypes.is_weakly_typed(r))))
        return r
    T.make_jaxpr(g)(*args)
    return box[0]


def _jax(f, *args):
    r = jax.eval_shape(f, *args)
    r = r[0] if isinstance(r, tuple) else r
    return np.dtype(r.dtype), bool(r.weak_type)


INT, FLOAT = 3, 2.5

# name -> (function of (numpy namespace, lax namespace, s), scalars it takes)
KEEP = {
    "abs": (lambda m, L, s: abs(s), (INT, FLOAT)),
    "absolute": (lambda m, L, s: m.absolute(s), (INT, FLOAT)),
    "square": (lambda m, L, s: m.square(s), (INT, FLOAT)),
    "negative": (lambda m, L, s: -s, (INT, FLOAT)),
    "sign": (lambda m, L, s: m.sign(s), (INT, FLOAT)),
    "round": (lambda m, L, s: m.round(s), (FLOAT,)),
    "trunc": (lambda m, L, s: m.trunc(s), (INT, FLOAT)),
    "sqrt": (lambda m, L, s: m.sqrt(s), (INT, FLOAT)),
    "fabs": (lambda m, L, s: m.fabs(s), (FLOAT,)),
    "deg2rad": (lambda m, L, s: m.deg2rad(s), (FLOAT,)),
    "sinc": (lambda m, L, s: m.sinc(s), (FLOAT,)),
    "real": (lambda m, L, s: m.real(s), (INT, FLOAT)),
    "imag": (lambda m, L, s: m.imag(s), (INT, FLOAT)),
    "invert": (lambda m, L, s: ~s, (INT,)),
    "floordiv": (lambda m, L, s: s // 2, (INT, FLOAT)),
    "floordiv_weak_weak": (lambda m, L, s: s // s, (INT, FLOAT)),
    "mod": (lambda m, L, s: s % 2, (INT, FLOAT)),
    "fmod": (lambda m, L, s: m.fmod(s, 2), (INT, FLOAT)),
    "divmod": (lambda m, L, s: m.divmod(s, 2), (INT, FLOAT)),
    "power_const": (lambda m, L, s: s ** 3, (INT, FLOAT)),
    "arctan2": (lambda m, L, s: m.arctan2(s, 2), (INT, FLOAT)),
    "hypot": (lambda m, L, s: m.hypot(s, 2), (INT, FLOAT)),
    "copysign": (lambda m, L, s: m.copysign(s, 2), (FLOAT,)),
    "heaviside": (lambda m, L, s: m.heaviside(s, 2), (FLOAT,)),
    "fmax": (lambda m, L, s: m.fmax(s, 2), (INT, FLOAT)),
    "nextafter": (lambda m, L, s: m.nextafter(s, 2), (FLOAT,)),
    "left_shift": (lambda m, L, s: s << 2, (INT,)),
    "gcd": (lambda m, L, s: m.gcd(s, 2), (INT,)),
    "float_power": (lambda m, L, s: m.float_power(s, 2), (FLOAT,)),
    "where_scalar": (lambda m, L, s: m.where(s > 0, s, 1 if s.dtype.kind == "i" else 1.0), (INT, FLOAT)),
    "where_int_float": (lambda m, L, s: m.where(s > 0, s, 1.0), (FLOAT,)),
    "where_weak_weak": (lambda m, L, s: m.where(True, s, s), (INT, FLOAT)),
    "select": (lambda m, L, s: m.select([s > 0], [s], 0), (INT, FLOAT)),
    "lax_select": (lambda m, L, s: L.select(s > 0, s, s), (INT, FLOAT)),
    "lax_abs": (lambda m, L, s: L.abs(s), (INT, FLOAT)),
    "lax_mul": (lambda m, L, s: L.mul(s, s), (INT, FLOAT)),
    "lax_reshape": (lambda m, L, s: L.reshape(s, (1,)), (INT, FLOAT)),
    "lax_broadcast": (lambda m, L, s: L.broadcast_in_dim(s, (3,), ()), (INT, FLOAT)),
    "lax_concatenate": (lambda m, L, s: L.concatenate([L.reshape(s, (1,))] * 2, 0),
                        (INT, FLOAT)),
    "lax_slice": (lambda m, L, s: L.slice(L.broadcast_in_dim(s, (3,), ()), (1,), (2,)),
                  (INT, FLOAT)),
    "lax_reduce_sum": (lambda m, L, s: L.reduce_sum(L.broadcast_in_dim(s, (3,), ()), (0,)),
                       (INT, FLOAT)),
    "lax_cumsum": (lambda m, L, s: L.cumsum(L.broadcast_in_dim(s, (3,), ()), 0), (INT, FLOAT)),
    "clip": (lambda m, L, s: m.clip(s, 0, 5), (INT, FLOAT)),
    "maximum": (lambda m, L, s: m.maximum(s, 1), (INT, FLOAT)),
    "reshape": (lambda m, L, s: m.reshape(s, (1, 1)), (INT, FLOAT)),
    "reshape_method": (lambda m, L, s: m.reshape(s, (1,)).reshape(1, 1), (INT, FLOAT)),
    "transpose": (lambda m, L, s: m.reshape(s, (1, 1)).T, (INT, FLOAT)),
    "ravel": (lambda m, L, s: m.ravel(s), (INT, FLOAT)),
    "expand_dims": (lambda m, L, s: m.expand_dims(s, 0), (INT, FLOAT)),
    "broadcast_to": (lambda m, L, s: m.broadcast_to(s, (3,)), (INT, FLOAT)),
    "squeeze": (lambda m, L, s: m.squeeze(m.reshape(s, (1,))), (INT, FLOAT)),
    "flip": (lambda m, L, s: m.flip(m.reshape(s, (1,))), (INT, FLOAT)),
    "roll": (lambda m, L, s: m.roll(m.reshape(s, (1,)), 1), (INT, FLOAT)),
    "sort": (lambda m, L, s: m.sort(m.reshape(s, (1,))), (INT, FLOAT)),
    "tile": (lambda m, L, s: m.tile(s, 2), (INT, FLOAT)),
    "repeat": (lambda m, L, s: m.repeat(s, 2), (INT, FLOAT)),
    "pad": (lambda m, L, s: m.pad(m.reshape(s, (1,)), 1), (INT, FLOAT)),
    "diff": (lambda m, L, s: m.diff(m.stack([s, s])), (INT, FLOAT)),
    "index": (lambda m, L, s: m.broadcast_to(s, (3,))[1], (INT, FLOAT)),
    "slice": (lambda m, L, s: m.broadcast_to(s, (3,))[1:], (INT, FLOAT)),
    "take": (lambda m, L, s: m.take(m.reshape(s, (1,)), 0), (INT, FLOAT)),
    "at_set_scalar": (lambda m, L, s: m.broadcast_to(s, (3,)).at[0].set(1), (INT, FLOAT)),
    "at_set_strong": (lambda m, L, s: m.broadcast_to(s, (3,)).at[0].set(np.int64(1)), (INT,)),
    "concatenate": (lambda m, L, s: m.concatenate([m.reshape(s, (1,)), m.reshape(s, (1,))]),
                    (INT, FLOAT)),
    "stack": (lambda m, L, s: m.stack([s, s]), (INT, FLOAT)),
    "hstack": (lambda m, L, s: m.hstack([s, s]), (INT, FLOAT)),
    "atleast_1d": (lambda m, L, s: m.atleast_1d(s), (INT, FLOAT)),
    "matmul": (lambda m, L, s: m.matmul(m.reshape(s, (1,)), m.reshape(s, (1,))), (INT, FLOAT)),
    "outer": (lambda m, L, s: m.outer(s, s), (INT, FLOAT)),
    "einsum": (lambda m, L, s: m.einsum("i,i->", m.reshape(s, (1,)), m.reshape(s, (1,))),
               (INT, FLOAT)),
    "full_like": (lambda m, L, s: m.full_like(s, 3), (INT, FLOAT)),
    "zeros_like": (lambda m, L, s: m.zeros_like(s), (INT, FLOAT)),
    "ones_like": (lambda m, L, s: m.ones_like(s), (INT, FLOAT)),
    "full": (lambda m, L, s: m.full((2,), s), (INT, FLOAT)),
    "copy": (lambda m, L, s: m.copy(s), (INT, FLOAT)),
}

STRONG = {
    "sum": (lambda m, L, s: m.sum(s), (INT, FLOAT)),
    "sum_method": (lambda m, L, s: m.stack([s, s]).sum(), (INT, FLOAT)),
    "sum_axis": (lambda m, L, s: m.sum(m.stack([s, s]), axis=0), (INT, FLOAT)),
    "prod": (lambda m, L, s: m.prod(s), (INT, FLOAT)),
    "max": (lambda m, L, s: m.max(s), (INT, FLOAT)),
    "amin": (lambda m, L, s: m.amin(s), (INT, FLOAT)),
    "nansum": (lambda m, L, s: m.nansum(s), (INT, FLOAT)),
    "ptp": (lambda m, L, s: m.ptp(s), (INT, FLOAT)),
    "mean": (lambda m, L, s: m.mean(s), (FLOAT,)),
    "cumsum": (lambda m, L, s: m.cumsum(s), (INT, FLOAT)),
    "cumprod": (lambda m, L, s: m.cumprod(s), (INT, FLOAT)),
    "astype_same": (lambda m, L, s: m.asarray(s).astype(m.asarray(s).dtype), (INT, FLOAT)),
    "astype_f32": (lambda m, L, s: m.asarray(s).astype(np.float32), (INT, FLOAT)),
    "full_like_dtype": (lambda m, L, s: m.full_like(s, 3, dtype=np.float32), (INT, FLOAT)),
    "zeros_like_dtype": (lambda m, L, s: m.zeros_like(s, np.float64), (INT, FLOAT)),
    "full_dtype": (lambda m, L, s: m.full((2,), s, np.float64), (FLOAT,)),
    "rint_int": (lambda m, L, s: m.rint(s), (INT,)),
    "int_power_traced_exponent": (lambda m, L, s: s ** s, (INT,)),
    "ldexp": (lambda m, L, s: m.ldexp(s, 2), (INT,)),
}

_DEFAULT = {int: np.dtype(np.int64), float: np.dtype(np.float64)}
_RESULT = {"arctan2": np.float64, "hypot": np.float64, "sqrt": np.float64,
           "astype_f32": np.float32, "full_like_dtype": np.float32, "rint_int": np.float64,
           "ldexp": np.float64, "zeros_like_dtype": np.float64, "full_dtype": np.float64}


def _cases(table):
    return [pytest.param(name, s, id=f"{name}-{type(s).__name__}")
            for name, (_, scalars) in table.items() for s in scalars]


def _check(table, name, s, weak):
    f, _ = table[name]
    want = (np.dtype(_RESULT.get(name, _DEFAULT[type(s)])), weak)
    assert _traced(lambda v: f(tnp, T.lax, v), s) == want, name
    if jax is not None:
        assert _jax(lambda v: f(jnp, jax.lax, v), s) == want, name


@pytest.mark.parametrize("name,s", _cases(KEEP))
def test_operations_keep_weak_types(name, s):
    _check(KEEP, name, s, True)


@pytest.mark.parametrize("name,s", _cases(STRONG))
def test_reductions_casts_and_dtypes_make_strong_results(name, s):
    _check(STRONG, name, s, False)


def test_a_strong_operand_makes_the_result_strong():
    # a NumPy array or typed scalar among the operands; `full_like`'s fill value, the
    # updates of `.at` and the condition of `where` do not count (JAX's rules)
    i8 = np.ones(2, np.int8)
    cases = [(lambda m, s: m.where(True, s, i8), np.int8),
             (lambda m, s: abs(s + i8), np.int8),
             (lambda m, s: m.concatenate([m.reshape(s, (1,)), i8[:1]]), np.int8),
             (lambda m, s: m.clip(s, i8, 5), np.int8),
             (lambda m, s: m.full_like(i8, s), np.int8),
             (lambda m, s: m.zeros(3, np.int8).at[0].add(s), np.int8),
             (lambda m, s: m.reshape(s, (1,)) * np.int64(2), np.int64)]
    for k, (f, dt) in enumerate(cases):
        assert _traced(lambda s: f(tnp, s), INT) == (np.dtype(dt), False), k
        if jax is not None:
            assert _jax(lambda s: f(jnp, s), INT) == (np.dtype(dt), False), k
    # a weak condition does not make `where`'s strong cases weak either
    assert _traced(lambda s: tnp.where(s > 0, i8, i8), INT) == (np.dtype(np.int8), False)


def test_weakness_decides_the_dtype_under_jit():
    # one compiled program: each weak intermediate adapts to the int8/float32 array it meets,
    # each strong one (a reduction, astype) promotes it, as in JAX
    def f(s, t, c, x, y):
        return (abs(s) * x, tnp.square(s) * x, (s // 2) * x, tnp.reshape(s, (1,)) * x,
                tnp.where(c, t, 1.0) * y, tnp.zeros_like(t) + y, tnp.clip(t, 0.0, 1.0) * y,
                tnp.sum(s) * x, tnp.asarray(t).astype(np.float64) * y,
                tnp.broadcast_to(s, (4,)).at[1].set(7) * x)

    x = np.array([1, -2, 3, 100], np.int8)
    y = np.array([0.5, 1.5, -2.0, 3.0], np.float32)
    args = (-3, 2.5, True, x, y)
    out = T.jit(f)(*args)
    x64 = x.astype(np.int64)
    want = [(np.int8, (3 * x64).astype(np.int8)), (np.int8, (9 * x64).astype(np.int8)),
            (np.int8, (-2 * x64).astype(np.int8)), (np.int8, (-3 * x64).astype(np.int8)),
            (np.float32, y * np.float32(2.5)), (np.float32, y), (np.float32, y),
            (np.int64, -3 * x64), (np.float64, y.astype(np.float64) * 2.5),
            (np.int8, (np.array([-3, 7, -3, -3]) * x64).astype(np.int8))]
    for k, (o, (dt, v)) in enumerate(zip(out, want)):
        assert np.asarray(o).dtype == dt, k
        np.testing.assert_array_equal(np.asarray(o), v, err_msg=str(k))
    if jax is not None:
        def g(s, t, c, x, y):
            return (abs(s) * x, jnp.square(s) * x, (s // 2) * x, jnp.reshape(s, (1,)) * x,
                    jnp.where(c, t, 1.0) * y, jnp.zeros_like(t) + y, jnp.clip(t, 0.0, 1.0) * y,
                    jnp.sum(s) * x, jnp.asarray(t).astype(np.float64) * y,
                    jnp.broadcast_to(s, (4,)).at[1].set(7) * x)
        theirs = jax.jit(g)(*args)
        for k, (o, t) in enumerate(zip(out, theirs)):
            assert np.asarray(o).dtype == t.dtype, k
            np.testing.assert_array_equal(np.asarray(o), np.asarray(t), err_msg=str(k))


def test_eager_numpy_inputs_keep_numpys_rules():
    # outside transformations results are NumPy arrays, never weak (README difference)
    r = tnp.abs(np.int64(-3))
    assert not tdtypes.is_weakly_typed(r) and (r * np.ones(2, np.int8)).dtype == np.int64
    assert (tnp.square(3) * np.ones(2, np.int8)).dtype == np.int64
    if jnp is not None:
        assert (jnp.square(3) * jnp.ones(2, np.int8)).dtype == np.int8


def test_integer_operators_of_weak_values_alone():
    for op in (operator.floordiv, operator.mod, operator.lshift, operator.and_):
        assert _traced(lambda s: op(s, s), INT) == (np.dtype(np.int64), True), op
        if jax is not None:
            assert _jax(lambda s: op(s, s), INT) == (np.dtype(np.int64), True), op


def test_python_bool_arguments_are_weak_here():
    # documented difference (README): a Python bool passed to jit is weakly typed here, as the
    # other Python scalars; JAX's is a strong bool. Promotion is the same (bool is the lowest
    # type either way)
    assert _traced(lambda b: b, True) == (np.dtype(np.bool_), True)
    i8 = np.ones(2, np.int8)
    assert _traced(lambda b: b + i8, True) == (np.dtype(np.int8), False)
    if jax is not None:
        assert _jax(lambda b: b, True) == (np.dtype(np.bool_), False)
        assert _jax(lambda b: b + i8, True) == (np.dtype(np.int8), False)


def test_mapped_values_are_strong_here():
    # documented difference (README): inside vmap only the values staged by jit/make_jaxpr
    # carry weakness; a mapped value derived from a weak scalar is strong (JAX: weak)
    i8 = np.ones((2, 3), np.int8)

    def mapped(m, vmap):
        return lambda s, x: vmap(lambda t: m.square(t) * x[0])(m.stack([s, s]))

    def unmapped(m, vmap):
        return lambda s, x: vmap(lambda r: abs(s) * r)(x)

    assert T.eval_shape(mapped(tnp, T.vmap), 2, i8).dtype == np.int64
    assert T.eval_shape(unmapped(tnp, T.vmap), 2, i8).dtype == np.int8
    if jax is not None:
        assert jax.eval_shape(mapped(jnp, jax.vmap), 2, i8).dtype == np.int8
        assert jax.eval_shape(unmapped(jnp, jax.vmap), 2, i8).dtype == np.int8
