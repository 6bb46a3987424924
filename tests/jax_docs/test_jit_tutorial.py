"""The ideas of JAX's "Just-in-time compilation" tutorial, ported: static arguments by
position and name, what is cached and when a function retraces, jit of methods and of
`functools.partial`, the ahead-of-time stages (`trace` / `lower` / `compile`), `make_jaxpr`
and donation. Compared with JAX where it is importable, hand-checked values otherwise."""
import functools

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import errors

try:
    import jax
    import jax.numpy as jnp
except ImportError:   # pragma: no cover - the comparisons are skipped without JAX
    jax = None

needs_jax = pytest.mark.skipif(jax is None, reason="JAX not importable")
pytestmark = pytest.mark.usefixtures("jax_x32")

X3 = np.array([1.0, -2.0, 3.0], np.float32)


def _scaled(x, n, negate=False):
    """Python control flow on `n` and `negate`: they must be static under jit."""
    for _ in range(n):
        x = x * 2.0
    return -x if negate else x


# one jitted function per static option, shared by the tests below
_BY_NUM = T.jit(_scaled, static_argnums=(1, 2))
_BY_NAME = T.jit(_scaled, static_argnames=("n", "negate"))


def test_static_by_position_or_name_whichever_way_it_is_passed():
    want = -X3 * 8
    for f in (_BY_NUM, _BY_NAME):
        np.testing.assert_array_equal(f(X3, 3, True), want)
        np.testing.assert_array_equal(f(X3, n=3, negate=True), want)
        np.testing.assert_array_equal(f(X3, 3, negate=True), want)
    # a negative position counts from the end of the arguments passed (as JAX)
    np.testing.assert_array_equal(T.jit(_scaled, static_argnums=-1)(X3, 1), X3 * 2)


def test_a_python_branch_on_a_traced_argument_is_a_concretization_error():
    with pytest.raises(errors.ConcretizationTypeError, match="static_argnums"):
        T.jit(_scaled, static_argnums=1)(X3, 1, True)
    with pytest.raises(errors.TracerIntegerConversionError):
        T.jit(_scaled)(X3, 2)
    # under grad alone the argument is concrete: Python control flow is fine
    assert float(T.grad(lambda x: _scaled(x, 2, True))(1.0)) == -4.0


def test_unhashable_static_argument_is_a_clear_error():
    with pytest.raises(TypeError, match="static argument position 1 has unhashable type list"):
        _BY_NUM(X3, [1, 2])


def test_partial_as_decorator_with_static_argnames():
    @functools.partial(T.jit, static_argnames=["k"])
    def power(x, k):
        out = tnp.ones_like(x)
        for _ in range(k):
            out = out * x
        return out

    np.testing.assert_allclose(power(X3, k=3), X3 ** 3)
    np.testing.assert_allclose(power(X3, k=0), np.ones(3))
    assert power._cache_size() == 2


def test_traces_once_per_signature_and_static_value():
    calls = []

    def f(x, mode):
        calls.append(mode)
        return x + 1.0 if mode == "inc" else x - 1.0

    jf = T.jit(f, static_argnames="mode")
    for _ in range(3):
        jf(X3, mode="inc")
    assert len(calls) == 1
    jf(X3, mode="dec")                         # a new static value: retraces
    jf(X3.astype(np.float64), mode="inc")      # a new dtype: retraces
    jf(np.ones(5, np.float32), mode="inc")     # a new shape: retraces
    jf(X3 + 5.0, mode="inc")                   # new values only: cached
    assert calls == ["inc", "dec", "inc", "inc"]
    assert jf._cache_size() == 4


def test_jit_of_a_fresh_partial_or_lambda_retraces_a_named_function_does_not():
    calls = []

    def g(x, y):
        calls.append(1)
        return x * y

    for _ in range(3):
        T.jit(functools.partial(g, y=2.0))(X3)     # a new partial object each time
    assert len(calls) == 3
    calls.clear()
    for _ in range(3):
        T.jit(g)(X3, 2.0)                          # the same function: one trace
    assert len(calls) == 1


class _Scaler:
    """A class whose method is jitted with `self` static (hashable by its settings)."""

    def __init__(self, factor):
        self.factor = factor

    def __hash__(self):
        return hash(self.factor)

    def __eq__(self, other):
        return isinstance(other, _Scaler) and other.factor == self.factor

    @functools.partial(T.jit, static_argnums=0)
    def apply(self, x):
        return x * self.factor


def test_jit_of_a_method_with_static_self():
    np.testing.assert_array_equal(_Scaler(3.0).apply(X3), X3 * 3)
    np.testing.assert_array_equal(_Scaler(-1.0).apply(X3), -X3)


def test_jit_of_a_method_through_a_helper_taking_self_fields():
    class Model:
        def __init__(self, w):
            self.w = w

        def __call__(self, x):
            return _affine(self.w, x)

    np.testing.assert_allclose(Model(np.float32(2.0))(X3), 2 * X3 + 1)


@T.jit
def _affine(w, x):
    return w * x + 1.0


# --- ahead-of-time: trace, lower, compile ----------------------------------------------------

def _dict_fn(d, scale):
    return {"total": tnp.sum(d["a"] * scale), "doubled": d["a"] * 2.0}


_DICT_JIT = T.jit(_dict_fn, static_argnums=1)


def test_trace_gives_the_jaxpr_and_output_info():
    traced = _DICT_JIT.trace({"a": X3}, 3.0)
    assert "reduce_sum" in str(traced.jaxpr) and "mul" in str(traced.jaxpr)
    info = traced.out_info
    assert info["total"].shape == () and info["doubled"].shape == (3,)
    assert info["doubled"].dtype == np.float32
    assert traced.fun_name == "_dict_fn"
    # jitted.eval_shape: the same information, from arrays or ShapeDtypeStructs
    shapes = _DICT_JIT.eval_shape({"a": T.ShapeDtypeStruct((5,), np.float32)}, 3.0)
    assert shapes == {"total": T.ShapeDtypeStruct((), np.float32),
                      "doubled": T.ShapeDtypeStruct((5,), np.float32)}


def test_lower_from_shape_dtype_structs_then_compile_and_call_with_the_pytree():
    spec = {"a": T.ShapeDtypeStruct((3,), np.float32)}
    lowered = _DICT_JIT.lower(spec, 3.0)
    assert lowered.out_info["doubled"] == T.ShapeDtypeStruct((3,), np.float32)
    compiled = lowered.compile()
    out = compiled({"a": X3})            # static arguments are not passed again
    assert set(out) == {"total", "doubled"}
    np.testing.assert_allclose(out["total"], 3.0 * X3.sum(), rtol=1e-6)
    np.testing.assert_array_equal(out["doubled"], 2 * X3)
    # the same stages from the jitted function: trace().lower() == lower()
    assert _DICT_JIT.trace({"a": X3}, 3.0).lower().as_text() == lowered.as_text()


def test_compiled_rejects_other_shapes_dtypes_and_structures_naming_the_argument():
    compiled = _DICT_JIT.lower({"a": X3}, 3.0).compile()
    with pytest.raises(TypeError, match=r"args\[0\]\['a'\] is f32\[4\] but it was compiled "
                                        r"for f32\[3\]"):
        compiled({"a": np.ones(4, np.float32)})
    with pytest.raises(TypeError, match=r"f64\[3\] but it was compiled for f32\[3\]"):
        compiled({"a": X3.astype(np.float64)})
    with pytest.raises(TypeError, match="argument structure"):
        compiled({"a": X3}, 3.0)


@needs_jax
def test_aot_stages_match_jax():
    f = lambda x, y: (x @ y, tnp.sum(y))     # noqa: E731
    jf = lambda x, y: (x @ y, jnp.sum(y))    # noqa: E731
    xs, ys = T.ShapeDtypeStruct((2, 3), np.float32), T.ShapeDtypeStruct((3, 4), np.float32)
    ours = T.jit(f).lower(xs, ys)
    theirs = jax.jit(jf).lower(jax.ShapeDtypeStruct((2, 3), jnp.float32),
                               jax.ShapeDtypeStruct((3, 4), jnp.float32))
    assert [(s.shape, s.dtype) for s in ours.out_info] == \
        [(s.shape, s.dtype) for s in theirs.out_info]
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.arange(12, dtype=np.float32).reshape(3, 4)
    for o, t in zip(ours.compile()(a, b), theirs.compile()(a, b)):
        np.testing.assert_allclose(o, np.asarray(t), rtol=1e-6)


# --- make_jaxpr ------------------------------------------------------------------------------

def test_make_jaxpr_shows_the_primitives_and_drops_python_side_effects():
    seen = []

    def f(x):
        seen.append("traced")              # runs at trace time only, leaves no equation
        return tnp.sin(x) * 2.0 + tnp.cos(x)

    closed = T.make_jaxpr(f)(np.float32(1.0))
    assert seen == ["traced"]
    prims = [e.primitive.name for e in closed.jaxpr.eqns]
    assert prims == ["sin", "mul", "cos", "add"]
    assert str(closed).startswith("{ lambda ; a:f32[]. let")


def test_make_jaxpr_with_static_argnums_bakes_in_the_branch():
    closed = T.make_jaxpr(_scaled, static_argnums=(1, 2))(np.float32(2.0), 1, True)
    assert [e.primitive.name for e in closed.jaxpr.eqns] == ["mul", "neg"]


@needs_jax
def test_make_jaxpr_primitive_sequence_matches_jax():
    def f(x):
        return tnp.exp(x) / (1.0 + tnp.exp(x))

    def jf(x):
        return jnp.exp(x) / (1.0 + jnp.exp(x))

    # scalars: on arrays our IR spells the scalar 1.0's broadcast out (broadcast_in_dim)
    x = np.float32(0.5)
    ours = [e.primitive.name for e in T.make_jaxpr(f)(x).jaxpr.eqns]
    theirs = [e.primitive.name for e in jax.make_jaxpr(jf)(x).jaxpr.eqns]
    assert ours == theirs == ["exp", "exp", "add", "div"]


# --- donation --------------------------------------------------------------------------------

def test_donate_argnums_and_argnames_give_the_same_results():
    def step(params, grads):
        return params - 0.1 * grads

    p, g = np.arange(4.0), np.ones(4)
    want = p - 0.1
    for jf in (T.jit(step, donate_argnums=0), T.jit(step, donate_argnames="params")):
        np.testing.assert_allclose(jf(p.copy(), g), want)
    assert T.jit(step, donate_argnames=("params",))._donate == (0,)


def test_static_and_donated_arguments_that_do_not_exist_are_errors_at_jit_time():
    def f(x, n=1, *, mode="a"):
        return x * n

    with pytest.raises(ValueError, match=r"static_argnums=\(3,\), but only accepts 2"):
        T.jit(f, static_argnums=3)
    with pytest.raises(ValueError, match=r"static_argnums=\(-3,\)"):
        T.jit(f, static_argnums=-3)
    with pytest.raises(ValueError, match=r"invalid argnames \['nn'\] in static_argnames"):
        T.jit(f, static_argnames="nn")
    with pytest.raises(ValueError, match="donate_argnums"):
        T.jit(f, donate_argnums=2)
    with pytest.raises(ValueError, match="donate_argnames"):
        T.jit(f, donate_argnames="y")
    # keyword-only names are fine, and *args/**kwargs accept anything, as in JAX
    assert float(T.jit(f, static_argnames="mode")(2.0, mode="b")) == 2.0
    T.jit(lambda *a, **k: a[0], static_argnums=5, static_argnames="anything")


@T.tree_util.register_pytree_node_class
class _Scale:
    """The tutorial's third route for methods: the object is a pytree, so jit traces its
    array fields and keeps its static ones in the structure."""

    def __init__(self, w, mode):
        self.w, self.mode = w, mode

    def tree_flatten(self):
        return (self.w,), self.mode

    @classmethod
    def tree_unflatten(cls, mode, children):
        return cls(children[0], mode)

    @T.jit
    def apply(self, x):
        return x * self.w if self.mode == "mul" else x + self.w


def test_jit_of_a_method_on_a_pytree_object():
    np.testing.assert_array_equal(_Scale(np.float32(2.0), "mul").apply(X3), X3 * 2)
    np.testing.assert_array_equal(_Scale(np.float32(2.0), "add").apply(X3), X3 + 2)
    # a new weight value reuses the trace; a new mode (aux data) retraces
    _Scale(np.float32(5.0), "mul").apply(X3)
    assert _Scale.apply._cache_size() == 2
