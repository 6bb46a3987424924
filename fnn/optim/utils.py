"""`scale_gradient` (identity forward, scaled gradient backward) and optax's older top-level
names for the moment helpers (`update_moment` is `tree_utils.tree_update_moment`, ...)."""
from __future__ import annotations

import functools

from transforms import custom_vjp
from transforms import lax
from transforms import tree

from .tree_utils import (tree_bias_correction, tree_update_infinity_moment,
                         tree_update_moment, tree_update_moment_per_elem_norm)
from .updates import safe_increment  # noqa: F401

__all__ = ["scale_gradient", "bias_correction", "update_moment", "update_infinity_moment",
           "update_moment_per_elem_norm", "safe_increment"]


@functools.partial(custom_vjp, nondiff_argnums=(1,))
def _scale_grad(x, s):
    return x


def _scale_grad_fwd(x, s):
    return x, None


def _scale_grad_bwd(s, _, g):
    return (tree.map(lambda t: t * s, g),)


_scale_grad.defvjp(_scale_grad_fwd, _scale_grad_bwd)


def scale_gradient(inputs, scale):
    """`inputs` unchanged in the forward pass; their cotangent multiplied by `scale` in the
    backward pass (0 is `stop_gradient`, 1 is the identity)."""
    if scale == 1.0:
        return inputs
    if scale == 0.0:
        return tree.map(lax.stop_gradient, inputs)
    return _scale_grad(inputs, scale)


def bias_correction(moment, decay, count):
    """`moment / (1 - decay**count)` leafwise (optax's older name of
    `tree_bias_correction`)."""
    return tree_bias_correction(moment, decay, count)


def update_moment(updates, moments, decay, order):
    """`(1 - decay) g**order + decay m` leafwise (older name of `tree_update_moment`)."""
    return tree_update_moment(updates, moments, decay, order)


def update_infinity_moment(updates, moments, decay, eps):
    """`max(|g| + eps, decay m)` leafwise (older name of `tree_update_infinity_moment`)."""
    return tree_update_infinity_moment(updates, moments, decay, eps)


def update_moment_per_elem_norm(updates, moments, decay, order):
    """Older name of `tree_update_moment_per_elem_norm`."""
    return tree_update_moment_per_elem_norm(updates, moments, decay, order)
