"""Custom derivative programs: custom_jvp for numerically stable functions, custom_vjp for
gradient clipping and fixed points, nondiff_argnums."""
import functools

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax

from ._helpers import check


@T.custom_jvp
def log1pexp(x):
    return tnp.log1p(tnp.exp(x))


@log1pexp.defjvp
def _log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1 - 1 / (1 + tnp.exp(x)))


def test_log1pexp_stable_gradient_at_large_input():
    # naive autodiff gives exp(x)/(1+exp(x)) = inf/inf = nan at x=1000
    check(T.grad(log1pexp), (1000.0,), 1.0)
    check(T.grad(log1pexp), (0.0,), 0.5)


def test_log1pexp_vmap_of_grad_and_second_derivative():
    x = np.array([-3.0, 0.0, 2.0])
    s = 1 / (1 + np.exp(-x))
    check(T.vmap(T.grad(log1pexp)), (x,), s)
    check(T.vmap(T.grad(T.grad(log1pexp))), (x,), s * (1 - s))


@T.custom_jvp
def safe_norm(x):
    return tnp.sqrt(tnp.sum(x ** 2))


@safe_norm.defjvp
def _safe_norm_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    n = safe_norm(x)
    safe = tnp.where(n == 0, 1.0, n)
    return n, tnp.where(n == 0, 0.0, tnp.dot(x, t) / safe)


def test_custom_jvp_norm_zero_gradient_at_origin():
    check(T.grad(safe_norm), (np.zeros(3),), np.zeros(3))
    v = np.array([3.0, 4.0, 0.0])
    check(T.grad(safe_norm), (v,), v / 5.0)


@T.custom_jvp
def f_defjvps(x, y):
    return tnp.sin(x) * y


f_defjvps.defjvps(lambda x_dot, primal_out, x, y: tnp.cos(x) * x_dot * y,
                  lambda y_dot, primal_out, x, y: tnp.sin(x) * y_dot)


def test_custom_jvp_defjvps_per_argument():
    check(T.grad(f_defjvps, argnums=(0, 1)), (0.4, 2.0), (np.cos(0.4) * 2.0, np.sin(0.4)))


@T.custom_vjp
def clip_gradient(lo, hi, x):
    return x


def _clip_fwd(lo, hi, x):
    return x, (lo, hi)


def _clip_bwd(res, g):
    lo, hi = res
    return None, None, tnp.clip(g, lo, hi)


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


def test_custom_vjp_gradient_clipping():
    f = lambda x: clip_gradient(-0.75, 0.75, tnp.sin(x))
    xs = np.array([0.0, 1.0, 2.0, 3.0])
    check(T.vmap(T.grad(lambda x: 3 * f(x))), (xs,), np.clip(3.0, -0.75, 0.75) * np.cos(xs))


@functools.partial(T.custom_vjp, nondiff_argnums=(0,))
def scaled_grad(scale, x):
    return x


scaled_grad.defvjp(lambda scale, x: (x, None), lambda scale, res, g: (scale * g,))


def test_custom_vjp_nondiff_argnums_scale():
    f = lambda x: tnp.sum(scaled_grad(0.1, x) ** 2)
    x = np.array([1.0, -2.0])
    check(T.grad(f), (x,), 0.2 * x)


@functools.partial(T.custom_jvp, nondiff_argnums=(0,))
def apply_fn(fn, x):
    return fn(x)


@apply_fn.defjvp
def _apply_fn_jvp(fn, primals, tangents):
    (x,), (t,) = primals, tangents
    return fn(x), 2.0 * t          # deliberately not the true derivative


def test_custom_jvp_nondiff_argnums_callable():
    check(T.grad(lambda x: apply_fn(tnp.sin, x)), (0.3,), 2.0)


@T.custom_vjp
def fixed_point_sqrt(a):
    # x = 0.5 (x + a/x) iterated to convergence
    return lax.fori_loop(0, 60, lambda i, x: 0.5 * (x + a / x), a)


def _fp_fwd(a):
    x = fixed_point_sqrt(a)
    return x, x


def _fp_bwd(x, g):
    return (g / (2 * x),)    # implicit differentiation: dx/da = 1/(2 sqrt a)


fixed_point_sqrt.defvjp(_fp_fwd, _fp_bwd)


def test_custom_vjp_implicit_fixed_point_gradient():
    check(fixed_point_sqrt, (9.0,), 3.0)
    check(T.grad(fixed_point_sqrt), (9.0,), 1 / 6.0)


@T.custom_vjp
def pytree_fn(p):
    return p["a"] * p["b"]


pytree_fn.defvjp(lambda p: (pytree_fn(p), p),
                 lambda p, g: ({"a": g * p["b"] * 10.0, "b": g * p["a"] * 10.0},))


def test_custom_vjp_pytree_arguments():
    check(T.grad(pytree_fn), ({"a": 2.0, "b": 3.0},), {"a": 30.0, "b": 20.0})


def test_custom_jvp_used_under_reverse_mode_and_jvp_agree():
    x = 1.5
    _, tangent = T.jvp(log1pexp, (x,), (1.0,))
    np.testing.assert_allclose(tangent, T.grad(log1pexp)(x), rtol=1e-14)
    check(lambda x: T.jvp(log1pexp, (x,), (2.0,))[1], (x,), 2 / (1 + np.exp(-x)))


@T.custom_vjp
def straight_through_sign(x):
    return tnp.sign(x)


straight_through_sign.defvjp(lambda x: (tnp.sign(x), None), lambda _, g: (g,))


def test_custom_vjp_straight_through_sign():
    x = np.array([-0.5, 0.2, 3.0])
    f = lambda x: tnp.sum(straight_through_sign(x) * np.array([1.0, 2.0, 3.0]))
    check(T.value_and_grad(f), (x,), (4.0, np.array([1.0, 2.0, 3.0])))


@T.custom_jvp
def relu_custom(x):
    return tnp.maximum(x, 0.0)


relu_custom.defjvp(lambda p, t: (relu_custom(p[0]), tnp.where(p[0] >= 0, 1.0, 0.0) * t[0]))


def test_custom_jvp_subgradient_choice_at_zero():
    # chooses 1 at x == 0 (plain maximum would split the difference)
    check(T.vmap(T.grad(relu_custom)), (np.array([-1.0, 0.0, 2.0]),), np.array([0.0, 1.0, 1.0]))
