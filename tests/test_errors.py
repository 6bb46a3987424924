"""User-facing errors: types (TypeError/ValueError subclasses), actionable messages, and the
user's own source line."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.errors import (ConcretizationTypeError, NonDifferentiableError, ShapeError,
                               TracerArrayConversionError, TracerBoolConversionError,
                               TracerIntegerConversionError, UnexpectedTracerError)

HERE = "test_errors.py:"
x3 = np.ones(3)


def test_error_hierarchy():
    for cls in (ConcretizationTypeError, TracerBoolConversionError, TracerIntegerConversionError,
                TracerArrayConversionError, UnexpectedTracerError, NonDifferentiableError):
        assert issubclass(cls, TypeError)
    assert issubclass(ShapeError, ValueError)
    assert issubclass(ShapeError, TypeError)         # JAX raises TypeError for these


@pytest.mark.parametrize("bad", [
    lambda x: x + tnp.ones(4), lambda x: tnp.matmul(tnp.ones((2, 4)), x),
    lambda x: tnp.dot(x, tnp.ones((4, 2))),
])
def test_shape_errors_are_caught_as_type_errors_as_in_jax(bad):
    for run in (T.jit(bad), lambda x: T.grad(lambda y: tnp.sum(bad(y)))(x)):
        with pytest.raises(TypeError):
            run(np.ones(3))
    assert issubclass(TracerBoolConversionError, ConcretizationTypeError)
    assert T.ConcretizationTypeError is ConcretizationTypeError
    assert T.UnexpectedTracerError is UnexpectedTracerError


# ---------------------------------------------------------------------------------------------
# concretization
# ---------------------------------------------------------------------------------------------

def _branchy(x):
    if x.sum() > 0:
        return x * 2
    return -x


def test_python_if_works_under_grad_eagerly():
    np.testing.assert_allclose(T.grad(lambda x: _branchy(x).sum())(x3), [2, 2, 2])
    np.testing.assert_allclose(T.grad(lambda x: _branchy(x).sum())(-x3), [-1, -1, -1])
    _, t = T.jvp(_branchy, (x3,), (x3,))
    np.testing.assert_allclose(t, 2 * x3)


def test_python_if_under_make_jaxpr_raises_with_hint():
    with pytest.raises(ConcretizationTypeError) as e:
        T.make_jaxpr(_branchy)(x3)
    assert isinstance(e.value, TracerBoolConversionError)
    msg = str(e.value)
    assert "lax.cond" in msg and "static_argnums" in msg
    assert HERE in msg and "_branchy" in msg          # the user's line with the `if`
    assert "bool[]" in msg


@pytest.mark.parametrize("conv,err", [(int, TracerIntegerConversionError),
                                      (float, ConcretizationTypeError),
                                      (bool, TracerBoolConversionError)])
def test_conversions_under_make_jaxpr(conv, err):
    with pytest.raises(err) as e:
        T.make_jaxpr(lambda x: conv(x[0]))(x3)
    assert HERE in str(e.value)


def test_index_conversion_and_numpy_conversion():
    with pytest.raises(TracerIntegerConversionError):
        T.make_jaxpr(lambda x: [1, 2, 3][x.astype(np.int32)[0]])(x3)
    with pytest.raises(TracerArrayConversionError) as e:
        T.make_jaxpr(lambda x: np.asarray(x))(x3)
    assert "tnp" in str(e.value) and HERE in str(e.value)


def test_concrete_shapes_required():
    with pytest.raises(ConcretizationTypeError):
        T.make_jaxpr(lambda x: tnp.zeros(x[0].astype(int)))(x3)
    with pytest.raises(ConcretizationTypeError):
        T.make_jaxpr(lambda x: tnp.arange(x[0]))(x3)
    with pytest.raises(ConcretizationTypeError):
        T.make_jaxpr(lambda x: x.reshape(x[0].astype(int), 3))(x3)


def test_static_argnums_allows_python_control_flow():
    def f(x, flag):
        return x * 2 if flag else x - 1

    assert "mul" in str(T.make_jaxpr(f, static_argnums=1)(x3, True))
    assert "sub" in str(T.make_jaxpr(f, static_argnums=(1,))(x3, False))


# ---------------------------------------------------------------------------------------------
# leaked tracers
# ---------------------------------------------------------------------------------------------

_leaks = []


def _leaky(x):
    _leaks.append(x)
    return tnp.sum(x * x)


@pytest.mark.parametrize("transform", ["grad", "jvp", "make_jaxpr", "vjp"])
def test_leaked_tracer(transform):
    _leaks.clear()
    if transform == "grad":
        T.grad(_leaky)(x3)
    elif transform == "jvp":
        T.jvp(_leaky, (x3,), (x3,))
    elif transform == "vjp":
        T.vjp(_leaky, x3)
    else:
        T.make_jaxpr(_leaky)(x3)
    leaked = _leaks[0]
    with pytest.raises(UnexpectedTracerError) as e:
        tnp.sin(leaked)
    msg = str(e.value)
    assert "already returned" in msg and HERE in msg
    with pytest.raises(UnexpectedTracerError):
        leaked + 1.0
    with pytest.raises(UnexpectedTracerError):
        T.grad(lambda y: tnp.sum(y * leaked))(x3)
    with pytest.raises(UnexpectedTracerError):
        T.make_jaxpr(lambda y: y * leaked)(x3)
    with pytest.raises(UnexpectedTracerError):
        T.jvp(lambda y: y * leaked, (x3,), (x3,))


def test_leak_via_closure_attribute():
    class Model:
        pass

    m = Model()

    def f(x):
        m.cache = x * 2
        return m.cache.sum()

    T.grad(f)(x3)
    with pytest.raises(UnexpectedTracerError):
        T.grad(lambda x: (x * m.cache).sum())(x3)


# ---------------------------------------------------------------------------------------------
# shape errors name both shapes and the user's line
# ---------------------------------------------------------------------------------------------

SHAPE_CASES = [
    ("add", lambda x: x + tnp.ones(4), ["(3,)", "(4,)"]),
    ("lax_add", lambda x: lax.add(x, tnp.ones(4)), ["(3,)", "(4,)"]),
    ("maximum", lambda x: tnp.maximum(x, tnp.ones((2, 2))), ["(3,)", "(2, 2)"]),
    ("where", lambda x: tnp.where(x > 0, x, tnp.ones(4)), ["(3,)", "(4,)"]),
    ("matmul", lambda x: x @ tnp.ones((4, 2)), ["3", "4"]),
    ("dot", lambda x: tnp.dot(x, tnp.ones(4)), ["(3,)", "(4,)"]),
    ("einsum", lambda x: tnp.einsum("i,i->", x, tnp.ones(4)), ["(3,)", "(4,)"]),
    ("reshape", lambda x: tnp.reshape(x, (2, 2)), ["(3,)", "(2, 2)"]),
    ("broadcast_to", lambda x: tnp.broadcast_to(x, (4,)), ["(3,)", "(4,)"]),
    ("concatenate", lambda x: tnp.concatenate([x[None], tnp.ones((1, 4))]),
     ["(1, 3)", "(1, 4)"]),
    ("stack", lambda x: tnp.stack([x, tnp.ones(4)]), ["(3,)", "(4,)"]),
]


@pytest.mark.parametrize("mode", ["make_jaxpr", "grad", "eager"])
@pytest.mark.parametrize("name,fn,shapes", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shape_mismatch_errors(name, fn, shapes, mode):
    if mode == "eager" and name in ("add", "matmul"):
        pytest.skip("operators on NumPy arrays are NumPy's own")
    with pytest.raises(ShapeError) as e:
        if mode == "eager":
            fn(x3)
        elif mode == "make_jaxpr":
            T.make_jaxpr(fn)(x3)
        else:
            T.grad(lambda x: tnp.sum(fn(x)))(x3)
    msg = str(e.value)
    for s in shapes:
        assert s in msg, msg
    assert HERE in msg, msg


def test_shape_error_is_value_error():
    with pytest.raises(ValueError):
        T.make_jaxpr(lambda x: x + tnp.ones(4))(x3)


# ---------------------------------------------------------------------------------------------
# grad misuse
# ---------------------------------------------------------------------------------------------

def test_grad_non_scalar_names_shape_and_line():
    with pytest.raises(TypeError) as e:
        T.grad(lambda x: x * 2)(x3)
    msg = str(e.value)
    assert "scalar" in msg and "(3,)" in msg and HERE in msg
    assert "jacrev" in msg or "vjp" in msg


def test_grad_integer_input_names_argument():
    with pytest.raises(TypeError) as e:
        T.grad(lambda a, b: tnp.sum(a * b), argnums=(0, 1))(x3, np.arange(3, dtype=np.int32))
    msg = str(e.value)
    assert "argument 1" in msg and "int32" in msg


def test_grad_of_integer_output():
    with pytest.raises(TypeError) as e:
        T.grad(lambda x: tnp.argmax(x))(x3)
    assert "int64" in str(e.value)


def test_unsupported_argument_type():
    with pytest.raises(TypeError):
        T.grad(lambda x: x)("not an array")


def test_axis_and_index_errors():
    from numpy.exceptions import AxisError
    with pytest.raises(AxisError):
        T.make_jaxpr(lambda x: tnp.sum(x, axis=2))(x3)
    with pytest.raises(IndexError):
        T.make_jaxpr(lambda x: x[:, 0])(x3)
    # an out-of-bounds update of a traced array is dropped (as JAX), see test_indexing_parity
    np.testing.assert_array_equal(T.jit(lambda x: x.at[5].set(1.0))(x3), x3)


def test_pjit_raises_when_the_backend_cannot_be_imported(monkeypatch):
    # a broken backend install must not silently fall back to interpreting
    import sys

    from transforms.pjit import pjit_p
    closed = T.make_jaxpr(lambda x: x * 2.0)(np.ones(3))
    monkeypatch.setitem(sys.modules, "transforms.backend.numba", None)
    with pytest.raises(ImportError, match=r"jit\(double\): the Numba backend could not be "
                                          r"imported"):
        pjit_p.bind(np.ones(3), jaxpr=closed, name="double")
