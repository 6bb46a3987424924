"""Debugging programs: transforms.debug.print / callback under jit, vmap, grad and scan
(captured with capsys), make_jaxpr and lowered text for inspection, and the errors the
"sharp bits" tutorial shows (Python control flow on traced values, leaked tracers)."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax

from ._helpers import require_namespace


@pytest.fixture
def debug():
    return require_namespace("transforms.debug")


def test_debug_print_under_jit(debug, capsys):
    @T.jit
    def f(x):
        y = tnp.sin(x)
        debug.print("y={y}", y=y)
        return y * 2

    out = f(np.array([0.0, 1.0]))
    np.testing.assert_allclose(out, 2 * np.sin([0.0, 1.0]))
    assert capsys.readouterr().out == f"y={np.sin(np.array([0.0, 1.0]))}\n"


def test_debug_print_positional_format(debug, capsys):
    T.jit(lambda x, n: debug.print("x={} n={}", x, n) or x)(2.5, 3)
    assert capsys.readouterr().out == "x=2.5 n=3\n"


def test_debug_print_under_vmap_prints_each_element(debug, capsys):
    T.vmap(lambda x: debug.print("v {}", x) or x)(np.array([1.0, 2.0]))
    assert sorted(capsys.readouterr().out.splitlines()) == ["v 1.0", "v 2.0"]


def test_debug_print_under_grad_prints_primal(debug, capsys):
    def f(x):
        debug.print("x is {}", x)
        return x ** 2

    assert T.grad(f)(3.0) == 6.0
    assert capsys.readouterr().out.splitlines() == ["x is 3.0"]


def test_debug_print_inside_scan_every_iteration_in_order(debug, capsys):
    def body(c, x):
        debug.print("c={} x={}", c, x, ordered=True)
        return c + x, None

    T.jit(lambda xs: lax.scan(body, 0, xs))(np.array([1, 2, 3]))
    assert capsys.readouterr().out.splitlines() == ["c=0 x=1", "c=1 x=2", "c=3 x=3"]


def test_debug_callback_collects_intermediate_values(debug):
    seen = []

    @T.jit
    def f(x):
        h = x * 3
        debug.callback(lambda v: seen.append(np.asarray(v).copy()), h)
        return h + 1

    f(np.arange(3.0))
    f(np.ones(3))
    np.testing.assert_array_equal(seen[0], [0.0, 3.0, 6.0])
    np.testing.assert_array_equal(seen[1], [3.0, 3.0, 3.0])


def test_debug_callback_spots_nan_in_forward_pass(debug):
    found = []
    check_nan = lambda v: found.append(bool(np.isnan(v).any()))

    @T.jit
    def f(x):
        y = tnp.log(x)
        debug.callback(check_nan, y)
        return tnp.sum(y)

    f(np.array([1.0, 2.0]))
    f(np.array([-1.0, 2.0]))
    assert found == [False, True]


def test_make_jaxpr_shows_the_primitives():
    text = str(T.make_jaxpr(lambda x: tnp.sum(tnp.sin(x) * 2.0))(np.ones(3)))
    assert "sin" in text and "mul" in text and "reduce_sum" in text
    assert text.startswith("{ lambda ")


def test_make_jaxpr_of_grad_contains_cos():
    text = str(T.make_jaxpr(T.grad(tnp.sin))(1.0))
    assert "cos" in text


def test_lowered_text_and_source():
    lowered = T.jit(lambda x: tnp.exp(x) + 1.0).lower(np.ones(2))
    assert "exp" in lowered.as_text()
    assert isinstance(lowered.source, str) and lowered.source


def test_python_if_on_traced_value_is_an_actionable_error():
    def f(x):
        if x > 0:
            return x
        return -x

    with pytest.raises(T.TracerBoolConversionError) as e:
        T.jit(f)(1.0)
    assert "if x > 0" in str(e.value) or "test_debugging.py" in str(e.value)
    # the fixes the tutorial gives: static_argnums, or lax.cond
    assert T.jit(f, static_argnums=0)(-2.0) == 2.0
    assert T.jit(lambda x: lax.cond(x > 0, lambda x: x, lambda x: -x, x))(-2.0) == 2.0


def test_int_of_traced_value_is_a_concretization_error():
    with pytest.raises(T.ConcretizationTypeError):
        T.jit(lambda x, n: tnp.zeros(int(n)) + x)(1.0, 3)


def test_leaked_tracer_is_detected():
    leaked = []

    @T.jit
    def f(x):
        leaked.append(x)
        return x + 1

    f(1.0)
    with pytest.raises(T.UnexpectedTracerError):
        T.jit(lambda y: leaked[0] + y)(2.0)


def test_grad_of_non_scalar_output_is_a_type_error():
    with pytest.raises(TypeError, match="scalar"):
        T.grad(lambda x: x * 2)(np.ones(3))
