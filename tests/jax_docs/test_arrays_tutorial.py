"""The ideas of JAX's "Working with arrays" / "Thinking in JAX" pages, ported beyond
tests/jax_docs/test_sharp_bits.py: functional updates with every `.at` method and mode,
out-of-bounds rules of each indexing route, weak types in promotion, arrays built from
lists of traced values, and the x64 flag. Compared with JAX (float32 data) where importable;
where we follow NumPy instead (float64 defaults) the README's porting table says so."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import dtypes, errors, lax

try:
    import jax
    import jax.numpy as jnp
except ImportError:   # pragma: no cover
    jax = None

needs_jax = pytest.mark.skipif(jax is None, reason="JAX not importable")
pytestmark = pytest.mark.usefixtures("jax_x32")

V = np.arange(5, dtype=np.float32)


def _updates(np_):
    """(name, function of x) for each `.at` method and mode, spelled with np_ (tnp or jnp)."""
    idx = np.array([1, 7, -2])
    return [
        ("get fill", lambda x: x.at[idx].get(mode="fill", fill_value=-1.0)),
        ("get fill nan", lambda x: x.at[7].get(mode="fill")),
        ("get clip", lambda x: x.at[np.array([-9, 7])].get(mode="clip")),
        ("set drop", lambda x: x.at[idx].set(9.0, mode="drop")),
        ("set clip", lambda x: x.at[9].set(9.0, mode="clip")),
        ("set promise", lambda x: x.at[2].set(9.0, mode="promise_in_bounds")),
        ("set negative oob", lambda x: x.at[-6].set(9.0)),
        ("add repeated", lambda x: x.at[np.array([0, 0, 3])].add(1.0)),
        ("multiply slice", lambda x: x.at[1:4].multiply(3.0)),
        ("divide", lambda x: x.at[::2].divide(2.0)),
        ("power", lambda x: x.at[1:3].power(2)),
        ("min max", lambda x: x.at[np.array([0, 4])].min(2.0).at[1].max(5.0)),
        ("apply", lambda x: x.at[1:3].apply(np_.negative)),
        ("hints", lambda x: x.at[np.array([0, 2])].add(1.0, indices_are_sorted=True,
                                                       unique_indices=True)),
        ("int cast", lambda x: x.astype(np.int32).at[0].set(2.7)),
        ("2d column", lambda x: np_.zeros((2, 3), np.float32).at[:, 1].add(x[:2])),
    ]


_OURS = dict(_updates(tnp))
_JITTED = {k: T.jit(f) for k, f in _OURS.items()}


@needs_jax
@pytest.mark.filterwarnings("ignore:scatter inputs have incompatible types")  # JAX's, on int cast
@pytest.mark.parametrize("name", list(_OURS))
def test_at_methods_and_modes_match_jax(name):
    theirs = np.asarray(jax.jit(dict(_updates(jnp))[name])(V))
    got = _JITTED[name](V)
    np.testing.assert_array_equal(got, theirs)
    assert got.dtype == theirs.dtype


def test_at_updates_are_functional_and_eager_spelling_is_tnp_at():
    x = V.copy()
    y = tnp.at(x)[1].set(100.0)
    np.testing.assert_array_equal(x, V)            # the input is untouched
    assert float(y[1]) == 100.0
    with pytest.raises(errors.ImmutableTracerError, match=r"\.at\[idx\]\.set"):
        T.jit(lambda a: a.__setitem__(0, 1.0))(x)
    with pytest.raises(ValueError, match="mode"):
        T.jit(lambda a: a.at[0].set(1.0, mode="wrap"))(x)


@needs_jax
def test_out_of_bounds_rules_of_each_route_match_jax():
    progs = [
        (lambda x: x[11], lambda x: x[11]),                                   # clamp
        (lambda x: tnp.take(x, np.array([10, -1])), lambda x: jnp.take(x, np.array([10, -1]))),
        (lambda x: lax.dynamic_slice(x, (3,), (3,)),
         lambda x: jax.lax.dynamic_slice(x, (3,), (3,))),
        (lambda x: lax.dynamic_update_slice(x, np.ones(2, np.float32), (4,)),
         lambda x: jax.lax.dynamic_update_slice(x, np.ones(2, np.float32), (4,))),
        (lambda x: tnp.take_along_axis(x, np.array([0, 9]), axis=0),
         lambda x: jnp.take_along_axis(x, np.array([0, 9]), axis=0)),
    ]
    for ours, theirs in progs:
        np.testing.assert_array_equal(T.jit(ours)(V), np.asarray(jax.jit(theirs)(V)))


# --- weak types --------------------------------------------------------------------------------

def test_python_scalars_are_weak_in_promotion_eager_and_jitted():
    cases = [
        (np.ones(2, np.float32), 0.5, np.float32),
        (np.ones(2, np.int8), 3, np.int8),
        (np.ones(2, np.float32), 3, np.float32),
        (np.ones(2, np.uint8), True, np.uint8),
        (np.ones(2, np.int32), 1.5, np.float64),   # int meets a Python float: the default float
    ]
    mul = T.jit(lambda a, s: a * s)
    for arr, scalar, want in cases:
        assert tnp.multiply(arr, scalar).dtype == want
        assert mul(arr, scalar).dtype == want


def test_weak_type_survives_arithmetic_between_weak_values_only():
    seen = {}

    def f(a, s):
        seen.update(s=dtypes.is_weakly_typed(s), s2=dtypes.is_weakly_typed(s * 2.0),
                    a=dtypes.is_weakly_typed(a), mixed=dtypes.is_weakly_typed(a * s))
        return a * (s * 2.0)

    assert T.jit(f)(np.float32(1.0), 0.25).dtype == np.float32
    assert seen == {"s": True, "s2": True, "a": False, "mixed": False}
    assert dtypes.is_weakly_typed(1.0) and not dtypes.is_weakly_typed(np.float32(1.0))


@needs_jax
def test_explicit_dtypes_promote_as_jax_and_numpy_agree():
    pairs = [(np.uint8, np.int8), (np.int8, np.int16), (np.float32, np.float64),
             (np.bool_, np.int8), (np.uint16, np.int16)]
    for a, b in pairs:
        want = jnp.promote_types(a, b)
        assert tnp.promote_types(a, b) == want
        got = T.jit(lambda x, y: x + y)(np.ones(1, a), np.ones(1, b))
        assert got.dtype == want


# --- arrays from lists, x64 ----------------------------------------------------------------------

def test_asarray_of_a_list_holding_traced_values():
    f = T.jit(lambda a: tnp.asarray([[a, 2 * a], [a * a, 0.0]]))
    np.testing.assert_array_equal(f(3.0), [[3.0, 6.0], [9.0, 0.0]])
    g = T.grad(lambda a: tnp.sum(tnp.array([a, a * a, 1.0])))
    assert float(g(3.0)) == 7.0
    assert tnp.asarray([1, 2, 3]).dtype == np.int64            # NumPy 2's default int


def test_the_x64_flag_is_readable_and_switchable_but_tnp_stays_numpy():
    before = T.config.jax_enable_x64
    try:
        T.config.update("jax_enable_x64", True)
        assert T.config.jax_enable_x64 is True
        assert tnp.zeros(2).dtype == np.float64
        T.config.update("jax_enable_x64", False)
        assert T.config.jax_enable_x64 is False
        assert tnp.zeros(2).dtype == np.float64                # README: NumPy defaults
    finally:
        T.config.update("jax_enable_x64", before)
    with T.enable_x64(True):
        assert T.config.jax_enable_x64 is True
