"""The ideas of JAX's "Control flow and logical operators with JIT" tutorial, ported: Python
control flow on static values versus `lax` control flow on traced ones, the errors a traced
condition gives (and what they suggest), logical operators on traced booleans, boolean
masks, and `where` with gradients that would be NaN on the branch not taken."""
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


def _relu_py(x):
    """Python control flow: fine eagerly and under grad, not under jit."""
    if x > 0:
        return x
    return 0.0 * x


def test_python_if_on_a_traced_value_names_the_line_and_the_alternatives():
    assert float(_relu_py(3.0)) == 3.0
    assert float(T.grad(_relu_py)(3.0)) == 1.0
    with pytest.raises(errors.TracerBoolConversionError) as e:
        T.jit(_relu_py)(3.0)
    msg = str(e.value)
    assert "test_control_flow_jit.py" in msg and "_relu_py" in msg
    for hint in ("lax.cond", "tnp.where", "static_argnums"):
        assert hint in msg
    assert isinstance(e.value, errors.ConcretizationTypeError)


def test_a_loop_bound_from_a_traced_value_is_an_integer_conversion_error():
    def f(x, n):
        for _ in range(n):
            x = x + 1.0
        return x

    with pytest.raises(errors.TracerIntegerConversionError, match="int"):
        T.jit(f)(1.0, 3)
    assert float(T.jit(f, static_argnames="n")(1.0, n=3)) == 4.0
    # the lax way: a fori_loop with a traced trip count compiles
    g = T.jit(lambda x, n: lax.fori_loop(0, n, lambda i, c: c + 1.0, x))
    assert float(g(1.0, 3)) == 4.0 and float(g(1.0, 5)) == 6.0
    assert g._cache_size() == 1


def test_python_and_or_raise_but_the_elementwise_operators_trace():
    @T.jit
    def both_positive(a, b):
        return (a > 0) & (b > 0), (a > 0) | (b > 0), ~(a > 0), tnp.logical_xor(a > 0, b > 0)

    got = [bool(v) for v in both_positive(1.0, -1.0)]
    assert got == [False, True, False, True]
    with pytest.raises(errors.TracerBoolConversionError, match="and`/`or"):
        T.jit(lambda a, b: (a > 0) and (b > 0))(1.0, -1.0)


_CLIP = T.jit(lambda x: lax.cond(x > 1.0, lambda v: v - 1.0, lambda v: v * 0.5, x))


def test_cond_traces_both_branches_and_runs_one():
    traced = []

    def hi(v):
        traced.append("hi")
        return v - 1.0

    def lo(v):
        traced.append("lo")
        return v * 0.5

    f = T.jit(lambda x: lax.cond(x > 1.0, hi, lo, x))
    assert float(f(3.0)) == 2.0 and float(f(0.5)) == 0.25
    assert sorted(traced) == ["hi", "lo"]            # one trace, both branches
    assert float(_CLIP(3.0)) == 2.0 and float(_CLIP(0.5)) == 0.25


def test_cond_accepts_jaxs_operand_keyword_and_numeric_predicates():
    assert float(lax.cond(True, lambda v: v + 1.0, lambda v: v - 1.0, operand=2.0)) == 3.0
    assert float(T.jit(lambda p: lax.cond(p, lambda: 1.0, lambda: 2.0))(0)) == 2.0
    assert float(T.jit(lambda p: lax.cond(p, lambda: 1.0, lambda: 2.0))(7)) == 1.0
    with pytest.raises(TypeError, match="not both"):
        lax.cond(True, lambda v: v, lambda v: v, 1.0, operand=2.0)


def test_cond_predicate_must_be_a_scalar():
    with pytest.raises(TypeError, match=r"cond predicate must be a scalar, got bool\[1\]"):
        T.jit(lambda p: lax.cond(p, lambda: 1.0, lambda: 2.0))(np.array([True]))


def test_cond_branches_must_agree_in_type():
    with pytest.raises(TypeError, match=r"true_fun output f32\[\] != false_fun output i32\[\]"):
        lax.cond(True, lambda v: v, lambda v: v.astype(np.int32), np.float32(1.0))


def test_switch_with_a_traced_index_and_its_clamping():
    branches = [lambda v: v * 0.0, lambda v: v + 10.0, lambda v: -v]
    f = T.jit(lambda i, v: lax.switch(i, branches, v))
    assert [float(f(i, 2.0)) for i in (-3, 0, 1, 2, 9)] == [0.0, 0.0, 12.0, -2.0, -2.0]


def test_while_loop_runs_a_data_dependent_number_of_steps():
    # steps of halving until below 1: the count depends on the value, not just the shape
    f = T.jit(lambda x: lax.while_loop(lambda c: c[0] >= 1.0,
                                       lambda c: (c[0] / 2.0, c[1] + 1), (x, 0)))
    assert [int(f(v)[1]) for v in (0.5, 1.0, 7.0, 1000.0)] == [0, 1, 3, 10]


def test_boolean_masks_under_jit_need_where():
    x = np.array([-1.0, 2.0, -3.0, 4.0])
    with pytest.raises(errors.NonConcreteBooleanIndexError, match="tnp.where"):
        T.jit(lambda a: a[a > 0])(x)
    with pytest.raises(errors.NonConcreteBooleanIndexError, match=r"tnp.where\(mask, v, x\)"):
        T.jit(lambda a: a.at[a > 0].set(0.0))(x)
    # still an IndexError (JAX's base) and a ConcretizationTypeError (ours before)
    with pytest.raises(IndexError):
        T.jit(lambda a: a[a > 0])(x)
    # the ways that compile
    np.testing.assert_array_equal(T.jit(lambda a: tnp.where(a > 0, a, 0.0))(x), [0, 2, 0, 4])
    assert float(T.jit(lambda a: tnp.sum(a, where=a > 0))(x)) == 6.0
    # eagerly a mask is concrete: NumPy's result
    np.testing.assert_array_equal(tnp.at(x)[x > 0].set(0.0), [-1, 0, -3, 0])


def _safe_log(x):
    # the inner where keeps log's argument away from 0, so its derivative stays finite
    ok = x > 0
    return tnp.where(ok, tnp.log(tnp.where(ok, x, 1.0)), 0.0)


def test_where_gradient_nan_from_the_untaken_branch_and_the_double_where():
    g_naive = T.grad(lambda x: tnp.where(x > 0, tnp.sqrt(x), 0.0))
    assert np.isnan(float(g_naive(0.0)))      # 0 * inf from the untaken branch, as JAX
    g = T.grad(_safe_log)
    assert float(g(0.0)) == 0.0 and float(g(-1.0)) == 0.0 and float(g(4.0)) == 0.25
    np.testing.assert_array_equal(T.jit(T.vmap(g))(np.array([-2.0, 0.0, 2.0])), [0, 0, 0.5])


@needs_jax
def test_where_gradients_match_jax():
    xs = [-1.0, 0.0, 0.5, 2.0]
    for ours, theirs in (
            (lambda x: tnp.where(x > 0, tnp.sqrt(x), 0.0),
             lambda x: jnp.where(x > 0, jnp.sqrt(x), 0.0)),
            (lambda x: tnp.where(x > 0, tnp.log(x), 0.0),
             lambda x: jnp.where(x > 0, jnp.log(x), 0.0)),
            (_safe_log,
             lambda x: jnp.where(x > 0, jnp.log(jnp.where(x > 0, x, 1.0)), 0.0))):
        for x in xs:
            a = float(T.grad(ours)(np.float32(x)))
            b = float(jax.grad(theirs)(np.float32(x)))
            np.testing.assert_equal(a, b)


def test_fori_loop_body_that_changes_the_value_names_fori_loop_and_the_path():
    with pytest.raises(TypeError, match=r"fori_loop: body_fun must return a value of "
                                        r"init_val's structure"):
        lax.fori_loop(0, 3, lambda i, v: {"a": v["a"], "b": v["a"]}, {"a": 1.0})
    with pytest.raises(TypeError, match=r"fori_loop: body_fun returned shape \(1,\) for "
                                        r"val\['w'\], but init_val\['w'\] has shape \(2,\)"):
        T.jit(lambda n: lax.fori_loop(0, n, lambda i, v: {"w": v["w"][:1]},
                                      {"w": tnp.ones(2)}))(3)


# the tutorial's summary: which constructs differentiate in which mode
_CONSTRUCTS = {
    "cond": (lambda x: lax.cond(x > 0, lambda v: v * v, lambda v: -v, x), True),
    "switch": (lambda x: lax.switch(1, [lambda v: v, lambda v: v * v * v], x), True),
    "fori static": (lambda x: lax.fori_loop(0, 3, lambda i, v: v * x, 1.0), True),
    # under jit the bound 3 is traced: the loop is a while_loop
    "fori traced": (lambda x: T.jit(lambda x, n: lax.fori_loop(0, n, lambda i, v: v * x, 1.0))(
        x, 3), False),
    "while": (lambda x: lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * x),
                                       (0, 1.0))[1], False),
    "scan": (lambda x: lax.scan(lambda c, _: (c * x, None), 1.0, None, length=3)[0], True),
}


@pytest.mark.parametrize("name", list(_CONSTRUCTS))
def test_forward_mode_everywhere_reverse_mode_where_the_trip_count_is_static(name):
    f, reverse = _CONSTRUCTS[name]
    x = 2.0
    h = 1e-6
    fd = (float(f(x + h)) - float(f(x - h))) / (2 * h)
    _, tangent = T.jvp(f, (x,), (1.0,))
    np.testing.assert_allclose(float(tangent), fd, rtol=1e-5)
    if reverse:
        np.testing.assert_allclose(float(T.grad(f)(x)), fd, rtol=1e-5)
    else:
        with pytest.raises(errors.ReverseModeLoopError, match="Reverse-mode"):
            T.grad(f)(x)
