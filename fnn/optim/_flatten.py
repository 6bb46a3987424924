"""`flatten(inner)` (optax.flatten): run `inner` on one vector holding every parameter."""
from __future__ import annotations

import math

import numpy as np

import transforms.numpy as tnp
from transforms import tree

from .base import GradientTransformationExtraArgs, with_extra_args_support

__all__ = ["flatten"]


def to_vector(t):
    """Every leaf of `t` raveled and concatenated into one 1-D array."""
    leaves = tree.leaves(t)
    if not leaves:
        return tnp.zeros((0,), np.float32)
    return tnp.concatenate([tnp.ravel(tnp.asarray(x)) for x in leaves])


def from_vector(like, vec):
    """`vec` cut back into the shapes and structure of the tree `like`."""
    leaves, treedef = tree.flatten(like)
    out, off = [], 0
    for x in leaves:
        shape = tnp.shape(x)
        n = math.prod(shape)
        out.append(tnp.reshape(vec[off:off + n], shape))
        off += n
    return tree.unflatten(treedef, out)


def flatten(inner):
    """Wrap `inner` so that it sees the parameters (and updates) concatenated into a single
    1-D vector, which turns many small per-leaf computations into one large one.

    The state of the wrapped transformation is `inner`'s state for that vector; updates come
    back in the structure and shapes of the incoming updates. Leaves are promoted to a common
    dtype by the concatenation.
    """
    inner = with_extra_args_support(inner)

    def init_fn(params):
        return inner.init(to_vector(params))

    def update_fn(updates, state, params=None, **extra_args):
        flat_params = None if params is None else to_vector(params)
        new, state = inner.update(to_vector(updates), state, flat_params, **extra_args)
        return from_vector(updates, new), state

    return GradientTransformationExtraArgs(init_fn, update_fn)
