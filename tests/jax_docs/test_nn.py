"""transforms.nn programs (jax.nn): activations with their derivatives, softmax tricks,
one_hot, standardize, and transforms.nn.initializers' variance formulas."""
import math

import numpy as np
import pytest
import scipy.special

from ._helpers import require_namespace

nn = require_namespace("transforms.nn")
initializers = require_namespace("transforms.nn.initializers")

import transforms as T
import transforms.numpy as tnp
from transforms import random

from ._helpers import check

X = np.array([-3.0, -0.5, 0.0, 0.7, 2.5])
Z = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 1000.0]])


def test_relu_and_its_gradient():
    check(nn.relu, (X,), np.maximum(X, 0))
    check(T.vmap(T.grad(nn.relu)), (X,), (X > 0).astype(float))


def test_sigmoid_derivative_is_s_times_one_minus_s():
    s = scipy.special.expit(X)
    check(nn.sigmoid, (X,), s, rtol=1e-12)
    check(T.vmap(T.grad(nn.sigmoid)), (X,), s * (1 - s), rtol=1e-12)


def test_softplus_derivative_is_sigmoid_and_stable():
    check(nn.softplus, (X,), np.logaddexp(0, X), rtol=1e-12)
    check(T.vmap(T.grad(nn.softplus)), (X,), scipy.special.expit(X), rtol=1e-12)
    check(nn.softplus, (np.array([1000.0, -1000.0]),), np.array([1000.0, 0.0]))


def test_silu_swish_and_log_sigmoid():
    s = scipy.special.expit(X)
    check(lambda x: (nn.silu(x), nn.swish(x), nn.log_sigmoid(x)), (X,),
          (X * s, X * s, np.log(s)), rtol=1e-12)


def test_gelu_exact_and_tanh_approximation():
    exact = 0.5 * X * (1 + scipy.special.erf(X / np.sqrt(2)))
    approx = 0.5 * X * (1 + np.tanh(np.sqrt(2 / np.pi) * (X + 0.044715 * X ** 3)))
    check(lambda x: (nn.gelu(x, approximate=False), nn.gelu(x)), (X,), (exact, approx),
          rtol=1e-10)


def test_elu_selu_celu_leaky_relu():
    a, l = 1.6732632423543772, 1.0507009873554805
    check(lambda x: (nn.elu(x), nn.selu(x), nn.celu(x, alpha=2.0), nn.leaky_relu(x, 0.1)), (X,),
          (np.where(X > 0, X, np.expm1(X)), l * np.where(X > 0, X, a * np.expm1(X)),
           np.where(X > 0, X, 2.0 * np.expm1(X / 2.0)), np.where(X > 0, X, 0.1 * X)),
          rtol=1e-10)


def test_hard_activations_and_relu6():
    check(lambda x: (nn.relu6(x * 3), nn.hard_tanh(x), nn.hard_sigmoid(x)), (X,),
          (np.clip(3 * X, 0, 6), np.clip(X, -1, 1), np.clip(X + 3, 0, 6) / 6), rtol=1e-12)


def test_softmax_is_shift_invariant_and_stable():
    e = np.exp(Z - Z.max(1, keepdims=True))
    check(nn.softmax, (Z,), e / e.sum(1, keepdims=True), rtol=1e-12)
    check(lambda z: nn.softmax(z + 100.0), (Z,), e / e.sum(1, keepdims=True), rtol=1e-12)


def test_log_softmax_equals_x_minus_logsumexp():
    check(nn.log_softmax, (Z,), Z - scipy.special.logsumexp(Z, axis=1, keepdims=True),
          rtol=1e-12)


def test_softmax_jacobian_is_diag_minus_outer():
    z = Z[0]
    s = np.exp(z) / np.exp(z).sum()
    check(T.jacrev(nn.softmax), (z,), np.diag(s) - np.outer(s, s), rtol=1e-10, atol=1e-14)


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    labels = np.array([2, 0])
    loss = lambda z: -tnp.sum(nn.log_softmax(z) * nn.one_hot(labels, 3))
    s = np.exp(Z - scipy.special.logsumexp(Z, axis=1, keepdims=True))
    check(T.grad(loss), (Z,), s - np.eye(3)[labels], rtol=1e-10, atol=1e-14)


def test_one_hot_encoding():
    check(lambda y: nn.one_hot(y, 4), (np.array([0, 3, 1]),), np.eye(4)[[0, 3, 1]])
    assert nn.one_hot(np.array([1]), 3).dtype == np.float32      # jax.nn default


def test_glu_splits_in_half():
    x = np.arange(6.0).reshape(1, 6) / 3
    check(nn.glu, (x,), x[:, :3] * scipy.special.expit(x[:, 3:]), rtol=1e-12)


def test_standardize_zero_mean_unit_variance():
    x = np.array([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]])
    m, v = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    check(nn.standardize, (x,), (x - m) / np.sqrt(v + 1e-5), rtol=1e-10)


def test_nn_logsumexp_matches_scipy():
    check(lambda z: nn.logsumexp(z, axis=-1), (Z,), scipy.special.logsumexp(Z, axis=-1))


# ---- initializers --------------------------------------------------------------------------

SHAPE = (200, 300)


@pytest.mark.parametrize("name,expected_var", [
    ("glorot_normal", 2.0 / (200 + 300)),
    ("glorot_uniform", 2.0 / (200 + 300)),
    ("he_normal", 2.0 / 200),
    ("he_uniform", 2.0 / 200),
    ("lecun_normal", 1.0 / 200),
    ("lecun_uniform", 1.0 / 200),
])
def test_initializer_variance_formula(name, expected_var):
    w = getattr(initializers, name)()(random.key(0), SHAPE)
    assert w.shape == SHAPE and w.dtype == np.float32
    assert abs(np.var(w) / expected_var - 1) < 0.05
    assert abs(np.mean(w)) < 0.01


def test_uniform_glorot_respects_its_limit():
    w = initializers.glorot_uniform()(random.key(1), SHAPE)
    assert np.abs(w).max() <= np.sqrt(6 / 500) + 1e-7


def test_truncated_normal_initializer_bounds():
    w = initializers.truncated_normal(stddev=0.5)(random.key(2), (1000,))
    assert np.abs(w).max() <= 1.0 + 1e-6


def test_constant_zeros_ones_and_dtype():
    key = random.key(0)
    np.testing.assert_array_equal(initializers.zeros(key, (2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(initializers.ones(key, (2,)), np.ones(2))
    np.testing.assert_array_equal(initializers.constant(0.5)(key, (2,)), np.full(2, 0.5))
    assert initializers.normal(1.0, dtype=np.float64)(key, (3,)).dtype == np.float64


def test_orthogonal_initializer_has_orthonormal_columns():
    w = np.asarray(initializers.orthogonal()(random.key(3), (6, 4)), dtype=np.float64)
    np.testing.assert_allclose(w.T @ w, np.eye(4), atol=1e-5)


def test_variance_scaling_fan_avg_for_conv_kernel():
    # HWIO kernel: receptive field 3*3, fan_in = 9*16, fan_out = 9*32
    w = initializers.variance_scaling(1.0, "fan_avg", "normal")(random.key(4), (3, 3, 16, 32))
    assert abs(np.var(w) / (2.0 / (9 * 16 + 9 * 32)) - 1) < 0.05


def test_initializer_same_key_same_weights_under_jit():
    init = initializers.he_normal()
    k = random.key(5)
    np.testing.assert_allclose(init(k, (3, 4)), T.jit(lambda k: init(k, (3, 4)))(k), rtol=1e-6)
