"""Clipping that looks at more than one leaf at a time: adaptive (unit-wise) gradient clipping
and the per-example clipping of differentially private SGD."""
from __future__ import annotations

import numpy as np

from transforms import tree
import transforms.numpy as tnp

from .base import EmptyState, GradientTransformation, NO_PARAMS_MSG, init_empty_state
from .updates import abs_sq


__all__ = ["AdaptiveGradClipState", "adaptive_grad_clip", "unitwise_norm", "unitwise_clip",
           "per_example_global_norm_clip", "per_example_layer_norm_clip"]


def unitwise_norm(x, axis=None):
    """The 2-norm of each output unit of `x`, broadcast to `x.shape`: over `axis` if given,
    else over everything for rank <= 1 (after squeezing), the first axis for rank 2 and 3
    (dense kernels), the first three for rank 4 (HWIO convolutions), the first four for 5."""
    x = tnp.asarray(x)
    nd = x.ndim
    if axis is not None:
        axes = axis
    elif sum(1 for d in x.shape if d != 1) <= 1:
        axes = None
    elif nd in (2, 3):
        axes = 0
    elif nd == 4:
        axes = (0, 1, 2)
    elif nd == 5:
        axes = (0, 1, 2, 3)
    else:
        raise ValueError(f"unitwise_norm: expected a parameter of rank 1 to 5, got shape "
                         f"{tuple(x.shape)}; pass axis= for other shapes")
    sq = tnp.sum(abs_sq(x), axis=axes, keepdims=True)
    return tnp.broadcast_to(tnp.sqrt(sq), x.shape)


def unitwise_clip(g_norm, max_norm, grad, div_eps=1e-6):
    """`grad` where `g_norm < max_norm`, else `grad * max_norm / max(g_norm, div_eps)`
    (all three of one shape)."""
    for name, a in (("max_norm", max_norm), ("grad", grad)):
        if tuple(tnp.shape(a)) != tuple(tnp.shape(g_norm)):
            raise ValueError(f"unitwise_clip: {name} of shape {tuple(tnp.shape(a))} differs "
                             f"from g_norm's {tuple(tnp.shape(g_norm))}")
    clipped = grad * (max_norm / tnp.maximum(g_norm, div_eps))
    return tnp.where(g_norm < max_norm, grad, clipped)


AdaptiveGradClipState = EmptyState


def adaptive_grad_clip(clipping, eps=1e-3, axis=None) -> GradientTransformation:
    """Adaptive gradient clipping (Brock et al., 2021): each unit's gradient is clipped to
    `clipping * max(||p_unit||, eps)` (norms from `unitwise_norm`)."""
    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)

        def f(g, p):
            gn, pn = unitwise_norm(g, axis), unitwise_norm(p, axis)
            return unitwise_clip(gn, clipping * tnp.maximum(pn, eps), g)
        return tree.map(f, updates, params), state
    return GradientTransformation(init_empty_state, update_fn)


def _check_batch(grads, name):
    leaves = tree.leaves(grads)
    shapes = [tuple(tnp.shape(g)) for g in leaves]
    if not leaves or any(len(s) < 1 or s[0] != shapes[0][0] for s in shapes):
        raise ValueError(f"{name} expects every gradient leaf to carry the same batch "
                         f"dimension first; got shapes {shapes}")


def per_example_global_norm_clip(grads, l2_norm_clip):
    """Clip each example's gradient (leading axis of every leaf) to global norm
    `l2_norm_clip` and sum over the examples. Returns `(summed_grads, num_clipped)`."""
    _check_batch(grads, "per_example_global_norm_clip")
    leaves = tree.leaves(grads)
    sq = sum(tnp.sum(tnp.reshape(abs_sq(g), (g.shape[0], -1)), axis=1) for g in leaves)
    norms = tnp.sqrt(sq)
    with np.errstate(divide="ignore", invalid="ignore"):
        mult = tnp.minimum(l2_norm_clip / norms, 1.0)
    mult = tnp.where(tnp.isnan(mult), tnp.ones_like(mult), mult)
    num_clipped = tnp.sum(mult < 1.0)
    summed = tree.map(lambda g: tnp.tensordot(tnp.asarray(mult, dtype=g.dtype), g, axes=1),
                      grads)
    return summed, num_clipped


def per_example_layer_norm_clip(grads, global_l2_norm_clip, uniform: bool = True):
    """Per-example clipping per leaf: leaf `i` is clipped to `C_i` with `sum C_i**2 = C**2`
    (`C_i = C / sqrt(n_leaves)` when `uniform`, else proportional to the square root of the
    leaf's size), then summed over examples. Returns a pair of trees `(summed_grads,
    num_clipped)`."""
    _check_batch(grads, "per_example_layer_norm_clip")
    leaves, treedef = tree.flatten(grads)
    if uniform:
        clips = [global_l2_norm_clip * (1.0 / len(leaves)) ** 0.5 for _ in leaves]
    else:
        total = sum(int(np.prod(g.shape[1:])) for g in leaves)
        clips = [global_l2_norm_clip * (int(np.prod(g.shape[1:])) / total) ** 0.5
                 for g in leaves]
    outs = [per_example_global_norm_clip(g, c) for g, c in zip(leaves, clips)]
    return (tree.unflatten(treedef, [o[0] for o in outs]),
            tree.unflatten(treedef, [o[1] for o in outs]))


