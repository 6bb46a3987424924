"""`optax.projections`: Euclidean projections of a pytree onto convex sets, for projected
gradient descent (`params = projection_*(optax_step(params))`).

Each takes a pytree and returns one of the same structure; trees are treated as one flat
vector (so `projection_l2_ball` scales every leaf by one factor). All are traceable.
"""
from __future__ import annotations

import numpy as np

import transforms.numpy as tnp
from transforms import tree as _tree

from ._flatten import from_vector, to_vector
from .tree_utils import tree_add_scale, tree_full_like, tree_mul, tree_norm, tree_scale, \
    tree_vdot

__all__ = [
    "projection_box", "projection_halfspace", "projection_hypercube", "projection_hyperplane",
    "projection_l1_ball", "projection_l1_sphere", "projection_l2_ball", "projection_l2_sphere",
    "projection_linf_ball", "projection_non_negative", "projection_simplex",
    "projection_vector",
]


def projection_non_negative(tree):
    """`max(x, 0)` leafwise: the projection onto the non-negative orthant."""
    return _tree.map(lambda x: tnp.maximum(x, 0), tree)


def projection_box(tree, lower, upper):
    """`clip(x, lower, upper)` leafwise (`lower`/`upper` scalars or trees like `tree`)."""
    lo_tree = _tree.structure(lower) == _tree.structure(tree)
    hi_tree = _tree.structure(upper) == _tree.structure(tree)
    lower = lower if lo_tree else _tree.map(lambda _: lower, tree)
    upper = upper if hi_tree else _tree.map(lambda _: upper, tree)
    return _tree.map(lambda x, lo, hi: tnp.minimum(tnp.maximum(x, lo), hi), tree, lower, upper)


def projection_hypercube(tree, scale=1):
    """The projection onto `[0, scale]^n`: `projection_box(tree, 0, scale)`."""
    return projection_box(tree, 0, scale)


def unit_simplex_last_axis(v):
    """The projection of every row (last axis) of `v` onto the unit simplex, by the sort
    algorithm (Held et al.; Duchi et al. 2008): with `u` sorted decreasingly and `k` the
    number of `j` with `1/j + u_j - cumsum(u)_j / j > 0`, the result is
    `max(v - (cumsum(u)_k - 1) / k, 0)`."""
    n = v.shape[-1]
    u = tnp.flip(tnp.sort(v, axis=-1), axis=-1)
    cs = tnp.cumsum(u, axis=-1)
    j = tnp.arange(1, n + 1, dtype=v.dtype)
    cond = 1 / j + (u - cs / j) > 0
    k = tnp.sum(cond.astype(np.int32), axis=-1, keepdims=True)
    cs_k = tnp.take_along_axis(cs, k - 1, axis=-1)
    tau = (cs_k - 1) / k.astype(v.dtype)
    return tnp.maximum(v - tau, 0)


def projection_simplex(tree, scale=1):
    """The projection onto `{x >= 0, sum(x) = scale}` of all leaves as one vector."""
    v = to_vector(tree)
    out = scale * unit_simplex_last_axis(v / scale)
    return from_vector(tree, out)


def projection_l1_sphere(tree, scale=1):
    """The projection onto `{sum |x| = scale}`: signs kept, magnitudes onto the simplex."""
    signs = _tree.map(tnp.sign, tree)
    mags = projection_simplex(_tree.map(tnp.abs, tree), scale)
    return tree_mul(signs, mags)


def projection_l1_ball(tree, scale=1):
    """The projection onto `{sum |x| <= scale}`: unchanged inside, `projection_l1_sphere`
    outside (a traceable select)."""
    inside = tree_norm(tree, ord=1) <= scale
    on_sphere = projection_l1_sphere(tree, scale)
    return _tree.map(lambda x, s: tnp.where(inside, x, s), tree, on_sphere)


def projection_l2_sphere(tree, scale=1):
    """The projection onto `{||x||_2 = scale}`: `x * scale / ||x||`."""
    return tree_scale(scale / tree_norm(tree), tree)


def projection_l2_ball(tree, scale=1):
    """The projection onto `{||x||_2 <= scale}`: `x * scale / max(||x||, scale)`."""
    sq = tree_norm(tree, squared=True)
    return tree_scale(scale / tnp.sqrt(tnp.maximum(sq, scale ** 2)), tree)


def projection_linf_ball(tree, scale=1):
    """The projection onto `{max |x| <= scale}`: `clip(x, -scale, scale)`."""
    return projection_box(tree, tree_full_like(tree, -scale), tree_full_like(tree, scale))


def projection_vector(x, a):
    """The projection of `x` onto the line spanned by `a`: `(<x, a> / <a, a>) a`."""
    return tree_scale(tree_vdot(x, a) / tree_vdot(a, a), a)


def projection_hyperplane(x, a, b):
    """The projection onto `{y : <a, y> = b}`: `x + ((b - <a, x>) / <a, a>) a`."""
    return tree_add_scale(x, (b - tree_vdot(x, a)) / tree_vdot(a, a), a)


def projection_halfspace(x, a, b):
    """The projection onto `{y : <a, y> <= b}`: `x + min((b - <a, x>) / <a, a>, 0) a`."""
    s = tnp.minimum((b - tree_vdot(x, a)) / tree_vdot(a, a), 0)
    return tree_add_scale(x, s, a)
