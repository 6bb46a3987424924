"""vmap. PLACEHOLDER: a Python loop with stacking, to be replaced by a BatchTrace."""
from __future__ import annotations

import numpy as np

from .. import tree as tree_util


def vmap(fun, in_axes=0, out_axes=0, axis_name=None, axis_size=None):
    def batched(*args):
        from .. import numpy as tnp
        leaves_axes = tree_util.broadcast_prefix(in_axes, args) if False else None
        del leaves_axes
        flat, tree = tree_util.flatten(args)
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        flat_axes = []
        for a, ax in zip(args, axes):
            flat_axes += [ax] * len(tree_util.leaves(a))
        n = axis_size
        for x, ax in zip(flat, flat_axes):
            if ax is not None:
                n = np.shape(x)[ax]
        outs = []
        for i in range(n):
            sl = [x if ax is None else tnp.moveaxis(x, ax, 0)[i] for x, ax in zip(flat, flat_axes)]
            outs.append(fun(*tree_util.unflatten(tree, sl)))
        return tree_util.map(lambda *xs: tnp.moveaxis(tnp.stack(xs), 0, out_axes), *outs)
    return batched
