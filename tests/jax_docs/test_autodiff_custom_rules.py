"""The ideas of JAX's "Custom derivative rules for JAX-transformable Python functions"
tutorial, ported: a numerically stable log(1 + e^x), a differentiation convention at a
singular point, gradient clipping, implicit differentiation of a fixed point, nondiff_argnums,
pytrees through custom_vjp, `defjvps`, and how custom rules compose with jit, vmap, jvp and
higher-order derivatives. Where JAX is importable the programs also run through JAX."""
import functools

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax

from .test_autodiff_transforms import jax, jax_jit, jnp, needs_jax, same_as_jax
# the tutorial's stable log(1 + e^x) and gradient clipper, defined once for both ports
from .test_custom_derivatives import clip_gradient, log1pexp  # noqa: F401


# --- numerical stability: log(1 + exp(x)) --------------------------------------------------

def naive_log1pexp(x):
    return tnp.log(1.0 + tnp.exp(x))


@np.errstate(over="ignore", invalid="ignore")
def test_naive_log1pexp_gradient_is_nan_at_large_x_and_the_rule_fixes_it():
    # exp overflows (float32 at 100, float64 at 1000): inf / inf in the naive derivative
    assert np.isnan(float(T.grad(naive_log1pexp)(np.float32(100.0))))
    assert np.isnan(float(T.grad(naive_log1pexp)(1000.0)))
    assert float(T.grad(log1pexp)(np.float32(100.0))) == 1.0
    assert float(T.grad(log1pexp)(1000.0)) == 1.0
    assert float(T.jit(T.grad(log1pexp))(100.0)) == 1.0
    xs = np.array([-3.0, 0.0, 2.0, 800.0])
    np.testing.assert_allclose(T.vmap(T.grad(log1pexp))(xs),
                               [1 / (1 + np.exp(3.0)), 0.5, 1 / (1 + np.exp(-2.0)), 1.0])


def test_the_rule_is_differentiated_for_second_derivatives():
    # the rule's own output is differentiated: d2/dx2 = e^x/(1+e^x)^2 = s(1-s)
    s = 1 / (1 + np.exp(-0.3))
    np.testing.assert_allclose(T.grad(T.grad(log1pexp))(0.3), s * (1 - s), rtol=1e-12)


@needs_jax
def test_log1pexp_like_jax():
    @jax.custom_jvp
    def j_log1pexp(x):
        return jnp.log1p(jnp.exp(x))

    @j_log1pexp.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return j_log1pexp(x), (1.0 - 1.0 / (1.0 + jnp.exp(x))) * t

    xs = np.array([-3.0, 0.0, 2.0, 80.0], np.float32)
    same_as_jax(T.vmap(T.grad(log1pexp))(xs), jax_jit(jax.vmap(jax.grad(j_log1pexp)))(xs))
    same_as_jax(T.jvp(log1pexp, (xs,), (xs,)),
                jax_jit(lambda x: jax.jvp(j_log1pexp, (x,), (x,)))(xs))
    same_as_jax(T.grad(T.grad(log1pexp))(np.float32(0.3)),
                jax_jit(jax.grad(jax.grad(j_log1pexp)))(np.float32(0.3)))


# --- enforcing a convention: x / (1 + |x|) ... and a norm at zero ------------------------------

@T.custom_jvp
def safe_norm(x):
    return tnp.sqrt(tnp.sum(x * x))


@safe_norm.defjvp
def _safe_norm_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    n = safe_norm(x)
    # the convention: the derivative at the origin is zero (not nan)
    unit = tnp.where(n == 0.0, 0.0, x / tnp.where(n == 0.0, 1.0, n))
    return n, tnp.sum(unit * t)


def test_convention_at_the_singular_point():
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.all(np.isnan(T.grad(lambda x: tnp.sqrt(tnp.sum(x * x)))(np.zeros(2))))
    np.testing.assert_array_equal(T.grad(safe_norm)(np.zeros(2)), [0.0, 0.0])
    np.testing.assert_allclose(T.grad(safe_norm)(np.array([3.0, 4.0])), [0.6, 0.8])
    np.testing.assert_array_equal(T.jit(T.grad(safe_norm))(np.zeros(2)), [0.0, 0.0])


# --- gradient clipping with custom_vjp --------------------------------------------------------

def test_gradient_clipping_in_the_backward_pass_only():
    f = lambda x: clip_gradient(-0.5, 0.5, x) ** 3  # noqa: E731
    np.testing.assert_allclose(f(2.0), 8.0)
    np.testing.assert_allclose(T.grad(f)(2.0), 0.5)         # 12 clipped to 0.5
    np.testing.assert_allclose(T.grad(f)(0.2), 3 * 0.04)   # 0.12 unclipped
    xs = np.array([-2.0, 0.1, 3.0])
    np.testing.assert_allclose(T.vmap(T.grad(f))(xs), [0.5, 0.03, 0.5])
    np.testing.assert_allclose(T.jit(T.vmap(T.grad(f)))(xs), [0.5, 0.03, 0.5])


def test_gradient_of_the_clipping_bounds_is_zero():
    g_lo, g_hi = T.grad(lambda lo, hi, x: clip_gradient(lo, hi, x) * 2.0, argnums=(0, 1))(
        -0.5, 0.5, 1.0)
    assert float(g_lo) == 0.0 and float(g_hi) == 0.0


def test_custom_vjp_under_forward_mode_is_a_clear_error():
    with pytest.raises(TypeError, match="custom_vjp"):
        T.jvp(lambda x: clip_gradient(-1.0, 1.0, x), (1.0,), (1.0,))


@needs_jax
def test_gradient_clipping_like_jax():
    @jax.custom_vjp
    def j_clip(lo, hi, x):
        return x

    j_clip.defvjp(lambda lo, hi, x: (x, (lo, hi)),
                  lambda res, g: (None, None, jnp.clip(g, res[0], res[1])))
    xs = np.array([-2.0, 0.1, 3.0], np.float32)
    same_as_jax(T.vmap(T.grad(lambda x: clip_gradient(-0.5, 0.5, x) ** 3))(xs),
                jax.vmap(jax.grad(lambda x: j_clip(-0.5, 0.5, x) ** 3))(xs))


# --- implicit differentiation of a fixed point --------------------------------------------------

def fixed_point_iterate(f, a, x0):
    def cond(carry):
        x_prev, x = carry
        return tnp.abs(x_prev - x) > 1e-12

    def body(carry):
        _, x = carry
        return x, f(a, x)

    return lax.while_loop(cond, body, (x0, f(a, x0)))[1]


@functools.partial(T.custom_vjp, nondiff_argnums=(0,))
def fixed_point(f, a, x0):
    return fixed_point_iterate(f, a, x0)


def _fp_fwd(f, a, x0):
    x_star = fixed_point(f, a, x0)
    return x_star, (a, x_star)


def _fp_bwd(f, res, x_bar):
    a, x_star = res
    _, vjp_a = T.vjp(lambda a: f(a, x_star), a)
    _, vjp_x = T.vjp(lambda x: f(a, x), x_star)
    # w = x_bar + w df/dx, solved by the same fixed-point iteration; then a_bar = w df/da
    w = fixed_point_iterate(lambda v, w: v + vjp_x(w)[0], x_bar, x_bar)
    return vjp_a(w)[0], tnp.zeros_like(x_star)


fixed_point.defvjp(_fp_fwd, _fp_bwd)


def newton_sqrt_step(a, x):
    return 0.5 * (x + a / x)


def test_fixed_point_square_root_and_its_implicit_gradient():
    assert abs(float(fixed_point(newton_sqrt_step, 2.0, 1.0)) - np.sqrt(2.0)) < 1e-12
    # d sqrt(a) / da = 1 / (2 sqrt(a))
    g = T.grad(fixed_point, argnums=1)(newton_sqrt_step, 2.0, 1.0)
    np.testing.assert_allclose(g, 0.5 / np.sqrt(2.0), rtol=1e-9)
    g_jit = T.jit(T.grad(lambda a: fixed_point(newton_sqrt_step, a, 1.0)))(9.0)
    np.testing.assert_allclose(g_jit, 1 / 6, rtol=1e-9)
    # and batched over many inputs
    aa = np.array([1.0, 4.0, 16.0])
    np.testing.assert_allclose(
        T.vmap(T.grad(lambda a: fixed_point(newton_sqrt_step, a, 1.0)))(aa), 0.5 / np.sqrt(aa),
        rtol=1e-9)


def test_nondiff_argnums_are_passed_to_bwd_first():
    seen = []

    @functools.partial(T.custom_vjp, nondiff_argnums=(1,))
    def scaled(x, k):
        return x * k

    def fwd(x, k):
        return x * k, None

    def bwd(k, res, g):
        seen.append(k)
        return (g * k * 10.0,)

    scaled.defvjp(fwd, bwd)
    assert float(T.grad(scaled)(2.0, 3)) == 30.0
    assert seen == [3]


def test_nondiff_argnums_with_a_traced_value_works_like_jax():
    # JAX allows a traced (e.g. jit argument) value in a nondiff_argnums position
    @functools.partial(T.custom_jvp, nondiff_argnums=(0,))
    def power(n, x):
        return x ** n

    @power.defjvp
    def _power_jvp(n, primals, tangents):
        (x,), (t,) = primals, tangents
        return power(n, x), n * x ** (n - 1) * t

    assert float(T.grad(power, argnums=1)(3.0, 2.0)) == 12.0
    out = T.jit(lambda n, x: T.grad(power, argnums=1)(n, x))(3.0, 2.0)
    assert float(out) == 12.0


# --- pytrees through custom_vjp ---------------------------------------------------------------

@T.custom_vjp
def pt_fun(p):
    return {"prod": p["a"] * p["b"], "sum": p["a"] + p["b"]}


def _pt_fwd(p):
    return pt_fun(p), (p["a"], p["b"])


def _pt_bwd(res, ct):
    a, b = res
    # a deliberately wrong-by-a-factor rule, so the test sees that the rule was used
    return ({"a": 2.0 * (ct["prod"] * b + ct["sum"]), "b": 2.0 * (ct["prod"] * a + ct["sum"])},)


pt_fun.defvjp(_pt_fwd, _pt_bwd)


def test_custom_vjp_with_pytree_input_and_output():
    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    g = T.grad(lambda p: tnp.sum(pt_fun(p)["prod"]) + 0.5 * tnp.sum(pt_fun(p)["sum"]))(p)
    np.testing.assert_allclose(g["a"], 2.0 * (p["b"] + 0.5) + 0.0 * p["a"])
    np.testing.assert_allclose(g["b"], 2.0 * (p["a"] + 0.5))


def test_custom_vjp_bwd_with_wrong_structure_is_a_clear_error():
    @T.custom_vjp
    def f(x, y):
        return x * y

    f.defvjp(lambda x, y: (x * y, (x, y)), lambda res, g: (g * res[1],))   # one, needs two
    with pytest.raises((TypeError, ValueError), match="bwd|custom_vjp"):
        T.grad(f)(2.0, 3.0)


@needs_jax
def test_custom_vjp_pytrees_like_jax():
    @jax.custom_vjp
    def j_pt(p):
        return {"prod": p["a"] * p["b"], "sum": p["a"] + p["b"]}

    j_pt.defvjp(lambda p: (j_pt(p), (p["a"], p["b"])),
                lambda res, ct: ({"a": 2.0 * (ct["prod"] * res[1] + ct["sum"]),
                                  "b": 2.0 * (ct["prod"] * res[0] + ct["sum"])},))
    p = {"a": np.array([1.0, 2.0], np.float32), "b": np.array([3.0, 4.0], np.float32)}
    ct = {"prod": np.array([1.0, -1.0], np.float32), "sum": np.array([0.5, 2.0], np.float32)}
    out, f_vjp = T.vjp(pt_fun, p)
    jout, jf_vjp = jax.vjp(j_pt, p)
    same_as_jax((out, f_vjp(ct)), (jout, jf_vjp(ct)))


# --- defjvps: one tangent rule per argument ----------------------------------------------------

@T.custom_jvp
def mul_sin(x, y):
    return x * tnp.sin(y)


mul_sin.defjvps(lambda x_dot, ans, x, y: tnp.sin(y) * x_dot,
                lambda y_dot, ans, x, y: x * tnp.cos(y) * y_dot)


def test_defjvps_rules_per_argument():
    gx, gy = T.grad(mul_sin, argnums=(0, 1))(2.0, 0.5)
    np.testing.assert_allclose(gx, np.sin(0.5))
    np.testing.assert_allclose(gy, 2.0 * np.cos(0.5))
    # only one argument perturbed: the other rule sees a zero tangent
    _, t = T.jvp(mul_sin, (2.0, 0.5), (0.0, 1.0))
    np.testing.assert_allclose(t, 2.0 * np.cos(0.5))


def test_defjvps_with_none_means_zero_derivative():
    @T.custom_jvp
    def f(x, y):
        return x * y

    f.defjvps(lambda x_dot, ans, x, y: y * x_dot, None)
    gx, gy = T.grad(f, argnums=(0, 1))(2.0, 3.0)
    assert float(gx) == 3.0 and float(gy) == 0.0


@needs_jax
def test_defjvps_like_jax():
    @jax.custom_jvp
    def j_mul_sin(x, y):
        return x * jnp.sin(y)

    j_mul_sin.defjvps(lambda x_dot, ans, x, y: jnp.sin(y) * x_dot,
                      lambda y_dot, ans, x, y: x * jnp.cos(y) * y_dot)
    x = np.array([1.0, 2.0], np.float32)
    y = np.array([0.5, -0.2], np.float32)
    same_as_jax(T.jvp(mul_sin, (x, y), (y, x)), jax.jvp(j_mul_sin, (x, y), (y, x)))
    same_as_jax(T.grad(lambda x, y: tnp.sum(mul_sin(x, y)), argnums=(0, 1))(x, y),
                jax.grad(lambda x, y: jnp.sum(j_mul_sin(x, y)), argnums=(0, 1))(x, y))


# --- composition -----------------------------------------------------------------------------

def test_custom_jvp_rule_is_not_used_when_not_differentiating():
    calls = []

    @T.custom_jvp
    def f(x):
        return tnp.sin(x)

    @f.defjvp
    def _f_jvp(primals, tangents):
        calls.append(1)
        (x,), (t,) = primals, tangents
        return f(x), 100.0 * t

    np.testing.assert_allclose(T.jit(f)(0.5), np.sin(0.5))
    np.testing.assert_allclose(T.vmap(f)(np.array([0.5, 1.0])), np.sin([0.5, 1.0]))
    assert calls == []
    assert float(T.grad(f)(0.5)) == 100.0


def test_custom_jvp_rule_output_type_mismatch_is_a_clear_error():
    @T.custom_jvp
    def f(x):
        return x * 2.0

    @f.defjvp
    def _bad(primals, tangents):
        return primals[0] * 2.0, tnp.zeros(3)           # tangent shape differs from output

    with pytest.raises((TypeError, ValueError), match="shape|tangent"):
        T.jvp(f, (1.0,), (1.0,))


def test_custom_vjp_under_vmap_of_grad_and_jit_agree():
    @T.custom_vjp
    def f(x):
        return tnp.sin(x)

    f.defvjp(lambda x: (tnp.sin(x), tnp.cos(x)), lambda c, g: (-c * g,))   # sign flipped
    xs = np.linspace(0.0, 1.0, 4)
    np.testing.assert_allclose(T.vmap(T.grad(f))(xs), -np.cos(xs))
    np.testing.assert_allclose(T.jit(T.vmap(T.grad(f)))(xs), -np.cos(xs))
    np.testing.assert_allclose(T.grad(lambda x: tnp.sum(f(x)))(xs), -np.cos(xs))


# --- what JAX checks in the rules' outputs -----------------------------------------------------

def test_custom_vjp_bwd_cotangent_of_the_wrong_shape_is_a_value_error():
    @T.custom_vjp
    def f(x):
        return x * 2.0

    f.defvjp(lambda x: (x * 2.0, None), lambda res, g: (tnp.ones(3),))
    with pytest.raises(ValueError, match=r"shape \(3,\) for an input of shape \(2,\)"):
        T.grad(lambda x: tnp.sum(f(x)))(np.ones(2))


def test_custom_vjp_bwd_cotangent_of_the_wrong_structure_is_a_type_error():
    @T.custom_vjp
    def f(p):
        return p["a"] * p["b"]

    f.defvjp(lambda p: (f(p), p), lambda p, g: ((g * p["b"], g * p["a"]),))  # tuple, not dict
    with pytest.raises(TypeError, match="structure of the arguments"):
        T.grad(f)({"a": 2.0, "b": 3.0})


def test_custom_vjp_bwd_none_leaves_and_dtype_cast():
    @T.custom_vjp
    def f(p):
        return p["a"] * p["b"]

    # a None leaf is a zero; a float64 cotangent for a float32 input comes back float32
    f.defvjp(lambda p: (f(p), p), lambda p, g: ({"a": (g * p["b"]).astype(np.float64),
                                                 "b": None},))
    g = T.grad(f)({"a": np.float32(2.0), "b": np.float32(3.0)})
    assert np.asarray(g["a"]).dtype == np.float32 and float(g["a"]) == 3.0
    assert float(g["b"]) == 0.0


def test_custom_jvp_rule_tangent_dtype_follows_the_primal():
    @T.custom_jvp
    def f(x):
        return x * 2.0

    # a float16 (or NumPy-default float64) tangent for a float32 output is cast to float32
    f.defjvp(lambda p, t: (f(p[0]), (t[0] * 2.0).astype(np.float16)))
    y, t = T.jvp(f, (np.ones(2, np.float32),), (np.ones(2, np.float32),))
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t, [2.0, 2.0])

    @T.custom_jvp
    def g(x):
        return x * 2.0

    g.defjvp(lambda p, t: (g(p[0]), t[0] * 1j))
    with pytest.raises(TypeError, match="complex128 tangent for a float64 primal"):
        T.jvp(g, (1.0,), (1.0,))


def test_python_control_flow_inside_custom_rules_on_concrete_values():
    # outside jit the function and its rules see concrete values, as in JAX
    @T.custom_jvp
    def f(x):
        return tnp.sin(x) if x > 0 else tnp.cos(x)

    @f.defjvp
    def _f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), (2.0 if x > 0 else 3.0) * t

    @T.custom_vjp
    def g(x):
        return tnp.sin(x) if x > 0 else tnp.cos(x)

    g.defvjp(lambda x: (g(x), x), lambda x, ct: ((2.0 if x > 0 else 3.0) * ct,))
    for fn in (f, g):
        assert float(T.grad(fn)(1.0)) == 2.0
        assert float(T.grad(fn)(-1.0)) == 3.0


# --- containers: namedtuples and dicts through the rules -----------------------------------

from collections import namedtuple  # noqa: E402

Point = namedtuple("Point", ["x", "y"])


def make_point_fun(M, np_):
    """A custom_jvp function from a Point to a dict holding a tuple, as in the tutorial's
    containers section, built for either library."""
    @M.custom_jvp
    def f(pt):
        return {"a": pt.x ** 2, "b": (np_.sin(pt.x), np_.cos(pt.y))}

    @f.defjvp
    def _f_jvp(primals, tangents):
        (pt,), (dp,) = primals, tangents
        return f(pt), {"a": 2 * pt.x * dp.x,
                       "b": (np_.cos(pt.x) * dp.x, -np_.sin(pt.y) * dp.y)}
    return f


def test_custom_jvp_with_namedtuple_in_and_dict_out():
    f = make_point_fun(T, tnp)
    pt = Point(1.0, 2.0)
    g = T.grad(lambda p: f(p)["a"] + f(p)["b"][1])(pt)
    assert isinstance(g, Point)
    np.testing.assert_allclose(g.x, 2.0)
    np.testing.assert_allclose(g.y, -np.sin(2.0))
    _, t = T.jvp(f, (pt,), (Point(1.0, 0.0),))
    np.testing.assert_allclose(t["b"][0], np.cos(1.0))
    assert float(t["b"][1]) == 0.0


@needs_jax
def test_custom_jvp_containers_like_jax():
    f, jf = make_point_fun(T, tnp), make_point_fun(jax, jnp)
    pts = Point(np.arange(3, dtype=np.float32), np.ones(3, np.float32))

    def loss(f):
        return lambda p: f(p)["a"] + f(p)["b"][0] * f(p)["b"][1]
    same_as_jax(T.vmap(T.grad(loss(f)))(pts), jax_jit(jax.vmap(jax.grad(loss(jf))))(pts))
    same_as_jax(T.jvp(f, (pts,), (pts,)), jax_jit(lambda p: jax.jvp(jf, (p,), (p,)))(pts))


# --- closure_convert: a solver whose function closes over the parameters -----------------------

@functools.partial(T.custom_vjp, nondiff_argnums=(0,))
def _fixed_point_consts(f, x0, *consts):
    return fixed_point_iterate(lambda a, x: f(x, *a), consts, x0)


def _fpc_fwd(f, x0, *consts):
    x_star = _fixed_point_consts(f, x0, *consts)
    return x_star, (x_star, consts)


def _fpc_bwd(f, res, x_bar):
    x_star, consts = res
    _, vjp_c = T.vjp(lambda *c: f(x_star, *c), *consts)
    _, vjp_x = T.vjp(lambda x: f(x, *consts), x_star)
    w = fixed_point_iterate(lambda v, w: v + vjp_x(w)[0], x_bar, x_bar)
    return (tnp.zeros_like(x_star),) + tuple(vjp_c(w))


_fixed_point_consts.defvjp(_fpc_fwd, _fpc_bwd)


def solve_fixed_point(f, x0):
    """`f(x)` may close over differentiated values: `closure_convert` turns them into explicit
    arguments, which the custom_vjp rule differentiates."""
    converted, consts = T.closure_convert(f, x0)
    return _fixed_point_consts(converted, x0, *consts)


def test_closure_convert_lets_a_custom_vjp_solver_differentiate_closed_over_values():
    def sqrt_via_newton(a):
        return solve_fixed_point(lambda x: 0.5 * (x + a / x), 1.0)

    np.testing.assert_allclose(sqrt_via_newton(2.0), np.sqrt(2.0), rtol=1e-12)
    np.testing.assert_allclose(T.grad(sqrt_via_newton)(2.0), 0.5 / np.sqrt(2.0), rtol=1e-9)
    np.testing.assert_allclose(T.jit(T.grad(sqrt_via_newton))(25.0), 0.1, rtol=1e-9)


# --- symbolic zeros ----------------------------------------------------------------------

def make_symbolic_mul(M, np_, SymbolicZero, seen):
    """`x * y` whose rule (symbolic_zeros=True) records which tangents were symbolic zeros
    and skips their terms."""
    @M.custom_jvp
    def mul(x, y):
        return x * y

    def rule(primals, tangents):
        (x, y), (tx, ty) = primals, tangents
        seen.append((isinstance(tx, SymbolicZero), isinstance(ty, SymbolicZero)))
        out = np_.zeros_like(x * y)
        if not isinstance(tx, SymbolicZero):
            out = out + tx * y
        if not isinstance(ty, SymbolicZero):
            out = out + x * ty
        return mul(x, y), out

    mul.defjvp(rule, symbolic_zeros=True)
    return mul


def run_symbolic_programs(M, mul):
    x, y = np.float32(2.0), np.float32(3.0)
    return (M.grad(mul)(x, y), M.grad(mul, 1)(x, y), M.grad(mul, (0, 1))(x, y),
            M.jvp(lambda a: mul(a, y), (x,), (np.float32(1.0),)),
            M.vmap(M.grad(mul))(np.arange(2, dtype=np.float32), np.ones(2, np.float32)))


def test_symbolic_zeros_mark_the_inputs_not_being_differentiated():
    from transforms.custom_derivatives import SymbolicZero

    seen = []
    mul = make_symbolic_mul(T, tnp, SymbolicZero, seen)
    g0, g1, (gx, gy), (y, t), per_ex = run_symbolic_programs(T, mul)
    assert (float(g0), float(g1), float(gx), float(gy)) == (3.0, 2.0, 3.0, 2.0)
    assert (float(y), float(t)) == (6.0, 3.0)
    np.testing.assert_array_equal(per_ex, [1.0, 1.0])
    assert seen == [(False, True), (True, False), (False, False), (False, True), (False, True)]
    assert float(T.jit(T.grad(mul))(2.0, 3.0)) == 3.0
    z = SymbolicZero.from_primal_value(np.ones((2, 3), np.float32))
    assert z.shape == (2, 3) and z.dtype == np.float32
    np.testing.assert_array_equal(z.instantiate(), np.zeros((2, 3), np.float32))


@needs_jax
def test_symbolic_zeros_like_jax():
    from jax.custom_derivatives import SymbolicZero as JaxSymbolicZero

    from transforms.custom_derivatives import SymbolicZero

    seen, jseen = [], []
    ours = run_symbolic_programs(T, make_symbolic_mul(T, tnp, SymbolicZero, seen))
    theirs = run_symbolic_programs(jax, make_symbolic_mul(jax, jnp, JaxSymbolicZero, jseen))
    same_as_jax(ours, theirs)
    assert seen == jseen


def test_defjvps_skips_the_rule_of_an_argument_not_being_differentiated():
    @T.custom_jvp
    def x_log_y(x, y):
        return x * tnp.log(y)

    # at y = 0 the y-rule is inf * 0 = nan: JAX never calls it when y is not differentiated
    x_log_y.defjvps(lambda tx, ans, x, y: tx * tnp.log(y), lambda ty, ans, x, y: x / y * ty)
    with np.errstate(divide="ignore"):
        assert float(T.grad(x_log_y)(2.0, 0.0)) == -np.inf
        assert float(T.grad(x_log_y, 1)(0.0, 2.0)) == 0.0


def make_symbolic_pair(M, SymbolicZero, seen):
    """`(x * y, x + y)` with a custom_vjp (symbolic_zeros=True) recording the perturbed flags
    its fwd sees and which output cotangents its bwd gets as symbolic zeros."""
    @M.custom_vjp
    def pair(x, y):
        return x * y, x + y

    def fwd(x, y):
        seen.append(("fwd", x.perturbed, y.perturbed))
        return pair(x.value, y.value), (x.value, y.value)

    def bwd(res, cts):
        (x, y), (c_prod, c_sum) = res, cts
        seen.append(("bwd", isinstance(c_prod, SymbolicZero), isinstance(c_sum, SymbolicZero)))
        c_prod = 0.0 if isinstance(c_prod, SymbolicZero) else c_prod
        c_sum = 0.0 if isinstance(c_sum, SymbolicZero) else c_sum
        return c_prod * y + c_sum, c_prod * x + c_sum

    pair.defvjp(fwd, bwd, symbolic_zeros=True)
    return pair


def run_pair_programs(M, pair):
    x, y = np.float32(2.0), np.float32(3.0)
    return (M.grad(lambda x, y: pair(x, y)[0])(x, y),
            M.grad(lambda x, y: pair(x, y)[1], 1)(x, y),
            M.grad(lambda x, y: pair(x, y)[0] + pair(x, y)[1], (0, 1))(x, y),
            M.vmap(M.grad(lambda x, y: pair(x, y)[0]))(np.arange(2, dtype=np.float32),
                                                        np.ones(2, np.float32)))


def test_custom_vjp_symbolic_zeros_perturbed_flags_and_zero_cotangents():
    from transforms.custom_derivatives import SymbolicZero

    seen = []
    g0, g1, (gx, gy), per_ex = run_pair_programs(T, make_symbolic_pair(T, SymbolicZero, seen))
    assert (float(g0), float(g1), float(gx), float(gy)) == (3.0, 1.0, 4.0, 3.0)
    np.testing.assert_array_equal(per_ex, [1.0, 1.0])
    assert seen[:4] == [("fwd", True, False), ("bwd", False, True),
                        ("fwd", False, True), ("bwd", True, False)]
    assert float(T.jit(T.grad(lambda x: make_symbolic_pair(T, SymbolicZero, [])(x, 3.0)[0]))(
        2.0)) == 3.0


@needs_jax
def test_custom_vjp_symbolic_zeros_like_jax():
    from jax.custom_derivatives import SymbolicZero as JaxSymbolicZero

    from transforms.custom_derivatives import SymbolicZero

    seen, jseen = [], []
    ours = run_pair_programs(T, make_symbolic_pair(T, SymbolicZero, seen))
    theirs = run_pair_programs(jax, make_symbolic_pair(jax, JaxSymbolicZero, jseen))
    same_as_jax(ours, theirs)
    assert seen == jseen


def test_defvjp_accepts_optimize_remat_without_changing_values():
    @T.custom_vjp
    def f(x):
        return tnp.sin(x)

    f.defvjp(lambda x: (tnp.sin(x), tnp.cos(x)), lambda c, g: (c * g,), optimize_remat=True)
    np.testing.assert_allclose(T.grad(f)(0.5), np.cos(0.5))
    np.testing.assert_allclose(T.grad(T.checkpoint(lambda x: f(x) * 2.0))(0.5), 2 * np.cos(0.5))
