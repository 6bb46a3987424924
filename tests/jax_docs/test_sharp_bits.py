"""The ideas of JAX's "sharp bits" tutorial, ported: what a JAX user expects of pure
functions under jit, functional updates, out-of-bounds indexing, dynamic shapes, NaN
gradients and loops. Each test states the JAX behaviour it holds us to."""
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


# --- pure functions: side effects happen at trace time only ----------------------------------

def test_print_inside_jit_runs_once_at_trace_time(capsys):
    @T.jit
    def f(x):
        print("tracing")
        return x * 2.0

    for v in (1.0, 2.0, 3.0):
        assert float(f(np.float32(v))) == 2.0 * v
    assert capsys.readouterr().out == "tracing\n"


def test_a_global_is_captured_when_traced():
    scale = {"v": 1.0}
    f = T.jit(lambda x: x + scale["v"])
    assert float(f(np.float64(1.0))) == 2.0
    scale["v"] = 10.0
    # the cached trace keeps the old value, as jax.jit does; a new shape retraces
    assert float(f(np.float64(1.0))) == 2.0
    np.testing.assert_array_equal(f(np.zeros(2)), [10.0, 10.0])


# --- in-place updates ----------------------------------------------------------------------

def test_item_assignment_on_a_traced_array_is_a_type_error_naming_at():
    def f(x):
        x[0] = 1.0
        return x

    with pytest.raises(TypeError, match=r"immutable.*\.at\[idx\]\.set"):
        T.jit(f)(np.zeros(3))
    with pytest.raises(errors.ImmutableTracerError):
        T.grad(lambda x: f(x).sum())(np.zeros(3))


def test_functional_updates_leave_the_input_alone():
    x = np.arange(5.0)

    def f(x):
        # a NumPy array cannot carry `.at`: eager code spells it tnp.at(x), tracers have both
        at = tnp.at(x)
        return (at[1].set(10.0), at[1:3].add(1.0), at[::2].multiply(2.0),
                at[4].min(-1.0), at[0].max(7.0), at[2].get())

    for fn in (f, T.jit(f)):
        s, a, m, lo, hi, g = fn(x)
        np.testing.assert_array_equal(s, [0, 10, 2, 3, 4])
        np.testing.assert_array_equal(a, [0, 2, 3, 3, 4])
        np.testing.assert_array_equal(m, [0, 1, 4, 3, 8])
        np.testing.assert_array_equal(lo, [0, 1, 2, 3, -1])
        np.testing.assert_array_equal(hi, [7, 1, 2, 3, 4])
        assert float(g) == 2.0
    np.testing.assert_array_equal(x, np.arange(5.0))


def test_repeated_indices_accumulate_in_add_but_not_in_set():
    x = np.zeros(4)
    idx = np.array([1, 1, 3])
    np.testing.assert_array_equal(T.jit(lambda x, i: x.at[i].add(1.0))(x, idx), [0, 2, 0, 1])
    np.testing.assert_array_equal(T.jit(lambda x, i: x.at[i].set(5.0))(x, idx), [0, 5, 0, 5])


# --- out-of-bounds indexing: clamped reads, dropped writes ---------------------------------

def test_out_of_bounds_reads_clamp_under_jit():
    x = np.arange(10.0)
    assert float(T.jit(lambda x: x[11])(x)) == 9.0
    assert float(T.jit(lambda x: x[-11])(x)) == 0.0
    np.testing.assert_array_equal(T.jit(lambda x, i: x[i])(x, np.array([0, 12, -20])),
                                  [0.0, 9.0, 0.0])


def test_out_of_bounds_writes_are_dropped():
    x = np.arange(4.0)
    np.testing.assert_array_equal(T.jit(lambda x: x.at[7].set(99.0))(x), x)
    np.testing.assert_array_equal(T.jit(lambda x, i: x.at[i].add(1.0))(x, np.array([1, 9])),
                                  [0, 2, 2, 3])


def test_get_with_fill_mode_marks_out_of_bounds():
    x = np.arange(4.0)
    out = T.jit(lambda x, i: x.at[i].get(mode="fill", fill_value=-1.0))(x, np.array([3, 4]))
    np.testing.assert_array_equal(out, [3.0, -1.0])


def test_dynamic_slice_start_is_clamped_to_fit():
    x = np.arange(10.0)
    np.testing.assert_array_equal(T.jit(lambda x, s: lax.dynamic_slice(x, (s,), (4,)))(x, 8),
                                  [6, 7, 8, 9])


def test_float_index_is_an_error_both_numpy_and_jax_code_catch():
    with pytest.raises(TypeError):
        T.jit(lambda x: x[1.0])(np.arange(3.0))
    with pytest.raises(IndexError):
        T.jit(lambda x: x[1.0])(np.arange(3.0))


# --- control flow and dynamic shapes -------------------------------------------------------

def test_python_control_flow_works_under_grad_not_jit():
    f = lambda x: x ** 2 if x > 1 else x ** 3          # noqa: E731
    assert float(T.grad(f)(2.0)) == 4.0
    assert float(T.grad(f)(0.5)) == pytest.approx(0.75)
    with pytest.raises(errors.TracerBoolConversionError):
        T.jit(f)(2.0)
    # a static argument makes the branch a Python value again
    g = T.jit(lambda x, n: x * n if n > 2 else x, static_argnums=1)
    np.testing.assert_array_equal(g(np.ones(2), 3), [3.0, 3.0])
    np.testing.assert_array_equal(g(np.ones(2), 1), [1.0, 1.0])


def test_data_dependent_shapes_need_a_static_size_under_jit():
    x = np.array([0.0, 2.0, 0.0, 5.0])
    with pytest.raises(errors.ConcretizationTypeError):
        T.jit(lambda x: tnp.nonzero(x))(x)
    with pytest.raises(errors.ConcretizationTypeError):
        T.jit(lambda x: x[x > 1])(x)
    # eagerly they are ordinary NumPy
    np.testing.assert_array_equal(tnp.nonzero(x)[0], [1, 3])
    np.testing.assert_array_equal(x[x > 1], [2.0, 5.0])
    # the mask as a where keeps the shape static
    np.testing.assert_array_equal(T.jit(lambda x: tnp.where(x > 1, x, 0.0).sum())(x), 7.0)


def test_while_loop_is_not_reverse_differentiable_but_fori_with_static_bounds_is():
    body = lambda c: c * 2.0                             # noqa: E731
    f = lambda x: lax.while_loop(lambda c: c < 10.0, body, x)   # noqa: E731
    with pytest.raises(ValueError, match="while_loop"):
        T.grad(f)(1.5)
    # forward mode works (1.5 -> 3 -> 6 -> 12: three doublings)
    assert float(T.jacfwd(f)(1.5)) == 8.0
    g = lambda x: lax.fori_loop(0, 3, lambda i, c: c * 2.0, x)   # noqa: E731
    assert float(T.grad(g)(1.5)) == 8.0


def test_switch_clamps_its_index():
    branches = [lambda: 0.0, lambda: 1.0]
    assert float(lax.switch(7, branches)) == 1.0
    assert float(lax.switch(-3, branches)) == 0.0
    assert float(T.jit(lambda i: lax.switch(i, branches))(7)) == 1.0


# --- NaNs and the double-where trick --------------------------------------------------------

def test_gradient_of_sqrt_at_zero_and_the_double_where_trick():
    naive = lambda x: tnp.where(x > 0, tnp.sqrt(x), 0.0)           # noqa: E731
    safe = lambda x: tnp.where(x > 0, tnp.sqrt(tnp.where(x > 0, x, 1.0)), 0.0)   # noqa: E731
    # the unselected branch's infinite derivative times a zero cotangent is NaN, as in JAX
    assert np.isnan(float(T.grad(naive)(0.0)))
    assert float(T.grad(safe)(0.0)) == 0.0
    assert float(T.jit(T.grad(safe))(4.0)) == pytest.approx(0.25)



def test_eager_infinities_and_nans_are_silent_and_numpy_state_is_untouched():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # any RuntimeWarning fails the test
        assert float(T.grad(tnp.sqrt)(0.0)) == np.inf
        assert float(tnp.log(0.0)) == -np.inf
        assert np.isnan(float(T.grad(lambda x: tnp.where(x > 0, tnp.sqrt(x), 0.0))(0.0)))
        assert np.all(np.isinf(tnp.divide(np.array([1.0, -1.0]), 0.0)))
        # the user's own NumPy calls (also `/` on the plain arrays we return) still warn as
        # NumPy decides
        with pytest.raises(RuntimeWarning, match="divide by zero"):
            np.log(np.float64(0.0))

# --- random numbers: explicit keys ---------------------------------------------------------

def test_reusing_a_key_repeats_the_numbers_and_split_keys_differ():
    from transforms import random
    k = random.key(0)
    a, b = random.normal(k, (3,)), random.normal(k, (3,))
    np.testing.assert_array_equal(a, b)
    k1, k2 = random.split(k)
    c, d = random.normal(k1, (3,)), random.normal(k2, (3,))
    assert not np.array_equal(c, d) and not np.array_equal(a, c)
    # the same under jit
    np.testing.assert_array_equal(T.jit(lambda k: random.normal(k, (3,)))(k1), c)


# --- NumPy functions on traced values -------------------------------------------------------

def test_numpy_ufuncs_on_traced_values_are_jaxs_conversion_error_but_operators_work():
    a = np.arange(3.0)
    with pytest.raises(errors.TracerArrayConversionError, match=r"numpy\.sin.*tnp"):
        T.jit(lambda x: np.sin(x))(a)
    with pytest.raises(errors.TracerArrayConversionError):
        T.grad(lambda x: np.exp(x))(1.0)
    with pytest.raises(errors.TracerArrayConversionError, match=r"numpy\.add\.reduce"):
        T.jit(lambda x: np.add.reduce(x))(a)
    # a NumPy operand on the left of an operator is fine: it means the tracer's operator
    f = T.jit(lambda x: (a - x, np.float32(2) * x, a < x, a @ x, divmod(a, x + 1.0)))
    d, m, lt, dot, (q, r) = f(np.ones(3))
    np.testing.assert_array_equal(d, [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(m, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(lt, [True, False, False])
    assert float(dot) == 3.0
    np.testing.assert_array_equal(q, [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(r, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(T.grad(lambda x: (a * x).sum())(np.ones(3)), a)


# --- jax_debug_nans / jax_debug_infs ----------------------------------------------------------

def _nan_programs(np_, jit):
    """(name, thunk) pairs making a NaN at a known primitive, spelled with np_ (tnp or jnp)."""
    return [
        ("eager log", lambda: np_.log(-1.0)),
        ("jit log", lambda: jit(lambda x: np_.log(x) * 2.0)(-1.0)),
        ("grad sqrt", lambda: (T if np_ is tnp else jax).grad(np_.sqrt)(-1.0)),
        ("jit grad of the naive where", lambda: jit((T if np_ is tnp else jax).grad(
            lambda x: np_.where(x > 0, np_.sqrt(x), 0.0)))(0.0)),
    ]


_NAN_PRIMS = {"eager log": "log", "jit log": "log", "grad sqrt": "sqrt",
              "jit grad of the naive where": "mul"}


@pytest.mark.parametrize("name", list(_NAN_PRIMS))
def test_debug_nans_raises_naming_the_primitive(name):
    thunk = dict(_nan_programs(tnp, T.jit))[name]
    assert np.isnan(thunk())                       # off by default: NaN is a value
    with T.debug_nans(True):
        with pytest.raises(FloatingPointError,
                           match=rf"invalid value \(nan\) encountered in {_NAN_PRIMS[name]}$"):
            thunk()
    assert np.isnan(thunk())                       # the context manager restored the flag


@needs_jax
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_debug_nans_names_the_same_primitive_as_jax():
    with jax.debug_nans(True):
        for name, thunk in _nan_programs(jnp, jax.jit):
            with pytest.raises(FloatingPointError) as theirs:
                thunk()
            assert str(theirs.value).endswith(f"encountered in {_NAN_PRIMS[name]}"), name


def test_debug_nans_in_a_jitted_numpy_expression_names_the_primitive_and_clean_calls_pass():
    f = T.jit(lambda x, y: (x / y, x + y))
    x = np.zeros(2)
    T.config.update("jax_debug_nans", True)
    try:
        q, s = f(np.ones(2), np.ones(2))            # no NaN: results as usual
        np.testing.assert_array_equal(q, [1.0, 1.0])
        with pytest.raises(FloatingPointError, match=r"\(nan\) encountered in div$"):
            f(x, x)
        # infinities are not NaNs; integer results are never checked
        assert np.all(np.isinf(f(np.ones(2), x)[0]))
        assert T.jit(lambda i: i // 0)(np.int32(3)).dtype == np.int32
    finally:
        T.config.update("jax_debug_nans", False)
    assert np.all(np.isnan(f(x, x)[0]))


def test_debug_infs_catches_infinities():
    assert float(tnp.log(0.0)) == -np.inf
    with T.debug_infs(True):
        with pytest.raises(FloatingPointError, match=r"\(inf\) encountered in log"):
            tnp.log(0.0)
        with pytest.raises(FloatingPointError, match=r"\(inf\) encountered in div"):
            T.jit(lambda x: 1.0 / x)(np.zeros(2))
        assert float(tnp.log(1.0)) == 0.0


# --- compared with JAX: in-place updates, control flow, promotion, casts, random bits ----------

def _at_programs(np_, lax_):
    """(name, function of a float32 vector) exercising `.at` beyond the arrays tutorial's port."""
    i2 = np.array([0, 2])
    return [
        ("add clip duplicates", lambda x: x.at[np.array([5, 9, 9])].add(1.0, mode="clip")),
        ("multiply clip", lambda x: x.at[12].multiply(3.0, mode="clip")),
        ("min drop", lambda x: x.at[np.array([1, 12])].min(-3.0, mode="drop")),
        ("max unique", lambda x: x.at[i2].max(30.0, unique_indices=True)),
        ("get sorted unique", lambda x: x.at[i2].get(indices_are_sorted=True,
                                                    unique_indices=True)),
        ("get promise", lambda x: x.at[3].get(mode="promise_in_bounds")),
        ("negative drop", lambda x: x.at[np.array([-1, -9])].set(9.0, mode="drop")),
        ("constant boolean mask set", lambda x: x.at[_X6 > 2].set(0.0)),
        ("2d row slice", lambda x: x.reshape(2, 3).at[1, 1:].add(1.0)),
        ("2d ellipsis", lambda x: x.reshape(2, 3).at[..., 0].set(7.0)),
        ("2d fill int", lambda x: x.astype(np.int32).reshape(2, 3).at[
            np.array([0, 5]), 1].get(mode="fill", fill_value=-7)),
        ("int multiplied by float", lambda x: x.astype(np.int32).at[1].multiply(2.5)),
        ("dynamic index", lambda x: x.at[lax_.convert_element_type(x[1], np.int32) + 9].get()),
    ]


_X6 = np.arange(6, dtype=np.float32)


@needs_jax
@pytest.mark.filterwarnings("ignore:scatter inputs have incompatible types")
@pytest.mark.parametrize("name", [n for n, _ in _at_programs(tnp, lax)])
def test_more_at_updates_match_jax(name):
    with jax.enable_x64(False):
        theirs = np.asarray(jax.jit(dict(_at_programs(jnp, jax.lax))[name])(_X6))
    ours = T.jit(dict(_at_programs(tnp, lax))[name])(_X6)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.dtype == theirs.dtype


def test_a_traced_boolean_mask_in_at_is_rejected_as_in_jax():
    with pytest.raises(errors.NonConcreteBooleanIndexError):
        T.jit(lambda x: x.at[x > 2].set(0.0))(_X6)
    np.testing.assert_array_equal(T.jit(lambda x: tnp.where(x > 2, 0.0, x))(_X6),
                                  [0, 1, 2, 0, 0, 0])


@needs_jax
def test_at_updates_differentiate_and_batch_like_jax():
    x = np.ones(3, np.float32)
    progs = [
        (lambda g, np_: g(lambda x: x.at[np.array([0, 0, 2])].add(x[1] * 3.0).sum())(x)),
        (lambda g, np_: g(lambda x: np_.sum(x.at[1].max(2.0) * x))(x)),
        (lambda g, np_: g(lambda x: np_.sum(x.at[1:].multiply(x[0]) ** 2))(x)),
    ]
    with jax.enable_x64(False):
        for p in progs:
            np.testing.assert_array_equal(
                p(T.grad, tnp), np.asarray(p(lambda f: jax.jit(jax.grad(f)), jnp)))
        theirs = jax.vmap(lambda x, i: x.at[i].set(0.0))(np.ones((2, 3), np.float32),
                                                          np.array([0, 2]))
    ours = T.vmap(lambda x, i: x.at[i].set(0.0))(np.ones((2, 3), np.float32), np.array([0, 2]))
    np.testing.assert_array_equal(ours, np.asarray(theirs))


def _rejected(lax_, np_):
    """Control flow JAX rejects while tracing, spelled with lax_/np_."""
    return [
        ("cond branches of different shapes", TypeError,
         lambda: lax_.cond(True, lambda x: x, lambda x: x[:1], np.ones(2))),
        ("cond branches of different trees", TypeError,
         lambda: lax_.cond(True, lambda x: (x, x), lambda x: x, np.ones(2))),
        ("cond predicate not a scalar", TypeError,
         lambda: lax_.cond(np.array([True, False]), lambda: 1.0, lambda: 0.0)),
        ("while_loop cond not a scalar", TypeError,
         lambda: lax_.while_loop(lambda c: c < 3, lambda c: c + 1, np.zeros(2))),
        ("while_loop carry changes shape", TypeError,
         lambda: lax_.while_loop(lambda c: c.sum() < 3, lambda c: np_.concatenate([c, c]),
                                 np.zeros(1))),
        ("scan carry changes dtype", TypeError,
         lambda: lax_.scan(lambda c, x: (c + x, None), np.int32(0), np.ones(3, np.float32))),
        ("scan inputs of different lengths", ValueError,
         lambda: lax_.scan(lambda c, x: (c, x[0] + x[1]), 0.0, (np.ones(3), np.ones(4)))),
    ]


@needs_jax
@pytest.mark.parametrize("name", [n for n, _, _ in _rejected(lax, tnp)])
def test_control_flow_rejects_what_jax_rejects(name):
    _, error, ours = {n: (n, e, f) for n, e, f in _rejected(lax, tnp)}[name]
    _, _, theirs = {n: (n, e, f) for n, e, f in _rejected(jax.lax, jnp)}[name]
    with pytest.raises(error):
        theirs()
    with pytest.raises(error):
        ours()
    with pytest.raises(error):
        T.jit(ours)()


@needs_jax
def test_fori_loop_with_traced_bounds_is_forward_only_like_jax():
    def f(lax_):
        return lambda x, n: lax_.fori_loop(0, n, lambda i, c: c * x, x)
    with pytest.raises(ValueError, match="while_loop"):
        jax.jit(jax.grad(f(jax.lax)))(2.0, 3)
    with pytest.raises(ValueError, match="while_loop"):
        T.jit(T.grad(f(lax)))(2.0, 3)
    # concrete bounds (grad without jit) or static ones unroll into a scan: 4 x^3 at 2
    assert float(T.grad(f(lax))(2.0, 3)) == float(jax.grad(f(jax.lax))(2.0, 3)) == 32.0
    assert float(T.jit(T.jacfwd(f(lax)))(2.0, 3)) == 32.0


@needs_jax
def test_explicit_dtype_promotion_and_unsafe_casts_match_jax():
    cases = [
        (lambda np_: np_.add(np.ones(2, np.int8), np.ones(2, np.uint8)), None),
        (lambda np_: np_.add(np.ones(2, np.bool_), np.ones(2, np.int8)), None),
        (lambda np_: np_.add(np.ones(2, np.float16), np.ones(2, np.float32)), None),
        (lambda np_: np_.multiply(np.ones(2, np.float32), 2.5), None),
        (lambda np_: np_.add(np.ones(2, np.int8), 300 - 300 + 3), None),
        # out-of-range and NaN float -> int casts saturate (NaN -> 0) in both
        (lambda np_: np_.astype(np.array([1e10, -1e10, np.nan, 2.7], np.float32), np.int32),
         None),
        (lambda np_: np_.astype(np.array([-1.5, 300.7], np.float32), np.uint8), None),
        (lambda np_: np_.astype(np.array([300, -200], np.int32), np.int8), None),   # wraps
        # integer overflow wraps, as in C
        (lambda np_: np_.multiply(np.array([2 ** 20], np.int32), np.int32(2 ** 12)), None),
    ]
    with jax.enable_x64(False):
        for make, _ in cases:
            ours, theirs = make(tnp), np.asarray(make(jnp))
            np.testing.assert_array_equal(ours, theirs)
            assert ours.dtype == theirs.dtype
    x = np.array([1e10, -1e10, np.nan], np.float32)
    np.testing.assert_array_equal(T.jit(lambda x: x.astype(np.int32))(x),
                                  [2 ** 31 - 1, -2 ** 31, 0])
    # an eager NumPy array's own .astype is NumPy's (results here are plain ndarrays, whose
    # methods we cannot change): platform-defined for these values, so not asserted


def test_numpy_dtype_defaults_where_jax_uses_32_bits():
    # README ("NumPy 2 dtype rules: float64 by default"): defaults and integer/float mixes
    # follow NumPy; JAX's 32-bit defaults would give int32/float32 here
    assert tnp.sum(np.ones(3, np.int8)).dtype == np.int64
    assert tnp.mean(np.ones(3, np.int32)).dtype == np.float64
    assert tnp.divide(np.ones(2, np.int32), 2).dtype == np.float64
    assert tnp.multiply(np.ones(2, np.int8), 2.5).dtype == np.float64
    assert tnp.array([1, 2.5]).dtype == np.float64
    # NumPy 2 (NEP 50): a Python int out of the array's range is an error, where JAX wraps it
    with pytest.raises(OverflowError):
        tnp.add(np.ones(1, np.uint8), 300)
    with pytest.raises(OverflowError):
        T.jit(lambda x: x + 300)(np.ones(1, np.uint8))


def test_arrays_made_from_python_scalars_are_strong_numpy_values():
    # JAX: jnp.array(2.0) is a weakly typed float32, so x_f32 * jnp.array(2.0) stays float32.
    # Our eager results are plain NumPy arrays, which cannot carry a weak flag, and jit must
    # compute what eager code computes: README row "tnp.array(2.0)". A Python scalar itself
    # stays weak everywhere.
    x = np.ones(2, np.float32)
    for f in (lambda x: x * tnp.array(2.0), T.jit(lambda x: x * tnp.array(2.0))):
        assert f(x).dtype == np.float64
    for f in (lambda x: x * 2.0, T.jit(lambda x: x * 2.0),
              lambda x: x * tnp.array(2.0, x.dtype), lambda x: T.jit(lambda x, s: x * s)(x, 2.0)):
        assert f(x).dtype == np.float32


def test_integer_division_by_zero_gives_numpys_zero():
    # JAX/XLA: lax.div(x, 0) = -1 and lax.rem(x, 0) = x (jnp's // then gives -2): garbage
    # values either way; ours are NumPy's 0, the same eagerly and under jit (README row)
    x, z = np.array([7, -7], np.int32), np.zeros(2, np.int32)
    f = lambda x, z: (lax.div(x, z), lax.rem(x, z), tnp.floor_divide(x, z),    # noqa: E731
                      tnp.remainder(x, z))
    for g in (f, T.jit(f)):
        for out in g(x, z):
            np.testing.assert_array_equal(out, [0, 0])


def test_lists_to_tnp_functions_compute_as_numpy():
    # JAX raises TypeError for `jnp.sum([1, 2, 3])` (a list would be traced element by
    # element). tnp keeps NumPy's answer on non-traced input (README: "tnp on NumPy input
    # computes what NumPy computes"); a JAX program never passes lists, so it ports unchanged,
    # and a list holding traced values is one stacked array here, not n separate operands.
    assert int(tnp.sum([1, 2, 3])) == 6
    np.testing.assert_allclose(tnp.exp([0.0, 1.0]), [1.0, np.e])
    assert float(T.jit(lambda x: tnp.sum([x, 2 * x]))(np.float32(2.0))) == 6.0
    assert float(T.grad(lambda x: tnp.sum([x, x * x]))(3.0)) == 7.0


@needs_jax
def test_random_streams_give_jaxs_bits_for_the_same_key():
    from transforms import random
    with jax.enable_x64(False):
        k, jk = random.key(42), jax.random.key(42)
        np.testing.assert_array_equal(random.normal(k, (4,)),
                                      np.asarray(jax.random.normal(jk, (4,))))
        np.testing.assert_array_equal(random.normal(random.split(k)[1], (4,)),
                                      np.asarray(jax.random.normal(jax.random.split(jk)[1],
                                                                   (4,))))
        np.testing.assert_array_equal(
            T.jit(lambda k: random.uniform(k, (3,), minval=-1.0, maxval=1.0))(
                random.PRNGKey(0)),
            np.asarray(jax.random.uniform(jax.random.PRNGKey(0), (3,), minval=-1.0,
                                          maxval=1.0)))
