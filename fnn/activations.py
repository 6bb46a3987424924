"""Activation functions, as `jax.nn`: re-exported from `transforms.nn`, which holds them.

Each is a plain function of arrays (NumPy arrays eagerly, traced values inside transforms), so
it can be used directly as a layer in `fnn.Sequential`. See `transforms.nn` for the
conventions (`relu'(0) = 0`, double-where branches, max-shifted softmax/logsumexp).
"""
from transforms.nn import (celu, elu, gelu, glu, hard_sigmoid, hard_silu,  # noqa: F401
                           hard_swish, hard_tanh, leaky_relu, log_sigmoid, log_softmax,
                           logsumexp, mish, one_hot, relu, relu6, selu, sigmoid, silu,
                           soft_sign, softmax, softplus, standardize, swish, tanh)

__all__ = ["relu", "relu6", "sigmoid", "log_sigmoid", "tanh", "softplus", "gelu", "silu",
           "swish", "leaky_relu", "elu", "softmax", "log_softmax", "logsumexp", "one_hot",
           "celu", "selu", "soft_sign", "hard_tanh", "hard_sigmoid", "hard_silu", "hard_swish",
           "glu", "mish", "standardize"]
