"""Parameter initialisers, as `jax.nn.initializers`: re-exported from
`transforms.nn.initializers`, which holds them (default dtype float32)."""
from transforms.nn.initializers import (compute_fans, constant,  # noqa: F401
                                        delta_orthogonal, glorot_normal, glorot_uniform,
                                        he_normal, he_uniform, kaiming_normal, kaiming_uniform,
                                        lecun_normal, lecun_uniform, normal, ones, orthogonal,
                                        truncated_normal, uniform, variance_scaling,
                                        xavier_normal, xavier_uniform, zeros)

__all__ = ["variance_scaling", "glorot_uniform", "glorot_normal", "xavier_uniform",
           "xavier_normal", "he_uniform", "he_normal", "kaiming_uniform", "kaiming_normal",
           "lecun_uniform", "lecun_normal", "zeros", "ones", "constant", "normal", "uniform",
           "truncated_normal", "orthogonal", "delta_orthogonal"]
