"""More collectives, composed from `psum`, `all_gather`, `ppermute` and `axis_index` (so they
work wherever those do: inside `vmap`/`pmap` with an `axis_name`, and over a
`transforms.distributed.Mesh` axis): `axis_size psum_scatter all_to_all pshuffle pswapaxes`."""
from __future__ import annotations

import operator

from ..core import get_aval
from . import shape as S
from .collectives import _axis_size, _names, all_gather, axis_index, ppermute, psum
from .extras import dynamic_index_in_dim, dynamic_slice_in_dim
from ._util import as_array
from .. import tree as tree_util

__all__ = ["axis_size", "psum_scatter", "all_to_all", "pshuffle", "pswapaxes"]


def axis_size(axis_name):
    """The size of the mapped axis `axis_name` (a name or a tuple of names: their product)."""
    n = 1
    for name in _names(axis_name):
        n *= _axis_size(name)
    return n


def _one_name(axis_name, what):
    names = _names(axis_name)
    if len(names) != 1:
        raise NotImplementedError(f"{what}: one axis name at a time here, got {axis_name!r}")
    return names[0]


def psum_scatter(x, axis_name, *, scatter_dimension=0, axis_index_groups=None, tiled=False):
    """`psum` over `axis_name`, each member keeping only its own block of the sum along
    `scatter_dimension`: with `tiled=False` that dimension's size must equal the axis size and
    is removed (member `i` gets entry `i`); with `tiled=True` it is split into equal blocks."""
    if axis_index_groups is not None:
        raise NotImplementedError("psum_scatter: axis_index_groups is not supported")
    name = _one_name(axis_name, "psum_scatter")

    def one(leaf):
        leaf = as_array(leaf)
        n = _axis_size(name)
        shape = get_aval(leaf).shape
        d = operator.index(scatter_dimension) % len(shape)
        s = psum(leaf, name)
        i = axis_index(name)
        if tiled:
            if shape[d] % n:
                raise ValueError(f"psum_scatter: dimension {d} of size {shape[d]} does not "
                                 f"split into {n} equal blocks")
            c = shape[d] // n
            return dynamic_slice_in_dim(s, i * c, c, d)
        if shape[d] != n:
            raise ValueError(f"psum_scatter: dimension {d} has size {shape[d]}, must equal the "
                             f"axis size {n} (or pass tiled=True)")
        return dynamic_index_in_dim(s, i, d, keepdims=False)
    return tree_util.map(one, x)


def all_to_all(x, axis_name, split_axis, concat_axis, *, axis_index_groups=None, tiled=False):
    """Member `i` sends block `j` of its `split_axis` to member `j`, and concatenates the
    blocks it receives along `concat_axis` (as `jax.lax.all_to_all`): untiled, `split_axis`
    (of the axis' size) is removed and a new axis of that size is inserted at `concat_axis`;
    tiled, `split_axis` shrinks and `concat_axis` grows by the axis size."""
    if axis_index_groups is not None:
        raise NotImplementedError("all_to_all: axis_index_groups is not supported")
    name = _one_name(axis_name, "all_to_all")

    def one(leaf):
        leaf = as_array(leaf)
        n = _axis_size(name)
        shape = get_aval(leaf).shape
        nd = len(shape)
        sa = operator.index(split_axis) % nd
        i = axis_index(name)
        g = all_gather(leaf, name)                  # (n,) + shape: every member's value
        if tiled:
            if shape[sa] % n:
                raise ValueError(f"all_to_all: split_axis {sa} of size {shape[sa]} does not "
                                 f"split into {n} blocks")
            c = shape[sa] // n
            blk = dynamic_slice_in_dim(g, i * c, c, sa + 1)   # (n,) + shape with c at sa
            ca = operator.index(concat_axis) % nd
            moved = S.transpose(blk, [d + 1 for d in range(ca)] + [0]
                                + [d + 1 for d in range(ca, nd)])
            bs = get_aval(moved).shape
            return S.reshape(moved, bs[:ca] + (n * bs[ca + 1],) + bs[ca + 2:])
        if shape[sa] != n:
            raise ValueError(f"all_to_all: split_axis {sa} has size {shape[sa]}, must equal the "
                             f"axis size {n} (or pass tiled=True)")
        blk = dynamic_index_in_dim(g, i, sa + 1, keepdims=False)   # (n,) + shape without sa
        ca = operator.index(concat_axis) % nd
        rest = list(range(1, nd))
        return S.transpose(blk, rest[:ca] + [0] + rest[ca:])
    return tree_util.map(one, x)


def pshuffle(x, axis_name, perm):
    """Member `i` gets the value of member `perm[i]` (`perm` a permutation of the axis)."""
    perm = [operator.index(p) for p in perm]
    if sorted(perm) != list(range(len(perm))):
        raise ValueError(f"pshuffle: perm {perm} is not a permutation of range({len(perm)})")
    return ppermute(x, axis_name, [(p, i) for i, p in enumerate(perm)])


def pswapaxes(x, axis_name, axis, *, axis_index_groups=None):
    """Swap the mapped axis `axis_name` with positional axis `axis` (whose size must equal the
    axis size): `all_to_all(x, axis_name, axis, axis)`."""
    return all_to_all(x, axis_name, axis, axis, axis_index_groups=axis_index_groups)
