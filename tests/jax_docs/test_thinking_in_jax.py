"""The ideas of JAX's "Thinking in JAX" page, ported: the NumPy-like layer over the stricter
`lax` layer, convolutions through `lax.conv_general_dilated`, what `jit` traces (printed tracers,
static arguments, static versus traced operations) and `tnp.where` beside `lax.select`.
Compared with JAX (float32 data, its 32-bit defaults) where importable; where we keep NumPy's
float64 defaults or are more permissive, the README's porting table says so and the comment
beside the assertion gives the reason."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import errors, lax

try:
    import jax
    import jax.numpy as jnp
except ImportError:   # pragma: no cover
    jax = None

needs_jax = pytest.mark.skipif(jax is None, reason="JAX not importable")
pytestmark = pytest.mark.usefixtures("jax_x32")


# --- the NumPy-like layer and lax ------------------------------------------------------------

def test_tnp_promotes_mixed_python_scalars_lax_does_not():
    # the NumPy-like layer promotes an int and a float (NumPy's float64 default here, JAX's
    # float32: the README's "NumPy 2 dtype rules" row)
    assert float(tnp.add(1, 1.0)) == 2.0 and tnp.add(1, 1.0).dtype == np.float64
    # lax refuses to guess a dtype for two weak values of different kinds, as JAX does
    with pytest.raises(TypeError):
        lax.add(1, 1.0)
    with pytest.raises(TypeError):
        T.jit(lambda: lax.add(1, 1.0))()
    # a typed operand fixes the dtype: the Python float adapts to it
    out = lax.add(np.float32(1), 1.0)
    assert out.dtype == np.float32 and float(out) == 2.0


@needs_jax
def test_lax_add_with_a_typed_operand_matches_jax():
    for a, b in [(np.float32(1.5), 2.0), (np.ones(3, np.float32), 2.5),
                 (np.arange(3, dtype=np.int32), 4), (np.int8(3), np.int8(4))]:
        ours, theirs = lax.add(a, b), jax.jit(jax.lax.add)(a, b)
        np.testing.assert_array_equal(ours, theirs)
        assert ours.dtype == theirs.dtype
        assert T.jit(lax.add)(a, b).dtype == theirs.dtype
    with pytest.raises(TypeError):
        jax.lax.add(1, 1.0)


def test_lax_add_of_two_typed_arrays_of_different_dtypes_is_promoted():
    # README ("lax.add(x, y) dtypes"): arrays of different dtypes are promoted here, where
    # JAX raises TypeError; a JAX program never relies on that error, so it ports unchanged
    out = lax.add(np.ones(2, np.int32), np.ones(2, np.float32))
    np.testing.assert_array_equal(out, [2.0, 2.0])
    assert out.dtype == np.float64


def test_eager_results_are_numpy_arrays_and_traced_ones_are_immutable():
    # JAX's eager arrays reject `x[0] = 10` too; ours are plain NumPy arrays (README:
    # "results are plain numpy.ndarrays"), so only traced values are immutable, and a JAX
    # program (which never assigns in place) ports unchanged
    x = tnp.arange(5)
    assert type(x) is np.ndarray
    y = tnp.at(x)[0].set(10)
    assert int(x[0]) == 0 and int(y[0]) == 10
    with pytest.raises(TypeError, match=r"immutable"):
        T.jit(lambda x: x.__setitem__(0, 10))(x)
    # the one way this shows in JAX-style code: augmented assignment updates a NumPy array in
    # place (README row "x += v"), where JAX rebinds the name to a new array
    a = tnp.zeros(2)
    alias = a
    a += 1.0
    np.testing.assert_array_equal(alias, [1.0, 1.0])
    b = tnp.zeros(2)
    alias_b = b
    b = b + 1.0                       # the spelling that keeps the old value
    np.testing.assert_array_equal(alias_b, [0.0, 0.0])

    def step(p):                      # under jit the traced value is rebound, as in JAX
        q = p
        p += 1.0
        return q, p
    q, p = T.jit(step)(np.zeros(2))
    np.testing.assert_array_equal(q, [0.0, 0.0])
    np.testing.assert_array_equal(p, [1.0, 1.0])


# --- convolutions ----------------------------------------------------------------------------

_X = np.linspace(0, 10, 50).astype(np.float32)
_W = np.array([1.0, 2.0, 1.0], np.float32) / 4.0
_LHS = (np.arange(1 * 2 * 7 * 6, dtype=np.float32).reshape(1, 2, 7, 6) % 5) / 4
_RHS = (np.arange(3 * 2 * 3 * 2, dtype=np.float32).reshape(3, 2, 3, 2) % 7) / 7


def _convs(lax_):
    """(name, function of (lhs, rhs)) convolutions spelled with lax_ (ours or JAX's)."""
    dn = ("NHWC", "HWIO", "NHWC")
    nhwc = lambda f: lambda a, b: f(a.transpose(0, 2, 3, 1), b.transpose(2, 3, 1, 0))  # noqa
    return [
        ("1d smoothing as conv",
         lambda a, b: lax_.conv_general_dilated(_X[None, None], _W[None, None], (1,), "SAME")),
        ("valid", lambda a, b: lax_.conv_general_dilated(a, b, (1, 1), "VALID")),
        ("same strided", lambda a, b: lax_.conv_general_dilated(a, b, (2, 2), "SAME")),
        ("explicit padding and dilations",
         lambda a, b: lax_.conv_general_dilated(a, b, (2, 1), ((1, 2), (0, 1)),
                                                lhs_dilation=(1, 2), rhs_dilation=(2, 1))),
        ("same lower", lambda a, b: lax_.conv_general_dilated(a, b, (1, 1), "SAME_LOWER",
                                                              rhs_dilation=(1, 2))),
        ("NHWC/HWIO", nhwc(lambda a, b: lax_.conv_general_dilated(
            a, b, (1, 1), "SAME", dimension_numbers=dn))),
        ("dimension numbers object", nhwc(lambda a, b: lax_.conv_general_dilated(
            a, b, (1, 1), "VALID",
            dimension_numbers=lax_.conv_dimension_numbers(a.shape, b.shape, dn)))),
        ("feature groups", lambda a, b: lax_.conv_general_dilated(
            a, b[:2, :1], (1, 1), "SAME", feature_group_count=2)),
        ("lax.conv", lambda a, b: lax_.conv(a, b, (1, 1), "SAME")),
        ("transpose", lambda a, b: lax_.conv_transpose(
            a, b.transpose(0, 1, 2, 3)[:, :, :, :], (2, 2), "SAME",
            dimension_numbers=("NCHW", "OIHW", "NCHW"))),
    ]


def test_tnp_convolve_is_numpy_convolve():
    for mode in ("full", "same", "valid"):
        np.testing.assert_allclose(T.jit(lambda x, w: tnp.convolve(x, w, mode=mode))(_X, _W),
                                   np.convolve(_X, _W, mode=mode), rtol=1e-6)


@needs_jax
@pytest.mark.parametrize("name", [n for n, _ in _convs(lax)])
def test_conv_general_dilated_matches_jax(name):
    ours = T.jit(dict(_convs(lax))[name])(_LHS, _RHS)
    theirs = np.asarray(jax.jit(dict(_convs(jax.lax))[name])(_LHS, _RHS))
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-6)


@needs_jax
def test_gradients_of_a_strided_dilated_conv_match_jax():
    def loss(lax_, np_):
        return lambda a, b: np_.sum(lax_.conv_general_dilated(
            a, b, (2, 1), ((1, 1), (2, 0)), rhs_dilation=(1, 2)) ** 2)
    ours = T.jit(T.grad(loss(lax, tnp), argnums=(0, 1)))(_LHS, _RHS)
    theirs = jax.jit(jax.grad(loss(jax.lax, jnp), argnums=(0, 1)))(_LHS, _RHS)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o, np.asarray(t), rtol=1e-5, atol=1e-5)


# --- what jit sees --------------------------------------------------------------------------

def test_printing_inside_jit_shows_an_abstract_value_not_numbers(capsys):
    @T.jit
    def f(x, y):
        print("x =", x)
        print("y =", y)
        return tnp.dot(x + 1, y + 1)

    x, y = np.ones((3, 4), np.float32), np.ones(4, np.float32)
    np.testing.assert_array_equal(f(x, y), [16.0, 16.0, 16.0])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "f32[3,4]" in out[0] and "f32[4]" in out[1]
    assert "Traced" in out[0] and "1." not in out[0]
    f(x, y)                                             # cached: no second trace, no print
    assert capsys.readouterr().out == ""


def test_the_traced_program_holds_only_array_operations():
    closed = T.make_jaxpr(lambda x, y: tnp.dot(x + 1, y + 1))(np.ones((3, 4), np.float32),
                                                            np.ones(4, np.float32))
    names = [e.primitive.name for e in closed.jaxpr.eqns]
    # JAX adds the weak scalar directly; our IR spells its broadcast out
    assert [n for n in names if n != "broadcast_in_dim"] == ["add", "add", "dot_general"]
    assert str(closed.jaxpr.outvars[0].aval.str_short()) == "f32[3]"


def test_static_argnums_make_a_python_branch_legal_and_retrace_per_value():
    traces = []

    def f(x, neg):
        traces.append(neg)
        return -x if neg else x

    with pytest.raises(errors.TracerBoolConversionError):
        T.jit(f)(1.0, True)
    g = T.jit(f, static_argnums=(1,))
    traces.clear()
    assert float(g(1.0, True)) == -1.0 and float(g(2.0, True)) == -2.0
    assert float(g(1.0, False)) == 1.0
    assert traces == [True, False]


def test_shapes_are_static_numbers_but_values_of_traced_arrays_are_not():
    x = np.ones((2, 3), np.float32)
    # x.shape is a tuple of Python ints under jit: computing a new shape from it with NumPy
    # (static) works, as in JAX
    np.testing.assert_array_equal(T.jit(lambda x: x.reshape(np.prod(x.shape)))(x), np.ones(6))
    # a shape taken from a traced argument's values cannot be
    with pytest.raises(errors.ConcretizationTypeError):
        T.jit(lambda x, n: tnp.reshape(x, (n,)))(x, 6)
    with pytest.raises(errors.ConcretizationTypeError):
        T.jit(lambda n: tnp.zeros(n))(3)
    # JAX stages even `jnp.array(x.shape).prod()` (a TypeError under jax.jit). Here a tnp
    # operation on constants only is computed by NumPy while tracing (README: constants are
    # NumPy values), so the product is a concrete number and the reshape works: a JAX
    # program never relies on that error, so it ports unchanged.
    np.testing.assert_array_equal(
        T.jit(lambda x: x.reshape(tnp.array(x.shape).prod()))(x), np.ones(6))


@needs_jax
def test_the_static_shape_recipe_matches_jax_and_the_traced_one_fails_in_jax():
    x = np.ones((2, 3), np.float32)
    ours = T.jit(lambda x: x.reshape(np.prod(x.shape)))(x)
    theirs = jax.jit(lambda x: x.reshape(np.prod(x.shape)))(x)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.dtype == theirs.dtype
    with pytest.raises(TypeError):
        jax.jit(lambda x: x.reshape(jnp.array(x.shape).prod()))(x)


def test_boolean_mask_indexing_needs_a_static_shape_but_where_does_not():
    x = np.array([-1.0, 2.0, -3.0, 4.0], np.float32)
    with pytest.raises(errors.NonConcreteBooleanIndexError):
        T.jit(lambda x: x[x < 0])(x)
    np.testing.assert_array_equal(T.jit(lambda x: tnp.where(x < 0, 0.0, x))(x),
                                  [0.0, 2.0, 0.0, 4.0])
    np.testing.assert_array_equal(x[x < 0], [-1.0, -3.0])     # eagerly: NumPy


# --- tnp.where and lax.select -----------------------------------------------------------------

def _selects(np_, lax_):
    p = np.array([True, False, True])
    return [
        ("where broadcasts", lambda a, b: np_.where(a > 1, a, 0.0)),
        ("where promotes", lambda a, b: np_.where(p, a, np.arange(3, dtype=np.int16))),
        ("where one argument", lambda a, b: np_.where(a > 1, size=3, fill_value=-1)[0]),
        ("select same shapes", lambda a, b: lax_.select(p, a, b)),
        ("select scalar predicate", lambda a, b: lax_.select(np.bool_(False), a, b)),
        ("select_n", lambda a, b: lax_.select_n(np.array([0, 1, 1]), a, b)),
    ]


@needs_jax
@pytest.mark.parametrize("name", [n for n, _ in _selects(tnp, lax)])
def test_where_and_select_match_jax(name):
    a, b = np.arange(3, dtype=np.float32), -np.ones(3, np.float32)
    ours = T.jit(dict(_selects(tnp, lax))[name])(a, b)
    theirs = np.asarray(jax.jit(dict(_selects(jnp, jax.lax))[name])(a, b))
    np.testing.assert_array_equal(ours, theirs)
    if name != "where one argument":           # indices: int64 here (NumPy's default int)
        assert ours.dtype == theirs.dtype


def test_select_requires_a_boolean_predicate_of_the_cases_shape():
    a, b = np.ones(2, np.float32), np.zeros(2, np.float32)
    for select in (lax.select, T.jit(lax.select)):
        with pytest.raises(TypeError, match="predicate must be bool or integer"):
            select(np.array([1.0, 0.0]), a, b)
    with pytest.raises(TypeError, match="predicate must be bool or integer"):
        lax.select_n(np.array([1.0, 0.0]), a, b)
    np.testing.assert_array_equal(lax.select(np.array([1, 0]), a, b), [1.0, 0.0])
    with pytest.raises(TypeError):
        T.jit(lax.select)(np.array([True, False, True]), a, b)
    # README: a scalar case or cases of different dtypes are broadcast and promoted here
    # (JAX: TypeError), as for lax.add; a JAX program never relies on that error
    np.testing.assert_array_equal(lax.select(np.array([True, False]), a, np.float32(7)),
                                  [1.0, 7.0])


def test_where_and_select_differentiate_through_the_chosen_branch():
    p = np.array([True, False, True])
    g1 = T.grad(lambda a: tnp.sum(tnp.where(p, a ** 2, 3.0 * a)))(np.ones(3))
    g2 = T.grad(lambda a: tnp.sum(lax.select(p, a ** 2, 3.0 * a)))(np.ones(3))
    np.testing.assert_array_equal(g1, [2.0, 3.0, 2.0])
    np.testing.assert_array_equal(g2, g1)
