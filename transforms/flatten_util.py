"""`transforms.flatten_util` (as `jax.flatten_util`): a pytree as one flat vector and back."""
from __future__ import annotations

import numpy as np

from . import numpy as tnp
from . import tree as tree_util
from .core import get_aval

__all__ = ["ravel_pytree"]


def ravel_pytree(pytree):
    """Mirrors `jax.flatten_util.ravel_pytree`: `(flat, unravel)` where `flat` is every leaf
    raveled (C order) and concatenated in the tree's leaf order, and `unravel(v)` rebuilds a
    tree of the same structure, shapes and leaf dtypes from a vector of `flat`'s size (a
    vector of another dtype, e.g. float64 from a SciPy optimiser, is cast piece by piece to
    the leaves' dtypes; a wrong size is a ValueError).

    `flat`'s dtype is the promoted dtype of the leaves (float32 for an empty tree, as JAX);
    `unravel` casts each piece back to its leaf's dtype. Differences from JAX: promotion
    follows NumPy 2 (`tnp.result_type`), so a float32 leaf beside an int32 leaf gives a
    float64 vector where JAX (32-bit) gives float32; trees of float leaves of one dtype,
    the usual parameter trees, agree. Works eagerly and on traced values: differentiates,
    batches and compiles (both directions are concatenate/slice/reshape/convert)."""
    leaves, treedef = tree_util.flatten(pytree)
    if not leaves:
        return np.zeros((0,), np.float32), _Unravel(treedef, (), (), (), np.float32)
    leaves = [tnp.asarray(x) for x in leaves]
    avals = [get_aval(x) for x in leaves]
    dtype = np.dtype(tnp.result_type(*leaves))
    shapes = tuple(a.shape for a in avals)
    dtypes = tuple(np.dtype(a.dtype) for a in avals)
    sizes = tuple(int(np.prod(s, dtype=np.int64)) for s in shapes)
    flat = tnp.concatenate([tnp.ravel(x).astype(dtype) for x in leaves])
    return flat, _Unravel(treedef, shapes, dtypes, sizes, dtype)


class _Unravel:
    """The inverse of one `ravel_pytree` call (a plain callable, safe to close over in jit)."""

    def __init__(self, treedef, shapes, dtypes, sizes, dtype):
        self.treedef, self.shapes, self.dtypes, self.sizes = treedef, shapes, dtypes, sizes
        self.dtype = np.dtype(dtype)

    def __call__(self, flat):
        flat = tnp.asarray(flat)
        aval = get_aval(flat)
        total = sum(self.sizes)
        if aval.shape != (total,):
            raise ValueError(f"unravel: expected a vector of shape ({total},) (the raveled "
                             f"tree's size), got shape {tuple(aval.shape)}")
        pieces, start = [], 0
        for shape, dt, n in zip(self.shapes, self.dtypes, self.sizes):
            pieces.append(tnp.reshape(flat[start:start + n], shape).astype(dt))
            start += n
        return tree_util.unflatten(self.treedef, pieces)

    def __repr__(self):
        return f"<unravel of {len(self.shapes)} leaves into {self.treedef}>"
